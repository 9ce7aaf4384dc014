//! The OpenID Connect login any provider may run: discovery (cached), browser sign-in (code + PKCE,
//! loopback redirect) or device code (RFC 8628), id_token checked against the JWKS, refresh with
//! rotation, userinfo, RFC 7009 revocation. The `oidc` provider is this and nothing else; the `api-key`
//! provider runs it before minting a key. Providers hand it a [`LoginConfig`] built from their settings.

use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::protocol::jwt;
use crate::protocol::loopback::{obtain_code, Expected, Listener};
use crate::protocol::oauth2::{read_json, token_set, OAuthError};
use crate::protocol::pkce::{random_urlsafe, Pkce};
use crate::registry::{FlowContext, Identity};
use crate::secret::Secret;
use crate::settings::{service_url, WordList};
use crate::token::TokenSet;
use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// What an OpenID Connect login keeps with its tokens (no credential): the discovery
/// document and JWKS with when they were fetched, and the id_token claims `whoami` shows.
/// The field names are those older caches used in `TokenSet.extra`, so they read as they are.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct OidcState {
    #[serde(rename = "oidc_discovery", default, skip_serializing_if = "Option::is_none")]
    discovery: Option<FetchedDiscovery>,
    #[serde(rename = "oidc_jwks", default, skip_serializing_if = "Option::is_none")]
    jwks: Option<FetchedJwks>,
    #[serde(rename = "id_token_claims", default, skip_serializing_if = "Option::is_none")]
    claims: Option<Map<String, Value>>,
}

/// A discovery document and when it was fetched.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FetchedDiscovery {
    fetched_at: u64,
    metadata: Value,
}

/// A JWKS and when it was fetched.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FetchedJwks {
    fetched_at: u64,
    jwks: Value,
}
/// Discovery and JWKS older than this are fetched again when next needed.
const DISCOVERY_MAX_AGE: u64 = 24 * 3600;
/// RFC 8628 §3.2: the poll interval when the server gives none.
const DEFAULT_POLL_INTERVAL: u64 = 5;
/// The claims kept for `whoami` (nothing that is a credential).
const KEPT_CLAIMS: &[&str] = &["iss", "sub", "preferred_username", "name", "email", "email_verified"];

/// How a person signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// Authorization code + PKCE; the browser returns to a loopback listener.
    Browser,
    /// Device authorization grant: sign in on any device with a short code.
    Device,
}

/// What a login needs, from the provider's settings (URLs not yet checked: [`OidcLogin::new`] does).
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// Issuer URL: the `iss` of its tokens, and (unless `discovery_url`) the root of discovery.
    pub issuer: Option<String>,
    /// Where the discovery document is, when not under the issuer (anaconda.com serves it from
    /// another host of the same site than its issuer names).
    pub discovery_url: Option<String>,
    /// Explicit endpoints (each overrides discovery).
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Device authorization endpoint.
    pub device_authorization_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// Userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// JWKS URL for id_token signatures.
    pub jwks_uri: Option<String>,
    /// OAuth client_id.
    pub client_id: String,
    /// Scopes asked for.
    pub scopes: WordList,
    /// Browser or device.
    pub flow: Flow,
    /// Fixed loopback port (else a free one).
    pub redirect_port: Option<u16>,
    /// Path of the loopback redirect URI.
    pub redirect_path: String,
    /// Seconds to wait for the browser.
    pub login_timeout: u64,
    /// `audience` parameter (Auth0 and similar).
    pub audience: Option<String>,
    /// More parameters for the authorization request.
    pub extra_authorize_params: BTreeMap<String, String>,
}

/// The server's endpoints, from discovery and/or the profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Metadata {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
}

/// A profile's OpenID Connect login, its URLs checked.
pub struct OidcLogin {
    profile: String,
    settings: LoginConfig,
    /// Endpoints the profile names explicitly (already checked URLs).
    explicit: Metadata,
    /// Where discovery is fetched from (checked URL), when not under the issuer.
    discovery_url: Option<String>,
}

