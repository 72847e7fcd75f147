//! Terminal and line injection: text from a bundle, another tool's export or a vault written
//! before the input rule must never reach a terminal raw (no escape sequence, no carriage
//! return, no newline that forges a row), whichever command prints it.

mod support;
use std::path::Path;
use std::process::Output;
use support::*;

/// `tests/data/v1-hostile-metadata.jeton` (see tests/data/README.md): written by a jeton that
/// accepted control characters in metadata; it holds `web/hostile`, the revoked `svc/gone` and
/// `-dash`.
const HOSTILE_PASS: &str = "jeton hostile metadata vector";

/// What a terminal must never receive raw: control characters but the newline, and the
/// bidirectional override.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || c == '\u{202e}')
        .collect()
}

fn assert_inert(what: &str, out: &Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let bad = raw_controls(&text);
        assert!(bad.is_empty(), "{what}: raw {bad:?} on {stream}:\n{text}");
    }
}

/// A HOME holding a copy of the hostile vector as its vault.
fn hostile_vault() -> TestVault {
    let t = TestVault::empty();
    std::fs::create_dir_all(t.vault_path().parent().unwrap()).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1-hostile-metadata.jeton"),
        t.vault_path(),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(t.vault_path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    t
}

fn run_hostile(t: &TestVault, args: &[&str]) -> Output {
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", HOSTILE_PASS);
    t.run_with(c, args, "")
}

#[test]
fn hostile_metadata_in_an_existing_vault_is_escaped_by_every_command() {
    let t = hostile_vault();
    for args in [
        &["show", "web/hostile"][..],
        &["show", "svc/gone"],
        &["list", "--status", "all"],
        &[
            "list",
            "--status",
            "all",
            "--scope",
            "read\nforged/row  active  admin",
        ],
        &["log"],
        &["log", "web/hostile"],
        &["history", "web/hostile"],
        &["check"],
        &["config"],
        &["config", "get", "contact"],
        &["--json", "show", "web/hostile"],
        &["--json", "log"],
    ] {
        let out = run_hostile(&t, args);
        assert!(
            matches!(out.status.code(), Some(0 | 8)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_inert(&format!("{args:?}"), &out);
    }
    // The scope that held a newline cannot forge a row: one line per entry, and the escaped
    // text is shown so the user sees what is there.
    let list = run_hostile(&t, &["list", "--status", "all"]);
    let text = String::from_utf8(list.stdout).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(!text.lines().any(|l| l.starts_with("forged/row")), "{text}");
    assert!(text.contains("read\\nforged/row"), "{text}");
    // A note keeps its lines, indented under its value.
    let show = run_hostile(&t, &["show", "web/hostile"]);
    let text = String::from_utf8(show.stdout).unwrap();
    assert!(
        text.contains("note      line one\n          \\u{1b}]0;note-title\\u{7}"),
        "{text}"
    );
    // An error quoting imported text is escaped too.
    let out = run_hostile(&t, &["get", "svc/gone"]);
    assert_eq!(out.status.code(), Some(5));
    assert_inert("get of a revoked entry", &out);
}

#[test]
fn existing_names_starting_with_a_dash_still_work_but_new_ones_are_refused() {
    let t = hostile_vault();
    let out = run_hostile(&t, &["get", "--", "-dash"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "dash-secret\n");
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", HOSTILE_PASS);
    let out = t.run_with(c, &["add", "--", "--help"], "x");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must not start with '-'"));
    let out = run_hostile(&t, &["rename", "--", "-dash", "-other"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_hostile(&t, &["rename", "--", "-dash", "dash"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn hostile_bundles_are_refused_with_an_escaped_message() {
    // The sender is the hostile vault: its entries were shared by an authorised contact.
    let mallory = hostile_vault();
    let bob = TestVault::new();
    let mallory_card = {
        let out = run_hostile(&mallory, &["-q", "identity"]);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let bob_card = bob.ok(&["-q", "identity"], "").trim().to_owned();
    assert!(
        run_hostile(&mallory, &["contact", "add", "bob", &bob_card])
            .status
            .success()
    );
    bob.ok(&["contact", "add", "mallory", &mallory_card], "");

    let file = mallory.home().join("hostile.age");
    let f = file.to_str().unwrap();
    let out = run_hostile(&mallory, &["share", "web/hostile", "--to", "bob", "-o", f]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = bob.vault_bytes();
    for args in [&["import", f][..], &["import", "--dry-run", f]] {
        let out = bob.run(args, "");
        assert_eq!(out.status.code(), Some(6));
        assert_inert("import of a hostile bundle", &out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("entry 'web/hostile' holds control characters in its scopes"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(bob.vault_bytes(), before, "nothing imported");

    // A name starting with '-' cannot be created here, only under a prefix.
    let dash = mallory.home().join("dash.age");
    let d = dash.to_str().unwrap();
    // (Its default contact held an escape sequence too, and shared entries carry it.)
    let out = run_hostile(&mallory, &["share", "--to", "bob", "-o", d, "--", "-dash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        bob.fails(&["import", "--prefix", "mallory", d], "", 6)
            .contains("in its contact")
    );
    let clean = ["config", "set", "contact", "Mallory <m@example.com>"];
    assert!(run_hostile(&mallory, &clean).status.success());
    let out = run_hostile(
        &mallory,
        &["--yes", "share", "--to", "bob", "-o", d, "--", "-dash"],
    );
    assert_eq!(out.status.code(), Some(0));
    let err = bob.fails(&["import", d], "", 2);
    assert!(err.contains("--prefix"), "{err}");
    let out = bob.ok(&["import", "--prefix", "mallory", d], "");
    assert!(out.contains("added mallory/-dash"), "{out}");
    assert_eq!(bob.ok(&["get", "mallory/-dash"], ""), "dash-secret\n");
}

#[test]
fn migrate_writes_control_characters_out_visibly_and_reports_them() {
    let t = TestVault::new();
    let json = serde_json::json!({
        "encrypted": false,
        "folders": [{"id": "f1", "name": "Evil\u{1b}[2J/Dir"}],
        "items": [
            {"id": "i1\u{1b}]0;id\u{7}", "folderId": "f1", "type": 1,
             "name": "Tok\u{1b}]0;title\u{7}\nforged/row  active  admin",
             "notes": "line one\r\nline two\u{1b}[31m\u{9b}2J",
             "fields": [{"name": "team", "value": "\u{1b}[5minfra", "type": 0}],
             "login": {"uris": [{"uri": "https://x.example/\u{1b}]0;t\u{7}"}],
                       "username": "\u{1b}[2Jroot\u{202e}", "password": "pw-\u{1b}-raw"}},
            {"id": "i2", "type": 2, "name": "Note\u{1b}[2J\nleft", "notes": "n",
             "secureNote": {"type": 0}},
        ]
    });
    let path = t.home().join("bw.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let dry = t.run(&["migrate", "--dry-run", "bitwarden", p], "");
    assert!(dry.status.success());
    assert_inert("migrate --dry-run", &dry);
    let out = t.run(&["migrate", "bitwarden", p], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_inert("migrate", &out);
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains("control characters written out visibly in its url, username, note"),
        "{report}"
    );
    assert!(
        report.contains("left out: Note\\u{1b}[2J\\nleft"),
        "{report}"
    );
    let list = t.ok(&["list"], "");
    assert_eq!(list.lines().count(), 2, "{list}");
    let name = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    for args in [&["show", name][..], &["list"], &["log"], &["log", name]] {
        assert_inert(&format!("{args:?}"), &t.run(args, ""));
    }
    // What is stored passes the input rule; the note keeps its lines; the secret is untouched.
    let shown: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "show", name], "")).unwrap();
    assert_eq!(shown["url"], "https://x.example/\\u{1b}]0;t\\u{7}");
    assert_eq!(shown["username"], "\\u{1b}[2Jroot\u{202e}");
    assert_eq!(
        shown["note"],
        "line one\nline two\\u{1b}[31m\\u{9b}2J\nteam: \\u{1b}[5minfra"
    );
    assert!(
        !shown["received_from"]["reference"]
            .as_str()
            .unwrap()
            .chars()
            .any(char::is_control)
    );
    assert_eq!(t.ok(&["get", "-n", name], ""), "pw-\u{1b}-raw");
}

#[test]
fn new_metadata_with_control_characters_is_refused_before_anything_is_written() {
    let t = TestVault::new();
    let before = t.vault_bytes();
    for flags in [
        &["--url", "https://x/\u{1b}]0;t\u{7}"][..],
        &["--scope", "read\nforged"],
        &["--username", "a\rb"],
        &["--tag", "\u{9b}2J"],
        &["--used-by", "ci\tX"],
        &["--contact", "Ops \u{1b}[31m"],
        &["--issuer", "\u{7f}"],
        &["--note", "ok\n\u{1b}[2J"],
    ] {
        let out = t.run(&[&["add", "x"][..], flags].concat(), "secret");
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert_inert(&format!("add {flags:?}"), &out);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("holds a control character"),
            "{flags:?}"
        );
    }
    assert_eq!(t.vault_bytes(), before);
    t.add("x", "secret", &["--note", "two\nlines\tand a tab"]);
    for flags in [
        &["--url", "\u{1b}"][..],
        &["--add-scope", "a\nb"],
        &["--note", "a\rb"],
    ] {
        t.fails(&[&["edit", "x"][..], flags].concat(), "", 2);
    }
    t.fails(&["revoke", "--yes", "x", "--reason", "leak\nforged"], "", 2);
    t.fails(&["config", "set", "contact", "\u{1b}]0;x\u{7}"], "", 2);
    let t2 = TestVault::empty();
    t2.fails(
        &[&["init", "--contact", "Ops\u{1b}[2J"][..], &CHEAP_KDF].concat(),
        "",
        2,
    );
    assert!(!t2.vault_path().exists());
}
