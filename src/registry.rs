//! The provider plugin interface and the registry that collects plugins with `inventory`.
//! The engine, the CLI, `age-oauth providers` and the JSON Schema all read this registry; none lists providers by hand.

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::interact::Interaction;
use crate::secret::Secret;
use crate::token::TokenSet;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A secret a provider needs: never read from TOML, kept in the encrypted cache.
pub struct SecretSpec {
    /// The secret's name (`client_secret`, `password`).
    pub name: &'static str,
    /// What it is, for `--help` and prompts.
    pub description: &'static str,
    /// True when a login cannot go without it.
    pub required: bool,
}

/// One provider plugin, submitted with `inventory::submit!`.
pub struct ProviderInfo {
    /// The name profiles use (`provider = "esri-oob"`).
    pub name: &'static str,
    /// One line for `age-oauth providers`.
    pub description: &'static str,
    /// JSON Schema of the provider's non-secret settings (from its settings type).
    pub settings_schema: fn() -> schemars::Schema,
    /// The secrets it may need.
    pub secrets: &'static [SecretSpec],
    /// A commented profile template users can copy into `age-oauth.toml`.
    pub template: &'static str,
    /// Builds the provider from a profile's merged, validated settings.
    pub build: fn(&ProfileSettings) -> Result<Box<dyn Provider>>,
}

inventory::collect!(ProviderInfo);

/// All registered providers, sorted by name.
pub fn providers() -> Vec<&'static ProviderInfo> {
    let mut all: Vec<_> = inventory::iter::<ProviderInfo>.into_iter().collect();
    all.sort_by_key(|p| p.name);
    all
}

/// Finds a provider by name; the error lists the known ones.
pub fn find(name: &str) -> Result<&'static ProviderInfo> {
    providers().into_iter().find(|p| p.name == name).ok_or_else(|| {
        Error::Config(format!("unknown provider `{name}`; known providers: {}", provider_names().join(", ")))
    })
}

/// The names of all registered providers, sorted.
pub fn provider_names() -> Vec<&'static str> {
    providers().iter().map(|p| p.name).collect()
}

/// A documented field of a provider's profile (for `providers`, prompts and validation).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldInfo {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub secret: bool,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

impl ProviderInfo {
    /// The provider's settings fields (from its schema) followed by its secrets.
    pub fn fields(&self) -> Vec<FieldInfo> {
        let mut fields = schema_fields(&(self.settings_schema)());
        fields.extend(self.secrets.iter().map(|s| FieldInfo {
            name: s.name.to_string(),
            description: s.description.to_string(),
            required: s.required,
            secret: true,
            kind: "string".into(),
            default: None,
        }));
        fields
    }

    /// The spec of one of its secrets.
    pub fn secret(&self, name: &str) -> Option<&'static SecretSpec> {
        self.secrets.iter().find(|s| s.name == name)
    }
}

/// Reads the top-level properties of an object schema.
pub fn schema_fields(schema: &schemars::Schema) -> Vec<FieldInfo> {
    let json = schema.as_value();
    let required: Vec<&str> = json
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = json.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| FieldInfo {
            name: name.clone(),
            description: prop.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
            required: required.contains(&name.as_str()),
            secret: false,
            kind: type_name(prop, json),
            default: prop.get("default").cloned(),
        })
        .collect()
}

fn type_name(prop: &Value, root: &Value) -> String {
    if let Some(t) = prop.get("type") {
        return match t {
            Value::String(s) => s.clone(),
            Value::Array(a) => {
                a.iter().filter_map(Value::as_str).filter(|s| *s != "null").collect::<Vec<_>>().join("|")
            }
            _ => "value".into(),
        };
    }
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        if let Some(def) = root.get("$defs").and_then(|d| d.get(name)) {
            return type_name(def, root);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = prop.get(key).and_then(Value::as_array) {
            let names: Vec<String> = alts.iter().map(|a| type_name(a, root)).filter(|n| n != "null").collect();
            return names.join("|");
        }
    }
    "value".into()
}

