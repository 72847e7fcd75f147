//! The X11 clipboard, served by jeton's own clearer process: it owns the CLIPBOARD selection and
//! answers paste requests with the value, offering `x-kde-passwordManagerHint` (`secret`) beside
//! the text targets, so clipboard managers that honour it (Klipper, CopyQ, GNOME's extensions)
//! keep no copy in their history. When the timeout passes it gives the selection up (the
//! clipboard is then empty); when another program copies something first, the X server takes
//! the selection from it (SelectionClear) and it ends at once, leaving that value alone.
//!
//! The value lives in this process for the timeout, as it lived in xclip's before; jeton's
//! process hardening (no core dumps, not ptrace-readable by other users) applies to it.

use jeton::{Error, Result};
use std::io::{BufRead, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, SELECTION_NOTIFY_EVENT,
    SelectionNotifyEvent, SelectionRequestEvent, Timestamp, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use zeroize::Zeroizing;

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        CLIPBOARD,
        TARGETS,
        TIMESTAMP,
        INTEGER,
        UTF8_STRING,
        TEXT,
        TEXT_PLAIN: b"text/plain",
        TEXT_PLAIN_UTF8: b"text/plain;charset=utf-8",
        PASSWORD_HINT: b"x-kde-passwordManagerHint",
        JETON_CLIP,
    }
}

/// What the hint target holds: KDE's convention, which the other managers follow.
const HINT_VALUE: &[u8] = b"secret";

/// Starts `exe clip-clear --x11 --after N` in the background with `value` on its stdin, and
/// waits until it owns the clipboard (or says why it cannot).
pub fn start(exe: &std::path::Path, value: &[u8], clear: Duration) -> Result<()> {
    let mut c = jeton::process::command(exe);
    c.args([
        "clip-clear",
        "--x11",
        "--after",
        &clear.as_secs().to_string(),
    ])
    .current_dir("/")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null());
    // Its own process group: a Ctrl-C meant for this command does not stop the clearing.
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c
        .spawn()
        .map_err(|e| Error::Other(format!("cannot start the clipboard owner: {e}")))?;
    let fed = child.stdin.take().map(|mut stdin| stdin.write_all(value));
    let mut answer = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out.take(4096)).read_line(&mut answer);
    }
    if let Some(Err(e)) = fed {
        return Err(Error::Other(format!("cannot copy to the clipboard: {e}")));
    }
    match answer.trim_end().strip_prefix("error: ") {
        _ if answer == "ok\n" => Ok(()),
        Some(why) => Err(Error::Other(jeton::text::Shown::line(why).to_string())),
        None => Err(Error::Other(format!(
            "the clipboard owner stopped at start ({})",
            child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string())
        ))),
    }
}

/// `clip-clear --x11`: reads the value from stdin, owns the clipboard, says `ok` (or `error:
/// ...`) on stdout, serves paste requests until `after` has passed or another program copies,
/// then gives the clipboard up.
pub fn serve(after: Duration) -> Result<()> {
    let mut stdout = std::io::stdout();
    let value = match read_value() {
        Ok(v) => v,
        Err(e) => return report(&mut stdout, e),
    };
    let deadline = Instant::now() + after;
    let owner = match Owner::take(&value) {
        Ok(o) => o,
        Err(e) => return report(&mut stdout, e),
    };
    writeln!(stdout, "ok").and_then(|()| stdout.flush()).ok();
    owner.serve_until(&value, deadline)
}

/// Tells the starting command why the copy failed, and fails.
fn report(out: &mut std::io::Stdout, e: Error) -> Result<()> {
    let _ = writeln!(out, "error: {e}").and_then(|()| out.flush());
    Err(e)
}

/// The value on stdin, read through a plain descriptor: `std::io::stdin()` keeps a buffer of
/// its own that is never wiped.
fn read_value() -> Result<Zeroizing<Vec<u8>>> {
    let failed = |e: std::io::Error| Error::Other(format!("cannot read the value to copy: {e}"));
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(failed)?;
    jeton::secret::read_capped(std::fs::File::from(stdin), 1 << 20).map_err(failed)
}

fn x_error(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("the X11 clipboard: {e}"))
}

/// A connection to the X server that owns the clipboard through a window of its own.
struct Owner {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    since: Timestamp,
}

