//! `unlock`, `lock` and `agent start|stop|status|serve` (SPEC §7).

use crate::config_file::UnlockAgent;
use crate::ctx::{Ctx, Exit, emit};
use crate::output;
use crate::prompt;
use clap::{Args, Subcommand};
use jeton::agent::{self, client, protocol::Status};
use jeton::time::{self, human_span};
use jeton::{Error, Result};
use std::process::Stdio;
use std::time::Duration;

/// The agent's idle timeout unless `unlock --timeout` says otherwise (SPEC §7).
const DEFAULT_IDLE: &str = "15min";
/// Its absolute limit unless `unlock --max` says otherwise.
const DEFAULT_MAX: &str = "8h";

/// `unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Lock again after this long without a command that uses the key
    #[arg(long, value_name = "SPAN", default_value = DEFAULT_IDLE)]
    pub timeout: String,
    /// Lock again after this long in any case
    #[arg(long, value_name = "SPAN", default_value = DEFAULT_MAX)]
    pub max: String,
}

/// `agent ...`.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Start the agent in the background (no effect if it runs)
    Start,
    /// Stop the agent (its keys are wiped)
    Stop,
    /// Show whether the agent runs and which vaults it holds unlocked
    Status,
    /// Run the agent in the foreground (what `start` runs in the background)
    #[command(hide = true)]
    Serve,
}

/// How long `unlock`/`agent start` wait for a new agent to answer.
const START_WAIT: Duration = Duration::from_secs(5);

fn span(s: &str, what: &str) -> Result<Duration> {
    let d = time::parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(Error::Usage(format!("{what} must be at least 1s")));
    }
    Ok(d)
}

fn holds(status: &Status, vault: &std::path::Path) -> bool {
    let Ok(vault) = std::fs::canonicalize(vault) else {
        return false;
    };
    status.unlocked.iter().any(|h| h.vault == vault)
}

/// `unlock`: start the agent if needed, then hand it the passphrase once.
pub fn unlock(ctx: &Ctx, a: UnlockArgs) -> Result<Exit> {
    let idle = span(&a.timeout, "--timeout")?;
    let max = span(&a.max, "--max")?;
    let store = &ctx.session.store;
    store.read()?;
    let status = ensure_running()?;
    if holds(&status, store.path()) {
        ctx.say(&format!(
            "{} is already unlocked in the agent",
            store.path().display()
        ))?;
        return Ok(Exit::Ok);
    }
    // The agent checks the passphrase; a wrong one typed at the terminal is asked again.
    let (said, _) = prompt::with_passphrase(ctx.passphrase_fd, |p| {
        hand_over(
            ctx,
            jeton::secret::Passphrase::new(p.expose_secret().to_owned()),
            idle,
            max,
        )
    })?;
    ctx.say(&said)?;
    Ok(Exit::Ok)
}

/// Hands the passphrase to the running agent, which unlocks the vault with it. Returns what
/// to tell the user.
fn hand_over(
    ctx: &Ctx,
    passphrase: jeton::secret::Passphrase,
    idle: Duration,
    max: Duration,
) -> Result<String> {
    let store = &ctx.session.store;
    client::unlock(store.path(), passphrase, idle, max)?;
    Ok(format!(
        "unlocked {} in the agent (locks after {} idle, {} at most)",
        store.path().display(),
        human_span(idle.as_secs() as i64),
        human_span(max.as_secs() as i64)
    ))
}

/// After a command whose passphrase was typed at the terminal: keep the vault unlocked in the
/// agent, as `[unlock] agent` in the config file says: `ask` (y/N on the terminal, the
/// default), `always` (without a word), `never`. The path is `unlock`'s, with its default
/// timeouts. A failure here is a warning: the command itself has succeeded. What it says goes
/// to stderr: stdout holds the command's data alone (`T=$(jeton get X)`).
pub fn offer_after_prompt(ctx: &Ctx) {
    let Some(passphrase) = ctx.take_typed() else {
        return;
    };
    let mode = match crate::config_file::unlock_agent() {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("jeton: warning: {e}");
            return;
        }
    };
    let (Ok(idle), Ok(max)) = (span(DEFAULT_IDLE, "--timeout"), span(DEFAULT_MAX, "--max")) else {
        return;
    };
    let ask = format!(
        "keep the vault unlocked in the agent (locks after {} idle)?",
        human_span(idle.as_secs() as i64)
    );
    let wanted = match mode {
        UnlockAgent::Never => false,
        UnlockAgent::Always => true,
        UnlockAgent::Ask => prompt::yes_no(&ask),
    };
    if !wanted || agent::unsafe_dir_warning().is_some() {
        return;
    }
    let quiet = mode == UnlockAgent::Always || ctx.quiet || ctx.json;
    let done = ensure_running().and_then(|status| {
        if holds(&status, ctx.session.store.path()) {
            return Ok(None);
        }
        hand_over(ctx, passphrase, idle, max).map(Some)
    });
    match done {
        Ok(Some(said)) if !quiet => eprintln!("jeton: {said}"),
        Ok(_) => {}
        Err(e) => eprintln!("jeton: warning: the vault stays locked: {e}"),
    }
}

