//! Rotation at the issuer, with real processes: a small issuer made of shell scripts (the
//! `command` recipe), integrations that write files, failures and kills at every step, and the
//! `aws-iam` recipe end to end against moto's AWS emulator with authentication enforced and the
//! real `aws` CLI.

#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/aws.rs"]
mod aws_support;
mod support;

use aws_support::{Moto, aws_venv, jeton_aws};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::{CANARY, TestVault, skip};

/// A fake issuer: a directory holding one file per token issued, empty while it is valid and
/// `revoked` once revoked (shell builtins only, so no token is ever in a command line). `create` checks the current
/// token (stdin) is valid and prints a new one; `revoke` deletes the token on stdin; `verify`
/// succeeds when the token on stdin is valid. A file `fail-NAME` makes script NAME fail once.
/// (No script renames a file: the kill tests count jeton's own renames.)
struct Issuer {
    dir: tempfile::TempDir,
}

impl Issuer {
    fn new() -> Issuer {
        let dir = tempfile::Builder::new()
            .prefix("jeton-issuer")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("tokens")).unwrap();
        let i = Issuer { dir };
        let once = |name: &str| {
            format!(
                "if [ -f {d}/fail-{name} ]; then rm {d}/fail-{name}; echo '{name} refused' >&2; exit 3; fi\n",
                d = i.root().display()
            )
        };
        let t = i.tokens();
        let t = t.display();
        i.script(
            "create",
            &format!(
                "{}read -r cur\n[ -f {t}/\"$cur\" ] && [ ! -s {t}/\"$cur\" ] || {{ echo 'unknown token' >&2; exit 4; }}\n\
                 n={CANARY}-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \\n')\n: > {t}/\"$n\"\nprintf '%s\\n' \"$n\"\n",
                once("create")
            ),
        );
        i.script(
            "revoke",
            &format!(
                "{}read -r old\n[ -f {t}/\"$old\" ] && printf revoked > {t}/\"$old\"\nexit 0\n",
                once("revoke")
            ),
        );
        i.script(
            "verify",
            &format!(
                "{}read -r new\n[ -f {t}/\"$new\" ] && [ ! -s {t}/\"$new\" ]\n",
                once("verify")
            ),
        );
        i.script(
            "deploy",
            &format!(
                "{}printf '%s' \"$TOKEN\" > {}/deployed\n",
                once("deploy"),
                i.root().display()
            ),
        );
        i.issue(CANARY);
        i
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn tokens(&self) -> PathBuf {
        self.root().join("tokens")
    }
    fn script(&self, name: &str, body: &str) {
        std::fs::write(self.root().join(format!("{name}.sh")), body).unwrap();
    }
    fn cmd(&self, name: &str) -> String {
        format!("sh {}/{name}.sh", self.root().display())
    }
    fn issue(&self, token: &str) {
        std::fs::write(self.tokens().join(token), "").unwrap();
    }
    fn valid(&self, token: &str) -> bool {
        std::fs::metadata(self.tokens().join(token)).is_ok_and(|m| m.len() == 0)
    }
    fn valid_tokens(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.tokens())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| self.valid(n))
            .collect();
        v.sort();
        v
    }
    fn fail_once(&self, name: &str) {
        std::fs::write(self.root().join(format!("fail-{name}")), "").unwrap();
    }
    fn deployed(&self) -> String {
        std::fs::read_to_string(self.root().join("deployed")).unwrap_or_default()
    }
    fn conf(&self) -> PathBuf {
        self.root().join("app.conf")
    }
}

/// A vault with `svc/tok` (secret CANARY) known to `issuer`, its `command` recipe, and two
/// integrations: a deploy script and a config file from a template.
fn setup(issuer: &Issuer) -> TestVault {
    let t = TestVault::new();
    t.add(
        "svc/tok",
        CANARY,
        &["--url", "https://issuer.example/tokens"],
    );
    t.ok(
        &[
            "issuer",
            "set",
            "svc/tok",
            "command",
            "--create",
            &issuer.cmd("create"),
            "--revoke",
            &issuer.cmd("revoke"),
            "--verify",
            &issuer.cmd("verify"),
        ],
        "",
    );
    t.ok(
        &[
            "integration",
            "add",
            "svc/tok",
            "--label",
            "deploy",
            "--run",
            &issuer.cmd("deploy"),
            "--env",
            "TOKEN=secret",
        ],
        "",
    );
    let template = issuer.root().join("app.conf.tmpl");
    std::fs::write(
        &template,
        "url = https://api\ntoken = {{ jeton://svc/tok }}\n",
    )
    .unwrap();
    t.ok(
        &[
            "integration",
            "add",
            "svc/tok",
            "--label",
            "conf",
            "--inject",
            template.to_str().unwrap(),
            "--out",
            issuer.conf().to_str().unwrap(),
        ],
        "",
    );
    t
}

