//! The command-line contract: `run` maps each parsed command (grammar in `args.rs`) to the function that
//! does it; `main.rs` only parses, calls `run`, and turns an error into one line and an exit code.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the CLI is where output belongs

mod args;
mod connections;
mod doctor;
mod generate;
mod headless;
mod output;
mod parse;
mod profiles;
mod rows;
mod session;
mod store;

pub use args::Cli;
use args::{
    CacheCommand, Command, ConnectionsCommand, KeyCommand, MigrateCommand, ProfileCommand, StoreCommand, TokenArgs,
};
pub use connections::python_connection_id;
pub use generate::render_man;
pub use parse::token_command;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::interact::Terminal;
use crate::paths::Paths;

/// Runs a parsed command; `Ok` carries the exit code.
#[rustfmt::skip]
pub fn run(cli: Cli) -> Result<i32> {
    let env = crate::env::process(); // read once, here, and handed down
    let paths = Paths::from_env(env)?;
    let mut ui = Terminal::new(cli.global.verbose, env);
    let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let engine = Engine::with_clock(paths.clone(), crate::clock::from_env(env)?);
    let chosen = connections::chosen_for(&engine, &cwd, &cli)?;
    let (profile, ui) = (chosen.as_deref(), &mut ui);
    let open = || engine.open(&cwd, profile);
    match cli.command {
        Command::Providers { json } => profiles::cmd_providers(json),
        Command::Profile(ProfileCommand::Add(args)) => profiles::cmd_profile_add_asking(&engine, &cwd, ui, args),
        Command::Profile(ProfileCommand::List { json }) => profiles::cmd_profile_list(&engine, &cwd, json),
        Command::Profile(ProfileCommand::Show { name, json }) => profiles::cmd_profile_show(&engine, &cwd, &name, json),
        Command::Profile(ProfileCommand::Remove { name, yes }) => profiles::cmd_remove_confirmed(&engine, &cwd, ui, &name, yes),
        Command::Connections(ConnectionsCommand::Add(args)) => connections::cmd_add(&engine, &cwd, ui, &args),
        Command::Connections(ConnectionsCommand::List { json }) => connections::cmd_list(&engine, &cwd, json),
        Command::Connections(ConnectionsCommand::Use { selector })
        | Command::Profile(ProfileCommand::Use { name: selector }) => connections::cmd_use(&engine, &cwd, ui, &selector),
        Command::Connections(ConnectionsCommand::Show { selector, json }) => connections::cmd_show(&engine, &cwd, selector.as_deref(), profile, json),
        Command::Connections(ConnectionsCommand::Info { json }) => connections::cmd_info(&engine, &cwd, json),
        Command::Connections(ConnectionsCommand::Remove { selector, all, yes }) => connections::cmd_remove(&engine, &cwd, ui, selector.as_deref(), all, yes),
        Command::Login { with_key: true, .. } => session::cmd_login_with_key(&engine, &mut open()?, ui),
        Command::Login { no_browser, force, .. } => session::cmd_login(&engine, &mut open()?, ui, force, no_browser),
        Command::Token(TokenArgs { rotate_refresh_token: true, json, .. }) => connections::cmd_rotate(&engine, &mut open()?, ui, json),
        Command::Token(TokenArgs { json, min_ttl, server: Some(server), force_refresh, .. }) => session::cmd_server_token(&engine, &mut open()?, ui, &server, session::wanted_ttl(min_ttl, force_refresh), json),
        Command::Token(TokenArgs { json, format, min_ttl, server: None, force_refresh, .. }) => session::cmd_token(&engine, &mut open()?, ui, session::wanted_ttl(min_ttl, force_refresh), if json { args::TokenFormat::Json } else { format }),
        Command::Exec { command } => session::cmd_exec_with_token(&engine, &mut open()?, ui, &command),
        Command::Request { method, data, headers, allow_other_host, url } => session::cmd_request_url(&engine, &mut open()?, ui, (method, data, &headers, allow_other_host), &url),
        Command::Whoami { json } => session::cmd_whoami(&engine, &mut open()?, ui, json),
        Command::Logout => session::cmd_logout(&engine, &mut open()?, ui),
        Command::Status { json } => profiles::cmd_status(&engine, &cwd, profile, json),
        Command::Cache(CacheCommand::Export { recipient, recipients_file, passphrase, output }) => headless::cmd_export(&engine, &open()?, ui, &recipient, recipients_file.as_deref(), passphrase, &output),
        Command::Cache(CacheCommand::Import { file, as_name, force }) => headless::cmd_import(&paths, ui, &file, as_name.as_deref(), force),
        Command::Key(KeyCommand::Show) => headless::cmd_key_show(&engine),
        Command::Key(KeyCommand::Rotate) => headless::cmd_key_rotate(&engine, ui),
        Command::Migrate(MigrateCommand::PythonAgeOauth { from, shred }) => headless::cmd_migrate(&engine, ui, from, shred),
        Command::Store(StoreCommand::Push { force }) => store::cmd_push(&engine, &open()?, ui, force),
        Command::Store(StoreCommand::Status { json }) => store::cmd_status(&engine, &open()?, ui, json),
        Command::Store(StoreCommand::Unclaim { force }) => store::cmd_unclaim(&engine, &open()?, ui, force),
        Command::Completions { shell } => generate::cmd_completions(shell),
        Command::Man => generate::cmd_man(),
        Command::Doctor { json } => doctor::cmd_doctor(&engine, &cwd, profile, json),
        #[cfg(feature = "sandbox")]
        Command::Sandbox { port, tls_cert, tls_key } => crate::demo::run_sandbox(port, tls_cert.zip(tls_key).map(|(cert, key)| crate::sandbox::TlsFiles { cert, key })),
        #[cfg(feature = "sandbox")]
        Command::Demo => crate::demo::run_demo(ui),
        #[cfg(not(feature = "sandbox"))]
        Command::Sandbox { .. } | Command::Demo => Err(Error::Config(
            "this build of age-oauth has no simulators (built without the default `sandbox` feature): \
             `sandbox` and `demo` are unavailable"
                .into(),
        )),
    }
}

/// Prints an error the one way errors are reported.
pub fn report(error: &Error) {
    let color = crate::env::process().get(&crate::env::NO_COLOR).is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let label = if color { "\x1b[31merror:\x1b[0m" } else { "error:" };
    // Messages carry server text (and URLs as typed): no control sequences, no URL passwords.
    eprintln!("{label} {}", crate::redact::for_terminal(&error.to_string()));
}
