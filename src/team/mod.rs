//! Team vaults: a vault several people read and write through one sync remote, opened with
//! each member's own identity instead of a shared passphrase.
//!
//! A team vault is a synced vault (format v2) with no key slots: its key is the current
//! epoch's key from the team's member list ([`members`]), which travels age-encrypted to every
//! member in the remote's `members/` folder. Each replica in `replicas/` is signed by its
//! author; replicas by readers, outsiders and removed members are ignored with a warning, then
//! the ordinary sync round ([`crate::sync::round`]) merges the rest. Removing a member starts
//! a new epoch whose key they never receive, and marks every entry they could read as exposed
//! to them until rotated.
//!
//! What the personal vault keeps of a team (the member list as last seen and the key its local
//! copy is under) is an internal entry `.team/NAME` ([`crate::entry::TEAM_PREFIX`]). The
//! requests here run against the personal vault (locally or in the agent), so the identity
//! never leaves it; the front end moves the team vault's bytes and the remote's files.

pub mod author;
mod exchange;
mod files;
mod graph;
pub mod legacy;
pub mod members;
mod request;
pub mod resolve;

pub use files::{
    LABEL_TEAM_REPLICA, LIST_MAGIC, MAX_MEMBERS_LEN, MEMBERS_DIR, Opened, REPLICA_MAGIC, list_name,
    open_list, seal_list, sign_replica,
};
pub use members::{Card, ChangeId, Role, Signed};
pub use request::{TeamRequest, TeamResponse, TeamView, execute};
pub use resolve::{Evidence, Known, Team};

use crate::entry::{Entry, Status, TEAM_PREFIX};
use crate::format::VaultFile;
use crate::secret::{Key, Token};
use crate::share::{hex, identity};
use crate::sync::round::{self, Record};
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Audit action recording that a removed member could read an entry.
pub const EXPOSED: &str = "exposed";
/// The start of a team record's secret in this format (a first-format record is bare base64).
const RECORD_V2: &str = "v2:";
/// Most facts a team record remembers as reported (the oldest are forgotten first).
const MAX_REPORTED: usize = 4096;

/// What the personal vault keeps of one team.
#[derive(Clone, Serialize, Deserialize)]
pub struct Membership {
    /// The team id.
    pub team: [u8; 16],
    /// The member list's first change, once known (`None`: a first-format list).
    pub root: Option<ChangeId>,
    /// The changes of the member list kept (those that applied and their ancestors; a list
    /// replayed by the remote changes nothing).
    pub changes: Vec<Signed>,
    /// First-format changes: every one seen, or after an upgrade those it names.
    pub legacy: Vec<legacy::Signed>,
    /// The key the local copy of the team vault is under.
    pub key: [u8; 32],
    /// This member's role as the list said when it was last computed (`None`: removed), so
    /// that opening the team vault verifies no signature.
    pub role: Option<Role>,
    /// Facts already reported ([`Evidence::fact`]), oldest first.
    pub reported: Vec<[u8; 16]>,
}