/// `lock`: the agent drops every key.
pub fn lock(ctx: &Ctx) -> Result<Exit> {
    warn_unsafe_dir();
    if client::lock()? {
        ctx.say("locked: the agent holds no key")?;
    } else {
        ctx.say("no agent is running")?;
    }
    Ok(Exit::Ok)
}

/// The running agent's status, starting one in the background if none answers.
pub fn ensure_running() -> Result<Status> {
    if let Some(s) = client::status()? {
        return Ok(s);
    }
    agent::prepare_dir(&agent::socket_dir())?;
    let started = std::time::Instant::now();
    let mut child = spawn()?;
    while started.elapsed() < START_WAIT {
        std::thread::sleep(Duration::from_millis(10));
        if let Some(s) = client::status()? {
            return Ok(s);
        }
        if let Ok(Some(code)) = child.try_wait() {
            // Exit 9: another agent holds the directory: one starting (wait for it to answer)
            // or one exiting (start ours again once it is gone).
            if code.code() != Some(9) {
                return Err(Error::Other(format!(
                    "the agent exited at start ({code}); run `jeton agent serve` to see why"
                )));
            }
            child = spawn()?;
        }
    }
    Err(Error::Other(format!(
        "the agent did not answer within {}s at {}",
        START_WAIT.as_secs(),
        agent::socket_path().display()
    )))
}

fn spawn() -> Result<std::process::Child> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot find the jeton executable: {e}")))?;
    jeton::process::command(&exe)
        .args(["agent", "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start the agent: {e}")))
}

/// Says once that the agent's directory is unsafe, so no agent is used.
fn warn_unsafe_dir() {
    if let Some(w) = agent::unsafe_dir_warning() {
        eprintln!("jeton: warning: {w}");
    }
}

fn print_status(ctx: &Ctx, status: Option<&Status>) -> Result<()> {
    if ctx.json {
        let v = match status {
            None => serde_json::json!({"running": false, "socket": agent::socket_path()}),
            Some(s) => serde_json::json!({
                "running": true,
                "socket": agent::socket_path(),
                "pid": s.pid,
                "version": s.version,
                "unlocked": s.unlocked,
            }),
        };
        return emit(output::json_line(&v).as_bytes());
    }
    let text = match status {
        None => "no agent is running\n".to_owned(),
        Some(s) => {
            let mut t = format!(
                "agent running (pid {}, jeton {}) at {}\n",
                s.pid,
                s.version,
                agent::socket_path().display()
            );
            if s.unlocked.is_empty() {
                t.push_str("locked: no vault is unlocked\n");
            }
            for h in &s.unlocked {
                t.push_str(&format!(
                    "unlocked {}: locks in {} (idle) or {} (at most){}\n",
                    h.vault.display(),
                    human_span(h.idle_left_secs.max(1) as i64),
                    human_span(h.max_left_secs.max(1) as i64),
                    if h.memory_locked {
                        ""
                    } else {
                        "; key not mlocked (RLIMIT_MEMLOCK)"
                    }
                ));
                if !h.teams.is_empty() {
                    t.push_str(&format!("  team vaults open: {}\n", h.teams.join(", ")));
                }
            }
            t
        }
    };
    emit(text.as_bytes())
}

/// `agent start|stop|status|serve`.
pub fn agent(ctx: &Ctx, command: AgentCommand) -> Result<Exit> {
    if matches!(command, AgentCommand::Status | AgentCommand::Stop) {
        warn_unsafe_dir();
    }
    match command {
        AgentCommand::Start => {
            let s = ensure_running()?;
            if ctx.json {
                print_status(ctx, Some(&s))?;
            } else {
                ctx.say(&format!("agent running (pid {})", s.pid))?;
            }
        }
        AgentCommand::Stop => {
            if client::stop()? {
                ctx.say("agent stopped")?;
            } else {
                ctx.say("no agent is running")?;
            }
        }
        AgentCommand::Status => print_status(ctx, client::status()?.as_ref())?,
        AgentCommand::Serve => {
            // A session of its own, so closing the terminal that started it does not end it.
            let _ = rustix::process::setsid();
            agent::server::serve(&agent::socket_dir())?;
        }
    }
    Ok(Exit::Ok)
}
