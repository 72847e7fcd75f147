//! The merge of two replicas: a pure function of their payloads and sync states.

use super::join::{self, assign_names, base_name};
use super::{Clock, Order, Register, SyncState, Tombstone, Tracked, digest};
use crate::entry::{Entry, EntryId};
use crate::time::Time;
use crate::vault::{AUDIT_CAP, AuditEvent, Contact, Deletion, Payload, SeenBundle};
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// What a merge produced: the new local payload and state, and what happened.
#[derive(Debug)]
pub struct Merged {
    /// The merged content.
    pub payload: Payload,
    /// The local device's state for it.
    pub state: SyncState,
    /// What the merge did.
    pub report: Report,
}

/// What a merge did, for the front end to print (names only when asked).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries whose content changed on the local side (taken from or joined with the remote).
    pub changed_here: usize,
    /// Entries whose content differs from what the remote side had.
    pub changed_there: usize,
    /// Names of entries changed on both sides at once (a `conflict` event each).
    pub conflicts: Vec<String>,
    /// Names of entries kept because an edit was concurrent with their removal.
    pub kept_over_removal: Vec<String>,
    /// Entries renamed because another entry had their name: (name, new name).
    pub renamed: Vec<(String, String)>,
    /// The replicas carry different sharing identities; the local one was kept.
    pub identity_differs: bool,
    /// Secrets present in an input are gone from the result (revoked, or cut by the history
    /// limit): the caller should scrub its backup, as after a local revoke.
    pub wiped: bool,
    /// The audit events this merge wrote (conflicts, renames): the merging device passes them
    /// on, whatever their time.
    pub events: Vec<AuditEvent>,
}

/// One side of a merge.
type Side<'a> = (&'a Payload, &'a SyncState);

