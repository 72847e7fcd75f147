//! The sync merge (`jeton::sync`): one test per rule, and property tests over random histories
//! on three devices whose clocks are far apart.

use jeton::entry::{Entry, Status, validate_name};
use jeton::kdf::KdfParams;
use jeton::lifecycle::LifecycleRequest;
use jeton::request::{Change, EntryEdit, NewEntry, Request, SecretInput, execute};
use jeton::secret::{Passphrase, Token};
use jeton::sync::{Report, SyncState, canonical, merge};
use jeton::vault::{Contact, Payload, Vault};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, OnceLock};

const CHEAP: KdfParams = KdfParams {
    memory_kib: 8192,
    iterations: 1,
    lanes: 1,
};

/// One vault made once (the KDF is paid once); requests run on it with a device's payload
/// swapped in.
fn workbench() -> MutexGuard<'static, Vault> {
    static BENCH: OnceLock<Mutex<Vault>> = OnceLock::new();
    let m = BENCH.get_or_init(|| {
        let pass = Passphrase::new("sync tests".into());
        let mut v = Vault::create(&pass, CHEAP, 1_000).unwrap();
        jeton::share::identity::ensure(&mut v, 1_000).unwrap();
        v.payload.settings.history_limit = 1_000;
        Mutex::new(v)
    });
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn base() -> Payload {
    workbench().payload.clone()
}

/// A device: its payload, its sync state and its own clock.
struct Dev {
    p: Payload,
    s: SyncState,
    now: i64,
}

impl Dev {
    fn new(n: u8, p: &Payload, now: i64) -> Dev {
        Dev {
            p: p.clone(),
            s: SyncState::new([n; 16]),
            now,
        }
    }

    fn run(&mut self, req: Request) -> bool {
        self.now += 1;
        let mut v = workbench();
        std::mem::swap(&mut v.payload, &mut self.p);
        let ok = execute(&mut v, req, self.now).is_ok();
        std::mem::swap(&mut v.payload, &mut self.p);
        ok
    }

    fn add(&mut self, name: &str, secret: &str) -> bool {
        let new = NewEntry::new(name, SecretInput::Value(Token::new(secret.into())));
        self.run(Request::Add(Box::new(new)))
    }

    fn rotate(&mut self, name: &str, secret: &str) -> bool {
        self.run(Request::Lifecycle(LifecycleRequest::Rotate {
            name: name.into(),
            secret: SecretInput::Value(Token::new(secret.into())),
            expires_at: Change::Keep,
        }))
    }

    fn edit(&mut self, name: &str, note: Option<&str>, add: &[&str], rm: &[&str]) -> bool {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        self.run(Request::Edit(Box::new(EntryEdit {
            name: name.into(),
            note: note.map_or(Change::Keep, |n| Change::Set(n.into())),
            add_tags: owned(add),
            rm_tags: owned(rm),
            ..EntryEdit::default()
        })))
    }

    fn rename(&mut self, from: &str, to: &str) -> bool {
        self.run(Request::Rename {
            from: from.into(),
            to: to.into(),
        })
    }

    fn rm(&mut self, name: &str) -> bool {
        self.run(Request::Remove { name: name.into() })
    }

    fn revoke(&mut self, name: &str) -> bool {
        self.run(Request::Lifecycle(LifecycleRequest::Revoke {
            name: name.into(),
            reason: None,
        }))
    }

    fn get(&self, name: &str) -> Option<Entry> {
        self.p.entries.get(name).unwrap().cloned()
    }

    fn names(&self) -> Vec<String> {
        self.p
            .entries
            .values()
            .unwrap()
            .map(|e| e.name.clone())
            .collect()
    }

    fn absorb(&mut self) {
        self.s.absorb_local(&self.p, self.now).unwrap();
    }
}

/// Content as text, for readable failures (secrets are test values): what
/// [`jeton::sync::canonical`] compares, in JSON.
fn content(p: &Payload) -> String {
    let mut entries: Vec<&Entry> = p.entries.values().unwrap().collect();
    entries.sort_by_key(|e| e.id);
    let mut audit: Vec<_> = p.audit.iter().collect();
    audit.sort_by_key(|e| (e.at, &e.action, &e.subject, &e.detail));
    let mut deletions: Vec<_> = p.deletions.iter().map(|d| (d.at, d.id)).collect();
    deletions.sort();
    let mut seen: Vec<_> = p.seen_bundles.iter().map(|s| (s.at, &s.id)).collect();
    seen.sort();
    let all = (entries, deletions, &p.contacts, seen, audit, &p.settings);
    serde_json::to_string(&all).unwrap()
}

