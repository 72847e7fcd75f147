//! Finding entries by what the user remembers of them: `search` ranks every entry by how well
//! a term matches its name, url, username, tags, scopes and note; a name that is not found
//! gets the closest names as suggestions. Nothing here reads a secret.
//!
//! A term matches a field case-insensitively: whole, at its start, inside it, or as letters in
//! order within a short stretch (`ghub` in `github/ci-deploy`). Closer matches and more
//! important fields rank first.

use crate::entries::Entries;
use crate::entry::Entry;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// One entry a search found, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// Name.
    pub name: String,
    /// `active`, `disabled` or `revoked`.
    pub status: String,
    /// Higher is better.
    pub score: u32,
    /// The fields the term matched, best first (`name`, `url`, `username`, `tags`, ...).
    pub matched: Vec<String>,
    /// URL.
    pub url: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
}

/// How much a match in each field counts, in percent of a match in the name.
const WEIGHTS: [(&str, u32); 6] = [
    ("name", 100),
    ("username", 80),
    ("url", 80),
    ("tags", 80),
    ("scopes", 60),
    ("note", 50),
];

/// How well `term` (already lowercased) matches `text`: `None` for no match, else higher is
/// better (1000 for equal text).
pub fn score(term: &str, text: &str) -> Option<u32> {
    if term.is_empty() {
        return None;
    }
    let text = text.to_lowercase();
    if text == term {
        return Some(1000);
    }
    // Shorter texts rank a little higher: `gh` is closer to `gh-cli` than to a long note.
    let brevity = 50u32.saturating_sub(u32::try_from(text.chars().count()).unwrap_or(u32::MAX));
    if text.starts_with(term) {
        return Some(850 + brevity);
    }
    if let Some(i) = text.find(term) {
        let boundary = text[..i].ends_with(is_separator);
        return Some(if boundary { 750 } else { 650 } + brevity);
    }
    subsequence(term, &text).map(|gaps| 500u32.saturating_sub(gaps * 20) + brevity)
}

fn is_separator(c: char) -> bool {
    !c.is_alphanumeric()
}

