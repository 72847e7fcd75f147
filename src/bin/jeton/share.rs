//! Sharing commands: identity, contact, share, import. Arguments -> request -> output.

use crate::args::{Deferred, OnConflictArg};
use crate::ctx::{Ctx, Exit, emit};
use crate::output::{Table, json_line};
use clap::{Args, Subcommand};
use jeton::request::{Request, Response};
use jeton::share::bundle::{DEFAULT_EXPIRY, Kind, MAX_BUNDLE_LEN, ShareRequest};
use jeton::share::contact::{self, ContactKeys, ContactView};
use jeton::share::import::{ImportReport, ImportRequest};
use jeton::share::{SharingRequest, SharingResponse};
use jeton::text::Shown;
use jeton::time::{self, rfc3339};
use jeton::{Error, Result};
use serde_json::json;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

/// `contact` subcommands.
#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Authorise a person: from their card (`jeton identity` on their side), an age
    /// recipient, or an ssh-ed25519 public key
    Add(Deferred<ContactAddArgs>),
    /// List contacts with their fingerprints
    List,
    /// Remove a contact (entries already shared stay with them)
    Rm {
        /// Contact name
        name: String,
    },
}

/// `contact add`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("keys").required(true).args(["card", "age", "ssh_key"]))]
pub struct ContactAddArgs {
    /// Local name for the contact, e.g. bob
    pub name: String,
    /// Their card: the line `jeton identity` prints (quote it)
    pub card: Option<String>,
    /// An age X25519 recipient (age1...), for someone without jeton
    #[arg(long, value_name = "RECIPIENT")]
    pub age: Option<String>,
    /// An ssh-ed25519 public key line, for someone without jeton
    #[arg(long, value_name = "KEY")]
    pub ssh_key: Option<String>,
    /// Allow changing the keys of an existing contact
    #[arg(long)]
    pub replace: bool,
}

/// `share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    /// Entries to share
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Contacts to share with (repeatable, or comma-separated)
    #[arg(long, required = true, value_name = "CONTACT", value_delimiter = ',')]
    pub to: Vec<String>,
    /// Write the bundle to FILE (created 0600) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How long the bundle can be imported [default: 7d]
    #[arg(long, value_name = "SPAN")]
    pub expires: Option<String>,
    /// ASCII-armored output (PEM-like text)
    #[arg(long)]
    pub armor: bool,
    /// Send a signed revocation notice for these entries instead of the entries
    #[arg(long)]
    pub revocation: bool,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Bundle file ('-' for stdin)
    pub file: PathBuf,
    /// Import under PREFIX/NAME
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// What to do when a name exists
    #[arg(long, value_enum, default_value_t = OnConflictArg::Fail)]
    pub on_conflict: OnConflictArg,
    /// Check the bundle and show what would happen; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn run(ctx: &Ctx, r: SharingRequest) -> Result<SharingResponse> {
    match ctx.run(Request::Sharing(r))? {
        Response::Sharing(s) => Ok(s),
        _ => Err(crate::ctx::unexpected()),
    }
}

/// `identity`.
pub fn identity(ctx: &Ctx) -> Result<Exit> {
    let SharingResponse::Card {
        card,
        fingerprint,
        created,
    } = run(ctx, SharingRequest::Identity)?
    else {
        return Err(crate::ctx::unexpected());
    };
    if created && !ctx.quiet {
        eprintln!("jeton: created this vault's sharing identity");
    }
    if ctx.json {
        let c = jeton::share::identity::Card::parse(&card)?;
        emit(
            json_line(&json!({
                "card": card,
                "fingerprint": fingerprint,
                "name": c.name,
                "age_recipient": c.age_recipient,
                "signing_key": jeton::share::identity::b64(&c.signing_key),
            }))
            .as_bytes(),
        )?;
    } else if ctx.quiet {
        emit(format!("{}\n", Shown::line(&card)).as_bytes())?;
    } else {
        emit(format!("{}\nfingerprint: {fingerprint}\n", Shown::line(&card)).as_bytes())?;
    }
    Ok(Exit::Ok)
}

fn contact_json(c: &ContactView) -> serde_json::Value {
    json!({
        "name": c.name,
        "kind": c.kind,
        "age_recipient": c.age_recipient,
        "ssh_recipient": c.ssh_recipient,
        "signing_key": c.signing_key,
        "fingerprint": c.fingerprint,
        "added_at": rfc3339(c.added_at),
    })
}

