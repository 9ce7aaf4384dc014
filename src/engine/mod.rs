//! The engine: runs a provider's flow, keeps the result in the encrypted cache, refreshes under a lock.
//! Every cache write goes through `Engine::update`: lock the sidecar → guarded re-read → change → bind → atomic write.

pub mod federation;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ResolvedProfile};
use crate::error::{Error, Result, ServerErrorKind};
use crate::http::{HttpClient, UreqClient, VerifySsl};
use crate::interact::Interaction;
use crate::paths::Paths;
use crate::registry::{AuthVerdict, FlowContext, Identity, Obtained, ProfileSettings, Provider, SecretOrigin, Secrets};
use crate::store::{CacheEntry, CacheStore, FailureRecord, ProfileLock};
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

/// How `update` re-reads the entry under the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reread {
    /// Refuse an entry the session's settings no longer match (`Engine::load`).
    #[default]
    Checked,
    /// Take the entry whatever the session now names (the user re-binds it: `profile add`).
    Unchecked,
    /// Like `Unchecked`, and an unreadable entry counts as none (`login --force`, `import --force`).
    Replace,
}

/// How one `update` runs. The default: block on the lock, checked re-read, no binding.
#[derive(Default)]
pub struct UpdateOptions<'a> {
    /// Bind the written entry to this session (see `bind`); also what the re-read is checked against.
    pub bind_to: Option<&'a Session>,
    pub reread: Reread,
    /// The profile's lock when the caller already holds it (key rotation holds every lock).
    pub held: Option<&'a ProfileLock>,
    /// Encrypt to exactly these recipients instead of the store's key (key rotation).
    pub recipients: Option<&'a [age::x25519::Recipient]>,
    /// Write even when nothing changed (re-encryption).
    pub rewrite: bool,
    /// Wait at most this long for the lock (`None`: until it is free).
    pub max_wait: Option<Duration>,
}

impl<'a> UpdateOptions<'a> {
    /// Bound to `session`, with a checked re-read.
    pub fn bound(session: &'a Session) -> Self {
        UpdateOptions { bind_to: Some(session), ..Default::default() }
    }
}

