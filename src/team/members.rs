//! The changes a team's member list is made of: each names the changes its author had seen
//! (its parents, by hash) and is signed by its author. Nobody can place a change before
//! something it names, so the order of changes comes from what each author had seen, not
//! from numbers anyone chooses. How the list follows from its changes is in [`super::resolve`]
//! (docs/FORMAT.md, "Member list").

use crate::secret::Key;
use crate::share::hex;
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Signature label of a member-list change (docs/FORMAT.md, "Member list").
pub const LABEL_TEAM_CHANGE: &[u8] = b"jeton/v2/team-change";
/// Label of a change's id: SHA-256 over it, the body and the signature.
pub const LABEL_CHANGE_ID: &[u8] = b"jeton/v2/team-change-id";
/// Label of the key that stands for several concurrent epoch keys.
pub const LABEL_MERGED_KEY: &[u8] = b"jeton/v2/team-merged-key";

/// Largest change body accepted, but an upgrade's (a member card and a name fit many times).
pub const MAX_BODY_LEN: usize = 4096;
/// Most changes a member list holds (more in one file: the file is not read).
pub const MAX_CHANGES: usize = 10_000;
/// Most parents one change names.
pub const MAX_PARENTS: usize = 256;
/// Most current members: each is one recipient of the member-list files, whose age header
/// jeton reads with the same bound as bundles' (`share::age_header`).
pub const MAX_MEMBERS: usize = crate::share::age_header::MAX_RECIPIENTS;
/// Longest member name.
pub const MAX_NAME_LEN: usize = 256;

/// A change's id: SHA-256 over [`LABEL_CHANGE_ID`], its body and its signature.
pub type ChangeId = [u8; 32];

/// What a member may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Reads the team's entries.
    Reader,
    /// Reads and writes them.
    Writer,
    /// Writes, and changes the member list.
    Admin,
}

impl Role {
    /// Lowercase name.
    pub fn label(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }
}

/// A member's public keys, as on their contact card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// The name the admin gave them.
    pub name: String,
    /// Their age X25519 recipient: team keys are encrypted to it.
    pub age_recipient: String,
    /// Their Ed25519 key: their changes and replicas are signed with it.
    pub signing_key: [u8; 32],
}

impl Card {
    /// True when the card can be used: a name, an age recipient that parses, an Ed25519 key.
    pub fn is_valid(&self) -> bool {
        self.is_valid_with(&mut KeyCache::default())
    }

    fn is_valid_with(&self, keys: &mut KeyCache) -> bool {
        !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LEN
            && self.age_recipient.parse::<age::x25519::Recipient>().is_ok()
            && keys.get(&self.signing_key).is_some()
    }
}

/// Ed25519 keys decoded once each: a list's changes name a few authors and cards again and
/// again, and decoding a key (a square root in the field) costs about a tenth of checking a
/// signature.
#[derive(Default)]
pub(super) struct KeyCache(HashMap<[u8; 32], Option<VerifyingKey>>);

impl KeyCache {
    fn get(&mut self, key: &[u8; 32]) -> Option<VerifyingKey> {
        *(self.0)
            .entry(*key)
            .or_insert_with(|| VerifyingKey::from_bytes(key).ok())
    }
}

/// An epoch's vault key, as carried inside a change (wiped on drop, never printed).
#[derive(Clone, Serialize, Deserialize)]
pub struct EpochKey(#[serde(with = "crate::secret::serde_key")] Key);

impl PartialEq for EpochKey {
    fn eq(&self, other: &EpochKey) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for EpochKey {}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochKey(..)")
    }
}

impl From<Key> for EpochKey {
    fn from(key: Key) -> EpochKey {
        EpochKey(key)
    }
}

impl EpochKey {
    /// The key, for opening the team vault.
    pub fn key(&self) -> Key {
        self.0.clone()
    }

    /// A new random key.
    pub fn generate() -> Result<EpochKey> {
        Ok(EpochKey(Key::generate()?))
    }

