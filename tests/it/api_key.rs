//! Issue 11: `AGE_OAUTH_API_KEY` for every provider, and the `api-key` provider against the
//! Anaconda-style simulator (discovery on another host name of the same site, mint with a 404
//! fallback, static keys from stdin, JWT expiry, delete on logout, headers reaching the server).

use crate::common::*;
use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
use serde_json::Value;
use std::process::Output;

/// A JWT-shaped key whose `exp` is `exp` (unsigned: nobody verifies a key's signature but its issuer).
fn jwt_with_exp(exp: u64) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!("{}.{}.c2ln", b64(r#"{"alg":"HS256","typ":"JWT"}"#), b64(&format!(r#"{{"sub":"ci-bot","exp":{exp}}}"#)))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn run_env(home: &Home, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = home.cmd();
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

/// No cache file, and no file anywhere under the home holding `secret`.
fn assert_no_cache_and_no_copy(home: &Home, secret: &str, case: &str) {
    let cache_dir = home.state().join("cache");
    let caches: Vec<_> = std::fs::read_dir(&cache_dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    assert!(caches.iter().all(|p| p.extension().is_none_or(|e| e != "age")), "{case}: a cache was written: {caches:?}");
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, secret), "{case}: {} holds the key in plaintext", path.display());
    }
}

