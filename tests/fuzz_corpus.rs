//! Replays the fuzzing corpus (fuzz/corpus/TARGET/*) through the same checks as the fuzz
//! targets in fuzz/fuzz_targets/, on the stable toolchain: a smoke run of every parser on the
//! inputs coverage-guided fuzzing kept, plus the crashes it once found (none so far).
//!
//! `cargo test --test fuzz_corpus -- --ignored write_payload_seeds` regenerates the payload
//! seeds from vaults built through the real binary.

#[path = "../fuzz/common/agent_frame.rs"]
mod agent_frame_target;
#[path = "../fuzz/common/bundle.rs"]
mod bundle_target;
mod support;
#[path = "../fuzz/common/sync_record.rs"]
mod sync_record_target;
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
            // Untouched, entries are copied as read; the copy decodes.
            let copied = p.encode().unwrap();
            Payload::decode(&copied).unwrap();
            // Every entry the open-time walk accepted decodes in full, and once decoded each
            // is encoded from its value: that encoding is a fixed point.
            assert_eq!(p.entries.values().unwrap().count(), p.entries.len());
            let once = p.encode().unwrap();
            let again = Payload::decode(&once).unwrap();
            assert_eq!(again.entries.values().unwrap().count(), again.entries.len());
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

#[test]
fn agent_frame_corpus_replays_cleanly() {
    replay("agent_frame", |d| agent_frame_target::run(d) > 0);
}

#[test]
fn bundle_corpus_replays_cleanly() {
    replay("bundle", bundle_target::run);
}

#[test]
fn sync_record_corpus_replays_cleanly() {
    replay("sync_record", sync_record_target::run);
    // Without a fuzzer at hand: every single-byte change of every seed, too.
    for (path, bytes) in corpus("sync_record") {
        for i in 1..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut m = bytes.clone();
                m[i] ^= flip;
                std::panic::catch_unwind(|| sync_record_target::run(&m)).unwrap_or_else(|_| {
                    panic!("{}: byte {i} ^ {flip:#x} panicked", path.display())
                });
            }
        }
    }
}

/// Seeds for the sync record target: the record of a device that synced with another, with a
/// field in conflict and a device name, in format 3 (reader byte 0) and written in format 2's
/// layout (reader byte 1).
#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_sync_record_seeds() {
    use jeton::sync::round::Record;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sync_record");
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().display().to_string();
    let a = rich_vault();
    a.ok(&["sync", "init", "--dir", &dir], "");
    let b = TestVault::empty();
    b.ok(&["sync", "clone", "--dir", &dir], "");
    a.ok(&["edit", "github/ci-deploy", "--note", "from a"], "");
    b.ok(
        &[
            "edit",
            "github/ci-deploy",
            "--note",
            "from b",
            "--add-tag",
            "b",
        ],
        "",
    );
    b.ok(&["sync", "rename-device", "second"], "");
    for t in [&a, &b, &a] {
        t.ok(&["sync"], "");
    }
    for (name, t) in [("seed-a", &a), ("seed-b", &b)] {
        let bytes = t.vault_bytes();
        let file = VaultFile::parse(&bytes).unwrap();
        let key = Vault::unlock(&file, &Passphrase::new(PASS.into())).unwrap();
        let v = Vault::open(&file, key).unwrap();
        let r = Record::of(&v).unwrap().unwrap();
        let mut seed = vec![0u8];
        seed.extend_from_slice(&r.encode().unwrap());
        std::fs::write(out.join(name), &seed).unwrap();
        // The same record in format 2's layout: no names, no forgotten devices, no registers.
        let s = &r.state;
        let entries: std::collections::BTreeMap<_, _> = (s.entries.iter())
            .map(|(id, t)| (*id, (&t.clock, t.revision, t.stamp, &t.items, t.revoked_at)))
            .collect();
        let local = r.local.as_ref().map(|l| {
            let devices: std::collections::BTreeMap<_, _> = (l.devices.iter())
                .map(|(d, h)| (*d, (h.generation, h.published_at)))
                .collect();
            (
                l.published,
                l.confirmed,
                l.commitment,
                &l.retired,
                l.published_shape,
                devices,
            )
        });
        let v2 = (
            (
                s.device,
                entries,
                &s.deletions,
                &s.contacts,
                &s.contact_removals,
                &s.settings,
            ),
            r.synced_at,
            local,
        );
        let mut seed = vec![1u8];
        seed.extend_from_slice(&postcard::to_stdvec(&v2).unwrap());
        std::fs::write(out.join(format!("{name}-v2")), &seed).unwrap();
    }
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