/// The fewest letters skipped to find `term`'s letters in order in `text`, if they lie within
/// a short stretch; longer stretches are coincidences, not matches. Terms under three letters
/// match only as substrings.
fn subsequence(term: &str, text: &str) -> Option<u32> {
    let term: Vec<char> = term.chars().collect();
    let text: Vec<char> = text.chars().collect();
    if term.len() < 3 {
        return None;
    }
    let longest = term.len() * 2 + 2;
    let mut best: Option<usize> = None;
    for start in (0..text.len()).filter(|&i| text[i] == term[0]) {
        let mut at = start;
        let mut found = true;
        for &c in &term[1..] {
            match text[at + 1..].iter().position(|&t| t == c) {
                Some(p) => at += 1 + p,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            break;
        }
        let span = at - start + 1;
        if span <= longest && best.is_none_or(|b| span < b) {
            best = Some(span);
        }
    }
    best.map(|span| u32::try_from(span - term.len()).unwrap_or(u32::MAX))
}

/// What a match in the name adds, so that any entry whose name matches ranks above every entry
/// matched only elsewhere (the best match outside the name scores 800).
const NAME_FIRST: u32 = 1000;

/// How well `term` matches `e`, and in which fields, best first. A term of several words
/// matches when every word matches somewhere (`github deploy`), or the whole term matches one
/// field. For one word, any match in the name ranks above a match only in the other fields;
/// for several, the more of them the name holds, the higher.
pub fn rank(term: &str, e: &Entry) -> Option<(u32, Vec<String>)> {
    let term = term.trim().to_lowercase();
    let words: Vec<&str> = term.split_whitespace().collect();
    let whole = rank_one(&term, e);
    if words.len() < 2 {
        return whole;
    }
    let mut total = 0u32;
    let mut fields: Vec<String> = Vec::new();
    for w in &words {
        let Some((score, matched)) = rank_one(w, e) else {
            return whole;
        };
        total += score;
        for f in matched {
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
    }
    let n = u32::try_from(words.len()).unwrap_or(u32::MAX);
    let split = (total / n * 9 / 10, fields);
    match whole {
        Some(w) if w.0 >= split.0 => Some(w),
        _ => Some(split),
    }
}

fn rank_one(term: &str, e: &Entry) -> Option<(u32, Vec<String>)> {
    let one = |v: &Option<String>| v.iter().cloned().collect::<Vec<_>>();
    let mut found: Vec<(u32, &str)> = Vec::new();
    for (field, weight) in WEIGHTS {
        let values = match field {
            "name" => vec![e.name.clone()],
            "username" => one(&e.username),
            "url" => one(&e.url),
            "tags" => e.tags.clone(),
            "scopes" => e.scopes.clone(),
            _ => one(&e.note),
        };
        let best = values.iter().filter_map(|v| score(term, v)).max();
        if let Some(s) = best {
            let s = s * weight / 100;
            found.push((if field == "name" { NAME_FIRST + s } else { s }, field));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let top = found.first()?.0;
    Some((top, found.into_iter().map(|(_, f)| f.to_owned()).collect()))
}

/// Every entry `term` matches, best first (then by name).
pub fn search(entries: &Entries, term: &str, include_revoked: bool) -> Result<Vec<Hit>> {
    if term.trim().is_empty() {
        return Err(Error::Usage("the search term is empty".into()));
    }
    let mut hits = Vec::new();
    entries.scan(|e| {
        let revoked = matches!(e.status, crate::entry::Status::Revoked { .. });
        if crate::entry::is_internal(&e.name) || (!include_revoked && revoked) {
            return Ok(());
        }
        if let Some((score, matched)) = rank(term, e) {
            hits.push(Hit {
                name: e.name.clone(),
                status: e.status.label().into(),
                score,
                matched,
                url: e.url.clone(),
                username: e.username.clone(),
                tags: e.tags.clone(),
                scopes: e.scopes.clone(),
            });
        }
        Ok(())
    })?;
    hits.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.name.cmp(&b.name)));
    Ok(hits)
}

/// The names closest to `name` (a typo, a case slip, a missing folder): the closest ones
/// only, at most three.
pub fn suggest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let wanted = name.to_lowercase();
    let mut close: Vec<(usize, &str)> = names
        .filter_map(|n| {
            let lower = n.to_lowercase();
            let distance = strsim::damerau_levenshtein(&wanted, &lower);
            let allowed = (wanted.chars().count() / 4).clamp(1, 3);
            if lower == wanted || distance <= allowed {
                Some((distance, n))
            } else if lower.ends_with(&format!("/{wanted}")) {
                Some((allowed + 1, n))
            } else {
                None
            }
        })
        .collect();
    close.sort();
    let best = close.first().map(|c| c.0);
    close
        .into_iter()
        .take_while(|c| Some(c.0) == best)
        .take(3)
        .map(|(_, n)| n.to_owned())
        .collect()
}

/// The error for a name no entry has: with the closest names, or, when the name is a folder,
/// how many entries it holds.
pub fn not_found(entries: &Entries, name: &str) -> Error {
    let shown = crate::entry::printable(name);
    let folder = format!("{}/", name.trim_end_matches('/'));
    let mut inside = 0usize;
    let _ = entries.scan_names(|n| {
        if n.starts_with(&folder) && !crate::entry::is_internal(n) {
            inside += 1;
        }
    });
    if inside > 0 {
        let plural = if inside == 1 { "entry" } else { "entries" };
        return Error::NotFound(format!(
            "'{shown}' is a folder holding {inside} {plural}, not an entry (see `jeton list {}`)",
            crate::entry::printable(&folder)
        ));
    }
    let mut names = Vec::new();
    let _ = entries.scan_names(|n| {
        if !crate::entry::is_internal(n) {
            names.push(n.to_owned());
        }
    });
    let close = suggest(name, names.iter().map(String::as_str));
    let hint = match close.as_slice() {
        [] => "(see `jeton list` or `jeton search`)".to_owned(),
        [one] => format!("did you mean '{}'?", crate::entry::printable(one)),
        many => format!(
            "did you mean {}?",
            many.iter()
                .map(|n| format!("'{}'", crate::entry::printable(n)))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    Error::NotFound(format!("no entry named '{shown}'; {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_in_order_match_within_a_short_stretch() {
        assert!(score("ghub", "github/ci-deploy").is_some());
        assert!(score("gcd", "github/ci-deploy").is_none(), "too spread out");
        assert!(score("xyz", "github/ci-deploy").is_none());
        assert!(
            score("gh", "github").is_none(),
            "two letters match only as text"
        );
    }

    #[test]
    fn closer_matches_rank_first() {
        let exact = score("deploy", "deploy").unwrap();
        let start = score("deploy", "deploy-bot").unwrap();
        let word = score("deploy", "ci/deploy").unwrap();
        let inside = score("deploy", "cideploy").unwrap();
        let fuzzy = score("dply", "deploy").unwrap();
        assert!(exact > start && start > word && word > inside && inside > fuzzy);
        assert_eq!(
            score("github", "GitHub"),
            Some(1000),
            "case does not matter"
        );
    }

    #[test]
    fn suggestions_catch_typos_case_and_missing_folders() {
        let names = ["github/work", "github/ci-deploy", "gitlab/work", "npm"];
        let s = |n: &str| suggest(n, names.iter().copied());
        assert_eq!(s("github/wrok"), ["github/work"]);
        assert_eq!(s("GitHub/Work"), ["github/work"]);
        assert_eq!(s("ci-deploy"), ["github/ci-deploy"]);
        assert_eq!(s("npn"), ["npm"]);
        assert!(s("aws/prod").is_empty());
    }
}
