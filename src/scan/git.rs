//! A repository's history, its staged changes, and the pre-commit hook.
//!
//! History: `git log --all --reflog` lists, oldest first (parents before children), every
//! file each commit adds or changes, on every branch and tag, in the reflog and in every
//! stash (a stash is commits too: its index, its work tree and its untracked files). Each blob
//! is read once, the first time it appears, through one `git cat-file --batch`, while the log
//! is still being read; a hit is reported once per entry, form and path, with the first commit
//! that holds it there. Blobs are read whole, so a token in a file deleted later, on a branch
//! never merged, or only in a stash is found, with its line in that file.
//!
//! Everything goes through the `git` program: what it reads is what git would show, and a
//! repository it cannot read fails with git's own reason.

use super::matcher::{Got, Source};
use super::report::{Place, Sink};
use super::{Hit, Search};
use crate::{Error, Result};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

/// `git -C repo` with the settings that change git's output turned off.
fn git(repo: &Path) -> Command {
    let mut c = crate::process::command("git");
    c.arg("-C")
        .arg(repo)
        .args([
            "-c",
            "log.showSignature=false",
            "-c",
            "core.quotePath=false",
        ])
        .stdin(Stdio::null());
    c
}

/// Runs a git command to its end; its stdout, or git's reason as the error.
fn output(mut c: Command, what: &str) -> Result<Vec<u8>> {
    let out = c
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| Error::Other(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(failed(what, &out.stderr));
    }
    Ok(out.stdout)
}

fn failed(what: &str, stderr: &[u8]) -> Error {
    let reason = String::from_utf8_lossy(stderr);
    let reason: Vec<&str> = reason
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let reason = if reason.is_empty() {
        "git failed without saying why".to_owned()
    } else {
        reason.join("; ")
    };
    Error::Other(format!("{what}: {reason}"))
}

/// The top of the work tree or the git directory of `repo`, checking that git can read it.
pub fn check_repository(repo: &Path) -> Result<PathBuf> {
    let mut c = git(repo);
    c.args(["rev-parse", "--absolute-git-dir"]);
    let out = output(
        c,
        &format!("cannot read the git repository at {}", repo.display()),
    )?;
    let dir = String::from_utf8_lossy(&out).trim().to_owned();
    Ok(PathBuf::from(dir))
}

/// What a history scan read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Commits listed.
    pub commits: u64,
    /// Distinct blobs read.
    pub blobs: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// A blob to read, and where it first appeared.
struct Appearance {
    blob: String,
    commit: String,
    path: String,
}

