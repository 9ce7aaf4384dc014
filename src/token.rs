//! What a provider's flow yields and the engine caches: tokens, their expiries, the user.
//! All times are epoch seconds, computed once from the server's answer.

use crate::secret::Secret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// What a sign-in yields: the tokens, their expiries and the user, as cached.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(from = "StoredTokenSet")]
pub struct TokenSet {
    /// The access token.
    pub access_token: Secret,
    /// When the access token stops working; `None` when the server did not say.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// The refresh token, if the grant gave one.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// When the refresh token expires (Unix seconds), if known.
    #[serde(default)]
    pub refresh_expires_at: Option<u64>,
    /// When the current refresh token was issued (for "share of its life" decisions).
    #[serde(default)]
    pub refresh_issued_at: Option<u64>,
    /// The signed-in user, if known.
    #[serde(default)]
    pub username: Option<String>,
    /// When the tokens were obtained (Unix seconds).
    pub obtained_at: u64,
    /// What the provider keeps with these tokens (OIDC discovery, JWKS and claims, the PKCE
    /// redirect): each provider reads and writes it as its own type; never secrets.
    #[serde(default, skip_serializing_if = "ProviderState::is_empty")]
    pub provider_state: ProviderState,
    /// Tokens obtained with these ones (ArcGIS federated server tokens), by what they are for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub derived: BTreeMap<String, DerivedToken>,
}

/// A token derived from a profile's tokens, with its own expiry.
#[derive(Clone, Serialize, Deserialize, PartialEq, Debug)]
pub struct DerivedToken {
    /// The derived token.
    pub token: Secret,
    /// When it expires (Unix seconds), if known.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// A provider's state, stored as the fields of the provider's own serde type.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(transparent)]
pub struct ProviderState(Map<String, Value>);

impl ProviderState {
    /// True when no provider state is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The state as the provider's type `T`; a missing or unreadable state is `T::default()`
    /// (the provider then fetches again what it had kept).
    pub fn get<T: DeserializeOwned + Default>(&self) -> T {
        serde_json::from_value(Value::Object(self.0.clone())).unwrap_or_default()
    }

    /// Replaces the state with `state`.
    pub fn set<T: Serialize>(&mut self, state: &T) {
        self.0 = match serde_json::to_value(state) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
    }

    /// One raw field, for inspection (tests, `status`).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// True when the provider kept state under `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

impl std::ops::Index<&str> for ProviderState {
    type Output = Value;
    fn index(&self, name: &str) -> &Value {
        self.0.get(name).unwrap_or(&Value::Null)
    }
}

/// The keys of the state only: its values are not secrets, but need not be in logs either.
impl std::fmt::Debug for ProviderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// A token set as caches hold it, including those written before provider state was typed:
/// their `extra` map becomes the provider state, and federated server tokens (clear JSON under
/// `extra.server_tokens`) become derived tokens.
#[derive(Deserialize)]
struct StoredTokenSet {
    access_token: Secret,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    refresh_token: Option<Secret>,
    #[serde(default)]
    refresh_expires_at: Option<u64>,
    #[serde(default)]
    refresh_issued_at: Option<u64>,
    #[serde(default)]
    username: Option<String>,
    obtained_at: u64,
    #[serde(default)]
    provider_state: ProviderState,
    #[serde(default)]
    derived: BTreeMap<String, DerivedToken>,
    /// Format of caches written before typed state (read only).
    #[serde(default)]
    extra: Map<String, Value>,
}

/// Where older caches kept federated server tokens inside `extra`.
const LEGACY_SERVER_TOKENS: &str = "server_tokens";

impl From<StoredTokenSet> for TokenSet {
    fn from(s: StoredTokenSet) -> Self {
        let mut provider_state = s.provider_state;
        let mut derived = s.derived;
        for (key, value) in s.extra {
            if key != LEGACY_SERVER_TOKENS {
                provider_state.0.entry(key).or_insert(value);
                continue;
            }
            let Value::Object(servers) = value else { continue };
            for (server, entry) in servers {
                let Some(token) = entry.get("token").and_then(Value::as_str) else { continue };
                let expires_at = entry.get("expires_at").and_then(Value::as_u64);
                derived.entry(server).or_insert(DerivedToken { token: Secret::new(token), expires_at });
            }
        }
        TokenSet {
            access_token: s.access_token,
            expires_at: s.expires_at,
            refresh_token: s.refresh_token,
            refresh_expires_at: s.refresh_expires_at,
            refresh_issued_at: s.refresh_issued_at,
            username: s.username,
            obtained_at: s.obtained_at,
            provider_state,
            derived,
        }
    }
}

/// Every token is a `Secret` (redacted); the provider state and derived tokens show their keys only.
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
            .field("provider_state", &self.provider_state)
            .field("derived", &self.derived.keys().collect::<Vec<_>>())
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
    /// Tokens obtained at `obtained_at` (Unix seconds) with no expiry known yet.
    pub fn new(access_token: Secret, obtained_at: u64) -> Self {
        TokenSet {
            access_token,
            expires_at: None,
            refresh_token: None,
            refresh_expires_at: None,
            refresh_issued_at: None,
            username: None,
            obtained_at,
            provider_state: ProviderState::default(),
            derived: BTreeMap::new(),
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
    fn debug_hides_every_token_including_derived_ones() {
        let mut t = TokenSet::new(Secret::new("access-xyz"), 0);
        t.refresh_token = Some(Secret::new("refresh-xyz"));
        t.derived
            .insert("https://s/arcgis".into(), DerivedToken { token: Secret::new("server-xyz"), expires_at: Some(5) });
        let shown = format!("{t:?}");
        for secret in ["access-xyz", "refresh-xyz", "server-xyz"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("https://s/arcgis"), "the keys are still shown: {shown}");
    }

    #[test]
    fn caches_written_before_typed_state_are_read_and_upgraded() {
        // As the previous version wrote it: provider state and server tokens in `extra`.
        let old = serde_json::json!({
            "access_token": "a", "expires_at": 10, "obtained_at": 1,
            "extra": {
                "redirect_uri": "http://127.0.0.1:1234/cb",
                "oidc_discovery": {"fetched_at": 5, "metadata": {"issuer": "https://i"}},
                "server_tokens": {"https://s/arcgis": {"token": "st_1", "expires_at": 99}, "bad": 3}
            }
        });
        let t: TokenSet = serde_json::from_value(old).unwrap();
        assert_eq!(t.provider_state["redirect_uri"], "http://127.0.0.1:1234/cb");
        assert_eq!(t.provider_state["oidc_discovery"]["metadata"]["issuer"], "https://i");
        assert!(!t.provider_state.contains_key("server_tokens"), "server tokens are not provider state");
        assert_eq!(t.derived["https://s/arcgis"].token.expose(), "st_1");
        assert_eq!(t.derived["https://s/arcgis"].expires_at, Some(99));
        assert_eq!(t.derived.len(), 1, "an unreadable entry is dropped");
        // Written back in the new layout, and read the same again.
        let written = serde_json::to_value(&t).unwrap();
        assert!(written.get("extra").is_none(), "{written}");
        assert_eq!(serde_json::from_value::<TokenSet>(written).unwrap(), t);
    }
}
