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

use crate::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Socket file name inside the agent directory.
pub const SOCKET_FILE: &str = "agent.sock";
/// Default idle timeout (SPEC §7).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);
/// Default absolute limit (SPEC §7).
pub const DEFAULT_MAX: Duration = Duration::from_secs(8 * 60 * 60);

/// The agent's directory: the private runtime directory, `$XDG_RUNTIME_DIR/jeton`, else
/// `/tmp/jeton-$UID` ([`crate::runtime::dir`]).
pub fn socket_dir() -> PathBuf {
    crate::runtime::dir()
}

/// The agent socket path.
pub fn socket_path() -> PathBuf {
    socket_dir().join(SOCKET_FILE)
}

pub use crate::os::boottime;
pub use crate::runtime::uid;

/// Creates the agent directory (0700) if needed, then checks it with [`secure_dir`].
pub fn prepare_dir(dir: &Path) -> Result<()> {
    crate::runtime::prepare(dir)
}

/// Refuses an agent directory that someone else could have planted, could write to, or could
/// swap (every directory on the way is checked): [`crate::runtime::secure`], the check the
/// editor's and the npm recipe's private files go through too.
pub fn secure_dir(dir: &Path) -> Result<()> {
    crate::runtime::secure(dir)
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

/// [`Reach`] for this process's agent directory: an lstat of each directory on its path, and a
/// chmod the first time a directory of ours is found readable by others.
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
