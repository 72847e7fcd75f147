//! The payload decoder (postcard, run on decrypted bytes): never panics, and what it accepts
//! re-encodes to bytes that decode to the same encoding again.
#![no_main]

use jeton::vault::Payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = Payload::decode(data) {
        let once = payload.encode().expect("a decoded payload encodes");
        let again = Payload::decode(&once).expect("an encoded payload decodes");
        assert_eq!(*again.encode().expect("encodes"), *once, "encoding is not stable");
    }
});
