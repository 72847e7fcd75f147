//! This vault's own sharing identity (SPEC §6): an age X25519 identity to receive bundles and an
//! Ed25519 key to sign them, both kept inside the encrypted payload, plus the one-line contact
//! card that hands their public halves to a teammate.

use super::LABEL_FINGERPRINT;
use crate::secret::{Key, Token};
use crate::time::Time;
use crate::vault::{Identity, Vault};
use crate::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// First word of a contact card (docs/FORMAT.md "Contact cards").
pub const CARD_PREFIX: &str = "jeton-card-v1";
/// Longest name shown on a card.
pub const MAX_CARD_NAME: usize = 64;

/// A fresh identity from the operating system's CSPRNG.
pub fn generate(now: Time) -> Result<Identity> {
    let age_identity = age::x25519::Identity::generate();
    let age_secret = {
        use age::secrecy::ExposeSecret;
        Token::new(age_identity.to_string().expose_secret().to_owned())
    };
    Ok(Identity {
        age_secret,
        signing_key: Key::generate()?,
        created_at: now,
    })
}

/// Gives the vault an identity if it has none (vaults made before sharing existed). Returns
/// true when one was created.
pub fn ensure(vault: &mut Vault, now: Time) -> Result<bool> {
    if vault.payload.identity.is_some() {
        return Ok(false);
    }
    vault.payload.identity = Some(generate(now)?);
    vault.audit(now, "identity", None, "sharing identity created");
    Ok(true)
}

/// The identity's keys, parsed for use.
pub struct Keys {
    /// To decrypt bundles.
    pub age: age::x25519::Identity,
    /// To sign bundles.
    pub signing: SigningKey,
}

impl Keys {
    /// Parses the stored identity.
    pub fn of(identity: &Identity) -> Result<Keys> {
        let age = identity
            .age_secret
            .expose_secret()
            .parse::<age::x25519::Identity>()
            .map_err(|_| Error::corrupt_vault())?;
        Ok(Keys {
            age,
            signing: SigningKey::from_bytes(identity.signing_key.expose_secret()),
        })
    }

    /// The public card of these keys under `name`.
    pub fn card(&self, name: Option<&str>) -> Card {
        Card {
            name: name.map(card_name).unwrap_or_default(),
            age_recipient: self.age.to_public().to_string(),
            signing_key: self.signing.verifying_key().to_bytes(),
        }
    }
}

/// The parsed keys of the vault, which must have an identity ([`ensure`] first).
pub fn keys(vault: &Vault) -> Result<Keys> {
    let id = vault
        .payload
        .identity
        .as_ref()
        .ok_or_else(|| Error::Other("internal error: the vault has no identity".into()))?;
    Keys::of(id)
}

/// A name made fit for a card: control characters dropped, spaces collapsed, length capped.
fn card_name(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CARD_NAME)
        .collect()
}

/// A public contact card: `jeton-card-v1 AGE_RECIPIENT ED25519_KEY_BASE64 [NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// The owner's name (may be empty).
    pub name: String,
    /// The age X25519 recipient, `age1...`.
    pub age_recipient: String,
    /// The Ed25519 public key.
    pub signing_key: [u8; 32],
}

impl Card {
    /// The one-line text form.
    pub fn to_line(&self) -> String {
        let mut s = format!(
            "{CARD_PREFIX} {} {}",
            self.age_recipient,
            b64(&self.signing_key)
        );
        if !self.name.is_empty() {
            s.push(' ');
            s.push_str(&self.name);
        }
        s
    }

    /// Parses and checks a card line; both keys must be valid.
    pub fn parse(line: &str) -> Result<Card> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "not a jeton contact card ({why}); ask for the output of `jeton identity`"
            ))
        };
        let mut words = line.split_whitespace();
        if words.next() != Some(CARD_PREFIX) {
            let why = match secret_key_hint(line) {
                Some(hint) => hint.to_owned(),
                None => format!("it must start with {CARD_PREFIX}"),
            };
            return Err(bad(&why));
        }
        let age_recipient = words.next().ok_or_else(|| bad("no age recipient"))?;
        let age_recipient = parse_age_recipient(age_recipient)?;
        let key = words.next().ok_or_else(|| bad("no signing key"))?;
        let signing_key = parse_signing_key(key).map_err(|_| bad("bad Ed25519 key"))?;
        let rest: Vec<&str> = words.collect();
        let name = rest.join(" ");
        if name.chars().any(char::is_control) || name.chars().count() > MAX_CARD_NAME {
            return Err(bad("bad name"));
        }
        Ok(Card {
            name,
            age_recipient,
            signing_key,
        })
    }

    /// The card's fingerprint.
    pub fn fingerprint(&self) -> String {
        fingerprint(Some(&self.age_recipient), Some(&self.signing_key), None)
    }
}

