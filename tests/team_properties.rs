//! Random membership histories with a hostile member, checked like a database: honest admins
//! add, remove and re-role members on their own view; members pass their member lists to whom
//! their view addresses them, in random orders; one member (any role, at any time) signs what
//! a modified client would: changes after stale or chosen parents, withheld and released
//! later, pairs with the same parents, bad signatures, other teams' ids, second creations.
//!
//! Checked: every honest member computes the same list, epoch and key from the same set of
//! changes, whatever its order; a member the final list does not hold cannot make the final
//! key from every key honest members ever sent it; a hostile member never made admin changes nothing;
//! no computation and no honest change fails. `JETON_TEAM_CASES` (default 256) sets the number
//! of cases, `JETON_TEAM_SEED` the first seed; a failure prints the seed that replays it.

use ed25519_dalek::SigningKey;
use jeton::team::members::{Body, Card, Change, ChangeId, EpochKey, Role, Signed};
use jeton::team::{Known, Team};
use std::collections::BTreeSet;

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// A random role.
fn role(rng: &mut Rng) -> Role {
    [Role::Reader, Role::Writer, Role::Admin][rng.below(3)]
}

struct Actor {
    signing: SigningKey,
    card: Card,
    /// The list as this actor computes it (honest actors), once they were sent one.
    view: Option<Team>,
}

impl Actor {
    fn key(&self) -> [u8; 32] {
        self.card.signing_key
    }
}

const HOSTILE: usize = 4;
const NAMES: [&str; 5] = ["ann", "bob", "cid", "dan", "eve"];

struct World {
    rng: Rng,
    actors: Vec<Actor>,
    id: [u8; 16],
    root: ChangeId,
    /// Every change the hostile member has (sent to it, or its own), and its own.
    seen_by_hostile: Vec<Signed>,
    made_by_hostile: Vec<Signed>,
    /// Every key honest members sent the hostile member (those it made are its own doing: a
    /// removal of itself, as an admin).
    hostile_keys: BTreeSet<[u8; 32]>,
    hostile_was_admin: bool,
}

fn actor(seed: u64, i: usize) -> Actor {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8] = i as u8;
    let signing = SigningKey::from_bytes(&bytes);
    // Nothing is encrypted here: any valid recipient does.
    let age = "age1lxuj9euhtemxyag5u58gyw64dcgt082rh6k9vfqd53dxdeqxu9rsxhwv4q".to_owned();
    Actor {
        card: Card {
            name: NAMES[i].into(),
            age_recipient: age,
            signing_key: signing.verifying_key().to_bytes(),
        },
        signing,
        view: None,
    }
}

impl World {
    fn new(seed: u64) -> World {
        let actors: Vec<Actor> = (0..NAMES.len()).map(|i| actor(seed, i)).collect();
        let mut rng = Rng(seed);
        let id: [u8; 16] = rng.next().to_le_bytes().repeat(2).try_into().unwrap();
        let body = Body {
            team: id,
            author: actors[0].key(),
            parents: Vec::new(),
            change: Change::Create {
                name: "ops".into(),
                admin: actors[0].card.clone(),
                key: key(&mut rng),
            },
        };
        let first = Signed::sign(&body, &actors[0].signing).unwrap();
        let known = Known {
            root: Some(first.id()),
            checked: vec![first.clone()],
            ..Known::default()
        };
        let team = Team::compute(id, known).expect("create");
        let mut w = World {
            rng,
            id: team.id,
            root: first.id(),
            actors,
            seen_by_hostile: Vec::new(),
            made_by_hostile: Vec::new(),
            hostile_keys: BTreeSet::new(),
            hostile_was_admin: false,
        };
        w.actors[0].view = Some(team);
        w
    }

    /// What honest actor `i` computes from what it keeps and `received`.
    fn compute(&self, i: usize, received: Vec<Signed>) -> Team {
        let kept = self.actors[i]
            .view
            .as_ref()
            .map(Team::signed)
            .unwrap_or_default();
        let known = Known {
            root: Some(self.root),
            checked: kept,
            received,
            legacy: Vec::new(),
        };
        Team::compute(self.id, known).expect("an honest member's computation never fails")
    }

