//! Arguments -> request -> output. Flags are validated into a request before any I/O.

use crate::cli::{self, Cli, Command, Deferred};
use crate::output::{self, OutError, write_stdout};
use crate::prompt;
use clap::CommandFactory;
use jeton::agent::client::Via;
use jeton::format::SlotKind;
use jeton::kdf::{self, KdfParams};
use jeton::request::{
    Change, Charset, EntryEdit, ListFilter, NewEntry, Request, Response, SecretInput, Session,
    StatusFilter,
};
use jeton::secret::SecretText;
use jeton::store::Store;
use jeton::time::{self, Time};
use jeton::vault::Vault;
use jeton::{Error, Result};
use zeroize::Zeroizing;

/// What a command ended with, beyond success.
pub enum Exit {
    /// Success.
    Ok,
    /// A documented non-error exit code: 8 when `check` found problems, 126/127 from `exec`,
    /// 1 from a credential helper that found nothing.
    Code(i32),
}

/// Global settings every command needs.
pub struct Ctx {
    pub json: bool,
    pub quiet: bool,
    pub yes: bool,
    pub passphrase_fd: Option<u32>,
    pub session: Session,
}

impl Ctx {
    fn from_cli(cli: &Cli) -> Result<Ctx> {
        let lock_timeout = time::parse_duration(&cli.global.lock_timeout)?;
        let path = jeton::paths::vault_path(cli.global.vault.clone()).ok_or_else(|| {
            Error::NotFound(
                "cannot find the vault: set --vault, JETON_VAULT, XDG_DATA_HOME or HOME".into(),
            )
        })?;
        // Whether or not this command reads it, no child process may inherit it.
        if let Some(fd) = cli.global.passphrase_fd {
            let _ = jeton::process::seal_descriptor(fd);
        }
        Ok(Ctx {
            json: cli.global.json,
            quiet: cli.global.quiet,
            yes: cli.global.yes,
            passphrase_fd: cli.global.passphrase_fd,
            session: Session {
                store: Store::new(path, lock_timeout),
                state_dir: jeton::paths::state_dir(),
                accept_rollback: cli.global.accept_rollback,
            },
        })
    }

    pub fn ask(&self) -> impl FnOnce() -> Result<jeton::secret::Passphrase> + use<> {
        let fd = self.passphrase_fd;
        move || prompt::passphrase(fd)
    }

    /// Runs a request and prints its warnings; returns the response. The agent runs it when it
    /// holds the key of this vault (SPEC §7: the first passphrase source); otherwise it runs
    /// here, with a passphrase from the other sources.
    pub fn run(&self, request: Request) -> Result<Response> {
        let request = match crate::team::run_routed(self, request)? {
            Ok(response) => return Ok(response),
            Err(request) => request,
        };
        let outcome = match jeton::agent::client::run(&self.session, &request)? {
            Via::Agent(outcome) => *outcome,
            Via::Local(dropped) => {
                if let Some(note) = dropped {
                    eprintln!("jeton: warning: {note}");
                }
                self.session.run(request, self.ask())?
            }
        };
        warn_all(&outcome.warnings);
        Ok(outcome.value)
    }

    /// Prints a confirmation message unless --quiet or --json.
    pub fn say(&self, msg: &str) -> Result<()> {
        if self.quiet || self.json {
            return Ok(());
        }
        emit(format!("{}\n", jeton::text::Shown::lines(msg)).as_bytes())
    }

    pub fn done(&self, response: Response) -> Result<Exit> {
        if let Response::Done(msg) = response {
            if self.json {
                emit(
                    output::json_line(&serde_json::json!({"ok": true, "message": msg})).as_bytes(),
                )?;
            } else {
                self.say(&msg)?;
            }
        }
        Ok(Exit::Ok)
    }
}

/// Prints diagnostics to stderr.
pub fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!("jeton: warning: {}", jeton::text::Shown::line(w));
    }
}

/// Warns about an expiry or a rotation period under a day: `6m` once meant six minutes.
pub fn warn_short_spans(expires_at: Option<Time>, rotate_every: Option<i64>, now: Time) {
    let warnings = [
        expires_at.and_then(|t| time::short_expiry_warning(t, now)),
        rotate_every.and_then(time::short_rotation_warning),
    ];
    warn_all(&warnings.into_iter().flatten().collect::<Vec<_>>());
}

