//! `import` of a hostile bundle, at three depths chosen by the first input byte:
//! 0: the raw bytes as a bundle file (age header and armor parsers);
//! 1: the bytes as the envelope, age-encrypted to the vault (envelope parser, signature check);
//! 2: the bytes as the body, signed by a contact and encrypted to the vault: what a malicious
//!    authorised sender can send (body parser, import logic). `@SENDER@` and `@RECIPIENT@` in
//!    the input become the sender's card and this vault's age recipient.
//! Never a panic; whatever is accepted must re-seal and re-open.
#![no_main]

#[path = "../common/bundle.rs"]
mod bundle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    bundle::run(data);
});
