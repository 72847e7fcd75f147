//! `scan`: where the vault's own secrets leaked, found exactly.
//!
//! Pattern scanners (gitleaks, trufflehog, detect-secrets) guess from token shapes and
//! entropy; jeton holds the exact secrets, so it looks for them and nothing else. A hit is a
//! secret of the vault, current or still in its history, in one of the forms a token leaks in
//! ([`forms`]): never a guess, never a secret it does not hold.
//!
//! ```text
//! vault -> secrets (request) -> forms -> matcher -> sources (files, stdin, git) -> hits
//! ```
//!
//! * [`forms`] turns one secret into the byte strings to look for.
//! * [`matcher`] looks for all of them at once in a stream, in bounded memory.
//! * [`files`] walks folders (skipping what git ignores) and reads files without following
//!   symlinks, opening FIFOs or reading the holes of sparse files.
//! * [`git`] reads every blob of a repository's history, and the staged changes for the
//!   pre-commit hook.
//! * [`report`] is what a hit says: the entry, which version, where, in which form; and SARIF.
//! * [`leaks`] is what `check` remembers of a scan: which current secrets were found, where.
//!
//! Only the request for the secrets touches the vault; everything after it works on the
//! [`Search`] built from them, which keeps the forms inside its automaton and names the
//! secrets by entry and version alone.

pub mod files;
pub mod forms;
pub mod git;
pub mod leaks;
pub mod matcher;
pub mod report;

use crate::entry::{Entry, is_internal};
use crate::secret::Token;
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use forms::MIN_LEN;
use matcher::{Buffer, Matcher, Owner, Source};
pub use report::{Hit, Place, Sink};
use serde::{Deserialize, Serialize};

/// Which value of an entry a secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Version {
    /// The current secret.
    Current,
    /// A previous one, as `jeton history` numbers them (1 is the one before the current).
    Old {
        /// 1, 2, ...
        position: usize,
        /// When it was replaced.
        retired_at: Time,
    },
}

/// Which part of a value a secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// The whole secret.
    Secret,
    /// The seed inside an `otpauth://` URI (written alone in a QR-code export or a config).
    TotpSeed,
}

/// One secret to look for, and whose it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Needle {
    /// The entry's name (`TEAM:NAME` for a team's).
    pub entry: String,
    /// Current or which previous value.
    pub version: Version,
    /// The whole secret or the seed in it.
    pub part: Part,
    /// The secret.
    #[serde(with = "crate::secret::serde_token")]
    pub secret: Token,
}

/// The secrets of one vault, for a scan.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Secrets {
    /// Those long enough to look for.
    pub needles: Vec<Needle>,
    /// How many were shorter than [`MIN_LEN`] and are not looked for.
    pub too_short: usize,
}

/// Requests about scans, run where the vault is open (here or in the agent).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ScanRequest {
    /// Every current and previous secret of every entry but internal records.
    Secrets,
    /// Remember where current secrets were found, for `check` ([`leaks`]).
    Record(Vec<leaks::Found>),
}

impl ScanRequest {
    /// True when the request may change the vault.
    pub fn writes(&self) -> bool {
        matches!(self, ScanRequest::Record(_))
    }
}

/// What a [`ScanRequest`] produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ScanResponse {
    /// The secrets.
    Secrets(Secrets),
    /// How many entries' leak records changed.
    Recorded(usize),
}

/// Runs a scan request on an open vault.
pub fn execute(vault: &mut Vault, request: ScanRequest, now: Time) -> Result<ScanResponse> {
    match request {
        ScanRequest::Secrets => secrets(vault).map(ScanResponse::Secrets),
        ScanRequest::Record(found) => leaks::record(vault, found, now).map(ScanResponse::Recorded),
    }
}

/// The secrets of `vault` to look for.
pub fn secrets(vault: &Vault) -> Result<Secrets> {
    let mut out = Secrets::default();
    vault.payload.entries.scan(|e| {
        if !is_internal(&e.name) {
            add_entry(e, &mut out);
        }
        Ok(())
    })?;
    Ok(out)
}

fn add_entry(e: &Entry, out: &mut Secrets) {
    let current = e.secret.iter().map(|s| (Version::Current, s));
    let old = e.history.iter().rev().enumerate().map(|(i, h)| {
        let version = Version::Old {
            position: i + 1,
            retired_at: h.retired_at,
        };
        (version, &h.secret)
    });
    for (version, secret) in current.chain(old) {
        let mut add = |part: Part, secret: Token| {
            if secret.expose_secret().len() < MIN_LEN {
                out.too_short += 1;
            } else {
                out.needles.push(Needle {
                    entry: e.name.clone(),
                    version,
                    part,
                    secret,
                });
            }
        };
        add(Part::Secret, secret.clone());
        if let Some(seed) = totp_seed(secret.expose_secret()) {
            add(Part::TotpSeed, seed);
        }
    }
}