/// Merges two replicas of one vault; `local`'s device owns the resulting state. Both states
/// must have absorbed their payload's local changes first ([`SyncState::absorb_local`]).
///
/// The result's content (see [`super::canonical`]) does not depend on which side is local, a
/// replica merged with itself is unchanged, and merging three replicas gives the same content
/// in either grouping, but for the `conflict` events: those record what the merging device saw
/// side by side (docs/FORMAT.md, "Sync merge").
pub fn merge(local: Side, remote: Side) -> Result<Merged> {
    let (lp, ls) = local;
    let (rp, rs) = remote;
    let mut report = Report::default();
    let mut events = Vec::new();

    let (settings, settings_reg) = merge_settings(local, remote)?;
    let limit = settings.history_limit;
    let lx = versions(lp, ls)?;
    let rx = versions(rp, rs)?;

    // Every id either side has an entry or a tombstone for, in id order: the entry lists and
    // the tombstone maps are all sorted by id, so they are walked side by side.
    let heads = outer_join(
        lx.iter().map(|v| (v.head.id, v)),
        rx.iter().map(|v| (v.head.id, v)),
    );
    let tombs = outer_join(ls.deletions.iter(), rs.deletions.iter());
    let ids = outer_join(
        heads.map(|(id, l, r)| (id, (l, r))),
        tombs.map(|(id, l, r)| (*id, (l, r))),
    );
    let mut kept: Vec<Merging> = Vec::new();
    let mut deletions = Vec::new();
    // Events that name an entry (by its place in `kept`), named once the final names are known.
    let mut pending: Vec<(usize, Time, String)> = Vec::new();
    for (id, heads, tombs) in ids {
        let (lv, rv) = heads.unwrap_or_default();
        let (lt, rt) = tombs.unwrap_or_default();
        let tomb = join_tombs(lt, rt);
        let covered = |v: &Version| {
            tomb.as_ref()
                .is_some_and(|t| t.clock.covers(&v.tracked.clock))
        };
        let l = lv.filter(|v| !covered(v));
        let r = rv.filter(|v| !covered(v));
        let mut conflict = false;
        let (kept_version, from) = match (l, r) {
            (None, None) => {
                if let Some(v) = lv {
                    report.wiped |= holds_secrets(entry(lp, v)?);
                }
                report.changed_here += usize::from(lv.is_some());
                report.changed_there += usize::from(rv.is_some());
                deletions.extend(tomb.map(|t| (id, t)));
                continue;
            }
            (Some(v), None) => (Kept::Local(v), From::Local),
            (None, Some(v)) => (Kept::Remote(v), From::Remote),
            (Some(a), Some(b)) => match a.tracked.clock.compare(&b.tracked.clock) {
                Order::After => (Kept::Local(a), From::Local),
                Order::Before => (Kept::Remote(b), From::Remote),
                // The same version on both sides (every edit bumps the revision, which the
                // state tracks): the common case, decided without decoding either.
                Order::Equal if a.tracked == b.tracked && a.head.name == b.head.name => {
                    (Kept::Local(a), From::Same)
                }
                order => {
                    let (ea, eb) = (entry(lp, a)?, entry(rp, b)?);
                    let (ca, cb) = (encode_as_base(ea)?, encode_as_base(eb)?);
                    if ca == cb && a.tracked == b.tracked {
                        (Kept::Local(a), From::Same)
                    } else {
                        let j = join::join((ea, a.tracked), (eb, b.tracked), limit)?;
                        report.wiped |= j.wiped;
                        let revoked_here =
                            matches!(j.entry.status, crate::entry::Status::Revoked { .. })
                                && (!is_revoked(ea) || !is_revoked(eb));
                        let detail = if order != Order::Concurrent {
                            None
                        } else if revoked_here {
                            Some(
                                "revoked on one device while changed on another; the revocation \
                                 stands and every secret of the entry is wiped"
                                    .to_owned(),
                            )
                        } else {
                            conflict_detail(&j)
                        };
                        if let Some(detail) = detail {
                            conflict = true;
                            let at = ea.updated_at.max(eb.updated_at);
                            pending.push((kept.len(), at, detail));
                        }
                        (
                            Kept::Owned(Box::new(j.entry), Box::new(j.tracked)),
                            From::Both,
                        )
                    }
                }
            },
        };
        let mut m = Merging {
            id,
            kept: kept_version,
            sides: [lv, rv],
            conflict,
            over_removal: false,
        };
        if let Some(t) = tomb {
            if !m.kept.tracked().clock.covers(&t.clock) {
                if let Some(at) = t.revoked_at
                    && m.kept.tracked().revoked_at.is_none()
                {
                    let (mut e, mut tracked) = m.kept.into_owned(lp, rp)?;
                    report.wiped |= e.secret.is_some() || !e.history.is_empty();
                    join::revoke(&mut e, at, None);
                    // A new version: its lists in the order a join gives them, so that the
                    // same content comes out whichever way it was reached.
                    join::sort_lists(&mut e);
                    tracked.revoked_at = Some(at);
                    tracked.fields.redigest(&e)?;
                    m.kept = Kept::Owned(e, Box::new(tracked));
                }
                let news =
                    lt.map(|t| &t.clock) != rt.map(|t| &t.clock) || l.is_none() || r.is_none();
                if news {
                    m.over_removal = true;
                    let at = (m.kept.updated_at(lp, rp)?)
                        .max(removed_at(lp, rp, &id).unwrap_or(Time::MIN));
                    let detail =
                        "removed on one device while changed on another; the change was kept";
                    pending.push((kept.len(), at, detail.into()));
                }
            }
            deletions.push((id, t));
        }
        // A local secret that the kept version no longer holds (revoked, cut from history, or
        // replaced by a version that never had it) must not survive in the local backup.
        if let Some(v) = lv
            && !matches!(m.kept, Kept::Local(k) if k.slot == v.slot)
        {
            let kept_entry = match &m.kept {
                Kept::Owned(e, _) => &**e,
                Kept::Local(k) => entry(lp, k)?,
                Kept::Remote(k) => entry(rp, k)?,
            };
            report.wiped |= drops_secret(entry(lp, v)?, kept_entry);
        }
        report.changed_here += usize::from(matches!(from, From::Remote | From::Both));
        report.changed_there += usize::from(matches!(from, From::Local | From::Both));
        kept.push(m);
    }

    // Names: one entry per name, whatever each side had.
    let bases: Vec<(EntryId, &str)> = (kept.iter())
        .map(|m| (m.id, base_name(m.kept.name(), &m.id)))
        .collect();
    let dups = assign_names(&bases);
    let final_name = |i: usize| {
        let (id, base) = bases[i];
        dups.get(&id).map_or(base, String::as_str)
    };
    // The new name of each entry whose name changes here.
    let mut renames: Vec<Option<String>> = Vec::with_capacity(kept.len());
    for (i, m) in kept.iter().enumerate() {
        let (name, base) = (final_name(i), bases[i].1);
        let seen_otherwise = m.sides.iter().flatten().any(|v| v.head.name != name);
        if name != base && seen_otherwise {
            report.renamed.push((base.to_owned(), name.to_owned()));
            let detail = format!("another entry is also named {base}; this one is now {name}");
            pending.push((i, m.kept.updated_at(lp, rp)?, detail));
        }
        if m.conflict {
            report.conflicts.push(name.to_owned());
        }
        if m.over_removal {
            report.kept_over_removal.push(name.to_owned());
        }
        renames.push((name != m.kept.name()).then(|| name.to_owned()));
    }
    for (i, at, detail) in pending {
        events.push(AuditEvent {
            at,
            action: "conflict".into(),
            subject: Some(final_name(i).to_owned()),
            detail,
        });
    }
    // The result is the local entry map with what changed patched in: entries kept from the
    // local side under their name stay as they were read (not decoded, copied on save).
    let mut keep = vec![false; lp.entries.len()];
    let mut add: Vec<Box<Entry>> = Vec::new();
    let mut tracked = Vec::with_capacity(kept.len());
    for (m, rename) in kept.into_iter().zip(renames) {
        match (m.kept, rename) {
            (Kept::Local(v), None) => {
                keep[v.slot] = true;
                tracked.push((m.id, v.tracked.clone()));
            }
            (k, rename) => {
                let (mut e, t) = k.into_owned(lp, rp)?;
                if let Some(name) = rename {
                    e.name = name;
                }
                tracked.push((m.id, t));
                add.push(e);
            }
        }
    }
    let entries = lp.entries.patched(&keep, add);
    // Both built from id order, so collecting them builds each map in one pass.
    let mut state = SyncState::new(ls.device);
    state.entries = tracked.into_iter().collect();
    state.deletions = deletions.into_iter().collect();

    let (contacts, regs, removals) = merge_contacts(local, remote, &mut events)?;
    state.contacts = regs;
    state.contact_removals = removals;
    state.settings = Some(settings_reg);
    state.forgotten = ls.forgotten.clone();
    for (d, at) in &rs.forgotten {
        let t = state.forgotten.entry(*d).or_insert(*at);
        *t = (*t).min(*at);
    }

    let identity = match (&lp.identity, &rp.identity) {
        (Some(a), Some(b)) => {
            let same = a.signing_key.expose_secret() == b.signing_key.expose_secret()
                && a.age_secret == b.age_secret;
            report.identity_differs = !same;
            Some(a.clone())
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };

    let payload = Payload {
        settings,
        entries,
        deletions: union_deletions(&lp.deletions, &rp.deletions),
        contacts,
        identity,
        seen_bundles: union_by_id(&lp.seen_bundles, &rp.seen_bundles, |s| (s.id.clone(), s.at))
            .into_iter()
            .map(|(id, at)| SeenBundle { id, at })
            .collect(),
        audit: merge_audit(&lp.audit, &rp.audit, events.clone()),
    };
    report.events = events;
    Ok(Merged {
        payload,
        state,
        report,
    })
}

fn is_revoked(e: &Entry) -> bool {
    matches!(e.status, crate::entry::Status::Revoked { .. })
}

/// What a join of two concurrent versions did that someone should know: fields set on both
/// devices at once. `None` when each side changed other fields (both changes stand).
fn conflict_detail(j: &join::Joined) -> Option<String> {
    use super::field::Field;
    let secret = j.conflicts.contains(&Field::Secret);
    let others: Vec<&str> = (j.conflicts.iter())
        .filter(|f| **f != Field::Secret)
        .map(|f| f.label())
        .collect();
    let mut parts = Vec::new();
    if secret {
        parts.push(
            "rotated on two devices at once; the later secret is current and the other is in its \
             history"
                .to_owned(),
        );
    }
    if !others.is_empty() {
        parts.push(format!(
            "{} changed on two devices at once; the later value is current and the other is kept \
             (see `jeton sync status`, choose with `jeton sync resolve`)",
            others.join(", ")
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Where a merged entry came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    /// The same version was on both sides.
    Same,
    Local,
    Remote,
    Both,
}

/// An entry of one side, not decoded: its head, its place in the side's entry map and its
/// sync history.
#[derive(Clone, Copy)]
struct Version<'a> {
    head: crate::entries::Head<'a>,
    slot: usize,
    tracked: &'a Tracked,
}

/// Every entry of a side with its sync history, in id order (decodes nothing); an entry the
/// state has not absorbed is an error.
fn versions<'a>(p: &'a Payload, s: &'a SyncState) -> Result<Vec<Version<'a>>> {
    let heads = p.entries.heads()?;
    let mut out: Vec<(usize, crate::entries::Head)> = heads.into_iter().enumerate().collect();
    out.sort_by_key(|(_, h)| h.id);
    // An id twice in one map (no writer makes one): the later name wins, as in a map by id.
    out.dedup_by(|later, kept| {
        let same = later.1.id == kept.1.id;
        if same {
            *kept = *later;
        }
        same
    });
    let mut tracked = s.entries.iter().peekable();
    let mut versions = Vec::with_capacity(out.len());
    for (slot, head) in out {
        while tracked.next_if(|(id, _)| **id < head.id).is_some() {}
        match tracked.next_if(|(id, _)| **id == head.id) {
            Some((_, t)) if t.revision == head.revision => versions.push(Version {
                head,
                slot,
                tracked: t,
            }),
            _ => {
                return Err(Error::Other(
                    "internal error: a replica's local changes were not absorbed before the merge"
                        .into(),
                ));
            }
        }
    }
    Ok(versions)
}

/// Pairs up two sequences sorted by strictly ascending keys: each key once, in order, with
/// the value each side has for it.
pub(super) fn outer_join<K: Ord + Copy, A, B>(
    a: impl IntoIterator<Item = (K, A)>,
    b: impl IntoIterator<Item = (K, B)>,
) -> impl Iterator<Item = (K, Option<A>, Option<B>)> {
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    std::iter::from_fn(move || {
        let key = [a.peek().map(|x| x.0), b.peek().map(|x| x.0)]
            .into_iter()
            .flatten()
            .min()?;
        let x = a.next_if(|x| x.0 == key).map(|x| x.1);
        let y = b.next_if(|y| y.0 == key).map(|y| y.1);
        Some((key, x, y))
    })
}

/// The entry behind a version, decoded.
fn entry<'a>(p: &'a Payload, v: &Version<'a>) -> Result<&'a Entry> {
    p.entries.get(v.head.name)?.ok_or_else(Error::corrupt_vault)
}

/// True when `e` holds a secret, current or in its history.
fn holds_secrets(e: &Entry) -> bool {
    e.secret.is_some() || !e.history.is_empty()
}

/// The secrets of `e`, current and past.
fn secrets(e: &Entry) -> impl Iterator<Item = &str> {
    (e.secret.iter())
        .chain(e.history.iter().map(|h| &h.secret))
        .map(|t| t.expose_secret())
}

/// True when a secret of `before` is not in `after`, current or in its history.
fn drops_secret(before: &Entry, after: &Entry) -> bool {
    let kept: BTreeSet<&str> = secrets(after).collect();
    secrets(before).any(|s| !kept.contains(s))
}

/// One entry the merge keeps: which version, what each side had, and what happened to it.
struct Merging<'a> {
    id: EntryId,
    kept: Kept<'a>,
    /// The local and remote versions, removed or not.
    sides: [Option<&'a Version<'a>>; 2],
    conflict: bool,
    over_removal: bool,
}

/// The version a merge keeps of one entry: one side's as it is, or a new one.
enum Kept<'a> {
    Local(&'a Version<'a>),
    Remote(&'a Version<'a>),
    Owned(Box<Entry>, Box<Tracked>),
}

impl Kept<'_> {
    fn tracked(&self) -> &Tracked {
        match self {
            Kept::Local(v) | Kept::Remote(v) => v.tracked,
            Kept::Owned(_, t) => t,
        }
    }

    /// Its name before the merge names it.
    fn name(&self) -> &str {
        match self {
            Kept::Local(v) | Kept::Remote(v) => v.head.name,
            Kept::Owned(e, _) => &e.name,
        }
    }

    fn updated_at(&self, lp: &Payload, rp: &Payload) -> Result<Time> {
        Ok(match self {
            Kept::Owned(e, _) => e.updated_at,
            Kept::Local(v) => entry(lp, v)?.updated_at,
            Kept::Remote(v) => entry(rp, v)?.updated_at,
        })
    }

    /// The version as an entry of its own.
    fn into_owned(self, lp: &Payload, rp: &Payload) -> Result<(Box<Entry>, Tracked)> {
        Ok(match self {
            Kept::Owned(e, t) => (e, *t),
            Kept::Local(v) => (Box::new(entry(lp, v)?.clone()), v.tracked.clone()),
            Kept::Remote(v) => (Box::new(entry(rp, v)?.clone()), v.tracked.clone()),
        })
    }
}

