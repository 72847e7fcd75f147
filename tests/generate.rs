//! `generate` and `add/rotate --generate`: characters with exclusions, EFF word passphrases,
//! and the entropy `-v` reports.

mod support;
use jeton::generate::eff_words;
use support::*;

#[test]
fn generate_needs_no_vault_and_prints_a_secret() {
    let t = TestVault::empty();
    let out = t.ok(&["generate"], "");
    let secret = out.strip_suffix('\n').unwrap();
    assert_eq!(secret.len(), 32);
    assert!(
        secret.chars().all(|c| c.is_ascii_alphanumeric()),
        "{secret}"
    );
    assert_ne!(t.ok(&["generate"], ""), out);
    assert!(!t.vault_path().exists());
    assert_eq!(
        t.ok(&["generate", "--length", "12", "--charset", "hex"], "")
            .len(),
        13
    );
}

#[test]
fn words_come_from_the_eff_long_list() {
    let t = TestVault::empty();
    let out = t.ok(&["generate", "--words", "7", "--separator", " "], "");
    let words: Vec<&str> = out.trim_end().split(' ').collect();
    assert_eq!(words.len(), 7, "{out}");
    assert!(words.iter().all(|w| eff_words().contains(w)), "{out}");
    let out = t.ok(&["generate", "--words", "4"], "");
    assert!(out.trim_end().split('-').count() >= 4, "{out}");
}

#[test]
fn excluded_characters_never_appear() {
    let t = TestVault::empty();
    let out = t.ok(
        &[
            "generate",
            "--length",
            "4000",
            "--charset",
            "ascii",
            "--exclude",
            "O0Il1'\"`\\",
        ],
        "",
    );
    assert_eq!(out.trim_end().len(), 4000);
    assert!(
        !out.trim_end()
            .contains(['O', '0', 'I', 'l', '1', '\'', '"', '`', '\\'])
    );
}

#[test]
fn verbose_reports_the_entropy_on_stderr() {
    let t = TestVault::empty();
    let out = t.run(&["generate", "--words", "6", "-v"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("77.5 bits of entropy (6 words from a list of 7776)"),
        "{err}"
    );
    let out = t.run(
        &["generate", "--length", "20", "--charset", "hex", "-v"],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("80.0 bits of entropy (20 characters from 16)"),
        "{err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "generate", "--words", "5"], "")).unwrap();
    assert_eq!(v["entropy_bits"], 64.6);
}

#[test]
fn bad_recipes_are_usage_errors() {
    let t = TestVault::empty();
    for args in [
        &["generate", "--words", "2"][..],
        &["generate", "--words", "65"],
        &["generate", "--words", "5", "--length", "10"],
        &["generate", "--words", "5", "--exclude", "a"],
        &[
            "generate",
            "--charset",
            "hex",
            "--exclude",
            "0123456789abcde",
        ],
        &["generate", "--separator", "."],
        &["generate", "--length", "4"],
    ] {
        t.fails(args, "", 2);
    }
}

#[test]
fn add_and_rotate_generate_words_and_exclude_characters() {
    let t = TestVault::new();
    t.ok(
        &[
            "add",
            "svc/a",
            "--generate",
            "--words",
            "5",
            "--separator",
            ".",
        ],
        "",
    );
    let secret = t.ok(&["get", "svc/a"], "");
    let words: Vec<&str> = secret.trim_end().split('.').collect();
    assert_eq!(words.len(), 5, "{secret}");
    assert!(words.iter().all(|w| eff_words().contains(w)));
    t.ok(
        &[
            "rotate",
            "svc/a",
            "--generate",
            "--words",
            "4",
            "--separator",
            " ",
        ],
        "",
    );
    assert_eq!(t.ok(&["get", "svc/a"], "").trim_end().split(' ').count(), 4);
    t.ok(
        &[
            "add",
            "svc/b",
            "--generate",
            "--length",
            "300",
            "--exclude",
            "aeiou",
        ],
        "",
    );
    let b = t.ok(&["get", "svc/b"], "");
    assert_eq!(b.trim_end().len(), 300);
    assert!(!b.contains(['a', 'e', 'i', 'o', 'u']), "{b}");
    t.fails(&["add", "svc/c", "--words", "4"], "x", 2);
}

/// Every symbol of `--charset ascii` but `#`.
const SYMBOLS_BUT_HASH: &str = "!\"$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

#[test]
fn required_classes_always_appear() {
    let t = TestVault::empty();
    for _ in 0..20 {
        let out = t.ok(
            &[
                "generate",
                "--length",
                "8",
                "--charset",
                "ascii",
                "--require",
                "upper,lower,digit,symbol",
                "--exclude",
                SYMBOLS_BUT_HASH,
            ],
            "",
        );
        let s = out.trim_end();
        assert_eq!(s.len(), 8, "{s}");
        // One symbol of 63 characters: mostly missing from a plain draw, here always there.
        assert!(s.contains('#'), "{s}");
        assert!(s.chars().any(|c| c.is_ascii_uppercase()), "{s}");
        assert!(s.chars().any(|c| c.is_ascii_lowercase()), "{s}");
        assert!(s.chars().any(|c| c.is_ascii_digit()), "{s}");
    }
    // The classes may repeat and come in any order.
    let out = t.ok(
        &["generate", "--require", "digit", "--require", "digit,upper"],
        "",
    );
    assert!(out.trim_end().chars().any(|c| c.is_ascii_digit()), "{out}");
}

#[test]
fn impossible_requirements_are_usage_errors() {
    let t = TestVault::empty();
    for (args, says) in [
        (&["generate", "--require", "symbol"][..], "symbol"),
        (
            &[
                "generate",
                "--charset",
                "hex",
                "--exclude",
                "0123456789",
                "--require",
                "digit",
            ],
            "digit",
        ),
        (
            &["generate", "--charset", "hex", "--require", "upper"],
            "upper",
        ),
        (
            &["generate", "--words", "5", "--require", "digit"],
            "--words",
        ),
        (&["generate", "--require", "vowel"], "possible values"),
    ] {
        let err = t.fails(args, "", 2);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let t = TestVault::new();
    t.fails(
        &[
            "add",
            "svc/a",
            "--generate",
            "--charset",
            "alnum",
            "--require",
            "symbol",
        ],
        "",
        2,
    );
    t.fails(&["add", "svc/a", "--require", "digit"], "s", 2);
}

#[test]
fn verbose_entropy_counts_only_secrets_that_meet_the_requirement() {
    let t = TestVault::empty();
    let out = t.run(
        &[
            "generate",
            "--length",
            "8",
            "--require",
            "upper,lower,digit",
            "-v",
        ],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // 62^8 less those missing a class (inclusion-exclusion): 47.18 bits, not 8 x log2(62) = 47.63.
    assert!(
        err.contains(
            "47.2 bits of entropy (8 characters from 62, with at least one upper, lower, digit)"
        ),
        "{err}"
    );
}

#[test]
fn add_and_rotate_generate_with_required_classes() {
    let t = TestVault::new();
    let flags = [
        "--generate",
        "--length",
        "8",
        "--charset",
        "ascii",
        "--exclude",
        SYMBOLS_BUT_HASH,
        "--require",
        "symbol",
    ];
    t.ok(&[&["add", "svc/a"][..], &flags].concat(), "");
    assert!(t.ok(&["get", "svc/a"], "").contains('#'));
    for _ in 0..5 {
        t.ok(&[&["rotate", "svc/a"][..], &flags].concat(), "");
        assert!(t.ok(&["get", "svc/a"], "").contains('#'));
    }
}