/// Checks that `canonical` and `content` agree on whether two payloads are the same.
fn same(a: &Payload, b: &Payload) -> bool {
    let same = *canonical(a).unwrap() == *canonical(b).unwrap();
    assert_eq!(same, content(a) == content(b));
    same
}

/// One round between two devices, each absorbing its local edits first; checks on the way
/// that the merge is commutative and that a replica merged with itself is unchanged.
fn sync(a: &mut Dev, b: &mut Dev) -> Report {
    a.absorb();
    b.absorb();
    let ma = merge((&a.p, &a.s), (&b.p, &b.s)).unwrap();
    let mb = merge((&b.p, &b.s), (&a.p, &a.s)).unwrap();
    assert_eq!(content(&ma.payload), content(&mb.payload), "commutative");
    assert!(same(&ma.payload, &mb.payload));
    let again = merge((&ma.payload, &ma.state), (&ma.payload, &ma.state)).unwrap();
    assert_eq!(content(&again.payload), content(&ma.payload), "idempotent");
    assert_eq!(again.state, ma.state, "idempotent state");
    let again = merge((&ma.payload, &ma.state), (&b.p, &b.s)).unwrap();
    assert_eq!(content(&again.payload), content(&ma.payload), "absorbing");
    let mut sa = ma.state.clone();
    sa.device = mb.state.device;
    assert_eq!(sa, mb.state, "the same state but for the device");
    (a.p, a.s) = (ma.payload, ma.state);
    (b.p, b.s) = (mb.payload, mb.state);
    ma.report
}

/// Two devices with one entry `k` (secret `s0`) already synced; A's clock is in 2100, B's in
/// 1973.
fn pair() -> (Dev, Dev) {
    let base = base();
    let mut a = Dev::new(1, &base, 4_100_000_000);
    let mut b = Dev::new(2, &base, 100_000_000);
    assert!(a.add("k", "s0"));
    sync(&mut a, &mut b);
    (a, b)
}

fn secrets(e: &Entry) -> BTreeSet<String> {
    let current = e.secret.iter().map(|s| s.expose_secret().to_owned());
    let old = e
        .history
        .iter()
        .map(|h| h.secret.expose_secret().to_owned());
    current.chain(old).collect()
}

fn conflicts(p: &Payload) -> Vec<(Option<String>, String)> {
    (p.audit.iter())
        .filter(|e| e.action == "conflict")
        .map(|e| (e.subject.clone(), e.detail.clone()))
        .collect()
}

#[test]
fn revoke_on_one_side_wins_over_an_edit_and_a_rotation_on_the_other() {
    let (mut a, mut b) = pair();
    assert!(a.revoke("k"));
    assert!(b.rotate("k", "s1"));
    assert!(b.edit("k", Some("new note"), &["t"], &[]));
    let report = sync(&mut a, &mut b);
    for d in [&a, &b] {
        let e = d.get("k").unwrap();
        assert!(matches!(e.status, Status::Revoked { .. }), "{:?}", e.status);
        assert!(e.secret.is_none() && e.history.is_empty());
    }
    assert!(report.wiped, "the caller must scrub its backup");
    assert_eq!(report.conflicts, ["k"]);
}

#[test]
fn a_removal_concurrent_with_an_edit_keeps_the_edit_and_logs_it() {
    let (mut a, mut b) = pair();
    assert!(a.rm("k"));
    assert!(b.edit("k", Some("still needed"), &[], &[]));
    let report = sync(&mut a, &mut b);
    assert_eq!(report.kept_over_removal, ["k"]);
    for d in [&a, &b] {
        assert_eq!(d.get("k").unwrap().note.as_deref(), Some("still needed"));
        assert_eq!(conflicts(&d.p).len(), 1, "{:?}", conflicts(&d.p));
    }
    // A later removal that has seen the edit removes it everywhere, for good.
    assert!(b.rm("k"));
    sync(&mut a, &mut b);
    assert!(a.get("k").is_none() && b.get("k").is_none());
    sync(&mut a, &mut b);
    assert!(a.get("k").is_none());
}

