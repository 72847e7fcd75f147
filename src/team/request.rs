//! Team requests, run against the personal vault (locally or in the agent): the identity
//! signs and decrypts here and never leaves; team vault bytes and remote files come and go.

use super::exchange::{self, members_file};
use super::members::{Card, Role};
use super::resolve::Team;
use super::{
    Membership, follow_epoch, mark_exposed, membership, new_vault, open_vault, own_card,
    sign_replica, store_membership, validate_name,
};
use crate::share::{contact, hex, identity};
use crate::sync::round::{self, Incoming, Round};
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// A team operation on the unlocked personal vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TeamRequest {
    /// Make a team with this vault's identity as its admin; returns its first files.
    Create {
        /// The team's name (also its local name).
        team: String,
    },
    /// Add a contact to a team, or change their role.
    Add {
        /// The team.
        team: String,
        /// The contact.
        contact: String,
        /// Their role.
        role: Role,
    },
    /// Remove a member: a new epoch, and every entry marked exposed to them.
    Remove {
        /// The team.
        team: String,
        /// The member's name or contact name.
        member: String,
        /// The local team vault's bytes.
        #[serde(with = "crate::sync::round::base64_bytes")]
        vault: Vec<u8>,
    },
    /// Join a team whose remote files were read; refused unless a contact added us.
    Join {
        /// The local name to give it (`None`: the team's own name).
        name: Option<String>,
        /// The remote's `members/` files.
        members: Vec<Incoming>,
        /// The remote's `replicas/` files.
        replicas: Vec<Incoming>,
    },
    /// One sync round of a team vault.
    Round {
        /// The team.
        team: String,
        /// The local team vault's bytes.
        #[serde(with = "crate::sync::round::base64_bytes")]
        vault: Vec<u8>,
        /// The remote's `members/` files.
        members: Vec<Incoming>,
        /// The remote's `replicas/` files.
        replicas: Vec<Incoming>,
        /// Go on although the remote went back in time.
        accept_rollback: bool,
    },
    /// The key and role for running entry requests on a team vault.
    Open {
        /// The team.
        team: String,
    },
    /// The members of one team or of every team.
    List {
        /// One team.
        team: Option<String>,
    },
    /// Carry a first-format member list over to the current format (an admin).
    Upgrade {
        /// The team.
        team: String,
    },
    /// Forget a team locally.
    Leave {
        /// The team.
        team: String,
    },
    /// Sign audit events just written to a team vault by this member (a writer or admin):
    /// returns their `author` events ([`super::author`]).
    Sign {
        /// The team.
        team: String,
        /// The events.
        events: Vec<crate::vault::AuditEvent>,
    },
}

impl TeamRequest {
    /// True when the request may change the personal vault.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            TeamRequest::Open { .. } | TeamRequest::List { .. } | TeamRequest::Sign { .. }
        )
    }
}

/// One member as `team list` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberView {
    /// Name.
    pub name: String,
    /// `reader`, `writer`, `admin`, or `removed`.
    pub role: String,
    /// Fingerprint of their keys.
    pub fingerprint: String,
    /// This vault's own identity.
    pub you: bool,
    /// Their signing key, hex: it signs their replicas and log lines.
    #[serde(default)]
    pub key: String,
}

/// One team as `team list` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TeamView {
    /// Local name.
    pub name: String,
    /// Team id, hex.
    pub id: String,
    /// Current key epoch.
    pub epoch: u64,
    /// Members, then removed members.
    pub members: Vec<MemberView>,
}

/// What a team request produced. Vault bytes are the team vault file to write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TeamResponse {
    /// A new team: its vault file and the first files to publish.
    Created {
        /// The team id, hex.
        id: String,
        /// The team vault file.
        #[serde(with = "crate::sync::round::base64_bytes")]
        vault: Vec<u8>,
        /// Files to publish: `(folder, file)`.
        publish: Vec<(String, Incoming)>,
    },
    /// The member list changed: files to publish (and the vault file, when it changed).
    Changed {
        /// What happened, for the user.
        message: String,
        /// The team vault file, when it changed.
        #[serde(with = "opt_bytes")]
        vault: Option<Vec<u8>>,
        /// Files to publish.
        publish: Vec<(String, Incoming)>,
    },
    /// Joined: the local name, role, who added us, and the files.
    Joined {
        /// Local name.
        name: String,
        /// Team id, hex.
        id: String,
        /// Our role.
        role: Role,
        /// The contact who added us, and their fingerprint.
        added_by: (String, String),
        /// The team vault file.
        #[serde(with = "crate::sync::round::base64_bytes")]
        vault: Vec<u8>,
        /// Files to publish.
        publish: Vec<(String, Incoming)>,
        /// Replicas and changes ignored, one line each.
        ignored: Vec<String>,
    },
    /// A round: the vault file when it changed, what to publish, what was ignored.
    Rounded {
        /// The round.
        round: Box<Round>,
        /// The team vault file, when it changed.
        #[serde(with = "opt_bytes")]
        vault: Option<Vec<u8>>,
        /// Files to publish.
        publish: Vec<(String, Incoming)>,
        /// Replicas and changes ignored, one line each.
        ignored: Vec<String>,
    },
    /// The team vault's key (hex) and our role there.
    Opened {
        /// Team id.
        #[serde(with = "crate::secret::serde_key")]
        key: crate::secret::Key,
        /// Team id, hex.
        id: String,
        /// Our role.
        role: Role,
    },
    /// Teams.
    Listed(Vec<TeamView>),
    /// Done.
    Done(String),
    /// The `author` events of [`TeamRequest::Sign`].
    Signed(Vec<crate::vault::AuditEvent>),
}

