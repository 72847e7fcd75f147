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
        TestVault {
            home: tempfile::Builder::new()
                .prefix("jeton-test")
                .tempdir()
                .expect("tempdir"),
        }
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

    pub fn vault_bytes(&self) -> Vec<u8> {
        std::fs::read(self.vault_path()).expect("read vault")
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
