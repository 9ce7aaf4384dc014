//! Browser and device sign-in through the real binary: against the real, independent oidc-provider
//! (tests/peers/oidc), and esri-pkce against the Portal simulator, with a scripted browser.

mod common;
use age_oauth::sandbox::{OidcSim, OidcSimConfig};
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Output, Stdio};

/// A home whose `browser` follows the sign-in redirects to age-oauth's listener.
fn home_with_browser() -> (Home, String) {
    let home = Home::new();
    let browser = browser_script(home.path()).display().to_string();
    (home, browser)
}

fn add(home: &Home, profile: &str, provider: &str, fields: &[&str]) {
    let mut args = vec!["profile", "add", profile, "--provider", provider];
    args.extend_from_slice(fields);
    let out = home.run(&args);
    assert_eq!(code(&out), 0, "profile add: {}", text(&out.stderr));
}

fn login_with_browser(home: &Home, browser: &str, profile: &str) -> Output {
    home.cmd().env("AGE_OAUTH_BROWSER", browser).args(["login", "--profile", profile]).output().unwrap()
}

#[test]
fn real_oidc_browser_login_refresh_rotation_whoami_logout() {
    let issuer = real_oidc_issuer();
    let (home, browser) = home_with_browser();
    add(
        &home,
        "real",
        "oidc",
        &[
            "--set",
            &format!("issuer={issuer}"),
            "--client-id",
            REAL_CLIENT,
            "--set",
            "scopes=openid profile email offline_access",
        ],
    );
    let out =
        home.cmd().env("AGE_OAUTH_BROWSER", &browser).args(["login", "--profile", "real", "-vvv"]).output().unwrap();
    let err = text(&out.stderr);
    let mut all_stderr = err.clone();
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains(&format!("{issuer}/auth?")), "the URL is printed: {err}");
    assert!(err.contains("prompt=consent"), "offline_access asks for consent: {err}");
    assert!(err.contains("Token is for user: alice"), "{err}");
    let first = home.load_cache("real").tokens.unwrap();
    assert_eq!(first.provider_state["id_token_claims"]["iss"], issuer);
    let mut refresh_tokens = vec![first.refresh_token.clone().expect("a refresh token (offline_access + consent)")];

    let out = home.run(&["whoami", "--profile", "real", "--json"]);
    let who: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(who["username"], "alice", "{}", text(&out.stderr));
    assert_eq!(who["details"]["source"], "userinfo");

    // Two refreshes in a row: oidc-provider rotates public clients' refresh tokens and revokes the
    // whole grant if an old one is ever sent again — so the grant still working at the end shows
    // that age-oauth never reused one.
    for round in 1..=2 {
        let out = home.run(&["token", "--profile", "real", "--min-ttl", "999999", "-vvv"]);
        assert_eq!(code(&out), 0, "round {round}: {}", text(&out.stderr));
        all_stderr.push_str(&text(&out.stderr));
        let rt = home.load_cache("real").tokens.unwrap().refresh_token.unwrap();
        assert!(!refresh_tokens.contains(&rt), "round {round}: the refresh token rotated");
        refresh_tokens.push(rt);
    }
    let out = home.run(&["whoami", "--profile", "real"]);
    assert_eq!(text(&out.stdout), "alice\n", "{}", text(&out.stderr));

    let last = home.load_cache("real").tokens.unwrap();
    let out = home.run(&["logout", "--profile", "real", "-vvv"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("revoked the refresh token at"), "{err}");
    all_stderr.push_str(&err);
    assert_eq!(code(&home.run(&["token", "--profile", "real"])), 3);

    // Nothing secret on stderr, even at -vvv.
    for secret in refresh_tokens.iter().chain([&first.access_token, &last.access_token]) {
        assert!(!all_stderr.contains(secret.expose()), "a token leaked to stderr");
    }
}

