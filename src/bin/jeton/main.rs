//! The `jeton` binary. `main` alone owns exit codes (SPEC §5).
//!
//! The arrows point one way: `main` -> `cli` (the command enum and dispatch) -> one module per
//! command family, owning its arguments and its run -> `args` (global and shared flags) and
//! `ctx` (the context, exits, stdout) -> `output`, `prompt`, `clip`, `config_file` -> the library. No family
//! names another; `cli.rs`'s tests check it.

// The command families.
mod agent;
mod backup;
mod complete;
mod entries;
mod find;
mod generate;
mod integrations;
mod lifecycle;
mod migrate;
mod otp;
mod recovery;
mod scan;
mod share;
mod sync;
mod team;
mod vault;

// What they stand on.
mod args;
mod cli;
mod clip;
mod config_file;
mod ctx;
mod output;
mod prompt;

use clap::Parser;
use clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;

fn main() {
    for failure in jeton::harden::harden_process() {
        eprintln!("jeton: warning: hardening: {failure}");
    }
    cli::answer_completion_if_asked();
    let args = cli::args();
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
    // An editor's form or an npmrc that a killed jeton left behind: wiped by the next one.
    jeton::runtime::scratch::clean_stale();
    let result = cli::run(cli);
    let code = match result {
        // A reader that stopped early (`jeton list | head -1`) is not an error.
        _ if output::stdout_closed() => 0,
        Ok(ctx::Exit::Ok) => 0,
        Ok(ctx::Exit::Code(code)) => code,
        Err(e) => {
            // Messages quote names, paths and imported text: escaped, on one line.
            eprintln!("jeton: error: {}", jeton::text::Shown::line(&e.to_string()));
            e.exit_code()
        }
    };
    std::process::exit(code);
}
