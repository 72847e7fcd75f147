//! The agent process: accepts one exchange per connection, checks the peer's uid, and runs
//! requests on the vaults it holds keys for.
//!
//! Keys live in boxes whose pages are mlocked and are wiped on drop (`Key` is `Zeroizing`).
//! The decrypted vault is cached and reused while the file on disk is unchanged (same inode,
//! size, mtime and ctime; every save is a rename, so any writer changes them). A changed file
//! is re-read and opened with the cached key; if the key no longer opens it (`passwd` re-keyed
//! it) the agent drops the key and answers "locked", so it never writes with a stale key.
//!
//! The agent's state (which vaults are unlocked, and their timers) is only ever held for a map
//! lookup or update, never while a request runs: `lock`, `status`, `stop` and the expiry timer
//! always get it at once. A request runs holding its own vault's slot, and when the key is
//! dropped meanwhile (lock, expiry, stop) it saves nothing and answers "locked".

use super::protocol::{self, FrameError, FromAgent, Held, SessionSpec, Status, ToAgent, WireError};
use super::{SOCKET_FILE, boottime, prepare_dir, uid};
use crate::request::{Outcome, Request, Response, Session, execute};
use crate::secret::{Key, Passphrase};
use crate::store::Store;
use crate::team::author::Signer;
use crate::team::{Role, TeamRequest, TeamResponse};
use crate::vault::Vault;
use crate::{Error, Result};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// For a personal vault: each team's key and our role there, as read from this vault at
    /// the generation noted (a later save may have changed them).
    teams: HashMap<String, (u64, Key, Role)>,
}

/// A team vault opened in the agent: the key it was opened with, and the decrypted copy.
#[derive(Default)]
struct TeamCache {
    key: Option<Box<Key>>,
    cached: Option<Cached>,
}

/// One unlocked vault: its key, and the decrypted copy a request works on.
struct Slot {
    key: Box<Key>,
    /// Held while a request runs on this vault; never while the agent's state is held.
    cache: Mutex<Option<Cached>>,
    /// The team vaults of this personal vault that requests used, by team name. Held while a
    /// request runs on one of them, never together with `cache`.
    teams: Mutex<HashMap<String, TeamCache>>,
    /// The names of the teams in `teams`, for `status` (which must not wait for a request).
    team_names: Mutex<std::collections::BTreeSet<String>>,
    memory_locked: AtomicBool,
    /// Cleared when the key is dropped from the agent's state (lock, expiry, stop, re-keyed
    /// vault): a request still running with it then saves nothing.
    live: AtomicBool,
}

struct Unlocked {
    slot: Arc<Slot>,
    idle: Duration,
    max: Duration,
    unlocked_at: Duration,
    last_used: Duration,
}

impl Unlocked {
    fn deadline(&self) -> Duration {
        (self.last_used + self.idle).min(self.unlocked_at + self.max)
    }

    fn expired(&self, now: Duration) -> bool {
        now >= self.deadline()
    }
}