    fn receive(&mut self, to: usize, mut changes: Vec<Signed>) {
        if to == HOSTILE {
            self.seen_by_hostile.extend(changes);
            return;
        }
        self.rng.shuffle(&mut changes);
        let t = self.compute(to, changes);
        if t.role_of(&self.actors[HOSTILE].key()) == Some(Role::Admin) {
            self.hostile_was_admin = true;
        }
        self.actors[to].view = Some(t);
    }

    /// Honest `from` sends its member-list file to `to`, if its view addresses `to`.
    fn send(&mut self, from: usize, to: usize) {
        let Some(view) = &self.actors[from].view else {
            return;
        };
        if !view.members.contains_key(&self.actors[to].key()) {
            return;
        }
        if to == HOSTILE {
            for k in view.keys.values() {
                self.hostile_keys.insert(*k.key().expose_secret());
            }
        }
        let changes = view.signed();
        self.receive(to, changes);
    }

    /// An honest admin changes the list on its own view; the change must apply.
    fn admin_acts(&mut self, i: usize) {
        let me = self.actors[i].key();
        let target = self.rng.below(NAMES.len());
        let key = self.actors[target].key();
        let Some(view) = self.actors[i].view.as_ref() else {
            return;
        };
        if view.role_of(&me) != Some(Role::Admin) || target == i {
            return;
        }
        let remove = view.members.contains_key(&key) && self.rng.chance(40);
        let change = if remove {
            Change::Remove {
                signing_key: key,
                key: self::key(&mut self.rng),
            }
        } else {
            // As `team add` does: demoting an admin starts a new epoch.
            let role = role(&mut self.rng);
            let demotes = view.role_of(&key) == Some(Role::Admin) && role != Role::Admin;
            Change::Add {
                member: self.actors[target].card.clone(),
                role,
                key: demotes.then(|| self::key(&mut self.rng)),
            }
        };
        let signing = self.actors[i].signing.clone();
        let hostile = self.actors[HOSTILE].key();
        let view = self.actors[i].view.as_mut().unwrap();
        view.change(change, &signing)
            .expect("an honest change applies");
        if remove {
            assert!(!view.members.contains_key(&key), "an honest removal holds");
        }
        if view.role_of(&hostile) == Some(Role::Admin) {
            self.hostile_was_admin = true;
        }
    }

    /// The hostile member signs something a modified client would.
    fn hostile_acts(&mut self) {
        let seen: Vec<ChangeId> = self.seen_by_hostile.iter().map(Signed::id).collect();
        let mine: Vec<ChangeId> = self.made_by_hostile.iter().map(Signed::id).collect();
        let pool: Vec<ChangeId> = seen.iter().chain(&mine).copied().collect();
        let mut parents: Vec<ChangeId> = Vec::new();
        if !pool.is_empty() {
            for _ in 0..=self.rng.below(3) {
                parents.push(pool[self.rng.below(pool.len())]);
            }
        } else {
            parents.push(self.root);
        }
        parents.sort();
        parents.dedup();
        let target = self.rng.below(NAMES.len());
        let change = match self.rng.below(4) {
            0 => Change::Remove {
                signing_key: self.actors[target].key(),
                key: key(&mut self.rng),
            },
            1 if self.rng.chance(20) => {
                parents.clear();
                Change::Create {
                    name: "ops".into(),
                    admin: self.actors[HOSTILE].card.clone(),
                    key: key(&mut self.rng),
                }
            }
            _ => Change::Add {
                member: self.actors[target].card.clone(),
                role: role(&mut self.rng),
                key: self.rng.chance(30).then(|| key(&mut self.rng)),
            },
        };
        let team = if self.rng.chance(10) {
            [9; 16]
        } else {
            self.id
        };
        let body = Body {
            team,
            author: self.actors[HOSTILE].key(),
            parents: parents.clone(),
            change,
        };
        let mut s = Signed::sign(&body, &self.actors[HOSTILE].signing).unwrap();
        if self.rng.chance(10) {
            s.signature[self.rng.below(64)] ^= 1;
        }
        self.made_by_hostile.push(s);
        // Sometimes a second change with the same parents.
        if self.rng.chance(20) {
            let body = Body {
                parents,
                change: Change::Add {
                    member: self.actors[HOSTILE].card.clone(),
                    role: Role::Admin,
                    key: None,
                },
                ..body
            };
            self.made_by_hostile
                .push(Signed::sign(&body, &self.actors[HOSTILE].signing).unwrap());
        }
    }

