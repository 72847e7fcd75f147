//! Secrets over time: rotation with a capped history, rollback, disable and enable, and
//! revocation that wipes the secret and its history.

use super::{Holders, LifecycleResponse, Version, live_entry};
use crate::entry::{Change, SecretInput};
use crate::entry::{Entry, Status};
use crate::secret::Token;
use crate::time::{Time, rfc3339};
use crate::vault::Vault;
use crate::{Error, Result};

/// Wipes the oldest history items beyond `limit` (the tokens zeroize on drop). Returns how many.
pub fn trim_history(e: &mut Entry, limit: u32) -> usize {
    e.trim_history(limit)
}

/// Makes `new` the current secret of `name`; the current one joins the history by the vault's
/// history rule ([`Vault::retire`]). Returns how many history items were wiped.
fn retire_current(vault: &mut Vault, name: &str, new: Token, now: Time) -> Result<usize> {
    let e = vault.entry_mut(name)?;
    let set_at = e.secret_set_at;
    let old = e.secret.replace(new);
    vault.retire(name, old, set_at, now)
}

pub(super) fn rotate(
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
    let dropped = retire_current(vault, name, new, now)?;
    let e = vault.entry_mut(name)?;
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
    vault.audit(now, "rotate", Some(name), detail);
    Ok(response)
}

pub(super) fn history(vault: &Vault, name: String, reveal: bool) -> Result<LifecycleResponse> {
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

pub(super) fn rollback(
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
    let item = vault.entry_mut(name)?.history.remove(n - v);
    let dropped = retire_current(vault, name, item.secret, now)?;
    let e = vault.entry_mut(name)?;
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

pub(super) fn set_enabled(
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

pub(super) fn revoke(
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
    let id = e.id;
    let wiped = wiped + crate::issuer::record::wipe(vault, &id, now)?;
    vault.forget_previous_on_save();
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

#[cfg(test)]
mod tests {
    use crate::lifecycle::testing::{rotate_to, vault_with};
    use crate::lifecycle::{LifecycleRequest, execute};

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
    fn revoke_wipes_and_forgets_the_previous_file() {
        let mut v = vault_with("a", "first-secret");
        rotate_to(&mut v, "a", "second-secret", 200);
        v.saved();
        let r = LifecycleRequest::Revoke {
            name: "a".into(),
            reason: Some("leak".into()),
        };
        execute(&mut v, r, 300).unwrap();
        assert!(v.forgets_previous());
        let plain = v.payload.encode().unwrap();
        for s in ["first-secret", "second-secret"] {
            assert!(!plain.windows(s.len()).any(|w| w == s.as_bytes()));
        }
        let err = execute(&mut v, LifecycleRequest::Disable { name: "a".into() }, 301).unwrap_err();
        assert_eq!(err.exit_code(), 5);
    }
}
