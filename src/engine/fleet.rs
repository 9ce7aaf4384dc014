//! Fleets in the engine: when a profile shares its login through a store, a stale local copy is renewed
//! from the store — adopt a fresh login, or claim → refresh → publish with check-and-set — under the local lock.

use super::{Engine, Session, UpdateOptions};
use crate::error::{Error, Result, ServerErrorKind};
use crate::fleet::{self, CasStore, Read, Record, SharedLogin, StoreSettings, Written};
use crate::interact::Interaction;
use crate::store::CacheEntry;
use crate::token::TokenSet;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long transient store errors (a restart, a lost connection) are retried before giving up.
const STORE_RETRY: Duration = Duration::from_secs(8);

/// A profile's fleet store, opened for one command.
pub(super) struct Fleet {
    store: Arc<dyn CasStore>,
    settings: StoreSettings,
    recipients: Vec<age::x25519::Recipient>,
    identity: age::x25519::Identity,
    holder: String,
    profile: String,
    /// How long `token` waits for a fresh login (a live claim, a record that keeps changing) before it gives up.
    wait: Duration,
}

/// What `store status` shows; nothing secret.
#[derive(Debug, Serialize)]
pub struct FleetStatus {
    /// The profile.
    pub profile: String,
    /// Where the record is.
    pub store: String,
    /// The record's KV version (0: no record).
    pub version: u64,
    /// The login's generation, when there is a record.
    pub generation: Option<u64>,
    /// The claim, if one is recorded.
    pub claim: Option<ClaimStatus>,
    /// The shared refresh token was refused: someone must sign in again.
    pub needs_login: bool,
    /// When the shared access token expires (Unix seconds).
    pub token_expires_at: Option<u64>,
    /// Seconds the shared access token has left by this host's clock (0 when expired).
    pub token_expires_in: Option<u64>,
    /// This host's key is among the record's recipients.
    pub can_decrypt: Option<bool>,
    /// The store's clock when it answered (Unix seconds).
    pub store_time: Option<u64>,
}

/// A claim as `store status` shows it.
#[derive(Debug, Serialize)]
pub struct ClaimStatus {
    /// Host, process and key end of the holder.
    pub holder: String,
    /// Seconds since the claim was last written, by the store's clock.
    pub age_s: Option<u64>,
    /// Seconds it lasts after its last write.
    pub ttl_s: u64,
    /// Still within its TTL by the store's clock.
    pub live: bool,
}

/// What a publish did.
#[derive(Debug, Serialize)]
pub struct Published {
    /// The record's new KV version.
    pub version: u64,
    /// The login's new generation.
    pub generation: u64,
}

