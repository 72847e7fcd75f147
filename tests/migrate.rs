//! `jeton migrate`: sources built with the real tools (pass + gpg, keepassxc-cli) and a
//! Bitwarden-shaped export (.env files: tests/migrate_dotenv.rs). Every migrated value
//! must equal what the source tool itself prints.

mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

/// Runs a tool, feeding `stdin`; asserts success and returns stdout.
fn tool(mut c: Command, stdin: &str) -> String {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("{c:?}: {e} (installed by .ci/run)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn jeton_json(t: &TestVault, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&t.ok(&[&["--json"][..], args].concat(), "")).unwrap()
}

fn show(t: &TestVault, name: &str) -> serde_json::Value {
    jeton_json(t, &["show", name, "--reveal"])
}

fn secret(t: &TestVault, name: &str) -> String {
    t.ok(&["get", "-n", name], "")
}

/// A throwaway gpg home with one unprotected key, and a pass store initialised for it.
struct PassStore {
    gnupghome: PathBuf,
    store: PathBuf,
}

impl PassStore {
    fn new(dir: &Path) -> PassStore {
        let gnupghome = dir.join("g");
        std::fs::create_dir(&gnupghome).unwrap();
        std::fs::set_permissions(
            &gnupghome,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let p = PassStore {
            gnupghome,
            store: dir.join("store"),
        };
        let mut gpg = p.cmd("gpg");
        gpg.args(["--batch", "--gen-key"]);
        tool(
            gpg,
            "%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nSubkey-Type: ecdh\n\
             Subkey-Curve: cv25519\nName-Real: Test\nName-Email: test@example.com\n\
             Expire-Date: 0\n%commit\n",
        );
        let mut init = p.cmd("pass");
        init.args(["init", "test@example.com"]);
        tool(init, "");
        p
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("GNUPGHOME", &self.gnupghome)
            .env("PASSWORD_STORE_DIR", &self.store);
        c
    }

    fn insert(&self, name: &str, content: &str) {
        let mut c = self.cmd("pass");
        c.args(["insert", "-m", name]);
        tool(c, content);
    }

    fn show(&self, name: &str) -> String {
        let mut c = self.cmd("pass");
        c.args(["show", name]);
        tool(c, "")
    }
}

impl Drop for PassStore {
    fn drop(&mut self) {
        let _ = self.cmd("gpgconf").args(["--kill", "gpg-agent"]).output();
    }
}

#[test]
fn pass_store_through_the_users_gpg() {
    let t = TestVault::new();
    let p = PassStore::new(t.home());
    let items = [
        (
            "github/ci-token",
            "ghp_123 with spaces & \"quotes\" 'x'\nurl: https://github.com\nusername: octo\ntags: ci, prod\nnote: deploy key\nsome free text\nscope: repo\nscope: read:org, workflow\nused-by: ci:github-actions:GH_TOKEN\nrotate-every: 90d\n",
        ),
        (
            "aws/prod eu/key",
            "AKIA:colon é€\n---\nlogin: admin\nexpires: 2030-01-02\n",
        ),
        ("plain", "just-a-secret"),
        ("empty", "\nurl: https://nothing.example\n"),
    ];
    for (n, c) in items {
        p.insert(n, c);
    }
    let mut c = t.cmd();
    c.env("GNUPGHOME", &p.gnupghome);
    let store = p.store.to_string_lossy().into_owned();
    let out = t.run_with(c, &["migrate", "pass", &store], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("migrated 3 entries"), "{stdout}");
    assert!(stdout.contains("left out: empty"), "{stdout}");
    for (n, s) in [
        ("github/ci-token", "github/ci-token"),
        ("aws/prod eu/key", "aws/prod-eu/key"),
        ("plain", "plain"),
    ] {
        let first_line = p.show(n).lines().next().unwrap().to_owned();
        assert_eq!(secret(&t, s), first_line, "{n}");
        assert!(!stdout.contains(&first_line), "secret printed: {stdout}");
    }
    let gh = show(&t, "github/ci-token");
    assert_eq!(gh["url"], "https://github.com");
    assert_eq!(gh["username"], "octo");
    assert_eq!(gh["tags"], serde_json::json!(["ci", "prod"]));
    assert_eq!(gh["note"], "deploy key\nsome free text");
    // jeton's own field names map too (`scope:`, `used-by:`, `rotate-every:`).
    assert_eq!(
        gh["scopes"],
        serde_json::json!(["repo", "read:org", "workflow"])
    );
    assert_eq!(
        gh["used_by"],
        serde_json::json!(["ci:github-actions:GH_TOKEN"])
    );
    assert_eq!(gh["rotate_every"], "90d", "{gh}");
    let aws = show(&t, "aws/prod-eu/key");
    assert_eq!(aws["username"], "admin");
    assert!(
        aws["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-02")
    );
    // Provenance is recorded in the vault; the log says where entries came from.
    assert!(t.ok(&["log", "plain"], "").contains("from pass"));
    let from = &show(&t, "plain")["received_from"];
    assert_eq!(from["from"], "pass");
    assert_eq!(from["reference"], format!("{store}/plain.gpg"));
    // A second run conflicts: nothing is written (exit 9); skip and rename work.
    let mut c = t.cmd();
    c.env("GNUPGHOME", &p.gnupghome);
    let before = t.vault_bytes();
    assert_eq!(
        t.run_with(c, &["migrate", "gopass", &store], "")
            .status
            .code(),
        Some(9)
    );
    assert_eq!(t.vault_bytes(), before);
    let mut c = t.cmd();
    c.env("GNUPGHOME", &p.gnupghome);
    let out = t.run_with(
        c,
        &["migrate", "pass", &store, "--on-conflict", "rename"],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("renamed: plain-2"));
    // Without the key, gpg fails: a clear error naming the file; nothing written.
    let before = t.vault_bytes();
    let mut c = t.cmd();
    c.env("GNUPGHOME", t.home().join("no-such-gpg-home"));
    let out = t.run_with(c, &["migrate", "pass", &store, "--prefix", "x"], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".gpg"));
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn pass_symlinks_are_listed_as_left_out() {
    let t = TestVault::new();
    let p = PassStore::new(t.home());
    p.insert("team/real", "s3cret\n");
    std::os::unix::fs::symlink("real.gpg", p.store.join("team/alias.gpg")).unwrap();
    std::os::unix::fs::symlink("team", p.store.join("shared")).unwrap();
    std::os::unix::fs::symlink("nowhere.gpg", p.store.join("dangling.gpg")).unwrap();
    std::os::unix::fs::symlink("real.gpg", p.store.join("team/not-an-entry.txt")).unwrap();
    let mut c = t.cmd();
    c.env("GNUPGHOME", &p.gnupghome);
    let out = t.run_with(c, &["migrate", "pass", p.store.to_str().unwrap()], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("migrated 1 entries"), "{stdout}");
    for link in ["team/alias", "shared", "dangling"] {
        assert!(
            stdout.contains(&format!("left out: {link} (a symbolic link")),
            "{link}: {stdout}"
        );
    }
    assert!(stdout.contains("3 left out"), "{stdout}");
    assert!(!stdout.contains("not-an-entry"), "{stdout}");
}

/// A KeePass XML with what `keepassxc-cli add` cannot set (tags, expiry, attributes).
const KEEPASS_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<KeePassFile><Meta><Generator>test</Generator></Meta><Root><Group><UUID>AAAAAAAAAAAAAAAAAAAAAQ==</UUID><Name>Root</Name>
<Entry><UUID>AAAAAAAAAAAAAAAAAAAAAg==</UUID><Tags>api;prod</Tags>
<Times><Expires>True</Expires><ExpiryTime>2031-05-06T07:08:09Z</ExpiryTime></Times>
<String><Key>Title</Key><Value>Stripe live</Value></String>
<String><Key>Password</Key><Value ProtectInMemory="True">sk_live_&lt;&amp;&gt;"q"</Value></String>
<String><Key>UserName</Key><Value>billing</Value></String>
<String><Key>URL</Key><Value>https://stripe.example</Value></String>
<String><Key>Notes</Key><Value>two
lines</Value></String>
<String><Key>team</Key><Value>payments</Value></String>
<String><Key>webhook secret</Key><Value ProtectInMemory="True">whsec_123</Value></String>
</Entry></Group></Root></KeePassFile>
"#;

#[test]
fn keepassxc_database_exported_by_keepassxc_cli() {
    let t = TestVault::new();
    let dir = t.home();
    let db = dir.join("db.kdbx").to_string_lossy().into_owned();
    let xml_in = dir.join("in.xml");
    std::fs::write(&xml_in, KEEPASS_XML).unwrap();
    let kp = |args: &[&str], stdin: &str| {
        let mut c = Command::new("keepassxc-cli");
        c.args(args).env("HOME", dir);
        tool(c, stdin)
    };
    kp(
        &[
            "import",
            "-q",
            "-p",
            "-t",
            "100",
            &xml_in.to_string_lossy(),
            &db,
        ],
        "pw\npw\n",
    );
    kp(&["mkdir", "-q", &db, "Cloud"], "pw\n");
    kp(&["mkdir", "-q", &db, "Cloud/AWS prod"], "pw\n");
    kp(
        &[
            "add",
            "-q",
            &db,
            "Cloud/AWS prod/deploy key",
            "-u",
            "alice",
            "--url",
            "https://aws.example",
            "-p",
        ],
        "pw\nS3cr\"et <&> é\n",
    );
    kp(&["add", "-q", &db, "no password"], "pw\n");
    let xml = kp(&["export", "-q", "-f", "xml", &db], "pw\n");
    let export = dir.join("export.xml");
    std::fs::write(&export, &xml).unwrap();
    let e = export.to_string_lossy().into_owned();
    let before = t.vault_bytes();
    let dry = t.ok(&["migrate", "keepassxc", &e, "--dry-run"], "");
    assert!(dry.contains("would migrate 3 entries"), "{dry}");
    assert_eq!(t.vault_bytes(), before, "a dry run wrote the vault");
    let out = t.ok(&["migrate", "keepassxc", &e, "--prefix", "kp"], "");
    assert!(out.contains("left out: no password"), "{out}");
    let pw = |entry: &str| kp(&["show", "-q", "-s", "-a", "password", &db, entry], "pw\n");
    assert_eq!(
        format!("{}\n", secret(&t, "kp/Cloud/AWS-prod/deploy-key")),
        pw("Cloud/AWS prod/deploy key")
    );
    assert_eq!(
        format!("{}\n", secret(&t, "kp/Stripe-live")),
        pw("Stripe live")
    );
    let stripe = show(&t, "kp/Stripe-live");
    assert_eq!(stripe["username"], "billing");
    assert_eq!(stripe["url"], "https://stripe.example");
    assert_eq!(stripe["tags"], serde_json::json!(["api", "prod"]));
    assert_eq!(stripe["expires_at"], "2031-05-06T07:08:09Z");
    assert_eq!(stripe["note"], "two\nlines\nteam: payments");
    // A protected attribute is a secret of its own.
    assert_eq!(secret(&t, "kp/Stripe-live/webhook-secret"), "whsec_123");
    // The CSV export and the database itself are refused, naming the export to use.
    let csv = dir.join("export.csv");
    std::fs::write(&csv, kp(&["export", "-q", "-f", "csv", &db], "pw\n")).unwrap();
    let before = t.vault_bytes();
    let err = t.fails(&["migrate", "keepassxc", &csv.to_string_lossy()], "", 2);
    assert!(err.contains("CSV export"), "{err}");
    assert!(err.contains("keepassxc-cli export --format xml"), "{err}");
    let err = t.fails(&["migrate", "keepassxc", &db], "", 2);
    assert!(err.contains("KeePass database"), "{err}");
    assert!(err.contains("keepassxc-cli export --format xml"), "{err}");
    assert_eq!(t.vault_bytes(), before);
    // Broken XML: the file and line are named, nothing is written.
    let bad = dir.join("bad.xml");
    std::fs::write(&bad, "<KeePassFile>\n<Root>\n<Group></Root>").unwrap();
    let before = t.vault_bytes();
    let err = t.fails(&["migrate", "keepassxc", &bad.to_string_lossy()], "", 2);
    assert!(err.contains("bad.xml line 3"), "{err}");
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn bitwarden_json_export() {
    let t = TestVault::new();
    let json = serde_json::json!({
        "encrypted": false,
        "folders": [{"id": "f1", "name": "Dev/APIs"}],
        "items": [
            {"id": "i1", "organizationId": null, "folderId": "f1", "type": 1, "reprompt": 0,
             "name": "GitHub", "notes": "ci token", "favorite": false,
             "fields": [{"name": "team", "value": "infra", "type": 0, "linkedId": null},
                        {"name": "api key", "value": "hidden-123", "type": 1, "linkedId": null}],
             "login": {"fido2Credentials": [], "uris": [{"match": null, "uri": "https://github.com"},
                       {"match": null, "uri": "https://api.github.com"}],
                       "username": "octo", "password": "gh-\"pw\"\n2", "totp": null},
             "collectionIds": null},
            {"id": "i2", "folderId": null, "type": 1, "name": "GitHub",
             "login": {"uris": [], "username": null, "password": "second"}},
            {"id": "i3", "folderId": null, "type": 2, "name": "Just a note", "notes": "n",
             "secureNote": {"type": 0}},
        ]
    });
    let path = t.home().join("bw.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    let p = path.to_string_lossy().into_owned();
    let out = t.ok(&["migrate", "bitwarden", &p], "");
    assert!(out.contains("migrated 3 entries"), "{out}");
    assert!(out.contains("left out: Just a note"), "{out}");
    assert!(!out.contains("hidden-123") && !out.contains("second"));
    assert_eq!(secret(&t, "Dev/APIs/GitHub"), "gh-\"pw\"\n2");
    assert_eq!(secret(&t, "Dev/APIs/GitHub/api-key"), "hidden-123");
    assert_eq!(secret(&t, "GitHub"), "second");
    let gh = show(&t, "Dev/APIs/GitHub");
    assert_eq!(gh["url"], "https://github.com");
    assert_eq!(gh["username"], "octo");
    assert_eq!(
        gh["note"],
        "ci token\nteam: infra\nuri: https://api.github.com"
    );
    // Encrypted exports and broken JSON are refused with the file (and line) named.
    let enc = t.home().join("enc.json");
    std::fs::write(&enc, r#"{"encrypted": true, "items": []}"#).unwrap();
    let err = t.fails(&["migrate", "bitwarden", &enc.to_string_lossy()], "", 2);
    assert!(err.contains("encrypted"), "{err}");
    let bad = t.home().join("bad.json");
    std::fs::write(
        &bad,
        "{\n\"items\": [\n{\"name\": \"x\", \"login\": {\"password\": \"LEAKME\"}},,\n]}",
    )
    .unwrap();
    let err = t.fails(&["migrate", "bitwarden", &bad.to_string_lossy()], "", 2);
    assert!(err.contains("bad.json line 3"), "{err}");
    assert!(!err.contains("LEAKME"));
    let csv = t.home().join("bw.csv");
    std::fs::write(
        &csv,
        "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
         ,,login,x,,,0,,,LEAKME,\n",
    )
    .unwrap();
    let err = t.fails(&["migrate", "bitwarden", &csv.to_string_lossy()], "", 2);
    assert!(err.contains("bw export --format json"), "{err}");
    assert!(!err.contains("LEAKME"));
    // A byte-order mark before the JSON is not an error.
    let bom = t.home().join("bom.json");
    std::fs::write(&bom, b"\xef\xbb\xbf{\"items\": [{\"type\": 1, \"name\": \"bom\", \"login\": {\"password\": \"b\"}}]}").unwrap();
    t.ok(&["migrate", "bitwarden", &bom.to_string_lossy()], "");
    assert_eq!(secret(&t, "bom"), "b");
    let odd = t.home().join("odd.json");
    std::fs::write(
        &odd,
        r#"{"items": [{"name": "x", "login": {"password": 42}}]}"#,
    )
    .unwrap();
    let err = t.fails(&["migrate", "bitwarden", &odd.to_string_lossy()], "", 2);
    assert!(!err.contains("42"), "{err}");
}

#[test]
fn non_ascii_names_are_transliterated_not_flattened() {
    let t = TestVault::new();
    let json = serde_json::json!({
        "encrypted": false,
        "folders": [{"id": "f1", "name": "Café/Clés"}],
        "items": [
            {"id": "i1", "type": 1, "name": "Ünïcödé", "login": {"password": "one"}},
            {"id": "i2", "type": 1, "name": "Unicode", "login": {"password": "two"}},
            {"id": "i3", "type": 1, "folderId": "f1", "name": "Straße", "login": {"password": "three"}},
            {"id": "i4", "type": 1, "name": "Пароль", "login": {"password": "four"}},
        ]
    });
    let path = t.home().join("bw.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let out = t.ok(&["migrate", "bitwarden", path.to_str().unwrap()], "");
    assert!(out.contains("added: Unicode (from Ünïcödé)"), "{out}");
    assert!(out.contains("added: Unicode-2 (from Unicode)"), "{out}");
    for (name, want) in [
        ("Unicode", "one"),
        ("Unicode-2", "two"),
        ("Cafe/Cles/Strasse", "three"),
        ("Parol", "four"),
    ] {
        assert_eq!(secret(&t, name), want, "{name}: {out}");
    }
}

#[test]
fn bad_sources_and_flags_are_refused_before_writing() {
    let t = TestVault::new();
    let before = t.vault_bytes();
    let env = t.home().join("ok.env");
    std::fs::write(&env, "A=1\n").unwrap();
    let e = env.to_string_lossy().into_owned();
    t.fails(&["migrate", "dotenv", &e, "--prefix", "../x"], "", 2);
    t.fails(&["migrate", "pass", &e], "", 2);
    t.fails(&["migrate", "pass", "/no/such/store"], "", 4);
    t.fails(&["migrate", "keepassxc", &e], "", 2);
    t.fails(&["migrate", "bitwarden", &e], "", 2);
    t.fails(&["migrate", "nosuchformat", &e], "", 2);
    let empty = t.home().join("empty.env");
    std::fs::write(&empty, "# nothing\n").unwrap();
    t.fails(&["migrate", "dotenv", &empty.to_string_lossy()], "", 2);
    assert_eq!(t.vault_bytes(), before);
    // Without a vault: exit 4 once the source parsed.
    let none = TestVault::empty();
    none.fails(&["migrate", "dotenv", &e], "", 4);
    // recover with no recovery key source and no terminal: exit 3, naming the options.
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE");
    let out = t.run_with(c, &["recover"], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JETON_RECOVERY_KEY_FILE"));
}

#[test]
fn a_broken_keepassxc_export_names_the_line_where_it_breaks() {
    let t = TestVault::new();
    let whole = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<KeePassFile><Root><Group><Name>Root</Name>\n<Entry><UUID>AAAAAAAAAAAAAAAAAAAAAg==</UUID>\n<String><Key>Title</Key><Value>Cloud</Value></String>\n<String><Key>Password</Key><Value ProtectInMemory=\"True\">pw</Value></String>\n</Entry></Group></Root></KeePassFile>\n";
    let path = t.home().join("kp.xml");
    let p = path.to_string_lossy().into_owned();
    // Cut short in line 5, after line 3, and at the very end of the root.
    for (cut, line) in [
        (whole.find("Protect").unwrap(), 5),
        (whole.find("<String>").unwrap(), 3),
    ] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        let err = t.fails(&["migrate", "keepassxc", &p], "", 2);
        assert!(
            err.contains(&format!("line {line}:")) && err.contains("ends too early"),
            "cut at {cut}: {err}"
        );
        assert!(!err.contains("pw<"), "{err}");
    }
    // A mistake inside the file: its own line.
    std::fs::write(&path, whole.replace("</Entry>", "</Entri>")).unwrap();
    let err = t.fails(&["migrate", "keepassxc", &p], "", 2);
    assert!(
        err.contains("line 6:") && err.contains("invalid XML"),
        "{err}"
    );
    std::fs::write(&path, whole).unwrap();
    t.ok(&["migrate", "keepassxc", &p], "");
}
