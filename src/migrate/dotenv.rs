//! `.env` files, read exactly as python-dotenv's `dotenv_values` reads them.
//!
//! No crate reads `.env` files the way the reference tool does (dotenvy expands `$VAR`, keeps the
//! first of two equal keys and refuses `KEY = value`), so this module is a port of python-dotenv's
//! own parser (`src/dotenv/parser.py`, `variables.py` and `resolve_variables` in `main.py`),
//! rule for rule; the tests compare it with python-dotenv itself on a corpus of tricky files.
//! What that grammar says, in short:
//!
//! - The file is UTF-8; a leading byte-order mark is dropped, and `\r\n` and `\r` end lines like
//!   `\n` (Python reads text files with universal newlines).
//! - `export ` before a key changes nothing; a key is single-quoted or runs to `=`, `#` or a
//!   space; spaces around `=` are ignored; `#` lines are comments; a key without `=` has no value.
//! - An unquoted value runs to the end of the line, cut at the first `#` that follows a space,
//!   trailing spaces dropped. A quoted value may span lines; in single quotes only `\\` and `\'`
//!   are escapes, in double quotes also `\"`, `\a`, `\b`, `\f`, `\n`, `\r`, `\t` and `\v`.
//! - The last of two equal keys wins.
//! - `$` is never expanded unless asked for (`--expand`): then `${VAR}` and `${VAR:-default}`
//!   (never a bare `$VAR`) take the value of VAR from the earlier lines of the file, else from
//!   the environment, else the default, else nothing, in every kind of value, as python-dotenv
//!   does. A reference to a `JETON_*` variable is refused: jeton's own settings (the passphrase
//!   among them) never go into an entry.
//!
//! Where python-dotenv warns and skips a line it cannot read, jeton refuses the whole file and
//! names the line and the reason: a secret left behind without a word is the failure to avoid.

use super::{MigratedEntry, Parsed, clean_name, parse_error, read_source};
use crate::secret::Token;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use zeroize::Zeroizing;

/// One `KEY[=VALUE]` statement of a file, as python-dotenv's `parse_stream` yields it.
pub struct Binding {
    /// The key, as written (unquoted).
    pub key: String,
    /// The value; `None` for a key written without `=`.
    pub value: Option<Zeroizing<String>>,
    /// The 1-based line the key is on.
    pub line: usize,
}

/// Why a statement cannot be read, and on which line. Never holds file content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line the statement starts on.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The line where reading it failed, when that is a later one (a quoted value spans lines).
    pub at: usize,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason)?;
        if self.at != self.line {
            write!(f, " (on line {})", self.at)?;
        }
        Ok(())
    }
}

/// Parses a `.env` file into entries; `expand` turns on `${VAR}` expansion.
pub fn parse(path: &Path, expand: bool) -> Result<Parsed> {
    let bytes = read_source(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| parse_error(path, Some(line_of(&bytes, e.valid_up_to())), "not UTF-8"))?;
    let bindings = parse_text(text).map_err(|e| parse_error(path, Some(e.line), &e.to_string()))?;
    let values = if expand {
        let env = |name: &str| -> Result<Option<String>> {
            match std::env::var(name) {
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(std::env::VarError::NotUnicode(_)) => Err(Error::Usage(format!(
                    "cannot expand ${{{}}} in {}: its value in the environment is not UTF-8",
                    crate::entry::printable(name),
                    path.display()
                ))),
            }
        };
        resolve(bindings, env).map_err(|e| match e {
            Expansion::Refused(line) => parse_error(
                path,
                Some(line),
                "refusing to expand a JETON_* variable (jeton's own settings never go into an entry)",
            ),
            Expansion::Env(e) => e,
        })?
    } else {
        Values::from(bindings)
    };
    let mut parsed = Parsed::default();
    for (line, key) in values.replaced {
        parsed.skip(
            key,
            format!("line {line}: set again later; the last value is kept"),
        );
    }
    for v in values.list {
        let value = match v.value {
            Some(value) if !value.is_empty() => value,
            Some(_) => {
                parsed.skip(v.key, "empty value");
                continue;
            }
            None => {
                parsed.skip(v.key, "no value (no `=`)");
                continue;
            }
        };
        parsed.push(MigratedEntry {
            name: clean_name([v.key.as_str()]),
            reference: format!("{}#{}", path.display(), v.key),
            original: v.key,
            secret: Token::new(value.as_str().to_owned()),
            url: None,
            username: None,
            tags: Vec::new(),
            note: None,
            expires_at: None,
            scopes: Vec::new(),
            used_by: Vec::new(),
            rotate_every: None,
        });
    }
    Ok(parsed)
}

