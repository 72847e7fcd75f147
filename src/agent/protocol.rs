//! The agent's wire protocol (docs/AGENT.md is the reference).
//!
//! One connection carries one exchange: the client sends one frame, the agent answers with one
//! frame and closes. A frame is a 4-byte big-endian length followed by that many bytes of JSON,
//! an object `{"v": VERSION, "msg": ...}`. Frames longer than [`MAX_FRAME`] are refused before
//! anything is allocated for them.
//!
//! JSON rather than postcard: it is self-describing, so a CLI and an agent built from different
//! versions of jeton fail with a clear "unknown variant" instead of silently reading one request
//! as another (postcard numbers enum variants by position).

use crate::request::{Outcome, Request, Response};
use crate::secret::Passphrase;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Protocol version; both sides refuse any other.
pub const VERSION: u32 = 1;
/// Largest frame either side accepts (2 GiB): the largest vault the format allows
/// ([`crate::format::MAX_PAYLOAD_LEN`]) fits in base64, so a sync round's new replica or a
/// backup always comes back. A request over it (a round given several such replicas) is not
/// sent: the client runs it itself.
pub const MAX_FRAME: u32 = 2 << 30;

/// The part of a CLI session the agent needs to run a request the way the CLI would.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionSpec {
    /// Absolute path of the vault file.
    pub vault: PathBuf,
    /// Where rollback memory lives (the client's `$XDG_STATE_HOME/jeton`).
    pub state_dir: Option<PathBuf>,
    /// `--accept-rollback`.
    pub accept_rollback: bool,
    /// `--lock-timeout`, in milliseconds.
    pub lock_timeout_ms: u64,
}

/// A message to the agent.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ToAgent {
    /// What the agent holds; does not touch any timer.
    Status,
    /// Derive the vault key from a passphrase and keep it.
    Unlock {
        /// Absolute path of the vault file.
        vault: PathBuf,
        /// The passphrase; it crosses the socket once, the vault key never does.
        #[serde(with = "crate::secret::serde_passphrase")]
        passphrase: Passphrase,
        /// Idle timeout in seconds.
        idle_secs: u64,
        /// Absolute limit in seconds.
        max_secs: u64,
    },
    /// Drop every key.
    Lock,
    /// Run a request on a vault the agent holds the key of.
    Run {
        /// How to open and save the vault.
        session: SessionSpec,
        /// The request.
        request: Request,
    },
    /// Drop every key and exit.
    Stop,
    /// Run a request on a team vault of a personal vault the agent holds the key of: the
    /// team's key comes from the personal vault, and the team vault is its local copy.
    RunTeam {
        /// The personal vault's session.
        session: SessionSpec,
        /// The team's name.
        team: String,
        /// The request, its names without the `TEAM:` prefix.
        request: Request,
    },
}

/// One vault the agent holds the key of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// Vault path.
    pub vault: PathBuf,
    /// Seconds until the idle timeout.
    pub idle_left_secs: u64,
    /// Seconds until the absolute limit.
    pub max_left_secs: u64,
    /// Whether the key's memory is locked into RAM (mlock).
    pub memory_locked: bool,
    /// The team vaults of this vault the agent holds open, by team name.
    #[serde(default)]
    pub teams: Vec<String>,
}

/// The agent's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Agent process id.
    pub pid: u32,
    /// jeton version of the agent.
    pub version: String,
    /// Vaults unlocked.
    pub unlocked: Vec<Held>,
}

