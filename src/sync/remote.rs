//! Where replicas travel: a git remote (through the `git` executable) or a shared folder kept
//! in sync by another tool. Both hold the same tree: a descriptor and one replica per device.
//!
//! ```text
//! jeton-sync.json          {"format":"jeton-sync","layout":1,"vault":"<32 hex digits>"}
//! replicas/<device>.jeton  one encrypted replica per device, written only by that device
//! ```
//!
//! Each device keeps its sync settings and its git clone beside the vault, in
//! `<vault>.sync/` (`config.json`, `lock`, `git/`).

use super::round::Incoming;
use crate::store::{LockGuard, Store, read_regular_capped, write_atomic};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

/// The descriptor's file name at the remote's top.
pub const DESCRIPTOR: &str = "jeton-sync.json";
/// The folder of replicas.
pub const REPLICAS: &str = "replicas";
/// The git branch jeton publishes to.
pub const BRANCH: &str = "jeton";
/// Layout version of the remote tree.
pub const LAYOUT: u32 = 1;
/// Most files read from `replicas/`.
const MAX_REPLICAS: usize = 1024;
/// Most bytes of member-list files one round reads.
const MAX_MEMBERS_ROUND: usize = 64 << 20;
/// Largest replica file read, whatever the settings: the largest vault the format allows.
const MAX_REPLICA_LEN: u64 = crate::format::MAX_PAYLOAD_LEN + (64 << 10);
/// The least a replica may weigh before it is refused, whatever the local vault's size.
const MIN_REPLICA_CAP: u64 = 256 << 20;
/// The least all the files of one pull may weigh together.
const MIN_PULL_BUDGET: u64 = 512 << 20;
/// Environment variable that sets the largest replica read (bytes, or with KiB/MiB/GiB).
pub const MAX_REPLICA_VAR: &str = "JETON_SYNC_MAX_REPLICA";

/// What one pull reads at most: each file, and all of them together. A hostile remote (a
/// sparse file of 1 GiB, thousands of files) is refused before its bytes are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Largest replica file.
    pub replica: u64,
    /// All files of the pull together.
    pub total: u64,
}

impl Budget {
    /// The budget of a vault whose local file weighs `local_len` bytes: a replica may be four
    /// times that (another device added entries since), at least 256 MiB, at most the format's
    /// largest vault; `JETON_SYNC_MAX_REPLICA` sets that ceiling instead.
    pub fn for_vault(local_len: u64, ceiling: Option<u64>) -> Budget {
        let replica = match ceiling {
            Some(c) => c,
            None => local_len.saturating_mul(4).max(MIN_REPLICA_CAP),
        }
        .min(MAX_REPLICA_LEN);
        Budget {
            replica,
            total: replica.saturating_mul(2).max(MIN_PULL_BUDGET),
        }
    }

    /// The ceiling set in the environment, if any (refused when it does not parse).
    pub fn ceiling_from_env() -> Result<Option<u64>> {
        match std::env::var(MAX_REPLICA_VAR) {
            Ok(v) => crate::text::parse_size(&v).map(Some).ok_or_else(|| {
                Error::Usage(format!(
                    "{MAX_REPLICA_VAR}={} is not a size (bytes, or with KiB, MiB or GiB)",
                    crate::text::Shown::line(&v)
                ))
            }),
            Err(_) => Ok(None),
        }
    }
}

/// The unencrypted descriptor at the top of a remote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    /// Always `jeton-sync`.
    pub format: String,
    /// [`LAYOUT`].
    pub layout: u32,
    /// The vault id, hex.
    pub vault: String,
}

impl Descriptor {
    /// The descriptor of vault `vault_id`.
    pub fn new(vault_id: &[u8; 16]) -> Descriptor {
        Descriptor {
            format: "jeton-sync".into(),
            layout: LAYOUT,
            vault: crate::share::hex(vault_id),
        }
    }
}

/// Where a vault syncs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Remote {
    /// A git remote, as `git clone` takes it.
    Git(String),
    /// A folder another tool keeps in sync.
    Dir(PathBuf),
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Remote::Git(url) => write!(f, "git {url}"),
            Remote::Dir(p) => write!(f, "folder {}", p.display()),
        }
    }
}

/// A device's sync settings, `<vault>.sync/config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The remote.
    pub remote: Remote,
    /// The vault id, hex.
    pub vault: String,
    /// This device reads the remote and never writes to it (`sync clone --read-only`): it
    /// publishes no replica, so the other devices never hear of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// What was read from the remote.
