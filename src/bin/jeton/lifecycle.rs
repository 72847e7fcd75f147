//! The lifecycle commands: rotate, history, rollback, disable, enable, revoke, check, log and
//! config; and rotation at the issuer (`issuer`, `integration`, `rotate --at-issuer`).
//! Arguments -> [`LifecycleRequest`] -> output; the work happens in `jeton::lifecycle`.

mod issuer;

pub use issuer::{IntegrationCommand, IssuerCommand, integration, issuer};

use crate::args::{Deferred, GenerateArgs};
use crate::ctx::unexpected;
use crate::ctx::{Ctx, Exit, emit, warn_short_spans};
use crate::output::{Table, json_line, push_shown_secret, secret_json_line};
use crate::prompt;
use clap::{Args, Subcommand, ValueEnum};
use jeton::entry::{Status, printable};
use jeton::lifecycle::ack::Ack;
use jeton::lifecycle::{
    ConfigView, DEFAULT_CHECK_WITHIN, Finding, FindingKind, Holders, LifecycleRequest,
    LifecycleResponse, Setting, Version,
};
use jeton::request::{Change, Request, Response};
use jeton::secret::SecretText;
use jeton::text::Shown;
use jeton::time::{self, Time, rfc3339};
use jeton::vault::AuditEvent;
use jeton::{Error, Result};
use serde_json::{Value, json};

/// Exit code of `check` when it found something (SPEC §5).
pub const EXIT_FINDINGS: i32 = 8;

/// The lifecycle subcommands.
#[derive(Debug, Subcommand)]
pub enum LifecycleCommand {
    /// Replace an entry's secret (prompt, stdin or --generate); the old one goes to history
    ///
    /// With --at-issuer, the new secret is made at the token's issuer through its recipe (`jeton
    /// issuer set`), every integration is updated, and the old one is revoked there.
    Rotate(Deferred<RotateArgs>),
    /// Show an entry's previous secrets (masked unless --reveal)
    #[command(defer(crate::args::with_globals))]
    History {
        /// Entry name
        name: String,
        /// Show the secrets
        #[arg(long)]
        reveal: bool,
    },
    /// Make a previous secret current again (the current one goes to history)
    #[command(defer(crate::args::with_globals))]
    Rollback {
        /// Entry name
        name: String,
        /// 1 is the previous secret, 2 the one before (see `jeton history`)
        #[arg(default_value_t = 1)]
        version: usize,
    },
    /// Refuse `get` and `exec` of an entry until it is enabled
    #[command(defer(crate::args::with_globals))]
    Disable {
        /// Entry name
        name: String,
    },
    /// Allow a disabled entry again
    #[command(defer(crate::args::with_globals))]
    Enable {
        /// Entry name
        name: String,
    },
    /// Revoke an entry for good: wipe its secret and history, keep a tombstone
    #[command(defer(crate::args::with_globals))]
    Revoke {
        /// Entry name
        name: String,
        /// Why (kept in the tombstone and the log)
        #[arg(long)]
        reason: Option<String>,
        /// Revoke it at its issuer first, through its recipe (even with no replacement)
        #[arg(long)]
        at_issuer: bool,
    },
    /// Report expired, expiring or unrotated tokens, missing contacts and scopes, over-broad
    /// scopes, weak KDF and loose permissions; exit 8 if anything is found
    Check(Deferred<CheckArgs>),
    /// The audit log of every change, oldest first
    #[command(defer(crate::args::with_globals))]
    Log {
        /// Only this entry (following its renames)
        name: Option<String>,
    },
    /// Vault settings: the default technical contact and the history limit
    Config(Deferred<ConfigArgs>),
}

/// `rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Entry name
    #[arg(required_unless_present = "due")]
    pub name: Option<String>,
    /// The new token's expiry: a date, RFC 3339, a span from now, or 'never' [default: unchanged]
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true)]
    pub expires: Option<String>,
    #[command(flatten)]
    pub generate: GenerateArgs,
    #[command(flatten)]
    pub issuer: issuer::RotateFlags,
}

