//! Issue 11, cargo feature `reqwest`: `AsyncClient` under tokio, with the blocking client's rules:
//! one refresh and one retry on 401 and on ArcGIS 498 in an HTTP 200 body, no loop, 403 not retried,
//! concurrent requests sharing one refresh; credential work on the blocking pool.

use crate::common::*;
use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
use age_oauth::{AsyncClient, CacheStore, ClientError, Paths};

fn runtime() -> tokio::runtime::Runtime {
    // One executor thread: credential work that blocked it would stall every request.
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn async_client(home: &Home, profile: &str) -> AsyncClient {
    AsyncClient::new(library_client(home, profile, &[])).unwrap()
}

#[test]
fn a_static_key_401_is_retried_once_then_login_required_and_403_is_not_retried() {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let home = Home::new();
    add_with_sets(&home, "ci", "api-key", &[("api_url", &sim.site()), ("key_source", "static"), ("api_version", "7")]);
    assert_eq!(code(&login_with_key(&home, "ci", &sim.issue_key(3600), &[])), 0);
    let client = async_client(&home, "ci");
    let url = sim.account_url();
    runtime().block_on(async {
        assert_eq!(client.get(&url).await.unwrap().status, 200);
        assert_eq!(sim.seen("/api/account").pop().unwrap().header("api-version"), Some("7"));
        sim.faults(|f| f.reject_next = 1);
        assert_eq!(client.get(&url).await.unwrap().status, 200, "one refresh, one retry");
        assert_eq!(sim.count("account:401"), 1);
        sim.faults(|f| f.reject_next = 100);
        assert!(matches!(client.get(&url).await, Err(ClientError::LoginRequired { .. })));
        assert_eq!(sim.count("account:401"), 3, "the request and one retry: no loop");
        sim.faults(|f| (f.reject_next, f.forbid_account) = (0, true));
        assert!(matches!(client.get(&url).await, Err(ClientError::Forbidden { status: 403, .. })));
        assert_eq!(sim.count("account:403"), 1, "403 is not retried");
        let attacker = Attacker::start();
        assert!(matches!(client.get(&attacker.url("/x")).await, Err(ClientError::Setup(_))));
        assert!(attacker.received().is_empty());
    });
}

/// ArcGIS app tokens: eight concurrent requests share one token request; after the portal's clock
/// passes the token's end, its HTTP 200 `{"error":{"code":498}}` makes the client refresh once.
#[test]
fn arcgis_498_in_a_200_body_refreshes_once_and_concurrent_requests_share_it() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    let client = async_client(&home, "app");
    let url = format!("{}/sharing/rest/portals/self?f=json", sim.base_url());
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move { client.get(&url).await }));
        }
        for task in tasks {
            let answer = task.await.unwrap().unwrap();
            assert!(!String::from_utf8_lossy(&answer.body).contains("\"error\""));
        }
        assert_eq!(sim.count("token:client_credentials"), 1, "one token for eight requests");
        sim.advance_clock(7 * 24 * 3600);
        let answer = client.get(&url).await.unwrap();
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("\"error\""),
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(sim.count("token:client_credentials"), 2, "one refresh after the 498");
    });
}

/// Credential work runs on tokio's blocking pool, never on the executor: on a one-thread runtime,
/// while the first request's token fetch waits for the profile's lock (held here, as another process
/// refreshing would), this task still runs. Had the fetch blocked the executor thread, nothing below
/// `yield_now` would run before the fetch gave up or got the lock.
#[test]
fn credential_work_waits_on_the_blocking_pool_not_the_executor() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    let client = async_client(&home, "app");
    let url = format!("{}/sharing/rest/portals/self?f=json", sim.base_url());
    let lock = CacheStore::with_own_identity(Paths::under(home.state())).lock("app").unwrap();
    runtime().block_on(async {
        let task = tokio::spawn(async move { client.get(&url).await });
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        assert!(!task.is_finished(), "the request ended while its profile's lock was held");
        assert_eq!(sim.count("token:client_credentials"), 0, "a token was fetched under another's lock");
        drop(lock);
        let answer = task.await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&answer.body).contains("\"error\""));
        assert_eq!(sim.count("token:client_credentials"), 1);
    });
}
