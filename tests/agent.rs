//! The agent through the real binary: unlock once then no prompt, lock, idle timeout, socket
//! modes, peer uid check, capped frames, writes seen by other processes, reload after an
//! outside write, and no writes with a stale key after `passwd`.

#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/hostile.rs"]
mod hostile;
mod support;
use agent_support::*;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn socket(t: &TestVault) -> PathBuf {
    t.home().join("run/jeton/agent.sock")
}

#[test]
fn unlock_once_then_no_prompt_and_lock() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let out = run_no_pass(&t, &["get", "svc/a"], "");
    assert_eq!(out.status.code(), Some(3));
    let _agent = unlock(&t, &[]);

    let out = run_no_pass(&t, &["get", "svc/a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));

    let dir = t.home().join("run/jeton");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::symlink_metadata(socket(&t)).unwrap().mode() & 0o777,
        0o600
    );
    let s = status(&t);
    assert_eq!(s["running"], true);
    assert_eq!(s["unlocked"].as_array().unwrap().len(), 1);
    assert!(!s.to_string().contains(CANARY));

    // A second unlock does not ask again.
    let out = run_no_pass(&t, &["unlock"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    t.ok(&["lock"], "");
    let err = String::from_utf8_lossy(&run_no_pass(&t, &["get", "svc/a"], "").stderr).into_owned();
    assert!(err.contains("jeton unlock"), "{err}");
    assert_eq!(
        run_no_pass(&t, &["get", "svc/a"], "").status.code(),
        Some(3)
    );
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);
}

#[test]
fn wrong_passphrase_does_not_unlock() {
    let t = TestVault::new();
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "not the passphrase");
    let mut agent = Agent { t: &t, pid: None };
    let out = t.run_with(c, &["unlock"], "");
    agent.pid = status(&t)["pid"].as_u64().map(|p| p as u32);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);
}

