//! `get --clip`: the secret goes to the system clipboard (Wayland through wl-copy, X11 through
//! xclip or xsel), never through an argument, and a detached `jeton clip-clear` empties the
//! clipboard after the timeout, but only if it still holds that secret: a value copied since
//! is left alone. The waiting process never holds the secret, only a salted SHA-256 of it.

use clap::Args;
use jeton::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use zeroize::Zeroizing;

/// `clip-clear` (started by `get --clip`, not by people).
#[derive(Debug, Args)]
pub struct ClipClearArgs {
    /// Seconds to wait before clearing
    #[arg(long)]
    pub after: u64,
}

/// A clipboard tool found on the PATH for the display this session has.
enum Tool {
    Wayland(PathBuf, PathBuf),
    Xclip(PathBuf),
    Xsel(PathBuf),
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

fn tool() -> Result<Tool> {
    if set("WAYLAND_DISPLAY")
        && let (Some(copy), Some(paste)) = (on_path("wl-copy"), on_path("wl-paste"))
    {
        return Ok(Tool::Wayland(copy, paste));
    }
    if set("DISPLAY") {
        if let Some(p) = on_path("xclip") {
            return Ok(Tool::Xclip(p));
        }
        if let Some(p) = on_path("xsel") {
            return Ok(Tool::Xsel(p));
        }
    }
    Err(Error::Other(
        "no clipboard: --clip needs a Wayland (wl-copy) or X11 (xclip or xsel) session; \
         none was found (WAYLAND_DISPLAY and DISPLAY, and the tools on PATH)"
            .into(),
    ))
}

/// Puts `value` on the clipboard (empty: clears it).
fn copy(tool: &Tool, value: &[u8]) -> Result<()> {
    let mut c = match tool {
        Tool::Wayland(copy, _) if value.is_empty() => {
            let mut c = jeton::process::command(copy);
            c.arg("--clear");
            c
        }
        Tool::Wayland(copy, _) => jeton::process::command(copy),
        Tool::Xclip(p) => {
            let mut c = jeton::process::command(p);
            c.args(["-selection", "clipboard", "-in"]);
            c
        }
        Tool::Xsel(p) if value.is_empty() => {
            let mut c = jeton::process::command(p);
            c.args(["--clipboard", "--clear"]);
            c
        }
        Tool::Xsel(p) => {
            let mut c = jeton::process::command(p);
            c.args(["--clipboard", "--input"]);
            c
        }
    };
    // The tools stay in the background to serve the clipboard: they must not hold our output.
    c.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start the clipboard tool: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(value)
            .map_err(|e| Error::Other(format!("cannot write to the clipboard tool: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| Error::Other(format!("the clipboard tool failed: {e}")))?;
    if !status.success() {
        return Err(Error::Other(format!(
            "the clipboard tool failed ({status})"
        )));
    }
    Ok(())
}

/// What the clipboard holds now.
fn paste(tool: &Tool) -> Result<Zeroizing<Vec<u8>>> {
    let mut c = match tool {
        Tool::Wayland(_, paste) => {
            let mut c = jeton::process::command(paste);
            c.arg("--no-newline");
            c
        }
        Tool::Xclip(p) => {
            let mut c = jeton::process::command(p);
            c.args(["-selection", "clipboard", "-out"]);
            c
        }
        Tool::Xsel(p) => {
            let mut c = jeton::process::command(p);
            c.args(["--clipboard", "--output"]);
            c
        }
    };
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start the clipboard tool: {e}")))?;
    let mut out = Zeroizing::new(Vec::new());
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    let _ = child.wait();
    Ok(out)
}

fn fingerprint(salt: &[u8], value: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(value);
    h.finalize().to_vec()
}

/// Copies `value` and starts the process that clears it after `clear`.
pub fn clip(name: &str, value: &[u8], clear: Duration, quiet: bool) -> Result<()> {
    let tool = tool()?;
    copy(&tool, value)?;
    let mut salt = [0u8; 32];
    jeton::random::fill_random(&mut salt)?;
    let mut note = salt.to_vec();
    note.extend(fingerprint(&salt, value));
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot find the jeton program: {e}")))?;
    let mut c = jeton::process::command(exe);
    c.args(["clip-clear", "--after", &clear.as_secs().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own process group: a Ctrl-C meant for this command does not stop the clearing.
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start the clipboard clearer: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&note)
            .map_err(|e| Error::Other(format!("cannot start the clipboard clearer: {e}")))?;
    }
    if !quiet {
        eprintln!(
            "jeton: copied {} to the clipboard; it is cleared in {} unless something else is copied first",
            jeton::entry::printable(name),
            jeton::time::human_span(clear.as_secs() as i64)
        );
    }
    Ok(())
}

/// `clip-clear`: waits, then clears the clipboard if it still holds the value whose salted
/// fingerprint came on stdin.
pub fn clear_later(a: ClipClearArgs) -> Result<()> {
    let mut note = Vec::new();
    std::io::stdin()
        .take(64)
        .read_to_end(&mut note)
        .map_err(|e| Error::Other(format!("clip-clear: {e}")))?;
    if note.len() != 64 {
        return Err(Error::Other("internal error: unexpected response".into()));
    }
    let (salt, expected) = note.split_at(32);
    std::thread::sleep(Duration::from_secs(a.after));
    let tool = tool()?;
    let now = paste(&tool)?;
    if fingerprint(salt, &now) == expected {
        copy(&tool, b"")?;
    }
    Ok(())
}
