//! The engine against the in-process ArcGIS Portal simulator, with a manual clock: when it refreshes (margin, min_ttl,
//! rotation, 498/401 retry, never 403), login/logout, esri-app, one refresh across threads, and no secret in clear on disk.

use age_oauth::sandbox::{PortalConfig, PortalSim};
use age_oauth::CacheStore;
use age_oauth::Config;
use age_oauth::Error;
use age_oauth::Interaction;
use age_oauth::Paths;
use age_oauth::Secret;
use age_oauth::TokenSet;
use age_oauth::{Clock, ManualClock};
use age_oauth::{Engine, LoginOutcome, Session};
use age_oauth::{HttpClient, HttpRequest, HttpResponse, UreqClient, VerifySsl};
use age_oauth::{EXIT_LOGIN_REQUIRED, EXIT_SERVER};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};

const PUBLIC_APP: &str = "age-oauth-sandbox";
const CONFIDENTIAL_APP: &str = "age-oauth-sandbox-app";
const APP_SECRET: &str = "sandbox-app-secret";
/// The simulator's default lifetimes (PortalConfig::default()).
const ACCESS_LIFETIME: u64 = 1_800;
const REFRESH_LIFETIME: u64 = 1_209_600;
const APP_TOKEN_LIFETIME: u64 = 7_200 * 60;

// ------------------------------------------------------------------------------------------------
// Helpers: a simulator, a temp home, a manual clock, scripted person and HTTP
// ------------------------------------------------------------------------------------------------

struct Lab {
    sim: PortalSim,
    home: tempfile::TempDir,
    clock: Arc<ManualClock>,
}

impl Lab {
    fn new() -> Lab {
        let sim = PortalSim::start("127.0.0.1:0", PortalConfig::default()).expect("simulator starts");
        let clock = Arc::new(ManualClock::new(sim.now()));
        Lab { sim, home: tempfile::tempdir().unwrap(), clock }
    }

    fn paths(&self) -> Paths {
        Paths::under(self.home.path().to_path_buf())
    }

    /// Writes `[profiles.NAME]` pointing at the simulator.
    fn add_profile(&self, name: &str, provider: &str, client_id: &str, extra: &[(&str, Value)]) {
        let mut fields = Map::new();
        fields.insert("portal".into(), json!(self.sim.base_url()));
        fields.insert("client_id".into(), json!(client_id));
        for (k, v) in extra {
            fields.insert(k.to_string(), v.clone());
        }
        age_oauth::write_profile(&self.paths(), name, provider, &fields).unwrap();
    }

    /// An engine on the temp home with the real HTTP client.
    fn engine(&self) -> Engine {
        self.engine_with(Arc::new(UreqClient::new(&VerifySsl::On).unwrap()))
    }

    fn engine_with(&self, http: Arc<dyn HttpClient>) -> Engine {
        let clock: Arc<dyn Clock> = self.clock.clone();
        Engine::with_parts(self.paths(), clock, Box::new(move |_verify| Ok(http.clone())))
            .with_store(CacheStore::with_own_identity(self.paths()))
    }

    fn session(&self, engine: &Engine, name: &str) -> Session {
        self.session_with_env(engine, name, &[])
    }

    /// A session whose environment holds `env` (never the process environment).
    fn session_with_env(&self, engine: &Engine, name: &str, env: &[(&str, &str)]) -> Session {
        let paths = self.paths();
        let text = std::fs::read_to_string(&paths.config_file).unwrap();
        let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::from_parts(vec![(paths.config_file.clone(), text)], BTreeMap::new(), env).unwrap();
        engine.session(config.resolve(name, &[]).unwrap()).unwrap()
    }

    /// Logs in through the simulator's auto-approved OOB page; returns the new tokens.
    fn login(&self, engine: &Engine, session: &mut Session) -> TokenSet {
        let mut ui = ScriptedUi::default();
        match engine.login(session, &mut ui, false, true) {
            Ok(LoginOutcome::LoggedIn(tokens)) => tokens,
            Ok(LoginOutcome::AlreadyValid(_)) => {
                panic!("expected a login, the cache was already valid")
            }
            Ok(LoginOutcome::Refreshed(_)) => panic!("expected a login, got a refresh"),
            Err(e) => panic!("login failed: {e}\n{:#?}", ui.messages),
        }
    }

