//! `esri-token`: ArcGIS tokens from `generateToken` with a built-in account's username and password,
//! at a Portal or at a standalone ArcGIS Server (token URL read from its `rest/info`); no refresh token, so re-acquired.

use crate::error::{Error, Result};
use crate::http::HttpRequest;
use crate::protocol::arcgis::{generated_token, read_answer, Answer, Portal};
use crate::protocol::password;
use crate::registry::{FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo, SecretSpec};
use crate::secret::Secret;
use crate::settings::service_url;
use crate::token::TokenSet;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Settings of an `esri-token` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EsriTokenSettings {
    /// Portal URL, e.g. https://gis.example.com/portal (give `portal` or `server`; http:// only for loopback). With `server` too: the portal a federated server on another host may send the password to.
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Portal URL", "order": 10, "check": "url"}))]
    pub portal: Option<String>,
    /// ArcGIS Server root, e.g. https://gis.example.com/arcgis; its token URL is read from `rest/info` (for a federated server: its portal's generateToken, then a token for this server).
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "ArcGIS Server URL", "order": 11, "check": "url"}))]
    pub server: Option<String>,
    /// Built-in ArcGIS account (case-sensitive). Its password is prompted at login or read from AGE_OAUTH_PASSWORD.
    #[schemars(extend("x-prompt" = {"label": "Username", "order": 30}))]
    pub username: String,
    /// What the token is bound to: "referer" (sent as `Referer` on every request) or "requestip" (this machine's address). Default: referer when `referer` is set, else requestip.
    #[serde(default)]
    pub client: Option<TokenClient>,
    /// The referer a `client = "referer"` token is bound to, e.g. https://scripts.example.com.
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Referer", "order": 50}))]
    pub referer: Option<String>,
    /// Token lifetime to ask for, in minutes (the site may cap it).
    #[serde(default = "default_expiration")]
    pub expiration: u64,
}

fn default_expiration() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenClient {
    Referer,
    Requestip,
}

pub const PASSWORD: SecretSpec = SecretSpec {
    name: "password",
    description: "Password of the account: prompted at login (kept encrypted if you agree), or AGE_OAUTH_PASSWORD",
    required: false,
};

/// Where tokens come from.
enum Site {
    Portal(Portal),
    /// An ArcGIS Server root, standalone or federated. `portal`: the portal a federated server
    /// may send the password to when that portal is on another host than the server.
    Server {
        root: String,
        portal: Option<String>,
    },
}

/// Where `generateToken` is, as a server's `rest/info` tells.
enum TokenService {
    /// A portal, or a standalone server's own token service.
    Direct(String),
    /// A federated server: the owning portal's `generateToken` makes a portal token, then a
    /// token valid for `server` (`serverUrl`).
    Federated { url: String, server: String },
}

pub struct EsriToken {
    site: Site,
    username: String,
    client: TokenClient,
    referer: Option<String>,
    expiration: u64,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: EsriTokenSettings = settings.parse()?;
    let profile = &settings.profile;
    let site = match (&s.portal, &s.server) {
        (Some(portal), None) => {
            Site::Portal(Portal { url: service_url(profile, "portal", portal)?, referer: s.referer.clone() })
        }
        (portal, Some(server)) => Site::Server {
            root: service_url(profile, "server", server)?,
            portal: portal.as_deref().map(|p| service_url(profile, "portal", p)).transpose()?,
        },
        (None, None) => {
            return Err(Error::Config(format!(
                "profile '{profile}' (esri-token) needs `portal` or `server`; \
                 e.g. `age-oauth profile add {profile} --provider esri-token --portal URL --set username=NAME`"
            )))
        }
    };
    let client = s.client.unwrap_or(if s.referer.is_some() { TokenClient::Referer } else { TokenClient::Requestip });
    if client == TokenClient::Referer && s.referer.is_none() {
        return Err(Error::Config(format!(
            "profile '{profile}': client = \"referer\" needs `referer` (the URL the token is bound to)"
        )));
    }
    Ok(Box::new(EsriToken { site, username: s.username, client, referer: s.referer, expiration: s.expiration }))
}

inventory::submit! {
    ProviderInfo {
        name: "esri-token",
        description: "ArcGIS tokens from generateToken (Portal or ArcGIS Server built-in account, username + password)",
        settings_schema: || schemars::schema_for!(EsriTokenSettings),
        secrets: &[PASSWORD],
        template: include_str!("esri-token.toml"),
        build,
    }
}

