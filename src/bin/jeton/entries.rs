//! The entry commands: add, get, show, list, edit (with flags, or in $EDITOR), rename, rm.
//! Flags are validated into a request before any I/O.

mod editor;
mod editor_form;

use crate::args::{GenerateArgs, charset, nonempty};
use crate::ctx::{Ctx, Exit, emit, unexpected, warn_short_spans};
use crate::{clip, output, prompt};
use clap::{Args, ValueEnum};
use jeton::request::{
    Change, EntryEdit, ListFilter, NewEntry, Request, Response, SecretInput, StatusFilter,
};
use jeton::secret::{SecretText, Token};
use jeton::time::{self, Time};
use jeton::{Error, Result};
use zeroize::Zeroizing;

/// Statuses for `list --status`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// In use
    Active,
    /// Disabled
    Disabled,
    /// Revoked tombstones
    Revoked,
    /// Everything
    All,
}

/// `add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Entry name, e.g. github/ci-deploy
    pub name: String,
    #[command(flatten)]
    pub meta: MetaArgs,
    #[command(flatten)]
    pub generate: GenerateArgs,
    /// The secret is a one-time code seed: an otpauth:// URI or a base32 seed, from the prompt or stdin
    #[arg(long, conflicts_with = "generate")]
    pub totp: bool,
    /// With --generate: also copy the new secret to the clipboard (as `get --clip` does)
    #[command(flatten)]
    pub copy: clip::ClipArgs,
}

/// Metadata flags of `add`.
#[derive(Debug, Args, Clone)]
pub struct MetaArgs {
    /// Scope granted to the token (repeatable)
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// URL of the service (used by the credential helpers to match)
    #[arg(long)]
    pub url: Option<String>,
    /// Account name at the service
    #[arg(long)]
    pub username: Option<String>,
    /// Issuing service
    #[arg(long)]
    pub issuer: Option<String>,
    /// Technical contact, e.g. 'Ops <ops@example.com>'
    #[arg(long)]
    pub contact: Option<String>,
    /// Integration holding a copy, e.g. ci:github-actions:DEPLOY_TOKEN (repeatable)
    #[arg(long = "used-by", value_name = "X")]
    pub used_by: Vec<String>,
    /// Tag (repeatable)
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Free note
    #[arg(long)]
    pub note: Option<String>,
    /// Token expiry at its provider: 2027-01-31, RFC 3339, or a span from now (90d)
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub expires: Option<String>,
    /// Rotation schedule, e.g. 90d
    #[arg(long, value_name = "SPAN")]
    pub rotate_every: Option<String>,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Entry name
    pub name: String,
    /// Print this field instead of the secret (url, username, issuer, contact, scopes, ...)
    #[arg(long, short = 'f', value_name = "F")]
    pub field: Option<String>,
    /// No trailing newline
    #[arg(short = 'n')]
    pub no_newline: bool,
    #[command(flatten)]
    pub copy: clip::ClipArgs,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Entry name
    pub name: String,
    /// Show the secret
    #[arg(long)]
    pub reveal: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only names holding this text, anywhere, in any case
    pub pattern: Option<String>,
    /// Only entries with this scope
    #[arg(long)]
    pub scope: Option<String>,
    /// Only entries with this tag
    #[arg(long)]
    pub tag: Option<String>,
    /// Which statuses to show
    #[arg(long, value_enum, default_value_t = StatusArg::Active)]
    pub status: StatusArg,
    /// Only entries expired, expiring or due for rotation within SPAN
    #[arg(long, value_name = "SPAN")]
    pub due: Option<String>,
    /// Names only, as a tree of folders (split on '/')
    #[arg(long)]
    pub tree: bool,
}

