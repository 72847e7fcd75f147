//! The member list of a team: a grow-only set of changes, each signed by its author, from
//! which every member computes the same list.
//!
//! A change is valid when its author is an admin at the point where it applies, in the order
//! (Lamport counter, author key, author's sequence number). Removing a member records the
//! highest sequence number seen from them (the cutoff): anything they sign later is refused
//! wherever it sorts, so a removed admin cannot backdate a change. Keys for each epoch travel
//! inside `Rekey` changes, so only the members a change was encrypted to ever see them
//! (docs/FORMAT.md, "Team vaults").

use crate::secret::Key;
use crate::share::hex;
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Signature label of a member-list change (docs/FORMAT.md, "Team vaults").
pub const LABEL_TEAM_CHANGE: &[u8] = b"jeton/v1/team-change";

/// Largest change accepted (a member card and a name fit many times over).
const MAX_CHANGE_LEN: usize = 4096;

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

/// An epoch's vault key, as carried inside a `Rekey` change (wiped on drop, never printed).
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

impl EpochKey {
    /// The key, for opening the team vault.
    pub fn key(&self) -> Key {
        self.0.clone()
    }

    fn generate() -> Result<EpochKey> {
        Ok(EpochKey(Key::generate()?))
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
    /// A member is added, or their role changed.
    Add {
        /// Who.
        member: Card,
        /// Their role.
        role: Role,
    },
    /// A member is removed; their changes after `cutoff` (their sequence number) are refused.
    Remove {
        /// Their signing key.
        signing_key: [u8; 32],
        /// The highest sequence number of theirs the remover had seen.
        cutoff: u64,
    },
    /// A new key for everything written from now on.
    Rekey {
        /// The new epoch (higher than every one before).
        epoch: u64,
        /// Its key.
        key: EpochKey,
    },
}

/// A change with its author and place in the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The team (its vault id).
    pub team: [u8; 16],
    /// The author's signing key.
    pub author: [u8; 32],
    /// The author's own counter: 1, 2, 3...
    pub seq: u64,
    /// Lamport counter: higher than every change the author had seen.
    pub lamport: u64,
    /// What changes.
    pub change: Change,
}

/// A change as stored and published: its encoding and the author's signature over
/// [`LABEL_TEAM_CHANGE`] followed by it. Its Debug output shows neither (a `Rekey` holds a key).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// postcard encoding of an [`Op`].
    pub op: Vec<u8>,
    /// Ed25519 signature (64 bytes).
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signed({} bytes)", self.op.len())
    }
}

impl Signed {
    /// Signs `op` with `key` (which must be `op.author`).
    pub fn sign(op: &Op, key: &SigningKey) -> Result<Signed> {
        let bytes = postcard::to_stdvec(op)
            .map_err(|e| Error::Other(format!("cannot encode a team change: {e}")))?;
        let signature = key.sign(&message(&bytes)).to_bytes().to_vec();
        Ok(Signed {
            op: bytes,
            signature,
        })
    }

    /// The change, if its signature holds and it belongs to `team`.
    pub fn verify(&self, team: &[u8; 16]) -> Option<Op> {
        if self.op.len() > MAX_CHANGE_LEN {
            return None;
        }
        let op = match postcard::take_from_bytes::<Op>(&self.op) {
            Ok((op, [])) => op,
            _ => return None,
        };
        let sig = Signature::from_slice(&self.signature).ok()?;
        let key = VerifyingKey::from_bytes(&op.author).ok()?;
        key.verify_strict(&message(&self.op), &sig).ok()?;
        (&op.team == team).then_some(op)
    }
}

fn message(op: &[u8]) -> Vec<u8> {
    let mut m = LABEL_TEAM_CHANGE.to_vec();
    m.extend_from_slice(op);
    m
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
    /// Their changes after this sequence number are refused.
    pub cutoff: u64,
}

/// The member list computed from every change known.
#[derive(Clone, Debug)]
pub struct Team {
    /// The team id (its vault id).
    pub id: [u8; 16],
    /// The name given at creation.
    pub name: String,
    /// Current members, by signing key.
    pub members: BTreeMap<[u8; 32], Member>,
    /// Removed members, by signing key.
    pub removed: BTreeMap<[u8; 32], Removed>,
    /// Every epoch's key (the highest is current).
    pub keys: BTreeMap<u64, EpochKey>,
    /// Every change known with a valid signature, by (author, seq), applied or not.
    pub changes: BTreeMap<([u8; 32], u64), Signed>,
    /// Changes whose authors had no right to make them, one line each, naming the author.
    pub ignored: Vec<String>,
    lamport: u64,
}