/// The `secret=` parameter of an `otpauth://` URI.
fn totp_seed(secret: &str) -> Option<Token> {
    let text = secret.trim();
    if !text.get(..10)?.eq_ignore_ascii_case("otpauth://") {
        return None;
    }
    let query = &text[text.find('?')? + 1..];
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("secret"))
        .map(|(_, v)| Token::new(v.into_owned()))
        .filter(|t| !t.expose_secret().is_empty())
}

/// Which secret a hit is, without the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The entry's name.
    pub entry: String,
    /// Current or which previous value.
    pub version: Version,
    /// The whole secret or the seed in it.
    pub part: Part,
}

/// A ready search: the matcher over every form of every secret, and the secrets' labels.
/// The secrets themselves are not kept.
#[derive(Debug)]
pub struct Search {
    matcher: Matcher,
    labels: Vec<Label>,
    too_short: usize,
}

impl Search {
    /// The search for `secrets` (consumed: each is wiped once its forms are in the matcher).
    pub fn new(secrets: Secrets) -> Result<Search> {
        let mut labels = Vec::with_capacity(secrets.needles.len());
        let mut all = Vec::new();
        for (i, n) in secrets.needles.into_iter().enumerate() {
            let secret = u32::try_from(i)
                .map_err(|_| Error::Other("too many secrets to search for".into()))?;
            for (form, bytes) in forms::forms(n.secret.expose_secret().as_bytes()) {
                all.push((bytes, Owner { secret, form }));
            }
            labels.push(Label {
                entry: n.entry,
                version: n.version,
                part: n.part,
            });
        }
        let matcher =
            Matcher::new(all).map_err(|e| Error::Other(format!("cannot build the search: {e}")))?;
        Ok(Search {
            matcher,
            labels,
            too_short: secrets.too_short,
        })
    }

    /// How many secrets are looked for.
    pub fn secrets(&self) -> usize {
        self.labels.len()
    }

    /// How many secrets were too short to look for.
    pub fn too_short(&self) -> usize {
        self.too_short
    }

    /// How many distinct byte strings are looked for.
    pub fn patterns(&self) -> usize {
        self.matcher.patterns()
    }

    /// A buffer for [`Search::scan`].
    pub fn buffer(&self) -> Buffer {
        self.matcher.buffer()
    }

    /// Scans `source`, handing each hit to `hit` with `place` giving where it is. Returns the
    /// bytes read.
    pub fn scan(
        &self,
        source: &mut dyn Source,
        buffer: &mut Buffer,
        place: &dyn Fn(u64, u64) -> Place,
        hit: &mut dyn FnMut(Hit),
    ) -> std::io::Result<u64> {
        self.matcher.scan(source, buffer, |f| {
            for o in f.owners {
                let label = &self.labels[o.secret as usize];
                hit(Hit {
                    secret: o.secret,
                    entry: label.entry.clone(),
                    version: label.version,
                    part: label.part,
                    form: o.form,
                    place: place(f.line, f.column),
                });
            }
        })
    }

    /// `text` with every form of a secret in it masked by `*` (a file name or a path in a
    /// commit that holds a token is shown, but not the token).
    pub fn redact(&self, text: &str) -> String {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut buffer = self.matcher.buffer();
        let _ = self
            .matcher
            .scan(&mut matcher::Reader(text.as_bytes()), &mut buffer, |f| {
                let start = usize::try_from(f.offset).unwrap_or(usize::MAX);
                spans.push((start, start.saturating_add(f.len)));
            });
        if spans.is_empty() {
            return text.to_owned();
        }
        let mut bytes = text.as_bytes().to_vec();
        for (start, end) in spans {
            let end = end.min(bytes.len());
            bytes
                .get_mut(start..end)
                .into_iter()
                .flatten()
                .for_each(|b| *b = b'*');
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_totp_seed_is_looked_for_alone_too() {
        let seed = totp_seed("otpauth://totp/Acme:me?secret=JBSWY3DPEHPK3PXP&issuer=Acme");
        assert_eq!(seed.unwrap().expose_secret(), "JBSWY3DPEHPK3PXP");
        assert!(totp_seed("https://example.com/?secret=x").is_none());
    }

    #[test]
    fn a_path_holding_a_secret_is_noticed() {
        let search = Search::new(Secrets {
            needles: vec![Needle {
                entry: "e".into(),
                version: Version::Current,
                part: Part::Secret,
                secret: Token::new("tok-12345678".into()),
            }],
            too_short: 0,
        })
        .unwrap();
        assert_eq!(
            search.redact("dir/tok-12345678.txt"),
            "dir/************.txt"
        );
        assert_eq!(search.redact("dir/tok-1234567.txt"), "dir/tok-1234567.txt");
    }
}
