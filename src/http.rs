//! The HTTP client behind every flow, as a trait so tests can swap or wrap it.
//! The real one is ureq with rustls: TLS verified against the OS trust store (or a profile's bundle), proxies
//! from the environment, no redirects followed.

use crate::error::{Error, Result, ServerErrorKind};
use std::path::PathBuf;
use std::time::Duration;

/// Largest body read from a server: anything bigger is refused, not buffered.
pub const MAX_BODY: u64 = 8 * 1024 * 1024;

/// An HTTP method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// Any other method, by name.
    Other(String),
}

impl Method {
    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Other(m) => m,
        }
    }
}

/// One request. Form values and headers can carry secrets, so requests are logged
/// by method, URL (without query) and field *names* only.
#[derive(Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        HttpRequest { method: Method::Get, url: url.into(), headers: Vec::new(), body: None }
    }

    /// A POST with an `application/x-www-form-urlencoded` body.
    pub fn post_form(url: impl Into<String>, fields: &[(&str, &str)]) -> Self {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            ser.append_pair(k, v);
        }
        HttpRequest {
            method: Method::Post,
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
            body: Some(ser.finish().into_bytes()),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// What may be logged about this request.
    pub fn describe(&self) -> String {
        let url = self.url.split('?').next().unwrap_or_default();
        format!("{} {}", self.method.as_str(), crate::redact::url(url))
    }
}

/// An HTTP response, read whole (at most `MAX_BODY` bytes).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header, by case-insensitive name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// True when the body looks like an HTML page (a login page, a proxy error, f=html).
    pub fn looks_like_html(&self) -> bool {
        let ct = self.header("content-type").unwrap_or_default().to_ascii_lowercase();
        if ct.contains("html") {
            return true;
        }
        let start = String::from_utf8_lossy(&self.body[..self.body.len().min(256)]).trim_start().to_ascii_lowercase();
        start.starts_with("<!doctype") || start.starts_with("<html")
    }

    /// The `<title>` of an HTML body, if any (for error messages).
    pub fn html_title(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.body);
        let lower = text.to_ascii_lowercase();
        let start = lower.find("<title>")? + 7;
        let end = lower[start..].find("</title>")? + start;
        Some(text[start..end].trim().to_string())
    }
}

/// Sends HTTP requests; injectable (tests record or fake the network).
pub trait HttpClient: Send + Sync {
    /// Sends one request and reads the whole answer.
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse>;

    /// A client whose requests all go over one kept-alive connection, for connection-bound
    /// authentication (NTLM). `None`: this client has no connections to pin (test doubles).
    fn single_connection(&self) -> Result<Option<Box<dyn HttpClient>>> {
        Ok(None)
    }

    /// How a request to `url` would travel ("direct (loopback is never proxied)", "via proxy …"),
    /// for `-v`; `None` for test doubles.
    fn route(&self, _url: &str) -> Option<String> {
        None
    }
}

/// How a profile wants server certificates checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifySsl {
    /// Verify against the OS trust store (the built-in roots when it is empty).
    On,
    /// No verification (loopback and explicit opt-out only).
    Off,
    /// Verify against this CA bundle (PEM).
    CaBundle(PathBuf),
}

/// Where a client's trust anchors come from, loaded when the first request is made (a valid
/// cache never pays for reading the OS store).
pub struct Trust {
    pub anchors: Anchors,
    /// For `-v` and `doctor`: "the operating system's trust store", "SSL_CERT_FILE (/x.pem)", ...
    #[allow(dead_code)] // read by `doctor` (branch doctor, not merged yet)
    pub source: String,
}

