//! Issue 11: the library's blocking `Client` against the simulators: the credential in the provider's
//! style, one refresh and one retry on HTTP 401 and on ArcGIS 498 inside an HTTP 200 body, no loop when
//! the server keeps refusing, 403 never retried, typed errors, and `AGE_OAUTH_API_KEY` honoured.

use crate::common::*;
use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
use age_oauth::{Client, ClientError};

fn client(home: &Home, profile: &str) -> Client {
    library_client(home, profile, &[])
}

fn static_key_profile(sim: &AnacondaSim) -> (Home, String) {
    let home = Home::new();
    add_with_sets(
        &home,
        "ci",
        "api-key",
        &[("api_url", &sim.site()), ("key_source", "static"), ("user_agent", "client-test/1")],
    );
    let key = sim.issue_key(3600);
    let out = login_with_key(&home, "ci", &key, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    (home, key)
}

/// A minted key whose login left a refresh token (browser, offline_access): a 401 from the API makes
/// the client refresh the login once, mint a new key, and retry once; the retry succeeds.
#[test]
fn a_401_refreshes_once_mints_again_and_retries() {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let home = Home::new();
    #[rustfmt::skip]
    add_with_sets(&home, "conda", "api-key", &[
        ("api_url", &sim.site()), ("issuer", &sim.issuer()), ("discovery_url", &sim.discovery_url()),
        ("client_id", &sim.client_id()), ("mint_url", &sim.mint_urls().join(" ")), ("flow", "browser"),
        ("scopes", "openid offline_access"), ("api_version", "3"),
    ]);
    let browser = browser_script(home.path());
    let out = home.cmd().env("AGE_OAUTH_BROWSER", &browser).args(["login", "--profile", "conda"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let client = client(&home, "conda");
    let response = client.get(&sim.account_url()).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(sim.seen("/api/account").pop().unwrap().header("api-version"), Some("3"), "the profile's headers");
    sim.faults(|f| f.reject_next = 1);
    let response = client.get(&sim.account_url()).unwrap();
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!((sim.count("account:401"), sim.count("account:200")), (1, 2));
    assert_eq!(sim.count("token:refresh_token"), 1, "one refresh of the login");
    assert_eq!(sim.count("minted"), 2, "one new key");
    // The new key is cached for the command line too.
    let out = home.run(&["token", "--profile", "conda"]);
    assert!(sim.key_is_live(text(&out.stdout).trim()));
}

/// A server that keeps refusing: one refresh, one retry, then `LoginRequired` (no loop). 403: never retried.
#[test]
fn no_loop_on_401_and_403_is_not_retried() {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let (home, _) = static_key_profile(&sim);
    let client = client(&home, "ci");
    assert_eq!(client.get(&sim.account_url()).unwrap().status, 200);
    assert_eq!(sim.seen("/api/account").pop().unwrap().header("user-agent"), Some("client-test/1"));
    sim.faults(|f| f.reject_next = 100);
    match client.get(&sim.account_url()) {
        Err(ClientError::LoginRequired { profile, .. }) => assert_eq!(profile, "ci"),
        other => panic!("expected LoginRequired, got {other:?}"),
    }
    assert_eq!(sim.count("account:401"), 2, "the request and one retry");
    sim.faults(|f| (f.reject_next, f.forbid_account) = (0, true));
    match client.get(&sim.account_url()) {
        Err(ClientError::Forbidden { status: 403, message, .. }) => {
            assert!(message.contains("auth_required"), "{message}")
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert_eq!(sim.count("account:403"), 1, "403 is not retried");
    // Another host is refused before anything is sent; a dead one is a transport error.
    let attacker = Attacker::start();
    assert!(matches!(client.get(&attacker.url("/x")), Err(ClientError::Setup(_))));
    assert!(attacker.received().is_empty());
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dead_client = client.allow_other_host(true);
    assert!(matches!(dead_client.get(&format!("http://127.0.0.1:{dead}/x")), Err(ClientError::Transport(_))));
}

/// ArcGIS: the app token expired at the portal (the client's clock still thinks it valid); the portal
/// answers HTTP 200 with `{"error":{"code":498}}`; the client refreshes once and retries.
#[test]
fn arcgis_498_in_an_http_200_body_refreshes_once_and_retries() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    let client = client(&home, "app");
    let url = format!("{}/sharing/rest/portals/self?f=json", sim.base_url());
    let first = client.get(&url).unwrap();
    assert!(!String::from_utf8_lossy(&first.body).contains("\"error\""), "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(sim.count("token:client_credentials"), 1);
    sim.advance_clock(7 * 24 * 3600);
    let second = client.get(&url).unwrap();
    assert_eq!(second.status, 200);
    assert!(!String::from_utf8_lossy(&second.body).contains("\"error\""), "{}", String::from_utf8_lossy(&second.body));
    assert_eq!(sim.count("token:client_credentials"), 2, "one refresh after the 498");
}

/// `AGE_OAUTH_API_KEY` in the client's environment: sent, no cache read or written; rejected → LoginRequired.
#[test]
fn the_client_sends_the_environment_key_and_never_refreshes_it() {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let home = Home::new();
    add_with_sets(&home, "ci", "api-key", &[("api_url", &sim.site()), ("key_source", "static")]);
    let key = sim.issue_key(600);
    let client = library_client(&home, "ci", &[("AGE_OAUTH_API_KEY", &key)]);
    assert_eq!(client.get(&sim.account_url()).unwrap().status, 200);
    assert!(!home.cache_file("ci").exists(), "no cache written");
    sim.faults(|f| f.reject_next = 1);
    assert!(matches!(client.get(&sim.account_url()), Err(ClientError::LoginRequired { .. })));
    assert_eq!(sim.count("account:401"), 1, "an environment key is not retried");
}
