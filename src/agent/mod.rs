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
use std::time::Duration;

/// Socket file name inside the agent directory.
pub const SOCKET_FILE: &str = "agent.sock";
/// Default idle timeout (SPEC §7).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);
/// Default absolute limit (SPEC §7).
pub const DEFAULT_MAX: Duration = Duration::from_secs(8 * 60 * 60);

/// `$XDG_RUNTIME_DIR/jeton`, else `/tmp/jeton-$UID`.
pub fn socket_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .map_or_else(
            || PathBuf::from(format!("/tmp/jeton-{}", uid())),
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

/// Time since boot, counting time spent suspended (CLOCK_BOOTTIME), so idle and absolute
/// limits expire during a suspend as they would awake.
pub fn boottime() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Creates the agent directory (0700) if needed, then refuses it unless it is a real directory
/// (not a symlink) owned by this user and not writable by group or others. A directory of ours
/// that group or others may read is tightened to 0700.
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
    check_dir(dir)?;
    let mode = std::fs::symlink_metadata(dir)
        .map_err(|e| Error::io("cannot inspect the agent directory", dir, e))?
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("cannot chmod the agent directory", dir, e))?;
    }
    Ok(())
}

/// Refuses an agent directory that someone else could have planted or could write to.
pub fn check_dir(dir: &Path) -> Result<()> {
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
    if meta.uid() != uid() {
        return refuse(&format!("it is owned by uid {}, not {}", meta.uid(), uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(&format!(
            "group or others may write to it (mode {:o}); fix with chmod 700",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}
