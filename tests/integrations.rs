//! exec, inject, and the git, cargo and docker credential helpers through the real binary.

#[path = "support/agent.rs"]
mod agent_support;
mod hardening;
mod support;
use agent_support::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use support::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exec_sets_variables_and_passes_exit_codes() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &["--username", "bob"]);
    let out = t.run(
        &[
            "exec",
            "--env",
            "TOKEN=svc/a",
            "--env",
            "WHO=svc/a#username",
            "--",
            "sh",
            "-c",
            r#"printf '%s %s %s' "$TOKEN" "$WHO" "$KEEP"; exit 7"#,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    // KEEP is unset in the test environment: only the requested variables were added.
    assert_eq!(stdout(&out), format!("{CANARY} bob "));

    // Secrets override inherited variables; PATH and HOME are left alone.
    let mut c = t.cmd();
    c.env("TOKEN", "inherited");
    let out = t.run_with(
        c,
        &[
            "exec",
            "--env",
            "TOKEN=svc/a",
            "--",
            "sh",
            "-c",
            r#"printf '%s|%s|%s' "$TOKEN" "$HOME" "$PATH""#,
        ],
        "",
    );
    assert_eq!(
        stdout(&out),
        format!(
            "{CANARY}|{}|{}",
            t.home().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    );

    // An env file: references resolved, other lines passed through.
    let env_file = t.home().join("app.env");
    std::fs::write(
        &env_file,
        "# app\nexport API=jeton://svc/a\nMODE=plain value\n",
    )
    .unwrap();
    let out = t.run(
        &[
            "exec",
            "--env-file",
            env_file.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            r#"printf '%s/%s' "$API" "$MODE""#,
        ],
        "",
    );
    assert_eq!(stdout(&out), format!("{CANARY}/plain value"));

    // The command's signals are its own: killed by SIGTERM, as if it ran alone.
    let out = t.run(&["exec", "--", "sh", "-c", "kill -TERM $$"], "");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(15));

    let err = t.fails(&["exec", "--", "no-such-command-jeton"], "", 127);
    assert!(err.contains("not found"), "{err}");
    let not_exec = t.home().join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o600)).unwrap();
    t.fails(&["exec", "--", not_exec.to_str().unwrap()], "", 126);
    t.fails(&["exec", "--env", "1BAD=svc/a", "--", "true"], "", 2);
}

#[test]
fn exec_refuses_disabled_and_unknown_entries_before_the_command_runs() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    t.ok(&["disable", "svc/a"], "");
    let marker = t.home().join("ran");
    let script = format!("touch {}", marker.display());
    t.fails(
        &["exec", "--env", "T=svc/a", "--", "sh", "-c", &script],
        "",
        5,
    );
    t.fails(
        &["exec", "--env", "T=svc/none", "--", "sh", "-c", &script],
        "",
        4,
    );
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn inject_fills_templates_and_writes_nothing_on_unknown_references() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &["--username", "bob"]);
    let tpl = "token: {{ jeton://svc/a }}\nuser: {{jeton://svc/a#username}}\nkeep: {{ other }}\n";
    assert_eq!(
        t.ok(&["inject"], tpl),
        format!("token: {CANARY}\nuser: bob\nkeep: {{{{ other }}}}\n")
    );
    let input = t.home().join("config.tpl");
    let output = t.home().join("config.yml");
    std::fs::write(&input, tpl).unwrap();
    t.ok(
        &[
            "inject",
            "-i",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
        "",
    );
    assert!(std::fs::read_to_string(&output).unwrap().contains(CANARY));
    assert_eq!(
        std::fs::metadata(&output).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let fresh = t.home().join("fresh.yml");
    let bad = "a: {{ jeton://svc/a }}\nb: {{ jeton://svc/missing }}\n";
    t.fails(&["inject", "-o", fresh.to_str().unwrap()], bad, 4);
    assert!(!fresh.exists());
    t.fails(&["inject"], "x: {{ jeton://svc/a", 2);
}

#[test]
fn inject_output_killed_mid_write_is_the_old_file_or_the_new() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let out = t.home().join("config.yml");
    let tpl = "token: {{ jeton://svc/a }}\n";
    let new = format!("token: {CANARY}\n");
    let args = ["inject", "-o", out.to_str().unwrap()];
    hardening::kill_during_write(&t, &args, tpl, &out, b"old config\n", |b| {
        b == new.as_bytes()
    });
}

