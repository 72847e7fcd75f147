//! Bundles (SPEC §6, docs/FORMAT.md "Bundles"): a standard age file whose plaintext is a
//! signed envelope. The envelope holds the body's exact JSON text and an Ed25519 signature over
//! [`LABEL_BUNDLE_SIGNATURE`] followed by those bytes, so the signature never depends on how a
//! JSON library re-encodes anything.
//!
//! `import` checks, in this order, and stops at the first failure with nothing written: age
//! decryption with this vault's identity (exit 3 when the bundle is not for us, 6 when it is
//! damaged), envelope shape, a signature present, a signature by a contact, the body, this vault
//! in the signed recipient list, the expiry, and the bundle id never imported before.

use super::contact::{self, ContactView};
use super::identity::{self, Card};
use super::{LABEL_BUNDLE_SIGNATURE, LABEL_IMPORTED_ENTRY_ID, hex, internal, unhex};
use crate::entry::{Entry, HistoryItem, Provenance, ShareRecord, Status, validate_name};
use crate::secret::Token;
use crate::time::{Time, rfc3339};
use crate::vault::{Contact, Deletion, SeenBundle, Vault, random_id};
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use zeroize::{Zeroize, Zeroizing};

/// The envelope's `format` value.
pub const ENVELOPE_FORMAT: &str = "jeton-bundle-v1";
/// The body's `version` value.
pub const BODY_VERSION: u32 = 1;
/// Default lifetime of a bundle (SPEC §6).
pub const DEFAULT_EXPIRY: i64 = 7 * 86_400;
/// Longest lifetime `share --expires` accepts.
pub const MAX_EXPIRY: i64 = 366 * 86_400;
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

/// What to do when an imported name exists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnConflict {
    /// Refuse the whole import (exit 9).
    #[default]
    Fail,
    /// Keep the existing entry, import the others.
    Skip,
    /// Import under `NAME-2`, `NAME-3`, ...
    Rename,
    /// Replace the existing entry; its secret goes to the new entry's history.
    Overwrite,
}

/// `import`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportRequest {
    /// The bundle file's bytes (binary or armored).
    pub bundle: Vec<u8>,
    /// Path prefix for imported names, e.g. `alice` gives `alice/NAME`.
    pub prefix: Option<String>,
    /// Conflict policy.
    pub on_conflict: OnConflict,
    /// Check everything, change nothing.
    pub dry_run: bool,
}

/// One line of an import report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportItem {
    /// Name in this vault.
    pub name: String,
    /// Name in the sender's vault.
    pub original: String,
    /// `added`, `renamed`, `overwritten`, `skipped`, `revoked`, `already-revoked`, `not-held`.
    pub action: String,
}

/// What an import did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImportReport {
    /// Bundle id.
    pub bundle_id: String,
    /// Entries or a revocation notice.
    pub kind: Kind,
    /// The signer, as a contact.
    pub from: ContactView,
    /// When the sender made it.
    pub created_at: Time,
    /// When it expires.
    pub expires_at: Time,
    /// Per entry.
    pub items: Vec<ImportItem>,
    /// True when nothing was changed on purpose.
    pub dry_run: bool,
}

/// The age plaintext. `body` is the exact signed text.
#[derive(Serialize, Deserialize, Zeroize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    body: String,
    #[serde(default)]
    signature: Option<String>,
}

impl Drop for Envelope {
    fn drop(&mut self) {
        self.zeroize();
    }
}

