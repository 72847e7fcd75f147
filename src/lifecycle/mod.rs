//! Looking after tokens over time (SPEC intro items 3, 5 and 6; §4; §5): rotation with a capped
//! history and rollback, disable and enable, revocation that wipes, the findings of `check`, the
//! audit log, and the vault settings (default contact, history limit).
//!
//! Revocation wipes the secret and its whole history from the payload and tells the saver to
//! forget the previous generation, so that `vault.jeton.bak` does not keep the wiped values
//! either ([`Vault::forget_previous_on_save`]).
//!
//! This module holds the requests and responses and dispatches them; `secrets` rotates, rolls
//! back, disables, enables and revokes, `check` finds what needs doing, and `settings` reads the
//! audit log and changes the vault settings.

use crate::entry::{Change, SecretInput};
use crate::entry::{Entry, Status};
use crate::secret::Token;
use crate::time::{Time, rfc3339};
use crate::vault::{AuditEvent, Vault};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

pub mod ack;
mod check;
mod secrets;
mod settings;

pub use check::{check, file_findings, is_broad_scope, rough_span};
pub use secrets::trim_history;
use secrets::{history, revoke, rollback, rotate, set_enabled};
pub use settings::log;
use settings::{config_set, config_view};

/// Largest `history_limit` a vault accepts.
pub const MAX_HISTORY_LIMIT: u32 = 1000;
/// Default `check --within`, in seconds (14 days, SPEC §5).
pub const DEFAULT_CHECK_WITHIN: i64 = 14 * 86_400;
/// Scopes (or scope segments between `:`, `/` and `.`) that grant too much (SPEC §5 `check`).
/// Any scope containing `*` counts too.
pub const BROAD_SCOPES: &[&str] = &[
    "admin",
    "all",
    "root",
    "superuser",
    "sudo",
    "owner",
    "full",
    "full_access",
    "full-access",
];

/// One lifecycle operation on an unlocked vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LifecycleRequest {
    /// A new secret; the current one goes to history.
    Rotate {
        /// Entry name.
        name: String,
        /// The new secret.
        secret: SecretInput,
        /// The new token's expiry (`Keep` leaves the current one).
        expires_at: Change<Time>,
    },
    /// Previous secrets of an entry.
    History {
        /// Entry name.
        name: String,
        /// Include the secrets.
        reveal: bool,
    },
    /// Makes a previous secret current again; the current one goes to history.
    Rollback {
        /// Entry name.
        name: String,
        /// 1 is the previous secret, 2 the one before, ... (default 1).
        version: Option<usize>,
    },
    /// `get`/`exec` refuse the entry until it is enabled.
    Disable {
        /// Entry name.
        name: String,
    },
    /// Undoes `Disable`.
    Enable {
        /// Entry name.
        name: String,
    },
    /// Withdraws the entry for good: the secret and history are wiped, a tombstone stays.
    Revoke {
        /// Entry name.
        name: String,
        /// Why, in the user's words.
        reason: Option<String>,
    },
    /// Findings about the vault's entries and key slot (the file's permissions are the front
    /// end's part: [`file_findings`]).
    Check {
        /// Look this many seconds ahead for expiry and rotation.
        within: i64,
    },
    /// Acknowledges findings of one kind about one entry (`remove`: withdraws that).
    Ack {
        /// Entry name.
        name: String,
        /// The kind of finding.
        kind: FindingKind,
        /// Until when (`None`: for good).
        until: Option<Time>,
        /// Withdraw the acknowledgement instead.
        remove: bool,
    },
    /// Every acknowledgement.
    Acks,
    /// The audit log, oldest first, optionally for one entry (following its renames).
    Log {
        /// Entry name.
        name: Option<String>,
    },
    /// The vault settings.
    ConfigGet,
    /// Changes one vault setting.
    ConfigSet(Setting),
}

impl LifecycleRequest {
    /// True when the request may change the vault.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            LifecycleRequest::History { .. }
                | LifecycleRequest::Check { .. }
                | LifecycleRequest::Acks
                | LifecycleRequest::Log { .. }
                | LifecycleRequest::ConfigGet
        )
    }
}

/// A vault setting and its new value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Setting {
    /// Technical contact for entries that name none (`None` removes it).
    Contact(Option<String>),
    /// Previous secrets kept per entry.
    HistoryLimit(u32),
}

