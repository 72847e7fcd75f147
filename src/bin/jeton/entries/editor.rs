//! `edit NAME` with no flags: the entry's metadata as text in $VISUAL or $EDITOR, checked on
//! save (and offered again on a terminal when a line is wrong), applied as one `edit` request.
//! The secret is in the text only with `--secret`; a changed secret is then applied as a
//! `rotate` (history, revision, audit log), an unchanged one is no change. The file lives in a
//! 0700 directory under XDG_RUNTIME_DIR, is created 0600, and is overwritten with zeros and
//! removed whatever happens.

use crate::ctx::{Ctx, Exit, unexpected};
use crate::prompt;
use jeton::agent::client::Via;
use jeton::entry::{Entry, SecretInput};
use jeton::lifecycle::{LifecycleRequest, LifecycleResponse};
use jeton::request::{Change, EntryEdit, Request, Response};
use jeton::secret::Token;
use jeton::time::{self, Time};
use jeton::{Error, Result};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use zeroize::Zeroizing;

const NOTE_MARK: &str = "--- note (every line below) ---";
const SECRET_MARK: &str =
    "--- secret (every line below, up to the note; a change is a rotation) ---";
const SCALARS: [&str; 4] = ["url", "username", "issuer", "contact"];
const LISTS: [&str; 3] = ["scopes", "used_by", "tags"];

/// What the editor asked for: a metadata edit, a new secret, or both.
struct Changes {
    edit: Option<EntryEdit>,
    secret: Option<Token>,
}

/// Edits `name` in the editor (with its secret when `with_secret`), through the agent when it
/// holds the key, else with the vault opened here (and the writer lock held while the editor
/// runs, so the metadata edit and the rotation are saved together).
pub fn edit(ctx: &Ctx, name: String, with_secret: bool, now: Time) -> Result<Exit> {
    let show = Request::Show { name: name.clone() };
    let response = match jeton::agent::client::run(&ctx.session, &show)? {
        Via::Agent(outcome) => {
            crate::ctx::warn_all(&outcome.warnings);
            let Response::Entry { entry, .. } = outcome.value else {
                return Err(unexpected());
            };
            let changes = in_editor(&entry, with_secret, now)?;
            apply(changes, &name, |r| ctx.run(r))?
        }
        Via::Local(_) => {
            let outcome = ctx.session.with_vault_key(
                true,
                |file| ctx.unlock(file),
                |vault| {
                    let entry = vault.entry(&name)?.clone();
                    let changes = in_editor(&entry, with_secret, now)?;
                    apply(changes, &name, |r| jeton::request::execute(vault, r, now))
                },
            )?;
            crate::ctx::warn_all(&outcome.warnings);
            outcome.value
        }
    };
    ctx.done(response)
}

