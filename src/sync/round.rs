//! One sync round on an open vault: verify every replica read from the remote, merge them in,
//! and seal this device's replica to publish. No I/O here: the front end reads the remote's
//! files and writes the result (`crate::sync::remote`), so the agent can run a round too.

use super::merge::outer_join;
use super::{DeviceId, SyncState, merge};
use crate::entry::EntryId;
use crate::format::VaultFile;
use crate::secret::Key;
use crate::share::hex;
use crate::time::Time;
use crate::vault::{AuditEvent, Payload, Vault};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// The sync record: what follows the payload inside a synced vault (format v2) and inside
/// each replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The merge state of this copy.
    pub state: SyncState,
    /// When this copy was last synced (local) or published (a replica), by its device's clock.
    pub synced_at: Time,
    /// Only in the local vault: what this device knows of the remote (`None` in a replica).
    pub local: Option<Local>,
    /// The device's name, for people (`sync status`): its host name unless renamed.
    pub name: String,
}

/// What a device keeps about its remote, never published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Local {
    /// The generation of this device's last replica sealed for publishing.
    pub published: u64,
    /// The highest generation of this device's replica read back from the remote: a lower
    /// one later means the remote went back in time.
    pub confirmed: u64,
    /// The key commitment of this vault at the last round.
    pub commitment: [u8; 32],
    /// Commitments of keys this vault had before (a `passwd` since): a replica under one of
    /// them is a device that has not taken the new key yet, not a newer key.
    pub retired: Vec<[u8; 32]>,
    /// SHA-256 of what the sync state does not track (audit log and bundle ids: their sizes
    /// and last items) in the last replica published.
    pub published_shape: [u8; 32],
    /// Every other device whose replica was read, by id.
    pub devices: BTreeMap<DeviceId, Heard>,
}

/// The last replica read from one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heard {
    /// Its generation: a lower one later means the remote went back in time.
    pub generation: u64,
    /// When that device published it (its clock).
    pub published_at: Time,
    /// The name that device gave itself.
    pub name: String,
}

/// Largest sync record accepted (a hostile replica cannot make the decoder allocate more).
pub(super) const MAX_RECORD: usize = 256 << 20;

impl Record {
    /// Decodes a record strictly (trailing bytes refused).
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        if bytes.len() > MAX_RECORD {
            return Err(Error::corrupt_vault());
        }
        match postcard::take_from_bytes::<Record>(bytes) {
            Ok((r, [])) => Ok(r),
            _ => Err(Error::corrupt_vault()),
        }
    }

    /// Encodes the record, in a buffer wiped on drop.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        postcard::to_stdvec(self)
            .map(Zeroizing::new)
            .map_err(|e| Error::Other(format!("could not encode the sync record: {e}")))
    }

    /// The encoding of a record from its state's encoding and its other fields: postcard
    /// encodes a struct as its fields one after another, so this is [`Record::encode`]'s output.
    pub fn encode_parts(
        state: &[u8],
        synced_at: Time,
        local: Option<&Local>,
        name: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let tail = encode(&(synced_at, local, name))?;
        // Sized once: growing a `Zeroizing` buffer would free an unwiped copy.
        let mut out = Zeroizing::new(Vec::with_capacity(state.len() + tail.len()));
        out.extend_from_slice(state);
        out.extend_from_slice(&tail);
        Ok(out)
    }

    /// The record of an open vault: `None` when it does not sync.
    pub fn of(vault: &Vault) -> Result<Option<Record>> {
        vault.sync_record().map(Record::decode).transpose()
    }
}

/// The file name of a device's replica in the remote's `replicas/` folder.
pub fn replica_name(device: &DeviceId) -> String {
    format!("{}.jeton", hex(device))
}

/// True for a copy a file-sync tool made of a replica it saw change on two machines at once
/// (Syncthing's `.sync-conflict-`, Dropbox's `(conflicted copy`, Nextcloud's `(conflicted copy`
/// and ownCloud's `_conflict-`): merged in like a replica, then removed.
pub fn is_conflict_copy(name: &str) -> bool {
    name.contains(".sync-conflict-")
        || name.contains("conflicted copy")
        || name.contains("_conflict-")
}

/// A file read from the remote's `replicas/` folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Incoming {
    /// Its file name.
    pub name: String,
    /// Its bytes (encrypted; base64 in the agent's JSON).
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
}

/// Serde for bytes as base64 text (the agent speaks JSON).
pub mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `b` as base64.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    /// Reads base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Attaches a vault to sync: a new device id, every entry counted as this device's change.
/// Refused when the vault already syncs.
pub fn attach(vault: &mut Vault, now: Time) -> Result<DeviceId> {
    if vault.sync_record().is_some() {
        return Err(Error::Exists(
            "this vault already syncs (see `jeton sync status`)".into(),
        ));
    }
    let device = crate::vault::random_id::<16>()?;
    // Empty: the first round counts every entry as this device's change.
    let record = Record {
        state: SyncState::new(device),
        synced_at: now,
        local: Some(Local::default()),
        name: host_name(),
    };
    vault.set_sync_record(Some(record.encode()?));
    vault.audit(now, "sync", None, "vault attached to a sync remote");
    Ok(device)
}

