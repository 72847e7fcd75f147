//! Sync end to end: devices with their own HOME, the real binary, the real `git` on bare
//! repositories on disk, and shared folders. No git identity is configured for any of them.

#[path = "support/agent.rs"]
mod agent_support;
mod hardening;
mod support;
use hardening::inject_at;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::*;

/// A bare repository in a temporary directory.
struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    fn git() -> Remote {
        let dir = tempfile::Builder::new()
            .prefix("jeton-remote")
            .tempdir()
            .expect("tempdir");
        let out = git(dir.path(), &["init", "-q", "--bare", "remote.git"]);
        assert!(out.status.success());
        Remote { dir }
    }

    fn folder() -> Remote {
        let dir = tempfile::Builder::new()
            .prefix("jeton-folder")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("shared")).expect("mkdir");
        Remote { dir }
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("remote.git")
    }

    fn shared(&self) -> PathBuf {
        self.dir.path().join("shared")
    }

    fn url(&self) -> String {
        self.repo().display().to_string()
    }
}

/// A first device with a vault published to `remote` (git, or `--dir` for a folder).
fn first(remote: &Remote, dir: bool) -> TestVault {
    let t = TestVault::new();
    t.add(
        "gh/ci",
        "ghp-first-secret",
        &["--scope", "repo", "--contact", "Ops <ops@example.com>"],
    );
    init(&t, remote, dir);
    t
}

fn init(t: &TestVault, remote: &Remote, dir: bool) {
    if dir {
        t.ok(
            &[
                "sync",
                "init",
                "--dir",
                &remote.shared().display().to_string(),
            ],
            "",
        );
    } else {
        t.ok(&["sync", "init", &remote.url()], "");
    }
}

/// Another device made from the remote.
fn clone(remote: &Remote, dir: bool) -> TestVault {
    let t = TestVault::empty();
    if dir {
        t.ok(
            &[
                "sync",
                "clone",
                "--dir",
                &remote.shared().display().to_string(),
            ],
            "",
        );
    } else {
        t.ok(&["sync", "clone", &remote.url()], "");
    }
    t
}

fn sync(t: &TestVault) -> String {
    t.ok(&["sync", "-v"], "")
}

/// Everything a user can see of a vault: each entry with its secret and history.
fn content(t: &TestVault) -> String {
    let list: serde_json::Value =
        serde_json::from_str(&t.ok(&["list", "--json", "--status", "all"], "")).expect("json");
    let mut out = String::new();
    for e in list.as_array().expect("array") {
        let name = e["name"].as_str().expect("name");
        let mut show: serde_json::Value =
            serde_json::from_str(&t.ok(&["show", name, "--json", "--reveal"], "")).expect("json");
        show.as_object_mut().expect("object").remove("revision");
        out.push_str(&show.to_string());
        out.push_str(&t.ok(&["history", name, "--json", "--reveal"], ""));
    }
    out
}

fn names(t: &TestVault) -> Vec<String> {
    let list: serde_json::Value =
        serde_json::from_str(&t.ok(&["list", "--json", "--status", "all"], "")).expect("json");
    (list.as_array().expect("array").iter())
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

fn get(t: &TestVault, name: &str) -> String {
    t.ok(&["get", name], "").trim_end().to_owned()
}

/// Syncs every device twice in turn: enough for all of them to have read every change.
fn settle(devices: &[&TestVault]) {
    for _ in 0..2 {
        for d in devices {
            sync(d);
        }
    }
}

/// The devices with files in `replicas/` (a snapshot, deltas), by id.
fn devices_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = (replica_files(dir).iter())
        .map(|p| p.file_name().expect("name").to_string_lossy()[..32].to_owned())
        .collect();
    v.dedup();
    v
}

fn replica_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("replicas"))
        .expect("replicas")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

#[test]
fn two_devices_share_adds_and_edits_through_a_bare_repo() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    assert_eq!(get(&b, "gh/ci"), "ghp-first-secret");
    b.add("aws/deploy", "AKIA-second", &["--scope", "s3:put"]);
    a.ok(&["edit", "gh/ci", "--add-tag", "prod"], "");
    let out = sync(&b);
    assert!(out.contains("sent: aws/deploy"), "{out}");
    let out = sync(&a);
    assert!(out.contains("received: aws/deploy"), "{out}");
    assert!(out.contains("sent: gh/ci"), "{out}");
    sync(&b);
    assert_eq!(get(&a, "aws/deploy"), "AKIA-second");
    assert!(b.ok(&["show", "gh/ci"], "").contains("prod"));
    assert_eq!(content(&a), content(&b));
    // A round with nothing new publishes nothing.
    let before = git_ok(&remote.repo(), &["rev-parse", "jeton"]);
    let out = sync(&a);
    assert!(out.contains("nothing new to publish"), "{out}");
    assert_eq!(git_ok(&remote.repo(), &["rev-parse", "jeton"]), before);
    // Status lists both devices.
    let status = a.ok(&["sync", "status"], "");
    assert!(
        status.contains("this device") && status.lines().count() >= 5,
        "{status}"
    );
}

#[test]
fn the_remote_sees_no_name_metadata_or_secret() {
    let remote = Remote::git();
    let a = TestVault::new();
    a.add(
        "stripe/live-key",
        CANARY,
        &[
            "--scope",
            "charges:write",
            "--contact",
            "Payments <pay@corp.test>",
            "--note",
            "rotate-with-finance",
            "--tag",
            "billing-tag",
        ],
    );
    init(&a, &remote, false);
    let b = clone(&remote, false);
    b.ok(&["rotate", "stripe/live-key"], "second-secret-value");
    sync(&b);
    sync(&a);
    let objects = git_ok(
        &remote.repo(),
        &["cat-file", "--batch-all-objects", "--batch"],
    );
    let all = git(
        &remote.repo(),
        &["cat-file", "--batch-all-objects", "--batch"],
    )
    .stdout;
    assert!(all.len() > 1000 && objects.contains("jeton-sync.json"));
    for needle in [
        CANARY,
        "second-secret-value",
        "stripe",
        "live-key",
        "charges",
        "Payments",
        "pay@corp.test",
        "rotate-with-finance",
        "billing-tag",
        PASS,
    ] {
        assert!(
            !all.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "the remote holds {needle:?}"
        );
    }
}