/// The test hook `AGE_OAUTH_INTERNAL_FLEET_PAUSE=STEP:MS`: announce `step` and sleep there.
fn pause(env: &crate::env::Env, step: &str, ui: &mut dyn Interaction) {
    let Some(spec) = env.get(&crate::env::INTERNAL_FLEET_PAUSE) else { return };
    let Some((at, ms)) = spec.split_once(':') else { return };
    if at == step {
        ui.warn(&format!("fleet test pause: {step} (pid {})", std::process::id()));
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sleeps a little, more each time (100 ms → 800 ms), with jitter so hosts do not poll in step.
fn back_off(round: &mut u32) {
    use rand::Rng;
    let base = 100u64 << (*round).min(3);
    *round += 1;
    std::thread::sleep(Duration::from_millis(base + rand::thread_rng().gen_range(0..base)));
}

impl Fleet {
    fn read(&self, ui: &mut dyn Interaction) -> Result<Read> {
        retrying(ui, || self.store.read())
    }

    /// True while `claim` in `read` is within its TTL by the store's clock; without store times, by how
    /// long this process has itself seen the same version unchanged (`watch`).
    fn claim_live(read: &Read, ttl_s: u64, watch: &mut Option<(u64, Instant)>) -> bool {
        // The `Date` header has whole seconds: one more second of patience.
        let limit = ttl_s + 1;
        if let Some(age) = fleet::claim_age(read) {
            return age < limit;
        }
        let seen = match *watch {
            Some((v, at)) if v == read.version => at,
            _ => {
                *watch = Some((read.version, Instant::now()));
                Instant::now()
            }
        };
        seen.elapsed() < Duration::from_secs(limit)
    }

    /// Runs `work` while a thread renews the claim (same record, check-and-set on the latest version)
    /// every third of its TTL. `fenced` ends as the latest version, or `None` when the claim was lost.
    fn renewing<T>(&self, claimed: &Record, fenced: &Mutex<Option<u64>>, work: impl FnOnce() -> T) -> T {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let period =
            Duration::from_millis(self.settings.claim_ttl.saturating_mul(1000) / 3).max(Duration::from_millis(200));
        let record = claimed.to_map();
        let record = &record;
        std::thread::scope(|s| {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    let Some(version) = *lock(fenced) else { return };
                    match self.store.write_if(version, record) {
                        Ok(Written::Done { version }) => *lock(fenced) = Some(version),
                        Ok(Written::Conflict) => {
                            *lock(fenced) = None;
                            return;
                        }
                        Err(_) => {} // transient: the next period tries again
                    }
                }
            });
            let out = work();
            drop(stop);
            out
        })
    }

    /// Writes `record` with check-and-set on `version`, retrying transient errors.
    fn write(&self, ui: &mut dyn Interaction, version: u64, record: &Record) -> Result<Written> {
        let map = record.to_map();
        retrying(ui, || self.store.write_if(version, &map))
    }
}

/// Calls `f`, again after a back-off while it fails transiently (a store restarting), for `STORE_RETRY`.
fn retrying<T>(ui: &mut dyn Interaction, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let mut round = 0;
    loop {
        match f() {
            Err(e) if e.is_transient() && start.elapsed() < STORE_RETRY => {
                ui.debug(1, &format!("fleet store: {e}; trying again"));
                back_off(&mut round);
            }
            other => return other,
        }
    }
}

impl Engine {
    /// The profile's fleet store, when it has one: its adapter, this host's identity and the recipients.
    pub(super) fn fleet(&self, session: &Session) -> Result<Option<Fleet>> {
        let Some(settings) = session.profile.engine.store.clone() else { return Ok(None) };
        let name = session.name();
        // Before the Vault token is read or sent: only a bound (or user-file) store gets it.
        crate::binding::check_store(self.load_unguarded(session)?.as_ref(), session, &self.paths)?;
        let recipients = settings.recipients(name)?;
        let identity = self.store.identity(true)?.ok_or_else(|| {
            Error::Config(format!(
                "profile '{name}' shares its login through a fleet store, which needs this host's age identity; \
                 unset AGE_OAUTH_PASSPHRASE"
            ))
        })?;
        let verify = settings.ca_path().map_or(crate::http::VerifySsl::On, crate::http::VerifySsl::CaBundle);
        let http = (self.http_factory)(&verify)?;
        let store = fleet::open(&settings, http, self.paths.env(), name)?;
        let holder = fleet::holder_id(Some(&identity.to_public().to_string()));
        // Long enough for a holder to refresh and for a dead holder's claim to expire.
        let wait = Duration::from_secs(settings.claim_ttl * 2 + 10);
        Ok(Some(Fleet { store, settings, recipients, identity, holder, profile: name.to_string(), wait }))
    }

