//! What several command families take: the global options, [`Deferred`] arguments, and the
//! shared argument types (how to generate a secret, what to do on an import conflict).

use crate::prompt;
use clap::{Args, ValueEnum};
use jeton::generate::{Class, Recipe};
use jeton::request::{Charset, SecretInput};
use jeton::share::import::OnConflict;
use jeton::sync::remote::Remote;
use jeton::{Error, Result};
use std::path::Path;
use std::path::PathBuf;

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
/// `#[command(defer(crate::args::with_globals))]` (a test checks that none is left out).
pub fn with_globals(mut cmd: clap::Command) -> clap::Command {
    for arg in global_options().get_arguments() {
        if cmd.get_arguments().all(|a| a.get_id() != arg.get_id()) {
            cmd = cmd.arg(arg.clone().global(true));
        }
    }
    cmd
}

/// A command holding just the options of [`GlobalArgs`].
pub fn global_options() -> clap::Command {
    GlobalArgs::augment_args(clap::Command::new("jeton"))
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
    /// Classes the generated secret holds at least one of, e.g. upper,lower,digit,symbol
    #[arg(
        long,
        value_name = "CLASSES",
        value_enum,
        value_delimiter = ',',
        requires = "generate",
        conflicts_with = "words"
    )]
    pub require: Vec<ClassArg>,
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

/// Character classes for `--require`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClassArg {
    /// A-Z
    Upper,
    /// a-z
    Lower,
    /// 0-9
    Digit,
    /// any other printable ASCII character
    Symbol,
}

impl From<ClassArg> for Class {
    fn from(c: ClassArg) -> Class {
        match c {
            ClassArg::Upper => Class::Upper,
            ClassArg::Lower => Class::Lower,
            ClassArg::Digit => Class::Digit,
            ClassArg::Symbol => Class::Symbol,
        }
    }
}

impl GenerateArgs {
    /// True when the secret will be typed at a prompt: what can be checked first (the name) is
    /// then checked before it is asked for.
    pub fn asks(&self) -> bool {
        !self.generate && prompt::secret_is_typed()
    }

    /// The secret for add/rotate: generated by the executor, or read now from a prompt or stdin.
    pub fn secret_input(&self) -> Result<SecretInput> {
        let plain = self.words.is_none() && self.exclude.is_none() && self.require.is_empty();
        if self.generate && !plain {
            let recipe = recipe(
                self.length,
                self.charset,
                self.exclude.as_deref(),
                &self.require,
                self.words,
                &self.separator,
            )?;
            Ok(SecretInput::Recipe(recipe))
        } else if self.generate {
            jeton::request::generate_secret(self.length, charset(self.charset))?;
            Ok(SecretInput::Generate {
                length: self.length,
                charset: charset(self.charset),
            })
        } else {
            Ok(SecretInput::Value(prompt::secret_input()?))
        }
    }
}

pub fn charset(c: CharsetArg) -> Charset {
    match c {
        CharsetArg::Alnum => Charset::Alnum,
        CharsetArg::Hex => Charset::Hex,
        CharsetArg::Base64url => Charset::Base64Url,
        CharsetArg::Ascii => Charset::Ascii,
    }
}

/// The recipe for these flags (`generate`, and `add`/`rotate --generate` with words,
/// exclusions or required classes).
pub fn recipe(
    length: usize,
    set: CharsetArg,
    exclude: Option<&str>,
    require: &[ClassArg],
    words: Option<usize>,
    separator: &str,
) -> Result<Recipe> {
    match words {
        Some(n) => Recipe::words(n, separator),
        None => {
            let alphabet = String::from_utf8(charset(set).alphabet()).unwrap_or_default();
            let require: Vec<Class> = require.iter().map(|&c| c.into()).collect();
            Recipe::chars(length, &alphabet, exclude.unwrap_or(""), &require)
        }
    }
}

/// Policies for `import --on-conflict` and `migrate --on-conflict`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnConflictArg {
    /// Refuse the whole import (exit 9)
    Fail,
    /// Keep the existing entry
    Skip,
    /// Import as NAME-2, NAME-3, ...
    Rename,
    /// Replace it; its secret goes to the new entry's history
    Overwrite,
}

impl From<OnConflictArg> for OnConflict {
    fn from(a: OnConflictArg) -> OnConflict {
        match a {
            OnConflictArg::Fail => OnConflict::Fail,
            OnConflictArg::Skip => OnConflict::Skip,
            OnConflictArg::Rename => OnConflict::Rename,
            OnConflictArg::Overwrite => OnConflict::Overwrite,
        }
    }
}

/// A text flag trimmed, or nothing when it is empty.
pub fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The sync remote named on the command line (a git remote, or `--dir` PATH); a local path is made absolute (`sync` runs from
/// anywhere later). `create` makes a missing shared folder.
pub fn remote(remote: Option<String>, dir: Option<PathBuf>, create: bool) -> Result<Remote> {
    if let Some(dir) = dir {
        if create && !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        }
        let abs = std::fs::canonicalize(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::NotFound(format!("no folder at {}", dir.display()))
            }
            _ => Error::io("cannot open", &dir, e),
        })?;
        if !abs.is_dir() {
            return Err(Error::Usage(format!("{} is not a folder", dir.display())));
        }
        return Ok(Remote::Dir(abs));
    }
    let url = remote.ok_or_else(|| Error::Usage("name a git remote or --dir PATH".into()))?;
    jeton::text::check_line("remote", &url)?;
    if url.starts_with('-') {
        return Err(Error::Usage(format!("{url} is not a git remote")));
    }
    // A password in the URL would reach git's argv, its messages and jeton's output.
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""));
    if authority.is_some_and(|a| {
        a.rsplit_once('@')
            .is_some_and(|(user, _)| user.contains(':'))
    }) {
        return Err(Error::Usage(
            "the remote URL holds a password: give it to git through a credential helper (or use ssh), not in the URL".into(),
        ));
    }
    let path = Path::new(&url);
    Ok(match std::fs::canonicalize(path) {
        Ok(abs) if path.exists() => Remote::Git(abs.to_string_lossy().into_owned()),
        _ => Remote::Git(url),
    })
}
