//! The token model (SPEC §4): an entry is a named secret plus everything needed to look after
//! it: scopes, who to call, who holds copies, when it expires and when it must be rotated.

use crate::secret::Token;
use crate::time::Time;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Longest entry name.
pub const MAX_NAME_LEN: usize = 128;
/// Default number of previous secrets kept per entry.
pub const DEFAULT_HISTORY_LIMIT: u32 = 10;

/// Names under this prefix are internal records, not tokens: the issuer record of an entry
/// (`jeton::issuer`). `list` and `check` skip them and no new entry may take such a name.
pub const ISSUER_PREFIX: &str = ".issuer/";

/// Names under this prefix are what the personal vault keeps of a team it belongs to
/// (`jeton::team`): internal records like [`ISSUER_PREFIX`]'s.
pub const TEAM_PREFIX: &str = ".team/";

/// `.ack/` + the 32 lowercase hex digits of an entry's id names the record of that entry's
/// acknowledged `check` findings (`jeton::lifecycle::ack`), an internal record like
/// [`ISSUER_PREFIX`]'s. Only that exact shape is internal: a user entry that an older version
/// let be called `.ack/something` stays an ordinary entry.
pub const ACK_PREFIX: &str = ".ack/";

/// `.leak/` + the 32 lowercase hex digits of an entry's id names the record of where `scan`
/// found that entry's current secret (`jeton::scan::leaks`), an internal record like
/// [`ACK_PREFIX`]'s, with the same exact shape.
pub const LEAK_PREFIX: &str = ".leak/";

/// True for the name of an acknowledgement record ([`ACK_PREFIX`]).
pub fn is_ack_record(name: &str) -> bool {
    is_record(name, ACK_PREFIX)
}

/// `prefix` followed by exactly 32 lowercase hex digits.
fn is_record(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// True for an internal record's name (see [`ISSUER_PREFIX`], [`TEAM_PREFIX`], [`ACK_PREFIX`]
/// and [`LEAK_PREFIX`]).
pub fn is_internal(name: &str) -> bool {
    name.starts_with(ISSUER_PREFIX)
        || name.starts_with(TEAM_PREFIX)
        || is_ack_record(name)
        || is_record(name, LEAK_PREFIX)
}

/// Random, stable identity of an entry (survives renames; used for merging copies).
pub type EntryId = [u8; 16];

/// Whether an entry may be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// In use.
    Active,
    /// Temporarily refused by `get`/`exec`.
    Disabled {
        /// When it was disabled.
        since: Time,
    },
    /// Permanently withdrawn; the secret and history are wiped and the entry stays as a tombstone.
    Revoked {
        /// When it was revoked.
        at: Time,
        /// Why, as the user said.
        reason: Option<String>,
    },
}

impl Status {
    /// `active`, `disabled` or `revoked`.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled { .. } => "disabled",
            Status::Revoked { .. } => "revoked",
        }
    }
}

/// A previous secret of an entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryItem {
    /// The retired secret.
    #[serde(with = "crate::secret::serde_token")]
    pub secret: Token,
    /// When it became current.
    pub created_at: Time,
    /// When it was replaced.
    pub retired_at: Time,
}

impl HistoryItem {
    /// `secret`, current since `created_at`, retired at `now`: never before it was set, so that
    /// a device whose clock is behind the one that set it does not record the two out of order.
    pub fn retired(secret: Token, created_at: Time, now: Time) -> HistoryItem {
        HistoryItem {
            secret,
            created_at,
            retired_at: now.max(created_at),
        }
    }

    /// The order of a history, oldest first: by when each secret was set, then retired. Every
    /// device and the sync merge keep and cut a history in this order, so which secrets a limit
    /// keeps does not depend on where, or in which order, they were retired. (Secrets set and
    /// retired in the same second stay in the order they came in on one device; the merge
    /// orders them by their bytes.)
    pub fn order(&self) -> (Time, Time, &[u8]) {
        (
            self.created_at,
            self.retired_at,
            self.secret.expose_secret().as_bytes(),
        )
    }
}

/// A record of handing the entry to a contact in a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    /// Contact name at the time.
    pub contact: String,
    /// Bundle id (hex).
    pub bundle_id: String,
    /// When.
    pub at: Time,
}

