//! Sync: merging two copies of one vault, made on different devices, without losing an edit.
//!
//! Each replica keeps a [`SyncState`] beside its payload (not inside the entries, so a vault
//! that never syncs is unchanged): a version vector ([`Clock`]) and a hybrid stamp ([`Stamp`])
//! per entry, contact and the settings, and the clocks of deletions. Local edits are found at
//! sync time, not hooked into every edit path: [`SyncState::absorb_local`] compares each entry's
//! revision with the one it last saw and counts a change by this device where they differ.
//! [`merge`] is then a pure function of two absorbed replicas: no I/O, no clock read.
//!
//! The rules, by entry id, are in docs/FORMAT.md ("Sync merge"); the property tests in
//! `tests/sync_merge.rs` check that every device ends with the same content whatever order the
//! rounds ran in.

mod clock;
pub mod driver;
pub mod field;
mod join;
mod merge;
pub mod remote;
pub mod round;
mod sorted;
mod v2;

pub use clock::{Clock, DeviceId, Order, Stamp};
pub use merge::{Merged, Report, merge};
pub use v2::upgrade_record;

use crate::entry::{Entry, EntryId, Status};
use crate::time::Time;
use crate::vault::Payload;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// A sync operation on an unlocked vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncRequest {
    /// Make the vault a synced one (format v2, a new device id); nothing if it already is.
    Attach,
    /// One round with the files read from the remote.
    Round {
        /// The remote's `replicas/` files.
        incoming: Vec<round::Incoming>,
        /// Go on although the remote went back in time.
        accept_rollback: bool,
    },
    /// The devices and open conflicts.
    Status,
    /// Take the key of a replica re-keyed on another device (its `passwd`), opened with the
    /// passphrase set there.
    AdoptKey {
        /// The remote's `replicas/` files.
        incoming: Vec<round::Incoming>,
        /// The passphrase set on the other device.
        #[serde(with = "crate::secret::serde_token")]
        passphrase: crate::secret::Token,
    },
    /// Give this device another name.
    RenameDevice(String),
    /// Forget another device (a name or the start of its id).
    Forget(String),
    /// Answer conflicts: those of `names`, or every open one with `all`. A field with a value
    /// waiting keeps its current value, or with `take_other` takes the waiting one.
    Resolve {
        /// The entries.
        names: Vec<String>,
        /// Every entry with an open conflict.
        all: bool,
        /// Take the other device's value of each field in conflict.
        take_other: bool,
    },
}

impl SyncRequest {
    /// True when the request may change the vault.
    pub fn writes(&self) -> bool {
        !matches!(self, SyncRequest::Status)
    }
}

/// What a sync request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The vault syncs.
    Attached {
        /// The vault id, hex.
        vault: String,
        /// This device's id, hex.
        device: String,
        /// It already did.
        already: bool,
    },
    /// What a round did, and the replica to publish.
    Round(Box<round::Round>),
    /// Devices, this one first, and entries with an open conflict.
    Status {
        /// The vault id, hex.
        vault: String,
        /// Every device heard from.
        devices: Vec<round::DeviceStatus>,
        /// Entries with a conflict nobody looked at.
        conflicts: Vec<String>,
        /// Fields with a value waiting for a choice.
        choices: Vec<Choice>,
    },
    /// This device's new name.
    Renamed(String),
    /// The device forgotten, id in hex.
    Forgot(String),
    /// Conflicts marked as looked at: each name asked for (or every open one), and whether
    /// it had an open conflict.
    Resolved(Vec<(String, bool)>),
    /// The vault now uses the key of the named replica.
    Adopted(String),
}

/// A field changed on two devices at once: the current value and one waiting for a choice.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Choice {
    /// The entry.
    pub name: String,
    /// The field (`url`, `note`, ...).
    pub field: String,
    /// Its current value, as shown to people.
    pub current: String,
    /// The other value, as shown to people.
    pub other: String,
    /// The device that wrote the other value, hex.
    pub device: String,
    /// When it was written (that device's clock).
    pub at: Time,
}

