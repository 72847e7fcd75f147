//! `sync`: one vault on several devices through a git remote or a shared folder
//! (docs/GUIDE.md "How do I use one vault on several machines?").
//!
//! The files move here; the merge runs wherever the key is (the agent, or this process after a
//! passphrase), as a request like any other.

use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output;
use clap::{Args, Subcommand};
use jeton::request::{Request, Response};
use jeton::sync::driver;
use jeton::sync::remote::{
    Config, Descriptor, LAYOUT, Published, Pulled, REPLICAS, Remote, Workspace,
};
use jeton::sync::round::{self, Round};
use jeton::sync::{SyncRequest, SyncResponse};
use jeton::text::Shown;
use jeton::time::{self, Time};
use jeton::vault::Vault;
use jeton::{Error, Result};
use std::path::{Path, PathBuf};

/// `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
    /// Name the entries a round sent and received
    #[arg(short, long)]
    pub verbose: bool,
    /// Take the key and passphrase set on another device (after its `passwd`)
    #[arg(long)]
    pub adopt_key: bool,
    /// Read that passphrase from this open file descriptor
    #[arg(long, value_name = "N", requires = "adopt_key")]
    pub new_passphrase_fd: Option<u32>,
}

/// `sync` subcommands; none runs one round.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Attach this vault to a git remote (or a shared folder) and publish it
    Init(RemoteArgs),
    /// Make this device's vault from a remote another device published to
    Clone(CloneArgs),
    /// Show the remote, the last round and every device heard from
    Status,
    /// Give this device a name the other devices show (default: the host name)
    RenameDevice {
        /// The new name
        name: String,
    },
    /// Forget another device: its replica leaves the remote, what it published stays merged
    Forget {
        /// Its name or the start of its id (`jeton sync status`)
        device: String,
    },
    /// Rewrite a git remote's branch to one commit of its current files (the history of
    /// every file pushed before leaves it; a server keeps the space until its own `git gc`)
    Compact,
    /// Answer the conflicts on entries: keep the current values, or take the other device's
    Resolve {
        /// The entries
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        names: Vec<String>,
        /// Every entry with an open conflict
        #[arg(long)]
        all: bool,
        /// Take the other device's value of each field changed on two devices at once
        #[arg(long)]
        take_other: bool,
    },
}

/// `sync clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Only read the remote: publish nothing, now or later (a CI job, a throwaway machine)
    #[arg(long)]
    pub read_only: bool,
}

/// Where to sync.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// A git remote: any URL or path `git clone` takes
    #[arg(required_unless_present = "dir", conflicts_with = "dir")]
    pub remote: Option<String>,
    /// A folder kept in sync by another tool (Syncthing, Dropbox, NFS)
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, a: SyncArgs) -> Result<Exit> {
    if a.adopt_key && a.command.is_some() {
        return Err(Error::Usage(
            "--adopt-key goes with `jeton sync` alone".into(),
        ));
    }
    match a.command {
        None if a.adopt_key => adopt_key(ctx, a.new_passphrase_fd),
        None => {
            let teams = crate::ctx::team::team_names(ctx)?;
            let personal = Workspace::load(vault_path(ctx))?;
            if personal.is_none() && !teams.is_empty() {
                return sync_teams(ctx, &teams, a.verbose);
            }
            let ws = workspace(ctx)?;
            let r = rounds(ctx, &ws)?;
            report(ctx, &ws, &r, a.verbose, "synced")?;
            sync_teams(ctx, &teams, a.verbose)
        }
        Some(SyncCommand::Init(r)) => {
            init(ctx, crate::args::remote(r.remote, r.dir, true)?, a.verbose)
        }
        Some(SyncCommand::Clone(c)) => {
            let remote = crate::args::remote(c.remote.remote, c.remote.dir, false)?;
            clone(ctx, remote, c.read_only, a.verbose)
        }
        Some(SyncCommand::Status) => status(ctx),
        Some(SyncCommand::Compact) => compact(ctx),
        Some(SyncCommand::Resolve {
            names,
            all,
            take_other,
        }) => resolve(ctx, names, all, take_other),
        Some(SyncCommand::RenameDevice { name }) => {
            match run_sync(ctx, SyncRequest::RenameDevice(name))? {
                SyncResponse::Renamed(name) => ctx.say(&format!(
                    "this device is now {}; the others see it after `jeton sync`",
                    Shown::line(&name)
                ))?,
                _ => return Err(unexpected()),
            }
            Ok(Exit::Ok)
        }
        Some(SyncCommand::Forget { device }) => {
            match run_sync(ctx, SyncRequest::Forget(device))? {
                SyncResponse::Forgot(id) => ctx.say(&format!(
                    "forgot device {}: its replica leaves the remote at the next `jeton sync`",
                    &id[..16]
                ))?,
                _ => return Err(unexpected()),
            }
            Ok(Exit::Ok)
        }
    }
}

