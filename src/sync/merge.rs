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

    let ids: BTreeSet<EntryId> = (lx.keys().chain(rx.keys()))
        .chain(ls.deletions.keys().chain(rs.deletions.keys()))
        .copied()
        .collect();
    let mut kept: BTreeMap<EntryId, Kept> = BTreeMap::new();
    let mut deletions = BTreeMap::new();
    // Events that name an entry, named once the final names are known.
    let mut pending: Vec<(EntryId, Time, String)> = Vec::new();
    let mut conflicted = BTreeSet::new();
    let mut over_removal = BTreeSet::new();
    for id in ids {
        let (lt, rt) = (ls.deletions.get(&id), rs.deletions.get(&id));
        let tomb = join_tombs(lt, rt);
        let covered = |v: &Head| tomb.as_ref().is_some_and(|t| t.clock.covers(&v.1.clock));
        let l = lx.get(&id).filter(|v| !covered(v));
        let r = rx.get(&id).filter(|v| !covered(v));
        let (mut kept_version, from) = match (l, r) {
            (None, None) => {
                report.changed_here += usize::from(lx.contains_key(&id));
                report.changed_there += usize::from(rx.contains_key(&id));
                if let Some(t) = tomb {
                    deletions.insert(id, t);
                }
                continue;
            }
            (Some(v), None) => (Kept::Local(v.1.clone()), From::Local),
            (None, Some(v)) => (Kept::Remote(v.1.clone()), From::Remote),
            (Some(a), Some(b)) => match a.1.clock.compare(&b.1.clock) {
                Order::After => (Kept::Local(a.1.clone()), From::Local),
                Order::Before => (Kept::Remote(b.1.clone()), From::Remote),
                // The same version on both sides (every edit bumps the revision, which the
                // state tracks): the common case, decided without decoding either.
                Order::Equal if a.1 == b.1 && a.0.name == b.0.name => {
                    (Kept::Local(a.1.clone()), From::Same)
                }
                order => {
                    let (ea, eb) = (entry(lp, a)?, entry(rp, b)?);
                    let (ca, cb) = (encode_as_base(ea)?, encode_as_base(eb)?);
                    if ca == cb && a.1 == b.1 {
                        (Kept::Local(a.1.clone()), From::Same)
                    } else {
                        let pick_a = (a.1.stamp, ca.as_slice()) > (b.1.stamp, cb.as_slice());
                        let j = join::join((ea, a.1), (eb, b.1), pick_a, limit);
                        report.wiped |= j.wiped;
                        if order == Order::Concurrent && ca != cb {
                            conflicted.insert(id);
                            let detail = format!(
                                "changed on two devices at once; kept the change stamped {}, \
                                 the other secret (if different) went to history",
                                crate::time::rfc3339(j.tracked.stamp.time)
                            );
                            let at = ea.updated_at.max(eb.updated_at);
                            pending.push((id, at, detail));
                        }
                        (Kept::Owned(Box::new(j.entry), j.tracked), From::Both)
                    }
                }
            },
        };
        if let Some(t) = tomb {
            if !kept_version.tracked().clock.covers(&t.clock) {
                if let Some(at) = t.revoked_at
                    && kept_version.tracked().revoked_at.is_none()
                {
                    let (mut e, mut tracked) = kept_version.owned(&lx, &rx, lp, rp, id)?;
                    report.wiped |= e.secret.is_some() || !e.history.is_empty();
                    join::revoke(&mut e, at, None);
                    tracked.revoked_at = Some(at);
                    kept_version = Kept::Owned(e, tracked);
                }
                let news =
                    lt.map(|t| &t.clock) != rt.map(|t| &t.clock) || l.is_none() || r.is_none();
                if news {
                    over_removal.insert(id);
                    let updated_at = match &kept_version {
                        Kept::Owned(e, _) => e.updated_at,
                        Kept::Local(_) => entry(lp, &lx[&id])?.updated_at,
                        Kept::Remote(_) => entry(rp, &rx[&id])?.updated_at,
                    };
                    let at = updated_at.max(removed_at(lp, rp, &id).unwrap_or(Time::MIN));
                    let detail =
                        "removed on one device while changed on another; the change was kept";
                    pending.push((id, at, detail.into()));
                }
            }
            deletions.insert(id, t);
        }
        report.changed_here += usize::from(matches!(from, From::Remote | From::Both));
        report.changed_there += usize::from(matches!(from, From::Local | From::Both));
        kept.insert(id, kept_version);
    }

    // Names: one entry per name, whatever each side had.
    let bases: BTreeMap<EntryId, &str> = (kept.iter())
        .map(|(id, k)| (*id, base_name(now_name(id, k, &lx, &rx), id)))
        .collect();
    let dups = assign_names(&bases);
    let final_name = |id: &EntryId| dups.get(id).map_or(bases[id], String::as_str);
    // Entries whose name changes here, by id.
    let mut renames: BTreeMap<EntryId, String> = BTreeMap::new();
    for (id, k) in &kept {
        let name = final_name(id);
        let base = bases[id];
        let seen_otherwise = [lx.get(id), rx.get(id)]
            .into_iter()
            .flatten()
            .any(|v| v.0.name != name);
        if name != base && seen_otherwise {
            report.renamed.push((base.to_owned(), name.to_owned()));
            let detail = format!("another entry is also named {base}; this one is now {name}");
            let at = match k {
                Kept::Owned(e, _) => e.updated_at,
                Kept::Local(_) => entry(lp, &lx[id])?.updated_at,
                Kept::Remote(_) => entry(rp, &rx[id])?.updated_at,
            };
            pending.push((*id, at, detail));
        }
        if conflicted.contains(id) {
            report.conflicts.push(name.to_owned());
        }
        if over_removal.contains(id) {
            report.kept_over_removal.push(name.to_owned());
        }
        if name != now_name(id, k, &lx, &rx) {
            renames.insert(*id, name.to_owned());
        }
    }
    for (id, at, detail) in pending {
        let subject = kept.contains_key(&id).then(|| final_name(&id).to_owned());
        events.push(AuditEvent {
            at,
            action: "conflict".into(),
            subject,
            detail,
        });
    }
    // The result is the local entry map with what changed patched in: entries kept from the
    // local side under their name stay as they were read (not decoded, copied on save).
    let mut state = SyncState::new(ls.device);
    let mut keep: BTreeSet<&str> = BTreeSet::new();
    let mut add: Vec<Box<Entry>> = Vec::new();
    for (id, k) in kept {
        match (k, renames.remove(&id)) {
            (Kept::Local(t), None) => {
                keep.insert(lx[&id].0.name);
                state.entries.insert(id, t);
            }
            (k, rename) => {
                let (mut e, t) = k.owned(&lx, &rx, lp, rp, id)?;
                if let Some(name) = rename {
                    e.name = name;
                }
                state.entries.insert(id, t);
                add.push(e);
            }
        }
    }
    let entries = lp.entries.patched(&keep, add);
    state.deletions = deletions;

    let (contacts, regs, removals) = merge_contacts(local, remote, &mut events)?;
    state.contacts = regs;
    state.contact_removals = removals;
    state.settings = Some(settings_reg);

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
        audit: merge_audit(&lp.audit, &rp.audit, events),
    };
    Ok(Merged {
        payload,
        state,
        report,
    })
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

