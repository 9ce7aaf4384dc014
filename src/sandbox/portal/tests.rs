//! The Portal simulator over HTTP, as a client sees it.

use super::*;
use serde_json::json;

const PUBLIC_APP: &str = "age-oauth-sandbox";
const CONFIDENTIAL_APP: &str = "age-oauth-sandbox-app";
const APP_SECRET: &str = "sandbox-app-secret";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const VERIFIER_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // RFC 7636 appendix B

struct Http {
    status: u16,
    content_type: String,
    location: Option<String>,
    body: String,
}

impl Http {
    fn json(&self) -> Value {
        assert!(self.content_type.starts_with("application/json"), "not JSON ({}): {}", self.content_type, self.body);
        serde_json::from_str(&self.body).expect("valid JSON body")
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into()
}

fn finish(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Http {
    let mut response = result.expect("HTTP exchange");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (content_type, location) = (header("content-type").unwrap_or_default(), header("location"));
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().expect("body");
    Http { status, content_type, location, body }
}

fn url(sim: &PortalSim, path: &str, params: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("{}{path}?{query}", sim.base_url())
}

fn get(sim: &PortalSim, path: &str, params: &[(&str, &str)]) -> Http {
    finish(agent().get(&url(sim, path, params)).call())
}

fn post(sim: &PortalSim, path: &str, form: &[(&str, &str)]) -> Http {
    finish(agent().post(&format!("{}{path}", sim.base_url())).send_form(form.iter().copied()))
}

fn start() -> PortalSim {
    PortalSim::start("127.0.0.1:0", PortalConfig::default()).expect("simulator starts")
}

fn code_from_approval_page(page: &Http) -> String {
    assert_eq!(page.status, 200);
    let start = page.body.find("<title>SUCCESS code=").expect("approval title") + "<title>SUCCESS code=".len();
    let code = &page.body[start..start + page.body[start..].find('<').expect("title end")];
    assert!(page.body.contains(&format!("<input type=\"text\" id=\"code\" value=\"{code}\"")));
    code.to_string()
}

fn authorize_oob(sim: &PortalSim, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)];
    params.extend_from_slice(extra);
    code_from_approval_page(&get(sim, "/sharing/rest/oauth2/authorize", &params))
}

fn redeem(sim: &PortalSim, code: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![
        ("f", "json"),
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_APP),
        ("code", code),
        ("redirect_uri", OOB_REDIRECT_URI),
    ];
    form.extend_from_slice(extra);
    post(sim, "/sharing/rest/oauth2/token", &form).json()
}

fn login(sim: &PortalSim) -> (String, String) {
    let code = authorize_oob(sim, &[]);
    let tokens = redeem(sim, &code, &[]);
    (
        tokens["access_token"].as_str().expect("access").to_string(),
        tokens["refresh_token"].as_str().expect("refresh").to_string(),
    )
}

fn refresh(sim: &PortalSim, grant_type: &str, refresh_token: &str, extra: &[(&str, &str)]) -> Value {
    let mut form =
        vec![("f", "json"), ("grant_type", grant_type), ("client_id", PUBLIC_APP), ("refresh_token", refresh_token)];
    form.extend_from_slice(extra);
    post(sim, "/sharing/rest/oauth2/token", &form).json()
}

fn whoami(sim: &PortalSim, token: &str) -> Value {
    get(sim, "/sharing/rest/community/self", &[("f", "json"), ("token", token)]).json()
}

fn error_code(body: &Value) -> i64 {
    body["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {body}"))
}