/// Longest device name.
pub const MAX_DEVICE_NAME: usize = 64;

/// This machine's host name, as a device name (cut to [`MAX_DEVICE_NAME`]).
pub fn host_name() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    check_device_name(&name).map_or_else(|_| "device".to_owned(), |()| name.into_owned())
}

/// A device name: 1 to [`MAX_DEVICE_NAME`] printable characters.
pub fn check_device_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.chars().count() > MAX_DEVICE_NAME
        || name.chars().any(char::is_control)
    {
        return Err(Error::Usage(format!(
            "a device name is 1 to {MAX_DEVICE_NAME} printable characters"
        )));
    }
    Ok(())
}

/// Renames this device; the other devices see the new name after its next round.
pub fn rename_device(vault: &mut Vault, name: &str, now: Time) -> Result<()> {
    check_device_name(name)?;
    let mut record = Record::of(vault)?.ok_or_else(not_synced)?;
    record.name = name.to_owned();
    vault.set_sync_record(Some(record.encode()?));
    vault.audit(now, "sync", None, "device renamed");
    Ok(())
}

fn not_synced() -> Error {
    Error::NotFound("this vault does not sync: attach it with `jeton sync init`".into())
}

/// Forgets another device: its replica leaves the remote at this device's next round, and
/// every device that merges this one's state stops reading it and does not miss it; what it
/// published stays merged. `device` is a name or the start of an id (4 hex digits at least).
/// Returns the device's id, hex.
pub fn forget(vault: &mut Vault, device: &str, now: Time) -> Result<String> {
    let mut record = Record::of(vault)?.ok_or_else(not_synced)?;
    let local = record.local.as_mut().ok_or_else(not_synced)?;
    let me = record.state.device;
    let wanted = device.to_ascii_lowercase();
    let by_id = wanted.len() >= 4 && wanted.chars().all(|c| c.is_ascii_hexdigit());
    let matches: Vec<DeviceId> = (local.devices.iter())
        .filter(|(id, h)| h.name == device || (by_id && hex(*id).starts_with(&wanted)))
        .map(|(id, _)| *id)
        .collect();
    let id = match matches[..] {
        [id] => id,
        [] if by_id && hex(&me).starts_with(&wanted) || device == record.name => {
            return Err(Error::Usage(
                "that is this device: forget it from another one".into(),
            ));
        }
        [] => {
            return Err(Error::NotFound(format!(
                "no device named {} (see `jeton sync status`)",
                crate::entry::printable(device)
            )));
        }
        _ => {
            return Err(Error::Usage(format!(
                "{} names {} devices: give more of the id",
                crate::entry::printable(device),
                matches.len()
            )));
        }
    };
    local.devices.remove(&id);
    record.state.forgotten.entry(id).or_insert(now);
    vault.set_sync_record(Some(record.encode()?));
    vault.audit(
        now,
        "sync",
        None,
        format!("device {} forgotten", &hex(&id)[..16]),
    );
    Ok(hex(&id))
}

/// What a round did and what to publish.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Round {
    /// This device's new replica (file name and bytes) to write to the remote.
    pub replica: Option<Incoming>,
    /// Conflict copies merged in: remove them from the remote.
    pub merged_copies: Vec<String>,
    /// Replicas of devices someone forgot (`sync forget`): remove them from the remote.
    pub forgotten: Vec<String>,
    /// Entries this round brought in from other devices (names).
    pub received: Vec<String>,
    /// Entries changed here since the last round, now published (names).
    pub sent: Vec<String>,
    /// Entries removed here (count) or by another device (count).
    pub removed_here: usize,
    /// Entries removed by this round because another device removed them.
    pub removed_by_others: usize,
    /// Entries changed on two devices at once (names).
    pub conflicts: Vec<String>,
    /// Entries whose removal met a concurrent edit and were kept (names).
    pub kept_over_removal: Vec<String>,
    /// Entries renamed because two had one name: (old, new).
    pub renamed: Vec<(String, String)>,
    /// Replicas read (other devices).
    pub devices: usize,
    /// Replicas older than one read before, accepted with `--accept-rollback`.
    pub rollbacks_accepted: Vec<String>,
    /// The replicas carry different sharing identities; the local one was kept.
    pub identity_differs: bool,
    /// Replicas under a key this vault had before (their devices have not taken the new one),
    /// not read.
    pub other_key: Vec<String>,
    /// The merge wiped or dropped a secret the local vault held: the saver must forget the
    /// previous generation (`vault.jeton.bak`), as after a local revoke.
    pub wiped: bool,
}

