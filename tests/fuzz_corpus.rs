//! Replays the fuzzing corpus (fuzz/corpus/TARGET/*) through the same checks as the fuzz
//! targets in fuzz/fuzz_targets/, on the stable toolchain: a smoke run of every parser on the
//! inputs coverage-guided fuzzing kept, plus the crashes it once found (none so far).
//!
//! `cargo test --test fuzz_corpus -- --ignored write_payload_seeds` regenerates the payload
//! seeds from vaults built through the real binary.

mod support;
use jeton::format::VaultFile;
use jeton::secret::Passphrase;
use jeton::vault::{Payload, Vault};
use std::path::{Path, PathBuf};
use support::*;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the {target} corpus is empty: {}",
        dir.display()
    );
    files
}

/// What fuzz/fuzz_targets/vault_file.rs checks.
fn vault_file_target(data: &[u8]) -> bool {
    match VaultFile::parse(data) {
        Ok(file) => {
            let len = file.ciphertext.len() as u64;
            assert_eq!(file.header.encode(len), file.header_bytes);
            assert_eq!(file.to_bytes(), data);
            true
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 6, "{e}");
            false
        }
    }
}

/// What fuzz/fuzz_targets/payload.rs checks.
fn payload_target(data: &[u8]) -> bool {
    match Payload::decode(data) {
        Ok(p) => {
            let once = p.encode().unwrap();
            let again = Payload::decode(&once).unwrap();
            assert_eq!(*again.encode().unwrap(), *once);
            true
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 6, "{e}");
            false
        }
    }
}

fn replay(target: &str, check: fn(&[u8]) -> bool) {
    let files = corpus(target);
    let mut accepted = 0;
    for (path, bytes) in &files {
        let ok = std::panic::catch_unwind(|| check(bytes))
            .unwrap_or_else(|_| panic!("{target} panicked on {}", path.display()));
        accepted += usize::from(ok);
        // Truncations of every corpus input take the error paths too.
        for cut in [0, 1, bytes.len() / 2, bytes.len().saturating_sub(1)] {
            let _ = check(&bytes[..cut.min(bytes.len())]);
        }
    }
    eprintln!(
        "{target}: {} inputs replayed, {accepted} accepted",
        files.len()
    );
    assert!(accepted > 0, "no valid {target} input in the corpus");
}

#[test]
fn vault_file_corpus_replays_cleanly() {
    replay("vault_file", vault_file_target);
}

#[test]
fn payload_corpus_replays_cleanly() {
    replay("payload", payload_target);
}

/// A vault with every kind of payload content the CLI can produce today.
fn rich_vault() -> TestVault {
    let t = TestVault::new();
    t.add(
        "github/ci-deploy",
        CANARY,
        &[
            "--scope",
            "repo",
            "--scope",
            "workflow",
            "--url",
            "https://github.com",
            "--username",
            "bot",
            "--issuer",
            "GitHub",
            "--contact",
            "Ops <ops@example.com>",
            "--used-by",
            "ci:github-actions:DEPLOY_TOKEN",
            "--tag",
            "ci",
            "--note",
            "deploy key",
            "--expires",
            "2030-01-01",
            "--rotate-every",
            "90d",
        ],
    );
    t.ok(&["rotate", "github/ci-deploy"], "second value");
    t.add("old/one", "x", &[]);
    t.ok(&["disable", "old/one"], "");
    t.add("old/two", "y", &[]);
    t.ok(&["--yes", "revoke", "old/two", "--reason", "leaked"], "");
    t.add("gone", "z", &[]);
    t.ok(&["--yes", "rm", "gone"], "");
    t
}

#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_payload_seeds() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let t = rich_vault();
    let bytes = t.vault_bytes();
    let file = VaultFile::parse(&bytes).unwrap();
    let key = Vault::unlock(&file, &Passphrase::new(PASS.into())).unwrap();
    let v = Vault::open(&file, key).unwrap();
    std::fs::write(out.join("payload/seed-rich"), &*v.payload.encode().unwrap()).unwrap();
    std::fs::write(
        out.join("payload/seed-empty"),
        &*Payload::default().encode().unwrap(),
    )
    .unwrap();
    std::fs::write(out.join("vault_file/seed-rich"), &bytes).unwrap();
}
