//! The unlocked vault: the decrypted payload plus the key that re-seals it.
//!
//! Opening runs in a fixed order: parse the header strictly, check the KDF bounds, derive the
//! key-encryption key, unwrap the vault key, check the key commitment, decrypt the payload with
//! the whole header as associated data, decode. A wrong passphrase fails at the unwrap (exit 3);
//! any other failure after parsing is one integrity error (exit 6).

use crate::aead::{self, LABEL_COMMITMENT, LABEL_PAYLOAD_KEY};
use crate::entries::{self, Entries};
use crate::entry::{DEFAULT_HISTORY_LIMIT, Entry, EntryId};
use crate::format::{
    COMMITMENT_LEN, Header, Slot, SlotKind, VAULT_ID_LEN, VERSION_SYNCED, VaultFile,
};
use crate::kdf::{self, KdfParams};
use crate::random::random_id;
use crate::secret::{Key, Passphrase, Token};
use crate::time::Time;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Most audit events kept; the oldest are dropped first (docs/CLI.md "log").
pub const AUDIT_CAP: usize = 10_000;

/// Vault-wide settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Name shown on this vault's contact card.
    pub owner: Option<String>,
    /// Technical contact for entries that name none.
    pub default_contact: Option<String>,
    /// Previous secrets kept per entry.
    pub history_limit: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            owner: None,
            default_contact: None,
            history_limit: DEFAULT_HISTORY_LIMIT,
        }
    }
}

/// This vault's own key pairs for sharing (SPEC §6). Both secrets stay inside the payload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Identity {
    /// The age X25519 identity, `AGE-SECRET-KEY-1...`.
    #[serde(with = "crate::secret::serde_token")]
    pub age_secret: Token,
    /// The Ed25519 signing key seed.
    #[serde(with = "crate::secret::serde_key")]
    pub signing_key: Key,
    /// When the identity was created.
    pub created_at: Time,
}

/// An authorised person (SPEC §6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Local name.
    pub name: String,
    /// age X25519 recipient, `age1...`.
    pub age_recipient: Option<String>,
    /// ssh-ed25519 public key line, for people without jeton.
    pub ssh_recipient: Option<String>,
    /// Ed25519 public key that signs their bundles.
    pub signing_key: Option<[u8; 32]>,
    /// When the contact was added or last changed.
    pub added_at: Time,
}

/// One line of the audit log. Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    pub at: Time,
    /// What: `init`, `add`, `edit`, `rotate`, ...
    pub action: String,
    /// Which entry (or contact), if any.
    pub subject: Option<String>,
    /// A short detail, never a secret.
    pub detail: String,
}

/// What `rm` leaves behind: enough to merge two copies of a vault, nothing more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// The removed entry's id.
    pub id: EntryId,
    /// When it was removed.
    pub at: Time,
}

/// A bundle already imported, so a replay is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenBundle {
    /// Bundle id (hex).
    pub id: String,
    /// When it was imported.
    pub at: Time,
}

/// Everything inside the encryption (SPEC §3, "Payload").
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Payload {
    /// Settings.
    pub settings: Settings,
    /// Entries by name, decoded on demand: see [`Entries`].
    pub entries: Entries,
    /// Deletion records.
    pub deletions: Vec<Deletion>,
    /// Authorised contacts.
    pub contacts: Vec<Contact>,
    /// This vault's identity for sharing.
    pub identity: Option<Identity>,
    /// Bundles already imported.
    pub seen_bundles: Vec<SeenBundle>,
    /// Audit log, oldest first.
    pub audit: Vec<AuditEvent>,
}

/// The payload's fields after the entry map, in file order (postcard encodes a tuple and a
/// struct alike: the fields one after another).
type Tail = (
    Vec<Deletion>,
    Vec<Contact>,
    Option<Identity>,
    Vec<SeenBundle>,
    Vec<AuditEvent>,
);