    /// Moves the engine's clock and the simulator's clock together.
    fn advance(&self, seconds: u64) {
        self.clock.advance(seconds);
        self.sim.advance_clock(seconds);
    }

    fn now(&self) -> u64 {
        self.clock.now()
    }

    fn cached(&self, engine: &Engine, profile: &str) -> TokenSet {
        engine.store.load(profile).unwrap().expect("a cache entry").tokens.expect("cached tokens")
    }

    /// Posts straight to the simulator's token endpoint (as another client would).
    fn raw_refresh(&self, client_id: &str, refresh_token: &str) -> Value {
        let request = HttpRequest::post_form(
            format!("{}/sharing/rest/oauth2/token", self.sim.base_url()),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("refresh_token", refresh_token),
                ("f", "json"),
            ],
        );
        let response = UreqClient::new(&VerifySsl::On).unwrap().send(&request).unwrap();
        serde_json::from_slice(&response.body).unwrap()
    }
}

/// A person who pastes the code: `info` remembers the authorize URL, `read_line` opens it and
/// returns the approval page's title (`SUCCESS code=…`), as a person would copy it.
#[derive(Default)]
struct ScriptedUi {
    messages: Vec<String>,
    authorize_url: Option<String>,
    prompts: usize,
}

impl Interaction for ScriptedUi {
    fn can_prompt(&self) -> bool {
        false
    }
    fn info(&mut self, message: &str) {
        if let Some(url) = message.split_whitespace().find(|w| w.contains("oauth2/authorize")) {
            self.authorize_url = Some(url.to_string());
        }
        self.messages.push(message.to_string());
    }
    fn warn(&mut self, message: &str) {
        self.messages.push(format!("warning: {message}"));
    }
    fn debug(&mut self, _level: u8, message: &str) {
        self.messages.push(format!("debug: {message}"));
    }
    fn open_browser(&mut self, _url: &str) -> Result<(), String> {
        Err("no browser in tests".into())
    }
    fn read_line(&mut self, _prompt: &str) -> age_oauth::Result<Option<String>> {
        self.prompts += 1;
        let Some(url) = self.authorize_url.take() else {
            return Ok(None);
        };
        let page = UreqClient::new(&VerifySsl::On)?.send(&HttpRequest::get(url))?;
        assert_eq!(page.status, 200, "the simulator auto-approves");
        Ok(page.html_title())
    }
    fn read_secret(&mut self, _prompt: &str) -> age_oauth::Result<Option<Secret>> {
        Ok(None)
    }
}

/// Forwards to the simulator, except that requests whose URL contains `intercept` get the
/// canned answers first (one each), and every request is logged by method and path.
struct ScriptedHttp {
    inner: UreqClient,
    intercept: &'static str,
    canned: Mutex<VecDeque<HttpResponse>>,
    log: Mutex<Vec<String>>,
}

impl ScriptedHttp {
    fn new(intercept: &'static str, canned: Vec<HttpResponse>) -> Arc<ScriptedHttp> {
        Arc::new(ScriptedHttp {
            inner: UreqClient::new(&VerifySsl::On).unwrap(),
            intercept,
            canned: Mutex::new(canned.into()),
            log: Mutex::new(Vec::new()),
        })
    }
    fn calls(&self, fragment: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(fragment)).count()
    }
}

impl HttpClient for ScriptedHttp {
    fn send(&self, request: &HttpRequest) -> age_oauth::Result<HttpResponse> {
        self.log.lock().unwrap().push(request.describe());
        if request.url.contains(self.intercept) {
            if let Some(answer) = self.canned.lock().unwrap().pop_front() {
                return Ok(answer);
            }
        }
        self.inner.send(request)
    }
}

