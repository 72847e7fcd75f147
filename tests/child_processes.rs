//! No process jeton starts inherits a way to open the vault: not the command `exec` runs, not
//! the shell of `JETON_PASSPHRASE_COMMAND`, not the agent. Each passphrase source is tried.

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use agent_support::*;
use std::process::Command;
use support::*;

/// What the child reports: its environment, then where each of its descriptors leads.
const REPORT: &str = "env; for f in /proc/$$/fd/*; do echo \"fd $f -> $(readlink $f)\"; done";

fn pass_file(t: &TestVault) -> String {
    let p = t.home().join("passfile");
    std::fs::write(&p, format!("{PASS}\n")).unwrap();
    p.to_str().unwrap().to_owned()
}

/// The credential variables that are not the source in use, set anyway: none may pass either.
fn with_other_credentials(t: &TestVault, mut c: Command) -> Command {
    let other = t.home().join("other");
    std::fs::write(&other, "not a secret").unwrap();
    c.env("JETON_NEW_PASSPHRASE_FILE", &other)
        .env("JETON_RECOVERY_KEY_FILE", &other);
    c
}

fn assert_clean(report: &str, what: &str) {
    assert!(report.contains("PATH="), "{what}: no report: {report}");
    for line in report.lines() {
        assert!(
            !line.starts_with("JETON_") && !line.contains("passfile") && !line.contains(PASS),
            "{what}: the child inherited '{line}'"
        );
    }
}

#[test]
fn exec_hands_the_child_no_passphrase_variable_or_descriptor() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let file = pass_file(&t);
    let exec = ["exec", "--", "sh", "-c", REPORT];
    let jeton = env!("CARGO_BIN_EXE_jeton");

    let run = |what: &str, c: Command, args: &[&str], stdin: &str| {
        let out = t.run_with(with_other_credentials(&t, c), args, stdin);
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&report, what);
        report
    };

    run("JETON_PASSPHRASE", t.cmd(), &exec, "");
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE")
        .env("JETON_PASSPHRASE_FILE", &file);
    run("JETON_PASSPHRASE_FILE", c, &exec, "");
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE")
        .env("JETON_PASSPHRASE_COMMAND", format!("cat '{file}'"));
    run("JETON_PASSPHRASE_COMMAND", c, &exec, "");

    // --passphrase-fd 3, a descriptor opened by the shell that starts jeton.
    let mut c = t.cmd_for("sh");
    c.env_remove("JETON_PASSPHRASE");
    let script = format!("exec \"$0\" --passphrase-fd 3 exec -- sh -c '{REPORT}' 3<\"$1\"");
    run("--passphrase-fd 3", c, &["-c", &script, jeton, &file], "");

    // --passphrase-fd 0: the passphrase is standard input, so the child gets /dev/null.
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE");
    let args = [&["--passphrase-fd", "0"][..], &exec].concat();
    let report = run("--passphrase-fd 0", c, &args, &format!("{PASS}\n"));
    assert!(
        report.contains("/fd/0 -> /dev/null"),
        "--passphrase-fd 0: {report}"
    );
}

#[test]
fn the_passphrase_command_runs_without_credential_variables() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let file = pass_file(&t);
    let seen = t.home().join("seen");
    let mut c = t.cmd();
    c.env(
        "JETON_PASSPHRASE_COMMAND",
        format!("{{ {REPORT}; }} > '{}'; cat '{file}'", seen.display()),
    );
    let out = t.run_with(with_other_credentials(&t, c), &["get", "a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));
    assert_clean(
        &std::fs::read_to_string(&seen).unwrap(),
        "JETON_PASSPHRASE_COMMAND",
    );
}

#[test]
fn the_agent_inherits_no_passphrase_variable_or_descriptor() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let file = pass_file(&t);
    let mut agent = Agent { t: &t, pid: None };
    let mut c = t.cmd_for("sh");
    c.env("JETON_PASSPHRASE_FILE", &file);
    let out = t.run_with(
        with_other_credentials(&t, c),
        &[
            "-c",
            "exec \"$0\" --passphrase-fd 3 unlock 3<\"$1\"",
            env!("CARGO_BIN_EXE_jeton"),
            &file,
        ],
        "",
    );
    agent.pid = status(&t)["pid"].as_u64().map(|p| p as u32);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = agent.pid.expect("agent pid");
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        skip(&format!(
            "a readable /proc/{pid}/environ (the agent is not dumpable)"
        ));
        return;
    };
    let mut report = String::new();
    for var in environ.split(|b| *b == 0) {
        report.push_str(&String::from_utf8_lossy(var));
        report.push('\n');
    }
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        report.push_str(&format!("fd -> {}\n", target.display()));
    }
    assert_clean(&report, "the agent");
}
