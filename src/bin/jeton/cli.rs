//! The command line, as clap sees it: the command enum and where each command goes. Each
//! family module owns its arguments and runs them; this file only names and dispatches them.

use crate::args::{Deferred, GlobalArgs};
use crate::ctx::{Ctx, Exit};
use crate::{
    agent, backup, clip, complete, entries, find, generate, integrations, lifecycle, migrate, otp,
    recovery, scan, share, sync, team, vault,
};
use clap::{CommandFactory, Parser, Subcommand};
use jeton::Result;
use std::ffi::OsString;

const EXIT_CODES: &str = "\
Exit codes:
  0  ok
  1  other failure
  2  usage error (bad flag, bad name, bad value)
  3  cannot unlock (wrong passphrase, no passphrase source, bundle not addressed to this vault)
  4  not found (entry, contact, vault)
  5  entry disabled or revoked
  6  integrity or authenticity failure (corrupt or tampered vault or bundle, bad or
     unknown signature, bundle expired, replayed or forwarded)
  7  vault busy (lock timeout)
  8  `check` found problems; `scan` found a vault secret
  9  already exists / import conflict

Passphrase sources, first found wins: a running agent holding the key (`jeton unlock`), --passphrase-fd N, $JETON_PASSPHRASE_FILE,
$JETON_PASSPHRASE_COMMAND, $JETON_PASSPHRASE (weakest), a hidden prompt on the terminal.";

/// jeton: an encrypted local vault for API access tokens.
#[derive(Debug, Parser)]
#[command(name = "jeton", version, about, after_help = EXIT_CODES, disable_help_subcommand = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault (refuses to overwrite one)
    Init(Deferred<vault::InitArgs>),
    /// Add an entry; the secret comes from a prompt, stdin, or --generate
    Add(Deferred<entries::AddArgs>),
    /// Print an entry's secret (or one field)
    Get(Deferred<entries::GetArgs>),
    /// Show an entry's metadata (secret masked unless --reveal)
    Show(Deferred<entries::ShowArgs>),
    /// List entries, one line each; never secrets
    List(Deferred<entries::ListArgs>),
    /// Find entries by name, url, username, tag, scope or note, best match first
    Search(Deferred<find::SearchArgs>),
    /// Find where the vault's own secrets leaked: files, standard input (-), git history
    /// (--git), staged changes (--staged); exit 8 when found
    Scan(Deferred<scan::ScanArgs>),
    /// Print the one-time code (TOTP) of an entry holding a seed
    Otp(Deferred<otp::OtpArgs>),
    /// Print a random secret or passphrase (no vault needed)
    Generate(Deferred<generate::GenerateCommand>),
    /// Clear the clipboard later if it still holds a value (started by `get --clip`)
    #[command(hide = true)]
    ClipClear(Deferred<clip::ClipClearArgs>),
    /// Change an entry's metadata (an empty value clears a field); with no flag, in $EDITOR
    Edit(Deferred<entries::EditArgs>),
    /// Rename an entry
    #[command(defer(crate::args::with_globals))]
    Rename {
        /// Current name
        old: String,
        /// New name
        new: String,
    },
    /// Delete an entry entirely (asks on a terminal, else needs --yes)
    #[command(defer(crate::args::with_globals))]
    Rm {
        /// Entry name
        name: String,
    },
    /// Change the passphrase (new salt and new vault key)
    Passwd(Deferred<vault::PasswdArgs>),
    /// Print shell completions
    #[command(defer(crate::args::with_globals))]
    Completions {
        /// Target shell
        #[arg(value_enum)]
        shell: complete::ShellArg,
    },
    /// Print the man page (roff)
    #[command(defer(crate::args::with_globals))]
    Man,
    // == lifecycle: rotate, history, rollback, disable, enable, revoke, check, log, config ==
    #[command(flatten)]
    Lifecycle(lifecycle::LifecycleCommand),
    // == sharing: identity, contact, share, import ==
    /// Print this vault's contact card (one line) and its fingerprint
    #[command(defer(crate::args::with_globals))]
    Identity,
    /// The authorised people: who you share with and accept bundles from
    #[command(subcommand)]
    #[command(defer(crate::args::with_globals))]
    Contact(share::ContactCommand),
    /// Write a signed bundle of entries, encrypted to contacts (a standard age file)
    Share(Deferred<share::ShareArgs>),
    /// Read a bundle from a contact: checks its signature, recipients, expiry, replay
    Import(Deferred<share::ImportArgs>),
    // == agent and integrations: unlock, lock, agent, exec, inject, credential helpers ==
    /// Start the agent if needed and unlock the vault in it (asks the passphrase once)
    Unlock(Deferred<agent::UnlockArgs>),
    /// Make the agent forget every key
    #[command(defer(crate::args::with_globals))]
    Lock,
    /// Start, stop or inspect the background agent
    #[command(subcommand)]
    #[command(defer(crate::args::with_globals))]
    Agent(agent::AgentCommand),
    /// Run a command with secrets in its environment; its exit code is jeton's
    Exec(Deferred<integrations::ExecArgs>),
    /// Fill {{ jeton://NAME[#field] }} references in a template
    Inject(Deferred<integrations::InjectArgs>),
    /// git credential helper: git config --global credential.helper '!jeton git-credential'
    #[command(defer(crate::args::with_globals))]
    GitCredential {
        /// get, store or erase (store and erase change nothing)
        operation: String,
    },
    /// cargo credential provider: credential-provider = ["jeton", "cargo-credential"]
    #[command(defer(crate::args::with_globals))]
    CargoCredential {
        /// Speak cargo's JSON-lines protocol on stdin/stdout (cargo always passes it)
        #[arg(long)]
        cargo_plugin: bool,
    },
    /// Docker credential helper (the same as running it as docker-credential-jeton)
    #[command(defer(crate::args::with_globals))]
    DockerCredential {
        /// get, store, erase, list or version (store and erase change nothing)
        operation: Option<String>,
    },
    // == migration, recovery, backup ==
    /// Bring tokens in from pass, gopass, KeePassXC, Bitwarden or a .env file
    Migrate(Deferred<migrate::MigrateArgs>),
    /// The recovery key: `recovery new` makes one (the previous one stops working)
    #[command(subcommand)]
    #[command(defer(crate::args::with_globals))]
    Recovery(recovery::RecoveryCommand),
    /// Open the vault with the recovery key and set a new passphrase
    Recover(Deferred<recovery::RecoverArgs>),
    /// Write a consistent backup of the vault (`backup verify FILE` checks one)
    Backup(Deferred<backup::BackupArgs>),
    // == sync ==
    /// Sync this vault with its other devices through git or a shared folder (`sync init`, `sync clone`, `sync status`)
    Sync(Deferred<sync::SyncArgs>),
    // == team vaults ==
    /// Team vaults shared through git or a folder: `team create`, `add`, `join`, `remove`, `list`, `leave`
    #[command(subcommand)]
    #[command(defer(crate::args::with_globals))]
    Team(team::TeamCommand),
    // == rotation at the issuer ==
    /// Rotation recipes at the issuer: `issuer set NAME RECIPE`, `issuer show NAME`
    #[command(subcommand)]
    #[command(defer(crate::args::with_globals))]
    Issuer(lifecycle::IssuerCommand),
    /// What to update after a rotation at the issuer: `integration add`, `list`, `rm`
    #[command(subcommand)]
    #[command(defer(crate::args::with_globals))]
    Integration(lifecycle::IntegrationCommand),
}