/// Every blob reachable from every ref, the reflog and the stash (or only from commits not
/// reachable from `since`), each hit once per entry, form and path.
pub fn scan_history(
    search: &Search,
    repo: &Path,
    since: Option<&str>,
    sink: &mut dyn Sink,
) -> Result<HistoryStats> {
    check_repository(repo)?;
    if let Some(rev) = since {
        if rev.starts_with('-') || rev.is_empty() {
            return Err(Error::Usage(format!("--since: '{rev}' is not a revision")));
        }
        let mut c = git(repo);
        c.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{rev}^{{commit}}"));
        output(c, &format!("--since: no commit '{rev}' in this repository"))?;
    }
    let mut log = git(repo);
    log.args([
        "log",
        "--all",
        "--reflog",
        "--reverse",
        "--topo-order",
        "--no-renames",
        "--raw",
        "--no-abbrev",
        "-z",
        "--diff-merges=first-parent",
        "--root",
        "--no-textconv",
        "--no-ext-diff",
        "--format=commit %H",
    ]);
    if let Some(rev) = since {
        log.args(["--not", rev]);
    }
    let mut log = spawn(log, "git log")?;
    let log_out = log
        .stdout
        .take()
        .ok_or_else(|| Error::Other("git log: no output".into()))?;
    let log_err = drain(log.stderr.take());

    let mut cat = git(repo);
    cat.args(["cat-file", "--batch"]).stdin(Stdio::piped());
    let mut cat = spawn(cat, "git cat-file")?;
    let cat_in = cat
        .stdin
        .take()
        .ok_or_else(|| Error::Other("git cat-file: no input".into()))?;
    let cat_out = cat
        .stdout
        .take()
        .ok_or_else(|| Error::Other("git cat-file: no output".into()))?;
    let cat_err = drain(cat.stderr.take());

    // The log is read on its own thread, which asks cat-file for each new blob and tells this
    // one where it appeared, in the same order cat-file answers.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Appearance>(1024);
    let lister = std::thread::spawn(move || list_blobs(log_out, cat_in, &tx));

    let mut stats = HistoryStats::default();
    let mut reported: HashSet<(u32, super::forms::Form, String)> = HashSet::new();
    let mut reader = BufReader::with_capacity(64 * 1024, cat_out);
    let mut buffer = search.buffer();
    let mut read_error = None;
    for a in rx {
        match read_blob(search, &mut reader, &mut buffer, &a, &mut |h: Hit| {
            let path = h.place.path().unwrap_or_default().to_owned();
            if reported.insert((h.secret, h.form, path)) {
                sink.hit(h);
            }
        }) {
            Ok(bytes) => {
                stats.blobs += 1;
                stats.bytes += bytes;
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    drop(reader);
    let listed = lister.join();
    let _ = cat.kill();
    let _ = cat.wait();
    let log_status = log.wait();
    let log_err = log_err.join().unwrap_or_default();
    let cat_err = cat_err.join().unwrap_or_default();
    if let Some(e) = read_error {
        return Err(match cat_err.is_empty() {
            true => Error::Other(format!("git cat-file: {e}")),
            false => failed("git cat-file failed", &cat_err),
        });
    }
    if !log_status.is_ok_and(|s| s.success()) {
        return Err(failed("git log failed", &log_err));
    }
    match listed {
        Ok(Ok(commits)) => stats.commits = commits,
        Ok(Err(e)) => return Err(Error::Other(format!("reading git log: {e}"))),
        Err(_) => return Err(Error::Other("reading git log: the reader stopped".into())),
    }
    Ok(stats)
}

fn spawn(mut c: Command, what: &str) -> Result<Child> {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Other(format!("cannot run {what}: {e}")))
}

/// Reads a child's stderr on a thread (so a chatty child never blocks), keeping the first
/// 64 KiB.
fn drain(stderr: Option<ChildStderr>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stderr {
            let _ = s.take(64 * 1024).read_to_end(&mut out);
        }
        out
    })
}

/// One line of `--raw -z` output: `:old_mode new_mode old_id new_id status`, then the path.
/// The new blob, if the change leaves one worth reading (not a deletion, not a submodule).
fn new_blob(meta: &[u8]) -> Option<String> {
    let meta = std::str::from_utf8(meta.strip_prefix(b":")?).ok()?;
    let mut fields = meta.split(' ');
    let (_, new_mode, _, new_id) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let worth = new_mode != "000000" && new_mode != "160000" && new_id.bytes().any(|b| b != b'0');
    worth.then(|| new_id.to_owned())
}

/// Reads the log, asks cat-file for each blob not seen before, and sends where it appeared.
/// Returns how many commits were listed.
fn list_blobs(
    log: impl Read,
    mut cat: impl Write,
    tx: &std::sync::mpsc::SyncSender<Appearance>,
) -> std::io::Result<u64> {
    let mut log = BufReader::with_capacity(64 * 1024, log);
    let mut seen: HashSet<String> = HashSet::new();
    let mut commit = String::new();
    let mut commits = 0u64;
    let mut pending: Option<String> = None;
    let mut field = Vec::new();
    loop {
        field.clear();
        if log.read_until(0, &mut field)? == 0 {
            break;
        }
        if field.last() == Some(&0) {
            field.pop();
        }
        let text = field.strip_prefix(b"\n").unwrap_or(&field);
        if let Some(blob) = pending.take() {
            // The path of the change just read.
            if seen.insert(blob.clone()) {
                let path = String::from_utf8_lossy(text).into_owned();
                writeln!(cat, "{blob}")?;
                let sent = tx.send(Appearance {
                    blob,
                    commit: commit.clone(),
                    path,
                });
                if sent.is_err() {
                    break;
                }
            }
        } else if let Some(id) = text.strip_prefix(b"commit ") {
            commit = String::from_utf8_lossy(id).trim().to_owned();
            commits += 1;
        } else if text.starts_with(b":") {
            // A change with no blob to read still has its path next.
            pending = Some(new_blob(text).unwrap_or_default());
            if pending.as_deref() == Some("") {
                pending = None;
                field.clear();
                log.read_until(0, &mut field)?;
            }
        }
    }
    cat.flush()?;
    Ok(commits)
}