/// A child process killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git(t: &TestVault, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = Command::new("git");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", t.home())
        .env("XDG_RUNTIME_DIR", t.home().join("run"))
        .env("XDG_DATA_HOME", t.home().join(".local/share"))
        .env("XDG_STATE_HOME", t.home().join(".local/state"))
        .env("XDG_CONFIG_HOME", t.home().join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null());
    c.output().expect("run git")
}

fn have_git_http_backend() -> bool {
    Command::new("git")
        .args(["http-backend"])
        .env("REQUEST_METHOD", "GET")
        .env("GIT_PROJECT_ROOT", "/nonexistent")
        .env("PATH_INFO", "/x/info/refs")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

#[test]
fn git_clone_over_http_takes_the_token_from_jeton() {
    if !have_git_http_backend() || Command::new("python3").arg("-V").output().is_err() {
        skip("git http-backend and python3");
        return;
    }
    let t = TestVault::new();
    let root = t.home().join("srv");
    std::fs::create_dir(&root).unwrap();
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", stderr(&o));
    ok(git(
        &t,
        &root,
        &["init", "-q", "--bare", "-b", "main", "repo.git"],
    ));
    let work = t.home().join("work");
    std::fs::create_dir(&work).unwrap();
    ok(git(&t, &work, &["init", "-q", "-b", "main"]));
    std::fs::write(work.join("README"), "hello from the test repository\n").unwrap();
    ok(git(&t, &work, &["add", "README"]));
    ok(git(
        &t,
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "init",
        ],
    ));
    ok(git(
        &t,
        &work,
        &[
            "push",
            "-q",
            root.join("repo.git").to_str().unwrap(),
            "main",
        ],
    ));

    let mut child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/git_http_server.py"))
        .arg(&root)
        .arg("tester")
        .arg(CANARY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the HTTP server");
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let _server = Server(child);
    let port = port.trim().to_owned();
    assert!(!port.is_empty(), "the server did not start");
    let url = format!("http://127.0.0.1:{port}/repo.git");

    t.add(
        "git/local",
        CANARY,
        &[
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--username",
            "tester",
        ],
    );
    let _agent = unlock(&t, &[]);
    let log = t.home().join("helper.log");
    let helper = format!(
        "!f() {{ echo \"$1\" >> {}; {} git-credential \"$1\"; }}; f",
        log.display(),
        env!("CARGO_BIN_EXE_jeton")
    );
    let clone = |dest: &str| {
        git(
            &t,
            t.home(),
            &[
                "-c",
                "credential.helper=",
                "-c",
                &format!("credential.helper={helper}"),
                "clone",
                "-q",
                &url,
                dest,
            ],
        )
    };

    let out = clone("one");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.home().join("one/README").exists());

    t.ok(&["disable", "git/local"], "");
    let out = clone("two");
    assert_eq!(out.status.code(), Some(128), "{}", stderr(&out));
    t.ok(&["enable", "git/local"], "");

    // A wrong token: git reports the failure with `erase`, and the entry survives it.
    t.ok(&["rotate", "git/local"], "wrong-token");
    std::fs::write(&log, "").unwrap();
    let out = clone("three");
    assert_eq!(out.status.code(), Some(128), "{}", stderr(&out));
    let ops = std::fs::read_to_string(&log).unwrap();
    assert!(ops.contains("erase"), "git never sent erase: {ops}");
    assert_eq!(t.ok(&["get", "git/local"], ""), "wrong-token\n");
}

