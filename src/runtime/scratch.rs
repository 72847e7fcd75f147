//! Private scratch directories for files that hold a secret: the editor's form (`edit
//! --secret`), the npm recipe's configuration. Each is a fresh directory with a random name, 0700,
//! in `RUNTIME/edit/` or `RUNTIME/npm/` (checked whole by [`super::secure`]), and holds an
//! exclusive `flock` on itself for as long as it lives. It is wiped (every file in it overwritten
//! with zeros, then the whole directory removed) when dropped, when jeton is told to stop
//! (SIGHUP, SIGTERM; SIGINT and SIGQUIT unless a child has the terminal: [`super::signals`]),
//! and otherwise by the next jeton that looks: a directory whose lock nobody holds belongs to a
//! jeton that was killed (SIGKILL, a crash, a power cut), since the lock goes with its process.
//!
//! Files are opened through the directory's own descriptor, never by a path that could be
//! redirected, and never through a symbolic link (`O_NOFOLLOW`).

use super::signals;
use crate::{Error, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use zeroize::Zeroizing;

/// What a scratch directory is for: each has its own folder in the runtime directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The form `jeton edit` opens in the editor.
    Form,
    /// The npm recipe's `npmrc` (and npm's cache for that run).
    Npm,
}

impl Purpose {
    /// Every purpose, for [`clean_stale`].
    pub const ALL: [Purpose; 2] = [Purpose::Form, Purpose::Npm];

    fn folder(self) -> &'static str {
        match self {
            Purpose::Form => "edit",
            Purpose::Npm => "npm",
        }
    }
}

/// One live scratch directory: its path and its locked descriptor.
struct Held {
    path: PathBuf,
    dir: OwnedFd,
}

/// Every scratch directory of this process, for the signal thread to wipe.
static LIVE: Mutex<Vec<Arc<Held>>> = Mutex::new(Vec::new());

/// A private directory for files that hold a secret; wiped and removed when dropped.
pub struct Scratch {
    held: Arc<Held>,
}

impl Scratch {
    /// A new private directory for `purpose`. Directories left behind by a jeton that was
    /// killed are wiped first.
    pub fn new(purpose: Purpose) -> Result<Scratch> {
        Scratch::new_in(&super::dir(), purpose)
    }

    fn new_in(base: &Path, purpose: Purpose) -> Result<Scratch> {
        // Without the handlers a signal still kills jeton; the next jeton then wipes the folder.
        let _ = signals::install();
        super::prepare(base)?;
        let parent = base.join(purpose.folder());
        super::prepare(&parent)?;
        clean_in(&parent);
        for _ in 0..8 {
            let name: [u8; 16] = crate::random::random_id()?;
            let path = parent.join(data_encoding::HEXLOWER.encode(&name));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io("cannot create a private directory", &path, e)),
            }
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            // Gone or locked already: another jeton's cleaning took it between our mkdir and
            // our lock.
            let Ok(dir) = rustix::fs::open(&path, flags, Mode::empty()) else {
                continue;
            };
            if rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            let st = rustix::fs::fstat(&dir)
                .map_err(|e| Error::io("cannot inspect", &path, e.into()))?;
            if st.st_nlink == 0 {
                continue;
            }
            if st.st_uid != super::uid() || st.st_mode & 0o077 != 0 {
                return Err(Error::Other(format!(
                    "refusing the private directory {}: it is not this user's alone",
                    path.display()
                )));
            }
            let held = Arc::new(Held { path, dir });
            lock_live().push(Arc::clone(&held));
            return Ok(Scratch { held });
        }
        Err(Error::Other(format!(
            "cannot create a private directory in {}",
            parent.display()
        )))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.held.path
    }

    /// Creates file `name` (0600, new) holding `bytes`; returns its path.
    pub fn create(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.held.path.join(name);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.held.dir, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| Error::io("cannot create", &path, e.into()))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("cannot write", &path, e))?;
        Ok(path)
    }

    /// The content of file `name`, at most `max` bytes: refused unless it is a regular file of
    /// this user reached without a symbolic link.
    pub fn read(&self, name: &str, max: usize) -> Result<Zeroizing<Vec<u8>>> {
        let path = self.held.path.join(name);
        let refuse = |why: &str| Error::Other(format!("refusing {}: {why}", path.display()));
        // Non-blocking: a FIFO put in its place must not hang jeton.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.held.dir, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP) => return Err(refuse("it is a symbolic link now")),
            Err(e) => return Err(Error::io("cannot read", &path, e.into())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("cannot read", &path, e.into()))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(refuse("it is not a regular file now"));
        }
        if st.st_uid != super::uid() {
            return Err(refuse(&format!("it belongs to uid {}", st.st_uid)));
        }
        crate::secret::read_capped(std::fs::File::from(fd).take(max as u64 + 1), max).map_err(|e| {
            match e.kind() {
                std::io::ErrorKind::FileTooLarge => {
                    refuse(&format!("it is larger than {max} bytes"))
                }
                _ => Error::io("cannot read", &path, e),
            }
        })
    }

    /// Overwrites file `name` with zeros and removes it, if it is there.
    pub fn wipe(&self, name: &str) {
        wipe_file(&self.held.path.join(name));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        lock_live().retain(|h| !Arc::ptr_eq(h, &self.held));
        wipe_dir(&self.held.path);
    }
}

