//! `age-oauth demo` and `age-oauth sandbox`: the whole product against the built-in Portal
//! simulator, with no network and no prompt — the quickest way to see what age-oauth does.
#![allow(clippy::print_stdout, clippy::print_stderr)] // the `sandbox` and `demo` commands talk to the terminal

use crate::config::{self, Config};
use crate::engine::{Engine, LoginOutcome};
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpRequest, UreqClient, VerifySsl};
use crate::interact::{Interaction, Terminal};
use crate::paths::Paths;
use crate::protocol::arcgis::extract_code;
use crate::sandbox::{PortalConfig, PortalSim};
use crate::secret::Secret;
use crate::store::CacheStore;
use serde_json::json;

/// Serves the Portal simulator until the process is stopped.
pub fn run_sandbox(port: u16, tls: Option<crate::sandbox::TlsFiles>) -> Result<i32> {
    if let Some(files) = &tls {
        files.server_config().map_err(|e| Error::Config(format!("--tls-cert / --tls-key: {e}")))?;
    }
    let sim = PortalSim::start_with_tls(&format!("127.0.0.1:{port}"), PortalConfig::default(), tls.as_ref())
        .map_err(|e| Error::io(format!("cannot listen on 127.0.0.1:{port}"), e))?;
    let url = sim.base_url();
    println!("ArcGIS Portal sandbox at {url}");
    println!("  users: demo / demo-password, alice / alice-password (sign-ins are approved as demo)");
    println!("  apps:  age-oauth-sandbox (public), age-oauth-sandbox-app (secret: sandbox-app-secret)");
    println!("  admin: {} (counts, requests, config, advance_clock, revoke_all)", sim.admin_url());
    println!();
    println!("Try:");
    println!("  age-oauth profile add sandbox --provider esri-oob --portal {url} --client-id age-oauth-sandbox");
    println!("  age-oauth login --profile sandbox");
    println!();
    let org = start_okta_org(port)?;
    println!("Stop with Ctrl-C.");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    sim.serve_forever();
    drop(org);
    Ok(0)
}

/// The Okta org and the portal federated with it (ports `port + 1` and `port + 2`, or free ones), for `okta-esri`.
fn start_okta_org(port: u16) -> Result<crate::sandbox::FederatedOrg> {
    let next = |n: u16| if port == 0 { 0 } else { port.saturating_add(n) };
    let (okta_bind, portal_bind) = (format!("127.0.0.1:{}", next(1)), format!("127.0.0.1:{}", next(2)));
    let org = crate::sandbox::FederatedOrg::start(&okta_bind, &portal_bind, crate::sandbox::OktaConfig::default())
        .map_err(|e| Error::io(format!("cannot listen on {okta_bind} / {portal_bind}"), e))?;
    let (okta, portal) = (org.okta.base_url(), org.portal.base_url());
    println!("Okta org sandbox at {okta}");
    println!("  users (password okta-password): push@example.test (push, approved at the first poll),");
    println!(
        "    totp@example.test (TOTP, RFC 6238 seed \"12345678901234567890\"), sms@example.test, nomfa@example.test"
    );
    println!("ArcGIS portal federated with it (SAML) at {portal}");
    println!("Try:");
    println!(
        "  age-oauth profile add okta --provider okta-esri --set portal={portal} --set client_id=age-oauth-sandbox \\\n    \
         --set okta={okta} --set username=push@example.test"
    );
    println!("  AGE_OAUTH_PASSWORD=okta-password age-oauth login --profile okta");
    Ok(org)
}

/// The person in the demo: messages go to the terminal, and "the browser" is an
/// HTTP GET of the sign-in URL, which the sandbox approves, whose code is then "pasted".
struct DemoPerson {
    terminal: Terminal,
    http: UreqClient,
    code: Option<Secret>,
}

impl Interaction for DemoPerson {
    fn can_prompt(&self) -> bool {
        false
    }
    fn info(&mut self, message: &str) {
        self.terminal.info(message)
    }
    fn warn(&mut self, message: &str) {
        self.terminal.warn(message)
    }
    fn debug(&mut self, level: u8, message: &str) {
        self.terminal.debug(level, message)
    }
    fn shows_debug(&self, level: u8) -> bool {
        self.terminal.shows_debug(level)
    }
    fn open_browser(&mut self, url: &str) -> std::result::Result<(), String> {
        let page = self.http.send(&HttpRequest::get(url)).map_err(|e| e.to_string())?;
        let title = page.html_title().unwrap_or_default();
        self.code = extract_code(&title).map(Secret::new);
        eprintln!("(demo) the sandbox approved the sign-in; its page says \"SUCCESS code=…\"");
        Ok(())
    }
    fn read_line(&mut self, prompt: &str) -> Result<Option<String>> {
        eprintln!("{prompt}(demo) pasting the code from the approval page");
        Ok(self.code.take().map(|c| c.expose().to_string()))
    }
    fn read_secret(&mut self, _prompt: &str) -> Result<Option<Secret>> {
        Ok(None)
    }
}

