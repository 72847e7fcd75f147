//! `TEAM:NAME` in entry requests: which team a request is for, and the request with the
//! prefix taken off, to run on that team's vault like on any vault.

use jeton::integrations::IntegrationRequest;
use jeton::lifecycle::LifecycleRequest;
use jeton::request::{Request, Response};
use jeton::{Error, Result};

/// The team a request names (`None`: the personal vault), and the request with every
/// `TEAM:` prefix removed. Refused when it names two teams, mixes team and personal names,
/// or is a kind of request that does not run on a team vault.
pub fn route(request: Request) -> Result<(Option<String>, Request)> {
    let mut names: Vec<&mut String> = Vec::new();
    let mut request = request;
    let supported = match &mut request {
        Request::Add(n) => {
            names.push(&mut n.name);
            true
        }
        Request::Get { name }
        | Request::Show { name }
        | Request::Otp { name }
        | Request::Remove { name } => {
            names.push(name);
            true
        }
        Request::Edit(e) => {
            names.push(&mut e.name);
            true
        }
        Request::Rename { from, to } => {
            names.push(from);
            names.push(to);
            true
        }
        Request::List(f) => {
            if let Some(p) = f.pattern.as_mut() {
                names.push(p);
            }
            true
        }
        Request::Lifecycle(l) => match l {
            LifecycleRequest::Rotate { name, .. }
            | LifecycleRequest::History { name, .. }
            | LifecycleRequest::Rollback { name, .. }
            | LifecycleRequest::Disable { name }
            | LifecycleRequest::Enable { name }
            | LifecycleRequest::Revoke { name, .. } => {
                names.push(name);
                true
            }
            LifecycleRequest::Ack { name, .. } | LifecycleRequest::Log { name: Some(name) } => {
                names.push(name);
                true
            }
            _ => false,
        },
        Request::Integration(IntegrationRequest::Resolve(refs)) => {
            names.extend(refs.iter_mut().map(|r| &mut r.name));
            true
        }
        _ => false,
    };
    let teams: Vec<Option<String>> = names
        .iter()
        .map(|n| jeton::team::split(n).map(|(t, _)| t.to_owned()))
        .collect();
    let Some(first) = teams.first() else {
        return Ok((None, request));
    };
    if teams.iter().any(|t| t != first) {
        return Err(Error::Usage(
            "one command works on one vault: do not mix names of different teams (or a team and your own vault)".into(),
        ));
    }
    let Some(team) = first.clone() else {
        return Ok((None, request));
    };
    if !supported {
        return Err(Error::Usage(format!(
            "this command does not work on team entries ({team}:...) yet"
        )));
    }
    jeton::team::validate_name(&team)?;
    for n in names {
        let rest = n[team.len() + 1..].to_owned();
        *n = rest;
    }
    // `log TEAM:` is the whole team log.
    if let Request::Lifecycle(LifecycleRequest::Log { name }) = &mut request
        && name.as_deref() == Some("")
    {
        *name = None;
    }
    Ok((Some(team), request))
}

/// A response from a team vault, with its entry names given the team prefix again.
pub fn qualify(team: &str, response: Response) -> Response {
    let q = |n: &mut String| *n = format!("{team}:{n}");
    match response {
        Response::List(mut items) => {
            items.iter_mut().for_each(|s| q(&mut s.name));
            Response::List(items)
        }
        Response::Entry {
            mut entry,
            default_contact,
        } => {
            q(&mut entry.name);
            Response::Entry {
                entry,
                default_contact,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_team_name_is_routed_and_stripped_and_mixing_vaults_is_refused() {
        let (t, r) = route(Request::Get {
            name: "ops:github/ci".into(),
        })
        .unwrap();
        assert_eq!(t.as_deref(), Some("ops"));
        assert!(matches!(r, Request::Get { name } if name == "github/ci"));
        let (t, _) = route(Request::Get {
            name: "github/ci".into(),
        })
        .unwrap();
        assert_eq!(t, None);
        let err = route(Request::Rename {
            from: "ops:a".into(),
            to: "b".into(),
        })
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn log_of_a_team_alone_is_its_whole_log() {
        let log = |name: &str| {
            route(Request::Lifecycle(LifecycleRequest::Log {
                name: Some(name.into()),
            }))
            .unwrap()
        };
        let (t, r) = log("ops:");
        assert_eq!(t.as_deref(), Some("ops"));
        assert!(matches!(
            r,
            Request::Lifecycle(LifecycleRequest::Log { name: None })
        ));
        let (_, r) = log("ops:db");
        assert!(matches!(
            r,
            Request::Lifecycle(LifecycleRequest::Log { name: Some(n) }) if n == "db"
        ));
    }
}
