//! Team vaults end to end: one HOME per person, the real binary, the real `git` on a bare
//! repository on disk.

#[path = "support/agent.rs"]
mod agent_support;
mod support;
#[path = "support/team.rs"]
mod team_support;
use agent_support::{run_no_pass, status, unlock};
use std::path::Path;
use support::*;
use team_support::*;

/// Every object in the bare repository, decompressed.
fn all_git_objects(url: &str) -> Vec<u8> {
    let repo = Path::new(url);
    let list = git_ok(repo, &["cat-file", "--batch-all-objects", "--batch-check"]);
    let mut out = Vec::new();
    for line in list.lines() {
        let oid = line.split_whitespace().next().unwrap();
        out.extend(git(repo, &["cat-file", "-p", oid]).stdout);
    }
    out
}

#[test]
fn members_share_entries_by_role_and_the_remote_sees_nothing() {
    let t = team();
    let secret = "ghp-team-shared-secret-9f2c";
    // A team entry is named as the team's in what the command says.
    let out = t
        .writer
        .ok(&["add", "ops:github/deploy", "--scope", "repo"], secret);
    assert_eq!(out.trim(), "added ops:github/deploy");
    t.writer.ok(&["sync"], "");
    t.admin.ok(&["sync"], "");
    assert_eq!(t.admin.ok(&["get", "ops:github/deploy"], "").trim(), secret);
    t.reader.ok(&["sync"], "");
    assert_eq!(
        t.reader.ok(&["get", "ops:github/deploy"], "").trim(),
        secret
    );
    let listed = t.reader.ok(&["list", "ops:"], "");
    assert!(listed.contains("ops:github/deploy"), "{listed}");
    // The personal vaults are untouched.
    t.admin.fails(&["get", "github/deploy"], "", 4);
    // A reader cannot write locally.
    let err = t.reader.fails(&["add", "ops:mine"], "tok", 2);
    assert!(err.contains("reader"), "{err}");
    // Names, secrets, metadata: nothing readable in any git object.
    let objects = all_git_objects(&t.url);
    assert!(!objects.is_empty());
    for needle in [secret, "github/deploy", "repo", "wendy", "rudy"] {
        assert!(
            !objects
                .windows(needle.len())
                .any(|w| w == needle.as_bytes()),
            "{needle} is readable in the remote"
        );
    }
    let members = t.admin.ok(&["team", "list", "ops"], "");
    assert!(
        members.contains("wendy") && members.contains("writer"),
        "{members}"
    );
    assert!(
        members.contains("rudy") && members.contains("reader"),
        "{members}"
    );
}

