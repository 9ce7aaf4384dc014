//! The command-line contract, driven through the real binary against the Portal simulator:
//! the whole esri-oob life cycle, esri-app, secrets never leaking, and exit codes.

use crate::common::*;
use serde_json::Value;

#[test]
fn esri_oob_life_cycle_through_the_binary() {
    let sim = start_sim();
    let home = Home::new();
    let mut all_stderr = String::new();

    // add
    add_profile(&home, &sim, "prod");
    let config = std::fs::read_to_string(home.state().join("config.toml")).unwrap();
    assert!(config.contains("[profiles.prod]") && config.contains("esri-oob"), "{config}");
    assert!(!config.contains(APP_SECRET), "the client secret must not reach config.toml");

    // token before login: exit 3 with the login command
    let out = home.run(&["token", "--profile", "prod"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("age-oauth login --profile prod"));
    assert!(out.stdout.is_empty());

    // login, the code pasted on stdin
    let out = login(&home, "prod", &["-vvv"]);
    let err = text(&out.stderr);
    all_stderr.push_str(&err);
    assert_eq!(code(&out), 0, "{err}");
    assert!(err.contains("New access_token acquired!  Expires in: 0:"), "{err}");
    assert!(err.contains("Token is for user: demo"), "{err}");
    assert!(out.stdout.is_empty(), "login prints nothing on stdout");
    assert_eq!(sim.count("token:authorization_code"), 1);

    // token: one line, the token, straight from the cache
    let out = home.run(&["token", "--profile", "prod"]);
    assert_eq!(code(&out), 0);
    let token = text(&out.stdout).trim_end().to_string();
    assert_eq!(text(&out.stdout), format!("{token}\n"));
    assert!(token.len() > 20);
    assert_eq!(sim.count("token"), 1, "a valid cache costs no request");

    // --json
    let out = home.run(&["token", "--profile", "prod", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["access_token"], token);
    assert_eq!(v["username"], "demo");
    assert_eq!(v["profile"], "prod");
    assert_eq!(v["provider"], "esri-oob");
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));

    // whoami: the name alone; AGE_OAUTH_PROFILE selects the profile
    let out = home.cmd().env("AGE_OAUTH_PROFILE", "prod").arg("whoami").output().unwrap();
    assert_eq!(text(&out.stdout), "demo\n", "{}", text(&out.stderr));
    let out = home.run(&["whoami", "--connection", "prod", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["username"], "demo");
    assert_eq!(v["details"]["fullName"], "Demo User");

    // login on a valid cache does nothing and says so
    let out = home.run(&["login", "--profile", "prod", "--no-browser"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stderr).contains("Already logged in"), "{}", text(&out.stderr));
    assert_eq!(sim.count("authorize"), 1);

    // expiry on the server's side: whoami gets 498, refreshes once, retries, succeeds
    sim.advance_clock(1801);
    let out = home.run(&["whoami", "--profile", "prod", "-vvv"]);
    all_stderr.push_str(&text(&out.stderr));
    assert_eq!(text(&out.stdout), "demo\n", "{}", text(&out.stderr));
    assert_eq!(sim.count("token:refresh_token"), 1);
    let after_498 = text(&home.run(&["token", "--profile", "prod"]).stdout);
    assert_ne!(after_498.trim(), token, "the refreshed token was stored");

    // expiry on our side: --min-ttl beyond the token's life refreshes first
    let out = home.run(&["token", "--profile", "prod", "--min-ttl", "3600", "-vvv"]);
    all_stderr.push_str(&text(&out.stderr));
    assert_eq!(code(&out), 0);
    assert_eq!(sim.count("token:refresh_token"), 2);
    assert_ne!(text(&out.stdout), after_498);

    // refresh-token rotation: a refresh token with < 24 h left is exchanged
    sim.set_refresh_token_lifetime(3600);
    let out = login(&home, "prod", &["--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let rt_before = home.load_cache("prod").tokens.unwrap().refresh_token.unwrap();
    for round in 1..=2 {
        let out = home.run(&["token", "--profile", "prod", "--min-ttl", "3600"]);
        assert_eq!(code(&out), 0, "round {round}: {}", text(&out.stderr));
        assert_eq!(sim.count("token:exchange_refresh_token"), round);
    }
    let rt_after = home.load_cache("prod").tokens.unwrap().refresh_token.unwrap();
    assert_ne!(rt_before, rt_after, "the rotated refresh token is stored");

    // a revoked refresh token: exit 3 and the command to run
    sim.revoke_all();
    let out = home.run(&["token", "--profile", "prod", "--min-ttl", "3600"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("refresh") && err.contains("age-oauth login --profile prod"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    assert!(home.cache_file("prod").exists(), "a refused refresh does not delete the cache");

    // log in again, then log out: the refresh token is revoked, tokens forgotten
    assert_eq!(code(&login(&home, "prod", &["--force"])), 0);
    let out = home.run(&["logout", "--profile", "prod", "-vvv"]);
    all_stderr.push_str(&text(&out.stderr));
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("revoked the refresh token"), "{}", text(&out.stderr));
    assert_eq!(sim.count("revokeToken"), 1);
    let entry = home.load_cache("prod");
    assert!(entry.tokens.is_none());
    assert_eq!(entry.secrets.get("client_secret").unwrap().expose(), APP_SECRET, "the stored secret survives logout");
    assert_eq!(code(&home.run(&["token", "--profile", "prod"])), 3);

    // nothing secret in stderr at -vvv
    for secret in [APP_SECRET, token.as_str(), after_498.trim()] {
        assert!(!all_stderr.contains(secret), "a secret leaked to stderr");
    }
}

#[test]
fn no_secret_in_any_file_or_debug_output() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    assert_eq!(code(&home.run(&["token", "--profile", "prod", "--min-ttl", "99999"])), 0);
    let entry = home.load_cache("prod");
    let tokens = entry.tokens.clone().unwrap();
    let secrets = [
        APP_SECRET.to_string(),
        tokens.access_token.expose().to_string(),
        tokens.refresh_token.as_ref().unwrap().expose().to_string(),
    ];
    let files = home.all_files();
    assert!(files.len() >= 3, "config, identity and cache: {files:?}");
    for (path, bytes) in &files {
        for s in &secrets {
            assert!(!contains(bytes, s), "a secret is in clear in {}", path.display());
        }
    }
    let debug = format!("{entry:?} {tokens:?}");
    for s in &secrets {
        assert!(!debug.contains(s.as_str()), "Debug output shows a secret: {debug}");
    }
    // profile show: the secret is redacted, and its source is named
    let out = home.run(&["profile", "show", "prod", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fields"]["client_secret"]["value"], "[redacted]");
    assert_eq!(v["fields"]["client_secret"]["source"], "encrypted store");
    let config = std::fs::read_to_string(home.state().join("config.toml")).unwrap();
    let portal_line = config.lines().position(|l| l.starts_with("portal =")).unwrap() + 1;
    assert!(v["fields"]["portal"]["source"].as_str().unwrap().ends_with(&format!("config.toml:{portal_line}")), "{v}");
    assert_eq!(v["fields"]["refresh_margin"]["source"], "default");
    for s in &secrets {
        assert!(!text(&out.stdout).contains(s.as_str()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, _) in &files {
            if path.starts_with(home.state()) {
                let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
        for dir in [home.state(), home.state().join("cache")] {
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "{}", dir.display());
        }
    }
}

#[test]
fn sixteen_processes_on_an_expired_cache_refresh_once() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    // Tokens that live 30 s are already inside the 60 s refresh margin: the cache is stale.
    sim.set_access_token_lifetime(30);
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    sim.set_access_token_lifetime(1800);
    sim.reset_counts();
    let children: Vec<_> = (0..16)
        .map(|_| {
            home.cmd()
                .args(["token", "--profile", "prod"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &outputs {
        assert_eq!(code(out), 0, "{}", text(&out.stderr));
    }
    let first = text(&outputs[0].stdout);
    assert!(outputs.iter().all(|o| text(&o.stdout) == first), "all print the same token");
    assert_eq!(sim.count("token"), 1, "exactly one request reached the token endpoint");
    assert_eq!(sim.count("token:refresh_token"), 1);
}

#[test]
fn esri_app_client_credentials() {
    let sim = start_sim();
    let home = Home::new();
    // Without a TTY, a missing required secret is listed, not prompted for.
    let out =
        home.run(&["profile", "add", "app", "--provider", "esri-app", "--portal", &sim.base_url(), "--client-id", APP]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--client-secret"), "{}", text(&out.stderr));
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    let out = home.run(&["login", "--profile", "app"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sim.count("token:client_credentials"), 1);
    let out = home.run(&["whoami", "--profile", "app"]);
    assert_eq!(text(&out.stdout), format!("{APP}\n"), "{}", text(&out.stderr));
    // No refresh token: a new app token is simply requested again.
    let out = home.run(&["token", "--profile", "app", "--min-ttl", "999999999"]);
    assert_eq!(code(&out), 0);
    assert_eq!(sim.count("token:client_credentials"), 2);
    // A wrong secret from the environment overrides the store: the server refuses, exit 4.
    let out = home
        .cmd()
        .env("AGE_OAUTH_CLIENT_SECRET", "wrong")
        .args(["login", "--profile", "app", "--force"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Invalid client_secret"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("wrong"), "the secret is not echoed");
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let home = Home::new();
    let out = home.run(&["token"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("profile add"), "{}", text(&out.stderr));
    let out = home.run(&["frobnicate"]);
    assert_eq!(code(&out), 2);
    let out = home.run(&["profile", "add", "x", "--provider", "nope", "--portal", "https://p", "--client-id", "c"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("esri-oob"), "known providers listed: {}", text(&out.stderr));
    let out = home.run(&[
        "profile",
        "add",
        "x",
        "--provider",
        "esri-oob",
        "--portal",
        "http://gis.example.com",
        "--client-id",
        "c",
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("http://"), "{}", text(&out.stderr));
    assert!(!home.state().join("config.toml").exists(), "an invalid profile is not written");
    let out = home.run(&[
        "profile",
        "add",
        "x",
        "--provider",
        "esri-oob",
        "--portal",
        "https://p.example",
        "--client-id",
        "c",
        "--set",
        "colour=blue",
    ]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("unknown field `colour`"), "{}", text(&out.stderr));
    // the server cannot be reached: exit 4
    let out = home.run(&["profile", "add", "dead", "--portal", "http://127.0.0.1:9/portal", "--client-id", "c"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home
        .cmd()
        .args(["login", "--profile", "dead", "--no-browser"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "no code on stdin: {}", text(&out.stderr));
}

#[test]
fn providers_and_profiles_listing() {
    let home = Home::new();
    let out = home.run(&["providers", "--json"]);
    assert_eq!(code(&out), 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"esri-oob") && names.contains(&"esri-app"), "{names:?}");
    let oob = v.as_array().unwrap().iter().find(|p| p["name"] == "esri-oob").unwrap();
    let secret = oob["fields"].as_array().unwrap().iter().find(|f| f["name"] == "client_secret").unwrap();
    assert_eq!(secret["secret"], true);
    let out = home.run(&["providers"]);
    assert!(text(&out.stdout).contains("esri-app"));

    let sim = start_sim();
    add_profile(&home, &sim, "one");
    add_profile(&home, &sim, "two");
    let out = home.run(&["profile", "list", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["name"], "one");
    assert_eq!(v[0]["logged_in"], false);
    // two profiles and none chosen: a clear error
    let out = home.run(&["token"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("one, two"), "{}", text(&out.stderr));
    let out = home.run(&["status", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["key_source"].as_str().unwrap().contains("identity file"), "{v}");
    assert_eq!(v["profiles"].as_array().unwrap().len(), 2);
    let out = home.run(&["profile", "remove", "one"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!home.cache_file("one").exists());
    let out = home.run(&["profile", "list", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn request_sends_credentials_and_fails_like_curl() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let base = sim.base_url();
    let out = home.run(&["request", "--profile", "prod", &format!("{base}/sharing/rest/portals/self?f=json")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["user"]["username"], "demo", "{v}");
    // POST with -d
    let out =
        home.run(&["request", "--profile", "prod", "-d", "f=json", &format!("{base}/sharing/rest/community/self")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // a token the server no longer accepts: refreshed once, then sent again
    sim.advance_clock(1801);
    let out = home.run(&["request", "--profile", "prod", &format!("{base}/sharing/rest/community/self?f=json")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sim.count("token:refresh_token"), 1);
    // another host: refused before anything is sent
    let out = home.run(&["request", "--profile", "prod", "https://elsewhere.example/x"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("--allow-other-host"), "{}", text(&out.stderr));
    // an HTTP error that is not about credentials: exit 1, body still printed
    let out = home.run(&["request", "--profile", "prod", &format!("{base}/no/such/page")]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(!out.stdout.is_empty());

    // an app token asking for a user resource: ArcGIS 403 in an HTTP 200 body → exit 4, no refresh
    add_app_profile(&home, "app", &base, APP, APP_SECRET);
    let grants = sim.count("token:client_credentials");
    let out = home.run(&["request", "--profile", "app", &format!("{base}/sharing/rest/community/self?f=json")]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not permitted"), "{}", text(&out.stderr));
    assert_eq!(sim.count("token:client_credentials"), grants + 1, "one token, and no refresh on 403");
}

#[test]
fn a_secret_given_with_set_is_stored_exactly_as_typed_and_remove_keeps_the_lock() {
    let sim = start_sim();
    let home = Home::new();
    let out = home.run(&[
        "profile",
        "add",
        "odd",
        "--provider",
        "esri-app",
        "--portal",
        &sim.base_url(),
        "--client-id",
        APP,
        "--set",
        "client_secret=0x1F",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(home.load_cache("odd").secrets["client_secret"].expose(), "0x1F", "not read as the number 31");
    // a lock file, as any refresh leaves behind, stays after `profile remove`
    assert_eq!(code(&home.run(&["token", "--profile", "odd"])), 4, "wrong secret: the server refuses");
    let lock = home.state().join("cache").join("odd.lock");
    std::fs::write(&lock, b"").unwrap();
    assert_eq!(code(&home.run(&["profile", "remove", "odd"])), 0);
    assert!(!home.cache_file("odd").exists() && lock.exists());
}