impl Drop for Unlocked {
    fn drop(&mut self) {
        self.slot.live.store(false, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct State {
    vaults: HashMap<PathBuf, Unlocked>,
    /// How many times `lock` dropped every key: an unlock that began before the last one must
    /// not put its key back afterwards.
    locks: u64,
}

impl State {
    /// Drops every key (`lock`), returning them to be wiped once the state is released.
    fn lock_all(&mut self) -> HashMap<PathBuf, Unlocked> {
        self.locks += 1;
        std::mem::take(&mut self.vaults)
    }

    /// Holds `unlocked` for `path` unless `lock` ran since `locks` was read (the unlock began
    /// before it): then `unlocked` comes back, refused. Returns what it replaced otherwise.
    fn hold(
        &mut self,
        locks: u64,
        path: PathBuf,
        unlocked: Unlocked,
    ) -> std::result::Result<Option<Unlocked>, Unlocked> {
        if self.locks != locks {
            return Err(unlocked);
        }
        Ok(self.vaults.insert(path, unlocked))
    }

    fn expire(&mut self) {
        let now = boottime();
        self.vaults.retain(|_, u| !u.expired(now));
    }

    /// The slot for `vault` if its key is held, marked as used now.
    fn use_slot(&mut self, vault: &Path) -> Option<Arc<Slot>> {
        self.expire();
        let u = self.vaults.get_mut(vault)?;
        u.last_used = boottime();
        Some(Arc::clone(&u.slot))
    }

    /// Drops `vault`'s key if it is still the one in `slot`.
    fn drop_slot(&mut self, vault: &Path, slot: &Arc<Slot>) {
        if self
            .vaults
            .get(vault)
            .is_some_and(|u| Arc::ptr_eq(&u.slot, slot))
        {
            self.vaults.remove(vault);
        }
    }

    /// When the next key expires.
    fn next_deadline(&self) -> Option<Duration> {
        self.vaults.values().map(Unlocked::deadline).min()
    }
}

/// What every connection's thread shares.
struct Agent {
    state: Mutex<State>,
    /// The socket this agent listens on, and its inode (a replaced socket is not ours).
    socket: PathBuf,
    ino: u64,
    /// Requests running (`Run`, `Unlock`), so `Stop` can let them finish.
    busy: AtomicUsize,
    /// Set by `Stop`: the socket it removes is gone on purpose.
    stopping: AtomicBool,
}

impl Agent {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn ours(&self) -> bool {
        std::fs::symlink_metadata(&self.socket).is_ok_and(|m| m.ino() == self.ino)
    }
}

/// Counts a running request for as long as it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicUsize) -> Busy<'a> {
        n.fetch_add(1, Ordering::SeqCst);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `try_lock` that takes over a poisoned lock (a request that panicked costs only itself).
fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
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

    let agent = Arc::new(Agent {
        state: Mutex::new(State::default()),
        socket: sock,
        ino,
        busy: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
    });
    {
        let agent = Arc::clone(&agent);
        std::thread::spawn(move || {
            loop {
                let next = agent.state().next_deadline();
                let now = boottime();
                let nap = next.map_or(TICK, |d| d.saturating_sub(now).min(TICK));
                std::thread::sleep(nap.max(Duration::from_millis(1)));
                agent.state().expire();
                if !agent.ours() && !agent.stopping.load(Ordering::SeqCst) {
                    shutdown(&agent);
                }
            }
        });
    }
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        accept(conn, &agent);
    }
    drop(lock_file);
    Ok(())
}

/// Wipes every key and exits.
fn shutdown(agent: &Agent) -> ! {
    agent.state().vaults.clear();
    std::process::exit(0)
}

/// How long `Stop` lets running requests finish before it exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// `Stop`: no new client finds the socket, every key is dropped, running requests get up to
/// [`STOP_GRACE`] to finish (one that was to save with a dropped key answers "locked" instead),
/// then the answer, then the exit. The connection stays open until the process is gone, so the
/// client's end of file means the agent has exited.
fn stop(mut conn: UnixStream, agent: &Agent) -> ! {
    agent.stopping.store(true, Ordering::SeqCst);
    if agent.ours() {
        let _ = std::fs::remove_file(&agent.socket);
    }
    agent.state().vaults.clear();
    let started = std::time::Instant::now();
    while agent.busy.load(Ordering::SeqCst) > 0 && started.elapsed() < STOP_GRACE {
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = protocol::write_frame(&mut conn, &FromAgent::Done);
    std::process::exit(0)
}

/// Serves one connection. A request that is already here whole and quick to answer (a read
/// on a vault whose cached copy is current, `Status`, `Lock`) is answered on this thread when
/// nothing it needs is taken: handing it to a new thread costs more than answering it
/// (CHANGELOG.md, 2026-11-29). Anything that could make others wait (a client still sending, an
/// unlock running the KDF, a write, a read that must re-read the vault, a request that would
/// wait for its vault, a refusal that drains what the client sends, the part of an answer the
/// client is slow to read) and `Stop` get a thread of their own.
fn accept(conn: UnixStream, agent: &Arc<Agent>) {
    if let Err((code, message)) = check_peer(&conn) {
        return on_thread(move || refuse(conn, code, message));
    }
    let msg = match queued_request(&conn) {
        None => {
            let agent = Arc::clone(agent);
            return on_thread(move || handle(conn, &agent));
        }
        Some(Err(e)) => return on_thread(move || refuse_frame(conn, e)),
        Some(Ok(msg)) => msg,
    };
    // A bug that panics here must cost this connection only, as it would on a thread of its own,
    // not the thread that accepts every connection.
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| quick(msg, agent)));
    match answered {
        Ok(Ok(reply)) => {
            if let Ok(Some(frame)) = protocol::encode(&reply) {
                send_or_hand_off(conn, frame);
            }
        }
        Ok(Err(msg)) => {
            let agent = Arc::clone(agent);
            on_thread(move || answer(conn, *msg, &agent));
        }
        Err(_) => {}
    }
}

