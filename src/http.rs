//! The HTTP client behind every flow, as a trait so tests can swap or wrap it.
//! The real one is ureq with rustls: TLS verified unless a profile says otherwise, no redirects followed.

use crate::error::{Error, Result};
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
        format!("{} {}", self.method.as_str(), crate::redact::url(url))
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

/// ureq-backed client.
pub struct UreqClient {
    agent: ureq::Agent,
    verify: VerifySsl,
}

impl UreqClient {
    pub fn new(verify: &VerifySsl) -> Result<Self> {
        Self::with_pool(verify, 3)
    }

    /// `idle_per_host` kept-alive connections per host; 1 pins sequential requests to one connection.
    fn with_pool(verify: &VerifySsl, idle_per_host: usize) -> Result<Self> {
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
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections(idle_per_host.max(10))
            .max_idle_connections_per_host(idle_per_host)
            .build()
            .into();
        Ok(UreqClient { agent, verify: verify.clone() })
    }
}

impl HttpClient for UreqClient {
    fn single_connection(&self) -> Result<Option<Box<dyn HttpClient>>> {
        Ok(Some(Box::new(UreqClient::with_pool(&self.verify, 1)?)))
    }

    fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
        let mut builder = ureq::http::Request::builder().method(request.method.as_str()).uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k, v);
        }
        let req = builder
            .body(request.body.clone().unwrap_or_default())
            .map_err(|e| Error::Config(format!("invalid request to {}: {e}", request.describe())))?;
        let mut resp = self
            .agent
            .run(req)
            .map_err(|e| Error::Server(format!("{}: {}", request.describe(), describe_transport_error(&e))))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.body_mut().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| {
            Error::Server(format!("{}: cannot read the answer: {}", request.describe(), describe_transport_error(&e)))
        })?;
        Ok(HttpResponse { status, headers, body })
    }
}

fn describe_transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        ureq::Error::BodyExceedsLimit(n) => format!("the answer is larger than {n} bytes"),
        other => other.to_string(),
    }
}