/// Everything known to still hold a copy of an entry's secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holders {
    /// Integrations (`used_by`).
    pub used_by: Vec<String>,
    /// Contacts it was shared with, each once, with the last time.
    pub shared_with: Vec<(String, Time)>,
    /// Who it was received from, if imported.
    pub received_from: Option<String>,
}

impl Holders {
    /// The holders of `e`'s secret.
    pub fn of(e: &Entry) -> Holders {
        let mut shared_with: Vec<(String, Time)> = Vec::new();
        for s in &e.shared_with {
            match shared_with.iter_mut().find(|(c, _)| *c == s.contact) {
                Some((_, at)) => *at = (*at).max(s.at),
                None => shared_with.push((s.contact.clone(), s.at)),
            }
        }
        Holders {
            used_by: e.used_by.clone(),
            shared_with,
            received_from: e.received_from.as_ref().map(|p| p.from.clone()),
        }
    }

    /// True when nobody is recorded.
    pub fn is_empty(&self) -> bool {
        self.used_by.is_empty() && self.shared_with.is_empty() && self.received_from.is_none()
    }
}

/// One version of a secret, for `history`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Version {
    /// 0 is the current secret, 1 the previous one, ...
    pub number: usize,
    /// When it became current.
    pub created_at: Time,
    /// When it was replaced (`None` for the current one).
    pub retired_at: Option<Time>,
    /// Length in characters.
    pub length: usize,
    /// The secret, only when asked for.
    #[serde(with = "crate::secret::serde_opt_token")]
    pub secret: Option<Token>,
}

/// What `check` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The token expired at its provider.
    Expired,
    /// The token expires within the look-ahead.
    Expiring,
    /// The rotation schedule has passed.
    RotationOverdue,
    /// Rotation falls due within the look-ahead.
    RotationDue,
    /// A rotation at the issuer stopped half-way (`rotate --resume` finishes it).
    RotationUnfinished,
    /// No technical contact, and no vault default.
    NoContact,
    /// No scopes recorded.
    NoScopes,
    /// A scope that grants too much.
    BroadScope,
    /// Revoked, but contacts it was shared with were not sent a revocation notice.
    RevokedStillHeld,
    /// The passphrase slot's KDF is under RFC 9106's second recommendation.
    WeakKdf,
    /// Group or others can read (or replace) the vault or its backup.
    LoosePermissions,
    /// No recovery key opens the vault: a forgotten passphrase loses everything.
    NoRecoveryKey,
    /// Changed on two devices at once; nobody has looked since.
    SyncConflict,
    /// A device of a synced vault has not published for 30 days.
    SilentDevice,
    /// A team entry a removed member could read, not rotated since.
    Exposed,
    /// `scan` found the current secret somewhere; not rotated since.
    Leaked,
}

impl FindingKind {
    /// Every kind, in the order `check` documents them.
    pub const ALL: [FindingKind; 16] = [
        FindingKind::Expired,
        FindingKind::Expiring,
        FindingKind::RotationOverdue,
        FindingKind::RotationDue,
        FindingKind::RotationUnfinished,
        FindingKind::NoContact,
        FindingKind::NoScopes,
        FindingKind::BroadScope,
        FindingKind::RevokedStillHeld,
        FindingKind::WeakKdf,
        FindingKind::LoosePermissions,
        FindingKind::NoRecoveryKey,
        FindingKind::SyncConflict,
        FindingKind::SilentDevice,
        FindingKind::Exposed,
        FindingKind::Leaked,
    ];

    /// The kind whose [`FindingKind::label`] is `label`.
    pub fn from_label(label: &str) -> Option<FindingKind> {
        Self::ALL.into_iter().find(|k| k.label() == label)
    }

    /// True for kinds reported about an entry (the others are about the vault or its file,
    /// and cannot be acknowledged per entry).
    pub fn about_entries(self) -> bool {
        !matches!(
            self,
            FindingKind::WeakKdf
                | FindingKind::LoosePermissions
                | FindingKind::NoRecoveryKey
                | FindingKind::SilentDevice
        )
    }

    /// The stable name, as in JSON.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Expired => "expired",
            FindingKind::Expiring => "expiring",
            FindingKind::RotationOverdue => "rotation_overdue",
            FindingKind::RotationDue => "rotation_due",
            FindingKind::RotationUnfinished => "rotation_unfinished",
            FindingKind::NoContact => "no_contact",
            FindingKind::NoScopes => "no_scopes",
            FindingKind::BroadScope => "broad_scope",
            FindingKind::RevokedStillHeld => "revoked_still_held",
            FindingKind::WeakKdf => "weak_kdf",
            FindingKind::LoosePermissions => "loose_permissions",
            FindingKind::NoRecoveryKey => "no_recovery_key",
            FindingKind::SyncConflict => "sync_conflict",
            FindingKind::SilentDevice => "silent_device",
            FindingKind::Exposed => "exposed",
            FindingKind::Leaked => "leaked",
        }
    }
}

