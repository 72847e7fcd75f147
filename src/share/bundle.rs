//! Bundles (SPEC §6, docs/FORMAT.md "Bundles"): a standard age file whose plaintext is a
//! signed envelope. The envelope holds the body's exact JSON text and an Ed25519 signature over
//! [`LABEL_BUNDLE_SIGNATURE`] followed by those bytes, so the signature never depends on how a
//! JSON library re-encodes anything.
//!
//! This module writes bundles (`share`); [`super::import`] reads them.

use super::contact;
use super::identity;
use super::{LABEL_BUNDLE_SIGNATURE, LABEL_IMPORTED_ENTRY_ID, hex, internal};
use crate::entry::{Entry, ShareRecord, Status};
use crate::random::random_id;
use crate::secret::Token;
use crate::time::Time;
use crate::vault::{Contact, Vault};
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use zeroize::{Zeroize, Zeroizing};

/// The envelope's `format` value.
pub const ENVELOPE_FORMAT: &str = "jeton-bundle-v1";
/// The body's `version` value.
pub const BODY_VERSION: u32 = 1;
/// Default lifetime of a bundle (SPEC §6).
pub const DEFAULT_EXPIRY: i64 = 7 * 86_400;
/// Longest lifetime `share --expires` accepts.
pub const MAX_EXPIRY: i64 = 366 * 86_400;
/// How far in the future `import` accepts a bundle's `created_at` (clocks differ a little).
pub const MAX_CLOCK_SKEW: i64 = 5 * 60;
/// Largest bundle file `import` reads, and largest plaintext it decrypts.
pub const MAX_BUNDLE_LEN: usize = 16 << 20;

/// What a bundle carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Entries with their secrets.
    Entries,
    /// A notice that entries shared before are revoked.
    Revocation,
}

/// `share`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShareRequest {
    /// Entries to share (or to revoke, for a notice).
    pub names: Vec<String>,
    /// Contact names.
    pub to: Vec<String>,
    /// Lifetime in seconds, 1..=[`MAX_EXPIRY`].
    pub expires_in: i64,
    /// ASCII armor.
    pub armor: bool,
    /// Entries or a revocation notice.
    pub kind: Kind,
}

/// A written bundle. The bytes are encrypted: nothing secret is readable here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleOut {
    /// Bundle id (hex).
    pub id: String,
    /// Entries or a revocation notice.
    pub kind: Kind,
    /// The age file.
    pub bytes: Vec<u8>,
    /// True when `bytes` is ASCII armor.
    pub armored: bool,
    /// Entry names.
    pub entries: Vec<String>,
    /// Contact names.
    pub recipients: Vec<String>,
    /// Expiry.
    pub expires_at: Time,
}

/// The age plaintext. `body` is the exact signed text.
#[derive(Serialize, Deserialize, Zeroize)]
#[serde(deny_unknown_fields)]
pub(super) struct Envelope {
    pub(super) format: String,
    pub(super) body: String,
    #[serde(default)]
    pub(super) signature: Option<String>,
}

impl Drop for Envelope {
    fn drop(&mut self) {
        self.zeroize();
    }
}

