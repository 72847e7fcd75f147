//! Memory hygiene (SPEC §7): a jeton process holding an unlocked vault cannot be dumped. It runs
//! with RLIMIT_CORE 0 and PR_SET_DUMPABLE 0, so a crash leaves no core file and a same-uid
//! `gcore` (ptrace) fails; its /proc files belong to root. The canary secret never shows in any
//! process's command line, in stderr, in the audit log, or in files beside the vault.
//!
//! The dump tests run the process as `nobody`: root may ptrace anything, so only a same-uid,
//! unprivileged attacker shows what PR_SET_DUMPABLE protects against. Each test first shows,
//! on a control process, that the facility works (a core file appears, gcore succeeds).

mod hardening;
mod support;
use hardening::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

const NOBODY: u32 = 65534;

/// A world-readable directory owned by `nobody`, with a copy of the binary in it (the build
/// directory may not be reachable by `nobody`).
struct Unprivileged {
    dir: tempfile::TempDir,
}

impl Unprivileged {
    fn new() -> Unprivileged {
        require(
            "running as root (to switch to nobody)",
            rustix::process::geteuid().is_root(),
        );
        require("setpriv (util-linux)", runs("setpriv", &["--version"]));
        let dir = tempfile::Builder::new()
            .prefix("jeton-nobody")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("jeton");
        std::fs::copy(env!("CARGO_BIN_EXE_jeton"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["home", "cwd"] {
            let p = dir.path().join(sub);
            std::fs::create_dir(&p).unwrap();
            std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
        }
        Unprivileged { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Where crashes happen (a core file would be written here).
    fn cwd(&self) -> PathBuf {
        self.dir.path().join("cwd")
    }

    /// `program args` as nobody, with the test environment and unlimited core size.
    fn command(&self, program: &Path, args: &[&str]) -> Command {
        let home = self.home();
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
            "prlimit",
            "--core=unlimited",
            "--",
        ])
        .arg(program)
        .args(args)
        .current_dir(self.cwd())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("JETON_PASSPHRASE", PASS);
        c
    }

    fn jeton(&self, args: &[&str], stdin: &[u8]) -> String {
        self.run(&self.dir.path().join("jeton"), args, stdin)
    }

    /// Runs `program args` as nobody; asserts success; returns stdout and stderr.
    fn run(&self, program: &Path, args: &[&str], stdin: &[u8]) -> String {
        let mut child = self
            .command(program, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} as nobody: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned()
    }

    fn core_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.cwd())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
            .map(|e| e.path())
            .collect()
    }