/// `edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Entry name
    pub name: String,
    /// Add a scope (repeatable)
    #[arg(long, value_name = "S")]
    pub add_scope: Vec<String>,
    /// Remove a scope (repeatable)
    #[arg(long, value_name = "S")]
    pub rm_scope: Vec<String>,
    /// Add an integration holding a copy (repeatable)
    #[arg(long, value_name = "X")]
    pub add_used_by: Vec<String>,
    /// Remove an integration (repeatable)
    #[arg(long, value_name = "X")]
    pub rm_used_by: Vec<String>,
    /// Add a tag (repeatable)
    #[arg(long, value_name = "T")]
    pub add_tag: Vec<String>,
    /// Remove a tag (repeatable)
    #[arg(long, value_name = "T")]
    pub rm_tag: Vec<String>,
    /// URL ('' clears)
    #[arg(long)]
    pub url: Option<String>,
    /// Username ('' clears)
    #[arg(long)]
    pub username: Option<String>,
    /// Issuer ('' clears)
    #[arg(long)]
    pub issuer: Option<String>,
    /// Technical contact ('' clears)
    #[arg(long)]
    pub contact: Option<String>,
    /// Note ('' clears)
    #[arg(long)]
    pub note: Option<String>,
    /// Expiry: a date, RFC 3339, a span from now, or 'never'
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub expires: Option<String>,
    /// Rotation schedule, or 'never'
    #[arg(long, value_name = "SPAN")]
    pub rotate_every: Option<String>,
    /// Open the editor on the secret too; a changed secret is a rotation (history, log)
    #[arg(long)]
    pub secret: bool,
}

impl EditArgs {
    /// No change asked for on the command line: the editor opens.
    pub fn is_bare(&self) -> bool {
        let lists = [
            &self.add_scope,
            &self.rm_scope,
            &self.add_used_by,
            &self.rm_used_by,
            &self.add_tag,
            &self.rm_tag,
        ];
        let fields = [
            &self.url,
            &self.username,
            &self.issuer,
            &self.contact,
            &self.note,
            &self.expires,
            &self.rotate_every,
        ];
        lists.iter().all(|l| l.is_empty()) && fields.iter().all(|f| f.is_none())
    }
}

/// `add`.
pub fn add(ctx: &Ctx, a: AddArgs, now: Time) -> Result<Exit> {
    let copy = a.copy.checked()?;
    if copy.is_some() && !a.generate.generate {
        return Err(Error::Usage(
            "--clip copies a secret jeton makes: use it with --generate".into(),
        ));
    }
    let m = a.meta;
    let expires_at = m
        .expires
        .as_deref()
        .map(|w| time::parse_when(w, now))
        .transpose()?;
    let rotate_every = m
        .rotate_every
        .as_deref()
        .map(|s| time::parse_span(s, now))
        .transpose()?;
    warn_short_spans(expires_at, rotate_every, now);
    let mut req = NewEntry {
        name: a.name,
        // Replaced below, once the name and metadata passed: the secret is read last.
        secret: SecretInput::Generate {
            length: a.generate.length,
            charset: charset(a.generate.charset),
        },
        scopes: m.scopes,
        url: nonempty(m.url),
        username: nonempty(m.username),
        issuer: nonempty(m.issuer),
        contact: nonempty(m.contact),
        used_by: m.used_by,
        tags: m.tags,
        note: nonempty(m.note),
        expires_at,
        rotate_every,
    };
    // A team entry (`TEAM:NAME`) is checked by its name in the team.
    match jeton::team::split(&req.name.clone()) {
        Some((team, name)) => {
            jeton::team::validate_name(team)?;
            let full = std::mem::replace(&mut req.name, name.to_owned());
            req.check()?;
            req.name = full;
        }
        None => req.check()?,
    }
    // A name that is taken is refused before a secret is typed for it.
    if a.generate.asks() {
        ctx.refuse_taken(&req.name)?;
    }
    req.secret = if a.totp {
        prompt::otp_seed(&req.name)?
    } else {
        a.generate.secret_input()?
    };
    let Some(copy) = copy else {
        let r = ctx.run(Request::Add(Box::new(req)))?;
        return ctx.done(r);
    };
    // Made here rather than by the executor, so that it can be copied; the clipboard is
    // checked first, so an entry is not added with a secret nobody has seen.
    copy.reachable()?;
    let made = std::mem::replace(
        &mut req.secret,
        SecretInput::Value(Token::new(String::new())),
    );
    let secret = made.resolve()?;
    req.secret = SecretInput::Value(secret.clone());
    let name = req.name.clone();
    let r = ctx.run(Request::Add(Box::new(req)))?;
    ctx.done(r)?;
    copy.value(&name, secret.expose_secret().as_bytes(), ctx.quiet)?;
    Ok(Exit::Ok)
}

