//! `jeton migrate dotenv` against python-dotenv, the reference reader of `.env` files: every file
//! of `tests/data/dotenv/` is read by python-dotenv's `dotenv_values` at test time and by jeton,
//! and every value jeton stored must equal python-dotenv's (`interpolate=False` by default,
//! `interpolate=True` with `--expand`). A file whose first line is `# error: line N: TEXT` is
//! one python-dotenv cannot read either: jeton must refuse it, naming line N and the reason.

mod support;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use support::*;

/// The one environment variable the corpus expands from (besides unset names).
const FROM_ENV: (&str, &str) = ("DOTENV_TEST_FROM_ENV", "from-env");

/// Reads every file with python-dotenv: `{path: {"plain": {...}, "expand": {...}, "errors": [...]}}`.
/// The file is opened as `utf-8-sig`: python-dotenv strips a leading byte-order mark from its
/// next release on, as jeton does; older releases keep it in the first key.
const REFERENCE: &str = r#"
import json, logging, sys
from dotenv import dotenv_values
errors = []
class Catch(logging.Handler):
    def emit(self, record):
        errors.append(record.getMessage())
logging.getLogger("dotenv.main").addHandler(Catch())
out = {}
for path in sys.argv[1:]:
    res = {}
    errors.clear()
    for key, interpolate in (("plain", False), ("expand", True)):
        with open(path, encoding="utf-8-sig") as f:
            res[key] = dotenv_values(stream=f, interpolate=interpolate)
    res["errors"] = list(errors)
    out[path] = res
print(json.dumps(out))
"#;

/// Debian's interpreter, where `.ci/run` installs python3-dotenv, before any other on PATH.
fn python(t: &TestVault, args: &[&str]) -> std::process::Output {
    let debian = std::path::Path::new("/usr/bin/python3");
    let mut c = t.cmd_for(if debian.exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    });
    c.env(FROM_ENV.0, FROM_ENV.1).args(args);
    c.output()
        .unwrap_or_else(|e| panic!("cannot run python3 (installed by .ci/run): {e}"))
}

/// What python-dotenv reads in each file. Fails (never skips) without python3-dotenv.
fn reference(t: &TestVault, files: &[PathBuf]) -> Map<String, Value> {
    let probe = python(t, &["-c", "import dotenv"]);
    assert!(
        probe.status.success(),
        "python3-dotenv is needed by this test (apt-get install python3-dotenv; .ci/run does): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let mut args = vec!["-c", REFERENCE];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let out = python(t, &args);
    assert!(
        out.status.success(),
        "python-dotenv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dotenv");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "env"))
        .collect();
    files.sort();
    files
}

fn migrate(t: &TestVault, file: &Path, prefix: &str, expand: bool) -> std::process::Output {
    let mut c = t.cmd();
    c.env(FROM_ENV.0, FROM_ENV.1);
    let file = file.to_str().unwrap();
    let mut args = vec!["--json", "migrate", "dotenv", file, "--prefix", prefix];
    if expand {
        args.push("--expand");
    }
    t.run_with(c, &args, "")
}

/// Checks that what jeton stored from `file` is exactly `expected` (python-dotenv's dict).
fn check_values(t: &TestVault, file: &Path, prefix: &str, expand: bool, expected: &Value) {
    let expected = expected.as_object().unwrap();
    let what = format!("{} (expand: {expand})", file.display());
    let out = migrate(t, file, prefix, expand);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let items = report["items"].as_array().unwrap();
    let unusable = report["unusable"].as_array().unwrap();
    let mut secrets = 0;
    for (key, value) in expected {
        let named = |list: &[Value]| -> Option<Value> {
            list.iter().find(|i| i["original"] == key.as_str()).cloned()
        };
        match value.as_str() {
            Some(v) if !v.is_empty() => {
                let item = named(items).unwrap_or_else(|| panic!("{what}: {key:?} not migrated"));
                assert_eq!(item["action"], "added", "{what}: {key:?}");
                let name = item["name"].as_str().unwrap();
                assert_eq!(t.ok(&["get", "-n", name], ""), v, "{what}: {key:?}");
                secrets += 1;
            }
            _ => {
                let why = if value.is_null() {
                    "no value"
                } else {
                    "empty value"
                };
                let reported = unusable.iter().any(|u| {
                    u["original"] == key.as_str() && u["reason"].as_str().unwrap().contains(why)
                });
                assert!(reported, "{what}: {key:?} not reported: {stdout}");
            }
        }
    }
    assert_eq!(items.len(), secrets, "{what}: extra entries: {stdout}");
}

#[test]
fn dotenv_values_equal_what_python_dotenv_reads_on_the_corpus() {
    let t = TestVault::new();
    let files = corpus();
    assert!(files.len() >= 30, "the corpus is missing");
    let reference = reference(&t, &files);
    let (mut values, mut errors) = (0, 0);
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = &reference[file.to_str().unwrap()];
        let python_failed = !expected["errors"].as_array().unwrap().is_empty();
        if let Some(header) = text.lines().next().unwrap().strip_prefix("# error: ") {
            assert!(python_failed, "{}: python-dotenv reads it", file.display());
            let before = t.vault_bytes();
            let out = migrate(&t, file, &format!("e{i}"), false);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{}: {err}", file.display());
            let (line, reason) = header.split_once(": ").unwrap();
            assert!(
                err.contains(&format!("{line}: ")),
                "{}: {err}",
                file.display()
            );
            assert!(err.contains(reason), "{}: {err}", file.display());
            assert!(err.contains("nothing was migrated"), "{err}");
            assert_eq!(t.vault_bytes(), before, "{}", file.display());
            errors += 1;
            continue;
        }
        assert!(
            !python_failed,
            "{}: python-dotenv cannot read it: {}",
            file.display(),
            expected["errors"]
        );
        check_values(&t, file, &format!("c{i}"), false, &expected["plain"]);
        if text.contains("${") {
            check_values(&t, file, &format!("x{i}"), true, &expected["expand"]);
        }
        values += expected["plain"].as_object().unwrap().len();
    }
    assert!(
        values >= 100 && errors >= 10,
        "{values} values, {errors} errors"
    );
}

