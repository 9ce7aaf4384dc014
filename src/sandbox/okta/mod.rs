//! Local simulator of an Okta org as a SAML IdP with the classic authentication API: `/api/v1/authn` and its
//! transaction states, MFA factors (Okta Verify push with number challenge, TOTP per RFC 6238, SMS), Okta
//! error objects with real status codes, 429 with `X-Rate-Limit-*`, single-use session tokens,
//! `sessionCookieRedirect`, the sessions API and the app's SSO endpoint. `authn` and `sso` hold the endpoints.

mod authn;
mod sso;
mod totp;

pub use totp::totp_code;

use super::http::{html_page, Incoming, Listener, Reply};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// The TOTP seed of the sandbox's users (RFC 6238's SHA-1 test seed), so that anyone can compute the code.
pub const SANDBOX_TOTP_SEED: &[u8] = b"12345678901234567890";

/// What a push sent to a user's phone does: answered after `polls` polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushAnswer {
    /// The user approves.
    Approve,
    /// The user taps "No, it's not me".
    Reject,
    /// Okta gives up waiting (`factorResult: TIMEOUT`).
    Timeout,
    /// Nobody ever answers: the client's own `mfa_timeout` must end the wait.
    Never,
}

/// How a user's pushes go.
#[derive(Clone, Debug)]
pub struct PushScript {
    /// The answer.
    pub answer: PushAnswer,
    /// The poll that brings the answer (1: the first poll after the push was sent).
    pub polls: u32,
    /// Okta's number challenge: the number the user must pick on the phone (`correctAnswer`).
    pub number_challenge: Option<u32>,
}

/// A factor a user enrolled.
#[derive(Clone, Debug)]
pub enum OktaFactor {
    /// Okta Verify push.
    Push(PushScript),
    /// Okta Verify / Google Authenticator TOTP with this seed (6 digits, 30 s, SHA-1).
    Totp(Vec<u8>),
    /// SMS to this (masked) phone number; the simulator "sends" a random code (`OktaSim::last_sms`).
    Sms(String),
}

/// An account's state at sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OktaUserState {
    /// Signs in normally.
    Active,
    /// `LOCKED_OUT` (an org that shows lockout failures).
    LockedOut,
    /// `PASSWORD_EXPIRED`.
    PasswordExpired,
    /// Must enroll a factor first (`MFA_ENROLL`).
    MustEnroll,
}

/// A user of the simulated org.
#[derive(Clone, Debug)]
pub struct OktaUser {
    /// The Okta login (an email address), also the SAML `NameID`.
    pub login: String,
    /// The password.
    pub password: String,
    /// Enrolled factors; none = no MFA.
    pub factors: Vec<OktaFactor>,
    /// The account's state.
    pub state: OktaUserState,
}

/// The SAML app (the ArcGIS portal) the org signs users in to.
#[derive(Clone, Debug, Default)]
pub struct OktaSamlApp {
    /// The portal's SP entity ID (the assertion's audience).
    pub audience: String,
    /// The portal's assertion consumer service URL (only requests naming it are answered).
    pub acs_url: String,
}

/// How an `OktaSim` behaves.
#[derive(Clone, Debug)]
pub struct OktaConfig {
    /// The users.
    pub users: Vec<OktaUser>,
    /// The SAML app (set once the portal's URL is known: `OktaSim::set_app`).
    pub app: OktaSamlApp,
    /// Seconds an Okta session (`sid`) lives.
    pub session_lifetime: u64,
    /// `.well-known/okta-organization` pipeline: `v1` (Classic) or `idx` (Identity Engine).
    pub pipeline: String,
    /// An app sign-on policy classic authn cannot satisfy: the SSO endpoint answers a step-up page even
    /// with a session (Identity Engine).
    pub step_up: bool,
    /// A hostile IdP: the SAML form posts to this URL instead of the app's ACS.
    pub form_action_override: Option<String>,
}

impl Default for OktaConfig {
    fn default() -> Self {
        let user = |login: &str, factors: Vec<OktaFactor>| OktaUser {
            login: login.to_string(),
            password: "okta-password".to_string(),
            factors,
            state: OktaUserState::Active,
        };
        let push = |answer, number_challenge| OktaFactor::Push(PushScript { answer, polls: 1, number_challenge });
        OktaConfig {
            users: vec![
                user("push@example.test", vec![push(PushAnswer::Approve, None)]),
                user("totp@example.test", vec![OktaFactor::Totp(SANDBOX_TOTP_SEED.to_vec())]),
                user("sms@example.test", vec![OktaFactor::Sms("+1 XXX-XXX-0042".into())]),
                user("nomfa@example.test", Vec::new()),
            ],
            app: OktaSamlApp::default(),
            session_lifetime: 7_200,
            pipeline: "v1".into(),
            step_up: false,
            form_action_override: None,
        }
    }
}