/// Writes to stdout. A closed pipe is an error that stops the command, and `main` then ends
/// quietly with success ([`output::stdout_closed`]).
pub fn emit(bytes: &[u8]) -> Result<()> {
    match write_stdout(bytes) {
        Ok(()) => Ok(()),
        Err(OutError::Closed) => Err(output::closed_stdout()),
        Err(OutError::Failed(e)) => Err(Error::Other(format!("cannot write to stdout: {e}"))),
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn change(s: Option<String>) -> Change<String> {
    match s {
        None => Change::Keep,
        Some(v) if v.trim().is_empty() => Change::Clear,
        Some(v) => Change::Set(v.trim().to_owned()),
    }
}

fn change_time(
    s: Option<String>,
    now: Time,
    parse: fn(&str, Time) -> Result<i64>,
) -> Result<Change<i64>> {
    Ok(match s.as_deref().map(str::trim) {
        None => Change::Keep,
        Some("" | "never" | "none") => Change::Clear,
        Some(v) => Change::Set(parse(v, now)?),
    })
}

pub fn charset(c: cli::CharsetArg) -> Charset {
    match c {
        cli::CharsetArg::Alnum => Charset::Alnum,
        cli::CharsetArg::Hex => Charset::Hex,
        cli::CharsetArg::Base64url => Charset::Base64Url,
        cli::CharsetArg::Ascii => Charset::Ascii,
    }
}

/// The secret for add/rotate: generated by the executor, or read now from a prompt or stdin.
pub fn secret_input(g: &cli::GenerateArgs) -> Result<SecretInput> {
    if g.generate && (g.words.is_some() || g.exclude.is_some()) {
        let recipe = crate::generate::recipe(
            g.length,
            g.charset,
            g.exclude.as_deref(),
            g.words,
            &g.separator,
        )?;
        Ok(SecretInput::Recipe(recipe))
    } else if g.generate {
        jeton::request::generate_secret(g.length, charset(g.charset))?;
        Ok(SecretInput::Generate {
            length: g.length,
            charset: charset(g.charset),
        })
    } else {
        Ok(SecretInput::Value(prompt::secret_input()?))
    }
}

/// Parses a memory size: `8MiB`, `256M`, `1GiB`, `65536KiB`; a bare number is MiB.
fn parse_memory_kib(s: &str) -> Result<u32> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Usage(format!("'{s}' is not a memory size (e.g. 256MiB)")))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "k" | "kib" | "kb" => 1,
        "" | "m" | "mib" | "mb" => 1024,
        "g" | "gib" | "gb" => 1024 * 1024,
        _ => {
            return Err(Error::Usage(format!(
                "'{s}': unknown unit (use KiB, MiB or GiB)"
            )));
        }
    };
    u32::try_from(n.saturating_mul(mult))
        .map_err(|_| Error::Usage(format!("memory size '{s}' is out of range (8MiB..4GiB)")))
}

fn kdf_params(a: &cli::KdfArgs, base: KdfParams) -> Result<KdfParams> {
    let lanes = a.kdf_lanes.unwrap_or(base.lanes);
    if let Some(target) = &a.kdf_target {
        let d = time::parse_duration(target)?;
        if d.as_millis() < 10 || d.as_secs() > 60 {
            return Err(Error::Usage(
                "--kdf-target must be between 10ms and 60s".into(),
            ));
        }
        KdfParams { lanes, ..base }.check_user()?;
        return kdf::calibrate(d, 1024 * 1024, lanes);
    }
    let p = KdfParams {
        memory_kib: a
            .kdf_memory
            .as_deref()
            .map(parse_memory_kib)
            .transpose()?
            .unwrap_or(base.memory_kib),
        iterations: a.kdf_iterations.unwrap_or(base.iterations),
        lanes,
    };
    p.check_user()?;
    Ok(p)
}

fn describe_kdf(p: &KdfParams) -> String {
    format!(
        "Argon2id m={}MiB t={} p={}",
        p.memory_kib / 1024,
        p.iterations,
        p.lanes
    )
}

