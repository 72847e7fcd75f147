//! The agent process: accepts one exchange per connection, checks the peer's uid, and runs
//! requests on the vaults it holds keys for.
//!
//! Keys live in boxes whose pages are mlocked and are wiped on drop (`Key` is `Zeroizing`).
//! The decrypted vault is cached and reused while the file on disk is unchanged (same inode,
//! size, mtime and ctime; every save is a rename, so any writer changes them). A changed file
//! is re-read and opened with the cached key; if the key no longer opens it (`passwd` re-keyed
//! it) the agent drops the key and answers "locked", so it never writes with a stale key.

use super::protocol::{self, FrameError, FromAgent, Held, SessionSpec, Status, ToAgent, WireError};
use super::{SOCKET_FILE, boottime, prepare_dir, uid};
use crate::request::{Outcome, Request, Response, Session, execute};
use crate::secret::{Key, Passphrase};
use crate::store::Store;
use crate::vault::Vault;
use crate::{Error, Result};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often timers and the socket are checked.
const TICK: Duration = Duration::from_millis(250);

/// File identity used to notice that another process replaced the vault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

struct Cached {
    vault: Box<Vault>,
    stamp: Stamp,
}

struct Unlocked {
    key: Box<Key>,
    memory_locked: bool,
    cache: Option<Cached>,
    idle: Duration,
    max: Duration,
    unlocked_at: Duration,
    last_used: Duration,
}

impl Unlocked {
    fn expired(&self, now: Duration) -> bool {
        now.saturating_sub(self.last_used) >= self.idle
            || now.saturating_sub(self.unlocked_at) >= self.max
    }
}

#[derive(Default)]
struct State {
    vaults: HashMap<PathBuf, Unlocked>,
}

impl State {
    fn expire(&mut self) {
        let now = boottime();
        self.vaults.retain(|_, u| !u.expired(now));
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs the agent in the foreground until `stop`, or until its socket is removed or replaced.
/// Fails with [`Error::Exists`] when another agent already serves `dir`.
pub fn serve(dir: &Path) -> Result<()> {
    prepare_dir(dir)?;
    let lock_path = dir.join("agent.lock");
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(|e| Error::io("cannot open", &lock_path, e))?;
    match lock_file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Exists(format!(
                "an agent is already running for {}",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::io("cannot lock", &lock_path, e));
        }
    }
    let sock = dir.join(SOCKET_FILE);
    match std::fs::remove_file(&sock) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot remove the stale socket", &sock, e)),
    }
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(&sock);
    rustix::process::umask(old);
    let listener = bound.map_err(|e| Error::io("cannot listen on", &sock, e))?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("cannot chmod", &sock, e))?;
    let ino = std::fs::symlink_metadata(&sock)
        .map_err(|e| Error::io("cannot inspect", &sock, e))?
        .ino();

    let state = Arc::new(Mutex::new(State::default()));
    {
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(TICK);
                lock(&state).expire();
                let ours = std::fs::symlink_metadata(&sock).is_ok_and(|m| m.ino() == ino);
                if !ours {
                    shutdown(&state);
                }
            }
        });
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        accept(conn, &state);
    }
    drop(lock_file);
    Ok(())
}

/// Wipes every key and exits.
fn shutdown(state: &Mutex<State>) -> ! {
    lock(state).vaults.clear();
    std::process::exit(0)
}