/// `check` (alone: the report).
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(subcommand)]
    pub command: Option<CheckCommand>,
    /// Look this far ahead for expiry and rotation
    #[arg(long, value_name = "SPAN", default_value = "14d")]
    pub within: String,
    /// Leave out findings of this kind (repeat it, or give a comma list)
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Report only findings of this kind (repeat it, or give a comma list)
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub only: Vec<String>,
    /// One line per migrated entry without scopes, instead of a summary
    #[arg(short, long)]
    pub verbose: bool,
}

/// `check` subcommands.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Stop reporting a finding about an entry, for good or until a date (--list, --remove)
    Ack(AckArgs),
}

/// `check ack`.
#[derive(Debug, Args)]
pub struct AckArgs {
    /// Entry name
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// The kind of finding, as `check` prints it (e.g. no_scopes)
    #[arg(required_unless_present = "list")]
    pub kind: Option<String>,
    /// Report it again from this time on: a date, RFC 3339, or a span from now (90d)
    #[arg(long, value_name = "WHEN", conflicts_with_all = ["remove", "list"])]
    pub until: Option<String>,
    /// Withdraw the acknowledgement: the finding is reported again
    #[arg(long, conflicts_with = "list")]
    pub remove: bool,
    /// Print every acknowledgement
    #[arg(long, conflicts_with_all = ["name", "kind"])]
    pub list: bool,
}

/// `config` (alone: `config list`).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: Option<ConfigCommand>,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting
    List,
    /// Print one setting
    Get {
        /// Setting
        #[arg(value_enum)]
        key: ConfigKey,
    },
    /// Change one setting
    Set {
        /// Setting
        #[arg(value_enum)]
        key: ConfigKey,
        /// New value
        value: String,
    },
    /// Reset one setting to its default
    Unset {
        /// Setting
        #[arg(value_enum)]
        key: ConfigKey,
    },
}

/// The settings `config` knows.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConfigKey {
    /// Default technical contact for entries that name none, e.g. 'Ops <ops@example.com>'
    Contact,
    /// Previous secrets kept per entry (0..1000, default 10)
    #[value(name = "history_limit", alias = "history-limit")]
    HistoryLimit,
}

/// Runs one lifecycle command.
pub fn run(ctx: &Ctx, cmd: LifecycleCommand, now: Time) -> Result<Exit> {
    match cmd {
        LifecycleCommand::Rotate(Deferred(a)) => rotate(ctx, a, now),
        LifecycleCommand::History { name, reveal } => history(ctx, name, reveal),
        LifecycleCommand::Rollback { name, version } => {
            jeton::team::check_entry_name(&name, false)?;
            let r = exec(
                ctx,
                LifecycleRequest::Rollback {
                    name,
                    version: Some(version),
                },
            )?;
            replaced(ctx, r)
        }
        LifecycleCommand::Disable { name } => {
            jeton::team::check_entry_name(&name, false)?;
            status(ctx, LifecycleRequest::Disable { name })
        }
        LifecycleCommand::Enable { name } => {
            jeton::team::check_entry_name(&name, false)?;
            status(ctx, LifecycleRequest::Enable { name })
        }
        LifecycleCommand::Revoke {
            name,
            reason,
            at_issuer,
        } => {
            jeton::team::check_entry_name(&name, false)?;
            if let Some(r) = &reason {
                jeton::text::check_line("--reason", r)?;
            }
            prompt::confirm(
                &format!(
                    "revoke '{}' and wipe its secret and history for good",
                    printable(&name)
                ),
                ctx.yes,
            )?;
            let reason = reason
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty());
            if at_issuer {
                issuer::revoke_at_issuer(ctx, &name)?;
            }
            status(ctx, LifecycleRequest::Revoke { name, reason })
        }
        LifecycleCommand::Check(Deferred(a)) => match a.command {
            Some(CheckCommand::Ack(ack)) => check_ack(ctx, ack, now),
            None => check(ctx, a, now),
        },
        LifecycleCommand::Log { name } => log(ctx, name),
        LifecycleCommand::Config(Deferred(c)) => {
            config(ctx, c.command.unwrap_or(ConfigCommand::List))
        }
    }
}