/// Where an imported entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// A contact name, or an importer such as `pass`.
    pub from: String,
    /// Bundle id (hex) or source path.
    pub reference: String,
    /// When it was imported.
    pub at: Time,
}

/// A named token and its metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// Stable random id.
    pub id: EntryId,
    /// Bumped on every change.
    pub revision: u64,
    /// Validated name, e.g. `github/ci-deploy`.
    pub name: String,
    /// The secret. `None` only for revoked tombstones.
    #[serde(with = "crate::secret::serde_opt_token")]
    pub secret: Option<Token>,
    /// When the current secret was set.
    pub secret_set_at: Time,
    /// Scopes granted to the token.
    pub scopes: Vec<String>,
    /// Where the token is used (also used by the git/cargo/docker helpers to match).
    pub url: Option<String>,
    /// Account name at the provider.
    pub username: Option<String>,
    /// Issuing service.
    pub issuer: Option<String>,
    /// Technical contact; falls back to the vault's default contact.
    pub contact: Option<String>,
    /// Integrations holding a copy, e.g. `ci:github-actions:DEPLOY_TOKEN`.
    pub used_by: Vec<String>,
    /// Free tags.
    pub tags: Vec<String>,
    /// Free note.
    pub note: Option<String>,
    /// Creation time.
    pub created_at: Time,
    /// Last change of anything.
    pub updated_at: Time,
    /// Expiry of the token at its provider.
    pub expires_at: Option<Time>,
    /// Rotation schedule, in seconds.
    pub rotate_every: Option<i64>,
    /// Last rotation.
    pub last_rotated_at: Option<Time>,
    /// Active, disabled or revoked.
    pub status: Status,
    /// Previous secrets, newest last.
    pub history: Vec<HistoryItem>,
    /// Every time the entry was shared.
    pub shared_with: Vec<ShareRecord>,
    /// Set for entries imported from a bundle or another tool.
    pub received_from: Option<Provenance>,
}

/// The metadata fields `get --field` can print, by name.
pub const FIELDS: &[&str] = &[
    "secret",
    "name",
    "url",
    "username",
    "issuer",
    "contact",
    "scopes",
    "used_by",
    "tags",
    "note",
    "expires_at",
];

impl Entry {
    /// An empty active entry named `name`, for internal records (no secret, no metadata).
    pub fn blank(id: EntryId, name: String, now: Time) -> Entry {
        Entry {
            id,
            revision: 0,
            name,
            secret: None,
            secret_set_at: now,
            scopes: vec![],
            url: None,
            username: None,
            issuer: None,
            contact: None,
            used_by: vec![],
            tags: vec![],
            note: None,
            created_at: now,
            updated_at: now,
            expires_at: None,
            rotate_every: None,
            last_rotated_at: None,
            status: Status::Active,
            history: vec![],
            shared_with: vec![],
            received_from: None,
        }
    }

    /// One field as text, for `get --field`. `None` when the field is empty.
    pub fn field(&self, field: &str) -> Result<Option<String>> {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.join(","));
        Ok(match field {
            "secret" | "password" => self.secret.as_ref().map(|s| s.expose_secret().to_owned()),
            "name" => Some(self.name.clone()),
            "url" => self.url.clone(),
            "username" | "user" => self.username.clone(),
            "issuer" => self.issuer.clone(),
            "contact" => self.contact.clone(),
            "scopes" => list(&self.scopes),
            "used_by" => list(&self.used_by),
            "tags" => list(&self.tags),
            "note" => self.note.clone(),
            "expires_at" => self.expires_at.map(crate::time::rfc3339),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown field '{field}' (fields: {})",
                    FIELDS.join(", ")
                )));
            }
        })
    }

    /// Refuses an unknown field name before any I/O.
    pub fn check_field(field: &str) -> Result<()> {
        if FIELDS.contains(&field) || ["password", "user"].contains(&field) {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "unknown field '{field}' (fields: {})",
                FIELDS.join(", ")
            )))
        }
    }

    /// Adds `item` to the history in its place (see [`HistoryItem::order`]) and wipes the
    /// oldest items beyond `limit`. Returns how many were wiped.
    pub fn push_history(&mut self, item: HistoryItem, limit: u32) -> usize {
        let when = |h: &HistoryItem| (h.created_at, h.retired_at);
        let at = self.history.partition_point(|h| when(h) <= when(&item));
        self.history.insert(at, item);
        self.trim_history(limit)
    }

    /// Wipes the oldest history items beyond `limit` (the tokens zeroize on drop). Returns how
    /// many.
    pub fn trim_history(&mut self, limit: u32) -> usize {
        let excess = self.history.len().saturating_sub(limit as usize);
        self.history.drain(..excess);
        excess
    }

    /// When the next rotation is due, if a schedule is set.
    pub fn rotation_due_at(&self) -> Option<Time> {
        let every = self.rotate_every?;
        Some(
            self.last_rotated_at
                .unwrap_or(self.secret_set_at)
                .saturating_add(every),
        )
    }
}

