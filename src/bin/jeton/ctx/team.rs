//! Team vaults under every command: `TEAM:NAME` in entry requests, the local copies of team
//! vaults, and a team's sync round (used by `team`, `sync` and `check`).

use super::{Ctx, unexpected, warn_all};
use jeton::agent::client::Via;
use jeton::request::{Request, Response, Session};
use jeton::store::Store;
use jeton::sync::driver;
use jeton::sync::remote::Workspace;
use jeton::team::{TeamRequest, TeamResponse};
use jeton::text::Shown;
use jeton::{Error, Result};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// Rounds tried when someone else keeps pushing in between.
pub const ATTEMPTS: usize = driver::ATTEMPTS;

/// `<vault>.teams/`: the team vaults of this personal vault.
pub fn teams_dir(ctx: &Ctx) -> PathBuf {
    jeton::team::teams_dir(ctx.session.store.path())
}

/// The local file of team `team`'s vault.
pub fn team_path(ctx: &Ctx, team: &str) -> PathBuf {
    jeton::team::local_path(ctx.session.store.path(), team)
}

pub fn make_private_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create", dir, e))
}

pub fn team_store(ctx: &Ctx, team: &str) -> Store {
    Store::new(team_path(ctx, team), ctx.session.store.lock_timeout())
}

pub fn team_request(ctx: &Ctx, r: TeamRequest) -> Result<TeamResponse> {
    let Response::Team(r) = ctx.run(Request::Team(r))? else {
        return Err(unexpected());
    };
    Ok(*r)
}

pub fn workspace(ctx: &Ctx, team: &str) -> Result<Workspace> {
    Workspace::load(&team_path(ctx, team))?.ok_or_else(|| jeton::team::no_local_copy(team))
}

/// One round of team `team`: pull, merge in the personal vault's request, save, publish.
pub fn sync_team(ctx: &Ctx, team: &str) -> Result<jeton::sync::round::Round> {
    let ws = workspace(ctx, team)?;
    let store = team_store(ctx, team);
    let _guard = ws.lock(store.lock_timeout())?;
    let mut transport = ws.with_config(ws.config.clone());
    let done = driver::drive(&mut transport, false, |pulled| {
        let lock = store.lock()?;
        let bytes = store.read()?.to_bytes();
        let r = team_request(
            ctx,
            TeamRequest::Round {
                team: team.into(),
                vault: bytes,
                members: pulled.members,
                replicas: pulled.files,
                accept_rollback: ctx.session.accept_rollback,
            },
        )?;
        let TeamResponse::Rounded {
            round,
            vault,
            publish,
            ignored,
        } = r
        else {
            return Err(unexpected());
        };
        for w in &ignored {
            eprintln!("jeton: warning: team {team}: {}", Shown::line(w));
        }
        if let Some(v) = vault {
            let previous = if round.wiped {
                jeton::store::Previous::Forget
            } else {
                jeton::store::Previous::Keep
            };
            store.replace(&v, &lock, previous)?;
        }
        Ok(driver::Ran {
            round: *round,
            publish,
        })
    })?;
    done.ok_or_else(|| {
        Error::Busy(format!(
            "the remote of team {team} changed during each of {ATTEMPTS} rounds; run `jeton sync` again"
        ))
    })
}

/// The names of this vault's teams.
pub fn team_names(ctx: &Ctx) -> Result<Vec<String>> {
    if !teams_dir(ctx).is_dir() {
        return Ok(Vec::new());
    }
    let TeamResponse::Listed(teams) = team_request(ctx, TeamRequest::List { team: None })? else {
        return Err(unexpected());
    };
    Ok(teams.into_iter().map(|t| t.name).collect())
}

/// Runs an entry request on the team vault it names (`TEAM:NAME`); `None` when it names no
/// team.
pub fn run_routed(ctx: &Ctx, request: Request) -> Result<std::result::Result<Response, Request>> {
    let super::route::Routed {
        team,
        request,
        names,
    } = super::route::route(request)?;
    let Some(team) = team else {
        return Ok(Err(request));
    };
    match jeton::agent::client::run_team(&ctx.session, &team, &request)? {
        Via::Agent(outcome) => {
            warn_all(&outcome.warnings);
            return Ok(Ok(super::route::qualify(&team, &names, outcome.value)));
        }
        Via::Local(Some(note)) => eprintln!("jeton: warning: {note}"),
        Via::Local(None) => {}
    }
    let TeamResponse::Opened { key, role, .. } =
        team_request(ctx, TeamRequest::Open { team: team.clone() })?
    else {
        return Err(unexpected());
    };
    let writes = request.writes();
    jeton::team::check_access(&team, role, writes)?;
    let store = team_store(ctx, &team);
    if !store.exists() {
        return Err(jeton::team::no_local_copy(&team));
    }
    let session = Session {
        store,
        state_dir: ctx.session.state_dir.clone(),
        accept_rollback: ctx.session.accept_rollback,
    };
    let outcome = session.with_vault_key(
        writes,
        |_| Ok(key),
        |v| {
            let mark = v.audit_written();
            let value = jeton::request::execute(v, request, jeton::time::now())?;
            // What this command logged is signed with the member's identity, in the personal
            // vault, before the team vault is saved.
            let events = v.audit_since(mark).to_vec();
            if !events.is_empty() {
                let sign = TeamRequest::Sign {
                    team: team.clone(),
                    events,
                };
                let TeamResponse::Signed(signed) = team_request(ctx, sign)? else {
                    return Err(unexpected());
                };
                signed.into_iter().for_each(|e| v.audit_event(e));
            }
            Ok(value)
        },
    )?;
    warn_all(&outcome.warnings);
    Ok(Ok(super::route::qualify(&team, &names, outcome.value)))
}

/// `check` on every team vault with a local copy: (entries checked, findings named TEAM:NAME,
/// findings hidden by acknowledgements).
pub fn check_teams(
    ctx: &Ctx,
    within: i64,
) -> Result<(usize, Vec<jeton::lifecycle::Finding>, usize)> {
    use jeton::lifecycle::{LifecycleRequest, LifecycleResponse};
    let mut checked = 0;
    let mut acknowledged = 0;
    let mut out = Vec::new();
    for team in team_names(ctx)? {
        if !team_store(ctx, &team).exists() {
            continue;
        }
        let TeamResponse::Opened { key, .. } =
            team_request(ctx, TeamRequest::Open { team: team.clone() })?
        else {
            return Err(unexpected());
        };
        let session = Session {
            store: team_store(ctx, &team),
            state_dir: None,
            accept_rollback: ctx.session.accept_rollback,
        };
        let outcome = session.with_vault_key(
            false,
            |_| Ok(key),
            |v| {
                jeton::request::execute(
                    v,
                    Request::Lifecycle(LifecycleRequest::Check { within }),
                    jeton::time::now(),
                )
            },
        )?;
        let Response::Lifecycle(LifecycleResponse::Findings {
            checked: n,
            findings,
            acknowledged: a,
        }) = outcome.value
        else {
            return Err(unexpected());
        };
        checked += n;
        acknowledged += a;
        out.extend(findings.into_iter().map(|mut f| {
            f.entry = Some(match f.entry {
                Some(e) => {
                    // The commands in the fix name the entry as the team's.
                    for end in [" ", "`"] {
                        f.fix = f
                            .fix
                            .replace(&format!(" {e}{end}"), &format!(" {team}:{e}{end}"));
                    }
                    format!("{team}:{e}")
                }
                None => format!("{team}:"),
            });
            f
        }));
    }
    Ok((checked, out, acknowledged))
}