fn exec(ctx: &Ctx, request: LifecycleRequest) -> Result<LifecycleResponse> {
    match ctx.run(Request::Lifecycle(request))? {
        Response::Lifecycle(r) => Ok(r),
        _ => Err(unexpected()),
    }
}

fn rotate(ctx: &Ctx, a: RotateArgs, now: Time) -> Result<Exit> {
    if a.issuer.wanted() {
        return issuer::rotate(ctx, a.name, a.issuer);
    }
    let name = a.name.unwrap_or_default();
    jeton::team::check_entry_name(&name, false)?;
    let expires_at = match a.expires.as_deref().map(str::trim) {
        None => Change::Keep,
        Some("" | "never" | "none") => Change::Clear,
        Some(w) => Change::Set(time::parse_when(w, now)?),
    };
    if let Change::Set(t) = expires_at {
        warn_short_spans(Some(t), None, now);
    }
    // A name with no live entry is refused before a new secret is typed for it.
    if a.generate.asks() {
        ctx.refuse_missing_or_revoked(&name)?;
    }
    let secret = a.generate.secret_input()?;
    let r = exec(
        ctx,
        LifecycleRequest::Rotate {
            name,
            secret,
            expires_at,
        },
    )?;
    replaced(ctx, r)
}

fn holders_json(h: &Holders) -> Value {
    json!({
        "used_by": h.used_by,
        "shared_with": h.shared_with.iter().map(|(c, at)| json!({"contact": c, "at": rfc3339(*at)})).collect::<Vec<_>>(),
        "received_from": h.received_from,
    })
}

fn holders_text(h: &Holders) -> String {
    let mut out = String::new();
    for u in &h.used_by {
        out.push_str(&format!("  integration  {}\n", Shown::line(u)));
    }
    for (c, at) in &h.shared_with {
        out.push_str(&format!(
            "  contact      {} (shared {})\n",
            Shown::line(c),
            time::date(*at)
        ));
    }
    if let Some(f) = &h.received_from {
        out.push_str(&format!(
            "  sender       {} (you received it from them)\n",
            Shown::line(f)
        ));
    }
    out
}