/// `contact ...`.
pub fn contact(ctx: &Ctx, cmd: ContactCommand) -> Result<Exit> {
    match cmd {
        ContactCommand::Add(Deferred(a)) => {
            contact::validate_name(&a.name)?;
            let keys = match (&a.card, &a.age, &a.ssh_key) {
                (Some(c), None, None) => ContactKeys::from_card(c)?,
                (None, Some(r), None) => ContactKeys::from_age(r)?,
                (None, None, Some(k)) => ContactKeys::from_ssh(k)?,
                _ => {
                    return Err(Error::Usage(
                        "give exactly one of CARD, --age or --ssh-key".into(),
                    ));
                }
            };
            let SharingResponse::ContactAdded { contact, replaced } = run(
                ctx,
                SharingRequest::ContactAdd {
                    name: a.name,
                    keys,
                    replace: a.replace,
                },
            )?
            else {
                return Err(crate::ctx::unexpected());
            };
            if ctx.json {
                emit(json_line(&contact_json(&contact)).as_bytes())?;
            } else {
                let verb = if replaced {
                    "replaced the keys of"
                } else {
                    "contact"
                };
                ctx.say(&format!(
                    "{verb} {} ({})\nfingerprint: {}\ncompare it with theirs (`jeton identity` on their side) by voice or chat before sharing",
                    contact.name, contact.kind, contact.fingerprint
                ))?;
            }
        }
        ContactCommand::List => {
            let SharingResponse::Contacts(list) = run(ctx, SharingRequest::ContactList)? else {
                return Err(crate::ctx::unexpected());
            };
            if ctx.json {
                let v: Vec<_> = list.iter().map(contact_json).collect();
                emit(json_line(&v).as_bytes())?;
            } else if list.is_empty() {
                if !ctx.quiet {
                    eprintln!("jeton: no contacts (add one with `jeton contact add NAME CARD`)");
                }
            } else {
                let mut table = Table::new(&["NAME", "KIND", "FINGERPRINT", "ADDED"]);
                for c in &list {
                    table.row([
                        c.name.clone(),
                        c.kind.clone(),
                        c.fingerprint.clone(),
                        time::date(c.added_at),
                    ]);
                }
                emit(table.render().as_bytes())?;
            }
        }
        ContactCommand::Rm { name } => {
            let SharingResponse::ContactRemoved(c) =
                run(ctx, SharingRequest::ContactRemove { name })?
            else {
                return Err(crate::ctx::unexpected());
            };
            ctx.done(Response::Done(format!("removed contact {}", c.name)))?;
        }
    }
    Ok(Exit::Ok)
}

/// Where `share` writes, decided before anything else happens.
enum Target {
    Stdout,
    File(PathBuf),
}

fn target(ctx: &Ctx, a: &ShareArgs) -> Result<Target> {
    match &a.output {
        Some(p) if p.as_os_str() != "-" => {
            if std::fs::symlink_metadata(p).is_ok() && !ctx.yes {
                return Err(Error::Exists(format!(
                    "{} exists; choose another file or pass --yes to replace it",
                    p.display()
                )));
            }
            let dir = parent(p);
            if !dir.is_dir() {
                return Err(Error::NotFound(format!(
                    "directory {} does not exist",
                    dir.display()
                )));
            }
            Ok(Target::File(p.clone()))
        }
        _ => {
            if ctx.json {
                return Err(Error::Usage(
                    "--json needs -o FILE (stdout would hold the bundle)".into(),
                ));
            }
            if !a.armor && std::io::stdout().is_terminal() {
                return Err(Error::Usage(
                    "refusing to write a binary bundle to a terminal; use -o FILE or --armor"
                        .into(),
                ));
            }
            Ok(Target::Stdout)
        }
    }
}

