//! `web-tier`: sites behind Windows-integrated authentication — HTTP Negotiate (Kerberos/SPNEGO, from the ticket
//! cache or a password) and NTLM — optionally turning the session into an ArcGIS token (`X-Esri-Authorization`).

use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpRequest, HttpResponse};
use crate::protocol::arcgis::{generated_token, read_answer, Answer};
use crate::protocol::negotiate::gssapi::{CredentialProblem, Initiator};
use crate::protocol::negotiate::ntlm;
use crate::protocol::password;
use crate::registry::{
    AuthVerdict, FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo, SecretSpec,
};
use crate::secret::Secret;
use crate::settings::service_url;
use crate::token::TokenSet;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Round trips a handshake may take before we call it a loop (SPNEGO needs at most two).
const MAX_LEGS: usize = 4;

/// Settings of a `web-tier` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebTierSettings {
    /// The protected site, e.g. https://gis.example.com/portal (http:// only for loopback); requests to its host are signed in.
    #[schemars(extend("x-prompt" = {"label": "Site URL", "order": 10, "check": "url"}))]
    pub url: String,
    /// "negotiate" (Kerberos through SPNEGO; NTLM when the site offers only NTLM and a username is set), "kerberos", or "ntlm".
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Mechanism", "order": 50}))]
    pub mechanism: Mechanism,
    /// Account for password sign-in: `user@REALM` or `DOMAIN\user`. Absent: Kerberos from your ticket cache (kinit, KRB5CCNAME), no password at all.
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Username", "order": 30}))]
    pub username: Option<String>,
    /// NTLM domain, when `username` does not carry one.
    #[serde(default)]
    pub domain: Option<String>,
    /// Also get an ArcGIS token over the signed-in session from this generateToken URL (e.g. https://gis.example.com/portal/sharing/rest/generateToken); it travels as `X-Esri-Authorization: Bearer` and `age-oauth token` prints it.
    #[serde(default)]
    pub generate_token_url: Option<String>,
    /// Lifetime of that ArcGIS token, in minutes.
    #[serde(default = "default_expiration")]
    pub expiration: u64,
}

fn default_expiration() -> u64 {
    60
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    #[default]
    Negotiate,
    Kerberos,
    Ntlm,
}

const PASSWORD: SecretSpec = SecretSpec {
    name: "password",
    description: "Password of the account: prompted at login (kept encrypted if you agree), or AGE_OAUTH_PASSWORD",
    required: false,
};

/// What a web-tier sign-in keeps with its tokens: the site it was made for.
#[derive(Debug, Default, Serialize, Deserialize)]
struct WebTierState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    web_tier_url: Option<String>,
}

pub struct WebTier {
    url: String,
    mechanism: Mechanism,
    username: Option<String>,
    domain: Option<String>,
    generate_token_url: Option<String>,
    expiration: u64,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: WebTierSettings = settings.parse()?;
    let profile = &settings.profile;
    if s.mechanism == Mechanism::Ntlm && s.username.is_none() {
        return Err(Error::Config(format!(
            "profile '{profile}': NTLM needs `username` (DOMAIN\\user); only Kerberos can use a ticket cache"
        )));
    }
    let generate_token_url =
        s.generate_token_url.as_deref().map(|u| service_url(profile, "generate_token_url", u)).transpose()?;
    Ok(Box::new(WebTier {
        // Checked, but kept as written: `/protected/` and `/protected` may differ (a redirect before the sign-in).
        url: {
            service_url(profile, "url", &s.url)?;
            s.url.trim().to_string()
        },
        mechanism: s.mechanism,
        username: s.username.filter(|u| !u.is_empty()),
        domain: s.domain,
        generate_token_url,
        expiration: s.expiration,
    }))
}

inventory::submit! {
    ProviderInfo {
        name: "web-tier",
        description: "Sites behind Windows-integrated authentication: Kerberos (your kinit ticket, or a password) or NTLM, optionally with an ArcGIS token",
        settings_schema: || schemars::schema_for!(WebTierSettings),
        secrets: &[PASSWORD],
        template: include_str!("web-tier.toml"),
        build,
    }
}

