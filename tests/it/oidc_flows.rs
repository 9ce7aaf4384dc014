//! The `oidc` and `esri-pkce` providers through the engine, against the project's simulators with a manual
//! clock: browser flow via the loopback listener, wrong state, refresh rotation, device flow, id_token checks.

use crate::common;

use age_oauth::sandbox::{OidcSim, OidcSimConfig, PortalConfig, PortalSim};
use age_oauth::CacheStore;
use age_oauth::Config;
use age_oauth::Error;
use age_oauth::Interaction;
use age_oauth::Paths;
use age_oauth::Secret;
use age_oauth::TokenSet;
use age_oauth::{Clock, ManualClock};
use age_oauth::{Engine, LoginOutcome, Session};
use age_oauth::{HttpClient, HttpRequest, UreqClient, VerifySsl};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Lab {
    home: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Lab {
    fn new(start: u64) -> Lab {
        Lab { home: tempfile::tempdir().unwrap(), clock: Arc::new(ManualClock::new(start)) }
    }
    fn paths(&self) -> Paths {
        Paths::under(self.home.path().to_path_buf())
    }
    fn add_profile(&self, name: &str, provider: &str, fields: &[(&str, Value)]) {
        let fields: Map<String, Value> = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        age_oauth::write_profile(&self.paths(), name, provider, &fields).unwrap();
    }
    fn engine(&self) -> Engine {
        let clock: Arc<dyn Clock> = self.clock.clone();
        let http: Arc<dyn HttpClient> = Arc::new(UreqClient::new(&VerifySsl::On).unwrap());
        Engine::with_parts(self.paths(), clock, Box::new(move |_| Ok(http.clone())))
            .with_store(CacheStore::with_own_identity(self.paths()))
    }
    fn session(&self, engine: &Engine, name: &str) -> Session {
        let paths = self.paths();
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        let config =
            Config::from_parts(vec![(paths.config_file.clone(), text)], BTreeMap::new(), BTreeMap::new()).unwrap();
        engine.session(config.resolve(name, &[]).unwrap()).unwrap()
    }
    fn cached(&self, engine: &Engine, profile: &str) -> TokenSet {
        engine.store.load(profile).unwrap().expect("a cache entry").tokens.expect("cached tokens")
    }
}

/// How the scripted person's browser behaves.
#[derive(Clone, Copy, PartialEq)]
enum Browser {
    /// Follows the redirect chain to the listener.
    Follow,
    /// First sends the listener a callback with a wrong state, then follows.
    WrongStateFirst,
    /// No browser: the person pastes the redirected URL on stdin.
    Paste,
}

struct Person {
    browser: Browser,
    messages: Vec<String>,
    authorize_url: Option<String>,
    threads: Vec<std::thread::JoinHandle<Vec<u16>>>,
}

impl Person {
    fn new(browser: Browser) -> Person {
        Person { browser, messages: Vec::new(), authorize_url: None, threads: Vec::new() }
    }
    /// HTTP statuses the stray callbacks got from the listener.
    fn stray_statuses(&mut self) -> Vec<u16> {
        self.threads.drain(..).flat_map(|t| t.join().unwrap()).collect()
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl Interaction for Person {
    fn can_prompt(&self) -> bool {
        false
    }
    fn info(&mut self, message: &str) {
        if let Some(url) = message.split_whitespace().find(|w| w.starts_with("http") && w.contains("code_challenge")) {
            self.authorize_url = Some(url.to_string());
        }
        self.messages.push(message.to_string());
    }
    fn warn(&mut self, message: &str) {
        self.messages.push(format!("warning: {message}"));
    }
    fn debug(&mut self, _level: u8, _message: &str) {}
    fn open_browser(&mut self, url: &str) -> Result<(), String> {
        let (url, wrong_first) = (url.to_string(), self.browser == Browser::WrongStateFirst);
        // A real browser runs beside age-oauth, which is waiting on its listener meanwhile.
        self.threads.push(std::thread::spawn(move || {
            let mut strays = Vec::new();
            if wrong_first {
                let redirect = query_param(&url, "redirect_uri").unwrap();
                let forged = HttpRequest::get(format!("{redirect}?code=forged&state=not-yours"));
                strays.push(UreqClient::new(&VerifySsl::On).unwrap().send(&forged).unwrap().status);
            }
            common::browse(&url, None);
            strays
        }));
        Ok(())
    }
    fn read_line(&mut self, _prompt: &str) -> age_oauth::Result<Option<String>> {
        let url = self.authorize_url.take().expect("the authorize URL was shown");
        let redirect = query_param(&url, "redirect_uri").unwrap();
        Ok(Some(common::browse(&url, Some(&redirect))))
    }
    fn read_secret(&mut self, _prompt: &str) -> age_oauth::Result<Option<Secret>> {
        Ok(None)
    }
}

fn login(engine: &Engine, session: &mut Session, person: &mut Person) -> age_oauth::Result<TokenSet> {
    let no_browser = person.browser == Browser::Paste;
    match engine.login(session, person, true, no_browser)? {
        LoginOutcome::LoggedIn(t) => Ok(t),
        _ => panic!("expected a fresh login"),
    }
}

fn oidc_lab(extra: &[(&str, Value)]) -> (OidcSim, Lab) {
    let sim = OidcSim::start(OidcSimConfig::default()).unwrap();
    let lab = Lab::new(sim.now());
    let mut fields = vec![
        ("issuer", json!(sim.issuer())),
        ("client_id", json!(sim.client_id())),
        ("scopes", json!("openid profile offline_access")),
    ];
    fields.extend(extra.iter().cloned());
    lab.add_profile("sso", "oidc", &fields);
    (sim, lab)
}

fn assert_exit(result: age_oauth::Result<impl Sized>, code: i32, needle: &str) -> String {
    match result {
        Err(e) => {
            let m = e.to_string();
            assert_eq!(e.exit_code(), code, "{m}");
            assert!(m.contains(needle), "`{needle}` not in: {m}");
            m
        }
        Ok(_) => panic!("expected an error containing `{needle}`"),
    }
}

// ------------------------------------------------------------------------------------------------
// oidc, browser flow
// ------------------------------------------------------------------------------------------------

#[test]
fn oidc_browser_login_verifies_the_id_token_and_caches_discovery() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let mut person = Person::new(Browser::Follow);
    let tokens = login(&engine, &mut session, &mut person).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("alice"));
    assert_eq!(tokens.expires_at, Some(lab.clock.now() + 3600));
    assert!(tokens.refresh_token.is_some(), "offline_access with prompt=consent gives a refresh token");
    assert_eq!(tokens.provider_state["id_token_claims"]["sub"], "alice");
    assert_eq!(tokens.provider_state["oidc_discovery"]["metadata"]["issuer"], sim.issuer());
    assert_eq!(tokens.provider_state["oidc_discovery"]["fetched_at"], lab.clock.now());
    assert_eq!(lab.cached(&engine, "sso"), tokens);
    assert_eq!((sim.count("authorize"), sim.count("token:authorization_code"), sim.count("jwks")), (1, 1, 1));
    assert!(person.messages.iter().any(|m| m.contains("Waiting up to 300 s")), "{:?}", person.messages);

    // whoami asks userinfo; the discovery cached in the encrypted store saves a request.
    let who = engine.whoami(&mut session, &mut person).unwrap();
    assert_eq!(who.username, "alice");
    assert_eq!(who.details["source"], "userinfo");
    assert_eq!(sim.count("discovery"), 1);
}

#[test]
fn explicit_endpoints_without_discovery_and_whoami_from_the_id_token() {
    let sim = OidcSim::start(OidcSimConfig::default()).unwrap();
    let lab = Lab::new(sim.now());
    let at = |path: &str| json!(format!("{}{path}", sim.issuer()));
    lab.add_profile(
        "manual",
        "oidc",
        &[
            ("client_id", json!(sim.client_id())),
            ("authorization_endpoint", at("/authorize")),
            ("token_endpoint", at("/token")),
            ("jwks_uri", at("/jwks")),
        ],
    );
    let engine = lab.engine();
    let mut session = lab.session(&engine, "manual");
    let tokens = login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("alice"));
    assert!(!tokens.provider_state.contains_key("oidc_discovery"));
    let who = engine.whoami(&mut session, &mut Person::new(Browser::Follow)).unwrap();
    assert_eq!((who.username.as_str(), &who.details["source"]), ("alice", &json!("id_token")));
    assert_eq!((sim.count("discovery"), sim.count("userinfo")), (0, 0));
    let report = engine.logout(&mut session, &mut Person::new(Browser::Follow)).unwrap();
    assert!(report.revocation.unwrap().contains("no revocation endpoint"));
}

