//! The per-profile cache: tokens and secrets in one file encrypted with age, plus its lock.
//! Keys come from `AGE_OAUTH_PASSPHRASE`, `AGE_OAUTH_IDENTITY`, or an identity file made on first use.

use crate::error::{Error, Result};
use crate::paths::{create_new_atomic, write_atomic, Paths};
use crate::secret::Secret;
use crate::token::TokenSet;
use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

/// Version of the JSON document inside the age file.
pub const CACHE_FORMAT: u32 = 1;

/// Everything age-oauth keeps about one profile that must not be seen: its secrets
/// (client secret, password) and its tokens.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct CacheEntry {
    pub format: u32,
    pub profile: String,
    pub provider: String,
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    #[serde(default)]
    pub tokens: Option<TokenSet>,
}

impl CacheEntry {
    pub fn new(profile: &str, provider: &str) -> Self {
        CacheEntry {
            format: CACHE_FORMAT,
            profile: profile.to_string(),
            provider: provider.to_string(),
            ..Default::default()
        }
    }
}

/// Where the key that protects the caches comes from (shown by `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `AGE_OAUTH_PASSPHRASE`: scrypt, slow on purpose, no key on disk.
    Passphrase,
    /// `AGE_OAUTH_IDENTITY`: an age identity file the user manages.
    IdentityFromEnv(PathBuf),
    /// The identity file age-oauth created in its data directory.
    IdentityFile(PathBuf),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Passphrase => "passphrase (AGE_OAUTH_PASSPHRASE, scrypt)".into(),
            KeySource::IdentityFromEnv(p) => {
                format!("age identity from AGE_OAUTH_IDENTITY ({})", p.display())
            }
            KeySource::IdentityFile(p) => format!("age identity file {}", p.display()),
        }
    }
}

enum KeyMaterial {
    Identity(Box<age::x25519::Identity>),
    Passphrase(SecretString),
}

struct Keys {
    material: KeyMaterial,
    source: KeySource,
}

/// Reads the key source from the environment without touching any file.
pub fn key_source(paths: &Paths) -> KeySource {
    if std::env::var_os("AGE_OAUTH_PASSPHRASE").is_some() {
        KeySource::Passphrase
    } else if let Some(p) = std::env::var_os("AGE_OAUTH_IDENTITY").filter(|p| !p.is_empty()) {
        KeySource::IdentityFromEnv(PathBuf::from(p))
    } else {
        KeySource::IdentityFile(paths.identity_file())
    }
}

/// Parses the X25519 identities of an age identity file (comments and blank lines allowed).
pub fn parse_identity_file(path: &Path, text: &str) -> Result<age::x25519::Identity> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| age::x25519::Identity::from_str(l).ok())
        .ok_or_else(|| {
            Error::Config(format!(
                "{} holds no age X25519 identity (a line starting with AGE-SECRET-KEY-1)",
                path.display()
            ))
        })
}

