//! The payload decoder (postcard, run on decrypted bytes): never panics; every entry the
//! open-time walk accepts decodes in full; and what it accepts re-encodes to bytes that decode
//! to the same encoding again.
#![no_main]

use jeton::vault::Payload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = Payload::decode(data) {
        let copied = payload.encode().expect("a decoded payload encodes");
        Payload::decode(&copied).expect("entries copied as read decode");
        let all = payload.entries.values().expect("every accepted entry decodes");
        assert_eq!(all.count(), payload.entries.len());
        let once = payload.encode().expect("a decoded payload encodes");
        let again = Payload::decode(&once).expect("an encoded payload decodes");
        let all = again.entries.values().expect("every accepted entry decodes");
        assert_eq!(all.count(), again.entries.len());
        assert_eq!(*again.encode().expect("encodes"), *once, "encoding is not stable");
    }
});
