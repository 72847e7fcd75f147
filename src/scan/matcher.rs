//! Finding every form of every secret in one pass over a stream of bytes.
//!
//! All forms go into one Aho-Corasick automaton, so the cost of a pass barely depends on how
//! many secrets are searched. The input is read in chunks of [`CHUNK`] bytes into one buffer
//! that keeps the last `longest form - 1` bytes of the previous chunk in front of the next: a
//! form that straddles two chunks is whole in the second buffer, and a match is reported only
//! when it ends in the new bytes, so none is reported twice. Memory is the buffer plus the
//! automaton, whatever the size of the input.
//!
//! Matches may overlap (two entries whose secrets share bytes are both reported). Lines and
//! columns are counted as the buffer moves on; both start at 1 and the column counts bytes.

use super::forms::{Form, FormBytes};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::io::{self, Read};
use zeroize::Zeroizing;

/// How many new bytes each read asks for. Reads of a regular file return this much until its
/// end, so the buffers of a file start at multiples of it (the tests plant secrets across them).
pub const CHUNK: usize = 64 * 1024;

/// Who a form belongs to: the index of a secret in the list the matcher was built from, and
/// the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    /// Index of the secret.
    pub secret: u32,
    /// How it was written.
    pub form: Form,
}

/// One place where a form was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found<'m> {
    /// Every secret and form whose bytes these are (usually one; more when two entries hold
    /// the same secret).
    pub owners: &'m [Owner],
    /// Byte offset of the first byte, from the start of the stream.
    pub offset: u64,
    /// Length in bytes.
    pub len: usize,
    /// Line of the first byte, from 1.
    pub line: u64,
    /// Column of the first byte, in bytes, from 1.
    pub column: u64,
}

/// The automaton over every form of every secret.
pub struct Matcher {
    automaton: Option<AhoCorasick>,
    owners: Vec<Vec<Owner>>,
    longest: usize,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("patterns", &self.owners.len())
            .finish_non_exhaustive()
    }
}