    /// The fleet side of `refresh_locked`: under the local lock (one process per host talks to the store),
    /// re-read the local copy; still stale → renew it from the store. A host never refreshes from its own
    /// copy of the refresh token: the store's is the only one.
    pub(super) fn fleet_refresh(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        need: u64,
        rejected: Option<&TokenSet>,
    ) -> Result<TokenSet> {
        let fleet = self.fleet(session)?.ok_or_else(|| Error::Other("internal: no fleet store".into()))?;
        let options = UpdateOptions { max_wait: Some(self.lock_wait), ..UpdateOptions::bound(session) };
        self.update(session.name(), options, |entry, _| {
            let e = entry.get_or_insert_with(|| CacheEntry::new(session.name(), session.provider_name()));
            if let Some(current) = &e.tokens {
                let still_stale = match rejected {
                    Some(bad) => current.access_token == bad.access_token,
                    None => !current.valid_for(self.clock.now(), need),
                };
                if !still_stale {
                    ui.debug(1, "another process renewed the token meanwhile");
                    return Ok(current.clone());
                }
            }
            let (tokens, generation) = self.fleet_renew(session, ui, &fleet, need, rejected, e)?;
            self.remember_generation(&fleet, generation);
            e.provider = session.provider_name().to_string();
            e.tokens = Some(tokens.clone());
            Ok(tokens)
        })
    }

    /// Reads the record until this host can return a fresh login: adopt it, or claim and refresh it,
    /// or wait (bounded) for the host that holds the claim.
    fn fleet_renew(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        fleet: &Fleet,
        need: u64,
        rejected: Option<&TokenSet>,
        local: &CacheEntry,
    ) -> Result<(TokenSet, u64)> {
        let name = session.name();
        let ttl = fleet.settings.claim_ttl;
        let seen = self.seen_generation(fleet);
        let deadline = Instant::now() + fleet.wait;
        let (mut watch, mut round) = (None, 0);
        loop {
            let read = fleet.read(ui)?;
            let record = match &read.record {
                Some(map) => Record::from_map(map)?,
                None => return Err(not_published(session, fleet)),
            };
            if let Some(seen) = seen.filter(|seen| record.gen < *seen) {
                return Err(rolled_back(self, fleet, seen, record.gen));
            }
            if record.needs_login {
                return Err(needs_login(name, "the fleet store says its shared login was refused"));
            }
            let login = record.open(&fleet.identity, name, &fleet.settings.url)?;
            let stale = match rejected {
                Some(bad) => login.tokens.access_token == bad.access_token,
                None => !login.tokens.valid_for(self.clock.now(), need),
            };
            if !stale {
                ui.debug(1, &format!("adopted the fleet's login of profile '{name}' (generation {})", record.gen));
                return Ok((login.tokens, record.gen));
            }
            if record.claim.is_some() && Fleet::claim_live(&read, ttl, &mut watch) {
                if Instant::now() >= deadline {
                    let holder = record.claim.map(|c| c.holder).unwrap_or_default();
                    return Err(store_busy(
                        fleet,
                        &format!("{holder} has held the refresh claim longer than this host waits"),
                    ));
                }
                ui.debug(2, "another host holds the refresh claim; waiting for its login");
                back_off(&mut round);
                continue;
            }
            let mut claimed = record.clone();
            claimed.claim = Some(fleet::new_claim(&fleet.holder, ttl));
            match fleet.write(ui, read.version, &claimed)? {
                Written::Conflict => {
                    if Instant::now() >= deadline {
                        // Every claim lost, yet no live claim to wait for (a stale standby read, another writer).
                        return Err(store_busy(fleet, "the record kept changing under this host's claims"));
                    }
                    ui.debug(2, "another host claimed first");
                    back_off(&mut round);
                }
                Written::Done { version } => {
                    ui.debug(1, &format!("claimed the fleet refresh of profile '{name}' (version {version})"));
                    match self.fleet_refresh_claimed(session, ui, fleet, local, &claimed, version, &login)? {
                        Some(fresh) => return Ok((fresh, claimed.gen + 1)),
                        None => ui.debug(1, "the claim was taken over before the portal was called; reading again"),
                    }
                }
            }
        }
    }

