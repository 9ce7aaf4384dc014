//! What every ArcGIS provider shares: reading ArcGIS answers (errors come with HTTP 200
//! and a JSON `error` body), token responses, and the portal endpoints.

pub use super::oauth2::token_set;
use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse};
use crate::registry::{AuthVerdict, FlowContext, Identity, SecretSpec};
use crate::secret::Secret;
use crate::token::TokenSet;
use serde_json::{Map, Value};

/// The out-of-band redirect URI: the portal shows the code instead of redirecting.
pub const OOB_REDIRECT: &str = "urn:ietf:wg:oauth:2.0:oob";

/// An error object an ArcGIS server put in its answer.
#[derive(Debug, Clone)]
pub struct ArcgisError {
    /// The ArcGIS error code (498/499 invalid token, 403 no permission, ...).
    pub code: i64,
    /// The message, with its details.
    pub message: String,
    /// The OAuth-style `error` string some endpoints add (`invalid_request`, ...).
    pub oauth_error: Option<String>,
}

impl std::fmt::Display for ArcgisError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (ArcGIS error {}", self.message, self.code)?;
        if let Some(e) = &self.oauth_error {
            write!(f, ", {e}")?;
        }
        write!(f, ")")
    }
}

/// How an ArcGIS answer turned out.
pub enum Answer {
    /// A JSON object without an `error`.
    Ok(Map<String, Value>),
    /// The error object the server sent (often with HTTP 200).
    Error(ArcgisError),
}