#[derive(Debug, Default)]
pub struct Pulled {
    /// The descriptor, if there is one.
    pub descriptor: Option<Descriptor>,
    /// Every replica (and conflict copy) in `replicas/`.
    pub files: Vec<Incoming>,
    /// A team remote's member lists, `members/*.age` (none for a personal vault).
    pub members: Vec<Incoming>,
    /// The git commit read (`None` for a folder or an empty git remote).
    pub head: Option<String>,
}

/// How a publish ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// The replica is on the remote.
    Done,
    /// Someone pushed in between: run the round again.
    Raced,
}

/// What [`Workspace::compact`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Compacted {
    /// The branch is one commit now.
    Done,
    /// A shared folder keeps no history.
    Folder,
    /// The remote holds nothing yet.
    Empty,
    /// Someone pushed in between: nothing was rewritten.
    Raced,
}

/// A device's sync workspace for one vault.
#[derive(Debug)]
pub struct Workspace {
    dir: PathBuf,
    /// The settings.
    pub config: Config,
}

/// `<vault>.sync`.
pub fn workspace_dir(vault: &Path) -> PathBuf {
    let mut s = vault.as_os_str().to_owned();
    s.push(".sync");
    PathBuf::from(s)
}

impl Workspace {
    /// The workspace of the vault at `vault`; `None` when it does not sync.
    pub fn load(vault: &Path) -> Result<Option<Workspace>> {
        let dir = workspace_dir(vault);
        let path = dir.join("config.json");
        let bytes = match read_regular_capped(&path, 64 << 10) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        let config = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Other(format!(
                "{} is damaged ({e}); remove {} and run `jeton sync init` again",
                path.display(),
                dir.display()
            ))
        })?;
        Ok(Some(Workspace { dir, config }))
    }

    /// Makes the workspace of the vault at `vault` (refused when one exists).
    pub fn create(vault: &Path, config: Config) -> Result<Workspace> {
        let dir = workspace_dir(vault);
        // A workspace without settings is what a failed init or clone left: start over.
        if dir.is_dir() && !dir.join("config.json").exists() {
            let _ = fs::remove_dir_all(&dir);
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| match e.kind() {
                ErrorKind::AlreadyExists => Error::Exists(format!(
                    "this vault already syncs ({} exists; see `jeton sync status`)",
                    dir.display()
                )),
                _ => Error::io("cannot create", &dir, e),
            })?;
        let ws = Workspace { dir, config };
        ws.save_config()?;
        Ok(ws)
    }

    /// Writes the settings.
    pub fn save_config(&self) -> Result<()> {
        let text = serde_json::to_vec_pretty(&self.config)
            .map_err(|e| Error::Other(format!("cannot encode the sync settings: {e}")))?;
        write_atomic(&self.dir.join("config.json"), &text)
    }

    /// The same workspace with other settings (not saved).
    pub fn with_config(&self, config: Config) -> Workspace {
        Workspace {
            dir: self.dir.clone(),
            config,
        }
    }

    /// Removes the workspace (a failed `sync init` or `sync clone`).
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// Takes the workspace's lock: one round at a time per vault on this machine.
    pub fn lock(&self, timeout: Duration) -> Result<LockGuard> {
        Store::new(self.dir.join("round"), timeout).lock()
    }

    fn git_dir(&self) -> PathBuf {
        self.dir.join("git")
    }

    /// The folder holding the remote's tree: the git work tree or the shared folder.
    /// The local vault this workspace syncs (`<vault>.sync` is the workspace).
    fn vault_path(&self) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let dir = self.dir.as_os_str().as_bytes();
        let vault = dir.strip_suffix(b".sync").unwrap_or(dir);
        PathBuf::from(std::ffi::OsStr::from_bytes(vault))
    }

    fn tree(&self) -> PathBuf {
        match &self.config.remote {
            Remote::Git(_) => self.git_dir(),
            Remote::Dir(p) => p.clone(),
        }
    }

    /// The descriptor this workspace publishes.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            format: "jeton-sync".into(),
            layout: LAYOUT,
            vault: self.config.vault.clone(),
        }
    }

    /// Refuses what was pulled when the remote holds something other than this vault.
    pub fn check(&self, pulled: &Pulled) -> Result<()> {
        match &pulled.descriptor {
            Some(d) if d.vault == self.config.vault => Ok(()),
            Some(_) => Err(Error::Integrity(format!(
                "the remote ({}) holds another vault; nothing was merged or published",
                self.config.remote
            ))),
            None if pulled.files.is_empty() && pulled.head.is_none() => Ok(()),
            None => Err(Error::Integrity(format!(
                "the remote ({}) is not a jeton sync remote (no {DESCRIPTOR}); nothing was merged or published",
                self.config.remote
            ))),
        }
    }

    /// Reads the remote: fetches first for git.
    pub fn pull(&self) -> Result<Pulled> {
        let head = match &self.config.remote {
            Remote::Git(url) => self.git_fetch(url)?,
            Remote::Dir(p) => {
                if !p.is_dir() {
                    return Err(Error::NotFound(format!(
                        "the sync folder {} does not exist (not mounted?)",
                        p.display()
                    )));
                }
                None
            }
        };
        let tree = self.tree();
        let descriptor = read_descriptor(&tree)?;
        let local_len = fs::metadata(self.vault_path()).map_or(0, |m| m.len());
        let budget = Budget::for_vault(local_len, Budget::ceiling_from_env()?);
        let mut left = Left {
            total: budget.total,
            left: budget.total,
        };
        let files = read_files(&tree.join(REPLICAS), ".jeton", budget.replica, &mut left)?;
        let members = read_members(&tree.join(crate::team::MEMBERS_DIR))?;
        Ok(Pulled {
            descriptor,
            files,
            members,
            head,
        })
    }

    /// Writes this device's replica and the descriptor, removes merged conflict copies, and
    /// for git commits and pushes. `base` is the commit [`Workspace::pull`] read.
    pub fn publish(
        &self,
        descriptor: &Descriptor,
        replica: Option<&Incoming>,
        remove: &[String],
        base: Option<&str>,
    ) -> Result<Published> {
        let files: Vec<(String, Incoming)> = replica
            .map(|r| (REPLICAS.to_owned(), r.clone()))
            .into_iter()
            .collect();
        self.publish_files(descriptor, &files, remove, base)
    }

    /// [`Workspace::publish`] for any number of files, each `(folder, file)`: `replicas` or a
    /// team's `members`.
    pub fn publish_files(
        &self,
        descriptor: &Descriptor,
        files: &[(String, Incoming)],
        remove: &[String],
        base: Option<&str>,
    ) -> Result<Published> {
        let tree = self.tree();
        let replicas = tree.join(REPLICAS);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&replicas)
            .map_err(|e| Error::io("cannot create", &replicas, e))?;
        let text = serde_json::to_vec(descriptor)
            .map_err(|e| Error::Other(format!("cannot encode the descriptor: {e}")))?;
        let desc_path = tree.join(DESCRIPTOR);
        if read_regular_capped(&desc_path, 4096)
            .ok()
            .as_deref()
            .map(|v| &v[..])
            != Some(&text[..])
        {
            write_atomic(&desc_path, &text)?;
        }
        for (folder, r) in files {
            if (folder != REPLICAS && folder != crate::team::MEMBERS_DIR)
                || r.name.contains('/')
                || r.name.starts_with('.')
            {
                return Err(Error::Other(format!(
                    "internal error: bad remote file {folder}/{}",
                    r.name
                )));
            }
            let dir = tree.join(folder);
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io("cannot create", &dir, e))?;
            // What a write of ours killed midway left (a shared folder keeps it otherwise).
            let stale = format!(".{}.tmp.", r.name);
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().starts_with(&stale) {
                    let _ = fs::remove_file(e.path());
                }
            }
            write_atomic(&dir.join(&r.name), &r.bytes)?;
        }
        // Merged conflict copies, and replicas of forgotten devices.
        for name in remove {
            if name.contains('/') || name.starts_with('.') || name.is_empty() {
                continue;
            }
            let p = replicas.join(name);
            if let Err(e) = fs::remove_file(&p)
                && e.kind() != ErrorKind::NotFound
            {
                return Err(Error::io("cannot remove", &p, e));
            }
        }
        match &self.config.remote {
            Remote::Dir(_) => Ok(Published::Done),
            Remote::Git(url) => {
                if files.is_empty() && remove.is_empty() && base.is_some() {
                    return Ok(Published::Done);
                }
                self.git_push(url, base)
            }
        }
    }

    fn git(&self) -> crate::process::Builder {
        git_in(&self.git_dir())
    }

    /// Rewrites a git remote's branch to one commit holding its current files, if the branch
    /// is still at `base` (what [`Workspace::pull`] read): the files every device reads stay
    /// as they are, the history of every file pushed before leaves the branch.
    pub fn compact(&self, base: Option<&str>) -> Result<Compacted> {
        let Remote::Git(url) = &self.config.remote else {
            return Ok(Compacted::Folder);
        };
        let Some(head) = base else {
            return Ok(Compacted::Empty);
        };
        let line = |c: &mut crate::process::Builder, what: &str| -> Result<String> {
            let out = output(c, what)?;
            if !out.status.success() {
                return Err(git_failed(what, url, &out));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let tree = line(
            self.git()
                .args(["rev-parse", "--verify"])
                .arg(format!("{head}^{{tree}}")),
            "git rev-parse",
        )?;
        let commit = line(
            self.git()
                .args(["commit-tree", &tree, "-m", "jeton sync compact"]),
            "git commit-tree",
        )?;
        let out = output(
            self.git()
                .arg("push")
                .arg("-q")
                .arg(format!("--force-with-lease=refs/heads/{BRANCH}:{head}"))
                .args(["--", url])
                .arg(format!("{commit}:refs/heads/{BRANCH}")),
            "git push",
        )?;
        if !out.status.success() {
            if self.moved(url, Some(head))? {
                return Ok(Compacted::Raced);
            }
            return Err(git_failed("git push", url, &out));
        }
        run(
            self.git().args(["reset", "-q", "--hard", &commit]),
            "git reset",
        )?;
        Ok(Compacted::Done)
    }

    /// Fetches the remote's branch into a clean work tree; the commit read, or `None` when the
    /// remote has no jeton branch yet.
    fn git_fetch(&self, url: &str) -> Result<Option<String>> {
        let dir = self.git_dir();
        if !dir.join(".git").is_dir() {
            let _ = fs::remove_dir_all(&dir);
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io("cannot create", &dir, e))?;
            run(self.git().args(["init", "-q", "-b", BRANCH]), "git init")?;
        }
        // A git killed mid-round leaves its lock files behind; the workspace lock says no
        // other jeton is using this clone, and no one else uses it at all.
        remove_locks(&dir.join(".git"), 0);
        // A pattern, so that a remote without the branch yet is not an error. Only the newest
        // commit: a round reads the files as they are, never their history, so a new device
        // fetches the current files and not every one ever pushed. git refuses a shallow
        // fetch that matches no branch (an empty remote): then a plain one says why.
        let fetch = |shallow: bool| {
            let mut c = self.git();
            c.args(["fetch", "-q", "--no-tags", "--prune"]);
            if shallow {
                c.arg("--depth=1");
            }
            c.args(["--", url]).arg(format!(
                "+refs/heads/{BRANCH}*:refs/remotes/origin/{BRANCH}*"
            ));
            output(&mut c, "git fetch")
        };
        let mut out = fetch(true)?;
        if !out.status.success() {
            out = fetch(false)?;
        }
        if !out.status.success() {
            return Err(git_failed("git fetch", url, &out));
        }
        let tracking = format!("refs/remotes/origin/{BRANCH}");
        let head = output(
            self.git()
                .args(["rev-parse", "-q", "--verify"])
                .arg(format!("{tracking}^{{commit}}")),
            "git rev-parse",
        )?;
        let head = head
            .status
            .success()
            .then(|| String::from_utf8_lossy(&head.stdout).trim().to_owned());
        match &head {
            Some(h) => {
                run(self.git().args(["reset", "-q", "--hard", h]), "git reset")?;
            }
            None => {
                // An empty remote: start the branch over (a failed first push leaves a commit).
                let _ = run(
                    self.git()
                        .args(["update-ref", "-d", &format!("refs/heads/{BRANCH}")]),
                    "git update-ref",
                );
                let _ = run(
                    self.git()
                        .args(["rm", "-r", "-q", "--cached", "--ignore-unmatch", "."]),
                    "git rm",
                );
            }
        }
        run(
            self.git().args(["clean", "-q", "-f", "-d", "-x"]),
            "git clean",
        )?;
        Ok(head)
    }

    fn git_push(&self, url: &str, base: Option<&str>) -> Result<Published> {
        run(self.git().args(["add", "-A", "--", "."]), "git add")?;
        run(
            self.git().args([
                "commit",
                "-q",
                "--no-verify",
                "--allow-empty",
                "-m",
                "jeton sync",
            ]),
            "git commit",
        )?;
        let out = output(
            self.git()
                .args(["push", "-q", "--", url])
                .arg(format!("HEAD:refs/heads/{BRANCH}")),
            "git push",
        )?;
        if out.status.success() {
            return Ok(Published::Done);
        }
        // Rejected because the remote moved (someone pushed in between), or another failure.
        if self.moved(url, base)? {
            return Ok(Published::Raced);
        }
        Err(git_failed("git push", url, &out))
    }

    /// True when the remote's branch is no longer at `base` (someone pushed since).
    fn moved(&self, url: &str, base: Option<&str>) -> Result<bool> {
        let now = output(
            self.git()
                .args(["ls-remote", "--", url])
                .arg(format!("refs/heads/{BRANCH}")),
            "git ls-remote",
        )?;
        let remote_head = String::from_utf8_lossy(&now.stdout)
            .split_whitespace()
            .next()
            .map(str::to_owned);
        Ok(now.status.success() && remote_head.as_deref() != base)
    }
}

