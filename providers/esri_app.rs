//! `esri-app`: an ArcGIS application's own identity (`grant_type=client_credentials`).
//! No person and no refresh token: a new app token is simply requested again.

use crate::error::{Error, Result};
use crate::protocol::arcgis::{Answer, Portal, CLIENT_SECRET};
use crate::protocol::oauth2::token_set;
use crate::registry::{FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo, SecretSpec};
use crate::settings::service_url;
use crate::token::TokenSet;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Settings of an `esri-app` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-secret-prompts" = {"client_secret": {"label": "OAuth Client Secret", "order": 40}}))]
pub struct EsriAppSettings {
    /// Portal URL, e.g. https://gis.example.com/portal or https://www.arcgis.com (http:// only for loopback).
    #[schemars(extend("x-prompt" = {"label": "Portal URL", "order": 10, "check": "url"}))]
    pub portal: String,
    /// App ID (client_id) of the application.
    #[schemars(extend("x-prompt" = {"label": "OAuth Client ID", "order": 30}))]
    pub client_id: String,
    /// App-token lifetime to ask for, in minutes (the portal default is 7200).
    #[serde(default)]
    pub expiration: Option<i64>,
    /// Referer header sent with every request.
    #[serde(default)]
    pub referer: Option<String>,
}

const SECRETS: &[SecretSpec] = &[SecretSpec { required: true, ..CLIENT_SECRET }];

pub struct EsriApp {
    portal: Portal,
    client_id: String,
    expiration: Option<i64>,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: EsriAppSettings = settings.parse()?;
    Ok(Box::new(EsriApp {
        portal: Portal { url: service_url(&settings.profile, "portal", &s.portal)?, referer: s.referer },
        client_id: s.client_id,
        expiration: s.expiration,
    }))
}

inventory::submit! {
    ProviderInfo {
        name: "esri-app",
        description: "ArcGIS application credentials (client_credentials): an app token, no browser, no person",
        settings_schema: || schemars::schema_for!(EsriAppSettings),
        secrets: SECRETS,
        template: include_str!("esri-app.toml"),
        build,
    }
}

impl EsriApp {
    fn acquire(&self, cx: &mut FlowContext<'_>) -> Result<TokenSet> {
        let secret = cx.secrets.get("client_secret").cloned().ok_or_else(|| {
            Error::Config(format!(
                "profile '{}' needs a client secret: `age-oauth profile add {} --provider esri-app --client-secret ...` or AGE_OAUTH_CLIENT_SECRET",
                cx.profile, cx.profile
            ))
        })?;
        let expiration = self.expiration.map(|m| m.to_string());
        let mut fields = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", secret.expose()),
        ];
        if let Some(e) = &expiration {
            fields.push(("expiration", e.as_str()));
        }
        let now = cx.now();
        match self.portal.token_request(cx, &fields)? {
            Answer::Ok(object) => {
                let mut tokens = token_set(&object, now, None, "oauth2/token")?;
                tokens.username.get_or_insert_with(|| self.client_id.clone());
                Ok(tokens)
            }
            Answer::Error(e) => Err(Error::server(format!("the portal refused the application credentials: {e}"))),
        }
    }
}

impl EsriApp {
    /// The referer requests carry (for tokens bound to one).
    fn referer(&self) -> Option<&str> {
        self.portal.referer.as_deref()
    }
}

impl Provider for EsriApp {
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        self.acquire(cx).map(Obtained::from)
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, _current: &TokenSet) -> Result<TokenSet> {
        self.acquire(cx)
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        let object = self.portal.get_with_token(cx, "portals/self", &tokens.access_token)?;
        let app = object.get("appInfo").and_then(Value::as_object);
        let username = app.and_then(|a| a.get("appId")).and_then(Value::as_str).unwrap_or(&self.client_id).to_string();
        let mut details = Map::new();
        // What the Python age-oauth's whoami showed for an app: title, App ID, item ID, owner.
        details.insert("auth_type".into(), Value::String("app".into()));
        details.insert("app_id".into(), Value::String(username.clone()));
        for (from, to) in [("appTitle", "app_title"), ("itemId", "app_item_id"), ("appOwner", "app_owner")] {
            if let Some(v) = app.and_then(|a| a.get(from)).filter(|v| v.is_string()) {
                details.insert(to.into(), v.clone());
            }
        }
        for key in ["id", "name"] {
            if let Some(v) = object.get(key) {
                details.insert(format!("org_{key}"), v.clone());
            }
        }
        details.insert("portal".into(), Value::String(self.portal.url.clone()));
        Ok(Identity { username, details })
    }

    fn logout(&self, _cx: &mut FlowContext<'_>, _tokens: &TokenSet) -> Result<String> {
        // App tokens cannot be revoked at oauth2/revokeToken (protocols.md §1.4).
        Ok("app tokens cannot be revoked; the cached one is deleted".into())
    }

    fn needs_person(&self) -> bool {
        false
    }

    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        vec![crate::binding::origin_of("portal", &self.portal.url)]
    }

    fn doctor_probes(&self) -> Vec<crate::doctor::Probe> {
        self.portal.doctor_probes(None)
    }

    fn service_url(&self) -> Option<String> {
        Some(self.portal.url.clone())
    }

    crate::protocol::arcgis::arcgis_token_transport!();
}
