//! How every member computes the same member list from the changes they know
//! (docs/FORMAT.md, "Computing the list").
//!
//! The changes form a graph: each names its parents. They are applied in one canonical
//! order (parents first, ties by id); a change applies only if its author is an admin both
//! in the list as it stands there and in the list its own ancestors make, so nobody acts
//! with a role they did not have when they signed. A removal (or an admin's demotion) that
//! applies voids every change of the member it strikes that it does not descend from and
//! that does not descend from it: what they signed concurrently, or withheld and released
//! later, does nothing. When two admins strike each other concurrently, the senior one's
//! change stands (the creator first, then by when each was made admin). Voids only grow, and
//! the order is computed again until they stop growing: at most once per change.
//!
//! Nothing here fails because of what a member wrote: a change that does not verify, belongs
//! to another team or waits for parents not received is left out, and named in
//! [`Team::evidence`].

use super::graph::{Graph, Node, Outcome, graph, settle};
use super::legacy;
use super::members::{
    Body, Card, Change, ChangeId, EpochKey, Flaw, KeyCache, MAX_MEMBERS, Member, Removed, Role,
    Signed, short,
};
use crate::secret::Key;
use crate::{Error, Result};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Something a member list held that was not taken: reported once per fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// What it is about (an author and a kind of fault), to remember that it was reported.
    pub fact: [u8; 16],
    /// One line naming the author (names come from members: escape them when printing).
    pub text: String,
}

/// The fact a report is about: SHA-256 of its parts, shortened.
pub fn fact(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// The changes a member knows.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The list's first change, once chosen (kept in the personal vault).
    pub root: Option<ChangeId>,
    /// Changes checked when they came in (kept in the personal vault).
    pub checked: Vec<Signed>,
    /// Changes read from the remote, checked here.
    pub received: Vec<Signed>,
    /// First-format changes ([`legacy`]).
    pub legacy: Vec<legacy::Signed>,
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
    /// When the current key stands for several concurrent ones: those keys (whoever lacks
    /// one of them cannot make it).
    pub key_parts: Vec<EpochKey>,
    /// The list's first change (`None`: a first-format list, not carried over yet).
    pub root: Option<ChangeId>,
    /// Other first changes that could have been chosen (for `join`).
    pub other_roots: Vec<ChangeId>,
    /// Faults seen, each naming its author.
    pub evidence: Vec<Evidence>,
    /// Changes kept and published: those applied and their ancestors.
    changes: BTreeMap<ChangeId, Signed>,
    /// First-format changes kept and published.
    legacy: BTreeMap<ChangeId, legacy::Signed>,
    /// The kept changes no kept change names: the parents of the next one.
    heads: Vec<ChangeId>,
}

