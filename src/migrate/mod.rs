//! Migrating tokens in from other tools (`jeton migrate FORMAT SOURCE`).
//!
//! ```text
//! source file or store -> parser (one module per format) -> Parsed -> MigrateRequest -> execute
//! ```
//!
//! Parsing happens in the front end, which can read the user's files and run their `gpg`; the
//! parsed entries then travel in one typed [`MigrateRequest`] that [`execute`] applies to the
//! vault all at once (or not at all), like any other request. Every migrated entry records its
//! origin in `received_from` (format, source path and the item inside it).

pub mod bitwarden;
pub mod dotenv;
pub mod keepassxc;
pub mod pass;

use crate::entry::{Entry, Provenance, Status, validate_new_name};
use crate::random::random_id;
use crate::secret::Token;
use crate::share::import::OnConflict;
use crate::text::{Lines, sanitize};
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest source file read (64 MiB).
pub const MAX_SOURCE_LEN: u64 = 64 << 20;

/// The formats jeton reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A password-store directory (`pass`).
    Pass,
    /// A gopass store (same layout as `pass`).
    Gopass,
    /// `keepassxc-cli export --format xml`.
    Keepassxc,
    /// Bitwarden's unencrypted JSON export.
    Bitwarden,
    /// `KEY=value` lines.
    Dotenv,
}

impl Format {
    /// The name used on the command line and in provenance records.
    pub fn label(self) -> &'static str {
        match self {
            Format::Pass => "pass",
            Format::Gopass => "gopass",
            Format::Keepassxc => "keepassxc",
            Format::Bitwarden => "bitwarden",
            Format::Dotenv => "dotenv",
        }
    }
}

/// True for an entry that `migrate` brought in: its provenance names a source format, not a
/// contact (a bundle's provenance holds its id, 32 or more hex digits, as the reference).
pub fn is_migrated(e: &Entry) -> bool {
    const FORMATS: [Format; 5] = [
        Format::Pass,
        Format::Gopass,
        Format::Keepassxc,
        Format::Bitwarden,
        Format::Dotenv,
    ];
    e.received_from.as_ref().is_some_and(|p| {
        let bundle_id =
            p.reference.len() >= 32 && p.reference.bytes().all(|b| b.is_ascii_hexdigit());
        FORMATS.iter().any(|f| f.label() == p.from) && !bundle_id
    })
}

/// One entry read from a source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MigratedEntry {
    /// Name in the vault (already made valid), before `--prefix`.
    pub name: String,
    /// The name in the source, as written there.
    pub original: String,
    /// The secret.
    #[serde(with = "crate::secret::serde_token")]
    pub secret: Token,
    /// URL.
    pub url: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Note (everything else the source held about it).
    pub note: Option<String>,
    /// Expiry at the provider.
    pub expires_at: Option<Time>,
    /// Where in the source: a file, a line, an item id.
    pub reference: String,
    /// Scopes granted to the token.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Integrations holding a copy.
    #[serde(default)]
    pub used_by: Vec<String>,
    /// Rotation schedule, in seconds.
    #[serde(default)]
    pub rotate_every: Option<i64>,
}

impl MigratedEntry {
    /// An entry with only its names and secret; the other fields empty.
    pub fn new(name: String, original: String, secret: Token) -> MigratedEntry {
        MigratedEntry {
            name,
            original,
            secret,
            url: None,
            username: None,
            tags: Vec::new(),
            note: None,
            expires_at: None,
            reference: String::new(),
            scopes: Vec::new(),
            used_by: Vec::new(),
            rotate_every: None,
        }
    }
}

/// An item of the source that was not migrated, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unusable {
    /// The name in the source.
    pub original: String,
    /// Why it was left out.
    pub reason: String,
}

/// Everything a parser found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Parsed {
    /// Entries to migrate.
    pub entries: Vec<MigratedEntry>,
    /// Items left out.
    pub unusable: Vec<Unusable>,
}

impl Parsed {
    /// Adds an entry, giving a name already used in this source a `-2`, `-3`... suffix.
    pub fn push(&mut self, mut e: MigratedEntry) {
        let taken = |n: &str, list: &[MigratedEntry]| list.iter().any(|o| o.name == n);
        if taken(&e.name, &self.entries) {
            let base = e.name.clone();
            if let Some(free) = (2..)
                .map(|i| suffixed(&base, i))
                .find(|n| !taken(n, &self.entries))
            {
                e.name = free;
            }
        }
        self.entries.push(e);
    }

    /// Records an item that is left out.
    pub fn skip(&mut self, original: impl Into<String>, reason: impl Into<String>) {
        self.unusable.push(Unusable {
            original: original.into(),
            reason: reason.into(),
        });
    }
}

fn suffixed(name: &str, i: usize) -> String {
    let tail = format!("-{i}");
    let keep = crate::entry::MAX_NAME_LEN - tail.len();
    let mut base: String = name.chars().take(keep).collect();
    while base.ends_with('/') {
        base.pop();
    }
    format!("{base}{tail}")
}

