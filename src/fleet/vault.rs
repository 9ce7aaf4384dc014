//! The Vault / OpenBao KV v2 adapter of `CasStore`: one record at `{mount}/data/{path}`, read with its
//! version and the store's own clock, written with `options.cas` (check-and-set) over the project's HTTP client.

use super::{CasStore, Read, Written};
use crate::error::{Error, Result, ServerErrorKind};
use crate::http::{HttpClient, HttpRequest, HttpResponse, Method};
use crate::secret::Secret;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// A KV v2 record reached with one Vault token.
pub struct VaultKv {
    http: Arc<dyn HttpClient>,
    /// `https://host:port`.
    base: String,
    mount: String,
    path: String,
    token: Secret,
    /// Where the token came from (`token_file /x`, `VAULT_TOKEN`), for messages.
    token_source: String,
}

impl VaultKv {
    /// An adapter for `{base}/v1/{mount}/data/{path}`.
    pub fn new(
        http: Arc<dyn HttpClient>,
        base: &str,
        mount: &str,
        path: &str,
        token: Secret,
        token_source: String,
    ) -> Self {
        VaultKv {
            http,
            base: base.trim_end_matches('/').to_string(),
            mount: mount.trim_matches('/').to_string(),
            path: path.trim_matches('/').to_string(),
            token,
            token_source,
        }
    }

    fn data_url(&self) -> String {
        format!("{}/v1/{}/data/{}", self.base, self.mount, self.path)
    }

    fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        let request = request.header("X-Vault-Token", self.token.expose()).header("X-Vault-Request", "true");
        self.http.send(&request).map_err(|e| e.context(&format!("fleet store {}", self.describe())))
    }

    /// An answer that is neither success nor a handled case, as an error naming what was tried.
    fn refused(&self, what: &str, response: &HttpResponse) -> Error {
        let errors = vault_errors(response);
        let tried = format!("{what} {} with the Vault token from {}", self.describe(), self.token_source);
        match response.status {
            401 | 403 => Error::Server(crate::error::ServerError {
                kind: ServerErrorKind::Refused,
                message: format!(
                    "the fleet store refused the Vault token (HTTP {}: {errors}); tried: {tried}. Check the token and \
                     that its policy grants create, read and update on {}/data/{}",
                    response.status, self.mount, self.path
                ),
                source: None,
            }),
            s if s >= 500 || s == 429 => {
                Error::http_status(s, format!("the fleet store answered HTTP {s} ({errors}); tried: {tried}"))
            }
            s => Error::http_status(s, format!("the fleet store answered HTTP {s} ({errors}); tried: {tried}")),
        }
    }
}

impl CasStore for VaultKv {
    fn describe(&self) -> String {
        format!("{} (KV v2 mount {}, path {})", self.base, self.mount, self.path)
    }

    fn read(&self) -> Result<Read> {
        let response = self.send(HttpRequest::get(self.data_url()))?;
        let store_now = response.header("date").and_then(|d| httpdate::parse_http_date(d).ok()).and_then(epoch);
        if response.status == 404 {
            // Absent, or its newest version deleted: the body may still carry that version's metadata.
            let version = parse_json(&response).ok().and_then(|v| v["data"]["metadata"]["version"].as_u64());
            return Ok(Read { version: version.unwrap_or(0), record: None, written_at: None, store_now });
        }
        if response.status != 200 {
            return Err(self.refused("GET", &response));
        }
        let body = parse_json(&response).map_err(|why| self.garbled(&why))?;
        let meta = &body["data"]["metadata"];
        let version = meta["version"].as_u64().ok_or_else(|| self.garbled("no data.metadata.version"))?;
        let written_at =
            meta["created_time"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok()).and_then(epoch);
        let record = match &body["data"]["data"] {
            Value::Object(map) => Some(map.clone()),
            Value::Null => None,
            _ => return Err(self.garbled("data.data is not an object")),
        };
        Ok(Read { version, record, written_at, store_now })
    }

    fn write_if(&self, version: u64, record: &Map<String, Value>) -> Result<Written> {
        let body = json!({"options": {"cas": version}, "data": record});
        let mut request = HttpRequest::get(self.data_url());
        request.method = Method::Post;
        request.headers.push(("Content-Type".into(), "application/json".into()));
        request.body = Some(body.to_string().into_bytes());
        let response = self.send(request)?;
        if response.status == 400 && vault_errors(&response).contains("check-and-set") {
            return Ok(Written::Conflict);
        }
        if response.status != 200 {
            return Err(self.refused("POST", &response));
        }
        let body = parse_json(&response).map_err(|why| self.garbled(&why))?;
        let version = body["data"]["version"].as_u64().ok_or_else(|| self.garbled("no data.version in the answer"))?;
        Ok(Written::Done { version })
    }
}

