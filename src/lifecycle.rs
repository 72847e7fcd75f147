//! Looking after tokens over time (SPEC intro items 3, 5 and 6; §4; §5): rotation with a capped
//! history and rollback, disable and enable, revocation that wipes, the findings of `check`, the
//! audit log, and the vault settings (default contact, history limit).
//!
//! Revocation wipes the secret and its whole history from the payload and asks the saver to
//! write the vault twice, so that `vault.jeton.bak` (the previous generation) does not keep the
//! wiped values either ([`Vault::scrub_backup_on_save`]).

use crate::entry::{Entry, HistoryItem, Status};
use crate::format::SlotKind;
use crate::request::{Change, SecretInput};
use crate::secret::Token;
use crate::store::Store;
use crate::time::{Time, rfc3339};
use crate::vault::{AuditEvent, Vault};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

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
}

impl FindingKind {
    /// The stable name, as in JSON.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Expired => "expired",
            FindingKind::Expiring => "expiring",
            FindingKind::RotationOverdue => "rotation_overdue",
            FindingKind::RotationDue => "rotation_due",
            FindingKind::NoContact => "no_contact",
            FindingKind::NoScopes => "no_scopes",
            FindingKind::BroadScope => "broad_scope",
            FindingKind::RevokedStillHeld => "revoked_still_held",
            FindingKind::WeakKdf => "weak_kdf",
            FindingKind::LoosePermissions => "loose_permissions",
            FindingKind::NoRecoveryKey => "no_recovery_key",
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
    },
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
        LifecycleRequest::Revoke { name, reason } => revoke(vault, &name, reason, now),
        LifecycleRequest::Check { within } => Ok(LifecycleResponse::Findings {
            checked: vault.payload.entries.len(),
            findings: check(vault, within, now)?,
        }),
        LifecycleRequest::Log { name } => Ok(LifecycleResponse::Log(log(vault, name.as_deref()))),
        LifecycleRequest::ConfigGet => Ok(LifecycleResponse::Config {
            config: config_view(vault),
            changed: None,
            wiped: 0,
        }),
        LifecycleRequest::ConfigSet(s) => config_set(vault, s, now),
    }
}

fn revoked_error(name: &str, at: Time) -> Error {
    Error::Unavailable(format!(
        "entry '{name}' was revoked at {}; its secret is gone (remove the tombstone with `jeton rm {name}`)",
        rfc3339(at)
    ))
}

/// Refuses a revoked entry (exit 5).
fn live_entry<'a>(vault: &'a Vault, name: &str) -> Result<&'a Entry> {
    let e = vault.entry(name)?;
    match e.status {
        Status::Revoked { at, .. } => Err(revoked_error(name, at)),
        _ => Ok(e),
    }
}

/// Wipes the oldest history items beyond `limit` (the tokens zeroize on drop). Returns how many.
pub fn trim_history(e: &mut Entry, limit: u32) -> usize {
    let limit = limit as usize;
    let excess = e.history.len().saturating_sub(limit);
    e.history.drain(..excess);
    excess
}

fn retire_current(e: &mut Entry, new: Token, now: Time) {
    let set_at = e.secret_set_at;
    if let Some(old) = e.secret.replace(new) {
        e.history.push(HistoryItem {
            secret: old,
            created_at: set_at,
            retired_at: now,
        });
    }
}

