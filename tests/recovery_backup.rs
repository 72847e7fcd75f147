//! Recovery key and backups through the real binary: a recovery key opens a vault whose
//! passphrase is lost; `recovery new` retires the old key; a backup restores every entry.

mod hardening;
mod support;
use std::os::unix::fs::PermissionsExt;
use support::*;

/// `init --json`, returning the recovery key it showed.
fn init_with_key(t: &TestVault) -> String {
    let out = t.ok(&[&["--json", "init"][..], &CHEAP_KDF].concat(), "");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let key = v["recovery_key"].as_str().expect("recovery key").to_owned();
    let groups: Vec<&str> = key.split('-').collect();
    assert_eq!(groups.len(), 8, "{key}");
    assert!(
        groups.iter().all(|g| g.len() == 4
            && g.bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))),
        "{key}"
    );
    key
}

fn write(t: &TestVault, name: &str, text: &str) -> String {
    let p = t.home().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// A well-formed recovery key other than `key` (its first letter changed).
fn another_key(key: &str) -> String {
    let first = if key.starts_with('A') { "B" } else { "A" };
    format!("{first}{}", &key[1..])
}

/// `recover` with `key` and a new passphrase; returns the process output.
fn recover(t: &TestVault, key: &str, new: &str) -> std::process::Output {
    let kf = write(t, "rk.txt", key);
    let nf = write(t, "new.txt", new);
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE")
        .env("JETON_RECOVERY_KEY_FILE", kf)
        .env("JETON_NEW_PASSPHRASE_FILE", nf);
    t.run_with(c, &["recover"], "")
}

fn get_with(t: &TestVault, pass: &str, name: &str) -> std::process::Output {
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", pass);
    t.run_with(c, &["get", name], "")
}

#[test]
fn the_recovery_key_opens_a_vault_whose_passphrase_is_lost() {
    let t = TestVault::empty();
    let key = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    // Typed back in lower case with spaces: still the same key.
    let typed = key.to_lowercase().replace('-', " ");
    let out = recover(&t, &typed, "a brand new passphrase for this vault");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get_with(&t, PASS, "svc/a").status.code(), Some(3));
    let out = get_with(&t, "a brand new passphrase for this vault", "svc/a");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));
    // The same recovery key keeps working after a recovery.
    let out = recover(&t, &key, "yet another long passphrase here");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = t.run_with(
        {
            let mut c = t.cmd();
            c.env("JETON_PASSPHRASE", "yet another long passphrase here");
            c
        },
        &["log"],
        "",
    );
    assert!(String::from_utf8_lossy(&log.stdout).contains("recover"));
    // A wrong or malformed key: exit 3, vault untouched.
    let before = t.vault_bytes();
    let out = recover(&t, &another_key(&key), "whatever passphrase x");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        recover(&t, "not a key", "whatever passphrase x")
            .status
            .code(),
        Some(3)
    );
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn recovery_new_retires_the_old_key_and_passwd_drops_it() {
    let t = TestVault::empty();
    let old = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    let out = t.ok(&["--json", "recovery", "new"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new = v["recovery_key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        recover(&t, &old, "new passphrase one two three")
            .status
            .code(),
        Some(3)
    );
    let out = recover(&t, &new, "new passphrase one two three");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The key never appears in the vault file.
    let bytes = t.vault_bytes();
    assert!(!bytes.windows(new.len()).any(|w| w == new.as_bytes()));
    // passwd makes a new vault key: the recovery slot goes, with a warning, and check says so.
    let nf = write(&t, "p2.txt", PASS);
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "new passphrase one two three")
        .env("JETON_NEW_PASSPHRASE_FILE", nf);
    let out = t.run_with(c, &["passwd"], "");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("recovery new"));
    assert_eq!(
        recover(&t, &new, "x y z passphrase long").status.code(),
        Some(3)
    );
    let out = t.run(&["--json", "check"], "");
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no_recovery_key"));
    assert!(
        t.ok(&["recovery", "status"], "")
            .contains("no recovery key")
    );
    t.ok(&["recovery", "new"], "");
    assert!(
        t.ok(&["recovery", "status"], "")
            .contains("opens this vault")
    );
}