mod opt_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match b {
            Some(b) => s.serialize_some(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Runs one team request against the personal vault.
pub fn execute(vault: &mut Vault, request: TeamRequest, now: Time) -> Result<TeamResponse> {
    identity::ensure(vault, now)?;
    let keys = identity::keys(vault)?;
    let me = keys.signing.verifying_key().to_bytes();
    match request {
        TeamRequest::Create { team: name } => {
            validate_name(&name)?;
            if membership(vault, &name).is_ok() {
                return Err(Error::Exists(format!(
                    "you are already in a team named '{name}'"
                )));
            }
            let card = own_card(&keys, &card_name(vault));
            let (team, _) = Team::create(&name, card, &keys.signing)?;
            let mut tv = new_vault(&team, now)?;
            sign_all(&mut tv, &team, &keys)?;
            let r = round::round(&mut tv, vec![], false, now)?;
            let mut publish = vec![members_file(&team, &me)?];
            publish.extend(r.replica.map(|x| {
                (
                    crate::sync::remote::REPLICAS.to_owned(),
                    sign_replica(&team.id, x, &keys.signing),
                )
            }));
            let bytes = tv.seal(0)?;
            let mut m = Membership::new(team.id);
            m.keep(&team, &me)?;
            store_membership(vault, &name, &m, now)?;
            vault.audit(now, "team", Some(&name), "team created");
            Ok(TeamResponse::Created {
                id: hex(&team.id),
                vault: bytes,
                publish,
            })
        }
        TeamRequest::Add {
            team: name,
            contact: who,
            role,
        } => {
            let mut m = membership(vault, &name)?;
            let mut team = m.team()?;
            let c = contact::find(vault, &who)?;
            let (Some(age), Some(signing_key)) = (c.age_recipient.clone(), c.signing_key) else {
                return Err(Error::Usage(format!(
                    "contact '{who}' has no jeton card (an age recipient and a signing key): ask them for `jeton identity` output and add it with `jeton contact add`"
                )));
            };
            let card = Card {
                name: c.name.clone(),
                age_recipient: age,
                signing_key,
            };
            let upgraded = team.root.is_none();
            team.add(card, role, &keys.signing)?;
            m.keep(&team, &me)?;
            store_membership(vault, &name, &m, now)?;
            vault.audit(
                now,
                "team",
                Some(&name),
                format!("{who} added as {}", role.label()),
            );
            Ok(TeamResponse::Changed {
                message: format!(
                    "{who} is now {} {} of team {name}{}",
                    if role == Role::Admin { "an" } else { "a" },
                    role.label(),
                    upgraded_note(upgraded)
                ),
                vault: None,
                publish: vec![members_file(&team, &me)?],
            })
        }
        TeamRequest::Remove {
            team: name,
            member,
            vault: bytes,
        } => {
            let mut m = membership(vault, &name)?;
            let mut team = m.team()?;
            let key = find_member(vault, &team, &member)?;
            if key == me {
                return Err(Error::Usage(
                    "you cannot remove yourself: use `jeton team leave`, or have another admin remove you".into(),
                ));
            }
            let removed_name = team.who(&key);
            let upgraded = team.root.is_none();
            team.remove(&key, &keys.signing)?;
            let mut tv = open_vault(bytes, &m)?;
            let mark = tv.audit_written();
            follow_epoch(&mut tv, &team)?;
            let exposed = mark_exposed(&mut tv, &removed_name, now)?;
            let signer = super::author::Signer {
                team: team.id,
                key: keys.signing.clone(),
            };
            // One `exposed` line per entry is a marker for `check`: signing each would halve
            // how many the capped log keeps. The removal itself is signed in the member list.
            super::author::sign_written(&mut tv, mark, &signer, &[super::EXPOSED])?;
            let bytes = tv.seal(0)?;
            m.keep(&team, &me)?;
            store_membership(vault, &name, &m, now)?;
            vault.audit(now, "team", Some(&name), format!("{removed_name} removed"));
            Ok(TeamResponse::Changed {
                message: format!(
                    "{removed_name} removed from team {name}; new key epoch {}; {exposed} entries they could read are marked exposed until rotated (see `jeton check`){}",
                    team.epoch(),
                    upgraded_note(upgraded)
                ),
                vault: Some(bytes),
                publish: vec![members_file(&team, &me)?],
            })
        }
        TeamRequest::Upgrade { team: name } => {
            let mut m = membership(vault, &name)?;
            let mut team = m.team()?;
            if team.root.is_some() {
                return Ok(TeamResponse::Changed {
                    message: format!(
                        "the member list of team {name} is already in the current format"
                    ),
                    vault: None,
                    publish: Vec::new(),
                });
            }
            team.upgrade(&keys.signing)?;
            m.keep(&team, &me)?;
            store_membership(vault, &name, &m, now)?;
            vault.audit(now, "team", Some(&name), "member list upgraded");
            Ok(TeamResponse::Changed {
                message: format!(
                    "the member list of team {name} is now in the current format; members read it once they sync"
                ),
                vault: None,
                publish: vec![members_file(&team, &me)?],
            })
        }
        TeamRequest::Join {
            name,
            members,
            replicas,
        } => {
            let j = exchange::join(vault, &keys, name, members, replicas, now)?;
            Ok(TeamResponse::Joined {
                name: j.name,
                id: hex(&j.team.id),
                role: j.role,
                added_by: j.added_by,
                vault: j.vault,
                publish: j.publish,
                ignored: j.ignored,
            })
        }
        TeamRequest::Round {
            team: name,
            vault: bytes,
            members,
            replicas,
            accept_rollback,
        } => {
            let r = exchange::round(
                vault,
                &keys,
                &name,
                bytes,
                (members, replicas),
                accept_rollback,
                now,
            )?;
            Ok(TeamResponse::Rounded {
                round: Box::new(r.round),
                vault: r.vault,
                publish: r.publish,
                ignored: r.ignored,
            })
        }
        TeamRequest::Open { team: name } => {
            let m = membership(vault, &name)?;
            let role = m.role.ok_or_else(|| {
                Error::Unlock(format!("you are no longer a member of team {name}"))
            })?;
            Ok(TeamResponse::Opened {
                key: m.key(),
                id: hex(&m.team),
                role,
            })
        }
        TeamRequest::List { team } => {
            let names = match team {
                Some(t) => {
                    membership(vault, &t)?;
                    vec![t]
                }
                None => super::teams(vault)?,
            };
            let mut out = Vec::new();
            for n in names {
                let t = membership(vault, &n)?.team()?;
                out.push(view(&n, &t, &me));
            }
            Ok(TeamResponse::Listed(out))
        }
        TeamRequest::Sign { team, events } => {
            let m = membership(vault, &team)?;
            let role = m.role.ok_or_else(|| {
                Error::Unlock(format!("you are no longer a member of team {team}"))
            })?;
            super::check_access(&team, role, true)?;
            let signer = super::author::Signer {
                team: m.team,
                key: keys.signing,
            };
            signer.sign(&events).map(TeamResponse::Signed)
        }
        TeamRequest::Leave { team } => {
            super::forget(vault, &team, now)?;
            vault.audit(now, "team", Some(&team), "left");
            Ok(TeamResponse::Done(format!(
                "left team {team} here (its admins still list you until they remove you)"
            )))
        }
    }
}

/// Signs every line of a team vault just made here (before any round merges others' lines).
fn sign_all(tv: &mut Vault, team: &Team, keys: &identity::Keys) -> Result<()> {
    let signer = super::author::Signer {
        team: team.id,
        key: keys.signing.clone(),
    };
    super::author::sign_written(tv, 0, &signer, &[])
}

fn card_name(vault: &Vault) -> String {
    vault
        .payload
        .settings
        .default_contact
        .clone()
        .unwrap_or_else(|| "admin".into())
}

fn upgraded_note(upgraded: bool) -> &'static str {
    if upgraded {
        "; the member list is now in the current format"
    } else {
        ""
    }
}

fn find_member(vault: &Vault, team: &Team, who: &str) -> Result<[u8; 32]> {
    if let Some((k, _)) = team.members.iter().find(|(_, m)| m.card.name == who) {
        return Ok(*k);
    }
    if let Ok(c) = contact::find(vault, who)
        && let Some(k) = c.signing_key
        && team.members.contains_key(&k)
    {
        return Ok(k);
    }
    Err(Error::NotFound(format!(
        "'{who}' is not a member of team {} (see `jeton team list {}`)",
        team.name, team.name
    )))
}

fn view(name: &str, team: &Team, me: &[u8; 32]) -> TeamView {
    let fp = |c: &Card| identity::fingerprint(Some(&c.age_recipient), Some(&c.signing_key), None);
    let mut members: Vec<MemberView> = team
        .members
        .iter()
        .map(|(k, m)| MemberView {
            name: m.card.name.clone(),
            role: m.role.label().into(),
            fingerprint: fp(&m.card),
            you: k == me,
            key: hex(k),
        })
        .collect();
    members.extend(team.removed.iter().map(|(k, r)| MemberView {
        name: r.card.name.clone(),
        role: "removed".into(),
        fingerprint: fp(&r.card),
        you: false,
        key: hex(k),
    }));
    TeamView {
        name: name.into(),
        id: hex(&team.id),
        epoch: team.epoch(),
        members,
    }
}
