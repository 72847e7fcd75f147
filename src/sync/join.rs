//! Joining two concurrent versions of one entry, and naming entries whose names collide.

use super::field::{self, Field};
use super::{Item, Items, ListField, Tracked};
use crate::entry::{Entry, EntryId, HistoryItem, MAX_NAME_LEN, Status};
use crate::time::Time;
use std::collections::{BTreeMap, BTreeSet};

/// One version of an entry and its sync history.
pub(super) type Version<'a> = (&'a Entry, &'a Tracked);

/// What joining two versions produced.
pub(super) struct Joined {
    pub entry: Entry,
    pub tracked: Tracked,
    /// True when a secret present in an input is gone (revoked, or cut by the history limit).
    pub wiped: bool,
    /// Fields changed on both sides at once with different values.
    pub conflicts: Vec<Field>,
}

/// The join of two versions neither of which has seen the other: field by field
/// ([`field::join`]), so a change on one side to one field and on the other to another both
/// stand. The lists keep every value either side added that the other had not seen removed,
/// in byte order; share records are a union; a secret that is not current joins the history
/// when the two were set at once (deduplicated, cut to `history_limit`, oldest first out);
/// revoked on either side means revoked and wiped. The clock is the join.
pub(super) fn join(x: Version, y: Version, history_limit: u32) -> crate::Result<Joined> {
    let ((ex, tx), (ey, ty)) = (x, y);
    let decided = field::join(
        &field::Side {
            entry: ex,
            clock: &tx.clock,
            fields: &tx.fields,
            siblings: &tx.siblings,
        },
        &field::Side {
            entry: ey,
            clock: &ty.clock,
            fields: &ty.fields,
            siblings: &ty.siblings,
        },
    )?;
    // What no register holds (the times of the entry) comes from the later change, as a
    // device that saw both would have it.
    let mut e = if (tx.stamp, ex.updated_at) >= (ty.stamp, ey.updated_at) {
        ex.clone()
    } else {
        ey.clone()
    };
    for f in Field::ALL {
        let from = if decided.from_x[f as usize] { ex } else { ey };
        field::copy(f, from, &mut e);
    }
    e.revision = ex.revision.max(ey.revision);
    let items = join_items(x, y);
    for field in ListField::ALL {
        let list = field.of_mut(&mut e);
        list.clear();
        for i in items.iter().filter(|i| i.field == field) {
            if list.last() != Some(&i.value) {
                list.push(i.value.clone());
            }
        }
    }
    let mut shares: Vec<_> = ex.shared_with.iter().chain(&ey.shared_with).collect();
    shares.sort_by(|a, b| (a.at, &a.contact, &a.bundle_id).cmp(&(b.at, &b.contact, &b.bundle_id)));
    shares.dedup();
    e.shared_with = shares.into_iter().cloned().collect();

    let mut wiped = false;
    let revoked = [ex, ey]
        .into_iter()
        .filter_map(|v| match &v.status {
            Status::Revoked { at, reason } => Some((*at, reason.clone())),
            _ => None,
        })
        .min();
    if let Some((at, reason)) = revoked {
        wiped = ex.secret.is_some() || ey.secret.is_some();
        wiped |= !ex.history.is_empty() || !ey.history.is_empty();
        revoke(&mut e, at, reason);
    } else {
        let mut all: Vec<&HistoryItem> = ex.history.iter().chain(&ey.history).collect();
        let retired;
        let other = if decided.from_x[Field::Secret as usize] {
            ey
        } else {
            ex
        };
        if decided.conflicts.contains(&Field::Secret)
            && let Some(s) = other
                .secret
                .as_ref()
                .filter(|s| Some(*s) != e.secret.as_ref())
        {
            // Retired when it was set: the time depends on nothing but the secret, so the
            // merge is the same whichever version carried it here (a copy retired by a
            // rotation is never earlier, and wins the deduplication below).
            retired = HistoryItem::retired(s.clone(), other.secret_set_at, other.secret_set_at);
            all.push(&retired);
        }
        let (history, cut) = join_history(all, e.secret.as_ref(), history_limit);
        e.history = history;
        wiped |= cut;
    }
    let mut fields = decided.fields;
    fields.redigest(&e)?;
    let tracked = Tracked {
        clock: tx.clock.joined(&ty.clock),
        revision: e.revision,
        stamp: tx.stamp.max(ty.stamp),
        items,
        revoked_at: revoked_at(&e),
        fields,
        siblings: decided.siblings,
    };
    Ok(Joined {
        entry: e,
        tracked,
        wiped,
        conflicts: decided.conflicts,
    })
}

/// Puts `e`'s lists in byte order, each value once, as [`join`] leaves them.
pub(super) fn sort_lists(e: &mut Entry) {
    for field in ListField::ALL {
        let list = field.of_mut(e);
        list.sort();
        list.dedup();
    }
}

