//! The on-disk vault layout, format v1 (docs/FORMAT.md is the byte-level description).
//!
//! Parsing is strict: every length is checked against the bytes present and against its
//! bounds, trailing bytes are refused, and nothing is allocated from an unchecked length.
//! Writing is canonical: one header has exactly one encoding.

use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::kdf::{BOUNDS, KdfParams};
use crate::{Error, Result};

/// File magic (FORMAT.md offset 0).
pub const MAGIC: &[u8; 8] = b"JETONVLT";
/// The format version of a vault that does not sync.
pub const VERSION: u16 = 1;
/// The format version of a vault that syncs (and of its replicas): v1, with the sync record
/// after the payload inside the encryption (docs/FORMAT.md "Synced vaults").
pub const VERSION_SYNCED: u16 = 3;
/// The first format of synced vaults: its sync record merges whole entries. Read, converted
/// when opened, and never written.
pub const VERSION_SYNCED_V2: u16 = 2;

/// True for a format version whose payload is followed by a sync record.
pub fn is_synced(version: u16) -> bool {
    version == VERSION_SYNCED || version == VERSION_SYNCED_V2
}
/// Length of the vault id.
pub const VAULT_ID_LEN: usize = 16;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Length of a wrapped vault key: 32 bytes of key and the GCM tag.
pub const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;
/// Most key slots a file may hold.
pub const MAX_SLOTS: usize = 8;
/// KDF algorithm id for Argon2id version 0x13.
pub const KDF_ARGON2ID_V13: u8 = 1;
/// Largest payload ciphertext accepted (1 GiB).
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;

/// What a key slot is opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    /// The vault passphrase.
    Passphrase,
    /// A random recovery key.
    Recovery,
}

impl SlotKind {
    fn to_byte(self) -> u8 {
        match self {
            SlotKind::Passphrase => 1,
            SlotKind::Recovery => 2,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(SlotKind::Passphrase),
            2 => Some(SlotKind::Recovery),
            _ => None,
        }
    }
}

/// One key slot: the vault key wrapped under a key derived from a passphrase or recovery key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// What opens this slot.
    pub kind: SlotKind,
    /// Argon2id costs.
    pub kdf: KdfParams,
    /// Argon2id salt (16..64 bytes).
    pub salt: Vec<u8>,
    /// Nonce of the wrapping.
    pub nonce: [u8; NONCE_LEN],
    /// The vault key sealed under the slot's key-encryption key.
    pub wrapped_key: [u8; WRAPPED_KEY_LEN],
}

impl Slot {
    /// Associated data for this slot's wrapping: label, vault id, and the slot's own settings,
    /// so a slot cannot be moved to another vault or have its costs lowered unnoticed.
    pub fn aad(&self, vault_id: &[u8; VAULT_ID_LEN]) -> Vec<u8> {
        let mut a = crate::aead::LABEL_SLOT.to_vec();
        a.extend_from_slice(vault_id);
        a.push(self.kind.to_byte());
        self.write_params(&mut a);
        a
    }

    fn write_params(&self, out: &mut Vec<u8>) {
        out.push(KDF_ARGON2ID_V13);
        out.extend_from_slice(&self.kdf.memory_kib.to_le_bytes());
        out.extend_from_slice(&self.kdf.iterations.to_le_bytes());
        out.extend_from_slice(&self.kdf.lanes.to_le_bytes());
        out.push(self.salt.len() as u8);
        out.extend_from_slice(&self.salt);
    }
}

/// The authenticated header of a vault file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`VERSION`], or [`VERSION_SYNCED`] when the payload is followed by a sync record.
    pub version: u16,
    /// Random id of this vault, fixed at `init`.
    pub vault_id: [u8; VAULT_ID_LEN],
    /// Incremented on every save; used to notice rollbacks.
    pub generation: u64,
    /// Key slots, at most one of each kind; at least one except in a team vault (v2).
    pub slots: Vec<Slot>,
    /// Nonce of the payload encryption.
    pub payload_nonce: [u8; NONCE_LEN],
    /// HKDF commitment to the vault key.
    pub commitment: [u8; COMMITMENT_LEN],
}

