//! Editing: a change that changes nothing is no change, and spans say what they mean.

mod support;
use support::*;

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
