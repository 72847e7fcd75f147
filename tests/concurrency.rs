//! Concurrent writers (SPEC §2): the writer lock serialises whole read-modify-write cycles, so
//! four processes adding and rotating at once lose no update; a writer that cannot get the lock
//! in time fails with exit 7 and changes nothing; readers never wait.

mod hardening;
mod support;
use hardening::*;
use std::time::Duration;
use support::*;

const WRITERS: usize = 4;
const ADDS: usize = 100;
const ROTATES: usize = 10;

#[test]
fn four_writers_lose_no_update() {
    let t = TestVault::new();
    t.add("shared", "v0", &[]);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let t = &t;
            s.spawn(move || {
                for i in 0..ADDS {
                    let name = format!("w{w}/e{i}");
                    t.ok(
                        &["--lock-timeout", "120s", "add", &name],
                        &format!("secret {w} {i}"),
                    );
                    if i % (ADDS / ROTATES) == 0 {
                        t.ok(
                            &["--lock-timeout", "120s", "rotate", "shared"],
                            &format!("rotated by {w} at {i}"),
                        );
                    }
                }
            });
        }
    });
    let names = entry_names(&t);
    assert_eq!(names.len(), WRITERS * ADDS + 1);
    for w in 0..WRITERS {
        for i in 0..ADDS {
            assert!(names.contains(&format!("w{w}/e{i}")), "lost w{w}/e{i}");
        }
    }
    // Every rotation counted: one revision each, and one audit event each.
    let shown: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "show", "shared"], "")).unwrap();
    assert_eq!(shown["revision"], 1 + (WRITERS * ROTATES) as u64, "{shown}");
    let log = t.ok(&["log", "shared"], "");
    assert_eq!(
        log.lines().filter(|l| l.contains("rotate")).count(),
        WRITERS * ROTATES,
        "{log}"
    );
    let secret = t.ok(&["get", "-n", "shared"], "");
    assert!(secret.starts_with("rotated by "), "{secret}");
    assert!(temp_files(t.vault_path().parent().unwrap()).is_empty());
}

#[test]
fn a_writer_holding_the_lock_makes_others_time_out_with_exit_7() {
    require_strace_injection();
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    // A real jeton writer that holds the lock for 3 s: strace delays its first fsync.
    let holder = {
        let jeton = t.cmd();
        let mut c = std::process::Command::new("strace");
        c.args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=fsync",
            "-e",
            "inject=fsync:delay_enter=3000000:when=1",
            "--",
        ])
        .arg(jeton.get_program())
        .args(["add", "slow"])
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        for (k, v) in jeton.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"slow secret")
            .unwrap();
        child
    };
    // Wait until the holder has the lock and sits in its delayed fsync (its temp file exists).
    let dir = t.vault_path().parent().unwrap().to_owned();
    let mut waited = Duration::ZERO;
    while temp_files(&dir).is_empty() {
        assert!(
            waited < Duration::from_secs(20),
            "the slow writer never started saving"
        );
        std::thread::sleep(Duration::from_millis(10));
        waited += Duration::from_millis(10);
    }
    let before = t.vault_bytes();
    let err = t.fails(&["--lock-timeout", "200ms", "add", "b"], "x", 7);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("locked by another jeton process") && err.contains("--lock-timeout"),
        "{err}"
    );
    assert_eq!(
        t.vault_bytes(),
        before,
        "a timed-out writer changed the vault"
    );
    // Readers take no lock.
    assert_eq!(t.ok(&["get", "-n", "a"], ""), CANARY);
    // A patient writer waits for the holder and then adds on top of its change.
    t.ok(&["--lock-timeout", "60s", "add", "c"], "x");
    let out = holder.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = entry_names(&t);
    for n in ["a", "slow", "c"] {
        assert!(names.contains(n), "{n} lost: {names:?}");
    }
    assert!(!names.contains("b"));
}
