//! Unit tests of the member list and the team's files.

use super::files::{Opened, admit_replicas, open_list, seal_list, sign_replica};
use super::legacy;
use super::members::{Body, Card, Change, EpochKey, Role, Signed};
use super::resolve::{Known, Team};
use crate::share::hex;
use crate::sync::round::Incoming;
use ed25519_dalek::SigningKey;

struct Person {
    signing: SigningKey,
    age: age::x25519::Identity,
    name: &'static str,
}

impl Person {
    fn new(name: &'static str) -> Person {
        Person {
            signing: SigningKey::from_bytes(&crate::random::random_id::<32>().unwrap()),
            age: age::x25519::Identity::generate(),
            name,
        }
    }
    fn card(&self) -> Card {
        Card {
            name: self.name.into(),
            age_recipient: self.age.to_public().to_string(),
            signing_key: self.key(),
        }
    }
    fn key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }
    /// Signs what a modified client would: any change, after any parents.
    fn sign(&self, team: &Team, parents: Vec<[u8; 32]>, change: Change) -> Signed {
        let mut parents = parents;
        parents.sort();
        parents.dedup();
        let body = Body {
            team: team.id,
            author: self.key(),
            parents,
            change,
        };
        Signed::sign(&body, &self.signing).unwrap()
    }
}

/// The list `team`'s member would compute from `changes` received (in this order).
fn read(team: &Team, changes: Vec<Signed>) -> Team {
    let known = Known {
        root: team.root,
        checked: Vec::new(),
        received: changes,
        legacy: team.legacy(),
    };
    Team::compute(team.id, known).unwrap()
}

fn add(p: &Person, role: Role) -> Change {
    Change::Add {
        member: p.card(),
        role,
        key: None,
    }
}

fn remove(p: &Person) -> Change {
    Change::Remove {
        signing_key: p.key(),
        key: EpochKey::generate().unwrap(),
    }
}

