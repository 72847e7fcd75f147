//! Every child process jeton starts is made here, so that none inherits a way to open the vault.
//!
//! The passphrase sources (SPEC §5) are environment variables and descriptors inherited from
//! whoever started jeton. A child that inherited them (the command `exec` runs, the shell of
//! `JETON_PASSPHRASE_COMMAND`, gpg, the agent) could open the whole vault. [`command`] is the
//! only place that makes a [`Command`]: it removes every `JETON_*` variable except
//! [`PASSED_ON`], and keeps every descriptor a secret was read from (see [`seal_descriptor`])
//! away from the child. A unit test fails if `Command::new` appears anywhere else in `src/`.

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

/// The type [`command`] returns, for functions that take or return one.
pub use std::process::Command as Builder;

/// The `JETON_*` variables a child keeps: they name things, they open nothing.
pub const PASSED_ON: &[&str] = &["JETON_VAULT"];

/// Set once a secret was read from standard input given as a passphrase descriptor.
static STDIN_HELD_SECRET: AtomicBool = AtomicBool::new(false);

/// True for a variable no child may inherit: every `JETON_*` one but [`PASSED_ON`], so a
/// credential variable added later is covered without being listed.
pub fn is_credential(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"JETON_") && !PASSED_ON.iter().any(|p| name == *p)
}

/// A command for `program` that inherits neither a credential variable nor a descriptor a
/// secret was read from. Variables the caller sets on it afterwards are set as asked.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut c = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if is_credential(&name) {
            c.env_remove(name);
        }
    }
    if STDIN_HELD_SECRET.load(Ordering::SeqCst) {
        c.stdin(Stdio::null());
    }
    c
}

/// Keeps descriptor `fd`, from which a secret was just read, from every child: above 2 it is
/// made close-on-exec (the rest of this process never uses it again); for standard input,
/// children get `/dev/null` instead. Standard output and error are left alone.
pub fn seal_descriptor(fd: u32) -> std::io::Result<()> {
    match fd {
        0 => {
            STDIN_HELD_SECRET.store(true, Ordering::SeqCst);
            Ok(())
        }
        1 | 2 => Ok(()),
        _ => crate::harden::close_on_exec(fd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_variables_are_every_jeton_variable_but_the_vault_path() {
        for v in [
            "JETON_PASSPHRASE",
            "JETON_PASSPHRASE_FILE",
            "JETON_PASSPHRASE_COMMAND",
            "JETON_NEW_PASSPHRASE_FILE",
            "JETON_RECOVERY_KEY_FILE",
            "JETON_SOMETHING_NEW",
        ] {
            assert!(is_credential(OsStr::new(v)), "{v}");
        }
        for v in ["JETON_VAULT", "PATH", "HOME", "XJETON_PASSPHRASE"] {
            assert!(!is_credential(OsStr::new(v)), "{v}");
        }
    }

    /// The class cannot come back: no other module makes a child process.
    #[test]
    fn no_child_process_is_made_outside_this_module() {
        let mut found = Vec::new();
        for (path, text) in sources() {
            if path.ends_with("src/process.rs") {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                let code = line.replace("clap::Command::new", "");
                let names_the_type = code.match_indices("process::Command").any(|(i, m)| {
                    !code[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if code.contains("Command::new") || names_the_type {
                    found.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "make child processes with jeton::process::command:\n{}",
            found.join("\n")
        );
    }

    fn sources() -> Vec<(String, String)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for e in std::fs::read_dir(dir).expect("read src").flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).expect("read source");
                    out.push((p.display().to_string(), text));
                }
            }
        }
        let mut out = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut out,
        );
        assert!(out.len() > 20, "the source tree was not found");
        out
    }
}
