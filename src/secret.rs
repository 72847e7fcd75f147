//! Secret newtypes. None of them implements `Debug` with its content, `Display` or `Serialize`
//! by accident: reading one says `expose_secret()`, and serialising one needs an explicit
//! `#[serde(with = "crate::secret::serde_token")]` on the field. All are wiped on drop.

use zeroize::{Zeroize, Zeroizing};

/// A passphrase typed by the user or read from a passphrase source.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase, taking ownership so the only copy is wiped on drop.
    pub fn new(mut s: String) -> Self {
        let p = Passphrase(Zeroizing::new(std::mem::take(&mut s)));
        s.zeroize();
        p
    }
    /// The passphrase bytes, for the KDF only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// A 256-bit symmetric key: the vault key or a key-encryption key.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; 32]>);

impl Key {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key(Zeroizing::new(bytes))
    }
    /// Draws a fresh key from the operating system's CSPRNG.
    pub fn generate() -> crate::Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        crate::random::fill_random(&mut k[..])?;
        Ok(Key(k))
    }
    /// The key bytes, for the cipher only.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// An access token (or any other secret value stored in an entry).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a secret, taking ownership so the only copy is wiped on drop.
    pub fn new(mut s: String) -> Self {
        let t = Token(Zeroizing::new(std::mem::take(&mut s)));
        s.zeroize();
        t
    }
    /// The secret text. Call sites that print it are the only ones allowed to reveal it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
    /// Length in characters, for masked display.
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Serde support for a [`Passphrase`] that crosses the agent's socket:
/// `#[serde(with = "crate::secret::serde_passphrase")]`.
pub mod serde_passphrase {
    use super::Passphrase;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises the passphrase text.
    pub fn serialize<S: Serializer>(p: &Passphrase, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.expose_secret())
    }

    /// Reads the passphrase text into a [`Passphrase`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Passphrase, D::Error> {
        String::deserialize(d).map(Passphrase::new)
    }
}

/// Explicit serde support for [`Token`] fields: `#[serde(with = "crate::secret::serde_token")]`.
pub mod serde_token {
    use super::Token;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises the secret text.
    pub fn serialize<S: Serializer>(t: &Token, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(t.expose_secret())
    }
    /// Deserialises the secret text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Token, D::Error> {
        String::deserialize(d).map(Token::new)
    }
}

/// Explicit serde support for `Option<Token>` fields.
pub mod serde_opt_token {
    use super::Token;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises the secret text, if any.
    pub fn serialize<S: Serializer>(t: &Option<Token>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(t.expose_secret()),
            None => s.serialize_none(),
        }
    }
    /// Deserialises the secret text, if any.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Token>, D::Error> {
        Option::<String>::deserialize(d).map(|o| o.map(Token::new))
    }
}

/// Explicit serde support for 32-byte secret keys stored in the payload.
pub mod serde_key {
    use super::Key;
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    /// Serialises the key bytes.
    pub fn serialize<S: Serializer>(k: &Key, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(k.expose_secret())
    }
    /// Deserialises the key bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        let v = Zeroizing::new(<Vec<u8>>::deserialize(d)?);
        let arr: [u8; 32] = v
            .as_slice()
            .try_into()
            .map_err(|_| serde::de::Error::custom("key must be 32 bytes"))?;
        Ok(Key::from_bytes(arr))
    }
}

/// Text holding a secret on its way out: what `get`, `show --reveal`, `history --reveal` and
/// the credential helpers print. A `String` that grows hands its old buffer back to the allocator as it was, secret
/// included; this one moves its text into a larger buffer and wipes the old one, so no copy is
/// freed unwiped, and the last buffer is wiped on drop. Bytes in, bytes out: it is written to a
/// file descriptor, never parsed.
#[derive(Default)]
pub struct SecretText(Zeroizing<Vec<u8>>);

