//! Committed format test vectors (tests/data/): a v1 vault, and a v3 vault and replica. Every
//! later version of jeton must still read them. `tests/data/README.md` says how they were made.

mod support;
use jeton::entry::Status;
use jeton::format::{SlotKind, VaultFile};
use jeton::kdf::KdfParams;
use jeton::secret::Passphrase;
use jeton::vault::Vault;

const VECTOR: &[u8] = include_bytes!("data/v1-basic.jeton");
const VECTOR_PASS: &str = "jeton format v1 test vector";

#[test]
fn v1_basic_header_fields() {
    let f = VaultFile::parse(VECTOR).unwrap();
    assert_eq!(&VECTOR[..8], b"JETONVLT");
    assert_eq!(u16::from_le_bytes([VECTOR[8], VECTOR[9]]), 1);
    assert_eq!(f.header.generation, 7);
    assert_eq!(f.header.slots.len(), 1);
    let slot = &f.header.slots[0];
    assert_eq!(slot.kind, SlotKind::Passphrase);
    assert_eq!(
        slot.kdf,
        KdfParams {
            memory_kib: 8192,
            iterations: 1,
            lanes: 1
        }
    );
    assert_eq!(slot.salt.len(), 32);
    // Offsets documented in docs/FORMAT.md for a file with one 32-byte-salt slot.
    assert_eq!(&VECTOR[10..26], &f.header.vault_id);
    assert_eq!(VECTOR[34], 1, "slot count");
    assert_eq!(&VECTOR[50..82], &slot.salt[..]);
    assert_eq!(&VECTOR[142..154], &f.header.payload_nonce);
    assert_eq!(&VECTOR[154..186], &f.header.commitment);
    let payload_len = u64::from_le_bytes(VECTOR[186..194].try_into().unwrap());
    assert_eq!(payload_len as usize, VECTOR.len() - 194);
    assert_eq!(f.header_bytes.len(), 194);
}

#[test]
fn v1_basic_content() {
    let f = VaultFile::parse(VECTOR).unwrap();
    assert!(Vault::unlock(&f, &Passphrase::new("wrong".into())).is_err());
    let key = Vault::unlock(&f, &Passphrase::new(VECTOR_PASS.into())).unwrap();
    let v = Vault::open(&f, key).unwrap();
    let p = &v.payload;
    assert_eq!(p.settings.owner.as_deref(), Some("alice"));
    assert_eq!(
        p.settings.default_contact.as_deref(),
        Some("Ops <ops@example.com>")
    );
    assert_eq!(p.settings.history_limit, 10);
    assert_eq!(
        p.entries
            .values()
            .unwrap()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["aws/prod-eu", "github/ci-deploy"]
    );
    let gh = p.entries.get("github/ci-deploy").unwrap().unwrap();
    assert_eq!(
        gh.secret.as_ref().unwrap().expose_secret(),
        "ghp_vector_0123456789abcdefghijklmnopqrstuv"
    );
    assert_eq!(gh.scopes, ["repo", "workflow"]);
    assert_eq!(gh.url.as_deref(), Some("https://github.com"));
    assert_eq!(gh.username.as_deref(), Some("ci-bot"));
    assert_eq!(gh.issuer.as_deref(), Some("GitHub"));
    assert_eq!(gh.used_by, ["ci:github-actions:DEPLOY_TOKEN"]);
    assert_eq!(gh.tags, ["ci"]);
    assert_eq!(gh.note.as_deref(), Some("vector entry"));
    assert_eq!(gh.expires_at, Some(1_801_353_600));
    assert_eq!(gh.rotate_every, Some(90 * 86_400));
    assert_eq!(gh.status, Status::Active);
    assert_eq!(gh.revision, 1);
    let aws = p.entries.get("aws/prod-eu").unwrap().unwrap();
    assert_eq!(
        aws.secret.as_ref().unwrap().expose_secret(),
        "line one\nline two"
    );
    assert_eq!(aws.contact.as_deref(), Some("Cloud <cloud@example.com>"));
    assert_eq!(aws.tags, ["prod"]);
    assert_eq!(aws.revision, 3);
    assert_eq!(p.deletions.len(), 1);
    let actions: Vec<&str> = p.audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["init", "add", "add", "add", "rm", "edit", "rename"]
    );
}