/// `get`.
pub fn get(ctx: &Ctx, a: GetArgs, now: Time) -> Result<Exit> {
    if let Some(f) = &a.field {
        jeton::entry::Entry::check_field(f)?;
    }
    let copy = a.copy.checked()?;
    let Response::Entry {
        entry,
        default_contact,
        ..
    } = ctx.run(Request::Get { name: a.name })?
    else {
        return Err(unexpected());
    };
    if let Some(t) = entry.expires_at.filter(|t| *t <= now) {
        eprintln!(
            "jeton: warning: '{}' expired at {}; rotate it with `jeton rotate {}`",
            entry.name,
            time::rfc3339(t),
            entry.name
        );
    }
    let text = if ctx.json && copy.is_none() {
        output::secret_json_line(output::entry_json(&entry, default_contact.as_deref(), true))
    } else {
        let field = a.field.as_deref().unwrap_or("secret");
        let value = match field {
            "contact" => entry.contact.clone().or(default_contact),
            f => entry.field(f)?,
        };
        let value =
            Zeroizing::new(value.ok_or_else(|| {
                Error::NotFound(format!("entry '{}' has no {field}", entry.name))
            })?);
        if let Some(copy) = &copy {
            copy.value(&entry.name, value.as_bytes(), ctx.quiet)?;
            return Ok(Exit::Ok);
        }
        let mut text = SecretText::with_capacity(value.len() + 1);
        text.push_str(&value);
        if !a.no_newline {
            text.push_str("\n");
        }
        text
    };
    emit(text.as_bytes())?;
    Ok(Exit::Ok)
}

/// `show`.
pub fn show(ctx: &Ctx, a: ShowArgs) -> Result<Exit> {
    let Response::Entry {
        entry,
        default_contact,
        waiting,
    } = ctx.run(Request::Show { name: a.name })?
    else {
        return Err(unexpected());
    };
    let dc = default_contact.as_deref();
    let text = if ctx.json {
        let mut v = output::entry_json(&entry, dc, a.reveal);
        // Only for an entry with a value waiting, so that other entries print as before.
        if let (false, Some(o)) = (waiting.is_empty(), v.as_object_mut()) {
            let w = waiting.iter().map(|c| {
                serde_json::json!({
                    "field": c.field,
                    "current": c.current,
                    "other": c.other,
                    "device": c.device,
                    "written_at": time::rfc3339(c.at),
                })
            });
            o.insert("waiting".into(), w.collect());
        }
        output::secret_json_line(v)
    } else {
        let mut text = output::entry_text(&entry, dc, a.reveal);
        for c in &waiting {
            text.push_str(&format!(
                "waiting  {}: {} (device {}, {}); choose with `jeton sync resolve {}`\n",
                c.field,
                c.other,
                &c.device[..8],
                time::rfc3339(c.at),
                jeton::text::Shown::line(&c.name)
            ));
        }
        text
    };
    emit(text.as_bytes())?;
    Ok(Exit::Ok)
}