    /// Holding the claim (fencing version `version`): refresh with the provider while the claim is
    /// renewed, then publish the result — or mark `needs_login`, or release the claim. `None` when the
    /// claim turned out lost before the provider was called (nothing was presented to the portal).
    #[allow(clippy::too_many_arguments)]
    fn fleet_refresh_claimed(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        fleet: &Fleet,
        local: &CacheEntry,
        claimed: &Record,
        version: u64,
        login: &SharedLogin,
    ) -> Result<Option<TokenSet>> {
        pause(self.paths.env(), "claimed", ui);
        // This process may have stood still since it claimed (a frozen VM, SIGSTOP, a slow disk) while the
        // claim expired and another host refreshed: presenting the old refresh token now would be reuse.
        // One check-and-set renewal right before the portal proves the claim is still ours and gives it a
        // full TTL; the renewal thread keeps it alive from there.
        let version = match fleet.write(ui, version, claimed)? {
            Written::Done { version } => version,
            Written::Conflict => return Ok(None),
        };
        let secrets = Self::secrets(session, Some(local));
        let fenced = Mutex::new(Some(version));
        let result = fleet.renewing(claimed, &fenced, || {
            self.run(session, ui, &secrets, true, |p, cx| p.refresh(cx, &login.tokens))
                .map_err(|err| super::flows::refused_credentials(session, err))
        });
        let fenced = fenced.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut base = claimed.clone();
        base.claim = None;
        match result {
            Ok(fresh) => {
                pause(self.paths.env(), "refreshed", ui);
                self.fleet_publish_refreshed(ui, fleet, &base, fenced, &fresh);
                Ok(Some(fresh))
            }
            Err(err) if err.is_reauth_required() => {
                base.needs_login = true;
                base.gen += 1;
                if let Some(v) = fenced {
                    let _ = fleet.write(ui, v, &base); // best effort: a newer record wins anyway
                }
                Err(needs_login(session.name(), &format!("the server refused the fleet's shared login ({err})")))
            }
            Err(err) => {
                if let Some(v) = fenced {
                    let _ = fleet.write(ui, v, &base); // release the claim so another host may try
                }
                Err(err)
            }
        }
    }

    /// Publishes a refreshed login with check-and-set on the claimed version. On a conflict: a newer
    /// generation wins (ours is orphaned), the same one means ours is still the newest descendant.
    /// Failures are warnings: this host keeps its fresh tokens either way.
    fn fleet_publish_refreshed(
        &self,
        ui: &mut dyn Interaction,
        fleet: &Fleet,
        base: &Record,
        fenced: Option<u64>,
        fresh: &TokenSet,
    ) {
        let login = SharedLogin::new(&fleet.profile, &fleet.settings.url, base.gen + 1, fresh.clone(), &fleet.holder);
        let record = match Record::sealed(&login, &fleet.recipients) {
            Ok(r) => r,
            Err(e) => return ui.warn(&format!("could not seal the refreshed login for the fleet store: {e}")),
        };
        let mut version = fenced;
        for _ in 0..5 {
            let outcome = match version {
                Some(v) => fleet.write(ui, v, &record),
                None => Ok(Written::Conflict),
            };
            match outcome {
                Ok(Written::Done { .. }) => return,
                Ok(Written::Conflict) => match fleet
                    .read(ui)
                    .and_then(|r| Ok((r.version, r.record.as_ref().map(Record::from_map).transpose()?)))
                {
                    Ok((_, Some(current))) if current.gen > base.gen => {
                        return ui.warn(&format!(
                            "orphaned: another host published generation {} of profile '{}' while this one refreshed; \
                             this host's new login was not published",
                            current.gen, fleet.profile
                        ));
                    }
                    Ok((v, _)) => version = Some(v),
                    Err(e) => return ui.warn(&format!("could not publish the refreshed login: {e}")),
                },
                Err(e) => return ui.warn(&format!("could not publish the refreshed login to the fleet store: {e}")),
            }
        }
        ui.warn("could not publish the refreshed login: the fleet record kept changing");
    }