#[test]
fn a_removal_of_a_revoked_entry_revokes_a_concurrent_edit() {
    let (mut a, mut b) = pair();
    assert!(a.revoke("k"));
    sync(&mut a, &mut b);
    assert!(a.rm("k"));
    assert!(b.edit("k", Some("edited"), &[], &[]));
    sync(&mut a, &mut b);
    let e = b.get("k").unwrap();
    assert!(matches!(e.status, Status::Revoked { .. }));
    assert!(e.secret.is_none());
}

#[test]
fn a_removal_is_not_undone_by_a_copy_that_had_not_seen_it() {
    let (mut a, mut b) = pair();
    let base = base();
    let mut c = Dev::new(3, &base, 2_000_000_000);
    sync(&mut c, &mut a);
    assert!(a.rm("k"));
    sync(&mut a, &mut b);
    assert!(b.get("k").is_none());
    sync(&mut c, &mut b);
    assert!(b.get("k").is_none() && c.get("k").is_none());
    assert!(conflicts(&b.p).is_empty());
    let report = sync(&mut c, &mut b);
    assert_eq!((report.changed_here, report.changed_there), (0, 0));
}

#[test]
fn rename_against_rename_keeps_one_entry_under_one_name() {
    let (mut a, mut b) = pair();
    assert!(a.rename("k", "from-a"));
    assert!(b.rename("k", "from-b"));
    let report = sync(&mut a, &mut b);
    assert_eq!(a.names(), b.names());
    assert_eq!(a.names().len(), 1);
    assert!(["from-a", "from-b"].contains(&a.names()[0].as_str()));
    assert_eq!(report.conflicts, a.names());
}

/// The note of entry `name` as a device shows it, and the other values waiting beside it.
fn note_and_waiting(d: &Dev, name: &str) -> (String, Vec<String>) {
    use jeton::sync::field::{Field, display, value};
    let e = d.get(name).unwrap();
    let current = display(Field::Note, &value(&e, Field::Note).unwrap());
    let waiting = (d.s.entries[&e.id].siblings.iter())
        .filter(|s| s.field == Field::Note)
        .map(|s| s.display())
        .collect();
    (current, waiting)
}

#[test]
fn a_rename_and_a_note_on_two_devices_both_stand_without_a_conflict() {
    let (mut a, mut b) = pair();
    assert!(a.rename("k", "renamed"));
    assert!(b.edit("k", Some("note from b"), &["t"], &[]));
    let report = sync(&mut a, &mut b);
    assert!(report.conflicts.is_empty(), "{report:?}");
    assert!(conflicts(&a.p).is_empty());
    for d in [&a, &b] {
        let e = d.get("renamed").expect("the rename stands");
        assert_eq!(e.note.as_deref(), Some("note from b"));
        assert_eq!(e.tags, ["t"]);
        assert!(d.s.entries[&e.id].siblings.is_empty());
    }
}

#[test]
fn the_same_field_changed_on_two_devices_keeps_the_other_value_waiting() {
    let (mut a, mut b) = pair();
    assert!(a.edit("k", Some("from a"), &[], &[]));
    assert!(b.edit("k", Some("from b"), &[], &[]));
    let report = sync(&mut a, &mut b);
    assert_eq!(report.conflicts, ["k"]);
    let (current, waiting) = note_and_waiting(&a, "k");
    assert_eq!(
        note_and_waiting(&b, "k"),
        (current.clone(), waiting.clone())
    );
    let mut both = vec![current, waiting.concat()];
    both.sort();
    assert_eq!(both, ["from a", "from b"]);
    // A later edit of the note on one device answers it everywhere.
    assert!(b.edit("k", Some("settled"), &[], &[]));
    sync(&mut a, &mut b);
    for d in [&a, &b] {
        assert_eq!(note_and_waiting(d, "k"), ("settled".into(), vec![]));
    }
}

