//! Shell completion through a real bash: the script `jeton completions bash` prints is sourced,
//! COMP_WORDS filled and the completion function called, as bash does on TAB. Entry names come
//! from the unlocked agent; with the vault locked they complete to nothing, at once.

#[path = "support/agent.rs"]
mod agent_support;
mod support;
use agent_support::*;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

/// The words bash would offer for the command line `words` (the last word is the one being
/// completed).
fn bash_complete(t: &TestVault, words: &[&str]) -> Vec<String> {
    let script = t.home().join("jeton.bash");
    std::fs::write(&script, t.ok(&["completions", "bash"], "")).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let driver = format!(
        r#"source '{script}'
spec=$(complete -p jeton) || exit 90
func=$(printf '%s' "$spec" | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
COMP_TYPE=9
"$func" jeton "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        script = script.display(),
        words = quoted.join(" ")
    );
    let mut bash = t.cmd_for("bash");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_jeton")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    bash.env("PATH", path);
    let out = t.run_with(bash, &["--norc", "--noprofile", "-c", &driver], "");
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

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
