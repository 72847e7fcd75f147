//! Acknowledged findings (`jeton check ack NAME KIND [--until DATE]`): a finding the user has
//! looked at and accepts is not reported again, for good or until a date.
//!
//! An entry's acknowledgements live in an internal record beside it, like its issuer record:
//! an entry named [`ACK_PREFIX`] + the entry id in hex, whose `tags` are the acknowledgements
//! (`KIND`, or `KIND@UNTIL` with UNTIL in seconds since the epoch). The record's id is derived
//! from the entry's id, so two devices that acknowledge findings of one entry write the same
//! record, and the sync merge keeps both (tags merge value by value); the vault format does not
//! change, and vaults without acknowledgements are byte for byte what they were.

use super::{FindingKind, LifecycleResponse};
use crate::entry::{ACK_PREFIX, Entry, EntryId};
use crate::time::{Time, rfc3339};
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Domain-separation label of an acknowledgement record's id (docs/FORMAT.md).
const RECORD_ID_LABEL: &[u8] = b"jeton ack record v1";

/// The acknowledgements of one entry: (kind, until).
pub type EntryAcks = Vec<(FindingKind, Option<Time>)>;

/// One acknowledged finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Entry name.
    pub entry: String,
    /// The kind of finding acknowledged.
    pub kind: FindingKind,
    /// Until when (`None`: for good).
    pub until: Option<Time>,
}

impl Ack {
    /// True while the acknowledgement hides its finding.
    pub fn holds(&self, now: Time) -> bool {
        self.until.is_none_or(|t| t > now)
    }
}

/// The name of the acknowledgement record of the entry with id `id`.
pub fn record_name(id: &EntryId) -> String {
    format!("{ACK_PREFIX}{}", data_encoding::HEXLOWER.encode(id))
}

/// The id of that record: the first 16 bytes of SHA-256(label || entry id), the same on
/// every device.
fn record_id(id: &EntryId) -> EntryId {
    let digest = Sha256::new()
        .chain_update(RECORD_ID_LABEL)
        .chain_update(id)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn tag(kind: FindingKind, until: Option<Time>) -> String {
    match until {
        None => kind.label().to_owned(),
        Some(t) => format!("{}@{t}", kind.label()),
    }
}

/// Reads one tag; `None` for one this version does not know (kept as it is).
fn parse_tag(t: &str) -> Option<(FindingKind, Option<Time>)> {
    let (kind, until) = match t.split_once('@') {
        Some((k, u)) => (k, Some(u.parse::<Time>().ok()?)),
        None => (t, None),
    };
    Some((FindingKind::from_label(kind)?, until))
}

/// The acknowledgements of entry `e`, one per kind: when two devices acknowledged one kind
/// with different dates, the later date (or none, for good) holds.
pub fn of(vault: &Vault, e: &Entry) -> Result<EntryAcks> {
    let Some(r) = vault.payload.entries.get(&record_name(&e.id))? else {
        return Ok(Vec::new());
    };
    let mut out: EntryAcks = Vec::new();
    for (kind, until) in r.tags.iter().filter_map(|t| parse_tag(t)) {
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, u)) => {
                *u = match (*u, until) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                }
            }
            None => out.push((kind, until)),
        }
    }
    Ok(out)
}

/// Acknowledges (`until`: for good when `None`) or, with `remove`, withdraws the
/// acknowledgement of findings of `kind` about entry `name`.
pub fn set(
    vault: &mut Vault,
    name: &str,
    kind: FindingKind,
    until: Option<Time>,
    remove: bool,
    now: Time,
) -> Result<LifecycleResponse> {
    if !kind.about_entries() {
        return Err(Error::Usage(format!(
            "{} is about the vault, not an entry: hide it with `jeton check --ignore {}`",
            kind.label(),
            kind.label()
        )));
    }
    if let Some(t) = until.filter(|t| *t <= now) {
        return Err(Error::Usage(format!(
            "--until {} is in the past",
            rfc3339(t)
        )));
    }
    let e = vault.entry(name)?;
    let id = e.id;
    let name = e.name.clone();
    let before = of(vault, e)?;
    let had = before.iter().find(|(k, _)| *k == kind).map(|(_, u)| *u);
    let record = record_name(&id);
    let changed = if remove {
        had.is_some()
    } else {
        had != Some(until)
    };
    if changed {
        if !vault.payload.entries.contains_key(&record) {
            let r = Entry::blank(record_id(&id), record.clone(), now);
            vault.payload.entries.insert(Box::new(r));
        }
        let r = vault.entry_mut(&record)?;
        r.tags
            .retain(|t| parse_tag(t).is_none_or(|(k, _)| k != kind));
        if !remove {
            r.tags.push(tag(kind, until));
        }
        r.revision += 1;
        r.updated_at = now;
        let detail = match (remove, until) {
            (true, _) => format!("{} no longer acknowledged", kind.label()),
            (false, None) => format!("{} acknowledged", kind.label()),
            (false, Some(t)) => format!("{} acknowledged until {}", kind.label(), rfc3339(t)),
        };
        vault.audit(now, "ack", Some(&name), detail);
    }
    Ok(LifecycleResponse::Acked {
        name,
        kind,
        until: if remove { None } else { until },
        removed: remove,
        changed,
    })
}

