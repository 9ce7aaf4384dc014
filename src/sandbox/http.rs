//! The one HTTP stack of the simulators: a tiny_http listener served by a small pool of worker threads,
//! each request read into an `Incoming` (query and form parameters, bearer token, referer, caller IP) and
//! answered from a `Reply`; with `TlsFiles`, an HTTPS front (tls.rs) relays to it.

use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

/// Threads taking requests from tiny_http's queue, per simulator.
const WORKER_THREADS: usize = 4;
const MAX_BODY_BYTES: u64 = 1 << 20;

/// One request as the simulators see it.
pub(super) struct Incoming {
    pub(super) is_post: bool,
    pub(super) path: String,
    /// Query parameters, overridden by form-body fields of the same name.
    pub(super) params: HashMap<String, String>,
    pub(super) body: String,
    /// From `X-Esri-Authorization: Bearer`, else `Authorization: Bearer`.
    pub(super) bearer: Option<String>,
    pub(super) referer: Option<String>,
    /// The caller's IP address, for `client=requestip` tokens.
    pub(super) remote_ip: Option<String>,
    /// Cookies the caller sent (`Cookie` headers), by name.
    pub(super) cookies: HashMap<String, String>,
    /// The method as sent (`DELETE` for the Anaconda-style key delete).
    pub(super) method: String,
    /// Every header as sent (name, value), for simulators that check what reached them.
    pub(super) headers: Vec<(String, String)>,
}

impl Incoming {
    /// A non-empty parameter (ArcGIS reads an empty one as absent).
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// What a simulator answers; `respond` writes it with `Cache-Control: no-store`.
pub(super) enum Reply {
    /// ArcGIS JSON: always HTTP 200, errors included. `pretty` for f=pjson.
    Json {
        body: Value,
        pretty: bool,
    },
    Html {
        status: u16,
        body: String,
    },
    Redirect(String),
    /// JSON with a real status code: the admin hooks (ours, not ArcGIS's), and OAuth / OpenID Connect answers.
    JsonStatus {
        status: u16,
        body: Value,
    },
    /// Plain text with a status code.
    Text {
        status: u16,
        body: String,
    },
    /// Another reply with extra headers (`Set-Cookie`, `X-Rate-Limit-*`).
    WithHeaders(Box<Reply>, Vec<(String, String)>),
}

impl Reply {
    /// This reply with one more header.
    pub(super) fn with_header(self, name: &str, value: impl Into<String>) -> Reply {
        match self {
            Reply::WithHeaders(inner, mut headers) => {
                headers.push((name.to_string(), value.into()));
                Reply::WithHeaders(inner, headers)
            }
            other => Reply::WithHeaders(Box::new(other), vec![(name.to_string(), value.into())]),
        }
    }
}

pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

pub(super) fn html_page(status: u16, title: &str, body: &str) -> Reply {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}\n</body></html>\n",
        html_escape(title)
    );
    Reply::Html { status, body }
}

pub(super) fn read_incoming(request: &mut tiny_http::Request) -> Incoming {
    let is_post = *request.method() == tiny_http::Method::Post;
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let mut params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let mut raw = Vec::new();
    // A body that fails to read is treated as empty; the handlers then report missing parameters.
    if request.as_reader().take(MAX_BODY_BYTES).read_to_end(&mut raw).is_err() {
        raw.clear();
    }
    let is_form = request.headers().iter().any(|h| {
        h.field.equiv("Content-Type")
            && h.value.as_str().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    });
    if is_post && is_form {
        params.extend(form_urlencoded::parse(&raw).into_owned());
    }
    // X-Esri-Authorization wins: behind web-tier auth the standard header belongs to the web tier.
    let bearer_from = |name: &'static str| {
        request.headers().iter().find(|h| h.field.equiv(name)).and_then(|h| {
            let value = h.value.as_str().trim();
            let token = value.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| value[7..].trim())?;
            (!token.is_empty()).then(|| token.to_string())
        })
    };
    let bearer = bearer_from("X-Esri-Authorization").or_else(|| bearer_from("Authorization"));
    let referer = request.headers().iter().find(|h| h.field.equiv("Referer")).map(|h| h.value.as_str().to_string());
    let remote_ip = request.remote_addr().map(|a| a.ip().to_string());
    let cookies = request
        .headers()
        .iter()
        .filter(|h| h.field.equiv("Cookie"))
        .flat_map(|h| h.value.as_str().split(';').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect();
    let method = request.method().as_str().to_string();
    let headers =
        request.headers().iter().map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string())).collect();
    Incoming {
        method,
        headers,
        is_post,
        path: path.to_string(),
        params,
        body: String::from_utf8_lossy(&raw).into_owned(),
        bearer,
        referer,
        remote_ip,
        cookies,
    }
}

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

