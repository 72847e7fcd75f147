//! `get --clip` against a real X server (Xvfb), read back with a real clipboard tool (xclip):
//! the secret reaches the clipboard and not stdout, with the `x-kde-passwordManagerHint` target
//! that tells clipboard managers to keep no copy, is cleared after the timeout, and is left
//! alone when something else was copied meanwhile. Wayland: a stand-in wl-copy records that it
//! is asked for `--sensitive` when it has it. `--osc52` on a pseudo-terminal: the escape
//! sequence with the value in base64 reaches the terminal and never stdout, and an empty one
//! clears it later (what a real terminal then holds cannot be read back here); inside a real
//! tmux, whose paste buffer can be read back, the clear happens too.

mod support;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// A private X server; killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts Xvfb, or returns None (outside CI only) when Xvfb or xclip is missing.
fn xvfb() -> Option<Xvfb> {
    if !have("Xvfb") || !have("xclip") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install xvfb and xclip (.ci/run)"
        );
        eprintln!("skipped: Xvfb or xclip is not installed");
        return None;
    }
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "320x240x8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Xvfb");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("Xvfb display");
    Some(Xvfb {
        child,
        display: format!(":{}", line.trim()),
    })
}

fn clipboard(x: &Xvfb) -> String {
    clipboard_as(x, None)
}

/// The clipboard converted to `target` (xclip's own choice without one).
fn clipboard_as(x: &Xvfb, target: Option<&str>) -> String {
    let mut c = Command::new("xclip");
    c.args(["-selection", "clipboard", "-out"]);
    if let Some(t) = target {
        c.args(["-target", t]);
    }
    let out = c
        .env("DISPLAY", &x.display)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a `jeton clip-clear` of this test vault still runs.
fn clearer_runs(t: &TestVault) -> bool {
    let home = format!("HOME={}", t.home().display());
    std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let env = std::fs::read(p.path().join("environ")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains("clip-clear")
            && env.split(|&b| b == 0).any(|v| v == home.as_bytes())
    })
}