/// The authentication schemes a 401 offers, with the token each carries (if any).
fn challenges(response: &HttpResponse) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for header in response.header_values("WWW-Authenticate") {
        // "Negotiate, NTLM" and one scheme per header both occur; tokens never hold commas.
        for part in header.split(',') {
            let mut words = part.split_whitespace();
            let Some(scheme) = words.next() else { continue };
            if scheme.contains('=') {
                continue; // a parameter of the previous scheme (realm="x")
            }
            let token =
                words.next().filter(|t| !t.contains('=') || t.ends_with('=')).and_then(|t| BASE64.decode(t).ok());
            out.push((scheme.to_string(), token));
        }
    }
    out
}

fn offers(response: &HttpResponse, scheme: &str) -> bool {
    challenges(response).iter().any(|(s, _)| s.eq_ignore_ascii_case(scheme))
}

fn token_for(response: &HttpResponse, scheme: &str) -> Option<Vec<u8>> {
    challenges(response).into_iter().find(|(s, _)| s.eq_ignore_ascii_case(scheme)).and_then(|(_, t)| t)
}

/// How to answer a site's 401.
enum Plan {
    Kerberos,
    /// NTLM under this scheme name (`NTLM`, or raw NTLMSSP inside `Negotiate`).
    Ntlm(&'static str),
}

/// A Kerberos principal from `DOMAIN\user` (→ `user@DOMAIN`) or `user@REALM` as given.
fn kerberos_principal(username: &str) -> String {
    match username.split_once('\\') {
        Some((domain, user)) => format!("{user}@{}", domain.to_ascii_uppercase()),
        None => username.to_string(),
    }
}

fn host_of(url: &str) -> Result<String> {
    let uri: ureq::http::Uri = url.parse().map_err(|_| Error::Config(format!("not a URL: {url}")))?;
    uri.host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .ok_or_else(|| Error::Config(format!("no host in {url}")))
}

/// The outcome of one signed-in request.
struct Signed {
    response: HttpResponse,
    /// Who the site or Kerberos says we are, when known.
    who: Option<String>,
}

impl WebTier {
    fn plan(&self, response: &HttpResponse) -> Result<Plan> {
        let negotiate = offers(response, "Negotiate");
        let ntlm = offers(response, "NTLM");
        let plan = match self.mechanism {
            Mechanism::Kerberos if negotiate => Some(Plan::Kerberos),
            Mechanism::Negotiate if negotiate => Some(Plan::Kerberos),
            Mechanism::Negotiate if ntlm && self.username.is_some() => Some(Plan::Ntlm("NTLM")),
            Mechanism::Ntlm if ntlm => Some(Plan::Ntlm("NTLM")),
            Mechanism::Ntlm if negotiate => Some(Plan::Ntlm("Negotiate")),
            _ => None,
        };
        plan.ok_or_else(|| {
            let offered: Vec<String> = response.header_values("WWW-Authenticate").map(String::from).collect();
            let offered =
                if offered.is_empty() { "no WWW-Authenticate at all".to_string() } else { offered.join("; ") };
            let wanted = match self.mechanism {
                Mechanism::Kerberos => "Negotiate (Kerberos)",
                Mechanism::Ntlm => "NTLM or Negotiate",
                Mechanism::Negotiate if self.username.is_some() => "Negotiate or NTLM",
                Mechanism::Negotiate => "Negotiate (Kerberos; NTLM would need `username`)",
            };
            Error::server(format!(
                "{} answered 401 but does not offer {wanted} (it offers: {offered}); the web-tier provider speaks \
                 Negotiate and NTLM only — check `url` and `mechanism`",
                self.url
            ))
        })
    }

