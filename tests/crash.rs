//! Crash safety of saves (SPEC §2, §10): the save sequence as traced, kill -9 delivered at every
//! file system call a save makes (strace fault injection), and a seeded loop of random kills.
//! Afterwards the vault always opens with the passphrase and holds exactly the old or the new
//! content, stale temporary files do no harm, and the next write succeeds and cleans them up.

mod hardening;
mod support;
use hardening::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

/// The calls from the one that takes the writer lock to the end of the process.
fn after_lock(calls: &[Call]) -> &[Call] {
    let at = calls
        .iter()
        .position(|c| c.name == "flock" && c.line.contains("LOCK_EX"))
        .expect("the traced add never took the writer lock (flock LOCK_EX)");
    &calls[at..]
}

#[test]
fn the_save_sequence_is_temp_write_fsync_rename_fsync_dir() {
    require_strace_injection();
    let t = TestVault::new();
    t.add("before", "x", &[]);
    let calls = trace_add(&t, "traced");
    let dir = t
        .vault_path()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let vault = t.vault_path().to_str().unwrap().to_owned();
    let pos = |pred: &dyn Fn(&Call) -> bool, what: &str| {
        calls
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no {what} in the trace: {calls:#?}"))
    };
    // Returns the fd number a call returned ("... = 4").
    let fd_of = |c: &Call| c.line.rsplit("= ").next().unwrap().trim().to_owned();
    let lock = pos(
        &|c| c.name == "flock" && c.line.contains("LOCK_EX"),
        "flock",
    );
    let temp_prefix = format!("\"{dir}/.vault.jeton.tmp.");
    let create = pos(
        &|c| c.name == "openat" && c.line.contains(&temp_prefix),
        "temp file creation",
    );
    let create_line = &calls[create].line;
    for flag in ["O_WRONLY", "O_CREAT", "O_EXCL", "0600"] {
        assert!(
            create_line.contains(flag),
            "temp file not created with {flag}: {create_line}"
        );
    }
    let fd = fd_of(&calls[create]);
    let write = pos(
        &|c| c.name == "write" && c.line.starts_with(&format!("write({fd}, \"JETONVLT")),
        "write of the temp file",
    );
    let fsync = pos(
        &|c| c.name == "fsync" && c.line.starts_with(&format!("fsync({fd}")),
        "fsync of the temp file",
    );
    let rename = pos(
        &|c| {
            c.name.starts_with("rename")
                && c.line.contains(&temp_prefix)
                && c.line.contains(&format!("\"{vault}\""))
        },
        "rename over the vault",
    );
    let dir_open = rename
        + calls[rename..]
            .iter()
            .position(|c| c.name == "openat" && c.line.contains(&format!("\"{dir}\"")))
            .expect("no open of the vault directory after the rename");
    let dir_fd = fd_of(&calls[dir_open]);
    let dir_fsync = dir_open
        + calls[dir_open..]
            .iter()
            .position(|c| c.name == "fsync" && c.line.starts_with(&format!("fsync({dir_fd}")))
            .expect("no fsync of the vault directory");
    assert!(
        lock < create && create < write && write < fsync && fsync < rename && rename < dir_fsync,
        "save order wrong: lock {lock}, create {create}, write {write}, fsync {fsync}, \
         rename {rename}, dir fsync {dir_fsync}"
    );
    // The vault path itself is never opened for writing, created or truncated.
    for c in &calls {
        if c.name.starts_with("open") && c.line.contains(&format!("\"{vault}\"")) {
            for bad in ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"] {
                assert!(!c.line.contains(bad), "vault opened with {bad}: {}", c.line);
            }
        }
        if c.name == "truncate" || c.name == "ftruncate" {
            panic!("a save truncates a file: {}", c.line);
        }
    }
    // The temp file is in the vault's own directory (so the rename is atomic) and mode 0600.
    assert!(temp_files(Path::new(&dir)).is_empty());
    let bak = t.vault_path().with_file_name("vault.jeton.bak");
    use std::os::unix::fs::PermissionsExt;
    for f in [t.vault_path(), bak] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
}