/// Serves one connection. A request that is already here whole and quick to answer (a read
/// on a vault, `Status`, `Lock`) is answered on this thread when the agent's state is free:
/// handing it to a new thread costs more than answering it (docs/PERFORMANCE.md). Anything that
/// could make others wait (a client still sending, an unlock running the KDF, a write, a
/// request that would wait for the state, a refusal that drains what the client sends, the part
/// of an answer the client is slow to read) and `Stop` get a thread of their own.
fn accept(conn: UnixStream, state: &Arc<Mutex<State>>) {
    if let Err((code, message)) = check_peer(&conn) {
        return on_thread(move || refuse(conn, code, message));
    }
    let msg = match queued_request(&conn) {
        None => {
            let state = Arc::clone(state);
            return on_thread(move || handle(conn, &state));
        }
        Some(Err(e)) => return on_thread(move || refuse_frame(conn, e)),
        Some(Ok(msg)) => msg,
    };
    // An unlock runs the KDF, a write may wait for the writer lock and fsyncs, and `Stop` exits
    // once it has answered.
    let quick = match msg {
        ToAgent::Status => Locked::Status,
        ToAgent::Lock => Locked::Lock,
        ToAgent::Run { session, request } if !request.writes() => Locked::Run(session, request),
        msg => {
            let state = Arc::clone(state);
            return on_thread(move || answer(conn, msg, &state));
        }
    };
    let mut st = match state.try_lock() {
        Ok(st) => st,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        // Another request holds the state, perhaps for as long as a write waits for the vault.
        Err(TryLockError::WouldBlock) => {
            let state = Arc::clone(state);
            return on_thread(move || {
                let reply = quick.answer(&mut lock(&state));
                reply_on_this_thread(conn, &reply);
            });
        }
    };
    // A bug that panics here must cost this connection only, as it would on a thread of its own,
    // not the thread that accepts every connection.
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let reply = quick.answer(&mut st);
        drop(st);
        protocol::encode(&reply)
    }));
    if let Ok(Ok(frame)) = answered {
        send_or_hand_off(conn, frame);
    }
}

/// Runs `f` on a thread of its own. When no thread can be started, `f` is dropped, and with it
/// the connection it owns: that client gets an error, the agent goes on.
fn on_thread(f: impl FnOnce() + Send + 'static) {
    let _ = std::thread::Builder::new().spawn(f);
}

/// How long [`accept`] waits for the first bytes of a request before leaving the connection to
/// a thread of its own. A client sends its request as soon as it has connected.
const PROMPT: Duration = Duration::from_millis(10);
/// The largest request [`accept`] reads itself.
const QUICK_FRAME: u32 = 64 << 10;

/// The request on `conn` if the client has sent all of it (so reading it cannot block), after
/// waiting up to [`PROMPT`] for it to start arriving; `None` when it is not all there yet.
fn queued_request(conn: &UnixStream) -> Option<Result<ToAgent, FrameError>> {
    conn.set_read_timeout(Some(PROMPT)).ok()?;
    let mut len = [0u8; 4];
    let (peeked, _) = rustix::net::recv(conn, &mut len, rustix::net::RecvFlags::PEEK).ok()?;
    if peeked < len.len() {
        return None;
    }
    let len = u32::from_be_bytes(len);
    let queued = rustix::io::ioctl_fionread(conn).ok()?;
    if len > QUICK_FRAME || queued < 4 + u64::from(len) {
        return None;
    }
    Some(protocol::read_frame(&mut &*conn))
}

/// Writes what fits in the socket's buffer now; a thread writes the rest as the client reads it.
fn send_or_hand_off(conn: UnixStream, frame: Zeroizing<Vec<u8>>) {
    let mut sent = 0;
    if conn.set_nonblocking(true).is_ok() {
        while sent < frame.len() {
            match (&conn).write(&frame[sent..]) {
                Ok(0) => return,
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return,
            }
        }
        if sent == frame.len() {
            return;
        }
    }
    on_thread(move || {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
        let _ = (&conn).write_all(&frame[sent..]);
    });
}

/// Serves a connection on its own thread, from reading the request on.
fn handle(mut conn: UnixStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    match protocol::read_frame(&mut conn) {
        Ok(msg) => answer(conn, msg, state),
        Err(e) => refuse_frame(conn, e),
    }
}

