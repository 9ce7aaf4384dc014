//! `AGE_OAUTH_API_KEY`: a key from the process environment that wins for the selected profile,
//! whatever its provider. It is never cached, never refreshed and costs no network call to get.

use super::{Engine, Session};
use crate::error::{Error, Result};
use crate::registry::Secrets;
use crate::secret::Secret;
use crate::token::TokenSet;

/// How status, whoami and `profile show` name where the credential came from.
pub const ENV_SOURCE: &str = "environment (AGE_OAUTH_API_KEY)";

impl Session {
    /// The key `AGE_OAUTH_API_KEY` gives this profile, when set and not empty.
    pub fn env_api_key(&self) -> Option<&Secret> {
        self.profile.env_api_key.as_ref()
    }
}

impl Engine {
    /// The environment's key as tokens, or `None` when `AGE_OAUTH_API_KEY` is unset. A key that is a
    /// JWT carries its expiry (`exp`, UTC seconds, read without verifying the signature); one that has
    /// expired is refused, as a stored expired key is.
    pub(super) fn env_tokens(&self, session: &Session) -> Result<Option<TokenSet>> {
        let Some(key) = session.env_api_key() else {
            return Ok(None);
        };
        let now = self.clock.now();
        let mut tokens = TokenSet::new(key.clone(), now);
        if let Some(claims) = crate::protocol::jwt::unverified_key_claims(key.expose()) {
            tokens.expires_at = claims.expires_at;
            tokens.username = claims.subject;
        }
        if tokens.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::login_required(
                session.name(),
                format!(
                    "the key in AGE_OAUTH_API_KEY expired at {}; unset it or put a valid key there",
                    crate::clock::rfc3339(tokens.expires_at.unwrap_or_default())
                ),
            ));
        }
        Ok(Some(tokens))
    }

    /// The secrets a flow may use: with an environment key, only those from flags and the
    /// environment (the cache is not read); else those and the stored ones.
    pub(super) fn flow_secrets(&self, session: &Session) -> Result<Secrets> {
        if session.env_api_key().is_some() {
            return Ok(session.profile.secret_overrides.clone());
        }
        let entry = self.load(session)?;
        Ok(Self::secrets(session, entry.as_ref()))
    }
}

/// The error for a key from the environment the server refuses: nothing to refresh.
pub(super) fn env_key_rejected(session: &Session, why: &str) -> Error {
    Error::login_required(
        session.name(),
        format!("the server rejects the key in AGE_OAUTH_API_KEY ({why}); it cannot be refreshed: replace or unset it"),
    )
}
