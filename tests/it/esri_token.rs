//! `esri-token` and federated server tokens through the real binary, against the Portal and ArcGIS
//! Server simulators: generateToken (portal and server, referer and requestip), re-acquiring, wrong passwords.

use crate::common::*;
use age_oauth::sandbox::{ServerConfig, ServerSecurity, ServerSim};
use serde_json::Value;

const PASSWORD: &str = "alice-password";
const REFERER: &str = "https://scripts.example.test";

fn add_token_profile(home: &Home, name: &str, site: (&str, &str), extra: &[&str]) {
    let mut args = vec!["profile", "add", name, "--provider", "esri-token", "--set"];
    let site_arg = format!("{}={}", site.0, site.1);
    args.push(&site_arg);
    args.extend(["--set", "username=alice"]);
    for e in extra {
        args.extend(["--set", e]);
    }
    let out = home.run(&args);
    assert_eq!(code(&out), 0, "profile add: {}", text(&out.stderr));
}

fn with_password(home: &Home, password: &str, args: &[&str]) -> std::process::Output {
    home.cmd().env("AGE_OAUTH_PASSWORD", password).args(args).output().unwrap()
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {} / {}", text(&out.stdout), text(&out.stderr)))
}

fn call(url: &str, headers: &[(&str, &str)]) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    serde_json::from_str(&req.call().unwrap().body_mut().read_to_string().unwrap()).unwrap()
}

#[test]
fn portal_generate_token_bound_to_a_referer() {
    let sim = start_sim();
    let home = Home::new();
    add_token_profile(&home, "gis", ("portal", &sim.base_url()), &[&format!("referer={REFERER}")]);

    let out = with_password(&home, PASSWORD, &["token", "--profile", "gis", "--json", "-vvv"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!contains(&out.stderr, PASSWORD), "-vvv never shows the password");
    let v = json_of(&out);
    assert_eq!(v["username"], "alice");
    assert_eq!(v["provider"], "esri-token");
    let token = v["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("gt_"));
    assert_eq!(sim.count("generateToken"), 1);

    // The token is bound to the referer: without it the portal refuses, with it (as `request` sends it) it works.
    let community = format!("{}/sharing/rest/community/self?f=json", sim.base_url());
    let bearer = format!("Bearer {token}");
    assert_eq!(call(&community, &[("X-Esri-Authorization", &bearer)])["error"]["code"], 498);
    let out = home.run(&["request", "--profile", "gis", "-vvv", &community]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json_of(&out)["username"], "alice");
    assert!(!contains(&out.stderr, &token), "-vvv never shows the token");
    let out = home.run(&["whoami", "--profile", "gis"]);
    assert_eq!(text(&out.stdout), "alice\n", "{}", text(&out.stderr));
    assert_eq!(sim.count("generateToken"), 1, "the cached token served every call");

    // AGE_OAUTH_PASSWORD is used, never stored; the cache holds no password in clear either.
    let entry = home.load_cache("gis");
    assert!(entry.secrets.is_empty(), "a password from the environment is not stored");
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, PASSWORD) && !contains(&bytes, &token), "secret in clear in {}", path.display());
    }
}