#[test]
fn a_rotation_on_each_side_keeps_both_secrets_and_check_reports_the_conflict() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    a.ok(&["rotate", "gh/ci"], "rotated-on-a");
    b.ok(&["rotate", "gh/ci"], "rotated-on-b");
    sync(&a);
    let out = sync(&b);
    assert!(out.contains("changed on two devices at once"), "{out}");
    sync(&a);
    assert_eq!(content(&a), content(&b));
    let current = get(&a, "gh/ci");
    let history = a.ok(&["history", "gh/ci", "--reveal"], "");
    let other = if current == "rotated-on-a" {
        "rotated-on-b"
    } else {
        "rotated-on-a"
    };
    assert!(["rotated-on-a", "rotated-on-b"].contains(&current.as_str()));
    assert!(
        history.contains(other) && history.contains("ghp-first-secret"),
        "{history}"
    );
    a.fails(&["check"], "", 8);
    let findings = a.run(&["check", "--json"], "");
    let text = String::from_utf8_lossy(&findings.stdout);
    assert!(text.contains("sync_conflict"), "{text}");
    a.ok(&["sync", "resolve", "gh/ci"], "");
    let findings = a.run(&["check", "--json"], "");
    assert!(!String::from_utf8_lossy(&findings.stdout).contains("sync_conflict"));
    // The resolution travels.
    settle(&[&a, &b]);
    let findings = b.run(&["check", "--json"], "");
    assert!(!String::from_utf8_lossy(&findings.stdout).contains("sync_conflict"));
}

#[test]
fn a_revoke_wins_over_a_concurrent_edit() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    a.ok(&["revoke", "gh/ci", "--yes"], "");
    b.ok(&["rotate", "gh/ci"], "edited-while-revoked");
    settle(&[&a, &b]);
    for t in [&a, &b] {
        t.fails(&["get", "gh/ci"], "", 5);
        let h = t.ok(&["history", "gh/ci", "--reveal"], "");
        assert!(
            !h.contains("edited-while-revoked") && !h.contains("ghp-first-secret"),
            "{h}"
        );
    }
    assert_eq!(content(&a), content(&b));
}

#[test]
fn an_edit_concurrent_with_a_removal_is_kept() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    a.ok(&["rm", "gh/ci", "--yes"], "");
    b.ok(&["rotate", "gh/ci"], "kept-because-edited");
    sync(&a);
    let out = sync(&b);
    assert!(out.contains("kept"), "{out}");
    settle(&[&a, &b]);
    assert_eq!(get(&a, "gh/ci"), "kept-because-edited");
    assert_eq!(content(&a), content(&b));
    // A removal that saw the last edit removes it everywhere, for good.
    a.ok(&["rm", "gh/ci", "--yes"], "");
    settle(&[&a, &b]);
    assert!(names(&b).is_empty(), "{:?}", names(&b));
    assert!(names(&a).is_empty());
}

#[test]
fn renames_on_both_sides_and_one_name_added_twice_converge() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    a.ok(&["rename", "gh/ci", "gh/ci-a"], "");
    b.ok(&["rename", "gh/ci", "gh/ci-b"], "");
    a.add("same/name", "added-on-a", &[]);
    b.add("same/name", "added-on-b", &[]);
    settle(&[&a, &b]);
    let n = names(&a);
    assert_eq!(n, names(&b));
    assert_eq!(n.len(), 3, "{n:?}");
    assert!(n.contains(&"same/name".to_owned()));
    assert!(n.iter().any(|x| x.starts_with("same/name.dup-")), "{n:?}");
    assert!(
        n.contains(&"gh/ci-a".to_owned()) ^ n.contains(&"gh/ci-b".to_owned()),
        "{n:?}"
    );
    assert_eq!(content(&a), content(&b));
    let secrets: Vec<String> = n.iter().map(|x| get(&a, x)).collect();
    assert!(secrets.contains(&"added-on-a".into()) && secrets.contains(&"added-on-b".into()));
}

#[test]
fn three_devices_end_identical_whatever_the_order() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    let c = clone(&remote, false);
    let devices = [&a, &b, &c];
    let mut rng = hardening::Rng::new(0x5eed);
    for step in 0..18 {
        let d = devices[rng.below(3) as usize];
        let name = format!("e{}", rng.below(4));
        let exists = names(d).contains(&name);
        match (exists, rng.below(5)) {
            (false, _) => d.add(&name, &format!("s{step}"), &[]),
            (true, 0) => {
                d.ok(&["rotate", &name], &format!("r{step}"));
            }
            (true, 1) => {
                d.ok(&["edit", &name, "--add-tag", &format!("t{step}")], "");
            }
            (true, 2) => {
                d.ok(&["rm", &name, "--yes"], "");
            }
            (true, 3) => {
                let _ = d.run(&["rename", &name, &format!("{name}x")], "");
            }
            (true, _) => {
                d.ok(&["revoke", &name, "--yes"], "");
            }
        }
        if rng.below(2) == 0 {
            sync(devices[rng.below(3) as usize]);
        }
    }
    settle(&devices);
    let ca = content(&a);
    assert_eq!(ca, content(&b));
    assert_eq!(ca, content(&c));
    assert!(!ca.is_empty());
}

#[test]
fn a_shared_folder_syncs_and_a_conflict_copy_is_merged_then_removed() {
    let remote = Remote::folder();
    let a = first(&remote, true);
    let b = clone(&remote, true);
    assert_eq!(devices_in(&remote.shared()).len(), 2);
    let b_path = replica_of(&remote.shared(), &b);
    let b_id = b_path.file_stem().unwrap().to_string_lossy().into_owned();
    b.add("x/two", "second-on-b", &[]);
    sync(&b);
    // B's newest file (a delta) as a file-sync tool may leave it after a clash: moved aside
    // into a conflict copy.
    let deltas: Vec<PathBuf> = (replica_files(&remote.shared()).into_iter())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&b_id) && n.len() > b_id.len() + ".jeton".len()
        })
        .collect();
    assert_eq!(deltas.len(), 1, "{deltas:?}");
    let copy = remote.shared().join("replicas").join(format!(
        "{b_id}.sync-conflict-20261203-101010-ABCDEFG.jeton"
    ));
    std::fs::rename(&deltas[0], &copy).unwrap();
    let out = sync(&a);
    assert!(out.contains("conflict cop"), "{out}");
    assert_eq!(get(&a, "x/two"), "second-on-b");
    assert!(!copy.exists(), "the merged conflict copy is removed");
    settle(&[&a, &b]);
    assert_eq!(content(&a), content(&b));
}

