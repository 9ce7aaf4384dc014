//! Issue 14, through the binary: list settings, the OS trust store, proxies (the real tinyproxy),
//! `doctor`, `--no-browser` with the listener still on, federated servers, the export passphrase.

mod common;
use age_oauth::sandbox::{OidcSim, OidcSimConfig};
use common::*;

fn add(home: &Home, profile: &str, provider: &str, fields: &[&str]) {
    let mut args = vec!["profile", "add", profile, "--provider", provider];
    args.extend_from_slice(fields);
    let out = home.run(&args);
    assert_eq!(code(&out), 0, "profile add: {}", text(&out.stderr));
}

fn write_project_file(home: &Home, toml: &str) {
    std::fs::write(home.path().join("work/age-oauth.toml"), toml).unwrap();
}

// ------------------------------------------------------------------------------------------------
// scopes: a TOML array or a space-separated string
// ------------------------------------------------------------------------------------------------

#[test]
fn scopes_as_a_toml_array_or_a_string_from_file_env_and_set() {
    let sim = OidcSim::start(OidcSimConfig::default()).unwrap();
    let home = Home::new();
    let browser = browser_script(home.path()).display().to_string();
    write_project_file(
        &home,
        &format!(
            "[profiles.arr]\nprovider = \"oidc\"\nissuer = \"{}\"\nclient_id = \"{}\"\nscopes = [\"openid\", \"offline_access\"]\n",
            sim.issuer(),
            sim.client_id()
        ),
    );
    let show = home.run(&["profile", "show", "arr", "--json"]);
    assert_eq!(code(&show), 0, "{}", text(&show.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(shown["fields"]["scopes"]["value"], serde_json::json!(["openid", "offline_access"]));
    assert!(shown["fields"]["scopes"]["source"].as_str().unwrap().contains("age-oauth.toml:5"), "{shown}");
    let out = home.cmd().env("AGE_OAUTH_BROWSER", &browser).args(["login", "--profile", "arr"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("scope=openid+offline_access"), "{}", text(&out.stderr));
    let tokens = home.load_cache("arr").tokens.unwrap();
    assert!(tokens.refresh_token.is_some(), "offline_access from the array was asked for");

    // The string form from the environment replaces the array: no offline_access, no refresh token.
    let out = home
        .cmd()
        .env("AGE_OAUTH_BROWSER", &browser)
        .env("AGE_OAUTH_SCOPES", "openid")
        .args(["login", "--profile", "arr", "--force"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(home.load_cache("arr").tokens.unwrap().refresh_token.is_none());

    // --set takes the string form too, and it is stored as one.
    add(
        &home,
        "str",
        "oidc",
        &[
            "--set",
            &format!("issuer={}", sim.issuer()),
            "--client-id",
            &sim.client_id(),
            "--set",
            "scopes=openid offline_access",
        ],
    );
    let out = home.cmd().env("AGE_OAUTH_BROWSER", &browser).args(["login", "--profile", "str"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(home.load_cache("str").tokens.unwrap().refresh_token.is_some());

    // A list item with a space is a clear configuration error.
    write_project_file(
        &home,
        &format!(
            "[profiles.bad]\nprovider = \"oidc\"\nissuer = \"{}\"\nclient_id = \"c\"\nscopes = [\"openid offline_access\"]\n",
            sim.issuer()
        ),
    );
    let out = home.run(&["login", "--profile", "bad"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("scopes"), "{}", text(&out.stderr));
}

// ------------------------------------------------------------------------------------------------
// export passphrase without a terminal
// ------------------------------------------------------------------------------------------------

#[test]
fn passphrase_export_and_import_with_no_terminal_read_age_oauth_export_passphrase() {
    let sim = start_sim();
    let desk = Home::new();
    add_profile(&desk, &sim, "prod");
    assert_eq!(code(&login(&desk, "prod", &[])), 0);
    let export = desk.path().join("prod.age");
    let export_arg = export.to_str().unwrap();

    // No terminal (stdin is /dev/null) and no variable: a clear error naming the variable, no file.
    let out = desk.run(&["cache", "export", "--profile", "prod", "--passphrase", "-o", export_arg]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("AGE_OAUTH_EXPORT_PASSPHRASE"), "{}", text(&out.stderr));
    assert!(!export.exists());

    let phrase = "correct horse battery staple";
    let out = desk
        .cmd()
        .env("AGE_OAUTH_EXPORT_PASSPHRASE", phrase)
        .args(["cache", "export", "--profile", "prod", "--passphrase", "-o", export_arg])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(std::fs::read(&export).unwrap().starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert!(!contains(&out.stderr, phrase));

    let server = Home::new();
    let out = server.run(&["cache", "import", export_arg]);
    assert_eq!(code(&out), 2, "no terminal, no variable: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("AGE_OAUTH_EXPORT_PASSPHRASE"), "{}", text(&out.stderr));
    let out =
        server.cmd().env("AGE_OAUTH_EXPORT_PASSPHRASE", phrase).args(["cache", "import", export_arg]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("unset AGE_OAUTH_PASSPHRASE"), "the caches keep this machine's key");
    assert!(server.state().join("identity.txt").exists(), "kept under the server's own key");
    let out = server.run(&["token", "--profile", "prod"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));

    // Documented where people look: --help of both commands and docs/environment.md.
    for cmd in ["export", "import"] {
        let help = server.run(&["cache", cmd, "--help"]);
        assert!(text(&help.stdout).contains("AGE_OAUTH_EXPORT_PASSPHRASE"), "cache {cmd} --help");
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/environment.md")).unwrap();
    assert!(doc.contains("| `AGE_OAUTH_EXPORT_PASSPHRASE` |"));
}
