//! `web-tier` through the real binary against real servers on loopback: an MIT KDC with Apache and
//! mod_auth_gssapi (Kerberos/SPNEGO), and a pyspnego NTLM site, started once per run by tests/peers/*.

use crate::common::*;
use std::process::{Command, Output};

/// The binary with nothing but what it needs: no inherited variable can carry a password.
fn bare_cmd(home: &Home, extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = home.cmd();
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AGE_OAUTH_HOME", home.state())
        .env("AGE_OAUTH_BROWSER", "none")
        .env("NO_COLOR", "1");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().expect("run age-oauth")
}

fn add_web_tier(home: &Home, name: &str, sets: &[&str]) {
    let mut args = vec!["profile", "add", name, "--provider", "web-tier"];
    for s in sets {
        match s.strip_prefix("url=") {
            Some(url) => args.extend(["--url", url]),
            None => args.extend(["--set", s]),
        }
    }
    let out = home.run(&args);
    assert_eq!(code(&out), 0, "profile add: {}", text(&out.stderr));
}

/// Kerberos environment of the test realm, with this home's own ticket cache.
fn krb_env(home: &Home) -> Vec<(&'static str, String)> {
    vec![
        ("KRB5_CONFIG", kerberos_peer().var("KRB5_CONFIG").to_string()),
        ("KRB5CCNAME", format!("FILE:{}", home.path().join("ccache").display())),
    ]
}

