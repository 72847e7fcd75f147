//! `.env` files, read with `dotenvy` (the maintained fork of the `dotenv` crate).
//!
//! dotenvy handles what dotenv tools accept: `export ` prefixes, `#` comments and blank lines,
//! unquoted values (trailing comments cut), single quotes (literal), double quotes (escapes
//! such as `\n`, `\"`, `\\`, and values spanning lines), and `$VAR` / `${VAR}` expansion in
//! unquoted and double-quoted values, from the environment first and then from earlier lines,
//! as `docker compose` and `source` do. A reference to a `JETON_*` variable is refused, so a
//! `.env` file cannot copy jeton's own passphrase settings into an entry.

use super::{MigratedEntry, Parsed, clean_name, parse_error, read_source};
use crate::secret::Token;
use crate::{Error, Result};
use std::path::Path;

/// Parses a `.env` file.
pub fn parse(path: &Path) -> Result<Parsed> {
    let bytes = read_source(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| parse_error(path, Some(line_of(&bytes, e.valid_up_to())), "not UTF-8"))?;
    if let Some(pos) = text.find("$JETON_").or_else(|| text.find("${JETON_")) {
        return Err(parse_error(
            path,
            Some(line_of(text.as_bytes(), pos)),
            "refusing to expand a JETON_* variable",
        ));
    }
    let mut parsed = Parsed::default();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(dotenvy::Error::LineParse(buf, index)) => {
                let line = text.find(buf.as_str()).map(|start| {
                    // At the end of the input (an unterminated quote): the line it opened on.
                    let at = if index >= buf.len() {
                        start
                    } else {
                        start + index
                    };
                    line_of(text.as_bytes(), at)
                });
                let mut buf = buf;
                zeroize::Zeroize::zeroize(&mut buf);
                return Err(parse_error(
                    path,
                    line,
                    "unterminated quote or invalid KEY=value line",
                ));
            }
            Err(dotenvy::Error::Io(e)) => return Err(Error::io("cannot read", path, e)),
            Err(_) => return Err(parse_error(path, None, "invalid content")),
        };
        let value = Token::new(value);
        if value.expose_secret().is_empty() {
            parsed.skip(key, "empty value");
            continue;
        }
        parsed.push(MigratedEntry {
            name: clean_name([key.as_str()]),
            reference: format!("{}#{key}", path.display()),
            original: key,
            secret: value,
            url: None,
            username: None,
            tags: Vec::new(),
            note: None,
            expires_at: None,
        });
    }
    Ok(parsed)
}

/// The 1-based line holding byte `pos`.
fn line_of(bytes: &[u8], pos: usize) -> usize {
    bytes[..pos.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Parsed> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(&p, text).unwrap();
        parse(&p)
    }

    #[test]
    fn quoting_styles() {
        let p = parse_text(
            "# comment\n\nexport A=plain # trailing\nB='single $HOME \\n'\nC=\"dq \\\"x\\\" \\n y\"\nD=\"multi\nline\"\nE=\n",
        )
        .unwrap();
        let got: Vec<(&str, &str)> = p
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.secret.expose_secret()))
            .collect();
        assert_eq!(
            got,
            [
                ("A", "plain"),
                ("B", "single $HOME \\n"),
                ("C", "dq \"x\" \n y"),
                ("D", "multi\nline")
            ]
        );
        assert_eq!(p.unusable.len(), 1);
    }

    #[test]
    fn errors_name_the_line_and_not_the_content() {
        let e = parse_text("A=1\nB=2\nC=\"open SECRETVALUE\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(!msg.contains("SECRETVALUE"), "{msg}");
        let e = parse_text("A=1\nB=${JETON_PASSPHRASE}\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