/// The values a file gives, one per key in the order keys first appear (a Python dict).
#[derive(Default)]
struct Values {
    list: Vec<Value>,
    index: HashMap<String, usize>,
    /// Lines whose value a later line of the same key replaced, with the key.
    replaced: Vec<(usize, String)>,
}

struct Value {
    key: String,
    value: Option<Zeroizing<String>>,
    line: usize,
}

impl Values {
    fn set(&mut self, b: Binding) {
        match self.index.get(&b.key) {
            Some(&i) => {
                let old = &mut self.list[i];
                self.replaced.push((old.line, b.key));
                old.value = b.value;
                old.line = b.line;
            }
            None => {
                self.index.insert(b.key.clone(), self.list.len());
                self.list.push(Value {
                    key: b.key,
                    value: b.value,
                    line: b.line,
                });
            }
        }
    }

    /// The value set so far for `key`: `Some(None)` for a key without `=`.
    fn get(&self, key: &str) -> Option<Option<&str>> {
        let i = *self.index.get(key)?;
        Some(self.list[i].value.as_deref().map(String::as_str))
    }
}

impl From<Vec<Binding>> for Values {
    fn from(bindings: Vec<Binding>) -> Values {
        let mut values = Values::default();
        for b in bindings {
            values.set(b);
        }
        values
    }
}

enum Expansion {
    /// A `JETON_*` reference on this line.
    Refused(usize),
    Env(Error),
}

/// `resolve_variables(values, override=True)`: each value in turn, against the values set so
/// far, then the environment.
fn resolve(
    bindings: Vec<Binding>,
    env: impl Fn(&str) -> Result<Option<String>>,
) -> std::result::Result<Values, Expansion> {
    let mut values = Values::default();
    for mut b in bindings {
        if let Some(raw) = b.value.take() {
            let mut out = Zeroizing::new(String::with_capacity(raw.len()));
            for atom in variables(&raw) {
                match atom {
                    Atom::Literal(s) => out.push_str(s),
                    Atom::Variable { name, .. } if name.starts_with("JETON_") => {
                        return Err(Expansion::Refused(b.line));
                    }
                    Atom::Variable { name, default } => match values.get(name) {
                        Some(v) => out.push_str(v.unwrap_or("")),
                        None => match env(name).map_err(Expansion::Env)? {
                            Some(v) => out.push_str(&Zeroizing::new(v)),
                            None => out.push_str(default.unwrap_or("")),
                        },
                    },
                }
            }
            b.value = Some(out);
        }
        values.set(b);
    }
    Ok(values)
}

enum Atom<'a> {
    Literal(&'a str),
    Variable {
        name: &'a str,
        default: Option<&'a str>,
    },
}

/// `parse_variables`: the matches of `\$\{(?P<name>[^}:]*)(?::-(?P<default>[^}]*))?\}`, left
/// to right, and the text between them.
fn variables(value: &str) -> Vec<Atom<'_>> {
    let mut atoms = Vec::new();
    let (mut cursor, mut from) = (0, 0);
    while let Some(at) = value[from..].find("${").map(|i| from + i) {
        let rest = &value[at + 2..];
        let name_len = rest.find(['}', ':']).unwrap_or(rest.len());
        let name = &rest[..name_len];
        let after = &rest[name_len..];
        let matched = if after.starts_with('}') {
            Some((None, name_len + 1))
        } else if let Some(d) = after.strip_prefix(":-") {
            d.find('}')
                .map(|end| (Some(&d[..end]), name_len + 2 + end + 1))
        } else {
            None
        };
        let Some((default, len)) = matched else {
            from = at + 1;
            continue;
        };
        if at > cursor {
            atoms.push(Atom::Literal(&value[cursor..at]));
        }
        atoms.push(Atom::Variable { name, default });
        cursor = at + 2 + len;
        from = cursor;
    }
    if cursor < value.len() {
        atoms.push(Atom::Literal(&value[cursor..]));
    }
    atoms
}

/// Python's `str.isspace` (and so `\s` in a `str` pattern): Rust's whitespace plus the four
/// separators U+001C to U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `[^\S\r\n]`: a space that does not end a line.
fn inline_space(c: char) -> bool {
    py_space(c) && c != '\n' && c != '\r'
}

