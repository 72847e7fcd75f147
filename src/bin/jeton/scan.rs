//! `scan`: where the vault's own secrets are, in files, standard input, a repository's
//! history or its staged changes; and the pre-commit hook that runs it.

use crate::ctx::team::{team_names, team_request, team_store};
use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output::json_line;
use clap::{Args, ValueEnum};
use jeton::request::{Request, Response, Session};
use jeton::scan::files::WalkOptions;
use jeton::scan::report::{Skipped, sarif};
use jeton::scan::{Hit, ScanRequest, ScanResponse, Search, Secrets, Sink};
use jeton::team::{TeamRequest, TeamResponse};
use jeton::text::Shown;
use jeton::{Error, Result};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The exit code when a secret was found (as `check`'s findings).
const EXIT_FOUND: i32 = 8;

/// Hits kept for `--json` and `--format sarif`; past it they are counted, not listed, so
/// memory stays bounded whatever the input holds.
const MAX_LISTED: usize = 100_000;

/// `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or folders to scan [default: the current folder]; `-` reads standard input.
    /// With --git: the repository [default: the current one]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Read what git ignores too (inside a git work tree, ignored files are skipped)
    #[arg(long)]
    pub all: bool,
    /// Follow symbolic links
    #[arg(long)]
    pub follow: bool,
    /// Scan the repository's history: every blob of every branch, tag, reflog entry and stash
    #[arg(long)]
    pub git: bool,
    /// With --git: only the commits not reachable from REV
    #[arg(long, value_name = "REV", requires = "git")]
    pub since: Option<String>,
    /// Scan the staged changes of the current repository (what the pre-commit hook runs)
    #[arg(long, conflicts_with_all = ["git", "all", "follow", "paths"])]
    pub staged: bool,
    /// Write a git pre-commit hook that refuses a commit holding a vault secret
    #[arg(long, conflicts_with_all = ["git", "all", "follow", "staged", "format"])]
    pub install_hook: bool,
    /// After the scan, rotate each leaked current secret at its issuer (`rotate --at-issuer
    /// --leaked`) where the entry has a recipe, and say what to run for the others
    #[arg(long, conflicts_with_all = ["staged", "install_hook"])]
    pub rotate: bool,
    /// Output format [default: text; --json is the same as --format json]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per hit
    Text,
    /// One JSON document
    Json,
    /// SARIF 2.1.0 (GitHub code scanning and other dashboards)
    Sarif,
}

/// What to scan, checked before any I/O.
enum Target {
    Files(Vec<PathBuf>),
    History {
        repo: PathBuf,
        since: Option<String>,
    },
    Staged,
}

fn target(a: &ScanArgs) -> Result<Target> {
    if a.git {
        let repo = match a.paths.as_slice() {
            [] => PathBuf::from("."),
            [one] if one.as_os_str() != "-" => one.clone(),
            [_] => {
                return Err(Error::Usage(
                    "--git reads a repository, not standard input".into(),
                ));
            }
            _ => return Err(Error::Usage("--git takes one repository".into())),
        };
        return Ok(Target::History {
            repo,
            since: a.since.clone(),
        });
    }
    if a.staged {
        return Ok(Target::Staged);
    }
    let stdin = a.paths.iter().filter(|p| p.as_os_str() == "-").count();
    if stdin > 1 {
        return Err(Error::Usage(
            "`-` (standard input) can be given once".into(),
        ));
    }
    Ok(Target::Files(if a.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        a.paths.clone()
    }))
}