impl EsriToken {
    fn client_name(&self) -> &'static str {
        match self.client {
            TokenClient::Referer => "referer",
            TokenClient::Requestip => "requestip",
        }
    }

    /// The referer requests carry: only a `client = "referer"` token is bound to one.
    fn referer(&self) -> Option<&str> {
        match self.client {
            TokenClient::Referer => self.referer.as_deref(),
            TokenClient::Requestip => None,
        }
    }

    fn with_referer(&self, mut request: HttpRequest) -> HttpRequest {
        if let Some(r) = self.referer() {
            request = request.header("Referer", r);
        }
        request
    }

    /// The generateToken URL: the portal's own, or the one a server's `rest/info` names.
    fn token_url(&self, cx: &mut FlowContext<'_>) -> Result<TokenService> {
        let (server, allowed_portal) = match &self.site {
            Site::Portal(portal) => return Ok(TokenService::Direct(portal.rest("generateToken"))),
            Site::Server { root, portal } => (root, portal),
        };
        let response = cx.send(&HttpRequest::get(format!("{server}/rest/info?f=json")))?;
        let info = match read_answer(&response, "rest/info")? {
            Answer::Ok(info) => info,
            Answer::Error(e) => return Err(Error::server(format!("{server}/rest/info: {e}"))),
        };
        let auth = info.get("authInfo");
        if auth.and_then(|a| a.get("isTokenBasedSecurity")).and_then(Value::as_bool) == Some(false) {
            return Err(Error::Config(format!("{server} does not use token security: its services need no token")));
        }
        let named = auth.and_then(|a| a.get("tokenServicesUrl")).and_then(Value::as_str);
        let Some(owner) = info.get("owningSystemUrl").and_then(Value::as_str) else {
            let url =
                named.ok_or_else(|| Error::server(format!("{server}/rest/info names no authInfo.tokenServicesUrl")))?;
            return Ok(TokenService::Direct(service_url(cx.profile, "authInfo.tokenServicesUrl", url)?));
        };
        let owner = service_url(cx.profile, "owningSystemUrl", owner)?;
        let standard = format!("{owner}/sharing/rest/generateToken");
        let url = service_url(cx.profile, "authInfo.tokenServicesUrl", named.unwrap_or(&standard))?;
        // The password goes to the portal the server names: only to one on the server's own host
        // (a web adaptor pair, or one machine on two ports), or to the one the profile names.
        let trusted =
            allowed_portal.as_deref().map_or(host_of(&owner) == host_of(server), |p| p.eq_ignore_ascii_case(&owner));
        if !trusted || !url.to_ascii_lowercase().starts_with(&owner.to_ascii_lowercase()) {
            return Err(Error::Config(format!(
                "{server} is federated with the portal {owner}, which is not on its host: the password would go \
                 there. If that portal is yours, add it to the profile: \
                 `age-oauth profile add {} --provider esri-token --portal {owner}`",
                cx.profile
            )));
        }
        Ok(TokenService::Federated { url, server: server.clone() })
    }

    fn acquire(&self, cx: &mut FlowContext<'_>, secret: &Secret) -> Result<TokenSet> {
        let (url, federated) = match self.token_url(cx)? {
            TokenService::Direct(url) => (url, None),
            TokenService::Federated { url, server } => (url, Some(server)),
        };
        let expiration = self.expiration.to_string();
        let mut fields = vec![
            ("username", self.username.as_str()),
            ("password", secret.expose()),
            ("client", self.client_name()),
            ("expiration", expiration.as_str()),
            ("f", "json"),
        ];
        if let (TokenClient::Referer, Some(r)) = (self.client, &self.referer) {
            fields.push(("referer", r.as_str()));
        }
        let now = cx.now();
        let response = cx.send(&self.with_referer(HttpRequest::post_form(&url, &fields)))?;
        let object = match read_answer(&response, "generateToken") {
            Ok(Answer::Ok(object)) => object,
            Ok(Answer::Error(e)) => {
                let source = password::origin_note(cx, &PASSWORD);
                return Err(Error::server(format!(
                    "{url} refused user {}{source}: {e}; nothing was stored. Fix the password, then \
                     `age-oauth login --profile {}`",
                    self.username, cx.profile
                )));
            }
            Err(Error::TokenRejected(why)) => return Err(Error::server(why)),
            Err(e) => return Err(e),
        };
        let (mut token, mut expires_at) = generated_token(&object, "generateToken", now)?;
        if let Some(server) = federated {
            (token, expires_at) = self.server_token(cx, &url, &token, &server)?;
        }
        let mut tokens = TokenSet::new(token, now);
        tokens.expires_at = expires_at.map(|at| crate::token::clamp_expiry(now, at));
        tokens.username = Some(self.username.clone());
        Ok(tokens)
    }
}