/// The signed body (docs/FORMAT.md "Body").
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    version: u32,
    kind: Kind,
    id: String,
    sender: String,
    recipients: Vec<Recipient>,
    #[serde(with = "rfc3339_serde")]
    created_at: Time,
    #[serde(with = "rfc3339_serde")]
    expires_at: Time,
    entries: Vec<BundleEntry>,
    revocations: Vec<Revocation>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recipient {
    name: String,
    age_recipient: Option<String>,
    ssh_recipient: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleEntry {
    id: String,
    name: String,
    #[serde(with = "crate::secret::serde_token")]
    secret: Token,
    scopes: Vec<String>,
    url: Option<String>,
    username: Option<String>,
    issuer: Option<String>,
    contact: Option<String>,
    used_by: Vec<String>,
    tags: Vec<String>,
    note: Option<String>,
    #[serde(with = "rfc3339_serde")]
    created_at: Time,
    #[serde(with = "rfc3339_serde")]
    secret_set_at: Time,
    #[serde(with = "rfc3339_opt")]
    expires_at: Option<Time>,
    rotate_every_seconds: Option<i64>,
    #[serde(with = "rfc3339_opt")]
    last_rotated_at: Option<Time>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revocation {
    id: String,
    name: String,
    bundles: Vec<String>,
    reason: Option<String>,
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
    let mut entries = Vec::new();
    let mut revocations = Vec::new();
    for name in &names {
        let e = vault.entry(name)?;
        match req.kind {
            Kind::Entries => entries.push(bundle_entry(e)?),
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

fn bundle_entry(e: &Entry) -> Result<BundleEntry> {
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
        contact: e.contact.clone(),
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

fn tampered(what: &str) -> Error {
    Error::Integrity(format!("bundle rejected: {what}; nothing was imported"))
}

fn decrypt(identity: &age::x25519::Identity, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let damaged = || tampered("it is corrupt or has been tampered with (age decryption failed)");
    let map = |e: age::DecryptError| match e {
        age::DecryptError::NoMatchingKeys => Error::Unlock(
            "this bundle is not addressed to this vault (none of its recipients is this vault's \
             identity; compare `jeton identity` with the card the sender holds)"
                .into(),
        ),
        _ => damaged(),
    };
    let reader = age::armor::ArmoredReader::new(bytes);
    let decryptor = age::Decryptor::new_buffered(reader).map_err(map)?;
    let mut stream = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(map)?;
    let mut plain = Zeroizing::new(Vec::new());
    (&mut stream)
        .take(MAX_BUNDLE_LEN as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|_| damaged())?;
    if plain.len() > MAX_BUNDLE_LEN {
        return Err(tampered("its content is too large"));
    }
    Ok(plain)
}

fn verify(key: &[u8; 32], body: &[u8], sig: &Signature) -> bool {
    VerifyingKey::from_bytes(key).is_ok_and(|k| k.verify_strict(&signed_message(body), sig).is_ok())
}

/// Derived id of an entry imported from `bundle_id`, sender entry `entry_id`: unique per
/// bundle and entry, and recomputable by a later revocation notice.
fn imported_id(bundle_id: &[u8; 16], entry_id: &[u8; 16]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(LABEL_IMPORTED_ENTRY_ID);
    h.update(bundle_id);
    h.update(entry_id);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// A bundle whose every check passed.
struct Verified {
    body: Body,
    signer: Contact,
}

fn open(vault: &Vault, bytes: &[u8], now: Time) -> Result<Verified> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(tampered("the file is too large to be a bundle"));
    }
    let keys = identity::keys(vault)?;
    let plain = decrypt(&keys.age, bytes)?;
    let envelope: Envelope = serde_json::from_slice(&plain)
        .map_err(|_| tampered("its envelope is not a jeton bundle envelope"))?;
    drop(plain);
    if envelope.format != ENVELOPE_FORMAT {
        return Err(tampered(&format!(
            "unknown envelope format (expected {ENVELOPE_FORMAT})"
        )));
    }
    let Some(sig_text) = envelope.signature.as_deref().filter(|s| !s.is_empty()) else {
        return Err(tampered("it is not signed"));
    };
    let sig: [u8; 64] = identity::unb64(sig_text)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| tampered("its signature is malformed"))?;
    let sig = Signature::from_bytes(&sig);
    let body_bytes = envelope.body.as_bytes();

    let signer = vault
        .payload
        .contacts
        .iter()
        .find(|c| c.signing_key.is_some_and(|k| verify(&k, body_bytes, &sig)))
        .cloned();
    let Some(signer) = signer else {
        let claimed = serde_json::from_slice::<Body>(body_bytes)
            .ok()
            .and_then(|b| Card::parse(&b.sender).ok());
        return Err(match claimed {
            Some(card) if verify(&card.signing_key, body_bytes, &sig) => tampered(&format!(
                "it is signed by '{}' (fingerprint {}), who is not one of your contacts; \
                 check the fingerprint with them, then `jeton contact add NAME CARD`",
                crate::entry::printable(&card.name),
                card.fingerprint()
            )),
            _ => tampered(
                "its signature does not verify (the envelope was altered, or was not signed \
                 by any of your contacts)",
            ),
        });
    };
    let body: Body =
        serde_json::from_slice(body_bytes).map_err(|_| tampered("its signed body is malformed"))?;
    drop(envelope);
    let sender = Card::parse(&body.sender).map_err(|_| tampered("bad sender card"))?;
    if Some(sender.signing_key) != signer.signing_key {
        return Err(tampered("the sender card does not match the signature"));
    }
    if body.version != BODY_VERSION || unhex::<16>(&body.id).is_none() {
        return Err(tampered("unsupported body version or bad bundle id"));
    }
    let me = keys.age.to_public().to_string();
    if !body
        .recipients
        .iter()
        .any(|r| r.age_recipient.as_deref() == Some(me.as_str()))
    {
        return Err(tampered(&format!(
            "this vault is not in its signed recipient list: another recipient re-encrypted \
             (forwarded) it to you; ask '{}' to share it with you directly",
            signer.name
        )));
    }
    if body.expires_at <= body.created_at {
        return Err(tampered("its expiry is before its creation"));
    }
    if now >= body.expires_at {
        return Err(tampered(&format!(
            "it expired at {}; ask '{}' for a new one",
            rfc3339(body.expires_at),
            signer.name
        )));
    }
    if let Some(seen) = vault.payload.seen_bundles.iter().find(|s| s.id == body.id) {
        return Err(tampered(&format!(
            "bundle {} was already imported at {} (a replay)",
            body.id,
            rfc3339(seen.at)
        )));
    }
    let kind_ok = match body.kind {
        Kind::Entries => body.revocations.is_empty() && !body.entries.is_empty(),
        Kind::Revocation => body.entries.is_empty() && !body.revocations.is_empty(),
    };
    if !kind_ok {
        return Err(tampered("its content does not match its kind"));
    }
    Ok(Verified { body, signer })
}

/// `import`: verifies a bundle, then adds its entries or applies its revocation notice.
pub fn import(vault: &mut Vault, req: ImportRequest, now: Time) -> Result<ImportReport> {
    if let Some(p) = &req.prefix {
        validate_name(p)?;
    }
    identity::ensure(vault, now)?;
    let Verified { body, signer } = open(vault, &req.bundle, now)?;
    let bundle_id = unhex::<16>(&body.id).ok_or_else(|| tampered("bad bundle id"))?;
    let items = match body.kind {
        Kind::Entries => import_entries(vault, &req, &body, &signer, bundle_id, now)?,
        Kind::Revocation => apply_revocations(vault, &req, &body, &signer, now)?,
    };
    if !req.dry_run {
        vault.payload.seen_bundles.push(SeenBundle {
            id: body.id.clone(),
            at: now,
        });
        let what = match body.kind {
            Kind::Entries => "entries",
            Kind::Revocation => "revocation notice",
        };
        vault.audit(
            now,
            "import",
            None,
            format!("{what} from {} (bundle {})", signer.name, body.id),
        );
    }
    Ok(ImportReport {
        bundle_id: body.id,
        kind: body.kind,
        from: contact::view(&signer),
        created_at: body.created_at,
        expires_at: body.expires_at,
        items,
        dry_run: req.dry_run,
    })
}

fn import_entries(
    vault: &mut Vault,
    req: &ImportRequest,
    body: &Body,
    signer: &Contact,
    bundle_id: [u8; 16],
    now: Time,
) -> Result<Vec<ImportItem>> {
    let mut plan: Vec<(String, &BundleEntry, &'static str)> = Vec::new();
    for be in &body.entries {
        validate_name(&be.name).map_err(|_| tampered("it holds an invalid entry name"))?;
        if !metadata_is_printable(be) {
            return Err(tampered(&format!(
                "entry '{}' holds control characters in its metadata",
                be.name
            )));
        }
        if unhex::<16>(&be.id).is_none()
            || body.entries.iter().filter(|o| o.name == be.name).count() > 1
        {
            return Err(tampered("it holds a bad or duplicate entry"));
        }
        let target = match &req.prefix {
            Some(p) => format!("{}/{}", p.trim_end_matches('/'), be.name),
            None => be.name.clone(),
        };
        validate_name(&target)?;
        let taken = |n: &str, plan: &[(String, &BundleEntry, &str)]| {
            vault.payload.entries.contains_key(n) || plan.iter().any(|(p, ..)| p == n)
        };
        if !taken(&target, &plan) {
            plan.push((target, be, "added"));
            continue;
        }
        match req.on_conflict {
            OnConflict::Fail => {
                return Err(Error::Exists(format!(
                    "an entry named '{target}' already exists; nothing was imported \
                     (use --on-conflict skip, rename or overwrite, or --prefix)"
                )));
            }
            OnConflict::Skip => plan.push((target, be, "skipped")),
            OnConflict::Overwrite => plan.push((target, be, "overwritten")),
            OnConflict::Rename => {
                let free = (2..1000)
                    .map(|i| format!("{target}-{i}"))
                    .find(|n| validate_name(n).is_ok() && !taken(n, &plan))
                    .ok_or_else(|| Error::Exists(format!("no free name for '{target}'")))?;
                plan.push((free, be, "renamed"));
            }
        }
    }
    let items: Vec<ImportItem> = plan
        .iter()
        .map(|(name, be, action)| ImportItem {
            name: name.clone(),
            original: be.name.clone(),
            action: (*action).into(),
        })
        .collect();
    if req.dry_run {
        return Ok(items);
    }
    let history_limit = vault.payload.settings.history_limit as usize;
    for (name, be, action) in plan {
        if action == "skipped" {
            continue;
        }
        let sender_id = unhex::<16>(&be.id).ok_or_else(|| tampered("bad entry id"))?;
        let mut entry = Entry {
            id: imported_id(&bundle_id, &sender_id),
            revision: 1,
            name: name.clone(),
            secret: Some(be.secret.clone()),
            secret_set_at: be.secret_set_at,
            scopes: be.scopes.clone(),
            url: be.url.clone(),
            username: be.username.clone(),
            issuer: be.issuer.clone(),
            contact: be.contact.clone(),
            used_by: be.used_by.clone(),
            tags: be.tags.clone(),
            note: be.note.clone(),
            created_at: be.created_at,
            updated_at: now,
            expires_at: be.expires_at,
            rotate_every: be.rotate_every_seconds.filter(|s| *s > 0),
            last_rotated_at: be.last_rotated_at,
            status: Status::Active,
            history: Vec::new(),
            shared_with: Vec::new(),
            received_from: Some(Provenance {
                from: signer.name.clone(),
                reference: body.id.clone(),
                at: now,
            }),
        };
        if let Some(old) = vault.payload.entries.remove(&name) {
            entry.history = old.history;
            if let Some(s) = old.secret {
                entry.history.push(HistoryItem {
                    secret: s,
                    created_at: old.secret_set_at,
                    retired_at: now,
                });
            }
            let excess = entry.history.len().saturating_sub(history_limit);
            entry.history.drain(..excess);
            entry.revision = old.revision + 1;
            vault.payload.deletions.push(Deletion {
                id: old.id,
                at: now,
            });
        }
        vault.payload.entries.insert(name.clone(), entry);
        vault.audit(
            now,
            "import",
            Some(&name),
            format!(
                "{action}: '{}' from {} (bundle {})",
                be.name, signer.name, body.id
            ),
        );
    }
    Ok(items)
}

/// Metadata is shown on terminals: a sender must not be able to slip escape sequences into it.
/// Newlines and tabs are allowed (notes); the secret itself is not checked.
fn printable_text(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn metadata_is_printable(be: &BundleEntry) -> bool {
    let lists = [&be.scopes, &be.used_by, &be.tags];
    let opts = [&be.url, &be.username, &be.issuer, &be.contact, &be.note];
    lists.iter().all(|l| l.iter().all(|s| printable_text(s)))
        && opts.iter().all(|o| o.as_deref().is_none_or(printable_text))
}

fn apply_revocations(
    vault: &mut Vault,
    req: &ImportRequest,
    body: &Body,
    signer: &Contact,
    now: Time,
) -> Result<Vec<ImportItem>> {
    let mut targets: Vec<(String, String)> = Vec::new();
    let mut items = Vec::new();
    for r in &body.revocations {
        if !printable_text(&r.name) || !r.reason.as_deref().is_none_or(printable_text) {
            return Err(tampered("a revocation holds control characters"));
        }
        let sender_id = unhex::<16>(&r.id).ok_or_else(|| tampered("bad entry id"))?;
        let mut found = false;
        for b in &r.bundles {
            let Some(bid) = unhex::<16>(b) else {
                return Err(tampered("bad bundle id in a revocation"));
            };
            let id = imported_id(&bid, &sender_id);
            let held = vault.payload.entries.values().find(|e| {
                e.id == id
                    && e.received_from
                        .as_ref()
                        .is_some_and(|p| p.from == signer.name && &p.reference == b)
            });
            if let Some(e) = held {
                found = true;
                let action = if matches!(e.status, Status::Revoked { .. }) {
                    "already-revoked"
                } else {
                    "revoked"
                };
                items.push(ImportItem {
                    name: e.name.clone(),
                    original: r.name.clone(),
                    action: action.into(),
                });
                targets.push((e.name.clone(), r.reason.clone().unwrap_or_default()));
            }
        }
        if !found {
            items.push(ImportItem {
                name: String::new(),
                original: r.name.clone(),
                action: "not-held".into(),
            });
        }
    }
    if targets.is_empty() {
        return Err(tampered(&format!(
            "this revocation notice names no entry you received from '{}'; nothing was changed",
            signer.name
        )));
    }
    if req.dry_run {
        return Ok(items);
    }
    for (name, reason) in targets {
        let e = vault.entry_mut(&name)?;
        if matches!(e.status, Status::Revoked { .. }) {
            continue;
        }
        let reason = if reason.is_empty() {
            format!("revoked by {}", signer.name)
        } else {
            format!("revoked by {}: {reason}", signer.name)
        };
        e.status = Status::Revoked {
            at: now,
            reason: Some(reason),
        };
        e.secret = None;
        e.history.clear();
        e.revision += 1;
        e.updated_at = now;
        vault.audit(
            now,
            "revoke",
            Some(&name),
            format!(
                "revocation notice from {} (bundle {})",
                signer.name, body.id
            ),
        );
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf::KdfParams;
    use crate::secret::Passphrase;
    use crate::share::contact::ContactKeys;
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
                name: (*name).into(),
                secret: crate::request::SecretInput::Value(Token::new((*secret).into())),
                scopes: vec!["read".into()],
                url: None,
                username: None,
                issuer: None,
                contact: None,
                used_by: vec![],
                tags: vec![],
                note: Some("n".into()),
                expires_at: None,
                rotate_every: Some(86_400),
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
