//! Local simulator of the ArcGIS Portal OAuth 2.0 REST API (`{portal}/sharing/rest/oauth2/*` and friends).
//! Follows the published wire protocol including its quirks: errors are HTTP 200 + `{"error":{..}}`, and f=html is the default.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use super::tls::TlsFiles;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The out-of-band redirect: the portal shows the code on an approval page instead of redirecting.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";
/// A registered redirect URI of exactly this value allows any port and path on it (RFC 8252 §7.3).
pub const LOOPBACK_REDIRECT_URI: &str = "http://127.0.0.1";
/// ArcGIS caps refresh tokens at 90 days; `expiration=-1` asks for this maximum.
const MAX_REFRESH_MINUTES: u64 = 129_600;
/// Access tokens (implicit, app, generateToken) are capped at 2 weeks.
const MAX_ACCESS_MINUTES: u64 = 20_160;
/// Vendor clients default app tokens (client_credentials) to 5 days.
const DEFAULT_APP_TOKEN_MINUTES: u64 = 7_200;
const DEFAULT_GENERATE_TOKEN_MINUTES: u64 = 60;
/// How long a not-auto-approved authorize request waits for its sign-in form.
const SIGN_IN_WINDOW_SECS: u64 = 3_600;
const WORKER_THREADS: usize = 4;
const MAX_BODY_BYTES: u64 = 1 << 20;
const MAX_LOGGED_REQUESTS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    pub username: String,
    pub password: String,
    pub full_name: String,
    pub email: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimApp {
    pub client_id: String,
    /// `None` = public (native/PKCE) app; `Some` = confidential app that may use client_credentials.
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct PortalConfig {
    /// Seconds, for user access tokens (authorization_code / refresh grants).
    pub access_token_lifetime: u64,
    /// Seconds; the authorize `expiration` parameter (minutes) overrides it per grant.
    pub refresh_token_lifetime: u64,
    /// Seconds an authorization code stays redeemable.
    pub code_lifetime: u64,
    /// Approve every authorize request at once as `approve_as` instead of showing the Sign In form.
    pub auto_approve: bool,
    pub approve_as: String,
    /// `false` mimics a pre-10.9.1 Enterprise portal that omits `refresh_token_expires_in`.
    pub include_refresh_expiry: bool,
    /// Rotate on every `refresh_token` grant too (the old one retires), and treat a retired
    /// refresh token presented again as theft: revoke its whole grant (RFC 9700 §4.14.2).
    pub rotate_on_refresh: bool,
    pub users: Vec<SimUser>,
    pub apps: Vec<SimApp>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        let user = |username: &str, full_name: &str| SimUser {
            username: username.to_string(),
            password: format!("{username}-password"),
            full_name: full_name.to_string(),
            email: format!("{username}@example.test"),
        };
        let redirect_uris = vec![OOB_REDIRECT_URI.to_string(), LOOPBACK_REDIRECT_URI.to_string()];
        PortalConfig {
            access_token_lifetime: 1_800,
            refresh_token_lifetime: 1_209_600,
            code_lifetime: 300,
            auto_approve: true,
            approve_as: "demo".to_string(),
            include_refresh_expiry: true,
            rotate_on_refresh: false,
            users: vec![user("demo", "Demo User"), user("alice", "Alice Example")],
            apps: vec![
                SimApp {
                    client_id: "age-oauth-sandbox".to_string(),
                    client_secret: None,
                    redirect_uris: redirect_uris.clone(),
                    name: "age-oauth sandbox".to_string(),
                },
                SimApp {
                    client_id: "age-oauth-sandbox-app".to_string(),
                    client_secret: Some("sandbox-app-secret".to_string()),
                    redirect_uris,
                    name: "Sandbox App".to_string(),
                },
            ],
        }
    }
}

/// Counts of tokens that are neither expired nor revoked at the simulator's current time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveTokens {
    pub access_tokens: usize,
    pub refresh_tokens: usize,
    pub codes: usize,
}

// ---------------------------------------------------------------------------------------------
// Server-side state
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResponseType {
    Code,
    Token,
}

#[derive(Clone, Debug)]
enum PkceChallenge {
    S256(String),
    Plain(String),
}

impl PkceChallenge {
    fn accepts(&self, verifier: &str) -> bool {
        // RFC 7636 §4.1: 43..128 unreserved characters; a malformed verifier never matches.
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        well_formed
            && match self {
                PkceChallenge::S256(challenge) => {
                    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
                }
                PkceChallenge::Plain(challenge) => verifier == challenge,
            }
    }
}

/// An authorize request waiting for its user to sign in (auto_approve off).
#[derive(Clone, Debug)]
struct PendingAuthorization {
    client_id: String,
    redirect_uri: String,
    response_type: ResponseType,
    state: Option<String>,
    challenge: Option<PkceChallenge>,
    /// Raw `expiration` minutes from authorize; resolved when tokens are minted.
    expiration_minutes: Option<i64>,
    expires_at: u64,
}

#[derive(Clone, Debug)]
struct IssuedCode {
    client_id: String,
    redirect_uri: String,
    username: String,
    challenge: Option<PkceChallenge>,
    expiration_minutes: Option<i64>,
    expires_at: u64,
}

#[derive(Clone, Debug)]
struct RefreshGrant {
    /// Every refresh token rotated out of one sign-in shares the family of the first.
    family: String,
    client_id: String,
    username: String,
    expiration_minutes: Option<i64>,
    expires_at: u64,
}

#[derive(Clone, Debug, Default)]
struct AccessGrant {
    /// `None` for generateToken tokens, which belong to no app.
    client_id: Option<String>,
    /// `None` for app tokens (client_credentials), which belong to no user.
    username: Option<String>,
    /// The refresh token this was minted from; revoking that one revokes this one too.
    parent_refresh: Option<String>,
    expires_at: u64,
    /// generateToken `client=referer`: only requests carrying this `Referer` may use the token.
    referer: Option<String>,
    /// generateToken `client=requestip` / `ip`: only requests from this address may use the token.
    ip: Option<String>,
    /// A federated server token: valid at this server root only, never at the portal.
    server: Option<String>,
}

struct SimState {
    config: PortalConfig,
    clock_offset_secs: i64,
    deny_next_authorize: bool,
    /// While set, the token endpoint answers this HTTP status (an outage behind a proxy).
    token_outage: Option<u16>,
    counts: BTreeMap<String, u64>,
    pending: HashMap<String, PendingAuthorization>,
    codes: HashMap<String, IssuedCode>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    /// Rotated-out refresh tokens and their family, to detect reuse.
    retired_refresh: HashMap<String, String>,
    access_tokens: HashMap<String, AccessGrant>,
    /// Server roots federated with this portal (`FederationLink::federate`).
    federated_servers: Vec<String>,
    /// HTTP status of "Invalid token" answers: 200 (ArcGIS's usual, code 498 in the body), or 401/498
    /// as some ArcGIS front ends answer.
    invalid_token_status: u16,
    /// What was asked, oldest first, without any credential: method, path and how the caller
    /// authenticated (`none`, `valid`, `invalid`). Capped at `MAX_LOGGED_REQUESTS`.
    request_log: Vec<Value>,
}

impl SimState {
    fn now(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        wall.saturating_add_signed(self.clock_offset_secs)
    }

    fn bump(&mut self, key: &str) {
        *self.counts.entry(key.to_string()).or_insert(0) += 1;
    }

    fn app(&self, client_id: &str) -> Option<SimApp> {
        self.config.apps.iter().find(|a| a.client_id == client_id).cloned()
    }

    /// The approving user; an `approve_as` name that is not configured still gets a plausible profile.
    fn user(&self, username: &str) -> SimUser {
        self.config.users.iter().find(|u| u.username == username).cloned().unwrap_or_else(|| SimUser {
            username: username.to_string(),
            password: String::new(),
            full_name: username.to_string(),
            email: format!("{username}@example.test"),
        })
    }

    fn refresh_lifetime(&self, expiration_minutes: Option<i64>) -> u64 {
        resolve_minutes(expiration_minutes, MAX_REFRESH_MINUTES)
            .map(|m| m * 60)
            .unwrap_or(self.config.refresh_token_lifetime)
    }

    fn mint_access(&mut self, prefix: &str, grant: AccessGrant) -> String {
        let token = random_token(prefix);
        self.access_tokens.insert(token.clone(), grant);
        token
    }

    fn mint_refresh(&mut self, client_id: &str, username: &str, expiration_minutes: Option<i64>) -> (String, u64) {
        self.mint_refresh_in(None, client_id, username, expiration_minutes)
    }

    /// Mints a refresh token, in `family` when it replaces one (rotation).
    fn mint_refresh_in(
        &mut self,
        family: Option<String>,
        client_id: &str,
        username: &str,
        expiration_minutes: Option<i64>,
    ) -> (String, u64) {
        let lifetime = self.refresh_lifetime(expiration_minutes);
        let token = random_token("rt_");
        let grant = RefreshGrant {
            family: family.unwrap_or_else(|| token.clone()),
            client_id: client_id.to_string(),
            username: username.to_string(),
            expiration_minutes,
            expires_at: self.now() + lifetime,
        };
        self.refresh_tokens.insert(token.clone(), grant);
        (token, lifetime)
    }

    /// Retires a rotated-out refresh token (it stops working; presenting it again is reuse).
    fn retire_refresh(&mut self, refresh_token: &str, family: &str) {
        self.refresh_tokens.remove(refresh_token);
        self.retired_refresh.insert(refresh_token.to_string(), family.to_string());
    }

    /// Reuse of a retired refresh token: the whole grant (every token of its family) dies.
    fn revoke_grant_on_reuse(&mut self, refresh_token: &str) -> bool {
        let Some(family) = self.retired_refresh.get(refresh_token).cloned() else { return false };
        self.bump("refresh_reuse");
        let doomed: Vec<String> =
            self.refresh_tokens.iter().filter(|(_, g)| g.family == family).map(|(t, _)| t.clone()).collect();
        for token in doomed {
            self.revoke_refresh_family(&token);
        }
        true
    }

    fn revoke_refresh_family(&mut self, refresh_token: &str) {
        self.refresh_tokens.remove(refresh_token);
        self.access_tokens.retain(|_, a| a.parent_refresh.as_deref() != Some(refresh_token));
    }

    fn revoke_all(&mut self) -> (usize, usize) {
        let revoked = (self.access_tokens.len(), self.refresh_tokens.len());
        self.access_tokens.clear();
        self.refresh_tokens.clear();
        revoked
    }

    fn live_tokens(&self) -> LiveTokens {
        let now = self.now();
        LiveTokens {
            access_tokens: self.access_tokens.values().filter(|a| a.expires_at > now).count(),
            refresh_tokens: self.refresh_tokens.values().filter(|r| r.expires_at > now).count(),
            codes: self.codes.values().filter(|c| c.expires_at > now).count(),
        }
    }
}

/// `expiration` minutes as ArcGIS reads them: -1 = maximum, positive = capped, anything else = default.
pub(super) fn resolve_minutes(raw: Option<i64>, max: u64) -> Option<u64> {
    match raw {
        Some(-1) => Some(max),
        Some(m) if m > 0 => Some((m as u64).min(max)),
        _ => None,
    }
}

