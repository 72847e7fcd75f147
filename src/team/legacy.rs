//! Member lists of the first format (changes ordered by Lamport counters), read so that
//! teams made with it keep working until an admin carries them over with an
//! [`Change::Upgrade`](super::members::Change::Upgrade) (docs/FORMAT.md, "Member lists of the
//! first format"). Nothing signs a change of this format any more.
//!
//! The reading is the first format's, with one difference: nothing in it stops the list. A
//! change whose signature fails, one for another team, and both of two different changes with
//! one author and number are left out, and named.

use super::members::{Card, ChangeId, EpochKey, Flaw, Member, Removed, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Signature label of a change of the first format.
pub const LABEL_LEGACY_CHANGE: &[u8] = b"jeton/v1/team-change";
/// Label of a first-format change's id (named by an upgrade).
pub const LABEL_LEGACY_ID: &[u8] = b"jeton/v2/team-legacy-id";

/// Largest change accepted.
const MAX_CHANGE_LEN: usize = 4096;

/// One change of the first format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// The team is made.
    Create {
        /// The team's name.
        name: String,
        /// The creator (the author).
        admin: Card,
        /// The key of epoch 0.
        key: EpochKey,
    },
    /// A member is added, or their role changed.
    Add {
        /// Who.
        member: Card,
        /// Their role.
        role: Role,
    },
    /// A member is removed; their changes after `cutoff` are refused.
    Remove {
        /// Their signing key.
        signing_key: [u8; 32],
        /// The highest sequence number of theirs the remover had seen.
        cutoff: u64,
    },
    /// A new key.
    Rekey {
        /// The new epoch.
        epoch: u64,
        /// Its key.
        key: EpochKey,
    },
}

/// A first-format change with its author and place in the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The team.
    pub team: [u8; 16],
    /// The author's signing key.
    pub author: [u8; 32],
    /// The author's own counter.
    pub seq: u64,
    /// Lamport counter.
    pub lamport: u64,
    /// What changes.
    pub change: Change,
}

/// A first-format change as stored: postcard of an [`Op`] and the author's signature over
/// [`LABEL_LEGACY_CHANGE`] followed by it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// postcard encoding of an [`Op`].
    pub op: Vec<u8>,
    /// Ed25519 signature.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "legacy::Signed({} bytes)", self.op.len())
    }
}

impl Signed {
    /// Signs `op` (for tests and test vectors: jeton signs no first-format change).
    pub fn sign(op: &Op, key: &ed25519_dalek::SigningKey) -> crate::Result<Signed> {
        use ed25519_dalek::Signer as _;
        let bytes = postcard::to_stdvec(op)
            .map_err(|e| crate::Error::Other(format!("cannot encode a team change: {e}")))?;
        let signature = key.sign(&message(&bytes)).to_bytes().to_vec();
        Ok(Signed {
            op: bytes,
            signature,
        })
    }

    /// The id an upgrade names this change by.
    pub fn id(&self) -> ChangeId {
        let mut h = Sha256::new();
        h.update(LABEL_LEGACY_ID);
        h.update((self.op.len() as u64).to_le_bytes());
        h.update(&self.op);
        h.update(&self.signature);
        h.finalize().into()
    }

    /// The change, if its signature holds and it belongs to `team`.
    pub fn verify(&self, team: &[u8; 16]) -> Result<Op, Flaw> {
        if self.op.len() > MAX_CHANGE_LEN {
            return Err(Flaw::Malformed(None));
        }
        let op = match postcard::take_from_bytes::<Op>(&self.op) {
            Ok((op, [])) => op,
            _ => return Err(Flaw::Malformed(None)),
        };
        let holds = ed25519_dalek::Signature::from_slice(&self.signature)
            .ok()
            .zip(ed25519_dalek::VerifyingKey::from_bytes(&op.author).ok())
            .is_some_and(|(sig, key)| key.verify_strict(&message(&self.op), &sig).is_ok());
        if !holds {
            return Err(Flaw::BadSignature(op.author));
        }
        if &op.team != team {
            return Err(Flaw::OtherTeam(op.author));
        }
        Ok(op)
    }
}

fn message(op: &[u8]) -> Vec<u8> {
    let mut m = super::legacy::LABEL_LEGACY_CHANGE.to_vec();
    m.extend_from_slice(op);
    m
}

