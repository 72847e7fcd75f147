//! `get --clip`: the value goes to the system clipboard, never through an argument, and is
//! cleared after the timeout, but only if it is still there: a value copied since is left
//! alone. Clipboard managers are told it is a secret (`x-kde-passwordManagerHint: secret`), so
//! those that honour the hint keep no copy in their history.
//!
//! - X11: jeton's own background process owns the selection ([`x11`]); it serves the value with
//!   the hint, gives the clipboard up after the timeout, and ends at once when something else is
//!   copied (the X server tells it).
//! - Wayland: wl-copy serves it (with `--sensitive`, the hint, where wl-copy has it: 2.3 and
//!   later), and a detached `jeton clip-clear` empties the clipboard after the timeout if wl-paste
//!   still shows the value. That process never holds the value, only a salted SHA-256 of it.
//!
//! `--osc52` copies through the terminal instead, for sessions with no clipboard tool (ssh): the
//! OSC 52 escape sequence goes to the controlling terminal (/dev/tty, never stdout), which sets
//! the clipboard where the terminal runs. A terminal cannot be asked what its clipboard holds,
//! so the clearer writes an empty OSC 52 set after the timeout whatever was copied since; inside
//! tmux, which ignores an empty one, it writes a single space instead. No hint travels this way.

mod x11;

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
    /// Clear through the terminal (OSC 52), unconditionally
    #[arg(long, conflicts_with = "x11")]
    pub osc52: bool,
    /// Own the X11 clipboard with the value read from stdin, and serve it until then
    #[arg(long)]
    pub x11: bool,
}

/// Where a copied value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The system clipboard: X11 (served by jeton) or Wayland (through wl-copy).
    System,
    /// The terminal's clipboard, through an OSC 52 escape sequence on /dev/tty.
    Osc52,
}

/// `--clip`, `--osc52` and `--clear` of the commands that can copy a value instead of printing it.
#[derive(Debug, Args)]
pub struct ClipArgs {
    /// Copy to the clipboard instead of printing (Wayland or X11)
    #[arg(long, short = 'c')]
    pub clip: bool,
    /// With --clip: copy through the terminal (an OSC 52 escape sequence on /dev/tty), for ssh
    #[arg(long, requires = "clip")]
    pub osc52: bool,
    /// Clear the clipboard after this long, if it still holds the value
    #[arg(long, value_name = "SPAN", requires = "clip", default_value = "45s")]
    pub clear: String,
}

/// Where and for how long `--clip` copies.
pub struct Copying {
    clear: Duration,
    target: Target,
}

impl ClipArgs {
    /// The copy asked for (`None`: print), checked before any I/O: `--clear` from 1s to 1d.
    pub fn checked(&self) -> Result<Option<Copying>> {
        let clear = jeton::time::parse_duration(&self.clear)?;
        if !self.clip {
            return Ok(None);
        }
        if !(1..=86_400).contains(&clear.as_secs()) {
            return Err(Error::Usage("--clear must be between 1s and 1d".into()));
        }
        let target = if self.osc52 {
            Target::Osc52
        } else {
            Target::System
        };
        Ok(Some(Copying { clear, target }))
    }
}

impl Copying {
    /// Copies `value` of entry `name` (see [`clip`]).
    pub fn value(&self, name: &str, value: &[u8], quiet: bool) -> Result<()> {
        clip(name, value, self.clear, quiet, self.target)
    }

    /// Fails as [`Copying::value`] would when there is no clipboard to copy to: checked before
    /// a command changes anything it then could not show.
    pub fn reachable(&self) -> Result<()> {
        match self.target {
            Target::System => tool().map(|_| ()),
            Target::Osc52 => tty().map(|_| ()),
        }
    }
}

/// The controlling terminal, for OSC 52.
fn tty() -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/tty")
        .map_err(|e| {
            Error::Other(format!(
                "--osc52 needs a terminal to write to (/dev/tty: {e})"
            ))
        })
}

/// OSC 52 "set the clipboard selection" (xterm's control sequences), before the base64 text.
const OSC52_START: &[u8] = b"\x1b]52;c;";
/// String terminator (BEL, which more terminals accept than ESC \\).
const OSC52_END: &[u8] = b"\x07";

/// What clears the clipboard through OSC 52 inside tmux, which ignores an empty set: one space.
const OSC52_PLACEHOLDER: &[u8] = b" ";

/// Writes an OSC 52 set of `value` (empty: clears) to the controlling terminal.
fn osc52(value: &[u8]) -> Result<()> {
    use base64::Engine;
    let mut tty = tty()?;
    let encoded = base64::encoded_len(value.len(), true).unwrap_or(0);
    // Reserved whole, so no partial copy is left behind by a reallocation; wiped on drop.
    let mut b64 = Zeroizing::new(String::with_capacity(encoded));
    base64::engine::general_purpose::STANDARD.encode_string(value, &mut b64);
    let mut seq = Zeroizing::new(Vec::with_capacity(
        OSC52_START.len() + b64.len() + OSC52_END.len(),
    ));
    seq.extend_from_slice(OSC52_START);
    seq.extend_from_slice(b64.as_bytes());
    seq.extend_from_slice(OSC52_END);
    tty.write_all(&seq)
        .and_then(|()| tty.flush())
        .map_err(|e| Error::Other(format!("cannot write to the terminal: {e}")))
}