pub(super) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panicking handler must not wedge every later request.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registered exactly, or loopback with any port/path when the app lists `http://127.0.0.1`.
fn redirect_allowed(app: &SimApp, redirect_uri: &str) -> bool {
    // Only visible ASCII without fragments can be echoed safely in a Location header.
    if redirect_uri.is_empty() || redirect_uri.contains('#') || !redirect_uri.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return false;
    }
    app.redirect_uris.iter().any(|registered| {
        if registered == redirect_uri {
            return true;
        }
        if registered != LOOPBACK_REDIRECT_URI {
            return false;
        }
        let Some(rest) = redirect_uri.strip_prefix(LOOPBACK_REDIRECT_URI) else {
            return false;
        };
        let rest = match rest.strip_prefix(':') {
            Some(after_colon) => {
                let digits = after_colon.bytes().take_while(u8::is_ascii_digit).count();
                if after_colon[..digits].parse::<u16>().is_err() {
                    return false;
                }
                &after_colon[digits..]
            }
            None => rest,
        };
        rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
    })
}

// ---------------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------------

pub(super) struct Incoming {
    pub(super) is_post: bool,
    pub(super) path: String,
    /// Query parameters, overridden by form-body fields of the same name.
    pub(super) params: HashMap<String, String>,
    pub(super) body: String,
    /// From `X-Esri-Authorization: Bearer`, else `Authorization: Bearer`.
    pub(super) bearer: Option<String>,
    pub(super) referer: Option<String>,
    /// The caller's IP address, for `client=requestip` tokens.
    pub(super) remote_ip: Option<String>,
}

impl Incoming {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

pub(super) enum Reply {
    /// ArcGIS JSON: always HTTP 200, errors included. `pretty` for f=pjson.
    Json {
        body: Value,
        pretty: bool,
    },
    Html {
        status: u16,
        body: String,
    },
    Redirect(String),
    /// Admin hooks use real status codes since they are ours, not ArcGIS's.
    Admin {
        status: u16,
        body: Value,
    },
}

pub(super) fn arcgis_json(body: Value, pretty: bool) -> Reply {
    Reply::Json { body, pretty }
}

/// The mixed ArcGIS/OAuth error object the token endpoint answers with (HTTP 200).
fn oauth_error(code: u16, error: &str, message: &str, pretty: bool) -> Reply {
    let body = json!({"error": {"code": code, "error": error, "error_description": message, "message": message, "details": []}});
    arcgis_json(body, pretty)
}

pub(super) fn token_required(pretty: bool) -> Reply {
    let body = json!({"error": {"code": 499, "message": "Token Required", "messageCode": "GWM_0003", "details": ["Token Required"]}});
    arcgis_json(body, pretty)
}

pub(super) fn invalid_token(pretty: bool) -> Reply {
    arcgis_json(json!({"error": {"code": 498, "message": "Invalid token.", "details": []}}), pretty)
}

pub(super) fn forbidden(pretty: bool) -> Reply {
    let message = "You do not have permissions to access this resource or perform this operation.";
    arcgis_json(json!({"error": {"code": 403, "message": message, "details": []}}), pretty)
}

pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub(super) fn html_page(status: u16, title: &str, body: &str) -> Reply {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        html_escape(title)
    );
    Reply::Html { status, body }
}

fn html_error(status: u16, message: &str) -> Reply {
    html_page(
        status,
        "Error",
        &format!("<h1>Error</h1>\n<div class=\"error\" id=\"errorMessage\">{}</div>", html_escape(message)),
    )
}

/// What ArcGIS answers when a client forgets f=json: the HTML "Portal Directory" rendering.
pub(super) fn html_directory(path: &str) -> Reply {
    let body = format!(
        "<h1>ArcGIS Portal Directory</h1>\n<p>Resource: {}</p>\n<p>Formats: <a href=\"?f=json\">JSON</a></p>",
        html_escape(path)
    );
    html_page(200, "ArcGIS Portal Directory", &body)
}

fn approval_page(code: &str) -> Reply {
    let code = html_escape(code);
    let body = format!(
        "<h1>OAuth2 Approval</h1>\n<p>Please copy this code, switch to your application and paste it there:</p>\n\
         <input type=\"text\" id=\"code\" value=\"{code}\" readonly>"
    );
    Reply::Html {
        status: 200,
        body: format!(
            "<!DOCTYPE html>\n<html><head><title>SUCCESS code={code}</title></head>\n<body>\n{body}\n</body></html>\n"
        ),
    }
}