impl Round {
    /// The remote files to remove when publishing: merged conflict copies and the replicas of
    /// forgotten devices.
    pub fn to_remove(&self) -> Vec<String> {
        self.merged_copies
            .iter()
            .chain(&self.forgotten)
            .cloned()
            .collect()
    }

    /// This round followed by `later` (a retry after a push race): what either did, and what
    /// the later one publishes.
    pub fn then(mut self, later: Round) -> Round {
        fn union<T: PartialEq>(a: &mut Vec<T>, b: Vec<T>) {
            for x in b {
                if !a.contains(&x) {
                    a.push(x);
                }
            }
        }
        union(&mut self.received, later.received);
        union(&mut self.sent, later.sent);
        union(&mut self.conflicts, later.conflicts);
        union(&mut self.kept_over_removal, later.kept_over_removal);
        union(&mut self.renamed, later.renamed);
        union(&mut self.rollbacks_accepted, later.rollbacks_accepted);
        union(&mut self.other_key, later.other_key);
        self.removed_here += later.removed_here;
        self.removed_by_others += later.removed_by_others;
        self.identity_differs |= later.identity_differs;
        self.wiped |= later.wiped;
        Round {
            replica: later.replica,
            merged_copies: later.merged_copies,
            forgotten: later.forgotten,
            devices: later.devices,
            ..self
        }
    }
}

/// A replica read and authenticated; its content is decoded only when it is merged.
pub struct Replica {
    /// Its header generation (the device's publish count).
    pub generation: u64,
    /// The device that wrote it.
    pub device: DeviceId,
    /// The file name it came from.
    pub name: String,
    vault: Vault,
}

impl Replica {
    /// Its content and record (refused if the record is a device's local one).
    pub fn content(self) -> Result<(Payload, Record)> {
        let record = Record::of(&self.vault)?.ok_or_else(Error::corrupt_vault)?;
        if record.local.is_some() || record.state.device != self.device {
            return Err(Error::Integrity(format!(
                "remote replica {}: it is a device's local vault, not a replica",
                self.name
            )));
        }
        Ok((self.vault.payload, record))
    }
}

/// Parses and authenticates one replica file under `key`. Refuses (exit 6) a file that is not
/// a replica of `vault_id`, fails authentication, or claims another device's name.
pub fn open_replica(incoming: &Incoming, vault_id: &[u8; 16], key: &Key) -> Result<Replica> {
    let what = |m: &str| Error::Integrity(format!("remote replica {}: {m}", incoming.name));
    let file = VaultFile::parse(&incoming.bytes).map_err(|e| what(&e.to_string()))?;
    open_parsed(file, &incoming.name, vault_id, key)
}

/// Parses and authenticates a replica file without decoding it; its generation.
fn authenticate(incoming: &Incoming, vault_id: &[u8; 16], key: &Key) -> Result<u64> {
    let name = &incoming.name;
    let what = |m: &str| Error::Integrity(format!("remote replica {name}: {m}"));
    let file = VaultFile::parse(&incoming.bytes).map_err(|e| what(&e.to_string()))?;
    check_header(&file, name, vault_id)?;
    let generation = file.header.generation;
    Vault::authenticate(file, key).map_err(|e| replica_error(e, name))?;
    Ok(generation)
}

fn check_header(file: &VaultFile, name: &str, vault_id: &[u8; 16]) -> Result<()> {
    let what = |m: &str| Error::Integrity(format!("remote replica {name}: {m}"));
    if !crate::format::is_synced(file.header.version) {
        return Err(what("not a replica (format version 1)"));
    }
    if &file.header.vault_id != vault_id {
        return Err(what("it belongs to another vault"));
    }
    Ok(())
}

fn replica_error(e: Error, name: &str) -> Error {
    match e {
        Error::Unlock(_) => Error::Unlock(format!(
            "remote replica {name} is under another key: the passphrase was changed on another device; \
             run `jeton sync --adopt-key` and give the new passphrase"
        )),
        _ => Error::Integrity(format!(
            "remote replica {name}: it fails authentication (damaged or tampered with)"
        )),
    }
}

fn open_parsed(file: VaultFile, name: &str, vault_id: &[u8; 16], key: &Key) -> Result<Replica> {
    let what = |m: &str| Error::Integrity(format!("remote replica {name}: {m}"));
    check_header(&file, name, vault_id)?;
    let generation = file.header.generation;
    let vault = Vault::open_owned(file, key.clone()).map_err(|e| replica_error(e, name))?;
    // The record starts with the state, which starts with the device id.
    let device = vault
        .sync_record()
        .and_then(|r| postcard::take_from_bytes::<DeviceId>(r).ok())
        .map(|(d, _)| d)
        .ok_or_else(|| what("no sync record"))?;
    if name != replica_name(&device) && !(name.starts_with(&hex(&device)) && is_conflict_copy(name))
    {
        return Err(what("it holds another device's replica (copied over?)"));
    }
    Ok(Replica {
        generation,
        device,
        name: name.to_owned(),
        vault,
    })
}