/// The clipboard this session has.
enum Tool {
    /// wl-copy and wl-paste, and whether this wl-copy takes `--sensitive`.
    Wayland {
        copy: PathBuf,
        paste: PathBuf,
        sensitive: bool,
    },
    /// An X server: jeton owns the selection itself.
    X11,
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
        let sensitive = takes_sensitive(&copy);
        return Ok(Tool::Wayland {
            copy,
            paste,
            sensitive,
        });
    }
    if set("DISPLAY") {
        return Ok(Tool::X11);
    }
    Err(Error::Other(
        "no clipboard: --clip needs a Wayland session with wl-copy and wl-paste (wl-clipboard) \
         or an X11 session; none was found (WAYLAND_DISPLAY, DISPLAY)"
            .into(),
    ))
}

/// Whether this wl-copy has `--sensitive` (wl-clipboard 2.3 and later), as its help says.
fn takes_sensitive(copy: &std::path::Path) -> bool {
    jeton::process::command(copy)
        .arg("--help")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--sensitive"))
}

/// Puts `value` on the Wayland clipboard (empty: clears it).
fn wl_copy(copy: &std::path::Path, sensitive: bool, value: &[u8]) -> Result<()> {
    let mut c = jeton::process::command(copy);
    if value.is_empty() {
        c.arg("--clear");
    } else if sensitive {
        c.arg("--sensitive");
    }
    // wl-copy stays in the background to serve the clipboard: it must not hold our output.
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

/// What the Wayland clipboard holds now.
fn wl_paste(paste: &std::path::Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut c = jeton::process::command(paste);
    c.arg("--no-newline")
        .stdin(Stdio::null())
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

/// Copies `value` to `target` and starts the process that clears it after `clear`.
fn clip(name: &str, value: &[u8], clear: Duration, quiet: bool, target: Target) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot find the jeton program: {e}")))?;
    let note = match target {
        Target::System => match tool()? {
            Tool::X11 => {
                x11::start(&exe, value, clear)?;
                None
            }
            Tool::Wayland {
                copy, sensitive, ..
            } => {
                wl_copy(&copy, sensitive, value)?;
                let mut salt = [0u8; 32];
                jeton::random::fill_random(&mut salt)?;
                let mut note = salt.to_vec();
                note.extend(fingerprint(&salt, value));
                Some(note)
            }
        },
        Target::Osc52 => {
            osc52(value)?;
            Some(Vec::new())
        }
    };
    if let Some(note) = note {
        let mut c = jeton::process::command(exe);
        c.args(["clip-clear", "--after", &clear.as_secs().to_string()]);
        if target == Target::Osc52 {
            c.arg("--osc52");
        }
        c.stdin(Stdio::piped())
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
    }
    if !quiet {
        let (via, unless) = match target {
            Target::System => ("", " unless something else is copied first"),
            Target::Osc52 => (" through the terminal (OSC 52)", ""),
        };
        eprintln!(
            "jeton: copied {}{via} to the clipboard; it is cleared in {}{unless}",
            jeton::entry::printable(name),
            jeton::time::human_span(clear.as_secs() as i64)
        );
    }
    Ok(())
}

/// `clip-clear`: with `--x11`, owns the X11 clipboard with the value from stdin until the
/// timeout; with `--osc52`, clears the terminal's clipboard after it; otherwise, after it,
/// clears the Wayland clipboard if it still holds the value whose salted fingerprint came on
/// stdin.
pub fn clear_later(a: ClipClearArgs) -> Result<()> {
    let after = Duration::from_secs(a.after);
    if a.x11 {
        return x11::serve(after);
    }
    if a.osc52 {
        std::thread::sleep(after);
        let inside_tmux = set("TMUX");
        return osc52(if inside_tmux { OSC52_PLACEHOLDER } else { b"" });
    }
    let mut note = Vec::new();
    std::io::stdin()
        .take(64)
        .read_to_end(&mut note)
        .map_err(|e| Error::Other(format!("clip-clear: {e}")))?;
    if note.len() != 64 {
        return Err(Error::Other("internal error: unexpected response".into()));
    }
    let (salt, expected) = note.split_at(32);
    std::thread::sleep(after);
    let Tool::Wayland {
        copy,
        paste,
        sensitive,
    } = tool()?
    else {
        return Ok(());
    };
    let now = wl_paste(&paste)?;
    if fingerprint(salt, &now) == expected {
        wl_copy(&copy, sensitive, b"")?;
    }
    Ok(())
}
