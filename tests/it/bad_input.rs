//! Bad input gets a one-line error, a non-zero exit, and loses nothing: damaged caches,
//! caches for another key, wrong passphrases, malformed or secret-bearing TOML.

use crate::common::*;

/// Logs a profile in and returns the home and the simulator keeping it alive.
fn logged_in() -> (Home, age_oauth::sandbox::PortalSim) {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    (home, sim)
}

/// Runs `args`, expects a one-line error with `exit` and `needle`, and the cache unchanged.
fn expect_refusal(home: &Home, cmd: &mut std::process::Command, exit: i32, needle: &str) {
    let before = std::fs::read(home.cache_file("prod")).ok();
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(code(&out), exit, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(out.stdout.is_empty());
    assert!(!err.contains("panicked"));
    assert_eq!(std::fs::read(home.cache_file("prod")).ok(), before, "the cache must be left untouched");
}

#[test]
fn truncated_cache_is_reported_and_kept() {
    let (home, _sim) = logged_in();
    let path = home.cache_file("prod");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    for args in [
        &["token", "--profile", "prod"][..],
        &["whoami", "--profile", "prod"],
        &["login", "--profile", "prod", "--no-browser"],
    ] {
        let mut cmd = home.cmd();
        cmd.args(args);
        expect_refusal(&home, &mut cmd, 1, "cache of profile 'prod'");
    }
    // the header alone
    std::fs::write(&path, &bytes[..30]).unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 1, "login --profile prod --force");
}

#[test]
fn empty_and_garbage_caches() {
    let (home, _sim) = logged_in();
    let path = home.cache_file("prod");
    std::fs::write(&path, b"").unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 1, "empty");
    std::fs::write(&path, b"{\"access_token\": \"plain\"}").unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 1, "not an age file");
}

#[test]
fn cache_encrypted_to_another_key() {
    let (home, _sim) = logged_in();
    let other = home.path().join("other-identity.txt");
    let id = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    std::fs::write(&other, format!("{}\n", id.to_string().expose_secret())).unwrap();
    let mut cmd = home.cmd();
    cmd.env("AGE_OAUTH_IDENTITY", &other).args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 1, "encrypted to another key");
    // and a missing identity file with a cache present
    std::fs::rename(home.state().join("identity.txt"), home.path().join("moved.txt")).unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 1, "missing");
}

#[test]
fn passphrase_mode_and_wrong_passphrase() {
    let sim = start_sim();
    let home = Home::new();
    let with_pass = |pass: &str, args: &[&str]| {
        let mut cmd = home.cmd();
        cmd.env("AGE_OAUTH_PASSPHRASE", pass).args(args);
        cmd
    };
    let out = with_pass(
        "correct horse",
        &["profile", "add", "prod", "--portal", &sim.base_url(), "--client-id", APP, "--client-secret", APP_SECRET],
    )
    .output()
    .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!home.state().join("identity.txt").exists(), "passphrase mode keeps no key on disk");
    let out = with_pass("correct horse", &["status", "--json"]).output().unwrap();
    assert!(text(&out.stdout).contains("passphrase"), "{}", text(&out.stdout));
    expect_refusal(&home, &mut with_pass("wrong", &["token", "--profile", "prod"]), 1, "wrong passphrase");
    // no passphrase at all for a passphrase cache
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 1, "AGE_OAUTH_PASSPHRASE");
}

#[test]
fn malformed_toml_names_file_line_and_column() {
    let (home, _sim) = logged_in();
    let config = home.state().join("config.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    let broken = format!("{original}\n[profiles.other\nportal = 1\n");
    std::fs::write(&config, &broken).unwrap();
    let line = broken.lines().position(|l| l == "[profiles.other").unwrap() + 1;
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 2, &format!("config.toml:{line}:"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken, "the file is not rewritten");
    // profile add refuses to rewrite a broken file too
    let out = home.run(&["profile", "add", "x", "--portal", "https://p.example", "--client-id", "c"]);
    assert_eq!(code(&out), 2);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken);
}

#[test]
fn a_secret_in_a_project_file_is_refused() {
    let (home, _sim) = logged_in();
    let project = home.path().join("work").join("age-oauth.toml");
    std::fs::write(&project, "[profiles.prod]\nprovider = \"esri-oob\"\nclient_secret = \"s3cr3t\"\n").unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 2, "age-oauth.toml:3:1");
    let out = home.run(&["token", "--profile", "prod"]);
    let err = text(&out.stderr);
    assert!(err.contains("AGE_OAUTH_CLIENT_SECRET") && err.contains("--client-secret"), "{err}");
    assert!(!err.contains("s3cr3t"), "the secret value is not echoed");
}