fn rotate(
    vault: &mut Vault,
    name: &str,
    secret: SecretInput,
    expires_at: Change<Time>,
    now: Time,
) -> Result<LifecycleResponse> {
    let e = live_entry(vault, name)?;
    let holders = Holders::of(e);
    let new = secret.resolve()?;
    if e.secret.as_ref() == Some(&new) {
        return Err(Error::Usage(format!(
            "the new secret of '{name}' is the same as the current one; nothing was changed"
        )));
    }
    let limit = vault.payload.settings.history_limit;
    let e = vault.entry_mut(name)?;
    retire_current(e, new, now);
    let dropped = trim_history(e, limit);
    e.secret_set_at = now;
    e.last_rotated_at = Some(now);
    let expiry_kept = match expires_at {
        Change::Keep => e.expires_at.is_some(),
        Change::Set(t) => {
            e.expires_at = Some(t);
            false
        }
        Change::Clear => {
            e.expires_at = None;
            false
        }
    };
    e.revision += 1;
    e.updated_at = now;
    let response = LifecycleResponse::Replaced {
        name: name.to_owned(),
        restored: None,
        history_len: e.history.len(),
        dropped,
        expires_at: e.expires_at,
        expiry_kept,
        disabled: matches!(e.status, Status::Disabled { .. }),
        holders,
    };
    let mut detail = format!("secret rotated; {} previous kept", e.history.len());
    if let Some(t) = e.expires_at.filter(|_| !expiry_kept) {
        detail.push_str(&format!("; expires {}", rfc3339(t)));
    }
    if dropped > 0 {
        vault.scrub_backup_on_save();
    }
    vault.audit(now, "rotate", Some(name), detail);
    Ok(response)
}

fn history(vault: &Vault, name: String, reveal: bool) -> Result<LifecycleResponse> {
    let e = vault.entry(&name)?;
    let shown = |t: &Token| reveal.then(|| t.clone());
    let current = e.secret.as_ref().map(|s| Version {
        number: 0,
        created_at: e.secret_set_at,
        retired_at: None,
        length: s.char_len(),
        secret: shown(s),
    });
    let previous = e.history.iter().rev().enumerate().map(|(i, h)| Version {
        number: i + 1,
        created_at: h.created_at,
        retired_at: Some(h.retired_at),
        length: h.secret.char_len(),
        secret: shown(&h.secret),
    });
    Ok(LifecycleResponse::History {
        versions: current.into_iter().chain(previous).collect(),
        name,
    })
}

fn rollback(
    vault: &mut Vault,
    name: &str,
    version: Option<usize>,
    now: Time,
) -> Result<LifecycleResponse> {
    let e = live_entry(vault, name)?;
    let holders = Holders::of(e);
    let n = e.history.len();
    if n == 0 {
        return Err(Error::NotFound(format!(
            "'{name}' has no previous secret to roll back to"
        )));
    }
    let v = version.unwrap_or(1);
    if v == 0 || v > n {
        return Err(Error::NotFound(format!(
            "'{name}' has no version {v}: versions 1 to {n} (see `jeton history {name}`)"
        )));
    }
    let limit = vault.payload.settings.history_limit;
    let e = vault.entry_mut(name)?;
    let item = e.history.remove(n - v);
    retire_current(e, item.secret, now);
    let dropped = trim_history(e, limit);
    e.secret_set_at = item.created_at;
    e.last_rotated_at = (item.created_at != e.created_at).then_some(item.created_at);
    e.revision += 1;
    e.updated_at = now;
    let response = LifecycleResponse::Replaced {
        name: name.to_owned(),
        restored: Some(v),
        history_len: e.history.len(),
        dropped,
        expires_at: e.expires_at,
        expiry_kept: e.expires_at.is_some(),
        disabled: matches!(e.status, Status::Disabled { .. }),
        holders,
    };
    vault.audit(
        now,
        "rollback",
        Some(name),
        format!(
            "restored version {v} (set {}); the replaced secret went to history",
            rfc3339(item.created_at)
        ),
    );
    Ok(response)
}

fn set_enabled(
    vault: &mut Vault,
    name: &str,
    enable: bool,
    now: Time,
) -> Result<LifecycleResponse> {
    let e = live_entry(vault, name)?;
    let already = matches!(e.status, Status::Active) == enable;
    if already {
        return Ok(LifecycleResponse::StatusChanged {
            name: name.to_owned(),
            status: e.status.clone(),
            changed: false,
            wiped: 0,
            holders: Holders::default(),
        });
    }
    let e = vault.entry_mut(name)?;
    e.status = if enable {
        Status::Active
    } else {
        Status::Disabled { since: now }
    };
    e.revision += 1;
    e.updated_at = now;
    let status = e.status.clone();
    let (action, detail) = if enable {
        ("enable", "entry enabled")
    } else {
        ("disable", "entry disabled: get and exec refuse it")
    };
    vault.audit(now, action, Some(name), detail);
    Ok(LifecycleResponse::StatusChanged {
        name: name.to_owned(),
        status,
        changed: true,
        wiped: 0,
        holders: Holders::default(),
    })
}

