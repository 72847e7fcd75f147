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

use super::legacy;
use super::members::{
    Body, Card, Change, ChangeId, EpochKey, Flaw, MAX_MEMBERS, Member, Removed, Role, Signed, short,
};
use crate::secret::Key;
use crate::{Error, Result};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

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

struct Node {
    id: ChangeId,
    body: Body,
    signed: Signed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Applied,
    Void,
    NotAdmin,
    NoEffect,
    Full,
}

/// A removal or demotion of an admin that applied: (position, target, author, the author's
/// and the target's seniority just before).
struct Strike {
    pos: usize,
    target: [u8; 32],
    author: [u8; 32],
    author_rank: u64,
    target_rank: u64,
}

/// The state one pass over the canonical order builds.
struct Pass {
    members: BTreeMap<[u8; 32], Member>,
    removed: BTreeMap<[u8; 32], Removed>,
    rank: BTreeMap<[u8; 32], u64>,
    next_rank: u64,
    /// Per member, the positions of applied changes of their role: (position, admin after).
    roles: HashMap<[u8; 32], Vec<(usize, bool)>>,
    outcome: Vec<Outcome>,
    strikes: Vec<Strike>,
    /// Applied removals (positions), each with its key.
    rekeys: Vec<usize>,
}

/// The graph of the changes reachable from the root: canonical order and ancestry.
struct Graph {
    nodes: Vec<Node>,
    /// Change id -> node.
    index: HashMap<ChangeId, usize>,
    /// Positions in the canonical order -> node.
    order: Vec<usize>,
    /// Node -> position (usize::MAX: not reachable).
    pos: Vec<usize>,
    words: usize,
    /// Ancestor bit sets, by position.
    anc: Vec<u64>,
    by_author: HashMap<[u8; 32], Vec<usize>>,
}

impl Graph {
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        self.anc[b * self.words + a / 64] & (1 << (a % 64)) != 0
    }

    fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.is_ancestor(a, b) && !self.is_ancestor(b, a)
    }

    fn body(&self, p: usize) -> &Body {
        &self.nodes[self.order[p]].body
    }

    /// The position of a reachable change's parent (reachable too).
    fn parent(&self, id: &ChangeId) -> usize {
        self.pos[self.index[id]]
    }
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
                signed.verify(&id)
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
        let id = crate::vault::random_id::<16>()?;
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

fn graph(nodes: Vec<Node>, index: HashMap<ChangeId, usize>, root: usize) -> Graph {
    let n = nodes.len();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    let mut absent: Vec<bool> = vec![false; n];
    for (i, node) in nodes.iter().enumerate() {
        for p in &node.body.parents {
            match index.get(p) {
                Some(&j) => {
                    children[j].push(i);
                    waiting[i] += 1;
                }
                None => absent[i] = true,
            }
        }
    }
    // Kahn's algorithm from the root, the smallest id first among the changes ready.
    let mut ready = BinaryHeap::new();
    ready.push(Reverse((nodes[root].id, root)));
    let mut order = Vec::with_capacity(n);
    let mut pos = vec![usize::MAX; n];
    while let Some(Reverse((_, i))) = ready.pop() {
        pos[i] = order.len();
        order.push(i);
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 && !absent[c] {
                ready.push(Reverse((nodes[c].id, c)));
            }
        }
    }
    let words = order.len().div_ceil(64).max(1);
    let mut anc = vec![0u64; order.len() * words];
    let mut by_author: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    for (k, &i) in order.iter().enumerate() {
        by_author.entry(nodes[i].body.author).or_default().push(k);
        for p in &nodes[i].body.parents {
            let pk = pos[index[p]];
            let (lo, hi) = anc.split_at_mut(k * words);
            let own = &mut hi[..words];
            for (w, a) in own.iter_mut().zip(&lo[pk * words..pk * words + words]) {
                *w |= a;
            }
            own[pk / 64] |= 1 << (pk % 64);
        }
    }
    Graph {
        nodes,
        index,
        order,
        pos,
        words,
        anc,
        by_author,
    }
}

