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
        after_help = "Examples:\n  TOKEN=$(age-oauth token --profile prod)\n  age-oauth token --json --min-ttl 600\n  age-oauth token --profile prod --server https://gis.example.com/arcgis   # federated server"
    )]
    Token {
        /// One JSON object: access_token, expires_at, username, profile, provider.
        #[arg(long)]
        json: bool,
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
    let engine = Engine::new(paths.clone());
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
        Command::Token { json, min_ttl, server: Some(server) } => {
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
        Command::Token { json, min_ttl, server: None } => {
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
            if json {
                print_json(&token_json(&session, &tokens))
            } else {
                print_line(tokens.access_token.expose())
            }
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

/// Prints an error the one way errors are reported.
pub fn report(error: &Error) {
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let label = if color { "\x1b[31merror:\x1b[0m" } else { "error:" };
    eprintln!("{label} {error}");
}

/// Writes a line to stdout; a closed pipe (`| head`) is not an error.
fn print_line(text: &str) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
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
    let mut out = std::io::stdout().lock();
    match out.write_all(&response.body).and_then(|_| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(Error::io("cannot write to stdout", e)),
    }
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
    let key_source = engine.store.key_source();
    let public_key = engine.store.public_key(false).ok().flatten();
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