    /// The hostile member's file: a random part of what it has (some withheld), sent to
    /// honest `to` (it knows every recipient).
    fn hostile_sends(&mut self, to: usize) {
        // Only a member who joined reads the team's files.
        if self.actors[to].view.is_none() {
            return;
        }
        let mut all: Vec<Signed> = Vec::new();
        for s in self.made_by_hostile.iter().chain(&self.seen_by_hostile) {
            if self.rng.chance(60) {
                all.push(s.clone());
            }
        }
        self.receive(to, all);
    }

    fn step(&mut self) {
        if std::env::var_os("JETON_TEAM_TRACE").is_some() {
            self.trace();
        }
        match self.rng.below(10) {
            0..=2 => {
                let i = self.rng.below(HOSTILE);
                self.admin_acts(i);
            }
            3..=6 => {
                let (from, to) = (self.rng.below(HOSTILE), self.rng.below(NAMES.len()));
                self.send(from, to);
            }
            7 | 8 => self.hostile_acts(),
            _ => {
                let to = self.rng.below(HOSTILE);
                self.hostile_sends(to);
            }
        }
    }
}

/// A key from the case's random numbers (the same seed, the same keys and change ids).
fn key(rng: &mut Rng) -> EpochKey {
    let mut b = [0u8; 32];
    for c in b.chunks_mut(8) {
        c.copy_from_slice(&rng.next().to_le_bytes());
    }
    EpochKey::from(jeton::secret::Key::from_bytes(b))
}

impl World {
    fn trace(&self) {
        for (i, a) in self.actors.iter().enumerate() {
            let Some(v) = &a.view else { continue };
            let ms: Vec<String> = (v.members.values())
                .map(|m| format!("{}:{}", m.card.name, m.role.label()))
                .collect();
            let ks: Vec<String> = (v.keys.iter())
                .map(|(e, k)| format!("{e}={:02x}", k.key().expose_secret()[0]))
                .collect();
            eprintln!(
                "  {} sees {:?} keys {:?} changes {}",
                NAMES[i],
                ms,
                ks,
                v.signed().len()
            );
        }
        let hk: Vec<String> = self
            .hostile_keys
            .iter()
            .map(|k| format!("{:02x}", k[0]))
            .collect();
        eprintln!("  eve holds {hk:?}");
    }
}

fn same(a: &Team, b: &Team) -> bool {
    a.members == b.members && a.keys == b.keys && a.epoch() == b.epoch()
}

