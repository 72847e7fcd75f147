//! The sync record decoders of formats 3 and 2 (a record comes from a remote replica once its
//! file authenticated, so only a device holding the key can write one; still, never a panic).
#![no_main]

#[path = "../common/sync_record.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = target::run(data);
});
