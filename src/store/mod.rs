//! The per-profile cache: tokens and secrets in one file encrypted with age, plus its lock.
//! Keys come from `AGE_OAUTH_PASSPHRASE`, `AGE_OAUTH_IDENTITY`, or an identity file made on first use.

use crate::error::{Error, Result, ServerErrorKind, StoreErrorKind};
use crate::paths::{ensure_private_dir, write_atomic_with_prefix, Paths};
use crate::secret::Secret;
use crate::token::TokenSet;
use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

mod keyring;
mod keys;
mod lock;

use keyring::with_timeout;
pub use keyring::{os_keyring, Keyring, KEYRING_TIMEOUT};
pub use keys::{encrypt_to, encrypt_with, key_source, parse_identity_file, KeySource};
use keys::{identity_file_text, load_or_create_identity, KeyMaterial, Keys};
pub use lock::ProfileLock;
use lock::{lock_file, open_lock_file, temp_prefix, TEMP_RANDOM_LEN};

/// Version of the JSON document inside the age file.
pub const CACHE_FORMAT: u32 = 1;

/// Everything age-oauth keeps about one profile that must not be seen: its secrets
/// (client secret, password) and its tokens.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct CacheEntry {
    /// The cache format version.
    pub format: u32,
    /// The profile the entry belongs to.
    pub profile: String,
    /// The provider that made it.
    pub provider: String,
    /// Stored secrets (client secret, password), by name.
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    /// The tokens, if signed in.
    #[serde(default)]
    pub tokens: Option<TokenSet>,
    /// The service (portal, server, site) the tokens were issued by and the secrets were
    /// stored for: they are never sent anywhere else (see `Engine::load`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The origins and TLS trust the secrets and tokens belong to (see `binding`); replaces
    /// `service`. Absent in older caches, which are bound to the user file's settings on load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<crate::binding::Binding>,
}

impl CacheEntry {
    /// An empty entry for a profile.
    pub fn new(profile: &str, provider: &str) -> Self {
        CacheEntry {
            format: CACHE_FORMAT,
            profile: profile.to_string(),
            provider: provider.to_string(),
            ..Default::default()
        }
    }
}

/// The encrypted cache of all profiles.
pub struct CacheStore {
    paths: Paths,
    /// Loaded on first use; replaced when `key rotate` changed the identity file meanwhile.
    keys: RwLock<Option<Arc<Keys>>>,
    /// Set when the key source must not come from the environment (`demo`).
    fixed_source: Option<KeySource>,
    keyring: Option<Arc<dyn Keyring>>,
    keyring_timeout: Duration,
}

impl CacheStore {
    /// A store whose key source follows the environment (`AGE_OAUTH_PASSPHRASE`,
    /// `AGE_OAUTH_IDENTITY`), then the OS keyring if built in, then the identity file.
    pub fn new(paths: Paths) -> Self {
        let keyring = os_keyring(&paths);
        CacheStore::with_keyring(paths, keyring, KEYRING_TIMEOUT)
    }

    /// Like `new`, with an injected keyring (tests, other credential stores).
    pub fn with_keyring(paths: Paths, keyring: Option<Arc<dyn Keyring>>, keyring_timeout: Duration) -> Self {
        CacheStore { paths, keys: RwLock::new(None), fixed_source: None, keyring, keyring_timeout }
    }

    /// A store whose key is this machine's identity (`AGE_OAUTH_IDENTITY`, else the keyring
    /// or identity file), never a passphrase: what `cache import` keeps caches under.
    pub fn ignoring_passphrase(paths: Paths) -> Self {
        let source = match key_source(&paths) {
            KeySource::Passphrase => KeySource::IdentityFile(paths.identity_file()),
            other => other,
        };
        let keyring = os_keyring(&paths);
        CacheStore {
            paths,
            keys: RwLock::new(None),
            fixed_source: Some(source),
            keyring,
            keyring_timeout: KEYRING_TIMEOUT,
        }
    }

