//! Sharing through the real binary: identities, contacts, bundles between two (or more) vaults,
//! interoperability with the standard `age` tool, and every way `import` must refuse a bundle.

mod hardening;
mod support;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

/// A vault whose card carries `name`.
fn vault(name: &str) -> TestVault {
    let t = TestVault::empty();
    t.ok(&[&["init", "--name", name][..], &CHEAP_KDF].concat(), "");
    t
}

fn card(t: &TestVault) -> String {
    t.ok(&["-q", "identity"], "").trim().to_owned()
}

/// The age recipient on a vault's card.
fn recipient(t: &TestVault) -> String {
    card(t).split_whitespace().nth(1).unwrap().to_owned()
}

/// `a` knows `b` as `b_name`.
fn knows(a: &TestVault, b_name: &str, b: &TestVault) {
    a.ok(&["contact", "add", b_name, &card(b)], "");
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Runs `share ARGS -o FILE` in `t` and returns FILE.
fn share(t: &TestVault, file: &str, args: &[&str]) -> PathBuf {
    let path = t.home().join(file);
    let p = path.to_str().unwrap();
    t.ok(&[&["share"][..], args, &["-o", p]].concat(), "");
    path
}

/// Imports `file` into `t` expecting `code`, a message containing `needle`, and the vault file
/// unchanged, byte for byte.
fn refused(t: &TestVault, file: &Path, code: i32, needle: &str) {
    let before = t.vault_bytes();
    let err = t.fails(&["import", file.to_str().unwrap()], "", code);
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(err.starts_with("jeton: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        t.vault_bytes(),
        before,
        "a refused import changed the vault"
    );
}

fn tool(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed (.ci/run does it): {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An age identity made by `age-keygen` in `dir`; returns (key file, recipient).
fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    tool("age-keygen", &["-o", key.to_str().unwrap()], b"");
    let r = tool("age-keygen", &["-y", key.to_str().unwrap()], b"");
    (key, String::from_utf8(r).unwrap().trim().to_owned())
}

fn age_decrypt(key: &Path, file: &Path) -> Vec<u8> {
    tool(
        "age",
        &["-d", "-i", key.to_str().unwrap(), file.to_str().unwrap()],
        b"",
    )
}

/// Encrypts `plain` to an age recipient with the age tool, into `out`.
fn age_encrypt(recipient: &str, plain: &[u8], out: &Path) {
    tool(
        "age",
        &["-r", recipient, "-o", out.to_str().unwrap()],
        plain,
    );
}

#[test]
fn identity_card_and_contacts() {
    let alice = vault("Alice Example");
    let out = alice.ok(&["identity"], "");
    let mut lines = out.lines();
    let card_line = lines.next().unwrap();
    assert!(
        card_line.starts_with("jeton-card-v1 age1") && card_line.ends_with(" Alice Example"),
        "{out}"
    );
    let fp = lines.next().unwrap().strip_prefix("fingerprint: ").unwrap();
    assert_eq!(fp.len(), 24, "{fp}");
    let j = json(&alice.ok(&["--json", "identity"], ""));
    assert_eq!(j["card"], card_line);
    assert_eq!(j["name"], "Alice Example");
    assert!(card_line.contains(j["age_recipient"].as_str().unwrap()));
    assert!(card_line.contains(j["signing_key"].as_str().unwrap()));
    // The card is stable and holds no secret.
    assert_eq!(card(&alice), card_line);
    assert!(!alice.ok(&["identity"], "").contains("AGE-SECRET-KEY"));

    let bob = vault("Bob");
    let added = bob.ok(&["contact", "add", "alice", card_line], "");
    assert!(added.contains(fp), "adding shows the fingerprint: {added}");
    let (_, eve_r) = age_keygen(bob.home(), "eve.key");
    bob.ok(&["contact", "add", "eve", "--age", &eve_r], "");
    let ssh_key = bob.home().join("id_ed25519");
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "sam@host",
            "-f",
            ssh_key.to_str().unwrap(),
        ],
        b"",
    );
    let pubkey = std::fs::read_to_string(ssh_key.with_extension("pub")).unwrap();
    bob.ok(&["contact", "add", "sam", "--ssh-key", pubkey.trim()], "");
    let list = bob.ok(&["contact", "list"], "");
    for needle in ["alice", "card", "eve", "age", "sam", "ssh", fp] {
        assert!(list.contains(needle), "{needle} in {list}");
    }
    let j = json(&bob.ok(&["--json", "contact", "list"], ""));
    assert_eq!(j.as_array().unwrap().len(), 3);
    // Same keys again: no change. Other keys: refused without --replace (exit 9).
    bob.ok(&["contact", "add", "alice", card_line], "");
    let other = card(&vault("Mallory"));
    bob.fails(&["contact", "add", "alice", &other], "", 9);
    bob.ok(&["contact", "add", "alice", &other, "--replace"], "");
    // A signing key belongs to one contact only.
    bob.fails(&["contact", "add", "alice2", &other], "", 9);
    // Bad keys are usage errors, before any unlock.
    bob.fails(
        &["contact", "add", "x", "jeton-card-v1 age1nope AAAA"],
        "",
        2,
    );
    bob.fails(&["contact", "add", "x", "--age", "age1nope"], "", 2);
    bob.fails(&["contact", "add", "x", "--ssh-key", "ssh-rsa AAAA"], "", 2);
    bob.fails(&["contact", "add", "bad name", "--age", &eve_r], "", 2);
    bob.fails(&["contact", "add", "x"], "", 2);
    bob.ok(&["contact", "rm", "eve"], "");
    bob.fails(&["contact", "rm", "eve"], "", 4);
}

#[test]
fn vault_made_before_sharing_gets_an_identity() {
    let t = TestVault::empty();
    std::fs::create_dir_all(t.vault_path().parent().unwrap()).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1-basic.jeton"),
        t.vault_path(),
    )
    .unwrap();
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "jeton format v1 test vector");
    let out = t.run_with(c, &["identity"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = String::from_utf8(out.stdout).unwrap();
    assert!(first.starts_with("jeton-card-v1 age1"), "{first}");
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "jeton format v1 test vector");
    let again = t.run_with(c, &["identity"], "");
    assert_eq!(String::from_utf8(again.stdout).unwrap(), first, "stable");
    let mut c = t.cmd();
    c.env("JETON_PASSPHRASE", "jeton format v1 test vector");
    let get = t.run_with(c, &["get", "github/ci-deploy"], "");
    assert_eq!(
        String::from_utf8(get.stdout).unwrap(),
        "ghp_vector_0123456789abcdefghijklmnopqrstuv\n"
    );
}

