//! The committed bundle vector, read by a second reader written only from docs/FORMAT.md
//! ("Bundles"): age decryption, the envelope, the signature input with its label, the body, the
//! card and its fingerprint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

fn plaintext() -> Vec<u8> {
    let key_file = String::from_utf8(data("bundle-v1-recipient.key")).unwrap();
    let key_line = key_file
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap();
    let identity: age::x25519::Identity = key_line.parse().unwrap();
    let bundle = data("bundle-v1.age");
    let decryptor = age::Decryptor::new(&bundle[..]).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

fn fingerprint(age: &str, key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"jeton/v1/contact-fingerprint");
    for field in [age.as_bytes(), key, b""] {
        h.update((field.len() as u16).to_be_bytes());
        h.update(field);
    }
    let hex: String = h.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn bundle_vector_follows_the_documented_format() {
    let plain = plaintext();
    let envelope: Value = serde_json::from_slice(&plain).unwrap();
    let members: Vec<&String> = envelope.as_object().unwrap().keys().collect();
    assert_eq!(members, ["body", "format", "signature"]);
    assert_eq!(envelope["format"], "jeton-bundle-v1");
    let body_text = envelope["body"].as_str().unwrap();
    let sig: [u8; 64] = STANDARD_NO_PAD
        .decode(envelope["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();

    let body: Value = serde_json::from_str(body_text).unwrap();
    let card = body["sender"].as_str().unwrap();
    let words: Vec<&str> = card.split(' ').collect();
    assert_eq!(words[0], "jeton-card-v1");
    assert_eq!(words[3], "alice");
    let key: [u8; 32] = STANDARD_NO_PAD
        .decode(words[2])
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(fingerprint(words[1], &key), "7585 db11 e80e 1fa8 7125");

    // Signature input: the 25-byte label, then the body bytes exactly as carried.
    let mut message = b"jeton/v1/bundle-signature".to_vec();
    message.extend_from_slice(body_text.as_bytes());
    let vk = VerifyingKey::from_bytes(&key).unwrap();
    vk.verify_strict(&message, &Signature::from_bytes(&sig))
        .unwrap();
    // Without the label, or with one body byte changed, it does not verify.
    assert!(
        vk.verify_strict(body_text.as_bytes(), &Signature::from_bytes(&sig))
            .is_err()
    );
    let mut altered = message.clone();
    *altered.last_mut().unwrap() ^= 1;
    assert!(
        vk.verify_strict(&altered, &Signature::from_bytes(&sig))
            .is_err()
    );

    assert_eq!(body["version"], 1);
    assert_eq!(body["kind"], "entries");
    assert_eq!(body["id"], "1c909043a921656c1d9f1d0d7a3d4e32");
    assert_eq!(body["created_at"], "2026-11-28T03:04:47Z");
    assert_eq!(body["expires_at"], "2026-11-29T03:04:47Z");
    assert_eq!(body["revocations"], Value::Array(vec![]));
    let recipients = body["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0]["name"], "eve");
    assert!(recipients[0]["ssh_recipient"].is_null());
    let key_file = String::from_utf8(data("bundle-v1-recipient.key")).unwrap();
    let public = key_file
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    assert_eq!(recipients[0]["age_recipient"], public);
    let e = &body["entries"][0];
    assert_eq!(e["name"], "demo/api");
    assert_eq!(e["secret"], "tok_vector_0123456789");
    assert_eq!(e["scopes"][0], "read");
    assert_eq!(e["url"], "https://api.example.com");
    assert_eq!(e["note"], "bundle vector");
    assert_eq!(e["id"].as_str().unwrap().len(), 32);
}