/// The remote's newest commit rewritten by `f` (a hostile or broken remote), pushed by force.
fn tamper_git(remote: &Remote, f: impl FnOnce(&Path)) {
    let work = tempfile::tempdir().unwrap();
    git_ok(
        work.path(),
        &["clone", "-q", "-b", "jeton", &remote.url(), "w"],
    );
    let w = work.path().join("w");
    f(&w);
    git_ok(&w, &["add", "-A"]);
    git_ok(
        &w,
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit",
            "-q",
            "-m",
            "tamper",
        ],
    );
    git_ok(&w, &["push", "-q", "-f", "origin", "HEAD:jeton"]);
}

fn replica_of(dir: &Path, t: &TestVault) -> PathBuf {
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["sync", "status", "--json"], "")).unwrap();
    let id = v["devices"][0]["id"].as_str().unwrap().to_owned();
    dir.join("replicas").join(format!("{id}.jeton"))
}

#[test]
fn a_damaged_or_misplaced_replica_is_refused_and_the_vault_untouched() {
    let remote = Remote::folder();
    let a = first(&remote, true);
    let b = clone(&remote, true);
    b.add("new/entry", "from-b", &[]);
    sync(&b);
    let shared = remote.shared();
    let b_path = replica_of(&shared, &b);
    let good = std::fs::read(&b_path).unwrap();
    let before = a.vault_bytes();
    // Every byte flipped at once, then single bytes across the whole file.
    let mut cases: Vec<Vec<u8>> = vec![good.iter().map(|b| !b).collect()];
    let step = (good.len() / 40).max(1);
    for i in (0..good.len()).step_by(step) {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        cases.push(bad);
    }
    cases.push(good[..good.len() - 1].to_vec());
    for bad in cases {
        std::fs::write(&b_path, &bad).unwrap();
        let out = a.run(&["sync"], "");
        assert!(
            matches!(out.status.code(), Some(6) | Some(3)),
            "{:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
        assert_eq!(a.vault_bytes(), before, "the local vault changed");
    }
    // A's own replica copied over B's.
    let a_path = replica_of(&shared, &a);
    std::fs::copy(&a_path, &b_path).unwrap();
    let err = a.fails(&["sync"], "", 6);
    assert!(err.contains("another device"), "{err}");
    assert_eq!(a.vault_bytes(), before);
    // A replica of another vault under B's name.
    let other_remote = Remote::folder();
    let other = first(&other_remote, true);
    std::fs::copy(replica_of(&other_remote.shared(), &other), &b_path).unwrap();
    let err = a.fails(&["sync"], "", 6);
    assert!(err.contains("another vault"), "{err}");
    assert_eq!(a.vault_bytes(), before);
    // Restored: the round completes.
    std::fs::write(&b_path, &good).unwrap();
    sync(&a);
    assert_eq!(get(&a, "new/entry"), "from-b");
}

#[test]
fn a_remote_forced_back_to_an_old_commit_is_reported_until_accepted() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    let old = git_ok(&remote.repo(), &["rev-parse", "jeton"])
        .trim()
        .to_owned();
    b.add("later/entry", "added-later", &[]);
    sync(&b);
    sync(&a);
    a.ok(&["rm", "later/entry", "--yes"], "");
    sync(&a);
    // Someone forces the remote back to before all of that.
    let work = tempfile::tempdir().unwrap();
    git_ok(
        work.path(),
        &["clone", "-q", "-b", "jeton", &remote.url(), "w"],
    );
    git_ok(
        &work.path().join("w"),
        &[
            "push",
            "-q",
            "-f",
            "origin",
            &format!("{old}:refs/heads/jeton"),
        ],
    );
    let before = a.vault_bytes();
    let err = a.fails(&["sync"], "", 6);
    assert!(
        err.contains("went back") || err.contains("back in time"),
        "{err}"
    );
    assert_eq!(a.vault_bytes(), before);
    assert_eq!(
        git_ok(&remote.repo(), &["rev-parse", "jeton"]).trim(),
        old,
        "nothing was published"
    );
    // Accepted: nothing comes back, nothing is lost.
    a.ok(&["sync", "--accept-rollback"], "");
    b.ok(&["sync", "--accept-rollback"], "");
    settle(&[&a, &b]);
    assert!(!names(&a).contains(&"later/entry".to_owned()));
    assert_eq!(content(&a), content(&b));
    assert_eq!(get(&b, "gh/ci"), "ghp-first-secret");
}

#[test]
fn a_remote_that_is_not_a_jeton_remote_is_refused() {
    // A git repository with a branch of that name but other content.
    let remote = Remote::git();
    let a = first(&remote, false);
    tamper_git(&remote, |w| {
        std::fs::remove_file(w.join("jeton-sync.json")).unwrap();
    });
    let before = a.vault_bytes();
    let err = a.fails(&["sync"], "", 6);
    assert!(err.contains("not a jeton sync remote"), "{err}");
    assert_eq!(a.vault_bytes(), before);
    // A password in the URL is refused before git runs, and not repeated.
    let t = TestVault::empty();
    let err = t.fails(
        &["sync", "clone", "https://me:hunter2-pw@git.invalid/x.git"],
        "",
        2,
    );
    assert!(!err.contains("hunter2-pw"), "{err}");
    assert!(!t.vault_path().exists());
    // Cloning a repository with no vault: exit 4; a folder with other files: refused.
    let empty = Remote::git();
    let t = TestVault::empty();
    t.fails(&["sync", "clone", &empty.url()], "", 4);
    assert!(!t.vault_path().exists());
    let folder = Remote::folder();
    std::fs::write(folder.shared().join("notes.txt"), "hello").unwrap();
    let c = TestVault::new();
    let before = c.vault_bytes();
    c.fails(
        &[
            "sync",
            "init",
            "--dir",
            &folder.shared().display().to_string(),
        ],
        "",
        9,
    );
    assert_eq!(c.vault_bytes(), before);
    c.fails(&["sync"], "", 4);
}