fn identity_file_text(identity: &age::x25519::Identity) -> String {
    format!(
        "# age-oauth cache key: keep this file private (0600); losing it means logging in again\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    )
}

/// The encrypted cache of all profiles.
pub struct CacheStore {
    paths: Paths,
    keys: OnceLock<Keys>,
    /// Set when the key source must not come from the environment (`demo`).
    fixed_source: Option<KeySource>,
}

impl CacheStore {
    /// A store whose key source follows the environment (`AGE_OAUTH_PASSPHRASE`, `AGE_OAUTH_IDENTITY`).
    pub fn new(paths: Paths) -> Self {
        CacheStore { paths, keys: OnceLock::new(), fixed_source: None }
    }

    /// A store that always uses the identity file under its data dir, whatever the environment says.
    pub fn with_own_identity(paths: Paths) -> Self {
        let source = KeySource::IdentityFile(paths.identity_file());
        CacheStore { paths, keys: OnceLock::new(), fixed_source: Some(source) }
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn key_source(&self) -> KeySource {
        self.fixed_source.clone().unwrap_or_else(|| key_source(&self.paths))
    }

    /// The key, loaded once; `create` makes the identity file when it is missing.
    fn keys(&self, create: bool) -> Result<&Keys> {
        if let Some(k) = self.keys.get() {
            return Ok(k);
        }
        let source = self.key_source();
        let material = match &source {
            KeySource::Passphrase => {
                let pass = std::env::var("AGE_OAUTH_PASSPHRASE").unwrap_or_default();
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
            KeySource::IdentityFile(path) => KeyMaterial::Identity(Box::new(load_or_create_identity(path, create)?)),
        };
        Ok(self.keys.get_or_init(|| Keys { material, source }))
    }

    /// The public key caches are encrypted to (`None` for passphrase mode).
    pub fn public_key(&self, create: bool) -> Result<Option<String>> {
        Ok(match &self.keys(create)?.material {
            KeyMaterial::Identity(id) => Some(id.to_public().to_string()),
            KeyMaterial::Passphrase(_) => None,
        })
    }

    pub fn exists(&self, profile: &str) -> bool {
        self.paths.cache_file(profile).exists()
    }

    /// Reads and decrypts a profile's cache; `Ok(None)` when there is none.
    /// Any file that is there but unusable is an error, and is left as it is.
    pub fn load(&self, profile: &str) -> Result<Option<CacheEntry>> {
        let path = self.paths.cache_file(profile);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read the cache of profile '{profile}'"), e)),
        };
        let damaged = |why: &str| {
            Error::Cache(format!(
                "the cache of profile '{profile}' ({}) cannot be read: {why}; it was left untouched — \
                 restore it, or replace it with `age-oauth login --profile {profile} --force` \
                 (stored secrets in it are then lost)",
                path.display()
            ))
        };
        if bytes.is_empty() {
            return Err(damaged("the file is empty"));
        }
        let decryptor = age::Decryptor::new(&bytes[..]).map_err(|e| damaged(&describe_decrypt_error(&e)))?;
        let keys = match self.keys(false) {
            Ok(k) => k,
            Err(_) if decryptor.is_scrypt() => {
                return Err(Error::Cache(format!(
                    "the cache of profile '{profile}' is protected by a passphrase: set AGE_OAUTH_PASSPHRASE to read it"
                )))
            }
            Err(e) => return Err(e),
        };
        let mut plain = Vec::new();
        let result = match (&keys.material, decryptor.is_scrypt()) {
            (KeyMaterial::Passphrase(p), true) => {
                let id = age::scrypt::Identity::new(p.clone());
                decryptor.decrypt(std::iter::once(&id as &dyn age::Identity))
            }
            (KeyMaterial::Identity(id), false) => decryptor.decrypt(std::iter::once(id.as_ref() as &dyn age::Identity)),
            (KeyMaterial::Identity(_), true) => {
                return Err(Error::Cache(format!(
                    "the cache of profile '{profile}' is protected by a passphrase: set AGE_OAUTH_PASSPHRASE to read it"
                )))
            }
            (KeyMaterial::Passphrase(_), false) => {
                return Err(Error::Cache(format!(
                    "the cache of profile '{profile}' is encrypted to an age identity, not a passphrase: \
                     unset AGE_OAUTH_PASSPHRASE (or set AGE_OAUTH_IDENTITY to the right key)"
                )))
            }
        };
        let mut reader = result.map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::Cache(format!(
                "the cache of profile '{profile}' ({}) is encrypted to another key than {}; \
                 set AGE_OAUTH_IDENTITY to the identity it was made for, or replace it with \
                 `age-oauth login --profile {profile} --force`",
                path.display(),
                keys.source.describe()
            )),
            age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed
                if matches!(keys.material, KeyMaterial::Passphrase(_)) =>
            {
                Error::Cache(format!(
                    "wrong passphrase for the cache of profile '{profile}' (AGE_OAUTH_PASSPHRASE); nothing was changed"
                ))
            }
            other => damaged(&describe_decrypt_error(&other)),
        })?;
        reader.read_to_end(&mut plain).map_err(|_| damaged("the file is truncated or altered"))?;
        let entry: CacheEntry = serde_json::from_slice(&plain)
            .map_err(|_| damaged("its content is not a cache this version understands"))?;
        if entry.format != CACHE_FORMAT {
            return Err(damaged(&format!("cache format {} is not supported", entry.format)));
        }
        Ok(Some(entry))
    }

    /// Encrypts and atomically replaces a profile's cache.
    pub fn save(&self, entry: &CacheEntry) -> Result<()> {
        let keys = self.keys(true)?;
        let plain = serde_json::to_vec(entry).map_err(|e| Error::Other(format!("cannot encode the cache: {e}")))?;
        let encryptor = match &keys.material {
            KeyMaterial::Identity(id) => {
                let recipient = id.to_public();
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .map_err(|e| Error::Other(format!("cannot encrypt the cache: {e}")))?
            }
            KeyMaterial::Passphrase(p) => age::Encryptor::with_user_passphrase(p.clone()),
        };
        let mut cipher = Vec::with_capacity(plain.len() + 256);
        let enc_err = |e: std::io::Error| Error::Other(format!("cannot encrypt the cache: {e}"));
        let mut writer = encryptor.wrap_output(&mut cipher).map_err(enc_err)?;
        writer.write_all(&plain).map_err(enc_err)?;
        writer.finish().map_err(enc_err)?;
        write_atomic(&self.paths.cache_file(&entry.profile), &cipher)
    }

    /// Deletes a profile's cache; true when there was one.
    pub fn remove(&self, profile: &str) -> Result<bool> {
        let path = self.paths.cache_file(profile);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("cannot delete {}", path.display()), e)),
        }
    }

    /// Takes the profile's sidecar lock (blocking). Held until the guard drops;
    /// the OS releases it if the process dies.
    pub fn lock(&self, profile: &str) -> Result<ProfileLock> {
        let path = self.paths.lock_file(profile);
        crate::paths::ensure_private_dir(&self.paths.cache_dir())?;
        let mut options = fs::OpenOptions::new();
        options.create(true).truncate(false).read(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| Error::io(format!("cannot open lock {}", path.display()), e))?;
        file.lock().map_err(|e| Error::io(format!("cannot lock {}", path.display()), e))?;
        Ok(ProfileLock { _file: file })
    }
}

/// Holds a profile's sidecar lock while alive.
pub struct ProfileLock {
    _file: fs::File,
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

fn load_or_create_identity(path: &Path, create: bool) -> Result<age::x25519::Identity> {
    match fs::read_to_string(path) {
        Ok(text) => parse_identity_file(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let identity = age::x25519::Identity::generate();
            if create_new_atomic(path, identity_file_text(&identity).as_bytes())? {
                Ok(identity)
            } else {
                // Another process created it first: use theirs.
                let text = fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                parse_identity_file(path, &text)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Cache(format!(
            "the key that protects the cache ({}) is missing; set AGE_OAUTH_IDENTITY to the identity the cache was made for, \
             or log in again with `age-oauth login --force`",
            path.display()
        ))),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}
