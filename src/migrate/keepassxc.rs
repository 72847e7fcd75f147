//! KeePassXC's XML export (`keepassxc-cli export --format xml`), read with `roxmltree`.
//!
//! The XML export is used rather than the CSV one because only the XML carries tags, expiry
//! times and custom attributes. roxmltree is a small read-only XML tree with no dependencies
//! that refuses DTDs (so no entity expansion), which is all an import needs.
//!
//! Per entry: Password is the secret, URL, UserName, Notes and Tags map to their fields, the
//! expiry time is kept when "Expires" is set, and the group path (below the root group) is the
//! name prefix. Other unprotected attributes go to the note; protected ones, and the `otp`
//! attribute (a TOTP seed), are secrets and become their own entries, `ENTRY/ATTRIBUTE`. A seed
//! kept the older way (`TOTP Seed`, with `TOTP Settings` `PERIOD;DIGITS`) becomes `ENTRY/otp`,
//! an otpauth URI that keeps its period and digits. The recycle bin and entry history are
//! skipped.

use super::{MigratedEntry, Parsed, clean_name, nonempty, parse_error, read_source, split_tags};
use crate::Result;
use crate::secret::Token;
use roxmltree::{Document, Node};
use std::path::Path;

const STANDARD: &[&str] = &["Title", "Password", "UserName", "URL", "Notes"];

fn child<'a, 'i>(n: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(tag))
}

fn child_text<'a>(n: Node<'a, '_>, tag: &str) -> Option<&'a str> {
    child(n, tag).and_then(|c| c.text())
}

/// The first bytes of a KeePass 2 (`.kdbx`) database file.
const KDBX_SIGNATURE: [u8; 4] = [0x03, 0xd9, 0xa2, 0x9a];

/// How to make the file this module reads.
const EXPORT_XML: &str = "keepassxc-cli export --format xml DATABASE > FILE";

/// Parses a KeePassXC XML export.
pub fn parse(path: &Path) -> Result<Parsed> {
    let bytes = read_source(path)?;
    if bytes.starts_with(&KDBX_SIGNATURE) {
        return Err(parse_error(
            path,
            None,
            &format!("this is a KeePass database, not an export; export it first: {EXPORT_XML}"),
        ));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| parse_error(path, None, "not UTF-8"))?;
    if text
        .trim_start_matches('\u{feff}')
        .starts_with(r#""Group","Title","#)
    {
        return Err(parse_error(
            path,
            None,
            &format!(
                "this is KeePassXC's CSV export, which drops tags, expiry times and attributes; \
                 jeton reads the XML export: {EXPORT_XML}"
            ),
        ));
    }
    let doc = Document::parse(text).map_err(|e| {
        // roxmltree gives no position where the text ran out: that is its last line.
        let (line, what) = match e {
            roxmltree::Error::UnexpectedEndOfStream | roxmltree::Error::UnclosedRootNode => (
                Some(text.lines().count().max(1)),
                "the XML ends too early (is the file cut short?)",
            ),
            roxmltree::Error::NoRootNode
            | roxmltree::Error::DtdDetected
            | roxmltree::Error::NodesLimitReached
            | roxmltree::Error::AttributesLimitReached
            | roxmltree::Error::NamespacesLimitReached => (None, "invalid XML"),
            _ => (Some(e.pos().row as usize), "invalid XML"),
        };
        parse_error(
            path,
            line,
            &format!("{what} (jeton reads the XML export: {EXPORT_XML})"),
        )
    })?;
    let root = doc.root_element();
    let top = (root.has_tag_name("KeePassFile"))
        .then(|| child(root, "Root"))
        .flatten()
        .and_then(|r| child(r, "Group"))
        .ok_or_else(|| {
            parse_error(
                path,
                None,
                "not a KeePass XML export (no KeePassFile/Root/Group)",
            )
        })?;
    let recycle_bin = child(root, "Meta").and_then(|m| child_text(m, "RecycleBinUUID"));
    let mut parsed = Parsed::default();
    walk(path, &doc, top, &mut Vec::new(), recycle_bin, &mut parsed)?;
    Ok(parsed)
}

fn walk<'a>(
    path: &Path,
    doc: &Document,
    group: Node<'a, '_>,
    prefix: &mut Vec<&'a str>,
    recycle_bin: Option<&str>,
    parsed: &mut Parsed,
) -> Result<()> {
    for node in group.children().filter(|n| n.is_element()) {
        if node.has_tag_name("Entry") {
            entry(path, doc, node, prefix, parsed)?;
        } else if node.has_tag_name("Group") {
            let uuid = child_text(node, "UUID");
            if uuid.is_some() && uuid == recycle_bin {
                continue;
            }
            prefix.push(child_text(node, "Name").unwrap_or("_"));
            walk(path, doc, node, prefix, recycle_bin, parsed)?;
            prefix.pop();
        }
    }
    Ok(())
}