/// Answers `msg` if that is quick and takes nothing another request holds; gives it back
/// otherwise.
fn quick(msg: ToAgent, agent: &Agent) -> std::result::Result<FromAgent, Box<ToAgent>> {
    match msg {
        ToAgent::Status => match try_lock(&agent.state) {
            Some(mut st) => Ok(FromAgent::Status(status(&mut st))),
            None => Err(Box::new(ToAgent::Status)),
        },
        ToAgent::Lock => match try_lock(&agent.state) {
            Some(mut st) => {
                let gone = st.lock_all();
                drop(st);
                drop(gone);
                Ok(FromAgent::Done)
            }
            None => Err(Box::new(ToAgent::Lock)),
        },
        ToAgent::Run { session, request } if !request.writes() => {
            let Some(path) = canonical(&session.vault) else {
                return Ok(FromAgent::Locked { dropped: None });
            };
            let slot = match try_lock(&agent.state) {
                Some(mut st) => st.use_slot(&path),
                None => return Err(Box::new(ToAgent::Run { session, request })),
            };
            let Some(slot) = slot else {
                return Ok(FromAgent::Locked { dropped: None });
            };
            let Some(mut cache) = try_lock(&slot.cache) else {
                return Err(Box::new(ToAgent::Run { session, request }));
            };
            let current = cache
                .as_ref()
                .is_some_and(|c| Some(c.stamp) == Stamp::of(&session.vault));
            if !current {
                return Err(Box::new(ToAgent::Run { session, request }));
            }
            let _busy = Busy::new(&agent.busy);
            Ok(run_on(agent, &path, &slot, &mut cache, session, request))
        }
        ToAgent::RunTeam {
            session,
            team,
            request,
        } if !request.writes() => {
            let back = |session, team, request| {
                Err(Box::new(ToAgent::RunTeam {
                    session,
                    team,
                    request,
                }))
            };
            let Some(path) = canonical(&session.vault) else {
                return Ok(FromAgent::Locked { dropped: None });
            };
            let slot = match try_lock(&agent.state) {
                Some(mut st) => st.use_slot(&path),
                None => return back(session, team, request),
            };
            let Some(slot) = slot else {
                return Ok(FromAgent::Locked { dropped: None });
            };
            let Some(mut cache) = try_lock(&slot.cache) else {
                return back(session, team, request);
            };
            let current = cache
                .as_ref()
                .is_some_and(|c| Some(c.stamp) == Stamp::of(&session.vault));
            if !current {
                return back(session, team, request);
            }
            let _busy = Busy::new(&agent.busy);
            let opened = open_team(agent, &path, &slot, &mut cache, &session, &team);
            drop(cache);
            let (key, role) = match opened {
                Ok(opened) => opened,
                Err(reply) => return Ok(*reply),
            };
            let Some(mut teams) = try_lock(&slot.teams) else {
                return back(session, team, request);
            };
            let file = crate::team::local_path(&session.vault, &team);
            let current = teams.get(&team).is_some_and(|t| {
                t.key.as_ref().map(|k| k.expose_secret()) == Some(key.expose_secret())
                    && t.cached.as_ref().map(|c| c.stamp) == Stamp::of(&file)
            });
            if !current {
                return back(session, team, request);
            }
            Ok(run_in_team(
                &slot,
                &mut teams,
                session,
                team,
                (key, role, None),
                request,
            ))
        }
        msg => Err(Box::new(msg)),
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
fn handle(mut conn: UnixStream, agent: &Agent) {
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    match protocol::read_frame(&mut conn) {
        Ok(msg) => answer(conn, msg, agent),
        Err(e) => refuse_frame(conn, e),
    }
}

/// Runs a request and writes the answer, on the connection's own thread.
fn answer(conn: UnixStream, msg: ToAgent, agent: &Agent) {
    if matches!(msg, ToAgent::Stop) {
        stop(conn, agent);
    }
    let _busy = Busy::new(&agent.busy);
    let reply = dispatch(msg, agent);
    reply_on_this_thread(conn, &reply);
}

/// Writes an answer, waiting for as long as the client takes to read it (up to the timeout).
fn reply_on_this_thread(mut conn: UnixStream, reply: &FromAgent) {
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = protocol::write_frame(&mut conn, reply);
}

/// The uid check: only processes of the agent's own user are served.
fn check_peer(conn: &UnixStream) -> Result<(), (i32, String)> {
    match crate::os::peer_uid(conn) {
        Ok(peer) if peer == uid() => Ok(()),
        Ok(peer) => Err((
            3,
            format!("the agent refuses uid {peer}: it serves uid {} only", uid()),
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
            memory_locked: u.slot.memory_locked.load(Ordering::SeqCst),
            teams: lock(&u.slot.team_names).iter().cloned().collect(),
        })
        .collect();
    unlocked.sort_by(|a, b| a.vault.cmp(&b.vault));
    Status {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").into(),
        unlocked,
    }
}

fn dispatch(msg: ToAgent, agent: &Agent) -> FromAgent {
    match msg {
        ToAgent::Status => FromAgent::Status(status(&mut agent.state())),
        ToAgent::Unlock {
            vault,
            passphrase,
            idle_secs,
            max_secs,
        } => {
            let locks = agent.state().locks;
            match unlock(&vault, &passphrase) {
                Ok((path, key, cache)) => {
                    drop(passphrase);
                    let now = boottime();
                    let memory_locked = crate::harden::lock_in_memory(&*key).is_ok()
                        & crate::harden::lock_in_memory(&*cache.vault).is_ok();
                    let slot = Arc::new(Slot {
                        key,
                        cache: Mutex::new(Some(cache)),
                        teams: Mutex::default(),
                        team_names: Mutex::default(),
                        memory_locked: AtomicBool::new(memory_locked),
                        live: AtomicBool::new(true),
                    });
                    let unlocked = Unlocked {
                        slot,
                        idle: Duration::from_secs(idle_secs.max(1)),
                        max: Duration::from_secs(max_secs.max(1)),
                        unlocked_at: now,
                        last_used: now,
                    };
                    let mut st = agent.state();
                    let held = st.hold(locks, path, unlocked);
                    let answer = match held {
                        Ok(_) => FromAgent::Status(status(&mut st)),
                        Err(_) => FromAgent::Failed(WireError::from(&Error::Unlock(
                            "`jeton lock` ran while this unlock was in progress, so the key was not kept; run `jeton unlock` again"
                                .into(),
                        ))),
                    };
                    // Whatever was replaced or refused is wiped after the state is released.
                    drop(st);
                    drop(held);
                    answer
                }
                Err(e) => FromAgent::Failed(WireError::from(&e)),
            }
        }
        ToAgent::Lock => {
            // Wiped after the state is released: a large cached vault takes a while.
            let gone = agent.state().lock_all();
            drop(gone);
            FromAgent::Done
        }
        ToAgent::Stop => FromAgent::Done,
        ToAgent::Run { session, request } => {
            let Some(path) = canonical(&session.vault) else {
                return FromAgent::Locked { dropped: None };
            };
            let Some(slot) = agent.state().use_slot(&path) else {
                return FromAgent::Locked { dropped: None };
            };
            let mut cache = lock(&slot.cache);
            run_on(agent, &path, &slot, &mut cache, session, request)
        }
        ToAgent::RunTeam {
            session,
            team,
            request,
        } => {
            let Some(path) = canonical(&session.vault) else {
                return FromAgent::Locked { dropped: None };
            };
            let Some(slot) = agent.state().use_slot(&path) else {
                return FromAgent::Locked { dropped: None };
            };
            let mut cache = lock(&slot.cache);
            let opened = open_team(agent, &path, &slot, &mut cache, &session, &team);
            // A write signs what it logs with this member's identity, which stays here.
            let signer = match (&opened, cache.as_ref()) {
                (Ok(_), Some(c)) if request.writes() => match team_signer(&c.vault, &team) {
                    Ok(s) => Some(s),
                    Err(e) => return FromAgent::Failed(WireError::from(&e)),
                },
                _ => None,
            };
            drop(cache);
            match opened {
                Ok((key, role)) => run_in_team(
                    &slot,
                    &mut lock(&slot.teams),
                    session,
                    team,
                    (key, role, signer),
                    request,
                ),
                Err(reply) => *reply,
            }
        }
    }
}

/// Team `team`'s key and our role there, from the personal vault held in `slot` (whose
/// cache is `cache`); the answer to give otherwise.
fn open_team(
    agent: &Agent,
    path: &Path,
    slot: &Arc<Slot>,
    cache: &mut Option<Cached>,
    spec: &SessionSpec,
    team: &str,
) -> std::result::Result<(Key, Role), Box<FromAgent>> {
    let remembered = cache.as_ref().and_then(|c| {
        let (generation, key, role) = c.teams.get(team)?;
        let current = Some(c.stamp) == Stamp::of(&spec.vault);
        (current && *generation == c.vault.generation()).then(|| (key.clone(), *role))
    });
    if let Some(opened) = remembered {
        return Ok(opened);
    }
    let open = Request::Team(TeamRequest::Open {
        team: team.to_owned(),
    });
    let (key, role) = match run_on(agent, path, slot, cache, spec.clone(), open) {
        FromAgent::Ran(outcome) => match outcome.value {
            Response::Team(t) => match *t {
                TeamResponse::Opened { key, role, .. } => (key, role),
                _ => return Err(Box::new(unexpected())),
            },
            _ => return Err(Box::new(unexpected())),
        },
        other => return Err(Box::new(other)),
    };
    if let Some(c) = cache.as_mut() {
        let generation = c.vault.generation();
        c.teams
            .insert(team.to_owned(), (generation, key.clone(), role));
    }
    Ok((key, role))
}

/// The signer of team `team`'s log lines: this member's identity, from the personal vault.
fn team_signer(personal: &Vault, team: &str) -> Result<Signer> {
    Ok(Signer {
        team: crate::team::membership(personal, team)?.team,
        key: crate::share::identity::keys(personal)?.signing,
    })
}

fn unexpected() -> FromAgent {
    FromAgent::Failed(WireError::from(&Error::Other(
        "internal error: unexpected answer to opening a team".into(),
    )))
}

/// Runs a request on team `team`'s local copy, opened with the team's key (kept with the
/// decrypted copy in `teams`; a different key drops the copy).
fn run_in_team(
    slot: &Slot,
    teams: &mut HashMap<String, TeamCache>,
    spec: SessionSpec,
    team: String,
    (key, role, signer): (Key, Role, Option<Signer>),
    request: Request,
) -> FromAgent {
    if let Err(e) = crate::team::check_access(&team, role, request.writes()) {
        return FromAgent::Failed(WireError::from(&e));
    }
    // Every line a write logs is signed; without the identity, the client runs it itself.
    if request.writes() && signer.is_none() {
        return FromAgent::Locked { dropped: None };
    }
    let file = crate::team::local_path(&spec.vault, &team);
    if !file.exists() {
        return FromAgent::Failed(WireError::from(&crate::team::no_local_copy(&team)));
    }
    let session = Session {
        store: Store::new(file, Duration::from_millis(spec.lock_timeout_ms)),
        state_dir: spec.state_dir,
        accept_rollback: spec.accept_rollback,
    };
    lock(&slot.team_names).insert(team.clone());
    let TeamCache { key: held, cached } = teams.entry(team).or_default();
    if held.as_ref().map(|k| k.expose_secret()) != Some(key.expose_secret()) {
        let boxed = Box::new(key);
        if crate::harden::lock_in_memory(&*boxed).is_err() {
            slot.memory_locked.store(false, Ordering::SeqCst);
        }
        *held = Some(boxed);
        *cached = None;
    }
    let Some(key) = held.as_deref() else {
        return unexpected();
    };
    match run_unlocked(key, slot, cached, &session, request, signer.as_ref()) {
        Ok(Ok(outcome)) => FromAgent::Ran(outcome),
        Ok(Err(e)) => FromAgent::Failed(WireError::from(&e)),
        // The client opens it itself and says why.
        Err(NoKey::Stale) => {
            *cached = None;
            FromAgent::Locked { dropped: None }
        }
        Err(NoKey::Dropped) => FromAgent::Locked {
            dropped: Some(DROPPED.into()),
        },
    }
}

/// The key under which a vault is held: its canonical path (outside the state: it walks the
/// file system).
fn canonical(vault: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(vault).ok()
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
            teams: HashMap::new(),
        },
    ))
}

