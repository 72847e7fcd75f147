//! Editing: a change that changes nothing is no change, spans say what they mean, and
//! `edit NAME` with no flag opens $EDITOR on the metadata (`--secret`: and the secret, a change
//! of which is a rotation).

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use std::os::unix::fs::PermissionsExt;
use support::*;

/// An editor: a shell script run on the file, that also keeps a copy of what it was shown.
fn editor(t: &TestVault, body: &str) -> std::process::Command {
    let script = t.home().join("editor.sh");
    let seen = t.home().join("seen");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nmkdir -p '{seen}'\ncp \"$1\" '{seen}/text'\n\
             stat -c %a \"$1\" > '{seen}/mode'\nstat -c %a \"$(dirname \"$1\")\" > '{seen}/dirmode'\n\
             printf '%s' \"$1\" > '{seen}/path'\n{body}\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = t.cmd();
    c.env("EDITOR", &script).env_remove("VISUAL");
    c
}

fn seen(t: &TestVault, what: &str) -> String {
    std::fs::read_to_string(t.home().join("seen").join(what)).unwrap()
}

/// The editor's file was 0600 in a 0700 directory under the runtime dir, and is gone now.
fn assert_private_and_gone(t: &TestVault) {
    assert_eq!(seen(t, "mode").trim(), "600");
    assert_eq!(seen(t, "dirmode").trim(), "700");
    let path = seen(t, "path");
    assert!(
        path.starts_with(&t.home().join("run").display().to_string()),
        "{path}"
    );
    assert!(
        !std::path::Path::new(&path).exists(),
        "the file was not removed"
    );
}

fn entry(t: &TestVault, name: &str) -> serde_json::Value {
    serde_json::from_str(&t.ok(&["--json", "show", name], "")).unwrap()
}

fn log_lines(t: &TestVault) -> usize {
    t.ok(&["log"], "").lines().count()
}

#[test]
fn an_edit_to_the_same_values_moves_neither_revision_nor_log_nor_file() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        "s",
        &[
            "--note",
            "hello",
            "--url",
            "https://x.example",
            "--tag",
            "ci",
        ],
    );
    t.ok(&["edit", "svc/a", "--note", "changed"], "");
    let before = entry(&t, "svc/a");
    let lines = log_lines(&t);
    let bytes = t.vault_bytes();
    for same in [
        &["--note", "changed"][..],
        &["--url", "https://x.example"],
        &["--add-tag", "ci"],
        &["--rm-scope", "absent"],
        &["--username", ""],
        &["--rotate-every", "never"],
    ] {
        let out = t.ok(&[&["edit", "svc/a"][..], same].concat(), "");
        assert!(out.contains("nothing to change"), "{same:?}: {out}");
    }
    let after = entry(&t, "svc/a");
    assert_eq!(after["revision"], before["revision"]);
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert_eq!(
        log_lines(&t),
        lines,
        "no audit line for a change that changed nothing"
    );
    assert_eq!(t.vault_bytes(), bytes, "the vault file was not rewritten");
    // A real change still counts.
    t.ok(&["edit", "svc/a", "--note", "again"], "");
    let later = entry(&t, "svc/a");
    assert_eq!(
        later["revision"].as_u64().unwrap(),
        before["revision"].as_u64().unwrap() + 1
    );
    assert_eq!(log_lines(&t), lines + 1);
}

#[test]
fn a_bare_m_is_refused_naming_both_readings() {
    let t = TestVault::new();
    let err = t.fails(&["add", "svc/a", "--rotate-every", "6m"], "s", 2);
    assert!(
        err.contains("minutes or months") && err.contains("6min") && err.contains("6mo"),
        "{err}"
    );
    assert!(!t.ok(&["list", "--status", "all"], "").contains("svc/a"));
    t.add("svc/a", "s", &[]);
    let err = t.fails(&["edit", "svc/a", "--expires", "1h30m"], "", 2);
    assert!(err.contains("minutes or months"), "{err}");
    t.fails(&["--lock-timeout", "2m", "list"], "", 2);
}