pub enum Anchors {
    Certs(Vec<rustls::pki_types::CertificateDer<'static>>),
    /// Mozilla's roots built into age-oauth: only when the OS store is empty (minimal containers).
    BuiltIn,
}

impl Trust {
    /// The anchors for `verify`; `None` when verification is off.
    /// `env` names the variables that chose the OS store in errors (`SSL_CERT_FILE`, `SSL_CERT_DIR`).
    pub fn load(verify: &VerifySsl, env: &crate::env::Env) -> Result<Option<Trust>> {
        match verify {
            VerifySsl::Off => Ok(None),
            VerifySsl::CaBundle(path) => Trust::bundle(path).map(Some),
            VerifySsl::On => Trust::os_store(env).map(Some),
        }
    }

    fn bundle(path: &std::path::Path) -> Result<Trust> {
        let pem = std::fs::read(path)
            .map_err(|e| Error::io(format!("cannot read the CA bundle {} (verify_ssl)", path.display()), e))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => {
                    Some(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                }
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(Error::Config(format!("{} holds no PEM certificate (verify_ssl)", path.display())));
        }
        Ok(Trust { anchors: Anchors::Certs(certs), source: format!("the CA bundle {} (verify_ssl)", path.display()) })
    }

    /// The OS store as OpenSSL-based tools see it: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set
    /// (rustls-native-certs reads them), else the platform's store.
    fn os_store(env: &crate::env::Env) -> Result<Trust> {
        let named: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .iter()
            .filter_map(|var| env.raw(var).filter(|v| !v.is_empty()).map(|v| format!("{var} ({v})")))
            .collect();
        let loaded = rustls_native_certs::load_native_certs();
        if loaded.certs.is_empty() {
            if !named.is_empty() {
                let why = loaded.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                return Err(Error::Config(format!(
                    "{} holds no usable CA certificate{why}; point it at a PEM file or directory, or unset it",
                    named.join(" and ")
                )));
            }
            return Ok(Trust {
                anchors: Anchors::BuiltIn,
                source: "age-oauth's built-in Mozilla roots (the operating system's trust store is empty)".into(),
            });
        }
        let source =
            if named.is_empty() { "the operating system's trust store".to_string() } else { named.join(" and ") };
        Ok(Trust { anchors: Anchors::Certs(loaded.certs), source })
    }

    /// The anchors as a rustls root store (for `doctor`'s own handshake).
    #[allow(dead_code)] // called by `doctor` (branch doctor, not merged yet)
    pub fn root_store(&self) -> rustls::RootCertStore {
        match &self.anchors {
            Anchors::BuiltIn => rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            Anchors::Certs(certs) => {
                let mut store = rustls::RootCertStore::empty();
                // An unparsable certificate in a system bundle is skipped, as OpenSSL does.
                let _ = store.add_parsable_certificates(certs.iter().cloned());
                store
            }
        }
    }

    fn ureq_roots(&self) -> ureq::tls::RootCerts {
        match &self.anchors {
            Anchors::BuiltIn => ureq::tls::RootCerts::WebPki,
            Anchors::Certs(certs) => {
                let certs: Vec<_> =
                    certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
        }
    }
}

/// The proxy settings of the environment: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`,
/// lower or upper case (lower case first, as curl reads them).
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    https: Option<(String, String)>,
    http: Option<(String, String)>,
    all: Option<(String, String)>,
    no_proxy: Vec<String>,
    /// Internal, for tests only (`AGE_OAUTH_INTERNAL_PROXY_LOOPBACK=1`): 127.0.0.1 is all a test
    /// has, and loopback is otherwise never proxied.
    proxy_loopback: bool,
}

/// Which way one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct(&'static str),
    /// The proxy URL (may hold credentials: log `describe()`, never this) and the variable it came from.
    Proxy {
        url: String,
        var: String,
    },
}

impl Route {
    /// For `-v` and `doctor`: the proxy without any user name or password in it.
    pub fn describe(&self) -> String {
        match self {
            Route::Direct(why) => format!("direct ({why})"),
            Route::Proxy { url, var } => format!("via proxy {} ({var})", redact_userinfo(url)),
        }
    }
}

