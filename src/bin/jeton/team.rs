//! `team`: a live vault shared by a team through a git remote or a shared folder
//! (docs/GUIDE.md "How do I share a live vault with my team?"), and `TEAM:NAME` in entry
//! commands.
//!
//! The member list, keys and signatures are handled by team requests against the personal
//! vault (the agent, or this process after a passphrase); this module moves the team vault's
//! file and the remote's files.

use crate::ctx::team::{
    ATTEMPTS, make_private_dir, team_path, team_request, team_store, teams_dir, workspace,
};
use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output;
use clap::{Args, Subcommand, ValueEnum};
use jeton::sync::remote::{Config, Published, Remote, Workspace};
use jeton::sync::round::Incoming;
use jeton::team::{Role, TeamRequest, TeamResponse};
use jeton::text::Shown;
use jeton::{Error, Result};
use std::path::PathBuf;

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
    /// Carry a team's member list over to the current format (an admin; once)
    Upgrade {
        /// The team
        team: String,
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
            let remote = crate::args::remote(remote.remote, remote.dir, true)?;
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
            let remote = crate::args::remote(remote, dir, false)?;
            join(ctx, remote, name)
        }
        TeamCommand::Remove { team, member } => remove(ctx, &team, member),
        TeamCommand::Upgrade { team } => {
            let r = team_request(ctx, TeamRequest::Upgrade { team: team.clone() })?;
            let TeamResponse::Changed {
                message, publish, ..
            } = r
            else {
                return Err(unexpected());
            };
            if !publish.is_empty() {
                publish_only(ctx, &team, &publish)?;
            }
            ctx.say(&message)?;
            Ok(Exit::Ok)
        }
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

fn create(ctx: &Ctx, team: &str, remote: Remote) -> Result<Exit> {
    jeton::team::validate_name(team)?;
    let store = team_store(ctx, team);
    if store.exists() {
        return Err(Error::Exists(format!("a team named '{team}' exists here")));
    }
    let config = Config {
        remote,
        vault: String::new(),
        read_only: false,
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
            vault: id,
            ..ws.config.clone()
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
            read_only: false,
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
                    read_only: false,
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
        None => Workspace::create(
            store.path(),
            Config {
                remote,
                vault: id,
                read_only: false,
            },
        )?,
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
    crate::ctx::team::sync_team(ctx, team)?;
    ctx.say(&message)?;
    Ok(Exit::Ok)
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