/// Reads one blob's answer from cat-file and scans it. Returns its size.
fn read_blob(
    search: &Search,
    reader: &mut BufReader<impl Read>,
    buffer: &mut super::matcher::Buffer,
    a: &Appearance,
    hit: &mut dyn FnMut(Hit),
) -> std::io::Result<u64> {
    let mut header = Vec::new();
    reader.read_until(b'\n', &mut header)?;
    let header = String::from_utf8_lossy(&header);
    let mut words = header.split_whitespace();
    let (Some(id), Some(kind), Some(size)) = (words.next(), words.next(), words.next()) else {
        let said = header.trim();
        return Err(std::io::Error::other(if said.is_empty() {
            format!("no answer for blob {}", a.blob)
        } else {
            format!("unexpected answer for blob {}: {said}", a.blob)
        }));
    };
    let size: u64 = size
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad size in '{}'", header.trim())))?;
    if id != a.blob || kind != "blob" {
        return Err(std::io::Error::other(format!(
            "asked for blob {}, got {kind} {id}",
            a.blob
        )));
    }
    let path = search.redact(&a.path);
    let place = |line, column| Place::Commit {
        commit: a.commit.clone(),
        path: path.clone(),
        line,
        column,
    };
    let mut source = Exactly {
        inner: &mut *reader,
        left: size,
    };
    search.scan(&mut source, buffer, &place, hit)?;
    if source.left > 0 {
        return Err(std::io::Error::other(format!(
            "blob {} was cut short",
            a.blob
        )));
    }
    let mut newline = [0u8; 1];
    reader.read_exact(&mut newline)?;
    Ok(size)
}

/// Exactly `left` more bytes of a reader (the rest belongs to the next blob).
struct Exactly<'a, R> {
    inner: &'a mut R,
    left: u64,
}

impl<R: Read> Source for Exactly<'_, R> {
    fn next(&mut self, buf: &mut [u8]) -> std::io::Result<Got> {
        if self.left == 0 {
            return Ok(Got::End);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want])? {
            0 => Ok(Got::End),
            n => {
                self.left -= n as u64;
                Ok(Got::Data(n))
            }
        }
    }
}