fn run_sync(ctx: &Ctx, request: SyncRequest) -> Result<SyncResponse> {
    let Response::Sync(r) = ctx.run(Request::Sync(request))? else {
        return Err(unexpected());
    };
    Ok(*r)
}

fn resolve(ctx: &Ctx, names: Vec<String>, all: bool, take_other: bool) -> Result<Exit> {
    let request = SyncRequest::Resolve {
        names,
        all,
        take_other,
    };
    let Response::Sync(r) = ctx.run(Request::Sync(request))? else {
        return Err(unexpected());
    };
    let SyncResponse::Resolved(done) = *r else {
        return Err(unexpected());
    };
    if ctx.json {
        let v: Vec<_> = (done.iter())
            .map(|(name, had)| serde_json::json!({"name": name, "resolved": had}))
            .collect();
        emit(output::json_line(&serde_json::Value::from(v)).as_bytes())?;
        return Ok(Exit::Ok);
    }
    if done.is_empty() {
        ctx.say("no open conflict")?;
    }
    for (name, had) in &done {
        let name = Shown::line(name);
        ctx.say(&if *had && take_other {
            format!("conflict on {name} answered: took the other device's values")
        } else if *had {
            format!("conflict on {name} answered: kept the current values")
        } else {
            format!("no open conflict on {name}")
        })?;
    }
    if done.iter().any(|(_, had)| *had) {
        ctx.say("run `jeton sync` to tell the other devices")?;
    }
    Ok(Exit::Ok)
}

fn vault_path(ctx: &Ctx) -> &Path {
    ctx.session.store.path()
}

fn workspace(ctx: &Ctx) -> Result<Workspace> {
    Workspace::load(vault_path(ctx))?.ok_or_else(|| {
        Error::NotFound(
            "this vault does not sync: attach it with `jeton sync init REMOTE` (or `--dir PATH`)"
                .into(),
        )
    })
}

fn descriptor(ws: &Workspace) -> Descriptor {
    Descriptor {
        format: "jeton-sync".into(),
        layout: LAYOUT,
        vault: ws.config.vault.clone(),
    }
}

/// Refuses a remote that holds something other than this vault.
fn check_remote(ws: &Workspace, pulled: &Pulled) -> Result<()> {
    match &pulled.descriptor {
        Some(d) if d.vault == ws.config.vault => Ok(()),
        Some(_) => Err(Error::Integrity(format!(
            "the remote ({}) holds another vault; nothing was merged or published",
            ws.config.remote
        ))),
        None if pulled.files.is_empty() && pulled.head.is_none() => Ok(()),
        None => Err(Error::Integrity(format!(
            "the remote ({}) is not a jeton sync remote (no {}); nothing was merged or published",
            ws.config.remote,
            jeton::sync::remote::DESCRIPTOR
        ))),
    }
}

/// Runs rounds until one publishes, or someone else pushed in between every time (exit 7).
fn rounds(ctx: &Ctx, ws: &Workspace) -> Result<Round> {
    let _guard = ws.lock(ctx.session.store.lock_timeout())?;
    let read_only = ws.config.read_only;
    let mut transport = ws.with_config(ws.config.clone());
    let done = driver::drive(&mut transport, read_only, |pulled| {
        let request = SyncRequest::Round {
            incoming: pulled.files,
            accept_rollback: ctx.session.accept_rollback,
        };
        let SyncResponse::Round(round) = run_sync(ctx, request)? else {
            return Err(unexpected());
        };
        let publish = (round.replica.iter())
            .map(|r| (REPLICAS.to_owned(), r.clone()))
            .collect();
        Ok(driver::Ran {
            round: *round,
            publish,
        })
    })?;
    done.ok_or_else(|| {
        Error::Busy(format!(
            "the remote changed during each of {} rounds (other devices syncing); this vault is merged and saved, run `jeton sync` again to publish",
            driver::ATTEMPTS
        ))
    })
}

