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
    /// What follows the record's first fields when it is not empty ([`Extra`]).
    #[serde(skip)]
    pub extra: Extra,
}

/// The record's last part, written only when it holds something, so that a record without it
/// (every one written before deltas existed) reads and writes back unchanged
/// (docs/FORMAT.md, "Sync record").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extra {
    /// In a delta replica: the generation of its device after which it holds every change
    /// (entries, removals, contacts, settings, recent audit events); `None` in a snapshot,
    /// which holds everything.
    pub since: Option<u64>,
    /// Only in the local vault: the entries (or removals) changed here and not yet confirmed
    /// on the remote, with the generation that last carried each.
    #[serde(deserialize_with = "super::sorted::map")]
    pub pending: BTreeMap<EntryId, u64>,
    /// Only in the local vault: imported-bundle ids from this time on go into the next delta
    /// (the time of the last round confirmed; `None`: all of them), and audit events too when
    /// the log is full (its oldest events drop as new ones come, so `audit_mark` says nothing).
    pub pending_since: Option<Time>,
    /// Only in the local vault: SHA-256 of the header of the last file this device published.
    pub published_header: [u8; 32],
    /// Only in the local vault: SHA-256 of the header of the last file read from each other
    /// device; the same header again is not read again.
    #[serde(deserialize_with = "super::sorted::map")]
    pub heard: BTreeMap<DeviceId, [u8; 32]>,
    /// Only in the local vault: audit events written here (by commands and by this device's
    /// merges) that are not yet confirmed on the remote, with the generation that carried each.
    pub pending_events: Vec<(u64, AuditEvent)>,
    /// Only in the local vault: the audit log's length at the end of the last round; commands
    /// append, so the events past it are new here.
    pub audit_mark: u64,
    /// Only in the local vault: a secret was wiped here (revoke, removal, history cut, new
    /// key) that an older file of this device may still hold: `Some(0)` until this device
    /// publishes a snapshot (and its deltas leave the remote), then `Some(generation)` of that
    /// snapshot until the remote confirms it.
    pub wiped: Option<u64>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        *self == Extra::default()
    }

    /// True when it holds nothing but what a replica may hold.
    fn fits_replica(&self) -> bool {
        self.pending.is_empty()
            && self.pending_since.is_none()
            && self.published_header == [0; 32]
            && self.heard.is_empty()
            && self.pending_events.is_empty()
            && self.audit_mark == 0
            && self.wiped.is_none()
    }
}

/// SHA-256 of the header of the last file this vault read from each device, and of the last
/// it published under its own: such a file, met again under its device's name, is not read
/// again, so a team round need not check its signature either.
pub fn headers_read(vault: &Vault) -> Result<BTreeMap<DeviceId, [u8; 32]>> {
    let Some(record) = Record::of(vault)? else {
        return Ok(BTreeMap::new());
    };
    let mut out = record.extra.heard;
    if record.extra.published_header != [0; 32] {
        out.insert(record.state.device, record.extra.published_header);
    }
    Ok(out)
}