/// A git command run in `dir` with jeton's own identity and settings: no user identity, hook,
/// signing or merge setup is needed, and none of the caller's repository variables apply.
impl super::driver::Transport for Workspace {
    fn pull(&mut self) -> Result<Pulled> {
        Workspace::pull(self)
    }

    fn check(&self, pulled: &Pulled) -> Result<()> {
        Workspace::check(self, pulled)
    }

    fn publish(
        &mut self,
        files: &[(String, Incoming)],
        remove: &[String],
        base: Option<&str>,
    ) -> Result<Published> {
        self.publish_files(&self.descriptor(), files, remove, base)
    }
}

fn git_in(dir: &Path) -> crate::process::Builder {
    let mut c = crate::process::command("git");
    for v in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_CEILING_DIRECTORIES",
    ] {
        c.env_remove(v);
    }
    c.current_dir(dir)
        .env("GIT_AUTHOR_NAME", "jeton")
        .env("GIT_AUTHOR_EMAIL", "jeton@localhost")
        .env("GIT_COMMITTER_NAME", "jeton")
        .env("GIT_COMMITTER_EMAIL", "jeton@localhost")
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.autocrlf=false",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "gc.auto=0",
            // Replicas are ciphertext: deflating them or searching them for deltas costs time
            // and saves nothing (docs/GUIDE.md says what a self-hosted remote can set too).
            "-c",
            "core.compression=0",
            "-c",
            "core.bigFileThreshold=1",
        ])
        .stdin(Stdio::null());
    c
}