/// Runs one sync request.
pub fn execute(
    vault: &mut crate::vault::Vault,
    request: SyncRequest,
    now: Time,
) -> Result<SyncResponse> {
    let vault_hex = crate::share::hex(vault.id());
    match request {
        SyncRequest::Attach => {
            let already = vault.sync_record().is_some();
            let device = if already {
                round::Record::of(vault)?
                    .map(|r| r.state.device)
                    .unwrap_or_default()
            } else {
                round::attach(vault, now)?
            };
            Ok(SyncResponse::Attached {
                vault: vault_hex,
                device: crate::share::hex(&device),
                already,
            })
        }
        SyncRequest::Round {
            incoming,
            accept_rollback,
        } => round::round(vault, incoming, accept_rollback, now)
            .map(|r| SyncResponse::Round(Box::new(r))),
        SyncRequest::Status => {
            let devices = round::devices(vault)?.ok_or_else(|| {
                Error::NotFound("this vault does not sync: attach it with `jeton sync init`".into())
            })?;
            let conflicts = round::unresolved_conflicts(vault)?.into_keys().collect();
            let choices = round::choices(vault)?;
            Ok(SyncResponse::Status {
                vault: vault_hex,
                devices,
                conflicts,
                choices,
            })
        }
        SyncRequest::AdoptKey {
            incoming,
            passphrase,
        } => {
            let passphrase = crate::secret::Passphrase::new(passphrase.expose_secret().to_owned());
            round::adopt_key(vault, &incoming, &passphrase, now).map(SyncResponse::Adopted)
        }
        SyncRequest::Resolve {
            names,
            all,
            take_other,
        } => round::resolve(vault, names, all, take_other, now).map(SyncResponse::Resolved),
        SyncRequest::RenameDevice(name) => {
            round::rename_device(vault, &name, now)?;
            Ok(SyncResponse::Renamed(name))
        }
        SyncRequest::Forget(device) => round::forget(vault, &device, now).map(SyncResponse::Forgot),
    }
}

/// What [`SyncState::absorb_local`] counted as this device's changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Absorbed {
    /// Entries changed or added.
    pub changed: BTreeSet<EntryId>,
    /// Entries removed.
    pub removed: usize,
    /// Entries given a tombstone here: those removed, and deletion records without one.
    pub gone: BTreeSet<EntryId>,
    /// Something else changed: a contact, the settings, a deletion record.
    pub other: bool,
}

impl Absorbed {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed == 0 && !self.other
    }
}

/// What one replica knows about the history of its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The device this replica belongs to: its changes are counted under this id.
    pub device: DeviceId,
    /// Every entry of the payload, by id.
    #[serde(deserialize_with = "sorted::map")]
    pub entries: BTreeMap<EntryId, Tracked>,
    /// Entries removed, by id.
    #[serde(deserialize_with = "sorted::map")]
    pub deletions: BTreeMap<EntryId, Tombstone>,
    /// Every contact of the payload, by name.
    #[serde(deserialize_with = "sorted::map")]
    pub contacts: BTreeMap<String, Register>,
    /// Contacts removed, by name.
    #[serde(deserialize_with = "sorted::map")]
    pub contact_removals: BTreeMap<String, Clock>,
    /// The vault settings (`None` until first absorbed).
    pub settings: Option<Register>,
    /// Devices someone forgot (`sync forget`), with when: never read again, never missed.
    #[serde(deserialize_with = "sorted::map")]
    pub forgotten: BTreeMap<DeviceId, Time>,
}

/// The sync history of one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    /// Which changes this version has seen.
    pub clock: Clock,
    /// The entry's revision when last absorbed or merged: a different one is a local change.
    pub revision: u64,
    /// The stamp of the change whose fields this version shows.
    pub stamp: Stamp,
    /// Each value of the entry's lists with the change that added it, so that a value removed on
    /// one device is not brought back by a copy that merely had not seen the removal, while
    /// values added on two devices at once are both kept.
    pub items: Items,
    /// When the entry was revoked, if it was when last seen (a removal carries it on).
    pub revoked_at: Option<Time>,
    /// The register of each scalar field: which write set it.
    pub fields: field::Fields,
    /// Values written to a field on another device at the same time as the current one,
    /// waiting for someone to choose (`jeton sync resolve`).
    pub siblings: Vec<field::Sibling>,
}