fn current(t: &TestVault) -> String {
    t.ok(&["get", "svc/tok", "-n"], "")
}

fn err_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("jeton: error:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// After a complete rotation: one valid token at the issuer, the vault's, in every integration.
fn assert_rotated(t: &TestVault, issuer: &Issuer) {
    let new = current(t);
    assert_ne!(new, CANARY, "the secret did not change");
    assert!(new.starts_with(CANARY), "not made by the issuer: {new}");
    assert!(
        issuer.valid(&new),
        "the vault's token is not valid at the issuer"
    );
    assert!(!issuer.valid(CANARY), "the old token was not revoked");
    assert_eq!(
        issuer.deployed(),
        new,
        "the deploy integration has another token"
    );
    let conf = std::fs::read_to_string(issuer.conf()).unwrap();
    assert_eq!(conf, format!("url = https://api\ntoken = {new}\n"));
    let history = t.ok(&["history", "svc/tok", "--reveal"], "");
    assert!(history.contains(CANARY), "the old secret is not in history");
    let show = t.ok(&["issuer", "show", "svc/tok"], "");
    assert!(!show.contains("in progress"), "{show}");
}

#[test]
fn command_recipe_rotates_updates_every_integration_then_revokes_the_old() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let out = t.run(&["rotate", "svc/tok", "--at-issuer"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("old credential is revoked at the issuer"),
        "{stdout}"
    );
    assert_rotated(&t, &issuer);
    assert_eq!(
        issuer.valid_tokens().len(),
        1,
        "{:?}",
        issuer.valid_tokens()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(issuer.conf())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The audit log names every step and holds no secret.
    let log = t.ok(&["log", "svc/tok"], "");
    for step in [
        "rotation begun",
        "new credential created at the issuer",
        "integration deploy updated",
        "integration conf updated",
        "new credential verified",
        "new credential made current",
        "old credential revoked at the issuer",
        "rotation complete",
    ] {
        assert!(log.contains(step), "no '{step}' in the log:\n{log}");
    }
    assert!(!log.contains(CANARY), "a secret in the log:\n{log}");
    // The issuer record is not a token: list and check do not show it.
    let list = t.ok(&["list", "--status", "all"], "");
    assert!(!list.contains(".issuer"), "{list}");
    let check = t.run(&["check"], "");
    assert!(!String::from_utf8_lossy(&check.stdout).contains(".issuer"));
    // A name in the reserved space cannot be taken.
    t.fails(&["add", ".issuer/x"], "s", 2);
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let before = t.vault_bytes();
    let out = t.ok(&["rotate", "svc/tok", "--at-issuer", "--dry-run"], "");
    assert_eq!(
        out,
        "plan for svc/tok (recipe command):\n  1. create the new credential at the issuer\n  \
         2. update integration 'deploy'\n  3. update integration 'conf'\n  4. verify the new \
         credential\n  5. make the new credential current\n  6. revoke the old credential at \
         the issuer\n"
    );
    assert_eq!(t.vault_bytes(), before, "the vault changed");
    assert_eq!(issuer.valid_tokens(), [CANARY]);
    assert!(!issuer.conf().exists());
}

#[test]
fn a_failing_integration_stops_with_the_old_secret_current_and_resume_completes() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    issuer.fail_once("deploy");
    let out = t.run(&["rotate", "svc/tok", "--at-issuer"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = err_line(&out);
    assert!(
        err.starts_with(
            "jeton: error: rotation of 'svc/tok' stopped at step 2/6 (update integration 'deploy')"
        ) && err.contains("the old credential is still current")
            && err.contains("jeton rotate svc/tok --resume"),
        "{err}"
    );
    // The old token still works, at the issuer and in jeton; the new one is pending, stored.
    assert_eq!(current(&t), CANARY);
    assert!(issuer.valid(CANARY));
    assert_eq!(issuer.valid_tokens().len(), 2);
    let show = t.ok(&["issuer", "show", "svc/tok"], "");
    assert!(
        show.contains("step 2/6: update integration 'deploy'"),
        "{show}"
    );
    // A second rotation is refused while one is in progress.
    let err = t.fails(&["rotate", "svc/tok", "--at-issuer"], "", 9);
    assert!(err.contains("--resume"), "{err}");
    t.ok(&["rotate", "svc/tok", "--resume"], "");
    assert_rotated(&t, &issuer);
    assert_eq!(
        issuer.valid_tokens().len(),
        1,
        "the pending token was not the one kept"
    );
}

#[test]
fn a_failing_verify_stops_before_the_switch_and_resume_completes() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    issuer.fail_once("verify");
    let out = t.run(&["rotate", "svc/tok", "--at-issuer"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = err_line(&out);
    assert!(
        err.contains("stopped at step 4/6 (verify the new credential)")
            && err.contains("verify: the command failed (exit status 3)"),
        "{err}"
    );
    assert_eq!(current(&t), CANARY);
    assert!(issuer.valid(CANARY), "the old token was revoked early");
    t.ok(&["rotate", "svc/tok", "--resume"], "");
    assert_rotated(&t, &issuer);
}

#[test]
fn resume_without_a_run_in_progress_is_not_found() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let err = t.fails(&["rotate", "svc/tok", "--resume"], "", 4);
    assert!(
        err.contains("no rotation of 'svc/tok' is in progress"),
        "{err}"
    );
}

#[test]
fn leaked_revokes_the_old_as_soon_as_the_new_is_stored_and_names_integrations_left() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    issuer.fail_once("deploy");
    let out = t.run(&["rotate", "svc/tok", "--at-issuer", "--leaked"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = err_line(&out);
    assert!(
        err.contains("stopped at step 4/6 (update integration 'deploy')")
            && err.contains("integrations still to update: deploy, conf"),
        "{err}"
    );
    assert!(
        !issuer.valid(CANARY),
        "the leaked token still works at the issuer"
    );
    let new = current(&t);
    assert!(issuer.valid(&new));
    t.ok(&["rotate", "svc/tok", "--resume"], "");
    assert_rotated(&t, &issuer);
}

#[test]
fn revoke_at_issuer_revokes_there_first_then_wipes() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    // A failing revoke at the issuer wipes nothing locally.
    issuer.fail_once("revoke");
    let out = t.run(&["revoke", "svc/tok", "--at-issuer", "--yes"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(err_line(&out).contains("nothing was wiped locally"));
    assert_eq!(current(&t), CANARY);
    assert!(issuer.valid(CANARY));

    t.ok(&["revoke", "svc/tok", "--at-issuer", "--yes"], "");
    assert!(!issuer.valid(CANARY));
    t.fails(&["get", "svc/tok"], "", 5);
}

#[test]
fn revoke_at_issuer_in_the_middle_of_a_run_revokes_the_pending_one_too() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    issuer.fail_once("verify");
    t.fails(&["rotate", "svc/tok", "--at-issuer"], "", 1);
    assert_eq!(issuer.valid_tokens().len(), 2);
    t.ok(&["revoke", "svc/tok", "--at-issuer", "--yes"], "");
    assert!(
        issuer.valid_tokens().is_empty(),
        "{:?}",
        issuer.valid_tokens()
    );
    let show = t.ok(&["issuer", "show", "svc/tok"], "");
    assert!(!show.contains("in progress"), "{show}");
}

#[test]
fn without_a_recipe_the_new_token_is_asked_for_and_the_rest_is_done() {
    let issuer = Issuer::new();
    let t = TestVault::new();
    t.add(
        "gh/pat",
        CANARY,
        &["--url", "https://github.com/settings/tokens"],
    );
    t.ok(
        &[
            "integration",
            "add",
            "gh/pat",
            "--run",
            &issuer.cmd("deploy"),
            "--env",
            "TOKEN=secret",
        ],
        "",
    );
    let out = t.run(&["rotate", "gh/pat", "--at-issuer"], "ghp_new-token\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("make a new token at its issuer"), "{err}");
    assert!(
        err.contains("revoke the old token of 'gh/pat' at its issuer"),
        "{err}"
    );
    assert_eq!(t.ok(&["get", "gh/pat", "-n"], ""), "ghp_new-token");
    assert_eq!(issuer.deployed(), "ghp_new-token");
}

#[test]
fn rotate_due_runs_every_due_entry_with_a_recipe_and_exits_8_on_a_failure() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    t.ok(&["edit", "svc/tok", "--rotate-every", "30d"], "");
    // Not due yet: nothing runs.
    t.ok(&["rotate", "--due", "--at-issuer"], "");
    assert_eq!(current(&t), CANARY);
    // Due within the look-ahead, failing once: exit 8; then due again, and it completes.
    t.ok(&["edit", "svc/tok", "--rotate-every", "2h"], "");
    issuer.fail_once("create");
    let out = t.run(&["rotate", "--due", "--at-issuer"], "");
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err_line(&out).contains("stopped at step 1/6"));
    t.ok(&["rotate", "--due", "--at-issuer"], "");
    assert_rotated(&t, &issuer);
}

#[test]
fn bad_flags_are_refused_before_anything_runs() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let before = t.vault_bytes();
    t.fails(&["issuer", "set", "svc/tok", "command"], "", 2);
    t.fails(
        &["issuer", "set", "svc/tok", "aws-iam", "--create", "true"],
        "",
        2,
    );
    t.fails(&["rotate", "svc/tok", "--dry-run"], "", 2);
    t.fails(&["rotate", "svc/tok", "--resume", "--at-issuer"], "", 2);
    t.fails(&["rotate", "svc/tok", "--at-issuer", "--generate"], "", 2);
    t.fails(&["rotate", "--at-issuer"], "", 2);
    t.fails(
        &[
            "integration",
            "add",
            "svc/tok",
            "--run",
            "x",
            "--env",
            "1X=secret",
        ],
        "",
        2,
    );
    t.fails(
        &[
            "integration",
            "add",
            "svc/tok",
            "--run",
            "x",
            "--env",
            "X=nope",
        ],
        "",
        2,
    );
    t.fails(&["integration", "rm", "svc/tok", "nosuch"], "", 4);
    t.fails(&["issuer", "show", "nosuch"], "", 4);
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn the_agent_runs_the_pipeline_without_a_prompt() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let _agent = agent_support::unlock(&t, &[]);
    let out = agent_support::run_no_pass(&t, &["rotate", "svc/tok", "--at-issuer"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated(&t, &issuer);
}

/// Without an agent the passphrase is read once for the whole run, even from a descriptor
/// that can be read only once.
#[test]
fn the_passphrase_is_read_once_for_the_whole_run() {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let mut c = agent_support::no_pass(&t);
    c.args(["--passphrase-fd", "0"]);
    let out = t.run_with(c, &["rotate", "svc/tok", "--at-issuer"], support::PASS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_rotated(&t, &issuer);
}

// == kill -9 at every step ==

/// Runs `jeton ARGS` under strace (this process only, not its children) with SIGKILL injected
/// at the `nth` call of `call`.
fn kill_at(t: &TestVault, call: &str, nth: u32, args: &[&str]) -> Output {
    let jeton = t.cmd();
    let mut c = Command::new("strace");
    c.args(["-qq", "-o", "/dev/null", "-e", &format!("trace={call}")]);
    c.args(["-e", &format!("inject={call}:signal=SIGKILL:when={nth}")]);
    c.arg("--").arg(jeton.get_program());
    c.env_clear();
    for (k, v) in jeton.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    t.run_with(c, args, "")
}

fn have_strace() -> bool {
    Command::new("strace").arg("-V").output().is_ok()
}

/// How many times a whole rotation (`rotate svc/tok --at-issuer` + `extra`) calls `call`.
fn count_calls(call: &str, extra: &[&str]) -> u32 {
    let issuer = Issuer::new();
    let t = setup(&issuer);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace");
    let jeton = t.cmd();
    let mut c = Command::new("strace");
    c.args([
        "-qq",
        "-o",
        log.to_str().unwrap(),
        "-e",
        &format!("trace={call}"),
    ]);
    c.arg("--").arg(jeton.get_program());
    c.env_clear();
    for (k, v) in jeton.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    let args = [&["rotate", "svc/tok", "--at-issuer"][..], extra].concat();
    let out = t.run_with(c, &args, "");
    assert!(out.status.success());
    assert_rotated(&t, &issuer);
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{call}(")))
        .count() as u32
}

/// Kills a rotation at every `call`, then checks that the token in use still works at the
/// issuer, that the old one was not revoked before the switch, and that `--resume` (or a new
/// run, when none had begun) completes it.
fn kill_at_every(call: &str, extra: &[&str]) {
    if !have_strace() {
        skip("strace");
        return;
    }
    let total = count_calls(call, extra);
    let args = [&["rotate", "svc/tok", "--at-issuer"][..], extra].concat();
    assert!(total >= 4, "only {total} {call} calls in a rotation");
    let (mut before_switch, mut after_switch) = (0, 0);
    for n in 1..=total {
        let issuer = Issuer::new();
        let t = setup(&issuer);
        let out = kill_at(&t, call, n, &args);
        let what = format!("killed at {call} #{n} of {total}");
        assert_eq!(out.status.code(), None, "{what}: not killed: {out:?}");
        let now = current(&t);
        assert!(
            issuer.valid(&now),
            "{what}: the token in use no longer works"
        );
        let in_progress = t
            .ok(&["issuer", "show", "svc/tok"], "")
            .contains("in progress");
        if now == CANARY {
            before_switch += 1;
            assert!(
                issuer.valid(CANARY),
                "{what}: the old token was revoked before the switch"
            );
        } else {
            after_switch += 1;
        }
        if in_progress {
            t.ok(&["rotate", "svc/tok", "--resume"], "");
        } else if now == CANARY {
            t.ok(&args, "");
        }
        assert_rotated(&t, &issuer);
    }
    eprintln!("{args:?}: {before_switch} kills before the switch, {after_switch} after");
    assert!(
        before_switch > 0 && after_switch > 0,
        "kills never landed on both sides of the switch"
    );
}

#[test]
fn kill_at_every_save_of_a_rotation_loses_nothing() {
    kill_at_every("rename", &[]);
}

/// With `--leaked` the old token is revoked right after the switch, and never before it.
#[test]
fn kill_at_every_save_of_a_leak_rotation_loses_nothing() {
    kill_at_every("rename", &["--leaked"]);
}

#[test]
fn kill_while_each_child_runs_loses_nothing() {
    kill_at_every("wait4", &[]);
}

// == aws-iam against moto ==

#[test]
fn aws_iam_rotation_against_moto_with_authentication_enforced() {
    let Some(venv) = aws_venv() else {
        eprintln!(
            "skipped: moto[server] and awscli are not installed (python3 -m venv \
             /opt/jeton-test-venv && /opt/jeton-test-venv/bin/pip install 'moto[server]' \
             awscli, or set JETON_TEST_AWS_VENV); .ci/run installs them"
        );
        return;
    };
    let moto = Moto::start(&venv);
    let boot = moto.user_who_manages_own_keys("ci");
    let key = moto
        .aws(boot, &["iam", "create-access-key", "--user-name", "ci"])
        .unwrap();
    let old_id = key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    let old_secret = key["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = (old_id.as_str(), old_secret.as_str());
    // Authentication is enforced from here on.
    let refused = moto.aws(boot, &["sts", "get-caller-identity"]).unwrap_err();
    assert!(refused.contains("InvalidClientTokenId"), "{refused}");
    moto.aws(old, &["sts", "get-caller-identity"]).unwrap();

    let t = TestVault::new();
    t.add("aws/ci", &old_secret, &["--username", &old_id]);
    t.ok(&["issuer", "set", "aws/ci", "aws-iam"], "");
    let out = jeton_aws(&t, &moto, &["rotate", "aws/ci", "--at-issuer"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let new_id = t.ok(&["get", "aws/ci", "--field", "username", "-n"], "");
    let new_secret = t.ok(&["get", "aws/ci", "-n"], "");
    assert_ne!(new_id, old_id);
    assert_ne!(new_secret, old_secret);
    let new = (new_id.as_str(), new_secret.as_str());
    let err = moto.aws(old, &["sts", "get-caller-identity"]).unwrap_err();
    assert!(
        err.contains("InvalidClientTokenId"),
        "the old key still works: {err}"
    );
    let who = moto.aws(new, &["sts", "get-caller-identity"]).unwrap();
    assert!(who["Arn"].as_str().unwrap().ends_with(":user/ci"), "{who}");
    let keys = moto.aws(new, &["iam", "list-access-keys"]).unwrap();
    let ids: Vec<&str> = keys["AccessKeyMetadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AccessKeyId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [new_id.as_str()], "one key left, the new one");
    let history = t.ok(&["history", "aws/ci", "--reveal"], "");
    assert!(history.contains(&old_secret));

    // Killed right after the key was made at the issuer, before it was stored: the resumed run
    // deletes that orphan key (not there before the call, made since the run began, and nobody
    // holds its secret) and makes another; one key is left.
    if have_strace() {
        let jeton = t.cmd();
        let mut c = Command::new("strace");
        c.args(["-qq", "-o", "/dev/null", "-e", "trace=rename"]);
        c.args([
            "-e",
            &format!("inject=rename:signal=SIGKILL:when={SAVE_OF_THE_CREATED_KEY}"),
        ]);
        c.arg("--").arg(jeton.get_program()).env_clear();
        for (k, v) in jeton.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        moto.env(&mut c);
        let out = t.run_with(c, &["rotate", "aws/ci", "--at-issuer"], "");
        assert_eq!(out.status.code(), None, "not killed: {out:?}");
        assert_eq!(t.ok(&["get", "aws/ci", "-n"], ""), new_secret);
        let keys = moto.aws(new, &["iam", "list-access-keys"]).unwrap();
        assert_eq!(
            keys["AccessKeyMetadata"].as_array().unwrap().len(),
            2,
            "{keys}"
        );
        let out = jeton_aws(&t, &moto, &["rotate", "aws/ci", "--resume"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the interrupted create of this rotation made it"),
            "{err}"
        );
        let newer_id = t.ok(&["get", "aws/ci", "--field", "username", "-n"], "");
        let newer_secret = t.ok(&["get", "aws/ci", "-n"], "");
        let newer = (newer_id.as_str(), newer_secret.as_str());
        let keys = moto.aws(newer, &["iam", "list-access-keys"]).unwrap();
        let ids: Vec<&str> = keys["AccessKeyMetadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["AccessKeyId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [newer_id.as_str()]);
        assert!(moto.aws(new, &["sts", "get-caller-identity"]).is_err());
    }

    // A leak: revoked at the issuer first, then wiped here.
    let id = t.ok(&["get", "aws/ci", "--field", "username", "-n"], "");
    let secret = t.ok(&["get", "aws/ci", "-n"], "");
    let out = jeton_aws(&t, &moto, &["revoke", "aws/ci", "--at-issuer", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = moto
        .aws((&id, &secret), &["sts", "get-caller-identity"])
        .unwrap_err();
    assert!(err.contains("InvalidClientTokenId"), "{err}");
    t.fails(&["get", "aws/ci"], "", 5);
}

/// The rename that would put in place the save of the created key: each save renames the
/// backup, the vault and the rollback memory; the run's first save is its beginning, the
/// second records the create call before it is made.
const SAVE_OF_THE_CREATED_KEY: u32 = 8;

// == gitlab-pat and npm against servers following the issuers' documented APIs ==

/// A server from tests/data (its docstring names the documentation it follows) on a free port
/// of 127.0.0.1, killed on drop. `GET /_tokens` is the test's view of the tokens it issued.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(script: &str, args: &[&str]) -> Served {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(script);
        let mut child = Command::new("python3")
            .arg(&script)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the test server");
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let url = format!("http://127.0.0.1:{}", port.trim());
        Served { child, url }
    }

    /// The issued tokens: `(token, active, expires_at)`.
    fn tokens(&self) -> Vec<(String, bool, String)> {
        let out = Command::new("curl")
            .args(["-sS", &format!("{}/_tokens", self.url)])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["token"].as_str().unwrap().to_owned(),
                    t["active"].as_bool().unwrap(),
                    t["expires_at"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn active(&self, token: &str) -> bool {
        self.tokens().iter().any(|(t, a, _)| t == token && *a)
    }

    /// The HTTP status of `GET path` with `header` (the server's own authentication).
    fn status(&self, path: &str, header: &str) -> String {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", header])
            .arg(format!("{}{path}", self.url))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

/// True when `tool --version` runs; else says the test is skipped and how CI gets it.
fn have(tool: &str, apt: &str) -> bool {
    let there = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !there {
        skip(&format!("{tool} (.ci/run installs the apt package {apt})"));
    }
    there
}

/// A vault holding `name` (secret `token`, url `url`) with the recipe `recipe` (`issuer set`
/// arguments after the name) and the deploy integration of `issuer`.
fn with_recipe(name: &str, token: &str, url: &str, recipe: &[&str], issuer: &Issuer) -> TestVault {
    let t = TestVault::new();
    t.add(name, token, &["--url", url]);
    t.ok(&[&["issuer", "set", name][..], recipe].concat(), "");
    let deploy = issuer.cmd("deploy");
    t.ok(
        &[
            "integration",
            "add",
            name,
            "--label",
            "deploy",
            "--run",
            &deploy,
            "--env",
            "TOKEN=secret",
        ],
        "",
    );
    t
}

#[test]
fn gitlab_pat_rotation_against_a_server_following_gitlabs_api() {
    if !have("curl", "curl") {
        return;
    }
    let gitlab = Served::start("gitlab_server.py", &[CANARY]);
    let issuer = Issuer::new();
    let recipe = ["gitlab-pat", "--gitlab-expires-in", "30d"];
    let t = with_recipe("gitlab/ci", CANARY, &gitlab.url, &recipe, &issuer);
    // GitLab revokes the old token in the call that makes the new one: the new one is made
    // current at once, before the integrations.
    let plan = t.ok(&["rotate", "gitlab/ci", "--at-issuer", "--dry-run"], "");
    assert_eq!(
        plan,
        "plan for gitlab/ci (recipe gitlab-pat):\n  1. create the new credential at the issuer\n  \
         2. make the new credential current\n  3. revoke the old credential at the issuer\n  \
         4. update integration 'deploy'\n  5. verify the new credential\n"
    );
    let out = t.run(&["rotate", "gitlab/ci", "--at-issuer"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = t.ok(&["get", "gitlab/ci", "-n"], "");
    assert!(new.starts_with("glpat-"), "{new}");
    assert!(!gitlab.active(CANARY), "the old token still works");
    assert!(gitlab.active(&new), "the vault's token does not work");
    assert_eq!(issuer.deployed(), new);
    let day = Command::new("date")
        .args(["-u", "-d", "+30 days", "+%F"])
        .output()
        .unwrap();
    let day = String::from_utf8(day.stdout).unwrap().trim().to_owned();
    let expiry = &gitlab
        .tokens()
        .into_iter()
        .find(|(tk, _, _)| *tk == new)
        .unwrap()
        .2;
    assert_eq!(expiry, &day, "the requested lifetime was not sent");
    let shown = t.ok(&["--json", "show", "gitlab/ci"], "");
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(
        shown["expires_at"].as_str().unwrap().starts_with(&day),
        "the entry's expiry is not GitLab's: {shown}"
    );

    // A leak: revoked at GitLab (DELETE .../self), then wiped here.
    t.ok(&["revoke", "gitlab/ci", "--at-issuer", "--yes"], "");
    assert!(!gitlab.active(&new));
    t.fails(&["get", "gitlab/ci"], "", 5);
}

#[test]
fn gitlab_project_and_group_tokens_rotate_at_their_own_endpoints() {
    if !have("curl", "curl") {
        return;
    }
    let project = format!("{CANARY}-project");
    let group = format!("{CANARY}-group");
    let gitlab = Served::start(
        "gitlab_server.py",
        &[
            &format!("{project},projects,grp/app"),
            &format!("{group},groups,7"),
        ],
    );
    let cases = [
        (
            "gitlab/app",
            &project,
            "--gitlab-project",
            "grp/app",
            "project grp/app",
        ),
        ("gitlab/grp", &group, "--gitlab-group", "7", "group 7"),
    ];
    for (name, token, flag, owner, shown) in cases {
        let issuer = Issuer::new();
        // As a personal token, the project's or group's token is refused at the personal
        // endpoint: the run stops at create and the token still works.
        let t = with_recipe(name, token, &gitlab.url, &["gitlab-pat"], &issuer);
        let out = t.run(&["rotate", name, "--at-issuer"], "");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(err_line(&out).contains("stopped at step 1/5"), "{out:?}");
        assert!(gitlab.active(token));

        let t = with_recipe(
            name,
            token,
            &gitlab.url,
            &["gitlab-pat", flag, owner],
            &issuer,
        );
        let show = t.ok(&["issuer", "show", name], "");
        assert!(show.contains(&format!("access token of {shown}")), "{show}");
        t.ok(&["rotate", name, "--at-issuer"], "");
        let new = t.ok(&["get", name, "-n"], "");
        assert!(new.starts_with("glpat-"), "{new}");
        assert!(!gitlab.active(token), "the old token still works");
        assert!(gitlab.active(&new), "the vault's token does not work");
        assert_eq!(issuer.deployed(), new);
        // A leak: revoked at the project's or group's endpoint, then wiped here.
        t.ok(&["revoke", name, "--at-issuer", "--yes"], "");
        assert!(!gitlab.active(&new));
    }
}

#[test]
fn npm_rotation_through_the_npm_cli_against_a_registry_following_npms_api() {
    if !have("curl", "curl") || !have("npm", "npm") {
        return;
    }
    // The recipe reads the `Created token TOKEN` line of npm 10 and later; npm 9 (Debian
    // bookworm's apt package) prints a table instead.
    let version = Command::new("npm").arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version.split('.').next().unwrap_or("").parse().unwrap_or(0);
    if major < 10 {
        // `.ci/run` installs npm 10 or later and sets this: there, an old npm is a failure.
        assert!(
            std::env::var_os("JETON_TEST_NPM").is_none(),
            "JETON_TEST_NPM is set but npm is {version}, older than 10"
        );
        eprintln!("skipped: npm {version} is older than 10 (install Node.js with npm 10 or later)");
        return;
    }
    let password = format!("{CANARY}-password");
    // The account has two-factor authentication: jeton gives npm the code of the seed it holds.
    let seed = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let registry = Served::start("npm_registry_server.py", &[CANARY, &password, seed]);
    let issuer = Issuer::new();
    let recipe = ["npm", "--npm-password-entry", "npm/login"];
    let t = with_recipe("npm/ci", CANARY, &registry.url, &recipe, &issuer);
    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    assert_eq!(registry.status("/-/npm/v1/tokens", &bearer("nope")), "401");
    // jeton's npm configuration goes in the private runtime directory, never in TMPDIR, and is
    // gone when npm ends.
    let tmp = tempfile::tempdir().unwrap();
    let jeton = |args: &[&str]| {
        let mut c = t.cmd();
        c.env("TMPDIR", tmp.path());
        let out = t.run_with(c, args, "");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "npm's configuration was left: {left:?}");
        let npm = t.home().join("run/jeton/npm");
        let left: Vec<_> = std::fs::read_dir(npm).into_iter().flatten().collect();
        assert!(left.is_empty(), "npm's configuration was left: {left:?}");
        out
    };

    // A wrong password: the registry refuses to make a token, the old one stays current.
    t.add("npm/login", "wrong-password", &[]);
    let out = jeton(&["rotate", "npm/ci", "--at-issuer"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(err_line(&out).contains("stopped at step 1/5"), "{out:?}");
    assert_eq!(t.ok(&["get", "npm/ci", "-n"], ""), CANARY);
    assert_eq!(registry.status("/-/npm/v1/tokens", &bearer(CANARY)), "200");

    t.ok(&["rotate", "npm/login"], &format!("{password}\n"));
    t.add("npm/login/otp", seed, &["--totp"]);
    let out = jeton(&["rotate", "npm/ci", "--resume"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = t.ok(&["get", "npm/ci", "-n"], "");
    assert_ne!(new, CANARY);
    assert_eq!(issuer.deployed(), new);
    assert_eq!(
        registry.status("/-/npm/v1/tokens", &bearer(CANARY)),
        "401",
        "the old token still works"
    );
    assert_eq!(registry.status("/-/npm/v1/tokens", &bearer(&new)), "200");
    let live: Vec<_> = registry.tokens().into_iter().filter(|t| t.1).collect();
    assert_eq!(live.len(), 1, "{live:?}");

    // A leak: revoked at the registry (by its key, the token never in npm's argv), then wiped.
    let out = jeton(&["revoke", "npm/ci", "--at-issuer", "--yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(registry.status("/-/npm/v1/tokens", &bearer(&new)), "401");
    t.fails(&["get", "npm/ci"], "", 5);
}

#[test]
fn gitlab_pat_refuses_to_send_a_token_over_plain_http_to_another_machine() {
    let t = TestVault::new();
    t.add("gitlab/ci", CANARY, &["--url", "http://gitlab.example.com"]);
    t.ok(&["issuer", "set", "gitlab/ci", "gitlab-pat"], "");
    let out = t.run(&["rotate", "gitlab/ci", "--at-issuer"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err_line(&out).contains("gitlab-pat needs the instance URL"),
        "{out:?}"
    );
    assert_eq!(t.ok(&["get", "gitlab/ci", "-n"], ""), CANARY);
    let show = t.ok(&["issuer", "show", "gitlab/ci"], "");
    assert!(
        !show.contains("in progress"),
        "refused before the run began: {show}"
    );
}
