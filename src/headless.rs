//! Moving a login to a headless server: `cache export` re-encrypts a profile (settings and
//! cache) to the server's age key or a passphrase; `cache import` keeps it under the server's own key.

use crate::config::{self, Origin, ResolvedProfile};
use crate::engine::{Engine, Reread, UpdateOptions};
use crate::error::{Error, Result};
use crate::paths::write_atomic;
use crate::secret::Secret;
use crate::store::{encrypt_to, encrypt_with, parse_identity_file, CacheEntry, KeySource, ProfileLock};
use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

/// Tag of the JSON document inside an export.
pub const EXPORT_FORMAT: &str = "age-oauth-export/1";

/// What an export file holds (inside age ciphertext).
#[derive(Debug, Serialize, Deserialize)]
pub struct Export {
    pub format: String,
    pub profile: String,
    pub provider: String,
    /// The non-secret settings that are not defaults.
    pub settings: Map<String, Value>,
    pub cache: CacheEntry,
}

/// Who can open an export.
pub enum ExportTo {
    Recipients(Vec<age::x25519::Recipient>),
    Passphrase(Secret),
}

/// Parses age recipients (`age1…`), one per line; `#` comments and blank lines allowed.
pub fn parse_recipients(text: &str, source: &str) -> Result<Vec<age::x25519::Recipient>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("ssh-") {
            return Err(Error::Config(format!(
                "{source}:{}: SSH recipients are not supported by this build; give the server's age public key \
                 (`age-oauth key show` on the server)",
                i + 1
            )));
        }
        out.push(
            age::x25519::Recipient::from_str(line)
                .map_err(|e| Error::Config(format!("{source}:{}: not an age public key (age1…): {e}", i + 1)))?,
        );
    }
    if out.is_empty() {
        return Err(Error::Config(format!("{source} holds no recipient")));
    }
    Ok(out)
}

/// The settings an export carries: the user file's profile when its binding is the one `entry`
/// records (never the working directory's values); `None` when the user file does not define the
/// profile, or defines it elsewhere (then the session's settings, already checked against the
/// binding by `Engine::load`, are exported).
pub fn bound_settings(
    paths: &crate::paths::Paths,
    session: &crate::engine::Session,
    entry: &CacheEntry,
) -> Result<Option<ResolvedProfile>> {
    let Some(user) = config::Config::load_user(paths)? else {
        return Ok(None);
    };
    if user.provider_of(session.name()).as_deref() != Some(session.provider_name()) {
        return Ok(None);
    }
    let Ok(profile) = user.resolve(session.name(), &[]) else {
        return Ok(None);
    };
    let user_binding = crate::binding::user_file_binding(paths, session.name())?;
    let recorded = crate::binding::recorded(entry, paths)?;
    Ok(match (user_binding, recorded) {
        (Some(u), Some(r)) if u.matches(&r) => Some(profile),
        _ => None,
    })
}

/// Builds and encrypts the export of a profile whose cache is `entry`.
pub fn export_bytes(profile: &ResolvedProfile, entry: CacheEntry, to: &ExportTo) -> Result<Vec<u8>> {
    let settings: Map<String, Value> = profile
        .values
        .iter()
        .filter(|(k, _)| !matches!(profile.origins.get(*k), Some(Origin::Default) | None))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let export = Export {
        format: EXPORT_FORMAT.into(),
        profile: profile.name.clone(),
        provider: profile.provider.name.into(),
        settings,
        cache: entry,
    };
    let plain = serde_json::to_vec(&export).map_err(|e| Error::Other(format!("cannot encode the export: {e}")))?;
    match to {
        ExportTo::Recipients(r) => encrypt_to(&plain, r),
        ExportTo::Passphrase(p) => {
            encrypt_with(&plain, age::Encryptor::with_user_passphrase(SecretString::from(p.expose().to_string())))
        }
    }
}

/// Decrypts an export with the identity from `AGE_OAUTH_IDENTITY` or with a passphrase.
pub fn open_export(
    bytes: &[u8],
    identity: Option<&age::x25519::Identity>,
    passphrase: Option<&Secret>,
) -> Result<Export> {
    let decryptor = age::Decryptor::new(bytes)
        .map_err(|_| Error::Config("the file is not an age-oauth export (not an age file)".into()))?;
    let mut reader = if decryptor.is_scrypt() {
        let pass = passphrase.ok_or_else(|| {
            Error::Config(
                "the export is protected by a passphrase: set AGE_OAUTH_EXPORT_PASSPHRASE or run on a terminal".into(),
            )
        })?;
        let id = age::scrypt::Identity::new(SecretString::from(pass.expose().to_string()));
        decryptor
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .map_err(|_| Error::Config("wrong passphrase for the export; nothing was imported".into()))?
    } else {
        let id = identity.ok_or_else(|| {
            Error::Config(
                "the export is encrypted to an age key and this machine has none yet: run `age-oauth key show` here \
                 and export to that key, or set AGE_OAUTH_IDENTITY to the identity the export was made for"
                    .into(),
            )
        })?;
        decryptor.decrypt(std::iter::once(id as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::Config(
                "the export was made for another key: re-export it with this machine's public key (`age-oauth key show`)"
                    .into(),
            ),
            _ => Error::Config("the export is truncated or altered; nothing was imported".into()),
        })?
    };
    let mut plain = Vec::new();
    reader
        .read_to_end(&mut plain)
        .map_err(|_| Error::Config("the export is truncated or altered; nothing was imported".into()))?;
    let export: Export = serde_json::from_slice(&plain)
        .map_err(|_| Error::Config("the file decrypts but is not an age-oauth export".into()))?;
    if export.format != EXPORT_FORMAT {
        return Err(Error::Config(format!("unsupported export format `{}`", export.format)));
    }
    Ok(export)
}

