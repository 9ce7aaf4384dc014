//! Commands that use a logged-in profile: login, request, exec, and how tokens are printed.
//! Each returns the exit code; errors go back to `run` to be reported once.

use super::*;

pub(super) fn cmd_login(
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
    for name in crate::envvars::secret_names() {
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