fn with_env<'a>(vars: &'a [(&'static str, String)], more: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(more);
    all
}

#[test]
fn kerberos_from_a_kinit_ticket_with_no_password_anywhere() {
    let peer = kerberos_peer();
    let home = Home::new();
    let env = krb_env(&home);
    let url = peer.var("KRB_URL");
    add_web_tier(&home, "intranet", &[&format!("url={url}")]);

    // No ticket yet: login required, and the way to get one.
    let out = run(bare_cmd(&home, &with_env(&env, &[])), &["request", "--profile", "intranet", url]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("kinit"), "{}", text(&out.stderr));

    // kinit from alice's keytab: no password typed, passed or stored anywhere.
    let kinit = Command::new("kinit")
        .args(["-kt", peer.var("KRB_USER_KEYTAB"), "alice"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("kinit runs");
    assert!(kinit.status.success(), "kinit: {}", text(&kinit.stderr));

    let mut cmd = bare_cmd(&home, &with_env(&env, &[]));
    cmd.args(["request", "--profile", "intranet", url]);
    let seen: Vec<String> = cmd
        .get_envs()
        .map(|(k, v)| {
            format!("{}={}", k.to_string_lossy(), v.map(|v| v.to_string_lossy().into_owned()).unwrap_or_default())
        })
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect();
    assert!(
        seen.iter().all(|s| !s.to_ascii_lowercase().contains("password")),
        "the process gets no password: {seen:?}"
    );
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from a Kerberos-protected page\n");

    let out = run(bare_cmd(&home, &with_env(&env, &[])), &["whoami", "--profile", "intranet"]);
    assert_eq!(text(&out.stdout), "alice@EXAMPLE.TEST\n", "{}", text(&out.stderr));
    let out = run(bare_cmd(&home, &with_env(&env, &[])), &["token", "--profile", "intranet"]);
    assert_eq!(code(&out), 2, "no bearer token to print: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("age-oauth request"), "{}", text(&out.stderr));
    assert!(home.load_cache("intranet").secrets.is_empty());

    // The ticket is gone: login required again, not a silent anonymous request.
    let kdestroy = Command::new("kdestroy").envs(env.iter().map(|(k, v)| (*k, v.as_str()))).output().unwrap();
    assert!(kdestroy.status.success());
    let out = run(bare_cmd(&home, &with_env(&env, &[])), &["request", "--profile", "intranet", url]);
    assert_eq!(code(&out), 3, "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn kerberos_with_a_password_from_the_environment() {
    let peer = kerberos_peer();
    let home = Home::new();
    let env = krb_env(&home); // an empty ticket cache: the password is the only way in
    let url = peer.var("KRB_URL");
    add_web_tier(&home, "upn", &[&format!("url={url}"), "mechanism=kerberos", "username=alice@EXAMPLE.TEST"]);
    add_web_tier(&home, "down", &[&format!("url={url}"), "username=example.test\\alice"]);

    for profile in ["upn", "down"] {
        let out = run(
            bare_cmd(&home, &with_env(&env, &[("AGE_OAUTH_PASSWORD", "alice-password")])),
            &["request", "--profile", profile, url],
        );
        assert_eq!(code(&out), 0, "{profile}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "hello from a Kerberos-protected page\n");
    }
    assert!(!home.path().join("ccache").exists(), "the password's ticket stays in memory, not in a ticket cache");
    assert!(home.load_cache("upn").secrets.is_empty(), "a password from the environment is not stored");

    // Wrong password: the KDC says so, exit 4, nothing stored for a fresh profile.
    add_web_tier(&home, "wrong", &[&format!("url={url}"), "username=alice@EXAMPLE.TEST"]);
    let out = run(
        bare_cmd(&home, &with_env(&env, &[("AGE_OAUTH_PASSWORD", "not-alices")])),
        &["request", "--profile", "wrong", url],
    );
    let err = text(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains("refused the password of alice@EXAMPLE.TEST") && !err.contains("not-alices"), "{err}");
    assert!(!home.cache_file("wrong").exists());
}

#[test]
fn ntlm_right_and_wrong_password() {
    let peer = ntlm_peer();
    let home = Home::new();
    let url = peer.var("NTLM_URL");
    add_web_tier(&home, "dom", &[&format!("url={url}"), "mechanism=ntlm", "username=EXAMPLE\\alice"]);
    add_web_tier(&home, "plain", &[&format!("url={url}-ntlm"), "mechanism=ntlm", "username=bob"]);

    let out = run(
        bare_cmd(&home, &[("AGE_OAUTH_PASSWORD", "alice-password")]),
        &["request", "--profile", "dom", "-vvv", url],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello EXAMPLE\\alice\n");
    let err = text(&out.stderr);
    assert!(err.contains("NTLM as EXAMPLE\\alice") && !err.contains("alice-password"), "{err}");
    assert!(!err.contains("TlRMTVNTUA"), "-vvv never shows an NTLM message: {err}");
    let out = run(bare_cmd(&home, &[("AGE_OAUTH_PASSWORD", "alice-password")]), &["whoami", "--profile", "dom"]);
    assert_eq!(text(&out.stdout), "EXAMPLE\\alice\n", "{}", text(&out.stderr));
    let ntlm_only = format!("{url}-ntlm");
    let out =
        run(bare_cmd(&home, &[("AGE_OAUTH_PASSWORD", "bob-password")]), &["request", "--profile", "plain", &ntlm_only]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello bob\n");

    // NTLM inside Negotiate (a site offering only Negotiate), and "negotiate" falling back to NTLM when
    // Kerberos cannot be used (here: no realm configured at all).
    let negotiate_only = format!("{url}-negotiate");
    add_web_tier(&home, "in-negotiate", &[&format!("url={negotiate_only}"), "mechanism=ntlm", "username=alice"]);
    add_web_tier(&home, "fallback", &[&format!("url={url}"), "mechanism=negotiate", "username=alice"]);
    for (profile, target) in [("in-negotiate", negotiate_only.as_str()), ("fallback", url)] {
        let env = [("AGE_OAUTH_PASSWORD", "alice-password"), ("KRB5_CONFIG", "/dev/null")];
        let out = run(bare_cmd(&home, &env), &["request", "--profile", profile, target]);
        assert_eq!(code(&out), 0, "{profile}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "hello alice\n", "{profile}");
    }

    // A wrong password: exit 4, the password never shown, nothing stored.
    add_web_tier(&home, "wrong", &[&format!("url={url}"), "mechanism=ntlm", "username=alice"]);
    for args in [vec!["request", "--profile", "wrong", url], vec!["login", "--profile", "wrong"]] {
        let out = run(bare_cmd(&home, &[("AGE_OAUTH_PASSWORD", "not-alices")]), &args);
        let err = text(&out.stderr);
        assert_eq!(code(&out), 4, "{args:?}: {err}");
        assert!(err.contains("refused the sign-in of alice") && err.contains("AGE_OAUTH_PASSWORD"), "{err}");
        assert!(!err.contains("not-alices") && out.stdout.is_empty());
        assert!(!home.cache_file("wrong").exists(), "nothing stored");
    }
    // The password changed after a good sign-in: the request is refused (exit 4), not retried forever.
    let out = run(bare_cmd(&home, &[("AGE_OAUTH_PASSWORD", "not-alices")]), &["request", "--profile", "dom", url]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
}

#[test]
fn an_ntlm_session_yields_an_arcgis_token_sent_as_x_esri_authorization() {
    let peer = ntlm_peer();
    let home = Home::new();
    let base = peer.var("NTLM_BASE_URL");
    let portal = format!("{base}/portal");
    add_web_tier(
        &home,
        "iwa",
        &[
            &format!("url={portal}"),
            "mechanism=ntlm",
            "username=alice",
            &format!("generate_token_url={portal}/sharing/rest/generateToken"),
        ],
    );
    let password = [("AGE_OAUTH_PASSWORD", "alice-password")];
    let out = run(bare_cmd(&home, &password), &["token", "--profile", "iwa", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["access_token"].as_str().unwrap().starts_with("iwa_"), "{v}");
    assert_eq!(v["username"], "alice");

    let community = format!("{portal}/sharing/rest/community/self?f=json");
    let out = run(bare_cmd(&home, &password), &["request", "--profile", "iwa", &community]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let me: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me["username"], "alice");
}

#[test]
fn a_site_offering_neither_negotiate_nor_ntlm_is_a_clear_error() {
    let peer = ntlm_peer();
    let home = Home::new();
    let url = format!("{}/basic", peer.var("NTLM_BASE_URL"));
    add_web_tier(&home, "basic", &[&format!("url={url}"), "username=alice"]);
    let out =
        run(bare_cmd(&home, &[("AGE_OAUTH_PASSWORD", "alice-password")]), &["request", "--profile", "basic", &url]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains("does not offer") && err.contains("Basic realm=\"intranet\""), "{err}");
    assert!(!home.cache_file("basic").exists());
}