/// A team record of the first format.
#[derive(Deserialize)]
struct LegacyMembership {
    team: [u8; 16],
    changes: Vec<legacy::Signed>,
    key: [u8; 32],
    role: Option<Role>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("team", &hex(&self.team))
            .field("changes", &self.changes.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl Membership {
    /// A record of team `team` with nothing kept yet.
    pub fn new(team: [u8; 16]) -> Membership {
        Membership {
            team,
            root: None,
            changes: Vec::new(),
            legacy: Vec::new(),
            key: [0; 32],
            role: None,
            reported: Vec::new(),
        }
    }

    /// The changes kept, as input for [`Team::compute`] (with `received` from the remote).
    pub fn known(&self, received: Vec<Signed>, legacy: Vec<legacy::Signed>) -> Known {
        Known {
            root: self.root,
            checked: self.changes.clone(),
            received,
            legacy: self.legacy.iter().cloned().chain(legacy).collect(),
        }
    }

    /// The member list these changes make.
    pub fn team(&self) -> Result<Team> {
        Team::compute(self.team, self.known(Vec::new(), Vec::new()))
    }

    /// Keeps what `team` kept. True when anything changed.
    pub fn keep(&mut self, team: &Team, me: &[u8; 32]) -> Result<bool> {
        let changes = team.signed();
        let legacy = team.legacy();
        let key = *team.current_key()?.expose_secret();
        let role = team.role_of(me);
        let changed = self.root != team.root
            || self.changes != changes
            || self.legacy != legacy
            || self.key != key
            || self.role != role;
        self.root = team.root;
        self.changes = changes;
        self.legacy = legacy;
        self.key = key;
        self.role = role;
        Ok(changed)
    }

    /// The lines of `evidence` not reported before, now remembered as reported.
    pub fn unreported(&mut self, evidence: &[Evidence]) -> Vec<String> {
        let mut out = Vec::new();
        for e in evidence {
            if !self.reported.contains(&e.fact) {
                self.reported.push(e.fact);
                out.push(e.text.clone());
            }
        }
        let over = self.reported.len().saturating_sub(MAX_REPORTED);
        self.reported.drain(..over);
        out
    }

    /// The key of the local copy.
    pub fn key(&self) -> Key {
        Key::from_bytes(self.key)
    }
}

/// True when `name` is a valid team name (an entry-name segment: letters, digits, `._@-`).
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with(['.', '-'])
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
    {
        return Err(Error::Usage(format!(
            "invalid team name '{}': use 1 to 64 of A-Z a-z 0-9 . _ @ -, not starting with . or -",
            crate::entry::printable(name)
        )));
    }
    Ok(())
}

/// Checks an entry name that may be a team's (`TEAM:NAME`); `new` for a name being made.
pub fn check_entry_name(name: &str, new: bool) -> Result<()> {
    let check = if new {
        crate::entry::validate_new_name
    } else {
        crate::entry::validate_name
    };
    match split(name) {
        Some((team, rest)) => {
            validate_name(team)?;
            check(rest)
        }
        None => check(name),
    }
}

/// Splits `TEAM:NAME` (`None` for a personal name, which never holds a colon).
pub fn split(name: &str) -> Option<(&str, &str)> {
    name.split_once(':')
}

/// `<vault>.teams/`: where the local copies of a personal vault's team vaults live.
pub fn teams_dir(personal: &std::path::Path) -> std::path::PathBuf {
    let mut s = personal.as_os_str().to_owned();
    s.push(".teams");
    std::path::PathBuf::from(s)
}

/// The local copy of team `team`'s vault: `<vault>.teams/TEAM.jeton`.
pub fn local_path(personal: &std::path::Path, team: &str) -> std::path::PathBuf {
    teams_dir(personal).join(format!("{team}.jeton"))
}

/// The error for a team with no local copy on this device.
pub fn no_local_copy(team: &str) -> Error {
    Error::NotFound(format!(
        "team {team} has no local copy on this device: `jeton team join` it"
    ))
}

/// Refuses a change of team `team`'s entries by a member with `role`.
pub fn check_access(team: &str, role: Role, writes: bool) -> Result<()> {
    if writes && role < Role::Writer {
        return Err(Error::Usage(format!(
            "you are a {} of team {team}: only writers and admins change its entries",
            role.label()
        )));
    }
    Ok(())
}

fn record_name(team: &str) -> String {
    format!("{TEAM_PREFIX}{team}")
}

/// The names of the teams this personal vault belongs to.
pub fn teams(vault: &Vault) -> Result<Vec<String>> {
    let mut out = Vec::new();
    vault.payload.entries.scan_where(
        |n| n.starts_with(TEAM_PREFIX),
        |e| {
            out.push(e.name[TEAM_PREFIX.len()..].to_owned());
            Ok(())
        },
    )?;
    Ok(out)
}

/// The membership of team `team`.
pub fn membership(vault: &Vault, team: &str) -> Result<Membership> {
    let e = vault
        .payload
        .entries
        .get(&record_name(team))?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no team named '{}' (see `jeton team list`)",
                crate::entry::printable(team)
            ))
        })?;
    decode_membership(e)
}