/// A second reader written only from docs/FORMAT.md, with the primitives' own crates: if this
/// and the document disagree, the document is wrong. Opens a vault file with one passphrase slot as docs/FORMAT.md describes it: its plaintext.
fn independent_open(b: &[u8], pass: &str) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let (vault_id, slot_count) = (&b[10..26], b[34]);
    // The passphrase slot (kind 1) is the first; any other slot (a recovery key) follows it.
    let (slot_kind, kdf_id) = (b[35], b[36]);
    assert_eq!((slot_kind, kdf_id), (1, 1));
    let (m, t, p, salt_len) = (u32_at(37), u32_at(41), u32_at(45), b[49] as usize);
    let salt = &b[50..50 + salt_len];
    let mut o = 50 + salt_len;
    let wrap_nonce: [u8; 12] = b[o..o + 12].try_into().unwrap();
    let wrapped = &b[o + 12..o + 60];
    let slot_end = o + 60;
    o = slot_end;
    for _ in 1..slot_count {
        // kind, KDF id, m, t, p, salt length, salt, nonce, wrapped key.
        o += 1 + 1 + 12 + 1 + b[o + 14] as usize + 12 + 48;
    }
    let payload_nonce: [u8; 12] = b[o..o + 12].try_into().unwrap();
    let commitment = &b[o + 12..o + 44];
    o += 44 + 8;
    let (header, ciphertext) = (&b[..o], &b[o..]);

    let mut kek = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(m, t, p, Some(32)).unwrap(),
    )
    .hash_password_into(pass.as_bytes(), salt, &mut kek)
    .unwrap();
    // Slot associated data: label, vault id, slot kind, KDF id, m, t, p, salt length, salt.
    let slot_aad = [&b"jeton/v1/key-slot"[..], vault_id, &b[35..50 + salt_len]].concat();
    let _ = slot_end;
    let vault_key = aes_gcm::Aes256Gcm::new((&kek).into())
        .decrypt(
            (&wrap_nonce).into(),
            Payload {
                msg: wrapped,
                aad: &slot_aad,
            },
        )
        .unwrap();
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(vault_id), &vault_key);
    let mut expect_commit = [0u8; 32];
    hk.expand(b"jeton/v1/key-commitment", &mut expect_commit)
        .unwrap();
    assert_eq!(&expect_commit[..], commitment);
    let mut payload_key = [0u8; 32];
    hk.expand(b"jeton/v1/payload-key", &mut payload_key)
        .unwrap();
    aes_gcm::Aes256Gcm::new((&payload_key).into())
        .decrypt(
            (&payload_nonce).into(),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .unwrap()
}

/// A second reader written only from docs/FORMAT.md, with the primitives' own crates: if this
/// test and the document disagree, the document is wrong.
#[test]
fn v1_basic_opens_with_an_independent_reader() {
    let plain = independent_open(VECTOR, VECTOR_PASS);
    // The payload is postcard; the secrets appear as plain UTF-8 inside it.
    let text = String::from_utf8_lossy(&plain);
    assert!(text.contains("ghp_vector_0123456789abcdefghijklmnopqrstuv"));
    assert!(text.contains("github/ci-deploy"));
}