impl Team {
    /// The list the known changes make. Fails only when no first change can be found (or the
    /// one kept is missing): what members wrote is left out and named, never a failure.
    pub fn compute(id: [u8; 16], known: Known) -> Result<Team> {
        let mut flaws: Vec<Flaw> = Vec::new();
        let mut nodes: Vec<Node> = Vec::new();
        let mut index: HashMap<ChangeId, usize> = HashMap::new();
        let checked = known.checked.into_iter().map(|s| (s, true));
        let received = known.received.into_iter().map(|s| (s, false));
        let mut keys = KeyCache::default();
        for (signed, trusted) in checked.chain(received) {
            let cid = signed.id();
            if index.contains_key(&cid) {
                continue;
            }
            let body = if trusted {
                signed.decode().and_then(|b| {
                    if b.team == id {
                        Ok(b)
                    } else {
                        Err(Flaw::OtherTeam(b.author))
                    }
                })
            } else {
                signed.verify_with(&id, &mut keys)
            };
            match body {
                Ok(body) => {
                    index.insert(cid, nodes.len());
                    nodes.push(Node {
                        id: cid,
                        body,
                        signed,
                    });
                }
                Err(f) => flaws.push(f),
            }
        }
        let legacy_known: BTreeMap<ChangeId, legacy::Signed> =
            known.legacy.into_iter().map(|s| (s.id(), s)).collect();

        // The first change: the one kept, else the valid one with the smallest id.
        let mut roots: Vec<(ChangeId, [u8; 32], Option<legacy::List>)> = Vec::new();
        let mut bad_roots: Vec<[u8; 32]> = Vec::new();
        let mut sorted: Vec<&Node> = nodes.iter().filter(|n| n.body.parents.is_empty()).collect();
        sorted.sort_by_key(|n| n.id);
        for n in sorted {
            match &n.body.change {
                Change::Create { admin, .. } if admin.signing_key == n.body.author => {
                    roots.push((n.id, n.body.author, None));
                }
                Change::Upgrade { legacy: ids } => {
                    match upgraded(&id, ids, n.body.author, &legacy_known) {
                        Some(list) => roots.push((n.id, n.body.author, Some(list))),
                        None => bad_roots.push(n.body.author),
                    }
                }
                _ => bad_roots.push(n.body.author),
            }
        }
        let chosen = match known.root {
            Some(pin) => roots.iter().position(|(r, ..)| *r == pin).ok_or_else(|| {
                Error::Integrity("the member list kept for this team lost its first change".into())
            })?,
            None if !roots.is_empty() => 0,
            None if !legacy_known.is_empty() => {
                return Team::from_legacy(id, legacy_known.into_values(), flaws);
            }
            None => {
                return Err(Error::Integrity(
                    "the team's member list has no valid creation".into(),
                ));
            }
        };
        let (root, _, base) = roots.remove(chosen);
        let other_roots: Vec<ChangeId> = roots.iter().map(|(r, ..)| *r).collect();
        bad_roots.extend(roots.iter().map(|(_, a, _)| *a));
        let start = index[&root];
        let graph = graph(nodes, index, start);
        let mut team = resolve(id, graph, base, flaws, bad_roots);
        team.root = Some(root);
        team.other_roots = other_roots;
        Ok(team)
    }

    /// A first-format list read as such (not carried over yet).
    fn from_legacy(
        id: [u8; 16],
        changes: impl IntoIterator<Item = legacy::Signed>,
        flaws: Vec<Flaw>,
    ) -> Result<Team> {
        let list = legacy::read(id, changes).ok_or_else(|| {
            Error::Integrity("the team's member list has no valid creation".into())
        })?;
        let mut team = Team {
            id,
            name: list.name,
            members: list.members,
            removed: list.removed,
            keys: list.keys,
            key_parts: Vec::new(),
            root: None,
            other_roots: Vec::new(),
            evidence: Vec::new(),
            changes: BTreeMap::new(),
            legacy: list.changes,
            heads: Vec::new(),
        };
        let mut evidence = Vec::new();
        for (author, why) in &list.ignored {
            evidence.push(team.said(
                author,
                b"legacy",
                &format!(
                    "changes to the member list by {} ({why}): ignored",
                    team.who(author)
                ),
            ));
        }
        let all: Vec<Flaw> = (flaws.into_iter())
            .chain(list.flaws.into_iter().map(|(_, f)| f))
            .collect();
        for f in all {
            evidence.push(team.flaw(f));
        }
        team.evidence = dedup(evidence);
        Ok(team)
    }

    fn said(&self, author: &[u8; 32], kind: &[u8], text: &str) -> Evidence {
        Evidence {
            fact: fact(&[b"change", &self.id, author, kind]),
            text: text.to_owned(),
        }
    }

