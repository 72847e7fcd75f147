//! The vault side of the pipeline: each request reads or advances one entry's issuer record,
//! checks the run is where the caller thinks, and writes an audit event without any secret.

use super::record::{self, CallEnd, CreateCall, Record, Run, Step};
use super::{IssuerRequest, IssuerResponse, Listed, Outcome, State, out_of_step};
use crate::entry::{Entry, Status, is_internal, printable};
use crate::secret::Token;
use crate::time::Time;
use crate::vault::Vault;
use crate::{Error, Result};

pub(super) fn execute(
    vault: &mut Vault,
    request: IssuerRequest,
    now: Time,
) -> Result<IssuerResponse> {
    match request {
        IssuerRequest::SetRecipe { name, recipe } => {
            let (e, mut rec, pending, retired) = loaded(vault, &name)?;
            let label = recipe.label();
            rec.recipe = Some(recipe);
            record::store(vault, &e.id, &rec, pending, retired, now)?;
            vault.audit(now, "issuer", Some(&name), format!("recipe set: {label}"));
            Ok(IssuerResponse::Done(format!("{name}: recipe {label}")))
        }
        IssuerRequest::AddIntegration { name, integration } => {
            let (e, mut rec, pending, retired) = loaded(vault, &name)?;
            let iname = integration.name.clone();
            rec.integrations.retain(|i| i.name != iname);
            rec.integrations.push(integration);
            record::store(vault, &e.id, &rec, pending, retired, now)?;
            vault.audit(
                now,
                "integration",
                Some(&name),
                format!("integration {iname} added"),
            );
            Ok(IssuerResponse::Done(format!(
                "{name}: integration {iname} added"
            )))
        }
        IssuerRequest::RemoveIntegration { name, integration } => {
            let (e, mut rec, pending, retired) = loaded(vault, &name)?;
            let before = rec.integrations.len();
            rec.integrations.retain(|i| i.name != integration);
            if rec.integrations.len() == before {
                return Err(Error::NotFound(format!(
                    "'{}' has no integration named '{}' (see `jeton integration list {}`)",
                    printable(&name),
                    printable(&integration),
                    printable(&name)
                )));
            }
            record::store(vault, &e.id, &rec, pending, retired, now)?;
            vault.audit(
                now,
                "integration",
                Some(&name),
                format!("integration {integration} removed"),
            );
            Ok(IssuerResponse::Done(format!(
                "{name}: integration {integration} removed"
            )))
        }
        IssuerRequest::State { name } => {
            let (entry, record, pending, retired) = loaded(vault, &name)?;
            Ok(IssuerResponse::State(Box::new(State {
                entry: Box::new(entry),
                record,
                pending,
                retired,
            })))
        }
        IssuerRequest::List => list(vault),
        IssuerRequest::Begin { name, plan, leaked } => {
            let (e, mut rec, _, _) = loaded(vault, &name)?;
            require_active(&e)?;
            if let Some(run) = &rec.run {
                return Err(Error::Exists(format!(
                    "a rotation of '{}' is in progress (next step: {}); continue it with \
                     `jeton rotate {} --resume`",
                    printable(&name),
                    run.plan
                        .get(run.next)
                        .map_or("finish".into(), |s| s.to_string()),
                    printable(&name)
                )));
            }
            if plan.first() != Some(&Step::Create) {
                return Err(Error::Other(
                    "internal error: a plan begins with create".into(),
                ));
            }
            rec.run = Some(Run {
                plan,
                next: 0,
                leaked,
                started_at: now,
                new_key_id: None,
                old_key_id: e.username.clone(),
                new_expires_at: None,
                id: Some(run_id()?),
                create: CreateCall::NotMade,
            });
            record::store(vault, &e.id, &rec, None, None, now)?;
            let how = if leaked {
                " (leaked: fast revocation)"
            } else {
                ""
            };
            vault.audit(now, "issuer", Some(&name), format!("rotation begun{how}"));
            Ok(IssuerResponse::Done(format!("{name}: rotation begun")))
        }
        IssuerRequest::CreateCalled { name, keys_before } => {
            let (e, mut rec, pending, retired) = loaded(vault, &name)?;
            let run = creating(&mut rec, &name)?;
            if run.id.is_none() {
                run.id = Some(run_id()?);
            }
            run.create = CreateCall::Made {
                at: now,
                keys_before,
                ended: CallEnd::Unknown,
            };
            record::store(vault, &e.id, &rec, pending, retired, now)?;
            Ok(IssuerResponse::Done(format!("{name}: creating")))
        }
        IssuerRequest::CreateRefused { name } => {
            let (e, mut rec, pending, retired) = loaded(vault, &name)?;
            let run = creating(&mut rec, &name)?;
            let CreateCall::Made { ended, .. } = &mut run.create else {
                return Err(out_of_step(&name, "made no create call"));
            };
            *ended = CallEnd::Refused;
            record::store(vault, &e.id, &rec, pending, retired, now)?;
            vault.audit(
                now,
                "issuer",
                Some(&name),
                "the issuer refused to create a new credential; nothing was made",
            );
            Ok(IssuerResponse::Done(format!("{name}: create refused")))
        }
        IssuerRequest::Done {
            name,
            index,
            outcome,
        } => done(vault, &name, index, outcome, now),
        IssuerRequest::Forget { name } => {
            let e = vault.entry(&name)?.clone();
            let wiped = record::wipe(vault, &e.id, now)?;
            vault.audit(
                now,
                "issuer",
                Some(&name),
                format!("rotation state wiped; secrets wiped: {wiped}"),
            );
            Ok(IssuerResponse::Done(format!(
                "{name}: rotation state wiped"
            )))
        }
    }
}

