//! `AsyncClient` (cargo feature `reqwest`): the async twin of [`Client`] over `reqwest`. The same
//! rules: the credential in the provider's style, refreshed before it expires, one refresh and one
//! retry on HTTP 401 or ArcGIS 498/499 (HTTP 200 bodies included), 403 never retried. The cache, the
//! lock and the refresh are blocking work: they run on tokio's blocking pool, never on the executor.

use crate::client::{Client, ClientError, Held, Judged};
use crate::error::Error;
use crate::http::HttpResponse;
use crate::registry::AuthVerdict;
use reqwest::header::{HeaderName, HeaderValue};
use std::sync::{Arc, Mutex};

/// The headers that carry one held credential, built once for it rather than on every request.
type Prepared = (Held, Arc<[(HeaderName, HeaderValue)]>);

/// An async HTTP client for one profile: `reqwest` underneath, [`Client`]'s rules on top.
///
/// ```no_run
/// # async fn example() -> Result<(), age_oauth::ClientError> {
/// let env = age_oauth::Env::from_process();
/// let client = age_oauth::AsyncClient::new(age_oauth::Client::for_profile("prod", &env)?)?;
/// let answer = client.get("https://gis.example.com/portal/sharing/rest/portals/self?f=json").await?;
/// println!("{}", String::from_utf8_lossy(&answer.body));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncClient {
    client: Arc<Client>,
    http: reqwest::Client,
    /// The last credential's headers (clones share them: one credential, one set).
    prepared: Arc<Mutex<Option<Prepared>>>,
}

impl AsyncClient {
    /// Wraps `client`, with a `reqwest` client that trusts what the profile's `verify_ssl` says
    /// (the operating system's store, or the profile's CA bundle). `verify_ssl = false` is refused here.
    pub fn new(client: Client) -> Result<AsyncClient, ClientError> {
        let verify = client.session().profile.engine.verify_ssl.to_verify();
        let trust = crate::http::Trust::load(&verify, client.env()).map_err(ClientError::Setup)?.ok_or_else(|| {
            ClientError::Setup(Error::Config(format!(
                "profile '{}' has verify_ssl = false, which AsyncClient does not do; pass your own \
                 reqwest client to AsyncClient::with_http if you must",
                client.profile()
            )))
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Setup(Error::Other(format!("TLS set-up: {e}"))))?
            .with_root_certificates(trust.root_store())
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(Error::Other(format!("reqwest: {e}"))))?;
        Ok(AsyncClient::with_http(client, http))
    }

    /// Wraps `client` with a `reqwest` client of your own (proxies, timeouts, TLS). The feature builds
    /// reqwest without a TLS crypto provider: install one first (`rustls::crypto::ring::default_provider()
    /// .install_default()`) or give the builder a TLS configuration. Keep redirects off
    /// (`redirect(reqwest::redirect::Policy::none())`, as [`AsyncClient::new`] does): only the first URL is
    /// checked against the profile's origins, and on a redirect to another host reqwest drops
    /// `Authorization` but not `X-Esri-Authorization` or a profile's own key header.
    pub fn with_http(client: Client, http: reqwest::Client) -> AsyncClient {
        AsyncClient { client: Arc::new(client), http, prepared: Arc::default() }
    }

    /// The profile's name.
    pub fn profile(&self) -> &str {
        self.client.profile()
    }

    /// `GET url` with the credential.
    pub async fn get(&self, url: &str) -> Result<HttpResponse, ClientError> {
        let request = self.http.get(url).build().map_err(|e| ClientError::Setup(Error::Config(e.to_string())))?;
        self.execute(request).await
    }

    /// Sends `request` with the credential; the answer is read whole (ArcGIS says "invalid token" in
    /// HTTP 200 bodies). A request whose body cannot be cloned is not retried after a refresh.
    pub async fn execute(&self, request: reqwest::Request) -> Result<HttpResponse, ClientError> {
        self.client.check_destination(request.url().as_str())?;
        let held = self.credential().await?;
        let retry = request.try_clone();
        let (response, verdict) = self.send_once(&held, request).await?;
        match self.client.judged(response, verdict, false) {
            Judged::Done(result) => result,
            Judged::Retry => {
                let client = self.client.clone();
                let fresh = blocking(move || client.refreshed_after(&held)).await?;
                let Some(request) = retry else {
                    return Judged::Retry.into_final(self.profile());
                };
                let (response, verdict) = self.send_once(&fresh, request).await?;
                self.client.judged(response, verdict, true).into_final(self.profile())
            }
        }
    }

    /// The held credential, or (on the blocking pool) a fresh one.
    async fn credential(&self) -> Result<Held, ClientError> {
        if let Some(held) = self.client.fresh_held() {
            return Ok(held);
        }
        let client = self.client.clone();
        blocking(move || client.credential()).await
    }

    async fn send_once(
        &self,
        held: &Held,
        mut request: reqwest::Request,
    ) -> Result<(HttpResponse, AuthVerdict), ClientError> {
        for (name, value) in self.headers_for(held)?.iter() {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        let response = self.http.execute(request).await.map_err(|e| ClientError::Transport(transport_text(e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = Vec::from(response.bytes().await.map_err(|e| ClientError::Transport(transport_text(e)))?);
        let response = HttpResponse { status, headers, body };
        let verdict = self.client.session().provider.judge(&response);
        Ok((response, verdict))
    }

    /// The headers carrying `held`, built when the credential is new to this client.
    fn headers_for(&self, held: &Held) -> Result<Arc<[(HeaderName, HeaderValue)]>, ClientError> {
        let mut slot = self.prepared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((known, headers)) = slot.as_ref() {
            if Arc::ptr_eq(known, held) {
                return Ok(headers.clone());
            }
        }
        let headers = self.build_headers(held)?;
        *slot = Some((held.clone(), headers.clone()));
        Ok(headers)
    }

    fn build_headers(&self, held: &Held) -> Result<Arc<[(HeaderName, HeaderValue)]>, ClientError> {
        let session = self.client.session();
        let headers = session.provider.authorization_headers(&held.0).ok_or_else(|| {
            ClientError::Setup(Error::Config(format!(
                "profile '{}' ({}) signs each request in a handshake of its own: use the blocking age_oauth::Client",
                self.profile(),
                session.provider_name()
            )))
        })?;
        headers
            .into_iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| ClientError::Setup(Error::Config(format!("header `{name}`: {e}"))))?;
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| ClientError::Setup(Error::Config(format!("header `{name}` has an invalid value"))))?;
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect()
    }
}

/// Runs blocking work (cache, lock, refresh) on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ClientError> + Send + 'static,
) -> Result<T, ClientError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ClientError::Setup(Error::Other(format!("the credential task failed: {e}"))))?
}

/// A transport error without the URL's query (which may hold anything).
fn transport_text(e: reqwest::Error) -> String {
    crate::redact::printable(&e.without_url().to_string())
}