/// `list`.
pub fn list(ctx: &Ctx, a: ListArgs, now: Time) -> Result<Exit> {
    if a.tree && ctx.json {
        return Err(Error::Usage(
            "--tree is for people; --json gives every name in a list".into(),
        ));
    }
    let status = match a.status {
        StatusArg::Active => StatusFilter::Active,
        StatusArg::Disabled => StatusFilter::Disabled,
        StatusArg::Revoked => StatusFilter::Revoked,
        StatusArg::All => StatusFilter::All,
    };
    let due_within = a
        .due
        .as_deref()
        .map(|s| time::parse_span(s, now))
        .transpose()?;
    let filter = ListFilter {
        pattern: a.pattern.clone(),
        scope: a.scope,
        tag: a.tag,
        status,
        due_within,
    };
    let Response::List(items) = ctx.run(Request::List(filter))? else {
        return Err(unexpected());
    };
    let at = output::Horizon {
        now,
        within: due_within.unwrap_or(jeton::lifecycle::DEFAULT_CHECK_WITHIN),
    };
    if ctx.json {
        emit(output::json_line(&output::list_json(&items, at)).as_bytes())?;
    } else if !items.is_empty() && a.tree {
        emit(output::list_tree(&items, output::colour()).as_bytes())?;
    } else if !items.is_empty() {
        emit(output::list_text(&items, output::colour(), at).as_bytes())?;
    } else {
        ctx.say_nothing_found(a.pattern.as_deref())?;
    }
    Ok(Exit::Ok)
}

/// `edit`: with no change asked for on the command line, in $EDITOR.
pub fn edit(ctx: &Ctx, a: EditArgs, now: Time) -> Result<Exit> {
    if a.is_bare() {
        return editor::edit(ctx, a.name, a.secret, now);
    }
    if a.secret {
        return Err(Error::Usage(
            "--secret opens the editor; give it alone, with no field flag".into(),
        ));
    }
    let edit = EntryEdit {
        name: a.name,
        url: change(a.url),
        username: change(a.username),
        issuer: change(a.issuer),
        contact: change(a.contact),
        note: change(a.note),
        expires_at: change_time(a.expires, now, time::parse_when)?,
        rotate_every: change_time(a.rotate_every, now, time::parse_span)?,
        add_scopes: a.add_scope,
        rm_scopes: a.rm_scope,
        add_used_by: a.add_used_by,
        rm_used_by: a.rm_used_by,
        add_tags: a.add_tag,
        rm_tags: a.rm_tag,
    };
    edit.check()?;
    let set = |c: &Change<i64>| match c {
        Change::Set(v) => Some(*v),
        _ => None,
    };
    warn_short_spans(set(&edit.expires_at), set(&edit.rotate_every), now);
    let r = ctx.run(Request::Edit(Box::new(edit)))?;
    ctx.done(r)
}

/// `rename`.
pub fn rename(ctx: &Ctx, old: String, new: String) -> Result<Exit> {
    jeton::team::check_entry_name(&new, true)?;
    let r = ctx.run(Request::Rename { from: old, to: new })?;
    ctx.done(r)
}

/// `rm`.
pub fn rm(ctx: &Ctx, name: String) -> Result<Exit> {
    prompt::confirm(
        &format!(
            "delete '{}' and its history for good",
            jeton::entry::printable(&name)
        ),
        ctx.yes,
    )?;
    let r = ctx.run(Request::Remove { name })?;
    ctx.done(r)
}

fn change(s: Option<String>) -> Change<String> {
    match s {
        None => Change::Keep,
        Some(v) if v.trim().is_empty() => Change::Clear,
        Some(v) => Change::Set(v.trim().to_owned()),
    }
}

fn change_time(
    s: Option<String>,
    now: Time,
    parse: fn(&str, Time) -> Result<i64>,
) -> Result<Change<i64>> {
    Ok(match s.as_deref().map(str::trim) {
        None => Change::Keep,
        Some("" | "never" | "none") => Change::Clear,
        Some(v) => Change::Set(parse(v, now)?),
    })
}
