//! `otp`: the one-time code of an entry holding a TOTP seed.

use crate::clip;
use crate::ctx::{Ctx, Exit, emit, unexpected};
use crate::output::json_line;
use clap::Args;
use jeton::Result;
use jeton::request::{Request, Response};

/// `otp`.
#[derive(Debug, Args)]
pub struct OtpArgs {
    /// Entry holding an otpauth:// URI or a base32 seed (or whose NAME/otp or NAME/totp does)
    pub name: String,
    /// No trailing newline
    #[arg(short = 'n')]
    pub no_newline: bool,
    #[command(flatten)]
    pub copy: clip::ClipArgs,
}

pub fn otp(ctx: &Ctx, a: OtpArgs) -> Result<Exit> {
    let copy = a.copy.checked()?;
    let Response::Code(code) = ctx.run(Request::Otp { name: a.name })? else {
        return Err(unexpected());
    };
    if let Some(copy) = &copy {
        copy.value(&code.name, code.code.as_bytes(), ctx.quiet)?;
        return Ok(Exit::Ok);
    }
    if ctx.json {
        return emit(json_line(&code).as_bytes()).map(|()| Exit::Ok);
    }
    let end = if a.no_newline { "" } else { "\n" };
    emit(format!("{}{end}", code.code).as_bytes())?;
    Ok(Exit::Ok)
}
