//! Agent protocol frames as the agent and its clients read them (see fuzz/common/agent_frame.rs).
#![no_main]

#[path = "../common/agent_frame.rs"]
mod agent_frame;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    agent_frame::run(data);
});
