//! Rollback detection (SPEC §3): jeton remembers the last generation it wrote for each vault
//! path. Restoring an older copy (which could bring back a revoked token) is reported on every
//! open, and writes are refused until the user passes `--accept-rollback`.

mod hardening;
mod support;
use hardening::*;
use support::*;

#[test]
fn a_restored_old_copy_is_reported_and_writes_are_refused() {
    let t = TestVault::new();
    t.add("svc/token", CANARY, &[]);
    let old = t.vault_bytes();
    t.ok(&["--yes", "revoke", "svc/token", "--reason", "leaked"], "");
    t.add("svc/new", "x", &[]);
    // Someone restores the old copy: the revoked token is back.
    std::fs::write(t.vault_path(), &old).unwrap();

    let out = t.run(&["get", "-n", "svc/token"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rollback") && err.contains("--accept-rollback"),
        "{err}"
    );

    let refused = t.fails(&["add", "other"], "y", 6);
    assert!(refused.contains("--accept-rollback"), "{refused}");
    assert_eq!(t.vault_bytes(), old, "a refused write changed the file");
    for args in [
        &["rotate", "svc/token"][..],
        &["--yes", "rm", "svc/token"][..],
        &["edit", "svc/token", "--note", "n"][..],
    ] {
        t.fails(args, "z", 6);
        assert_eq!(
            t.vault_bytes(),
            old,
            "{args:?} wrote over a rolled-back vault"
        );
    }

    // The user confirms: the write goes through with a generation above the remembered one,
    // and later writes need no flag.
    t.ok(&["--accept-rollback", "add", "other"], "y");
    t.add("after", "z", &[]);
    let out = t.run(&["list"], "");
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("rollback"),
        "still reported after acceptance"
    );
    assert!(entry_names(&t).is_superset(&["other".to_owned(), "after".to_owned()].into()));
}

#[test]
fn restoring_the_backup_is_a_rollback_too() {
    let t = TestVault::new();
    t.add("a", "x", &[]);
    t.add("b", "y", &[]);
    let bak = t.vault_path().with_file_name("vault.jeton.bak");
    std::fs::copy(&bak, t.vault_path()).unwrap();
    assert_eq!(entry_names(&t), ["a".to_owned()].into());
    t.fails(&["add", "c"], "z", 6);
}

#[test]
fn a_new_vault_at_the_same_path_is_not_a_rollback() {
    let t = TestVault::new();
    for i in 0..3 {
        t.add(&format!("e{i}"), "x", &[]);
    }
    std::fs::remove_file(t.vault_path()).unwrap();
    let out = t.run(&[&["init"][..], &CHEAP_KDF].concat(), "");
    assert!(out.status.success());
    // The earlier vault's backup is still there, and init says the next save replaces it.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backup of an earlier vault"), "{err}");
    let out = t.run(&["list"], "");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("rollback"));
    t.add("fresh", "x", &[]);
}

#[test]
fn a_newer_copy_written_elsewhere_is_accepted() {
    // Generations only need to go forward: a copy that another machine advanced is fine.
    let t = TestVault::new();
    t.add("a", "x", &[]);
    let other = TestVault::empty();
    std::fs::create_dir_all(other.vault_path().parent().unwrap()).unwrap();
    std::fs::copy(t.vault_path(), other.vault_path()).unwrap();
    other.add("b", "y", &[]);
    other.add("c", "z", &[]);
    std::fs::copy(other.vault_path(), t.vault_path()).unwrap();
    t.add("d", "w", &[]);
    assert_eq!(entry_names(&t).len(), 4);
}
