//! `esri-pkce`: ArcGIS Portal / ArcGIS Online authorization code + PKCE for a public app, the browser
//! coming back to a loopback listener by itself (RFC 8252); then the refresh and rotation of `esri-oob`.

use crate::error::Result;
use crate::protocol::arcgis::{default_rotate_within, Portal};
use crate::protocol::loopback::{default_login_timeout, default_redirect_path, obtain_code, Expected, Listener};
use crate::protocol::pkce::{random_urlsafe, Pkce};
use crate::registry::{FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo};
use crate::settings::service_url;
use crate::token::TokenSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where the login's redirect URI is kept: `exchange_refresh_token` must repeat it.
/// What a PKCE login keeps with its tokens: the loopback redirect it used (ArcGIS checks
/// it again when the refresh token is exchanged).
#[derive(Debug, Default, Serialize, Deserialize)]
struct PkceState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
}

/// Settings of an `esri-pkce` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EsriPkceSettings {
    /// Portal URL, e.g. https://gis.example.com/portal or https://www.arcgis.com (http:// only for loopback).
    #[schemars(extend("x-prompt" = {"label": "Portal URL", "order": 10, "check": "url"}))]
    pub portal: String,
    /// App ID (client_id) of a public OAuth application whose redirect URIs include http://127.0.0.1 (or the fixed port).
    #[schemars(extend("x-prompt" = {"label": "OAuth Client ID", "order": 30}))]
    pub client_id: String,
    /// Fixed port for the loopback redirect (default: a free port chosen at each login).
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Loopback redirect port", "order": 50}))]
    pub redirect_port: Option<u16>,
    /// Path of the loopback redirect URI.
    #[serde(default = "default_redirect_path")]
    pub redirect_path: String,
    /// Seconds to wait for the browser to come back before giving up.
    #[serde(default = "default_login_timeout")]
    pub login_timeout: u64,
    /// Refresh-token lifetime to ask for, in minutes (the portal may cap it; -1 = the portal's maximum).
    #[serde(default)]
    pub expiration: Option<i64>,
    /// Referer header sent with every request (for portals that bind tokens to a referer).
    #[serde(default)]
    pub referer: Option<String>,
    /// Rotate the refresh token (exchange_refresh_token) when it has less than this many seconds left.
    #[serde(default = "default_rotate_within")]
    pub rotate_refresh_within: u64,
}

pub struct EsriPkce {
    portal: Portal,
    settings: EsriPkceSettings,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: EsriPkceSettings = settings.parse()?;
    crate::settings::check_login_timeout(&settings.profile, s.login_timeout)?;
    let portal = Portal { url: service_url(&settings.profile, "portal", &s.portal)?, referer: s.referer.clone() };
    Ok(Box::new(EsriPkce { portal, settings: s }))
}

inventory::submit! {
    ProviderInfo {
        name: "esri-pkce",
        description: "ArcGIS Portal / ArcGIS Online sign-in in the browser, which returns to age-oauth by itself (PKCE, loopback redirect, public app)",
        settings_schema: || schemars::schema_for!(EsriPkceSettings),
        secrets: &[],
        template: include_str!("esri-pkce.toml"),
        build,
    }
}

impl EsriPkce {
    /// The referer requests carry (for tokens bound to one).
    fn referer(&self) -> Option<&str> {
        self.portal.referer.as_deref()
    }
}

impl EsriPkce {
    /// The redirect URI the login used (`exchange_refresh_token` must repeat it).
    fn login_redirect_uri(&self, current: &TokenSet) -> String {
        current
            .provider_state
            .get::<PkceState>()
            .redirect_uri
            .unwrap_or_else(|| format!("http://127.0.0.1{}", self.settings.redirect_path))
    }
}

impl Provider for EsriPkce {
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        let s = &self.settings;
        let listener = Listener::bind(cx.profile, s.redirect_port, &s.redirect_path)?;
        let redirect_uri = listener.redirect_uri().to_string();
        let state = random_urlsafe(16);
        let pkce = Pkce::new();
        let url = self.portal.authorize_url(&s.client_id, &redirect_uri, &state, &pkce, s.expiration);
        let profile = cx.profile.to_string();
        let expected = Expected { profile: &profile, state: &state, issuer: None };
        let callback = obtain_code(cx, &listener, &url, &expected, Duration::from_secs(s.login_timeout))?;
        let mut tokens = self.portal.redeem_code(cx, &s.client_id, callback.code.expose(), &redirect_uri, &pkce)?;
        tokens.provider_state.set(&PkceState { redirect_uri: Some(redirect_uri) });
        Ok(tokens.into())
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        let redirect_uri = self.login_redirect_uri(current);
        let s = &self.settings;
        self.portal.refresh_user_tokens(cx, &s.client_id, &redirect_uri, s.rotate_refresh_within, current)
    }

    fn rotate_refresh_token(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        let redirect_uri = self.login_redirect_uri(current);
        let mut fresh = self.portal.exchange_refresh_token(cx, &self.settings.client_id, &redirect_uri, current)?;
        fresh.provider_state.set(&PkceState { redirect_uri: Some(redirect_uri) });
        Ok(fresh)
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        self.portal.community_self(cx, &tokens.access_token)
    }

    fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String> {
        self.portal.revoke_user_tokens(cx, &self.settings.client_id, tokens)
    }

    fn rotation_note(&self) -> Option<&'static str> {
        Some(crate::protocol::arcgis::ROTATION_NOTE)
    }

    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        vec![crate::binding::origin_of("portal", &self.portal.url)]
    }

    fn doctor_probes(&self) -> Vec<crate::doctor::Probe> {
        // Without a fixed port, login picks a free one: any port stands for it.
        let port = self.settings.redirect_port.unwrap_or(crate::doctor::ANY_LOOPBACK_PORT);
        let redirect = format!("http://127.0.0.1:{port}{}", self.settings.redirect_path);
        self.portal.doctor_probes(Some((&self.settings.client_id, redirect)))
    }

    fn service_url(&self) -> Option<String> {
        Some(self.portal.url.clone())
    }

    crate::protocol::arcgis::arcgis_token_transport!();
}
