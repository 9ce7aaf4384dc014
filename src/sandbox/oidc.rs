//! Local OpenID Connect simulator with injectable faults: discovery, JWKS (ES256), authorize (auto-approve to
//! a loopback redirect, PKCE S256 required), token (code, rotating refresh, device code), revocation, userinfo.
//! It is an oracle for the client's OIDC code, so it computes S256 and base64url itself (sha2, base64) and
//! shares nothing with the client's `pkce` or `jwt` modules; it is served by the simulators' one HTTP stack.

use super::http::{Incoming, Listener, Reply};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier (RFC 7636 §4.2): BASE64URL(SHA256(ASCII(verifier))).
fn s256(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier.as_bytes()))
}

/// `bytes` random bytes, base64url: codes, tokens, grant families.
fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    b64url(&buf)
}

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

/// The issuer's one registered client and one user.
#[derive(Debug, Clone)]
pub struct OidcSimConfig {
    /// The only client ID the authorize, token and device endpoints accept.
    pub client_id: String,
    /// The signed-in user: `sub`, `preferred_username` and `email` of ID tokens and `/userinfo`.
    pub user: String,
    /// `expires_in` of access tokens, in seconds.
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

/// JSON with an HTTP status, as OAuth 2.0 and OpenID Connect answer.
fn json_reply(status: u16, body: Value) -> Reply {
    Reply::JsonStatus { status, body }
}

fn text_reply(status: u16, body: &str) -> Reply {
    Reply::Text { status, body: body.to_string() }
}

fn oauth_error(error: &str, description: &str) -> Reply {
    json_reply(400, json!({"error": error, "error_description": description}))
}

/// A parameter as sent (query or form body), empty values included.
fn param<'a>(req: &'a Incoming, name: &str) -> Option<&'a str> {
    req.params.get(name).map(String::as_str)
}

/// A running OIDC simulator; dropping it stops it and frees the port.
pub struct OidcSim {
    /// Serves until dropped.
    _listener: Listener,
    state: Arc<Mutex<State>>,
    issuer: String,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The issuer's state and keys without a listener: other simulators (the Anaconda-style service)
/// serve its endpoints under their own paths and issuer name.
#[derive(Clone)]
pub(super) struct Core {
    state: Arc<Mutex<State>>,
    keys: Arc<Keys>,
}

impl Core {
    pub(super) fn new(config: OidcSimConfig) -> Core {
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
        Core { state, keys: Arc::new(Keys::new()) }
    }

    /// Answers `req` as if it came for `path` (`/authorize`, `/token`, `/device_authorization`,
    /// `/jwks`, `/userinfo`, `/revoke`), with `issuer` in tokens and redirects.
    pub(super) fn route(&self, issuer: &str, path: &str, req: &Incoming) -> Reply {
        route_at(&mut lock(&self.state), &self.keys, issuer, path, req)
    }

    /// True when `token` is an access token this issuer gave out and did not revoke.
    pub(super) fn access_token_is_live(&self, token: &str) -> bool {
        lock(&self.state).access.contains(token)
    }

    /// The access tokens given out and not revoked (for tests: they must be in no log or file).
    pub(super) fn live_access_tokens(&self) -> Vec<String> {
        lock(&self.state).access.iter().cloned().collect()
    }

    /// The one user's name.
    pub(super) fn user(&self) -> String {
        lock(&self.state).config.user.clone()
    }

    pub(super) fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or(0)
    }

    pub(super) fn faults(&self, change: impl FnOnce(&mut OidcFaults)) {
        change(&mut lock(&self.state).faults);
    }
}

impl OidcSim {
    /// Serves on an ephemeral 127.0.0.1 port with a fresh ES256 signing key, until dropped.
    pub fn start(config: OidcSimConfig) -> std::io::Result<OidcSim> {
        let core = Core::new(config);
        let state = core.state.clone();
        let listener = Listener::start("127.0.0.1:0", "oidc-sim", move |reach| {
            let issuer = format!("http://{reach}");
            Arc::new(move |req: &Incoming| core.route(&issuer, &req.path, req))
        })?;
        let issuer = format!("http://{}", listener.reach);
        Ok(OidcSim { _listener: listener, state, issuer })
    }

    /// The issuer URL (`http://127.0.0.1:PORT`), the `iss` of its ID tokens and the root of discovery.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// The client ID the simulator accepts (from its configuration).
    pub fn client_id(&self) -> String {
        lock(&self.state).config.client_id.clone()
    }
    /// How often `key` happened (`token:refresh_token`, `refresh_reuse`, `revoke`, `authorize`, ...).
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or(0)
    }
    /// Changes the injected faults; they apply to every later request.
    pub fn faults(&self, change: impl FnOnce(&mut OidcFaults)) {
        change(&mut lock(&self.state).faults);
    }
    /// Moves the simulator's clock forward: it dates the `iat` and `exp` of later ID tokens.
    pub fn advance_clock(&self, seconds: u64) {
        lock(&self.state).clock_offset += seconds;
    }
    /// The simulator's clock in Unix seconds (wall clock plus `advance_clock`).
    pub fn now(&self) -> u64 {
        lock(&self.state).now()
    }
}

