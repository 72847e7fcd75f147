//! Frozen team vectors (tests/data/README.md). `team-v1/`: a team made by a jeton of the first
//! member-list format (personal vaults, team vaults, the remote folder), which this version
//! reads as before and carries over on the admin's next change. `team-v2/`: a member list of
//! the current format, read by a second reader written only from docs/FORMAT.md ("Member
//! list"): the file, every change's bytes, signature and id.

mod support;
#[path = "support/team.rs"]
mod team_support;
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use support::*;
use team_support::*;

fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// `who`'s personal vault and copy of team `ops` from `team-v1/`, syncing with `remote`.
fn install(who: &str, remote: &Path) -> TestVault {
    let t = TestVault::empty();
    let share = t.home().join(".local/share/jeton");
    let sync = share.join("vault.jeton.teams/ops.jeton.sync");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sync)
        .unwrap();
    let from = data("team-v1").join(who);
    std::fs::copy(from.join("vault.jeton"), share.join("vault.jeton")).unwrap();
    std::fs::copy(
        from.join("ops.jeton"),
        share.join("vault.jeton.teams/ops.jeton"),
    )
    .unwrap();
    let id: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data("team-v1/remote/jeton-sync.json")).unwrap())
            .unwrap();
    let config = serde_json::json!({"remote": {"dir": remote}, "vault": id["vault"]});
    std::fs::write(sync.join("config.json"), config.to_string()).unwrap();
    t
}

#[test]
fn a_team_of_the_first_format_keeps_working_and_its_next_admin_change_carries_it_over() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    copy_dir(&data("team-v1/remote"), &remote);
    let (ann, bob, cid) = (
        install("ann", &remote),
        install("bob", &remote),
        install("cid", &remote),
    );
    // Read as before: roles, the removal, the epoch, the entries.
    let list = members(&ann, "ops");
    assert_eq!(list[0]["epoch"], 1, "{list}");
    assert_eq!(role(&ann, "ops", "bob").as_deref(), Some("writer"));
    assert_eq!(role(&ann, "ops", "cid").as_deref(), Some("removed"));
    sync_ok(&ann);
    sync_ok(&bob);
    assert_eq!(bob.ok(&["get", "ops:after"], "").trim(), "tok-v1-after");
    assert_eq!(ann.ok(&["get", "ops:db"], "").trim(), "tok-v1-db");
    let _ = cid.run(&["sync"], "");
    cid.fails(&["get", "ops:after"], "", 4);
    assert!(
        inside(&ann, "ops").team.root.is_none(),
        "still the first format"
    );

    // The admin's next change carries the list over; the others follow on their next sync.
    let dan = TestVault::new();
    introduce((&ann, "ann"), (&dan, "dan"));
    let out = ann.ok(&["team", "add", "ops", "dan", "--role", "reader"], "");
    assert!(
        out.contains(
            "dan is now a reader of team ops; the member list is now in the current format"
        ),
        "{out}"
    );
    let carried = inside(&ann, "ops").team;
    assert!(carried.root.is_some());
    assert_eq!(carried.epoch(), 1);
    sync_ok(&bob);
    assert_eq!(inside(&bob, "ops").team.root, carried.root);
    assert_eq!(role(&bob, "ops", "dan").as_deref(), Some("reader"));
    assert_eq!(role(&bob, "ops", "cid").as_deref(), Some("removed"));
    let out = dan.run(&["team", "join", "--dir", remote.to_str().unwrap()], "");
    let (said, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(said.contains("joined team ops as reader"), "{said} {err}");
    // Lists the others sealed before dan was added are not worth a warning to a new member.
    assert!(!err.contains("warning"), "{err}");
    sync_ok(&dan);
    assert_eq!(dan.ok(&["get", "ops:after"], "").trim(), "tok-v1-after");
    // Once is enough.
    let out = ann.ok(&["team", "upgrade", "ops"], "");
    assert!(out.contains("already in the current format"), "{out}");
}

/// A LEB128 varint, as postcard writes lengths, counts and enum tags.
fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
    }
    panic!("varint too long")
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> &'a [u8] {
    let out = &b[*at..*at + n];
    *at += n;
    out
}

fn bytes<'a>(b: &'a [u8], at: &mut usize) -> &'a [u8] {
    let n = varint(b, at) as usize;
    take(b, at, n)
}

fn string(b: &[u8], at: &mut usize) -> String {
    String::from_utf8(bytes(b, at).to_vec()).unwrap()
}

/// A card: name, age recipient, signing key.
fn card(b: &[u8], at: &mut usize) -> (String, [u8; 32]) {
    let name = string(b, at);
    assert!(string(b, at).starts_with("age1"));
    (name, take(b, at, 32).try_into().unwrap())
}