/// Marks `e` revoked and drops its secrets (they zeroize on drop).
pub(super) fn revoke(e: &mut Entry, at: Time, reason: Option<String>) {
    e.status = Status::Revoked { at, reason };
    e.secret = None;
    e.history = Vec::new();
}

fn revoked_at(e: &Entry) -> Option<Time> {
    match e.status {
        Status::Revoked { at, .. } => Some(at),
        _ => None,
    }
}

/// The list values of both versions: a value added on one side survives unless the other side
/// had seen that addition and dropped it (an observed-remove set, with the entry clocks as what
/// each side has seen).
fn join_items(x: Version, y: Version) -> Items {
    let unseen = |i: &Item, other: &Tracked| other.clock.get(&i.device) < i.counter;
    let from_x = (x.1.items.iter()).filter(|i| y.1.items.contains(i) || unseen(i, y.1));
    let from_y = (y.1.items.iter()).filter(|i| unseen(i, x.1));
    from_x.chain(from_y).cloned().collect()
}

/// Previous secrets of both sides: one item per secret (the one retired last), none equal to the
/// current secret, in [`HistoryItem::order`], the oldest beyond `limit` cut as a device cuts
/// its own. Returns whether any was cut.
fn join_history(
    mut all: Vec<&HistoryItem>,
    current: Option<&crate::secret::Token>,
    limit: u32,
) -> (Vec<HistoryItem>, bool) {
    let last = |h: &HistoryItem| (h.retired_at, h.created_at);
    all.retain(|h| Some(&h.secret) != current);
    all.sort_by(|a, b| {
        (a.secret.expose_secret(), last(b)).cmp(&(b.secret.expose_secret(), last(a)))
    });
    all.dedup_by(|later, first| later.secret == first.secret);
    all.sort_by(|a, b| a.order().cmp(&b.order()));
    let excess = all.len().saturating_sub(limit as usize);
    let history = all[excess..].iter().map(|h| (*h).clone()).collect();
    (history, excess > 0)
}

/// The suffix that marks an entry renamed because another entry had its name.
const DUP: &str = ".dup-";

fn hex(id: &EntryId, len: usize) -> String {
    id.iter()
        .flat_map(|b| [b >> 4, b & 15])
        .take(len)
        .map(|n| char::from_digit(u32::from(n), 16).unwrap_or('0'))
        .collect()
}

/// The name an entry has when no other entry has it: its name without the suffix a collision
/// gave it (`.dup-` and the start of its own id).
pub(super) fn base_name<'a>(name: &'a str, id: &EntryId) -> &'a str {
    if !name.contains(DUP) {
        return name;
    }
    for len in [8, 32] {
        let suffix = format!("{DUP}{}", hex(id, len));
        if let Some(base) = name.strip_suffix(&suffix)
            && !base.is_empty()
        {
            return base;
        }
    }
    name
}

/// Names for entries by id from their base names: an entry alone with its base name keeps it;
/// where several share one, the smallest id keeps it and each other gets `.dup-` and the first
/// 8 hex digits of its id (all 32 if that is taken too), shortening the base to stay within
/// the length limit. The result depends only on the entries, not on the order they came in.
/// Returns the names of the entries that do not keep their base name.
pub(super) fn assign_names(bases: &[(EntryId, &str)]) -> BTreeMap<EntryId, String> {
    let mut by_base: Vec<(&str, EntryId)> = bases.iter().map(|(id, b)| (*b, *id)).collect();
    by_base.sort_unstable();
    let taken_base = |n: &str| by_base.binary_search_by(|(b, _)| (*b).cmp(n)).is_ok();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut names = BTreeMap::new();
    for pair in by_base.windows(2) {
        let ((prev, _), (base, id)) = (pair[0], pair[1]);
        if prev != base {
            continue;
        }
        let free = |n: &String| !taken_base(n) && !taken.contains(n);
        let mut extra = 2u32;
        let name = loop {
            let name = [8, 32]
                .into_iter()
                .map(|len| dup_name(base, &format!("{DUP}{}", hex(&id, len))))
                .find(free);
            if let Some(n) = name {
                break n;
            }
            let n = dup_name(base, &format!("{DUP}{}-{extra}", hex(&id, 32)));
            if free(&n) {
                break n;
            }
            extra += 1;
        };
        taken.insert(name.clone());
        names.insert(id, name);
    }
    names
}

/// `base` + `suffix`, with `base` shortened to keep within [`MAX_NAME_LEN`] (names are ASCII).
fn dup_name(base: &str, suffix: &str) -> String {
    let keep = MAX_NAME_LEN.saturating_sub(suffix.len()).min(base.len());
    format!("{}{suffix}", &base[..keep])
}