#[test]
fn unknown_field_and_provider_in_a_project_file() {
    let (home, _sim) = logged_in();
    let project = home.path().join("work").join("age-oauth.toml");
    std::fs::write(&project, "[profiles.prod]\nprovider = \"esri-oob\"\nportl = \"https://x\"\n").unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 2, "unknown field `portl`");
    std::fs::write(&project, "[profiles.prod]\nprovider = \"esri-nope\"\n").unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 2, "known providers: api-key, esri-app, esri-oob");
}

#[test]
fn a_server_answering_html_or_garbage() {
    // A plain HTTP server that answers every request with an HTML login page.
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let handle = std::thread::spawn(move || {
        for (i, request) in server.incoming_requests().enumerate() {
            let (body, ct) = if i % 2 == 0 {
                ("<html><head><title>Corporate Login</title></head><body>Sign in</body></html>", "text/html")
            } else {
                ("\u{0}\u{1}not json at all", "application/json")
            };
            let header = tiny_http::Header::from_bytes("Content-Type", ct).unwrap();
            let _ = request.respond(tiny_http::Response::from_string(body).with_header(header));
            if i >= 1 {
                break;
            }
        }
    });
    let home = Home::new();
    let portal = format!("http://127.0.0.1:{port}/portal");
    add_app_profile(&home, "app", &portal, "c", "s");
    let out = home.run(&["login", "--profile", "app"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("HTML page titled \"Corporate Login\""), "{}", text(&out.stderr));
    let out = home.run(&["login", "--profile", "app"]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not JSON"), "{}", text(&out.stderr));
    handle.join().unwrap();
}

#[test]
fn a_project_file_cannot_send_cached_credentials_elsewhere() {
    let (home, sim) = logged_in();
    let project = home.path().join("work").join("age-oauth.toml");
    // A cloned repository points the same profile at another (loopback, so allowed) portal.
    std::fs::write(&project, "[profiles.prod]\nprovider = \"esri-oob\"\nportal = \"http://127.0.0.1:9/portal\"\n")
        .unwrap();
    let before = sim.counts();
    for args in [
        &["token", "--profile", "prod"][..],
        &["token", "--profile", "prod", "--min-ttl", "99999"],
        &["whoami", "--profile", "prod"],
    ] {
        let mut cmd = home.cmd();
        cmd.args(args);
        expect_refusal(&home, &mut cmd, 2, "cached credentials belong to");
    }
    let mut cmd = home.cmd();
    cmd.env("AGE_OAUTH_PORTAL", "http://127.0.0.1:9/portal").args(["token", "--profile", "prod"]);
    std::fs::remove_file(&project).unwrap();
    expect_refusal(&home, &mut cmd, 2, "login --profile prod --force");
    assert_eq!(sim.counts(), before, "nothing was sent anywhere");
    // Without the override everything works as before.
    assert_eq!(code(&home.run(&["token", "--profile", "prod"])), 0);
}

#[test]
fn a_broken_dotenv_line_is_named_but_never_shown() {
    let (home, _sim) = logged_in();
    let dotenv = home.path().join("work").join(".env");
    std::fs::write(&dotenv, "AGE_OAUTH_CLIENT_SECRET=\"hunter2-super-secret\nDB_PASSWORD=xx\n").unwrap();
    let mut cmd = home.cmd();
    cmd.args(["token", "--profile", "prod"]);
    expect_refusal(&home, &mut cmd, 2, "`AGE_OAUTH_CLIENT_SECRET` (value not shown)");
    let out = home.run(&["token", "--profile", "prod"]);
    assert!(!text(&out.stderr).contains("hunter2") && !text(&out.stderr).contains("DB_PASSWORD"));
    // Another tool's broken line is its own business.
    std::fs::write(&dotenv, "OTHER_TOOL_PASSWORD=pa$$ w'rd\nAGE_OAUTH_REFRESH_MARGIN=120\n").unwrap();
    let out = home.run(&["profile", "show", "prod", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fields"]["refresh_margin"]["value"], 120);
}