    /// `jeton get` of a large secret into a pipe nobody reads: the process blocks in write(2)
    /// with the vault unlocked and decrypted in its memory.
    fn unlocked_process(&self) -> Child {
        let mut secret = CANARY.as_bytes().to_vec();
        secret.extend(std::iter::repeat_n(b'x', 256 * 1024));
        self.jeton(&[&["init"][..], &CHEAP_KDF].concat(), b"");
        self.jeton(&["add", "big"], &secret);
        let mut child = self
            .command(&self.dir.path().join("jeton"), &["get", "big"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wchan = format!("/proc/{}/wchan", child.id());
        for _ in 0..1000 {
            if std::fs::read_to_string(&wchan).is_ok_and(|w| w.contains("pipe_write")) {
                return child;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("jeton get never blocked writing the secret");
    }
}

fn core_pattern_is_a_file() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/core_pattern")
        .is_ok_and(|p| !p.trim().is_empty() && !p.starts_with('|') && !p.contains('/'))
}

#[test]
fn a_crashing_unlocked_process_leaves_no_core() {
    let u = Unprivileged::new();
    require(
        "kernel.core_pattern naming a plain file in the crashing process's directory",
        core_pattern_is_a_file(),
    );
    // Control: an ordinary process crashing here does leave a core.
    let control = u
        .command(Path::new("/bin/sh"), &["-c", "kill -ABRT $$"])
        .status()
        .unwrap();
    require(
        "core dumps of an ordinary process (the control dumped no core)",
        control.core_dumped() && !u.core_files().is_empty(),
    );
    for f in u.core_files() {
        std::fs::remove_file(f).unwrap();
    }

    let child = u.unlocked_process();
    let pid = child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core_line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(
        core_line.split_whitespace().nth(4),
        Some("0"),
        "RLIMIT_CORE is not 0: {core_line}"
    );
    // PR_SET_DUMPABLE 0: the kernel gives the process's /proc files to root.
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .unwrap()
        .uid();
    assert_eq!(
        owner, 0,
        "/proc/{pid} still belongs to the process's user: it is dumpable"
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(CANARY));

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::Signal::ABORT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(6), "{:?}", out.status);
    assert!(!out.status.core_dumped(), "the kernel dumped core");
    assert!(
        u.core_files().is_empty(),
        "core file written: {:?}",
        u.core_files()
    );
}

#[test]
fn a_same_uid_gcore_of_an_unlocked_process_fails() {
    let u = Unprivileged::new();
    require(
        "gdb's gcore",
        runs("gcore", &["--version"]) || Path::new("/usr/bin/gcore").exists(),
    );
    let gcore = |pid: u32, out: &Path| {
        u.command(
            Path::new("gcore"),
            &["-o", out.to_str().unwrap(), &pid.to_string()],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
    };
    // Control: the same user can dump an ordinary process of its own.
    let mut sleeper = u
        .command(Path::new("sleep"), &["30"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let dumped = gcore(sleeper.id(), &u.cwd().join("control"));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    require(
        "same-uid ptrace (gcore of an ordinary process failed: yama ptrace_scope?)",
        dumped.success() && !u.core_files().is_empty() || {
            std::fs::read_dir(u.cwd())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("control"))
        },
    );
    for e in std::fs::read_dir(u.cwd()).unwrap().flatten() {
        std::fs::remove_file(e.path()).unwrap();
    }

    let mut child = u.unlocked_process();
    let status = gcore(child.id(), &u.cwd().join("jeton"));
    let leftovers: Vec<_> = std::fs::read_dir(u.cwd())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!status.success(), "gcore dumped an unlocked jeton");
    assert!(leftovers.is_empty(), "gcore wrote {leftovers:?}");
}

#[test]
fn the_canary_stays_out_of_logs_files_and_command_lines() {
    let t = TestVault::new();
    t.add(
        "svc/token",
        CANARY,
        &["--scope", "read", "--note", "canary test"],
    );
    t.ok(&["rotate", "svc/token"], &format!("{CANARY}-2"));
    t.ok(&["edit", "svc/token", "--add-scope", "write"], "");
    t.ok(&["get", "svc/token"], "");
    t.ok(&["--json", "get", "svc/token"], "");
    t.ok(&["show", "--reveal", "svc/token"], "");
    t.ok(&["history", "--reveal", "svc/token"], "");
    t.ok(&["rollback", "svc/token"], "");
    t.ok(&["rename", "svc/token", "svc/renamed"], "");
    for args in [
        &["log"][..],
        &["--json", "log"][..],
        &["list"][..],
        &["check"][..],
    ] {
        let out = t.run(args, "");
        let text = [out.stdout, out.stderr].concat();
        assert!(
            !String::from_utf8_lossy(&text).contains("CANARY"),
            "jeton {args:?} shows the secret"
        );
    }
    let out = t.run(&["get", "missing"], "");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(CANARY));
    // Every file jeton wrote: vault, backup, lock, rollback memory. The secret is only inside
    // the encryption.
    let swept = support::sweep_files_for_secrets(&t);
    assert!(swept >= 3, "only {swept} files swept");
    let hits = support::canary_watch::hits();
    assert!(hits.is_empty(), "canary in a command line: {hits:?}");
    eprintln!(
        "canary sweep: {} /proc scans during this test binary, 0 hits; {swept} files swept",
        support::canary_watch::sweeps()
    );
}

#[test]
fn the_agent_is_not_dumpable_and_runs_without_mlock() {
    let u = Unprivileged::new();
    require("gdb's gcore", Path::new("/usr/bin/gcore").exists());
    let jeton = u.dir.path().join("jeton");
    u.jeton(&[&["init"][..], &CHEAP_KDF].concat(), b"");
    u.jeton(&["add", "svc/token"], CANARY.as_bytes());
    // No memory may be locked: the agent warns and keeps working (SPEC §7: mlock where allowed).
    let unlock = u.run(
        Path::new("prlimit"),
        &["--memlock=0", "--", jeton.to_str().unwrap(), "unlock"],
        b"",
    );
    assert!(!unlock.contains(CANARY), "{unlock}");
    let status: serde_json::Value =
        serde_json::from_str(&u.jeton(&["--json", "agent", "status"], b"")).unwrap();
    let pid = status["pid"].as_u64().expect("agent pid") as u32;
    let stop = || {
        let _ = u
            .command(&jeton, &["agent", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    let checks = std::panic::catch_unwind(|| {
        assert_eq!(
            status["unlocked"][0]["memory_locked"], false,
            "mlock succeeded with RLIMIT_MEMLOCK 0: {status}"
        );
        let human = u.jeton(&["agent", "status"], b"");
        assert!(human.contains("not mlocked"), "no warning: {human}");
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        for (name, want) in [("Max core file size", "0"), ("Max locked memory", "0")] {
            let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
            assert_eq!(line.split_whitespace().nth(4), Some(want), "{line}");
        }
        let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
            .unwrap()
            .uid();
        assert_eq!(owner, 0, "the agent is dumpable");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(!String::from_utf8_lossy(&cmdline).contains(CANARY));
        let dumped = u
            .command(
                Path::new("gcore"),
                &[
                    "-o",
                    u.cwd().join("agent").to_str().unwrap(),
                    &pid.to_string(),
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!dumped.success(), "gcore dumped the agent");
        // The agent still serves, without a passphrase.
        let mut c = u.command(&jeton, &["get", "-n", "svc/token"]);
        c.env_remove("JETON_PASSPHRASE");
        let out = c.stdin(Stdio::null()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), CANARY);
    });
    stop();
    if let Err(e) = checks {
        std::panic::resume_unwind(e);
    }
    let leftovers: Vec<_> = std::fs::read_dir(u.cwd())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "gcore wrote {leftovers:?}");
}

/// How many times `needle` occurs in the readable memory of process `pid` (root reads any
/// process's memory through /proc, dumpable or not).
fn copies_in_memory(pid: u32, needle: &[u8]) -> usize {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut count = 0;
    let mut scanned = 0usize;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
        let name = fields.nth(3).unwrap_or("");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; (end - start) as usize];
        if mem.read_exact_at(&mut region, start).is_err() {
            continue;
        }
        scanned += region.len();
        count += region
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count();
    }
    assert!(scanned > 1 << 20, "only {scanned} bytes of memory read");
    count
}

/// Starts `jeton ARGS` with `stdin` written to a pipe that stays open, and waits until the
/// process has read all of it and blocks reading for more.
fn waiting_for_more_stdin(
    t: &TestVault,
    args: &[&str],
    stdin: &[u8],
) -> (Child, std::process::ChildStdin) {
    use std::io::Write;
    let mut child = t
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    let wchan = format!("/proc/{}/wchan", child.id());
    for _ in 0..1000 {
        // The pipe is empty (all of it was read), and then the process blocks reading again.
        if rustix::io::ioctl_fionread(&input).is_ok_and(|n| n == 0)
            && std::fs::read_to_string(&wchan).is_ok_and(|w| w.contains("pipe_read"))
        {
            return (child, input);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("jeton {args:?} never blocked reading stdin");
}

#[test]
fn a_secret_read_from_stdin_is_held_once_while_more_may_come() {
    require(
        "running as root (to read another process's memory)",
        rustix::process::geteuid().is_root(),
    );
    let t = TestVault::new();
    t.add("svc/old", "old-token", &[]);
    // Large enough that reading it grows a buffer several times; the canary is not at the
    // start, where the allocator writes its own bookkeeping over freed blocks.
    let mut secret = vec![b'x'; 100];
    secret.extend(CANARY.as_bytes());
    secret.extend(std::iter::repeat_n(b'y', 40 * 1024));
    // cargo's `login` line carries a token; jeton answers it and waits for the next line.
    let login = format!(
        "{{\"v\":1,\"registry\":{{\"index-url\":\"sparse+http://127.0.0.1:8/index/\"}},\
         \"kind\":\"login\",\"token\":\"{}\",\"args\":[]}}\n",
        String::from_utf8(secret.clone()).unwrap()
    );
    let mut found = Vec::new();
    for (args, input, want) in [
        // One buffer: what was read so far, and no other copy (a read-ahead buffer, a block
        // freed as the buffer grew).
        (&["add", "svc/new"][..], &secret[..], 1),
        (&["rotate", "svc/old"][..], &secret[..], 1),
        (&["git-credential", "store"][..], &secret[..], 1),
        (&["docker-credential", "store"][..], &secret[..], 1),
        (&["--passphrase-fd", "0", "list"][..], &secret[..], 1),
        // A line already answered is wiped.
        (
            &["cargo-credential", "--cargo-plugin"][..],
            login.as_bytes(),
            0,
        ),
    ] {
        let (mut child, stdin) = waiting_for_more_stdin(&t, args, input);
        let copies = copies_in_memory(child.id(), CANARY.as_bytes());
        drop(stdin);
        let _ = child.kill();
        let _ = child.wait();
        found.push((args, copies, want));
    }
    assert!(
        found.iter().all(|(_, copies, want)| copies == want),
        "copies of a secret read from stdin (command, found, expected): {found:?}"
    );
}
