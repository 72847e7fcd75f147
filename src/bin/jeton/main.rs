//! The `jeton` binary. `main` alone owns exit codes (SPEC §5).

mod agent;
mod backup;
mod cli;
mod clip;
mod commands;
mod complete;
mod editor;
mod find;
mod generate;
mod integrations;
mod issuer;
mod lifecycle;
mod migrate;
mod otp;
mod output;
mod prompt;
mod recovery;
mod share;
mod sync;
mod team;

use clap::Parser;
use clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;

fn main() {
    for failure in jeton::harden::harden_process() {
        eprintln!("jeton: warning: hardening: {failure}");
    }
    complete::answer_if_asked();
    let args = integrations::invocation(std::env::args_os());
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        // Help and version, asked for or shown for a missing subcommand: as clap prints them.
        Err(e) if !e.use_stderr() || e.kind() == DisplayHelpOnMissingArgumentOrSubcommand => {
            e.exit()
        }
        Err(e) => {
            eprintln!("jeton: error: {}", cli::usage_error(&e, &args));
            std::process::exit(2);
        }
    };
    let result = commands::run(cli);
    let code = match result {
        // A reader that stopped early (`jeton list | head -1`) is not an error.
        _ if output::stdout_closed() => 0,
        Ok(commands::Exit::Ok) => 0,
        Ok(commands::Exit::Code(code)) => code,
        Err(e) => {
            // Messages quote names, paths and imported text: escaped, on one line.
            eprintln!("jeton: error: {}", jeton::text::Shown::line(&e.to_string()));
            e.exit_code()
        }
    };
    std::process::exit(code);
}