fn lock_live() -> std::sync::MutexGuard<'static, Vec<Arc<Held>>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wipes every scratch directory of this process (the signal thread, before jeton stops).
pub(super) fn wipe_all() {
    for held in std::mem::take(&mut *lock_live()) {
        wipe_dir(&held.path);
    }
}

/// Overwrites a regular file with zeros (never through a symbolic link), then removes it.
fn wipe_file(path: &Path) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(no_follow_flags())
        .open(path)
        && let Ok(meta) = f.metadata()
        && meta.is_file()
    {
        let zeros = vec![0u8; 64 << 10];
        let mut left = meta.len();
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            if f.write_all(&zeros[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = f.sync_all();
    }
    let _ = std::fs::remove_file(path);
}

/// `O_NOFOLLOW | O_NONBLOCK` for [`std::fs::OpenOptions::custom_flags`].
fn no_follow_flags() -> i32 {
    (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32
}

/// Wipes the files directly in `dir` (a form, an editor's swap or backup file, an `npmrc`) and
/// removes the directory with everything in it (never following a link).
fn wipe_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            wipe_file(&entry.path());
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Wipes what killed jetons left in every scratch folder of the runtime directory, when that
/// directory passes [`super::secure`] (else it touches nothing, and says nothing: the command
/// that needs the directory says why it refuses it).
pub fn clean_stale() {
    clean_stale_in(&super::dir());
}

fn clean_stale_in(base: &Path) {
    if std::fs::symlink_metadata(base).is_err() || super::secure(base).is_err() {
        return;
    }
    for purpose in Purpose::ALL {
        let parent = base.join(purpose.folder());
        if std::fs::symlink_metadata(&parent).is_ok() && super::secure(&parent).is_ok() {
            clean_in(&parent);
        }
    }
}

/// Wipes every directory in `parent` whose lock nobody holds, and any loose file (a form of
/// an older jeton, which kept it directly in `edit/`).
fn clean_in(parent: &Path) {
    for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_file() {
            wipe_file(&path);
            continue;
        }
        if !kind.is_dir() {
            continue;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let Ok(dir) = rustix::fs::open(&path, flags, Mode::empty()) else {
            continue;
        };
        if rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_ok() {
            wipe_dir(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A runtime directory of the test's own.
    fn runtime() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("run/jeton");
        (d, base)
    }

    #[test]
    fn a_scratch_directory_is_private_and_wiped_when_dropped() {
        let (_d, base) = runtime();
        {
            let s = Scratch::new_in(&base, Purpose::Form).unwrap();
            let dir = s.path().to_owned();
            assert!(dir.starts_with(base.join("edit")), "{}", dir.display());
            assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
            let f = s.create("form.txt", b"secret").unwrap();
            assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
            assert_eq!(&*s.read("form.txt", 100).unwrap(), b"secret");
            assert!(s.read("form.txt", 3).is_err());
            // A link where the file was is refused, whatever it points to.
            std::fs::rename(&f, dir.join("moved")).unwrap();
            std::os::unix::fs::symlink(dir.join("moved"), &f).unwrap();
            let err = s.read("form.txt", 100).unwrap_err().to_string();
            assert!(err.contains("symbolic link"), "{err}");
            drop(s);
            assert!(!dir.exists());
        }
    }

    #[test]
    fn only_directories_nobody_holds_are_cleaned() {
        let (_d, base) = runtime();
        {
            let live = Scratch::new_in(&base, Purpose::Npm).unwrap();
            live.create("npmrc", b"token").unwrap();
            // What a killed jeton leaves: a directory nobody holds a lock on.
            let dead = base.join("npm/dead");
            std::fs::create_dir(&dead).unwrap();
            std::fs::write(dead.join("npmrc"), "token").unwrap();
            let loose = base.join("npm/loose.txt");
            std::fs::write(&loose, "token").unwrap();
            clean_stale_in(&base);
            assert!(!dead.exists() && !loose.exists());
            assert_eq!(&*live.read("npmrc", 10).unwrap(), b"token");
        }
    }
}
