//! What a provider's flow yields and the engine caches: tokens, their expiries, the user.
//! All times are epoch seconds, computed once from the server's answer.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    pub access_token: Secret,
    /// When the access token stops working; `None` when the server did not say.
    #[serde(default)]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub refresh_expires_at: Option<u64>,
    /// When the current refresh token was issued (for "share of its life" decisions).
    #[serde(default)]
    pub refresh_issued_at: Option<u64>,
    #[serde(default)]
    pub username: Option<String>,
    pub obtained_at: u64,
    /// Provider-specific values worth keeping with the tokens (never secrets in clear
    /// elsewhere: this whole structure only ever lives inside age ciphertext).
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Secrets a flow obtained from the person and was allowed to keep (a prompted password):
    /// the engine moves them into the profile's encrypted store when it saves these tokens.
    #[serde(skip)]
    pub secrets_to_store: Vec<(String, Secret)>,
}

/// `extra` can hold provider tokens (federated server tokens) as plain JSON: `Debug` shows
/// its keys only. The other secrets are `Secret`s and redact themselves.
impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("refresh_issued_at", &self.refresh_issued_at)
            .field("username", &self.username)
            .field("obtained_at", &self.obtained_at)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The longest lifetime believed from a server (100 years): a larger `expires_in` or
/// `expires` is clamped to it, so far-future answers never overflow a date.
pub const MAX_LIFETIME: u64 = 100 * 365 * 86_400;

/// When something that lives `seconds` from `now` expires, with absurd lifetimes clamped.
pub fn expiry_after(now: u64, seconds: u64) -> u64 {
    now.saturating_add(seconds.min(MAX_LIFETIME))
}

/// An absolute expiry a server sent, clamped to `now + MAX_LIFETIME`.
pub fn clamp_expiry(now: u64, at: u64) -> u64 {
    at.min(now.saturating_add(MAX_LIFETIME))
}

impl TokenSet {
    pub fn new(access_token: Secret, obtained_at: u64) -> Self {
        TokenSet {
            access_token,
            expires_at: None,
            refresh_token: None,
            refresh_expires_at: None,
            refresh_issued_at: None,
            username: None,
            obtained_at,
            extra: BTreeMap::new(),
            secrets_to_store: Vec::new(),
        }
    }

    /// Seconds the access token stays valid after `now` (0 when expired);
    /// `None` means the server gave no expiry.
    pub fn remaining(&self, now: u64) -> Option<u64> {
        self.expires_at.map(|at| at.saturating_sub(now))
    }

    /// True when the access token is still good for at least `seconds` more.
    pub fn valid_for(&self, now: u64, seconds: u64) -> bool {
        match self.expires_at {
            Some(at) => at > now && at - now >= seconds,
            None => true,
        }
    }

    /// True when a refresh token is held and not known to be expired.
    pub fn can_refresh(&self, now: u64) -> bool {
        self.refresh_token.is_some() && self.refresh_expires_at.is_none_or(|at| at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_every_token_including_provider_extras() {
        let mut t = TokenSet::new(Secret::new("access-xyz"), 0);
        t.refresh_token = Some(Secret::new("refresh-xyz"));
        t.extra.insert("server_tokens".into(), serde_json::json!({"https://s/arcgis": {"token": "server-xyz"}}));
        let shown = format!("{t:?}");
        for secret in ["access-xyz", "refresh-xyz", "server-xyz"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("server_tokens"), "the keys are still shown: {shown}");
    }
}
