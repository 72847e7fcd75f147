//! The forms in which a token leaks: as it is, and as the encoders that carry it into files,
//! URLs, headers and logs write it. Each form is the exact byte string to look for, so a hit is
//! the secret itself and never a guess.
//!
//! Base64 is the subtle one. A token inside a larger encoded value (`user:token` in an HTTP
//! Basic header or a docker `config.json`) starts at some byte of that value; only its position
//! modulo 3 changes how it encodes. For each of the three alignments the form is the run of
//! characters that depend on the token's bits alone: the characters shared with the bytes
//! before it and after it are left out. Every encoding that holds the token at that alignment
//! holds this run, whether it ends with `=` padding, without it (JWTs, base64url), or goes on
//! with more data; so one form per alignment and alphabet finds all three cases.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Secrets shorter than this (in bytes) are not searched: too short to tell from chance.
pub const MIN_LEN: usize = 8;

/// How a secret was written where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// As it is.
    Raw,
    /// Base64 (RFC 4648 §4) of data holding the secret at a byte position `offset` modulo 3.
    Base64 {
        /// 0, 1 or 2.
        offset: u8,
    },
    /// Base64url (RFC 4648 §5), as [`Form::Base64`].
    Base64Url {
        /// 0, 1 or 2.
        offset: u8,
    },
    /// Percent-encoded (RFC 3986 §2.1): every byte but the unreserved ones, upper-case digits.
    Percent,
    /// Percent-encoded with lower-case digits.
    PercentLower,
    /// `application/x-www-form-urlencoded` (a space is `+`).
    FormUrlencoded,
    /// Hexadecimal, lower case.
    Hex,
    /// Hexadecimal, upper case.
    HexUpper,
    /// Inside a JSON string, escaped as most encoders do (`"`, `\` and control characters).
    Json,
    /// Inside a JSON string with every non-ASCII character as `\uXXXX` (Python's default).
    JsonAscii,
    /// Inside a JSON string with `/` escaped as `\/` (PHP's default).
    JsonSlash,
    /// Inside single quotes in a shell script (`'` written `'\''`).
    ShellSingle,
    /// Inside double quotes in a shell script (`\`, `$`, `` ` `` and `"` after a backslash).
    ShellDouble,
    /// Unquoted in a shell script, each special character after a backslash (`printf %q`).
    ShellBare,
}

