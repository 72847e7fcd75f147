//! What every command family runs with: the context built from the global options, the exit
//! it ends with, and the ways it writes (stdout through [`emit`], warnings on stderr).

pub mod route;
pub mod team;

use crate::args::GlobalArgs;
use crate::output::{self, OutError, write_stdout};
use crate::prompt;
use jeton::agent::client::Via;
use jeton::lifecycle::{LifecycleRequest, LifecycleResponse};
use jeton::request::{ListFilter, Request, Response, Session, StatusFilter};
use jeton::store::Store;
use jeton::time::{self, Time};
use jeton::{Error, Result};

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
    /// The passphrase typed at the terminal in this run, once it opened the vault: later
    /// requests of the same command use it, and the command may offer to keep the vault
    /// unlocked in the agent with it.
    typed: std::cell::RefCell<Option<jeton::secret::Passphrase>>,
    /// The key the last unlock derived, by its key commitment: a later request of the same
    /// command on the same vault derives nothing again (the passphrase source may be read once).
    derived: std::cell::RefCell<Option<([u8; 32], jeton::secret::Key)>>,
}

impl Ctx {
    pub fn new(global: &GlobalArgs) -> Result<Ctx> {
        let lock_timeout = time::parse_duration(&global.lock_timeout)?;
        let path = jeton::paths::vault_path(global.vault.clone()).ok_or_else(|| {
            Error::NotFound(
                "cannot find the vault: set --vault, JETON_VAULT, XDG_DATA_HOME or HOME".into(),
            )
        })?;
        // Whether or not this command reads it, no child process may inherit it.
        if let Some(fd) = global.passphrase_fd {
            let _ = jeton::process::seal_descriptor(fd);
        }
        Ok(Ctx {
            json: global.json,
            quiet: global.quiet,
            yes: global.yes,
            passphrase_fd: global.passphrase_fd,
            session: Session {
                store: Store::new(path, lock_timeout),
                state_dir: jeton::paths::state_dir(),
                accept_rollback: global.accept_rollback,
            },
            typed: std::cell::RefCell::new(None),
            derived: std::cell::RefCell::new(None),
        })
    }

    /// The vault key of `file`: with the passphrase typed earlier in this run, or from the
    /// sources, asking again at the terminal after a wrong one ([`prompt::with_passphrase`]).
    pub fn unlock(&self, file: &jeton::format::VaultFile) -> Result<jeton::secret::Key> {
        let commitment = file.header.commitment;
        if let Some((c, key)) = self.derived.borrow().as_ref()
            && *c == commitment
        {
            return Ok(key.clone());
        }
        let with_typed = {
            let typed = self.typed.borrow();
            typed.as_ref().map(|p| jeton::vault::Vault::unlock(file, p))
        };
        let key = match with_typed {
            Some(key) => key?,
            None => {
                let (key, typed) = prompt::with_passphrase(self.passphrase_fd, |p| {
                    jeton::vault::Vault::unlock(file, p)
                })?;
                if typed.is_some() {
                    *self.typed.borrow_mut() = typed;
                }
                key
            }
        };
        *self.derived.borrow_mut() = Some((commitment, key.clone()));
        Ok(key)
    }

    /// The passphrase typed at the terminal in this run, if one opened the vault.
    pub fn take_typed(&self) -> Option<jeton::secret::Passphrase> {
        self.typed.borrow_mut().take()
    }

    pub fn ask(&self) -> impl FnOnce() -> Result<jeton::secret::Passphrase> + use<> {
        let fd = self.passphrase_fd;
        move || prompt::passphrase(fd)
    }

    /// Runs a request and prints its warnings; returns the response. The agent runs it when it
    /// holds the key of this vault (SPEC §7: the first passphrase source); otherwise it runs
    /// here, with a passphrase from the other sources.
    pub fn run(&self, request: Request) -> Result<Response> {
        let request = match team::run_routed(self, request)? {
            Ok(response) => return Ok(response),
            Err(request) => request,
        };
        let outcome = match jeton::agent::client::run(&self.session, &request)? {
            Via::Agent(outcome) => *outcome,
            Via::Local(dropped) => {
                if let Some(note) = dropped {
                    eprintln!("jeton: warning: {note}");
                }
                let writes = request.writes();
                self.session.with_vault_key(
                    writes,
                    |file| self.unlock(file),
                    |v| jeton::request::execute(v, request, time::now()),
                )?
            }
        };
        warn_all(&outcome.warnings);
        Ok(outcome.value)
    }