type Loaded = (Entry, Record, Option<Token>, Option<Token>);

/// A new run id: 16 random bytes, hex.
fn run_id() -> Result<String> {
    Ok(data_encoding::HEXLOWER.encode(&crate::random::random_id::<16>()?))
}

/// The run of `rec`, which must be at its create step.
fn creating<'a>(rec: &'a mut Record, name: &str) -> Result<&'a mut Run> {
    let run = rec
        .run
        .as_mut()
        .ok_or_else(|| out_of_step(name, "is not in progress"))?;
    if run.plan.get(run.next) != Some(&Step::Create) {
        return Err(out_of_step(name, "is at another step"));
    }
    Ok(run)
}

fn loaded(vault: &Vault, name: &str) -> Result<Loaded> {
    if is_internal(name) {
        return Err(crate::vault::not_found(name));
    }
    let e = vault.entry(name)?.clone();
    let (record, pending, retired) = record::load(vault, &e)?;
    Ok((e, record, pending, retired))
}

fn require_active(e: &Entry) -> Result<()> {
    match e.status {
        Status::Active => Ok(()),
        _ => Err(Error::Unavailable(format!(
            "entry '{}' is {}; only an active entry is rotated",
            printable(&e.name),
            e.status.label()
        ))),
    }
}

fn list(vault: &Vault) -> Result<IssuerResponse> {
    let mut out = Vec::new();
    let mut records = Vec::new();
    vault.payload.entries.scan(|e| {
        if !is_internal(&e.name) {
            records.push((e.name.clone(), e.id));
        }
        Ok(())
    })?;
    for (name, id) in records {
        if let Some(r) = vault.payload.entries.get(&record::record_name(&id))? {
            let rec: Record =
                serde_json::from_str(r.note.as_deref().unwrap_or("{}")).unwrap_or_default();
            out.push(Listed {
                name,
                recipe: rec.recipe,
                run: rec.run,
            });
        }
    }
    Ok(IssuerResponse::List(out))
}