    /// A store that always uses the identity file under its data dir, whatever the environment says.
    pub fn with_own_identity(paths: Paths) -> Self {
        let source = KeySource::IdentityFile(paths.identity_file());
        CacheStore {
            paths,
            keys: RwLock::new(None),
            fixed_source: Some(source),
            keyring: None,
            keyring_timeout: KEYRING_TIMEOUT,
        }
    }

    /// Where the caches and identity live.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The key source in use once a key was loaded, else the one the environment names.
    pub fn key_source(&self) -> KeySource {
        if let Some(k) = self.cached_keys() {
            return k.source.clone();
        }
        self.fixed_source.clone().unwrap_or_else(|| key_source(&self.paths))
    }

    /// The default identity: the keyring's, else the identity file; when neither exists
    /// and `create` is set, a new one goes to the keyring if it answers, else to the file.
    fn default_identity(&self, path: &Path, create: bool) -> Result<(age::x25519::Identity, KeySource)> {
        let file = || KeySource::IdentityFile(path.to_path_buf());
        let Some(keyring) = self.keyring.clone() else {
            return Ok((load_or_create_identity(path, create)?, file()));
        };
        let ask = |k: Arc<dyn Keyring>| with_timeout(self.keyring_timeout, move || k.get());
        let found = ask(keyring.clone());
        if let Ok(Some(text)) = &found {
            let identity = parse_identity_file(Path::new("the OS keyring entry"), text)?;
            return Ok((identity, KeySource::Keyring(keyring.describe())));
        }
        if path.exists() || !create || found.is_err() {
            return Ok((load_or_create_identity(path, create)?, file()));
        }
        // First use with a working keyring: create the key there, under a lock so two
        // first runs agree on one key.
        ensure_private_dir(&self.paths.data_dir)?;
        let lock = lock_file(&self.paths.data_dir.join("identity.lock"))?;
        if let Ok(Some(text)) = ask(keyring.clone()) {
            drop(lock);
            let identity = parse_identity_file(Path::new("the OS keyring entry"), &text)?;
            return Ok((identity, KeySource::Keyring(keyring.describe())));
        }
        let identity = age::x25519::Identity::generate();
        let text = identity_file_text(&identity);
        let k = keyring.clone();
        match with_timeout(self.keyring_timeout, move || k.set(&text)) {
            Ok(()) => Ok((identity, KeySource::Keyring(keyring.describe()))),
            Err(_) => Ok((load_or_create_identity(path, create)?, file())),
        }
    }

    fn cached_keys(&self) -> Option<Arc<Keys>> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn remember(&self, keys: Keys) -> Arc<Keys> {
        let keys = Arc::new(keys);
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(keys.clone());
        keys
    }

    /// True when the identity file now holds another key than the one loaded
    /// (a `key rotate` ran since): the caller then drops the loaded key.
    fn identity_file_changed(&self, keys: &Keys) -> bool {
        let (KeySource::IdentityFile(path), KeyMaterial::Identity(loaded)) = (&keys.source, &keys.material) else {
            return false;
        };
        match fs::read_to_string(path).ok().and_then(|t| parse_identity_file(path, &t).ok()) {
            Some(current) => current.to_public().to_string() != loaded.to_public().to_string(),
            None => false,
        }
    }