#[test]
fn a_push_race_is_retried_and_a_remote_that_always_moves_gives_exit_7() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    sync(&a);
    // The next push is rejected once while another commit lands, as when another device
    // pushes in between.
    b.add("from/b", "race-b", &[]);
    sync(&b);
    let hook = remote.repo().join("hooks/pre-receive");
    let flag = remote.dir.path().join("raced-once");
    // Outside the push's quarantine, where a hook may not update refs.
    let another_commit = "unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\nc=$(git commit-tree $(git rev-parse 'jeton^{tree}') -p jeton -m x </dev/null)\ngit update-ref refs/heads/jeton $c\n";
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nif [ ! -e '{flag}' ]; then touch '{flag}'\n{another_commit}exit 1; fi\nexit 0\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    a.add("from/a", "race-a", &[]);
    let out = sync(&a);
    assert!(flag.exists() && out.contains("received: from/b"), "{out}");
    // A remote that rejects every push after moving: exit 7, the local vault keeps its merge.
    std::fs::write(&hook, "#!/bin/sh\nexit 1\n").unwrap();
    a.add("from/a2", "race-a2", &[]);
    let err = a.run(&["sync"], "");
    assert_eq!(
        err.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
    std::fs::write(&hook, format!("#!/bin/sh\n{another_commit}exit 1\n")).unwrap();
    let err = a.fails(&["sync"], "", 7);
    assert!(err.contains("changed during"), "{err}");
    assert_eq!(get(&a, "from/a2"), "race-a2");
}

#[test]
fn sync_runs_through_the_unlocked_agent_without_a_passphrase() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    b.add("via/agent", "agent-secret", &[]);
    sync(&b);
    a.ok(&["unlock"], "");
    let mut c = a.cmd();
    c.env_remove("JETON_PASSPHRASE");
    let out = a.run_with(c, &["sync", "-v"], "");
    a.ok(&["agent", "stop"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("received: via/agent"));
    assert_eq!(get(&a, "via/agent"), "agent-secret");
}

#[test]
fn a_sync_killed_at_any_point_leaves_a_vault_that_opens_and_a_next_round_that_completes() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    let mut expected = vec!["gh/ci".to_owned()];
    for (i, call) in ["rename", "fsync", "wait4", "write"].iter().enumerate() {
        for nth in 1..=4 {
            let name = format!("k{i}/{nth}");
            b.add(&name, &format!("secret-{i}-{nth}"), &[]);
            expected.push(name);
            let _ = inject_at(&b, call, nth, "signal=SIGKILL", &["sync"], "");
            b.ok(&["list"], "");
            sync(&b);
        }
    }
    sync(&a);
    let mut got = names(&a);
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    assert_eq!(content(&a), content(&b));
}

#[test]
fn a_vault_that_never_syncs_keeps_format_1_and_one_that_syncs_uses_3() {
    let a = TestVault::new();
    a.add("x", "y", &[]);
    assert_eq!(&a.vault_bytes()[8..10], &1u16.to_le_bytes());
    let remote = Remote::git();
    init(&a, &remote, false);
    assert_eq!(&a.vault_bytes()[8..10], &3u16.to_le_bytes());
    assert_eq!(get(&a, "x"), "y");
    let err = a.fails(&["sync", "init", &remote.url()], "", 9);
    assert!(err.contains("already syncs"), "{err}");
}