#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_bundle_seeds() {
    use jeton::share::bundle::{DEFAULT_EXPIRY, Kind, ShareRequest};
    use jeton::share::{SharingRequest, SharingResponse, contact, identity};
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/bundle");
    let w = bundle_target::world();
    let now = bundle_target::NOW - 60;
    // A sender sharing one entry to the fuzzing world's vault. In mode 2 the fuzz target signs
    // the body with its own sender key, so the sender's card becomes a placeholder.
    let cheap = jeton::kdf::KdfParams {
        memory_kib: 8192,
        iterations: 1,
        lanes: 1,
    };
    let mut sender = Vault::create(&Passphrase::new("seed".into()), cheap, now).unwrap();
    identity::ensure(&mut sender, now).unwrap();
    let recipient = w.recipient.to_string();
    let keys = contact::ContactKeys::from_age(&recipient).unwrap();
    jeton::share::execute(
        &mut sender,
        SharingRequest::ContactAdd {
            name: "me".into(),
            keys,
            replace: false,
        },
        now,
    )
    .unwrap();
    jeton::request::execute(
        &mut sender,
        jeton::request::Request::Add(Box::new(jeton::request::NewEntry {
            scopes: vec!["read".into()],
            url: Some("https://svc.example".into()),
            contact: Some("Ops <ops@example.com>".into()),
            tags: vec!["t".into()],
            ..jeton::request::NewEntry::new(
                "svc/token",
                jeton::request::SecretInput::Value(jeton::secret::Token::new(CANARY.into())),
            )
        })),
        now,
    )
    .unwrap();
    let SharingResponse::Bundle(b) = jeton::share::execute(
        &mut sender,
        SharingRequest::Share(ShareRequest {
            names: vec!["svc/token".into()],
            to: vec!["me".into()],
            expires_in: DEFAULT_EXPIRY,
            armor: false,
            kind: Kind::Entries,
        }),
        now,
    )
    .unwrap() else {
        panic!("expected a bundle")
    };
    std::fs::write(out.join("seed-raw-bundle"), [&[0u8][..], &b.bytes].concat()).unwrap();
    // The envelope and the body, decrypted with the world's identity.
    let me = Vault::open(&w.file, w.key.clone()).unwrap();
    let ident = identity::keys(&me).unwrap().age;
    let dec = age::Decryptor::new_buffered(&b.bytes[..]).unwrap();
    let mut plain = Vec::new();
    use std::io::Read;
    dec.decrypt(std::iter::once(&ident as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    std::fs::write(out.join("seed-envelope"), [&[1u8][..], &plain].concat()).unwrap();
    let env: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    let body = env["body"].as_str().unwrap();
    let sender_card = identity::keys(&sender)
        .unwrap()
        .card(sender.payload.settings.owner.as_deref())
        .to_line();
    let body = body
        .replace(&sender_card, "@SENDER@")
        .replace(&recipient, "@RECIPIENT@");
    assert!(
        body.contains("@SENDER@") && body.contains("@RECIPIENT@"),
        "{body}"
    );
    std::fs::write(
        out.join("seed-body"),
        [&[2u8][..], body.as_bytes()].concat(),
    )
    .unwrap();
    // The same body as revocation notice.
    let SharingResponse::Bundle(r) = jeton::share::execute(
        &mut sender,
        SharingRequest::Share(ShareRequest {
            names: vec!["svc/token".into()],
            to: vec!["me".into()],
            expires_in: DEFAULT_EXPIRY,
            armor: true,
            kind: Kind::Revocation,
        }),
        now,
    )
    .unwrap() else {
        panic!("expected a bundle")
    };
    std::fs::write(
        out.join("seed-armored-revocation"),
        [&[0u8][..], &r.bytes].concat(),
    )
    .unwrap();
}

#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_agent_frame_seeds() {
    use jeton::agent::protocol::{FromAgent, SessionSpec, ToAgent, write_frame};
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/agent_frame");
    std::fs::create_dir_all(&out).unwrap();
    let session = || SessionSpec {
        vault: "/home/u/.local/share/jeton/vault.jeton".into(),
        state_dir: Some("/home/u/.local/state/jeton".into()),
        accept_rollback: false,
        lock_timeout_ms: 10_000,
    };
    let to_agent = [
        ToAgent::Status,
        ToAgent::Lock,
        ToAgent::Stop,
        ToAgent::Unlock {
            vault: "/v".into(),
            passphrase: Passphrase::new("seed passphrase".into()),
            idle_secs: 900,
            max_secs: 28_800,
        },
        ToAgent::Run {
            session: session(),
            request: jeton::request::Request::Get { name: "a/b".into() },
        },
    ];
    let mut all = vec![0u8];
    for (i, m) in to_agent.iter().enumerate() {
        let mut frame = vec![0u8];
        write_frame(&mut frame, m).unwrap();
        all.extend_from_slice(&frame[1..]);
        std::fs::write(out.join(format!("seed-to-agent-{i}")), frame).unwrap();
    }
    std::fs::write(out.join("seed-to-agent-all"), all).unwrap();
    let from_agent = [
        FromAgent::Done,
        FromAgent::Locked {
            dropped: Some("re-keyed".into()),
        },
    ];
    for (i, m) in from_agent.iter().enumerate() {
        let mut frame = vec![1u8];
        write_frame(&mut frame, m).unwrap();
        std::fs::write(out.join(format!("seed-from-agent-{i}")), frame).unwrap();
    }
}
