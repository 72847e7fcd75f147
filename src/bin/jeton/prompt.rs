//! Where passphrases and secrets come from (SPEC §5). Never from a command-line argument.

use jeton::request::SecretInput;
use jeton::secret::{Passphrase, Token};
use jeton::{Error, Result};
use std::io::{BufRead, IsTerminal, Read, Write};
use zeroize::Zeroizing;

const NO_SOURCE: &str = "no passphrase source and no terminal: run `jeton unlock` first, or use \
     --passphrase-fd N, JETON_PASSPHRASE_FILE, JETON_PASSPHRASE_COMMAND or JETON_PASSPHRASE";

/// Longest passphrase or secret read from a file, fd, command or stdin (1 MiB).
const MAX_INPUT: u64 = 1 << 20;

fn strip_one_newline(mut s: Zeroizing<String>) -> Zeroizing<String> {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// Standard input as a plain descriptor. `std::io::stdin()` reads ahead into a buffer of its own
/// that it never wipes; a secret read through it leaves a copy there.
pub fn raw_stdin() -> Result<std::fs::File> {
    use std::os::fd::AsFd;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .map_err(|e| Error::Other(format!("cannot read stdin: {e}")))
}

/// Reads a secret, or a request that may hold one, from a file or descriptor (give it
/// [`raw_stdin`], never `std::io::stdin()`): UTF-8, at most `cap` bytes, held in one zeroizing
/// buffer with no other copy ([`jeton::secret::read_capped`]).
pub fn read_secret(r: impl Read, cap: u64, what: &str) -> Result<Zeroizing<String>> {
    let cap_bytes = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut buf = jeton::secret::read_capped(r, cap_bytes).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            Error::Usage(format!("{what} is larger than {} MiB", cap >> 20))
        } else {
            Error::Other(format!("cannot read {what}: {e}"))
        }
    })?;
    String::from_utf8(std::mem::take(&mut *buf))
        .map(Zeroizing::new)
        .map_err(|e| {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            Error::Usage(format!("{what} is not valid UTF-8"))
        })
}

fn read_capped(r: impl Read, what: &str) -> Result<Zeroizing<String>> {
    read_secret(r, MAX_INPUT, what).map(strip_one_newline)
}

fn read_fd(fd: u32, what: &str) -> Result<Zeroizing<String>> {
    let path = format!("/dev/fd/{fd}");
    let f = std::fs::File::open(&path)
        .map_err(|e| Error::Unlock(format!("cannot read {what} from fd {fd}: {e}")))?;
    jeton::process::seal_descriptor(fd)
        .map_err(|e| Error::Unlock(format!("cannot close fd {fd} to child processes: {e}")))?;
    read_capped(f, what)
}