#[test]
fn a_callback_with_the_wrong_state_is_refused_and_the_listener_keeps_waiting() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let mut person = Person::new(Browser::WrongStateFirst);
    let tokens = login(&engine, &mut session, &mut person).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("alice"));
    assert_eq!(person.stray_statuses(), [400], "the forged callback got an error page");
    assert!(
        person.messages.iter().any(|m| m.contains("ignored") && m.contains("another sign-in")),
        "{:?}",
        person.messages
    );
    assert_eq!(sim.count("token:authorization_code"), 1, "the forged code never reached the server");
}

#[test]
fn no_browser_takes_the_pasted_redirect_url() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let mut person = Person::new(Browser::Paste);
    let tokens = login(&engine, &mut session, &mut person).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("alice"));
    assert_eq!(sim.count("token:authorization_code"), 1);
}

#[test]
fn an_id_token_with_a_bad_signature_or_a_foreign_audience_is_rejected() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    sim.faults(|f| f.bad_signature = true);
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 4, "signature does not match");
    sim.faults(|f| (f.bad_signature, f.wrong_aud) = (false, true));
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 4, "audience");
    assert!(engine.store.load("sso").unwrap().is_none(), "nothing was cached");
    sim.faults(|f| f.wrong_aud = false);
    assert!(login(&engine, &mut session, &mut Person::new(Browser::Follow)).is_ok());
}

