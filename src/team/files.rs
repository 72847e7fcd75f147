//! The team's files on the remote: member-list files (`members/*.age`), read with bounds
//! before anything parses them, and signed replicas (`replicas/*.jeton`), admitted by their
//! author's role and key. A file that fails is evidence against whoever wrote it, never a
//! reason to stop (docs/FORMAT.md, "Team vaults").

use super::legacy;
use super::members::{MAX_CHANGES, Role, Signed};
use super::resolve::{Evidence, Team, fact};
use crate::format::VaultFile;
use crate::share::{age_header, hex};
use crate::sync::round::Incoming;
use crate::{Error, Result};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};

/// The remote's folder of member-list files, one per member.
pub const MEMBERS_DIR: &str = "members";
/// Largest member-list file read (and largest plaintext).
pub const MAX_MEMBERS_LEN: usize = 4 << 20;
/// The first bytes of a member list's plaintext (the first format has none).
pub const LIST_MAGIC: &[u8; 8] = b"JTNLIST2";
/// Signature label of a team replica (docs/FORMAT.md, "Signed replicas").
pub const LABEL_TEAM_REPLICA: &[u8] = b"jeton/v1/team-replica";
/// The first bytes of a signed team replica.
pub const REPLICA_MAGIC: &[u8; 8] = b"JTNTEAM1";
/// Bytes before the vault file in a signed replica: magic, author key, signature.
const REPLICA_HEAD: usize = 104;

/// A member-list file's plaintext: every change its writer keeps.
#[derive(Serialize, Deserialize)]
struct ListFile {
    changes: Vec<Signed>,
    legacy: Vec<legacy::Signed>,
}

/// What a member-list file held for this member.
#[derive(Debug)]
pub enum Opened {
    /// Changes (of either format).
    List {
        /// Changes of this format.
        changes: Vec<Signed>,
        /// First-format changes.
        legacy: Vec<legacy::Signed>,
    },
    /// Encrypted to others only.
    NotForUs,
    /// Not read: why.
    Refused(&'static str),
}

/// The file name of a member's list: the first 32 hex digits of their signing key.
pub fn list_name(key: &[u8; 32]) -> String {
    format!("{}.age", &hex(key)[..32])
}

/// The member-list file for `team`: every change kept, encrypted to every current member. A
/// first-format list is written in that format, so that older versions still read it.
pub fn seal_list(team: &Team) -> Result<Vec<u8>> {
    let plain = zeroize::Zeroizing::new(match team.root {
        Some(_) => {
            let mut p = LIST_MAGIC.to_vec();
            let file = ListFile {
                changes: team.signed(),
                legacy: team.legacy(),
            };
            p.extend(postcard::to_stdvec(&file).map_err(encode_error)?);
            p
        }
        None => postcard::to_stdvec(&team.legacy()).map_err(encode_error)?,
    });
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

fn encode_error(e: postcard::Error) -> Error {
    Error::Other(format!("cannot encode the member list: {e}"))
}

/// Opens a member-list file with `identity`, within bounds checked before age parses
/// anything: the file's size, its age header's size and stanza count, the plaintext's size
/// and the number of changes.
pub fn open_list(bytes: &[u8], identity: &age::x25519::Identity) -> Opened {
    if bytes.is_empty() {
        // What the remote's reader passes for a file over its bounds (or unreadable).
        return Opened::Refused("it is empty, larger than 4 MiB, or past what one round reads");
    }
    if bytes.len() > MAX_MEMBERS_LEN {
        return Opened::Refused("it is larger than 4 MiB");
    }
    if age_header::check(bytes).is_err() {
        return Opened::Refused("its age header is larger than any jeton writes");
    }
    let Ok(decryptor) = age::Decryptor::new_buffered(bytes) else {
        return Opened::Refused("it is not an age file");
    };
    let mut stream = match decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)) {
        Ok(s) => s,
        Err(age::DecryptError::NoMatchingKeys) => return Opened::NotForUs,
        Err(_) => return Opened::Refused("it fails decryption"),
    };
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    let read = (stream.by_ref())
        .take(MAX_MEMBERS_LEN as u64 + 1)
        .read_to_end(&mut plain);
    if read.is_err() {
        return Opened::Refused("it fails decryption");
    }
    if plain.len() > MAX_MEMBERS_LEN {
        return Opened::Refused("it holds more than 4 MiB");
    }
    let parsed = match plain.strip_prefix(LIST_MAGIC) {
        Some(rest) => match postcard::take_from_bytes::<ListFile>(rest) {
            Ok((f, [])) => Some((f.changes, f.legacy)),
            _ => None,
        },
        None => match postcard::take_from_bytes::<Vec<legacy::Signed>>(&plain) {
            Ok((v, [])) => Some((Vec::new(), v)),
            _ => None,
        },
    };
    match parsed {
        Some((c, l)) if c.len() > MAX_CHANGES || l.len() > MAX_CHANGES => {
            Opened::Refused("it holds more changes than jeton reads")
        }
        Some((changes, legacy)) => Opened::List { changes, legacy },
        None => Opened::Refused("it does not decode"),
    }
}

