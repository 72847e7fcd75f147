//! `recovery new` and `recover`: the recovery key slot (docs/FORMAT.md "Recovery slot").

use crate::ctx::{Ctx, Exit, emit, forget_agent_key, unexpected, warn_all};
use crate::output;
use crate::prompt;
use clap::{Args, Subcommand};
use jeton::recovery::{self, RecoveryRequest, RecoveryResponse};
use jeton::request::{Request, Response};
use jeton::vault::Vault;
use jeton::{Result, time};

/// `recovery`.
#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Make a new recovery key and show it once; the previous one stops working
    New,
    /// Say whether a recovery key opens this vault
    Status,
}

/// `recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Read the recovery key from this open file descriptor
    #[arg(long, value_name = "N")]
    pub recovery_key_fd: Option<u32>,
    /// Read the new passphrase from this open file descriptor
    #[arg(long, value_name = "N")]
    pub new_passphrase_fd: Option<u32>,
}

pub fn run(ctx: &Ctx, c: RecoveryCommand) -> Result<Exit> {
    match c {
        RecoveryCommand::New => renew(ctx)?,
        RecoveryCommand::Status => {
            let Response::Recovery(RecoveryResponse::Status { present }) =
                ctx.run(Request::Recovery(RecoveryRequest::Status))?
            else {
                return Err(unexpected());
            };
            if ctx.json {
                emit(
                    output::json_line(&serde_json::json!({ "recovery_key": present })).as_bytes(),
                )?;
            } else if present {
                ctx.say("a recovery key opens this vault")?;
            } else {
                ctx.say("no recovery key: make one with `jeton recovery new`")?;
            }
        }
    }
    Ok(Exit::Ok)
}

/// `recovery new` re-keys the vault, so it needs the passphrase itself (the agent holds only
/// the vault key): read from the usual sources even when the agent is unlocked, checked by
/// opening the vault with it, and run here under the writer lock.
fn renew(ctx: &Ctx) -> Result<()> {
    let ask = ctx.ask();
    let passphrase = std::cell::OnceCell::new();
    let outcome = ctx.session.with_vault_key(
        true,
        |file| {
            let p = ask()?;
            let key = Vault::unlock(file, &p)?;
            let _ = passphrase.set(p);
            Ok(key)
        },
        |vault| {
            let p = passphrase.get().ok_or_else(unexpected)?;
            recovery::renew(vault, p, time::now())
        },
    )?;
    warn_all(&outcome.warnings);
    let msg = if outcome.value.replaced {
        "new recovery key made and the vault re-keyed; the previous key no longer opens it"
    } else {
        "recovery key made (the vault was re-keyed)"
    };
    emit(output::recovery_key(&outcome.value.key, msg, ctx.json, ctx.quiet).as_bytes())?;
    forget_agent_key(ctx)
}

pub fn recover(ctx: &Ctx, a: RecoverArgs) -> Result<Exit> {
    let key = prompt::recovery_key(a.recovery_key_fd)?;
    let source = prompt::new_passphrase_source(a.new_passphrase_fd)?;
    let outcome = ctx.session.with_vault_key(
        true,
        |file| recovery::unlock(file, &key),
        |vault| {
            let new = prompt::new_passphrase(source, "new passphrase")?;
            if let Some(w) = prompt::weak_passphrase_warning(&new) {
                eprintln!("jeton: warning: {w}");
            }
            recovery::recover_with(vault, &key, &new, time::now())
        },
    )?;
    warn_all(&outcome.warnings);
    ctx.say("new passphrase set; the vault was re-keyed and the recovery key still opens it (make a new one with `jeton recovery new` if it may have been seen)")?;
    forget_agent_key(ctx)?;
    Ok(Exit::Ok)
}
