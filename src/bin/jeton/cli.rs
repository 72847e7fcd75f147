//! The command line, as clap sees it. No logic here: commands.rs turns these into requests.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
  8  `check` found problems
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

// The options every subcommand takes, before or after its name (`jeton --json list` and
// `jeton list --json` alike). The root command declares them once; a subcommand gets them from
// `with_globals` only when it is built, that is when it is the one that runs, or for help,
// completions and the man page. Declaring them `global` on the root instead would make clap copy
// all seven into each of the forty subcommands on every start, a third of what parsing `jeton
// get` costs. (A plain comment: a doc comment here would become the root command's about.)
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Vault file [default: $JETON_VAULT, else $XDG_DATA_HOME/jeton/vault.jeton]
    #[arg(long, value_name = "PATH")]
    pub vault: Option<PathBuf>,
    /// Machine-readable output on stdout (stable field names, RFC 3339 UTC times)
    #[arg(long)]
    pub json: bool,
    /// Print nothing but requested data and errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    /// How long a writer waits for another one to finish
    #[arg(long, value_name = "SPAN", default_value = "10s")]
    pub lock_timeout: String,
    /// Read the passphrase from this open file descriptor
    #[arg(long, value_name = "N")]
    pub passphrase_fd: Option<u32>,
    /// Allow writing to a vault older than the last generation written here
    #[arg(long)]
    pub accept_rollback: bool,
}

/// Adds the options of [`GlobalArgs`] to a subcommand as clap global arguments, so that its own
/// subcommands take them too and clap hands a value given at any level to every level, the root
/// included. Skips an option the subcommand has already (from its parent's propagation). Every
/// subcommand runs this when built: [`Deferred`] does, and the others name it with
/// `#[command(defer(crate::cli::with_globals))]` (a test checks that none is left out).
pub fn with_globals(mut cmd: clap::Command) -> clap::Command {
    for arg in global_options().get_arguments() {
        if cmd.get_arguments().all(|a| a.get_id() != arg.get_id()) {
            cmd = cmd.arg(arg.clone().global(true));
        }
    }
    cmd
}

/// A command holding just the options of [`GlobalArgs`].
fn global_options() -> clap::Command {
    GlobalArgs::augment_args(clap::Command::new("jeton"))
}

/// How to generate a secret instead of reading one.
#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// Generate a random secret (OS CSPRNG) instead of reading one
    #[arg(long)]
    pub generate: bool,
    /// Length of the generated secret
    #[arg(long, requires = "generate", default_value_t = 32)]
    pub length: usize,
    /// Alphabet of the generated secret
    #[arg(long, requires = "generate", value_enum, default_value_t = CharsetArg::Alnum)]
    pub charset: CharsetArg,
    /// Characters never to use, e.g. 'O0Il1' (with --length/--charset)
    #[arg(
        long,
        value_name = "CHARS",
        requires = "generate",
        conflicts_with = "words"
    )]
    pub exclude: Option<String>,
    /// A passphrase of N random words from EFF's long list instead of characters
    #[arg(long, value_name = "N", requires = "generate", conflicts_with_all = ["length", "charset"])]
    pub words: Option<usize>,
    /// Between the words of --words
    #[arg(long, value_name = "S", requires = "words", default_value = "-")]
    pub separator: String,
}

/// Alphabets for generated secrets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CharsetArg {
    /// A-Z a-z 0-9
    Alnum,
    /// 0-9 a-f
    Hex,
    /// A-Z a-z 0-9 - _
    Base64url,
    /// printable ASCII
    Ascii,
}