/// An error carried over the socket: its exit code and message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// The exit code of the error (SPEC §5).
    pub code: i32,
    /// The one-line message.
    pub message: String,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> Self {
        WireError {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Self {
        let m = w.message;
        match w.code {
            2 => Error::Usage(m),
            3 => Error::Unlock(m),
            4 => Error::NotFound(m),
            5 => Error::Unavailable(m),
            6 => Error::Integrity(m),
            7 => Error::Busy(m),
            9 => Error::Exists(m),
            _ => Error::Other(m),
        }
    }
}

/// A message from the agent.
#[derive(Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FromAgent {
    /// Answer to `Status` and `Unlock`.
    Status(Status),
    /// `Lock` or `Stop` done.
    Done,
    /// The agent does not hold the key of this vault: unlock locally.
    Locked {
        /// Set when the agent just dropped the key (the vault was re-keyed), for a diagnostic.
        dropped: Option<String>,
    },
    /// The request ran.
    Ran(Outcome<Response>),
    /// The request (or the message) failed.
    Failed(WireError),
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    msg: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    msg: T,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Counts bytes, so a frame is serialised once into a buffer of exactly the right size (no
/// reallocation leaving copies of secrets behind).
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One frame holding `msg`, or `None` when it would be over [`MAX_FRAME`].
pub(super) fn encode<T: Serialize>(msg: &T) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let env = EnvelopeOut { v: VERSION, msg };
    let bad = |e: serde_json::Error| Error::Other(format!("cannot encode an agent message: {e}"));
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, &env).map_err(bad)?;
    let Some(len) = u32::try_from(counter.0).ok().filter(|l| *l <= MAX_FRAME) else {
        return Ok(None);
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(4 + counter.0));
    buf.extend_from_slice(&len.to_be_bytes());
    serde_json::to_writer(&mut *buf, &env).map_err(bad)?;
    Ok(Some(buf))
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<()> {
    let buf = encode(msg)?
        .ok_or_else(|| Error::Other("agent message over the protocol's size limit".into()))?;
    w.write_all(&buf)
        .and_then(|()| w.flush())
        .map_err(|e| Error::Other(format!("cannot talk to the agent: {e}")))
}

/// How reading a frame failed.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed or the socket failed.
    Io(std::io::Error),
    /// The length prefix is over [`MAX_FRAME`].
    TooLarge(u32),
    /// The peer speaks another protocol version.
    Version(u32),
    /// The body is not a valid message.
    Malformed(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "connection failed: {e}"),
            FrameError::TooLarge(n) => {
                write!(f, "message of {n} bytes is over the {MAX_FRAME}-byte limit")
            }
            FrameError::Version(v) => write!(
                f,
                "protocol version {v} is not {VERSION} (another jeton build): restart the agent with `jeton agent stop` then `jeton unlock`"
            ),
            FrameError::Malformed(m) => write!(f, "malformed message: {m}"),
        }
    }
}

/// Reads one frame, refusing an over-long length before allocating for it.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(FrameError::Io)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    // Exactly the announced length (bounded by MAX_FRAME, from a peer of our own uid): a buffer
    // that grew while reading would leave its earlier copies to the allocator unwiped.
    let mut body = Zeroizing::new(Vec::with_capacity(len as usize));
    r.take(u64::from(len))
        .read_to_end(&mut body)
        .map_err(FrameError::Io)?;
    if body.len() != len as usize {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    let v: VersionOnly =
        serde_json::from_slice(&body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if v.v != VERSION {
        return Err(FrameError::Version(v.v));
    }
    let env: EnvelopeIn<T> =
        serde_json::from_slice(&body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(env.msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_bad_input() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToAgent::Lock).unwrap();
        let got: ToAgent = read_frame(&mut &buf[..]).unwrap();
        assert!(matches!(got, ToAgent::Lock));

        let huge = u32::MAX.to_be_bytes();
        assert!(matches!(
            read_frame::<ToAgent>(&mut &huge[..]),
            Err(FrameError::TooLarge(_))
        ));
        let mut other = Vec::new();
        let body = br#"{"v":2,"msg":"Lock"}"#;
        other.extend_from_slice(&(body.len() as u32).to_be_bytes());
        other.extend_from_slice(body);
        assert!(matches!(
            read_frame::<ToAgent>(&mut &other[..]),
            Err(FrameError::Version(2))
        ));
        let mut unknown = Vec::new();
        let body = br#"{"v":1,"msg":"Explode"}"#;
        unknown.extend_from_slice(&(body.len() as u32).to_be_bytes());
        unknown.extend_from_slice(body);
        assert!(matches!(
            read_frame::<ToAgent>(&mut &unknown[..]),
            Err(FrameError::Malformed(_))
        ));
        let short = [0, 0, 0, 9, b'{'];
        assert!(matches!(
            read_frame::<ToAgent>(&mut &short[..]),
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn errors_keep_their_exit_code() {
        for e in [
            Error::Usage("u".into()),
            Error::Unlock("l".into()),
            Error::NotFound("n".into()),
            Error::Unavailable("d".into()),
            Error::Integrity("i".into()),
            Error::Busy("b".into()),
            Error::Exists("e".into()),
            Error::Other("o".into()),
        ] {
            let back: Error = WireError::from(&e).into();
            assert_eq!(back.exit_code(), e.exit_code());
            assert_eq!(back.to_string(), e.to_string());
        }
    }
}