fn parent(p: &Path) -> &Path {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `share`.
pub fn share(ctx: &Ctx, a: ShareArgs) -> Result<Exit> {
    for n in &a.names {
        jeton::entry::validate_name(n)?;
    }
    for c in &a.to {
        contact::validate_name(c)?;
    }
    let now = time::now();
    let expires_in = match &a.expires {
        Some(s) => time::parse_span(s, now)?,
        None => DEFAULT_EXPIRY,
    };
    let target = target(ctx, &a)?;
    let kind = if a.revocation {
        Kind::Revocation
    } else {
        Kind::Entries
    };
    let req = ShareRequest {
        names: a.names,
        to: a.to,
        expires_in,
        armor: a.armor,
        kind,
    };
    let SharingResponse::Bundle(b) = run(ctx, SharingRequest::Share(req))? else {
        return Err(crate::ctx::unexpected());
    };
    let what = match b.kind {
        Kind::Entries if b.entries.len() == 1 => "1 entry".to_owned(),
        Kind::Entries => format!("{} entries", b.entries.len()),
        Kind::Revocation => format!("a revocation notice for {}", b.entries.join(", ")),
    };
    let summary = format!(
        "bundle {} ({what}) for {}; expires {}",
        b.id,
        b.recipients.join(", "),
        rfc3339(b.expires_at)
    );
    match target {
        Target::Stdout => {
            emit(&b.bytes)?;
            if !ctx.quiet {
                eprintln!("jeton: wrote {summary}");
            }
        }
        Target::File(p) => {
            jeton::store::write_atomic(&p, &b.bytes).map_err(|e| {
                Error::Other(format!(
                    "the share of bundle {} was recorded, but the file could not be written: {e}",
                    b.id
                ))
            })?;
            if ctx.json {
                emit(
                    json_line(&json!({
                        "id": b.id,
                        "kind": b.kind,
                        "file": p.display().to_string(),
                        "entries": b.entries,
                        "recipients": b.recipients,
                        "expires_at": rfc3339(b.expires_at),
                        "armored": b.armored,
                    }))
                    .as_bytes(),
                )?;
            } else {
                ctx.say(&format!("wrote {summary} to {}", p.display()))?;
            }
        }
    }
    Ok(Exit::Ok)
}

fn read_bundle(path: &Path) -> Result<Vec<u8>> {
    let too_large = || {
        Error::Integrity(format!(
            "bundle rejected: larger than {} MiB",
            MAX_BUNDLE_LEN >> 20
        ))
    };
    if path.as_os_str() != "-" {
        return match jeton::store::read_capped(path, MAX_BUNDLE_LEN as u64) {
            Ok(mut b) => Ok(std::mem::take(&mut *b)),
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(too_large()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(format!(
                "no bundle file at {}",
                path.display()
            ))),
            Err(e) => Err(Error::io("cannot read bundle", path, e)),
        };
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_BUNDLE_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("cannot read bundle from", "stdin", e))?;
    if buf.len() > MAX_BUNDLE_LEN {
        return Err(too_large());
    }
    Ok(buf)
}

fn report_text(r: &ImportReport) -> String {
    let mut out = String::new();
    let verb = |action: &str| match (r.dry_run, action) {
        (true, "added") => "would add",
        (true, "updated") => "would update",
        (true, "renamed") => "would add as",
        (true, "overwritten") => "would overwrite",
        (true, "skipped") => "would skip",
        (true, "revoked") => "would revoke",
        (_, "added") => "added",
        (_, "updated") => "updated",
        (_, "renamed") => "added as",
        (_, "overwritten") => "overwrote",
        (_, "skipped") => "skipped (exists)",
        (_, "revoked") => "revoked",
        (_, "already-revoked") => "already revoked",
        _ => "not held here",
    };
    for i in &r.items {
        let name = if i.name.is_empty() || i.name == i.original {
            Shown::line(&i.original).to_string()
        } else {
            format!(
                "{} (sent as {})",
                Shown::line(&i.name),
                Shown::line(&i.original)
            )
        };
        let note = match (r.dry_run, i.action.as_str()) {
            (false, "updated") => {
                " (a newer copy from the same sender; the one it replaced is in history)"
            }
            _ => "",
        };
        out.push_str(&format!("{} {name}{note}\n", verb(&i.action)));
    }
    out.push_str(&format!(
        "from {} (fingerprint {}), bundle {}\n",
        Shown::line(&r.from.name),
        r.from.fingerprint,
        Shown::line(&r.bundle_id)
    ));
    out
}

/// `import`.
pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<Exit> {
    if let Some(p) = &a.prefix {
        jeton::entry::validate_new_name(p.trim_end_matches('/'))?;
    }
    let bundle = read_bundle(&a.file)?;
    let on_conflict = a.on_conflict.into();
    let req = ImportRequest {
        bundle,
        prefix: a.prefix.map(|p| p.trim_end_matches('/').to_owned()),
        on_conflict,
        dry_run: a.dry_run,
    };
    let SharingResponse::Imported(r) = run(ctx, SharingRequest::Import(req))? else {
        return Err(crate::ctx::unexpected());
    };
    if ctx.json {
        let items: Vec<_> = r
            .items
            .iter()
            .map(|i| json!({"name": i.name, "original": i.original, "action": i.action}))
            .collect();
        emit(
            json_line(&json!({
                "bundle_id": r.bundle_id,
                "kind": r.kind,
                "from": contact_json(&r.from),
                "created_at": rfc3339(r.created_at),
                "expires_at": rfc3339(r.expires_at),
                "dry_run": r.dry_run,
                "items": items,
            }))
            .as_bytes(),
        )?;
    } else if !ctx.quiet {
        emit(report_text(&r).as_bytes())?;
    }
    Ok(Exit::Ok)
}
