//! The rotation pipeline, run by a front end: it reads the entry's state, runs each step's child
//! processes ([`super::recipe`]) and records each step done with an [`IssuerRequest`] before
//! the next begins. The front end passes the requests to the vault (locally or through the
//! agent), so every step is saved through the normal save path.
//!
//! The order keeps the token in use working at every step: create the new credential, store it
//! as pending, update the integrations, verify it, make it current, and only then revoke the
//! old one. The leak order moves the switch and the revocation right after the store.

use super::recipe::{self, Credential, NotCreated};
use super::record::{CreateCall, Recipe, Record, Run, Step};
use super::{IssuerRequest, IssuerResponse, Outcome, State};
use crate::entry::{Entry, printable};
use crate::secret::Token;
use crate::{Error, Result};

/// What a pipeline needs from its front end.
pub trait Frontend {
    /// Runs an issuer request against the vault (and saves when it changed it).
    fn issuer(&mut self, request: IssuerRequest) -> Result<IssuerResponse>;
    /// Says what is happening (one line, no secret).
    fn progress(&mut self, line: &str);
    /// Says what the user must look at, even when told to be quiet (one line, no secret).
    fn warn(&mut self, line: &str);
    /// With no recipe: guides the user through making the new token at the issuer by hand and
    /// returns it.
    fn manual_create(&mut self, entry: &Entry) -> Result<Token>;
}

/// How to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Revoke the old credential as soon as the new one is stored.
    pub leaked: bool,
    /// Continue the run in progress instead of beginning one.
    pub resume: bool,
    /// Print the plan, change nothing.
    pub dry_run: bool,
}

/// How a pipeline ended.
#[derive(Clone, Debug)]
pub struct Report {
    /// The plan (for a dry run, what would be done).
    pub plan: Vec<Step>,
    /// The recipe used, `None` for the manual path.
    pub recipe: Option<Recipe>,
    /// True when the old credential was revoked by the recipe (false: the user must).
    pub revoked_at_issuer: bool,
}

/// The steps of a run for `record`.
pub fn plan(record: &Record, leaked: bool) -> Vec<Step> {
    let integrations = record
        .integrations
        .iter()
        .map(|i| Step::Integration(i.name.clone()));
    let recipe = record.recipe.as_ref();
    // No verify step where nothing would be checked: no recipe, or a command without --verify.
    let verify = recipe.is_some_and(Recipe::verifies).then_some(Step::Verify);
    let mut out = vec![Step::Create];
    if leaked || recipe.is_some_and(Recipe::revokes_on_create) {
        out.extend([Step::Switch, Step::RevokeOld]);
        out.extend(integrations);
        out.extend(verify);
    } else {
        out.extend(integrations);
        out.extend(verify);
        out.extend([Step::Switch, Step::RevokeOld]);
    }
    out
}

/// What `step` does with `recipe` (`None`: the manual path), as the plan and progress say it.
pub fn step_text(step: &Step, recipe: Option<&Recipe>) -> String {
    match (step, recipe) {
        (Step::Create, None) => "take the new token, made by hand at the issuer".into(),
        (Step::RevokeOld, r) if !r.is_some_and(Recipe::revokes) => {
            "remind you to revoke the old credential at the issuer (jeton cannot)".into()
        }
        _ => step.to_string(),
    }
}

fn state(fe: &mut dyn Frontend, name: &str) -> Result<State> {
    match fe.issuer(IssuerRequest::State { name: name.into() })? {
        IssuerResponse::State(s) => Ok(*s),
        _ => Err(Error::unexpected_response()),
    }
}