impl OidcLogin {
    /// Checks the configuration (URLs, reserved parameters, the endpoints the flow needs).
    pub fn new(profile: &str, s: LoginConfig) -> Result<OidcLogin> {
        crate::settings::check_login_timeout(profile, s.login_timeout)?;
        let check = |field: &str, v: &Option<String>| v.as_deref().map(|u| service_url(profile, field, u)).transpose();
        let explicit = Metadata {
            issuer: check("issuer", &s.issuer)?,
            authorization_endpoint: check("authorization_endpoint", &s.authorization_endpoint)?,
            token_endpoint: check("token_endpoint", &s.token_endpoint)?,
            device_authorization_endpoint: check("device_authorization_endpoint", &s.device_authorization_endpoint)?,
            revocation_endpoint: check("revocation_endpoint", &s.revocation_endpoint)?,
            userinfo_endpoint: check("userinfo_endpoint", &s.userinfo_endpoint)?,
            jwks_uri: check("jwks_uri", &s.jwks_uri)?,
        };
        // These carry the login's own protections; a profile must not be able to replace them.
        const RESERVED: &[&str] = &[
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
        ];
        if let Some(k) = s.extra_authorize_params.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "profile '{profile}': `extra_authorize_params` may not set `{k}`: age-oauth sets it for every login"
            )));
        }
        let needed = match s.flow {
            Flow::Browser => explicit.authorization_endpoint.is_some() && explicit.token_endpoint.is_some(),
            Flow::Device => explicit.device_authorization_endpoint.is_some() && explicit.token_endpoint.is_some(),
        };
        if explicit.issuer.is_none() && !needed {
            return Err(Error::Config(format!(
                "profile '{}': set `issuer` (for discovery), or the endpoints the {} flow needs \
             (`{}` and `token_endpoint`)",
                profile,
                if s.flow == Flow::Browser { "browser" } else { "device" },
                if s.flow == Flow::Browser { "authorization_endpoint" } else { "device_authorization_endpoint" }
            )));
        }
        let discovery_url = check("discovery_url", &s.discovery_url)?;
        Ok(OidcLogin { profile: profile.to_string(), settings: s, explicit, discovery_url })
    }
}

fn meta_field<'a>(m: &'a Metadata, name: &str) -> Option<&'a str> {
    match name {
        "authorization_endpoint" => m.authorization_endpoint.as_deref(),
        "token_endpoint" => m.token_endpoint.as_deref(),
        "device_authorization_endpoint" => m.device_authorization_endpoint.as_deref(),
        "revocation_endpoint" => m.revocation_endpoint.as_deref(),
        "userinfo_endpoint" => m.userinfo_endpoint.as_deref(),
        "jwks_uri" => m.jwks_uri.as_deref(),
        _ => None,
    }
}

