//! Prompts on a real terminal (a pseudo-terminal driven by tests/data/pty_driver.py): hidden
//! passphrase and secret prompts, asked twice when creating one, and confirmation for `rm`.

mod support;
use support::*;

#[test]
fn init_add_get_rm_on_a_terminal() {
    let t = TestVault::empty();
    let init = [&["init"][..], &CHEAP_KDF].concat();
    // Two different answers: nothing is created.
    let (code, _) = on_tty(
        &t,
        &[
            ("new vault passphrase: ", "one passphrase here"),
            ("(again): ", "another one"),
        ],
        &init,
        false,
    );
    assert_eq!(code, 2);
    assert!(!t.vault_path().exists());
    let (code, text) = on_tty(
        &t,
        &[("new vault passphrase: ", PASS), ("(again): ", PASS)],
        &init,
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(PASS), "the passphrase was echoed: {text}");
    // The secret prompt is used when stdin is a terminal.
    let (code, text) = on_tty(
        &t,
        &[("secret: ", CANARY), ("(again): ", CANARY)],
        &["add", "tty/a"],
        true,
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(CANARY), "the secret was echoed: {text}");
    // After the prompt, the offer to keep the vault unlocked (no: the default answer).
    let (code, text) = on_tty(
        &t,
        &[("jeton passphrase: ", PASS), ("[y/N] ", "")],
        &["get", "tty/a"],
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(CANARY));
    // A wrong passphrase is asked again, three times in all.
    let wrong = ("jeton passphrase: ", "wrong passphrase");
    let (code, text) = on_tty(&t, &[wrong, wrong, wrong], &["get", "tty/a"], false);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("`jeton recover`"), "{text}");
    let (code, _) = on_tty(&t, &[("[y/N] ", "n")], &["rm", "tty/a"], true);
    assert_ne!(code, 0);
    assert_eq!(t.ok(&["get", "-n", "tty/a"], ""), CANARY);
    let (code, _) = on_tty(&t, &[("[y/N] ", "y")], &["rm", "tty/a"], true);
    assert_eq!(code, 0);
    t.fails(&["get", "tty/a"], "", 4);
}
