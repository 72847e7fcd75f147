//! Team vaults in tests: a bare git remote, members who joined it, and a member's modified
//! client: it signs with the member's own key (taken from their vault file with the test
//! passphrase) but writes whatever it likes to the remote.
#![allow(dead_code)]

use crate::support::{PASS, TestVault, git, git_ok};
use jeton::team::members::{Body, Change, ChangeId, Signed};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn bare_repo() -> (tempfile::TempDir, String) {
    let dir = tempfile::Builder::new()
        .prefix("jeton-team-remote")
        .tempdir()
        .expect("tempdir");
    let out = git(dir.path(), &["init", "-q", "--bare", "remote.git"]);
    assert!(out.status.success());
    let url = dir.path().join("remote.git").display().to_string();
    (dir, url)
}

/// A work tree of the remote's `jeton` branch, as anyone with push access has: (dir, tree).
pub fn checkout(url: &str) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    git_ok(work.path(), &["clone", "-q", "-b", "jeton", url, "w"]);
    let w = work.path().join("w");
    (work, w)
}

/// Commits whatever changed in `w` (if anything did) and pushes it.
pub fn push(w: &Path, message: &str) {
    git_ok(w, &["add", "-A"]);
    let _ = git(
        w,
        &[
            "-c",
            "user.name=x",
            "-c",
            "user.email=x@x",
            "commit",
            "-qm",
            message,
        ],
    );
    git_ok(w, &["push", "-q", "origin", "jeton"]);
}

/// Writes `files` (path under the remote's tree, bytes) in a fresh checkout and pushes them.
pub fn plant(url: &str, files: &[(String, Vec<u8>)]) {
    let (_work, w) = checkout(url);
    for (p, b) in files {
        let path = w.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b).unwrap();
    }
    push(&w, "plant");
}

pub fn card(t: &TestVault) -> String {
    t.ok(&["-q", "identity"], "").trim().to_owned()
}

/// `a` and `b` (each a vault and its owner's name) hold each other's cards.
pub fn introduce(a: (&TestVault, &str), b: (&TestVault, &str)) {
    a.0.ok(&["contact", "add", b.1, &card(b.0)], "");
    b.0.ok(&["contact", "add", a.1, &card(a.0)], "");
}

pub struct Team {
    pub _remote: tempfile::TempDir,
    pub url: String,
    pub admin: TestVault,
    pub writer: TestVault,
    pub reader: TestVault,
}

/// An admin ("admin" in the list; "ann" to the others), a writer (wendy) and a reader
/// (rudy) who joined team `ops`.
pub fn team() -> Team {
    let (remote, url) = bare_repo();
    let admin = TestVault::new();
    let writer = TestVault::new();
    let reader = TestVault::new();
    introduce((&admin, "ann"), (&writer, "wendy"));
    introduce((&admin, "ann"), (&reader, "rudy"));
    admin.ok(&["team", "create", "ops", "--remote", &url], "");
    admin.ok(&["team", "add", "ops", "wendy"], "");
    admin.ok(&["team", "add", "ops", "rudy", "--role", "reader"], "");
    let out = writer.ok(&["team", "join", &url], "");
    assert!(out.contains("joined team ops as writer"), "{out}");
    assert!(out.contains("ann"), "{out}");
    let out = reader.ok(&["team", "join", &url], "");
    assert!(out.contains("as reader"), "{out}");
    Team {
        _remote: remote,
        url,
        admin,
        writer,
        reader,
    }
}

/// What a member's own client holds of team `team`: their keys and the list as they keep it.
pub struct Inside {
    pub keys: jeton::share::identity::Keys,
    pub team: jeton::team::Team,
}

pub fn inside(t: &TestVault, team: &str) -> Inside {
    let store = jeton::store::Store::new(t.vault_path(), std::time::Duration::from_secs(5));
    let file = store.read().unwrap();
    let pass = jeton::secret::Passphrase::new(PASS.into());
    let key = jeton::vault::Vault::unlock(&file, &pass).unwrap();
    let vault = jeton::vault::Vault::open_owned(file, key).unwrap();
    let keys = jeton::share::identity::keys(&vault).unwrap();
    let team = jeton::team::membership(&vault, team)
        .unwrap()
        .team()
        .unwrap();
    Inside { keys, team }
}

impl Inside {
    pub fn key(&self) -> [u8; 32] {
        self.keys.signing.verifying_key().to_bytes()
    }

    /// A change signed with this member's key, after `parents`, for team `team_id`.
    pub fn sign_for(&self, team_id: [u8; 16], parents: &[ChangeId], change: Change) -> Signed {
        let mut parents = parents.to_vec();
        parents.sort();
        parents.dedup();
        let body = Body {
            team: team_id,
            author: self.key(),
            parents,
            change,
        };
        Signed::sign(&body, &self.keys.signing).unwrap()
    }

    /// A change signed with this member's key after everything they know.
    pub fn sign(&self, change: Change) -> Signed {
        self.sign_for(self.team.id, self.team.heads(), change)
    }

    /// The member-list file this member's client would publish with `extra` changes: every
    /// change they keep and those, encrypted to every current member.
    pub fn list_with(&self, extra: &[Signed]) -> (String, Vec<u8>) {
        let mut changes = self.team.signed();
        changes.extend_from_slice(extra);
        let recipients: Vec<String> = (self.team.members.values())
            .map(|m| m.card.age_recipient.clone())
            .collect();
        (
            format!("members/{}", jeton::team::list_name(&self.key())),
            seal(&list_plaintext(&changes, &self.team.legacy()), &recipients),
        )
    }
}

/// The plaintext of a member-list file (docs/FORMAT.md, "Member list").
pub fn list_plaintext(changes: &[Signed], legacy: &[jeton::team::legacy::Signed]) -> Vec<u8> {
    let mut p = jeton::team::LIST_MAGIC.to_vec();
    p.extend(postcard::to_stdvec(&(changes, legacy)).unwrap());
    p
}

/// `plain` age-encrypted to `recipients` (age X25519 recipient strings).
pub fn seal(plain: &[u8], recipients: &[String]) -> Vec<u8> {
    let rs: Vec<age::x25519::Recipient> = recipients.iter().map(|r| r.parse().unwrap()).collect();
    let e = age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = e.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

/// `jeton --json team list TEAM` as JSON.
pub fn members(t: &TestVault, team: &str) -> serde_json::Value {
    serde_json::from_str(&t.ok(&["--json", "team", "list", team], "")).unwrap()
}

/// The role `team list` gives `name` (`None`: not listed).
pub fn role(t: &TestVault, team: &str, name: &str) -> Option<String> {
    members(t, team)[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .map(|m| m["role"].as_str().unwrap().to_owned())
}

/// Runs `jeton sync` and asserts success; returns stderr.
pub fn sync_ok(t: &TestVault) -> String {
    let out = t.run(&["sync"], "");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sync failed: {err}");
    err
}
