//! An Anaconda-style API-key service: OpenID Connect discovery whose issuer names another host of the
//! same site than its endpoints (`localhost` vs `127.0.0.1`, as `auth.anaconda.com` vs `anaconda.com`),
//! device and browser login (the OIDC simulator's core, under Anaconda's paths), the key mint
//! (`201` + a JWT with `exp`), key delete, and `/api/account` answering Anaconda's JSON 401/403.

use super::http::{Incoming, Listener, Reply};
use super::oidc::{Core, OidcFaults, OidcSimConfig};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The first mint path (Anaconda's current one) and the fallback (its older one).
pub const MINT_PATHS: [&str; 2] = ["/api/auth/api-keys", "/api/iam/api-keys"];

/// What the service gets wrong or refuses on purpose; change it with `AnacondaSim::faults`.
#[derive(Debug, Clone, Default)]
pub struct AnacondaFaults {
    /// The first mint path answers 404 (the client must try the next one).
    pub first_mint_path_404: bool,
    /// Every mint path answers this status (`401`, `500`) instead of minting.
    pub mint_status: Option<u16>,
    /// `/api/account` answers 401 `auth_required` to this many requests with a valid key first.
    pub reject_next: u32,
    /// `/api/account` answers 403 to every request with a valid key.
    pub forbid_account: bool,
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct AnacondaSimConfig {
    /// The OIDC side: client id (Anaconda's public client by default) and the user.
    pub oidc: OidcSimConfig,
    /// Lifetime of minted keys, in seconds; negative mints keys that have already expired.
    pub key_lifetime: i64,
}

impl Default for AnacondaSimConfig {
    fn default() -> Self {
        AnacondaSimConfig {
            oidc: OidcSimConfig {
                client_id: "b4ad7f1d-c784-46b5-a9fe-106e50441f5a".into(),
                refresh_needs_offline_access: true,
                ..OidcSimConfig::default()
            },
            key_lifetime: 365 * 86_400,
        }
    }
}

/// One request as it reached the service (for tests checking headers); key values are not kept.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// `GET`, `POST`, `DELETE`.
    pub method: String,
    /// The path.
    pub path: String,
    /// Every header but `Authorization` (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, for JSON posts (the mint's scopes and tags).
    pub body: String,
}

impl SeenRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct Key {
    token: String,
    expires_at: i64,
    revoked: bool,
}

struct State {
    config: AnacondaSimConfig,
    faults: AnacondaFaults,
    clock_offset: i64,
    keys: HashMap<String, Key>,
    counts: BTreeMap<String, u64>,
    seen: Vec<SeenRequest>,
    secret: [u8; 32],
}

impl State {
    fn now(&self) -> i64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        i64::try_from(wall).unwrap_or(i64::MAX).saturating_add(self.clock_offset)
    }
    fn bump(&mut self, key: &str) {
        *self.counts.entry(key.to_string()).or_default() += 1;
    }
    /// A key JWT (HS256 with the service's own secret: clients never verify it, as anaconda-auth doesn't).
    fn sign(&self, claims: &Value) -> String {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let input = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    }
    fn issue(&mut self, user: &str, lifetime: i64, scopes: &Value, tags: &Value) -> (String, String, i64) {
        let mut id = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let now = self.now();
        let expires_at = now.saturating_add(lifetime);
        let claims = json!({"sub": user, "username": user, "ver": "api:1", "jti": id, "iat": now,
                            "exp": expires_at, "scopes": scopes, "tags": tags});
        let token = self.sign(&claims);
        self.keys.insert(id.clone(), Key { token: token.clone(), expires_at, revoked: false });
        (id, token, expires_at)
    }
    fn live_key(&self, token: &str) -> bool {
        let now = self.now();
        self.keys.values().any(|k| k.token == token && !k.revoked && k.expires_at > now)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running Anaconda-style service on 127.0.0.1; dropping it stops it.
pub struct AnacondaSim {
    _listener: Listener,
    state: Arc<Mutex<State>>,
    core: Core,
    port: u16,
}

impl AnacondaSim {
    /// Serves on an ephemeral 127.0.0.1 port until dropped.
    pub fn start(config: AnacondaSimConfig) -> std::io::Result<AnacondaSim> {
        let core = Core::new(config.oidc.clone());
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let state = Arc::new(Mutex::new(State {
            config,
            faults: AnacondaFaults::default(),
            clock_offset: 0,
            keys: HashMap::new(),
            counts: BTreeMap::new(),
            seen: Vec::new(),
            secret,
        }));
        let (shared, oidc) = (state.clone(), core.clone());
        let listener = Listener::start("127.0.0.1:0", "anaconda-sim", move |reach| {
            let port = reach.port();
            Arc::new(move |req: &Incoming| route(&shared, &oidc, port, req))
        })?;
        let port = listener.reach.port();
        Ok(AnacondaSim { _listener: listener, state, core, port })
    }

    /// The site's endpoints' root, `http://127.0.0.1:PORT` (anaconda.com's role).
    pub fn site(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// The issuer the discovery document names, on the other host name: `http://localhost:PORT/api/auth`
    /// (auth.anaconda.com's role).
    pub fn issuer(&self) -> String {
        issuer(self.port)
    }
    /// Where the discovery document is served (the site's root, as anaconda.com's is).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.site())
    }
    /// The mint URLs, in the order anaconda-auth tries them.
    pub fn mint_urls(&self) -> Vec<String> {
        MINT_PATHS.iter().map(|p| format!("{}{p}", self.site())).collect()
    }
    /// The protected account endpoint.
    pub fn account_url(&self) -> String {
        format!("{}/api/account", self.site())
    }
    /// The public client id the service accepts.
    pub fn client_id(&self) -> String {
        lock(&self.state).config.oidc.client_id.clone()
    }
    /// Changes the service's faults.
    pub fn faults(&self, change: impl FnOnce(&mut AnacondaFaults)) {
        change(&mut lock(&self.state).faults);
    }
    /// Changes the OIDC side's faults (device polls, denials).
    pub fn oidc_faults(&self, change: impl FnOnce(&mut OidcFaults)) {
        self.core.faults(change);
    }
    /// Changes the lifetime of keys minted from now on (negative: already expired).
    pub fn set_key_lifetime(&self, seconds: i64) {
        lock(&self.state).config.key_lifetime = seconds;
    }
    /// How often `key` happened: `mint:/api/auth/api-keys`, `mint:/api/iam/api-keys`, `minted`,
    /// `delete`, `account:200|401|403`, and the OIDC side's (`token:device_code`, `authorize`...).
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or_else(|| self.core.count(key))
    }
    /// The requests that reached `path`, oldest first (without their `Authorization` header).
    pub fn seen(&self, path: &str) -> Vec<SeenRequest> {
        lock(&self.state).seen.iter().filter(|r| r.path == path).cloned().collect()
    }
    /// Mints a key directly (what a user would paste for `login --with-key`), living `lifetime` seconds.
    pub fn issue_key(&self, lifetime: i64) -> String {
        let user = self.core.user();
        lock(&self.state).issue(&user, lifetime, &json!(["cloud:read"]), &json!(["sandbox"])).1
    }
    /// True while `token` is a key the service minted, neither deleted nor expired.
    pub fn key_is_live(&self, token: &str) -> bool {
        lock(&self.state).live_key(token)
    }
    /// The OpenID Connect access tokens the login side gave out and did not revoke (for tests: the
    /// token a key is minted with must be in no log line and no plaintext file).
    pub fn live_access_tokens(&self) -> Vec<String> {
        self.core.live_access_tokens()
    }
    /// Moves the service's clock (keys expire by it).
    pub fn advance_clock(&self, seconds: i64) {
        lock(&self.state).clock_offset += seconds;
    }
}

fn issuer(port: u16) -> String {
    format!("http://localhost:{port}/api/auth")
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::JsonStatus { status, body }
}

/// Anaconda's "auth required" answer (HTTP 401 or 403).
fn auth_required(status: u16, message: &str) -> Reply {
    json_reply(status, json!({"error": {"code": "auth_required", "message": message}}))
}

fn route(state: &Mutex<State>, core: &Core, port: u16, req: &Incoming) -> Reply {
    let issuer = issuer(port);
    let site = format!("http://127.0.0.1:{port}");
    lock(state).seen.push(SeenRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("authorization")).cloned().collect(),
        body: req.body.clone(),
    });
    let oauth = |path: &str| core.route(&issuer, path, req);
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/openid-configuration" | "/api/auth/.well-known/openid-configuration") => json_reply(
            200,
            json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{site}/api/auth/oauth2/authorize"),
                "token_endpoint": format!("{site}/api/auth/oauth2/token"),
                "device_authorization_endpoint": format!("{site}/api/auth/oauth2/device/authorize"),
                "userinfo_endpoint": format!("{site}/api/auth/oauth2/userinfo"),
                "jwks_uri": format!("{site}/api/auth/.well-known/jwks.json"),
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code", "refresh_token",
                                          "urn:ietf:params:oauth:grant-type:device_code"],
            }),
        ),
        ("GET", "/api/auth/.well-known/jwks.json") => oauth("/jwks"),
        ("GET", "/api/auth/oauth2/authorize") => oauth("/authorize"),
        ("POST", "/api/auth/oauth2/token") => oauth("/token"),
        ("POST", "/api/auth/oauth2/device/authorize") => oauth("/device_authorization"),
        ("GET", "/api/auth/oauth2/userinfo") => oauth("/userinfo"),
        ("POST", path) if MINT_PATHS.contains(&path) => mint(&mut lock(state), core, path, req),
        ("DELETE", path) if MINT_PATHS.iter().any(|m| path.starts_with(&format!("{m}/"))) => {
            delete(&mut lock(state), core, path, req)
        }
        ("GET", "/api/account") => account(&mut lock(state), core, req),
        _ => json_reply(404, json!({"error": {"code": "not_found", "message": "no such endpoint"}})),
    }
}

