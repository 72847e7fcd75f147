//! Sync rounds as a distributed system: 2 to 5 devices on an in-memory remote
//! (`jeton::sync::driver::Memory`), driven by the library's round loop, with random edits of
//! every kind, random sync orders, a remote that withholds or replays replicas, and a crash at
//! every step of a round (the device restarts from what it had saved). Then, with the remote
//! honest again, every device syncs until quiet, and the checker asserts: all devices hold the
//! same content; every note write is current, waiting for a choice, or replaced by a write that
//! had seen it; no secret of a revoked or removed entry is readable in any file of any device
//! (vault, backup) or of the remote; a round refused because of the remote left the saved
//! vault as it was.
//!
//! Seeded: `JETON_SYNC_SEED=N` replays one case, `JETON_SYNC_CASES=N` sets how many run (256 by
//! default); a failure prints its seed.

use jeton::format::VaultFile;
use jeton::kdf::KdfParams;
use jeton::lifecycle::LifecycleRequest;
use jeton::request::{Change, EntryEdit, NewEntry, Request, SecretInput, execute};
use jeton::secret::{Key, Passphrase, Token};
use jeton::sync::driver::{self, Memory, Ran, Transport};
use jeton::sync::remote::{Published, Pulled, REPLICAS};
use jeton::sync::round::{self, Incoming};
use jeton::sync::{canonical, field};
use jeton::vault::Vault;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

const CHEAP: KdfParams = KdfParams {
    memory_kib: 8192,
    iterations: 1,
    lanes: 1,
};

const NAMES: [&str; 3] = ["svc/a", "svc/b", "svc/c"];

/// Where a round stops when it crashes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crash {
    None,
    AfterPull,
    BeforeSave,
    AfterSave,
}

/// What the remote does to one pull.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Remote {
    Honest,
    /// Leaves out one replica.
    Withhold(usize),
    /// Serves an older copy of one replica, if there is one.
    Replay(usize),
}

struct Device {
    vault: Vault,
    saved: Vec<u8>,
    bak: Option<Vec<u8>>,
    now: i64,
    /// Note writes this device has seen (index in `World::notes`).
    seen: BTreeSet<usize>,
    /// Note writes made here since its last saved round.
    unsynced: Vec<usize>,
    /// Each entry's note as its last saved round left it.
    synced_notes: BTreeMap<[u8; 16], Option<String>>,
}

/// Each entry's note, by id.
fn notes_of(v: &Vault) -> BTreeMap<[u8; 16], Option<String>> {
    (v.payload.entries.values().expect("decode"))
        .map(|e| (e.id, e.note.clone()))
        .collect()
}

struct NoteWrite {
    id: [u8; 16],
    value: String,
    saw: BTreeSet<usize>,
}

struct World {
    key: Key,
    devices: Vec<Device>,
    remote: Memory,
    /// Every version of every replica published, oldest first, by file name.
    published: BTreeMap<String, Vec<Vec<u8>>>,
    /// What the device that published a replica had seen of the note writes, by its bytes.
    seen_in: BTreeMap<[u8; 32], BTreeSet<usize>>,
    notes: Vec<NoteWrite>,
    /// Note writes a removal had seen.
    removed_writes: BTreeSet<usize>,
    /// Note writes that a later edit on the same device undid before any round saw them (the
    /// note was back to what the last round left): no change at all, for sync as for git.
    undone: BTreeSet<usize>,
    /// Every secret set, by entry id.
    secrets: BTreeMap<[u8; 16], BTreeSet<String>>,
    serial: usize,
    log: Vec<String>,
}

#[path = "support/rng.rs"]
mod rng;
use rng::Rng as StdRng;

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn open(bytes: &[u8], key: &Key) -> Vault {
    Vault::open(
        &VaultFile::parse(bytes).expect("a saved file parses"),
        key.clone(),
    )
    .expect("a saved file opens")
}

