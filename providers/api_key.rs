//! `api-key`: a long-lived API key, the Anaconda way: minted with scopes after an OpenID Connect login
//! (the shared `protocol::oidc`, device or browser), or pasted once (`login --with-key`). Its expiry is
//! the JWT's `exp` in UTC; it is sent in a configurable header with the profile's extra headers.

use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::protocol::jwt;
use crate::protocol::oauth2::read_json;
use crate::protocol::oidc::{Flow, LoginConfig, OidcLogin};
use crate::registry::{FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo};
use crate::secret::Secret;
use crate::settings::{service_url, WordList};
use crate::token::TokenSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Where the key comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    /// Minted by the service after an OpenID Connect login.
    #[default]
    Mint,
    /// Given once by the user (`age-oauth login --profile P --with-key`, on stdin).
    Static,
}

/// Extra headers: a table, or (from `AGE_OAUTH_EXTRA_HEADERS`) a JSON object in a string.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ExtraHeaders {
    /// `extra_headers = { X-Org = "acme" }`.
    Table(BTreeMap<String, String>),
    /// `AGE_OAUTH_EXTRA_HEADERS='{"X-Org": "acme"}'`.
    Json(String),
}

/// Settings of an `api-key` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Where the key is sent: the API's base URL (requests elsewhere are refused).
    #[schemars(extend("x-prompt" = {"label": "API URL", "order": 10, "check": "url"}))]
    pub api_url: String,
    /// "mint" (an OpenID Connect login, then the service mints a key) or "static" (`login --with-key`).
    #[serde(default)]
    pub key_source: KeySource,
    /// mint: the OpenID Connect issuer (its discovery document may name endpoints on another host of the same site).
    #[serde(default)]
    pub issuer: Option<String>,
    /// mint: where the discovery document is, when not `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery_url: Option<String>,
    /// mint: authorization endpoint (overrides discovery).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// mint: token endpoint (overrides discovery).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// mint: device authorization endpoint (overrides discovery).
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// mint: the OAuth client_id of the login.
    #[serde(default)]
    pub client_id: Option<String>,
    /// mint: "device" (default) or "browser" (code + PKCE, loopback redirect).
    #[serde(default = "default_flow")]
    pub flow: Flow,
    /// mint: scopes of the login.
    #[serde(default = "default_scopes")]
    pub scopes: WordList,
    /// mint, browser: a fixed loopback port (Anaconda's public client needs 8000).
    #[serde(default)]
    pub redirect_port: Option<u16>,
    /// mint, browser: path of the loopback redirect (Anaconda's public client needs /auth/oidc).
    #[serde(default = "crate::protocol::loopback::default_redirect_path")]
    pub redirect_path: String,
    /// mint, browser: seconds to wait for the browser.
    #[serde(default = "crate::protocol::loopback::default_login_timeout")]
    pub login_timeout: u64,
    /// mint: the URLs that mint a key, tried in order; the next only when one answers 404.
    #[serde(default)]
    pub mint_url: WordList,
    /// mint: scopes of the key (`{"scopes": [...]}` of the mint request).
    #[serde(default)]
    pub key_scopes: WordList,
    /// mint: tags of the key (`{"tags": [...]}` of the mint request).
    #[serde(default = "default_key_tags")]
    pub key_tags: WordList,
    /// `whoami`: a URL answering who the key belongs to (Anaconda: `{api_url}/api/account`); else the key's own claims.
    #[serde(default)]
    pub whoami_url: Option<String>,
    /// The header the key travels in.
    #[serde(default = "default_header")]
    pub header: String,
    /// The scheme before the key in that header (default "Bearer" for Authorization, none for any other header).
    #[serde(default)]
    pub scheme: Option<String>,
    /// Headers sent with every request to the API (AGE_OAUTH_EXTRA_HEADERS, as JSON, overrides).
    #[serde(default)]
    pub extra_headers: Option<ExtraHeaders>,
    /// The User-Agent sent (some services refuse requests without one).
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Sent as the `Api-Version` header when set (a number is taken as its text: `--set api_version=3`).
    #[serde(default, deserialize_with = "text_or_number")]
    #[schemars(with = "Option<String>")]
    pub api_version: Option<String>,
}

/// A string, or a number read from the command line or the environment, as its text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => return Err(serde::de::Error::custom(format!("expected a string, got {other}"))),
    })
}

