//! Joining a team and one sync round of a team vault: the remote's member lists and replicas
//! are read within bounds, the member list computed, what a member wrote that cannot be
//! taken left out and reported once, and the rest merged as any synced vault's round.

use super::files::{
    Admitted, Lists, admit_replicas, list_evidence, list_name, read_lists, refused_replica,
    seal_list, sign_replica,
};
use super::members::{Body, Change, ChangeId, KeyCache, Role, Signed, short};
use super::resolve::{Evidence, Known, Team};
use super::{
    MEMBERS_DIR, Membership, follow_epoch, forget_devices, membership, new_vault, open_vault,
    store_membership, validate_name,
};
use crate::share::{contact, identity};
use crate::sync::round::{self, Incoming, Record, Round};
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What joining produced.
pub struct Joined {
    pub name: String,
    pub team: Team,
    pub role: Role,
    pub added_by: (String, String),
    pub vault: Vec<u8>,
    pub publish: Vec<(String, Incoming)>,
    pub ignored: Vec<String>,
}

/// What a round produced.
pub struct Rounded {
    pub round: Round,
    pub vault: Option<Vec<u8>>,
    pub publish: Vec<(String, Incoming)>,
    pub ignored: Vec<String>,
}

/// This member's member-list file for `team`.
pub fn members_file(team: &Team, me: &[u8; 32]) -> Result<(String, Incoming)> {
    Ok((
        MEMBERS_DIR.to_owned(),
        Incoming {
            name: list_name(me),
            bytes: seal_list(team)?,
        },
    ))
}

/// Most teams, and most first changes per team, that `join` tries. A remote may hold any
/// number of member lists addressed to us; only a change one of our contacts signed that adds
/// us makes a team worth trying, so a planted list costs one pass over its changes.
pub(super) const MAX_TRIED: usize = 8;

/// A team `join` tries: its changes whose signatures hold (each checked once), the rest
/// (named as evidence), and the first changes that the changes adding us descend from.
pub(super) struct Candidate {
    pub(super) id: [u8; 16],
    pub(super) valid: Vec<Signed>,
    pub(super) invalid: Vec<Signed>,
    pub(super) roots: Vec<ChangeId>,
}

/// Where `join` looks for this member (`me`): each team in which one of their `contacts`
/// signed a change adding them, smallest id first, at most [`MAX_TRIED`] teams of
/// [`MAX_TRIED`] first changes each. `Err` names a key that added us but is no contact.
pub(super) fn candidates(
    lists: &Lists,
    me: &[u8; 32],
    contacts: &BTreeSet<[u8; 32]>,
) -> std::result::Result<Vec<Candidate>, [u8; 32]> {
    let decoded: Vec<(&Signed, Body)> = (lists.changes.iter())
        .filter_map(|s| Some((s, s.decode().ok()?)))
        .collect();
    let adds_me =
        |b: &Body| matches!(&b.change, Change::Add { member, .. } if member.signing_key == *me);
    let mut keys = KeyCache::default();
    let mut stranger = None;
    let mut teams: Vec<[u8; 16]> = Vec::new();
    for (s, b) in decoded.iter().filter(|(_, b)| adds_me(b)) {
        if teams.contains(&b.team) || s.verify_with(&b.team, &mut keys).is_err() {
            continue;
        }
        if contacts.contains(&b.author) {
            teams.push(b.team);
        } else {
            stranger.get_or_insert(b.author);
        }
    }
    teams.sort();
    teams.truncate(MAX_TRIED);
    if let (true, Some(key)) = (teams.is_empty(), stranger) {
        return Err(key);
    }
    let mut out = Vec::new();
    for id in teams {
        let (mut valid, mut invalid) = (Vec::new(), Vec::new());
        let mut bodies: HashMap<ChangeId, &Body> = HashMap::new();
        for (s, b) in decoded.iter().filter(|(_, b)| b.team == id) {
            if s.verify_with(&id, &mut keys).is_ok() {
                bodies.insert(s.id(), b);
                valid.push((*s).clone());
            } else {
                invalid.push((*s).clone());
            }
        }
        // The first changes that the contacts' additions of us descend from.
        let mut todo: Vec<ChangeId> = (bodies.iter())
            .filter(|(_, b)| adds_me(b) && contacts.contains(&b.author))
            .map(|(id, _)| *id)
            .collect();
        let mut seen: HashSet<ChangeId> = todo.iter().copied().collect();
        let mut roots = Vec::new();
        while let Some(c) = todo.pop() {
            let Some(b) = bodies.get(&c) else { continue };
            if b.parents.is_empty() {
                roots.push(c);
            }
            todo.extend(b.parents.iter().filter(|p| seen.insert(**p)));
        }
        roots.sort();
        roots.truncate(MAX_TRIED);
        out.push(Candidate {
            id,
            valid,
            invalid,
            roots,
        });
    }
    Ok(out)
}

