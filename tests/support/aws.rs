//! AWS for the aws-iam recipe's tests: moto's AWS emulator with the real `aws` CLI, and a fake
//! `aws` CLI (tests/data/fake_aws.py) whose IAM user can be set up with any keys and limit.
#![allow(dead_code)]

use crate::support::TestVault;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where moto's server and the aws CLI are: the virtual environment `$JETON_TEST_AWS_VENV`
/// names (.ci/run sets it and installs them; then they must be there), else
/// /opt/jeton-test-venv if they are installed there.
pub fn aws_venv() -> Option<PathBuf> {
    let installed = |d: &Path| d.join("bin/moto_server").exists() && d.join("bin/aws").exists();
    if let Some(dir) = std::env::var_os("JETON_TEST_AWS_VENV").map(PathBuf::from) {
        assert!(
            installed(&dir),
            "JETON_TEST_AWS_VENV={} has no bin/moto_server or bin/aws",
            dir.display()
        );
        return Some(dir);
    }
    let dir = PathBuf::from("/opt/jeton-test-venv");
    let found = installed(&dir).then_some(dir);
    assert!(
        found.is_some() || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but moto[server] and awscli are not installed (see .ci/run)"
    );
    found
}

/// moto's server on a free port of 127.0.0.1, killed on drop.
pub struct Moto {
    child: std::process::Child,
    endpoint: String,
    bin: PathBuf,
    _home: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first actions are let through unauthenticated so the test can make a user, its policy
/// and its first key; from then on moto checks every signature and policy.
pub const BOOTSTRAP_ACTIONS: u32 = 3;

impl Moto {
    /// Makes IAM user `name`, allowed to manage its own access keys; returns the bootstrap
    /// credentials that made it.
    pub fn user_who_manages_own_keys(&self, name: &str) -> (&'static str, &'static str) {
        let boot = ("bootstrap", "bootstrap");
        self.aws(boot, &["iam", "create-user", "--user-name", name])
            .unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*AccessKey*","sts:GetCallerIdentity"],"Resource":"*"}]}"#;
        self.aws(
            boot,
            &[
                "iam",
                "put-user-policy",
                "--user-name",
                name,
                "--policy-name",
                "keys",
                "--policy-document",
                policy,
            ],
        )
        .unwrap();
        boot
    }

    pub fn start(venv: &Path) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(venv.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                BOOTSTRAP_ACTIONS.to_string(),
            )
            .env("HOME", home.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server");
        let endpoint = format!("http://127.0.0.1:{port}");
        let m = Moto {
            child,
            endpoint,
            bin: venv.join("bin"),
            _home: home,
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return m;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not start");
    }

    /// The environment jeton and the aws CLI run with: the emulator's endpoint and region,
    /// and no credentials of the machine's own.
    pub fn env(&self, c: &mut Command) {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE");
    }

    /// `aws ARGS` as the key `(id, secret)`; stdout, or the failure.
    pub fn aws(&self, key: (&str, &str), args: &[&str]) -> Result<serde_json::Value, String> {
        let mut c = Command::new(self.bin.join("aws"));
        c.env_clear().env("HOME", self._home.path());
        self.env(&mut c);
        c.env("AWS_ACCESS_KEY_ID", key.0)
            .env("AWS_SECRET_ACCESS_KEY", key.1)
            .args(args)
            .args(["--output", "json"]);
        let out = c.output().expect("run aws");
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

pub fn jeton_aws(t: &TestVault, moto: &Moto, args: &[&str]) -> Output {
    let mut c = t.cmd();
    moto.env(&mut c);
    t.run_with(c, args, "")
}

/// The fake `aws` CLI (tests/data/fake_aws.py) first on PATH, its IAM user in a JSON file.
pub struct FakeAws {
    dir: tempfile::TempDir,
}

/// One access key of the fake user: `(id, secret)`.
pub type Key = (String, String);

impl FakeAws {
    /// A user with `keys` (made an hour ago) who may have at most `limit` keys.
    pub fn new(keys: &[Key], limit: usize) -> FakeAws {
        let dir = tempfile::Builder::new()
            .prefix("jeton-fake-aws")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fake_aws.py");
        let aws = bin.join("aws");
        std::fs::write(
            &aws,
            format!("#!/bin/sh\nexec python3 '{}' \"$@\"\n", script.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&aws, std::fs::Permissions::from_mode(0o755)).unwrap();
        let created = jeton::time::rfc3339(jeton::time::now() - 3600);
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|(id, secret)| serde_json::json!({"id": id, "secret": secret, "created": created}))
            .collect();
        let state = serde_json::json!({"limit": limit, "keys": keys, "created": [], "deleted": []});
        let f = FakeAws { dir };
        std::fs::write(f.state_path(), state.to_string()).unwrap();
        f
    }

    fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.state_path()).unwrap()).unwrap()
    }

    fn ids(&self, field: &str) -> Vec<String> {
        self.state()[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                k.as_str()
                    .map_or_else(|| k["id"].as_str().unwrap().to_owned(), str::to_owned)
            })
            .collect()
    }

    /// The ids of the user's keys now.
    pub fn keys(&self) -> Vec<String> {
        self.ids("keys")
    }

    /// Every key id `create-access-key` made.
    pub fn created(&self) -> Vec<String> {
        self.ids("created")
    }

    /// Every key id `delete-access-key` deleted.
    pub fn deleted(&self) -> Vec<String> {
        self.ids("deleted")
    }

    /// Puts the fake CLI first on `c`'s PATH and names its state.
    pub fn env(&self, c: &mut Command) {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("FAKE_AWS_STATE", self.state_path())
            .env_remove("AWS_PROFILE");
    }

    /// `jeton ARGS` with the fake CLI.
    pub fn jeton(&self, t: &TestVault, args: &[&str]) -> Output {
        let mut c = t.cmd();
        self.env(&mut c);
        t.run_with(c, args, "")
    }
}
