//! The command-line contract: argument definitions (clap) and what each command does.
//! `main.rs` only parses, calls `run`, and turns an error into one line and an exit code.

use crate::clock::{hms, rfc3339};
use crate::config::{self, loose_value, Config, FlagValue};
use crate::engine::{Engine, LoginOutcome, Session};
use crate::error::{Error, Result};
use crate::http::{HttpRequest, Method};
use crate::interact::{Interaction, Terminal};
use crate::paths::Paths;
use crate::registry::{self, AuthVerdict, SecretOrigin};
use crate::secret::Secret;
use crate::token::TokenSet;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};
use std::io::Write;

mod connections;
mod headless;
mod profiles;
mod session;
pub use connections::python_connection_id;
pub(crate) use connections::ConnectionAddArgs;
use connections::*;
use headless::*;
use profiles::*;
use session::*;

const EXAMPLES: &str = "\
Examples:
  age-oauth demo                                   # try everything against a built-in sandbox portal
  age-oauth profile add prod --provider esri-oob --portal https://gis.example.com/portal --client-id MYAPP
  age-oauth login --profile prod                   # once, in a terminal
  curl -H \"X-Esri-Authorization: Bearer $(age-oauth token --profile prod)\" ...
  AGE_OAUTH_PROFILE=prod age-oauth whoami

Exit codes: 0 ok, 2 usage or configuration error, 3 login required,
            4 the server refused or could not be reached, 1 anything else.";