/// The statements of a file's text, or the first one that cannot be read.
pub fn parse_text(text: &str) -> std::result::Result<Vec<Binding>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Universal newlines, as Python's `open` reads text.
    let text = Zeroizing::new(text.replace("\r\n", "\n"));
    let text = Zeroizing::new(text.replace('\r', "\n"));
    let mut r = Reader {
        s: &text,
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while r.has_next() {
        if let Some(b) = r.binding()? {
            out.push(b);
        }
    }
    Ok(out)
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Reader<'a> {
    fn has_next(&self) -> bool {
        self.pos < self.s.len()
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn advance(&mut self, len: usize) -> &'a str {
        let taken = &self.s[self.pos..self.pos + len];
        self.line += taken.matches('\n').count();
        self.pos += len;
        taken
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let len = self.rest().find(|c| !f(c)).unwrap_or(self.rest().len());
        self.advance(len)
    }

    fn error(&self, reason: &'static str) -> SyntaxError {
        SyntaxError {
            line: self.line,
            reason,
            at: self.line,
        }
    }

    /// `parse_binding`: one statement (`None` for a comment or the blank end of the file).
    fn binding(&mut self) -> std::result::Result<Option<Binding>, SyntaxError> {
        self.take_while(py_space);
        if !self.has_next() {
            return Ok(None);
        }
        // `(?:export[^\S\r\n]+)?`
        if let Some(after) = self.rest().strip_prefix("export")
            && after.starts_with(inline_space)
        {
            self.advance("export".len());
            self.take_while(inline_space);
        }
        let line = self.line;
        let key = match self.peek() {
            Some('#') => None,
            Some('\'') => {
                // `'([^']+)'`
                let body = &self.rest()[1..];
                match body.find('\'') {
                    Some(end) if end > 0 => {
                        let key = body[..end].to_owned();
                        self.advance(end + 2);
                        Some(key)
                    }
                    Some(_) => return Err(self.error("empty quoted key ''")),
                    None => return Err(self.error("unterminated single-quoted key")),
                }
            }
            _ => {
                // `[^=\#\s]+`
                let key = self.take_while(|c| c != '=' && c != '#' && !py_space(c));
                if key.is_empty() {
                    return Err(self.error(match self.peek() {
                        Some('=') => "no key before `=`",
                        _ => "no key after `export`",
                    }));
                }
                Some(key.to_owned())
            }
        };
        self.take_while(inline_space);
        let value = if self.peek() == Some('=') {
            self.advance(1);
            self.take_while(inline_space);
            Some(self.value()?)
        } else {
            None
        };
        // `(?:[^\S\r\n]*#[^\r\n]*)?`
        let spaces = self.rest().find(|c| !inline_space(c));
        if let Some(n) = spaces.filter(|&n| self.rest()[n..].starts_with('#')) {
            self.advance(n);
            self.take_while(|c| c != '\n');
        }
        // `[^\S\r\n]*(?:\r\n|\n|\r|$)`
        self.take_while(inline_space);
        match self.peek() {
            None => {}
            Some('\n') => {
                self.advance(1);
            }
            Some(_) => {
                return Err(SyntaxError {
                    line,
                    at: self.line,
                    ..self.error(match value.is_some() {
                        true => "unexpected text after the closing quote",
                        false => "a key must be followed by `=` (or be alone on its line)",
                    })
                });
            }
        }
        Ok(key.map(|key| Binding { key, value, line }))
    }

    /// `parse_value`.
    fn value(&mut self) -> std::result::Result<Zeroizing<String>, SyntaxError> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                let line = self.line;
                let Some(raw) = self.quoted(q) else {
                    return Err(SyntaxError {
                        line,
                        at: line,
                        reason: match q {
                            '\'' => "unterminated single quote",
                            _ => "unterminated double quote",
                        },
                    });
                };
                let escapes: &[char] = match q {
                    '\'' => &['\\', '\''],
                    _ => &['\\', '\'', '"', 'a', 'b', 'f', 'n', 'r', 't', 'v'],
                };
                Ok(decode_escapes(raw, escapes))
            }
            None | Some('\n') => Ok(Zeroizing::new(String::new())),
            Some(_) => {
                // `([^\r\n]*)`, then `re.sub(r"\s+#.*", "", part).rstrip()`.
                let part = self.take_while(|c| c != '\n');
                let mut end = part.len();
                let mut prev_space = None;
                for (i, c) in part.char_indices() {
                    if let (Some(start), '#') = (prev_space, c) {
                        end = start;
                        break;
                    }
                    if !py_space(c) {
                        prev_space = None;
                    } else if prev_space.is_none() {
                        prev_space = Some(i);
                    }
                }
                Ok(Zeroizing::new(
                    part[..end].trim_end_matches(py_space).to_owned(),
                ))
            }
        }
    }

    /// `'((?:\\'|[^'])*)'` (and the same with `"`), as Python's backtracking matcher runs it:
    /// the value closes at the first quote not preceded by a backslash; when there is none,
    /// backtracking closes it at the last quote of the file (which has one before it).
    fn quoted(&mut self, q: char) -> Option<&'a str> {
        let body = &self.rest()[1..];
        let mut prev = None;
        let mut close = None;
        for (i, c) in body.char_indices() {
            if c == q && prev != Some('\\') {
                close = Some(i);
                break;
            }
            prev = Some(c);
        }
        let close = close.or_else(|| body.rfind(q))?;
        self.advance(1);
        let raw = self.advance(close);
        self.advance(1);
        Some(raw)
    }
}