fn copy_elsewhere(x: &Xvfb, text: &str) {
    let mut c = Command::new("xclip")
        .args(["-selection", "clipboard", "-in"])
        .env("DISPLAY", &x.display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    c.wait().unwrap();
}

fn clip(t: &TestVault, x: &Xvfb, args: &[&str]) -> std::process::Output {
    let mut c = t.cmd();
    c.env("DISPLAY", &x.display);
    t.run_with(c, args, "")
}

fn wait_for(x: &Xvfb, want: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let now = clipboard(x);
        if now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_secret_goes_to_the_clipboard_and_is_cleared_after_the_timeout() {
    let Some(x) = xvfb() else { return };
    let t = TestVault::new();
    t.add("svc/a", CANARY, &["--username", "bot"]);
    let out = clip(&t, &x, &["get", "svc/a", "--clip", "--clear", "2s"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    assert!(err.contains("cleared in 2 s"), "{err}");
    assert_eq!(clipboard(&x), CANARY);
    assert_eq!(wait_for(&x, "", Duration::from_secs(10)), "", "not cleared");
    // A field, with -c.
    let out = clip(
        &t,
        &x,
        &["get", "svc/a", "-c", "--field", "username", "--clear", "1s"],
    );
    assert!(out.status.success());
    assert_eq!(clipboard(&x), "bot");
}

#[test]
fn a_one_time_code_goes_to_the_clipboard() {
    let Some(x) = xvfb() else { return };
    let t = TestVault::new();
    let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    t.ok(&["add", "svc/2fa", "--totp"], seed);
    let totp = jeton::otp::Totp::parse(seed).unwrap();
    let before = totp.code_at(now());
    let out = clip(&t, &x, &["otp", "svc/2fa", "--clip", "--clear", "1s"]);
    assert!(out.status.success() && out.stdout.is_empty());
    let code = clipboard(&x);
    assert!(code == before || code == totp.code_at(now()), "{code}");
}

#[test]
fn something_copied_meanwhile_is_not_cleared() {
    let Some(x) = xvfb() else { return };
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let out = clip(&t, &x, &["get", "svc/a", "--clip", "--clear", "2s"]);
    assert!(out.status.success());
    assert_eq!(clipboard(&x), CANARY);
    copy_elsewhere(&x, "something else");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(clipboard(&x), "something else");
}

#[test]
fn the_clipboard_tells_clipboard_managers_it_holds_a_secret() {
    let Some(x) = xvfb() else { return };
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let out = clip(&t, &x, &["get", "svc/a", "--clip", "--clear", "2s"]);
    assert!(out.status.success());
    let targets = clipboard_as(&x, Some("TARGETS"));
    let targets: Vec<&str> = targets.lines().collect();
    for t in [
        "x-kde-passwordManagerHint",
        "UTF8_STRING",
        "text/plain;charset=utf-8",
        "STRING",
    ] {
        assert!(targets.contains(&t), "no {t} in {targets:?}");
    }
    assert_eq!(
        clipboard_as(&x, Some("x-kde-passwordManagerHint")),
        "secret"
    );
    for t in ["UTF8_STRING", "text/plain;charset=utf-8", "STRING", "TEXT"] {
        assert_eq!(clipboard_as(&x, Some(t)), CANARY, "{t}");
    }
    assert_eq!(
        clipboard_as(&x, Some("image/png")),
        "",
        "an unknown target is refused"
    );
    // Cleared: nobody owns the clipboard any more, and the owner is gone.
    assert_eq!(wait_for(&x, "", Duration::from_secs(10)), "", "not cleared");
    assert_eq!(clipboard_as(&x, Some("TARGETS")), "");
    let deadline = Instant::now() + Duration::from_secs(5);
    while clearer_runs(&t) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!clearer_runs(&t), "the clipboard owner still runs");
}

#[test]
fn the_owner_ends_as_soon_as_something_else_is_copied() {
    let Some(x) = xvfb() else { return };
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let out = clip(&t, &x, &["get", "svc/a", "--clip", "--clear", "60s"]);
    assert!(out.status.success());
    assert!(clearer_runs(&t));
    copy_elsewhere(&x, "something else");
    let deadline = Instant::now() + Duration::from_secs(5);
    while clearer_runs(&t) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !clearer_runs(&t),
        "still running long after losing the clipboard"
    );
    assert_eq!(clipboard(&x), "something else");
}

#[test]
fn without_a_display_clip_fails_clearly() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let err = t.fails(&["get", "svc/a", "--clip"], "", 1);
    assert!(err.contains("no clipboard"), "{err}");
    t.fails(&["get", "svc/a", "--clip", "--clear", "0s"], "", 2);
    t.fails(&["get", "svc/a", "--clear", "5s"], "", 2);
}

/// `jeton ARGS` on a pseudo-terminal (tests/data/pty_osc52.py), stdout to a file: (what the
/// terminal showed, what went to stdout). The terminal is read until `until` appears after
/// jeton ended.
fn on_tty(t: &TestVault, args: &[&str], until: &str) -> (String, String) {
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_osc52.py");
    let stdout = t.home().join("stdout");
    let mut c = t.cmd_for("python3");
    c.arg(driver)
        .arg(&stdout)
        .arg(until)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_jeton"));
    let out = t.run_with(c, args, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read_to_string(&stdout).unwrap_or_default(),
    )
}

fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

#[test]
fn osc52_goes_to_the_terminal_never_to_stdout_and_is_cleared() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &["--username", "bot"]);
    let set = format!("\x1b]52;c;{}\x07", b64(CANARY));
    let clear = "\x1b]52;c;\x07";
    let (tty, stdout) = on_tty(
        &t,
        &["get", "svc/a", "--clip", "--osc52", "--clear", "1s"],
        r"\x1b]52;c;\x07",
    );
    assert!(tty.contains("EXIT:0"), "{tty:?}");
    let (during, after) = tty.split_once("EXIT:0").unwrap();
    assert!(
        during.contains(&set),
        "no OSC 52 set on the terminal: {tty:?}"
    );
    assert!(during.contains("through the terminal (OSC 52)"), "{tty:?}");
    // The clearer, a process jeton left behind, empties it once the timeout has passed.
    assert!(after.contains(clear), "not cleared: {tty:?}");
    assert!(
        !tty.contains(CANARY),
        "the raw secret reached the terminal: {tty:?}"
    );
    assert_eq!(stdout, "", "stdout");
    // A field, with -c.
    let (tty, stdout) = on_tty(
        &t,
        &[
            "get", "svc/a", "-c", "--osc52", "--field", "username", "--clear", "1s",
        ],
        r"\x1b]52;c;\x07",
    );
    assert!(
        tty.contains(&format!("\x1b]52;c;{}\x07", b64("bot"))),
        "{tty:?}"
    );
    assert_eq!(stdout, "");
}

#[test]
fn a_one_time_code_goes_through_osc52() {
    let t = TestVault::new();
    let seed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    t.ok(&["add", "svc/2fa", "--totp"], seed);
    let totp = jeton::otp::Totp::parse(seed).unwrap();
    let before = totp.code_at(now());
    let (tty, stdout) = on_tty(
        &t,
        &["otp", "svc/2fa", "-c", "--osc52", "--clear", "1s"],
        r"\x1b]52;c;\x07",
    );
    let after = totp.code_at(now());
    assert!(
        [before, after]
            .iter()
            .any(|code| tty.contains(&format!("\x1b]52;c;{}\x07", b64(code)))),
        "{tty:?}"
    );
    assert_eq!(stdout, "");
}