fn replaced(ctx: &Ctx, r: LifecycleResponse) -> Result<Exit> {
    let LifecycleResponse::Replaced {
        name,
        restored,
        history_len,
        dropped,
        expires_at,
        expiry_kept,
        disabled,
        holders,
    } = r
    else {
        return Err(unexpected());
    };
    if ctx.json {
        emit(
            json_line(&json!({
                "ok": true,
                "name": name,
                "action": if restored.is_some() { "rollback" } else { "rotate" },
                "restored_version": restored,
                "history_count": history_len,
                "history_dropped": dropped,
                "expires_at": expires_at.map(rfc3339),
                "expiry_unchanged": expiry_kept,
                "disabled": disabled,
                "holders": holders_json(&holders),
            }))
            .as_bytes(),
        )?;
        return Ok(Exit::Ok);
    }
    if ctx.quiet {
        return Ok(Exit::Ok);
    }
    let mut text = match restored {
        Some(v) => format!("rolled back {name} to version {v}; "),
        None => format!("rotated {name}; "),
    };
    text.push_str(&format!(
        "{history_len} previous secret{} kept",
        if history_len == 1 { "" } else { "s" }
    ));
    if dropped > 0 {
        text.push_str(&format!(" ({dropped} oldest wiped by the history limit)"));
    }
    text.push('\n');
    if let Some(t) = expires_at.filter(|_| expiry_kept) {
        text.push_str(&format!(
            "note: the expiry is still {}; if the new token's differs: jeton edit {name} --expires WHEN\n",
            rfc3339(t)
        ));
    }
    if disabled {
        text.push_str(&format!(
            "note: {name} is still disabled (jeton enable {name})\n"
        ));
    }
    if holders.is_empty() {
        text.push_str("no integration or contact is recorded as holding the old secret\n");
    } else {
        text.push_str("still holding the old secret; update them:\n");
        text.push_str(&holders_text(&holders));
    }
    emit(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn version_json(v: &Version) -> Value {
    let mut j = json!({
        "version": v.number,
        "created_at": rfc3339(v.created_at),
        "retired_at": v.retired_at.map(rfc3339),
        "length": v.length,
    });
    if let Some(s) = &v.secret {
        j["secret"] = Value::String(s.expose_secret().to_owned());
    }
    j
}

fn history(ctx: &Ctx, name: String, reveal: bool) -> Result<Exit> {
    jeton::team::check_entry_name(&name, false)?;
    let LifecycleResponse::History { name, versions } =
        exec(ctx, LifecycleRequest::History { name, reveal })?
    else {
        return Err(unexpected());
    };
    let text = if ctx.json {
        let list: Vec<Value> = versions.iter().map(version_json).collect();
        secret_json_line(json!({"name": name, "versions": list}))
    } else {
        let mut t = SecretText::default();
        t.push_str("VERSION  SET                   RETIRED               SECRET\n");
        for v in &versions {
            let label = if v.number == 0 {
                "current".to_owned()
            } else {
                v.number.to_string()
            };
            t.push_str(&format!(
                "{label:<7}  {:<20}  {:<20}  ",
                rfc3339(v.created_at),
                v.retired_at.map(rfc3339).unwrap_or_else(|| "-".into()),
            ));
            match &v.secret {
                Some(s) => push_shown_secret(&mut t, s.expose_secret()),
                None => t.push_str(&format!("******** ({} characters)", v.length)),
            }
            t.push_str("\n");
        }
        if versions.is_empty() {
            t.push_str("(no secrets: the entry was revoked)\n");
        }
        t
    };
    emit(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn status_text(s: &Status) -> String {
    match s {
        Status::Active => "active".into(),
        Status::Disabled { since } => format!("disabled since {}", rfc3339(*since)),
        Status::Revoked { at, reason } => format!(
            "revoked at {}{}",
            rfc3339(*at),
            reason
                .as_deref()
                .map(|r| format!(" ({})", Shown::line(r)))
                .unwrap_or_default()
        ),
    }
}

fn status(ctx: &Ctx, request: LifecycleRequest) -> Result<Exit> {
    let LifecycleResponse::StatusChanged {
        name,
        status,
        changed,
        wiped,
        holders,
    } = exec(ctx, request)?
    else {
        return Err(unexpected());
    };
    let revoked = matches!(status, Status::Revoked { .. });
    if ctx.json {
        emit(
            json_line(&json!({
                "ok": true,
                "name": name,
                "status": status.label(),
                "changed": changed,
                "secrets_wiped": wiped,
                "holders": holders_json(&holders),
            }))
            .as_bytes(),
        )?;
        return Ok(Exit::Ok);
    }
    if ctx.quiet {
        return Ok(Exit::Ok);
    }
    let mut text = if changed {
        format!("{name}: {}\n", status_text(&status))
    } else {
        format!(
            "{name} was already {}; nothing changed\n",
            status_text(&status)
        )
    };
    if revoked && changed {
        text.push_str(&format!(
            "wiped {wiped} secret{} from the vault (and from its backup)\n",
            if wiped == 1 { "" } else { "s" }
        ));
        text.push_str(
            "unless --at-issuer did, revoke the token at its issuer too (`jeton issuer set` \
             lets jeton do it)\n",
        );
    }
    if revoked && !holders.is_empty() {
        text.push_str("these may still hold a copy:\n");
        text.push_str(&holders_text(&holders));
    }
    emit(text.as_bytes())?;
    Ok(Exit::Ok)
}

fn finding_json(f: &Finding) -> Value {
    json!({"entry": f.entry, "kind": f.kind.label(), "reason": f.reason, "fix": f.fix, "migrated": f.migrated})
}

/// The finding kinds named by `--only`/`--ignore` or `check ack`; a usage error listing the
/// valid ones otherwise.
fn finding_kind(name: &str) -> Result<FindingKind> {
    FindingKind::from_label(name.trim()).ok_or_else(|| {
        let valid: Vec<&str> = FindingKind::ALL.iter().map(|k| k.label()).collect();
        Error::Usage(format!(
            "unknown finding kind '{}'; the kinds are: {}",
            Shown::line(name),
            valid.join(", ")
        ))
    })
}

fn finding_kinds(names: &[String]) -> Result<Vec<FindingKind>> {
    names.iter().map(|n| finding_kind(n)).collect()
}

/// A fix with the entry's name replaced by NAME, so that one line serves every entry of a kind.
fn general_fix(f: &Finding) -> String {
    let Some(name) = f.entry.as_deref() else {
        return f.fix.clone();
    };
    let mut fix = f.fix.clone();
    for end in [" ", "`"] {
        fix = fix.replace(&format!(" {name}{end}"), &format!(" NAME{end}"));
    }
    fix
}

/// The human report: findings grouped by kind, each kind's fix once; migrated entries
/// without scopes summed up in one line unless `verbose`.
fn check_text(findings: &[Finding], verbose: bool) -> String {
    let mut text = String::new();
    for kind in FindingKind::ALL {
        let of_kind: Vec<&Finding> = findings.iter().filter(|f| f.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let summed = kind == FindingKind::NoScopes && !verbose;
        let grouped = if kind == FindingKind::NoContact && !verbose {
            without_contact(&of_kind)
        } else {
            Vec::new()
        };
        let mut migrated: Vec<&str> = Vec::new();
        for f in &of_kind {
            let subject = f.entry.as_deref().unwrap_or("(vault)");
            if grouped.contains(&subject) {
                continue;
            }
            if summed && f.migrated {
                migrated.push(subject);
                continue;
            }
            text.push_str(&format!(
                "{}: {}: {}\n",
                Shown::line(subject),
                kind.label(),
                Shown::line(&f.reason)
            ));
        }
        match migrated.as_slice() {
            [] => {}
            [one] => text.push_str(&format!(
                "{}: {}: no scopes recorded (migrated)\n",
                Shown::line(one),
                kind.label()
            )),
            many => text.push_str(&format!(
                "{} migrated entries have no scopes; `jeton check -v` lists them\n",
                many.len()
            )),
        }
        let mut fixes: Vec<String> = Vec::new();
        if !grouped.is_empty() {
            text.push_str(&no_contact_line(&grouped));
            fixes.push(
                "give the vault a default contact, which every entry without its own falls \
                 back to: `jeton config set contact 'Name <mail>'` (one entry: `jeton edit NAME \
                 --contact 'Name <mail>'`)"
                    .into(),
            );
        }
        for f in &of_kind {
            if f.entry.as_deref().is_some_and(|e| grouped.contains(&e)) {
                continue;
            }
            let fix = if of_kind.len() == 1 {
                f.fix.clone()
            } else {
                general_fix(f)
            };
            if !fixes.contains(&fix) {
                fixes.push(fix);
            }
        }
        for fix in fixes {
            text.push_str(&format!("  fix: {}\n", Shown::line(&fix)));
        }
    }
    text
}

/// The entries of the personal vault among `no_contact` findings, when there are several: the
/// vault has no default contact, so one line and one fix serve them all (team entries,
/// `TEAM:NAME`, keep their own lines).
fn without_contact<'a>(findings: &[&'a Finding]) -> Vec<&'a str> {
    let personal: Vec<&str> = findings
        .iter()
        .filter_map(|f| f.entry.as_deref())
        .filter(|e| !e.contains(':'))
        .collect();
    if personal.len() < 2 {
        return Vec::new();
    }
    personal
}

/// One line for the `no_contact` findings of `names`: how many, and the first few.
fn no_contact_line(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    let first: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| Shown::line(n).to_string())
        .collect();
    let more = match names.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more (`jeton check -v` names each)"),
    };
    format!(
        "{} entries: {}: no technical contact, and the vault has no default contact: {}{more}\n",
        names.len(),
        FindingKind::NoContact.label(),
        first.join(", ")
    )
}

