//! The agent (SPEC §7): a background process that holds vault keys and runs requests for the CLI.
//!
//! ```text
//! cli -> client -> unix socket ($XDG_RUNTIME_DIR/jeton/agent.sock) -> server (holds the key)
//! ```
//!
//! The key never crosses the socket: the CLI sends the passphrase once (`unlock`), the agent
//! derives and keeps the key, then runs the same typed [`crate::request::Request`]s the CLI
//! would run locally and sends back their responses. See docs/AGENT.md.

pub mod client;
pub mod protocol;
pub mod server;

use crate::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Socket file name inside the agent directory.
pub const SOCKET_FILE: &str = "agent.sock";
/// Default idle timeout (SPEC §7).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);
/// Default absolute limit (SPEC §7).
pub const DEFAULT_MAX: Duration = Duration::from_secs(8 * 60 * 60);

/// `$XDG_RUNTIME_DIR/jeton`, else `/tmp/jeton-$UID`.
pub fn socket_dir() -> PathBuf {
    socket_dir_for(std::env::var_os("XDG_RUNTIME_DIR"), uid())
}

fn socket_dir_for(runtime_dir: Option<std::ffi::OsString>, uid: u32) -> PathBuf {
    runtime_dir
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .map_or_else(
            || PathBuf::from(format!("/tmp/jeton-{uid}")),
            |d| d.join("jeton"),
        )
}

/// The agent socket path.
pub fn socket_path() -> PathBuf {
    socket_dir().join(SOCKET_FILE)
}

/// This process's real uid.
pub fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

pub use crate::os::boottime;

/// Creates the agent directory (0700) if needed, then checks it with [`secure_dir`].
pub fn prepare_dir(dir: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| Error::io("cannot create the agent directory", parent, e))?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot create the agent directory", dir, e)),
        }
    }
    secure_dir(dir)
}

/// Refuses an agent directory that someone else could have planted or could write to (in
/// `/tmp`, anyone can create `/tmp/jeton-$UID` first): it must be a real directory (lstat, not a
/// symlink) owned by this user and writable by no one else. A directory of ours that group or
/// others may only read is tightened to 0700.
pub fn secure_dir(dir: &Path) -> Result<()> {
    let mode = check_dir_as(dir, uid())?;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("cannot chmod the agent directory", dir, e))?;
    }
    Ok(())
}

/// The checks of [`secure_dir`] for user `uid`; returns the directory's mode.
fn check_dir_as(dir: &Path, uid: u32) -> Result<u32> {
    let refuse = |why: &str| {
        Err(Error::Other(format!(
            "refusing the agent directory {}: {why}",
            dir.display()
        )))
    };
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io("cannot inspect the agent directory", dir, e))?;
    if meta.file_type().is_symlink() {
        return refuse("it is a symbolic link");
    }
    if !meta.is_dir() {
        return refuse("it is not a directory");
    }
    if meta.uid() != uid {
        return refuse(&format!("it is owned by uid {}, not {uid}", meta.uid()));
    }
    // Someone else may have planted files in it while it was writable: fixing the mode would
    // not remove them.
    if meta.mode() & 0o022 != 0 {
        return refuse(&format!(
            "group or others may write to it (mode {:o}); remove it",
            meta.mode() & 0o777
        ));
    }
    Ok(meta.mode())
}

/// Whether the agent can be reached safely, checked once per process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The directory is safe: connect to [`socket_path`].
    Safe,
    /// No agent directory, so no agent.
    Absent,
    /// The directory is unsafe: run without the agent. Carries the warning to show once.
    Unsafe(String),
}

/// [`Reach`] for this process's agent directory: one lstat, and a chmod the first time a
/// directory of ours is found readable by others.
pub fn reach() -> Reach {
    let dir = socket_dir();
    if std::fs::symlink_metadata(&dir).is_err() {
        return Reach::Absent;
    }
    match secure_dir(&dir) {
        Ok(()) => Reach::Safe,
        Err(e) => Reach::Unsafe(format!(
            "not using the agent: {e} (the other passphrase sources are used instead)"
        )),
    }
}

/// The warning about an unsafe agent directory, the first time it is asked for in this process.
pub fn unsafe_dir_warning() -> Option<String> {
    static WARNED: AtomicBool = AtomicBool::new(false);
    match reach() {
        Reach::Unsafe(w) if !WARNED.swap(true, Ordering::SeqCst) => Some(w),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_runtime_dir_the_socket_is_under_tmp_per_uid() {
        assert_eq!(socket_dir_for(None, 1000), Path::new("/tmp/jeton-1000"));
        assert_eq!(
            socket_dir_for(Some("".into()), 7),
            Path::new("/tmp/jeton-7")
        );
        assert_eq!(
            socket_dir_for(Some("relative".into()), 7),
            Path::new("/tmp/jeton-7")
        );
        assert_eq!(
            socket_dir_for(Some("/run/user/7".into()), 7),
            Path::new("/run/user/7/jeton")
        );
    }

    #[test]
    fn a_directory_someone_else_owns_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_dir_as(d.path(), uid()).is_ok());
        let err = check_dir_as(d.path(), uid() + 1).unwrap_err().to_string();
        assert!(err.contains(&format!("owned by uid {}", uid())), "{err}");
    }

    #[test]
    fn unsafe_directories_are_refused_and_readable_ones_tightened() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("jeton");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        secure_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(
            secure_dir(&dir)
                .unwrap_err()
                .to_string()
                .contains("may write")
        );
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(
            secure_dir(&link)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        let file = d.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(
            secure_dir(&file)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
    }
}
