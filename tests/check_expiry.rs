//! `check`, `list` and `--expires` as a new user meets them: one line for a vault without a
//! default contact, no scopes asked of one-time code seeds and passwords, a warning for an
//! expiry already past, expired and due entries marked by `list`, a rotation at the issuer left
//! half-done reported with the command that finishes it, and a rotation without a recipe that
//! claims nothing it did not do.

mod support;
use serde_json::Value;
use support::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `jeton --json check ARGS`: the (entry, kind) of every finding.
fn findings(t: &TestVault, args: &[&str]) -> Vec<(String, String)> {
    let out = t.run(&[&["--json", "check"][..], args].concat(), "");
    assert!(matches!(out.status.code(), Some(0 | 8)), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["entry"].as_str().unwrap_or("").to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn of_kind(t: &TestVault, kind: &str) -> Vec<String> {
    findings(t, &["--only", kind])
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

#[test]
fn no_contact_on_a_vault_without_a_default_is_one_line_with_the_fix() {
    let t = TestVault::new();
    let names = ["svc/a", "svc/b", "svc/c", "svc/d", "svc/e"];
    for n in names {
        t.add(n, "s", &["--scope", "read"]);
    }
    let out = t.run(&["check", "--only", "no_contact"], "");
    assert_eq!(out.status.code(), Some(8));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        "5 entries: no_contact: no technical contact, and the vault has no default contact: \
         svc/a, svc/b, svc/c and 2 more (`jeton check -v` names each)"
    );
    assert!(
        lines[1].starts_with("  fix: give the vault a default contact")
            && lines[1].contains("`jeton config set contact 'Name <mail>'`"),
        "{text}"
    );
    // -v and --json still give one finding per entry.
    let verbose = stdout(&t.run(&["check", "--only", "no_contact", "-v"], ""));
    for n in names {
        assert!(verbose.contains(&format!("{n}: no_contact: ")), "{verbose}");
    }
    assert_eq!(of_kind(&t, "no_contact"), names);
    // An entry with its own contact is not counted; with a default, nothing is reported.
    t.ok(&["edit", "svc/a", "--contact", "Dev <dev@example.com>"], "");
    let text = stdout(&t.run(&["check", "--only", "no_contact"], ""));
    assert!(text.starts_with("4 entries: no_contact: "), "{text}");
    assert!(text.contains("svc/b, svc/c, svc/d and 1 more"), "{text}");
    t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    assert!(of_kind(&t, "no_contact").is_empty());
}

#[test]
fn one_time_code_seeds_and_passwords_are_not_asked_for_scopes() {
    let t = TestVault::new();
    let seed = "JBSWY3DPEHPK3PXP";
    // A seed kept by `add --totp`, one added as a plain otpauth URI, and a bare seed in
    // NAME/otp (as migrations put it).
    t.add("gh/login/totp", seed, &["--totp"]);
    t.add(
        "mail/2fa",
        &format!("otpauth://totp/mail?secret={seed}"),
        &[],
    );
    t.add("bank/otp", seed, &[]);
    // Passwords: tagged so, or with their one-time codes beside them.
    t.add("forum", "hunter2-but-longer", &["--tag", "password"]);
    t.add("gh/login", "correct-horse", &[]);
    t.add("bank", "pin-and-more", &[]);
    // A token: it should record what it may do.
    t.add("api/token", "tok_123", &[]);
    // A bare base32 string under another name may be any secret: still asked.
    t.add("api/other", seed, &[]);
    assert_eq!(of_kind(&t, "no_scopes"), ["api/other", "api/token"]);
}

#[test]
fn an_expiry_already_past_is_warned_on_add_edit_and_rotate() {
    let t = TestVault::new();
    let warning = "jeton: warning: the expiry 2020-01-31T00:00:00Z is already past";
    let out = t.run(&["add", "svc/a", "--expires", "2020-01-31"], "s");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    assert!(stderr(&out).contains("--expires WHEN"), "{}", stderr(&out));
    let shown: Value = serde_json::from_str(&t.ok(&["--json", "show", "svc/a"], "")).unwrap();
    assert_eq!(shown["expires_at"], "2020-01-31T00:00:00Z", "not recorded");

    let out = t.run(&["edit", "svc/a", "--expires", "-3d"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is already past (3 d ago)"),
        "{}",
        stderr(&out)
    );
    let out = t.run(&["rotate", "svc/a", "--expires", "2020-01-31"], "t");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    // A time to come, or none: no warning.
    for args in [
        &["edit", "svc/a", "--expires", "90d"][..],
        &["edit", "svc/a", "--expires", "never"],
    ] {
        let out = t.run(args, "");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    }
}

#[test]
fn list_marks_expired_and_due_entries() {
    let t = TestVault::new();
    t.add("a/expired", "1", &["--expires=-1d"]);
    t.add("b/expiring", "2", &["--expires", "3d"]);
    t.add("c/due", "3", &["--rotate-every", "7d"]);
    t.add("d/far", "4", &["--expires", "60d", "--rotate-every", "90d"]);
    t.add("e/plain", "5", &[]);
    t.add("f/off", "6", &["--expires=-1d"]);
    t.ok(&["disable", "f/off"], "");
    let text = t.ok(&["list", "--status", "all"], "");
    let row = |name: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
            .to_owned()
    };
    assert!(row("a/expired").contains(" (expired)"), "{text}");
    assert!(row("b/expiring").contains(" (expiring)"), "{text}");
    assert!(row("c/due").contains(" (due)"), "{text}");
    for quiet in ["d/far", "e/plain", "f/off"] {
        assert!(!row(quiet).contains(" ("), "{text}");
    }
    // --json: the kinds `check` would report, in a field of their own.
    let json: Value =
        serde_json::from_str(&t.ok(&["--json", "list", "--status", "all"], "")).expect("json");
    let due: Vec<(String, Value)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["due"].clone()))
        .collect();
    let want = [
        ("a/expired", serde_json::json!(["expired"])),
        ("b/expiring", serde_json::json!(["expiring"])),
        ("c/due", serde_json::json!(["rotation_due"])),
        ("d/far", serde_json::json!([])),
        ("e/plain", serde_json::json!([])),
        ("f/off", serde_json::json!([])),
    ];
    let want: Vec<(String, Value)> = want
        .iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect();
    assert_eq!(due, want);
    // The look-ahead follows --due.
    let text = t.ok(&["list", "--due", "90d"], "");
    assert!(
        text.contains(" (expiring)") && text.contains("d/far"),
        "{text}"
    );
    assert!(
        text.lines()
            .find(|l| l.starts_with("d/far"))
            .unwrap()
            .contains("(expiring)"),
        "{text}"
    );
}

