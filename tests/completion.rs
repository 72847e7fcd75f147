//! Shell completion through real shells: for bash, the script `jeton completions bash` prints is
//! sourced, COMP_WORDS filled and the completion function called, as bash does on TAB; for zsh,
//! an interactive zsh in a pseudo-terminal (tests/data/zsh_complete.zsh) runs compinit and the
//! script and is sent TAB; for fish, `complete -C`. Then as a person uses them: bash, zsh and
//! fish started in a pseudo-terminal with the completion installed as docs/CLI.md says, a line
//! typed, TAB pressed, and the line read back (tests/data/shell_tab.py). Entry and team names
//! come from the unlocked agent; with the vault locked they complete to nothing, at once.

#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/shells.rs"]
mod shells;
mod support;
use agent_support::*;
use shells::*;
use std::time::{Duration, Instant};
use support::*;

fn vault() -> TestVault {
    let t = TestVault::new();
    for name in ["github/ci-deploy", "github/work", "gitlab/ci", "npm"] {
        t.add(name, "s", &[]);
    }
    t
}

#[test]
fn entry_names_complete_from_the_unlocked_agent() {
    let t = vault();
    let _agent = unlock(&t, &[]);
    assert_eq!(
        bash_complete(&t, &["jeton", "get", "gi"]),
        ["github/", "gitlab/"]
    );
    assert_eq!(
        bash_complete(&t, &["jeton", "show", "github/"]),
        ["github/ci-deploy", "github/work"]
    );
    assert_eq!(bash_complete(&t, &["jeton", "rotate", "np"]), ["npm"]);
    assert_eq!(
        bash_complete(&t, &["jeton", "rename", "github/w"]),
        ["github/work"]
    );
    // A new name is not completed from the vault.
    assert!(bash_complete(&t, &["jeton", "add", "gi"]).is_empty());
}

#[test]
fn a_locked_vault_completes_no_names_at_once_and_never_prompts() {
    // JETON_PASSPHRASE is set: completion must not use it to open the vault itself.
    let t = vault();
    let start = Instant::now();
    assert!(bash_complete(&t, &["jeton", "get", "gi"]).is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // An agent that runs but holds no key: still nothing.
    let _agent = unlock(&t, &[]);
    t.ok(&["lock"], "");
    assert!(bash_complete(&t, &["jeton", "get", "gi"]).is_empty());
}

#[test]
fn subcommands_and_flags_still_complete() {
    let t = vault();
    assert_eq!(bash_complete(&t, &["jeton", "ro"]), ["rotate", "rollback"]);
    assert!(bash_complete(&t, &["jeton", "get", "--fi"]).contains(&"--field".to_owned()));
    assert!(
        bash_complete(&t, &["jeton", "list", "--status", "re"]).contains(&"revoked".to_owned())
    );
}

#[test]
fn zsh_and_fish_scripts_call_jeton_back_which_answers_with_names() {
    let t = vault();
    let _agent = unlock(&t, &[]);
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = t.ok(&["completions", shell], "");
        assert!(
            script.contains("JETON_COMPLETE") && script.contains("jeton"),
            "{shell}: {script}"
        );
    }
    // A script installed by an older jeton (the completion library's) still gets the format it
    // reads; ours, one candidate a line with its description after a tab.
    let ask = |older: bool| {
        let mut c = t.cmd();
        c.env("JETON_COMPLETE", "zsh");
        if older {
            c.env("_CLAP_COMPLETE_INDEX", "1");
        }
        let out = t.run_with(c, &["--", "jeton", "rot"], "");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(ask(true).starts_with("rotate:Replace"), "{}", ask(true));
    assert!(ask(false).starts_with("rotate\tReplace"), "{}", ask(false));
    // What those scripts run on TAB.
    for shell in ["zsh", "fish"] {
        let mut c = t.cmd();
        c.env("JETON_COMPLETE", shell)
            .env("_CLAP_COMPLETE_INDEX", "2");
        let out = t.run_with(c, &["--", "jeton", "get", "github/w"], "");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("github/work"),
            "{shell}: {text}"
        );
        assert!(!text.contains("npm"), "{shell}: {text}");
    }
}