/// Every change in the member-list files addressed to `identity`, and what the others were:
/// `(file name, why)` for files not read (`None`: not addressed to us).
#[derive(Debug, Default)]
pub struct Lists {
    /// Changes of this format.
    pub changes: Vec<Signed>,
    /// First-format changes.
    pub legacy: Vec<legacy::Signed>,
    /// Files addressed to this member, by name.
    pub read: Vec<String>,
    /// Files not read: (name, why; `None` when addressed to others only).
    pub skipped: Vec<(String, Option<&'static str>)>,
}

/// Reads every member-list file.
pub fn read_lists(files: &[Incoming], identity: &age::x25519::Identity) -> Lists {
    let mut out = Lists::default();
    for f in files {
        match open_list(&f.bytes, identity) {
            Opened::List { changes, legacy } => {
                out.changes.extend(changes);
                out.legacy.extend(legacy);
                out.read.push(f.name.clone());
            }
            Opened::NotForUs => out.skipped.push((f.name.clone(), None)),
            Opened::Refused(why) => out.skipped.push((f.name.clone(), Some(why))),
        }
    }
    out
}

/// The member (current or removed) whose name a member-list file bears.
fn owner<'a>(team: &'a Team, file: &str) -> Option<&'a super::members::Card> {
    let prefix = file.strip_suffix(".age").unwrap_or(file);
    (team.members.iter().map(|(k, m)| (k, &m.card)))
        .chain(team.removed.iter().map(|(k, r)| (k, &r.card)))
        .find(|(k, _)| hex(&k[..]).get(..32) == Some(prefix))
        .map(|(_, c)| c)
}

/// The member a member-list file's name points to, for messages.
fn named(team: &Team, file: &str) -> String {
    match owner(team, file) {
        Some(c) => format!("members/{file} (by {})", c.name),
        None => format!("members/{file} (not a member's name)"),
    }
}

/// The evidence of the files [`read_lists`] skipped. A member's file sealed before this member
/// was added (or after they were removed) is not worth a word.
pub fn list_evidence(team: &Team, lists: &Lists) -> Vec<Evidence> {
    (lists.skipped.iter())
        .filter(|(file, why)| why.is_some() || owner(team, file).is_none())
        .map(|(file, why)| {
            let (kind, text) = match why {
                None => (
                    "not for us",
                    format!("{} is not addressed to you: skipped", named(team, file)),
                ),
                Some(why) => (
                    "refused",
                    format!("{} was not read: {why}", named(team, file)),
                ),
            };
            Evidence {
                fact: fact(&[b"list", &team.id, file.as_bytes(), kind.as_bytes()]),
                text,
            }
        })
        .collect()
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
    let mut bytes = Vec::with_capacity(replica.bytes.len() + REPLICA_HEAD);
    bytes.extend_from_slice(REPLICA_MAGIC);
    bytes.extend_from_slice(&key.verifying_key().to_bytes());
    bytes.extend_from_slice(&sig.to_bytes());
    bytes.extend_from_slice(&replica.bytes);
    Incoming {
        name: replica.name,
        bytes,
    }
}

/// The author of a signed replica whose signature holds.
fn author(team: &Team, f: &Incoming) -> Option<[u8; 32]> {
    let b = &f.bytes;
    if b.len() < REPLICA_HEAD || &b[..8] != REPLICA_MAGIC {
        return None;
    }
    let key: [u8; 32] = b[8..40].try_into().ok()?;
    let sig = Signature::from_slice(&b[40..REPLICA_HEAD]).ok()?;
    VerifyingKey::from_bytes(&key)
        .ok()?
        .verify_strict(
            &replica_message(&team.id, &f.name, &b[REPLICA_HEAD..]),
            &sig,
        )
        .ok()?;
    Some(key)
}