fn json_answer(body: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

const INVALID_TOKEN: &str = r#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
const FORBIDDEN: &str = r#"{"error":{"code":403,"message":"You do not have permissions to access this resource or perform this operation.","details":[]}}"#;

fn unauthorized_401() -> HttpResponse {
    HttpResponse {
        status: 401,
        headers: vec![("Content-Type".into(), "text/plain".into())],
        body: b"Unauthorized".to_vec(),
    }
}

/// Asserts `Error::LoginRequired` for `profile`, exit code 3, naming the login command.
fn assert_login_required(result: age_oauth::Result<impl Sized>, profile: &str) -> String {
    match result {
        Err(e @ Error::LoginRequired { .. }) => {
            assert_eq!(e.exit_code(), EXIT_LOGIN_REQUIRED);
            let m = e.to_string();
            assert!(m.contains(&format!("run `age-oauth login --profile {profile}`")), "{m}");
            m
        }
        Err(other) => panic!("expected LoginRequired, got {other:?}"),
        Ok(_) => panic!("expected LoginRequired, got success"),
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A lab with one esri-oob profile "main" (public app), logged in.
fn logged_in_oob(lab: &Lab) -> (Engine, Session, TokenSet) {
    lab.add_profile("main", "esri-oob", PUBLIC_APP, &[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "main");
    let tokens = lab.login(&engine, &mut session);
    (engine, session, tokens)
}

// ------------------------------------------------------------------------------------------------
// Login and the fast path
// ------------------------------------------------------------------------------------------------

#[test]
fn login_stores_tokens_from_the_oob_flow() {
    let lab = Lab::new();
    let (engine, _session, tokens) = logged_in_oob(&lab);
    assert_eq!(lab.sim.count("authorize"), 1);
    assert_eq!(lab.sim.count("token:authorization_code"), 1);
    assert_eq!(tokens.username.as_deref(), Some("demo"));
    assert_eq!(tokens.expires_at, Some(lab.now() + ACCESS_LIFETIME));
    assert_eq!(tokens.refresh_expires_at, Some(lab.now() + REFRESH_LIFETIME));
    assert!(tokens.access_token.expose().starts_with("at_"));
    assert!(tokens.refresh_token.as_ref().unwrap().expose().starts_with("rt_"));
    assert_eq!(lab.cached(&engine, "main"), tokens);
}

#[test]
fn token_on_a_fresh_cache_makes_no_request() {
    let lab = Lab::new();
    let (engine, mut session, tokens) = logged_in_oob(&lab);
    let before = lab.sim.counts();
    let mut ui = ScriptedUi::default();
    let got = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_eq!(got.access_token.expose(), tokens.access_token.expose());
    let got = engine.token(&mut session, &mut ui, 600).unwrap();
    assert_eq!(got.access_token.expose(), tokens.access_token.expose());
    assert_eq!(lab.sim.counts(), before, "no request of any kind");
}

#[test]
fn login_on_a_valid_cache_does_nothing_unless_forced() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    let before = lab.sim.counts();
    let mut ui = ScriptedUi::default();
    match engine.login(&mut session, &mut ui, false, true).unwrap() {
        LoginOutcome::AlreadyValid(t) => {
            assert_eq!(t.access_token.expose(), first.access_token.expose())
        }
        _ => panic!("expected AlreadyValid"),
    }
    assert_eq!(lab.sim.counts(), before, "no request");
    assert_eq!(ui.prompts, 0, "no prompt");

    let mut ui = ScriptedUi::default();
    match engine.login(&mut session, &mut ui, true, true).unwrap() {
        LoginOutcome::LoggedIn(t) => {
            assert_ne!(t.access_token.expose(), first.access_token.expose());
            assert_ne!(t.refresh_token.as_ref().unwrap().expose(), first.refresh_token.as_ref().unwrap().expose());
            assert_eq!(lab.cached(&engine, "main"), t);
        }
        _ => panic!("expected LoggedIn with --force"),
    }
    assert_eq!(ui.prompts, 1);
    assert_eq!(lab.sim.count("token:authorization_code"), 2);
}

#[test]
fn login_on_a_stale_but_refreshable_cache_refreshes() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    lab.advance(ACCESS_LIFETIME - 30);
    let mut ui = ScriptedUi::default();
    match engine.login(&mut session, &mut ui, false, true).unwrap() {
        LoginOutcome::Refreshed(t) => {
            assert_ne!(t.access_token.expose(), first.access_token.expose())
        }
        _ => panic!("expected Refreshed"),
    }
    assert_eq!(ui.prompts, 0);
    assert_eq!(lab.sim.count("token:refresh_token"), 1);
    assert_eq!(lab.sim.count("token:authorization_code"), 1);
}

// ------------------------------------------------------------------------------------------------
// Refresh margin and min_ttl
// ------------------------------------------------------------------------------------------------

#[test]
fn refreshes_once_within_the_default_margin() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    assert_eq!(session.profile.engine.refresh_margin, 60);
    let mut ui = ScriptedUi::default();

    // Exactly 60 s left: still good.
    lab.advance(ACCESS_LIFETIME - 60);
    let got = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_eq!(got.access_token.expose(), first.access_token.expose());
    assert_eq!(lab.sim.count("token:refresh_token"), 0);

    // 59 s left: within the margin.
    lab.advance(1);
    let fresh = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_ne!(fresh.access_token.expose(), first.access_token.expose());
    assert_eq!(fresh.expires_at, Some(lab.now() + ACCESS_LIFETIME));
    assert_eq!(lab.sim.count("token:refresh_token"), 1);
    assert_eq!(lab.cached(&engine, "main"), fresh);

    let again = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_eq!(again.access_token.expose(), fresh.access_token.expose());
    assert_eq!(lab.sim.count("token:refresh_token"), 1, "a second call does not refresh again");
    assert_eq!(lab.sim.count("token"), 2, "one login + one refresh");
}

#[test]
fn refresh_margin_comes_from_the_profile() {
    let lab = Lab::new();
    lab.add_profile("main", "esri-oob", PUBLIC_APP, &[("refresh_margin", json!(300))]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "main");
    assert_eq!(session.profile.engine.refresh_margin, 300);
    let first = lab.login(&engine, &mut session);
    let mut ui = ScriptedUi::default();
    lab.advance(ACCESS_LIFETIME - 300);
    assert_eq!(engine.token(&mut session, &mut ui, 0).unwrap().access_token.expose(), first.access_token.expose());
    assert_eq!(lab.sim.count("token:refresh_token"), 0);
    lab.advance(1);
    assert_ne!(engine.token(&mut session, &mut ui, 0).unwrap().access_token.expose(), first.access_token.expose());
    assert_eq!(lab.sim.count("token:refresh_token"), 1);
}

#[test]
fn min_ttl_forces_a_refresh_and_a_shorter_grant_is_still_returned() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    let mut ui = ScriptedUi::default();
    lab.advance(200); // 1600 s left
    let same = engine.token(&mut session, &mut ui, 1600).unwrap();
    assert_eq!(same.access_token.expose(), first.access_token.expose());
    assert_eq!(lab.sim.count("token:refresh_token"), 0);

    let fresh = engine.token(&mut session, &mut ui, 1601).unwrap();
    assert_ne!(fresh.access_token.expose(), first.access_token.expose());
    assert_eq!(lab.sim.count("token:refresh_token"), 1);

    // The server grants 1800 s; asking for an hour refreshes once and returns what it got.
    let short = engine.token(&mut session, &mut ui, 3600).unwrap();
    assert_eq!(lab.sim.count("token:refresh_token"), 2, "exactly one more refresh, no loop");
    assert_eq!(short.remaining(lab.now()), Some(ACCESS_LIFETIME));
    assert_ne!(short.access_token.expose(), fresh.access_token.expose());
}