fn mint(st: &mut State, core: &Core, path: &str, req: &Incoming) -> Reply {
    st.bump(&format!("mint:{path}"));
    if path == MINT_PATHS[0] && st.faults.first_mint_path_404 {
        return json_reply(404, json!({"detail": "Not Found"}));
    }
    if let Some(status) = st.faults.mint_status {
        return auth_required(status, "the service refuses to mint keys just now");
    }
    if !req.bearer.as_deref().is_some_and(|t| core.access_token_is_live(t)) {
        return auth_required(401, "Login is required");
    }
    let Ok(body) = serde_json::from_str::<Value>(&req.body) else {
        return json_reply(422, json!({"detail": "the body must be JSON"}));
    };
    let (scopes, tags) =
        (body.get("scopes").cloned().unwrap_or(json!([])), body.get("tags").cloned().unwrap_or(json!([])));
    let lifetime = st.config.key_lifetime;
    let (id, token, expires_at) = st.issue(&core.user(), lifetime, &scopes, &tags);
    st.bump("minted");
    json_reply(201, json!({"id": id, "api_key": token, "expires_at": expires_at, "scopes": scopes, "tags": tags}))
}

fn delete(st: &mut State, core: &Core, path: &str, req: &Incoming) -> Reply {
    st.bump("delete");
    let id = path.rsplit('/').next().unwrap_or_default().to_string();
    let bearer = req.bearer.as_deref().unwrap_or_default();
    // The key itself (or a login's access token) may delete it; an expired key may still be deleted.
    let owner = st.keys.get(&id).is_some_and(|k| k.token == bearer && !k.revoked) || core.access_token_is_live(bearer);
    if !owner {
        return auth_required(401, "Your provided API Key or login token is invalid");
    }
    match st.keys.get_mut(&id) {
        Some(key) => {
            key.revoked = true;
            Reply::Text { status: 204, body: String::new() }
        }
        None => json_reply(404, json!({"error": {"code": "not_found", "message": "no such key"}})),
    }
}

fn account(st: &mut State, core: &Core, req: &Incoming) -> Reply {
    let Some(bearer) = req.bearer.as_deref() else {
        st.bump("account:401");
        return auth_required(401, "Login is required");
    };
    if !st.live_key(bearer) {
        st.bump("account:401");
        return auth_required(401, "Your provided API Key or login token is invalid");
    }
    if st.faults.reject_next > 0 {
        st.faults.reject_next -= 1;
        st.bump("account:401");
        return auth_required(401, "Your provided API Key or login token is invalid");
    }
    if st.faults.forbid_account {
        st.bump("account:403");
        return auth_required(403, "Your API key lacks the scope for this resource");
    }
    st.bump("account:200");
    let user = core.user();
    json_reply(
        200,
        json!({"user": {"id": "u-1", "email": format!("{user}@example.test"), "username": user,
                        "first_name": "Alice", "last_name": "Example"},
               "profile": {}, "subscriptions": []}),
    )
}
