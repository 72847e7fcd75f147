//! A passphrase typed at the terminal: asked again when wrong (three tries in all, the last
//! error naming `jeton recover`), then the offer to keep the vault unlocked in the agent, as
//! `[unlock] agent` in the config file says. Sources other than the terminal change nothing.

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use agent_support::{run_no_pass, status};
use support::*;

const PROMPT: &str = "jeton passphrase: ";
const OFFER: &str = "keep the vault unlocked in the agent";

fn config(t: &TestVault, text: &str) {
    let dir = t.home().join(".config/jeton");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

fn agent_holds_it(t: &TestVault) -> bool {
    status(t)["unlocked"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

/// An agent started by jeton itself, stopped when the test ends.
fn agent_guard(t: &TestVault) -> agent_support::Agent<'_> {
    agent_support::Agent {
        t,
        pid: status(t)["pid"].as_u64().map(|p| p as u32),
    }
}

fn vault_with_entry() -> TestVault {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    t
}

#[test]
fn a_wrong_passphrase_is_asked_again_three_times_in_all() {
    let t = vault_with_entry();
    config(&t, "[unlock]\nagent = \"never\"\n");
    let (code, text) = on_tty(
        &t,
        &[(PROMPT, "wrong one"), (PROMPT, "wrong two"), (PROMPT, PASS)],
        &["get", "svc/a"],
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(CANARY), "{text}");
    assert_eq!(text.matches("try again").count(), 2, "{text}");
    assert!(
        !text.contains("wrong one") && !text.contains(PASS),
        "echoed: {text}"
    );
    // Three wrong: exit 3 (SPEC), and the way out is named.
    let (code, text) = on_tty(
        &t,
        &[(PROMPT, "wrong one"), (PROMPT, ""), (PROMPT, "wrong three")],
        &["get", "svc/a"],
        false,
    );
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("3 tries") && text.contains("`jeton recover`"),
        "{text}"
    );
    assert!(!text.contains(CANARY), "{text}");
    // `jeton unlock` asks again too (the agent checks the passphrase).
    let (code, text) = on_tty(&t, &[(PROMPT, "wrong"), (PROMPT, PASS)], &["unlock"], false);
    let _agent = agent_guard(&t);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("try again"), "{text}");
    assert!(agent_holds_it(&t));
}

#[test]
fn ask_offers_to_keep_the_vault_unlocked_and_no_is_the_default() {
    let t = vault_with_entry();
    // No config file: ask. Enter (no answer) is no.
    let (code, text) = on_tty(
        &t,
        &[(PROMPT, PASS), ("[y/N] ", "")],
        &["get", "svc/a"],
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(OFFER), "{text}");
    assert!(!agent_holds_it(&t));
    config(&t, "# mine\n[unlock]\nagent = \"ask\"\n");
    let (code, text) = on_tty(
        &t,
        &[(PROMPT, PASS), ("[y/N] ", "y")],
        &["get", "svc/a"],
        false,
    );
    let _agent = agent_guard(&t);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("unlocked"), "{text}");
    assert!(agent_holds_it(&t));
    // Then no prompt at all, and no terminal needed.
    let out = run_no_pass(&t, &["get", "-n", "svc/a"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), CANARY);
}

#[test]
fn always_unlocks_without_asking_and_never_does_not_offer() {
    let t = vault_with_entry();
    config(&t, "[unlock]\nagent = \"never\"\n");
    // The driver kills a command that asks what it is not told to answer.
    let (code, text) = on_tty(&t, &[(PROMPT, PASS)], &["get", "svc/a"], false);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(OFFER), "{text}");
    assert!(!agent_holds_it(&t));
    config(&t, "[unlock]\nagent = \"always\"\n");
    let (code, text) = on_tty(&t, &[(PROMPT, PASS)], &["list"], false);
    let _agent = agent_guard(&t);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(OFFER), "{text}");
    assert!(agent_holds_it(&t));
    let out = run_no_pass(&t, &["get", "-n", "svc/a"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), CANARY);
}