// ------------------------------------------------------------------------------------------------
// Refresh tokens: rotation, revocation, expiry
// ------------------------------------------------------------------------------------------------

#[test]
fn refresh_token_near_its_end_is_rotated_with_exchange_refresh_token() {
    let lab = Lab::new();
    lab.sim.set_refresh_token_lifetime(3600);
    let (engine, mut session, first) = logged_in_oob(&lab);
    let old_rt = first.refresh_token.clone().unwrap();
    assert_eq!(first.refresh_expires_at, Some(lab.now() + 3600));

    lab.advance(ACCESS_LIFETIME - 30);
    let mut ui = ScriptedUi::default();
    let fresh = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_eq!(lab.sim.count("token:exchange_refresh_token"), 1);
    assert_eq!(lab.sim.count("token:refresh_token"), 0);

    let stored = lab.cached(&engine, "main");
    assert_eq!(stored, fresh);
    let new_rt = stored.refresh_token.clone().unwrap();
    assert_ne!(new_rt.expose(), old_rt.expose(), "a new refresh token is stored");
    assert_eq!(stored.refresh_expires_at, Some(lab.now() + 3600));
    assert_eq!(stored.refresh_issued_at, Some(lab.now()));

    let old = lab.raw_refresh(PUBLIC_APP, old_rt.expose());
    assert_eq!(old["error"]["code"], json!(498), "the old refresh token is dead: {old}");
    let new = lab.raw_refresh(PUBLIC_APP, new_rt.expose());
    assert!(new["access_token"].is_string(), "the new refresh token works: {new}");
}