#[test]
fn v1_basic_through_the_binary() {
    let t = support::TestVault::empty();
    std::fs::create_dir_all(t.vault_path().parent().unwrap()).unwrap();
    std::fs::write(t.vault_path(), VECTOR).unwrap();
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", VECTOR_PASS);
    let out = t.run_with(c, &["get", "github/ci-deploy"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ghp_vector_0123456789abcdefghijklmnopqrstuv\n"
    );
}

const V3_VAULT: &[u8] = include_bytes!("data/sync-v3/a.jeton");
const V3_REPLICA: &[u8] = include_bytes!("data/sync-v3/replica-b.jeton");
const V3_PASS: &str = "jeton format v3 test vector";

fn open_v3(bytes: &[u8]) -> Vault {
    let file = VaultFile::parse(bytes).unwrap();
    assert_eq!(file.header.version, 3);
    let key = Vault::unlock(&file, &Passphrase::new(V3_PASS.into())).unwrap();
    Vault::open(&file, key).unwrap()
}

#[test]
fn v3_vault_and_replica_keep_their_sync_records() {
    use jeton::sync::field::{Field, display, value};
    use jeton::sync::round::Record;
    let v = open_v3(V3_VAULT);
    let r = Record::of(&v).unwrap().unwrap();
    // What is read is written back byte for byte: the record's layout did not move.
    assert_eq!(&*r.encode().unwrap(), v.sync_record().unwrap());
    assert_eq!(r.name, "vec-a");
    assert_eq!(jeton::share::hex(&r.state.device)[..8], *"2a9530f6");
    let local = r.local.as_ref().expect("a device's own vault");
    let heard: Vec<(String, &str)> = (local.devices.iter())
        .map(|(d, h)| (jeton::share::hex(d), h.name.as_str()))
        .collect();
    assert_eq!(heard.len(), 1);
    assert!(heard[0].0.starts_with("d61a03c2") && heard[0].1 == "vec-b");
    assert_eq!((local.published, local.confirmed), (4, 3));
    let e = v.entry("svc/api").unwrap();
    assert_eq!(e.note.as_deref(), Some("note from b"));
    assert_eq!(e.tags, ["b", "ci"]);
    let t = &r.state.entries[&e.id];
    assert_eq!(t.siblings.len(), 1);
    assert_eq!(
        (t.siblings[0].field, t.siblings[0].display()),
        (Field::Note, "note from a".into())
    );
    assert!(jeton::share::hex(&t.siblings[0].write.device()).starts_with("2a9530f6"));
    assert_eq!(
        t.fields.digest(Field::Note),
        jeton::sync::field::digest(&value(e, Field::Note).unwrap())
    );
    assert_eq!(
        display(Field::Url, &value(e, Field::Url).unwrap()),
        "https://api.example.com"
    );
    // The url is still the creation's write (A's); the note is B's.
    assert_eq!(t.fields.write(Field::Url), t.fields.base);
    assert!(jeton::share::hex(&t.fields.write(Field::Note).device()).starts_with("d61a03c2"));

    let replica = open_v3(V3_REPLICA);
    let rr = Record::of(&replica).unwrap().unwrap();
    assert_eq!(&*rr.encode().unwrap(), replica.sync_record().unwrap());
    assert!(rr.local.is_none());
    assert_eq!(rr.name, "vec-b");
    // B published after merging A: the same current note, A's waiting beside it.
    let e = replica.entry("svc/api").unwrap();
    assert_eq!(e.note.as_deref(), Some("note from b"));
    assert_eq!(rr.state.entries[&e.id].siblings, t.siblings);
}

/// The replica with the second reader: format 3 is format 1's file with version 3, and the
/// plaintext ends with the record's last fields: `local` (`None`: 0) and the device's name
/// (a length, then UTF-8), after the payload and the state.
#[test]
fn v3_replica_opens_with_an_independent_reader() {
    assert_eq!(u16::from_le_bytes([V3_REPLICA[8], V3_REPLICA[9]]), 3);
    let plain = independent_open(V3_REPLICA, V3_PASS);
    assert!(
        plain.ends_with(b"\x00\x05vec-b"),
        "{:?}",
        &plain[plain.len() - 12..]
    );
    let text = String::from_utf8_lossy(&plain);
    assert!(text.contains("tok_v3_api_0123456789") && text.contains("note from a"));
    // The state starts with the device id, right where the payload ends; the device id is in
    // the replica's file name.
    let device = [0xd6, 0x1a, 0x03, 0xc2, 0x1b, 0x31, 0xa9, 0x8a];
    assert!(plain.windows(8).any(|w| w == device));
}

const V3_DELTA: &[u8] = include_bytes!("data/sync-v3/delta-a.4.jeton");
const V3_SNAPSHOT: &[u8] = include_bytes!("data/sync-v3/snapshot-a.jeton");
const V3_DELTA_PASS: &str = "jeton format v3 delta vector";

/// A delta and the snapshot before it (one device, a folder remote): the delta holds the one
/// entry changed after the snapshot, says since which generation, and reads back byte for byte.
#[test]
fn v3_delta_holds_what_changed_after_its_snapshot() {
    use jeton::sync::round::{Record, parse_name};
    let open = |bytes: &[u8]| {
        let file = VaultFile::parse(bytes).unwrap();
        let key = Vault::unlock(&file, &Passphrase::new(V3_DELTA_PASS.into())).unwrap();
        (file.header.generation, Vault::open(&file, key).unwrap())
    };
    let (g, delta) = open(V3_DELTA);
    assert_eq!(g, 4);
    let (d, generation) = parse_name("dac16ef573d2cc0dfc806c498d11e8af.4.jeton").unwrap();
    assert_eq!(generation, Some(g));
    let r = Record::of(&delta).unwrap().unwrap();
    assert_eq!(&*r.encode().unwrap(), delta.sync_record().unwrap());
    assert_eq!((r.state.device, r.name.as_str()), (d, "vec-a"));
    assert_eq!(r.extra.since, Some(3));
    assert!(r.local.is_none());
    let names: Vec<String> = (delta.payload.entries.values().unwrap())
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(names, ["svc/second"]);
    assert_eq!(r.state.entries.len(), 1);
    let e = delta.entry("svc/second").unwrap();
    assert_eq!(e.note.as_deref(), Some("only in the delta"));
    // The snapshot holds both entries and no `since`.
    let (s, snapshot) = open(V3_SNAPSHOT);
    assert_eq!(s, 3);
    let rs = Record::of(&snapshot).unwrap().unwrap();
    assert_eq!(rs.extra.since, None);
    assert_eq!(snapshot.payload.entries.len(), 2);
    assert_eq!(
        snapshot.entry("svc/first").unwrap().note.as_deref(),
        Some("not in the delta")
    );
}

/// The delta with the second reader: after the name comes the record's `Extra` (FORMAT.md,
/// "Sync record"): `since` Some(3), then every other field empty.
#[test]
fn v3_delta_opens_with_an_independent_reader() {
    let plain = independent_open(V3_DELTA, V3_DELTA_PASS);
    let mut tail = b"\x00\x05vec-a\x01\x03\x00\x00".to_vec();
    tail.extend([0u8; 32]);
    tail.extend([0, 0, 0, 0]);
    assert!(
        plain.ends_with(&tail),
        "{:?}",
        &plain[plain.len() - tail.len()..]
    );
    let text = String::from_utf8_lossy(&plain);
    assert!(text.contains("tok_v3_delta_second_0123456789"));
    assert!(!text.contains("tok_v3_delta_first_0123456789"));
}