/// Every acknowledgement in the vault, by entry name then kind, expired ones included.
pub fn list(vault: &Vault) -> Result<Vec<Ack>> {
    let mut out = Vec::new();
    vault.payload.entries.scan(|e| {
        if crate::entry::is_internal(&e.name) {
            return Ok(());
        }
        if vault.payload.entries.contains_key(&record_name(&e.id)) {
            for (kind, until) in of(vault, e)? {
                out.push(Ack {
                    entry: e.name.clone(),
                    kind,
                    until,
                });
            }
        }
        Ok(())
    })?;
    Ok(out)
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

/// Drops the findings that an acknowledgement holding at `now` hides; returns how many.
pub fn hide_acknowledged(
    vault: &Vault,
    findings: &mut Vec<super::Finding>,
    now: Time,
) -> Result<usize> {
    let mut acks: Vec<(String, EntryAcks)> = Vec::new();
    for f in findings.iter() {
        let Some(name) = &f.entry else { continue };
        if acks.iter().any(|(n, _)| n == name) {
            continue;
        }
        let Some(e) = vault.payload.entries.get(name)? else {
            continue;
        };
        if vault.payload.entries.contains_key(&record_name(&e.id)) {
            acks.push((name.clone(), of(vault, e)?));
        }
    }
    let before = findings.len();
    findings.retain(|f| {
        let Some(name) = &f.entry else { return true };
        !acks.iter().any(|(n, list)| {
            n == name
                && list
                    .iter()
                    .any(|(k, u)| *k == f.kind && u.is_none_or(|t| t > now))
        })
    });
    Ok(before - findings.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::testing::vault_with;

    #[test]
    fn tags_round_trip_and_unknown_ones_are_skipped() {
        assert_eq!(
            parse_tag(&tag(FindingKind::NoScopes, Some(42))),
            Some((FindingKind::NoScopes, Some(42)))
        );
        assert_eq!(
            parse_tag(&tag(FindingKind::Expired, None)),
            Some((FindingKind::Expired, None))
        );
        assert_eq!(parse_tag("a_kind_from_the_future"), None);
        assert_eq!(parse_tag("no_scopes@soon"), None);
    }

    /// The vector of docs/FORMAT.md, computed apart (Python's hashlib) from the text there.
    #[test]
    fn the_record_id_and_name_follow_the_format() {
        let id: EntryId = core::array::from_fn(|i| i as u8);
        assert_eq!(
            data_encoding::HEXLOWER.encode(&record_id(&id)),
            "1ae85123ef18fbcd3aef19b5a9201d1f"
        );
        assert_eq!(record_name(&id), ".ack/000102030405060708090a0b0c0d0e0f");
        assert!(crate::entry::is_internal(&record_name(&id)));
        assert!(!crate::entry::is_internal(".ack/notes"));
    }

    #[test]
    fn an_ack_hides_its_kind_until_its_date_and_the_record_id_is_derived() {
        let mut v = vault_with("a", "x");
        v.entry_mut("a").unwrap().scopes.clear();
        set(&mut v, "a", FindingKind::NoScopes, Some(1_000), false, 200).unwrap();
        let id = v.entry("a").unwrap().id;
        let r = v.entry(&record_name(&id)).unwrap();
        assert_eq!(r.id, record_id(&id));
        let kinds = |v: &Vault, now| {
            super::super::check(v, 0, now)
                .unwrap()
                .into_iter()
                .filter(|f| f.entry.as_deref() == Some("a"))
                .map(|f| f.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&v, 500), []);
        assert_eq!(kinds(&v, 1_000), [FindingKind::NoScopes]);
        set(&mut v, "a", FindingKind::NoScopes, None, true, 600).unwrap();
        assert_eq!(kinds(&v, 700), [FindingKind::NoScopes]);
        assert!(list(&v).unwrap().is_empty());
        assert!(set(&mut v, "a", FindingKind::WeakKdf, None, false, 700).is_err());
    }
}
