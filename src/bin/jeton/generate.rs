//! `generate`: a random secret or passphrase on stdout (or the clipboard), with no vault.

use crate::args::{CharsetArg, ClassArg, GlobalArgs, recipe};
use crate::clip::ClipArgs;
use crate::ctx::{Exit, emit};
use crate::output::secret_json_line;
use clap::Args;
use jeton::Result;
use jeton::generate::{Recipe, eff_words};
use jeton::secret::SecretText;

/// `generate`.
#[derive(Debug, Args)]
pub struct GenerateCommand {
    /// Number of characters
    #[arg(long, default_value_t = 32)]
    pub length: usize,
    /// Alphabet
    #[arg(long, value_enum, default_value_t = CharsetArg::Alnum)]
    pub charset: CharsetArg,
    /// Characters never to use, e.g. 'O0Il1'
    #[arg(long, value_name = "CHARS", conflicts_with = "words")]
    pub exclude: Option<String>,
    /// Classes the secret holds at least one of, e.g. upper,lower,digit,symbol
    #[arg(
        long,
        value_name = "CLASSES",
        value_enum,
        value_delimiter = ',',
        conflicts_with = "words"
    )]
    pub require: Vec<ClassArg>,
    /// A passphrase of N random words from EFF's long list (7,776 words, 12.9 bits each)
    #[arg(long, value_name = "N", conflicts_with_all = ["length", "charset"])]
    pub words: Option<usize>,
    /// Between the words of --words
    #[arg(long, value_name = "S", requires = "words", default_value = "-")]
    pub separator: String,
    /// Also say how many bits of entropy the secret carries (on stderr)
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub copy: ClipArgs,
}

pub fn run(global: &GlobalArgs, a: &GenerateCommand) -> Result<Exit> {
    let copy = a.copy.checked()?;
    let recipe = recipe(
        a.length,
        a.charset,
        a.exclude.as_deref(),
        &a.require,
        a.words,
        &a.separator,
    )?;
    let secret = recipe.generate()?;
    let bits = recipe.entropy_bits();
    if a.verbose {
        let from = match &recipe {
            Recipe::Words { count, .. } => {
                format!("{count} words from a list of {}", eff_words().len())
            }
            Recipe::Chars {
                length,
                alphabet,
                require,
            } => {
                let mut from = format!("{length} characters from {}", alphabet.chars().count());
                if !require.is_empty() {
                    let names: Vec<&str> = require.iter().map(|c| c.name()).collect();
                    from.push_str(&format!(", with at least one {}", names.join(", ")));
                }
                from
            }
        };
        eprintln!("jeton: {bits:.1} bits of entropy ({from})");
    }
    if let Some(copy) = copy {
        copy.value(
            "the generated secret",
            secret.expose_secret().as_bytes(),
            global.quiet,
        )?;
    } else if global.json {
        let v = serde_json::json!({
            "secret": secret.expose_secret(),
            "entropy_bits": (bits * 10.0).round() / 10.0,
        });
        emit(secret_json_line(v).as_bytes())?;
    } else {
        let mut text = SecretText::with_capacity(secret.expose_secret().len() + 1);
        text.push_str(secret.expose_secret());
        text.push_str("\n");
        emit(text.as_bytes())?;
    }
    Ok(Exit::Ok)
}