/// One problem `check` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The entry, or `None` for the vault itself.
    pub entry: Option<String>,
    /// What kind of problem.
    pub kind: FindingKind,
    /// One line saying what is wrong.
    pub reason: String,
    /// One line saying what to do.
    pub fix: String,
    /// The entry was brought in by `jeton migrate` (its metadata may simply not be filled
    /// in yet).
    #[serde(default)]
    pub migrated: bool,
}

/// The vault settings as shown by `config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigView {
    /// Default technical contact.
    pub contact: Option<String>,
    /// Previous secrets kept per entry.
    pub history_limit: u32,
}

/// What a lifecycle request produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LifecycleResponse {
    /// The secret was replaced (rotate or rollback).
    Replaced {
        /// Entry name.
        name: String,
        /// The version restored (rollback), or `None` (rotate).
        restored: Option<usize>,
        /// Previous secrets now kept.
        history_len: usize,
        /// Oldest versions wiped by the history limit.
        dropped: usize,
        /// The entry's expiry after the change.
        expires_at: Option<Time>,
        /// True when the expiry was left as it was although the secret changed.
        expiry_kept: bool,
        /// The entry is disabled (it stays disabled).
        disabled: bool,
        /// Who still holds the secret that was current before.
        holders: Holders,
    },
    /// The versions of an entry's secret, current first.
    History {
        /// Entry name.
        name: String,
        /// Current (number 0, absent when revoked), then previous ones, newest first.
        versions: Vec<Version>,
    },
    /// Disable, enable or revoke.
    StatusChanged {
        /// Entry name.
        name: String,
        /// The status now.
        status: Status,
        /// False when the entry already had that status (nothing was written).
        changed: bool,
        /// Secrets wiped (revoke: current plus history).
        wiped: usize,
        /// Who holds copies (revoke).
        holders: Holders,
    },
    /// `check` findings; empty when all is well.
    Findings {
        /// Entries looked at.
        checked: usize,
        /// What was found.
        findings: Vec<Finding>,
        /// Findings left out because they were acknowledged (`check ack`).
        #[serde(default)]
        acknowledged: usize,
    },
    /// An acknowledgement was recorded or withdrawn.
    Acked {
        /// Entry name.
        name: String,
        /// The kind of finding.
        kind: FindingKind,
        /// Until when, when recorded with a date.
        until: Option<Time>,
        /// True when it was withdrawn.
        removed: bool,
        /// False when it already was so (nothing was written).
        changed: bool,
    },
    /// Every acknowledgement, by entry then kind.
    Acks(Vec<ack::Ack>),
    /// Audit events, oldest first.
    Log(Vec<AuditEvent>),
    /// The settings (after a change, for `ConfigSet`).
    Config {
        /// The settings.
        config: ConfigView,
        /// What changed, for a change.
        changed: Option<String>,
        /// Old secrets wiped by a lower history limit.
        wiped: usize,
    },
}

/// Runs one lifecycle request.
pub fn execute(
    vault: &mut Vault,
    request: LifecycleRequest,
    now: Time,
) -> Result<LifecycleResponse> {
    match request {
        LifecycleRequest::Rotate {
            name,
            secret,
            expires_at,
        } => rotate(vault, &name, secret, expires_at, now),
        LifecycleRequest::History { name, reveal } => history(vault, name, reveal),
        LifecycleRequest::Rollback { name, version } => rollback(vault, &name, version, now),
        LifecycleRequest::Disable { name } => set_enabled(vault, &name, false, now),
        LifecycleRequest::Enable { name } => set_enabled(vault, &name, true, now),
        LifecycleRequest::Revoke { name, reason } => {
            if let Some(r) = &reason {
                crate::text::check_line("the reason", r)?;
            }
            revoke(vault, &name, reason, now)
        }
        LifecycleRequest::Check { within } => {
            let (findings, acknowledged) = check::check_acknowledged(vault, within, now)?;
            Ok(LifecycleResponse::Findings {
                checked: vault.payload.entries.len() - internal_records(vault)?,
                findings,
                acknowledged,
            })
        }
        LifecycleRequest::Ack {
            name,
            kind,
            until,
            remove,
        } => ack::set(vault, &name, kind, until, remove, now),
        LifecycleRequest::Acks => Ok(LifecycleResponse::Acks(ack::list(vault)?)),
        LifecycleRequest::Log { name } => Ok(LifecycleResponse::Log(log(vault, name.as_deref()))),
        LifecycleRequest::ConfigGet => Ok(LifecycleResponse::Config {
            config: config_view(vault),
            changed: None,
            wiped: 0,
        }),
        LifecycleRequest::ConfigSet(s) => {
            if let Setting::Contact(Some(c)) = &s {
                crate::text::check_line("the contact", c)?;
            }
            config_set(vault, s, now)
        }
    }
}

