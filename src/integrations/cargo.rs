//! cargo's credential-provider protocol, version 1 (the Cargo book, "Credential Provider
//! Protocol"): cargo runs the provider with `--cargo-plugin`; the provider writes a hello line
//! `{"v":[1]}`, then answers each JSON request line with one JSON response line until stdin
//! closes. jeton answers `get` (read and publish) with the active entry whose url matches the
//! registry's index URL; `login` and `logout` are refused as unsupported (read-only).

use super::{Credential, CredentialQuery};
use crate::secret::SecretText;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The hello line.
pub const HELLO: &str = r#"{"v":[1]}"#;
/// The only protocol version spoken.
pub const VERSION: u32 = 1;

/// The registry a request is about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Registry {
    /// Index URL, e.g. `sparse+https://registry.example.com/index/`.
    #[serde(rename = "index-url")]
    pub index_url: String,
    /// Registry name in cargo's configuration.
    #[serde(default)]
    pub name: Option<String>,
}

/// One request line from cargo. Fields jeton does not use are ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CargoRequest {
    /// Protocol version.
    pub v: u32,
    /// `get`, `login` or `logout`.
    pub kind: String,
    /// For `get`: `read`, `publish`, `yank`, `unyank` or `owners`.
    #[serde(default)]
    pub operation: Option<String>,
    /// The registry.
    pub registry: Registry,
}

impl CargoRequest {
    /// The lookup for this registry: its index URL without cargo's `sparse+`/`registry+`
    /// prefix, compared path and all, so an entry url of the host or of the index matches.
    pub fn query(&self) -> CredentialQuery {
        let url = self.registry.index_url.as_str();
        let url = url
            .strip_prefix("sparse+")
            .or_else(|| url.strip_prefix("registry+"))
            .unwrap_or(url);
        CredentialQuery {
            url: url.to_owned(),
            match_path: true,
            username: None,
        }
    }
}

/// The success line for `get`.
pub fn get_ok(cred: &Credential) -> SecretText {
    let mut ok = json!({
        "kind": "get",
        "token": cred.secret.expose_secret(),
        "cache": "session",
        "operation_independent": true,
    });
    if let Some(t) = cred.expires_at {
        ok["cache"] = json!("expires");
        ok["expiration"] = json!(t);
    }
    // Moved in, not copied: `json!({"Ok": ok})` would serialise a second copy of the token.
    let mut line = json!({ "Ok": null });
    line["Ok"] = ok;
    SecretText::json(line, false)
}

/// An error line: `kind` is `not-found`, `operation-not-supported`, `url-not-supported` or `other`.
pub fn error(kind: &str, message: &str) -> String {
    json!({"Err": {"kind": kind, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Token;

    #[test]
    fn lines() {
        let r: CargoRequest = serde_json::from_str(
            r#"{"v":1,"registry":{"index-url":"sparse+http://127.0.0.1:1/index/","name":"local","headers":[]},"kind":"get","operation":"read","args":[]}"#,
        )
        .unwrap();
        let q = r.query();
        assert_eq!(q.url, "http://127.0.0.1:1/index/");
        assert!(q.match_path);
        let cred = Credential {
            name: "n".into(),
            url: "http://127.0.0.1:1".into(),
            username: None,
            secret: Token::new("tok".into()),
            expires_at: None,
        };
        let v: serde_json::Value = serde_json::from_slice(get_ok(&cred).as_bytes()).unwrap();
        assert_eq!(v["Ok"]["token"], "tok");
        assert_eq!(v["Ok"]["cache"], "session");
        let e: serde_json::Value = serde_json::from_str(&error("not-found", "x")).unwrap();
        assert_eq!(e["Err"]["kind"], "not-found");
    }
}
