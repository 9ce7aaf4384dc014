//! Shared harness for tests that drive the real `age-oauth` binary: a temp home,
//! a clean environment, the in-process Portal simulator, and the login dance.
#![allow(dead_code)]

use age_oauth::sandbox::{PortalConfig, PortalSim};
use age_oauth::Paths;
use age_oauth::{CacheEntry, CacheStore};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_age-oauth");
/// The sandbox's confidential app: it has a client secret the tests can hunt for.
pub const APP: &str = "age-oauth-sandbox-app";
pub const APP_SECRET: &str = "sandbox-app-secret";

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// AGE_OAUTH_HOME for the binary.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cache_file(&self, profile: &str) -> PathBuf {
        self.state().join("cache").join(format!("{profile}.age"))
    }

    /// The binary with a clean environment: no AGE_OAUTH_* from the caller, no browser.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("AGE_OAUTH_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AGE_OAUTH_HOME", self.state())
            .env("HOME", self.path())
            .env("AGE_OAUTH_BROWSER", "none")
            .env("NO_COLOR", "1")
            .current_dir(self.path().join("work"))
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run age-oauth")
    }

    /// Reads a profile's cache through the library, with the binary's identity file.
    pub fn load_cache(&self, profile: &str) -> CacheEntry {
        CacheStore::with_own_identity(Paths::under(self.state()))
            .load(profile)
            .expect("cache readable")
            .expect("cache present")
    }

    /// Every file under the home, with its bytes.
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    out.push((p, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub fn start_sim() -> PortalSim {
    PortalSim::start("127.0.0.1:0", PortalConfig::default()).expect("simulator")
}

/// Plays the person: fetches the sign-in URL (the simulator approves at once) and
/// returns the code from the approval page's `<title>SUCCESS code=…</title>`.
pub fn approve(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).build().into();
    let page = agent.get(url).call().expect("authorize page").body_mut().read_to_string().unwrap();
    let start = page.find("SUCCESS code=").expect("approval page has the code") + "SUCCESS code=".len();
    page[start..].split(|c: char| c == '<' || c.is_whitespace()).next().unwrap().to_string()
}

/// `login --no-browser`, answering with the approved code on stdin. Returns the output
/// (stderr includes everything the binary printed).
pub fn login(home: &Home, profile: &str, extra: &[&str]) -> Output {
    let mut cmd = home.cmd();
    cmd.args(["login", "--profile", profile, "--no-browser"]).args(extra);
    login_with(cmd)
}

/// `login` with a prepared command (its own environment and arguments).
pub fn login_with(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn login");
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(i) = line.find("http://") {
            if line.contains("oauth2/authorize") {
                let code = approve(line[i..].trim());
                writeln!(stdin, "{code}").unwrap();
                drop(stdin);
                break;
            }
        }
        line.clear();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let mut out = child.wait_with_output().unwrap();
    out.stderr = seen.into_bytes();
    out
}

/// Adds an `esri-app` profile (application credentials) for `portal`.
pub fn add_app_profile(home: &Home, profile: &str, portal: &str, client_id: &str, secret: &str) {
    let out = home.run(&[
        "profile",
        "add",
        profile,
        "--provider",
        "esri-app",
        "--portal",
        portal,
        "--client-id",
        client_id,
        "--client-secret",
        secret,
    ]);
    assert_eq!(code(&out), 0, "profile add failed: {}", text(&out.stderr));
}

/// Adds an `esri-oob` profile for the sandbox's confidential app.
pub fn add_profile(home: &Home, sim: &PortalSim, profile: &str) {
    let out = home.run(&[
        "profile",
        "add",
        profile,
        "--provider",
        "esri-oob",
        "--portal",
        &sim.base_url(),
        "--client-id",
        APP,
        "--client-secret",
        APP_SECRET,
    ]);
    assert_eq!(code(&out), 0, "profile add failed: {}", text(&out.stderr));
}

// ------------------------------------------------------------------------------------------------
// A scripted browser, and the real OpenID Connect server (tests/peers/oidc)
// ------------------------------------------------------------------------------------------------

/// Plays the browser: GETs `url`, follows redirects with a cookie jar, submits the
/// device-flow confirmation forms of oidc-provider, and returns the URL where it stopped:
/// the first one starting with `stop_at` (not requested), else the last page's URL.
pub fn browse(url: &str, stop_at: Option<&str>) -> String {
    use age_oauth::{HttpClient, HttpRequest, UreqClient, VerifySsl};
    let client = UreqClient::new(&VerifySsl::On).unwrap();
    let mut jar: std::collections::BTreeMap<String, String> = Default::default();
    let mut url = url.to_string();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..30 {
        if stop_at.is_some_and(|s| url.starts_with(s)) {
            return url;
        }
        let mut request = match form.take() {
            Some(fields) => {
                let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                HttpRequest::post_form(&url, &fields)
            }
            None => HttpRequest::get(&url),
        };
        if !jar.is_empty() {
            let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("Cookie", cookies.join("; "));
        }
        let response = client.send(&request).unwrap_or_else(|e| panic!("browser: {e}"));
        for set in response.header_values("set-cookie") {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || set.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().to_string(), v.to_string());
                }
            }
        }
        if let Some(location) = response.header("location") {
            url = absolute(&url, location);
            continue;
        }
        let page = String::from_utf8_lossy(&response.body).into_owned();
        // oidc-provider's device pages: a form with xsrf (and a confirm button) to post back.
        if response.status == 200 && page.contains("name=\"xsrf\"") {
            let action = attr_after(&page, "<form", "action").unwrap_or_default();
            let mut fields = Vec::new();
            for name in ["xsrf", "user_code", "confirm"] {
                if let Some(value) = input_value(&page, name) {
                    fields.push((name.to_string(), value));
                }
            }
            url = absolute(&url, &action);
            form = Some(fields);
            continue;
        }
        return url;
    }
    panic!("browser: too many redirects from {url}");
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let origin_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let origin = &base[..base[origin_end..].find('/').map(|i| i + origin_end).unwrap_or(base.len())];
    format!("{origin}{location}")
}