/// `scheme://user:pass@host` → `scheme://***@host`.
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl ProxyEnv {
    /// The proxy variables of an environment snapshot.
    pub fn from_env(env: &crate::env::Env) -> ProxyEnv {
        ProxyEnv::from_lookup(|name| env.raw(name).map(String::from))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let pick = |name: &str| {
            [name.to_ascii_lowercase(), name.to_string()]
                .into_iter()
                .find_map(|var| get(&var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).map(|v| (v, var)))
        };
        let no_proxy = pick("NO_PROXY")
            .map(|(v, _)| {
                v.split([',', ' ']).map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).collect()
            })
            .unwrap_or_default();
        ProxyEnv {
            https: pick("HTTPS_PROXY"),
            http: pick("HTTP_PROXY"),
            all: pick("ALL_PROXY"),
            no_proxy,
            proxy_loopback: get("AGE_OAUTH_INTERNAL_PROXY_LOOPBACK").is_some_and(|v| v == "1"),
        }
    }

    /// The route for `url`: loopback never goes through a proxy, `NO_PROXY` is honoured, then
    /// the scheme's own variable, then `ALL_PROXY`.
    pub fn route(&self, url: &str) -> Route {
        let Ok(uri) = url.parse::<ureq::http::Uri>() else {
            return Route::Direct("not a URL");
        };
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let chosen = if https { self.https.as_ref() } else { self.http.as_ref() }.or(self.all.as_ref());
        let Some((proxy, var)) = chosen else {
            return Route::Direct("no proxy set");
        };
        if !self.proxy_loopback && (crate::settings::is_loopback_host(&host) || host.ends_with(".localhost")) {
            return Route::Direct("loopback is never proxied");
        }
        if self.no_proxy.iter().any(|entry| no_proxy_matches(entry, &host, port)) {
            return Route::Direct("NO_PROXY");
        }
        let url = if proxy.contains("://") { proxy.clone() } else { format!("http://{proxy}") };
        Route::Proxy { url, var: var.clone() }
    }
}

