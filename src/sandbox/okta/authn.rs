//! Okta's classic authentication API: `POST /api/v1/authn` (primary authentication and its transaction
//! states), `POST /api/v1/authn/factors/{id}/verify` (push with polling and number challenge, TOTP, SMS) and
//! `POST /api/v1/authn/cancel`, with Okta's error objects and real status codes.

use super::super::http::{Incoming, Reply};
use super::{
    okta_error, random_id, totp, Challenge, OktaFactor, OktaState, OktaUser, OktaUserState, PushAnswer, Transaction,
};
use serde_json::{json, Value};

/// A transaction lives this long after its last use (Okta's is sliding too).
const TRANSACTION_LIFETIME: u64 = 300;
/// Session tokens are single-use and live five minutes.
const SESSION_TOKEN_LIFETIME: u64 = 300;

fn body(req: &Incoming) -> Value {
    serde_json::from_str(&req.body).unwrap_or(Value::Null)
}

fn factor_id(user: &OktaUser, index: usize) -> String {
    let kind = match user.factors.get(index) {
        Some(OktaFactor::Push(_)) => "opf",
        Some(OktaFactor::Totp(_)) => "ost",
        _ => "mbl",
    };
    let local = user.login.split('@').next().unwrap_or_default();
    format!("{kind}{index}{local}")
}

fn factor_json(st: &OktaState, user: &OktaUser, index: usize) -> Value {
    let id = factor_id(user, index);
    let (factor_type, provider, profile) = match &user.factors[index] {
        OktaFactor::Push(_) => (
            "push",
            "OKTA",
            json!({"credentialId": user.login, "deviceType": "SmartPhone_IPhone", "name": "Sandbox iPhone", "platform": "IOS"}),
        ),
        OktaFactor::Totp(_) => ("token:software:totp", "OKTA", json!({"credentialId": user.login})),
        OktaFactor::Sms(phone) => ("sms", "OKTA", json!({"phoneNumber": phone})),
    };
    let href = format!("{}/api/v1/authn/factors/{id}/verify", st.base_url);
    json!({
        "id": id, "factorType": factor_type, "provider": provider, "vendorName": provider, "profile": profile,
        "_links": {"verify": {"href": href, "hints": {"allow": ["POST"]}}}
    })
}

fn user_json(user: &OktaUser) -> Value {
    json!({"id": format!("00u{}", user.login.len()), "profile": {"login": user.login, "firstName": "Sandbox", "lastName": "User", "locale": "en", "timeZone": "UTC"}})
}

fn links(st: &OktaState) -> Value {
    json!({"cancel": {"href": format!("{}/api/v1/authn/cancel", st.base_url), "hints": {"allow": ["POST"]}}})
}

fn new_transaction(st: &mut OktaState, login: &str) -> String {
    let token = random_id("00");
    let expires_at = st.now() + TRANSACTION_LIFETIME;
    st.transactions
        .insert(token.clone(), Transaction { login: login.to_string(), challenge: None, done: false, expires_at });
    token
}

fn state_reply(st: &mut OktaState, user: &OktaUser, status: &str, next: Option<&str>) -> Reply {
    let state_token = new_transaction(st, &user.login);
    let mut links = links(st);
    if let Some(name) = next {
        links["next"] = json!({"name": name, "href": format!("{}/api/v1/authn/{name}", st.base_url)});
    }
    let expires = super::super::saml::iso_time(st.now() + TRANSACTION_LIFETIME);
    Reply::JsonStatus {
        status: 200,
        body: json!({"stateToken": state_token, "expiresAt": expires, "status": status, "_embedded": {"user": user_json(user)}, "_links": links}),
    }
}

/// `SUCCESS`: the transaction is over and a single-use session token is handed out.
fn success(st: &mut OktaState, user: &OktaUser) -> Reply {
    let token = random_id("20111");
    let expires_at = st.now() + SESSION_TOKEN_LIFETIME;
    st.session_tokens.insert(token.clone(), (user.login.clone(), expires_at));
    st.bump("success");
    let expires = super::super::saml::iso_time(expires_at);
    Reply::JsonStatus {
        status: 200,
        body: json!({"expiresAt": expires, "status": "SUCCESS", "sessionToken": token, "_embedded": {"user": user_json(user)}}),
    }
}