/// Runs a request on a held vault, with its slot's cache taken (and not the agent's state).
fn run_on(
    agent: &Agent,
    path: &Path,
    slot: &Arc<Slot>,
    cache: &mut Option<Cached>,
    spec: SessionSpec,
    request: Request,
) -> FromAgent {
    let session = Session {
        store: Store::new(spec.vault, Duration::from_millis(spec.lock_timeout_ms)),
        state_dir: spec.state_dir,
        accept_rollback: spec.accept_rollback,
    };
    match run_unlocked(&slot.key, slot, cache, &session, request, None) {
        Ok(Ok(outcome)) => FromAgent::Ran(outcome),
        Ok(Err(e)) => FromAgent::Failed(WireError::from(&e)),
        Err(NoKey::Stale) => {
            agent.state().drop_slot(path, slot);
            FromAgent::Locked {
                dropped: Some("the agent's key no longer opens this vault (its passphrase was changed), so it dropped the key; run `jeton unlock` again".into()),
            }
        }
        Err(NoKey::Dropped) => FromAgent::Locked {
            dropped: Some(DROPPED.into()),
        },
    }
}

const DROPPED: &str = "the agent dropped its key (lock, timeout or stop) while it ran this request, so it changed nothing; running it here";

/// Why a request ran without the agent's key.
enum NoKey {
    /// The cached key no longer opens the vault file.
    Stale,
    /// The key was dropped (lock, expiry, stop) while the request ran.
    Dropped,
}