impl VaultKv {
    fn garbled(&self, why: &str) -> Error {
        Error::server(format!(
            "the fleet store {} answered something that is not a KV v2 answer: {why}",
            self.describe()
        ))
    }
}

fn parse_json(response: &HttpResponse) -> std::result::Result<Value, String> {
    if response.looks_like_html() {
        return Err(format!("an HTML page ({})", response.html_title().unwrap_or_default()));
    }
    serde_json::from_slice(&response.body).map_err(|e| format!("not JSON ({e})"))
}

/// Vault's `{"errors":[...]}`, joined (server text, shown redacted by the reporter).
fn vault_errors(response: &HttpResponse) -> String {
    let text = parse_json(response)
        .ok()
        .and_then(|v| v["errors"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; ")))
        .unwrap_or_default();
    if text.is_empty() {
        "no error text".into()
    } else {
        text.chars().take(300).collect()
    }
}

fn epoch(t: std::time::SystemTime) -> Option<u64> {
    t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request with one canned response.
    struct Canned(u16, &'static str, &'static str);

    impl HttpClient for Canned {
        fn send(&self, _: &HttpRequest) -> Result<HttpResponse> {
            let headers = vec![
                ("Content-Type".to_string(), self.1.to_string()),
                ("Date".to_string(), "Tue, 01 Dec 2026 03:00:10 GMT".to_string()),
            ];
            Ok(HttpResponse { status: self.0, headers, body: self.2.as_bytes().to_vec() })
        }
    }

    fn kv(answer: Canned) -> VaultKv {
        VaultKv::new(
            Arc::new(answer),
            "http://127.0.0.1:1",
            "secret",
            "age-oauth/p",
            Secret::new("s.tok"),
            "VAULT_TOKEN".into(),
        )
    }

    #[test]
    fn versions_and_store_time_are_read_and_a_cas_mismatch_is_a_conflict() {
        let body =
            r#"{"data":{"data":{"gen":1},"metadata":{"version":7,"created_time":"2026-12-01T03:00:04.123456789Z"}}}"#;
        let read = kv(Canned(200, "application/json", body)).read().unwrap();
        assert_eq!((read.version, read.written_at.is_some(), read.store_now.is_some()), (7, true, true));
        assert_eq!(super::super::claim_age(&read), Some(6), "by the store's clock: Date minus created_time");
        let absent = kv(Canned(404, "application/json", r#"{"errors":[]}"#)).read().unwrap();
        assert_eq!((absent.version, absent.record.is_none()), (0, true));
        let lost = r#"{"errors":["check-and-set parameter did not match the current version"]}"#;
        assert_eq!(kv(Canned(400, "application/json", lost)).write_if(3, &Map::new()).unwrap(), Written::Conflict);
        let done = kv(Canned(200, "application/json", r#"{"data":{"version":4}}"#)).write_if(3, &Map::new()).unwrap();
        assert_eq!(done, Written::Done { version: 4 });
    }

    #[test]
    fn refusals_and_garbage_are_clear_errors_that_never_show_the_token() {
        for (answer, exit, says) in [
            (Canned(403, "application/json", r#"{"errors":["permission denied"]}"#), 4, "refused the Vault token"),
            (Canned(200, "text/html", "<html><title>Sign in</title></html>"), 4, "HTML page"),
            (Canned(200, "application/json", "{\"data\":"), 4, "not JSON"),
            (Canned(200, "application/json", r#"{"data":{"data":[1],"metadata":{"version":1}}}"#), 4, "not an object"),
            (Canned(503, "application/json", r#"{"errors":["Vault is sealed"]}"#), 4, "sealed"),
        ] {
            let err = kv(answer).read().unwrap_err();
            assert_eq!(err.exit_code(), exit, "{err}");
            assert!(err.to_string().contains(says), "{err}");
            assert!(!err.to_string().contains("s.tok"), "{err}");
        }
        assert!(
            kv(Canned(503, "application/json", "{}")).read().unwrap_err().is_transient(),
            "a sealed store is retried"
        );
    }
}