/// The teams of the first format in which one of `contacts` added `me`, smallest id first, at
/// most [`MAX_TRIED`] (their signatures are checked when the list is computed).
fn legacy_candidates(lists: &Lists, me: &[u8; 32], contacts: &BTreeSet<[u8; 32]>) -> Vec<[u8; 16]> {
    let mut ids: Vec<[u8; 16]> = (lists.legacy.iter())
        .filter_map(|s| postcard::take_from_bytes::<super::legacy::Op>(&s.op).ok())
        .filter(|(op, _)| {
            contacts.contains(&op.author)
                && matches!(&op.change, super::legacy::Change::Add { member, .. } if member.signing_key == *me)
        })
        .map(|(op, _)| op.team)
        .collect();
    ids.sort();
    ids.dedup();
    ids.truncate(MAX_TRIED);
    ids
}

/// Joins the team whose files were read: the member list (among those addressed to us) in
/// which this member was added by one of their contacts.
pub fn join(
    vault: &mut Vault,
    keys: &identity::Keys,
    name: Option<String>,
    members: Vec<Incoming>,
    replicas: Vec<Incoming>,
    now: Time,
) -> Result<Joined> {
    let me = keys.signing.verifying_key().to_bytes();
    let lists = read_lists(&members, &keys.age);
    if lists.read.is_empty() {
        return Err(Error::NotFound(
            "nothing in this remote is addressed to you: ask an admin to add you with `jeton team add`, then sync, before you join".into(),
        ));
    }
    let contacts: BTreeSet<[u8; 32]> = (vault.payload.contacts.iter())
        .filter_map(|c| c.signing_key)
        .collect();
    let stranger = |key: &[u8; 32]| {
        Error::Integrity(format!(
            "a member list here adds you by key {}, which is not one of your contacts: check their card and add it with `jeton contact add`, then join again",
            short(key)
        ))
    };
    let found = candidates(&lists, &me, &contacts).map_err(|k| stranger(&k))?;
    let mut tried: Vec<([u8; 16], Known)> = Vec::new();
    for c in found {
        for (i, root) in c.roots.iter().enumerate() {
            // Changes that failed their checks are named once, with the first try.
            let received = if i == 0 {
                c.invalid.clone()
            } else {
                Vec::new()
            };
            let known = Known {
                root: Some(*root),
                checked: c.valid.clone(),
                received,
                legacy: lists.legacy.clone(),
            };
            tried.push((c.id, known));
        }
    }
    for id in legacy_candidates(&lists, &me, &contacts) {
        let same_team = |s: &&Signed| s.decode().is_ok_and(|b| b.team == id);
        let known = Known {
            root: None,
            checked: Vec::new(),
            received: lists.changes.iter().filter(same_team).cloned().collect(),
            legacy: lists.legacy.clone(),
        };
        tried.push((id, known));
    }
    let mut last_error = None;
    let mut team = None;
    let count = tried.len();
    for (id, known) in tried {
        match Team::compute(id, known) {
            Ok(t) if t.role_of(&me).is_some() => {
                team = Some(t);
                break;
            }
            Ok(_) => {}
            Err(e) => last_error = Some(e),
        }
    }
    let team = match (team, last_error) {
        (Some(t), _) => t,
        (None, Some(e)) if count <= 1 => return Err(e),
        (None, _) => {
            return Err(Error::NotFound(
                "you are not a member of the team this remote holds (removed?)".into(),
            ));
        }
    };
    let role = team.role_of(&me).unwrap_or(Role::Reader);
    let adder = team.members[&me].added_by;
    let (contact_name, fingerprint) = vault
        .payload
        .contacts
        .iter()
        .find(|c| c.signing_key == Some(adder))
        .map(|c| (c.name.clone(), contact::fingerprint(c)))
        .ok_or_else(|| {
            Error::Integrity(format!(
                "team {} adds you by key {}, which is not one of your contacts: check their card and add it with `jeton contact add`, then join again",
                crate::entry::printable(&team.name),
                short(&adder)
            ))
        })?;
    let local = name.unwrap_or_else(|| team.name.clone());
    validate_name(&local)?;
    if membership(vault, &local).is_ok() {
        return Err(Error::Exists(format!(
            "you already have a team named '{local}': pick another with --as"
        )));
    }
    let mut m = Membership::new(team.id);
    m.keep(&team, &me)?;
    let mut tv = new_vault(&team, now)?;
    super::author::sign_written(
        &mut tv,
        0,
        &super::author::Signer {
            team: team.id,
            key: keys.signing.clone(),
        },
        &[],
    )?;
    let bytes = tv.seal(0)?;
    let mut evidence = team.evidence.clone();
    evidence.extend(list_evidence(&team, &lists));
    let admitted = admit_replicas(&team, &me, replicas, &Default::default());
    evidence.extend(admitted.left_out.iter().map(|(_, e)| e.clone()));
    let (tv, r, refused) = merge(&bytes, &m, &team, admitted, false, now)?;
    evidence.extend(refused);
    let mut publish = vec![members_file(&team, &me)?];
    if role >= Role::Writer {
        publish.extend(r.replica.map(|x| {
            (
                crate::sync::remote::REPLICAS.to_owned(),
                sign_replica(&team.id, x, &keys.signing),
            )
        }));
    }
    let mut tv = tv;
    let bytes = tv.seal(0)?;
    let ignored = m.unreported(&evidence);
    store_membership(vault, &local, &m, now)?;
    vault.audit(now, "team", Some(&local), "joined");
    Ok(Joined {
        name: local,
        team,
        role,
        added_by: (contact_name, fingerprint),
        vault: bytes,
        publish,
        ignored,
    })
}

