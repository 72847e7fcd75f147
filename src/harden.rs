//! Process hardening applied at start by the CLI and the agent (SPEC §7): no core dumps, no
//! ptrace attach or /proc/PID/mem reads by other same-uid processes (PR_SET_DUMPABLE 0), and the
//! agent's key pinned in RAM (mlock) where the memory-lock limit allows. The calls themselves are
//! in `os`.

use crate::os;
use std::sync::OnceLock;

pub use crate::os::{close_on_exec, lock_in_memory};

/// The soft RLIMIT_CORE found at start, restored by `exec` just before it runs a command.
static ORIGINAL_CORE_LIMIT: OnceLock<Option<u64>> = OnceLock::new();

/// Disables core dumps and makes the process non-dumpable. Returns what could not be done.
///
/// Only the soft core limit is lowered, so `exec` can give the command it runs the limit the
/// user had; PR_SET_DUMPABLE 0 already forbids dumps of this process whatever the limit.
pub fn harden_process() -> Vec<String> {
    let mut failed = Vec::new();
    let (soft, hard) = os::core_limit();
    let _ = ORIGINAL_CORE_LIMIT.set(soft);
    if let Err(e) = os::set_core_limit(Some(0), hard) {
        failed.push(format!("RLIMIT_CORE: {e}"));
    }
    if let Err(e) = os::set_not_dumpable() {
        failed.push(format!("PR_SET_DUMPABLE: {e}"));
    }
    failed
}

/// Gives back the core-dump limit the process started with (before `execve` of a user command).
pub fn restore_core_limit() {
    if let Some(&original) = ORIGINAL_CORE_LIMIT.get() {
        let _ = os::set_core_limit(original, os::core_limit().1);
    }
}