/// Reads an answer: JSON object → `Ok`, JSON `error` object → `Error`; an HTML page,
/// garbage or an HTTP error without an ArcGIS body → `Err(Error::Server)`.
pub fn read_answer(response: &HttpResponse, what: &str) -> Result<Answer> {
    if response.status == 401 {
        return Err(Error::TokenRejected(format!("{what}: HTTP 401 Unauthorized")));
    }
    if response.looks_like_html() {
        let title = response.html_title().map(|t| format!(" titled \"{t}\"")).unwrap_or_default();
        return Err(Error::http_status(
            response.status,
            format!(
                "{what}: the server answered an HTML page{title} (HTTP {}) instead of JSON; check the URL, \
             and whether a web-tier login or proxy sits in front of it",
                response.status
            ),
        ));
    }
    let value: Value = serde_json::from_slice(&response.body).map_err(|_| {
        Error::http_status(
            response.status,
            format!(
                "{what}: the server answered HTTP {} with {} bytes that are not JSON",
                response.status,
                response.body.len()
            ),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(Error::server(format!("{what}: the server answered JSON that is not an object")));
    };
    if let Some(err) = object.remove("error") {
        return Ok(Answer::Error(parse_error(&err, response.status)));
    }
    if !(200..300).contains(&response.status) {
        return Err(Error::http_status(response.status, format!("{what}: HTTP {}", response.status)));
    }
    Ok(Answer::Ok(object))
}

fn parse_error(err: &Value, status: u16) -> ArcgisError {
    match err {
        Value::Object(o) => {
            let code = o.get("code").and_then(Value::as_i64).unwrap_or(status as i64);
            let message = o
                .get("message")
                .and_then(Value::as_str)
                .or_else(|| o.get("error_description").and_then(Value::as_str))
                .unwrap_or("unspecified error")
                .to_string();
            let details: Vec<&str> = o
                .get("details")
                .and_then(Value::as_array)
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let message = if details.is_empty() || details.iter().all(|d| *d == message) {
                message
            } else {
                format!("{message} {}", details.join(" "))
            };
            ArcgisError { code, message, oauth_error: o.get("error").and_then(Value::as_str).map(String::from) }
        }
        // RFC 6749 style: {"error": "invalid_grant", "error_description": ...}
        Value::String(s) => ArcgisError { code: status as i64, message: s.clone(), oauth_error: Some(s.clone()) },
        _ => ArcgisError { code: status as i64, message: "unspecified error".into(), oauth_error: None },
    }
}

/// For calls that use a token: 498/499 mean "refresh and retry", 403 means no permission.
pub fn resource_answer(response: &HttpResponse, what: &str) -> Result<Map<String, Value>> {
    match read_answer(response, what)? {
        Answer::Ok(object) => Ok(object),
        Answer::Error(e) if e.code == 498 || e.code == 499 => Err(Error::TokenRejected(format!("{what}: {e}"))),
        Answer::Error(e) if e.code == 403 => Err(Error::server(format!("{what}: permission denied: {e}"))),
        Answer::Error(e) => Err(Error::server(format!("{what}: {e}"))),
    }
}

/// Sends a request with an ArcGIS token in `X-Esri-Authorization` (works behind web-tier
/// auth too, where the web server owns `Authorization`; never in the URL).
/// `referer` is the profile's, for tokens bound to one.
pub fn send_with_token(
    cx: &mut FlowContext<'_>,
    token: &Secret,
    referer: Option<&str>,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let mut request = request.clone().header("X-Esri-Authorization", format!("Bearer {}", token.expose()));
    if let Some(r) = referer {
        request = request.header("Referer", r);
    }
    cx.send(&request)
}

/// The `Provider` methods of every provider whose tokens are ArcGIS tokens: they travel in
/// `X-Esri-Authorization` with the profile's referer (from the provider's own `referer()`),
/// and ArcGIS error bodies (498/499/403 with HTTP 200) are judged as such.
macro_rules! arcgis_token_transport {
    () => {
        fn token_header(&self) -> &'static str {
            "X-Esri-Authorization"
        }

        fn send_authenticated(
            &self,
            cx: &mut crate::registry::FlowContext<'_>,
            tokens: &crate::token::TokenSet,
            request: &crate::http::HttpRequest,
        ) -> crate::error::Result<crate::http::HttpResponse> {
            crate::protocol::arcgis::send_with_token(cx, &tokens.access_token, self.referer(), request)
        }

        fn judge(&self, response: &crate::http::HttpResponse) -> crate::registry::AuthVerdict {
            crate::protocol::arcgis::judge(response)
        }

        fn authorization_headers(&self, tokens: &crate::token::TokenSet) -> Option<Vec<(String, String)>> {
            let mut headers =
                vec![("X-Esri-Authorization".to_string(), format!("Bearer {}", tokens.access_token.expose()))];
            headers.extend(self.referer().map(|r| ("Referer".to_string(), r.to_string())));
            Some(headers)
        }
    };
}
pub(crate) use arcgis_token_transport;

/// ArcGIS answers a bad token with HTTP 200 and `{"error":{"code":498|499}}`, and a
/// missing privilege with code 403; plain HTTP 401/403 come from the web tier.
pub fn judge(response: &HttpResponse) -> AuthVerdict {
    match response.status {
        401 => return AuthVerdict::Rejected,
        403 => return AuthVerdict::Forbidden,
        _ => {}
    }
    let code = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.get("code")).and_then(Value::as_i64));
    match code {
        Some(498 | 499) => AuthVerdict::Rejected,
        Some(403) => AuthVerdict::Forbidden,
        _ => AuthVerdict::Accepted,
    }
}

/// What `cache export`/`import` say about ArcGIS providers that exchange refresh tokens.
pub const ROTATION_NOTE: &str = "ArcGIS profiles exchange the refresh token for a new one when it has less than \
     `rotate_refresh_within` left (24 h by default); from then on only the copy that exchanged it keeps working, \
     and the other copy needs `age-oauth login` again";

/// True when an `oauth2/token` error means the refresh token itself is no good.
fn refresh_token_refused(e: &ArcgisError) -> bool {
    matches!(e.code, 400 | 401 | 498 | 499)
        || matches!(e.oauth_error.as_deref(), Some("invalid_grant" | "invalid_request" | "invalid_token"))
}

/// `rotate_refresh_within` by default: a day.
pub fn default_rotate_within() -> u64 {
    24 * 3600
}

/// The client secret of a portal OAuth application.
pub const CLIENT_SECRET: SecretSpec = SecretSpec {
    name: "client_secret",
    description: "Client secret of the OAuth application (only for confidential apps)",
    required: false,
};

