//! stdout carries the requested data alone: a passphrase typed at the terminal, then `y` to
//! "keep the vault unlocked in the agent?", changes nothing on stdout (`T=$(jeton get X)` holds
//! the token and nothing else). Every command that prints data runs twice, once that way on a
//! pseudo-terminal (stdout to a file) and once with a passphrase file, and the two stdouts must
//! be the same bytes.
//!
//! Left out: `generate` (no vault, so no passphrase; its output is random anyway), `share` and
//! `backup` (age output is random; `backup` writes only to a file), `init`/`recovery new` (a new
//! recovery key each time).

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use agent_support::status;
use support::*;

const PROMPT: &str = "jeton passphrase: ";
const OFFER: &str = "[y/N] ";

/// An agent started by a command under test, stopped when the test ends.
fn agent_guard(t: &TestVault) -> agent_support::Agent<'_> {
    agent_support::Agent {
        t,
        pid: status(t)["pid"].as_u64().map(|p| p as u32),
    }
}

/// A vault with something for every command to print.
fn vault() -> TestVault {
    let t = TestVault::new();
    t.add(
        "svc/a",
        "first-secret",
        &[
            "--username",
            "bot",
            "--url",
            "https://api.example.com",
            "--scope",
            "read",
            "--tag",
            "ci",
            "--note",
            "a note",
        ],
    );
    t.ok(&["rotate", "svc/a"], CANARY);
    // A code that lives a day, so both runs see the same one.
    t.ok(
        &["add", "svc/2fa", "--totp"],
        "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&period=86400",
    );
    t.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    t.ok(
        &[
            "contact",
            "add",
            "alice",
            "--age",
            "age1vg4qzv3wvttkzdd4f0quhrcxpqv8fxtw42uud6762rq4ce39v5jqkrtdgc",
        ],
        "",
    );
    std::fs::write(
        t.home().join("template"),
        "TOKEN={{ jeton://svc/a }}\nUSER={{ jeton://svc/a#username }}\n",
    )
    .unwrap();
    let backup = t.home().join("backup.jeton");
    t.ok(&["backup", "-o", backup.to_str().unwrap()], "");
    t
}

#[test]
fn the_agent_offer_after_a_typed_passphrase_leaves_stdout_to_the_data() {
    let t = vault();
    let pass_file = t.home().join("passphrase");
    std::fs::write(&pass_file, PASS).unwrap();
    let template = t.home().join("template");
    let template = template.to_str().unwrap();
    let backup = t.home().join("backup.jeton");
    let backup = backup.to_str().unwrap();
    // (arguments, whether the agent is offered: `exec` becomes its command first, and
    // `backup verify` opens a copy, not the vault)
    let commands: Vec<(Vec<&str>, bool)> = vec![
        (vec!["get", "svc/a"], true),
        (vec!["get", "-n", "svc/a"], true),
        (vec!["get", "svc/a", "--field", "username"], true),
        (vec!["--json", "get", "svc/a"], true),
        (vec!["show", "svc/a"], true),
        (vec!["show", "svc/a", "--reveal"], true),
        (vec!["--json", "show", "svc/a"], true),
        (vec!["list"], true),
        (vec!["list", "--tree"], true),
        (vec!["--json", "list"], true),
        (vec!["search", "svc"], true),
        (vec!["--json", "search", "svc"], true),
        (vec!["history", "svc/a", "--reveal"], true),
        (vec!["--json", "history", "svc/a"], true),
        (vec!["otp", "svc/2fa"], true),
        (vec!["identity"], true),
        (vec!["--json", "identity"], true),
        (vec!["contact", "list"], true),
        (vec!["log"], true),
        (vec!["log", "svc/a"], true),
        (vec!["--json", "log"], true),
        (vec!["config", "list"], true),
        (vec!["config", "get", "contact"], true),
        (vec!["--json", "config", "list"], true),
        (vec!["inject", "-i", template], true),
        (vec!["backup", "verify", backup], false),
        (
            vec!["exec", "--env", "T=svc/a", "--", "printenv", "T"],
            false,
        ),
    ];
    let mut agent = None;
    for (args, offered) in &commands {
        let mut c = t.cmd();
        c.env_remove("JETON_PASSPHRASE")
            .env("JETON_PASSPHRASE_FILE", &pass_file);
        let expected = t.run_with(c, args, "");
        assert!(
            expected.status.success(),
            "jeton {args:?}: {}",
            String::from_utf8_lossy(&expected.stderr)
        );
        assert!(
            !expected.stdout.is_empty(),
            "jeton {args:?} printed nothing"
        );
        // The agent must not hold the key, so the passphrase is typed again.
        t.ok(&["lock"], "");
        let pairs: &[(&str, &str)] = if *offered {
            &[(PROMPT, PASS), (OFFER, "y")]
        } else {
            &[(PROMPT, PASS)]
        };
        let (code, tty, stdout) = on_tty_stdout(&t, pairs, args, &[]);
        if agent.is_none() && *offered {
            agent = Some(agent_guard(&t));
        }
        assert_eq!(code, 0, "jeton {args:?}: {tty}");
        if *offered {
            assert!(
                tty.contains("unlocked") && tty.contains("in the agent"),
                "jeton {args:?}: the vault was not kept unlocked: {tty}"
            );
        }
        assert_eq!(
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&expected.stdout),
            "jeton {args:?}: stdout differs after the agent offer (terminal: {tty})"
        );
    }
    assert!(agent.is_some());
}

/// The README's own example: the token alone, not 159 characters of it and a message.
#[test]
fn a_token_captured_after_the_offer_is_the_token_alone() {
    let t = vault();
    let (code, tty, stdout) =
        on_tty_stdout(&t, &[(PROMPT, PASS), (OFFER, "y")], &["get", "svc/a"], &[]);
    let _agent = agent_guard(&t);
    assert_eq!(code, 0, "{tty}");
    assert_eq!(String::from_utf8_lossy(&stdout), format!("{CANARY}\n"));
    // And what it said went to the terminal, through stderr.
    assert!(tty.contains("jeton: unlocked"), "{tty}");
}