fn attr_after(page: &str, tag: &str, attr: &str) -> Option<String> {
    let start = page.find(tag)?;
    let rest = &page[start..];
    let end = rest.find('>')?;
    let needle = format!("{attr}=\"");
    let i = rest[..end].find(&needle)? + needle.len();
    Some(rest[i..].split('"').next()?.replace("&amp;", "&"))
}

fn input_value(page: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = page.find(&needle)?;
    let tag_start = page[..at].rfind('<')?;
    let tag_end = at + page[at..].find('>')?;
    let tag = &page[tag_start..tag_end];
    let i = tag.find("value=\"")? + 7;
    Some(tag[i..].split('"').next()?.to_string())
}

/// Writes a `browser` for `AGE_OAUTH_BROWSER`: curl follows the redirect chain (with a cookie
/// jar) all the way to age-oauth's loopback listener, as a browser would.
pub fn browser_script(dir: &Path) -> PathBuf {
    let path = dir.join("browser.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\njar=$(mktemp)\ncurl -sSL --max-redirs 30 -c \"$jar\" -b \"$jar\" -o /dev/null \"$1\"\nrm -f \"$jar\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The real oidc-provider, started once per test binary by tests/peers/oidc/start.sh; it
/// stops by itself when this test process ends (it watches our pid).
pub fn real_oidc_issuer() -> &'static str {
    static ISSUER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ISSUER.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let work = std::env::temp_dir().join(format!("age-oauth-oidc-peer-{}", std::process::id()));
        let out = Command::new("bash")
            .arg(root.join("tests/peers/oidc/start.sh"))
            .arg(&work)
            .env("OIDC_PARENT_PID", std::process::id().to_string())
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "the real OpenID Connect server (oidc-provider) could not start: {}\n\
             run `bash tests/setup/oidc.sh` to install Node.js and oidc-provider",
            text(&out.stderr)
        );
        text(&out.stdout).trim().to_string()
    })
}

