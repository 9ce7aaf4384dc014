//! The `token --json` contract the Python package reads (header, service, TLS, epoch expiry) and
//! `token --force-refresh`, which the Python auth objects run when a server rejects a token.

mod common;
use common::*;
use serde_json::Value;

fn token_json(home: &Home, extra: &[&str]) -> Value {
    let out = home.run(&[&["token", "--profile", "prod", "--json"], extra].concat());
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn token_json_tells_where_and_how_the_token_travels() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let out = home.run(&["profile", "add", "prod", "--set", "referer=https://apps.example.test"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));

    let v = token_json(&home, &[]);
    assert_eq!(v["header_name"], "X-Esri-Authorization");
    assert_eq!(v["service_url"], sim.base_url());
    assert_eq!(v["referer"], "https://apps.example.test");
    assert_eq!(v["verify_ssl"], true);
    let unix = v["expires_at_unix"].as_u64().expect("epoch seconds");
    assert!(unix > sim.now() + 1_000 && unix <= sim.now() + 1_800, "{unix}");
}

#[test]
fn force_refresh_gets_a_new_token_even_from_a_valid_cache() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let first = token_json(&home, &[])["access_token"].as_str().unwrap().to_string();
    assert_eq!(sim.count("token:refresh_token"), 0);

    let forced = token_json(&home, &["--force-refresh"])["access_token"].as_str().unwrap().to_string();
    assert_ne!(forced, first);
    assert_eq!(sim.count("token:refresh_token"), 1);
    assert_eq!(token_json(&home, &[])["access_token"], forced.as_str(), "the refreshed token is cached");
    assert_eq!(sim.count("token:refresh_token"), 1);

    let out = home.run(&["token", "--profile", "prod", "--force-refresh", "--min-ttl", "5"]);
    assert_eq!(code(&out), 2, "the two flags contradict each other");
    sim.revoke_all();
    let out = home.run(&["token", "--profile", "prod", "--force-refresh"]);
    assert_eq!(code(&out), 3, "a dead login is exit 3: {}", text(&out.stderr));
}