pub(super) fn respond(request: tiny_http::Request, reply: Reply, date_skew_secs: i64) {
    let (mut reply, mut extra) = (reply, Vec::new());
    while let Reply::WithHeaders(inner, headers) = reply {
        extra.extend(headers);
        reply = *inner;
    }
    let (status, content_type, body, location) = match reply {
        Reply::Json { body, pretty } => {
            let text = if pretty { serde_json::to_string_pretty(&body) } else { serde_json::to_string(&body) };
            (200, "application/json;charset=UTF-8", text.unwrap_or_default(), None)
        }
        Reply::JsonStatus { status, body } => (status, "application/json", body.to_string(), None),
        Reply::Html { status, body } => (status, "text/html;charset=utf-8", body, None),
        Reply::Text { status, body } => (status, "text/plain;charset=utf-8", body, None),
        Reply::Redirect(location) => (302, "text/html;charset=utf-8", String::new(), Some(location)),
        Reply::WithHeaders(..) => unreachable!("unwrapped above"),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    response.add_header(header("Content-Type", content_type).expect("static header"));
    response.add_header(header("Cache-Control", "no-store").expect("static header"));
    if let Some(location) = location {
        match header("Location", &location) {
            Some(h) => response.add_header(h),
            None => response = tiny_http::Response::from_string("Invalid redirect_uri").with_status_code(400),
        }
    }
    for (name, value) in &extra {
        if let Some(h) = header(name, value) {
            response.add_header(h);
        }
    }
    if date_skew_secs != 0 {
        // A server whose clock is off says so in its `Date` header (tiny_http adds a correct one otherwise).
        let now = SystemTime::now();
        let skewed = if date_skew_secs > 0 {
            now + std::time::Duration::from_secs(date_skew_secs.unsigned_abs())
        } else {
            now - std::time::Duration::from_secs(date_skew_secs.unsigned_abs())
        };
        response.add_header(header("Date", &httpdate::fmt_http_date(skewed)).expect("date header"));
    }
    // The client may have gone away; nothing useful to do about it.
    let _ = request.respond(response);
}

/// What answers one request of a simulator.
pub(super) type Handler = Arc<dyn Fn(&Incoming) -> Reply + Send + Sync>;

/// A tiny_http listener served by a small thread pool; shared by the simulators.
pub(super) struct Listener {
    /// `None` once stopped.
    server: Option<Arc<tiny_http::Server>>,
    /// Where to reach the listener from this host (loopback when bound to an unspecified address).
    pub(super) reach: std::net::SocketAddr,
    /// `https` when a TLS front answers at `reach`, else `http`.
    pub(super) scheme: &'static str,
    tls_front: Option<super::tls::TlsFront>,
    stopping: Arc<AtomicBool>,
    /// Seconds the `Date` header of every answer is off by (a server with a wrong clock).
    date_skew_secs: Arc<std::sync::atomic::AtomicI64>,
    workers: Vec<JoinHandle<()>>,
}

impl Listener {
    /// Binds (e.g. `"127.0.0.1:0"`), then serves with the handler `make` builds for the bound address.
    pub(super) fn start(
        bind: &str,
        name: &str,
        make: impl FnOnce(std::net::SocketAddr) -> Handler,
    ) -> std::io::Result<Listener> {
        Listener::start_with(bind, name, None, make)
    }

    /// As `start`; with `tls`, the simulator listens on loopback only and a TLS front answers at `bind`.
    pub(super) fn start_with(
        bind: &str,
        name: &str,
        tls: Option<&super::tls::TlsFiles>,
        make: impl FnOnce(std::net::SocketAddr) -> Handler,
    ) -> std::io::Result<Listener> {
        let inner_bind = if tls.is_some() { "127.0.0.1:0" } else { bind };
        let server = tiny_http::Server::http(inner_bind).map_err(std::io::Error::other)?;
        let inner = server.server_addr().to_ip().ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let tls_front = match tls {
            Some(files) => Some(super::tls::TlsFront::start_on(bind, inner, files.server_config()?)?),
            None => None,
        };
        let addr = tls_front.as_ref().map_or(inner, |front| front.addr);
        let scheme = if tls_front.is_some() { "https" } else { "http" };
        let reach_ip = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let reach = std::net::SocketAddr::new(reach_ip, addr.port());
        let handler = make(reach);
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let date_skew_secs = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let workers = (0..WORKER_THREADS)
            .map(|i| {
                let (server, handler, stopping) = (server.clone(), handler.clone(), stopping.clone());
                let skew = date_skew_secs.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || serve(&server, &handler, &stopping, &skew))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Listener { server: Some(server), reach, scheme, tls_front, stopping, date_skew_secs, workers })
    }

    /// Makes every later answer's `Date` header `seconds` off (negative: behind).
    pub(super) fn skew_date_header(&self, seconds: i64) {
        self.date_skew_secs.store(seconds, Ordering::SeqCst);
    }

    /// Blocks the calling thread while the listener serves.
    pub(super) fn join(&mut self) {
        for worker in std::mem::take(&mut self.workers) {
            let _ = worker.join();
        }
    }

    pub(super) fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        if let Some(mut front) = self.tls_front.take() {
            front.stop();
        }
        self.stopping.store(true, Ordering::SeqCst);
        // Each unblock wakes exactly one worker blocked in recv().
        for _ in 0..self.workers.len() {
            server.unblock();
        }
        self.join();
        // Dropping the last handle tells tiny_http's accept thread to quit, but it closes the
        // listener on its own schedule; wait (bounded) so "stopped" really means the port is free.
        drop(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while std::time::Instant::now() < deadline
            && std::net::TcpStream::connect_timeout(&self.reach, std::time::Duration::from_millis(100)).is_ok()
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(
    server: &tiny_http::Server,
    handler: &Handler,
    stopping: &AtomicBool,
    date_skew: &std::sync::atomic::AtomicI64,
) {
    while !stopping.load(Ordering::SeqCst) {
        let Ok(mut request) = server.recv() else {
            continue;
        };
        let incoming = read_incoming(&mut request);
        // Belt and braces: a handler bug answers 500 instead of killing this worker.
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&incoming)))
            .unwrap_or_else(|_| html_page(500, "Server Error", "<h1>Internal simulator error</h1>"));
        respond(request, reply, date_skew.load(Ordering::SeqCst));
    }
}
