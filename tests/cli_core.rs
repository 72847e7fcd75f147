//! The core commands through the real binary: init, add, get, show, list, edit, rename, rm,
//! passwd, completions, man, and their exit codes.

mod support;
use support::*;

#[test]
fn add_get_show_list_round_trip() {
    let t = TestVault::new();
    t.add(
        "github/ci-deploy",
        &format!("{CANARY}\n"),
        &[
            "--scope",
            "repo",
            "--url",
            "https://github.com",
            "--username",
            "bot",
            "--tag",
            "ci",
        ],
    );
    assert_eq!(
        t.ok(&["get", "github/ci-deploy"], ""),
        format!("{CANARY}\n")
    );
    assert_eq!(t.ok(&["get", "-n", "github/ci-deploy"], ""), CANARY);
    assert_eq!(
        t.ok(&["get", "github/ci-deploy", "--field", "username"], ""),
        "bot\n"
    );
    let show = t.ok(&["show", "github/ci-deploy"], "");
    assert!(
        show.contains("https://github.com") && !show.contains(CANARY),
        "{show}"
    );
    assert!(
        t.ok(&["show", "--reveal", "github/ci-deploy"], "")
            .contains(CANARY)
    );
    let list = t.ok(&["list"], "");
    assert!(
        list.contains("github/ci-deploy") && list.contains("repo") && !list.contains(CANARY),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "get", "github/ci-deploy"], "")).unwrap();
    assert_eq!(json["secret"], CANARY);
    assert_eq!(json["scopes"][0], "repo");
    let json: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "show", "github/ci-deploy"], "")).unwrap();
    assert!(json.get("secret").is_none());
}

#[test]
fn only_one_trailing_newline_is_removed_from_stdin() {
    let t = TestVault::new();
    t.add("a", "line1\nline2\n\n", &[]);
    assert_eq!(t.ok(&["get", "-n", "a"], ""), "line1\nline2\n");
}

#[test]
fn generated_secrets() {
    let t = TestVault::new();
    t.ok(
        &[
            "add",
            "gen",
            "--generate",
            "--length",
            "40",
            "--charset",
            "hex",
        ],
        "",
    );
    let s = t.ok(&["get", "-n", "gen"], "");
    assert_eq!(s.len(), 40);
    assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
}

#[test]
fn exit_codes_of_documented_failures() {
    let t = TestVault::new();
    t.add("a", "x", &[]);
    t.fails(&["get", "missing"], "", 4);
    t.fails(&["add", "a"], "y", 9);
    t.fails(&["add", "bad name"], "y", 2);
    t.fails(&["add", "a/../b"], "y", 2);
    t.fails(&["add", "empty"], "", 2);
    t.fails(&["get", "a", "--field", "nope"], "", 2);
    t.fails(&["frobnicate"], "", 2);
    let err = t.run_with(
        {
            let mut c = t.cmd();
            c.env("JETON_PASSPHRASE", "wrong");
            c
        },
        &["get", "a"],
        "",
    );
    assert_eq!(err.status.code(), Some(3));
    let mut c = t.cmd();
    c.env_remove("JETON_PASSPHRASE");
    let out = t.run_with(c, &["get", "a"], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("JETON_PASSPHRASE_FILE"));
    let none = TestVault::empty();
    none.fails(&["list"], "", 4);
}