/// Runs a request and writes the answer, on the connection's own thread.
fn answer(conn: UnixStream, msg: ToAgent, state: &Mutex<State>) {
    let stop = matches!(msg, ToAgent::Stop);
    let reply = dispatch(msg, state);
    reply_on_this_thread(conn, &reply);
    if stop {
        shutdown(state);
    }
}

/// Writes an answer, waiting for as long as the client takes to read it (up to the timeout).
fn reply_on_this_thread(mut conn: UnixStream, reply: &FromAgent) {
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = protocol::write_frame(&mut conn, reply);
}

/// The uid check: only processes of the agent's own user are served.
fn check_peer(conn: &UnixStream) -> Result<(), (i32, String)> {
    match rustix::net::sockopt::socket_peercred(conn) {
        Ok(cred) if cred.uid.as_raw() == uid() => Ok(()),
        Ok(cred) => Err((
            3,
            format!(
                "the agent refuses uid {}: it serves uid {} only",
                cred.uid.as_raw(),
                uid()
            ),
        )),
        Err(e) => Err((1, format!("cannot check the peer: {e}"))),
    }
}

/// Refuses a frame that could not be read, unless the client is gone.
fn refuse_frame(conn: UnixStream, e: FrameError) {
    match e {
        FrameError::Io(_) => {}
        e => refuse(conn, 2, format!("agent: {e}")),
    }
}

/// Answers with an error, then reads (a bounded amount of) what the client still sends before
/// closing, so the answer is not lost to a connection reset.
fn refuse(mut conn: UnixStream, code: i32, message: String) {
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = protocol::write_frame(&mut conn, &FromAgent::Failed(WireError { code, message }));
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = std::io::copy(
        &mut std::io::Read::take(&mut conn, 1 << 20),
        &mut std::io::sink(),
    );
}

fn status(state: &mut State) -> Status {
    state.expire();
    let now = boottime();
    let mut unlocked: Vec<Held> = state
        .vaults
        .iter()
        .map(|(p, u)| Held {
            vault: p.clone(),
            idle_left_secs: u
                .idle
                .saturating_sub(now.saturating_sub(u.last_used))
                .as_secs(),
            max_left_secs: u
                .max
                .saturating_sub(now.saturating_sub(u.unlocked_at))
                .as_secs(),
            memory_locked: u.memory_locked,
        })
        .collect();
    unlocked.sort_by(|a, b| a.vault.cmp(&b.vault));
    Status {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        unlocked,
    }
}

fn dispatch(msg: ToAgent, state: &Mutex<State>) -> FromAgent {
    match msg {
        ToAgent::Status => Locked::Status.answer(&mut lock(state)),
        ToAgent::Unlock {
            vault,
            passphrase,
            idle_secs,
            max_secs,
        } => match unlock(&vault, &passphrase) {
            Ok((path, key, cache)) => {
                drop(passphrase);
                let now = boottime();
                let memory_locked = crate::harden::lock_in_memory(&*key).is_ok()
                    & crate::harden::lock_in_memory(&*cache.vault).is_ok();
                let mut st = lock(state);
                st.vaults.insert(
                    path,
                    Unlocked {
                        key,
                        memory_locked,
                        cache: Some(cache),
                        idle: Duration::from_secs(idle_secs.max(1)),
                        max: Duration::from_secs(max_secs.max(1)),
                        unlocked_at: now,
                        last_used: now,
                    },
                );
                FromAgent::Status(status(&mut st))
            }
            Err(e) => FromAgent::Failed(WireError::from(&e)),
        },
        ToAgent::Lock => Locked::Lock.answer(&mut lock(state)),
        ToAgent::Stop => FromAgent::Done,
        ToAgent::Run { session, request } => Locked::Run(session, request).answer(&mut lock(state)),
    }
}

/// The requests answered with the agent's state locked from start to end.
enum Locked {
    Status,
    Lock,
    Run(SessionSpec, Request),
}