/// The one function that decides what a cache entry is bound to (where its tokens and
/// secrets may go), from the session's effective settings. Returns true when the entry
/// was bound elsewhere before.
pub fn bind(entry: &mut CacheEntry, session: &Session) -> bool {
    crate::binding::bind(entry, session)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Engine {
    /// The engine with the system clock and the real HTTP client.
    pub fn new(paths: Paths) -> Self {
        Engine::with_clock(paths, Arc::new(SystemClock))
    }

    /// The real HTTP client (timeout from `AGE_OAUTH_HTTP_TIMEOUT`), with the given clock.
    pub fn with_clock(paths: Paths, clock: Arc<dyn Clock>) -> Self {
        let timeout = crate::http::timeout_from_env().unwrap_or(crate::http::DEFAULT_TIMEOUT);
        Engine::with_parts(
            paths,
            clock,
            Box::new(|v| {
                let timeout = crate::http::timeout_from_env()?;
                Ok(Arc::new(UreqClient::with_timeout(v, timeout)?) as Arc<dyn HttpClient>)
            }),
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

    /// The one writer of the cache: takes the profile's lock (unless held), re-reads the
    /// entry under it (`Reread`), lets `change` edit it (`None`: no entry; set it to `None`
    /// to delete), binds it to `bind_to`, and writes it atomically to the file it was read
    /// from — only when it changed (or `rewrite`). An error from `change` writes nothing.
    pub fn update<T>(
        &self,
        profile: &str,
        options: UpdateOptions<'_>,
        change: impl FnOnce(&mut Option<CacheEntry>, &ProfileLock) -> Result<T>,
    ) -> Result<T> {
        let owned;
        let lock = match options.held {
            Some(lock) if lock.profile() == profile => lock,
            Some(lock) => {
                return Err(Error::Other(format!(
                    "internal: update of '{profile}' under the lock of '{}'",
                    lock.profile()
                )))
            }
            None => {
                owned = match options.max_wait {
                    Some(wait) => self.store.lock_within(profile, wait)?,
                    None => self.store.lock(profile)?,
                };
                &owned
            }
        };
        let read = match options.bind_to {
            Some(session) if options.reread == Reread::Checked => self.load(session),
            Some(session) => self.load_unguarded(session),
            None => self.store.load(profile),
        };
        let before = match read {
            Ok(entry) => entry,
            Err(_) if options.reread == Reread::Replace => None,
            Err(e) => return Err(e),
        };
        let mut entry = before.clone();
        let out = change(&mut entry, lock)?;
        if let (Some(e), Some(session)) = (entry.as_mut(), options.bind_to) {
            bind(e, session);
        }
        if entry == before && !options.rewrite {
            return Ok(out);
        }
        match entry.as_mut() {
            Some(e) => {
                e.profile = profile.to_string();
                match options.recipients {
                    Some(r) => self.store.save_to(lock, e, r)?,
                    None => self.store.save(lock, e)?,
                }
            }
            None => {
                self.store.remove(lock)?;
            }
        }
        Ok(out)
    }

    fn run<T>(
        &self,
        session: &Session,
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
        session: &Session,
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
        let session = &*session;
        let margin = session.profile.engine.refresh_margin;
        let loaded = if force { self.load_unguarded(session) } else { self.load(session) };
        let existing = match loaded {
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
                    match self.refresh_locked(session, ui, margin, None, true) {
                        Ok(t) => return Ok(LoginOutcome::Refreshed(t)),
                        Err(e) if e.is_reauth_required() => {} // fall through to a full login
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let secrets = Self::secrets(session, existing.as_ref());
        let obtained = self
            .run(session, ui, &secrets, no_browser, |p, cx| p.login(cx))
            .map_err(|e| refused_credentials(session, e))?;
        let (tokens, keep) = (obtained.tokens, obtained.secrets_to_store);
        let options = UpdateOptions {
            bind_to: Some(session),
            reread: if force { Reread::Replace } else { Reread::Checked },
            ..Default::default()
        };
        // Re-read under the lock so secrets stored meanwhile are kept.
        self.update(session.name(), options, |entry, _| {
            let e = entry.get_or_insert_with(|| CacheEntry::new(session.name(), session.provider_name()));
            e.provider = session.provider_name().to_string();
            e.secrets.extend(keep);
            e.tokens = Some(tokens.clone());
            Ok(())
        })?;
        Ok(LoginOutcome::LoggedIn(tokens))
    }

    /// A token valid for at least `max(refresh_margin, min_ttl)` seconds, refreshing
    /// first when needed. Never prompts. When the refresh fails transiently (timeout, 5xx,
    /// unreachable) and the cached token has not expired yet, that token is returned
    /// with a warning: the server being down is no reason to fail a script early.
    pub fn token(&self, session: &mut Session, ui: &mut dyn Interaction, min_ttl: u64) -> Result<TokenSet> {
        let session = &*session;
        let need = session.profile.engine.refresh_margin.max(min_ttl);
        // Fast path: no lock, no network.
        let cached = self.load(session)?;
        let cached_tokens = cached.as_ref().and_then(|e| e.tokens.clone());
        if let Some(tokens) = &cached_tokens {
            if tokens.valid_for(self.clock.now(), need) {
                return Ok(tokens.clone());
            }
        }
        match self.refresh_locked(session, ui, need, None, cached.is_some()) {
            Err(e) if e.is_transient() => {
                let now = self.clock.now();
                match cached_tokens.filter(|t| t.valid_for(now, 1)) {
                    Some(still_valid) => {
                        let left = still_valid.remaining(now).map(crate::clock::hms).unwrap_or_else(|| "?".into());
                        ui.warn(&format!(
                            "could not refresh the token of profile '{}' ({e}); using the cached one, valid for {left}",
                            session.name()
                        ));
                        Ok(still_valid)
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// Under the profile's lock: re-read, and refresh only if the cached token is
    /// still stale (or is the `rejected` one a server just refused). A refresh that failed
    /// in another process while this one waited for the lock is reported, not tried again.
    /// `existed`: the caller saw a cache, so finding none now means it was removed meanwhile.
    fn refresh_locked(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        need: u64,
        rejected: Option<&TokenSet>,
        existed: bool,
    ) -> Result<TokenSet> {
        let waiting_since = now_ms();
        let options = UpdateOptions { max_wait: Some(self.lock_wait), ..UpdateOptions::bound(session) };
        self.update(session.name(), options, |entry, lock| {
            if entry.is_none() && existed {
                return Err(Error::login_required(
                    session.name(),
                    format!("profile '{}' was logged out or removed meanwhile", session.name()),
                ));
            }
            let e = entry.get_or_insert_with(|| CacheEntry::new(session.name(), session.provider_name()));
            let current = e.tokens.clone();
            if let Some(current) = &current {
                let still_stale = match rejected {
                    Some(bad) => current.access_token == bad.access_token,
                    None => !current.valid_for(self.clock.now(), need),
                };
                if !still_stale {
                    ui.debug(1, "another process refreshed the token meanwhile");
                    return Ok(current.clone());
                }
            } else if session.provider.needs_person() {
                return Err(Error::login_required(
                    session.name(),
                    format!("profile '{}' is not logged in", session.name()),
                ));
            }
            if let Some(failure) = self.store.last_failure(session.name()) {
                // Failed while we waited for the lock: trying again now would only queue
                // every waiter behind one more timeout.
                if failure.at_ms >= waiting_since {
                    return Err(failure_error(session, &failure));
                }
            }
            let secrets = Self::secrets(session, Some(e));
            let result = match &current {
                Some(current) => {
                    ui.debug(1, &format!("refreshing the token of profile '{}'", session.name()));
                    self.run(session, ui, &secrets, true, |p, cx| p.refresh(cx, current)).map(Obtained::from)
                }
                // Application credentials: no person needed, so log in right here.
                None => self.run(session, ui, &secrets, true, |p, cx| p.login(cx)),
            };
            match result.map_err(|err| refused_credentials(session, err)) {
                Ok(Obtained { tokens: fresh, secrets_to_store }) => {
                    self.store.clear_failure(lock);
                    e.secrets.extend(secrets_to_store);
                    e.tokens = Some(fresh.clone());
                    Ok(fresh)
                }
                Err(err) => {
                    // Best effort: the record only spares waiting processes a doomed retry.
                    let _ = self.store.record_failure(lock, &failure_record(&err));
                    Err(err)
                }
            }
        })
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
                let fresh = self.refresh_locked(session, ui, need, Some(&tokens), true)?;
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
        let send = |engine: &Engine, session: &Session, ui: &mut dyn Interaction, tokens: &TokenSet| {
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
        let fresh = self.refresh_locked(session, ui, need, Some(&tokens), true)?;
        send(self, session, ui, &fresh)
    }

    /// `logout`: revokes server-side where the provider can (best effort), then forgets
    /// the tokens. Stored secrets stay until `profile remove`.
    pub fn logout(&self, session: &mut Session, ui: &mut dyn Interaction) -> Result<LogoutReport> {
        let session = &*session;
        self.update(session.name(), UpdateOptions::bound(session), |entry, _| {
            let Some(e) = entry.as_mut() else {
                return Ok(LogoutReport { revocation: None, removed_tokens: false, kept_secrets: false });
            };
            let mut revocation = None;
            if let Some(tokens) = e.tokens.take() {
                let secrets = Self::secrets(session, Some(e));
                revocation = Some(match self.run(session, ui, &secrets, true, |p, cx| p.logout(cx, &tokens)) {
                    Ok(line) => line,
                    Err(err) => format!("revocation failed ({err}); the cached tokens are deleted anyway"),
                });
            }
            let kept_secrets = !e.secrets.is_empty();
            if !kept_secrets {
                *entry = None;
            }
            Ok(LogoutReport { revocation, removed_tokens: true, kept_secrets })
        })
    }

    /// `token --rotate-refresh-token`: under the lock, exchanges the cached refresh token for a
    /// new one now (the provider's `rotate_refresh_token`) and keeps the result.
    pub fn rotate_refresh_token(&self, session: &mut Session, ui: &mut dyn Interaction) -> Result<TokenSet> {
        let session = &*session;
        self.update(session.name(), UpdateOptions::bound(session), |entry, _| {
            let Some((e, current)) = entry.as_mut().and_then(|e| e.tokens.clone().map(|t| (e, t))) else {
                return Err(Error::login_required(
                    session.name(),
                    format!("profile '{}' is not logged in", session.name()),
                ));
            };
            let secrets = Self::secrets(session, Some(e));
            let fresh = self
                .run(session, ui, &secrets, true, |p, cx| p.rotate_refresh_token(cx, &current))
                .map_err(|err| refused_credentials(session, err))?;
            e.tokens = Some(fresh.clone());
            Ok(fresh)
        })
    }

    /// Stores (or replaces) secrets for a profile, under its lock, bound to `bind_to` (the
    /// profile as the user file defines it after `profile add`: the user's own act), or unbound
    /// when the user file alone does not define it. When that binds the entry to other origins
    /// or trust than before, tokens from the old ones are dropped. `held`: the profile's lock
    /// when the caller took it already.
    pub fn store_secrets(
        &self,
        profile: &str,
        provider: &str,
        bind_to: Option<&Session>,
        held: Option<&ProfileLock>,
        secrets: &[(String, crate::secret::Secret)],
    ) -> Result<()> {
        let options = UpdateOptions { reread: Reread::Unchecked, held, bind_to, ..Default::default() };
        self.update(profile, options, |entry, _| {
            let e = entry.get_or_insert_with(|| CacheEntry::new(profile, provider));
            for (k, v) in secrets {
                e.secrets.insert(k.clone(), v.clone());
            }
            let rebound = match bind_to {
                Some(session) => bind(&mut e.clone(), session),
                None => crate::binding::recorded_in_entry(e).is_some(),
            };
            if rebound {
                e.tokens = None;
            }
            if bind_to.is_none() {
                e.binding = None;
                e.service = None;
            }
            e.provider = provider.to_string();
            Ok(())
        })
    }

    /// `profile remove`: under the profile's lock (so a refresh in flight cannot write the
    /// cache back), deletes it from the user file, then its cache and any temp files.
    /// Returns (removed from the user file, removed a cache).
    pub fn remove_profile(&self, name: &str) -> Result<(bool, bool)> {
        let lock = self.store.lock(name)?;
        let removed_file = crate::config::remove_profile(&self.paths, name)?;
        let removed_cache = self.store.remove(&lock)?;
        // The lock file stays: another process may hold or wait on it right now.
        Ok((removed_file, removed_cache))
    }
}

/// The longest wait for a lock: the holder's HTTP exchange may take `timeout` (twice,
/// for flows with two calls), plus room for a loaded machine.
fn lock_wait_for(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(10)
}

/// A token endpoint that answers HTTP 401 refused the profile's credentials: a new login
/// (or new stored credentials) is the way out.
fn refused_credentials(session: &Session, e: Error) -> Error {
    match e {
        Error::TokenRejected(why) => Error::login_required(
            session.name(),
            format!("the server refused the credentials of profile '{}' ({why})", session.name()),
        ),
        other => other,
    }
}

fn failure_record(e: &Error) -> FailureRecord {
    let (kind, message) = match e {
        Error::LoginRequired { message, .. } => ("login", message.clone()),
        e if e.is_transient() => ("transient", e.to_string()),
        e => ("refused", e.to_string()),
    };
    FailureRecord { at_ms: now_ms(), kind: kind.into(), message }
}

/// The error another process's failed refresh stands for.
fn failure_error(session: &Session, f: &FailureRecord) -> Error {
    let message = format!(
        "another age-oauth process tried to refresh profile '{}' just now and failed: {}",
        session.name(),
        f.message
    );
    match f.kind.as_str() {
        "login" => Error::login_required(session.name(), message),
        "transient" => Error::unreachable(ServerErrorKind::Unreachable, message, None),
        _ => Error::server(message),
    }
}