/// `AGE_OAUTH_API_KEY` wins for an api-key, an ArcGIS and an oidc profile: `token` prints it, `exec`
/// hands it over, `request` sends it in the provider's style, no cache is read or written, and no
/// server is asked for a token (all three profiles point at a logging attacker, which sees only the
/// one `request` each). `status` and `profile show` name the environment; empty means unset.
#[test]
fn the_environment_key_wins_for_every_provider_without_cache_or_network() {
    let attacker = Attacker::start();
    let home = Home::new();
    add_with_sets(&home, "ak", "api-key", &[("api_url", &attacker.url("")), ("key_source", "static")]);
    add_with_sets(&home, "gis", "esri-oob", &[("portal", &attacker.url("/portal")), ("client_id", "cid")]);
    add_with_sets(&home, "sso", "oidc", &[("issuer", &attacker.url("")), ("client_id", "cid")]);
    let key = "AAPTxy-env-key-0123456789";
    let with_key = [("AGE_OAUTH_API_KEY", key)];
    let cases = [
        ("ak", "Authorization: Bearer", attacker.url("/api/account")),
        ("gis", "X-Esri-Authorization: Bearer", attacker.url("/portal/sharing/rest/portals/self?f=json")),
        ("sso", "Authorization: Bearer", attacker.url("/userinfo")),
    ];
    for (profile, style, url) in &cases {
        let at_start = attacker.received().len();
        let out = run_env(&home, &with_key, &["token", "--profile", profile]);
        assert_eq!((code(&out), text(&out.stdout).trim()), (0, key), "{profile}: {}", text(&out.stderr));
        let out = run_env(&home, &with_key, &["token", "--profile", profile, "--format", "header"]);
        assert_eq!(text(&out.stdout).trim(), format!("{style} {key}"), "{profile}");
        let out = run_env(&home, &with_key, &["token", "--profile", profile, "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["credential_source"], "environment (AGE_OAUTH_API_KEY)", "{profile}: {v}");
        let out =
            run_env(&home, &with_key, &["exec", "--profile", profile, "--", "sh", "-c", "echo \"$AGE_OAUTH_TOKEN\""]);
        assert_eq!((code(&out), text(&out.stdout).trim()), (0, key), "{profile}: {}", text(&out.stderr));
        assert_eq!(attacker.received().len(), at_start, "{profile}: getting the key made a network call");
        let before = at_start;
        let out = run_env(&home, &with_key, &["request", "--profile", profile, url]);
        assert_eq!(code(&out), 0, "{profile}: {}", text(&out.stderr));
        let seen = attacker.received();
        assert_eq!(seen.len(), before + 1, "{profile}: one request, nothing else: {seen:?}");
        let (name, scheme) = style.split_once(": ").unwrap();
        let wanted = format!("\"{name}: {scheme} {key}\"").to_ascii_lowercase();
        assert!(seen[before].to_ascii_lowercase().contains(&wanted), "{profile}: {seen:?}");

        let out = run_env(&home, &with_key, &["status", "--json", "--profile", profile]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = v["profiles"].as_array().unwrap().iter().find(|r| r["name"] == *profile).unwrap().clone();
        assert_eq!(row["credential_source"], "environment (AGE_OAUTH_API_KEY)", "{profile}: {v}");
        let others = v["profiles"].as_array().unwrap().iter().filter(|r| r["name"] != *profile);
        assert!(others.clone().all(|r| r.get("credential_source").is_none()), "only the selected profile: {v}");
        let out = run_env(&home, &with_key, &["profile", "show", profile, "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["fields"]["credential"]["source"], "environment (AGE_OAUTH_API_KEY)", "{profile}: {v}");
        assert!(!contains(&out.stdout, key), "{profile}: profile show printed the key");
    }
    // whoami says where the credential came from (the api-key profile has no whoami_url: no network).
    let out = run_env(&home, &with_key, &["whoami", "--profile", "ak", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["details"]["credential_source"], "environment (AGE_OAUTH_API_KEY)", "{}", text(&out.stderr));
    let out = run_env(&home, &with_key, &["whoami", "--profile", "ak"]);
    assert!(text(&out.stderr).contains("credential from the environment"), "{}", text(&out.stderr));
    assert_no_cache_and_no_copy(&home, key, "after every command with AGE_OAUTH_API_KEY");
    // Empty is unset: the profiles are simply not logged in.
    for (profile, _, _) in &cases {
        let out = run_env(&home, &[("AGE_OAUTH_API_KEY", "")], &["token", "--profile", profile]);
        assert_eq!(code(&out), 3, "{profile}: {}", text(&out.stderr));
    }
    // A JWT whose `exp` has passed is refused (exit 3), one still valid carries its expiry.
    let expired = jwt_with_exp(now() - 60);
    let out = run_env(&home, &[("AGE_OAUTH_API_KEY", &expired)], &["token", "--profile", "ak"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("AGE_OAUTH_API_KEY expired"), "{}", text(&out.stderr));
    let valid = jwt_with_exp(now() + 3600);
    let out = run_env(&home, &[("AGE_OAUTH_API_KEY", &valid)], &["token", "--profile", "gis", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["expires_at_unix"], now_plus_tolerance(&v), "{v}");
    assert_eq!(attacker.received().len(), cases.len(), "only the three requests ever reached a server");
    // No cache is read: a garbage cache file does not matter with the key set, and is left as it was.
    let cache = home.cache_file("gis");
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::write(&cache, b"not an age file").unwrap();
    let out = run_env(&home, &[], &["token", "--profile", "gis"]);
    assert!(text(&out.stderr).contains("cannot be read"), "without the key it is read: {}", text(&out.stderr));
    let out = run_env(&home, &with_key, &["token", "--profile", "gis"]);
    assert_eq!((code(&out), text(&out.stdout).trim()), (0, key), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&cache).unwrap(), b"not an age file");
}

fn now_plus_tolerance(v: &Value) -> Value {
    // The key's own `exp` (not a lifetime computed here): read it back from the JWT.
    let exp = v["expires_at_unix"].as_u64().unwrap();
    assert!(exp > now() + 3000 && exp <= now() + 3600, "{v}");
    Value::from(exp)
}

/// An api-key profile against the simulator: discovery on 127.0.0.1 naming an issuer on localhost.
fn mint_profile(home: &Home, sim: &AnacondaSim, name: &str, extra: &[(&str, &str)]) {
    let mint = sim.mint_urls().join(" ");
    let mut sets = vec![
        ("api_url", sim.site()),
        ("issuer", sim.issuer()),
        ("discovery_url", sim.discovery_url()),
        ("client_id", sim.client_id()),
        ("mint_url", mint),
        ("key_scopes", "cloud:read cloud:write".into()),
        ("whoami_url", sim.account_url()),
    ];
    sets.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let sets: Vec<(&str, &str)> = sets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    add_with_sets(home, name, "api-key", &sets);
}

fn device_sim() -> AnacondaSim {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    sim.oidc_faults(|f| (f.device_interval, f.device_pending_polls) = (Some(1), 1));
    sim
}

/// Device login, then the mint: the first mint URL answers 404, the second mints; the key is a JWT whose
/// `exp` is the expiry; user agent, API version and extra headers reach the server (the environment's
/// JSON overriding the profile's table); whoami reads the account; logout deletes the key at the service.
/// No file and no `-vvv` line holds the key or the login's tokens.
#[test]
fn mint_after_device_login_with_fallback_headers_whoami_and_logout() {
    let sim = device_sim();
    sim.faults(|f| f.first_mint_path_404 = true);
    let home = Home::new();
    let extra = [("user_agent", "ci-runner/7"), ("api_version", "2024-06-01"), ("extra_headers", "{X-Org = \"acme\"}")];
    mint_profile(&home, &sim, "conda", &extra);
    let out = run_env(&home, &[], &["-vvv", "login", "--profile", "conda"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("enter the code"), "the device prompt was shown: {}", text(&out.stderr));
    let mut logs = text(&out.stderr);
    let access_tokens = sim.live_access_tokens();
    assert_eq!(access_tokens.len(), 1, "one login, one access token");
    assert_eq!((sim.count("mint:/api/auth/api-keys"), sim.count("mint:/api/iam/api-keys")), (1, 1));
    assert_eq!(sim.count("minted"), 1);
    let mint = sim.seen("/api/iam/api-keys").pop().unwrap();
    let body: Value = serde_json::from_str(&mint.body).unwrap();
    assert_eq!(body["scopes"], serde_json::json!(["cloud:read", "cloud:write"]), "{body}");
    assert!(body["tags"][0].as_str().unwrap().starts_with("age-oauth/v"), "{body}");
    assert_eq!((mint.header("user-agent"), mint.header("api-version")), (Some("ci-runner/7"), Some("2024-06-01")));

    let out = home.run(&["token", "--profile", "conda", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = v["access_token"].as_str().unwrap().to_string();
    assert!(sim.key_is_live(&key), "the cached key is the minted one");
    let exp = v["expires_at_unix"].as_u64().unwrap();
    assert!(exp > now() + 364 * 86_400 && exp <= now() + 366 * 86_400, "a year, from the JWT: {v}");
    assert_eq!(v["credential_source"], "cache");

    let out = run_env(
        &home,
        &[("AGE_OAUTH_EXTRA_HEADERS", r#"{"X-Org": "from-env"}"#)],
        &["-vvv", "request", "--profile", "conda", &sim.account_url()],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    logs.push_str(&text(&out.stderr));
    assert!(text(&out.stdout).contains("\"username\":\"alice\""), "{}", text(&out.stdout));
    let seen = sim.seen("/api/account").pop().unwrap();
    assert_eq!(seen.header("x-org"), Some("from-env"), "AGE_OAUTH_EXTRA_HEADERS overrides: {seen:?}");
    assert_eq!((seen.header("user-agent"), seen.header("api-version")), (Some("ci-runner/7"), Some("2024-06-01")));
    let out = home.run(&["whoami", "--profile", "conda"]);
    assert_eq!((code(&out), text(&out.stdout).trim()), (0, "alice"), "{}", text(&out.stderr));

    // A valid key: login does nothing (no mint) unless --force.
    let out = home.run(&["login", "--profile", "conda"]);
    assert!(text(&out.stderr).contains("Already logged in"), "{}", text(&out.stderr));
    assert_eq!(sim.count("minted"), 1);

    logs.push_str(&text(&out.stderr));
    let out = run_env(&home, &[], &["-vvv", "logout", "--profile", "conda"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    logs.push_str(&text(&out.stderr));
    assert!(text(&out.stderr).contains("deleted the API key"), "{}", text(&out.stderr));
    assert_eq!(sim.count("delete"), 1);
    assert!(!sim.key_is_live(&key), "logout deleted the key at the service");
    assert!(!logs.contains(&key), "a log line holds the key");
    assert_no_cache_and_no_copy(&home, &key, "after logout");
    // The OpenID Connect access token the key was minted with: in no log line and no plaintext file.
    for access_token in &access_tokens {
        assert!(!logs.contains(access_token.as_str()), "a -vvv line holds the login's access token");
        for (path, bytes) in home.all_files() {
            assert!(!contains(&bytes, access_token), "{} holds the login's access token", path.display());
        }
    }
}

/// Browser login (code + PKCE to a fixed loopback port and path, as Anaconda's public client needs),
/// then the mint at the first URL; the cache holds the key encrypted only.
#[test]
fn mint_after_browser_login_on_a_fixed_redirect() {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let home = Home::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let extra = [
        ("flow", "browser"),
        ("redirect_port", port.as_str()),
        ("redirect_path", "/auth/oidc"),
        ("scopes", "openid email"),
    ];
    mint_profile(&home, &sim, "conda", &extra);
    let browser = browser_script(home.path());
    let out =
        home.cmd().env("AGE_OAUTH_BROWSER", &browser).args(["-vvv", "login", "--profile", "conda"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!((sim.count("authorize"), sim.count("mint:/api/auth/api-keys"), sim.count("minted")), (1, 1, 1));
    let out = home.run(&["token", "--profile", "conda"]);
    let key = text(&out.stdout).trim().to_string();
    assert!(sim.key_is_live(&key));
    assert!(!text(&out.stderr).contains(&key));
    assert!(home.cache_file("conda").exists());
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, &key), "{} holds the key in plaintext", path.display());
    }
}

/// A static key from stdin: kept encrypted (never in TOML or plaintext), sent to the API, its JWT
/// `exp` read in UTC whatever the local time zone: valid an hour before, exit 3 with the login hint after.
#[test]
fn a_static_key_from_stdin_and_its_expiry_in_utc() {
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let home = Home::new();
    add_with_sets(&home, "ci", "api-key", &[("api_url", &sim.site()), ("key_source", "static")]);
    let key = sim.issue_key(2 * 3600);
    let out = login_with_key(&home, "ci", &key, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    for tz in ["America/Los_Angeles", "Asia/Tokyo", "UTC"] {
        // One hour before expiry the key is valid in every zone (anaconda-auth's bug called it expired in LA) ...
        let out = run_env(&home, &[("TZ", tz), ("AGE_OAUTH_CLOCK_OFFSET", "3600")], &["token", "--profile", "ci"]);
        assert_eq!((code(&out), text(&out.stdout).trim()), (0, key.as_str()), "{tz}: {}", text(&out.stderr));
        // ... and one hour after, expired in every zone (and in Tokyo not valid for nine more hours).
        let out = run_env(&home, &[("TZ", tz), ("AGE_OAUTH_CLOCK_OFFSET", "10800")], &["token", "--profile", "ci"]);
        assert_eq!(code(&out), 3, "{tz}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.contains("expired at") && err.contains("age-oauth login --profile ci"), "{tz}: {err}");
        assert!(out.stdout.is_empty());
    }
    let out = home.run(&["request", "--profile", "ci", &sim.account_url()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sim.count("account:200"), 1);
    assert!(std::fs::read_to_string(home.state().join("config.toml")).unwrap().contains("key_source"));
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, &key), "{} holds the key in plaintext", path.display());
    }
    // An expired key is refused at login already; a mint profile takes no pasted key; nothing on stdin is an error.
    let out = login_with_key(&home, "ci", &sim.issue_key(-60), &[]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    mint_profile(&home, &sim, "minted", &[]);
    assert_eq!(code(&login_with_key(&home, "minted", &key, &[])), 2);
    assert_eq!(code(&login_with_key(&home, "ci", "", &[])), 2);
    // The service answers Anaconda's JSON 401 for a key it no longer takes: refused, named, not retried forever.
    sim.faults(|f| f.reject_next = 5);
    let out = home.run(&["request", "--profile", "ci", &sim.account_url()]);
    assert_ne!(code(&out), 0);
    assert!(text(&out.stdout).contains("auth_required"), "{}", text(&out.stdout));
    assert_eq!(sim.count("account:401"), 2, "one retry after the 401, no loop");
}

/// The first mint URL missing and the second failing is an error naming the status; all 404 says so.
#[test]
fn mint_errors_are_named() {
    let sim = device_sim();
    sim.faults(|f| f.mint_status = Some(500));
    let home = Home::new();
    mint_profile(&home, &sim, "conda", &[]);
    let out = home.run(&["login", "--profile", "conda"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("HTTP 500, expected 201"), "{}", text(&out.stderr));
    assert!(!home.cache_file("conda").exists() || home.load_cache("conda").tokens.is_none());
}

/// providers/anaconda.toml: the real anaconda.com values (anaconda-auth 0.15's public client, the
/// discovery document on anaconda.com naming the issuer on auth.anaconda.com, both mint paths, the
/// key scopes), and it builds; every URL it names is https and bound.
#[test]
fn the_anaconda_template_holds_the_real_service_values_and_builds() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("providers/anaconda.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = age_oauth::Config::from_parts(vec![(path, text)], Default::default(), Default::default()).unwrap();
    let resolved = config.resolve("anaconda", &[]).unwrap();
    let v = &resolved.provider_values;
    assert_eq!(v["client_id"], "b4ad7f1d-c784-46b5-a9fe-106e50441f5a");
    assert_eq!(v["issuer"], "https://auth.anaconda.com/api/auth");
    assert_eq!(v["discovery_url"], "https://anaconda.com/.well-known/openid-configuration");
    assert_eq!(
        v["mint_url"],
        serde_json::json!(["https://anaconda.com/api/auth/api-keys", "https://anaconda.com/api/iam/api-keys"])
    );
    assert_eq!(v["key_scopes"], serde_json::json!(["cloud:read", "cloud:write", "repo:read"]));
    let settings = age_oauth::providers::ProfileSettings { profile: "anaconda".into(), values: v.clone() };
    let provider = (resolved.provider.build)(&settings).unwrap();
    let origins: Vec<String> = provider.origins().iter().map(|o| o.origin.to_string()).collect();
    for want in ["https://anaconda.com:443", "https://auth.anaconda.com:443"] {
        assert!(origins.iter().any(|o| o == want), "{want} is bound: {origins:?}");
    }
    assert_eq!(provider.service_url().as_deref(), Some("https://anaconda.com"));
}
