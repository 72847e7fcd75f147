//! The recovery key: a second key slot opened by a random key the user writes down, so a
//! forgotten passphrase does not lose the vault (docs/FORMAT.md "Recovery slot").
//!
//! The key is 160 bits from the OS CSPRNG, shown once as 32 characters of the RFC 4648 base32
//! alphabet in groups of four. Its raw bytes (not the text) are the KDF input, so spaces, dashes
//! and case do not matter when it is typed back. It is never stored: the slot holds only the
//! vault key wrapped under Argon2id(recovery key, salt), with the passphrase slot's costs.

use crate::format::SlotKind;
use crate::kdf::KdfParams;
use crate::secret::Token;
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Bytes of randomness in a recovery key (160 bits).
pub const KEY_LEN: usize = 20;
/// Characters per group when the key is shown.
const GROUP: usize = 4;

/// A recovery key. No Debug with content, wiped on drop.
pub struct RecoveryKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(<redacted>)")
    }
}

impl RecoveryKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<RecoveryKey> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        crate::random::fill_random(&mut k[..])?;
        Ok(RecoveryKey(k))
    }

    /// Reads a key typed back by the user: base32 letters and digits, case, spaces and dashes
    /// ignored.
    pub fn parse(text: &str) -> Result<RecoveryKey> {
        let clean: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bad = || {
            Error::Unlock(
                "this is not a recovery key (32 characters A-Z and 2-7, in groups of four)".into(),
            )
        };
        let bytes = Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .decode(clean.as_bytes())
                .map_err(|_| bad())?,
        );
        let arr: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| bad())?;
        Ok(RecoveryKey(Zeroizing::new(arr)))
    }

    /// The key as shown to the user: `ABCD-EFGH-...`, eight groups of four.
    pub fn display(&self) -> Token {
        let plain = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&self.0[..]));
        let mut out = String::with_capacity(plain.len() + plain.len() / GROUP);
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && i % GROUP == 0 {
                out.push('-');
            }
            out.push(c);
        }
        Token::new(out)
    }

    /// The raw bytes, for the KDF only.
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// The KDF costs of the vault's passphrase slot, which the recovery slot copies.
pub fn passphrase_kdf(vault: &Vault) -> KdfParams {
    vault
        .header()
        .slots
        .iter()
        .find(|s| s.kind == SlotKind::Passphrase)
        .map(|s| s.kdf)
        .unwrap_or_default()
}

/// True when the vault has a recovery slot.
pub fn has_slot(vault: &Vault) -> bool {
    vault
        .header()
        .slots
        .iter()
        .any(|s| s.kind == SlotKind::Recovery)
}

/// Wraps the current vault key under `key`, replacing any previous recovery slot.
pub fn install(vault: &mut Vault, key: &RecoveryKey) -> Result<()> {
    let kdf = passphrase_kdf(vault);
    vault.set_slot(SlotKind::Recovery, key.expose_secret(), kdf)
}

/// Recovery requests an unlocked vault can run (the agent too). Making a new key is not one:
/// it re-keys the vault, which needs the passphrase ([`renew`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecoveryRequest {
    /// Whether the vault has a recovery slot.
    Status,
}

impl RecoveryRequest {
    /// True when the request may change the vault.
    pub fn writes(&self) -> bool {
        false
    }
}

/// What a recovery request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecoveryResponse {
    /// Whether a recovery slot exists.
    Status {
        /// True when a recovery key opens this vault.
        present: bool,
    },
}

/// Runs one recovery request.
pub fn execute(
    vault: &mut Vault,
    request: RecoveryRequest,
    _now: Time,
) -> Result<RecoveryResponse> {
    match request {
        RecoveryRequest::Status => Ok(RecoveryResponse::Status {
            present: has_slot(vault),
        }),
    }
}

/// A recovery key just made by [`renew`], to show once.
pub struct Renewed {
    /// `ABCD-EFGH-...`.
    pub key: Token,
    /// True when an older recovery key was replaced.
    pub replaced: bool,
}

/// Makes a new recovery key and re-keys the vault for it: a new vault key, the passphrase slot
/// re-wrapped under it (same passphrase, same costs, new salt), and a recovery slot for the new
/// key. The old recovery key then opens no later save, even with an older copy of the file in
/// hand, and the save forgets the previous generation. `passphrase` must be the one this vault
/// was just unlocked with.
pub fn renew(
    vault: &mut Vault,
    passphrase: &crate::secret::Passphrase,
    now: Time,
) -> Result<Renewed> {
    let replaced = has_slot(vault);
    let kdf = passphrase_kdf(vault);
    let key = RecoveryKey::generate()?;
    vault.rekey(passphrase, kdf)?;
    install(vault, &key)?;
    let detail = if replaced {
        "new recovery key; vault re-keyed, the previous key no longer opens it"
    } else {
        "recovery key created; vault re-keyed"
    };
    vault.audit(now, "recovery", None, detail);
    Ok(Renewed {
        key: key.display(),
        replaced,
    })
}