/// Statuses for `list --status`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// In use
    Active,
    /// Disabled
    Disabled,
    /// Revoked tombstones
    Revoked,
    /// Everything
    All,
}

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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault (refuses to overwrite one)
    Init(Deferred<InitArgs>),
    /// Add an entry; the secret comes from a prompt, stdin, or --generate
    Add(Deferred<AddArgs>),
    /// Print an entry's secret (or one field)
    Get(Deferred<GetArgs>),
    /// Show an entry's metadata (secret masked unless --reveal)
    Show(Deferred<ShowArgs>),
    /// List entries, one line each; never secrets
    List(Deferred<ListArgs>),
    /// Find entries by name, url, username, tag, scope or note, best match first
    Search(Deferred<crate::find::SearchArgs>),
    /// Print the one-time code (TOTP) of an entry holding a seed
    Otp(Deferred<crate::otp::OtpArgs>),
    /// Print a random secret or passphrase (no vault needed)
    Generate(Deferred<crate::generate::GenerateCommand>),
    /// Clear the clipboard later if it still holds a value (started by `get --clip`)
    #[command(hide = true)]
    ClipClear(Deferred<crate::clip::ClipClearArgs>),
    /// Change an entry's metadata (an empty value clears a field); with no flag, in $EDITOR
    Edit(Deferred<EditArgs>),
    /// Rename an entry
    #[command(defer(crate::cli::with_globals))]
    Rename {
        /// Current name
        old: String,
        /// New name
        new: String,
    },
    /// Delete an entry entirely (asks on a terminal, else needs --yes)
    #[command(defer(crate::cli::with_globals))]
    Rm {
        /// Entry name
        name: String,
    },
    /// Change the passphrase (new salt and new vault key)
    Passwd(Deferred<PasswdArgs>),
    /// Print shell completions
    #[command(defer(crate::cli::with_globals))]
    Completions {
        /// Target shell
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print the man page (roff)
    #[command(defer(crate::cli::with_globals))]
    Man,
    // == lifecycle: rotate, history, rollback, disable, enable, revoke, check, log, config ==
    #[command(flatten)]
    Lifecycle(crate::lifecycle::LifecycleCommand),
    // == sharing: identity, contact, share, import ==
    /// Print this vault's contact card (one line) and its fingerprint
    #[command(defer(crate::cli::with_globals))]
    Identity,
    /// The authorised people: who you share with and accept bundles from
    #[command(subcommand)]
    #[command(defer(crate::cli::with_globals))]
    Contact(crate::share::ContactCommand),
    /// Write a signed bundle of entries, encrypted to contacts (a standard age file)
    Share(Deferred<crate::share::ShareArgs>),
    /// Read a bundle from a contact: checks its signature, recipients, expiry, replay
    Import(Deferred<crate::share::ImportArgs>),
    // == agent and integrations: unlock, lock, agent, exec, inject, credential helpers ==
    /// Start the agent if needed and unlock the vault in it (asks the passphrase once)
    Unlock(Deferred<UnlockArgs>),
    /// Make the agent forget every key
    #[command(defer(crate::cli::with_globals))]
    Lock,
    /// Start, stop or inspect the background agent
    #[command(subcommand)]
    #[command(defer(crate::cli::with_globals))]
    Agent(AgentCommand),
    /// Run a command with secrets in its environment; its exit code is jeton's
    Exec(Deferred<ExecArgs>),
    /// Fill {{ jeton://NAME[#field] }} references in a template
    Inject(Deferred<InjectArgs>),
    /// git credential helper: git config --global credential.helper '!jeton git-credential'
    #[command(defer(crate::cli::with_globals))]
    GitCredential {
        /// get, store or erase (store and erase change nothing)
        operation: String,
    },
    /// cargo credential provider: credential-provider = ["jeton", "cargo-credential"]
    #[command(defer(crate::cli::with_globals))]
    CargoCredential {
        /// Speak cargo's JSON-lines protocol on stdin/stdout (cargo always passes it)
        #[arg(long)]
        cargo_plugin: bool,
    },
    /// Docker credential helper (the same as running it as docker-credential-jeton)
    #[command(defer(crate::cli::with_globals))]
    DockerCredential {
        /// get, store, erase, list or version (store and erase change nothing)
        operation: Option<String>,
    },
    // == migration, recovery, backup ==
    /// Bring tokens in from pass, gopass, KeePassXC, Bitwarden or a .env file
    Migrate(Deferred<crate::migrate::MigrateArgs>),
    /// The recovery key: `recovery new` makes one (the previous one stops working)
    #[command(subcommand)]
    #[command(defer(crate::cli::with_globals))]
    Recovery(crate::recovery::RecoveryCommand),
    /// Open the vault with the recovery key and set a new passphrase
    Recover(Deferred<crate::recovery::RecoverArgs>),
    /// Write a consistent backup of the vault (`backup verify FILE` checks one)
    Backup(Deferred<crate::backup::BackupArgs>),
    // == sync ==
    /// Sync this vault with its other devices through git or a shared folder (`sync init`, `sync clone`, `sync status`)
    Sync(Deferred<crate::sync::SyncArgs>),
    // == team vaults ==
    /// Team vaults shared through git or a folder: `team create`, `add`, `join`, `remove`, `list`, `leave`
    #[command(subcommand)]
    #[command(defer(crate::cli::with_globals))]
    Team(crate::team::TeamCommand),
    // == rotation at the issuer ==
    /// Rotation recipes at the issuer: `issuer set NAME RECIPE`, `issuer show NAME`
    #[command(subcommand)]
    #[command(defer(crate::cli::with_globals))]
    Issuer(crate::issuer::IssuerCommand),
    /// What to update after a rotation at the issuer: `integration add`, `list`, `rm`
    #[command(subcommand)]
    #[command(defer(crate::cli::with_globals))]
    Integration(crate::issuer::IntegrationCommand),
}

