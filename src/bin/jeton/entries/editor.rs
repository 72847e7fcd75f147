//! `edit NAME` with no flags: the entry's metadata as text in $VISUAL or $EDITOR, checked on
//! save (and offered again on a terminal when a line is wrong), applied as one request. The
//! secret is in the text only with `--secret`; a changed secret is then applied as a rotation
//! (history, revision, audit log), an unchanged one is no change.
//!
//! The form lives in a fresh private directory ([`jeton::runtime::Scratch`]: 0700, random name,
//! its whole path checked), is created 0600, is read back through that directory without
//! following a link, and is overwritten with zeros and removed whatever happens: when the
//! command ends, on SIGHUP or SIGTERM, or by the next jeton if this one was killed. While the
//! editor runs, Ctrl-C and Ctrl-\ are the editor's.
//!
//! Only the fields whose line differs from the form shown are sent, with the revision the form
//! showed: a change made meanwhile (another command through the agent, a sync) is kept. When
//! the entry changed under the form, the edit is refused (exit 7), or, on a terminal, the form
//! opens again with the new values and the user's changes carried over.

use crate::ctx::{Ctx, Exit, unexpected};
use crate::prompt;
use jeton::agent::client::Via;
use jeton::entry::{Entry, SecretInput};
use jeton::lifecycle::LifecycleResponse;
use jeton::request::{FormEdit, Request, Response};
use jeton::runtime::{Purpose, Scratch};
use jeton::time::Time;
use jeton::{Error, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use zeroize::Zeroizing;

use super::editor_form::{Changes, carried_over, editable_secret, parse_form, text_form};

/// The form's file name in its private directory.
const FORM_FILE: &str = "entry.txt";
/// The largest form read back.
const MAX_FORM: usize = 1 << 20;

/// Edits `name` in the editor (with its secret when `with_secret`), through the agent when it
/// holds the key, else with the vault opened here (and the writer lock held while the editor
/// runs, so nothing else changes the entry meanwhile).
pub fn edit(ctx: &Ctx, name: String, with_secret: bool, now: Time) -> Result<Exit> {
    let response = match jeton::agent::client::run(&ctx.session, &show(&name))? {
        Via::Agent(outcome) => {
            crate::ctx::warn_all(&outcome.warnings);
            through_agent(ctx, entry_of(outcome.value)?, with_secret, now)?
        }
        Via::Local(_) => {
            let outcome = ctx.session.with_vault_key(
                true,
                |file| ctx.unlock(file),
                |vault| {
                    let entry = vault.entry(&name)?.clone();
                    let mut form = Form::new(&entry, with_secret)?;
                    match form.edit(&entry, now)? {
                        Some(changes) => {
                            apply(changes, &entry, |r| jeton::request::execute(vault, r, now))
                        }
                        None => Ok(nothing_changed(&entry)),
                    }
                },
            )?;
            crate::ctx::warn_all(&outcome.warnings);
            outcome.value
        }
    };
    ctx.done(response)
}

fn show(name: &str) -> Request {
    Request::Show {
        name: name.to_owned(),
    }
}

fn entry_of(response: Response) -> Result<Entry> {
    match response {
        Response::Entry { entry, .. } => Ok(*entry),
        _ => Err(unexpected()),
    }
}

fn nothing_changed(e: &Entry) -> Response {
    Response::Done(format!("{}: nothing changed", e.name))
}

/// The agent's path: nothing is held while the editor runs, so the entry may change meanwhile;
/// the save then fails with [`Error::Busy`] and, on a terminal, the form opens again.
fn through_agent(ctx: &Ctx, mut entry: Entry, with_secret: bool, now: Time) -> Result<Response> {
    let mut form = Form::new(&entry, with_secret)?;
    loop {
        let Some(changes) = form.edit(&entry, now)? else {
            return Ok(nothing_changed(&entry));
        };
        let err = match apply(changes, &entry, |r| ctx.run(r)) {
            Err(Error::Busy(msg)) => msg,
            done => return done,
        };
        let fresh = entry_of(ctx.run(show(&entry.name))?)?;
        if fresh.revision == entry.revision {
            return Err(Error::Busy(err));
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::Busy(format!(
                "{err}; run `jeton edit {}` again to edit its new values",
                entry.name
            )));
        }
        eprintln!(
            "jeton: '{}' changed while the editor was open: the form now shows its new values, with your changes carried over",
            jeton::text::Shown::line(&entry.name)
        );
        form.carry_over(&entry, &fresh)?;
        entry = fresh;
    }
}