#[test]
fn units_and_long_forms_are_accepted() {
    let t = TestVault::new();
    t.add("svc/a", "s", &[]);
    for (span, shown) in [
        ("90d", "90d"),
        ("2w", "14d"),
        ("3 weeks", "21d"),
        ("36h", "36h"),
        ("2 days", "2d"),
    ] {
        t.ok(&["edit", "svc/a", "--rotate-every", span], "");
        assert_eq!(entry(&t, "svc/a")["rotate_every"], shown, "{span}");
    }
    for span in ["6mo", "6 months", "1y", "1 year"] {
        t.ok(&["edit", "svc/a", "--rotate-every", span], "");
    }
}

#[test]
fn a_rotation_period_or_expiry_under_a_day_gets_a_warning() {
    let t = TestVault::new();
    let out = t.run(&["add", "svc/a", "--rotate-every", "6min"], "s");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: a rotation period of 6 min is under a day"),
        "{err}"
    );
    assert_eq!(entry(&t, "svc/a")["rotate_every"], "6min");
    let out = t.run(&["edit", "svc/a", "--expires", "59min"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.contains("only 59 min away"),
        "{err}"
    );
    let out = t.run(&["edit", "svc/a", "--rotate-every", "2d"], "");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn edit_with_no_flag_opens_the_editor_on_the_metadata() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        CANARY,
        &[
            "--url",
            "https://old.example",
            "--tag",
            "ci",
            "--note",
            "first",
        ],
    );
    let before = entry(&t, "svc/a");
    let c = editor(
        &t,
        "sed -i -e 's|^url: .*|url: https://new.example|' -e 's|^tags: .*|tags: ci, prod|' \
         -e 's|^first$|line one|' \"$1\"\nprintf 'line two\\n' >> \"$1\"",
    );
    let out = t.run_with(c, &["edit", "svc/a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = entry(&t, "svc/a");
    assert_eq!(after["url"], "https://new.example");
    assert_eq!(after["tags"], serde_json::json!(["ci", "prod"]));
    assert_eq!(after["note"], "line one\nline two");
    assert_eq!(
        after["revision"].as_u64().unwrap(),
        before["revision"].as_u64().unwrap() + 1
    );
    // What the editor saw: the metadata, never the secret, in a private file that is gone now.
    let text = seen(&t, "text");
    assert!(
        text.contains("url: https://old.example") && !text.contains(CANARY),
        "{text}"
    );
    assert_private_and_gone(&t);
}

#[test]
fn an_editor_that_changes_nothing_changes_nothing() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        "s",
        &["--rotate-every", "90d", "--expires", "2030-01-01"],
    );
    let (lines, bytes) = (log_lines(&t), t.vault_bytes());
    let out = t.run_with(editor(&t, "true"), &["edit", "svc/a"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing changed"));
    assert_eq!((log_lines(&t), t.vault_bytes()), (lines, bytes));
}

#[test]
fn a_wrong_line_without_a_terminal_fails_and_writes_nothing() {
    let t = TestVault::new();
    t.add("svc/a", "s", &[]);
    let bytes = t.vault_bytes();
    for body in [
        "sed -i '1i colour: red' \"$1\"",
        "sed -i 's|^rotate_every:.*|rotate_every: 6m|' \"$1\"",
        "exit 3",
    ] {
        let out = t.run_with(editor(&t, body), &["edit", "svc/a"], "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(1 | 2)), "{body}: {err}");
        assert!(err.starts_with("jeton: error: "), "{err}");
        assert_eq!(t.vault_bytes(), bytes, "{body}");
    }
}

#[test]
fn the_editor_works_through_the_agent() {
    let t = TestVault::new();
    t.add("svc/a", "s", &[]);
    let _agent = agent_support::unlock(&t, &[]);
    let mut c = editor(&t, "sed -i 's|^username:.*|username: bot|' \"$1\"");
    c.env_remove("JETON_PASSPHRASE");
    let out = t.run_with(c, &["edit", "svc/a"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entry(&t, "svc/a")["username"], "bot");
}

/// On a terminal, a wrong line is shown and the editor offered again; "n" abandons.
#[test]
fn a_wrong_line_on_a_terminal_reopens_the_editor() {
    let t = TestVault::new();
    t.add("svc/a", "s", &[]);
    let count = t.home().join("count");
    // The first save is wrong; the next ones set the username.
    let body = format!(
        "n=$(cat '{c}' 2>/dev/null || echo 0); echo $((n + 1)) > '{c}'\n\
         if [ \"$n\" = 0 ]; then sed -i '1i colour: red' \"$1\"; \
         else sed -i -e '/^colour:/d' -e 's|^username:.*|username: bot|' \"$1\"; fi",
        c = count.display()
    );
    let pty = |answer: &str| {
        let mut c = editor(&t, &body);
        c.env_remove("JETON_PASSPHRASE")
            .env("JETON_PASSPHRASE_FILE", t.home().join("pass"));
        std::fs::write(t.home().join("pass"), PASS).unwrap();
        let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
        let mut py = t.cmd_for("python3");
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => py.env(k, v),
                None => py.env_remove(k),
            };
        }
        py.args([driver, "edit again [y/N] ", answer, "--"])
            .arg(env!("CARGO_BIN_EXE_jeton"))
            .args(["edit", "svc/a"]);
        let out = py.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let bytes = t.vault_bytes();
    let (code, text) = pty("n");
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("unknown field 'colour'"), "{text}");
    assert_eq!(t.vault_bytes(), bytes);
    std::fs::remove_file(&count).unwrap();
    let (code, text) = pty("y");
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "2");
    assert_eq!(entry(&t, "svc/a")["username"], "bot");
}

