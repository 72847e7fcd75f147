//! A password store as `pass` and `gopass` (gpg backend) keep it: one `NAME.gpg` file per
//! entry under the store directory, each decrypted by the user's own `gpg` (and so by their
//! gpg-agent, pinentry and keys; jeton never sees a gpg key).
//!
//! As in `pass show`, the first line is the secret. After it, `key: value` lines fill the
//! fields they name (url, username, tags, note, expires, scope, used-by, rotate-every, with
//! jeton's own flag names; a few aliases are accepted), gopass's
//! `---` separator is dropped, and every other line goes to the note. Names keep the store's
//! path. Hidden files and directories (`.git`, `.gpg-id`) are skipped. Symbolic links are not
//! followed (one may lead out of the store or in a loop): each link to an entry or a folder is
//! listed as left out, so that the user can migrate its target.

use super::{MigratedEntry, Parsed, clean_name, split_tags};
use crate::secret::Token;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use zeroize::Zeroizing;

/// Most `.gpg` files read from one store.
const MAX_FILES: usize = 100_000;

/// Parses a password-store directory.
pub fn parse(store: &Path, now: crate::time::Time) -> Result<Parsed> {
    let meta = std::fs::metadata(store).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("no password store at {}", store.display()))
        } else {
            Error::io("cannot read", store, e)
        }
    })?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "{} is not a password-store directory",
            store.display()
        )));
    }
    let mut files = Vec::new();
    let mut links = Vec::new();
    collect(store, &mut files, &mut links)?;
    files.sort();
    links.sort();
    let mut parsed = Parsed::default();
    for link in links {
        let rel = link.strip_prefix(store).unwrap_or(&link).to_string_lossy();
        let original = rel.strip_suffix(".gpg").unwrap_or(&rel).to_owned();
        parsed.skip(
            original,
            "a symbolic link, not followed (migrate what it points to)",
        );
    }
    for file in files {
        let rel = file.strip_prefix(store).unwrap_or(&file);
        let rel_text = rel.to_string_lossy();
        let original = rel_text
            .strip_suffix(".gpg")
            .unwrap_or(&rel_text)
            .to_owned();
        let plain = decrypt(&file)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| {
            Error::Usage(format!(
                "{} does not decrypt to UTF-8 text; nothing was migrated",
                file.display()
            ))
        })?;
        let text = Zeroizing::new(text);
        match entry(&text, now) {
            Some(fields) => parsed.push(MigratedEntry {
                name: clean_name(original.split('/')),
                original,
                reference: file.display().to_string(),
                ..fields
            }),
            None => parsed.skip(original, "empty first line"),
        }
    }
    Ok(parsed)
}

/// The `.gpg` files below `dir`, and the symbolic links that `pass` would follow to an entry or
/// a folder.
fn collect(dir: &Path, out: &mut Vec<PathBuf>, links: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
    for item in rd {
        let item = item.map_err(|e| Error::io("cannot list", dir, e))?;
        let name = item.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = item
            .file_type()
            .map_err(|e| Error::io("cannot read", item.path(), e))?;
        let path = item.path();
        let is_gpg = path.extension().is_some_and(|x| x == "gpg");
        if kind.is_symlink() {
            // `metadata` follows the link: only to tell a folder from other files.
            if is_gpg || std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                if links.len() >= MAX_FILES {
                    return Err(Error::Usage(format!(
                        "the store holds more than {MAX_FILES} links"
                    )));
                }
                links.push(path);
            }
        } else if kind.is_dir() {
            collect(&path, out, links)?;
        } else if kind.is_file() && is_gpg {
            if out.len() >= MAX_FILES {
                return Err(Error::Usage(format!(
                    "the store holds more than {MAX_FILES} entries"
                )));
            }
            out.push(path);
        }
    }
    Ok(())
}