/// A subcommand's arguments, and the global options ([`with_globals`]), added to the command
/// only when that subcommand is the one run (`clap::Command::defer`): `jeton get` does not build
/// the arguments of thirty other subcommands first. Help, completions and the man page build
/// them all as before.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T: Args> Args for Deferred<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(augment_later::<T>)
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(augment_for_update_later::<T>)
    }
}

/// The deferred step: `T`'s arguments, keeping the description the subcommand's declaration
/// gave it (by then already set), which `T`'s own doc comment would otherwise replace.
fn augment_later<T: Args>(cmd: clap::Command) -> clap::Command {
    with_globals(keep_descriptions(cmd, T::augment_args))
}

fn augment_for_update_later<T: Args>(cmd: clap::Command) -> clap::Command {
    with_globals(keep_descriptions(cmd, T::augment_args_for_update))
}

fn keep_descriptions(
    cmd: clap::Command,
    augment: fn(clap::Command) -> clap::Command,
) -> clap::Command {
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let cmd = augment(cmd);
    match (about, long_about) {
        (None, _) => cmd,
        (Some(about), None) => cmd.about(about).long_about(None::<&str>),
        (Some(about), Some(long)) => cmd.about(about).long_about(long),
    }
}

impl<T: clap::FromArgMatches> clap::FromArgMatches for Deferred<T> {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Deferred)
    }
    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(m).map(Deferred)
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
    fn update_from_arg_matches_mut(&mut self, m: &mut clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(m)
    }
}

/// KDF cost flags shared by `init` and `passwd`.
#[derive(Debug, Args, Clone)]
pub struct KdfArgs {
    /// Argon2id memory, e.g. 256MiB or 1GiB [default: 256MiB]
    #[arg(long, value_name = "SIZE")]
    pub kdf_memory: Option<String>,
    /// Argon2id passes [default: 3]
    #[arg(long, value_name = "N")]
    pub kdf_iterations: Option<u32>,
    /// Argon2id lanes [default: 4]
    #[arg(long, value_name = "N")]
    pub kdf_lanes: Option<u32>,
    /// Calibrate memory and passes to this unlock time on this machine, e.g. 1s
    #[arg(long, value_name = "SPAN", conflicts_with_all = ["kdf_memory", "kdf_iterations"])]
    pub kdf_target: Option<String>,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Default technical contact for entries that name none
    #[arg(long, value_name = "TEXT")]
    pub contact: Option<String>,
    /// Your name, shown on your contact card
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Do not make a recovery key (make one later with `jeton recovery new`)
    #[arg(long)]
    pub no_recovery_key: bool,
}

/// `add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Entry name, e.g. github/ci-deploy
    pub name: String,
    #[command(flatten)]
    pub meta: MetaArgs,
    #[command(flatten)]
    pub generate: GenerateArgs,
    /// The secret is a one-time code seed: an otpauth:// URI or a base32 seed, from the prompt or stdin
    #[arg(long, conflicts_with = "generate")]
    pub totp: bool,
}

/// Metadata flags of `add`.
#[derive(Debug, Args, Clone)]
pub struct MetaArgs {
    /// Scope granted to the token (repeatable)
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// URL of the service (used by the credential helpers to match)
    #[arg(long)]
    pub url: Option<String>,
    /// Account name at the service
    #[arg(long)]
    pub username: Option<String>,
    /// Issuing service
    #[arg(long)]
    pub issuer: Option<String>,
    /// Technical contact, e.g. 'Ops <ops@example.com>'
    #[arg(long)]
    pub contact: Option<String>,
    /// Integration holding a copy, e.g. ci:github-actions:DEPLOY_TOKEN (repeatable)
    #[arg(long = "used-by", value_name = "X")]
    pub used_by: Vec<String>,
    /// Tag (repeatable)
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Free note
    #[arg(long)]
    pub note: Option<String>,
    /// Token expiry at its provider: 2027-01-31, RFC 3339, or a span from now (90d)
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub expires: Option<String>,
    /// Rotation schedule, e.g. 90d
    #[arg(long, value_name = "SPAN")]
    pub rotate_every: Option<String>,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Entry name
    pub name: String,
    /// Print this field instead of the secret (url, username, issuer, contact, scopes, ...)
    #[arg(long, short = 'f', value_name = "F")]
    pub field: Option<String>,
    /// No trailing newline
    #[arg(short = 'n')]
    pub no_newline: bool,
    /// Copy to the clipboard instead of printing (Wayland or X11)
    #[arg(long, short = 'c')]
    pub clip: bool,
    /// Clear the clipboard after this long, if it still holds the value
    #[arg(long, value_name = "SPAN", requires = "clip", default_value = "45s")]
    pub clear: String,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Entry name
    pub name: String,
    /// Show the secret
    #[arg(long)]
    pub reveal: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only names holding this text, anywhere, in any case
    pub pattern: Option<String>,
    /// Only entries with this scope
    #[arg(long)]
    pub scope: Option<String>,
    /// Only entries with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Which statuses to show
    #[arg(long, value_enum, default_value_t = StatusArg::Active)]
    pub status: StatusArg,
    /// Only entries expired, expiring or due for rotation within SPAN
    #[arg(long, value_name = "SPAN")]
    pub due: Option<String>,
}

