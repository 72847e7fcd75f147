//! Helpers for the hardening tests: facility checks that fail loudly, vault inspection, a seeded
//! generator. Used beside `support` (`mod support; mod hardening;`).
#![allow(dead_code)]

use crate::support::TestVault;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Fails the test with a clear message when a facility it needs is missing. These tests run as
/// root in CI (.ci/run installs the tools); a missing facility is a broken CI, never a pass.
pub fn require(what: &str, works: bool) {
    assert!(
        works,
        "required test facility unavailable: {what}. .ci/run installs it and runs as root; \
         this test refuses to pass without it"
    );
}

/// True when the command runs and exits 0.
pub fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// strace with syscall fault injection (needs ptrace): an injected EIO must fail `sh -c echo`.
pub fn require_strace_injection() {
    let injected = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=write",
            "-e",
            "inject=write:error=EIO",
            "sh",
            "-c",
            "echo probe",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| !s.success());
    require(
        "strace -e inject=... (apt-get install strace; ptrace allowed)",
        injected,
    );
}

/// Root, and a private mount namespace in which tmpfs can be mounted.
pub fn require_private_tmpfs() {
    let ok = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs \"$d\" && umount \"$d\" && rmdir \"$d\"",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        "unshare -m and mount -t tmpfs (root with CAP_SYS_ADMIN, util-linux)",
        ok,
    );
}

/// The names of all entries, whatever their status, read through the real binary.
/// Panics (with the reason) when the vault does not open.
pub fn entry_names(t: &TestVault) -> BTreeSet<String> {
    entry_names_with(t, &[])
}

/// Same, with extra global flags.
pub fn entry_names_with(t: &TestVault, flags: &[&str]) -> BTreeSet<String> {
    let args = [flags, &["--json", "list", "--status", "all"][..]].concat();
    let out = t.run(&args, "");
    assert!(
        out.status.success(),
        "the vault does not open: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list json");
    v.as_array()
        .expect("list is an array")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Files in `dir` whose name marks a temporary file of a save.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The process's exit: `Some(code)` or the signal that ended it (as 128 + signal).
pub fn exit_of(out: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    out.status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0))
}

/// A small deterministic generator (xorshift64*), so a failing loop can be replayed by seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Runs `args` under strace with `strace_args` before the command; returns the output.
pub fn under_strace(t: &TestVault, strace_args: &[&str], args: &[&str], stdin: &str) -> Output {
    let jeton = t.cmd();
    let mut c = Command::new("strace");
    c.args(["-f", "-qq"]).args(strace_args).arg("--");
    c.arg(jeton.get_program());
    c.env_clear();
    for (k, v) in jeton.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    t.run_with(c, args, stdin)
}

/// Runs `jeton ARGS` with strace injecting `inject` (`signal=SIGKILL`, `error=ENOSPC`...) into
/// the `nth` call of `call`.
pub fn inject_at(
    t: &TestVault,
    call: &str,
    nth: u32,
    inject: &str,
    args: &[&str],
    stdin: &str,
) -> Output {
    let fault = format!("inject={call}:{inject}:when={nth}");
    let trace = format!("trace={call}");
    under_strace(
        t,
        &["-o", "/dev/null", "-e", &trace, "-e", &fault],
        args,
        stdin,
    )
}

/// One system call of a traced run: the call's name, which occurrence of that name it is in its
/// thread (counting from 1, as strace's `when=` does), and the raw line.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub nth: u32,
    pub line: String,
}

/// The main thread's system calls of one traced `jeton add`.
pub fn trace_add(t: &TestVault, name: &str) -> Vec<Call> {
    trace(t, &["add", name], "traced secret")
}