/// Checks an entry name (SPEC §4): `[A-Za-z0-9._@-]` segments joined by `/`, 1..128 characters,
/// no empty, `.` or `..` segment.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Usage(format!(
            "invalid entry name '{}': {why}",
            printable(name)
        )))
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad("it must be 1 to 128 characters");
    }
    for seg in name.split('/') {
        if seg.is_empty() {
            return bad("empty path segment");
        }
        if seg == "." || seg == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
        if let Some(c) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._@-".contains(*c)))
        {
            return bad(&format!(
                "character {c:?} is not allowed (use A-Z a-z 0-9 . _ @ - and /)"
            ));
        }
    }
    Ok(())
}

/// Checks a name for a new entry (`add`, `rename`, `import`, `migrate`): [`validate_name`],
/// and it must not start with `-`, which a command line would read as an option (`--help`).
/// Existing entries keep working under the older rule: lookups use [`validate_name`].
pub fn validate_new_name(name: &str) -> Result<()> {
    validate_name(name)?;
    if is_internal(name) {
        return Err(Error::Usage(format!(
            "invalid entry name '{}': names under '{ISSUER_PREFIX}' and '{TEAM_PREFIX}', and \
             '{ACK_PREFIX}' or '{LEAK_PREFIX}' + 32 hex digits, are reserved",
            printable(name)
        )));
    }
    if name.starts_with('-') {
        return Err(Error::Usage(format!(
            "invalid entry name '{}': it must not start with '-' (a command line would read it \
             as an option)",
            printable(name)
        )));
    }
    Ok(())
}

/// A name made safe to echo in an error message (escaped as [`crate::text::Shown`] does,
/// length capped).
pub fn printable(s: &str) -> String {
    let head: String = s.chars().take(140).collect();
    let mut out = crate::text::escape(&head, crate::text::Lines::One).into_owned();
    if s.chars().count() > 140 {
        out.push('…');
    }
    out
}

/// Character sets for generated secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charset {
    /// A-Z a-z 0-9.
    Alnum,
    /// 0-9 a-f.
    Hex,
    /// A-Z a-z 0-9 - _.
    Base64Url,
    /// Printable ASCII without space.
    Ascii,
}

impl Charset {
    /// The characters of the set, in order.
    pub fn alphabet(self) -> Vec<u8> {
        let range = |a: u8, b: u8| (a..=b).collect::<Vec<u8>>();
        match self {
            Charset::Alnum => [range(b'A', b'Z'), range(b'a', b'z'), range(b'0', b'9')].concat(),
            Charset::Hex => [range(b'0', b'9'), range(b'a', b'f')].concat(),
            Charset::Base64Url => [
                range(b'A', b'Z'),
                range(b'a', b'z'),
                range(b'0', b'9'),
                b"-_".to_vec(),
            ]
            .concat(),
            Charset::Ascii => range(b'!', b'~'),
        }
    }
}

/// Longest generated secret.
pub const MAX_GENERATED_LEN: usize = 4096;

/// Draws a uniform random secret from the OS CSPRNG (rejection sampling, no modulo bias).
pub fn generate_secret(length: usize, charset: Charset) -> Result<Token> {
    if !(8..=MAX_GENERATED_LEN).contains(&length) {
        return Err(Error::Usage(format!(
            "--length must be between 8 and {MAX_GENERATED_LEN}"
        )));
    }
    let alphabet = charset.alphabet();
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(length);
    let mut buf = zeroize::Zeroizing::new([0u8; 64]);
    while out.len() < length {
        crate::random::fill_random(&mut buf[..])?;
        for &b in buf.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() == length {
                break;
            }
            out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
        }
    }
    Ok(Token::new(out))
}