/// Runs the parsed command line. Completions and the man page come first: they need no vault,
/// and no global flag's value can stop them.
pub fn run(cli: Cli) -> Result<Exit> {
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        Command::Man => return man(),
        Command::Generate(Deferred(a)) => return crate::generate::run(&cli.global, a),
        _ => {}
    }
    if let Command::ClipClear(Deferred(a)) = cli.command {
        return crate::clip::clear_later(a);
    }
    let ctx = Ctx::from_cli(&cli)?;
    let now = time::now();
    match cli.command {
        Command::Init(Deferred(a)) => init(&ctx, a),
        Command::Add(Deferred(a)) => {
            let m = a.meta;
            let expires_at = m
                .expires
                .as_deref()
                .map(|w| time::parse_when(w, now))
                .transpose()?;
            let rotate_every = m
                .rotate_every
                .as_deref()
                .map(|s| time::parse_span(s, now))
                .transpose()?;
            warn_short_spans(expires_at, rotate_every, now);
            let mut req = NewEntry {
                name: a.name,
                // Replaced below, once the name and metadata passed: the secret is read last.
                secret: SecretInput::Generate {
                    length: a.generate.length,
                    charset: charset(a.generate.charset),
                },
                scopes: m.scopes,
                url: nonempty(m.url),
                username: nonempty(m.username),
                issuer: nonempty(m.issuer),
                contact: nonempty(m.contact),
                used_by: m.used_by,
                tags: m.tags,
                note: nonempty(m.note),
                expires_at,
                rotate_every,
            };
            // A team entry (`TEAM:NAME`) is checked by its name in the team.
            match jeton::team::split(&req.name.clone()) {
                Some((team, name)) => {
                    jeton::team::validate_name(team)?;
                    let full = std::mem::replace(&mut req.name, name.to_owned());
                    req.check()?;
                    req.name = full;
                }
                None => req.check()?,
            }
            req.secret = if a.totp {
                crate::otp::seed_input(&req.name)?
            } else {
                secret_input(&a.generate)?
            };
            let r = ctx.run(Request::Add(Box::new(req)))?;
            ctx.done(r)
        }
        Command::Get(Deferred(a)) => get(&ctx, a, now),
        Command::Show(Deferred(a)) => {
            let Response::Entry {
                entry,
                default_contact,
            } = ctx.run(Request::Show { name: a.name })?
            else {
                return Err(unexpected());
            };
            let dc = default_contact.as_deref();
            let text = if ctx.json {
                output::secret_json_line(output::entry_json(&entry, dc, a.reveal))
            } else {
                output::entry_text(&entry, dc, a.reveal)
            };
            emit(text.as_bytes())?;
            Ok(Exit::Ok)
        }
        Command::List(Deferred(a)) => {
            let status = match a.status {
                cli::StatusArg::Active => StatusFilter::Active,
                cli::StatusArg::Disabled => StatusFilter::Disabled,
                cli::StatusArg::Revoked => StatusFilter::Revoked,
                cli::StatusArg::All => StatusFilter::All,
            };
            let due_within = a
                .due
                .as_deref()
                .map(|s| time::parse_span(s, now))
                .transpose()?;
            let filter = ListFilter {
                pattern: a.pattern,
                scope: a.scope,
                tag: a.tag,
                status,
                due_within,
            };
            let Response::List(items) = ctx.run(Request::List(filter))? else {
                return Err(unexpected());
            };
            if ctx.json {
                emit(output::json_line(&output::list_json(&items)).as_bytes())?;
            } else if !items.is_empty() {
                emit(output::list_text(&items).as_bytes())?;
            } else if !ctx.quiet {
                eprintln!("jeton: no entries match");
            }
            Ok(Exit::Ok)
        }
        Command::Search(Deferred(a)) => crate::find::search(&ctx, a),
        Command::Otp(Deferred(a)) => crate::otp::otp(&ctx, a),
        Command::Edit(Deferred(a)) if a.is_bare() => crate::editor::edit(&ctx, a.name, now),
        Command::Edit(Deferred(a)) => {
            let edit = EntryEdit {
                name: a.name,
                url: change(a.url),
                username: change(a.username),
                issuer: change(a.issuer),
                contact: change(a.contact),
                note: change(a.note),
                expires_at: change_time(a.expires, now, time::parse_when)?,
                rotate_every: change_time(a.rotate_every, now, time::parse_span)?,
                add_scopes: a.add_scope,
                rm_scopes: a.rm_scope,
                add_used_by: a.add_used_by,
                rm_used_by: a.rm_used_by,
                add_tags: a.add_tag,
                rm_tags: a.rm_tag,
            };
            edit.check()?;
            let set = |c: &Change<i64>| match c {
                Change::Set(v) => Some(*v),
                _ => None,
            };
            warn_short_spans(set(&edit.expires_at), set(&edit.rotate_every), now);
            let r = ctx.run(Request::Edit(Box::new(edit)))?;
            ctx.done(r)
        }
        Command::Rename { old, new } => {
            jeton::team::check_entry_name(&new, true)?;
            let r = ctx.run(Request::Rename { from: old, to: new })?;
            ctx.done(r)
        }
        Command::Rm { name } => {
            prompt::confirm(
                &format!(
                    "delete '{}' and its history for good",
                    jeton::entry::printable(&name)
                ),
                ctx.yes,
            )?;
            let r = ctx.run(Request::Remove { name })?;
            ctx.done(r)
        }
        Command::Passwd(Deferred(a)) => passwd(&ctx, a),
        Command::Lifecycle(c) => crate::lifecycle::run(&ctx, c, now),
        Command::Identity => crate::share::identity(&ctx),
        Command::Contact(c) => crate::share::contact(&ctx, c),
        Command::Share(Deferred(a)) => crate::share::share(&ctx, a),
        Command::Import(Deferred(a)) => crate::share::import(&ctx, a),
        Command::Unlock(Deferred(a)) => crate::agent::unlock(&ctx, a),
        Command::Lock => crate::agent::lock(&ctx),
        Command::Agent(a) => crate::agent::agent(&ctx, a),
        Command::Exec(Deferred(a)) => crate::integrations::exec(&ctx, a),
        Command::Inject(Deferred(a)) => crate::integrations::inject(&ctx, a),
        Command::GitCredential { operation } => {
            crate::integrations::git_credential(&ctx, &operation)
        }
        Command::CargoCredential { cargo_plugin } => {
            crate::integrations::cargo_credential(&ctx, cargo_plugin)
        }
        Command::DockerCredential { operation } => {
            crate::integrations::docker_credential(&ctx, operation.as_deref())
        }
        Command::Migrate(Deferred(a)) => crate::migrate::run(&ctx, a),
        Command::Recovery(c) => crate::recovery::run(&ctx, c),
        Command::Recover(Deferred(a)) => crate::recovery::recover(&ctx, a),
        Command::Backup(Deferred(a)) => crate::backup::run(&ctx, a),
        Command::Sync(Deferred(a)) => crate::sync::run(&ctx, a),
        Command::Team(c) => crate::team::run(&ctx, c),
        Command::Issuer(c) => crate::issuer::issuer(&ctx, c),
        Command::Integration(c) => crate::issuer::integration(&ctx, c),
        // Handled above, before the context.
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
        Command::Generate(Deferred(a)) => crate::generate::run(&cli.global, &a),
        Command::ClipClear(Deferred(a)) => crate::clip::clear_later(a),
    }
}

