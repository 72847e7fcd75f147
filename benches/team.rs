//! A member list of 50 members and 1,000 changes, read as kept, from the remote (every
//! signature checked) and from its age file; a team of 50 members and 5,000 entries: joining,
//! one sync round, and `get TEAM:NAME` through the agent beside a personal `get` through the
//! agent (the agent holds both vaults open, as for `jeton get ops:NAME` once it is unlocked).

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use jeton::agent::client::{self, Via};
use jeton::request::{self, Request, Response, Session};
use jeton::secret::Passphrase;
use jeton::share::contact::{self, ContactKeys};
use jeton::share::identity;
use jeton::store::{Previous, Store};
use jeton::sync::round::Incoming;
use jeton::team::{Role, TeamRequest, TeamResponse};
use jeton::vault::Vault;
use std::hint::black_box;
use std::time::Duration;

const MEMBERS: usize = 50;
const ENTRIES: usize = 5_000;

fn person() -> Vault {
    let now = jeton::time::now();
    let mut v = Vault::create(
        &Passphrase::new(support::PASS.into()),
        support::CHEAP_KDF,
        now,
    )
    .expect("create");
    identity::ensure(&mut v, now).expect("identity");
    v
}

fn card(v: &Vault) -> String {
    identity::keys(v).expect("keys").card(None).to_line()
}

fn team(v: &mut Vault, r: TeamRequest) -> TeamResponse {
    match request::execute(v, Request::Team(r), jeton::time::now()).expect("team request") {
        Response::Team(t) => *t,
        _ => panic!("unexpected response"),
    }
}

fn befriend(v: &mut Vault, name: &str, line: &str) {
    let keys = ContactKeys::from_card(line).expect("card");
    contact::add(v, name.into(), keys, false, jeton::time::now()).expect("contact");
}

fn split(publish: Vec<(String, Incoming)>) -> (Vec<Incoming>, Vec<Incoming>) {
    let (members, replicas): (Vec<_>, Vec<_>) =
        publish.into_iter().partition(|(d, _)| d == "members");
    (
        members.into_iter().map(|(_, f)| f).collect(),
        replicas.into_iter().map(|(_, f)| f).collect(),
    )
}

