//! The sync record of format v2, which merged whole entries: read and converted to today's,
//! never written. Each entry's fields all take the write of the change its version shows (the
//! version's stamp and its device's count), which is what v2 merged by; every device converts
//! one version to the same registers.

use super::field::{Fields, Write};
use super::round::{Local, Record};
use super::{Clock, DeviceId, Items, Register, Stamp, SyncState, Tombstone, Tracked, sorted};
use crate::entry::EntryId;
use crate::time::Time;
use crate::vault::Payload;
use crate::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

#[derive(Deserialize)]
struct RecordV2 {
    state: StateV2,
    synced_at: Time,
    local: Option<LocalV2>,
}

#[derive(Deserialize)]
struct LocalV2 {
    published: u64,
    confirmed: u64,
    commitment: [u8; 32],
    retired: Vec<[u8; 32]>,
    published_shape: [u8; 32],
    #[serde(deserialize_with = "sorted::map")]
    devices: BTreeMap<DeviceId, HeardV2>,
}

#[derive(Deserialize)]
struct HeardV2 {
    generation: u64,
    published_at: Time,
}

#[derive(Deserialize)]
struct StateV2 {
    device: DeviceId,
    #[serde(deserialize_with = "sorted::map")]
    entries: BTreeMap<EntryId, TrackedV2>,
    #[serde(deserialize_with = "sorted::map")]
    deletions: BTreeMap<EntryId, Tombstone>,
    #[serde(deserialize_with = "sorted::map")]
    contacts: BTreeMap<String, Register>,
    #[serde(deserialize_with = "sorted::map")]
    contact_removals: BTreeMap<String, Clock>,
    settings: Option<Register>,
}

#[derive(Deserialize)]
struct TrackedV2 {
    clock: Clock,
    revision: u64,
    stamp: Stamp,
    items: Items,
    revoked_at: Option<Time>,
}

/// Reads a format v2 sync record (strictly, as [`Record::decode`]) and returns today's
/// encoding of it, the field registers taken from `payload`.
pub fn upgrade_record(bytes: &[u8], payload: &Payload) -> Result<Zeroizing<Vec<u8>>> {
    if bytes.len() > super::round::MAX_RECORD {
        return Err(Error::corrupt_vault());
    }
    let old = match postcard::take_from_bytes::<RecordV2>(bytes) {
        Ok((r, [])) => r,
        _ => return Err(Error::corrupt_vault()),
    };
    let heads: BTreeMap<EntryId, (&str, u64)> = (payload.entries.heads()?.into_iter())
        .map(|h| (h.id, (h.name, h.revision)))
        .collect();
    let mut entries = BTreeMap::new();
    for (id, t) in old.state.entries {
        let write = Write {
            stamp: t.stamp,
            counter: t.clock.get(&t.stamp.device),
        };
        let fields = match heads.get(&id) {
            Some((name, revision)) if *revision == t.revision => {
                let e = payload
                    .entries
                    .get(name)?
                    .ok_or_else(Error::corrupt_vault)?;
                Fields::new(e, write)?
            }
            // Changed here since the last sync (which fields, v2 did not keep: the next absorb
            // counts them all, as v2 would have), or removed (the next absorb makes it a
            // tombstone).
            _ => Fields::unknown(write),
        };
        entries.insert(
            id,
            Tracked {
                clock: t.clock,
                revision: t.revision,
                stamp: t.stamp,
                items: t.items,
                revoked_at: t.revoked_at,
                fields,
                siblings: Vec::new(),
            },
        );
    }
    let state = SyncState {
        device: old.state.device,
        entries,
        deletions: old.state.deletions,
        contacts: old.state.contacts,
        contact_removals: old.state.contact_removals,
        settings: old.state.settings,
        forgotten: BTreeMap::new(),
    };
    // A device's own vault takes this host's name; a replica's device names itself when it
    // publishes in today's format.
    let name = if old.local.is_some() {
        super::round::host_name()
    } else {
        String::new()
    };
    let local = old.local.map(|l| Local {
        published: l.published,
        confirmed: l.confirmed,
        commitment: l.commitment,
        retired: l.retired,
        published_shape: l.published_shape,
        devices: (l.devices.into_iter())
            .map(|(d, h)| {
                let heard = super::round::Heard {
                    generation: h.generation,
                    published_at: h.published_at,
                    name: String::new(),
                };
                (d, heard)
            })
            .collect(),
    });
    Record {
        state,
        synced_at: old.synced_at,
        local,
        name,
        extra: Default::default(),
    }
    .encode()
}