    /// Sends `request`, and when the site answers 401 runs the Negotiate or NTLM handshake on one connection.
    fn sign_in(&self, cx: &mut FlowContext<'_>, password: Option<&Secret>, request: &HttpRequest) -> Result<Signed> {
        let pinned = cx.http.single_connection()?;
        let client: &dyn HttpClient = pinned.as_deref().unwrap_or(cx.http);
        cx.ui.debug(2, &format!("→ {}", request.describe()));
        let first = client.send(request)?;
        cx.ui.debug(2, &format!("← {}", first.status));
        if first.status != 401 {
            return Ok(Signed { response: first, who: None });
        }
        match self.plan(&first)? {
            Plan::Kerberos if self.may_fall_back_to_ntlm(&first) => {
                // Like Windows' Negotiate: when Kerberos cannot be used here, NTLM still can.
                match self.kerberos(cx, client, password, request) {
                    Ok(signed) if signed.response.status != 401 => Ok(signed),
                    Ok(_) => self.ntlm(cx, client, password, request, "NTLM"),
                    Err(e @ (Error::Server(_) | Error::Config(_))) => {
                        let why = e.to_string();
                        cx.ui.debug(1, &format!("Kerberos is not usable here ({why}); trying NTLM"));
                        self.ntlm(cx, client, password, request, "NTLM")
                    }
                    Err(other) => Err(other),
                }
            }
            Plan::Kerberos => self.kerberos(cx, client, password, request),
            Plan::Ntlm(scheme) => self.ntlm(cx, client, password, request, scheme),
        }
    }

    fn may_fall_back_to_ntlm(&self, challenge: &HttpResponse) -> bool {
        self.mechanism == Mechanism::Negotiate && self.username.is_some() && offers(challenge, "NTLM")
    }

    fn kerberos(
        &self,
        cx: &mut FlowContext<'_>,
        client: &dyn HttpClient,
        password: Option<&Secret>,
        request: &HttpRequest,
    ) -> Result<Signed> {
        let principal = self.username.as_deref().map(kerberos_principal);
        let login = match (&principal, password) {
            (Some(p), Some(pw)) => Some((p.as_str(), pw)),
            (Some(p), None) => {
                return Err(cx.login_required(format!(
                "no password for {p}: set AGE_OAUTH_PASSWORD, or remove `username` to use your Kerberos ticket (kinit)"
            )))
            }
            (None, _) => None,
        };
        cx.ui.debug(
            1,
            if login.is_some() {
                "Negotiate: Kerberos with a password"
            } else {
                "Negotiate: Kerberos from the ticket cache"
            },
        );
        let mut context = Initiator::new(&host_of(&request.url)?, login)?;
        let mut input: Option<Vec<u8>> = None;
        for _ in 0..MAX_LEGS {
            let token = context.step(input.as_deref()).map_err(|p| self.credential_error(cx, p))?;
            let leg = request.clone().header("Authorization", format!("Negotiate {}", BASE64.encode(&token)));
            let response = client.send(&leg)?;
            cx.ui.debug(2, &format!("← {} (Negotiate leg)", response.status));
            let answer = token_for(&response, "Negotiate");
            if response.status == 401 {
                match answer {
                    Some(t) if !context.is_complete() => {
                        input = Some(t);
                        continue;
                    }
                    _ => return Ok(Signed { response, who: context.client_name() }),
                }
            }
            // Mutual authentication: the server's last token proves it holds the service key.
            if let (Some(t), false) = (answer, context.is_complete()) {
                context.step(Some(&t)).map_err(|p| {
                    let why = match p {
                        CredentialProblem::NoTicket(m) | CredentialProblem::Other(m) => m,
                    };
                    Error::server(format!("{}: the server's Kerberos reply does not check out ({why})", self.url))
                })?;
            }
            let who = response.header("X-Remote-User").map(String::from).or_else(|| context.client_name());
            return Ok(Signed { response, who });
        }
        Err(Error::server(format!("{}: the Negotiate handshake did not finish in {MAX_LEGS} round trips", self.url)))
    }

    fn credential_error(&self, cx: &FlowContext<'_>, problem: CredentialProblem) -> Error {
        match problem {
            CredentialProblem::NoTicket(why) => cx.login_required(format!(
                "no usable Kerberos ticket ({why}): run `kinit user@REALM` (or set `username` and AGE_OAUTH_PASSWORD)"
            )),
            CredentialProblem::Other(why) => Error::server(format!("Kerberos towards {}: {why}", self.url)),
        }
    }