fn revoke(
    vault: &mut Vault,
    name: &str,
    reason: Option<String>,
    now: Time,
) -> Result<LifecycleResponse> {
    let e = vault.entry(name)?;
    let holders = Holders::of(e);
    if matches!(e.status, Status::Revoked { .. }) {
        return Ok(LifecycleResponse::StatusChanged {
            name: name.to_owned(),
            status: e.status.clone(),
            changed: false,
            wiped: 0,
            holders,
        });
    }
    let e = vault.entry_mut(name)?;
    let wiped = usize::from(e.secret.is_some()) + e.history.len();
    // Dropping the tokens zeroizes them.
    e.secret = None;
    e.history.clear();
    e.history.shrink_to_fit();
    e.status = Status::Revoked {
        at: now,
        reason: reason.clone(),
    };
    e.revision += 1;
    e.updated_at = now;
    let status = e.status.clone();
    vault.scrub_backup_on_save();
    let detail = match &reason {
        Some(r) => format!("revoked ({r}); secrets wiped: {wiped}"),
        None => format!("revoked; secrets wiped: {wiped}"),
    };
    vault.audit(now, "revoke", Some(name), detail);
    Ok(LifecycleResponse::StatusChanged {
        name: name.to_owned(),
        status,
        changed: true,
        wiped,
        holders,
    })
}

/// True for a scope that grants too much: a wildcard, or one of [`BROAD_SCOPES`] as the whole
/// scope or as a segment between `:`, `/` and `.` (`admin:org`, `write:*`, `*:*`).
pub fn is_broad_scope(scope: &str) -> bool {
    let s = scope.trim().to_ascii_lowercase();
    s.contains('*')
        || BROAD_SCOPES.contains(&s.as_str())
        || s.split([':', '/', '.'])
            .any(|seg| BROAD_SCOPES.contains(&seg))
}

/// A rough, human span: `3d`, `5h`, `12m`, `40s`.
pub fn rough_span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

fn when(t: Time, now: Time) -> String {
    if t <= now {
        format!("{} ({} ago)", rfc3339(t), rough_span(now - t))
    } else {
        format!("{} (in {})", rfc3339(t), rough_span(t - now))
    }
}

