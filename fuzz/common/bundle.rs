//! Shared by fuzz/fuzz_targets/bundle.rs and tests/fuzz_corpus.rs (corpus replay).
//! `import` of a hostile bundle, at three depths chosen by the first input byte:
//! 0: the raw bytes as a bundle file (age header and armor parsers);
//! 1: the bytes as the envelope, age-encrypted to the vault (envelope parser, signature check);
//! 2: the bytes as the body, signed by a contact and encrypted to the vault: what a malicious
//!    authorised sender can send (body parser, import logic). `@SENDER@` and `@RECIPIENT@` in
//!    the input become the sender's card and this vault's age recipient.
//! Never a panic; whatever is accepted must re-seal and re-open.

use ed25519_dalek::Signer;
use jeton::format::VaultFile;
use jeton::kdf::KdfParams;
use jeton::secret::{Key, Passphrase};
use jeton::share::import::{ImportRequest, OnConflict};
use jeton::share::{LABEL_BUNDLE_SIGNATURE, SharingRequest, contact, identity};
use jeton::vault::Vault;
use std::io::Write;
use std::sync::OnceLock;

/// The time every import runs at.
pub const NOW: i64 = 1_800_000_000;

/// A vault that knows one sender, sealed once; each input imports into a fresh copy.
pub struct World {
    /// The receiving vault.
    pub file: VaultFile,
    /// Its key.
    pub key: Key,
    /// Its age recipient.
    pub recipient: age::x25519::Recipient,
    /// The sender's contact card.
    pub sender_card: String,
    /// The sender's signing key.
    pub sender: ed25519_dalek::SigningKey,
}

/// Built once per process.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let cheap = KdfParams {
            memory_kib: 8192,
            iterations: 1,
            lanes: 1,
        };
        let pass = Passphrase::new("fuzz passphrase".into());
        let mut sender = Vault::create(&pass, cheap, NOW).unwrap();
        identity::ensure(&mut sender, NOW).unwrap();
        let sk = identity::keys(&sender).unwrap();
        let sender_card = sk.card(Some("sender")).to_line();
        let mut me = Vault::create(&pass, cheap, NOW).unwrap();
        identity::ensure(&mut me, NOW).unwrap();
        let keys = contact::ContactKeys::from_card(&sender_card).unwrap();
        jeton::share::execute(
            &mut me,
            SharingRequest::ContactAdd {
                name: "sender".into(),
                keys,
                replace: false,
            },
            NOW,
        )
        .unwrap();
        let recipient = identity::keys(&me).unwrap().age.to_public();
        let file = VaultFile::parse(&me.seal(0).unwrap()).unwrap();
        let key = Vault::unlock(&file, &pass).unwrap();
        World {
            file,
            key,
            recipient,
            sender_card,
            sender: sk.signing,
        }
    })
}

/// Encrypts to the receiving vault.
pub fn encrypt(w: &World, plain: &[u8]) -> Vec<u8> {
    let enc = age::Encryptor::with_recipients(std::iter::once(&w.recipient as _)).unwrap();
    let mut out = Vec::new();
    let mut wr = enc.wrap_output(&mut out).unwrap();
    wr.write_all(plain).unwrap();
    wr.finish().unwrap();
    out
}

/// A signed envelope around `body`.
pub fn envelope(w: &World, body: &str) -> Vec<u8> {
    let mut msg = LABEL_BUNDLE_SIGNATURE.to_vec();
    msg.extend_from_slice(body.as_bytes());
    let sig = w.sender.sign(&msg);
    serde_json::to_vec(&serde_json::json!({
        "format": "jeton-bundle-v1",
        "body": body,
        "signature": identity::b64(&sig.to_bytes()),
    }))
    .unwrap()
}

/// One input: never panics; an accepted bundle leaves a vault that re-seals and re-opens.
/// Returns true when the import was accepted.
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let w = world();
    let bundle = match mode % 3 {
        0 => rest.to_vec(),
        1 => encrypt(w, rest),
        _ => {
            let Ok(body) = std::str::from_utf8(rest) else {
                return false;
            };
            let body = body
                .replace("@SENDER@", &w.sender_card)
                .replace("@RECIPIENT@", &w.recipient.to_string());
            encrypt(w, &envelope(w, &body))
        }
    };
    let mut vault = Vault::open(&w.file, w.key.clone()).unwrap();
    let req = ImportRequest {
        bundle,
        prefix: None,
        on_conflict: OnConflict::Rename,
        dry_run: false,
    };
    if jeton::share::execute(&mut vault, SharingRequest::Import(req), NOW).is_err() {
        return false;
    }
    let sealed = vault.seal(0).unwrap();
    let file = VaultFile::parse(&sealed).unwrap();
    Vault::open(&file, w.key.clone()).expect("an imported vault re-opens");
    true
}