/// What a kill left: `Some(true)` new content, `Some(false)` old content. Panics otherwise.
fn check_old_or_new(t: &TestVault, old: &BTreeSet<String>, new_name: &str, what: &str) -> bool {
    let vault = t.vault_path();
    let len = std::fs::metadata(&vault)
        .unwrap_or_else(|e| panic!("{what}: vault gone: {e}"))
        .len();
    assert!(len > 0, "{what}: zero-length vault");
    let now = entry_names(t);
    let mut with_new = old.clone();
    with_new.insert(new_name.to_owned());
    assert!(
        now == *old || now == with_new,
        "{what}: vault holds neither the old nor the new content: {now:?}"
    );
    // The backup, when present, is a whole vault too.
    let bak = vault.with_file_name("vault.jeton.bak");
    if bak.exists() {
        let b = TestVault::empty();
        std::fs::create_dir_all(b.vault_path().parent().unwrap()).unwrap();
        std::fs::copy(&bak, b.vault_path()).unwrap();
        entry_names(&b);
    }
    now == with_new
}

#[test]
fn kill_at_every_file_syscall_of_a_save() {
    require_strace_injection();
    let t = TestVault::new();
    t.add("base", CANARY, &[]);
    let reference = trace_add(&t, "reference");
    let targets: Vec<Call> = after_lock(&reference)
        .iter()
        .filter(|c| FILE_CALLS.contains(&c.name.as_str()))
        .cloned()
        .collect();
    assert!(
        targets.iter().any(|c| c.name.starts_with("rename")) && targets.len() >= 10,
        "the traced save path looks wrong: {targets:#?}"
    );
    let mut names = entry_names(&t);
    let (mut old, mut new) = (0, 0);
    for (i, c) in targets.iter().enumerate() {
        let name = format!("k{i}");
        let out = inject_at(
            &t,
            &c.name,
            c.nth,
            "signal=SIGKILL",
            &["add", &name],
            "secret",
        );
        let what = format!("kill before {} #{} ({})", c.name, c.nth, c.line);
        assert_eq!(
            exit_of(&out),
            128 + 9,
            "{what}: the kill did not land: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if check_old_or_new(&t, &names, &name, &what) {
            new += 1;
            names.insert(name);
        } else {
            old += 1;
        }
        // The next write succeeds and leaves no temporary file behind.
        let next = format!("after{i}");
        t.add(&next, "x", &[]);
        names.insert(next);
        let dir = t.vault_path().parent().unwrap().to_owned();
        assert!(
            temp_files(&dir).is_empty(),
            "{what}: stale temp files after the next write: {:?}",
            temp_files(&dir)
        );
    }
    assert_eq!(entry_names(&t), names);
    assert_eq!(t.ok(&["get", "-n", "base"], ""), CANARY);
    eprintln!(
        "strace kills: {} syscalls of the save path, {old} left the old content, {new} the new",
        targets.len()
    );
    assert!(
        old > 0 && new > 0,
        "kills never landed on both sides of the rename"
    );
}

/// True when the backup, opened with the passphrase, gives `secret` for `name`.
fn backup_yields(t: &TestVault, name: &str, secret: &str) -> bool {
    let bak = t.vault_path().with_file_name("vault.jeton.bak");
    if !bak.exists() {
        return false;
    }
    let b = TestVault::empty();
    std::fs::create_dir_all(b.vault_path().parent().unwrap()).unwrap();
    std::fs::copy(&bak, b.vault_path()).unwrap();
    [&["get", name][..], &["history", name, "--reveal"]]
        .iter()
        .any(|args| String::from_utf8_lossy(&b.run(args, "").stdout).contains(secret))
}