impl Owner {
    /// Connects to `$DISPLAY` and takes the clipboard with a server timestamp (ICCCM §2.1).
    fn take(value: &[u8]) -> Result<Owner> {
        let (conn, screen) = x11rb::connect(None).map_err(|e| {
            Error::Other(format!(
                "cannot open the X display {}: {e}",
                std::env::var("DISPLAY").unwrap_or_default()
            ))
        })?;
        // Larger values would need the INCR protocol; tokens are far smaller.
        let room = conn.maximum_request_bytes().saturating_sub(64);
        if value.len() > room {
            return Err(Error::Other(format!(
                "the value is too large for the X11 clipboard ({} bytes; at most {room})",
                value.len()
            )));
        }
        let atoms = Atoms::new(&conn)
            .map_err(x_error)?
            .reply()
            .map_err(x_error)?;
        let root = conn.setup().roots[screen].root;
        let window = conn.generate_id().map_err(x_error)?;
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(x_error)?;
        // An empty append changes nothing but brings a PropertyNotify with the server's time.
        conn.change_property8(
            PropMode::APPEND,
            window,
            atoms.JETON_CLIP,
            AtomEnum::STRING,
            &[],
        )
        .map_err(x_error)?;
        conn.flush().map_err(x_error)?;
        let since = loop {
            match conn.wait_for_event().map_err(x_error)? {
                Event::PropertyNotify(e) if e.window == window => break e.time,
                _ => {}
            }
        };
        conn.set_selection_owner(window, atoms.CLIPBOARD, since)
            .map_err(x_error)?;
        let owner = conn
            .get_selection_owner(atoms.CLIPBOARD)
            .map_err(x_error)?
            .reply()
            .map_err(x_error)?
            .owner;
        if owner != window {
            return Err(Error::Other(
                "the X server did not give jeton the clipboard".into(),
            ));
        }
        Ok(Owner {
            conn,
            window,
            atoms,
            since,
        })
    }

    /// Answers paste requests until `deadline`, then gives the clipboard up; returns early when
    /// another program took it.
    fn serve_until(self, value: &[u8], deadline: Instant) -> Result<()> {
        loop {
            while let Some(event) = self.conn.poll_for_event().map_err(x_error)? {
                match event {
                    Event::SelectionRequest(r) => self.answer(&r, value)?,
                    Event::SelectionClear(c) if c.selection == self.atoms.CLIPBOARD => {
                        return Ok(());
                    }
                    _ => {}
                }
            }
            self.conn.flush().map_err(x_error)?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let timeout = rustix::event::Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: left.subsec_nanos().into(),
            };
            let fd = self.conn.stream().as_fd();
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(x_error(e)),
            }
        }
        // Still ours: empty the clipboard (no owner) rather than leave the value there.
        self.conn
            .set_selection_owner(x11rb::NONE, self.atoms.CLIPBOARD, x11rb::CURRENT_TIME)
            .map_err(x_error)?;
        self.conn.destroy_window(self.window).map_err(x_error)?;
        self.conn.flush().map_err(x_error)?;
        Ok(())
    }

    /// Answers one paste request (ICCCM §2.2): the value as text, the list of targets, the
    /// time the clipboard was taken, or the hint; anything else is refused.
    fn answer(&self, r: &SelectionRequestEvent, value: &[u8]) -> Result<()> {
        let a = &self.atoms;
        // An obsolete client names no property: the target is the property (ICCCM §2.2).
        let property = if r.property == x11rb::NONE {
            r.target
        } else {
            r.property
        };
        let text = [
            a.UTF8_STRING,
            a.TEXT_PLAIN_UTF8,
            a.TEXT_PLAIN,
            a.TEXT,
            AtomEnum::STRING.into(),
        ];
        let served = if r.selection != a.CLIPBOARD {
            false
        } else if r.target == a.TARGETS {
            let mut targets = vec![a.TARGETS, a.TIMESTAMP, a.PASSWORD_HINT];
            targets.extend(text);
            self.conn
                .change_property32(
                    PropMode::REPLACE,
                    r.requestor,
                    property,
                    AtomEnum::ATOM,
                    &targets,
                )
                .map_err(x_error)?;
            true
        } else if r.target == a.TIMESTAMP {
            self.conn
                .change_property32(
                    PropMode::REPLACE,
                    r.requestor,
                    property,
                    a.INTEGER,
                    &[self.since],
                )
                .map_err(x_error)?;
            true
        } else if r.target == a.PASSWORD_HINT || text.contains(&r.target) {
            let (kind, bytes) = match r.target {
                t if t == a.PASSWORD_HINT => (t, HINT_VALUE),
                t if t == a.TEXT => (a.UTF8_STRING, value),
                t => (t, value),
            };
            self.conn
                .change_property8(PropMode::REPLACE, r.requestor, property, kind, bytes)
                .map_err(x_error)?;
            true
        } else {
            false
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: r.time,
            requestor: r.requestor,
            selection: r.selection,
            target: r.target,
            property: if served { property } else { x11rb::NONE },
        };
        self.conn
            .send_event(false, r.requestor, EventMask::NO_EVENT, notify)
            .map_err(x_error)?;
        Ok(())
    }
}