impl OidcLogin {
    /// The endpoints: the profile's explicit ones over discovery (cached in `cached` when fresh).
    fn metadata(
        &self,
        cx: &mut FlowContext<'_>,
        cached: Option<&TokenSet>,
    ) -> Result<(Metadata, Option<FetchedDiscovery>)> {
        let Some(issuer) = self.explicit.issuer.clone() else {
            return Ok((self.explicit.clone(), None));
        };
        let now = cx.now();
        // A cached document is used while young and about this issuer (the profile may have changed).
        let same_issuer = |d: &FetchedDiscovery| {
            d.metadata["issuer"].as_str().map(|i| i.trim_end_matches('/')) == Some(issuer.trim_end_matches('/'))
        };
        let fresh_cache = cached
            .and_then(|t| t.provider_state.get::<OidcState>().discovery)
            .filter(|d| d.fetched_at.saturating_add(DISCOVERY_MAX_AGE) > now && same_issuer(d));
        let discovery = match fresh_cache {
            Some(d) => d,
            None => {
                let url =
                    self.discovery_url.clone().unwrap_or_else(|| format!("{issuer}/.well-known/openid-configuration"));
                let response = cx.send(&HttpRequest::get(&url))?;
                let doc = read_json(&response, "OpenID Connect discovery")?
                    .map_err(|e| Error::server(format!("OpenID Connect discovery at {url}: {e}")))?;
                FetchedDiscovery { fetched_at: now, metadata: Value::Object(doc) }
            }
        };
        let found: Metadata = serde_json::from_value(discovery.metadata.clone()).unwrap_or_default();
        // RFC 8414 §3.3: the document must be about the issuer we asked.
        let claimed = found.issuer.clone().unwrap_or_default();
        if claimed.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(Error::server(format!(
                "the discovery document of {issuer} names issuer `{claimed}`; refusing it (check `issuer` of profile '{}')",
                self.profile
            )));
        }
        let pick = |name: &str| -> Result<Option<String>> {
            match meta_field(&self.explicit, name) {
                Some(v) => Ok(Some(v.to_string())),
                None => meta_field(&found, name).map(|u| service_url(&self.profile, name, u)).transpose(),
            }
        };
        let merged = Metadata {
            issuer: Some(issuer.clone()),
            authorization_endpoint: pick("authorization_endpoint")?,
            token_endpoint: pick("token_endpoint")?,
            device_authorization_endpoint: pick("device_authorization_endpoint")?,
            revocation_endpoint: pick("revocation_endpoint")?,
            userinfo_endpoint: pick("userinfo_endpoint")?,
            jwks_uri: pick("jwks_uri")?,
        };
        Ok((merged, Some(discovery)))
    }

    fn require<'a>(&self, m: &'a Metadata, name: &str) -> Result<&'a str> {
        meta_field(m, name).ok_or_else(|| {
            Error::Config(format!(
                "profile '{}': the server publishes no `{name}` and the profile sets none; add `{name} = \"https://…\"`",
                self.profile
            ))
        })
    }

    fn scope_list(&self) -> Vec<&str> {
        self.settings.scopes.words().collect()
    }

    /// A POST to a token-type endpoint with client authentication: HTTP Basic when the profile
    /// has a client secret (RFC 6749 §2.3.1), else `client_id` in the body (public client).
    fn post(&self, cx: &mut FlowContext<'_>, url: &str, fields: &[(&str, &str)], what: &str) -> Result<HttpResponse> {
        let mut all = fields.to_vec();
        let secret = cx.secrets.get("client_secret").cloned();
        let request = match &secret {
            Some(s) => {
                let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                let basic = format!("{}:{}", enc(&self.settings.client_id), enc(s.expose()));
                HttpRequest::post_form(url, &all).header(
                    "Authorization",
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(basic)),
                )
            }
            None => {
                all.push(("client_id", &self.settings.client_id));
                HttpRequest::post_form(url, &all)
            }
        }
        .header("Accept", "application/json");
        cx.send(&request).map_err(|e| e.context(what))
    }

    fn token_call(
        &self,
        cx: &mut FlowContext<'_>,
        meta: &Metadata,
        fields: &[(&str, &str)],
    ) -> Result<std::result::Result<Map<String, Value>, OAuthError>> {
        let url = self.require(meta, "token_endpoint")?.to_string();
        let response = self.post(cx, &url, fields, "token endpoint")?;
        read_json(&response, "token endpoint")
    }

    /// Checks the id_token's signature and claims; returns the claims worth keeping and the JWKS
    /// entry to cache. A young cached JWKS is tried first; the issuer's is fetched when it is
    /// missing, old, or lacks the token's key (key rotation).
    fn verify_id_token(
        &self,
        cx: &mut FlowContext<'_>,
        meta: &Metadata,
        id_token: &str,
        expect: (Option<&str>, Option<&str>),
        cached: Option<&FetchedJwks>,
    ) -> Result<(Map<String, Value>, FetchedJwks)> {
        let now = cx.now();
        let young = cached.filter(|c| c.fetched_at.saturating_add(DISCOVERY_MAX_AGE) > now);
        let (claims, entry) = match young.map(|c| (jwt::verify_signature(id_token, &c.jwks), c)) {
            Some((Ok(claims), entry)) => (claims, entry.clone()),
            _ => {
                let jwks_uri = self.require(meta, "jwks_uri")?.to_string();
                let response = cx.send(&HttpRequest::get(&jwks_uri))?;
                let jwks =
                    read_json(&response, "JWKS")?.map_err(|e| Error::server(format!("JWKS at {jwks_uri}: {e}")))?;
                let jwks = Value::Object(jwks);
                (jwt::verify_signature(id_token, &jwks)?, FetchedJwks { fetched_at: now, jwks })
            }
        };
        let (nonce, subject) = expect;
        let issuer = meta.issuer.as_deref().unwrap_or_default();
        let want = jwt::Expectations { issuer, client_id: &self.settings.client_id, nonce, subject, now };
        if meta.issuer.is_some() {
            jwt::check_claims(&claims, &want)?;
        } else {
            // Without an issuer only the issuer itself cannot be compared.
            let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
            jwt::check_claims(&claims, &jwt::Expectations { issuer, ..want })?;
        }
        Ok((claims.into_iter().filter(|(k, _)| KEPT_CLAIMS.contains(&k.as_str())).collect(), entry))
    }

    /// Turns a token answer into the TokenSet to cache, checking its id_token.
    fn finish(
        &self,
        cx: &mut FlowContext<'_>,
        meta: &Metadata,
        discovery: Option<FetchedDiscovery>,
        answer: &Map<String, Value>,
        nonce: Option<&str>,
        previous: Option<&TokenSet>,
    ) -> Result<TokenSet> {
        let now = cx.now();
        let mut tokens = token_set(answer, now, previous, "token endpoint")?;
        let mut state = previous.map(|p| p.provider_state.get::<OidcState>()).unwrap_or_default();
        if let Some(previous) = previous {
            tokens.derived = previous.derived.clone();
        }
        if let Some(d) = discovery {
            state.discovery = Some(d);
        }
        match answer.get("id_token").and_then(Value::as_str) {
            Some(id_token) => {
                let subject = previous.and(state.claims.as_ref()).and_then(|c| c.get("sub")).and_then(Value::as_str);
                let subject = subject.map(String::from);
                let cached = state.jwks.clone();
                match self.verify_id_token(cx, meta, id_token, (nonce, subject.as_deref()), cached.as_ref()) {
                    Ok((claims, jwks)) => {
                        state.jwks = Some(jwks);
                        let name = ["preferred_username", "email", "sub"]
                            .iter()
                            .find_map(|k| claims.get(*k).and_then(Value::as_str).map(String::from));
                        tokens.username = name.or(tokens.username);
                        state.claims = Some(claims);
                    }
                    // On a refresh the server has already rotated the refresh token: dropping
                    // the answer would leave the retired one in the cache, and sending it again
                    // revokes the whole grant. The id_token is optional on refresh (OIDC Core
                    // §12.2), so keep the new tokens and the identity proven at login.
                    Err(e) if previous.is_some() => cx.ui.warn(&format!(
                        "the id_token of the refresh answer was not accepted ({e}); keeping the tokens"
                    )),
                    Err(e) => return Err(e),
                }
            }
            None if previous.is_none() && self.scope_list().contains(&"openid") => {
                return Err(Error::server("the token answer has no id_token although the scopes include openid"));
            }
            None => {}
        }
        tokens.provider_state.set(&state);
        if self.scope_list().contains(&"offline_access") && tokens.refresh_token.is_none() {
            cx.ui.warn("the server issued no refresh token although offline_access was asked for");
        }
        Ok(tokens)
    }

    fn login_browser(&self, cx: &mut FlowContext<'_>) -> Result<TokenSet> {
        let (meta, discovery) = self.metadata(cx, None)?;
        let authorize = self.require(&meta, "authorization_endpoint")?.to_string();
        let s = &self.settings;
        let listener = Listener::bind(cx.profile, s.redirect_port, &s.redirect_path)?;
        let redirect_uri = listener.redirect_uri().to_string();
        let (state, nonce, pkce) = (random_urlsafe(16), random_urlsafe(16), Pkce::new());
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &s.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &self.scope_list().join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        // OpenID Connect Core §11: offline_access is ignored unless consent is prompted for.
        if self.scope_list().contains(&"offline_access") && !s.extra_authorize_params.contains_key("prompt") {
            q.append_pair("prompt", "consent");
        }
        if let Some(a) = &s.audience {
            q.append_pair("audience", a);
        }
        for (k, v) in &s.extra_authorize_params {
            q.append_pair(k, v);
        }
        let separator = if authorize.contains('?') { '&' } else { '?' };
        let url = format!("{authorize}{separator}{}", q.finish());
        let profile = cx.profile.to_string();
        let expected = Expected { profile: &profile, state: &state, issuer: meta.issuer.as_deref() };
        let callback = obtain_code(cx, &listener, &url, &expected, Duration::from_secs(s.login_timeout))?;
        drop(listener);
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", callback.code.expose()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", pkce.verifier.expose()),
        ];
        let answer = self
            .token_call(cx, &meta, &fields)?
            .map_err(|e| Error::server(format!("the server refused the authorization code ({e})")))?;
        self.finish(cx, &meta, discovery, &answer, Some(&nonce), None)
    }

    fn login_device(&self, cx: &mut FlowContext<'_>) -> Result<TokenSet> {
        let (meta, discovery) = self.metadata(cx, None)?;
        let endpoint = self.require(&meta, "device_authorization_endpoint")?.to_string();
        let scope = self.scope_list().join(" ");
        let mut fields = vec![("scope", scope.as_str())];
        if let Some(a) = &self.settings.audience {
            fields.push(("audience", a));
        }
        let response = self.post(cx, &endpoint, &fields, "device authorization")?;
        let grant = read_json(&response, "device authorization")?
            .map_err(|e| Error::server(format!("the server refused to start a device sign-in ({e})")))?;
        let text = |k: &str| grant.get(k).and_then(Value::as_str).map(String::from);
        let (Some(device_code), Some(user_code)) = (text("device_code"), text("user_code")) else {
            return Err(Error::server("the device authorization answer lacks device_code or user_code"));
        };
        let device_code = Secret::new(device_code);
        let verification_uri = text("verification_uri").or_else(|| text("verification_url")).unwrap_or_default();
        let mut message = format!("To sign in, open {verification_uri} and enter the code {user_code}");
        if let Some(complete) = text("verification_uri_complete") {
            message.push_str(&format!("\n  or open {complete}"));
        }
        cx.ui.info(&message);
        let mut interval = grant.get("interval").and_then(Value::as_u64).unwrap_or(DEFAULT_POLL_INTERVAL).clamp(1, 60);
        // A device code lives minutes; absurd values from the server are clamped.
        let lifetime = grant.get("expires_in").and_then(Value::as_u64).unwrap_or(600).min(3_600);
        let deadline = cx.now().saturating_add(lifetime);
        let poll =
            [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code.expose())];
        let result = loop {
            cx.ui.progress(Some(&format!("waiting for the sign-in at {verification_uri} (code {user_code})")));
            cx.clock.sleep(interval);
            if cx.now() >= deadline {
                break Err(cx.login_required("the device code expired before the sign-in was approved"));
            }
            match self.token_call(cx, &meta, &poll)? {
                Ok(answer) => break Ok(answer),
                Err(e) => match e.error.as_str() {
                    "authorization_pending" => {}
                    "slow_down" => interval = (interval + 5).min(60),
                    "expired_token" => {
                        break Err(cx.login_required("the device code expired before the sign-in was approved"))
                    }
                    "access_denied" => break Err(cx.login_required(format!("the sign-in was denied ({e})"))),
                    _ => break Err(Error::server(format!("the server refused the device sign-in ({e})"))),
                },
            }
        };
        cx.ui.progress(None);
        self.finish(cx, &meta, discovery, &result?, None, None)
    }
}

