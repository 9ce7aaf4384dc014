//! Where the cache key comes from (passphrase, identity from the environment, the keyring, the identity
//! file made on first use) and encryption to it.

use crate::error::{Error, Result, StoreErrorKind};
use crate::paths::{create_new_atomic, Paths};
use age::secrecy::{ExposeSecret, SecretString};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where the key that protects the caches comes from (shown by `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `AGE_OAUTH_PASSPHRASE`: scrypt, slow on purpose, no key on disk.
    Passphrase,
    /// `AGE_OAUTH_IDENTITY`: an age identity file the user manages.
    IdentityFromEnv(PathBuf),
    /// The identity file age-oauth created in its data directory.
    IdentityFile(PathBuf),
    /// An identity kept in the OS keyring (when built with the `keyring` feature).
    Keyring(String),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Passphrase => "passphrase (AGE_OAUTH_PASSPHRASE, scrypt)".into(),
            KeySource::IdentityFromEnv(p) => {
                format!("age identity from AGE_OAUTH_IDENTITY ({})", p.display())
            }
            KeySource::IdentityFile(p) => format!("age identity file {}", p.display()),
            KeySource::Keyring(entry) => format!("age identity in the OS keyring ({entry})"),
        }
    }
}

pub(super) enum KeyMaterial {
    Identity(Box<age::x25519::Identity>),
    Passphrase(SecretString),
}

pub(super) struct Keys {
    pub(super) material: KeyMaterial,
    pub(super) source: KeySource,
}

/// Reads the key source from the environment without touching any file.
pub fn key_source(paths: &Paths) -> KeySource {
    let env = paths.env();
    if env.is_set(&crate::env::PASSPHRASE) {
        KeySource::Passphrase
    } else if let Some(p) = env.get(&crate::env::IDENTITY) {
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

pub(super) fn identity_file_text(identity: &age::x25519::Identity) -> String {
    format!(
        "# age-oauth cache key: keep this file private (0600); losing it means logging in again\n# public key: {}\n{}\n",
        identity.to_public(),
        identity.to_string().expose_secret()
    )
}

/// Encrypts `plain` to X25519 recipients.
pub fn encrypt_to(plain: &[u8], recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::Other(format!("cannot encrypt: {e}")))?;
    encrypt_with(plain, encryptor)
}

/// Runs an age encryptor over `plain`.
pub fn encrypt_with(plain: &[u8], encryptor: age::Encryptor) -> Result<Vec<u8>> {
    let mut cipher = Vec::with_capacity(plain.len() + 256);
    let enc_err = |e: std::io::Error| Error::Other(format!("cannot encrypt: {e}"));
    let mut writer = encryptor.wrap_output(&mut cipher).map_err(enc_err)?;
    writer.write_all(plain).map_err(enc_err)?;
    writer.finish().map_err(enc_err)?;
    Ok(cipher)
}

pub(super) fn load_or_create_identity(path: &Path, create: bool) -> Result<age::x25519::Identity> {
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::store(StoreErrorKind::KeyMissing, format!(
            "the key that protects the cache ({}) is missing; set AGE_OAUTH_IDENTITY to the identity the cache was made for, \
             or log in again with `age-oauth login --force`",
            path.display()
        ))),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}
