//! Joining a team and one sync round of a team vault: the remote's member lists and replicas
//! are read within bounds, the member list computed, what a member wrote that cannot be
//! taken left out and reported once, and the rest merged as any synced vault's round.

use super::files::{
    Admitted, Lists, admit_replicas, list_evidence, list_name, read_lists, refused_replica,
    seal_list, sign_replica,
};
use super::members::{Role, short};
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

/// The team ids the first changes in `lists` name, smallest first.
fn team_ids(lists: &Lists) -> Vec<[u8; 16]> {
    let mut ids: Vec<[u8; 16]> = (lists.changes.iter())
        .filter_map(|s| s.decode().ok())
        .filter(|b| b.parents.is_empty())
        .map(|b| b.team)
        .chain(lists.legacy.iter().filter_map(|s| {
            let (op, _) = postcard::take_from_bytes::<super::legacy::Op>(&s.op).ok()?;
            matches!(op.change, super::legacy::Change::Create { .. }).then_some(op.team)
        }))
        .collect();
    ids.sort();
    ids.dedup();
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
    // Each team id and first change the files name, until one lists us.
    let compute = |id: [u8; 16], root| {
        let known = Known {
            root,
            checked: Vec::new(),
            received: lists.changes.clone(),
            legacy: lists.legacy.clone(),
        };
        Team::compute(id, known)
    };
    let mut found: Option<Team> = None;
    let mut last_error = None;
    for id in team_ids(&lists) {
        let first = match compute(id, None) {
            Ok(t) => t,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let others = first.other_roots.clone();
        let candidates =
            std::iter::once(Ok(first)).chain(others.into_iter().map(|r| compute(id, Some(r))));
        if let Some(t) = candidates
            .filter_map(Result::ok)
            .find(|t| t.role_of(&me).is_some())
        {
            found = Some(t);
            break;
        }
    }
    let team = match (found, last_error) {
        (Some(t), _) => t,
        (None, Some(e)) if team_ids(&lists).len() <= 1 => return Err(e),
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
    let admitted = admit_replicas(&team, &me, replicas);
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
    let admitted = admit_replicas(&team, &me, replicas);
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
/// names, or holds an older generation of its device than this copy read before.
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
    !accept_rollback && known.is_some_and(|g| replica.generation < g)
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