/// The public native client registered in tests/peers/oidc/server.mjs.
pub const REAL_CLIENT: &str = "age-oauth-cli";
/// Its confidential twin, authenticated with HTTP Basic.
pub const REAL_CONFIDENTIAL_CLIENT: &str = "age-oauth-confidential";
pub const REAL_CONFIDENTIAL_SECRET: &str = "age-oauth-test-secret";

// ------------------------------------------------------------------------------------------------
// Real peers started by tests/peers/<name>/start.sh, and an attacker that logs everything
// ------------------------------------------------------------------------------------------------

/// A running peer: its work dir and the variables its start script wrote to `env`.
pub struct StartedPeer {
    pub dir: PathBuf,
    pub vars: std::collections::HashMap<String, String>,
}

impl StartedPeer {
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| panic!("{name} missing from {}/env", self.dir.display()))
    }
}

/// The NTLM site (tests/peers/ntlm), started once per test binary: it stops itself (and deletes its
/// dir) when this test process ends.
pub fn ntlm_peer() -> &'static StartedPeer {
    static PEER: std::sync::OnceLock<StartedPeer> = std::sync::OnceLock::new();
    PEER.get_or_init(|| start_named_peer("ntlm"))
}

/// The MIT KDC with Apache and mod_auth_gssapi (tests/peers/kerberos), started once per test binary.
pub fn kerberos_peer() -> &'static StartedPeer {
    static PEER: std::sync::OnceLock<StartedPeer> = std::sync::OnceLock::new();
    PEER.get_or_init(|| start_named_peer("kerberos"))
}

/// Starts `tests/peers/<name>/start.sh` in a fresh dir; it stops itself (and deletes the dir) when this
/// test process ends. Missing packages fail the test, naming the set-up script.
pub fn start_named_peer(name: &str) -> StartedPeer {
    start_named_peer_with(name, &[])
}

/// `start_named_peer` with arguments for the start script (`--tls`).
pub fn start_named_peer_with(name: &str, args: &[&str]) -> StartedPeer {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::Builder::new().prefix(&format!("age-oauth-{name}-")).tempdir().unwrap().keep();
    let out = Command::new("bash")
        .arg(root.join(format!("tests/peers/{name}/start.sh")))
        .args(args)
        .env("PEER_DIR", &dir)
        .env("WATCH_PID", std::process::id().to_string())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "the {name} peer did not start (exit {:?}):\n{}\nInstall its packages with `bash tests/setup/{name}.sh` \
         (as root; `bash tests/run-all.sh` runs every set-up script), then run the tests again.",
        out.status.code(),
        text(&out.stderr)
    );
    let env = std::fs::read_to_string(dir.join("env")).expect("the start script writes env");
    let mut vars = std::collections::HashMap::new();
    for line in env.lines() {
        let rest = line.trim_start_matches("export ").trim();
        // `K='v' K2='v2'`: values never contain quotes.
        for assignment in rest.split("' ").filter(|a| !a.is_empty()) {
            if let Some((k, v)) = assignment.split_once('=') {
                vars.insert(k.trim().to_string(), v.trim_matches('\'').to_string());
            }
        }
    }
    StartedPeer { dir, vars }
}

/// An "attacker" HTTP server on 127.0.0.1 that records every request it receives (method, URL,
/// headers, body) and answers a plausible token-shaped JSON object, so a client that reached it
/// would go on talking.
pub struct Attacker {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    server: std::sync::Arc<tiny_http::Server>,
}