#[test]
fn a_write_that_saw_the_other_wins_without_a_conflict_whatever_the_clocks() {
    let (mut a, mut b) = pair();
    // A's clock is decades ahead: its note is stamped later, but B's later edit saw it.
    assert!(a.edit("k", Some("from a"), &[], &[]));
    sync(&mut a, &mut b);
    assert!(b.edit("k", Some("from b, later"), &[], &[]));
    let report = sync(&mut a, &mut b);
    assert!(report.conflicts.is_empty());
    assert_eq!(note_and_waiting(&a, "k"), ("from b, later".into(), vec![]));
}

#[test]
fn the_same_name_added_on_both_sides_keeps_both_and_renames_one() {
    let base = base();
    let mut a = Dev::new(1, &base, 4_100_000_000);
    let mut b = Dev::new(2, &base, 100_000_000);
    assert!(a.add("svc/x", "from-a"));
    assert!(b.add("svc/x", "from-b"));
    let report = sync(&mut a, &mut b);
    let names = a.names();
    assert_eq!(names, b.names());
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"svc/x".to_owned()));
    let other = names.iter().find(|n| *n != "svc/x").unwrap();
    assert!(other.starts_with("svc/x.dup-"), "{other}");
    validate_name(other).unwrap();
    assert_eq!(report.renamed, [("svc/x".to_owned(), other.clone())]);
    let all: BTreeSet<String> = names
        .iter()
        .flat_map(|n| secrets(&a.get(n).unwrap()))
        .collect();
    assert_eq!(all, ["from-a", "from-b"].map(String::from).into());
    // Once the other one is gone, the renamed entry gets its name back.
    assert!(a.rm("svc/x"));
    sync(&mut a, &mut b);
    assert_eq!(b.names(), ["svc/x"]);
}

#[test]
fn a_rotation_on_each_side_keeps_both_secrets() {
    let (mut a, mut b) = pair();
    a.now += 1_000;
    assert!(a.rotate("k", "from-a"));
    assert!(b.rotate("k", "from-b"));
    let report = sync(&mut a, &mut b);
    assert_eq!(report.conflicts, ["k"]);
    assert_eq!((report.changed_here, report.changed_there), (1, 1));
    let e = a.get("k").unwrap();
    assert_eq!(
        secrets(&e),
        ["s0", "from-a", "from-b"].map(String::from).into()
    );
    assert_eq!(e.history.len(), 2, "no secret twice");
    // B's clock is 127 years behind: its stamp is pushed just past the version it changed,
    // and A's, made 1,000 seconds after that version, wins.
    assert_eq!(e.secret.as_ref().unwrap().expose_secret(), "from-a");
    let log = conflicts(&a.p);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0.as_deref(), Some("k"));
}

#[test]
fn a_device_with_a_slow_clock_does_not_lose_its_later_edit() {
    let (mut a, mut b) = pair();
    assert!(a.edit("k", Some("from the year 2100"), &[], &[]));
    sync(&mut a, &mut b);
    // B's clock says 1973, but B edits after seeing A's change: B's edit is the later one.
    assert!(b.edit("k", Some("from 1973, made later"), &[], &[]));
    sync(&mut a, &mut b);
    for d in [&a, &b] {
        assert_eq!(
            d.get("k").unwrap().note.as_deref(),
            Some("from 1973, made later")
        );
    }
    assert!(conflicts(&a.p).is_empty());
}

#[test]
fn list_values_added_on_both_sides_are_kept_and_removals_seen_stay_removed() {
    let (mut a, mut b) = pair();
    assert!(a.edit("k", None, &["old", "keep"], &[]));
    sync(&mut a, &mut b);
    assert!(a.edit("k", None, &["from-a"], &["old"]));
    assert!(b.edit("k", None, &["from-b"], &[]));
    sync(&mut a, &mut b);
    let tags = a.get("k").unwrap().tags;
    assert_eq!(tags, ["from-a", "from-b", "keep"]);
}

#[test]
fn contacts_merge_by_name_and_a_removal_sticks() {
    let (mut a, mut b) = pair();
    let card = |name: &str, at| Contact {
        name: name.into(),
        age_recipient: Some(format!("age1{name}")),
        ssh_recipient: None,
        signing_key: None,
        added_at: at,
    };
    a.p.contacts.push(card("bob", a.now));
    b.p.contacts.push(card("carol", b.now));
    sync(&mut a, &mut b);
    let names = |d: &Dev| {
        d.p.contacts
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), ["bob", "carol"]);
    a.p.contacts.retain(|c| c.name != "bob");
    sync(&mut a, &mut b);
    assert_eq!(names(&b), ["carol"]);
}