#[test]
fn passphrase_sources() {
    let t = TestVault::new();
    t.add("a", "v", &[]);
    let file = t.home().join("pass");
    std::fs::write(&file, format!("{PASS}\n")).unwrap();
    for (var, val) in [
        ("JETON_PASSPHRASE_FILE", file.to_str().unwrap().to_owned()),
        (
            "JETON_PASSPHRASE_COMMAND",
            format!("cat '{}'", file.display()),
        ),
    ] {
        let mut c = t.cmd();
        c.env_remove("JETON_PASSPHRASE").env(var, val);
        let out = t.run_with(c, &["get", "a"], "");
        assert!(
            out.status.success(),
            "{var}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The file source wins over the weaker environment variable.
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "wrong")
        .env("JETON_PASSPHRASE_FILE", &file);
    assert!(t.run_with(c, &["get", "a"], "").status.success());
}

#[test]
fn edit_rename_rm() {
    let t = TestVault::new();
    t.add(
        "svc/a",
        "v",
        &["--scope", "read", "--url", "https://a.example"],
    );
    t.ok(
        &[
            "edit",
            "svc/a",
            "--add-scope",
            "write",
            "--rm-scope",
            "read",
            "--url",
            "",
            "--note",
            "n1",
        ],
        "",
    );
    let j: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "show", "svc/a"], "")).unwrap();
    assert_eq!(j["scopes"], serde_json::json!(["write"]));
    assert_eq!(j["url"], serde_json::Value::Null);
    assert_eq!(j["note"], "n1");
    assert_eq!(j["revision"], 2);
    t.ok(&["rename", "svc/a", "svc/b"], "");
    t.fails(&["get", "svc/a"], "", 4);
    assert_eq!(t.ok(&["get", "svc/b"], ""), "v\n");
    t.add("svc/c", "w", &[]);
    t.fails(&["rename", "svc/b", "svc/c"], "", 9);
    t.fails(&["rm", "svc/b"], "", 2);
    assert_eq!(t.ok(&["get", "svc/b"], ""), "v\n");
    t.ok(&["rm", "--yes", "svc/b"], "");
    t.fails(&["get", "svc/b"], "", 4);
}

#[test]
fn list_filters() {
    let t = TestVault::new();
    t.add("gh/a", "1", &["--scope", "repo", "--tag", "ci"]);
    t.add("gh/b", "2", &["--scope", "read", "--expires", "3d"]);
    t.add("aws/c", "3", &["--rotate-every", "1d"]);
    let names = |args: &[&str]| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&t.ok(&[&["--json", "list"][..], args].concat(), "")).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&[]), ["aws/c", "gh/a", "gh/b"]);
    assert_eq!(names(&["gh/"]), ["gh/a", "gh/b"]);
    assert_eq!(names(&["--scope", "repo"]), ["gh/a"]);
    assert_eq!(names(&["--tag", "ci"]), ["gh/a"]);
    assert_eq!(names(&["--due", "7d"]), ["aws/c", "gh/b"]);
    assert_eq!(names(&["--due", "12h"]), Vec::<String>::new());
}

#[test]
fn init_refuses_to_overwrite_and_sets_modes() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestVault::new();
    let before = t.vault_bytes();
    t.fails(&[&["init"][..], &CHEAP_KDF].concat(), "", 9);
    assert_eq!(before, t.vault_bytes());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&t.vault_path()), 0o600);
    assert_eq!(mode(t.vault_path().parent().unwrap()), 0o700);
}

#[test]
fn init_refuses_out_of_bounds_kdf() {
    let t = TestVault::empty();
    t.fails(&["init", "--kdf-memory", "1MiB"], "", 2);
    t.fails(
        &["init", "--kdf-memory", "8MiB", "--kdf-iterations", "17"],
        "",
        2,
    );
    t.fails(&["init", "--kdf-memory", "8MiB", "--kdf-lanes", "0"], "", 2);
    assert!(!t.vault_path().exists());
}

