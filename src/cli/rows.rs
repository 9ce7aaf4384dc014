//! The rows `profile list`, `connections list` and `status` print: typed, serialised for `--json`
//! and formatted for people from the same fields.

use crate::clock::rfc3339;
use crate::config::Config;
use crate::engine::Engine;
use serde::Serialize;

/// A profile's login state, read from its cache without any network call.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum CacheState {
    /// No cache file.
    None { logged_in: bool },
    /// A cache with stored secrets but no tokens.
    NotLoggedIn { logged_in: bool, stored_secrets: Vec<String> },
    /// Tokens are cached.
    LoggedIn {
        logged_in: bool,
        username: Option<String>,
        expires_at: Option<String>,
        expired: bool,
        refresh_expires_at: Option<String>,
        can_refresh: bool,
        stored_secrets: Vec<String>,
    },
    /// The cache cannot be read (the error says why).
    Unreadable { logged_in: bool, error: String },
}

impl CacheState {
    /// Reads the state of profile `name`.
    pub(super) fn of(engine: &Engine, name: &str) -> CacheState {
        match engine.store.load(name) {
            Ok(None) => CacheState::None { logged_in: false },
            Ok(Some(entry)) => {
                let now = engine.clock.now();
                let stored_secrets: Vec<String> = entry.secrets.keys().cloned().collect();
                match &entry.tokens {
                    None => CacheState::NotLoggedIn { logged_in: false, stored_secrets },
                    Some(t) => CacheState::LoggedIn {
                        logged_in: true,
                        username: t.username.clone(),
                        expires_at: t.expires_at.map(rfc3339),
                        expired: !t.valid_for(now, 0),
                        refresh_expires_at: t.refresh_expires_at.map(rfc3339),
                        can_refresh: t.can_refresh(now),
                        stored_secrets,
                    },
                }
            }
            Err(e) => CacheState::Unreadable { logged_in: false, error: e.to_string() },
        }
    }

    /// The user when logged in (`?` when the cache does not name one).
    pub(super) fn logged_in_as(&self) -> Option<&str> {
        match self {
            CacheState::LoggedIn { username, .. } => Some(username.as_deref().unwrap_or("?")),
            _ => None,
        }
    }
}

/// A row of `profile list` (`files`) and of `status` (no `files`).
#[derive(Serialize)]
pub(super) struct ProfileRow {
    pub name: String,
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    #[serde(flatten)]
    pub state: CacheState,
    /// Where the credential in use comes from when not the cache: `AGE_OAUTH_API_KEY` for the
    /// selected profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_source: Option<String>,
}

impl ProfileRow {
    /// The row of profile `name`, with the files defining it when `with_files`.
    pub(super) fn of(engine: &Engine, config: &Config, name: &str, with_files: bool) -> ProfileRow {
        let files = with_files.then(|| config.profile_files(name).iter().map(|p| p.display().to_string()).collect());
        ProfileRow {
            name: name.to_string(),
            provider: config.provider_of(name),
            files,
            state: CacheState::of(engine, name),
            credential_source: None,
        }
    }
}

/// A row of `connections list`.
#[derive(Serialize)]
pub(super) struct ConnectionRow {
    pub name: String,
    pub provider: Option<String>,
    pub url: Option<String>,
    pub active: bool,
    pub default: bool,
    #[serde(flatten)]
    pub state: CacheState,
}

/// `status --json`: where things are, the cache key, and every profile's row.
#[derive(Serialize)]
pub(super) struct Status {
    pub config_file: String,
    pub project_file: Option<String>,
    pub data_dir: String,
    pub key_source: String,
    pub public_key: Option<String>,
    pub config_error: Option<String>,
    pub profiles: Vec<ProfileRow>,
}