/// A profile's merged non-secret settings, handed to a provider's `build`.
pub struct ProfileSettings {
    /// The profile's name.
    pub profile: String,
    /// The provider's settings, merged from every layer.
    pub values: Map<String, Value>,
}

impl ProfileSettings {
    /// Deserialises into the provider's settings type; errors name the field.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(Value::Object(self.values.clone()))
            .map_err(|e| Error::Config(format!("profile '{}': field `{}`: {}", self.profile, e.path(), e.inner())))
    }
}

/// The user as a provider sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    /// The signed-in user's name.
    pub username: String,
    /// Extra, non-secret details (full name, email, org, app...).
    pub details: Map<String, Value>,
}

/// Where a secret's value came from (shown, never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// The encrypted cache.
    Store,
    /// An environment variable (its name).
    Env(String),
    /// A `.env` file (the variable's name).
    DotEnv(String),
    /// A command-line flag (its name).
    Flag(String),
    /// Typed at a prompt.
    Prompt,
}

/// The secrets a flow may use: overrides from flags / env / `.env`, then the store.
#[derive(Debug, Default, Clone)]
pub struct Secrets {
    values: BTreeMap<String, (Secret, SecretOrigin)>,
}

impl Secrets {
    /// A secret by name.
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name).map(|(s, _)| s)
    }
    /// Where a secret came from.
    pub fn origin(&self, name: &str) -> Option<&SecretOrigin> {
        self.values.get(name).map(|(_, o)| o)
    }
    /// Inserts unless a value of higher precedence is already there (callers insert
    /// from highest precedence down).
    pub fn offer(&mut self, name: &str, value: Secret, origin: SecretOrigin) {
        self.values.entry(name.to_string()).or_insert((value, origin));
    }
    /// Sets a secret.
    pub fn set(&mut self, name: &str, value: Secret, origin: SecretOrigin) {
        self.values.insert(name.to_string(), (value, origin));
    }
    /// The names of the secrets present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

/// What a provider's flow gets from the engine.
pub struct FlowContext<'a> {
    /// The profile's name.
    pub profile: &'a str,
    /// The HTTP client (the profile's TLS and proxy settings).
    pub http: &'a dyn HttpClient,
    /// The engine's clock.
    pub clock: &'a dyn Clock,
    /// The person, if any.
    pub ui: &'a mut dyn Interaction,
    /// The profile's secrets.
    pub secrets: &'a Secrets,
    /// `--no-browser`: print the URL and read the answer from stdin.
    pub no_browser: bool,
}

impl FlowContext<'_> {
    /// Now (Unix seconds).
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Sends a request, logging it at `-vv` (method and URL only).
    pub fn send(&mut self, request: &crate::http::HttpRequest) -> Result<crate::http::HttpResponse> {
        // At `-v` and above only: the route and the redacted URL cost parsing on every request.
        if self.ui.shows_debug(1) {
            if let Some(route) = self.http.route(&request.url) {
                // `-v` names the route whenever a proxy is configured; with none, only `-vv` does.
                let level = if route.contains("no proxy set") { 2 } else { 1 };
                self.ui.debug(level, &format!("{}: {route}", request.describe()));
            }
        }
        if self.ui.shows_debug(2) {
            self.ui.debug(2, &format!("→ {}", request.describe()));
        }
        let response = self.http.send(request)?;
        if self.ui.shows_debug(2) {
            self.ui.debug(2, &format!("← {} ({} bytes)", response.status, response.body.len()));
        }
        Ok(response)
    }

    /// A `LoginRequired` error for this profile.
    pub fn login_required(&self, message: impl Into<String>) -> Error {
        Error::login_required(self.profile, message)
    }
}

/// What a login hands the engine to keep: the tokens, and the secrets the person allowed
/// to be kept (a typed password), which the engine stores encrypted with the profile.
pub struct Obtained {
    /// The tokens.
    pub tokens: TokenSet,
    /// Secrets the person agreed to keep (name, value).
    pub secrets_to_store: Vec<(String, Secret)>,
}