impl Payload {
    /// The fields after the entry map, borrowed, for encoding.
    fn tail(&self) -> impl Serialize + '_ {
        (
            &self.deletions,
            &self.contacts,
            &self.identity,
            &self.seen_bundles,
            &self.audit,
        )
    }

    /// The length of the postcard encoding.
    pub fn encoded_len(&self) -> Result<usize> {
        Ok(entries::encoded_len(&self.settings)?
            + self.entries.encoded_len()?
            + entries::encoded_len(&self.tail())?)
    }

    /// Appends the postcard encoding to `out`: postcard's encoding of the whole struct, built
    /// from its parts so that entries never decoded are copied as they were read.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        entries::encode_to(&self.settings, out)?;
        self.entries.encode_into(out)?;
        entries::encode_to(&self.tail(), out)
    }

    /// postcard encoding, in a buffer of its exact size that is wiped on drop.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.encoded_len()?));
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Strict postcard decoding: trailing bytes and inconsistent maps are refused.
    pub fn decode(bytes: &[u8]) -> Result<Payload> {
        Self::decode_owned(Zeroizing::new(bytes.to_vec()))
    }

    /// [`Payload::decode`], keeping `plain` for the entries to be decoded from on demand.
    pub fn decode_owned(plain: Zeroizing<Vec<u8>>) -> Result<Payload> {
        let (payload, rest) = Self::decode_with_rest(plain)?;
        if rest.is_some() {
            return Err(Error::corrupt_vault());
        }
        Ok(payload)
    }

    /// [`Payload::decode_owned`], returning the bytes that follow the payload (a synced
    /// vault's sync record) instead of refusing them.
    pub fn decode_with_rest(
        plain: Zeroizing<Vec<u8>>,
    ) -> Result<(Payload, Option<Zeroizing<Vec<u8>>>)> {
        let corrupt = |_| Error::corrupt_vault();
        let (settings, rest) = postcard::take_from_bytes::<Settings>(&plain).map_err(corrupt)?;
        let at = plain.len() - rest.len();
        let (entries, end) = Entries::decode(plain, at)?;
        let tail = entries
            .bytes()
            .get(end..)
            .ok_or_else(Error::corrupt_vault)?;
        let ((deletions, contacts, identity, seen_bundles, audit), rest) =
            postcard::take_from_bytes::<Tail>(tail).map_err(corrupt)?;
        let rest = (!rest.is_empty()).then(|| Zeroizing::new(rest.to_vec()));
        let payload = Payload {
            settings,
            entries,
            deletions,
            contacts,
            identity,
            seen_bundles,
            audit,
        };
        Ok((payload, rest))
    }
}

/// An unlocked vault.
pub struct Vault {
    header: Header,
    key: Key,
    /// The decrypted content.
    pub payload: Payload,
    dirty: bool,
    forget_previous: bool,
    /// Set by a sync round that published a snapshot after a wipe: the save that follows
    /// need not ask for another one.
    wipe_covered: bool,
    /// A synced vault's sync record (format v2), kept encoded: only sync reads it.
    sync: Option<Zeroizing<Vec<u8>>>,
    /// Audit events appended since the vault was opened (see [`Vault::audit_since`]).
    audit_written: u64,
    /// `audit_written` when a merge last replaced the log: earlier marks see only what follows.
    audit_merged: u64,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("generation", &self.header.generation)
            .field("entries", &self.payload.entries.len())
            .finish_non_exhaustive()
    }
}

/// Unwraps the vault key from the header's slot of `kind` with `secret`.
fn unwrap_slot(h: &Header, kind: SlotKind, secret: &[u8]) -> Result<Key> {
    if let Some(slot) = h.slots.iter().find(|s| s.kind == kind) {
        let kek = kdf::derive_bytes(secret, &slot.salt, &slot.kdf)?;
        if let Some(raw) = aead::open(&kek, &slot.nonce, &slot.aad(&h.vault_id), &slot.wrapped_key)
        {
            let bytes: [u8; 32] = raw
                .as_slice()
                .try_into()
                .map_err(|_| Error::corrupt_vault())?;
            return Ok(Key::from_bytes(bytes));
        }
    }
    Err(Error::wrong_passphrase())
}

