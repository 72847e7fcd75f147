//! A warm `get` through the agent (SPEC §9): the request framed, sent over the agent's Unix
//! socket, checked against the file's stamp, answered from the decoded vault the agent keeps.
//! The agent runs in this process, on its own thread, as `jeton agent start` runs it; the time of
//! starting a `jeton` process is measured beside `pass` by `benches/peers.sh`.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jeton::agent::client::{self, Via};
use jeton::request::{Request, Session};
use jeton::secret::Passphrase;
use jeton::store::Store;
use std::hint::black_box;
use std::time::Duration;

fn warm_get(c: &mut Criterion) {
    let runtime = tempfile::tempdir().expect("tempdir");
    // SAFETY: set before any other thread of this process exists.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", runtime.path()) };
    let agent_dir = jeton::agent::socket_dir();
    std::thread::spawn(move || jeton::agent::server::serve(&agent_dir).expect("agent"));
    while client::status().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("agent");
    for n in [1_000, 100_000] {
        let (bytes, _) = support::build(n, support::CHEAP_KDF);
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
        client::unlock(
            store.path(),
            Passphrase::new(support::PASS.into()),
            Duration::from_secs(3600),
            Duration::from_secs(3600),
        )
        .expect("unlock");
        let session = Session {
            store,
            state_dir: None,
            accept_rollback: false,
        };
        let get = Request::Get {
            name: support::name(n / 2),
        };
        match client::run(&session, &get).expect("get") {
            Via::Agent(_) => {}
            Via::Local(_) => panic!("the agent did not answer"),
        }
        g.bench_with_input(BenchmarkId::new("get", n), &n, |b, _| {
            b.iter(|| black_box(client::run(&session, &get).expect("get")));
        });
    }
    g.finish();
    client::stop().expect("stop the agent");
}

criterion_group!(benches, warm_get);
criterion_main!(benches);
