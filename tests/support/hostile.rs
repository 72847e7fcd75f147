//! Hostile inputs shared by several test files.
#![allow(dead_code)]

use std::io::Write;

/// An age header of `n` X25519 stanzas (about 100 bytes each), then junk: nothing checks a
/// signature before age has parsed all of it.
pub fn hostile_age_file(n: usize, armor: bool) -> Vec<u8> {
    let b64 = "A".repeat(43);
    let mut h = b"age-encryption.org/v1\n".to_vec();
    for _ in 0..n {
        h.extend_from_slice(format!("-> X25519 {b64}\n{b64}\n").as_bytes());
    }
    h.extend_from_slice(format!("--- {b64}\n").as_bytes());
    h.extend_from_slice(&[0u8; 64]);
    if !armor {
        return h;
    }
    let mut out = Vec::new();
    let mut w =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    w.write_all(&h).unwrap();
    w.finish().unwrap();
    out
}