fn entry(
    path: &Path,
    doc: &Document,
    node: Node<'_, '_>,
    prefix: &[&str],
    parsed: &mut Parsed,
) -> Result<()> {
    let strings: Vec<(&str, &str, bool)> = node
        .children()
        .filter(|c| c.has_tag_name("String"))
        .filter_map(|s| {
            let key = child_text(s, "Key")?;
            let value = child(s, "Value")?;
            let protected = value.attribute("ProtectInMemory") == Some("True");
            Some((key, value.text().unwrap_or(""), protected))
        })
        .collect();
    let get = |k: &str| strings.iter().find(|(key, ..)| *key == k).map(|s| s.1);
    let title = get("Title").map(str::trim).filter(|t| !t.is_empty());
    let title = title.unwrap_or("untitled");
    let mut segments: Vec<&str> = prefix.to_vec();
    segments.push(title);
    let original = segments.join("/");
    let reference = format!(
        "{}#{}",
        path.display(),
        child_text(node, "UUID").unwrap_or(title)
    );
    let times = child(node, "Times");
    let expires = times.and_then(|t| child_text(t, "Expires")) == Some("True");
    let expires_at = match times.and_then(|t| child(t, "ExpiryTime")) {
        Some(t) if expires => {
            let when = t.text().unwrap_or("").trim();
            let parsed_time = when
                .parse::<jiff::Timestamp>()
                .map_err(|_| {
                    let row = doc.text_pos_at(t.range().start).row as usize;
                    parse_error(path, Some(row), "unreadable ExpiryTime")
                })?
                .as_second();
            Some(parsed_time)
        }
        _ => None,
    };
    let url = nonempty(get("URL"));
    let username = nonempty(get("UserName"));
    let tags = child_text(node, "Tags").map(split_tags).unwrap_or_default();
    let mut note_lines: Vec<String> = nonempty(get("Notes")).into_iter().collect();
    // KeePassXC keeps an entry's TOTP seed in the `otp` attribute, protected or not: it is a
    // secret, and becomes a usable entry (`jeton otp ENTRY`).
    let secret_attribute = |k: &str, protected: bool| protected || k == "otp";
    // Older KeePassXC (and KeeOTP) kept it as `TOTP Seed`, with `TOTP Settings` beside it.
    let legacy = get("otp").is_none() && nonempty(get(LEGACY_SEED)).is_some();
    let taken = |k: &str| STANDARD.contains(&k) || (legacy && LEGACY.contains(&k));
    for (k, v, _) in strings
        .iter()
        .filter(|(k, _, p)| !secret_attribute(k, *p) && !taken(k))
    {
        note_lines.push(format!("{k}: {v}"));
    }
    let mut made = 0;
    if let Some(p) = get("Password").filter(|p| !p.is_empty()) {
        parsed.push(MigratedEntry {
            name: clean_name(segments.iter().copied()),
            original: original.clone(),
            secret: Token::new(p.to_owned()),
            url: url.clone(),
            username: username.clone(),
            tags: tags.clone(),
            note: (!note_lines.is_empty()).then(|| note_lines.join("\n")),
            expires_at,
            reference: reference.clone(),
            scopes: Vec::new(),
            used_by: Vec::new(),
            rotate_every: None,
        });
        made += 1;
    }
    for (k, v, _) in strings
        .iter()
        .filter(|(k, v, p)| secret_attribute(k, *p) && !taken(k) && !v.is_empty())
    {
        let mut segs = segments.clone();
        segs.push(k);
        parsed.push(MigratedEntry {
            name: clean_name(segs.iter().copied()),
            original: format!("{original} ({k})"),
            secret: Token::new((*v).to_owned()),
            url: url.clone(),
            username: username.clone(),
            tags: tags.clone(),
            note: Some(format!("attribute '{k}' of '{original}'")),
            expires_at,
            reference: format!("{reference}#{k}"),
            scopes: Vec::new(),
            used_by: Vec::new(),
            rotate_every: None,
        });
        made += 1;
    }
    if legacy {
        let seed = get(LEGACY_SEED).unwrap_or_default();
        match legacy_uri(seed, get(LEGACY_SETTINGS), &original) {
            Ok(uri) => {
                let mut segs = segments.clone();
                segs.push("otp");
                parsed.push(MigratedEntry {
                    name: clean_name(segs.iter().copied()),
                    original: format!("{original} ({LEGACY_SEED})"),
                    secret: Token::new(uri.to_string()),
                    url,
                    username,
                    tags,
                    note: Some(format!("attribute '{LEGACY_SEED}' of '{original}'")),
                    expires_at,
                    reference: format!("{reference}#{LEGACY_SEED}"),
                    scopes: Vec::new(),
                    used_by: Vec::new(),
                    rotate_every: None,
                });
                made += 1;
            }
            Err(why) => parsed.skip(format!("{original} ({LEGACY_SEED})"), why),
        }
    }
    if made == 0 {
        parsed.skip(original, "no password");
    }
    Ok(())
}

