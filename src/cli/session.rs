//! Commands that use a logged-in profile: login, request, exec, and how tokens are printed.
//! Each returns the exit code; errors go back to `run` to be reported once.

use super::args::TokenFormat;
use super::output::{print_bytes, print_json, print_line};
use crate::clock::{hms, rfc3339};
use crate::config;
use crate::engine::{Engine, LoginOutcome, Session};
use crate::error::{Error, Result};
use crate::http::{HttpRequest, Method};
use crate::interact::Interaction;
use crate::registry::AuthVerdict;
use crate::token::TokenSet;
use serde_json::{json, Value};

pub(super) fn cmd_login(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    force: bool,
    no_browser: bool,
) -> Result<i32> {
    let now = engine.clock.now();
    if session.env_api_key().is_some() {
        ui.warn("AGE_OAUTH_API_KEY is set: it wins over this login until it is unset");
    }
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

/// `login --with-key`: the key comes from stdin (never a flag or a file name: no shell history, no
/// `ps`), is checked (expiry from a JWT's `exp`), and replaces whatever the cache held.
pub(super) fn cmd_login_with_key(engine: &Engine, session: &mut Session, ui: &mut dyn Interaction) -> Result<i32> {
    if !session.provider.accepts_pasted_key() {
        return Err(Error::Config(format!(
            "profile '{}' ({}) does not take a pasted key: --with-key is for api-key profiles with key_source = \"static\"",
            session.name(),
            session.provider_name()
        )));
    }
    let mut text = String::new();
    use std::io::Read as _;
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::io("cannot read the key from stdin", e))?;
    let key = text.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(Error::Config(
            "--with-key reads one key from stdin: got nothing, or more than one word (pipe the key alone)".into(),
        ));
    }
    let secret = crate::secret::Secret::new(key);
    session.profile.secret_overrides.set("api_key", secret, crate::registry::SecretOrigin::Prompt);
    cmd_login(engine, session, ui, true, true)
}

pub(super) fn token_json(session: &Session, tokens: &TokenSet) -> Value {
    let verify_ssl = match &session.profile.engine.verify_ssl {
        crate::settings::VerifySslSetting::Flag(on) => json!(on),
        crate::settings::VerifySslSetting::CaBundle(path) => json!(path),
    };
    json!({
        "access_token": tokens.access_token.expose(),
        "expires_at": tokens.expires_at.map(rfc3339),
        // The same instant as seconds since the Unix epoch, for programs (the Python package).
        "expires_at_unix": tokens.expires_at,
        "username": tokens.username,
        "profile": session.name(),
        "provider": session.provider_name(),
        // Where and how the token travels: `<header_name>: Bearer <access_token>`, to `service_url` only.
        "header_name": session.provider.token_header(),
        "service_url": session.provider.service_url(),
        "referer": session.profile.provider_values.get("referer").and_then(Value::as_str),
        "verify_ssl": verify_ssl,
        // "environment (AGE_OAUTH_API_KEY)" when the key came from there, else "cache".
        "credential_source": if session.env_api_key().is_some() { crate::engine::ENV_SOURCE } else { "cache" },
    })
}

pub(super) fn build_request(
    session: &Session,
    method: Option<String>,
    data: Option<String>,
    headers: &[String],
    url: &str,
) -> Result<HttpRequest> {
    crate::settings::service_url(session.name(), "URL", url)?;
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

pub(super) fn cmd_request(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    request: &HttpRequest,
) -> Result<i32> {
    let (response, verdict) = engine.request(session, ui, request)?;
    ui.debug(1, &format!("HTTP {} ({} bytes)", response.status, response.body.len()));
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // On a terminal the answer is text to read, and must not drive the terminal; piped, it is data.
        print_bytes(crate::redact::printable(&String::from_utf8_lossy(&response.body)).as_bytes())?;
    } else {
        print_bytes(&response.body)?;
    }
    match verdict {
        AuthVerdict::Rejected | AuthVerdict::Forbidden => Err(Error::server(format!(
            "the server refused the credentials of profile '{}' (HTTP {}{}){}",
            session.name(),
            response.status,
            if verdict == AuthVerdict::Forbidden { ", not permitted" } else { "" },
            if session.env_api_key().is_some() { ": they came from AGE_OAUTH_API_KEY" } else { "" }
        ))),
        AuthVerdict::Accepted if response.status >= 400 => {
            Err(Error::Other(format!("HTTP {} from {}", response.status, request.describe())))
        }
        AuthVerdict::Accepted => Ok(0),
    }
}