    /// The key that stands for several concurrent keys (sorted by the id of the change that
    /// made each): whoever lacks one of them cannot make it.
    pub fn merged<'a>(keys: impl IntoIterator<Item = &'a EpochKey>) -> EpochKey {
        let mut ikm = zeroize::Zeroizing::new(Vec::new());
        for k in keys {
            ikm.extend_from_slice(k.0.expose_secret());
        }
        let hk = hkdf::Hkdf::<Sha256>::new(Some(LABEL_MERGED_KEY), &ikm);
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        let _ = hk.expand(b"epoch key", &mut out[..]);
        EpochKey(Key::from_bytes(*out))
    }
}

/// One change to the member list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The team is made, with its author as the first admin and the first epoch's key.
    Create {
        /// The team's name.
        name: String,
        /// The creator (must be the author).
        admin: Card,
        /// The key of epoch 0.
        key: EpochKey,
    },
    /// A member is added, or their role changed; with a key, a new epoch starts (jeton gives
    /// one when it demotes an admin: whoever an admin's concurrent change let in was given
    /// the keys of the moment, and never sees this one).
    Add {
        /// Who.
        member: Card,
        /// Their role.
        role: Role,
        /// The new epoch's key, if any.
        key: Option<EpochKey>,
    },
    /// A member is removed, and a new epoch starts whose key they never see.
    Remove {
        /// Their signing key.
        signing_key: [u8; 32],
        /// The new epoch's key.
        key: EpochKey,
    },
    /// A member list of the first format ([`super::legacy`]) carried over: its state, as the
    /// listed changes make it, is where this list starts.
    Upgrade {
        /// The ids of the old changes ([`super::legacy::Signed::id`]), sorted.
        legacy: Vec<ChangeId>,
    },
}

/// What a change's author signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The team (its vault id).
    pub team: [u8; 16],
    /// The author's signing key.
    pub author: [u8; 32],
    /// The ids of the changes the author had seen that no other change they had seen names
    /// (their heads), sorted, each once; empty only for the list's first change.
    pub parents: Vec<ChangeId>,
    /// What changes.
    pub change: Change,
}

/// A change as stored and published: the postcard encoding of its [`Body`] and the
/// author's Ed25519 signature over [`LABEL_TEAM_CHANGE`] followed by it. Its Debug output
/// shows neither (a body may hold a key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// postcard encoding of a [`Body`].
    pub body: Vec<u8>,
    /// Ed25519 signature (64 bytes).
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signed({})", short(&self.id()))
    }
}

/// A member as the list says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Their keys and name.
    pub card: Card,
    /// Their role.
    pub role: Role,
    /// Who added them (signing key).
    pub added_by: [u8; 32],
}

/// A removed member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    /// Their keys and name.
    pub card: Card,
}

/// Why a change was not accepted; the author is the one the change claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// It does not decode, is too long, or breaks a rule of its own (parents out of order, an
    /// invalid card).
    Malformed(Option<[u8; 32]>),
    /// Its signature does not hold.
    BadSignature([u8; 32]),
    /// It belongs to another team.
    OtherTeam([u8; 32]),
}

impl Signed {
    /// Signs `body` with `key` (which must be `body.author`).
    pub fn sign(body: &Body, key: &SigningKey) -> Result<Signed> {
        let bytes = postcard::to_stdvec(body)
            .map_err(|e| Error::Other(format!("cannot encode a team change: {e}")))?;
        let signature = key.sign(&message(&bytes)).to_bytes().to_vec();
        Ok(Signed {
            body: bytes,
            signature,
        })
    }

    /// The change's id.
    pub fn id(&self) -> ChangeId {
        let mut h = Sha256::new();
        h.update(LABEL_CHANGE_ID);
        h.update(&self.body);
        h.update(&self.signature);
        h.finalize().into()
    }