fn run_unlocked(
    key: &Key,
    slot: &Slot,
    cache: &mut Option<Cached>,
    session: &Session,
    request: Request,
    signer: Option<&Signer>,
) -> Result<Result<Outcome<Response>>, NoKey> {
    let live = || slot.live.load(Ordering::SeqCst);
    let writes = request.writes();
    // A write waits for the vault only while the key is held: lock, expiry or stop ends the
    // wait, so neither the key nor the cached vault outlives them by more than one poll.
    let guard = if writes {
        match session.store.lock_while(live) {
            Ok(Some(g)) => Some(g),
            Ok(None) => return Err(NoKey::Dropped),
            Err(e) => return Ok(Err(e)),
        }
    } else {
        None
    };
    if !live() {
        return Err(NoKey::Dropped);
    }
    let path = session.store.path();
    let stamp = Stamp::of(path);
    if stamp.is_none() || cache.as_ref().map(|c| c.stamp) != stamp {
        *cache = None;
        let file = match session.store.read() {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let vault = match Vault::open_owned(file, key.clone()) {
            Ok(v) => Box::new(v),
            Err(Error::Unlock(_)) => return Err(NoKey::Stale),
            Err(e) => return Ok(Err(e)),
        };
        if crate::harden::lock_in_memory(&*vault).is_err() {
            slot.memory_locked.store(false, Ordering::SeqCst);
        }
        *cache = stamp.map(|stamp| Cached {
            vault,
            stamp,
            teams: HashMap::new(),
        });
    }
    let Some(cached) = cache.as_mut() else {
        return Ok(Err(Error::NotFound(format!("{} vanished", path.display()))));
    };
    let mut dropped = false;
    let result = session.transact(guard.as_ref(), &mut cached.vault, |v| {
        let mark = v.audit_written();
        let value = execute(v, request, crate::time::now())?;
        if let Some(signer) = signer {
            crate::team::author::sign_written(v, mark, signer, &[])?;
        }
        // Last look before the save: a key dropped meanwhile writes nothing.
        if !live() {
            dropped = true;
            return Err(Error::Other("the agent's key was dropped".into()));
        }
        Ok(value)
    });
    // After our own save (under the writer lock) the file is the cached vault; after a read the
    // stamp stays the one the cache was loaded with, so a concurrent writer is noticed next time.
    match (&result, writes.then(|| Stamp::of(path))) {
        (Ok(_), None) if !cached.vault.is_dirty() => {}
        (Ok(_), Some(Some(now))) if !cached.vault.is_dirty() => cached.stamp = now,
        _ => *cache = None,
    }
    drop(guard);
    if dropped {
        *cache = None;
        return Err(NoKey::Dropped);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unlocked() -> Unlocked {
        Unlocked {
            slot: Arc::new(Slot {
                key: Box::new(Key::from_bytes([7; 32])),
                cache: Mutex::new(None),
                teams: Mutex::default(),
                team_names: Mutex::default(),
                memory_locked: AtomicBool::new(false),
                live: AtomicBool::new(true),
            }),
            idle: Duration::from_secs(60),
            max: Duration::from_secs(60),
            unlocked_at: boottime(),
            last_used: boottime(),
        }
    }

    #[test]
    fn an_unlock_that_began_before_a_lock_keeps_no_key() {
        let mut st = State::default();
        let path = PathBuf::from("/vault.jeton");
        let before = st.locks;
        assert!(st.hold(before, path.clone(), unlocked()).is_ok());
        let began = st.locks;
        let gone = st.lock_all();
        assert_eq!(gone.len(), 1);
        let refused = st.hold(began, path.clone(), unlocked());
        let Err(back) = refused else {
            panic!("a key came back after lock");
        };
        drop(back);
        assert!(st.vaults.is_empty());
        assert!(st.hold(st.locks, path, unlocked()).is_ok());
        assert_eq!(st.vaults.len(), 1);
    }
}