/// Makes a new device's vault from the remote's replicas: the first opens with `unlock` (the
/// passphrase), the others must open with the same key. The result has a fresh device id, has
/// merged every replica, and carries the first replica's key slots.
pub fn clone_from(
    incoming: &[Incoming],
    unlock: impl FnOnce(&VaultFile) -> Result<Key>,
    now: Time,
) -> Result<(Vault, Round)> {
    let first = incoming
        .iter()
        .find(|i| !is_conflict_copy(&i.name))
        .ok_or_else(|| Error::NotFound("the remote holds no replica yet".into()))?;
    let file = VaultFile::parse(&first.bytes)
        .map_err(|e| Error::Integrity(format!("remote replica {}: {e}", first.name)))?;
    if !crate::format::is_synced(file.header.version) {
        return Err(Error::Integrity(format!(
            "remote replica {}: not a replica (format version 1)",
            first.name
        )));
    }
    let key = unlock(&file)?;
    let vault_id = file.header.vault_id;
    let (_, base) = open_parsed(file.clone(), &first.name, &vault_id, &key)?.content()?;
    let mut vault = Vault::open_owned(file, key)?;
    let device = crate::vault::random_id::<16>()?;
    let mut state = base.state;
    state.device = device;
    let record = Record {
        state,
        synced_at: now,
        local: Some(Local::default()),
        name: host_name(),
    };
    vault.set_sync_record(Some(record.encode()?));
    let mut round = round(&mut vault, incoming.to_vec(), false, now)?;
    // Every entry of the new vault came from the remote, the first replica's included.
    round.received = (vault.payload.entries.heads()?.into_iter())
        .map(|h| h.name)
        .filter(|n| !crate::entry::is_internal(n))
        .map(str::to_owned)
        .collect();
    vault.audit(now, "sync", None, "vault cloned from a sync remote");
    Ok((vault, round))
}