/// Makes one path segment valid: other scripts are transliterated to ASCII (`Ünïcödé` ->
/// `Unicode`, `Straße` -> `Strasse`), other characters outside `[A-Za-z0-9._@-]` become `-`
/// (runs of them one `-`), and an empty, `.` or `..` segment becomes `_`.
pub fn clean_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut push = |c: char| {
        let c = if c.is_ascii_alphanumeric() || "._@-".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    };
    for c in s.trim().chars() {
        match deunicode::deunicode_char(c).filter(|_| !c.is_ascii()) {
            Some(ascii) => ascii.chars().for_each(&mut push),
            None => push(c),
        }
    }
    let out = out.trim_matches('-').to_owned();
    match out.as_str() {
        "" | "." | ".." => "_".into(),
        _ => out,
    }
}

/// A valid entry name from source path segments (cut to the 128-character limit).
pub fn clean_name<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    let mut name = segments
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(clean_segment)
        .collect::<Vec<_>>()
        .join("/");
    if name.is_empty() {
        name = "_".into();
    }
    if name.len() > crate::entry::MAX_NAME_LEN {
        name.truncate(crate::entry::MAX_NAME_LEN);
        while name.ends_with('/') || name.ends_with('.') {
            name.pop();
        }
    }
    name
}

/// Text that is empty once trimmed becomes `None`.
pub fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Splits a tag list written with `,`, `;` or spaces.
pub fn split_tags(s: &str) -> Vec<String> {
    s.split([',', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads a source file, refusing one larger than [`MAX_SOURCE_LEN`].
pub fn read_source(path: &std::path::Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    crate::store::read_capped(path, MAX_SOURCE_LEN).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::NotFound(format!("no such file: {}", path.display()))
        }
        std::io::ErrorKind::FileTooLarge => {
            Error::Usage(format!("{} is larger than 64 MiB", path.display()))
        }
        _ => Error::io("cannot read", path, e),
    })
}

/// A parse error naming the file and, when known, the line. Never holds file content.
pub fn parse_error(path: &std::path::Path, line: Option<usize>, what: &str) -> Error {
    match line {
        Some(l) => Error::Usage(format!(
            "cannot parse {} line {l}: {what}; nothing was migrated",
            path.display()
        )),
        None => Error::Usage(format!(
            "cannot parse {}: {what}; nothing was migrated",
            path.display()
        )),
    }
}

/// `migrate`: entries parsed from a source, applied all together.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MigrateRequest {
    /// Source format.
    pub format: Format,
    /// Source path as given.
    pub source: String,
    /// What the parser found.
    pub parsed: Parsed,
    /// Path prefix for every name.
    pub prefix: Option<String>,
    /// What to do when a name exists in the vault.
    pub on_conflict: OnConflict,
    /// Plan only; change nothing.
    pub dry_run: bool,
}

/// One line of a migration report. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateItem {
    /// Name in this vault.
    pub name: String,
    /// Name in the source.
    pub original: String,
    /// `added`, `renamed`, `overwritten` or `skipped`.
    pub action: String,
    /// Fields whose control characters were written out visibly (`\u{1b}`), for the report.
    #[serde(default)]
    pub escaped: Vec<String>,
}

/// What a migration did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MigrateReport {
    /// Source format.
    pub format: Format,
    /// Source path.
    pub source: String,
    /// One line per entry read.
    pub items: Vec<MigrateItem>,
    /// Items of the source left out.
    pub unusable: Vec<Unusable>,
    /// Entries written (added, renamed, overwritten).
    pub imported: usize,
    /// Entries not written because the name existed (`--on-conflict skip`).
    pub skipped: usize,
    /// Names that existed in the vault.
    pub conflicts: usize,
    /// True when nothing was changed.
    pub dry_run: bool,
}