    /// The body, if it decodes within bounds with its parents in order (nothing else checked:
    /// for changes kept in the personal vault, checked by [`Signed::verify`] when they came in).
    pub fn decode(&self) -> std::result::Result<Body, Flaw> {
        let limit = MAX_BODY_LEN + 32 * MAX_CHANGES;
        if self.body.len() > limit || self.signature.len() != 64 {
            return Err(Flaw::Malformed(None));
        }
        let body = match postcard::take_from_bytes::<Body>(&self.body) {
            Ok((b, [])) => b,
            _ => return Err(Flaw::Malformed(None)),
        };
        let bad = || Err(Flaw::Malformed(Some(body.author)));
        let upgrade = matches!(body.change, Change::Upgrade { .. });
        if (!upgrade && self.body.len() > MAX_BODY_LEN)
            || body.parents.len() > MAX_PARENTS
            || !body.parents.windows(2).all(|w| w[0] < w[1])
        {
            return bad();
        }
        let root = body.parents.is_empty();
        let fine = match &body.change {
            Change::Create { .. } | Change::Upgrade { .. } => root,
            Change::Add { .. } | Change::Remove { .. } => !root,
        };
        if !fine {
            return bad();
        }
        Ok(body)
    }

    /// The body, if the change is well formed, its signature holds and it belongs to `team`;
    /// its cards must be usable, names valid, an upgrade's ids sorted.
    pub fn verify(&self, team: &[u8; 16]) -> std::result::Result<Body, Flaw> {
        self.verify_with(team, &mut KeyCache::default())
    }

    /// [`Signed::verify`], decoding each key once across the calls that share `keys`.
    pub(super) fn verify_with(
        &self,
        team: &[u8; 16],
        keys: &mut KeyCache,
    ) -> std::result::Result<Body, Flaw> {
        let body = self.decode()?;
        let usable = match &body.change {
            Change::Create { name, admin, .. } => {
                super::validate_name(name).is_ok() && admin.is_valid_with(keys)
            }
            Change::Add { member, .. } => member.is_valid_with(keys),
            Change::Remove { .. } => true,
            Change::Upgrade { legacy } => {
                legacy.len() <= MAX_CHANGES && legacy.windows(2).all(|w| w[0] < w[1])
            }
        };
        if !usable {
            return Err(Flaw::Malformed(Some(body.author)));
        }
        // Alone and strict: a batch check can take a signature this refuses (test below).
        let holds = Signature::from_slice(&self.signature)
            .ok()
            .zip(keys.get(&body.author))
            .is_some_and(|(sig, key)| key.verify_strict(&message(&self.body), &sig).is_ok());
        if !holds {
            return Err(Flaw::BadSignature(body.author));
        }
        if &body.team != team {
            return Err(Flaw::OtherTeam(body.author));
        }
        Ok(body)
    }
}

fn message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(LABEL_TEAM_CHANGE.len() + body.len());
    m.extend_from_slice(LABEL_TEAM_CHANGE);
    m.extend_from_slice(body);
    m
}