impl From<TokenSet> for Obtained {
    fn from(tokens: TokenSet) -> Self {
        Obtained { tokens, secrets_to_store: Vec::new() }
    }
}

/// A provider plugin: one way of getting tokens.
pub trait Provider: Send + Sync {
    /// Gets tokens, with a person if the flow needs one.
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained>;

    /// Gets fresh tokens without a person, or `Error::LoginRequired`.
    fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet>;

    /// Asks the server who the token belongs to. A token the server rejects
    /// (ArcGIS 498, HTTP 401) is `Error::TokenRejected`, so the engine can refresh and retry.
    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity>;

    /// Revokes what can be revoked server-side; returns a line for the user.
    fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String>;

    /// Exchanges the refresh token for a new one now (`token --rotate-refresh-token`);
    /// providers whose refresh tokens cannot be rotated on demand keep this default.
    fn rotate_refresh_token(&self, cx: &mut FlowContext<'_>, _current: &TokenSet) -> Result<TokenSet> {
        Err(Error::Config(format!("profile '{}': this provider has no refresh token to rotate on demand", cx.profile)))
    }

    /// Every origin this provider's secrets and tokens may travel to, one per setting that names a
    /// destination (portal, issuer, each explicit endpoint...). No default: a provider that cannot
    /// say where its tokens go does not compile. The cache is bound to these (see `binding`).
    fn origins(&self) -> Vec<crate::binding::BoundOrigin>;

    /// Unauthenticated checks `age-oauth doctor` may make of this provider's own origins (a
    /// service's public `rest/info`, whether the app's redirect is registered). Never a credential.
    fn doctor_probes(&self) -> Vec<crate::doctor::Probe> {
        Vec::new()
    }

    /// False for flows that never need a person (application credentials): the engine
    /// then logs in by itself when there is no cached token.
    fn needs_person(&self) -> bool {
        true
    }

    /// The header a token travels in (`token --format header`).
    fn token_header(&self) -> &'static str {
        "Authorization"
    }

    /// When this provider rotates refresh tokens, what that means for two copies of one
    /// cache (shown by `cache export` / `cache import`).
    fn rotation_note(&self) -> Option<&'static str> {
        None
    }

    /// The service URL scripts may want next to the token (`AGE_OAUTH_PORTAL`).
    fn service_url(&self) -> Option<String> {
        None
    }

    /// Sends `request` with this provider's credentials. The default puts the access
    /// token in `Authorization: Bearer`; ArcGIS uses `X-Esri-Authorization`, the web tier
    /// runs its Negotiate/NTLM handshake.
    fn send_authenticated(
        &self,
        cx: &mut FlowContext<'_>,
        tokens: &TokenSet,
        request: &crate::http::HttpRequest,
    ) -> Result<crate::http::HttpResponse> {
        let request = request.clone().header("Authorization", format!("Bearer {}", tokens.access_token.expose()));
        cx.send(&request)
    }

    /// The headers that carry `tokens` on a request another HTTP stack sends (the `reqwest` feature's
    /// `AsyncClient`); `None` for providers that sign each request in a handshake of their own (web tier).
    fn authorization_headers(&self, tokens: &TokenSet) -> Option<Vec<(String, String)>> {
        Some(vec![(self.token_header().to_string(), format!("Bearer {}", tokens.access_token.expose()))])
    }

    /// True when `login --with-key` may hand this provider a key read from stdin (the secret `api_key`).
    fn accepts_pasted_key(&self) -> bool {
        false
    }

    /// What an answer to an authenticated request says about the credentials.
    fn judge(&self, response: &crate::http::HttpResponse) -> AuthVerdict {
        match response.status {
            401 => AuthVerdict::Rejected,
            403 => AuthVerdict::Forbidden,
            _ => AuthVerdict::Accepted,
        }
    }
}

/// How a server took the credentials of an authenticated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVerdict {
    /// The token was accepted.
    Accepted,
    /// Invalid or expired (HTTP 401, ArcGIS 498/499): refresh once and retry.
    Rejected,
    /// Valid but not allowed (HTTP 403, ArcGIS 403): never refresh.
    Forbidden,
}