#[test]
fn writes_by_a_demoted_member_and_files_pushed_by_an_outsider_are_ignored() {
    let t = team();
    // The writer publishes a change; before anyone merges it, the admin makes them a
    // reader: their signed replica is on the remote, and is ignored.
    t.writer.add("ops:sneaky", "tok-sneaky", &[]);
    t.writer.ok(&["sync"], "");
    t.admin
        .ok(&["team", "add", "ops", "wendy", "--role", "reader"], "");
    t.admin.add("ops:real", "tok-real", &[]);
    let out = t.admin.run(&["sync"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wendy") && err.contains("reader"), "{err}");
    t.admin.fails(&["get", "ops:sneaky"], "", 4);

    // An outsider copies a replica under another device's name: not signed for that name.
    let (_work, w) = checkout(&t.url);
    let replicas = w.join("replicas");
    let first = std::fs::read_dir(&replicas)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    std::fs::copy(
        first.path(),
        replicas.join(format!("{}.jeton", "ab".repeat(16))),
    )
    .unwrap();
    push(&w, "outsider");
    let out = t.reader.run(&["sync"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not signed by a member"), "{err}");
    assert_eq!(t.reader.ok(&["get", "ops:real"], "").trim(), "tok-real");
}

#[test]
fn a_tampered_member_list_is_reported_once_and_the_team_syncs_on() {
    let t = team();
    t.admin.add("ops:db", "tok-db", &[]);
    t.admin.ok(&["sync"], "");
    let (_work, w) = checkout(&t.url);
    for e in std::fs::read_dir(w.join("members")).unwrap() {
        let p = e.unwrap().path();
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 5] ^= 0x40;
        std::fs::write(&p, b).unwrap();
    }
    push(&w, "tamper");
    // Every list file fails: the list kept in the personal vault still holds, the entries
    // sync, and each file is named with whose it is.
    let out = t.writer.run(&["sync"], "");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("fails decryption") && err.contains("(by admin)"),
        "{err}"
    );
    assert_eq!(t.writer.ok(&["get", "ops:db"], "").trim(), "tok-db");
    // Said once: the next sync is quiet about it.
    let out = t.writer.run(&["sync"], "");
    assert!(out.status.success());
    let again = String::from_utf8_lossy(&out.stderr);
    assert!(!again.contains("fails decryption"), "{again}");
}

#[test]
fn removal_rekeys_lists_exposed_entries_and_shuts_the_member_out() {
    let t = team();
    t.admin.add("ops:db", "tok-db-before", &[]);
    t.admin.ok(&["sync"], "");
    t.writer.ok(&["sync"], "");
    assert_eq!(t.writer.ok(&["get", "ops:db"], "").trim(), "tok-db-before");
    // An old member list, kept to replay after the removal.
    let (_work, w) = checkout(&t.url);
    let old_lists: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(w.join("members"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();

    let out = t.admin.ok(&["team", "remove", "ops", "wendy"], "");
    assert!(out.contains("exposed"), "{out}");
    let out = t.admin.run(&["check"], "");
    assert_eq!(out.status.code(), Some(8));
    let check = String::from_utf8_lossy(&out.stdout);
    assert!(
        check.contains("ops:db: exposed") && check.contains("wendy"),
        "{check}"
    );

    t.admin.add("ops:after", "tok-after-removal", &[]);
    t.admin.ok(&["sync"], "");
    // The removed member syncs: refused, and cannot read what came later.
    let out = t.writer.run(&["sync"], "");
    assert!(!out.status.success());
    t.writer.fails(&["get", "ops:after"], "", 4);
    // Their later writes are ignored.
    t.writer.add("ops:late", "tok-late", &[]);
    // The reader still follows, and sees the exposure too.
    t.reader.ok(&["sync"], "");
    assert_eq!(
        t.reader.ok(&["get", "ops:after"], "").trim(),
        "tok-after-removal"
    );

    // Replaying the old member lists changes nothing.
    git_ok(&w, &["pull", "-q", "origin", "jeton"]);
    for (p, b) in &old_lists {
        std::fs::write(p, b).unwrap();
    }
    push(&w, "replay");
    t.admin.ok(&["sync"], "");
    let members = t.admin.ok(&["team", "list", "ops"], "");
    assert!(members.contains("removed"), "{members}");
    t.admin.fails(&["get", "ops:late"], "", 4);

    // Rotating the exposed entry clears the finding (a rotation in the removal's own second
    // is not told apart from one before it, so the finding would stay: wait that out).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t.admin.ok(&["rotate", "ops:db"], "tok-db-after");
    let out = t.admin.run(&["check"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("ops:db: exposed"), "{text}");
    // The fix names the team's entry (one line serves several entries: see --json).
    assert!(text.contains("ops:db: no_contact"), "{text}");
    let json = t.admin.run(&["--json", "check"], "");
    assert!(
        String::from_utf8_lossy(&json.stdout).contains("`jeton edit ops:db --contact"),
        "{}",
        String::from_utf8_lossy(&json.stdout)
    );
}

#[test]
fn two_admins_add_members_concurrently_and_both_stay() {
    let (_remote, url) = bare_repo();
    let a = TestVault::new();
    let b = TestVault::new();
    let x = TestVault::new();
    let y = TestVault::new();
    introduce((&a, "al"), (&b, "bea"));
    introduce((&a, "al"), (&x, "xan"));
    introduce((&b, "bea"), (&y, "yves"));
    a.ok(&["team", "create", "ops", "--remote", &url], "");
    a.ok(&["team", "add", "ops", "bea", "--role", "admin"], "");
    b.ok(&["team", "join", &url], "");
    a.ok(&["team", "add", "ops", "xan"], "");
    b.ok(&["team", "add", "ops", "yves"], "");
    a.ok(&["sync"], "");
    b.ok(&["sync"], "");
    a.ok(&["sync"], "");
    for t in [&a, &b] {
        let members = t.ok(&["team", "list", "ops"], "");
        assert!(members.contains("writer"), "{members}");
        assert_eq!(members.matches("writer").count(), 2, "{members}");
    }
    x.ok(&["team", "join", &url], "");
    y.ok(&["team", "join", &url], "");
}

#[test]
fn joining_needs_the_admin_among_ones_contacts() {
    let (_remote, url) = bare_repo();
    let a = TestVault::new();
    let s = TestVault::new();
    // The admin has the stranger's card, but not the other way round.
    a.ok(&["contact", "add", "sam", &card(&s)], "");
    a.ok(&["team", "create", "ops", "--remote", &url], "");
    a.ok(&["team", "add", "ops", "sam"], "");
    let err = s.fails(&["team", "join", &url], "", 6);
    assert!(err.contains("not one of your contacts"), "{err}");
    // Someone never added reads nothing.
    let o = TestVault::new();
    let err = o.fails(&["team", "join", &url], "", 4);
    assert!(err.contains("addressed to you"), "{err}");
}

#[test]
fn the_agent_serves_team_entries_and_follows_the_team_vault() {
    let t = team();
    t.writer.add("ops:db", "first-secret-1", &[]);
    t.writer.ok(&["sync"], "");
    t.admin.ok(&["sync"], "");
    let _agent = unlock(&t.admin, &[]);
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // No passphrase anywhere: the agent opens the team vault and holds it open.
    let out = run_no_pass(&t.admin, &["get", "ops:db"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "first-secret-1");
    assert_eq!(
        status(&t.admin)["unlocked"][0]["teams"],
        serde_json::json!(["ops"])
    );
    // A round brings in a rotation: the agent reads the new team file.
    t.writer.ok(&["rotate", "ops:db"], "second-secret-2\n");
    t.writer.ok(&["sync"], "");
    let out = run_no_pass(&t.admin, &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_no_pass(&t.admin, &["get", "ops:db"], "");
    assert_eq!(stdout(&out), "second-secret-2");
    // A write through the agent lands in the team vault and reaches the others.
    let out = run_no_pass(&t.admin, &["add", "ops:cache"], "third-secret-3");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_no_pass(&t.admin, &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    t.writer.ok(&["sync"], "");
    assert_eq!(
        t.writer.ok(&["get", "ops:cache"], "").trim(),
        "third-secret-3"
    );
    // The agent keeps to the member's role: a reader's write is refused there too.
    let _reader_agent = unlock(&t.reader, &[]);
    let out = run_no_pass(&t.reader, &["add", "ops:mine"], "tok");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("reader"), "{}", stderr(&out));
    let out = run_no_pass(&t.reader, &["sync"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_no_pass(&t.reader, &["get", "ops:db"], "");
    assert_eq!(stdout(&out), "second-secret-2");
    assert_eq!(
        status(&t.reader)["unlocked"][0]["teams"],
        serde_json::json!(["ops"])
    );
    // A removal re-keys the team vault: the agent follows the new key without a prompt.
    let team_file = |v: &TestVault| {
        let mut p = v.vault_path().into_os_string();
        p.push(".teams/ops.jeton");
        std::fs::read(p).unwrap()
    };
    let old_file = team_file(&t.admin);
    for args in [&["team", "remove", "ops", "rudy"][..], &["sync"]] {
        let out = run_no_pass(&t.admin, args, "");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // A team vault has no key slot: its key commitment is at bytes 47..79.
    let new_file = team_file(&t.admin);
    assert_eq!(old_file[34], 0, "no key slot");
    assert_ne!(new_file[47..79], old_file[47..79], "re-keyed");
    let out = run_no_pass(&t.admin, &["get", "ops:cache"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "third-secret-3");
}

#[test]
fn the_team_log_names_the_member_who_signed_each_change() {
    let t = team();
    t.writer.add("ops:db", "first-secret-1", &[]);
    t.writer.ok(&["rotate", "ops:db"], "second-secret-2\n");
    t.writer.ok(&["sync"], "");
    t.admin.ok(&["sync"], "");
    t.admin.add("ops:web", "web-secret-3", &[]);
    // Through the agent too: it signs with the identity it holds.
    let agent = unlock(&t.admin, &[]);
    let out = run_no_pass(&t.admin, &["add", "ops:cache"], "cache-secret-4");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(agent);
    let lines: Vec<serde_json::Value> =
        serde_json::from_str(&t.admin.ok(&["--json", "log", "ops:"], "")).unwrap();
    let authors = |action: &str, subject: &str| -> Vec<serde_json::Value> {
        lines
            .iter()
            .filter(|l| l["action"] == action && l["subject"] == subject)
            .map(|l| l["authors"].clone())
            .collect()
    };
    let wendy = serde_json::json!(["wendy"]);
    // The admin's card calls them "admin": the log uses the names of the member list.
    let admin = serde_json::json!(["admin"]);
    assert_eq!(authors("add", "db"), vec![wendy.clone()], "{lines:?}");
    assert_eq!(authors("rotate", "db"), vec![wendy.clone()], "{lines:?}");
    assert_eq!(authors("add", "web"), vec![admin.clone()], "{lines:?}");
    assert_eq!(authors("add", "cache"), vec![admin.clone()], "{lines:?}");
    // Each member's copy starts with lines of its own, signed too.
    // (Made in one second, two copies' lines are one line that both signed.)
    let created: Vec<_> = (lines.iter())
        .filter(|l| l["detail"] == "team vault created")
        .flat_map(|l| l["authors"].as_array().unwrap().clone())
        .collect();
    assert!(
        created.contains(&admin[0]) && created.contains(&wendy[0]),
        "{lines:?}"
    );
    let unsigned: Vec<_> = (lines.iter())
        .filter(|l| l["authors"] == serde_json::json!([]))
        .collect();
    assert!(unsigned.is_empty(), "{unsigned:?}");
    // JSON names the key too: names may repeat.
    let keys: Vec<_> = (lines.iter())
        .filter(|l| l["action"] == "rotate")
        .map(|l| l["author_keys"][0].as_str().unwrap().len())
        .collect();
    assert_eq!(keys, [64], "{lines:?}");
    assert!(
        lines.iter().all(|l| l["action"] != "author"),
        "signatures are not lines: {lines:?}"
    );
    // The writer reads the same names once synced, and for one entry too.
    t.admin.ok(&["sync"], "");
    t.writer.ok(&["sync"], "");
    let table = t.writer.ok(&["log", "ops:web"], "");
    assert!(
        table
            .lines()
            .any(|l| l.contains(" admin ") && l.contains("add")),
        "{table}"
    );
    assert!(!table.contains("wendy"), "{table}");
    // Concurrent rotations of one entry: both lines keep their author, and the conflict shows.
    t.writer.ok(&["rotate", "ops:web"], "from-wendy-5\n");
    t.admin.ok(&["rotate", "ops:web"], "from-admin-6\n");
    t.writer.ok(&["sync"], "");
    t.admin.ok(&["sync"], "");
    let lines: Vec<serde_json::Value> =
        serde_json::from_str(&t.admin.ok(&["--json", "log", "ops:web"], "")).unwrap();
    // Two identical lines (same second) are one line signed by both.
    let rotated_by: Vec<_> = (lines.iter())
        .filter(|l| l["action"] == "rotate")
        .flat_map(|l| l["authors"].as_array().unwrap().clone())
        .collect();
    assert!(
        rotated_by.contains(&wendy[0]) && rotated_by.contains(&admin[0]),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l["action"] == "conflict"), "{lines:?}");
    // A removed member's lines keep their name.
    t.admin.ok(&["team", "remove", "ops", "wendy"], "");
    let lines: Vec<serde_json::Value> =
        serde_json::from_str(&t.admin.ok(&["--json", "log", "ops:db"], "")).unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "rotate" && l["authors"] == wendy),
        "{lines:?}"
    );
    // The removal's `exposed` markers (one per entry, for `check`) are not signed.
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "exposed" && l["authors"] == serde_json::json!([])),
        "{lines:?}"
    );
}