#[test]
fn idle_timeout_locks() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &["--timeout", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !status(&t)["unlocked"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the idle timeout never locked");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(run_no_pass(&t, &["get", "a"], "").status.code(), Some(3));
}

#[test]
fn writes_through_the_agent_land_in_the_file_and_outside_writes_are_reloaded() {
    let t = TestVault::new();
    let _agent = unlock(&t, &[]);
    let out = run_no_pass(&t, &["add", "via/agent"], CANARY);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_no_pass(&t, &["edit", "via/agent", "--add-scope", "read"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another process without the agent (its own runtime dir) sees the write.
    let mut local = t.cmd();
    local.env("XDG_RUNTIME_DIR", t.home().join("other-run"));
    let out = t.run_with(local, &["--json", "get", "via/agent"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["secret"], CANARY);
    assert_eq!(v["scopes"][0], "read");

    // ... and writes itself; the agent notices the new file.
    let mut local = t.cmd();
    local.env("XDG_RUNTIME_DIR", t.home().join("other-run"));
    t.run_with(local, &["add", "outside"], "outside-secret");
    let out = run_no_pass(&t, &["get", "outside"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "outside-secret\n");
    let out = run_no_pass(&t, &["rm", "--yes", "outside"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.fails(&["get", "outside"], "", 4);
}

#[test]
fn passwd_while_unlocked_leaves_the_agent_unable_to_write() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    let newpass = t.home().join("newpass");
    std::fs::write(&newpass, "a brand new passphrase for the vault\n").unwrap();
    // passwd from another session (it does not know this agent): the agent's key goes stale.
    let mut c = t.cmd();
    c.env("JETON_NEW_PASSPHRASE_FILE", &newpass)
        .env("XDG_RUNTIME_DIR", t.home().join("other-run"));
    let out = t.run_with(c, &["passwd"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = t.vault_bytes();

    let out = run_no_pass(&t, &["add", "b"], "x");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("dropped the key"));
    assert_eq!(
        t.vault_bytes(),
        before,
        "the vault was written with a stale key"
    );
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);

    // Unlocking again with the new passphrase works.
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE_FILE", &newpass)
        .env_remove("JETON_PASSPHRASE");
    let out = t.run_with(c, &["unlock"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run_no_pass(&t, &["add", "b"], "x").status.success());

    // passwd in this session makes the agent forget the key at once.
    let again = t.home().join("again");
    std::fs::write(&again, "yet another passphrase for this vault\n").unwrap();
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE_FILE", &newpass)
        .env("JETON_NEW_PASSPHRASE_FILE", &again)
        .env_remove("JETON_PASSPHRASE");
    let out = t.run_with(c, &["passwd"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);
}

/// The body of a `Run` message asking for entry `name`, as `jeton get` sends it.
fn get_body(t: &TestVault, name: &str) -> String {
    format!(
        r#"{{"v":1,"msg":{{"Run":{{"session":{{"vault":"{}","state_dir":null,"accept_rollback":false,"lock_timeout_ms":1000}},"request":{{"Get":{{"name":"{name}"}}}}}}}}}}"#,
        t.vault_path().display()
    )
}

/// `body` with its length before it.
fn frame(body: &str) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body.as_bytes());
    f
}

fn raw_exchange(path: &std::path::Path, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn huge_or_bad_frames_are_refused_without_hurting_other_clients() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    // A client that connects and says nothing does not block anyone.
    let idle = UnixStream::connect(socket(&t)).unwrap();

    let reply = raw_exchange(&socket(&t), &[0xff, 0xff, 0xff, 0xff, 0, 0]);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("limit"), "{text}");
    let old_version = frame(r#"{"v":99,"msg":"Status"}"#);
    let text = String::from_utf8_lossy(&raw_exchange(&socket(&t), &old_version)).into_owned();
    assert!(text.contains("protocol version 99"), "{text}");
    let nonsense = frame(r#"{"v":1,"msg":{"Run":{"nonsense":true}}}"#);
    assert!(String::from_utf8_lossy(&raw_exchange(&socket(&t), &nonsense)).contains("malformed"));

    let out = run_no_pass(&t, &["get", "a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(idle);
}

#[test]
fn clients_slow_to_send_or_to_read_keep_no_one_waiting() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    // An answer far larger than a socket's buffer.
    let buffer = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let size = (1 << 20).max(4 * buffer);
    let long: String = (0..size)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    t.add("long", &long, &[]);
    let _agent = unlock(&t, &[]);
    // The agent answers a request that has arrived whole on the thread that accepts
    // connections; these two must not hold that thread.
    let request = frame(&get_body(&t, "a"));
    let (head, tail) = request.split_at(request.len() / 2);
    let mut slow_sender = UnixStream::connect(socket(&t)).unwrap();
    slow_sender.write_all(head).unwrap();
    let mut slow_reader = UnixStream::connect(socket(&t)).unwrap();
    slow_reader
        .write_all(&frame(&get_body(&t, "long")))
        .unwrap();

    let out = run_no_pass(&t, &["get", "a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), CANARY);

    // Both still get whole answers: the rest of a request is awaited, and the rest of an
    // answer written as the client reads it.
    slow_sender.write_all(tail).unwrap();
    let mut answer = Vec::new();
    slow_sender.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).contains(CANARY));
    let mut answer = Vec::new();
    slow_reader.read_to_end(&mut answer).unwrap();
    assert!(answer.len() > long.len(), "{} bytes", answer.len());
    let announced = u32::from_be_bytes(answer[..4].try_into().unwrap()) as usize;
    assert_eq!(announced, answer.len() - 4);
    assert!(String::from_utf8_lossy(&answer).contains(&long));
}

#[test]
fn a_write_waiting_for_the_vault_keeps_no_one_else_waiting() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    // Another process holds the vault's writer lock, so a write through the agent waits for it.
    let held = HeldVault::new(&t, Duration::from_secs(60));
    let mut writer = write_in_flight(&t, "b");

    // A read queues behind the write; the connection after it is still served (a refusal
    // needs nothing the write holds).
    let mut reader = UnixStream::connect(socket(&t)).unwrap();
    reader.write_all(&frame(&get_body(&t, "a"))).unwrap();
    let refused = frame(r#"{"v":99,"msg":"Status"}"#);
    let text = String::from_utf8_lossy(&raw_exchange(&socket(&t), &refused)).into_owned();
    assert!(text.contains("protocol version 99"), "{text:?}");
    assert!(
        writer.try_wait().unwrap().is_none(),
        "the write gave up early"
    );

    drop(held);
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answer = Vec::new();
    reader.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).contains(CANARY));
}

#[test]
fn the_agent_refuses_unsafe_socket_directories() {
    let t = TestVault::new();
    let run = t.home().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let elsewhere = t.home().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, run.join("jeton")).unwrap();
    let err = t.fails(&["agent", "start"], "", 1);
    assert!(err.contains("symbolic link"), "{err}");
    std::fs::remove_file(run.join("jeton")).unwrap();
    std::fs::create_dir(run.join("jeton")).unwrap();
    std::fs::set_permissions(run.join("jeton"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = t.fails(&["agent", "start"], "", 1);
    assert!(err.contains("may write"), "{err}");
    assert!(!socket(&t).exists());
}

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_client_of_another_uid_is_refused() {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !is_root || !have("setpriv") || !std::path::Path::new("/usr/bin/python3").exists() {
        skip("root, setpriv and /usr/bin/python3");
        return;
    }
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    // Open the way to the socket, as a careless chmod would: only SO_PEERCRED stands between
    // another user and the key now.
    for p in [
        t.home().to_path_buf(),
        t.home().join("run"),
        t.home().join("run/jeton"),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(socket(&t), std::fs::Permissions::from_mode(0o666)).unwrap();
    let body = get_body(&t, "a");
    let script = "import socket,struct,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        b=sys.argv[2].encode()\n\
        s.sendall(struct.pack('>I',len(b))+b)\n\
        out=b''\n\
        while True:\n\
        \x20   d=s.recv(65536)\n\
        \x20   if not d: break\n\
        \x20   out+=d\n\
        sys.stdout.write(out[4:].decode())\n";
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(socket(&t))
        .arg(&body)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("refuses uid 65534"), "{text}");
    assert!(!text.contains(CANARY));

    // The same request from the owner works, so the refusal was the uid check.
    let ours = raw_exchange(&socket(&t), &frame(&body));
    assert!(String::from_utf8_lossy(&ours).contains(CANARY));

    // jeton itself, run as another user, refuses to talk to an agent that is not its own: the
    // directory already is not its own, so it says so and goes on without the agent.
    let exe = env!("CARGO_BIN_EXE_jeton");
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            exe,
            "agent",
            "status",
        ])
        .env("XDG_RUNTIME_DIR", t.home().join("run"))
        .output()
        .unwrap();
    if !String::from_utf8_lossy(&out.stderr).contains("failed to execute") {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("owned by uid 0, not 65534"), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("no agent is running"));
    }
}

/// The vault's writer lock, taken by "another process" (this test) until dropped; released by
/// a thread after `max` anyway, so a test of old behaviour fails instead of hanging.
struct HeldVault {
    release: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeldVault {
    fn new(t: &TestVault, max: Duration) -> HeldVault {
        let mut lock_name = t.vault_path().into_os_string();
        lock_name.push(".lock");
        let held = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_name)
            .unwrap();
        held.lock().unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = wait.recv_timeout(max);
            held.unlock().unwrap();
        });
        HeldVault {
            release,
            thread: Some(thread),
        }
    }
}

impl Drop for HeldVault {
    fn drop(&mut self) {
        let _ = self.release.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How many threads agent `pid` runs.
fn agent_threads(pid: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Starts `jeton add NAME` through the agent (no other passphrase source) and returns once the
/// agent runs it: a thread of the agent waits for the vault.
fn write_in_flight(t: &TestVault, name: &str) -> std::process::Child {
    let agent_pid = status(t)["pid"].as_u64().unwrap();
    let threads = || agent_threads(agent_pid);
    // The thread that answered `status` may still be ending: the fewest seen is the idle count.
    let idle_threads = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(5));
            threads()
        })
        .min()
        .unwrap_or(0);
    let mut writer = no_pass(t)
        .args(["--lock-timeout", "60s", "add", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writer.stdin.take().unwrap().write_all(b"bee").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while threads() <= idle_threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        threads() > idle_threads,
        "the write never reached the agent"
    );
    std::thread::sleep(Duration::from_millis(50));
    writer
}

/// Latency is what is tested here, so a bound it is: the aim is 100 ms, the bound generous enough
/// for a loaded 2-core CI machine, and far below what the old code took (the whole wait).
const PROMPTLY: Duration = Duration::from_secs(2);

#[test]
fn lock_and_status_win_over_a_write_waiting_for_the_vault() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    let pid = status(&t)["pid"].as_u64().unwrap();
    let idle_threads = agent_threads(pid);
    let held = HeldVault::new(&t, Duration::from_secs(8));
    let writer = write_in_flight(&t, "b");

    let started = Instant::now();
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 1);
    t.ok(&["lock"], "");
    let took = started.elapsed();
    assert!(took < PROMPTLY, "status and lock took {took:?}");
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);
    assert_eq!(run_no_pass(&t, &["get", "a"], "").status.code(), Some(3));

    // The agent's thread that ran the waiting write stops waiting at once (its key and cached
    // vault go with it), though the other process still holds the vault.
    let waited = Instant::now();
    while agent_threads(pid) > idle_threads {
        assert!(
            waited.elapsed() < PROMPTLY,
            "the agent kept waiting for the vault with a dropped key"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The write saved nothing with the dropped key, and says why.
    drop(held);
    let out = writer.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("changed nothing"), "{err}");
    t.fails(&["get", "b"], "", 4);
}

#[test]
fn the_idle_timer_wins_over_a_write_waiting_for_the_vault() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &["--timeout", "1s"]);
    let held = HeldVault::new(&t, Duration::from_secs(8));
    let writer = write_in_flight(&t, "b");
    let started = Instant::now();
    while !status(&t)["unlocked"].as_array().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(1) + PROMPTLY,
            "the key outlived its idle deadline"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(started.elapsed() < Duration::from_secs(1) + PROMPTLY);
    drop(held);
    let out = writer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    t.fails(&["get", "b"], "", 4);
}