#[derive(Parser, Debug)]
#[command(name = "age-oauth", version, about = "Tokens for scripts, from an age-encrypted cache that refreshes itself", after_help = EXAMPLES)]
/// The command line of `age-oauth` (see `age-oauth --help`).
pub struct Cli {
    /// Profile to use (default: AGE_OAUTH_PROFILE, then default_profile, then the only one).
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["connection", "connection_id"])]
    pub(crate) profile: Option<String>,
    /// Pick the profile as the Python age-oauth did: exact name, name in any case, its old connection id, a unique prefix.
    #[arg(long, global = true, value_name = "SELECTOR", conflicts_with = "connection_id")]
    pub(crate) connection: Option<String>,
    /// The profile's exact name, or the Python age-oauth's connection id of a migrated one.
    #[arg(long, global = true, value_name = "ID")]
    pub(crate) connection_id: Option<String>,
    /// More detail on stderr (repeat for more); never prints a secret.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// List the providers this build knows, with their fields.
    #[command(after_help = "Example:\n  age-oauth providers --json | jq '.[].name'")]
    Providers {
        #[arg(long)]
        json: bool,
    },
    /// Add, list, show or remove profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// The Python age-oauth's commands (list, add, use, show, info, remove), over profiles.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Sign in (opens a browser or asks for a code) and cache the tokens.
    #[command(
        after_help = "Examples:\n  age-oauth login --profile prod\n  age-oauth login --profile prod --no-browser   # print the URL, read the code from stdin"
    )]
    Login {
        /// Do not open a browser: print the URL and read the answer from stdin.
        #[arg(long)]
        no_browser: bool,
        /// Sign in again even if the cached token is still valid.
        #[arg(long)]
        force: bool,
    },
    /// Print a valid access token (refreshing first if needed); never prompts.
    #[command(
        after_help = "Examples:\n  TOKEN=$(age-oauth token --profile prod)\n  age-oauth token --json --min-ttl 600\n  \
curl -H \"$(age-oauth token --profile prod --format header)\" https://gis.example.com/portal/sharing/rest/portals/self?f=json\n  \
eval \"$(age-oauth token --profile prod --format env)\"\n  \
age-oauth token --profile prod --server https://gis.example.com/arcgis   # federated server"
    )]
    Token {
        /// One JSON object: access_token, expires_at, username, profile, provider (same as --format json).
        #[arg(long)]
        json: bool,
        /// token (default): the token alone; env: `export AGE_OAUTH_TOKEN=…` lines; json; header: the full header line.
        #[arg(long, value_enum, default_value_t = TokenFormat::Token)]
        format: TokenFormat,
        /// Refresh first unless the token stays valid for at least this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        min_ttl: u64,
        /// Refresh now even if the cached token looks valid (a server rejected it).
        #[arg(long, conflicts_with = "min_ttl")]
        force_refresh: bool,
        /// Print a token for this ArcGIS Server federated with the profile's portal instead.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Exchange the refresh token for a new one now (ArcGIS exchange_refresh_token); prints what happened, not the token.
        #[arg(long, conflicts_with_all = ["server", "min_ttl"])]
        rotate_refresh_token: bool,
        /// (Python age-oauth) The profile to use, picked like --connection.
        #[arg(long = "portal", value_name = "SELECTOR")]
        portal_selector: Option<String>,
    },
    /// Print who the token belongs to, as the server sees it.
    #[command(
        after_help = "Prints the username alone (USER=$(age-oauth whoami)). For an application token, a person at a \
terminal sees the app's title, app ID, item ID and owner; a pipe gets the app ID alone. --json has everything."
    )]
    Whoami {
        #[arg(long)]
        json: bool,
    },
    /// Revoke the refresh token where possible and delete the cached tokens.
    Logout,
    /// Send an authenticated request and print the answer, like `curl --fail`.
    #[command(
        after_help = "Examples:\n  age-oauth request --profile prod 'https://gis.example.com/portal/sharing/rest/portals/self?f=json'\n  \
age-oauth request --profile prod -X POST -d 'f=json&q=roads' https://gis.example.com/portal/sharing/rest/search\n\n\
Exit codes: 4 when the server refuses the credentials (HTTP 401/403, ArcGIS 498/499/403), 1 for other HTTP errors."
    )]
    Request {
        /// HTTP method (default GET, or POST when -d is given).
        #[arg(short = 'X', long = "request", value_name = "METHOD")]
        method: Option<String>,
        /// Request body, sent as application/x-www-form-urlencoded unless a -H Content-Type says otherwise.
        #[arg(short = 'd', long = "data", value_name = "DATA")]
        data: Option<String>,
        /// Extra header "Name: value" (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// Allow sending the credentials to a host other than the profile's own service.
        #[arg(long)]
        allow_other_host: bool,
        url: String,
    },
    /// Run a command with a valid token in its environment: AGE_OAUTH_TOKEN (and AGE_OAUTH_PORTAL, AGE_OAUTH_USERNAME).
    #[command(
        after_help = "Example:\n  age-oauth exec --profile prod -- python publish.py   # reads os.environ['AGE_OAUTH_TOKEN']\n\n\
The exit code is the command's."
    )]
    Exec {
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Export a profile to another machine's key, or import one (headless servers).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// This machine's age key: show it (to export to it) or rotate it.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Bring profiles over from another tool.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  age-oauth completions bash > ~/.local/share/bash-completion/completions/age-oauth"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this command line.
    #[command(after_help = "Example:\n  age-oauth man > ~/.local/share/man/man1/age-oauth.1")]
    Man,
    /// Show where state lives, which key protects it, and every profile's login state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a local ArcGIS Portal simulator to try profiles and scripts offline.
    #[command(
        after_help = "Examples:\n  age-oauth sandbox --port 8787   # then use portal = \"http://127.0.0.1:8787/portal\"\n  \
age-oauth sandbox --port 8443 --tls-cert cert.pem --tls-key key.pem   # https://127.0.0.1:8443/portal"
    )]
    Sandbox {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key), e.g. for the `arcgis` package.
        #[arg(long, value_name = "PEM", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Show the whole flow end to end against a throw-away sandbox: no network, no prompt.
    Demo,
}

