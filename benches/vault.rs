//! The cold paths without the KDF (SPEC §9): open + decrypt + decode, add + save, get and list,
//! on vaults of 100, 10,000 and 100,000 entries.

mod support;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use jeton::request::{self, ListFilter, Request};
use jeton::store::Store;
use std::hint::black_box;
use std::time::Duration;

fn cold_paths(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    for n in support::SIZES {
        let (bytes, key) = support::build(n, support::CHEAP_KDF);
        let store = Store::new(
            dir.path().join(format!("vault-{n}.jeton")),
            Duration::from_secs(10),
        );
        {
            let guard = store.lock().expect("lock");
            store
                .replace(&bytes, &guard, jeton::store::Previous::Keep)
                .expect("write vault");
        }

        let mut g = c.benchmark_group("vault");
        g.sample_size(if n >= 100_000 { 20 } else { 50 });
        g.throughput(Throughput::Elements(n as u64));

        // The opened vault is dropped (its secrets wiped, its memory freed) outside the timing:
        // `drop_opened` times that part.
        g.bench_with_input(BenchmarkId::new("open_decrypt_decode", n), &n, |b, _| {
            b.iter_batched(
                || (),
                |()| {
                    let file = store.read().expect("read");
                    jeton::vault::Vault::open_owned(file, key.clone()).expect("open")
                },
                BatchSize::PerIteration,
            );
        });
        g.bench_with_input(BenchmarkId::new("drop_opened", n), &n, |b, _| {
            b.iter_batched(
                || support::open(&bytes, &key),
                drop,
                BatchSize::PerIteration,
            );
        });

        let mut i = n;
        g.bench_with_input(BenchmarkId::new("add_save", n), &n, |b, _| {
            b.iter_batched(
                || support::open(&bytes, &key),
                |mut vault| {
                    i += 1;
                    let now = jeton::time::now();
                    let add = Request::Add(Box::new(support::new_entry(i, now)));
                    request::execute(&mut vault, add, now).expect("add");
                    let guard = store.lock().expect("lock");
                    let sealed = vault.seal(0).expect("seal");
                    store
                        .replace(&sealed, &guard, jeton::store::Previous::Keep)
                        .expect("save");
                    vault
                },
                BatchSize::PerIteration,
            );
        });

        let mut vault = support::open(&bytes, &key);
        let name = support::name(n / 2);
        g.bench_with_input(BenchmarkId::new("get_in_memory", n), &n, |b, _| {
            b.iter(|| {
                let get = Request::Get { name: name.clone() };
                black_box(request::execute(&mut vault, get, 0).expect("get"))
            });
        });
        g.bench_with_input(BenchmarkId::new("list_in_memory", n), &n, |b, _| {
            b.iter(|| {
                let list = Request::List(ListFilter::default());
                black_box(request::execute(&mut vault, list, 0).expect("list"))
            });
        });
        g.finish();
    }
}

criterion_group!(benches, cold_paths);
criterion_main!(benches);