/// The plaintext of a vault file: payload and sync record, as one byte string.
fn plaintext(bytes: &[u8], key: &Key) -> Vec<u8> {
    let v = open(bytes, key);
    let mut out = v.payload.encode().expect("encodes").to_vec();
    out.extend_from_slice(v.sync_record().unwrap_or_default());
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

impl Device {
    fn persist(&mut self, forget_backup: bool) {
        let bytes = self.vault.seal(0).expect("seals");
        let old = std::mem::replace(&mut self.saved, bytes);
        self.bak = (!forget_backup).then_some(old);
        self.vault.saved();
    }

    fn restart(&mut self, key: &Key) {
        self.vault = open(&self.saved, key);
    }

    fn run(&mut self, req: Request) -> bool {
        self.now += 1;
        let ok = execute(&mut self.vault, req, self.now).is_ok();
        if ok {
            // A command that wipes a secret forgets the backup, as the store does.
            let forget = self.vault.forgets_previous();
            self.persist(forget);
        } else {
            self.restart(&key_of(&self.vault));
        }
        ok
    }
}

fn key_of(v: &Vault) -> Key {
    v.key().clone()
}

/// The remote as one pull sees it.
struct View<'a> {
    remote: &'a mut Memory,
    published: &'a BTreeMap<String, Vec<Vec<u8>>>,
    mode: Remote,
    crash_on_publish: bool,
}

impl Transport for View<'_> {
    fn pull(&mut self) -> jeton::Result<Pulled> {
        let mut pulled = self.remote.pull()?;
        pulled.files.sort_by(|a, b| a.name.cmp(&b.name));
        match self.mode {
            Remote::Honest => {}
            Remote::Withhold(i) if !pulled.files.is_empty() => {
                pulled.files.remove(i % pulled.files.len());
            }
            Remote::Replay(i) if !pulled.files.is_empty() => {
                let n = pulled.files.len();
                let f = &mut pulled.files[i % n];
                if let Some(old) = self.published.get(&f.name).and_then(|v| v.first()) {
                    f.bytes = old.clone();
                }
            }
            _ => {}
        }
        Ok(pulled)
    }

    fn check(&self, pulled: &Pulled) -> jeton::Result<()> {
        self.remote.check(pulled)
    }

    fn publish(
        &mut self,
        files: &[(String, Incoming)],
        remove: &[String],
        base: Option<&str>,
    ) -> jeton::Result<Published> {
        if self.crash_on_publish {
            return Err(jeton::Error::Other("crash".into()));
        }
        self.remote.publish(files, remove, base)
    }
}

fn crash() -> jeton::Error {
    jeton::Error::Other("crash".into())
}

impl World {
    fn new(rng: &mut StdRng, n: usize) -> World {
        let pass = Passphrase::new("model".into());
        let mut base = Vault::create(&pass, CHEAP, 1_000).expect("create");
        round::attach(&mut base, 1_000).expect("attach");
        let key = key_of(&base);
        let mut w = World {
            key: key.clone(),
            devices: Vec::new(),
            remote: Memory::default(),
            published: BTreeMap::new(),
            seen_in: BTreeMap::new(),
            notes: Vec::new(),
            removed_writes: BTreeSet::new(),
            undone: BTreeSet::new(),
            secrets: BTreeMap::new(),
            serial: 0,
            log: Vec::new(),
        };
        let saved = base.seal(0).expect("seal");
        let synced_notes = notes_of(&base);
        w.devices.push(Device {
            vault: base,
            saved,
            bak: None,
            now: 1_000,
            seen: BTreeSet::new(),
            unsynced: Vec::new(),
            synced_notes,
        });
        w.sync(0, Crash::None, Remote::Honest);
        for i in 1..n {
            let incoming = w.remote.pull().expect("pull").files;
            // Device clocks far apart, as real machines' can be.
            let now = 1_000 + rng.range(-500_000, 500_000);
            let (mut vault, r) =
                round::clone_from(&incoming, |_| Ok(key.clone()), now).expect("clone");
            let bytes = vault.seal(0).expect("seal");
            let synced_notes = notes_of(&vault);
            let mut d = Device {
                vault,
                saved: bytes,
                bak: None,
                now,
                seen: BTreeSet::new(),
                unsynced: Vec::new(),
                synced_notes,
            };
            for f in &incoming {
                if let Some(s) = w.seen_in.get(&sha(&f.bytes)) {
                    d.seen.extend(s);
                }
            }
            w.devices.push(d);
            if let Some(rep) = r.replica {
                w.publish_now(i, rep);
            }
        }
        w
    }