#[test]
fn settings_follow_the_last_writer() {
    let (mut a, mut b) = pair();
    a.now += 1_000;
    a.p.settings.history_limit = 7;
    a.absorb();
    b.now += 10;
    b.p.settings.owner = Some("b".into());
    sync(&mut a, &mut b);
    // Concurrent: the later stamp wins, A's clock being far ahead.
    assert_eq!(b.p.settings.history_limit, 7);
    assert_eq!(b.p.settings.owner, None);
    b.p.settings.owner = Some("b".into());
    sync(&mut a, &mut b);
    assert_eq!(
        a.p.settings.owner.as_deref(),
        Some("b"),
        "a later change wins"
    );
}

#[test]
fn bundle_ids_merge_so_a_replay_is_refused_everywhere() {
    let (mut a, mut b) = pair();
    a.p.seen_bundles.push(jeton::vault::SeenBundle {
        id: "abcd".into(),
        at: 5,
    });
    sync(&mut a, &mut b);
    assert_eq!(b.p.seen_bundles.len(), 1);
}

#[test]
fn a_different_identity_is_reported_and_the_local_one_kept() {
    let (mut a, b) = pair();
    let mut other = b.p.clone();
    other.identity = Some(jeton::share::identity::generate(5).unwrap());
    a.absorb();
    let m = merge((&a.p, &a.s), (&other, &b.s)).unwrap();
    assert!(m.report.identity_differs);
    let mine = a.p.identity.as_ref().unwrap().signing_key.expose_secret();
    assert_eq!(
        m.payload.identity.unwrap().signing_key.expose_secret(),
        mine
    );
}

#[test]
fn a_merge_refuses_a_replica_whose_local_edits_were_not_absorbed() {
    let (mut a, b) = pair();
    assert!(a.edit("k", Some("x"), &[], &[]));
    assert!(merge((&a.p, &a.s), (&b.p, &b.s)).is_err());
}

#[test]
fn a_history_cut_by_the_merge_is_reported_for_scrubbing() {
    let (mut a, mut b) = pair();
    a.p.settings.history_limit = 1;
    b.p.settings.history_limit = 1;
    sync(&mut a, &mut b);
    assert!(a.rotate("k", "a1"));
    assert!(b.rotate("k", "b1"));
    let report = sync(&mut a, &mut b);
    assert!(report.wiped);
    assert_eq!(a.get("k").unwrap().history.len(), 1);
}

// == property tests ==

const NAMES: [&str; 4] = ["a", "b", "svc/c", "svc/d"];

#[derive(Clone, Debug)]
enum Op {
    Add(usize),
    Rotate(usize),
    Edit(usize, u8),
    Rename(usize, usize),
    Rm(usize),
    Revoke(usize),
    Sync(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NAMES.len();
    prop_oneof![
        3 => n.clone().prop_map(Op::Add),
        2 => n.clone().prop_map(Op::Rotate),
        3 => (n.clone(), any::<u8>()).prop_map(|(i, t)| Op::Edit(i, t)),
        1 => (n.clone(), n.clone()).prop_map(|(i, j)| Op::Rename(i, j)),
        1 => n.clone().prop_map(Op::Rm),
        1 => n.clone().prop_map(Op::Revoke),
        3 => (0..3usize).prop_map(Op::Sync),
    ]
}

/// Three devices, clocks far apart, each step one op on one device (a sync pairs it with
/// another). Returns the devices and what the model expects: ids created, ids removed, and
/// every secret ever set per id.
struct World {
    devs: Vec<Dev>,
    removed: BTreeSet<[u8; 16]>,
    secrets: BTreeMap<[u8; 16], BTreeSet<String>>,
    serial: usize,
    /// Every note write: the entry, the value, and the note writes its device had seen.
    notes: Vec<NoteWrite>,
    /// Per device, the note writes it has seen (by index in `notes`).
    seen: Vec<BTreeSet<usize>>,
}

struct NoteWrite {
    id: [u8; 16],
    value: String,
    saw: BTreeSet<usize>,
}

impl World {
    fn new(history_limit: u32) -> World {
        let mut base = base();
        base.settings.history_limit = history_limit;
        let times = [4_100_000_000, 100_000_000, 1_700_000_000];
        World {
            devs: (0..3)
                .map(|i| Dev::new(i as u8 + 1, &base, times[i]))
                .collect(),
            removed: BTreeSet::new(),
            secrets: BTreeMap::new(),
            serial: 0,
            notes: Vec::new(),
            seen: vec![BTreeSet::new(); 3],
        }
    }

