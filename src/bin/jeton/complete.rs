//! Shell completion that knows the vault: subcommands and flags from the command definition,
//! entry and team names from the agent when it holds the key. The scripts `jeton completions
//! SHELL` prints (bash, zsh and fish are ours, in complete/) call `jeton` back with
//! `JETON_COMPLETE=SHELL` and the words up to the cursor, and this module answers one candidate
//! a line. Completion never opens the vault itself, so it never prompts: with no unlocked agent,
//! names complete to nothing at once, and zsh shows a one-line hint to unlock. `man` is here
//! too: both render the whole command definition, which the caller passes in.

use crate::ctx::{Exit, emit};
use clap::ValueEnum;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Elvish, EnvCompleter, Powershell, Shells};
use jeton::Error;
use jeton::agent::client::{self, Via};
use jeton::request::{ListFilter, Request, Response, Session, StatusFilter};
use jeton::team::{TeamRequest, TeamResponse};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The variable that makes `jeton` answer a completion request instead of running a command.
const VAR: &str = "JETON_COMPLETE";

/// What zsh shows under the prompt when names were asked for and the vault is locked.
const LOCKED_HINT: &str = "vault locked: run jeton unlock to complete names";

/// Set when a name was to be completed but no agent holds the vault's key.
static LOCKED: AtomicBool = AtomicBool::new(false);

/// Shells for `completions`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ShellArg {
    /// bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
    /// elvish
    Elvish,
    /// PowerShell
    Powershell,
}

/// Answers a completion request and exits, when the shell asked for one; otherwise returns.
/// `definition` builds the whole command line.
pub fn answer_if_asked(definition: fn() -> clap::Command) {
    CompleteEnv::with_factory(move || command(definition()))
        .var(VAR)
        .bin("jeton")
        .completer("jeton")
        .shells(Shells(&[&BASH, &ZSH, &FISH, &Elvish, &Powershell]))
        .complete();
}

/// `completions SHELL`: the script a shell sources to complete `jeton` (it calls `jeton` on the
/// PATH back).
pub fn completions(shell: ShellArg) -> Result<Exit, Error> {
    emit(&script(shell))?;
    Ok(Exit::Ok)
}

/// `man`: the man page (roff) of `definition`.
pub fn man(definition: clap::Command) -> Result<Exit, Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(definition)
        .render(&mut buf)
        .map_err(|e| Error::Other(format!("cannot render the man page: {e}")))?;
    emit(&buf)?;
    Ok(Exit::Ok)
}

fn script(shell: ShellArg) -> Vec<u8> {
    let shell: &dyn EnvCompleter = match shell {
        ShellArg::Bash => &BASH,
        ShellArg::Zsh => &ZSH,
        ShellArg::Fish => &FISH,
        ShellArg::Elvish => &Elvish,
        ShellArg::Powershell => &Powershell,
    };
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = shell.write_registration(VAR, "jeton", "jeton", "jeton", &mut buf);
    buf
}

/// Our bash, zsh and fish: a script of ours (complete/), and one candidate a line back.
struct Ours {
    name: &'static str,
    script: &'static str,
    /// `value<TAB>description` lines (else values alone).
    help: bool,
    /// A line with no value carries a message for the shell to show.
    hint: bool,
}

const BASH: Ours = Ours {
    name: "bash",
    script: include_str!("complete/jeton.bash"),
    help: false,
    hint: false,
};
const ZSH: Ours = Ours {
    name: "zsh",
    script: include_str!("complete/jeton.zsh"),
    help: true,
    hint: true,
};
const FISH: Ours = Ours {
    name: "fish",
    script: include_str!("complete/jeton.fish"),
    help: true,
    hint: false,
};