/// The attributes of a TOTP seed as KeePassXC kept it before its `otp` attribute.
const LEGACY_SEED: &str = "TOTP Seed";
const LEGACY_SETTINGS: &str = "TOTP Settings";
const LEGACY: [&str; 2] = [LEGACY_SEED, LEGACY_SETTINGS];

/// An otpauth URI for a legacy `TOTP Seed` (base32) and its `TOTP Settings`, `PERIOD;DIGITS`
/// (`30;6`, `30;8`; no settings: 30 s, 6 digits), or why it cannot be one. `S` as the digits
/// means Steam's own codes, which are not RFC 6238 codes.
fn legacy_uri(
    seed: &str,
    settings: Option<&str>,
    label: &str,
) -> std::result::Result<zeroize::Zeroizing<String>, String> {
    let settings = settings.map(str::trim).filter(|s| !s.is_empty());
    let (period, digits) = match settings {
        None => ("30", "6"),
        Some(s) => s.split_once(';').unwrap_or((s, "6")),
    };
    let (period, digits) = (period.trim(), digits.trim());
    if digits.eq_ignore_ascii_case("S") {
        return Err("a Steam one-time code seed (jeton makes RFC 6238 codes only)".into());
    }
    let numbers = period.parse::<u64>().is_ok() && digits.parse::<u32>().is_ok();
    if !numbers {
        return Err(format!(
            "'{LEGACY_SETTINGS}' is not PERIOD;DIGITS: {}",
            crate::entry::printable(settings.unwrap_or_default())
        ));
    }
    let uri = crate::otp::to_uri(seed, label).map_err(|e| e.to_string())?;
    let uri = zeroize::Zeroizing::new(format!("{}&period={period}&digits={digits}", uri.as_str()));
    // Out-of-range values are refused as they would be in any URI.
    crate::otp::Totp::parse(&uri).map_err(|e| e.to_string())?;
    Ok(uri)
}