fn init(ctx: &Ctx, remote: Remote, verbose: bool) -> Result<Exit> {
    let store = &ctx.session.store;
    if !store.exists() {
        return Err(Error::NotFound(format!(
            "no vault at {}: make one with `jeton init`, or copy one from another device with `jeton sync clone REMOTE`",
            store.path().display()
        )));
    }
    if Workspace::load(vault_path(ctx))?.is_some() {
        return Err(Error::Exists(
            "this vault already syncs (see `jeton sync status`)".into(),
        ));
    }
    let vault_hex = jeton::share::hex(&store.read()?.header.vault_id);
    let config = Config {
        remote,
        vault: vault_hex,
        read_only: false,
    };
    let ws = Workspace::create(vault_path(ctx), config)?;
    let attached = (|| {
        {
            let _guard = ws.lock(store.lock_timeout())?;
            let pulled = ws.pull()?;
            check_remote(&ws, &pulled)?;
            if let Remote::Dir(dir) = &ws.config.remote
                && pulled.descriptor.is_none()
                && std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some())
            {
                return Err(Error::Exists(format!(
                    "{} is not empty and holds no jeton vault; name an empty folder",
                    dir.display()
                )));
            }
        }
        let Response::Sync(r) = ctx.run(Request::Sync(SyncRequest::Attach))? else {
            return Err(unexpected());
        };
        let SyncResponse::Attached { .. } = *r else {
            return Err(unexpected());
        };
        rounds(ctx, &ws)
    })();
    match attached {
        Ok(round) => report(ctx, &ws, &round, verbose, "attached and published"),
        Err(e) => {
            ws.discard();
            Err(e)
        }
    }
}

fn clone(ctx: &Ctx, remote: Remote, read_only: bool, verbose: bool) -> Result<Exit> {
    let store = &ctx.session.store;
    if store.exists() {
        return Err(Error::Exists(format!(
            "a vault exists at {}; `sync clone` makes a new one (use --vault PATH for another file, or `jeton sync init` to attach this one)",
            store.path().display()
        )));
    }
    store.create_dir()?;
    let config = Config {
        remote,
        vault: String::new(),
        read_only,
    };
    let ws = Workspace::create(vault_path(ctx), config)?;
    let cloned = (|| {
        let _guard = ws.lock(store.lock_timeout())?;
        let pulled = ws.pull()?;
        let Some(d) = &pulled.descriptor else {
            return Err(match pulled.head.is_some() || !pulled.files.is_empty() {
                true => Error::Integrity(format!(
                    "the remote ({}) is not a jeton sync remote",
                    ws.config.remote
                )),
                false => Error::NotFound(format!(
                    "no jeton vault at {} yet: publish one from another device with `jeton sync init`",
                    ws.config.remote
                )),
            });
        };
        let ask = ctx.ask();
        let (mut vault, round) = round::clone_from(
            &pulled.files,
            |file| Vault::unlock(file, &ask()?),
            time::now(),
        )?;
        if jeton::share::hex(vault.id()) != d.vault {
            return Err(Error::Integrity(
                "the remote's replicas belong to another vault than its descriptor names".into(),
            ));
        }
        let ws = ws_with_vault(&ws, &d.vault);
        let guard = store.lock()?;
        let bytes = vault.seal(0)?;
        store.create(&bytes, &guard)?;
        vault.saved();
        let mut warnings = Vec::new();
        ctx.session.remember(&vault, &mut warnings);
        crate::ctx::warn_all(&warnings);
        drop(guard);
        ws.save_config()?;
        if read_only {
            let round = Round {
                replica: None,
                merged_copies: Vec::new(),
                forgotten: Vec::new(),
                ..round
            };
            return Ok((round, Published::Done));
        }
        let published = ws.publish(
            &descriptor(&ws),
            round.replica.as_ref(),
            &round.to_remove(),
            pulled.head.as_deref(),
        )?;
        Ok((round, published))
    })();
    match cloned {
        Ok((round, published)) => {
            let ws = workspace(ctx)?;
            let round = match published {
                Published::Done => round,
                Published::Raced => rounds(ctx, &ws)?,
            };
            report(ctx, &ws, &round, verbose, "cloned")
        }
        Err(e) => {
            if !store.exists() {
                ws.discard();
            }
            Err(e)
        }
    }
}

