//! The command line's grammar (clap): every command, flag and example `--help` shows.
//! What the commands do is in the sibling modules; `run` in `mod.rs` maps one to the other.

use super::connections::ConnectionAddArgs;
use crate::secret::Secret;
use clap::{Args, Parser, Subcommand};

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
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

// The options every command takes (`global`): their own struct so that `parse::token_command` can
// build the `token` command's grammar without clap's whole tree.
#[derive(Args, Debug)]
pub(crate) struct GlobalArgs {
    /// Profile to use (default: AGE_OAUTH_PROFILE, then default_profile, then the only one).
    #[arg(long, global = true, value_name = "NAME", conflicts_with_all = ["connection", "connection_id"])]
    pub(crate) profile: Option<String>,
    /// Pick the profile as the Python age-oauth did: exact name or old connection id, name in any case, then a unique prefix of the connection id (or name).
    #[arg(long, global = true, value_name = "SELECTOR", conflicts_with = "connection_id")]
    pub(crate) connection: Option<String>,
    /// The profile's exact name, or the Python age-oauth's connection id of a migrated one.
    #[arg(long, global = true, value_name = "ID")]
    pub(crate) connection_id: Option<String>,
    /// More detail on stderr (repeat for more); never prints a secret.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
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
        after_help = "Examples:\n  age-oauth login --profile prod\n  age-oauth login --profile prod --no-browser   # print the URL, read the code from stdin\n  \
age-oauth login --profile api --with-key < key.txt   # an api-key profile with key_source = \"static\""
    )]
    Login {
        /// Read an API key from stdin and keep it encrypted (api-key profiles with key_source = "static").
        #[arg(long, conflicts_with = "no_browser")]
        with_key: bool,
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
    Token(TokenArgs),
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
    /// A fleet profile's shared login in Vault / OpenBao: publish it, show it, drop a dead claim.
    #[command(subcommand)]
    Store(StoreCommand),
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
    /// Check configuration, cache key, binding, DNS, TCP, TLS, proxy, clocks, tokens and endpoints: one line each.
    #[command(after_help = "Examples:\n  age-oauth doctor                      # every profile\n  \
age-oauth doctor --profile prod --json | jq '.[] | select(.status != \"ok\")'\n\n\
Each line is ok, warn or fail, with the next step under each warn and fail. Only unauthenticated requests are \
made, and only to the origins the cached credentials are bound to: no token or secret is ever sent.\n\n\
Exit codes: 0 when nothing failed (warnings allowed), 1 when a check failed.")]
    Doctor {
        /// An array of {check, status, detail, hint} (with `profile` when several profiles are checked).
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

// The `token` command's options (its help text is on `Command::Token`): their own struct, parsed
// alone by `parse::token_command` on the warm path.
#[derive(Args, Debug)]
pub(crate) struct TokenArgs {
    /// One JSON object: access_token, expires_at, username, profile, provider (same as --format json).
    #[arg(long)]
    pub(crate) json: bool,
    /// token (default): the token alone; env: `export AGE_OAUTH_TOKEN=…` lines; json; header: the full header line.
    #[arg(long, value_enum, default_value_t = TokenFormat::Token)]
    pub(crate) format: TokenFormat,
    /// Refresh first unless the token stays valid for at least this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub(crate) min_ttl: u64,
    /// Refresh now even if the cached token looks valid (a server rejected it).
    #[arg(long, conflicts_with = "min_ttl")]
    pub(crate) force_refresh: bool,
    /// Print a token for this ArcGIS Server federated with the profile's portal instead.
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Exchange the refresh token for a new one now (ArcGIS exchange_refresh_token); prints what happened, not the token.
    #[arg(long, conflicts_with_all = ["server", "min_ttl"])]
    pub(crate) rotate_refresh_token: bool,
    /// (Python age-oauth) The profile to use, picked like --connection.
    #[arg(long = "portal", value_name = "SELECTOR")]
    pub(crate) portal_selector: Option<String>,
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
    /// Client secret, stored encrypted (never in a file). A flag shows in the process list (`ps`):
    /// leave it out to be asked at a terminal, or set AGE_OAUTH_CLIENT_SECRET (environment or .env),
    /// which is read at each run and not stored.
    #[arg(long, value_parser = parse_secret)]
    pub(crate) client_secret: Option<Secret>,
    /// true, false, or the path of a PEM CA bundle.
    #[arg(long, value_name = "true|false|PATH")]
    pub(crate) verify_ssl: Option<String>,
    /// Any field of the provider; VALUE is read as TOML when it parses, else as a string.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
}

/// Reads a secret argument straight into a `Secret`, so that `Debug` of the parsed
/// command line never shows it.
pub(super) fn parse_secret(value: &str) -> std::result::Result<Secret, String> {
    Ok(Secret::new(value))
}

#[derive(Subcommand, Debug)]
pub(crate) enum StoreCommand {
    /// Publish this host's login into the profile's fleet store (needs --force to replace one already there).
    #[command(
        after_help = "Examples:\n  age-oauth login --profile prod        # on a store profile, login publishes too\n  \
age-oauth store push --profile prod --force   # replace the fleet's login with this host's\n\n\
Exit codes: 3 not signed in on this host, 4 the store refused or could not be reached."
    )]
    Push {
        /// Replace a login the store already holds.
        #[arg(long)]
        force: bool,
    },
    /// Show the record: version, generation, claim holder and age (store clock), token expiry, needs_login.
    #[command(after_help = "Example:\n  age-oauth store status --profile prod --json | jq .claim")]
    Status {
        /// One JSON object: profile, store, version, generation, claim {holder, age_s, ttl_s, live},
        /// needs_login, token_expires_at, token_expires_in, can_decrypt, store_time.
        #[arg(long)]
        json: bool,
    },
    /// Drop the refresh claim of a holder known to be dead, so another host refreshes now.
    #[command(after_help = "Example:\n  age-oauth store unclaim --profile prod --force")]
    Unclaim {
        /// Required: a live holder would otherwise race the next refresher.
        #[arg(long)]
        force: bool,
    },
}
