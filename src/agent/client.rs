//! Talking to the agent from the CLI. Every call checks that the process behind the socket runs
//! as this user (SO_PEERCRED) before sending anything, so a socket planted by someone else never
//! receives a passphrase or a request.

use super::protocol::{self, FrameError, FromAgent, SessionSpec, Status, ToAgent};
use super::{socket_path, uid};
use crate::request::{Outcome, Request, Response, Session};
use crate::secret::Passphrase;
use crate::{Error, Result};
use std::io::{ErrorKind, Read, Write};
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
    let peer =
        crate::os::peer_uid(&conn).map_err(|e| Error::io("cannot check the agent at", path, e))?;
    if peer != uid() {
        return Err(Error::Other(format!(
            "the agent socket {} is served by uid {peer}, not by you (uid {}); refusing to use it",
            path.display(),
            uid()
        )));
    }
    Ok(Some(conn))
}

/// How long `stop` waits for the agent to exit after it answered.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// How an exchange with the agent ended.
enum Exchange {
    /// No agent listens (no directory, no socket, nobody accepting), or its directory is unsafe.
    NoAgent,
    /// The agent answered; the connection is still open.
    Answer(Box<FromAgent>, UnixStream),
    /// A dying agent: the connection was reset or closed before a whole answer arrived.
    /// `read` is false when the agent never read the request (a reset: it closed with the
    /// request unread, or never accepted the connection), so it ran nothing.
    Dropped {
        /// The agent may have read (and run) the request.
        read: bool,
    },
}

fn exchange(msg: &ToAgent, timeout: Duration) -> Result<Exchange> {
    if super::reach() != super::Reach::Safe {
        return Ok(Exchange::NoAgent);
    }
    let path = socket_path();
    let Some(mut conn) = connect(&path)? else {
        return Ok(Exchange::NoAgent);
    };
    let _ = conn.set_read_timeout(Some(timeout));
    let _ = conn.set_write_timeout(Some(SHORT));
    // A request too large for one frame runs without the agent, like one with no agent.
    let Some(frame) = protocol::encode(msg)? else {
        return Ok(Exchange::NoAgent);
    };
    if let Err(e) = conn.write_all(&frame) {
        return match e.kind() {
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                Ok(Exchange::Dropped { read: false })
            }
            _ => Err(Error::io("cannot talk to the agent at", &path, e)),
        };
    }
    match protocol::read_frame(&mut conn) {
        Ok(answer) => Ok(Exchange::Answer(Box::new(answer), conn)),
        Err(FrameError::Io(e)) if e.kind() == ErrorKind::ConnectionReset => {
            Ok(Exchange::Dropped { read: false })
        }
        Err(FrameError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
            Ok(Exchange::Dropped { read: true })
        }
        Err(e) => Err(Error::Other(format!("agent at {}: {e}", path.display()))),
    }
}

/// Sends one message and reads the answer; `None` when no agent is listening, or when it
/// was going away and answered nothing.
pub fn call(msg: &ToAgent, timeout: Duration) -> Result<Option<FromAgent>> {
    Ok(match exchange(msg, timeout)? {
        Exchange::Answer(answer, _) => Some(*answer),
        Exchange::NoAgent | Exchange::Dropped { .. } => None,
    })
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

/// Stops the agent and returns once it has exited (its socket is removed before it answers,
/// and it keeps the connection open until it exits), waiting at most 5 s; false when none was
/// running.
pub fn stop() -> Result<bool> {
    let (answer, mut conn) = match exchange(&ToAgent::Stop, SHORT)? {
        Exchange::Answer(answer, conn) => (answer, conn),
        Exchange::NoAgent | Exchange::Dropped { .. } => return Ok(false),
    };
    if !matches!(*answer, FromAgent::Done) {
        return Err(unexpected(*answer));
    }
    let _ = conn.set_read_timeout(Some(STOP_WAIT));
    let mut rest = [0u8; 64];
    let exited = loop {
        match conn.read(&mut rest) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break e.kind() == ErrorKind::ConnectionReset,
        }
    };
    if !exited {
        return Err(Error::Other(format!(
            "the agent answered `stop` but had not exited after {}s",
            STOP_WAIT.as_secs()
        )));
    }
    Ok(true)
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

/// Runs a request through the agent when one holds the key for this vault. An agent that goes
/// away without answering counts as no agent, except after it may have run a write.
pub fn run(session: &Session, request: &Request) -> Result<Via> {
    run_message(session, request, |session| ToAgent::Run {
        session,
        request: request.clone(),
    })
}

/// Runs a request on team `team`'s vault through the agent when one holds the key of the
/// personal vault of `session`; its names carry no `TEAM:` prefix.
pub fn run_team(session: &Session, team: &str, request: &Request) -> Result<Via> {
    run_message(session, request, |session| ToAgent::RunTeam {
        session,
        team: team.to_owned(),
        request: request.clone(),
    })
}

fn run_message(
    session: &Session,
    request: &Request,
    message: impl FnOnce(SessionSpec) -> ToAgent,
) -> Result<Via> {
    match super::reach() {
        super::Reach::Safe => {}
        super::Reach::Absent => return Ok(Via::Local(None)),
        super::Reach::Unsafe(_) => return Ok(Via::Local(super::unsafe_dir_warning())),
    }
    let timeout = session.store.lock_timeout() + Duration::from_secs(60);
    let msg = message(SessionSpec {
        vault: absolute(session.store.path())?,
        state_dir: session.state_dir.clone(),
        accept_rollback: session.accept_rollback,
        lock_timeout_ms: u64::try_from(session.store.lock_timeout().as_millis())
            .unwrap_or(u64::MAX),
    });
    match exchange(&msg, timeout)? {
        Exchange::NoAgent => Ok(Via::Local(None)),
        Exchange::Dropped { read: true } if request.writes() => Err(Error::Other(
            "the agent stopped while running this change, without saying whether it was saved; \
             check the vault (`jeton show`, `jeton log`) before running it again"
                .into(),
        )),
        Exchange::Dropped { .. } => Ok(Via::Local(None)),
        Exchange::Answer(answer, _) => match *answer {
            FromAgent::Locked { dropped } => Ok(Via::Local(dropped)),
            FromAgent::Ran(outcome) => Ok(Via::Agent(Box::new(outcome))),
            other => Err(unexpected(other)),
        },
    }
}