fn rate_limited(st: &mut OktaState) -> Option<Reply> {
    if st.rate_limited == 0 {
        return None;
    }
    st.rate_limited -= 1;
    st.bump("authn:429");
    let reset = st.now() + 1;
    Some(
        okta_error(429, "E0000047", "API call exceeded rate limit due to too many requests.", &[])
            .with_header("X-Rate-Limit-Limit", "10")
            .with_header("X-Rate-Limit-Remaining", "0")
            .with_header("X-Rate-Limit-Reset", reset.to_string()),
    )
}

/// `POST /api/v1/authn`.
pub(super) fn authn(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("authn");
    if let Some(reply) = rate_limited(st) {
        return reply;
    }
    let body = body(req);
    let username = body["username"].as_str().unwrap_or_default();
    let password = body["password"].as_str().unwrap_or_default();
    let Some(user) = st.user(username).filter(|u| u.password == password && !password.is_empty()) else {
        st.bump("authn:failed");
        return okta_error(401, "E0000004", "Authentication failed", &[]);
    };
    match user.state {
        OktaUserState::LockedOut => return state_reply(st, &user, "LOCKED_OUT", Some("unlock")),
        OktaUserState::PasswordExpired => return state_reply(st, &user, "PASSWORD_EXPIRED", Some("changePassword")),
        OktaUserState::MustEnroll => return state_reply(st, &user, "MFA_ENROLL", None),
        OktaUserState::Active => {}
    }
    let device = req.cookies.get("DT").cloned().unwrap_or_default();
    let remembered = !device.is_empty() && st.remembered_devices.iter().any(|(l, d)| *l == user.login && *d == device);
    if user.factors.is_empty() || remembered {
        return success(st, &user);
    }
    let state_token = new_transaction(st, &user.login);
    let factors: Vec<Value> = (0..user.factors.len()).map(|i| factor_json(st, &user, i)).collect();
    let expires = super::super::saml::iso_time(st.now() + TRANSACTION_LIFETIME);
    Reply::JsonStatus {
        status: 200,
        body: json!({
            "stateToken": state_token, "expiresAt": expires, "status": "MFA_REQUIRED",
            "_embedded": {"user": user_json(&user), "factors": factors,
                          "policy": {"allowRememberDevice": true, "rememberDeviceByDefault": false, "rememberDeviceLifetimeInMinutes": 43_200}},
            "_links": links(st)
        }),
    }
}

/// The live transaction a request names, or the Okta error to answer.
fn transaction(st: &mut OktaState, req: &Incoming) -> Result<(String, Transaction, OktaUser), Reply> {
    let token = body(req)["stateToken"].as_str().unwrap_or_default().to_string();
    let now = st.now();
    let found = st.transactions.get(&token).filter(|t| t.expires_at > now).cloned();
    let Some(txn) = found else {
        return Err(okta_error(401, "E0000011", "Invalid token provided", &[]));
    };
    if txn.done {
        return Err(okta_error(
            403,
            "E0000079",
            "This operation is not allowed in the current authentication state.",
            &[],
        ));
    }
    let Some(user) = st.user(&txn.login) else {
        return Err(okta_error(401, "E0000011", "Invalid token provided", &[]));
    };
    Ok((token, txn, user))
}

fn challenge_reply(st: &OktaState, token: &str, user: &OktaUser, index: usize, result: &str, next: &str) -> Reply {
    let mut factor = factor_json(st, user, index);
    if let (OktaFactor::Push(script), "WAITING") = (&user.factors[index], result) {
        if let Some(n) = script.number_challenge {
            factor["_embedded"] = json!({"challenge": {"correctAnswer": n}});
        }
    }
    let href = factor["_links"]["verify"]["href"].clone();
    let mut links = links(st);
    links["next"] = json!({"name": next, "href": href, "hints": {"allow": ["POST"]}});
    if next == "verify" {
        links["resend"] = json!([{"name": "sms", "href": format!("{}/resend", href.as_str().unwrap_or_default())}]);
    }
    let expires = super::super::saml::iso_time(st.now() + TRANSACTION_LIFETIME);
    Reply::JsonStatus {
        status: 200,
        body: json!({"stateToken": token, "expiresAt": expires, "status": "MFA_CHALLENGE", "factorResult": result,
                     "_embedded": {"user": user_json(user), "factor": factor}, "_links": links}),
    }
}