#[test]
fn git_credential_protocol_details() {
    let t = TestVault::new();
    t.add(
        "git/host",
        "host-token",
        &[
            "--url",
            "https://git.example.com",
            "--username",
            "hostuser",
            "--expires",
            "2030-01-01",
        ],
    );
    t.add(
        "git/repo",
        "repo-token",
        &["--url", "https://git.example.com/org/repo.git"],
    );
    let host = t.ok(
        &["git-credential", "get"],
        "protocol=https\nhost=git.example.com\n\n",
    );
    assert_eq!(
        host,
        "username=hostuser\npassword=host-token\npassword_expiry_utc=1893456000\n"
    );
    let repo = t.ok(
        &["git-credential", "get"],
        "protocol=https\nhost=git.example.com\npath=org/repo.git\nusername=me\n\n",
    );
    assert_eq!(repo, "username=me\npassword=repo-token\n");
    assert_eq!(
        t.ok(
            &["git-credential", "get"],
            "protocol=https\nhost=other.example\n\n"
        ),
        ""
    );
    for op in ["store", "erase"] {
        t.ok(
            &["git-credential", op],
            "protocol=https\nhost=git.example.com\nusername=hostuser\npassword=host-token\n\n",
        );
    }
    assert_eq!(t.ok(&["get", "git/host"], ""), "host-token\n");
    // No agent, no passphrase source, no terminal: nothing on stdout, exit 0, git falls back.
    let out = run_no_pass(
        &t,
        &["git-credential", "get"],
        "protocol=https\nhost=git.example.com\n\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn cargo_credential_provider_protocol() {
    let t = TestVault::new();
    t.add(
        "cargo/local",
        CANARY,
        &["--url", "http://127.0.0.1:8/index"],
    );
    let mut c = t.cmd();
    c.arg("--cargo-plugin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    assert_eq!(line, "{\"v\":[1]}\n");
    // What cargo 1.95 sends, one request per line, on one process.
    let requests = [
        r#"{"v":1,"registry":{"index-url":"sparse+http://127.0.0.1:8/index/","name":"local","headers":["WWW-Authenticate: Cargo login_url=\"x\""]},"kind":"get","operation":"read","args":[]}"#,
        r#"{"v":1,"registry":{"index-url":"sparse+http://127.0.0.1:8/index/","name":"local"},"kind":"get","operation":"publish","name":"demo","vers":"0.1.0","cksum":"00","args":[]}"#,
        r#"{"v":1,"registry":{"index-url":"sparse+https://elsewhere.example/index/","name":"other"},"kind":"get","operation":"read","args":[]}"#,
        r#"{"v":1,"registry":{"index-url":"sparse+http://127.0.0.1:8/index/","name":"local"},"kind":"login","token":"new","args":[]}"#,
    ];
    let mut answers = Vec::new();
    for r in requests {
        writeln!(input, "{r}").unwrap();
        input.flush().unwrap();
        let mut a = String::new();
        output.read_line(&mut a).unwrap();
        answers.push(serde_json::from_str::<serde_json::Value>(&a).unwrap());
    }
    drop(input);
    assert!(child.wait().unwrap().success());
    assert_eq!(answers[0]["Ok"]["token"], CANARY);
    assert_eq!(answers[0]["Ok"]["kind"], "get");
    assert_eq!(answers[0]["Ok"]["cache"], "session");
    assert_eq!(answers[1]["Ok"]["token"], CANARY);
    assert_eq!(answers[2]["Err"]["kind"], "not-found");
    assert_eq!(answers[3]["Err"]["kind"], "operation-not-supported");
    assert_eq!(t.ok(&["get", "cargo/local"], ""), format!("{CANARY}\n"));
}

#[test]
fn docker_credential_helper_protocol() {
    let t = TestVault::new();
    t.add(
        "docker/registry",
        CANARY,
        &[
            "--url",
            "https://registry.example.com:5000",
            "--username",
            "ci",
        ],
    );
    // Docker runs `docker-credential-jeton`: a link to jeton under that name.
    let bin = t.home().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let link = bin.join("docker-credential-jeton");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jeton"), &link).unwrap();
    let helper = |op: &str, input: &str| {
        let mut c = Command::new(&link);
        c.env_clear()
            .env("HOME", t.home())
            .env("XDG_DATA_HOME", t.home().join(".local/share"))
            .env("XDG_STATE_HOME", t.home().join(".local/state"))
            .env("XDG_RUNTIME_DIR", t.home().join("run"))
            .env("JETON_PASSPHRASE", PASS);
        t.run_with(c, &[op], input)
    };
    let out = helper("get", "registry.example.com:5000");
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Secret"], CANARY);
    assert_eq!(v["Username"], "ci");
    assert_eq!(v["ServerURL"], "registry.example.com:5000");

    let out = helper("get", "https://index.docker.io/v1/");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out).trim(),
        "credentials not found in native keychain"
    );

    let out = helper("list", "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["https://registry.example.com:5000"], "ci");
    assert!(!stdout(&out).contains(CANARY));

    let store = r#"{"ServerURL":"registry.example.com:5000","Username":"x","Secret":"other"}"#;
    assert!(helper("store", store).status.success());
    assert!(
        helper("erase", "registry.example.com:5000")
            .status
            .success()
    );
    assert_eq!(t.ok(&["get", "docker/registry"], ""), format!("{CANARY}\n"));
}

#[test]
fn helpers_warn_on_stderr_when_they_hand_out_an_expired_token() {
    let t = TestVault::new();
    t.add(
        "svc/old",
        "old-token",
        &["--url", "http://127.0.0.1:8/index", "--expires", "-1d"],
    );
    t.add(
        "svc/fresh",
        "fresh-token",
        &["--url", "http://127.0.0.2:8/index", "--expires", "30d"],
    );
    let warning = "jeton: warning: 'svc/old' expired at ";
    let cargo_get = |host: &str| {
        format!(
            "{{\"v\":1,\"registry\":{{\"index-url\":\"sparse+http://{host}:8/index/\"}},\
             \"kind\":\"get\",\"operation\":\"read\",\"args\":[]}}\n"
        )
    };
    // cargo: still answered (the registry decides), with the warning cargo shows.
    let out = t.run(&["--cargo-plugin"], &cargo_get("127.0.0.1"));
    assert!(
        stdout(&out).contains("\"token\":\"old-token\""),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains(warning), "cargo: {}", stderr(&out));
    let out = t.run(&["--cargo-plugin"], &cargo_get("127.0.0.2"));
    assert!(stdout(&out).contains("fresh-token"));
    assert_eq!(stderr(&out), "", "a fresh token needs no warning");
    // git: password_expiry_utc tells git, which then drops the password; stderr tells the user.
    let out = t.run(
        &["git-credential", "get"],
        "protocol=http\nhost=127.0.0.1:8\n\n",
    );
    assert!(stdout(&out).contains("password=old-token"));
    assert!(stderr(&out).contains(warning), "git: {}", stderr(&out));
    // exec and inject hand the secret out too; a field of the entry is not the expired token.
    let out = t.run(&["exec", "--env", "T=svc/old", "--", "true"], "");
    assert!(out.status.success());
    assert!(stderr(&out).contains(warning), "exec: {}", stderr(&out));
    let out = t.run(&["inject"], "{{ jeton://svc/old }}");
    assert_eq!(stdout(&out), "old-token");
    assert!(stderr(&out).contains(warning), "inject: {}", stderr(&out));
    let out = t.run(&["inject"], "{{ jeton://svc/old#url }}");
    assert_eq!(stderr(&out), "", "inject of a field: {}", stderr(&out));
    // git gets nothing for a disabled entry; the one diagnostic line is jeton's usual kind.
    t.ok(&["disable", "svc/old"], "");
    let out = t.run(
        &["git-credential", "get"],
        "protocol=http\nhost=127.0.0.1:8\n\n",
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.starts_with("jeton: warning: ") && err.lines().count() == 1,
        "{err}"
    );
}

/// `docker-credential-jeton`, a link to jeton, in the test HOME.
fn docker_helper_link(t: &TestVault) -> std::path::PathBuf {
    let bin = t.home().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let link = bin.join("docker-credential-jeton");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_jeton"), &link).unwrap();
    }
    link
}

