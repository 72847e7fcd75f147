//! Hostile vault headers (SPEC §3): a file that asks for 64 GiB of memory, 2^32 iterations, 0 or
//! 2^24 lanes, an unknown KDF, format version or slot kind, or an odd salt size is refused with
//! exit 6 and one clear line, before the KDF runs or allocates; so is a file with more than one
//! key slot of a kind (each would cost a KDF run). Every case runs under an
//! address-space limit (`prlimit --as`) far below what the header asks for, beside a control
//! showing the same limit lets an honest vault open.

mod hardening;
mod support;
use hardening::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Address-space limit for every run: an honest cheap vault opens within it (checked).
const AS_LIMIT: u64 = 128 << 20;
/// A run that takes this long has started paying a hostile cost: the test fails.
const HANG: Duration = Duration::from_secs(30);

// Offsets in a file with one slot (docs/FORMAT.md).
const VERSION_AT: usize = 8;
const SLOT_COUNT_AT: usize = 34;
const SLOT_KIND_AT: usize = 35;
const KDF_ID_AT: usize = 36;
const MEMORY_AT: usize = 37;
const ITERATIONS_AT: usize = 41;
const LANES_AT: usize = 45;
const SALT_LEN_AT: usize = 49;
const SALT_AT: usize = 50;

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Runs `jeton ARGS` on `bytes` under the memory limit; returns (exit, stderr, elapsed).
fn run_limited(bytes: &[u8], args: &[&str], stdin: &str) -> (i32, String, Duration, Vec<u8>) {
    let t = TestVault::empty();
    std::fs::create_dir_all(t.vault_path().parent().unwrap()).unwrap();
    std::fs::write(t.vault_path(), bytes).unwrap();
    let jeton = t.cmd();
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={AS_LIMIT}"))
        .arg("--")
        .arg(jeton.get_program())
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in jeton.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let started = Instant::now();
    let mut child = c.spawn().expect("prlimit (util-linux)");
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    }
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("jeton {args:?} was still running after {HANG:?}: the hostile cost was paid");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let out = child.wait_with_output().unwrap();
    support::assert_no_panic(&out);
    let after = std::fs::read(t.vault_path()).unwrap();
    (
        exit_of(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
        after,
    )
}

fn honest_vault() -> Vec<u8> {
    let t = TestVault::new();
    t.add("svc/token", CANARY, &["--scope", "read"]);
    t.vault_bytes()
}

/// Resizes the salt of the first slot to `len` bytes (the length byte says `len`).
fn with_salt_len(base: &[u8], len: usize) -> Vec<u8> {
    let old = usize::from(base[SALT_LEN_AT]);
    let mut b = base[..SALT_AT].to_vec();
    b[SALT_LEN_AT] = len as u8;
    b.extend(std::iter::repeat_n(0x5a, len));
    b.extend_from_slice(&base[SALT_AT + old..]);
    b
}

/// Inserts copies of the first slot after it, one per kind byte in `kinds`, and fixes the
/// slot count. The copies keep the first slot's KDF costs.
fn with_extra_slots(base: &[u8], kinds: &[u8]) -> Vec<u8> {
    let slot_len = 1 + 1 + 12 + 1 + usize::from(base[SALT_LEN_AT]) + 12 + 48;
    let first = &base[SLOT_KIND_AT..SLOT_KIND_AT + slot_len];
    let mut b = base[..SLOT_KIND_AT + slot_len].to_vec();
    b[SLOT_COUNT_AT] += kinds.len() as u8;
    for &k in kinds {
        b.push(k);
        b.extend_from_slice(&first[1..]);
    }
    b.extend_from_slice(&base[SLOT_KIND_AT + slot_len..]);
    b
}

