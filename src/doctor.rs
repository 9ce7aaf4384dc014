//! `age-oauth doctor`: one row per check (configuration, key and cache, binding, DNS, TCP, TLS, proxy,
//! clock, tokens, ArcGIS endpoints), each `ok` / `warn` / `fail` with the next step. Sends no credential.

use crate::binding::{self, Binding, Origin, Trust as BoundTrust};
use crate::config::{Config, DOTENV_FILE, ENV_PREFIX, PROJECT_FILE};
use crate::engine::{Engine, Session};
use crate::env::Env;
use crate::http::{HttpClient, HttpRequest, ProxyEnv, Route, Trust, UreqClient, VerifySsl};
use crate::store::CacheEntry;
use serde::Serialize;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a DNS answer, a TCP connection or a TLS handshake may take.
const NET_TIMEOUT: Duration = Duration::from_secs(5);
/// Clock difference to the server that is worth a warning, and one that breaks token lifetimes.
const SKEW_WARN_SECS: i64 = 60;
const SKEW_FAIL_SECS: i64 = 300;
/// A certificate this close to its end is worth a warning.
const CERT_WARN_DAYS: i64 = 30;
/// The redirect port `doctor` asks about when login picks a free one each time.
pub const ANY_LOOPBACK_PORT: u16 = 49152;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report. `hint` is the next step, for every non-ok line.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub check: String,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

impl Check {
    fn ok(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { profile: None, check: check.into(), status: Status::Ok, detail: detail.into(), hint: None }
    }
    fn warn(check: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { status: Status::Warn, hint: Some(hint.into()), ..Check::ok(check, detail) }
    }
    fn fail(check: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check { status: Status::Fail, hint: Some(hint.into()), ..Check::ok(check, detail) }
    }
}

/// An unauthenticated request a provider lets `doctor` make to one of its own origins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An ArcGIS `rest/info` (server) or `sharing/rest/info` (portal), asked with `f=json`.
    ArcgisInfo { url: String },
    /// Is `redirect_uri` registered for `client_id`? Asked with an unsupported `response_type`: by
    /// RFC 6749 §4.1.2.1 a bad client or redirect is shown as an error page, anything else goes back
    /// to the redirect as `error=unsupported_response_type` (no sign-in starts, no code is made).
    AuthorizeRedirect { authorize_url: String, client_id: String, redirect_uri: String },
}

/// The whole report: the configuration layers and key, then every profile (or only `profile`).
pub fn run(engine: &Engine, cwd: &Path, profile: Option<&str>) -> Vec<Check> {
    let mut rows = vec![config_layers(engine, cwd)];
    let config = match Config::load(&engine.paths, cwd) {
        Ok(c) => c,
        Err(e) => {
            rows.push(Check::fail(
                "config",
                e.to_string(),
                "fix the file named above, then run `age-oauth doctor` again",
            ));
            return rows;
        }
    };
    rows.push(key_source(engine));
    let names = match profile {
        Some(p) => vec![p.to_string()],
        None => config.profile_names(),
    };
    if names.is_empty() {
        rows.push(Check::warn(
            "profiles",
            "no profile is configured",
            "add one: `age-oauth profile add NAME --provider esri-oob --portal URL --client-id ID`",
        ));
    }
    let several = names.len() > 1;
    for name in &names {
        for mut row in check_profile(engine, &config, name) {
            if several {
                row.profile = Some(name.clone());
            }
            rows.push(row);
        }
    }
    rows
}

/// Every configuration layer and whether it was there (environment: variable names only).
fn config_layers(engine: &Engine, cwd: &Path) -> Check {
    let describe = |label: &str, path: &Path| {
        if path.exists() {
            format!("{label} {}", path.display())
        } else {
            format!("{label} {} (absent)", path.display())
        }
    };
    // Names only, sorted (the snapshot is a sorted map): values may be secrets.
    let vars: Vec<&str> = engine.paths.env().with_prefix(ENV_PREFIX).map(|(k, _)| k).collect();
    let env = if vars.is_empty() { "none".to_string() } else { vars.join(", ") };
    Check::ok(
        "config layers",
        format!(
            "defaults < {} < {} < {} < environment ({env}) < flags",
            describe("user file", &engine.paths.config_file),
            describe("project file", &cwd.join(PROJECT_FILE)),
            describe(".env", &cwd.join(DOTENV_FILE)),
        ),
    )
}