/// `sync --adopt-key` on `t`, the other device's new passphrase `new` read from a file.
fn adopt_key(t: &TestVault, new: &str) {
    let new_file = t.home().join("new-passphrase");
    std::fs::write(&new_file, new).unwrap();
    let mut c = t.cmd();
    c.env("JETON_NEW_PASSPHRASE_FILE", &new_file);
    let out = t.run_with(c, &["sync", "--adopt-key"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_passphrase_changed_on_one_device_is_taken_by_the_others() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    let new = "a new passphrase for every device, long enough";
    a.passwd(new);
    let with_new = |t: &TestVault, args: &[&str]| {
        let mut c = t.cmd();
        c.env("JETON_PASSPHRASE", new);
        t.run_with(c, args, "")
    };
    // A publishes under the new key; B's replica, under the old one, is reported, not read.
    let out = with_new(&a, &["sync"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.add("from/b", "added-before-adopting", &[]);
    let err = b.fails(&["sync"], "", 3);
    assert!(err.contains("--adopt-key"), "{err}");
    // B takes the new key, then syncs with the new passphrase only.
    adopt_key(&b, new);
    b.fails(&["list"], "", 3);
    for t in [&b, &a, &b] {
        let out = with_new(t, &["sync"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("adopt-key"));
    }
    let out = with_new(&a, &["get", "from/b"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "added-before-adopting"
    );
}

#[test]
fn a_recovery_key_kept_through_passwd_opens_every_device() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let out = a.ok(&["--json", "recovery", "new"], "");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = v["recovery_key"].as_str().unwrap().to_owned();
    a.ok(&["sync"], "");
    let b = clone(&remote, false);
    // A changes the passphrase and keeps the recovery key; B takes the new key.
    let new = "a new passphrase for every device, long enough";
    let new_file = a.home().join("new-passphrase");
    std::fs::write(&new_file, new).unwrap();
    let mut c = a.cmd();
    c.env("JETON_NEW_PASSPHRASE_FILE", &new_file);
    let out = a.run_with(c, &["passwd", "--recovery-key-fd", "0"], &key);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    let mut c = a.cmd();
    c.env("JETON_PASSPHRASE", new);
    assert!(a.run_with(c, &["sync"], "").status.success());
    adopt_key(&b, new);
    // The recovery key opens B's vault: a passphrase forgotten there is not the end.
    for t in [&a, &b] {
        let kf = t.home().join("recovery-key");
        std::fs::write(&kf, &key).unwrap();
        let nf = t.home().join("recovered-passphrase");
        std::fs::write(&nf, "set again with the recovery key").unwrap();
        let mut c = t.cmd();
        c.env_remove("JETON_PASSPHRASE")
            .env("JETON_RECOVERY_KEY_FILE", &kf)
            .env("JETON_NEW_PASSPHRASE_FILE", &nf);
        let out = t.run_with(c, &["recover"], "");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The decrypted payload of the file beside `t`'s vault named `name`, encoded.
fn plaintext_of(t: &TestVault, name: &str) -> Vec<u8> {
    use jeton::format::VaultFile;
    use jeton::secret::Passphrase;
    use jeton::vault::Vault;
    let bytes = std::fs::read(t.vault_path().with_file_name(name)).expect("read");
    let file = VaultFile::parse(&bytes).expect("parse vault");
    let key = Vault::unlock(&file, &Passphrase::new(PASS.into())).expect("unlock");
    let v = Vault::open(&file, key).expect("open");
    v.payload.encode().expect("encode").to_vec()
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    (haystack.windows(needle.len())).any(|w| w == needle.as_bytes())
}

#[test]
fn a_revoke_or_removal_synced_in_leaves_no_copy_in_the_backup() {
    let remote = Remote::git();
    let a = first(&remote, false);
    a.add("gh/other", "ghp-removed-elsewhere", &[]);
    sync(&a);
    let b = clone(&remote, false);
    // A save on A, so its backup is a generation that holds both secrets.
    a.ok(&["edit", "gh/ci", "--note", "n"], "");
    settle(&[&a, &b]);
    let bak = plaintext_of(&a, "vault.jeton.bak");
    assert!(holds(&bak, "ghp-first-secret") && holds(&bak, "ghp-removed-elsewhere"));
    b.ok(&["revoke", "gh/ci", "--yes"], "");
    b.ok(&["rm", "gh/other", "--yes"], "");
    sync(&b);
    sync(&a);
    for file in ["vault.jeton", "vault.jeton.bak"] {
        let p = plaintext_of(&a, file);
        assert!(
            !holds(&p, "ghp-first-secret"),
            "{file} keeps the revoked secret"
        );
        assert!(
            !holds(&p, "ghp-removed-elsewhere"),
            "{file} keeps the removed secret"
        );
    }
}

#[test]
fn an_unreachable_remote_fails_with_sshs_own_reason() {
    let t = TestVault::empty();
    // Port 1 on the loopback address: nothing listens there, so ssh is refused at once.
    let err = t.fails(&["sync", "clone", "ssh://127.0.0.1:1/tokens.git"], "", 1);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(!err.contains("the repository exists"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_clone_counts_the_entries_it_received() {
    let remote = Remote::git();
    let a = first(&remote, false);
    a.add("gh/two", "second-secret", &[]);
    sync(&a);
    let t = TestVault::empty();
    let out = t.ok(&["sync", "clone", &remote.url()], "");
    assert!(out.contains("2 received"), "{out}");
    let json: serde_json::Value = serde_json::from_str(
        &TestVault::empty().ok(&["--json", "sync", "clone", &remote.url()], ""),
    )
    .expect("json");
    assert_eq!(json["received"].as_array().map(Vec::len), Some(2), "{json}");
}

#[test]
fn sync_through_the_agent_carries_a_40_mb_vault() {
    use std::fmt::Write as _;
    let remote = Remote::git();
    let a = first(&remote, false);
    // 10,000 entries of 4,000-byte secrets: a 40 MB vault (what 100,000 ordinary entries
    // weigh), so a round's request holds two replicas of over 50 MB each in base64.
    let mut env = String::with_capacity(10_000 * 4_020);
    for i in 0..10_000 {
        writeln!(env, "KEY_{i}={i:0>4000}").expect("write");
    }
    let file = a.home().join("bulk.env");
    std::fs::write(&file, env).expect("write env");
    a.ok(&["migrate", "dotenv", file.to_str().expect("utf-8")], "");
    sync(&a);
    let b = clone(&remote, false);
    b.add("via/agent", "agent-secret", &[]);
    sync(&b);
    let _agent = agent_support::unlock(&a, &[]);
    let out = agent_support::run_no_pass(&a, &["sync", "-v"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("received: via/agent"));
    assert_eq!(get(&a, "via/agent"), "agent-secret");
}

#[test]
fn a_remote_of_huge_sparse_files_is_refused_before_it_is_read() {
    let remote = Remote::folder();
    let a = first(&remote, true);
    let before = a.vault_bytes();
    let replicas = remote.shared().join("replicas");
    for name in ["\x1b[2Jplanted.jeton", "planted-too.jeton"] {
        let f = std::fs::File::create(replicas.join(name)).expect("create");
        f.set_len(1 << 30).expect("sparse 1 GiB");
    }
    // Far less address space than one of those files: refused by size, never read.
    let jeton = a.cmd();
    let mut c = std::process::Command::new("prlimit");
    c.arg(format!("--as={}", 256u64 << 20))
        .arg("--")
        .arg(jeton.get_program())
        .arg("sync")
        .env_clear()
        .envs(jeton.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let out = c.output().expect("prlimit (util-linux)");
    assert_no_panic(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("nothing was merged"), "{err}");
    assert!(
        !err.contains('\x1b'),
        "a remote file name reached the terminal raw: {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(a.vault_bytes(), before);
    // The limit can be raised for a vault that really is that large.
    let mut c = a.cmd();
    c.env("JETON_SYNC_MAX_REPLICA", "not-a-size");
    assert_eq!(a.run_with(c, &["sync"], "").status.code(), Some(2));
}

#[test]
fn sync_resolve_takes_several_names_or_all() {
    let remote = Remote::git();
    let a = first(&remote, false);
    a.add("gh/two", "two-first", &[]);
    sync(&a);
    let b = clone(&remote, false);
    for (t, side) in [(&a, "a"), (&b, "b")] {
        t.ok(&["rotate", "gh/ci"], &format!("ci-on-{side}"));
        t.ok(&["rotate", "gh/two"], &format!("two-on-{side}"));
    }
    settle(&[&a, &b]);
    let conflicts = |t: &TestVault| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&t.ok(&["--json", "sync", "status"], "")).expect("json");
        let mut names: Vec<String> = (v["conflicts"].as_array().expect("conflicts").iter())
            .map(|n| n.as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(conflicts(&a), ["gh/ci", "gh/two"]);
    // A name that is not there refuses the whole request: nothing is marked.
    a.fails(&["sync", "resolve", "gh/ci", "gh/none"], "", 4);
    assert_eq!(conflicts(&a), ["gh/ci", "gh/two"]);
    let out = a.ok(&["sync", "resolve", "--all"], "");
    assert!(
        out.contains("conflict on gh/ci answered") && out.contains("conflict on gh/two answered"),
        "{out}"
    );
    assert!(conflicts(&a).is_empty());
    assert!(
        a.ok(&["sync", "resolve", "--all"], "")
            .contains("no open conflict")
    );
    b.ok(&["sync", "resolve", "gh/ci", "gh/two"], "");
    assert!(conflicts(&b).is_empty());
    a.fails(&["sync", "resolve"], "", 2);
}

#[test]
fn a_read_only_clone_publishes_nothing_and_adds_no_device() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let head = || git_ok(&remote.repo(), &["rev-parse", "jeton"]);
    let before = head();
    let ci = TestVault::empty();
    let out = ci.ok(&["sync", "clone", "--read-only", &remote.url()], "");
    assert!(out.contains("read-only: nothing published"), "{out}");
    assert_eq!(get(&ci, "gh/ci"), "ghp-first-secret");
    assert_eq!(head(), before, "a read-only clone pushed");
    // It keeps reading what the others publish, and never writes, even after a local change.
    a.ok(&["rotate", "gh/ci"], "rotated-later");
    sync(&a);
    let published = head();
    ci.add("ci/local", "local-only", &[]);
    let out = sync(&ci);
    assert!(
        out.contains("1 local change(s) stay here") && out.contains("not published: ci/local"),
        "{out}"
    );
    assert_eq!(get(&ci, "gh/ci"), "rotated-later");
    assert_eq!(head(), published, "a read-only device pushed");
    let status: serde_json::Value =
        serde_json::from_str(&a.ok(&["--json", "sync", "status"], "")).expect("json");
    assert_eq!(
        status["devices"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
}

#[test]
fn adopt_key_asks_for_the_other_devices_passphrase_once() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    let new = "a new passphrase for every device, long enough";
    a.passwd(new);
    let mut c = a.cmd();
    c.env("JETON_PASSPHRASE", new);
    assert!(a.run_with(c, &["sync"], "").status.success());
    let (code, text) = on_tty(
        &b,
        &[("the passphrase set on the other device: ", new)],
        &["sync", "--adopt-key"],
        true,
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("again"), "{text}");
    let mut c = b.cmd();
    c.env("JETON_PASSPHRASE", new);
    assert!(b.run_with(c, &["list"], "").status.success());
}

/// A value waiting for a choice: (entry, field, current, other).
type Choice = (String, String, String, String);

/// `sync status --json`: the entries with an open conflict, and each value waiting for a
/// choice as (entry, field, current, other).
fn waiting(t: &TestVault) -> (Vec<String>, Vec<Choice>) {
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "sync", "status"], "")).expect("json");
    let s = |v: &serde_json::Value| v.as_str().expect("string").to_owned();
    let names = v["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(s)
        .collect();
    let choices = (v["choices"].as_array().expect("choices").iter())
        .map(|c| {
            (
                s(&c["name"]),
                s(&c["field"]),
                s(&c["current"]),
                s(&c["other"]),
            )
        })
        .collect();
    (names, choices)
}

fn show(t: &TestVault, name: &str) -> serde_json::Value {
    serde_json::from_str(&t.ok(&["show", name, "--json"], "")).expect("json")
}

#[test]
fn edits_of_different_fields_on_two_devices_are_all_kept_without_a_conflict() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    // Rename against note; url against tag in the same second; scope added against scope
    // removed.
    a.ok(&["rename", "gh/ci", "gh/deploy"], "");
    b.ok(&["edit", "gh/ci", "--note", "from b"], "");
    a.ok(&["edit", "gh/deploy", "--url", "https://a.example.com"], "");
    b.ok(&["edit", "gh/ci", "--add-tag", "prod"], "");
    a.ok(&["edit", "gh/deploy", "--add-scope", "write"], "");
    b.ok(&["edit", "gh/ci", "--rm-scope", "repo"], "");
    let mut out = sync(&a);
    out.push_str(&sync(&b));
    out.push_str(&sync(&a));
    assert!(!out.contains("two devices"), "{out}");
    for t in [&a, &b] {
        let e = show(t, "gh/deploy");
        assert_eq!(e["note"], "from b", "{e}");
        assert_eq!(e["url"], "https://a.example.com", "{e}");
        assert_eq!(e["tags"], serde_json::json!(["prod"]), "{e}");
        assert_eq!(e["scopes"], serde_json::json!(["write"]), "{e}");
        assert_eq!(waiting(t), (vec![], vec![]));
        let check = t.run(&["check", "--json"], "");
        assert!(!String::from_utf8_lossy(&check.stdout).contains("sync_conflict"));
    }
    assert_eq!(content(&a), content(&b));
}

#[test]
fn one_field_changed_on_two_devices_waits_for_a_choice_and_resolve_all_settles_it() {
    let remote = Remote::git();
    let a = first(&remote, false);
    a.add("gh/two", "two-secret", &[]);
    sync(&a);
    let b = clone(&remote, false);
    a.ok(&["edit", "gh/ci", "--note", "note a"], "");
    b.ok(&["edit", "gh/ci", "--note", "note b"], "");
    a.ok(&["edit", "gh/two", "--url", "https://a.example.com"], "");
    b.ok(&["edit", "gh/two", "--url", "https://b.example.com"], "");
    sync(&a);
    let out = sync(&b);
    assert!(out.contains("changed on two devices at once"), "{out}");
    sync(&a);
    let (names, choices) = waiting(&b);
    assert_eq!(names, ["gh/ci", "gh/two"]);
    assert_eq!(waiting(&a), (names, choices.clone()));
    let mut values: Vec<&str> = (choices.iter())
        .flat_map(|(_, _, cur, other)| [cur.as_str(), other.as_str()])
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            "https://a.example.com",
            "https://b.example.com",
            "note a",
            "note b"
        ]
    );
    let fields: Vec<&str> = choices.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(fields, ["note", "url"]);
    // The current values are what `show` says, with the other one waiting; b takes the others.
    let shown = show(&b, "gh/ci");
    assert_eq!(shown["note"], choices[0].2.as_str());
    assert_eq!(shown["waiting"][0]["field"], "note", "{shown}");
    assert_eq!(
        shown["waiting"][0]["other"],
        choices[0].3.as_str(),
        "{shown}"
    );
    let text = b.ok(&["show", "gh/ci"], "");
    assert!(
        text.contains(&format!("waiting  note: {}", choices[0].3)),
        "{text}"
    );
    let others: Vec<String> = choices.iter().map(|c| c.3.clone()).collect();
    let out = b.ok(&["sync", "resolve", "--all", "--take-other"], "");
    assert!(out.contains("took the other device's values"), "{out}");
    settle(&[&a, &b]);
    for t in [&a, &b] {
        assert_eq!(waiting(t), (vec![], vec![]));
        assert!(show(t, "gh/ci").get("waiting").is_none());
        assert_eq!(show(t, "gh/ci")["note"], others[0].as_str());
        assert_eq!(show(t, "gh/two")["url"], others[1].as_str());
    }
    let list = |t: &TestVault| t.ok(&["list", "--json", "--status", "all"], "");
    assert_eq!(list(&a), list(&b));
    assert_eq!(content(&a), content(&b));
    // With nothing waiting, --take-other has nothing to take.
    b.fails(&["sync", "resolve", "gh/ci", "--take-other"], "", 2);
}

/// The format 2 vectors (tests/data/sync-v2, made by the release that wrote format 2): device A's
/// vault with edits not yet synced, and a folder remote with A's and B's format 2 replicas.
const V2_PASS: &str = "jeton format v2 test vector";

fn v2_ok(t: &TestVault, args: &[&str]) -> String {
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", V2_PASS);
    let out = t.run_with(c, args, "");
    assert!(
        out.status.success(),
        "jeton {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn a_vault_and_replicas_of_format_2_sync_with_devices_on_format_3() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sync-v2");
    let folder = Remote::folder();
    let shared = folder.shared();
    std::fs::create_dir(shared.join("replicas")).expect("mkdir");
    std::fs::copy(
        data.join("remote/jeton-sync.json"),
        shared.join("jeton-sync.json"),
    )
    .expect("copy");
    for f in [
        "2f840b04c0c56129274088db6a4e410c",
        "4878fa452693bff731264c9dbac6ec88",
    ] {
        let name = format!("replicas/{f}.jeton");
        std::fs::copy(data.join("remote").join(&name), shared.join(&name)).expect("copy");
    }
    let a = TestVault::empty();
    std::fs::create_dir_all(a.vault_path().parent().expect("dir")).expect("mkdir");
    std::fs::copy(data.join("a.jeton"), a.vault_path()).expect("copy");
    assert_eq!(&a.vault_bytes()[8..10], &2u16.to_le_bytes());
    let ws = PathBuf::from(format!("{}.sync", a.vault_path().display()));
    std::fs::create_dir(&ws).expect("mkdir");
    let config = serde_json::json!({
        "remote": {"dir": shared.display().to_string()},
        "vault": "0086dd8292134821b3ece6da40af2089",
    });
    std::fs::write(ws.join("config.json"), config.to_string()).expect("config");

    // A reads its own format 2 vault and B's format 2 replica, and writes format 3.
    let out = v2_ok(&a, &["sync", "-v"]);
    assert!(out.contains("received: svc/api"), "{out}");
    assert_eq!(&a.vault_bytes()[8..10], &3u16.to_le_bytes());
    let api: serde_json::Value =
        serde_json::from_str(&v2_ok(&a, &["show", "svc/api", "--json"])).expect("json");
    // A's url edit, made before the upgrade, stands; format 2 did not record which fields B
    // changed, so B's note and A's waits for a choice rather than being lost.
    assert_eq!(api["url"], "https://a.example.com", "{api}");
    let status: serde_json::Value =
        serde_json::from_str(&v2_ok(&a, &["--json", "sync", "status"])).expect("json");
    let shown = status["choices"].to_string() + &api["note"].to_string();
    assert!(
        shown.contains("note from b") && shown.contains("first note"),
        "{shown}"
    );
    let db: serde_json::Value =
        serde_json::from_str(&v2_ok(&a, &["show", "svc/db", "--json"])).expect("json");
    assert_eq!(db["tags"], serde_json::json!(["db"]), "{db}");
    assert_eq!(db["username"], "dbuser", "{db}");
    assert_eq!(
        v2_ok(&a, &["get", "svc/api"]).trim_end(),
        "tok_v2_api_0123456789"
    );

    // A new device reads A's format 3 replica and B's format 2 one.
    let c = TestVault::empty();
    v2_ok(
        &c,
        &["sync", "clone", "--dir", &shared.display().to_string()],
    );
    v2_ok(&a, &["sync"]);
    let list = |t: &TestVault| v2_ok(t, &["list", "--json", "--status", "all"]);
    assert_eq!(list(&a), list(&c));
    assert_eq!(
        v2_ok(&c, &["get", "svc/db"]).trim_end(),
        "tok_v2_db_0123456789"
    );
}

#[test]
fn a_forgotten_device_leaves_the_remote_and_no_other_device_misses_it() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    let c = clone(&remote, false);
    b.ok(&["sync", "rename-device", "old-laptop"], "");
    b.ok(&["edit", "gh/ci", "--note", "from the old laptop"], "");
    settle(&[&b, &c, &a]);
    let status: serde_json::Value =
        serde_json::from_str(&a.ok(&["--json", "sync", "status"], "")).expect("json");
    let devices = status["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 3, "{status}");
    let old = (devices.iter())
        .find(|d| d["name"] == "old-laptop")
        .expect("b shows its name");
    let old_id = old["id"].as_str().expect("id").to_owned();
    assert_eq!(remote_replicas(&remote).len(), 3);

    a.fails(&["sync", "forget", "no-such-device"], "", 4);
    a.ok(&["sync", "forget", "old-laptop"], "");
    let out = sync(&a);
    assert!(out.contains("forgotten"), "{out}");
    let left = remote_replicas(&remote);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.iter().any(|n| n.starts_with(&old_id)), "{left:?}");
    // c had read b: it takes the forgetting from a's replica instead of calling it a rollback.
    sync(&c);
    let status = c.ok(&["sync", "status"], "");
    assert!(!status.contains("old-laptop"), "{status}");
    // What b published stays merged everywhere.
    for t in [&a, &c] {
        assert_eq!(show(t, "gh/ci")["note"], "from the old laptop");
    }
    // b itself is told, and nothing of its is merged or published.
    b.ok(&["edit", "gh/ci", "--note", "too late"], "");
    let err = b.fails(&["sync"], "", 6);
    assert!(err.contains("forgot this one"), "{err}");
    assert_eq!(remote_replicas(&remote).len(), 2);
    // The device's own record cannot forget itself.
    let mine = a.ok(&["--json", "sync", "status"], "");
    let mine: serde_json::Value = serde_json::from_str(&mine).expect("json");
    let id = mine["devices"][0]["id"].as_str().expect("id");
    a.fails(&["sync", "forget", &id[..8]], "", 2);
}

/// The devices with files in `replicas/` of the remote's branch.
fn remote_replicas(remote: &Remote) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = git(
        dir.path(),
        &["clone", "-q", "-b", "jeton", &remote.url(), "t"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    devices_in(&dir.path().join("t"))
}

/// The files in `replicas/` of the remote's branch, by name.
fn remote_files(remote: &Remote) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    git_ok(
        dir.path(),
        &["clone", "-q", "-b", "jeton", &remote.url(), "t"],
    );
    (replica_files(&dir.path().join("t")).into_iter())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read"))
        })
        .collect()
}

#[test]
fn a_round_publishes_what_changed_and_a_new_device_reads_the_snapshot_and_its_deltas() {
    let remote = Remote::git();
    let a = TestVault::new();
    let env = a.home().join("many.env");
    let lines: String = (0..300)
        .map(|i| format!("TOKEN_{i:03}=tok-{i:03}-0123456789abcdefghijklmnopqrstuvwxyz\n"))
        .collect();
    std::fs::write(&env, lines).unwrap();
    a.ok(&["migrate", "dotenv", &env.display().to_string()], "");
    let name = "svc/edited";
    a.add(name, "tok-edited-0123456789", &[]);
    init(&a, &remote, false);
    let b = clone(&remote, false);
    let a_id = status_id(&a);
    let snapshot = format!("{a_id}.jeton");
    let before = remote_files(&remote);
    let whole = before[&snapshot].len();
    // One entry changed: a delta a small part of the snapshot's size; the snapshot stays.
    assert!(
        before.keys().all(|n| n.len() == 32 + ".jeton".len()),
        "snapshots only: {:?}",
        before.keys()
    );
    a.ok(&["edit", name, "--note", "changed on a"], "");
    sync(&a);
    let after = remote_files(&remote);
    assert_eq!(
        after[&snapshot], before[&snapshot],
        "the snapshot is not rewritten"
    );
    let deltas: Vec<(&String, usize)> = (after.iter())
        .filter(|(n, _)| n.starts_with(&a_id) && **n != snapshot)
        .map(|(n, b)| (n, b.len()))
        .collect();
    assert_eq!(deltas.len(), 1, "{deltas:?}");
    assert!(
        deltas[0].1 * 10 < whole,
        "delta {} bytes, snapshot {whole}",
        deltas[0].1
    );
    sync(&b);
    assert_eq!(show(&b, name)["note"], "changed on a");
    // Rounds go on: the deltas stay bounded, a snapshot takes their place now and then.
    for i in 0..12 {
        a.ok(&["edit", name, "--note", &format!("round {i}")], "");
        sync(&a);
        let n = (remote_files(&remote).keys())
            .filter(|n| n.starts_with(&a_id))
            .count();
        assert!(n <= 1 + 8, "{n} files of a");
    }
    // A new device reads the snapshot and the deltas after it, and has everything; it fetched
    // the newest commit only, not the rounds before.
    let c = clone(&remote, false);
    let mut ws = c.vault_path().into_os_string();
    ws.push(".sync");
    let commits = git(
        &Path::new(&ws).join("git"),
        &["rev-list", "--count", "refs/remotes/origin/jeton"],
    );
    assert_eq!(String::from_utf8_lossy(&commits.stdout).trim(), "1");
    sync(&b);
    for t in [&b, &c] {
        assert_eq!(show(t, name)["note"], "round 11");
        assert_eq!(content(t), content(&a));
    }
}

fn status_id(t: &TestVault) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["sync", "status", "--json"], "")).unwrap();
    v["devices"][0]["id"].as_str().unwrap().to_owned()
}

#[test]
fn compact_leaves_one_commit_and_every_device_syncs_on() {
    let remote = Remote::git();
    let a = first(&remote, false);
    let b = clone(&remote, false);
    for i in 0..3 {
        a.ok(&["edit", "gh/ci", "--note", &format!("round {i}")], "");
        sync(&a);
        sync(&b);
    }
    let count = || {
        let out = git(&remote.repo(), &["rev-list", "--count", "jeton"]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    assert!(count() > 3, "{}", count());
    let files = remote_files(&remote);
    let out = a.ok(&["sync", "compact"], "");
    assert!(out.contains("one commit"), "{out}");
    assert_eq!(count(), 1);
    assert_eq!(remote_files(&remote), files, "the files stay as they were");
    // Every device syncs on, a new one clones, and all agree.
    b.ok(&["edit", "gh/ci", "--note", "after compact"], "");
    sync(&b);
    sync(&a);
    let c = clone(&remote, false);
    for t in [&a, &c] {
        assert_eq!(show(t, "gh/ci")["note"], "after compact");
        assert_eq!(content(t), content(&b));
    }
    // A shared folder keeps no history.
    let folder = Remote::folder();
    let d = first(&folder, true);
    let out = d.ok(&["sync", "compact"], "");
    assert!(out.contains("nothing to compact"), "{out}");
}