fn run_case(seed: u64) {
    let mut w = World::new(seed);
    // The creator adds everyone first sometimes, so that histories start from a full team.
    if w.rng.chance(50) {
        for i in 1..NAMES.len() {
            let role = role(&mut w.rng);
            let card = w.actors[i].card.clone();
            let signing = w.actors[0].signing.clone();
            let view = w.actors[0].view.as_mut().unwrap();
            view.add(card, role, &signing).unwrap();
        }
        w.hostile_was_admin |= w.actors[0]
            .view
            .as_ref()
            .unwrap()
            .role_of(&w.actors[HOSTILE].key())
            == Some(Role::Admin);
    }
    for _ in 0..40 {
        w.step();
    }
    // The final set: what every honest member keeps, and the hostile member's last file.
    let mut hostile_file: Vec<Signed> = Vec::new();
    for s in w
        .made_by_hostile
        .clone()
        .iter()
        .chain(&w.seen_by_hostile.clone())
    {
        if w.rng.chance(70) {
            hostile_file.push(s.clone());
        }
    }
    let mut all: Vec<Signed> = hostile_file.clone();
    for a in &w.actors[..HOSTILE] {
        all.extend(a.view.as_ref().map(Team::signed).unwrap_or_default());
    }
    // 1. Every honest member computes the same list from that set, in any order.
    let mut results = Vec::new();
    for i in 0..HOSTILE {
        let mut mine = all.clone();
        w.rng.shuffle(&mut mine);
        results.push(w.compute(i, mine));
    }
    let reference = results[0].clone();
    if std::env::var_os("JETON_TEAM_TRACE").is_some() {
        let name =
            |k: &[u8; 32]| (w.actors.iter().position(|a| a.key() == *k)).map_or("?", |i| NAMES[i]);
        let mut seen = BTreeSet::new();
        for c in &all {
            if !seen.insert(c.id()) {
                continue;
            }
            let Ok(b) = c.decode() else { continue };
            let what = match &b.change {
                Change::Add { member, role, .. } => {
                    format!("add {} {}", member.name, role.label())
                }
                Change::Remove { signing_key, key } => format!(
                    "remove {} key {:02x}",
                    name(signing_key),
                    key.key().expose_secret()[0]
                ),
                Change::Create { .. } => "create".into(),
                Change::Upgrade { .. } => "upgrade".into(),
            };
            let ps: Vec<String> = b.parents.iter().map(|p| format!("{:02x}", p[0])).collect();
            eprintln!(
                "{:02x} by {} after {:?}: {what}",
                c.id()[0],
                name(&b.author),
                ps
            );
        }
        let ms: Vec<String> = (reference.members.values())
            .map(|m| format!("{}:{}", m.card.name, m.role.label()))
            .collect();
        let ks: Vec<String> = (reference.keys.iter())
            .map(|(e, k)| format!("{e}={:02x}", k.key().expose_secret()[0]))
            .collect();
        eprintln!(
            "final {ms:?} keys {ks:?} parts {}",
            reference.key_parts.len()
        );
    }
    for (i, r) in results.iter().enumerate() {
        assert!(
            same(r, &reference),
            "{} computes another list than ann",
            NAMES[i]
        );
    }
    // 2. If the final list does not hold the hostile member (removed, or let in by a change
    // that turned out void), it cannot make the final key from what it was sent.
    let hostile = w.actors[HOSTILE].key();
    if !reference.members.contains_key(&hostile) {
        let has = |k: &EpochKey| w.hostile_keys.contains(k.key().expose_secret());
        if reference.key_parts.is_empty() {
            let current = reference.keys.values().next_back().unwrap();
            assert!(!has(current), "a member not in the list holds its key");
        } else {
            assert!(
                !reference.key_parts.iter().all(has),
                "a member not in the list holds every part of its key"
            );
        }
    }
    // 3. Never made admin, the hostile member changes nothing.
    if !w.hostile_was_admin && reference.role_of(&hostile) != Some(Role::Admin) {
        let honest_only: Vec<Signed> = all
            .iter()
            .filter(|s| s.decode().map_or(true, |b| b.author != hostile))
            .cloned()
            .collect();
        let without = Team::compute(
            w.id,
            Known {
                root: Some(w.root),
                received: honest_only,
                ..Known::default()
            },
        )
        .unwrap();
        assert!(
            same(&without, &reference),
            "a member never made admin changed the list"
        );
    }
}

#[test]
fn honest_members_agree_and_a_hostile_member_cannot_undo_a_removal() {
    let cases: u64 = std::env::var("JETON_TEAM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let first: u64 = std::env::var("JETON_TEAM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    for seed in first..first + cases {
        let outcome = std::panic::catch_unwind(|| run_case(seed));
        if let Err(e) = outcome {
            eprintln!(
                "team property failed for seed {seed}: rerun with JETON_TEAM_SEED={seed} JETON_TEAM_CASES=1"
            );
            std::panic::resume_unwind(e);
        }
    }
}
