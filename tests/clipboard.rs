//! `get --clip` against a real X server (Xvfb) and a real clipboard tool (xclip): the secret
//! reaches the clipboard and not stdout, is cleared after the timeout, and is left alone when
//! something else was copied meanwhile. `--osc52` on a pseudo-terminal: the escape sequence with
//! the value in base64 reaches the terminal and never stdout, and an empty one clears it later
//! (what a real terminal then holds cannot be read back here).

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
    let out = Command::new("xclip")
        .args(["-selection", "clipboard", "-out"])
        .env("DISPLAY", &x.display)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
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