#[test]
fn a_denied_sign_in_and_a_down_discovery_are_clear_errors() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    sim.faults(|f| f.deny_authorize = true);
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 3, "access_denied");
    sim.faults(|f| (f.deny_authorize, f.discovery_down) = (false, true));
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 4, "discovery");
}

// ------------------------------------------------------------------------------------------------
// oidc, refresh with rotation
// ------------------------------------------------------------------------------------------------

#[test]
fn refresh_rotates_twice_and_never_sends_an_old_refresh_token() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let first = login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
    let mut seen = vec![first.refresh_token.clone().unwrap()];
    for round in 1..=2 {
        lab.clock.advance(3600);
        sim.advance_clock(3600);
        let fresh = engine.token(&mut session, &mut Person::new(Browser::Follow), 0).unwrap();
        let rt = fresh.refresh_token.clone().unwrap();
        assert!(!seen.contains(&rt), "round {round}: a new refresh token");
        assert_eq!(lab.cached(&engine, "sso").refresh_token.as_ref(), Some(&rt), "stored at once");
        assert_eq!(fresh.username.as_deref(), Some("alice"));
        assert_eq!(sim.count("token:refresh_token"), round);
        seen.push(rt);
    }
    assert_eq!(sim.count("refresh_reuse"), 0, "no rotated-out refresh token was ever sent");
    assert_eq!(sim.count("discovery"), 1, "discovery came from the encrypted cache");
    assert_eq!(sim.count("jwks"), 1, "so did the JWKS that checked the refreshed id_tokens");

    // The server treats reuse as theft: it answers invalid_grant and kills the family, and
    // age-oauth then asks for a login (exit 3) instead of retrying.
    let raw = UreqClient::new(&VerifySsl::On).unwrap().send(&HttpRequest::post_form(
        format!("{}/token", sim.issuer()),
        &[("grant_type", "refresh_token"), ("refresh_token", seen[0].expose()), ("client_id", &sim.client_id())],
    ));
    let body: Value = serde_json::from_slice(&raw.unwrap().body).unwrap();
    assert_eq!(body["error"], "invalid_grant");
    lab.clock.advance(3600);
    sim.advance_clock(3600);
    let m = assert_exit(engine.token(&mut session, &mut Person::new(Browser::Follow), 0), 3, "invalid_grant");
    assert!(m.contains("age-oauth login --profile sso"), "{m}");
}