#[test]
fn real_oidc_confidential_client_sends_its_secret_by_http_basic() {
    let issuer = real_oidc_issuer();
    let (home, browser) = home_with_browser();
    add(&home, "conf", "oidc", &["--set", &format!("issuer={issuer}"), "--client-id", REAL_CONFIDENTIAL_CLIENT]);
    let out = home
        .cmd()
        .env("AGE_OAUTH_BROWSER", &browser)
        .env("AGE_OAUTH_CLIENT_SECRET", "not-the-secret")
        .args(["login", "--profile", "conf"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("invalid_client"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("not-the-secret"));
    let out = home
        .cmd()
        .env("AGE_OAUTH_BROWSER", &browser)
        .env("AGE_OAUTH_CLIENT_SECRET", REAL_CONFIDENTIAL_SECRET)
        .args(["login", "--profile", "conf"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Token is for user: alice"), "{}", text(&out.stderr));
}

#[test]
fn real_oidc_no_browser_takes_the_pasted_url() {
    let issuer = real_oidc_issuer();
    let home = Home::new();
    add(&home, "paste", "oidc", &["--set", &format!("issuer={issuer}"), "--client-id", REAL_CLIENT]);
    let mut child = home
        .cmd()
        .args(["login", "--profile", "paste", "--no-browser"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(url) = line.split_whitespace().find(|w| w.contains("code_challenge=")) {
            let redirect = url.split("redirect_uri=").nth(1).unwrap().split('&').next().unwrap();
            let redirect = form_urlencoded::parse(format!("r={redirect}").as_bytes()).next().unwrap().1.into_owned();
            let landed = browse(url, Some(&redirect));
            assert!(landed.contains("code=") && landed.contains("iss="), "{landed}");
            writeln!(stdin, "{landed}").unwrap();
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{seen}");
    assert!(seen.contains("Token is for user: alice"), "{seen}");
    assert!(home.load_cache("paste").tokens.unwrap().refresh_token.is_none(), "no offline_access, no refresh token");
}

#[test]
fn esri_pkce_browser_login_through_the_binary() {
    let sim = start_sim();
    let (home, browser) = home_with_browser();
    add(&home, "desk", "esri-pkce", &["--portal", &sim.base_url(), "--client-id", "age-oauth-sandbox"]);
    let out = login_with_browser(&home, &browser, "desk");
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("oauth2/authorize?") && err.contains("code_challenge_method=S256"), "{err}");
    assert!(err.contains("Token is for user: demo"), "{err}");
    assert_eq!(text(&home.run(&["whoami", "--profile", "desk"]).stdout), "demo\n");
    assert_eq!(sim.count("token:authorization_code"), 1);
}

#[test]
fn two_logins_for_two_profiles_at_once_through_the_binary() {
    let sim = start_sim();
    let (home, browser) = home_with_browser();
    for p in ["one", "two"] {
        add(&home, p, "esri-pkce", &["--portal", &sim.base_url(), "--client-id", "age-oauth-sandbox"]);
    }
    let children: Vec<_> = ["one", "two"]
        .iter()
        .map(|p| {
            home.cmd()
                .env("AGE_OAUTH_BROWSER", &browser)
                .args(["login", "--profile", p])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    }
    let (one, two) = (home.load_cache("one").tokens.unwrap(), home.load_cache("two").tokens.unwrap());
    assert_ne!(one.access_token, two.access_token);
    assert_ne!(one.provider_state["redirect_uri"], two.provider_state["redirect_uri"], "two listeners, two ports");
    assert_eq!(sim.count("token:authorization_code"), 2);
}

#[test]
fn oidc_device_flow_through_the_binary() {
    let sim = OidcSim::start(OidcSimConfig::default()).unwrap();
    sim.faults(|f| (f.device_interval, f.device_pending_polls) = (Some(1), 1));
    let home = Home::new();
    add(
        &home,
        "tv",
        "oidc",
        &["--set", &format!("issuer={}", sim.issuer()), "--client-id", &sim.client_id(), "--set", "flow=device"],
    );
    let out = home.run(&["login", "--profile", "tv"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains(&format!("open {}/device and enter the code WDJB-MJHT", sim.issuer())), "{err}");
    assert!(err.contains("Token is for user: alice"), "{err}");
    assert!(!err.contains('\r'), "no spinner when stderr is not a terminal");
    assert_eq!(sim.count("token:device_code"), 2);

    sim.faults(|f| f.device_deny = true);
    let out = home.run(&["login", "--profile", "tv", "--force"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the sign-in was denied"), "{}", text(&out.stderr));
}