fn new_slot(
    kind: SlotKind,
    secret: &[u8],
    kdf: KdfParams,
    vault_id: &[u8; 16],
    vault_key: &Key,
) -> Result<Slot> {
    let mut salt = vec![0u8; kdf::SALT_LEN];
    aead::fill_random(&mut salt)?;
    let kek = kdf::derive_bytes(secret, &salt, &kdf)?;
    let mut slot = Slot {
        kind,
        kdf,
        salt,
        nonce: aead::random_nonce()?,
        wrapped_key: [0; 48],
    };
    let wrapped = aead::seal(
        &kek,
        &slot.nonce,
        &slot.aad(vault_id),
        vault_key.expose_secret(),
    )?;
    slot.wrapped_key = wrapped
        .try_into()
        .map_err(|_| Error::Other("unexpected wrapped key length".into()))?;
    Ok(slot)
}

/// The header commitment a vault with id `vault_id` has under `key`.
pub fn commitment_of(key: &Key, vault_id: &[u8; VAULT_ID_LEN]) -> [u8; COMMITMENT_LEN] {
    commitment(key, vault_id)
}

fn commitment(key: &Key, vault_id: &[u8; VAULT_ID_LEN]) -> [u8; COMMITMENT_LEN] {
    *aead::subkey(key, vault_id, LABEL_COMMITMENT).expose_secret()
}

/// Seals `payload` (and a sync record after it) under `header`, whose nonce must be fresh.
///
/// The file is built in one buffer of its exact final size: header, payload encoded in place,
/// encrypted in place, tag. Sizing it first means the plaintext is never left behind in a
/// buffer that a growing `Vec` gave up.
fn seal_file(
    header: &Header,
    key: &Key,
    payload: &Payload,
    record: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let record = record.unwrap_or_default();
    let plain_len = payload.encoded_len()? + record.len();
    let payload_len = (plain_len + aead::TAG_LEN) as u64;
    let header_bytes = header.encode(payload_len);
    let header_len = header_bytes.len();
    let mut out = Zeroizing::new(Vec::with_capacity(header_len + plain_len + aead::TAG_LEN));
    out.extend_from_slice(&header_bytes);
    payload.encode_into(&mut out)?;
    out.extend_from_slice(record);
    if out.len() != header_len + plain_len {
        return Err(Error::Other(
            "internal error: the vault encoding changed size".into(),
        ));
    }
    let pkey = aead::subkey(key, &header.vault_id, LABEL_PAYLOAD_KEY);
    let tag = aead::seal_in_place(
        &pkey,
        &header.payload_nonce,
        &header_bytes,
        &mut out[header_len..],
    )?;
    out.extend_from_slice(&tag);
    Ok(std::mem::take(&mut *out))
}

impl Vault {
    /// A new, empty vault with one passphrase slot.
    pub fn create(passphrase: &Passphrase, kdf: KdfParams, now: Time) -> Result<Vault> {
        kdf.check_user()?;
        let vault_id = random_id::<VAULT_ID_LEN>()?;
        let key = Key::generate()?;
        let slot = new_slot(
            SlotKind::Passphrase,
            passphrase.expose_secret().as_bytes(),
            kdf,
            &vault_id,
            &key,
        )?;
        let header = Header {
            version: crate::format::VERSION,
            vault_id,
            generation: 0,
            slots: vec![slot],
            payload_nonce: [0; 12],
            commitment: commitment(&key, &vault_id),
        };
        let mut vault = Vault {
            header,
            key,
            payload: Payload::default(),
            dirty: true,
            forget_previous: false,
            wipe_covered: false,
            audit_written: 0,
            audit_merged: 0,
            sync: None,
        };
        vault.audit(now, "init", None, "vault created");
        Ok(vault)
    }

    /// A new, empty vault with id `vault_id` under `key` and no key slot: a team vault, whose
    /// key comes from its member list (`crate::team`).
    pub fn create_keyed(vault_id: [u8; VAULT_ID_LEN], key: Key, now: Time) -> Result<Vault> {
        let header = Header {
            version: crate::format::VERSION_SYNCED,
            vault_id,
            generation: 0,
            slots: vec![],
            payload_nonce: [0; 12],
            commitment: commitment(&key, &vault_id),
        };
        let mut vault = Vault {
            header,
            key,
            payload: Payload::default(),
            dirty: true,
            forget_previous: false,
            wipe_covered: false,
            audit_written: 0,
            audit_merged: 0,
            sync: None,
        };
        vault.audit(now, "init", None, "team vault created");
        Ok(vault)
    }