/// Which list of an entry an [`Item`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ListField {
    /// `scopes`.
    Scopes,
    /// `used_by`.
    UsedBy,
    /// `tags`.
    Tags,
}

impl ListField {
    /// Every list field.
    pub const ALL: [ListField; 3] = [ListField::Scopes, ListField::UsedBy, ListField::Tags];

    /// The list in `e`.
    pub fn of(self, e: &Entry) -> &Vec<String> {
        match self {
            ListField::Scopes => &e.scopes,
            ListField::UsedBy => &e.used_by,
            ListField::Tags => &e.tags,
        }
    }

    fn of_mut(self, e: &mut Entry) -> &mut Vec<String> {
        match self {
            ListField::Scopes => &mut e.scopes,
            ListField::UsedBy => &mut e.used_by,
            ListField::Tags => &mut e.tags,
        }
    }
}

/// One value of an entry list, tagged with the change that added it: the `counter`-th change by
/// `device` to this entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Item {
    /// Which list.
    pub field: ListField,
    /// The value.
    pub value: String,
    /// The device that added it.
    pub device: DeviceId,
    /// That device's count in the entry's clock when it added it.
    pub counter: u64,
}

/// The [`Item`]s of one entry: a set, held sorted (an entry has a handful) and written as a
/// sequence in that order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Items(#[serde(deserialize_with = "sorted::set")] Vec<Item>);

impl Items {
    /// The items, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Item> {
        self.0.iter()
    }

    /// True when `item` is one of them.
    pub fn contains(&self, item: &Item) -> bool {
        self.0.binary_search(item).is_ok()
    }

    /// Adds `item` in its place (nothing if it is there).
    pub fn insert(&mut self, item: Item) {
        if let Err(i) = self.0.binary_search(&item) {
            self.0.insert(i, item);
        }
    }

    /// Keeps only the items `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Item) -> bool) {
        self.0.retain(keep);
    }
}

impl FromIterator<Item> for Items {
    fn from_iter<I: IntoIterator<Item = Item>>(iter: I) -> Items {
        let mut items: Vec<Item> = iter.into_iter().collect();
        items.sort();
        items.dedup();
        Items(items)
    }
}

impl<'a> IntoIterator for &'a Items {
    type Item = &'a Item;
    type IntoIter = std::slice::Iter<'a, Item>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A removed entry: the clock of the removal, and whether the entry was revoked then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Which changes the removal had seen: it covers the versions it had seen, not later ones.
    pub clock: Clock,
    /// Set when the removed entry was revoked: a concurrent edit that survives is revoked too.
    pub revoked_at: Option<Time>,
}

/// The sync history of a value kept whole (a contact, the settings): last writer wins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// Which changes this version has seen.
    pub clock: Clock,
    /// The stamp of the change this version shows.
    pub stamp: Stamp,
    /// SHA-256 of the value's postcard encoding when last absorbed or merged (these values hold
    /// no secret): a different digest is a local change.
    pub digest: [u8; 32],
}

impl SyncState {
    /// An empty state for `device`: every entry of the payload will count as its change.
    pub fn new(device: DeviceId) -> SyncState {
        SyncState {
            device,
            entries: BTreeMap::new(),
            deletions: BTreeMap::new(),
            contacts: BTreeMap::new(),
            contact_removals: BTreeMap::new(),
            settings: None,
            forgotten: BTreeMap::new(),
        }
    }