impl SecretText {
    /// An empty text with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        SecretText(Zeroizing::new(Vec::with_capacity(n)))
    }
    /// Appends `s`.
    pub fn push_str(&mut self, s: &str) {
        self.extend(s.as_bytes());
    }
    /// The text so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// `v` as JSON (pretty or compact), after which every string in `v` is wiped: for answers
    /// that carry a secret (`get --json`, the credential helpers).
    pub fn json(mut v: serde_json::Value, pretty: bool) -> SecretText {
        let mut out = SecretText::with_capacity(512);
        let written = if pretty {
            serde_json::to_writer_pretty(&mut out, &v)
        } else {
            serde_json::to_writer(&mut out, &v)
        };
        if written.is_err() {
            // Writing a `Value` to memory does not fail; never hand out half a document.
            out = SecretText::default();
            out.push_str("null");
        }
        wipe_strings(&mut v);
        out
    }
    fn extend(&mut self, bytes: &[u8]) {
        let need = self.0.len().saturating_add(bytes.len());
        if need > self.0.capacity() {
            let room = need.max(self.0.capacity().saturating_mul(2));
            let mut grown = Zeroizing::new(Vec::with_capacity(room));
            grown.extend_from_slice(&self.0);
            // The old buffer is dropped here, and wiped (its spare capacity too).
            self.0 = grown;
        }
        self.0.extend_from_slice(bytes);
    }
}

/// The first buffer [`read_capped`] allocates (8 KiB): most secrets fit, and growing is rare.
const READ_START: usize = 8 << 10;

/// Reads all of `r` into one zeroizing buffer and nothing else: no read-ahead buffer (give it a
/// file or a descriptor, not a `BufReader` or `std::io::stdin()`), and no block freed with a copy
/// in it. The buffer starts at 8 KiB; when full it moves into a new one twice as large and the old
/// one is wiped, up to `cap` bytes. More than `cap` bytes fails with
/// [`std::io::ErrorKind::FileTooLarge`] (the partial read wiped).
pub fn read_capped(mut r: impl std::io::Read, cap: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let limit = cap.saturating_add(1);
    let mut buf = Zeroizing::new(vec![0u8; READ_START.min(limit)]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len == limit {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    format!("more than {cap} bytes"),
                ));
            }
            let mut grown = Zeroizing::new(vec![0u8; len.saturating_mul(2).min(limit)]);
            grown[..len].copy_from_slice(&buf[..len]);
            // The old buffer is wiped as it is dropped here.
            buf = grown;
        }
        match r.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Lines from a file or descriptor, for a protocol that sends a secret on one line and waits for
/// the answer before the next (cargo's `login`). Like [`read_capped`], one zeroizing buffer and
/// no read-ahead elsewhere; each line is handed out in a zeroizing buffer of its own and wiped
/// from the shared one at once.
pub struct SecretLines<R> {
    reader: R,
    buf: Zeroizing<Vec<u8>>,
    len: usize,
    cap: usize,
    ended: bool,
}

impl<R: std::io::Read> SecretLines<R> {
    /// Lines of at most `cap` bytes from `reader`.
    pub fn new(reader: R, cap: usize) -> Self {
        SecretLines {
            reader,
            buf: Zeroizing::new(vec![0u8; READ_START.min(cap.saturating_add(1))]),
            len: 0,
            cap,
            ended: false,
        }
    }

    /// The next line without its `\n`; `None` at the end. A line over the cap fails with
    /// [`std::io::ErrorKind::FileTooLarge`].
    pub fn next_line(&mut self) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
        loop {
            let newline = self.buf[..self.len].iter().position(|&b| b == b'\n');
            if newline.is_some() || (self.ended && self.len > 0) {
                let end = newline.unwrap_or(self.len);
                let line = Zeroizing::new(self.buf[..end].to_vec());
                let rest = end + usize::from(newline.is_some());
                self.buf.copy_within(rest..self.len, 0);
                let left = self.len - rest;
                self.buf[left..self.len].zeroize();
                self.len = left;
                return Ok(Some(line));
            }
            if self.ended {
                return Ok(None);
            }
            if self.len == self.buf.len() {
                if self.len > self.cap {
                    self.buf.zeroize();
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::FileTooLarge,
                        format!("a line of more than {} bytes", self.cap),
                    ));
                }
                let size = self.len.saturating_mul(2).min(self.cap.saturating_add(1));
                let mut grown = Zeroizing::new(vec![0u8; size]);
                grown[..self.len].copy_from_slice(&self.buf[..self.len]);
                self.buf = grown;
            }
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => self.ended = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn wipe_strings(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe_strings),
        Value::Object(map) => map.values_mut().for_each(wipe_strings),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