    /// Puts a slotless vault (a team vault) under `key` from its next save on; the previous
    /// generation, under the old key, is forgotten on that save.
    pub fn set_raw_key(&mut self, key: Key) {
        self.header.commitment = commitment(&key, &self.header.vault_id);
        self.key = key;
        self.forget_previous_on_save();
    }

    /// Derives the key-encryption key from `passphrase` and unwraps the vault key. Runs the
    /// KDF once, after checking its bounds.
    pub fn unlock(file: &VaultFile, passphrase: &Passphrase) -> Result<Key> {
        Self::unlock_slot(
            file,
            SlotKind::Passphrase,
            passphrase.expose_secret().as_bytes(),
        )
    }

    /// Unwraps the vault key from the slot of `kind` (the parser allows one of each), running
    /// the KDF once.
    pub fn unlock_slot(file: &VaultFile, kind: SlotKind, secret: &[u8]) -> Result<Key> {
        unwrap_slot(&file.header, kind, secret)
    }

    /// True when `secret` opens this vault's slot of `kind` and finds the current vault key
    /// there (a slot left from before a re-key does not count).
    pub fn slot_opens(&self, kind: SlotKind, secret: &[u8]) -> Result<bool> {
        match unwrap_slot(&self.header, kind, secret) {
            Ok(key) => Ok(bool::from(
                commitment(&key, &self.header.vault_id).ct_eq(&self.header.commitment),
            )),
            Err(Error::Unlock(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Decrypts the payload with an unwrapped vault key (no KDF: the agent calls this).
    pub fn open(file: &VaultFile, key: Key) -> Result<Vault> {
        Self::open_owned(file.clone(), key)
    }

    /// [`Vault::open`], decrypting the file's ciphertext in its own buffer: no copy of a large
    /// payload is made, and the plaintext buffer is wiped once decoded.
    pub fn open_owned(file: VaultFile, key: Key) -> Result<Vault> {
        let VaultFile {
            header,
            header_bytes,
            ciphertext,
        } = file;
        let expected = commitment(&key, &header.vault_id);
        if !bool::from(expected.ct_eq(&header.commitment)) {
            return Err(Error::Unlock(
                "the vault key does not match this vault (it was re-keyed: unlock again)".into(),
            ));
        }
        let pkey = aead::subkey(&key, &header.vault_id, LABEL_PAYLOAD_KEY);
        let plain = aead::open_in_place(&pkey, &header.payload_nonce, &header_bytes, ciphertext)
            .ok_or_else(Error::corrupt_vault)?;
        let (payload, sync) = Payload::decode_with_rest(plain)?;
        // A v1 file holds the payload alone; a synced one the payload and a sync record.
        if sync.is_some() != crate::format::is_synced(header.version) {
            return Err(Error::corrupt_vault());
        }
        let mut header = header;
        let sync = match sync {
            // The first synced format's record is read into today's (saved as such).
            Some(record) if header.version != VERSION_SYNCED => {
                header.version = VERSION_SYNCED;
                Some(crate::sync::upgrade_record(&record, &payload)?)
            }
            sync => sync,
        };
        Ok(Vault {
            header,
            key,
            payload,
            dirty: false,
            forget_previous: false,
            wipe_covered: false,
            audit_written: 0,
            audit_merged: 0,
            sync,
        })
    }

    /// Encrypts the payload under a fresh nonce with the generation bumped past `at_least`,
    /// and returns the whole file (see [`seal_file`]).
    pub fn seal(&mut self, at_least: u64) -> Result<Vec<u8>> {
        // A wipe in a synced vault: its next replica is a snapshot (older ones may hold what
        // was wiped).
        if self.forget_previous
            && !std::mem::take(&mut self.wipe_covered)
            && let Some(marked) = (self.sync.as_deref())
                .map(|r| crate::sync::round::mark_wiped(r))
                .transpose()?
                .flatten()
        {
            self.sync = Some(marked);
        }
        self.header.generation = self.header.generation.max(at_least).saturating_add(1);
        self.header.payload_nonce = aead::random_nonce()?;
        let out = seal_file(&self.header, &self.key, &self.payload, self.sync_record())?;
        self.dirty = false;
        Ok(out)
    }

    /// A replica of this vault for sync: the same key, slots and payload, followed by `record`
    /// instead of this vault's own sync record, at `generation`, under a fresh nonce.
    pub fn seal_replica(&self, record: &[u8], generation: u64) -> Result<Vec<u8>> {
        self.seal_replica_of(&self.payload, record, generation)
    }

    /// [`Vault::seal_replica`] with another payload (a delta: part of this one).
    pub fn seal_replica_of(
        &self,
        payload: &Payload,
        record: &[u8],
        generation: u64,
    ) -> Result<Vec<u8>> {
        let mut header = self.header.clone();
        header.version = VERSION_SYNCED;
        header.generation = generation;
        header.payload_nonce = aead::random_nonce()?;
        seal_file(&header, &self.key, payload, Some(record))
    }

    /// The sync record of a synced vault, encoded (see `crate::sync`).
    pub fn sync_record(&self) -> Option<&[u8]> {
        self.sync.as_deref().map(|v| &v[..])
    }

    /// Sets (or, with `None`, drops) the sync record; the file format follows (v2 with one).
    pub fn set_sync_record(&mut self, record: Option<Zeroizing<Vec<u8>>>) {
        self.header.version = if record.is_some() {
            VERSION_SYNCED
        } else {
            crate::format::VERSION
        };
        self.sync = record;
        self.dirty = true;
    }

    /// Replaces the passphrase: a new vault key, a new salt, and a new passphrase slot. Other
    /// slots (a recovery key) are dropped, since they wrap the old vault key.
    pub fn change_passphrase(
        &mut self,
        new: &Passphrase,
        kdf: KdfParams,
        now: Time,
    ) -> Result<usize> {
        let dropped = self.rekey(new, kdf)?;
        self.audit(now, "passwd", None, "passphrase changed; vault re-keyed");
        Ok(dropped)
    }

    /// Draws a new vault key and wraps it in one new passphrase slot (new salt) opened by
    /// `passphrase`; every other slot is dropped, since it wraps the old key. The next save
    /// forgets the previous generation, so no file keeps the old key. Returns how many slots
    /// were dropped.
    pub fn rekey(&mut self, passphrase: &Passphrase, kdf: KdfParams) -> Result<usize> {
        kdf.check_user()?;
        let key = Key::generate()?;
        let slot = new_slot(
            SlotKind::Passphrase,
            passphrase.expose_secret().as_bytes(),
            kdf,
            &self.header.vault_id,
            &key,
        )?;
        let dropped = self
            .header
            .slots
            .iter()
            .filter(|s| s.kind != SlotKind::Passphrase)
            .count();
        self.header.slots = vec![slot];
        self.header.commitment = commitment(&key, &self.header.vault_id);
        self.key = key;
        self.forget_previous_on_save();
        Ok(dropped)
    }

    /// Checks that `file` is sealed under `key` (commitment and authentication tag) without
    /// decoding its content.
    pub fn authenticate(file: VaultFile, key: &Key) -> Result<()> {
        let VaultFile {
            header,
            header_bytes,
            ciphertext,
        } = file;
        if !bool::from(commitment(key, &header.vault_id).ct_eq(&header.commitment)) {
            return Err(Error::Unlock("another vault key".into()));
        }
        let pkey = aead::subkey(key, &header.vault_id, LABEL_PAYLOAD_KEY);
        aead::open_in_place(&pkey, &header.payload_nonce, &header_bytes, ciphertext)
            .map(drop)
            .ok_or_else(Error::corrupt_vault)
    }

    /// Takes the key and key slots of `file`, another copy of this vault re-keyed elsewhere
    /// (a synced device's `passwd`): its slots open this vault from now on, and the next save
    /// forgets the previous generation, which holds the old key.
    pub fn adopt_key(&mut self, file: &VaultFile, key: Key) -> Result<()> {
        if file.header.vault_id != self.header.vault_id
            || !bool::from(commitment(&key, &self.header.vault_id).ct_eq(&file.header.commitment))
        {
            return Err(Error::Integrity("that key belongs to another vault".into()));
        }
        self.header.slots = file.header.slots.clone();
        self.header.commitment = file.header.commitment;
        self.key = key;
        self.forget_previous_on_save();
        Ok(())
    }

    /// Adds or replaces a slot of `kind` opened by `secret`, wrapping the current vault key.
    pub fn set_slot(&mut self, kind: SlotKind, secret: &[u8], kdf: KdfParams) -> Result<()> {
        let slot = new_slot(kind, secret, kdf, &self.header.vault_id, &self.key)?;
        self.header.slots.retain(|s| s.kind != kind);
        self.header.slots.push(slot);
        self.dirty = true;
        Ok(())
    }

    /// The header as last read or sealed.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The vault key, for front ends that cache it (the agent).
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The random vault id.
    pub fn id(&self) -> &[u8; VAULT_ID_LEN] {
        &self.header.vault_id
    }

    /// The save counter.
    pub fn generation(&self) -> u64 {
        self.header.generation
    }

    /// True when something changed since open or seal.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the vault changed.
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Marks the vault changed and tells the saver to forget the previous generation
    /// (`vault.jeton.bak` gets the new content too): the vault key changed, or secrets were
    /// wiped (revoke, history cut, revocation notice) that the previous file still holds.
    pub fn forget_previous_on_save(&mut self) {
        self.dirty = true;
        self.forget_previous = true;
        self.wipe_covered = false;
    }

    /// Tells the next save that this vault's sync replica just written is a snapshot taken
    /// after every wipe so far (see `crate::sync::round::mark_wiped`).
    pub fn cover_wipe(&mut self) {
        self.wipe_covered = true;
    }

    /// True when the next save must forget the previous generation.
    pub fn forgets_previous(&self) -> bool {
        self.forget_previous
    }

    /// Records that the vault was saved: the previous generation is gone if it had to be.
    pub fn saved(&mut self) {
        self.forget_previous = false;
    }

    /// Inserts `entry` under its name. An entry already there is replaced: its current secret
    /// joins its history (cut to the history limit, forgetting the previous generation when
    /// that cut anything), the new entry continues its revision count, and a deletion record keeps the
    /// old id (import and migrate `--on-conflict overwrite`).
    pub fn insert_replacing(&mut self, mut entry: Entry, now: Time) -> Result<()> {
        let name = entry.name.clone();
        let Some(old) = self.payload.entries.remove(&name)? else {
            self.dirty = true;
            self.payload.entries.insert(Box::new(entry));
            return Ok(());
        };
        entry.history = old.history;
        entry.revision = old.revision + 1;
        self.payload.deletions.push(Deletion {
            id: old.id,
            at: now,
        });
        self.dirty = true;
        self.payload.entries.insert(Box::new(entry));
        self.retire(&name, old.secret, old.secret_set_at, now)?;
        Ok(())
    }

    /// The history rule, for every way a secret stops being current (rotate, rollback, the
    /// switch of a rotation at the issuer, an overwriting import): `old`, current since
    /// `set_at`, joins the history of entry `name`, which is cut to the history limit. The cut
    /// secrets are wiped, and the next save forgets the previous generation so that
    /// `vault.jeton.bak` does not keep them either. Returns how many were cut.
    pub fn retire(
        &mut self,
        name: &str,
        old: Option<Token>,
        set_at: Time,
        now: Time,
    ) -> Result<usize> {
        let limit = self.payload.settings.history_limit;
        let e = self.entry_mut(name)?;
        let cut = match old {
            Some(old) => {
                e.push_history(crate::entry::HistoryItem::retired(old, set_at, now), limit)
            }
            None => e.trim_history(limit),
        };
        if cut > 0 {
            self.forget_previous_on_save();
        }
        Ok(cut)
    }

    /// Appends an audit event, dropping the oldest past [`AUDIT_CAP`].
    pub fn audit(
        &mut self,
        at: Time,
        action: &str,
        subject: Option<&str>,
        detail: impl Into<String>,
    ) {
        self.audit_event(AuditEvent {
            at,
            action: action.into(),
            subject: subject.map(Into::into),
            detail: detail.into(),
        });
    }

    /// Appends an audit event made elsewhere, dropping the oldest past [`AUDIT_CAP`].
    pub fn audit_event(&mut self, event: AuditEvent) {
        let log = &mut self.payload.audit;
        log.push(event);
        if log.len() > AUDIT_CAP {
            let excess = log.len() - AUDIT_CAP;
            log.drain(..excess);
        }
        self.audit_written += 1;
        self.dirty = true;
    }

    /// How many audit events were appended since the vault was opened: a mark for
    /// [`Vault::audit_since`].
    pub fn audit_written(&self) -> u64 {
        self.audit_written
    }

    /// The audit events appended after `mark` (an earlier [`Vault::audit_written`]), oldest
    /// first (fewer when the cap dropped some).
    pub fn audit_since(&self, mark: u64) -> &[AuditEvent] {
        let log = &self.payload.audit;
        let from = mark.max(self.audit_merged);
        let n = usize::try_from(self.audit_written.saturating_sub(from)).unwrap_or(usize::MAX);
        &log[log.len().saturating_sub(n)..]
    }

    /// Notes that a merge replaced the audit log: what it brought in was not written here, so
    /// [`Vault::audit_since`] never returns it.
    pub fn audit_replaced(&mut self) {
        self.audit_merged = self.audit_written;
    }

    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Result<&Entry> {
        self.payload
            .entries
            .get(name)?
            .ok_or_else(|| crate::find::not_found(&self.payload.entries, name))
    }

    /// The entry called `name`, for changing. Marks the vault dirty.
    pub fn entry_mut(&mut self, name: &str) -> Result<&mut Entry> {
        if !self.payload.entries.contains_key(name) {
            return Err(crate::find::not_found(&self.payload.entries, name));
        }
        self.dirty = true;
        self.payload
            .entries
            .get_mut(name)?
            .ok_or_else(|| not_found(name))
    }
}

/// The error for a missing entry.
pub fn not_found(name: &str) -> Error {
    Error::NotFound(format!(
        "no entry named '{}' (see `jeton list`)",
        crate::entry::printable(name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 8192,
        iterations: 1,
        lanes: 1,
    };

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.into())
    }

    #[test]
    fn audit_since_returns_what_was_written_here_after_the_mark_only() {
        let key = Key::from_bytes([3; 32]);
        let mut v = Vault::create_keyed([1; 16], key, 1).unwrap();
        let mark = v.audit_written();
        v.audit(2, "add", Some("a"), "entry added");
        v.audit(3, "rotate", Some("a"), "rotated");
        let actions = |v: &Vault, mark| -> Vec<String> {
            v.audit_since(mark)
                .iter()
                .map(|e| e.action.clone())
                .collect()
        };
        assert_eq!(actions(&v, mark), ["add", "rotate"]);
        // A merge replaces the log: lines it brought are not "written here".
        let mark = v.audit_written();
        v.audit(4, "edit", Some("a"), "edited");
        v.payload.audit.push(AuditEvent {
            at: 5,
            action: "rm".into(),
            subject: Some("b".into()),
            detail: "from another device".into(),
        });
        v.audit_replaced();
        assert!(actions(&v, mark).is_empty());
        v.audit(6, "add", Some("c"), "entry added");
        assert_eq!(actions(&v, mark), ["add"]);
        // Past the cap, fewer lines than were written remain.
        let mark = v.audit_written();
        for at in 0..(AUDIT_CAP as i64 + 5) {
            v.audit(at, "edit", Some("d"), "edited");
        }
        assert_eq!(v.audit_since(mark).len(), AUDIT_CAP);
    }

    #[test]
    fn create_seal_open() {
        let mut v = Vault::create(&pass("correct horse"), CHEAP, 1).unwrap();
        v.payload.settings.owner = Some("alice".into());
        let bytes = v.seal(0).unwrap();
        let f = VaultFile::parse(&bytes).unwrap();
        assert_eq!(f.header.generation, 1);
        assert_eq!(
            Vault::unlock(&f, &pass("wrong")).unwrap_err().exit_code(),
            3
        );
        let key = Vault::unlock(&f, &pass("correct horse")).unwrap();
        let v2 = Vault::open(&f, key).unwrap();
        assert_eq!(v2.payload.settings.owner.as_deref(), Some("alice"));
    }

    #[test]
    fn passwd_rekeys() {
        let mut v = Vault::create(&pass("old"), CHEAP, 1).unwrap();
        let old_file = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        let old_key = Vault::unlock(&old_file, &pass("old")).unwrap();
        v.change_passphrase(&pass("new"), CHEAP, 2).unwrap();
        let new_file = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        assert_ne!(new_file.header.slots[0].salt, old_file.header.slots[0].salt);
        assert!(Vault::unlock(&new_file, &pass("old")).is_err());
        assert!(Vault::open(&new_file, old_key).is_err());
        assert!(
            v.forgets_previous(),
            "a re-key must not leave the old file as the backup"
        );
        let k = Vault::unlock(&new_file, &pass("new")).unwrap();
        assert!(Vault::open(&new_file, k).is_ok());
    }

    #[test]
    fn insert_replacing_keeps_history_to_the_limit_and_forgets_the_previous_file() {
        use crate::request::{NewEntry, Request, execute};
        let mut v = Vault::create(&pass("p"), CHEAP, 1).unwrap();
        v.payload.settings.history_limit = 1;
        let add = |v: &mut Vault, s: &str| {
            let mut e = v.payload.entries.get("a").unwrap().cloned().map(Box::new);
            if e.is_none() {
                let new = NewEntry::bare("a", s);
                execute(v, Request::Add(Box::new(new)), 1).unwrap();
                return;
            }
            let e = e.as_mut().unwrap();
            e.secret = Some(Token::new(s.into()));
            e.history.clear();
            e.id = [9; 16];
            v.insert_replacing((**e).clone(), 2).unwrap();
        };
        add(&mut v, "one");
        add(&mut v, "two");
        assert!(!v.forgets_previous(), "nothing was cut yet");
        add(&mut v, "three");
        let e = v.payload.entries.get("a").unwrap().unwrap();
        assert_eq!(e.secret.as_ref().unwrap().expose_secret(), "three");
        assert_eq!(e.history.len(), 1);
        assert_eq!(e.history[0].secret.expose_secret(), "two");
        assert_eq!(e.revision, 3);
        assert_eq!(v.payload.deletions.len(), 2);
        assert!(
            v.forgets_previous(),
            "a cut secret must not survive in the backup"
        );
    }

    #[test]
    fn decode_refuses_entries_out_of_order_or_repeated() {
        use crate::request::{NewEntry, Request, execute};
        let mut v = Vault::create(&pass("p"), CHEAP, 1).unwrap();
        for name in ["b", "a", "c"] {
            let new = NewEntry::bare(name, &format!("secret-{name}"));
            execute(&mut v, Request::Add(Box::new(new)), 1).unwrap();
        }
        let p = &v.payload;
        // The payload, composed by hand from its parts with the entry pairs in a chosen order.
        let compose = |order: &[&str]| {
            let mut out = postcard::to_stdvec(&p.settings).unwrap();
            out.extend(postcard::to_stdvec(&order.len()).unwrap());
            for name in order {
                let e = p.entries.get(name).unwrap().unwrap();
                out.extend(postcard::to_stdvec(&(*name, e)).unwrap());
            }
            let rest = (
                &p.deletions,
                &p.contacts,
                &p.identity,
                &p.seen_bundles,
                &p.audit,
            );
            out.extend(postcard::to_stdvec(&rest).unwrap());
            out
        };
        let sorted = compose(&["a", "b", "c"]);
        assert_eq!(
            sorted,
            *p.encode().unwrap(),
            "the composition is the encoding"
        );
        let back = Payload::decode(&sorted).unwrap();
        let names: Vec<_> = back.entries.values().unwrap().map(|e| &e.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        for order in [
            &["b", "a", "c"][..],
            &["a", "c", "b"],
            &["a", "a", "b"],
            &["a", "b", "b"],
        ] {
            let err = Payload::decode(&compose(order)).unwrap_err();
            assert_eq!(err.exit_code(), 6, "{order:?}");
        }
    }

    #[test]
    fn seal_uses_fresh_nonces() {
        let mut v = Vault::create(&pass("p"), CHEAP, 1).unwrap();
        let a = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        let b = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        assert_ne!(a.header.payload_nonce, b.header.payload_nonce);
        assert_eq!(b.header.generation, a.header.generation + 1);
    }
}