/// Runs the rotation, then the metadata edit; one message for both.
fn apply(
    changes: Option<Changes>,
    name: &str,
    mut run: impl FnMut(Request) -> Result<Response>,
) -> Result<Response> {
    let Some(changes) = changes else {
        return Ok(Response::Done(format!("{name}: nothing changed")));
    };
    let mut said = Vec::new();
    if let Some(secret) = changes.secret {
        let rotate = LifecycleRequest::Rotate {
            name: name.to_owned(),
            secret: SecretInput::Value(secret),
            expires_at: Change::Keep,
        };
        let Response::Lifecycle(LifecycleResponse::Replaced {
            history_len,
            holders,
            ..
        }) = run(Request::Lifecycle(rotate))?
        else {
            return Err(unexpected());
        };
        let mut msg = format!("{name}: secret rotated; {history_len} previous kept");
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
    if let Some(edit) = changes.edit {
        match run(Request::Edit(Box::new(edit)))? {
            Response::Done(msg) => said.push(msg),
            _ => return Err(unexpected()),
        }
    }
    Ok(Response::Done(said.join("\n")))
}

/// The text form of `e`'s metadata, and of its secret when `with_secret`.
fn text_form(e: &Entry, with_secret: Option<&Token>) -> Zeroizing<String> {
    let one = |v: &Option<String>| v.clone().unwrap_or_default();
    let first = match with_secret {
        None => format!(
            "# Metadata of {name}; the secret is not here (`jeton rotate {name}` changes it).\n",
            name = e.name
        ),
        Some(_) => format!(
            "# Metadata and secret of {}; a changed secret is a rotation (the old one goes to the history).\n",
            e.name
        ),
    };
    let mut t = Zeroizing::new(format!(
        "{first}# One field a line; an empty value clears it; lists are comma-separated.\n\
         # expires: a date, an RFC 3339 time or a span from now; rotate_every: a span (90d, 6mo).\n"
    ));
    for (k, v) in SCALARS
        .iter()
        .zip([&e.url, &e.username, &e.issuer, &e.contact])
    {
        t.push_str(&format!("{k}: {}\n", one(v)));
    }
    for (k, v) in LISTS.iter().zip([&e.scopes, &e.used_by, &e.tags]) {
        t.push_str(&format!("{k}: {}\n", v.join(", ")));
    }
    t.push_str(&format!(
        "expires: {}\n",
        e.expires_at.map(time::rfc3339).unwrap_or_default()
    ));
    t.push_str(&format!(
        "rotate_every: {}\n",
        e.rotate_every.map(time::show_span).unwrap_or_default()
    ));
    if let Some(secret) = with_secret {
        // Reserved whole: growing the text would leave copies of the secret behind.
        let note = e.note.as_ref().map_or(0, |n| n.len() + 1);
        t.reserve(SECRET_MARK.len() + secret.expose_secret().len() + NOTE_MARK.len() + 3 + note);
        t.push_str(SECRET_MARK);
        t.push('\n');
        t.push_str(secret.expose_secret());
        t.push('\n');
    }
    t.push_str(NOTE_MARK);
    t.push('\n');
    if let Some(n) = &e.note {
        t.push_str(n);
        t.push('\n');
    }
    t
}

/// The secret `e` shows in the editor, refused when it has none or holds a line the form uses
/// as a marker.
fn editable_secret(e: &Entry) -> Result<&Token> {
    let secret = e
        .secret
        .as_ref()
        .ok_or_else(|| Error::Unavailable(format!("entry '{}' has no secret (revoked)", e.name)))?;
    if secret
        .expose_secret()
        .lines()
        .any(|l| l == NOTE_MARK || l == SECRET_MARK)
    {
        return Err(Error::Usage(format!(
            "the secret of '{}' holds a line the editor form uses as a marker; change it with `jeton rotate`",
            e.name
        )));
    }
    Ok(secret)
}

/// The parts of a form: field lines, the secret section (with `with_secret`), the note.
type Parts<'t> = (&'t str, Option<&'t str>, Option<&'t str>);

fn split(text: &str, with_secret: bool) -> Result<Parts<'_>> {
    let (before, note) = match text.split_once(&format!("{NOTE_MARK}\n")) {
        Some((f, n)) => (f, Some(n)),
        None => (text, None),
    };
    if !with_secret {
        return Ok((before, None, note));
    }
    let (fields, secret) = before
        .split_once(&format!("{SECRET_MARK}\n"))
        .ok_or_else(|| {
            Error::Usage(format!(
                "the line '{SECRET_MARK}' is gone; nothing was changed"
            ))
        })?;
    // The secret's last newline is the form's.
    Ok((
        fields,
        Some(secret.strip_suffix('\n').unwrap_or(secret)),
        note,
    ))
}

/// What `text` asks for, against `e`; `None` when it says what `e` holds.
fn parse_form(e: &Entry, text: &str, with_secret: bool, now: Time) -> Result<Option<Changes>> {
    let current = with_secret.then(|| editable_secret(e)).transpose()?;
    let shown = text_form(e, current);
    if *text == *shown {
        return Ok(None);
    }
    let (fields, secret, note) = split(text, with_secret)?;
    let (shown_fields, _, shown_note) = split(&shown, with_secret)?;
    let secret = match (secret, current) {
        (Some(""), _) => {
            return Err(Error::Usage(
                "the secret is empty; nothing was changed (`jeton revoke` or `jeton rm` retire a token)"
                    .into(),
            ));
        }
        (Some(new), Some(old)) if new != old.expose_secret() => Some(Token::new(new.to_owned())),
        _ => None,
    };
    let edit = if (fields, note) == (shown_fields, shown_note) {
        None
    } else {
        parse_fields(e, fields, note, now)?
    };
    if edit.is_none() && secret.is_none() {
        return Ok(None);
    }
    Ok(Some(Changes { edit, secret }))
}