#[test]
fn whoami_refreshes_once_when_userinfo_rejects_the_access_token() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let tokens = login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
    let revoke = HttpRequest::post_form(format!("{}/revoke", sim.issuer()), &[("token", tokens.access_token.expose())]);
    assert_eq!(UreqClient::new(&VerifySsl::On).unwrap().send(&revoke).unwrap().status, 200);
    let who = engine.whoami(&mut session, &mut Person::new(Browser::Follow)).unwrap();
    assert_eq!(who.username, "alice");
    assert_eq!(sim.count("userinfo"), 2, "401, then the retry with the refreshed token");
    assert_eq!(sim.count("token:refresh_token"), 1);
    assert_ne!(lab.cached(&engine, "sso").access_token, tokens.access_token);
}

#[test]
fn logout_revokes_the_refresh_token() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let tokens = login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
    let report = engine.logout(&mut session, &mut Person::new(Browser::Follow)).unwrap();
    assert!(report.revocation.unwrap().starts_with("revoked the refresh token at"));
    assert_eq!(sim.count("revoke"), 1);
    assert!(engine.store.load("sso").unwrap().is_none());
    let raw = UreqClient::new(&VerifySsl::On).unwrap().send(&HttpRequest::post_form(
        format!("{}/token", sim.issuer()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.unwrap().expose()),
            ("client_id", &sim.client_id()),
        ],
    ));
    assert_eq!(serde_json::from_slice::<Value>(&raw.unwrap().body).unwrap()["error"], "invalid_grant");
}

// ------------------------------------------------------------------------------------------------
// oidc, device flow (the manual clock's sleep only moves time forward)
// ------------------------------------------------------------------------------------------------

#[test]
fn device_flow_polls_through_pending_and_slow_down_until_approved() {
    let (sim, lab) = oidc_lab(&[("flow", json!("device"))]);
    sim.faults(|f| (f.device_pending_polls, f.device_slow_down_once) = (3, true));
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let start = lab.clock.now();
    let mut person = Person::new(Browser::Follow);
    let tokens = login(&engine, &mut session, &mut person).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("alice"));
    assert_eq!(sim.count("token:device_code"), 5, "slow_down, 3× pending, approved");
    // No interval from the server: 5 s; slow_down adds 5 s for every later poll.
    assert_eq!(lab.clock.now() - start, 5 + 4 * 10);
    let shown = person.messages.join("\n");
    assert!(shown.contains("/device and enter the code WDJB-MJHT"), "{shown}");
    assert!(shown.contains("/device?user_code=WDJB-MJHT"), "{shown}");
}

#[test]
fn device_flow_denied_or_expired_asks_for_a_new_login() {
    let (sim, lab) = oidc_lab(&[("flow", json!("device"))]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    sim.faults(|f| (f.device_pending_polls, f.device_deny) = (1, true));
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 3, "the sign-in was denied");
    sim.faults(|f| (f.device_deny, f.device_expire) = (false, true));
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 3, "expired");
    // The server's own expires_in (600 s) also bounds the polling.
    sim.faults(|f| (f.device_expire, f.device_pending_polls) = (false, 10_000));
    assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 3, "expired");
    assert!(sim.count("token:device_code") < 200);
}

// ------------------------------------------------------------------------------------------------
// esri-pkce against the Portal simulator
// ------------------------------------------------------------------------------------------------

fn portal_lab() -> (PortalSim, Lab) {
    let sim = PortalSim::start("127.0.0.1:0", PortalConfig::default()).unwrap();
    let lab = Lab::new(sim.now());
    for name in ["desk", "laptop"] {
        lab.add_profile(
            name,
            "esri-pkce",
            &[("portal", json!(sim.base_url())), ("client_id", json!("age-oauth-sandbox"))],
        );
    }
    (sim, lab)
}

#[test]
fn esri_pkce_browser_login_then_refresh_and_rotation() {
    let (sim, lab) = portal_lab();
    let engine = lab.engine();
    let mut session = lab.session(&engine, "desk");
    let tokens = login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("demo"));
    let redirect = tokens.provider_state["redirect_uri"].as_str().unwrap().to_string();
    assert!(redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"), "{redirect}");
    assert_eq!(sim.count("token:authorization_code"), 1);

    // Near the refresh token's end, exchange_refresh_token rotates it, with the login's redirect_uri.
    lab.clock.advance(1_209_600 - 3600);
    sim.advance_clock(1_209_600 - 3600);
    let rotated = engine.token(&mut session, &mut Person::new(Browser::Follow), 0).unwrap();
    assert_eq!(sim.count("token:exchange_refresh_token"), 1);
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    assert_eq!(rotated.provider_state["redirect_uri"], redirect.as_str());
}