#[test]
fn hostile_headers_are_refused_before_any_work() {
    require("prlimit (util-linux)", runs("prlimit", &["--version"]));
    let base = honest_vault();
    // The control: under the same limit an honest vault opens.
    let (code, err, _, _) = run_limited(&base, &["get", "-n", "svc/token"], "");
    assert_eq!(
        code, 0,
        "an honest vault does not open under the limit: {err}"
    );

    let mut cases: Vec<(String, Vec<u8>, &str)> = Vec::new();
    let mut field = |what: &str, at: usize, v: u32, expect: &'static str| {
        let mut b = base.clone();
        put_u32(&mut b, at, v);
        cases.push((what.to_owned(), b, expect));
    };
    let kdf = "refusing KDF parameters";
    field("64 GiB of memory", MEMORY_AT, 64 << 20, kdf);
    field("u32::MAX KiB of memory", MEMORY_AT, u32::MAX, kdf);
    field("4 GiB + 1 KiB of memory", MEMORY_AT, (4 << 20) + 1, kdf);
    field("no memory", MEMORY_AT, 0, kdf);
    field("1 MiB of memory", MEMORY_AT, 1024, kdf);
    field("2^32-1 iterations", ITERATIONS_AT, u32::MAX, kdf);
    field("17 iterations", ITERATIONS_AT, 17, kdf);
    field("0 iterations", ITERATIONS_AT, 0, kdf);
    field("0 lanes", LANES_AT, 0, kdf);
    field("2^24 lanes", LANES_AT, 1 << 24, kdf);
    field("17 lanes", LANES_AT, 17, kdf);
    let corrupt = "corrupt or has been tampered with";
    let mut byte = |what: &str, at: usize, v: u8, expect: &'static str| {
        let mut b = base.clone();
        b[at] = v;
        cases.push((what.to_owned(), b, expect));
    };
    for id in [0u8, 2, 0x10, 0xff] {
        byte(&format!("KDF id {id}"), KDF_ID_AT, id, "unknown KDF");
    }
    for kind in [0u8, 3, 0xff] {
        byte(&format!("slot kind {kind}"), SLOT_KIND_AT, kind, corrupt);
    }
    for n in [0u8, 9, 0xff] {
        byte(&format!("{n} slots"), SLOT_COUNT_AT, n, corrupt);
    }
    for v in [0u16, 4, 0x100, u16::MAX] {
        let mut b = base.clone();
        b[VERSION_AT..VERSION_AT + 2].copy_from_slice(&v.to_le_bytes());
        cases.push((
            format!("format version {v}"),
            b,
            "unsupported vault format version",
        ));
    }
    for len in [0usize, 1, 15, 65, 128, 255] {
        cases.push((
            format!("{len}-byte salt"),
            with_salt_len(&base, len),
            "salt length out of range",
        ));
        // The length byte alone changed: the rest of the file no longer lines up.
        let mut b = base.clone();
        b[SALT_LEN_AT] = len as u8;
        cases.push((format!("salt length byte {len}"), b, ""));
    }
    assert_eq!(base[SALT_LEN_AT], 32, "offsets assume a 32-byte salt");
    let payload_len_at = 186;
    for v in [u64::MAX, 1 << 40, (1 << 30) + 1, 0, 15] {
        let mut b = base.clone();
        b[payload_len_at..payload_len_at + 8].copy_from_slice(&v.to_le_bytes());
        cases.push((format!("payload length {v}"), b, corrupt));
    }

    // Several slots of one kind would each cost a KDF run to try. Their memory cost (2 GiB)
    // is within bounds but above the process limit: a KDF run would fail with "out of memory"
    // (exit 1), so exit 6 shows the file was refused before any ran.
    let mut costly = base.clone();
    put_u32(&mut costly, MEMORY_AT, 2 << 20);
    for (what, kinds) in [
        ("7 passphrase slots", &[1u8; 6][..]),
        ("2 passphrase slots", &[1]),
        ("2 recovery slots", &[2, 2]),
    ] {
        cases.push((
            what.to_owned(),
            with_extra_slots(&costly, kinds),
            "two key slots of one kind",
        ));
    }

    let mut slowest = Duration::ZERO;
    for (what, bytes, expect) in &cases {
        for args in [&["get", "svc/token"][..], &["add", "new"][..]] {
            let (code, err, elapsed, after) = run_limited(bytes, args, "secret");
            slowest = slowest.max(elapsed);
            assert_eq!(code, 6, "{what}: jeton {args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
            assert!(err.starts_with("jeton: error: "), "{what}: {err}");
            assert!(err.contains(expect), "{what}: expected '{expect}': {err}");
            assert!(!err.contains(CANARY));
            assert_eq!(&after, bytes, "{what}: the file was modified");
        }
    }
    eprintln!(
        "{} hostile headers refused under a {} MiB address-space limit; slowest run {slowest:?}",
        cases.len(),
        AS_LIMIT >> 20
    );
}

#[test]
fn a_cost_within_bounds_but_above_the_memory_limit_fails_cleanly() {
    require("prlimit (util-linux)", runs("prlimit", &["--version"]));
    let mut b = honest_vault();
    // 2 GiB is within SPEC §3's bounds on this machine but far above the process limit: the
    // allocation fails and jeton says so instead of aborting.
    put_u32(&mut b, MEMORY_AT, 2 << 20);
    let (code, err, _, after) = run_limited(&b, &["get", "svc/token"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("out of memory"), "{err}");
    assert_eq!(after, b);
}
