//! Talking to the agent from the CLI. Every call checks that the process behind the socket runs
//! as this user (SO_PEERCRED) before sending anything, so a socket planted by someone else never
//! receives a passphrase or a request.

use super::protocol::{self, FromAgent, SessionSpec, Status, ToAgent};
use super::{socket_path, uid};
use crate::request::{Outcome, Request, Response, Session};
use crate::secret::Passphrase;
use crate::{Error, Result};
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Time allowed for a status, lock or stop exchange.
const SHORT: Duration = Duration::from_secs(10);
/// Time allowed for an unlock (the agent runs the KDF).
const UNLOCK: Duration = Duration::from_secs(300);

fn connect(path: &Path) -> Result<Option<UnixStream>> {
    let conn = match UnixStream::connect(path) {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            return Ok(None);
        }
        Err(e) => return Err(Error::io("cannot connect to the agent at", path, e)),
    };
    let cred = rustix::net::sockopt::socket_peercred(&conn)
        .map_err(|e| Error::io("cannot check the agent at", path, e.into()))?;
    if cred.uid.as_raw() != uid() {
        return Err(Error::Other(format!(
            "the agent socket {} is served by uid {}, not by you (uid {}); refusing to use it",
            path.display(),
            cred.uid.as_raw(),
            uid()
        )));
    }
    Ok(Some(conn))
}

/// Sends one message and reads the answer; `None` when no agent is listening.
pub fn call(msg: &ToAgent, timeout: Duration) -> Result<Option<FromAgent>> {
    let path = socket_path();
    let Some(mut conn) = connect(&path)? else {
        return Ok(None);
    };
    let _ = conn.set_read_timeout(Some(timeout));
    let _ = conn.set_write_timeout(Some(SHORT));
    protocol::write_frame(&mut conn, msg)?;
    protocol::read_frame(&mut conn)
        .map(Some)
        .map_err(|e| Error::Other(format!("agent at {}: {e}", path.display())))
}

fn unexpected(reply: FromAgent) -> Error {
    match reply {
        FromAgent::Failed(w) => w.into(),
        _ => Error::Other("the agent sent an unexpected answer".into()),
    }
}

/// The agent's status; `None` when no agent is running.
pub fn status() -> Result<Option<Status>> {
    match call(&ToAgent::Status, SHORT)? {
        None => Ok(None),
        Some(FromAgent::Status(s)) => Ok(Some(s)),
        Some(other) => Err(unexpected(other)),
    }
}

/// An absolute form of a vault path, as the agent (whose working directory is `/`) needs it.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io("cannot resolve", path, e))
}

/// Asks a running agent to unlock `vault` with `passphrase`.
pub fn unlock(
    vault: &Path,
    passphrase: Passphrase,
    idle: Duration,
    max: Duration,
) -> Result<Status> {
    let msg = ToAgent::Unlock {
        vault: absolute(vault)?,
        passphrase,
        idle_secs: idle.as_secs(),
        max_secs: max.as_secs(),
    };
    match call(&msg, UNLOCK)? {
        None => Err(Error::Other("the agent is not running".into())),
        Some(FromAgent::Status(s)) => Ok(s),
        Some(other) => Err(unexpected(other)),
    }
}

/// Drops every key; false when no agent was running.
pub fn lock() -> Result<bool> {
    simple(&ToAgent::Lock)
}

/// Stops the agent; false when none was running.
pub fn stop() -> Result<bool> {
    simple(&ToAgent::Stop)
}

fn simple(msg: &ToAgent) -> Result<bool> {
    match call(msg, SHORT)? {
        None => Ok(false),
        Some(FromAgent::Done) => Ok(true),
        Some(other) => Err(unexpected(other)),
    }
}

/// Where a request ran.
#[derive(Debug)]
pub enum Via {
    /// The agent ran it.
    Agent(Box<Outcome<Response>>),
    /// No agent holds the key: run it locally. Carries a note when the agent just dropped it.
    Local(Option<String>),
}

/// Runs a request through the agent when one holds the key for this vault.
pub fn run(session: &Session, request: &Request) -> Result<Via> {
    if std::fs::symlink_metadata(socket_path()).is_err() {
        return Ok(Via::Local(None));
    }
    let timeout = session.store.lock_timeout() + Duration::from_secs(60);
    let msg = ToAgent::Run {
        session: SessionSpec {
            vault: absolute(session.store.path())?,
            state_dir: session.state_dir.clone(),
            accept_rollback: session.accept_rollback,
            lock_timeout_ms: u64::try_from(session.store.lock_timeout().as_millis())
                .unwrap_or(u64::MAX),
        },
        request: request.clone(),
    };
    match call(&msg, timeout)? {
        None => Ok(Via::Local(None)),
        Some(FromAgent::Locked { dropped }) => Ok(Via::Local(dropped)),
        Some(FromAgent::Ran(outcome)) => Ok(Via::Agent(Box::new(outcome))),
        Some(other) => Err(unexpected(other)),
    }
}