    /// Counts the changes made to `payload` on this device since the state last saw it: an
    /// entry whose revision differs (or that is new) gets this device's next count and a new
    /// stamp from its `updated_at`; an entry gone gets a tombstone that covers what was seen of
    /// it; a contact or the settings whose content changed likewise (`now` stamps a settings
    /// change, which records no time of its own). Changes nothing else.
    pub fn absorb_local(&mut self, payload: &Payload, now: Time) -> Result<Absorbed> {
        let mut out = Absorbed::default();
        let me = self.device;
        let heads = payload.entries.heads()?;
        let mut ids: Vec<EntryId> = heads.iter().map(|h| h.id).collect();
        ids.sort_unstable();
        let present = |id: &EntryId| ids.binary_search(id).is_ok();
        // Only entries whose revision moved are decoded.
        for h in heads {
            if self
                .entries
                .get(&h.id)
                .is_some_and(|t| t.revision == h.revision)
            {
                continue;
            }
            let e = payload
                .entries
                .get(h.name)?
                .ok_or_else(Error::corrupt_vault)?;
            let tomb = self.deletions.get(&e.id).map(|t| &t.clock);
            match self.entries.get_mut(&e.id) {
                Some(t) if t.revision == e.revision => {}
                Some(t) => {
                    // A change made here after seeing a removal of this entry follows it.
                    if let Some(d) = tomb {
                        t.clock.join(d);
                    }
                    let n = t.clock.bump(me);
                    out.changed.insert(e.id);
                    t.stamp = Stamp::next(Some(t.stamp), e.updated_at, me);
                    let write = field::Write {
                        stamp: t.stamp,
                        counter: n,
                    };
                    // A field written here answers the conflicts it had.
                    let written = t.fields.absorb(e, write)?;
                    t.siblings.retain(|s| !written.contains(&s.field));
                    t.revision = e.revision;
                    t.revoked_at = revoked_at(e);
                    t.items
                        .retain(|item| item.field.of(e).contains(&item.value));
                    add_items(&mut t.items, e, me, n);
                }
                None => {
                    let mut clock = tomb.cloned().unwrap_or_default();
                    let n = clock.bump(me);
                    out.changed.insert(e.id);
                    let mut items = Items::default();
                    add_items(&mut items, e, me, n);
                    let stamp = Stamp::next(None, e.updated_at, me);
                    let write = field::Write { stamp, counter: n };
                    self.entries.insert(
                        e.id,
                        Tracked {
                            clock,
                            revision: e.revision,
                            stamp,
                            items,
                            revoked_at: revoked_at(e),
                            fields: field::Fields::new(e, write)?,
                            siblings: Vec::new(),
                        },
                    );
                }
            }
        }
        let gone: Vec<EntryId> = (self.entries.keys())
            .filter(|id| !present(id))
            .copied()
            .collect();
        for id in gone {
            let Some(t) = self.entries.remove(&id) else {
                continue;
            };
            let tomb = self.deletions.entry(id).or_insert(Tombstone {
                clock: Clock::default(),
                revoked_at: None,
            });
            tomb.clock.join(&t.clock);
            tomb.clock.bump(me);
            out.removed += 1;
            out.gone.insert(id);
            tomb.revoked_at = tomb.revoked_at.or(t.revoked_at);
        }
        for d in &payload.deletions {
            if !present(&d.id) && !self.deletions.contains_key(&d.id) {
                let mut clock = Clock::default();
                clock.bump(me);
                out.other = true;
                out.gone.insert(d.id);
                self.deletions.insert(
                    d.id,
                    Tombstone {
                        clock,
                        revoked_at: None,
                    },
                );
            }
        }
        out.other |= self.absorb_contacts(payload)?;
        let digest = digest(&payload.settings)?;
        match &mut self.settings {
            Some(r) if r.digest == digest => {}
            Some(r) => {
                out.other = true;
                r.clock.bump(me);
                r.stamp = Stamp::next(Some(r.stamp), now, me);
                r.digest = digest;
            }
            None => {
                out.other = true;
                let mut clock = Clock::default();
                clock.bump(me);
                let stamp = Stamp::next(None, now, me);
                self.settings = Some(Register {
                    clock,
                    stamp,
                    digest,
                });
            }
        }
        Ok(out)
    }