fn check(ctx: &Ctx, a: CheckArgs, now: Time) -> Result<Exit> {
    let only = finding_kinds(&a.only)?;
    let ignore = finding_kinds(&a.ignore)?;
    let within = if a.within.trim().is_empty() {
        DEFAULT_CHECK_WITHIN
    } else {
        time::parse_span(&a.within, now)?
    };
    let LifecycleResponse::Findings {
        checked,
        mut findings,
        acknowledged,
    } = exec(ctx, LifecycleRequest::Check { within })?
    else {
        return Err(unexpected());
    };
    findings.extend(jeton::lifecycle::file_findings(&ctx.session.store));
    let (team_checked, team_findings, team_acknowledged) =
        crate::ctx::team::check_teams(ctx, within)?;
    let checked = checked + team_checked;
    let acknowledged = acknowledged + team_acknowledged;
    findings.extend(team_findings);
    findings.retain(|f| (only.is_empty() || only.contains(&f.kind)) && !ignore.contains(&f.kind));
    if ctx.json {
        let list: Vec<Value> = findings.iter().map(finding_json).collect();
        emit(
            json_line(&json!({
                "ok": findings.is_empty(),
                "checked": checked,
                "within": time::show_span(within),
                "acknowledged": acknowledged,
                "findings": list,
            }))
            .as_bytes(),
        )?;
    } else if !findings.is_empty() {
        emit(check_text(&findings, a.verbose).as_bytes())?;
        if !ctx.quiet {
            eprintln!(
                "jeton: check: {} finding{} in {checked} entries{}",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" },
                acknowledged_note(acknowledged)
            );
        }
    } else {
        ctx.say(&format!(
            "no findings ({checked} entries checked){}",
            acknowledged_note(acknowledged)
        ))?;
    }
    Ok(if findings.is_empty() {
        Exit::Ok
    } else {
        Exit::Code(EXIT_FINDINGS)
    })
}

