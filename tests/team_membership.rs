//! A team's member list against its own members: a reader, a writer or a removed admin whose
//! modified client signs with their own key but writes what it likes to the remote. Each test
//! is one attack, black-box: the real binary for everyone else, the real `git`, real files.

#[path = "support/agent.rs"]
mod agent_support;
#[path = "support/hostile.rs"]
mod hostile;
mod support;
#[path = "support/team.rs"]
mod team_support;
use jeton::team::members::{Change, EpochKey, Role};
use std::time::{Duration, Instant};
use support::*;
use team_support::*;

fn add(card: &jeton::team::Card, role: Role) -> Change {
    Change::Add {
        member: card.clone(),
        role,
        key: None,
    }
}

fn remove(key: [u8; 32]) -> Change {
    Change::Remove {
        signing_key: key,
        key: EpochKey::generate().unwrap(),
    }
}

fn card_of(i: &Inside, key: &[u8; 32]) -> jeton::team::Card {
    i.team.members[key].card.clone()
}

/// The admin adds an entry after a removal and syncs; the reader reads it, the removed
/// writer cannot (whatever their own client then believes of the list).
fn removal_holds(t: &Team) {
    t.admin.add("ops:after", "tok-after-removal", &[]);
    sync_ok(&t.admin);
    sync_ok(&t.reader);
    assert_eq!(
        t.reader.ok(&["get", "ops:after"], "").trim(),
        "tok-after-removal"
    );
    let _ = t.writer.run(&["sync"], "");
    t.writer.fails(&["get", "ops:after"], "", 4);
}

#[test]
fn a_readers_changes_are_ignored_named_once_and_the_admin_still_removes() {
    let t = team();
    let rudy = inside(&t.reader, "ops");
    let ann = inside(&t.admin, "ops");
    // What the audit's huge counter did, without counters: the reader signs, after every
    // change they know, "rudy is admin" and "remove the admin".
    let promote = rudy.sign(add(&card_of(&rudy, &rudy.key()), Role::Admin));
    let coup = rudy.sign_for(rudy.team.id, &[promote.id()], remove(ann.key()));
    plant(&t.url, &[rudy.list_with(&[promote, coup])]);
    let err = sync_ok(&t.admin);
    assert!(
        err.contains("by rudy (not an admin in the list they follow): ignored"),
        "{err}"
    );
    assert_eq!(role(&t.admin, "ops", "rudy").as_deref(), Some("reader"));
    assert_eq!(role(&t.admin, "ops", "admin").as_deref(), Some("admin"));
    let again = sync_ok(&t.admin);
    assert!(!again.contains("rudy"), "reported once: {again}");
    // The admin's changes still apply.
    let out = t.admin.ok(&["team", "remove", "ops", "wendy"], "");
    assert!(
        out.contains("removed from team ops; new key epoch 1"),
        "{out}"
    );
    removal_holds(&t);
}

#[test]
fn a_change_withheld_by_a_removed_admin_does_nothing_when_released() {
    let t = team();
    t.admin
        .ok(&["team", "add", "ops", "wendy", "--role", "admin"], "");
    sync_ok(&t.writer);
    let wendy = inside(&t.writer, "ops");
    let ann = inside(&t.admin, "ops");
    assert_eq!(wendy.team.role_of(&wendy.key()), Some(Role::Admin));
    // While an admin, wendy signs "remove ann" and keeps it.
    let withheld = wendy.sign(remove(ann.key()));
    let out = t.admin.ok(&["team", "remove", "ops", "wendy"], "");
    assert!(out.contains("new key epoch 1"), "{out}");
    // Released after her removal: void, for the admin and for the reader.
    plant(&t.url, &[wendy.list_with(&[withheld])]);
    let err = sync_ok(&t.admin);
    assert!(err.contains("wendy") && err.contains("removal"), "{err}");
    for v in [&t.admin, &t.reader] {
        sync_ok(v);
        assert_eq!(role(v, "ops", "admin").as_deref(), Some("admin"));
        assert_eq!(role(v, "ops", "wendy").as_deref(), Some("removed"));
    }
    removal_holds(&t);
}

