//! The config file, `$XDG_CONFIG_HOME/jeton/config.toml`: this device's preferences, which the
//! vault (shared with other devices by sync) does not hold. It is read only when a setting is
//! needed; a missing file means the defaults; sections and keys jeton does not know are left
//! alone. A file someone else could have written is ignored, with a warning, as the agent's
//! directory is: it must belong to this user, as must its folder, neither writable by group or
//! others, and every directory and link above them must pass [`jeton::runtime::check_path`].
//!
//! ```toml
//! [unlock]
//! agent = "ask"   # after a passphrase prompt: ask | always | never
//! ```

use jeton::runtime::Refusal;
use jeton::{Error, Result};
use serde::Deserialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// After a passphrase typed at the terminal: keep the vault unlocked in the agent?
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnlockAgent {
    /// Ask, y/N (the default).
    #[default]
    Ask,
    /// Yes, without asking.
    Always,
    /// No, without asking.
    Never,
}

/// Largest config file read (it holds a few lines).
const MAX_CONFIG: u64 = 64 << 10;

/// The settings jeton reads from the file.
#[derive(Debug, Default, Deserialize)]
struct Config {
    #[serde(default)]
    unlock: Unlock,
}

#[derive(Debug, Default, Deserialize)]
struct Unlock {
    #[serde(default)]
    agent: UnlockAgent,
}

/// `[unlock] agent` from the config file; [`UnlockAgent::Ask`] when it is not set.
pub fn unlock_agent() -> Result<UnlockAgent> {
    let Some(path) = jeton::paths::config_file() else {
        return Ok(UnlockAgent::Ask);
    };
    match untrusted(&path, jeton::runtime::uid()) {
        Ok(None) => {}
        Ok(Some(why)) => {
            eprintln!(
                "jeton: warning: ignoring the config file {}: {}",
                path.display(),
                jeton::text::Shown::line(&why)
            );
            return Ok(UnlockAgent::Ask);
        }
        Err((_, e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(UnlockAgent::Ask);
        }
        Err((at, e)) => return Err(Error::io("cannot read the config file", at, e)),
    }
    let bytes = match jeton::store::read_capped(&path, MAX_CONFIG) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UnlockAgent::Ask),
        Err(e) => return Err(Error::io("cannot read the config file", &path, e)),
    };
    parse(&bytes)
        .map(|c| c.unlock.agent)
        .map_err(|e| Error::Usage(format!("{} {e}", path.display())))
}

/// Why the config file at `path` cannot be trusted by user `uid` (someone else could have
/// written it), if so.
fn untrusted(
    path: &Path,
    uid: u32,
) -> std::result::Result<Option<String>, (PathBuf, std::io::Error)> {
    let (file, meta) = match jeton::runtime::check_path(path, uid, true) {
        Ok(found) => found,
        Err(Refusal::Unsafe(why)) => return Ok(Some(why)),
        Err(Refusal::Io(at, e)) => return Err((at, e)),
    };
    if let Some(why) = not_ours(&meta, uid) {
        return Ok(Some(format!("it {why}")));
    }
    let folder = file.parent().unwrap_or(Path::new("/"));
    let meta = std::fs::metadata(folder).map_err(|e| (folder.to_owned(), e))?;
    Ok(not_ours(&meta, uid).map(|why| format!("its folder {} {why}", folder.display())))
}

/// Why a file or folder is not this user's alone, if it is not.
fn not_ours(meta: &std::fs::Metadata, uid: u32) -> Option<String> {
    if meta.uid() != uid {
        return Some(format!("is owned by uid {}, not {uid}", meta.uid()));
    }
    (meta.mode() & 0o022 != 0).then(|| {
        format!(
            "may be written to by group or others (mode {:o})",
            meta.mode() & 0o7777
        )
    })
}

/// The settings in `bytes`, or where and why they do not parse (`line N: ...`).
fn parse(bytes: &[u8]) -> std::result::Result<Config, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8".to_owned())?;
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| 1 + text[..s.start].matches('\n').count());
        let what = jeton::text::Shown::line(e.message().trim()).to_string();
        match line {
            Some(l) => format!("line {l}: {what}"),
            None => what,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_unlock_section_and_nothing_else() {
        let agent = |text: &str| parse(text.as_bytes()).map(|c| c.unlock.agent);
        let text =
            "# mine\n[other]\nagent = \"never\"\n\n[unlock]  # here\nagent = \"always\" # yes\n";
        assert_eq!(agent(text), Ok(UnlockAgent::Always));
        assert_eq!(agent("[unlock]\n"), Ok(UnlockAgent::Ask));
        assert_eq!(agent(""), Ok(UnlockAgent::Ask));
        assert_eq!(
            agent("[unlock]\nagent = \"never\"\nother = 1\n"),
            Ok(UnlockAgent::Never)
        );
        assert!(agent("[unlock\n").unwrap_err().starts_with("line 1: "));
        // A bare word is not TOML.
        for bad in ["[unlock]\nagent\n", "[unlock]\nagent = never\n"] {
            assert!(agent(bad).unwrap_err().starts_with("line 2: "), "{bad}");
        }
        let err = agent("\n[unlock]\nagent = \"sometimes\"\n").unwrap_err();
        assert!(
            err.starts_with("line 3: ") && err.contains("always"),
            "{err}"
        );
    }
}