fn done(
    vault: &mut Vault,
    name: &str,
    index: usize,
    outcome: Outcome,
    now: Time,
) -> Result<IssuerResponse> {
    let (e, mut rec, mut pending, mut retired) = loaded(vault, name)?;
    let Some(mut run) = rec.run.take() else {
        return Err(out_of_step(name, "is not in progress"));
    };
    if index != run.next || index >= run.plan.len() {
        return Err(out_of_step(name, "is at another step"));
    }
    let step = run.plan[index].clone();
    let detail = match (&step, outcome) {
        (
            Step::Create,
            Outcome::Created {
                secret,
                key_id,
                expires_at,
            },
        ) => {
            if e.secret.as_ref() == Some(&secret) {
                return Err(Error::Other(format!(
                    "the issuer gave '{}' the same secret as the current one",
                    printable(name)
                )));
            }
            pending = Some(secret);
            if let CreateCall::Made { ended, .. } = &mut run.create {
                *ended = CallEnd::Succeeded;
            }
            let detail = match &key_id {
                Some(k) => format!("new credential created at the issuer (key id {k})"),
                None => "new credential created at the issuer".into(),
            };
            run.new_key_id = key_id;
            run.new_expires_at = expires_at;
            detail
        }
        (Step::Create, Outcome::Nothing | Outcome::LeftToUser) => {
            return Err(Error::Other("internal error: create made nothing".into()));
        }
        (Step::Integration(i), _) => format!("integration {i} updated"),
        (Step::Verify, _) => "new credential verified".into(),
        (Step::Switch, _) => {
            let Some(new) = pending.take() else {
                return Err(out_of_step(name, "has no pending credential"));
            };
            retired = switch(vault, name, new, &run, now)?;
            "new credential made current; old one awaits revocation".into()
        }
        (Step::RevokeOld, how) => {
            forget_unkept(vault, name, retired.take())?;
            let key = run
                .old_key_id
                .as_ref()
                .map(|k| format!(" (key id {k})"))
                .unwrap_or_default();
            if matches!(how, Outcome::LeftToUser) {
                format!("old credential{key} left for the user to revoke at the issuer")
            } else {
                format!("old credential revoked at the issuer{key}")
            }
        }
    };
    vault.audit(now, "issuer", Some(name), detail);
    run.next += 1;
    let finished = run.next == run.plan.len();
    rec.run = (!finished).then_some(run);
    if finished {
        vault.audit(now, "issuer", Some(name), "rotation complete");
        forget_unkept(vault, name, pending.take())?;
        forget_unkept(vault, name, retired.take())?;
    }
    record::store(vault, &e.id, &rec, pending, retired, now)?;
    Ok(IssuerResponse::Done(format!("{name}: {step}")))
}

/// Drops a secret the issuer record held; when the entry does not keep it either (its history
/// limit cut it), the previous generation is forgotten on save, as for any wiped secret.
fn forget_unkept(vault: &mut Vault, name: &str, secret: Option<Token>) -> Result<()> {
    let Some(secret) = secret else {
        return Ok(());
    };
    let e = vault.entry(name)?;
    let kept = e.secret.as_ref() == Some(&secret) || e.history.iter().any(|h| h.secret == secret);
    if !kept {
        vault.forget_previous_on_save();
    }
    Ok(())
}

