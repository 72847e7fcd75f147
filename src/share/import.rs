//! Reading bundles (SPEC §6, docs/FORMAT.md "Importing, check by check").
//!
//! `import` checks, in this order, and stops at the first failure with nothing written: age
//! decryption with this vault's identity (exit 3 when the bundle is not for us, 6 when it is
//! damaged), envelope shape, a signature present, a signature by a contact, the body, this vault
//! in the signed recipient list, the expiry, the bundle id never imported before, and the content.

use super::bundle::{
    BODY_VERSION, Body, BundleEntry, ENVELOPE_FORMAT, Envelope, Kind, MAX_BUNDLE_LEN,
    MAX_CLOCK_SKEW, MAX_EXPIRY, imported_id, verify,
};
use super::contact::{self, ContactView};
use super::identity::{self, Card};
use super::unhex;
use crate::entry::{Entry, Provenance, Status, validate_name, validate_new_name};
use crate::text::{Lines, is_clean};
use crate::time::{Time, rfc3339};
use crate::vault::{Contact, SeenBundle, Vault};
use crate::{Error, Result};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What to do when an imported name exists. Under `Fail` and `Overwrite`, a newer copy of an
/// entry this vault received from the same sender is no conflict: it updates that copy.
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
    /// `added`, `updated`, `renamed`, `overwritten`, `skipped`, `revoked`, `already-revoked`,
    /// `not-held`.
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

fn tampered(what: &str) -> Error {
    Error::Integrity(format!("bundle rejected: {what}; nothing was imported"))
}

/// The first bytes of every age file, binary or armored (age-encryption.org/v1).
const AGE_MAGIC: [&[u8]; 2] = [
    b"age-encryption.org/",
    b"-----BEGIN AGE ENCRYPTED FILE-----",
];