fn default_flow() -> Flow {
    Flow::Device
}
fn default_scopes() -> WordList {
    WordList::from("openid")
}
fn default_key_tags() -> WordList {
    WordList::from(concat!("age-oauth/v", env!("CARGO_PKG_VERSION")))
}
fn default_header() -> String {
    "Authorization".into()
}
fn default_user_agent() -> String {
    concat!("age-oauth/", env!("CARGO_PKG_VERSION")).into()
}

/// What the provider keeps beside the key: where it was minted and its id there (for the delete).
/// The OIDC login's own state (discovery, JWKS, claims) sits in the same map under its own names.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct KeyState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_minted_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
}

struct ApiKey {
    profile: String,
    settings: ApiKeySettings,
    api_url: String,
    mint_urls: Vec<String>,
    whoami_url: Option<String>,
    login: Option<OidcLogin>,
    /// The header name with a `'static` life (`token --format header` takes one).
    header: &'static str,
    /// Headers for every request to the API: user agent, API version, extra headers.
    headers: Vec<(String, String)>,
}

/// The secret `login --with-key` hands the flow.
pub const PASTED_KEY: &str = "api_key";

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: ApiKeySettings = settings.parse()?;
    let profile = settings.profile.as_str();
    let api_url = service_url(profile, "api_url", &s.api_url)?;
    let mint_urls = s.mint_url.words().map(|u| service_url(profile, "mint_url", u)).collect::<Result<Vec<_>>>()?;
    let whoami_url = s.whoami_url.as_deref().map(|u| service_url(profile, "whoami_url", u)).transpose()?;
    let login = match s.key_source {
        KeySource::Static => None,
        KeySource::Mint => Some(mint_login(profile, &s, &mint_urls)?),
    };
    let headers = request_headers(profile, &s)?;
    let header: &'static str = match s.header.as_str() {
        "Authorization" => "Authorization",
        // One small leak per profile built, for a header name the trait wants `'static`.
        other => Box::leak(other.to_string().into_boxed_str()),
    };
    Ok(Box::new(ApiKey {
        profile: profile.to_string(),
        settings: s,
        api_url,
        mint_urls,
        whoami_url,
        login,
        header,
        headers,
    }))
}

fn mint_login(profile: &str, s: &ApiKeySettings, mint_urls: &[String]) -> Result<OidcLogin> {
    let client_id = s.client_id.clone().ok_or_else(|| {
        Error::Config(format!(
            "profile '{profile}': key_source = \"mint\" needs `client_id` (the login's OAuth client)"
        ))
    })?;
    if mint_urls.is_empty() {
        return Err(Error::Config(format!(
            "profile '{profile}': key_source = \"mint\" needs `mint_url` (one URL, or a list tried in order)"
        )));
    }
    let config = LoginConfig {
        issuer: s.issuer.clone(),
        discovery_url: s.discovery_url.clone(),
        authorization_endpoint: s.authorization_endpoint.clone(),
        token_endpoint: s.token_endpoint.clone(),
        device_authorization_endpoint: s.device_authorization_endpoint.clone(),
        revocation_endpoint: None,
        userinfo_endpoint: None,
        jwks_uri: None,
        client_id,
        scopes: s.scopes.clone(),
        flow: s.flow,
        redirect_port: s.redirect_port,
        redirect_path: s.redirect_path.clone(),
        login_timeout: s.login_timeout,
        audience: None,
        extra_authorize_params: BTreeMap::new(),
    };
    OidcLogin::new(profile, config)
}

/// User agent, API version and the extra headers; a header that would carry or replace the key is refused.
fn request_headers(profile: &str, s: &ApiKeySettings) -> Result<Vec<(String, String)>> {
    let fixed = [("header", s.header.as_str(), ""), ("user_agent", "User-Agent", s.user_agent.as_str())];
    let version = s.api_version.as_deref().map(|v| ("api_version", "Api-Version", v));
    for (setting, name, value) in fixed.into_iter().chain(version) {
        if !valid_header_name(name) || !valid_header_value(value) {
            return Err(Error::Config(format!("profile '{profile}': `{setting}` is not a valid HTTP header")));
        }
    }
    let mut headers = vec![("User-Agent".to_string(), s.user_agent.clone())];
    if let Some(v) = &s.api_version {
        headers.push(("Api-Version".into(), v.clone()));
    }
    let extra = match &s.extra_headers {
        None => BTreeMap::new(),
        Some(ExtraHeaders::Table(t)) => t.clone(),
        Some(ExtraHeaders::Json(text)) => serde_json::from_str::<BTreeMap<String, String>>(text).map_err(|e| {
            Error::Config(format!(
                "profile '{profile}': `extra_headers` must be a table, or a JSON object of strings ({e})"
            ))
        })?,
    };
    for (name, value) in extra {
        let reserved = name.eq_ignore_ascii_case(&s.header) || name.eq_ignore_ascii_case("authorization");
        let bad = !valid_header_name(&name) || !valid_header_value(&value);
        if reserved || bad {
            return Err(Error::Config(format!(
                "profile '{profile}': `extra_headers` may not set `{name}` (the key's header, or not a valid header)"
            )));
        }
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        headers.push((name, value));
    }
    Ok(headers)
}

