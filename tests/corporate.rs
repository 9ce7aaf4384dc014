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