impl Locked {
    fn answer(self, st: &mut State) -> FromAgent {
        match self {
            Locked::Status => FromAgent::Status(status(st)),
            Locked::Lock => {
                st.vaults.clear();
                FromAgent::Done
            }
            Locked::Run(session, request) => {
                st.expire();
                run(st, session, request)
            }
        }
    }
}

fn unlock(vault: &Path, passphrase: &Passphrase) -> Result<(PathBuf, Box<Key>, Cached)> {
    let store = Store::new(vault.to_path_buf(), crate::store::DEFAULT_LOCK_TIMEOUT);
    let stamp = Stamp::of(vault);
    let file = store.read()?;
    let key = Box::new(Vault::unlock(&file, passphrase)?);
    let opened = Box::new(Vault::open_owned(file, (*key).clone())?);
    let path = std::fs::canonicalize(vault).map_err(|e| Error::io("cannot resolve", vault, e))?;
    let stamp = stamp.ok_or_else(|| Error::NotFound(format!("{} vanished", vault.display())))?;
    Ok((
        path,
        key,
        Cached {
            vault: opened,
            stamp,
        },
    ))
}

fn run(state: &mut State, spec: SessionSpec, request: Request) -> FromAgent {
    let held = std::fs::canonicalize(&spec.vault)
        .ok()
        .and_then(|p| state.vaults.get_mut(&p).map(|u| (p, u)));
    let Some((path, u)) = held else {
        return FromAgent::Locked { dropped: None };
    };
    u.last_used = boottime();
    let session = Session {
        store: Store::new(spec.vault, Duration::from_millis(spec.lock_timeout_ms)),
        state_dir: spec.state_dir,
        accept_rollback: spec.accept_rollback,
    };
    match run_unlocked(u, &session, request) {
        Ok(Ok(outcome)) => FromAgent::Ran(outcome),
        Ok(Err(e)) => FromAgent::Failed(WireError::from(&e)),
        Err(Stale) => {
            state.vaults.remove(&path);
            FromAgent::Locked {
                dropped: Some("the agent's key no longer opens this vault (its passphrase was changed), so it dropped the key; run `jeton unlock` again".into()),
            }
        }
    }
}

/// The cached key no longer opens the vault file.
struct Stale;

fn run_unlocked(
    u: &mut Unlocked,
    session: &Session,
    request: Request,
) -> Result<Result<Outcome<Response>>, Stale> {
    let writes = request.writes();
    let guard = match session.lock_for(writes) {
        Ok(g) => g,
        Err(e) => return Ok(Err(e)),
    };
    let path = session.store.path();
    let stamp = Stamp::of(path);
    if stamp.is_none() || u.cache.as_ref().map(|c| c.stamp) != stamp {
        u.cache = None;
        let file = match session.store.read() {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let vault = match Vault::open_owned(file, (*u.key).clone()) {
            Ok(v) => Box::new(v),
            Err(Error::Unlock(_)) => return Err(Stale),
            Err(e) => return Ok(Err(e)),
        };
        u.memory_locked &= crate::harden::lock_in_memory(&*vault).is_ok();
        u.cache = stamp.map(|stamp| Cached { vault, stamp });
    }
    let Some(cache) = u.cache.as_mut() else {
        return Ok(Err(Error::NotFound(format!("{} vanished", path.display()))));
    };
    let result = session.transact(guard.as_ref(), &mut cache.vault, |v| {
        execute(v, request, crate::time::now())
    });
    // After our own save (under the writer lock) the file is the cached vault; after a read the
    // stamp stays the one the cache was loaded with, so a concurrent writer is noticed next time.
    match (&result, writes.then(|| Stamp::of(path))) {
        (Ok(_), None) if !cache.vault.is_dirty() => {}
        (Ok(_), Some(Some(now))) if !cache.vault.is_dirty() => cache.stamp = now,
        _ => u.cache = None,
    }
    drop(guard);
    Ok(result)
}