/// Reads the identity named by `AGE_OAUTH_IDENTITY` in `env`, if set.
pub fn identity_from_env(env: &crate::env::Env) -> Result<Option<age::x25519::Identity>> {
    match env.get(&crate::env::IDENTITY).map(std::ffi::OsString::from) {
        None => Ok(None),
        Some(p) => {
            let path = Path::new(&p);
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::io(format!("cannot read AGE_OAUTH_IDENTITY file {}", path.display()), e))?;
            Ok(Some(parse_identity_file(path, &text)?))
        }
    }
}

/// Stores an opened export as profile `name`: settings into the user file, the cache
/// re-encrypted under `store`'s own key.
pub fn import(engine: &Engine, export: Export, name: &str, force: bool) -> Result<()> {
    let store = &engine.store;
    config::validate_profile_name(name)?;
    crate::registry::find(&export.provider)?;
    if store.exists(name) && !force {
        return Err(Error::Config(format!(
            "profile '{name}' already has a cache here; import with --as OTHER, or --force to replace it"
        )));
    }
    let mut imported = export.cache;
    imported.profile = name.to_string();
    imported.provider = export.provider.clone();
    config::write_profile(store.paths(), name, &export.provider, &export.settings)?;
    // Bound to what was just written in the user file, whatever the export carried.
    crate::binding::record(&mut imported, crate::binding::user_file_binding(store.paths(), name)?);
    let options = UpdateOptions { reread: if force { Reread::Replace } else { Reread::Checked }, ..Default::default() };
    engine.update(name, options, |entry, _| {
        *entry = Some(imported);
        Ok(())
    })
}

/// `key rotate`: re-encrypts every cache to a new identity. Each step leaves every cache
/// readable: caches first go to old+new, then the identity file is swapped, then new only.
pub fn rotate_identity(engine: &Engine) -> Result<(String, usize)> {
    let store = &engine.store;
    let old = store.identity(false)?.ok_or_else(|| {
        Error::Config(
            "the caches are protected by a passphrase (AGE_OAUTH_PASSPHRASE): there is no key to rotate".into(),
        )
    })?;
    let path = match store.key_source() {
        KeySource::IdentityFile(p) => p,
        other => {
            return Err(Error::Config(format!(
                "the caches use {}: `key rotate` only replaces the identity file age-oauth manages",
                other.describe()
            )))
        }
    };
    let profiles = store.cached_profiles()?;
    // Hold every profile's lock for the whole rotation: no refresh writes with the old key meanwhile.
    let locks: Vec<_> = profiles.iter().map(|p| store.lock(p)).collect::<Result<_>>()?;
    // Every cache must be readable before anything is re-encrypted.
    for p in &profiles {
        store.load(p)?.ok_or_else(|| Error::Other(format!("the cache of '{p}' vanished")))?;
    }
    let new = age::x25519::Identity::generate();
    let both = [old.to_public(), new.to_public()];
    let reencrypt = |lock: &ProfileLock, recipients: &[age::x25519::Recipient]| {
        let options =
            UpdateOptions { held: Some(lock), recipients: Some(recipients), rewrite: true, ..Default::default() };
        engine.update(lock.profile(), options, |_, _| Ok(()))
    };
    for lock in &locks {
        reencrypt(lock, &both)?;
    }
    let text = format!(
        "# age-oauth cache key: keep this file private (0600); losing it means logging in again\n# public key: {}\n{}\n",
        new.to_public(),
        age::secrecy::ExposeSecret::expose_secret(&new.to_string())
    );
    write_atomic(&path, text.as_bytes())?;
    for lock in &locks {
        reencrypt(lock, &[new.to_public()])?;
    }
    // A cache first written meanwhile (a `profile add` while we held the others' locks) may
    // be under the old key only: move it too, while the old key is still in hand.
    let mut moved = locks.len();
    for profile in store.cached_profiles()?.into_iter().filter(|p| !profiles.contains(p)) {
        let lock = store.lock(&profile)?;
        if store.load(&profile)?.is_some() {
            reencrypt(&lock, &[new.to_public()])?;
            moved += 1;
        }
    }
    Ok((new.to_public().to_string(), moved))
}