/// An entry's encoding under its base name (a collision suffix is not a change).
fn encode_as_base(e: &Entry) -> Result<Zeroizing<Vec<u8>>> {
    let base = base_name(&e.name, &e.id);
    let renamed;
    let e = if base == e.name {
        e
    } else {
        renamed = Entry {
            name: base.to_owned(),
            ..e.clone()
        };
        &renamed
    };
    postcard::to_stdvec(e)
        .map(Zeroizing::new)
        .map_err(|e| Error::Other(format!("could not encode for sync: {e}")))
}

fn join_tombs(a: Option<&Tombstone>, b: Option<&Tombstone>) -> Option<Tombstone> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Tombstone {
            clock: a.clock.joined(&b.clock),
            revoked_at: [a.revoked_at, b.revoked_at].into_iter().flatten().min(),
        }),
        (a, b) => a.or(b).cloned(),
    }
}

/// The earliest removal record of `id` on either side.
fn removed_at(a: &Payload, b: &Payload, id: &EntryId) -> Option<Time> {
    (a.deletions.iter().chain(&b.deletions))
        .filter(|d| d.id == *id)
        .map(|d| d.at)
        .min()
}

/// Every removal record of either side once, ordered by time then id.
fn union_deletions(a: &[Deletion], b: &[Deletion]) -> Vec<Deletion> {
    let all: BTreeSet<(Time, EntryId)> = a.iter().chain(b).map(|d| (d.at, d.id)).collect();
    all.into_iter()
        .map(|(at, id)| Deletion { id, at })
        .collect()
}