/// The staged changes of the work tree at `repo`: what `git commit` would record (the
/// pre-commit hook runs this). Each hit's place is the staged file and line.
pub fn scan_staged(search: &Search, repo: &Path, sink: &mut dyn Sink) -> Result<u64> {
    check_repository(repo)?;
    let mut diff = git(repo);
    diff.args([
        "diff",
        "--cached",
        "--raw",
        "-z",
        "--no-abbrev",
        "--no-renames",
        "--no-textconv",
        "--no-ext-diff",
        "--diff-filter=AMT",
    ]);
    let listing = output(diff, "cannot list the staged changes")?;
    let mut changes = Vec::new();
    let mut fields = listing.split(|&b| b == 0).filter(|f| !f.is_empty());
    while let Some(meta) = fields.next() {
        let Some(path) = fields.next() else { break };
        if let Some(blob) = new_blob(meta.strip_prefix(b"\n").unwrap_or(meta)) {
            changes.push((blob, String::from_utf8_lossy(path).into_owned()));
        }
    }
    if changes.is_empty() {
        return Ok(0);
    }
    let mut cat = git(repo);
    cat.args(["cat-file", "--batch"]).stdin(Stdio::piped());
    let mut cat = spawn(cat, "git cat-file")?;
    let mut cat_in = cat
        .stdin
        .take()
        .ok_or_else(|| Error::Other("git cat-file: no input".into()))?;
    let cat_out = cat
        .stdout
        .take()
        .ok_or_else(|| Error::Other("git cat-file: no output".into()))?;
    let cat_err = drain(cat.stderr.take());
    let ids: Vec<String> = changes.iter().map(|(b, _)| b.clone()).collect();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for id in ids {
            writeln!(cat_in, "{id}")?;
        }
        Ok(())
    });
    let mut reader = BufReader::new(cat_out);
    let mut buffer = search.buffer();
    let mut bytes = 0;
    let mut failure = None;
    for (blob, path) in changes {
        let shown = search.redact(&path);
        let a = Appearance {
            blob,
            commit: String::new(),
            path,
        };
        let result = read_staged(search, &mut reader, &mut buffer, &a, &shown, sink);
        match result {
            Ok(n) => bytes += n,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(reader);
    let _ = writer.join();
    let _ = cat.wait();
    let cat_err = cat_err.join().unwrap_or_default();
    if let Some(e) = failure {
        return Err(match cat_err.is_empty() {
            true => Error::Other(format!("git cat-file: {e}")),
            false => failed("git cat-file failed", &cat_err),
        });
    }
    Ok(bytes)
}

fn read_staged(
    search: &Search,
    reader: &mut BufReader<impl Read>,
    buffer: &mut super::matcher::Buffer,
    a: &Appearance,
    shown: &str,
    sink: &mut dyn Sink,
) -> std::io::Result<u64> {
    let mut hits = Vec::new();
    let n = read_blob(search, reader, buffer, a, &mut |h| hits.push(h))?;
    for mut h in hits {
        let (line, column) = h.place.line_column();
        h.place = Place::Staged {
            path: shown.to_owned(),
            line,
            column,
        };
        sink.hit(h);
    }
    Ok(n)
}

/// The mark that tells a hook jeton wrote from someone else's.
pub const HOOK_MARK: &str = "# Written by `jeton scan --install-hook`.";

/// Writes the pre-commit hook of the repository at `repo`, running `command` (a shell command
/// line, already quoted). Refuses to replace a hook jeton did not write. Returns its path.
pub fn install_hook(repo: &Path, command: &str) -> Result<PathBuf> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    check_repository(repo)?;
    let mut c = git(repo);
    c.args(["rev-parse", "--git-path", "hooks/pre-commit"]);
    let out = output(c, "cannot find the hooks folder")?;
    let rel = PathBuf::from(String::from_utf8_lossy(&out).trim());
    let hook = if rel.is_absolute() {
        rel
    } else {
        repo.join(rel)
    };
    match std::fs::read(&hook) {
        Ok(old) if !String::from_utf8_lossy(&old).contains(HOOK_MARK) => {
            return Err(Error::Exists(format!(
                "{} already exists and jeton did not write it; add `{command}` to it yourself",
                hook.display()
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot read", &hook, e)),
    }
    if let Some(dir) = hook.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let body = format!(
        "#!/bin/sh\n{HOOK_MARK}\n\
         # Refuses a commit while a staged change holds a secret of your jeton vault; the\n\
         # message names the entry and the place, never the secret. Skip it once with\n\
         # `git commit --no-verify`.\n\
         exec {command}\n"
    );
    let tmp = hook.with_extension("jeton-tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(&tmp)
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    f.write_all(body.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, &hook).map_err(|e| Error::io("cannot write", &hook, e))?;
    Ok(hook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_line_gives_the_new_blob_unless_deleted_or_a_submodule() {
        let z = "0".repeat(40);
        let id = "a".repeat(40);
        assert_eq!(
            new_blob(format!(":100644 100644 {z} {id} M").as_bytes()),
            Some(id.clone())
        );
        assert_eq!(
            new_blob(format!(":100644 000000 {id} {z} D").as_bytes()),
            None
        );
        assert_eq!(
            new_blob(format!(":000000 160000 {z} {id} A").as_bytes()),
            None
        );
    }
}