/// Rotates `name` at its issuer (or continues the run in progress with `opts.resume`).
pub fn rotate(fe: &mut dyn Frontend, name: &str, opts: Options) -> Result<Report> {
    let s = state(fe, name)?;
    let recipe = s.record.recipe.clone();
    let plan = match (&s.record.run, opts.resume) {
        (Some(run), true) => run.plan.clone(),
        (None, true) => {
            return Err(Error::NotFound(format!(
                "no rotation of '{}' is in progress (start one with `jeton rotate {} --at-issuer`)",
                printable(name),
                printable(name)
            )));
        }
        (_, false) => plan(&s.record, opts.leaked),
    };
    let mut report = Report {
        plan: plan.clone(),
        recipe: recipe.clone(),
        revoked_at_issuer: false,
    };
    if let (Some(r), Some(secret), false) = (&recipe, s.entry.secret.as_ref(), opts.resume) {
        let current = Credential {
            secret,
            key_id: s.entry.username.as_deref(),
            url: s.entry.url.as_deref(),
        };
        recipe::preflight(r, &current)?;
        if let Recipe::Npm { password_entry } = r {
            // Refused before the run begins: a password entry that is not there.
            state(fe, password_entry)?;
        }
    }
    if opts.dry_run {
        return Ok(report);
    }
    if !opts.resume {
        fe.issuer(IssuerRequest::Begin {
            name: name.into(),
            plan: plan.clone(),
            leaked: opts.leaked,
        })?;
    }
    loop {
        let s = state(fe, name)?;
        let Some(run) = s.record.run.clone() else {
            return Ok(report);
        };
        let Some(step) = run.plan.get(run.next).cloned() else {
            return Ok(report);
        };
        let at = format!("{}/{}", run.next + 1, run.plan.len());
        let text = step_text(&step, recipe.as_ref());
        fe.progress(&format!("{name}: step {at}: {text}"));
        let outcome = match one_step(fe, name, &s, &step) {
            Ok((outcome, revoked)) => {
                report.revoked_at_issuer |= revoked;
                outcome
            }
            Err(e) => return Err(stopped(name, &s, &step, &at, e)),
        };
        fe.issuer(IssuerRequest::Done {
            name: name.into(),
            index: run.next,
            outcome,
        })?;
    }
}

/// Runs one step's child processes; returns what to record, and whether it revoked at the
/// issuer.
fn one_step(fe: &mut dyn Frontend, name: &str, s: &State, step: &Step) -> Result<(Outcome, bool)> {
    let run = s
        .record
        .run
        .as_ref()
        .ok_or_else(|| Error::Other("internal error: a step outside a run".into()))?;
    let e = &s.entry;
    let e_url = e.url.as_deref();
    let current_secret = e
        .secret
        .as_ref()
        .ok_or_else(|| Error::Unavailable("the entry has no secret".into()))?;
    let current = Credential {
        secret: current_secret,
        key_id: e.username.as_deref(),
        url: e_url,
    };
    let pending = || {
        s.pending.as_ref().map(|p| Credential {
            secret: p,
            key_id: run.new_key_id.as_deref(),
            url: e_url,
        })
    };
    // The new credential: pending before the switch, current after it.
    let switched = run.plan[..run.next].contains(&Step::Switch);
    let new = || -> Result<Credential<'_>> {
        if switched {
            Ok(current.clone())
        } else {
            pending().ok_or_else(|| Error::Other("the new credential is missing".into()))
        }
    };
    let recipe = s.record.recipe.as_ref();
    match step {
        Step::Create => {
            let created = match recipe {
                Some(r) => create(fe, name, run, r, &current)?,
                None => recipe::Created {
                    secret: fe.manual_create(e)?,
                    key_id: None,
                    expires_at: None,
                },
            };
            Ok((
                Outcome::Created {
                    secret: created.secret,
                    key_id: created.key_id,
                    expires_at: created.expires_at,
                },
                false,
            ))
        }
        Step::Integration(n) => {
            let i = s
                .record
                .integrations
                .iter()
                .find(|i| &i.name == n)
                .ok_or_else(|| Error::NotFound(format!("integration '{n}' was removed")))?;
            recipe::integrate(i, e, &new()?)?;
            Ok((Outcome::Nothing, false))
        }
        Step::Verify => {
            if let Some(r) = recipe {
                recipe::verify(r, &new()?)?;
            }
            Ok((Outcome::Nothing, false))
        }
        Step::Switch => Ok((Outcome::Nothing, false)),
        Step::RevokeOld => {
            let Some(old) = s.retired.as_ref() else {
                return Ok((Outcome::Nothing, false));
            };
            let old = Credential {
                secret: old,
                key_id: run.old_key_id.as_deref(),
                url: e_url,
            };
            let revoked = match recipe {
                Some(r) => recipe::revoke(r, &old, &new()?, true)?,
                None => false,
            };
            if !revoked {
                // Said even when quiet: only the user can do it.
                fe.warn(&format!(
                    "revoke the old token of '{}' at its issuer{} now: jeton cannot do it for \
                     this issuer",
                    printable(&e.name),
                    e.url
                        .as_deref()
                        .map(|u| format!(" ({})", printable(u)))
                        .unwrap_or_default()
                ));
                return Ok((Outcome::LeftToUser, false));
            }
            Ok((Outcome::Nothing, true))
        }
    }
}

