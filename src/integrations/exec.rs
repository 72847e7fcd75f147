//! `jeton exec`: run a command with secrets in its environment (SPEC §8).
//!
//! jeton resolves every reference first (one request: an unknown, disabled or revoked entry
//! stops everything before the command starts), then replaces itself with the command
//! (execve), so the command's exit status and signals are its own. PATH and HOME are never set
//! by jeton; variables it sets override inherited ones. The command inherits no passphrase
//! source: no `JETON_*` credential variable, no passphrase descriptor ([`crate::process`]).

use super::Reference;
use crate::{Error, Result};
use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use zeroize::Zeroizing;

/// Exit code when the command cannot be found (shell convention).
pub const NOT_FOUND: i32 = 127;
/// Exit code when the command exists but cannot be run (shell convention).
pub const NOT_EXECUTABLE: i32 = 126;

/// What one variable is set to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    /// A secret or field from the vault.
    Reference(Reference),
    /// A plain line of an env file, passed through.
    Literal(String),
}

/// Refuses variable names a shell could not use: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_var(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid environment variable name '{}' (use A-Z a-z 0-9 _, not starting with a digit)",
            crate::entry::printable(name)
        )))
    }
}

/// Parses `--env VAR=NAME[#field]` (a `jeton://` prefix is accepted too).
pub fn parse_env_flag(s: &str) -> Result<(String, Reference)> {
    let (var, target) = s.split_once('=').ok_or_else(|| {
        Error::Usage(format!(
            "--env '{}' must look like VAR=NAME or VAR=NAME#field",
            crate::entry::printable(s)
        ))
    })?;
    check_var(var)?;
    let target = target
        .strip_prefix(super::REFERENCE_SCHEME)
        .unwrap_or(target);
    Ok((var.to_owned(), Reference::parse(target)?))
}

/// Parses an env file: `VAR=jeton://NAME[#field]` lines are references; other `VAR=value`
/// lines pass through unchanged; blank lines and `#` comments are skipped; an `export ` prefix
/// is allowed.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, EnvValue)>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (var, value) = line
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("env file line {}: expected VAR=value", i + 1)))?;
        let var = var.trim_end();
        check_var(var).map_err(|e| Error::Usage(format!("env file line {}: {e}", i + 1)))?;
        let value = match Reference::parse_url(value.trim()) {
            Some(r) => EnvValue::Reference(
                r.map_err(|e| Error::Usage(format!("env file line {}: {e}", i + 1)))?,
            ),
            None => EnvValue::Literal(value.to_owned()),
        };
        out.push((var.to_owned(), value));
    }
    Ok(out)
}

/// Why the command could not be started, with the exit code to report.
#[derive(Debug)]
pub struct ExecFailure {
    /// 127 (not found) or 126 (not executable or other failure).
    pub code: i32,
    /// One line for stderr.
    pub message: String,
}

/// Replaces this process with `program` and `args`, adding `env` to the inherited environment.
/// Returns only if the command could not be started.
pub fn exec(
    program: &OsStr,
    args: &[std::ffi::OsString],
    env: &[(String, Zeroizing<String>)],
) -> ExecFailure {
    if let Some((var, _)) = env.iter().find(|(_, v)| v.contains('\0')) {
        return ExecFailure {
            code: NOT_EXECUTABLE,
            message: format!(
                "the value for {var} contains a NUL byte; it cannot be put in the environment"
            ),
        };
    }
    let mut cmd = crate::process::command(program);
    cmd.args(args);
    for (var, value) in env {
        cmd.env(var, value.as_str());
    }
    crate::harden::restore_core_limit();
    let e = cmd.exec();
    let shown = std::path::Path::new(program).display();
    if e.kind() == std::io::ErrorKind::NotFound {
        ExecFailure {
            code: NOT_FOUND,
            message: format!("{shown}: command not found"),
        }
    } else {
        ExecFailure {
            code: NOT_EXECUTABLE,
            message: format!("{shown}: cannot run: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_specs() {
        let (v, r) = parse_env_flag("TOKEN=github/ci#username").unwrap();
        assert_eq!(v, "TOKEN");
        assert_eq!(r.field.as_deref(), Some("username"));
        assert!(parse_env_flag("1X=a").is_err());
        assert!(parse_env_flag("X").is_err());
        assert!(parse_env_flag("X=a#nofield").is_err());
        let f = parse_env_file("# c\n\nexport A=jeton://a\nB=plain=value\nC = jeton://c#url\n")
            .unwrap();
        assert_eq!(f.len(), 3);
        assert!(matches!(&f[0].1, EnvValue::Reference(r) if r.name == "a"));
        assert_eq!(f[1].1, EnvValue::Literal("plain=value".into()));
        assert!(matches!(&f[2].1, EnvValue::Reference(r) if r.field.as_deref() == Some("url")));
        assert!(parse_env_file("nonsense\n").is_err());
        assert!(parse_env_file("A=jeton://../x\n").is_err());
    }
}
