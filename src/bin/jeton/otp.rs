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
    /// Copy the code to the clipboard instead of printing it
    #[arg(long, short = 'c')]
    pub clip: bool,
    /// With --clip: copy through the terminal (an OSC 52 escape sequence on /dev/tty), for ssh
    #[arg(long, requires = "clip")]
    pub osc52: bool,
    /// Clear the clipboard after this long, if it still holds the code
    #[arg(long, value_name = "SPAN", requires = "clip", default_value = "45s")]
    pub clear: String,
}

pub fn otp(ctx: &Ctx, a: OtpArgs) -> Result<Exit> {
    let clear = jeton::time::parse_duration(&a.clear)?;
    if a.clip && !(1..=86_400).contains(&clear.as_secs()) {
        return Err(jeton::Error::Usage(
            "--clear must be between 1s and 1d".into(),
        ));
    }
    let Response::Code(code) = ctx.run(Request::Otp { name: a.name })? else {
        return Err(unexpected());
    };
    if a.clip {
        clip::clip(
            &code.name,
            code.code.as_bytes(),
            clear,
            ctx.quiet,
            clip::target(a.osc52),
        )?;
        return Ok(Exit::Ok);
    }
    if ctx.json {
        return emit(json_line(&code).as_bytes()).map(|()| Exit::Ok);
    }
    let end = if a.no_newline { "" } else { "\n" };
    emit(format!("{}{end}", code.code).as_bytes())?;
    Ok(Exit::Ok)
}