/// Pulls the code out of what a person pasted: the bare code, the approval page's
/// title (`SUCCESS code=…`), or a URL with `code=`.
pub fn extract_code(pasted: &str) -> Option<String> {
    let text = pasted.trim();
    let code = match text.find("code=") {
        Some(i) => text[i + 5..].split(['&', ' ', '#', '"', '<']).next().unwrap_or_default(),
        None => text,
    };
    let code = code.trim();
    (!code.is_empty() && !code.contains(char::is_whitespace)).then(|| code.to_string())
}

/// Reads a `generateToken` answer: the token and when it expires (`expires` is epoch
/// milliseconds, a number or a string), clamped here on the way in (`token::clamp_expiry`
/// against `now`) so that no caller can keep an absurd expiry.
pub fn generated_token(object: &Map<String, Value>, what: &str, now: u64) -> Result<(Secret, Option<u64>)> {
    let token = object
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::server(format!("{what}: the answer has no token")))?;
    let expires_ms = match object.get("expires") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| Error::server(format!("{what}: `expires` is not epoch milliseconds")))?,
        ),
    };
    Ok((Secret::new(token), expires_ms.map(|ms| crate::token::clamp_expiry(now, ms / 1000))))
}

/// One portal and the endpoints under its sharing REST root.
pub struct Portal {
    /// The portal's URL (`https://host/portal`).
    pub url: String,
    /// The Referer requests carry, for tokens bound to one.
    pub referer: Option<String>,
}

impl Portal {
    /// The URL of a sharing REST resource.
    pub fn rest(&self, path: &str) -> String {
        format!("{}/sharing/rest/{path}", self.url)
    }

    /// `doctor`: the portal's `sharing/rest/info`, and whether `app` (client_id, redirect URI)
    /// is registered with that redirect.
    pub fn doctor_probes(&self, app: Option<(&str, String)>) -> Vec<crate::doctor::Probe> {
        let mut probes = vec![crate::doctor::Probe::ArcgisInfo { url: self.rest("info") }];
        if let Some((client_id, redirect_uri)) = app {
            probes.push(crate::doctor::Probe::AuthorizeRedirect {
                authorize_url: self.rest("oauth2/authorize"),
                client_id: client_id.to_string(),
                redirect_uri,
            });
        }
        probes
    }

    fn decorate(&self, mut request: HttpRequest) -> HttpRequest {
        if let Some(r) = &self.referer {
            request = request.header("Referer", r.clone());
        }
        request
    }

    /// POST to `oauth2/token`; errors from the portal are returned as `Answer::Error`.
    pub fn token_request(&self, cx: &mut FlowContext<'_>, fields: &[(&str, &str)]) -> Result<Answer> {
        let mut all = fields.to_vec();
        all.push(("f", "json"));
        let request = self.decorate(HttpRequest::post_form(self.rest("oauth2/token"), &all));
        let response = cx.send(&request)?;
        read_answer(&response, "oauth2/token")
    }

    /// GET a sharing resource with the token in `X-Esri-Authorization` (never in the URL).
    pub fn get_with_token(&self, cx: &mut FlowContext<'_>, path: &str, token: &Secret) -> Result<Map<String, Value>> {
        let request = self.decorate(
            HttpRequest::get(format!("{}?f=json", self.rest(path)))
                .header("X-Esri-Authorization", format!("Bearer {}", token.expose())),
        );
        let response = cx.send(&request)?;
        resource_answer(&response, path)
    }