/// `decode_escapes`: `\` and one of `escapes` becomes that character, as Python decodes it.
fn decode_escapes(raw: &str, escapes: &[char]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&e) if c == '\\' && escapes.contains(&e) => {
                chars.next();
                out.push(match e {
                    'a' => '\u{7}',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'v' => '\u{b}',
                    other => other,
                });
            }
            _ => out.push(c),
        }
    }
    out
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

    fn values(text: &str) -> Vec<(String, Option<String>)> {
        let v = Values::from(parse_text(text).unwrap());
        v.list
            .into_iter()
            .map(|v| (v.key, v.value.map(|s| s.as_str().to_owned())))
            .collect()
    }

    fn one(text: &str) -> Option<String> {
        let mut v = values(text);
        assert_eq!(v.len(), 1, "{text:?}");
        v.pop().unwrap().1
    }

    #[test]
    fn quoting_styles() {
        assert_eq!(one("export A=plain # trailing\n").as_deref(), Some("plain"));
        assert_eq!(
            one("B='single $HOME \\n \\' \\\\'").as_deref(),
            Some("single $HOME \\n ' \\")
        );
        assert_eq!(
            one("C=\"dq \\\"x\\\" \\n y\\t\\q\"").as_deref(),
            Some("dq \"x\" \n y\t\\q")
        );
        assert_eq!(one("D=\"multi\r\nline\"").as_deref(), Some("multi\nline"));
        assert_eq!(one("E=").as_deref(), Some(""));
        assert_eq!(one("F").as_deref(), None);
        assert_eq!(one("G = spaced out  ").as_deref(), Some("spaced out"));
        assert_eq!(one("H=a#b\tc #d").as_deref(), Some("a#b\tc"));
        assert_eq!(one("\u{feff}I=bom").as_deref(), Some("bom"));
        assert_eq!(one("J=\"abc\\\"\n").as_deref(), Some("abc\\"));
    }

    #[test]
    fn the_last_of_two_keys_wins_in_the_first_place() {
        let v = values("A=1\nB=2\nA=3\n");
        assert_eq!(
            v,
            [
                ("A".into(), Some("3".into())),
                ("B".into(), Some("2".into()))
            ]
        );
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        let e = |t| parse_text(t).err().unwrap();
        assert_eq!(e("A=1\nB=2\nC=\"open SECRET\n").line, 3);
        assert_eq!(
            e("A=1\nB=2\nC=\"open SECRET\n").reason,
            "unterminated double quote"
        );
        assert_eq!(e("\n\nA=\"x\" y\n").line, 3);
        assert_eq!(e("A=\"x\ny\" junk\n").line, 1);
        assert_eq!(e("A=\"x\ny\" junk\n").at, 2);
        assert!(e("KEY VALUE\n").reason.contains("followed by `=`"));
        assert!(e("=x\n").reason.contains("no key"));
        assert!(e("export =x\n").reason.contains("no key"));
        assert!(e("'A=1\n").reason.contains("unterminated"));
    }

    #[test]
    fn expansion_takes_earlier_lines_then_the_environment() {
        let env = |n: &str| Ok((n == "FROM_ENV" || n == "A").then(|| format!("env-{n}")));
        let b = parse_text(
            "A=1\nB=${A}-${FROM_ENV}-${NONE:-dflt}-${NONE}-$A\nA=2\nC=${A}\nD\nE=${D:-x}\nF=${a${b}\n",
        )
        .unwrap();
        let v = resolve(b, env).ok().unwrap();
        let got: Vec<_> = v
            .list
            .iter()
            .map(|v| v.value.as_ref().map(|s| s.as_str().to_owned()))
            .collect();
        let want = [
            Some("2"),
            Some("1-env-FROM_ENV-dflt--$A"),
            Some("2"),
            None,
            Some(""),
            Some(""),
        ];
        assert_eq!(got, want.map(|s| s.map(str::to_owned)));
        let b = parse_text("A='${JETON_PASSPHRASE}'\n").unwrap();
        assert!(matches!(resolve(b, env), Err(Expansion::Refused(1))));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_read_or_refused_on_one_of_its_lines(
            s in "(export |[Ab=#'\"\\ \t\r\n$:{}-]|\\PC)*"
        ) {
            if let Err(e) = parse_text(&s) {
                let lines = s.split(['\n', '\r']).count();
                proptest::prop_assert!(1 <= e.line && e.line <= e.at && e.at <= lines);
            }
        }
    }
}