/// The edit that turns `e` into what `text` says; `None` when it says what `e` holds.
#[cfg(test)]
fn parse(e: &Entry, text: &str, now: Time) -> Result<Option<EntryEdit>> {
    Ok(parse_form(e, text, false, now)?.and_then(|c| c.edit))
}

/// The metadata edit the field lines and the note ask for; `None` when they are as in `e`.
fn parse_fields(
    e: &Entry,
    fields: &str,
    note: Option<&str>,
    now: Time,
) -> Result<Option<EntryEdit>> {
    let mut values: Vec<(&str, &str)> = Vec::new();
    for (n, line) in fields.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| Error::Usage(format!("line {}: {why}", n + 1));
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("'{line}' is not `field: value`")))?;
        let key = key.trim();
        let known = SCALARS.contains(&key)
            || LISTS.contains(&key)
            || ["expires", "rotate_every"].contains(&key);
        if !known {
            return Err(bad(format!("unknown field '{key}'")));
        }
        if values.iter().any(|(k, _)| *k == key) {
            return Err(bad(format!("'{key}' is given twice")));
        }
        values.push((key, value.trim()));
    }
    let get = |k: &str| values.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let scalar = |k: &str| match get(k) {
        None => Change::Keep,
        Some("") => Change::Clear,
        Some(v) => Change::Set(v.to_owned()),
    };
    let list = |k: &str, old: &[String]| -> (Vec<String>, Vec<String>) {
        let Some(v) = get(k) else {
            return (vec![], vec![]);
        };
        let new: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let add = new.iter().filter(|n| !old.contains(n)).cloned().collect();
        let rm = old.iter().filter(|o| !new.contains(o)).cloned().collect();
        (add, rm)
    };
    let when = |k: &str, shown: String, parse: fn(&str, Time) -> Result<i64>| match get(k) {
        None => Ok(Change::Keep),
        Some(v) if v == shown => Ok(Change::Keep),
        Some("" | "never" | "none") => Ok(Change::Clear),
        Some(v) => parse(v, now).map(Change::Set),
    };
    let (add_scopes, rm_scopes) = list("scopes", &e.scopes);
    let (add_used_by, rm_used_by) = list("used_by", &e.used_by);
    let (add_tags, rm_tags) = list("tags", &e.tags);
    let note = match note.map(|n| n.trim_end_matches('\n')) {
        None => Change::Keep,
        Some("") => Change::Clear,
        Some(n) => Change::Set(n.to_owned()),
    };
    let edit = EntryEdit {
        name: e.name.clone(),
        url: scalar("url"),
        username: scalar("username"),
        issuer: scalar("issuer"),
        contact: scalar("contact"),
        note,
        expires_at: when(
            "expires",
            e.expires_at.map(time::rfc3339).unwrap_or_default(),
            time::parse_when,
        )?,
        rotate_every: when(
            "rotate_every",
            e.rotate_every.map(time::show_span).unwrap_or_default(),
            time::parse_span,
        )?,
        add_scopes,
        rm_scopes,
        add_used_by,
        rm_used_by,
        add_tags,
        rm_tags,
    };
    edit.check()?;
    let set = |c: &Change<i64>| match c {
        Change::Set(v) => Some(*v),
        _ => None,
    };
    crate::ctx::warn_short_spans(set(&edit.expires_at), set(&edit.rotate_every), now);
    Ok(Some(edit))
}

/// The temporary file: zeroed and removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(len) = std::fs::metadata(&self.0).map(|m| m.len())
            && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&self.0)
        {
            let _ = f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(0)]);
            let _ = f.sync_all();
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