/// One round of every team vault; a team that fails is reported and the others still run.
fn sync_teams(ctx: &Ctx, teams: &[String], verbose: bool) -> Result<Exit> {
    let mut failed = None;
    for t in teams {
        match crate::ctx::team::sync_team(ctx, t) {
            Ok(r) => {
                let ws = Workspace::load(&crate::ctx::team::team_path(ctx, t))?
                    .ok_or_else(|| Error::NotFound(format!("team {t} has no local copy")))?;
                report(ctx, &ws, &r, verbose, &format!("team {t} synced"))?;
            }
            Err(e) => {
                eprintln!(
                    "jeton: team {}: {}",
                    Shown::line(t),
                    Shown::line(&e.to_string())
                );
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(Exit::Ok),
    }
}

fn ws_with_vault(ws: &Workspace, vault: &str) -> Workspace {
    ws.with_config(Config {
        vault: vault.to_owned(),
        ..ws.config.clone()
    })
}

/// `sync compact`: the branch becomes one commit of the files every device reads now.
fn compact(ctx: &Ctx) -> Result<Exit> {
    use jeton::sync::remote::Compacted;
    let ws = workspace(ctx)?;
    let _guard = ws.lock(ctx.session.store.lock_timeout())?;
    for _ in 0..driver::ATTEMPTS {
        let pulled = ws.pull()?;
        check_remote(&ws, &pulled)?;
        let said = match ws.compact(pulled.head.as_deref())? {
            Compacted::Raced => continue,
            Compacted::Done => {
                "the remote's branch is now one commit holding its current files; \
                 a server you run frees the space at its next `git gc`"
            }
            Compacted::Folder => "a shared folder keeps no history: nothing to compact",
            Compacted::Empty => "the remote holds nothing yet: nothing to compact",
        };
        ctx.say(said)?;
        return Ok(Exit::Ok);
    }
    Err(Error::Busy(
        "the remote kept moving (other devices syncing); nothing was rewritten: try again".into(),
    ))
}

fn adopt_key(ctx: &Ctx, fd: Option<u32>) -> Result<Exit> {
    let ws = workspace(ctx)?;
    let _guard = ws.lock(ctx.session.store.lock_timeout())?;
    let pulled = ws.pull()?;
    check_remote(&ws, &pulled)?;
    let source = crate::prompt::new_passphrase_source(fd)?;
    let p = crate::prompt::existing_passphrase(source, "the passphrase set on the other device")?;
    let request = SyncRequest::AdoptKey {
        incoming: pulled.files,
        passphrase: jeton::secret::Token::new(p.expose_secret().to_owned()),
    };
    let Response::Sync(r) = ctx.run(Request::Sync(request))? else {
        return Err(unexpected());
    };
    let SyncResponse::Adopted(from) = *r else {
        return Err(unexpected());
    };
    ctx.say(&format!(
        "this vault now opens with the passphrase set on another device (key taken from replica {}); run `jeton sync`",
        Shown::line(&from)
    ))?;
    crate::ctx::forget_agent_key(ctx)?;
    Ok(Exit::Ok)
}

fn report(ctx: &Ctx, ws: &Workspace, r: &Round, verbose: bool, what: &str) -> Result<Exit> {
    // A read-only device sends nothing: its local changes stay here.
    let ro = ws.config.read_only;
    let (sent, unpublished): (&[String], &[String]) = match ro {
        true => (&[], &r.sent),
        false => (&r.sent, &[]),
    };
    if ctx.json {
        let v = serde_json::json!({
            "ok": true,
            "remote": ws.config.remote.to_string(),
            "published": r.replica.is_some(),
            "devices": r.devices,
            "received": r.received,
            "sent": sent,
            "read_only": ro,
            "unpublished": unpublished,
            "removed_here": r.removed_here,
            "removed_by_others": r.removed_by_others,
            "conflicts": r.conflicts,
            "kept_over_removal": r.kept_over_removal,
            "renamed": r.renamed,
            "merged_conflict_copies": r.merged_copies,
            "rollbacks_accepted": r.rollbacks_accepted,
            "other_key": r.other_key,
        });
        emit(output::json_line(&v).as_bytes())?;
        return Ok(Exit::Ok);
    }
    let local = r.sent.len() + r.removed_here;
    let mut lines = vec![format!(
        "{what} ({}): {} received, {}{} other device(s){}",
        ws.config.remote,
        r.received.len() + r.removed_by_others,
        match ro {
            true => String::new(),
            false => format!("{local} sent, "),
        },
        r.devices,
        match (ro, r.replica.is_some()) {
            (true, _) if local > 0 => {
                format!("; read-only: nothing published ({local} local change(s) stay here)")
            }
            (true, _) => "; read-only: nothing published".into(),
            (false, true) => String::new(),
            (false, false) => "; nothing new to publish".into(),
        }
    )];
    let names = |v: &[String]| {
        v.iter()
            .map(|n| Shown::line(n).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if verbose {
        if !r.received.is_empty() {
            lines.push(format!("received: {}", names(&r.received)));
        }
        if !sent.is_empty() {
            lines.push(format!("sent: {}", names(sent)));
        }
        if !unpublished.is_empty() {
            lines.push(format!("not published: {}", names(unpublished)));
        }
    }
    for w in &r.rollbacks_accepted {
        lines.push(format!("accepted a rollback: {w}"));
    }
    if !r.conflicts.is_empty() {
        lines.push(format!(
            "changed on two devices at once: {} (`jeton check` says what was kept; `jeton sync status` shows values waiting for a choice; `jeton sync resolve NAME` answers)",
            names(&r.conflicts)
        ));
    }
    if !r.kept_over_removal.is_empty() {
        lines.push(format!(
            "removed on one device but changed on another, so kept: {}",
            names(&r.kept_over_removal)
        ));
    }
    for (from, to) in &r.renamed {
        lines.push(format!(
            "two entries were named {}: one is now {}",
            Shown::line(from),
            Shown::line(to)
        ));
    }
    if !r.forgotten.is_empty() {
        lines.push(format!(
            "removed the replicas of {} forgotten device(s) from the remote",
            r.forgotten.len()
        ));
    }
    if !r.merged_copies.is_empty() {
        lines.push(format!(
            "merged and removed {} conflict cop{}",
            r.merged_copies.len(),
            if r.merged_copies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        ));
    }
    if !r.other_key.is_empty() {
        lines.push(format!(
            "{} replica(s) were not read: they are under this vault's previous key, until their devices run `jeton sync --adopt-key`",
            r.other_key.len()
        ));
    }
    if r.identity_differs {
        lines.push(
            "the other devices carry another sharing identity; this device kept its own".into(),
        );
    }
    ctx.say(&lines.join("\n"))?;
    Ok(Exit::Ok)
}

fn status(ctx: &Ctx) -> Result<Exit> {
    let ws = workspace(ctx)?;
    let Response::Sync(r) = ctx.run(Request::Sync(SyncRequest::Status))? else {
        return Err(unexpected());
    };
    let SyncResponse::Status {
        vault,
        devices,
        conflicts,
        choices,
    } = *r
    else {
        return Err(unexpected());
    };
    let now = time::now();
    if ctx.json {
        let v = serde_json::json!({
            "remote": ws.config.remote.to_string(),
            "vault": vault,
            "devices": devices.iter().map(|d| serde_json::json!({
                "id": d.id,
                "name": d.name,
                "this": d.this,
                "generation": d.generation,
                "heard_at": time::rfc3339(d.heard_at),
            })).collect::<Vec<_>>(),
            "conflicts": conflicts,
            "choices": choices.iter().map(|c| serde_json::json!({
                "name": c.name,
                "field": c.field,
                "current": c.current,
                "other": c.other,
                "device": c.device,
                "written_at": time::rfc3339(c.at),
            })).collect::<Vec<_>>(),
        });
        emit(output::json_line(&v).as_bytes())?;
        return Ok(Exit::Ok);
    }
    let mut out = format!("remote: {}\nvault:  {vault}\ndevices:\n", ws.config.remote);
    for d in &devices {
        let who = match (d.this, d.name.is_empty()) {
            (true, true) => "(this device)".to_owned(),
            (true, false) => format!("{} (this device)", Shown::line(&d.name)),
            (false, _) => Shown::line(&d.name).to_string(),
        };
        out.push_str(&format!(
            "  {}  {:<24}  {} {}\n",
            &d.id[..16],
            who,
            if d.this {
                "last published"
            } else {
                "last heard from"
            },
            ago(d.heard_at, now)
        ));
    }
    if !conflicts.is_empty() {
        let names: Vec<String> = conflicts
            .iter()
            .map(|n| Shown::line(n).to_string())
            .collect();
        out.push_str(&format!(
            "open conflicts (look, then `jeton sync resolve NAME`): {}\n",
            names.join(", ")
        ));
    }
    for c in &choices {
        out.push_str(&format!(
            "  {} {}: current {}, other {} (device {}, {})\n",
            Shown::line(&c.name),
            c.field,
            c.current,
            c.other,
            &c.device[..8],
            time::rfc3339(c.at)
        ));
    }
    if !choices.is_empty() {
        out.push_str(
            "keep the current values with `jeton sync resolve NAME`, take the others with `--take-other`\n",
        );
    }
    emit(out.as_bytes())?;
    Ok(Exit::Ok)
}

fn ago(t: Time, now: Time) -> String {
    format!(
        "{} ({} ago)",
        time::rfc3339(t),
        jeton::lifecycle::rough_span(now.saturating_sub(t).max(0))
    )
}
