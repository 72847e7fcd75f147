//! The scripted front ends (SPEC §8): `exec`, `inject`, and the git, cargo and docker credential
//! helpers. Each one turns its input into one read-only [`IntegrationRequest`], so a single
//! unlock (or a single round trip to the agent) answers everything it needs, and an agent holding
//! the key serves it exactly like the CLI would.

pub mod cargo;
pub mod docker;
pub mod exec;
pub mod git_credential;
pub mod inject;
pub mod url;

use crate::entry::{Entry, Status, validate_name};
use crate::secret::Token;
use crate::time::Time;
use crate::vault::{Vault, not_found};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The URL scheme of a reference to an entry: `jeton://NAME` or `jeton://NAME#field`.
pub const REFERENCE_SCHEME: &str = "jeton://";

/// A reference to a secret (or one field) of an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Entry name.
    pub name: String,
    /// A field instead of the secret (`username`, `url`, ...).
    pub field: Option<String>,
}

impl Reference {
    /// Parses `NAME` or `NAME#field` (without the `jeton://` prefix), validating both.
    pub fn parse(s: &str) -> Result<Reference> {
        let (name, field) = match s.split_once('#') {
            Some((n, f)) => (n, Some(f.to_owned())),
            None => (s, None),
        };
        match crate::team::split(name) {
            Some((team, name)) => {
                crate::team::validate_name(team)?;
                validate_name(name)?;
            }
            None => validate_name(name)?,
        }
        if let Some(f) = &field {
            Entry::check_field(f)?;
        }
        Ok(Reference {
            name: name.to_owned(),
            field,
        })
    }

    /// Parses `jeton://NAME[#field]`; `None` when `s` is not a jeton reference at all.
    pub fn parse_url(s: &str) -> Option<Result<Reference>> {
        s.strip_prefix(REFERENCE_SCHEME).map(Reference::parse)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{REFERENCE_SCHEME}{}", self.name)?;
        if let Some(field) = &self.field {
            write!(f, "#{field}")?;
        }
        Ok(())
    }
}

/// What a credential helper asks for: the entry whose url best matches this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialQuery {
    /// `scheme://host[:port][/path]`.
    pub url: String,
    /// Compare paths too (git's `credential.useHttpPath`, cargo index URLs).
    pub match_path: bool,
    /// The account the tool asks about, if it said.
    pub username: Option<String>,
}

/// Read-only lookups for the integrations.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IntegrationRequest {
    /// The values of several references, all or nothing: an unknown entry fails with exit 4,
    /// a disabled or revoked one with exit 5, before any value is returned.
    Resolve(Vec<Reference>),
    /// The active entry whose url best matches (exit 4 when none, exit 5 when the best match
    /// is disabled or revoked).
    FindCredential(CredentialQuery),
    /// Active entries that have a url, for `docker-credential-jeton list`.
    ListCredentials,
}

/// A resolved reference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Resolved {
    /// What was asked.
    pub reference: Reference,
    /// Its value.
    #[serde(with = "crate::secret::serde_token")]
    pub value: Token,
    /// When the value is an entry's secret: its expiry at its provider.
    #[serde(default)]
    pub expires_at: Option<Time>,
}

/// A credential for a helper.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Credential {
    /// Entry name.
    pub name: String,
    /// The entry's url.
    pub url: String,
    /// The entry's username.
    pub username: Option<String>,
    /// The token.
    #[serde(with = "crate::secret::serde_token")]
    pub secret: Token,
    /// The token's expiry at its provider.
    pub expires_at: Option<Time>,
}

/// An entry with a url, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    /// Entry name.
    pub name: String,
    /// The entry's url.
    pub url: String,
    /// The entry's username.
    pub username: Option<String>,
}

/// What a lookup found.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IntegrationResponse {
    /// One value per reference, in order.
    Values(Vec<Resolved>),
    /// The matching credential.
    Credential(Credential),
    /// Entries with a url.
    Credentials(Vec<CredentialInfo>),
}

