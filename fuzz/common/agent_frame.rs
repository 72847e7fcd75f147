//! Shared by fuzz/fuzz_targets/agent_frame.rs and tests/fuzz_corpus.rs (corpus replay).
//! Agent protocol frames (docs/AGENT.md) as either side reads them: byte 0 picks the reader
//! (even: the agent reading a client's request; odd: a client reading the agent's reply), the
//! rest is a stream of frames read until the first error. Never a panic; an over-long length
//! is refused before anything is allocated for it.

use jeton::agent::protocol::{FromAgent, ToAgent, read_frame};

/// One input; returns how many frames were accepted.
pub fn run(data: &[u8]) -> usize {
    let Some((&side, mut rest)) = data.split_first() else {
        return 0;
    };
    let mut accepted = 0;
    loop {
        let ok = if side % 2 == 0 {
            read_frame::<ToAgent>(&mut rest).is_ok()
        } else {
            read_frame::<FromAgent>(&mut rest).is_ok()
        };
        if !ok {
            return accepted;
        }
        accepted += 1;
    }
}