/// Replaces the line after the secret marker (the secret's first line) with `new`.
fn set_secret_line(new: &str) -> String {
    format!("sed -i '/^--- secret/{{n;s/.*/{new}/}}' \"$1\"")
}

#[test]
fn edit_secret_shows_the_secret_and_a_change_is_a_rotation() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        CANARY,
        &["--url", "https://old.example", "--used-by", "ci:X"],
    );
    let before = entry(&t, "svc/a");
    let lines = log_lines(&t);
    let body = format!(
        "{}\nsed -i 's|^url: .*|url: https://new.example|' \"$1\"",
        set_secret_line("new-secret-0123456789")
    );
    let out = t.run_with(editor(&t, &body), &["edit", "svc/a", "--secret"], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("svc/a: secret rotated; 1 previous kept"),
        "{stdout}"
    );
    assert!(
        stdout.contains("still holding the old secret; update them: ci:X"),
        "{stdout}"
    );
    assert!(stdout.contains("changed url"), "{stdout}");
    assert_eq!(t.ok(&["get", "-n", "svc/a"], ""), "new-secret-0123456789");
    let after = entry(&t, "svc/a");
    assert_eq!(after["url"], "https://new.example");
    assert_eq!(after["history_count"], 1);
    assert!(after["last_rotated_at"].is_string(), "{after}");
    // One revision and one audit line for the rotation, one each for the metadata.
    assert_eq!(
        after["revision"].as_u64().unwrap(),
        before["revision"].as_u64().unwrap() + 2
    );
    let log = t.ok(&["log", "svc/a"], "");
    assert_eq!(log_lines(&t), lines + 2, "{log}");
    assert!(log.contains("rotate"), "{log}");
    assert!(
        !log.contains(CANARY) && !log.contains("new-secret"),
        "{log}"
    );
    let history = t.ok(&["history", "svc/a", "--reveal"], "");
    assert!(history.contains(CANARY), "{history}");
    // The editor saw the secret, in a private file that is gone now.
    let text = seen(&t, "text");
    assert!(
        text.contains(&format!("--- secret (every line below, up to the note; a change is a rotation) ---\n{CANARY}\n--- note")),
        "{text}"
    );
    assert_private_and_gone(&t);
}

#[test]
fn edit_secret_left_alone_changes_nothing() {
    let t = TestVault::new();
    // A secret of several lines comes back as it went.
    t.add("svc/a", &format!("{CANARY}\nsecond line"), &["--note", "n"]);
    let (lines, bytes) = (log_lines(&t), t.vault_bytes());
    for body in ["true", "sed -i 's|^url:.*|url:|' \"$1\""] {
        let out = t.run_with(editor(&t, body), &["edit", "svc/a", "--secret"], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("nothing changed") || said.contains("nothing to change"),
            "{body}: {said}"
        );
        assert_eq!(
            (log_lines(&t), t.vault_bytes()),
            (lines, bytes.clone()),
            "{body}"
        );
    }
    // Only the metadata changed: no rotation.
    let body = "sed -i 's|^username:.*|username: bot|' \"$1\"";
    let out = t.run_with(editor(&t, body), &["edit", "svc/a", "--secret"], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("rotated"),
        "{stdout}"
    );
    assert_eq!(entry(&t, "svc/a")["history_count"], 0);
    assert_eq!(
        t.ok(&["get", "-n", "svc/a"], ""),
        format!("{CANARY}\nsecond line")
    );
}

