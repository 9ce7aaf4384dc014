//! `okta-esri` through the real binary: the Portal simulator federated (SAML) with the Okta simulator;
//! password + push (number challenge, rejected, timed out), TOTP, SMS, the states that need a browser, Okta
//! errors, 429, single-use session tokens, the ACS check, refresh, renewal through the Okta session, step-up.

use crate::common::*;
use age_oauth::sandbox::okta::totp_code;
use age_oauth::sandbox::{
    OktaConfig, OktaFactor, OktaSamlApp, OktaSim, OktaUserState, PortalSamlIdp, PortalSim, PushAnswer, PushScript,
};
use std::io::{BufRead, BufReader, Write};
use std::process::{Output, Stdio};

const PASSWORD: &str = "okta-password";
const SANDBOX_APP: &str = "age-oauth-sandbox";

pub struct Org {
    pub portal: PortalSim,
    pub okta: OktaSim,
}

/// A portal federated with an Okta org (configured by `change`).
pub fn start_org(change: impl FnOnce(&mut OktaConfig)) -> Org {
    let portal = start_sim();
    let mut config = OktaConfig::default();
    change(&mut config);
    let okta = OktaSim::start("127.0.0.1:0", config).expect("okta simulator");
    let (audience, acs_url) = portal.saml_sp();
    okta.set_app(OktaSamlApp { audience, acs_url });
    let idp = PortalSamlIdp { name: "Okta".into(), sso_url: okta.sso_url(), issuer: okta.issuer(), signing_cert: None };
    portal.update_config(|c| c.saml = Some(idp));
    Org { portal, okta }
}

fn push_user(login: &str, answer: PushAnswer, number_challenge: Option<u32>) -> impl FnOnce(&mut OktaConfig) {
    let login = login.to_string();
    move |c: &mut OktaConfig| {
        let mut user = c.users[0].clone();
        user.login = login;
        user.factors = vec![OktaFactor::Push(PushScript { answer, polls: 1, number_challenge })];
        c.users.push(user);
    }
}

pub fn add_okta_profile(home: &Home, org: &Org, name: &str, username: &str, extra: &[&str]) {
    let sets = [
        format!("portal={}", org.portal.base_url()),
        format!("client_id={SANDBOX_APP}"),
        format!("okta={}", org.okta.base_url()),
        format!("username={username}"),
    ];
    let mut args = vec!["profile", "add", name, "--provider", "okta-esri"];
    for set in sets.iter().map(String::as_str).chain(extra.iter().copied()) {
        args.extend(["--set", set]);
    }
    let out = home.run(&args);
    assert_eq!(code(&out), 0, "profile add: {}", text(&out.stderr));
}