/// Runs the user's `gpg` on one file; the output is wiped on drop.
fn decrypt(file: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let out = crate::process::command("gpg")
        .args(["--quiet", "--yes", "--batch", "--decrypt", "--"])
        .arg(file)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Other(format!("cannot run gpg (is it installed?): {e}")))?;
    let plain = Zeroizing::new(out.stdout);
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        return Err(Error::Unlock(format!(
            "gpg could not decrypt {} ({}); nothing was migrated",
            file.display(),
            crate::entry::printable(why)
        )));
    }
    Ok(plain)
}

/// The fields of one decrypted file, or `None` when its first line is empty.
fn entry(text: &str, now: crate::time::Time) -> Option<MigratedEntry> {
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let secret = lines.next().filter(|s| !s.is_empty())?;
    let mut e = MigratedEntry::new(String::new(), String::new(), Token::new(secret.to_owned()));
    let mut note: Vec<&str> = Vec::new();
    let rest: Vec<&str> = lines.collect();
    let body_end = rest
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    for line in &rest[..body_end] {
        if line.trim() == "---" {
            continue;
        }
        let kv = line
            .split_once(':')
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
            .filter(|(k, v)| !k.is_empty() && !k.contains(' ') && !v.is_empty());
        let Some((key, value)) = kv else {
            note.push(line);
            continue;
        };
        match key.as_str() {
            "url" | "website" | "site" | "link" if e.url.is_none() => {
                e.url = Some(value.to_owned())
            }
            "user" | "username" | "login" | "email" if e.username.is_none() => {
                e.username = Some(value.to_owned())
            }
            "tags" | "tag" => e.tags.extend(split_tags(value)),
            "scope" | "scopes" => e.scopes.extend(split_tags(value)),
            "used-by" | "used_by" => e.used_by.extend(split_tags(value)),
            "rotate-every" | "rotate_every" if e.rotate_every.is_none() => {
                match crate::time::parse_span(value, now) {
                    Ok(span) => e.rotate_every = Some(span),
                    Err(_) => note.push(line),
                }
            }
            "note" | "notes" | "comment" => note.push(value),
            "expires" | "expiry" | "expires_at" if e.expires_at.is_none() => {
                match crate::time::parse_when(value, now) {
                    Ok(t) => e.expires_at = Some(t),
                    Err(_) => note.push(line),
                }
            }
            _ => note.push(line),
        }
    }
    e.note = (!note.is_empty()).then(|| note.join("\n"));
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_is_the_secret_and_keys_map() {
        let e = entry(
            "s3cret: with colon\nURL: https://x.example\nlogin: bob\ntags: a, b\n---\nfree text\nother: thing\nexpires: 2030-01-02\n\n",
            0,
        )
        .unwrap();
        assert_eq!(e.secret.expose_secret(), "s3cret: with colon");
        assert_eq!(e.url.as_deref(), Some("https://x.example"));
        assert_eq!(e.username.as_deref(), Some("bob"));
        assert_eq!(e.tags, ["a", "b"]);
        assert_eq!(e.note.as_deref(), Some("free text\nother: thing"));
        assert!(e.expires_at.is_some());
        assert!(entry("\nurl: x", 0).is_none());
        let e = entry(
            "tok\nscope: repo, workflow\nscope: read:org\nused-by: ci:github-actions:TOKEN\nrotate-every: 90d\nrotate-every: soon\n",
            0,
        )
        .unwrap();
        assert_eq!(e.scopes, ["repo", "workflow", "read:org"]);
        assert_eq!(e.used_by, ["ci:github-actions:TOKEN"]);
        assert_eq!(e.rotate_every, Some(90 * 86_400));
        assert_eq!(e.note.as_deref(), Some("rotate-every: soon"));
        let e = entry("tok\nrotate-every: never\n", 0).unwrap();
        assert_eq!(
            (e.rotate_every, e.note.as_deref()),
            (None, Some("rotate-every: never"))
        );
        assert_eq!(entry("only", 0).unwrap().note, None);
    }
}
