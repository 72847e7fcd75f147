//! Files that hold a secret outside the vault: the form `edit --secret` opens in the editor and
//! the npm recipe's `npmrc`. They are made only in a runtime directory no other user controls,
//! in a fresh private directory, read back without following a link, and wiped whatever ends
//! jeton: SIGHUP, SIGTERM, SIGINT (except while the editor has the terminal), or SIGKILL (the
//! next jeton wipes what the killed one left).

mod support;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn is_root() -> bool {
    rustix::process::getuid().is_root()
}

/// Whether the test can act as two users (root, with `setpriv` and `unshare`); a failure in
/// CI, which runs as root with both installed.
fn two_users() -> bool {
    let tools = ["setpriv", "unshare"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if is_root() && tools {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs as root with setpriv and unshare (util-linux)"
    );
    eprintln!("skipped: needs root, setpriv and unshare");
    false
}

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Every file under `root` (links not followed) that holds `needle`.
fn files_holding(root: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                todo.push(e.path());
            } else if kind.is_file()
                && std::fs::read(e.path())
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(e.path());
            }
        }
    }
    found
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// A program (editor or npm) that notes where its file is, says it is running, then waits until
/// [`Blocker::release`]. Its first argument (or its `--userconfig`) is the file.
struct Blocker {
    dir: tempfile::TempDir,
}

impl Blocker {
    /// `first` runs before it blocks (with the file in `$f`).
    fn new(first: &str) -> Blocker {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let status = Command::new("mkfifo")
            .arg(dir.path().join("fifo"))
            .status()
            .unwrap();
        assert!(status.success());
        script(
            dir.path(),
            "block",
            &format!(
                "f=\"$1\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = --userconfig ] && f=\"$2\"; shift; done\n\
                 {first}\nprintf '%s' \"$f\" > {d}/file.tmp && mv {d}/file.tmp {d}/file\n\
                 cat {d}/fifo > /dev/null\n"
            ),
        );
        Blocker { dir }
    }

    fn program(&self) -> PathBuf {
        self.dir.path().join("block")
    }

    /// The file it was given, once it is running.
    fn file(&self) -> PathBuf {
        let file = self.dir.path().join("file");
        wait_for(&file, "the blocking program's start");
        PathBuf::from(std::fs::read_to_string(file).unwrap())
    }

    /// Lets it end (if it still waits).
    fn release(&self) {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: fails at once instead of waiting when nobody reads any more.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000)
            .open(self.dir.path().join("fifo"));
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        self.release();
    }
}