/// Applies a migration: plans every name first (refusing the whole batch on a conflict under
/// [`OnConflict::Fail`]), then writes.
pub fn execute(vault: &mut Vault, mut req: MigrateRequest, now: Time) -> Result<MigrateReport> {
    let escaped: Vec<Vec<String>> = req.parsed.entries.iter_mut().map(make_clean).collect();
    req.source = sanitize(&req.source, Lines::One).0.into_owned();
    let mut plan: Vec<(String, usize, &'static str)> = Vec::new();
    let mut conflicts = 0;
    for (i, e) in req.parsed.entries.iter().enumerate() {
        let target = match req.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/{}", e.name),
            _ => e.name.clone(),
        };
        validate_new_name(&target)?;
        let taken = |n: &str, plan: &[(String, usize, &str)]| {
            vault.payload.entries.contains_key(n) || plan.iter().any(|(p, ..)| p == n)
        };
        if !taken(&target, &plan) {
            plan.push((target, i, "added"));
            continue;
        }
        conflicts += 1;
        match req.on_conflict {
            OnConflict::Fail => {
                return Err(Error::Exists(format!(
                    "an entry named '{target}' already exists; nothing was migrated \
                     (use --on-conflict skip, rename or overwrite, or --prefix)"
                )));
            }
            OnConflict::Skip => plan.push((target, i, "skipped")),
            OnConflict::Overwrite => plan.push((target, i, "overwritten")),
            OnConflict::Rename => {
                let free = (2..1000)
                    .map(|n| suffixed(&target, n))
                    .find(|n| validate_new_name(n).is_ok() && !taken(n, &plan))
                    .ok_or_else(|| Error::Exists(format!("no free name for '{target}'")))?;
                plan.push((free, i, "renamed"));
            }
        }
    }
    let items: Vec<MigrateItem> = plan
        .iter()
        .map(|(name, i, action)| MigrateItem {
            name: name.clone(),
            original: req.parsed.entries[*i].original.clone(),
            action: (*action).into(),
            escaped: escaped[*i].clone(),
        })
        .collect();
    let skipped = items.iter().filter(|i| i.action == "skipped").count();
    let report = MigrateReport {
        format: req.format,
        source: req.source.clone(),
        imported: items.len() - skipped,
        items,
        unusable: req.parsed.unusable.clone(),
        skipped,
        conflicts,
        dry_run: req.dry_run,
    };
    if req.dry_run {
        return Ok(report);
    }
    let from = req.format.label();
    for (name, i, action) in plan {
        if action == "skipped" {
            continue;
        }
        let m = &req.parsed.entries[i];
        let entry = Entry {
            id: random_id()?,
            revision: 1,
            name: name.clone(),
            secret: Some(m.secret.clone()),
            secret_set_at: now,
            scopes: m.scopes.clone(),
            url: m.url.clone(),
            username: m.username.clone(),
            issuer: None,
            contact: None,
            used_by: m.used_by.clone(),
            tags: m.tags.clone(),
            note: m.note.clone(),
            created_at: now,
            updated_at: now,
            expires_at: m.expires_at,
            rotate_every: m.rotate_every,
            last_rotated_at: None,
            status: Status::Active,
            history: Vec::new(),
            shared_with: Vec::new(),
            received_from: Some(Provenance {
                from: from.into(),
                reference: m.reference.clone(),
                at: now,
            }),
        };
        vault.insert_replacing(entry, now)?;
        vault.audit(
            now,
            "migrate",
            Some(&name),
            format!("{action} from {from} ({})", req.source),
        );
    }
    Ok(report)
}

/// Applies [`crate::text`]'s input rule to what a parser read, whatever the format: control
/// characters in the metadata (and in the source's names and references, which reports and
/// `show` print) are written out visibly; a note keeps its lines. The secret is not touched.
/// Returns the fields that held some, for the report.
fn make_clean(e: &mut MigratedEntry) -> Vec<String> {
    let mut escaped = Vec::new();
    let mut clean = |what: &str, v: &mut String, lines: Lines| {
        let (text, changed) = sanitize(v, lines);
        if let std::borrow::Cow::Owned(t) = text {
            *v = t;
        }
        if changed && !escaped.iter().any(|w| w == what) {
            escaped.push(what.to_owned());
        }
    };
    for (what, field) in [("url", &mut e.url), ("username", &mut e.username)] {
        if let Some(v) = field {
            clean(what, v, Lines::One);
        }
    }
    for (what, list) in [
        ("tags", &mut e.tags),
        ("scopes", &mut e.scopes),
        ("used_by", &mut e.used_by),
    ] {
        for v in list {
            clean(what, v, Lines::One);
        }
    }
    if let Some(n) = &mut e.note {
        clean("note", n, Lines::Many);
    }
    clean("name", &mut e.original, Lines::One);
    clean("reference", &mut e.reference, Lines::One);
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_names_are_transliterated_not_flattened() {
        for (source, name) in [
            ("Ünïcödé", "Unicode"),
            ("Straße", "Strasse"),
            ("Ærøskøbing Łódź", "AEroskobing-Lodz"),
            ("Пароль", "Parol"),
            ("Κλειδί", "Kleidi"),
            ("密码", "Mi-Ma"),
        ] {
            assert_eq!(clean_segment(source), name, "{source}");
        }
        let mut p = Parsed::default();
        for original in ["Ünïcödé", "Unicode"] {
            p.push(MigratedEntry::new(
                clean_name([original]),
                original.into(),
                Token::new("x".into()),
            ));
        }
        let names: Vec<&str> = p.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Unicode", "Unicode-2"]);
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(
            clean_name(["Cloud", "AWS prod", "deploy key"]),
            "Cloud/AWS-prod/deploy-key"
        );
        assert_eq!(clean_name(["..", "é x", ""]), "_/e-x");
        assert_eq!(clean_name(["a//b"]), "a-b");
        let long = "x".repeat(300);
        let n = clean_name([long.as_str(), "y"]);
        assert!(validate_new_name(&n).is_ok());
        assert!(validate_new_name(&suffixed(&n, 12)).is_ok());
        let long = "é".repeat(300);
        assert!(validate_new_name(&clean_name([long.as_str()])).is_ok());
        for s in [
            "",
            "/",
            "é",
            " . ",
            "a/../b",
            "-x/--help",
            "½",
            "🔑",
            "\u{301}",
            "..\u{301}",
        ] {
            assert!(
                validate_new_name(&clean_name(s.split('/'))).is_ok(),
                "{s:?}"
            );
        }
    }
}
