//! Local OpenID Connect simulator with injectable faults: discovery, JWKS (ES256), authorize (auto-approve to
//! a loopback redirect, PKCE S256 required), token (code, rotating refresh, device code), revocation, userinfo.

use crate::protocol::jwt::b64url;
use crate::protocol::pkce::{challenge_s256, random_urlsafe};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the simulator gets wrong on purpose; change it with `OidcSim::faults`.
#[derive(Debug, Clone, Default)]
pub struct OidcFaults {
    /// id_tokens name another audience.
    pub wrong_aud: bool,
    /// id_tokens are signed with a key that is not in the JWKS (same `kid`).
    pub bad_signature: bool,
    /// Discovery answers HTTP 500.
    pub discovery_down: bool,
    /// The authorize endpoint answers `access_denied`.
    pub deny_authorize: bool,
    /// Device polls answer `authorization_pending` this many times before the outcome.
    pub device_pending_polls: u32,
    /// The first device poll answers `slow_down`.
    pub device_slow_down_once: bool,
    /// The device sign-in ends in `access_denied` (else approved) ...
    pub device_deny: bool,
    /// ... or in `expired_token`.
    pub device_expire: bool,
    /// The `interval` of device answers (`None`: omitted, as oidc-provider does).
    pub device_interval: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct OidcSimConfig {
    pub client_id: String,
    pub user: String,
    pub access_token_lifetime: u64,
    /// Issue refresh tokens only when `offline_access` was granted (the OpenID Connect rule).
    pub refresh_needs_offline_access: bool,
}

impl Default for OidcSimConfig {
    fn default() -> Self {
        OidcSimConfig {
            client_id: "age-oauth-cli".into(),
            user: "alice".into(),
            access_token_lifetime: 3600,
            refresh_needs_offline_access: true,
        }
    }
}

struct Code {
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    scope: String,
}

struct State {
    config: OidcSimConfig,
    faults: OidcFaults,
    clock_offset: u64,
    counts: BTreeMap<String, u64>,
    codes: HashMap<String, Code>,
    /// Live refresh tokens → (family, scope); a used one moves to `used`.
    refresh: HashMap<String, (String, String)>,
    used_refresh: HashMap<String, String>,
    access: HashSet<String>,
    device: HashMap<String, (u32, String)>,
}

impl State {
    fn now(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + self.clock_offset
    }
    fn bump(&mut self, key: &str) {
        *self.counts.entry(key.to_string()).or_default() += 1;
    }
}

struct Keys {
    good: EcdsaKeyPair,
    /// Signs "bad signature" tokens: not in the JWKS.
    rogue: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Keys {
    fn new() -> Keys {
        let rng = SystemRandom::new();
        let make = || {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("key")
        };
        Keys { good: make(), rogue: make(), rng }
    }

    fn jwks(&self) -> Value {
        let p = self.good.public_key().as_ref();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "sim-1",
                          "x": b64url(&p[1..33]), "y": b64url(&p[33..])}]})
    }

    fn sign(&self, claims: &Value, rogue: bool) -> String {
        let input = format!(
            "{}.{}",
            b64url(br#"{"alg":"ES256","typ":"JWT","kid":"sim-1"}"#),
            b64url(claims.to_string().as_bytes())
        );
        let key = if rogue { &self.rogue } else { &self.good };
        let sig = key.sign(&self.rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

struct Req {
    method_post: bool,
    path: String,
    params: HashMap<String, String>,
    bearer: Option<String>,
}

enum Reply {
    Json(u16, Value),
    Redirect(String),
    Text(u16, String),
}

fn oauth_error(error: &str, description: &str) -> Reply {
    Reply::Json(400, json!({"error": error, "error_description": description}))
}

/// A running OIDC simulator; dropping it stops it.
pub struct OidcSim {
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    issuer: String,
    workers: Vec<std::thread::JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl OidcSim {
    pub fn start(config: OidcSimConfig) -> std::io::Result<OidcSim> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").map_err(std::io::Error::other)?);
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or_default();
        let issuer = format!("http://127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            config,
            faults: OidcFaults::default(),
            clock_offset: 0,
            counts: BTreeMap::new(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            used_refresh: HashMap::new(),
            access: HashSet::new(),
            device: HashMap::new(),
        }));
        let keys = Arc::new(Keys::new());
        let workers = (0..2)
            .map(|_| {
                let (server, state, keys, issuer) = (server.clone(), state.clone(), keys.clone(), issuer.clone());
                std::thread::spawn(move || {
                    while let Ok(mut request) = server.recv() {
                        let req = read(&mut request);
                        let reply = route(&mut lock(&state), &keys, &issuer, &req);
                        respond(request, reply);
                    }
                })
            })
            .collect();
        Ok(OidcSim { server, state, issuer, workers })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    pub fn client_id(&self) -> String {
        lock(&self.state).config.client_id.clone()
    }
    /// How often `key` happened (`token:refresh_token`, `refresh_reuse`, `revoke`, `authorize`, ...).
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or(0)
    }
    pub fn faults(&self, change: impl FnOnce(&mut OidcFaults)) {
        change(&mut lock(&self.state).faults);
    }
    pub fn advance_clock(&self, seconds: u64) {
        lock(&self.state).clock_offset += seconds;
    }
    pub fn now(&self) -> u64 {
        lock(&self.state).now()
    }
}

impl Drop for OidcSim {
    fn drop(&mut self) {
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn read(request: &mut tiny_http::Request) -> Req {
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let mut params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let mut body = Vec::new();
    let _ = request.as_reader().take(1 << 20).read_to_end(&mut body);
    params.extend(form_urlencoded::parse(&body).into_owned());
    let bearer = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer ").map(String::from));
    Req { method_post: *request.method() == tiny_http::Method::Post, path: path.to_string(), params, bearer }
}

fn respond(request: tiny_http::Request, reply: Reply) {
    let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header");
    let response = match reply {
        Reply::Json(status, body) => tiny_http::Response::from_string(body.to_string())
            .with_status_code(status)
            .with_header(header("Content-Type", "application/json")),
        Reply::Redirect(location) => {
            tiny_http::Response::from_string("").with_status_code(302).with_header(header("Location", &location))
        }
        Reply::Text(status, text) => tiny_http::Response::from_string(text).with_status_code(status),
    };
    let _ = request.respond(response);
}

fn route(st: &mut State, keys: &Keys, issuer: &str, req: &Req) -> Reply {
    let p = |name: &str| req.params.get(name).map(String::as_str);
    match (req.method_post, req.path.as_str()) {
        (false, "/.well-known/openid-configuration") => {
            st.bump("discovery");
            if st.faults.discovery_down {
                return Reply::Text(500, "discovery is down".into());
            }
            Reply::Json(
                200,
                json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{issuer}/authorize"),
                    "token_endpoint": format!("{issuer}/token"),
                    "device_authorization_endpoint": format!("{issuer}/device_authorization"),
                    "revocation_endpoint": format!("{issuer}/revoke"),
                    "userinfo_endpoint": format!("{issuer}/userinfo"),
                    "jwks_uri": format!("{issuer}/jwks"),
                    "code_challenge_methods_supported": ["S256"],
                    "authorization_response_iss_parameter_supported": true,
                }),
            )
        }
        (false, "/jwks") => {
            st.bump("jwks");
            Reply::Json(200, keys.jwks())
        }
        (false, "/authorize") => authorize(st, issuer, req),
        (true, "/token") => token(st, keys, issuer, req),
        (true, "/device_authorization") => {
            st.bump("device_authorization");
            if p("client_id") != Some(st.config.client_id.as_str()) {
                return Reply::Json(401, json!({"error": "invalid_client"}));
            }
            let device_code = random_urlsafe(24);
            st.device.insert(device_code.clone(), (0, p("scope").unwrap_or("openid").to_string()));
            let mut answer = json!({
                "device_code": device_code, "user_code": "WDJB-MJHT", "expires_in": 600,
                "verification_uri": format!("{issuer}/device"),
                "verification_uri_complete": format!("{issuer}/device?user_code=WDJB-MJHT"),
            });
            if let Some(i) = st.faults.device_interval {
                answer["interval"] = json!(i);
            }
            Reply::Json(200, answer)
        }
        (true, "/revoke") => {
            st.bump("revoke");
            if let Some((family, _)) = p("token").and_then(|t| st.refresh.get(t)).cloned() {
                st.refresh.retain(|_, (f, _)| *f != family);
            }
            if let Some(t) = p("token") {
                st.access.remove(t);
            }
            Reply::Text(200, String::new())
        }
        (false, "/userinfo") => {
            st.bump("userinfo");
            match &req.bearer {
                Some(t) if st.access.contains(t) => {
                    let user = st.config.user.clone();
                    Reply::Json(
                        200,
                        json!({"sub": user, "preferred_username": user, "email": format!("{user}@example.test")}),
                    )
                }
                _ => Reply::Json(401, json!({"error": "invalid_token"})),
            }
        }
        _ => Reply::Text(404, "not found".into()),
    }
}

fn authorize(st: &mut State, issuer: &str, req: &Req) -> Reply {
    st.bump("authorize");
    let p = |name: &str| req.params.get(name).cloned();
    let redirect_uri = p("redirect_uri").unwrap_or_default();
    let loopback = redirect_uri.strip_prefix("http://127.0.0.1:").is_some_and(|r| r.contains('/'));
    if p("client_id").as_deref() != Some(st.config.client_id.as_str()) || !loopback {
        return Reply::Text(400, "unknown client or redirect_uri".into());
    }
    let back = |params: &[(&str, &str)]| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(state) = p("state") {
            q.append_pair("state", &state);
        }
        q.append_pair("iss", issuer);
        Reply::Redirect(format!("{redirect_uri}?{}", q.finish()))
    };
    if st.faults.deny_authorize {
        return back(&[("error", "access_denied"), ("error_description", "the user said no")]);
    }
    let (Some(challenge), Some("S256")) = (p("code_challenge"), p("code_challenge_method").as_deref()) else {
        return back(&[("error", "invalid_request"), ("error_description", "PKCE S256 is required for this client")]);
    };
    let code = random_urlsafe(24);
    let scope = p("scope").unwrap_or_default();
    // OpenID Connect Core §11: offline_access needs prompt=consent, else it is dropped.
    let scope = if p("prompt").as_deref() == Some("consent") {
        scope
    } else {
        scope.split(' ').filter(|s| *s != "offline_access").collect::<Vec<_>>().join(" ")
    };
    st.codes.insert(code.clone(), Code { redirect_uri: redirect_uri.clone(), challenge, nonce: p("nonce"), scope });
    back(&[("code", &code)])
}

fn token(st: &mut State, keys: &Keys, issuer: &str, req: &Req) -> Reply {
    let p = |name: &str| req.params.get(name).map(String::as_str);
    let grant = p("grant_type").unwrap_or_default();
    st.bump(&format!("token:{}", grant.rsplit(':').next().unwrap_or_default()));
    if p("client_id") != Some(st.config.client_id.as_str()) {
        return Reply::Json(401, json!({"error": "invalid_client"}));
    }
    let (scope, nonce, family) = match grant {
        "authorization_code" => {
            let Some(code) = p("code").and_then(|c| st.codes.remove(c)) else {
                return oauth_error("invalid_grant", "unknown or used authorization code");
            };
            if p("redirect_uri") != Some(code.redirect_uri.as_str()) {
                return oauth_error("invalid_grant", "redirect_uri does not match");
            }
            if challenge_s256(p("code_verifier").unwrap_or_default()) != code.challenge {
                return oauth_error("invalid_grant", "PKCE verification failed");
            }
            (code.scope, code.nonce, random_urlsafe(8))
        }
        "refresh_token" => {
            let presented = p("refresh_token").unwrap_or_default().to_string();
            if let Some(family) = st.used_refresh.get(&presented).cloned() {
                // Reuse of a rotated-out token: the whole grant dies (RFC 9700 §4.14.2).
                st.bump("refresh_reuse");
                st.refresh.retain(|_, (f, _)| *f != family);
                return oauth_error("invalid_grant", "refresh token reuse detected; grant revoked");
            }
            let Some((family, scope)) = st.refresh.remove(&presented) else {
                return oauth_error("invalid_grant", "unknown or revoked refresh token");
            };
            st.used_refresh.insert(presented, family.clone());
            (scope, None, family)
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let Some((polls, scope)) = p("device_code").and_then(|d| st.device.get_mut(d)) else {
                return oauth_error("invalid_grant", "unknown device code");
            };
            *polls += 1;
            let (polls, scope) = (*polls, scope.clone());
            if polls == 1 && st.faults.device_slow_down_once {
                return oauth_error("slow_down", "poll less often");
            }
            let slow = u32::from(st.faults.device_slow_down_once);
            if polls <= st.faults.device_pending_polls + slow {
                return oauth_error("authorization_pending", "the user has not answered yet");
            }
            st.device.remove(p("device_code").unwrap_or_default());
            if st.faults.device_deny {
                return oauth_error("access_denied", "the user denied the sign-in");
            }
            if st.faults.device_expire {
                return oauth_error("expired_token", "the device code expired");
            }
            (scope, None, random_urlsafe(8))
        }
        _ => return oauth_error("unsupported_grant_type", grant),
    };
    let now = st.now();
    let access = random_urlsafe(24);
    st.access.insert(access.clone());
    let mut answer = json!({"access_token": access, "token_type": "Bearer",
                            "expires_in": st.config.access_token_lifetime, "scope": scope});
    let scopes: Vec<&str> = scope.split(' ').collect();
    if !st.config.refresh_needs_offline_access || scopes.contains(&"offline_access") {
        let rt = random_urlsafe(24);
        st.refresh.insert(rt.clone(), (family, scope.clone()));
        answer["refresh_token"] = json!(rt);
    }
    if scopes.contains(&"openid") {
        let user = st.config.user.clone();
        let aud = if st.faults.wrong_aud { "someone-else".to_string() } else { st.config.client_id.clone() };
        let mut claims = json!({"iss": issuer, "sub": user, "aud": aud, "iat": now, "exp": now + 3600,
                                "preferred_username": user, "email": format!("{user}@example.test")});
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        answer["id_token"] = json!(keys.sign(&claims, st.faults.bad_signature));
    }
    Reply::Json(200, answer)
}
