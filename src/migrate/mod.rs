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

use crate::entry::{Entry, Provenance, Status, validate_name};
use crate::secret::Token;
use crate::share::import::OnConflict;
use crate::time::Time;
use crate::vault::{Vault, random_id};
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

/// Makes one path segment valid: characters outside `[A-Za-z0-9._@-]` become `-` (runs of
/// them one `-`), and an empty, `.` or `..` segment becomes `_`.
pub fn clean_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        let c = if c.is_ascii_alphanumeric() || "._@-".contains(c) {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
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
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("no such file: {}", path.display()))
        } else {
            Error::io("cannot read", path, e)
        }
    })?;
    // One zeroizing buffer, no copy left behind as it grows: an export holds secrets.
    crate::secret::read_capped(f, MAX_SOURCE_LEN as usize).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            Error::Usage(format!("{} is larger than 64 MiB", path.display()))
        } else {
            Error::io("cannot read", path, e)
        }
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
pub fn execute(vault: &mut Vault, req: MigrateRequest, now: Time) -> Result<MigrateReport> {
    let mut plan: Vec<(String, usize, &'static str)> = Vec::new();
    let mut conflicts = 0;
    for (i, e) in req.parsed.entries.iter().enumerate() {
        let target = match req.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/{}", e.name),
            _ => e.name.clone(),
        };
        validate_name(&target)?;
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
                    .find(|n| validate_name(n).is_ok() && !taken(n, &plan))
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
            scopes: Vec::new(),
            url: m.url.clone(),
            username: m.username.clone(),
            issuer: None,
            contact: None,
            used_by: Vec::new(),
            tags: m.tags.clone(),
            note: m.note.clone(),
            created_at: now,
            updated_at: now,
            expires_at: m.expires_at,
            rotate_every: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid() {
        assert_eq!(
            clean_name(["Cloud", "AWS prod", "deploy key"]),
            "Cloud/AWS-prod/deploy-key"
        );
        assert_eq!(clean_name(["..", "é x", ""]), "_/x");
        assert_eq!(clean_name(["a//b"]), "a-b");
        let long = "x".repeat(300);
        let n = clean_name([long.as_str(), "y"]);
        assert!(validate_name(&n).is_ok());
        assert!(validate_name(&suffixed(&n, 12)).is_ok());
        for s in ["", "/", "é", " . ", "a/../b"] {
            assert!(validate_name(&clean_name(s.split('/'))).is_ok(), "{s:?}");
        }
    }
}