/// One `NO_PROXY` entry against a host: `*`, a domain (`example.com` and `.example.com` match it
/// and its subdomains), an IP address, a CIDR block; `:port` restricts it to one port.
fn no_proxy_matches(entry: &str, host: &str, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (pattern, entry_port) = match entry.rsplit_once(':') {
        Some((p, n)) if !p.contains(':') || p.ends_with(']') => match n.parse::<u16>() {
            Ok(n) => (p, Some(n)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    };
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    let pattern = pattern.trim_start_matches('[').trim_end_matches(']');
    if let Some((net, bits)) = pattern.split_once('/') {
        return match (net.parse::<std::net::IpAddr>(), bits.parse::<u32>(), host.parse::<std::net::IpAddr>()) {
            (Ok(net), Ok(bits), Ok(ip)) => in_cidr(ip, net, bits),
            _ => false,
        };
    }
    let domain = pattern.trim_start_matches("*.").trim_start_matches('.');
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

fn in_cidr(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u32) -> bool {
    use std::net::IpAddr::{V4, V6};
    match (ip, net) {
        (V4(ip), V4(net)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (V6(ip), V6(net)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// ureq-backed client. Its agent (and so the trust store) is made on the first request.
/// How long one HTTP exchange may take when `AGE_OAUTH_HTTP_TIMEOUT` does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP timeout: `AGE_OAUTH_HTTP_TIMEOUT` (whole seconds, 1 to 3600), else 60 s.
pub fn timeout_from_env(env: &crate::env::Env) -> Result<Duration> {
    match env.raw(crate::env::HTTP_TIMEOUT.name) {
        Some(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
            Ok(s) if (1..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(Error::Config(format!(
                "AGE_OAUTH_HTTP_TIMEOUT must be a whole number of seconds from 1 to 3600, got `{v}`"
            ))),
        },
        _ => Ok(DEFAULT_TIMEOUT),
    }
}

/// ureq-backed client.
pub struct UreqClient {
    verify: VerifySsl,
    idle_per_host: usize,
    timeout: Duration,
    proxies: ProxyEnv,
    /// The environment the trust store is chosen by (named in its errors).
    env: crate::env::Env,
    agent: std::sync::Mutex<Option<ureq::Agent>>,
}

impl UreqClient {
    /// A client verifying TLS as `verify` says, with the default timeout and no proxy (an empty
    /// environment: tests and simulators on loopback).
    pub fn new(verify: &VerifySsl) -> Result<Self> {
        Self::with_env(verify, &crate::env::Env::default())
    }

    /// A client as the environment `env` says: its proxies, and `AGE_OAUTH_HTTP_TIMEOUT` for every
    /// exchange (connect, send, answer).
    pub fn with_env(verify: &VerifySsl, env: &crate::env::Env) -> Result<Self> {
        let timeout = timeout_from_env(env)?;
        // A bundle the profile names is checked now (a small file, and a clear error before any
        // request); the OS store waits for the first request.
        if let VerifySsl::CaBundle(path) = verify {
            Trust::bundle(path)?;
        }
        Ok(Self::with_pool(verify, 3, timeout, env))
    }

    /// `idle_per_host` kept-alive connections per host; 1 pins sequential requests to one connection.
    fn with_pool(verify: &VerifySsl, idle_per_host: usize, timeout: Duration, env: &crate::env::Env) -> Self {
        UreqClient {
            verify: verify.clone(),
            idle_per_host,
            timeout,
            proxies: ProxyEnv::from_env(env),
            env: env.clone(),
            agent: std::sync::Mutex::new(None),
        }
    }

    fn agent(&self) -> Result<ureq::Agent> {
        let mut slot = self.agent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(agent) = slot.as_ref() {
            return Ok(agent.clone());
        }
        use ureq::tls::TlsConfig;
        let tls = match Trust::load(&self.verify, &self.env)? {
            None => TlsConfig::builder().disable_verification(true).build(),
            Some(trust) => TlsConfig::builder().root_certs(trust.ureq_roots()).build(),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // Proxies are chosen per request (see `ProxyEnv::route`), not by ureq from the environment.
            .proxy(None)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(self.timeout.min(Duration::from_secs(15))))
            .timeout_global(Some(self.timeout))
            .user_agent(concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections(self.idle_per_host.max(10))
            .max_idle_connections_per_host(self.idle_per_host)
            .build()
            .into();
        *slot = Some(agent.clone());
        Ok(agent)
    }
}

/// The ureq proxy for a route, or a configuration error naming the variable.
fn ureq_proxy(url: &str, var: &str) -> Result<ureq::Proxy> {
    let scheme = url.split("://").next().unwrap_or_default().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(Error::Config(format!(
            "{var} names a {scheme}:// proxy; only http:// and https:// proxies are supported"
        )));
    }
    ureq::Proxy::new(url).map_err(|_| Error::Config(format!("{var} is not a proxy URL: {}", redact_userinfo(url))))
}

impl HttpClient for UreqClient {
    fn single_connection(&self) -> Result<Option<Box<dyn HttpClient>>> {
        Ok(Some(Box::new(UreqClient::with_pool(&self.verify, 1, self.timeout, &self.env))))
    }

    fn route(&self, url: &str) -> Option<String> {
        Some(self.proxies.route(url).describe())
    }

    fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
        let mut builder = ureq::http::Request::builder().method(request.method.as_str()).uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let req = builder
            .body(request.body.clone().unwrap_or_default())
            .map_err(|e| Error::Config(format!("invalid request to {}: {e}", request.describe())))?;
        let agent = self.agent()?;
        let route = self.proxies.route(&request.url);
        let (req, via) = match &route {
            Route::Direct(_) => (req, String::new()),
            Route::Proxy { url, var } => {
                let proxy = ureq_proxy(url, var)?;
                (agent.configure_request(req).proxy(Some(proxy)).build(), format!(" ({})", route.describe()))
            }
        };
        let mut resp = agent.run(req).map_err(|e| transport_error(request, &via, "", e))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| transport_error(request, "", "cannot read the answer: ", e))?;
        Ok(HttpResponse { status, headers, body })
    }
}

/// A transport failure as a server error of the right kind: no answer in time and no
/// connection are transient; anything else (TLS refused, oversized answer) is not.
fn transport_error(request: &HttpRequest, via: &str, what: &str, e: ureq::Error) -> Error {
    let message = format!("{}{via}: {what}{}", request.describe(), describe_transport_error(&e));
    let kind = match &e {
        ureq::Error::Timeout(_) => ServerErrorKind::Timeout,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => ServerErrorKind::Timeout,
        ureq::Error::Io(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => ServerErrorKind::Unreachable,
        _ => ServerErrorKind::Refused,
    };
    Error::unreachable(kind, message, Some(Box::new(e)))
}

fn describe_transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        ureq::Error::BodyExceedsLimit(n) => format!("the answer is larger than {n} bytes"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_lookup(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn via(route: Route) -> Option<String> {
        match route {
            Route::Proxy { url, var } => Some(format!("{url} {var}")),
            Route::Direct(_) => None,
        }
    }

    #[test]
    fn scheme_variables_then_all_proxy_either_case() {
        let e = env(&[("https_proxy", "http://p1:3128"), ("HTTP_PROXY", "p2:8080"), ("ALL_PROXY", "http://p3:1")]);
        assert_eq!(via(e.route("https://gis.example.com/portal")).unwrap(), "http://p1:3128 https_proxy");
        assert_eq!(via(e.route("http://gis.example.com/portal")).unwrap(), "http://p2:8080 HTTP_PROXY");
        let e = env(&[("all_proxy", "http://p3:1")]);
        assert_eq!(via(e.route("https://gis.example.com/")).unwrap(), "http://p3:1 all_proxy");
        assert_eq!(env(&[]).route("https://gis.example.com/"), Route::Direct("no proxy set"));
        let lower_first = env(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:1")]);
        assert!(via(lower_first.route("https://x.example/")).unwrap().contains("lower"));
    }

    #[test]
    fn loopback_and_no_proxy_go_direct() {
        let e = env(&[
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "internal.example, .corp.example,10.0.0.0/8,gis.example.com:8443,[fd00::1]"),
        ]);
        for url in [
            "https://127.0.0.1:7443/",
            "https://127.9.9.9/",
            "https://[::1]/",
            "https://localhost/",
            "https://a.localhost/",
        ] {
            assert_eq!(e.route(url), Route::Direct("loopback is never proxied"), "{url}");
        }
        for url in [
            "https://internal.example/",
            "https://a.internal.example/",
            "https://x.corp.example/",
            "https://10.2.3.4/",
            "https://gis.example.com:8443/",
            "https://[fd00::1]/",
        ] {
            assert_eq!(e.route(url), Route::Direct("NO_PROXY"), "{url}");
        }
        for url in ["https://notinternal.example/", "https://gis.example.com/", "https://11.0.0.1/"] {
            assert!(via(e.route(url)).is_some(), "{url}");
        }
        assert_eq!(
            env(&[("HTTPS_PROXY", "http://p:1"), ("no_proxy", "*")]).route("https://x.example/"),
            Route::Direct("NO_PROXY")
        );
        let tests_only = env(&[("HTTPS_PROXY", "http://p:1"), ("AGE_OAUTH_INTERNAL_PROXY_LOOPBACK", "1")]);
        assert!(via(tests_only.route("https://127.0.0.1/")).is_some());
    }

    #[test]
    fn proxy_credentials_never_described() {
        let e = env(&[("HTTPS_PROXY", "http://me:s3cret@proxy.example:3128")]);
        let d = e.route("https://gis.example.com/").describe();
        assert_eq!(d, "via proxy http://***@proxy.example:3128 (HTTPS_PROXY)");
        assert!(ureq_proxy("socks5://p:1", "ALL_PROXY").unwrap_err().to_string().contains("only http:// and https://"));
    }
}
