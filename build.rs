//! Links GCC's unwinder (`libgcc_eh.a`) into the `jeton` binary on Linux with glibc, as
//! `gcc -static-libgcc` would, instead of loading `libgcc_s.so.1` at every start.
//!
//! Rust's standard library names `libgcc_s` for unwinding (panics and backtraces). Loading it
//! means one more object for the dynamic loader to map and resolve, and its constructor runs
//! `cpuid`, which traps to the hypervisor in a virtual machine. With the archive's objects
//! linked in first, the linker (which Rust runs with `--as-needed`) finds nothing left for
//! `libgcc_s` to provide and drops it. docs/PERFORMANCE.md measures what this saves.
//!
//! Nothing changes when the archive cannot be found, when cross-compiling, or on a static
//! (`crt-static`) build, which links the unwinder statically already.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    if let Some(archive) = static_unwinder() {
        println!("cargo::rustc-link-arg-bins=-Wl,--whole-archive");
        println!("cargo::rustc-link-arg-bins={}", archive.display());
        println!("cargo::rustc-link-arg-bins=-Wl,--no-whole-archive");
    }
}

/// The path of `libgcc_eh.a` when it should be linked in, as the linker driver reports it.
fn static_unwinder() -> Option<PathBuf> {
    let var = |name: &str| env::var(name).unwrap_or_default();
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || crt_static
        || var("TARGET") != var("HOST")
    {
        return None;
    }
    let linker = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let out = Command::new(linker)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // Without the archive, the driver echoes the bare name back.
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
