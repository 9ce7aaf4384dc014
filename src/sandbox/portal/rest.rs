//! The Portal's REST resources (`community/self`, `community/users/{name}`, `portals/self`, `info`) and
//! `generateToken`, including server tokens for federated ArcGIS Server sites.

use super::super::arcgis::{
    arcgis_json, forbidden, html_directory, invalid_token, json_format, resolve_minutes, same_root, token_binding,
    token_required, unable_to_generate,
};
use super::super::http::{Incoming, Reply};
use super::{AccessGrant, SimApp, SimState, SimUser, DEFAULT_GENERATE_TOKEN_MINUTES, MAX_ACCESS_MINUTES};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

enum Caller {
    Anonymous,
    Invalid,
    Valid(AccessGrant),
}

fn identify(st: &mut SimState, req: &Incoming) -> Caller {
    let Some(token) = req.bearer.as_deref().or_else(|| req.param("token")) else {
        return Caller::Anonymous;
    };
    let now = st.now();
    match st.access_tokens.get(token) {
        Some(grant) if grant.expires_at > now => {
            // A server token is for its server only; a bound token only with its referer / from its IP.
            if grant.server.is_none() && grant.binding_allows(req) {
                Caller::Valid(grant.clone())
            } else {
                Caller::Invalid
            }
        }
        Some(_) => {
            st.access_tokens.remove(token);
            Caller::Invalid
        }
        None => Caller::Invalid,
    }
}

fn user_json(user: &SimUser) -> Value {
    let (first, last) = user.full_name.split_once(' ').unwrap_or((&user.full_name, ""));
    json!({
        "username": user.username,
        "fullName": user.full_name,
        "firstName": first,
        "lastName": last,
        "email": user.email,
        "orgId": "sandboxorg",
        "role": "org_user",
        "userType": "creatorUT",
        "privileges": ["portal:user:createItem", "portal:user:joinGroup", "portal:user:shareToGroup", "portal:user:viewOrgItems"],
    })
}

pub(super) fn community_self(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("community/self");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    match identify(st, req) {
        Caller::Anonymous => token_required(pretty),
        Caller::Invalid => invalid_token(pretty),
        Caller::Valid(AccessGrant { username: None, .. }) => forbidden(pretty),
        Caller::Valid(AccessGrant { username: Some(username), .. }) => {
            arcgis_json(user_json(&st.user(&username)), pretty)
        }
    }
}

/// `community/users/{name}`: a user's profile, for signed-in callers.
pub(super) fn community_user(st: &mut SimState, req: &Incoming, name: &str) -> Reply {
    st.bump("community/users");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    match identify(st, req) {
        Caller::Anonymous => token_required(pretty),
        Caller::Invalid => invalid_token(pretty),
        Caller::Valid(_) => match st.config.users.iter().find(|u| u.username == name) {
            Some(user) => arcgis_json(user_json(user), pretty),
            None => arcgis_json(json!({"error": {"code": 400, "message": "User not found", "details": []}}), pretty),
        },
    }
}

pub(super) fn portals_self(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    st.bump("portals/self");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    // The fields the `arcgis` Python package reads while building a GIS, as an Enterprise portal has them.
    let host = base_url.split("://").nth(1).unwrap_or_default();
    let mut body = json!({
        "id": "sandboxorg",
        "name": "age-oauth sandbox",
        "urlKey": "sandbox",
        "isPortal": true,
        "portalName": "ArcGIS Enterprise",
        "portalMode": "singletenant",
        "portalHostname": host,
        "customBaseUrl": host.split('/').next().unwrap_or_default(),
        "currentVersion": "2024.1",
        "supportsOAuth": true,
        "helperServices": {},
        "portalProperties": {},
        "maxTokenExpirationMinutes": -1,
        "allSSL": false,
        "authorizedCrossOriginDomains": [],
    });
    // Anonymous callers get the public portal description, as on a real portal.
    match identify(st, req) {
        Caller::Anonymous => {}
        Caller::Invalid => return invalid_token(pretty),
        Caller::Valid(grant) => {
            if let Some(username) = &grant.username {
                body["user"] = user_json(&st.user(username));
            }
            if let Some(app) = grant.client_id.as_deref().and_then(|id| st.app(id)) {
                body["appInfo"] = app_info(st, &app);
            }
        }
    }
    arcgis_json(body, pretty)
}

