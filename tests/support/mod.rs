//! Test harness: a vault in a temporary HOME with a cheap KDF, driven through the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The passphrase of every test vault.
pub const PASS: &str = "test passphrase: correct horse battery staple";
/// A secret that must never show up where it should not.
pub const CANARY: &str = "CANARY-tok-7f3a9c1e5b";
/// Cheap KDF flags for `init`.
pub const CHEAP_KDF: [&str; 6] = [
    "--kdf-memory",
    "8MiB",
    "--kdf-iterations",
    "1",
    "--kdf-lanes",
    "1",
];

/// A temporary HOME with XDG directories inside it.
pub struct TestVault {
    pub home: tempfile::TempDir,
}

impl TestVault {
    /// An initialised vault.
    pub fn new() -> TestVault {
        let t = TestVault::empty();
        t.ok(&[&["init"][..], &CHEAP_KDF].concat(), "");
        t
    }

    /// A HOME with no vault yet.
    pub fn empty() -> TestVault {
        let t = TestVault {
            home: tempfile::Builder::new()
                .prefix("jeton-test")
                .tempdir()
                .expect("tempdir"),
        };
        canary_watch::register(t.home());
        t
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn vault_path(&self) -> PathBuf {
        self.home().join(".local/share/jeton/vault.jeton")
    }

    /// A command for the real binary, with a clean environment and the test passphrase.
    pub fn cmd(&self) -> Command {
        self.cmd_for(env!("CARGO_BIN_EXE_jeton"))
    }

    /// Another program with the same clean environment (for wrappers such as a pty driver).
    pub fn cmd_for(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .env("XDG_STATE_HOME", self.home().join(".local/state"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_RUNTIME_DIR", self.home().join("run"))
            .env("JETON_PASSPHRASE", PASS);
        c
    }

    /// Runs `jeton ARGS` with `stdin` as standard input.
    pub fn run_with(&self, mut c: Command, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        // A test that puts a secret in argv on purpose (to see it refused) is not a leak.
        // So is a pty driver that types the secret the way a user would.
        let deliberate = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .chain(args.iter().map(|a| a.to_string()))
            .any(|a| a.contains(CANARY) || a.contains(PASS));
        let _watch = canary_watch::watching(self.home(), deliberate);
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn jeton");
        let mut input = child.stdin.take().expect("stdin");
        let data = stdin.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait jeton");
        writer.join().expect("stdin writer");
        assert_no_panic(&out);
        if !deliberate {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains(CANARY) && !err.contains(PASS),
                "jeton {args:?}: a secret on stderr: {err}"
            );
        }
        let hits = canary_watch::hits();
        assert!(hits.is_empty(), "a secret in a command line: {hits:?}");
        out
    }

    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(self.cmd(), args, stdin)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "jeton {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8 stdout")
    }

    /// Runs and asserts the exit code; returns stderr.
    pub fn fails(&self, args: &[&str], stdin: &str, code: i32) -> String {
        let out = self.run(args, stdin);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "jeton {args:?}: stderr: {err}"
        );
        err
    }

    /// Adds an entry with `secret` on stdin and extra flags.
    pub fn add(&self, name: &str, secret: &str, flags: &[&str]) {
        self.ok(&[&["add", name][..], flags].concat(), secret);
    }

    /// `jeton passwd` to `new` (read from `$JETON_NEW_PASSPHRASE_FILE`), cheap KDF; asserts
    /// success.
    pub fn passwd(&self, new: &str) {
        let file = self.home().join("new-passphrase");
        std::fs::write(&file, new).expect("write new passphrase");
        let mut c = self.cmd();
        c.env("JETON_NEW_PASSPHRASE_FILE", &file);
        let out = self.run_with(
            c,
            &["passwd", "--kdf-memory", "8MiB", "--kdf-iterations", "1"],
            "",
        );
        assert!(
            out.status.success(),
            "passwd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn vault_bytes(&self) -> Vec<u8> {
        std::fs::read(self.vault_path()).expect("read vault")
    }
}

impl Drop for TestVault {
    fn drop(&mut self) {
        canary_watch::unregister(self.home());
        if !std::thread::panicking() {
            sweep_files_for_secrets(self);
        }
    }
}

/// Fails the test if a file jeton wrote (vault, backup, temporary files, lock, rollback memory,
/// agent directory) holds the canary or the passphrase in plaintext. Returns how many files it
/// read.
pub fn sweep_files_for_secrets(t: &TestVault) -> usize {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(&e.path(), files);
            } else if ft.is_file() {
                files.push(e.path());
            }
        }
    }
    let mut files = Vec::new();
    for d in [".local/share/jeton", ".local/state/jeton", "run/jeton"] {
        walk(&t.home().join(d), &mut files);
    }
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for secret in [CANARY, PASS] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a secret in plaintext",
                f.display()
            );
        }
    }
    files.len()
}