    /// Refuses, as `add` would, a name an entry already has (a live one or a revoked
    /// tombstone): checked before a secret is typed, so it is not typed for nothing. A read
    /// that carries no secret.
    pub fn refuse_taken(&self, name: &str) -> Result<()> {
        let filter = ListFilter {
            pattern: Some(name.to_owned()),
            scope: None,
            tag: None,
            status: StatusFilter::All,
            due_within: None,
        };
        let Response::List(items) = self.run(Request::List(filter))? else {
            return Err(unexpected());
        };
        match items.iter().find(|s| s.name == name) {
            Some(s) => Err(jeton::request::name_taken(name, s.status == "revoked")),
            None => Ok(()),
        }
    }

    /// Refuses, as `rotate` would, a name no entry has (naming the closest ones) or a revoked
    /// entry: checked before a new secret is typed. Reads the versions without their secrets.
    pub fn refuse_missing_or_revoked(&self, name: &str) -> Result<()> {
        let request = LifecycleRequest::History {
            name: name.to_owned(),
            reveal: false,
        };
        match self.run(Request::Lifecycle(request))? {
            // The current secret is version 0; only a revoked entry has none.
            Response::Lifecycle(LifecycleResponse::History { versions, .. })
                if !versions.iter().any(|v| v.number == 0) =>
            {
                Err(jeton::lifecycle::revoked_error(name, None))
            }
            Response::Lifecycle(LifecycleResponse::History { .. }) => Ok(()),
            _ => Err(unexpected()),
        }
    }

    /// Says on stderr (unless --quiet) why a listing printed nothing: the vault holds no entry
    /// at all, or none matches. A `pattern` of `TEAM:...` is about that team's vault.
    pub fn say_nothing_found(&self, pattern: Option<&str>) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        let team = pattern
            .and_then(jeton::team::split)
            .map(|(t, _)| t.to_owned());
        let filter = ListFilter {
            pattern: team.as_ref().map(|t| format!("{t}:")),
            scope: None,
            tag: None,
            status: StatusFilter::All,
            due_within: None,
        };
        let Response::List(all) = self.run(Request::List(filter))? else {
            return Err(unexpected());
        };
        match team {
            _ if !all.is_empty() => eprintln!("jeton: no entries match"),
            Some(t) => eprintln!(
                "jeton: the vault of team {t} is empty; add an entry with `jeton add {t}:NAME`"
            ),
            None => eprintln!("jeton: the vault is empty; add an entry with `jeton add NAME`"),
        }
        Ok(())
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
    warn_past_expiry(expires_at, now);
}

/// Warns about an expiry already past: accepted (a token that has already expired may be
/// recorded as such, and `-3d` is a documented time), but more often a typo in the year.
fn warn_past_expiry(expires_at: Option<Time>, now: Time) {
    if let Some(t) = expires_at.filter(|t| *t <= now) {
        warn_all(&[format!(
            "the expiry {} is already past ({} ago): the entry counts as expired and `check` \
             reports it; if you meant a time to come, set it again with `jeton edit NAME \
             --expires WHEN`",
            time::rfc3339(t),
            time::human_span(now - t)
        )]);
    }
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

pub fn unexpected() -> Error {
    Error::unexpected_response()
}

/// After a re-key (`passwd`, `recover`, `recovery new`) the agent's key is stale (it would
/// refuse to use it anyway): make it forget it now, so `jeton unlock` asks for the passphrase.
pub fn forget_agent_key(ctx: &Ctx) -> Result<()> {
    if let Ok(true) = jeton::agent::client::lock() {
        ctx.say("the agent forgot the old key; run `jeton unlock` again")?;
    }
    Ok(())
}
