//! The engine: runs a provider's flow, keeps the result in the encrypted cache, refreshes under a lock.
//! Refresh is always: lock the sidecar → re-read → refresh only if still stale → atomic write.

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ResolvedProfile};
use crate::error::{Error, Result};
use crate::http::{HttpClient, UreqClient, VerifySsl};
use crate::interact::Interaction;
use crate::paths::Paths;
use crate::registry::{AuthVerdict, FlowContext, Identity, ProfileSettings, Provider, SecretOrigin, Secrets};
use crate::store::{CacheEntry, CacheStore};
use crate::token::TokenSet;
use std::sync::Arc;

/// Makes the HTTP client for a profile's TLS settings (injected in tests).
pub type HttpFactory = Box<dyn Fn(&VerifySsl) -> Result<Arc<dyn HttpClient>> + Send + Sync>;

pub struct Engine {
    pub paths: Paths,
    pub store: CacheStore,
    pub clock: Arc<dyn Clock>,
    http_factory: HttpFactory,
}

/// A profile with its provider built and its secrets gathered.
pub struct Session {
    pub profile: ResolvedProfile,
    pub provider: Box<dyn Provider>,
    http: Option<Arc<dyn HttpClient>>,
    /// `request --allow-other-host`: authenticated requests may leave the bound origins.
    pub allow_other_host: bool,
}

impl Session {
    pub fn name(&self) -> &str {
        &self.profile.name
    }
    pub fn provider_name(&self) -> &'static str {
        self.profile.provider.name
    }
}

/// What `login` did.
pub enum LoginOutcome {
    AlreadyValid(TokenSet),
    Refreshed(TokenSet),
    LoggedIn(TokenSet),
}

/// What `logout` did.
pub struct LogoutReport {
    pub revocation: Option<String>,
    pub removed_tokens: bool,
    pub kept_secrets: bool,
}

impl Engine {
    pub fn new(paths: Paths) -> Self {
        Engine::with_clock(paths, Arc::new(SystemClock))
    }

    /// The real HTTP client, with the given clock.
    pub fn with_clock(paths: Paths, clock: Arc<dyn Clock>) -> Self {
        Engine::with_parts(paths, clock, Box::new(|v| Ok(Arc::new(UreqClient::new(v)?) as Arc<dyn HttpClient>)))
    }

    pub fn with_parts(paths: Paths, clock: Arc<dyn Clock>, http_factory: HttpFactory) -> Self {
        let store = CacheStore::new(paths.clone());
        Engine { paths, store, clock, http_factory }
    }

    /// Replaces the cache store (for a store with a fixed key source).
    pub fn with_store(mut self, store: CacheStore) -> Self {
        self.paths = store.paths().clone();
        self.store = store;
        self
    }

    /// Builds the provider for a resolved profile.
    pub fn session(&self, profile: ResolvedProfile) -> Result<Session> {
        let settings = ProfileSettings { profile: profile.name.clone(), values: profile.provider_values.clone() };
        let provider = (profile.provider.build)(&settings)?;
        Ok(Session { profile, provider, http: None, allow_other_host: false })
    }

    /// Loads config from the environment and `cwd`, selects and builds a profile.
    pub fn open(&self, cwd: &std::path::Path, profile_flag: Option<&str>) -> Result<Session> {
        let config = Config::load(&self.paths, cwd)?;
        let name = config.select(profile_flag)?;
        self.session(config.resolve(&name, &[])?)
    }