fn key_source(engine: &Engine) -> Check {
    match engine.store.public_key(false) {
        Ok(_) => Check::ok("cache key", engine.store.key_source().describe()),
        // A fresh machine: the key is made by the first command that stores something.
        Err(_) if engine.store.cached_profiles().is_ok_and(|c| c.is_empty()) => Check::ok(
            "cache key",
            format!(
                "{}: not created yet (made when the first secret or token is stored)",
                engine.store.key_source().describe()
            ),
        ),
        Err(e) => Check::fail(
            "cache key",
            format!("{}: {e}", engine.store.key_source().describe()),
            "restore the identity file, or set AGE_OAUTH_IDENTITY / AGE_OAUTH_PASSPHRASE to the key the caches use",
        ),
    }
}

/// Everything about one profile: its values, cache, binding, origins, tokens and endpoints.
fn check_profile(engine: &Engine, config: &Config, name: &str) -> Vec<Check> {
    let session = match config.resolve(name, &[]).and_then(|p| engine.session(p)) {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::fail(
                "config",
                e.to_string(),
                format!("fix the profile (`age-oauth profile show {name}` shows its values and where they come from)"),
            )]
        }
    };
    let mut rows = vec![config_values(&session)];
    let entry = match engine.store.load(name) {
        Ok(e) => {
            rows.push(cache_row(engine, name, e.as_ref()));
            e
        }
        Err(e) => {
            rows.push(Check::fail("cache", e.to_string(), format!("`age-oauth login --profile {name} --force`")));
            None
        }
    };
    let (binding_row, probe_binding) = binding_row(engine, &session, entry.as_ref());
    rows.push(binding_row);
    let mut worst_skew = None;
    if let Some(bound) = &probe_binding {
        for origin in unique_origins(bound) {
            let (origin_rows, skew) = check_origin(engine, &origin, &bound.trust);
            rows.extend(origin_rows);
            worst_skew = worst_skew.max(skew.map(i64::abs));
        }
        rows.extend(provider_probes(engine.paths.env(), &session, bound));
    }
    rows.extend(token_rows(engine, &session, entry.as_ref(), worst_skew));
    rows
}

/// The effective values and the layer each came from; secrets by name and origin only.
fn config_values(session: &Session) -> Check {
    let p = &session.profile;
    let mut parts = vec![format!("provider {}", p.provider.name)];
    for (key, value) in p.values.iter().filter(|(_, v)| !v.is_null()) {
        let shown = value.as_str().map(String::from).unwrap_or_else(|| value.to_string());
        let origin = p.origins.get(key).map(std::string::ToString::to_string).unwrap_or_else(|| "default".into());
        parts.push(format!("{key}={} ({origin})", crate::redact::text(&shown)));
    }
    for secret in p.secret_overrides.names() {
        use crate::registry::SecretOrigin as S;
        let origin = match p.secret_overrides.origin(secret) {
            Some(S::Env(var)) => format!("env {var}"),
            Some(S::DotEnv(var)) => format!(".env {var}"),
            Some(S::Flag(flag)) => format!("flag {flag}"),
            _ => "given".into(),
        };
        parts.push(format!("{secret}=*** ({origin})"));
    }
    Check::ok("config", parts.join("; "))
}

fn cache_row(engine: &Engine, name: &str, entry: Option<&CacheEntry>) -> Check {
    let file = engine.paths.cache_file(name);
    match entry {
        None => Check::warn(
            "cache",
            format!("no cache at {}: not logged in", file.display()),
            format!("`age-oauth login --profile {name}`"),
        ),
        Some(e) => Check::ok(
            "cache",
            format!(
                "{} decrypts with {} ({} stored secret(s), {})",
                file.display(),
                engine.store.key_source().describe(),
                e.secrets.len(),
                if e.tokens.is_some() { "tokens" } else { "no tokens" }
            ),
        ),
    }
}