fn output(c: &mut crate::process::Builder, what: &str) -> Result<Output> {
    c.output().map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            Error::Other("git is not installed (sync through git runs the `git` command)".into())
        } else {
            Error::Other(format!("cannot run {what}: {e}"))
        }
    })
}

fn run(c: &mut crate::process::Builder, what: &str) -> Result<()> {
    let out = output(c, what)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "{what} failed: {}",
            reason(&out.stderr)
        )))
    }
}

fn git_failed(what: &str, url: &str, out: &Output) -> Error {
    Error::Other(format!("{what} {url} failed: {}", reason(&out.stderr)))
}

/// git's own reason for a failure, on one line: its message lines (ssh's among them, such as
/// "Host key verification failed." or "Connection refused") without the advice git appends to
/// every failed fetch or push, escaped for the terminal.
fn reason(bytes: &[u8]) -> String {
    const ADVICE: [&str; 2] = [
        "Please make sure you have the correct access rights",
        "and the repository exists.",
    ];
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = (text.lines().map(str::trim))
        .filter(|l| !l.is_empty() && !ADVICE.contains(l) && !l.starts_with("hint:"))
        .collect();
    // git ends with its own failure, after ssh's reason: the last few lines carry both.
    let kept = &lines[lines.len().saturating_sub(4)..];
    if kept.is_empty() {
        return "no message".into();
    }
    crate::text::Shown::line(&kept.join(" / ")).to_string()
}

