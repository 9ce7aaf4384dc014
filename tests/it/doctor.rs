//! `age-oauth doctor` through the binary, against the simulators: a healthy set of profiles (text and
//! JSON), a server clock that is off, an expired certificate, an unknown CA, an unreachable host, a
//! working directory that points a profile elsewhere, and an app whose redirect is not registered.

use crate::common::*;
use age_oauth::sandbox::{PortalConfig, PortalSim, SimApp, TlsFront, OOB_REDIRECT_URI};
use serde_json::Value;

fn https_front(sim: &PortalSim, ca: &TestCa, expired: bool) -> TlsFront {
    let (chain, key) = ca.server_cert(expired);
    TlsFront::start(format!("127.0.0.1:{}", sim.port()).parse().unwrap(), &chain, &key).unwrap()
}

/// Runs `doctor` with `args` and `SSL_CERT_FILE` (when given): (exit code, stdout, stderr).
fn doctor(home: &Home, ca_file: Option<&std::path::Path>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = home.cmd();
    cmd.env_remove("SSL_CERT_DIR").env_remove("SSL_CERT_FILE");
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    if let Some(f) = ca_file {
        cmd.env("SSL_CERT_FILE", f);
    }
    let out = cmd.arg("doctor").args(args).output().unwrap();
    (code(&out), text(&out.stdout), text(&out.stderr))
}

fn parse_rows(json: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(json).expect("doctor --json is JSON").as_array().expect("an array").clone()
}

/// The row whose `check` starts with `prefix` (and of `profile`, when given).
fn row<'a>(rows: &'a [Value], profile: Option<&str>, prefix: &str) -> &'a Value {
    rows.iter()
        .find(|r| {
            r["check"].as_str().unwrap().starts_with(prefix) && profile.is_none_or(|p| r["profile"].as_str() == Some(p))
        })
        .unwrap_or_else(|| panic!("no `{prefix}` row for {profile:?} in {rows:#?}"))
}

/// The text line of a check: `STATUS  CHECK ... DETAIL`.
fn line<'a>(text: &'a str, status: &str, check_prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(status) && l[4..].trim_start().starts_with(check_prefix))
        .unwrap_or_else(|| panic!("no `{status} {check_prefix}` line in:\n{text}"))
}