#[test]
fn kill_at_every_file_syscall_of_a_save_that_forgets_the_previous_file() {
    require_strace_injection();
    let t = TestVault::new();
    t.add("base", CANARY, &[]);
    t.add("reference", "x", &[]);
    let reference = trace(&t, &["revoke", "--yes", "reference"], "");
    let targets: Vec<Call> = after_lock(&reference)
        .iter()
        .filter(|c| FILE_CALLS.contains(&c.name.as_str()))
        .cloned()
        .collect();
    assert!(
        targets
            .iter()
            .filter(|c| c.name.starts_with("rename"))
            .count()
            >= 2,
        "the traced save path looks wrong: {targets:#?}"
    );
    let (mut old, mut new) = (0, 0);
    for (i, c) in targets.iter().enumerate() {
        let name = format!("v{i}");
        let secret = format!("wiped-{i}-value");
        t.add(&name, &secret, &[]);
        let out = inject_at(
            &t,
            &c.name,
            c.nth,
            "signal=SIGKILL",
            &["revoke", "--yes", &name],
            "",
        );
        let what = format!("kill before {} #{} ({})", c.name, c.nth, c.line);
        assert_eq!(exit_of(&out), 128 + 9, "{what}: the kill did not land");
        match t.run(&["get", &name], "").status.code() {
            Some(0) => old += 1,
            Some(5) => {
                new += 1;
                assert!(
                    !backup_yields(&t, &name, &secret),
                    "{what}: the revoke is saved but the backup still holds the secret"
                );
            }
            other => panic!("{what}: the vault does not open ({other:?})"),
        }
        // Finishing the revoke (or revoking nothing new) leaves no temporary file.
        t.ok(&["revoke", "--yes", &name], "");
        assert!(!backup_yields(&t, &name, &secret), "{what}");
        let dir = t.vault_path().parent().unwrap().to_owned();
        assert!(
            temp_files(&dir).is_empty(),
            "{what}: {:?}",
            temp_files(&dir)
        );
    }
    assert_eq!(t.ok(&["get", "-n", "base"], ""), CANARY);
    assert!(old > 0 && new > 0, "kills never landed on both sides");
}

#[test]
fn random_kill_loop() {
    const KILLS: usize = 200;
    let seed: u64 = std::env::var("JETON_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6a65_746f_6e21);
    let mut rng = Rng::new(seed);
    let t = TestVault::new();
    t.add("base", CANARY, &[]);
    // How long an add takes here, so the kills spread over the whole run.
    let started = Instant::now();
    for i in 0..3 {
        t.add(&format!("warm{i}"), "x", &[]);
    }
    let span_us = (started.elapsed().as_micros() as u64 / 3).max(1000) * 3 / 2;
    let mut names = entry_names(&t);
    let dir = t.vault_path().parent().unwrap().to_owned();
    let (mut old, mut new, mut stale_seen) = (0, 0, 0);
    for i in 0..KILLS {
        let name = format!("r{i}");
        let mut c = t.cmd();
        c.args(["add", &name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(b"random-kill secret");
        }
        std::thread::sleep(Duration::from_micros(rng.below(span_us)));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let what = format!("seed {seed:#x}, kill {i}");
        support::assert_no_panic(&out);
        if out.status.code().is_some_and(|c| c != 0) {
            panic!(
                "{what}: add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !temp_files(&dir).is_empty() {
            stale_seen += 1;
        }
        if check_old_or_new(&t, &names, &name, &what) {
            new += 1;
            names.insert(name);
        } else {
            old += 1;
        }
        if i % 25 == 24 {
            let next = format!("after{i}");
            t.add(&next, "x", &[]);
            names.insert(next);
            assert!(
                temp_files(&dir).is_empty(),
                "{what}: temp files survive a write"
            );
        }
    }
    t.add("final", "x", &[]);
    names.insert("final".into());
    assert_eq!(entry_names(&t), names);
    assert!(temp_files(&dir).is_empty());
    assert_eq!(t.ok(&["get", "-n", "base"], ""), CANARY);
    eprintln!(
        "random kills (seed {seed:#x}): {KILLS} kills, {old} left the old content, {new} the new, \
         {stale_seen} left a stale temp file"
    );
}