#[test]
fn lock_wins_over_a_hostile_bundle_import_in_flight() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    let file = t.home().join("hostile.age");
    std::fs::write(&file, hostile::hostile_age_file(8000, false)).unwrap();
    let mut importer = no_pass(&t)
        .args(["import", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    t.ok(&["lock"], "");
    let took = started.elapsed();
    assert!(took < PROMPTLY, "lock took {took:?}");
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);
    assert_eq!(run_no_pass(&t, &["get", "a"], "").status.code(), Some(3));
    let _ = importer.kill();
    let _ = importer.wait();
}

#[test]
fn a_command_right_after_agent_stop_never_fails() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    for round in 0..25 {
        let agent = unlock(&t, &[]);
        let pid = agent.pid.expect("agent pid");
        t.ok(&["agent", "stop"], "");
        // `stop` returned: the agent is gone, not just asked to go.
        assert!(
            !socket(&t).exists(),
            "round {round}: the socket is still there"
        );
        // Gone, a zombie, or at the end of its exit with its memory (the key) released.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map_or(vec![], |(_, f)| f.split(' ').collect());
        assert!(
            stat.is_empty() || fields[0] == "Z" || fields[20] == "0",
            "round {round}: the agent still runs: {stat}"
        );
        let out = t.run(&["get", "a"], "");
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));
    }
}

