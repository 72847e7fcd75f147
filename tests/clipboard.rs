//! `get --clip` against a real X server (Xvfb) and a real clipboard tool (xclip): the secret
//! reaches the clipboard and not stdout, is cleared after the timeout, and is left alone when
//! something else was copied meanwhile.

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
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
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