/// Standard base64 without padding (43 characters for 32 bytes).
pub fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Decodes standard base64 without padding.
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s).ok()
}

/// Parses an Ed25519 public key in base64; refuses invalid and weak (small-order) points.
pub fn parse_signing_key(s: &str) -> Result<[u8; 32]> {
    let bad = || Error::Usage("not a valid Ed25519 public key".into());
    let bytes: [u8; 32] = unb64(s).and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
    if key.is_weak() {
        return Err(bad());
    }
    Ok(bytes)
}

/// When `s` looks like a private key given where a public one belongs, what to say instead of
/// echoing it: that it is secret, and how to get the public half. Errors about keys never quote
/// the value given (it may be a secret key), whether or not this recognises it.
pub fn secret_key_hint(s: &str) -> Option<&'static str> {
    let t = s.trim_start().to_ascii_uppercase();
    if t.starts_with("AGE-SECRET-KEY-") || t.starts_with("AGE-PLUGIN-") {
        Some(
            "this is an age secret key, which must never be shared: give its recipient, \
             which `age-keygen -y KEYFILE` prints (and, as it was on a command line, clear it \
             from your shell history)",
        )
    } else if t.contains("PRIVATE KEY") {
        Some(
            "this is a private key, which must never be shared: give its public key, which \
             `ssh-keygen -y -f KEYFILE` prints (and, as it was on a command line, clear it \
             from your shell history)",
        )
    } else {
        None
    }
}

/// A usage error about a key that was expected: `expected`, or the secret-key hint. Never the
/// value itself.
pub fn bad_key(given: &str, expected: &str) -> Error {
    Error::Usage(match secret_key_hint(given) {
        Some(hint) => format!("not {expected}: {hint}"),
        None => format!("not {expected}"),
    })
}

/// Checks an age X25519 recipient and returns its canonical text.
pub fn parse_age_recipient(s: &str) -> Result<String> {
    s.trim()
        .parse::<age::x25519::Recipient>()
        .map(|r| r.to_string())
        .map_err(|_| bad_key(s, "an age X25519 recipient (age1...)"))
}

/// Checks an ssh-ed25519 public key line and returns it without its comment.
pub fn parse_ssh_recipient(s: &str) -> Result<String> {
    match s.trim().parse::<age::ssh::Recipient>() {
        Ok(r @ age::ssh::Recipient::SshEd25519(..)) => Ok(r.to_string()),
        _ => Err(bad_key(
            s,
            "an ssh-ed25519 public key (expected 'ssh-ed25519 AAAA... [comment]')",
        )),
    }
}

/// A short fingerprint of a set of public keys, to compare by voice or chat:
/// SHA-256(label ‖ len16 ‖ age ‖ len16 ‖ ed25519 ‖ len16 ‖ ssh), first 10 bytes, in hex groups
/// of four (docs/FORMAT.md "Fingerprints").
pub fn fingerprint(age: Option<&str>, signing: Option<&[u8; 32]>, ssh: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(LABEL_FINGERPRINT);
    for field in [
        age.map(str::as_bytes).unwrap_or_default(),
        signing.map(|k| &k[..]).unwrap_or_default(),
        ssh.map(str::as_bytes).unwrap_or_default(),
    ] {
        let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
        h.update(len.to_be_bytes());
        h.update(field);
    }
    let digest = h.finalize();
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_round_trip_and_fingerprint() {
        let id = generate(1).unwrap();
        let keys = Keys::of(&id).unwrap();
        let card = keys.card(Some("Alice  Example\n"));
        assert_eq!(card.name, "Alice Example");
        let line = card.to_line();
        assert!(line.starts_with("jeton-card-v1 age1"), "{line}");
        assert_eq!(Card::parse(&line).unwrap(), card);
        let fp = card.fingerprint();
        assert_eq!(fp.len(), 24, "{fp}");
        let other = Keys::of(&generate(1).unwrap()).unwrap().card(None);
        assert_ne!(other.fingerprint(), fp);
        assert!(Card::parse("jeton-card-v1 age1xyz AAAA").is_err());
        assert!(Card::parse("hello").is_err());
        assert!(!line.contains(id.age_secret.expose_secret()));
    }
}