/// An RFC 9110 §5.6.2 token: no separator, space or control character could end the name early.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// No control character but tab (RFC 9110 §5.5): a CR or LF would start another header.
fn valid_header_value(value: &str) -> bool {
    !value.chars().any(|c| c.is_control() && c != '\t')
}

inventory::submit! {
    ProviderInfo {
        name: "api-key",
        description: "A long-lived API key: minted after an OpenID Connect login (Anaconda-style), or pasted with `login --with-key`",
        settings_schema: || schemars::schema_for!(ApiKeySettings),
        secrets: &[],
        template: include_str!("api-key.toml"),
        build,
    }
}

impl ApiKey {
    /// A request to the API with the profile's headers (no key).
    fn with_headers(&self, mut request: HttpRequest) -> HttpRequest {
        for (k, v) in &self.headers {
            if !request.headers.iter().any(|(have, _)| have.eq_ignore_ascii_case(k)) {
                request = request.header(k, v.clone());
            }
        }
        request
    }

    fn key_header_value(&self, key: &Secret) -> String {
        let default_scheme = if self.header == "Authorization" { "Bearer" } else { "" };
        match self.settings.scheme.as_deref().unwrap_or(default_scheme) {
            "" => key.expose().to_string(),
            scheme => format!("{scheme} {}", key.expose()),
        }
    }

    /// The key as tokens: its expiry is the JWT's `exp` (UTC seconds; the signature is the service's
    /// business), or the mint answer's `expires_at` when the key is no JWT.
    fn key_tokens(&self, key: Secret, now: u64, answer_expiry: Option<u64>) -> TokenSet {
        let claims = jwt::unverified_key_claims(key.expose()).unwrap_or_default();
        let mut tokens = TokenSet::new(key, now);
        tokens.expires_at = claims.expires_at.or(answer_expiry).map(|at| crate::token::clamp_expiry(now, at));
        tokens.username = claims.subject;
        tokens
    }

    fn expired(&self, cx: &FlowContext<'_>, tokens: &TokenSet) -> Error {
        let when = tokens.expires_at.map(crate::clock::rfc3339).unwrap_or_else(|| "?".into());
        cx.login_required(format!("the API key of profile '{}' expired at {when}", self.profile))
    }

    fn login_static(&self, cx: &mut FlowContext<'_>) -> Result<TokenSet> {
        let key = cx.secrets.get(PASTED_KEY).cloned().ok_or_else(|| {
            Error::Config(format!(
                "profile '{0}' has key_source = \"static\": give the key with \
                 `age-oauth login --profile {0} --with-key` (it is read from stdin)",
                self.profile
            ))
        })?;
        let tokens = self.key_tokens(key, cx.now(), None);
        if tokens.expires_at.is_some_and(|at| at <= cx.now()) {
            return Err(self.expired(cx, &tokens));
        }
        Ok(tokens)
    }

    /// `POST` each mint URL in turn (the next only on 404) with the login's access token.
    fn mint(&self, cx: &mut FlowContext<'_>, access: &TokenSet) -> Result<TokenSet> {
        let body = json!({
            "scopes": self.settings.key_scopes.words().collect::<Vec<_>>(),
            "tags": self.settings.key_tags.words().collect::<Vec<_>>(),
        });
        for url in &self.mint_urls {
            let mut request = self.with_headers(HttpRequest {
                method: Method::Post,
                url: url.clone(),
                headers: Vec::new(),
                body: Some(body.to_string().into_bytes()),
            });
            request = request
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .header("Authorization", format!("Bearer {}", access.access_token.expose()));
            let response = cx.send(&request)?;
            match response.status {
                404 => {
                    cx.ui.debug(1, &format!("{url}: HTTP 404, trying the next mint URL"));
                    continue;
                }
                201 => return self.minted(cx, url, &response, access),
                401 | 403 => {
                    return Err(cx.login_required(format!(
                        "{url} refused to mint a key (HTTP {}): {}",
                        response.status,
                        service_message(&response)
                    )))
                }
                status => {
                    return Err(Error::server(format!(
                        "{url} did not mint a key (HTTP {status}, expected 201): {}",
                        service_message(&response)
                    )))
                }
            }
        }
        Err(Error::server(format!("no mint URL of profile '{}' exists (all answered 404)", self.profile)))
    }