/// `jeton edit svc/a --secret` running under `editor`, with TMPDIR in the test's HOME.
fn spawn_edit(t: &TestVault, editor: &Path) -> Child {
    let tmp = t.home().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut c = t.cmd();
    c.env("EDITOR", editor)
        .env("TMPDIR", &tmp)
        .args(["edit", "svc/a", "--secret"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn edit_secret_refuses_a_runtime_directory_another_user_made_first() {
    if !two_users() {
        return;
    }
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let uid = rustix::process::getuid().as_raw();
    let ran = t.home().join("editor-ran");
    let editor = script(
        t.home(),
        "editor.sh",
        &format!("cp \"$1\" '{}'", ran.display()),
    );
    let real = PathBuf::from(format!("/tmp/jeton-{uid}"));
    let real_before = std::fs::symlink_metadata(&real).is_ok();
    // In a mount namespace of its own with an empty /tmp, so the real /tmp is never touched;
    // the test's HOME and the binary stay reachable if they were under /tmp.
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_jeton"));
    let mut keep = String::new();
    for (fd, dir) in [(3, t.home()), (4, exe.parent().unwrap())] {
        if dir.starts_with("/tmp") {
            keep.push_str(&format!(
                "mkdir -p '{d}' && mount --no-canonicalize --bind /proc/self/fd/{fd} '{d}' || exit 92\n",
                d = dir.display()
            ));
        }
    }
    let body = format!(
        "set -u\nexec 3<'{home}' 4<'{bin}'\nmount -t tmpfs -o mode=1777 jeton-test /tmp || exit 90\n\
         {keep}exec 3<&- 4<&-\n\
         # The other user makes /tmp/jeton-$UID first, open to all.\n\
         setpriv --reuid=65534 --regid=65534 --clear-groups mkdir -m 0777 {dir} || exit 91\n\
         env -u XDG_RUNTIME_DIR EDITOR='{editor}' '{exe}' edit svc/a --secret\n\
         echo \"jeton exit: $?\"\n\
         echo \"in {dir}: $(ls -A {dir})\"\n\
         # Only /tmp's own files (-xdev: not the test's HOME or the binary mounted back).\n\
         hits=$(find /tmp -xdev -type f -exec grep -l -e \"$NEEDLE\" {{}} +)\n\
         [ -z \"$hits\" ] || echo \"a secret under /tmp: $hits\"\n\
         exit 0\n",
        home = t.home().display(),
        bin = exe.parent().unwrap().display(),
        dir = real.display(),
        editor = editor.display(),
        exe = exe.display(),
    );
    let mut c = t.cmd_for("unshare");
    c.env("NEEDLE", CANARY);
    let out = t.run_with(c, &["--mount", "sh", "-c", &body], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("jeton exit: 1\n"), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "jeton: error: refusing the runtime directory {}: it is owned by uid 65534, not {uid}",
            real.display()
        )),
        "{stderr}"
    );
    assert!(!ran.exists(), "the editor ran: {stderr}");
    assert!(
        stdout.contains(&format!("in {}: \n", real.display())),
        "{stdout}"
    );
    assert!(!stdout.contains("a secret under /tmp"), "{stdout}");
    assert_eq!(std::fs::symlink_metadata(&real).is_ok(), real_before);
}

#[test]
fn a_form_swapped_for_a_link_or_a_fifo_is_refused_and_nothing_applied() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &["--note", "before"]);
    let bytes = t.vault_bytes();
    let evil = t.home().join("evil");
    for (swap, why) in [
        // A changed form elsewhere, and a link to it where the form was.
        (
            format!(
                "sed -e 's/^before$/after/' \"$1\" > '{e}'\nrm \"$1\"\nln -s '{e}' \"$1\"",
                e = evil.display()
            ),
            "it is a symbolic link now",
        ),
        (
            "rm \"$1\"\nmkfifo \"$1\"".to_owned(),
            "it is not a regular file now",
        ),
    ] {
        let editor = script(t.home(), "swap.sh", &swap);
        let mut c = t.cmd();
        c.env("EDITOR", &editor);
        let out = t.run_with(c, &["edit", "svc/a", "--secret"], "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(why) && err.contains("nothing was changed"),
            "{err}"
        );
        assert_eq!(t.vault_bytes(), bytes, "{why}");
        let _ = std::fs::remove_file(&evil);
    }
    // An editor that saves by writing a new file and renaming it over the form (vim, emacs,
    // `sed -i`) is not a swap: the private directory is the same.
    let editor = script(
        t.home(),
        "rename.sh",
        "sed -e 's/^before$/after/' \"$1\" > \"$1.new\"\nmv \"$1.new\" \"$1\"",
    );
    let mut c = t.cmd();
    c.env("EDITOR", &editor);
    let out = t.run_with(c, &["edit", "svc/a", "--secret"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value =
        serde_json::from_str(&t.ok(&["--json", "show", "svc/a"], "")).unwrap();
    assert_eq!(shown["note"], "after");
}

#[test]
fn ctrl_c_while_the_editor_runs_is_the_editors_and_jeton_carries_on() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let editor = Blocker::new("sed -i '/^--- secret/{n;s/.*/after-ctrl-c-0123/}' \"$f\"");
    let mut jeton = spawn_edit(&t, &editor.program());
    editor.file();
    for sig in [rustix::process::Signal::INT, rustix::process::Signal::QUIT] {
        signal(&jeton, sig);
    }
    assert!(
        wait_exit(&mut jeton, Duration::from_millis(500)).is_none(),
        "jeton ended on SIGINT or SIGQUIT while the editor ran"
    );
    editor.release();
    let out = jeton.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.ok(&["get", "-n", "svc/a"], ""), "after-ctrl-c-0123");
    assert!(files_holding(t.home(), CANARY).is_empty());
}

