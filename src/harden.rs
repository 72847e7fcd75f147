//! Process hardening applied at start by the CLI (SPEC §7): no core dumps, and no ptrace
//! attach or /proc/PID/mem reads by other same-uid processes (PR_SET_DUMPABLE 0).

/// Disables core dumps and makes the process non-dumpable. Returns what could not be done.
pub fn harden_process() -> Vec<String> {
    let mut failed = Vec::new();
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, zero) {
        failed.push(format!("RLIMIT_CORE: {e}"));
    }
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        failed.push(format!("PR_SET_DUMPABLE: {e}"));
    }
    failed
}