#[test]
fn two_vaults_share_and_import() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    knows(&bob, "alice", &alice);
    alice.add(
        "github/ci-deploy",
        CANARY,
        &[
            "--scope",
            "repo",
            "--scope",
            "workflow",
            "--url",
            "https://github.com",
            "--username",
            "ci-bot",
            "--issuer",
            "GitHub",
            "--contact",
            "Ops <ops@example.com>",
            "--used-by",
            "ci:github-actions:DEPLOY_TOKEN",
            "--tag",
            "ci",
            "--note",
            "a note",
            "--expires",
            "2031-01-31",
            "--rotate-every",
            "90d",
        ],
    );
    alice.add("npm/publish", "npm_0123", &[]);
    let file = share(
        &alice,
        "b.age",
        &["github/ci-deploy", "npm/publish", "--to", "bob"],
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let raw = std::fs::read(&file).unwrap();
    assert!(raw.starts_with(b"age-encryption.org/v1\n"));
    assert!(!String::from_utf8_lossy(&raw).contains(CANARY));

    // A dry run checks everything and changes nothing.
    let before = bob.vault_bytes();
    let dry = bob.ok(&["import", "--dry-run", file.to_str().unwrap()], "");
    assert!(dry.contains("would add github/ci-deploy"), "{dry}");
    assert_eq!(bob.vault_bytes(), before);

    let out = bob.ok(&["import", file.to_str().unwrap()], "");
    assert!(
        out.contains("added github/ci-deploy") && out.contains("from alice"),
        "{out}"
    );
    let a = json(&alice.ok(&["--json", "get", "github/ci-deploy"], ""));
    let b = json(&bob.ok(&["--json", "get", "github/ci-deploy"], ""));
    assert_eq!(b["secret"], CANARY);
    for field in [
        "scopes",
        "url",
        "username",
        "issuer",
        "contact",
        "used_by",
        "tags",
        "note",
        "expires_at",
        "rotate_every",
        "created_at",
        "secret_set_at",
        "rotation_due_at",
    ] {
        assert_eq!(a[field], b[field], "{field}");
    }
    assert_eq!(b["received_from"]["from"], "alice");
    assert_eq!(a["shared_with"][0]["contact"], "bob");
    assert_eq!(
        a["shared_with"][0]["bundle_id"],
        b["received_from"]["reference"]
    );
    assert_eq!(bob.ok(&["get", "npm/publish"], ""), "npm_0123\n");

    // The same entry shared again by the same sender updates Bob's copy.
    let again = share(&alice, "b2.age", &["github/ci-deploy", "--to", "bob"]);
    let out = bob.ok(&["import", again.to_str().unwrap()], "");
    assert!(out.contains("updated github/ci-deploy"), "{out}");
    // A name Bob holds that did not come from that entry of Alice's: conflicts fail (exit 9)
    // unless --on-conflict says.
    bob.add("svc/mine", "bob-own", &[]);
    alice.add("svc/mine", CANARY, &[]);
    let clash = share(&alice, "b2c.age", &["svc/mine", "--to", "bob"]);
    let before = bob.vault_bytes();
    bob.fails(&["import", clash.to_str().unwrap()], "", 9);
    assert_eq!(bob.vault_bytes(), before);
    let out = bob.ok(
        &["import", "--on-conflict", "rename", clash.to_str().unwrap()],
        "",
    );
    assert!(out.contains("svc/mine-2"), "{out}");
    assert_eq!(bob.ok(&["get", "svc/mine-2"], ""), format!("{CANARY}\n"));
    let third = share(&alice, "b3.age", &["npm/publish", "--to", "bob"]);
    bob.ok(
        &[
            "import",
            "--on-conflict",
            "skip",
            "--prefix",
            "alice",
            third.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(bob.ok(&["get", "alice/npm/publish"], ""), "npm_0123\n");
    let fourth = share(&alice, "b4.age", &["svc/mine", "--to", "bob", "--armor"]);
    assert!(
        std::fs::read_to_string(&fourth)
            .unwrap()
            .starts_with("-----BEGIN AGE ENCRYPTED FILE-----")
    );
    let out = bob.ok(
        &[
            "import",
            "--on-conflict",
            "overwrite",
            fourth.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.contains("overwrote svc/mine"), "{out}");
    let b = json(&bob.ok(&["--json", "show", "svc/mine"], ""));
    assert_eq!(b["history_count"], 1);

    // Refusals on the sending side.
    alice.fails(
        &["share", "npm/publish", "--to", "nobody", "-o", "x"],
        "",
        4,
    );
    alice.fails(&["share", "missing", "--to", "bob", "-o", "x"], "", 4);
}

#[test]
fn a_bundle_killed_mid_write_is_the_old_file_or_the_new() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    knows(&bob, "alice", &alice);
    alice.add("svc/token", CANARY, &[]);
    let file = alice.home().join("b.age");
    let f = file.to_str().unwrap();
    let args = ["--yes", "share", "svc/token", "--to", "bob", "-o", f];
    hardening::kill_during_write(&alice, &args, "", &file, b"old bundle", |_| {
        bob.run(&["import", "--dry-run", f], "").status.success()
    });
}

#[test]
fn share_refuses_existing_files_and_bad_expiry() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    alice.add("a", "x", &[]);
    let f = share(&alice, "one.age", &["a", "--to", "bob"]);
    // An existing output file is kept unless --yes.
    alice.fails(
        &["share", "a", "--to", "bob", "-o", f.to_str().unwrap()],
        "",
        9,
    );
    alice.ok(
        &[
            "--yes",
            "share",
            "a",
            "--to",
            "bob",
            "-o",
            f.to_str().unwrap(),
        ],
        "",
    );
    // Expiry bounds are checked before unlocking.
    alice.fails(
        &["share", "a", "--to", "bob", "--expires", "soon", "-o", "y"],
        "",
        2,
    );
    alice.fails(
        &["share", "a", "--to", "bob", "--expires", "400d", "-o", "y"],
        "",
        2,
    );
    // Other bad input: exit 2 before anything is read or unlocked.
    let f = f.to_str().unwrap();
    alice.fails(&["share", "a", "--to", "bad name", "-o", "y"], "", 2);
    alice.fails(&["share", "../x", "--to", "bob", "-o", "y"], "", 2);
    alice.fails(&["share", "a", "-o", "y"], "", 2);
    alice.fails(&["--json", "share", "a", "--to", "bob"], "", 2);
    alice.fails(&["import", "--on-conflict", "merge", f], "", 2);
    alice.fails(&["import", "--prefix", "../p", f], "", 2);
    alice.fails(&["import"], "", 2);
    let nobody = TestVault::empty();
    nobody.fails(&["import", f], "", 4);
    nobody.fails(&["identity"], "", 4);
}

#[test]
fn age_tool_reads_bundles() {
    let alice = vault("Alice");
    let (eve_key, eve_r) = age_keygen(alice.home(), "eve.key");
    alice.ok(&["contact", "add", "eve", "--age", &eve_r], "");
    let ssh_key = alice.home().join("id_ed25519");
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "sam",
            "-f",
            ssh_key.to_str().unwrap(),
        ],
        b"",
    );
    let pubkey = std::fs::read_to_string(ssh_key.with_extension("pub")).unwrap();
    alice.ok(&["contact", "add", "sam", "--ssh-key", pubkey.trim()], "");
    alice.add("svc/token", CANARY, &["--scope", "read"]);

    for (i, armor) in [false, true].into_iter().enumerate() {
        let mut args = vec!["svc/token", "--to", "eve,sam"];
        if armor {
            args.push("--armor");
        }
        let file = share(&alice, &format!("s{i}.age"), &args);
        for key in [&eve_key, &ssh_key] {
            let plain = age_decrypt(key, &file);
            let envelope = json(std::str::from_utf8(&plain).unwrap());
            assert_eq!(envelope["format"], "jeton-bundle-v1");
            let body = json(envelope["body"].as_str().unwrap());
            assert_eq!(body["entries"][0]["secret"], CANARY);
            assert_eq!(body["entries"][0]["name"], "svc/token");
            assert_eq!(body["recipients"].as_array().unwrap().len(), 2);
        }
    }
}