#[test]
fn sighup_and_sigterm_wipe_the_form_and_end_jeton() {
    use rustix::process::Signal;
    for sig in [Signal::HUP, Signal::TERM] {
        let t = TestVault::new();
        t.add("svc/a", CANARY, &[]);
        let editor = Blocker::new("");
        let mut jeton = spawn_edit(&t, &editor.program());
        let form = editor.file();
        assert!(std::fs::read_to_string(&form).unwrap().contains(CANARY));
        signal(&jeton, sig);
        let status = wait_exit(&mut jeton, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("jeton still runs after {sig:?}"));
        assert_eq!(status.signal(), Some(sig.as_raw()), "{sig:?}");
        // Nothing holds the secret anywhere: runtime directory, TMPDIR, HOME.
        assert!(!form.exists(), "{sig:?}: {}", form.display());
        assert!(!form.parent().unwrap().exists(), "{sig:?}");
        assert_eq!(files_holding(t.home(), CANARY), Vec::<PathBuf>::new());
    }
}

#[test]
fn a_form_left_by_a_killed_jeton_is_wiped_by_the_next_one() {
    let t = TestVault::new();
    t.add("svc/a", CANARY, &[]);
    let editor = Blocker::new("");
    let mut jeton = spawn_edit(&t, &editor.program());
    let form = editor.file();
    signal(&jeton, rustix::process::Signal::KILL);
    jeton.wait().unwrap();
    // SIGKILL runs nothing: the form is still there, the editor still on it.
    assert!(std::fs::read_to_string(&form).unwrap().contains(CANARY));
    t.ok(&["list"], "");
    assert!(!form.parent().unwrap().exists());
    assert_eq!(files_holding(t.home(), CANARY), Vec::<PathBuf>::new());
}

/// The npm recipe's `npmrc` (which holds the token) lives in the runtime directory, never in
/// TMPDIR, and is wiped when jeton is stopped or, after SIGKILL, by the next jeton.
#[test]
fn the_npmrc_is_private_and_wiped_on_a_signal() {
    use rustix::process::Signal;
    for sig in [Signal::TERM, Signal::INT, Signal::KILL] {
        let t = TestVault::new();
        t.add("npm/ci", CANARY, &["--url", "https://registry.npmjs.org"]);
        t.add("npm/login", "account-password", &[]);
        t.ok(
            &[
                "issuer",
                "set",
                "npm/ci",
                "npm",
                "--npm-password-entry",
                "npm/login",
            ],
            "",
        );
        // A stand-in for npm, first in PATH: it waits with its configuration given.
        let npm = Blocker::new("");
        let bin = npm.dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(npm.program(), bin.join("npm")).unwrap();
        let tmp = t.home().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut jeton = t
            .cmd()
            .env("PATH", path)
            .env("TMPDIR", &tmp)
            .args(["rotate", "npm/ci", "--at-issuer"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let rc = npm.file();
        assert!(
            rc.starts_with(t.home().join("run/jeton/npm")),
            "{}",
            rc.display()
        );
        assert!(std::fs::read_to_string(&rc).unwrap().contains(CANARY));
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        signal(&jeton, sig);
        let status = wait_exit(&mut jeton, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("jeton still runs after {sig:?}"));
        assert_eq!(status.signal(), Some(sig.as_raw()), "{sig:?}");
        if sig == Signal::KILL {
            assert!(rc.exists());
            t.ok(&["list"], "");
        }
        assert!(!rc.parent().unwrap().exists(), "{sig:?}");
        assert_eq!(files_holding(t.home(), CANARY), Vec::<PathBuf>::new());
    }
}
