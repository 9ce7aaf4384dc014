//! `esri-oob`: ArcGIS Portal / ArcGIS Online OAuth 2.0 authorization code with the out-of-band
//! redirect — the portal shows a code, the user pastes it — plus refresh and refresh-token rotation.

use crate::error::Result;
use crate::protocol::arcgis::{default_rotate_within, extract_code, Portal, CLIENT_SECRET, OOB_REDIRECT};
use crate::protocol::pkce::{random_urlsafe, Pkce};
use crate::registry::{FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo};
use crate::settings::service_url;
use crate::token::TokenSet;
use schemars::JsonSchema;
use serde::Deserialize;

/// Settings of an `esri-oob` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-secret-prompts" = {"client_secret": {"label": "OAuth Client Secret", "order": 40}}))]
pub struct EsriOobSettings {
    /// Portal URL, e.g. https://gis.example.com/portal or https://www.arcgis.com (http:// only for loopback).
    #[schemars(extend("x-prompt" = {"label": "Portal URL", "order": 10, "check": "url"}))]
    pub portal: String,
    /// App ID (client_id) of the OAuth application registered in the portal.
    #[schemars(extend("x-prompt" = {"label": "OAuth Client ID", "order": 30}))]
    pub client_id: String,
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

pub struct EsriOob {
    portal: Portal,
    client_id: String,
    expiration: Option<i64>,
    rotate_within: u64,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: EsriOobSettings = settings.parse()?;
    Ok(Box::new(EsriOob {
        portal: Portal { url: service_url(&settings.profile, "portal", &s.portal)?, referer: s.referer },
        client_id: s.client_id,
        expiration: s.expiration,
        rotate_within: s.rotate_refresh_within,
    }))
}

inventory::submit! {
    ProviderInfo {
        name: "esri-oob",
        description: "ArcGIS Portal / ArcGIS Online OAuth sign-in: the browser shows a code you paste back (out-of-band)",
        settings_schema: || schemars::schema_for!(EsriOobSettings),
        secrets: &[CLIENT_SECRET],
        template: include_str!("esri-oob.toml"),
        build,
    }
}

impl EsriOob {
    /// The referer requests carry (for tokens bound to one).
    fn referer(&self) -> Option<&str> {
        self.portal.referer.as_deref()
    }
}

impl Provider for EsriOob {
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        let state = random_urlsafe(16);
        let pkce = Pkce::new();
        let url = self.portal.authorize_url(&self.client_id, OOB_REDIRECT, &state, &pkce, self.expiration);
        if !cx.no_browser {
            cx.ui.info("Opening browser for ArcGIS Enterprise OAuth sign-in...");
            if let Err(why) = cx.ui.open_browser(&url) {
                cx.ui.warn(&format!("could not open a browser ({why}); open the URL below yourself"));
            }
        }
        cx.ui.info(&format!("Sign in at this URL, then paste the code the portal shows:\n  {url}"));
        let pasted = cx.ui.read_line("Code: ")?;
        let code = pasted
            .as_deref()
            .and_then(extract_code)
            .ok_or_else(|| cx.login_required("no authorization code was given (expected one line on stdin)"))?;
        self.portal.redeem_code(cx, &self.client_id, &code, OOB_REDIRECT, &pkce).map(Obtained::from)
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        self.portal.refresh_user_tokens(cx, &self.client_id, OOB_REDIRECT, self.rotate_within, current)
    }

    fn rotate_refresh_token(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        self.portal.exchange_refresh_token(cx, &self.client_id, OOB_REDIRECT, current)
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        self.portal.community_self(cx, &tokens.access_token)
    }

    fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String> {
        self.portal.revoke_user_tokens(cx, &self.client_id, tokens)
    }

    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        vec![crate::binding::origin_of("portal", &self.portal.url)]
    }

    fn doctor_probes(&self) -> Vec<crate::doctor::Probe> {
        self.portal.doctor_probes(Some((&self.client_id, OOB_REDIRECT.to_string())))
    }

    fn service_url(&self) -> Option<String> {
        Some(self.portal.url.clone())
    }

    fn rotation_note(&self) -> Option<&'static str> {
        Some(crate::protocol::arcgis::ROTATION_NOTE)
    }

    crate::protocol::arcgis::arcgis_token_transport!();
}