fn read_file(path: &std::ffi::OsStr, what: &str) -> Result<Zeroizing<String>> {
    let path = std::path::Path::new(path);
    let bytes = jeton::store::read_capped(path, MAX_INPUT).map_err(|e| {
        if e.kind() == std::io::ErrorKind::FileTooLarge {
            Error::Usage(format!("the {what} file is larger than 1 MiB"))
        } else {
            Error::Unlock(format!("cannot read {what} file {}: {e}", path.display()))
        }
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Usage(format!("the {what} file is not valid UTF-8")))?;
    Ok(strip_one_newline(Zeroizing::new(text.to_owned())))
}

fn run_command(cmd: &str) -> Result<Zeroizing<String>> {
    let what = "the output of JETON_PASSPHRASE_COMMAND";
    let mut child = jeton::process::command("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Unlock(format!("cannot run JETON_PASSPHRASE_COMMAND: {e}")))?;
    // Read through the capped, zeroizing reader (no copy left as the buffer grows), then wait.
    let read = match child.stdout.take() {
        Some(out) => read_capped(out, what),
        None => Err(Error::Other(format!("cannot read {what}"))),
    };
    if read.is_err() {
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| Error::Unlock(format!("cannot run JETON_PASSPHRASE_COMMAND: {e}")))?;
    let passphrase = read?;
    if !status.success() {
        return Err(Error::Unlock(format!(
            "JETON_PASSPHRASE_COMMAND failed ({status})"
        )));
    }
    Ok(passphrase)
}

/// True when a terminal is there to prompt on.
pub fn have_tty() -> bool {
    std::fs::File::open("/dev/tty").is_ok_and(|f| f.is_terminal())
}

fn prompt_hidden(label: &str) -> Result<Zeroizing<String>> {
    rpassword::prompt_password(label)
        .map(Zeroizing::new)
        .map_err(|e| Error::Unlock(format!("cannot read from the terminal: {e}")))
}

fn nonempty(s: Zeroizing<String>, what: &str) -> Result<Zeroizing<String>> {
    if s.is_empty() {
        return Err(Error::Unlock(format!("the {what} is empty")));
    }
    Ok(s)
}

/// Where a passphrase was found; a prompt asks twice when creating one.
pub enum Source {
    /// Non-interactive source.
    Given(Zeroizing<String>),
    /// Nothing given: prompt on the terminal.
    Prompt,
}

/// Finds the configured passphrase source, first found wins.
pub fn passphrase_source(fd: Option<u32>) -> Result<Source> {
    if let Some(fd) = fd {
        return Ok(Source::Given(read_fd(fd, "passphrase")?));
    }
    if let Some(p) = std::env::var_os("JETON_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        return Ok(Source::Given(read_file(&p, "passphrase")?));
    }
    if let Some(c) = std::env::var("JETON_PASSPHRASE_COMMAND")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(Source::Given(run_command(&c)?));
    }
    if let Some(p) = std::env::var("JETON_PASSPHRASE")
        .ok()
        .filter(|v| !v.is_empty())
    {
        return Ok(Source::Given(Zeroizing::new(p)));
    }
    Ok(Source::Prompt)
}

/// The passphrase of an existing vault.
pub fn passphrase(fd: Option<u32>) -> Result<Passphrase> {
    let s = match passphrase_source(fd)? {
        Source::Given(s) => s,
        Source::Prompt if have_tty() => prompt_hidden("jeton passphrase: ")?,
        Source::Prompt => return Err(Error::Unlock(NO_SOURCE.into())),
    };
    let mut s = nonempty(s, "passphrase")?;
    Ok(Passphrase::new(std::mem::take(&mut *s)))
}

/// Passphrases typed at the terminal for one command, before it gives up (exit 3).
pub const TRIES: u32 = 3;

/// The error after the last wrong try at the terminal.
const LAST_TRY: &str = "wrong passphrase (3 tries); if it is forgotten, `jeton recover` sets a \
     new one with the vault's recovery key";

/// Runs `open` with the passphrase of an existing vault. From a source (fd, file, command,
/// variable): once, as [`passphrase`]. Typed at the terminal: asked again after a wrong one,
/// [`TRIES`] times in all, the last error naming `jeton recover`; then the passphrase is
/// returned too, so the caller may offer to keep the vault unlocked in the agent.
pub fn with_passphrase<T>(
    fd: Option<u32>,
    mut open: impl FnMut(&Passphrase) -> Result<T>,
) -> Result<(T, Option<Passphrase>)> {
    match passphrase_source(fd)? {
        Source::Given(s) => {
            let mut s = nonempty(s, "passphrase")?;
            let p = Passphrase::new(std::mem::take(&mut *s));
            return open(&p).map(|t| (t, None));
        }
        Source::Prompt if have_tty() => {}
        Source::Prompt => return Err(Error::Unlock(NO_SOURCE.into())),
    }
    for left in (0..TRIES).rev() {
        let mut s = prompt_hidden("jeton passphrase: ")?;
        let tried = if s.is_empty() {
            Err(Error::wrong_passphrase())
        } else {
            let p = Passphrase::new(std::mem::take(&mut *s));
            open(&p).map(|t| (t, p))
        };
        match tried {
            Ok((t, p)) => return Ok((t, Some(p))),
            Err(e) if e.is_wrong_passphrase() && left > 0 => {
                eprintln!(
                    "jeton: wrong passphrase; try again ({left} {} left)",
                    if left == 1 { "try" } else { "tries" }
                );
            }
            Err(e) if e.is_wrong_passphrase() => return Err(Error::Unlock(LAST_TRY.into())),
            Err(e) => return Err(e),
        }
    }
    Err(Error::Unlock(LAST_TRY.into()))
}

/// Asks a yes/no question on the terminal; no (the default) when there is none or the
/// answer cannot be read. Never blocks without a terminal.
pub fn yes_no(question: &str) -> bool {
    let Ok(mut tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return false;
    };
    if !tty.is_terminal() || write!(tty, "{question} [y/N] ").is_err() {
        return false;
    }
    let mut answer = String::new();
    if std::io::BufReader::new(tty).read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// A passphrase being chosen: from a source, or asked twice on the terminal.
pub fn new_passphrase(source: Source, label: &str) -> Result<Passphrase> {
    let s = match source {
        Source::Given(s) => s,
        Source::Prompt if have_tty() => {
            let a = prompt_hidden(&format!("{label}: "))?;
            let b = prompt_hidden(&format!("{label} (again): "))?;
            if a != b {
                return Err(Error::Usage(
                    "the two passphrases differ; nothing was changed".into(),
                ));
            }
            a
        }
        Source::Prompt => return Err(Error::Unlock(NO_SOURCE.into())),
    };
    let mut s = nonempty(s, "new passphrase")?;
    Ok(Passphrase::new(std::mem::take(&mut *s)))
}

/// A passphrase that already exists elsewhere (set on another device): asked once, since a
/// typo is caught when it does not open anything.
pub fn existing_passphrase(source: Source, label: &str) -> Result<Passphrase> {
    let s = match source {
        Source::Given(s) => s,
        Source::Prompt if have_tty() => prompt_hidden(&format!("{label}: "))?,
        Source::Prompt => return Err(Error::Unlock(NO_SOURCE.into())),
    };
    let mut s = nonempty(s, "passphrase")?;
    Ok(Passphrase::new(std::mem::take(&mut *s)))
}

/// The new passphrase for `passwd`: `--new-passphrase-fd`, `$JETON_NEW_PASSPHRASE_FILE`, or a prompt.
pub fn new_passphrase_source(fd: Option<u32>) -> Result<Source> {
    if let Some(fd) = fd {
        return Ok(Source::Given(read_fd(fd, "new passphrase")?));
    }
    if let Some(p) = std::env::var_os("JETON_NEW_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        return Ok(Source::Given(read_file(&p, "new passphrase")?));
    }
    Ok(Source::Prompt)
}

/// A warning for a passphrase that is easy to guess, or `None`.
pub fn weak_passphrase_warning(p: &Passphrase) -> Option<&'static str> {
    let s = p.expose_secret();
    let classes = [
        s.chars().any(|c| c.is_ascii_lowercase()),
        s.chars().any(|c| c.is_ascii_uppercase()),
        s.chars().any(|c| c.is_ascii_digit()),
        s.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    let n = s.chars().count();
    (n < 12 || (n < 20 && classes.iter().filter(|c| **c).count() < 2)).then_some(
        "this passphrase is weak: anyone who copies the vault file can try guesses offline. \
         Prefer 5 or more random words (change it later with `jeton passwd`)",
    )
}

/// True when [`secret_input`] asks at the terminal (stdin is one), rather than reading stdin.
pub fn secret_is_typed() -> bool {
    std::io::stdin().is_terminal()
}

/// A new secret: a hidden prompt asked twice on a terminal, otherwise all of stdin.
pub fn secret_input() -> Result<Token> {
    typed_twice_or_stdin(
        "secret",
        "the secret is empty (pipe it on stdin, or use --generate)",
    )
}

/// What a prompt labelled `label` reads twice on a terminal, otherwise all of stdin; refused
/// with `empty` when there is nothing.
fn typed_twice_or_stdin(label: &str, empty: &str) -> Result<Token> {
    let mut s = if std::io::stdin().is_terminal() {
        let a = prompt_hidden(&format!("{label}: "))?;
        let b = prompt_hidden(&format!("{label} (again): "))?;
        if a != b {
            return Err(Error::Usage(
                "the two secrets differ; nothing was changed".into(),
            ));
        }
        a
    } else {
        read_capped(raw_stdin()?, "the secret on stdin")?
    };
    if s.is_empty() {
        return Err(Error::Usage(empty.into()));
    }
    Ok(Token::new(std::mem::take(&mut *s)))
}

/// Asks a yes/no question on the terminal. Without a terminal, `--yes` is required.
pub fn confirm(question: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || !have_tty() {
        return Err(Error::Usage(format!(
            "{question}: refusing without a terminal; pass --yes to confirm"
        )));
    }
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| Error::Other(format!("cannot open the terminal: {e}")))?;
    write!(tty, "{question} [y/N] ").map_err(|e| Error::Other(format!("cannot ask: {e}")))?;
    let mut answer = String::new();
    std::io::BufReader::new(tty)
        .read_line(&mut answer)
        .map_err(|e| Error::Other(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Other("cancelled; nothing was changed".into()))
    }
}

/// A recovery key being typed back: `--recovery-key-fd N`, `$JETON_RECOVERY_KEY_FILE`, or a
/// hidden prompt on the terminal.
pub fn recovery_key(fd: Option<u32>) -> Result<jeton::recovery::RecoveryKey> {
    let text = if let Some(fd) = fd {
        read_fd(fd, "recovery key")?
    } else if let Some(p) = std::env::var_os("JETON_RECOVERY_KEY_FILE").filter(|v| !v.is_empty()) {
        read_file(&p, "recovery key")?
    } else if have_tty() {
        prompt_hidden("recovery key: ")?
    } else {
        return Err(Error::Unlock(
            "no recovery key source and no terminal: use --recovery-key-fd N or JETON_RECOVERY_KEY_FILE"
                .into(),
        ));
    };
    jeton::recovery::RecoveryKey::parse(&text)
}

/// The recovery key `passwd` keeps working: from `fd`, else `$JETON_RECOVERY_KEY_FILE`, else
/// asked on a terminal (Enter: none). `None` without any of them: the key is dropped.
pub fn recovery_key_to_keep(fd: Option<u32>) -> Result<Option<jeton::recovery::RecoveryKey>> {
    let from_env = std::env::var_os("JETON_RECOVERY_KEY_FILE").is_some_and(|v| !v.is_empty());
    if fd.is_some() || from_env {
        return recovery_key(fd).map(Some);
    }
    if !have_tty() {
        return Ok(None);
    }
    let text = prompt_hidden("recovery key, to keep it working (Enter drops it): ")?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    jeton::recovery::RecoveryKey::parse(&text).map(Some)
}

/// The seed for `add NAME --totp`, from the prompt or stdin (never an argument): an otpauth://
/// URI, kept as given, or a base32 seed, kept as an otpauth:// URI labelled with NAME. Refused
/// (exit 2) before the vault is opened when it is neither.
pub fn otp_seed(name: &str) -> Result<SecretInput> {
    let given = typed_twice_or_stdin(
        "one-time code seed (otpauth://totp/... URI, or base32 as the site shows it)",
        "the seed is empty (pipe an otpauth:// URI or a base32 seed on stdin)",
    )?;
    let uri = jeton::otp::to_uri(given.expose_secret(), name)?;
    Ok(SecretInput::Value(Token::new(uri.to_string())))
}