/// Makes `new` the current secret of `name` (the old one joins its history, cut to the limit)
/// and returns the old one, which the record keeps until it is revoked.
fn switch(
    vault: &mut Vault,
    name: &str,
    new: Token,
    run: &Run,
    now: Time,
) -> Result<Option<Token>> {
    let e = vault.entry_mut(name)?;
    let set_at = e.secret_set_at;
    let old = e.secret.replace(new);
    vault.retire(name, old.clone(), set_at, now)?;
    let e = vault.entry_mut(name)?;
    if let Some(k) = &run.new_key_id {
        e.username = Some(k.clone());
    }
    if let Some(t) = run.new_expires_at {
        e.expires_at = Some(t);
    }
    e.secret_set_at = now;
    e.last_rotated_at = Some(now);
    e.revision += 1;
    e.updated_at = now;
    let kept = e.history.iter().any(|h| Some(&h.secret) == old.as_ref());
    let detail = if kept || old.is_none() {
        "secret rotated at the issuer; previous kept in history"
    } else {
        "secret rotated at the issuer; previous not kept in history (history limit), only until \
         it is revoked"
    };
    vault.audit(now, "rotate", Some(name), detail);
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuer::Recipe;
    use crate::request::{NewEntry, Request, execute as run};

    fn vault() -> Vault {
        let cheap = crate::kdf::KdfParams {
            memory_kib: 8192,
            iterations: 1,
            lanes: 1,
        };
        let mut v = Vault::create(&crate::secret::Passphrase::new("p".into()), cheap, 1).unwrap();
        run(
            &mut v,
            Request::Add(Box::new(NewEntry::bare("a", "old"))),
            1,
        )
        .unwrap();
        let recipe = Recipe::Command {
            create: "x".into(),
            revoke: None,
            verify: None,
        };
        let name = "a".to_owned();
        execute(&mut v, IssuerRequest::SetRecipe { name, recipe }, 2).unwrap();
        v
    }

    fn begin(v: &mut Vault) {
        let plan = vec![Step::Create, Step::Verify, Step::Switch, Step::RevokeOld];
        let name = "a".to_owned();
        execute(
            v,
            IssuerRequest::Begin {
                name,
                plan,
                leaked: false,
            },
            3,
        )
        .unwrap();
    }

    fn done(v: &mut Vault, index: usize, outcome: Outcome) -> Result<IssuerResponse> {
        let name = "a".to_owned();
        execute(
            v,
            IssuerRequest::Done {
                name,
                index,
                outcome,
            },
            4,
        )
    }

    fn state(v: &mut Vault) -> State {
        match execute(v, IssuerRequest::State { name: "a".into() }, 5).unwrap() {
            IssuerResponse::State(s) => *s,
            _ => unreachable!(),
        }
    }

    fn created(s: &str) -> Outcome {
        Outcome::Created {
            secret: Token::new(s.into()),
            key_id: Some("AKIANEW".into()),
            expires_at: None,
        }
    }

    #[test]
    fn steps_are_recorded_in_order_only() {
        let mut v = vault();
        assert!(done(&mut v, 0, created("new")).is_err(), "no run begun");
        begin(&mut v);
        assert!(
            done(&mut v, 1, Outcome::Nothing).is_err(),
            "verify before create"
        );
        done(&mut v, 0, created("new")).unwrap();
        assert!(done(&mut v, 0, created("newer")).is_err(), "create twice");
        let s = state(&mut v);
        assert_eq!(s.pending.unwrap().expose_secret(), "new");
        assert_eq!(
            s.entry.secret.unwrap().expose_secret(),
            "old",
            "switched early"
        );
        assert_eq!(s.record.run.unwrap().next, 1);
    }

    #[test]
    fn the_switch_makes_the_pending_current_and_keeps_the_old_until_revoked() {
        let mut v = vault();
        begin(&mut v);
        done(&mut v, 0, created("new")).unwrap();
        done(&mut v, 1, Outcome::Nothing).unwrap();
        done(&mut v, 2, Outcome::Nothing).unwrap();
        let s = state(&mut v);
        assert_eq!(s.entry.secret.as_ref().unwrap().expose_secret(), "new");
        assert_eq!(s.entry.username.as_deref(), Some("AKIANEW"));
        assert_eq!(s.entry.history[0].secret.expose_secret(), "old");
        assert!(s.pending.is_none());
        assert_eq!(s.retired.unwrap().expose_secret(), "old");
        done(&mut v, 3, Outcome::Nothing).unwrap();
        let s = state(&mut v);
        assert!(s.record.run.is_none() && s.retired.is_none() && s.pending.is_none());
        assert!(s.record.recipe.is_some(), "the recipe stays");
        let log: Vec<String> = v.payload.audit.iter().map(|e| e.detail.clone()).collect();
        assert!(log.iter().any(|d| d == "rotation complete"), "{log:?}");
    }

    #[test]
    fn a_history_cut_by_the_switch_forgets_the_previous_file() {
        for (limit, cut) in [(1, false), (0, true)] {
            let mut v = vault();
            v.payload.settings.history_limit = limit;
            begin(&mut v);
            done(&mut v, 0, created("new")).unwrap();
            done(&mut v, 1, Outcome::Nothing).unwrap();
            v.saved();
            done(&mut v, 2, Outcome::Nothing).unwrap();
            assert_eq!(v.forgets_previous(), cut, "history limit {limit}");
            let e = v.entry("a").unwrap();
            assert_eq!(e.history.len(), limit as usize);
            // The record keeps the old secret until it is revoked; dropping it then, when the
            // entry does not keep it either, forgets the previous file too.
            v.saved();
            done(&mut v, 3, Outcome::Nothing).unwrap();
            assert_eq!(v.forgets_previous(), cut, "history limit {limit}");
        }
    }

    #[test]
    fn the_create_call_is_recorded_before_it_is_made_and_its_refusal_after() {
        use crate::issuer::{CallEnd, CreateCall};
        let mut v = vault();
        begin(&mut v);
        let run = state(&mut v).record.run.unwrap();
        assert_eq!(run.create, CreateCall::NotMade);
        let id = run.id.clone().unwrap();
        assert_eq!(id.len(), 32);
        let name = "a".to_owned();
        let refused = IssuerRequest::CreateRefused { name: name.clone() };
        assert!(execute(&mut v, refused.clone(), 4).is_err(), "no call made");
        let keys_before = Some(vec!["AKIAOLD".to_owned()]);
        execute(&mut v, IssuerRequest::CreateCalled { name, keys_before }, 4).unwrap();
        let run = state(&mut v).record.run.unwrap();
        assert!(run.create.may_have_made());
        execute(&mut v, refused, 4).unwrap();
        let run = state(&mut v).record.run.unwrap();
        assert!(!run.create.may_have_made());
        assert!(matches!(
            run.create,
            CreateCall::Made {
                at: 4,
                ended: CallEnd::Refused,
                ..
            }
        ));
        assert_eq!(run.id.as_deref(), Some(id.as_str()), "the id changed");
        done(&mut v, 0, created("new")).unwrap();
        let run = state(&mut v).record.run.unwrap();
        assert!(matches!(
            run.create,
            CreateCall::Made {
                ended: CallEnd::Succeeded,
                ..
            }
        ));
        let late = IssuerRequest::CreateCalled {
            name: "a".into(),
            keys_before: None,
        };
        assert!(execute(&mut v, late, 5).is_err(), "past the create step");
    }

    #[test]
    fn a_run_recorded_by_an_older_version_may_have_made_a_credential() {
        let old = r#"{"plan":["create","verify","switch","revoke-old"],"next":0,"leaked":false,
            "started_at":3,"new_key_id":null,"old_key_id":"AKIA1"}"#;
        let run: Run = serde_json::from_str(old).unwrap();
        assert_eq!(run.create, crate::issuer::CreateCall::Unrecorded);
        assert!(run.create.may_have_made() && run.id.is_none());
    }

    #[test]
    fn revoking_or_removing_the_entry_wipes_its_in_flight_secrets() {
        use crate::lifecycle::LifecycleRequest;
        let mut v = vault();
        begin(&mut v);
        done(&mut v, 0, created("new")).unwrap();
        v.saved();
        let r = LifecycleRequest::Revoke {
            name: "a".into(),
            reason: None,
        };
        run(&mut v, Request::Lifecycle(r), 6).unwrap();
        assert!(v.forgets_previous());
        let id = v.entry("a").unwrap().id;
        let rec = v
            .payload
            .entries
            .get(&record::record_name(&id))
            .unwrap()
            .unwrap();
        assert!(rec.secret.is_none() && rec.history.is_empty());
        run(&mut v, Request::Remove { name: "a".into() }, 7).unwrap();
        assert!(!v.payload.entries.contains_key(&record::record_name(&id)));
    }
}