    fn ntlm(
        &self,
        cx: &mut FlowContext<'_>,
        client: &dyn HttpClient,
        password: Option<&Secret>,
        request: &HttpRequest,
        scheme: &str,
    ) -> Result<Signed> {
        let username = self.username.as_deref().expect("checked when the profile was built (NTLM needs a username)");
        let Some(password) = password else {
            return Err(
                cx.login_required(format!("no password for {username}: set AGE_OAUTH_PASSWORD for unattended runs"))
            );
        };
        cx.ui.debug(1, &format!("{scheme}: NTLM as {username}"));
        let account = ntlm::Account::parse(username, self.domain.as_deref());
        let leg = request.clone().header("Authorization", format!("{scheme} {}", BASE64.encode(ntlm::negotiate())));
        let response = client.send(&leg)?;
        cx.ui.debug(2, &format!("← {} (NTLM challenge)", response.status));
        let Some(challenge) = token_for(&response, scheme).filter(|_| response.status == 401) else {
            return Ok(Signed { response, who: None });
        };
        let challenge = ntlm::parse_challenge(&challenge)?;
        let mut client_challenge = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut client_challenge);
        let message = ntlm::authenticate(&challenge, &account, password, client_challenge, cx.now());
        let leg = request.clone().header("Authorization", format!("{scheme} {}", BASE64.encode(message)));
        let response = client.send(&leg)?;
        cx.ui.debug(2, &format!("← {} (NTLM authenticate)", response.status));
        let who = response.header("X-Remote-User").map(String::from).or_else(|| Some(username.to_string()));
        Ok(Signed { response, who })
    }

    /// Signs in once against the site (and gets the ArcGIS token when configured).
    fn establish(&self, cx: &mut FlowContext<'_>, password: Option<&Secret>) -> Result<TokenSet> {
        let now = cx.now();
        let probe = self.sign_in(cx, password, &HttpRequest::get(&self.url))?;
        if matches!(probe.response.status, 401 | 403) {
            return Err(Error::server(format!(
                "{} refused the sign-in{} (HTTP {} after the handshake); nothing was stored",
                self.url,
                self.username
                    .as_deref()
                    .map(|u| format!(" of {u}{}", password::origin_note(cx, &PASSWORD)))
                    .unwrap_or_default(),
                probe.response.status
            )));
        }
        let mut tokens = match &self.generate_token_url {
            None => TokenSet::new(Secret::new(""), now),
            Some(url) => {
                let expiration = self.expiration.to_string();
                let form = [("client", "requestip"), ("expiration", expiration.as_str()), ("f", "json")];
                let signed = self.sign_in(cx, password, &HttpRequest::post_form(url, &form))?;
                let object = match read_answer(&signed.response, "generateToken")? {
                    Answer::Ok(object) => object,
                    Answer::Error(e) => {
                        return Err(Error::server(format!("{url} would not make an ArcGIS token: {e}")))
                    }
                };
                let (token, expires_at) = generated_token(&object, "generateToken", now)?;
                let mut tokens = TokenSet::new(token, now);
                tokens.expires_at = expires_at;
                tokens
            }
        };
        tokens.username = probe.who.or_else(|| self.username.clone());
        tokens.provider_state.set(&WebTierState { web_tier_url: Some(self.url.clone()) });
        Ok(tokens)
    }

    /// The password, when this profile signs in with one (a username is set).
    fn stored_password(&self, cx: &mut FlowContext<'_>) -> Result<Option<Secret>> {
        match &self.username {
            Some(user) => Ok(Some(password::password(cx, &PASSWORD, user, false)?.value)),
            None => Ok(None),
        }
    }
}

