//! Sharing tokens with authorised people (SPEC §6).
//!
//! ```text
//! entries -> signed envelope (JSON body + Ed25519 signature) -> age file -> recipient
//! ```
//!
//! * [`identity`]: this vault's age and Ed25519 keys and its public contact card.
//! * [`contact`]: the authorised people, the only recipients and the only accepted signers.
//! * [`bundle`]: the bundle format and writing one (`share`).
//! * [`import`]: the checks that must all pass to read one: signature, known signer, this vault
//!   among the signed recipients, not expired, not seen before.
//!
//! Every operation is a [`SharingRequest`], run by [`execute`] like any other request.

pub mod age_header;
pub mod bundle;
pub mod contact;
pub mod identity;
pub mod import;

use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Prefix of the fingerprint hash input (docs/FORMAT.md "Fingerprints").
pub const LABEL_FINGERPRINT: &[u8] = b"jeton/v1/contact-fingerprint";
/// Prefix of the Ed25519 signature input of a bundle (docs/FORMAT.md "Signature").
pub const LABEL_BUNDLE_SIGNATURE: &[u8] = b"jeton/v1/bundle-signature";
/// Prefix of the hash that names an imported entry's id (docs/FORMAT.md "Importing").
pub const LABEL_IMPORTED_ENTRY_ID: &[u8] = b"jeton/v1/imported-entry-id";

/// One sharing operation.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SharingRequest {
    /// This vault's card (creating the identity if the vault has none).
    Identity,
    /// Add (or with `replace`, re-key) a contact.
    ContactAdd {
        /// Local name.
        name: String,
        /// Checked public keys.
        keys: contact::ContactKeys,
        /// Allow changing the keys of an existing contact.
        replace: bool,
    },
    /// All contacts.
    ContactList,
    /// Remove a contact.
    ContactRemove {
        /// Local name.
        name: String,
    },
    /// Write a bundle.
    Share(bundle::ShareRequest),
    /// Read a bundle.
    Import(import::ImportRequest),
}

impl SharingRequest {
    /// True when the request may change the vault.
    pub fn writes(&self) -> bool {
        !matches!(self, SharingRequest::ContactList)
    }
}

/// What a sharing request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SharingResponse {
    /// This vault's card.
    Card {
        /// The one-line card.
        card: String,
        /// Its fingerprint.
        fingerprint: String,
        /// True when the identity was created just now.
        created: bool,
    },
    /// A contact after `contact add`.
    ContactAdded {
        /// The contact.
        contact: contact::ContactView,
        /// True when existing keys were replaced.
        replaced: bool,
    },
    /// A contact after `contact rm`.
    ContactRemoved(contact::ContactView),
    /// All contacts.
    Contacts(Vec<contact::ContactView>),
    /// A bundle to write out.
    Bundle(bundle::BundleOut),
    /// What an import did (or would do).
    Imported(import::ImportReport),
}

/// Runs one sharing request.
pub fn execute(vault: &mut Vault, request: SharingRequest, now: Time) -> Result<SharingResponse> {
    match request {
        SharingRequest::Identity => {
            let created = identity::ensure(vault, now)?;
            let keys = identity::keys(vault)?;
            let card = keys.card(vault.payload.settings.owner.as_deref());
            Ok(SharingResponse::Card {
                card: card.to_line(),
                fingerprint: card.fingerprint(),
                created,
            })
        }
        SharingRequest::ContactAdd {
            name,
            keys,
            replace,
        } => {
            let (contact, replaced) = contact::add(vault, name, keys, replace, now)?;
            Ok(SharingResponse::ContactAdded { contact, replaced })
        }
        SharingRequest::ContactList => Ok(SharingResponse::Contacts(
            vault.payload.contacts.iter().map(contact::view).collect(),
        )),
        SharingRequest::ContactRemove { name } => {
            contact::remove(vault, &name, now).map(SharingResponse::ContactRemoved)
        }
        SharingRequest::Share(req) => bundle::share(vault, req, now).map(SharingResponse::Bundle),
        SharingRequest::Import(req) => {
            import::import(vault, req, now).map(SharingResponse::Imported)
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes lower-case hex of exactly `N` bytes.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn internal(what: &str) -> Error {
    Error::Other(format!("internal error: {what}"))
}
