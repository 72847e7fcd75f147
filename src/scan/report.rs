//! What a hit says, and where scans send what they find: the entry, which of its values,
//! where, in which form. Never the secret: it is not kept past the matcher (see [`super`]).

use super::forms::Form;
use super::{Part, Version};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;

/// Where a hit is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Place {
    /// In a file.
    File {
        /// The path, as walked from the path given.
        path: String,
        /// Line, from 1.
        line: u64,
        /// Column in bytes, from 1.
        column: u64,
    },
    /// On standard input.
    Stdin {
        /// Line, from 1.
        line: u64,
        /// Column in bytes, from 1.
        column: u64,
    },
    /// In a file of a commit: the first commit, in history order, that holds it there.
    Commit {
        /// Full commit id.
        commit: String,
        /// Path in the commit's tree.
        path: String,
        /// Line, from 1.
        line: u64,
        /// Column in bytes, from 1.
        column: u64,
    },
    /// In a staged file (what the next commit would hold).
    Staged {
        /// Path in the index.
        path: String,
        /// Line, from 1.
        line: u64,
        /// Column in bytes, from 1.
        column: u64,
    },
}

impl Place {
    /// The file's path (`None` for standard input).
    pub fn path(&self) -> Option<&str> {
        match self {
            Place::File { path, .. } | Place::Commit { path, .. } | Place::Staged { path, .. } => {
                Some(path)
            }
            Place::Stdin { .. } => None,
        }
    }

    /// Line and column.
    pub fn line_column(&self) -> (u64, u64) {
        match self {
            Place::File { line, column, .. }
            | Place::Stdin { line, column }
            | Place::Commit { line, column, .. }
            | Place::Staged { line, column, .. } => (*line, *column),
        }
    }

    /// The commit, for a hit in history.
    pub fn commit(&self) -> Option<&str> {
        match self {
            Place::Commit { commit, .. } => Some(commit),
            _ => None,
        }
    }
}

impl std::fmt::Display for Place {
    /// `path:line:column`, `<stdin>:line:column`, or `COMMIT:path:line:column` with the
    /// commit's first 12 digits; control characters in paths are escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (line, column) = self.line_column();
        let path = self.path().map(crate::text::Shown::line);
        match (self, path) {
            (Place::Commit { commit, .. }, Some(p)) => {
                let short = commit.get(..12).unwrap_or(commit);
                write!(f, "{short}:{p}:{line}:{column}")
            }
            (_, Some(p)) => write!(f, "{p}:{line}:{column}"),
            (_, None) => write!(f, "<stdin>:{line}:{column}"),
        }
    }
}

/// One place where a secret of the vault was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Index of the secret in the search (equal for one secret in several places).
    pub secret: u32,
    /// The entry's name (`TEAM:NAME` for a team's).
    pub entry: String,
    /// Current or which previous value.
    pub version: Version,
    /// The whole secret or the TOTP seed in it.
    pub part: Part,
    /// How it was written.
    pub form: Form,
    /// Where.
    pub place: Place,
}

impl Hit {
    /// `current`, or `old #N` (N as `jeton history` numbers it).
    pub fn version_text(&self) -> String {
        let v = match self.version {
            Version::Current => "current".to_owned(),
            Version::Old { position, .. } => format!("old #{position}"),
        };
        match self.part {
            Part::Secret => v,
            Part::TotpSeed => format!("{v}, TOTP seed"),
        }
    }

    /// The stable JSON view (`--json`).
    pub fn json(&self) -> Value {
        let (line, column) = self.place.line_column();
        let (version, position, retired_at) = match self.version {
            Version::Current => ("current", None, None),
            Version::Old {
                position,
                retired_at,
            } => (
                "old",
                Some(position),
                Some(crate::time::rfc3339(retired_at)),
            ),
        };
        let kind = match &self.place {
            Place::File { .. } => "file",
            Place::Stdin { .. } => "stdin",
            Place::Commit { .. } => "commit",
            Place::Staged { .. } => "staged",
        };
        json!({
            "entry": self.entry,
            "version": version,
            "history_position": position,
            "retired_at": retired_at,
            "part": match self.part { Part::Secret => "secret", Part::TotpSeed => "totp-seed" },
            "form": self.form.name(),
            "offset": self.form.offset(),
            "place": kind,
            "path": self.place.path(),
            "commit": self.place.commit(),
            "line": line,
            "column": column,
        })
    }
}

