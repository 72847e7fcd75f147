//! `jeton migrate FORMAT SOURCE`: parse another tool's store here (the user's files, the
//! user's gpg), then send the entries to the vault in one request.

use crate::args::OnConflictArg;
use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output;
use clap::{Args, ValueEnum};
use jeton::migrate::{self, Format, MigrateReport, MigrateRequest};
use jeton::request::{Request, Response};
use jeton::text::Shown;
use jeton::{Error, Result};
use std::path::PathBuf;

/// Source formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// A password-store directory (each .gpg file decrypted by your gpg)
    Pass,
    /// A gopass store with the gpg backend (same layout as pass)
    Gopass,
    /// The XML written by `keepassxc-cli export --format xml`
    Keepassxc,
    /// Bitwarden's unencrypted JSON export
    Bitwarden,
    /// A .env file (KEY=value lines)
    Dotenv,
}

/// `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Source format
    #[arg(value_enum)]
    pub format: FormatArg,
    /// The store directory (pass, gopass) or export file
    pub source: PathBuf,
    /// Put every entry under PREFIX/
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// What to do when a name exists in the vault
    #[arg(long, value_enum, default_value_t = OnConflictArg::Fail)]
    pub on_conflict: OnConflictArg,
    /// Read the source and show what would happen; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// dotenv: expand ${VAR} and ${VAR:-default} from earlier lines, then the environment
    #[arg(long)]
    pub expand: bool,
}

pub fn run(ctx: &Ctx, a: MigrateArgs) -> Result<Exit> {
    if let Some(p) = a.prefix.as_deref().map(|p| p.trim_matches('/')) {
        jeton::entry::validate_new_name(p)?;
    }
    if a.expand && !matches!(a.format, FormatArg::Dotenv) {
        return Err(Error::Usage("--expand applies only to dotenv".into()));
    }
    let format = match a.format {
        FormatArg::Pass => Format::Pass,
        FormatArg::Gopass => Format::Gopass,
        FormatArg::Keepassxc => Format::Keepassxc,
        FormatArg::Bitwarden => Format::Bitwarden,
        FormatArg::Dotenv => Format::Dotenv,
    };
    let on_conflict = a.on_conflict.into();
    let parsed = match format {
        Format::Pass | Format::Gopass => migrate::pass::parse(&a.source, jeton::time::now())?,
        Format::Keepassxc => migrate::keepassxc::parse(&a.source)?,
        Format::Bitwarden => migrate::bitwarden::parse(&a.source)?,
        Format::Dotenv => migrate::dotenv::parse(&a.source, a.expand)?,
    };
    if parsed.entries.is_empty() {
        return Err(Error::Usage(format!(
            "found no entries to migrate in {} ({} left out)",
            a.source.display(),
            parsed.unusable.len()
        )));
    }
    let req = MigrateRequest {
        format,
        source: a.source.display().to_string(),
        parsed,
        prefix: a.prefix.map(|p| p.trim_matches('/').to_owned()),
        on_conflict,
        dry_run: a.dry_run,
    };
    let Response::Migrated(report) = ctx.run(Request::Migrate(Box::new(req)))? else {
        return Err(unexpected());
    };
    render(ctx, &report)?;
    Ok(Exit::Ok)
}

fn render(ctx: &Ctx, r: &MigrateReport) -> Result<()> {
    if ctx.json {
        return emit(output::json_line(r).as_bytes());
    }
    let mut out = String::new();
    if !ctx.quiet {
        for i in &r.items {
            let action = if r.dry_run {
                format!("would be {}", i.action)
            } else {
                i.action.clone()
            };
            let (name, original) = (Shown::line(&i.name), Shown::line(&i.original));
            if i.name == i.original {
                out.push_str(&format!("{action}: {name}\n"));
            } else {
                out.push_str(&format!("{action}: {name} (from {original})\n"));
            }
            if !i.escaped.is_empty() {
                out.push_str(&format!(
                    "  control characters written out visibly in its {}\n",
                    i.escaped.join(", ")
                ));
            }
        }
        for u in &r.unusable {
            out.push_str(&format!(
                "left out: {} ({})\n",
                Shown::line(&u.original),
                Shown::line(&u.reason)
            ));
        }
    }
    let verb = if r.dry_run {
        "would migrate"
    } else {
        "migrated"
    };
    out.push_str(&format!(
        "{verb} {} entries from {} ({}): {} skipped, {} conflicts, {} left out\n",
        r.imported,
        r.format.label(),
        Shown::line(&r.source),
        r.skipped,
        r.conflicts,
        r.unusable.len()
    ));
    if r.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    emit(out.as_bytes())
}