#[test]
fn refresh_token_with_a_long_life_left_uses_a_plain_refresh() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    lab.advance(ACCESS_LIFETIME - 30);
    let mut ui = ScriptedUi::default();
    let fresh = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_eq!(lab.sim.count("token:refresh_token"), 1);
    assert_eq!(lab.sim.count("token:exchange_refresh_token"), 0);
    let stored = lab.cached(&engine, "main");
    assert_eq!(stored, fresh);
    assert_eq!(stored.refresh_token.as_ref().unwrap().expose(), first.refresh_token.as_ref().unwrap().expose());
    assert_eq!(stored.refresh_expires_at, first.refresh_expires_at);
    assert_eq!(stored.username.as_deref(), Some("demo"));
}

#[test]
fn revoked_refresh_token_means_login_required_and_keeps_the_cache() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    lab.sim.revoke_all();
    lab.advance(ACCESS_LIFETIME - 30);
    let mut ui = ScriptedUi::default();
    let m = assert_login_required(engine.token(&mut session, &mut ui, 0), "main");
    assert!(m.contains("refused the refresh token"), "{m}");
    assert_eq!(lab.sim.count("token:refresh_token"), 1);
    assert!(engine.paths.cache_file("main").exists(), "the cache is not deleted");
    assert_eq!(lab.cached(&engine, "main"), first, "the cache still loads, unchanged");
}

#[test]
fn refresh_token_expired_by_the_clock_needs_no_request() {
    let lab = Lab::new();
    let (engine, mut session, first) = logged_in_oob(&lab);
    lab.clock.set(first.refresh_expires_at.unwrap() + 1);
    let before = lab.sim.counts();
    let mut ui = ScriptedUi::default();
    let m = assert_login_required(engine.token(&mut session, &mut ui, 0), "main");
    assert!(m.contains("the refresh token expired at"), "{m}");
    assert_eq!(lab.sim.counts(), before, "no request to the token endpoint (or anywhere)");
    assert_eq!(lab.sim.count("token"), 1);
}

// ------------------------------------------------------------------------------------------------
// A server rejecting a token the cache thinks is valid
// ------------------------------------------------------------------------------------------------

/// esri-oob "main", logged in with the scripted HTTP client.
fn whoami_lab(canned: Vec<HttpResponse>) -> (Lab, Arc<ScriptedHttp>, Engine, Session, TokenSet) {
    let lab = Lab::new();
    lab.add_profile("main", "esri-oob", PUBLIC_APP, &[]);
    let http = ScriptedHttp::new("community/self", canned);
    let engine = lab.engine_with(http.clone());
    let mut session = lab.session(&engine, "main");
    let tokens = lab.login(&engine, &mut session);
    (lab, http, engine, session, tokens)
}

