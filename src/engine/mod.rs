//! The engine: runs a provider's flow, keeps the result in the encrypted cache, refreshes under a lock.
//! Every cache write goes through `Engine::update`: lock the sidecar → guarded re-read → change → bind → atomic write.

mod direct;
mod env_key;
pub mod federation;
mod fleet;
mod flows;
mod update;

pub use env_key::ENV_SOURCE;
pub use update::{Reread, UpdateOptions};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ResolvedProfile};
use crate::error::Result;
use crate::http::{HttpClient, UreqClient, VerifySsl};
use crate::interact::Interaction;
use crate::paths::Paths;
use crate::registry::{ProfileSettings, Provider, SecretOrigin, Secrets};
use crate::store::{CacheEntry, CacheStore};
use crate::token::TokenSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Makes the HTTP client for a profile's TLS settings (injected in tests).
pub type HttpFactory = Box<dyn Fn(&VerifySsl) -> Result<Arc<dyn HttpClient>> + Send + Sync>;

/// Runs flows and owns the cache: every read and write of a profile's cache goes through it.
pub struct Engine {
    /// Where the configuration, caches and identity live.
    pub paths: Paths,
    /// The encrypted cache.
    pub store: CacheStore,
    /// The clock every expiry is judged by.
    pub clock: Arc<dyn Clock>,
    http_factory: HttpFactory,
    /// Longest wait for a profile's lock before a refresh reports "another process is stuck".
    lock_wait: Duration,
}

/// A profile with its provider built and its secrets gathered.
pub struct Session {
    /// The profile's resolved settings.
    pub profile: ResolvedProfile,
    /// The profile's provider, built from them.
    pub provider: Box<dyn Provider>,
    http: OnceLock<Arc<dyn HttpClient>>,
    /// `request --allow-other-host`: authenticated requests may leave the bound origins.
    pub allow_other_host: bool,
}

impl Session {
    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.profile.name
    }
    /// The provider's registered name (`esri-oob`, `oidc`, ...).
    pub fn provider_name(&self) -> &'static str {
        self.profile.provider.name
    }
}

/// What `login` did.
pub enum LoginOutcome {
    /// The cached tokens were still good.
    AlreadyValid(TokenSet),
    /// The tokens were refreshed without a person.
    Refreshed(TokenSet),
    /// A full sign-in ran.
    LoggedIn(TokenSet),
}

/// What `logout` did.
pub struct LogoutReport {
    /// What the server said about revoking the tokens, when it was asked.
    pub revocation: Option<String>,
    /// The cached tokens were removed.
    pub removed_tokens: bool,
    /// Stored secrets (client secret, password) were kept.
    pub kept_secrets: bool,
}

impl Engine {
    /// The engine with the system clock and the real HTTP client.
    pub fn new(paths: Paths) -> Self {
        Engine::with_clock(paths, Arc::new(SystemClock))
    }

    /// The real HTTP client (proxies and `AGE_OAUTH_HTTP_TIMEOUT` from the environment snapshot
    /// `paths` carries), with the given clock.
    pub fn with_clock(paths: Paths, clock: Arc<dyn Clock>) -> Self {
        let timeout = crate::http::timeout_from_env(paths.env()).unwrap_or(crate::http::DEFAULT_TIMEOUT);
        let env = paths.env().clone();
        Engine::with_parts(
            paths,
            clock,
            Box::new(move |v| Ok(Arc::new(UreqClient::with_env(v, &env)?) as Arc<dyn HttpClient>)),
        )
        .with_lock_wait(lock_wait_for(timeout))
    }

    /// The engine with an injected clock and HTTP client factory (tests).
    pub fn with_parts(paths: Paths, clock: Arc<dyn Clock>, http_factory: HttpFactory) -> Self {
        let store = CacheStore::new(paths.clone());
        Engine { paths, store, clock, http_factory, lock_wait: lock_wait_for(crate::http::DEFAULT_TIMEOUT) }
    }

    /// Replaces the cache store (for a store with a fixed key source).
    pub fn with_store(mut self, store: CacheStore) -> Self {
        self.paths = store.paths().clone();
        self.store = store;
        self
    }

    /// Sets the longest wait for a profile's refresh lock.
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Builds the provider for a resolved profile.
    pub fn session(&self, profile: ResolvedProfile) -> Result<Session> {
        let settings = ProfileSettings { profile: profile.name.clone(), values: profile.provider_values.clone() };
        let provider = (profile.provider.build)(&settings)?;
        Ok(Session { profile, provider, http: OnceLock::new(), allow_other_host: false })
    }

    /// Loads config from the environment and `cwd`, selects and builds a profile.
    pub fn open(&self, cwd: &std::path::Path, profile_flag: Option<&str>) -> Result<Session> {
        let config = Config::load(&self.paths, cwd)?;
        let name = config.select(profile_flag)?;
        self.session(config.resolve(&name, &[])?)
    }

    fn http(&self, session: &Session, ui: &mut dyn Interaction) -> Result<Arc<dyn HttpClient>> {
        if let Some(h) = session.http.get() {
            return Ok(h.clone());
        }
        let verify = session.profile.engine.verify_ssl.to_verify();
        if verify == VerifySsl::Off {
            ui.warn(&format!("profile '{}' has verify_ssl = false: TLS certificates are NOT checked", session.name()));
        }
        let client = (self.http_factory)(&verify)?;
        Ok(session.http.get_or_init(|| client).clone())
    }

    /// Secrets for a flow: overrides from flags/env/.env, then the store.
    fn secrets(session: &Session, entry: Option<&CacheEntry>) -> Secrets {
        let mut secrets = session.profile.secret_overrides.clone();
        if let Some(entry) = entry {
            for (k, v) in &entry.secrets {
                secrets.offer(k, v.clone(), SecretOrigin::Store);
            }
        }
        secrets
    }
}

/// The longest wait for a lock: the holder's HTTP exchange may take `timeout` (twice,
/// for flows with two calls), plus room for a loaded machine.
fn lock_wait_for(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(10)
}