/// A classic authn transaction (`stateToken`).
#[derive(Clone, Debug)]
struct Transaction {
    login: String,
    /// The factor being verified and its progress.
    challenge: Option<Challenge>,
    /// Set once the transaction succeeded: nothing more may be done with it.
    done: bool,
    expires_at: u64,
}

#[derive(Clone, Debug)]
struct Challenge {
    factor_id: String,
    polls: u32,
    sms_code: Option<String>,
    remember_device: bool,
}

/// An Okta session.
#[derive(Clone, Debug)]
struct Session {
    login: String,
    expires_at: u64,
}

struct OktaState {
    config: OktaConfig,
    base_url: String,
    clock_offset_secs: i64,
    transactions: HashMap<String, Transaction>,
    /// Single-use session tokens → login, expiry.
    session_tokens: HashMap<String, (String, u64)>,
    sessions: HashMap<String, Session>,
    /// (login, DT cookie) pairs whose MFA was remembered.
    remembered_devices: Vec<(String, String)>,
    /// The next N authn calls answer 429.
    rate_limited: u32,
    last_sms: HashMap<String, String>,
    counts: BTreeMap<String, u64>,
}

impl OktaState {
    fn now(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        wall.saturating_add_signed(self.clock_offset_secs)
    }

    fn bump(&mut self, key: &str) {
        *self.counts.entry(key.to_string()).or_insert(0) += 1;
    }

    fn user(&self, login: &str) -> Option<OktaUser> {
        self.config.users.iter().find(|u| u.login.eq_ignore_ascii_case(login)).cloned()
    }

    /// The SSO URL of the app.
    fn sso_url(&self) -> String {
        format!("{}/app/arcgis/exk0sandbox/sso/saml", self.base_url)
    }

    fn session(&mut self, req: &Incoming) -> Option<Session> {
        let now = self.now();
        let sid = req.cookies.get("sid")?;
        let session = self.sessions.get(sid).filter(|s| s.expires_at > now).cloned();
        if session.is_none() {
            self.sessions.remove(sid);
        }
        session
    }
}

/// A random identifier (Okta-style prefix + 20 url-safe characters).
fn random_id(prefix: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..20).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect();
    format!("{prefix}{tail}")
}

/// An Okta error object with its real HTTP status.
fn okta_error(status: u16, code: &str, summary: &str, causes: &[&str]) -> Reply {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    Reply::JsonStatus {
        status,
        body: json!({"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": random_id("oae"), "errorCauses": causes}),
    }
}

fn lock(state: &Mutex<OktaState>) -> MutexGuard<'_, OktaState> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn route(state: &Mutex<OktaState>, req: &Incoming) -> Reply {
    let mut st = lock(state);
    let st = &mut *st;
    let path = req.path.trim_end_matches('/');
    if let Some(rest) = path.strip_prefix("/api/v1/authn/factors/") {
        if let Some(factor_id) = rest.strip_suffix("/verify").filter(|f| !f.contains('/')) {
            return authn::verify(st, req, factor_id);
        }
    }
    match path {
        "/.well-known/okta-organization" => sso::organization(st),
        "/api/v1/authn" if req.is_post => authn::authn(st, req),
        "/api/v1/authn/cancel" if req.is_post => authn::cancel(st, req),
        "/login/sessionCookieRedirect" => sso::session_cookie_redirect(st, req),
        "/api/v1/sessions" if req.is_post => sso::create_session(st, req),
        "/api/v1/sessions/me" if req.method == "DELETE" => sso::end_session(st, req),
        "/api/v1/sessions/me" => sso::session_me(st, req),
        "/app/arcgis/exk0sandbox/sso/saml" => sso::sso(st, req),
        "/login/login.htm" => sso::sign_in_page(st, None),
        "/login/step-up/redirect" => {
            let token = req.param("stateToken").map(str::to_string);
            sso::sign_in_page(st, token.as_deref())
        }
        _ => {
            st.bump("not_found");
            html_page(404, "Not Found", "<div class=\"error-content\"><h1>404</h1><p>Page not found.</p></div>")
        }
    }
}