/// One record per id (the earliest), ordered by time then id.
fn union_by_id<T, K: Ord + Clone>(
    a: &[T],
    b: &[T],
    key: impl Fn(&T) -> (K, Time),
) -> Vec<(K, Time)> {
    let mut by_id: BTreeMap<K, Time> = BTreeMap::new();
    for (k, at) in a.iter().chain(b).map(key) {
        by_id
            .entry(k)
            .and_modify(|t| *t = (*t).min(at))
            .or_insert(at);
    }
    let mut out: Vec<(K, Time)> = by_id.into_iter().collect();
    out.sort_by(|x, y| (x.1, &x.0).cmp(&(y.1, &y.0)));
    out
}

/// Both logs and the merge's events: a union ordered by (time, action, subject, detail),
/// duplicates dropped, the oldest cut past [`AUDIT_CAP`].
fn merge_audit(a: &[AuditEvent], b: &[AuditEvent], new: Vec<AuditEvent>) -> Vec<AuditEvent> {
    // Sorted by reference, so that only the events kept are copied.
    let mut all: Vec<&AuditEvent> = a.iter().chain(b).chain(&new).collect();
    all.sort_by(|x, y| audit_key(x).cmp(&audit_key(y)));
    all.dedup();
    let excess = all.len().saturating_sub(AUDIT_CAP);
    all[excess..].iter().map(|e| (*e).clone()).collect()
}