/// The signed body (docs/FORMAT.md "Body").
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Body {
    pub(super) version: u32,
    pub(super) kind: Kind,
    pub(super) id: String,
    pub(super) sender: String,
    pub(super) recipients: Vec<Recipient>,
    #[serde(with = "rfc3339_serde")]
    pub(super) created_at: Time,
    #[serde(with = "rfc3339_serde")]
    pub(super) expires_at: Time,
    pub(super) entries: Vec<BundleEntry>,
    pub(super) revocations: Vec<Revocation>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Recipient {
    pub(super) name: String,
    pub(super) age_recipient: Option<String>,
    pub(super) ssh_recipient: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BundleEntry {
    pub(super) id: String,
    pub(super) name: String,
    #[serde(with = "crate::secret::serde_token")]
    pub(super) secret: Token,
    pub(super) scopes: Vec<String>,
    pub(super) url: Option<String>,
    pub(super) username: Option<String>,
    pub(super) issuer: Option<String>,
    pub(super) contact: Option<String>,
    pub(super) used_by: Vec<String>,
    pub(super) tags: Vec<String>,
    pub(super) note: Option<String>,
    #[serde(with = "rfc3339_serde")]
    pub(super) created_at: Time,
    #[serde(with = "rfc3339_serde")]
    pub(super) secret_set_at: Time,
    #[serde(with = "rfc3339_opt")]
    pub(super) expires_at: Option<Time>,
    pub(super) rotate_every_seconds: Option<i64>,
    #[serde(with = "rfc3339_opt")]
    pub(super) last_rotated_at: Option<Time>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Revocation {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) bundles: Vec<String>,
    pub(super) reason: Option<String>,
}

mod rfc3339_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::rfc3339(*t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .map_err(|_| serde::de::Error::custom("not an RFC 3339 time"))
    }
}

mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&crate::time::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| {
                s.parse::<jiff::Timestamp>()
                    .map(|t| t.as_second())
                    .map_err(|_| serde::de::Error::custom("not an RFC 3339 time"))
            })
            .transpose()
    }
}

fn dedup(items: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

/// The age recipient objects of a contact.
fn age_recipient(c: &Contact) -> Result<Box<dyn age::Recipient + Send>> {
    let bad = || Error::corrupt_vault();
    if let Some(a) = &c.age_recipient {
        let r: age::x25519::Recipient = a.parse().map_err(|_| bad())?;
        return Ok(Box::new(r));
    }
    if let Some(s) = &c.ssh_recipient {
        let r: age::ssh::Recipient = s.parse().map_err(|_| bad())?;
        return Ok(Box::new(r));
    }
    Err(Error::Usage(format!(
        "contact '{}' has no key to encrypt to",
        c.name
    )))
}

/// `share`: builds, signs and encrypts a bundle, and records it on each entry.
pub fn share(vault: &mut Vault, req: ShareRequest, now: Time) -> Result<BundleOut> {
    if req.names.is_empty() || req.to.is_empty() {
        return Err(Error::Usage("share needs entry names and --to".into()));
    }
    if !(1..=MAX_EXPIRY).contains(&req.expires_in) {
        return Err(Error::Usage("--expires must be between 1s and 366d".into()));
    }
    let names = dedup(&req.names);
    let to = dedup(&req.to);
    if to.len() > super::age_header::MAX_RECIPIENTS {
        return Err(Error::Usage(format!(
            "a bundle goes to at most {} contacts; share in several bundles",
            super::age_header::MAX_RECIPIENTS
        )));
    }
    identity::ensure(vault, now)?;
    let keys = identity::keys(vault)?;
    let card = keys.card(vault.payload.settings.owner.as_deref());

    let mut contacts = Vec::with_capacity(to.len());
    let mut age_recipients = Vec::with_capacity(to.len());
    for name in &to {
        let c = contact::find(vault, name)?.clone();
        age_recipients.push(age_recipient(&c)?);
        contacts.push(c);
    }

    let id = hex(&random_id::<16>()?);
    let default_contact = vault.payload.settings.default_contact.clone();
    let mut entries = Vec::new();
    let mut revocations = Vec::new();
    for name in &names {
        let e = vault.entry(name)?;
        match req.kind {
            Kind::Entries => entries.push(bundle_entry(e, default_contact.as_deref())?),
            Kind::Revocation => revocations.push(revocation(e, &to)?),
        }
    }
    let body = Body {
        version: BODY_VERSION,
        kind: req.kind,
        id: id.clone(),
        sender: card.to_line(),
        recipients: contacts
            .iter()
            .map(|c| Recipient {
                name: c.name.clone(),
                age_recipient: c.age_recipient.clone(),
                ssh_recipient: c.ssh_recipient.clone(),
            })
            .collect(),
        created_at: now,
        expires_at: now.saturating_add(req.expires_in),
        entries,
        revocations,
    };
    let body_text = Zeroizing::new(
        serde_json::to_string(&body).map_err(|_| internal("cannot encode a bundle"))?,
    );
    drop(body);
    let signature = keys.signing.sign(&signed_message(body_text.as_bytes()));
    let envelope = Envelope {
        format: ENVELOPE_FORMAT.into(),
        body: body_text.to_string(),
        signature: Some(identity::b64(&signature.to_bytes())),
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&envelope).map_err(|_| internal("cannot encode a bundle"))?,
    );
    drop(envelope);
    let bytes = encrypt(&age_recipients, &plain, req.armor)?;

    let to_list = to.join(", ");
    for name in &names {
        // A notice is recorded too: a record dated after a revocation is what tells `check`
        // that the holder was notified.
        let e = vault.entry_mut(name)?;
        for c in &to {
            e.shared_with.push(ShareRecord {
                contact: c.clone(),
                bundle_id: id.clone(),
                at: now,
            });
        }
        e.revision += 1;
        let what = match req.kind {
            Kind::Entries => "shared with",
            Kind::Revocation => "revocation notice sent to",
        };
        vault.audit(
            now,
            "share",
            Some(name),
            format!("{what} {to_list} (bundle {id})"),
        );
    }
    Ok(BundleOut {
        id,
        kind: req.kind,
        bytes,
        armored: req.armor,
        entries: names,
        recipients: to,
        expires_at: now.saturating_add(req.expires_in),
    })
}