    fn step(&mut self, dev: usize, op: &Op, dt: u16) {
        self.serial += 1;
        let secret = format!("secret-{}", self.serial);
        let d = &mut self.devs[dev];
        d.now += i64::from(dt);
        let name = |i: &usize| NAMES[*i];
        let id = |d: &Dev, n: &str| d.get(n).map(|e| e.id);
        match op {
            Op::Add(i) => {
                if d.add(name(i), &secret) {
                    let id = id(d, name(i)).unwrap();
                    self.secrets.entry(id).or_default().insert(secret);
                }
            }
            Op::Rotate(i) => {
                if d.rotate(name(i), &secret) {
                    let id = id(d, name(i)).unwrap();
                    self.secrets.entry(id).or_default().insert(secret);
                }
            }
            Op::Edit(i, t) => {
                let tag = format!("t{}", t % 4);
                let (add, rm) = if t % 2 == 0 {
                    (vec![&*tag], vec![])
                } else {
                    (vec![], vec![&*tag])
                };
                let note = (t % 3 == 0).then(|| format!("note {t}"));
                let before = d.get(name(i));
                if d.edit(name(i), note.as_deref(), &add, &rm)
                    && let (Some(e), Some(value)) = (before, note)
                    && e.note.as_deref() != Some(&value)
                {
                    let saw = self.seen[dev].clone();
                    self.seen[dev].insert(self.notes.len());
                    self.notes.push(NoteWrite {
                        id: e.id,
                        value,
                        saw,
                    });
                }
            }
            Op::Rename(i, j) => {
                d.rename(name(i), name(j));
            }
            Op::Rm(i) => {
                let gone = id(d, name(i));
                if d.rm(name(i)) {
                    self.removed.extend(gone);
                }
            }
            Op::Revoke(i) => {
                d.revoke(name(i));
            }
            Op::Sync(k) => {
                let other = (dev + 1 + k % 2) % 3;
                let (x, y) = pair_mut(&mut self.devs, dev, other);
                sync(x, y);
                self.share_seen(dev, other);
            }
        }
    }

    fn final_round(&mut self) {
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            let (x, y) = pair_mut(&mut self.devs, i, j);
            sync(x, y);
            self.share_seen(i, j);
        }
    }

    fn share_seen(&mut self, i: usize, j: usize) {
        let all: BTreeSet<usize> = self.seen[i].union(&self.seen[j]).copied().collect();
        self.seen[i] = all.clone();
        self.seen[j] = all;
    }

    /// Every note write that no later write saw (a write that saw another replaced it) is, on
    /// device `d`, the entry's note or a value waiting beside it, unless the entry was removed
    /// or revoked; and the note shown is one of them.
    fn check_notes(&self, d: &Dev) -> Result<(), TestCaseError> {
        // Replaced: seen by a later write of the same entry.
        let seen_later: BTreeSet<usize> = (0..self.notes.len())
            .filter(|&n| {
                (self.notes.iter()).any(|w| w.id == self.notes[n].id && w.saw.contains(&n))
            })
            .collect();
        let entries: BTreeMap<[u8; 16], Entry> =
            d.p.entries
                .values()
                .unwrap()
                .map(|e| (e.id, e.clone()))
                .collect();
        let mut latest: BTreeMap<[u8; 16], BTreeSet<&str>> = BTreeMap::new();
        for (i, w) in self.notes.iter().enumerate() {
            if !seen_later.contains(&i) {
                latest.entry(w.id).or_default().insert(&w.value);
            }
        }
        for (id, values) in latest {
            let Some(e) = entries.get(&id) else { continue };
            if self.removed.contains(&id) || matches!(e.status, Status::Revoked { .. }) {
                continue;
            }
            let (current, waiting) = note_and_waiting(d, &e.name);
            let mut shown: BTreeSet<&str> = waiting.iter().map(String::as_str).collect();
            shown.insert(&current);
            for v in &values {
                prop_assert!(
                    shown.contains(v),
                    "note write {v:?} lost on {}: shows {shown:?}",
                    e.name
                );
            }
            prop_assert!(
                values.contains(current.as_str()),
                "note {current:?} is no latest write of {}",
                e.name
            );
        }
        Ok(())
    }
}

