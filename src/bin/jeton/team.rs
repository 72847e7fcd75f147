//! `team`: a live vault shared by a team through a git remote or a shared folder
//! (docs/GUIDE.md "How do I share a live vault with my team?"), and `TEAM:NAME` in entry
//! commands.
//!
//! The member list, keys and signatures are handled by team requests against the personal
//! vault (the agent, or this process after a passphrase); this module moves the team vault's
//! file and the remote's files.

use crate::commands::{Ctx, Exit, emit, unexpected};
use crate::output;
use clap::{Args, Subcommand, ValueEnum};
use jeton::request::{Request, Response, Session};
use jeton::store::Store;
use jeton::sync::remote::{Config, Published, Remote, Workspace};
use jeton::sync::round::Incoming;
use jeton::team::{Role, TeamRequest, TeamResponse};
use jeton::text::Shown;
use jeton::{Error, Result};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// Rounds tried when someone else keeps pushing in between.
const ATTEMPTS: usize = 5;

/// `team` subcommands.
#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Make a team vault synced through a remote, with you as its admin
    Create {
        /// The team's name (entries are then TEAM:NAME)
        team: String,
        #[command(flatten)]
        remote: TeamRemote,
    },
    /// Add a contact to a team (or change their role)
    Add {
        /// The team
        team: String,
        /// A contact with a jeton card (`jeton contact add`)
        contact: String,
        /// What they may do
        #[arg(long, value_enum, default_value_t = RoleArg::Writer)]
        role: RoleArg,
    },
    /// Join a team an admin added you to (the admin must be one of your contacts)
    Join {
        /// The team's git remote
        #[arg(required_unless_present = "dir", conflicts_with = "dir")]
        remote: Option<String>,
        /// The team's shared folder
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
        /// The local name of the team (default: its own)
        #[arg(long = "as", value_name = "TEAM")]
        name: Option<String>,
    },
    /// Remove a member: new key, and their entries to rotate listed by `check`
    Remove {
        /// The team
        team: String,
        /// The member (their name in the team, or your contact name for them)
        member: String,
    },
    /// Members, roles and fingerprints of one team or of all
    List {
        /// One team
        team: Option<String>,
    },
    /// Forget a team on this device
    Leave {
        /// The team
        team: String,
    },
}

/// Where a team syncs.
#[derive(Debug, Args)]
pub struct TeamRemote {
    /// A git remote: any URL or path `git clone` takes
    #[arg(long, required_unless_present = "dir", conflicts_with = "dir")]
    pub remote: Option<String>,
    /// A folder kept in sync by another tool
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

/// A member's role.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    /// Reads the team's entries
    Reader,
    /// Reads and writes them
    Writer,
    /// Also changes the member list
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Reader => Role::Reader,
            RoleArg::Writer => Role::Writer,
            RoleArg::Admin => Role::Admin,
        }
    }
}

pub fn run(ctx: &Ctx, c: TeamCommand) -> Result<Exit> {
    match c {
        TeamCommand::Create { team, remote } => {
            let remote = crate::sync::remote_of(remote.remote, remote.dir, true)?;
            create(ctx, &team, remote)
        }
        TeamCommand::Add {
            team,
            contact,
            role,
        } => {
            let r = team_request(
                ctx,
                TeamRequest::Add {
                    team: team.clone(),
                    contact,
                    role: role.into(),
                },
            )?;
            let TeamResponse::Changed {
                message, publish, ..
            } = r
            else {
                return Err(unexpected());
            };
            publish_only(ctx, &team, &publish)?;
            ctx.say(&message)?;
            Ok(Exit::Ok)
        }
        TeamCommand::Join { remote, dir, name } => {
            let remote = crate::sync::remote_of(remote, dir, false)?;
            join(ctx, remote, name)
        }
        TeamCommand::Remove { team, member } => remove(ctx, &team, member),
        TeamCommand::List { team } => list(ctx, team),
        TeamCommand::Leave { team } => {
            let r = team_request(ctx, TeamRequest::Leave { team: team.clone() })?;
            let TeamResponse::Done(msg) = r else {
                return Err(unexpected());
            };
            let path = team_path(ctx, &team);
            if let Some(ws) = Workspace::load(&path)? {
                ws.discard();
            }
            let _ = std::fs::remove_file(&path);
            ctx.say(&msg)?;
            Ok(Exit::Ok)
        }
    }
}

/// `<vault>.teams/`: the team vaults of this personal vault.
pub fn teams_dir(ctx: &Ctx) -> PathBuf {
    let mut s = ctx.session.store.path().as_os_str().to_owned();
    s.push(".teams");
    PathBuf::from(s)
}

/// The local file of team `team`'s vault.
pub fn team_path(ctx: &Ctx, team: &str) -> PathBuf {
    teams_dir(ctx).join(format!("{team}.jeton"))
}

fn make_private_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create", dir, e))
}

fn team_store(ctx: &Ctx, team: &str) -> Store {
    Store::new(team_path(ctx, team), ctx.session.store.lock_timeout())
}

