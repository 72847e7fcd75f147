//! `check` for daily use: choosing kinds (--only, --ignore), acknowledging findings (`check ack`,
//! kept in the vault, merged by sync, applied to team vaults too), the summary of migrated
//! entries without scopes, and each kind's fix printed once.

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use serde_json::Value;
use support::*;

fn findings(t: &TestVault, args: &[&str]) -> Value {
    let out = t.run(&[&["--json", "check"][..], args].concat(), "");
    assert!(
        matches!(out.status.code(), Some(0 | 8)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// (entry, kind) of every finding.
fn pairs(t: &TestVault, args: &[&str]) -> Vec<(String, String)> {
    findings(t, args)["findings"]
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

fn kinds(t: &TestVault, args: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = pairs(t, args).into_iter().map(|(_, k)| k).collect();
    k.sort();
    k.dedup();
    k
}

fn has(list: &[(String, String)], entry: &str, kind: &str) -> bool {
    list.iter().any(|(e, k)| e == entry && k == kind)
}

#[test]
fn only_and_ignore_choose_kinds_and_a_bad_kind_lists_the_valid_ones() {
    let t = TestVault::new();
    t.add("svc/broad", "s", &["--scope", "admin"]);
    t.add("svc/bare", "s", &[]);
    let all = kinds(&t, &[]);
    for k in ["broad_scope", "no_scopes", "no_contact", "weak_kdf"] {
        assert!(all.contains(&k.to_owned()), "{all:?}");
    }
    assert_eq!(kinds(&t, &["--only", "no_scopes"]), ["no_scopes"]);
    // Repeated, or a comma list: the same.
    let both = ["broad_scope", "no_scopes"];
    assert_eq!(
        kinds(&t, &["--only", "no_scopes", "--only", "broad_scope"]),
        both
    );
    assert_eq!(kinds(&t, &["--only", "no_scopes,broad_scope"]), both);
    let rest = kinds(
        &t,
        &["--ignore", "no_scopes,weak_kdf", "--ignore", "no_contact"],
    );
    assert!(
        !rest
            .iter()
            .any(|k| ["no_scopes", "weak_kdf", "no_contact"].contains(&k.as_str()))
    );
    assert!(rest.contains(&"broad_scope".to_owned()), "{rest:?}");
    // Nothing left: exit 0.
    let out = t.run(&["check", "--only", "expired"], "");
    assert_eq!(out.status.code(), Some(0));
    let err = t.fails(&["check", "--ignore", "no_scope"], "", 2);
    assert!(
        err.contains("unknown finding kind 'no_scope'")
            && err.contains("no_scopes")
            && err.contains("broad_scope"),
        "{err}"
    );
    t.fails(&["check", "--only", "expired,bogus"], "", 2);
}

#[test]
fn an_acknowledged_finding_is_hidden_until_removed_and_survives_a_rename() {
    let t = TestVault::new();
    t.add("svc/a", "s", &["--scope", "admin", "--contact", "ops"]);
    assert!(has(&pairs(&t, &[]), "svc/a", "broad_scope"));
    let bytes = t.vault_bytes();
    let out = t.ok(&["check", "ack", "svc/a", "broad_scope"], "");
    assert!(out.contains("acknowledged"), "{out}");
    assert_ne!(t.vault_bytes(), bytes, "stored in the vault");
    let report = findings(&t, &[]);
    assert!(!has(&pairs(&t, &[]), "svc/a", "broad_scope"), "{report}");
    assert_eq!(report["acknowledged"], 1);
    // The note on stderr says how many were hidden.
    let out = t.run(&["check"], "");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 acknowledged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Internal record: not an entry anyone sees, not a checked entry.
    assert!(!t.ok(&["list", "--status", "all"], "").contains(".ack"));
    assert_eq!(report["checked"], 1);
    t.ok(&["rename", "svc/a", "svc/b"], "");
    assert!(!has(&pairs(&t, &[]), "svc/b", "broad_scope"));
    let list = t.ok(&["check", "ack", "--list"], "");
    assert!(
        list.contains("svc/b") && list.contains("broad_scope"),
        "{list}"
    );
    let json: Value =
        serde_json::from_str(&t.ok(&["--json", "check", "ack", "--list"], "")).unwrap();
    assert_eq!(json[0]["entry"], "svc/b");
    assert_eq!(json[0]["until"], Value::Null);
    // Again: nothing changes.
    let bytes = t.vault_bytes();
    assert!(
        t.ok(&["check", "ack", "svc/b", "broad_scope"], "")
            .contains("nothing changed")
    );
    assert_eq!(t.vault_bytes(), bytes);
    t.ok(&["check", "ack", "svc/b", "broad_scope", "--remove"], "");
    assert!(has(&pairs(&t, &[]), "svc/b", "broad_scope"));
    assert!(
        t.ok(&["check", "ack", "--list"], "")
            .contains("no acknowledged")
    );
    // The log records both.
    let log = t.ok(&["log", "svc/b"], "");
    let acks = log
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ack"))
        .count();
    assert_eq!(acks, 2, "{log}");
}

#[test]
fn ack_refuses_bad_input() {
    let t = TestVault::new();
    t.add("svc/a", "s", &[]);
    t.fails(&["check", "ack", "svc/missing", "no_scopes"], "", 4);
    let err = t.fails(&["check", "ack", "svc/a", "nope"], "", 2);
    assert!(err.contains("no_scopes"), "{err}");
    // A finding about the vault is not acknowledged per entry.
    let err = t.fails(&["check", "ack", "svc/a", "weak_kdf"], "", 2);
    assert!(err.contains("--ignore weak_kdf"), "{err}");
    t.fails(
        &["check", "ack", "svc/a", "no_scopes", "--until", "-1d"],
        "",
        2,
    );
    t.fails(
        &["check", "ack", "svc/a", "no_scopes", "--until", "soon"],
        "",
        2,
    );
    t.fails(&["check", "ack", "svc/a"], "", 2);
    t.fails(&["check", "ack", "svc/a", "no_scopes", "--list"], "", 2);
    // A reserved name cannot be taken by an entry.
    t.fails(&["add", ".ack/0123456789abcdef0123456789abcdef"], "s", 2);
    // Plain `check` and its flags still work with the subcommand there.
    let out = t.run(&["check", "--within", "1d"], "");
    assert_eq!(out.status.code(), Some(8));
}

#[test]
fn an_acknowledgement_with_a_date_ends() {
    let t = TestVault::new();
    t.add("svc/a", "s", &["--contact", "ops"]);
    t.ok(&["check", "ack", "svc/a", "no_scopes", "--until", "2s"], "");
    // A date far ahead holds: the finding is hidden now.
    t.ok(
        &[
            "check",
            "ack",
            "svc/a",
            "no_scopes",
            "--until",
            "2099-01-01",
        ],
        "",
    );
    assert!(!has(&pairs(&t, &[]), "svc/a", "no_scopes"));
    let list = t.ok(&["check", "ack", "--list"], "");
    assert!(list.contains("2099-01-01T00:00:00Z"), "{list}");
    // Set to end in two seconds, then past it: reported again, and listed as over.
    t.ok(&["check", "ack", "svc/a", "no_scopes", "--until", "2s"], "");
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert!(has(&pairs(&t, &[]), "svc/a", "no_scopes"));
    let json: Value =
        serde_json::from_str(&t.ok(&["--json", "check", "ack", "--list"], "")).unwrap();
    assert_eq!(json[0]["expired"], true, "{json}");
}

#[test]
fn rm_drops_the_acknowledgements_and_a_new_entry_of_that_name_is_reported() {
    let t = TestVault::new();
    t.add("svc/a", "s", &["--contact", "ops"]);
    t.ok(&["check", "ack", "svc/a", "no_scopes"], "");
    t.ok(&["rm", "--yes", "svc/a"], "");
    assert!(
        t.ok(&["check", "ack", "--list"], "")
            .contains("no acknowledged")
    );
    t.add("svc/a", "s", &["--contact", "ops"]);
    assert!(has(&pairs(&t, &[]), "svc/a", "no_scopes"));
}

fn migrated_vault() -> TestVault {
    let t = TestVault::new();
    t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    let env = t.home().join("old.env");
    std::fs::write(&env, "ONE=1\nTWO=2\nTHREE=3\n").unwrap();
    t.ok(&["migrate", "dotenv", env.to_str().unwrap()], "");
    t.add("own/bare", "s", &[]);
    t.add("own/also-bare", "s", &[]);
    t
}

#[test]
fn migrated_entries_without_scopes_are_summed_up_unless_verbose() {
    let t = migrated_vault();
    let out = t.run(&["check", "--only", "no_scopes"], "");
    assert_eq!(out.status.code(), Some(8));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 migrated entries have no scopes"), "{text}");
    for name in ["ONE", "TWO", "THREE"] {
        assert!(!text.contains(&format!("{name}: ")), "{text}");
    }
    // Entries made here are still named one by one.
    assert!(text.contains("own/bare: no_scopes: "), "{text}");
    assert!(text.contains("own/also-bare: no_scopes: "), "{text}");
    // The fix, once for the kind, names no entry.
    assert_eq!(text.matches("fix:").count(), 1, "{text}");
    assert!(text.contains("`jeton edit NAME --add-scope S`"), "{text}");
    // -v names each migrated entry.
    let out = t.run(&["check", "-v", "--only", "no_scopes"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["ONE", "TWO", "THREE", "own/bare"] {
        assert!(text.contains(&format!("{name}: no_scopes: ")), "{text}");
    }
    assert!(!text.contains("migrated entries"), "{text}");
    assert_eq!(text.matches("fix:").count(), 1, "{text}");
    // JSON keeps one object per finding, marked.
    let f = findings(&t, &["--only", "no_scopes"]);
    let list = f["findings"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert_eq!(
        list.iter().filter(|f| f["migrated"] == true).count(),
        3,
        "{f}"
    );
}

#[test]
fn a_single_finding_keeps_its_own_fix() {
    let t = TestVault::new();
    t.add("svc/a", "s", &["--scope", "read"]);
    let out = t.run(&["check", "--only", "no_contact"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("svc/a: no_contact: "), "{text}");
    assert!(
        text.contains("  fix: `jeton edit svc/a --contact"),
        "{text}"
    );
}

/// A folder remote (`sync init --dir`) shared by two devices.
fn folder() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("jeton-folder")
        .tempdir()
        .expect("tempdir")
}

#[test]
fn acknowledgements_made_on_two_devices_are_merged_by_sync() {
    let remote = folder();
    let dir = remote.path().display().to_string();
    let a = TestVault::new();
    a.add("svc/a", "s", &["--scope", "admin"]);
    a.ok(&["sync", "init", "--dir", &dir], "");
    let b = TestVault::empty();
    b.ok(&["sync", "clone", "--dir", &dir], "");
    // Each device acknowledges another kind of the same entry, then both sync.
    a.ok(&["check", "ack", "svc/a", "broad_scope"], "");
    b.ok(
        &[
            "check",
            "ack",
            "svc/a",
            "no_contact",
            "--until",
            "2099-01-01",
        ],
        "",
    );
    a.ok(&["sync"], "");
    b.ok(&["sync"], "");
    a.ok(&["sync"], "");
    for t in [&a, &b] {
        let list: Value =
            serde_json::from_str(&t.ok(&["--json", "check", "ack", "--list"], "")).unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 2, "{list:?}");
        let found = pairs(t, &[]);
        assert!(!has(&found, "svc/a", "broad_scope"), "{found:?}");
        assert!(!has(&found, "svc/a", "no_contact"), "{found:?}");
        assert!(!t.ok(&["list", "--status", "all"], "").contains("dup"));
    }
    // A removal on one device reaches the other.
    b.ok(&["check", "ack", "svc/a", "broad_scope", "--remove"], "");
    b.ok(&["sync"], "");
    a.ok(&["sync"], "");
    assert!(has(&pairs(&a, &[]), "svc/a", "broad_scope"));
}

fn bare_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::Builder::new()
        .prefix("jeton-team-remote")
        .tempdir()
        .expect("tempdir");
    let out = std::process::Command::new("git")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["init", "-q", "--bare", "remote.git"])
        .output()
        .expect("git");
    assert!(out.status.success());
    let url = dir.path().join("remote.git").display().to_string();
    (dir, url)
}

#[test]
fn only_ignore_and_ack_apply_to_team_entries() {
    let (_remote, url) = bare_repo();
    let t = TestVault::new();
    t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    t.ok(&["team", "create", "ops", "--remote", &url], "");
    t.add("ops:db", "s", &["--contact", "ops"]);
    t.add("ops:wide", "s", &["--scope", "admin", "--contact", "ops"]);
    let found = pairs(&t, &["--only", "no_scopes"]);
    assert!(has(&found, "ops:db", "no_scopes"), "{found:?}");
    assert!(found.iter().all(|(_, k)| k == "no_scopes"), "{found:?}");
    let found = pairs(&t, &["--ignore", "no_scopes"]);
    assert!(!has(&found, "ops:db", "no_scopes"), "{found:?}");
    assert!(has(&found, "ops:wide", "broad_scope"), "{found:?}");
    t.ok(&["check", "ack", "ops:db", "no_scopes"], "");
    let report = findings(&t, &[]);
    let found = pairs(&t, &[]);
    assert!(!has(&found, "ops:db", "no_scopes"), "{found:?}");
    assert!(has(&found, "ops:wide", "broad_scope"), "{found:?}");
    assert_eq!(report["acknowledged"], 1, "{report}");
    // The personal vault has no such entry: the team one was acknowledged.
    t.fails(&["check", "ack", "db", "no_scopes"], "", 4);
}

/// The cron recipe: `check` with no passphrase source and no terminal, through the unlocked
/// agent, team vaults included; locked, it fails with exit 3 and says how to unlock.
#[test]
fn check_runs_through_the_unlocked_agent_with_no_passphrase_source() {
    let (_remote, url) = bare_repo();
    let t = TestVault::new();
    t.ok(&["team", "create", "ops", "--remote", &url], "");
    t.add("ops:db", "s", &["--contact", "ops"]);
    t.add("svc/a", "s", &["--contact", "ops"]);
    let out = agent_support::run_no_pass(&t, &["check"], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("jeton unlock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = agent_support::unlock(&t, &[]);
    let out = agent_support::run_no_pass(&t, &["--json", "check", "--only", "no_scopes"], "");
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["entry"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"svc/a") && names.contains(&"ops:db"),
        "{report}"
    );
    // Acknowledging works through the agent too, and quiet output is empty when all is well.
    agent_support::run_no_pass(&t, &["check", "ack", "svc/a", "no_scopes"], "");
    agent_support::run_no_pass(&t, &["check", "ack", "ops:db", "no_scopes"], "");
    let out = agent_support::run_no_pass(&t, &["-q", "check", "--only", "no_scopes"], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    drop(agent);
}