#[derive(Subcommand, Debug)]
pub(crate) enum ProfileCommand {
    /// Add or update a profile: settings go to the user file, secrets to the encrypted cache.
    #[command(
        after_help = "Examples:\n  age-oauth profile add                            # at a terminal: asks for each field\n  age-oauth profile add prod --provider esri-oob --portal https://gis.example.com/portal --client-id MYAPP\n  age-oauth profile add app --provider esri-app --portal https://www.arcgis.com --client-id ID --client-secret S\n  age-oauth profile add prod --provider esri-oob --set expiration=20160 --set referer=https://apps.example.com\n\n\
At a terminal, missing fields are asked for in the provider's order (Ctrl-C writes nothing); elsewhere they are listed (exit 2)."
    )]
    Add(AddArgs),
    /// List profiles.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a profile's effective settings and where each came from (secrets redacted).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile from the user file and delete its cache (asks first at a terminal).
    Remove {
        name: String,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Make a profile the default one (`default_profile` in the user file).
    #[command(after_help = "Example:\n  age-oauth profile use prod\n  age-oauth token            # now uses prod")]
    Use { name: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenFormat {
    Token,
    Env,
    Json,
    Header,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CacheCommand {
    /// Re-encrypt a profile (settings and cache) to another machine's age key or a passphrase.
    #[command(
        after_help = "Examples:\n  age-oauth cache export --profile prod --recipient age1… -o prod.age   # key from `age-oauth key show` on the server\n  \
AGE_OAUTH_EXPORT_PASSPHRASE=… age-oauth cache export --profile prod --passphrase -o prod.age"
    )]
    Export {
        /// An age public key (age1…) to encrypt to (repeatable).
        #[arg(long, value_name = "AGE_PUBLIC_KEY")]
        recipient: Vec<String>,
        /// A file of age public keys, one per line.
        #[arg(long, value_name = "FILE")]
        recipients_file: Option<std::path::PathBuf>,
        /// Encrypt to a passphrase instead: AGE_OAUTH_EXPORT_PASSPHRASE when set (needed without a terminal), else asked twice.
        #[arg(long, conflicts_with_all = ["recipient", "recipients_file"])]
        passphrase: bool,
        /// Where to write the export (0600).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: std::path::PathBuf,
    },
    /// Import an export on this machine; it is then kept under this machine's own key.
    #[command(
        after_help = "Examples:\n  age-oauth cache import prod.age            # made for `age-oauth key show` of this machine\n  \
AGE_OAUTH_IDENTITY=~/server-key.txt age-oauth cache import prod.age --as prod\n  \
AGE_OAUTH_EXPORT_PASSPHRASE=… age-oauth cache import prod.age   # a --passphrase export, no terminal needed\n\n\
A passphrase export is opened with AGE_OAUTH_EXPORT_PASSPHRASE (or AGE_OAUTH_PASSPHRASE), else the passphrase is asked on the terminal."
    )]
    Import {
        file: std::path::PathBuf,
        /// Profile name here (default: the exported one).
        #[arg(long = "as", value_name = "NAME")]
        as_name: Option<String>,
        /// Replace an existing cache of that name.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Print this machine's age public key (creates the key on first use).
    Show,
    /// Re-encrypt every cache to a new identity and replace the identity file.
    Rotate,
}

