//! Admin hooks (`/__admin/*`) for tests that drive the CLI as a separate process, the request log, and
//! `/__test/status/NNN` for clients' retry rules. Ours, not ArcGIS's: they answer real status codes.

use super::super::http::{html_page, Incoming, Reply};
use super::SimState;
use serde_json::{json, Value};

const MAX_LOGGED_REQUESTS: usize = 10_000;

fn admin_error(status: u16, message: &str) -> Reply {
    Reply::JsonStatus { status, body: json!({"error": message}) }
}

fn config_json(st: &SimState) -> Value {
    let c = &st.config;
    json!({
        "access_token_lifetime": c.access_token_lifetime,
        "refresh_token_lifetime": c.refresh_token_lifetime,
        "code_lifetime": c.code_lifetime,
        "auto_approve": c.auto_approve,
        "approve_as": c.approve_as,
        "include_refresh_expiry": c.include_refresh_expiry,
        "rotate_on_refresh": c.rotate_on_refresh,
        "deny_next_authorize": st.deny_next_authorize,
        "invalid_token_status": st.invalid_token_status,
    })
}

/// All-or-nothing: a bad field leaves the configuration untouched.
fn apply_config(st: &mut SimState, changes: &serde_json::Map<String, Value>) -> Result<(), String> {
    let (mut config, mut deny_next_authorize) = (st.config.clone(), st.deny_next_authorize);
    let mut invalid_token_status = st.invalid_token_status;
    for (key, value) in changes {
        let as_secs = || value.as_u64().ok_or(format!("{key} must be a non-negative integer"));
        let as_bool = || value.as_bool().ok_or(format!("{key} must be a boolean"));
        match key.as_str() {
            "access_token_lifetime" => config.access_token_lifetime = as_secs()?,
            "refresh_token_lifetime" => config.refresh_token_lifetime = as_secs()?,
            "code_lifetime" => config.code_lifetime = as_secs()?,
            "auto_approve" => config.auto_approve = as_bool()?,
            "include_refresh_expiry" => config.include_refresh_expiry = as_bool()?,
            "rotate_on_refresh" => config.rotate_on_refresh = as_bool()?,
            "deny_next_authorize" => deny_next_authorize = as_bool()?,
            // Checked conversion (no cast): a number beyond u16 is refused like any other status.
            "invalid_token_status" => match value.as_u64().and_then(|n| u16::try_from(n).ok()) {
                Some(status @ (200 | 401 | 498)) => invalid_token_status = status,
                _ => return Err("invalid_token_status must be 200, 401 or 498".into()),
            },
            "approve_as" => config.approve_as = value.as_str().ok_or("approve_as must be a string")?.to_string(),
            other => return Err(format!("unknown setting {other}")),
        }
    }
    (st.config, st.deny_next_authorize, st.invalid_token_status) = (config, deny_next_authorize, invalid_token_status);
    Ok(())
}

pub(super) fn admin(st: &mut SimState, req: &Incoming) -> Reply {
    let action = req.path.trim_start_matches("/__admin/");
    let body: Value = if req.body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&req.body) {
            Ok(v) => v,
            Err(e) => return admin_error(400, &format!("body is not JSON: {e}")),
        }
    };
    let ok = |body: Value| Reply::JsonStatus { status: 200, body };
    match (action, req.is_post) {
        ("counts", false) => ok(json!(st.counts)),
        ("requests", false) => ok(json!(st.request_log)),
        ("state", false) => {
            let live = st.live_tokens();
            ok(json!({
                "live_access_tokens": live.access_tokens,
                "live_refresh_tokens": live.refresh_tokens,
                "live_codes": live.codes,
                "pending_sign_ins": st.pending.len(),
                "now": st.now(),
                "clock_offset_seconds": st.clock_offset_secs,
                "config": config_json(st),
            }))
        }
        ("reset_counts", true) => {
            st.counts.clear();
            st.request_log.clear();
            ok(json!({"success": true}))
        }
        ("revoke_all", true) => {
            let (access, refresh) = st.revoke_all();
            ok(json!({"success": true, "revoked_access_tokens": access, "revoked_refresh_tokens": refresh}))
        }
        ("advance_clock", true) => match body.get("seconds").and_then(Value::as_i64) {
            Some(seconds) => {
                st.clock_offset_secs = st.clock_offset_secs.saturating_add(seconds);
                ok(json!({"now": st.now(), "clock_offset_seconds": st.clock_offset_secs}))
            }
            None => admin_error(400, "expected {\"seconds\": N}"),
        },
        ("config", true) => match body.as_object().map(|changes| apply_config(st, changes)) {
            Some(Ok(())) => ok(config_json(st)),
            Some(Err(message)) => admin_error(400, &message),
            None => admin_error(400, "expected a JSON object"),
        },
        ("config", false) => ok(config_json(st)),
        ("counts" | "requests" | "state" | "reset_counts" | "revoke_all" | "advance_clock", _) => {
            admin_error(405, "wrong method")
        }
        _ => admin_error(404, "unknown admin endpoint"),
    }
}

/// How a request authenticated, for the request log; never changes state.
fn auth_kind(st: &SimState, req: &Incoming) -> &'static str {
    match req.bearer.as_deref().or_else(|| req.param("token")) {
        None => "none",
        Some(token) => match st.access_tokens.get(token) {
            Some(grant) if grant.expires_at > st.now() => "valid",
            _ => "invalid",
        },
    }
}

pub(super) fn log_request(st: &mut SimState, req: &Incoming) {
    if st.request_log.len() >= MAX_LOGGED_REQUESTS {
        st.request_log.remove(0);
    }
    let entry =
        json!({"method": if req.is_post { "POST" } else { "GET" }, "path": req.path, "auth": auth_kind(st, req)});
    st.request_log.push(entry);
}

/// `/__test/status/NNN`: answers HTTP NNN with an ArcGIS-shaped error, for clients' retry rules.
pub(super) fn test_status(st: &mut SimState, code: &str) -> Reply {
    match code.parse::<u16>() {
        Ok(status @ 200..=599) => {
            st.bump(&format!("test/status:{status}"));
            Reply::JsonStatus {
                status,
                body: json!({"error": {"code": status, "message": "test status", "details": []}}),
            }
        }
        _ => html_page(404, "404 Not Found", "<h1>Not Found</h1>"),
    }
}
