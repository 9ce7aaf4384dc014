//! Issue 14, through the binary: list settings, the OS trust store, proxies (the real tinyproxy),
//! `doctor`, `--no-browser` with the listener still on, federated servers, the export passphrase.

use crate::common::*;
use age_oauth::sandbox::{OidcSim, OidcSimConfig};

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

// ------------------------------------------------------------------------------------------------
// TLS: the OS trust store (SSL_CERT_FILE / SSL_CERT_DIR), a pinned bundle, verification off
// ------------------------------------------------------------------------------------------------

/// A portal simulator behind HTTPS with a certificate of `ca`.
fn https_portal(ca: &TestCa, expired: bool) -> (age_oauth::sandbox::PortalSim, age_oauth::sandbox::TlsFront) {
    let sim = start_sim();
    let (chain, key) = ca.server_cert(expired);
    let backend: std::net::SocketAddr = format!("127.0.0.1:{}", sim.port()).parse().unwrap();
    let front = age_oauth::sandbox::TlsFront::start(backend, &chain, &key).unwrap();
    (sim, front)
}

#[test]
fn the_os_trust_store_via_ssl_cert_file_and_dir_a_pinned_bundle_and_verification_off() {
    let ca = TestCa::new("Example Corp Internal CA");
    let (sim, front) = https_portal(&ca, false);
    let home = Home::new();
    let ca_file = ca.write(&home.path().join("ca"), "corp-ca.pem");
    let portal = format!("{}/portal", front.origin());
    add_app_profile(&home, "corp", &portal, APP, APP_SECRET);

    // The OS store of this machine does not know the company CA: refused, exit 4.
    let out = home
        .cmd()
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .args(["token", "--profile", "corp"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).to_lowercase().contains("unknownissuer") || text(&out.stderr).contains("issuer"),
        "{}",
        text(&out.stderr)
    );

    // SSL_CERT_FILE, as OpenSSL tools read it: trusted, no profile change.
    let out = home
        .cmd()
        .env("SSL_CERT_FILE", &ca_file)
        .env_remove("SSL_CERT_DIR")
        .args(["token", "--profile", "corp", "-v"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("NOT checked"));
    assert!(sim.count("token") >= 1);

    // A valid cache never loads the trust store: even a broken SSL_CERT_FILE does not matter then.
    let out =
        home.cmd().env("SSL_CERT_FILE", "/nonexistent/ca.pem").args(["token", "--profile", "corp"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // ... but when a request is needed, it is a configuration error naming the variable.
    let out = home
        .cmd()
        .env("SSL_CERT_FILE", "/nonexistent/ca.pem")
        .env_remove("SSL_CERT_DIR")
        .args(["token", "--profile", "corp", "--min-ttl", "999999999"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("SSL_CERT_FILE (/nonexistent/ca.pem)"), "{}", text(&out.stderr));

    // SSL_CERT_DIR (a directory of PEM files) works the same.
    let before = sim.count("token");
    let out = home
        .cmd()
        .env_remove("SSL_CERT_FILE")
        .env("SSL_CERT_DIR", home.path().join("ca"))
        .args(["token", "--profile", "corp", "--min-ttl", "999999999"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sim.count("token"), before + 1, "a new token was fetched over the trusted connection");

    // verify_ssl = PATH pins a bundle: another CA in SSL_CERT_FILE does not matter, and the
    // company CA in SSL_CERT_FILE does not help a profile pinned to another CA.
    let other = TestCa::new("Someone Else CA");
    let other_file = other.write(&home.path().join("other"), "other.pem");
    add_app_profile(&home, "pinned", &portal, APP, APP_SECRET);
    let out =
        home.run(&["profile", "add", "pinned", "--provider", "esri-app", "--verify-ssl", ca_file.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.cmd().env("SSL_CERT_FILE", &other_file).args(["token", "--profile", "pinned"]).output().unwrap();
    assert_eq!(code(&out), 0, "pinned bundle wins: {}", text(&out.stderr));
    add_app_profile(&home, "wrongpin", &portal, APP, APP_SECRET);
    let out = home.run(&[
        "profile",
        "add",
        "wrongpin",
        "--provider",
        "esri-app",
        "--verify-ssl",
        other_file.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.cmd().env("SSL_CERT_FILE", &ca_file).args(["token", "--profile", "wrongpin"]).output().unwrap();
    assert_eq!(code(&out), 4, "the pin is not widened by the OS store: {}", text(&out.stderr));

    // verify_ssl = false works and warns on every use that talks to the server.
    add_app_profile(&home, "off", &portal, APP, APP_SECRET);
    let out = home.run(&["profile", "add", "off", "--provider", "esri-app", "--verify-ssl", "false"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    for _ in 0..2 {
        let out = home.run(&["token", "--profile", "off", "--min-ttl", "999999999"]);
        assert!(text(&out.stderr).contains("NOT checked"), "{}", text(&out.stderr));
    }
}

// ------------------------------------------------------------------------------------------------
// Proxies: the real tinyproxy (tests/setup/tinyproxy.sh installs it)
// ------------------------------------------------------------------------------------------------

/// A tinyproxy of our own on 127.0.0.1, with its config and log in a temp dir; killed (by its
/// pid, which we started) when dropped.
struct TinyProxy {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl TinyProxy {
    /// `rules`: extra config lines (Allow / BasicAuth ...).
    fn start(rules: &str) -> TinyProxy {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Info\nLogFile \"{}\"\nPidFile \"{}\"\n{rules}\n",
                dir.path().join("log").display(),
                dir.path().join("pid").display()
            ),
        )
        .unwrap();
        let program =
            ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"].into_iter().find(|p| std::path::Path::new(p).exists());
        let program = program.expect("tinyproxy is not installed: run `bash tests/setup/tinyproxy.sh`");
        let child = std::process::Command::new(program)
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "tinyproxy did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        TinyProxy { child, dir, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// How many requests for `target` (host:port) the proxy saw.
    fn requests_for(&self, target: &str) -> usize {
        self.log().lines().filter(|l| l.contains("Request (file descriptor") && l.contains(target)).count()
    }
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn requests_go_through_the_real_proxy_with_connect_and_are_refused_when_it_refuses() {
    let ca = TestCa::new("Proxy Test CA");
    let (sim, front) = https_portal(&ca, false);
    let home = Home::new();
    let ca_file = ca.write(&home.path().join("ca"), "ca.pem");
    add_app_profile(&home, "tls", &format!("{}/portal", front.origin()), APP, APP_SECRET);
    add_app_profile(&home, "plain", &sim.base_url(), APP, APP_SECRET);
    let proxy = TinyProxy::start("Allow 127.0.0.1\nBasicAuth proxyuser proxy-pass-1");
    let with_auth = format!("http://proxyuser:proxy-pass-1@127.0.0.1:{}", proxy.port);
    let https_target = front.addr().to_string();
    let plain_target = format!("127.0.0.1:{}", sim.port());
    let run = |profile: &str, vars: &[(&str, &str)]| {
        let mut cmd = home.cmd();
        for var in
            ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"]
        {
            cmd.env_remove(var);
        }
        cmd.env("SSL_CERT_FILE", &ca_file).env_remove("SSL_CERT_DIR");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(["token", "--profile", profile, "--min-ttl", "999999999", "-v"]).output().unwrap()
    };
    const THROUGH: (&str, &str) = ("AGE_OAUTH_INTERNAL_PROXY_LOOPBACK", "1");

    // HTTPS through the proxy: CONNECT, the proxy's credentials taken from the URL, never shown.
    let out = run("tls", &[("HTTPS_PROXY", &with_auth), THROUGH]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}\n{}", proxy.log());
    assert!(err.contains(&format!("via proxy http://***@127.0.0.1:{} (HTTPS_PROXY)", proxy.port)), "{err}");
    assert!(!err.contains("proxy-pass-1"));
    assert!(proxy.log().contains(&format!("CONNECT {https_target}")), "{}", proxy.log());

    // Plain http through http_proxy (lower case), and ALL_PROXY for a scheme without its own variable.
    let before = proxy.requests_for(&plain_target);
    let out = run("plain", &[("http_proxy", &with_auth), THROUGH]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("(http_proxy)"), "{}", text(&out.stderr));
    let out = run("plain", &[("ALL_PROXY", &with_auth), THROUGH]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("(ALL_PROXY)"), "{}", text(&out.stderr));
    assert_eq!(proxy.requests_for(&plain_target), before + 2, "{}", proxy.log());

    // Refused when it refuses: no credentials (407), and a proxy whose rules do not allow us (403).
    // The cached token is made expired (a still-valid one would be handed out with a warning).
    const EXPIRED: (&str, &str) = ("AGE_OAUTH_CLOCK_OFFSET", "999999");
    let out = run("tls", &[("HTTPS_PROXY", &proxy.url()), THROUGH, EXPIRED]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("via proxy"), "the error names the proxy: {}", text(&out.stderr));
    let denying = TinyProxy::start("Allow 192.0.2.1");
    let out = run("tls", &[("HTTPS_PROXY", &denying.url()), THROUGH, EXPIRED]);
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("via proxy {}", denying.url())), "{}", text(&out.stderr));
    assert!(denying.log().contains("Unauthorized connection from \"127.0.0.1\""), "{}", denying.log());

    // Loopback is never proxied (without the tests-only switch), and NO_PROXY goes direct.
    let seen = proxy.requests_for(&https_target);
    let out = run("tls", &[("HTTPS_PROXY", &denying.url())]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("direct (loopback is never proxied)"), "{}", text(&out.stderr));
    let out = run("tls", &[("HTTPS_PROXY", &denying.url()), ("NO_PROXY", "example.com,127.0.0.1"), THROUGH]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("direct (NO_PROXY)"), "{}", text(&out.stderr));
    assert_eq!(proxy.requests_for(&https_target), seen);
}

// ------------------------------------------------------------------------------------------------
// login --no-browser: the listener stays on; the callback or a paste, whichever comes first
// ------------------------------------------------------------------------------------------------

/// Starts `login --no-browser` for an esri-pkce profile and returns (child, stdin, the sign-in URL, stderr so far).
#[allow(clippy::zombie_processes)] // the child is returned: the caller waits for it
fn start_no_browser_login(
    home: &Home,
    profile: &str,
) -> (std::process::Child, std::process::ChildStdin, String, std::io::BufReader<std::process::ChildStderr>) {
    use std::io::BufRead;
    let mut child = home
        .cmd()
        .args(["login", "--profile", profile, "--no-browser"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(url) = line.split_whitespace().find(|w| w.contains("oauth2/authorize?")) {
            return (child, stdin, url.to_string(), stderr);
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no sign-in URL printed");
}

/// Plays a browser on this machine: follows redirects from `url` and returns the last page's body.
fn follow(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().into();
    let mut url = url.to_string();
    for _ in 0..10 {
        let mut response = agent.get(&url).call().unwrap();
        if let Some(next) = response.headers().get("location").and_then(|v| v.to_str().ok()) {
            url = next.to_string();
            continue;
        }
        return (response.status().as_u16(), response.body_mut().read_to_string().unwrap());
    }
    panic!("too many redirects");
}

fn finish(mut child: std::process::Child, mut stderr: impl std::io::Read) -> (i32, String) {
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), rest)
}

#[test]
fn no_browser_login_is_completed_by_the_browser_callback_with_stdin_still_open() {
    let sim = start_sim();
    let home = Home::new();
    add(&home, "desk", "esri-pkce", &["--portal", &sim.base_url(), "--client-id", "age-oauth-sandbox"]);
    let (child, stdin, url, stderr) = start_no_browser_login(&home, "desk");
    // A browser on this machine opens the URL: the portal sends it back to the listener.
    let (status, page) = follow(&url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Signed in"), "the browser gets the normal success page: {page}");
    let (code, err) = finish(child, stderr);
    drop(stdin); // kept open until the login ended: nothing was pasted
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Token is for user: demo"), "{err}");
    assert_eq!(text(&home.run(&["whoami", "--profile", "desk"]).stdout), "demo\n");
}

#[test]
fn no_browser_login_is_completed_by_a_paste_while_the_listener_waits() {
    use std::io::Write;
    let sim = start_sim();
    let home = Home::new();
    add(&home, "desk", "esri-pkce", &["--portal", &sim.base_url(), "--client-id", "age-oauth-sandbox"]);
    let (child, mut stdin, url, stderr) = start_no_browser_login(&home, "desk");
    let redirect = url.split("redirect_uri=").nth(1).unwrap().split('&').next().unwrap();
    let redirect = form_urlencoded::parse(format!("r={redirect}").as_bytes()).next().unwrap().1.into_owned();
    // The browser is elsewhere: it ends on the redirect URL, which the person copies.
    let landed = browse(&url, Some(&redirect));
    assert!(landed.contains("code="), "{landed}");
    writeln!(stdin, "{landed}").unwrap();
    let (code, err) = finish(child, stderr);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Token is for user: demo"), "{err}");
    // The listener is gone once the paste won.
    let port: u16 = redirect.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "listener closed");
}

// ------------------------------------------------------------------------------------------------
// esri-token with `server =` a federated ArcGIS Server: one profile, end to end
// ------------------------------------------------------------------------------------------------

#[test]
fn an_esri_token_profile_for_a_federated_server_follows_its_portal_end_to_end() {
    use age_oauth::sandbox::{ServerConfig, ServerSecurity, ServerSim};
    let sim = start_sim();
    let federated = ServerConfig { security: ServerSecurity::Federated(sim.federation()), ..Default::default() };
    let server = ServerSim::start("127.0.0.1:0", federated.clone()).unwrap();
    let home = Home::new();
    add(
        &home,
        "site",
        "esri-token",
        &[
            "--set",
            &format!("server={}", server.base_url()),
            "--set",
            "username=alice",
            "--set",
            "referer=https://scripts.example.test",
        ],
    );
    let token = |args: &[&str]| home.cmd().env("AGE_OAUTH_PASSWORD", "alice-password").args(args).output().unwrap();
    let out = token(&["token", "--profile", "site", "-vv"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    let server_token = text(&out.stdout).trim().to_string();
    assert!(server_token.starts_with("st_"), "a token valid for the server, not the portal token: {server_token}");
    assert!(err.contains("/sharing/rest/generateToken"), "the portal named by rest/info made it: {err}");
    assert_eq!(sim.count("generateToken:serverUrl"), 1);
    assert_eq!(server.count("services"), 1, "the server was shown the token and accepted it");
    assert!(!err.contains("alice-password") && !err.contains(&server_token));

    // Cached: the next call costs no request; the token opens the server's secured service.
    let again = token(&["token", "--profile", "site"]);
    assert_eq!(text(&again.stdout).trim(), server_token);
    assert_eq!(sim.count("generateToken:serverUrl"), 1);
    let out = token(&["request", "--profile", "site", &server.secure_service_url()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"mapName\":\"Secure\""), "{}", text(&out.stdout));
    let entry = home.load_cache("site");
    assert_eq!(entry.tokens.unwrap().username.as_deref(), Some("alice"));

    // A wrong password is the portal's refusal, nothing cached.
    let other = Home::new();
    add(&other, "site", "esri-token", &["--set", &format!("server={}", server.base_url()), "--set", "username=alice"]);
    let out = other.cmd().env("AGE_OAUTH_PASSWORD", "wrong").args(["token", "--profile", "site"]).output().unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(!other.cache_file("site").exists());
}

/// `SSL_CERT_FILE` and `SSL_CERT_DIR` are the process's own (the user's or the CI's), like the proxy
/// variables: a working directory's `.env` or `age-oauth.toml` cannot set them, so a checkout cannot
/// bring its own trust anchor (the profile's `verify_ssl`, which it could name, is bound).
#[test]
fn a_working_directory_cannot_set_the_trust_store_variables() {
    let ca = TestCa::new("Example Corp Internal CA");
    let (sim, front) = https_portal(&ca, false);
    let home = Home::new();
    let ca_file = ca.write(&home.path().join("ca"), "corp-ca.pem");
    add_app_profile(&home, "corp", &format!("{}/portal", front.origin()), APP, APP_SECRET);
    let checkout = home.path().join("work").join("checkout");
    std::fs::create_dir_all(&checkout).unwrap();
    // Were these honoured, the forced refresh below would fail: neither file exists.
    std::fs::write(checkout.join(".env"), "SSL_CERT_FILE=/nonexistent/evil.pem\nSSL_CERT_DIR=/nonexistent/certs\n")
        .unwrap();
    let run = |dir: &std::path::Path| {
        home.cmd()
            .current_dir(dir)
            .env("SSL_CERT_FILE", &ca_file)
            .env_remove("SSL_CERT_DIR")
            .args(["token", "--profile", "corp", "--min-ttl", "999999999"])
            .output()
            .unwrap()
    };
    let before = sim.count("token");
    let out = run(&checkout);
    assert_eq!(code(&out), 0, "the .env lines are not ours: {}", text(&out.stderr));
    assert_eq!(sim.count("token"), before + 1, "the refresh went out, verified against the process's CA");
    // A project file cannot name them either: they are no profile setting.
    std::fs::write(checkout.join("age-oauth.toml"), "SSL_CERT_FILE = \"/nonexistent/evil.pem\"\n").unwrap();
    let out = run(&checkout);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unknown top-level key `SSL_CERT_FILE`"), "{}", text(&out.stderr));
}