    fn publish_now(&mut self, i: usize, rep: Incoming) {
        let files = [(REPLICAS.to_owned(), rep.clone())];
        let base = self.remote.version.to_string();
        assert_eq!(
            self.remote
                .publish(&files, &[], Some(&base))
                .expect("publish"),
            Published::Done
        );
        self.seen_in
            .insert(sha(&rep.bytes), self.devices[i].seen.clone());
        self.published.entry(rep.name).or_default().push(rep.bytes);
    }

    /// One `jeton sync` on device `i`; returns whether it completed.
    fn sync(&mut self, i: usize, crash_at: Crash, mode: Remote) -> bool {
        let key = self.key.clone();
        let d = &mut self.devices[i];
        d.now += 1;
        let now = d.now;
        let before = d.saved.clone();
        let mut published: Vec<Incoming> = Vec::new();
        let mut pulled_all: Vec<Vec<u8>> = Vec::new();
        let mut view = View {
            remote: &mut self.remote,
            published: &self.published,
            mode,
            crash_on_publish: crash_at == Crash::AfterSave,
        };
        let seen_in = &self.seen_in;
        let notes: Vec<([u8; 16], String)> = (self.notes.iter())
            .map(|w| (w.id, w.value.clone()))
            .collect();
        let undone = &mut self.undone;
        let result = driver::drive(&mut view, false, |pulled| {
            if crash_at == Crash::AfterPull {
                return Err(crash());
            }
            let files: Vec<Vec<u8>> = pulled.files.iter().map(|f| f.bytes.clone()).collect();
            let at_start = notes_of(&d.vault);
            let r = round::round(&mut d.vault, pulled.files, false, now)?;
            if crash_at == Crash::BeforeSave {
                return Err(crash());
            }
            // Saved only when something changed, as the store does.
            if d.vault.is_dirty() {
                let forget = d.vault.forgets_previous();
                d.persist(forget);
            }
            // The round took this device's notes as they were when it started: a note edited
            // back to what the last round left was no change.
            for n in std::mem::take(&mut d.unsynced) {
                let id = notes[n].0;
                if at_start.get(&id) == d.synced_notes.get(&id) {
                    undone.insert(n);
                }
            }
            d.synced_notes = notes_of(&d.vault);
            for f in &files {
                if let Some(s) = seen_in.get(&sha(f)) {
                    d.seen.extend(s);
                }
            }
            pulled_all.extend(files);
            let publish = (r.replica.iter())
                .map(|rep| (REPLICAS.to_owned(), rep.clone()))
                .collect();
            published.extend(r.replica.clone());
            Ok(Ran { round: r, publish })
        });
        let ok = matches!(result, Ok(Some(_)));
        if let Err(e) = &result {
            let crashed = e.to_string().contains("crash");
            // A refusal caused by the remote changes nothing saved.
            if !crashed {
                assert!(
                    e.to_string().contains("back in time") && mode != Remote::Honest,
                    "device {i}: round refused ({mode:?}): {e}"
                );
                assert_eq!(d.saved, before, "a refused round changed the saved vault");
            }
        }
        // A process restart: what is in memory is what was saved.
        d.restart(&key);
        // Which of this call's replicas reached the remote: those the remote now holds.
        let seen = d.seen.clone();
        for rep in published {
            let on_remote = self.remote.files.get(&format!("{REPLICAS}/{}", rep.name));
            if on_remote == Some(&rep.bytes) {
                self.seen_in.insert(sha(&rep.bytes), seen.clone());
                self.published.entry(rep.name).or_default().push(rep.bytes);
            }
        }
        self.log.push(format!(
            "sync dev {i} crash {crash_at:?} remote {mode:?}: ok {ok}"
        ));
        ok
    }

