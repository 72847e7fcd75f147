//! Data sets shared by the benches and by `benches/peers.sh`: vaults of N realistic entries,
//! built through the same requests the CLI runs.
#![allow(dead_code)]

use jeton::format::VaultFile;
use jeton::kdf::KdfParams;
use jeton::request::{self, Charset, NewEntry, Request, SecretInput};
use jeton::secret::{Key, Passphrase};
use jeton::vault::Vault;

/// The passphrase of every bench vault.
pub const PASS: &str = "bench passphrase: correct horse battery staple";

/// The cheapest KDF the bounds allow: benches of the cold paths exclude the KDF.
pub const CHEAP_KDF: KdfParams = KdfParams {
    memory_kib: 8 * 1024,
    iterations: 1,
    lanes: 1,
};

/// Entry sizes of the bench data sets: 100, 10,000 and 100,000 entries.
pub const SIZES: [usize; 3] = [100, 10_000, 100_000];

/// The name of entry `i`: `team-07/service-00042`.
pub fn name(i: usize) -> String {
    format!("team-{:02}/service-{i:06}", i % 50)
}

/// A new entry shaped like a real one: a 40-character token, two scopes, a URL, a user, an
/// issuer, a contact, one integration, two tags and an expiry.
pub fn new_entry(i: usize, now: i64) -> NewEntry {
    NewEntry {
        name: name(i),
        secret: SecretInput::Generate {
            length: 40,
            charset: Charset::Alnum,
        },
        scopes: vec!["read:packages".into(), format!("repo:service-{i}")],
        url: Some(format!("https://api.service-{i}.example.com/v1")),
        username: Some(format!("deploy-bot-{}", i % 97)),
        issuer: Some("example-ci".into()),
        contact: Some(format!(
            "Team {:02} <team-{:02}@example.com>",
            i % 50,
            i % 50
        )),
        used_by: vec![format!("ci:github-actions:DEPLOY_TOKEN_{i}")],
        tags: vec!["prod".into(), format!("team-{:02}", i % 50)],
        note: i
            .is_multiple_of(10)
            .then(|| "rotate with the provider's console, then update CI".into()),
        expires_at: Some(now + 86_400 * (30 + (i % 300) as i64)),
        rotate_every: Some(86_400 * 90),
    }
}

/// A vault of `n` entries: its file bytes and its vault key.
pub fn build(n: usize, kdf: KdfParams) -> (Vec<u8>, Key) {
    let now = jeton::time::now();
    let pass = Passphrase::new(PASS.into());
    let mut vault = Vault::create(&pass, kdf, now).expect("create vault");
    for i in 0..n {
        request::execute(&mut vault, Request::Add(Box::new(new_entry(i, now))), now)
            .expect("add entry");
    }
    let bytes = vault.seal(0).expect("seal");
    (bytes, vault.key().clone())
}

/// Opens vault bytes with a known key (no KDF).
pub fn open(bytes: &[u8], key: &Key) -> Vault {
    let file = VaultFile::parse(bytes).expect("parse");
    Vault::open(&file, key.clone()).expect("open")
}
