//! Property tests for every encode/decode pair, and a canary search over Debug output.

use jeton::entry::{Entry, HistoryItem, Provenance, ShareRecord, Status};
use jeton::format::VaultFile;
use jeton::kdf::KdfParams;
use jeton::request::{NewEntry, Request, Response, SecretInput};
use jeton::secret::{Key, Passphrase, Token};
use jeton::vault::{AuditEvent, Contact, Identity, Payload, Vault};
use proptest::prelude::*;
use std::collections::BTreeMap;

const CANARY: &str = "CANARY-tok-7f3a9c1e5b";
const CHEAP: KdfParams = KdfParams {
    memory_kib: 8192,
    iterations: 1,
    lanes: 1,
};

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,24}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Active),
        any::<i64>().prop_map(|since| Status::Disabled { since }),
        (any::<i64>(), opt_text()).prop_map(|(at, reason)| Status::Revoked { at, reason }),
    ]
}

prop_compose! {
    fn entry()(
        id in any::<[u8; 16]>(), revision in any::<u64>(), name in "[a-z0-9]{1,8}(/[a-z0-9._@-]{1,8}){0,2}",
        secret in proptest::option::of(text()), times in any::<[i64; 3]>(),
        scopes in proptest::collection::vec(text(), 0..4), url in opt_text(), username in opt_text(),
        issuer in opt_text(), contact in opt_text(), used_by in proptest::collection::vec(text(), 0..3),
        tags in proptest::collection::vec(text(), 0..3), note in opt_text(),
        expires_at in proptest::option::of(any::<i64>()), rotate_every in proptest::option::of(any::<i64>()),
        last_rotated_at in proptest::option::of(any::<i64>()), status in status(),
        history in proptest::collection::vec((text(), any::<i64>(), any::<i64>()), 0..3),
        shared in proptest::collection::vec((text(), text(), any::<i64>()), 0..2),
        received in proptest::option::of((text(), text(), any::<i64>())),
    ) -> Entry {
        Entry {
            id, revision, name, secret: secret.map(Token::new), secret_set_at: times[0], scopes, url, username,
            issuer, contact, used_by, tags, note, created_at: times[1], updated_at: times[2], expires_at,
            rotate_every, last_rotated_at, status,
            history: history.into_iter().map(|(s, c, r)| HistoryItem { secret: Token::new(s), created_at: c, retired_at: r }).collect(),
            shared_with: shared.into_iter().map(|(contact, bundle_id, at)| ShareRecord { contact, bundle_id, at }).collect(),
            received_from: received.map(|(from, reference, at)| Provenance { from, reference, at }),
        }
    }
}

prop_compose! {
    fn payload()(entries in proptest::collection::vec(entry(), 0..6), audit in proptest::collection::vec((any::<i64>(), text(), opt_text(), text()), 0..5),
                 contacts in proptest::collection::vec((text(), opt_text(), opt_text(), proptest::option::of(any::<[u8; 32]>()), any::<i64>()), 0..3),
                 identity in proptest::option::of((text(), any::<[u8; 32]>(), any::<i64>())), owner in opt_text(), limit in any::<u32>()) -> Payload {
        let mut p = Payload::default();
        for e in entries { p.entries.insert(Box::new(e)); }
        p.audit = audit.into_iter().map(|(at, action, subject, detail)| AuditEvent { at, action, subject, detail }).collect();
        p.contacts = contacts.into_iter().map(|(name, age_recipient, ssh_recipient, signing_key, added_at)| Contact { name, age_recipient, ssh_recipient, signing_key, added_at }).collect();
        p.identity = identity.map(|(s, k, at)| Identity { age_secret: Token::new(s), signing_key: Key::from_bytes(k), created_at: at });
        p.settings.owner = owner;
        p.settings.history_limit = limit;
        p
    }
}

/// postcard's encoding of the payload as declared, every entry decoded: the entry map as a
/// plain `BTreeMap`, the other fields around it. The oracle for [`Payload::encode`], which copies
/// the bytes of entries never decoded.
fn reference(p: &Payload) -> Vec<u8> {
    let map: BTreeMap<&str, &Entry> = p
        .entries
        .values()
        .unwrap()
        .map(|e| (e.name.as_str(), e))
        .collect();
    reference_with(p, &map)
}

fn reference_with(p: &Payload, map: &BTreeMap<&str, &Entry>) -> Vec<u8> {
    postcard::to_stdvec(&(
        &p.settings,
        map,
        &p.deletions,
        &p.contacts,
        &p.identity,
        &p.seen_bundles,
        &p.audit,
    ))
    .unwrap()
}