/// Runs one round on `vault` with the replicas read from the remote: every file is verified
/// first (a bad one fails the round before anything changes), a replica older than one read
/// before is refused unless `accept_rollback`, then the new ones are merged in and this
/// device's next replica is sealed. The vault is left dirty: the caller saves it, then
/// publishes `replica`.
pub fn round(
    vault: &mut Vault,
    incoming: Vec<Incoming>,
    accept_rollback: bool,
    now: Time,
) -> Result<Round> {
    let mut record = Record::of(vault)?.ok_or_else(|| {
        Error::NotFound("this vault does not sync: attach it with `jeton sync init`".into())
    })?;
    let mut local = record
        .local
        .take()
        .ok_or_else(|| Error::Integrity("the vault's sync record has no local part".into()))?;
    let me = record.state.device;
    let my_name = std::mem::take(&mut record.name);
    let old_synced_at = record.synced_at;
    let commitment = vault.header().commitment;
    if local.commitment != commitment {
        if local.commitment != [0; 32] && !local.retired.contains(&local.commitment) {
            local.retired.push(local.commitment);
        }
        local.commitment = commitment;
    }
    let mut out = Round::default();

    // Verify everything before changing anything.
    let mut replicas = Vec::with_capacity(incoming.len());
    let mut own: Option<u64> = None;
    // Devices whose replica is under another key: present, but not read.
    let mut unread: BTreeSet<DeviceId> = BTreeSet::new();
    let own_name = replica_name(&me);
    // A replica under a key this vault had before is a device that has not taken the new key
    // yet (this one's own is about to be replaced): noted, not read. Any other key is newer.
    let mut other_key = |i: &Incoming, e: String, out: &mut Round| -> Result<()> {
        let old =
            VaultFile::parse(&i.bytes).is_ok_and(|f| local.retired.contains(&f.header.commitment));
        if !old {
            return Err(Error::Unlock(e));
        }
        let d = device_of_name(&i.name);
        if d != Some(me) {
            out.other_key.push(i.name.clone());
        }
        unread.extend(d);
        Ok(())
    };
    for i in &incoming {
        // A device someone forgot is not read; its replica leaves the remote.
        if let Some(d) = device_of_name(&i.name).filter(|d| record.state.forgotten.contains_key(d))
        {
            if d != me {
                out.forgotten.push(i.name.clone());
            }
            continue;
        }
        // This device's own replica needs no decoding unless the local vault is older.
        if i.name == own_name {
            match authenticate(i, vault.id(), vault.key()) {
                Ok(generation) if generation <= local.published => {
                    own = Some(generation);
                    continue;
                }
                Ok(_) => {}
                Err(Error::Unlock(e)) => {
                    other_key(i, e, &mut out)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let r = match open_replica(i, vault.id(), vault.key()) {
            Ok(r) => r,
            Err(Error::Unlock(e)) => {
                other_key(i, e, &mut out)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let device = r.device;
        let copy = is_conflict_copy(&r.name);
        if device == me && !copy {
            own = Some(r.generation);
            // Merged only if the local vault is older than what it published (restored).
            if r.generation <= local.published {
                continue;
            }
        } else if !copy
            && let Some(h) = local.devices.get(&device)
            && r.generation < h.generation
        {
            rollback(
                &mut out,
                accept_rollback,
                format!(
                    "device {}'s replica went back from generation {} to {}",
                    &hex(&device)[..8],
                    h.generation,
                    r.generation
                ),
            )?;
        }
        replicas.push(r);
    }
    if let Some(generation) = own {
        if generation < local.confirmed {
            rollback(
                &mut out,
                accept_rollback,
                format!(
                    "this device's replica on the remote is generation {generation} but generation {} was read there before",
                    local.confirmed
                ),
            )?;
        }
        local.confirmed = local.confirmed.max(generation);
    }
    let present: BTreeSet<DeviceId> = replicas.iter().map(|r| r.device).collect();

    let absorbed_changes = record.state.absorb_local(&vault.payload, now)?;
    out.removed_here = absorbed_changes.removed;
    let mut moved = !absorbed_changes.is_empty();
    let mut sent = absorbed_changes.changed;

    let mut payload = std::mem::take(&mut vault.payload);
    let absorbed = record.state;
    // The merged state, once a replica was merged.
    let mut merged_state: Option<SyncState> = None;
    let mut wiped = false;
    for r in replicas {
        let device = r.device;
        let copy = is_conflict_copy(&r.name);
        let known = local.devices.get(&device);
        let fresh = copy || device == me || known.is_none_or(|h| h.generation != r.generation);
        let name = r.name.clone();
        let generation = r.generation;
        let mut published_at = known.map_or(0, |h| h.published_at);
        let mut device_name = known.map(|h| h.name.clone()).unwrap_or_default();
        if fresh {
            let (rp, rr) = r.content()?;
            published_at = rr.synced_at;
            device_name = rr.name;
            let current = merged_state.as_ref().unwrap_or(&absorbed);
            let merged = merge((&payload, current), (&rp, &rr.state))?;
            moved |= merged.state != *current;
            payload = merged.payload;
            merged_state = Some(merged.state);
            wiped |= merged.report.wiped;
            out.identity_differs |= merged.report.identity_differs;
            out.conflicts.extend(merged.report.conflicts);
            out.kept_over_removal
                .extend(merged.report.kept_over_removal);
            out.renamed.extend(merged.report.renamed);
        }
        if copy {
            out.merged_copies.push(name);
        } else if device != me {
            out.devices += 1;
            local.devices.insert(
                device,
                Heard {
                    generation,
                    published_at,
                    name: device_name,
                },
            );
        }
    }
    let forgotten = &merged_state.as_ref().unwrap_or(&absorbed).forgotten;
    if forgotten.contains_key(&me) {
        return Err(Error::Integrity(
            "another device forgot this one (`jeton sync forget`): nothing was merged or \
             published; make this device again with `jeton sync clone`"
                .into(),
        ));
    }
    if local.confirmed > 0 && own.is_none() && !unread.contains(&me) {
        rollback(
            &mut out,
            accept_rollback,
            "this device's replica is missing from the remote".into(),
        )?;
    }
    // A device read before whose replica is gone: a rollback, unless someone forgot it.
    local.devices.retain(|d, _| !forgotten.contains_key(d));
    for device in local.devices.keys() {
        if !present.contains(device) && !unread.contains(device) {
            rollback(
                &mut out,
                accept_rollback,
                format!(
                    "device {}'s replica is missing from the remote",
                    &hex(device)[..8]
                ),
            )?;
        }
    }
    let (state, received) = match merged_state {
        Some(state) => {
            let (received, removed) = changed(&absorbed, &state);
            out.removed_by_others = removed;
            sent.retain(|id| state.entries.contains_key(id));
            (state, received)
        }
        None => (absorbed, BTreeSet::new()),
    };
    let names = names_of(&payload, &received, &sent)?;
    out.received = received
        .iter()
        .filter_map(|id| names.get(id).cloned())
        .collect();
    out.sent = sent
        .iter()
        .filter_map(|id| names.get(id).cloned())
        .collect();
    vault.payload = payload;
    vault.audit_replaced();
    if wiped {
        vault.forget_previous_on_save();
    }
    out.wiped = wiped;

    // Nothing to publish when the remote already holds this device's last replica and the
    // content did not move since: no new file, no commit, no local write.
    let shape = shape(&vault.payload)?;
    let current = own == Some(local.published) && !moved && shape == local.published_shape;
    if current
        && out.merged_copies.is_empty()
        && out.forgotten.is_empty()
        && out.rollbacks_accepted.is_empty()
    {
        let record = Record::encode_parts(&encode(&state)?, old_synced_at, Some(&local), &my_name)?;
        if vault.sync_record() != Some(&record[..]) {
            vault.set_sync_record(Some(record));
        }
        return Ok(out);
    }
    local.published_shape = shape;
    local.published += 1;
    // The state is encoded once for both records.
    let state = encode(&state)?;
    let replica = Record::encode_parts(&state, now, None, &my_name)?;
    let bytes = vault.seal_replica(&replica, local.published)?;
    out.replica = Some(Incoming {
        name: replica_name(&me),
        bytes,
    });
    vault.set_sync_record(Some(Record::encode_parts(
        &state,
        now,
        Some(&local),
        &my_name,
    )?));
    Ok(out)
}

/// postcard's encoding of `value`, in a buffer wiped on drop.
fn encode<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>> {
    postcard::to_stdvec(value)
        .map(Zeroizing::new)
        .map_err(|e| Error::Other(format!("could not encode the sync record: {e}")))
}

/// The device a replica's file name names (`<32 hex digits>.jeton`).
fn device_of_name(name: &str) -> Option<DeviceId> {
    crate::share::unhex::<16>(name.get(..32)?)
}

/// Re-keys `vault` to the key of a replica that `passphrase` opens and this vault's key does
/// not: another device changed the passphrase. Returns the replica's file name.
pub fn adopt_key(
    vault: &mut Vault,
    incoming: &[Incoming],
    passphrase: &crate::secret::Passphrase,
    now: Time,
) -> Result<String> {
    for i in incoming.iter().filter(|i| !is_conflict_copy(&i.name)) {
        if open_replica(i, vault.id(), vault.key()).is_ok() {
            continue;
        }
        let Ok(file) = VaultFile::parse(&i.bytes) else {
            continue;
        };
        if &file.header.vault_id != vault.id() || !crate::format::is_synced(file.header.version) {
            continue;
        }
        let key = Vault::unlock(&file, passphrase)?;
        open_replica(i, vault.id(), &key)?;
        vault.adopt_key(&file, key)?;
        vault.audit(
            now,
            "passwd",
            None,
            "took the vault key and passphrase set on another device",
        );
        return Ok(i.name.clone());
    }
    Err(Error::NotFound(
        "no replica on the remote is under another key: nothing to adopt".into(),
    ))
}

/// What of a payload the sync state does not track: the audit log and the imported-bundle ids
/// (their sizes and last items), so a round publishes when only those moved.
fn shape(p: &Payload) -> Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let bytes = postcard::to_stdvec(&(
        p.audit.len(),
        p.audit.last(),
        p.seen_bundles.len(),
        p.seen_bundles.last(),
    ))
    .map_err(|e| Error::Other(format!("could not encode for sync: {e}")))?;
    Ok(Sha256::digest(&bytes).into())
}

fn rollback(out: &mut Round, accept: bool, what: String) -> Result<()> {
    if !accept {
        return Err(Error::Integrity(format!(
            "the remote went back in time: {what} (a force-push or a restored folder?); nothing was merged or published. Check the remote, then rerun with --accept-rollback"
        )));
    }
    out.rollbacks_accepted.push(what);
    Ok(())
}

/// Ids present in `after` whose clock differs from `before`'s (or that are new), and how many
/// of `before`'s ids `after` lacks.
fn changed(before: &SyncState, after: &SyncState) -> (BTreeSet<EntryId>, usize) {
    let mut changed = Vec::new();
    let mut removed = 0;
    for (id, b, a) in outer_join(before.entries.iter(), after.entries.iter()) {
        match (b, a) {
            (Some(_), None) => removed += 1,
            (b, Some(a)) if b.is_none_or(|b| b.clock != a.clock) => changed.push(*id),
            _ => {}
        }
    }
    (changed.into_iter().collect(), removed)
}

fn names_of(
    payload: &Payload,
    a: &BTreeSet<EntryId>,
    b: &BTreeSet<EntryId>,
) -> Result<BTreeMap<EntryId, String>> {
    let mut names = BTreeMap::new();
    if a.is_empty() && b.is_empty() {
        return Ok(names);
    }
    for h in payload.entries.heads()? {
        if a.contains(&h.id) || b.contains(&h.id) {
            names.insert(h.id, h.name.to_owned());
        }
    }
    Ok(names)
}

/// One device as `sync status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Device id, hex.
    pub id: String,
    /// The name it gave itself (empty until it published in format 3).
    pub name: String,
    /// This device.
    pub this: bool,
    /// Replica generation last read (this device: last published).
    pub generation: u64,
    /// When it last published (its clock; this device: last round).
    pub heard_at: Time,
}

/// Every device of a synced vault, this one first.
pub fn devices(vault: &Vault) -> Result<Option<Vec<DeviceStatus>>> {
    let Some(record) = Record::of(vault)? else {
        return Ok(None);
    };
    let local = record.local.unwrap_or_default();
    let mut out = vec![DeviceStatus {
        id: hex(&record.state.device),
        name: record.name.clone(),
        this: true,
        generation: local.published,
        heard_at: record.synced_at,
    }];
    out.extend(local.devices.iter().map(|(d, h)| DeviceStatus {
        id: hex(d),
        name: h.name.clone(),
        this: false,
        generation: h.generation,
        heard_at: h.published_at,
    }));
    Ok(Some(out))
}

/// Every field value waiting for a choice, by entry name then field.
pub fn choices(vault: &Vault) -> Result<Vec<super::Choice>> {
    let Some(record) = Record::of(vault)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for h in vault.payload.entries.heads()? {
        let Some(t) = record.state.entries.get(&h.id) else {
            continue;
        };
        if t.siblings.is_empty() {
            continue;
        }
        let e = vault
            .payload
            .entries
            .get(h.name)?
            .ok_or_else(Error::corrupt_vault)?;
        out.extend(entry_choices(e, t)?);
    }
    out.sort_by(|a, b| (&a.name, &a.field, a.at).cmp(&(&b.name, &b.field, b.at)));
    Ok(out)
}

/// The values of entry `name`'s fields waiting for a choice (none when the vault does not sync).
pub fn choices_of(vault: &Vault, name: &str) -> Result<Vec<super::Choice>> {
    let Some(record) = Record::of(vault)? else {
        return Ok(Vec::new());
    };
    let e = vault.entry(name)?;
    let Some(t) = record.state.entries.get(&e.id) else {
        return Ok(Vec::new());
    };
    entry_choices(e, t)
}

/// The values of `e`'s fields waiting for a choice.
fn entry_choices(e: &crate::entry::Entry, t: &super::Tracked) -> Result<Vec<super::Choice>> {
    (t.siblings.iter())
        .map(|s| {
            Ok(super::Choice {
                name: e.name.clone(),
                field: s.field.label().to_owned(),
                current: super::field::display(s.field, &super::field::value(e, s.field)?),
                other: s.display(),
                device: hex(&s.write.device()),
                at: s.write.stamp.time,
            })
        })
        .collect()
}

/// Answers the conflicts of `names` (every open one with `all`): a field with a value waiting
/// keeps its current value, or with `take_other` takes the other one (refused when a field has
/// several); the entry then counts as changed here, so the next round tells the other devices.
/// Returns each name and whether it had an open conflict. Every name is checked first.
pub fn resolve(
    vault: &mut Vault,
    names: Vec<String>,
    all: bool,
    take_other: bool,
    now: Time,
) -> Result<Vec<(String, bool)>> {
    for name in &names {
        vault.entry(name)?;
    }
    let open = unresolved_conflicts(vault)?;
    let names: Vec<String> = if all {
        open.keys().cloned().collect()
    } else {
        names
    };
    let mut record = Record::of(vault)?;
    // Checked for every name before anything changes.
    let mut plans = Vec::with_capacity(names.len());
    for name in &names {
        let id = vault.entry(name)?.id;
        let siblings = (record.as_ref())
            .and_then(|r| r.state.entries.get(&id))
            .map(|t| t.siblings.clone())
            .unwrap_or_default();
        if take_other {
            if siblings.is_empty() {
                return Err(Error::Usage(format!(
                    "{} has no other value to take (see `jeton sync status`)",
                    crate::entry::printable(name)
                )));
            }
            for s in &siblings {
                let n = siblings.iter().filter(|o| o.field == s.field).count();
                if n > 1 {
                    return Err(Error::Usage(format!(
                        "{}: {} has {n} other values; set the one you want with `jeton edit`",
                        crate::entry::printable(name),
                        s.field.label()
                    )));
                }
            }
        }
        plans.push((name.clone(), id, siblings));
    }
    let mut out = Vec::with_capacity(plans.len());
    for (name, id, siblings) in plans {
        let at = open.get(&name).copied();
        let had = at.is_some() || !siblings.is_empty();
        if !siblings.is_empty() {
            let e = vault.entry_mut(&name)?;
            if take_other {
                for s in &siblings {
                    super::field::set(e, s.field, &s.value)?;
                }
            }
            e.revision += 1;
            e.updated_at = e.updated_at.max(now);
            if let Some(t) = record.as_mut().and_then(|r| r.state.entries.get_mut(&id)) {
                t.siblings.clear();
            }
        }
        if had {
            // Never before the conflict it answers, whatever this device's clock says.
            let when = now.max(at.unwrap_or(Time::MIN));
            let what = if take_other {
                "conflict answered: took the other device's values"
            } else {
                "conflict answered: kept the current values"
            };
            let subject = vault.entry(&name).map(|e| e.name.clone())?;
            vault.audit(when, "resolve", Some(&subject), what);
        }
        out.push((name, had));
    }
    if let Some(r) = record {
        vault.set_sync_record(Some(r.encode()?));
    }
    Ok(out)
}

/// Entries with a `conflict` event no later edit or `sync resolve` has answered, by name.
pub fn unresolved_conflicts(vault: &Vault) -> Result<BTreeMap<String, Time>> {
    Ok((open_conflicts(vault)?.into_iter())
        .map(|(name, (at, _))| (name, at))
        .collect())
}

/// Entries with a conflict nobody looked at: when the last one happened, and what it was.
pub fn open_conflicts(vault: &Vault) -> Result<BTreeMap<String, (Time, String)>> {
    let mut open: BTreeMap<String, (Time, String)> = BTreeMap::new();
    for AuditEvent {
        at,
        action,
        subject,
        detail,
    } in &vault.payload.audit
    {
        let Some(name) = subject else { continue };
        match action.as_str() {
            "conflict" => {
                let t = open.entry(name.clone()).or_insert((*at, detail.clone()));
                if *at >= t.0 {
                    *t = (*at, detail.clone());
                }
            }
            "resolve" if open.get(name).is_some_and(|t| t.0 <= *at) => {
                open.remove(name);
            }
            _ => {}
        }
    }
    open.retain(
        |name, (at, _)| matches!(vault.payload.entries.get(name), Ok(Some(e)) if e.updated_at <= *at),
    );
    // A value waiting for a choice is open until chosen, whatever else happened since; what
    // waits says more than the event that made it.
    let mut waiting: BTreeMap<String, (Time, Vec<String>)> = BTreeMap::new();
    for c in choices(vault)? {
        let w = waiting.entry(c.name).or_insert((c.at, Vec::new()));
        w.0 = w.0.max(c.at);
        w.1.push(format!(
            "{} changed on two devices at once: current {}, other {}",
            c.field, c.current, c.other
        ));
    }
    for (name, (at, details)) in waiting {
        let at = open.get(&name).map_or(at, |(t, _)| (*t).max(at));
        open.insert(name, (at, details.join("; ")));
    }
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_encoded_in_parts_is_the_record_encoded_whole() {
        let mut state = SyncState::new([7; 16]);
        state.deletions.insert(
            [1; 16],
            super::super::Tombstone {
                clock: Default::default(),
                revoked_at: Some(5),
            },
        );
        let local = Local {
            published: 3,
            confirmed: 2,
            devices: [(
                [9; 16],
                Heard {
                    generation: 4,
                    published_at: -1,
                    name: "desktop".into(),
                },
            )]
            .into(),
            commitment: [1; 32],
            retired: vec![[2; 32]],
            published_shape: [3; 32],
        };
        for local in [None, Some(local)] {
            let whole = Record {
                state: state.clone(),
                synced_at: 1234,
                local: local.clone(),
                name: "laptop".into(),
            };
            let parts =
                Record::encode_parts(&encode(&state).unwrap(), 1234, local.as_ref(), "laptop")
                    .unwrap();
            assert_eq!(*whole.encode().unwrap(), *parts);
            assert_eq!(Record::decode(&parts).unwrap(), whole);
        }
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::lifecycle::FindingKind;
    use crate::lifecycle::testing::vault_with;

    const DAY: Time = 86_400;

    /// A synced vault that last heard from one other device at `heard`.
    fn synced(heard: Time) -> Vault {
        let mut v = vault_with("svc/token", "s");
        attach(&mut v, 100).unwrap();
        let mut record = Record::of(&v).unwrap().unwrap();
        let local = record.local.as_mut().unwrap();
        local.devices.insert(
            [9; 16],
            Heard {
                generation: 3,
                published_at: heard,
                name: "desktop".into(),
            },
        );
        v.set_sync_record(Some(record.encode().unwrap()));
        v
    }

    fn silent(v: &Vault, now: Time) -> usize {
        let findings = crate::lifecycle::check(v, 0, now).unwrap();
        (findings.iter())
            .filter(|f| f.kind == FindingKind::SilentDevice)
            .count()
    }

    #[test]
    fn check_reports_a_device_silent_for_30_days_and_not_before() {
        let now = 1_000 * DAY;
        assert_eq!(silent(&synced(now - 29 * DAY), now), 0);
        assert_eq!(silent(&synced(now - 31 * DAY), now), 1);
        // A vault that does not sync has no devices to report.
        assert_eq!(silent(&vault_with("svc/token", "s"), now), 0);
    }

    #[test]
    fn check_reports_an_open_conflict_until_it_is_resolved_or_edited() {
        let mut v = vault_with("svc/token", "s");
        let at = v.entry("svc/token").unwrap().updated_at;
        v.audit(
            at,
            "conflict",
            Some("svc/token"),
            "changed on two devices at once",
        );
        let open = |v: &Vault| unresolved_conflicts(v).unwrap().contains_key("svc/token");
        assert!(open(&v));
        v.audit(at + 5, "resolve", Some("svc/token"), "conflict looked at");
        assert!(!open(&v));
        v.audit(at + 6, "conflict", Some("svc/token"), "again");
        assert!(open(&v));
        v.entry_mut("svc/token").unwrap().updated_at = at + 7;
        assert!(!open(&v), "a later edit answers it");
    }
}
