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
pub mod members;
mod request;

pub use members::{Card, Role, Signed, Team};
pub use request::{TeamRequest, TeamResponse, TeamView, execute};

use crate::entry::{Entry, Status, TEAM_PREFIX};
use crate::format::VaultFile;
use crate::secret::{Key, Token};
use crate::share::{hex, identity};
use crate::sync::round::{self, Incoming, Record};
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// Signature label of a team replica (docs/FORMAT.md, "Team vaults").
pub const LABEL_TEAM_REPLICA: &[u8] = b"jeton/v1/team-replica";
/// The first bytes of a signed team replica.
pub const REPLICA_MAGIC: &[u8; 8] = b"JTNTEAM1";
/// The remote's folder of member-list files, one per device.
pub const MEMBERS_DIR: &str = "members";
/// Audit action recording that a removed member could read an entry.
pub const EXPOSED: &str = "exposed";
/// Largest member-list file read.
const MAX_MEMBERS_LEN: usize = 4 << 20;

/// What the personal vault keeps of one team.
#[derive(Clone, Serialize, Deserialize)]
pub struct Membership {
    /// The team id.
    pub team: [u8; 16],
    /// Every change to its member list seen so far (never shrinks: an old list replayed by
    /// the remote changes nothing).
    pub changes: Vec<Signed>,
    /// The key the local copy of the team vault is under.
    pub key: [u8; 32],
    /// This member's role as the list said when it was last verified (`None`: removed), so
    /// that opening the team vault verifies no signature.
    pub role: Option<Role>,
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
    /// The member list these changes make.
    pub fn team(&self) -> Result<Team> {
        Team::from_changes(self.team, self.changes.iter().cloned())
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
    let bytes = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(secret.expose_secret())
            .map_err(|_| bad())?,
    );
    match postcard::take_from_bytes::<Membership>(&bytes) {
        Ok((m, [])) => Ok(m),
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
    let secret = Token::new(base64::engine::general_purpose::STANDARD.encode(&bytes[..]));
    let name = record_name(team);
    if !vault.payload.entries.contains_key(&name) {
        vault.payload.entries.insert(Box::new(Entry::blank(
            crate::vault::random_id()?,
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

/// The member-list file for `team`: every change known, encrypted to every current member.
pub fn seal_changes(team: &Team) -> Result<Vec<u8>> {
    let plain = zeroize::Zeroizing::new(
        postcard::to_stdvec(&team.signed())
            .map_err(|e| Error::Other(format!("cannot encode the member list: {e}")))?,
    );
    let mut recipients: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
    for m in team.members.values() {
        let r: age::x25519::Recipient = m.card.age_recipient.parse().map_err(|_| {
            Error::Integrity(format!("member {}'s age recipient is invalid", m.card.name))
        })?;
        recipients.push(Box::new(r));
    }
    let fail = |_| Error::Other("internal error: age encryption failed".into());
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_ref() as _))
        .map_err(|_| Error::Other("internal error: age refused the recipients".into()))?;
    let mut out = Vec::with_capacity(plain.len() + 256 * recipients.len());
    let mut w = encryptor.wrap_output(&mut out).map_err(fail)?;
    w.write_all(&plain).map_err(fail)?;
    w.finish().map_err(fail)?;
    Ok(out)
}

/// The changes in a member-list file, or `None` when it is not encrypted to `identity`.
/// Refuses (exit 6) a file that is encrypted to it but damaged.
pub fn open_changes(
    file: &Incoming,
    identity: &age::x25519::Identity,
) -> Result<Option<Vec<Signed>>> {
    let tampered = || {
        Error::Integrity(format!(
            "the team's member list {}/{} was tampered with (it fails decryption)",
            MEMBERS_DIR, file.name
        ))
    };
    if file.bytes.len() > MAX_MEMBERS_LEN {
        return Err(tampered());
    }
    let decryptor = age::Decryptor::new_buffered(&file.bytes[..]).map_err(|_| tampered())?;
    let mut stream = match decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)) {
        Ok(s) => s,
        Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
        Err(_) => return Err(tampered()),
    };
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    stream
        .by_ref()
        .take(MAX_MEMBERS_LEN as u64)
        .read_to_end(&mut plain)
        .map_err(|_| tampered())?;
    match postcard::take_from_bytes::<Vec<Signed>>(&plain) {
        Ok((v, [])) => Ok(Some(v)),
        _ => Err(tampered()),
    }
}

fn replica_message(team: &[u8; 16], name: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(LABEL_TEAM_REPLICA.len() + 24 + name.len() + body.len());
    m.extend_from_slice(LABEL_TEAM_REPLICA);
    m.extend_from_slice(team);
    m.extend_from_slice(&(name.len() as u64).to_le_bytes());
    m.extend_from_slice(name.as_bytes());
    m.extend_from_slice(body);
    m
}

/// Signs a replica of team `team` for publishing: magic, author key, signature, vault file.
pub fn sign_replica(team: &[u8; 16], replica: Incoming, key: &SigningKey) -> Incoming {
    let sig = key.sign(&replica_message(team, &replica.name, &replica.bytes));
    let mut bytes = Vec::with_capacity(replica.bytes.len() + 104);
    bytes.extend_from_slice(REPLICA_MAGIC);
    bytes.extend_from_slice(&key.verifying_key().to_bytes());
    bytes.extend_from_slice(&sig.to_bytes());
    bytes.extend_from_slice(&replica.bytes);
    Incoming {
        name: replica.name,
        bytes,
    }
}

/// The replicas a round may merge: those signed by a writer or an admin (or by this member:
/// its own replica), stripped of their signature. Every other file is left out with a warning
/// naming who wrote it.
pub fn admit_replicas(
    team: &Team,
    me: &[u8; 32],
    files: Vec<Incoming>,
) -> (Vec<Incoming>, Vec<(String, String)>) {
    let mut admitted = Vec::with_capacity(files.len());
    let mut warnings = Vec::new();
    for f in files {
        match author(team, &f) {
            Some(a) if &a == me || team.role_of(&a) >= Some(Role::Writer) => {
                let bytes = f.bytes[104..].to_vec();
                admitted.push(Incoming {
                    name: f.name,
                    bytes,
                });
            }
            Some(a) => {
                let why = match team.role_of(&a) {
                    Some(r) => format!("a {}", r.label()),
                    None if team.removed.contains_key(&a) => "removed from the team".into(),
                    None => "not a member".into(),
                };
                let w = format!(
                    "ignored the changes in replicas/{} by {} ({why})",
                    f.name,
                    team.who(&a)
                );
                warnings.push((f.name, w));
            }
            None => {
                let w = format!(
                    "ignored replicas/{}: it is not signed by a member of team {}",
                    f.name, team.name
                );
                warnings.push((f.name, w));
            }
        }
    }
    (admitted, warnings)
}

/// Forgets, in a team vault's sync record, the devices whose replicas were not admitted this
/// round: a replica left out is not a replica gone missing (a rollback).
pub fn forget_devices(vault: &mut Vault, ignored: &[(String, String)]) -> Result<()> {
    let ids: Vec<crate::sync::DeviceId> = ignored
        .iter()
        .filter_map(|(name, _)| crate::share::unhex::<16>(name.get(..32)?))
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

/// The author of a signed replica whose signature holds.
fn author(team: &Team, f: &Incoming) -> Option<[u8; 32]> {
    let b = &f.bytes;
    if b.len() < 104 || &b[..8] != REPLICA_MAGIC {
        return None;
    }
    let key: [u8; 32] = b[8..40].try_into().ok()?;
    let sig = Signature::from_slice(&b[40..104]).ok()?;
    VerifyingKey::from_bytes(&key)
        .ok()?
        .verify_strict(&replica_message(&team.id, &f.name, &b[104..]), &sig)
        .ok()?;
    Some(key)
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
mod tests {
    use super::*;

    struct Person {
        signing: SigningKey,
        age: age::x25519::Identity,
    }

    impl Person {
        fn new() -> Person {
            Person {
                signing: SigningKey::from_bytes(&crate::vault::random_id::<32>().unwrap()),
                age: age::x25519::Identity::generate(),
            }
        }
        fn card(&self, name: &str) -> Card {
            Card {
                name: name.into(),
                age_recipient: self.age.to_public().to_string(),
                signing_key: self.signing.verifying_key().to_bytes(),
            }
        }
        fn key(&self) -> [u8; 32] {
            self.signing.verifying_key().to_bytes()
        }
    }

    #[test]
    fn the_member_list_reaches_members_only_and_tampering_is_refused() {
        let (ann, bob, eve) = (Person::new(), Person::new(), Person::new());
        let (mut team, _) = Team::create("ops", ann.card("ann"), &ann.signing).unwrap();
        team.add(bob.card("bob"), Role::Reader, &ann.signing)
            .unwrap();
        let file = Incoming {
            name: "x.age".into(),
            bytes: seal_changes(&team).unwrap(),
        };
        let got = open_changes(&file, &bob.age).unwrap().unwrap();
        assert_eq!(got, team.signed());
        assert!(open_changes(&file, &eve.age).unwrap().is_none());
        let mut bad = file.clone();
        let n = bad.bytes.len();
        bad.bytes[n - 3] ^= 1;
        assert_eq!(open_changes(&bad, &bob.age).unwrap_err().exit_code(), 6);
        // After bob's removal, the new list is not addressed to him.
        team.remove(&bob.key(), &ann.signing).unwrap();
        let file = Incoming {
            name: "x.age".into(),
            bytes: seal_changes(&team).unwrap(),
        };
        assert!(open_changes(&file, &bob.age).unwrap().is_none());
        assert!(open_changes(&file, &ann.age).unwrap().is_some());
    }

    #[test]
    fn only_writers_replicas_are_admitted_under_their_own_name() {
        let (ann, wes, rae, eve) = (Person::new(), Person::new(), Person::new(), Person::new());
        let (mut team, _) = Team::create("ops", ann.card("ann"), &ann.signing).unwrap();
        team.add(wes.card("wes"), Role::Writer, &ann.signing)
            .unwrap();
        team.add(rae.card("rae"), Role::Reader, &ann.signing)
            .unwrap();
        let file = |name: &str, p: &Person| {
            sign_replica(
                &team.id,
                Incoming {
                    name: name.into(),
                    bytes: b"vault file bytes".to_vec(),
                },
                &p.signing,
            )
        };
        let mut renamed = file("w.jeton", &wes);
        renamed.name = "other.jeton".into();
        let files = vec![
            file("w.jeton", &wes),
            file("r.jeton", &rae),
            file("e.jeton", &eve),
            renamed,
            file("own.jeton", &rae),
        ];
        // As seen by ann: the writer's only.
        let (ok, warnings) = admit_replicas(&team, &ann.key(), files.clone());
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].bytes, b"vault file bytes");
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        let said = |what: &str| warnings.iter().any(|(_, w)| w.contains(what));
        assert!(said("rae (a reader)") && said("not a member") && said("not signed by a member"));
        // A reader's own replica is its own.
        let (ok, _) = admit_replicas(&team, &rae.key(), files);
        assert_eq!(ok.len(), 3);
    }
}
