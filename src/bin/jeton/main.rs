//! The `jeton` binary. `main` alone owns exit codes (SPEC §5).

mod agent;
mod backup;
mod cli;
mod commands;
mod integrations;
mod lifecycle;
mod migrate;
mod output;
mod prompt;
mod recovery;
mod share;

use clap::Parser;

fn main() {
    for failure in jeton::harden::harden_process() {
        eprintln!("jeton: warning: hardening: {failure}");
    }
    let cli = cli::Cli::parse_from(integrations::invocation(std::env::args_os()));
    let code = match commands::run(cli) {
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
