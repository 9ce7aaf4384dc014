//! The `age-oauth` binary: parse arguments, run, map errors to exit codes.

use clap::{CommandFactory, FromArgMatches};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `token` as scripts write it (they run it in loops) is read without building clap's whole tree
    // (`cli::token_command`); the whole tree parses everything else and answers help, `--version` and errors.
    let cli = age_oauth::cli::token_command(&args).unwrap_or_else(|| {
        let mut command = age_oauth::cli::Cli::command();
        let matches = command.try_get_matches_from_mut(args).unwrap_or_else(|e| e.exit());
        let cli = age_oauth::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
        // The process ends when `run` returns: tearing down clap's command tree first would only
        // cost time on every call (a tenth of `token`'s work on a valid cache).
        std::mem::forget((command, matches));
        cli
    });
    let code = match age_oauth::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            age_oauth::cli::report(&error);
            error.exit_code()
        }
    };
    std::process::exit(code);
}
