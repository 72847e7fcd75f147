//! Any change to any byte of the vault file is detected (SPEC §3): every command fails with
//! exit 3 or 6, never panics, never prints a secret, and never modifies the file.

mod support;
use support::*;

/// Runs `check` over every item of `cases`, spread over two threads.
fn in_parallel<T: Sync>(cases: &[T], check: impl Fn(&T) + Sync) {
    let half = cases.len().div_ceil(2);
    std::thread::scope(|s| {
        for chunk in cases.chunks(half.max(1)) {
            let check = &check;
            s.spawn(move || chunk.iter().for_each(check));
        }
    });
}

/// A small vault with one entry holding the canary.
fn small_vault() -> TestVault {
    let t = TestVault::new();
    t.add(
        "svc/token",
        CANARY,
        &["--scope", "read", "--url", "https://svc.example"],
    );
    t
}

/// Puts `bytes` into a fresh copy of `base`'s HOME and runs `args`; asserts the outcome.
fn assert_refused(base: &TestVault, bytes: &[u8], args: &[&str], stdin: &str, what: &str) {
    let t = TestVault::empty();
    std::fs::create_dir_all(t.vault_path().parent().unwrap()).unwrap();
    std::fs::write(t.vault_path(), bytes).unwrap();
    let _ = base;
    let out = t.run(args, stdin);
    let code = out.status.code();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(code, Some(3 | 6)),
        "{what}: jeton {args:?} exited {code:?}: {stderr}"
    );
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "{what}: secret printed"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "{what}: expected one error line, got: {stderr}"
    );
    assert_eq!(
        std::fs::read(t.vault_path()).unwrap(),
        bytes,
        "{what}: vault modified"
    );
}

#[test]
fn every_single_byte_flip_is_detected_by_reads_and_writes() {
    let t = small_vault();
    let good = t.vault_bytes();
    let offsets: Vec<usize> = (0..good.len()).collect();
    in_parallel(&offsets, |&i| {
        let mut bad = good.clone();
        bad[i] ^= 0xff;
        assert_refused(&t, &bad, &["get", "svc/token"], "", &format!("flip at {i}"));
        assert_refused(
            &t,
            &bad,
            &["add", "new"],
            "value",
            &format!("flip at {i} (write)"),
        );
    });
}

#[test]
fn every_truncation_and_appended_garbage_is_detected() {
    let t = small_vault();
    let good = t.vault_bytes();
    let mut cases: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    for extra in [&b"\0"[..], b"garbage", &[0u8; 4096]] {
        cases.push([&good[..], extra].concat());
    }
    in_parallel(&cases, |bad| {
        assert_refused(&t, bad, &["list"], "", &format!("length {}", bad.len()));
    });
}

#[test]
fn a_whole_other_vault_spliced_in_is_refused() {
    // Same passphrase, different vault: swapping the payload between two files must fail.
    let a = small_vault();
    let b = small_vault();
    let fa = jeton::format::VaultFile::parse(&a.vault_bytes()).unwrap();
    let fb = jeton::format::VaultFile::parse(&b.vault_bytes()).unwrap();
    let spliced = [&fa.header_bytes[..], &fb.ciphertext[..]].concat();
    if spliced.len() == fa.to_bytes().len() {
        assert_refused(&a, &spliced, &["get", "svc/token"], "", "spliced payload");
    }
    let header_swap = [&fb.header_bytes[..], &fa.ciphertext[..]].concat();
    assert_refused(
        &a,
        &header_swap,
        &["get", "svc/token"],
        "",
        "spliced header",
    );
}
