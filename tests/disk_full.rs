//! Disk full and I/O errors during a save (SPEC §2): on a full tmpfs (ENOSPC) and with EIO or
//! ENOSPC injected into each file system call of the save path, the command fails with one clear
//! error line and a non-zero exit, the old vault stays byte-identical (or, when only the final
//! directory fsync fails, the vault is whole), no zero-length vault and no temporary file remain,
//! and the next write succeeds.

mod hardening;
mod support;
use hardening::*;
use std::path::Path;
use std::process::Command;
use support::*;

/// Runs `script` with `sh` in a private mount namespace, with the test vault's environment plus
/// `extra` variables. Returns the script's exit code.
fn in_mount_namespace(t: &TestVault, extra: &[(&str, &Path)], script: &str) -> i32 {
    let jeton = t.cmd();
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c", script]);
    c.env_clear();
    for (k, v) in jeton.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.env("JETON", jeton.get_program());
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = t.run_with(c, &[], "");
    assert!(
        out.status.code() != Some(90),
        "mounting the tmpfs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exit_of(&out)
}

#[test]
fn a_full_disk_leaves_the_old_vault_intact() {
    require_private_tmpfs();
    let t = TestVault::new();
    for i in 0..5 {
        t.add(&format!("svc/{i}"), CANARY, &["--note", &"n".repeat(200)]);
    }
    let before = t.vault_bytes();
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("mnt");
    let out = work.path().join("out");
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let script = r#"
        mount -t tmpfs -o size=256k,mode=0700 tmpfs "$D" || exit 90
        cp "$SRC" "$D/vault.jeton" && chmod 600 "$D/vault.jeton" || exit 91
        dd if=/dev/zero of="$D/filler" bs=1024 2>/dev/null
        printf 'new secret' | "$JETON" --vault "$D/vault.jeton" add full/new >/dev/null 2>"$OUT/stderr"
        echo $? > "$OUT/code"
        ls -A "$D" > "$OUT/listing"
        cp "$D/vault.jeton" "$OUT/vault.after"
        rm -f "$D/filler"
        printf 'new secret' | "$JETON" --vault "$D/vault.jeton" add full/new >/dev/null 2>"$OUT/stderr2"
        echo $? > "$OUT/code2"
        ls -A "$D" > "$OUT/listing2"
        cp "$D/vault.jeton" "$OUT/vault.final"
    "#;
    let code = in_mount_namespace(
        &t,
        &[("D", &mnt), ("OUT", &out), ("SRC", &t.vault_path())],
        script,
    );
    assert_eq!(code, 0, "the script failed");
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let stderr = read("stderr");
    assert_eq!(read("code").trim(), "1", "add on a full disk: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(
        stderr.starts_with("jeton: error: ") && stderr.contains("No space left on device"),
        "{stderr}"
    );
    assert!(!stderr.contains(CANARY));
    assert_eq!(
        std::fs::read(out.join("vault.after")).unwrap(),
        before,
        "the vault changed on a full disk"
    );
    let listing = read("listing");
    assert!(
        !listing.contains(".tmp"),
        "temp file left on a full disk: {listing}"
    );
    // Once there is room again, the same add succeeds and cleans up.
    assert_eq!(read("code2").trim(), "0", "{}", read("stderr2"));
    assert!(!read("listing2").contains(".tmp"), "{}", read("listing2"));
    std::fs::write(
        t.vault_path(),
        std::fs::read(out.join("vault.final")).unwrap(),
    )
    .unwrap();
    assert!(entry_names_with(&t, &["--accept-rollback"]).contains("full/new"));
}

/// One injected failure: the system call, which occurrence, the errno.
struct Fault {
    call: &'static str,
    nth: u32,
    errno: &'static str,
    /// What the failure leaves.
    outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// Exit 1; the old vault is untouched.
    Refused,
    /// Exit 1; the new vault is already in place (only its durability is in doubt).
    FailedAfterRename,
    /// Exit 0 with a warning: only the rollback memory could not be written.
    Warned,
}

/// The save path's file system calls that can fail, located in a traced `add`.
fn faults(t: &TestVault) -> Vec<Fault> {
    let calls = trace_add(t, "probe");
    let dir = t
        .vault_path()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let vault = format!("\"{}\"", t.vault_path().display());
    let temp = format!("\"{dir}/.vault.jeton.tmp.");
    let create = calls
        .iter()
        .find(|c| c.name == "openat" && c.line.contains(&temp))
        .expect("temp file creation");
    let fd = create.line.rsplit("= ").next().unwrap().trim().to_owned();
    let find = |pred: &dyn Fn(&Call) -> bool, what: &str| -> u32 {
        calls
            .iter()
            .find(|c| pred(c))
            .unwrap_or_else(|| panic!("no {what} in the trace"))
            .nth
    };
    let write = find(
        &|c| c.name == "write" && c.line.starts_with(&format!("write({fd}, ")),
        "temp write",
    );
    let fsync = find(
        &|c| c.name == "fsync" && c.line.starts_with(&format!("fsync({fd}")),
        "temp fsync",
    );
    let link = find(&|c| c.name == "linkat", "backup link");
    let rename = find(
        &|c| c.name == "rename" && c.line.contains(&temp) && c.line.contains(&vault),
        "vault rename",
    );
    let dir_quoted = format!("\"{dir}\"");
    let dir_open = calls
        .iter()
        .position(|c| {
            c.name == "openat" && c.line.contains(&dir_quoted) && !c.line.contains("O_DIRECTORY")
        })
        .expect("open of the vault directory for fsync");
    let dir_fd = calls[dir_open]
        .line
        .rsplit("= ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let dir_fsync = calls[dir_open..]
        .iter()
        .find(|c| c.name == "fsync" && c.line.starts_with(&format!("fsync({dir_fd}")))
        .expect("directory fsync")
        .nth;
    let state_fsync = calls
        .iter()
        .filter(|c| c.name == "fsync")
        .map(|c| c.nth)
        .max()
        .unwrap();
    assert!(
        state_fsync > dir_fsync,
        "no fsync of the rollback memory after the save"
    );
    assert!(dir_fsync > fsync, "no directory fsync after the temp fsync");
    use Outcome::*;
    let f = |call, nth, errno, outcome| Fault {
        call,
        nth,
        errno,
        outcome,
    };
    vec![
        f("openat", create.nth, "ENOSPC", Refused),
        f("openat", create.nth, "EACCES", Refused),
        f("write", write, "EIO", Refused),
        f("write", write, "ENOSPC", Refused),
        f("fsync", fsync, "EIO", Refused),
        f("linkat", link, "EIO", Refused),
        f("rename", rename, "EIO", Refused),
        f("rename", rename, "ENOSPC", Refused),
        f("fsync", dir_fsync, "EIO", FailedAfterRename),
        f("fsync", state_fsync, "EIO", Warned),
    ]
}

#[test]
fn injected_io_errors_fail_cleanly() {
    require_strace_injection();
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let dir = t.vault_path().parent().unwrap().to_owned();
    for (i, fault) in faults(&t).iter().enumerate() {
        let before = t.vault_bytes();
        let names = entry_names(&t);
        let name = format!("io/{i}");
        let what = format!("{} #{} -> {}", fault.call, fault.nth, fault.errno);
        let error = format!("error={}", fault.errno);
        let out = inject_at(&t, fault.call, fault.nth, &error, &["add", &name], "secret");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let os_text = match fault.errno {
            "EIO" => "Input/output error",
            "ENOSPC" => "No space left on device",
            _ => "Permission denied",
        };
        assert!(stderr.contains(os_text), "{what}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
        if fault.outcome == Outcome::Warned {
            assert_eq!(exit_of(&out), 0, "{what}: {stderr}");
            assert!(stderr.starts_with("jeton: warning: "), "{what}: {stderr}");
        } else {
            assert_eq!(exit_of(&out), 1, "{what}: {stderr}");
            assert!(stderr.starts_with("jeton: error: "), "{what}: {stderr}");
        }
        let after = t.vault_bytes();
        assert!(!after.is_empty(), "{what}: zero-length vault");
        if fault.outcome == Outcome::Refused {
            assert_eq!(after, before, "{what}: the vault changed");
        } else {
            let mut with_new = names.clone();
            with_new.insert(name.clone());
            assert_eq!(entry_names(&t), with_new, "{what}");
        }
        let state = t.home().join(".local/state/jeton");
        assert!(
            temp_files(&state).is_empty()
                && !std::fs::read_dir(&state)
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(".generations")),
            "{what}: temp files left in the state directory"
        );
        assert!(
            temp_files(&dir).is_empty(),
            "{what}: temp files left: {:?}",
            temp_files(&dir)
        );
        t.add(&format!("{name}/next"), "x", &[]);
    }
}