/// `edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Entry name
    pub name: String,
    /// Add a scope (repeatable)
    #[arg(long, value_name = "S")]
    pub add_scope: Vec<String>,
    /// Remove a scope (repeatable)
    #[arg(long, value_name = "S")]
    pub rm_scope: Vec<String>,
    /// Add an integration holding a copy (repeatable)
    #[arg(long, value_name = "X")]
    pub add_used_by: Vec<String>,
    /// Remove an integration (repeatable)
    #[arg(long, value_name = "X")]
    pub rm_used_by: Vec<String>,
    /// Add a tag (repeatable)
    #[arg(long, value_name = "T")]
    pub add_tag: Vec<String>,
    /// Remove a tag (repeatable)
    #[arg(long, value_name = "T")]
    pub rm_tag: Vec<String>,
    /// URL ('' clears)
    #[arg(long)]
    pub url: Option<String>,
    /// Username ('' clears)
    #[arg(long)]
    pub username: Option<String>,
    /// Issuer ('' clears)
    #[arg(long)]
    pub issuer: Option<String>,
    /// Technical contact ('' clears)
    #[arg(long)]
    pub contact: Option<String>,
    /// Note ('' clears)
    #[arg(long)]
    pub note: Option<String>,
    /// Expiry: a date, RFC 3339, a span from now, or 'never'
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub expires: Option<String>,
    /// Rotation schedule, or 'never'
    #[arg(long, value_name = "SPAN")]
    pub rotate_every: Option<String>,
}

impl EditArgs {
    /// No change asked for on the command line: the editor opens.
    pub fn is_bare(&self) -> bool {
        let lists = [
            &self.add_scope,
            &self.rm_scope,
            &self.add_used_by,
            &self.rm_used_by,
            &self.add_tag,
            &self.rm_tag,
        ];
        let fields = [
            &self.url,
            &self.username,
            &self.issuer,
            &self.contact,
            &self.note,
            &self.expires,
            &self.rotate_every,
        ];
        lists.iter().all(|l| l.is_empty()) && fields.iter().all(|f| f.is_none())
    }
}

/// `passwd`.
#[derive(Debug, Args)]
pub struct PasswdArgs {
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Read the new passphrase from this open file descriptor
    #[arg(long, value_name = "N")]
    pub new_passphrase_fd: Option<u32>,
}

/// `unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Lock again after this long without a command that uses the key
    #[arg(long, value_name = "SPAN", default_value = "15min")]
    pub timeout: String,
    /// Lock again after this long in any case
    #[arg(long, value_name = "SPAN", default_value = "8h")]
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

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Set VAR to an entry's secret, or to one field with NAME#field (repeatable)
    #[arg(long = "env", value_name = "VAR=NAME[#field]")]
    pub env: Vec<String>,
    /// Read VAR=jeton://NAME[#field] lines (other VAR=value lines pass through)
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// The command and its arguments, after --
    #[arg(last = true, required = true, value_name = "CMD", value_parser = clap::value_parser!(std::ffi::OsString))]
    pub command: Vec<std::ffi::OsString>,
}

/// `inject`.
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Template file [default: stdin]
    #[arg(short = 'i', long = "in", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output file, written atomically with mode 0600 [default: stdout]
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    use clap::CommandFactory;
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
    use clap::{CommandFactory, Parser};

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
                        "`{path}` has no --{id}: its variant needs #[command(defer(crate::cli::with_globals))]"
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
}