#[test]
fn loose_permissions_warn() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestVault::new();
    std::fs::set_permissions(t.vault_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = t.run(&["list"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by other users"));
}

#[test]
fn passwd_changes_passphrase_and_key() {
    let t = TestVault::new();
    t.add("a", CANARY, &[]);
    let old = t.vault_bytes();
    t.passwd("a brand new passphrase for the vault\n");
    t.fails(&["get", "a"], "", 3);
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "a brand new passphrase for the vault");
    let out = t.run_with(c, &["get", "-n", "a"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), CANARY);
    // The old file with the old passphrase still opens only itself: the new file's key differs.
    let old_file = jeton::format::VaultFile::parse(&old).unwrap();
    let new_file = jeton::format::VaultFile::parse(&t.vault_bytes()).unwrap();
    let old_key =
        jeton::vault::Vault::unlock(&old_file, &jeton::secret::Passphrase::new(PASS.into()))
            .unwrap();
    assert!(jeton::vault::Vault::open(&new_file, old_key).is_err());
    assert_ne!(old_file.header.slots[0].salt, new_file.header.slots[0].salt);
}

#[test]
fn saves_keep_a_backup_and_bump_the_generation() {
    let t = TestVault::new();
    let g = |b: &[u8]| {
        jeton::format::VaultFile::parse(b)
            .unwrap()
            .header
            .generation
    };
    let g0 = g(&t.vault_bytes());
    t.add("a", "1", &[]);
    let before = t.vault_bytes();
    t.add("b", "2", &[]);
    assert_eq!(g(&t.vault_bytes()), g0 + 2);
    let bak = std::fs::read(t.vault_path().with_file_name("vault.jeton.bak")).unwrap();
    assert_eq!(bak, before);
    // Reads never write.
    let after = t.vault_bytes();
    t.ok(&["get", "a"], "");
    t.ok(&["list"], "");
    assert_eq!(after, t.vault_bytes());
}

#[test]
fn closed_pipe_is_not_an_error() {
    let t = TestVault::new();
    t.add("big", &"x".repeat(200_000), &[]);
    for args in [&["get", "big"][..], &["list"], &["man"]] {
        let mut c = t.cmd();
        c.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_no_panic(&out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quietly: {stderr}");
    }
}

/// Help, version, completions and the man page need no vault: they run where no vault path can
/// be found, and a bad value of a global flag does not stop them.
#[test]
fn special_modes_need_no_vault() {
    let t = TestVault::empty();
    let run = |args: &[&str]| {
        let mut c = t.cmd();
        for var in [
            "HOME",
            "XDG_STATE_HOME",
            "XDG_CONFIG_HOME",
            "XDG_RUNTIME_DIR",
        ] {
            c.env_remove(var);
        }
        // Relative, so unusable, and no HOME to fall back on.
        c.env("XDG_DATA_HOME", "relative/data");
        t.run_with(c, args, "")
    };
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["--help"],
        &["--version"],
        &["--lock-timeout", "bogus", "man"],
        &["completions", "zsh", "--lock-timeout", "bogus"],
        &["--lock-timeout", "bogus", "--help"],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!out.stdout.is_empty(), "{args:?}: no output");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    // A command that needs the vault still says it cannot find one.
    let list = run(&["list"]);
    assert_eq!(list.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&list.stderr).contains("cannot find the vault"));
}

#[test]
fn completions_and_man() {
    let t = TestVault::empty();
    assert!(t.ok(&["completions", "bash"], "").contains("jeton"));
    assert!(t.ok(&["man"], "").contains(".TH jeton"));
    let help = t.ok(&["--help"], "");
    assert!(help.contains("Exit codes") && help.contains("7  vault busy"));
}

