//! An agent started for one test vault (its own XDG_RUNTIME_DIR), stopped and killed on drop.
#![allow(dead_code)]

use crate::support::TestVault;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// An unlocked agent; stopped (and killed if it lingers) on drop.
pub struct Agent<'a> {
    pub t: &'a TestVault,
    pub pid: Option<u32>,
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        let _ = self.t.run(&["agent", "stop"], "");
        if let Some(pid) = self.pid {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && PathBuf::from(format!("/proc/{pid}")).exists() {
                if std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// `jeton --json agent status`.
pub fn status(t: &TestVault) -> serde_json::Value {
    serde_json::from_str(&t.ok(&["--json", "agent", "status"], "")).expect("status json")
}

/// Runs `jeton unlock FLAGS` and returns the guard of the agent it started.
pub fn unlock<'a>(t: &'a TestVault, flags: &[&str]) -> Agent<'a> {
    let mut agent = Agent { t, pid: None };
    let out = t.run(&[&["unlock"][..], flags].concat(), "");
    agent.pid = status(t)["pid"].as_u64().map(|p| p as u32);
    assert!(
        out.status.success(),
        "unlock: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent
}

/// A command with no passphrase source at all: only the agent can open the vault.
pub fn no_pass(t: &TestVault) -> Command {
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE");
    c
}

/// Runs jeton with no passphrase source.
pub fn run_no_pass(t: &TestVault, args: &[&str], stdin: &str) -> std::process::Output {
    t.run_with(no_pass(t), args, stdin)
}
