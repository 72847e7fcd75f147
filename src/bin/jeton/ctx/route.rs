//! `TEAM:NAME` in entry requests: which team a request is for, and the request with the
//! prefix taken off, to run on that team's vault like on any vault.

use jeton::integrations::IntegrationRequest;
use jeton::lifecycle::LifecycleRequest;
use jeton::request::{Request, Response};
use jeton::{Error, Result};

/// A request for a team vault, its names without the `TEAM:` prefix.
pub struct Routed {
    /// The team (`None`: the personal vault).
    pub team: Option<String>,
    /// The request, every `TEAM:` prefix removed.
    pub request: Request,
    /// The entry names it holds, without the prefix.
    pub names: Vec<String>,
}

/// The team a request names (`None`: the personal vault), and the request with every
/// `TEAM:` prefix removed. Refused when it names two teams, mixes team and personal names,
/// or is a kind of request that does not run on a team vault.
pub fn route(request: Request) -> Result<Routed> {
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
        return Ok(Routed {
            team: None,
            request,
            names: Vec::new(),
        });
    };
    if teams.iter().any(|t| t != first) {
        return Err(Error::Usage(
            "one command works on one vault: do not mix names of different teams (or a team and your own vault)".into(),
        ));
    }
    let Some(team) = first.clone() else {
        return Ok(Routed {
            team: None,
            request,
            names: Vec::new(),
        });
    };
    if !supported {
        return Err(Error::Usage(format!(
            "this command does not work on team entries ({team}:...) yet"
        )));
    }
    jeton::team::validate_name(&team)?;
    let mut stripped = Vec::with_capacity(names.len());
    for n in names {
        let rest = n[team.len() + 1..].to_owned();
        stripped.push(rest.clone());
        *n = rest;
    }
    // `log TEAM:` is the whole team log.
    if let Request::Lifecycle(LifecycleRequest::Log { name }) = &mut request
        && name.as_deref() == Some("")
    {
        *name = None;
    }
    Ok(Routed {
        team: Some(team),
        request,
        names: stripped,
    })
}

/// A response from a team vault, with its entry names given the team prefix again (`names`:
/// those the request held, found as words of a message such as "added NAME").
pub fn qualify(team: &str, names: &[String], response: Response) -> Response {
    let q = |n: &mut String| *n = format!("{team}:{n}");
    match response {
        Response::Done(msg) => {
            let words: Vec<String> = (msg.split(' '))
                .map(|w| {
                    let bare = w.strip_suffix(':').unwrap_or(w);
                    if !bare.is_empty() && names.iter().any(|n| n == bare) {
                        format!("{team}:{w}")
                    } else {
                        w.to_owned()
                    }
                })
                .collect();
            Response::Done(words.join(" "))
        }
        Response::List(mut items) => {
            items.iter_mut().for_each(|s| q(&mut s.name));
            Response::List(items)
        }
        Response::Entry {
            mut entry,
            default_contact,
            mut waiting,
        } => {
            q(&mut entry.name);
            waiting.iter_mut().for_each(|c| q(&mut c.name));
            Response::Entry {
                entry,
                default_contact,
                waiting,
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
        let r = route(Request::Get {
            name: "ops:github/ci".into(),
        })
        .unwrap();
        assert_eq!(r.team.as_deref(), Some("ops"));
        assert!(matches!(r.request, Request::Get { name } if name == "github/ci"));
        let r = route(Request::Get {
            name: "github/ci".into(),
        })
        .unwrap();
        assert_eq!(r.team, None);
        let err = route(Request::Rename {
            from: "ops:a".into(),
            to: "b".into(),
        })
        .err()
        .unwrap();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn a_team_entry_is_named_with_its_team_in_messages() {
        let names = ["github/deploy".to_owned()];
        let said = |m: &str| match qualify("ops", &names, Response::Done(m.into())) {
            Response::Done(m) => m,
            _ => unreachable!(),
        };
        assert_eq!(said("added github/deploy"), "added ops:github/deploy");
        assert_eq!(
            said("github/deploy: note set"),
            "ops:github/deploy: note set"
        );
        assert_eq!(said("added github/deployed"), "added github/deployed");
    }

    #[test]
    fn log_of_a_team_alone_is_its_whole_log() {
        let log = |name: &str| {
            route(Request::Lifecycle(LifecycleRequest::Log {
                name: Some(name.into()),
            }))
            .unwrap()
        };
        let r = log("ops:");
        assert_eq!(r.team.as_deref(), Some("ops"));
        assert!(matches!(
            r.request,
            Request::Lifecycle(LifecycleRequest::Log { name: None })
        ));
        let r = log("ops:db").request;
        assert!(matches!(
            r,
            Request::Lifecycle(LifecycleRequest::Log { name: Some(n) }) if n == "db"
        ));
    }
}