/// The main thread's system calls of one traced `jeton ARGS`.
pub fn trace(t: &TestVault, args: &[&str], stdin: &str) -> Vec<Call> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace");
    let out = under_strace(
        t,
        &["-o", log.to_str().unwrap(), "-e", "trace=all"],
        args,
        stdin,
    );
    assert!(
        out.status.success(),
        "traced {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let main_pid = text
        .split_whitespace()
        .next()
        .expect("trace is empty")
        .to_owned();
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut calls = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&main_pid).map(str::trim_start) else {
            continue;
        };
        // Another thread's call can split one of ours into "<unfinished ...>" and
        // "<... NAME resumed>REST": join them back into one line.
        if let Some(resumed) = rest.strip_prefix("<... ") {
            if let Some((name, tail)) = resumed.split_once(" resumed>")
                && let Some(call) = calls.iter_mut().rev().find(|c: &&mut Call| c.name == name)
                && let Some(head) = call.line.strip_suffix(" <unfinished ...>")
            {
                call.line = format!("{head}{tail}");
            }
            continue;
        }
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let Some(paren) = rest.find('(') else {
            continue;
        };
        let name = rest[..paren].to_owned();
        let n = counts.entry(name.clone()).or_default();
        *n += 1;
        calls.push(Call {
            name,
            nth: *n,
            line: rest.to_owned(),
        });
    }
    calls
}

/// System calls that change or read files; killing before each of them reaches every state a
/// crash can leave on disk (memory-only calls between them change nothing on disk).
pub const FILE_CALLS: &[&str] = &[
    "flock",
    "openat",
    "open",
    "read",
    "pread64",
    "write",
    "pwrite64",
    "fsync",
    "fdatasync",
    "fchmod",
    "close",
    "statx",
    "newfstatat",
    "getdents64",
    "unlink",
    "unlinkat",
    "link",
    "linkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "readlink",
    "exit_group",
];

/// Kills `jeton ARGS` (SIGKILL, through strace) before each file call it makes from the creation
/// of its temporary file for `out` on, with `old` in `out` before every run, and checks that each
/// kill left `out` holding `old` or content `is_new` accepts: never a part of either. Returns how
/// many kills left the old content and how many the new; both happen when the write is atomic.
pub fn kill_during_write(
    t: &TestVault,
    args: &[&str],
    stdin: &str,
    out: &Path,
    old: &[u8],
    is_new: impl Fn(&[u8]) -> bool,
) -> (usize, usize) {
    require_strace_injection();
    let dir = out.parent().unwrap();
    let temp = format!(
        "\"{}/.{}.tmp.",
        dir.display(),
        out.file_name().unwrap().to_string_lossy()
    );
    let clean = || {
        for f in temp_files(dir) {
            std::fs::remove_file(f).unwrap();
        }
    };
    std::fs::write(out, old).unwrap();
    let calls = trace(t, args, stdin);
    let reference = std::fs::read(out).unwrap();
    assert!(is_new(&reference), "a whole run wrote what is_new refuses");
    let from = calls
        .iter()
        .position(|c| c.name.starts_with("open") && c.line.contains(&temp))
        .unwrap_or_else(|| panic!("no temporary file {temp}... in the trace: {calls:#?}"));
    let targets: Vec<&Call> = calls[from..]
        .iter()
        .filter(|c| FILE_CALLS.contains(&c.name.as_str()))
        .collect();
    assert!(
        targets.iter().any(|c| c.name.starts_with("rename")),
        "no rename after the temporary file: {targets:#?}"
    );
    let (mut kept_old, mut got_new) = (0, 0);
    for c in targets {
        std::fs::write(out, old).unwrap();
        let run = inject_at(t, &c.name, c.nth, "signal=SIGKILL", args, stdin);
        let what = format!("kill before {} #{} ({})", c.name, c.nth, c.line);
        assert_eq!(exit_of(&run), 128 + 9, "{what}: the kill did not land");
        let now = std::fs::read(out).unwrap_or_else(|e| panic!("{what}: {e}"));
        if now == old {
            kept_old += 1;
        } else {
            assert!(is_new(&now), "{what}: neither the old nor the new file");
            got_new += 1;
        }
        clean();
    }
    eprintln!("{args:?}: {kept_old} kills left the old file, {got_new} the new");
    assert!(
        kept_old > 0 && got_new > 0,
        "kills never landed on both sides of the rename"
    );
    (kept_old, got_new)
}