/// Refuses an entry that is not active (exit 5), naming what to do.
pub fn require_active(e: &Entry) -> Result<()> {
    match &e.status {
        Status::Active => Ok(()),
        Status::Disabled { since } => Err(Error::Unavailable(format!(
            "entry '{}' is disabled since {} (enable it with `jeton enable {}`)",
            e.name,
            crate::time::rfc3339(*since),
            e.name
        ))),
        Status::Revoked { at, .. } => Err(Error::Unavailable(format!(
            "entry '{}' was revoked at {}; its secret is gone",
            e.name,
            crate::time::rfc3339(*at)
        ))),
    }
}

/// Runs one lookup. Never changes the vault.
pub fn execute(vault: &Vault, request: IntegrationRequest) -> Result<IntegrationResponse> {
    match request {
        IntegrationRequest::Resolve(refs) => resolve(vault, refs).map(IntegrationResponse::Values),
        IntegrationRequest::FindCredential(q) => {
            find_credential(vault, &q).map(IntegrationResponse::Credential)
        }
        IntegrationRequest::ListCredentials => Ok(IntegrationResponse::Credentials(
            vault
                .payload
                .entries
                .values()?
                .filter(|e| e.status == Status::Active)
                .filter_map(|e| {
                    Some(CredentialInfo {
                        name: e.name.clone(),
                        url: e.url.clone()?,
                        username: e.username.clone(),
                    })
                })
                .collect(),
        )),
    }
}

fn resolve(vault: &Vault, refs: Vec<Reference>) -> Result<Vec<Resolved>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let e = vault.entry(&r.name)?;
        require_active(e)?;
        let field = r.field.as_deref().unwrap_or("secret");
        let value = match field {
            "contact" => e
                .contact
                .clone()
                .or_else(|| vault.payload.settings.default_contact.clone()),
            f => e.field(f)?,
        }
        .ok_or_else(|| Error::NotFound(format!("entry '{}' has no {field}", r.name)))?;
        let expires_at = if field == "secret" {
            e.expires_at
        } else {
            None
        };
        out.push(Resolved {
            reference: r,
            value: Token::new(value),
            expires_at,
        });
    }
    Ok(out)
}

fn find_credential(vault: &Vault, q: &CredentialQuery) -> Result<Credential> {
    let target = url::Target::parse(&q.url)
        .ok_or_else(|| Error::Usage(format!("cannot understand the URL '{}'", q.url)))?;
    let mut best: Option<(u32, &Entry)> = None;
    let mut best_inactive: Option<(u32, &Entry)> = None;
    for e in vault.payload.entries.values()? {
        let Some(score) = e.url.as_deref().and_then(|u| {
            target.score(
                u,
                q.match_path,
                e.username.as_deref(),
                q.username.as_deref(),
            )
        }) else {
            continue;
        };
        let slot = if e.status == Status::Active {
            &mut best
        } else {
            &mut best_inactive
        };
        if slot.is_none_or(|(s, _)| score > s) {
            *slot = Some((score, e));
        }
    }
    match (best, best_inactive) {
        (Some((_, e)), _) => Ok(Credential {
            name: e.name.clone(),
            url: e.url.clone().unwrap_or_default(),
            username: e.username.clone(),
            secret: e.secret.clone().ok_or_else(|| not_found(&e.name))?,
            expires_at: e.expires_at,
        }),
        (None, Some((_, e))) => require_active(e).and_then(|()| Err(not_found(&e.name))),
        (None, None) => Err(Error::NotFound(format!(
            "no active entry has a url matching {}",
            target.describe()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("github/ci#username").unwrap();
        assert_eq!(r.name, "github/ci");
        assert_eq!(r.field.as_deref(), Some("username"));
        assert_eq!(r.to_string(), "jeton://github/ci#username");
        assert!(Reference::parse("a#nope").is_err());
        assert!(Reference::parse("../x").is_err());
        assert!(Reference::parse_url("https://x").is_none());
        assert!(Reference::parse_url("jeton://a").unwrap().is_ok());
    }
}
