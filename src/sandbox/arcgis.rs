//! ArcGIS wire conventions shared by the Portal and ArcGIS Server simulators: JSON errors in HTTP 200
//! bodies, `f=json` / `f=pjson` / HTML, `expiration` minutes, generateToken's client binding, random tokens.

use super::http::{html_escape, html_page, Incoming, Reply};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::{json, Value};

pub(super) fn arcgis_json(body: Value, pretty: bool) -> Reply {
    Reply::Json { body, pretty }
}

pub(super) fn token_required(pretty: bool) -> Reply {
    let body = json!({"error": {"code": 499, "message": "Token Required", "messageCode": "GWM_0003", "details": ["Token Required"]}});
    arcgis_json(body, pretty)
}

pub(super) fn invalid_token(pretty: bool) -> Reply {
    arcgis_json(json!({"error": {"code": 498, "message": "Invalid token.", "details": []}}), pretty)
}

pub(super) fn forbidden(pretty: bool) -> Reply {
    let message = "You do not have permissions to access this resource or perform this operation.";
    arcgis_json(json!({"error": {"code": 403, "message": message, "details": []}}), pretty)
}

/// What ArcGIS answers when a client forgets f=json: the HTML "Portal Directory" rendering.
pub(super) fn html_directory(path: &str) -> Reply {
    let body = format!(
        "<h1>ArcGIS Portal Directory</h1>\n<p>Resource: {}</p>\n<p>Formats: <a href=\"?f=json\">JSON</a></p>",
        html_escape(path)
    );
    html_page(200, "ArcGIS Portal Directory", &body)
}

/// `f=json` → compact, `f=pjson` → pretty, anything else → the client gets HTML (ArcGIS default f=html).
pub(super) fn json_format(req: &Incoming) -> Option<bool> {
    match req.param("f") {
        Some("json") => Some(false),
        Some("pjson") => Some(true),
        _ => None,
    }
}

/// `expiration` minutes as ArcGIS reads them: -1 = maximum, positive = capped, anything else = default.
pub(super) fn resolve_minutes(raw: Option<i64>, max: u64) -> Option<u64> {
    match raw {
        Some(-1) => Some(max),
        // m > 0 here, so it fits u64 and the sign is not lost.
        Some(m) if m > 0 => Some(m.cast_unsigned().min(max)),
        _ => None,
    }
}

pub(super) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How a token minted by `generateToken` is bound (`client`, `referer`, `ip`), or the error detail.
pub(super) fn token_binding(req: &Incoming) -> Result<(Option<String>, Option<String>), &'static str> {
    match req.param("client").unwrap_or("requestip") {
        "referer" => match req.param("referer") {
            Some(r) => Ok((Some(r.to_string()), None)),
            None => Err("Referer is required for client=referer."),
        },
        "requestip" => Ok((None, req.remote_ip.clone())),
        "ip" => match req.param("ip") {
            Some(ip) => Ok((None, Some(ip.to_string()))),
            None => Err("IP is required for client=ip."),
        },
        _ => Err("Invalid client type."),
    }
}

/// The `generateToken` failure shape (HTTP 200, code 400).
pub(super) fn unable_to_generate(detail: &str, pretty: bool) -> Reply {
    arcgis_json(json!({"error": {"code": 400, "message": "Unable to generate token.", "details": [detail]}}), pretty)
}

/// Server roots compare without case in scheme/host and without a trailing slash.
pub(super) fn same_root(a: &str, b: &str) -> bool {
    a.trim_end_matches('/').eq_ignore_ascii_case(b.trim_end_matches('/'))
}
