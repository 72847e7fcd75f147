//! Shared by fuzz/fuzz_targets/sync_record.rs and tests/fuzz_corpus.rs (corpus replay).
//! The sync record that follows the payload inside a synced vault and every replica read from
//! a remote (docs/FORMAT.md "Sync record"): byte 0 picks the reader (even: format 3's decoder;
//! odd: format 2's, converted against an empty payload), the rest is the record. Never a panic;
//! what is accepted encodes to a record that decodes to the same value.

use jeton::sync::round::Record;
use jeton::vault::Payload;

/// One input; true when the record was accepted.
pub fn run(data: &[u8]) -> bool {
    let Some((&reader, bytes)) = data.split_first() else {
        return false;
    };
    let record = if reader % 2 == 0 {
        Record::decode(bytes)
    } else {
        jeton::sync::upgrade_record(bytes, &Payload::default()).and_then(|b| Record::decode(&b))
    };
    match record {
        Ok(r) => {
            let once = r.encode().expect("a decoded record encodes");
            let again = Record::decode(&once).expect("an encoded record decodes");
            assert_eq!(again, r, "a record changed through encode and decode");
            true
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 6, "{e}");
            false
        }
    }
}