    fn flaw(&self, f: Flaw) -> Evidence {
        match f {
            Flaw::Malformed(None) => Evidence {
                fact: fact(&[b"change", &self.id, b"malformed"]),
                text: "a change to the member list that does not decode: ignored".into(),
            },
            Flaw::Malformed(Some(a)) => self.said(
                &a,
                b"malformed",
                &format!(
                    "a malformed change to the member list by {}: ignored",
                    self.who(&a)
                ),
            ),
            Flaw::BadSignature(a) => {
                let admin = self.role_of(&a) == Some(Role::Admin);
                let text = if admin {
                    format!(
                        "a change to the member list by admin {} fails its signature: ignored; the list is read as far as it can be checked",
                        self.who(&a)
                    )
                } else {
                    format!(
                        "a change to the member list claimed by {} fails its signature: ignored",
                        self.who(&a)
                    )
                };
                self.said(&a, b"signature", &text)
            }
            Flaw::OtherTeam(a) => self.said(
                &a,
                b"other team",
                &format!(
                    "a change for another team by {} in this team's member list: ignored",
                    self.who(&a)
                ),
            ),
        }
    }

    /// Makes a new team: its first change, signed by `admin`.
    pub fn create(name: &str, admin: Card, key: &SigningKey) -> Result<(Team, Signed)> {
        let id = crate::random::random_id::<16>()?;
        let body = Body {
            team: id,
            author: key.verifying_key().to_bytes(),
            parents: Vec::new(),
            change: Change::Create {
                name: name.to_owned(),
                admin,
                key: EpochKey::generate()?,
            },
        };
        let signed = Signed::sign(&body, key)?;
        let known = Known {
            root: Some(signed.id()),
            checked: vec![signed.clone()],
            ..Known::default()
        };
        Ok((Team::compute(id, known)?, signed))
    }

    /// Carries a first-format list over: signs the upgrade that starts the list in this
    /// format, naming every first-format change kept. Refused unless `key` is an admin.
    pub fn upgrade(&mut self, key: &SigningKey) -> Result<Vec<Signed>> {
        self.check_admin(key)?;
        let upgrade = Signed::sign(
            &Body {
                team: self.id,
                author: key.verifying_key().to_bytes(),
                parents: Vec::new(),
                change: Change::Upgrade {
                    legacy: self.legacy.keys().copied().collect(),
                },
            },
            key,
        )?;
        self.apply_own(&upgrade, upgrade.id(), Vec::new())?;
        Ok(vec![upgrade])
    }

    fn check_admin(&self, key: &SigningKey) -> Result<()> {
        if self.role_of(&key.verifying_key().to_bytes()) != Some(Role::Admin) {
            return Err(Error::Usage(format!(
                "only an admin of team {} can change its members",
                crate::entry::printable(&self.name)
            )));
        }
        Ok(())
    }

    /// Computes the list again with `signed` (this member's own) added under `root`; refused,
    /// with nothing kept, when it does not apply.
    fn apply_own(&mut self, signed: &Signed, root: ChangeId, before: Vec<Signed>) -> Result<()> {
        let known = Known {
            root: Some(root),
            checked: (self.changes.values().cloned())
                .chain(before)
                .chain([signed.clone()])
                .collect(),
            received: Vec::new(),
            legacy: self.legacy.values().cloned().collect(),
        };
        let next = Team::compute(self.id, known)?;
        if !next.changes.contains_key(&signed.id()) {
            return Err(Error::Integrity(format!(
                "the change to team {} would not take effect under its member list; nothing was published",
                crate::entry::printable(&self.name)
            )));
        }
        *self = next;
        Ok(())
    }

    /// Signs `change` after every change known and applies it; returns what to publish (a
    /// first-format list is carried over first, by an upgrade signed before it). Refused
    /// unless `key` is an admin, and when the change does not apply (nothing is kept then).
    pub fn change(&mut self, change: Change, key: &SigningKey) -> Result<Vec<Signed>> {
        self.check_admin(key)?;
        let mut out = match self.root {
            Some(_) => Vec::new(),
            None => self.upgrade(key)?,
        };
        let Some(root) = self.root else {
            return Err(Error::Other(
                "internal error: no first change after an upgrade".into(),
            ));
        };
        let signed = Signed::sign(
            &Body {
                team: self.id,
                author: key.verifying_key().to_bytes(),
                parents: self.heads.clone(),
                change,
            },
            key,
        )?;
        self.apply_own(&signed, root, Vec::new())?;
        out.push(signed);
        Ok(out)
    }