fn route_at(st: &mut State, keys: &Keys, issuer: &str, path: &str, req: &Incoming) -> Reply {
    let p = |name: &str| param(req, name);
    match (req.is_post, path) {
        (false, "/.well-known/openid-configuration") => {
            st.bump("discovery");
            if st.faults.discovery_down {
                return text_reply(500, "discovery is down");
            }
            json_reply(
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
            json_reply(200, keys.jwks())
        }
        (false, "/authorize") => authorize(st, issuer, req),
        (true, "/token") => token(st, keys, issuer, req),
        (true, "/device_authorization") => {
            st.bump("device_authorization");
            if p("client_id") != Some(st.config.client_id.as_str()) {
                return json_reply(401, json!({"error": "invalid_client"}));
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
            json_reply(200, answer)
        }
        (true, "/revoke") => {
            st.bump("revoke");
            if let Some((family, _)) = p("token").and_then(|t| st.refresh.get(t)).cloned() {
                st.refresh.retain(|_, (f, _)| *f != family);
            }
            if let Some(t) = p("token") {
                st.access.remove(t);
            }
            text_reply(200, "")
        }
        (false, "/userinfo") => {
            st.bump("userinfo");
            match &req.bearer {
                Some(t) if st.access.contains(t) => {
                    let user = st.config.user.clone();
                    json_reply(
                        200,
                        json!({"sub": user, "preferred_username": user, "email": format!("{user}@example.test")}),
                    )
                }
                _ => json_reply(401, json!({"error": "invalid_token"})),
            }
        }
        _ => text_reply(404, "not found"),
    }
}

fn authorize(st: &mut State, issuer: &str, req: &Incoming) -> Reply {
    st.bump("authorize");
    let p = |name: &str| param(req, name).map(str::to_string);
    let redirect_uri = p("redirect_uri").unwrap_or_default();
    let loopback = redirect_uri.strip_prefix("http://127.0.0.1:").is_some_and(|r| r.contains('/'));
    if p("client_id").as_deref() != Some(st.config.client_id.as_str()) || !loopback {
        return text_reply(400, "unknown client or redirect_uri");
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

fn token(st: &mut State, keys: &Keys, issuer: &str, req: &Incoming) -> Reply {
    let p = |name: &str| param(req, name);
    let grant = p("grant_type").unwrap_or_default();
    st.bump(&format!("token:{}", grant.rsplit(':').next().unwrap_or_default()));
    if p("client_id") != Some(st.config.client_id.as_str()) {
        return json_reply(401, json!({"error": "invalid_client"}));
    }
    let (scope, nonce, family) = match grant {
        "authorization_code" => {
            let Some(code) = p("code").and_then(|c| st.codes.remove(c)) else {
                return oauth_error("invalid_grant", "unknown or used authorization code");
            };
            if p("redirect_uri") != Some(code.redirect_uri.as_str()) {
                return oauth_error("invalid_grant", "redirect_uri does not match");
            }
            if s256(p("code_verifier").unwrap_or_default()) != code.challenge {
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
    json_reply(200, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn s256_is_the_rfc_7636_transform() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        assert_ne!(s256(&VERIFIER[1..]), CHALLENGE);
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
    }

    /// Authorizes with `CHALLENGE` and returns the code from the loopback redirect.
    fn code(sim: &OidcSim) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", "age-oauth-cli"),
                ("redirect_uri", "http://127.0.0.1:9/cb"),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let response = agent().get(&format!("{}/authorize?{query}", sim.issuer())).call().unwrap();
        assert_eq!(response.status().as_u16(), 302);
        let location = response.headers().get("location").unwrap().to_str().unwrap().to_string();
        let (_, query) = location.split_once('?').unwrap();
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "code").unwrap().1.into_owned()
    }

    fn redeem(sim: &OidcSim, code: &str, verifier: &str) -> (u16, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", "age-oauth-cli"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("code", code),
            ("code_verifier", verifier),
        ];
        let mut response = agent().post(&format!("{}/token", sim.issuer())).send_form(form).unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap())
    }

    #[test]
    fn the_token_endpoint_checks_the_pkce_verifier_and_dropping_frees_the_port() {
        let sim = OidcSim::start(OidcSimConfig::default()).unwrap();
        let (status, body) = redeem(&sim, &code(&sim), &VERIFIER[1..]);
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
        let (status, body) = redeem(&sim, &code(&sim), VERIFIER);
        assert_eq!(status, 200, "{body}");
        assert!(body["access_token"].is_string() && body["id_token"].is_string(), "{body}");
        assert_eq!(sim.count("token:authorization_code"), 2);
        let addr = sim.issuer().trim_start_matches("http://").to_string();
        drop(sim);
        assert!(std::net::TcpStream::connect(&addr).is_err(), "the port is free once the simulator is dropped");
    }
}
