//! `add` and `rotate` on a terminal check the name before the secret is typed: a name that is
//! invalid, taken (`add`) or missing or revoked (`rotate`) is refused before any secret prompt,
//! so nobody types a token twice for nothing. The pty driver kills a command that asks what it
//! was not told to answer, so a secret prompt here fails the test.

mod support;
use support::*;

const PROMPT: &str = "jeton passphrase: ";

fn vault() -> TestVault {
    let t = TestVault::new();
    t.add("svc/a", "old-value", &[]);
    t.add("svc/gone", "old-value", &[]);
    t.ok(&["revoke", "svc/gone", "--yes"], "");
    t
}

/// Runs on a terminal with `pairs` answered; asserts the exit code and that no secret prompt
/// was shown. Returns the terminal text.
fn refused(t: &TestVault, pairs: &[(&str, &str)], args: &[&str], typed: bool, code: i32) -> String {
    let (got, text) = on_tty(t, pairs, args, !typed);
    assert_eq!(got, code, "jeton {args:?}: {text}");
    assert!(
        !text.contains("secret: ") && !text.contains("seed"),
        "jeton {args:?} asked for the secret first: {text}"
    );
    assert!(text.contains("jeton: error: "), "{text}");
    text
}

#[test]
fn add_refuses_a_taken_name_before_the_secret_prompt() {
    let t = vault();
    let text = refused(&t, &[], &["add", "svc/a"], false, 9);
    assert!(text.contains("already exists"), "{text}");
    let text = refused(&t, &[], &["add", "svc/gone"], false, 9);
    assert!(text.contains("tombstone"), "{text}");
    let text = refused(&t, &[], &["add", "svc/a", "--totp"], false, 9);
    assert!(text.contains("already exists"), "{text}");
    // With the passphrase typed too: asked once, then the refusal, no secret prompt.
    let text = refused(&t, &[(PROMPT, PASS)], &["add", "svc/a"], true, 9);
    assert_eq!(text.matches("jeton passphrase").count(), 1, "{text}");
    // An invalid name needs no vault at all.
    let text = refused(&t, &[], &["add", "bad//name"], true, 2);
    assert!(!text.contains("jeton passphrase"), "{text}");
    assert_eq!(t.ok(&["get", "-n", "svc/a"], ""), "old-value");
}

#[test]
fn rotate_refuses_a_missing_or_revoked_entry_before_the_secret_prompt() {
    let t = vault();
    let text = refused(&t, &[], &["rotate", "svc/b"], false, 4);
    assert!(
        text.contains("no entry named 'svc/b'") && text.contains("did you mean 'svc/a'"),
        "{text}"
    );
    let text = refused(&t, &[], &["rotate", "svc/gone"], false, 5);
    assert!(text.contains("revoked"), "{text}");
    let text = refused(&t, &[(PROMPT, PASS)], &["rotate", "svc/b"], true, 4);
    assert_eq!(text.matches("jeton passphrase").count(), 1, "{text}");
    refused(&t, &[], &["rotate", "bad//name"], true, 2);
}

#[test]
fn a_free_name_asks_the_passphrase_once_then_the_secret() {
    let t = vault();
    let (code, text) = on_tty(
        &t,
        &[
            (PROMPT, PASS),
            ("secret: ", CANARY),
            ("(again): ", CANARY),
            ("[y/N] ", ""),
        ],
        &["add", "svc/new"],
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("jeton passphrase").count(), 1, "{text}");
    assert_eq!(t.ok(&["get", "-n", "svc/new"], ""), CANARY);
    let (code, text) = on_tty(
        &t,
        &[
            (PROMPT, PASS),
            ("secret: ", "rotated-value"),
            ("(again): ", "rotated-value"),
            ("[y/N] ", ""),
        ],
        &["rotate", "svc/new"],
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(text.matches("jeton passphrase").count(), 1, "{text}");
    assert_eq!(t.ok(&["get", "-n", "svc/new"], ""), "rotated-value");
    // Piped secrets are read as before: the name is checked by the command itself.
    t.fails(&["add", "svc/a"], "x", 9);
    t.fails(&["rotate", "svc/b"], "x", 4);
}