fn decode_membership(e: &Entry) -> Result<Membership> {
    use base64::Engine;
    let bad = || Error::Integrity(format!("the team record '{}' does not parse", e.name));
    let secret = e.secret.as_ref().ok_or_else(bad)?;
    let text = secret.expose_secret();
    let (v2, text) = match text.strip_prefix(RECORD_V2) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let bytes = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| bad())?,
    );
    if v2 {
        return match postcard::take_from_bytes::<Membership>(&bytes) {
            Ok((m, [])) => Ok(m),
            _ => Err(bad()),
        };
    }
    // A first-format record: its list is read as a first-format list until an admin
    // carries it over.
    match postcard::take_from_bytes::<LegacyMembership>(&bytes) {
        Ok((mut old, [])) => {
            let m = Membership {
                team: old.team,
                root: None,
                changes: Vec::new(),
                legacy: std::mem::take(&mut old.changes),
                key: old.key,
                role: old.role,
                reported: Vec::new(),
            };
            zeroize::Zeroize::zeroize(&mut old.key);
            Ok(m)
        }
        _ => Err(bad()),
    }
}

/// Writes the membership of team `team` (created when missing).
pub fn store_membership(vault: &mut Vault, team: &str, m: &Membership, now: Time) -> Result<()> {
    use base64::Engine;
    let bytes = zeroize::Zeroizing::new(
        postcard::to_stdvec(m)
            .map_err(|e| Error::Other(format!("cannot encode the team record: {e}")))?,
    );
    let mut text = String::with_capacity(RECORD_V2.len() + bytes.len() * 4 / 3 + 4);
    text.push_str(RECORD_V2);
    base64::engine::general_purpose::STANDARD.encode_string(&bytes[..], &mut text);
    let secret = Token::new(text);
    let name = record_name(team);
    if !vault.payload.entries.contains_key(&name) {
        vault.payload.entries.insert(Box::new(Entry::blank(
            crate::random::random_id()?,
            name.clone(),
            now,
        )));
    }
    let e = vault.entry_mut(&name)?;
    e.secret = Some(secret);
    e.revision += 1;
    e.updated_at = now;
    Ok(())
}

/// Forgets team `team` in the personal vault.
pub fn forget(vault: &mut Vault, team: &str, now: Time) -> Result<()> {
    let r = vault
        .payload
        .entries
        .remove(&record_name(team))?
        .ok_or_else(|| Error::NotFound(format!("no team named '{team}'")))?;
    vault
        .payload
        .deletions
        .push(crate::vault::Deletion { id: r.id, at: now });
    vault.forget_previous_on_save();
    Ok(())
}

/// This vault's sharing keys as a member card named `name`.
pub fn own_card(keys: &identity::Keys, name: &str) -> Card {
    let c = keys.card(Some(name));
    Card {
        name: c.name,
        age_recipient: c.age_recipient,
        signing_key: c.signing_key,
    }
}

/// Forgets, in a team vault's sync record, the devices whose replicas were not admitted this
/// round: a replica left out is not a replica gone missing (a rollback).
pub fn forget_devices(vault: &mut Vault, ignored: &[String]) -> Result<()> {
    let ids: Vec<crate::sync::DeviceId> = ignored
        .iter()
        .filter_map(|name| crate::share::unhex::<16>(name.get(..32)?))
        .collect();
    let Some(mut record) = Record::of(vault)? else {
        return Err(Error::corrupt_vault());
    };
    let Some(local) = record.local.as_mut() else {
        return Err(Error::corrupt_vault());
    };
    let before = local.devices.len();
    local.devices.retain(|d, _| !ids.contains(d));
    if local.devices.len() != before {
        vault.set_sync_record(Some(record.encode()?));
    }
    Ok(())
}