/// Does the cache's recorded binding match the current settings? Returns the row and the binding
/// to probe: the recorded one (never the working directory's other settings), or the current one
/// when nothing is cached (no credential exists to go anywhere).
fn binding_row(engine: &Engine, session: &Session, entry: Option<&CacheEntry>) -> (Check, Option<Binding>) {
    let now = binding::of_session(session);
    let list = |b: &Binding| b.origins.iter().map(|o| format!("{} ({})", o.origin, o.setting)).collect::<Vec<_>>();
    let Some(entry) = entry else {
        let detail = format!("nothing cached yet; the settings name {}", list(&now).join(", "));
        return (Check::ok("binding", detail), Some(now));
    };
    let recorded = match binding::recorded(entry, &engine.paths) {
        Ok(r) => r,
        Err(e) => return (Check::fail("binding", e.to_string(), "fix the user file"), None),
    };
    match (binding::check(entry, session, &engine.paths), recorded) {
        (Ok(()), Some(bound)) => (
            Check::ok("binding", format!("cache bound to {}, as the settings say", list(&bound).join(", "))),
            Some(bound),
        ),
        (Ok(()), None) => (Check::ok("binding", "the cache holds no credential yet"), Some(now)),
        (Err(e), bound) => {
            let probing = match &bound {
                Some(b) => format!("; doctor probes only the bound origins ({})", list(b).join(", ")),
                None => "; doctor probes nothing".into(),
            };
            let hint = format!(
                "if the new settings are intended, `age-oauth login --profile {} --force` signs in there; \
                 else remove the overriding setting",
                session.name()
            );
            (Check::fail("binding", format!("{e}{probing}"), hint), bound)
        }
    }
}

fn unique_origins(binding: &Binding) -> Vec<Origin> {
    let mut seen: Vec<Origin> = Vec::new();
    for b in &binding.origins {
        if !seen.contains(&b.origin) {
            seen.push(b.origin.clone());
        }
    }
    seen
}

fn verify_of(trust: &BoundTrust) -> VerifySsl {
    match trust {
        BoundTrust::Default => VerifySsl::On,
        BoundTrust::Off => VerifySsl::Off,
        BoundTrust::CaBundle { path, .. } => VerifySsl::CaBundle(path.into()),
    }
}

/// Proxy, DNS, TCP, TLS and clock of one origin. Also returns the server's clock skew in seconds.
fn check_origin(engine: &Engine, origin: &Origin, trust: &BoundTrust) -> (Vec<Check>, Option<i64>) {
    let label = |what: &str| format!("{what} {origin}");
    let url = format!("{origin}/");
    let route = ProxyEnv::from_env(engine.paths.env()).route(&url);
    let mut rows = vec![Check::ok(label("proxy"), route.describe())];
    let target = match &route {
        Route::Direct(_) => (origin.host.clone(), origin.port),
        Route::Proxy { url, .. } => match Origin::of_url(url) {
            Some(p) => (p.host, p.port),
            None => {
                rows.push(Check::fail(label("proxy"), route.describe(), "fix the proxy variable named above"));
                return (rows, None);
            }
        },
    };
    let addrs = match resolve(&target.0, target.1) {
        Ok(a) => a,
        Err(e) => {
            rows.push(Check::fail(
                label("dns"),
                format!("{}: {e}", target.0),
                "check the host name in the profile, and this machine's DNS (or hosts file)",
            ));
            return (rows, None);
        }
    };
    let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    rows.push(Check::ok(label("dns"), format!("{} → {}", target.0, shown.join(", "))));
    let stream = match connect(&addrs) {
        Ok(s) => {
            rows.push(Check::ok(
                label("tcp"),
                format!("connected to {}", s.peer_addr().map(|a| a.to_string()).unwrap_or_default()),
            ));
            s
        }
        Err(e) => {
            rows.push(Check::fail(
                label("tcp"),
                format!("{}:{}: {e}", target.0, target.1),
                "is the server (or proxy) running and the port right? a firewall may block it",
            ));
            return (rows, None);
        }
    };
    if origin.scheme == "https" {
        rows.push(tls_row(engine.paths.env(), origin, trust, stream, &route));
    } else if !crate::settings::is_loopback_host(&origin.host) {
        rows.push(Check::warn(label("tls"), "plain http:// to a non-loopback host", "use https://"));
    }
    let (clock, skew) = clock_row(engine, origin, trust);
    rows.push(clock);
    (rows, skew)
}

fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(std::io::Error::other("no address"));
    }
    Ok(addrs)
}

fn connect(addrs: &[SocketAddr]) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(addr, NET_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `CONNECT host:port` through an HTTP proxy (no proxy credentials are sent: a proxy that wants
/// them answers 407, reported as such).
fn tunnel(stream: &mut TcpStream, origin: &Origin) -> Result<(), String> {
    use std::io::{Read, Write};
    let host = if origin.host.contains(':') { format!("[{}]", origin.host) } else { origin.host.clone() };
    let request = format!("CONNECT {host}:{0} HTTP/1.1\r\nHost: {host}:{0}\r\n\r\n", origin.port);
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err("the proxy closed the connection".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or_default().trim().to_string();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("the proxy answered `{}` to CONNECT", crate::redact::printable(&status)))
    }
}

/// A verifier that keeps the chain it was shown, then lets webpki decide.
#[derive(Debug)]
struct Recording {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    chain: Mutex<Vec<rustls::pki_types::CertificateDer<'static>>>,
}

impl rustls::client::danger::ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
        drop(chain);
        self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS handshake with the trust the profile is bound to: protocol, chain, host name, expiry,
/// and which trust store verified it. With `verify_ssl = false` the OS store is tried anyway.
fn tls_row(env: &Env, origin: &Origin, trust: &BoundTrust, mut stream: TcpStream, route: &Route) -> Check {
    let check = format!("tls {origin}");
    if let Route::Proxy { .. } = route {
        if let Err(e) = tunnel(&mut stream, origin) {
            return Check::fail(check, e, "check the proxy variables (NO_PROXY for internal hosts)");
        }
    }
    let verify_off = matches!(trust, BoundTrust::Off);
    let verify = if verify_off { VerifySsl::On } else { verify_of(trust) };
    let anchors = match Trust::load(&verify, env) {
        Ok(Some(t)) => t,
        Ok(None) => return Check::warn(check, "certificates are not checked", "set verify_ssl = true"),
        Err(e) => return Check::fail(check, e.to_string(), "fix the trust setting named above"),
    };
    let outcome = handshake(origin, &anchors, &mut stream);
    let (status, detail, hint) = describe_handshake(outcome, &anchors.source);
    let (status, hint) = if verify_off {
        (
            Status::Warn,
            Some(format!(
                "verify_ssl = false: age-oauth checks nothing; {}",
                if status == Status::Ok {
                    "this server passes verification, so set verify_ssl = true"
                } else {
                    "fix the certificate or trust, then set verify_ssl = true"
                }
            )),
        )
    } else {
        (status, hint)
    };
    Check { profile: None, check, status, detail, hint }
}

struct Handshake {
    result: Result<String, rustls::Error>,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
}

fn handshake(origin: &Origin, anchors: &Trust, stream: &mut TcpStream) -> Result<Handshake, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(anchors.root_store()), provider.clone())
            .build()
            .map_err(|e| format!("no usable trust anchor in {}: {e}", anchors.source))?;
    let recording = Arc::new(Recording { inner, chain: Mutex::new(Vec::new()) });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(recording.clone())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(origin.host.clone()).map_err(|e| e.to_string())?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let _ = stream.set_read_timeout(Some(NET_TIMEOUT));
    let _ = stream.set_write_timeout(Some(NET_TIMEOUT));
    let mut result = Ok(String::new());
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(stream) {
            let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).cloned();
            result = Err(tls.unwrap_or_else(|| rustls::Error::General(e.to_string())));
            break;
        }
    }
    if result.is_ok() {
        result = Ok(conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default());
    }
    let chain = recording.chain.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    Ok(Handshake { result, chain })
}

