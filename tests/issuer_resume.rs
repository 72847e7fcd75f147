//! Resuming a rotation at the issuer after its create call was refused or interrupted, with real
//! processes: the `aws-iam` recipe against moto (the real `aws` CLI, AWS's two-key limit) and
//! against a fake `aws` CLI whose user may hold keys jeton never made, killed (SIGKILL) at every
//! save and every child of the run; and the `command` recipe's run id (`JETON_ROTATION_ID`).
//! Whatever happens, no key that jeton did not make is ever deleted. Last, a secret the
//! rotation's switch cuts from the history is gone from the backup file too.

#[path = "support/aws.rs"]
mod aws_support;
mod support;

use aws_support::{FakeAws, Key, Moto, aws_venv, jeton_aws};
use std::process::{Command, Output};
use support::{CANARY, TestVault};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn error_line(out: &Output) -> String {
    stderr(out)
        .lines()
        .filter(|l| l.starts_with("jeton: error:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// True when strace is there to inject the kills; with `CI=true` it must be.
fn have_strace() -> bool {
    let there = Command::new("strace").arg("-V").output().is_ok();
    assert!(
        there || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but strace is not installed"
    );
    if !there {
        eprintln!("skipped: strace is not installed");
    }
    there
}

/// `jeton ARGS` (with `env` applied) under strace, this process only, killed (SIGKILL) at the
/// `nth` call of `call`; `nth` 0 counts the calls instead, and returns how many.
fn traced(
    t: &TestVault,
    env: &dyn Fn(&mut Command),
    call: &str,
    nth: u32,
    args: &[&str],
) -> (Output, u32) {
    let jeton = t.cmd();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut c = Command::new("strace");
    c.args(["-qq", "-o", log.path().to_str().unwrap()]);
    c.args(["-e", &format!("trace={call}")]);
    if nth > 0 {
        c.args(["-e", &format!("inject={call}:signal=SIGKILL:when={nth}")]);
    }
    c.arg("--").arg(jeton.get_program()).env_clear();
    for (k, v) in jeton.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    env(&mut c);
    let out = t.run_with(c, args, "");
    let calls = std::fs::read_to_string(log.path())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(&format!("{call}(")))
        .count() as u32;
    (out, calls)
}

fn in_progress(t: &TestVault, name: &str) -> bool {
    t.ok(&["issuer", "show", name], "").contains("in progress")
}

/// A vault holding `aws/ci` with the key `k1` and the aws-iam recipe.
fn aws_vault(k1: &Key) -> TestVault {
    let t = TestVault::new();
    t.add("aws/ci", &k1.1, &["--username", &k1.0]);
    t.ok(&["issuer", "set", "aws/ci", "aws-iam"], "");
    t
}

fn key(id: &str) -> Key {
    (id.to_owned(), format!("{id}-secret-{}", std::process::id()))
}

fn current_key(t: &TestVault) -> String {
    t.ok(&["get", "aws/ci", "--field", "username", "-n"], "")
}

// == the issuer refuses: AWS's two-key limit ==

#[test]
fn aws_two_key_limit_with_moto_deletes_nothing_and_names_both_keys() {
    let Some(venv) = aws_venv() else {
        eprintln!("skipped: moto[server] and awscli are not installed (see .ci/run)");
        return;
    };
    let moto = Moto::start(&venv);
    let boot = moto.user_who_manages_own_keys("ci");
    let made = |k: serde_json::Value| -> Key {
        let k = &k["AccessKey"];
        let field = |f: &str| k[f].as_str().unwrap().to_owned();
        (field("AccessKeyId"), field("SecretAccessKey"))
    };
    // K1 is jeton's; K2, made by the user with K1 (authentication is enforced from here on),
    // is a deploy server's that jeton never saw.
    let new_key = ["iam", "create-access-key", "--user-name", "ci"];
    let k1 = made(moto.aws(boot, &new_key).unwrap());
    let k2 = made(moto.aws((&k1.0, &k1.1), &new_key).unwrap());
    let ids = |auth: &Key| -> Vec<String> {
        let mut v: Vec<String> = moto
            .aws((&auth.0, &auth.1), &["iam", "list-access-keys"])
            .unwrap()["AccessKeyMetadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["AccessKeyId"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let mut both = vec![k1.0.clone(), k2.0.clone()];
    both.sort();
    assert_eq!(ids(&k1), both);

    let t = aws_vault(&k1);
    let out = jeton_aws(&t, &moto, &["rotate", "aws/ci", "--at-issuer"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = error_line(&out);
    assert!(
        err.contains("LimitExceeded")
            && err.contains(&format!("{} (this entry's)", k1.0))
            && err.contains(&k2.0)
            && err.contains("jeton deleted none"),
        "{err}"
    );
    assert!(!err.contains(&k2.1), "a secret in the error: {err}");
    assert_eq!(ids(&k1), both);

    // The resume (as cron's `rotate --due --at-issuer` would run it) deletes nothing either.
    let out = jeton_aws(&t, &moto, &["rotate", "aws/ci", "--resume"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("deleted key"), "{}", stderr(&out));
    assert!(
        error_line(&out).contains("LimitExceeded"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ids(&k1), both, "a key jeton did not make was deleted");
    moto.aws((&k2.0, &k2.1), &["sts", "get-caller-identity"])
        .expect("the deploy server's key stopped working");

    // Once the user frees a slot, the resume completes.
    moto.aws(
        (&k2.0, &k2.1),
        &["iam", "delete-access-key", "--access-key-id", &k2.0],
    )
    .unwrap();
    let out = jeton_aws(&t, &moto, &["rotate", "aws/ci", "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new = (current_key(&t), t.ok(&["get", "aws/ci", "-n"], ""));
    assert_eq!(ids(&new), [new.0.as_str()]);
}

#[test]
fn aws_two_key_limit_with_the_fake_cli_then_resume_keeps_the_other_key() {
    let (k1, k2) = (key("AKIAJETON1"), key("AKIADEPLOY2"));
    let aws = FakeAws::new(&[k1.clone(), k2.clone()], 2);
    let t = aws_vault(&k1);
    t.ok(&["edit", "aws/ci", "--rotate-every", "7d"], "");
    let out = aws.jeton(&t, &["rotate", "aws/ci", "--at-issuer"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = error_line(&out);
    assert!(
        err.contains("AWS refused (LimitExceeded); nothing was made")
            && err.contains("2 access keys, AKIAJETON1 (this entry's) and AKIADEPLOY2, the most AWS allows; jeton deleted none")
            && err.contains("--resume"),
        "{err}"
    );
    for _ in 0..2 {
        let out = aws.jeton(&t, &["rotate", "aws/ci", "--resume"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(!stderr(&out).contains("deleted key"), "{}", stderr(&out));
    }
    // As cron runs it: the run in progress is resumed, and refused again.
    let out = aws.jeton(&t, &["rotate", "--due", "--at-issuer"]);
    assert_eq!(out.status.code(), Some(8), "{}", stderr(&out));
    assert!(stderr(&out).contains("LimitExceeded"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("deleted key"), "{}", stderr(&out));
    assert!(aws.deleted().is_empty(), "deleted: {:?}", aws.deleted());
    let out = t.run(&["check", "--only", "rotation_unfinished"], "");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("aws/ci: rotation_unfinished: ")
            && said.contains("the issuer refused the new credential"),
        "{said}"
    );
    assert_eq!(aws.keys(), [k1.0.clone(), k2.0.clone()]);
    assert_eq!(current_key(&t), k1.0, "the entry's key changed");
    let log = t.ok(&["log", "aws/ci"], "");
    assert!(log.contains("the issuer refused"), "{log}");
}

// == kill -9 at every step ==

/// Kills an aws-iam rotation at every `call` while the user also holds K2, a key made outside
/// jeton; then resumes it (or starts it again when it had not begun). K2 is never deleted, every
/// deleted key is one jeton made (or K1, the old one, once revoked), and each run ends with the
/// new key current, K1 gone and no orphan left.
fn kill_aws_at_every(call: &str) {
    if !have_strace() {
        return;
    }
    let (k1, k2) = (key("AKIAJETON1"), key("AKIADEPLOY2"));
    let args = ["rotate", "aws/ci", "--at-issuer"];
    let total = {
        let aws = FakeAws::new(&[k1.clone(), k2.clone()], 3);
        let t = aws_vault(&k1);
        let (out, n) = traced(&t, &|c| aws.env(c), call, 0, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        n
    };
    assert!(total >= 4, "only {total} {call} calls in a rotation");
    let mut orphans_deleted = 0;
    for n in 1..=total {
        let what = format!("killed at {call} #{n} of {total}");
        let aws = FakeAws::new(&[k1.clone(), k2.clone()], 3);
        let t = aws_vault(&k1);
        let (out, _) = traced(&t, &|c| aws.env(c), call, n, &args);
        assert_eq!(
            out.status.code(),
            None,
            "{what}: not killed: {}",
            stderr(&out)
        );
        assert!(aws.keys().contains(&k2.0), "{what}: K2 was deleted");
        let out = if in_progress(&t, "aws/ci") {
            aws.jeton(&t, &["rotate", "aws/ci", "--resume"])
        } else if current_key(&t) == k1.0 {
            aws.jeton(&t, &args)
        } else {
            out
        };
        assert!(
            out.status.success() || out.status.code().is_none(),
            "{what}: {}",
            stderr(&out)
        );
        if stderr(&out).contains("deleted key") {
            orphans_deleted += 1;
        }
        let now = current_key(&t);
        let made = aws.created();
        let deleted = aws.deleted();
        assert!(aws.keys().contains(&k2.0), "{what}: K2 was deleted");
        assert!(
            deleted.iter().all(|d| made.contains(d) || *d == k1.0),
            "{what}: deleted {deleted:?}, made by jeton {made:?}"
        );
        assert_ne!(now, k1.0, "{what}: not rotated");
        let mut left = aws.keys();
        left.sort();
        let mut want = vec![k2.0.clone(), now.clone()];
        want.sort();
        assert_eq!(left, want, "{what}: keys left");
        assert!(!in_progress(&t, "aws/ci"), "{what}");
    }
    eprintln!("{call}: {total} kills, {orphans_deleted} orphan keys deleted on resume");
    if call == "wait4" {
        assert!(
            orphans_deleted > 0,
            "no kill landed between the create and its save"
        );
    }
}

#[test]
fn kill_at_every_save_of_an_aws_rotation_never_deletes_a_key_jeton_did_not_make() {
    kill_aws_at_every("rename");
}

#[test]
fn kill_after_every_aws_call_never_deletes_a_key_jeton_did_not_make() {
    kill_aws_at_every("wait4");
}

/// The issuer record of `aws/ci` rewritten as a version that did not record its create calls
/// wrote it: no run id, no create state.
fn as_an_older_version_recorded_it(t: &TestVault) {
    use jeton::format::VaultFile;
    use jeton::secret::Passphrase;
    use jeton::vault::Vault;
    let bytes = std::fs::read(t.vault_path()).unwrap();
    let file = VaultFile::parse(&bytes).unwrap();
    let key = Vault::unlock(&file, &Passphrase::new(support::PASS.into())).unwrap();
    let mut v = Vault::open(&file, key).unwrap();
    let id = v.entry("aws/ci").unwrap().id;
    let name = jeton::issuer::record::record_name(&id);
    let r = v.payload.entries.get_mut(&name).unwrap().unwrap();
    let mut note: serde_json::Value = serde_json::from_str(r.note.as_deref().unwrap()).unwrap();
    let run = note["run"].as_object_mut().unwrap();
    assert!(run.remove("id").is_some() && run.remove("create").is_some());
    r.note = Some(note.to_string());
    v.touch();
    let generation = v.generation();
    std::fs::write(t.vault_path(), v.seal(generation).unwrap()).unwrap();
}

#[test]
fn a_run_recorded_by_an_older_version_is_resumed_without_deleting_anything() {
    if !have_strace() {
        return;
    }
    let (k1, k2) = (key("AKIAJETON1"), key("AKIADEPLOY2"));
    let aws = FakeAws::new(&[k1.clone(), k2.clone()], 4);
    let t = aws_vault(&k1);
    // Killed after the create call's save (renames 4 to 6), before the key was stored.
    let (out, _) = traced(
        &t,
        &|c| aws.env(c),
        "rename",
        8,
        &["rotate", "aws/ci", "--at-issuer"],
    );
    assert_eq!(out.status.code(), None);
    let orphan = aws.created();
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    as_an_older_version_recorded_it(&t);
    let out = aws.jeton(&t, &["rotate", "aws/ci", "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("a credential may exist at the issuer and must be checked")
            && err.contains("begun by an older jeton")
            && err.contains(&orphan[0])
            && err.contains(&k2.0),
        "{err}"
    );
    assert!(!err.contains("deleted key"), "{err}");
    assert_eq!(
        aws.deleted(),
        [k1.0.as_str()],
        "only the old key is revoked"
    );
    let keys = aws.keys();
    assert!(
        keys.contains(&k2.0) && keys.contains(&orphan[0]),
        "{keys:?}"
    );
}

// == the command recipe's run id ==

#[test]
fn the_command_recipe_gets_its_run_id_and_a_resume_after_a_crash_says_a_token_may_be_left() {
    if !have_strace() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Each create appends its run id and the token it made, then prints the token.
    let create = format!(
        "read -r cur; n=tok-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \\n'); \
         printf '%s %s\\n' \"$JETON_ROTATION_ID\" \"$n\" >> {d}/made; printf '%s\\n' \"$n\""
    );
    let t = TestVault::new();
    t.add("svc/tok", CANARY, &[]);
    t.ok(
        &["issuer", "set", "svc/tok", "command", "--create", &create],
        "",
    );
    let made = || -> Vec<(String, String)> {
        std::fs::read_to_string(dir.path().join("made"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (id, tok) = l.split_once(' ').unwrap();
                (id.to_owned(), tok.to_owned())
            })
            .collect()
    };
    // Killed as it waits for the create command, which has printed its token: the token exists
    // at the issuer and was never stored.
    let (out, _) = traced(
        &t,
        &|_| {},
        "wait4",
        1,
        &["rotate", "svc/tok", "--at-issuer"],
    );
    assert_eq!(out.status.code(), None, "{}", stderr(&out));
    let first = made();
    assert_eq!(first.len(), 1, "{first:?}");
    let id = &first[0].0;
    assert_eq!(id.len(), 32, "not a run id: {id:?}");
    assert!(in_progress(&t, "svc/tok"));
    let shown: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "issuer", "show", "svc/tok"], "")).unwrap();
    assert_eq!(&shown["run"]["id"], id.as_str());
    assert_eq!(t.ok(&["get", "svc/tok", "-n"], ""), CANARY);

    let out = t.run(&["rotate", "svc/tok", "--resume"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("a credential may exist at the issuer and must be checked")
            && err.contains(&format!("JETON_ROTATION_ID={id}")),
        "{err}"
    );
    let all = made();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(&all[1].0, id, "the resume gave another run id");
    assert_eq!(t.ok(&["get", "svc/tok", "-n"], ""), all[1].1);

    // A new rotation gets a new id, and says nothing of leftovers.
    let out = t.run(&["rotate", "svc/tok", "--at-issuer"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("may exist"), "{}", stderr(&out));
    let all = made();
    assert_ne!(&all[2].0, id);
}

// == the history rule at the switch ==

fn plaintext(path: &std::path::Path) -> Vec<u8> {
    use jeton::format::VaultFile;
    use jeton::secret::Passphrase;
    use jeton::vault::Vault;
    let file = VaultFile::parse(&std::fs::read(path).unwrap()).unwrap();
    let key = Vault::unlock(&file, &Passphrase::new(support::PASS.into())).unwrap();
    let v = Vault::open(&file, key).unwrap();
    v.payload.encode().unwrap().to_vec()
}

#[test]
fn a_secret_the_switch_cuts_from_the_history_is_not_left_in_the_backup() {
    let t = TestVault::new();
    t.ok(&["config", "set", "history_limit", "1"], "");
    t.add("svc/tok", "first-secret-0f9e", &[]);
    t.ok(&["rotate", "svc/tok"], "second-secret-1d2c\n");
    t.ok(
        &[
            "issuer",
            "set",
            "svc/tok",
            "command",
            "--create",
            "read -r cur; echo third-secret-7a6b",
            "--revoke",
            "exit 3",
        ],
        "",
    );
    // Stopped by the revoke, right after the switch saved the cut history.
    let err = t.fails(&["rotate", "svc/tok", "--at-issuer"], "", 1);
    assert!(err.contains("stopped at step 3/3"), "{err}");
    let history = t.ok(&["history", "svc/tok", "--reveal"], "");
    assert!(
        history.contains("second-secret-1d2c") && !history.contains("first-secret-0f9e"),
        "{history}"
    );
    let vault = t.vault_path();
    for file in [vault.clone(), vault.with_file_name("vault.jeton.bak")] {
        let text = plaintext(&file);
        let found = text.windows(17).any(|w| w == b"first-secret-0f9e");
        assert!(!found, "the cut secret is still in {}", file.display());
    }
}