#[test]
fn dollar_signs_are_kept_unless_expand_is_asked_for() {
    let t = TestVault::new();
    let path = t.home().join("app.env");
    std::fs::write(
        &path,
        "PW=abc$def\nPASS=pa$$word\nFALLBACK=${UNSET_FOR_TEST:-fallback}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    t.ok(&["migrate", "dotenv", p, "--prefix", "plain"], "");
    assert_eq!(t.ok(&["get", "-n", "plain/PW"], ""), "abc$def");
    assert_eq!(t.ok(&["get", "-n", "plain/PASS"], ""), "pa$$word");
    assert_eq!(
        t.ok(&["get", "-n", "plain/FALLBACK"], ""),
        "${UNSET_FOR_TEST:-fallback}"
    );
    t.ok(&["migrate", "dotenv", p, "--prefix", "exp", "--expand"], "");
    assert_eq!(t.ok(&["get", "-n", "exp/FALLBACK"], ""), "fallback");
    assert_eq!(t.ok(&["get", "-n", "exp/PW"], ""), "abc$def");
    // --expand is for dotenv only.
    let before = t.vault_bytes();
    let err = t.fails(&["migrate", "bitwarden", p, "--expand"], "", 2);
    assert!(err.contains("--expand"), "{err}");
    assert_eq!(t.vault_bytes(), before);
}

#[test]
fn expand_never_copies_jeton_settings_into_an_entry() {
    let t = TestVault::new();
    let path = t.home().join("evil.env");
    std::fs::write(&path, "A=1\nB=x${JETON_PASSPHRASE}\n").unwrap();
    let p = path.to_str().unwrap();
    let before = t.vault_bytes();
    let err = t.fails(&["migrate", "dotenv", p, "--expand"], "", 2);
    assert!(err.contains("line 2") && err.contains("JETON_"), "{err}");
    assert_eq!(t.vault_bytes(), before);
    // Unexpanded, it is only text.
    t.ok(&["migrate", "dotenv", p], "");
    assert_eq!(t.ok(&["get", "-n", "B"], ""), "x${JETON_PASSPHRASE}");
}

#[test]
fn the_last_of_two_equal_keys_wins_and_the_first_is_reported() {
    let t = TestVault::new();
    let path = t.home().join("dup.env");
    std::fs::write(&path, "DUP=first\nOTHER=1\nDUP=second\nBARE\nEMPTY=\n").unwrap();
    let out = t.ok(&["migrate", "dotenv", path.to_str().unwrap()], "");
    assert_eq!(t.ok(&["get", "-n", "DUP"], ""), "second");
    t.fails(&["get", "DUP-2"], "", 4);
    assert!(out.contains("migrated 2 entries"), "{out}");
    assert!(
        out.contains("left out: DUP (line 1: set again later"),
        "{out}"
    );
    assert!(out.contains("left out: BARE (no value"), "{out}");
    assert!(out.contains("left out: EMPTY (empty value)"), "{out}");
}

#[test]
fn a_tab_escape_is_a_tab_and_errors_say_what_is_wrong() {
    let t = TestVault::new();
    let path = t.home().join("tab.env");
    std::fs::write(&path, "TAB=\"a\\tb\"\n").unwrap();
    t.ok(&["migrate", "dotenv", path.to_str().unwrap()], "");
    assert_eq!(t.ok(&["get", "-n", "TAB"], ""), "a\tb");
    // An unterminated quote: file and line named, nothing written, no content echoed.
    let bad = t.home().join("bad.env");
    std::fs::write(&bad, "A=1\nB=\"SECRETVALUE\n").unwrap();
    let before = t.vault_bytes();
    let err = t.fails(&["migrate", "dotenv", bad.to_str().unwrap()], "", 2);
    assert!(
        err.contains("bad.env line 2: unterminated double quote"),
        "{err}"
    );
    assert!(!err.contains("SECRETVALUE"), "{err}");
    let junk = t.home().join("junk.env");
    std::fs::write(&junk, "A=\"x\" SECRETVALUE\n").unwrap();
    let err = t.fails(&["migrate", "dotenv", junk.to_str().unwrap()], "", 2);
    assert!(
        err.contains("line 1: unexpected text after the closing quote"),
        "{err}"
    );
    assert!(!err.contains("SECRETVALUE"), "{err}");
    assert_eq!(t.vault_bytes(), before);
    t.fails(&["migrate", "dotenv", "/no/such/file"], "", 4);
}

#[test]
fn dotenv_entries_remember_where_they_came_from() {
    let t = TestVault::new();
    let path = t.home().join(".env");
    std::fs::write(&path, "export PLAIN=plain-value # comment\n").unwrap();
    let p = path.to_str().unwrap();
    t.ok(&["migrate", "dotenv", p, "--prefix", "app"], "");
    assert!(t.ok(&["log", "app/PLAIN"], "").contains("from dotenv"));
    let show: Value =
        serde_json::from_str(&t.ok(&["--json", "show", "app/PLAIN", "--reveal"], "")).unwrap();
    assert_eq!(show["received_from"]["from"], "dotenv");
    assert_eq!(show["received_from"]["reference"], format!("{p}#PLAIN"));
}
