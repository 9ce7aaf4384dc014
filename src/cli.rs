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
pub struct Cli {
    /// Profile to use (default: AGE_OAUTH_PROFILE, then default_profile, then the only one).
    #[arg(long, global = true, visible_alias = "connection", value_name = "NAME")]
    pub profile: Option<String>,
    /// More detail on stderr (repeat for more); never prints a secret.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the providers this build knows, with their fields.
    #[command(after_help = "Example:\n  age-oauth providers --json | jq '.[].name'")]
    Providers {
        #[arg(long)]
        json: bool,
    },
    /// Add, list, show or remove profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Alias of `profile add` with the flags of the Python age-oauth (`--label`).
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
        /// Print a token for this ArcGIS Server federated with the profile's portal instead.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Print who the token belongs to, as the server sees it.
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
        after_help = "Example:\n  age-oauth sandbox --port 8787   # then use portal = \"http://127.0.0.1:8787/portal\""
    )]
    Sandbox {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Show the whole flow end to end against a throw-away sandbox: no network, no prompt.
    Demo,
}

#[derive(Subcommand, Debug)]
pub enum ProfileCommand {
    /// Add or update a profile: settings go to the user file, secrets to the encrypted cache.
    #[command(
        after_help = "Examples:\n  age-oauth profile add prod --provider esri-oob --portal https://gis.example.com/portal --client-id MYAPP\n  age-oauth profile add app --provider esri-app --portal https://www.arcgis.com --client-id ID --client-secret S\n  age-oauth profile add prod --provider esri-oob --set expiration=20160 --set referer=https://apps.example.com"
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
    /// Remove a profile from the user file and delete its cache.
    Remove { name: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    Token,
    Env,
    Json,
    Header,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
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
        /// Encrypt to a passphrase instead (AGE_OAUTH_EXPORT_PASSPHRASE, or asked twice on a terminal).
        #[arg(long, conflicts_with_all = ["recipient", "recipients_file"])]
        passphrase: bool,
        /// Where to write the export (0600).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: std::path::PathBuf,
    },
    /// Import an export on this machine; it is then kept under this machine's own key.
    #[command(
        after_help = "Examples:\n  age-oauth cache import prod.age            # made for `age-oauth key show` of this machine\n  \
AGE_OAUTH_IDENTITY=~/server-key.txt age-oauth cache import prod.age --as prod\n  AGE_OAUTH_PASSPHRASE=… age-oauth cache import prod.age"
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
pub enum KeyCommand {
    /// Print this machine's age public key (creates the key on first use).
    Show,
    /// Re-encrypt every cache to a new identity and replace the identity file.
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
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
pub enum ConnectionsCommand {
    /// Same as `profile add`, naming the profile with --label.
    Add {
        #[arg(long)]
        label: String,
        #[command(flatten)]
        fields: FieldArgs,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    pub name: String,
    #[command(flatten)]
    pub fields: FieldArgs,
}

#[derive(Args, Debug, Default)]
pub struct FieldArgs {
    /// Provider name (see `age-oauth providers`); default esri-oob, or the profile's current one.
    #[arg(long)]
    pub provider: Option<String>,
    /// Portal URL.
    #[arg(long, visible_alias = "url")]
    pub portal: Option<String>,
    /// OAuth client_id (App ID).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Client secret: stored encrypted, never in a file. Prefer AGE_OAUTH_CLIENT_SECRET or the prompt (a flag is visible to `ps`).
    #[arg(long)]
    pub client_secret: Option<String>,
    /// true, false, or the path of a PEM CA bundle.
    #[arg(long, value_name = "true|false|PATH")]
    pub verify_ssl: Option<String>,
    /// Any field of the provider; VALUE is read as TOML when it parses, else as a string.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs a parsed command; `Ok` carries the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let paths = Paths::from_env()?;
    let mut ui = Terminal::new(cli.verbose);
    let cwd = std::env::current_dir().map_err(|e| Error::io("cannot read the working directory", e))?;
    let engine = Engine::with_clock(paths.clone(), crate::clock::from_env()?);
    let profile = cli.profile.as_deref();
    match cli.command {
        Command::Providers { json } => cmd_providers(json),
        Command::Profile(ProfileCommand::Add(args)) => {
            cmd_profile_add(&engine, &cwd, &mut ui, &args.name, &args.fields)
        }
        Command::Connections(ConnectionsCommand::Add { label, fields }) => {
            cmd_profile_add(&engine, &cwd, &mut ui, &label, &fields)
        }
        Command::Profile(ProfileCommand::List { json }) => cmd_profile_list(&engine, &cwd, json),
        Command::Profile(ProfileCommand::Show { name, json }) => cmd_profile_show(&engine, &cwd, &name, json),
        Command::Profile(ProfileCommand::Remove { name }) => cmd_profile_remove(&engine, &cwd, &mut ui, &name),
        Command::Login { no_browser, force } => {
            let mut session = engine.open(&cwd, profile)?;
            cmd_login(&engine, &mut session, &mut ui, force, no_browser)
        }
        Command::Token { json, min_ttl, server: Some(server), .. } => {
            let mut session = engine.open(&cwd, profile)?;
            let found = crate::providers::federation::server_token(&engine, &mut session, &mut ui, &server, min_ttl)?;
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
        Command::Token { json, format, min_ttl, server: None } => {
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
            let (public, count) = crate::headless::rotate_identity(&engine.store)?;
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
            let request = build_request(&session, method, data, &headers, allow_other_host, &url)?;
            cmd_request(&engine, &mut session, &mut ui, &request)
        }
        Command::Status { json } => cmd_status(&engine, &cwd, json),
        Command::Sandbox { port } => crate::demo::run_sandbox(port),
        Command::Demo => crate::demo::run_demo(&mut ui),
    }
}

/// The man page, generated from the clap definition.
pub fn render_man(out: &mut Vec<u8>) -> Result<()> {
    use clap::CommandFactory;
    clap_mangen::Man::new(Cli::command()).render(out).map_err(|e| Error::io("cannot render the man page", e))
}

/// Single-quotes a value for POSIX shells.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Runs `command` with the token in its environment and returns its exit code.
fn cmd_exec(session: &Session, tokens: &TokenSet, command: &[String]) -> Result<i32> {
    let (program, args) = command.split_first().ok_or_else(|| Error::Config("exec needs a command after --".into()))?;
    let mut child = std::process::Command::new(program);
    child.args(args).env("AGE_OAUTH_TOKEN", tokens.access_token.expose()).env(config::EXEC_MARKER, session.name());
    if let Some(url) = session.provider.service_url() {
        child.env("AGE_OAUTH_PORTAL", url);
    }
    if let Some(user) = &tokens.username {
        child.env("AGE_OAUTH_USERNAME", user);
    }
    let status = child.status().map_err(|e| Error::Config(format!("cannot run `{program}`: {e}")))?;
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return Ok(128 + signal);
    }
    Ok(status.code().unwrap_or(1))
}

fn cmd_export(
    engine: &Engine,
    session: &Session,
    ui: &mut dyn Interaction,
    recipients: &[String],
    recipients_file: Option<&std::path::Path>,
    passphrase: bool,
    output: &std::path::Path,
) -> Result<i32> {
    use crate::headless::{export_bytes, parse_recipients, ExportTo};
    let to = if passphrase {
        let pass = match std::env::var("AGE_OAUTH_EXPORT_PASSPHRASE").ok().filter(|p| !p.is_empty()) {
            Some(p) => Secret::new(p),
            None => {
                let first = ui.read_secret("Passphrase for the export: ")?.ok_or_else(|| {
                    Error::Config("--passphrase needs AGE_OAUTH_EXPORT_PASSPHRASE or a terminal to ask on".into())
                })?;
                let again = ui.read_secret("Same passphrase again: ")?.unwrap_or_else(|| Secret::new(""));
                if first != again || first.is_empty() {
                    return Err(Error::Config("the passphrases differ (or are empty); nothing was written".into()));
                }
                first
            }
        };
        ExportTo::Passphrase(pass)
    } else {
        let mut text = recipients.join("\n");
        let mut source = "--recipient".to_string();
        if let Some(f) = recipients_file {
            let file_text =
                std::fs::read_to_string(f).map_err(|e| Error::io(format!("cannot read {}", f.display()), e))?;
            text = format!("{text}\n{file_text}");
            source = f.display().to_string();
        }
        if text.trim().is_empty() {
            return Err(Error::Config(
                "say who may open the export: --recipient AGE_PUBLIC_KEY, --recipients-file FILE or --passphrase"
                    .into(),
            ));
        }
        ExportTo::Recipients(parse_recipients(&text, &source)?)
    };
    let entry = engine.store.load(session.name())?.filter(|e| e.tokens.is_some()).ok_or_else(|| {
        Error::login_required(session.name(), format!("profile '{}' has nothing to export yet", session.name()))
    })?;
    let bytes = export_bytes(&session.profile, entry, &to)?;
    crate::paths::write_private_file(output, &bytes)?;
    ui.info(&format!("Exported profile '{}' to {} (age, 0600).", session.name(), output.display()));
    ui.info("On the server: age-oauth cache import FILE   (with AGE_OAUTH_IDENTITY or AGE_OAUTH_PASSPHRASE)");
    if let Some(note) = session.provider.rotation_note() {
        ui.warn(&format!("the two copies will diverge: {note}"));
    }
    Ok(0)
}

fn cmd_import(
    paths: &Paths,
    ui: &mut dyn Interaction,
    file: &std::path::Path,
    as_name: Option<&str>,
    force: bool,
) -> Result<i32> {
    use crate::headless::{identity_from_env, import, open_export};
    let bytes = std::fs::read(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    let store = crate::store::CacheStore::ignoring_passphrase(paths.clone());
    let identity = match identity_from_env()? {
        Some(id) => Some(id),
        None => store.identity(false).ok().flatten(),
    };
    let passphrase = match std::env::var("AGE_OAUTH_PASSPHRASE").ok().filter(|p| !p.is_empty()) {
        Some(p) => Some(Secret::new(p)),
        None if age::Decryptor::new(&bytes[..]).is_ok_and(|d| d.is_scrypt()) => {
            ui.read_secret("Passphrase of the export: ")?
        }
        None => None,
    };
    let export = open_export(&bytes, identity.as_ref(), passphrase.as_ref())?;
    let name = as_name.unwrap_or(&export.profile).to_string();
    let provider = export.provider.clone();
    import(&store, export, &name, force)?;
    ui.info(&format!(
        "Imported profile '{name}' ({provider}); its cache is kept under {}. Try: age-oauth token --profile {name}",
        store.key_source().describe()
    ));
    if std::env::var_os("AGE_OAUTH_PASSPHRASE").is_some() {
        ui.warn("unset AGE_OAUTH_PASSPHRASE for later commands: the imported cache is under this machine's key now");
    }
    let config = Config::load(paths, &std::env::current_dir().unwrap_or_default());
    if let Ok(session) = config.and_then(|c| c.resolve(&name, &[])).and_then(|r| Engine::new(paths.clone()).session(r))
    {
        if let Some(note) = session.provider.rotation_note() {
            ui.warn(&format!("this copy and the exported one will diverge: {note}"));
        }
    }
    Ok(0)
}

fn cmd_migrate(
    engine: &Engine,
    ui: &mut dyn Interaction,
    from: Option<std::path::PathBuf>,
    shred: bool,
) -> Result<i32> {
    let from = from
        .or_else(crate::migrate::default_python_store)
        .ok_or_else(|| Error::Config("cannot find the Python age-oauth store: pass --from DIR".into()))?;
    let done = crate::migrate::migrate(&engine.store, &from, shred, engine.clock.now())?;
    if done.is_empty() {
        ui.info(&format!("no connections found in {}", from.display()));
        return Ok(0);
    }
    for m in &done {
        ui.info(&format!(
            "connection {} → profile '{}' ({}): {}{}",
            m.connection_id,
            m.profile,
            m.provider,
            if m.moved_secrets.is_empty() {
                "no secret".to_string()
            } else {
                format!("{} encrypted", m.moved_secrets.join(", "))
            },
            if m.moved_tokens { ", tokens encrypted" } else { "" }
        ));
    }
    let left: Vec<String> = done.iter().filter(|m| !m.shredded).map(|m| m.env_file.display().to_string()).collect();
    if left.is_empty() {
        ui.info("The old plaintext .env files were overwritten and deleted.");
    } else {
        ui.warn(&format!(
            "these plaintext files still hold client secrets and tokens: {}; delete them, or run again with --shred",
            left.join(", ")
        ));
    }
    print_json(&serde_json::to_value(&done).unwrap_or_default())
}

/// Prints an error the one way errors are reported.
pub fn report(error: &Error) {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let label = if color { "\x1b[31merror:\x1b[0m" } else { "error:" };
    eprintln!("{label} {error}");
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error.
fn print_line(text: &str) -> Result<i32> {
    print_bytes(format!("{text}\n").as_bytes())
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

fn token_json(session: &Session, tokens: &TokenSet) -> Value {
    json!({
        "access_token": tokens.access_token.expose(),
        "expires_at": tokens.expires_at.map(rfc3339),
        "username": tokens.username,
        "profile": session.name(),
        "provider": session.provider_name(),
    })
}

/// Host and port of a URL, for comparing where credentials may go.
fn authority(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
    Some(format!("{host}:{port}"))
}

fn build_request(
    session: &Session,
    method: Option<String>,
    data: Option<String>,
    headers: &[String],
    allow_other_host: bool,
    url: &str,
) -> Result<HttpRequest> {
    crate::settings::service_url(session.name(), "URL", url)?;
    if let Some(service) = session.provider.service_url() {
        if !allow_other_host && authority(&service) != authority(url) {
            return Err(Error::Config(format!(
                "refusing to send the credentials of profile '{}' to {} (its service is {service}); \
                 pass --allow-other-host if that is intended",
                session.name(),
                authority(url).unwrap_or_default()
            )));
        }
    }
    let method = match (method, &data) {
        (Some(m), _) => m.to_ascii_uppercase(),
        (None, Some(_)) => "POST".into(),
        (None, None) => "GET".into(),
    };
    let mut request = HttpRequest {
        method: match method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            other => Method::Other(other.to_string()),
        },
        url: url.to_string(),
        headers: Vec::new(),
        body: data.map(String::into_bytes),
    };
    for h in headers {
        let (name, value) =
            h.split_once(':').ok_or_else(|| Error::Config(format!("-H expects \"Name: value\", got `{h}`")))?;
        request = request.header(name.trim(), value.trim());
    }
    if request.body.is_some() && !request.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        request = request.header("Content-Type", "application/x-www-form-urlencoded");
    }
    Ok(request)
}

fn cmd_request(engine: &Engine, session: &mut Session, ui: &mut dyn Interaction, request: &HttpRequest) -> Result<i32> {
    let (response, verdict) = engine.request(session, ui, request)?;
    ui.debug(1, &format!("HTTP {} ({} bytes)", response.status, response.body.len()));
    print_bytes(&response.body)?;
    match verdict {
        AuthVerdict::Rejected | AuthVerdict::Forbidden => Err(Error::Server(format!(
            "the server refused the credentials of profile '{}' (HTTP {}{})",
            session.name(),
            response.status,
            if verdict == AuthVerdict::Forbidden { ", not permitted" } else { "" }
        ))),
        AuthVerdict::Accepted if response.status >= 400 => {
            Err(Error::Other(format!("HTTP {} from {}", response.status, request.describe())))
        }
        AuthVerdict::Accepted => Ok(0),
    }
}

fn cmd_providers(as_json: bool) -> Result<i32> {
    let providers = registry::providers();
    if as_json {
        let list: Vec<Value> = providers
            .iter()
            .map(|p| json!({ "name": p.name, "description": p.description, "fields": p.fields() }))
            .collect();
        return print_json(&Value::Array(list));
    }
    let mut out = String::new();
    for p in providers {
        out.push_str(&format!("{}\n    {}\n", p.name, p.description));
        for f in p.fields() {
            let mut tags = vec![f.kind.clone()];
            if f.required {
                tags.push("required".into());
            }
            if f.secret {
                tags.push("secret: store/env only".into());
            }
            if let Some(d) = &f.default {
                tags.push(format!("default {d}"));
            }
            out.push_str(&format!("    {:<22} {} [{}]\n", f.name, f.description, tags.join(", ")));
        }
        out.push('\n');
    }
    print_line(out.trim_end())
}

/// Secrets given on the command line, by field name.
type SecretArgs = Vec<(String, Secret)>;

fn flag_values(fields: &FieldArgs) -> Result<(Vec<FlagValue>, SecretArgs)> {
    let mut flags = Vec::new();
    let mut push = |field: &str, value: Value, flag: &str| {
        flags.push(FlagValue { field: field.into(), value, flag: flag.into() });
    };
    if let Some(p) = &fields.provider {
        push("provider", json!(p), "--provider");
    }
    if let Some(v) = &fields.portal {
        push("portal", json!(v), "--portal");
    }
    if let Some(v) = &fields.client_id {
        push("client_id", json!(v), "--client-id");
    }
    if let Some(v) = &fields.verify_ssl {
        push("verify_ssl", loose_value(v), "--verify-ssl");
    }
    let mut secrets = Vec::new();
    if let Some(v) = &fields.client_secret {
        secrets.push(("client_secret".to_string(), Secret::new(v.clone())));
    }
    for kv in &fields.set {
        let (k, v) = kv.split_once('=').ok_or_else(|| Error::Config(format!("--set expects KEY=VALUE, got `{kv}`")))?;
        let k = k.trim().replace('-', "_");
        if k == "provider" {
            return Err(Error::Config("use --provider to choose the provider".into()));
        }
        flags.push(FlagValue { field: k.clone(), value: loose_value(v.trim()), flag: format!("--set {k}") });
    }
    Ok((flags, secrets))
}

fn cmd_profile_add(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    name: &str,
    fields: &FieldArgs,
) -> Result<i32> {
    config::validate_profile_name(name)?;
    let config = Config::load(&engine.paths, cwd)?;
    let (mut flags, mut secrets) = flag_values(fields)?;
    let provider_name =
        fields.provider.clone().or_else(|| config.provider_of(name)).unwrap_or_else(|| "esri-oob".into());
    let provider = registry::find(&provider_name)?;
    // `--url` is an alias of `--portal`: for providers whose site field is `url` (web-tier), it is that.
    let field_names: Vec<String> = provider.fields().into_iter().map(|f| f.name).collect();
    if !field_names.iter().any(|f| f == "portal") && field_names.iter().any(|f| f == "url") {
        flags.iter_mut().filter(|f| f.field == "portal").for_each(|f| f.field = "url".into());
    }
    if fields.provider.is_none() {
        flags.push(FlagValue { field: "provider".into(), value: json!(provider_name), flag: "--provider".into() });
    }
    // Secrets given with --set go to the store, never to the file.
    flags.retain(|f| match provider.secret(&f.field) {
        Some(_) => {
            let text = f.value.as_str().map(String::from).unwrap_or_else(|| f.value.to_string());
            secrets.push((f.field.clone(), Secret::new(text)));
            false
        }
        None => true,
    });

    // Required fields nobody gave: ask on a TTY, else list them.
    let existing = config.resolve(name, &flags).ok();
    let stored_secrets: Vec<String> = match engine.store.load(name) {
        Ok(Some(entry)) => entry.secrets.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let mut missing = Vec::new();
    for f in provider.fields().into_iter().filter(|f| f.required) {
        let given = if f.secret {
            secrets.iter().any(|(k, _)| *k == f.name)
                || stored_secrets.contains(&f.name)
                || existing.as_ref().is_some_and(|p| p.secret_overrides.get(&f.name).is_some())
        } else {
            flags.iter().any(|fl| fl.field == f.name)
                || existing.as_ref().is_some_and(|p| p.values.contains_key(&f.name))
        };
        if !given {
            missing.push(f);
        }
    }
    if !missing.is_empty() {
        if !ui.can_prompt() {
            let list: Vec<String> = missing.iter().map(|f| format!("--{} VALUE", f.name.replace('_', "-"))).collect();
            return Err(Error::Config(format!(
                "profile '{name}' ({provider_name}) needs: {} (or --set FIELD=VALUE); no terminal to ask on",
                list.join(" ")
            )));
        }
        for f in missing {
            let prompt = format!("{} ({}): ", f.name, f.description);
            if f.secret {
                match ui.read_secret(&prompt)? {
                    Some(s) if !s.is_empty() => secrets.push((f.name.clone(), s)),
                    _ => return Err(Error::Config(format!("`{}` is required", f.name))),
                }
            } else {
                match ui.read_line(&prompt)? {
                    Some(v) if !v.is_empty() => {
                        flags.push(FlagValue { field: f.name.clone(), value: loose_value(&v), flag: "prompt".into() })
                    }
                    _ => return Err(Error::Config(format!("`{}` is required", f.name))),
                }
            }
        }
    }

    // Validate the whole profile before writing anything.
    let resolved = config.resolve(name, &flags)?;
    engine.session(resolved)?;

    // Write the non-secret fields given now over what the user file already had.
    let mut values = Map::new();
    if let Ok(text) = std::fs::read_to_string(&engine.paths.config_file) {
        if let Ok(user) =
            Config::from_parts(vec![(engine.paths.config_file.clone(), text)], Default::default(), Default::default())
        {
            if user.provider_of(name).as_deref() == Some(provider_name.as_str()) {
                if let Ok(r) = user.resolve(name, &[]) {
                    for (k, origin) in &r.origins {
                        if matches!(origin, config::Origin::File { .. }) {
                            values.insert(k.clone(), r.values[k].clone());
                        }
                    }
                }
            }
        }
    }
    for f in flags.iter().filter(|f| f.field != "provider") {
        values.insert(f.field.clone(), f.value.clone());
    }
    let existed = config.profile_names().contains(&name.to_string());
    config::write_profile(&engine.paths, name, &provider_name, &values)?;
    ui.info(&format!(
        "{} profile '{name}' ({provider_name}) in {}",
        if existed { "Updated" } else { "Added" },
        engine.paths.config_file.display()
    ));
    if !secrets.is_empty() {
        engine.store_secrets(name, &provider_name, &secrets)?;
        let names: Vec<&str> = secrets.iter().map(|(k, _)| k.as_str()).collect();
        ui.info(&format!("Stored {} encrypted in {}", names.join(", "), engine.paths.cache_file(name).display()));
    }
    ui.info(&format!("Next: age-oauth login --profile {name}"));
    Ok(0)
}

/// A profile's login state, read from its cache without any network call.
fn cache_state(engine: &Engine, name: &str) -> Value {
    match engine.store.load(name) {
        Ok(None) => json!({ "logged_in": false }),
        Ok(Some(entry)) => {
            let now = engine.clock.now();
            let secrets: Vec<&String> = entry.secrets.keys().collect();
            match &entry.tokens {
                None => json!({ "logged_in": false, "stored_secrets": secrets }),
                Some(t) => json!({
                    "logged_in": true,
                    "username": t.username,
                    "expires_at": t.expires_at.map(rfc3339),
                    "expired": !t.valid_for(now, 0),
                    "refresh_expires_at": t.refresh_expires_at.map(rfc3339),
                    "can_refresh": t.can_refresh(now),
                    "stored_secrets": secrets,
                }),
            }
        }
        Err(e) => json!({ "logged_in": false, "error": e.to_string() }),
    }
}

fn cmd_profile_list(engine: &Engine, cwd: &std::path::Path, as_json: bool) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let mut rows = Vec::new();
    for name in config.profile_names() {
        let files: Vec<String> = config.profile_files(&name).iter().map(|p| p.display().to_string()).collect();
        let mut row = json!({ "name": name, "provider": config.provider_of(&name), "files": files });
        if let (Value::Object(r), Value::Object(s)) = (&mut row, cache_state(engine, &name)) {
            r.extend(s);
        }
        rows.push(row);
    }
    if as_json {
        return print_json(&Value::Array(rows));
    }
    if rows.is_empty() {
        eprintln!("no profiles yet: age-oauth profile add NAME --provider esri-oob --portal URL --client-id ID");
        return Ok(0);
    }
    let mut out = String::new();
    for r in rows {
        let state = if r["error"].is_string() {
            "cache unreadable".to_string()
        } else if r["logged_in"] == json!(true) {
            format!("logged in as {}", r["username"].as_str().unwrap_or("?"))
        } else {
            "not logged in".to_string()
        };
        out.push_str(&format!(
            "{:<20} {:<12} {}\n",
            r["name"].as_str().unwrap_or_default(),
            r["provider"].as_str().unwrap_or("?"),
            state
        ));
    }
    print_line(out.trim_end())
}

fn cmd_profile_show(engine: &Engine, cwd: &std::path::Path, name: &str, as_json: bool) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let resolved = config.resolve(name, &[])?;
    let stored = engine.store.load(name).ok().flatten();
    let mut fields = Map::new();
    for (k, v) in &resolved.values {
        let origin = resolved.origins.get(k).map(|o| o.to_string()).unwrap_or_default();
        fields.insert(k.clone(), json!({ "value": v, "source": origin }));
    }
    for spec in resolved.provider.secrets {
        let source = match resolved.secret_overrides.origin(spec.name) {
            Some(SecretOrigin::Env(v)) => Some(format!("env {v}")),
            Some(SecretOrigin::DotEnv(v)) => Some(format!(".env {v}")),
            Some(SecretOrigin::Flag(f)) => Some(format!("flag {f}")),
            Some(SecretOrigin::Prompt) => Some("prompt".into()),
            Some(SecretOrigin::Store) | None => {
                stored.as_ref().filter(|e| e.secrets.contains_key(spec.name)).map(|_| "encrypted store".to_string())
            }
        };
        let value = if source.is_some() { json!("[redacted]") } else { Value::Null };
        fields.insert(
            spec.name.to_string(),
            json!({ "value": value, "source": source.unwrap_or_else(|| "not set".into()), "secret": true }),
        );
    }
    if as_json {
        return print_json(&json!({ "name": name, "provider": resolved.provider.name, "fields": fields }));
    }
    let mut out = format!("profile {name}\n  {:<22} {:<40} {}\n", "provider", resolved.provider.name, "");
    for (k, f) in &fields {
        let value = match &f["value"] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        out.push_str(&format!("  {:<22} {:<40} ({})\n", k, value, f["source"].as_str().unwrap_or_default()));
    }
    print_line(out.trim_end())
}

fn cmd_profile_remove(engine: &Engine, cwd: &std::path::Path, ui: &mut dyn Interaction, name: &str) -> Result<i32> {
    config::validate_profile_name(name)?;
    let removed_file = config::remove_profile(&engine.paths, name)?;
    let removed_cache = engine.store.remove(name)?;
    let _ = std::fs::remove_file(engine.paths.lock_file(name));
    if !removed_file && !removed_cache {
        let config = Config::load(&engine.paths, cwd)?;
        if let Some(file) = config.profile_files(name).last() {
            return Err(Error::Config(format!(
                "profile '{name}' is defined in {}, not in the user file; edit that file to remove it",
                file.display()
            )));
        }
        return Err(Error::Config(format!("no profile named '{name}'")));
    }
    ui.info(&format!(
        "Removed profile '{name}'{}{}",
        if removed_file { " from the user file" } else { "" },
        if removed_cache { " and deleted its encrypted cache" } else { "" }
    ));
    Ok(0)
}

fn cmd_login(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    force: bool,
    no_browser: bool,
) -> Result<i32> {
    let now = engine.clock.now();
    let describe = |t: &TokenSet| t.remaining(now).map(hms).unwrap_or_else(|| "unknown".into());
    match engine.login(session, ui, force, no_browser)? {
        LoginOutcome::AlreadyValid(t) => ui.info(&format!(
            "Already logged in to profile '{}' as {} (token expires in {}); nothing to do. Use --force to sign in again.",
            session.name(),
            t.username.as_deref().unwrap_or("?"),
            describe(&t)
        )),
        LoginOutcome::Refreshed(t) => ui.info(&format!(
            "Refreshed the token of profile '{}' without signing in: expires in {}",
            session.name(),
            describe(&t)
        )),
        LoginOutcome::LoggedIn(t) => {
            ui.info(&format!("New access_token acquired!  Expires in: {}", describe(&t)));
            ui.info(&format!("Token is for user: {}", t.username.as_deref().unwrap_or("?")));
        }
    }
    Ok(0)
}

fn cmd_status(engine: &Engine, cwd: &std::path::Path, as_json: bool) -> Result<i32> {
    // Loading the key first makes `key_source` report the one actually in use.
    let public_key = engine.store.public_key(false).ok().flatten();
    let key_source = engine.store.key_source();
    let config = Config::load(&engine.paths, cwd);
    let mut profiles = Vec::new();
    let config_error = match &config {
        Ok(c) => {
            for name in c.profile_names() {
                let mut row = json!({ "name": name, "provider": c.provider_of(&name) });
                if let (Value::Object(r), Value::Object(s)) = (&mut row, cache_state(engine, &name)) {
                    r.extend(s);
                }
                profiles.push(row);
            }
            None
        }
        Err(e) => Some(e.to_string()),
    };
    let status = json!({
        "config_file": engine.paths.config_file.display().to_string(),
        "project_file": cwd.join(config::PROJECT_FILE).exists().then(|| cwd.join(config::PROJECT_FILE).display().to_string()),
        "data_dir": engine.paths.data_dir.display().to_string(),
        "key_source": key_source.describe(),
        "public_key": public_key,
        "config_error": config_error,
        "profiles": profiles,
    });
    if as_json {
        return print_json(&status);
    }
    let mut out = format!(
        "config file: {}\ndata dir:    {}\ncache key:   {}\n",
        status["config_file"].as_str().unwrap_or_default(),
        status["data_dir"].as_str().unwrap_or_default(),
        status["key_source"].as_str().unwrap_or_default()
    );
    if let Some(pk) = &public_key {
        out.push_str(&format!("public key:  {pk}\n"));
    }
    if let Some(e) = &config_error {
        out.push_str(&format!("config error: {e}\n"));
    }
    for p in &profiles {
        let state = if let Some(e) = p["error"].as_str() {
            format!("cache unreadable: {e}")
        } else if p["logged_in"] == json!(true) {
            format!(
                "logged in as {}, token {} {}",
                p["username"].as_str().unwrap_or("?"),
                if p["expired"] == json!(true) { "expired" } else { "expires" },
                p["expires_at"].as_str().unwrap_or("?")
            )
        } else {
            "not logged in".into()
        };
        out.push_str(&format!(
            "profile {:<16} {:<10} {state}\n",
            p["name"].as_str().unwrap_or_default(),
            p["provider"].as_str().unwrap_or("?")
        ));
    }
    print_line(out.trim_end())
}