    fn http(&self, session: &mut Session, ui: &mut dyn Interaction) -> Result<Arc<dyn HttpClient>> {
        if let Some(h) = &session.http {
            return Ok(h.clone());
        }
        let verify = session.profile.engine.verify_ssl.to_verify();
        if verify == VerifySsl::Off {
            ui.warn(&format!("profile '{}' has verify_ssl = false: TLS certificates are NOT checked", session.name()));
        }
        let client = (self.http_factory)(&verify)?;
        session.http = Some(client.clone());
        Ok(client)
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

    /// The profile's cache entry (tokens of another provider dropped), refused when the profile's
    /// effective settings name other origins or another TLS trust than the entry is bound to
    /// (`binding::check`): a project file or `.env` must not be able to send them elsewhere.
    pub fn load(&self, session: &Session) -> Result<Option<CacheEntry>> {
        let entry = self.load_unguarded(session)?;
        if let Some(entry) = &entry {
            crate::binding::check(entry, session, &self.paths)?;
        }
        Ok(entry)
    }

    /// Reads the profile's cache without the service check (`login --force` re-binds it).
    fn load_unguarded(&self, session: &Session) -> Result<Option<CacheEntry>> {
        let entry = self.store.load(session.name())?;
        if let Some(e) = &entry {
            if e.provider != session.provider_name() && e.tokens.is_some() {
                // The profile now names another provider: its old tokens mean nothing.
                let mut e = e.clone();
                e.tokens = None;
                e.provider = session.provider_name().to_string();
                return Ok(Some(e));
            }
        }
        Ok(entry)
    }

    fn run<T>(
        &self,
        session: &mut Session,
        ui: &mut dyn Interaction,
        secrets: &Secrets,
        no_browser: bool,
        f: impl FnOnce(&dyn Provider, &mut FlowContext<'_>) -> Result<T>,
    ) -> Result<T> {
        let http = self.http(session, ui)?;
        let mut cx = FlowContext {
            profile: &session.profile.name,
            http: http.as_ref(),
            clock: self.clock.as_ref(),
            ui,
            secrets,
            no_browser,
        };
        f(session.provider.as_ref(), &mut cx)
    }

    /// Runs `f` with the profile's provider and a non-interactive flow context (secrets from
    /// flags, environment and the store), for work beside the engine's own (federated server tokens).
    pub fn with_flow<T>(
        &self,
        session: &mut Session,
        ui: &mut dyn Interaction,
        f: impl FnOnce(&dyn Provider, &mut FlowContext<'_>) -> Result<T>,
    ) -> Result<T> {
        let entry = self.load(session)?;
        let secrets = Self::secrets(session, entry.as_ref());
        self.run(session, ui, &secrets, true, f)
    }

    /// `login`: does nothing on a valid cache (unless `force`), refreshes when it
    /// can, else runs the provider's flow.
    pub fn login(
        &self,
        session: &mut Session,
        ui: &mut dyn Interaction,
        force: bool,
        no_browser: bool,
    ) -> Result<LoginOutcome> {
        let margin = session.profile.engine.refresh_margin;
        let load = |engine: &Engine, session: &Session| {
            if force {
                engine.load_unguarded(session)
            } else {
                engine.load(session)
            }
        };
        let existing = match load(self, session) {
            Ok(e) => e,
            Err(e) if force => {
                ui.warn(&format!("{e}\n  --force: the unreadable cache will be replaced"));
                None
            }
            Err(e) => return Err(e),
        };
        if !force {
            if let Some(tokens) = existing.as_ref().and_then(|e| e.tokens.as_ref()) {
                if tokens.valid_for(self.clock.now(), margin) {
                    return Ok(LoginOutcome::AlreadyValid(tokens.clone()));
                }
                if tokens.can_refresh(self.clock.now()) {
                    match self.refresh_locked(session, ui, margin, None) {
                        Ok(t) => return Ok(LoginOutcome::Refreshed(t)),
                        Err(Error::LoginRequired { .. }) => {} // fall through to a full login
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let secrets = Self::secrets(session, existing.as_ref());
        let mut tokens = self.run(session, ui, &secrets, no_browser, |p, cx| p.login(cx))?;
        let _lock = self.store.lock(session.name())?;
        // Re-read under the lock so secrets stored meanwhile are kept.
        let mut entry = match load(self, session) {
            Ok(Some(e)) => e,
            Ok(None) => CacheEntry::new(session.name(), session.provider_name()),
            Err(_) if force => existing.unwrap_or_else(|| CacheEntry::new(session.name(), session.provider_name())),
            Err(e) => return Err(e),
        };
        entry.provider = session.provider_name().to_string();
        entry.secrets.extend(std::mem::take(&mut tokens.secrets_to_store));
        entry.tokens = Some(tokens.clone());
        let _ = crate::binding::bind(&mut entry, session);
        self.store.save(&entry)?;
        Ok(LoginOutcome::LoggedIn(tokens))
    }

    /// A token valid for at least `max(refresh_margin, min_ttl)` seconds, refreshing
    /// first when needed. Never prompts.
    pub fn token(&self, session: &mut Session, ui: &mut dyn Interaction, min_ttl: u64) -> Result<TokenSet> {
        let need = session.profile.engine.refresh_margin.max(min_ttl);
        // Fast path: no lock, no network.
        if let Some(tokens) = self.load(session)?.and_then(|e| e.tokens) {
            if tokens.valid_for(self.clock.now(), need) {
                return Ok(tokens);
            }
        }
        self.refresh_locked(session, ui, need, None)
    }

    /// Under the profile's lock: re-read, and refresh only if the cached token is
    /// still stale (or is the `rejected` one a server just refused).
    fn refresh_locked(
        &self,
        session: &mut Session,
        ui: &mut dyn Interaction,
        need: u64,
        rejected: Option<&TokenSet>,
    ) -> Result<TokenSet> {
        let _lock = self.store.lock(session.name())?;
        let mut entry = self.load(session)?.unwrap_or_else(|| CacheEntry::new(session.name(), session.provider_name()));
        let Some(current) = entry.tokens.clone() else {
            if session.provider.needs_person() {
                return Err(Error::login_required(
                    session.name(),
                    format!("profile '{}' is not logged in", session.name()),
                ));
            }
            // Application credentials: no person needed, so log in right here.
            let secrets = Self::secrets(session, Some(&entry));
            let mut tokens = self.run(session, ui, &secrets, true, |p, cx| p.login(cx))?;
            entry.secrets.extend(std::mem::take(&mut tokens.secrets_to_store));
            entry.tokens = Some(tokens.clone());
            let _ = crate::binding::bind(&mut entry, session);
            self.store.save(&entry)?;
            return Ok(tokens);
        };
        let still_stale = match rejected {
            Some(bad) => current.access_token == bad.access_token,
            None => !current.valid_for(self.clock.now(), need),
        };
        if !still_stale {
            ui.debug(1, "another process refreshed the token meanwhile");
            return Ok(current);
        }
        ui.debug(1, &format!("refreshing the token of profile '{}'", session.name()));
        let secrets = Self::secrets(session, Some(&entry));
        let fresh = self.run(session, ui, &secrets, true, |p, cx| p.refresh(cx, &current))?;
        entry.tokens = Some(fresh.clone());
        let _ = crate::binding::bind(&mut entry, session);
        self.store.save(&entry)?;
        Ok(fresh)
    }

    /// Calls `f` with a valid token; if the server rejects it (ArcGIS 498, HTTP 401)
    /// even though the cache says it is valid, refreshes once and retries once.
    pub fn with_token<T>(
        &self,
        session: &mut Session,
        ui: &mut dyn Interaction,
        mut f: impl FnMut(&Engine, &mut Session, &mut dyn Interaction, &TokenSet) -> Result<T>,
    ) -> Result<T> {
        let tokens = self.token(session, ui, 0)?;
        match f(self, session, ui, &tokens) {
            Err(Error::TokenRejected(why)) => {
                ui.debug(1, &format!("the server rejected the token ({why}); refreshing once"));
                let need = session.profile.engine.refresh_margin;
                let fresh = self.refresh_locked(session, ui, need, Some(&tokens))?;
                f(self, session, ui, &fresh).map_err(|e| match e {
                    Error::TokenRejected(why) => Error::login_required(
                        session.name(),
                        format!("the server still rejects the refreshed token of profile '{}': {why}", session.name()),
                    ),
                    other => other,
                })
            }
            other => other,
        }
    }

    /// `whoami`: asks the server, with refresh-and-retry on a rejected token.
    pub fn whoami(&self, session: &mut Session, ui: &mut dyn Interaction) -> Result<Identity> {
        self.with_token(session, ui, |engine, session, ui, tokens| {
            let entry = engine.load(session)?;
            let secrets = Self::secrets(session, entry.as_ref());
            engine.run(session, ui, &secrets, true, |p, cx| p.whoami(cx, tokens))
        })
    }

    /// Sends `request` with the profile's credentials; when the server rejects a token
    /// the cache thought valid, refreshes once and sends once more. Returns the last
    /// answer and the provider's verdict on it.
    pub fn request(
        &self,
        session: &mut Session,
        ui: &mut dyn Interaction,
        request: &crate::http::HttpRequest,
    ) -> Result<(crate::http::HttpResponse, AuthVerdict)> {
        let send = |engine: &Engine, session: &mut Session, ui: &mut dyn Interaction, tokens: &TokenSet| {
            let entry = engine.load(session)?;
            let secrets = Self::secrets(session, entry.as_ref());
            let response =
                engine.run(session, ui, &secrets, true, |p, cx| p.send_authenticated(cx, tokens, request))?;
            let verdict = session.provider.judge(&response);
            Ok::<_, Error>((response, verdict))
        };
        // The binding first (a changed setting is the better message), then the destination.
        self.load(session)?;
        if !session.allow_other_host {
            crate::binding::check_url(session, &request.url)?;
        }
        let tokens = self.token(session, ui, 0)?;
        let (response, verdict) = send(self, session, ui, &tokens)?;
        if verdict != AuthVerdict::Rejected {
            return Ok((response, verdict));
        }
        ui.debug(1, &format!("the server rejected the token (HTTP {}); refreshing once", response.status));
        let need = session.profile.engine.refresh_margin;
        let fresh = self.refresh_locked(session, ui, need, Some(&tokens))?;
        send(self, session, ui, &fresh)
    }

    /// `logout`: revokes server-side where the provider can (best effort), then forgets
    /// the tokens. Stored secrets stay until `profile remove`.
    pub fn logout(&self, session: &mut Session, ui: &mut dyn Interaction) -> Result<LogoutReport> {
        let _lock = self.store.lock(session.name())?;
        let Some(mut entry) = self.load(session)? else {
            return Ok(LogoutReport { revocation: None, removed_tokens: false, kept_secrets: false });
        };
        let mut revocation = None;
        if let Some(tokens) = entry.tokens.take() {
            let secrets = Self::secrets(session, Some(&entry));
            revocation = Some(match self.run(session, ui, &secrets, true, |p, cx| p.logout(cx, &tokens)) {
                Ok(line) => line,
                Err(e) => {
                    format!("revocation failed ({e}); the cached tokens are deleted anyway")
                }
            });
        }
        let kept_secrets = !entry.secrets.is_empty();
        if kept_secrets {
            self.store.save(&entry)?;
        } else {
            self.store.remove(session.name())?;
        }
        Ok(LogoutReport { revocation, removed_tokens: true, kept_secrets })
    }

    /// `token --rotate-refresh-token`: under the lock, exchanges the cached refresh token for a
    /// new one now (the provider's `rotate_refresh_token`) and saves the result.
    pub fn rotate_refresh_token(&self, session: &mut Session, ui: &mut dyn Interaction) -> Result<TokenSet> {
        let _lock = self.store.lock(session.name())?;
        let mut entry = self.load(session)?.unwrap_or_else(|| CacheEntry::new(session.name(), session.provider_name()));
        let Some(current) = entry.tokens.clone() else {
            return Err(Error::login_required(
                session.name(),
                format!("profile '{}' is not logged in", session.name()),
            ));
        };
        let secrets = Self::secrets(session, Some(&entry));
        let fresh = self.run(session, ui, &secrets, true, |p, cx| p.rotate_refresh_token(cx, &current))?;
        entry.tokens = Some(fresh.clone());
        let _ = crate::binding::bind(&mut entry, session);
        self.store.save(&entry)?;
        Ok(fresh)
    }

    /// Stores (or replaces) secrets for a profile, under its lock, bound to `binding` (what
    /// `profile add` wrote in the user file). When the profile was pointed at other origins or trust
    /// (by `profile add`, the user's own act), tokens from the old ones are dropped.
    pub fn store_secrets(
        &self,
        profile: &str,
        provider: &str,
        binding: Option<crate::binding::Binding>,
        secrets: &[(String, crate::secret::Secret)],
    ) -> Result<()> {
        let _lock = self.store.lock(profile)?;
        let mut entry = self.store.load(profile)?.unwrap_or_else(|| CacheEntry::new(profile, provider));
        for (k, v) in secrets {
            entry.secrets.insert(k.clone(), v.clone());
        }
        // Only what the entry itself records: the user file has just been rewritten by `profile add`.
        let before = crate::binding::recorded_in_entry(&entry);
        if before.is_some_and(|b| !binding.as_ref().is_some_and(|n| n.matches(&b))) {
            entry.tokens = None;
        }
        entry.binding = binding;
        entry.service = None;
        entry.provider = provider.to_string();
        self.store.save(&entry)
    }
}
