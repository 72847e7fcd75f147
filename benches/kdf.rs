//! Argon2id at the default cost (256 MiB, t=3, p=4): jeton's derivation with each block function
//! this processor can run, and with the `argon2` crate's, all in memory mapped on huge pages;
//! then the `argon2` crate alone, on its own heap allocation.

use criterion::{Criterion, criterion_group, criterion_main};
use jeton::kdf::{self, KdfParams, Kernel};
use std::hint::black_box;
use std::time::Duration;

fn kdf_default(c: &mut Criterion) {
    let p = KdfParams::default();
    let salt = [0x5a; kdf::SALT_LEN];
    let mut g = c.benchmark_group("kdf_argon2id_256MiB_t3_p4");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let choices = Kernel::ALL
        .iter()
        .filter(|k| k.available() && **k != Kernel::Portable)
        .map(|k| (format!("jeton_{k:?}").to_lowercase(), Some(*k)))
        .chain([("jeton_argon2_crate".to_owned(), None)]);
    for (name, kernel) in choices {
        g.bench_function(name, |b| {
            b.iter(|| {
                let key = kdf::derive_bytes_with(b"bench passphrase", &salt, &p, kernel);
                black_box(key.expect("kdf"))
            });
        });
    }
    g.bench_function("argon2_crate_heap", |b| {
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(p.memory_kib, p.iterations, p.lanes, Some(32)).expect("params"),
        );
        b.iter(|| {
            let mut out = [0u8; 32];
            argon
                .hash_password_into(b"bench passphrase", &salt, &mut out)
                .expect("kdf");
            black_box(out)
        });
    });
    g.finish();
}

criterion_group!(benches, kdf_default);
criterion_main!(benches);