/// A listener on the agent's socket that serves `n` connections with `serve` and stops.
fn fake_agent(t: &TestVault, n: usize, serve: fn(UnixStream)) -> std::thread::JoinHandle<()> {
    let dir = t.home().join("run/jeton");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(socket(t)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(n) {
            serve(conn.unwrap());
        }
    })
}

#[test]
fn a_client_falls_back_when_the_agent_dies_before_or_while_answering() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);

    // Closed with the request unread (a reset): the agent ran nothing, even a write falls back.
    let agent = fake_agent(&t, 2, drop);
    let out = t.run(&["get", "a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));
    t.ok(&["add", "b"], "bee");
    agent.join().unwrap();
    std::fs::remove_file(socket(&t)).unwrap();

    // The request read, then half an answer: a read falls back; a write may have been saved,
    // so it is not run twice.
    let agent = fake_agent(&t, 2, |mut conn| {
        let mut len = [0u8; 4];
        conn.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        conn.read_exact(&mut body).unwrap();
        conn.write_all(&[0, 0]).unwrap();
    });
    let out = t.run(&["get", "a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = t.fails(&["add", "c"], "sea", 1);
    assert!(err.contains("without saying whether it was saved"), "{err}");
    agent.join().unwrap();
    std::fs::remove_file(socket(&t)).unwrap();

    // A socket nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(socket(&t)).unwrap());
    t.ok(&["get", "a"], "");
}

#[test]
fn commands_run_without_the_agent_when_its_directory_is_unsafe() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let run = t.home().join("run");
    let dir = run.join("jeton");
    let elsewhere = t.home().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    // Someone else's socket in the directory, which resets every connection.
    let planted = std::os::unix::net::UnixListener::bind(elsewhere.join("agent.sock")).unwrap();
    std::thread::spawn(move || {
        for conn in planted.incoming() {
            drop(conn);
        }
    });

    let check = |why: &str| {
        let out = t.run(&["get", "a"], "");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{why}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));
        assert_eq!(
            err.matches("warning: not using the agent").count(),
            1,
            "{err}"
        );
        assert!(err.contains(why), "{err}");
        let out = t.run(&["agent", "status"], "");
        assert!(String::from_utf8_lossy(&out.stdout).contains("no agent is running"));
        assert!(String::from_utf8_lossy(&out.stderr).contains(why));
    };

    std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
    check("symbolic link");
    std::fs::remove_file(&dir).unwrap();

    std::fs::rename(&elsewhere, &dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    check("may write");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o777);

    // Ours and only readable by others: tightened, then used.
    std::fs::remove_file(dir.join("agent.sock")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = t.run(&["get", "a"], "");
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
}
