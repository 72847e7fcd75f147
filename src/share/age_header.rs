//! A bound on an age header, checked before age parses it.
//!
//! age's header parser takes time quadratic in the number of recipient stanzas (2,000 stanzas:
//! about a second; 140,000: hours), and it runs before any signature can be checked, so an
//! unsigned file could make `import` or `backup verify` spin. jeton never writes a header near
//! these bounds: `share` encrypts to at most [`MAX_RECIPIENTS`] contacts, each one stanza of
//! about 100 bytes, plus the one random stanza age adds.

use std::io::Read;

/// Most recipients `share` encrypts one bundle to.
pub const MAX_RECIPIENTS: usize = 63;
/// Most stanzas a header may hold: the recipients and age's random one.
pub const MAX_STANZAS: usize = MAX_RECIPIENTS + 1;
/// Longest header accepted, from `age-encryption.org/v1` to the end of the MAC line.
pub const MAX_HEADER_LEN: usize = 16 << 10;

/// Checks the header of a binary or armored age file against [`MAX_HEADER_LEN`] and
/// [`MAX_STANZAS`], reading (and unarmoring) no more than that. Returns why it is refused.
/// Anything else wrong with the file is left for age to report.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut head = Vec::with_capacity(MAX_HEADER_LEN + 1);
    // An armor error within the first bytes is age's to report, on the same bytes.
    let _ = age::armor::ArmoredReader::new(bytes)
        .take(MAX_HEADER_LEN as u64 + 1)
        .read_to_end(&mut head);
    let end = head
        .windows(5)
        .position(|w| w == b"\n--- ")
        .map(|i| i + 1)
        .or_else(|| (head.len() > MAX_HEADER_LEN).then_some(head.len()));
    let Some(end) = end else {
        return Ok(());
    };
    if end > MAX_HEADER_LEN {
        return Err(format!(
            "its age header is longer than {} KiB",
            MAX_HEADER_LEN >> 10
        ));
    }
    let stanzas = head[..end].windows(4).filter(|w| w == b"\n-> ").count();
    if stanzas > MAX_STANZAS {
        return Err(format!(
            "its age header has {stanzas} recipient stanzas, more than the {MAX_STANZAS} jeton \
             ever writes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encrypt(n: usize, armor: bool) -> Vec<u8> {
        let ids: Vec<age::x25519::Identity> =
            (0..n).map(|_| age::x25519::Identity::generate()).collect();
        let recipients: Vec<age::x25519::Recipient> = ids.iter().map(|i| i.to_public()).collect();
        let e = age::Encryptor::with_recipients(recipients.iter().map(|r| r as _)).unwrap();
        let mut out = Vec::new();
        let format = if armor {
            age::armor::Format::AsciiArmor
        } else {
            age::armor::Format::Binary
        };
        let a = age::armor::ArmoredWriter::wrap_output(&mut out, format).unwrap();
        let mut w = e.wrap_output(a).unwrap();
        w.write_all(b"payload").unwrap();
        w.finish().unwrap().finish().unwrap();
        out
    }

    fn stanzas(n: usize) -> Vec<u8> {
        let mut h = b"age-encryption.org/v1\n".to_vec();
        for _ in 0..n {
            h.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
        }
        h.extend_from_slice(b"--- AAAA\npayload");
        h
    }

    #[test]
    fn the_largest_header_share_writes_passes() {
        for armor in [false, true] {
            assert_eq!(check(&encrypt(MAX_RECIPIENTS, armor)), Ok(()));
            assert_eq!(check(&encrypt(1, armor)), Ok(()));
        }
    }

    #[test]
    fn too_many_stanzas_or_too_long_a_header_is_refused() {
        assert_eq!(check(&stanzas(MAX_STANZAS)), Ok(()));
        let e = check(&stanzas(MAX_STANZAS + 1)).unwrap_err();
        assert!(e.contains("65 recipient stanzas"), "{e}");
        let e = check(&stanzas(5000)).unwrap_err();
        assert!(e.contains("longer than 16 KiB"), "{e}");
        let mut long = b"age-encryption.org/v1\n-> X25519 AAAA\n".to_vec();
        long.extend(std::iter::repeat_n(b'A', 20 << 10));
        assert!(check(&long).unwrap_err().contains("longer"));
        assert_eq!(check(b"not an age file"), Ok(()));
        assert_eq!(check(b""), Ok(()));
    }
}
