//! Every call jeton makes that Linux alone has, or that a port would have to check, in one place.
//! jeton is built and tested on Linux with glibc (x86_64 and aarch64); nothing here has a path
//! for another system. What each call would need on another Unix:
//!
//! | here | Linux call | macOS and the BSDs |
//! |---|---|---|
//! | [`peer_uid`] | `getsockopt(SO_PEERCRED)` | `getpeereid(2)` |
//! | [`boottime`] | `clock_gettime(CLOCK_BOOTTIME)` (counts suspend) | macOS `CLOCK_MONOTONIC` (counts sleep); on a BSD, a clock that counts suspend (OpenBSD `CLOCK_BOOTTIME`) |
//! | [`set_not_dumpable`] | `prctl(PR_SET_DUMPABLE, 0)` | macOS `ptrace(PT_DENY_ATTACH)`; FreeBSD `procctl(PROC_TRACE_CTL)`; OpenBSD none (core limit only) |
//! | [`core_limit`], [`set_core_limit`] | `getrlimit`/`setrlimit(RLIMIT_CORE)` | the same (POSIX) |
//! | [`lock_in_memory`] | `mlock(2)`, bounded by `RLIMIT_MEMLOCK` | the same (POSIX); limits differ |
//! | [`close_on_exec`] | `/proc/self/fd` to check a descriptor is open, then `fcntl` | `fcntl(F_GETFD)` alone (no `/proc`) |
//! | [`advise_huge_pages`] | `madvise(MADV_HUGEPAGE)` | none: skip it (small pages, a slower unlock) |
//! | [`total_memory_kib`] | `sysinfo(2)` | `sysctl` `hw.memsize` (macOS), `hw.physmem` (BSDs) |
//! | [`signal_ignored`] | the `SigIgn` line of `/proc/self/status` | `sigaction(sig, NULL, &old)` for each signal |
//! | [`next_data`] | `lseek(SEEK_DATA)` | the same on macOS, FreeBSD and illumos; OpenBSD none (read the holes) |
//!
//! This module is one of the crate's three exceptions to `deny(unsafe_code)`: `mlock` and
//! `madvise` take raw pointers, and naming a descriptor by its number needs
//! `BorrowedFd::borrow_raw`. Each `unsafe` block states why it holds.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The uid of the process at the other end of a Unix socket.
pub fn peer_uid(conn: &UnixStream) -> std::io::Result<u32> {
    let cred = rustix::net::sockopt::socket_peercred(conn)?;
    Ok(cred.uid.as_raw())
}

/// Time since boot, counting time spent suspended (CLOCK_BOOTTIME), so idle and absolute
/// limits expire during a suspend as they would awake.
pub fn boottime() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Makes the process non-dumpable: no core file, and no ptrace attach or /proc/PID/mem read by
/// other processes of the same user.
pub fn set_not_dumpable() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(std::io::Error::from)
}

/// The soft and hard core-dump limits (`None`: unlimited).
pub fn core_limit() -> (Option<u64>, Option<u64>) {
    let l = rustix::process::getrlimit(rustix::process::Resource::Core);
    (l.current, l.maximum)
}

/// Sets the soft and hard core-dump limits (`None`: unlimited).
pub fn set_core_limit(soft: Option<u64>, hard: Option<u64>) -> std::io::Result<()> {
    let limit = rustix::process::Rlimit {
        current: soft,
        maximum: hard,
    };
    rustix::process::setrlimit(rustix::process::Resource::Core, limit).map_err(std::io::Error::from)
}

/// Locks the pages holding `value` into RAM so they are never written to swap. Fails (and the
/// caller warns) when RLIMIT_MEMLOCK is exhausted. Pages stay locked until the process exits.
pub fn lock_in_memory<T>(value: &T) -> std::io::Result<()> {
    let len = std::mem::size_of_val(value);
    if len == 0 {
        return Ok(());
    }
    let ptr = std::ptr::from_ref(value).cast::<c_void>().cast_mut();
    // SAFETY: `ptr..ptr+len` is the memory of `value`, valid for reads for the duration of
    // this call because we hold a shared reference to it; mlock neither reads nor writes it,
    // it only changes the residency of the pages that contain it.
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
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
    let flags = rustix::io::fcntl_getfd(fd)?;
    rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC)?;
    Ok(())
}

/// Asks the kernel to back `start..start+len` with transparent huge pages. A hint: failure (no
/// transparent huge pages in this kernel) only means small pages.
///
/// # Safety
/// `start..start+len` must lie inside a mapping the caller made and still owns.
pub unsafe fn advise_huge_pages(start: *mut c_void, len: usize) {
    // SAFETY: the caller guarantees the range is its own mapping; the advice changes no content.
    let _ = unsafe { rustix::mm::madvise(start, len, rustix::mm::Advice::LinuxHugepage) };
}

/// The machine's total memory in KiB, if the kernel says.
pub fn total_memory_kib() -> Option<u64> {
    let info = rustix::system::sysinfo();
    let bytes = info.totalram.checked_mul(u64::from(info.mem_unit))?;
    (bytes > 0).then_some(bytes / 1024)
}

/// Whether signal `sig` was ignored (SIG_IGN) when this process started, as `nohup` leaves
/// SIGHUP and a shell leaves SIGINT for a background job: a handler installed over it would undo
/// that choice. Read from `/proc/self/status` (no system call to ask without `unsafe`); `false`
/// when it cannot be read.
pub fn signal_ignored(sig: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .unwrap_or(0);
    (1..=64).contains(&sig) && mask & (1 << (sig - 1)) != 0
}

/// Where the next stored byte of `file` at or after `offset` is: `Some(offset)` when `offset`
/// is not in a hole, `None` when only a hole follows (to the end), and `Some(offset)` as well
/// when the file system cannot tell (the caller then reads the zeros). Moves the file's
/// position there.
pub fn next_data(file: &std::fs::File, offset: u64) -> std::io::Result<Option<u64>> {
    use rustix::fs::{SeekFrom, seek};
    match seek(file, SeekFrom::Data(offset)) {
        Ok(at) => Ok(Some(at)),
        Err(rustix::io::Errno::NXIO) => Ok(None),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::OPNOTSUPP) => {
            seek(file, SeekFrom::Start(offset))?;
            Ok(Some(offset))
        }
        Err(e) => Err(e.into()),
    }
}