/// Alice, Bob, Carol and an age-only contact Eve whose key the test holds, so the test can
/// take envelopes apart like a malicious recipient would.
struct Team {
    alice: TestVault,
    bob: TestVault,
    eve_key: PathBuf,
}

fn team() -> Team {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    knows(&bob, "alice", &alice);
    let (eve_key, eve_r) = age_keygen(alice.home(), "eve.key");
    alice.ok(&["contact", "add", "eve", "--age", &eve_r], "");
    alice.add("svc/token", CANARY, &[]);
    Team {
        alice,
        bob,
        eve_key,
    }
}

impl Team {
    /// The plaintext envelope of a bundle Alice made for Bob and Eve.
    fn envelope(&self) -> serde_json::Value {
        let f = share(
            &self.alice,
            "env.age",
            &["svc/token", "--to", "bob", "--to", "eve"],
        );
        json(std::str::from_utf8(&age_decrypt(&self.eve_key, &f)).unwrap())
    }
}

#[test]
fn import_refusals() {
    let t = team();
    let bob = &t.bob;
    let dir = bob.home();

    // Not addressed to this vault: exit 3.
    let for_eve = share(&t.alice, "eve.age", &["svc/token", "--to", "eve"]);
    refused(bob, &for_eve, 3, "not addressed to this vault");

    // Unsigned envelope.
    let env = t.envelope();
    let unsigned = serde_json::json!({"format": "jeton-bundle-v1", "body": env["body"]});
    let f = dir.join("unsigned.age");
    age_encrypt(&recipient(bob), unsigned.to_string().as_bytes(), &f);
    refused(bob, &f, 6, "not signed");

    // Tampered envelope: the body changed, the signature kept.
    let mut tampered = env.clone();
    tampered["body"] = env["body"]
        .as_str()
        .unwrap()
        .replace(CANARY, "CANARY-tok-attacker")
        .into();
    let f = dir.join("tampered.age");
    age_encrypt(&recipient(bob), tampered.to_string().as_bytes(), &f);
    refused(bob, &f, 6, "signature does not verify");

    // Not a jeton envelope at all.
    let f = dir.join("garbage.age");
    age_encrypt(&recipient(bob), b"hello", &f);
    refused(bob, &f, 6, "envelope");

    // Forwarded: Eve re-encrypts Alice's signed envelope to Carol, who trusts Alice.
    let carol = vault("Carol");
    knows(&carol, "alice", &t.alice);
    let f = dir.join("forwarded.age");
    age_encrypt(&recipient(&carol), env.to_string().as_bytes(), &f);
    refused(&carol, &f, 6, "recipient list");
    // The untouched envelope re-encrypted to Bob, who is in the list, is fine.
    let f = dir.join("reencrypted.age");
    age_encrypt(&recipient(bob), env.to_string().as_bytes(), &f);
    bob.ok(&["import", f.to_str().unwrap()], "");

    // Signed by someone who is not a contact.
    let mallory = vault("Mallory");
    knows(&mallory, "bob", bob);
    mallory.add("svc/other", "m", &[]);
    let f = share(&mallory, "m.age", &["svc/other", "--to", "bob"]);
    refused(bob, &f, 6, "not one of your contacts");

    // Replay.
    let f = share(&t.alice, "replay.age", &["svc/token", "--to", "bob"]);
    bob.ok(&["import", "--prefix", "r", f.to_str().unwrap()], "");
    refused(bob, &f, 6, "already imported");

    // Expired.
    let f = share(
        &t.alice,
        "expired.age",
        &["svc/token", "--to", "bob", "--expires", "1s"],
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    refused(bob, &f, 6, "expired");

    // A file that is no age file, an empty one, a missing one.
    let f = dir.join("junk");
    std::fs::write(&f, b"not a bundle").unwrap();
    refused(bob, &f, 6, "it is not an age file");
    std::fs::write(&f, b"").unwrap();
    refused(bob, &f, 6, "it is not an age file");
    // A damaged age file is called damaged.
    let fresh = share(&t.alice, "fresh.age", &["svc/token", "--to", "bob"]);
    let mut bytes = std::fs::read(&fresh).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 1;
    let damaged = dir.join("damaged.age");
    std::fs::write(&damaged, &bytes).unwrap();
    refused(bob, &damaged, 6, "corrupt or has been tampered with");
    bob.fails(&["import", dir.join("nope").to_str().unwrap()], "", 4);
}

#[test]
fn every_byte_of_a_small_bundle_is_authenticated() {
    let alice = vault("A");
    let bob = vault("B");
    knows(&alice, "b", &bob);
    knows(&bob, "a", &alice);
    alice.add("t", "x", &[]);
    let file = share(&alice, "small.age", &["t", "--to", "b", "--expires", "1h"]);
    let bytes = std::fs::read(&file).unwrap();
    // Bytes of the recipient stanzas may turn the file into one for someone else (exit 3);
    // every other change is an integrity failure (exit 6).
    let header_end = bytes.windows(4).position(|w| w == b"\n---").unwrap();
    let stanzas_start = bytes.windows(4).position(|w| w == b"\n-> ").unwrap();
    let before = bob.vault_bytes();
    let indices: Vec<usize> = (0..bytes.len()).collect();
    std::thread::scope(|s| {
        for chunk in indices.chunks(bytes.len().div_ceil(2)) {
            let (bob, bytes) = (&bob, &bytes);
            s.spawn(move || {
                for &i in chunk {
                    let mut b = bytes.clone();
                    b[i] ^= 0x01;
                    let f = bob.home().join(format!("t{i}.age"));
                    std::fs::write(&f, &b).unwrap();
                    let out = bob.run(&["import", f.to_str().unwrap()], "");
                    let code = out.status.code();
                    let in_stanza = i > stanzas_start && i < header_end;
                    let ok = code == Some(6) || (in_stanza && code == Some(3));
                    assert!(
                        ok,
                        "byte {i}: exit {code:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    std::fs::remove_file(&f).unwrap();
                }
            });
        }
    });
    assert_eq!(bob.vault_bytes(), before);
    // Truncations too.
    for len in [0, 10, header_end, bytes.len() - 1] {
        let f = bob.home().join("cut.age");
        std::fs::write(&f, &bytes[..len]).unwrap();
        refused(&bob, &f, 6, "bundle rejected");
    }
    // The untouched bundle still imports.
    bob.ok(&["import", file.to_str().unwrap()], "");
    assert_eq!(bob.ok(&["get", "t"], ""), "x\n");
}

#[test]
fn revocation_notices() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    let carol = vault("Carol");
    for (a, an, b, bn) in [
        (&alice, "alice", &bob, "bob"),
        (&carol, "carol", &bob, "bob"),
    ] {
        knows(a, bn, b);
        knows(b, an, a);
    }
    alice.add("svc/token", CANARY, &[]);
    carol.add("svc/token", "carol-secret", &[]);
    let f = share(&alice, "share.age", &["svc/token", "--to", "bob"]);
    bob.ok(&["import", f.to_str().unwrap()], "");
    // Carol shared an entry of the same name with Bob too, which he never imported.
    share(&carol, "c.age", &["svc/token", "--to", "bob"]);

    // Nobody but the original sender can revoke Bob's copy.
    let notice = share(
        &carol,
        "c-revoke.age",
        &["--revocation", "svc/token", "--to", "bob"],
    );
    refused(&bob, &notice, 6, "no entry you received from 'carol'");
    assert_eq!(bob.ok(&["get", "svc/token"], ""), format!("{CANARY}\n"));
    // A notice for an entry never shared with that contact is refused at the source.
    alice.add("other", "o", &[]);
    alice.fails(
        &["share", "--revocation", "other", "--to", "bob", "-o", "x"],
        "",
        4,
    );

    // The original sender can, after revoking her own copy (a second after sharing it, since
    // `check` compares whole-second times).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    alice.ok(&["revoke", "--yes", "svc/token", "--reason", "leaked"], "");
    let check = alice.run(&["check"], "");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(report.contains("still held by bob"), "{report}");
    let notice = share(
        &alice,
        "revoke.age",
        &["--revocation", "svc/token", "--to", "bob"],
    );
    let check = alice.run(&["check"], "");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!report.contains("still held"), "notified: {report}");
    let out = bob.ok(&["import", notice.to_str().unwrap()], "");
    assert!(out.contains("revoked svc/token"), "{out}");
    let err = bob.fails(&["get", "svc/token"], "", 5);
    assert!(err.contains("revoked"), "{err}");
    let shown = bob.ok(&["show", "--reveal", "svc/token"], "");
    assert!(
        !shown.contains(CANARY) && shown.contains("revoked by alice"),
        "{shown}"
    );
    refused(&bob, &notice, 6, "already imported");
}

