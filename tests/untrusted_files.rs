//! Files jeton did not write itself: a vault path that is a device, a FIFO, a huge sparse file
//! or a symbolic link; a lock file planted as a link; inputs named by the user that never end.
//! Each runs under an address-space limit (`prlimit --as`) and a deadline: jeton must refuse
//! with one clear line, never exhaust memory, never hang, never write through a planted link.

mod hardening;
mod support;
use hardening::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Far below what an unbounded read of `/dev/zero` or a 3 GiB file would need, far above what
/// jeton needs (a 64 MiB import source is the largest capped input).
const AS_LIMIT: u64 = 512 << 20;
const HANG: Duration = Duration::from_secs(30);

/// Runs `cmd` (a jeton command with its environment) under the memory limit and the deadline.
fn run_limited(t: &TestVault, cmd: Command, args: &[&str]) -> Output {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={AS_LIMIT}"))
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .args(args)
        .env_clear()
        .current_dir(t.home())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let started = Instant::now();
    let mut child = c.spawn().expect("prlimit (util-linux)");
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("jeton {args:?} was still running after {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_no_panic(&out);
    out
}

/// Asserts exit `code` and one `jeton: error:` line containing `needle`.
fn refused(out: &Output, code: i32, needle: &str, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(exit_of(out), code, "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err}");
    assert!(err.starts_with("jeton: error: "), "{what}: {err}");
    assert!(err.contains(needle), "{what}: expected '{needle}': {err}");
}

fn sparse_file(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}

fn fifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success());
}

#[test]
fn a_vault_path_that_is_not_a_regular_file_is_refused_without_reading_it() {
    require("prlimit (util-linux)", runs("prlimit", &["--version"]));
    let t = TestVault::empty();
    let sparse = t.home().join("sparse.jeton");
    sparse_file(&sparse, 3 << 30);
    let pipe = t.home().join("pipe.jeton");
    fifo(&pipe);
    for (vault, needle) in [
        (Path::new("/dev/zero"), "not a regular file"),
        (&pipe, "not a regular file"),
        (&sparse, "too large"),
    ] {
        for args in [&["get", "x"][..], &["add", "x", "--generate"]] {
            let mut c = t.cmd();
            c.env("JETON_VAULT", vault);
            let out = run_limited(&t, c, args);
            refused(&out, 6, needle, &format!("{} {args:?}", vault.display()));
        }
    }
}

#[test]
fn backup_verify_never_reads_an_endless_or_huge_file() {
    require("prlimit (util-linux)", runs("prlimit", &["--version"]));
    let t = TestVault::new();
    let key = t.home().join("id.key");
    std::fs::write(
        &key,
        "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n",
    )
    .unwrap();
    let k = key.to_str().unwrap();
    let sparse = t.home().join("sparse.age");
    sparse_file(&sparse, 3 << 30);
    let pipe = t.home().join("pipe.age");
    fifo(&pipe);
    for (file, code, needle) in [
        ("/dev/zero", 2, "not a regular file"),
        (pipe.to_str().unwrap(), 2, "not a regular file"),
        (sparse.to_str().unwrap(), 6, "age header is longer"),
    ] {
        let out = run_limited(&t, t.cmd(), &["backup", "verify", file, "--identity", k]);
        refused(&out, code, needle, file);
    }
    // The identity file is capped too.
    let out = run_limited(
        &t,
        t.cmd(),
        &[
            "backup",
            "verify",
            sparse.to_str().unwrap(),
            "--identity",
            "/dev/zero",
        ],
    );
    refused(&out, 2, "larger than 1 MiB", "identity /dev/zero");
}