    fn minted(
        &self,
        cx: &mut FlowContext<'_>,
        url: &str,
        response: &HttpResponse,
        access: &TokenSet,
    ) -> Result<TokenSet> {
        let answer = read_json(response, "key mint")?.map_err(|e| Error::server(format!("{url}: {e}")))?;
        let Some(key) = answer.get("api_key").and_then(Value::as_str).filter(|k| !k.is_empty()) else {
            return Err(Error::server(format!("{url} answered 201 without an `api_key`")));
        };
        let answer_expiry = answer.get("expires_at").and_then(Value::as_u64);
        let mut tokens = self.key_tokens(Secret::new(key), cx.now(), answer_expiry);
        if tokens.expires_at.is_some_and(|at| at <= cx.now()) {
            return Err(Error::server(format!("{url} minted a key that has already expired")));
        }
        // The login's refresh token (if any) lets a later refresh mint again without a person.
        tokens.refresh_token = access.refresh_token.clone();
        tokens.refresh_expires_at = access.refresh_expires_at;
        tokens.username = access.username.clone().or(tokens.username);
        let id =
            answer.get("id").and_then(|v| v.as_str().map(String::from).or_else(|| v.as_u64().map(|n| n.to_string())));
        let state = KeyState { key_minted_at: Some(url.to_string()), key_id: id };
        let mut map: Map<String, Value> = match serde_json::to_value(&access.provider_state) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        if let Ok(Value::Object(own)) = serde_json::to_value(&state) {
            map.extend(own);
        }
        tokens.provider_state.set(&map);
        Ok(tokens)
    }

    fn login_mint(&self, cx: &mut FlowContext<'_>, login: &OidcLogin) -> Result<TokenSet> {
        let access = login.login(cx)?;
        self.mint(cx, &access)
    }
}

/// The service's own words from an error body (Anaconda: `{"error": {"message": ...}}`), for messages.
fn service_message(response: &HttpResponse) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("detail"))
            .or_else(|| v.pointer("/error/code"))
            .and_then(Value::as_str)
    });
    crate::redact::printable(message.unwrap_or("no message"))
}