#[test]
fn binary_bundles_never_go_to_a_terminal() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    alice.add("a", CANARY, &[]);
    let before = alice.vault_bytes();
    let driver = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pty_driver.py");
    let run = |extra: &[&str]| {
        let out = alice
            .cmd_for("python3")
            .arg(driver)
            .arg("--")
            .arg(env!("CARGO_BIN_EXE_jeton"))
            .args(["share", "a", "--to", "bob"])
            .args(extra)
            .output()
            .expect("run the pty driver");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = run(&[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("use -o FILE or --armor"), "{text}");
    assert_eq!(alice.vault_bytes(), before, "nothing recorded");
    let (code, text) = run(&["--armor"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("-----BEGIN AGE ENCRYPTED FILE-----"),
        "{text}"
    );
    assert!(!text.contains(CANARY));
}

#[test]
fn contact_add_never_echoes_a_secret_key() {
    let t = vault("Alice");
    let (key_file, recipient) = age_keygen(t.home(), "me.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let secret_key = key
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    let ssh_private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
    // (`--flag=VALUE`: the argument parser refuses a separate value that starts with '-'.)
    let ssh_key_flag = format!("--ssh-key={ssh_private}");
    let age_flag = format!("--age={ssh_private}");
    let before = t.vault_bytes();
    for (args, hint) in [
        (
            vec!["contact", "add", "bob", "--age", &secret_key],
            "age-keygen -y",
        ),
        (vec!["contact", "add", "bob", &secret_key], "age-keygen -y"),
        (
            vec!["contact", "add", "bob", "--ssh-key", &secret_key],
            "age-keygen -y",
        ),
        (
            vec!["contact", "add", "bob", &ssh_key_flag],
            "ssh-keygen -y",
        ),
        (vec!["contact", "add", "bob", &age_flag], "ssh-keygen -y"),
        (
            vec!["contact", "add", &secret_key, "--age", &recipient],
            "age-keygen -y",
        ),
        (
            vec!["share", "x", "--to", &secret_key, "-o", "x"],
            "age-keygen -y",
        ),
        (
            vec!["backup", "--to", &secret_key, "-o", "x"],
            "age-keygen -y",
        ),
        (
            vec!["backup", "--age", &secret_key, "-o", "x"],
            "age-keygen -y",
        ),
    ] {
        let err = t.fails(&args, "", 2);
        let secret_part = &secret_key["AGE-SECRET-KEY-".len()..];
        assert!(
            !err.contains(&secret_part[..12]) && !err.contains("b3BlbnNz"),
            "{args:?} echoed the key: {err}"
        );
        assert!(
            err.contains("never be shared") && err.contains(hint),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // Junk is not echoed either.
    for args in [
        vec!["contact", "add", "bob", "--age", "age1-not-a-key-SECRETISH"],
        vec!["contact", "add", "bob", "jeton-card-v1 age1-SECRETISH AAAA"],
    ] {
        let err = t.fails(&args, "", 2);
        assert!(!err.contains("SECRETISH"), "{err}");
    }
    assert_eq!(t.vault_bytes(), before, "nothing was added");
    t.ok(&["contact", "add", "bob", "--age", &recipient], "");
}

#[test]
fn shared_entries_keep_the_senders_default_contact() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    knows(&bob, "alice", &alice);
    alice.ok(&["config", "set", "contact", "Ops <ops@example.com>"], "");
    alice.add("svc/token", CANARY, &["--scope", "read"]);
    let f = share(&alice, "s.age", &["svc/token", "--to", "bob"]);
    bob.ok(&["import", f.to_str().unwrap()], "");
    let shown = bob.ok(&["show", "svc/token"], "");
    let contact = shown.lines().find(|l| l.starts_with("contact ")).unwrap();
    assert!(contact.ends_with(" Ops <ops@example.com>"), "{shown}");
    let check = bob.run(&["check"], "");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(!report.contains("no_contact"), "{report}");
}

#[test]
fn resharing_a_rotated_token_updates_the_recipients_copy() {
    let alice = vault("Alice");
    let bob = vault("Bob");
    knows(&alice, "bob", &bob);
    knows(&bob, "alice", &alice);
    alice.add("svc/token", "first-secret", &["--scope", "read"]);
    let f = share(&alice, "1.age", &["svc/token", "--to", "bob"]);
    bob.ok(&["import", f.to_str().unwrap()], "");
    bob.ok(&["edit", "svc/token", "--add-used-by", "bob:ci"], "");
    alice.ok(&["rotate", "svc/token"], "second-secret");
    let f = share(&alice, "2.age", &["svc/token", "--to", "bob"]);
    let dry = bob.ok(&["import", "--dry-run", f.to_str().unwrap()], "");
    assert!(dry.contains("would update svc/token"), "{dry}");
    let out = bob.ok(&["import", f.to_str().unwrap()], "");
    assert!(out.contains("updated svc/token"), "{out}");
    assert_eq!(bob.ok(&["get", "svc/token"], ""), "second-secret\n");
    let history = bob.ok(&["history", "--reveal", "svc/token"], "");
    assert!(history.contains("first-secret"), "{history}");
    let b = json(&bob.ok(&["--json", "show", "svc/token"], ""));
    assert_eq!(b["received_from"]["from"], "alice");
    assert!(
        b["used_by"].as_array().unwrap().contains(&"bob:ci".into()),
        "{b}"
    );
    let log = bob.ok(&["log", "svc/token"], "");
    assert!(log.contains("updated: 'svc/token' from alice"), "{log}");
}