/// The findings about entries and the key slot (SPEC §5 `check`), in name order.
pub fn check(vault: &Vault, within: i64, now: Time) -> Result<Vec<Finding>> {
    let horizon = now.saturating_add(within);
    let default_contact = vault.payload.settings.default_contact.is_some();
    let mut out = Vec::new();
    vault.payload.entries.scan(|e| {
        let mut found = |kind, reason: String, fix: String| {
            out.push(Finding {
                entry: Some(e.name.clone()),
                kind,
                reason,
                fix,
            });
        };
        let n = &e.name;
        if let Status::Revoked { at, .. } = e.status {
            let holders = Holders::of(e);
            let unnotified: Vec<&str> = holders
                .shared_with
                .iter()
                .filter(|(_, shared)| *shared < at)
                .map(|(c, _)| c.as_str())
                .collect();
            if !unnotified.is_empty() {
                found(
                    FindingKind::RevokedStillHeld,
                    format!(
                        "revoked {} but still held by {}",
                        rfc3339(at),
                        unnotified.join(", ")
                    ),
                    format!(
                        "send a revocation notice (`jeton share --revocation {n} --to CONTACT`), or drop the tombstone with `jeton rm {n}`"
                    ),
                );
            }
            return Ok(());
        }
        if e.status == Status::Active {
            if let Some(t) = e.expires_at {
                if t <= now {
                    found(
                        FindingKind::Expired,
                        format!("expired {}", when(t, now)),
                        format!("get a new token and `jeton rotate {n} --expires WHEN`"),
                    );
                } else if t <= horizon {
                    found(
                        FindingKind::Expiring,
                        format!("expires {}", when(t, now)),
                        format!("get a new token and `jeton rotate {n} --expires WHEN`"),
                    );
                }
            }
            if let Some(t) = e.rotation_due_at() {
                let every = e
                    .rotate_every
                    .map(crate::time::show_span)
                    .unwrap_or_default();
                if t <= now {
                    found(
                        FindingKind::RotationOverdue,
                        format!("rotation every {every} was due {}", when(t, now)),
                        format!("`jeton rotate {n}` and update what uses it"),
                    );
                } else if t <= horizon {
                    found(
                        FindingKind::RotationDue,
                        format!("rotation every {every} is due {}", when(t, now)),
                        format!("`jeton rotate {n}` and update what uses it"),
                    );
                }
            }
        }
        if e.contact.is_none() && !default_contact {
            found(
                FindingKind::NoContact,
                "no technical contact and no vault default".into(),
                format!(
                    "`jeton edit {n} --contact 'Name <mail>'`, or `jeton config set contact 'Name <mail>'`"
                ),
            );
        }
        if e.scopes.is_empty() {
            found(
                FindingKind::NoScopes,
                "no scopes recorded".into(),
                format!("record what it may do: `jeton edit {n} --add-scope S`"),
            );
        }
        let broad: Vec<&str> = e
            .scopes
            .iter()
            .filter(|s| is_broad_scope(s))
            .map(String::as_str)
            .collect();
        if !broad.is_empty() {
            found(
                FindingKind::BroadScope,
                format!("over-broad scope: {}", broad.join(", ")),
                "issue a token with only the scopes it needs, then `jeton rotate` and `jeton edit --rm-scope`".into(),
            );
        }
        Ok(())
    })?;
    if !crate::recovery::has_slot(vault) {
        out.push(Finding {
            entry: None,
            kind: FindingKind::NoRecoveryKey,
            reason: "no recovery key: if the passphrase is forgotten, the vault is lost".into(),
            fix: "`jeton recovery new`, then write the key down and keep it apart from the vault"
                .into(),
        });
    }
    for slot in vault.header().slots.iter() {
        if slot.kind == SlotKind::Passphrase && slot.kdf.is_weak() {
            out.push(Finding {
                entry: None,
                kind: FindingKind::WeakKdf,
                reason: format!(
                    "passphrase KDF Argon2id m={}MiB t={} is under RFC 9106's recommendation (64 MiB, t=3)",
                    slot.kdf.memory_kib / 1024,
                    slot.kdf.iterations
                ),
                fix: "`jeton passwd` (defaults: 256 MiB, t=3), or `jeton passwd --kdf-target 1s`".into(),
            });
        }
    }
    Ok(out)
}

/// Loose permissions on the vault file, its backup and its directory (SPEC §2: files 0600,
/// directory 0700). The front end that owns the file adds these to [`check`]'s findings.
pub fn file_findings(store: &Store) -> Vec<Finding> {
    use std::os::unix::fs::MetadataExt;
    let loose = |reason: String, fix: String| Finding {
        entry: None,
        kind: FindingKind::LoosePermissions,
        reason,
        fix,
    };
    let mut out: Vec<Finding> = store
        .permission_warning()
        .map(|w| loose(w, format!("chmod 600 {}", store.path().display())))
        .into_iter()
        .collect();
    let bak = store.backup_path();
    if let Ok(m) = std::fs::metadata(&bak)
        && m.mode() & 0o077 != 0
    {
        out.push(loose(
            format!(
                "{} is readable by other users (mode {:o})",
                bak.display(),
                m.mode() & 0o777
            ),
            format!("chmod 600 {}", bak.display()),
        ));
    }
    if let Some(dir) = store.path().parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(m) = std::fs::metadata(dir)
        && m.mode() & 0o022 != 0
    {
        out.push(loose(
            format!(
                "{} is writable by other users (mode {:o}): they could replace the vault",
                dir.display(),
                m.mode() & 0o777
            ),
            format!("chmod 700 {}", dir.display()),
        ));
    }
    out
}