    /// Adds (or changes the role of) a member.
    pub fn add(&mut self, member: Card, role: Role, key: &SigningKey) -> Result<Vec<Signed>> {
        let who = member.signing_key;
        if !self.members.contains_key(&who) && self.members.len() >= MAX_MEMBERS {
            return Err(Error::Usage(format!(
                "team {} has {MAX_MEMBERS} members, the most jeton allows (each is a recipient of the member list)",
                crate::entry::printable(&self.name)
            )));
        }
        // Demoting an admin starts a new epoch: anyone their concurrent changes let in (void
        // now) was given the keys of the moment.
        let demotes = self.role_of(&who) == Some(Role::Admin) && role != Role::Admin;
        let new = if demotes {
            Some(EpochKey::generate()?)
        } else {
            None
        };
        let out = self.change(
            Change::Add {
                member,
                role,
                key: new,
            },
            key,
        )?;
        if self.role_of(&who) != Some(role) {
            return Err(Error::Integrity(format!(
                "adding to team {} did not take effect; nothing was published",
                self.name
            )));
        }
        Ok(out)
    }

    /// Removes a member and starts a new epoch whose key they never see.
    pub fn remove(&mut self, signing_key: &[u8; 32], key: &SigningKey) -> Result<Vec<Signed>> {
        if !self.members.contains_key(signing_key) {
            return Err(Error::NotFound("no such member".into()));
        }
        let epoch = self.epoch();
        let new = EpochKey::generate()?;
        let out = self.change(
            Change::Remove {
                signing_key: *signing_key,
                key: new.clone(),
            },
            key,
        )?;
        let current = self.keys.values().next_back();
        if self.members.contains_key(signing_key) || self.epoch() <= epoch || current != Some(&new)
        {
            return Err(Error::Integrity(format!(
                "the removal from team {} did not take effect; nothing was published",
                self.name
            )));
        }
        Ok(out)
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

    /// Every change kept, in a stable order (what a device publishes and keeps).
    pub fn signed(&self) -> Vec<Signed> {
        self.changes.values().cloned().collect()
    }

    /// The first-format changes kept (all of them until the list is carried over, then those
    /// the upgrade names).
    pub fn legacy(&self) -> Vec<legacy::Signed> {
        self.legacy.values().cloned().collect()
    }

    /// The ids of the changes the next change names as parents.
    pub fn heads(&self) -> &[ChangeId] {
        &self.heads
    }
}

/// The first-format list an upgrade carries over, if every change it names is known and its
/// author is an admin there.
fn upgraded(
    id: &[u8; 16],
    ids: &[ChangeId],
    author: [u8; 32],
    known: &BTreeMap<ChangeId, legacy::Signed>,
) -> Option<legacy::List> {
    let listed: Vec<legacy::Signed> = ids
        .iter()
        .map(|i| known.get(i).cloned())
        .collect::<Option<_>>()?;
    let list = legacy::read(*id, listed)?;
    (list.members.get(&author).map(|m| m.role) == Some(Role::Admin)).then_some(list)
}

fn resolve(
    id: [u8; 16],
    g: Graph,
    base: Option<legacy::List>,
    flaws: Vec<Flaw>,
    bad_roots: Vec<[u8; 32]>,
) -> Team {
    let n = g.order.len();
    // What took part in any pass is kept, so that the kept changes alone give the same list.
    let (pass, used) = settle(&g, base.as_ref());

    // Keys: the root's (or the first format's), then one per applied removal; concurrent
    // removals leave a key that stands for all of theirs.
    let mut keys: BTreeMap<u64, EpochKey> = match &base {
        Some(b) => b.keys.clone(),
        None => match &g.body(0).change {
            Change::Create { key, .. } => BTreeMap::from([(0, key.clone())]),
            _ => BTreeMap::new(),
        },
    };
    let key_of = |p: usize| match &g.body(p).change {
        Change::Remove { key, .. } => Some(key),
        Change::Add { key, .. } => key.as_ref(),
        _ => None,
    };
    for &p in &pass.rekeys {
        let next = keys.keys().next_back().map_or(0, |e| e + 1);
        if let Some(k) = key_of(p) {
            keys.insert(next, k.clone());
        }
    }
    let mut key_parts = Vec::new();
    let mut frontier: Vec<usize> = (pass.rekeys.iter().copied())
        .filter(|&a| !pass.rekeys.iter().any(|&b| g.is_ancestor(a, b)))
        .collect();
    if !pass.rekeys.is_empty() && frontier.len() > 1 {
        frontier.sort_by_key(|&p| g.nodes[g.order[p]].id);
        key_parts = frontier
            .iter()
            .filter_map(|&p| key_of(p))
            .cloned()
            .collect();
        let merged = EpochKey::merged(&key_parts);
        let next = keys.keys().next_back().map_or(0, |e| e + 1);
        keys.insert(next, merged);
    }

    // Kept: what took part, and its ancestors.
    let mut keep = used;
    for p in (0..n).rev() {
        if keep[p] {
            for parent in &g.body(p).parents {
                keep[g.parent(parent)] = true;
            }
        }
    }
    let mut named = vec![false; n];
    for p in (0..n).filter(|&p| keep[p]) {
        for parent in &g.body(p).parents {
            named[g.parent(parent)] = true;
        }
    }
    let mut heads: Vec<ChangeId> = (0..n)
        .filter(|&p| keep[p] && !named[p])
        .map(|p| g.nodes[g.order[p]].id)
        .collect();
    heads.sort();

    let name = match (&base, &g.body(0).change) {
        (Some(b), _) => b.name.clone(),
        (None, Change::Create { name, .. }) => name.clone(),
        _ => String::new(),
    };
    let legacy = base.as_ref().map(|b| b.changes.clone()).unwrap_or_default();
    let mut team = Team {
        id,
        name,
        members: pass.members,
        removed: pass.removed,
        keys,
        key_parts,
        root: None,
        other_roots: Vec::new(),
        evidence: Vec::new(),
        changes: BTreeMap::new(),
        legacy,
        heads,
    };

    // What was left out, once per author and kind.
    let mut evidence = Vec::new();
    for f in flaws {
        evidence.push(team.flaw(f));
    }
    for a in bad_roots {
        evidence.push(team.said(
            &a,
            b"root",
            &format!(
                "another first change of the member list by {}: ignored",
                team.who(&a)
            ),
        ));
    }
    for p in 0..n {
        let author = g.body(p).author;
        let why: (&[u8], &str) = match pass.outcome[p] {
            Outcome::Applied | Outcome::NoEffect => continue,
            Outcome::NotAdmin => (b"not admin", "not an admin in the list they follow"),
            Outcome::Void => (
                b"void",
                "made concurrently with their removal or demotion, or withheld until after it",
            ),
            Outcome::Full => (
                b"full",
                "the team already has the most members jeton allows",
            ),
        };
        let text = format!(
            "changes to the member list by {} ({}): ignored",
            team.who(&author),
            why.1
        );
        evidence.push(team.said(&author, why.0, &text));
    }
    team.evidence = dedup(evidence);
    let Graph { nodes, pos, .. } = g;
    for (i, node) in nodes.into_iter().enumerate() {
        if pos[i] != usize::MAX && keep[pos[i]] {
            team.changes.insert(node.id, node.signed);
        }
    }
    team
}

fn dedup(evidence: Vec<Evidence>) -> Vec<Evidence> {
    let mut seen = BTreeSet::new();
    evidence
        .into_iter()
        .filter(|e| seen.insert(e.fact))
        .collect()
}
