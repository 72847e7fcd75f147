//! AES-256-GCM sealing and the HKDF-SHA256 subkeys of the vault key.
//!
//! The vault key is never used directly: HKDF derives one key for the payload cipher and one
//! 32-byte commitment stored in the header. AES-GCM alone is not key-committing (a ciphertext
//! can be built that opens under two keys); checking the commitment first closes that.

use crate::secret::Key;
use crate::{Error, Result};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use zeroize::Zeroizing;

/// AES-GCM nonce length in bytes.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length in bytes.
pub const TAG_LEN: usize = 16;

/// HKDF info for the payload encryption key (FORMAT.md "Key schedule").
pub const LABEL_PAYLOAD_KEY: &[u8] = b"jeton/v1/payload-key";
/// HKDF info for the key commitment stored in the header (FORMAT.md "Key schedule").
pub const LABEL_COMMITMENT: &[u8] = b"jeton/v1/key-commitment";
/// Associated-data prefix of a key slot's wrapped vault key (FORMAT.md "Key slots").
pub const LABEL_SLOT: &[u8] = b"jeton/v1/key-slot";

pub use crate::random::fill_random;

/// A fresh random nonce. Every seal uses a new one (SPEC §3).
pub fn random_nonce() -> Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    fill_random(&mut n)?;
    Ok(n)
}

/// Derives a 32-byte subkey of `key` for `label`, salted with the vault id.
pub fn subkey(key: &Key, vault_id: &[u8], label: &[u8]) -> Key {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(vault_id), key.expose_secret());
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand(label, &mut out[..])
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Key::from_bytes(*out)
}

/// Encrypts `plaintext` with `aad` as associated data.
pub fn seal(key: &Key, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    cipher
        .encrypt(
            nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::Other("encryption failed".into()))
}

/// Decrypts and authenticates. `None` for any failure: callers turn it into one error.
pub fn open(
    key: &Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    cipher
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Encrypts `buf` in place and returns the tag: the vault payload is sealed without a second
/// copy of it (a 100,000-entry vault is about 33 MB).
pub fn seal_in_place(
    key: &Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<[u8; TAG_LEN]> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    let tag = cipher
        .encrypt_inout_detached(nonce.into(), aad, buf.into())
        .map_err(|_| Error::Other("encryption failed".into()))?;
    Ok(tag.into())
}

/// Decrypts and authenticates `ciphertext` (with its tag at the end) in its own buffer. `None`
/// for any failure; the buffer is wiped either way when dropped.
pub fn open_in_place(
    key: &Key,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    ciphertext: Vec<u8>,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(ciphertext);
    let msg_len = buf.len().checked_sub(TAG_LEN)?;
    let (msg, tag) = buf.split_at_mut(msg_len);
    let tag: [u8; TAG_LEN] = (&*tag).try_into().ok()?;
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    cipher
        .decrypt_inout_detached(nonce.into(), aad, msg.into(), (&tag).into())
        .ok()?;
    buf.truncate(msg_len);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_gcm_vector() {
        // NIST GCM test case 13 (AES-256, zero key, zero nonce, empty plaintext).
        let key = Key::from_bytes([0u8; 32]);
        let out = seal(&key, &[0u8; 12], b"", b"").unwrap();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "530f8afbc74536b9a963b4f1c4cb738b");
    }

    #[test]
    fn open_rejects_wrong_aad_and_key() {
        let key = Key::from_bytes([7u8; 32]);
        let n = random_nonce().unwrap();
        let ct = seal(&key, &n, b"aad", b"hello").unwrap();
        assert_eq!(open(&key, &n, b"aad", &ct).unwrap().as_slice(), b"hello");
        assert!(open(&key, &n, b"aaD", &ct).is_none());
        assert!(open(&Key::from_bytes([8u8; 32]), &n, b"aad", &ct).is_none());
    }

    #[test]
    fn in_place_matches_the_allocating_calls() {
        let key = Key::from_bytes([9u8; 32]);
        let n = random_nonce().unwrap();
        let mut buf = b"the payload".to_vec();
        let tag = seal_in_place(&key, &n, b"hdr", &mut buf).unwrap();
        buf.extend_from_slice(&tag);
        assert_eq!(buf, seal(&key, &n, b"hdr", b"the payload").unwrap());
        let plain = open_in_place(&key, &n, b"hdr", buf.clone()).unwrap();
        assert_eq!(plain.as_slice(), b"the payload");
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 1;
            assert!(open_in_place(&key, &n, b"hdr", bad).is_none());
        }
        assert!(open_in_place(&key, &n, b"hdX", buf.clone()).is_none());
        assert!(open_in_place(&key, &n, b"hdr", buf[..15].to_vec()).is_none());
    }

    #[test]
    fn subkeys_differ_by_label() {
        let key = Key::from_bytes([1u8; 32]);
        let a = subkey(&key, b"id", LABEL_PAYLOAD_KEY);
        let b = subkey(&key, b"id", LABEL_COMMITMENT);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