#[test]
fn zsh_completes_entry_names_from_the_unlocked_agent() {
    if !have("zsh") {
        return;
    }
    let t = vault();
    assert_eq!(zsh_complete(&t, "jeton ro"), ["rotate", "rollback"]);
    assert!(zsh_complete(&t, "jeton get --fi").contains(&"--field".to_owned()));
    // Locked: no names, and no prompt (zsh would wait on it; the driver would fail).
    let start = Instant::now();
    assert!(zsh_complete(&t, "jeton get gi").is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let _agent = unlock(&t, &[]);
    assert_eq!(zsh_complete(&t, "jeton get gi"), ["github/", "gitlab/"]);
    assert_eq!(
        zsh_complete(&t, "jeton show github/"),
        ["github/ci-deploy", "github/work"]
    );
    assert_eq!(zsh_complete(&t, "jeton rotate np"), ["npm"]);
    assert!(zsh_complete(&t, "jeton add gi").is_empty());
    t.ok(&["lock"], "");
    assert!(zsh_complete(&t, "jeton get gi").is_empty());
}

#[test]
fn fish_completes_entry_names_from_the_unlocked_agent() {
    if !have("fish") {
        return;
    }
    let t = vault();
    assert_eq!(fish_complete(&t, "jeton ro"), ["rotate", "rollback"]);
    assert!(fish_complete(&t, "jeton get --fi").contains(&"--field".to_owned()));
    let start = Instant::now();
    assert!(fish_complete(&t, "jeton get gi").is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let _agent = unlock(&t, &[]);
    assert_eq!(fish_complete(&t, "jeton get gi"), ["github/", "gitlab/"]);
    assert_eq!(
        fish_complete(&t, "jeton show github/"),
        ["github/ci-deploy", "github/work"]
    );
    assert_eq!(fish_complete(&t, "jeton rotate np"), ["npm"]);
    assert!(fish_complete(&t, "jeton add gi").is_empty());
    t.ok(&["lock"], "");
    assert!(fish_complete(&t, "jeton get gi").is_empty());
}

/// A vault with the entries of [`vault`] and a team `ops` (entries `db`, `github/deploy`), and
/// the team's remote folder.
fn vault_with_team() -> (TestVault, tempfile::TempDir) {
    let t = vault();
    let remote = tempfile::tempdir().unwrap();
    let dir = remote.path().to_str().unwrap();
    t.ok(&["team", "create", "ops", "--dir", dir], "");
    for name in ["ops:db", "ops:github/deploy"] {
        t.add(name, "s", &[]);
    }
    (t, remote)
}

#[test]
fn team_names_complete_then_the_team_entries() {
    let (t, _remote) = vault_with_team();
    let _agent = unlock(&t, &[]);
    assert_eq!(bash_complete(&t, &["jeton", "get", "o"]), ["ops:"]);
    assert_eq!(
        bash_complete(&t, &["jeton", "show", "ops:"]),
        ["ops:db", "ops:github/"]
    );
    assert_eq!(
        bash_complete(&t, &["jeton", "rotate", "ops:github/"]),
        ["ops:github/deploy"]
    );
    assert_eq!(bash_complete(&t, &["jeton", "list", "o"]), ["ops:"]);
    assert_eq!(bash_complete(&t, &["jeton", "check", "ack", "o"]), ["ops:"]);
    // Personal names and teams together.
    let all = bash_complete(&t, &["jeton", "get", ""]);
    for name in ["github/", "gitlab/", "npm", "ops:"] {
        assert!(all.contains(&name.to_owned()), "{all:?}");
    }
    // No team where a command takes no team entry, nor a new name; an unknown team: nothing.
    assert!(bash_complete(&t, &["jeton", "share", "o"]).is_empty());
    assert!(bash_complete(&t, &["jeton", "add", "o"]).is_empty());
    assert!(bash_complete(&t, &["jeton", "get", "nope:"]).is_empty());
    assert!(bash_complete(&t, &["jeton", "get", "a b:"]).is_empty());
    // Team names where a command takes a team, but a new one.
    assert_eq!(bash_complete(&t, &["jeton", "team", "list", "o"]), ["ops"]);
    assert_eq!(bash_complete(&t, &["jeton", "team", "leave", "o"]), ["ops"]);
    assert!(bash_complete(&t, &["jeton", "team", "create", "o"]).is_empty());
    // An entry name in a nested command (an existing entry, though the command is `add`).
    assert_eq!(
        bash_complete(&t, &["jeton", "integration", "add", "np"]),
        ["npm"]
    );
    if have("zsh") {
        assert_eq!(zsh_complete(&t, "jeton get o"), ["ops:"]);
        assert_eq!(
            zsh_complete(&t, "jeton get ops:"),
            ["ops:db", "ops:github/"]
        );
    }
    if have("fish") {
        assert_eq!(fish_complete(&t, "jeton get o"), ["ops:"]);
        assert_eq!(
            fish_complete(&t, "jeton get ops:"),
            ["ops:db", "ops:github/"]
        );
    }
    // Locked: no team and no team entry either.
    t.ok(&["lock"], "");
    assert!(bash_complete(&t, &["jeton", "get", "o"]).is_empty());
    assert!(bash_complete(&t, &["jeton", "get", "ops:"]).is_empty());
    assert!(bash_complete(&t, &["jeton", "team", "list", "o"]).is_empty());
}

#[test]
fn bash_in_a_terminal_completes_after_a_colon_without_rewriting_it() {
    // `:` is in COMP_WORDBREAKS: bash replaces only what follows it, so `ops:` once became
    // `ops:-` (the flags' common prefix).
    let (t, _remote) = vault_with_team();
    let _agent = unlock(&t, &[]);
    let vault = format!("jeton --vault={} get np", t.vault_path().display());
    let typed = [
        ("jeton get ops:", 2),
        ("jeton get o", 1),
        ("jeton get ops:g", 1),
        ("jeton get ops:github/", 1),
        ("jeton rot", 1),
        (vault.as_str(), 1),
    ];
    let expected = [
        "jeton get ops:".to_owned(),
        "jeton get ops:".to_owned(),
        "jeton get ops:github/".to_owned(),
        "jeton get ops:github/deploy ".to_owned(),
        "jeton rotate ".to_owned(),
        format!("{vault}m "),
    ];
    let got = terminal(&t, "bash", Install::Sourced, &typed);
    assert_eq!(lines_after(&got), expected);
    // The second TAB lists the team's entries as bash shows them, after the colon.
    let list = &got[0].screen;
    assert!(list.contains("db") && list.contains("github/"), "{list}");
    assert!(!list.contains("--"), "{list}");
    // Installed as docs/CLI.md says, loaded by bash-completion on the first TAB.
    if have_bash_completion() {
        let got = terminal(&t, "bash", Install::Documented, &typed[..3]);
        assert_eq!(lines_after(&got), expected[..3]);
    }
    // Locked: nothing, and nothing printed over the line.
    t.ok(&["lock"], "");
    let got = terminal(
        &t,
        "bash",
        Install::Sourced,
        &[("jeton get ops:", 2), ("jeton get gi", 2)],
    );
    assert_eq!(lines_after(&got), ["jeton get ops:", "jeton get gi"]);
    for g in &got {
        assert!(
            !g.screen.contains("unlock") && !g.screen.contains("--"),
            "{}",
            g.screen
        );
    }
}

#[test]
fn zsh_installed_as_cli_md_says_completes_on_the_first_tab() {
    // Autoloaded from $fpath, the script used to only register itself on the first TAB, so
    // that only the second completed.
    if !have("zsh") {
        return;
    }
    let (t, _remote) = vault_with_team();
    let _agent = unlock(&t, &[]);
    for how in [Install::Documented, Install::Sourced] {
        let got = terminal(
            &t,
            "zsh",
            how,
            &[
                ("jeton rot", 1),
                ("jeton get o", 1),
                ("jeton get ops:g", 1),
                ("jeton get ops:github/", 1),
                ("jeton get np", 1),
            ],
        );
        assert_eq!(
            lines_after(&got),
            [
                "jeton rotate ",
                "jeton get ops:",
                "jeton get ops:github/",
                "jeton get ops:github/deploy ",
                "jeton get npm ",
            ]
        );
        assert!(got.iter().all(|g| !g.screen.contains("unlock")), "{got:?}");
    }
}

#[test]
fn fish_installed_as_cli_md_says_completes_teams_in_a_terminal() {
    if !have("fish") {
        return;
    }
    let (t, _remote) = vault_with_team();
    let _agent = unlock(&t, &[]);
    let got = terminal(
        &t,
        "fish",
        Install::Documented,
        &[
            ("jeton rot", 1),
            ("jeton get o", 1),
            ("jeton get ops:g", 1),
            ("jeton get ops:github/", 1),
        ],
    );
    assert_eq!(
        lines_after(&got),
        [
            "jeton rotate ",
            "jeton get ops:",
            "jeton get ops:github/",
            "jeton get ops:github/deploy ",
        ]
    );
}

#[test]
fn a_locked_vault_is_hinted_once_by_zsh_and_fish_stays_silent() {
    let (t, _remote) = vault_with_team();
    let hints = |screen: &str| screen.matches("jeton unlock").count();
    let typed = [("jeton get gi", 1), ("jeton get ops:", 1), ("jeton rot", 1)];
    if have("zsh") {
        let got = terminal(&t, "zsh", Install::Documented, &typed);
        assert_eq!(
            lines_after(&got),
            ["jeton get gi", "jeton get ops:", "jeton rotate "]
        );
        // One line under the prompt where names were asked for; none for a subcommand.
        assert_eq!(hints(&got[0].screen), 1, "{}", got[0].screen);
        assert!(
            got[0]
                .screen
                .contains("vault locked: run jeton unlock to complete names"),
            "{}",
            got[0].screen
        );
        assert_eq!(hints(&got[1].screen), 1, "{}", got[1].screen);
        assert_eq!(hints(&got[2].screen), 0, "{}", got[2].screen);
    }
    if have("fish") {
        let got = terminal(&t, "fish", Install::Documented, &typed);
        assert_eq!(
            lines_after(&got),
            ["jeton get gi", "jeton get ops:", "jeton rotate "]
        );
        assert!(got.iter().all(|g| hints(&g.screen) == 0), "{got:?}");
    }
    // Unlocked: names, and no hint.
    let _agent = unlock(&t, &[]);
    if have("zsh") {
        let got = terminal(&t, "zsh", Install::Documented, &typed[..2]);
        assert_eq!(lines_after(&got), ["jeton get git", "jeton get ops:"]);
        assert!(got.iter().all(|g| hints(&g.screen) == 0), "{got:?}");
    }
}