fn team_request(ctx: &Ctx, r: TeamRequest) -> Result<TeamResponse> {
    let Response::Team(r) = ctx.run(Request::Team(r))? else {
        return Err(unexpected());
    };
    Ok(*r)
}

fn workspace(ctx: &Ctx, team: &str) -> Result<Workspace> {
    Workspace::load(&team_path(ctx, team))?.ok_or_else(|| {
        Error::NotFound(format!(
            "team {team} has no local copy on this device: `jeton team join` it"
        ))
    })
}

fn create(ctx: &Ctx, team: &str, remote: Remote) -> Result<Exit> {
    jeton::team::validate_name(team)?;
    let store = team_store(ctx, team);
    if store.exists() {
        return Err(Error::Exists(format!("a team named '{team}' exists here")));
    }
    let config = Config {
        remote,
        vault: String::new(),
    };
    store.create_dir()?;
    make_private_dir(&teams_dir(ctx))?;
    let ws = Workspace::create(store.path(), config)?;
    let made = (|| {
        let guard = ws.lock(store.lock_timeout())?;
        let pulled = ws.pull()?;
        if pulled.descriptor.is_some() || !pulled.files.is_empty() {
            return Err(Error::Exists(format!(
                "the remote ({}) already holds a vault; name an empty one",
                ws.config.remote
            )));
        }
        let TeamResponse::Created { id, vault, publish } =
            team_request(ctx, TeamRequest::Create { team: team.into() })?
        else {
            return Err(unexpected());
        };
        store.create_dir()?;
        let lock = store.lock()?;
        store.create(&vault, &lock)?;
        let ws = ws.with_config(Config {
            remote: ws.config.remote.clone(),
            vault: id,
        });
        ws.save_config()?;
        let published =
            ws.publish_files(&ws.descriptor(), &publish, &[], pulled.head.as_deref())?;
        drop(guard);
        Ok(published)
    })();
    match made {
        Ok(_) => {
            ctx.say(&format!(
                "team {team} created with you as admin; add members with `jeton team add {team} CONTACT`, then they run `jeton team join`"
            ))?;
            Ok(Exit::Ok)
        }
        Err(e) => {
            if !store.exists() {
                ws.discard();
            }
            Err(e)
        }
    }
}

/// Publishes member-list files, pulling again when someone pushed in between.
fn publish_only(ctx: &Ctx, team: &str, files: &[(String, Incoming)]) -> Result<()> {
    let ws = workspace(ctx, team)?;
    let _guard = ws.lock(ctx.session.store.lock_timeout())?;
    for _ in 0..ATTEMPTS {
        let pulled = ws.pull()?;
        ws.check(&pulled)?;
        if ws.publish_files(&ws.descriptor(), files, &[], pulled.head.as_deref())?
            == Published::Done
        {
            return Ok(());
        }
    }
    Err(Error::Busy(format!(
        "the remote changed during each of {ATTEMPTS} tries; run `jeton sync` to publish the change"
    )))
}

fn join(ctx: &Ctx, remote: Remote, name: Option<String>) -> Result<Exit> {
    if let Some(n) = &name {
        jeton::team::validate_name(n)?;
    }
    let dir = teams_dir(ctx);
    ctx.session.store.create_dir()?;
    make_private_dir(&dir)?;
    // Read the remote in a scratch workspace: the team's local name is known only once its
    // member list is read.
    let scratch = Workspace::create(
        &dir.join(".joining.jeton"),
        Config {
            remote: remote.clone(),
            vault: String::new(),
        },
    );
    let scratch = match scratch {
        Ok(ws) => ws,
        Err(_) => {
            if let Some(ws) = Workspace::load(&dir.join(".joining.jeton"))? {
                ws.discard();
            }
            Workspace::create(
                &dir.join(".joining.jeton"),
                Config {
                    remote: remote.clone(),
                    vault: String::new(),
                },
            )?
        }
    };
    let pulled = scratch.pull();
    scratch.discard();
    let pulled = pulled?;
    let Some(d) = pulled.descriptor.clone() else {
        return Err(Error::NotFound(format!(
            "no team vault at {remote} (nothing published there yet)"
        )));
    };
    let r = team_request(
        ctx,
        TeamRequest::Join {
            name,
            members: pulled.members,
            replicas: pulled.files,
        },
    )?;
    let TeamResponse::Joined {
        name,
        id,
        role,
        added_by,
        vault,
        publish,
        ignored,
    } = r
    else {
        return Err(unexpected());
    };
    if id != d.vault {
        return Err(Error::Integrity(
            "the remote's member list belongs to another vault than its descriptor names".into(),
        ));
    }
    for w in &ignored {
        eprintln!("jeton: warning: {}", Shown::line(w));
    }
    let store = team_store(ctx, &name);
    let lock = store.lock()?;
    store.create(&vault, &lock)?;
    drop(lock);
    let ws = match Workspace::load(store.path())? {
        Some(ws) => ws,
        None => Workspace::create(store.path(), Config { remote, vault: id })?,
    };
    ws.save_config()?;
    publish_only(ctx, &name, &publish)?;
    ctx.say(&format!(
        "joined team {name} as {}; added by your contact {} ({}); its entries are {name}:NAME",
        role.label(),
        Shown::line(&added_by.0),
        added_by.1
    ))?;
    Ok(Exit::Ok)
}