impl Matcher {
    /// A matcher for `forms`: each one's bytes, the secret it belongs to and its form. The
    /// forms are wiped once the automaton is built (the automaton's own tables are freed, not
    /// wiped: aho-corasick offers no way to; docs/THREAT_MODEL.md says what that means).
    pub fn new(mut forms: Vec<(FormBytes, Owner)>) -> io::Result<Matcher> {
        // Equal bytes become one pattern with several owners. Sorting moves the vectors'
        // headers, never their bytes, so no unwiped copy of a form is left behind.
        forms.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut owners: Vec<Vec<Owner>> = Vec::new();
        for (bytes, owner) in &forms {
            if patterns.last().is_some_and(|p| *p == &bytes[..]) {
                if let Some(last) = owners.last_mut() {
                    last.push(*owner);
                }
            } else {
                patterns.push(&bytes[..]);
                owners.push(vec![*owner]);
            }
        }
        let longest = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let automaton = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(io::Error::other)?,
            )
        };
        drop(patterns);
        drop(forms);
        Ok(Matcher {
            automaton,
            owners,
            longest,
        })
    }

    /// How many distinct byte strings it looks for.
    pub fn patterns(&self) -> usize {
        self.owners.len()
    }

    /// Heap bytes the automaton uses.
    pub fn memory_usage(&self) -> usize {
        self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage)
    }

    /// A reusable buffer for [`Matcher::scan`].
    pub fn buffer(&self) -> Buffer {
        Buffer(Zeroizing::new(Vec::with_capacity(
            CHUNK + self.longest.saturating_sub(1),
        )))
    }

    /// Every form in `source`, in the order they end, handed to `found`. Stops at the source's
    /// end or its first error. Returns the number of bytes read and skipped.
    pub fn scan(
        &self,
        source: &mut dyn Source,
        buffer: &mut Buffer,
        mut found: impl FnMut(Found<'_>),
    ) -> io::Result<u64> {
        let buf = &mut buffer.0;
        buf.clear();
        let Some(automaton) = &self.automaton else {
            // Nothing to look for: read nothing either.
            return Ok(0);
        };
        let keep = self.longest.saturating_sub(1);
        // `buf[0]` is byte `base` of the stream; `lines` newlines come before it, the last of
        // them at `last_newline`.
        let mut base = 0u64;
        let mut lines = 0u64;
        let mut last_newline: Option<u64> = None;
        loop {
            let fresh = buf.len();
            buf.resize(fresh + CHUNK, 0);
            let got = loop {
                match source.next(&mut buf[fresh..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let got = match got {
                Ok(g) => g,
                Err(e) => {
                    buf.truncate(fresh);
                    return Err(e);
                }
            };
            let n = match got {
                Got::Data(n) => n,
                Got::End => 0,
                Got::Gap(skipped) => {
                    // Bytes that are not there (a hole of a sparse file) end the carried text:
                    // no form runs across them. Count what is dropped and move on.
                    buf.truncate(fresh);
                    lines += count_newlines(buf, &mut last_newline, base);
                    base += buf.len() as u64 + skipped;
                    buf.clear();
                    continue;
                }
            };
            buf.truncate(fresh + n);
            if n == 0 {
                break;
            }
            let mut cursor = LineCursor::new(lines, last_newline);
            for m in automaton.find_overlapping_iter(&buf[..]) {
                if m.end() <= fresh {
                    // Whole in the carried bytes: reported with the previous chunk.
                    continue;
                }
                let (line, column) = cursor.at(buf, m.start(), base);
                found(Found {
                    owners: &self.owners[m.pattern().as_usize()],
                    offset: base + m.start() as u64,
                    len: m.len(),
                    line,
                    column,
                });
            }
            let drop = buf.len().saturating_sub(keep);
            lines += count_newlines(&buf[..drop], &mut last_newline, base);
            buf.copy_within(drop.., 0);
            let kept = buf.len() - drop;
            // The bytes moved out of the tail are wiped with the rest of the buffer later.
            buf.truncate(kept);
            base += drop as u64;
        }
        let total = base + buf.len() as u64;
        // What was read may hold secrets: wipe it now rather than when the buffer is dropped.
        zeroize::Zeroize::zeroize(&mut buf[..]);
        buf.clear();
        Ok(total)
    }
}

/// The matcher's read buffer, wiped on drop (it holds what was read, secrets included).
pub struct Buffer(Zeroizing<Vec<u8>>);

/// What a [`Source`] gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    /// This many bytes were put at the start of the buffer.
    Data(usize),
    /// This many bytes were skipped (a hole of a sparse file: zeros that are not stored).
    Gap(u64),
    /// The end.
    End,
}

/// Where the bytes come from: a reader, or a file that skips its holes.
pub trait Source {
    /// The next bytes, into `buf`.
    fn next(&mut self, buf: &mut [u8]) -> io::Result<Got>;
}

/// Any reader, read to its end.
pub struct Reader<R>(pub R);

impl<R: Read> Source for Reader<R> {
    fn next(&mut self, buf: &mut [u8]) -> io::Result<Got> {
        match self.0.read(buf)? {
            0 => Ok(Got::End),
            n => Ok(Got::Data(n)),
        }
    }
}

/// Newlines in `bytes` (which start at stream offset `base`); moves `last` to the last one.
fn count_newlines(bytes: &[u8], last: &mut Option<u64>, base: u64) -> u64 {
    if let Some(i) = memchr::memrchr(b'\n', bytes) {
        *last = Some(base + i as u64);
    }
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Line and column of positions in one buffer, counted forward from the last position asked
/// (matches come in the order they end, so their starts almost always move forward).
struct LineCursor {
    at: usize,
    lines: u64,
    last: Option<u64>,
    start: (u64, Option<u64>),
}

impl LineCursor {
    fn new(lines: u64, last: Option<u64>) -> LineCursor {
        LineCursor {
            at: 0,
            lines,
            last,
            start: (lines, last),
        }
    }

    fn at(&mut self, buf: &[u8], pos: usize, base: u64) -> (u64, u64) {
        if pos < self.at {
            (self.lines, self.last) = self.start;
            self.at = 0;
        }
        self.lines += count_newlines(&buf[self.at..pos], &mut self.last, base + self.at as u64);
        self.at = pos;
        let offset = base + pos as u64;
        let column = match self.last {
            Some(nl) => offset - nl,
            None => offset + 1,
        };
        (self.lines + 1, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(secrets: &[&str]) -> Matcher {
        let mut forms = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            for (form, bytes) in super::super::forms::forms(s.as_bytes()) {
                let secret = u32::try_from(i).unwrap();
                forms.push((bytes, Owner { secret, form }));
            }
        }
        Matcher::new(forms).unwrap()
    }

    /// (secret, form, offset, line, column) of every match, reading `data` in pieces of
    /// `piece` bytes.
    fn found(m: &Matcher, data: &[u8], piece: usize) -> Vec<(u32, Form, u64, u64, u64)> {
        struct Pieces<'a>(&'a [u8], usize);
        impl Source for Pieces<'_> {
            fn next(&mut self, buf: &mut [u8]) -> io::Result<Got> {
                let n = self.0.len().min(self.1).min(buf.len());
                if n == 0 {
                    return Ok(Got::End);
                }
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(Got::Data(n))
            }
        }
        let mut out = Vec::new();
        let mut buffer = m.buffer();
        m.scan(&mut Pieces(data, piece), &mut buffer, |f| {
            for o in f.owners {
                out.push((o.secret, o.form, f.offset, f.line, f.column));
            }
        })
        .unwrap();
        out.sort();
        out
    }

    #[test]
    fn a_secret_across_every_read_boundary_is_found_once_with_its_line_and_column() {
        let m = matcher(&["s3cr3t-token-AAAA"]);
        let mut data = b"x\nyy\n".to_vec();
        data.extend_from_slice(b"zzzs3cr3t-token-AAAA\n");
        let want = vec![(0, Form::Raw, 8, 3, 4)];
        for piece in 1..data.len() + 2 {
            assert_eq!(found(&m, &data, piece), want, "piece {piece}");
        }
    }

    #[test]
    fn long_input_keeps_counting_lines_across_chunks() {
        let m = matcher(&["0123456789abcdef-tok"]);
        let mut data = Vec::new();
        while data.len() < 3 * CHUNK {
            data.extend_from_slice(b"some line of text\n");
        }
        data.truncate(3 * CHUNK - 5);
        let before: u64 = data.iter().filter(|&&b| b == b'\n').count() as u64;
        let last_nl = data.iter().rposition(|&b| b == b'\n').unwrap() as u64;
        let offset = data.len() as u64;
        data.extend_from_slice(b"0123456789abcdef-tok");
        let got = found(&m, &data, CHUNK);
        assert_eq!(
            got,
            vec![(0, Form::Raw, offset, before + 1, offset - last_nl)]
        );
    }

    #[test]
    fn two_entries_with_one_secret_and_overlapping_secrets_are_all_reported() {
        let m = matcher(&["same-secret-123", "same-secret-123", "secret-123"]);
        let got = found(&m, b"same-secret-123", 4);
        let who: Vec<u32> = got.iter().map(|g| g.0).collect();
        assert_eq!(who, [0, 1, 2]);
    }

    #[test]
    fn nothing_to_look_for_reads_nothing() {
        let m = Matcher::new(Vec::new()).unwrap();
        assert_eq!(found(&m, b"anything", 3), []);
    }
}