/// What the providers call.
impl OidcLogin {
    /// The origins the login's settings name (issuer, discovery, every explicit endpoint).
    pub fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        let e = &self.explicit;
        [
            ("issuer", &e.issuer),
            ("discovery_url", &self.discovery_url),
            ("authorization_endpoint", &e.authorization_endpoint),
            ("token_endpoint", &e.token_endpoint),
            ("device_authorization_endpoint", &e.device_authorization_endpoint),
            ("revocation_endpoint", &e.revocation_endpoint),
            ("userinfo_endpoint", &e.userinfo_endpoint),
            ("jwks_uri", &e.jwks_uri),
        ]
        .into_iter()
        .filter_map(|(setting, url)| url.as_deref().map(|u| crate::binding::origin_of(setting, u)))
        .collect()
    }

    /// Signs in with the configured flow.
    pub fn login(&self, cx: &mut FlowContext<'_>) -> Result<TokenSet> {
        match self.settings.flow {
            Flow::Browser => self.login_browser(cx),
            Flow::Device => self.login_device(cx),
        }
    }

    /// The access token lifetime's end is near: the refresh grant, or `LoginRequired`.
    pub fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(cx.login_required("there is no refresh token (add offline_access to `scopes` to get one)"));
        };
        let (meta, discovery) = self.metadata(cx, Some(current))?;
        let fields = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())];
        match self.token_call(cx, &meta, &fields)? {
            // A rotated refresh token replaces the old one, which is never sent again.
            Ok(answer) => self.finish(cx, &meta, discovery, &answer, None, Some(current)),
            Err(e) if e.error == "invalid_grant" => {
                Err(cx.login_required(format!("the server refused the refresh token ({e})")))
            }
            Err(e) => Err(Error::server(format!("the server refused to refresh the token ({e})"))),
        }
    }

    /// Who the access token belongs to: userinfo, else the id_token's claims.
    pub fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        let (meta, _) = self.metadata(cx, Some(tokens))?;
        let (claims, source) = match &meta.userinfo_endpoint {
            Some(url) => {
                let request = HttpRequest::get(url)
                    .header("Authorization", format!("Bearer {}", tokens.access_token.expose()))
                    .header("Accept", "application/json");
                let response = cx.send(&request)?;
                // RFC 6750: 401 means this access token is no good; the engine refreshes and retries.
                if response.status == 401 {
                    return Err(Error::TokenRejected("userinfo: HTTP 401 (invalid or expired access token)".into()));
                }
                let info = read_json(&response, "userinfo")?.map_err(|e| Error::server(format!("userinfo: {e}")))?;
                (info, "userinfo")
            }
            None => match tokens.provider_state.get::<OidcState>().claims {
                Some(c) => (c, "id_token"),
                _ => {
                    return Err(Error::server(format!(
                        "profile '{}': the server has no userinfo endpoint and the login gave no id_token, \
                         so there is no way to tell who the token belongs to",
                        self.profile
                    )))
                }
            },
        };
        let username = ["preferred_username", "email", "sub"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(Value::as_str).map(String::from))
            .ok_or_else(|| Error::server(format!("{source}: no preferred_username, email or sub")))?;
        let mut details: Map<String, Value> =
            claims.into_iter().filter(|(k, _)| KEPT_CLAIMS.contains(&k.as_str())).collect();
        details.insert("source".into(), Value::String(source.into()));
        Ok(Identity { username, details })
    }

    /// Revokes the refresh token (else the access token) where the server has an endpoint for it.
    pub fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String> {
        let (meta, _) = self.metadata(cx, Some(tokens))?;
        let Some(url) = meta.revocation_endpoint.clone() else {
            return Ok("the server has no revocation endpoint: the tokens stay valid there until they expire".into());
        };
        let (token, hint) = match &tokens.refresh_token {
            Some(rt) => (rt, "refresh_token"),
            None => (&tokens.access_token, "access_token"),
        };
        let response =
            self.post(cx, &url, &[("token", token.expose()), ("token_type_hint", hint)], "revocation endpoint")?;
        let what = hint.replace('_', " ");
        Ok(match response.status {
            200 => format!("revoked the {what} at {url}"),
            status => format!("the server refused to revoke the {what} (HTTP {status})"),
        })
    }
}

