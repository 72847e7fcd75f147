//! Typed errors. Every variant maps to exactly one exit code (SPEC §5), and no variant's
//! Display can hold a secret: messages are built from names, paths and counts only.
//! All decryption failures collapse into [`Error::Unlock`] or [`Error::Integrity`], never
//! telling an attacker which check failed first.

use std::path::PathBuf;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, at the level a user or script can act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Bad input: a malformed name, a conflicting flag, an unparsable value. Exit 2.
    Usage(String),
    /// The vault cannot be unlocked: wrong passphrase, or no way to ask for one. Exit 3.
    Unlock(String),
    /// An entry, contact or vault does not exist. Exit 4.
    NotFound(String),
    /// The entry is disabled or revoked. Exit 5.
    Unavailable(String),
    /// The vault (or a bundle) is corrupt, tampered with, or otherwise not authentic. Exit 6.
    Integrity(String),
    /// Another process holds the vault lock. Exit 7.
    Busy(String),
    /// Something already exists where a new thing was to be created. Exit 9.
    Exists(String),
    /// An I/O failure, with what jeton was doing at the time. Exit 1.
    Io {
        /// What jeton was doing, e.g. "reading vault".
        context: String,
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Any other failure. Exit 1.
    Other(String),
}

const WRONG_PASSPHRASE: &str = "wrong passphrase (or a damaged key slot)";

impl Error {
    /// The process exit code for this error (SPEC §5).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Unlock(_) => 3,
            Error::NotFound(_) => 4,
            Error::Unavailable(_) => 5,
            Error::Integrity(_) => 6,
            Error::Busy(_) => 7,
            Error::Exists(_) => 9,
            Error::Io { .. } | Error::Other(_) => 1,
        }
    }

    /// Wraps an I/O error with what was being done and to which file.
    pub fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context: context.into(),
            path: path.into(),
            source,
        }
    }

    /// The one message every failed decryption of a vault produces.
    pub fn corrupt_vault() -> Self {
        Error::Integrity(
            "the vault file is corrupt or has been tampered with; restore it from vault.jeton.bak or a backup".into(),
        )
    }

    /// The one message for a response of another kind than the request's (a bug, or an agent
    /// of another version).
    pub fn unexpected_response() -> Self {
        Error::Other("internal error: unexpected response".into())
    }

    /// The one message every wrong passphrase produces.
    pub fn wrong_passphrase() -> Self {
        Error::Unlock(WRONG_PASSPHRASE.into())
    }

    /// True for [`Error::wrong_passphrase`] (also when it came back from the agent).
    pub fn is_wrong_passphrase(&self) -> bool {
        matches!(self, Error::Unlock(m) if m == WRONG_PASSPHRASE)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage(m)
            | Error::Unlock(m)
            | Error::NotFound(m)
            | Error::Unavailable(m)
            | Error::Integrity(m)
            | Error::Busy(m)
            | Error::Exists(m)
            | Error::Other(m) => f.write_str(m),
            Error::Io {
                context,
                path,
                source,
            } => {
                write!(f, "{context} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