/// The order of a merged audit log.
pub(super) fn audit_key(e: &AuditEvent) -> (Time, &str, Option<&str>, &str) {
    (e.at, &e.action, e.subject.as_deref(), &e.detail)
}

/// Last writer wins: the later clock, or between concurrent changes the larger stamp.
fn pick<'a>(a: &'a Register, b: &'a Register) -> (bool, Register) {
    let take_a = match a.clock.compare(&b.clock) {
        Order::After => true,
        Order::Before => false,
        Order::Equal | Order::Concurrent => (a.stamp, a.digest) >= (b.stamp, b.digest),
    };
    let winner = if take_a { a } else { b };
    let reg = Register {
        clock: a.clock.joined(&b.clock),
        stamp: winner.stamp,
        digest: winner.digest,
    };
    (take_a, reg)
}

fn merge_settings(local: Side, remote: Side) -> Result<(crate::vault::Settings, Register)> {
    let unabsorbed = || Error::Other("internal error: replica settings not absorbed".into());
    let a = local.1.settings.as_ref().ok_or_else(unabsorbed)?;
    let b = remote.1.settings.as_ref().ok_or_else(unabsorbed)?;
    let (take_a, reg) = pick(a, b);
    let from = if take_a { local.0 } else { remote.0 };
    Ok((from.settings.clone(), reg))
}

