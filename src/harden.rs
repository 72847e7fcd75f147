//! Process hardening applied at start by the CLI and the agent (SPEC §7): no core dumps, no
//! ptrace attach or /proc/PID/mem reads by other same-uid processes (PR_SET_DUMPABLE 0), and the
//! agent's key pinned in RAM (mlock) where the memory-lock limit allows.
//!
//! Two calls here are `unsafe`: rustix marks `mlock` unsafe because it takes a raw pointer (the
//! pointer and length below always come from a live shared reference), and naming a descriptor
//! by its number (for `fcntl`) needs `BorrowedFd::borrow_raw`.

use std::sync::OnceLock;

/// The soft RLIMIT_CORE found at start, restored by `exec` just before it runs a command.
static ORIGINAL_CORE_LIMIT: OnceLock<Option<u64>> = OnceLock::new();

/// Disables core dumps and makes the process non-dumpable. Returns what could not be done.
///
/// Only the soft core limit is lowered, so `exec` can give the command it runs the limit the
/// user had; PR_SET_DUMPABLE 0 already forbids dumps of this process whatever the limit.
pub fn harden_process() -> Vec<String> {
    let mut failed = Vec::new();
    let current = rustix::process::getrlimit(rustix::process::Resource::Core);
    let _ = ORIGINAL_CORE_LIMIT.set(current.current);
    let zero = rustix::process::Rlimit {
        current: Some(0),
        maximum: current.maximum,
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

/// Gives back the core-dump limit the process started with (before `execve` of a user command).
pub fn restore_core_limit() {
    if let Some(&original) = ORIGINAL_CORE_LIMIT.get() {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Core);
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Core,
            rustix::process::Rlimit {
                current: original,
                maximum: limit.maximum,
            },
        );
    }
}

/// Locks the pages holding `value` into RAM so they are never written to swap. Fails (and the
/// caller warns) when RLIMIT_MEMLOCK is exhausted. Pages stay locked until the process exits.
pub fn lock_in_memory<T>(value: &T) -> std::io::Result<()> {
    let len = std::mem::size_of_val(value);
    if len == 0 {
        return Ok(());
    }
    let ptr = std::ptr::from_ref(value)
        .cast::<std::ffi::c_void>()
        .cast_mut();
    // SAFETY: `ptr..ptr+len` is the memory of `value`, valid for reads for the duration of
    // this call because we hold a shared reference to it; mlock neither reads nor writes it,
    // it only changes the residency of the pages that contain it.
    #[allow(unsafe_code)]
    unsafe { rustix::mm::mlock(ptr, len) }.map_err(std::io::Error::from)
}

/// Marks descriptor `fd` close-on-exec, so no program this process runs inherits it. For a
/// descriptor jeton was given by number (`--passphrase-fd N`) and has just read from.
pub fn close_on_exec(fd: u32) -> std::io::Result<()> {
    let raw = std::os::fd::RawFd::try_from(fd)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // `borrow_raw` requires an open descriptor: refuse one the process does not have.
    if std::fs::symlink_metadata(format!("/proc/self/fd/{raw}")).is_err() {
        return Err(std::io::Error::from_raw_os_error(
            rustix::io::Errno::BADF.raw_os_error(),
        ));
    }
    // SAFETY: `raw` is open (checked just above), the borrow lives only for these two calls,
    // and nothing in this process closes descriptors it was given by number, so it stays open
    // meanwhile.
    #[allow(unsafe_code)]
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
    let flags = rustix::io::fcntl_getfd(fd)?;
    rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}
