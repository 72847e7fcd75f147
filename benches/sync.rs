//! Sync on a 10,000-entry vault with 100 entries changed on each of two devices (KDF and
//! transport excluded): the pure merge, and a whole round (verify and decrypt the other
//! device's replica, absorb, merge, seal this device's replica and its local file).

mod support;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jeton::request::{self, EntryEdit, Request};
use jeton::sync::round::{self, Incoming};
use jeton::sync::{SyncState, merge};
use std::hint::black_box;

const N: usize = 10_000;
const CHANGED: usize = 100;

fn sync_round(c: &mut Criterion) {
    let (bytes, key) = support::build(N, support::CHEAP_KDF);
    let base = support::open(&bytes, &key);
    let mut state = SyncState::new([1; 16]);
    state.absorb_local(&base.payload, 1).expect("absorb");
    // Two devices that share the synced vault, then each change 100 entries of their own
    // (and one in common, a conflict).
    let side = |device: u8, first: usize| {
        let mut v = support::open(&bytes, &key);
        let mut s = state.clone();
        s.device = [device; 16];
        for i in (first..first + CHANGED - 1).chain([0]) {
            let edit = EntryEdit {
                name: support::name(i),
                add_tags: vec![format!("changed-on-{device}")],
                ..EntryEdit::default()
            };
            request::execute(&mut v, Request::Edit(Box::new(edit)), 2).expect("edit");
        }
        (v, s)
    };
    let (a, sa) = side(1, 1);
    let (b, sb) = side(2, 5_000);

    let mut g = c.benchmark_group("sync");
    g.sample_size(20);
    g.bench_function("absorb_and_merge_10000_with_100_changed_each", |bench| {
        bench.iter_batched(
            || (sa.clone(), sb.clone()),
            |(mut sa, mut sb)| {
                sa.absorb_local(&a.payload, 3).expect("absorb");
                sb.absorb_local(&b.payload, 3).expect("absorb");
                let m = merge((&a.payload, &sa), (&b.payload, &sb)).expect("merge");
                black_box(m)
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
    whole_round(c, &bytes, &key);
}

fn whole_round(c: &mut Criterion, bytes: &[u8], key: &jeton::secret::Key) {
    let edit = |v: &mut jeton::vault::Vault, device: u8, first: usize| {
        for i in (first..first + CHANGED - 1).chain([0]) {
            let edit = EntryEdit {
                name: support::name(i),
                add_tags: vec![format!("changed-on-{device}")],
                ..EntryEdit::default()
            };
            request::execute(v, Request::Edit(Box::new(edit)), 2).expect("edit");
        }
    };
    // Device A attaches and publishes; device B clones from its replica.
    let mut a = support::open(bytes, key);
    round::attach(&mut a, 1).expect("attach");
    let first = round::round(&mut a, Vec::new(), false, 1).expect("round");
    let a_replica = first.replica.expect("replica");
    let (mut b, _) =
        round::clone_from(std::slice::from_ref(&a_replica), |_| Ok(key.clone()), 1).expect("clone");
    edit(&mut a, 1, 1);
    edit(&mut b, 2, 5_000);
    let b_round = round::round(&mut b, vec![a_replica.clone()], false, 3).expect("round");
    let incoming: Vec<Incoming> = vec![a_replica, b_round.replica.expect("replica")];
    let a_file = a.seal(0).expect("seal");

    let mut g = c.benchmark_group("sync");
    g.sample_size(20);
    g.bench_function("round_10000_with_100_changed_each", |bench| {
        bench.iter_batched(
            || (support::open(&a_file, key), incoming.clone()),
            |(mut a, incoming)| {
                let r = round::round(&mut a, incoming, false, 4).expect("round");
                assert_eq!(r.received.len(), CHANGED);
                black_box((r, a.seal(0).expect("seal")))
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, sync_round);
criterion_main!(benches);