/// Sends what the form changed, as one request made on the revision of `e` the form showed.
fn apply(
    changes: Changes,
    e: &Entry,
    mut run: impl FnMut(Request) -> Result<Response>,
) -> Result<Response> {
    let request = FormEdit {
        name: e.name.clone(),
        revision: e.revision,
        secret: changes.secret.map(SecretInput::Value),
        edit: changes.edit,
    };
    let Response::FormEdited { rotated, edited } = run(Request::FormEdit(Box::new(request)))?
    else {
        return Err(unexpected());
    };
    let mut said = Vec::new();
    if let Some(rotated) = rotated {
        let LifecycleResponse::Replaced {
            history_len,
            holders,
            ..
        } = rotated
        else {
            return Err(unexpected());
        };
        let mut msg = format!("{}: secret rotated; {history_len} previous kept", e.name);
        let mut held: Vec<String> = holders.used_by.clone();
        held.extend(holders.shared_with.iter().map(|(c, _)| c.clone()));
        held.extend(holders.received_from.clone());
        if !held.is_empty() {
            msg.push_str(&format!(
                "\nstill holding the old secret; update them: {}",
                held.join(", ")
            ));
        }
        said.push(msg);
    }
    said.extend(edited);
    Ok(Response::Done(said.join("\n")))
}

/// The form in its private directory, and the text last saved in it.
struct Form {
    scratch: Scratch,
    path: PathBuf,
    with_secret: bool,
    saved: Option<Zeroizing<String>>,
}

impl Form {
    /// The form of `e` (with its secret when `with_secret`), in a new private directory.
    fn new(e: &Entry, with_secret: bool) -> Result<Form> {
        let current = with_secret.then(|| editable_secret(e)).transpose()?;
        let scratch = Scratch::new(Purpose::Form)?;
        let path = scratch.create(FORM_FILE, text_form(e, current).as_bytes())?;
        Ok(Form {
            scratch,
            path,
            with_secret,
            saved: None,
        })
    }

    /// Runs the editor until the form parses (asking again on a terminal); what it changes
    /// against `e`.
    fn edit(&mut self, e: &Entry, now: Time) -> Result<Option<Changes>> {
        loop {
            run_editor(&self.path)?;
            let text = self.read()?;
            match parse_form(e, &text, self.with_secret, now) {
                Ok(changes) => {
                    self.saved = Some(text);
                    return Ok(changes);
                }
                Err(err) if std::io::stdin().is_terminal() => {
                    eprintln!(
                        "jeton: error: {}",
                        jeton::text::Shown::line(&err.to_string())
                    );
                    prompt::confirm("edit again", false)
                        .map_err(|_| Error::Usage(format!("{err}; nothing was changed")))?;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The saved form, read through its directory (never through a link).
    fn read(&self) -> Result<Zeroizing<String>> {
        let mut bytes = self
            .scratch
            .read(FORM_FILE, MAX_FORM)
            .map_err(|e| Error::Other(format!("{e}; nothing was changed")))?;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                Err(Error::Usage(
                    "the form is not UTF-8 text; nothing was changed".into(),
                ))
            }
        }
    }

    /// Rewrites the form with `fresh`'s values and the changes the last save made to `old`'s.
    fn carry_over(&mut self, old: &Entry, fresh: &Entry) -> Result<()> {
        let saved = self.saved.take().unwrap_or_default();
        let text = carried_over(old, fresh, &saved, self.with_secret)?;
        self.scratch.wipe(FORM_FILE);
        self.path = self.scratch.create(FORM_FILE, text.as_bytes())?;
        Ok(())
    }
}

/// Runs the editor on `file`. Ctrl-C and Ctrl-\ go to the editor meanwhile, not to jeton.
fn run_editor(file: &std::path::Path) -> Result<()> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let _editor_has_the_terminal = jeton::runtime::signals::Foreground::start();
    // Through the shell, so that an editor with arguments (`code --wait`) works.
    let status = jeton::process::command("sh")
        .args(["-c", &format!("{editor} \"$1\""), "sh"])
        .arg(file)
        .status()
        .map_err(|e| Error::Other(format!("cannot start the editor '{editor}': {e}")))?;
    if !status.success() {
        return Err(Error::Other(format!(
            "the editor '{editor}' failed ({status}); nothing was changed"
        )));
    }
    Ok(())
}