#[test]
fn edit_secret_refuses_what_it_cannot_do() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let bytes = t.vault_bytes();
    // An emptied secret, or its marker line removed: exit 2, nothing written.
    for body in [
        "sed -i '/^--- secret/{n;d}' \"$1\"".to_owned(),
        "sed -i '/^--- secret/d' \"$1\"".to_owned(),
    ] {
        let out = t.run_with(editor(&t, &body), &["edit", "svc/a", "--secret"], "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert_eq!(t.vault_bytes(), bytes, "{body}");
    }
    t.fails(
        &["edit", "svc/a", "--secret", "--url", "https://x.example"],
        "",
        2,
    );
    t.ok(&["revoke", "svc/a", "--yes"], "");
    let out = t.run_with(editor(&t, "true"), &["edit", "svc/a", "--secret"], "");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn edit_secret_works_through_the_agent() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let _agent = agent_support::unlock(&t, &[]);
    let mut c = editor(&t, &set_secret_line("via-agent-0123456789"));
    c.env_remove("JETON_PASSPHRASE");
    let out = t.run_with(c, &["edit", "svc/a", "--secret"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.ok(&["get", "-n", "svc/a"], ""), "via-agent-0123456789");
    assert_eq!(entry(&t, "svc/a")["history_count"], 1);
}

/// An editor that, while its form is open, has another command change the entry through the
/// agent (the url), then changes the tags in the form.
fn concurrent_editor(t: &TestVault) -> std::process::Command {
    let count = t.home().join("count");
    let body = format!(
        "n=$(cat '{c}' 2>/dev/null || echo 0); echo $((n + 1)) > '{c}'\n\
         if [ \"$n\" = 0 ]; then\n\
         \x20 '{exe}' edit svc/a --url https://concurrent.example --add-tag elsewhere\n\
         \x20 sed -i 's|^tags: .*|tags: ci, prod|' \"$1\"\n\
         fi",
        c = count.display(),
        exe = env!("CARGO_BIN_EXE_jeton"),
    );
    let mut c = editor(t, &body);
    c.env_remove("JETON_PASSPHRASE");
    c
}

#[test]
fn a_change_made_while_the_editor_was_open_is_never_undone() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        "s",
        &["--url", "https://old.example", "--tag", "ci"],
    );
    let _agent = agent_support::unlock(&t, &[]);
    let bytes = t.vault_bytes();
    // Without a terminal: refused (exit 7), the other change kept, the form's not applied.
    let out = t.run_with(concurrent_editor(&t), &["edit", "svc/a"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("'svc/a' changed while the editor was open")
            && err.contains("nothing was changed")
            && err.contains("run `jeton edit svc/a` again"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let after = entry(&t, "svc/a");
    assert_eq!(after["url"], "https://concurrent.example");
    assert_eq!(after["tags"], serde_json::json!(["ci", "elsewhere"]));
    assert_ne!(t.vault_bytes(), bytes);
}

/// On a terminal the form opens again on the new values, with the user's change carried over;
/// saving it applies that change and keeps the other.
#[test]
fn on_a_terminal_the_form_reopens_on_the_new_values_with_the_changes_kept() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        "s",
        &["--url", "https://old.example", "--tag", "ci"],
    );
    let _agent = agent_support::unlock(&t, &[]);
    let c = concurrent_editor(&t);
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let mut py = t.cmd_for("python3");
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    py.args([driver, "--"])
        .arg(env!("CARGO_BIN_EXE_jeton"))
        .args(["edit", "svc/a"]);
    let out = py.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("changed while the editor was open"), "{text}");
    assert_eq!(
        std::fs::read_to_string(t.home().join("count"))
            .unwrap()
            .trim(),
        "2"
    );
    // The second form: the new url, and the tags as the user and the other command left them.
    let form = seen(&t, "text");
    assert!(
        form.contains("url: https://concurrent.example\n")
            && form.contains("tags: ci, elsewhere, prod\n"),
        "{form}"
    );
    let after = entry(&t, "svc/a");
    assert_eq!(after["url"], "https://concurrent.example");
    assert_eq!(
        after["tags"],
        serde_json::json!(["ci", "elsewhere", "prod"])
    );
    assert_private_and_gone(&t);
}