/// The arguments jeton was started with, with the ways other tools start it rewritten into
/// ordinary subcommands (`docker-credential-jeton get`, `jeton --cargo-plugin`).
pub fn args() -> Vec<OsString> {
    integrations::invocation(std::env::args_os())
}

/// Answers a shell's completion request and exits, when one was made; otherwise returns.
pub fn answer_completion_if_asked() {
    complete::answer_if_asked(Cli::command);
}

/// Runs the parsed command line. Completions, the man page, `generate` and the clipboard
/// clearer come first: they need no vault, and no global flag's value can stop them.
pub fn run(cli: Cli) -> Result<Exit> {
    let global = cli.global;
    let ctx = match cli.command {
        Command::Completions { shell } => return complete::completions(shell),
        Command::Man => return complete::man(Cli::command()),
        Command::Generate(Deferred(a)) => return generate::run(&global, &a),
        Command::ClipClear(Deferred(a)) => return clip::clear_later(a).map(|()| Exit::Ok),
        _ => Ctx::new(&global)?,
    };
    let now = jeton::time::now();
    let result = match cli.command {
        Command::Init(Deferred(a)) => vault::init(&ctx, a),
        Command::Add(Deferred(a)) => entries::add(&ctx, a, now),
        Command::Get(Deferred(a)) => entries::get(&ctx, a, now),
        Command::Show(Deferred(a)) => entries::show(&ctx, a),
        Command::List(Deferred(a)) => entries::list(&ctx, a, now),
        Command::Search(Deferred(a)) => find::search(&ctx, a),
        Command::Otp(Deferred(a)) => otp::otp(&ctx, a),
        Command::Scan(Deferred(a)) => scan::run(&ctx, a),
        Command::Edit(Deferred(a)) => entries::edit(&ctx, a, now),
        Command::Rename { old, new } => entries::rename(&ctx, old, new),
        Command::Rm { name } => entries::rm(&ctx, name),
        Command::Passwd(Deferred(a)) => vault::passwd(&ctx, a),
        Command::Lifecycle(c) => lifecycle::run(&ctx, c, now),
        Command::Identity => share::identity(&ctx),
        Command::Contact(c) => share::contact(&ctx, c),
        Command::Share(Deferred(a)) => share::share(&ctx, a),
        Command::Import(Deferred(a)) => share::import(&ctx, a),
        Command::Unlock(Deferred(a)) => agent::unlock(&ctx, a),
        Command::Lock => agent::lock(&ctx),
        Command::Agent(a) => agent::agent(&ctx, a),
        Command::Exec(Deferred(a)) => integrations::exec(&ctx, a),
        Command::Inject(Deferred(a)) => integrations::inject(&ctx, a),
        Command::GitCredential { operation } => integrations::git_credential(&ctx, &operation),
        Command::CargoCredential { cargo_plugin } => {
            integrations::cargo_credential(&ctx, cargo_plugin)
        }
        Command::DockerCredential { operation } => {
            integrations::docker_credential(&ctx, operation.as_deref())
        }
        Command::Migrate(Deferred(a)) => migrate::run(&ctx, a),
        Command::Recovery(c) => recovery::run(&ctx, c),
        Command::Recover(Deferred(a)) => recovery::recover(&ctx, a),
        Command::Backup(Deferred(a)) => backup::run(&ctx, a),
        Command::Sync(Deferred(a)) => sync::run(&ctx, a),
        Command::Team(c) => team::run(&ctx, c),
        Command::Issuer(c) => lifecycle::issuer(&ctx, c),
        Command::Integration(c) => lifecycle::integration(&ctx, c),
        // Handled above, before the context.
        Command::Completions { shell } => complete::completions(shell),
        Command::Man => complete::man(Cli::command()),
        Command::Generate(Deferred(a)) => generate::run(&global, &a),
        Command::ClipClear(Deferred(a)) => clip::clear_later(a).map(|()| Exit::Ok),
    };
    if result.is_ok() {
        agent::offer_after_prompt(&ctx);
    }
    result
}

