//! `otp`: the one-time code of an entry holding a TOTP seed; and the seed `add --totp` reads.

use crate::commands::{Ctx, Exit, emit, unexpected};
use crate::output::json_line;
use crate::prompt;
use clap::Args;
use jeton::Result;
use jeton::request::{Request, Response, SecretInput};
use jeton::secret::Token;

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
        return crate::clip::clip(&code.name, code.code.as_bytes(), clear, ctx.quiet);
    }
    if ctx.json {
        return emit(json_line(&code).as_bytes()).map(|()| Exit::Ok);
    }
    let end = if a.no_newline { "" } else { "\n" };
    emit(format!("{}{end}", code.code).as_bytes())?;
    Ok(Exit::Ok)
}

/// The seed for `add NAME --totp`, from the prompt or stdin (never an argument): an otpauth://
/// URI, kept as given, or a base32 seed, kept as an otpauth:// URI labelled with NAME. Refused
/// (exit 2) before the vault is opened when it is neither.
pub fn seed_input(name: &str) -> Result<SecretInput> {
    let given = prompt::secret_input()?;
    let uri = jeton::otp::to_uri(given.expose_secret(), name)?;
    Ok(SecretInput::Value(Token::new(uri.to_string())))
}
