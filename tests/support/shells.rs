//! Real shells for the completion tests: bash, zsh and fish asked for candidates the way
//! each asks on TAB, and started in a pseudo-terminal as a person's are, with lines typed and
//! TAB pressed (tests/data/shell_tab.py).
#![allow(dead_code)]

use crate::support::TestVault;
use std::path::Path;

/// The words bash would offer for the command line `words` (the last word is the one being
/// completed).
pub fn bash_complete(t: &TestVault, words: &[&str]) -> Vec<String> {
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
pub fn shell(t: &TestVault, program: &str) -> std::process::Command {
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
pub fn have(program: &str) -> bool {
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
pub fn zsh_complete(t: &TestVault, line: &str) -> Vec<String> {
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
pub fn fish_complete(t: &TestVault, line: &str) -> Vec<String> {
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

pub fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The install commands of docs/CLI.md ("completions, man"): its `sh` block, and its `zsh`
/// block (the ~/.zshrc lines).
pub fn cli_md_install() -> (String, String) {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CLI.md"))
        .expect("docs/CLI.md");
    let section = &doc[doc
        .find("### completions, man")
        .expect("the completions section")..];
    let block = |lang: &str| {
        let fence = format!("```{lang}\n");
        let start = section.find(&fence).expect("an install block") + fence.len();
        let end = start + section[start..].find("```").expect("the block's end");
        section[start..end].to_owned()
    };
    (block("sh"), block("zsh"))
}

/// What the test adds to a shell's startup file: the prompt and the Ctrl-X key that
/// tests/data/shell_tab.py expects.
pub fn driver_lines(shell: &str) -> &'static str {
    match shell {
        "bash" => {
            r#"PS1='jeton-test$ '
bind -x '"\C-x": printf "BUF<%s>\n" "$READLINE_LINE"'
"#
        }
        "zsh" => {
            r#"PS1='jeton-test$ '
_show_buf() { print -r -- $'\n'"BUF<$BUFFER>" > /dev/tty }
zle -N _show_buf; bindkey '^X' _show_buf
"#
        }
        "fish" => {
            r#"set -g fish_greeting
function fish_prompt; printf 'jeton-test$ '; end
function fish_user_key_bindings; bind \cx 'printf "\nBUF<%s>\n" (commandline)'; end
"#
        }
        _ => unreachable!("{shell}"),
    }
}

/// Where bash-completion's loader is, as ~/.bashrc sources it on Debian.
pub const BASH_COMPLETION: &str = "/usr/share/bash-completion/bash_completion";

/// How a shell's completion is installed for [`terminal`].
#[derive(Clone, Copy, PartialEq)]
pub enum Install {
    /// As docs/CLI.md says: files where each shell looks (bash through bash-completion).
    Documented,
    /// `source <(jeton completions SHELL)` in the startup file.
    Sourced,
}

/// Starts `shell` in a pseudo-terminal as a person's starts (completion installed `how`), and
/// for each (line, tabs) types the line and presses TAB that many times: for each, the line
/// then, and what the terminal showed.
pub fn terminal(t: &TestVault, shell: &str, how: Install, typed: &[(&str, usize)]) -> Vec<Typed> {
    let home = t.home();
    let (commands, zshrc) = cli_md_install();
    let rc = match how {
        Install::Documented => {
            let out = t.run_with(self::shell(t, "bash"), &["-euc", &commands], "");
            assert!(
                out.status.success(),
                "the install commands of docs/CLI.md: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            match shell {
                "bash" => format!(". {BASH_COMPLETION}\n"),
                "zsh" => zshrc,
                _ => String::new(),
            }
        }
        Install::Sourced => match shell {
            "bash" => "source <(jeton completions bash)\n".to_owned(),
            "zsh" => {
                "autoload -Uz compinit && compinit\nsource <(jeton completions zsh)\n".to_owned()
            }
            _ => "jeton completions fish | source\n".to_owned(),
        },
    };
    let file = match shell {
        "bash" => home.join(".bashrc"),
        "zsh" => home.join(".zshrc"),
        _ => home.join(".config/fish/config.fish"),
    };
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, format!("{rc}{}", driver_lines(shell))).unwrap();
    let mut c = self::shell(t, "python3");
    c.env("ZDOTDIR", home).env("TERM", "xterm");
    let tabs: Vec<String> = typed.iter().map(|(_, n)| n.to_string()).collect();
    let mut args = vec![concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/shell_tab.py"
    )];
    for ((line, _), n) in typed.iter().zip(&tabs) {
        args.extend([*line, n.as_str()]);
    }
    args.extend(["--", shell, "-i"]);
    let out = t.run_with(c, &args, "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shell}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{shell}: {e}: {text}"))
}

/// One typed line: the line after the TABs, and what the terminal showed.
#[derive(serde::Deserialize, Debug)]
pub struct Typed {
    pub line: String,
    pub screen: String,
}

/// Whether bash-completion is installed; outside CI a missing one skips its test.
pub fn have_bash_completion() -> bool {
    let found = Path::new(BASH_COMPLETION).exists();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install bash-completion (.ci/run)"
        );
        eprintln!("skipped: bash-completion is not installed");
    }
    found
}

/// The lines after TAB, for `typed`.
pub fn lines_after(got: &[Typed]) -> Vec<&str> {
    got.iter().map(|g| g.line.as_str()).collect()
}