impl Team {
    /// The list from every change known. Refuses (exit 6) a change whose signature fails, two
    /// different changes with one author and number, and a set with no valid creation.
    pub fn from_changes(id: [u8; 16], changes: impl IntoIterator<Item = Signed>) -> Result<Team> {
        let mut known: BTreeMap<([u8; 32], u64), (Signed, Op)> = BTreeMap::new();
        for s in changes {
            let op = s.verify(&id).ok_or_else(|| {
                Error::Integrity(
                    "the team's member list was tampered with (a change fails its signature)"
                        .into(),
                )
            })?;
            match known.get(&(op.author, op.seq)) {
                Some((prev, _)) if *prev != s => {
                    return Err(Error::Integrity(format!(
                        "the team's member list holds two different changes numbered {} by key {}: refused",
                        op.seq,
                        short(&op.author)
                    )));
                }
                Some(_) => {}
                None => {
                    known.insert((op.author, op.seq), (s, op));
                }
            }
        }
        let mut order: Vec<&Op> = known.values().map(|(_, op)| op).collect();
        order.sort_by_key(|op| (op.lamport, op.author, op.seq));
        // Cutoffs found by one pass apply to the next, until nothing moves.
        let mut cutoffs: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        let mut team = apply(id, &order, &cutoffs)?;
        for _ in 0..order.len() {
            let found: BTreeMap<[u8; 32], u64> =
                team.removed.iter().map(|(k, r)| (*k, r.cutoff)).collect();
            if found == cutoffs {
                break;
            }
            cutoffs = found;
            team = apply(id, &order, &cutoffs)?;
        }
        team.changes = known.into_iter().map(|(k, (s, _))| (k, s)).collect();
        Ok(team)
    }

    /// Makes a new team: its first change, signed by `admin`.
    pub fn create(name: &str, admin: Card, key: &SigningKey) -> Result<(Team, Signed)> {
        let id = crate::vault::random_id::<16>()?;
        let op = Op {
            team: id,
            author: key.verifying_key().to_bytes(),
            seq: 1,
            lamport: 1,
            change: Change::Create {
                name: name.to_owned(),
                admin,
                key: EpochKey::generate()?,
            },
        };
        let signed = Signed::sign(&op, key)?;
        Ok((Team::from_changes(id, [signed.clone()])?, signed))
    }

    /// Signs `change` as `key`'s next change and applies it. Refused unless `key` is an admin.
    pub fn change(&mut self, change: Change, key: &SigningKey) -> Result<Signed> {
        let author = key.verifying_key().to_bytes();
        if self.role_of(&author) != Some(Role::Admin) {
            return Err(Error::Usage(format!(
                "only an admin of team {} can change its members",
                self.name
            )));
        }
        let seq = (self.changes.keys())
            .filter(|(a, _)| *a == author)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0)
            + 1;
        let op = Op {
            team: self.id,
            author,
            seq,
            lamport: self.lamport + 1,
            change,
        };
        let signed = Signed::sign(&op, key)?;
        let mut all: Vec<Signed> = self.changes.values().cloned().collect();
        all.push(signed.clone());
        *self = Team::from_changes(self.id, all)?;
        Ok(signed)
    }

    /// Adds (or changes the role of) a member.
    pub fn add(&mut self, member: Card, role: Role, key: &SigningKey) -> Result<Signed> {
        self.change(Change::Add { member, role }, key)
    }

    /// Removes a member and starts a new epoch whose key they never see.
    pub fn remove(&mut self, signing_key: &[u8; 32], key: &SigningKey) -> Result<Vec<Signed>> {
        if !self.members.contains_key(signing_key) {
            return Err(Error::NotFound("no such member".into()));
        }
        let cutoff = (self.changes.keys())
            .filter(|(a, _)| a == signing_key)
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0);
        let removed = self.change(
            Change::Remove {
                signing_key: *signing_key,
                cutoff,
            },
            key,
        )?;
        let epoch = self.epoch() + 1;
        let rekey = self.change(
            Change::Rekey {
                epoch,
                key: EpochKey::generate()?,
            },
            key,
        )?;
        Ok(vec![removed, rekey])
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    /// The current epoch's key.
    pub fn current_key(&self) -> Result<Key> {
        self.keys
            .values()
            .next_back()
            .map(EpochKey::key)
            .ok_or_else(|| Error::Integrity("the team has no key".into()))
    }

    /// The role of the member with this signing key (`None`: not a member).
    pub fn role_of(&self, key: &[u8; 32]) -> Option<Role> {
        self.members.get(key).map(|m| m.role)
    }

    /// Who holds this key, for messages: a member's or removed member's name, else its start.
    pub fn who(&self, key: &[u8; 32]) -> String {
        (self.members.get(key).map(|m| &m.card))
            .or_else(|| self.removed.get(key).map(|r| &r.card))
            .map_or_else(
                || format!("key {} (not a member)", short(key)),
                |c| c.name.clone(),
            )
    }

    /// Every change known, in a stable order (what a device publishes).
    pub fn signed(&self) -> Vec<Signed> {
        self.changes.values().cloned().collect()
    }
}

