//! Where jeton keeps its files (SPEC §2), resolved from flags and the XDG environment.

use std::path::PathBuf;

/// File name of the vault inside the data directory.
pub const VAULT_FILE: &str = "vault.jeton";

fn xdg(var: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            return Some(p);
        }
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(fallback))
}

/// `--vault`, else `$JETON_VAULT`, else `$XDG_DATA_HOME/jeton/vault.jeton`.
pub fn vault_path(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os("JETON_VAULT")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .or_else(|| xdg("XDG_DATA_HOME", ".local/share").map(|d| d.join("jeton").join(VAULT_FILE)))
}

/// `$XDG_STATE_HOME/jeton` (`~/.local/state/jeton`): the rollback memory lives here.
pub fn state_dir() -> Option<PathBuf> {
    xdg("XDG_STATE_HOME", ".local/state").map(|d| d.join("jeton"))
}

/// `$XDG_CONFIG_HOME/jeton/config.toml` (`~/.config/jeton/config.toml`): this device's
/// preferences (the vault, which sync shares, holds none of them).
pub fn config_file() -> Option<PathBuf> {
    xdg("XDG_CONFIG_HOME", ".config").map(|d| d.join("jeton").join("config.toml"))
}
