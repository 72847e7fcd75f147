//! Committed format v1 test vectors (tests/data/). Every later version of jeton must still read
//! them. `tests/data/README.md` says how they were made.

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
/// test and the document disagree, the document is wrong.
#[test]
fn v1_basic_opens_with_an_independent_reader() {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let b = VECTOR;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let (vault_id, slot_kind, kdf_id) = (&b[10..26], b[35], b[36]);
    assert_eq!((slot_kind, kdf_id), (1, 1));
    let (m, t, p, salt_len) = (u32_at(37), u32_at(41), u32_at(45), b[49] as usize);
    let salt = &b[50..50 + salt_len];
    let mut o = 50 + salt_len;
    let wrap_nonce: [u8; 12] = b[o..o + 12].try_into().unwrap();
    let wrapped = &b[o + 12..o + 60];
    o += 60;
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
    .hash_password_into(VECTOR_PASS.as_bytes(), salt, &mut kek)
    .unwrap();
    // Slot associated data: label, vault id, slot kind, KDF id, m, t, p, salt length, salt.
    let slot_aad = [&b"jeton/v1/key-slot"[..], vault_id, &b[35..50 + salt_len]].concat();
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
    let plain = aes_gcm::Aes256Gcm::new((&payload_key).into())
        .decrypt(
            (&payload_nonce).into(),
            Payload {
                msg: ciphertext,
                aad: header,
            },
        )
        .unwrap();
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
