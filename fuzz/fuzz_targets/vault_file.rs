//! The vault file parser: never panics, and whatever it accepts has exactly one encoding.
#![no_main]

use jeton::format::VaultFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = VaultFile::parse(data) {
        let len = file.ciphertext.len() as u64;
        assert_eq!(file.header.encode(len), file.header_bytes, "non-canonical header accepted");
        assert_eq!(file.to_bytes(), data);
    }
});
