//! Links GCC's unwinder (`libgcc_eh.a`) into jeton on Linux with glibc, as `gcc -static-libgcc`
//! would, instead of loading `libgcc_s.so.1` at every start.
//!
//! Rust's standard library names `libgcc_s` for unwinding (panics and backtraces). Loading it
//! means one more object for the dynamic loader to map and resolve, and its constructor runs
//! `cpuid`, which traps to the hypervisor in a virtual machine. The archive is a native library
//! of the `jeton` crate, linked whole, so every program built on the crate (the binary, its
//! tests and benches) has the unwinder's symbols before the linker meets `-lgcc_s`; with
//! `--as-needed`, which Rust passes, the linker then finds nothing for `libgcc_s` to provide and
//! drops it. (A link argument would come after `-lgcc_s`: GNU ld would keep it, and a second
//! copy of the unwinder.) CHANGELOG.md (2026-11-29) says what this saves;
//! `tests/cli_core.rs::the_binary_does_not_load_libgcc_s` checks that it happened.
//!
//! Nothing changes when the linker driver cannot name the archive, when a test program does not
//! link with it, when cross-compiling, or on a static (`crt-static`) build, which links the
//! unwinder statically already.

use std::env;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo::rustc-check-cfg=cfg(jeton_static_unwinder)");
    let Some(archive) = static_unwinder() else {
        return;
    };
    let Some(dir) = archive.parent() else {
        return;
    };
    // Rerun (and fall back) when a compiler upgrade removes the archive.
    println!("cargo::rerun-if-changed={}", archive.display());
    println!("cargo::rustc-link-search=native={}", dir.display());
    println!("cargo::rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    println!("cargo::rustc-cfg=jeton_static_unwinder");
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
    let driver = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&driver)
        .arg("-print-file-name=libgcc_eh.a")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    // Without the archive, the driver echoes the bare name back.
    let archive = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    if !(out.status.success() && archive.is_absolute() && archive.is_file()) {
        return None;
    }
    links(&driver, &archive).then_some(archive)
}

/// Whether a position-independent C program links with the whole archive (an old toolchain
/// may have built it without `-fPIC`).
fn links(driver: &str, archive: &Path) -> bool {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("unwinder-probe");
    let child = Command::new(driver)
        .args(["-x", "c", "-", "-x", "none", "-fPIE", "-pie", "-o"])
        .arg(&out)
        .arg("-Wl,--whole-archive")
        .arg(archive)
        .arg("-Wl,--no-whole-archive")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let fed = child
        .stdin
        .take()
        .is_some_and(|mut stdin| stdin.write_all(b"int main(void) { return 0; }\n").is_ok());
    child.wait().is_ok_and(|s| s.success()) && fed
}