/// A running Okta org simulator. Dropping it stops its threads and frees the port.
pub struct OktaSim {
    listener: Listener,
    state: Arc<Mutex<OktaState>>,
}

impl OktaSim {
    /// Binds (e.g. `"127.0.0.1:0"`) and serves.
    pub fn start(bind: &str, config: OktaConfig) -> std::io::Result<OktaSim> {
        let state = Arc::new(Mutex::new(OktaState {
            config,
            base_url: String::new(),
            clock_offset_secs: 0,
            transactions: HashMap::new(),
            session_tokens: HashMap::new(),
            sessions: HashMap::new(),
            remembered_devices: Vec::new(),
            rate_limited: 0,
            last_sms: HashMap::new(),
            counts: BTreeMap::new(),
        }));
        let shared = state.clone();
        let listener = Listener::start(bind, "okta-sim", move |reach| {
            lock(&shared).base_url = format!("http://{reach}");
            Arc::new(move |req: &Incoming| route(&shared, req))
        })?;
        Ok(OktaSim { listener, state })
    }

    /// The org URL, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.listener.scheme, self.listener.reach)
    }

    /// The app's SAML SSO URL (what the portal sends users to).
    pub fn sso_url(&self) -> String {
        lock(&self.state).sso_url()
    }

    /// The org's SAML issuer (entity ID).
    pub fn issuer(&self) -> String {
        format!("{}/exk0sandbox", self.base_url())
    }

    /// Changes the configuration.
    pub fn update_config(&self, change: impl FnOnce(&mut OktaConfig)) {
        change(&mut lock(&self.state).config);
    }

    /// Registers the portal as the org's SAML app.
    pub fn set_app(&self, app: OktaSamlApp) {
        self.update_config(|c| c.app = app);
    }

    /// The next `n` authn requests answer 429 `E0000047` (reset one second later).
    pub fn rate_limit_next(&self, n: u32) {
        lock(&self.state).rate_limited = n;
    }

    /// The code most recently "texted" to `login`.
    pub fn last_sms(&self, login: &str) -> Option<String> {
        lock(&self.state).last_sms.get(login).cloned()
    }

    /// Ends every Okta session (as an admin's "clear sessions" or their expiry would).
    pub fn end_sessions(&self) {
        lock(&self.state).sessions.clear();
    }

    /// Live sessions now.
    pub fn live_sessions(&self) -> usize {
        let st = lock(&self.state);
        let now = st.now();
        st.sessions.values().filter(|s| s.expires_at > now).count()
    }

    /// Requests seen per key (`authn`, `verify`, `poll`, `sessionCookieRedirect`, `sso`, `sso:form`, ...).
    pub fn count(&self, key: &str) -> u64 {
        lock(&self.state).counts.get(key).copied().unwrap_or(0)
    }

    /// Every key's count.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.state).counts.clone()
    }

    /// Moves the org's clock forward (sessions, transactions and TOTP windows follow it).
    pub fn advance_clock(&self, seconds: u64) {
        let mut st = lock(&self.state);
        st.clock_offset_secs = st.clock_offset_secs.saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// The org's current time.
    pub fn now(&self) -> u64 {
        lock(&self.state).now()
    }

    /// Blocks while the simulator serves (the `sandbox` command).
    pub fn serve_forever(mut self) {
        self.listener.join();
    }
}

/// An Okta org and a portal whose organisation federates with it (SAML), wired to each other.
pub struct FederatedOrg {
    /// The portal (its sign-in goes to the Okta org).
    pub portal: super::PortalSim,
    /// The Okta org.
    pub okta: OktaSim,
}

impl FederatedOrg {
    /// Starts both (e.g. `"127.0.0.1:0"` each) with the sandbox's users and apps.
    pub fn start(okta_bind: &str, portal_bind: &str, okta: OktaConfig) -> std::io::Result<FederatedOrg> {
        let portal = super::PortalSim::start(portal_bind, super::PortalConfig::default())?;
        let okta = OktaSim::start(okta_bind, okta)?;
        let (audience, acs_url) = portal.saml_sp();
        okta.set_app(OktaSamlApp { audience, acs_url });
        let idp = super::PortalSamlIdp {
            name: "Okta".into(),
            sso_url: okta.sso_url(),
            issuer: okta.issuer(),
            signing_cert: None,
        };
        portal.update_config(|c| c.saml = Some(idp));
        Ok(FederatedOrg { portal, okta })
    }
}