fn acknowledged_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("; {n} acknowledged, not shown (`jeton check ack --list`)")
    }
}

fn ack_json(a: &Ack, now: Time) -> Value {
    json!({
        "entry": a.entry,
        "kind": a.kind.label(),
        "until": a.until.map(rfc3339),
        "expired": !a.holds(now),
    })
}

fn check_ack(ctx: &Ctx, a: AckArgs, now: Time) -> Result<Exit> {
    if a.list {
        let LifecycleResponse::Acks(acks) = exec(ctx, LifecycleRequest::Acks)? else {
            return Err(unexpected());
        };
        if ctx.json {
            let list: Vec<Value> = acks.iter().map(|a| ack_json(a, now)).collect();
            emit(json_line(&list).as_bytes())?;
        } else if acks.is_empty() {
            ctx.say("no acknowledged findings")?;
        } else {
            let mut table = Table::new(&["ENTRY", "KIND", "UNTIL"]);
            for a in &acks {
                let until = match a.until {
                    None => "-".to_owned(),
                    Some(t) if a.holds(now) => rfc3339(t),
                    Some(t) => format!("{} (over: reported again)", rfc3339(t)),
                };
                table.row([a.entry.as_str(), a.kind.label(), until.as_str()]);
            }
            emit(table.render().as_bytes())?;
        }
        return Ok(Exit::Ok);
    }
    let name = a.name.unwrap_or_default();
    jeton::team::check_entry_name(&name, false)?;
    let kind = finding_kind(&a.kind.unwrap_or_default())?;
    let until = a
        .until
        .as_deref()
        .map(|w| time::parse_when(w, now))
        .transpose()?;
    let LifecycleResponse::Acked {
        name,
        kind,
        until,
        removed,
        changed,
    } = exec(
        ctx,
        LifecycleRequest::Ack {
            name,
            kind,
            until,
            remove: a.remove,
        },
    )?
    else {
        return Err(unexpected());
    };
    if ctx.json {
        emit(
            json_line(&json!({
                "ok": true,
                "entry": name,
                "kind": kind.label(),
                "until": until.map(rfc3339),
                "removed": removed,
                "changed": changed,
            }))
            .as_bytes(),
        )?;
        return Ok(Exit::Ok);
    }
    let msg = match (removed, changed, until) {
        (true, true, _) => format!("{name}: {} is reported again", kind.label()),
        (true, false, _) => format!(
            "{name}: {} was not acknowledged; nothing changed",
            kind.label()
        ),
        (false, false, _) => format!(
            "{name}: {} was already acknowledged so; nothing changed",
            kind.label()
        ),
        (false, true, None) => format!(
            "{name}: {} acknowledged; `check` no longer reports it",
            kind.label()
        ),
        (false, true, Some(t)) => format!(
            "{name}: {} acknowledged until {}; `check` reports it again after that",
            kind.label(),
            rfc3339(t)
        ),
    };
    ctx.say(&msg)?;
    Ok(Exit::Ok)
}