/// The audit events, oldest first; for one entry, its events under every name it had.
pub fn log(vault: &Vault, name: Option<&str>) -> Vec<AuditEvent> {
    let events = &vault.payload.audit;
    let Some(name) = name else {
        return events.clone();
    };
    let mut names = vec![name.to_owned()];
    let mut picked: Vec<AuditEvent> = Vec::new();
    for ev in events.iter().rev() {
        let Some(subject) = ev.subject.as_deref() else {
            continue;
        };
        let renamed_from = (ev.action == "rename")
            .then(|| ev.detail.strip_prefix("renamed from "))
            .flatten();
        if names.iter().any(|n| n == subject) {
            picked.push(ev.clone());
            if let Some(from) = renamed_from {
                names.push(from.to_owned());
            }
        } else if let Some(from) = renamed_from {
            // Earlier events under `from` belong to the entry renamed away, not to this one.
            names.retain(|n| n != from);
        }
    }
    picked.reverse();
    picked
}

fn config_view(vault: &Vault) -> ConfigView {
    let s = &vault.payload.settings;
    ConfigView {
        contact: s.default_contact.clone(),
        history_limit: s.history_limit,
    }
}

fn config_set(vault: &mut Vault, setting: Setting, now: Time) -> Result<LifecycleResponse> {
    let mut wiped = 0;
    let changed = match setting {
        Setting::Contact(c) => {
            let c = c.map(|c| c.trim().to_owned()).filter(|c| !c.is_empty());
            let msg = match &c {
                Some(c) => format!("default contact set to '{c}'"),
                None => "default contact removed".to_owned(),
            };
            if vault.payload.settings.default_contact == c {
                None
            } else {
                vault.payload.settings.default_contact = c;
                Some(msg)
            }
        }
        Setting::HistoryLimit(n) => {
            if n > MAX_HISTORY_LIMIT {
                return Err(Error::Usage(format!(
                    "history_limit must be between 0 and {MAX_HISTORY_LIMIT}"
                )));
            }
            if vault.payload.settings.history_limit == n {
                None
            } else {
                vault.payload.settings.history_limit = n;
                for e in vault.payload.entries.values_mut()? {
                    let cut = trim_history(e, n);
                    if cut > 0 {
                        wiped += cut;
                        e.revision += 1;
                        e.updated_at = now;
                    }
                }
                if wiped > 0 {
                    vault.scrub_backup_on_save();
                }
                Some(format!(
                    "history_limit set to {n}; {wiped} old secrets wiped"
                ))
            }
        }
    };
    if let Some(msg) = &changed {
        vault.audit(now, "config", None, msg.clone());
    }
    Ok(LifecycleResponse::Config {
        config: config_view(vault),
        changed,
        wiped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broad_scopes() {
        for s in [
            "*",
            "admin",
            "ALL",
            "root",
            "*:*",
            "write:*",
            "admin:org",
            "repo.*",
            "full_access",
        ] {
            assert!(is_broad_scope(s), "{s}");
        }
        for s in [
            "repo",
            "read:org",
            "read_api",
            "workflow",
            "administrator-read",
            "packages:read",
        ] {
            assert!(!is_broad_scope(s), "{s}");
        }
    }

    fn vault_with(name: &str, secret: &str) -> Vault {
        let cheap = crate::kdf::KdfParams {
            memory_kib: 8192,
            iterations: 1,
            lanes: 1,
        };
        let mut v = Vault::create(&crate::secret::Passphrase::new("p".into()), cheap, 100).unwrap();
        let new = crate::request::NewEntry {
            name: name.into(),
            secret: SecretInput::Value(Token::new(secret.into())),
            scopes: vec!["read".into()],
            url: None,
            username: None,
            issuer: None,
            contact: Some("Ops".into()),
            used_by: vec![],
            tags: vec![],
            note: None,
            expires_at: None,
            rotate_every: None,
        };
        crate::request::execute(&mut v, crate::request::Request::Add(Box::new(new)), 100).unwrap();
        v
    }

    fn rotate_to(v: &mut Vault, name: &str, secret: &str, now: Time) {
        let r = LifecycleRequest::Rotate {
            name: name.into(),
            secret: SecretInput::Value(Token::new(secret.into())),
            expires_at: Change::Keep,
        };
        execute(v, r, now).unwrap();
    }

    #[test]
    fn history_is_capped_and_rollback_loses_nothing() {
        let mut v = vault_with("a", "s0");
        v.payload.settings.history_limit = 2;
        for (i, s) in ["s1", "s2", "s3"].iter().enumerate() {
            rotate_to(&mut v, "a", s, 200 + i as i64);
        }
        let e = v.entry("a").unwrap();
        let kept: Vec<&str> = e.history.iter().map(|h| h.secret.expose_secret()).collect();
        assert_eq!(kept, ["s1", "s2"]);
        assert_eq!(e.last_rotated_at, Some(202));
        let r = LifecycleRequest::Rollback {
            name: "a".into(),
            version: Some(2),
        };
        execute(&mut v, r, 300).unwrap();
        let e = v.entry("a").unwrap();
        assert_eq!(e.secret.as_ref().unwrap().expose_secret(), "s1");
        assert_eq!(e.secret_set_at, 200);
        let kept: Vec<&str> = e.history.iter().map(|h| h.secret.expose_secret()).collect();
        assert_eq!(kept, ["s2", "s3"]);
    }

    #[test]
    fn revoke_wipes_and_asks_for_a_backup_scrub() {
        let mut v = vault_with("a", "first-secret");
        rotate_to(&mut v, "a", "second-secret", 200);
        v.take_scrub_backup();
        let r = LifecycleRequest::Revoke {
            name: "a".into(),
            reason: Some("leak".into()),
        };
        execute(&mut v, r, 300).unwrap();
        assert!(v.take_scrub_backup());
        let plain = v.payload.encode().unwrap();
        for s in ["first-secret", "second-secret"] {
            assert!(!plain.windows(s.len()).any(|w| w == s.as_bytes()));
        }
        let err = execute(&mut v, LifecycleRequest::Disable { name: "a".into() }, 301).unwrap_err();
        assert_eq!(err.exit_code(), 5);
    }

    #[test]
    fn revoked_entries_shared_before_revocation_are_reported() {
        let mut v = vault_with("a", "x");
        let share = |at| crate::entry::ShareRecord {
            contact: "bob".into(),
            bundle_id: "b".into(),
            at,
        };
        v.entry_mut("a").unwrap().shared_with.push(share(150));
        let r = LifecycleRequest::Revoke {
            name: "a".into(),
            reason: None,
        };
        execute(&mut v, r, 300).unwrap();
        let kinds = |v: &Vault| -> Vec<FindingKind> {
            check(v, DEFAULT_CHECK_WITHIN, 400)
                .unwrap()
                .into_iter()
                .map(|f| f.kind)
                .filter(|k| !matches!(k, FindingKind::WeakKdf | FindingKind::NoRecoveryKey))
                .collect()
        };
        assert_eq!(kinds(&v), [FindingKind::RevokedStillHeld]);
        v.entry_mut("a").unwrap().shared_with.push(share(350));
        assert_eq!(kinds(&v), []);
    }

    #[test]
    fn log_follows_renames() {
        let mut v = vault_with("a", "x");
        let rename = crate::request::Request::Rename {
            from: "a".into(),
            to: "b".into(),
        };
        crate::request::execute(&mut v, rename, 200).unwrap();
        rotate_to(&mut v, "b", "y", 300);
        let actions: Vec<String> = log(&v, Some("b")).into_iter().map(|e| e.action).collect();
        assert_eq!(actions, ["add", "rename", "rotate"]);
        rotate_to(&mut v, "b", "z", 350);
        let new = crate::request::NewEntry {
            name: "a".into(),
            secret: SecretInput::Value(Token::new("n".into())),
            scopes: vec![],
            url: None,
            username: None,
            issuer: None,
            contact: None,
            used_by: vec![],
            tags: vec![],
            note: None,
            expires_at: None,
            rotate_every: None,
        };
        crate::request::execute(&mut v, crate::request::Request::Add(Box::new(new)), 400).unwrap();
        // The new `a` does not inherit the events of the old one, now called `b`.
        let a: Vec<Time> = log(&v, Some("a")).into_iter().map(|e| e.at).collect();
        assert_eq!(a, [400]);
    }

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

    #[test]
    fn rough_spans() {
        assert_eq!(rough_span(59), "59s");
        assert_eq!(rough_span(-3_600 * 5), "5h");
        assert_eq!(rough_span(86_400 * 3 + 5), "3d");
    }
}
