//! The config file, `$XDG_CONFIG_HOME/jeton/config.toml`: this device's preferences, which the
//! vault (shared with other devices by sync) does not hold. It is read only when a setting is
//! needed; a missing file means the defaults. The part of TOML jeton reads: `[section]` lines,
//! `key = "value"` (or a bare word) lines, `#` comments.
//!
//! ```toml
//! [unlock]
//! agent = "ask"   # after a passphrase prompt: ask | always | never
//! ```

use jeton::{Error, Result};

/// After a passphrase typed at the terminal: keep the vault unlocked in the agent?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockAgent {
    /// Ask, y/N (the default).
    Ask,
    /// Yes, without asking.
    Always,
    /// No, without asking.
    Never,
}

/// Largest config file read (it holds a few lines).
const MAX_CONFIG: u64 = 64 << 10;

/// `[unlock] agent` from the config file; [`UnlockAgent::Ask`] when it is not set.
pub fn unlock_agent() -> Result<UnlockAgent> {
    let Some(path) = jeton::paths::config_file() else {
        return Ok(UnlockAgent::Ask);
    };
    let bytes = match jeton::store::read_capped(&path, MAX_CONFIG) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UnlockAgent::Ask),
        Err(e) => return Err(Error::io("cannot read the config file", &path, e)),
    };
    let bad =
        |line: usize, what: String| Error::Usage(format!("{} line {line}: {what}", path.display()));
    let text = std::str::from_utf8(&bytes).map_err(|_| bad(0, "not UTF-8".into()))?;
    match value(text, "unlock", "agent").map_err(|(l, w)| bad(l, w))? {
        None => Ok(UnlockAgent::Ask),
        Some((_, "ask")) => Ok(UnlockAgent::Ask),
        Some((_, "always")) => Ok(UnlockAgent::Always),
        Some((_, "never")) => Ok(UnlockAgent::Never),
        Some((l, other)) => Err(bad(
            l,
            format!(
                "[unlock] agent is '{}'; it must be ask, always or never",
                jeton::text::Shown::line(other)
            ),
        )),
    }
}

/// The value of `key` in `[section]` and its line number; the last one wins, like TOML
/// forbids and editors do. Unknown sections and keys are left alone.
fn value<'a>(
    text: &'a str,
    section: &str,
    key: &str,
) -> std::result::Result<Option<(usize, &'a str)>, (usize, String)> {
    let mut current = "";
    let mut found = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            current = name
                .strip_suffix(']')
                .ok_or((i + 1, "a section must look like [name]".to_owned()))?
                .trim();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or((i + 1, "expected key = \"value\"".to_owned()))?;
        if current == section && k.trim() == key {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            found = Some((i + 1, v));
        }
    }
    Ok(found)
}

/// A line without its `#` comment (a `#` inside a quoted value stays).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_unlock_section_and_nothing_else() {
        let text =
            "# mine\n[other]\nagent = \"never\"\n\n[unlock]  # here\nagent = \"always\" # yes\n";
        assert_eq!(value(text, "unlock", "agent"), Ok(Some((6, "always"))));
        assert_eq!(
            value("[unlock]\nagent = never\n", "unlock", "agent"),
            Ok(Some((2, "never")))
        );
        assert_eq!(value("[unlock]\n", "unlock", "agent"), Ok(None));
        assert!(value("[unlock\n", "unlock", "agent").is_err());
        assert!(value("[unlock]\nagent\n", "unlock", "agent").is_err());
    }
}