    /// `store push` (and `login` on a store profile): publishes this host's login as the fleet's next
    /// generation. Without `replace`, an existing usable record is left alone.
    pub fn fleet_push(&self, session: &Session, ui: &mut dyn Interaction, replace: bool) -> Result<Published> {
        let name = session.name();
        let local = self.load(session)?; // the binding first: a changed store URL gets no request
        let fleet = self.fleet(session)?.ok_or_else(|| no_store(name))?;
        let tokens = local.and_then(|e| e.tokens).ok_or_else(|| {
            Error::login_required(name, format!("profile '{name}' is not signed in on this host: nothing to publish"))
        })?;
        let me = fleet.identity.to_public().to_string();
        if !fleet.recipients.iter().any(|r| r.to_string() == me) {
            ui.warn(&format!(
                "this host's key {me} is not among store.recipients: it will not be able to read the fleet's login"
            ));
        }
        for _ in 0..5 {
            let read = fleet.read(ui)?;
            let existing = read.record.as_ref().map(Record::from_map).transpose()?;
            if let (Some(current), false) = (&existing, replace) {
                if !current.needs_login {
                    return Err(Error::Config(format!(
                        "the fleet store already holds a login of profile '{name}' (generation {}, version {}); \
                         `age-oauth store push --profile {name} --force` replaces it with this host's",
                        current.gen, read.version
                    )));
                }
            }
            // Above anything this host saw, so no host that saw a later generation takes it for a rollback.
            let generation = existing.map_or(0, |r| r.gen).max(self.seen_generation(&fleet).unwrap_or(0)) + 1;
            let login = SharedLogin::new(name, &fleet.settings.url, generation, tokens.clone(), &fleet.holder);
            if let Written::Done { version } =
                fleet.write(ui, read.version, &Record::sealed(&login, &fleet.recipients)?)?
            {
                self.remember_generation(&fleet, generation);
                return Ok(Published { version, generation });
            }
        }
        Err(Error::unreachable(
            ServerErrorKind::Timeout,
            format!("the fleet record of profile '{name}' kept changing; try again"),
            None,
        ))
    }

    /// `login` on a store profile whose local copy is still valid: true when the fleet's record is
    /// missing or says `needs_login` (the sign-in the hint asked for must then happen).
    pub(super) fn fleet_wants_login(&self, session: &Session, ui: &mut dyn Interaction) -> Result<bool> {
        let Some(fleet) = self.fleet(session)? else { return Ok(false) };
        let read = fleet.read(ui)?;
        Ok(match read.record.as_ref().map(Record::from_map).transpose()? {
            Some(record) => record.needs_login,
            None => true,
        })
    }

    /// `store status`: the record as the store holds it, and whether this host can read it.
    pub fn fleet_status(&self, session: &Session, ui: &mut dyn Interaction) -> Result<FleetStatus> {
        let name = session.name();
        self.load(session)?; // the binding first: a changed store URL gets no request
        let fleet = self.fleet(session)?.ok_or_else(|| no_store(name))?;
        let read = fleet.read(ui)?;
        let record = read.record.as_ref().map(Record::from_map).transpose()?;
        let now = self.clock.now();
        let claim = record.as_ref().and_then(|r| r.claim.clone()).map(|c| {
            let age_s = fleet::claim_age(&read);
            ClaimStatus {
                live: age_s.is_some_and(|a| a < c.ttl_s.saturating_add(1)),
                holder: c.holder,
                age_s,
                ttl_s: c.ttl_s,
            }
        });
        Ok(FleetStatus {
            profile: name.to_string(),
            store: fleet.store.describe(),
            version: read.version,
            generation: record.as_ref().map(|r| r.gen),
            claim,
            needs_login: record.as_ref().is_some_and(|r| r.needs_login),
            token_expires_at: record.as_ref().and_then(|r| r.expires_at),
            token_expires_in: record.as_ref().and_then(|r| r.expires_at).map(|t| t.saturating_sub(now)),
            can_decrypt: record.as_ref().map(|r| r.open(&fleet.identity, name, &fleet.settings.url).is_ok()),
            store_time: read.store_now,
        })
    }

