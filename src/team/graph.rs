//! The graph of a member list's changes and the passes over it (docs/FORMAT.md, "Computing
//! the list"): the canonical order (parents first, ties by id), which change each one
//! descends from, and one pass that applies them in order, checking each author's role in the
//! list as it stands and in the list the change's ancestors make. [`settle`] repeats the pass,
//! voiding what strikes void, until nothing more is voided.

use super::legacy;
use super::members::{Body, Change, ChangeId, MAX_MEMBERS, Member, Removed, Role, Signed};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

pub(super) struct Node {
    pub(super) id: ChangeId,
    pub(super) body: Body,
    pub(super) signed: Signed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Applied,
    Void,
    NotAdmin,
    NoEffect,
    Full,
}

/// A removal or demotion of an admin that applied: (position, target, author, the author's
/// and the target's seniority just before).
pub(super) struct Strike {
    pub(super) pos: usize,
    pub(super) target: [u8; 32],
    pub(super) author: [u8; 32],
    pub(super) author_rank: u64,
    pub(super) target_rank: u64,
}

/// The state one pass over the canonical order builds.
pub(super) struct Pass {
    pub(super) members: BTreeMap<[u8; 32], Member>,
    pub(super) removed: BTreeMap<[u8; 32], Removed>,
    pub(super) rank: BTreeMap<[u8; 32], u64>,
    pub(super) next_rank: u64,
    /// Per member, the positions of applied changes of their role: (position, admin after).
    pub(super) roles: HashMap<[u8; 32], Vec<(usize, bool)>>,
    pub(super) outcome: Vec<Outcome>,
    pub(super) strikes: Vec<Strike>,
    /// Applied removals (positions), each with its key.
    pub(super) rekeys: Vec<usize>,
}

/// The graph of the changes reachable from the root: canonical order and ancestry.
pub(super) struct Graph {
    pub(super) nodes: Vec<Node>,
    /// Change id -> node.
    pub(super) index: HashMap<ChangeId, usize>,
    /// Positions in the canonical order -> node.
    pub(super) order: Vec<usize>,
    /// Node -> position (usize::MAX: not reachable).
    pub(super) pos: Vec<usize>,
    pub(super) words: usize,
    /// Ancestor bit sets, by position.
    pub(super) anc: Vec<u64>,
    pub(super) by_author: HashMap<[u8; 32], Vec<usize>>,
}

impl Graph {
    pub(super) fn is_ancestor(&self, a: usize, b: usize) -> bool {
        self.anc[b * self.words + a / 64] & (1 << (a % 64)) != 0
    }

    pub(super) fn concurrent(&self, a: usize, b: usize) -> bool {
        a != b && !self.is_ancestor(a, b) && !self.is_ancestor(b, a)
    }

    pub(super) fn body(&self, p: usize) -> &Body {
        &self.nodes[self.order[p]].body
    }

    /// The position of a reachable change's parent (reachable too).
    pub(super) fn parent(&self, id: &ChangeId) -> usize {
        self.pos[self.index[id]]
    }
}

pub(super) fn graph(nodes: Vec<Node>, index: HashMap<ChangeId, usize>, root: usize) -> Graph {
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

/// The passes over `g` until the void changes stop growing: the last pass, and which
/// changes took part in any (applied, or struck back).
pub(super) fn settle(g: &Graph, base: Option<&legacy::List>) -> (Pass, Vec<bool>) {
    let n = g.order.len();
    let mut void = vec![false; n];
    let mut used = vec![false; n];
    let mut pass = run(g, base, &void);
    // Each round either voids one more change or stops: at most n + 1 passes.
    for _ in 0..=n {
        let before = void.iter().filter(|v| **v).count();
        for (u, o) in used.iter_mut().zip(&pass.outcome) {
            *u |= *o == Outcome::Applied;
        }
        strike(g, &pass, &mut void, &mut used);
        if void.iter().filter(|v| **v).count() == before {
            break;
        }
        pass = run(g, base, &void);
    }
    (pass, used)
}

/// Whether `author` is an admin in the list the ancestors of the change at `p` make, as this
/// pass applied them.
pub(super) fn admin_before(g: &Graph, pass: &Pass, author: &[u8; 32], p: usize) -> bool {
    pass.roles
        .get(author)
        .and_then(|events| events.iter().rev().find(|(q, _)| g.is_ancestor(*q, p)))
        .is_some_and(|(_, admin)| *admin)
}

/// One pass over the canonical order with the changes in `void` left out.
pub(super) fn run(g: &Graph, base: Option<&legacy::List>, void: &[bool]) -> Pass {
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
    for (p, &gone) in void.iter().enumerate().skip(1) {
        if gone {
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

pub(super) fn apply(pass: &mut Pass, p: usize, body: &Body) -> Outcome {
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
pub(super) fn strikes_at(body: &Body, target: &[u8; 32]) -> bool {
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
pub(super) fn strike(g: &Graph, pass: &Pass, void: &mut [bool], used: &mut [bool]) {
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
