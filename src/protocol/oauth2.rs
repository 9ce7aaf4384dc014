//! OAuth 2.0 (RFC 6749) answers: token responses turned into a `TokenSet`, and the §5.2 error
//! objects servers send instead. ArcGIS portals and OpenID Connect servers both answer this way.

use crate::error::{Error, Result};
use crate::http::HttpResponse;
use crate::secret::Secret;
use crate::token::TokenSet;
use serde_json::{Map, Value};

/// Builds a `TokenSet` from an `oauth2/token` answer. `previous` keeps the refresh
/// token (and its expiry) when the grant returns none (plain `refresh_token`).
pub fn token_set(object: &Map<String, Value>, now: u64, previous: Option<&TokenSet>, what: &str) -> Result<TokenSet> {
    let access = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::server(format!("{what}: the answer has no access_token")))?;
    let seconds = |key: &str| -> Result<Option<u64>> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .map(Some)
                .ok_or_else(|| Error::server(format!("{what}: `{key}` is not a number of seconds"))),
        }
    };
    let mut tokens = TokenSet::new(Secret::new(access), now);
    tokens.expires_at = seconds("expires_in")?.map(|s| crate::token::expiry_after(now, s));
    tokens.username = object.get("username").and_then(Value::as_str).map(String::from);
    match object.get("refresh_token").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(rt) => {
            tokens.refresh_token = Some(Secret::new(rt));
            tokens.refresh_expires_at =
                seconds("refresh_token_expires_in")?.map(|s| crate::token::expiry_after(now, s));
            tokens.refresh_issued_at = Some(now);
        }
        None => {
            if let Some(prev) = previous {
                tokens.refresh_token = prev.refresh_token.clone();
                tokens.refresh_expires_at = prev.refresh_expires_at;
                tokens.refresh_issued_at = prev.refresh_issued_at;
            }
        }
    }
    if tokens.username.is_none() {
        tokens.username = previous.and_then(|p| p.username.clone());
    }
    Ok(tokens)
}

/// An RFC 6749 §5.2 error answer.
pub struct OAuthError {
    /// The `error` code (`invalid_grant`, ...).
    pub error: String,
    /// The `error_description`, when the server gave one.
    pub description: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Reads a JSON answer: an object, or the RFC 6749 error it carries.
pub fn read_json(response: &HttpResponse, what: &str) -> Result<std::result::Result<Map<String, Value>, OAuthError>> {
    let object = serde_json::from_slice::<Value>(&response.body).ok().and_then(|v| match v {
        Value::Object(o) => Some(o),
        _ => None,
    });
    match object {
        Some(o) if o.get("error").is_some_and(Value::is_string) => Ok(Err(OAuthError {
            error: o["error"].as_str().unwrap_or_default().to_string(),
            description: o.get("error_description").and_then(Value::as_str).map(String::from),
        })),
        Some(o) if (200..300).contains(&response.status) => Ok(Ok(o)),
        _ if response.status == 401 => Err(Error::TokenRejected(format!("{what}: HTTP 401 Unauthorized"))),
        _ => Err(Error::http_status(
            response.status,
            format!(
                "{what}: the server answered HTTP {} without a JSON object{}",
                response.status,
                response.html_title().map(|t| format!(" (an HTML page titled \"{t}\")")).unwrap_or_default()
            ),
        )),
    }
}