/// tests/data/docker_client.go built against the client package of docker-credential-helpers,
/// the code the docker CLI runs to talk to a helper.
fn docker_reference_client(t: &TestVault) -> std::path::PathBuf {
    let out = t.home().join("docker_client");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/docker_client.go"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", t.home())
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", t.home().join("go-cache"))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .output();
    hardening::require(
        "go and the Go client of docker-credential-helpers (Debian: golang-go, \
         golang-github-docker-docker-credential-helpers-dev, golang-golang-x-sys-dev)",
        built.as_ref().is_ok_and(|o| o.status.success()),
    );
    out
}

#[test]
fn docker_reference_client_gets_http_registries_and_reads_every_answer() {
    let t = TestVault::new();
    t.add(
        "docker/insecure",
        CANARY,
        &["--url", "http://127.0.0.1:5000", "--username", "ci"],
    );
    t.add(
        "docker/hub",
        "hub-token",
        &[
            "--url",
            "https://index.docker.io/v1/",
            "--username",
            "hubuser",
            "--expires",
            "-1d",
        ],
    );
    t.add(
        "docker/tls",
        "tls-token",
        &["--url", "https://registry.example.com", "--username", "u2"],
    );
    let link = docker_helper_link(&t);
    let client = docker_reference_client(&t);
    let go = |args: &[&str]| {
        let out = t
            .cmd_for(client.to_str().unwrap())
            .arg(&link)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v, stderr(&out))
    };

    // Docker sends `host:port`, no scheme: an http registry's entry answers it.
    let (v, _) = go(&["get", "127.0.0.1:5000"]);
    assert_eq!(v["creds"]["Secret"], CANARY, "{v}");
    assert_eq!(v["creds"]["Username"], "ci");
    assert_eq!(v["creds"]["ServerURL"], "127.0.0.1:5000");
    let (v, _) = go(&["get", "registry.example.com"]);
    assert_eq!(v["creds"]["Secret"], "tls-token", "{v}");
    // Docker Hub's server URL; the entry has expired: handed out, with a warning.
    let (v, err) = go(&["get", "https://index.docker.io/v1/"]);
    assert_eq!(v["creds"]["Secret"], "hub-token", "{v}");
    assert!(
        err.contains("jeton: warning: 'docker/hub' expired at"),
        "{err}"
    );
    for server in ["registry.example.com:5000", "127.0.0.1:5001"] {
        let (v, _) = go(&["get", server]);
        assert_eq!(v["not_found"], true, "{server}: {v}");
    }
    // The errors the client recognises by their exact text: it then reports its own error
    // ("err: no credentials ...") instead of the exit status.
    for args in [
        &["get", ""][..],
        &["erase", ""][..],
        &["store", "", "u", "s"][..],
    ] {
        let (v, _) = go(args);
        let err = v["err"].as_str().unwrap_or_default();
        assert!(
            err.contains("err: no credentials server URL,"),
            "{args:?}: {v}"
        );
    }
    let (v, _) = go(&["store", "127.0.0.1:5000", "", "s"]);
    let err = v["err"].as_str().unwrap_or_default();
    assert!(err.contains("err: no credentials username,"), "{v}");
    // `docker login` stores: nothing is stored, and the user is told so.
    let (v, err) = go(&["store", "127.0.0.1:5000", "someone", "other-token"]);
    assert_eq!(v["err"], serde_json::Value::Null, "{v}");
    assert!(
        err.contains("read-only") && err.contains("NOT stored"),
        "{err}"
    );
    assert!(!err.contains("other-token"), "{err}");
    let (v, err) = go(&["erase", "127.0.0.1:5000"]);
    assert_eq!(v["err"], serde_json::Value::Null, "{v}");
    assert!(err.contains("nothing was erased"), "{err}");
    let (v, _) = go(&["list"]);
    assert_eq!(v["list"]["http://127.0.0.1:5000"], "ci", "{v}");
    assert_eq!(v["list"]["https://registry.example.com"], "u2", "{v}");
    assert_eq!(t.ok(&["get", "docker/insecure"], ""), format!("{CANARY}\n"));
}