pub fn run(ctx: &Ctx, a: ScanArgs) -> Result<Exit> {
    if a.install_hook {
        return install_hook(ctx, &a);
    }
    let format = match (a.format, ctx.json) {
        (Some(Format::Text), true) => {
            return Err(Error::Usage("--json and --format text disagree".into()));
        }
        (Some(f), _) => f,
        (None, true) => Format::Json,
        (None, false) => Format::Text,
    };
    let target = target(&a)?;
    if a.rotate && !agent_holds_key(ctx)? {
        return Err(Error::Unlock(
            "--rotate needs the agent: run `jeton unlock` first (each rotation runs as its own \
             jeton command, and no passphrase source is passed to a child process)"
                .into(),
        ));
    }
    // A repository git cannot read fails before the vault is unlocked.
    match &target {
        Target::History { repo, .. } => drop(jeton::scan::git::check_repository(repo)?),
        Target::Staged => drop(jeton::scan::git::check_repository(Path::new("."))?),
        Target::Files(_) => {}
    }
    let search = Search::new(all_secrets(ctx)?)?;
    let mut out = Printer::new(format, ctx.quiet);
    let mut scanned = String::new();
    match &target {
        Target::Files(paths) => {
            let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) =
                paths.iter().partition(|p| p.as_os_str() == "-");
            let paths: Vec<PathBuf> = paths.into_iter().cloned().collect();
            let opts = WalkOptions {
                all: a.all,
                follow: a.follow,
                git_dir: false,
            };
            jeton::scan::files::scan_paths(&search, &paths, opts, &mut out);
            if !stdin.is_empty() {
                jeton::scan::files::scan_stdin(&search, &mut out);
            }
            scanned = format!("{} file{}", out.files, plural(out.files));
        }
        Target::History { repo, since } => {
            let stats = jeton::scan::git::scan_history(&search, repo, since.as_deref(), &mut out)?;
            out.bytes = stats.bytes;
            scanned = format!(
                "{} commit{}, {} blob{}",
                stats.commits,
                plural(stats.commits),
                stats.blobs,
                plural(stats.blobs)
            );
        }
        Target::Staged => {
            out.bytes = jeton::scan::git::scan_staged(&search, Path::new("."), &mut out)?;
            scanned.push_str("the staged changes");
        }
    }
    let leaked = out.leaked.clone();
    let found = std::mem::take(&mut out.found);
    let exit = out.finish(&search, &scanned, matches!(target, Target::Staged))?;
    remember(ctx, found);
    if a.rotate {
        rotate_leaked(ctx, &leaked)?;
    }
    Ok(exit)
}

/// Records where current secrets of the personal vault were found, so `check` reports them
/// as leaked until they are rotated. A failure is a warning: the scan itself went well.
fn remember(ctx: &Ctx, found: Vec<jeton::scan::leaks::Found>) {
    if found.is_empty() {
        return;
    }
    if let Err(e) = ctx.run(Request::Scan(ScanRequest::Record(found))) {
        eprintln!(
            "jeton: warning: `check` will not show these leaks: cannot record them in the vault: {}",
            Shown::line(&e.to_string())
        );
    }
}

/// True when a running agent holds the key of this vault.
fn agent_holds_key(ctx: &Ctx) -> Result<bool> {
    let vault = jeton::agent::client::absolute(ctx.session.store.path())?;
    let status = jeton::agent::client::status().unwrap_or(None);
    Ok(status.is_some_and(|s| s.unlocked.iter().any(|h| h.vault == vault)))
}