#[test]
fn standalone_server_generate_token_bound_to_the_request_ip() {
    let server = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
    let home = Home::new();
    add_token_profile(&home, "site", ("server", &server.base_url()), &["client=requestip", "expiration=30"]);

    let out = with_password(&home, PASSWORD, &["request", "--profile", "site", &server.secure_service_url()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json_of(&out)["mapName"], "Secure");
    assert_eq!(server.count("info"), 1, "the token URL comes from rest/info");
    assert_eq!(server.count("generateToken"), 1);

    let out = home.run(&["token", "--profile", "site", "--json"]);
    let expires = json_of(&out)["expires_at"].as_str().unwrap().to_string();
    let expires = humantime::parse_rfc3339(&expires).unwrap();
    let left = expires.duration_since(std::time::SystemTime::now()).unwrap().as_secs();
    assert!((1700..=1800).contains(&left), "expires (epoch ms) read as 30 minutes, got {left}s");

    // A request without the token is refused the ArcGIS way; `request` turns a refusal into exit 4.
    assert_eq!(call(&server.secure_service_url(), &[])["error"]["code"], 499);
}

#[test]
fn expired_tokens_are_reacquired_silently() {
    let server = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
    let home = Home::new();
    // Stored password: no environment needed afterwards.
    add_token_profile(&home, "site", ("server", &server.base_url()), &["password=alice-password"]);
    assert_eq!(home.load_cache("site").secrets.len(), 1, "kept in the encrypted store");

    let first = home.run(&["token", "--profile", "site"]);
    assert_eq!(code(&first), 0, "{}", text(&first.stderr));
    assert_eq!(server.count("generateToken"), 1);

    // Our side: less than the margin left → a new token before handing one out.
    let out = home.run(&["token", "--profile", "site", "--min-ttl", "7200"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_ne!(out.stdout, first.stdout);
    assert_eq!(server.count("generateToken"), 2);

    // The server's side: the token dies early (498) → re-acquired once, the request succeeds.
    server.advance_clock(3_700);
    let out = home.run(&["request", "--profile", "site", &server.secure_service_url()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(json_of(&out)["mapName"], "Secure");
    assert_eq!(server.count("service:498"), 1);
    assert_eq!(server.count("generateToken"), 3);
}

#[test]
fn wrong_password_is_a_clear_error_and_nothing_is_stored() {
    let server = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
    let sim = start_sim();
    let home = Home::new();
    add_token_profile(&home, "site", ("server", &server.base_url()), &[]);
    add_token_profile(&home, "gis", ("portal", &sim.base_url()), &[]);

    for (profile, args) in [("site", vec!["token"]), ("site", vec!["login"]), ("gis", vec!["request", &sim.base_url()])]
    {
        let mut all = args.clone();
        all.extend(["--profile", profile]);
        let out = with_password(&home, "not-the-password", &all);
        let err = text(&out.stderr);
        assert_eq!(code(&out), 4, "{all:?}: {err}");
        assert!(err.contains("Invalid username or password") && err.contains("AGE_OAUTH_PASSWORD"), "{err}");
        assert!(!err.contains("not-the-password"), "the password is never printed");
        assert!(out.stdout.is_empty());
        assert!(!home.cache_file(profile).exists(), "nothing stored for {profile}");
    }
    assert_eq!(server.count("generateToken:refused"), 2);

    // No password at all, no terminal: login required, with the way out.
    let out = home.run(&["token", "--profile", "site"]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("AGE_OAUTH_PASSWORD"), "{}", text(&out.stderr));
}

#[test]
fn federated_server_tokens_are_exchanged_and_cached_per_server() {
    let sim = start_sim();
    let federated = ServerConfig { security: ServerSecurity::Federated(sim.federation()), ..Default::default() };
    let server = ServerSim::start("127.0.0.1:0", federated.clone()).unwrap();
    let second = ServerSim::start("127.0.0.1:0", federated).unwrap();
    let home = Home::new();
    add_token_profile(&home, "gis", ("portal", &sim.base_url()), &[&format!("referer={REFERER}")]);

    let out = with_password(&home, PASSWORD, &["token", "--profile", "gis", "--server", &server.base_url(), "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v = json_of(&out);
    assert_eq!(v["server"], server.base_url());
    let server_token = v["access_token"].as_str().unwrap().to_string();
    assert!(server_token.starts_with("st_"), "a server token, not the portal token");
    assert!(v["expires_at"].is_string());
    let bearer = format!("Bearer {server_token}");
    let ok = call(&server.secure_service_url(), &[("X-Esri-Authorization", &bearer), ("Referer", REFERER)]);
    assert_eq!(ok["mapName"], "Secure");
    assert_eq!(
        call(&second.secure_service_url(), &[("X-Esri-Authorization", &bearer), ("Referer", REFERER)])["error"]["code"],
        498
    );

    // Cached per server: again → no exchange; another server (a service URL of it) → its own token.
    let again = home.run(&["token", "--profile", "gis", "--server", &format!("{}/", server.base_url())]);
    assert_eq!(text(&again.stdout).trim(), server_token, "{}", text(&again.stderr));
    assert_eq!(sim.count("generateToken:serverUrl"), 1);
    let out = home.run(&["token", "--profile", "gis", "--server", &second.secure_service_url()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_ne!(text(&out.stdout).trim(), server_token);
    assert_eq!(sim.count("generateToken:serverUrl"), 2);
    let entry = home.load_cache("gis");
    let cached = entry.tokens.unwrap().derived;
    assert!(cached.contains_key(&server.base_url()) && cached.contains_key(&second.base_url()), "{cached:?}");
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, &server_token), "server token in clear in {}", path.display());
    }

    // Any ArcGIS profile works: an OAuth (esri-oob) login exchanges the same way.
    add_profile(&home, &sim, "oauth");
    assert_eq!(code(&login(&home, "oauth", &[])), 0);
    let out = home.run(&["token", "--profile", "oauth", "--server", &server.base_url()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let bearer = format!("Bearer {}", text(&out.stdout).trim());
    assert_eq!(call(&server.secure_service_url(), &[("X-Esri-Authorization", &bearer)])["mapName"], "Secure");
}

#[test]
fn a_server_of_another_portal_or_a_standalone_one_is_refused() {
    let sim = start_sim();
    let elsewhere = start_sim();
    let foreign = ServerSim::start(
        "127.0.0.1:0",
        ServerConfig { security: ServerSecurity::Federated(elsewhere.federation()), ..Default::default() },
    )
    .unwrap();
    let standalone = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
    let home = Home::new();
    add_token_profile(&home, "gis", ("portal", &sim.base_url()), &[]);

    let out = with_password(&home, PASSWORD, &["token", "--profile", "gis", "--server", &foreign.base_url()]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("belongs to the portal") && err.contains(&elsewhere.base_url()), "{err}");
    assert_eq!(sim.count("generateToken:serverUrl") + elsewhere.count("generateToken"), 0, "no token sent anywhere");
    assert!(out.stdout.is_empty());

    let out = with_password(&home, PASSWORD, &["token", "--profile", "gis", "--server", &standalone.base_url()]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not federated"), "{}", text(&out.stderr));

    // And the other way round: an esri-token profile for a federated server follows its portal
    // (tests/it/corporate.rs), but never to a portal other than the one the profile names.
    add_token_profile(&home, "direct", ("server", &foreign.base_url()), &[&format!("portal={}", sim.base_url())]);
    let out = with_password(&home, PASSWORD, &["token", "--profile", "direct"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the password would go there"), "{}", text(&out.stderr));
    assert_eq!(elsewhere.count("generateToken"), 0, "the password was not sent");
}

/// A person at a terminal: types `password` when asked for one and answers `keep` to "keep it?".
struct Typist {
    password: &'static str,
    keep: &'static str,
    asked: Vec<String>,
}

impl age_oauth::Interaction for Typist {
    fn can_prompt(&self) -> bool {
        true
    }
    fn info(&mut self, _message: &str) {}
    fn warn(&mut self, _message: &str) {}
    fn debug(&mut self, _level: u8, _message: &str) {}
    fn open_browser(&mut self, _url: &str) -> Result<(), String> {
        Err("no browser".into())
    }
    fn read_line(&mut self, prompt: &str) -> age_oauth::Result<Option<String>> {
        self.asked.push(prompt.to_string());
        Ok(Some(self.keep.to_string()))
    }
    fn read_secret(&mut self, prompt: &str) -> age_oauth::Result<Option<age_oauth::Secret>> {
        self.asked.push(prompt.to_string());
        Ok(Some(age_oauth::Secret::new(self.password)))
    }
}

#[test]
fn a_typed_password_is_kept_encrypted_only_when_the_person_agrees() {
    use age_oauth::CacheStore;
    use age_oauth::Paths;
    use age_oauth::{Engine, LoginOutcome};
    let server = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
    let home = Home::new();
    add_token_profile(&home, "kept", ("server", &server.base_url()), &[]);
    add_token_profile(&home, "not-kept", ("server", &server.base_url()), &[]);
    let paths = Paths::under(home.state());
    let engine = Engine::new(paths.clone()).with_store(CacheStore::with_own_identity(paths));
    let config = std::fs::read_to_string(home.state().join("config.toml")).unwrap();
    let config = age_oauth::Config::from_parts(
        vec![(home.state().join("config.toml"), config)],
        Default::default(),
        Default::default(),
    )
    .unwrap();

    for (profile, keep, stored) in [("kept", "y", true), ("not-kept", "n", false)] {
        let mut session = engine.session(config.resolve(profile, &[]).unwrap()).unwrap();
        let mut person = Typist { password: PASSWORD, keep, asked: Vec::new() };
        let outcome = engine.login(&mut session, &mut person, false, false).unwrap();
        assert!(matches!(outcome, LoginOutcome::LoggedIn(_)));
        assert!(person.asked[0].contains("Password for alice"), "{:?}", person.asked);
        assert!(person.asked[1].contains("Keep the password"), "{:?}", person.asked);
        let entry = home.load_cache(profile);
        assert_eq!(entry.secrets.contains_key("password"), stored, "{profile}");
        assert!(entry.tokens.is_some());
    }
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, PASSWORD), "password in clear in {}", path.display());
    }

    // A wrong typed password: nothing asked about keeping, nothing stored.
    add_token_profile(&home, "typo", ("server", &server.base_url()), &[]);
    let config = age_oauth::Config::from_parts(
        vec![(home.state().join("config.toml"), std::fs::read_to_string(home.state().join("config.toml")).unwrap())],
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let mut session = engine.session(config.resolve("typo", &[]).unwrap()).unwrap();
    let mut person = Typist { password: "typo", keep: "y", asked: Vec::new() };
    let err = engine.login(&mut session, &mut person, false, false).err().unwrap();
    assert_eq!(err.exit_code(), 4, "{err}");
    assert_eq!(person.asked.len(), 1, "not asked to keep a refused password");
    assert!(!home.cache_file("typo").exists());
}