#[test]
fn docker_helper_answers_version_usage_and_bad_input_as_the_reference_helpers() {
    // The strings and exit codes of docker-credential-helpers' credentials/credentials.go
    // (Serve, HandleCommand, Store, PrintVersion): every failure is a message on stdout, exit 1.
    let t = TestVault::new();
    let link = docker_helper_link(&t);
    let helper =
        |args: &[&str], input: &str| t.run_with(t.cmd_for(link.to_str().unwrap()), args, input);
    let version = format!(
        "docker-credential-jeton (jeton) {}\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in ["version", "--version", "-v"] {
        let out = helper(&[flag], "");
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", stderr(&out));
        assert_eq!(stdout(&out), version, "{flag}");
    }
    let out = helper(&[], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Usage: docker-credential-jeton <store|get|erase|list|version>\n"
    );
    let out = helper(&["bogus"], "");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "docker-credential-jeton: unknown action: bogus\n"
    );
    for input in ["", "not json", "{\"ServerURL\":", "[\"CANARY-like\"]"] {
        let out = helper(&["store"], input);
        assert_eq!(
            out.status.code(),
            Some(1),
            "store {input:?}: {}",
            stderr(&out)
        );
        let said = stdout(&out);
        assert!(said.starts_with("cannot read the credentials"), "{said}");
        assert!(!said.contains("CANARY"), "{said}");
    }
    for action in ["get", "erase"] {
        let out = helper(&[action], " \n");
        assert_eq!(out.status.code(), Some(1), "{action}");
        assert_eq!(stdout(&out), "no credentials server URL\n", "{action}");
    }
    // The same under jeton's own name.
    let out = t.run(&["docker-credential", "version"], "");
    assert_eq!(stdout(&out), version);
}