/// Whether a vault file is under one of the team's epoch keys (judged by its commitment; a
/// file whose header does not parse is left for the round to judge).
fn under_team_key(team: &Team, bytes: &[u8]) -> bool {
    let Ok(file) = VaultFile::parse(bytes) else {
        return true;
    };
    file.header.vault_id == team.id
        && team.keys.values().any(|k| {
            crate::vault::commitment_of(&k.key(), &file.header.vault_id) == file.header.commitment
        })
}

/// What [`admit_replicas`] decided.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Replicas the round may merge, stripped of their signature.
    pub files: Vec<Incoming>,
    /// Who signed each of them, by file name.
    pub authors: std::collections::BTreeMap<String, [u8; 32]>,
    /// Replicas left out: (file name, what to report).
    pub left_out: Vec<(String, Evidence)>,
    /// Admins whose replica is under a key this member does not have.
    pub admins_unread: Vec<[u8; 32]>,
}

/// The replicas a round may merge: those signed by a writer or an admin (or by this member:
/// its own replica) under one of the team's keys. Every other file is left out, naming who
/// wrote it.
pub fn admit_replicas(
    team: &Team,
    me: &[u8; 32],
    files: Vec<Incoming>,
    read_before: &std::collections::BTreeMap<crate::sync::DeviceId, [u8; 32]>,
) -> Admitted {
    let mut out = Admitted::default();
    for f in files {
        // A file read before under this name, unchanged, by a member who may still write: the
        // round does not read it again (its header, with a nonce of its own, is the one read
        // then from that device), so its signature is not checked again.
        let claimed: Option<[u8; 32]> = f.bytes.get(8..40).and_then(|k| k.try_into().ok());
        let allowed = claimed.is_some_and(|a| &a == me || team.role_of(&a) >= Some(Role::Writer));
        if allowed
            && f.bytes.len() > REPLICA_HEAD
            && &f.bytes[..8] == REPLICA_MAGIC
            && let Some((device, _)) = crate::sync::round::parse_name(&f.name)
            && VaultFile::peek_header(&f.bytes[REPLICA_HEAD..]).is_ok_and(|(_, h)| {
                read_before.get(&device) == Some(&crate::sync::round::sha256(h))
            })
        {
            out.files.push(Incoming {
                name: f.name,
                bytes: f.bytes[REPLICA_HEAD..].to_vec(),
            });
            continue;
        }
        let a = author(team, &f);
        let role = a.and_then(|a| team.role_of(&a));
        let why: (&str, String) = match a {
            Some(a) if &a == me || role >= Some(Role::Writer) => {
                if &a == me || under_team_key(team, &f.bytes[REPLICA_HEAD..]) {
                    out.authors.insert(f.name.clone(), a);
                    out.files.push(Incoming {
                        name: f.name,
                        bytes: f.bytes[REPLICA_HEAD..].to_vec(),
                    });
                    continue;
                }
                if role == Some(Role::Admin) {
                    out.admins_unread.push(a);
                }
                let text = format!(
                    "ignored replicas/{} by {}: it is under a key the member list you can read does not hold",
                    f.name,
                    team.who(&a)
                );
                ("foreign key", text)
            }
            Some(a) => {
                let why = match role {
                    Some(r) => format!("a {}", r.label()),
                    None if team.removed.contains_key(&a) => "removed from the team".into(),
                    None => "not a member".into(),
                };
                let text = format!(
                    "ignored the changes in replicas/{} by {} ({why})",
                    f.name,
                    team.who(&a)
                );
                ("role", text)
            }
            None => (
                "unsigned",
                format!(
                    "ignored replicas/{}: it is not signed by a member of team {}",
                    f.name, team.name
                ),
            ),
        };
        let author = a.unwrap_or([0; 32]);
        let e = Evidence {
            fact: fact(&[
                b"replica",
                &team.id,
                f.name.as_bytes(),
                &author,
                why.0.as_bytes(),
            ]),
            text: why.1,
        };
        out.left_out.push((f.name, e));
    }
    out
}

/// The evidence for a replica a writer signed that the round could not take (damaged, under
/// another device's name, or older than one read before).
pub fn refused_replica(team: &Team, name: &str, author: Option<[u8; 32]>) -> Evidence {
    let who = author.map_or_else(|| "a member".to_owned(), |a| team.who(&a));
    Evidence {
        fact: fact(&[b"replica", &team.id, name.as_bytes(), b"refused"]),
        text: format!(
            "ignored replicas/{name} by {who}: it fails its checks (damaged, another device's, or older than one read before)"
        ),
    }
}