#[test]
fn equivocating_pairs_from_a_reader_and_an_admin_leave_every_member_in_step() {
    let t = team();
    t.admin
        .ok(&["team", "add", "ops", "wendy", "--role", "admin"], "");
    for v in [&t.writer, &t.reader] {
        sync_ok(v);
    }
    let rudy = inside(&t.reader, "ops");
    let wendy = inside(&t.writer, "ops");
    let rudy_card = card_of(&rudy, &rudy.key());
    // Two different changes with the same parents, from each.
    let from_reader = [
        rudy.sign(add(&rudy_card, Role::Admin)),
        rudy.sign(add(&rudy_card, Role::Writer)),
    ];
    let from_admin = [
        wendy.sign(add(&rudy_card, Role::Writer)),
        wendy.sign(add(&rudy_card, Role::Admin)),
    ];
    plant(
        &t.url,
        &[rudy.list_with(&from_reader), wendy.list_with(&from_admin)],
    );
    // Nobody stops; after two rounds each, every member computes the same list.
    let err = sync_ok(&t.admin);
    assert!(err.contains("by rudy"), "{err}");
    for _ in 0..2 {
        for v in [&t.admin, &t.writer, &t.reader] {
            sync_ok(v);
        }
    }
    let view = |v: &TestVault| {
        let list = members(v, "ops");
        let mut roles: Vec<(String, String)> = (list[0]["members"].as_array().unwrap().iter())
            .map(|m| (m["name"].to_string(), m["role"].to_string()))
            .collect();
        roles.sort();
        (roles, list[0]["epoch"].clone())
    };
    let admin = view(&t.admin);
    assert_eq!(view(&t.writer), admin);
    assert_eq!(view(&t.reader), admin);
    let rudy_role = role(&t.admin, "ops", "rudy").unwrap();
    assert!(rudy_role == "writer" || rudy_role == "admin", "{rudy_role}");
}

#[test]
fn a_bad_signature_or_another_teams_change_is_named_once_and_stops_nothing() {
    let t = team();
    t.admin.add("ops:db", "tok-db", &[]);
    sync_ok(&t.admin);
    let wendy = inside(&t.writer, "ops");
    let ann = inside(&t.admin, "ops");
    let wendy_card = card_of(&wendy, &wendy.key());
    let mut forged = wendy.sign(add(&wendy_card, Role::Admin));
    forged.signature[7] ^= 1;
    // One claimed by the admin (a change by a current admin that cannot be checked).
    let mut claimed = ann.sign(remove(wendy.key()));
    claimed.signature[9] ^= 1;
    let elsewhere = wendy.sign_for([7; 16], wendy.team.heads(), add(&wendy_card, Role::Admin));
    plant(&t.url, &[wendy.list_with(&[forged, claimed, elsewhere])]);
    for v in [&t.admin, &t.reader] {
        let err = sync_ok(v);
        assert!(
            err.contains("claimed by wendy fails its signature"),
            "{err}"
        );
        assert!(err.contains("by admin admin fails its signature"), "{err}");
        assert!(err.contains("another team by wendy"), "{err}");
        let again = sync_ok(v);
        assert!(!again.contains("signature"), "once: {again}");
    }
    assert_eq!(t.reader.ok(&["get", "ops:db"], "").trim(), "tok-db");
    assert_eq!(role(&t.reader, "ops", "wendy").as_deref(), Some("writer"));
}

