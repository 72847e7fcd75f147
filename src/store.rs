//! Reading and writing the vault file (SPEC §2).
//!
//! A save never opens the vault path for writing. It takes the writer lock (`vault.jeton.lock`),
//! writes a new temporary file (created exclusively, 0600) in the same directory, fsyncs it,
//! hard-links the current vault to `vault.jeton.bak`, renames the temporary file over the vault
//! and fsyncs the directory. A crash at any point leaves either the old or the new file.

use crate::format::VaultFile;
use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default `--lock-timeout`.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest vault file read (format::MAX_PAYLOAD_LEN plus headers).
const MAX_FILE_LEN: u64 = (1 << 30) + (1 << 20);

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

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

impl Store {
    /// A store for the vault at `path`.
    pub fn new(path: PathBuf, lock_timeout: Duration) -> Store {
        Store { path, lock_timeout }
    }

    /// The vault path.
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
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// True when a vault file exists.
    pub fn exists(&self) -> bool {
        fs::symlink_metadata(&self.path).is_ok()
    }

    /// Reads and parses the vault file. Readers take no lock: saves are atomic renames.
    pub fn read(&self) -> Result<VaultFile> {
        let mut f = File::open(&self.path).map_err(|e| self.open_error(e))?;
        let len = f
            .metadata()
            .map_err(|e| Error::io("reading vault", &self.path, e))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(Error::Integrity(format!(
                "{} is too large to be a vault",
                self.path.display()
            )));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading vault", &self.path, e))?;
        VaultFile::parse_owned(bytes)
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

    /// A warning when group or others may read the vault, or its directory is writable by them.
    pub fn permission_warning(&self) -> Option<String> {
        let mode = fs::metadata(&self.path).ok()?.mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} is readable by other users (mode {:o}); fix with: chmod 600 {}",
                self.path.display(),
                mode & 0o777,
                self.path.display()
            )
        })
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
        let path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    self.open_error(e)
                } else {
                    Error::io("cannot open lock file", &path, e)
                }
            })?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(LockGuard { _file: file }),
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
        self.replace(bytes, guard)
    }

    /// Atomically replaces the vault with `bytes`, keeping the previous file as `.bak`.
    pub fn replace(&self, bytes: &[u8], _guard: &LockGuard) -> Result<()> {
        let dir = self.dir();
        self.remove_stale_temps();
        let tmp = self.temp_path()?;
        let written = write_synced(&tmp, bytes).and_then(|()| self.install(&tmp));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("cannot sync vault directory", dir, e))
    }

    fn install(&self, tmp: &Path) -> Result<()> {
        if self.path.exists() {
            let bak = self.backup_path();
            let bak_tmp = sibling(&tmp.with_extension(""), ".bak");
            let _ = fs::remove_file(&bak_tmp);
            let kept =
                fs::hard_link(&self.path, &bak_tmp).and_then(|()| fs::rename(&bak_tmp, &bak));
            // rename(2) does nothing when both names already link to one file (a save that
            // died between keeping the backup and installing the vault), so the link may remain.
            let _ = fs::remove_file(&bak_tmp);
            kept.map_err(|e| Error::io("cannot keep the previous vault as", &bak, e))?;
        }
        fs::rename(tmp, &self.path).map_err(|e| Error::io("cannot replace vault", &self.path, e))
    }

    fn temp_prefix(&self) -> String {
        format!(
            ".{}.tmp.",
            self.path.file_name().unwrap_or_default().to_string_lossy()
        )
    }

    fn temp_path(&self) -> Result<PathBuf> {
        let r: [u8; 8] = crate::vault::random_id()?;
        let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
        Ok(self.dir().join(format!("{}{hex}", self.temp_prefix())))
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

    fn load(state_dir: &Path) -> Memory {
        fs::read(state_dir.join(FILE))
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
        let r: [u8; 8] = crate::vault::random_id()?;
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