#[test]
fn passwd_given_the_recovery_key_keeps_it_working() {
    let t = TestVault::empty();
    let key = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    let second = "the second passphrase of this vault";
    let nf = write(&t, "p2.txt", second);
    let passwd = |stdin: &str| {
        let mut c = t.cmd();
        c.env("JETON_NEW_PASSPHRASE_FILE", &nf);
        t.run_with(c, &["passwd", "--recovery-key-fd", "0"], stdin)
    };
    // A key that does not open the vault: exit 3, nothing written.
    let before = t.vault_bytes();
    let out = passwd(&another_key(&key));
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not open"));
    assert_eq!(t.vault_bytes(), before);
    // The right key: the passphrase changes and the recovery key still opens the vault.
    let out = passwd(&key);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    assert_eq!(get_with(&t, PASS, "svc/a").status.code(), Some(3));
    let out = get_with(&t, second, "svc/a");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{CANARY}\n"));
    let out = recover(&t, &key, "a third passphrase set by recovery");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_without_a_recovery_key_is_reported_by_check() {
    let t = TestVault::empty();
    let out = t.ok(
        &[&["init", "--no-recovery-key"][..], &CHEAP_KDF].concat(),
        "",
    );
    assert!(!out.contains("Recovery key"));
    let out = t.run(&["check"], "");
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stdout).contains("recovery"));
    assert_eq!(
        recover(&t, &"A".repeat(32), "some new passphrase")
            .status
            .code(),
        Some(3)
    );
}

#[test]
fn backup_destroy_restore_gives_back_every_entry() {
    let t = TestVault::new();
    let entries = [
        ("svc/a", CANARY),
        ("svc/b", "second secret"),
        ("other", "line one\nline two"),
    ];
    for (n, s) in entries {
        t.add(n, s, &["--tag", "x"]);
    }
    t.ok(&["rotate", "svc/b"], "rotated secret");
    let generation = {
        let out = t.ok(
            &[
                "--json",
                "backup",
                "verify",
                &t.vault_path().to_string_lossy(),
            ],
            "",
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["generation"].as_u64().unwrap()
    };
    let before: Vec<String> = ["svc/a", "svc/b", "other"]
        .iter()
        .map(|n| t.ok(&["--json", "show", n, "--reveal"], ""))
        .collect();
    let file = t.home().join("backup.jeton");
    let f = file.to_string_lossy().into_owned();
    t.ok(&["backup", "-o", &f], "");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read(&file).unwrap(), t.vault_bytes());
    // Refuses to replace a file unless told to.
    t.fails(&["backup", "-o", &f], "", 9);
    t.ok(&["backup", "-o", &f, "--force"], "");
    // verify opens it, reports, and writes nothing.
    let copy = std::fs::read(&file).unwrap();
    let out = t.ok(&["--json", "backup", "verify", &f], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["generation"].as_u64(), Some(generation));
    assert_eq!(v["entries"].as_u64(), Some(3));
    assert_eq!(v["kind"], "vault file");
    assert_eq!(v["recovery_key"], true);
    assert!(v["last_change"].as_str().unwrap().ends_with('Z'));
    assert_eq!(std::fs::read(&file).unwrap(), copy);
    let text = t.ok(&["backup", "verify", &f], "");
    assert!(text.contains("3 entries"), "{text}");
    // Wrong passphrase: 3. A damaged copy: 6.
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "wrong");
    assert_eq!(
        t.run_with(c, &["backup", "verify", &f], "").status.code(),
        Some(3)
    );
    let mut bad = copy.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let badf = write(&t, "bad.jeton", "");
    std::fs::write(&badf, &bad).unwrap();
    t.fails(&["backup", "verify", &badf], "", 6);
    // Destroy the vault and its .bak, restore from the backup.
    std::fs::remove_file(t.vault_path()).unwrap();
    let _ = std::fs::remove_file(t.vault_path().with_extension("jeton.bak"));
    t.fails(&["get", "svc/a"], "", 4);
    std::fs::copy(&file, t.vault_path()).unwrap();
    let after: Vec<String> = ["svc/a", "svc/b", "other"]
        .iter()
        .map(|n| t.ok(&["--json", "show", n, "--reveal"], ""))
        .collect();
    assert_eq!(before, after);
    assert_eq!(t.ok(&["get", "svc/b"], ""), "rotated secret\n");
    // And writes work on the restored copy (same generation: no rollback).
    t.add("new/one", "x1", &[]);
}