type Contacts = (
    Vec<Contact>,
    BTreeMap<String, Register>,
    BTreeMap<String, Clock>,
);

/// Contacts by name, as entries: a removal covers the versions it had seen; otherwise the later
/// change wins, and between concurrent changes the larger stamp (a `conflict` event).
fn merge_contacts(local: Side, remote: Side, events: &mut Vec<AuditEvent>) -> Result<Contacts> {
    let side = |(p, s): Side<'_>| -> Result<BTreeMap<String, (Contact, Register)>> {
        let mut out = BTreeMap::new();
        for c in &p.contacts {
            match s.contacts.get(&c.name) {
                Some(r) if r.digest == digest(c)? => {
                    out.insert(c.name.clone(), (c.clone(), r.clone()));
                }
                _ => {
                    return Err(Error::Other(
                        "internal error: replica contacts not absorbed".into(),
                    ));
                }
            }
        }
        Ok(out)
    };
    let (mut a, mut b) = (side(local)?, side(remote)?);
    let names: BTreeSet<String> = (a.keys().chain(b.keys()))
        .chain(local.1.contact_removals.keys())
        .chain(remote.1.contact_removals.keys())
        .cloned()
        .collect();
    let (mut contacts, mut regs, mut removals) = (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for name in names {
        let removal = match (
            local.1.contact_removals.get(&name),
            remote.1.contact_removals.get(&name),
        ) {
            (Some(x), Some(y)) => Some(x.joined(y)),
            (x, y) => x.or(y).cloned(),
        };
        let live = |v: Option<(Contact, Register)>| {
            v.filter(|(_, r)| !removal.as_ref().is_some_and(|d| d.covers(&r.clock)))
        };
        let kept = match (live(a.remove(&name)), live(b.remove(&name))) {
            (None, None) => None,
            (Some(x), None) | (None, Some(x)) => Some(x),
            (Some(x), Some(y)) => {
                let (take_x, reg) = pick(&x.1, &y.1);
                if x.1.clock.compare(&y.1.clock) == Order::Concurrent && x.0 != y.0 {
                    events.push(AuditEvent {
                        at: x.0.added_at.max(y.0.added_at),
                        action: "conflict".into(),
                        subject: Some(name.clone()),
                        detail: "contact changed on two devices at once; the later change was kept"
                            .into(),
                    });
                }
                Some((if take_x { x.0 } else { y.0 }, reg))
            }
        };
        if let Some((c, r)) = kept {
            contacts.push(c);
            regs.insert(name.clone(), r);
        }
        if let Some(d) = removal {
            removals.insert(name, d);
        }
    }
    Ok((contacts, regs, removals))
}