fn login_with(home: &Home, profile: &str, env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = home.cmd();
    cmd.args(["login", "--profile", profile, "-vvv"]).env("AGE_OAUTH_PASSWORD", PASSWORD);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn push_with_number_challenge_then_token_whoami_and_refresh_without_okta() {
    let org = start_org(push_user("number@example.test", PushAnswer::Approve, Some(42)));
    let home = Home::new();
    add_okta_profile(&home, &org, "gis", "number@example.test", &[]);
    let out = login_with(&home, "gis", &[], "");
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("Waiting for Okta Verify push"), "{stderr}");
    assert_eq!(stderr.matches("tap 42").count(), 1, "the number is shown once: {stderr}");
    assert_eq!(org.okta.count("poll"), 1);
    assert_eq!(org.okta.count("sessionCookieRedirect"), 1, "the session token is used once");
    assert_eq!(org.portal.count("saml/signin"), 1);

    // The token works at the portal and names the Okta user.
    let out = home.run(&["whoami", "--profile", "gis"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("number@example.test"), "{}", text(&out.stdout));

    // An expired access token is refreshed at the portal alone: Okta is not asked.
    let okta_before = org.okta.counts();
    let out =
        home.cmd().args(["token", "--profile", "gis", "-vv"]).env("AGE_OAUTH_CLOCK_OFFSET", "3600").output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(org.portal.count("token:refresh_token"), 1, "{:?} {}", org.portal.counts(), text(&out.stderr));
    assert_eq!(org.okta.counts(), okta_before, "refresh never touches Okta");

    // Nothing secret in any file or in the -vvv log.
    let entry = home.load_cache("gis");
    let tokens = entry.tokens.unwrap();
    let sid = tokens.derived["okta:sid"].token.expose().to_string();
    let dt = tokens.derived["okta:DT"].token.expose().to_string();
    for secret in [PASSWORD, &sid, &dt, tokens.access_token.expose(), tokens.refresh_token.as_ref().unwrap().expose()] {
        assert!(!stderr.contains(secret), "secret in the -vvv log");
        for (path, bytes) in home.all_files() {
            assert!(!contains(&bytes, secret), "secret in {}", path.display());
        }
    }
    assert!(!stderr.contains("SAMLResponse="), "{stderr}");

    // The refresh token rotates on demand (exchange_refresh_token), still without Okta.
    let out = home.run(&["token", "--profile", "gis", "--rotate-refresh-token"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(org.portal.count("token:exchange_refresh_token"), 1);
    assert_eq!(org.okta.counts(), okta_before);

    // Okta remembered the device (DT cookie kept encrypted): a new sign-in asks no MFA.
    let out =
        home.cmd().args(["login", "--profile", "gis", "--force"]).env("AGE_OAUTH_PASSWORD", PASSWORD).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("Okta Verify"), "{}", text(&out.stderr));
    assert_eq!((org.okta.count("verify"), org.okta.count("authn")), (2, 2), "no second push");
}

#[test]
fn push_rejected_timed_out_or_unanswered_are_one_line_failures() {
    let org = start_org(|c| {
        push_user("reject@example.test", PushAnswer::Reject, None)(c);
        push_user("timeout@example.test", PushAnswer::Timeout, None)(c);
        push_user("never@example.test", PushAnswer::Never, None)(c);
    });
    let home = Home::new();
    add_okta_profile(&home, &org, "reject", "reject@example.test", &[]);
    add_okta_profile(&home, &org, "timeout", "timeout@example.test", &[]);
    add_okta_profile(&home, &org, "never", "never@example.test", &["mfa_timeout=2"]);
    for (profile, needle) in
        [("reject", "rejected on the phone"), ("timeout", "timed out"), ("never", "within 2 s (mfa_timeout)")]
    {
        let out = login_with(&home, profile, &[], "");
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 4, "{profile}: {stderr}");
        let error = stderr.lines().filter(|l| l.starts_with("error")).collect::<Vec<_>>();
        assert_eq!(error.len(), 1, "{profile}: one error line: {stderr}");
        assert!(error[0].contains(needle), "{profile}: {stderr}");
        assert!(!home.cache_file(profile).exists());
    }
    assert!(org.okta.count("cancel") >= 1, "a failed transaction is cancelled");
}

#[test]
fn totp_wrong_then_right_and_sms() {
    let org = start_org(|_| {});
    let home = Home::new();
    add_okta_profile(&home, &org, "totp", "totp@example.test", &["mfa=totp"]);
    let right = totp_code(age_oauth::sandbox::okta::SANDBOX_TOTP_SEED, org.okta.now(), 6);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    let out = login_with(&home, "totp", &[("AGE_OAUTH_MFA_CODE", wrong)], &format!("{right}\n"));
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("that code is not right"), "{stderr}");
    assert_eq!(org.okta.count("verify:wrong_code"), 1);
    assert!(!stderr.contains(&right), "the code is not echoed");

    // SMS: Okta texts a code, the person types it.
    add_okta_profile(&home, &org, "sms", "sms@example.test", &[]);
    let mut cmd = home.cmd();
    cmd.args(["login", "--profile", "sms"]).env("AGE_OAUTH_PASSWORD", PASSWORD);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("sent a code by SMS") {
            writeln!(stdin, "{}", org.okta.last_sms("sms@example.test").unwrap()).unwrap();
            break;
        }
        line.clear();
    }
    drop(stdin);
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    assert!(child.wait().unwrap().success(), "{seen}");
    assert_eq!(org.okta.count("sms:sent"), 1);
}

