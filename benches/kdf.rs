//! Argon2id at the default cost (256 MiB, t=3, p=4): jeton's derivation, which maps its
//! working memory on huge pages, beside the `argon2` crate's own heap allocation.

use criterion::{Criterion, criterion_group, criterion_main};
use jeton::kdf::{self, KdfParams};
use std::hint::black_box;
use std::time::Duration;

fn kdf_default(c: &mut Criterion) {
    let p = KdfParams::default();
    let salt = [0x5a; kdf::SALT_LEN];
    let mut g = c.benchmark_group("kdf_argon2id_256MiB_t3_p4");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("jeton", |b| {
        b.iter(|| black_box(kdf::derive_bytes(b"bench passphrase", &salt, &p).expect("kdf")));
    });
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