impl EsriToken {
    /// A federated server's token: the portal token exchanged for one valid at `server`
    /// (`generateToken` with `serverUrl`), then shown to the server, which must accept it.
    fn server_token(
        &self,
        cx: &mut FlowContext<'_>,
        url: &str,
        portal_token: &Secret,
        server: &str,
    ) -> Result<(Secret, Option<u64>)> {
        let fields = [("token", portal_token.expose()), ("serverUrl", server), ("f", "json")];
        let response = cx.send(&self.with_referer(HttpRequest::post_form(url, &fields)))?;
        let object = match read_answer(&response, "generateToken (serverUrl)")? {
            Answer::Ok(object) => object,
            Answer::Error(e) => {
                return Err(Error::server(format!("the portal at {url} would not make a token for {server}: {e}")))
            }
        };
        let (token, expires_at) = generated_token(&object, "generateToken (serverUrl)", cx.now())?;
        let check = HttpRequest::get(format!("{server}/rest/services?f=json"))
            .header("X-Esri-Authorization", format!("Bearer {}", token.expose()));
        let response = cx.send(&self.with_referer(check))?;
        match read_answer(&response, "rest/services") {
            Ok(Answer::Ok(_)) => Ok((token, expires_at)),
            Ok(Answer::Error(e)) => {
                Err(Error::server(format!("{server} does not accept the token its portal made: {e}")))
            }
            Err(e) => Err(Error::server(format!("{server} does not accept the token its portal made: {e}"))),
        }
    }
}

/// The host of a URL, lower case (a portal and its servers on one machine often differ by port only).
fn host_of(url: &str) -> String {
    url.parse::<ureq::http::Uri>().ok().and_then(|u| u.host().map(str::to_ascii_lowercase)).unwrap_or_default()
}

impl Provider for EsriToken {
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        // The engine logs in by itself (no browser) when no token is cached: never prompt then.
        let typed = password::password(cx, &PASSWORD, &self.username, !cx.no_browser)?;
        let tokens = self.acquire(cx, &typed.value)?;
        password::offer_to_keep(cx, &PASSWORD, typed, tokens)
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, _current: &TokenSet) -> Result<TokenSet> {
        // No refresh token: a new token is generated with the stored (or AGE_OAUTH_PASSWORD) password.
        let stored = password::password(cx, &PASSWORD, &self.username, false)?;
        self.acquire(cx, &stored.value)
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        match &self.site {
            Site::Portal(portal) => portal.community_self(cx, &tokens.access_token),
            // A standalone server has no "self" resource: the account the token was made for.
            Site::Server { root, .. } => {
                let mut details = Map::new();
                details.insert("server".into(), Value::String(root.clone()));
                Ok(Identity { username: self.username.clone(), details })
            }
        }
    }

    fn logout(&self, _cx: &mut FlowContext<'_>, _tokens: &TokenSet) -> Result<String> {
        Ok("generateToken tokens cannot be revoked; the cached one is deleted".into())
    }

    fn needs_person(&self) -> bool {
        // With AGE_OAUTH_PASSWORD or a stored password, no person is needed.
        false
    }

    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        match &self.site {
            Site::Portal(p) => vec![crate::binding::origin_of("portal", &p.url)],
            // A federated server's password goes to the portal its rest/info names, when that
            // is on the server's own host or is the profile's `portal`: both are bound.
            Site::Server { root, portal } => std::iter::once(crate::binding::origin_of("server", root))
                .chain(portal.iter().map(|p| crate::binding::origin_of("portal", p)))
                .collect(),
        }
    }

    fn doctor_probes(&self) -> Vec<crate::doctor::Probe> {
        match &self.site {
            Site::Portal(p) => p.doctor_probes(None),
            Site::Server { root, portal } => {
                std::iter::once(crate::doctor::Probe::ArcgisInfo { url: format!("{root}/rest/info") })
                    .chain(
                        portal
                            .iter()
                            .map(|p| crate::doctor::Probe::ArcgisInfo { url: format!("{p}/sharing/rest/info") }),
                    )
                    .collect()
            }
        }
    }

    fn service_url(&self) -> Option<String> {
        Some(match &self.site {
            Site::Portal(p) => p.url.clone(),
            Site::Server { root, .. } => root.clone(),
        })
    }

    crate::protocol::arcgis::arcgis_token_transport!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_is_epoch_milliseconds_number_or_string() {
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"token":"t","expires":1735689600000,"ssl":true}"#).unwrap();
        let now = 1_735_600_000;
        assert_eq!(generated_token(&object, "t", now).unwrap().1, Some(1_735_689_600));
        let object: Map<String, Value> = serde_json::from_str(r#"{"token":"t","expires":"1735689600000"}"#).unwrap();
        assert_eq!(generated_token(&object, "t", now).unwrap().1, Some(1_735_689_600));
        let object: Map<String, Value> = serde_json::from_str(r#"{"expires":1}"#).unwrap();
        assert!(generated_token(&object, "t", now).is_err());
    }

    #[test]
    fn an_absurd_expires_is_clamped_on_the_way_in() {
        let now = 1_735_600_000;
        let limit = crate::token::clamp_expiry(now, u64::MAX);
        for expires in [r#"18446744073709551615"#, r#""18446744073709551615""#, "99999999999999999"] {
            let object: Map<String, Value> =
                serde_json::from_str(&format!(r#"{{"token":"t","expires":{expires}}}"#)).unwrap();
            assert_eq!(generated_token(&object, "t", now).unwrap().1, Some(limit), "{expires}");
        }
        assert!(limit < 253_402_300_800, "still a date before year 10000");
    }
}
