//! The `age-oauth` binary: parse arguments, run, map errors to exit codes.

use clap::{CommandFactory, FromArgMatches};

fn main() {
    let mut command = age_oauth::cli::Cli::command();
    let matches = command.try_get_matches_from_mut(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let cli = age_oauth::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    // The process ends when `run` returns: tearing down clap's command tree first would only
    // cost time on every call (a tenth of `token`'s work on a valid cache).
    std::mem::forget((command, matches));
    let code = match age_oauth::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            age_oauth::cli::report(&error);
            error.exit_code()
        }
    };
    std::process::exit(code);
}