/// Where a new secret comes from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SecretInput {
    /// Given by the user (prompt or stdin).
    Value(#[serde(with = "crate::secret::serde_token")] Token),
    /// Generated inside the executor.
    Generate {
        /// Number of characters.
        length: usize,
        /// Alphabet.
        charset: Charset,
    },
    /// Generated inside the executor from a recipe (words, or characters with some left out).
    Recipe(crate::generate::Recipe),
}

impl SecretInput {
    /// The secret: the given one, or a freshly generated one.
    pub fn resolve(self) -> Result<Token> {
        match self {
            SecretInput::Value(t) => Ok(t),
            SecretInput::Generate { length, charset } => generate_secret(length, charset),
            SecretInput::Recipe(recipe) => recipe.generate(),
        }
    }
}

/// A change to one optional field: keep, set, or clear.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change<T> {
    /// Leave as is.
    #[default]
    Keep,
    /// Set to this value.
    Set(T),
    /// Remove the value.
    Clear,
}

impl<T: PartialEq> Change<T> {
    /// Applies the change to `field`; true when it changed anything (setting the value a field
    /// holds, or clearing an empty one, changes nothing).
    pub(crate) fn apply(self, field: &mut Option<T>) -> bool {
        match self {
            Change::Keep => false,
            Change::Set(v) if field.as_ref() == Some(&v) => false,
            Change::Set(v) => {
                *field = Some(v);
                true
            }
            Change::Clear => field.take().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_is_kept_and_cut_in_the_order_its_secrets_were_set() {
        let mut e = Entry::blank([1; 16], "k".into(), 100);
        let item =
            |s: &str, set: Time, now: Time| HistoryItem::retired(Token::new(s.into()), set, now);
        assert_eq!(e.push_history(item("b", 200, 300), 2), 0);
        // Retired by a device whose clock is behind: never before it was set, and in its place.
        assert_eq!(e.push_history(item("a", 150, 50), 2), 0);
        assert_eq!(e.history[0].retired_at, 150);
        assert_eq!(e.push_history(item("c", 250, 260), 2), 1);
        let kept: Vec<&str> = e.history.iter().map(|h| h.secret.expose_secret()).collect();
        assert_eq!(kept, ["b", "c"]);
        assert_eq!(e.trim_history(1), 1);
        assert_eq!(e.history[0].secret.expose_secret(), "c");
    }

    #[test]
    fn names() {
        for ok in ["a", "github/ci-deploy", "x.y_z@host-1/A", &"a".repeat(128)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            ".",
            "a/../b",
            "a b",
            "a\nb",
            "é",
            &"a".repeat(129),
            "a/./b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_names_starting_with_a_dash_are_refused_and_old_ones_still_found() {
        for name in ["--help", "-x", "-"] {
            assert!(validate_name(name).is_ok(), "{name}");
            let e = validate_new_name(name).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("must not start with '-'"), "{e}");
        }
        assert!(validate_new_name("a/-x").is_ok());
        assert!(validate_new_name("a/../b").is_err());
    }

    #[test]
    fn a_change_to_the_same_value_is_no_change() {
        let mut f = Some("a".to_owned());
        assert!(!Change::Set("a".to_owned()).apply(&mut f));
        assert!(Change::Set("b".to_owned()).apply(&mut f));
        assert_eq!(f.as_deref(), Some("b"));
        assert!(Change::<String>::Clear.apply(&mut f));
        assert!(!Change::<String>::Clear.apply(&mut f));
        assert!(!Change::<String>::Keep.apply(&mut f));
    }

    #[test]
    fn generated_secrets_use_the_alphabet() {
        for cs in [
            Charset::Alnum,
            Charset::Hex,
            Charset::Base64Url,
            Charset::Ascii,
        ] {
            let t = generate_secret(64, cs).unwrap();
            let alpha = cs.alphabet();
            assert_eq!(t.expose_secret().len(), 64);
            assert!(t.expose_secret().bytes().all(|b| alpha.contains(&b)));
        }
        assert!(generate_secret(4, Charset::Hex).is_err());
        assert_ne!(
            generate_secret(32, Charset::Alnum).unwrap(),
            generate_secret(32, Charset::Alnum).unwrap()
        );
    }
}