fn scratch(text: &str) -> Result<Scratch> {
    let dir = jeton::agent::socket_dir().join("edit");
    jeton::agent::prepare_dir(&dir)?;
    let mut id = [0u8; 8];
    jeton::random::fill_random(&mut id)?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("entry-{hex}.txt"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::Other(format!("cannot create {}: {e}", path.display())))?;
    let scratch = Scratch(path);
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", scratch.0.display())))?;
    Ok(scratch)
}

fn run_editor(file: &std::path::Path) -> Result<()> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
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

/// Runs the editor on `e`'s text form until it parses (asking again on a terminal).
fn in_editor(e: &Entry, with_secret: bool, now: Time) -> Result<Option<Changes>> {
    let current = with_secret.then(|| editable_secret(e)).transpose()?;
    let file = scratch(&text_form(e, current))?;
    loop {
        run_editor(&file.0)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(&file.0)
                .map_err(|err| Error::Other(format!("cannot read {}: {err}", file.0.display())))?,
        );
        match parse_form(e, &text, with_secret, now) {
            Ok(edit) => return Ok(edit),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let id = vec![0u8; 16];
        let json = serde_json::json!({
            "id": id, "revision": 1, "name": "svc/a", "secret": null, "secret_set_at": 0,
            "scopes": ["read", "write"], "url": "https://x.example", "username": null,
            "issuer": null, "contact": null, "used_by": [], "tags": ["ci"],
            "note": "two\nlines", "created_at": 0, "updated_at": 0,
            "expires_at": 1_800_000_000, "rotate_every": 7_776_000, "last_rotated_at": null,
            "status": "Active", "history": [], "shared_with": [], "received_from": null,
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_text_form_round_trips_to_no_change() {
        let e = entry();
        let text = text_form(&e, None);
        assert!(
            text.contains("url: https://x.example\n"),
            "{}",
            text.as_str()
        );
        assert!(text.contains("rotate_every: 90d\n"), "{}", text.as_str());
        assert!(parse(&e, &text, 0).unwrap().is_none());
        // The same values written differently are still no change.
        let spaced = text.replace("scopes: read, write", "scopes:  read ,write ");
        let edit = parse(&e, &spaced, 0).unwrap().unwrap();
        assert!(edit.add_scopes.is_empty() && edit.rm_scopes.is_empty());
        assert_eq!(edit.expires_at, Change::Keep);
        assert_eq!(edit.url, Change::Set("https://x.example".into()));
    }

    #[test]
    fn the_secret_form_round_trips_and_refuses_marker_lines() {
        let mut e = entry();
        e.secret = Some(Token::new("one\ntwo".into()));
        let text = text_form(&e, e.secret.as_ref());
        assert!(parse_form(&e, &text, true, 0).unwrap().is_none());
        let changed = text.replace("one\ntwo\n", "three\n");
        let c = parse_form(&e, &changed, true, 0).unwrap().unwrap();
        assert_eq!(c.secret.unwrap().expose_secret(), "three");
        assert!(c.edit.is_none());
        e.secret = Some(Token::new(format!("x\n{NOTE_MARK}")));
        assert_eq!(editable_secret(&e).unwrap_err().exit_code(), 2);
        e.secret = None;
        assert_eq!(editable_secret(&e).unwrap_err().exit_code(), 5);
    }

    #[test]
    fn changes_and_mistakes() {
        let e = entry();
        let text = text_form(&e, None)
            .replace("scopes: read, write", "scopes: read, admin")
            .replace("url: https://x.example", "url:")
            .replace("two\nlines", "one line");
        let edit = parse(&e, &text, 0).unwrap().unwrap();
        assert_eq!(
            (edit.add_scopes, edit.rm_scopes),
            (vec!["admin".into()], vec!["write".into()])
        );
        assert_eq!(edit.url, Change::Clear);
        assert_eq!(edit.note, Change::Set("one line".into()));
        for bad in [
            "colour: red\n",
            "url: a\nurl: b\n",
            "just words\n",
            "rotate_every: 6m\n",
        ] {
            let text = format!("{bad}{NOTE_MARK}\n");
            assert_eq!(parse(&e, &text, 0).unwrap_err().exit_code(), 2, "{bad}");
        }
    }
}
