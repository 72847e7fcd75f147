//! After a key change (`passwd`, `recover`, `recovery new`) or a wipe (`revoke`, an imported
//! revocation notice, a history cut), no file jeton leaves in the vault's directory (vault,
//! `.bak`, lock, anything else) opens with the old passphrase or recovery key, or yields a wiped
//! secret. Every file is tried by copying it into a fresh HOME and running the real binary.

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use agent_support::*;
use std::path::{Path, PathBuf};
use support::*;

const NEW_PASS: &str = "a brand new passphrase for this vault";

/// Every file in the vault's directory.
fn files_beside_the_vault(t: &TestVault) -> Vec<PathBuf> {
    let dir = t.vault_path().parent().unwrap().to_owned();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("vault.jeton.bak")),
        "expected a backup among {files:?}"
    );
    files
}

/// A fresh HOME whose vault is a copy of `file`.
fn copy_of(file: &Path) -> TestVault {
    let c = TestVault::empty();
    std::fs::create_dir_all(c.vault_path().parent().unwrap()).unwrap();
    std::fs::copy(file, c.vault_path()).unwrap();
    c
}

fn write(t: &TestVault, name: &str, text: &str) -> PathBuf {
    let p = t.home().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn opens_with_passphrase(file: &Path, pass: &str) -> bool {
    let c = copy_of(file);
    let mut cmd = c.cmd();
    cmd.env("JETON_PASSPHRASE", pass);
    c.run_with(cmd, &["list", "--status", "all"], "")
        .status
        .success()
}

fn opens_with_recovery_key(file: &Path, key: &str) -> bool {
    let c = copy_of(file);
    let kf = write(&c, "rk.txt", key);
    let nf = write(&c, "np.txt", "whatever new passphrase here");
    let mut cmd = c.cmd();
    cmd.env_remove("JETON_PASSPHRASE")
        .env("JETON_RECOVERY_KEY_FILE", kf)
        .env("JETON_NEW_PASSPHRASE_FILE", nf);
    c.run_with(cmd, &["recover"], "").status.success()
}

/// True when `file`, opened with `pass`, gives `value` as the current or a previous secret of
/// `name`.
fn yields(file: &Path, pass: &str, name: &str, value: &str) -> bool {
    let c = copy_of(file);
    [
        &["get", name][..],
        &["history", name, "--reveal"],
        &["--json", "show", name, "--reveal"],
    ]
    .iter()
    .any(|args| {
        let mut cmd = c.cmd();
        cmd.env("JETON_PASSPHRASE", pass);
        String::from_utf8_lossy(&c.run_with(cmd, args, "").stdout).contains(value)
    })
}

/// `init --json`, returning the recovery key.
fn init_with_key(t: &TestVault) -> String {
    let out = t.ok(&[&["--json", "init"][..], &CHEAP_KDF].concat(), "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["recovery_key"].as_str().unwrap().to_owned()
}

fn assert_ran(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn passwd_leaves_no_file_under_the_old_passphrase() {
    let t = TestVault::empty();
    let key = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    t.add("svc/b", "second", &[]);
    let nf = write(&t, "new.txt", NEW_PASS);
    let mut c = t.cmd();
    c.env("JETON_NEW_PASSPHRASE_FILE", nf);
    assert_ran(&t.run_with(c, &["passwd"], ""));
    for f in files_beside_the_vault(&t) {
        assert!(!opens_with_passphrase(&f, PASS), "{} opens", f.display());
        assert!(!opens_with_recovery_key(&f, &key), "{} opens", f.display());
    }
    assert!(opens_with_passphrase(&t.vault_path(), NEW_PASS));
    // The next ordinary save keeps the previous generation again, under the new key.
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", NEW_PASS);
    assert_ran(&t.run_with(c, &["add", "svc/c"], "third"));
    let bak = t.vault_path().with_file_name("vault.jeton.bak");
    assert!(opens_with_passphrase(&bak, NEW_PASS));
    assert!(!opens_with_passphrase(&bak, PASS));
}

#[test]
fn recover_leaves_no_file_under_the_old_passphrase() {
    let t = TestVault::empty();
    let key = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    t.add("svc/b", "second", &[]);
    let kf = write(&t, "rk.txt", &key);
    let nf = write(&t, "new.txt", NEW_PASS);
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE")
        .env("JETON_RECOVERY_KEY_FILE", kf)
        .env("JETON_NEW_PASSPHRASE_FILE", nf);
    assert_ran(&t.run_with(c, &["recover"], ""));
    for f in files_beside_the_vault(&t) {
        assert!(!opens_with_passphrase(&f, PASS), "{} opens", f.display());
    }
    assert!(opens_with_passphrase(&t.vault_path(), NEW_PASS));
}

#[test]
fn recovery_new_leaves_no_file_under_the_old_recovery_key() {
    let t = TestVault::empty();
    let old = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    t.add("svc/b", "second", &[]);
    let out = t.ok(&["--json", "recovery", "new"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new = v["recovery_key"].as_str().unwrap().to_owned();
    for f in files_beside_the_vault(&t) {
        assert!(!opens_with_recovery_key(&f, &old), "{} opens", f.display());
    }
    assert!(opens_with_recovery_key(&t.vault_path(), &new));
    // The passphrase is unchanged.
    assert_eq!(t.ok(&["get", "svc/a"], ""), format!("{CANARY}\n"));
}

#[test]
fn recovery_new_asks_the_passphrase_even_when_the_agent_is_unlocked() {
    let t = TestVault::empty();
    let old = init_with_key(&t);
    t.add("svc/a", CANARY, &[]);
    let _agent = unlock(&t, &[]);
    // The agent holds only the vault key: re-keying needs the passphrase itself.
    let out = run_no_pass(&t, &["recovery", "new"], "");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A wrong passphrase is refused before anything is written.
    let before = t.vault_bytes();
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "not the passphrase");
    assert_eq!(
        t.run_with(c, &["recovery", "new"], "").status.code(),
        Some(3)
    );
    assert_eq!(t.vault_bytes(), before);
    let out = t.run(&["recovery", "new"], "");
    assert_ran(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("the agent forgot the old key"), "{text}");
    assert_eq!(status(&t)["unlocked"].as_array().unwrap().len(), 0);
    for f in files_beside_the_vault(&t) {
        assert!(!opens_with_recovery_key(&f, &old), "{} opens", f.display());
    }
}

#[test]
fn revoke_leaves_no_file_holding_the_wiped_secret() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    t.ok(&["rotate", "svc/a"], "rotated-secret-2");
    t.ok(&["revoke", "--yes", "svc/a"], "");
    for f in files_beside_the_vault(&t) {
        for value in [CANARY, "rotated-secret-2"] {
            assert!(!yields(&f, PASS, "svc/a", value), "{}", f.display());
        }
    }
}

#[test]
fn rm_leaves_no_file_holding_the_removed_secret() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    t.add("svc/kept", "kept-secret", &[]);
    t.ok(&["rm", "--yes", "svc/a"], "");
    for f in files_beside_the_vault(&t) {
        assert!(!yields(&f, PASS, "svc/a", CANARY), "{}", f.display());
    }
    let bak = t.vault_path().with_file_name("vault.jeton.bak");
    assert!(yields(&bak, PASS, "svc/kept", "kept-secret"));
}

#[test]
fn a_history_cut_leaves_no_file_holding_the_cut_secrets() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    t.ok(&["rotate", "svc/a"], "second-value");
    t.ok(&["config", "set", "history_limit", "0"], "");
    for f in files_beside_the_vault(&t) {
        assert!(!yields(&f, PASS, "svc/a", CANARY), "{}", f.display());
    }
    let bak = t.vault_path().with_file_name("vault.jeton.bak");
    assert!(yields(&bak, PASS, "svc/a", "second-value"));
}

#[test]
fn a_revocation_notice_leaves_no_file_holding_the_wiped_secret() {
    let init = |name: &str| {
        let t = TestVault::empty();
        t.ok(&[&["init", "--name", name][..], &CHEAP_KDF].concat(), "");
        t
    };
    let alice = init("Alice");
    let bob = init("Bob");
    let card = |t: &TestVault| t.ok(&["-q", "identity"], "").trim().to_owned();
    alice.ok(&["contact", "add", "bob", &card(&bob)], "");
    bob.ok(&["contact", "add", "alice", &card(&alice)], "");
    alice.add("svc/token", CANARY, &[]);
    let bundle = alice.home().join("share.age");
    let b = bundle.to_str().unwrap();
    alice.ok(&["share", "svc/token", "--to", "bob", "-o", b], "");
    bob.ok(&["import", b], "");
    bob.add("other", "unrelated", &[]);
    assert_eq!(bob.ok(&["get", "svc/token"], ""), format!("{CANARY}\n"));
    let notice = alice.home().join("revoke.age");
    let n = notice.to_str().unwrap();
    alice.ok(&["revoke", "--yes", "svc/token"], "");
    alice.ok(
        &["share", "--revocation", "svc/token", "--to", "bob", "-o", n],
        "",
    );
    bob.ok(&["import", n], "");
    bob.fails(&["get", "svc/token"], "", 5);
    for f in files_beside_the_vault(&bob) {
        assert!(!yields(&f, PASS, "svc/token", CANARY), "{}", f.display());
    }
}