/// Removes every `*.lock` file under a git directory (not into objects/, which holds none).
fn remove_locks(dir: &Path, depth: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && depth < 8 && e.file_name() != "objects" {
            remove_locks(&path, depth + 1);
        } else if kind.is_file() && e.file_name().to_string_lossy().ends_with(".lock") {
            let _ = fs::remove_file(&path);
        }
    }
}

fn read_descriptor(tree: &Path) -> Result<Option<Descriptor>> {
    let path = tree.join(DESCRIPTOR);
    let bytes = match read_regular_capped(&path, 4096) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Integrity(format!(
                "the remote's {DESCRIPTOR} cannot be read: {e}"
            )));
        }
    };
    let d: Descriptor = serde_json::from_slice(&bytes).map_err(|_| {
        Error::Integrity(format!(
            "the remote's {DESCRIPTOR} is not a jeton sync descriptor"
        ))
    })?;
    if d.format != "jeton-sync" || d.layout != LAYOUT {
        return Err(Error::Integrity(format!(
            "the remote's {DESCRIPTOR} is of an unknown layout (made by a newer jeton?)"
        )));
    }
    Ok(Some(d))
}

/// What is left of a pull's budget.
struct Left {
    total: u64,
    left: u64,
}

/// A team's member-list files, sorted by name, each read up to
/// [`crate::team::MAX_MEMBERS_LEN`] and all together up to [`MAX_MEMBERS_ROUND`]: a file
/// over either bound, or that cannot be read, comes with no bytes (the team reports it), and
/// none stops the round. Files past [`MAX_REPLICAS`] are not listed.
fn read_members(dir: &Path) -> Result<Vec<Incoming>> {
    let mut names = list_files(dir, ".age")?;
    names.truncate(MAX_REPLICAS);
    let mut total = 0usize;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let cap = crate::team::MAX_MEMBERS_LEN.min(MAX_MEMBERS_ROUND.saturating_sub(total));
        let bytes = read_regular_capped(&dir.join(&name), cap as u64)
            .map(|b| b.to_vec())
            .unwrap_or_default();
        total += bytes.len();
        out.push(Incoming { name, bytes });
    }
    Ok(out)
}