#[cfg(test)]
mod jwks_tests {
    use super::*;
    use crate::http::HttpClient;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(kid: &str) -> (EncodingKey, Value) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let p = pair.public_key().as_ref();
        let b64 = crate::protocol::jwt::b64url;
        let jwk = json!({"kty":"EC","crv":"P-256","kid":kid,"x":b64(&p[1..33]),"y":b64(&p[33..])});
        (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    /// The issuer's JWKS endpoint: serves `jwks`, counts the fetches.
    struct Issuer {
        jwks: Value,
        fetches: AtomicUsize,
    }

    impl HttpClient for Issuer {
        fn send(&self, _request: &HttpRequest) -> Result<HttpResponse> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(HttpResponse { status: 200, headers: vec![], body: self.jwks.to_string().into_bytes() })
        }
    }

    /// A JWKS cached by an earlier login lacks the key a new id_token names (the issuer rotated its
    /// keys): it is fetched again, once; a token no key verifies is refused after that one fetch.
    #[test]
    fn an_unknown_kid_fetches_the_jwks_once_more() {
        let (old, old_jwk) = key("old");
        let (new, new_jwk) = key("new");
        let (rogue, _) = key("new");
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        let settings = LoginConfig {
            issuer: None,
            discovery_url: None,
            authorization_endpoint: None,
            token_endpoint: None,
            device_authorization_endpoint: None,
            revocation_endpoint: None,
            userinfo_endpoint: None,
            jwks_uri: None,
            client_id: "c".into(),
            scopes: WordList::from("openid"),
            flow: Flow::Browser,
            redirect_port: None,
            redirect_path: "/".into(),
            login_timeout: 60,
            audience: None,
            extra_authorize_params: BTreeMap::new(),
        };
        let oidc = OidcLogin { profile: "p".into(), settings, explicit: Metadata::default(), discovery_url: None };
        let meta = Metadata { jwks_uri: Some("http://127.0.0.1:9/jwks".into()), ..Metadata::default() };
        let cached = FetchedJwks { fetched_at: now, jwks: json!({"keys": [old_jwk]}) };
        let issuer = Issuer { jwks: json!({"keys": [old_jwk, new_jwk]}), fetches: AtomicUsize::new(0) };
        let claims = json!({"iss": "http://i", "aud": "c", "exp": now + 600, "sub": "alice"});
        let sign = |kid: &str, k: &EncodingKey| {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(kid.into());
            jsonwebtoken::encode(&header, &claims, k).unwrap()
        };
        let mut ui = crate::interact::Terminal::new(0, &crate::env::Env::default());
        let secrets = crate::registry::Secrets::default();
        let mut cx = FlowContext {
            profile: "p",
            http: &issuer,
            clock: &crate::clock::SystemClock,
            ui: &mut ui,
            secrets: &secrets,
            no_browser: true,
        };
        // The cached key still verifies: no fetch.
        oidc.verify_id_token(&mut cx, &meta, &sign("old", &old), (None, None), Some(&cached)).unwrap();
        assert_eq!(issuer.fetches.load(Ordering::SeqCst), 0);
        // A new kid: one fetch, and the fresh JWKS comes back to be cached.
        let (got, fresh) =
            oidc.verify_id_token(&mut cx, &meta, &sign("new", &new), (None, None), Some(&cached)).unwrap();
        assert_eq!((got["sub"].as_str(), issuer.fetches.load(Ordering::SeqCst)), (Some("alice"), 1));
        assert_eq!(fresh.jwks["keys"].as_array().map(Vec::len), Some(2));
        // Signed by a key the issuer does not have: refused after exactly one more fetch.
        let err = oidc.verify_id_token(&mut cx, &meta, &sign("new", &rogue), (None, None), Some(&cached));
        assert!(err.unwrap_err().to_string().contains("signature does not match"));
        assert_eq!(issuer.fetches.load(Ordering::SeqCst), 2);
    }
}