#[test]
fn every_file_named_by_the_user_is_read_capped() {
    require("prlimit (util-linux)", runs("prlimit", &["--version"]));
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let endless = "/dev/zero";
    let with = |var: &str| {
        let mut c = t.cmd();
        c.env_remove("JETON_PASSPHRASE").env(var, endless);
        c
    };
    let cases: Vec<(&str, Command, Vec<&str>, i32, &str)> = vec![
        (
            "JETON_PASSPHRASE_FILE",
            with("JETON_PASSPHRASE_FILE"),
            vec!["get", "svc/a"],
            2,
            "larger than 1 MiB",
        ),
        (
            "JETON_NEW_PASSPHRASE_FILE",
            {
                let mut c = t.cmd();
                c.env("JETON_NEW_PASSPHRASE_FILE", endless);
                c
            },
            vec!["passwd"],
            2,
            "larger than 1 MiB",
        ),
        (
            "JETON_RECOVERY_KEY_FILE",
            with("JETON_RECOVERY_KEY_FILE"),
            vec!["recover"],
            2,
            "larger than 1 MiB",
        ),
        (
            "exec --env-file",
            t.cmd(),
            vec!["exec", "--env-file", endless, "--", "true"],
            2,
            "larger than 16 MiB",
        ),
        (
            "inject -i",
            t.cmd(),
            vec!["inject", "-i", endless],
            2,
            "larger than 16 MiB",
        ),
        (
            "import",
            t.cmd(),
            vec!["import", endless],
            6,
            "larger than 16 MiB",
        ),
        (
            "migrate dotenv",
            t.cmd(),
            vec!["migrate", "dotenv", endless, "--dry-run"],
            2,
            "larger than 64 MiB",
        ),
    ];
    let before = t.vault_bytes();
    for (what, cmd, args, code, needle) in cases {
        let out = run_limited(&t, cmd, &args);
        refused(&out, code, needle, what);
    }
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn an_endless_rollback_memory_file_is_not_read_whole() {
    require("prlimit (util-linux)", runs("prlimit", &["--version"]));
    let t = TestVault::new();
    let memory = t.home().join(".local/state/jeton/generations.json");
    std::fs::remove_file(&memory).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &memory).unwrap();
    let mut c = t.cmd();
    c.args(["add", "svc/a", "--generate"]);
    let out = run_limited(&t, c, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_lock_file_planted_as_a_link_is_not_followed() {
    let t = TestVault::new();
    let lock = t.vault_path().with_file_name("vault.jeton.lock");
    let _ = std::fs::remove_file(&lock);
    let target = t.home().join("created-through-the-link");
    std::os::unix::fs::symlink(&target, &lock).unwrap();
    let before = t.vault_bytes();
    let err = t.fails(&["add", "svc/a"], "x", 1);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!target.exists(), "jeton created the link's target");
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn a_symlinked_vault_is_saved_to_its_target() {
    use std::os::unix::fs::symlink;
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let link = t.vault_path();
    let dir = link.parent().unwrap().to_owned();
    let elsewhere = t.home().join("synced");
    std::fs::create_dir(&elsewhere).unwrap();
    let target = elsewhere.join("my.jeton");
    std::fs::rename(&link, &target).unwrap();
    for f in ["vault.jeton.bak", "vault.jeton.lock"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    // A relative link, resolved from the link's directory.
    symlink("../../../synced/my.jeton", &link).unwrap();
    t.add("svc/b", "second", &[]);
    t.ok(&["revoke", "--yes", "svc/a"], "");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced by a file"
    );
    assert_eq!(t.ok(&["get", "svc/b"], ""), "second\n");
    assert!(elsewhere.join("my.jeton.bak").exists());
    assert!(elsewhere.join("my.jeton.lock").exists());
    for f in ["vault.jeton.bak", "vault.jeton.lock"] {
        assert!(!dir.join(f).exists(), "{f} beside the link");
    }
    // A link whose target does not exist yet: init creates the target, keeps the link.
    let u = TestVault::empty();
    let link = u.vault_path();
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let target = u.home().join("later/v.jeton");
    symlink(&target, &link).unwrap();
    u.ok(&[&["init"][..], &CHEAP_KDF].concat(), "");
    assert!(target.is_file());
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    u.add("x", "y", &[]);
    assert_eq!(u.ok(&["get", "x"], ""), "y\n");
}

#[test]
fn output_files_replace_a_link_instead_of_writing_through_it() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let victim = t.home().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    for (i, args) in [
        vec!["backup", "--force", "-o"],
        vec!["inject", "-i", "tpl", "-o"],
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(t.home().join("tpl"), "x={{ jeton://svc/a }}\n").unwrap();
        let out = t.home().join(format!("out-{i}"));
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let mut c = t.cmd();
        c.current_dir(t.home());
        let o = out.to_str().unwrap();
        let r = t.run_with(c, &[&args[..], &[o]].concat(), "");
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_file());
    }
}