    /// What a device knows to be revoked or removed is in none of its files.
    fn check_device(&self, i: usize) -> Result<(), String> {
        let d = &self.devices[i];
        let v = open(&d.saved, &self.key);
        let record = round::Record::of(&v).expect("record").expect("synced");
        let mut dead: Vec<[u8; 16]> = record.state.deletions.keys().copied().collect();
        for e in v.payload.entries.values().expect("decode") {
            if matches!(e.status, jeton::entry::Status::Revoked { .. }) {
                dead.push(e.id);
            }
            dead.retain(|id| *id != e.id || e.secret.is_none());
        }
        let mut files = vec![("vault", plaintext(&d.saved, &self.key))];
        if let Some(b) = &d.bak {
            files.push(("backup", plaintext(b, &self.key)));
        }
        for id in dead {
            for s in self.secrets.get(&id).into_iter().flatten() {
                for (what, bytes) in &files {
                    if holds(bytes, s) {
                        return Err(format!(
                            "device {i}: {s} of a revoked or removed entry is in its {what}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn step(&mut self, rng: &mut StdRng) {
        let i = rng.below(self.devices.len());
        let name = NAMES[rng.below(NAMES.len())];
        self.serial += 1;
        let secret = format!("secret-{:06}", self.serial);
        let value = format!("v{}", rng.below(4));
        let op = rng.below(100);
        let d = &mut self.devices[i];
        let id = d.vault.entry(name).ok().map(|e| e.id);
        let desc = match op {
            0..12 => {
                let new = NewEntry::new(name, SecretInput::Value(Token::new(secret.clone())));
                if d.run(Request::Add(Box::new(new))) {
                    let id = d.vault.entry(name).expect("added").id;
                    self.secrets.entry(id).or_default().insert(secret);
                }
                format!("add {name}")
            }
            12..20 => {
                let ok = d.run(Request::Lifecycle(LifecycleRequest::Rotate {
                    name: name.into(),
                    secret: SecretInput::Value(Token::new(secret.clone())),
                    expires_at: Change::Keep,
                }));
                if let (true, Some(id)) = (ok, id) {
                    self.secrets.entry(id).or_default().insert(secret);
                }
                format!("rotate {name}")
            }
            20..45 => {
                let before = d.vault.entry(name).ok().map(|e| (e.id, e.note.clone()));
                let edit = EntryEdit {
                    name: name.into(),
                    note: Change::Set(value.clone()),
                    ..EntryEdit::default()
                };
                if d.run(Request::Edit(Box::new(edit)))
                    && let Some((id, old)) = before
                    && old.as_deref() != Some(value.as_str())
                {
                    let saw = d.seen.clone();
                    d.unsynced.push(self.notes.len());
                    d.seen.insert(self.notes.len());
                    self.notes.push(NoteWrite {
                        id,
                        value: value.clone(),
                        saw,
                    });
                }
                format!("note {name} {value}")
            }
            45..55 => {
                let url = format!("https://{value}.example.com");
                let tag = format!("t{}", rng.below(3));
                let edit = EntryEdit {
                    name: name.into(),
                    url: Change::Set(url),
                    add_tags: if op.is_multiple_of(2) {
                        vec![tag.clone()]
                    } else {
                        vec![]
                    },
                    rm_tags: if !op.is_multiple_of(2) {
                        vec![tag]
                    } else {
                        vec![]
                    },
                    ..EntryEdit::default()
                };
                d.run(Request::Edit(Box::new(edit)));
                format!("url/tag {name}")
            }
            55..60 => {
                let to = NAMES[rng.below(NAMES.len())];
                d.run(Request::Rename {
                    from: name.into(),
                    to: to.into(),
                });
                format!("rename {name} {to}")
            }
            60..64 => {
                if d.run(Request::Remove { name: name.into() })
                    && let Some(id) = id
                {
                    // The removal covers the note writes this device had seen: if a concurrent
                    // edit keeps the entry, it keeps that edit's version, not theirs.
                    let seen = d.seen.clone();
                    self.removed_writes
                        .extend(seen.into_iter().filter(|n| self.notes[*n].id == id));
                }
                format!("rm {name}")
            }
            64..67 => {
                d.run(Request::Lifecycle(LifecycleRequest::Revoke {
                    name: name.into(),
                    reason: None,
                }));
                format!("revoke {name}")
            }
            _ => {
                let crash_at = [
                    Crash::None,
                    Crash::AfterPull,
                    Crash::BeforeSave,
                    Crash::AfterSave,
                ][rng.below(4)];
                let k = rng.below(8);
                let mode = match rng.below(10) {
                    0 => Remote::Withhold(k),
                    1 => Remote::Replay(k),
                    _ => Remote::Honest,
                };
                self.sync(i, crash_at, mode);
                return;
            }
        };
        self.log.push(format!("dev {i}: {desc}"));
    }

    /// Every device syncs in turn until a whole pass changes nothing.
    fn settle(&mut self) {
        for _ in 0..4 {
            for i in 0..self.devices.len() {
                assert!(
                    self.sync(i, Crash::None, Remote::Honest),
                    "an honest round failed"
                );
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        let key = &self.key;
        let first = canonical(&self.devices[0].vault.payload).expect("canonical");
        for (i, d) in self.devices.iter().enumerate() {
            if *canonical(&d.vault.payload).expect("canonical") != *first {
                return Err(format!(
                    "device {i} differs from device 0 in {}",
                    differing(&self.devices[0].vault.payload, &d.vault.payload)
                ));
            }
        }
        // Note writes: current, waiting, or replaced by a write that saw them.
        // Two devices writing one value at once count as one write: a write that saw either
        // replaced both.
        let same = |a: usize, b: usize| {
            let (x, y) = (&self.notes[a], &self.notes[b]);
            x.id == y.id && x.value == y.value && !x.saw.contains(&b) && !y.saw.contains(&a)
        };
        let replaced: BTreeSet<usize> = (0..self.notes.len())
            .filter(|&n| {
                (self.notes.iter())
                    .filter(|w| w.id == self.notes[n].id)
                    .any(|w| w.saw.contains(&n) || w.saw.iter().any(|&m| m != n && same(m, n)))
            })
            .collect();
        let v = &self.devices[0].vault;
        let record = round::Record::of(v).expect("record").expect("synced");
        let entries: BTreeMap<[u8; 16], jeton::entry::Entry> = v
            .payload
            .entries
            .values()
            .expect("decode")
            .map(|e| (e.id, e.clone()))
            .collect();
        let mut latest: BTreeMap<[u8; 16], BTreeSet<&str>> = BTreeMap::new();
        for (n, w) in self.notes.iter().enumerate() {
            if !replaced.contains(&n)
                && !self.removed_writes.contains(&n)
                && !self.undone.contains(&n)
            {
                latest.entry(w.id).or_default().insert(&w.value);
            }
        }
        for (id, values) in &latest {
            let Some(e) = entries.get(id) else { continue };
            if matches!(e.status, jeton::entry::Status::Revoked { .. }) {
                continue;
            }
            let mut shown: BTreeSet<String> = (record.state.entries[id].siblings.iter())
                .filter(|s| s.field == field::Field::Note)
                .map(|s| s.display())
                .collect();
            shown.insert(field::display(
                field::Field::Note,
                &field::value(e, field::Field::Note).expect("value"),
            ));
            for value in values {
                if !shown.contains(*value) {
                    return Err(format!(
                        "note write {value:?} of {} lost: shows {shown:?}",
                        e.name
                    ));
                }
            }
        }
        // Nothing of a revoked or removed entry is readable anywhere.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for (i, d) in self.devices.iter().enumerate() {
            files.push((format!("device {i} vault"), plaintext(&d.saved, key)));
            if let Some(b) = &d.bak {
                files.push((format!("device {i} backup"), plaintext(b, key)));
            }
        }
        for (path, bytes) in &self.remote.files {
            files.push((path.clone(), plaintext(bytes, key)));
        }
        for (id, secrets) in &self.secrets {
            let dead = match entries.get(id) {
                None => true,
                Some(e) => matches!(e.status, jeton::entry::Status::Revoked { .. }),
            };
            if !dead {
                continue;
            }
            for s in secrets {
                for (what, bytes) in &files {
                    if holds(bytes, s) {
                        return Err(format!("{s} of a revoked or removed entry is in {what}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Which part of two payloads differs (for the failure message).
fn differing(a: &jeton::vault::Payload, b: &jeton::vault::Payload) -> String {
    let entries = |p: &jeton::vault::Payload| {
        let mut v: Vec<jeton::entry::Entry> =
            p.entries.values().expect("decode").cloned().collect();
        v.sort_by_key(|e| e.id);
        v
    };
    let (ea, eb) = (entries(a), entries(b));
    if ea.len() != eb.len() {
        let names =
            |v: &[jeton::entry::Entry]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        return format!("entries: {:?} / {:?}", names(&ea), names(&eb));
    }
    for (x, y) in ea.iter().zip(&eb) {
        if format!("{x:?}") != format!("{y:?}") || x.id != y.id {
            return format!("entry {} / {}", x.name, y.name);
        }
    }
    let audit = |p: &jeton::vault::Payload| {
        let mut v: Vec<String> = p
            .audit
            .iter()
            .map(|e| format!("{} {} {:?} {}", e.at, e.action, e.subject, e.detail))
            .collect();
        v.sort();
        v
    };
    let (aa, ab) = (audit(a), audit(b));
    if aa != ab {
        let only_a: Vec<&String> = aa.iter().filter(|e| !ab.contains(e)).collect();
        let only_b: Vec<&String> = ab.iter().filter(|e| !aa.contains(e)).collect();
        return format!("audit: only in 0 {only_a:?}, only in the other {only_b:?}");
    }
    "deletions, contacts, bundle ids or settings".into()
}

fn run_case(seed: u64) -> Result<(), String> {
    let mut rng = StdRng(seed);
    let n = 2 + rng.below(4);
    let mut w = World::new(&mut rng, n);
    let steps = 5 + rng.below(35);
    for _ in 0..steps {
        w.step(&mut rng);
        for i in 0..w.devices.len() {
            w.check_device(i)
                .map_err(|e| format!("{e}\n{}", w.log.join("\n")))?;
        }
    }
    w.settle();
    w.check().map_err(|e| format!("{e}\n{}", w.log.join("\n")))
}

#[test]
fn devices_converge_lose_no_write_and_keep_no_wiped_secret_through_crashes_and_a_lying_remote() {
    let cases: u64 = std::env::var("JETON_SYNC_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let seeds: Vec<u64> = match std::env::var("JETON_SYNC_SEED") {
        Ok(s) => vec![s.parse().expect("JETON_SYNC_SEED is a number")],
        Err(_) => {
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            (0..cases).map(|k| start.wrapping_add(k)).collect()
        }
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(|| run_case(seed));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("JETON_SYNC_SEED={seed}: {e}"),
            Err(_) => panic!("JETON_SYNC_SEED={seed}: panicked (see above)"),
        }
    }
}
