//! Tokens for ArcGIS Servers federated with a portal: the portal token of any ArcGIS profile is exchanged at
//! the portal's `generateToken` (`token` + `serverUrl`), and each server's token is cached with its own expiry.

use super::{Engine, Session, UpdateOptions};
use crate::error::{Error, Result};
use crate::http::HttpRequest;
use crate::interact::Interaction;
use crate::protocol::arcgis::{generated_token, read_answer, Answer};
use crate::registry::{FlowContext, Provider};
use crate::secret::Secret;
use crate::settings::service_url;
use crate::token::{DerivedToken, TokenSet};
use serde_json::Value;

/// A token for one federated server.
#[derive(Debug, Clone)]
pub struct ServerToken {
    /// The server root the token is for.
    pub server: String,
    /// The server token.
    pub token: Secret,
    /// When it expires (Unix seconds), if the portal said.
    pub expires_at: Option<u64>,
}

/// The server root a URL belongs to: `https://host/arcgis/rest/services/X` → `https://host/arcgis`.
pub fn server_root(profile: &str, url: &str) -> Result<String> {
    let url = service_url(profile, "--server", url)?;
    let root = match url.find("/rest/") {
        Some(i) => &url[..i],
        None => url.strip_suffix("/rest").unwrap_or(&url),
    };
    Ok(root.to_string())
}

/// Two site URLs name the same site (scheme and host without case, no trailing slash).
fn same_site(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}

fn cached(tokens: &TokenSet, server: &str, now: u64, need: u64) -> Option<ServerToken> {
    let entry = tokens.derived.get(server)?;
    let valid = entry.expires_at.is_none_or(|at| at > now && at - now >= need);
    valid.then(|| ServerToken { server: server.to_string(), token: entry.token.clone(), expires_at: entry.expires_at })
}

/// A valid token for the federated server `server_url`, from the cache or minted with the
/// profile's portal token (itself refreshed first when needed). Never prompts.
pub fn server_token(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    server_url: &str,
    min_ttl: u64,
) -> Result<ServerToken> {
    let server = server_root(session.name(), server_url)?;
    let need = session.profile.engine.refresh_margin.max(min_ttl);
    let now = engine.clock.now();
    // Fast path: no lock, no network.
    if let Some(found) = engine.load(session)?.and_then(|e| e.tokens).and_then(|t| cached(&t, &server, now, need)) {
        return Ok(found);
    }
    engine.with_token(session, ui, |engine, session, ui, portal_tokens| {
        let session = &*session;
        engine.update(session.name(), UpdateOptions::bound(session), |entry, _| {
            let now = engine.clock.now();
            if let Some(found) =
                entry.as_ref().and_then(|e| e.tokens.as_ref()).and_then(|t| cached(t, &server, now, need))
            {
                ui.debug(1, "another process got this server token meanwhile");
                return Ok(found);
            }
            let minted = engine.with_flow(session, ui, |p, cx| exchange(p, cx, portal_tokens, &server))?;
            if let Some(tokens) = entry.as_mut().and_then(|e| e.tokens.as_mut()) {
                let derived = DerivedToken { token: minted.token.clone(), expires_at: minted.expires_at };
                tokens.derived.insert(server.clone(), derived);
            }
            Ok(minted)
        })
    })
}

/// Checks that `server` belongs to the profile's portal, then asks that portal for a server token.
fn exchange(
    provider: &dyn Provider,
    cx: &mut FlowContext<'_>,
    portal_tokens: &TokenSet,
    server: &str,
) -> Result<ServerToken> {
    let portal = provider.service_url().ok_or_else(|| {
        Error::Config(format!(
            "profile '{}' has no portal to exchange its token at (--server needs an ArcGIS portal profile)",
            cx.profile
        ))
    })?;
    let response = cx.send(&HttpRequest::get(format!("{server}/rest/info?f=json")))?;
    let info = match read_answer(&response, "rest/info")? {
        Answer::Ok(info) => info,
        Answer::Error(e) => return Err(Error::server(format!("{server}/rest/info: {e}"))),
    };
    let Some(owner) = info.get("owningSystemUrl").and_then(Value::as_str) else {
        return Err(Error::Config(format!(
            "{server} is not federated with a portal (its rest/info names no owningSystemUrl); \
             for a standalone server use an esri-token profile with server = \"{server}\""
        )));
    };
    if !same_site(owner, &portal) {
        return Err(Error::Config(format!(
            "{server} belongs to the portal {owner}, not to {portal} of profile '{}': refusing to send this \
             profile's token there; use a profile of {owner}",
            cx.profile
        )));
    }
    let token_url = token_services_url(cx, &portal)?;
    let fields = [("token", portal_tokens.access_token.expose()), ("serverUrl", server), ("f", "json")];
    let request = HttpRequest::post_form(token_url, &fields);
    // Through the provider, so a referer-bound portal token travels with its Referer.
    let response = provider.send_authenticated(cx, portal_tokens, &request)?;
    let object = match read_answer(&response, "generateToken (serverUrl)")? {
        Answer::Ok(object) => object,
        Answer::Error(e) if e.code == 498 || e.code == 499 => {
            return Err(Error::TokenRejected(format!("the portal refused the token of profile '{}': {e}", cx.profile)))
        }
        Answer::Error(e) => {
            return Err(Error::server(format!("the portal {portal} would not make a token for {server}: {e}")))
        }
    };
    let (token, expires_at) = generated_token(&object, "generateToken (serverUrl)", cx.now())?;
    let expires_at = expires_at.map(|at| crate::token::clamp_expiry(cx.now(), at));
    Ok(ServerToken { server: server.to_string(), token, expires_at })
}

/// The portal's token URL from its `sharing/rest/info`, else the standard one.
fn token_services_url(cx: &mut FlowContext<'_>, portal: &str) -> Result<String> {
    let standard = format!("{portal}/sharing/rest/generateToken");
    let response = cx.send(&HttpRequest::get(format!("{portal}/sharing/rest/info?f=json")))?;
    let named = match read_answer(&response, "sharing/rest/info") {
        Ok(Answer::Ok(info)) => {
            info.get("authInfo").and_then(|a| a.get("tokenServicesUrl")).and_then(Value::as_str).map(String::from)
        }
        _ => None,
    };
    match named {
        Some(url) => service_url(cx.profile, "authInfo.tokenServicesUrl", &url),
        None => Ok(standard),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_roots() {
        assert_eq!(server_root("p", "https://h/arcgis/").unwrap(), "https://h/arcgis");
        assert_eq!(server_root("p", "https://h/arcgis/rest/services/A/MapServer").unwrap(), "https://h/arcgis");
        assert_eq!(server_root("p", "https://h/arcgis/rest").unwrap(), "https://h/arcgis");
        assert!(server_root("p", "http://gis.example.com/arcgis").is_err(), "http:// only on loopback");
        assert!(same_site("https://H/portal/", "https://h/portal"));
    }
}
