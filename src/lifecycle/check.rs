//! What `jeton check` finds: expired, expiring or unrotated tokens, missing contacts and scopes,
//! over-broad scopes, revoked tokens still held by others, weak KDF and loose permissions.

use super::{BROAD_SCOPES, Finding, FindingKind, Holders};
use crate::Result;
use crate::entry::{Entry, ISSUER_PREFIX, Status};
use crate::format::SlotKind;
use crate::issuer::pipeline::step_text;
use crate::issuer::record::record_name;
use crate::issuer::{CallEnd, CreateCall, Record, Step};
use crate::store::Store;
use crate::time::{Time, rfc3339};
use crate::vault::Vault;
use std::collections::BTreeMap;

/// True for a scope that grants too much: a wildcard, or one of [`BROAD_SCOPES`] as the whole
/// scope or as a segment between `:`, `/` and `.` (`admin:org`, `write:*`, `*:*`).
pub fn is_broad_scope(scope: &str) -> bool {
    let s = scope.trim().to_ascii_lowercase();
    s.contains('*')
        || BROAD_SCOPES.contains(&s.as_str())
        || s.split([':', '/', '.'])
            .any(|seg| BROAD_SCOPES.contains(&seg))
}

/// A rough, human span: `3 d`, `5 h`, `12 min`, `40 s`.
pub fn rough_span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    }
}

fn when(t: Time, now: Time) -> String {
    if t <= now {
        format!("{} ({} ago)", rfc3339(t), rough_span(now - t))
    } else {
        format!("{} (in {})", rfc3339(t), rough_span(t - now))
    }
}

/// The findings about entries and the key slot (SPEC §5 `check`), in name order, less those
/// acknowledged (`check ack`).
pub fn check(vault: &Vault, within: i64, now: Time) -> Result<Vec<Finding>> {
    check_acknowledged(vault, within, now).map(|(findings, _)| findings)
}

/// [`check`], and how many findings acknowledgements hid.
pub fn check_acknowledged(vault: &Vault, within: i64, now: Time) -> Result<(Vec<Finding>, usize)> {
    let mut out = all_findings(vault, within, now)?;
    let hidden = super::ack::hide_acknowledged(vault, &mut out, now)?;
    Ok((out, hidden))
}

/// The rotations at the issuer in progress, by the name of their issuer record.
fn unfinished_runs(vault: &Vault) -> Result<BTreeMap<String, Record>> {
    let mut runs = BTreeMap::new();
    vault.payload.entries.scan_prefix(ISSUER_PREFIX, |r| {
        let record: Record =
            serde_json::from_str(r.note.as_deref().unwrap_or("{}")).unwrap_or_default();
        if record.run.is_some() {
            runs.insert(r.name.clone(), record);
        }
        Ok(())
    })?;
    Ok(runs)
}

/// What a rotation at the issuer left half-done: where it stopped and what is live.
fn unfinished(record: &Record) -> Option<String> {
    let run = record.run.as_ref()?;
    let step = run.plan.get(run.next)?;
    let at = format!(
        "a rotation at the issuer stopped at step {}/{} ({})",
        run.next + 1,
        run.plan.len(),
        step_text(step, record.recipe.as_ref())
    );
    let done = &run.plan[..run.next];
    Some(if run.next == 0 {
        match &run.create {
            CreateCall::Made {
                ended: CallEnd::Refused,
                ..
            } => format!("{at}: the issuer refused the new credential"),
            c if c.may_have_made() => {
                format!("{at}: a new credential may have been made at the issuer and never stored")
            }
            _ => at,
        }
    } else if !done.contains(&Step::RevokeOld) {
        format!("{at}: two credentials are live, the old one and the new")
    } else {
        format!("{at}: the old credential is revoked; the rest is not done")
    })
}

/// True for an entry that has no scopes by nature: a one-time code seed (an `otpauth://` URI,
/// or a bare seed in `NAME/otp` or `NAME/totp`), or an account's password (tagged `password`,
/// or with its one-time codes in `NAME/otp` or `NAME/totp`).
fn scopeless(vault: &Vault, e: &Entry) -> bool {
    let seed_name = e.name.ends_with("/otp") || e.name.ends_with("/totp");
    let seed = e
        .secret
        .as_ref()
        .is_some_and(|s| crate::otp::holds_seed(s.expose_secret(), seed_name));
    let password = e.tags.iter().any(|t| t.eq_ignore_ascii_case("password"))
        || crate::otp::companions(&e.name)
            .iter()
            .any(|c| vault.payload.entries.contains_key(c));
    seed || password
}