    fn forget_keys(&self) {
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The key, loaded once; `create` makes the identity file when it is missing.
    fn keys(&self, create: bool) -> Result<Arc<Keys>> {
        if let Some(k) = self.cached_keys() {
            return Ok(k);
        }
        let source = self.key_source();
        let material = match &source {
            KeySource::Passphrase => {
                let pass = self.paths().env().raw(crate::env::PASSPHRASE.name).unwrap_or_default().to_string();
                if pass.is_empty() {
                    return Err(Error::Config("AGE_OAUTH_PASSPHRASE is set but empty".into()));
                }
                KeyMaterial::Passphrase(SecretString::from(pass))
            }
            KeySource::IdentityFromEnv(path) => {
                let text = fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("cannot read AGE_OAUTH_IDENTITY file {}", path.display()), e))?;
                KeyMaterial::Identity(Box::new(parse_identity_file(path, &text)?))
            }
            KeySource::IdentityFile(path) => {
                let (identity, actual) = self.default_identity(path, create)?;
                return Ok(self.remember(Keys { material: KeyMaterial::Identity(Box::new(identity)), source: actual }));
            }
            KeySource::Keyring(_) => unreachable!("the environment never names the keyring"),
        };
        Ok(self.remember(Keys { material, source }))
    }

    /// The public key caches are encrypted to (`None` for passphrase mode).
    pub fn public_key(&self, create: bool) -> Result<Option<String>> {
        Ok(match &self.keys(create)?.material {
            KeyMaterial::Identity(id) => Some(id.to_public().to_string()),
            KeyMaterial::Passphrase(_) => None,
        })
    }

    /// True when the profile has a cache file.
    pub fn exists(&self, profile: &str) -> bool {
        self.paths.cache_file(profile).exists()
    }

    /// Reads and decrypts a profile's cache; `Ok(None)` when there is none.
    /// Any file that is there but unusable is an error, and is left as it is.
    pub fn load(&self, profile: &str) -> Result<Option<CacheEntry>> {
        match self.load_once(profile) {
            Err(Error::Store(e)) if e.kind == StoreErrorKind::WrongKey => {
                // A `key rotate` may have replaced the identity since we loaded it.
                match self.cached_keys() {
                    Some(k) if self.identity_file_changed(&k) => {
                        self.forget_keys();
                        self.load_once(profile)
                    }
                    _ => Err(Error::Store(e)),
                }
            }
            other => other,
        }
    }

    fn load_once(&self, profile: &str) -> Result<Option<CacheEntry>> {
        let path = self.paths.cache_file(profile);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read the cache of profile '{profile}'"), e)),
        };
        let damaged = |why: &str| {
            Error::store(
                StoreErrorKind::Damaged,
                format!(
                    "the cache of profile '{profile}' ({}) cannot be read: {why}; it was left untouched — \
                 restore it, or replace it with `age-oauth login --profile {profile} --force` \
                 (stored secrets in it are then lost)",
                    path.display()
                ),
            )
        };
        if bytes.is_empty() {
            return Err(damaged("the file is empty"));
        }
        if !bytes.starts_with(b"age-encryption.org/") {
            return Err(damaged("it is not an age file"));
        }
        let decryptor = age::Decryptor::new_buffered(&bytes[..]).map_err(|e| damaged(&describe_decrypt_error(&e)))?;
        let keys = match self.keys(false) {
            Ok(k) => k,
            Err(_) if decryptor.is_scrypt() => return Err(passphrase_needed(profile)),
            Err(e) => return Err(e),
        };
        let mut plain = Vec::new();
        let result = match (&keys.material, decryptor.is_scrypt()) {
            (KeyMaterial::Passphrase(p), true) => {
                let id = age::scrypt::Identity::new(p.clone());
                decryptor.decrypt(std::iter::once(&id as &dyn age::Identity))
            }
            (KeyMaterial::Identity(id), false) => decryptor.decrypt(std::iter::once(id.as_ref() as &dyn age::Identity)),
            (KeyMaterial::Identity(_), true) => return Err(passphrase_needed(profile)),
            (KeyMaterial::Passphrase(_), false) => {
                return Err(Error::store(
                    StoreErrorKind::Passphrase,
                    format!(
                        "the cache of profile '{profile}' is encrypted to an age identity, not a passphrase: \
                     unset AGE_OAUTH_PASSPHRASE (or set AGE_OAUTH_IDENTITY to the right key)"
                    ),
                ))
            }
        };
        let mut reader = result.map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::store(
                StoreErrorKind::WrongKey,
                format!(
                    "the cache of profile '{profile}' ({}) is encrypted to another key than {}; \
                 set AGE_OAUTH_IDENTITY to the identity it was made for, or replace it with \
                 `age-oauth login --profile {profile} --force`",
                    path.display(),
                    keys.source.describe()
                ),
            ),
            age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed
                if matches!(keys.material, KeyMaterial::Passphrase(_)) =>
            {
                Error::store(
                    StoreErrorKind::Passphrase,
                    format!(
                    "wrong passphrase for the cache of profile '{profile}' (AGE_OAUTH_PASSPHRASE); nothing was changed"
                ),
                )
            }
            other => damaged(&describe_decrypt_error(&other)),
        })?;
        reader.read_to_end(&mut plain).map_err(|_| damaged("the file is truncated or altered"))?;
        let entry: CacheEntry = serde_json::from_slice(&plain)
            .map_err(|_| damaged("its content is not a cache this version understands"))?;
        if entry.format != CACHE_FORMAT {
            return Err(damaged(&format!("cache format {} is not supported", entry.format)));
        }
        if entry.profile != profile {
            // A renamed or copied file: using it would fork one login into two, and on a
            // portal that rotates refresh tokens the replayed one revokes the grant.
            let owner = match crate::config::validate_profile_name(&entry.profile) {
                Ok(()) => format!(
                    "the login of profile '{}' (it was renamed or copied); it was left untouched — move it back \
                     to {}, or",
                    entry.profile,
                    self.paths.cache_file(&entry.profile).display()
                ),
                Err(_) => "another profile's login (it was renamed or copied); it was left untouched —".into(),
            };
            return Err(Error::store(
                StoreErrorKind::Misplaced,
                format!(
                    "the cache file of profile '{profile}' ({}) holds {owner} replace it with \
                     `age-oauth login --profile {profile} --force`",
                    path.display(),
                ),
            ));
        }
        Ok(Some(entry))
    }

    /// Encrypts and atomically replaces the cache of the profile whose lock is held (the file
    /// is named by the lock, never by the entry). Only the engine's `update` calls this.
    pub fn save(&self, lock: &ProfileLock, entry: &CacheEntry) -> Result<()> {
        let mut keys = self.keys(true)?;
        if self.identity_file_changed(&keys) {
            self.forget_keys();
            keys = self.keys(true)?;
        }
        let plain = serde_json::to_vec(entry).map_err(|e| Error::Other(format!("cannot encode the cache: {e}")))?;
        let cipher = match &keys.material {
            KeyMaterial::Identity(id) => encrypt_to(&plain, &[id.to_public()])?,
            KeyMaterial::Passphrase(p) => encrypt_with(&plain, age::Encryptor::with_user_passphrase(p.clone()))?,
        };
        self.write_cache(lock, &cipher)
    }

    /// Writes a cache encrypted to exactly these recipients (`key rotate` uses the old
    /// and new key together, so a crash mid-rotation leaves every cache readable).
    pub fn save_to(&self, lock: &ProfileLock, entry: &CacheEntry, recipients: &[age::x25519::Recipient]) -> Result<()> {
        let plain = serde_json::to_vec(entry).map_err(|e| Error::Other(format!("cannot encode the cache: {e}")))?;
        self.write_cache(lock, &encrypt_to(&plain, recipients)?)
    }

    /// Removes temp files a killed writer of this profile left, then writes atomically
    /// through a temp file of its own (named after the profile, so no other profile's
    /// writer in flight is touched).
    fn write_cache(&self, lock: &ProfileLock, bytes: &[u8]) -> Result<()> {
        self.remove_temp_files(lock);
        write_atomic_with_prefix(&self.paths.cache_file(&lock.profile), bytes, &temp_prefix(&lock.profile))
    }

    /// Deletes temp files left by a killed writer of the locked profile (best effort).
    pub fn remove_temp_files(&self, lock: &ProfileLock) -> usize {
        let prefix = temp_prefix(&lock.profile);
        let Ok(entries) = fs::read_dir(self.paths.cache_dir()) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_ours = name
                .strip_prefix(&prefix)
                .is_some_and(|rest| rest.len() == TEMP_RANDOM_LEN && rest.chars().all(|c| c.is_ascii_alphanumeric()));
            if is_ours && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// The last failed refresh of a profile (see `FailureRecord`), if any.
    pub fn last_failure(&self, profile: &str) -> Option<FailureRecord> {
        let text = fs::read_to_string(self.paths.cache_dir().join(format!("{profile}.failure"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Records a failed refresh beside the lock (written under it; holds no secret).
    pub fn record_failure(&self, lock: &ProfileLock, record: &FailureRecord) -> Result<()> {
        let text = serde_json::to_vec(record).map_err(|e| Error::Other(format!("cannot encode: {e}")))?;
        write_atomic_with_prefix(
            &self.paths.cache_dir().join(format!("{}.failure", lock.profile)),
            &text,
            &temp_prefix(&lock.profile),
        )
    }

    /// Forgets the last failure (after a success, or when the profile is removed).
    pub fn clear_failure(&self, lock: &ProfileLock) {
        let _ = fs::remove_file(self.paths.cache_dir().join(format!("{}.failure", lock.profile)));
    }

    /// Profiles that have a cache file.
    pub fn cached_profiles(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let dir = self.paths.cache_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(Error::io(format!("cannot list {}", dir.display()), e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(profile) = name.strip_suffix(".age") {
                names.push(profile.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The X25519 identity in use, when the caches are protected by one.
    pub fn identity(&self, create: bool) -> Result<Option<age::x25519::Identity>> {
        Ok(match &self.keys(create)?.material {
            KeyMaterial::Identity(id) => Some(id.as_ref().clone()),
            KeyMaterial::Passphrase(_) => None,
        })
    }

    /// Deletes the locked profile's cache, its temp files and failure record; true when
    /// there was a cache. Only the engine calls this.
    pub fn remove(&self, lock: &ProfileLock) -> Result<bool> {
        self.remove_temp_files(lock);
        self.clear_failure(lock);
        let path = self.paths.cache_file(&lock.profile);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot delete {}", path.display()), e)),
        }
    }

    /// Takes the profile's sidecar lock (blocking). Held until the guard drops;
    /// the OS releases it if the process dies.
    pub fn lock(&self, profile: &str) -> Result<ProfileLock> {
        ensure_private_dir(&self.paths.cache_dir())?;
        let file = open_lock_file(&self.paths.lock_file(profile))?;
        let path = self.paths.lock_file(profile);
        file.lock().map_err(|e| Error::io(format!("cannot lock {}", path.display()), e))?;
        Ok(ProfileLock { profile: profile.to_string(), _file: file })
    }

    /// Takes the profile's lock, waiting at most `max_wait`: a process that holds it longer
    /// (hung on a server that never answers) is reported as a transient failure.
    pub fn lock_within(&self, profile: &str, max_wait: Duration) -> Result<ProfileLock> {
        ensure_private_dir(&self.paths.cache_dir())?;
        let path = self.paths.lock_file(profile);
        let file = open_lock_file(&path)?;
        let deadline = std::time::Instant::now() + max_wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ProfileLock { profile: profile.to_string(), _file: file }),
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::unreachable(
                        ServerErrorKind::Timeout,
                        format!(
                            "another age-oauth process has been refreshing profile '{profile}' for more than {} s \
                             (its lock {} is still held)",
                            max_wait.as_secs(),
                            path.display()
                        ),
                        None,
                    ))
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("cannot lock {}", path.display()), e)),
            }
        }
    }
}

/// A refresh that failed, kept beside the lock so that processes waiting for the lock
/// report it instead of each trying again (no secret in it: times and the error's text).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailureRecord {
    /// When it failed, in milliseconds since the epoch (the real clock, not the token clock).
    pub at_ms: u64,
    /// `transient`, `login` or `refused`.
    pub kind: String,
    pub message: String,
}

fn describe_decrypt_error(e: &age::DecryptError) -> String {
    match e {
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => "it is not an age file".into(),
        age::DecryptError::InvalidMac => "its header was altered".into(),
        age::DecryptError::Io(_) => "the file is truncated".into(),
        age::DecryptError::ExcessiveWork { .. } => "its passphrase work factor is too high".into(),
        _ => "it does not decrypt (truncated or altered)".into(),
    }
}

/// A passphrase cache read without the passphrase.
fn passphrase_needed(profile: &str) -> Error {
    Error::store(
        StoreErrorKind::Passphrase,
        format!("the cache of profile '{profile}' is protected by a passphrase: set AGE_OAUTH_PASSPHRASE to read it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory keyring; `hang` makes every call block forever, `broken` fail.
    #[derive(Default)]
    struct FakeKeyring {
        value: Mutex<Option<String>>,
        hang: bool,
        broken: bool,
    }

    impl Keyring for FakeKeyring {
        fn get(&self) -> std::result::Result<Option<String>, String> {
            if self.hang {
                std::thread::park();
            }
            if self.broken {
                return Err("no keyring daemon".into());
            }
            Ok(self.value.lock().unwrap().clone())
        }
        fn set(&self, value: &str) -> std::result::Result<(), String> {
            if self.broken {
                return Err("no keyring daemon".into());
            }
            *self.value.lock().unwrap() = Some(value.to_string());
            Ok(())
        }
        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn entry() -> CacheEntry {
        let mut e = CacheEntry::new("p", "esri-oob");
        e.secrets.insert("client_secret".into(), Secret::new("s3cret"));
        e
    }

    fn store(dir: &Path, keyring: &Arc<FakeKeyring>) -> CacheStore {
        let k: Arc<dyn Keyring> = keyring.clone();
        CacheStore::with_keyring(Paths::under(dir.to_path_buf()), Some(k), Duration::from_millis(300))
    }

    #[test]
    fn a_working_keyring_holds_the_identity_and_no_key_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(FakeKeyring::default());
        let s = store(dir.path(), &keyring);
        s.save(&s.lock("p").unwrap(), &entry()).unwrap();
        assert!(!dir.path().join("identity.txt").exists());
        assert!(keyring.value.lock().unwrap().as_deref().unwrap().contains("AGE-SECRET-KEY-1"));
        let again = store(dir.path(), &keyring);
        assert_eq!(again.load("p").unwrap().unwrap(), entry());
        assert_eq!(again.key_source(), KeySource::Keyring("fake".into()));
    }

    #[test]
    fn a_hanging_or_broken_keyring_falls_back_to_the_identity_file() {
        for keyring in
            [FakeKeyring { hang: true, ..Default::default() }, FakeKeyring { broken: true, ..Default::default() }]
        {
            let dir = tempfile::tempdir().unwrap();
            let keyring = Arc::new(keyring);
            let s = store(dir.path(), &keyring);
            s.save(&s.lock("p").unwrap(), &entry()).unwrap();
            assert!(dir.path().join("identity.txt").exists());
            assert_eq!(s.key_source(), KeySource::IdentityFile(dir.path().join("identity.txt")));
            assert_eq!(store(dir.path(), &keyring).load("p").unwrap().unwrap(), entry());
        }
    }

    #[test]
    fn an_existing_identity_file_wins_over_an_empty_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let plain = CacheStore::with_keyring(Paths::under(dir.path().to_path_buf()), None, KEYRING_TIMEOUT);
        plain.save(&plain.lock("p").unwrap(), &entry()).unwrap();
        let keyring = Arc::new(FakeKeyring::default());
        let s = store(dir.path(), &keyring);
        assert_eq!(s.load("p").unwrap().unwrap(), entry(), "the file's key still opens old caches");
        s.save(&s.lock("p").unwrap(), &entry()).unwrap();
        assert!(keyring.value.lock().unwrap().is_none(), "no second key is created in the keyring");
    }

    #[test]
    fn the_key_comes_from_the_environment_the_paths_were_given() {
        let dir = tempfile::tempdir().unwrap();
        let env = crate::env::Env::from_pairs([("AGE_OAUTH_PASSPHRASE", "correct horse")]);
        let with_pass = CacheStore::new(Paths::under(dir.path().to_path_buf()).with_env(env));
        assert_eq!(with_pass.key_source(), KeySource::Passphrase);
        with_pass.save(&with_pass.lock("p").unwrap(), &entry()).unwrap();
        assert!(!dir.path().join("identity.txt").exists(), "a passphrase store makes no identity file");
        let wrong = crate::env::Env::from_pairs([("AGE_OAUTH_PASSPHRASE", "wrong")]);
        assert!(CacheStore::new(Paths::under(dir.path().to_path_buf()).with_env(wrong)).load("p").is_err());
        let plain = CacheStore::new(Paths::under(dir.path().to_path_buf()));
        assert_eq!(plain.key_source(), KeySource::IdentityFile(dir.path().join("identity.txt")));
    }
}