#[test]
fn a_healthy_set_of_profiles_is_all_ok_in_text_and_json_and_no_secret_or_credential_leaves() {
    let ca = TestCa::new("Example Corp Internal CA");
    let https_sim = start_sim();
    let front = https_front(&https_sim, &ca, false);
    let home = Home::new();
    let ca_file = ca.write(home.path(), "corp-ca.pem");
    add_app_profile(&home, "app", &format!("{}/portal", front.origin()), APP, APP_SECRET);
    let out = home.cmd().env("SSL_CERT_FILE", &ca_file).args(["token", "--profile", "app"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let app_token = text(&out.stdout).trim().to_string();
    // A person's profile with a refresh token, over plain http to a loopback portal.
    let sim = start_sim();
    add_profile(&home, &sim, "person");
    let out = login(&home, "person", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let tokens = home.load_cache("person").tokens.unwrap();
    let secrets = [
        APP_SECRET.to_string(),
        app_token,
        tokens.access_token.expose().to_string(),
        tokens.refresh_token.unwrap().expose().to_string(),
    ];
    let (count_https, count_http) = (https_sim.counts(), sim.counts());

    let (status, out, err) = doctor(&home, Some(&ca_file), &["-vvv"]);
    assert_eq!(status, 0, "{out}\n{err}");
    assert!(!out.contains("\nfail "), "{out}");
    let tls = line(&out, "ok", "tls https://127.0.0.1:");
    assert!(tls.contains("SSL_CERT_FILE") && tls.contains("expires in") && tls.contains("issued by"), "{tls}");
    assert!(tls.contains("valid for the host name"), "{tls}");
    for check in ["config layers", "cache key", "config  ", "cache  ", "binding", "proxy", "dns", "tcp", "clock"] {
        line(&out, "ok", check);
    }
    assert!(line(&out, "ok", "config layers").contains("user file"), "{out}");
    assert!(line(&out, "ok", "config  ").contains("config.toml:"), "values name their file and line: {out}");
    assert!(line(&out, "ok", "proxy").contains("direct"), "{out}");
    assert!(line(&out, "ok", "sharing/rest/info").contains("ArcGIS 11.3"), "{out}");
    assert!(line(&out, "ok", "app redirect").contains(OOB_REDIRECT_URI), "{out}");
    line(&out, "ok", "token  ");
    line(&out, "ok", "refresh token");
    assert!(out.contains("profile app:") && out.contains("profile person:"), "every profile is checked: {out}");

    let (status, json, err) = doctor(&home, Some(&ca_file), &["--json", "-vvv"]);
    assert_eq!(status, 0, "{json}\n{err}");
    let rows = parse_rows(&json);
    for r in &rows {
        assert!(r["check"].is_string() && r["detail"].is_string(), "{r}");
        assert!(r["status"] == "ok" || r["status"] == "warn", "{r}");
        assert!(r.get("hint").is_some(), "{r}");
        assert_eq!(r["status"] == "ok", r["hint"].is_null(), "a hint for every non-ok line: {r}");
    }
    assert!(row(&rows, Some("app"), "tls").to_string().contains("SSL_CERT_FILE"));
    assert_eq!(row(&rows, Some("app"), "token")["status"], "ok");
    assert_eq!(row(&rows, Some("person"), "refresh token")["status"], "ok");
    assert_eq!(row(&rows, Some("person"), "app redirect")["status"], "ok");
    // One profile asked for: no `profile` field.
    let (status, json, _) = doctor(&home, Some(&ca_file), &["--json", "--profile", "person"]);
    assert_eq!(status, 0);
    assert!(parse_rows(&json).iter().all(|r| r.get("profile").is_none()), "{json}");

    for secret in &secrets {
        for shown in [&out, &err, &json] {
            assert!(!shown.contains(secret.as_str()), "a secret was printed: {shown}");
        }
    }
    // Nothing authenticated was asked: no token request, no identity lookup, no revocation.
    for (before, sim) in [(count_https, &https_sim), (count_http, &sim)] {
        for key in ["token", "community/self", "generateToken", "revokeToken", "portals/self"] {
            assert_eq!(sim.count(key), before.get(key).copied().unwrap_or(0), "doctor called {key}");
        }
    }
}

/// The number before the `s` in "the server's clock is 120s ahead of ours" (the `Date` header has
/// one-second resolution, so a second either way).
fn seconds_in(detail: &str) -> i64 {
    let after = &detail[detail.find("clock is ").unwrap() + 9..];
    after[..after.find('s').unwrap()].parse().unwrap()
}

#[test]
fn a_server_clock_off_by_two_minutes_warns_and_by_ten_fails() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    assert_eq!(code(&home.run(&["token", "--profile", "app"])), 0);

    sim.skew_date_header(120);
    let (status, out, _) = doctor(&home, None, &[]);
    assert_eq!(status, 0, "a warning is not a failure: {out}");
    let clock = line(&out, "warn", "clock");
    assert!(clock.contains("ahead of ours") && (118..=122).contains(&seconds_in(clock)), "{out}");
    assert!(out.contains("NTP"), "{out}");
    assert!(
        line(&out, "ok", "token").contains("s off: count on that much less"),
        "token life is read against it: {out}"
    );

    sim.skew_date_header(-600);
    let (status, json, _) = doctor(&home, None, &["--json"]);
    assert_eq!(status, 1, "{json}");
    let rows = parse_rows(&json);
    let clock = row(&rows, None, "clock");
    assert_eq!(clock["status"], "fail", "{clock}");
    let detail = clock["detail"].as_str().unwrap();
    assert!(detail.contains("behind ours") && (598..=602).contains(&seconds_in(detail)), "{clock}");
    assert!(clock["hint"].as_str().unwrap().contains("clock"), "{clock}");
}

#[test]
fn an_expired_certificate_fails_with_its_age_and_the_next_step() {
    let ca = TestCa::new("Example Corp Internal CA");
    let sim = start_sim();
    let front = https_front(&sim, &ca, true);
    let home = Home::new();
    let ca_file = ca.write(home.path(), "corp-ca.pem");
    add_app_profile(&home, "app", &format!("{}/portal", front.origin()), APP, APP_SECRET);
    let (status, out, _) = doctor(&home, Some(&ca_file), &[]);
    assert_eq!(status, 1, "{out}");
    let tls = line(&out, "fail", "tls https://127.0.0.1:");
    assert!(tls.contains("expired") && tls.contains("days ago"), "{tls}");
    assert!(out.contains("next: the server's certificate has expired"), "{out}");
    let (status, json, _) = doctor(&home, Some(&ca_file), &["--json"]);
    assert_eq!(status, 1);
    assert_eq!(row(&parse_rows(&json), None, "tls")["status"], "fail");
}

#[test]
fn an_unknown_ca_fails_and_names_the_ways_to_trust_it() {
    let ca = TestCa::new("Example Corp Internal CA");
    let other = TestCa::new("Someone Else CA");
    let sim = start_sim();
    let front = https_front(&sim, &ca, false);
    let home = Home::new();
    let other_file = other.write(home.path(), "other.pem");
    add_app_profile(&home, "app", &format!("{}/portal", front.origin()), APP, APP_SECRET);
    let (status, json, _) = doctor(&home, Some(&other_file), &["--json"]);
    assert_eq!(status, 1, "{json}");
    let rows = parse_rows(&json);
    let tls = row(&rows, None, "tls");
    assert_eq!(tls["status"], "fail", "{tls}");
    let detail = tls["detail"].as_str().unwrap();
    assert!(detail.contains("UnknownIssuer") && detail.contains("SSL_CERT_FILE"), "{detail}");
    assert!(tls["hint"].as_str().unwrap().contains("verify_ssl"), "{tls}");
}

#[test]
fn an_unreachable_host_fails_at_tcp_and_nothing_further_is_tried() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let home = Home::new();
    add_app_profile(&home, "app", &format!("http://127.0.0.1:{port}/portal"), APP, APP_SECRET);
    let (status, out, _) = doctor(&home, None, &[]);
    assert_eq!(status, 1, "{out}");
    assert!(line(&out, "fail", "tcp").contains(&format!("127.0.0.1:{port}")), "{out}");
    assert!(out.contains("next: is the server (or proxy) running"), "{out}");
    assert!(!out.contains("clock http"), "no clock check without a connection: {out}");
    assert!(!out.contains(APP_SECRET));
}

#[test]
fn a_working_directory_pointing_a_profile_elsewhere_fails_the_binding_and_is_never_contacted() {
    let sim = start_sim();
    let attacker = Attacker::start();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    assert_eq!(code(&home.run(&["token", "--profile", "app"])), 0);
    std::fs::write(
        home.path().join("work").join("age-oauth.toml"),
        format!("[profiles.app]\nprovider = \"esri-app\"\nportal = \"{}\"\n", attacker.url("/portal")),
    )
    .unwrap();
    let (status, json, _) = doctor(&home, None, &["--json"]);
    assert_eq!(status, 1, "{json}");
    let rows = parse_rows(&json);
    let binding = row(&rows, None, "binding");
    assert_eq!(binding["status"], "fail", "{binding}");
    assert!(binding["detail"].as_str().unwrap().contains("probes only the bound origins"), "{binding}");
    assert!(binding["hint"].as_str().unwrap().contains("login --profile app --force"), "{binding}");
    assert!(row(&rows, None, "tcp")["check"].as_str().unwrap().contains(&format!("{}", sim.port())));
    assert!(attacker.received().is_empty(), "doctor went to the new host: {:?}", attacker.received());
}

#[test]
fn an_app_without_the_redirect_a_provider_uses_fails_the_redirect_check() {
    let mut config = PortalConfig::default();
    config.apps.push(SimApp {
        client_id: "web-only".into(),
        client_secret: None,
        redirect_uris: vec!["https://apps.example.com/callback".into()],
        name: "Web app".into(),
    });
    let sim = PortalSim::start("127.0.0.1:0", config).unwrap();
    let home = Home::new();
    for (name, provider, client) in [
        ("oob", "esri-oob", "web-only"),
        ("pkce", "esri-pkce", "web-only"),
        ("pkce-ok", "esri-pkce", "age-oauth-sandbox"),
        ("unknown", "esri-oob", "no-such-app"),
    ] {
        let portal = sim.base_url();
        let out =
            home.run(&["profile", "add", name, "--provider", provider, "--portal", &portal, "--client-id", client]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    }
    let (status, json, _) = doctor(&home, None, &["--json"]);
    assert_eq!(status, 1, "{json}");
    let rows = parse_rows(&json);
    // No secret and no token stored yet: no key exists, and that is not a failure.
    let key = row(&rows, None, "cache key");
    assert_eq!(key["status"], "ok", "{key}");
    assert!(key["detail"].as_str().unwrap().contains("not created yet"), "{key}");
    let redirect = |p| row(&rows, Some(p), "app redirect").clone();
    assert_eq!(redirect("oob")["status"], "fail");
    assert!(redirect("oob")["detail"].as_str().unwrap().contains("refuses this redirect URI"));
    assert_eq!(redirect("pkce")["status"], "fail");
    assert!(redirect("pkce")["detail"].as_str().unwrap().contains("http://127.0.0.1:"));
    assert_eq!(redirect("pkce-ok")["status"], "ok", "{}", redirect("pkce-ok"));
    assert_eq!(redirect("unknown")["status"], "fail");
    assert!(redirect("unknown")["detail"].as_str().unwrap().contains("does not know this client_id"));
    assert_eq!(sim.count("token"), 0, "no code was ever redeemed");
    assert_eq!(sim.live_tokens().codes, 0, "the probe starts no sign-in and makes no code");
}
