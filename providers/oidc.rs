//! `oidc`: any OpenID Connect / OAuth 2.0 server — browser sign-in (code + PKCE, loopback redirect)
//! or device code (RFC 8628), id_token checked against the JWKS, refresh with rotation, RFC 7009 revocation.
//! The login itself is the shared `protocol::oidc`; this plugin is its settings and registration.

use crate::error::Result;
use crate::protocol::oidc::{Flow, LoginConfig, OidcLogin};
use crate::registry::{FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo, SecretSpec};
use crate::settings::WordList;
use crate::token::TokenSet;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Settings of an `oidc` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-secret-prompts" = {"client_secret": {"label": "Client secret", "order": 40}}))]
pub struct OidcSettings {
    /// Issuer URL; endpoints come from its /.well-known/openid-configuration unless given below.
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Issuer URL", "order": 10, "check": "url"}))]
    pub issuer: Option<String>,
    /// Authorization endpoint (overrides discovery).
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint (overrides discovery).
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Device authorization endpoint, for flow = "device" (overrides discovery).
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint, used by `logout` (overrides discovery).
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// Userinfo endpoint, used by `whoami` (overrides discovery).
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// JWKS URL that id_token signatures are checked against (overrides discovery).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// OAuth client_id.
    #[schemars(extend("x-prompt" = {"label": "Client ID", "order": 30}))]
    pub client_id: String,
    /// Scopes, as an array or a space-separated string; include offline_access for a refresh token (prompt=consent is then added).
    #[serde(default = "default_scopes")]
    #[schemars(extend("x-prompt" = {"label": "Scopes", "order": 50}))]
    pub scopes: WordList,
    /// "browser" (code + PKCE with a loopback redirect) or "device" (RFC 8628 device code).
    #[serde(default = "default_flow")]
    #[schemars(extend("x-prompt" = {"label": "Sign-in flow", "order": 51}))]
    pub flow: Flow,
    /// Fixed port for the loopback redirect (default: a free port chosen at each login).
    #[serde(default)]
    pub redirect_port: Option<u16>,
    /// Path of the loopback redirect URI.
    #[serde(default = "crate::protocol::loopback::default_redirect_path")]
    pub redirect_path: String,
    /// Seconds to wait for the browser to come back before giving up.
    #[serde(default = "crate::protocol::loopback::default_login_timeout")]
    pub login_timeout: u64,
    /// `audience` parameter sent with the authorization and device requests (Auth0 and similar).
    #[serde(default)]
    pub audience: Option<String>,
    /// More parameters for the authorization request, e.g. { login_hint = "me@example.com" }.
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
}

fn default_scopes() -> WordList {
    WordList::from("openid")
}

pub const CLIENT_SECRET: SecretSpec = SecretSpec {
    name: "client_secret",
    description: "Client secret, for confidential clients only (sent with HTTP Basic authentication)",
    required: false,
};

fn default_flow() -> Flow {
    Flow::Browser
}

struct Oidc {
    login: OidcLogin,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: OidcSettings = settings.parse()?;
    let config = LoginConfig {
        issuer: s.issuer,
        discovery_url: None,
        authorization_endpoint: s.authorization_endpoint,
        token_endpoint: s.token_endpoint,
        device_authorization_endpoint: s.device_authorization_endpoint,
        revocation_endpoint: s.revocation_endpoint,
        userinfo_endpoint: s.userinfo_endpoint,
        jwks_uri: s.jwks_uri,
        client_id: s.client_id,
        scopes: s.scopes,
        flow: s.flow,
        redirect_port: s.redirect_port,
        redirect_path: s.redirect_path,
        login_timeout: s.login_timeout,
        audience: s.audience,
        extra_authorize_params: s.extra_authorize_params,
    };
    Ok(Box::new(Oidc { login: OidcLogin::new(&settings.profile, config)? }))
}

inventory::submit! {
    ProviderInfo {
        name: "oidc",
        description: "Any OpenID Connect / OAuth 2.0 server: browser sign-in (PKCE, loopback redirect) or device code",
        settings_schema: || schemars::schema_for!(OidcSettings),
        secrets: &[CLIENT_SECRET],
        template: include_str!("oidc.toml"),
        build,
    }
}

impl Provider for Oidc {
    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        self.login.origins()
    }

    fn rotation_note(&self) -> Option<&'static str> {
        Some(
            "OpenID Connect servers may rotate the refresh token at every refresh (and revoke the grant when an old \
             one comes back): the copy that refreshes first keeps working, and the other then needs `age-oauth login`",
        )
    }

    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        self.login.login(cx).map(Obtained::from)
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        self.login.refresh(cx, current)
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        self.login.whoami(cx, tokens)
    }

    fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String> {
        self.login.logout(cx, tokens)
    }
}