fn bench(c: &mut Criterion) {
    let now = jeton::time::now();
    let mut admin = person();
    let mut member = person();
    befriend(&mut member, "admin", &card(&admin));
    let TeamResponse::Created { vault, .. } =
        team(&mut admin, TeamRequest::Create { team: "ops".into() })
    else {
        panic!()
    };
    befriend(&mut admin, "m0", &card(&member));
    team(
        &mut admin,
        TeamRequest::Add {
            team: "ops".into(),
            contact: "m0".into(),
            role: Role::Writer,
        },
    );
    for i in 1..MEMBERS - 1 {
        let line = card(&person());
        befriend(&mut admin, &format!("m{i}"), &line);
        team(
            &mut admin,
            TeamRequest::Add {
                team: "ops".into(),
                contact: format!("m{i}"),
                role: Role::Writer,
            },
        );
    }
    // The team's entries, written by the admin.
    let m = jeton::team::membership(&admin, "ops").expect("membership");
    let mut tv = jeton::team::open_vault(vault, &m).expect("open team vault");
    for i in 0..ENTRIES {
        request::execute(
            &mut tv,
            Request::Add(Box::new(support::new_entry(i, now))),
            now,
        )
        .expect("add");
    }
    let bytes = tv.seal(0).expect("seal");
    let round = |v: &mut Vault, bytes: Vec<u8>, members: Vec<Incoming>, replicas: Vec<Incoming>| {
        match team(
            v,
            TeamRequest::Round {
                team: "ops".into(),
                vault: bytes,
                members,
                replicas,
                accept_rollback: false,
            },
        ) {
            TeamResponse::Rounded { vault, publish, .. } => (vault, publish),
            _ => panic!(),
        }
    };
    let (admin_bytes, publish) = round(&mut admin, bytes, vec![], vec![]);
    let admin_bytes = admin_bytes.expect("saved");
    let (members, replicas) = split(publish);
    assert_eq!(replicas.len(), 1);

    let mut g = c.benchmark_group("team_50_members_5000_entries");
    g.sample_size(10);
    // Each join takes a new local name: a personal vault joins a team once per name.
    let mut joins = 0;
    g.bench_function("join", |b| {
        b.iter(|| {
            joins += 1;
            let name = Some(format!("ops{joins}"));
            black_box(team(
                &mut member,
                TeamRequest::Join {
                    name,
                    members: members.clone(),
                    replicas: replicas.clone(),
                },
            ))
        })
    });
    let TeamResponse::Joined { vault: joined, .. } = team(
        &mut member,
        TeamRequest::Join {
            name: None,
            members: members.clone(),
            replicas: replicas.clone(),
        },
    ) else {
        panic!()
    };
    // The admin changes 10 entries; the member's round brings them in.
    let m = jeton::team::membership(&admin, "ops").expect("membership");
    let mut tv = jeton::team::open_vault(admin_bytes, &m).expect("open");
    for i in 0..10 {
        let r = jeton::lifecycle::LifecycleRequest::Rotate {
            name: support::name(i),
            secret: jeton::request::SecretInput::Generate {
                length: 40,
                charset: jeton::request::Charset::Alnum,
            },
            expires_at: jeton::request::Change::Keep,
        };
        request::execute(&mut tv, Request::Lifecycle(r), now).expect("rotate");
    }
    let (_, publish) = round(
        &mut admin,
        tv.seal(0).expect("seal"),
        members.clone(),
        replicas.clone(),
    );
    let (members2, replicas2) = split(publish);
    let members2: Vec<Incoming> = members.iter().cloned().chain(members2).collect();
    g.bench_function("sync_round_10_changed", |b| {
        b.iter(|| {
            black_box(round(
                &mut member,
                joined.clone(),
                members2.clone(),
                replicas2.clone(),
            ))
        })
    });
    g.finish();

    // get through the agent: the personal vault beside the team's.
    let runtime = tempfile::tempdir().expect("tempdir");
    // SAFETY: set before the agent thread starts; no other thread reads the environment.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", runtime.path()) };
    let agent_dir = jeton::agent::socket_dir();
    std::thread::spawn(move || jeton::agent::server::serve(&agent_dir).expect("agent"));
    while client::status().ok().flatten().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    request::execute(
        &mut member,
        Request::Add(Box::new(support::new_entry(0, now))),
        now,
    )
    .expect("add");
    let personal = Store::new(dir.path().join("vault.jeton"), Duration::from_secs(10));
    let team_store = Store::new(
        dir.path().join("vault.jeton.teams/ops.jeton"),
        Duration::from_secs(10),
    );
    std::fs::create_dir_all(dir.path().join("vault.jeton.teams")).expect("mkdir");
    for (store, bytes) in [
        (&personal, member.seal(0).expect("seal")),
        (&team_store, joined.clone()),
    ] {
        let guard = store.lock().expect("lock");
        store
            .replace(&bytes, &guard, Previous::Keep)
            .expect("write");
    }
    client::unlock(
        personal.path(),
        Passphrase::new(support::PASS.into()),
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
    .expect("unlock");
    let session = Session {
        store: personal,
        state_dir: None,
        accept_rollback: false,
    };
    let name = support::name(ENTRIES / 2);
    let get = Request::Get {
        name: support::name(0),
    };
    match client::run(&session, &get).expect("get") {
        Via::Agent(_) => {}
        Via::Local(_) => panic!("the agent did not answer"),
    }
    let team_get = || match client::run_team(&session, "ops", &Request::Get { name: name.clone() })
        .expect("team get")
    {
        Via::Agent(o) => o,
        Via::Local(_) => panic!("the agent did not answer"),
    };
    black_box(team_get());
    let mut g = c.benchmark_group("agent_get");
    g.bench_function("personal", |b| {
        b.iter(|| black_box(client::run(&session, &get).expect("get")))
    });
    g.bench_function("team_5000_entries", |b| b.iter(|| black_box(team_get())));
    g.finish();
    client::stop().expect("stop the agent");
}

/// 50 members and 1,000 changes: the creation, 49 additions, then role changes, with a
/// removal and re-addition every 100 changes (each removal a new epoch).
fn member_list(c: &mut Criterion) {
    use jeton::team::members::{Body, Card, Change, EpochKey, Signed};
    use jeton::team::{Known, Team};
    let people: Vec<(ed25519_dalek::SigningKey, age::x25519::Identity, Card)> = (0..MEMBERS)
        .map(|i| {
            let key = ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32]);
            let age = age::x25519::Identity::generate();
            let card = Card {
                name: format!("m{i}"),
                age_recipient: age.to_public().to_string(),
                signing_key: key.verifying_key().to_bytes(),
            };
            (key, age, card)
        })
        .collect();
    let id = [7; 16];
    let admin = &people[0];
    let mut changes: Vec<Signed> = Vec::new();
    let mut sign = |change: Change| {
        let parents = changes
            .last()
            .map(|s: &Signed| vec![s.id()])
            .unwrap_or_default();
        let body = Body {
            team: id,
            author: admin.2.signing_key,
            parents,
            change,
        };
        changes.push(Signed::sign(&body, &admin.0).expect("sign"));
    };
    sign(Change::Create {
        name: "ops".into(),
        admin: admin.2.clone(),
        key: EpochKey::generate().expect("key"),
    });
    let mut i = 1;
    while i < 1_000 {
        let who = &people[1 + i % (MEMBERS - 1)].2;
        let change = if i < MEMBERS {
            Change::Add {
                member: who.clone(),
                role: Role::Writer,
                key: None,
            }
        } else if i % 100 == 0 {
            Change::Remove {
                signing_key: who.signing_key,
                key: EpochKey::generate().expect("key"),
            }
        } else {
            Change::Add {
                member: who.clone(),
                role: if i % 2 == 0 {
                    Role::Reader
                } else {
                    Role::Writer
                },
                key: None,
            }
        };
        sign(change);
        i += 1;
    }
    let root = changes[0].id();
    let kept = Known {
        root: Some(root),
        checked: changes.clone(),
        ..Known::default()
    };
    let team = Team::compute(id, kept.clone()).expect("compute");
    assert_eq!(team.members.len(), MEMBERS);
    assert_eq!(team.signed().len(), 1_000);
    let file = jeton::team::seal_list(&team).expect("seal");
    let mut g = c.benchmark_group("member_list_50_members_1000_changes");
    g.bench_function("kept", |b| {
        b.iter(|| black_box(Team::compute(id, kept.clone()).expect("compute")))
    });
    let received = Known {
        root: Some(root),
        received: changes.clone(),
        ..Known::default()
    };
    g.bench_function("received_every_signature_checked", |b| {
        b.iter(|| black_box(Team::compute(id, received.clone()).expect("compute")))
    });
    // A round: the list kept, and a member's file holding it (nothing new to check).
    g.bench_function("kept_and_a_file_of_it", |b| {
        b.iter(|| {
            let jeton::team::Opened::List { changes, .. } =
                jeton::team::open_list(&file, &people[7].1)
            else {
                panic!("not readable")
            };
            let known = Known {
                received: changes,
                ..kept.clone()
            };
            black_box(Team::compute(id, known).expect("compute"))
        })
    });
    g.finish();
}

criterion_group!(benches, member_list, bench);
criterion_main!(benches);