fn all_findings(vault: &Vault, within: i64, now: Time) -> Result<Vec<Finding>> {
    let horizon = now.saturating_add(within);
    let default_contact = vault.payload.settings.default_contact.is_some();
    let runs = unfinished_runs(vault)?;
    let mut out = Vec::new();
    vault.payload.entries.scan(|e| {
        if crate::entry::is_internal(&e.name) {
            return Ok(());
        }
        let migrated = crate::migrate::is_migrated(e);
        let mut found = |kind, reason: String, fix: String| {
            out.push(Finding {
                entry: Some(e.name.clone()),
                kind,
                reason,
                fix,
                migrated,
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
        if let Some(leak) = crate::scan::leaks::of(vault, e)? {
            let first = match leak.first == leak.last {
                true => String::new(),
                false => format!("; first found {}", when(leak.first, now)),
            };
            found(
                FindingKind::Leaked,
                format!(
                    "its current secret was found by `jeton scan` at {}, {}{first}",
                    crate::text::Shown::line(&leak.place),
                    when(leak.last, now)
                ),
                format!(
                    "rotate it now and remove the copy (`jeton rotate --at-issuer --leaked {n}` where a recipe is set, else at its issuer and `jeton rotate {n}`)"
                ),
            );
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
        if let Some(reason) = runs.get(&record_name(&e.id)).and_then(unfinished) {
            found(
                FindingKind::RotationUnfinished,
                reason,
                format!("finish it: `jeton rotate {n} --resume`"),
            );
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
        if e.scopes.is_empty() && !scopeless(vault, e) {
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
    // A team vault has no slot at all: its members' own vaults carry their recovery keys.
    if !crate::recovery::has_slot(vault) && !vault.header().slots.is_empty() {
        out.push(Finding {
            entry: None,
            kind: FindingKind::NoRecoveryKey,
            reason: "no recovery key: if the passphrase is forgotten, the vault is lost".into(),
            fix: "`jeton recovery new`, then write the key down and keep it apart from the vault"
                .into(),
            migrated: false,
        });
    }
    sync_findings(vault, now, &mut out)?;
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
                migrated: false,
            });
        }
    }
    Ok(out)
}

/// How long a device may stay silent before `check` reports it.
pub const SILENT_DEVICE: i64 = 30 * 86_400;

/// A synced vault's open conflicts, and devices not heard from in [`SILENT_DEVICE`].
fn sync_findings(vault: &Vault, now: Time, out: &mut Vec<Finding>) -> Result<()> {
    use crate::sync::round;
    for (name, (at, what)) in round::open_conflicts(vault)? {
        let fix = if what.starts_with("another entry is also named") {
            format!(
                "keep both under their names, or rename or remove one (`jeton rename {name} NEW`), then `jeton sync resolve {name}`"
            )
        } else {
            format!(
                "check the entry (`jeton show {name}`, `jeton history {name}`), fix what needs it, then `jeton sync resolve {name}`"
            )
        };
        out.push(Finding {
            entry: Some(name),
            kind: FindingKind::SyncConflict,
            reason: format!("{} ({})", crate::text::Shown::line(&what), when(at, now)),
            fix,
            migrated: false,
        });
    }
    for (name, who) in crate::team::exposed(vault)? {
        out.push(Finding {
            entry: Some(name.clone()),
            kind: FindingKind::Exposed,
            reason: format!(
                "readable by {who}, who was removed from the team, and not rotated since"
            ),
            fix: format!("rotate it at its issuer and here (`jeton rotate {name}`)"),
            migrated: false,
        });
    }
    for d in round::devices(vault)?.unwrap_or_default() {
        if !d.this && now.saturating_sub(d.heard_at) > SILENT_DEVICE {
            out.push(Finding {
                entry: None,
                kind: FindingKind::SilentDevice,
                reason: format!(
                    "sync device {} last published {}: lost, switched off, or its replicas are being withheld",
                    &d.id[..16],
                    when(d.heard_at, now)
                ),
                fix: "sync on that device; if it is gone, rotate what it held".into(),
                migrated: false,
            });
        }
    }
    Ok(())
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
        migrated: false,
    };
    let mut out: Vec<Finding> = store
        .loose_permissions()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::testing::vault_with;
    use crate::lifecycle::{DEFAULT_CHECK_WITHIN, LifecycleRequest, execute};

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
    fn rough_spans() {
        assert_eq!(rough_span(59), "59 s");
        assert_eq!(rough_span(-3_600 * 5), "5 h");
        assert_eq!(rough_span(86_400 * 3 + 5), "3 d");
        assert_eq!(rough_span(3_599), "59 min");
    }
}