#[test]
fn whoami_after_a_498_refreshes_once_and_retries_once() {
    let (lab, http, engine, mut session, first) = whoami_lab(vec![json_answer(INVALID_TOKEN)]);
    let mut ui = ScriptedUi::default();
    let me = engine.whoami(&mut session, &mut ui).unwrap();
    assert_eq!(me.username, "demo");
    assert_eq!(me.details["fullName"], json!("Demo User"));
    assert_eq!(lab.sim.count("token:refresh_token"), 1, "exactly one refresh");
    assert_eq!(http.calls("community/self"), 2, "the rejected call and one retry");
    assert_eq!(lab.sim.count("community/self"), 1, "the retry reached the portal");
    let stored = lab.cached(&engine, "main");
    assert_ne!(stored.access_token.expose(), first.access_token.expose());
}

#[test]
fn whoami_after_a_401_refreshes_once_and_retries_once() {
    let (lab, http, engine, mut session, _) = whoami_lab(vec![unauthorized_401()]);
    let mut ui = ScriptedUi::default();
    assert_eq!(engine.whoami(&mut session, &mut ui).unwrap().username, "demo");
    assert_eq!(lab.sim.count("token:refresh_token"), 1);
    assert_eq!(http.calls("community/self"), 2);
}

#[test]
fn whoami_with_a_second_498_after_refresh_is_login_required() {
    let (lab, http, engine, mut session, _) = whoami_lab(vec![json_answer(INVALID_TOKEN), json_answer(INVALID_TOKEN)]);
    let mut ui = ScriptedUi::default();
    let m = assert_login_required(engine.whoami(&mut session, &mut ui), "main");
    assert!(m.contains("still rejects the refreshed token"), "{m}");
    assert_eq!(lab.sim.count("token:refresh_token"), 1, "one refresh, no loop");
    assert_eq!(http.calls("community/self"), 2, "one retry, no loop");
    assert_eq!(http.calls("oauth2/token"), 2, "login + one refresh");
    assert_eq!(lab.sim.count("community/self"), 0);
}

#[test]
fn whoami_with_403_is_a_server_error_without_refresh() {
    let (lab, http, engine, mut session, first) = whoami_lab(vec![json_answer(FORBIDDEN)]);
    let mut ui = ScriptedUi::default();
    match engine.whoami(&mut session, &mut ui) {
        Err(e @ Error::Server(_)) => {
            assert_eq!(e.exit_code(), EXIT_SERVER);
            assert!(e.to_string().contains("permission denied"), "{e}");
        }
        Err(other) => panic!("expected Error::Server, got {other:?}"),
        Ok(id) => panic!("expected an error, got {}", id.username),
    }
    assert_eq!(lab.sim.count("token:refresh_token"), 0, "never refresh on 403");
    assert_eq!(http.calls("community/self"), 1, "no retry on 403");
    assert_eq!(lab.cached(&engine, "main"), first);
}

// ------------------------------------------------------------------------------------------------
// Several engines in one process
// ------------------------------------------------------------------------------------------------

#[test]
fn eight_threads_on_a_stale_cache_refresh_exactly_once() {
    let lab = Lab::new();
    let (engine, _session, first) = logged_in_oob(&lab);
    drop(engine);
    lab.advance(ACCESS_LIFETIME - 10);
    const THREADS: usize = 8;
    let barrier = Barrier::new(THREADS);
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let engine = lab.engine();
                    let mut session = lab.session(&engine, "main");
                    let mut ui = ScriptedUi::default();
                    barrier.wait();
                    engine.token(&mut session, &mut ui, 0).unwrap().access_token.expose().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(lab.sim.count("token:refresh_token"), 1, "one refresh for all threads");
    assert!(tokens.iter().all(|t| t == &tokens[0]), "all threads got the same token: {tokens:?}");
    assert_ne!(tokens[0], first.access_token.expose());
    let engine = lab.engine();
    assert_eq!(lab.cached(&engine, "main").access_token.expose(), tokens[0]);
}