/// The bundle form of an entry. The contact is the effective one (the vault default when the
/// entry names none): the recipient has no way to learn this vault's default.
fn bundle_entry(e: &Entry, default_contact: Option<&str>) -> Result<BundleEntry> {
    let unavailable = |what: &str| {
        Error::Unavailable(format!(
            "entry '{}' is {what}; only active entries can be shared",
            e.name
        ))
    };
    let secret = match (&e.status, &e.secret) {
        (Status::Active, Some(s)) => s.clone(),
        (Status::Disabled { .. }, _) => return Err(unavailable("disabled")),
        _ => return Err(unavailable("revoked")),
    };
    Ok(BundleEntry {
        id: hex(&e.id),
        name: e.name.clone(),
        secret,
        scopes: e.scopes.clone(),
        url: e.url.clone(),
        username: e.username.clone(),
        issuer: e.issuer.clone(),
        contact: e
            .contact
            .clone()
            .or_else(|| default_contact.map(str::to_owned)),
        used_by: e.used_by.clone(),
        tags: e.tags.clone(),
        note: e.note.clone(),
        created_at: e.created_at,
        secret_set_at: e.secret_set_at,
        expires_at: e.expires_at,
        rotate_every_seconds: e.rotate_every,
        last_rotated_at: e.last_rotated_at,
    })
}

fn revocation(e: &Entry, to: &[String]) -> Result<Revocation> {
    let bundles = dedup(
        &e.shared_with
            .iter()
            .filter(|r| to.contains(&r.contact))
            .map(|r| r.bundle_id.clone())
            .collect::<Vec<_>>(),
    );
    if bundles.is_empty() {
        return Err(Error::NotFound(format!(
            "entry '{}' was never shared with {}; there is nothing to revoke there",
            e.name,
            to.join(", ")
        )));
    }
    let reason = match &e.status {
        Status::Revoked { reason, .. } => reason.clone(),
        _ => None,
    };
    Ok(Revocation {
        id: hex(&e.id),
        name: e.name.clone(),
        bundles,
        reason,
    })
}

fn signed_message(body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(Vec::with_capacity(
        LABEL_BUNDLE_SIGNATURE.len() + body.len(),
    ));
    m.extend_from_slice(LABEL_BUNDLE_SIGNATURE);
    m.extend_from_slice(body);
    m
}

fn encrypt(
    recipients: &[Box<dyn age::Recipient + Send>],
    plain: &[u8],
    armor: bool,
) -> Result<Vec<u8>> {
    let fail = |_| internal("age encryption failed");
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _))
        .map_err(|_| internal("age refused the recipients"))?;
    let mut out = Vec::with_capacity(plain.len() + 512);
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).map_err(fail)?;
    let mut w = encryptor.wrap_output(armored).map_err(fail)?;
    w.write_all(plain).map_err(fail)?;
    w.finish().and_then(|a| a.finish()).map_err(fail)?;
    Ok(out)
}