#[test]
fn a_huge_age_header_in_members_is_refused_unparsed_even_by_the_agent() {
    let t = team();
    t.admin.add("mine", "tok-personal", &[]);
    let _agent = agent_support::unlock(&t.admin, &[]);
    // About 3 MiB of stanzas: age's parser would take minutes; jeton reads 16 KiB of it.
    let bomb = hostile::hostile_age_file(30_000, false);
    assert!(bomb.len() < 4 << 20);
    let name = format!("members/{}.age", "ab".repeat(16));
    plant(&t.url, &[(name, bomb)]);
    let started = Instant::now();
    let out = agent_support::run_no_pass(&t.admin, &["sync"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("age header"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let out = agent_support::run_no_pass(&t.admin, &["get", "mine"], "");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "tok-personal");
    // The other members sync on too.
    sync_ok(&t.writer);
}

#[test]
fn a_replica_sealed_under_a_foreign_key_is_evidence_against_its_writer() {
    let t = team();
    t.admin.add("ops:db", "tok-db", &[]);
    sync_ok(&t.admin);
    t.writer.add("ops:web", "tok-web", &[]);
    sync_ok(&t.writer);
    // Wendy's client replaces her replica with one under a key of her own.
    let wendy = inside(&t.writer, "ops");
    let (_work, w) = checkout(&t.url);
    let hers = (std::fs::read_dir(w.join("replicas")).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap()[8..40] == wendy.key())
        .expect("wendy's replica");
    let now = jeton::time::now();
    let key = jeton::secret::Key::generate().unwrap();
    let mut v = jeton::vault::Vault::create_keyed(wendy.team.id, key, now).unwrap();
    let replica = jeton::sync::round::Incoming {
        name: hers.file_name().unwrap().to_string_lossy().into_owned(),
        bytes: v.seal(0).unwrap(),
    };
    let signed = jeton::team::sign_replica(&wendy.team.id, replica, &wendy.keys.signing);
    std::fs::write(&hers, signed.bytes).unwrap();
    push(&w, "foreign key");
    for v in [&t.reader, &t.admin] {
        let err = sync_ok(v);
        assert!(err.contains("by wendy: it is under a key"), "{err}");
        assert_eq!(v.ok(&["get", "ops:db"], "").trim(), "tok-db");
        let again = sync_ok(v);
        assert!(!again.contains("wendy"), "once: {again}");
    }
}

#[test]
fn team_remove_on_a_list_an_attacker_tried_to_freeze_still_removes() {
    let t = team();
    let wendy = inside(&t.writer, "ops");
    let ann = inside(&t.admin, "ops");
    let wendy_card = card_of(&wendy, &wendy.key());
    // Everything the audit found to stop the list, in wendy's file and beside it.
    let pair = [
        wendy.sign(add(&wendy_card, Role::Admin)),
        wendy.sign(remove(ann.key())),
    ];
    let mut forged = wendy.sign(add(&wendy_card, Role::Admin));
    forged.signature[1] ^= 1;
    let elsewhere = wendy.sign_for([3; 16], wendy.team.heads(), remove(ann.key()));
    let mut files = vec![wendy.list_with(&[&pair[..], &[forged, elsewhere]].concat())];
    files.push((
        format!("members/{}.age", "cd".repeat(16)),
        hostile::hostile_age_file(5_000, false),
    ));
    plant(&t.url, &files);
    sync_ok(&t.admin);
    let out = t.admin.run(&["team", "remove", "ops", "wendy"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("wendy removed from team ops; new key epoch 1"),
        "{text}"
    );
    assert_eq!(role(&t.admin, "ops", "wendy").as_deref(), Some("removed"));
    removal_holds(&t);
}

#[test]
fn a_removed_members_replica_is_reported_once_not_on_every_sync() {
    let t = team();
    t.writer.add("ops:db", "tok-db", &[]);
    sync_ok(&t.writer);
    // `team remove` syncs the team at once: the admin is told there.
    let out = t.admin.run(&["team", "remove", "ops", "wendy"], "");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("wendy (removed from the team)"), "{said}");
    let first = sync_ok(&t.reader);
    assert!(first.contains("wendy (removed from the team)"), "{first}");
    for _ in 0..2 {
        for v in [&t.reader, &t.admin] {
            let later = sync_ok(v);
            assert!(!later.contains("wendy"), "{later}");
        }
    }
}

#[test]
fn names_from_the_remote_or_another_member_reach_the_terminal_escaped() {
    let t = team();
    // A writer's modified client writes an entry with a hostile name into the team vault.
    let hostile = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}";
    {
        let mut p = t.writer.vault_path().into_os_string();
        p.push(".teams/ops.jeton");
        let store = jeton::store::Store::new(p.into(), Duration::from_secs(5));
        let lock = store.lock().unwrap();
        let file = store.read().unwrap();
        let vault = jeton::store::Store::new(t.writer.vault_path(), Duration::from_secs(5));
        let personal = vault.read().unwrap();
        let key =
            jeton::vault::Vault::unlock(&personal, &jeton::secret::Passphrase::new(PASS.into()))
                .unwrap();
        let personal = jeton::vault::Vault::open_owned(personal, key).unwrap();
        let m = jeton::team::membership(&personal, "ops").unwrap();
        let mut tv = jeton::team::open_vault(file.to_bytes(), &m).unwrap();
        let now = jeton::time::now();
        let mut e = jeton::entry::Entry::blank([0x42; 16], hostile.into(), now);
        e.secret = Some(jeton::secret::Token::new("tok-hostile".into()));
        tv.payload.entries.insert(Box::new(e));
        let bytes = tv.seal(0).unwrap();
        store
            .replace(&bytes, &lock, jeton::store::Previous::Keep)
            .unwrap();
    }
    sync_ok(&t.writer);
    sync_ok(&t.admin);
    let out = t.admin.run(&["check"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ops:evil\\u{1b}[2J"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    // A remote file name in a team sync error: a "replica" that is a folder.
    plant(
        &t.url,
        &[(format!("replicas/x{hostile}.jeton/inside"), b"x".to_vec())],
    );
    let out = t.reader.run(&["sync"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jeton: team ops: "), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
}