/// Subcommand arguments are built only for the subcommand that runs (`Deferred` in
/// src/bin/jeton/args.rs); help, the man page and completions still show each one's own
/// description and options, not its arguments struct's doc comment.
#[test]
fn deferred_subcommands_keep_their_help() {
    let t = TestVault::empty();
    for (cmd, about, option) in [
        (
            &["get"][..],
            "Print an entry's secret (or one field)\n",
            "--field",
        ),
        (&["rotate"], "Replace an entry's secret", "--expires"),
        (&["contact", "add"], "Authorise a person", "--ssh-key"),
        (&["config"], "Vault settings", "  set "),
        (&["backup"], "Write a consistent backup", "--output"),
    ] {
        let help = t.ok(&[cmd, &["--help"]].concat(), "");
        assert!(help.starts_with(about), "{cmd:?}: {help}");
        assert!(help.contains(option), "{cmd:?}: {help}");
    }
    let man = t.ok(&["man"], "");
    assert!(man.contains("Create a new vault (refuses to overwrite one)"));
    // The completion script asks `jeton` for the words, which knows every deferred option.
    for (words, option) in [
        (&["jeton", "contact", "add", "x", "--ss"][..], "--ssh-key"),
        (&["jeton", "get", "--fi"], "--field"),
    ] {
        let mut c = t.cmd();
        c.env("JETON_COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string());
        let out = t.run_with(c, &[&["--"][..], words].concat(), "");
        let answer = String::from_utf8_lossy(&out.stdout);
        assert!(answer.contains(option), "{words:?}: {answer}");
    }
}

#[test]
fn lock_held_gives_exit_7() {
    let t = TestVault::new();
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(t.vault_path().with_file_name("vault.jeton.lock"))
        .unwrap();
    lock.lock().unwrap();
    t.fails(&["--lock-timeout", "200ms", "add", "a"], "x", 7);
    // Readers take no lock.
    t.ok(&["list"], "");
    drop(lock);
    t.add("a", "x", &[]);
}

#[test]
fn usage_errors_from_the_argument_parser_are_one_jeton_error_line() {
    let t = TestVault::new();
    for (args, says) in [
        (&["get", "--jsn", "a"][..], "'--jsn'"),
        (&["get"][..], "<NAME>"),
        (&["list", "--status", "bogus"][..], "possible values"),
        (&["init", "--kdf-lanes", "x"][..], "'x'"),
        (&["frobnicate"][..], "'frobnicate'"),
        (&["contact", "add"][..], "<NAME>"),
        (&["--vault"][..], "--vault"),
    ] {
        let out = t.run(args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("jeton: error: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.contains("--help'"), "{args:?}: {err}");
    }
    let err = t.fails(&["contact", "add"], "", 2);
    assert!(err.contains("see 'jeton contact add --help'"), "{err}");
    // A stray positional argument may be a secret typed in the wrong place: not repeated.
    let err = t.fails(&["add", "a", CANARY], "", 2);
    assert!(
        err.starts_with("jeton: error: unexpected argument"),
        "{err}"
    );
    assert!(!err.contains(CANARY), "{err}");
    // Help and version still print as they did, on stdout.
    let help = t.ok(&["--help"], "");
    assert!(
        help.contains("Usage: jeton") && help.contains("Exit codes:"),
        "{help}"
    );
    assert!(t.ok(&["get", "--help"], "").contains("Usage: jeton get"));
    assert_eq!(
        t.ok(&["--version"], ""),
        format!("jeton {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn secrets_are_never_accepted_as_arguments() {
    let t = TestVault::new();
    // A positional secret is a usage error, and nothing is stored.
    t.fails(&["add", "a", CANARY], "", 2);
    t.fails(&["get", "a"], "", 4);
    for cmd in ["add", "init", "passwd"] {
        let help = t.ok(&[cmd, "--help"], "");
        for flag in ["--secret", "--password", "--passphrase ", "--token"] {
            assert!(!help.contains(flag), "{cmd} has a {flag} flag");
        }
    }
}

/// `build.rs` links GCC's unwinder into the binary so that no command loads `libgcc_s.so.1`
/// (CHANGELOG.md, 2026-11-29); this checks that the linker did drop it.
#[test]
fn the_binary_does_not_load_libgcc_s() {
    if !cfg!(jeton_static_unwinder) {
        skip("libgcc_eh.a for build.rs to link");
        return;
    }
    let out = std::process::Command::new("readelf")
        .args(["--dynamic", env!("CARGO_BIN_EXE_jeton")])
        .output()
        .expect("readelf (binutils, which links Rust programs here) runs");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && listing.contains("libc.so"),
        "{listing}"
    );
    assert!(!listing.contains("libgcc_s"), "{listing}");
}
