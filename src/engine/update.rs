//! The one writer: every change to a profile's cache goes through `Engine::update` — lock the sidecar,
//! guarded re-read, change, bind, atomic write — and every read through `Engine::load`.

use super::{Engine, Session};
use crate::error::{Error, Result};
use crate::store::{CacheEntry, ProfileLock};
use std::time::Duration;

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
pub fn bind(entry: &mut CacheEntry, session: &Session) -> Result<bool> {
    crate::binding::bind(entry, session)
}

impl Engine {
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
    pub(super) fn load_unguarded(&self, session: &Session) -> Result<Option<CacheEntry>> {
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
            bind(e, session)?;
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
                Some(session) => bind(&mut e.clone(), session)?,
                None => crate::binding::recorded_in_entry(e).is_some(),
            };
            if rebound {
                e.tokens = None;
            }
            if bind_to.is_none() {
                crate::binding::record(e, None);
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