impl Provider for WebTier {
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        let Some(user) = self.username.clone() else {
            return self.establish(cx, None).map(Obtained::from);
        };
        // The engine signs in by itself (no browser) when nothing is cached: never prompt then.
        let typed = password::password(cx, &PASSWORD, &user, !cx.no_browser)?;
        let tokens = self.establish(cx, Some(&typed.value))?;
        password::offer_to_keep(cx, &PASSWORD, typed, tokens)
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, _current: &TokenSet) -> Result<TokenSet> {
        let password = self.stored_password(cx)?;
        self.establish(cx, password.as_ref())
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        let password = self.stored_password(cx)?;
        let signed = self.sign_in(cx, password.as_ref(), &HttpRequest::get(&self.url))?;
        match signed.response.status {
            401 => return Err(Error::TokenRejected(format!("{}: HTTP 401 after the handshake", self.url))),
            // Signed in but not allowed: a new handshake would not change that.
            403 => {
                return Err(Error::server(format!(
                    "{}: HTTP 403 after the handshake (signed in, but not permitted)",
                    self.url
                )))
            }
            _ => {}
        }
        let username = signed.who.or_else(|| tokens.username.clone()).unwrap_or_else(|| "(unknown)".into());
        let mut details = Map::new();
        details.insert("url".into(), Value::String(self.url.clone()));
        Ok(Identity { username, details })
    }

    fn logout(&self, _cx: &mut FlowContext<'_>, _tokens: &TokenSet) -> Result<String> {
        Ok("web-tier sign-ins are per request (Kerberos tickets stay in your ticket cache: `kdestroy`)".into())
    }

    fn needs_person(&self) -> bool {
        // A ticket cache or AGE_OAUTH_PASSWORD is enough; the engine signs in by itself.
        false
    }

    fn origins(&self) -> Vec<crate::binding::BoundOrigin> {
        let mut origins = vec![crate::binding::origin_of("url", &self.url)];
        if let Some(u) = &self.generate_token_url {
            origins.push(crate::binding::origin_of("generate_token_url", u));
        }
        origins
    }

    fn service_url(&self) -> Option<String> {
        Some(self.url.clone())
    }

    fn authorization_headers(&self, _tokens: &TokenSet) -> Option<Vec<(String, String)>> {
        None // Negotiate / NTLM is a handshake on one connection: only the blocking client can do it.
    }

    fn send_authenticated(
        &self,
        cx: &mut FlowContext<'_>,
        tokens: &TokenSet,
        request: &HttpRequest,
    ) -> Result<HttpResponse> {
        let mut request = request.clone();
        if !tokens.access_token.is_empty() {
            // The web server owns `Authorization`; ArcGIS reads its token from here.
            request = request.header("X-Esri-Authorization", format!("Bearer {}", tokens.access_token.expose()));
        }
        let password = self.stored_password(cx)?;
        Ok(self.sign_in(cx, password.as_ref(), &request)?.response)
    }

    fn judge(&self, response: &HttpResponse) -> AuthVerdict {
        if self.generate_token_url.is_some() {
            return crate::protocol::arcgis::judge(response);
        }
        match response.status {
            401 => AuthVerdict::Rejected,
            403 => AuthVerdict::Forbidden,
            _ => AuthVerdict::Accepted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unauthorized(headers: &[&str]) -> HttpResponse {
        HttpResponse {
            status: 401,
            headers: headers.iter().map(|h| ("WWW-Authenticate".to_string(), h.to_string())).collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn reads_challenges_in_every_shape() {
        let r = unauthorized(&["Negotiate, NTLM", "Basic realm=\"x\""]);
        let schemes: Vec<String> = challenges(&r).into_iter().map(|(s, _)| s).collect();
        assert_eq!(schemes, ["Negotiate", "NTLM", "Basic"]);
        let r = unauthorized(&["NTLM TlRMTVNTUAACAAAA"]);
        assert_eq!(token_for(&r, "ntlm").unwrap(), b"NTLMSSP\0\x02\0\0\0");
        assert_eq!(kerberos_principal("example\\alice"), "alice@EXAMPLE");
        assert_eq!(kerberos_principal("alice@EXAMPLE.TEST"), "alice@EXAMPLE.TEST");
    }

    #[test]
    fn a_site_without_negotiate_or_ntlm_is_a_clear_error() {
        let provider = WebTier {
            url: "https://site.example".into(),
            mechanism: Mechanism::Negotiate,
            username: None,
            domain: None,
            generate_token_url: None,
            expiration: 60,
        };
        let err = provider.plan(&unauthorized(&["Basic realm=\"intranet\""])).err().unwrap().to_string();
        assert!(err.contains("does not offer") && err.contains("Basic realm"), "{err}");
        let err = provider.plan(&unauthorized(&["NTLM"])).err().unwrap().to_string();
        assert!(err.contains("NTLM would need `username`"), "{err}");
        assert!(matches!(provider.plan(&unauthorized(&["Negotiate"])), Ok(Plan::Kerberos)));
    }
}