#[test]
fn a_bad_setting_is_a_warning_and_the_command_still_succeeds() {
    let t = vault_with_entry();
    config(&t, "[unlock]\nagent = \"sometimes\"\n");
    let (code, text) = on_tty(&t, &[(PROMPT, PASS)], &["get", "svc/a"], false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("config.toml line 2:")
            && text.contains("sometimes")
            && text.contains("`ask`, `always`, `never`"),
        "{text}"
    );
    assert!(!agent_holds_it(&t));
}

#[test]
fn other_passphrase_sources_never_ask_and_never_start_the_agent() {
    let t = vault_with_entry();
    config(&t, "[unlock]\nagent = \"always\"\n");
    // JETON_PASSPHRASE (the test default), a file, and a wrong one: one try, exit 3.
    assert_eq!(t.ok(&["get", "-n", "svc/a"], ""), CANARY);
    let file = t.home().join("pass");
    std::fs::write(&file, PASS).unwrap();
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE")
        .env("JETON_PASSPHRASE_FILE", &file);
    let out = t.run_with(c, &["get", "-n", "svc/a"], "");
    assert!(out.status.success());
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "not it");
    let out = t.run_with(c, &["get", "svc/a"], "");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("try again"), "{err}");
    // Even on a terminal, a passphrase from a source is not typed: no offer.
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let out = t
        .cmd_for("python3")
        .arg(driver)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_jeton"))
        .args(["get", "svc/a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(status(&t)["running"] == false, "{}", status(&t));
}

/// A config file someone else could have written is not obeyed: one warning line, then the
/// defaults (here: the offer that `never` would have silenced).
#[test]
fn a_config_file_others_could_write_is_ignored_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let t = vault_with_entry();
    config(&t, "[unlock]\nagent = \"never\"\n");
    let file = t.home().join(".config/jeton/config.toml");
    let folder = t.home().join(".config/jeton");
    let chmod = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let obeyed = |t: &TestVault| {
        let (code, text) = on_tty(t, &[(PROMPT, PASS)], &["get", "svc/a"], false);
        assert_eq!(code, 0, "{text}");
        assert!(!text.contains(OFFER) && !text.contains("warning"), "{text}");
    };
    chmod(&file, 0o600);
    chmod(&folder, 0o700);
    obeyed(&t);
    let ignored = |t: &TestVault, why: &str| {
        let (code, text) = on_tty(
            t,
            &[(PROMPT, PASS), ("[y/N] ", "n")],
            &["get", "svc/a"],
            false,
        );
        assert_eq!(code, 0, "{why}: {text}");
        assert!(text.contains(OFFER), "{why}: {text}");
        let warnings: Vec<&str> = text.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(warnings.len(), 1, "{why}: {text}");
        assert!(
            warnings[0].contains("jeton: warning: ignoring the config file")
                && warnings[0].contains(why),
            "{why}: {text}"
        );
        assert!(!agent_holds_it(t));
    };
    for (path, mode, back) in [
        (&file, 0o620, 0o600),
        (&file, 0o602, 0o600),
        (&folder, 0o770, 0o700),
        (&folder, 0o703, 0o700),
    ] {
        chmod(path, mode);
        ignored(&t, "may be written to by group or others");
        chmod(path, back);
    }
    // A link to a file of ours elsewhere is followed.
    let elsewhere = t.home().join("dotfiles");
    std::fs::create_dir(&elsewhere).unwrap();
    chmod(&elsewhere, 0o700);
    std::fs::rename(&file, elsewhere.join("config.toml")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("config.toml"), &file).unwrap();
    obeyed(&t);
    // ... and what it leads to is checked too.
    chmod(&elsewhere, 0o777);
    ignored(&t, "may be written to by group or others");
    chmod(&elsewhere, 0o700);
    std::fs::remove_file(&file).unwrap();
    std::fs::rename(elsewhere.join("config.toml"), &file).unwrap();
    // Owned by someone else (as root, the test can give it away).
    if std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        ignored(&t, "is owned by uid 65534");
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        std::os::unix::fs::chown(&folder, Some(65534), None).unwrap();
        ignored(&t, "is owned by uid 65534");
        std::os::unix::fs::chown(&folder, Some(0), None).unwrap();
        obeyed(&t);
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the tests as root, to give a config file to another uid"
        );
        eprintln!("not checked: a config file owned by someone else (needs root)");
    }
}
