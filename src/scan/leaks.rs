//! What `check` remembers of a scan: an entry whose current secret was found somewhere is
//! reported as `leaked` until the secret changes.
//!
//! Like acknowledgements (`crate::lifecycle::ack`), the memory is an internal entry beside the
//! entry: named [`LEAK_PREFIX`] + the entry's id in hex, its id derived from the entry's, so two
//! devices that find one leak write the same record and the sync merge joins them. Its one tag
//! names the secret that leaked by a digest (`secret:` + 32 hex digits of SHA-256 over a label,
//! the entry id and the secret; the vault holds the secret itself, so the digest adds nothing an
//! attacker of the file could use): a rotation, or any other new secret, no longer matches it,
//! and the finding ends. `note` says where it was found last; `created_at` when first,
//! `updated_at` when last. docs/FORMAT.md lays it out.

use crate::entry::{Entry, EntryId, LEAK_PREFIX, Status};
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain-separation label of a leak record's id (docs/FORMAT.md).
const RECORD_ID_LABEL: &[u8] = b"jeton leak record v1";
/// Domain-separation label of the digest that names the leaked secret (docs/FORMAT.md).
const SECRET_LABEL: &[u8] = b"jeton leaked secret v1";
/// The prefix of the tag holding that digest.
const SECRET_TAG: &str = "secret:";

/// The tag naming `e`'s current secret.
fn secret_tag(e: &Entry) -> Option<String> {
    let secret = e.secret.as_ref()?;
    let digest = Sha256::new()
        .chain_update(SECRET_LABEL)
        .chain_update(e.id)
        .chain_update(secret.expose_secret().as_bytes())
        .finalize();
    Some(format!(
        "{SECRET_TAG}{}",
        data_encoding::HEXLOWER.encode(&digest[..16])
    ))
}

/// One current secret found by a scan: the entry, and where (as `scan` prints the place).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// Entry name.
    pub entry: String,
    /// `PLACE (FORM)`, one line.
    pub place: String,
}

/// What `check` reports of a leak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// Where it was found last.
    pub place: String,
    /// When it was first found.
    pub first: Time,
    /// When it was found last.
    pub last: Time,
}

/// The name of the leak record of the entry with id `id`.
pub fn record_name(id: &EntryId) -> String {
    format!("{LEAK_PREFIX}{}", data_encoding::HEXLOWER.encode(id))
}

/// The id of that record: the first 16 bytes of SHA-256(label || entry id).
fn record_id(id: &EntryId) -> EntryId {
    let digest = Sha256::new()
        .chain_update(RECORD_ID_LABEL)
        .chain_update(id)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The leak of `e`'s current secret, if a scan found it and the secret has not changed since.
pub fn of(vault: &Vault, e: &Entry) -> Result<Option<Leak>> {
    let Some(tag) = secret_tag(e) else {
        return Ok(None);
    };
    let Some(r) = vault.payload.entries.get(&record_name(&e.id))? else {
        return Ok(None);
    };
    Ok(r.tags.contains(&tag).then(|| Leak {
        place: r.note.clone().unwrap_or_default(),
        first: r.created_at,
        last: r.updated_at,
    }))
}

/// Remembers what a scan found (the first place of each entry counts). Returns how many
/// entries' records changed.
pub fn record(vault: &mut Vault, found: Vec<Found>, now: Time) -> Result<usize> {
    let mut changed = 0;
    let mut seen: Vec<String> = Vec::new();
    for f in found {
        if seen.contains(&f.entry) {
            continue;
        }
        seen.push(f.entry.clone());
        // Renamed or removed since the scan asked for the secrets: nothing to remember.
        let Some(e) = vault.payload.entries.get(&f.entry)? else {
            continue;
        };
        if matches!(e.status, Status::Revoked { .. }) || crate::entry::is_internal(&e.name) {
            continue;
        }
        if f.place.contains(['\n', '\r']) {
            return Err(Error::Usage("a place is one line".into()));
        }
        let Some(tag) = secret_tag(e) else { continue };
        let (id, name) = (e.id, e.name.clone());
        let record = record_name(&id);
        if !vault.payload.entries.contains_key(&record) {
            let r = Entry::blank(record_id(&id), record.clone(), now);
            vault.payload.entries.insert(Box::new(r));
        }
        let r = vault.entry_mut(&record)?;
        let new_leak = !r.tags.contains(&tag);
        if new_leak {
            r.tags = vec![tag];
            r.created_at = now;
        }
        r.note = Some(f.place.clone());
        r.updated_at = now;
        r.revision += 1;
        if new_leak {
            vault.audit(
                now,
                "leak",
                Some(&name),
                format!("current secret found by scan at {}", f.place),
            );
        }
        changed += 1;
    }
    Ok(changed)
}

/// Removes the record of the entry with id `id` (the entry was removed).
pub fn forget(vault: &mut Vault, id: &EntryId, now: Time) -> Result<()> {
    if let Some(r) = vault.payload.entries.remove(&record_name(id))? {
        vault
            .payload
            .deletions
            .push(crate::vault::Deletion { id: r.id, at: now });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_named_and_identified_by_the_entry_id() {
        let id: EntryId = core::array::from_fn(|i| i as u8);
        assert_eq!(record_name(&id), ".leak/000102030405060708090a0b0c0d0e0f");
        assert!(crate::entry::is_internal(&record_name(&id)));
        let hex = data_encoding::HEXLOWER.encode(&record_id(&id));
        assert_eq!(
            hex, "db90d8f6f4046b06d5e8960e156da389",
            "docs/FORMAT.md's vector"
        );
    }
}