impl Form {
    /// The form's name in output: `raw`, `base64`, `base64url`, `percent`, `hex`, `json`,
    /// `shell`, ... (the base64 alignment is [`Form::offset`]).
    pub fn name(self) -> &'static str {
        match self {
            Form::Raw => "raw",
            Form::Base64 { .. } => "base64",
            Form::Base64Url { .. } => "base64url",
            Form::Percent => "percent",
            Form::PercentLower => "percent-lower",
            Form::FormUrlencoded => "form-urlencoded",
            Form::Hex => "hex",
            Form::HexUpper => "hex-upper",
            Form::Json => "json",
            Form::JsonAscii => "json-ascii",
            Form::JsonSlash => "json-slash",
            Form::ShellSingle => "shell-single",
            Form::ShellDouble => "shell-double",
            Form::ShellBare => "shell-bare",
        }
    }

    /// The alignment of a base64 form (the secret's byte position in the encoded data, modulo 3).
    pub fn offset(self) -> Option<u8> {
        match self {
            Form::Base64 { offset } | Form::Base64Url { offset } => Some(offset),
            _ => None,
        }
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset() {
            Some(o) => write!(f, "{} (offset {o})", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// The bytes of one form of one secret, wiped on drop.
pub type FormBytes = Zeroizing<Vec<u8>>;

/// Every distinct form of `secret`, the plainest first: a form that comes out byte for byte
/// like an earlier one (a token of letters and digits is the same raw, percent-encoded, in
/// JSON and in a shell) is listed once, under the earlier name.
pub fn forms(secret: &[u8]) -> Vec<(Form, FormBytes)> {
    let mut out: Vec<(Form, FormBytes)> = Vec::with_capacity(20);
    let mut push = |form: Form, bytes: FormBytes| {
        if !bytes.is_empty() && !out.iter().any(|(_, b)| **b == *bytes) {
            out.push((form, bytes));
        }
    };
    push(Form::Raw, Zeroizing::new(secret.to_vec()));
    let text = std::str::from_utf8(secret).ok();
    if let Some(text) = text {
        push(Form::Json, json(text, false, false));
        push(Form::JsonAscii, json(text, true, false));
        push(Form::JsonSlash, json(text, false, true));
    }
    push(Form::ShellSingle, shell_single(secret));
    push(Form::ShellDouble, shell_double(secret));
    push(Form::ShellBare, shell_bare(secret));
    push(Form::Percent, percent(secret, b"0123456789ABCDEF"));
    push(Form::PercentLower, percent(secret, b"0123456789abcdef"));
    push(Form::FormUrlencoded, form_urlencoded(secret));
    push(Form::Hex, hex(secret, b"0123456789abcdef"));
    push(Form::HexUpper, hex(secret, b"0123456789ABCDEF"));
    for offset in 0..3u8 {
        push(Form::Base64 { offset }, base64_core(secret, offset, false));
    }
    for offset in 0..3u8 {
        push(
            Form::Base64Url { offset },
            base64_core(secret, offset, true),
        );
    }
    out
}

/// The base64 characters that depend only on `secret` when it starts at byte `offset` (mod 3)
/// of the encoded data (see the module docs).
fn base64_core(secret: &[u8], offset: u8, url: bool) -> FormBytes {
    use base64::Engine;
    let a = usize::from(offset);
    let mut input = Zeroizing::new(Vec::with_capacity(a + secret.len()));
    input.resize(a, 0);
    input.extend_from_slice(secret);
    let mut encoded = Zeroizing::new(String::with_capacity(
        base64::encoded_len(input.len(), false).unwrap_or(0),
    ));
    let engine = if url {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine.encode_string(&input[..], &mut encoded);
    // Character i carries bits [6i, 6i + 6); the secret's are [8a, 8(a + n)).
    let first = (8 * a).div_ceil(6);
    let end = 8 * (a + secret.len()) / 6;
    Zeroizing::new(encoded.as_bytes()[first..end.max(first)].to_vec())
}

fn hex(secret: &[u8], digits: &[u8; 16]) -> FormBytes {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 2));
    for &b in secret {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 15)]);
    }
    out
}

fn percent(secret: &[u8], digits: &[u8; 16]) -> FormBytes {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 3));
    for &b in secret {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                digits[usize::from(b >> 4)],
                digits[usize::from(b & 15)],
            ]);
        }
    }
    out
}

/// The WHATWG rule `form_urlencoded` follows: `*-._` and alphanumerics stay, a space is `+`.
fn form_urlencoded(secret: &[u8]) -> FormBytes {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 3));
    for &b in secret {
        match b {
            b' ' => out.push(b'+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_') => out.push(b),
            b => out.extend_from_slice(&[
                b'%',
                b"0123456789ABCDEF"[usize::from(b >> 4)],
                b"0123456789ABCDEF"[usize::from(b & 15)],
            ]),
        }
    }
    out
}

fn json(text: &str, ascii: bool, slash: bool) -> FormBytes {
    use std::fmt::Write;
    // The longest escape is six bytes per byte of text (`\u0001`, or two `\uXXXX` for four
    // bytes): reserved whole, the string never moves, so no unwiped copy is left behind.
    let mut out = Zeroizing::new(String::with_capacity(text.len() * 6));
    let unit = |out: &mut String, u: u32| {
        let _ = write!(out, "\\u{u:04x}");
    };
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '/' if slash => out.push_str("\\/"),
            c if u32::from(c) < 0x20 => unit(&mut out, u32::from(c)),
            c if ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    unit(&mut out, u32::from(*u));
                }
            }
            c => out.push(c),
        }
    }
    Zeroizing::new(out.as_bytes().to_vec())
}