/// Single-quotes a value for POSIX shells.
pub(super) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Runs `command` with the token in its environment and returns its exit code.
pub(super) fn cmd_exec(session: &Session, tokens: &TokenSet, command: &[String]) -> Result<i32> {
    let (program, args) = command.split_first().ok_or_else(|| Error::Config("exec needs a command after --".into()))?;
    let mut child = std::process::Command::new(program);
    child.args(args).env("AGE_OAUTH_TOKEN", tokens.access_token.expose()).env(config::EXEC_MARKER, session.name());
    // The child gets the token, never what age-oauth itself unlocks or signs in with.
    for name in crate::env::secret_names() {
        child.env_remove(name);
    }
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

/// `--force-refresh` asks for a token valid for ever: none is, so the engine refreshes under its lock.
pub(super) fn wanted_ttl(min_ttl: u64, force_refresh: bool) -> u64 {
    if force_refresh {
        u64::MAX
    } else {
        min_ttl
    }
}

/// `token --server URL`: a token for a server federated with the profile's portal.
pub(super) fn cmd_server_token(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    server: &str,
    min_ttl: u64,
    json: bool,
) -> Result<i32> {
    let found = crate::engine::federation::server_token(engine, session, ui, server, min_ttl)?;
    if !json {
        return print_line(found.token.expose());
    }
    print_json(&json!({
        "access_token": found.token.expose(),
        "expires_at": found.expires_at.map(rfc3339),
        "server": found.server,
        "profile": session.name(),
        "provider": session.provider_name(),
    }))
}

/// `token`: a valid token, refreshed when needed, in the format asked for.
pub(super) fn cmd_token(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    min_ttl: u64,
    format: TokenFormat,
) -> Result<i32> {
    let tokens = engine.token(session, ui, min_ttl)?;
    if tokens.access_token.is_empty() {
        return Err(Error::Config(format!(
            "profile '{0}' ({1}) signs each request in itself and holds no bearer token: use \
             `age-oauth request --profile {0} URL`, or (web-tier) set `generate_token_url` to get an ArcGIS token",
            session.name(),
            session.provider_name()
        )));
    }
    match format {
        TokenFormat::Json => print_json(&token_json(session, &tokens)),
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

/// `exec -- COMMAND`: runs it with a valid token in its environment.
pub(super) fn cmd_exec_with_token(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    command: &[String],
) -> Result<i32> {
    let tokens = engine.token(session, ui, 0)?;
    cmd_exec(session, &tokens, command)
}

/// `request URL`: (method, data, headers, allow_other_host) as given on the command line.
pub(super) fn cmd_request_url(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    (method, data, headers, allow_other_host): (Option<String>, Option<String>, &[String], bool),
    url: &str,
) -> Result<i32> {
    session.allow_other_host = allow_other_host;
    let request = build_request(session, method, data, headers, url)?;
    cmd_request(engine, session, ui, &request)
}

/// `whoami`: the signed-in user (JSON: everything the provider knows about them).
pub(super) fn cmd_whoami(engine: &Engine, session: &mut Session, ui: &mut dyn Interaction, json: bool) -> Result<i32> {
    let who = engine.whoami(session, ui)?;
    if session.env_api_key().is_some() {
        ui.info(&format!("credential from the {}", crate::engine::ENV_SOURCE));
    }
    if json {
        let mut v = serde_json::to_value(&who).unwrap_or_default();
        v["profile"] = json!(session.name());
        v["provider"] = json!(session.provider_name());
        return print_json(&v);
    }
    for (k, v) in &who.details {
        ui.debug(1, &format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), String::from)));
    }
    if who.details.get("auth_type").and_then(Value::as_str) == Some("app")
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return print_line(&super::connections::app_block(&who));
    }
    print_line(&who.username)
}

/// `logout`: revokes what the server lets us revoke and deletes the cached tokens.
pub(super) fn cmd_logout(engine: &Engine, session: &mut Session, ui: &mut dyn Interaction) -> Result<i32> {
    let report = engine.logout(session, ui)?;
    if !report.removed_tokens {
        ui.info(&format!("profile '{}' was not logged in; nothing to do", session.name()));
        return Ok(0);
    }
    if let Some(line) = &report.revocation {
        ui.info(line);
    }
    let kept = if report.kept_secrets { " (stored secrets kept; `age-oauth profile remove` deletes them)" } else { "" };
    ui.info(&format!("Logged out of profile '{}': cached tokens deleted{kept}", session.name()));
    Ok(0)
}
