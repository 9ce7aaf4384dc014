//! The `age-oauth` binary: parse arguments, run, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = age_oauth::cli::Cli::parse();
    let code = match age_oauth::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            age_oauth::cli::report(&error);
            error.exit_code()
        }
    };
    std::process::exit(code);
}