/// The first 8 hex digits of a key.
pub fn short(key: &[u8]) -> String {
    hex(key).chars().take(8).collect()
}

fn apply(id: [u8; 16], order: &[&Op], cutoffs: &BTreeMap<[u8; 32], u64>) -> Result<Team> {
    let mut team = Team {
        id,
        name: String::new(),
        members: BTreeMap::new(),
        removed: BTreeMap::new(),
        keys: BTreeMap::new(),
        changes: BTreeMap::new(),
        ignored: Vec::new(),
        lamport: 0,
    };
    let mut created = false;
    // (author, why): named once the whole list is known.
    let mut ignored: Vec<([u8; 32], &str)> = Vec::new();
    for op in order {
        team.lamport = team.lamport.max(op.lamport);
        if let Change::Create { name, admin, key } = &op.change {
            if created || admin.signing_key != op.author || op.seq != 1 {
                ignored.push((op.author, "a second creation of the team"));
                continue;
            }
            created = true;
            team.name = name.clone();
            team.keys.insert(0, key.clone());
            team.members.insert(
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
        if !created || cut_off || team.role_of(&op.author) != Some(Role::Admin) {
            let why = if cut_off {
                "made after their removal"
            } else {
                "not an admin at that point"
            };
            ignored.push((op.author, why));
            continue;
        }
        match &op.change {
            Change::Create { .. } => {}
            Change::Add { member, role } => {
                team.removed.remove(&member.signing_key);
                team.members.insert(
                    member.signing_key,
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
                if let Some(m) = team.members.remove(signing_key) {
                    team.removed.insert(
                        *signing_key,
                        Removed {
                            card: m.card,
                            cutoff: *cutoff,
                        },
                    );
                }
            }
            Change::Rekey { epoch, key } => {
                if *epoch > team.epoch() {
                    team.keys.insert(*epoch, key.clone());
                }
            }
        }
    }
    if !created {
        return Err(Error::Integrity(
            "the team's member list has no valid creation".into(),
        ));
    }
    team.ignored = (ignored.iter())
        .map(|(a, why)| format!("a change to the member list by {} ({why})", team.who(a)))
        .collect();
    Ok(team)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str) -> (SigningKey, Card) {
        let key = SigningKey::from_bytes(&crate::vault::random_id::<32>().unwrap());
        let age = age::x25519::Identity::generate().to_public().to_string();
        let card = Card {
            name: name.into(),
            age_recipient: age,
            signing_key: key.verifying_key().to_bytes(),
        };
        (key, card)
    }

    #[test]
    fn an_admin_adds_and_removes_and_the_removed_never_get_the_new_key() {
        let (ak, ac) = person("ann");
        let (bk, bc) = person("bob");
        let (mut team, _) = Team::create("ops", ac, &ak).unwrap();
        team.add(bc.clone(), Role::Writer, &ak).unwrap();
        assert_eq!(team.role_of(&bc.signing_key), Some(Role::Writer));
        // A writer cannot change the list.
        assert!(team.add(bc.clone(), Role::Admin, &bk).is_err());
        let old = team.current_key().unwrap();
        team.remove(&bc.signing_key, &ak).unwrap();
        assert_eq!(team.role_of(&bc.signing_key), None);
        assert_eq!(team.epoch(), 1);
        assert_ne!(
            team.current_key().unwrap().expose_secret(),
            old.expose_secret()
        );
    }

    #[test]
    fn concurrent_additions_by_two_admins_both_survive_in_any_order() {
        let (ak, ac) = person("ann");
        let (ck, cc) = person("cid");
        let (_, x) = person("xia");
        let (_, y) = person("yan");
        let (mut team, _) = Team::create("ops", ac, &ak).unwrap();
        team.add(cc, Role::Admin, &ak).unwrap();
        let mut a = team.clone();
        let mut c = team.clone();
        let sa = a.add(x.clone(), Role::Reader, &ak).unwrap();
        let sc = c.add(y.clone(), Role::Writer, &ck).unwrap();
        let mut one = a.signed();
        one.push(sc);
        let mut two = c.signed();
        two.push(sa);
        two.reverse();
        let one = Team::from_changes(team.id, one).unwrap();
        let two = Team::from_changes(team.id, two).unwrap();
        for t in [&one, &two] {
            assert_eq!(t.role_of(&x.signing_key), Some(Role::Reader));
            assert_eq!(t.role_of(&y.signing_key), Some(Role::Writer));
        }
        assert_eq!(one.members, two.members);
    }

    #[test]
    fn a_removed_admin_cannot_come_back_by_replay_or_by_backdating() {
        let (ak, ac) = person("ann");
        let (bk, bc) = person("bob");
        let (_, ec) = person("eve");
        let (mut team, _) = Team::create("ops", ac, &ak).unwrap();
        team.add(bc.clone(), Role::Admin, &ak).unwrap();
        let before = team.signed();
        team.remove(&bc.signing_key, &ak).unwrap();
        // Replaying the list from before the removal changes nothing.
        let mut all = team.signed();
        all.extend(before);
        let t = Team::from_changes(team.id, all.clone()).unwrap();
        assert_eq!(t.role_of(&bc.signing_key), None);
        // A change signed by the removed admin with a low Lamport counter (sorting before
        // the removal) is refused by the cutoff.
        let op = Op {
            team: team.id,
            author: bc.signing_key,
            seq: 1,
            lamport: 2,
            change: Change::Add {
                member: ec.clone(),
                role: Role::Admin,
            },
        };
        all.push(Signed::sign(&op, &bk).unwrap());
        let t = Team::from_changes(team.id, all).unwrap();
        assert_eq!(t.role_of(&ec.signing_key), None);
        assert!(
            t.ignored.iter().any(|w| w.contains("bob")),
            "{:?}",
            t.ignored
        );
    }

    #[test]
    fn a_tampered_change_or_another_teams_change_is_refused() {
        let (ak, ac) = person("ann");
        let (_, bc) = person("bob");
        let (mut team, _) = Team::create("ops", ac.clone(), &ak).unwrap();
        team.add(bc, Role::Writer, &ak).unwrap();
        let mut all = team.signed();
        let last = all.len() - 1;
        let n = all[last].op.len();
        all[last].op[n - 1] ^= 1;
        let err = Team::from_changes(team.id, all).unwrap_err();
        assert_eq!(err.exit_code(), 6);
        let (other, _) = Team::create("dev", ac, &ak).unwrap();
        let err = Team::from_changes(team.id, other.signed()).unwrap_err();
        assert_eq!(err.exit_code(), 6);
        // No secret in Debug output.
        assert!(
            !format!("{:?}", team.keys).contains(&hex(team.current_key().unwrap().expose_secret()))
        );
    }

    #[test]
    fn an_outsiders_validly_signed_change_is_ignored_and_named() {
        let (ak, ac) = person("ann");
        let (ok, oc) = person("oscar");
        let (team, _) = Team::create("ops", ac, &ak).unwrap();
        let op = Op {
            team: team.id,
            author: oc.signing_key,
            seq: 1,
            lamport: 5,
            change: Change::Add {
                member: oc.clone(),
                role: Role::Admin,
            },
        };
        let mut all = team.signed();
        all.push(Signed::sign(&op, &ok).unwrap());
        let t = Team::from_changes(team.id, all).unwrap();
        assert_eq!(t.role_of(&oc.signing_key), None);
        assert_eq!(t.ignored.len(), 1);
        assert!(t.ignored[0].contains("not a member"), "{:?}", t.ignored);
    }
}