#[test]
fn check_reports_a_rotation_at_the_issuer_left_half_done_and_the_command_that_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let t = TestVault::new();
    t.add("svc/tok", CANARY, &["--scope", "read"]);
    t.ok(
        &[
            "issuer",
            "set",
            "svc/tok",
            "command",
            "--create",
            "read -r cur; echo new-token-5e1f",
            "--verify",
            &format!("[ -f {d}/works ]"),
        ],
        "",
    );
    let err = t.fails(&["rotate", "svc/tok", "--at-issuer"], "", 1);
    assert!(err.contains("stopped at step 2/4"), "{err}");
    let out = t.run(&["check", "--only", "rotation_unfinished"], "");
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "svc/tok: rotation_unfinished: a rotation at the issuer stopped at step 2/4 (verify the \
         new credential): two credentials are live, the old one and the new\n  fix: finish it: \
         `jeton rotate svc/tok --resume`\n"
    );
    std::fs::write(dir.path().join("works"), "").unwrap();
    t.ok(&["rotate", "svc/tok", "--resume"], "");
    assert!(of_kind(&t, "rotation_unfinished").is_empty());
}

#[test]
fn a_rotation_without_a_recipe_claims_nothing_at_the_issuer_and_has_no_empty_verify_step() {
    let t = TestVault::new();
    t.add(
        "gh/pat",
        CANARY,
        &["--url", "https://github.com/settings/tokens"],
    );
    let plan = t.ok(&["rotate", "gh/pat", "--at-issuer", "--dry-run"], "");
    assert_eq!(
        plan,
        "plan for gh/pat (recipe manual):\n  1. take the new token, made by hand at the issuer\n  \
         2. make the new credential current\n  3. remind you to revoke the old credential at \
         the issuer (jeton cannot)\n"
    );
    let out = t.run(&["rotate", "gh/pat", "--at-issuer"], "ghp_new-token\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let (said, err) = (stdout(&out), stderr(&out));
    assert!(!said.contains("at its issuer;"), "{said}");
    assert_eq!(
        said,
        "rotated gh/pat with the token you made; jeton did not revoke the old one: revoke it at \
         its issuer\n"
    );
    assert!(!err.contains("verify"), "{err}");
    assert!(
        err.contains("warning: revoke the old token of 'gh/pat' at its issuer"),
        "{err}"
    );
    let log = t.ok(&["log", "gh/pat"], "");
    assert!(!log.contains("revoked at the issuer"), "{log}");
    assert!(log.contains("left for the user to revoke"), "{log}");

    // A command recipe without --verify or --revoke: no verify step, no claim of a revocation.
    t.ok(
        &[
            "issuer",
            "set",
            "gh/pat",
            "command",
            "--create",
            "read -r cur; echo ghp_newer-token",
        ],
        "",
    );
    let plan = t.ok(&["rotate", "gh/pat", "--at-issuer", "--dry-run"], "");
    assert!(!plan.contains("verify"), "{plan}");
    let said = t.ok(&["rotate", "gh/pat", "--at-issuer"], "");
    assert_eq!(
        said,
        "rotated gh/pat at its issuer; jeton did not revoke the old credential: revoke it there\n"
    );
}