/// `--rotate`: `jeton rotate --at-issuer --leaked NAME` for each leaked current secret of the
/// personal vault whose entry has a recipe (run as a child, its output on stderr); the command
/// to run for every other leaked value.
fn rotate_leaked(ctx: &Ctx, leaked: &BTreeSet<(String, Option<usize>)>) -> Result<()> {
    use jeton::issuer::{IssuerRequest, IssuerResponse};
    if leaked.is_empty() {
        return Ok(());
    }
    let Response::Issuer(IssuerResponse::List(listed)) =
        ctx.run(Request::Issuer(IssuerRequest::List))?
    else {
        return Err(unexpected());
    };
    let has_recipe = |name: &str| {
        jeton::team::split(name).is_none()
            && listed.iter().any(|l| l.name == name && l.recipe.is_some())
    };
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot find jeton's own path: {e}")))?;
    let mut failed = Vec::new();
    for (name, old) in leaked {
        let shown = Shown::line(name);
        match old {
            Some(n) => eprintln!(
                "jeton: {shown}: old #{n} leaked: make sure it is revoked at its issuer \
                 (the entry's current secret is another one)"
            ),
            None if has_recipe(name) => {
                eprintln!(
                    "jeton: {shown}: rotating at the issuer (leaked: the old one is revoked at once)"
                );
                let status = jeton::process::command(&exe)
                    .arg("--vault")
                    .arg(ctx.session.store.path())
                    .args(["rotate", "--at-issuer", "--leaked", "--"])
                    .arg(name)
                    .stdout(std::io::stderr())
                    .status();
                if !status.is_ok_and(|s| s.success()) {
                    failed.push(name.clone());
                }
            }
            None => eprintln!(
                "jeton: {shown}: leaked and no issuer recipe: rotate it at its issuer, then \
                 `jeton rotate {shown}` (or set a recipe: `jeton issuer set {shown} ...`)"
            ),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::Other(format!(
        "the rotation of {} failed; see above, and `jeton rotate --resume NAME` once fixed",
        failed
            .iter()
            .map(|n| Shown::line(n).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The secrets of the personal vault and of every team vault with a local copy (a team that
/// cannot be opened is said and skipped).
fn all_secrets(ctx: &Ctx) -> Result<Secrets> {
    let Response::Scan(ScanResponse::Secrets(mut all)) =
        ctx.run(Request::Scan(ScanRequest::Secrets))?
    else {
        return Err(unexpected());
    };
    for team in team_names(ctx)? {
        match team_secrets(ctx, &team) {
            Ok(Some(s)) => {
                all.too_short += s.too_short;
                all.needles.extend(s.needles.into_iter().map(|mut n| {
                    n.entry = format!("{team}:{}", n.entry);
                    n
                }));
            }
            Ok(None) => {}
            Err(e) => eprintln!(
                "jeton: warning: the secrets of team {} are not searched: {}",
                Shown::line(&team),
                Shown::line(&e.to_string())
            ),
        }
    }
    Ok(all)
}

fn team_secrets(ctx: &Ctx, team: &str) -> Result<Option<Secrets>> {
    let store = team_store(ctx, team);
    if !store.exists() {
        return Ok(None);
    }
    let TeamResponse::Opened { key, .. } = team_request(
        ctx,
        TeamRequest::Open {
            team: team.to_owned(),
        },
    )?
    else {
        return Err(unexpected());
    };
    let session = Session {
        store,
        state_dir: None,
        accept_rollback: ctx.session.accept_rollback,
    };
    let outcome = session.with_vault_key(false, |_| Ok(key), |v| jeton::scan::secrets(v))?;
    Ok(Some(outcome.value))
}

/// Prints hits as they are found (text) or keeps them for one document (JSON, SARIF), and
/// counts everything for the summary.
struct Printer {
    format: Format,
    quiet: bool,
    listed: Vec<Hit>,
    hits: u64,
    entries: BTreeSet<String>,
    /// Each leaked value: the entry, and `None` for its current secret or `Some(N)` for old #N.
    leaked: BTreeSet<(String, Option<usize>)>,
    /// The first place of each current secret of the personal vault, for `check`.
    found: Vec<jeton::scan::leaks::Found>,
    files: u64,
    bytes: u64,
    symlinks: u64,
    skipped: u64,
    unreadable: u64,
    failed: Option<Error>,
}

impl Printer {
    fn new(format: Format, quiet: bool) -> Printer {
        Printer {
            format,
            quiet,
            listed: Vec::new(),
            hits: 0,
            entries: BTreeSet::new(),
            leaked: BTreeSet::new(),
            found: Vec::new(),
            files: 0,
            bytes: 0,
            symlinks: 0,
            skipped: 0,
            unreadable: 0,
            failed: None,
        }
    }

    fn write(&mut self, text: &str) {
        if self.failed.is_none()
            && let Err(e) = emit(text.as_bytes())
        {
            self.failed = Some(e);
        }
    }

    fn finish(mut self, search: &Search, scanned: &str, staged: bool) -> Result<Exit> {
        let unlisted = match self.format {
            Format::Text => 0,
            _ => self.hits.saturating_sub(self.listed.len() as u64),
        };
        match self.format {
            Format::Text => {}
            Format::Json => {
                let hits: Vec<serde_json::Value> = self.listed.iter().map(Hit::json).collect();
                let doc = json!({
                    "ok": self.hits == 0 && self.unreadable == 0,
                    "hits": hits,
                    "summary": {
                        "hits": self.hits,
                        "hits_not_listed": unlisted,
                        "entries": self.entries,
                        "secrets_searched": search.secrets(),
                        "secrets_too_short": search.too_short(),
                        "files": self.files,
                        "bytes": self.bytes,
                        "skipped": self.skipped,
                        "symlinks_not_followed": self.symlinks,
                        "unreadable": self.unreadable,
                    },
                });
                self.write(&json_line(&doc));
            }
            Format::Sarif => {
                let doc = sarif(&self.listed, env!("CARGO_PKG_VERSION"));
                self.write(&json_line(&doc));
            }
        }
        if let Some(e) = self.failed {
            return Err(e);
        }
        if !self.quiet {
            self.summary(search, scanned, unlisted);
        }
        if staged && self.hits > 0 {
            eprintln!(
                "jeton: the commit is refused: the staged changes hold {} secret{} of the vault \
                 ({}); remove {} from the staged files (and rotate {} with `jeton rotate`), or \
                 skip this check once with `git commit --no-verify`",
                self.hits,
                plural(self.hits),
                self.entries
                    .iter()
                    .map(|e| Shown::line(e).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if self.hits == 1 { "it" } else { "them" },
                if self.entries.len() == 1 {
                    "the entry"
                } else {
                    "the entries"
                },
            );
        }
        Ok(if self.hits > 0 {
            Exit::Code(EXIT_FOUND)
        } else if self.unreadable > 0 {
            Exit::Code(1)
        } else {
            Exit::Ok
        })
    }

    fn summary(&self, search: &Search, scanned: &str, unlisted: u64) {
        let mut parts = vec![format!(
            "scanned {scanned} ({}) for {} secret{}",
            human_bytes(self.bytes),
            search.secrets(),
            plural(search.secrets() as u64)
        )];
        parts.push(match self.hits {
            0 => "nothing found".to_owned(),
            n => format!(
                "{n} hit{} of {} entr{}",
                plural(n),
                self.entries.len(),
                if self.entries.len() == 1 { "y" } else { "ies" }
            ),
        });
        if unlisted > 0 {
            parts.push(format!("{unlisted} hits counted but not listed"));
        }
        if search.too_short() > 0 {
            parts.push(format!(
                "{} secret{} shorter than {} characters not searched",
                search.too_short(),
                plural(search.too_short() as u64),
                jeton::scan::forms::MIN_LEN
            ));
        }
        if self.symlinks > 0 {
            parts.push(format!(
                "{} symbolic link{} not followed (--follow follows them)",
                self.symlinks,
                plural(self.symlinks)
            ));
        }
        if self.skipped > 0 {
            parts.push(format!(
                "{} special file{} skipped",
                self.skipped,
                plural(self.skipped)
            ));
        }
        if self.unreadable > 0 {
            parts.push(format!("{} unreadable", self.unreadable));
        }
        eprintln!("jeton: {}", parts.join("; "));
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A path as the walk found it, without a leading `./`.
fn shown(path: &Path) -> String {
    let text = path.to_string_lossy();
    text.strip_prefix("./").unwrap_or(&text).to_owned()
}

/// `PLACE: ENTRY (VERSION), FORM`.
fn hit_line(h: &Hit) -> String {
    format!(
        "{}: {} ({}), {}\n",
        h.place,
        Shown::line(&h.entry),
        h.version_text(),
        h.form
    )
}

impl Sink for Printer {
    fn hit(&mut self, hit: Hit) {
        self.hits += 1;
        if !self.entries.contains(&hit.entry) {
            self.entries.insert(hit.entry.clone());
        }
        let which = match hit.version {
            jeton::scan::Version::Current => None,
            jeton::scan::Version::Old { position, .. } => Some(position),
        };
        let personal = jeton::team::split(&hit.entry).is_none();
        if which.is_none() && personal && self.found.iter().all(|f| f.entry != hit.entry) {
            self.found.push(jeton::scan::leaks::Found {
                entry: hit.entry.clone(),
                place: format!("{} ({})", hit.place, hit.form),
            });
        }
        self.leaked.insert((hit.entry.clone(), which));
        match self.format {
            Format::Text => self.write(&hit_line(&hit)),
            _ if self.listed.len() < MAX_LISTED => self.listed.push(hit),
            _ => {}
        }
    }

    fn skipped(&mut self, path: &Path, why: Skipped) {
        match why {
            Skipped::Symlink => self.symlinks += 1,
            Skipped::NotRegular(_) => {
                self.skipped += 1;
                if !self.quiet {
                    eprintln!("jeton: skipped {}: {why}", Shown::line(&shown(path)));
                }
            }
        }
    }

    fn unreadable(&mut self, path: &Path, error: &std::io::Error) {
        self.unreadable += 1;
        let shown = match shown(path) {
            s if s.is_empty() => "(a path)".to_owned(),
            s => s,
        };
        eprintln!(
            "jeton: warning: cannot read {}: {}",
            Shown::line(&shown),
            Shown::line(&error.to_string())
        );
    }

    fn scanned(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// `--install-hook`: the pre-commit hook of the repository at PATH (default: the current one).
fn install_hook(ctx: &Ctx, a: &ScanArgs) -> Result<Exit> {
    let repo = match a.paths.as_slice() {
        [] => PathBuf::from("."),
        [one] => one.clone(),
        _ => return Err(Error::Usage("--install-hook takes one repository".into())),
    };
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot find jeton's own path: {e}")))?;
    let command = format!("{} scan --staged", shell_quote(&exe.to_string_lossy()));
    let hook = jeton::scan::git::install_hook(&repo, &command)?;
    ctx.say(&format!(
        "installed the pre-commit hook at {}: a commit is refused while a staged change holds a vault secret",
        hook.display()
    ))?;
    Ok(Exit::Ok)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