/// `portals/self`'s `appInfo` for a token of an app, as a real portal gives it: the app's
/// title, its App ID, the id of its registered item and that item's owner.
fn app_info(st: &SimState, app: &SimApp) -> Value {
    let item: String = Sha256::digest(app.client_id.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    let owner = st.config.users.first().map(|u| u.username.clone()).unwrap_or_else(|| "admin".into());
    json!({
        "appId": app.client_id,
        "appTitle": app.name,
        "itemId": item,
        "appOwner": owner,
        "orgId": "sandboxorg",
        "privileges": ["portal:user:viewOrgItems"],
    })
}

pub(super) fn info(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    st.bump("info");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    let body = json!({
        "owningSystemUrl": base_url,
        "currentVersion": "11.3",
        "authInfo": {"tokenServicesUrl": format!("{base_url}/sharing/rest/generateToken"), "isTokenBasedSecurity": true},
    });
    arcgis_json(body, pretty)
}

pub(super) fn generate_token(st: &mut SimState, req: &Incoming) -> Reply {
    st.bump("generateToken");
    let Some(pretty) = json_format(req) else {
        return html_directory(&req.path);
    };
    if !req.is_post {
        return unable_to_generate("Token generation requires a POST request.", pretty);
    }
    let expiration = req.param("expiration").and_then(|e| e.trim().parse().ok());
    let lifetime = resolve_minutes(expiration, MAX_ACCESS_MINUTES).unwrap_or(DEFAULT_GENERATE_TOKEN_MINUTES) * 60;
    let expires_at = st.now() + lifetime;
    if let Some(server_url) = req.param("serverUrl") {
        return federated_server_token(st, req, server_url, expires_at, pretty);
    }
    let (username, password) = (req.param("username").unwrap_or(""), req.param("password").unwrap_or(""));
    if !st.config.users.iter().any(|u| u.username == username && u.password == password) {
        return unable_to_generate("Invalid username or password.", pretty);
    }
    let (referer, ip) = match token_binding(req) {
        Ok(binding) => binding,
        Err(detail) => return unable_to_generate(detail, pretty),
    };
    let grant = AccessGrant { username: Some(username.to_string()), expires_at, referer, ip, ..AccessGrant::default() };
    let token = st.mint_access("gt_", grant);
    // `expires` is epoch milliseconds, unlike the OAuth `expires_in` seconds.
    arcgis_json(json!({"token": token, "expires": expires_at * 1000, "ssl": false}), pretty)
}

/// Federation: a valid portal token (`token`, sent with the portal token's own referer) buys a
/// token for one federated server root; it never outlives the portal token.
fn federated_server_token(st: &mut SimState, req: &Incoming, server_url: &str, expires_at: u64, pretty: bool) -> Reply {
    st.bump("generateToken:serverUrl");
    let portal_token = req.param("token").or(req.bearer.as_deref());
    let Some(grant) = portal_token.and_then(|t| st.access_tokens.get(t)).cloned() else {
        return if portal_token.is_some() { invalid_token(pretty) } else { token_required(pretty) };
    };
    let now = st.now();
    if grant.expires_at <= now || grant.server.is_some() || !grant.binding_allows(req) {
        return invalid_token(pretty);
    }
    let Some(server) = st.federated_servers.iter().find(|s| same_root(s, server_url)).cloned() else {
        return unable_to_generate("The server is not federated with this portal.", pretty);
    };
    let Some(username) = grant.username.clone() else {
        return forbidden(pretty);
    };
    let server_grant = AccessGrant {
        username: Some(username),
        expires_at: expires_at.min(grant.expires_at),
        referer: req.param("referer").map(String::from).or(grant.referer.clone()),
        server: Some(server),
        ..AccessGrant::default()
    };
    let expires = server_grant.expires_at;
    let token = st.mint_access("st_", server_grant);
    arcgis_json(json!({"token": token, "expires": expires * 1000, "ssl": false}), pretty)
}