/// Opens a vault with its recovery key, sets a new passphrase (new salt, new vault key, as
/// `passwd` does) and wraps the new vault key under the same recovery key, which keeps working.
pub fn recover_with(
    vault: &mut Vault,
    key: &RecoveryKey,
    new: &crate::secret::Passphrase,
    now: Time,
) -> Result<KdfParams> {
    let kdf = passphrase_kdf(vault);
    vault.change_passphrase(new, kdf, now)?;
    install(vault, key)?;
    vault.audit(
        now,
        "recover",
        None,
        "opened with the recovery key; new passphrase set",
    );
    Ok(kdf)
}

/// `passwd` that keeps the recovery key working: `key` must open the vault's recovery slot
/// (else exit 3, nothing changed); the new vault key is wrapped under it again, as `recover`
/// does. Synced devices that take the new key (`sync --adopt-key`) take this slot with it.
pub fn passwd_keeping(
    vault: &mut Vault,
    key: &RecoveryKey,
    new: &crate::secret::Passphrase,
    kdf: KdfParams,
    now: Time,
) -> Result<()> {
    if !vault.slot_opens(SlotKind::Recovery, key.expose_secret())? {
        return Err(Error::Unlock(
            "that recovery key does not open this vault: nothing was changed (leave it out to drop the recovery key)".into(),
        ));
    }
    vault.change_passphrase(new, kdf, now)?;
    install(vault, key)
}

/// Unwraps the vault key from the recovery slot.
pub fn unlock(file: &crate::format::VaultFile, key: &RecoveryKey) -> Result<crate::secret::Key> {
    if !file
        .header
        .slots
        .iter()
        .any(|s| s.kind == SlotKind::Recovery)
    {
        return Err(Error::Unlock(
            "this vault has no recovery key (make one with `jeton recovery new` while you still know the passphrase)".into(),
        ));
    }
    Vault::unlock_slot(file, SlotKind::Recovery, key.expose_secret())
        .map_err(|_| Error::Unlock("wrong recovery key (or a damaged key slot)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::VaultFile;
    use crate::secret::Passphrase;

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 8192,
        iterations: 1,
        lanes: 1,
    };

    #[test]
    fn display_parses_back() {
        let k = RecoveryKey::generate().unwrap();
        let shown = k.display();
        let text = shown.expose_secret();
        assert_eq!(text.len(), 32 + 7);
        assert!(text.split('-').all(|g| g.len() == 4));
        let back = RecoveryKey::parse(&text.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(back.expose_secret(), k.expose_secret());
        assert!(RecoveryKey::parse("ABCD").is_err());
        assert!(RecoveryKey::parse(&text.replace('A', "1")).is_err() || !text.contains('A'));
        assert_ne!(
            RecoveryKey::generate().unwrap().expose_secret(),
            k.expose_secret()
        );
    }

    proptest::proptest! {
        #[test]
        fn shown_keys_parse_back(bytes in proptest::prelude::any::<[u8; KEY_LEN]>()) {
            let k = RecoveryKey(Zeroizing::new(bytes));
            let shown = k.display();
            let back = RecoveryKey::parse(shown.expose_secret()).unwrap();
            proptest::prop_assert_eq!(back.expose_secret(), &bytes);
        }

        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = RecoveryKey::parse(&text);
        }
    }

    #[test]
    fn recovery_survives_recover_but_not_replacement() {
        let mut v = Vault::create(&Passphrase::new("old".into()), CHEAP, 1).unwrap();
        let k1 = RecoveryKey::generate().unwrap();
        install(&mut v, &k1).unwrap();
        let f = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        let key = unlock(&f, &k1).unwrap();
        let mut v = Vault::open(&f, key).unwrap();
        recover_with(&mut v, &k1, &Passphrase::new("new".into()), 2).unwrap();
        assert!(v.forgets_previous());
        let f2 = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        assert!(Vault::unlock(&f2, &Passphrase::new("old".into())).is_err());
        assert!(Vault::unlock(&f2, &Passphrase::new("new".into())).is_ok());
        assert!(unlock(&f2, &k1).is_ok());
        v.saved();
        let renewed = renew(&mut v, &Passphrase::new("new".into()), 3).unwrap();
        assert!(renewed.replaced);
        assert!(v.forgets_previous());
        let f3 = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        assert!(unlock(&f3, &k1).is_err());
        let k2 = RecoveryKey::parse(renewed.key.expose_secret()).unwrap();
        assert!(Vault::open(&f3, unlock(&f3, &k2).unwrap()).is_ok());
        let k = Vault::unlock(&f3, &Passphrase::new("new".into())).unwrap();
        assert!(Vault::open(&f3, k).is_ok(), "the passphrase keeps working");
    }

    #[test]
    fn recovery_new_leaves_the_old_key_and_an_old_copy_useless() {
        let pass = Passphrase::new("p".into());
        let mut v = Vault::create(&pass, CHEAP, 1).unwrap();
        let old = RecoveryKey::generate().unwrap();
        install(&mut v, &old).unwrap();
        let old_file = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        renew(&mut v, &pass, 2).unwrap();
        let new_file = VaultFile::parse(&v.seal(0).unwrap()).unwrap();
        // The old recovery key still opens the old copy, and yields the old vault key...
        let old_vault_key = unlock(&old_file, &old).unwrap();
        // ...which must not open the new file.
        assert!(Vault::open(&new_file, old_vault_key).is_err());
        assert!(unlock(&new_file, &old).is_err());
    }
}
