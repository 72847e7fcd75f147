//! Bitwarden's unencrypted JSON export (`bw export --format json`, or the web vault's
//! "File format: .json"), read with serde_json.
//!
//! A login becomes an entry: `login.password` is the secret, the first URI the url, the
//! username the username; notes, visible custom fields and further URIs go to the note.
//! Hidden custom fields and a TOTP seed are secrets too: each becomes its own entry,
//! `ITEM/FIELD`. The folder (`Parent/Child` in Bitwarden) is the name prefix. Items with no
//! secret at all (cards, identities, notes without hidden fields) are reported, not migrated.

use super::{MigratedEntry, Parsed, clean_name, nonempty, parse_error, read_source};
use crate::Result;
use crate::secret::Token;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Deserialize)]
struct Export {
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    folders: Vec<Folder>,
    #[serde(default)]
    collections: Vec<Folder>,
    #[serde(default)]
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Folder {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    folder_id: Option<String>,
    #[serde(default)]
    collection_ids: Option<Vec<String>>,
    #[serde(default)]
    fields: Option<Vec<Field>>,
    #[serde(default)]
    login: Option<Login>,
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    uris: Option<Vec<Uri>>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    totp: Option<String>,
}

#[derive(Deserialize)]
struct Uri {
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize)]
struct Field {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(rename = "type", default)]
    kind: u8,
}

const LOGIN: u8 = 1;
const FIELD_HIDDEN: u8 = 1;
const FIELD_LINKED: u8 = 3;

/// Parses a Bitwarden JSON export.
pub fn parse(path: &Path) -> Result<Parsed> {
    let source = read_source(path)?;
    let bytes = source.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&source);
    if bytes.starts_with(b"folder,") || bytes.starts_with(b"collections,") {
        return Err(parse_error(
            path,
            None,
            "this is Bitwarden's CSV export; jeton reads the unencrypted JSON export: \
             bw export --format json",
        ));
    }
    // serde_json's messages may quote the input: only its line and category are shown.
    let export: Export = serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "invalid JSON"
            }
            _ => "not a Bitwarden JSON export (unexpected structure)",
        };
        parse_error(path, Some(e.line()).filter(|l| *l > 0), what)
    })?;
    if export.encrypted {
        return Err(parse_error(
            path,
            None,
            "this is an encrypted Bitwarden export; export again with the unencrypted JSON format",
        ));
    }
    let folders: HashMap<&str, &str> = export
        .folders
        .iter()
        .chain(&export.collections)
        .map(|f| (f.id.as_str(), f.name.as_str()))
        .collect();
    let mut parsed = Parsed::default();
    for item in &export.items {
        let title = item.name.as_deref().unwrap_or("").trim();
        let title = if title.is_empty() { "untitled" } else { title };
        let folder = item
            .folder_id
            .as_deref()
            .or_else(|| item.collection_ids.as_ref()?.first().map(String::as_str))
            .and_then(|id| folders.get(id).copied());
        let mut segments: Vec<&str> = folder.map(|f| f.split('/').collect()).unwrap_or_default();
        segments.push(title);
        let name = clean_name(segments.iter().copied());
        let original = match folder {
            Some(f) => format!("{f}/{title}"),
            None => title.to_owned(),
        };
        let reference = format!("{}#{}", path.display(), item.id.as_deref().unwrap_or(title));
        let login = item.login.as_ref().filter(|_| item.kind == LOGIN);
        let uris: Vec<&str> = login
            .and_then(|l| l.uris.as_ref())
            .map(|u| {
                u.iter()
                    .filter_map(|u| u.uri.as_deref().map(str::trim))
                    .filter(|u| !u.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let fields = item.fields.as_deref().unwrap_or_default();
        let mut note_lines: Vec<String> = nonempty(item.notes.as_deref()).into_iter().collect();
        for f in fields
            .iter()
            .filter(|f| f.kind != FIELD_HIDDEN && f.kind != FIELD_LINKED)
        {
            note_lines.push(format!(
                "{}: {}",
                f.name.as_deref().unwrap_or("field"),
                f.value.as_deref().unwrap_or("")
            ));
        }
        for u in uris.iter().skip(1) {
            note_lines.push(format!("uri: {u}"));
        }
        let password = login
            .and_then(|l| l.password.as_deref())
            .filter(|p| !p.is_empty());
        let username = login.and_then(|l| nonempty(l.username.as_deref()));
        let mut made = 0;
        if let Some(p) = password {
            parsed.push(MigratedEntry {
                name: name.clone(),
                original: original.clone(),
                secret: Token::new(p.to_owned()),
                url: uris.first().map(|u| (*u).to_owned()),
                username: username.clone(),
                tags: Vec::new(),
                note: (!note_lines.is_empty()).then(|| note_lines.join("\n")),
                expires_at: None,
                reference: reference.clone(),
                scopes: Vec::new(),
                used_by: Vec::new(),
                rotate_every: None,
            });
            made += 1;
        }
        let extra_secrets = fields
            .iter()
            .filter(|f| f.kind == FIELD_HIDDEN)
            .map(|f| (f.name.as_deref().unwrap_or("hidden"), f.value.as_deref()))
            .chain(std::iter::once((
                "totp",
                login.and_then(|l| l.totp.as_deref()),
            )));
        for (field, value) in extra_secrets {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let mut segs = segments.clone();
            segs.push(field);
            parsed.push(MigratedEntry {
                name: clean_name(segs.iter().copied()),
                original: format!("{original} ({field})"),
                secret: Token::new(value.to_owned()),
                url: uris.first().map(|u| (*u).to_owned()),
                username: username.clone(),
                tags: Vec::new(),
                note: Some(format!("field '{field}' of '{original}'")),
                expires_at: None,
                reference: format!("{reference}#{field}"),
                scopes: Vec::new(),
                used_by: Vec::new(),
                rotate_every: None,
            });
            made += 1;
        }
        if made == 0 {
            parsed.skip(original, "no password and no hidden field");
        }
    }
    Ok(parsed)
}
