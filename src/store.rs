//! Reading and writing the vault file (SPEC §2).
//!
//! A save never opens the vault path for writing. It takes the writer lock (`vault.jeton.lock`),
//! writes a new temporary file (created exclusively, 0600) in the same directory, fsyncs it,
//! hard-links the current vault to `vault.jeton.bak`, renames the temporary file over the vault
//! and fsyncs the directory. A crash at any point leaves either the old or the new file.
//!
//! A save that changed the vault key or wiped secrets forgets the previous generation instead
//! ([`Previous::Forget`]): the new content becomes `vault.jeton.bak` first, then the vault, so no
//! file jeton leaves beside the vault opens with the old key or holds the wiped values.
//!
//! A vault path that is a symbolic link is resolved once, when the store is made: the vault,
//! its lock, backup and temporary files all live beside the link's target, and a save replaces
//! the target, never the link. Every file jeton opens beside the vault is opened without
//! following a symbolic link, and every file read is capped ([`read_capped`]).

use crate::format::VaultFile;
use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Default `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest vault file read (format::MAX_PAYLOAD_LEN plus headers).
const MAX_FILE_LEN: u64 = (1 << 30) + (1 << 20);

/// What a save does with the generation it replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous {
    /// Keep it as `vault.jeton.bak`.
    Keep,
    /// Forget it: `vault.jeton.bak` gets the new content too (the vault key changed, or secrets
    /// were wiped, and the old generation must not survive in a file jeton wrote).
    Forget,
}

/// The vault file at one path.
#[derive(Clone, Debug)]
pub struct Store {
    path: PathBuf,
    lock_timeout: Duration,
}

/// Proof that this process holds the writer lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// `O_NOFOLLOW`, for files opened beside the vault.
fn no_follow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Follows symbolic links in the last component of `path` (at most 40, as the kernel does);
/// relative targets are taken from the link's directory. Directories stay as given.
fn resolve_link(mut path: PathBuf) -> PathBuf {
    for _ in 0..40 {
        match fs::read_link(&path) {
            Ok(target) => {
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                }
            }
            Err(_) => break,
        }
    }
    path
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

impl Store {
    /// A store for the vault at `path`; a symbolic link there is resolved now, so that saves
    /// replace its target (see the module docs).
    pub fn new(path: PathBuf, lock_timeout: Duration) -> Store {
        Store {
            path: resolve_link(path),
            lock_timeout,
        }
    }

    /// The vault path (a symbolic link's target, when one was given).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long a writer waits for the lock.
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// The backup of the previous generation.
    pub fn backup_path(&self) -> PathBuf {
        sibling(&self.path, ".bak")
    }

    fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    fn dir(&self) -> &Path {
        parent_dir(&self.path)
    }

    /// True when a vault file exists.
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok()
    }

    /// Reads and parses the vault file. Readers take no lock: saves are atomic renames.
    /// Only a regular file of at most the format's largest size is read.
    pub fn read(&self) -> Result<VaultFile> {
        let not_a_vault =
            |why: &str| Error::Integrity(format!("{} is not a vault ({why})", self.path.display()));
        let f = open_regular(&self.path).map_err(|e| match e.kind() {
            ErrorKind::InvalidInput => not_a_vault("not a regular file"),
            _ => self.open_error(e),
        })?;
        let mut bytes = read_open_capped(f, MAX_FILE_LEN).map_err(|e| match e.kind() {
            ErrorKind::FileTooLarge => not_a_vault("too large"),
            _ => Error::io("reading vault", &self.path, e),
        })?;
        VaultFile::parse_owned(std::mem::take(&mut *bytes))
    }

    fn open_error(&self, e: std::io::Error) -> Error {
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound(format!(
                "no vault at {} (create one with `jeton init`, or pass --vault)",
                self.path.display()
            ))
        } else {
            Error::io("cannot read vault", &self.path, e)
        }
    }

    /// What is wrong when group or others may read the vault, without the fix.
    pub fn loose_permissions(&self) -> Option<String> {
        let mode = fs::metadata(&self.path).ok()?.mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} is readable by other users (mode {:o})",
                self.path.display(),
                mode & 0o777
            )
        })
    }

    /// A warning when group or others may read the vault, with its fix.
    pub fn permission_warning(&self) -> Option<String> {
        self.loose_permissions()
            .map(|w| format!("{w}; fix with: chmod 600 {}", self.path.display()))
    }

    /// Creates the vault directory (0700) if needed.
    pub fn create_dir(&self) -> Result<()> {
        let dir = self.dir();
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io("cannot create vault directory", dir, e))?;
        }
        Ok(())
    }

    /// Takes the writer lock, waiting up to the lock timeout (exit 7 after that).
    pub fn lock(&self) -> Result<LockGuard> {
        self.lock_while(|| true).and_then(|g| {
            g.ok_or_else(|| Error::Other("internal error: lock wait cancelled".into()))
        })
    }

    /// [`Store::lock`], giving up (`Ok(None)`) as soon as `keep_waiting` turns false: the agent
    /// stops a write's wait when the key it would save with is dropped.
    pub fn lock_while(&self, keep_waiting: impl Fn() -> bool) -> Result<Option<LockGuard>> {
        let path = self.lock_path();
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Other(format!(
                "{} is a symbolic link jeton cannot resolve (a loop); point it at the vault file",
                self.path.display()
            )));
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(no_follow())
            .open(&path)
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    self.open_error(e)
                } else if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    Error::Other(format!(
                        "{} is a symbolic link; jeton refuses to follow it (remove it)",
                        path.display()
                    ))
                } else {
                    Error::io("cannot open lock file", &path, e)
                }
            })?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(LockGuard { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) if !keep_waiting() => return Ok(None),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < self.lock_timeout => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Busy(format!(
                        "the vault is locked by another jeton process ({}); try again, or raise --lock-timeout",
                        path.display()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io("cannot lock", &path, e));
                }
            }
        }
    }

    /// Writes a brand-new vault; refuses if one exists.
    pub fn create(&self, bytes: &[u8], guard: &LockGuard) -> Result<()> {
        if self.exists() {
            return Err(Error::Exists(format!(
                "a vault already exists at {}; jeton never overwrites one",
                self.path.display()
            )));
        }
        self.replace(bytes, guard, Previous::Keep)
    }

    /// Atomically replaces the vault with `bytes`; `previous` says whether the file replaced
    /// is kept as `.bak` or forgotten.
    pub fn replace(&self, bytes: &[u8], _guard: &LockGuard, previous: Previous) -> Result<()> {
        self.remove_stale_temps();
        let tmp = self.temp_path()?;
        let written = write_synced(&tmp, bytes).and_then(|()| self.install(&tmp, previous));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        self.sync_dir()
    }

    fn sync_dir(&self) -> Result<()> {
        sync_dir(self.dir(), "cannot sync vault directory")
    }

    fn install(&self, tmp: &Path, previous: Previous) -> Result<()> {
        let bak = self.backup_path();
        match previous {
            Previous::Keep if self.path.exists() => {
                self.link_as_backup(&self.path, tmp)
                    .map_err(|e| Error::io("cannot keep the previous vault as", &bak, e))?;
            }
            Previous::Keep => {}
            Previous::Forget => {
                // The backup takes the new content before the vault does: a crash in between
                // leaves the old vault (the change did not happen), never the new vault beside
                // an old-key backup.
                self.link_as_backup(tmp, tmp)
                    .and_then(|()| self.sync_dir().map_err(std::io::Error::other))
                    .map_err(|e| Error::io("cannot replace the previous vault", &bak, e))?;
            }
        }
        fs::rename(tmp, &self.path).map_err(|e| Error::io("cannot replace vault", &self.path, e))
    }

    /// Makes `vault.jeton.bak` a link to `from` through a temporary name beside `tmp`.
    fn link_as_backup(&self, from: &Path, tmp: &Path) -> std::io::Result<()> {
        let bak_tmp = sibling(&tmp.with_extension(""), ".bak");
        let _ = fs::remove_file(&bak_tmp);
        let kept =
            fs::hard_link(from, &bak_tmp).and_then(|()| fs::rename(&bak_tmp, self.backup_path()));
        // rename(2) does nothing when both names already link to one file (a save that
        // died between keeping the backup and installing the vault), so the link may remain.
        let _ = fs::remove_file(&bak_tmp);
        kept
    }

    fn temp_prefix(&self) -> String {
        temp_prefix(&self.path)
    }

    fn temp_path(&self) -> Result<PathBuf> {
        temp_beside(&self.path)
    }

    /// Temporary files left by a writer that died; only the lock holder calls this.
    fn remove_stale_temps(&self) {
        let prefix = self.temp_prefix();
        if let Ok(rd) = fs::read_dir(self.dir()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

/// Opens `path` for reading if it is a regular file (`InvalidInput` otherwise). The open does
/// not wait on a FIFO.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// Reads an open file to its end, at most `max` bytes (`FileTooLarge` past that). The size the
/// file reports is checked first, and no more than `max + 1` bytes are ever read, so neither a
/// huge sparse file nor an endless device can exhaust memory. The buffer is wiped on drop; a
/// regular file is read into a buffer of its size, and every smaller buffer a pipe's content
/// outgrew is wiped too.
fn read_open_capped(f: File, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let too_large = || {
        std::io::Error::new(
            ErrorKind::FileTooLarge,
            format!("larger than the limit of {}", crate::text::human_size(max)),
        )
    };
    let meta = f.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::new(
            ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    let len = meta.len();
    if meta.is_file() && len > max {
        return Err(too_large());
    }
    if !meta.is_file() {
        // A pipe or device: read in growing buffers, each wiped as it is outgrown.
        return crate::secret::read_capped(f, usize::try_from(max).unwrap_or(usize::MAX)).map_err(
            |e| {
                if e.kind() == ErrorKind::FileTooLarge {
                    too_large()
                } else {
                    e
                }
            },
        );
    }
    // A regular file: read straight into a buffer of its size.
    let mut buf = Zeroizing::new(Vec::with_capacity((len.min(max) + 1) as usize));
    f.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

/// Reads a whole user-supplied file (an import source, a template, a passphrase file, an age
/// identity...) of at most `max` bytes into a buffer wiped on drop. Pipes such as `<(cmd)`
/// are read too, never more than `max + 1` bytes; a file larger than `max` is an error of kind
/// `FileTooLarge`. Every read of a file named by the user goes through here or [`read_input`].
pub fn read_capped(path: &Path, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    read_open_capped(File::open(path)?, max)
}

/// [`read_capped`] with jeton's errors: exit 4 when `path` does not exist, 2 when it is too
/// large, 1 otherwise. `what` names the file in the message ("template", "env file").
pub fn read_input(path: &Path, max: u64, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    read_capped(path, max).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::NotFound(format!("no {what} at {}", path.display())),
        ErrorKind::FileTooLarge => Error::Usage(format!(
            "the {what} {} is larger than {}",
            path.display(),
            crate::text::human_size(max)
        )),
        _ => Error::io(format!("cannot read {what}"), path, e),
    })
}

/// Reads a file that must be regular (a vault copy, a backup), at most `max` bytes.
pub fn read_regular_capped(path: &Path, max: u64) -> std::io::Result<Zeroizing<Vec<u8>>> {
    read_open_capped(open_regular(path)?, max)
}

/// `.NAME.tmp.`: the start of every temporary file name for `path`.
fn temp_prefix(path: &Path) -> String {
    format!(
        ".{}.tmp.",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// A fresh temporary name in the directory of `path`, so that renaming it over `path` is atomic.
fn temp_beside(path: &Path) -> Result<PathBuf> {
    let r: [u8; 8] = crate::random::random_id()?;
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    Ok(parent_dir(path).join(format!("{}{hex}", temp_prefix(path))))
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path, what: &str) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(what, dir, e))
}

/// Replaces `path` with `bytes` as a save replaces the vault: a new temporary file (mode 0600)
/// in the same directory, fsynced, renamed over `path`, then the directory fsynced. A crash
/// leaves the old file or the new one, never part of one. Every failure is reported; after a
/// failed directory fsync the new file is in place but may not survive a power cut.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::Usage(format!("{}: not a file name", path.display())));
    }
    let tmp = temp_beside(path)?;
    let written = write_synced(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io("cannot write", path, e)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    sync_dir(parent_dir(path), "cannot sync")
}

/// Creates `path` exclusively with mode 0600, writes `bytes`, fsyncs.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot chmod", path, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("cannot write", path, e))?;
    f.sync_all().map_err(|e| Error::io("cannot sync", path, e))
}

/// Rollback memory: the last generation jeton wrote for each vault path (SPEC §3).
pub mod rollback {
    use super::*;
    use std::collections::BTreeMap;

    const FILE: &str = "generations.json";

    #[derive(serde::Serialize, serde::Deserialize, Default)]
    struct Memory {
        vaults: BTreeMap<String, Seen>,
    }

    #[derive(serde::Serialize, serde::Deserialize, Clone, Copy)]
    struct Seen {
        #[serde(with = "hex16")]
        vault_id: [u8; 16],
        generation: u64,
    }

    mod hex16 {
        use serde::{Deserialize, Deserializer, Serializer};
        pub fn serialize<S: Serializer>(b: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
            let s = String::deserialize(d)?;
            let v: Option<Vec<u8>> = (0..s.len())
                .step_by(2)
                .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect();
            v.and_then(|v| v.try_into().ok())
                .ok_or_else(|| serde::de::Error::custom("bad vault id"))
        }
    }

    fn key(vault: &Path) -> String {
        let abs = fs::canonicalize(vault).unwrap_or_else(|_| vault.to_path_buf());
        abs.to_string_lossy().into_owned()
    }

    /// Largest rollback memory read; one line per vault path, so far more than anyone needs.
    const MAX_LEN: u64 = 16 << 20;

    fn load(state_dir: &Path) -> Memory {
        read_regular_capped(&state_dir.join(FILE), MAX_LEN)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// The highest generation written to this path for this vault id, if remembered.
    pub fn remembered(state_dir: &Path, vault: &Path, vault_id: &[u8; 16]) -> Option<u64> {
        load(state_dir)
            .vaults
            .get(&key(vault))
            .filter(|s| s.vault_id == *vault_id)
            .map(|s| s.generation)
    }

    /// Records a generation just written. Called while holding the vault lock.
    pub fn remember(
        state_dir: &Path,
        vault: &Path,
        vault_id: &[u8; 16],
        generation: u64,
    ) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| Error::io("cannot create state directory", state_dir, e))?;
        let mut m = load(state_dir);
        m.vaults.insert(
            key(vault),
            Seen {
                vault_id: *vault_id,
                generation,
            },
        );
        let bytes = serde_json::to_vec_pretty(&m).map_err(|e| Error::Other(e.to_string()))?;
        let r: [u8; 8] = crate::random::random_id()?;
        let tmp = state_dir.join(format!(".{FILE}.{:016x}", u64::from_le_bytes(r)));
        let saved = write_synced(&tmp, &bytes).and_then(|()| {
            fs::rename(&tmp, state_dir.join(FILE))
                .map_err(|e| Error::io("cannot save", state_dir.join(FILE), e))
        });
        if saved.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        saved
    }
}
