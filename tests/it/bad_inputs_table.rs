//! A table of bad inputs — profile files, server answers, caches, environment — each of which
//! must end in a one-line error, the expected non-zero exit, no panic and no secret in the output.

use crate::common::*;
use std::collections::HashMap;
use std::sync::Arc;

const SECRET: &str = "s3cr3t-value-for-the-table";

/// What one case expects.
struct Expect {
    exit: i32,
    needle: &'static str,
}

fn check(case: &str, out: &std::process::Output, expect: &Expect, secrets: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(code(out), expect.exit, "{case}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{case}: one line: {err}");
    assert!(err.starts_with("error: "), "{case}: {err}");
    assert!(
        err.to_lowercase().contains(&expect.needle.to_lowercase()),
        "{case}: expected `{}` in {err}",
        expect.needle
    );
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{case}: {err}");
    assert!(out.stdout.is_empty(), "{case}: nothing on stdout");
    for s in secrets {
        assert!(!err.contains(s), "{case}: a secret leaked");
    }
}

#[test]
fn bad_profile_files() {
    let cases: &[(&str, &str, Expect)] = &[
        ("unclosed table", "[profiles.p\nprovider = \"esri-oob\"\n", Expect { exit: 2, needle: "config.toml:1:" }),
        ("unterminated string", "[profiles.p]\nprovider = \"esri-oob\n", Expect { exit: 2, needle: "config.toml:2:" }),
        ("duplicate key", "[profiles.p]\nprovider = \"esri-oob\"\nprovider = \"esri-app\"\n", Expect { exit: 2, needle: "config.toml:3:" }),
        ("profiles not a table", "profiles = 3\n", Expect { exit: 2, needle: "must be a table" }),
        ("profile not a table", "[profiles]\np = \"x\"\n", Expect { exit: 2, needle: "must be a table" }),
        ("unknown top-level key", "colour = \"blue\"\n", Expect { exit: 2, needle: "unknown top-level key" }),
        ("unknown field", "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example\"\nclient_id = \"c\"\nportl = 1\n", Expect { exit: 2, needle: "unknown field `portl`" }),
        ("unknown provider", "[profiles.p]\nprovider = \"esri-nope\"\n", Expect { exit: 2, needle: "known providers" }),
        ("no provider", "[profiles.p]\nportal = \"https://x.example\"\n", Expect { exit: 2, needle: "no `provider`" }),
        ("missing required", "[profiles.p]\nprovider = \"esri-oob\"\n", Expect { exit: 2, needle: "missing required field(s): client_id, portal" }),
        ("client secret in toml", "[profiles.p]\nprovider = \"esri-oob\"\nclient_secret = \"s3cr3t-value-for-the-table\"\n", Expect { exit: 2, needle: "never read from TOML" }),
        ("password in toml", "[profiles.p]\nprovider = \"esri-oob\"\npassword = \"s3cr3t-value-for-the-table\"\n", Expect { exit: 2, needle: "is a secret" }),
        ("wrong type", "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example\"\nclient_id = \"c\"\nexpiration = \"soon\"\n", Expect { exit: 2, needle: "field `expiration`" }),
        ("negative margin", "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example\"\nclient_id = \"c\"\nrefresh_margin = -5\n", Expect { exit: 2, needle: "refresh_margin" }),
        ("verify_ssl number", "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example\"\nclient_id = \"c\"\nverify_ssl = 3\n", Expect { exit: 2, needle: "verify_ssl" }),
        ("bad profile name", "[profiles.\"bad name\"]\nprovider = \"esri-oob\"\n", Expect { exit: 2, needle: "invalid profile name" }),
        ("http on a remote host", "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"http://gis.example.com/portal\"\nclient_id = \"c\"\n", Expect { exit: 2, needle: "non-loopback" }),
        ("ftp portal", "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"ftp://gis.example.com\"\nclient_id = \"c\"\n", Expect { exit: 2, needle: "https://" }),
        ("default_profile not a string", "default_profile = 5\n", Expect { exit: 2, needle: "default_profile" }),
        ("CA bundle that is not there", "[profiles.p]\nprovider = \"esri-app\"\nportal = \"https://x.example\"\nclient_id = \"c\"\nverify_ssl = \"/nonexistent/ca.pem\"\n", Expect { exit: 2, needle: "CA bundle" }),
    ];
    for (name, toml, expect) in cases {
        let home = Home::new();
        std::fs::create_dir_all(home.state()).unwrap();
        std::fs::write(home.state().join("config.toml"), toml).unwrap();
        let out = home
            .cmd()
            .env("AGE_OAUTH_CLIENT_SECRET", SECRET)
            .args(["token", "--profile", "p", "-vvv"])
            .output()
            .unwrap();
        check(name, &out, expect, &[SECRET]);
        assert_eq!(std::fs::read_to_string(home.state().join("config.toml")).unwrap(), *toml, "{name}: file untouched");
    }
}

/// A server that answers `/<case>/...` with that case's canned answer.
fn bad_server(answers: HashMap<String, (u16, &'static str, Vec<u8>)>) -> (u16, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let s = server.clone();
    std::thread::spawn(move || {
        for request in s.incoming_requests() {
            let case = request.url().trim_start_matches('/').split('/').next().unwrap_or_default().to_string();
            let (status, ct, body) = answers.get(&case).cloned().unwrap_or((404, "text/plain", b"no case".to_vec()));
            let mut response = tiny_http::Response::from_data(body).with_status_code(status);
            if !ct.is_empty() {
                response = response.with_header(tiny_http::Header::from_bytes("Content-Type", ct).unwrap());
            }
            if status == 302 {
                response = response
                    .with_header(tiny_http::Header::from_bytes("Location", "https://elsewhere.example/").unwrap());
            }
            let _ = request.respond(response);
        }
    });
    (port, server)
}

#[test]
fn bad_server_answers() {
    let json = "application/json";
    let cases: Vec<(&str, u16, &str, Vec<u8>, &str)> = vec![
        ("html-200", 200, "text/html", b"<html><head><title>Sign In</title></head></html>".to_vec(), "HTML page"),
        ("html-no-content-type", 200, "", b"<!DOCTYPE html><html></html>".to_vec(), "HTML page"),
        ("empty-200", 200, json, Vec::new(), "not JSON"),
        ("truncated-json", 200, json, b"{\"access_token\": \"abc".to_vec(), "not JSON"),
        ("json-array", 200, json, b"[1,2,3]".to_vec(), "not an object"),
        ("json-string", 200, json, b"\"token\"".to_vec(), "not an object"),
        ("token-a-number", 200, json, b"{\"access_token\": 5, \"expires_in\": 60}".to_vec(), "no access_token"),
        ("empty-object", 200, json, b"{}".to_vec(), "no access_token"),
        (
            "expires-not-number",
            200,
            json,
            b"{\"access_token\": \"a\", \"expires_in\": \"soon\"}".to_vec(),
            "expires_in",
        ),
        ("expires-negative", 200, json, b"{\"access_token\": \"a\", \"expires_in\": -5}".to_vec(), "expires_in"),
        (
            "arcgis-error",
            200,
            json,
            br#"{"error":{"code":400,"error":"invalid_request","message":"Invalid client_secret","details":[]}}"#
                .to_vec(),
            "Invalid client_secret",
        ),
        (
            "rfc6749-error",
            400,
            json,
            br#"{"error":"invalid_client","error_description":"bad"}"#.to_vec(),
            "invalid_client",
        ),
        ("empty-error", 200, json, br#"{"error":{}}"#.to_vec(), "unspecified error"),
        ("http-500-html", 500, "text/html", b"<html><title>Internal Server Error</title></html>".to_vec(), "HTTP 500"),
        ("http-502-empty", 502, "", Vec::new(), "HTTP 502"),
        ("redirect", 302, "text/plain", Vec::new(), "HTTP 302"),
        ("binary", 200, "application/octet-stream", vec![0, 159, 146, 150, 255, 0, 1], "not JSON"),
        ("huge", 200, json, vec![b' '; 9 * 1024 * 1024], "larger than"),
    ];
    let answers =
        cases.iter().map(|(name, status, ct, body, _)| (name.to_string(), (*status, *ct, body.clone()))).collect();
    let (port, _server) = bad_server(answers);
    for (name, _, _, _, needle) in &cases {
        let home = Home::new();
        let portal = format!("http://127.0.0.1:{port}/{name}/portal");
        add_app_profile(&home, "p", &portal, "c", SECRET);
        let out = home.run(&["token", "--profile", "p", "-vvv"]);
        let expect = Expect { exit: 4, needle };
        // -vvv adds debug lines: judge the last line, and that no line leaks.
        let err = text(&out.stderr);
        let last = err.trim_end().lines().last().unwrap_or_default().to_string();
        let trimmed = std::process::Output {
            status: out.status,
            stdout: out.stdout.clone(),
            stderr: format!("{last}\n").into_bytes(),
        };
        check(name, &trimmed, &expect, &[SECRET]);
        assert!(!err.contains(SECRET), "{name}: secret in -vvv output");
        assert!(home.load_cache("p").tokens.is_none(), "{name}: nothing stored from a bad answer");
    }
}

#[test]
fn bad_caches_and_environments() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let cache = home.cache_file("prod");
    let good = std::fs::read(&cache).unwrap();
    let other_identity = home.path().join("other.txt");
    std::fs::write(
        &other_identity,
        format!("{}\n", age::secrecy::ExposeSecret::expose_secret(&age::x25519::Identity::generate().to_string())),
    )
    .unwrap();
    let garbage_identity = home.path().join("garbage.txt");
    std::fs::write(&garbage_identity, "not a key\n").unwrap();
    // A valid age file (to our key) holding something that is not a cache.
    let our_key = text(&home.run(&["key", "show"]).stdout).trim().to_string();
    let recipient: age::x25519::Recipient = our_key.parse().unwrap();
    let not_a_cache = age_oauth::encrypt_to(b"{\"hello\": 1}", &[recipient]).unwrap();

    type Setup<'a> = (&'a str, Option<Vec<u8>>, Vec<(&'a str, String)>, Expect);
    let cases: Vec<Setup> = vec![
        (
            "truncated cache",
            Some(good[..good.len() / 2].to_vec()),
            vec![],
            Expect { exit: 1, needle: "cannot be read" },
        ),
        ("cut after the header", Some(good[..40].to_vec()), vec![], Expect { exit: 1, needle: "cannot be read" }),
        ("zero-length cache", Some(Vec::new()), vec![], Expect { exit: 1, needle: "empty" }),
        ("garbage cache", Some(b"\x00\x01garbage".to_vec()), vec![], Expect { exit: 1, needle: "not an age file" }),
        (
            "one flipped byte",
            Some({
                let mut b = good.clone();
                let n = b.len() - 5;
                b[n] ^= 0xff;
                b
            }),
            vec![],
            Expect { exit: 1, needle: "cannot be read" },
        ),
        ("not a cache inside", Some(not_a_cache), vec![], Expect { exit: 1, needle: "not a cache" }),
        (
            "foreign key",
            None,
            vec![("AGE_OAUTH_IDENTITY", other_identity.display().to_string())],
            Expect { exit: 1, needle: "another key" },
        ),
        (
            "identity file missing",
            None,
            vec![("AGE_OAUTH_IDENTITY", "/nonexistent/key.txt".into())],
            Expect { exit: 1, needle: "AGE_OAUTH_IDENTITY" },
        ),
        (
            "identity file garbage",
            None,
            vec![("AGE_OAUTH_IDENTITY", garbage_identity.display().to_string())],
            Expect { exit: 2, needle: "no age X25519 identity" },
        ),
        (
            "passphrase for an identity cache",
            None,
            vec![("AGE_OAUTH_PASSPHRASE", "x".into())],
            Expect { exit: 1, needle: "unset AGE_OAUTH_PASSPHRASE" },
        ),
        (
            "empty passphrase",
            None,
            vec![("AGE_OAUTH_PASSPHRASE", "".into())],
            Expect { exit: 2, needle: "set but empty" },
        ),
        (
            "clock offset not a number",
            None,
            vec![("AGE_OAUTH_CLOCK_OFFSET", "soon".into())],
            Expect { exit: 2, needle: "AGE_OAUTH_CLOCK_OFFSET" },
        ),
        // A configuration file that cannot be read is a configuration error (exit 2).
        (
            "home is a file",
            None,
            vec![("AGE_OAUTH_HOME", "/etc/hostname".into())],
            Expect { exit: 2, needle: "cannot read" },
        ),
    ];
    for (name, bytes, env, expect) in &cases {
        std::fs::write(&cache, bytes.as_deref().unwrap_or(&good)).unwrap();
        let before = std::fs::read(&cache).unwrap();
        let mut cmd = home.cmd();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let args: &[&str] = if *name == "home is a file" {
            &["profile", "add", "x", "--portal", "https://x.example", "--client-id", "c", "--client-secret", SECRET]
        } else {
            &["token", "--profile", "prod", "--min-ttl", "999999"]
        };
        let out = cmd.args(args).output().unwrap();
        check(name, &out, expect, &[SECRET, APP_SECRET]);
        assert_eq!(std::fs::read(&cache).unwrap(), before, "{name}: the cache is left as it was");
    }
    // An unwritable home (not root-proof: root may write anywhere, so use a path under a file).
    let out = home.cmd().env("AGE_OAUTH_HOME", "/etc/hostname/sub").args(["key", "show"]).output().unwrap();
    check("unwritable home", &out, &Expect { exit: 1, needle: "cannot" }, &[]);
}

/// Issue 8, trust part: configuration that cannot be read or trusted, and stores that lead outside.
#[test]
fn untrusted_or_unreadable_configuration() {
    let sim = start_sim();
    let user_file = |portal: &str, extra: &str| {
        format!("[profiles.p]\nprovider = \"esri-app\"\nportal = \"{portal}\"\nclient_id = \"{APP}\"\n{extra}")
    };
    let good = user_file(&sim.base_url(), "");
    type Files<'a> = Vec<(&'a str, Vec<u8>)>;
    let cases: Vec<(&str, Files, Vec<&str>, Expect)> = vec![
        (
            "user file not UTF-8",
            vec![("state/config.toml", b"[profiles.p]\nprovider = \"esri-app\" # caf\xe9\n".to_vec())],
            vec!["token", "--profile", "p"],
            Expect { exit: 2, needle: "config.toml:2:" },
        ),
        (
            "project file not UTF-8",
            vec![("state/config.toml", good.clone().into_bytes()), ("work/age-oauth.toml", b"# \xff\xfe\n".to_vec())],
            vec!["token", "--profile", "p"],
            Expect { exit: 2, needle: "not UTF-8" },
        ),
        (
            ".env line of ours with an open quote",
            vec![
                ("state/config.toml", good.clone().into_bytes()),
                ("work/.env", format!("OTHER=1\nAGE_OAUTH_CLIENT_ID=\"{SECRET}\n").into_bytes()),
            ],
            vec!["token", "--profile", "p"],
            Expect { exit: 2, needle: ".env:2: cannot parse the line that sets `AGE_OAUTH_CLIENT_ID`" },
        ),
        (
            "CA bundle without a certificate",
            vec![
                ("state/config.toml", user_file(&sim.base_url(), "verify_ssl = \"ca.pem\"\n").into_bytes()),
                ("state/ca.pem", b"-----BEGIN NOTHING-----\n".to_vec()),
            ],
            vec!["profile", "show", "p"],
            Expect { exit: 2, needle: "holds no PEM certificate" },
        ),
        (
            "password in a portal URL",
            vec![("state/config.toml", user_file(&format!("http://me:{SECRET}@127.0.0.1:9/portal"), "").into_bytes())],
            vec!["token", "--profile", "p"],
            Expect { exit: 4, needle: "me:***@127.0.0.1:9" },
        ),
        (
            "project file pointing a bound profile elsewhere",
            vec![("work/age-oauth.toml", b"[profiles.p]\nportal = \"http://127.0.0.1:9/evil\"\n".to_vec())],
            vec!["token", "--profile", "p"],
            Expect { exit: 2, needle: "login --profile p --force" },
        ),
        (
            "migrate a connection id with ..",
            vec![(
                "py/connections.json",
                br#"{"schema_version":1,"connections":[{"id":"../../x","label":"x"}]}"#.to_vec(),
            )],
            vec!["migrate", "python-age-oauth", "--from", "../py"],
            Expect { exit: 2, needle: "not a plain name" },
        ),
        (
            "migrate an absolute connection id",
            vec![(
                "py/connections.json",
                br#"{"schema_version":1,"connections":[{"id":"/etc/x","label":"x"}]}"#.to_vec(),
            )],
            vec!["migrate", "python-age-oauth", "--from", "../py"],
            Expect { exit: 2, needle: "not a plain name" },
        ),
        (
            ".env naming a CA bundle that is not there",
            vec![
                ("state/config.toml", good.clone().into_bytes()),
                ("work/.env", b"AGE_OAUTH_VERIFY_SSL=./missing-ca.pem\n".to_vec()),
            ],
            vec!["profile", "show", "p"],
            Expect { exit: 2, needle: "missing-ca.pem" },
        ),
    ];
    for (name, files, args, expect) in &cases {
        let home = Home::new();
        if name.contains("bound profile") {
            add_app_profile(&home, "p", &sim.base_url(), APP, APP_SECRET);
            assert_eq!(code(&home.run(&["token", "--profile", "p"])), 0, "{name}: set-up");
        }
        for (path, bytes) in files {
            let path = home.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let out = home.cmd().env("AGE_OAUTH_CLIENT_SECRET", APP_SECRET).args(args).output().unwrap();
        check(name, &out, expect, &[SECRET, APP_SECRET]);
    }
}

/// A listener that accepts connections and never answers (a hung server).
fn black_hole() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// The engine's bad inputs (issue 8): refusing, failing, hung and absent token endpoints,
/// broken settings of the engine, renamed and damaged caches, absurd numbers.
#[test]
fn engine_bad_inputs() {
    let json = "application/json";
    let answers: HashMap<String, (u16, &'static str, Vec<u8>)> = [
        ("http-401", (401, "text/plain", b"Unauthorized".to_vec())),
        ("http-503", (503, "text/html", b"<html><title>Service Unavailable</title></html>".to_vec())),
        ("http-429", (429, "", Vec::new())),
        ("expires-float", (200, json, br#"{"access_token":"a","expires_in":1e30}"#.to_vec())),
        ("expires-huge", (200, json, br#"{"access_token":"a","expires_in":18446744073709551615}"#.to_vec())),
        // generateToken answers (portal tokens and federated server tokens): `expires` in epoch ms.
        ("gt-expires-huge", (200, json, br#"{"token":"t","expires":18446744073709551615}"#.to_vec())),
        ("gt-expires-huge-string", (200, json, br#"{"token":"t","expires":"18446744073709551615"}"#.to_vec())),
        ("gt-expires-float", (200, json, br#"{"token":"t","expires":1e30}"#.to_vec())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (port, _server) = bad_server(answers);
    let hung = black_hole();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // (case, portal, extra environment, expectation)
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Expect);
    let server_cases: Vec<Case> = vec![
        (
            "token endpoint 401",
            format!("http://127.0.0.1:{port}/http-401/portal"),
            vec![],
            Expect { exit: 3, needle: "age-oauth login --profile p" },
        ),
        (
            "token endpoint 503",
            format!("http://127.0.0.1:{port}/http-503/portal"),
            vec![],
            Expect { exit: 4, needle: "HTTP 503" },
        ),
        (
            "token endpoint 429",
            format!("http://127.0.0.1:{port}/http-429/portal"),
            vec![],
            Expect { exit: 4, needle: "HTTP 429" },
        ),
        (
            "expires_in not an integer",
            format!("http://127.0.0.1:{port}/expires-float/portal"),
            vec![],
            Expect { exit: 4, needle: "expires_in" },
        ),
        (
            "hung token endpoint",
            format!("http://127.0.0.1:{hung}/portal"),
            vec![("AGE_OAUTH_HTTP_TIMEOUT", "1")],
            Expect { exit: 4, needle: "timeout" },
        ),
        (
            "closed port",
            format!("http://127.0.0.1:{closed}/portal"),
            vec![],
            Expect { exit: 4, needle: "connection refused" },
        ),
        (
            "HTTP timeout not a number",
            format!("http://127.0.0.1:{closed}/portal"),
            vec![("AGE_OAUTH_HTTP_TIMEOUT", "soon")],
            Expect { exit: 2, needle: "AGE_OAUTH_HTTP_TIMEOUT" },
        ),
        (
            "HTTP timeout absurd",
            format!("http://127.0.0.1:{closed}/portal"),
            vec![("AGE_OAUTH_HTTP_TIMEOUT", "18446744073709551616")],
            Expect { exit: 2, needle: "AGE_OAUTH_HTTP_TIMEOUT" },
        ),
    ];
    for (name, portal, env, expect) in &server_cases {
        let home = Home::new();
        add_app_profile(&home, "p", portal, "c", SECRET);
        let mut cmd = home.cmd();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(["token", "--profile", "p"]).output().unwrap();
        check(name, &out, expect, &[SECRET]);
        assert!(home.load_cache("p").tokens.is_none(), "{name}: nothing stored");
    }

    // Absurd but well-formed numbers are clamped: no error, no panic, then or later.
    let home = Home::new();
    add_app_profile(&home, "p", &format!("http://127.0.0.1:{port}/expires-huge/portal"), "c", SECRET);
    for args in
        [&["token", "--profile", "p", "--json"][..], &["status", "--profile", "p"], &["profile", "list", "--json"]]
    {
        let out = home.run(args);
        assert_eq!(code(&out), 0, "absurd expires_in {args:?}: {}", text(&out.stderr));
    }

    // generateToken's `expires` (epoch ms), absurd: clamped where it is read (`generated_token`,
    // which federated server tokens and web-tier go through too); a float is refused.
    for case in ["gt-expires-huge", "gt-expires-huge-string"] {
        let home = Home::new();
        let portal = format!("http://127.0.0.1:{port}/{case}/portal");
        let add = ["profile", "add", "g", "--provider", "esri-token", "--set", &format!("portal={portal}")];
        let out = home.run(&[&add[..], &["--set", "username=alice", "--set", &format!("password={SECRET}")]].concat());
        assert_eq!(code(&out), 0, "{case}: {}", text(&out.stderr));
        for args in
            [&["token", "--profile", "g", "--json"][..], &["status", "--profile", "g"], &["profile", "list", "--json"]]
        {
            let out = home.run(args);
            assert_eq!(code(&out), 0, "{case}: absurd expires {args:?}: {}", text(&out.stderr));
            assert!(!text(&out.stdout).contains("18446744073709551"), "{case} {args:?}: clamped");
        }
    }
    let home = Home::new();
    let portal = format!("http://127.0.0.1:{port}/gt-expires-float/portal");
    let add = ["profile", "add", "g", "--provider", "esri-token", "--set", &format!("portal={portal}")];
    let out = home.run(&[&add[..], &["--set", "username=alice", "--set", &format!("password={SECRET}")]].concat());
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.run(&["token", "--profile", "g"]);
    check("generateToken expires a float", &out, &Expect { exit: 4, needle: "epoch milliseconds" }, &[SECRET]);

    // Caches and settings.
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "a");
    add_profile(&home, &sim, "b");
    assert_eq!(code(&login(&home, "a", &[])), 0);
    std::fs::copy(home.cache_file("a"), home.cache_file("b")).unwrap();
    let out = home.run(&["token", "--profile", "b"]);
    check("renamed cache", &out, &Expect { exit: 1, needle: "renamed or copied" }, &[SECRET, APP_SECRET]);
    std::fs::write(home.cache_file("b"), b"\x00garbage").unwrap();
    let config_before = std::fs::read(home.state().join("config.toml")).unwrap();
    let out = home.run(&["profile", "add", "b", "--set", "expiration=120"]);
    check("profile add over a damaged cache", &out, &Expect { exit: 1, needle: "cannot be read" }, &[APP_SECRET]);
    assert_eq!(std::fs::read(home.state().join("config.toml")).unwrap(), config_before, "nothing written");
    let out = home.run(&[
        "profile",
        "add",
        "k",
        "--provider",
        "esri-pkce",
        "--portal",
        "https://gis.example.com/portal",
        "--client-id",
        "c",
        "--set",
        "login_timeout=18446744073709551615",
    ]);
    check("login_timeout near the integer maximum", &out, &Expect { exit: 2, needle: "login_timeout" }, &[]);
    let out = home.run(&[
        "profile",
        "add",
        "k",
        "--provider",
        "esri-pkce",
        "--portal",
        "https://gis.example.com/portal",
        "--client-id",
        "c",
        "--set",
        "login_timeout=0",
    ]);
    check("login_timeout zero", &out, &Expect { exit: 2, needle: "login_timeout" }, &[]);
}
