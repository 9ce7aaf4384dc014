//! `Client`: a blocking HTTP client for Rust programs that adds a profile's credential in its
//! provider's style, refreshes it before it expires, and on a rejected token (HTTP 401, ArcGIS
//! 498/499 even inside an HTTP 200 body) refreshes once and retries once. 403 is reported, never retried.

use crate::engine::{Engine, Session};
use crate::error::{Error, ServerErrorKind};
use crate::http::{HttpRequest, HttpResponse};
use crate::interact::Interaction;
use crate::registry::{AuthVerdict, Secrets};
use crate::token::TokenSet;
use std::sync::{Arc, Mutex};

/// What went wrong with a request through a [`Client`]: the four outcomes a caller acts on
/// differently, and the local set-up (configuration, cache) that prevented a request at all.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No usable credential: a person must run `age-oauth login` (or fix `AGE_OAUTH_API_KEY`).
    #[error("{message}; run `age-oauth login --profile {profile}`")]
    LoginRequired {
        /// The profile.
        profile: String,
        /// Why.
        message: String,
    },
    /// The server took the credential but does not allow this request (HTTP 403, ArcGIS 403): not retried.
    #[error("HTTP {status}: the credential of profile '{profile}' is not allowed to do this: {message}")]
    Forbidden {
        /// The profile.
        profile: String,
        /// The HTTP status.
        status: u16,
        /// The server's words (printable, shortened).
        message: String,
    },
    /// The server failed or refused in a way no credential fixes (HTTP 5xx, a token endpoint's error).
    #[error("server error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Server {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The server could not be reached or did not answer in time.
    #[error("transport: {0}")]
    Transport(String),
    /// The configuration, the cache or the request itself is wrong (see the inner error).
    #[error(transparent)]
    Setup(Error),
}

impl ClientError {
    fn from_engine(profile: &str, e: Error) -> ClientError {
        match e {
            Error::LoginRequired { profile, message } => ClientError::LoginRequired { profile, message },
            Error::TokenRejected(message) => ClientError::LoginRequired { profile: profile.to_string(), message },
            Error::Server(s) => match s.kind {
                ServerErrorKind::Unreachable | ServerErrorKind::Timeout => ClientError::Transport(s.message),
                ServerErrorKind::Status(status) => ClientError::Server { status: Some(status), message: s.message },
                ServerErrorKind::Refused => ClientError::Server { status: None, message: s.message },
            },
            other => ClientError::Setup(other),
        }
    }
}

/// The person at the keyboard, for a library: nobody. Nothing is printed, nothing is asked.
struct Unattended;

impl Interaction for Unattended {
    fn can_prompt(&self) -> bool {
        false
    }
    fn info(&mut self, _message: &str) {}
    fn warn(&mut self, _message: &str) {}
    fn debug(&mut self, _level: u8, _message: &str) {}
    fn shows_debug(&self, _level: u8) -> bool {
        false
    }
    fn open_browser(&mut self, _url: &str) -> std::result::Result<(), String> {
        Err("a library client opens no browser".into())
    }
    fn read_line(&mut self, _prompt: &str) -> crate::error::Result<Option<String>> {
        Ok(None)
    }
    fn read_secret(&mut self, _prompt: &str) -> crate::error::Result<Option<crate::secret::Secret>> {
        Ok(None)
    }
}

/// The credential in use and the secrets its sends may need (web-tier passwords), kept in memory
/// until the credential nears its end: a request then costs no cache read.
pub(crate) type Held = Arc<(TokenSet, Secrets)>;

/// A blocking HTTP client for one profile (see the crate documentation for an example).
///
/// Requests may only go to the origins the profile's credentials belong to (its `portal`,
/// `api_url`...), unless [`Client::allow_other_host`] says otherwise. The client is `Sync`: share
/// it between threads; requests run in parallel, refreshes one at a time under the profile's lock.
pub struct Client {
    engine: Engine,
    session: Session,
    held: Mutex<Option<Held>>,
    /// Taken by the one thread fetching a credential from the engine.
    fetching: Mutex<()>,
    allow_other_host: bool,
    /// The provider's origins, computed once: every request's destination is checked against them.
    origins: Vec<crate::binding::BoundOrigin>,
}

impl Client {
    /// A client over an engine and a session (a profile with its provider built).
    pub fn new(engine: Engine, session: Session) -> Client {
        let origins = session.provider.origins();
        Client { engine, session, held: Mutex::new(None), fetching: Mutex::new(()), allow_other_host: false, origins }
    }

    /// A client for profile `name` as the `age-oauth` command sees it: the user's configuration, the
    /// working directory's `age-oauth.toml` and `.env`, and the `AGE_OAUTH_*` variables of `env`
    /// (usually `Env::from_process()`, taken once by the program: the library reads no variable itself).
    pub fn for_profile(name: &str, env: &crate::env::Env) -> Result<Client, ClientError> {
        let paths = crate::paths::Paths::from_env(env).map_err(ClientError::Setup)?;
        let clock = crate::clock::from_env(env).map_err(ClientError::Setup)?;
        let engine = Engine::with_clock(paths, clock);
        let cwd = std::env::current_dir()
            .map_err(|e| ClientError::Setup(Error::io("cannot read the working directory", e)))?;
        let session = engine.open(&cwd, Some(name)).map_err(ClientError::Setup)?;
        Ok(Client::new(engine, session))
    }

    /// Lets requests go to hosts outside the profile's origins (the credential goes with them).
    #[must_use]
    pub fn allow_other_host(mut self, allow: bool) -> Client {
        self.allow_other_host = allow;
        self
    }