/// (subject, issuer, days left) of the server's own certificate.
fn leaf_facts(chain: &[rustls::pki_types::CertificateDer<'static>]) -> Option<(String, String, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(chain.first()?.as_ref()).ok()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs().cast_signed();
    let days = (cert.validity().not_after.timestamp() - now).div_euclid(86_400);
    Some((cert.subject().to_string(), cert.issuer().to_string(), days))
}

fn describe_handshake(outcome: Result<Handshake, String>, source: &str) -> (Status, String, Option<String>) {
    use rustls::CertificateError as C;
    let h = match outcome {
        Ok(h) => h,
        Err(e) => return (Status::Fail, e, Some("check the host name and the trust setting".into())),
    };
    let facts = leaf_facts(&h.chain);
    let chain = match &facts {
        Some((subject, issuer, days)) => {
            let when =
                if *days >= 0 { format!("expires in {days} days") } else { format!("expired {} days ago", -days) };
            format!("chain of {} ({subject}, issued by {issuer}), {when}", h.chain.len())
        }
        None => "no certificate seen".into(),
    };
    let days = facts.as_ref().map(|f| f.2);
    match h.result {
        Ok(version) if days.is_some_and(|d| d < CERT_WARN_DAYS) => (
            Status::Warn,
            format!("{version}, {chain}; verified by {source}"),
            Some("ask the server's administrator to renew its certificate soon".into()),
        ),
        Ok(version) => (Status::Ok, format!("{version}, {chain}, valid for the host name; verified by {source}"), None),
        Err(e) => {
            let hint = match &e {
                rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                    "the server's certificate has expired: its administrator must renew it"
                }
                rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
                    "the issuing CA is not trusted: install the company CA in the OS trust store, point \
                     SSL_CERT_FILE / SSL_CERT_DIR at it, or pin it with verify_ssl = \"/path/ca.pem\""
                }
                rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
                    "the certificate is for another host name: use the name it was issued for in the profile"
                }
                _ => "check the server's certificate and the trust setting",
            };
            (Status::Fail, format!("{e}; {chain}; checked against {source}"), Some(hint.into()))
        }
    }
}

/// The server's clock from its `Date` header against ours (an unauthenticated GET of `/`).
fn clock_row(engine: &Engine, origin: &Origin, trust: &BoundTrust) -> (Check, Option<i64>) {
    let check = format!("clock {origin}");
    let client = match UreqClient::with_env(&verify_of(trust), engine.paths.env()) {
        Ok(c) => c,
        Err(e) => return (Check::warn(check, format!("not asked: {e}"), "fix the trust setting"), None),
    };
    let before = engine.clock.now().cast_signed();
    let response = match client.send(&HttpRequest::get(format!("{origin}/"))) {
        Ok(r) => r,
        Err(e) => return (Check::warn(check, format!("no answer: {e}"), "see the tcp and tls lines above"), None),
    };
    let after = engine.clock.now().cast_signed();
    let Some(date) = response.header("date").and_then(|d| httpdate::parse_http_date(d.trim()).ok()) else {
        return (Check::warn(check, "the server sent no Date header", "nothing to do; clock not compared"), None);
    };
    let theirs = date.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs().cast_signed()).unwrap_or(0);
    let skew = theirs - (before + after) / 2;
    let side = if skew >= 0 { "ahead of" } else { "behind" };
    let detail = format!("the server's clock is {}s {side} ours", skew.abs());
    let fix = "synchronise this machine's clock (NTP), or ask the server's administrator to; token lifetimes are \
               computed from it";
    let row = match skew.abs() {
        s if s > SKEW_FAIL_SECS => Check::fail(check, detail, fix),
        s if s > SKEW_WARN_SECS => Check::warn(check, detail, fix),
        _ => Check::ok(check, detail),
    };
    (row, Some(skew))
}

