//! The Docker credential-helper protocol (`docker-credential-jeton get|store|erase|list|version`),
//! as the reference helpers of docker-credential-helpers speak it (`credentials/credentials.go`,
//! `credentials/error.go`): the server URL on stdin for `get` and `erase`, a JSON answer on
//! stdout; every failure is one message on stdout and exit 1, and the client recognises three
//! messages exactly: [`NOT_FOUND`], [`MISSING_SERVER_URL`], [`MISSING_USERNAME`]. jeton is
//! read-only here, like git: `store` and `erase` check their input and change nothing.
//!
//! Config: `{"credsStore": "jeton"}` (or `"credHelpers": {"registry.example.com": "jeton"}`) in
//! `~/.docker/config.json`, with `docker-credential-jeton` (a link to `jeton`) on PATH.

use super::{Credential, CredentialInfo, CredentialQuery};
use crate::secret::{SecretText, Token};
use serde::Deserialize;
use serde_json::json;

/// The name Docker runs the helper under.
pub const HELPER: &str = "docker-credential-jeton";
/// What Docker expects on stdout when a credential is missing.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// The answer to an empty server URL (`get`, `erase`, `store`).
pub const MISSING_SERVER_URL: &str = "no credentials server URL";
/// The answer to `store` without a username.
pub const MISSING_USERNAME: &str = "no credentials username";

/// The answer to no action at all.
pub fn usage() -> String {
    format!("Usage: {HELPER} <store|get|erase|list|version>")
}

/// The `version` answer: `NAME (PACKAGE) VERSION`, as the reference helpers print it.
pub fn version() -> String {
    format!("{HELPER} (jeton) {}", env!("CARGO_PKG_VERSION"))
}

/// The answer to an action the protocol does not have.
pub fn unknown_action(action: &str) -> String {
    format!(
        "{HELPER}: unknown action: {}",
        crate::entry::printable(action)
    )
}

/// The lookup for a server URL as Docker sends it: `host[:port]` without a scheme (a registry
/// served over http or https alike), or `https://index.docker.io/v1/` for Docker Hub. Host and
/// port matter, paths do not.
pub fn query(server_url: &str) -> CredentialQuery {
    CredentialQuery {
        url: server_url.trim().to_owned(),
        match_path: false,
        username: None,
    }
}

/// The `get` answer.
pub fn get_ok(server_url: &str, cred: &Credential) -> SecretText {
    let v = json!({
        "ServerURL": server_url.trim(),
        "Username": cred.username.clone().unwrap_or_default(),
        "Secret": cred.secret.expose_secret(),
    });
    SecretText::json(v, false)
}

/// The `list` answer: server URL to username.
pub fn list(creds: &[CredentialInfo]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = creds
        .iter()
        .map(|c| (c.url.clone(), json!(c.username.clone().unwrap_or_default())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// What `docker login` hands to `store`.
#[derive(Deserialize)]
pub struct StoreRequest {
    /// The registry.
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    /// The account.
    #[serde(rename = "Username")]
    pub username: String,
    /// The password or token (read to be checked, then wiped: jeton stores nothing).
    #[serde(rename = "Secret", with = "crate::secret::serde_token")]
    pub secret: Token,
}

/// Reads and checks `store`'s input as the reference helpers do; the error is the message for
/// stdout. A parse error names where, never what: the input holds a password.
pub fn parse_store(input: &str) -> Result<StoreRequest, String> {
    let r: StoreRequest = serde_json::from_str(input.trim()).map_err(|e| {
        format!(
            "cannot read the credentials to store: not the JSON docker sends \
             ({{\"ServerURL\", \"Username\", \"Secret\"}}; line {} column {})",
            e.line(),
            e.column()
        )
    })?;
    if r.server_url.trim().is_empty() {
        return Err(MISSING_SERVER_URL.into());
    }
    if r.username.is_empty() {
        return Err(MISSING_USERNAME.into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_input_is_checked_without_echoing_it() {
        let ok = parse_store(r#"{"ServerURL":"h:5000","Username":"u","Secret":"s"}"#).unwrap();
        assert_eq!(
            (ok.server_url.as_str(), ok.username.as_str()),
            ("h:5000", "u")
        );
        for (input, want) in [
            (
                r#"{"ServerURL":"","Username":"u","Secret":"s"}"#,
                MISSING_SERVER_URL,
            ),
            (
                r#"{"ServerURL":"h","Username":"","Secret":"s"}"#,
                MISSING_USERNAME,
            ),
        ] {
            assert_eq!(parse_store(input).err().as_deref(), Some(want));
        }
        for bad in [
            "",
            "not json",
            r#""CANARY""#,
            r#"{"ServerURL":"h","Secret":"CANARY"}"#,
        ] {
            let e = parse_store(bad).err().unwrap();
            assert!(e.starts_with("cannot read the credentials"), "{e}");
            assert!(!e.contains("CANARY"), "{e}");
        }
    }
}