impl Attacker {
    pub fn start() -> Attacker {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, log) = (server.clone(), seen.clone());
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
                let headers: Vec<String> =
                    request.headers().iter().map(|h| format!("{}: {}", h.field, h.value)).collect();
                log.lock().unwrap().push(format!("{} {} {headers:?} {body}", request.method(), request.url()));
                let answer = format!(
                    "{{\"access_token\":\"stolen\",\"token\":\"stolen\",\"expires_in\":3600,\"expires\":9999999999000,\
                     \"issuer\":\"http://127.0.0.1:{port}\",\"username\":\"attacker\"}}"
                );
                let header = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
                let _ = request.respond(tiny_http::Response::from_string(answer).with_header(header));
            }
        });
        Attacker { port, seen, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// A self-signed CA certificate (no key anywhere): what an attacker would have a victim trust.
pub const ATTACKER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjDCCATOgAwIBAgIUfgq4ujn1PniDbdRI/3RXF/OSXncwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQYXR0YWNrZXIgdGVzdCBDQTAgFw0yNjEyMDEwMDMyMDlaGA8y
MTI2MTEwNzAwMzIwOVowGzEZMBcGA1UEAwwQYXR0YWNrZXIgdGVzdCBDQTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABNF0D50Q0QgUsse4z3qmw3+1pddK4MqVGSi3
mnwXGbvGcvNXdOmTaCi4McHeeGIfKsMObabr7AFDuj11FhpYC4ajUzBRMB0GA1Ud
DgQWBBSk952HI30wHiIiHRvWuLZO8X/eZjAfBgNVHSMEGDAWgBSk952HI30wHiIi
HRvWuLZO8X/eZjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIHsO
vcWxnTmLrrq8zmO24S1DHEb6KXBum+y47ySVmctqAiB6yP2P5557+2FDdY/Fh7va
lbuxuVdC3QFyatKKUC6rkQ==
-----END CERTIFICATE-----
";

/// A throw-away certificate authority and the server certificates it signs.
pub struct TestCa {
    pem: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        TestCa { pem: issuer.pem(), issuer }
    }

    /// A certificate for 127.0.0.1 and localhost: (chain PEM, key PEM). `expired`: it ended in 2021.
    pub fn server_cert(&self, expired: bool) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = if expired { rcgen::date_time_ymd(2021, 1, 1) } else { rcgen::date_time_ymd(2099, 1, 1) };
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (format!("{}{}", cert.pem(), self.pem), key.serialize_pem())
    }

    /// Writes the CA certificate (PEM) to `dir/file`.
    pub fn write(&self, dir: &std::path::Path, file: &str) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(file);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }
}

/// `login --profile P --with-key` with the key on stdin (and `env` added to the environment).
pub fn login_with_key(home: &Home, profile: &str, key: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = home.cmd();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(["login", "--profile", profile, "--with-key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
    child.wait_with_output().unwrap()
}

/// `profile add NAME --provider PROVIDER --set k=v ...`, which must succeed.
pub fn add_with_sets(home: &Home, name: &str, provider: &str, sets: &[(&str, &str)]) {
    let mut args = vec!["profile".to_string(), "add".into(), name.into(), "--provider".into(), provider.into()];
    for (k, v) in sets {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = home.run(&args);
    assert_eq!(code(&out), 0, "profile add {name}: {}", text(&out.stderr));
}

/// A library `Client` over the binary's home (the same cache and identity), with `env` as its environment.
pub fn library_client(home: &Home, profile: &str, env: &[(&str, &str)]) -> age_oauth::Client {
    let paths = Paths::under(home.state());
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config =
        age_oauth::Config::from_parts(vec![(paths.config_file.clone(), text)], Default::default(), env).unwrap();
    let engine = age_oauth::Engine::new(paths.clone()).with_store(CacheStore::with_own_identity(paths));
    let session = engine.session(config.resolve(profile, &[]).unwrap()).unwrap();
    age_oauth::Client::new(engine, session)
}