#[test]
fn cargo_resolves_from_a_registry_that_requires_the_token_from_jeton() {
    let Some(cargo) = std::env::var_os("CARGO") else {
        skip("CARGO (set by cargo test)");
        return;
    };
    if Command::new("python3").arg("-V").output().is_err() {
        skip("python3");
        return;
    }
    let t = TestVault::new();
    let mut child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cargo_registry_server.py"))
        .arg(CANARY)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the registry");
    let mut port = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let _server = Server(child);
    let port = port.trim().to_owned();
    assert!(!port.is_empty(), "the registry did not start");
    t.add(
        "cargo/local",
        CANARY,
        &["--url", &format!("http://127.0.0.1:{port}")],
    );

    let cargo_home = t.home().join("cargo-home");
    let app = t.home().join("app");
    std::fs::create_dir_all(&cargo_home).unwrap();
    std::fs::create_dir_all(app.join("src")).unwrap();
    std::fs::write(
        cargo_home.join("config.toml"),
        format!(
            "[registries.local]\nindex = \"sparse+http://127.0.0.1:{port}/index/\"\n\
             credential-provider = [\"{}\", \"cargo-credential\"]\n",
            env!("CARGO_BIN_EXE_jeton")
        ),
    )
    .unwrap();
    std::fs::write(
        app.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\ndemo = { version = \"0.1\", registry = \"local\" }\n",
    )
    .unwrap();
    std::fs::write(app.join("src/lib.rs"), "").unwrap();
    let rustup_home = std::env::var_os("RUSTUP_HOME").unwrap_or_else(|| {
        Path::new(&std::env::var_os("HOME").unwrap_or_default())
            .join(".rustup")
            .into_os_string()
    });
    let resolve = || {
        let mut c = t.cmd();
        c.env("CARGO_HOME", &cargo_home)
            .env("RUSTUP_HOME", &rustup_home)
            .env("CARGO_NET_OFFLINE", "false")
            .current_dir(&app);
        if let Some(tc) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            c.env("RUSTUP_TOOLCHAIN", tc);
        }
        let mut c2 = Command::new(&cargo);
        c2.env_clear();
        for (k, v) in c.get_envs() {
            if let Some(v) = v {
                c2.env(k, v);
            }
        }
        c2.current_dir(&app)
            .args(["generate-lockfile"])
            .stdin(Stdio::null())
            .output()
            .expect("run cargo")
    };
    let out = resolve();
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = std::fs::read_to_string(app.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"demo\""), "{lock}");

    t.ok(&["disable", "cargo/local"], "");
    std::fs::remove_file(app.join("Cargo.lock")).unwrap();
    let out = resolve();
    assert!(!out.status.success(), "cargo resolved without the token");
    assert!(stderr(&out).contains("disabled"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(CANARY));
}