#[test]
fn locked_expired_wrong_password_and_no_password() {
    let org = start_org(|c| {
        for (login, state) in [
            ("locked@example.test", OktaUserState::LockedOut),
            ("expired@example.test", OktaUserState::PasswordExpired),
            ("enroll@example.test", OktaUserState::MustEnroll),
        ] {
            let mut user = c.users[3].clone();
            user.login = login.into();
            user.state = state;
            c.users.push(user);
        }
    });
    let home = Home::new();
    add_okta_profile(&home, &org, "locked", "locked@example.test", &[]);
    add_okta_profile(&home, &org, "expired", "expired@example.test", &[]);
    add_okta_profile(&home, &org, "enroll", "enroll@example.test", &[]);
    add_okta_profile(&home, &org, "wrong", "nomfa@example.test", &[]);
    let cases = [
        ("locked", PASSWORD, "locked: unlock it"),
        ("expired", PASSWORD, "password has expired: change it in a browser"),
        ("enroll", PASSWORD, "enroll Okta Verify in a browser (MFA_ENROLL)"),
        ("wrong", "not-the-password", "Authentication failed (E0000004)"),
    ];
    for (profile, password, needle) in cases {
        let out =
            home.cmd().args(["login", "--profile", profile]).env("AGE_OAUTH_PASSWORD", password).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(code(&out), 4, "{profile}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{profile}: one line: {stderr}");
        assert!(stderr.contains(needle), "{profile}: {stderr}");
        assert!(!stderr.contains(password), "{profile}");
    }
    // No password and nobody at a terminal: exit 2, naming the variable.
    let out = home.run(&["login", "--profile", "wrong"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("AGE_OAUTH_PASSWORD"), "{}", text(&out.stderr));
}

#[test]
fn rate_limited_then_succeeds_and_session_tokens_are_single_use() {
    let org = start_org(|_| {});
    org.okta.rate_limit_next(1);
    let home = Home::new();
    add_okta_profile(&home, &org, "gis", "nomfa@example.test", &[]);
    let out = login_with(&home, "gis", &[], "");
    let stderr = text(&out.stderr);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("rate limit"), "{stderr}");
    assert_eq!((org.okta.count("authn:429"), org.okta.count("authn")), (1, 2));
    assert_eq!(org.okta.count("sessionCookieRedirect"), 1);

    // The simulator holds Okta's rule: a session token opens one session, never two.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let answer: serde_json::Value = agent
        .post(&format!("{}/api/v1/authn", org.okta.base_url()))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"username": "nomfa@example.test", "password": PASSWORD}).to_string())
        .unwrap()
        .body_mut()
        .read_to_string()
        .map(|body| serde_json::from_str(&body).unwrap())
        .unwrap();
    let token = answer["sessionToken"].as_str().unwrap();
    let redirect = format!(
        "{}/login/sessionCookieRedirect?token={token}&redirectUrl={}/login/login.htm",
        org.okta.base_url(),
        org.okta.base_url()
    );
    assert_eq!(agent.get(&redirect).call().unwrap().status(), 302);
    assert_eq!(agent.get(&redirect).call().unwrap().status(), 403, "second use refused");
}

#[test]
fn a_form_posting_elsewhere_is_refused_and_nothing_is_sent() {
    let attacker = Attacker::start();
    let org = start_org(|c| c.form_action_override = Some(attacker.url("/portal/sharing/rest/oauth2/saml/signin")));
    let home = Home::new();
    add_okta_profile(&home, &org, "gis", "nomfa@example.test", &[]);
    let out = login_with(&home, "gis", &[], "");
    let stderr = text(&out.stderr);
    assert_ne!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("instead of the portal's ACS"), "{stderr}");
    assert!(attacker.received().is_empty(), "{:?}", attacker.received());
    assert_eq!(org.portal.count("saml/signin"), 0);
}

#[test]
fn a_dead_refresh_token_renews_through_the_okta_session_else_exit_3() {
    let org = start_org(|_| {});
    let home = Home::new();
    // A registered redirect URI: the code is read from the portal's 302 to it, never followed.
    add_okta_profile(&home, &org, "gis", "nomfa@example.test", &["redirect_uri=http://127.0.0.1:9/callback"]);
    assert_eq!(code(&login_with(&home, "gis", &[], "")), 0);
    let authn_before = org.okta.count("authn");

    // The portal forgets every token: the refresh token is dead, the Okta session is not.
    org.portal.revoke_all();
    let out =
        home.cmd().args(["token", "--profile", "gis", "-v"]).env("AGE_OAUTH_CLOCK_OFFSET", "3600").output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("renewing through the Okta session"), "{}", text(&out.stderr));
    assert_eq!(org.okta.count("authn"), authn_before, "no password sign-in");
    assert_eq!(org.portal.count("saml/signin"), 2);

    // Both dead: exit 3 with the login hint, and still no password sign-in.
    org.portal.revoke_all();
    org.okta.end_sessions();
    // (a password at hand changes nothing: `token` never starts a password or MFA sign-in)
    let out = home
        .cmd()
        .args(["token", "--profile", "gis"])
        .env("AGE_OAUTH_CLOCK_OFFSET", "7200")
        .env("AGE_OAUTH_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("age-oauth login --profile gis"), "{}", text(&out.stderr));
    assert_eq!(org.okta.count("authn"), authn_before);
}