fn resolve(
    id: [u8; 16],
    g: Graph,
    base: Option<legacy::List>,
    flaws: Vec<Flaw>,
    bad_roots: Vec<[u8; 32]>,
) -> Team {
    let n = g.order.len();
    let mut void = vec![false; n];
    // What took part in any pass (applied, or struck back): kept, so that the kept changes
    // alone give the same list.
    let mut used = vec![false; n];
    let mut pass = run(&g, base.as_ref(), &void);
    // Each round either voids one more change or stops: at most n + 1 passes.
    for _ in 0..=n {
        let before = void.iter().filter(|v| **v).count();
        for (u, o) in used.iter_mut().zip(&pass.outcome) {
            *u |= *o == Outcome::Applied;
        }
        strike(&g, &pass, &mut void, &mut used);
        if void.iter().filter(|v| **v).count() == before {
            break;
        }
        pass = run(&g, base.as_ref(), &void);
    }

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

/// Whether `author` is an admin in the list the ancestors of the change at `p` make, as this
/// pass applied them.
fn admin_before(g: &Graph, pass: &Pass, author: &[u8; 32], p: usize) -> bool {
    pass.roles
        .get(author)
        .and_then(|events| events.iter().rev().find(|(q, _)| g.is_ancestor(*q, p)))
        .is_some_and(|(_, admin)| *admin)
}

/// One pass over the canonical order with the changes in `void` left out.
fn run(g: &Graph, base: Option<&legacy::List>, void: &[bool]) -> Pass {
    let n = g.order.len();
    let mut pass = Pass {
        members: BTreeMap::new(),
        removed: BTreeMap::new(),
        rank: BTreeMap::new(),
        next_rank: 0,
        roles: HashMap::new(),
        outcome: vec![Outcome::NotAdmin; n],
        strikes: Vec::new(),
        rekeys: Vec::new(),
    };
    let root = g.body(0);
    match (base, &root.change) {
        (Some(b), _) => {
            pass.members = b.members.clone();
            pass.removed = b.removed.clone();
            for a in &b.seniority {
                if pass.members.get(a).is_some_and(|m| m.role == Role::Admin) {
                    pass.rank.insert(*a, pass.next_rank);
                    pass.next_rank += 1;
                }
            }
            for (k, m) in &pass.members {
                pass.roles.insert(*k, vec![(0, m.role == Role::Admin)]);
            }
        }
        (None, Change::Create { admin, .. }) => {
            pass.members.insert(
                root.author,
                Member {
                    card: admin.clone(),
                    role: Role::Admin,
                    added_by: root.author,
                },
            );
            pass.rank.insert(root.author, 0);
            pass.next_rank = 1;
            pass.roles.insert(root.author, vec![(0, true)]);
        }
        _ => {}
    }
    pass.outcome[0] = Outcome::Applied;
    for p in 1..n {
        if void[p] {
            pass.outcome[p] = Outcome::Void;
            continue;
        }
        let body = g.body(p);
        let a = body.author;
        let running = pass.members.get(&a).is_some_and(|m| m.role == Role::Admin);
        if !running || !admin_before(g, &pass, &a, p) {
            continue;
        }
        pass.outcome[p] = apply(&mut pass, p, body);
    }
    pass
}

fn apply(pass: &mut Pass, p: usize, body: &Body) -> Outcome {
    let author = body.author;
    let author_rank = pass.rank.get(&author).copied().unwrap_or(u64::MAX);
    match &body.change {
        Change::Add {
            member,
            role,
            key: epoch_key,
        } => {
            let key = member.signing_key;
            let before = pass.members.get(&key).map(|m| m.role);
            if before.is_none() && pass.members.len() >= MAX_MEMBERS {
                return Outcome::Full;
            }
            if before == Some(Role::Admin) && *role != Role::Admin {
                pass.strikes.push(Strike {
                    pos: p,
                    target: key,
                    author,
                    author_rank,
                    target_rank: pass.rank.get(&key).copied().unwrap_or(u64::MAX),
                });
                pass.rank.remove(&key);
            }
            if *role == Role::Admin && before != Some(Role::Admin) {
                pass.rank.insert(key, pass.next_rank);
                pass.next_rank += 1;
            }
            pass.removed.remove(&key);
            pass.members.insert(
                key,
                Member {
                    card: member.clone(),
                    role: *role,
                    added_by: author,
                },
            );
            (pass.roles.entry(key).or_default()).push((p, *role == Role::Admin));
            if epoch_key.is_some() {
                pass.rekeys.push(p);
            }
            Outcome::Applied
        }
        Change::Remove { signing_key, .. } => {
            let Some(m) = pass.members.remove(signing_key) else {
                return Outcome::NoEffect;
            };
            if m.role == Role::Admin {
                pass.strikes.push(Strike {
                    pos: p,
                    target: *signing_key,
                    author,
                    author_rank,
                    target_rank: pass.rank.get(signing_key).copied().unwrap_or(u64::MAX),
                });
                pass.rank.remove(signing_key);
            }
            pass.removed.insert(*signing_key, Removed { card: m.card });
            (pass.roles.entry(*signing_key).or_default()).push((p, false));
            pass.rekeys.push(p);
            Outcome::Applied
        }
        Change::Create { .. } | Change::Upgrade { .. } => Outcome::NoEffect,
    }
}

/// Whether the change at `p` removes or demotes `target`.
fn strikes_at(body: &Body, target: &[u8; 32]) -> bool {
    match &body.change {
        Change::Remove { signing_key, .. } => signing_key == target,
        Change::Add { member, role, .. } => member.signing_key == *target && *role != Role::Admin,
        _ => false,
    }
}

/// Adds to `void` what the strikes of `pass` void. A strike loses (is void itself) when its
/// target, senior to its author, struck the author back concurrently with a change that
/// their own ancestors allowed; otherwise it voids every change of its target concurrent
/// with it.
fn strike(g: &Graph, pass: &Pass, void: &mut [bool], used: &mut [bool]) {
    let none = Vec::new();
    let mut standing = Vec::new();
    for s in &pass.strikes {
        let theirs = g.by_author.get(&s.target).unwrap_or(&none);
        let back = (s.target_rank < s.author_rank)
            .then(|| {
                theirs.iter().copied().find(|&q| {
                    !void[q]
                        && g.concurrent(q, s.pos)
                        && strikes_at(g.body(q), &s.author)
                        && admin_before(g, pass, &s.target, q)
                })
            })
            .flatten();
        if let Some(q) = back {
            used[q] = true;
            void[s.pos] = true;
        } else {
            standing.push(s);
        }
    }
    for s in standing {
        for &q in g.by_author.get(&s.target).unwrap_or(&none) {
            if g.concurrent(q, s.pos) {
                void[q] = true;
            }
        }
    }
}