/// Why a path was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A symbolic link, not followed without `--follow`.
    Symlink,
    /// Not a regular file: a FIFO, a socket or a device (reading one may never end).
    NotRegular(&'static str),
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skipped::Symlink => f.write_str("a symbolic link (followed only with --follow)"),
            Skipped::NotRegular(what) => write!(f, "not a regular file ({what})"),
        }
    }
}

/// Where a scan sends what it finds, as it finds it.
pub trait Sink {
    /// A secret, somewhere.
    fn hit(&mut self, hit: Hit);
    /// A path not read, and why.
    fn skipped(&mut self, path: &Path, why: Skipped);
    /// A path that could not be read.
    fn unreadable(&mut self, path: &Path, error: &std::io::Error);
    /// A file read whole (`bytes` long).
    fn scanned(&mut self, bytes: u64) {
        let _ = bytes;
    }
}

/// The SARIF rule of a hit: a current secret is an error, an old one a warning (it may still
/// be valid at its issuer, but rotation already replaced it).
fn rule(hit: &Hit) -> &'static str {
    match hit.version {
        Version::Current => "jeton/current-secret",
        Version::Old { .. } => "jeton/old-secret",
    }
}

/// A URI reference for a relative path (RFC 3986: anything but unreserved characters and `/`
/// percent-encoded).
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The hits as one SARIF 2.1.0 log (what GitHub code scanning and other dashboards read).
pub fn sarif(hits: &[Hit], version: &str) -> Value {
    use sha2::{Digest, Sha256};
    let rules = json!([
        {
            "id": "jeton/current-secret",
            "name": "CurrentSecretLeaked",
            "shortDescription": {"text": "The current secret of a vault entry is here"},
            "fullDescription": {"text": "A token that jeton holds as the current secret of an entry appears in this file, as it is or encoded. Rotate it (jeton rotate) and remove it from here and from history."},
            "defaultConfiguration": {"level": "error"},
            "help": {"text": "Rotate the token at once (`jeton rotate NAME`, or `jeton rotate --at-issuer --leaked NAME` where a recipe exists), update what uses it, and remove this copy."}
        },
        {
            "id": "jeton/old-secret",
            "name": "OldSecretLeaked",
            "shortDescription": {"text": "A previous secret of a vault entry is here"},
            "fullDescription": {"text": "A token that jeton keeps in the history of an entry appears in this file. It was replaced, but may still be valid at its issuer."},
            "defaultConfiguration": {"level": "warning"},
            "help": {"text": "Make sure the old token is revoked at its issuer, and remove this copy."}
        }
    ]);
    let results: Vec<Value> = hits
        .iter()
        .map(|h| {
            let (line, column) = h.place.line_column();
            let location = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": uri(h.place.path().unwrap_or("stdin"))},
                    "region": {"startLine": line, "startColumn": column}
                }
            });
            let text = format!(
                "The {} secret of entry '{}' is here ({}).",
                h.version_text(),
                h.entry,
                h.form
            );
            let mut digest = Sha256::new();
            for part in [
                h.entry.as_str(),
                &h.version_text(),
                &h.form.to_string(),
                h.place.path().unwrap_or(""),
            ] {
                digest.update(part.as_bytes());
                digest.update([0]);
            }
            let fingerprint: String = digest
                .finalize()
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect();
            let mut result = json!({
                "ruleId": rule(h),
                "level": if h.version == Version::Current { "error" } else { "warning" },
                "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {"jetonLeak/v1": fingerprint},
                "properties": h.json(),
            });
            if let Some(c) = h.place.commit() {
                result["message"]["text"] = json!(format!("{text} First in commit {c}."));
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "jeton",
                "version": version,
                "rules": rules
            }},
            "results": results
        }]
    })
}