/// Records in `vault` (a team vault) that `name`, just removed, could read every entry it
/// holds now: `check` reports each as exposed until its secret changes.
pub fn mark_exposed(vault: &mut Vault, name: &str, now: Time) -> Result<usize> {
    let mut names = Vec::new();
    vault.payload.entries.scan_where(
        |n| !crate::entry::is_internal(n),
        |e| {
            if !matches!(e.status, Status::Revoked { .. }) {
                names.push(e.name.clone());
            }
            Ok(())
        },
    )?;
    for n in &names {
        vault.audit(
            now,
            EXPOSED,
            Some(n),
            format!("readable by {name}, removed from the team"),
        );
    }
    Ok(names.len())
}

/// Entries of a team vault exposed to a removed member and not rotated since: (entry, who).
pub fn exposed(vault: &Vault) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for ev in vault.payload.audit.iter().filter(|e| e.action == EXPOSED) {
        let Some(name) = &ev.subject else { continue };
        let Some(e) = vault.payload.entries.get(name)? else {
            continue;
        };
        if matches!(e.status, Status::Revoked { .. }) || e.secret_set_at > ev.at {
            continue;
        }
        let who = ev
            .detail
            .strip_prefix("readable by ")
            .and_then(|d| d.strip_suffix(", removed from the team"))
            .unwrap_or("a removed member")
            .to_owned();
        if !out.iter().any(|(n, w)| n == name && *w == who) {
            out.push((name.clone(), who));
        }
    }
    Ok(out)
}

/// A new, empty team vault under the team's current key, attached to sync.
pub fn new_vault(team: &Team, now: Time) -> Result<Vault> {
    let mut vault = Vault::create_keyed(team.id, team.current_key()?, now)?;
    round::attach(&mut vault, now)?;
    Ok(vault)
}

/// Moves a team vault to the team's current key, and lets every earlier epoch's replicas
/// count as "not re-keyed yet" rather than as a newer key. True when the key changed.
pub fn follow_epoch(vault: &mut Vault, team: &Team) -> Result<bool> {
    let current = team.current_key()?;
    let changed = current.expose_secret() != vault.key().expose_secret();
    if changed {
        vault.set_raw_key(current);
    }
    let Some(mut record) = Record::of(vault)? else {
        return Err(Error::corrupt_vault());
    };
    let Some(local) = record.local.as_mut() else {
        return Err(Error::corrupt_vault());
    };
    let mut moved = false;
    for (epoch, key) in &team.keys {
        if *epoch == team.epoch() {
            continue;
        }
        let c = crate::vault::commitment_of(&key.key(), vault.id());
        if !local.retired.contains(&c) {
            local.retired.push(c);
            moved = true;
        }
    }
    if moved {
        vault.set_sync_record(Some(record.encode()?));
    }
    Ok(changed)
}

/// Opens a replica file's vault bytes with whichever epoch key made it.
pub fn open_with_epochs(file: &VaultFile, team: &Team) -> Result<Key> {
    for key in team.keys.values() {
        let k = key.key();
        if crate::vault::commitment_of(&k, &file.header.vault_id) == file.header.commitment {
            return Ok(k);
        }
    }
    Err(Error::Unlock(format!(
        "the team vault {} is under a key you were not given (were you removed from the team?)",
        team.name
    )))
}

/// Decodes a team vault's bytes with the membership's key.
pub fn open_vault(bytes: Vec<u8>, m: &Membership) -> Result<Vault> {
    let file = VaultFile::parse_owned(bytes)?;
    if file.header.vault_id != m.team {
        return Err(Error::Integrity("this file is not the team's vault".into()));
    }
    Vault::open_owned(file, m.key())
}

#[cfg(test)]
mod tests;
