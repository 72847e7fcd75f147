//! git's credential helper protocol (`git help credential`): attributes as `key=value` lines on
//! stdin, the answer as `key=value` lines on stdout.
//!
//! Config: `git config --global credential.helper '!jeton git-credential'`. `get` answers with
//! the active entry whose url matches the protocol and host (and the path when git sends one,
//! i.e. with `credential.useHttpPath`). `store` and `erase` change nothing: git sends `erase`
//! after any failed authentication, and that must never delete a token.

use super::{Credential, CredentialQuery};
use crate::secret::SecretText;
use crate::{Error, Result};

/// What git said about the credential it wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitInput {
    /// `https`, `http`, ...
    pub protocol: Option<String>,
    /// `host[:port]`.
    pub host: Option<String>,
    /// Repository path, sent with `credential.useHttpPath`.
    pub path: Option<String>,
    /// The user git already knows, if any.
    pub username: Option<String>,
    /// A full URL (git may send this instead of the parts).
    pub url: Option<String>,
}

/// Parses git's attribute lines, up to a blank line or the end. Unknown keys are ignored.
pub fn parse_input(text: &str) -> GitInput {
    let mut input = GitInput::default();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = Some(value.to_owned());
        match key {
            "protocol" => input.protocol = value,
            "host" => input.host = value,
            "path" => input.path = value,
            "username" => input.username = value,
            "url" => input.url = value,
            _ => {}
        }
    }
    input
}

impl GitInput {
    /// The lookup to run; `None` when git gave no protocol and host to match on.
    pub fn query(&self) -> Option<CredentialQuery> {
        let (url, match_path) = match (&self.protocol, &self.host) {
            (Some(p), Some(h)) => match &self.path {
                Some(path) => (format!("{p}://{h}/{path}"), true),
                None => (format!("{p}://{h}"), false),
            },
            _ => (self.url.clone()?, false),
        };
        Some(CredentialQuery {
            url,
            match_path,
            username: self.username.clone(),
        })
    }
}

/// The answer lines for a found credential. Refuses values git would misread (a newline or NUL
/// would let a token inject attributes).
pub fn answer(cred: &Credential, input: &GitInput) -> Result<SecretText> {
    let secret = cred.secret.expose_secret();
    let username = cred.username.as_deref().or(input.username.as_deref());
    let bad = |s: &str| s.contains(['\n', '\0']);
    if bad(secret) || username.is_some_and(bad) {
        return Err(Error::Usage(format!(
            "entry '{}' has a newline or NUL in its secret or username; git cannot take it",
            cred.name
        )));
    }
    let mut out = SecretText::with_capacity(secret.len() + username.map_or(0, str::len) + 96);
    if let Some(u) = username {
        out.push_str("username=");
        out.push_str(u);
        out.push_str("\n");
    }
    out.push_str("password=");
    out.push_str(secret);
    out.push_str("\n");
    if let Some(t) = cred.expires_at {
        out.push_str(&format!("password_expiry_utc={t}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Token;

    #[test]
    fn protocol() {
        let i = parse_input("protocol=https\nhost=example.com:8443\nusername=bob\n\nignored=1\n");
        let q = i.query().unwrap();
        assert_eq!(q.url, "https://example.com:8443");
        assert!(!q.match_path);
        assert_eq!(q.username.as_deref(), Some("bob"));
        let i = parse_input("protocol=https\nhost=h\npath=org/repo.git\n");
        assert!(i.query().unwrap().match_path);
        assert!(parse_input("host=h\n").query().is_none());
        let cred = Credential {
            name: "n".into(),
            url: "https://h".into(),
            username: Some("alice".into()),
            secret: Token::new("s3cret".into()),
            expires_at: Some(1_800_000_000),
        };
        assert_eq!(
            answer(&cred, &i).unwrap().as_bytes(),
            b"username=alice\npassword=s3cret\npassword_expiry_utc=1800000000\n"
        );
        let evil = Credential {
            secret: Token::new("x\nusername=evil".into()),
            ..cred
        };
        assert!(answer(&evil, &i).is_err());
    }
}