/// Runs the demo: sandbox → profile → login → token → encrypted cache → refresh → whoami → logout.
pub fn run_demo(terminal: &mut Terminal) -> Result<i32> {
    let step = |n: u32, text: &str| println!("\n[{n}] {text}");
    let config = PortalConfig { access_token_lifetime: 1800, ..PortalConfig::default() };
    let sim = PortalSim::start("127.0.0.1:0", config).map_err(|e| Error::io("cannot start the sandbox", e))?;
    let home = tempfile::Builder::new()
        .prefix("age-oauth-demo-")
        .tempdir()
        .map_err(|e| Error::io("cannot create a temp dir", e))?;
    let paths = Paths::under(home.path().to_path_buf());
    let engine = Engine::new(paths.clone()).with_store(CacheStore::with_own_identity(paths.clone()));
    let mut person = DemoPerson { terminal: terminal.clone(), http: UreqClient::new(&VerifySsl::On)?, code: None };

    step(1, &format!("A throw-away sandbox portal at {} and AGE_OAUTH_HOME={}", sim.base_url(), home.path().display()));
    let fields = serde_json::from_value(json!({ "portal": sim.base_url(), "client_id": "age-oauth-sandbox" }))
        .unwrap_or_default();
    config::write_profile(&paths, "demo", "esri-oob", &fields)?;
    println!("    profile 'demo' (esri-oob) written to {}", paths.config_file.display());
    // Only the demo's own file: the caller's environment and project files are ignored.
    let text = std::fs::read_to_string(&paths.config_file).map_err(|e| Error::io("cannot read the demo config", e))?;
    let cfg = Config::from_parts(vec![(paths.config_file.clone(), text)], Default::default(), Default::default())?;
    let mut session = engine.session(cfg.resolve("demo", &[])?)?;

    step(2, "age-oauth login --profile demo");
    match engine.login(&mut session, &mut person, false, false)? {
        LoginOutcome::LoggedIn(t) => {
            let left = t.remaining(engine.clock.now()).unwrap_or(0);
            println!("    New access_token acquired!  Expires in: {}", crate::clock::hms(left));
            println!("    Token is for user: {}", t.username.as_deref().unwrap_or("?"));
        }
        _ => return Err(Error::Other("the demo expected a fresh login".into())),
    }

    step(3, "age-oauth token --profile demo   (from the cache: no network)");
    let first = engine.token(&mut session, &mut person, 0)?;
    println!(
        "    a {}-character access token (the real command prints it on stdout; the demo never shows it)",
        first.access_token.expose().len()
    );
    println!("    expires at {}", first.expires_at.map(crate::clock::rfc3339).unwrap_or_default());

    step(4, "The cache on disk is age ciphertext");
    let cache_path = paths.cache_file("demo");
    let bytes = std::fs::read(&cache_path).map_err(|e| Error::io("cannot read the demo cache", e))?;
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(21)]).to_string();
    let leaked = [first.access_token.expose(), first.refresh_token.as_ref().map(Secret::expose).unwrap_or("")]
        .iter()
        .filter(|s| !s.is_empty())
        .any(|s| bytes.windows(s.len()).any(|w| w == s.as_bytes()));
    println!("    {} ({} bytes) starts with {header:?}", cache_path.display(), bytes.len());
    println!("    access or refresh token in clear in the file: {}", if leaked { "YES (bug!)" } else { "no" });
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache_path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        println!("    file mode {mode:o}");
    }

    step(5, "age-oauth token --profile demo --min-ttl 7200   (the token has less: refresh under the lock)");
    let refreshed = engine.token(&mut session, &mut person, 7200)?;
    println!(
        "    refreshed: new token {}, refresh_token grants at the portal: {}",
        if refreshed.access_token != first.access_token { "differs" } else { "SAME (bug!)" },
        sim.count("token:refresh_token")
    );

    step(6, "age-oauth whoami --profile demo");
    let who = engine.whoami(&mut session, &mut person)?;
    println!("    {} ({})", who.username, who.details.get("fullName").and_then(|v| v.as_str()).unwrap_or(""));

    step(7, "age-oauth logout --profile demo");
    let report = engine.logout(&mut session, &mut person)?;
    println!("    {}", report.revocation.unwrap_or_default());
    match engine.token(&mut session, &mut person, 0) {
        Err(e @ Error::LoginRequired { .. }) => {
            println!("    token now: exit {} — {e}", e.exit_code())
        }
        other => {
            return Err(Error::Other(format!("after logout, token should need a login, got {:?}", other.map(|_| ()))))
        }
    }
    println!("\nDone: everything ran against 127.0.0.1; the temp home is deleted now.");
    sim.shutdown();
    Ok(0)
}
