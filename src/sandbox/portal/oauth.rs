//! The Portal's OAuth 2.0 endpoints: authorize (with the Sign In form and the out-of-band approval page),
//! token (authorization_code with PKCE, refresh_token, exchange_refresh_token, client_credentials), revokeToken, signout.

use super::super::arcgis::{arcgis_json, html_directory, json_format, random_token, resolve_minutes};
use super::super::http::{html_escape, html_page, Incoming, Reply};
use super::{
    AccessGrant, IssuedCode, PendingAuthorization, PkceChallenge, RefreshGrant, ResponseType, SimApp, SimState,
    DEFAULT_APP_TOKEN_MINUTES, LOOPBACK_REDIRECT_URI, MAX_ACCESS_MINUTES, OOB_REDIRECT_URI, SIGN_IN_WINDOW_SECS,
};
use serde_json::json;

/// Registered exactly, or loopback with any port/path when the app lists `http://127.0.0.1`.
fn redirect_allowed(app: &SimApp, redirect_uri: &str) -> bool {
    // Only visible ASCII without fragments can be echoed safely in a Location header.
    if redirect_uri.is_empty() || redirect_uri.contains('#') || !redirect_uri.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return false;
    }
    app.redirect_uris.iter().any(|registered| {
        if registered == redirect_uri {
            return true;
        }
        if registered != LOOPBACK_REDIRECT_URI {
            return false;
        }
        let Some(rest) = redirect_uri.strip_prefix(LOOPBACK_REDIRECT_URI) else {
            return false;
        };
        let rest = match rest.strip_prefix(':') {
            Some(after_colon) => {
                let digits = after_colon.bytes().take_while(u8::is_ascii_digit).count();
                if after_colon[..digits].parse::<u16>().is_err() {
                    return false;
                }
                &after_colon[digits..]
            }
            None => rest,
        };
        rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
    })
}

/// The mixed ArcGIS/OAuth error object the token endpoint answers with (HTTP 200).
fn oauth_error(code: u16, error: &str, message: &str, pretty: bool) -> Reply {
    let body = json!({"error": {"code": code, "error": error, "error_description": message, "message": message, "details": []}});
    arcgis_json(body, pretty)
}

fn html_error(status: u16, message: &str) -> Reply {
    html_page(
        status,
        "Error",
        &format!("<h1>Error</h1>\n<div class=\"error\" id=\"errorMessage\">{}</div>", html_escape(message)),
    )
}

fn approval_page(code: &str) -> Reply {
    let code = html_escape(code);
    let body = format!(
        "<h1>OAuth2 Approval</h1>\n<p>Please copy this code, switch to your application and paste it there:</p>\n\
         <input type=\"text\" id=\"code\" value=\"{code}\" readonly>"
    );
    Reply::Html {
        status: 200,
        body: format!(
            "<!DOCTYPE html>\n<html><head><title>SUCCESS code={code}</title></head>\n<body>\n{body}\n</body></html>\n"
        ),
    }
}