impl EnvCompleter for Ours {
    fn name(&self) -> &'static str {
        self.name
    }

    fn is(&self, name: &str) -> bool {
        name == self.name
    }

    fn write_registration(
        &self,
        _var: &str,
        _name: &str,
        _bin: &str,
        _completer: &str,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        buf.write_all(self.script.as_bytes())
    }

    /// `args` are the words up to the cursor, the last one being completed.
    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        // The bash and zsh scripts of older jetons (the completion library's) set this; they
        // read the library's format.
        if std::env::var_os("_CLAP_COMPLETE_INDEX").is_some() {
            let older: &dyn EnvCompleter = match self.name {
                "zsh" => &clap_complete::env::Zsh,
                "fish" => &clap_complete::env::Fish,
                _ => &clap_complete::env::Bash,
            };
            return older.write_complete(cmd, args, current_dir, buf);
        }
        let index = args.len().saturating_sub(1);
        let candidates = clap_complete::engine::complete(cmd, args, index, current_dir)?;
        for c in candidates {
            let value = c.get_value().to_string_lossy();
            // A line break or a tab in a value would split it (tab: before its description).
            if value.is_empty() || value.contains(['\n', '\r', '\t']) {
                continue;
            }
            buf.write_all(value.as_bytes())?;
            if let Some(help) = c.get_help().filter(|_| self.help) {
                let help = help.to_string();
                let first = help.lines().next().unwrap_or_default();
                write!(buf, "\t{}", first.replace('\t', " "))?;
            }
            buf.write_all(b"\n")?;
        }
        if self.hint && LOCKED.load(Ordering::Relaxed) {
            writeln!(buf, "\t{LOCKED_HINT}")?;
        }
        Ok(())
    }
}

/// Subcommands whose entry names may be a team's, `TEAM:NAME` (the requests ctx/route.rs
/// runs on a team vault).
const TEAM_COMMANDS: &[&str] = &[
    "get",
    "show",
    "otp",
    "rm",
    "edit",
    "rename",
    "list",
    "rotate",
    "history",
    "rollback",
    "disable",
    "enable",
    "revoke",
    "log",
    "check ack",
];

/// A name completer: the candidates for the word being completed.
type Completer = fn(&OsStr) -> Vec<CompletionCandidate>;

/// The command definition, with names completing wherever a command takes an existing one: an
/// entry's (a positional `NAME` or `OLD`, and the `PATTERN` of `list`; not in `add`, whose name
/// is new, nor in `contact`), with teams (`ops:`) where a team entry is allowed, and a team's
/// (the positional `TEAM` of `team`, but in `team create`).
fn command(mut cmd: clap::Command) -> clap::Command {
    cmd.build();
    with_name_completion(cmd, "")
}

/// `cmd`, found at `path` (`""`, `check`, ...), with its subcommands' name completers.
fn with_name_completion(mut cmd: clap::Command, path: &str) -> clap::Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for sub in subs {
        let path = if path.is_empty() {
            sub.clone()
        } else {
            format!("{path} {sub}")
        };
        cmd = cmd.mut_subcommand(&sub, |s| {
            let completers: Vec<(String, Completer)> = s
                .get_positionals()
                .filter_map(|a| Some((a.get_id().to_string(), completer_for(&path, a)?)))
                .collect();
            let mut s = with_name_completion(s, &path);
            for (id, completer) in completers {
                s = s.mut_arg(id, |a| a.add(ArgValueCompleter::new(completer)));
            }
            s
        });
    }
    cmd
}

/// Which names the positional `arg` of the subcommand at `path` takes, if any.
fn completer_for(path: &str, arg: &clap::Arg) -> Option<Completer> {
    let named = |name: &str| {
        arg.get_value_names()
            .is_some_and(|v| v.iter().any(|n| n == name))
    };
    let new_or_contact = path == "add" || path == "contact" || path.starts_with("contact ");
    let entry = (named("NAME") || named("OLD")) && !new_or_contact;
    if entry || (path == "list" && named("PATTERN")) {
        return Some(if TEAM_COMMANDS.contains(&path) {
            entry_or_team_names
        } else {
            entry_names
        });
    }
    if path.starts_with("team ") && path != "team create" && named("TEAM") {
        return Some(team_names);
    }
    None
}

/// The personal entry names (and folders, ending in `/`) that start with `current`.
fn entry_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let (Some(current), Some(session)) = (current.to_str(), session()) else {
        return Vec::new();
    };
    let names = entry_list(&session, None).unwrap_or_default();
    candidates(one_level(current, names))
}

