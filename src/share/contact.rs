//! Contacts: the authorised people (SPEC §6). `share` encrypts only to them, and `import`
//! accepts only bundles they signed. A contact made from a card can do both; one made from a
//! bare age recipient or ssh-ed25519 key can only receive.

use super::identity::{self, Card};
use crate::time::Time;
use crate::vault::{Contact, Vault};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Longest contact name.
pub const MAX_CONTACT_NAME: usize = 64;

/// The public keys a contact is added with, already checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactKeys {
    /// A jeton card: age recipient and Ed25519 signing key.
    Card {
        /// age X25519 recipient.
        age_recipient: String,
        /// Ed25519 public key.
        signing_key: [u8; 32],
    },
    /// Someone with the age tool only.
    Age(String),
    /// Someone with an ssh-ed25519 key only.
    Ssh(String),
}

impl ContactKeys {
    /// From a card line.
    pub fn from_card(line: &str) -> Result<ContactKeys> {
        let c = Card::parse(line)?;
        Ok(ContactKeys::Card {
            age_recipient: c.age_recipient,
            signing_key: c.signing_key,
        })
    }
    /// From an `age1...` recipient.
    pub fn from_age(s: &str) -> Result<ContactKeys> {
        identity::parse_age_recipient(s).map(ContactKeys::Age)
    }
    /// From an `ssh-ed25519 ...` line.
    pub fn from_ssh(s: &str) -> Result<ContactKeys> {
        identity::parse_ssh_recipient(s).map(ContactKeys::Ssh)
    }

    fn into_contact(self, name: String, now: Time) -> Contact {
        let (age, ssh, signing) = match self {
            ContactKeys::Card {
                age_recipient,
                signing_key,
            } => (Some(age_recipient), None, Some(signing_key)),
            ContactKeys::Age(a) => (Some(a), None, None),
            ContactKeys::Ssh(s) => (None, Some(s), None),
        };
        Contact {
            name,
            age_recipient: age,
            ssh_recipient: ssh,
            signing_key: signing,
            added_at: now,
        }
    }
}

/// What `contact list` and `contact add` show about a contact. No secrets exist here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    /// Local name.
    pub name: String,
    /// `card`, `age` or `ssh`.
    pub kind: String,
    /// age recipient, if any.
    pub age_recipient: Option<String>,
    /// ssh-ed25519 key, if any.
    pub ssh_recipient: Option<String>,
    /// Ed25519 public key (base64), if any.
    pub signing_key: Option<String>,
    /// Short fingerprint to compare out of band.
    pub fingerprint: String,
    /// When added or last changed.
    pub added_at: Time,
}

/// The fingerprint of a stored contact (equal to the card's for card contacts).
pub fn fingerprint(c: &Contact) -> String {
    identity::fingerprint(
        c.age_recipient.as_deref(),
        c.signing_key.as_ref(),
        c.ssh_recipient.as_deref(),
    )
}

/// The view of a stored contact.
pub fn view(c: &Contact) -> ContactView {
    let kind = if c.signing_key.is_some() {
        "card"
    } else if c.age_recipient.is_some() {
        "age"
    } else {
        "ssh"
    };
    ContactView {
        name: c.name.clone(),
        kind: kind.into(),
        age_recipient: c.age_recipient.clone(),
        ssh_recipient: c.ssh_recipient.clone(),
        signing_key: c.signing_key.as_ref().map(|k| identity::b64(k)),
        fingerprint: fingerprint(c),
        added_at: c.added_at,
    }
}

/// A key given where a contact name belongs is not echoed (it may be a secret key).
fn not_a_key(name: &str) -> Result<()> {
    match identity::secret_key_hint(name) {
        Some(hint) => Err(Error::Usage(format!("not a contact name: {hint}"))),
        None => Ok(()),
    }
}

/// Checks a contact name: 1..64 of `A-Z a-z 0-9 . _ @ -`.
pub fn validate_name(name: &str) -> Result<()> {
    not_a_key(name)?;
    let ok = !name.is_empty()
        && name.len() <= MAX_CONTACT_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid contact name '{}': use 1 to {MAX_CONTACT_NAME} of A-Z a-z 0-9 . _ @ -",
            crate::entry::printable(name)
        )))
    }
}

/// The contact called `name` (exit 4 when unknown).
pub fn find<'a>(vault: &'a Vault, name: &str) -> Result<&'a Contact> {
    not_a_key(name)?;
    vault
        .payload
        .contacts
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "'{}' is not one of your contacts (see `jeton contact list`; add them with `jeton contact add`)",
                crate::entry::printable(name)
            ))
        })
}

/// `contact add`. Changing an existing contact's keys needs `replace`; a signing key already
/// known under another name is refused, so a signer always maps to one contact.
pub fn add(
    vault: &mut Vault,
    name: String,
    keys: ContactKeys,
    replace: bool,
    now: Time,
) -> Result<(ContactView, bool)> {
    validate_name(&name)?;
    let new = keys.into_contact(name.clone(), now);
    if let Some(sk) = new.signing_key
        && let Some(other) = vault
            .payload
            .contacts
            .iter()
            .find(|c| c.name != name && c.signing_key == Some(sk))
    {
        return Err(Error::Exists(format!(
            "this card's signing key already belongs to contact '{}'",
            other.name
        )));
    }
    let existing = vault.payload.contacts.iter().position(|c| c.name == name);
    let replaced = match existing {
        Some(i) => {
            let old = &vault.payload.contacts[i];
            let same = old.age_recipient == new.age_recipient
                && old.ssh_recipient == new.ssh_recipient
                && old.signing_key == new.signing_key;
            if same {
                return Ok((view(old), false));
            }
            if !replace {
                return Err(Error::Exists(format!(
                    "contact '{name}' already exists with other keys (fingerprint {}); \
                     check the new fingerprint with them, then rerun with --replace",
                    fingerprint(old)
                )));
            }
            vault.payload.contacts[i] = new.clone();
            true
        }
        None => {
            vault.payload.contacts.push(new.clone());
            false
        }
    };
    let v = view(&new);
    let what = if replaced { "keys replaced" } else { "added" };
    vault.audit(
        now,
        "contact",
        Some(&name),
        format!("contact {what} ({}, fingerprint {})", v.kind, v.fingerprint),
    );
    Ok((v, replaced))
}

/// `contact rm`.
pub fn remove(vault: &mut Vault, name: &str, now: Time) -> Result<ContactView> {
    let c = find(vault, name)?.clone();
    vault.payload.contacts.retain(|x| x.name != name);
    vault.audit(now, "contact", Some(name), "contact removed");
    Ok(view(&c))
}
