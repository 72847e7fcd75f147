//! `scan`: a generated corpus with the vault's secrets planted in every form, at the edges of
//! the read buffer and of files, in binary files, in git history (a deleted file, a branch not
//! checked out, a stash) and in staged changes; everything planted is found at its place and in
//! its form, and nothing else is (no false positive). The expected places are computed here
//! from how each encoder writes the secret, not by jeton's code.

#[path = "support/agent.rs"]
mod agent;
mod support;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::collections::BTreeSet;
use std::path::Path;
use support::*;

/// Special characters in every position an encoder cares about.
const A: &str = "gh0_Q7/x+Y=z\"q'w$e~r*t k9?>~";
const B: &str = "npm_9f8e7d6c5b4a39281706f5e4d3";
const C_OLD: &str = "AKIAOLDSECRET1234567";
const C_NEW: &str = "AKIANEWSECRET7654321";
const D: &str = "pässwörd-Ω-12345";
const SEED: &str = "JBSWY3DPEHPK3PXPJBSW";
const SHORT: &str = "1234";
/// The read size of the matcher (`jeton::scan::matcher::CHUNK`).
const CHUNK: usize = 64 * 1024;

fn vault() -> TestVault {
    let t = TestVault::new();
    t.add("ci/deploy", A, &[]);
    t.add("npm/publish", B, &[]);
    t.add("aws/key", C_OLD, &[]);
    t.ok(&["rotate", "aws/key"], C_NEW);
    t.add("wifi/pass", D, &[]);
    t.add("pin", SHORT, &[]);
    let uri = format!("otpauth://totp/Acme:me?secret={SEED}&issuer=Acme");
    t.add("otp/acme", &uri, &[]);
    t
}

/// One expected (or reported) hit: entry, version, form, base64 offset, path, line, column.
type Spot = (String, String, String, Option<u64>, String, u64, u64);

/// A file being written, and the hits planted in it.
struct Planter {
    path: String,
    bytes: Vec<u8>,
    spots: Vec<Spot>,
    filler: usize,
}

impl Planter {
    fn new(path: &str) -> Planter {
        Planter {
            path: path.into(),
            bytes: Vec::new(),
            spots: Vec::new(),
            filler: 0,
        }
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }

    fn place(&self, at: usize) -> (u64, u64) {
        let before = &self.bytes[..at];
        let line = before.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let column = match before.iter().rposition(|&b| b == b'\n') {
            Some(nl) => (at - nl) as u64,
            None => at as u64 + 1,
        };
        (line, column)
    }

    fn expect(&mut self, at: usize, entry: &str, version: &str, form: &str, offset: Option<u64>) {
        let (line, column) = self.place(at);
        let spot = (
            entry.to_owned(),
            version.to_owned(),
            form.to_owned(),
            offset,
            self.path.clone(),
            line,
            column,
        );
        self.spots.push(spot);
    }

    /// `encoded` as written, the secret's form starting `skip` bytes into it.
    fn plant(&mut self, encoded: &str, skip: usize, entry: &str, version: &str, form: &str) {
        let at = self.bytes.len() + skip;
        self.text(encoded);
        self.expect(at, entry, version, form, None);
    }

    /// `data` base64-encoded (`url`: base64url without padding, else padded standard base64),
    /// where the secret is `data[p..]`: the form starts at the first character that depends
    /// on the secret's bits alone.
    fn plant_base64(&mut self, data: &str, p: usize, url: bool, entry: &str) {
        let encoded = if url {
            URL_SAFE_NO_PAD.encode(data)
        } else {
            STANDARD.encode(data)
        };
        let a = p % 3;
        let skip = 4 * (p / 3) + (8 * a).div_ceil(6);
        let at = self.bytes.len() + skip;
        let form = if url { "base64url" } else { "base64" };
        self.text(&encoded);
        self.expect(at, entry, "current", form, Some(a as u64));
    }

    /// Plain text that holds no secret, up to byte `at`.
    fn fill_to(&mut self, at: usize) -> &mut Self {
        const LOREM: &[u8] = b"lorem ipsum dolor sit amet, consectetur 1234 adipiscing elit\n";
        while self.bytes.len() < at {
            self.bytes.push(LOREM[self.filler % LOREM.len()]);
            self.filler += 1;
        }
        self
    }