fn event_json(e: &AuditEvent) -> Value {
    json!({"at": rfc3339(e.at), "action": e.action, "subject": e.subject, "detail": e.detail})
}

fn log(ctx: &Ctx, name: Option<String>) -> Result<Exit> {
    match name.as_deref().map(|n| (n, n.strip_suffix(':'))) {
        // `TEAM:`: the whole log of the team.
        Some((_, Some(team))) => jeton::team::validate_name(team)?,
        Some((n, None)) => jeton::team::check_entry_name(n, false)?,
        None => {}
    }
    let team = name
        .as_deref()
        .and_then(jeton::team::split)
        .map(|(t, _)| t.to_owned());
    let LifecycleResponse::Log(events) = exec(ctx, LifecycleRequest::Log { name })? else {
        return Err(unexpected());
    };
    let Some(team) = team else {
        if ctx.json {
            let list: Vec<Value> = events.iter().map(event_json).collect();
            emit(json_line(&list).as_bytes())?;
            return Ok(Exit::Ok);
        }
        let mut table = Table::new(&[]);
        for e in &events {
            table.row([
                rfc3339(e.at).as_str(),
                &e.action,
                e.subject.as_deref().unwrap_or("-"),
                &e.detail,
            ]);
        }
        emit(table.render().as_bytes())?;
        return Ok(Exit::Ok);
    };
    // A team's log: each line with the members whose signature over it holds.
    let lines = team_log(ctx, &team, &events)?;
    if ctx.json {
        let list: Vec<Value> = (lines.iter())
            .map(|(e, authors)| {
                let mut j = event_json(e);
                j["authors"] = json!(authors.iter().map(|(n, _)| n).collect::<Vec<_>>());
                j["author_keys"] = json!(authors.iter().map(|(_, k)| k).collect::<Vec<_>>());
                j
            })
            .collect();
        emit(json_line(&list).as_bytes())?;
        return Ok(Exit::Ok);
    }
    let mut table = Table::new(&[]);
    for (e, authors) in &lines {
        let by = if authors.is_empty() {
            "-".to_owned()
        } else {
            let names: Vec<&str> = authors.iter().map(|(n, _)| n.as_str()).collect();
            names.join(",")
        };
        table.row([
            rfc3339(e.at).as_str(),
            &by,
            &e.action,
            e.subject.as_deref().unwrap_or("-"),
            &e.detail,
        ]);
    }
    emit(table.render().as_bytes())?;
    Ok(Exit::Ok)
}

/// One line's author: their name in the member list and their signing key, hex.
type Author = (String, String);

