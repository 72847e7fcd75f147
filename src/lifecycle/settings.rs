//! The audit log and the vault settings (default contact, history limit).

use super::{ConfigView, LifecycleResponse, MAX_HISTORY_LIMIT, Setting, trim_history};
use crate::time::Time;
use crate::vault::{AuditEvent, Vault};
use crate::{Error, Result};

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

pub(super) fn config_view(vault: &Vault) -> ConfigView {
    let s = &vault.payload.settings;
    ConfigView {
        contact: s.default_contact.clone(),
        history_limit: s.history_limit,
    }
}

pub(super) fn config_set(
    vault: &mut Vault,
    setting: Setting,
    now: Time,
) -> Result<LifecycleResponse> {
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
                    vault.forget_previous_on_save();
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
    use crate::lifecycle::testing::{rotate_to, vault_with};

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
        let new = Box::new(crate::request::NewEntry::bare("a", "n"));
        crate::request::execute(&mut v, crate::request::Request::Add(new), 400).unwrap();
        // The new `a` does not inherit the events of the old one, now called `b`.
        let a: Vec<Time> = log(&v, Some("a")).into_iter().map(|e| e.at).collect();
        assert_eq!(a, [400]);
    }
}