/// A first-format member list, as its changes make it.
#[derive(Clone, Debug)]
pub struct List {
    /// The team's name.
    pub name: String,
    /// Current members.
    pub members: BTreeMap<[u8; 32], Member>,
    /// Removed members.
    pub removed: BTreeMap<[u8; 32], Removed>,
    /// Every epoch's key.
    pub keys: BTreeMap<u64, EpochKey>,
    /// Admins in the order they were made admins (the creator first).
    pub seniority: Vec<[u8; 32]>,
    /// The changes read (without those left out), by id.
    pub changes: BTreeMap<ChangeId, Signed>,
    /// Changes left out or ignored: (author, why).
    pub ignored: Vec<([u8; 32], &'static str)>,
    /// Changes that do not decode, fail their signature or belong to another team.
    pub flaws: Vec<(ChangeId, Flaw)>,
}

/// The list these changes make (`None`: no valid creation among them).
pub fn read(id: [u8; 16], changes: impl IntoIterator<Item = Signed>) -> Option<List> {
    let mut flaws = Vec::new();
    let mut known: BTreeMap<([u8; 32], u64), (Signed, Op)> = BTreeMap::new();
    let mut twice: Vec<([u8; 32], u64)> = Vec::new();
    for s in changes {
        let op = match s.verify(&id) {
            Ok(op) => op,
            Err(f) => {
                flaws.push((s.id(), f));
                continue;
            }
        };
        match known.get(&(op.author, op.seq)) {
            Some((prev, _)) if *prev != s => twice.push((op.author, op.seq)),
            Some(_) => {}
            None => {
                known.insert((op.author, op.seq), (s, op));
            }
        }
    }
    let mut ignored: Vec<([u8; 32], &'static str)> = Vec::new();
    for k in twice {
        if known.remove(&k).is_some() {
            ignored.push((k.0, "two different changes with one number"));
        }
    }
    let mut order: Vec<&Op> = known.values().map(|(_, op)| op).collect();
    order.sort_by_key(|op| (op.lamport, op.author, op.seq));
    // Cutoffs found by one pass apply to the next, until nothing moves.
    let mut cutoffs: BTreeMap<[u8; 32], u64> = BTreeMap::new();
    let mut list = apply(&order, &cutoffs)?;
    for _ in 0..order.len() {
        if list.1 == cutoffs {
            break;
        }
        cutoffs = list.1.clone();
        list = apply(&order, &cutoffs)?;
    }
    let (mut list, _) = list;
    list.ignored.splice(0..0, ignored);
    list.flaws = flaws;
    list.changes = known.into_values().map(|(s, _)| (s.id(), s)).collect();
    Some(list)
}

type Cutoffs = BTreeMap<[u8; 32], u64>;

fn apply(order: &[&Op], cutoffs: &Cutoffs) -> Option<(List, Cutoffs)> {
    let mut list = List {
        name: String::new(),
        members: BTreeMap::new(),
        removed: BTreeMap::new(),
        keys: BTreeMap::new(),
        seniority: Vec::new(),
        changes: BTreeMap::new(),
        ignored: Vec::new(),
        flaws: Vec::new(),
    };
    let mut found = Cutoffs::new();
    let mut created = false;
    for op in order {
        if let Change::Create { name, admin, key } = &op.change {
            if created || admin.signing_key != op.author || op.seq != 1 {
                list.ignored
                    .push((op.author, "a second creation of the team"));
                continue;
            }
            created = true;
            list.name = name.clone();
            list.keys.insert(0, key.clone());
            list.seniority.push(op.author);
            list.members.insert(
                op.author,
                Member {
                    card: admin.clone(),
                    role: Role::Admin,
                    added_by: op.author,
                },
            );
            continue;
        }
        let cut_off = cutoffs.get(&op.author).is_some_and(|c| op.seq > *c);
        let admin = list.members.get(&op.author).map(|m| m.role) == Some(Role::Admin);
        if !created || cut_off || !admin {
            let why = if cut_off {
                "made after their removal"
            } else {
                "not an admin at that point"
            };
            list.ignored.push((op.author, why));
            continue;
        }
        match &op.change {
            Change::Create { .. } => {}
            Change::Add { member, role } => {
                list.removed.remove(&member.signing_key);
                found.remove(&member.signing_key);
                let key = member.signing_key;
                if *role == Role::Admin && !list.seniority.contains(&key) {
                    list.seniority.push(key);
                }
                list.members.insert(
                    key,
                    Member {
                        card: member.clone(),
                        role: *role,
                        added_by: op.author,
                    },
                );
            }
            Change::Remove {
                signing_key,
                cutoff,
            } => {
                if let Some(m) = list.members.remove(signing_key) {
                    found.insert(*signing_key, *cutoff);
                    list.removed.insert(*signing_key, Removed { card: m.card });
                }
            }
            Change::Rekey { epoch, key } => {
                let current = list.keys.keys().next_back().copied().unwrap_or(0);
                if *epoch > current {
                    list.keys.insert(*epoch, key.clone());
                }
            }
        }
    }
    created.then_some((list, found))
}