/// A usage error from clap as the one line CLI.md promises (`jeton: error: ...` is added by
/// `main`): clap's message, its "similar argument" tip if it has one, and where the help is.
/// The value of an unexpected positional argument is not repeated: it may be a secret typed
/// there by mistake.
pub fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let rendered = e.render().to_string();
    let head = rendered.split("\n\n").next().unwrap_or_default();
    let head: Vec<&str> = head
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let head = head.join(" ");
    let mut message = head.strip_prefix("error: ").unwrap_or(&head).to_owned();
    let positional = e.kind() == ErrorKind::UnknownArgument
        && matches!(e.get(ContextKind::InvalidArg), Some(ContextValue::String(a)) if !a.starts_with('-'));
    if positional {
        message = "unexpected argument (not repeated here: a secret is never an argument; \
                   jeton reads it from stdin or a prompt)"
            .into();
    } else if let Some(tip) = rendered
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .find(|t| t.contains("similar"))
    {
        message = format!("{message} ({tip})");
    }
    let message: String = message
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_debug().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    format!("{message}; see '{} --help'", command_path(args))
}

/// `jeton SUB [SUB]`: the subcommands named in `args`, for pointing at the right help.
fn command_path(args: &[std::ffi::OsString]) -> String {
    let mut cmd = Cli::command();
    let mut path = String::from("jeton");
    for a in args.iter().skip(1).filter_map(|a| a.to_str()) {
        if a == "--" {
            break;
        }
        if let Some(sub) = cmd.find_subcommand(a).cloned() {
            path.push(' ');
            path.push_str(sub.get_name());
            cmd = sub;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::global_options;
    use std::path::PathBuf;

    #[test]
    fn clap_accepts_the_definition() {
        Cli::command().debug_assert();
    }

    fn global_ids() -> Vec<String> {
        global_options()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect()
    }

    #[test]
    fn every_subcommand_takes_the_global_options() {
        fn walk(cmd: &clap::Command, path: &str, ids: &[String], seen: &mut usize) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                for id in ids {
                    assert!(
                        sub.get_arguments().any(|a| a.get_id() == id.as_str()),
                        "`{path}` has no --{id}: its variant needs #[command(defer(crate::args::with_globals))]"
                    );
                }
                *seen += 1;
                walk(sub, &path, ids, seen);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut seen = 0;
        walk(&cmd, "jeton", &global_ids(), &mut seen);
        assert!(seen > 40, "only {seen} subcommands seen");
    }

    #[test]
    fn a_global_option_counts_wherever_it_is_given() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["jeton"][..], args].concat()).unwrap();
        let cli = parse(&["contact", "list", "--vault", "/v", "--json"]);
        assert_eq!(cli.global.vault, Some(PathBuf::from("/v")));
        assert!(cli.global.json && !cli.global.quiet);
        let cli = parse(&["--lock-timeout", "5s", "-q", "get", "a"]);
        assert_eq!(cli.global.lock_timeout, "5s");
        assert!(cli.global.quiet);
        let cli = parse(&["get", "a"]);
        assert_eq!(cli.global.lock_timeout, "10s");
        // Given twice, the later (the subcommand's) wins, as it did with clap's own globals.
        let cli = parse(&[
            "--vault",
            "/a",
            "config",
            "set",
            "history-limit",
            "3",
            "--vault",
            "/b",
        ]);
        assert_eq!(cli.global.vault, Some(PathBuf::from("/b")));
        assert!(Cli::try_parse_from(["jeton", "get", "a", "--bogus"]).is_err());
    }

    /// The modules below `cli`, top to bottom; every other module beside `main.rs` is a command
    /// family, and a family's folder (`entries/`) belongs to it.
    const LOWER: &[&[&str]] = &[
        &["ctx"],
        &["args"],
        &["output", "prompt", "clip", "config_file"],
    ];

    /// The modules a source file names: `crate::NAME`, `crate::{NAME, ...}`, and `super::NAME`
    /// or `super::super::NAME` where that means the crate.
    fn named(source: &str, depth: usize) -> Vec<String> {
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let root = ["crate::".to_owned(), "super::".repeat(depth + 1)];
        let mut names = Vec::new();
        for prefix in &root {
            for (at, _) in source.match_indices(prefix.as_str()) {
                let rest = &source[at + prefix.len()..];
                if prefix.starts_with("super") && source[..at].ends_with("super::") {
                    continue;
                }
                match rest.strip_prefix('{') {
                    Some(group) => {
                        let group = &group[..group.find('}').unwrap_or(group.len())];
                        names.extend(group.split(',').map(ident).filter(|n| !n.is_empty()));
                    }
                    None => names.push(ident(rest)),
                }
            }
        }
        names.retain(|n| !n.is_empty());
        names
    }

    /// The arrows of the binary point one way (main.rs): a module names only modules of a lower
    /// layer, so no command family names another, and nothing below `cli` names a family.
    #[test]
    fn modules_name_only_lower_layers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin/jeton");
        let mut files = Vec::new(); // (module, file, depth below the crate's root folder)
        for top in std::fs::read_dir(&dir).unwrap() {
            let path = top.unwrap().path();
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                for sub in std::fs::read_dir(&path).unwrap() {
                    files.push((module.clone(), sub.unwrap().path(), 1));
                }
            } else {
                files.push((module, path, 0));
            }
        }
        let lower: Vec<&str> = LOWER.iter().flat_map(|l| l.iter().copied()).collect();
        let families: Vec<String> = files
            .iter()
            .filter(|(m, _, _)| {
                !["main", "cli"].contains(&m.as_str()) && !lower.contains(&m.as_str())
            })
            .map(|(m, _, _)| m.clone())
            .collect();
        assert!(
            families.iter().any(|f| f == "entries") && families.len() > 10,
            "{families:?}"
        );
        let layer = |m: &str| -> Option<usize> {
            match m {
                "main" => Some(0),
                "cli" => Some(1),
                m if families.iter().any(|f| f == m) => Some(2),
                m => LOWER.iter().position(|l| l.contains(&m)).map(|i| i + 3),
            }
        };
        let mut checked = 0;
        for (module, file, depth) in &files {
            let source = std::fs::read_to_string(file).unwrap();
            // Tests may name what they test.
            let source = source.split("#[cfg(test)]").next().unwrap_or_default();
            let own = layer(module).unwrap();
            for name in named(source, *depth).into_iter().filter(|n| n != module) {
                let Some(theirs) = layer(&name) else {
                    panic!("{} names crate::{name}, which is no module", file.display());
                };
                assert!(
                    theirs > own,
                    "{} ({module}) names {name}, which is not below it: the arrows must point \
                     one way (main -> cli -> families -> ctx -> args -> output, prompt, clip)",
                    file.display()
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} paths checked");
    }

    #[test]
    fn the_layer_check_sees_a_sibling() {
        assert_eq!(named("use crate::sync::run;", 0), ["sync"]);
        assert_eq!(named("use crate::{args, share};", 0), ["args", "share"]);
        assert_eq!(named("super::share::x(); use super::*;", 0), ["share"]);
        assert_eq!(
            named("super::editor::edit(); super::super::otp::x()", 1),
            ["otp"]
        );
    }
}
