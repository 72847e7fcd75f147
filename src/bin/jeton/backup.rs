//! `backup -o FILE [--to CONTACT|--age age1...]` and `backup verify FILE`.

use crate::ctx::{Ctx, Exit, emit, unexpected, warn_all};
use crate::output;
use clap::{Args, Subcommand};
use jeton::backup::{BackupRequest, BackupResponse, Summary};
use jeton::format::MAGIC;
use jeton::request::{Request, Response, Session};
use jeton::store::{Store, open_regular, read_input, write_atomic};
use jeton::{Error, Result};
use std::path::{Path, PathBuf};

/// `backup`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// File to write (created with mode 0600)
    #[arg(short = 'o', long = "output", value_name = "FILE", required = true)]
    pub output: Option<PathBuf>,
    /// Write an age-encrypted export to this contact instead of a copy of the vault file
    #[arg(long = "to", value_name = "CONTACT")]
    pub to: Vec<String>,
    /// Write an age-encrypted export to this age (or ssh-ed25519) recipient
    #[arg(long = "age", value_name = "RECIPIENT")]
    pub age: Vec<String>,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

/// `backup verify`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Prove a backup opens and show its generation, entry count and date; writes nothing
    Verify {
        /// The backup file
        file: PathBuf,
        /// age identity file, for an age-encrypted export
        #[arg(long, short = 'i', value_name = "FILE")]
        identity: Option<PathBuf>,
    },
}

pub fn run(ctx: &Ctx, a: BackupArgs) -> Result<Exit> {
    if let Some(BackupCommand::Verify { file, identity }) = a.command {
        return verify(ctx, &file, identity.as_deref());
    }
    let out = a
        .output
        .ok_or_else(|| Error::Usage("backup needs -o FILE".into()))?;
    let store = &ctx.session.store;
    if same_file(&out, store.path()) {
        return Err(Error::Usage(
            "the backup file cannot be the vault itself".into(),
        ));
    }
    if !a.force && std::fs::symlink_metadata(&out).is_ok() {
        return Err(Error::Exists(format!(
            "{} exists; pass --force to replace it",
            out.display()
        )));
    }
    let mut recipients = a.age;
    recipients.extend(a.to);
    if recipients.is_empty() {
        // A consistent copy: read under the writer lock, so no save runs meanwhile.
        let guard = store.lock()?;
        let file = store.read()?;
        drop(guard);
        write_atomic(&out, &file.to_bytes())?;
        let msg = format!(
            "backup written to {} (vault file, generation {}); check it with `jeton backup verify {}`",
            out.display(),
            file.header.generation,
            out.display()
        );
        return done(ctx, &msg, file.header.generation);
    }
    let Response::Backup(BackupResponse::Export { bytes, summary }) =
        ctx.run(Request::Backup(BackupRequest::Export { recipients }))?
    else {
        return Err(unexpected());
    };
    write_atomic(&out, &bytes)?;
    let msg = format!(
        "age-encrypted export written to {} (generation {}, {} entries); it holds every secret in clear for its recipients",
        out.display(),
        summary.generation,
        summary.entries
    );
    done(ctx, &msg, summary.generation)
}

fn done(ctx: &Ctx, msg: &str, generation: u64) -> Result<Exit> {
    if ctx.json {
        let v = serde_json::json!({"ok": true, "message": msg, "generation": generation});
        emit(output::json_line(&v).as_bytes())?;
    } else {
        ctx.say(msg)?;
    }
    Ok(Exit::Ok)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Largest age identity file read.
const MAX_IDENTITY_FILE: u64 = 1 << 20;

fn verify(ctx: &Ctx, file: &Path, identity: Option<&Path>) -> Result<Exit> {
    // Only a regular file is read (a device or a pipe could be endless), and never whole here:
    // a vault copy is read by the store, capped at the format's largest file, and an export is
    // streamed through age.
    let opened = open_regular(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::NotFound(format!("no such file: {}", file.display()))
        }
        std::io::ErrorKind::InvalidInput => Error::Usage(format!(
            "{} is not a regular file; give the backup file itself",
            file.display()
        )),
        _ => Error::io("cannot read", file, e),
    })?;
    let mut input = std::io::BufReader::new(opened);
    let head = {
        use std::io::BufRead;
        let buf = input
            .fill_buf()
            .map_err(|e| Error::io("cannot read", file, e))?;
        buf[..buf.len().min(MAGIC.len())].to_vec()
    };
    let (summary, kind) = if head == MAGIC {
        drop(input);
        let session = Session {
            store: Store::new(file.to_path_buf(), jeton::store::DEFAULT_LOCK_TIMEOUT),
            state_dir: None,
            accept_rollback: false,
        };
        let outcome = session.run(Request::Backup(BackupRequest::Summary), || {
            crate::prompt::passphrase(ctx.passphrase_fd)
        })?;
        warn_all(&outcome.warnings);
        let Response::Backup(BackupResponse::Summary(s)) = outcome.value else {
            return Err(unexpected());
        };
        (s, "vault file")
    } else {
        let id_path = identity.ok_or_else(|| {
            Error::Usage(format!(
                "{} is not a vault file; if it is an age-encrypted export, pass --identity FILE",
                file.display()
            ))
        })?;
        let id_bytes = read_input(id_path, MAX_IDENTITY_FILE, "identity file")?;
        let id_text = std::str::from_utf8(&id_bytes)
            .map_err(|_| Error::Usage("cannot read the age identity file".into()))?;
        (jeton::backup::verify_export(input, id_text)?, "age export")
    };
    report(ctx, file, kind, &summary)?;
    Ok(Exit::Ok)
}

fn report(ctx: &Ctx, file: &Path, kind: &str, s: &Summary) -> Result<()> {
    let current = ctx
        .session
        .store
        .read()
        .ok()
        .filter(|f| jeton::share::hex(&f.header.vault_id) == s.vault_id)
        .map(|f| f.header.generation);
    if ctx.json {
        let v = serde_json::json!({
            "ok": true,
            "file": file.display().to_string(),
            "kind": kind,
            "vault_id": s.vault_id,
            "generation": s.generation,
            "entries": s.entries,
            "active": s.active,
            "last_change": s.last_change.map(jeton::time::rfc3339),
            "recovery_key": s.recovery_slot,
            "current_generation": current,
        });
        return emit(output::json_line(&v).as_bytes());
    }
    let mut text = format!(
        "{} opens ({kind}): vault {}, generation {}, {} entries ({} active), last change {}\n",
        file.display(),
        s.vault_id,
        s.generation,
        s.entries,
        s.active,
        s.last_change
            .map(jeton::time::rfc3339)
            .unwrap_or_else(|| "unknown".into())
    );
    if kind == "vault file" {
        text.push_str(if s.recovery_slot {
            "a recovery key opens it too\n"
        } else {
            "no recovery key opens it (only the passphrase)\n"
        });
    }
    if let Some(g) = current {
        text.push_str(&format!(
            "the vault at {} is generation {g}\n",
            ctx.session.store.path().display()
        ));
    }
    emit(text.as_bytes())
}