    fn write(&self, dir: &Path, all: &mut Vec<Spot>) {
        let path = dir.join(&self.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &self.bytes).unwrap();
        all.extend(self.spots.iter().cloned());
    }
}

fn hex(s: &str, upper: bool) -> String {
    s.bytes()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

fn percent(s: &str, lower: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Deterministic bytes (xorshift), for binary files.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The corpus: every form, the buffer's edges, the files' edges, binary files, and near
/// misses that must not be reported.
fn corpus(dir: &Path) -> Vec<Spot> {
    let mut all = Vec::new();

    let mut f = Planter::new("config/forms.txt");
    f.text("# every form of ci/deploy's token\nraw: ");
    f.plant(A, 0, "ci/deploy", "current", "raw");
    let json = serde_json::to_string(&serde_json::json!({ "token": A })).unwrap();
    f.text("\njson: ");
    f.plant(&json, 10, "ci/deploy", "current", "json");
    f.text("\nphp: ");
    f.plant(
        &json.replace('/', "\\/"),
        10,
        "ci/deploy",
        "current",
        "json-slash",
    );
    f.text("\nsh1: export TOKEN='");
    f.plant(
        &A.replace('\'', "'\\''"),
        0,
        "ci/deploy",
        "current",
        "shell-single",
    );
    f.text("'\nsh2: export TOKEN=\"");
    let double: String = A
        .chars()
        .flat_map(|c| {
            let esc = matches!(c, '\\' | '$' | '`' | '"');
            esc.then_some('\\').into_iter().chain([c])
        })
        .collect();
    f.plant(&double, 0, "ci/deploy", "current", "shell-double");
    f.text("\"\nsh3: export TOKEN=");
    f.plant(
        r#"gh0_Q7/x+Y=z\"q\'w\$e\~r\*t\ k9\?\>\~"#,
        0,
        "ci/deploy",
        "current",
        "shell-bare",
    );
    f.text("\nurl: https://api.example.com/v1?token=");
    f.plant(&percent(A, false), 0, "ci/deploy", "current", "percent");
    f.text("&x=1\nform: a=1&token=");
    let form: String = form_urlencoded::byte_serialize(A.as_bytes()).collect();
    f.plant(&form, 0, "ci/deploy", "current", "form-urlencoded");
    f.text("\nhex: ");
    f.plant(&hex(A, false), 0, "ci/deploy", "current", "hex");
    f.text("\nHEX: ");
    f.plant(&hex(A, true), 0, "ci/deploy", "current", "hex-upper");
    f.text("\nwifi (python json): ");
    f.plant(
        r#""p\u00e4ssw\u00f6rd-\u03a9-12345""#,
        1,
        "wifi/pass",
        "current",
        "json-ascii",
    );
    f.text("\nwifi (url, lower case): ");
    f.plant(
        &percent(D, true),
        0,
        "wifi/pass",
        "current",
        "percent-lower",
    );
    f.text("\nold aws key: ");
    f.plant(C_OLD, 0, "aws/key", "old #1", "raw");
    f.text("\ntotp seed: ");
    f.plant(SEED, 0, "otp/acme", "current, TOTP seed", "raw");
    f.text("\n");
    f.write(dir, &mut all);

    // base64 at each alignment, padded and not: HTTP Basic, a docker config, a JWT-like value.
    let mut f = Planter::new("config/encoded.txt");
    for (user, url) in [
        ("deploy:", false),
        ("me:", false),
        ("x:", false),
        ("u8:", true),
        ("bot1:", true),
    ] {
        f.text("Authorization: Basic ");
        f.plant_base64(&format!("{user}{A}"), user.len(), url, "ci/deploy");
        f.text("\n");
    }
    f.text("{\"auths\": {\"registry.example.com\": {\"auth\": \"");
    f.plant_base64(&format!("bot:{B}"), 4, false, "npm/publish");
    f.text("\"}}}\n");
    f.text("payload=");
    let jwt = format!("{{\"sub\":\"ci\",\"tok\":\"{A}\"}}");
    f.plant_base64(&jwt, jwt.find(A).unwrap(), true, "ci/deploy");
    f.text("\nalone: ");
    f.plant_base64(A, 0, false, "ci/deploy");
    f.text("\n");
    f.write(dir, &mut all);

    // Across the matcher's read boundaries, and at the very start and end of a file.
    let mut f = Planter::new("logs/big.log");
    f.plant(B, 0, "npm/publish", "current", "raw");
    f.fill_to(CHUNK - 7);
    f.plant(B, 0, "npm/publish", "current", "raw");
    f.fill_to(2 * CHUNK - B.len());
    f.plant(B, 0, "npm/publish", "current", "raw");
    f.fill_to(3 * CHUNK);
    f.plant(A, 0, "ci/deploy", "current", "raw");
    f.fill_to(4 * CHUNK - 20);
    f.plant(&hex(A, false), 0, "ci/deploy", "current", "hex");
    f.fill_to(5 * CHUNK + 3);
    f.plant(&hex(B, true), 0, "npm/publish", "current", "hex-upper");
    f.write(dir, &mut all);

    // Binary files: anywhere between random bytes, newlines included.
    let mut f = Planter::new("bin/blob.bin");
    f.bytes = noise(5000, 7);
    f.plant(B, 0, "npm/publish", "current", "raw");
    f.bytes.extend(noise(CHUNK, 11));
    f.text("\0");
    f.plant(&hex(A, true), 0, "ci/deploy", "current", "hex-upper");
    f.text("\0");
    f.bytes.extend(noise(3000, 13));
    f.plant(C_OLD, 0, "aws/key", "old #1", "raw");
    f.write(dir, &mut all);

    // Near misses and noise: none of this is a secret of the vault.
    let mut f = Planter::new("noise/near-misses.txt");
    let changed = format!("{}X", &A[..A.len() - 1]);
    let cut = &B[..B.len() - 1];
    f.text(&format!("one character changed: {changed}\n"));
    f.text(&format!("cut short: {cut}\n"));
    f.text(&format!("other case: {}\n", B.to_uppercase()));
    f.text(&format!("split across lines: {}\n{}\n", &B[..10], &B[10..]));
    let wrapped = STANDARD.encode(format!("deploy:{A}"));
    f.text(&format!(
        "wrapped base64: {}\n{}\n",
        &wrapped[..20],
        &wrapped[20..]
    ));
    f.text(&format!(
        "short secret everywhere: {SHORT} {SHORT}{SHORT}\n"
    ));
    f.text("the rest of the otp uri: otpauth://totp/Acme:me?issuer=Acme\n");
    for i in 0..200u64 {
        let n = noise(48, 100 + i);
        f.text(&STANDARD.encode(&n));
        f.text(" ");
        f.text(&hex(&String::from_utf8_lossy(&n), false));
        f.text("\n");
    }
    f.write(dir, &mut all);
    let mut f = Planter::new("noise/random.bin");
    f.bytes = noise(3 * CHUNK + 17, 99);
    f.write(dir, &mut all);

    all.sort();
    all
}

/// The hits of a `--json` scan, as spots.
fn spots(json: &str) -> Vec<Spot> {
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    let mut out: Vec<Spot> = v["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            let mut version = match h["version"].as_str().unwrap() {
                "old" => format!("old #{}", h["history_position"]),
                v => v.to_owned(),
            };
            if h["part"] == "totp-seed" {
                version.push_str(", TOTP seed");
            }
            let place = match h["commit"].as_str() {
                Some(c) => format!("{c}:{}", h["path"].as_str().unwrap()),
                None => h["path"].as_str().unwrap_or("-").to_owned(),
            };
            (
                h["entry"].as_str().unwrap().to_owned(),
                version,
                h["form"].as_str().unwrap().to_owned(),
                h["offset"].as_u64(),
                place,
                h["line"].as_u64().unwrap(),
                h["column"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Neither stdout nor stderr holds any secret, as it is or in the forms planted.
fn assert_no_secret(out: &std::process::Output) {
    let text = [
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    ]
    .concat();
    for s in [
        A,
        B,
        C_OLD,
        C_NEW,
        D,
        SEED,
        &hex(A, false),
        &percent(A, false),
    ] {
        assert!(!text.contains(s), "a secret in the output: {text}");
    }
}

fn scan(t: &TestVault, dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut c = t.cmd();
    c.current_dir(dir);
    let out = t.run_with(c, &[&["scan"][..], args].concat(), stdin);
    assert_no_secret(&out);
    out
}

fn corpus_dir(t: &TestVault) -> std::path::PathBuf {
    let dir = t.home().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_planted_form_is_found_at_its_place_and_nothing_else() {
    let t = vault();
    let dir = corpus_dir(&t);
    let want = corpus(&dir);
    assert!(want.len() > 30, "{}", want.len());
    let out = scan(&t, &dir, &["--json"], "");
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = spots(&String::from_utf8_lossy(&out.stdout));
    let missing: Vec<&Spot> = want.iter().filter(|s| !got.contains(s)).collect();
    let extra: Vec<&Spot> = got.iter().filter(|s| !want.contains(s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:#?}\nnot planted: {extra:#?}"
    );
    // Every form jeton knows was planted at least once.
    let forms: BTreeSet<(String, Option<u64>)> = got.iter().map(|s| (s.2.clone(), s.3)).collect();
    assert_eq!(forms.len(), 18, "{forms:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["secrets_too_short"], 1, "{v}");
    assert_eq!(v["summary"]["hits"], want.len());
}

#[test]
fn text_output_names_entry_version_place_and_form() {
    let t = vault();
    let dir = corpus_dir(&t);
    std::fs::write(dir.join("a.env"), format!("X=1\nTOKEN={C_OLD}\n")).unwrap();
    let out = scan(&t, &dir, &[], "");
    assert_eq!(out.status.code(), Some(8));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a.env:2:7: aws/key (old #1), raw\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 hit of 1 entry"), "{err}");
    assert!(err.contains("1 secret shorter than 8 characters"), "{err}");
    // Nothing there: exit 0.
    std::fs::remove_file(dir.join("a.env")).unwrap();
    let out = scan(&t, &dir, &[], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn standard_input_is_scanned_as_a_stream() {
    let t = vault();
    let dir = corpus_dir(&t);
    let mut log = String::new();
    for i in 0..5000 {
        log.push_str(&format!("step {i}: ok\n"));
    }
    log.push_str(&format!("curl -H 'Authorization: Bearer {B}'\n"));
    let out = scan(&t, &dir, &["-"], &log);
    assert_eq!(out.status.code(), Some(8));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<stdin>:5001:32: npm/publish (current), raw\n"
    );
}

#[test]
fn special_files_are_skipped_and_symlinks_followed_only_when_asked() {
    let t = vault();
    let dir = corpus_dir(&t);
    let outside = t.home().join("outside.txt");
    std::fs::write(&outside, B).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link.txt")).unwrap();
    let fifo = dir.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = scan(&t, &dir, &[], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped pipe: not a regular file (a FIFO)"),
        "{err}"
    );
    assert!(err.contains("1 symbolic link not followed"), "{err}");
    let out = scan(&t, &dir, &["--follow"], "");
    assert_eq!(out.status.code(), Some(8));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "link.txt:1:1: npm/publish (current), raw\n"
    );
    // A device named on the command line: skipped, not read forever.
    let out = scan(&t, &dir, &["/dev/zero"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a character device"));
}

#[test]
fn unreadable_paths_are_reported_and_exit_1_unless_something_is_found() {
    let t = vault();
    let dir = corpus_dir(&t);
    std::fs::write(dir.join("ok.txt"), "nothing\n").unwrap();
    let out = scan(&t, &dir, &["ok.txt", "missing.txt"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read missing.txt"), "{err}");
    std::fs::write(dir.join("hit.txt"), B).unwrap();
    let out = scan(&t, &dir, &["hit.txt", "missing.txt"], "");
    assert_eq!(out.status.code(), Some(8), "a hit says more than a failure");
}

#[test]
fn a_sparse_10_gib_file_costs_its_stored_blocks() {
    let t = vault();
    let dir = corpus_dir(&t);
    let path = dir.join("sparse.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(10 << 30).unwrap();
    use std::os::unix::fs::FileExt;
    let at = 5u64 << 30;
    f.write_all_at(format!("\n{B}\n").as_bytes(), at).unwrap();
    drop(f);
    let started = std::time::Instant::now();
    let out = scan(&t, &dir, &[], "");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(8));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sparse.img:2:1: npm/publish (current), raw\n"
    );
    assert!(took.as_secs() < 60, "took {took:?}");
}

#[test]
fn usage_errors_exit_2_before_unlocking() {
    let t = TestVault::empty();
    t.fails(&["scan", "--since", "HEAD"], "", 2);
    t.fails(&["scan", "--staged", "x"], "", 2);
    t.fails(&["scan", "-", "-"], "", 2);
    t.fails(&["scan", "--git", "a", "b"], "", 2);
    t.fails(&["scan", "--json", "--format", "text"], "", 2);
}

/// `git` in `dir` with the test's environment (so a hook finds the test vault) and an identity.
fn git_in(t: &TestVault, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut c = t.cmd_for("git");
    c.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgSign=false",
        ]);
    let out = t.run_with(c, args, "");
    assert_no_secret(&out);
    out
}

fn git_do(t: &TestVault, dir: &Path, args: &[&str]) -> String {
    let out = git_in(t, dir, args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn spot(entry: &str, version: &str, form: &str, place: String, line: u64, column: u64) -> Spot {
    let v = (version.to_owned(), form.to_owned());
    (entry.to_owned(), v.0, v.1, None, place, line, column)
}

/// A repository whose secrets are only in history: a file deleted in a later commit, a branch
/// that is not checked out, two stashes (one of tracked changes, one of an untracked file);
/// plus a file git ignores and a token in `.git/config`. Returns it and the expected history
/// hits, by commit.
fn leaky_repo(t: &TestVault) -> (std::path::PathBuf, Vec<Spot>) {
    let repo = t.home().join("repo");
    std::fs::create_dir_all(repo.join("old")).unwrap();
    git_do(t, &repo, &["init", "-q"]);
    std::fs::write(repo.join("README.md"), "hello\n").unwrap();
    std::fs::write(repo.join("old/creds.env"), format!("USER=x\nTOKEN={B}\n")).unwrap();
    git_do(t, &repo, &["add", "-A"]);
    git_do(t, &repo, &["commit", "-qm", "first"]);
    let first = git_do(t, &repo, &["rev-parse", "HEAD"]);
    // A second version of the file holds the same token: the same leak, reported once.
    let edited = format!("# moved to the vault\nUSER=x\nTOKEN={B}\n");
    std::fs::write(repo.join("old/creds.env"), edited).unwrap();
    git_do(t, &repo, &["commit", "-qam", "edit"]);
    git_do(t, &repo, &["rm", "-q", "old/creds.env"]);
    std::fs::write(repo.join(".gitignore"), "*.log\n").unwrap();
    git_do(t, &repo, &["add", "-A"]);
    git_do(t, &repo, &["commit", "-qm", "remove the credentials"]);
    git_do(t, &repo, &["checkout", "-qb", "feature"]);
    let json = serde_json::to_string(&serde_json::json!({ "token": A })).unwrap();
    std::fs::write(repo.join("feat.json"), format!("{json}\n")).unwrap();
    git_do(t, &repo, &["add", "-A"]);
    git_do(t, &repo, &["commit", "-qm", "feature"]);
    let feature = git_do(t, &repo, &["rev-parse", "HEAD"]);
    git_do(t, &repo, &["checkout", "-q", "main"]);
    std::fs::write(repo.join("README.md"), format!("hello\nkey: {C_OLD}\n")).unwrap();
    git_do(t, &repo, &["stash", "-q"]);
    std::fs::write(repo.join("notes.txt"), format!("{SEED}\n")).unwrap();
    git_do(t, &repo, &["stash", "-q", "-u"]);
    let tracked = git_do(t, &repo, &["rev-parse", "stash@{1}"]);
    let untracked = git_do(t, &repo, &["rev-parse", "stash@{0}^3"]);
    std::fs::write(repo.join("debug.log"), A).unwrap();
    let url = format!("https://bot:{B}@git.example.com/acme/app.git");
    git_do(t, &repo, &["remote", "add", "origin", &url]);
    let want = vec![
        spot(
            "npm/publish",
            "current",
            "raw",
            format!("{first}:old/creds.env"),
            2,
            7,
        ),
        spot(
            "ci/deploy",
            "current",
            "json",
            format!("{feature}:feat.json"),
            1,
            11,
        ),
        spot(
            "aws/key",
            "old #1",
            "raw",
            format!("{tracked}:README.md"),
            2,
            6,
        ),
        spot(
            "otp/acme",
            "current, TOTP seed",
            "raw",
            format!("{untracked}:notes.txt"),
            1,
            1,
        ),
    ];
    (repo, want)
}

fn sorted(mut v: Vec<Spot>) -> Vec<Spot> {
    v.sort();
    v
}

#[test]
fn history_finds_deleted_files_other_branches_and_stashes_once_each() {
    let t = vault();
    let (repo, want) = leaky_repo(&t);
    let out = scan(&t, &repo, &["--git", "--json"], "");
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    assert_eq!(
        spots(&String::from_utf8_lossy(&out.stdout)),
        sorted(want.clone())
    );
    // Text: the commit's first 12 digits.
    let out = scan(&t, &repo, &["--git"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = &want[0].4[..12];
    assert!(
        text.contains(&format!(
            "{first}:old/creds.env:2:7: npm/publish (current), raw"
        )),
        "{text}"
    );
    // The work tree holds none of them; the ignored log and .git/ are not read by default.
    let out = scan(&t, &repo, &[], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = scan(&t, &repo, &["--all"], "");
    assert_eq!(out.status.code(), Some(8));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "debug.log:1:1: ci/deploy (current), raw\n"
    );
    // Named, .git/ is read: a token in a remote's URL.
    let out = scan(&t, &repo, &[".git/config"], "");
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stdout).contains("npm/publish (current), raw"));
}

#[test]
fn history_since_a_commit_leaves_out_what_it_reaches() {
    let t = vault();
    let (repo, want) = leaky_repo(&t);
    let second = git_do(&t, &repo, &["rev-parse", "main"]);
    let out = scan(&t, &repo, &["--git", "--since", &second, "--json"], "");
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let later: Vec<Spot> = want[1..].to_vec();
    assert_eq!(spots(&String::from_utf8_lossy(&out.stdout)), sorted(later));
    let err = String::from_utf8_lossy(&scan(&t, &repo, &["--git", "--since", "nope"], "").stderr)
        .into_owned();
    assert!(err.contains("no commit 'nope'"), "{err}");
}

#[test]
fn a_corrupt_or_missing_repository_fails_with_gits_reason() {
    let t = vault();
    let (repo, _) = leaky_repo(&t);
    let blob = git_do(&t, &repo, &["rev-parse", "feature:feat.json"]);
    let object = repo.join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    std::fs::remove_file(&object).unwrap();
    std::fs::write(&object, "not a git object").unwrap();
    let out = scan(&t, &repo, &["--git"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("git cat-file failed") && err.contains(&blob),
        "{err}"
    );
    let elsewhere = t.home().join("not-a-repo");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = scan(&t, &elsewhere, &["--git"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
}

#[test]
fn the_pre_commit_hook_refuses_a_commit_holding_a_token_until_it_is_removed() {
    let t = vault();
    let repo = t.home().join("app");
    std::fs::create_dir_all(&repo).unwrap();
    git_do(&t, &repo, &["init", "-q"]);
    let out = scan(&t, &repo, &["--install-hook"], "");
    assert!(out.status.success(), "{out:?}");
    let hook = repo.join(".git/hooks/pre-commit");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&hook).unwrap().permissions().mode() & 0o111,
        0o111
    );
    // Installing again replaces jeton's own hook; someone else's is left alone.
    assert!(scan(&t, &repo, &["--install-hook"], "").status.success());

    std::fs::write(repo.join("app.env"), format!("PORT=80\nTOKEN={B}\n")).unwrap();
    std::fs::write(repo.join("main.rs"), "fn main() {}\n").unwrap();
    git_do(&t, &repo, &["add", "-A"]);
    let out = git_in(&t, &repo, &["commit", "-qm", "add the app"]);
    assert!(!out.status.success(), "the commit went through");
    let said = [
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    ]
    .concat();
    assert!(
        said.contains("app.env:2:7: npm/publish (current), raw"),
        "{said}"
    );
    assert!(said.contains("the commit is refused"), "{said}");
    assert!(git_in(&t, &repo, &["rev-parse", "HEAD"]).status.code() != Some(0));

    std::fs::write(repo.join("app.env"), "PORT=80\nTOKEN=${TOKEN}\n").unwrap();
    git_do(&t, &repo, &["add", "-A"]);
    git_do(&t, &repo, &["commit", "-qm", "add the app"]);
    git_do(&t, &repo, &["rev-parse", "HEAD"]);

    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    let out = scan(&t, &repo, &["--install-hook"], "");
    assert_eq!(out.status.code(), Some(9), "{out:?}");
}

/// A program of the test virtual environment (.ci/run makes it; `$JETON_TEST_AWS_VENV`).
fn venv_program(name: &str) -> Option<std::path::PathBuf> {
    let venv = std::env::var_os("JETON_TEST_AWS_VENV")?;
    let path = Path::new(&venv).join("bin").join(name);
    path.exists().then_some(path)
}

#[test]
fn sarif_output_is_a_valid_sarif_2_1_0_log_of_every_hit() {
    let t = vault();
    let dir = corpus_dir(&t);
    let want = corpus(&dir);
    let out = scan(&t, &dir, &["--format", "sarif"], "");
    assert_eq!(out.status.code(), Some(8));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "jeton");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), want.len());
    let mut got: Vec<(String, String, u64, u64)> = results
        .iter()
        .map(|r| {
            let loc = &r["locations"][0]["physicalLocation"];
            let level = if r["ruleId"] == "jeton/current-secret" {
                "error"
            } else {
                "warning"
            };
            assert_eq!(r["level"], level, "{r}");
            (
                r["properties"]["entry"].as_str().unwrap().to_owned(),
                loc["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                loc["region"]["startLine"].as_u64().unwrap(),
                loc["region"]["startColumn"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    let mut expected: Vec<(String, String, u64, u64)> = want
        .iter()
        .map(|s| (s.0.clone(), s.4.clone(), s.5, s.6))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    // Validated against the schema where CI provides it (.ci/run: JETON_TEST_SARIF_SCHEMA).
    let schema =
        std::env::var_os("JETON_TEST_SARIF_SCHEMA").filter(|p| std::path::Path::new(p).is_file());
    let Some(schema) = schema else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide the SARIF schema (.ci/run sets JETON_TEST_SARIF_SCHEMA)"
        );
        eprintln!("JETON_TEST_SARIF_SCHEMA not set: SARIF schema validation not run");
        return;
    };
    let python = venv_program("python3").expect("the test venv's python (JETON_TEST_AWS_VENV)");
    let check = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(doc), key=str)
for e in errors[:20]:
    print(e.message, list(e.absolute_path))
sys.exit(1 if errors else 0)
"#;
    let mut c = std::process::Command::new(python);
    c.args(["-c", check]).arg(&schema);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let checked = child.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "not valid SARIF 2.1.0: {}",
        String::from_utf8_lossy(&checked.stdout)
    );
}

#[test]
fn the_pre_commit_framework_runs_the_hook_from_pre_commit_hooks_yaml() {
    let Some(pre_commit) = venv_program("pre-commit") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide pre-commit (.ci/run installs it)"
        );
        eprintln!("pre-commit not installed in JETON_TEST_AWS_VENV: test not run");
        return;
    };
    let t = vault();
    let repo = t.home().join("pc");
    std::fs::create_dir_all(&repo).unwrap();
    git_do(&t, &repo, &["init", "-q"]);
    std::fs::write(repo.join("settings.py"), format!("TOKEN = '{B}'\n")).unwrap();
    git_do(&t, &repo, &["add", "-A"]);
    let bin = Path::new(env!("CARGO_BIN_EXE_jeton")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let project = env!("CARGO_MANIFEST_DIR");
    let run = |t: &TestVault| {
        let mut c = t.cmd_for(pre_commit.to_str().unwrap());
        c.current_dir(&repo)
            .env("PATH", &path)
            .env("PRE_COMMIT_HOME", t.home().join("pre-commit-cache"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com");
        let out = t.run_with(c, &["try-repo", project, "jeton-scan"], "");
        assert_no_secret(&out);
        out
    };
    let out = run(&t);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("settings.py:1:10: npm/publish (current), raw"),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(repo.join("settings.py"), "TOKEN = os.environ['TOKEN']\n").unwrap();
    git_do(&t, &repo, &["add", "-A"]);
    let out = run(&t);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rotate_rotates_leaked_current_secrets_that_have_a_recipe_and_names_the_rest() {
    let t = vault();
    let dir = corpus_dir(&t);
    let issued = t.home().join("issued");
    let create = format!(
        "printf '%s' newtok-from-issuer-0123456789 | tee {}",
        issued.display()
    );
    t.ok(
        &[
            "issuer",
            "set",
            "npm/publish",
            "command",
            "--create",
            &create,
        ],
        "",
    );
    std::fs::write(dir.join("leak.txt"), format!("{B}\n{A}\n{C_OLD}\n")).unwrap();
    // Each rotation is a jeton command of its own, which inherits no passphrase source: the
    // agent must hold the key.
    assert_eq!(scan(&t, &dir, &["--rotate"], "").status.code(), Some(3));
    let _agent = agent::unlock(&t, &[]);
    let mut c = agent::no_pass(&t);
    c.current_dir(&dir);
    let out = t.run_with(c, &["scan", "--rotate"], "");
    assert_no_secret(&out);
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("npm/publish: rotating at the issuer"), "{err}");
    assert!(
        err.contains("ci/deploy: leaked and no issuer recipe")
            && err.contains("`jeton rotate ci/deploy`"),
        "{err}"
    );
    assert!(err.contains("aws/key: old #1 leaked"), "{err}");
    assert!(issued.exists(), "the recipe did not run: {err}");
    assert_eq!(
        t.ok(&["get", "npm/publish"], ""),
        "newtok-from-issuer-0123456789\n"
    );
    // The leaked token is now an old one.
    let out = scan(&t, &dir, &[], "");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("leak.txt:1:1: npm/publish (old #1), raw"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn leaked_findings(t: &TestVault) -> Vec<(String, String)> {
    let out = t.run(&["check", "--json"], "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "leaked")
        .map(|f| {
            (
                f["entry"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn check_shows_a_leaked_current_secret_until_it_is_rotated() {
    let t = vault();
    let dir = corpus_dir(&t);
    assert!(leaked_findings(&t).is_empty());
    std::fs::write(dir.join("x.txt"), format!("{B}\n{C_OLD}\n")).unwrap();
    assert_eq!(scan(&t, &dir, &[], "").status.code(), Some(8));
    let leaks = leaked_findings(&t);
    assert_eq!(leaks.len(), 1, "only the current secret: {leaks:?}");
    assert_eq!(leaks[0].0, "npm/publish");
    assert!(
        leaks[0]
            .1
            .contains("found by `jeton scan` at x.txt:1:1 (raw)"),
        "{leaks:?}"
    );
    // Found again: still one finding; the log says when it was first found.
    assert_eq!(scan(&t, &dir, &[], "").status.code(), Some(8));
    assert_eq!(leaked_findings(&t).len(), 1);
    assert!(
        t.ok(&["log", "npm/publish"], "")
            .contains("current secret found by scan at x.txt:1:1 (raw)")
    );
    t.ok(
        &["rotate", "npm/publish"],
        "npm_rotated-after-the-leak-0001",
    );
    assert!(leaked_findings(&t).is_empty());
    // The record is internal: not listed, not counted, its name not for an entry.
    assert!(!t.ok(&["list", "--status", "all"], "").contains(".leak/"));
    let v: serde_json::Value =
        serde_json::from_slice(&t.run(&["check", "--json"], "").stdout).unwrap();
    assert_eq!(v["checked"], 6, "{v}");
    t.fails(&["add", ".leak/000102030405060708090a0b0c0d0e0f"], "x", 2);
}
