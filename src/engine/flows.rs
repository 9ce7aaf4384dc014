//! The flows over a session: login, token (refresh under the lock), the provider calls that need a
//! valid token (whoami, request), logout and refresh-token rotation.

use super::{Engine, LoginOutcome, LogoutReport, Reread, Session, UpdateOptions};
use crate::error::{Error, Result, ServerErrorKind};
use crate::interact::Interaction;
use crate::registry::{AuthVerdict, FlowContext, Identity, Obtained, Provider, Secrets};
use crate::store::{CacheEntry, FailureRecord};
use crate::token::TokenSet;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Engine {
    pub(super) fn run<T>(
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
                if tokens.valid_for(self.clock.now(), margin) && !self.fleet_wants_login(session, ui)? {
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
        if session.profile.engine.store.is_some() {
            // A new sign-in is the fleet's next login: every host adopts it.
            let published = self.fleet_push(session, ui, true)?;
            ui.info(&format!("Published to the fleet store (generation {}).", published.generation));
        }
        Ok(LoginOutcome::LoggedIn(tokens))
    }

    /// A token valid for at least `max(refresh_margin, min_ttl)` seconds, refreshing
    /// first when needed. Never prompts. When the refresh fails transiently (timeout, 5xx,
    /// unreachable) and the cached token has not expired yet, that token is returned
    /// with a warning: the server being down is no reason to fail a script early.
    pub fn token(&self, session: &mut Session, ui: &mut dyn Interaction, min_ttl: u64) -> Result<TokenSet> {
        self.token_of(session, ui, min_ttl)
    }

    /// `token` for a shared session (the library's `Client` holds one across threads).
    pub(crate) fn token_of(&self, session: &Session, ui: &mut dyn Interaction, min_ttl: u64) -> Result<TokenSet> {
        // AGE_OAUTH_API_KEY wins: no cache read or written, no network.
        if let Some(tokens) = self.env_tokens(session)? {
            return Ok(tokens);
        }
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
                // Still valid for what the caller asked (`--min-ttl`), if no longer for the refresh
                // margin: a caller who asked for an hour must not get ten minutes.
                match cached_tokens.filter(|t| t.valid_for(now, min_ttl.max(1))) {
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
    pub(super) fn refresh_locked(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        need: u64,
        rejected: Option<&TokenSet>,
        existed: bool,
    ) -> Result<TokenSet> {
        if session.profile.engine.store.is_some() {
            // A fleet profile renews from its store, never from this host's copy of the refresh token.
            return self.fleet_refresh(session, ui, need, rejected);
        }
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
            Err(Error::TokenRejected(why)) if session.env_api_key().is_some() => {
                Err(super::env_key::env_key_rejected(session, &why))
            }
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
            let secrets = engine.flow_secrets(session)?;
            let mut who = engine.run(session, ui, &secrets, true, |p, cx| p.whoami(cx, tokens))?;
            if session.env_api_key().is_some() {
                who.details.insert("credential_source".into(), super::ENV_SOURCE.into());
            }
            Ok(who)
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
            let secrets = engine.flow_secrets(session)?;
            let response =
                engine.run(session, ui, &secrets, true, |p, cx| p.send_authenticated(cx, tokens, request))?;
            let verdict = session.provider.judge(&response);
            Ok::<_, Error>((response, verdict))
        };
        // The binding first (a changed setting is the better message), then the destination.
        // A key from the environment has no cache, so no binding to check but the destination.
        if session.env_api_key().is_none() {
            self.load(session)?;
        }
        if !session.allow_other_host {
            crate::binding::check_url(session, &request.url)?;
        }
        let tokens = self.token(session, ui, 0)?;
        let (response, verdict) = send(self, session, ui, &tokens)?;
        // A key from the environment cannot be refreshed: the answer is the answer.
        if verdict != AuthVerdict::Rejected || session.env_api_key().is_some() {
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
        if session.profile.engine.store.is_some() {
            // A rotation here alone would leave the fleet's record with a dead refresh token.
            return Err(Error::Config(format!(
                "profile '{}' shares its login through a fleet store: rotate there by signing in again \
                 (`age-oauth login --profile {0} --force` publishes the new login)",
                session.name()
            )));
        }
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
}

/// A token endpoint that answers HTTP 401 refused the profile's credentials: a new login
/// (or new stored credentials) is the way out.
pub(super) fn refused_credentials(session: &Session, e: Error) -> Error {
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