fn wrong_passcode() -> Reply {
    okta_error(
        403,
        "E0000068",
        "Invalid Passcode/Answer",
        &["Your passcode doesn't match our records. Please try again."],
    )
}

/// `POST /api/v1/authn/factors/{id}/verify` (also the push poll: Okta's `_links.next` is the same URL).
pub(super) fn verify(st: &mut OktaState, req: &Incoming, factor: &str) -> Reply {
    st.bump("verify");
    let (token, mut txn, user) = match transaction(st, req) {
        Ok(found) => found,
        Err(reply) => return reply,
    };
    let Some(index) = (0..user.factors.len()).find(|&i| factor_id(&user, i) == factor) else {
        return okta_error(404, "E0000007", &format!("Not found: Resource not found: {factor} (UserFactor)"), &[]);
    };
    txn.expires_at = st.now() + TRANSACTION_LIFETIME;
    let remember = req.params.get("rememberDevice").is_some_and(|v| v == "true");
    let pass_code = body(req)["passCode"].as_str().map(str::to_string);
    let ongoing = txn.challenge.clone().filter(|c| c.factor_id == factor);
    let outcome = match &user.factors[index] {
        OktaFactor::Push(script) => {
            let polls = ongoing.as_ref().map_or(0, |c| c.polls + 1);
            if polls > 0 {
                st.bump("poll");
            }
            txn.challenge = Some(Challenge {
                factor_id: factor.to_string(),
                polls,
                sms_code: None,
                remember_device: remember || ongoing.is_some_and(|c| c.remember_device),
            });
            let answered = polls > 0 && polls >= script.polls;
            match (&script.answer, answered) {
                (PushAnswer::Approve, true) => Ok(()),
                (PushAnswer::Reject, true) => {
                    txn.challenge = None;
                    Err(challenge_reply(st, &token, &user, index, "REJECTED", "verify"))
                }
                (PushAnswer::Timeout, true) => {
                    txn.challenge = None;
                    Err(challenge_reply(st, &token, &user, index, "TIMEOUT", "verify"))
                }
                _ => Err(challenge_reply(st, &token, &user, index, "WAITING", "poll")),
            }
        }
        OktaFactor::Totp(seed) => match pass_code {
            Some(code) if totp::accepts(seed, st.now(), &code) => Ok(()),
            _ => {
                st.bump("verify:wrong_code");
                Err(wrong_passcode())
            }
        },
        OktaFactor::Sms(_) => match (pass_code, ongoing) {
            (None, _) => {
                let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
                st.last_sms.insert(user.login.clone(), code.clone());
                st.bump("sms:sent");
                txn.challenge = Some(Challenge {
                    factor_id: factor.to_string(),
                    polls: 0,
                    sms_code: Some(code),
                    remember_device: remember,
                });
                Err(challenge_reply(st, &token, &user, index, "CHALLENGE", "verify"))
            }
            (Some(code), Some(c)) if c.sms_code.as_deref() == Some(code.trim()) => Ok(()),
            (Some(_), _) => {
                st.bump("verify:wrong_code");
                Err(wrong_passcode())
            }
        },
    };
    match outcome {
        Ok(()) => {
            let remembered = remember || txn.challenge.as_ref().is_some_and(|c| c.remember_device);
            if let Some(device) = req.cookies.get("DT").filter(|_| remembered) {
                st.remembered_devices.push((user.login.clone(), device.clone()));
            }
            txn.done = true;
            st.transactions.insert(token, txn);
            success(st, &user)
        }
        Err(reply) => {
            st.transactions.insert(token, txn);
            reply
        }
    }
}

/// `POST /api/v1/authn/cancel`.
pub(super) fn cancel(st: &mut OktaState, req: &Incoming) -> Reply {
    st.bump("cancel");
    let token = body(req)["stateToken"].as_str().unwrap_or_default().to_string();
    match st.transactions.remove(&token) {
        Some(_) => Reply::JsonStatus { status: 200, body: json!({"status": "UNAUTHENTICATED"}) },
        None => okta_error(401, "E0000011", "Invalid token provided", &[]),
    }
}