    /// `store unclaim --force`: drops the claim (a holder known dead), so another host refreshes now.
    /// Returns the holder whose claim was dropped, if there was one.
    pub fn fleet_unclaim(&self, session: &Session, ui: &mut dyn Interaction) -> Result<Option<String>> {
        let name = session.name();
        self.load(session)?;
        let fleet = self.fleet(session)?.ok_or_else(|| no_store(name))?;
        for _ in 0..5 {
            let read = fleet.read(ui)?;
            let Some(mut record) = read.record.as_ref().map(Record::from_map).transpose()? else { return Ok(None) };
            let Some(claim) = record.claim.take() else { return Ok(None) };
            if let Written::Done { .. } = fleet.write(ui, read.version, &record)? {
                return Ok(Some(claim.holder));
            }
        }
        Err(Error::unreachable(
            ServerErrorKind::Timeout,
            format!("the fleet record of profile '{name}' kept changing; try again"),
            None,
        ))
    }
}

/// The newest generation this host has used of a profile's record, kept beside its cache (no secret):
/// a record that goes back (restored from a backup, replayed) would make a host present a refresh
/// token the portal already rotated out, which revokes the login.
#[derive(Serialize, serde::Deserialize)]
struct SeenGeneration {
    url: String,
    mount: String,
    generation: u64,
}

impl Engine {
    fn seen_file(&self, fleet: &Fleet) -> std::path::PathBuf {
        self.paths.cache_dir().join(format!("{}.fleet", fleet.profile))
    }

    /// The generation this host last used of this very store record, if it kept one.
    fn seen_generation(&self, fleet: &Fleet) -> Option<u64> {
        let text = std::fs::read_to_string(self.seen_file(fleet)).ok()?;
        let seen: SeenGeneration = serde_json::from_str(&text).ok()?;
        (seen.url == fleet.settings.url && seen.mount == fleet.settings.mount).then_some(seen.generation)
    }

    /// Raises the kept generation to `generation` (best effort: it only guards against rollbacks).
    fn remember_generation(&self, fleet: &Fleet, generation: u64) {
        if self.seen_generation(fleet).is_some_and(|seen| seen >= generation) {
            return;
        }
        let seen = SeenGeneration { url: fleet.settings.url.clone(), mount: fleet.settings.mount.clone(), generation };
        if let Ok(bytes) = serde_json::to_vec(&seen) {
            let _ = crate::paths::write_atomic(&self.seen_file(fleet), &bytes);
        }
    }
}

fn rolled_back(engine: &Engine, fleet: &Fleet, seen: u64, now: u64) -> Error {
    let name = &fleet.profile;
    Error::server(format!(
        "the fleet record of profile '{name}' went back from generation {seen} (which this host used) to {now} \
         (restored from a backup, or replayed?); it was not used, since refreshing from an older login would \
         present a refresh token the portal already rotated out. If that is intended, publish the newest \
         login again (`age-oauth login --profile {name} --force` signs in and publishes), or delete {} on this host",
        engine.seen_file(fleet).display()
    ))
}

/// `token` gave up waiting for the fleet's record: exit 4, naming the record and what shows it.
fn store_busy(fleet: &Fleet, why: &str) -> Error {
    let name = &fleet.profile;
    Error::unreachable(
        ServerErrorKind::Timeout,
        format!(
            "the fleet store of profile '{name}' is busy: {why} ({}); `age-oauth store status --profile {name}` \
             shows the record, `age-oauth store unclaim --profile {name} --force` drops a dead holder's claim",
            fleet.store.describe()
        ),
        None,
    )
}

fn no_store(name: &str) -> Error {
    Error::Config(format!(
        "profile '{name}' has no fleet store: add a [profiles.{name}.store] table (see README, Fleets)"
    ))
}