/// The create step with a recipe: first what an earlier call of this run may have left at the
/// issuer, then the call, recorded (with the issuer's keys before it) before it is made, and
/// recorded again if the issuer refuses it.
fn create(
    fe: &mut dyn Frontend,
    name: &str,
    run: &Run,
    r: &Recipe,
    current: &Credential<'_>,
) -> Result<recipe::Created> {
    after_unknown_create(fe, name, run, r, current)?;
    let login = login(fe, r)?;
    let keys_before = recipe::keys(r, current)?;
    fe.issuer(IssuerRequest::CreateCalled {
        name: name.into(),
        keys_before: keys_before.clone(),
    })?;
    let run_id = match &run.id {
        Some(id) => Some(id.clone()),
        None => state(fe, name)?.record.run.and_then(|r| r.id),
    };
    match recipe::create(r, current, login.as_ref(), run_id.as_deref()) {
        Ok(created) => Ok(created),
        Err(NotCreated {
            error,
            refused: true,
        }) => {
            fe.issuer(IssuerRequest::CreateRefused { name: name.into() })?;
            Err(
                match recipe::refusal_hint(r, keys_before.as_deref(), current.key_id) {
                    Some(hint) => Error::Other(format!("{}; {hint}", message(&error))),
                    None => error,
                },
            )
        }
        Err(NotCreated { error, .. }) => Err(error),
    }
}

/// Before a create, when an earlier create call of this run may have made a credential that
/// was never stored (it was interrupted, or the run was recorded by an older version that kept
/// no account of its calls): deletes what is provably that call's, and says what may be left.
fn after_unknown_create(
    fe: &mut dyn Frontend,
    name: &str,
    run: &Run,
    r: &Recipe,
    current: &Credential<'_>,
) -> Result<()> {
    if !run.create.may_have_made() {
        return Ok(());
    }
    let keys_before = match &run.create {
        CreateCall::Made { keys_before, .. } => keys_before.as_deref(),
        _ => None,
    };
    let found = recipe::clean_orphans(r, current, keys_before, run.started_at)?;
    for k in &found.deleted {
        fe.progress(&format!(
            "{name}: deleted key {k}: the interrupted create of this rotation made it (it was \
             not there before the call) and it was never stored"
        ));
    }
    let why = if matches!(run.create, CreateCall::Unrecorded) {
        "this rotation was begun by an older jeton, which did not record its create call"
    } else {
        "the create call of this rotation was interrupted"
    };
    let n = printable(name);
    if !found.unknown.is_empty() {
        let keys = found.unknown.join(", ");
        fe.warn(&format!(
            "a credential may exist at the issuer and must be checked: {why}; the user has \
             key {keys} besides the current one of '{n}', which jeton did not delete: if nothing \
             uses it, delete it (`aws iam delete-access-key --access-key-id KEY`)"
        ));
    } else if !found.listed {
        let id = match (&run.create, &run.id) {
            (CreateCall::Made { .. }, Some(id)) => {
                format!(" (its create command had JETON_ROTATION_ID={id})")
            }
            _ => String::new(),
        };
        let look = match r {
            Recipe::Npm { .. } => " (see `npm token list`)",
            _ => "",
        };
        fe.warn(&format!(
            "a credential may exist at the issuer and must be checked: {why}{id}, so it may \
             have made one for '{n}' that was never stored{look}"
        ));
    }
    Ok(())
}