fn remove(ctx: &Ctx, team: &str, member: String) -> Result<Exit> {
    let store = team_store(ctx, team);
    let lock = store.lock()?;
    let bytes = store.read()?.to_bytes();
    let r = team_request(
        ctx,
        TeamRequest::Remove {
            team: team.into(),
            member,
            vault: bytes,
        },
    )?;
    let TeamResponse::Changed {
        message,
        vault,
        publish,
    } = r
    else {
        return Err(unexpected());
    };
    if let Some(v) = vault {
        store.replace(&v, &lock, jeton::store::Previous::Forget)?;
    }
    drop(lock);
    publish_only(ctx, team, &publish)?;
    // Publish the vault under the new key at once.
    sync_team(ctx, team)?;
    ctx.say(&message)?;
    Ok(Exit::Ok)
}

/// One round of team `team`: pull, merge in the personal vault's request, save, publish.
pub fn sync_team(ctx: &Ctx, team: &str) -> Result<jeton::sync::round::Round> {
    let ws = workspace(ctx, team)?;
    let store = team_store(ctx, team);
    let _guard = ws.lock(store.lock_timeout())?;
    let mut done = jeton::sync::round::Round::default();
    for _ in 0..ATTEMPTS {
        let pulled = ws.pull()?;
        ws.check(&pulled)?;
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
            store.replace(&v, &lock, jeton::store::Previous::Keep)?;
        }
        drop(lock);
        done = done.then(*round);
        if publish.is_empty()
            || ws.publish_files(
                &ws.descriptor(),
                &publish,
                &done.merged_copies,
                pulled.head.as_deref(),
            )? == Published::Done
        {
            return Ok(done);
        }
    }
    Err(Error::Busy(format!(
        "the remote of team {team} changed during each of {ATTEMPTS} rounds; run `jeton sync` again"
    )))
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

fn list(ctx: &Ctx, team: Option<String>) -> Result<Exit> {
    let TeamResponse::Listed(teams) = team_request(ctx, TeamRequest::List { team })? else {
        return Err(unexpected());
    };
    if ctx.json {
        let v = serde_json::to_value(&teams)
            .map_err(|e| Error::Other(format!("cannot encode: {e}")))?;
        emit(output::json_line(&v).as_bytes())?;
        return Ok(Exit::Ok);
    }
    let mut out = String::new();
    for t in &teams {
        out.push_str(&format!("{} (epoch {})\n", Shown::line(&t.name), t.epoch));
        for m in &t.members {
            out.push_str(&format!(
                "  {:<20} {:<8} {}{}\n",
                Shown::line(&m.name).to_string(),
                m.role,
                m.fingerprint,
                if m.you { "  (you)" } else { "" }
            ));
        }
    }
    if teams.is_empty() {
        out.push_str("no teams: make one with `jeton team create TEAM --remote REMOTE`\n");
    }
    emit(out.as_bytes())?;
    Ok(Exit::Ok)
}

/// Runs an entry request on the team vault it names (`TEAM:NAME`); `None` when it names no
/// team.
pub fn run_routed(ctx: &Ctx, request: Request) -> Result<std::result::Result<Response, Request>> {
    let (team, request) = jeton::team::route::route(request)?;
    let Some(team) = team else {
        return Ok(Err(request));
    };
    let TeamResponse::Opened { key, role, .. } =
        team_request(ctx, TeamRequest::Open { team: team.clone() })?
    else {
        return Err(unexpected());
    };
    let writes = request.writes();
    if writes && role < Role::Writer {
        return Err(Error::Usage(format!(
            "you are a {} of team {team}: only writers and admins change its entries",
            role.label()
        )));
    }
    let store = team_store(ctx, &team);
    if !store.exists() {
        return Err(Error::NotFound(format!(
            "team {team} has no local copy on this device: `jeton team join` it"
        )));
    }
    let session = Session {
        store,
        state_dir: ctx.session.state_dir.clone(),
        accept_rollback: ctx.session.accept_rollback,
    };
    let outcome = session.with_vault_key(
        writes,
        |_| Ok(key),
        |v| jeton::request::execute(v, request, jeton::time::now()),
    )?;
    crate::commands::warn_all(&outcome.warnings);
    Ok(Ok(jeton::team::route::qualify(&team, outcome.value)))
}

/// `check` on every team vault with a local copy: (entries checked, findings named TEAM:NAME).
pub fn check_teams(ctx: &Ctx, within: i64) -> Result<(usize, Vec<jeton::lifecycle::Finding>)> {
    use jeton::lifecycle::{LifecycleRequest, LifecycleResponse};
    let mut checked = 0;
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
        }) = outcome.value
        else {
            return Err(unexpected());
        };
        checked += n;
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
    Ok((checked, out))
}