/// A parsed vault file: the header, its exact bytes (the payload's associated data), and the
/// payload ciphertext.
#[derive(Clone, Debug)]
pub struct VaultFile {
    /// The decoded header.
    pub header: Header,
    /// The header bytes exactly as stored, including the payload length field.
    pub header_bytes: Vec<u8>,
    /// The payload ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

impl Header {
    /// Canonical encoding of the header followed by the payload length field.
    pub fn encode(&self, payload_len: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.slots.len() * 96);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.vault_id);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.push(self.slots.len() as u8);
        for s in &self.slots {
            out.push(s.kind.to_byte());
            s.write_params(&mut out);
            out.extend_from_slice(&s.nonce);
            out.extend_from_slice(&s.wrapped_key);
        }
        out.extend_from_slice(&self.payload_nonce);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&payload_len.to_le_bytes());
        out
    }
}

impl VaultFile {
    /// The whole file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header_bytes.clone();
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses a vault file strictly. Any malformation is an integrity error (exit 6).
    pub fn parse(bytes: &[u8]) -> Result<VaultFile> {
        let (header, header_len) = Self::parse_header(bytes)?;
        Ok(VaultFile {
            header,
            header_bytes: bytes[..header_len].to_vec(),
            ciphertext: bytes[header_len..].to_vec(),
        })
    }

    /// [`VaultFile::parse`], keeping the file's own buffer as the ciphertext instead of copying it.
    pub fn parse_owned(mut bytes: Vec<u8>) -> Result<VaultFile> {
        let (header, header_len) = Self::parse_header(&bytes)?;
        let header_bytes = bytes[..header_len].to_vec();
        bytes.drain(..header_len);
        Ok(VaultFile {
            header,
            header_bytes,
            ciphertext: bytes,
        })
    }

    /// The header of a vault file and its bytes, without copying the rest (nothing is
    /// authenticated yet: the header is the payload's associated data).
    pub fn peek_header(bytes: &[u8]) -> Result<(Header, &[u8])> {
        let (header, len) = Self::parse_header(bytes)?;
        Ok((header, &bytes[..len]))
    }

    /// The header and the length of its bytes; checks that the payload fills the rest exactly.
    fn parse_header(bytes: &[u8]) -> Result<(Header, usize)> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(Error::Integrity(
                "this is not a jeton vault (bad magic)".into(),
            ));
        }
        let version = r.u16()?;
        if version != VERSION && !is_synced(version) {
            return Err(Error::Integrity(format!(
                "unsupported vault format version {version} (this jeton reads versions {VERSION} to {VERSION_SYNCED})"
            )));
        }
        let vault_id = r.array::<VAULT_ID_LEN>()?;
        let generation = r.u64()?;
        let slot_count = usize::from(r.u8()?);
        // A team vault (always v2) has no slot: its key comes from the team's member list.
        if (slot_count == 0 && !is_synced(version)) || slot_count > MAX_SLOTS {
            return Err(malformed("slot count out of range"));
        }
        let mut slots = Vec::with_capacity(slot_count);
        for _ in 0..slot_count {
            let kind =
                SlotKind::from_byte(r.u8()?).ok_or_else(|| malformed("unknown key slot kind"))?;
            // Each slot costs a KDF run to try: one of each kind, refused before any runs.
            if slots.iter().any(|s: &Slot| s.kind == kind) {
                return Err(malformed("two key slots of one kind"));
            }
            if r.u8()? != KDF_ARGON2ID_V13 {
                return Err(malformed("unknown KDF (only Argon2id v1.3 is supported)"));
            }
            let kdf = KdfParams {
                memory_kib: r.u32()?,
                iterations: r.u32()?,
                lanes: r.u32()?,
            };
            let salt_len = usize::from(r.u8()?);
            if !(BOUNDS.salt_len.0..=BOUNDS.salt_len.1).contains(&salt_len) {
                return Err(malformed("salt length out of range"));
            }
            let salt = r.take(salt_len)?.to_vec();
            let nonce = r.array::<NONCE_LEN>()?;
            let wrapped_key = r.array::<WRAPPED_KEY_LEN>()?;
            slots.push(Slot {
                kind,
                kdf,
                salt,
                nonce,
                wrapped_key,
            });
        }
        let payload_nonce = r.array::<NONCE_LEN>()?;
        let commitment = r.array::<COMMITMENT_LEN>()?;
        let payload_len = r.u64()?;
        if payload_len > MAX_PAYLOAD_LEN || payload_len < TAG_LEN as u64 {
            return Err(malformed("payload length out of range"));
        }
        let header_len = r.pos;
        r.take(payload_len as usize)?;
        if r.pos != bytes.len() {
            return Err(malformed("trailing bytes after the payload"));
        }
        let header = Header {
            version,
            vault_id,
            generation,
            slots,
            payload_nonce,
            commitment,
        };
        Ok((header, header_len))
    }
}