fn sign_in_page(oauth_state: &str, app: &SimApp, error: Option<&str>) -> Reply {
    let info = json!({"oauth_state": oauth_state, "client_id": app.client_id, "appTitle": app.name, "locale": "en"});
    // Keep "</" out of the inline script whatever the app name is.
    let info = info.to_string().replace("</", "<\\/");
    let error_html = error
        .map(|e| format!("<div class=\"error\" id=\"errorMessage\">{}</div>\n", html_escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<script>var oAuthInfo = {info};</script>\n<h1>Sign in to {app_name}</h1>\n{error_html}\
         <form method=\"post\" action=\"/portal/sharing/rest/oauth2/signin\">\n\
         <input type=\"hidden\" name=\"oauth_state\" value=\"{state}\">\n<input type=\"hidden\" name=\"user_orgkey\" value=\"\">\n\
         <label>Username <input type=\"text\" name=\"username\"></label>\n\
         <label>Password <input type=\"password\" name=\"password\"></label>\n\
         <button type=\"submit\">Sign In</button>\n</form>",
        app_name = html_escape(&app.name),
        state = html_escape(oauth_state),
    );
    html_page(200, "Sign In", &body)
}

fn with_params(base: &str, separator: char, params: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let joiner = if separator == '?' && base.contains('?') { '&' } else { separator };
    format!("{base}{joiner}{}", query.finish())
}

/// Authorize-time errors land where the success payload would: query for `code`, fragment for `token`.
fn authorize_error(
    redirect_uri: &str,
    response_type: ResponseType,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Reply {
    if redirect_uri == OOB_REDIRECT_URI {
        return html_page(
            400,
            &format!("ERROR error={error}"),
            &format!("<h1>OAuth2 Error</h1>\n<p>{}</p>", html_escape(description)),
        );
    }
    let separator = if response_type == ResponseType::Token { '#' } else { '?' };
    Reply::Redirect(with_params(
        redirect_uri,
        separator,
        &[("error", Some(error)), ("error_description", Some(description)), ("state", state)],
    ))
}

// ---------------------------------------------------------------------------------------------
// Portal endpoints
// ---------------------------------------------------------------------------------------------

/// `f=json` → compact, `f=pjson` → pretty, anything else → the client gets HTML (ArcGIS default f=html).
pub(super) fn json_format(req: &Incoming) -> Option<bool> {
    match req.param("f") {
        Some("json") => Some(false),
        Some("pjson") => Some(true),
        _ => None,
    }
}

fn authorize(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("authorize");
    let Some(app) = req.param("client_id").and_then(|id| st.app(id)) else {
        return html_error(400, "Invalid client_id");
    };
    let redirect_uri = req.param("redirect_uri").unwrap_or("");
    if !redirect_allowed(&app, redirect_uri) {
        return html_error(400, "Invalid redirect_uri");
    }
    let state = req.param("state");
    let response_type = match req.param("response_type") {
        Some("code") => ResponseType::Code,
        Some("token") if redirect_uri != OOB_REDIRECT_URI => ResponseType::Token,
        _ => {
            return authorize_error(
                redirect_uri,
                ResponseType::Code,
                "unsupported_response_type",
                "Invalid response_type",
                state,
            )
        }
    };
    let challenge = match (req.param("code_challenge"), req.param("code_challenge_method")) {
        (None, _) => None,
        (Some(c), Some("S256")) => Some(PkceChallenge::S256(c.to_string())),
        // RFC 7636 §4.3: the method defaults to plain.
        (Some(c), None | Some("plain")) => Some(PkceChallenge::Plain(c.to_string())),
        (Some(_), Some(_)) => {
            return authorize_error(
                redirect_uri,
                response_type,
                "invalid_request",
                "Invalid code_challenge_method",
                state,
            )
        }
    };
    if std::mem::take(&mut st.deny_next_authorize) {
        return authorize_error(redirect_uri, response_type, "access_denied", "The user denied your request.", state);
    }
    let pending = PendingAuthorization {
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        response_type,
        state: state.map(str::to_string),
        challenge,
        expiration_minutes: req.param("expiration").and_then(|e| e.trim().parse().ok()),
        expires_at: st.now() + SIGN_IN_WINDOW_SECS,
    };
    if st.config.auto_approve {
        let username = st.config.approve_as.clone();
        return approve(st, pending, &username);
    }
    let oauth_state = random_token("");
    // Abandoned sign-ins would otherwise pile up in a long-running sandbox.
    let now = st.now();
    st.pending.retain(|_, p| p.expires_at > now);
    st.pending.insert(oauth_state.clone(), pending);
    sign_in_page(&oauth_state, &app, None)
}

/// The user approved: hand out a code (OOB page or loopback redirect) or, for `token`, an access token.
fn approve(st: &mut SimState, pending: PendingAuthorization, username: &str) -> Reply {
    match pending.response_type {
        ResponseType::Code => {
            let code = random_token("");
            let issued = IssuedCode {
                client_id: pending.client_id,
                redirect_uri: pending.redirect_uri.clone(),
                username: username.to_string(),
                challenge: pending.challenge,
                expiration_minutes: pending.expiration_minutes,
                expires_at: st.now() + st.config.code_lifetime,
            };
            let now = st.now();
            st.codes.retain(|_, c| c.expires_at > now);
            st.codes.insert(code.clone(), issued);
            if pending.redirect_uri == OOB_REDIRECT_URI {
                return approval_page(&code);
            }
            Reply::Redirect(with_params(
                &pending.redirect_uri,
                '?',
                &[("code", Some(&code)), ("state", pending.state.as_deref())],
            ))
        }
        ResponseType::Token => {
            // For the implicit grant, `expiration` sets the access token's own lifetime.
            let lifetime = resolve_minutes(pending.expiration_minutes, MAX_ACCESS_MINUTES)
                .map(|m| m * 60)
                .unwrap_or(st.config.access_token_lifetime);
            let grant = AccessGrant {
                client_id: Some(pending.client_id),
                username: Some(username.to_string()),
                parent_refresh: None,
                expires_at: st.now() + lifetime,
                ..AccessGrant::default()
            };
            let token = st.mint_access("at_", grant);
            let expires_in = lifetime.to_string();
            let params = [
                ("access_token", Some(token.as_str())),
                ("expires_in", Some(expires_in.as_str())),
                ("username", Some(username)),
                ("ssl", Some("false")),
                ("state", pending.state.as_deref()),
            ];
            Reply::Redirect(with_params(&pending.redirect_uri, '#', &params))
        }
    }
}

fn sign_in(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("signin");
    let now = st.now();
    let oauth_state = req.param("oauth_state").unwrap_or("");
    let Some(pending) = st.pending.get(oauth_state).filter(|p| p.expires_at > now).cloned() else {
        return html_error(400, "Invalid or expired sign-in request. Start again from your application.");
    };
    let Some(app) = st.app(&pending.client_id) else {
        return html_error(400, "Invalid client_id");
    };
    let username = req.param("username").unwrap_or("");
    let password = req.param("password").unwrap_or("");
    let valid = st.config.users.iter().any(|u| u.username == username && u.password == password);
    if !valid {
        return sign_in_page(oauth_state, &app, Some("Invalid username or password."));
    }
    st.pending.remove(oauth_state);
    approve(st, pending, username)
}

fn approval(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("approval");
    match req.param("code") {
        Some(code) => approval_page(code),
        None => html_error(400, "Missing code"),
    }
}

fn token(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("token");
    let grant_type = req.param("grant_type");
    match grant_type {
        Some(g @ ("authorization_code" | "refresh_token" | "exchange_refresh_token" | "client_credentials")) => {
            st.bump(&format!("token:{g}"))
        }
        Some(_) => st.bump("token:unsupported"),
        None => {}
    }
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    let Some(client_id) = req.param("client_id") else {
        return oauth_error(400, "invalid_request", "client_id not specified", pretty);
    };
    let Some(app) = st.app(client_id) else {
        return oauth_error(400, "invalid_client_id", "Invalid client_id", pretty);
    };
    // client_secret is only required for client_credentials, but a secret that is sent must match.
    if let Some(secret) = req.param("client_secret") {
        if app.client_secret.as_deref() != Some(secret) {
            return oauth_error(400, "invalid_request", "Invalid client_secret", pretty);
        }
    }
    match grant_type {
        Some("authorization_code") => redeem_code(st, req, &app, pretty),
        Some("refresh_token") => refresh(st, req, &app, pretty),
        Some("exchange_refresh_token") => exchange_refresh(st, req, &app, pretty),
        Some("client_credentials") => client_credentials(st, req, &app, pretty),
        Some(_) => oauth_error(400, "unsupported_grant_type", "Invalid grant_type", pretty),
        None => oauth_error(400, "invalid_request", "grant_type not specified", pretty),
    }
}

fn user_token_response(
    st: &mut SimState,
    app: &SimApp,
    username: &str,
    refresh: Option<(&str, u64)>,
    parent: &str,
    pretty: bool,
) -> Reply {
    let lifetime = st.config.access_token_lifetime;
    let grant = AccessGrant {
        client_id: Some(app.client_id.clone()),
        username: Some(username.to_string()),
        parent_refresh: Some(parent.to_string()),
        expires_at: st.now() + lifetime,
        ..AccessGrant::default()
    };
    let access_token = st.mint_access("at_", grant);
    // No token_type: ArcGIS does not send one.
    let mut body = json!({"access_token": access_token, "expires_in": lifetime, "username": username, "ssl": false});
    if let Some((refresh_token, refresh_lifetime)) = refresh {
        body["refresh_token"] = json!(refresh_token);
        if st.config.include_refresh_expiry {
            body["refresh_token_expires_in"] = json!(refresh_lifetime);
        }
    }
    arcgis_json(body, pretty)
}

fn redeem_code(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    let Some(code) = req.param("code") else {
        return oauth_error(400, "invalid_request", "code not specified", pretty);
    };
    let Some(redirect_uri) = req.param("redirect_uri") else {
        return oauth_error(400, "invalid_request", "redirect_uri not specified", pretty);
    };
    // Codes are single-use: any redemption attempt burns the code, successful or not.
    let now = st.now();
    let Some(issued) = st.codes.remove(code).filter(|c| c.expires_at > now && c.client_id == app.client_id) else {
        return oauth_error(400, "invalid_request", "Invalid authorization code", pretty);
    };
    if issued.redirect_uri != redirect_uri {
        return oauth_error(400, "invalid_request", "Invalid redirect_uri", pretty);
    }
    if let Some(challenge) = &issued.challenge {
        if !challenge.accepts(req.param("code_verifier").unwrap_or("")) {
            return oauth_error(400, "invalid_request", "Invalid code_verifier", pretty);
        }
    }
    let (refresh_token, refresh_lifetime) =
        st.mint_refresh(&app.client_id, &issued.username, issued.expiration_minutes);
    user_token_response(st, app, &issued.username, Some((&refresh_token, refresh_lifetime)), &refresh_token, pretty)
}

/// The live refresh grant for this app, or `None` (expired, revoked, unknown, other app's).
fn live_refresh_grant(st: &mut SimState, refresh_token: &str, app: &SimApp) -> Option<RefreshGrant> {
    if st.config.rotate_on_refresh && st.revoke_grant_on_reuse(refresh_token) {
        return None;
    }
    let now = st.now();
    let grant = st.refresh_tokens.get(refresh_token)?.clone();
    if grant.expires_at <= now {
        st.revoke_refresh_family(refresh_token);
        return None;
    }
    (grant.client_id == app.client_id).then_some(grant)
}

fn refresh_expired(pretty: bool) -> Reply {
    oauth_error(498, "invalid_request", "refresh_token expired", pretty)
}

fn refresh(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    let Some(refresh_token) = req.param("refresh_token") else {
        return oauth_error(400, "invalid_request", "refresh_token not specified", pretty);
    };
    let Some(grant) = live_refresh_grant(st, refresh_token, app) else {
        return refresh_expired(pretty);
    };
    if st.config.rotate_on_refresh {
        st.retire_refresh(refresh_token, &grant.family);
        let (new_refresh, lifetime) =
            st.mint_refresh_in(Some(grant.family.clone()), &app.client_id, &grant.username, grant.expiration_minutes);
        return user_token_response(st, app, &grant.username, Some((&new_refresh, lifetime)), &new_refresh, pretty);
    }
    // New access token only; the refresh token stays as it is.
    user_token_response(st, app, &grant.username, None, refresh_token, pretty)
}

fn exchange_refresh(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    let Some(redirect_uri) = req.param("redirect_uri") else {
        return oauth_error(400, "invalid_request", "redirect_uri not specified", pretty);
    };
    if !redirect_allowed(app, redirect_uri) {
        return oauth_error(400, "invalid_request", "Invalid redirect_uri", pretty);
    }
    let Some(refresh_token) = req.param("refresh_token") else {
        return oauth_error(400, "invalid_request", "refresh_token not specified", pretty);
    };
    let Some(grant) = live_refresh_grant(st, refresh_token, app) else {
        return refresh_expired(pretty);
    };
    // Rotation: the old refresh token dies; access tokens already minted from it live out their time.
    st.retire_refresh(refresh_token, &grant.family);
    let (new_refresh, lifetime) =
        st.mint_refresh_in(Some(grant.family.clone()), &app.client_id, &grant.username, grant.expiration_minutes);
    user_token_response(st, app, &grant.username, Some((&new_refresh, lifetime)), &new_refresh, pretty)
}

fn client_credentials(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    if req.param("client_secret").is_none() {
        return oauth_error(400, "invalid_request", "client_secret not specified", pretty);
    }
    if app.client_secret.is_none() {
        // A public app has no secret, so no secret can match.
        return oauth_error(400, "invalid_request", "Invalid client_secret", pretty);
    }
    let expiration = req.param("expiration").and_then(|e| e.trim().parse().ok());
    let lifetime = resolve_minutes(expiration, MAX_ACCESS_MINUTES).unwrap_or(DEFAULT_APP_TOKEN_MINUTES) * 60;
    let grant = AccessGrant {
        client_id: Some(app.client_id.clone()),
        username: None,
        parent_refresh: None,
        expires_at: st.now() + lifetime,
        ..AccessGrant::default()
    };
    let access_token = st.mint_access("app_", grant);
    arcgis_json(json!({"access_token": access_token, "expires_in": lifetime}), pretty)
}

fn revoke_token(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("revokeToken");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    if !req.is_post {
        return arcgis_json(json!({"error": {"code": 405, "message": "Method not supported.", "details": []}}), pretty);
    }
    let token = req.param("auth_token").unwrap_or("");
    let client_id = req.param("client_id");
    // Only the issuing app may revoke; app tokens and generateToken tokens cannot be revoked here.
    if st.refresh_tokens.get(token).is_some_and(|r| Some(r.client_id.as_str()) == client_id) {
        st.revoke_refresh_family(token);
    } else if st
        .access_tokens
        .get(token)
        .is_some_and(|a| a.username.is_some() && a.client_id.as_deref() == client_id && client_id.is_some())
    {
        st.access_tokens.remove(token);
    }
    // Always success, so callers learn nothing about the token.
    arcgis_json(json!({"success": true}), pretty)
}

enum Caller {
    Anonymous,
    Invalid,
    Valid(AccessGrant),
}

fn identify(st: &mut SimState, req: &Incoming) -> Caller {
    let Some(token) = req.bearer.as_deref().or_else(|| req.param("token")) else {
        return Caller::Anonymous;
    };
    let now = st.now();
    match st.access_tokens.get(token) {
        Some(grant) if grant.expires_at > now => {
            // A server token is for its server only; a bound token only with its referer / from its IP.
            if grant.server.is_none() && grant.binding_allows(req) {
                Caller::Valid(grant.clone())
            } else {
                Caller::Invalid
            }
        }
        Some(_) => {
            st.access_tokens.remove(token);
            Caller::Invalid
        }
        None => Caller::Invalid,
    }
}

impl AccessGrant {
    /// `client=referer` tokens need the same `Referer`; `requestip` / `ip` ones the same caller address.
    fn binding_allows(&self, req: &Incoming) -> bool {
        let referer_ok = self.referer.as_deref().is_none_or(|r| req.referer.as_deref() == Some(r));
        let ip_ok = self.ip.as_deref().is_none_or(|ip| req.remote_ip.as_deref() == Some(ip));
        referer_ok && ip_ok
    }
}

/// How a token minted by `generateToken` is bound (`client`, `referer`, `ip`), or the error detail.
pub(super) fn token_binding(req: &Incoming) -> Result<(Option<String>, Option<String>), &'static str> {
    match req.param("client").unwrap_or("requestip") {
        "referer" => match req.param("referer") {
            Some(r) => Ok((Some(r.to_string()), None)),
            None => Err("Referer is required for client=referer."),
        },
        "requestip" => Ok((None, req.remote_ip.clone())),
        "ip" => match req.param("ip") {
            Some(ip) => Ok((None, Some(ip.to_string()))),
            None => Err("IP is required for client=ip."),
        },
        _ => Err("Invalid client type."),
    }
}

/// The `generateToken` failure shape (HTTP 200, code 400).
pub(super) fn unable_to_generate(detail: &str, pretty: bool) -> Reply {
    arcgis_json(json!({"error": {"code": 400, "message": "Unable to generate token.", "details": [detail]}}), pretty)
}

/// Server roots compare without case in scheme/host and without a trailing slash.
pub(super) fn same_root(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn user_json(user: &SimUser) -> Value {
    let (first, last) = user.full_name.split_once(' ').unwrap_or((&user.full_name, ""));
    json!({
        "username": user.username,
        "fullName": user.full_name,
        "firstName": first,
        "lastName": last,
        "email": user.email,
        "orgId": "sandboxorg",
        "role": "org_user",
        "userType": "creatorUT",
        "privileges": ["portal:user:createItem", "portal:user:joinGroup", "portal:user:shareToGroup", "portal:user:viewOrgItems"],
    })
}

fn community_self(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("community/self");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    match identify(st, req) {
        Caller::Anonymous => token_required(pretty),
        Caller::Invalid => invalid_token(pretty),
        Caller::Valid(AccessGrant { username: None, .. }) => forbidden(pretty),
        Caller::Valid(AccessGrant { username: Some(username), .. }) => {
            arcgis_json(user_json(&st.user(&username)), pretty)
        }
    }
}

/// `community/users/{name}`: a user's profile, for signed-in callers.
fn community_user(st: &mut SimState, req: &Incoming, name: &str) -> Reply {
    st.bump("community/users");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    match identify(st, req) {
        Caller::Anonymous => token_required(pretty),
        Caller::Invalid => invalid_token(pretty),
        Caller::Valid(_) => match st.config.users.iter().find(|u| u.username == name) {
            Some(user) => arcgis_json(user_json(user), pretty),
            None => arcgis_json(json!({"error": {"code": 400, "message": "User not found", "details": []}}), pretty),
        },
    }
}

fn portals_self(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    st.bump("portals/self");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    // The fields the `arcgis` Python package reads while building a GIS, as an Enterprise portal has them.
    let host = base_url.split("://").nth(1).unwrap_or_default();
    let mut body = json!({
        "id": "sandboxorg",
        "name": "age-oauth sandbox",
        "urlKey": "sandbox",
        "isPortal": true,
        "portalName": "ArcGIS Enterprise",
        "portalMode": "singletenant",
        "portalHostname": host,
        "customBaseUrl": host.split('/').next().unwrap_or_default(),
        "currentVersion": "2024.1",
        "supportsOAuth": true,
        "helperServices": {},
        "portalProperties": {},
        "maxTokenExpirationMinutes": -1,
        "allSSL": false,
        "authorizedCrossOriginDomains": [],
    });
    // Anonymous callers get the public portal description, as on a real portal.
    match identify(st, req) {
        Caller::Anonymous => {}
        Caller::Invalid => return invalid_token(pretty),
        Caller::Valid(grant) => {
            if let Some(username) = &grant.username {
                body["user"] = user_json(&st.user(username));
            }
            if let Some(app) = grant.client_id.as_deref().and_then(|id| st.app(id)) {
                body["appInfo"] = app_info(st, &app);
            }
        }
    }
    arcgis_json(body, pretty)
}

/// `portals/self`'s `appInfo` for a token of an app, as a real portal gives it: the app's
/// title, its App ID, the id of its registered item and that item's owner.
fn app_info(st: &SimState, app: &SimApp) -> Value {
    let item: String = Sha256::digest(app.client_id.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    let owner = st.config.users.first().map(|u| u.username.clone()).unwrap_or_else(|| "admin".into());
    json!({
        "appId": app.client_id,
        "appTitle": app.name,
        "itemId": item,
        "appOwner": owner,
        "orgId": "sandboxorg",
        "privileges": ["portal:user:viewOrgItems"],
    })
}

fn info(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    st.bump("info");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    let body = json!({
        "owningSystemUrl": base_url,
        "currentVersion": "11.3",
        "authInfo": {"tokenServicesUrl": format!("{base_url}/sharing/rest/generateToken"), "isTokenBasedSecurity": true},
    });
    arcgis_json(body, pretty)
}

fn generate_token(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("generateToken");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    if !req.is_post {
        return unable_to_generate("Token generation requires a POST request.", pretty);
    }
    let expiration = req.param("expiration").and_then(|e| e.trim().parse().ok());
    let lifetime = resolve_minutes(expiration, MAX_ACCESS_MINUTES).unwrap_or(DEFAULT_GENERATE_TOKEN_MINUTES) * 60;
    let expires_at = st.now() + lifetime;
    if let Some(server_url) = req.param("serverUrl") {
        return federated_server_token(st, req, server_url, expires_at, pretty);
    }
    let (username, password) = (req.param("username").unwrap_or(""), req.param("password").unwrap_or(""));
    if !st.config.users.iter().any(|u| u.username == username && u.password == password) {
        return unable_to_generate("Invalid username or password.", pretty);
    }
    let (referer, ip) = match token_binding(req) {
        Ok(binding) => binding,
        Err(detail) => return unable_to_generate(detail, pretty),
    };
    let grant = AccessGrant { username: Some(username.to_string()), expires_at, referer, ip, ..AccessGrant::default() };
    let token = st.mint_access("gt_", grant);
    // `expires` is epoch milliseconds, unlike the OAuth `expires_in` seconds.
    arcgis_json(json!({"token": token, "expires": expires_at * 1000, "ssl": false}), pretty)
}

/// Federation: a valid portal token (`token`, sent with the portal token's own referer) buys a
/// token for one federated server root; it never outlives the portal token.
fn federated_server_token(st: &mut SimState, req: &Incoming, server_url: &str, expires_at: u64, pretty: bool) -> Reply {
    st.bump("generateToken:serverUrl");
    let portal_token = req.param("token").or(req.bearer.as_deref());
    let Some(grant) = portal_token.and_then(|t| st.access_tokens.get(t)).cloned() else {
        return if portal_token.is_some() { invalid_token(pretty) } else { token_required(pretty) };
    };
    let now = st.now();
    if grant.expires_at <= now || grant.server.is_some() || !grant.binding_allows(req) {
        return invalid_token(pretty);
    }
    let Some(server) = st.federated_servers.iter().find(|s| same_root(s, server_url)).cloned() else {
        return unable_to_generate("The server is not federated with this portal.", pretty);
    };
    let Some(username) = grant.username.clone() else {
        return forbidden(pretty);
    };
    let server_grant = AccessGrant {
        username: Some(username),
        expires_at: expires_at.min(grant.expires_at),
        referer: req.param("referer").map(String::from).or(grant.referer.clone()),
        server: Some(server),
        ..AccessGrant::default()
    };
    let expires = server_grant.expires_at;
    let token = st.mint_access("st_", server_grant);
    arcgis_json(json!({"token": token, "expires": expires * 1000, "ssl": false}), pretty)
}

fn sign_out(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("signout");
    let target = req.param("redirect_uri").filter(|uri| {
        req.param("client_id")
            .and_then(|id| st.app(id))
            .is_some_and(|app| uri != &OOB_REDIRECT_URI && redirect_allowed(&app, uri))
    });
    match (target, json_format(req)) {
        (Some(uri), _) => Reply::Redirect(uri.to_string()),
        (None, Some(pretty)) => arcgis_json(json!({"success": true}), pretty),
        (None, None) => html_page(200, "Signed Out", "<h1>You are signed out.</h1>"),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin hooks (`/__admin/*`), for tests driving the CLI as a separate process
// ---------------------------------------------------------------------------------------------

fn admin_error(status: u16, message: &str) -> Reply {
    Reply::Admin { status, body: json!({"error": message}) }
}

fn config_json(st: &SimState) -> Value {
    let c = &st.config;
    json!({
        "access_token_lifetime": c.access_token_lifetime,
        "refresh_token_lifetime": c.refresh_token_lifetime,
        "code_lifetime": c.code_lifetime,
        "auto_approve": c.auto_approve,
        "approve_as": c.approve_as,
        "include_refresh_expiry": c.include_refresh_expiry,
        "rotate_on_refresh": c.rotate_on_refresh,
        "deny_next_authorize": st.deny_next_authorize,
        "invalid_token_status": st.invalid_token_status,
    })
}

/// All-or-nothing: a bad field leaves the configuration untouched.
fn apply_config(st: &mut SimState, changes: &serde_json::Map<String, Value>) -> Result<(), String> {
    let (mut config, mut deny_next_authorize) = (st.config.clone(), st.deny_next_authorize);
    let mut invalid_token_status = st.invalid_token_status;
    for (key, value) in changes {
        let as_secs = || value.as_u64().ok_or(format!("{key} must be a non-negative integer"));
        let as_bool = || value.as_bool().ok_or(format!("{key} must be a boolean"));
        match key.as_str() {
            "access_token_lifetime" => config.access_token_lifetime = as_secs()?,
            "refresh_token_lifetime" => config.refresh_token_lifetime = as_secs()?,
            "code_lifetime" => config.code_lifetime = as_secs()?,
            "auto_approve" => config.auto_approve = as_bool()?,
            "include_refresh_expiry" => config.include_refresh_expiry = as_bool()?,
            "rotate_on_refresh" => config.rotate_on_refresh = as_bool()?,
            "deny_next_authorize" => deny_next_authorize = as_bool()?,
            "invalid_token_status" => match value.as_u64() {
                Some(status @ (200 | 401 | 498)) => invalid_token_status = status as u16,
                _ => return Err("invalid_token_status must be 200, 401 or 498".into()),
            },
            "approve_as" => config.approve_as = value.as_str().ok_or("approve_as must be a string")?.to_string(),
            other => return Err(format!("unknown setting {other}")),
        }
    }
    (st.config, st.deny_next_authorize, st.invalid_token_status) = (config, deny_next_authorize, invalid_token_status);
    Ok(())
}

fn admin(st: &mut SimState, req: &Incoming) -> Reply {
    let action = req.path.trim_start_matches("/__admin/");
    let body: Value = if req.body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&req.body) {
            Ok(v) => v,
            Err(e) => return admin_error(400, &format!("body is not JSON: {e}")),
        }
    };
    let ok = |body: Value| Reply::Admin { status: 200, body };
    match (action, req.is_post) {
        ("counts", false) => ok(json!(st.counts)),
        ("requests", false) => ok(json!(st.request_log)),
        ("state", false) => {
            let live = st.live_tokens();
            ok(json!({
                "live_access_tokens": live.access_tokens,
                "live_refresh_tokens": live.refresh_tokens,
                "live_codes": live.codes,
                "pending_sign_ins": st.pending.len(),
                "now": st.now(),
                "clock_offset_seconds": st.clock_offset_secs,
                "config": config_json(st),
            }))
        }
        ("reset_counts", true) => {
            st.counts.clear();
            st.request_log.clear();
            ok(json!({"success": true}))
        }
        ("revoke_all", true) => {
            let (access, refresh) = st.revoke_all();
            ok(json!({"success": true, "revoked_access_tokens": access, "revoked_refresh_tokens": refresh}))
        }
        ("advance_clock", true) => match body.get("seconds").and_then(Value::as_i64) {
            Some(seconds) => {
                st.clock_offset_secs = st.clock_offset_secs.saturating_add(seconds);
                ok(json!({"now": st.now(), "clock_offset_seconds": st.clock_offset_secs}))
            }
            None => admin_error(400, "expected {\"seconds\": N}"),
        },
        ("config", true) => match body.as_object().map(|changes| apply_config(st, changes)) {
            Some(Ok(())) => ok(config_json(st)),
            Some(Err(message)) => admin_error(400, &message),
            None => admin_error(400, "expected a JSON object"),
        },
        ("config", false) => ok(config_json(st)),
        ("counts" | "requests" | "state" | "reset_counts" | "revoke_all" | "advance_clock", _) => {
            admin_error(405, "wrong method")
        }
        _ => admin_error(404, "unknown admin endpoint"),
    }
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

fn route(state: &Mutex<SimState>, req: &Incoming, base_url: &str) -> Reply {
    let mut st = lock(state);
    let st = &mut *st;
    if req.path.starts_with("/__admin/") {
        return admin(st, req);
    }
    log_request(st, req);
    if let Some(code) = req.path.strip_prefix("/__test/status/") {
        return test_status(st, code);
    }
    let reply = dispatch(st, req, base_url);
    match reply {
        Reply::Json { body, .. } if st.invalid_token_status != 200 && body["error"]["code"] == 498 => {
            Reply::Admin { status: st.invalid_token_status, body }
        }
        other => other,
    }
}

/// How a request authenticated, for the request log; never changes state.
fn auth_kind(st: &SimState, req: &Incoming) -> &'static str {
    match req.bearer.as_deref().or_else(|| req.param("token")) {
        None => "none",
        Some(token) => match st.access_tokens.get(token) {
            Some(grant) if grant.expires_at > st.now() => "valid",
            _ => "invalid",
        },
    }
}

fn log_request(st: &mut SimState, req: &Incoming) {
    if st.request_log.len() >= MAX_LOGGED_REQUESTS {
        st.request_log.remove(0);
    }
    let entry =
        json!({"method": if req.is_post { "POST" } else { "GET" }, "path": req.path, "auth": auth_kind(st, req)});
    st.request_log.push(entry);
}

/// `/__test/status/NNN`: answers HTTP NNN with an ArcGIS-shaped error, for clients' retry rules.
fn test_status(st: &mut SimState, code: &str) -> Reply {
    match code.parse::<u16>() {
        Ok(status @ 200..=599) => {
            st.bump(&format!("test/status:{status}"));
            Reply::Admin { status, body: json!({"error": {"code": status, "message": "test status", "details": []}}) }
        }
        _ => html_page(404, "404 Not Found", "<h1>Not Found</h1>"),
    }
}

fn dispatch(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    if let Some(name) = req.path.strip_prefix("/portal/sharing/rest/community/users/") {
        let name = name.trim_end_matches('/');
        if !name.is_empty() && !name.contains('/') {
            return community_user(st, req, name);
        }
    }
    match req.path.trim_end_matches('/') {
        "/portal/sharing/rest/oauth2/authorize" => authorize(st, req),
        "/portal/sharing/rest/oauth2/signin" => sign_in(st, req),
        "/portal/sharing/oauth2/approval" => approval(st, req),
        "/portal/sharing/rest/oauth2/token" if st.token_outage.is_some() => {
            st.bump("token:outage");
            let status = st.token_outage.unwrap_or(503);
            html_page(status, "Service Unavailable", "<h1>Service Unavailable</h1>")
        }
        "/portal/sharing/rest/oauth2/token" => token(st, req),
        "/portal/sharing/rest/oauth2/revokeToken" => revoke_token(st, req),
        "/portal/sharing/rest/oauth2/signout" => sign_out(st, req),
        "/portal/sharing/rest/community/self" => community_self(st, req),
        "/portal/sharing/rest/portals/self" => portals_self(st, req, base_url),
        "/portal/sharing/rest/info" => info(st, req, base_url),
        "/portal/sharing/rest/generateToken" => generate_token(st, req),
        _ => {
            st.bump("not_found");
            html_page(404, "404 Not Found", "<h1>Not Found</h1>\n<p>The requested resource does not exist.</p>")
        }
    }
}

pub(super) fn read_incoming(request: &mut tiny_http::Request) -> Incoming {
    let is_post = *request.method() == tiny_http::Method::Post;
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let mut params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let mut raw = Vec::new();
    // A body that fails to read is treated as empty; the handlers then report missing parameters.
    if request.as_reader().take(MAX_BODY_BYTES).read_to_end(&mut raw).is_err() {
        raw.clear();
    }
    let is_form = request.headers().iter().any(|h| {
        h.field.equiv("Content-Type")
            && h.value.as_str().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    });
    if is_post && is_form {
        params.extend(form_urlencoded::parse(&raw).into_owned());
    }
    // X-Esri-Authorization wins: behind web-tier auth the standard header belongs to the web tier.
    let bearer_from = |name: &'static str| {
        request.headers().iter().find(|h| h.field.equiv(name)).and_then(|h| {
            let value = h.value.as_str().trim();
            let token = value.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| value[7..].trim())?;
            (!token.is_empty()).then(|| token.to_string())
        })
    };
    let bearer = bearer_from("X-Esri-Authorization").or_else(|| bearer_from("Authorization"));
    let referer = request.headers().iter().find(|h| h.field.equiv("Referer")).map(|h| h.value.as_str().to_string());
    let remote_ip = request.remote_addr().map(|a| a.ip().to_string());
    Incoming {
        is_post,
        path: path.to_string(),
        params,
        body: String::from_utf8_lossy(&raw).into_owned(),
        bearer,
        referer,
        remote_ip,
    }
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

pub(super) fn respond(request: tiny_http::Request, reply: Reply, date_skew_secs: i64) {
    let (status, content_type, body, location) = match reply {
        Reply::Json { body, pretty } => {
            let text = if pretty { serde_json::to_string_pretty(&body) } else { serde_json::to_string(&body) };
            (200, "application/json;charset=UTF-8", text.unwrap_or_default(), None)
        }
        Reply::Admin { status, body } => (status, "application/json", body.to_string(), None),
        Reply::Html { status, body } => (status, "text/html;charset=utf-8", body, None),
        Reply::Redirect(location) => (302, "text/html;charset=utf-8", String::new(), Some(location)),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    response.add_header(header("Content-Type", content_type).expect("static header"));
    response.add_header(header("Cache-Control", "no-store").expect("static header"));
    if let Some(location) = location {
        match header("Location", &location) {
            Some(h) => response.add_header(h),
            None => response = tiny_http::Response::from_string("Invalid redirect_uri").with_status_code(400),
        }
    }
    if date_skew_secs != 0 {
        // A server whose clock is off says so in its `Date` header (tiny_http adds a correct one otherwise).
        let now = SystemTime::now();
        let skewed = if date_skew_secs > 0 {
            now + std::time::Duration::from_secs(date_skew_secs.unsigned_abs())
        } else {
            now - std::time::Duration::from_secs(date_skew_secs.unsigned_abs())
        };
        response.add_header(header("Date", &httpdate::fmt_http_date(skewed)).expect("date header"));
    }
    // The client may have gone away; nothing useful to do about it.
    let _ = request.respond(response);
}

/// What answers one request of a simulator.
pub(super) type Handler = Arc<dyn Fn(&Incoming) -> Reply + Send + Sync>;

/// A tiny_http listener served by a small thread pool; shared by the simulators.
pub(super) struct Listener {
    /// `None` once stopped.
    server: Option<Arc<tiny_http::Server>>,
    /// Where to reach the listener from this host (loopback when bound to an unspecified address).
    pub(super) reach: std::net::SocketAddr,
    /// `https` when a TLS front answers at `reach`, else `http`.
    pub(super) scheme: &'static str,
    tls_front: Option<super::tls::TlsFront>,
    stopping: Arc<AtomicBool>,
    /// Seconds the `Date` header of every answer is off by (a server with a wrong clock).
    date_skew_secs: Arc<std::sync::atomic::AtomicI64>,
    workers: Vec<JoinHandle<()>>,
}

impl Listener {
    /// Binds (e.g. `"127.0.0.1:0"`), then serves with the handler `make` builds for the bound address.
    pub(super) fn start(
        bind: &str,
        name: &str,
        make: impl FnOnce(std::net::SocketAddr) -> Handler,
    ) -> std::io::Result<Listener> {
        Listener::start_with(bind, name, None, make)
    }

    /// As `start`; with `tls`, the simulator listens on loopback only and a TLS front answers at `bind`.
    pub(super) fn start_with(
        bind: &str,
        name: &str,
        tls: Option<&super::tls::TlsFiles>,
        make: impl FnOnce(std::net::SocketAddr) -> Handler,
    ) -> std::io::Result<Listener> {
        let inner_bind = if tls.is_some() { "127.0.0.1:0" } else { bind };
        let server = tiny_http::Server::http(inner_bind).map_err(std::io::Error::other)?;
        let inner = server.server_addr().to_ip().ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let tls_front = match tls {
            Some(files) => Some(super::tls::TlsFront::start_on(bind, inner, files.server_config()?)?),
            None => None,
        };
        let addr = tls_front.as_ref().map_or(inner, |front| front.addr);
        let scheme = if tls_front.is_some() { "https" } else { "http" };
        let reach_ip = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let reach = std::net::SocketAddr::new(reach_ip, addr.port());
        let handler = make(reach);
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let date_skew_secs = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let workers = (0..WORKER_THREADS)
            .map(|i| {
                let (server, handler, stopping) = (server.clone(), handler.clone(), stopping.clone());
                let skew = date_skew_secs.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || serve(&server, &handler, &stopping, &skew))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Listener { server: Some(server), reach, scheme, tls_front, stopping, date_skew_secs, workers })
    }

    /// Makes every later answer's `Date` header `seconds` off (negative: behind).
    pub(super) fn skew_date_header(&self, seconds: i64) {
        self.date_skew_secs.store(seconds, Ordering::SeqCst);
    }

    /// Blocks the calling thread while the listener serves.
    pub(super) fn join(&mut self) {
        for worker in std::mem::take(&mut self.workers) {
            let _ = worker.join();
        }
    }

    pub(super) fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        if let Some(mut front) = self.tls_front.take() {
            front.stop();
        }
        self.stopping.store(true, Ordering::SeqCst);
        // Each unblock wakes exactly one worker blocked in recv().
        for _ in 0..self.workers.len() {
            server.unblock();
        }
        self.join();
        // Dropping the last handle tells tiny_http's accept thread to quit, but it closes the
        // listener on its own schedule; wait (bounded) so "stopped" really means the port is free.
        drop(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline
            && std::net::TcpStream::connect_timeout(&self.reach, std::time::Duration::from_millis(100)).is_ok()
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(
    server: &tiny_http::Server,
    handler: &Handler,
    stopping: &AtomicBool,
    date_skew: &std::sync::atomic::AtomicI64,
) {
    while !stopping.load(Ordering::SeqCst) {
        let Ok(mut request) = server.recv() else {
            continue;
        };
        let incoming = read_incoming(&mut request);
        // Belt and braces: a handler bug answers 500 instead of killing this worker.
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&incoming)))
            .unwrap_or_else(|_| html_page(500, "Server Error", "<h1>Internal simulator error</h1>"));
        respond(request, reply, date_skew.load(Ordering::SeqCst));
    }
}

/// A running portal simulator. Dropping it (or `shutdown`) stops its threads and frees the port.
pub struct PortalSim {
    listener: Listener,
    state: Arc<Mutex<SimState>>,
}

/// What a federated server simulator asks its portal: the portal clock and its server tokens.
#[derive(Clone)]
pub struct FederationLink {
    state: Arc<Mutex<SimState>>,
    portal_url: String,
}

impl FederationLink {
    /// The portal's `{portal}` URL (the server's `owningSystemUrl`).
    pub fn portal_url(&self) -> &str {
        &self.portal_url
    }

    /// Lets the portal mint tokens for this server root (`generateToken` with `serverUrl`).
    pub(super) fn federate(&self, server_root: &str) {
        lock(&self.state).federated_servers.push(server_root.to_string());
    }

    pub(super) fn now(&self) -> u64 {
        lock(&self.state).now()
    }

    /// A token is good at `server_root` only when the portal minted it for that very root.
    pub(super) fn check(&self, token: &str, server_root: &str, req: &Incoming) -> bool {
        let st = lock(&self.state);
        st.access_tokens.get(token).is_some_and(|g| {
            g.expires_at > st.now()
                && g.server.as_deref().is_some_and(|s| same_root(s, server_root))
                && g.binding_allows(req)
        })
    }
}

impl PortalSim {
    /// Binds (e.g. `"127.0.0.1:0"` for a free port) and starts serving on a small thread pool.
    pub fn start(bind: &str, config: PortalConfig) -> std::io::Result<PortalSim> {
        PortalSim::start_with_tls(bind, config, None)
    }

    /// As `start`, over HTTPS with the given certificate when `tls` is set (`sandbox --tls-cert`).
    pub fn start_with_tls(bind: &str, config: PortalConfig, tls: Option<&TlsFiles>) -> std::io::Result<PortalSim> {
        let state = Arc::new(Mutex::new(SimState {
            config,
            clock_offset_secs: 0,
            deny_next_authorize: false,
            token_outage: None,
            counts: BTreeMap::new(),
            pending: HashMap::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            retired_refresh: HashMap::new(),
            access_tokens: HashMap::new(),
            federated_servers: Vec::new(),
            invalid_token_status: 200,
            request_log: Vec::new(),
        }));
        let shared = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = Listener::start_with(bind, "portal-sim", tls, move |reach| {
            let base_url = format!("{scheme}://{reach}/portal");
            Arc::new(move |req: &Incoming| route(&shared, req, &base_url))
        })?;
        Ok(PortalSim { listener, state })
    }

    /// The `{portal}` URL, e.g. `http://127.0.0.1:PORT/portal`.
    pub fn base_url(&self) -> String {
        format!("{}://{}/portal", self.listener.scheme, self.listener.reach)
    }

    /// Root of the admin hooks, e.g. `http://127.0.0.1:PORT/__admin`.
    pub fn admin_url(&self) -> String {
        format!("{}://{}/__admin", self.listener.scheme, self.listener.reach)
    }

    pub fn port(&self) -> u16 {
        self.listener.reach.port()
    }

    /// The handle a federated `ServerSim` needs.
    pub fn federation(&self) -> FederationLink {
        FederationLink { state: self.state.clone(), portal_url: self.base_url() }
    }

    /// Requests seen per endpoint key ("token", "token:refresh_token", "community/self", ...); 0 if never hit.
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or(0)
    }

    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.state).counts.clone()
    }

    pub fn reset_counts(&self) {
        lock(&self.state).counts.clear();
    }

    /// Moves the simulator's clock forward; tokens and codes expire against it.
    pub fn advance_clock(&self, seconds: u64) {
        let mut st = lock(&self.state);
        st.clock_offset_secs = st.clock_offset_secs.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// The simulator's current time, in seconds since the Unix epoch.
    pub fn now(&self) -> u64 {
        lock(&self.state).now()
    }

    /// Sends every later answer with a `Date` header `seconds` off (negative: behind), as a server
    /// whose clock drifted does; tokens are still issued on the simulator's own clock.
    pub fn skew_date_header(&self, seconds: i64) {
        self.listener.skew_date_header(seconds);
    }

    /// Revokes every access and refresh token (codes stay redeemable).
    pub fn revoke_all(&self) {
        lock(&self.state).revoke_all();
    }

    /// Changes the configuration; it applies to what is issued from then on.
    pub fn update_config(&self, change: impl FnOnce(&mut PortalConfig)) {
        change(&mut lock(&self.state).config);
    }

    pub fn set_access_token_lifetime(&self, seconds: u64) {
        self.update_config(|c| c.access_token_lifetime = seconds);
    }

    pub fn set_refresh_token_lifetime(&self, seconds: u64) {
        self.update_config(|c| c.refresh_token_lifetime = seconds);
    }

    pub fn set_auto_approve(&self, auto_approve: bool) {
        self.update_config(|c| c.auto_approve = auto_approve);
    }

    pub fn set_include_refresh_expiry(&self, include: bool) {
        self.update_config(|c| c.include_refresh_expiry = include);
    }

    /// `Some(status)`: the token endpoint answers that HTTP status (an HTML page) until set back to `None`.
    pub fn set_token_outage(&self, status: Option<u16>) {
        lock(&self.state).token_outage = status;
    }

    /// The next authorize request answers `error=access_denied` as if the user clicked Cancel.
    pub fn deny_next_authorize(&self) {
        lock(&self.state).deny_next_authorize = true;
    }

    pub fn live_tokens(&self) -> LiveTokens {
        lock(&self.state).live_tokens()
    }

    pub fn shutdown(self) {
        // Drop does the work.
    }

    /// Blocks the calling thread while the simulator serves (for the `sandbox` command).
    pub fn serve_forever(mut self) {
        self.listener.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC_APP: &str = "age-oauth-sandbox";
    const CONFIDENTIAL_APP: &str = "age-oauth-sandbox-app";
    const APP_SECRET: &str = "sandbox-app-secret";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const VERIFIER_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 appendix B

    struct Http {
        status: u16,
        content_type: String,
        location: Option<String>,
        body: String,
    }

    impl Http {
        fn json(&self) -> Value {
            assert!(
                self.content_type.starts_with("application/json"),
                "not JSON ({}): {}",
                self.content_type,
                self.body
            );
            serde_json::from_str(&self.body).expect("valid JSON body")
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
    }

    fn finish(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Http {
        let mut response = result.expect("HTTP exchange");
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (content_type, location) = (header("content-type").unwrap_or_default(), header("location"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("body");
        Http { status, content_type, location, body }
    }

    fn url(sim: &PortalSim, path: &str, params: &[(&str, &str)]) -> String {
        let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        format!("{}{path}?{query}", sim.base_url())
    }

    fn get(sim: &PortalSim, path: &str, params: &[(&str, &str)]) -> Http {
        finish(agent().get(&url(sim, path, params)).call())
    }

    fn post(sim: &PortalSim, path: &str, form: &[(&str, &str)]) -> Http {
        finish(agent().post(&format!("{}{path}", sim.base_url())).send_form(form.iter().copied()))
    }

    fn start() -> PortalSim {
        PortalSim::start("127.0.0.1:0", PortalConfig::default()).expect("simulator starts")
    }

    fn code_from_approval_page(page: &Http) -> String {
        assert_eq!(page.status, 200);
        let start = page.body.find("<title>SUCCESS code=").expect("approval title") + "<title>SUCCESS code=".len();
        let code = &page.body[start..start + page.body[start..].find('<').expect("title end")];
        assert!(page.body.contains(&format!("<input type=\"text\" id=\"code\" value=\"{code}\"")));
        code.to_string()
    }

    fn authorize_oob(sim: &PortalSim, extra: &[(&str, &str)]) -> String {
        let mut params = vec![("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)];
        params.extend_from_slice(extra);
        code_from_approval_page(&get(sim, "/sharing/rest/oauth2/authorize", &params))
    }

    fn redeem(sim: &PortalSim, code: &str, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![
            ("f", "json"),
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC_APP),
            ("code", code),
            ("redirect_uri", OOB_REDIRECT_URI),
        ];
        form.extend_from_slice(extra);
        post(sim, "/sharing/rest/oauth2/token", &form).json()
    }

    fn login(sim: &PortalSim) -> (String, String) {
        let code = authorize_oob(sim, &[]);
        let tokens = redeem(sim, &code, &[]);
        (
            tokens["access_token"].as_str().expect("access").to_string(),
            tokens["refresh_token"].as_str().expect("refresh").to_string(),
        )
    }

    fn refresh(sim: &PortalSim, grant_type: &str, refresh_token: &str, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![
            ("f", "json"),
            ("grant_type", grant_type),
            ("client_id", PUBLIC_APP),
            ("refresh_token", refresh_token),
        ];
        form.extend_from_slice(extra);
        post(sim, "/sharing/rest/oauth2/token", &form).json()
    }

    fn whoami(sim: &PortalSim, token: &str) -> Value {
        get(sim, "/sharing/rest/community/self", &[("f", "json"), ("token", token)]).json()
    }

    fn error_code(body: &Value) -> i64 {
        body["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {body}"))
    }

    fn query_param(url: &str, separator: char, name: &str) -> Option<String> {
        let (_, query) = url.split_once(separator)?;
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    #[test]
    fn oob_code_flow_end_to_end() {
        let sim = start();
        let code = authorize_oob(&sim, &[("state", "xyz")]);
        let page = get(&sim, "/sharing/oauth2/approval", &[("code", &code)]);
        assert!(
            page.body.contains("OAuth2 Approval")
                && page.body.contains("Please copy this code, switch to your application and paste it there:")
        );
        assert_eq!(code_from_approval_page(&page), code);

        let tokens = redeem(&sim, &code, &[]);
        assert!(tokens["access_token"].as_str().expect("access").len() >= 40);
        assert!(tokens["refresh_token"].as_str().expect("refresh").len() >= 40);
        assert_eq!(tokens["expires_in"], 1800);
        assert_eq!(tokens["refresh_token_expires_in"], 1_209_600);
        assert_eq!(tokens["username"], "demo");
        assert_eq!(tokens["ssl"], false);
        assert!(tokens.get("token_type").is_none());

        let me = whoami(&sim, tokens["access_token"].as_str().expect("access"));
        assert_eq!(me["username"], "demo");
        assert_eq!(me["fullName"], "Demo User");
        assert_eq!(me["email"], "demo@example.test");
        assert_eq!(me["orgId"], "sandboxorg");
        assert_eq!(sim.count("authorize"), 1);
        assert_eq!(sim.count("token"), 1);
        assert_eq!(sim.count("token:authorization_code"), 1);
        assert_eq!(sim.count("community/self"), 1);
        assert_eq!(sim.count("approval"), 1);
    }

    #[test]
    fn pkce_s256_checks_the_verifier() {
        let sim = start();
        let pkce = [("code_challenge", VERIFIER_CHALLENGE), ("code_challenge_method", "S256")];
        let code = authorize_oob(&sim, &pkce);
        let wrong = redeem(&sim, &code, &[("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-x")]);
        assert_eq!(wrong["error"]["code"], 400);
        assert_eq!(wrong["error"]["error"], "invalid_request");
        assert_eq!(wrong["error"]["message"], "Invalid code_verifier");
        // The failed attempt burned the code.
        assert_eq!(
            redeem(&sim, &code, &[("code_verifier", VERIFIER)])["error"]["message"],
            "Invalid authorization code"
        );

        let code = authorize_oob(&sim, &pkce);
        assert_eq!(redeem(&sim, &code, &[])["error"]["message"], "Invalid code_verifier", "missing verifier");
        let code = authorize_oob(&sim, &pkce);
        assert_eq!(redeem(&sim, &code, &[("code_verifier", VERIFIER)])["username"], "demo");

        let code = authorize_oob(&sim, &[("code_challenge", VERIFIER)]);
        assert_eq!(
            redeem(&sim, &code, &[("code_verifier", VERIFIER)])["username"],
            "demo",
            "plain is the default method"
        );
    }

    #[test]
    fn codes_are_single_use_bound_to_redirect_and_expire() {
        let sim = start();
        let code = authorize_oob(&sim, &[]);
        assert!(redeem(&sim, &code, &[])["access_token"].is_string());
        let again = redeem(&sim, &code, &[]);
        assert_eq!(
            again,
            json!({"error": {"code": 400, "error": "invalid_request", "error_description": "Invalid authorization code", "message": "Invalid authorization code", "details": []}})
        );

        let code = authorize_oob(&sim, &[]);
        let mismatch = redeem(&sim, &code, &[("redirect_uri", "http://127.0.0.1:9999/cb")]);
        assert_eq!(mismatch["error"]["message"], "Invalid redirect_uri");

        let code = authorize_oob(&sim, &[]);
        sim.advance_clock(301);
        assert_eq!(redeem(&sim, &code, &[])["error"]["message"], "Invalid authorization code");
        assert_eq!(sim.count("token:authorization_code"), 4);
    }

    #[test]
    fn loopback_redirects_carry_code_and_state() {
        let sim = start();
        let authorize = |redirect_uri: &str, response_type: &str| {
            get(
                &sim,
                "/sharing/rest/oauth2/authorize",
                &[
                    ("client_id", PUBLIC_APP),
                    ("response_type", response_type),
                    ("redirect_uri", redirect_uri),
                    ("state", "s t&1"),
                ],
            )
        };
        let redirect = authorize("http://127.0.0.1:54321/callback", "code");
        assert_eq!(redirect.status, 302);
        let location = redirect.location.expect("Location");
        assert!(location.starts_with("http://127.0.0.1:54321/callback?code="));
        assert_eq!(query_param(&location, '?', "state").as_deref(), Some("s t&1"));
        let code = query_param(&location, '?', "code").expect("code");
        let tokens = redeem(&sim, &code, &[("redirect_uri", "http://127.0.0.1:54321/callback")]);
        assert_eq!(tokens["username"], "demo");

        let implicit = authorize("http://127.0.0.1:8080/", "token").location.expect("Location");
        assert_eq!(query_param(&implicit, '#', "expires_in").as_deref(), Some("1800"));
        assert_eq!(query_param(&implicit, '#', "ssl").as_deref(), Some("false"));
        assert_eq!(query_param(&implicit, '#', "username").as_deref(), Some("demo"));
        let access = query_param(&implicit, '#', "access_token").expect("access token");
        assert_eq!(whoami(&sim, &access)["username"], "demo");

        for bad in [
            "http://127.0.0.1.evil.test/cb",
            "http://localhost:80/cb",
            "https://127.0.0.1/cb",
            "http://127.0.0.1:99999/",
        ] {
            let page = authorize(bad, "code");
            assert_eq!(page.status, 400, "{bad}");
            assert!(page.content_type.starts_with("text/html") && page.body.contains("Invalid redirect_uri"), "{bad}");
        }
        let unknown = get(
            &sim,
            "/sharing/rest/oauth2/authorize",
            &[("client_id", "nope"), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
        );
        assert_eq!(unknown.status, 400);
        assert!(unknown.body.contains("Invalid client_id"));
        let unsupported = authorize("http://127.0.0.1:1/cb", "id_token").location.expect("Location");
        assert_eq!(query_param(&unsupported, '?', "error").as_deref(), Some("unsupported_response_type"));

        sim.deny_next_authorize();
        let denied = authorize("http://127.0.0.1:1/cb", "code").location.expect("Location");
        assert_eq!(query_param(&denied, '?', "error").as_deref(), Some("access_denied"));
        assert_eq!(query_param(&denied, '?', "state").as_deref(), Some("s t&1"));
        assert!(query_param(&denied, '?', "code").is_none());
        assert!(
            authorize("http://127.0.0.1:1/cb", "code").location.expect("Location").contains("code="),
            "deny is one-shot"
        );
    }

    #[test]
    fn sign_in_form_when_not_auto_approving() {
        let sim = start();
        sim.set_auto_approve(false);
        let page = get(
            &sim,
            "/sharing/rest/oauth2/authorize",
            &[("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
        );
        assert!(page.body.contains("<title>Sign In</title>"));
        let start = page.body.find("var oAuthInfo = ").expect("oAuthInfo") + "var oAuthInfo = ".len();
        let info: Value =
            serde_json::Deserializer::from_str(&page.body[start..]).into_iter().next().expect("json").expect("valid");
        let oauth_state = info["oauth_state"].as_str().expect("oauth_state").to_string();
        assert!(page.body.contains("action=\"/portal/sharing/rest/oauth2/signin\""));

        let wrong = post(
            &sim,
            "/sharing/rest/oauth2/signin",
            &[("username", "alice"), ("password", "nope"), ("oauth_state", &oauth_state)],
        );
        assert!(wrong.body.contains("<title>Sign In</title>") && wrong.body.contains("Invalid username or password."));
        assert!(!wrong.body.contains("SUCCESS"));
        let right = post(
            &sim,
            "/sharing/rest/oauth2/signin",
            &[
                ("user_orgkey", ""),
                ("username", "alice"),
                ("password", "alice-password"),
                ("oauth_state", &oauth_state),
            ],
        );
        let code = code_from_approval_page(&right);
        let tokens = redeem(&sim, &code, &[]);
        assert_eq!(tokens["username"], "alice");
        assert_eq!(whoami(&sim, tokens["access_token"].as_str().expect("access"))["fullName"], "Alice Example");
        let reused = post(
            &sim,
            "/sharing/rest/oauth2/signin",
            &[("username", "alice"), ("password", "alice-password"), ("oauth_state", &oauth_state)],
        );
        assert_eq!(reused.status, 400, "oauth_state is single-use");
    }

    #[test]
    fn refresh_grant_returns_only_a_new_access_token() {
        let sim = start();
        let (access, refresh_token) = login(&sim);
        let refreshed = refresh(&sim, "refresh_token", &refresh_token, &[]);
        assert_eq!(refreshed["expires_in"], 1800);
        assert_eq!(refreshed["username"], "demo");
        assert!(refreshed.get("refresh_token").is_none() && refreshed.get("refresh_token_expires_in").is_none());
        let new_access = refreshed["access_token"].as_str().expect("access");
        assert_ne!(new_access, access);
        assert_eq!(whoami(&sim, new_access)["username"], "demo");
        assert_eq!(whoami(&sim, &access)["username"], "demo", "old access token lives out its time");
        assert!(
            refresh(&sim, "refresh_token", &refresh_token, &[])["access_token"].is_string(),
            "refresh token unchanged"
        );

        let other_app = refresh(&sim, "refresh_token", &refresh_token, &[("client_id", CONFIDENTIAL_APP)]);
        assert_eq!(error_code(&other_app), 498);
        let bad_client = refresh(&sim, "refresh_token", &refresh_token, &[("client_id", "nope")]);
        assert_eq!(
            bad_client["error"],
            json!({"code": 400, "error": "invalid_client_id", "error_description": "Invalid client_id", "message": "Invalid client_id", "details": []})
        );
        assert_eq!(sim.count("token:refresh_token"), 4);
    }

    #[test]
    fn exchange_rotates_the_refresh_token() {
        let sim = start();
        let (_, old_refresh) = login(&sim);
        let missing = refresh(&sim, "exchange_refresh_token", &old_refresh, &[]);
        assert_eq!(
            missing,
            json!({"error": {"code": 400, "error": "invalid_request", "error_description": "redirect_uri not specified", "message": "redirect_uri not specified", "details": []}})
        );

        let exchanged = refresh(&sim, "exchange_refresh_token", &old_refresh, &[("redirect_uri", OOB_REDIRECT_URI)]);
        let new_refresh = exchanged["refresh_token"].as_str().expect("new refresh token");
        assert_ne!(new_refresh, old_refresh);
        assert_eq!(exchanged["refresh_token_expires_in"], 1_209_600);
        assert_eq!(exchanged["expires_in"], 1800);
        let stale = refresh(&sim, "refresh_token", &old_refresh, &[]);
        assert_eq!(
            stale,
            json!({"error": {"code": 498, "error": "invalid_request", "error_description": "refresh_token expired", "message": "refresh_token expired", "details": []}})
        );
        assert!(refresh(&sim, "refresh_token", new_refresh, &[])["access_token"].is_string());
        assert_eq!(sim.count("token:exchange_refresh_token"), 2);
    }

    #[test]
    fn client_credentials_needs_the_right_secret() {
        let sim = start();
        let grant = |secret: Option<&str>, client_id: &str, extra: &[(&str, &str)]| {
            let mut form = vec![("f", "json"), ("grant_type", "client_credentials"), ("client_id", client_id)];
            form.extend(secret.map(|s| ("client_secret", s)));
            form.extend_from_slice(extra);
            post(&sim, "/sharing/rest/oauth2/token", &form).json()
        };
        let ok = grant(Some(APP_SECRET), CONFIDENTIAL_APP, &[]);
        assert_eq!(ok["expires_in"], 7200 * 60);
        assert_eq!(ok.as_object().expect("object").len(), 2, "only access_token and expires_in: {ok}");
        let app_token = ok["access_token"].as_str().expect("access");
        assert_eq!(grant(Some(APP_SECRET), CONFIDENTIAL_APP, &[("expiration", "60")])["expires_in"], 3600);

        let wrong = grant(Some("guess"), CONFIDENTIAL_APP, &[]);
        assert_eq!(
            wrong["error"],
            json!({"code": 400, "error": "invalid_request", "error_description": "Invalid client_secret", "message": "Invalid client_secret", "details": []})
        );
        assert_eq!(grant(None, CONFIDENTIAL_APP, &[])["error"]["code"], 400);
        assert_eq!(grant(Some("x"), PUBLIC_APP, &[])["error"]["message"], "Invalid client_secret");

        let me = whoami(&sim, app_token);
        assert_eq!(me["error"]["code"], 403);
        assert_eq!(
            me["error"]["message"],
            "You do not have permissions to access this resource or perform this operation."
        );
        let portal = get(&sim, "/sharing/rest/portals/self", &[("f", "json"), ("token", app_token)]).json();
        assert_eq!(portal["appInfo"]["appId"], CONFIDENTIAL_APP);
        assert_eq!(portal["appInfo"]["appTitle"], "Sandbox App");
        assert_eq!(portal["appInfo"]["appOwner"], "demo");
        assert_eq!(portal["appInfo"]["itemId"].as_str().map(str::len), Some(32));
        assert!(portal.get("user").is_none());
        assert_eq!(sim.count("token:client_credentials"), 5);
    }

    #[test]
    fn revoke_kills_the_refresh_token_and_its_access_tokens() {
        let sim = start();
        let (access, refresh_token) = login(&sim);
        let revoke = |token: &str, client_id: &str| {
            post(
                &sim,
                "/sharing/rest/oauth2/revokeToken",
                &[("f", "json"), ("auth_token", token), ("token_type_hint", "refresh_token"), ("client_id", client_id)],
            )
            .json()
        };
        assert_eq!(revoke(&refresh_token, CONFIDENTIAL_APP), json!({"success": true}));
        assert_eq!(whoami(&sim, &access)["username"], "demo", "only the issuing app may revoke");
        assert_eq!(revoke(&refresh_token, PUBLIC_APP), json!({"success": true}));
        assert_eq!(whoami(&sim, &access)["error"]["code"], 498);
        assert_eq!(error_code(&refresh(&sim, "refresh_token", &refresh_token, &[])), 498);
        assert_eq!(revoke("no-such-token", PUBLIC_APP), json!({"success": true}));
        assert_eq!(sim.count("revokeToken"), 3);
        assert_eq!(sim.live_tokens(), LiveTokens { access_tokens: 0, refresh_tokens: 0, codes: 0 });
    }

    #[test]
    fn token_errors_have_the_arcgis_shapes() {
        let sim = start();
        let (access, _) = login(&sim);
        let missing = get(&sim, "/sharing/rest/community/self", &[("f", "json")]);
        assert_eq!(missing.status, 200);
        assert_eq!(
            missing.json(),
            json!({"error": {"code": 499, "message": "Token Required", "messageCode": "GWM_0003", "details": ["Token Required"]}})
        );
        let bogus = get(&sim, "/sharing/rest/community/self", &[("f", "json"), ("token", "bogus")]);
        assert_eq!(bogus.status, 200);
        assert_eq!(bogus.json(), json!({"error": {"code": 498, "message": "Invalid token.", "details": []}}));

        for header in ["Authorization", "X-Esri-Authorization"] {
            let with_header = agent()
                .get(&url(&sim, "/sharing/rest/community/self", &[("f", "json")]))
                .header(header, &format!("Bearer {access}"))
                .call();
            assert_eq!(finish(with_header).json()["username"], "demo", "{header}");
        }
        let user_portal = get(&sim, "/sharing/rest/portals/self", &[("f", "json"), ("token", &access)]).json();
        assert_eq!(user_portal["user"]["username"], "demo");
        assert_eq!(user_portal["isPortal"], true);
        assert_eq!(user_portal["maxTokenExpirationMinutes"], -1);
        assert_eq!(user_portal["appInfo"]["appId"], PUBLIC_APP);
        let anonymous = get(&sim, "/sharing/rest/portals/self", &[("f", "json")]).json();
        assert_eq!(anonymous["id"], "sandboxorg");
        assert!(anonymous.get("user").is_none());
        assert_eq!(
            error_code(&get(&sim, "/sharing/rest/portals/self", &[("f", "json"), ("token", "bogus")]).json()),
            498
        );
    }

    #[test]
    fn the_clock_expires_access_then_refresh_tokens() {
        let sim = start();
        let code = authorize_oob(&sim, &[("expiration", "60")]);
        let tokens = redeem(&sim, &code, &[]);
        assert_eq!(tokens["refresh_token_expires_in"], 3600);
        let (access, refresh_token) =
            (tokens["access_token"].as_str().expect("a"), tokens["refresh_token"].as_str().expect("r"));
        sim.advance_clock(1799);
        assert_eq!(whoami(&sim, access)["username"], "demo");
        sim.advance_clock(2);
        assert_eq!(error_code(&whoami(&sim, access)), 498);
        assert!(refresh(&sim, "refresh_token", refresh_token, &[])["access_token"].is_string());
        sim.advance_clock(1800);
        assert_eq!(error_code(&refresh(&sim, "refresh_token", refresh_token, &[])), 498);

        let code = authorize_oob(&sim, &[("expiration", "-1")]);
        assert_eq!(redeem(&sim, &code, &[])["refresh_token_expires_in"], 129_600 * 60);
        let code = authorize_oob(&sim, &[("expiration", "999999")]);
        assert_eq!(redeem(&sim, &code, &[])["refresh_token_expires_in"], 129_600 * 60);
    }

    #[test]
    fn json_endpoints_answer_html_without_f_json() {
        let sim = start();
        let (access, _) = login(&sim);
        let html = post(
            &sim,
            "/sharing/rest/oauth2/token",
            &[("grant_type", "client_credentials"), ("client_id", CONFIDENTIAL_APP), ("client_secret", APP_SECRET)],
        );
        assert_eq!(html.status, 200);
        assert!(html.content_type.starts_with("text/html") && !html.body.contains("access_token"));
        let html = get(&sim, "/sharing/rest/community/self", &[("token", &access)]);
        assert!(html.content_type.starts_with("text/html") && !html.body.contains("\"username\""));
        let pretty = get(&sim, "/sharing/rest/community/self", &[("f", "pjson"), ("token", &access)]);
        assert!(pretty.body.contains("\n  \"username\": \"demo\""));
        let missing = get(&sim, "/sharing/rest/nothing/here", &[("f", "json")]);
        assert_eq!(missing.status, 404);
        assert!(missing.content_type.starts_with("text/html"));
        assert_eq!(sim.count("token"), 2);
    }

    #[test]
    fn info_and_generate_token() {
        let sim = start();
        let info = post(&sim, "/sharing/rest/info", &[("f", "json")]).json();
        assert_eq!(info["owningSystemUrl"], sim.base_url());
        assert_eq!(info["authInfo"]["tokenServicesUrl"], format!("{}/sharing/rest/generateToken", sim.base_url()));
        assert_eq!(info["authInfo"]["isTokenBasedSecurity"], true);
        assert_eq!(get(&sim, "/sharing/rest/info", &[("f", "json")]).json()["owningSystemUrl"], sim.base_url());

        let generated = post(
            &sim,
            "/sharing/rest/generateToken",
            &[("f", "json"), ("username", "demo"), ("password", "demo-password"), ("expiration", "10")],
        )
        .json();
        assert_eq!(generated["expires"], (sim.now() + 600) * 1000);
        assert_eq!(whoami(&sim, generated["token"].as_str().expect("token"))["username"], "demo");
        let bad =
            post(&sim, "/sharing/rest/generateToken", &[("f", "json"), ("username", "demo"), ("password", "x")]).json();
        assert_eq!(
            bad,
            json!({"error": {"code": 400, "message": "Unable to generate token.", "details": ["Invalid username or password."]}})
        );
        assert_eq!(sim.count("info"), 2);
        assert_eq!(sim.count("generateToken"), 2);
    }

    #[test]
    fn request_log_and_status_hooks_for_client_tests() {
        let sim = start();
        let admin_post = |action: &str, body: &str| {
            finish(
                agent()
                    .post(&format!("{}/{action}", sim.admin_url()))
                    .header("Content-Type", "application/json")
                    .send(body),
            )
        };
        let admin_get = |action: &str| finish(agent().get(&format!("{}/{action}", sim.admin_url())).call());
        let (access, _refresh) = login(&sim);
        assert_eq!(whoami(&sim, &access)["username"], "demo");
        get(&sim, "/sharing/rest/portals/self", &[("f", "json")]);
        admin_post("advance_clock", r#"{"seconds": 1801}"#);
        assert_eq!(error_code(&whoami(&sim, &access)), 498);
        let log = admin_get("requests").json();
        let auth_of = |path: &str| -> Vec<String> {
            log.as_array()
                .unwrap()
                .iter()
                .filter(|e| e["path"] == path)
                .map(|e| e["auth"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(auth_of("/portal/sharing/rest/community/self"), ["valid", "invalid"]);
        assert_eq!(auth_of("/portal/sharing/rest/portals/self"), ["none"]);
        assert!(!log.to_string().contains(&access), "the log holds no token");

        // An "Invalid token" can also come as HTTP 401 or 498; other answers keep HTTP 200.
        assert_eq!(admin_post("config", r#"{"invalid_token_status": 401}"#).json()["invalid_token_status"], 401);
        let rejected = finish(
            agent().get(&url(&sim, "/sharing/rest/community/self", &[("f", "json"), ("token", &access)])).call(),
        );
        assert_eq!((rejected.status, rejected.json()["error"]["code"].as_i64()), (401, Some(498)));
        assert_eq!(get(&sim, "/sharing/rest/portals/self", &[("f", "json")]).status, 200);
        assert_eq!(admin_post("config", r#"{"invalid_token_status": 302}"#).status, 400);

        let teapot =
            finish(agent().get(&format!("{}/__test/status/403", sim.admin_url().trim_end_matches("/__admin"))).call());
        assert_eq!((teapot.status, teapot.json()["error"]["code"].as_i64()), (403, Some(403)));
        assert_eq!(admin_get("counts").json()["test/status:403"], 1);
        admin_post("reset_counts", "");
        assert_eq!(admin_get("requests").json(), json!([]));
    }

    #[test]
    fn admin_endpoints_drive_the_simulator() {
        let sim = start();
        let admin_post = |action: &str, body: &str| {
            finish(
                agent()
                    .post(&format!("{}/{action}", sim.admin_url()))
                    .header("Content-Type", "application/json")
                    .send(body),
            )
        };
        let admin_get = |action: &str| finish(agent().get(&format!("{}/{action}", sim.admin_url())).call());

        let config = admin_post("config", r#"{"access_token_lifetime": 60, "include_refresh_expiry": false}"#).json();
        assert_eq!(config["access_token_lifetime"], 60);
        let (access, refresh_token) = login(&sim);
        let code = authorize_oob(&sim, &[]);
        let tokens = redeem(&sim, &code, &[]);
        assert_eq!(tokens["expires_in"], 60);
        assert!(tokens.get("refresh_token_expires_in").is_none(), "pre-10.9.1 portal");
        assert_eq!(
            admin_post("config", r#"{"access_token_lifetime": 5, "refresh_token_lifetime": "soon"}"#).status,
            400
        );
        assert_eq!(admin_get("config").json()["access_token_lifetime"], 60, "a rejected update changes nothing");

        let state = admin_get("state").json();
        assert_eq!((state["live_access_tokens"].as_u64(), state["live_refresh_tokens"].as_u64()), (Some(2), Some(2)));
        assert!(!state.to_string().contains(&access), "no token values");
        assert_eq!(admin_post("advance_clock", r#"{"seconds": 61}"#).json()["clock_offset_seconds"], 61);
        assert_eq!(error_code(&whoami(&sim, &access)), 498);
        assert_eq!(admin_get("state").json()["live_access_tokens"], 0);

        assert_eq!(admin_post("revoke_all", "").json()["revoked_refresh_tokens"], 2);
        assert_eq!(error_code(&refresh(&sim, "refresh_token", &refresh_token, &[])), 498);

        let counts = admin_get("counts").json();
        assert_eq!(counts["token:authorization_code"], 2);
        assert_eq!(counts["token:refresh_token"], 1);
        assert_eq!(counts["authorize"], 2);
        admin_post("reset_counts", "");
        assert_eq!(admin_get("counts").json(), json!({}));

        admin_post("config", r#"{"deny_next_authorize": true}"#);
        let denied = get(
            &sim,
            "/sharing/rest/oauth2/authorize",
            &[("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
        );
        assert!(denied.body.contains("access_denied") && !denied.body.contains("SUCCESS"));
        assert_eq!(admin_get("nope").status, 404);
        assert_eq!(admin_post("advance_clock", "{oops").status, 400);
    }

    #[test]
    fn bad_input_never_kills_the_server() {
        let sim = start();
        let raw = [
            "/sharing/rest/oauth2/token?f=json&grant_type=%FF%FE&client_id=%",
            "/sharing/rest/oauth2/authorize?client_id=age-oauth-sandbox&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2F%0D%0ASet-Cookie%3Ax",
            "/sharing/rest/community/self?f=json&token=%00",
        ];
        for path in raw {
            let response = finish(agent().get(&format!("{}{path}", sim.base_url())).call());
            assert!(response.status == 200 || response.status == 400, "{path}: {}", response.status);
            assert!(response.location.is_none());
        }
        let garbage = finish(
            agent()
                .post(&format!("{}/sharing/rest/oauth2/token", sim.base_url()))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(&[0xffu8, 0x00, b'&', b'='][..]),
        );
        assert_eq!(garbage.status, 200);
        let bearer = finish(
            agent()
                .get(&url(&sim, "/sharing/rest/community/self", &[("f", "json")]))
                .header("Authorization", "Bearer")
                .call(),
        );
        assert_eq!(error_code(&bearer.json()), 499);
        assert_eq!(get(&sim, "/sharing/rest/info", &[("f", "json")]).status, 200, "still serving");
    }

    #[test]
    fn shutdown_frees_the_port() {
        let sim = start();
        let port = sim.port();
        assert_eq!(get(&sim, "/sharing/rest/info", &[("f", "json")]).status, 200);
        sim.shutdown();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        let again =
            PortalSim::start(&format!("127.0.0.1:{port}"), PortalConfig::default()).expect("port is free again");
        assert_eq!(again.port(), port);
        let any = PortalSim::start("0.0.0.0:0", PortalConfig::default()).expect("wildcard bind");
        assert_eq!(any.base_url(), format!("http://127.0.0.1:{}/portal", any.port()));
        assert_eq!(get(&any, "/sharing/rest/info", &[("f", "json")]).json()["owningSystemUrl"], any.base_url());
    }
}