// ------------------------------------------------------------------------------------------------
// esri-app
// ------------------------------------------------------------------------------------------------

fn app_lab(secret: &str) -> (Lab, Engine, Session) {
    let lab = Lab::new();
    lab.add_profile("app", "esri-app", CONFIDENTIAL_APP, &[]);
    let engine = lab.engine();
    let session = lab.session(&engine, "app");
    engine
        .store_secrets(
            session.name(),
            session.provider_name(),
            Some(&session),
            None,
            &[("client_secret".into(), Secret::new(secret))],
        )
        .unwrap();
    (lab, engine, session)
}

#[test]
fn esri_app_logs_in_and_refreshes_with_client_credentials() {
    let (lab, engine, mut session) = app_lab(APP_SECRET);
    let mut ui = ScriptedUi::default();
    let LoginOutcome::LoggedIn(first) = engine.login(&mut session, &mut ui, false, true).unwrap() else {
        panic!("expected LoggedIn")
    };
    assert_eq!(ui.prompts, 0, "no person needed");
    assert!(first.refresh_token.is_none());
    assert_eq!(first.username.as_deref(), Some(CONFIDENTIAL_APP));
    assert_eq!(first.expires_at, Some(lab.now() + APP_TOKEN_LIFETIME));
    assert_eq!(lab.sim.count("token:client_credentials"), 1);

    lab.advance(APP_TOKEN_LIFETIME - 30);
    let fresh = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_ne!(fresh.access_token.expose(), first.access_token.expose());
    assert_eq!(lab.sim.count("token:client_credentials"), 2, "refresh re-acquires");
    assert_eq!(lab.sim.count("token:refresh_token"), 0);

    let me = engine.whoami(&mut session, &mut ui).unwrap();
    assert_eq!(me.username, CONFIDENTIAL_APP);
    assert_eq!(me.details["app_title"], json!("Sandbox App"));
    let entry = engine.store.load("app").unwrap().unwrap();
    assert_eq!(entry.secrets["client_secret"].expose(), APP_SECRET, "the stored secret is kept");
}

#[test]
fn esri_app_with_a_wrong_secret_is_a_server_error() {
    let (lab, engine, mut session) = app_lab("not-the-secret");
    let mut ui = ScriptedUi::default();
    match engine.login(&mut session, &mut ui, false, true) {
        Err(e @ Error::Server(_)) => {
            assert_eq!(e.exit_code(), EXIT_SERVER);
            let m = e.to_string();
            assert!(m.contains("Invalid client_secret"), "{m}");
            assert!(!m.contains("not-the-secret"), "the secret is not echoed: {m}");
        }
        Err(other) => panic!("expected Error::Server, got {other:?}"),
        Ok(_) => panic!("a wrong secret was accepted"),
    }
    assert_eq!(lab.sim.count("token:client_credentials"), 1);
    assert!(engine.store.load("app").unwrap().unwrap().tokens.is_none());
}

#[test]
fn esri_app_secret_from_the_environment_overrides_the_store() {
    let (lab, engine, _) = app_lab("stale-stored-secret");
    let mut session = lab.session_with_env(&engine, "app", &[("AGE_OAUTH_CLIENT_SECRET", APP_SECRET)]);
    let mut ui = ScriptedUi::default();
    assert!(matches!(engine.login(&mut session, &mut ui, false, true), Ok(LoginOutcome::LoggedIn(_))));
    assert_eq!(lab.sim.count("token:client_credentials"), 1);
    let entry = engine.store.load("app").unwrap().unwrap();
    assert_eq!(entry.secrets["client_secret"].expose(), "stale-stored-secret", "env secrets are not stored");
}

// ------------------------------------------------------------------------------------------------
// Logout and what lands on disk
// ------------------------------------------------------------------------------------------------