impl std::io::Write for SecretText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Write for SecretText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretText(<redacted, {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let canary = "CANARY-sk-live-0123456789";
        let shown = format!(
            "{:?} {:?} {:?}",
            Token::new(canary.into()),
            Passphrase::new(canary.into()),
            Key::from_bytes([0x41; 32])
        );
        assert!(!shown.contains(canary), "{shown}");
        assert!(!shown.contains("AAAA"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn secret_text_keeps_every_byte_as_it_grows() {
        use std::fmt::Write as _;
        let mut t = SecretText::with_capacity(3);
        let mut expected = String::new();
        for i in 0..200 {
            let piece = format!("piece-{i};");
            if i % 2 == 0 {
                t.push_str(&piece);
            } else {
                write!(t, "{piece}").unwrap();
            }
            expected.push_str(&piece);
        }
        std::io::Write::write_all(&mut t, b"CANARY").unwrap();
        expected.push_str("CANARY");
        assert_eq!(t.as_bytes(), expected.as_bytes());
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("CANARY") && shown.contains("redacted"),
            "{shown}"
        );
    }

    #[test]
    fn read_capped_keeps_every_byte_and_refuses_one_over_the_cap() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        // A reader that hands out odd-sized pieces, as a pipe does.
        struct Pieces<'a>(&'a [u8]);
        impl std::io::Read for Pieces<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = out.len().min(self.0.len()).min(777);
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        assert_eq!(
            &read_capped(Pieces(&data), data.len()).unwrap()[..],
            &data[..]
        );
        assert_eq!(&read_capped(&data[..10], 10).unwrap()[..], &data[..10]);
        assert!(read_capped(&b""[..], 0).unwrap().is_empty());
        for cap in [0, 10, 8 << 10, data.len() - 1] {
            let e = read_capped(Pieces(&data), cap).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge, "cap {cap}");
        }
    }

    #[test]
    fn secret_lines_splits_like_lines_and_refuses_a_long_line() {
        let text = "first\n\nthird line\r\nlast without newline";
        let mut lines = SecretLines::new(text.as_bytes(), 64);
        let mut got = Vec::new();
        while let Some(l) = lines.next_line().unwrap() {
            got.push(String::from_utf8(l.to_vec()).unwrap());
        }
        assert_eq!(got, ["first", "", "third line\r", "last without newline"]);
        let long = format!("short\n{}\n", "x".repeat(20_000));
        let mut lines = SecretLines::new(long.as_bytes(), 10_000);
        assert_eq!(&lines.next_line().unwrap().unwrap()[..], b"short");
        let e = lines.next_line().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        let mut lines = SecretLines::new(long.as_bytes(), 30_000);
        lines.next_line().unwrap();
        assert_eq!(lines.next_line().unwrap().unwrap().len(), 20_000);
        assert!(lines.next_line().unwrap().is_none());
    }

    #[test]
    fn secret_text_json_matches_serde_json_and_wipes_the_value() {
        let v = serde_json::json!({"name": "a", "secret": "CANARY", "list": [1, "x", null]});
        let compact = SecretText::json(v.clone(), false);
        assert_eq!(
            compact.as_bytes(),
            serde_json::to_string(&v).unwrap().as_bytes()
        );
        let pretty = SecretText::json(v.clone(), true);
        assert_eq!(
            pretty.as_bytes(),
            serde_json::to_string_pretty(&v).unwrap().as_bytes()
        );
        let mut w = v.clone();
        wipe_strings(&mut w);
        assert_eq!(w["secret"], "");
        assert_eq!(w["list"][1], "");
        assert_eq!(w["list"][0], 1);
    }
}