    /// The `oauth2/authorize` URL of a code + PKCE S256 sign-in.
    pub fn authorize_url(
        &self,
        client_id: &str,
        redirect_uri: &str,
        state: &str,
        pkce: &crate::protocol::pkce::Pkce,
        expiration: Option<i64>,
    ) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(minutes) = expiration {
            q.append_pair("expiration", &minutes.to_string());
        }
        format!("{}?{}", self.rest("oauth2/authorize"), q.finish())
    }

    /// Redeems an authorization code (with the PKCE verifier and, for confidential apps, the
    /// client secret) and makes sure the tokens name their user.
    pub fn redeem_code(
        &self,
        cx: &mut FlowContext<'_>,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        pkce: &crate::protocol::pkce::Pkce,
    ) -> Result<TokenSet> {
        let secret = cx.secrets.get("client_secret").cloned();
        let mut fields = vec![
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier.expose()),
        ];
        if let Some(s) = &secret {
            fields.push(("client_secret", s.expose()));
        }
        let now = cx.now();
        let mut tokens = match self.token_request(cx, &fields)? {
            Answer::Ok(object) => token_set(&object, now, None, "oauth2/token")?,
            Answer::Error(e) => return Err(Error::server(format!("the portal refused the code: {e}"))),
        };
        if tokens.username.is_none() {
            tokens.username = Some(self.community_self(cx, &tokens.access_token)?.username);
        }
        Ok(tokens)
    }

    /// Refreshes a user's tokens: `exchange_refresh_token` (a new refresh token, the old one
    /// dies) when the refresh token has less than `rotate_within` seconds left, else a plain
    /// `refresh_token` grant. `redirect_uri` is the one the login used (ArcGIS checks it on exchange).
    pub fn refresh_user_tokens(
        &self,
        cx: &mut FlowContext<'_>,
        client_id: &str,
        redirect_uri: &str,
        rotate_within: u64,
        current: &TokenSet,
    ) -> Result<TokenSet> {
        let now = cx.now();
        if current.refresh_token.is_none() {
            return Err(cx.login_required("there is no refresh token"));
        }
        let mut grant = "refresh_token";
        if let Some(at) = current.refresh_expires_at {
            if at <= now {
                return Err(cx.login_required(format!("the refresh token expired at {}", crate::clock::rfc3339(at))));
            }
            if at - now < rotate_within {
                cx.ui.debug(1, "the refresh token is near its end: exchanging it for a new one");
                grant = "exchange_refresh_token";
            }
        }
        self.refresh_grant(cx, client_id, redirect_uri, grant, current)
    }

    /// Exchanges the refresh token for a new one now, whatever its age (`token --rotate-refresh-token`).
    pub fn exchange_refresh_token(
        &self,
        cx: &mut FlowContext<'_>,
        client_id: &str,
        redirect_uri: &str,
        current: &TokenSet,
    ) -> Result<TokenSet> {
        if current.refresh_expires_at.is_some_and(|at| at <= cx.now()) {
            return Err(cx.login_required("the refresh token has expired"));
        }
        self.refresh_grant(cx, client_id, redirect_uri, "exchange_refresh_token", current)
    }

    fn refresh_grant(
        &self,
        cx: &mut FlowContext<'_>,
        client_id: &str,
        redirect_uri: &str,
        grant: &str,
        current: &TokenSet,
    ) -> Result<TokenSet> {
        let now = cx.now();
        let Some(refresh_token) = current.refresh_token.as_ref() else {
            return Err(cx.login_required("there is no refresh token"));
        };
        let secret = cx.secrets.get("client_secret").cloned();
        let mut fields =
            vec![("grant_type", grant), ("client_id", client_id), ("refresh_token", refresh_token.expose())];
        if grant == "exchange_refresh_token" {
            fields.push(("redirect_uri", redirect_uri));
        }
        if let Some(s) = &secret {
            fields.push(("client_secret", s.expose()));
        }
        match self.token_request(cx, &fields)? {
            Answer::Ok(object) => {
                let mut fresh = token_set(&object, now, Some(current), "oauth2/token")?;
                fresh.provider_state = current.provider_state.clone();
                fresh.derived = current.derived.clone();
                Ok(fresh)
            }
            // Any refusal of a refresh token (498 "refresh_token expired", invalid_grant,
            // invalid_request) means a person must sign in again.
            // A refused refresh token (498 "refresh_token expired", 400 invalid_request /
            // invalid_grant) needs a person; anything else (a 5xx in an error body) is the
            // server's trouble, and the cached tokens stay as they are.
            Answer::Error(e) if refresh_token_refused(&e) => {
                Err(cx.login_required(format!("the portal refused the refresh token: {e}")))
            }
            Answer::Error(e) if (500..600).contains(&e.code) => Err(Error::http_status(
                u16::try_from(e.code).unwrap_or(500),
                format!("the portal could not refresh the token: {e}"),
            )),
            Answer::Error(e) => Err(Error::server(format!("the portal could not refresh the token: {e}"))),
        }
    }

    /// `community/self`: the signed-in user.
    pub fn community_self(&self, cx: &mut FlowContext<'_>, token: &Secret) -> Result<Identity> {
        let object = self.get_with_token(cx, "community/self", token)?;
        let username = object
            .get("username")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::server("community/self: the answer has no username"))?
            .to_string();
        let mut details = Map::new();
        for key in ["fullName", "email", "orgId", "role"] {
            if let Some(v) = object.get(key) {
                details.insert(key.to_string(), v.clone());
            }
        }
        details.insert("portal".into(), Value::String(self.url.clone()));
        Ok(Identity { username, details })
    }

    /// `logout` of a user sign-in: revokes the refresh token (which takes its access tokens
    /// along), or the access token when there is none.
    pub fn revoke_user_tokens(&self, cx: &mut FlowContext<'_>, client_id: &str, tokens: &TokenSet) -> Result<String> {
        match &tokens.refresh_token {
            Some(rt) => self.revoke(cx, client_id, rt, "refresh_token"),
            None => self.revoke(cx, client_id, &tokens.access_token, "access_token"),
        }
    }

    /// `oauth2/revokeToken`, best effort: returns the line to show.
    pub fn revoke(&self, cx: &mut FlowContext<'_>, client_id: &str, token: &Secret, hint: &str) -> Result<String> {
        let request = self.decorate(HttpRequest::post_form(
            self.rest("oauth2/revokeToken"),
            &[("auth_token", token.expose()), ("token_type_hint", hint), ("client_id", client_id), ("f", "json")],
        ));
        let response = cx.send(&request)?;
        match read_answer(&response, "oauth2/revokeToken")? {
            Answer::Ok(o) if o.get("success").and_then(Value::as_bool) == Some(true) => {
                Ok(format!("revoked the {} at {}", hint.replace('_', " "), self.url))
            }
            Answer::Ok(_) => Ok(format!("the portal did not confirm revoking the {}", hint.replace('_', " "))),
            Answer::Error(e) => Ok(format!("the portal refused to revoke the {}: {e}", hint.replace('_', " "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_pasted_codes() {
        assert_eq!(extract_code("  abc123\n").as_deref(), Some("abc123"));
        assert_eq!(extract_code("SUCCESS code=xyz").as_deref(), Some("xyz"));
        assert_eq!(extract_code("https://p/sharing/oauth2/approval?code=q1&state=s").as_deref(), Some("q1"));
        assert_eq!(extract_code("   "), None);
        assert_eq!(extract_code("two words"), None);
    }

    /// Records every request and answers 200 `{}`.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<Vec<(String, String)>>>);

    impl crate::http::HttpClient for Recorder {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
            self.0.lock().unwrap().push(request.headers.clone());
            Ok(HttpResponse { status: 200, headers: vec![], body: b"{}".to_vec() })
        }
    }

    #[test]
    fn tokens_travel_in_x_esri_authorization_with_the_referer() {
        let recorder = Recorder::default();
        let mut ui = crate::interact::Terminal::new(0, &crate::env::Env::default());
        let secrets = crate::registry::Secrets::default();
        let mut cx = FlowContext {
            profile: "p",
            http: &recorder,
            clock: &crate::clock::SystemClock,
            ui: &mut ui,
            secrets: &secrets,
            no_browser: true,
        };
        let request = HttpRequest::get("https://gis.example.com/portal/sharing/rest/portals/self?f=json");
        send_with_token(&mut cx, &Secret::new("tok"), Some("https://apps.example.com"), &request).unwrap();
        send_with_token(&mut cx, &Secret::new("tok"), None, &request).unwrap();
        let sent = recorder.0.lock().unwrap();
        let has = |i: usize, k: &str, v: &str| sent[i].iter().any(|(a, b)| a == k && b == v);
        assert!(has(0, "X-Esri-Authorization", "Bearer tok") && has(0, "Referer", "https://apps.example.com"));
        assert!(has(1, "X-Esri-Authorization", "Bearer tok"));
        assert!(!sent[1].iter().any(|(k, _)| k == "Referer" || k == "Authorization"), "{:?}", sent[1]);
    }

    fn resp(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse { status, headers: vec![("Content-Type".into(), ct.into())], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn error_with_http_200_is_an_error() {
        let r = resp(
            200,
            "application/json",
            r#"{"error":{"code":498,"error":"invalid_request","message":"refresh_token expired","details":[]}}"#,
        );
        match read_answer(&r, "t").unwrap() {
            Answer::Error(e) => {
                assert_eq!(e.code, 498);
                assert_eq!(e.oauth_error.as_deref(), Some("invalid_request"));
                assert_eq!(e.message, "refresh_token expired");
            }
            Answer::Ok(_) => panic!("an error body must not be success"),
        }
        assert!(matches!(resource_answer(&r, "t"), Err(Error::TokenRejected(_))));
        let forbidden = resp(
            200,
            "application/json",
            r#"{"error":{"code":403,"message":"You do not have permissions","details":[]}}"#,
        );
        assert!(matches!(resource_answer(&forbidden, "t"), Err(Error::Server(_))));
    }

    #[test]
    fn only_a_refused_refresh_token_needs_a_new_login() {
        let e = |code: i64, oauth: Option<&str>| ArcgisError {
            code,
            message: "m".into(),
            oauth_error: oauth.map(String::from),
        };
        assert!(refresh_token_refused(&e(498, Some("invalid_request"))));
        assert!(refresh_token_refused(&e(400, Some("invalid_grant"))));
        assert!(refresh_token_refused(&e(200, Some("invalid_grant"))));
        assert!(!refresh_token_refused(&e(500, None)), "a server fault keeps the tokens");
        assert!(!refresh_token_refused(&e(503, Some("temporarily_unavailable"))));
    }

    #[test]
    fn html_and_garbage_are_server_errors() {
        let html = resp(200, "text/html", "<html><head><title>Sign In</title></head></html>");
        let err = read_answer(&html, "t").err().unwrap().to_string();
        assert!(err.contains("HTML") && err.contains("Sign In"), "{err}");
        let garbage = resp(200, "application/json", "{\"access_tok");
        assert!(matches!(read_answer(&garbage, "t"), Err(Error::Server(_))));
        let unauthorized = resp(401, "text/plain", "");
        assert!(matches!(read_answer(&unauthorized, "t"), Err(Error::TokenRejected(_))));
    }

    #[test]
    fn token_set_keeps_refresh_token_on_plain_refresh() {
        let login: Map<String, Value> = serde_json::from_str(
            r#"{"access_token":"a1","expires_in":1800,"username":"u","refresh_token":"r1","refresh_token_expires_in":1209600}"#,
        )
        .unwrap();
        let first = token_set(&login, 1000, None, "t").unwrap();
        assert_eq!(first.expires_at, Some(2800));
        assert_eq!(first.refresh_expires_at, Some(1000 + 1209600));
        let refreshed: Map<String, Value> = serde_json::from_str(r#"{"access_token":"a2","expires_in":1800}"#).unwrap();
        let second = token_set(&refreshed, 2000, Some(&first), "t").unwrap();
        assert_eq!(second.refresh_token.as_ref().unwrap().expose(), "r1");
        assert_eq!(second.username.as_deref(), Some("u"));
        assert_eq!(second.refresh_expires_at, first.refresh_expires_at);
        let bad: Map<String, Value> = serde_json::from_str(r#"{"access_token":"a","expires_in":"soon"}"#).unwrap();
        assert!(token_set(&bad, 0, None, "t").is_err());
    }
}