fn pair_mut(devs: &mut [Dev], i: usize, j: usize) -> (&mut Dev, &mut Dev) {
    assert!(i != j);
    if i < j {
        let (l, r) = devs.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = devs.split_at_mut(i);
        (&mut r[0], &mut l[j])
    }
}

fn history() -> impl Strategy<Value = Vec<(usize, Op, u16)>> {
    proptest::collection::vec((0..3usize, op(), 0..5_000u16), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    /// Random histories on three devices synced in random orders end, after one round between
    /// every pair, with the same content everywhere; no entry is lost unless someone removed
    /// it, and a surviving entry not revoked still holds every secret it ever had.
    #[test]
    fn three_devices_converge_and_lose_nothing(steps in history()) {
        let mut w = World::new(1_000);
        for (dev, op, dt) in &steps {
            w.step(*dev, op, *dt);
        }
        w.final_round();
        let first = content(&w.devs[0].p);
        for d in &w.devs[1..] {
            prop_assert_eq!(&content(&d.p), &first);
        }
        let entries: BTreeMap<[u8; 16], Entry> =
            w.devs[0].p.entries.values().unwrap().map(|e| (e.id, e.clone())).collect();
        for (id, made) in &w.secrets {
            let Some(e) = entries.get(id) else {
                prop_assert!(w.removed.contains(id), "an entry nobody removed is gone");
                continue;
            };
            // A removal covers the versions it saw (with their secrets); what survives is a
            // concurrent change, checked for the secrets it had.
            if !matches!(e.status, Status::Revoked { .. }) && !w.removed.contains(id) {
                prop_assert_eq!(&secrets(e), made);
            }
        }
        for d in &w.devs {
            w.check_notes(d)?;
        }
        let names: BTreeSet<&str> = entries.values().map(|e| e.name.as_str()).collect();
        prop_assert_eq!(names.len(), entries.len(), "one entry per name");
        for n in names {
            prop_assert!(validate_name(n).is_ok());
        }
    }

    /// The merge of three replicas does not depend on the grouping, but for the `conflict`
    /// events, which record what a device saw side by side, and, once entries were removed, the
    /// fields of an entry that survived a removal: a replica that merged a removal with the
    /// version it covered no longer holds that version, so a concurrent version met later is
    /// kept alone, while one met first was joined with it (which entries survive, and whether
    /// they are revoked, do not depend on the grouping).
    #[test]
    fn merging_three_replicas_is_associative(steps in history(), limit in 1..4u32) {
        let mut w = World::new(limit);
        for (dev, op, dt) in &steps {
            w.step(*dev, op, *dt);
        }
        for d in &mut w.devs {
            d.absorb();
        }
        let r = |i: usize| (&w.devs[i].p, &w.devs[i].s);
        let ab = merge(r(0), r(1)).unwrap();
        let left = merge((&ab.payload, &ab.state), r(2)).unwrap();
        let bc = merge(r(1), r(2)).unwrap();
        let right = merge(r(0), (&bc.payload, &bc.state)).unwrap();
        let removals = steps.iter().any(|(_, op, _)| matches!(op, Op::Rm(_)));
        let strip = |p: Payload| {
            let mut p = p;
            p.audit.retain(|e| e.action != "conflict");
            if removals {
                // What survives and whether it is revoked, but not the other fields of a
                // survivor: see the doc comment.
                let mut kept: Vec<_> = p.entries.values().unwrap()
                    .map(|e| (e.id, e.status.label()))
                    .collect();
                kept.sort();
                p.entries = Default::default();
                return format!("{kept:?} {}", content(&p));
            }
            content(&p)
        };
        prop_assert_eq!(strip(left.payload), strip(right.payload));
    }
}