/// The refusal to change the secret of a revoked entry (exit 5), with the time of the
/// revocation when it is known.
pub fn revoked_error(name: &str, at: Option<Time>) -> Error {
    let when = at
        .map(|t| format!(" at {}", rfc3339(t)))
        .unwrap_or_default();
    Error::Unavailable(format!(
        "entry '{name}' was revoked{when}; its secret is gone (remove the tombstone with `jeton rm {name}`)"
    ))
}

/// Refuses a revoked entry (exit 5).
fn live_entry<'a>(vault: &'a Vault, name: &str) -> Result<&'a Entry> {
    let e = vault.entry(name)?;
    match e.status {
        Status::Revoked { at, .. } => Err(revoked_error(name, Some(at))),
        _ => Ok(e),
    }
}

/// Vaults and requests the tests of the lifecycle modules share.
/// How many entries are internal records (not tokens: see [`crate::entry::ISSUER_PREFIX`]).
fn internal_records(vault: &Vault) -> Result<usize> {
    let mut n = 0;
    for prefix in [
        crate::entry::ISSUER_PREFIX,
        crate::entry::ACK_PREFIX,
        crate::entry::LEAK_PREFIX,
    ] {
        vault.payload.entries.scan_prefix(prefix, |e| {
            n += usize::from(crate::entry::is_internal(&e.name));
            Ok(())
        })?;
    }
    Ok(n)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn vault_with(name: &str, secret: &str) -> Vault {
        let cheap = crate::kdf::KdfParams {
            memory_kib: 8192,
            iterations: 1,
            lanes: 1,
        };
        let mut v = Vault::create(&crate::secret::Passphrase::new("p".into()), cheap, 100).unwrap();
        let new = crate::request::NewEntry {
            scopes: vec!["read".into()],
            contact: Some("Ops".into()),
            ..crate::request::NewEntry::bare(name, secret)
        };
        crate::request::execute(&mut v, crate::request::Request::Add(Box::new(new)), 100).unwrap();
        v
    }

    pub fn rotate_to(v: &mut Vault, name: &str, secret: &str, now: Time) {
        let r = LifecycleRequest::Rotate {
            name: name.into(),
            secret: SecretInput::Value(Token::new(secret.into())),
            expires_at: Change::Keep,
        };
        execute(v, r, now).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_through_serde() {
        let requests = [
            LifecycleRequest::Rotate {
                name: "a".into(),
                secret: SecretInput::Value(Token::new("s".into())),
                expires_at: Change::Set(5),
            },
            LifecycleRequest::History {
                name: "a".into(),
                reveal: true,
            },
            LifecycleRequest::Rollback {
                name: "a".into(),
                version: None,
            },
            LifecycleRequest::Revoke {
                name: "a".into(),
                reason: Some("r".into()),
            },
            LifecycleRequest::Check { within: 60 },
            LifecycleRequest::Ack {
                name: "a".into(),
                kind: FindingKind::NoScopes,
                until: Some(9),
                remove: false,
            },
            LifecycleRequest::Acks,
            LifecycleRequest::Log { name: None },
            LifecycleRequest::ConfigSet(Setting::Contact(Some("Ops".into()))),
            LifecycleRequest::ConfigSet(Setting::HistoryLimit(3)),
        ];
        for r in requests {
            let bytes = postcard::to_stdvec(&r).unwrap();
            let back: LifecycleRequest = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(format!("{r:?}"), format!("{back:?}"));
            let text = serde_json::to_string(&r).unwrap();
            let back: LifecycleRequest = serde_json::from_str(&text).unwrap();
            assert_eq!(format!("{r:?}"), format!("{back:?}"));
            assert_eq!(r.writes(), back.writes());
        }
    }
}