fn malformed(what: &str) -> Error {
    Error::Integrity(format!(
        "the vault file is corrupt or has been tampered with ({what})"
    ))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| malformed("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(slots: usize, salt_len: usize) -> Header {
        Header {
            version: VERSION,
            vault_id: [3; 16],
            generation: 42,
            slots: (0..slots)
                .map(|i| Slot {
                    kind: if i == 0 {
                        SlotKind::Passphrase
                    } else {
                        SlotKind::Recovery
                    },
                    kdf: KdfParams {
                        memory_kib: 8192,
                        iterations: 1,
                        lanes: 1,
                    },
                    salt: vec![i as u8; salt_len],
                    nonce: [9; 12],
                    wrapped_key: [5; 48],
                })
                .collect(),
            payload_nonce: [1; 12],
            commitment: [2; 32],
        }
    }

    proptest! {
        #[test]
        fn header_round_trips(slots in 1usize..=2, salt_len in 16usize..=64, gen_ in any::<u64>(), ct in proptest::collection::vec(any::<u8>(), 16..200)) {
            let mut h = header(slots, salt_len);
            h.generation = gen_;
            let hb = h.encode(ct.len() as u64);
            let f = VaultFile { header: h.clone(), header_bytes: hb, ciphertext: ct };
            let parsed = VaultFile::parse(&f.to_bytes()).unwrap();
            prop_assert_eq!(&parsed.header, &h);
            prop_assert_eq!(parsed.to_bytes(), f.to_bytes());
            let owned = VaultFile::parse_owned(f.to_bytes()).unwrap();
            prop_assert_eq!(&owned.header_bytes, &parsed.header_bytes);
            prop_assert_eq!(&owned.ciphertext, &parsed.ciphertext);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = VaultFile::parse(&bytes);
        }
    }

    #[test]
    fn refuses_two_slots_of_one_kind() {
        let mut h = header(2, 32);
        let ok = VaultFile::parse(&[h.encode(16), vec![0; 16]].concat());
        assert!(ok.is_ok());
        h.slots[1].kind = SlotKind::Passphrase;
        let err = VaultFile::parse(&[h.encode(16), vec![0; 16]].concat()).unwrap_err();
        assert_eq!(err.exit_code(), 6);
        assert!(
            err.to_string().contains("two key slots of one kind"),
            "{err}"
        );
    }

    #[test]
    fn refuses_trailing_and_truncated() {
        let h = header(1, 32);
        let mut bytes = h.encode(16);
        bytes.extend_from_slice(&[0; 16]);
        assert!(VaultFile::parse(&bytes).is_ok());
        for cut in 0..bytes.len() {
            assert!(VaultFile::parse(&bytes[..cut]).is_err(), "cut at {cut}");
            assert!(VaultFile::parse_owned(bytes[..cut].to_vec()).is_err());
        }
        bytes.push(0);
        assert!(VaultFile::parse(&bytes).is_err());
        assert!(VaultFile::parse_owned(bytes).is_err());
    }
}
