//! The HTTP client behind every flow, as a trait so tests can swap or wrap it.
//! The real one is ureq with rustls: TLS verified unless a profile says otherwise, no redirects followed.

use crate::error::{Error, Result, ServerErrorKind};
use std::path::PathBuf;
use std::time::Duration;

/// Largest body read from a server: anything bigger is refused, not buffered.
pub const MAX_BODY: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Other(String),
}

impl Method {
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
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
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

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// What may be logged about this request.
    pub fn describe(&self) -> String {
        let url = self.url.split('?').next().unwrap_or_default();
        format!("{} {}", self.method.as_str(), url)
    }
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

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

pub trait HttpClient: Send + Sync {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse>;

    /// A client whose requests all go over one kept-alive connection, for connection-bound
    /// authentication (NTLM). `None`: this client has no connections to pin (test doubles).
    fn single_connection(&self) -> Result<Option<Box<dyn HttpClient>>> {
        Ok(None)
    }
}

/// How a profile wants server certificates checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifySsl {
    On,
    Off,
    CaBundle(PathBuf),
}

/// How long one HTTP exchange may take when `AGE_OAUTH_HTTP_TIMEOUT` does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP timeout: `AGE_OAUTH_HTTP_TIMEOUT` (whole seconds, 1 to 3600), else 60 s.
pub fn timeout_from_env() -> Result<Duration> {
    match std::env::var("AGE_OAUTH_HTTP_TIMEOUT") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<u64>() {
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
    agent: ureq::Agent,
    verify: VerifySsl,
    timeout: Duration,
}

impl UreqClient {
    pub fn new(verify: &VerifySsl) -> Result<Self> {
        Self::with_timeout(verify, DEFAULT_TIMEOUT)
    }

    /// A client whose every exchange (connect, send, answer) ends within `timeout`.
    pub fn with_timeout(verify: &VerifySsl, timeout: Duration) -> Result<Self> {
        Self::with_pool(verify, 3, timeout)
    }

    /// `idle_per_host` kept-alive connections per host; 1 pins sequential requests to one connection.
    fn with_pool(verify: &VerifySsl, idle_per_host: usize, timeout: Duration) -> Result<Self> {
        use ureq::tls::{PemItem, RootCerts, TlsConfig};
        let tls = match verify {
            VerifySsl::On => TlsConfig::builder().build(),
            VerifySsl::Off => TlsConfig::builder().disable_verification(true).build(),
            VerifySsl::CaBundle(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| Error::io(format!("cannot read the CA bundle {} (verify_ssl)", path.display()), e))?;
                let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(Error::Config(format!("{} holds no PEM certificate (verify_ssl)", path.display())));
                }
                TlsConfig::builder().root_certs(RootCerts::new_with_certs(&certs)).build()
            }
        };
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(timeout.min(Duration::from_secs(15))))
            .timeout_global(Some(timeout))
            .user_agent(concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections(idle_per_host.max(10))
            .max_idle_connections_per_host(idle_per_host)
            .build()
            .into();
        Ok(UreqClient { agent, verify: verify.clone(), timeout })
    }
}

impl HttpClient for UreqClient {
    fn single_connection(&self) -> Result<Option<Box<dyn HttpClient>>> {
        Ok(Some(Box::new(UreqClient::with_pool(&self.verify, 1, self.timeout)?)))
    }

    fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
        let mut builder = ureq::http::Request::builder().method(request.method.as_str()).uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let req = builder
            .body(request.body.clone().unwrap_or_default())
            .map_err(|e| Error::Config(format!("invalid request to {}: {e}", request.describe())))?;
        let mut resp = self.agent.run(req).map_err(|e| transport_error(request, "", e))?;
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
            .map_err(|e| transport_error(request, "cannot read the answer: ", e))?;
        Ok(HttpResponse { status, headers, body })
    }
}

/// A transport failure as a server error of the right kind: no answer in time and no
/// connection are transient; anything else (TLS refused, oversized answer) is not.
fn transport_error(request: &HttpRequest, what: &str, e: ureq::Error) -> Error {
    let message = format!("{}: {what}{}", request.describe(), describe_transport_error(&e));
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
