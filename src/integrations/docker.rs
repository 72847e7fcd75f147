//! The Docker credential-helper protocol (`docker-credential-jeton get|store|erase|list`): the
//! server URL on stdin for `get`, a JSON answer on stdout, and the exact line "credentials not
//! found in native keychain" with exit 1 when there is none. jeton is read-only here, like git:
//! `store` and `erase` read their input and change nothing.
//!
//! Config: `{"credsStore": "jeton"}` (or `"credHelpers": {"registry.example.com": "jeton"}`) in
//! `~/.docker/config.json`, with `docker-credential-jeton` (a link to `jeton`) on PATH.

use super::{Credential, CredentialInfo, CredentialQuery};
use crate::secret::SecretText;
use serde_json::json;

/// What Docker expects on stdout when a credential is missing.
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// The lookup for a server URL as Docker sends it (`https://index.docker.io/v1/`,
/// `registry.example.com:5000`): host and port matter, paths do not; no scheme means https.
pub fn query(server_url: &str) -> CredentialQuery {
    let s = server_url.trim();
    CredentialQuery {
        url: if s.contains("://") {
            s.to_owned()
        } else {
            format!("https://{s}")
        },
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