    /// The profile's name.
    pub fn profile(&self) -> &str {
        self.session.name()
    }

    /// `GET url` with the credential.
    pub fn get(&self, url: &str) -> Result<HttpResponse, ClientError> {
        self.send(&HttpRequest::get(url))
    }

    /// Sends `request` with the credential; see the type's documentation for the rules.
    /// Answers below 500 that are not about the credential come back as they are (a 404 is the caller's).
    pub fn send(&self, request: &HttpRequest) -> Result<HttpResponse, ClientError> {
        self.check_destination(&request.url)?;
        let held = self.credential()?;
        let (response, verdict) = self.send_once(&held, request)?;
        let held = match self.judged(response, verdict, false) {
            Judged::Done(result) => return result,
            Judged::Retry => self.refreshed_after(&held)?,
        };
        let (response, verdict) = self.send_once(&held, request)?;
        self.judged(response, verdict, true).into_final(self.profile())
    }

    /// The environment snapshot the client was built with, for the `reqwest` feature's `AsyncClient`.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn env(&self) -> &crate::env::Env {
        self.engine.paths.env()
    }

    /// The session, for the `reqwest` feature's `AsyncClient`.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// Refuses a URL outside the profile's origins (unless allowed), before anything is sent.
    pub(crate) fn check_destination(&self, url: &str) -> Result<(), ClientError> {
        if self.allow_other_host {
            return Ok(());
        }
        crate::binding::check_url_among(&self.session, &self.origins, url).map_err(ClientError::Setup)
    }

    /// The held credential while it is good for the refresh margin: no I/O, no lock but the client's.
    pub(crate) fn fresh_held(&self) -> Option<Held> {
        let now = self.engine.clock.now();
        let margin = self.session.profile.engine.refresh_margin;
        let slot = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.as_ref().filter(|h| h.0.valid_for(now, margin)).cloned()
    }

    /// The held credential, or a fresh one from the engine (cache, refresh under the lock): blocking.
    pub(crate) fn credential(&self) -> Result<Held, ClientError> {
        if let Some(held) = self.fresh_held() {
            return Ok(held);
        }
        // One thread fetches while the others wait here, not on `held`: a reader (an async task on its
        // executor thread) only ever takes `held` for a moment, never across the network.
        let _gate = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = self.fresh_held() {
            return Ok(held); // fetched meanwhile by the thread we waited for
        }
        let (tokens, secrets) = self
            .engine
            .token_and_secrets(&self.session, &mut Unattended)
            .map_err(|e| ClientError::from_engine(self.session.name(), e))?;
        let held: Held = Arc::new((tokens, secrets));
        *self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(held.clone());
        Ok(held)
    }

    /// The server rejected `rejected`: one refresh (blocking), kept for the next requests.
    pub(crate) fn refreshed_after(&self, rejected: &Held) -> Result<Held, ClientError> {
        let fresh = self
            .engine
            .refresh_rejected(&self.session, &mut Unattended, &rejected.0)
            .map_err(|e| ClientError::from_engine(self.session.name(), e))?;
        let held: Held = Arc::new((fresh, rejected.1.clone()));
        *self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(held.clone());
        Ok(held)
    }

    /// What an answer means: the result, or (first answer only) "refresh once and retry".
    pub(crate) fn judged(&self, response: HttpResponse, verdict: AuthVerdict, retried: bool) -> Judged {
        let profile = self.session.name();
        Judged::Done(match verdict {
            AuthVerdict::Accepted if response.status >= 500 => {
                Err(ClientError::Server { status: Some(response.status), message: short_text(&response) })
            }
            AuthVerdict::Accepted => Ok(response),
            AuthVerdict::Forbidden => Err(ClientError::Forbidden {
                profile: profile.to_string(),
                status: response.status,
                message: short_text(&response),
            }),
            AuthVerdict::Rejected if self.session.env_api_key().is_some() => Err(ClientError::LoginRequired {
                profile: profile.to_string(),
                message: format!("the server rejects the key in AGE_OAUTH_API_KEY (HTTP {})", response.status),
            }),
            AuthVerdict::Rejected if !retried => return Judged::Retry,
            AuthVerdict::Rejected => Err(ClientError::LoginRequired {
                profile: profile.to_string(),
                message: format!(
                    "the server still rejects the refreshed credential of profile '{profile}' (HTTP {})",
                    response.status
                ),
            }),
        })
    }

    fn send_once(&self, held: &Held, request: &HttpRequest) -> Result<(HttpResponse, AuthVerdict), ClientError> {
        self.engine
            .send_with(&self.session, &mut Unattended, (&held.0, &held.1), request)
            .map_err(|e| ClientError::from_engine(self.session.name(), e))
    }
}

/// What to do with an answer.
pub(crate) enum Judged {
    /// The request's outcome.
    Done(Result<HttpResponse, ClientError>),
    /// The credential was rejected: refresh once and send once more.
    Retry,
}

impl Judged {
    /// The outcome of a retried request (which `judged` never asks to retry again).
    pub(crate) fn into_final(self, profile: &str) -> Result<HttpResponse, ClientError> {
        match self {
            Judged::Done(result) => result,
            Judged::Retry => Err(ClientError::LoginRequired {
                profile: profile.to_string(),
                message: "the server still rejects the refreshed credential".into(),
            }),
        }
    }
}

/// The start of a body, printable, for error messages.
fn short_text(response: &HttpResponse) -> String {
    let text = String::from_utf8_lossy(&response.body);
    let short: String = text.chars().take(300).collect();
    crate::redact::printable(&short)
}