/// The provider's own unauthenticated checks, only where the binding allows.
fn provider_probes(env: &Env, session: &Session, bound: &Binding) -> Vec<Check> {
    let allowed = |url: &str| Origin::of_url(url).is_some_and(|o| bound.origins.iter().any(|b| b.origin == o));
    let Ok(client) = UreqClient::with_env(&verify_of(&bound.trust), env) else {
        return Vec::new(); // the tls line already says why
    };
    session
        .provider
        .doctor_probes()
        .into_iter()
        .map(|probe| {
            let url = match &probe {
                Probe::ArcgisInfo { url } => url,
                Probe::AuthorizeRedirect { authorize_url, .. } => authorize_url,
            };
            if !allowed(url) {
                return Check::warn(
                    "probe",
                    format!("{} is not a bound origin: not asked", crate::redact::url(url)),
                    "see the binding line",
                );
            }
            match probe {
                Probe::ArcgisInfo { url } => arcgis_info(&client, &url),
                Probe::AuthorizeRedirect { authorize_url, client_id, redirect_uri } => {
                    redirect_check(&client, &authorize_url, &client_id, &redirect_uri)
                }
            }
        })
        .collect()
}

fn arcgis_info(client: &UreqClient, url: &str) -> Check {
    let path =
        url.rsplit_once("/rest/").map(|(a, _)| if a.ends_with("/sharing") { "sharing/rest/info" } else { "rest/info" });
    let check = path.unwrap_or("rest/info").to_string();
    let hint = "check that the URL in the profile is the portal (…/portal) or server (…/arcgis) root";
    let response = match client.send(&HttpRequest::get(format!("{url}?f=json"))) {
        Ok(r) => r,
        Err(e) => return Check::fail(check, e.to_string(), hint),
    };
    if response.looks_like_html() || response.status != 200 {
        let what = response.html_title().unwrap_or_else(|| format!("HTTP {}", response.status));
        return Check::fail(
            check,
            format!("{}: not ArcGIS JSON ({})", crate::redact::url(url), crate::redact::printable(&what)),
            hint,
        );
    }
    let json: serde_json::Value = match serde_json::from_slice(&response.body) {
        Ok(v) => v,
        Err(_) => return Check::fail(check, format!("{}: the answer is not JSON", crate::redact::url(url)), hint),
    };
    if let Some(err) = json.get("error") {
        let msg = err.get("message").and_then(|m| m.as_str()).unwrap_or("error");
        return Check::fail(check, format!("{}: {}", crate::redact::url(url), crate::redact::printable(msg)), hint);
    }
    let field = |v: &serde_json::Value| v.as_str().map(String::from).or_else(|| v.as_f64().map(|n| n.to_string()));
    let version = json.get("fullVersion").or(json.get("currentVersion")).and_then(field).unwrap_or_else(|| "?".into());
    let mut detail = format!("ArcGIS {version}");
    if let Some(owner) = json.get("owningSystemUrl").and_then(|v| v.as_str()) {
        detail.push_str(&format!(", owningSystemUrl {}", crate::redact::url(owner)));
    }
    if let Some(tokens) = json.pointer("/authInfo/tokenServicesUrl").and_then(|v| v.as_str()) {
        detail.push_str(&format!(", tokenServicesUrl {}", crate::redact::url(tokens)));
    }
    Check::ok(check, crate::redact::printable(&detail))
}