/// The names of the files of one remote folder whose names hold `marker`, sorted.
fn list_files(dir: &Path, marker: &str) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot read", dir, e)),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e.map_err(|e| Error::io("cannot read", dir, e))?;
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // Temporary files of a write in progress (ours or a sync tool's) are not replicas.
        if name.starts_with('.') || name.starts_with('~') || !name.contains(marker) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The files of one remote folder whose names hold `marker`, sorted by name: each at most
/// `max` bytes, all of them at most what is left of the pull's budget (each size is checked
/// before the file is read).
fn read_files(dir: &Path, marker: &str, max: u64, budget: &mut Left) -> Result<Vec<Incoming>> {
    let names = list_files(dir, marker)?;
    if names.len() > MAX_REPLICAS {
        return Err(Error::Integrity(format!(
            "the remote holds {} replica files, more than the {MAX_REPLICAS} jeton reads",
            names.len()
        )));
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let shown = crate::text::Shown::line(&name);
        let over = |limit: u64| {
            Error::Integrity(format!(
                "{shown} on the remote is over the {} that one sync reads; nothing was merged \
                 ({MAX_REPLICA_VAR} sets the limit)",
                crate::text::human_size(limit)
            ))
        };
        let cap = max.min(budget.left);
        let bytes = read_regular_capped(&path, cap).map_err(|e| match e.kind() {
            ErrorKind::FileTooLarge if cap < max => over(budget.total),
            ErrorKind::FileTooLarge => over(max),
            _ => Error::Integrity(format!("remote file {shown} cannot be read: {e}")),
        })?;
        budget.left -= bytes.len() as u64;
        out.push(Incoming {
            name,
            bytes: bytes.to_vec(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::reason;

    #[test]
    fn a_git_failure_keeps_sshs_reason_and_drops_gits_advice() {
        let stderr = b"ssh: connect to host example port 22: Connection refused\r\n\
            fatal: Could not read from remote repository.\n\n\
            Please make sure you have the correct access rights\n\
            and the repository exists.\n";
        assert_eq!(
            reason(stderr),
            "ssh: connect to host example port 22: Connection refused / \
             fatal: Could not read from remote repository."
        );
        assert_eq!(reason(b"\n"), "no message");
        assert!(!reason(b"Host key verification failed.\x1b[2J\n").contains('\x1b'));
    }
}