fn decrypt(identity: &age::x25519::Identity, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if !AGE_MAGIC.iter().any(|m| bytes.starts_with(m)) {
        return Err(tampered(
            "it is not an age file (a bundle is one, as `jeton share` writes it)",
        ));
    }
    let damaged = || tampered("it is corrupt or has been tampered with (age decryption failed)");
    let map = |e: age::DecryptError| match e {
        age::DecryptError::NoMatchingKeys => Error::Unlock(
            "this bundle is not addressed to this vault (none of its recipients is this vault's \
             identity; compare `jeton identity` with the card the sender holds)"
                .into(),
        ),
        _ => damaged(),
    };
    super::age_header::check(bytes).map_err(|why| tampered(&why))?;
    let reader = age::armor::ArmoredReader::new(bytes);
    let decryptor = age::Decryptor::new_buffered(reader).map_err(map)?;
    let mut stream = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(map)?;
    // One zeroizing buffer, no copy left behind as it grows: the plaintext holds secrets.
    crate::secret::read_capped(&mut stream, MAX_BUNDLE_LEN).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            tampered("its content is too large")
        } else {
            damaged()
        }
    })
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
            Some(card) if verify(&card.signing_key, body_bytes, &sig) => {
                let who = if card.name.is_empty() {
                    "a card".to_owned()
                } else {
                    format!("'{}'", crate::entry::printable(&card.name))
                };
                tampered(&format!(
                    "it is signed by {who} (fingerprint {}), who is not one of your contacts; \
                     check the fingerprint with them, then `jeton contact add NAME CARD`",
                    card.fingerprint()
                ))
            }
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
    if body.created_at > now.saturating_add(MAX_CLOCK_SKEW) {
        return Err(tampered(&format!(
            "it says it was made at {}, in the future (this machine's clock says {}); \
             check both clocks",
            rfc3339(body.created_at),
            rfc3339(now)
        )));
    }
    if body.expires_at.saturating_sub(body.created_at) > MAX_EXPIRY {
        return Err(tampered(
            "its lifetime is longer than the 366 days `jeton share` allows",
        ));
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
        validate_new_name(p)?;
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
        if let Some(field) = unclean_field(be) {
            return Err(tampered(&format!(
                "entry '{}' holds control characters in its {field}",
                be.name
            )));
        }
        let latest = [
            Some(be.created_at),
            Some(be.secret_set_at),
            be.last_rotated_at,
        ];
        if latest
            .into_iter()
            .flatten()
            .any(|t| t > body.created_at.saturating_add(MAX_CLOCK_SKEW))
        {
            return Err(tampered(&format!(
                "entry '{}' has times after the bundle was made",
                be.name
            )));
        }
        let Some(sender_id) = unhex::<16>(&be.id) else {
            return Err(tampered("it holds a bad or duplicate entry"));
        };
        if body.entries.iter().filter(|o| o.name == be.name).count() > 1 {
            return Err(tampered("it holds a bad or duplicate entry"));
        }
        let target = match &req.prefix {
            Some(p) => format!("{}/{}", p.trim_end_matches('/'), be.name),
            None => be.name.clone(),
        };
        validate_new_name(&target).map_err(|e| match req.prefix {
            None => Error::Usage(format!("{e}; import it under a prefix with --prefix P")),
            Some(_) => e,
        })?;
        let taken = |n: &str, plan: &[(String, &BundleEntry, &str)]| {
            vault.payload.entries.contains_key(n) || plan.iter().any(|(p, ..)| p == n)
        };
        if !taken(&target, &plan) {
            plan.push((target, be, "added"));
            continue;
        }
        // A newer copy of what this sender sent before is an update; `skip` and `rename` say
        // to keep the copy held here, so for them it stays a conflict.
        let may_update = matches!(req.on_conflict, OnConflict::Fail | OnConflict::Overwrite);
        if may_update && received_earlier(vault, &target, signer, &sender_id)? {
            plan.push((target, be, "updated"));
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
                    .find(|n| validate_new_name(n).is_ok() && !taken(n, &plan))
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
        if action == "updated" {
            keep_local_records(vault, &name, &mut entry)?;
        }
        vault.insert_replacing(entry, now)?;
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

/// True when the entry called `name` is a live copy of the sender's entry `sender_id`, received
/// from `signer` before: a new bundle of it (a rotated token shared again) is an update, not a
/// conflict.
fn received_earlier(
    vault: &Vault,
    name: &str,
    signer: &Contact,
    sender_id: &[u8; 16],
) -> Result<bool> {
    let Some(e) = vault.payload.entries.get(name)? else {
        return Ok(false);
    };
    let from_signer = e.received_from.as_ref().is_some_and(|p| {
        p.from == signer.name
            && unhex::<16>(&p.reference).is_some_and(|b| imported_id(&b, sender_id) == e.id)
    });
    Ok(from_signer && !matches!(e.status, Status::Revoked { .. }))
}

/// An update replaces what the sender owns (the secret and its metadata) and keeps what this
/// vault recorded about its own copy: where it was shared on, the integrations and tags added
/// here, and a disabled status. The secret it replaces goes to history, unless it is the same.
fn keep_local_records(vault: &mut Vault, name: &str, entry: &mut Entry) -> Result<()> {
    let old = vault.entry_mut(name)?;
    entry.shared_with = std::mem::take(&mut old.shared_with);
    for (mine, theirs) in [
        (&old.used_by, &mut entry.used_by),
        (&old.tags, &mut entry.tags),
    ] {
        let extra: Vec<String> = mine
            .iter()
            .filter(|m| !theirs.contains(m))
            .cloned()
            .collect();
        theirs.extend(extra);
    }
    if matches!(old.status, Status::Disabled { .. }) {
        entry.status = old.status.clone();
    }
    if old.secret == entry.secret {
        // Shared again unchanged: nothing to keep in history twice.
        old.secret = None;
    }
    Ok(())
}

/// The first metadata field of `be` that breaks [`crate::text`]'s input rule: a sender must not
/// slip escape sequences or forged rows into what this vault prints. The secret is not checked.
fn unclean_field(be: &BundleEntry) -> Option<&'static str> {
    let lists = [
        ("scopes", &be.scopes),
        ("used_by", &be.used_by),
        ("tags", &be.tags),
    ];
    let fields = [
        ("url", &be.url),
        ("username", &be.username),
        ("issuer", &be.issuer),
        ("contact", &be.contact),
    ];
    let bad_list = lists
        .into_iter()
        .find(|(_, l)| !l.iter().all(|s| is_clean(s, Lines::One)));
    let bad_field = fields
        .into_iter()
        .find(|(_, f)| !f.as_deref().is_none_or(|s| is_clean(s, Lines::One)));
    let bad_note = (!be.note.as_deref().is_none_or(|n| is_clean(n, Lines::Many))).then_some("note");
    bad_list
        .map(|(w, _)| w)
        .or(bad_field.map(|(w, _)| w))
        .or(bad_note)
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
        if validate_name(&r.name).is_err() {
            return Err(tampered("a revocation holds an invalid entry name"));
        }
        if !r.reason.as_deref().is_none_or(|s| is_clean(s, Lines::One)) {
            return Err(tampered(&format!(
                "the revocation of '{}' holds control characters in its reason",
                r.name
            )));
        }
        let sender_id = unhex::<16>(&r.id).ok_or_else(|| tampered("bad entry id"))?;
        let mut found = false;
        for b in &r.bundles {
            let Some(bid) = unhex::<16>(b) else {
                return Err(tampered("bad bundle id in a revocation"));
            };
            let id = imported_id(&bid, &sender_id);
            let held = vault.payload.entries.values()?.find(|e| {
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
        vault.forget_previous_on_save();
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
