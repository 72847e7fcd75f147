//! The lifecycle commands through the real binary: rotate, history, rollback, disable, enable,
//! revoke, check, log and config, with their exit codes. Where a state cannot be reached through
//! the CLI without waiting (a rotation overdue, an entry shared with a contact), the test edits the
//! decrypted payload through the library and writes the vault back.

mod support;
use jeton::format::VaultFile;
use jeton::secret::Passphrase;
use jeton::vault::{Payload, Vault};
use serde_json::Value;
use support::*;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
}

fn open(bytes: &[u8]) -> Vault {
    let file = VaultFile::parse(bytes).expect("parse vault");
    let key = Vault::unlock(&file, &Passphrase::new(PASS.into())).expect("unlock");
    Vault::open(&file, key).expect("open")
}

/// The decrypted payload of a vault file, encoded.
fn plaintext(bytes: &[u8]) -> Vec<u8> {
    open(bytes).payload.encode().expect("encode").to_vec()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn backup(t: &TestVault) -> Vec<u8> {
    std::fs::read(t.vault_path().with_file_name("vault.jeton.bak")).expect("read backup")
}

/// Changes the decrypted payload and writes the vault back (a newer generation).
fn edit_payload(t: &TestVault, f: impl FnOnce(&mut Payload)) {
    let mut v = open(&t.vault_bytes());
    f(&mut v.payload);
    v.touch();
    let generation = v.generation();
    std::fs::write(t.vault_path(), v.seal(generation).expect("seal")).expect("write vault");
}

fn share_record(contact: &str, at: i64) -> jeton::entry::ShareRecord {
    jeton::entry::ShareRecord {
        contact: contact.into(),
        bundle_id: "00".repeat(16),
        at,
    }
}

#[test]
fn rotate_twice_then_rollback_to_the_first_value() {
    let t = TestVault::new();
    t.add(
        "gh/ci",
        "value-one",
        &[
            "--used-by",
            "ci:github-actions:DEPLOY_TOKEN",
            "--expires",
            "30d",
        ],
    );
    let out = t.ok(&["rotate", "gh/ci"], "value-two\n");
    assert!(out.contains("ci:github-actions:DEPLOY_TOKEN"), "{out}");
    assert!(out.contains("expiry is still"), "{out}");
    t.ok(
        &["rotate", "gh/ci", "--expires", "2030-01-31"],
        "value-three",
    );
    assert_eq!(t.ok(&["get", "gh/ci"], ""), "value-three\n");

    let h = json(&t.ok(&["--json", "history", "gh/ci"], ""));
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert!(versions.iter().all(|v| v.get("secret").is_none()), "{h}");
    let masked = t.ok(&["history", "gh/ci"], "");
    assert!(!masked.contains("value-"), "{masked}");
    let h = json(&t.ok(&["--json", "history", "--reveal", "gh/ci"], ""));
    let secrets: Vec<&str> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["secret"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, ["value-three", "value-two", "value-one"]);

    t.ok(&["rollback", "gh/ci", "2"], "");
    assert_eq!(t.ok(&["get", "gh/ci"], ""), "value-one\n");
    // Nothing is lost: the replaced secret went to history.
    let h = json(&t.ok(&["--json", "history", "--reveal", "gh/ci"], ""));
    let secrets: Vec<&str> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["secret"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, ["value-one", "value-three", "value-two"]);
    // Without a version, rollback restores the previous secret.
    t.ok(&["rollback", "gh/ci"], "");
    assert_eq!(t.ok(&["get", "gh/ci"], ""), "value-three\n");

    let show = json(&t.ok(&["--json", "show", "gh/ci"], ""));
    assert_eq!(show["expires_at"], "2030-01-31T00:00:00Z");
}

#[test]
fn rotate_and_rollback_refusals() {
    let t = TestVault::new();
    t.add("a", "same", &[]);
    let before = t.vault_bytes();
    t.fails(&["rotate", "a"], "same", 2);
    t.fails(&["rotate", "a"], "", 2);
    t.fails(&["rotate", "missing"], "x", 4);
    t.fails(&["rotate", "bad name"], "x", 2);
    t.fails(&["rotate", "a", "--expires", "whenever"], "x", 2);
    t.fails(&["rollback", "a"], "", 4);
    t.fails(&["rollback", "missing"], "", 4);
    t.fails(&["history", "missing"], "", 4);
    assert_eq!(before, t.vault_bytes(), "a failed command wrote the vault");
    t.ok(&["rotate", "a"], "other");
    t.fails(&["rollback", "a", "2"], "", 4);
    t.fails(&["rollback", "a", "0"], "", 4);
    t.fails(&["rollback", "a", "x"], "", 2);
    // --generate draws a new secret inside the vault.
    t.ok(&["rotate", "a", "--generate", "--length", "24"], "");
    assert_eq!(t.ok(&["get", "-n", "a"], "").len(), 24);
    // A disabled entry can be rotated and stays disabled.
    t.ok(&["disable", "a"], "");
    let out = t.ok(&["rotate", "a"], "while-disabled");
    assert!(out.contains("still disabled"), "{out}");
    t.fails(&["get", "a"], "", 5);
}

#[test]
fn history_limit_wipes_the_oldest_versions() {
    let t = TestVault::new();
    t.ok(&["config", "set", "history_limit", "2"], "");
    t.add("a", "version-0", &[]);
    for i in 1..=4 {
        t.ok(&["rotate", "a"], &format!("version-{i}"));
    }
    let h = json(&t.ok(&["--json", "history", "--reveal", "a"], ""));
    let secrets: Vec<&str> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["secret"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, ["version-4", "version-3", "version-2"]);
    for bytes in [t.vault_bytes(), backup(&t)] {
        let plain = plaintext(&bytes);
        assert!(!contains(&plain, "version-0") && !contains(&plain, "version-1"));
    }
    // Lowering the limit wipes at once.
    let out = t.ok(&["config", "set", "history-limit", "0"], "");
    assert!(out.contains("2 old secrets wiped"), "{out}");
    assert_eq!(
        json(&t.ok(&["--json", "history", "a"], ""))["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!contains(&plaintext(&backup(&t)), "version-3"));
    t.fails(&["config", "set", "history_limit", "1001"], "", 2);
    t.fails(&["config", "set", "history_limit", "ten"], "", 2);
    assert_eq!(t.ok(&["config", "get", "history_limit"], ""), "0\n");
    t.ok(&["config", "unset", "history_limit"], "");
    assert_eq!(t.ok(&["config", "get", "history_limit"], ""), "10\n");
}

#[test]
fn disable_and_enable() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    t.ok(&["disable", "a"], "");
    let err = t.fails(&["get", "a"], "", 5);
    assert!(err.contains("disabled since 20"), "{err}");
    t.fails(&["get", "a", "--field", "url"], "", 5);
    // show and list still see it.
    assert!(t.ok(&["show", "a"], "").contains("disabled since"));
    assert!(t.ok(&["list", "--status", "disabled"], "").contains('a'));
    let before = t.vault_bytes();
    assert!(t.ok(&["disable", "a"], "").contains("already"));
    assert_eq!(before, t.vault_bytes(), "a no-op wrote the vault");
    t.ok(&["enable", "a"], "");
    assert_eq!(t.ok(&["get", "-n", "a"], ""), CANARY);
    t.fails(&["disable", "missing"], "", 4);
    t.fails(&["enable", "no//name"], "", 2);
}

#[test]
fn revoke_wipes_secret_and_history_from_vault_and_backup() {
    let t = TestVault::new();
    let values = [
        "REVOKED-old-1-9f8e7d",
        "REVOKED-old-2-6c5b4a",
        "REVOKED-current-3f2e1d",
    ];
    t.add(
        "svc/leaked",
        values[0],
        &["--used-by", "ci:gitlab:API_TOKEN", "--scope", "api"],
    );
    t.ok(&["rotate", "svc/leaked"], values[1]);
    t.ok(&["rotate", "svc/leaked"], values[2]);
    t.add("svc/other", "keep-me", &[]);
    let plain = plaintext(&t.vault_bytes());
    assert!(values.iter().all(|v| contains(&plain, v)), "setup");

    // No terminal and no --yes: refused, nothing written.
    let before = t.vault_bytes();
    t.fails(&["revoke", "svc/leaked"], "", 2);
    assert_eq!(before, t.vault_bytes());

    let out = t.ok(
        &[
            "revoke",
            "--yes",
            "svc/leaked",
            "--reason",
            "leaked in a CI log",
        ],
        "",
    );
    assert!(
        out.contains("ci:gitlab:API_TOKEN"),
        "holders not printed: {out}"
    );
    assert!(out.contains("wiped 3 secrets"), "{out}");

    // Nothing of the old values remains: not in the decrypted vault, not in the decrypted backup,
    // not in the raw files.
    for bytes in [t.vault_bytes(), backup(&t)] {
        let plain = plaintext(&bytes);
        for v in values {
            assert!(!contains(&plain, v), "{v} survived in a decrypted payload");
            assert!(!contains(&bytes, v), "{v} in a raw file");
        }
        assert!(contains(&plain, "keep-me"));
    }
    let v = open(&t.vault_bytes());
    let e = v.payload.entries.get("svc/leaked").unwrap().unwrap();
    assert!(e.secret.is_none() && e.history.is_empty());
    assert!(matches!(
        &e.status,
        jeton::entry::Status::Revoked { reason: Some(r), .. } if r == "leaked in a CI log"
    ));

    // The next ordinary save keeps it that way.
    t.ok(&["edit", "svc/other", "--note", "n"], "");
    for bytes in [t.vault_bytes(), backup(&t)] {
        let plain = plaintext(&bytes);
        assert!(values.iter().all(|v| !contains(&plain, v)));
    }

    let err = t.fails(&["get", "svc/leaked"], "", 5);
    assert!(err.contains("revoked"), "{err}");
    t.fails(&["rotate", "svc/leaked"], "new", 5);
    t.fails(&["rollback", "svc/leaked"], "", 5);
    t.fails(&["enable", "svc/leaked"], "", 5);
    t.fails(&["disable", "svc/leaked"], "", 5);
    t.fails(&["add", "svc/leaked"], "new", 9);
    let show = t.ok(&["show", "svc/leaked"], "");
    assert!(
        show.contains("revoked at") && show.contains("leaked in a CI log"),
        "{show}"
    );
    let h = json(&t.ok(&["--json", "history", "--reveal", "svc/leaked"], ""));
    assert_eq!(h["versions"], serde_json::json!([]));
    assert!(
        t.ok(&["revoke", "--yes", "svc/leaked"], "")
            .contains("already revoked")
    );
    // The tombstone goes with rm; then the name is free again.
    t.ok(&["rm", "--yes", "svc/leaked"], "");
    t.add("svc/leaked", "fresh", &[]);
}

#[test]
fn rotate_and_revoke_name_the_contacts_holding_copies() {
    let t = TestVault::new();
    t.add(
        "shared/tok",
        "one",
        &["--scope", "read", "--contact", "Ops"],
    );
    edit_payload(&t, |p| {
        p.entries
            .get_mut("shared/tok")
            .unwrap()
            .unwrap()
            .shared_with
            .push(share_record("bob", 1_700_000_000));
    });
    let out = t.ok(&["rotate", "shared/tok"], "two");
    assert!(out.contains("bob"), "{out}");
    let j = json(&t.ok(&["--json", "rotate", "shared/tok"], "three"));
    assert_eq!(j["holders"]["shared_with"][0]["contact"], "bob");

    t.ok(&["revoke", "--yes", "shared/tok"], "");
    let c = json(&t.run_json_check(&[]));
    assert!(has(&c, Some("shared/tok"), "revoked_still_held"), "{c}");
    // A record dated after the revocation (a revocation notice) settles it.
    edit_payload(&t, |p| {
        p.entries
            .get_mut("shared/tok")
            .unwrap()
            .unwrap()
            .shared_with
            .push(share_record("bob", 4_000_000_000));
    });
    let c = json(&t.run_json_check(&[]));
    assert!(!has(&c, Some("shared/tok"), "revoked_still_held"), "{c}");
}

trait CheckExt {
    fn run_json_check(&self, args: &[&str]) -> String;
}

impl CheckExt for TestVault {
    /// `jeton --json check ARGS`, asserting exit 8 or 0 to match the findings.
    fn run_json_check(&self, args: &[&str]) -> String {
        let out = self.run(&[&["--json", "check"][..], args].concat(), "");
        let text = String::from_utf8(out.stdout).unwrap();
        let v = json(&text);
        let expected = if v["findings"].as_array().unwrap().is_empty() {
            0
        } else {
            8
        };
        assert_eq!(out.status.code(), Some(expected), "{text}");
        assert_eq!(v["ok"], expected == 0);
        text
    }
}

fn has(check: &Value, entry: Option<&str>, kind: &str) -> bool {
    check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["entry"].as_str() == entry && f["kind"] == kind)
}

/// The (entry, kind) pairs of a check, without the weak-KDF finding every cheap test vault has.
fn kinds(check: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] != "weak_kdf")
        .map(|f| {
            (
                f["entry"].as_str().unwrap_or("-").to_owned(),
                f["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

#[test]
fn check_reports_each_finding_kind() {
    let t = TestVault::new();
    let c = json(&t.run_json_check(&[]));
    assert!(has(&c, None, "weak_kdf"), "{c}");
    assert_eq!(kinds(&c), pairs(&[]));

    t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    let ok = ["--scope", "read"];
    t.add("expired", "1", &[&ok[..], &["--expires=-1d"]].concat());
    t.add("expiring", "2", &[&ok[..], &["--expires", "3d"]].concat());
    t.add("far", "3", &[&ok[..], &["--expires", "60d"]].concat());
    t.add("due", "4", &[&ok[..], &["--rotate-every", "7d"]].concat());
    t.add(
        "overdue",
        "5",
        &[&ok[..], &["--rotate-every", "30d"]].concat(),
    );
    t.add("noscope", "6", &[]);
    t.add("broad", "7", &["--scope", "read", "--scope", "admin:org"]);
    t.add("star", "8", &["--scope", "write:*"]);
    t.add(
        "fine",
        "9",
        &[&ok[..], &["--contact", "Dev <dev@example.com>"]].concat(),
    );
    t.add("off", "10", &[&ok[..], &["--expires=-1d"]].concat());
    t.ok(&["disable", "off"], "");
    edit_payload(&t, |p| {
        let e = p.entries.get_mut("overdue").unwrap().unwrap();
        e.secret_set_at -= 40 * 86_400;
    });
    let c = json(&t.run_json_check(&[]));
    assert_eq!(
        kinds(&c),
        pairs(&[
            ("expired", "expired"),
            ("expiring", "expiring"),
            ("due", "rotation_due"),
            ("overdue", "rotation_overdue"),
            ("noscope", "no_scopes"),
            ("broad", "broad_scope"),
            ("star", "broad_scope"),
        ]),
        "{c}"
    );
    for f in c["findings"].as_array().unwrap() {
        assert!(
            !f["reason"].as_str().unwrap().is_empty() && !f["fix"].as_str().unwrap().is_empty()
        );
    }
    // --within narrows the look-ahead.
    let c = json(&t.run_json_check(&["--within", "1d"]));
    assert!(!has(&c, Some("expiring"), "expiring") && !has(&c, Some("due"), "rotation_due"));
    let c = json(&t.run_json_check(&["--within", "90d"]));
    assert!(has(&c, Some("far"), "expiring"));
    t.fails(&["check", "--within", "soon"], "", 2);

    // Without any contact, every entry lacking its own is reported.
    t.ok(&["config", "unset", "contact"], "");
    let c = json(&t.run_json_check(&[]));
    assert!(has(&c, Some("expired"), "no_contact") && !has(&c, Some("fine"), "no_contact"));

    // Human output: one line per finding, then the kind's fix, exit 8.
    let out = t.run(&["check"], "");
    assert_eq!(out.status.code(), Some(8));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines
            .windows(2)
            .any(|w| w[0].starts_with("expired: expired: ")
                && w[1].starts_with("  fix: ")
                && w[1].contains("jeton rotate expired")),
        "{text}"
    );
    // Expired tokens are listed as due and still printed by get, with a warning.
    assert!(t.ok(&["list", "--due", "1d"], "").contains("expired"));
    let out = t.run(&["get", "expired"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired at"));
}

#[test]
fn check_reports_loose_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestVault::new();
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    assert_eq!(kinds(&json(&t.run_json_check(&[]))), pairs(&[]));
    set(&t.vault_path(), 0o644);
    assert_eq!(
        kinds(&json(&t.run_json_check(&[]))),
        pairs(&[("-", "loose_permissions")])
    );
    set(&t.vault_path(), 0o600);
    set(t.vault_path().parent().unwrap(), 0o777);
    assert_eq!(
        kinds(&json(&t.run_json_check(&[]))),
        pairs(&[("-", "loose_permissions")])
    );
    set(t.vault_path().parent().unwrap(), 0o700);
}

#[test]
fn check_prints_the_permission_fix_once() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestVault::new();
    let set = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    t.add("a", "x", &["--scope", "read", "--contact", "ops"]);
    set(&t.vault_path(), 0o644);
    set(&t.vault_path().with_file_name("vault.jeton.bak"), 0o644);
    let out = t.run(&["check"], "");
    assert_eq!(out.status.code(), Some(8));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("loose_permissions"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        assert!(!l.contains("chmod") && !l.contains("fix with"), "{l}");
    }
    // Each file's fix once, on its own line after the kind's findings.
    let fixes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  fix: chmod"))
        .collect();
    assert_eq!(fixes.len(), 2, "{text}");
    for f in fixes {
        assert_eq!(f.matches("chmod").count(), 1, "the fix given twice: {f}");
    }
    let v = json(&t.run_json_check(&[]));
    for f in v["findings"].as_array().unwrap() {
        assert!(!f["reason"].as_str().unwrap().contains("chmod"), "{f}");
    }
}

#[test]
fn check_is_clean_on_a_well_kept_vault() {
    let t = TestVault::empty();
    t.ok(
        &[
            "init",
            "--kdf-memory",
            "64MiB",
            "--kdf-iterations",
            "3",
            "--kdf-lanes",
            "4",
            "--contact",
            "Ops <ops@example.com>",
        ],
        "",
    );
    t.add(
        "gh/ci",
        "tok",
        &[
            "--scope",
            "repo",
            "--expires",
            "90d",
            "--rotate-every",
            "60d",
        ],
    );
    let out = t.run(&["check"], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no findings"));
    // Quiet and clean: silent, for cron.
    let out = t.run(&["-q", "check"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn log_records_every_change_in_order() {
    let t = TestVault::new();
    t.add("a", CANARY, &["--scope", "read"]);
    t.ok(&["edit", "a", "--note", "n"], "");
    t.ok(&["rotate", "a"], "CANARY-second-value");
    t.ok(&["rollback", "a"], "");
    t.ok(&["disable", "a"], "");
    t.ok(&["enable", "a"], "");
    t.ok(&["rename", "a", "b"], "");
    t.ok(&["config", "set", "contact", "Ops"], "");
    t.ok(&["revoke", "--yes", "b", "--reason", "rotated away"], "");
    t.ok(&["rm", "--yes", "b"], "");
    t.add("c", "x", &[]);
    let newpass = t.home().join("newpass");
    std::fs::write(&newpass, PASS).unwrap();
    let mut c = t.cmd();
    c.env("JETON_NEW_PASSPHRASE_FILE", &newpass);
    let out = t.run_with(c, &[&["passwd"][..], &CHEAP_KDF].concat(), "");
    assert!(out.status.success());

    let log = t.ok(&["--json", "log"], "");
    assert!(
        !log.contains(CANARY) && !log.contains("CANARY-second"),
        "{log}"
    );
    let events = json(&log);
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "init", "add", "edit", "rotate", "rollback", "disable", "enable", "rename", "config",
            "revoke", "rm", "add", "passwd"
        ]
    );
    for e in events.as_array().unwrap() {
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
    }
    // One entry's log follows its renames.
    let b: Vec<String> = json(&t.ok(&["--json", "log", "b"], ""))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        b,
        [
            "add", "edit", "rotate", "rollback", "disable", "enable", "rename", "revoke", "rm"
        ]
    );
    let text = t.ok(&["log", "c"], "");
    assert_eq!(text.lines().count(), 1);
    assert!(text.contains("add") && text.contains(" c "), "{text}");
    t.fails(&["log", "bad name"], "", 2);
    assert_eq!(t.ok(&["log", "never-existed"], ""), "");
}

#[test]
fn default_contact() {
    let t = TestVault::new();
    t.fails(&["config", "get", "contact"], "", 4);
    t.add("a", "x", &[]);
    t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    assert_eq!(
        t.ok(&["config", "get", "contact"], ""),
        "Ops <ops@example.com>\n"
    );
    assert_eq!(
        t.ok(&["get", "a", "--field", "contact"], ""),
        "Ops <ops@example.com>\n"
    );
    let cfg = json(&t.ok(&["--json", "config"], ""));
    assert_eq!(cfg["contact"], "Ops <ops@example.com>");
    assert_eq!(cfg["history_limit"], 10);
    let before = t.vault_bytes();
    assert!(
        t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "")
            .contains("nothing to change")
    );
    assert_eq!(before, t.vault_bytes());
    t.ok(&["config", "unset", "contact"], "");
    t.fails(&["config", "get", "contact"], "", 4);
    t.fails(&["config", "set", "colour", "x"], "", 2);
}

#[test]
fn read_only_lifecycle_commands_never_write() {
    let t = TestVault::new();
    t.add("a", "x", &["--scope", "read"]);
    t.ok(&["rotate", "a"], "y");
    let before = t.vault_bytes();
    let bak = backup(&t);
    t.ok(&["history", "--reveal", "a"], "");
    t.run(&["check"], "");
    t.ok(&["log"], "");
    t.ok(&["config"], "");
    t.ok(&["config", "get", "history_limit"], "");
    assert_eq!(before, t.vault_bytes());
    assert_eq!(bak, backup(&t));
    // Readers take no lock: they work while a writer holds it.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(t.vault_path().with_file_name("vault.jeton.lock"))
        .unwrap();
    lock.lock().unwrap();
    t.ok(&["history", "a"], "");
    t.fails(&["--lock-timeout", "100ms", "rotate", "a"], "z", 7);
}

#[test]
fn rotate_prompts_twice_and_revoke_asks_on_a_terminal() {
    let t = TestVault::new();
    t.add("tty/a", "old-value", &[]);
    let (code, _) = on_tty(
        &t,
        &[("secret: ", CANARY), ("(again): ", "something else")],
        &["rotate", "tty/a"],
        true,
    );
    assert_eq!(code, 2);
    assert_eq!(t.ok(&["get", "-n", "tty/a"], ""), "old-value");
    let (code, text) = on_tty(
        &t,
        &[("secret: ", CANARY), ("(again): ", CANARY)],
        &["rotate", "tty/a"],
        true,
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(CANARY), "the secret was echoed: {text}");
    assert_eq!(t.ok(&["get", "-n", "tty/a"], ""), CANARY);

    let (code, _) = on_tty(&t, &[("[y/N] ", "n")], &["revoke", "tty/a"], true);
    assert_ne!(code, 0);
    assert_eq!(t.ok(&["get", "-n", "tty/a"], ""), CANARY);
    let (code, text) = on_tty(&t, &[("[y/N] ", "y")], &["revoke", "tty/a"], true);
    assert_eq!(code, 0, "{text}");
    t.fails(&["get", "tty/a"], "", 5);
}
