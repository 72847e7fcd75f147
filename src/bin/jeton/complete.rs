//! Shell completion that knows the vault: subcommands and flags from the command definition,
//! entry names from the agent when it holds the key. The shell scripts `jeton completions
//! SHELL` prints call `jeton` back with `JETON_COMPLETE=SHELL` set, and this module answers.
//! Completion never opens the vault itself, so it never prompts: with no unlocked agent,
//! entry names complete to nothing at once. `man` is here too: both render the whole command
//! definition, which the caller passes in.

use crate::ctx::{Exit, emit};
use clap::ValueEnum;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{Bash, CompleteEnv, Elvish, EnvCompleter, Fish, Powershell, Zsh};
use jeton::Error;
use jeton::agent::client::{self, Via};
use jeton::request::{ListFilter, Request, Response, Session, StatusFilter};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

/// The variable that makes `jeton` answer a completion request instead of running a command.
const VAR: &str = "JETON_COMPLETE";

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
        ShellArg::Bash => &Bash,
        ShellArg::Zsh => &Zsh,
        ShellArg::Fish => &Fish,
        ShellArg::Elvish => &Elvish,
        ShellArg::Powershell => &Powershell,
    };
    let mut buf = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = shell.write_registration(VAR, "jeton", "jeton", "jeton", &mut buf);
    buf
}

/// The command definition, with entry names completing wherever a command takes an existing
/// entry's name (a positional `NAME` or `OLD`; not `add`, whose name is new, nor `contact`).
fn command(mut cmd: clap::Command) -> clap::Command {
    cmd.build();
    with_name_completion(cmd)
}

fn with_name_completion(mut cmd: clap::Command) -> clap::Command {
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .filter(|n| n != "add" && n != "contact")
        .collect();
    for sub in subs {
        cmd = cmd.mut_subcommand(sub, |s| {
            let names: Vec<String> = s
                .get_positionals()
                .filter(|a| {
                    a.get_value_names()
                        .is_some_and(|v| v.iter().any(|n| n == "NAME" || n == "OLD"))
                })
                .map(|a| a.get_id().to_string())
                .collect();
            let mut s = with_name_completion(s);
            for id in names {
                s = s.mut_arg(id, |a| a.add(ArgValueCompleter::new(entry_names)));
            }
            s
        });
    }
    cmd
}

/// The entry names (and folders, ending in `/`) that start with `current`, from the agent;
/// nothing when no agent holds the key of the vault.
fn entry_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let Some(path) = jeton::paths::vault_path(vault_flag()) else {
        return Vec::new();
    };
    let session = Session {
        store: jeton::store::Store::new(path, Duration::from_secs(1)),
        state_dir: jeton::paths::state_dir(),
        accept_rollback: false,
    };
    let request = Request::List(ListFilter {
        status: StatusFilter::All,
        ..ListFilter::default()
    });
    let Ok(Via::Agent(outcome)) = client::run(&session, &request) else {
        return Vec::new();
    };
    let Response::List(items) = outcome.value else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for name in items.into_iter().map(|s| s.name) {
        let Some(rest) = name.strip_prefix(current) else {
            continue;
        };
        // One folder level at a time, as paths complete.
        let shown = match rest.find('/') {
            Some(i) if i > 0 => format!("{current}{}", &rest[..=i]),
            _ => name,
        };
        if out.last() != Some(&shown) {
            out.push(shown);
        }
    }
    out.into_iter().map(CompletionCandidate::new).collect()
}

/// `--vault PATH` or `--vault=PATH` from the command line being completed, if given.
fn vault_flag() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().enumerate().find_map(|(i, a)| {
        if a == "--vault" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            a.strip_prefix("--vault=").map(PathBuf::from)
        }
    })
}