/// esri-oob against the confidential app, with its client secret stored encrypted.
fn confidential_oob(lab: &Lab) -> (Engine, Session, TokenSet) {
    lab.add_profile("conf", "esri-oob", CONFIDENTIAL_APP, &[]);
    let engine = lab.engine();
    let mut session = lab.session(&engine, "conf");
    engine
        .store_secrets(
            session.name(),
            session.provider_name(),
            Some(&session),
            None,
            &[("client_secret".into(), Secret::new(APP_SECRET))],
        )
        .unwrap();
    let tokens = lab.login(&engine, &mut session);
    (engine, session, tokens)
}

#[test]
fn logout_revokes_forgets_tokens_and_keeps_secrets() {
    let lab = Lab::new();
    let (engine, mut session, _) = confidential_oob(&lab);
    assert_eq!(lab.sim.live_tokens().refresh_tokens, 1);
    let mut ui = ScriptedUi::default();
    let report = engine.logout(&mut session, &mut ui).unwrap();
    assert_eq!(lab.sim.count("revokeToken"), 1);
    assert_eq!(lab.sim.live_tokens().refresh_tokens, 0, "the refresh token is revoked at the portal");
    assert_eq!(lab.sim.live_tokens().access_tokens, 0, "its access tokens go with it");
    assert!(report.revocation.as_deref().unwrap().contains("revoked the refresh token"), "{:?}", report.revocation);
    assert!(report.removed_tokens);
    assert!(report.kept_secrets);

    let entry = engine.store.load("conf").unwrap().expect("the cache stays for the secrets");
    assert!(entry.tokens.is_none());
    assert_eq!(entry.secrets["client_secret"].expose(), APP_SECRET);
    assert_login_required(engine.token(&mut session, &mut ui, 0), "conf");
}

#[test]
fn logout_without_secrets_removes_the_cache() {
    let lab = Lab::new();
    let (engine, mut session, _) = logged_in_oob(&lab);
    let mut ui = ScriptedUi::default();
    let report = engine.logout(&mut session, &mut ui).unwrap();
    assert!(report.removed_tokens && !report.kept_secrets);
    assert_eq!(lab.sim.count("revokeToken"), 1);
    assert!(engine.store.load("main").unwrap().is_none());
    assert!(!engine.paths.cache_file("main").exists());
    assert_login_required(engine.token(&mut session, &mut ui, 0), "main");
}

#[test]
fn no_token_or_secret_is_ever_on_disk_in_clear() {
    let lab = Lab::new();
    lab.sim.set_refresh_token_lifetime(3600); // so the refresh rotates and two refresh tokens exist
    let (engine, mut session, first) = confidential_oob(&lab);
    lab.advance(ACCESS_LIFETIME - 30);
    let mut ui = ScriptedUi::default();
    let second = engine.token(&mut session, &mut ui, 0).unwrap();
    assert_eq!(lab.sim.count("token:exchange_refresh_token"), 1);

    let needles = [
        first.access_token.expose().to_string(),
        first.refresh_token.as_ref().unwrap().expose().to_string(),
        second.access_token.expose().to_string(),
        second.refresh_token.as_ref().unwrap().expose().to_string(),
        APP_SECRET.to_string(),
    ];
    let files = files_under(lab.home.path());
    let cache = engine.paths.cache_file("conf");
    assert!(files.contains(&cache), "{files:?}");
    assert!(files.contains(&engine.paths.config_file), "{files:?}");
    let header = std::fs::read(&cache).unwrap();
    assert!(header.starts_with(b"age-encryption.org/v1"), "the cache is an age file");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for needle in &needles {
            assert!(!contains(&bytes, needle.as_bytes()), "{} holds a secret in clear", path.display());
        }
    }
    // And it all decrypts back.
    let entry = engine.store.load("conf").unwrap().unwrap();
    assert_eq!(entry.tokens.as_ref(), Some(&second));
    assert_eq!(entry.secrets["client_secret"].expose(), APP_SECRET);
}

#[cfg(unix)]
#[test]
fn cache_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new();
    let (engine, _, _) = logged_in_oob(&lab);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&engine.paths.cache_file("main")), 0o600);
    assert_eq!(mode(&engine.paths.identity_file()), 0o600);
    assert_eq!(mode(&engine.paths.cache_dir()), 0o700);
}