#[test]
fn backup_refuses_bad_targets() {
    let t = TestVault::new();
    let v = t.vault_path().to_string_lossy().into_owned();
    t.fails(&["backup", "-o", &v, "--force"], "", 2);
    t.fails(&["backup"], "", 2);
    t.fails(&["backup", "-o", "/nonexistent-dir/x.jeton"], "", 1);
    let nf = t.home().join("notavault");
    std::fs::write(&nf, "hello").unwrap();
    t.fails(&["backup", "verify", &nf.to_string_lossy()], "", 2);
    t.fails(&["backup", "verify", "/nonexistent-file"], "", 4);
    t.fails(&["backup", "-o", "x.age", "--to", "nobody"], "", 4);
    t.fails(&["backup", "-o", "x.age", "--age", "age1notakey"], "", 2);
}

#[test]
fn age_export_decrypts_with_the_age_cli() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &["--url", "https://svc.example"]);
    let key = t.home().join("escrow.key");
    let out = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen is installed by .ci/run");
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let file = t.home().join("export.age");
    let f = file.to_string_lossy().into_owned();
    t.ok(&["backup", "-o", &f, "--age", &recipient], "");
    let bytes = std::fs::read(&file).unwrap();
    assert!(!bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(&file)
        .output()
        .expect("age");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format"], "jeton-backup-export");
    assert_eq!(doc["payload"]["entries"]["svc/a"]["secret"], CANARY);
    assert_eq!(
        doc["payload"]["entries"]["svc/a"]["url"],
        "https://svc.example"
    );
    let k = key.to_string_lossy().into_owned();
    let out = t.ok(&["--json", "backup", "verify", &f, "--identity", &k], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entries"].as_u64(), Some(1));
    assert_eq!(v["kind"], "age export");
    t.fails(&["backup", "verify", &f], "", 2);
}

#[test]
fn backup_verify_says_whether_a_recovery_key_opens_the_copy() {
    let t = TestVault::new();
    let f = t.home().join("with-key.jeton");
    let with_key = f.to_string_lossy().into_owned();
    t.ok(&["backup", "-o", &with_key], "");
    let text = t.ok(&["backup", "verify", &with_key], "");
    assert!(text.contains("a recovery key opens it"), "{text}");

    let u = TestVault::empty();
    u.ok(
        &[&["init", "--no-recovery-key"][..], &CHEAP_KDF].concat(),
        "",
    );
    let f = u.home().join("without-key.jeton");
    let without = f.to_string_lossy().into_owned();
    u.ok(&["backup", "-o", &without], "");
    let text = u.ok(&["backup", "verify", &without], "");
    assert!(text.contains("no recovery key opens it"), "{text}");
    let v: serde_json::Value =
        serde_json::from_str(&u.ok(&["--json", "backup", "verify", &without], "")).unwrap();
    assert_eq!(v["recovery_key"], false);
}

#[test]
fn a_backup_killed_mid_write_is_the_old_file_or_the_new() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let file = t.home().join("backup.jeton");
    let f = file.to_str().unwrap();
    let vault = t.vault_bytes();
    hardening::kill_during_write(
        &t,
        &["backup", "-o", f, "--force"],
        "",
        &file,
        b"old backup",
        |b| b == vault.as_slice(),
    );
}
