//! Shell completion through real shells: for bash, the script `jeton completions bash` prints is
//! sourced, COMP_WORDS filled and the completion function called, as bash does on TAB; for zsh,
//! an interactive zsh in a pseudo-terminal (tests/data/zsh_complete.zsh) runs compinit and the
//! script and is sent TAB; for fish, `complete -C`. Entry names come from the unlocked agent;
//! with the vault locked they complete to nothing, at once.

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
    let out = t.run_with(
        shell(t, "bash"),
        &["--norc", "--noprofile", "-c", &driver],
        "",
    );
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

/// `program` with the test environment and the jeton under test first on the PATH.
fn shell(t: &TestVault, program: &str) -> std::process::Command {
    let mut c = t.cmd_for(program);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_jeton")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env("PATH", path);
    c
}

/// Whether `program` is installed; outside CI a missing shell skips its test.
fn have(program: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install {program} (.ci/run)"
        );
        eprintln!("skipped: {program} is not installed");
    }
    found
}

/// What an interactive zsh offers on TAB at the end of `line`.
fn zsh_complete(t: &TestVault, line: &str) -> Vec<String> {
    let script = t.home().join("jeton.zsh");
    std::fs::write(&script, t.ok(&["completions", "zsh"], "")).unwrap();
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/zsh_complete.zsh");
    let script = script.display().to_string();
    // `timeout`: a completion that never ends fails the test instead of hanging it.
    let out = t.run_with(
        shell(t, "timeout"),
        &["60", "zsh", "-f", driver, &script, line],
        "",
    );
    assert!(
        out.status.success(),
        "zsh: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

/// What fish offers for `line` (`complete -C`), without descriptions.
fn fish_complete(t: &TestVault, line: &str) -> Vec<String> {
    let script = t.home().join("jeton.fish");
    std::fs::write(&script, t.ok(&["completions", "fish"], "")).unwrap();
    let driver = format!("source '{}'; complete -C '{line}'", script.display());
    let out = t.run_with(shell(t, "fish"), &["--no-config", "-c", &driver], "");
    assert!(
        out.status.success(),
        "fish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
        .into_iter()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .collect()
}

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
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