fn query_param(url: &str, separator: char, name: &str) -> Option<String> {
    let (_, query) = url.split_once(separator)?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[test]
fn oob_code_flow_end_to_end() {
    let sim = start();
    let code = authorize_oob(&sim, &[("state", "xyz")]);
    let page = get(&sim, "/sharing/oauth2/approval", &[("code", &code)]);
    assert!(
        page.body.contains("OAuth2 Approval")
            && page.body.contains("Please copy this code, switch to your application and paste it there:")
    );
    assert_eq!(code_from_approval_page(&page), code);

    let tokens = redeem(&sim, &code, &[]);
    assert!(tokens["access_token"].as_str().expect("access").len() >= 40);
    assert!(tokens["refresh_token"].as_str().expect("refresh").len() >= 40);
    assert_eq!(tokens["expires_in"], 1800);
    assert_eq!(tokens["refresh_token_expires_in"], 1_209_600);
    assert_eq!(tokens["username"], "demo");
    assert_eq!(tokens["ssl"], false);
    assert!(tokens.get("token_type").is_none());

    let me = whoami(&sim, tokens["access_token"].as_str().expect("access"));
    assert_eq!(me["username"], "demo");
    assert_eq!(me["fullName"], "Demo User");
    assert_eq!(me["email"], "demo@example.test");
    assert_eq!(me["orgId"], "sandboxorg");
    assert_eq!(sim.count("authorize"), 1);
    assert_eq!(sim.count("token"), 1);
    assert_eq!(sim.count("token:authorization_code"), 1);
    assert_eq!(sim.count("community/self"), 1);
    assert_eq!(sim.count("approval"), 1);
}

#[test]
fn pkce_s256_checks_the_verifier() {
    let sim = start();
    let pkce = [("code_challenge", VERIFIER_CHALLENGE), ("code_challenge_method", "S256")];
    let code = authorize_oob(&sim, &pkce);
    let wrong = redeem(&sim, &code, &[("code_verifier", "wrong-verifier-wrong-verifier-wrong-verifier-x")]);
    assert_eq!(wrong["error"]["code"], 400);
    assert_eq!(wrong["error"]["error"], "invalid_request");
    assert_eq!(wrong["error"]["message"], "Invalid code_verifier");
    // The failed attempt burned the code.
    assert_eq!(redeem(&sim, &code, &[("code_verifier", VERIFIER)])["error"]["message"], "Invalid authorization code");

    let code = authorize_oob(&sim, &pkce);
    assert_eq!(redeem(&sim, &code, &[])["error"]["message"], "Invalid code_verifier", "missing verifier");
    let code = authorize_oob(&sim, &pkce);
    assert_eq!(redeem(&sim, &code, &[("code_verifier", VERIFIER)])["username"], "demo");

    let code = authorize_oob(&sim, &[("code_challenge", VERIFIER)]);
    assert_eq!(redeem(&sim, &code, &[("code_verifier", VERIFIER)])["username"], "demo", "plain is the default method");
}

#[test]
fn codes_are_single_use_bound_to_redirect_and_expire() {
    let sim = start();
    let code = authorize_oob(&sim, &[]);
    assert!(redeem(&sim, &code, &[])["access_token"].is_string());
    let again = redeem(&sim, &code, &[]);
    assert_eq!(
        again,
        json!({"error": {"code": 400, "error": "invalid_request", "error_description": "Invalid authorization code", "message": "Invalid authorization code", "details": []}})
    );

    let code = authorize_oob(&sim, &[]);
    let mismatch = redeem(&sim, &code, &[("redirect_uri", "http://127.0.0.1:9999/cb")]);
    assert_eq!(mismatch["error"]["message"], "Invalid redirect_uri");

    let code = authorize_oob(&sim, &[]);
    sim.advance_clock(301);
    assert_eq!(redeem(&sim, &code, &[])["error"]["message"], "Invalid authorization code");
    assert_eq!(sim.count("token:authorization_code"), 4);
}

#[test]
fn loopback_redirects_carry_code_and_state() {
    let sim = start();
    let authorize = |redirect_uri: &str, response_type: &str| {
        get(
            &sim,
            "/sharing/rest/oauth2/authorize",
            &[
                ("client_id", PUBLIC_APP),
                ("response_type", response_type),
                ("redirect_uri", redirect_uri),
                ("state", "s t&1"),
            ],
        )
    };
    let redirect = authorize("http://127.0.0.1:54321/callback", "code");
    assert_eq!(redirect.status, 302);
    let location = redirect.location.expect("Location");
    assert!(location.starts_with("http://127.0.0.1:54321/callback?code="));
    assert_eq!(query_param(&location, '?', "state").as_deref(), Some("s t&1"));
    let code = query_param(&location, '?', "code").expect("code");
    let tokens = redeem(&sim, &code, &[("redirect_uri", "http://127.0.0.1:54321/callback")]);
    assert_eq!(tokens["username"], "demo");

    let implicit = authorize("http://127.0.0.1:8080/", "token").location.expect("Location");
    assert_eq!(query_param(&implicit, '#', "expires_in").as_deref(), Some("1800"));
    assert_eq!(query_param(&implicit, '#', "ssl").as_deref(), Some("false"));
    assert_eq!(query_param(&implicit, '#', "username").as_deref(), Some("demo"));
    let access = query_param(&implicit, '#', "access_token").expect("access token");
    assert_eq!(whoami(&sim, &access)["username"], "demo");

    for bad in
        ["http://127.0.0.1.evil.test/cb", "http://localhost:80/cb", "https://127.0.0.1/cb", "http://127.0.0.1:99999/"]
    {
        let page = authorize(bad, "code");
        assert_eq!(page.status, 400, "{bad}");
        assert!(page.content_type.starts_with("text/html") && page.body.contains("Invalid redirect_uri"), "{bad}");
    }
    let unknown = get(
        &sim,
        "/sharing/rest/oauth2/authorize",
        &[("client_id", "nope"), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
    );
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("Invalid client_id"));
    let unsupported = authorize("http://127.0.0.1:1/cb", "id_token").location.expect("Location");
    assert_eq!(query_param(&unsupported, '?', "error").as_deref(), Some("unsupported_response_type"));

    sim.deny_next_authorize();
    let denied = authorize("http://127.0.0.1:1/cb", "code").location.expect("Location");
    assert_eq!(query_param(&denied, '?', "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&denied, '?', "state").as_deref(), Some("s t&1"));
    assert!(query_param(&denied, '?', "code").is_none());
    assert!(
        authorize("http://127.0.0.1:1/cb", "code").location.expect("Location").contains("code="),
        "deny is one-shot"
    );
}

#[test]
fn sign_in_form_when_not_auto_approving() {
    let sim = start();
    sim.set_auto_approve(false);
    let page = get(
        &sim,
        "/sharing/rest/oauth2/authorize",
        &[("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
    );
    assert!(page.body.contains("<title>Sign In</title>"));
    let start = page.body.find("var oAuthInfo = ").expect("oAuthInfo") + "var oAuthInfo = ".len();
    let info: Value =
        serde_json::Deserializer::from_str(&page.body[start..]).into_iter().next().expect("json").expect("valid");
    let oauth_state = info["oauth_state"].as_str().expect("oauth_state").to_string();
    assert!(page.body.contains("action=\"/portal/sharing/rest/oauth2/signin\""));

    let wrong = post(
        &sim,
        "/sharing/rest/oauth2/signin",
        &[("username", "alice"), ("password", "nope"), ("oauth_state", &oauth_state)],
    );
    assert!(wrong.body.contains("<title>Sign In</title>") && wrong.body.contains("Invalid username or password."));
    assert!(!wrong.body.contains("SUCCESS"));
    let right = post(
        &sim,
        "/sharing/rest/oauth2/signin",
        &[("user_orgkey", ""), ("username", "alice"), ("password", "alice-password"), ("oauth_state", &oauth_state)],
    );
    let code = code_from_approval_page(&right);
    let tokens = redeem(&sim, &code, &[]);
    assert_eq!(tokens["username"], "alice");
    assert_eq!(whoami(&sim, tokens["access_token"].as_str().expect("access"))["fullName"], "Alice Example");
    let reused = post(
        &sim,
        "/sharing/rest/oauth2/signin",
        &[("username", "alice"), ("password", "alice-password"), ("oauth_state", &oauth_state)],
    );
    assert_eq!(reused.status, 400, "oauth_state is single-use");
}

#[test]
fn refresh_grant_returns_only_a_new_access_token() {
    let sim = start();
    let (access, refresh_token) = login(&sim);
    let refreshed = refresh(&sim, "refresh_token", &refresh_token, &[]);
    assert_eq!(refreshed["expires_in"], 1800);
    assert_eq!(refreshed["username"], "demo");
    assert!(refreshed.get("refresh_token").is_none() && refreshed.get("refresh_token_expires_in").is_none());
    let new_access = refreshed["access_token"].as_str().expect("access");
    assert_ne!(new_access, access);
    assert_eq!(whoami(&sim, new_access)["username"], "demo");
    assert_eq!(whoami(&sim, &access)["username"], "demo", "old access token lives out its time");
    assert!(refresh(&sim, "refresh_token", &refresh_token, &[])["access_token"].is_string(), "refresh token unchanged");

    let other_app = refresh(&sim, "refresh_token", &refresh_token, &[("client_id", CONFIDENTIAL_APP)]);
    assert_eq!(error_code(&other_app), 498);
    let bad_client = refresh(&sim, "refresh_token", &refresh_token, &[("client_id", "nope")]);
    assert_eq!(
        bad_client["error"],
        json!({"code": 400, "error": "invalid_client_id", "error_description": "Invalid client_id", "message": "Invalid client_id", "details": []})
    );
    assert_eq!(sim.count("token:refresh_token"), 4);
}

#[test]
fn exchange_rotates_the_refresh_token() {
    let sim = start();
    let (_, old_refresh) = login(&sim);
    let missing = refresh(&sim, "exchange_refresh_token", &old_refresh, &[]);
    assert_eq!(
        missing,
        json!({"error": {"code": 400, "error": "invalid_request", "error_description": "redirect_uri not specified", "message": "redirect_uri not specified", "details": []}})
    );

    let exchanged = refresh(&sim, "exchange_refresh_token", &old_refresh, &[("redirect_uri", OOB_REDIRECT_URI)]);
    let new_refresh = exchanged["refresh_token"].as_str().expect("new refresh token");
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(exchanged["refresh_token_expires_in"], 1_209_600);
    assert_eq!(exchanged["expires_in"], 1800);
    let stale = refresh(&sim, "refresh_token", &old_refresh, &[]);
    assert_eq!(
        stale,
        json!({"error": {"code": 498, "error": "invalid_request", "error_description": "refresh_token expired", "message": "refresh_token expired", "details": []}})
    );
    assert!(refresh(&sim, "refresh_token", new_refresh, &[])["access_token"].is_string());
    assert_eq!(sim.count("token:exchange_refresh_token"), 2);
}

#[test]
fn client_credentials_needs_the_right_secret() {
    let sim = start();
    let grant = |secret: Option<&str>, client_id: &str, extra: &[(&str, &str)]| {
        let mut form = vec![("f", "json"), ("grant_type", "client_credentials"), ("client_id", client_id)];
        form.extend(secret.map(|s| ("client_secret", s)));
        form.extend_from_slice(extra);
        post(&sim, "/sharing/rest/oauth2/token", &form).json()
    };
    let ok = grant(Some(APP_SECRET), CONFIDENTIAL_APP, &[]);
    assert_eq!(ok["expires_in"], 7200 * 60);
    assert_eq!(ok.as_object().expect("object").len(), 2, "only access_token and expires_in: {ok}");
    let app_token = ok["access_token"].as_str().expect("access");
    assert_eq!(grant(Some(APP_SECRET), CONFIDENTIAL_APP, &[("expiration", "60")])["expires_in"], 3600);

    let wrong = grant(Some("guess"), CONFIDENTIAL_APP, &[]);
    assert_eq!(
        wrong["error"],
        json!({"code": 400, "error": "invalid_request", "error_description": "Invalid client_secret", "message": "Invalid client_secret", "details": []})
    );
    assert_eq!(grant(None, CONFIDENTIAL_APP, &[])["error"]["code"], 400);
    assert_eq!(grant(Some("x"), PUBLIC_APP, &[])["error"]["message"], "Invalid client_secret");

    let me = whoami(&sim, app_token);
    assert_eq!(me["error"]["code"], 403);
    assert_eq!(
        me["error"]["message"],
        "You do not have permissions to access this resource or perform this operation."
    );
    let portal = get(&sim, "/sharing/rest/portals/self", &[("f", "json"), ("token", app_token)]).json();
    assert_eq!(portal["appInfo"]["appId"], CONFIDENTIAL_APP);
    assert_eq!(portal["appInfo"]["appTitle"], "Sandbox App");
    assert_eq!(portal["appInfo"]["appOwner"], "demo");
    assert_eq!(portal["appInfo"]["itemId"].as_str().map(str::len), Some(32));
    assert!(portal.get("user").is_none());
    assert_eq!(sim.count("token:client_credentials"), 5);
}

#[test]
fn revoke_kills_the_refresh_token_and_its_access_tokens() {
    let sim = start();
    let (access, refresh_token) = login(&sim);
    let revoke = |token: &str, client_id: &str| {
        post(
            &sim,
            "/sharing/rest/oauth2/revokeToken",
            &[("f", "json"), ("auth_token", token), ("token_type_hint", "refresh_token"), ("client_id", client_id)],
        )
        .json()
    };
    assert_eq!(revoke(&refresh_token, CONFIDENTIAL_APP), json!({"success": true}));
    assert_eq!(whoami(&sim, &access)["username"], "demo", "only the issuing app may revoke");
    assert_eq!(revoke(&refresh_token, PUBLIC_APP), json!({"success": true}));
    assert_eq!(whoami(&sim, &access)["error"]["code"], 498);
    assert_eq!(error_code(&refresh(&sim, "refresh_token", &refresh_token, &[])), 498);
    assert_eq!(revoke("no-such-token", PUBLIC_APP), json!({"success": true}));
    assert_eq!(sim.count("revokeToken"), 3);
    assert_eq!(sim.live_tokens(), LiveTokens { access_tokens: 0, refresh_tokens: 0, codes: 0 });
}

#[test]
fn token_errors_have_the_arcgis_shapes() {
    let sim = start();
    let (access, _) = login(&sim);
    let missing = get(&sim, "/sharing/rest/community/self", &[("f", "json")]);
    assert_eq!(missing.status, 200);
    assert_eq!(
        missing.json(),
        json!({"error": {"code": 499, "message": "Token Required", "messageCode": "GWM_0003", "details": ["Token Required"]}})
    );
    let bogus = get(&sim, "/sharing/rest/community/self", &[("f", "json"), ("token", "bogus")]);
    assert_eq!(bogus.status, 200);
    assert_eq!(bogus.json(), json!({"error": {"code": 498, "message": "Invalid token.", "details": []}}));

    for header in ["Authorization", "X-Esri-Authorization"] {
        let with_header = agent()
            .get(&url(&sim, "/sharing/rest/community/self", &[("f", "json")]))
            .header(header, &format!("Bearer {access}"))
            .call();
        assert_eq!(finish(with_header).json()["username"], "demo", "{header}");
    }
    let user_portal = get(&sim, "/sharing/rest/portals/self", &[("f", "json"), ("token", &access)]).json();
    assert_eq!(user_portal["user"]["username"], "demo");
    assert_eq!(user_portal["isPortal"], true);
    assert_eq!(user_portal["maxTokenExpirationMinutes"], -1);
    assert_eq!(user_portal["appInfo"]["appId"], PUBLIC_APP);
    let anonymous = get(&sim, "/sharing/rest/portals/self", &[("f", "json")]).json();
    assert_eq!(anonymous["id"], "sandboxorg");
    assert!(anonymous.get("user").is_none());
    assert_eq!(error_code(&get(&sim, "/sharing/rest/portals/self", &[("f", "json"), ("token", "bogus")]).json()), 498);
}

#[test]
fn the_clock_expires_access_then_refresh_tokens() {
    let sim = start();
    let code = authorize_oob(&sim, &[("expiration", "60")]);
    let tokens = redeem(&sim, &code, &[]);
    assert_eq!(tokens["refresh_token_expires_in"], 3600);
    let (access, refresh_token) =
        (tokens["access_token"].as_str().expect("a"), tokens["refresh_token"].as_str().expect("r"));
    sim.advance_clock(1799);
    assert_eq!(whoami(&sim, access)["username"], "demo");
    sim.advance_clock(2);
    assert_eq!(error_code(&whoami(&sim, access)), 498);
    assert!(refresh(&sim, "refresh_token", refresh_token, &[])["access_token"].is_string());
    sim.advance_clock(1800);
    assert_eq!(error_code(&refresh(&sim, "refresh_token", refresh_token, &[])), 498);

    let code = authorize_oob(&sim, &[("expiration", "-1")]);
    assert_eq!(redeem(&sim, &code, &[])["refresh_token_expires_in"], 129_600 * 60);
    let code = authorize_oob(&sim, &[("expiration", "999999")]);
    assert_eq!(redeem(&sim, &code, &[])["refresh_token_expires_in"], 129_600 * 60);
}

#[test]
fn json_endpoints_answer_html_without_f_json() {
    let sim = start();
    let (access, _) = login(&sim);
    let html = post(
        &sim,
        "/sharing/rest/oauth2/token",
        &[("grant_type", "client_credentials"), ("client_id", CONFIDENTIAL_APP), ("client_secret", APP_SECRET)],
    );
    assert_eq!(html.status, 200);
    assert!(html.content_type.starts_with("text/html") && !html.body.contains("access_token"));
    let html = get(&sim, "/sharing/rest/community/self", &[("token", &access)]);
    assert!(html.content_type.starts_with("text/html") && !html.body.contains("\"username\""));
    let pretty = get(&sim, "/sharing/rest/community/self", &[("f", "pjson"), ("token", &access)]);
    assert!(pretty.body.contains("\n  \"username\": \"demo\""));
    let missing = get(&sim, "/sharing/rest/nothing/here", &[("f", "json")]);
    assert_eq!(missing.status, 404);
    assert!(missing.content_type.starts_with("text/html"));
    assert_eq!(sim.count("token"), 2);
}

#[test]
fn info_and_generate_token() {
    let sim = start();
    let info = post(&sim, "/sharing/rest/info", &[("f", "json")]).json();
    assert_eq!(info["owningSystemUrl"], sim.base_url());
    assert_eq!(info["authInfo"]["tokenServicesUrl"], format!("{}/sharing/rest/generateToken", sim.base_url()));
    assert_eq!(info["authInfo"]["isTokenBasedSecurity"], true);
    assert_eq!(get(&sim, "/sharing/rest/info", &[("f", "json")]).json()["owningSystemUrl"], sim.base_url());

    let generated = post(
        &sim,
        "/sharing/rest/generateToken",
        &[("f", "json"), ("username", "demo"), ("password", "demo-password"), ("expiration", "10")],
    )
    .json();
    assert_eq!(generated["expires"], (sim.now() + 600) * 1000);
    assert_eq!(whoami(&sim, generated["token"].as_str().expect("token"))["username"], "demo");
    let bad =
        post(&sim, "/sharing/rest/generateToken", &[("f", "json"), ("username", "demo"), ("password", "x")]).json();
    assert_eq!(
        bad,
        json!({"error": {"code": 400, "message": "Unable to generate token.", "details": ["Invalid username or password."]}})
    );
    assert_eq!(sim.count("info"), 2);
    assert_eq!(sim.count("generateToken"), 2);
}

#[test]
fn request_log_and_status_hooks_for_client_tests() {
    let sim = start();
    let admin_post = |action: &str, body: &str| {
        finish(
            agent()
                .post(&format!("{}/{action}", sim.admin_url()))
                .header("Content-Type", "application/json")
                .send(body),
        )
    };
    let admin_get = |action: &str| finish(agent().get(&format!("{}/{action}", sim.admin_url())).call());
    let (access, _refresh) = login(&sim);
    assert_eq!(whoami(&sim, &access)["username"], "demo");
    get(&sim, "/sharing/rest/portals/self", &[("f", "json")]);
    admin_post("advance_clock", r#"{"seconds": 1801}"#);
    assert_eq!(error_code(&whoami(&sim, &access)), 498);
    let log = admin_get("requests").json();
    let auth_of = |path: &str| -> Vec<String> {
        log.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["path"] == path)
            .map(|e| e["auth"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(auth_of("/portal/sharing/rest/community/self"), ["valid", "invalid"]);
    assert_eq!(auth_of("/portal/sharing/rest/portals/self"), ["none"]);
    assert!(!log.to_string().contains(&access), "the log holds no token");

    // An "Invalid token" can also come as HTTP 401 or 498; other answers keep HTTP 200.
    assert_eq!(admin_post("config", r#"{"invalid_token_status": 401}"#).json()["invalid_token_status"], 401);
    let rejected =
        finish(agent().get(&url(&sim, "/sharing/rest/community/self", &[("f", "json"), ("token", &access)])).call());
    assert_eq!((rejected.status, rejected.json()["error"]["code"].as_i64()), (401, Some(498)));
    assert_eq!(get(&sim, "/sharing/rest/portals/self", &[("f", "json")]).status, 200);
    assert_eq!(admin_post("config", r#"{"invalid_token_status": 302}"#).status, 400);

    let teapot =
        finish(agent().get(&format!("{}/__test/status/403", sim.admin_url().trim_end_matches("/__admin"))).call());
    assert_eq!((teapot.status, teapot.json()["error"]["code"].as_i64()), (403, Some(403)));
    assert_eq!(admin_get("counts").json()["test/status:403"], 1);
    admin_post("reset_counts", "");
    assert_eq!(admin_get("requests").json(), json!([]));
}

#[test]
fn admin_endpoints_drive_the_simulator() {
    let sim = start();
    let admin_post = |action: &str, body: &str| {
        finish(
            agent()
                .post(&format!("{}/{action}", sim.admin_url()))
                .header("Content-Type", "application/json")
                .send(body),
        )
    };
    let admin_get = |action: &str| finish(agent().get(&format!("{}/{action}", sim.admin_url())).call());

    let config = admin_post("config", r#"{"access_token_lifetime": 60, "include_refresh_expiry": false}"#).json();
    assert_eq!(config["access_token_lifetime"], 60);
    let (access, refresh_token) = login(&sim);
    let code = authorize_oob(&sim, &[]);
    let tokens = redeem(&sim, &code, &[]);
    assert_eq!(tokens["expires_in"], 60);
    assert!(tokens.get("refresh_token_expires_in").is_none(), "pre-10.9.1 portal");
    assert_eq!(admin_post("config", r#"{"access_token_lifetime": 5, "refresh_token_lifetime": "soon"}"#).status, 400);
    assert_eq!(admin_get("config").json()["access_token_lifetime"], 60, "a rejected update changes nothing");

    let state = admin_get("state").json();
    assert_eq!((state["live_access_tokens"].as_u64(), state["live_refresh_tokens"].as_u64()), (Some(2), Some(2)));
    assert!(!state.to_string().contains(&access), "no token values");
    assert_eq!(admin_post("advance_clock", r#"{"seconds": 61}"#).json()["clock_offset_seconds"], 61);
    assert_eq!(error_code(&whoami(&sim, &access)), 498);
    assert_eq!(admin_get("state").json()["live_access_tokens"], 0);

    assert_eq!(admin_post("revoke_all", "").json()["revoked_refresh_tokens"], 2);
    assert_eq!(error_code(&refresh(&sim, "refresh_token", &refresh_token, &[])), 498);

    let counts = admin_get("counts").json();
    assert_eq!(counts["token:authorization_code"], 2);
    assert_eq!(counts["token:refresh_token"], 1);
    assert_eq!(counts["authorize"], 2);
    admin_post("reset_counts", "");
    assert_eq!(admin_get("counts").json(), json!({}));

    admin_post("config", r#"{"deny_next_authorize": true}"#);
    let denied = get(
        &sim,
        "/sharing/rest/oauth2/authorize",
        &[("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
    );
    assert!(denied.body.contains("access_denied") && !denied.body.contains("SUCCESS"));
    assert_eq!(admin_get("nope").status, 404);
    assert_eq!(admin_post("advance_clock", "{oops").status, 400);
}

#[test]
fn bad_input_never_kills_the_server() {
    let sim = start();
    let raw = [
        "/sharing/rest/oauth2/token?f=json&grant_type=%FF%FE&client_id=%",
        "/sharing/rest/oauth2/authorize?client_id=age-oauth-sandbox&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2F%0D%0ASet-Cookie%3Ax",
        "/sharing/rest/community/self?f=json&token=%00",
    ];
    for path in raw {
        let response = finish(agent().get(&format!("{}{path}", sim.base_url())).call());
        assert!(response.status == 200 || response.status == 400, "{path}: {}", response.status);
        assert!(response.location.is_none());
    }
    let garbage = finish(
        agent()
            .post(&format!("{}/sharing/rest/oauth2/token", sim.base_url()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(&[0xffu8, 0x00, b'&', b'='][..]),
    );
    assert_eq!(garbage.status, 200);
    let bearer = finish(
        agent()
            .get(&url(&sim, "/sharing/rest/community/self", &[("f", "json")]))
            .header("Authorization", "Bearer")
            .call(),
    );
    assert_eq!(error_code(&bearer.json()), 499);
    assert_eq!(get(&sim, "/sharing/rest/info", &[("f", "json")]).status, 200, "still serving");
}

#[test]
fn shutdown_frees_the_port() {
    let sim = start();
    let port = sim.port();
    assert_eq!(get(&sim, "/sharing/rest/info", &[("f", "json")]).status, 200);
    sim.shutdown();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let again = PortalSim::start(&format!("127.0.0.1:{port}"), PortalConfig::default()).expect("port is free again");
    assert_eq!(again.port(), port);
    let any = PortalSim::start("0.0.0.0:0", PortalConfig::default()).expect("wildcard bind");
    assert_eq!(any.base_url(), format!("http://127.0.0.1:{}/portal", any.port()));
    assert_eq!(get(&any, "/sharing/rest/info", &[("f", "json")]).json()["owningSystemUrl"], any.base_url());
}

/// The ACS of a SAML organisation: only an answer to its own request, with that request's RelayState, from its
/// IdP, for its audience, completes the pending sign-in, and only once.
#[test]
fn the_saml_acs_checks_in_response_to_relay_state_and_issuer_and_answers_once() {
    use super::super::saml::{Assertion, AuthnRequest};
    let sim = start();
    let idp = PortalSamlIdp {
        name: "IdP".into(),
        sso_url: "http://127.0.0.1:9/sso".into(),
        issuer: "idp".into(),
        signing_cert: None,
    };
    sim.update_config(|c| c.saml = Some(idp));
    let page = get(
        &sim,
        "/sharing/rest/oauth2/authorize",
        &[("client_id", PUBLIC_APP), ("response_type", "code"), ("redirect_uri", OOB_REDIRECT_URI)],
    );
    assert!(page.body.contains("\"idpName\":\"IdP\""), "a SAML org shows its sign-in page: {}", page.body);
    let start = page.body.find("\"oauth_state\":\"").unwrap() + 15;
    let oauth_state = page.body[start..start + page.body[start..].find('"').unwrap()].to_string();
    let to_idp = get(&sim, "/sharing/rest/oauth2/saml/authorize", &[("oauth_state", &oauth_state)]);
    let location = to_idp.location.expect("302 to the IdP");
    let query: HashMap<String, String> =
        form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes()).into_owned().collect();
    assert_eq!(query["RelayState"], oauth_state);
    let request = AuthnRequest::from_redirect(&query["SAMLRequest"]).expect("a deflated AuthnRequest");
    let (audience, acs) = sim.saml_sp();
    assert_eq!((request.issuer.as_str(), request.acs_url.as_str()), (audience.as_str(), acs.as_str()));
    let response = |issuer: &str, in_response_to: &str| {
        let assertion = Assertion {
            issuer,
            audience: &audience,
            recipient: &acs,
            in_response_to,
            name_id: "carol",
            now: sim.now(),
            lifetime: 300,
        };
        assertion.response_base64("_r", "_a")
    };
    let acs_path = "/sharing/rest/oauth2/saml/signin";
    let refused = |answer: &Http| {
        answer.status == 200 && !answer.body.contains("SUCCESS code=") && answer.body.contains("errorMessage")
    };
    assert!(refused(&post(
        &sim,
        acs_path,
        &[("SAMLResponse", &response("idp", "_other")), ("RelayState", &oauth_state)]
    )));
    assert!(refused(&post(
        &sim,
        acs_path,
        &[("SAMLResponse", &response("idp", &request.id)), ("RelayState", "another")]
    )));
    assert!(refused(&post(
        &sim,
        acs_path,
        &[("SAMLResponse", &response("evil", &request.id)), ("RelayState", &oauth_state)]
    )));
    // A refused RelayState burnt the request (each request is answered once): start again.
    let to_idp = get(&sim, "/sharing/rest/oauth2/saml/authorize", &[("oauth_state", &oauth_state)]);
    let query: HashMap<String, String> =
        form_urlencoded::parse(to_idp.location.unwrap().split_once('?').unwrap().1.as_bytes()).into_owned().collect();
    let request = AuthnRequest::from_redirect(&query["SAMLRequest"]).unwrap();
    let good = [("SAMLResponse", response("idp", &request.id)), ("RelayState", oauth_state.clone())];
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let code = code_from_approval_page(&post(&sim, acs_path, &good));
    assert!(!code.is_empty());
    assert!(refused(&post(&sim, acs_path, &good)), "a replayed response is refused");
}
