//! `list`: host and tags columns, the JSON fields, `--tree`, and colour only on a terminal
//! without NO_COLOR (a pseudo-terminal driven by tests/data/pty_driver.py).

mod support;
use support::*;

fn vault() -> TestVault {
    let t = TestVault::new();
    t.add(
        "github/ci-deploy",
        "s",
        &[
            "--url",
            "https://bot@api.github.com/repos?x=1",
            "--username",
            "bot",
            "--tag",
            "ci",
            "--tag",
            "prod",
            "--scope",
            "repo",
        ],
    );
    t.add("github/work", "s", &["--url", "http://127.0.0.1:5000"]);
    t.add("gitlab/ci/runner", "s", &["--tag", "ci"]);
    t.add("npm", "s", &["--url", "registry.npmjs.org/"]);
    t
}

/// `jeton ARGS` on a terminal: what the terminal showed.
fn on_tty(t: &TestVault, env: &[(&str, &str)], args: &[&str]) -> String {
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let mut c = t.cmd_for("python3");
    c.env("TERM", "xterm");
    for (k, v) in env {
        c.env(k, v);
    }
    c.arg(driver)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_jeton"))
        .args(args);
    let out = c.output().expect("run the pty driver");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{text}");
    text
}

#[test]
fn list_shows_host_and_tags_columns() {
    let t = vault();
    let out = t.ok(&["list"], "");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "NAME",
            "STATUS",
            "HOST",
            "TAGS",
            "SCOPES",
            "EXPIRES",
            "ROTATE-BY"
        ],
        "{out}"
    );
    assert_eq!(
        rows[1],
        [
            "github/ci-deploy",
            "active",
            "api.github.com",
            "ci,prod",
            "repo",
            "-",
            "-"
        ],
        "{out}"
    );
    assert_eq!(rows[2][..3], ["github/work", "active", "127.0.0.1:5000"]);
    assert_eq!(rows[3][..4], ["gitlab/ci/runner", "active", "-", "ci"]);
    assert_eq!(rows[4][..3], ["npm", "active", "registry.npmjs.org"]);
    assert!(!out.contains('\x1b'), "{out:?}");
    // The columns line up: every row's host starts where the header's does.
    let at = out.lines().next().unwrap().find("HOST").unwrap();
    assert!(
        out.lines().skip(1).all(|l| !l[at..].starts_with(' ')),
        "{out}"
    );
}

#[test]
fn list_json_carries_url_username_and_tags() {
    let t = vault();
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["--json", "list"], "")).unwrap();
    let first = &v[0];
    assert_eq!(first["name"], "github/ci-deploy");
    assert_eq!(first["url"], "https://bot@api.github.com/repos?x=1");
    assert_eq!(first["username"], "bot");
    assert_eq!(first["tags"], serde_json::json!(["ci", "prod"]));
    assert_eq!(first["scopes"], serde_json::json!(["repo"]));
    assert_eq!(v[2]["url"], serde_json::Value::Null);
    assert_eq!(v[2]["username"], serde_json::Value::Null);
    assert!(first.get("secret").is_none());
}

#[test]
fn tree_draws_folders() {
    let t = vault();
    t.add("github", "s", &[]);
    t.add("old/thing", "s", &[]);
    t.ok(&["disable", "old/thing"], "");
    let out = t.ok(&["list", "--tree", "--status", "all"], "");
    assert_eq!(
        out,
        "\
├── github/ (also an entry)
│   ├── ci-deploy
│   └── work
├── gitlab/
│   └── ci/
│       └── runner
├── npm
└── old/
    └── thing (disabled)
",
        "{out}"
    );
    // Filters apply as in the table.
    assert_eq!(
        t.ok(&["list", "--tree", "--tag", "ci"], ""),
        "├── github/\n│   └── ci-deploy\n└── gitlab/\n    └── ci/\n        └── runner\n"
    );
    t.fails(&["--json", "list", "--tree"], "", 2);
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    let t = vault();
    let plain = t.ok(&["list"], "");
    assert!(!plain.contains('\x1b'));
    assert!(!t.ok(&["list", "--tree"], "").contains('\x1b'));
    let coloured = on_tty(&t, &[], &["list"]);
    assert!(
        coloured.contains("\x1b[2mgithub/\x1b[0m\x1b[1mci-deploy\x1b[0m"),
        "{coloured:?}"
    );
    let tree = on_tty(&t, &[], &["list", "--tree"]);
    assert!(tree.contains("\x1b[1mgithub/\x1b[0m"), "{tree:?}");
    for (k, v) in [("NO_COLOR", "1"), ("TERM", "dumb")] {
        for args in [&["list"][..], &["list", "--tree"]] {
            let out = on_tty(&t, &[(k, v)], args);
            assert!(out.contains("ci-deploy"), "{out:?}");
            assert!(!out.contains('\x1b'), "{k}={v} {args:?}: {out:?}");
        }
    }
}
