//! Local simulator of the ArcGIS Portal OAuth 2.0 REST API (`{portal}/sharing/rest/oauth2/*` and friends).
//! Follows the published wire protocol including its quirks: errors are HTTP 200 + `{"error":{..}}`, and f=html is the default.
//! This file holds the configuration, the state and the routing; `oauth` the OAuth 2.0 endpoints, `rest` the
//! REST resources and generateToken, `admin` the `/__admin` and `/__test` hooks.

mod admin;
mod oauth;
mod rest;
mod saml;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::arcgis::{random_token, resolve_minutes, same_root};
use super::http::{html_page, Incoming, Listener, Reply};
use super::tls::TlsFiles;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
pub use saml::PortalSamlIdp;
use serde_json::Value;
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

/// A built-in account of a simulated portal or standalone server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimUser {
    /// The sign-in name (Sign In form, generateToken, `community/users/NAME`).
    pub username: String,
    /// Checked by the Sign In form and generateToken.
    pub password: String,
    /// `fullName` in user descriptions (split at the first space into first and last name).
    pub full_name: String,
    /// `email` in user descriptions.
    pub email: String,
}

/// An OAuth application registered with the simulated portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimApp {
    /// The App ID that authorize and token requests name.
    pub client_id: String,
    /// `None` = public (native/PKCE) app; `Some` = confidential app that may use client_credentials.
    pub client_secret: Option<String>,
    /// Redirect URIs authorize accepts: exact matches, or `http://127.0.0.1` for any loopback port and path.
    pub redirect_uris: Vec<String>,
    /// The app's title, shown on the Sign In form and as `appTitle`.
    pub name: String,
}

/// How a `PortalSim` behaves: token lifetimes, approval, refresh rotation, its users and apps.
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
    /// The user that auto-approved grants belong to (need not be one of `users`).
    pub approve_as: String,
    /// `false` mimics a pre-10.9.1 Enterprise portal that omits `refresh_token_expires_in`.
    pub include_refresh_expiry: bool,
    /// Rotate on every `refresh_token` grant too (the old one retires), and treat a retired
    /// refresh token presented again as theft: revoke its whole grant (RFC 9700 §4.14.2).
    pub rotate_on_refresh: bool,
    /// Accounts that can sign in with a password (Sign In form, generateToken).
    pub users: Vec<SimUser>,
    /// Registered OAuth applications; requests naming any other client ID are refused.
    pub apps: Vec<SimApp>,
    /// The organisation's SAML IdP: authorize then always shows the sign-in page (with `idpName`),
    /// whose `oauth_state` starts `oauth2/saml/authorize`.
    pub saml: Option<PortalSamlIdp>,
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
            saml: None,
        }
    }
}

/// Counts of tokens that are neither expired nor revoked at the simulator's current time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveTokens {
    /// Access tokens still accepted.
    pub access_tokens: usize,
    /// Refresh tokens still redeemable.
    pub refresh_tokens: usize,
    /// Authorization codes issued and not yet redeemed or expired.
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
    /// Outstanding SAML AuthnRequest IDs → (oauth_state, expiry).
    saml_requests: HashMap<String, (String, u64)>,
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

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    // A panicking handler must not wedge every later request.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AccessGrant {
    /// `client=referer` tokens need the same `Referer`; `requestip` / `ip` ones the same caller address.
    pub(super) fn binding_allows(&self, req: &Incoming) -> bool {
        let referer_ok = self.referer.as_deref().is_none_or(|r| req.referer.as_deref() == Some(r));
        let ip_ok = self.ip.as_deref().is_none_or(|ip| req.remote_ip.as_deref() == Some(ip));
        referer_ok && ip_ok
    }
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