#[test]
fn an_admin_adds_and_removes_and_the_removed_never_get_the_new_key() {
    let (ann, bob) = (Person::new("ann"), Person::new("bob"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Writer, &ann.signing).unwrap();
    assert_eq!(team.role_of(&bob.key()), Some(Role::Writer));
    // A writer cannot change the list.
    let err = team.add(bob.card(), Role::Admin, &bob.signing).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let old = team.current_key().unwrap();
    team.remove(&bob.key(), &ann.signing).unwrap();
    assert_eq!(team.role_of(&bob.key()), None);
    assert_eq!(team.epoch(), 1);
    assert_ne!(
        team.current_key().unwrap().expose_secret(),
        old.expose_secret()
    );
    // Read back from the published changes, in any order: the same list.
    let mut all = team.signed();
    all.reverse();
    let again = read(&team, all);
    assert_eq!(again.members, team.members);
    assert_eq!(again.keys, team.keys);
    assert!(again.evidence.is_empty(), "{:?}", again.evidence);
}

#[test]
fn concurrent_additions_by_two_admins_both_survive_in_any_order() {
    let (ann, cid, xia, yan) = (
        Person::new("ann"),
        Person::new("cid"),
        Person::new("xia"),
        Person::new("yan"),
    );
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(cid.card(), Role::Admin, &ann.signing).unwrap();
    let (mut a, mut c) = (team.clone(), team.clone());
    a.add(xia.card(), Role::Reader, &ann.signing).unwrap();
    c.add(yan.card(), Role::Writer, &cid.signing).unwrap();
    let one = read(&team, [a.signed(), c.signed()].concat());
    let two = read(&team, [c.signed(), a.signed()].concat());
    for t in [&one, &two] {
        assert_eq!(t.role_of(&xia.key()), Some(Role::Reader));
        assert_eq!(t.role_of(&yan.key()), Some(Role::Writer));
    }
    assert_eq!(one.members, two.members);
    assert_eq!(one.heads(), two.heads());
    assert_eq!(one.heads().len(), 2, "two concurrent heads");
}

#[test]
fn a_readers_changes_do_nothing_and_later_admin_changes_still_apply() {
    let (ann, rae, eve) = (Person::new("ann"), Person::new("rae"), Person::new("eve"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(rae.card(), Role::Reader, &ann.signing).unwrap();
    // The reader makes herself admin, and adds someone, on top of everything.
    let heads = team.heads().to_vec();
    let promote = rae.sign(&team, heads, add(&rae, Role::Admin));
    let invite = rae.sign(&team, vec![promote.id()], add(&eve, Role::Admin));
    let mut all = team.signed();
    all.extend([promote, invite]);
    let mut seen = read(&team, all.clone());
    assert_eq!(seen.role_of(&rae.key()), Some(Role::Reader));
    assert_eq!(seen.role_of(&eve.key()), None);
    assert!(
        seen.evidence
            .iter()
            .any(|e| e.text.contains("rae") && e.text.contains("not an admin")),
        "{:?}",
        seen.evidence
    );
    // The reader's changes are not kept or published by others.
    assert_eq!(seen.signed().len(), team.signed().len());
    // The admin's next change (after the reader's, which it does not name) applies.
    seen.remove(&rae.key(), &ann.signing).unwrap();
    let after = read(&team, [all, seen.signed()].concat());
    assert_eq!(after.role_of(&rae.key()), None);
    assert_eq!(after.epoch(), 1);
}

#[test]
fn a_change_withheld_by_a_removed_admin_does_nothing_when_released() {
    let (ann, bob, eve) = (Person::new("ann"), Person::new("bob"), Person::new("eve"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Admin, &ann.signing).unwrap();
    // While an admin, bob signs changes and keeps them: "remove ann", "add eve".
    let heads = team.heads().to_vec();
    let coup = bob.sign(&team, heads.clone(), remove(&ann));
    let friend = bob.sign(&team, vec![coup.id()], add(&eve, Role::Admin));
    let before = team.clone();
    team.remove(&bob.key(), &ann.signing).unwrap();
    let epoch = team.epoch();
    // Released after the removal, in every order: void.
    for all in [
        [team.signed(), vec![coup.clone(), friend.clone()]].concat(),
        [vec![friend.clone(), coup.clone()], team.signed()].concat(),
    ] {
        let t = read(&before, all);
        assert_eq!(t.role_of(&ann.key()), Some(Role::Admin));
        assert_eq!(t.role_of(&bob.key()), None);
        assert_eq!(t.role_of(&eve.key()), None);
        assert_eq!(t.epoch(), epoch);
        assert_eq!(
            t.current_key().unwrap().expose_secret(),
            team.current_key().unwrap().expose_secret()
        );
        assert!(
            t.evidence
                .iter()
                .any(|e| e.text.contains("bob") && e.text.contains("removal")),
            "{:?}",
            t.evidence
        );
    }
    // A change the removed admin signs after seeing the removal: not an admin there.
    let late = bob.sign(&team, team.heads().to_vec(), add(&eve, Role::Admin));
    let t = read(&before, [team.signed(), vec![late]].concat());
    assert_eq!(t.role_of(&eve.key()), None);
}

#[test]
fn two_admins_removing_each_other_at_once_leave_the_senior_one() {
    let (ann, bob, cid) = (Person::new("ann"), Person::new("bob"), Person::new("cid"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Admin, &ann.signing).unwrap();
    team.add(cid.card(), Role::Admin, &ann.signing).unwrap();
    // bob (made admin before cid) and cid remove each other concurrently.
    let (mut b, mut c) = (team.clone(), team.clone());
    b.remove(&cid.key(), &bob.signing).unwrap();
    c.remove(&bob.key(), &cid.signing).unwrap();
    for all in [
        [b.signed(), c.signed()].concat(),
        [c.signed(), b.signed()].concat(),
    ] {
        let t = read(&team, all);
        assert_eq!(t.role_of(&bob.key()), Some(Role::Admin), "the senior stays");
        assert_eq!(t.role_of(&cid.key()), None);
        assert_eq!(t.role_of(&ann.key()), Some(Role::Admin));
        assert_eq!(
            t.current_key().unwrap().expose_secret(),
            b.current_key().unwrap().expose_secret(),
            "the key cid never saw"
        );
    }
    // Whoever removes the creator concurrently with being removed by them loses too.
    let (mut a, mut c) = (team.clone(), team.clone());
    a.remove(&cid.key(), &ann.signing).unwrap();
    c.remove(&ann.key(), &cid.signing).unwrap();
    let t = read(&team, [c.signed(), a.signed()].concat());
    assert_eq!(t.role_of(&ann.key()), Some(Role::Admin));
    assert_eq!(t.role_of(&cid.key()), None);
}

#[test]
fn an_admin_demoted_concurrently_with_their_change_loses_the_change() {
    let (ann, bob, xia) = (Person::new("ann"), Person::new("bob"), Person::new("xia"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Admin, &ann.signing).unwrap();
    let (mut a, mut b) = (team.clone(), team.clone());
    a.add(bob.card(), Role::Writer, &ann.signing).unwrap();
    b.add(xia.card(), Role::Writer, &bob.signing).unwrap();
    for all in [
        [a.signed(), b.signed()].concat(),
        [b.signed(), a.signed()].concat(),
    ] {
        let t = read(&team, all);
        assert_eq!(t.role_of(&bob.key()), Some(Role::Writer));
        assert_eq!(
            t.role_of(&xia.key()),
            None,
            "bob's concurrent change is void"
        );
    }
}

#[test]
fn concurrent_removals_leave_a_key_neither_removed_member_had() {
    let (ann, cid, xia, yan) = (
        Person::new("ann"),
        Person::new("cid"),
        Person::new("xia"),
        Person::new("yan"),
    );
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(cid.card(), Role::Admin, &ann.signing).unwrap();
    team.add(xia.card(), Role::Writer, &ann.signing).unwrap();
    team.add(yan.card(), Role::Writer, &ann.signing).unwrap();
    let (mut a, mut c) = (team.clone(), team.clone());
    a.remove(&xia.key(), &ann.signing).unwrap();
    c.remove(&yan.key(), &cid.signing).unwrap();
    // a's view (sent to yan) holds a's key; c's view (sent to xia) holds c's key.
    let t = read(&team, [a.signed(), c.signed()].concat());
    assert_eq!(t.role_of(&xia.key()), None);
    assert_eq!(t.role_of(&yan.key()), None);
    let now = t.current_key().unwrap();
    for seen in [&a, &c] {
        for k in seen.keys.values() {
            assert_ne!(k.key().expose_secret(), now.expose_secret());
        }
    }
    assert_eq!(t.epoch(), 3, "two removals and the key made of both");
    let u = read(&team, [c.signed(), a.signed()].concat());
    assert_eq!(
        u.current_key().unwrap().expose_secret(),
        now.expose_secret()
    );
}

#[test]
fn what_fails_its_checks_is_named_and_never_stops_the_list() {
    let (ann, bob, eve) = (Person::new("ann"), Person::new("bob"), Person::new("eve"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Writer, &ann.signing).unwrap();
    let heads = team.heads().to_vec();
    let mut forged = ann.sign(&team, heads.clone(), add(&eve, Role::Admin));
    forged.signature[5] ^= 1;
    let (other, _) = Team::create("dev", bob.card(), &bob.signing).unwrap();
    let elsewhere = bob.sign(&other, heads.clone(), add(&eve, Role::Admin));
    let garbage = Signed {
        body: vec![0xff; 40],
        signature: vec![0; 64],
    };
    // Two different changes with the same parents by a writer: both ignored, named once.
    let twice = [
        bob.sign(&team, heads.clone(), add(&eve, Role::Reader)),
        bob.sign(&team, heads, add(&eve, Role::Admin)),
    ];
    let mut all = team.signed();
    all.extend([forged, elsewhere, garbage]);
    all.extend(twice);
    let t = read(&team, all);
    assert_eq!(t.members, team.members);
    let said: Vec<&str> = t.evidence.iter().map(|e| e.text.as_str()).collect();
    let has = |a: &str, b: &str| said.iter().any(|s| s.contains(a) && s.contains(b));
    assert!(has("admin ann", "fails its signature"), "{said:?}");
    assert!(has("another team", "bob"), "{said:?}");
    assert!(has("does not decode", ""), "{said:?}");
    assert!(has("bob", "not an admin"), "{said:?}");
    assert_eq!(said.len(), 4, "{said:?}");
    // A kept list whose first change is gone is the only failure.
    let known = Known {
        root: Some([9; 32]),
        checked: team.signed(),
        ..Known::default()
    };
    assert_eq!(Team::compute(team.id, known).unwrap_err().exit_code(), 6);
}

#[test]
fn the_member_list_file_reaches_members_only_within_bounds() {
    let (ann, bob, eve) = (Person::new("ann"), Person::new("bob"), Person::new("eve"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Reader, &ann.signing).unwrap();
    let bytes = seal_list(&team).unwrap();
    let Opened::List { changes, legacy } = open_list(&bytes, &bob.age) else {
        panic!("bob reads it")
    };
    assert_eq!(changes, team.signed());
    assert!(legacy.is_empty());
    assert!(matches!(open_list(&bytes, &eve.age), Opened::NotForUs));
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 3] ^= 1;
    assert!(matches!(open_list(&bad, &bob.age), Opened::Refused(_)));
    // A header of 100,000 stanzas is refused before age parses it.
    let mut huge = b"age-encryption.org/v1\n".to_vec();
    for _ in 0..100_000 {
        huge.extend_from_slice(b"-> X25519 AAAA\nAAAA\n");
    }
    huge.extend_from_slice(b"--- AAAA\n");
    let started = std::time::Instant::now();
    assert!(matches!(open_list(&huge, &bob.age), Opened::Refused(_)));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    // After bob's removal, the new list is not addressed to him.
    team.remove(&bob.key(), &ann.signing).unwrap();
    let bytes = seal_list(&team).unwrap();
    assert!(matches!(open_list(&bytes, &bob.age), Opened::NotForUs));
    assert!(matches!(open_list(&bytes, &ann.age), Opened::List { .. }));
}

#[test]
fn only_writers_replicas_under_a_team_key_are_admitted() {
    let (ann, wes, rae, eve) = (
        Person::new("ann"),
        Person::new("wes"),
        Person::new("rae"),
        Person::new("eve"),
    );
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(wes.card(), Role::Writer, &ann.signing).unwrap();
    team.add(rae.card(), Role::Reader, &ann.signing).unwrap();
    let now = crate::time::now();
    let vault_file = |key: crate::secret::Key| {
        let mut v = crate::vault::Vault::create_keyed(team.id, key, now).unwrap();
        v.seal(0).unwrap()
    };
    let ours = vault_file(team.current_key().unwrap());
    let foreign = vault_file(crate::secret::Key::generate().unwrap());
    let file = |name: &str, p: &Person, bytes: &[u8]| {
        sign_replica(
            &team.id,
            Incoming {
                name: name.into(),
                bytes: bytes.to_vec(),
            },
            &p.signing,
        )
    };
    let mut renamed = file("w.jeton", &wes, &ours);
    renamed.name = "other.jeton".into();
    let files = vec![
        file("w.jeton", &wes, &ours),
        file("r.jeton", &rae, &ours),
        file("e.jeton", &eve, &ours),
        renamed,
        file("own.jeton", &rae, &ours),
        file("f.jeton", &wes, &foreign),
    ];
    // As seen by ann: the writer's only, and not the one under a foreign key.
    let got = admit_replicas(&team, &ann.key(), files.clone(), &Default::default());
    assert_eq!(got.files.len(), 1);
    assert_eq!(got.files[0].bytes, ours);
    assert_eq!(got.left_out.len(), 5, "{:?}", got.left_out);
    let said = |what: &str| got.left_out.iter().any(|(_, e)| e.text.contains(what));
    assert!(said("rae (a reader)") && said("not a member") && said("not signed by a member"));
    assert!(said("f.jeton by wes: it is under a key"));
    assert!(got.admins_unread.is_empty());
    // A reader's own replica is its own.
    let got = admit_replicas(&team, &rae.key(), files.clone(), &Default::default());
    assert_eq!(got.files.len(), 3);
    // A writer's file read before (its header known) is not checked again: a broken signature
    // on it goes unseen, as the round does not read it; a reader's stays refused.
    let header = crate::format::VaultFile::peek_header(&ours).unwrap().1;
    let device = [0x77; 16];
    let read_before = [(device, crate::sync::round::sha256(header))].into();
    let named = crate::sync::round::replica_name(&device);
    let mut broken = file(&named, &wes, &ours);
    broken.bytes[60] ^= 1;
    let got = admit_replicas(&team, &ann.key(), vec![broken.clone()], &Default::default());
    assert_eq!((got.files.len(), got.left_out.len()), (0, 1));
    let got = admit_replicas(&team, &ann.key(), vec![broken], &read_before);
    assert_eq!((got.files.len(), got.left_out.len()), (1, 0));
    // The same file under another device's name, or a reader's, is checked.
    let mut renamed = file(&named, &wes, &ours);
    renamed.name = crate::sync::round::replica_name(&[0x78; 16]);
    let got = admit_replicas(&team, &ann.key(), vec![renamed], &read_before);
    assert_eq!((got.files.len(), got.left_out.len()), (0, 1));
    let got = admit_replicas(
        &team,
        &ann.key(),
        vec![file(&named, &rae, &ours)],
        &read_before,
    );
    assert_eq!((got.files.len(), got.left_out.len()), (0, 1));
}

#[test]
fn a_first_format_list_is_read_and_carried_over_by_an_admin() {
    let (ann, bob, eve) = (Person::new("ann"), Person::new("bob"), Person::new("eve"));
    let id = [5; 16];
    let op = |author: &Person, seq, lamport, change| {
        let op = legacy::Op {
            team: id,
            author: author.key(),
            seq,
            lamport,
            change,
        };
        legacy::Signed::sign(&op, &author.signing).unwrap()
    };
    let create = op(
        &ann,
        1,
        1,
        legacy::Change::Create {
            name: "ops".into(),
            admin: ann.card(),
            key: EpochKey::generate().unwrap(),
        },
    );
    let add_bob = op(
        &ann,
        2,
        2,
        legacy::Change::Add {
            member: bob.card(),
            role: Role::Writer,
        },
    );
    // A writer's change with a huge counter: ignored, and it stops nothing.
    let loud = op(
        &bob,
        1,
        u64::MAX,
        legacy::Change::Add {
            member: eve.card(),
            role: Role::Admin,
        },
    );
    let known = Known {
        legacy: vec![create, add_bob, loud],
        ..Known::default()
    };
    let mut team = Team::compute(id, known).unwrap();
    assert_eq!(team.root, None);
    assert_eq!(team.role_of(&bob.key()), Some(Role::Writer));
    assert_eq!(team.role_of(&eve.key()), None);
    // A first-format list is written in its own format, for older versions.
    let bytes = seal_list(&team).unwrap();
    let Opened::List { changes, legacy } = open_list(&bytes, &bob.age) else {
        panic!()
    };
    assert!(changes.is_empty() && legacy.len() == 3);
    // The admin's next change carries it over; bob reads the carried-over list.
    let published = team.remove(&bob.key(), &ann.signing).unwrap();
    assert_eq!(published.len(), 2, "an upgrade, then the removal");
    assert!(team.root.is_some());
    assert_eq!(team.epoch(), 1);
    let known = Known {
        received: team.signed(),
        legacy: team.legacy(),
        ..Known::default()
    };
    let read = Team::compute(id, known).unwrap();
    assert_eq!(read.root, team.root);
    assert_eq!(read.members, team.members);
    assert_eq!(read.keys, team.keys);
    // A first-format change signed later (a removed member's "backdated" one) is not among
    // those the upgrade names: it changes nothing.
    let backdated = op(
        &bob,
        2,
        1,
        legacy::Change::Remove {
            signing_key: ann.key(),
            cutoff: 9,
        },
    );
    let known = Known {
        root: team.root,
        checked: team.signed(),
        legacy: [team.legacy(), vec![backdated]].concat(),
        ..Known::default()
    };
    let again = Team::compute(id, known).unwrap();
    assert_eq!(again.members, team.members);
    assert_eq!(
        hex(&again.current_key().unwrap().expose_secret()[..]),
        hex(&team.current_key().unwrap().expose_secret()[..])
    );
}

#[test]
fn a_planted_list_of_many_first_changes_costs_join_one_pass() {
    use super::exchange::{MAX_TRIED, candidates};
    use super::files::Lists;
    use std::collections::BTreeSet;
    let (ann, bob, eve) = (Person::new("ann"), Person::new("bob"), Person::new("eve"));
    let (mut team, _) = Team::create("ops", ann.card(), &ann.signing).unwrap();
    team.add(bob.card(), Role::Reader, &ann.signing).unwrap();
    // Eve plants first changes of her own, in this team and in teams of her own, each
    // followed by a change adding bob; a few hundred, whose ids sort before the real one.
    let mut planted = Vec::new();
    for _ in 0..150 {
        let create = Change::Create {
            name: "ops".into(),
            admin: eve.card(),
            key: EpochKey::generate().unwrap(),
        };
        let root = eve.sign(&team, Vec::new(), create.clone());
        let adds = eve.sign(&team, vec![root.id()], add(&bob, Role::Admin));
        let (own, first) = Team::create("own", eve.card(), &eve.signing).unwrap();
        let adds_too = eve.sign(&own, vec![first.id()], add(&bob, Role::Admin));
        planted.extend([root, adds, first, adds_too]);
    }
    let mut changes = planted.clone();
    changes.extend(team.signed());
    let lists = Lists {
        changes,
        ..Lists::default()
    };
    // Bob knows ann: one team to try, from its one first change.
    let ann_only: BTreeSet<[u8; 32]> = [ann.key()].into();
    let found = candidates(&lists, &bob.key(), &ann_only).unwrap_or_else(|_| panic!("refused"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, team.id);
    assert_eq!(found[0].roots, vec![team.root.unwrap()]);
    assert_eq!(found[0].valid.len(), team.signed().len() + 300);
    // Had bob taken eve's card too, the tries stay bounded.
    let both: BTreeSet<[u8; 32]> = [ann.key(), eve.key()].into();
    let found = candidates(&lists, &bob.key(), &both).unwrap_or_else(|_| panic!("refused"));
    assert!(found.len() <= MAX_TRIED, "{}", found.len());
    assert!(found.iter().all(|c| c.roots.len() <= MAX_TRIED));
    // Someone who knows neither is told whose key added them.
    let none = BTreeSet::new();
    match candidates(&lists, &bob.key(), &none) {
        Err(key) => assert!(key == ann.key() || key == eve.key()),
        Ok(found) => panic!("{} teams to try", found.len()),
    }
}