#[derive(Subcommand, Debug)]
pub(crate) enum MigrateCommand {
    /// Import the Python age-oauth's connections (client secrets and tokens move into the encrypted cache).
    #[command(name = "python-age-oauth")]
    PythonAgeOauth {
        /// The Python store (default: $XDG_CONFIG_HOME/age_oauth).
        #[arg(long, value_name = "DIR")]
        from: Option<std::path::PathBuf>,
        /// Overwrite and delete the old plaintext .env files after a successful migration.
        #[arg(long)]
        shred: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConnectionsCommand {
    /// List profiles: NAME (active, default)  -  provider  -  URL  -  login state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a profile with the Python age-oauth's flags; at a terminal, asks for what is missing.
    #[command(
        after_help = "Examples:\n  age-oauth connections add        # asks: label, portal URL, verify SSL, client ID, client secret\n  \
age-oauth connections add --label Prod --portal https://gis.example.com/portal --client-id MYAPP\n  \
age-oauth connections add --label Robot --auth-type app --portal https://gis.example.com/portal --client-id ID --client-secret S\n\n\
The new profile becomes the default one unless --no-default (or --no-active) is given."
    )]
    Add(ConnectionAddArgs),
    /// Make a profile the default one (same as `profile use`).
    Use { selector: String },
    /// Show a profile's settings (default: the active, else the default, else the only profile).
    Show {
        selector: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Where configuration and caches live, and which profile is active (AGE_OAUTH_PROFILE) and default.
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Remove a profile and its encrypted cache (asks first at a terminal), or --all of them.
    Remove {
        #[arg(required_unless_present = "all")]
        selector: Option<String>,
        /// Remove every profile of the user file and every cache (asks for the word DELETE at a terminal).
        #[arg(long, conflicts_with = "selector")]
        all: bool,
        /// Do not ask for confirmation (needed for --all without a terminal).
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// Profile name (asked at a terminal when missing).
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) fields: FieldArgs,
}

#[derive(Args, Debug, Default, Clone)]
pub(crate) struct FieldArgs {
    /// Provider name (see `age-oauth providers`); default esri-oob, or the profile's current one.
    #[arg(long)]
    pub(crate) provider: Option<String>,
    /// Portal URL.
    #[arg(long, visible_alias = "url")]
    pub(crate) portal: Option<String>,
    /// OAuth client_id (App ID).
    #[arg(long)]
    pub(crate) client_id: Option<String>,
    /// Client secret: stored encrypted, never in a file. Prefer AGE_OAUTH_CLIENT_SECRET or the prompt (a flag is visible to `ps`).
    #[arg(long, value_parser = parse_secret)]
    pub(crate) client_secret: Option<Secret>,
    /// true, false, or the path of a PEM CA bundle.
    #[arg(long, value_name = "true|false|PATH")]
    pub(crate) verify_ssl: Option<String>,
    /// Any field of the provider; VALUE is read as TOML when it parses, else as a string.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
}

/// Runs a parsed command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let paths = Paths::from_env()?;
    let mut ui = Terminal::new(cli.verbose);
    let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let engine = Engine::with_clock(paths.clone(), crate::clock::from_env()?);
    let token_selector = match &cli.command {
        Command::Token { portal_selector: Some(s), .. } if cli.connection.is_none() => Some(s.as_str()),
        _ => None,
    };
    let chosen = chosen_profile(
        &engine,
        &cwd,
        cli.profile.as_deref(),
        cli.connection.as_deref().or(token_selector),
        cli.connection_id.as_deref(),
    )?;
    let profile = chosen.as_deref();
    match cli.command {
        Command::Providers { json } => cmd_providers(json),
        Command::Profile(ProfileCommand::Add(args)) => {
            let (name, provider) = ask_name_and_provider(&engine, &cwd, &mut ui, args.name.as_deref(), &args.fields)?;
            let fields = FieldArgs { provider, ..args.fields };
            cmd_profile_add(&engine, &cwd, &mut ui, &name, &fields)
        }
        Command::Connections(ConnectionsCommand::Add(args)) => connections::cmd_add(&engine, &cwd, &mut ui, &args),
        Command::Connections(ConnectionsCommand::List { json }) => connections::cmd_list(&engine, &cwd, json),
        Command::Connections(ConnectionsCommand::Use { selector })
        | Command::Profile(ProfileCommand::Use { name: selector }) => {
            connections::cmd_use(&engine, &cwd, &mut ui, &selector)
        }
        Command::Connections(ConnectionsCommand::Show { selector, json }) => {
            let config = Config::load(&engine.paths, &cwd)?;
            let name = match (selector.as_deref(), profile) {
                (None, Some(p)) => p.to_string(),
                (s, _) => connections::select(&engine, &config, s)?,
            };
            cmd_profile_show(&engine, &cwd, &name, json)
        }
        Command::Connections(ConnectionsCommand::Info { json }) => connections::cmd_info(&engine, &cwd, json),
        Command::Connections(ConnectionsCommand::Remove { selector, all, yes }) => {
            connections::cmd_remove(&engine, &cwd, &mut ui, selector.as_deref(), all, yes)
        }
        Command::Profile(ProfileCommand::List { json }) => cmd_profile_list(&engine, &cwd, json),
        Command::Profile(ProfileCommand::Show { name, json }) => cmd_profile_show(&engine, &cwd, &name, json),
        Command::Profile(ProfileCommand::Remove { name, yes }) => {
            if !confirm_remove(&engine, &cwd, &mut ui, &name, yes)? {
                return Ok(1);
            }
            cmd_profile_remove(&engine, &cwd, &mut ui, &name)
        }
        Command::Login { no_browser, force } => {
            let mut session = engine.open(&cwd, profile)?;
            cmd_login(&engine, &mut session, &mut ui, force, no_browser)
        }
        Command::Token { rotate_refresh_token: true, json, .. } => {
            let mut session = engine.open(&cwd, profile)?;
            cmd_rotate(&engine, &mut session, &mut ui, json)
        }
        Command::Token { json, min_ttl, server: Some(server), force_refresh, .. } => {
            let min_ttl = if force_refresh { u64::MAX } else { min_ttl };
            let mut session = engine.open(&cwd, profile)?;
            let found = crate::engine::federation::server_token(&engine, &mut session, &mut ui, &server, min_ttl)?;
            if json {
                print_json(&json!({
                    "access_token": found.token.expose(),
                    "expires_at": found.expires_at.map(rfc3339),
                    "server": found.server,
                    "profile": session.name(),
                    "provider": session.provider_name(),
                }))
            } else {
                print_line(found.token.expose())
            }
        }
        Command::Token { json, format, min_ttl, server: None, force_refresh, .. } => {
            // No token is valid for u64::MAX seconds, so the engine refreshes under its lock.
            let min_ttl = if force_refresh { u64::MAX } else { min_ttl };
            let mut session = engine.open(&cwd, profile)?;
            let tokens = engine.token(&mut session, &mut ui, min_ttl)?;
            if tokens.access_token.is_empty() {
                return Err(Error::Config(format!(
                    "profile '{0}' ({1}) signs each request in itself and holds no bearer token: use \
                     `age-oauth request --profile {0} URL`, or (web-tier) set `generate_token_url` to get an ArcGIS token",
                    session.name(),
                    session.provider_name()
                )));
            }
            match if json { TokenFormat::Json } else { format } {
                TokenFormat::Json => print_json(&token_json(&session, &tokens)),
                TokenFormat::Token => print_line(tokens.access_token.expose()),
                TokenFormat::Header => {
                    print_line(&format!("{}: Bearer {}", session.provider.token_header(), tokens.access_token.expose()))
                }
                TokenFormat::Env => {
                    let mut out = format!("export AGE_OAUTH_TOKEN={}\n", shell_quote(tokens.access_token.expose()));
                    if let Some(at) = tokens.expires_at {
                        out.push_str(&format!("export AGE_OAUTH_TOKEN_EXPIRES_AT={}\n", shell_quote(&rfc3339(at))));
                    }
                    print_line(out.trim_end())
                }
            }
        }
        Command::Exec { command } => {
            let mut session = engine.open(&cwd, profile)?;
            let tokens = engine.token(&mut session, &mut ui, 0)?;
            cmd_exec(&session, &tokens, &command)
        }
        Command::Cache(CacheCommand::Export { recipient, recipients_file, passphrase, output }) => {
            let session = engine.open(&cwd, profile)?;
            cmd_export(&engine, &session, &mut ui, &recipient, recipients_file.as_deref(), passphrase, &output)
        }
        Command::Cache(CacheCommand::Import { file, as_name, force }) => {
            cmd_import(&paths, &mut ui, &file, as_name.as_deref(), force)
        }
        Command::Key(KeyCommand::Show) => match engine.store.public_key(true)? {
            Some(key) => print_line(&key),
            None => Err(Error::Config(
                "the caches are protected by a passphrase (AGE_OAUTH_PASSPHRASE): this machine has no age key to show"
                    .into(),
            )),
        },
        Command::Key(KeyCommand::Rotate) => {
            let (public, count) = crate::headless::rotate_identity(&engine)?;
            ui.info(&format!("Re-encrypted {count} cache(s) to the new key {public}; the old key is gone."));
            print_line(&public)
        }
        Command::Migrate(MigrateCommand::PythonAgeOauth { from, shred }) => cmd_migrate(&engine, &mut ui, from, shred),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "age-oauth", &mut out);
            print_bytes(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            render_man(&mut out)?;
            print_bytes(&out)
        }
        Command::Whoami { json } => {
            let mut session = engine.open(&cwd, profile)?;
            let who = engine.whoami(&mut session, &mut ui)?;
            if json {
                let mut v = serde_json::to_value(&who).unwrap_or_default();
                v["profile"] = json!(session.name());
                v["provider"] = json!(session.provider_name());
                print_json(&v)
            } else {
                for (k, v) in &who.details {
                    ui.debug(1, &format!("{k}: {}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string())));
                }
                if who.details.get("auth_type").and_then(Value::as_str) == Some("app")
                    && std::io::IsTerminal::is_terminal(&std::io::stdout())
                {
                    return print_line(&app_block(&who));
                }
                print_line(&who.username)
            }
        }
        Command::Logout => {
            let mut session = engine.open(&cwd, profile)?;
            let report = engine.logout(&mut session, &mut ui)?;
            if !report.removed_tokens {
                ui.info(&format!("profile '{}' was not logged in; nothing to do", session.name()));
            } else {
                if let Some(line) = &report.revocation {
                    ui.info(line);
                }
                ui.info(&format!(
                    "Logged out of profile '{}': cached tokens deleted{}",
                    session.name(),
                    if report.kept_secrets {
                        " (stored secrets kept; `age-oauth profile remove` deletes them)"
                    } else {
                        ""
                    }
                ));
            }
            Ok(0)
        }
        Command::Request { method, data, headers, allow_other_host, url } => {
            let mut session = engine.open(&cwd, profile)?;
            session.allow_other_host = allow_other_host;
            let request = build_request(&session, method, data, &headers, &url)?;
            cmd_request(&engine, &mut session, &mut ui, &request)
        }
        Command::Status { json } => cmd_status(&engine, &cwd, json),
        Command::Sandbox { port, tls_cert, tls_key } => {
            let tls = tls_cert.zip(tls_key).map(|(cert, key)| crate::sandbox::TlsFiles { cert, key });
            crate::demo::run_sandbox(port, tls)
        }
        Command::Demo => crate::demo::run_demo(&mut ui),
    }
}

/// Reads a secret argument straight into a `Secret`, so that `Debug` of the parsed
/// command line never shows it.
fn parse_secret(value: &str) -> std::result::Result<Secret, String> {
    Ok(Secret::new(value))
}

/// The man page, generated from the clap definition.
pub fn render_man(out: &mut Vec<u8>) -> Result<()> {
    use clap::CommandFactory;
    clap_mangen::Man::new(Cli::command()).render(out).map_err(|e| Error::io("cannot render the man page", e))
}

/// Prints an error the one way errors are reported.
pub fn report(error: &Error) {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let label = if color { "\x1b[31merror:\x1b[0m" } else { "error:" };
    // Messages carry server text (and URLs as typed): no control sequences, no URL passwords.
    eprintln!("{label} {}", crate::redact::for_terminal(&error.to_string()));
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error.
fn print_line(text: &str) -> Result<i32> {
    print_bytes(format!("{}\n", crate::redact::printable(text)).as_bytes())
}

/// Writes bytes to stdout; a closed pipe (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Error::io("cannot write to stdout", e)),
    }
}

fn print_json(value: &Value) -> Result<i32> {
    print_line(&serde_json::to_string_pretty(value).unwrap_or_default())
}