impl Provider for ApiKey {
    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        let mut origins = vec![crate::binding::origin_of("api_url", &self.api_url)];
        origins.extend(self.mint_urls.iter().map(|u| crate::binding::origin_of("mint_url", u)));
        origins.extend(self.whoami_url.iter().map(|u| crate::binding::origin_of("whoami_url", u)));
        if let Some(login) = &self.login {
            origins.extend(login.origins());
        }
        origins
    }

    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        match &self.login {
            None => self.login_static(cx),
            Some(login) => self.login_mint(cx, login),
        }
        .map(Obtained::from)
    }

    /// A key is not refreshed: near its end (or refused) a new one is minted when the login left a
    /// refresh token; else a key still valid is kept, and an expired one needs `login`.
    fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        if let (Some(login), true) = (&self.login, current.can_refresh(cx.now())) {
            let access = login.refresh(cx, current)?;
            return self.mint(cx, &access);
        }
        if current.expires_at.is_some_and(|at| at <= cx.now()) {
            return Err(self.expired(cx, current));
        }
        Ok(current.clone())
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        let Some(url) = &self.whoami_url else {
            let username = tokens.username.clone().unwrap_or_else(|| "?".into());
            let mut details = Map::new();
            details.insert("source".into(), json!("the key's own claims"));
            return Ok(Identity { username, details });
        };
        let response =
            self.send_authenticated(cx, tokens, &HttpRequest::get(url).header("Accept", "application/json"))?;
        match response.status {
            200 => {}
            401 => return Err(Error::TokenRejected(format!("{url}: HTTP 401 ({})", service_message(&response)))),
            status => return Err(Error::server(format!("{url}: HTTP {status} ({})", service_message(&response)))),
        }
        let answer = read_json(&response, "whoami")?.map_err(|e| Error::server(format!("{url}: {e}")))?;
        let user = answer.get("user").and_then(Value::as_object).unwrap_or(&answer);
        let username = ["username", "email", "id"]
            .iter()
            .find_map(|k| user.get(*k).and_then(Value::as_str).map(String::from))
            .ok_or_else(|| Error::server(format!("{url}: no username, email or id in the answer")))?;
        let details = user.iter().filter(|(k, _)| ["email", "first_name", "last_name", "id"].contains(&k.as_str()));
        Ok(Identity { username, details: details.map(|(k, v)| (k.clone(), v.clone())).collect() })
    }

    fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String> {
        let state = tokens.provider_state.get::<KeyState>();
        let (Some(minted_at), Some(id)) = (state.key_minted_at, state.key_id) else {
            return Ok("this key was not minted by age-oauth: it stays valid at the service until it expires or is deleted there".into());
        };
        let url = format!("{minted_at}/{}", form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
        let request =
            HttpRequest { method: Method::Other("DELETE".into()), url: url.clone(), headers: Vec::new(), body: None };
        let response = self.send_authenticated(cx, tokens, &request)?;
        Ok(match response.status {
            200 | 202 | 204 => format!("deleted the API key at {minted_at}"),
            404 => "the service no longer knows the key (already deleted)".into(),
            status => format!("the service refused to delete the key (HTTP {status}): {}", service_message(&response)),
        })
    }

    fn token_header(&self) -> &'static str {
        self.header
    }

    fn service_url(&self) -> Option<String> {
        Some(self.api_url.clone())
    }

    fn send_authenticated(
        &self,
        cx: &mut FlowContext<'_>,
        tokens: &TokenSet,
        request: &HttpRequest,
    ) -> Result<HttpResponse> {
        let request = self
            .with_headers(request.clone())
            .header(&self.settings.header, self.key_header_value(&tokens.access_token));
        cx.send(&request)
    }

    fn authorization_headers(&self, tokens: &TokenSet) -> Option<Vec<(String, String)>> {
        let mut headers = self.headers.clone();
        headers.push((self.settings.header.clone(), self.key_header_value(&tokens.access_token)));
        Some(headers)
    }

    fn accepts_pasted_key(&self) -> bool {
        self.login.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(extra: serde_json::Value) -> ApiKeySettings {
        let mut v = json!({"api_url": "https://api.example.com", "key_source": "static"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    /// Extra headers (a table, or AGE_OAUTH_EXTRA_HEADERS' JSON) cannot carry or replace the key,
    /// split a header with CR/LF or a bad name, or slip in non-string JSON; the user agent, API
    /// version and key header are held to the same rules. Good headers pass, the env's JSON wins.
    #[test]
    fn hostile_extra_headers_are_refused_with_the_setting_named() {
        for (case, extra) in [
            ("authorization", json!({"extra_headers": {"authorization": "Bearer x"}})),
            ("the key header", json!({"header": "X-Api-Key", "extra_headers": {"x-api-key": "k"}})),
            ("CR LF in a value", json!({"extra_headers": {"X-Org": "a\r\nAuthorization: Bearer x"}})),
            ("a lone CR", json!({"extra_headers": {"X-Org": "a\rb"}})),
            ("a colon in a name", json!({"extra_headers": {"X-Org: b": "c"}})),
            ("a space in a name", json!({"extra_headers": {"X Org": "c"}})),
            ("an empty name", json!({"extra_headers": {"": "c"}})),
            ("JSON not an object", json!({"extra_headers": "[\"X-Org\", \"a\"]"})),
            ("JSON number value", json!({"extra_headers": "{\"X-Org\": 1}"})),
            ("JSON nested", json!({"extra_headers": "{\"X-Org\": {\"a\": \"b\"}}"})),
            ("JSON truncated", json!({"extra_headers": "{\"X-Org\": \"a"})),
            ("JSON CR LF", json!({"extra_headers": "{\"X-Org\": \"a\\r\\nX: y\"}"})),
            ("user agent", json!({"user_agent": "ua\nX-Evil: 1"})),
            ("api version", json!({"api_version": "1\r\n"})),
            ("key header", json!({"header": "X-Key\nEvil"})),
        ] {
            let err = request_headers("p", &settings(extra)).expect_err(case).to_string();
            assert!(err.contains("profile 'p'") && !err.contains('\n'), "{case}: {err}");
        }
        let ok = settings(
            json!({"api_version": "2024-06-01", "extra_headers": "{\"X-Org\": \"a\\tb\", \"User-Agent\": \"mine/1\"}"}),
        );
        let headers = request_headers("p", &ok).unwrap();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("X-Org"), get("User-Agent"), get("Api-Version")),
            (Some("a\tb"), Some("mine/1"), Some("2024-06-01"))
        );
        assert_eq!(headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("user-agent")).count(), 1, "{headers:?}");
    }
}