/// The local sync record `bytes` with [`Extra::wiped`] set: the vault is saved after a wipe.
/// A replica's record, or one that does not decode, is returned unchanged.
pub fn mark_wiped(bytes: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let Ok(mut record) = Record::decode(bytes) else {
        return Ok(None);
    };
    if record.local.is_none() || record.extra.wiped == Some(0) {
        return Ok(None);
    }
    record.extra.wiped = Some(0);
    record.encode().map(Some)
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
    /// Decodes a record strictly (trailing bytes refused; an [`Extra`] is there only when it
    /// holds something, and in a replica only what a replica may hold).
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        if bytes.len() > MAX_RECORD {
            return Err(Error::corrupt_vault());
        }
        let (mut r, rest) =
            postcard::take_from_bytes::<Record>(bytes).map_err(|_| Error::corrupt_vault())?;
        if !rest.is_empty() {
            r.extra = match postcard::take_from_bytes::<Extra>(rest) {
                Ok((x, [])) if !x.is_empty() => x,
                _ => return Err(Error::corrupt_vault()),
            };
            if r.local.is_none() && !r.extra.fits_replica() {
                return Err(Error::corrupt_vault());
            }
        }
        Ok(r)
    }

    /// Encodes the record, in a buffer wiped on drop.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let state = encode(&self.state)?;
        Record::encode_parts(
            &state,
            self.synced_at,
            self.local.as_ref(),
            &self.name,
            &self.extra,
        )
    }

    /// The encoding of a record from its state's encoding and its other fields: postcard
    /// encodes a struct as its fields one after another, so this is [`Record::encode`]'s output.
    pub fn encode_parts(
        state: &[u8],
        synced_at: Time,
        local: Option<&Local>,
        name: &str,
        extra: &Extra,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let tail = encode(&(synced_at, local, name))?;
        let extra = match extra.is_empty() {
            true => Zeroizing::new(Vec::new()),
            false => encode(extra)?,
        };
        // Sized once: growing a `Zeroizing` buffer would free an unwiped copy.
        let mut out = Zeroizing::new(Vec::with_capacity(state.len() + tail.len() + extra.len()));
        out.extend_from_slice(state);
        out.extend_from_slice(&tail);
        out.extend_from_slice(&extra);
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
    let device = crate::random::random_id::<16>()?;
    // Empty: the first round counts every entry as this device's change.
    let record = Record {
        state: SyncState::new(device),
        synced_at: now,
        local: Some(Local::default()),
        name: host_name(),
        extra: Extra::default(),
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
    /// This device's deltas that its new snapshot replaces: remove them from the remote.
    pub superseded: Vec<String>,
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
            .chain(&self.superseded)
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
            superseded: later.superseded,
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
    let named = match parse_name(name) {
        Some((d, None)) => d == device,
        Some((d, Some(g))) => d == device && g == generation,
        None => name.starts_with(&hex(&device)) && is_conflict_copy(name),
    };
    if !named {
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
    let device = crate::random::random_id::<16>()?;
    let mut state = base.state;
    state.device = device;
    // The events the remote's files hold are not this device's to pass on.
    let extra = Extra {
        audit_mark: vault.payload.audit.len() as u64,
        ..Extra::default()
    };
    let record = Record {
        state,
        synced_at: now,
        local: Some(Local::default()),
        name: host_name(),
        extra,
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

/// Most delta files a device keeps on the remote: past them (or past half its snapshot's
/// size), its next file is a snapshot, and its deltas leave the remote.
pub const MAX_DELTAS: usize = 8;

/// The file name of a device's delta at `generation` in the remote's `replicas/` folder.
pub fn delta_name(device: &DeviceId, generation: u64) -> String {
    format!("{}.{generation}.jeton", hex(device))
}

/// What a file name in `replicas/` names: its device, and for a delta its generation.
pub fn parse_name(name: &str) -> Option<(DeviceId, Option<u64>)> {
    let stem = name.strip_suffix(".jeton")?;
    let device = crate::share::unhex::<16>(stem.get(..32)?)?;
    if hex(&device) != stem[..32] {
        return None;
    }
    match &stem[32..] {
        "" => Some((device, None)),
        rest => {
            let digits = rest.strip_prefix('.')?;
            let generation: u64 = digits.parse().ok()?;
            (generation.to_string() == digits).then_some((device, Some(generation)))
        }
    }
}

/// A replica file listed by a round: its header read, nothing decrypted yet.
struct Listed {
    file: Incoming,
    /// The generation its header names (checked once the file is opened).
    generation: u64,
    /// True for a delta.
    delta: bool,
    /// SHA-256 of its header bytes (which hold a fresh nonce per file).
    header: [u8; 32],
}

/// A replica opened for merging.
struct Opened {
    device: DeviceId,
    copy: bool,
    payload: Payload,
    record: Record,
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Opens a listed file and decodes its content; refuses a snapshot's name on a delta.
fn open_listed(l: &Listed, vault_id: &[u8; 16], key: &Key) -> Result<(u64, Payload, Record)> {
    let r = open_replica(&l.file, vault_id, key)?;
    let generation = r.generation;
    let name = r.name.clone();
    let (payload, record) = r.content()?;
    if !l.delta && record.extra.since.is_some() && !is_conflict_copy(&name) {
        return Err(Error::Integrity(format!(
            "remote replica {name}: a delta under a snapshot's name"
        )));
    }
    Ok((generation, payload, record))
}

/// Runs one round on `vault` with the replicas read from the remote: every file it reads is
/// verified first (a bad one fails the round before anything changes), a replica older than
/// one read before is refused unless `accept_rollback`, then the new ones are merged in and
/// this device's next replica (a delta, or now and then a snapshot) is sealed. A file whose
/// header was read before is not read again. The vault is left dirty: the caller saves it,
/// then publishes `replica` and removes [`Round::to_remove`].
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
    let mut extra = std::mem::take(&mut record.extra);
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

    // List every file by device (headers only), conflict copies aside.
    let mut by_device: BTreeMap<DeviceId, Vec<Listed>> = BTreeMap::new();
    let mut copies: Vec<Incoming> = Vec::new();
    // Devices whose files are under another key: present, but not read.
    let mut unread: BTreeSet<DeviceId> = BTreeSet::new();
    for i in incoming {
        let what = |m: &str| Error::Integrity(format!("remote replica {}: {m}", i.name));
        // A device someone forgot is not read; its files leave the remote.
        if let Some(d) = device_of_name(&i.name).filter(|d| record.state.forgotten.contains_key(d))
        {
            if d != me {
                out.forgotten.push(i.name.clone());
            }
            continue;
        }
        if is_conflict_copy(&i.name) {
            copies.push(i);
            continue;
        }
        let Some((device, delta)) = parse_name(&i.name) else {
            return Err(what("not a replica's file name"));
        };
        let (header, bytes) = VaultFile::peek_header(&i.bytes).map_err(|e| what(&e.to_string()))?;
        if !crate::format::is_synced(header.version) {
            return Err(what("not a replica (format version 1)"));
        }
        if &header.vault_id != vault.id() {
            return Err(what("it belongs to another vault"));
        }
        if delta.is_some_and(|g| g != header.generation) {
            return Err(what("its generation is not the one its name gives"));
        }
        // Under a key this vault had before: a device that has not taken the new key yet
        // (this one's own is about to be replaced). Any other key is newer.
        if header.commitment != commitment {
            if !local.retired.contains(&header.commitment) {
                return Err(replica_error(Error::Unlock(String::new()), &i.name));
            }
            if device != me && !out.other_key.contains(&i.name) {
                out.other_key.push(i.name.clone());
            }
            unread.insert(device);
            continue;
        }
        let listed = Listed {
            generation: header.generation,
            delta: delta.is_some(),
            header: sha256(bytes),
            file: i,
        };
        by_device.entry(device).or_default().push(listed);
    }
    for files in by_device.values_mut() {
        files.sort_by_key(|f| f.generation);
    }

    // This device's own files: what the remote confirms, and what the next file replaces.
    let mine = by_device.remove(&me).unwrap_or_default();
    let own_snapshot = mine.iter().find(|f| !f.delta);
    let covered = own_snapshot.map_or(0, |f| f.generation);
    let own_snapshot = own_snapshot.map(|f| f.file.bytes.len());
    // Deltas the snapshot covers (left by a round whose removal did not land) go now.
    out.superseded = (mine.iter())
        .filter(|f| f.delta && f.generation < covered)
        .map(|f| f.file.name.clone())
        .collect();
    let own_deltas: Vec<(String, usize)> = (mine.iter())
        .filter(|f| f.delta && f.generation > covered)
        .map(|f| (f.file.name.clone(), f.file.bytes.len()))
        .collect();
    let mut opened: Vec<Opened> = Vec::new();
    let mut own: Option<u64> = None;
    if let Some(latest) = mine.last() {
        let generation = if latest.header == extra.published_header {
            latest.generation
        } else {
            authenticate(&latest.file, vault.id(), vault.key())?
        };
        own = Some(generation);
        // A local vault older than what it published (restored): its later files are merged.
        for f in mine.iter().filter(|f| f.generation > local.published) {
            let (_, payload, record) = open_listed(f, vault.id(), vault.key())?;
            opened.push(Opened {
                device: me,
                copy: false,
                payload,
                record,
            });
        }
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
        extra.pending.retain(|_, g| *g > local.confirmed);
        extra.pending_events.retain(|(g, _)| *g > local.confirmed);
        if extra.wiped.is_some_and(|g| g > 0 && g <= local.confirmed) {
            extra.wiped = None;
        }
        if local.confirmed >= local.published {
            extra.pending_since = Some(old_synced_at);
        }
    }

    // Every other device: the files after the last one read from it, and nothing when its
    // newest file is the one read before.
    let present: BTreeSet<DeviceId> = by_device.keys().copied().collect();
    let mut heard: Vec<(DeviceId, u64, [u8; 32])> = Vec::new();
    for (device, files) in &by_device {
        let Some(latest) = files.last() else { continue };
        let known = local.devices.get(device);
        let h = known.map_or(0, |k| k.generation);
        if known.is_some()
            && latest.generation == h
            && extra.heard.get(device) == Some(&latest.header)
        {
            continue;
        }
        let snapshot = files.iter().find(|f| !f.delta && f.generation > h);
        let base = snapshot.map_or(h, |s| s.generation);
        let mut todo: Vec<&Listed> = snapshot.into_iter().collect();
        todo.extend(files.iter().filter(|f| f.delta && f.generation > base));
        if todo.is_empty() {
            // Nothing newer: the newest file is read to tell a rollback from a re-sent file.
            todo.push(latest);
        }
        let mut applied = h;
        let mut applied_header = extra.heard.get(device).copied().unwrap_or_default();
        for f in todo {
            let (generation, payload, rr) = open_listed(f, vault.id(), vault.key())?;
            if generation < h {
                rollback(
                    &mut out,
                    accept_rollback,
                    format!(
                        "device {}'s replica went back from generation {h} to {generation}",
                        &hex(device)[..8]
                    ),
                )?;
            }
            // A delta after a gap (files withheld) is merged, but the device is heard only up
            // to the gap: the missing files are read when they come.
            if rr.extra.since.is_none_or(|s| s <= applied) && generation >= applied {
                applied = generation;
                applied_header = f.header;
            }
            opened.push(Opened {
                device: *device,
                copy: false,
                payload,
                record: rr,
            });
        }
        heard.push((*device, applied, applied_header));
    }
    for c in copies {
        let r = open_replica(&c, vault.id(), vault.key())?;
        let device = r.device;
        let (payload, record) = r.content()?;
        out.merged_copies.push(c.name);
        opened.push(Opened {
            device,
            copy: true,
            payload,
            record,
        });
    }

    let generation = local.published + 1;
    // The audit events written here since the last round ride in deltas until confirmed.
    let log = &vault.payload.audit;
    let mark = usize::try_from(extra.audit_mark).unwrap_or(usize::MAX);
    let fresh: Vec<&AuditEvent> = if mark <= log.len() && log.len() < crate::vault::AUDIT_CAP {
        log[mark..].iter().collect()
    } else {
        let recent = |at: Time| extra.pending_since.is_none_or(|s| at >= s);
        log.iter().filter(|e| recent(e.at)).collect()
    };
    let held: BTreeSet<_> = (extra.pending_events.iter())
        .map(|(_, e)| super::merge::audit_key(e))
        .collect();
    let fresh: Vec<AuditEvent> = (fresh.into_iter())
        .filter(|e| !held.contains(&super::merge::audit_key(e)))
        .cloned()
        .collect();
    (extra.pending_events).extend(fresh.into_iter().map(|e| (generation, e)));

    let absorbed_changes = record.state.absorb_local(&vault.payload, now)?;
    out.removed_here = absorbed_changes.removed;
    let mut moved = !absorbed_changes.is_empty();
    let mut sent = absorbed_changes.changed.clone();
    for id in absorbed_changes
        .changed
        .iter()
        .chain(&absorbed_changes.gone)
    {
        extra.pending.insert(*id, generation);
    }

    let mut payload = std::mem::take(&mut vault.payload);
    let absorbed = record.state;
    // The merged state, once a replica was merged.
    let mut merged_state: Option<SyncState> = None;
    let mut wiped = false;
    let mut names: BTreeMap<DeviceId, (Time, String)> = BTreeMap::new();
    for o in opened {
        let current = merged_state.as_ref().unwrap_or(&absorbed);
        let merged = merge((&payload, current), (&o.payload, &o.record.state))?;
        moved |= merged.state != *current;
        payload = merged.payload;
        merged_state = Some(merged.state);
        wiped |= merged.report.wiped;
        out.identity_differs |= merged.report.identity_differs;
        out.conflicts.extend(merged.report.conflicts);
        out.kept_over_removal
            .extend(merged.report.kept_over_removal);
        out.renamed.extend(merged.report.renamed);
        (extra.pending_events).extend(merged.report.events.into_iter().map(|e| (generation, e)));
        if !o.copy && o.device != me {
            names.insert(o.device, (o.record.synced_at, o.record.name));
        }
    }
    // What was heard from each device: the last file read in order, up to any gap.
    for (device, generation, header) in heard {
        let (published_at, name) = names.get(&device).cloned().unwrap_or_default();
        local.devices.insert(
            device,
            Heard {
                generation,
                published_at,
                name,
            },
        );
        extra.heard.insert(device, header);
    }
    out.devices = present.iter().filter(|d| **d != me).count();
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
    // A device read before whose files are gone: a rollback, unless someone forgot it.
    local.devices.retain(|d, _| !forgotten.contains_key(d));
    extra.heard.retain(|d, _| local.devices.contains_key(d));
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
    extra.audit_mark = vault.payload.audit.len() as u64;
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
        let record = Record::encode_parts(
            &encode(&state)?,
            old_synced_at,
            Some(&local),
            &my_name,
            &extra,
        )?;
        if vault.sync_record() != Some(&record[..]) {
            vault.set_sync_record(Some(record));
        }
        return Ok(out);
    }
    local.published_shape = shape;
    local.published = generation;
    // A snapshot when the remote has none of this device's, when its deltas grew past their
    // bound, when a forgotten device's files leave (what it wrote lives on in this one), or
    // when a secret was wiped that an older file of this device may hold.
    let delta_bytes: usize = own_deltas.iter().map(|(_, n)| n).sum();
    let snapshot = own_snapshot.is_none_or(|n| 2 * delta_bytes >= n)
        || own_deltas.len() >= MAX_DELTAS
        || !out.forgotten.is_empty()
        || wiped
        || extra.wiped.is_some();
    let encoded = encode(&state)?;
    let (name, bytes) = if snapshot {
        let replica = Record::encode_parts(&encoded, now, None, &my_name, &Extra::default())?;
        out.superseded
            .extend(own_deltas.into_iter().map(|(n, _)| n));
        if wiped || extra.wiped.is_some() {
            extra.wiped = Some(generation);
            vault.cover_wipe();
        }
        let bytes = vault.seal_replica(&replica, generation)?;
        (replica_name(&me), bytes)
    } else {
        let part = Extra {
            since: Some(local.confirmed),
            ..Extra::default()
        };
        let (p, st) = delta(&vault.payload, &state, &extra)?;
        let replica = Record::encode_parts(&encode(&st)?, now, None, &my_name, &part)?;
        let bytes = vault.seal_replica_of(&p, &replica, generation)?;
        (delta_name(&me, generation), bytes)
    };
    extra.published_header = sha256(VaultFile::peek_header(&bytes)?.1);
    out.replica = Some(Incoming { name, bytes });
    vault.set_sync_record(Some(Record::encode_parts(
        &encoded,
        now,
        Some(&local),
        &my_name,
        &extra,
    )?));
    Ok(out)
}

/// The part of `payload` and `state` a delta carries: the entries and removals not yet
/// confirmed on the remote (with their deletion records), every contact and the settings
/// (small), the audit events written here not yet confirmed, and the bundle ids from
/// `pending_since` on.
fn delta(payload: &Payload, state: &SyncState, extra: &Extra) -> Result<(Payload, SyncState)> {
    let pending = |id: &EntryId| extra.pending.contains_key(id);
    let keep: Vec<bool> = (payload.entries.heads()?.iter())
        .map(|h| pending(&h.id))
        .collect();
    let recent = |at: Time| extra.pending_since.is_none_or(|s| at >= s);
    let p = Payload {
        settings: payload.settings.clone(),
        entries: payload.entries.patched(&keep, Vec::new()),
        deletions: (payload.deletions.iter())
            .filter(|d| pending(&d.id))
            .cloned()
            .collect(),
        contacts: payload.contacts.clone(),
        identity: payload.identity.clone(),
        seen_bundles: (payload.seen_bundles.iter())
            .filter(|b| recent(b.at))
            .cloned()
            .collect(),
        audit: {
            let mut audit: Vec<AuditEvent> = extra
                .pending_events
                .iter()
                .map(|(_, e)| e.clone())
                .collect();
            audit.sort_by(|x, y| super::merge::audit_key(x).cmp(&super::merge::audit_key(y)));
            audit.dedup();
            audit
        },
    };
    let st = SyncState {
        device: state.device,
        entries: (state.entries.iter())
            .filter(|(id, _)| pending(id))
            .map(|(id, t)| (*id, t.clone()))
            .collect(),
        deletions: (state.deletions.iter())
            .filter(|(id, _)| pending(id))
            .map(|(id, t)| (*id, t.clone()))
            .collect(),
        contacts: state.contacts.clone(),
        contact_removals: state.contact_removals.clone(),
        settings: state.settings.clone(),
        forgotten: state.forgotten.clone(),
    };
    Ok((p, st))
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
        let local_extra = Extra {
            since: None,
            pending: [([4; 16], 3)].into(),
            pending_since: Some(77),
            published_header: [5; 32],
            heard: [([9; 16], [6; 32])].into(),
            pending_events: vec![(
                3,
                AuditEvent {
                    at: 5,
                    action: "conflict".into(),
                    subject: Some("svc/x".into()),
                    detail: "changed on two devices".into(),
                },
            )],
            audit_mark: 12,
            wiped: Some(0),
        };
        let replica_extra = Extra {
            since: Some(2),
            ..Extra::default()
        };
        let cases = [
            (None, Extra::default()),
            (None, replica_extra),
            (Some(local.clone()), Extra::default()),
            (Some(local), local_extra.clone()),
        ];
        for (local, extra) in cases {
            let whole = Record {
                state: state.clone(),
                synced_at: 1234,
                local: local.clone(),
                name: "laptop".into(),
                extra: extra.clone(),
            };
            let parts = Record::encode_parts(
                &encode(&state).unwrap(),
                1234,
                local.as_ref(),
                "laptop",
                &extra,
            )
            .unwrap();
            assert_eq!(*whole.encode().unwrap(), *parts);
            assert_eq!(Record::decode(&parts).unwrap(), whole);
        }
        // An empty extra written out, and a device's own part in a replica, are refused.
        let head = Record::encode_parts(&encode(&state).unwrap(), 1, None, "x", &Extra::default())
            .unwrap();
        for extra in [Extra::default(), local_extra] {
            let mut bytes = head.to_vec();
            bytes.extend_from_slice(&encode(&extra).unwrap());
            assert!(Record::decode(&bytes).is_err());
        }
    }

    #[test]
    fn file_names_name_a_device_and_a_delta_generation_canonically() {
        let d = [0xab; 16];
        assert_eq!(parse_name(&replica_name(&d)), Some((d, None)));
        assert_eq!(parse_name(&delta_name(&d, 42)), Some((d, Some(42))));
        let h = hex(&d);
        for bad in [
            format!("{h}.042.jeton"),
            format!("{h}.x.jeton"),
            format!("{h}.jeton.tmp"),
            format!("{}.jeton", h.to_uppercase()),
            format!("{h}..jeton"),
            "short.jeton".to_owned(),
        ] {
            assert_eq!(parse_name(&bad), None, "{bad}");
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