/// The first 8 hex digits of a key or id.
pub fn short(key: &[u8]) -> String {
    hex(key).chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn card(k: &SigningKey, name: &str) -> Card {
        Card {
            name: name.into(),
            age_recipient: age::x25519::Identity::generate().to_public().to_string(),
            signing_key: k.verifying_key().to_bytes(),
        }
    }

    fn create(k: &SigningKey, team: [u8; 16]) -> Signed {
        let body = Body {
            team,
            author: k.verifying_key().to_bytes(),
            parents: vec![],
            change: Change::Create {
                name: "ops".into(),
                admin: card(k, "ann"),
                key: EpochKey::generate().unwrap(),
            },
        };
        Signed::sign(&body, k).unwrap()
    }

    #[test]
    fn a_change_verifies_only_unchanged_and_for_its_team() {
        let k = key(1);
        let s = create(&k, [7; 16]);
        let body = s.verify(&[7; 16]).unwrap();
        assert_eq!(body.author, k.verifying_key().to_bytes());
        let author = body.author;
        assert_eq!(s.verify(&[8; 16]), Err(Flaw::OtherTeam(author)));
        let mut bad = s.clone();
        bad.signature[3] ^= 1;
        assert_eq!(bad.verify(&[7; 16]), Err(Flaw::BadSignature(author)));
        assert_ne!(bad.id(), s.id(), "the id covers the signature");
        let mut cut = s.clone();
        cut.body.pop();
        assert!(matches!(cut.verify(&[7; 16]), Err(Flaw::Malformed(_))));
        // No key in Debug output.
        assert!(format!("{s:?}").starts_with("Signed("));
    }

    #[test]
    fn a_signature_that_holds_only_up_to_a_small_order_point_is_refused() {
        // R carries a point of order 2: the author's own key signs, and the equation holds
        // times the cofactor but not exactly. Ed25519 batch verification takes such a
        // signature about half the time (its weights decide), so members checking different
        // batches would keep different changes; each change is checked alone, strictly.
        use curve25519_dalek::traits::IsIdentity;
        use curve25519_dalek::{constants::EIGHT_TORSION, edwards::EdwardsPoint, scalar::Scalar};
        use sha2::Sha512;
        let k = key(3);
        let a = EdwardsPoint::mul_base(&k.to_scalar());
        let author = k.verifying_key().to_bytes();
        // Bodies differ (each change holds a new epoch key), and so would batch weights.
        for _ in 0..16 {
            let signed = create(&k, [7; 16]);
            let m = message(&signed.body);
            let nonce = Scalar::from_bytes_mod_order_wide(&Sha512::digest(&m).into());
            let r = EdwardsPoint::mul_base(&nonce) + EIGHT_TORSION[4];
            let h = Sha512::new()
                .chain_update(r.compress().as_bytes())
                .chain_update(author)
                .chain_update(&m)
                .finalize();
            let c = Scalar::from_bytes_mod_order_wide(&h.into());
            let s = nonce + c * k.to_scalar();
            let off = EdwardsPoint::mul_base(&s) - r - c * a;
            assert!(!off.is_identity() && off.mul_by_cofactor().is_identity());
            let odd = Signed {
                body: signed.body,
                signature: [r.compress().to_bytes(), s.to_bytes()].concat(),
            };
            assert_eq!(odd.verify(&[7; 16]), Err(Flaw::BadSignature(author)));
        }
    }

    #[test]
    fn parents_must_be_sorted_and_only_a_first_change_has_none() {
        let k = key(2);
        let sign = |parents: Vec<ChangeId>, change: Change| {
            let body = Body {
                team: [1; 16],
                author: k.verifying_key().to_bytes(),
                parents,
                change,
            };
            Signed::sign(&body, &k).unwrap().verify(&[1; 16])
        };
        let add = Change::Add {
            member: card(&k, "bob"),
            role: Role::Reader,
            key: None,
        };
        assert!(sign(vec![[1; 32], [2; 32]], add.clone()).is_ok());
        assert!(sign(vec![[2; 32], [1; 32]], add.clone()).is_err());
        assert!(sign(vec![[1; 32], [1; 32]], add.clone()).is_err());
        assert!(sign(vec![], add).is_err());
        let mut bad_card = card(&k, "eve");
        bad_card.age_recipient = "age1nope".into();
        let add = Change::Add {
            member: bad_card,
            role: Role::Reader,
            key: None,
        };
        assert!(sign(vec![[1; 32]], add).is_err());
    }

    #[test]
    fn a_merged_key_differs_from_each_of_its_parts_and_depends_on_their_order() {
        let (a, b) = (EpochKey::generate().unwrap(), EpochKey::generate().unwrap());
        let ab = EpochKey::merged([&a, &b]);
        assert_ne!(ab, a);
        assert_ne!(ab, b);
        assert_eq!(ab, EpochKey::merged([&a, &b]));
        assert_ne!(ab, EpochKey::merged([&b, &a]));
    }
}