/// One change's body, as FORMAT.md lays it out: what it does, in words.
fn body(b: &[u8], team: &mut Option<[u8; 16]>) -> ([u8; 32], Vec<[u8; 32]>, String) {
    let at = &mut 0;
    let id: [u8; 16] = take(b, at, 16).try_into().unwrap();
    assert_eq!(*team.get_or_insert(id), id, "one team");
    let author: [u8; 32] = take(b, at, 32).try_into().unwrap();
    let parents = (0..varint(b, at))
        .map(|_| take(b, at, 32).try_into().unwrap())
        .collect();
    let what = match varint(b, at) {
        0 => {
            let name = string(b, at);
            let (admin, key) = card(b, at);
            assert_eq!(key, author, "the creator signs the creation");
            assert_eq!(bytes(b, at).len(), 32);
            format!("create {name} by {admin}")
        }
        1 => {
            let (name, _) = card(b, at);
            let role = ["reader", "writer", "admin"][varint(b, at) as usize];
            let rekey = match take(b, at, 1)[0] {
                0 => "",
                1 => {
                    assert_eq!(bytes(b, at).len(), 32);
                    " with a new key"
                }
                t => panic!("option tag {t}"),
            };
            format!("add {name} as {role}{rekey}")
        }
        2 => {
            take(b, at, 32);
            assert_eq!(bytes(b, at).len(), 32);
            "remove".into()
        }
        t => panic!("change tag {t}"),
    };
    assert_eq!(*at, b.len(), "nothing after the change");
    (author, parents, what)
}

#[test]
fn a_member_list_of_the_current_format_reads_as_format_md_describes_it() {
    // The admin's identity, from her vault (test passphrase), opens her list file.
    let tmp = TestVault::empty();
    let share = tmp.home().join(".local/share/jeton");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::copy(data("team-v2/ann/vault.jeton"), share.join("vault.jeton")).unwrap();
    let ann = inside(&tmp, "ops");
    let file =
        std::fs::read(data("team-v2/members").join(jeton::team::list_name(&ann.key()))).unwrap();
    let decryptor = age::Decryptor::new(&file[..]).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut decryptor
            .decrypt(std::iter::once(&ann.keys.age as &dyn age::Identity))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    assert_eq!(&plain[..8], b"JTNLIST2");
    let at = &mut 8;
    let mut team = None;
    let mut ids: Vec<[u8; 32]> = Vec::new();
    let mut said = Vec::new();
    for _ in 0..varint(&plain, at) {
        let b = bytes(&plain, at).to_vec();
        let sig = bytes(&plain, at).to_vec();
        let (author, parents, what) = body(&b, &mut team);
        let mut message = b"jeton/v2/team-change".to_vec();
        message.extend_from_slice(&b);
        VerifyingKey::from_bytes(&author)
            .unwrap()
            .verify_strict(&message, &Signature::from_slice(&sig).unwrap())
            .unwrap();
        let mut h = Sha256::new();
        h.update(b"jeton/v2/team-change-id");
        h.update(&b);
        h.update(&sig);
        ids.push(h.finalize().into());
        assert!(parents.windows(2).all(|w| w[0] < w[1]), "parents sorted");
        said.push((parents, what));
    }
    assert_eq!(varint(&plain, at), 0, "no first-format change");
    assert_eq!(*at, plain.len());
    // Every parent is a change of the list.
    for (parents, _) in &said {
        assert!(parents.iter().all(|p| ids.contains(p)));
    }
    let mut what: Vec<&str> = said.iter().map(|(_, w)| w.as_str()).collect();
    what.sort();
    assert_eq!(
        what,
        [
            "add bob as writer",
            "add cid as admin",
            "add cid as writer with a new key",
            "add dan as reader",
            "create ops by admin",
            "remove",
        ]
    );
    // And jeton computes from it what `team list` showed when it was made.
    let jeton::team::Opened::List { changes, legacy } =
        jeton::team::open_list(&file, &ann.keys.age)
    else {
        panic!("jeton reads the vector")
    };
    let known = jeton::team::Known {
        received: changes,
        legacy,
        ..jeton::team::Known::default()
    };
    let t = &jeton::team::Team::compute(team.unwrap(), known).unwrap();
    assert!(t.evidence.is_empty(), "{:?}", t.evidence);
    assert_eq!(t.epoch(), 2);
    let roles: Vec<(String, &str)> = (t.members.values())
        .map(|m| (m.card.name.clone(), m.role.label()))
        .collect();
    assert_eq!(roles.len(), 3);
    for (name, role) in [("admin", "admin"), ("bob", "writer"), ("cid", "writer")] {
        assert!(roles.contains(&(name.into(), role)), "{roles:?}");
    }
    assert!(t.removed.values().any(|r| r.card.name == "dan"));
}