pub(super) fn verify(key: &[u8; 32], body: &[u8], sig: &Signature) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| k.verify_strict(&signed_message(body), sig).is_ok())
}

/// Derived id of an entry imported from `bundle_id`, sender entry `entry_id`: unique per
/// bundle and entry, and recomputable by a later revocation notice.
pub(super) fn imported_id(bundle_id: &[u8; 16], entry_id: &[u8; 16]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(LABEL_IMPORTED_ENTRY_ID);
    h.update(bundle_id);
    h.update(entry_id);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf::KdfParams;
    use crate::secret::Passphrase;
    use crate::share::contact::ContactKeys;
    use crate::share::import::{ImportRequest, OnConflict, import};
    use crate::share::unhex;
    use proptest::prelude::*;

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 8192,
        iterations: 1,
        lanes: 1,
    };
    const NOW: Time = 1_800_000_000;

    fn vault_with(entries: &[(&str, &str)]) -> Vault {
        let mut v = Vault::create(&Passphrase::new("p".into()), CHEAP, NOW).unwrap();
        identity::ensure(&mut v, NOW).unwrap();
        for (name, secret) in entries {
            let req = crate::request::NewEntry {
                scopes: vec!["read".into()],
                note: Some("n".into()),
                rotate_every: Some(86_400),
                ..crate::request::NewEntry::bare(name, secret)
            };
            crate::request::execute(&mut v, crate::request::Request::Add(Box::new(req)), NOW)
                .unwrap();
        }
        v
    }

    fn card_of(v: &Vault) -> String {
        identity::keys(v).unwrap().card(None).to_line()
    }

    fn befriend(a: &mut Vault, a_name: &str, b: &mut Vault, b_name: &str) {
        let (ca, cb) = (card_of(a), card_of(b));
        contact::add(
            a,
            b_name.into(),
            ContactKeys::from_card(&cb).unwrap(),
            false,
            NOW,
        )
        .unwrap();
        contact::add(
            b,
            a_name.into(),
            ContactKeys::from_card(&ca).unwrap(),
            false,
            NOW,
        )
        .unwrap();
    }

    fn share_req(names: &[&str], to: &[&str], kind: Kind) -> ShareRequest {
        ShareRequest {
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            expires_in: 3600,
            armor: false,
            kind,
        }
    }

    fn import_req(bundle: Vec<u8>) -> ImportRequest {
        ImportRequest {
            bundle,
            prefix: None,
            on_conflict: OnConflict::Fail,
            dry_run: false,
        }
    }

    #[test]
    fn share_import_and_revoke_in_memory() {
        let mut alice = vault_with(&[("svc/a", "secret-a"), ("svc/b", "secret-b")]);
        let mut bob = vault_with(&[]);
        let mut carol = vault_with(&[("svc/a", "carol-a")]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        befriend(&mut carol, "carol", &mut bob, "bob");

        let b = share(
            &mut alice,
            share_req(&["svc/a", "svc/b"], &["bob"], Kind::Entries),
            NOW,
        )
        .unwrap();
        assert_eq!(alice.entry("svc/a").unwrap().shared_with[0].bundle_id, b.id);
        let r = import(&mut bob, import_req(b.bytes.clone()), NOW + 10).unwrap();
        assert_eq!(r.items.len(), 2);
        let got = bob.entry("svc/a").unwrap();
        assert_eq!(got.secret.as_ref().unwrap().expose_secret(), "secret-a");
        assert_eq!(got.note.as_deref(), Some("n"));
        assert_eq!(got.rotate_every, Some(86_400));
        assert_eq!(got.received_from.as_ref().unwrap().from, "alice");
        // Replay and expiry.
        assert_eq!(
            import(&mut bob, import_req(b.bytes.clone()), NOW + 20)
                .unwrap_err()
                .exit_code(),
            6
        );
        let late = share(
            &mut alice,
            share_req(&["svc/b"], &["bob"], Kind::Entries),
            NOW,
        )
        .unwrap();
        assert_eq!(
            import(&mut bob, import_req(late.bytes), NOW + 3600)
                .unwrap_err()
                .exit_code(),
            6
        );

        // Carol shared a same-named entry; her notice cannot touch Alice's copy.
        share(
            &mut carol,
            share_req(&["svc/a"], &["bob"], Kind::Entries),
            NOW,
        )
        .unwrap();
        let n = share(
            &mut carol,
            share_req(&["svc/a"], &["bob"], Kind::Revocation),
            NOW,
        )
        .unwrap();
        assert_eq!(
            import(&mut bob, import_req(n.bytes), NOW)
                .unwrap_err()
                .exit_code(),
            6
        );
        assert!(bob.entry("svc/a").unwrap().secret.is_some());

        let n = share(
            &mut alice,
            share_req(&["svc/a"], &["bob"], Kind::Revocation),
            NOW,
        )
        .unwrap();
        let r = import(&mut bob, import_req(n.bytes), NOW).unwrap();
        assert_eq!(r.items[0].action, "revoked");
        let e = bob.entry("svc/a").unwrap();
        assert!(e.secret.is_none() && e.history.is_empty());
        assert!(matches!(e.status, Status::Revoked { .. }));
        assert!(bob.entry("svc/b").unwrap().secret.is_some());
    }

    #[test]
    fn renamed_copies_get_distinct_ids_and_are_revoked_too() {
        let mut alice = vault_with(&[("k", "v1")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        for _ in 0..2 {
            let b = share(&mut alice, share_req(&["k"], &["bob"], Kind::Entries), NOW).unwrap();
            let mut req = import_req(b.bytes);
            req.on_conflict = OnConflict::Rename;
            import(&mut bob, req, NOW).unwrap();
        }
        assert_ne!(bob.entry("k").unwrap().id, bob.entry("k-2").unwrap().id);
        let n = share(
            &mut alice,
            share_req(&["k"], &["bob"], Kind::Revocation),
            NOW,
        )
        .unwrap();
        let r = import(&mut bob, import_req(n.bytes), NOW).unwrap();
        assert_eq!(r.items.iter().filter(|i| i.action == "revoked").count(), 2);
    }

    #[test]
    fn escape_sequences_in_metadata_are_refused() {
        let mut alice = vault_with(&[("k", "v")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        alice.entry_mut("k").unwrap().note = Some("line\n\u{1b}[2J".into());
        let b = share(&mut alice, share_req(&["k"], &["bob"], Kind::Entries), NOW).unwrap();
        let err = import(&mut bob, import_req(b.bytes), NOW).unwrap_err();
        assert_eq!(err.exit_code(), 6);
        assert!(err.to_string().contains("control characters"), "{err}");
        alice.entry_mut("k").unwrap().note = Some("two\nlines\tok".into());
        let b = share(&mut alice, share_req(&["k"], &["bob"], Kind::Entries), NOW).unwrap();
        import(&mut bob, import_req(b.bytes), NOW).unwrap();
    }

    /// A bundle from `alice` to `bob` whose signed body `edit` changed: decrypted with Bob's
    /// key, edited, signed again with Alice's key and encrypted to Bob, as a hostile but
    /// authorised sender could.
    fn forged(
        alice: &mut Vault,
        bob: &Vault,
        kind: Kind,
        names: &[&str],
        edit: impl FnOnce(&mut Body),
    ) -> Vec<u8> {
        let b = share(alice, share_req(names, &["bob"], kind), NOW).unwrap();
        let bob_keys = identity::keys(bob).unwrap();
        let mut plain = Vec::new();
        let d = age::Decryptor::new_buffered(&b.bytes[..]).unwrap();
        std::io::Read::read_to_end(
            &mut d
                .decrypt(std::iter::once(&bob_keys.age as &dyn age::Identity))
                .unwrap(),
            &mut plain,
        )
        .unwrap();
        let envelope: Envelope = serde_json::from_slice(&plain).unwrap();
        let mut body: Body = serde_json::from_str(&envelope.body).unwrap();
        edit(&mut body);
        let text = serde_json::to_string(&body).unwrap();
        let keys = identity::keys(alice).unwrap();
        let sig = keys.signing.sign(&signed_message(text.as_bytes()));
        let envelope = Envelope {
            format: ENVELOPE_FORMAT.into(),
            body: text,
            signature: Some(identity::b64(&sig.to_bytes())),
        };
        let r: Box<dyn age::Recipient + Send> = Box::new(bob_keys.age.to_public());
        encrypt(&[r], &serde_json::to_vec(&envelope).unwrap(), false).unwrap()
    }

    fn refusal(bob: &mut Vault, bytes: Vec<u8>, now: Time) -> Error {
        let before = bob.payload.entries.len();
        let err = import(bob, import_req(bytes), now).unwrap_err();
        assert_eq!(bob.payload.entries.len(), before);
        err
    }

    #[test]
    fn forged_rows_and_escapes_in_bundles_are_refused_field_by_field() {
        let mut alice = vault_with(&[("k", "v")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        let hostile = [
            "read\nforged/row  active  admin",
            "\u{1b}]0;title\u{7}",
            "a\rb",
            "\u{9b}2J",
        ];
        for bad in hostile {
            for field in [
                "scopes", "used_by", "tags", "url", "username", "issuer", "contact",
            ] {
                let bytes = forged(&mut alice, &bob, Kind::Entries, &["k"], |b| {
                    let e = &mut b.entries[0];
                    let v = Some(bad.to_owned());
                    match field {
                        "scopes" => e.scopes = vec![bad.into()],
                        "used_by" => e.used_by = vec![bad.into()],
                        "tags" => e.tags = vec![bad.into()],
                        "url" => e.url = v,
                        "username" => e.username = v,
                        "issuer" => e.issuer = v,
                        _ => e.contact = v,
                    }
                });
                let err = refusal(&mut bob, bytes, NOW);
                assert_eq!(err.exit_code(), 6, "{field}: {err}");
                assert!(
                    err.to_string()
                        .contains(&format!("control characters in its {field}")),
                    "{field}: {err}"
                );
            }
        }
        let bytes = forged(&mut alice, &bob, Kind::Entries, &["k"], |b| {
            b.entries[0].note = Some("ok\n\u{1b}[2J".into());
        });
        assert!(
            refusal(&mut bob, bytes, NOW)
                .to_string()
                .contains("in its note")
        );
    }

    #[test]
    fn revocation_notices_with_bad_names_or_reasons_are_refused() {
        let mut alice = vault_with(&[("k", "v")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        let b = share(&mut alice, share_req(&["k"], &["bob"], Kind::Entries), NOW).unwrap();
        import(&mut bob, import_req(b.bytes), NOW).unwrap();
        for (name, reason, needle) in [
            ("k\nforged", None, "invalid entry name"),
            ("k\u{1b}[2J", None, "invalid entry name"),
            ("k", Some("leak\nforged row"), "in its reason"),
            ("k", Some("\u{1b}]0;x\u{7}"), "in its reason"),
        ] {
            let bytes = forged(&mut alice, &bob, Kind::Revocation, &["k"], |b| {
                b.revocations[0].name = name.into();
                b.revocations[0].reason = reason.map(Into::into);
            });
            let err = import(&mut bob, import_req(bytes), NOW).unwrap_err();
            assert_eq!(err.exit_code(), 6);
            assert!(err.to_string().contains(needle), "{err}");
            assert!(bob.entry("k").unwrap().secret.is_some(), "nothing revoked");
        }
    }

    #[test]
    fn bundles_from_the_future_or_living_past_366_days_are_refused() {
        let mut alice = vault_with(&[("k", "v")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        let ahead = forged(&mut alice, &bob, Kind::Entries, &["k"], |b| {
            b.created_at = NOW + MAX_CLOCK_SKEW + 60;
            b.expires_at = b.created_at + 3600;
        });
        let err = refusal(&mut bob, ahead, NOW);
        assert_eq!(err.exit_code(), 6);
        assert!(err.to_string().contains("in the future"), "{err}");
        let long = forged(&mut alice, &bob, Kind::Entries, &["k"], |b| {
            b.expires_at = b.created_at + MAX_EXPIRY + 1;
        });
        let err = refusal(&mut bob, long, NOW);
        assert!(err.to_string().contains("366 days"), "{err}");
        let entry_ahead = forged(&mut alice, &bob, Kind::Entries, &["k"], |b| {
            b.entries[0].created_at = b.created_at + 86_400;
        });
        let err = refusal(&mut bob, entry_ahead, NOW);
        assert!(
            err.to_string().contains("after the bundle was made"),
            "{err}"
        );
        // A clock a little ahead is fine.
        let skew = forged(&mut alice, &bob, Kind::Entries, &["k"], |b| {
            b.created_at = NOW + 60;
            b.expires_at = NOW + MAX_EXPIRY;
        });
        import(&mut bob, import_req(skew), NOW).unwrap();
    }

    #[test]
    fn bundles_cannot_create_names_starting_with_a_dash() {
        let mut alice = vault_with(&[("k", "v")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        let dash = |b: &mut Body| b.entries[0].name = "--help".into();
        let first = forged(&mut alice, &bob, Kind::Entries, &["k"], dash);
        let err = refusal(&mut bob, first, NOW);
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--prefix"), "{err}");
        let mut req = import_req(forged(&mut alice, &bob, Kind::Entries, &["k"], dash));
        req.prefix = Some("alice".into());
        import(&mut bob, req, NOW).unwrap();
        assert!(bob.entry("alice/--help").is_ok());
    }

    #[test]
    fn reshared_rotated_token_updates_the_copy_received_from_that_sender() {
        let mut alice = vault_with(&[("k", "v1")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        let b1 = share(&mut alice, share_req(&["k"], &["bob"], Kind::Entries), NOW).unwrap();
        import(&mut bob, import_req(b1.bytes), NOW).unwrap();
        bob.entry_mut("k").unwrap().used_by = vec!["bob:laptop".into()];
        crate::lifecycle::execute(
            &mut alice,
            crate::lifecycle::LifecycleRequest::Rotate {
                name: "k".into(),
                secret: crate::request::SecretInput::Value(Token::new("v2".into())),
                expires_at: crate::request::Change::Keep,
            },
            NOW + 5,
        )
        .unwrap();
        let b2 = share(
            &mut alice,
            share_req(&["k"], &["bob"], Kind::Entries),
            NOW + 6,
        )
        .unwrap();
        let r = import(&mut bob, import_req(b2.bytes), NOW + 7).unwrap();
        assert_eq!(r.items[0].action, "updated");
        let e = bob.entry("k").unwrap();
        assert_eq!(e.secret.as_ref().unwrap().expose_secret(), "v2");
        assert_eq!(e.history.len(), 1);
        assert_eq!(e.history[0].secret.expose_secret(), "v1");
        assert_eq!(e.received_from.as_ref().unwrap().reference, b2.id);
        assert!(
            e.used_by.contains(&"bob:laptop".to_owned()),
            "{:?}",
            e.used_by
        );
        // Shared again unchanged: an update, and no second copy of the secret in history.
        let b3 = share(
            &mut alice,
            share_req(&["k"], &["bob"], Kind::Entries),
            NOW + 8,
        )
        .unwrap();
        import(&mut bob, import_req(b3.bytes), NOW + 9).unwrap();
        assert_eq!(bob.entry("k").unwrap().history.len(), 1);
        // The sender's revocation still reaches the updated copy.
        let n = share(
            &mut alice,
            share_req(&["k"], &["bob"], Kind::Revocation),
            NOW + 10,
        )
        .unwrap();
        let r = import(&mut bob, import_req(n.bytes), NOW + 11).unwrap();
        assert!(
            r.items.iter().any(|i| i.action == "revoked"),
            "{:?}",
            r.items
        );
        assert!(bob.entry("k").unwrap().secret.is_none());

        // Someone else's entry of the same name is still a conflict.
        let mut carol = vault_with(&[("j", "carol")]);
        befriend(&mut carol, "carol", &mut bob, "bob");
        crate::request::execute(
            &mut bob,
            crate::request::Request::Add(Box::new(crate::request::NewEntry::bare("j", "mine"))),
            NOW,
        )
        .unwrap();
        let c = share(&mut carol, share_req(&["j"], &["bob"], Kind::Entries), NOW).unwrap();
        assert_eq!(
            import(&mut bob, import_req(c.bytes), NOW)
                .unwrap_err()
                .exit_code(),
            9
        );
    }

    #[test]
    fn shared_entries_carry_the_vault_default_contact() {
        let mut alice = vault_with(&[("k", "v")]);
        let mut bob = vault_with(&[]);
        befriend(&mut alice, "alice", &mut bob, "bob");
        alice.payload.settings.default_contact = Some("Ops <ops@example.com>".into());
        let b = share(&mut alice, share_req(&["k"], &["bob"], Kind::Entries), NOW).unwrap();
        import(&mut bob, import_req(b.bytes), NOW).unwrap();
        assert_eq!(
            bob.entry("k").unwrap().contact.as_deref(),
            Some("Ops <ops@example.com>")
        );
    }

    #[test]
    fn a_file_that_is_not_age_is_called_so() {
        let mut bob = vault_with(&[]);
        for junk in [
            &b"not a bundle"[..],
            b"",
            b"{\"format\":\"jeton-bundle-v1\"}",
        ] {
            let err = import(&mut bob, import_req(junk.to_vec()), NOW).unwrap_err();
            assert_eq!(err.exit_code(), 6);
            assert!(err.to_string().contains("not an age file"), "{err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn card_lines_round_trip(name in "[ -~]{0,64}") {
            let keys = identity::Keys::of(&identity::generate(NOW).unwrap()).unwrap();
            let card = keys.card(Some(&name));
            let parsed = identity::Card::parse(&card.to_line()).unwrap();
            prop_assert_eq!(&parsed, &card);
            prop_assert_eq!(parsed.fingerprint(), card.fingerprint());
        }

        #[test]
        fn hex_round_trips(bytes in any::<[u8; 16]>()) {
            prop_assert_eq!(unhex::<16>(&hex(&bytes)), Some(bytes));
        }

        #[test]
        fn arbitrary_bundles_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut v = vault_with(&[]);
            prop_assert!(import(&mut v, import_req(bytes), NOW).is_err());
        }
    }

    #[test]
    fn share_writes_no_bundle_import_would_refuse_for_its_recipient_count() {
        let mut v = vault_with(&[("a", "x")]);
        let names: Vec<String> = (0..=crate::share::age_header::MAX_RECIPIENTS)
            .map(|i| format!("c{i}"))
            .collect();
        let to: Vec<&str> = names.iter().map(String::as_str).collect();
        let e = share(&mut v, share_req(&["a"], &to, Kind::Entries), NOW).unwrap_err();
        assert!(e.to_string().contains("at most 63 contacts"), "{e}");
    }

    #[test]
    fn imported_ids_differ_per_bundle() {
        let e = [7u8; 16];
        assert_ne!(imported_id(&[1; 16], &e), imported_id(&[2; 16], &e));
        assert_eq!(imported_id(&[1; 16], &e), imported_id(&[1; 16], &e));
    }

    #[test]
    fn envelope_is_strict() {
        let bad = br#"{"format":"jeton-bundle-v1","body":"{}","signature":"x","extra":1}"#;
        assert!(serde_json::from_slice::<Envelope>(bad).is_err());
        let unsigned = br#"{"format":"jeton-bundle-v1","body":"{}"}"#;
        let e: Envelope = serde_json::from_slice(unsigned).unwrap();
        assert!(e.signature.is_none());
    }
}