fn completions(shell: cli::ShellArg) -> Result<Exit> {
    emit(&crate::complete::script(shell))?;
    Ok(Exit::Ok)
}

fn man() -> Result<Exit> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(|e| Error::Other(format!("cannot render the man page: {e}")))?;
    emit(&buf)?;
    Ok(Exit::Ok)
}

pub fn unexpected() -> Error {
    Error::Other("internal error: unexpected response".into())
}

fn get(ctx: &Ctx, a: cli::GetArgs, now: Time) -> Result<Exit> {
    if let Some(f) = &a.field {
        jeton::entry::Entry::check_field(f)?;
    }
    let clear = time::parse_duration(&a.clear)?;
    if a.clip && !(1..=86_400).contains(&clear.as_secs()) {
        return Err(Error::Usage("--clear must be between 1s and 1d".into()));
    }
    let Response::Entry {
        entry,
        default_contact,
    } = ctx.run(Request::Get { name: a.name })?
    else {
        return Err(unexpected());
    };
    if let Some(t) = entry.expires_at.filter(|t| *t <= now) {
        eprintln!(
            "jeton: warning: '{}' expired at {}; rotate it with `jeton rotate {}`",
            entry.name,
            time::rfc3339(t),
            entry.name
        );
    }
    let text = if ctx.json && !a.clip {
        output::secret_json_line(output::entry_json(&entry, default_contact.as_deref(), true))
    } else {
        let field = a.field.as_deref().unwrap_or("secret");
        let value = match field {
            "contact" => entry.contact.clone().or(default_contact),
            f => entry.field(f)?,
        };
        let value =
            Zeroizing::new(value.ok_or_else(|| {
                Error::NotFound(format!("entry '{}' has no {field}", entry.name))
            })?);
        if a.clip {
            return crate::clip::clip(&entry.name, value.as_bytes(), clear, ctx.quiet);
        }
        let mut text = SecretText::with_capacity(value.len() + 1);
        text.push_str(&value);
        if !a.no_newline {
            text.push_str("\n");
        }
        text
    };
    emit(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn init(ctx: &Ctx, a: cli::InitArgs) -> Result<Exit> {
    let store = &ctx.session.store;
    let kdf = kdf_params(&a.kdf, KdfParams::default())?;
    for (what, v) in [("--contact", &a.contact), ("--name", &a.name)] {
        v.as_deref()
            .map_or(Ok(()), |v| jeton::text::check_line(what, v))?;
    }
    if store.exists() {
        return Err(Error::Exists(format!(
            "a vault already exists at {}; jeton never overwrites one",
            store.path().display()
        )));
    }
    let passphrase = prompt::new_passphrase(
        prompt::passphrase_source(ctx.passphrase_fd)?,
        "new vault passphrase",
    )?;
    if let Some(w) = prompt::weak_passphrase_warning(&passphrase) {
        eprintln!("jeton: warning: {w}");
    }
    if kdf.is_weak() {
        eprintln!(
            "jeton: warning: {} is below RFC 9106's recommendation (64 MiB, t=3); use it for tests only",
            describe_kdf(&kdf)
        );
    }
    let mut vault = Vault::create(&passphrase, kdf, time::now())?;
    drop(passphrase);
    vault.payload.identity = Some(jeton::share::identity::generate(time::now())?);
    vault.payload.settings.default_contact = nonempty(a.contact);
    vault.payload.settings.owner = nonempty(a.name);
    let recovery_key = if a.no_recovery_key {
        None
    } else {
        let key = jeton::recovery::RecoveryKey::generate()?;
        jeton::recovery::install(&mut vault, &key)?;
        Some(key.display())
    };
    let bytes = vault.seal(0)?;
    store.create_dir()?;
    let guard = store.lock()?;
    store.create(&bytes, &guard)?;
    let mut warnings = Vec::new();
    if std::fs::symlink_metadata(store.backup_path()).is_ok() {
        warnings.push(format!(
            "{} is the backup of an earlier vault; the next save replaces it: move it away now to keep it",
            store.backup_path().display()
        ));
    }
    ctx.session.remember(&vault, &mut warnings);
    warn_all(&warnings);
    let msg = format!(
        "created {} ({})",
        store.path().display(),
        describe_kdf(&kdf)
    );
    match recovery_key {
        Some(key) => crate::recovery::show_key(ctx, &key, &msg)?,
        None => ctx.say(&msg)?,
    }
    Ok(Exit::Ok)
}

fn passwd(ctx: &Ctx, a: cli::PasswdArgs) -> Result<Exit> {
    let source = prompt::new_passphrase_source(a.new_passphrase_fd)?;
    let outcome = ctx.session.with_vault(true, ctx.ask(), |vault| {
        let current = vault
            .header()
            .slots
            .iter()
            .find(|s| s.kind == SlotKind::Passphrase)
            .map(|s| s.kdf)
            .unwrap_or_default();
        let kdf = kdf_params(&a.kdf, current)?;
        let new = prompt::new_passphrase(source, "new passphrase")?;
        if let Some(w) = prompt::weak_passphrase_warning(&new) {
            eprintln!("jeton: warning: {w}");
        }
        let dropped = vault.change_passphrase(&new, kdf, time::now())?;
        Ok((kdf, dropped))
    })?;
    warn_all(&outcome.warnings);
    let (kdf, dropped) = outcome.value;
    if dropped > 0 {
        eprintln!(
            "jeton: warning: the recovery key no longer opens this vault (it wrapped the old vault key); make a new one with `jeton recovery new`"
        );
    }
    ctx.say(&format!(
        "passphrase changed; vault re-keyed ({})",
        describe_kdf(&kdf)
    ))?;
    forget_agent_key(ctx)?;
    Ok(Exit::Ok)
}

/// After a re-key (`passwd`, `recover`, `recovery new`) the agent's key is stale (it would
/// refuse to use it anyway): make it forget it now, so `jeton unlock` asks for the passphrase.
pub fn forget_agent_key(ctx: &Ctx) -> Result<()> {
    if let Ok(true) = jeton::agent::client::lock() {
        ctx.say("the agent forgot the old key; run `jeton unlock` again")?;
    }
    Ok(())
}
