//! `age-oauth demo` and `age-oauth sandbox` as a user runs them: separate processes,
//! talking only to 127.0.0.1, and `connections add` (the Python age-oauth's flags).

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn demo_runs_end_to_end_without_network_or_prompt() {
    let home = Home::new();
    let out = home.run(&["demo"]);
    let stdout = text(&out.stdout);
    assert_eq!(code(&out), 0, "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("New access_token acquired!  Expires in: 0:"), "{stdout}");
    assert!(stdout.contains("Token is for user: demo"), "{stdout}");
    assert!(stdout.contains("starts with \"age-encryption.org/v1\""), "{stdout}");
    assert!(stdout.contains("access or refresh token in clear in the file: no"), "{stdout}");
    assert!(stdout.contains("refreshed: new token differs, refresh_token grants at the portal: 1"), "{stdout}");
    assert!(stdout.contains("revoked the refresh token"), "{stdout}");
    assert!(stdout.contains("token now: exit 3"), "{stdout}");
    assert!(!stdout.contains("bug!"), "{stdout}");
    assert!(!home.state().exists(), "the demo uses its own temp home, not AGE_OAUTH_HOME");
}

#[test]
fn sandbox_process_serves_a_portal_and_admin_hooks() {
    let home = Home::new();
    let mut child =
        home.cmd().args(["sandbox", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let portal = first.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).expect("portal URL").to_string();
    let admin = portal.replace("/portal", "/__admin");

    let out = home.run(&[
        "connections",
        "add",
        "--label",
        "sbx",
        "--portal",
        &portal,
        "--client-id",
        APP,
        "--client-secret",
        APP_SECRET,
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(code(&login(&home, "sbx", &[])), 0);
    let out = home.run(&["whoami", "--profile", "sbx"]);
    assert_eq!(text(&out.stdout), "demo\n", "{}", text(&out.stderr));

    // the admin hooks of the separate process: counts and revocation
    let body = ureq::get(&format!("{admin}/counts")).call().unwrap().body_mut().read_to_string().unwrap();
    let counts: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(counts["token:authorization_code"], 1);
    ureq::post(&format!("{admin}/revoke_all")).send_empty().unwrap();
    let out = home.run(&["whoami", "--profile", "sbx"]);
    assert_eq!(code(&out), 3, "revoked everything: login required ({})", text(&out.stderr));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn sandbox_process_offers_an_okta_org_for_okta_esri_profiles() {
    let home = Home::new();
    let mut child =
        home.cmd().args(["sandbox", "--port", "0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut okta, mut portal, mut line) = (None, None, String::new());
    while portal.is_none() && stdout.read_line(&mut line).unwrap() > 0 {
        let url = line.split_whitespace().last().filter(|w| w.starts_with("http://")).map(str::to_string);
        if line.starts_with("Okta org sandbox at") {
            okta = url;
        } else if line.starts_with("ArcGIS portal federated with it") {
            portal = url;
        }
        line.clear();
    }
    let (okta, portal) = (okta.expect("okta URL"), portal.expect("federated portal URL"));
    let sets = [
        format!("portal={portal}"),
        "client_id=age-oauth-sandbox".into(),
        format!("okta={okta}"),
        "username=nomfa@example.test".into(),
    ];
    let mut args = vec!["profile", "add", "okta", "--provider", "okta-esri"];
    for set in &sets {
        args.extend(["--set", set.as_str()]);
    }
    assert_eq!(code(&home.run(&args)), 0);
    let out =
        home.cmd().args(["login", "--profile", "okta"]).env("AGE_OAUTH_PASSWORD", "okta-password").output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.run(&["whoami", "--profile", "okta"]);
    assert_eq!(text(&out.stdout), "nomfa@example.test\n", "{}", text(&out.stderr));
    child.kill().unwrap();
    child.wait().unwrap();
}