/// A change to one entry of a decoded payload, by position.
#[derive(Clone, Debug)]
enum Change {
    Read(usize),
    Edit(usize),
    Remove(usize),
    Insert(Box<Entry>),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        any::<usize>().prop_map(Change::Read),
        any::<usize>().prop_map(Change::Edit),
        any::<usize>().prop_map(Change::Remove),
        entry().prop_map(|e| Change::Insert(Box::new(e))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn payload_encode_is_postcards_encoding(p in payload()) {
        prop_assert_eq!(&*p.encode().unwrap(), &reference(&p)[..]);
        prop_assert_eq!(p.encoded_len().unwrap(), reference(&p).len());
        prop_assert_eq!(postcard::to_stdvec(&p).unwrap(), reference(&p));
    }

    #[test]
    fn payload_encode_decode_round_trips(p in payload()) {
        let bytes = p.encode().unwrap();
        let back = Payload::decode(&bytes).unwrap();
        prop_assert_eq!(&*back.encode().unwrap(), &*bytes, "untouched entries are copied");
        prop_assert_eq!(&reference(&back)[..], &*bytes, "every entry decoded and encoded again");
        prop_assert_eq!(back.entries.len(), p.entries.len());
        for e in p.entries.values().unwrap() {
            let b = back.entries.get(&e.name).unwrap().unwrap();
            prop_assert_eq!(e.secret.as_ref().map(|s| s.expose_secret()), b.secret.as_ref().map(|s| s.expose_secret()));
        }
    }

    #[test]
    fn decoded_payload_changed_in_part_encodes_like_the_whole_map(p in payload(), changes in proptest::collection::vec(change(), 0..6)) {
        let bytes = p.encode().unwrap();
        let mut lazy = Payload::decode(&bytes).unwrap();
        let mut model: BTreeMap<String, Entry> = p.entries.values().unwrap().map(|e| (e.name.clone(), e.clone())).collect();
        for c in changes {
            let nth = |i: usize| model.keys().nth(i % model.len().max(1)).cloned();
            match c {
                Change::Read(i) => if let Some(n) = nth(i) {
                    let e = lazy.entries.get(&n).unwrap().unwrap();
                    prop_assert_eq!(&e.name, &n);
                },
                Change::Edit(i) => if let Some(n) = nth(i) {
                    lazy.entries.get_mut(&n).unwrap().unwrap().revision ^= 1;
                    model.get_mut(&n).unwrap().revision ^= 1;
                },
                Change::Remove(i) => if let Some(n) = nth(i) {
                    let gone = lazy.entries.remove(&n).unwrap().unwrap();
                    prop_assert_eq!(&gone.name, &n);
                    prop_assert!(lazy.entries.get(&n).unwrap().is_none());
                    model.remove(&n);
                },
                Change::Insert(e) => {
                    model.insert(e.name.clone(), (*e).clone());
                    lazy.entries.insert(e);
                }
            }
            prop_assert_eq!(lazy.entries.len(), model.len());
        }
        let mut scanned = Vec::new();
        lazy.entries.scan(|e| { scanned.push((e.name.clone(), e.revision)); Ok(()) }).unwrap();
        let expected: Vec<_> = model.values().map(|e| (e.name.clone(), e.revision)).collect();
        prop_assert_eq!(scanned, expected);
        let map: BTreeMap<&str, &Entry> = model.iter().map(|(n, e)| (n.as_str(), e)).collect();
        let expected = reference_with(&lazy, &map);
        prop_assert_eq!(lazy.encoded_len().unwrap(), expected.len());
        prop_assert_eq!(&*lazy.encode().unwrap(), &expected[..]);
        let again = Payload::decode(&expected).unwrap();
        prop_assert_eq!(&reference(&again), &expected);
    }

    #[test]
    fn payload_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Payload::decode(&bytes);
    }

    #[test]
    fn payload_decode_refuses_trailing_bytes(p in payload(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = p.encode().unwrap().to_vec();
        bytes.extend(extra);
        prop_assert!(Payload::decode(&bytes).is_err());
    }

    #[test]
    fn request_json_round_trips(e in entry()) {
        let req = Request::Add(Box::new(NewEntry {
            scopes: e.scopes.clone(), url: e.url.clone(), expires_at: e.expires_at,
            ..NewEntry::new(e.name.clone(), SecretInput::Value(Token::new(CANARY.into())))
        }));
        let json = serde_json::to_string(&req).unwrap();
        let back: Request = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trips(p in payload(), pass in "\\PC{1,32}") {
        let passphrase = Passphrase::new(pass.clone());
        let mut v = Vault::create(&passphrase, CHEAP, 0).unwrap();
        v.payload = p;
        let bytes = v.seal(0).unwrap();
        let f = VaultFile::parse(&bytes).unwrap();
        let key = Vault::unlock(&f, &Passphrase::new(pass)).unwrap();
        let back = Vault::open(&f, key).unwrap();
        prop_assert_eq!(reference(&back.payload), reference(&v.payload));
    }
}

#[test]
fn debug_and_display_never_show_secrets() {
    let mut v = Vault::create(&Passphrase::new(CANARY.into()), CHEAP, 0).unwrap();
    let mut e = jeton::request::execute(
        &mut v,
        Request::Add(Box::new(NewEntry::new(
            "a",
            SecretInput::Value(Token::new(CANARY.into())),
        ))),
        0,
    )
    .map(|r| format!("{r:?}"))
    .unwrap();
    v.payload.identity = Some(Identity {
        age_secret: Token::new(CANARY.into()),
        signing_key: Key::from_bytes([0x43; 32]),
        created_at: 0,
    });
    let resp = jeton::request::execute(&mut v, Request::Get { name: "a".into() }, 0).unwrap();
    let Response::Entry { entry, .. } = &resp else {
        panic!("expected an entry")
    };
    assert_eq!(entry.secret.as_ref().unwrap().expose_secret(), CANARY);
    e += &format!("{resp:?} {v:?} {:?} {:?}", v.payload, v.key());
    let err = jeton::request::execute(
        &mut v,
        Request::Get {
            name: CANARY.into(),
        },
        0,
    )
    .unwrap_err();
    assert!(!err.to_string().is_empty());
    e += &format!("{:?}", Passphrase::new(CANARY.into()));
    assert!(!e.contains(CANARY), "a secret leaked into Debug output");
    assert!(
        !e.contains("CCCCCCCC") && !e.contains("67, 67, 67"),
        "a key leaked into Debug output"
    );
}
