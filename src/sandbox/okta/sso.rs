//! From a session token to a SAML assertion: `.well-known/okta-organization`, `sessionCookieRedirect`
//! (consumes the single-use token, sets `sid`), the sessions API, and the app's SSO endpoint, which answers
//! the auto-submitting SAMLResponse form with a session and the sign-in (or step-up) page without one.

use super::super::http::{html_escape, html_page, Incoming, Reply};
use super::super::saml::{post_form_page, Assertion, AuthnRequest};
use super::{okta_error, random_id, OktaState, Session};
use serde_json::json;

/// Assertions are valid this long.
const ASSERTION_LIFETIME: u64 = 300;

/// `GET /.well-known/okta-organization`.
pub(super) fn organization(st: &mut OktaState) -> Reply {
    st.bump("well-known");
    Reply::JsonStatus {
        status: 200,
        body: json!({"id": "00osandbox", "pipeline": st.config.pipeline, "_links": {"organization": {"href": st.base_url}}, "settings": {"analyticsCollectionEnabled": false}}),
    }
}

fn error_page(status: u16, message: &str) -> Reply {
    html_page(
        status,
        "Error",
        &format!("<div class=\"error-content\"><h1>Error</h1><p>{}</p></div>", html_escape(message)),
    )
}

/// Takes a single-use session token; `None` when unknown, used or expired.
fn consume_session_token(st: &mut OktaState, token: &str) -> Option<String> {
    let now = st.now();
    let (login, expires_at) = st.session_tokens.remove(token)?;
    (expires_at > now).then_some(login)
}

fn new_session(st: &mut OktaState, login: String) -> (String, u64) {
    let sid = random_id("102");
    let expires_at = st.now() + st.config.session_lifetime;
    st.sessions.insert(sid.clone(), Session { login, expires_at });
    (sid, expires_at)
}

fn sid_cookie(sid: &str) -> String {
    format!("sid={sid}; Path=/; HttpOnly; SameSite=None")
}

/// `GET|POST /login/sessionCookieRedirect?token=…&redirectUrl=…`.
pub(super) fn session_cookie_redirect(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("sessionCookieRedirect");
    let redirect = req.param("redirectUrl").unwrap_or_default().to_string();
    // Only this org's own URLs are trusted origins here.
    if !redirect.starts_with(&format!("{}/", st.base_url)) {
        return error_page(403, "The redirect URL is not a trusted origin.");
    }
    let Some(login) = consume_session_token(st, req.param("token").unwrap_or_default()) else {
        st.bump("sessionCookieRedirect:invalid_token");
        return error_page(403, "The session token is invalid or was already used.");
    };
    let (sid, _) = new_session(st, login);
    Reply::Redirect(redirect).with_header("Set-Cookie", sid_cookie(&sid))
}

/// `POST /api/v1/sessions {"sessionToken": …}`.
pub(super) fn create_session(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("sessions:create");
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
    let Some(login) = consume_session_token(st, body["sessionToken"].as_str().unwrap_or_default()) else {
        return okta_error(401, "E0000004", "Authentication failed", &["The session token is invalid."]);
    };
    let (sid, expires_at) = new_session(st, login.clone());
    let expires = super::super::saml::iso_time(expires_at);
    Reply::JsonStatus {
        status: 200,
        body: json!({"id": sid, "login": login, "status": "ACTIVE", "expiresAt": expires}),
    }
}

/// `GET /api/v1/sessions/me` with the `sid` cookie.
pub(super) fn session_me(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("sessions:me");
    match st.session(req) {
        Some(s) => Reply::JsonStatus {
            status: 200,
            body: json!({"login": s.login, "status": "ACTIVE", "expiresAt": super::super::saml::iso_time(s.expires_at)}),
        },
        None => okta_error(404, "E0000007", "Not found: Resource not found: me (Session)", &[]),
    }
}

/// `DELETE /api/v1/sessions/me` with the `sid` cookie: signs the session out (204).
pub(super) fn end_session(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("sessions:delete");
    match req.cookies.get("sid").and_then(|sid| st.sessions.remove(sid)) {
        Some(_) => Reply::Text { status: 204, body: String::new() },
        None => okta_error(404, "E0000007", "Not found: Resource not found: me (Session)", &[]),
    }
}

/// The Okta-hosted sign-in page (what a browser without a session sees).
pub(super) fn sign_in_page(st: &mut OktaState, state_token: Option<&str>) -> Reply {
    st.bump("sign_in_page");
    let token = state_token.map_or_else(|| random_id("00"), str::to_string);
    let escaped = token.replace('-', "\\x2D");
    let body = format!(
        "<div id=\"okta-sign-in\"></div>\n<script type=\"text/javascript\">\nvar stateToken = '{escaped}';\n\
         var baseUrl = '{}';\n</script>",
        st.base_url
    );
    html_page(200, "Sandbox Okta - Sign In", &body)
}

/// The app's SSO endpoint (`/app/arcgis/{id}/sso/saml`), SP-initiated with the HTTP-Redirect binding.
pub(super) fn sso(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("sso");
    let Some(request) = req.param("SAMLRequest").and_then(AuthnRequest::from_redirect) else {
        return error_page(400, "The SAML request is missing or malformed.");
    };
    let app = st.config.app.clone();
    if request.acs_url != app.acs_url || request.issuer != app.audience {
        return error_page(400, "The SAML request does not come from an app of this org.");
    }
    let mut set_cookie = None;
    let mut session = st.session(req);
    if session.is_none() {
        if let Some(login) = req.param("sessionToken").map(str::to_string).and_then(|t| consume_session_token(st, &t)) {
            let (sid, _) = new_session(st, login);
            session = st.sessions.get(&sid).cloned();
            set_cookie = Some(sid_cookie(&sid));
        }
    }
    let Some(session) = session else {
        return sign_in_page(st, None);
    };
    if st.config.step_up {
        st.bump("sso:step_up");
        let token = random_id("00");
        return Reply::Redirect(format!("{}/login/step-up/redirect?stateToken={token}", st.base_url));
    }
    let now = st.now();
    let issuer = format!("{}/exk0sandbox", st.base_url);
    let assertion = Assertion {
        issuer: &issuer,
        audience: &app.audience,
        recipient: &app.acs_url,
        in_response_to: &request.id,
        name_id: &session.login,
        now,
        lifetime: ASSERTION_LIFETIME,
    };
    let saml_response = assertion.response_base64(&random_id("id"), &random_id("id"));
    let action = st.config.form_action_override.clone().unwrap_or(app.acs_url);
    let relay_state = req.param("RelayState").unwrap_or_default();
    st.bump("sso:form");
    let page = post_form_page(&action, &[("SAMLResponse", &saml_response), ("RelayState", relay_state)], true);
    let reply = Reply::Html { status: 200, body: page };
    match set_cookie {
        Some(cookie) => reply.with_header("Set-Cookie", cookie),
        None => reply,
    }
}