fn needs_login(name: &str, why: &str) -> Error {
    Error::login_required(
        name,
        format!(
            "{why}: profile '{name}' needs a new sign-in on one host, which publishes it to every host \
             (no host retries until then)"
        ),
    )
}

fn not_published(session: &Session, fleet: &Fleet) -> Error {
    let name = session.name();
    Error::login_required(
        name,
        format!(
            "the fleet store {} holds no login of profile '{name}' yet; on a host that is signed in, \
             `age-oauth store push --profile {name}` publishes its login",
            fleet.store.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::{Claim, Written};
    use crate::secret::Secret;
    use serde_json::{Map, Value};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A store whose record is always stale, and whose check-and-set writes always lose (a standby
    /// serving an old version, another writer), optionally with a claim that never expires.
    struct NeverWins {
        record: Map<String, Value>,
        reads: AtomicU32,
    }

    impl CasStore for NeverWins {
        fn describe(&self) -> String {
            "fake store".into()
        }
        fn read(&self) -> Result<Read> {
            let n = self.reads.fetch_add(1, Ordering::Relaxed);
            assert!(n < 200, "the host polls the store in a hot loop");
            Ok(Read { version: 5, record: Some(self.record.clone()), written_at: Some(1_000), store_now: Some(1_000) })
        }
        fn write_if(&self, _: u64, _: &Map<String, Value>) -> Result<Written> {
            Ok(Written::Conflict)
        }
    }

    fn fleet_session(dir: &std::path::Path) -> (Engine, Session) {
        let paths = crate::paths::Paths::under(dir.to_path_buf());
        std::fs::write(
            dir.join("config.toml"),
            "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://portal.example.com/portal\"\n\
             client_id = \"app\"\n[profiles.p.store]\nurl = \"vault+http://127.0.0.1:1/age-oauth/p\"\nrecipients = []\n",
        )
        .unwrap();
        let engine = Engine::new(paths.clone());
        let profile = crate::config::Config::load(&paths, dir).unwrap().resolve("p", &[]).unwrap();
        let session = engine.session(profile).unwrap();
        (engine, session)
    }

    fn give_up(claim: Option<Claim>) -> Error {
        let dir = tempfile::tempdir().unwrap();
        let (engine, session) = fleet_session(dir.path());
        let settings = session.profile.engine.store.clone().unwrap();
        let identity = age::x25519::Identity::generate();
        let mut tokens = TokenSet::new(Secret::new("at"), 1);
        tokens.expires_at = Some(2);
        let login = SharedLogin::new("p", &settings.url, 1, tokens, "test");
        let mut record = Record::sealed(&login, &[identity.to_public()]).unwrap();
        record.claim = claim;
        let store = Arc::new(NeverWins { record: record.to_map(), reads: AtomicU32::new(0) });
        let fleet = Fleet {
            store: store.clone(),
            settings,
            recipients: vec![identity.to_public()],
            identity,
            holder: "me".into(),
            profile: "p".into(),
            wait: Duration::from_millis(600),
        };
        let mut ui = crate::interact::Terminal::new(0, &crate::env::Env::default());
        let local = CacheEntry::new("p", "esri-oob");
        let err = engine.fleet_renew(&session, &mut ui, &fleet, 60, None, &local).expect_err("gives up");
        assert!(store.reads.load(Ordering::Relaxed) >= 2, "it tried more than once");
        err
    }

    #[test]
    fn a_host_that_never_wins_the_claim_gives_up_with_exit_4_instead_of_looping() {
        let err = give_up(None);
        assert_eq!(err.exit_code(), 4, "{err}");
        assert!(err.to_string().contains("kept changing"), "{err}");
        assert!(err.to_string().contains("age-oauth store status --profile p"), "{err}");
        let holder = Claim { holder: "host-b pid 7".into(), nonce: "n".into(), ttl_s: 30 };
        let err = give_up(Some(holder));
        assert_eq!(err.exit_code(), 4, "{err}");
        assert!(err.to_string().contains("host-b pid 7 has held the refresh claim"), "{err}");
    }
}