fn shell_single(secret: &[u8]) -> FormBytes {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 4));
    for &b in secret {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out
}

fn shell_double(secret: &[u8]) -> FormBytes {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 2));
    for &b in secret {
        if matches!(b, b'\\' | b'$' | b'`' | b'"') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

fn shell_bare(secret: &[u8]) -> FormBytes {
    let mut out = Zeroizing::new(Vec::with_capacity(secret.len() * 2));
    for &b in secret {
        let plain = !b.is_ascii()
            || b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'_' | b'.' | b'/' | b':' | b'@' | b'%' | b'+' | b',' | b'=' | b'^' | b'-'
            );
        if !plain {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    fn form(secret: &str, f: Form) -> Option<String> {
        forms(secret.as_bytes())
            .into_iter()
            .find(|(g, _)| *g == f)
            .map(|(_, b)| String::from_utf8(b.to_vec()).unwrap())
    }

    /// Whatever comes before and after the secret, and whether the encoding is padded, one of
    /// the three alignments' forms is inside it.
    #[test]
    fn a_base64_form_is_inside_every_encoding_that_holds_the_secret() {
        let secret = "tok-9f8e7d6c5b4a";
        for before in ["", "a", "ab", "abc", "user:", "x:", "{\"auth\":"] {
            for after in ["", "!", "ab", "xyz\n"] {
                let data = format!("{before}{secret}{after}");
                let offset = u8::try_from(before.len() % 3).unwrap();
                let padded = STANDARD.encode(&data);
                let core = form(secret, Form::Base64 { offset }).unwrap();
                assert!(padded.contains(&core), "{before:?} {after:?}");
                let url = URL_SAFE_NO_PAD.encode(&data);
                let core = form(secret, Form::Base64Url { offset })
                    .or_else(|| form(secret, Form::Base64 { offset }))
                    .unwrap();
                assert!(url.contains(&core), "{before:?} {after:?}");
            }
        }
    }

    #[test]
    fn the_other_forms_are_what_the_encoders_write() {
        let s = "a/b c+d\"e'f$g~h";
        assert_eq!(form(s, Form::Raw).unwrap(), s);
        assert_eq!(form(s, Form::Json).unwrap(), r#"a/b c+d\"e'f$g~h"#);
        assert_eq!(form(s, Form::JsonSlash).unwrap(), r#"a\/b c+d\"e'f$g~h"#);
        assert_eq!(form(s, Form::ShellSingle).unwrap(), r#"a/b c+d"e'\''f$g~h"#);
        assert_eq!(form(s, Form::ShellDouble).unwrap(), r#"a/b c+d\"e'f\$g~h"#);
        assert_eq!(form(s, Form::ShellBare).unwrap(), r#"a/b\ c+d\"e\'f\$g\~h"#);
        assert_eq!(
            form(s, Form::Percent).unwrap(),
            "a%2Fb%20c%2Bd%22e%27f%24g~h"
        );
        assert_eq!(
            form(s, Form::PercentLower).unwrap(),
            "a%2fb%20c%2bd%22e%27f%24g~h"
        );
        assert_eq!(
            form(s, Form::FormUrlencoded).unwrap(),
            "a%2Fb+c%2Bd%22e%27f%24g%7Eh"
        );
        assert_eq!(
            form("Zé\u{1}xxxxx", Form::JsonAscii).unwrap(),
            r"Z\u00e9\u0001xxxxx"
        );
        assert_eq!(form("abcdefgh", Form::Hex).unwrap(), "6162636465666768");
        // Letters and digits alone: every text form is the raw one, listed once.
        let names: Vec<Form> = forms(b"zzzzzzzz12").into_iter().map(|(f, _)| f).collect();
        assert_eq!(names[0], Form::Raw);
        assert!(!names.contains(&Form::Json) && !names.contains(&Form::Percent));
        assert!(names.contains(&Form::HexUpper));
    }

    #[test]
    fn identical_forms_are_listed_once() {
        let all = forms("some-token-1234567".as_bytes());
        for (i, (_, a)) in all.iter().enumerate() {
            for (_, b) in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