/// The events of team `team`'s log but its signatures, each with the members (current or
/// removed) whose signature over it holds.
fn team_log(
    ctx: &Ctx,
    team: &str,
    events: &[AuditEvent],
) -> Result<Vec<(AuditEvent, Vec<Author>)>> {
    use jeton::team::{TeamRequest, TeamResponse};
    let listed = crate::ctx::team::team_request(
        ctx,
        TeamRequest::List {
            team: Some(team.to_owned()),
        },
    )?;
    let TeamResponse::Listed(views) = listed else {
        return Err(unexpected());
    };
    let view = views.into_iter().next().ok_or_else(unexpected)?;
    let id = jeton::share::unhex::<16>(&view.id).ok_or_else(unexpected)?;
    let name_of = |key: &[u8; 32]| {
        let key = jeton::share::hex(key);
        (view.members.iter())
            .find(|m| m.key == key)
            .map(|m| (m.name.clone(), key))
    };
    Ok(jeton::team::author::attribute(&id, events)
        .into_iter()
        .map(|(e, keys)| {
            let names = keys.iter().filter_map(name_of).collect();
            (e, names)
        })
        .collect())
}

fn config(ctx: &Ctx, c: ConfigCommand) -> Result<Exit> {
    let (request, key) = match c {
        ConfigCommand::List => (LifecycleRequest::ConfigGet, None),
        ConfigCommand::Get { key } => (LifecycleRequest::ConfigGet, Some(key)),
        ConfigCommand::Set { key, value } => {
            (LifecycleRequest::ConfigSet(setting(key, &value)?), None)
        }
        ConfigCommand::Unset { key } => {
            let s = match key {
                ConfigKey::Contact => Setting::Contact(None),
                ConfigKey::HistoryLimit => {
                    Setting::HistoryLimit(jeton::entry::DEFAULT_HISTORY_LIMIT)
                }
            };
            (LifecycleRequest::ConfigSet(s), None)
        }
    };
    let writes = request.writes();
    let LifecycleResponse::Config {
        config, changed, ..
    } = exec(ctx, request)?
    else {
        return Err(unexpected());
    };
    if let Some(key) = key {
        return config_get(ctx, &config, key);
    }
    if ctx.json {
        let mut j = json!({"contact": config.contact, "history_limit": config.history_limit});
        if writes {
            j["changed"] = json!(changed);
        }
        emit(json_line(&j).as_bytes())?;
    } else if writes {
        ctx.say(&changed.unwrap_or_else(|| "nothing to change".into()))?;
    } else {
        emit(
            format!(
                "contact        {}\nhistory_limit  {}\n",
                config
                    .contact
                    .as_deref()
                    .map(|c| Shown::line(c).to_string())
                    .unwrap_or_else(|| "(none)".into()),
                config.history_limit
            )
            .as_bytes(),
        )?;
    }
    Ok(Exit::Ok)
}

fn setting(key: ConfigKey, value: &str) -> Result<Setting> {
    Ok(match key {
        ConfigKey::Contact => {
            jeton::text::check_line("the contact", value)?;
            Setting::Contact(Some(value.to_owned()))
        }
        ConfigKey::HistoryLimit => Setting::HistoryLimit(value.trim().parse().map_err(|_| {
            Error::Usage(format!(
                "history_limit must be a whole number from 0 to {}",
                jeton::lifecycle::MAX_HISTORY_LIMIT
            ))
        })?),
    })
}

fn config_get(ctx: &Ctx, config: &ConfigView, key: ConfigKey) -> Result<Exit> {
    let value = match key {
        ConfigKey::Contact => json!(config.contact.clone().ok_or_else(|| {
            Error::NotFound(
                "no default contact is set (jeton config set contact 'Name <mail>')".into(),
            )
        })?),
        ConfigKey::HistoryLimit => json!(config.history_limit),
    };
    if ctx.json {
        emit(json_line(&value).as_bytes())?;
    } else {
        let text = match &value {
            Value::String(s) => Shown::line(s).to_string(),
            v => v.to_string(),
        };
        emit(format!("{text}\n").as_bytes())?;
    }
    Ok(Exit::Ok)
}