/// Watches every process's command line while jeton commands run, for the canary or the
/// passphrase. Only jeton processes and their descendants whose HOME is a live test vault of this
/// test binary count, so other programs on the machine are not blamed.
pub mod canary_watch {
    use super::{CANARY, PASS};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Mutex, Once};
    use std::time::Duration;

    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    static SWEEPS: AtomicU64 = AtomicU64::new(0);
    static HOMES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static DELIBERATE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static HITS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static START: Once = Once::new();

    pub fn register(home: &Path) {
        HOMES.lock().unwrap().push(home.to_owned());
    }

    pub fn unregister(home: &Path) {
        HOMES.lock().unwrap().retain(|h| h != home);
    }

    /// Command lines seen holding a secret since the last call.
    pub fn hits() -> Vec<String> {
        std::mem::take(&mut *HITS.lock().unwrap())
    }

    /// How many /proc scans ran in this test binary.
    pub fn sweeps() -> u64 {
        SWEEPS.load(Ordering::Relaxed)
    }

    /// Scans while the returned guard lives.
    pub fn watching(home: &Path, deliberate: bool) -> Guard {
        START.call_once(|| {
            std::thread::spawn(|| {
                loop {
                    if IN_FLIGHT.load(Ordering::Relaxed) > 0 {
                        sweep();
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        });
        if deliberate {
            DELIBERATE.lock().unwrap().push(home.to_owned());
        }
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Guard {
            home: deliberate.then(|| home.to_owned()),
        }
    }

    pub struct Guard {
        home: Option<PathBuf>,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
            if let Some(h) = &self.home {
                let mut d = DELIBERATE.lock().unwrap();
                if let Some(i) = d.iter().position(|x| x == h) {
                    d.remove(i);
                }
            }
        }
    }

    fn holds_secret(bytes: &[u8]) -> bool {
        [CANARY, PASS]
            .iter()
            .any(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()))
    }

    fn home_of(pid: &str) -> Option<PathBuf> {
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        env.split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(b"HOME="))
            .map(|h| PathBuf::from(String::from_utf8_lossy(h).into_owned()))
    }

    fn is_jeton(cmdline: &[u8]) -> bool {
        let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        argv0.rsplit(|&b| b == b'/').next() == Some(&b"jeton"[..])
    }

    /// Only jeton and what it starts (agent, passphrase command) count: a test's own helper
    /// (a pty driver typing the secret like a user) is not jeton's doing.
    fn jeton_or_its_descendant(pid: &str, cmdline: &[u8]) -> bool {
        if is_jeton(cmdline) {
            return true;
        }
        let mut pid = pid.to_owned();
        for _ in 0..16 {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(ppid) = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1))
            else {
                return false;
            };
            if ppid == "0" || ppid == "1" {
                return false;
            }
            pid = ppid.to_owned();
            if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| is_jeton(&c)) {
                return true;
            }
        }
        false
    }

    fn sweep() {
        SWEEPS.fetch_add(1, Ordering::Relaxed);
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let pid = name.to_string_lossy();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            if !holds_secret(&cmdline) {
                continue;
            }
            if !jeton_or_its_descendant(&pid, &cmdline) {
                continue;
            }
            let Some(home) = home_of(&pid) else { continue };
            let ours = HOMES.lock().unwrap().contains(&home);
            let deliberate = DELIBERATE.lock().unwrap().contains(&home);
            if ours && !deliberate {
                let shown = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                HITS.lock().unwrap().push(format!("pid {pid}: {shown}"));
            }
        }
    }
}

/// Fails the test if the process panicked.
pub fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "jeton panicked: {err}");
    assert_ne!(
        out.status.code(),
        Some(101),
        "jeton exited 101 (panic): {err}"
    );
}

/// Says that a test cannot run here for want of `what`. Under CI (`CI` set) that is a failure:
/// `.ci/run` installs every tool the tests use, so no test passes there without running.
pub fn skip(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {what} (.ci/run)"
    );
    eprintln!("skipped: {what}");
}

/// `git` with no user configuration at all (no identity, no system or global config).
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(args)
        .output()
        .expect("run git")
}

/// [`git`], asserting success; its stdout.
pub fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs jeton under a pty (tests/data/pty_driver.py), answering `pairs` of (prompt, answer),
/// with or without `JETON_PASSPHRASE`. Returns (exit code, terminal text). The driver kills a
/// command that waits for an answer it was not given (exit 98).
pub fn on_tty(
    t: &TestVault,
    pairs: &[(&str, &str)],
    args: &[&str],
    with_passphrase_env: bool,
) -> (i32, String) {
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let mut c = t.cmd_for("python3");
    if !with_passphrase_env {
        c.env_remove("JETON_PASSPHRASE");
    }
    c.arg(driver);
    for (p, a) in pairs {
        c.args([p, a]);
    }
    c.arg("--").arg(env!("CARGO_BIN_EXE_jeton")).args(args);
    let out = c.output().expect("run the pty driver");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// [`on_tty`] with the command's stdout sent to a file instead of the terminal: (exit code,
/// terminal text, stdout bytes). `pairs` are answered in order; `env` is set on top of the
/// test environment.
pub fn on_tty_stdout(
    t: &TestVault,
    pairs: &[(&str, &str)],
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, Vec<u8>) {
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let stdout = t.home().join("pty-stdout");
    let _ = std::fs::remove_file(&stdout);
    let mut c = t.cmd_for("python3");
    c.env_remove("JETON_PASSPHRASE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg(driver).arg("--stdout").arg(&stdout);
    for (p, a) in pairs {
        c.args([p, a]);
    }
    c.arg("--").arg(env!("CARGO_BIN_EXE_jeton")).args(args);
    let out = c.output().expect("run the pty driver");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read(&stdout).unwrap_or_default(),
    )
}