#[test]
fn logout_revokes_at_the_portal_and_signs_the_okta_session_out() {
    let org = start_org(|_| {});
    let home = Home::new();
    add_okta_profile(&home, &org, "gis", "nomfa@example.test", &[]);
    assert_eq!(code(&login_with(&home, "gis", &[], "")), 0);
    assert_eq!(org.okta.live_sessions(), 1);
    let out = home.run(&["logout", "--profile", "gis"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("The Okta session was signed out"), "{}", text(&out.stderr));
    assert_eq!(org.okta.live_sessions(), 0);
    assert_eq!(org.portal.live_tokens().refresh_tokens, 0);
}

#[test]
fn step_up_falls_back_to_the_browser() {
    let org = start_org(|c| c.step_up = true);
    let home = Home::new();
    add_okta_profile(&home, &org, "gis", "nomfa@example.test", &[]);
    let mut cmd = home.cmd();
    cmd.args(["login", "--profile", "gis", "--no-browser"]).env("AGE_OAUTH_PASSWORD", PASSWORD);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut seen, mut line) = (String::new(), String::new());
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("http://").filter(|_| line.contains("oauth2/authorize")) {
            finish_in_browser(&format!("http://{url}"));
            break;
        }
        line.clear();
    }
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "{seen}");
    assert!(seen.contains("step-up"), "{seen}");
    assert_eq!(org.okta.count("sso:step_up"), 1);
    let out = home.run(&["whoami", "--profile", "gis"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

/// The person in the browser: the portal's sign-in page, its form (as a built-in account here), then the
/// redirect to age-oauth's loopback listener.
fn finish_in_browser(url: &str) {
    let agent: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().into();
    let page = agent.get(url).call().unwrap().body_mut().read_to_string().unwrap();
    let start = page.find("\"oauth_state\":\"").unwrap() + 15;
    let state = &page[start..start + page[start..].find('"').unwrap()];
    let signin = url.split("/sharing/").next().unwrap().to_string() + "/sharing/rest/oauth2/signin";
    let answer = agent
        .post(&signin)
        .send_form([("oauth_state", state), ("username", "alice"), ("password", "alice-password")])
        .unwrap();
    let location = answer.headers().get("location").unwrap().to_str().unwrap().to_string();
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    agent.get(&location).call().unwrap();
}

/// The real SimpleSAMLphp (tests/peers/saml) as the portal's IdP, started for this portal's SP.
fn start_simplesamlphp(portal: &PortalSim) -> StartedPeer {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::Builder::new().prefix("age-oauth-saml-").tempdir().unwrap().keep();
    let (entity, acs) = portal.saml_sp();
    let out = std::process::Command::new("bash")
        .arg(root.join("tests/peers/saml/start.sh"))
        .args(["--sp-entity-id", &entity, "--acs-url", &acs])
        .env("PEER_DIR", &dir)
        .env("WATCH_PID", std::process::id().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "SimpleSAMLphp did not start (run tests/setup/saml.sh): {}", text(&out.stderr));
    let mut vars = std::collections::HashMap::new();
    for line in text(&out.stdout).lines() {
        if let Some((k, v)) = line.split_once('=') {
            vars.insert(k.to_string(), v.to_string());
        }
    }
    StartedPeer { dir, vars }
}

#[test]
fn idp_form_signs_in_through_the_real_simplesamlphp_and_the_portal_verifies_its_signature() {
    let portal = start_sim();
    let peer = start_simplesamlphp(&portal);
    let idp = PortalSamlIdp {
        name: "SimpleSAMLphp".into(),
        sso_url: peer.var("SAML_SSO_URL").into(),
        issuer: peer.var("SAML_IDP_ENTITY_ID").into(),
        signing_cert: Some(peer.var("SAML_IDP_CERT").into()),
    };
    portal.update_config(|c| c.saml = Some(idp));
    let home = Home::new();
    let sets = [
        format!("portal={}", portal.base_url()),
        format!("client_id={SANDBOX_APP}"),
        format!("okta={}", peer.var("SAML_BASE_URL")),
        format!("username={}", peer.var("SAML_USERNAME")),
        "idp=form".to_string(),
    ];
    let mut args = vec!["profile", "add", "shib", "--provider", "okta-esri"];
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    assert_eq!(code(&home.run(&args)), 0);

    // A wrong password: the IdP's form comes back, a one-line error, nothing cached.
    let out = home.cmd().args(["login", "--profile", "shib"]).env("AGE_OAUTH_PASSWORD", "wrong").output().unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("refused the username or password"), "{}", text(&out.stderr));
    assert!(!home.cache_file("shib").exists());

    let password = peer.var("SAML_PASSWORD");
    let out =
        home.cmd().args(["login", "--profile", "shib", "-vvv"]).env("AGE_OAUTH_PASSWORD", password).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(password));
    assert_eq!(portal.count("saml/signin:signature_verified"), 1, "{:?}", portal.counts());
    let out = home.run(&["whoami", "--profile", "shib"]);
    assert_eq!(text(&out.stdout), "alice\n", "{}", text(&out.stderr));
}