    fn absorb_contacts(&mut self, payload: &Payload) -> Result<bool> {
        let mut changed = false;
        let me = self.device;
        for c in &payload.contacts {
            let digest = digest(c)?;
            let removed = self.contact_removals.get(&c.name);
            match self.contacts.get_mut(&c.name) {
                Some(r) if r.digest == digest => {}
                Some(r) => {
                    changed = true;
                    if let Some(d) = removed {
                        r.clock.join(d);
                    }
                    r.clock.bump(me);
                    r.stamp = Stamp::next(Some(r.stamp), c.added_at, me);
                    r.digest = digest;
                }
                None => {
                    changed = true;
                    let mut clock = removed.cloned().unwrap_or_default();
                    clock.bump(me);
                    let stamp = Stamp::next(None, c.added_at, me);
                    let reg = Register {
                        clock,
                        stamp,
                        digest,
                    };
                    self.contacts.insert(c.name.clone(), reg);
                }
            }
        }
        let gone: Vec<String> = (self.contacts.keys())
            .filter(|n| !payload.contacts.iter().any(|c| &c.name == *n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = self.contacts.remove(&name) {
                changed = true;
                let clock = self.contact_removals.entry(name).or_default();
                clock.join(&r.clock);
                clock.bump(me);
            }
        }
        Ok(changed)
    }
}

fn add_items(items: &mut Items, e: &Entry, device: DeviceId, counter: u64) {
    for field in ListField::ALL {
        for value in field.of(e) {
            if !items.iter().any(|i| i.field == field && &i.value == value) {
                items.insert(Item {
                    field,
                    value: value.clone(),
                    device,
                    counter,
                });
            }
        }
    }
}

fn revoked_at(e: &Entry) -> Option<Time> {
    match e.status {
        Status::Revoked { at, .. } => Some(at),
        _ => None,
    }
}

/// SHA-256 of a value's postcard encoding.
fn digest<T: Serialize>(value: &T) -> Result<[u8; 32]> {
    let bytes = postcard::to_stdvec(value)
        .map_err(|e| Error::Other(format!("could not encode for sync: {e}")))?;
    Ok(Sha256::digest(&bytes).into())
}

/// The content two replicas must agree on once synced, as bytes: every entry by id with all
/// its fields (secrets included), the deletion records, contacts, imported-bundle ids and the
/// audit log (these three in the order a merge leaves them: logs whose order says nothing) and
/// the settings. Not the identity (each replica keeps its own, see [`merge`]) and
/// not the sync state. Wiped on drop.
pub fn canonical(payload: &Payload) -> Result<Zeroizing<Vec<u8>>> {
    let mut entries: Vec<&Entry> = payload.entries.values()?.collect();
    entries.sort_by_key(|e| e.id);
    let mut audit: Vec<&crate::vault::AuditEvent> = payload.audit.iter().collect();
    audit.sort_by_key(|e| merge::audit_key(e));
    let mut deletions: Vec<_> = payload.deletions.iter().map(|d| (d.at, d.id)).collect();
    deletions.sort();
    let mut seen: Vec<_> = payload.seen_bundles.iter().map(|s| (s.at, &s.id)).collect();
    seen.sort();
    let all = (
        entries,
        deletions,
        &payload.contacts,
        seen,
        audit,
        &payload.settings,
    );
    postcard::to_stdvec(&all)
        .map(Zeroizing::new)
        .map_err(|e| Error::Other(format!("could not encode for sync: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_written_as_a_set() {
        let item = |value: &str, counter| Item {
            field: ListField::Tags,
            value: value.into(),
            device: [1; 16],
            counter,
        };
        let all = [item("b", 1), item("a", 2), item("b", 1), item("a", 1)];
        let items: Items = all.iter().cloned().collect();
        let set: BTreeSet<Item> = all.iter().cloned().collect();
        let bytes = postcard::to_stdvec(&items).unwrap();
        assert_eq!(bytes, postcard::to_stdvec(&set).unwrap());
        assert_eq!(
            items.iter().collect::<Vec<_>>(),
            set.iter().collect::<Vec<_>>()
        );
        // Read back from any order, a repeated item once.
        let bytes = postcard::to_stdvec(&all.to_vec()).unwrap();
        assert_eq!(postcard::from_bytes::<Items>(&bytes).unwrap(), items);
    }
}