fn sign_in_page(oauth_state: &str, app: &SimApp, error: Option<&str>, idp_name: Option<&str>) -> Reply {
    let mut info =
        json!({"oauth_state": oauth_state, "client_id": app.client_id, "appTitle": app.name, "locale": "en"});
    if let Some(name) = idp_name {
        info["idpName"] = json!(name);
        info["samlAuthorizeUrl"] = json!("/portal/sharing/rest/oauth2/saml/authorize");
    }
    // Keep "</" out of the inline script whatever the app name is.
    let info = info.to_string().replace("</", "<\\/");
    let error_html = error
        .map(|e| format!("<div class=\"error\" id=\"errorMessage\">{}</div>\n", html_escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<script>var oAuthInfo = {info};</script>\n<h1>Sign in to {app_name}</h1>\n{error_html}\
         <form method=\"post\" action=\"/portal/sharing/rest/oauth2/signin\">\n\
         <input type=\"hidden\" name=\"oauth_state\" value=\"{state}\">\n<input type=\"hidden\" name=\"user_orgkey\" value=\"\">\n\
         <label>Username <input type=\"text\" name=\"username\"></label>\n\
         <label>Password <input type=\"password\" name=\"password\"></label>\n\
         <button type=\"submit\">Sign In</button>\n</form>",
        app_name = html_escape(&app.name),
        state = html_escape(oauth_state),
    );
    html_page(200, "Sign In", &body)
}

fn with_params(base: &str, separator: char, params: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let joiner = if separator == '?' && base.contains('?') { '&' } else { separator };
    format!("{base}{joiner}{}", query.finish())
}

/// Authorize-time errors land where the success payload would: query for `code`, fragment for `token`.
fn authorize_error(
    redirect_uri: &str,
    response_type: ResponseType,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Reply {
    if redirect_uri == OOB_REDIRECT_URI {
        return html_page(
            400,
            &format!("ERROR error={error}"),
            &format!("<h1>OAuth2 Error</h1>\n<p>{}</p>", html_escape(description)),
        );
    }
    let separator = if response_type == ResponseType::Token { '#' } else { '?' };
    Reply::Redirect(with_params(
        redirect_uri,
        separator,
        &[("error", Some(error)), ("error_description", Some(description)), ("state", state)],
    ))
}

pub(super) fn authorize(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("authorize");
    let Some(app) = req.param("client_id").and_then(|id| st.app(id)) else {
        return html_error(400, "Invalid client_id");
    };
    let redirect_uri = req.param("redirect_uri").unwrap_or("");
    if !redirect_allowed(&app, redirect_uri) {
        return html_error(400, "Invalid redirect_uri");
    }
    let state = req.param("state");
    let response_type = match req.param("response_type") {
        Some("code") => ResponseType::Code,
        Some("token") if redirect_uri != OOB_REDIRECT_URI => ResponseType::Token,
        _ => {
            return authorize_error(
                redirect_uri,
                ResponseType::Code,
                "unsupported_response_type",
                "Invalid response_type",
                state,
            )
        }
    };
    let challenge = match (req.param("code_challenge"), req.param("code_challenge_method")) {
        (None, _) => None,
        (Some(c), Some("S256")) => Some(PkceChallenge::S256(c.to_string())),
        // RFC 7636 §4.3: the method defaults to plain.
        (Some(c), None | Some("plain")) => Some(PkceChallenge::Plain(c.to_string())),
        (Some(_), Some(_)) => {
            return authorize_error(
                redirect_uri,
                response_type,
                "invalid_request",
                "Invalid code_challenge_method",
                state,
            )
        }
    };
    if std::mem::take(&mut st.deny_next_authorize) {
        return authorize_error(redirect_uri, response_type, "access_denied", "The user denied your request.", state);
    }
    let pending = PendingAuthorization {
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        response_type,
        state: state.map(str::to_string),
        challenge,
        expiration_minutes: req.param("expiration").and_then(|e| e.trim().parse().ok()),
        expires_at: st.now() + SIGN_IN_WINDOW_SECS,
    };
    // A SAML organisation always shows its sign-in page: the person picks the IdP there.
    if st.config.auto_approve && st.config.saml.is_none() {
        let username = st.config.approve_as.clone();
        return approve(st, pending, &username);
    }
    let oauth_state = random_token("");
    // Abandoned sign-ins would otherwise pile up in a long-running sandbox.
    let now = st.now();
    st.pending.retain(|_, p| p.expires_at > now);
    st.pending.insert(oauth_state.clone(), pending);
    let idp_name = st.config.saml.as_ref().map(|idp| idp.name.clone());
    sign_in_page(&oauth_state, &app, None, idp_name.as_deref())
}

/// The user approved: hand out a code (OOB page or loopback redirect) or, for `token`, an access token.
pub(super) fn approve(st: &mut SimState, pending: PendingAuthorization, username: &str) -> Reply {
    match pending.response_type {
        ResponseType::Code => {
            let code = random_token("");
            let issued = IssuedCode {
                client_id: pending.client_id,
                redirect_uri: pending.redirect_uri.clone(),
                username: username.to_string(),
                challenge: pending.challenge,
                expiration_minutes: pending.expiration_minutes,
                expires_at: st.now() + st.config.code_lifetime,
            };
            let now = st.now();
            st.codes.retain(|_, c| c.expires_at > now);
            st.codes.insert(code.clone(), issued);
            if pending.redirect_uri == OOB_REDIRECT_URI {
                return approval_page(&code);
            }
            Reply::Redirect(with_params(
                &pending.redirect_uri,
                '?',
                &[("code", Some(&code)), ("state", pending.state.as_deref())],
            ))
        }
        ResponseType::Token => {
            // For the implicit grant, `expiration` sets the access token's own lifetime.
            let lifetime = resolve_minutes(pending.expiration_minutes, MAX_ACCESS_MINUTES)
                .map(|m| m * 60)
                .unwrap_or(st.config.access_token_lifetime);
            let grant = AccessGrant {
                client_id: Some(pending.client_id),
                username: Some(username.to_string()),
                parent_refresh: None,
                expires_at: st.now() + lifetime,
                ..AccessGrant::default()
            };
            let token = st.mint_access("at_", grant);
            let expires_in = lifetime.to_string();
            let params = [
                ("access_token", Some(token.as_str())),
                ("expires_in", Some(expires_in.as_str())),
                ("username", Some(username)),
                ("ssl", Some("false")),
                ("state", pending.state.as_deref()),
            ];
            Reply::Redirect(with_params(&pending.redirect_uri, '#', &params))
        }
    }
}

pub(super) fn sign_in(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("signin");
    let now = st.now();
    let oauth_state = req.param("oauth_state").unwrap_or("");
    let Some(pending) = st.pending.get(oauth_state).filter(|p| p.expires_at > now).cloned() else {
        return html_error(400, "Invalid or expired sign-in request. Start again from your application.");
    };
    let Some(app) = st.app(&pending.client_id) else {
        return html_error(400, "Invalid client_id");
    };
    let username = req.param("username").unwrap_or("");
    let password = req.param("password").unwrap_or("");
    let valid = st.config.users.iter().any(|u| u.username == username && u.password == password);
    if !valid {
        return sign_in_page(oauth_state, &app, Some("Invalid username or password."), None);
    }
    st.pending.remove(oauth_state);
    approve(st, pending, username)
}

pub(super) fn approval(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("approval");
    match req.param("code") {
        Some(code) => approval_page(code),
        None => html_error(400, "Missing code"),
    }
}

pub(super) fn token(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("token");
    let grant_type = req.param("grant_type");
    match grant_type {
        Some(g @ ("authorization_code" | "refresh_token" | "exchange_refresh_token" | "client_credentials")) => {
            st.bump(&format!("token:{g}"))
        }
        Some(_) => st.bump("token:unsupported"),
        None => {}
    }
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    let Some(client_id) = req.param("client_id") else {
        return oauth_error(400, "invalid_request", "client_id not specified", pretty);
    };
    let Some(app) = st.app(client_id) else {
        return oauth_error(400, "invalid_client_id", "Invalid client_id", pretty);
    };
    // client_secret is only required for client_credentials, but a secret that is sent must match.
    if let Some(secret) = req.param("client_secret") {
        if app.client_secret.as_deref() != Some(secret) {
            return oauth_error(400, "invalid_request", "Invalid client_secret", pretty);
        }
    }
    match grant_type {
        Some("authorization_code") => redeem_code(st, req, &app, pretty),
        Some("refresh_token") => refresh(st, req, &app, pretty),
        Some("exchange_refresh_token") => exchange_refresh(st, req, &app, pretty),
        Some("client_credentials") => client_credentials(st, req, &app, pretty),
        Some(_) => oauth_error(400, "unsupported_grant_type", "Invalid grant_type", pretty),
        None => oauth_error(400, "invalid_request", "grant_type not specified", pretty),
    }
}

fn user_token_response(
    st: &mut SimState,
    app: &SimApp,
    username: &str,
    refresh: Option<(&str, u64)>,
    parent: &str,
    pretty: bool,
) -> Reply {
    let lifetime = st.config.access_token_lifetime;
    let grant = AccessGrant {
        client_id: Some(app.client_id.clone()),
        username: Some(username.to_string()),
        parent_refresh: Some(parent.to_string()),
        expires_at: st.now() + lifetime,
        ..AccessGrant::default()
    };
    let access_token = st.mint_access("at_", grant);
    // No token_type: ArcGIS does not send one.
    let mut body = json!({"access_token": access_token, "expires_in": lifetime, "username": username, "ssl": false});
    if let Some((refresh_token, refresh_lifetime)) = refresh {
        body["refresh_token"] = json!(refresh_token);
        if st.config.include_refresh_expiry {
            body["refresh_token_expires_in"] = json!(refresh_lifetime);
        }
    }
    arcgis_json(body, pretty)
}

fn redeem_code(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    let Some(code) = req.param("code") else {
        return oauth_error(400, "invalid_request", "code not specified", pretty);
    };
    let Some(redirect_uri) = req.param("redirect_uri") else {
        return oauth_error(400, "invalid_request", "redirect_uri not specified", pretty);
    };
    // Codes are single-use: any redemption attempt burns the code, successful or not.
    let now = st.now();
    let Some(issued) = st.codes.remove(code).filter(|c| c.expires_at > now && c.client_id == app.client_id) else {
        return oauth_error(400, "invalid_request", "Invalid authorization code", pretty);
    };
    if issued.redirect_uri != redirect_uri {
        return oauth_error(400, "invalid_request", "Invalid redirect_uri", pretty);
    }
    if let Some(challenge) = &issued.challenge {
        if !challenge.accepts(req.param("code_verifier").unwrap_or("")) {
            return oauth_error(400, "invalid_request", "Invalid code_verifier", pretty);
        }
    }
    let (refresh_token, refresh_lifetime) =
        st.mint_refresh(&app.client_id, &issued.username, issued.expiration_minutes);
    user_token_response(st, app, &issued.username, Some((&refresh_token, refresh_lifetime)), &refresh_token, pretty)
}

/// The live refresh grant for this app, or `None` (expired, revoked, unknown, other app's).
fn live_refresh_grant(st: &mut SimState, refresh_token: &str, app: &SimApp) -> Option<RefreshGrant> {
    if st.config.rotate_on_refresh && st.revoke_grant_on_reuse(refresh_token) {
        return None;
    }
    let now = st.now();
    let grant = st.refresh_tokens.get(refresh_token)?.clone();
    if grant.expires_at <= now {
        st.revoke_refresh_family(refresh_token);
        return None;
    }
    (grant.client_id == app.client_id).then_some(grant)
}

fn refresh_expired(pretty: bool) -> Reply {
    oauth_error(498, "invalid_request", "refresh_token expired", pretty)
}

fn refresh(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    let Some(refresh_token) = req.param("refresh_token") else {
        return oauth_error(400, "invalid_request", "refresh_token not specified", pretty);
    };
    let Some(grant) = live_refresh_grant(st, refresh_token, app) else {
        return refresh_expired(pretty);
    };
    if st.config.rotate_on_refresh {
        st.retire_refresh(refresh_token, &grant.family);
        let (new_refresh, lifetime) =
            st.mint_refresh_in(Some(grant.family.clone()), &app.client_id, &grant.username, grant.expiration_minutes);
        return user_token_response(st, app, &grant.username, Some((&new_refresh, lifetime)), &new_refresh, pretty);
    }
    // New access token only; the refresh token stays as it is.
    user_token_response(st, app, &grant.username, None, refresh_token, pretty)
}

fn exchange_refresh(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    let Some(redirect_uri) = req.param("redirect_uri") else {
        return oauth_error(400, "invalid_request", "redirect_uri not specified", pretty);
    };
    if !redirect_allowed(app, redirect_uri) {
        return oauth_error(400, "invalid_request", "Invalid redirect_uri", pretty);
    }
    let Some(refresh_token) = req.param("refresh_token") else {
        return oauth_error(400, "invalid_request", "refresh_token not specified", pretty);
    };
    let Some(grant) = live_refresh_grant(st, refresh_token, app) else {
        return refresh_expired(pretty);
    };
    // Rotation: the old refresh token dies; access tokens already minted from it live out their time.
    st.retire_refresh(refresh_token, &grant.family);
    let (new_refresh, lifetime) =
        st.mint_refresh_in(Some(grant.family.clone()), &app.client_id, &grant.username, grant.expiration_minutes);
    user_token_response(st, app, &grant.username, Some((&new_refresh, lifetime)), &new_refresh, pretty)
}

fn client_credentials(st: &mut SimState, req: &Incoming, app: &SimApp, pretty: bool) -> Reply {
    if req.param("client_secret").is_none() {
        return oauth_error(400, "invalid_request", "client_secret not specified", pretty);
    }
    if app.client_secret.is_none() {
        // A public app has no secret, so no secret can match.
        return oauth_error(400, "invalid_request", "Invalid client_secret", pretty);
    }
    let expiration = req.param("expiration").and_then(|e| e.trim().parse().ok());
    let lifetime = resolve_minutes(expiration, MAX_ACCESS_MINUTES).unwrap_or(DEFAULT_APP_TOKEN_MINUTES) * 60;
    let grant = AccessGrant {
        client_id: Some(app.client_id.clone()),
        username: None,
        parent_refresh: None,
        expires_at: st.now() + lifetime,
        ..AccessGrant::default()
    };
    let access_token = st.mint_access("app_", grant);
    arcgis_json(json!({"access_token": access_token, "expires_in": lifetime}), pretty)
}

pub(super) fn revoke_token(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("revokeToken");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    if !req.is_post {
        return arcgis_json(json!({"error": {"code": 405, "message": "Method not supported.", "details": []}}), pretty);
    }
    let token = req.param("auth_token").unwrap_or("");
    let client_id = req.param("client_id");
    // Only the issuing app may revoke; app tokens and generateToken tokens cannot be revoked here.
    if st.refresh_tokens.get(token).is_some_and(|r| Some(r.client_id.as_str()) == client_id) {
        st.revoke_refresh_family(token);
    } else if st
        .access_tokens
        .get(token)
        .is_some_and(|a| a.username.is_some() && a.client_id.as_deref() == client_id && client_id.is_some())
    {
        st.access_tokens.remove(token);
    }
    // Always success, so callers learn nothing about the token.
    arcgis_json(json!({"success": true}), pretty)
}

pub(super) fn sign_out(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("signout");
    let target = req.param("redirect_uri").filter(|uri| {
        req.param("client_id")
            .and_then(|id| st.app(id))
            .is_some_and(|app| uri != &OOB_REDIRECT_URI && redirect_allowed(&app, uri))
    });
    match (target, json_format(req)) {
        (Some(uri), _) => Reply::Redirect(uri.to_string()),
        (None, Some(pretty)) => arcgis_json(json!({"success": true}), pretty),
        (None, None) => html_page(200, "Signed Out", "<h1>You are signed out.</h1>"),
    }
}