#[test]
fn osc52_needs_a_terminal_and_clip() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    // setsid: no controlling terminal, even when the tests run from one.
    let mut c = t.cmd_for("setsid");
    c.args(["-w", env!("CARGO_BIN_EXE_jeton")]);
    let out = t.run_with(c, &["get", "svc/a", "--clip", "--osc52"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--osc52 needs a terminal"), "{err}");
    assert!(out.stdout.is_empty());
    t.fails(&["get", "svc/a", "--osc52"], "", 2);
}

/// Seconds since the epoch, for one-time codes.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A stand-in wl-copy and wl-paste in `dir` keeping the clipboard in a file, and a log of how
/// wl-copy was called; `sensitive`: whether its help offers `--sensitive` (wl-clipboard 2.3).
fn fake_wayland(dir: &std::path::Path, sensitive: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let help = if sensitive {
        "      --sensitive\t\tHint that the content is sensitive."
    } else {
        "  -t, --type mime/type\tOverride the inferred MIME type."
    };
    let copy = format!(
        "#!/bin/sh\nd=$(dirname \"$0\")\nif [ \"$1\" = --help ]; then echo 'Usage: wl-copy'; echo '{help}'; exit 0; fi\n\
         echo \"$*\" >> \"$d/calls\"\n\
         if [ \"$1\" = --clear ]; then : > \"$d/board\"; else cat > \"$d/board\"; fi\n"
    );
    let paste = "#!/bin/sh\ncat \"$(dirname \"$0\")/board\"\n";
    for (name, text) in [("wl-copy", copy.as_str()), ("wl-paste", paste)] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn wayland_asks_wl_copy_for_the_sensitive_hint_where_it_has_it() {
    for sensitive in [true, false] {
        let t = TestVault::new();
        t.add("svc/a", CANARY, &[]);
        let dir = t.home().join("wl");
        fake_wayland(&dir, sensitive);
        let mut c = t.cmd();
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        c.env("PATH", &path).env("WAYLAND_DISPLAY", "wayland-test");
        let out = t.run_with(c, &["get", "svc/a", "--clip", "--clear", "1s"], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read_to_string(dir.join("board")).unwrap(), CANARY);
        let calls = std::fs::read_to_string(dir.join("calls")).unwrap();
        assert_eq!(
            calls.lines().next(),
            Some(if sensitive { "--sensitive" } else { "" })
        );
        // The clearer empties it once the timeout has passed (it still held the value).
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && !std::fs::read_to_string(dir.join("calls"))
                .unwrap()
                .contains("--clear")
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(std::fs::read_to_string(dir.join("board")).unwrap(), "");
    }
}

/// A tmux server of its own (its socket in the test's HOME), killed on drop.
struct Tmux<'a> {
    t: &'a TestVault,
    socket: std::path::PathBuf,
}

impl Tmux<'_> {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = self.t.cmd_for("tmux");
        c.env("TERM", "xterm")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// The newest paste buffer: what tmux made of the last OSC 52 set.
    fn buffer(&self) -> String {
        String::from_utf8_lossy(&self.run(&["show-buffer"]).stdout).into_owned()
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn osc52_inside_tmux_is_cleared_although_tmux_ignores_an_empty_set() {
    if !have("tmux") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install tmux (.ci/run)"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let tmux = Tmux {
        t: &t,
        socket: t.home().join("tmux.sock"),
    };
    assert!(
        tmux.run(&["new-session", "-d", "sleep 120"])
            .status
            .success()
    );
    tmux.run(&["set-option", "-g", "set-clipboard", "on"]);
    let jeton = env!("CARGO_BIN_EXE_jeton");
    let command = format!("{jeton} get svc/a --clip --osc52 --clear 2s; sleep 60");
    assert!(tmux.run(&["new-window", "-d", &command]).status.success());
    let wait = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = tmux.buffer();
            if now == want || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(wait(CANARY), CANARY, "the copy did not reach tmux");
    // Cleared with one space: what tmux keeps after the timeout is no longer the secret.
    assert_eq!(wait(" "), " ", "tmux still holds the secret");
}

#[test]
fn add_generate_and_generate_can_copy_to_the_clipboard() {
    let Some(x) = xvfb() else { return };
    let t = TestVault::new();
    let out = clip(
        &t,
        &x,
        &["add", "svc/new", "--generate", "--clip", "--clear", "5s"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("copied svc/new"), "{err}");
    let stored = t.ok(&["get", "-n", "svc/new"], "");
    assert_eq!(stored.len(), 32);
    assert_eq!(clipboard(&x), stored);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&stored));
    let out = clip(
        &t,
        &x,
        &["generate", "--length", "20", "-c", "--clear", "1s"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty(), "the secret went to stdout too");
    assert!(err.contains("copied the generated secret"), "{err}");
    let made = clipboard(&x);
    assert!(
        made.len() == 20 && made.chars().all(|c| c.is_ascii_alphanumeric()),
        "{made:?}"
    );
    assert_eq!(wait_for(&x, "", Duration::from_secs(10)), "", "not cleared");
}

#[test]
fn add_clip_needs_generate_and_a_clipboard_before_anything_is_added() {
    let t = TestVault::new();
    let before = t.vault_bytes();
    let err = t.fails(&["add", "svc/a", "--clip"], "typed", 2);
    assert!(err.contains("--generate"), "{err}");
    // No display: refused before the entry is added with a secret nobody saw.
    let err = t.fails(&["add", "svc/a", "--generate", "--clip"], "", 1);
    assert!(err.contains("no clipboard"), "{err}");
    assert_eq!(t.vault_bytes(), before);
    t.fails(&["get", "svc/a"], "", 4);
    t.fails(&["generate", "--clip"], "", 1);
    t.fails(&["generate", "--clear", "5s"], "", 2);
}
