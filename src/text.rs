//! Text that enters the vault, and text that leaves it for a terminal.
//!
//! Entry metadata is shown on terminals and in line-oriented output, so it must never carry a
//! terminal escape sequence, nor a newline that forges a row. Two rules, one at each end:
//!
//! * In: metadata text (url, username, issuer, contact, scopes, used_by, tags, revocation
//!   reasons, names from other tools) holds no control character; a note may hold `\n` and `\t`
//!   and nothing else. Requests refuse such text ([`check_line`], [`check_note`]); importers,
//!   which cannot ask, make the characters visible ([`sanitize`]) and say so.
//! * Out: everything printed for a person goes through [`Shown`], which escapes C0 and C1
//!   controls, DEL, the bidirectional overrides and the Unicode line separators, and in a
//!   single-line field newlines and tabs too. Vaults written before the input rule, and any
//!   rule forgotten on the way in, are covered here. A secret printed by `get` is data for a
//!   script and is not escaped; JSON output is escaped by serde_json.

use crate::{Error, Result};
use std::borrow::Cow;
use std::fmt;

/// Whether text is one line (a field of a row) or may span lines (a note).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    /// No newline or tab.
    One,
    /// `\n` and `\t` are kept.
    Many,
}

/// A character metadata text may not hold: any control character, but `\n` and `\t` in a note.
fn forbidden(c: char, lines: Lines) -> bool {
    c.is_control() && !(lines == Lines::Many && (c == '\n' || c == '\t'))
}

/// A character escaped on output: the forbidden ones, plus those that reorder or break what a
/// terminal shows although they are not control characters.
fn unsafe_on_screen(c: char, lines: Lines) -> bool {
    forbidden(c, lines)
        || matches!(c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// `\n`, `\r`, `\t`, or `\u{1b}`: the visible form of an escaped character.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
    }
}

/// The one escaping routine: `s` with every character `bad` picks made visible.
fn escape_with(s: &str, bad: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text made safe for a terminal or a line-oriented output (see the module docs).
pub fn escape(s: &str, lines: Lines) -> Cow<'_, str> {
    escape_with(s, |c| unsafe_on_screen(c, lines))
}

/// Displays text escaped for a terminal. Every human-readable output formats vault and imported
/// text through this; width and alignment flags apply to the escaped text.
#[derive(Clone, Copy, Debug)]
pub struct Shown<'a>(&'a str, Lines);

impl<'a> Shown<'a> {
    /// A single-line field: newlines and tabs are escaped too.
    pub fn line(s: &'a str) -> Shown<'a> {
        Shown(s, Lines::One)
    }

    /// Text that may span lines (a note, a multi-line message).
    pub fn lines(s: &'a str) -> Shown<'a> {
        Shown(s, Lines::Many)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&escape(self.0, self.1))
    }
}

/// The first forbidden character of `s`, if any.
fn first_forbidden(s: &str, lines: Lines) -> Option<char> {
    s.chars().find(|&c| forbidden(c, lines))
}

fn refuse(what: &str, c: char, lines: Lines) -> Error {
    let allowed = match lines {
        Lines::One => "",
        Lines::Many => " (newlines and tabs are allowed)",
    };
    Error::Usage(format!(
        "{what} holds a control character (U+{:04X}), which is refused: it could forge a line \
         of output or reach a terminal as an escape sequence{allowed}",
        u32::from(c)
    ))
}

/// Refuses single-line metadata text holding a control character. `what` names the field.
pub fn check_line(what: &str, s: &str) -> Result<()> {
    match first_forbidden(s, Lines::One) {
        Some(c) => Err(refuse(what, c, Lines::One)),
        None => Ok(()),
    }
}

/// Refuses a note holding a control character other than `\n` and `\t`.
pub fn check_note(what: &str, s: &str) -> Result<()> {
    match first_forbidden(s, Lines::Many) {
        Some(c) => Err(refuse(what, c, Lines::Many)),
        None => Ok(()),
    }
}

/// True when `s` passes the input rule.
pub fn is_clean(s: &str, lines: Lines) -> bool {
    first_forbidden(s, lines).is_none()
}

/// Text from another tool made to pass the input rule: in a note, `\r\n` and a lone `\r`
/// become `\n`; every other forbidden character is written out visibly (`\u{1b}`). The flag
/// says whether anything was escaped (line endings alone are not worth a word).
pub fn sanitize(s: &str, lines: Lines) -> (Cow<'_, str>, bool) {
    let s: Cow<'_, str> = if lines == Lines::Many && s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    };
    match escape_with(&s, |c| forbidden(c, lines)) {
        Cow::Borrowed(_) => (s, false),
        Cow::Owned(o) => (Cow::Owned(o), true),
    }
}

/// `16 MiB`, `1 GiB`, or bytes.
pub fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// A size in bytes: `1048576`, `512KiB`, `256MiB`, `1GiB` (`K`, `M`, `G`, `KB`, ... also).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "a\u{1b}]0;title\u{7}\u{1b}[2J\r\nb\tc\u{7f}\u{9b}\u{202e}d";

    #[test]
    fn shown_escapes_every_control_and_keeps_the_rest() {
        let one = Shown::line(HOSTILE).to_string();
        assert!(!one.chars().any(|c| c.is_control()), "{one:?}");
        assert_eq!(
            one,
            "a\\u{1b}]0;title\\u{7}\\u{1b}[2J\\r\\nb\\tc\\u{7f}\\u{9b}\\u{202e}d"
        );
        let many = Shown::lines(HOSTILE).to_string();
        assert!(many.contains("\nb\tc"), "{many:?}");
        assert!(!many.contains('\u{1b}') && !many.contains('\r'));
        assert_eq!(Shown::line("Ünïcödé 名前").to_string(), "Ünïcödé 名前");
        assert_eq!(format!("[{:<6}]", Shown::line("a\u{1b}")), "[a\\u{1b}]");
        assert_eq!(format!("[{:<4}]", Shown::line("ab")), "[ab  ]");
    }

    #[test]
    fn input_rule() {
        assert!(check_line("url", "https://x.example/a b").is_ok());
        for bad in ["a\nb", "a\tb", "\u{1b}[2J", "a\rb", "\u{7f}", "\u{85}"] {
            let e = check_line("url", bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().starts_with("url holds a control"), "{e}");
        }
        assert!(check_note("note", "two\nlines\tand a tab").is_ok());
        assert!(check_note("note", "a\r\nb").is_err());
        assert!(check_note("note", "\u{1b}]0;x\u{7}").is_err());
        // Right-to-left text is legitimate input; it is escaped on output only.
        assert!(check_line("note", "\u{200f}שלום").is_ok());
    }

    #[test]
    fn sanitize_passes_the_input_rule() {
        let (note, escaped) = sanitize("a\r\nb\rc\u{1b}[2J\td", Lines::Many);
        assert_eq!(note, "a\nb\nc\\u{1b}[2J\td");
        assert!(escaped && is_clean(&note, Lines::Many));
        assert_eq!(sanitize("a\r\nb", Lines::Many), ("a\nb".into(), false));
        let (line, escaped) = sanitize("x\ny\u{1b}", Lines::One);
        assert_eq!(line, "x\\ny\\u{1b}");
        assert!(escaped && is_clean(&line, Lines::One));
        assert!(matches!(
            sanitize("plain", Lines::One),
            (Cow::Borrowed(_), false)
        ));
    }
}