#[test]
fn esri_pkce_paste_path() {
    let (sim, lab) = portal_lab();
    let engine = lab.engine();
    let mut session = lab.session(&engine, "desk");
    let tokens = login(&engine, &mut session, &mut Person::new(Browser::Paste)).unwrap();
    assert_eq!(tokens.username.as_deref(), Some("demo"));
    assert_eq!(sim.count("token:authorization_code"), 1);
}

#[test]
fn two_profiles_log_in_at_the_same_time() {
    let (sim, lab) = portal_lab();
    let lab = Arc::new(lab);
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = ["desk", "laptop"]
        .into_iter()
        .map(|name| {
            let (lab, barrier) = (lab.clone(), barrier.clone());
            std::thread::spawn(move || {
                let engine = lab.engine();
                let mut session = lab.session(&engine, name);
                barrier.wait();
                let tokens = login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
                (tokens.provider_state["redirect_uri"].as_str().unwrap().to_string(), tokens.access_token)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_ne!(results[0].0, results[1].0, "each login had its own listener port");
    assert_ne!(results[0].1, results[1].1);
    assert_eq!(sim.count("token:authorization_code"), 2);
    let engine = lab.engine();
    assert_eq!(lab.cached(&engine, "desk").access_token, results[0].1);
    assert_eq!(lab.cached(&engine, "laptop").access_token, results[1].1);
}

#[test]
fn a_fixed_redirect_port_is_used_and_a_busy_one_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (sim, lab) = oidc_lab(&[("redirect_port", json!(port)), ("redirect_path", json!("/cb"))]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    let mut person = Person::new(Browser::Follow);
    login(&engine, &mut session, &mut person).unwrap();
    let waited = format!("come back to http://127.0.0.1:{port}/cb");
    assert!(person.messages.iter().any(|m| m.contains(&waited)), "{:?}", person.messages);

    let _busy = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let m = assert_exit(login(&engine, &mut session, &mut Person::new(Browser::Follow)), 2, "redirect_port");
    assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
    assert_eq!(sim.count("token:authorization_code"), 1);
}

#[test]
fn oidc_needs_an_issuer_or_endpoints() {
    let lab = Lab::new(0);
    lab.add_profile("bare", "oidc", &[("client_id", json!("x"))]);
    let engine = lab.engine();
    let paths = lab.paths();
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    let config = Config::from_parts(vec![(paths.config_file.clone(), text)], BTreeMap::new(), BTreeMap::new()).unwrap();
    match engine.session(config.resolve("bare", &[]).unwrap()) {
        Err(e @ Error::Config(_)) => assert!(e.to_string().contains("set `issuer`"), "{e}"),
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected a config error"),
    }
    lab.add_profile(
        "sneaky",
        "oidc",
        &[
            ("issuer", json!("https://id.example.test")),
            ("client_id", json!("x")),
            ("extra_authorize_params", json!({"state": "fixed"})),
        ],
    );
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    let config = Config::from_parts(vec![(paths.config_file.clone(), text)], BTreeMap::new(), BTreeMap::new()).unwrap();
    let e = engine.session(config.resolve("sneaky", &[]).unwrap()).err().expect("refused");
    assert!(e.to_string().contains("may not set `state`"), "{e}");
}

// ------------------------------------------------------------------------------------------------
// Against the real oidc-provider (tests/peers/oidc)
// ------------------------------------------------------------------------------------------------

/// A browser (or a proxy) that drops the PKCE parameters on the way to the server.
struct PkceStrippingPerson(Person);

impl Interaction for PkceStrippingPerson {
    fn can_prompt(&self) -> bool {
        false
    }
    fn info(&mut self, message: &str) {
        self.0.info(message)
    }
    fn warn(&mut self, message: &str) {
        self.0.warn(message)
    }
    fn debug(&mut self, _level: u8, _message: &str) {}
    fn open_browser(&mut self, url: &str) -> Result<(), String> {
        let (base, query) = url.split_once('?').unwrap();
        let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("code_challenge")).collect();
        self.0.open_browser(&format!("{base}?{}", kept.join("&")))
    }
    fn read_line(&mut self, prompt: &str) -> age_oauth::Result<Option<String>> {
        self.0.read_line(prompt)
    }
    fn read_secret(&mut self, _prompt: &str) -> age_oauth::Result<Option<Secret>> {
        Ok(None)
    }
}

fn real_lab(flow: &str) -> Lab {
    let lab = Lab::new(0);
    lab.add_profile(
        "real",
        "oidc",
        &[
            ("issuer", json!(common::real_oidc_issuer())),
            ("client_id", json!(common::REAL_CLIENT)),
            ("flow", json!(flow)),
        ],
    );
    lab
}

/// An engine on the wall clock: the real server's tokens and poll intervals are real time.
fn wall_clock_engine(lab: &Lab) -> Engine {
    let http: Arc<dyn HttpClient> = Arc::new(UreqClient::new(&VerifySsl::On).unwrap());
    Engine::with_parts(lab.paths(), Arc::new(age_oauth::SystemClock), Box::new(move |_| Ok(http.clone())))
        .with_store(CacheStore::with_own_identity(lab.paths()))
}

#[test]
fn real_server_refusing_a_request_without_pkce_is_a_clear_error() {
    let lab = real_lab("browser");
    let engine = wall_clock_engine(&lab);
    let mut session = lab.session(&engine, "real");
    let mut person = PkceStrippingPerson(Person::new(Browser::Follow));
    let result = engine.login(&mut session, &mut person, true, false).map(|_| ());
    let m = assert_exit(result, 4, "the authorization server refused the sign-in (invalid_request");
    assert!(m.contains("PKCE"), "{m}");
}

#[test]
fn real_server_device_flow_approved_in_the_browser() {
    let lab = real_lab("device");
    let engine = wall_clock_engine(&lab);
    let mut session = lab.session(&engine, "real");
    /// Approves at once, on the verification_uri_complete it is shown.
    struct Approver(Vec<String>);
    impl Interaction for Approver {
        fn can_prompt(&self) -> bool {
            false
        }
        fn info(&mut self, message: &str) {
            if let Some(url) = message.split_whitespace().find(|w| w.contains("user_code=")) {
                let landed = common::browse(url, None);
                self.0.push(format!("browser ended at {landed}"));
            }
            self.0.push(message.to_string());
        }
        fn warn(&mut self, message: &str) {
            self.0.push(message.to_string());
        }
        fn debug(&mut self, _level: u8, _message: &str) {}
        fn open_browser(&mut self, _url: &str) -> Result<(), String> {
            Err("no browser".into())
        }
        fn read_line(&mut self, _prompt: &str) -> age_oauth::Result<Option<String>> {
            Ok(None)
        }
        fn read_secret(&mut self, _prompt: &str) -> age_oauth::Result<Option<Secret>> {
            Ok(None)
        }
    }
    let mut person = Approver(Vec::new());
    let tokens = match engine.login(&mut session, &mut person, true, false) {
        Ok(LoginOutcome::LoggedIn(t)) => t,
        Ok(_) => panic!("expected a login"),
        Err(e) => panic!("{e}\n{:#?}", person.0),
    };
    assert_eq!(tokens.username.as_deref(), Some("alice"), "{:#?}", person.0);
    assert_eq!(tokens.provider_state["id_token_claims"]["iss"], common::real_oidc_issuer());
}

#[test]
fn a_refused_id_token_on_refresh_keeps_the_rotated_refresh_token() {
    let (sim, lab) = oidc_lab(&[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "sso");
    login(&engine, &mut session, &mut Person::new(Browser::Follow)).unwrap();
    lab.clock.advance(3600);
    sim.advance_clock(3600);
    // The refresh answer's id_token fails its check (a key rollover, the JWKS endpoint down):
    // the server has already rotated the refresh token, so the new one must still be kept.
    sim.faults(|f| f.bad_signature = true);
    let first = engine.token(&mut session, &mut Person::new(Browser::Follow), 0).unwrap();
    sim.faults(|f| f.bad_signature = false);
    lab.clock.advance(3600);
    sim.advance_clock(3600);
    let second = engine.token(&mut session, &mut Person::new(Browser::Follow), 0).unwrap();
    assert_ne!(first.access_token, second.access_token);
    assert_eq!(sim.count("refresh_reuse"), 0, "no retired refresh token was sent again");
}