/// The account login `r` needs to make a token: for `npm`, the password entry's secret and,
/// when `NAME/otp` or `NAME/totp` holds a seed, the current one-time code.
fn login(fe: &mut dyn Frontend, r: &Recipe) -> Result<Option<recipe::Login>> {
    let Recipe::Npm { password_entry } = r else {
        return Ok(None);
    };
    let Some(password) = state(fe, password_entry)?.entry.secret else {
        return Ok(None);
    };
    let mut otp = None;
    for name in crate::otp::companions(password_entry) {
        let seed = match state(fe, &name) {
            Ok(s) => s.entry.secret,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if let Some(seed) = seed {
            let code = crate::otp::code(&name, seed.expose_secret(), crate::time::now())?;
            otp = Some(zeroize::Zeroizing::new(code.code));
            break;
        }
    }
    Ok(Some(recipe::Login { password, otp }))
}

/// The error for a step that failed: which step, why, where the credentials stand, and how to
/// continue. The kind (and so the exit code) of the cause is kept.
fn stopped(name: &str, s: &State, step: &Step, at: &str, cause: Error) -> Error {
    let switched = s.retired.is_some()
        || s.record
            .run
            .as_ref()
            .is_some_and(|r| r.plan[..r.next].contains(&Step::Switch));
    let standing = if switched {
        let left: Vec<String> = s
            .record
            .run
            .iter()
            .flat_map(|r| r.plan[r.next..].iter())
            .filter_map(|st| match st {
                Step::Integration(i) => Some(i.clone()),
                _ => None,
            })
            .collect();
        if left.is_empty() {
            "the new credential is current".to_owned()
        } else {
            format!(
                "the new credential is current; integrations still to update: {}",
                left.join(", ")
            )
        }
    } else {
        "the old credential is still current".to_owned()
    };
    let msg = format!(
        "rotation of '{n}' stopped at step {at} ({step}): {cause}; {standing}; continue with \
         `jeton rotate {n} --resume`",
        n = printable(name),
        cause = message(&cause)
    );
    match cause {
        Error::Usage(_) => Error::Usage(msg),
        Error::NotFound(_) => Error::NotFound(msg),
        Error::Unavailable(_) => Error::Unavailable(msg),
        _ => Error::Other(msg),
    }
}

fn message(e: &Error) -> String {
    match e {
        Error::Usage(m)
        | Error::Unlock(m)
        | Error::NotFound(m)
        | Error::Unavailable(m)
        | Error::Integrity(m)
        | Error::Busy(m)
        | Error::Exists(m)
        | Error::Other(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `revoke --at-issuer`: revokes at the issuer the current credential of `name`, and any new
/// one a run made and the old one it has not revoked yet, then wipes the run. Returns how many
/// credentials were revoked by the recipe (0 without one: the user must do it).
pub fn revoke_at_issuer(fe: &mut dyn Frontend, name: &str) -> Result<usize> {
    let s = state(fe, name)?;
    let Some(recipe) = s.record.recipe.as_ref() else {
        return Ok(0);
    };
    let run = s.record.run.as_ref();
    let e_url = s.entry.url.as_deref();
    let mut creds: Vec<Credential<'_>> = Vec::new();
    if let Some(cur) = s.entry.secret.as_ref() {
        creds.push(Credential {
            secret: cur,
            key_id: s.entry.username.as_deref(),
            url: e_url,
        });
    }
    if let (Some(p), Some(r)) = (s.pending.as_ref(), run) {
        creds.push(Credential {
            secret: p,
            key_id: r.new_key_id.as_deref(),
            url: e_url,
        });
    }
    if let (Some(old), Some(r)) = (s.retired.as_ref(), run) {
        creds.push(Credential {
            secret: old,
            key_id: r.old_key_id.as_deref(),
            url: e_url,
        });
    }
    let mut revoked = 0;
    // Each credential authenticates its own revocation (with the recipe's own environment
    // credentials for a recipe that uses them): it may be the only one left.
    for c in &creds {
        fe.progress(&format!(
            "{}: revoking {} at the issuer",
            printable(name),
            c.key_id
                .map_or("the credential".into(), |k| format!("key {k}"))
        ));
        if recipe::revoke(recipe, c, c, false).map_err(|e| {
            Error::Other(format!(
                "revoke of '{}' at the issuer failed: {}; nothing was wiped locally",
                printable(name),
                message(&e)
            ))
        })? {
            revoked += 1;
        }
    }
    if s.pending.is_some() || s.retired.is_some() || run.is_some() {
        fe.issuer(IssuerRequest::Forget { name: name.into() })?;
    }
    Ok(revoked)
}