fn route(state: &Mutex<SimState>, req: &Incoming, base_url: &str) -> Reply {
    let mut st = lock(state);
    let st = &mut *st;
    if req.path.starts_with("/__admin/") {
        return admin::admin(st, req);
    }
    admin::log_request(st, req);
    if let Some(code) = req.path.strip_prefix("/__test/status/") {
        return admin::test_status(st, code);
    }
    let reply = dispatch(st, req, base_url);
    match reply {
        Reply::Json { body, .. } if st.invalid_token_status != 200 && body["error"]["code"] == 498 => {
            Reply::JsonStatus { status: st.invalid_token_status, body }
        }
        other => other,
    }
}

fn dispatch(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    if let Some(name) = req.path.strip_prefix("/portal/sharing/rest/community/users/") {
        let name = name.trim_end_matches('/');
        if !name.is_empty() && !name.contains('/') {
            return rest::community_user(st, req, name);
        }
    }
    match req.path.trim_end_matches('/') {
        "/portal/sharing/rest/oauth2/authorize" => oauth::authorize(st, req),
        "/portal/sharing/rest/oauth2/signin" => oauth::sign_in(st, req),
        "/portal/sharing/oauth2/approval" => oauth::approval(st, req),
        "/portal/sharing/rest/oauth2/saml/authorize" => saml::authorize(st, req, base_url),
        "/portal/sharing/rest/oauth2/saml/signin" => saml::sign_in(st, req, base_url),
        "/portal/sharing/rest/oauth2/token" if st.token_outage.is_some() => {
            st.bump("token:outage");
            let status = st.token_outage.unwrap_or(503);
            html_page(status, "Service Unavailable", "<h1>Service Unavailable</h1>")
        }
        "/portal/sharing/rest/oauth2/token" => oauth::token(st, req),
        "/portal/sharing/rest/oauth2/revokeToken" => oauth::revoke_token(st, req),
        "/portal/sharing/rest/oauth2/signout" => oauth::sign_out(st, req),
        "/portal/sharing/rest/community/self" => rest::community_self(st, req),
        "/portal/sharing/rest/portals/self" => rest::portals_self(st, req, base_url),
        "/portal/sharing/rest/info" => rest::info(st, req, base_url),
        "/portal/sharing/rest/generateToken" => rest::generate_token(st, req),
        _ => {
            st.bump("not_found");
            html_page(404, "404 Not Found", "<h1>Not Found</h1>\n<p>The requested resource does not exist.</p>")
        }
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
            saml_requests: HashMap::new(),
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

    /// The portal as a SAML SP: its entity ID and its assertion consumer service URL.
    pub fn saml_sp(&self) -> (String, String) {
        let base = self.base_url();
        (saml::entity_id(&base), saml::acs_url(&base))
    }

    /// The TCP port it listens on (useful after binding port 0).
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

    /// Every endpoint key's request count so far (see `count`).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.state).counts.clone()
    }

    /// Forgets the request counts, so that a test can count one step alone.
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

    /// Seconds that user access tokens issued from now on live.
    pub fn set_access_token_lifetime(&self, seconds: u64) {
        self.update_config(|c| c.access_token_lifetime = seconds);
    }

    /// Seconds that refresh tokens issued from now on live (unless the authorize `expiration` says otherwise).
    pub fn set_refresh_token_lifetime(&self, seconds: u64) {
        self.update_config(|c| c.refresh_token_lifetime = seconds);
    }

    /// `true`: authorize approves at once as `approve_as`; `false`: it shows the Sign In form.
    pub fn set_auto_approve(&self, auto_approve: bool) {
        self.update_config(|c| c.auto_approve = auto_approve);
    }

    /// `false`: token answers omit `refresh_token_expires_in`, as pre-10.9.1 portals do.
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

    /// How many tokens and codes are live now (e.g. to show that logout revoked them).
    pub fn live_tokens(&self) -> LiveTokens {
        lock(&self.state).live_tokens()
    }

    /// Stops serving and frees the port (the same as dropping it, said explicitly).
    pub fn shutdown(self) {
        // Drop does the work.
    }

    /// Blocks the calling thread while the simulator serves (for the `sandbox` command).
    pub fn serve_forever(mut self) {
        self.listener.join();
    }
}