/// An entry of one side, not decoded: its head and sync history.
type Head<'a> = (crate::entries::Head<'a>, &'a Tracked);

/// Every entry of a side with its sync history (decodes nothing); an entry the state has not
/// absorbed is an error.
fn versions<'a>(p: &'a Payload, s: &'a SyncState) -> Result<BTreeMap<EntryId, Head<'a>>> {
    let mut out = BTreeMap::new();
    for h in p.entries.heads()? {
        match s.entries.get(&h.id) {
            Some(t) if t.revision == h.revision => {
                out.insert(h.id, (h, t));
            }
            _ => {
                return Err(Error::Other(
                    "internal error: a replica's local changes were not absorbed before the merge"
                        .into(),
                ));
            }
        }
    }
    Ok(out)
}

/// The entry behind a head, decoded.
fn entry<'a>(p: &'a Payload, h: &Head<'a>) -> Result<&'a Entry> {
    p.entries.get(h.0.name)?.ok_or_else(Error::corrupt_vault)
}

/// The name a kept version has before the merge names it.
fn now_name<'a>(
    id: &EntryId,
    k: &'a Kept,
    lx: &BTreeMap<EntryId, Head<'a>>,
    rx: &BTreeMap<EntryId, Head<'a>>,
) -> &'a str {
    match k {
        Kept::Owned(e, _) => &e.name,
        Kept::Local(_) => lx.get(id).map_or("", |h| h.0.name),
        Kept::Remote(_) => rx.get(id).map_or("", |h| h.0.name),
    }
}

/// The version a merge keeps of one entry: one side's as it is, or a new one.
enum Kept {
    Local(Tracked),
    Remote(Tracked),
    Owned(Box<Entry>, Tracked),
}

impl Kept {
    fn tracked(&self) -> &Tracked {
        match self {
            Kept::Local(t) | Kept::Remote(t) | Kept::Owned(_, t) => t,
        }
    }

    /// The version as an entry of its own.
    fn owned(
        self,
        lx: &BTreeMap<EntryId, Head>,
        rx: &BTreeMap<EntryId, Head>,
        lp: &Payload,
        rp: &Payload,
        id: EntryId,
    ) -> Result<(Box<Entry>, Tracked)> {
        Ok(match self {
            Kept::Owned(e, t) => (e, t),
            Kept::Local(t) => (Box::new(entry(lp, &lx[&id])?.clone()), t),
            Kept::Remote(t) => (Box::new(entry(rp, &rx[&id])?.clone()), t),
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
    let mut all: Vec<AuditEvent> = a.iter().chain(b).cloned().chain(new).collect();
    all.sort_by(|x, y| audit_key(x).cmp(&audit_key(y)));
    all.dedup();
    let excess = all.len().saturating_sub(AUDIT_CAP);
    all.drain(..excess);
    all
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