fn redirect_check(client: &UreqClient, authorize_url: &str, client_id: &str, redirect_uri: &str) -> Check {
    let check = "app redirect";
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "age_oauth_doctor_probe")
        .finish();
    let response = match client.send(&HttpRequest::get(format!("{authorize_url}?{query}"))) {
        Ok(r) => r,
        Err(e) => return Check::warn(check, format!("not asked: {e}"), "see the lines above"),
    };
    let location = response.header("location").unwrap_or_default();
    let body = String::from_utf8_lossy(&response.body).to_ascii_lowercase();
    let said_unsupported = location.contains("unsupported_response_type") || body.contains("unsupported_response_type");
    let app = format!("app {client_id}, redirect {redirect_uri}");
    if said_unsupported && (location.is_empty() || location.starts_with(redirect_uri.trim_end_matches('/'))) {
        return Check::ok(check, format!("{app}: registered with the portal"));
    }
    if body.contains("redirect_uri") {
        return Check::fail(
            check,
            format!("{app}: the portal refuses this redirect URI"),
            "add it to the app's redirect URIs in the portal (Content → the app → Settings), or use the app it is registered for",
        );
    }
    if body.contains("client_id") {
        return Check::fail(
            check,
            format!("{app}: the portal does not know this client_id"),
            "check client_id: it is the App ID of an OAuth application registered in this portal",
        );
    }
    Check::warn(
        check,
        format!("{app}: the portal's answer (HTTP {}) does not tell", response.status),
        "a login shows it; run `age-oauth login` if in doubt",
    )
}

/// Remaining life of the access token and the refresh token.
fn token_rows(engine: &Engine, session: &Session, entry: Option<&CacheEntry>, skew: Option<i64>) -> Vec<Check> {
    let name = session.name();
    let Some(tokens) = entry.and_then(|e| e.tokens.as_ref()) else {
        return Vec::new();
    };
    let now = engine.clock.now();
    let login = format!("`age-oauth login --profile {name}`");
    let skew_note = match skew {
        Some(s) if s > SKEW_WARN_SECS => format!(" (the server's clock is {s}s off: count on that much less)"),
        _ => String::new(),
    };
    let mut rows = Vec::new();
    let refreshable = tokens.can_refresh(now) || !session.provider.needs_person();
    rows.push(match tokens.remaining(now) {
        None => Check::ok("token", "the server gave no expiry".to_string()),
        Some(0) if refreshable => Check::ok("token", "expired; the next use refreshes it without a sign-in"),
        Some(0) => Check::fail("token", "expired, and cannot be refreshed", login.clone()),
        Some(left) => Check::ok("token", format!("valid for {}{skew_note}", crate::clock::hms(left))),
    });
    if tokens.refresh_token.is_some() {
        rows.push(match tokens.refresh_expires_at.map(|at| at.saturating_sub(now)) {
            None => Check::ok("refresh token", "held; the server gave no expiry"),
            Some(0) => Check::fail("refresh token", "expired", login),
            Some(left) if left < 86_400 => Check::warn(
                "refresh token",
                format!("valid for {} only{skew_note}", crate::clock::hms(left)),
                format!("sign in again soon: {login}"),
            ),
            Some(left) => Check::ok("refresh token", format!("valid for {}{skew_note}", crate::clock::hms(left))),
        });
    }
    rows
}

/// The text report: one line per check, the next step under each non-ok line.
pub fn render_text(rows: &[Check]) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for row in rows {
        if row.profile.as_deref() != current {
            current = row.profile.as_deref();
            if let Some(p) = current {
                out.push_str(&format!("profile {p}:\n"));
            }
        }
        out.push_str(&format!("{:<4}  {:<32} {}\n", row.status.label(), row.check, row.detail));
        if let Some(hint) = &row.hint {
            out.push_str(&format!("      next: {hint}\n"));
        }
    }
    let fails = rows.iter().filter(|r| r.status == Status::Fail).count();
    let warns = rows.iter().filter(|r| r.status == Status::Warn).count();
    out.push_str(&format!("{} checks: {fails} failed, {warns} warnings\n", rows.len()));
    out
}

/// 0 with no `fail`, 1 otherwise.
pub fn exit_code(rows: &[Check]) -> i32 {
    if rows.iter().any(|r| r.status == Status::Fail) {
        1
    } else {
        0
    }
}
