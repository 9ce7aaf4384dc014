//! The smaller rules of the trust model, through the binary: `.env` read literally and leniently,
//! `verify_ssl` paths resolved against their file and checked when the profile is resolved, `exec`
//! keeping secrets from its child, URL passwords redacted, server text without control sequences.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn add_app(home: &Home, portal: &str) {
    // The secret from the environment: nothing stored, no cache written.
    let out = home
        .cmd()
        .env("AGE_OAUTH_CLIENT_SECRET", "s")
        .args(["profile", "add", "p", "--provider", "esri-app", "--portal", portal, "--client-id", "c"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

fn show_in(home: &Home, dir: &Path, env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = home.cmd();
    cmd.current_dir(dir).args(["profile", "show", "p", "--json"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (code(&out), json, text(&out.stderr))
}

fn field<'a>(show: &'a Value, name: &str) -> &'a Value {
    &show["fields"][name]["value"]
}

#[test]
fn dotenv_values_are_literal_never_expanded_from_the_environment() {
    let home = Home::new();
    add_app(&home, "https://gis.example.com/portal");
    let work = home.path().join("work");
    std::fs::write(
        work.join(".env"),
        "AGE_OAUTH_CLIENT_ID=${MY_SECRET_VAR}\nAGE_OAUTH_REFERER=\"https://x.example/$MY_SECRET_VAR\" # comment\n",
    )
    .unwrap();
    let (exit, show, err) = show_in(&home, &work, &[("MY_SECRET_VAR", "leaked-value")]);
    assert_eq!(exit, 0, "{err}");
    assert_eq!(field(&show, "client_id"), "${MY_SECRET_VAR}", "{show}");
    assert_eq!(field(&show, "referer"), "https://x.example/$MY_SECRET_VAR", "{show}");
    assert!(!show.to_string().contains("leaked-value"));
}

#[test]
fn a_dotenv_line_that_is_not_utf8_is_skipped_with_a_warning() {
    let home = Home::new();
    add_app(&home, "https://gis.example.com/portal");
    let work = home.path().join("work");
    std::fs::write(work.join(".env"), b"# caf\xe9 (another tool's Latin-1 comment)\nAGE_OAUTH_CLIENT_ID=from-dotenv\n")
        .unwrap();
    let (exit, show, err) = show_in(&home, &work, &[]);
    assert_eq!(exit, 0, "{err}");
    assert_eq!(field(&show, "client_id"), "from-dotenv");
    assert!(err.contains("warning") && err.contains(".env:1") && err.contains("not UTF-8"), "{err}");
}

#[test]
fn a_relative_verify_ssl_is_resolved_against_the_file_that_sets_it() {
    let home = Home::new();
    add_app(&home, "https://gis.example.com/portal");
    // The user file's directory.
    std::fs::write(home.state().join("ca.pem"), ATTACKER_CA).unwrap();
    let config = home.state().join("config.toml");
    let text_before = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_before.replace("[profiles.p]\n", "[profiles.p]\nverify_ssl = \"ca.pem\"\n")).unwrap();
    let elsewhere = home.path().join("work");
    let (exit, show, err) = show_in(&home, &elsewhere, &[]);
    assert_eq!(exit, 0, "{err}");
    assert_eq!(field(&show, "verify_ssl"), home.state().join("ca.pem").display().to_string().as_str());
    // A project file's directory, from a subdirectory's point of view it is still the file's.
    let project = home.path().join("proj");
    std::fs::create_dir_all(project.join("certs")).unwrap();
    std::fs::write(project.join("certs/ca.pem"), ATTACKER_CA).unwrap();
    std::fs::write(project.join("age-oauth.toml"), "[profiles.p]\nverify_ssl = \"certs/ca.pem\"\n").unwrap();
    let (exit, show, err) = show_in(&home, &project, &[]);
    assert_eq!(exit, 0, "{err}");
    assert_eq!(field(&show, "verify_ssl"), project.join("certs/ca.pem").display().to_string().as_str());
}

#[test]
fn a_verify_ssl_bundle_that_is_missing_or_holds_no_certificate_is_a_configuration_error_at_once() {
    let home = Home::new();
    add_app(&home, "https://gis.example.com/portal");
    let work = home.path().join("work");
    std::fs::write(work.join("empty.pem"), "not a certificate\n").unwrap();
    for (value, needle) in [("missing.pem", "cannot read the CA bundle"), ("empty.pem", "holds no PEM certificate")] {
        std::fs::write(work.join(".env"), format!("AGE_OAUTH_VERIFY_SSL={value}\n")).unwrap();
        let (exit, _, err) = show_in(&home, &work, &[]);
        assert_eq!(exit, 2, "{value}: {err}");
        assert!(err.contains(needle) && err.contains("AGE_OAUTH_VERIFY_SSL"), "{value}: {err}");
    }
}

#[test]
fn exec_gives_the_token_and_removes_every_secret_variable() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    let secrets = [
        ("AGE_OAUTH_CLIENT_SECRET", APP_SECRET),
        ("AGE_OAUTH_PASSWORD", "pw-in-env"),
        ("AGE_OAUTH_EXPORT_PASSPHRASE", "export-pass-in-env"),
        ("AGE_OAUTH_REFRESH_TOKEN", "rt-in-env"),
    ];
    let mut cmd = home.cmd();
    cmd.envs(secrets).args(["exec", "--profile", "app", "--", "env"]);
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let env = text(&out.stdout);
    assert!(env.contains("AGE_OAUTH_TOKEN=") && env.contains("AGE_OAUTH_PORTAL="), "{env}");
    for (name, value) in secrets {
        assert!(!env.contains(name) && !env.contains(value), "{name} reached the child");
    }
    // A passphrase-protected home: the passphrase that unlocks every cache stays with age-oauth.
    let home = Home::new();
    let pass = [("AGE_OAUTH_PASSPHRASE", "correct horse battery staple")];
    let run = |args: &[&str]| home.cmd().envs(pass).args(args).output().unwrap();
    let out = run(&[
        "profile",
        "add",
        "app",
        "--provider",
        "esri-app",
        "--portal",
        &sim.base_url(),
        "--client-id",
        APP,
        "--client-secret",
        APP_SECRET,
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = run(&["exec", "--profile", "app", "--", "env"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let env = text(&out.stdout);
    assert!(env.contains("AGE_OAUTH_TOKEN="));
    assert!(!env.contains("AGE_OAUTH_PASSPHRASE") && !env.contains("battery staple"), "{env}");
}

#[test]
fn a_password_in_a_url_is_redacted_in_errors_and_at_vv() {
    let home = Home::new();
    // Nothing listens on port 9: the error names the URL.
    add_app(&home, "http://me:hunter2@127.0.0.1:9/portal");
    let out = home.cmd().env("AGE_OAUTH_CLIENT_SECRET", "s").args(["token", "--profile", "p", "-vv"]).output().unwrap();
    let err = text(&out.stderr);
    assert_ne!(code(&out), 0);
    assert!(err.contains("me:***@127.0.0.1:9"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn server_text_reaches_the_terminal_without_control_sequences() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let body =
                r#"{"error":{"code":400,"message":"bad \u001b]0;pwned\u0007\u001b[2J\u009b31m client","details":[]}}"#;
            let _ = request.respond(tiny_http::Response::from_string(body));
        }
    });
    let home = Home::new();
    add_app(&home, &format!("http://127.0.0.1:{port}/portal"));
    let out = home.cmd().env("AGE_OAUTH_CLIENT_SECRET", "s").args(["token", "--profile", "p"]).output().unwrap();
    let err = text(&out.stderr);
    assert_ne!(code(&out), 0);
    assert!(err.contains("bad ") && err.contains("client"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}') && !err.contains('\u{9b}'), "{err:?}");
}