/// As [`entry_names`], and the teams (`ops:`) that start with `current`; after `TEAM:`, that
/// team's entry names.
fn entry_or_team_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let (Some(current), Some(session)) = (current.to_str(), session()) else {
        return Vec::new();
    };
    if let Some((team, rest)) = jeton::team::split(current) {
        if jeton::team::validate_name(team).is_err() {
            return Vec::new();
        }
        let names = entry_list(&session, Some(team)).unwrap_or_default();
        let names = one_level(rest, names).into_iter();
        return candidates(names.map(|n| format!("{team}:{n}")).collect());
    }
    // Locked: no teams either (and one hint).
    let Some(names) = entry_list(&session, None) else {
        return Vec::new();
    };
    let mut out = one_level(current, names);
    out.extend(
        teams(&session)
            .into_iter()
            .filter(|t| t.starts_with(current))
            .map(|t| format!("{t}:")),
    );
    candidates(out)
}

/// The team names that start with `current`.
fn team_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let (Some(current), Some(session)) = (current.to_str(), session()) else {
        return Vec::new();
    };
    let mut teams = teams(&session);
    teams.retain(|t| t.starts_with(current));
    candidates(teams)
}

fn candidates(values: Vec<String>) -> Vec<CompletionCandidate> {
    values.into_iter().map(CompletionCandidate::new).collect()
}

/// The vault on the line being completed (`--vault`, else `$JETON_VAULT`, else the default).
fn session() -> Option<Session> {
    let path = jeton::paths::vault_path(vault_flag())?;
    Some(Session {
        store: jeton::store::Store::new(path, Duration::from_secs(1)),
        state_dir: jeton::paths::state_dir(),
        accept_rollback: false,
    })
}

/// What the agent answers to `request` (on team `team`'s vault if given); `None` when no agent
/// holds the key, which sets [`LOCKED`] if the vault exists.
fn ask(session: &Session, team: Option<&str>, request: &Request) -> Option<Response> {
    let via = match team {
        Some(team) => client::run_team(session, team, request),
        None => client::run(session, request),
    };
    match via {
        Ok(Via::Agent(outcome)) => Some(outcome.value),
        Ok(Via::Local(_)) => {
            if session.store.exists() {
                LOCKED.store(true, Ordering::Relaxed);
            }
            None
        }
        Err(_) => None,
    }
}

/// Every entry name of the personal vault, or of team `team`'s (without the `TEAM:` prefix).
fn entry_list(session: &Session, team: Option<&str>) -> Option<Vec<String>> {
    let request = Request::List(ListFilter {
        status: StatusFilter::All,
        ..ListFilter::default()
    });
    let Response::List(items) = ask(session, team, &request)? else {
        return None;
    };
    Some(items.into_iter().map(|s| s.name).collect())
}

/// The teams of the personal vault.
fn teams(session: &Session) -> Vec<String> {
    if !jeton::team::teams_dir(session.store.path()).is_dir() {
        return Vec::new();
    }
    let request = Request::Team(TeamRequest::List { team: None });
    match ask(session, None, &request) {
        Some(Response::Team(r)) => match *r {
            TeamResponse::Listed(teams) => teams.into_iter().map(|t| t.name).collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The `names` that start with `current`, one folder level at a time as paths complete:
/// `gi` gives `github/`, `github/` gives `github/work`.
fn one_level(current: &str, mut names: Vec<String>) -> Vec<String> {
    names.sort();
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let Some(rest) = name.strip_prefix(current) else {
            continue;
        };
        let shown = match rest.find('/') {
            Some(i) if i > 0 => format!("{current}{}", &rest[..=i]),
            _ => name,
        };
        if out.last() != Some(&shown) {
            out.push(shown);
        }
    }
    out
}

/// `--vault PATH` or `--vault=PATH` from the command line being completed, if given.
fn vault_flag() -> Option<PathBuf> {
    let args: Vec<OsString> = std::env::args_os().collect();
    args.iter().enumerate().find_map(|(i, a)| {
        if a == "--vault" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            a.to_str()?.strip_prefix("--vault=").map(PathBuf::from)
        }
    })
}
