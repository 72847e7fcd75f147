//! `jeton inject`: fill `{{ jeton://NAME[#field] }}` references in a template (SPEC §8).
//!
//! `{{` not followed by `jeton://` is ordinary text (other template languages keep working).
//! A reference that does not parse is a usage error naming its line; every reference is
//! resolved in one request before anything is written.

use super::{Reference, Resolved};
use crate::{Error, Result};
use zeroize::Zeroizing;

/// A template split into text and references.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Copied as is.
    Text(&'a str),
    /// Replaced by a value.
    Reference(Reference),
}

/// Splits a template.
pub fn parse(template: &str) -> Result<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut rest = template;
    let mut consumed = 0;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let inner_start = after.trim_start();
        if !inner_start.starts_with(super::REFERENCE_SCHEME) {
            pieces.push(Piece::Text(&rest[..open + 2]));
            consumed += open + 2;
            rest = after;
            continue;
        }
        let line = template[..consumed + open].matches('\n').count() + 1;
        let close = after.find("}}").ok_or_else(|| {
            Error::Usage(format!(
                "template line {line}: '{{{{ jeton://' without a closing '}}}}'"
            ))
        })?;
        let inner = after[..close].trim();
        let reference = Reference::parse_url(inner)
            .unwrap_or_else(|| Err(Error::Usage("not a reference".into())))
            .map_err(|e| Error::Usage(format!("template line {line}: {e}")))?;
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Reference(reference));
        consumed += open + 2 + close + 2;
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// The distinct references of a template, in order of first use.
pub fn references(pieces: &[Piece<'_>]) -> Vec<Reference> {
    let mut out: Vec<Reference> = Vec::new();
    for p in pieces {
        if let Piece::Reference(r) = p
            && !out.contains(r)
        {
            out.push(r.clone());
        }
    }
    out
}

/// Fills the template with resolved values.
pub fn render(pieces: &[Piece<'_>], values: &[Resolved]) -> Result<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::new());
    let len: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.len(),
            Piece::Reference(r) => values
                .iter()
                .find(|v| v.reference == *r)
                .map_or(0, |v| v.value.expose_secret().len()),
        })
        .sum();
    out.reserve_exact(len);
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Reference(r) => {
                let v = values
                    .iter()
                    .find(|v| v.reference == *r)
                    .ok_or_else(|| Error::Other(format!("internal error: {r} was not resolved")))?;
                out.push_str(v.value.expose_secret());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Token;

    #[test]
    fn templates() {
        let t = "a={{ jeton://x }}\nb={{jeton://y#username}} {{ other }} {{ jeton://x }}";
        let pieces = parse(t).unwrap();
        let refs = references(&pieces);
        assert_eq!(refs.len(), 2);
        let values: Vec<Resolved> = refs
            .into_iter()
            .zip(["S1", "bob"])
            .map(|(reference, v)| Resolved {
                reference,
                value: Token::new(v.into()),
                expires_at: None,
            })
            .collect();
        assert_eq!(
            render(&pieces, &values).unwrap().as_str(),
            "a=S1\nb=bob {{ other }} S1"
        );
        assert!(
            parse("x\n{{ jeton://a")
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );
        assert!(parse("{{ jeton://a b }}").is_err());
        assert!(parse("{{ jeton://a#bad }}").is_err());
        assert_eq!(
            parse("no refs {{").unwrap(),
            vec![Piece::Text("no refs {{")]
        );
    }
}