/// One round of team `name`'s vault (its bytes) with the remote's files.
pub fn round(
    vault: &mut Vault,
    keys: &identity::Keys,
    name: &str,
    bytes: Vec<u8>,
    (members, replicas): (Vec<Incoming>, Vec<Incoming>),
    accept_rollback: bool,
    now: Time,
) -> Result<Rounded> {
    let me = keys.signing.verifying_key().to_bytes();
    let mut m = membership(vault, name)?;
    let lists = read_lists(&members, &keys.age);
    let own_name = list_name(&me);
    let team = Team::compute(m.team, m.known(lists.changes.clone(), lists.legacy.clone()))?;
    let Some(role) = team.role_of(&me) else {
        return Err(Error::Unlock(format!(
            "you are no longer a member of team {name}: its new key was not shared with you; nothing was merged (`jeton team leave {name}` forgets it)"
        )));
    };
    let mut evidence = team.evidence.clone();
    evidence.extend(list_evidence(&team, &lists));
    let read_before = open_vault(bytes.clone(), &m)
        .and_then(|tv| round::headers_read(&tv))
        .unwrap_or_default();
    let admitted = admit_replicas(&team, &me, replicas, &read_before);
    // An admin's replica under a key we lack, and their member list not addressed to us:
    // they removed us (an admin may).
    let not_for_us =
        |a: &[u8; 32]| (lists.skipped.iter()).any(|(f, why)| why.is_none() && *f == list_name(a));
    if let Some(a) = admitted.admins_unread.iter().find(|a| not_for_us(a)) {
        return Err(Error::Unlock(format!(
            "you are no longer a member of team {name}, it seems: its admin {} published a member list not addressed to you and a replica under a key you were not given; nothing was merged (`jeton team leave {name}` forgets it)",
            crate::entry::printable(&team.who(a))
        )));
    }
    evidence.extend(admitted.left_out.iter().map(|(_, e)| e.clone()));
    let (mut tv, mut r, refused) = merge(&bytes, &m, &team, admitted, accept_rollback, now)?;
    evidence.extend(refused);
    let mut publish = Vec::new();
    match r.replica.take() {
        Some(x) if role >= Role::Writer => publish.push((
            crate::sync::remote::REPLICAS.to_owned(),
            sign_replica(&team.id, x, &keys.signing),
        )),
        _ => {}
    }
    // Our own list file is published again when it lacks what we keep.
    let own = members.iter().find(|f| f.name == own_name);
    let current = own.is_some_and(|f| match super::files::open_list(&f.bytes, &keys.age) {
        super::files::Opened::List { changes, legacy } => {
            same(&changes, &team.signed()) && same(&legacy, &team.legacy())
        }
        _ => false,
    });
    if !current {
        publish.push(members_file(&team, &me)?);
    }
    let out_vault = if tv.is_dirty() {
        Some(tv.seal(0)?)
    } else {
        None
    };
    let kept = m.keep(&team, &me)?;
    let ignored = m.unreported(&evidence);
    if kept || !ignored.is_empty() {
        store_membership(vault, name, &m, now)?;
    }
    Ok(Rounded {
        round: r,
        vault: out_vault,
        publish,
        ignored,
    })
}

/// Whether two lists hold the same items, in any order.
fn same<T: Clone + PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Merges the admitted replicas into the team vault (its bytes, under the membership's key).
/// A replica that fails on its own (damaged, another device's, older than one read before)
/// is left out and named, and the others are merged; a failure no replica explains is
/// returned.
fn merge(
    bytes: &[u8],
    m: &Membership,
    team: &Team,
    admitted: Admitted,
    accept_rollback: bool,
    now: Time,
) -> Result<(Vault, Round, Vec<Evidence>)> {
    let skipped: Vec<String> = admitted.left_out.iter().map(|(n, _)| n.clone()).collect();
    let attempt = |files: Vec<Incoming>, skipped: &[String]| -> Result<(Vault, Round)> {
        let mut tv = open_vault(bytes.to_vec(), m)?;
        follow_epoch(&mut tv, team)?;
        forget_devices(&mut tv, skipped)?;
        let r =
            round::round(&mut tv, files, accept_rollback, now).map_err(|e| not_member(e, team))?;
        Ok((tv, r))
    };
    let e = match attempt(admitted.files.clone(), &skipped) {
        Ok((tv, r)) => return Ok((tv, r, Vec::new())),
        Err(e @ Error::Integrity(_)) => e,
        Err(e) => return Err(e),
    };
    let tv = open_vault(bytes.to_vec(), m)?;
    let bad: Vec<String> = (admitted.files.iter())
        .filter(|f| fails_alone(&tv, team, f, accept_rollback))
        .map(|f| f.name.clone())
        .collect();
    if bad.is_empty() {
        return Err(e);
    }
    let evidence = (bad.iter())
        .map(|n| refused_replica(team, n, admitted.authors.get(n).copied()))
        .collect();
    let files = (admitted.files.into_iter())
        .filter(|f| !bad.contains(&f.name))
        .collect();
    let mut skipped = skipped;
    skipped.extend(bad);
    let (tv, r) = attempt(files, &skipped)?;
    Ok((tv, r, evidence))
}

/// Whether a replica fails on its own: it does not open under the team key its commitment
/// names, or is a snapshot older than what this copy read of its device before.
fn fails_alone(tv: &Vault, team: &Team, f: &Incoming, accept_rollback: bool) -> bool {
    let me = Record::of(tv).ok().flatten().map(|r| r.state.device);
    let Ok(file) = crate::format::VaultFile::parse(&f.bytes) else {
        return true;
    };
    let Some(key) = (team.keys.values().map(|k| k.key()))
        .find(|k| crate::vault::commitment_of(k, &file.header.vault_id) == file.header.commitment)
    else {
        return false;
    };
    let Ok(replica) = round::open_replica(f, &team.id, &key) else {
        return true;
    };
    if Some(replica.device) == me {
        return false;
    }
    let known = Record::of(tv)
        .ok()
        .flatten()
        .and_then(|r| r.local)
        .and_then(|l| l.devices.get(&replica.device).map(|h| h.generation));
    // A delta older than what was read stays on the remote until a snapshot covers it.
    let snapshot = round::parse_name(&f.name).is_some_and(|(_, delta)| delta.is_none());
    !accept_rollback && snapshot && known.is_some_and(|g| replica.generation < g)
}

fn not_member(e: Error, team: &Team) -> Error {
    match e {
        Error::Unlock(_) => Error::Unlock(format!(
            "a replica of team {} is under a key you do not have: you were removed from the team, or its admin's change has not reached you",
            crate::entry::printable(&team.name)
        )),
        e => e,
    }
}
