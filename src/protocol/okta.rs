//! Okta's classic authentication API from the client side: org detection, `POST /api/v1/authn` and every
//! transaction state, MFA (Okta Verify push with number challenge, TOTP, SMS), Okta error objects, 429 with
//! `X-Rate-Limit-Reset`, and turning the single-use `sessionToken` into an Okta session cookie.

use crate::error::{Error, Result};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::registry::FlowContext;
use crate::secret::Secret;
use serde_json::{json, Value};

/// Seconds between push polls (Okta's own sign-in page polls every 4 s).
pub const PUSH_POLL_SECS: u64 = 4;
/// Never poll faster than this, whatever the remaining wait.
pub const MIN_POLL_SECS: u64 = 2;
/// The longest wait for a rate limit to reset before the one retry.
pub const MAX_RATE_LIMIT_WAIT: u64 = 60;
/// Tries at a one-time code when a person can type another.
const CODE_ATTEMPTS: usize = 3;

/// Which factor to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaChoice {
    /// Okta Verify push.
    Push,
    /// A TOTP code (Okta Verify, Google Authenticator, hardware tokens).
    Totp,
    /// A code sent by SMS.
    Sms,
    /// Push when enrolled, else the only usable factor, else ask (or take the first without a person).
    Any,
}

/// How a sign-in goes.
pub struct SignIn<'a> {
    /// The Okta username.
    pub username: &'a str,
    /// The password.
    pub password: &'a Secret,
    /// The factor to use.
    pub mfa: MfaChoice,
    /// Seconds to wait for a push answer.
    pub mfa_timeout: u64,
    /// Ask Okta to remember this device (with the `DT` cookie) so MFA is asked less often.
    pub remember_device: bool,
    /// The `DT` device-token cookie value sent with every call.
    pub device_token: &'a Secret,
}

/// One Okta org.
pub struct OktaOrg {
    /// The org URL (`https://example.okta.com`).
    pub url: String,
}

/// The factor kinds this client can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Push,
    Totp,
    Sms,
}

fn kind_of(factor: &Value) -> Option<Kind> {
    match factor["factorType"].as_str()? {
        "push" => Some(Kind::Push),
        "token:software:totp" | "token:hotp" | "token:hardware" | "token" => Some(Kind::Totp),
        "sms" => Some(Kind::Sms),
        _ => None,
    }
}

fn describe_factor(factor: &Value) -> String {
    let kind = factor["factorType"].as_str().unwrap_or("?");
    let provider = factor["provider"].as_str().unwrap_or("?");
    format!("{provider} {kind}")
}

/// One line from an Okta error object (`errorCode`, `errorSummary`, the first cause).
fn okta_error_line(body: &Value) -> Option<String> {
    let code = body["errorCode"].as_str()?;
    let summary = body["errorSummary"].as_str().unwrap_or("error");
    let cause = body["errorCauses"][0]["errorSummary"].as_str().map(|c| format!(": {c}")).unwrap_or_default();
    Some(format!("{summary} ({code}){cause}"))
}

impl OktaOrg {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    /// Only URLs on the org itself get the password, the state token and the cookies.
    fn check_own(&self, url: &str) -> Result<()> {
        let base = self.url.trim_end_matches('/');
        if url == base || url.starts_with(&format!("{base}/")) {
            Ok(())
        } else {
            Err(Error::server(format!(
                "Okta pointed to {} which is not the org {base}: refused",
                crate::redact::url(url)
            )))
        }
    }

    /// `GET /.well-known/okta-organization` → `v1` (Classic Engine) or `idx` (Identity Engine).
    pub fn pipeline(&self, cx: &mut FlowContext<'_>) -> Result<String> {
        let response = cx.send(&HttpRequest::get(self.api("/.well-known/okta-organization")))?;
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match body["pipeline"].as_str() {
            Some(p) if response.status == 200 => Ok(p.to_string()),
            _ => Err(Error::server(format!(
                "{} does not look like an Okta org (no .well-known/okta-organization; HTTP {})",
                self.url, response.status
            ))),
        }
    }

    /// POSTs JSON to the org; on 429 waits until `X-Rate-Limit-Reset` (at most a minute) and tries once more.
    fn post(&self, cx: &mut FlowContext<'_>, url: &str, body: &Value, device: &Secret) -> Result<(u16, Value)> {
        self.check_own(url)?;
        let mut request = HttpRequest {
            method: Method::Post,
            url: url.to_string(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Accept".into(), "application/json".into()),
            ],
            body: Some(body.to_string().into_bytes()),
        };
        if !device.is_empty() {
            request = request.header("Cookie", format!("DT={}", device.expose()));
        }
        let mut response = cx.send(&request)?;
        if response.status == 429 {
            let wait = rate_limit_wait(&response, cx.now());
            cx.ui.warn(&format!("Okta's rate limit was reached; trying again in {wait} s"));
            cx.clock.sleep(wait);
            response = cx.send(&request)?;
        }
        let value: Value = serde_json::from_slice(&response.body).map_err(|_| {
            let what = if response.looks_like_html() { "an HTML page" } else { "something that is not JSON" };
            Error::server(format!("Okta answered {url} with {what} (HTTP {})", response.status))
        })?;
        Ok((response.status, value))
    }

    /// Signs in with password and MFA; returns the single-use `sessionToken`.
    pub fn authenticate(&self, cx: &mut FlowContext<'_>, sign_in: &SignIn<'_>) -> Result<Secret> {
        let body = json!({
            "username": sign_in.username,
            "password": sign_in.password.expose(),
            "options": {"warnBeforePasswordExpired": false, "multiOptionalFactorEnroll": false},
        });
        let (status, mut answer) = self.post(cx, &self.api("/api/v1/authn"), &body, sign_in.device_token)?;
        if let Some(line) = okta_error_line(&answer).filter(|_| status >= 400) {
            let hint = match answer["errorCode"].as_str() {
                Some("E0000004") => "; check the username and AGE_OAUTH_PASSWORD (the account may also be locked)",
                Some("E0000047") => "; Okta still limits the rate: try again in a minute",
                _ => "",
            };
            return Err(Error::server(format!("Okta refused the sign-in of {}: {line}{hint}", sign_in.username)));
        }
        // PASSWORD_WARN can be skipped; every other state ends here or in MFA.
        if answer["status"] == "PASSWORD_WARN" {
            let skip = answer["_links"]["skip"]["href"].as_str().unwrap_or_default().to_string();
            let state = json!({"stateToken": answer["stateToken"]});
            answer = self.expect_ok(cx, &skip, &state, sign_in.device_token)?;
        }
        match answer["status"].as_str().unwrap_or_default() {
            "SUCCESS" => session_token(&answer),
            "MFA_REQUIRED" => {
                let result = self.verify_mfa(cx, sign_in, &answer);
                if result.is_err() {
                    self.cancel(cx, &answer, sign_in.device_token);
                }
                result
            }
            other => Err(state_error(other, &self.url)),
        }
    }

    fn expect_ok(&self, cx: &mut FlowContext<'_>, url: &str, body: &Value, device: &Secret) -> Result<Value> {
        let (status, answer) = self.post(cx, url, body, device)?;
        if status >= 400 {
            let line = okta_error_line(&answer).unwrap_or_else(|| format!("HTTP {status}"));
            return Err(Error::server(format!("Okta: {line}")));
        }
        Ok(answer)
    }

    /// Best effort: ends the transaction so its state token cannot be used any more.
    fn cancel(&self, cx: &mut FlowContext<'_>, answer: &Value, device: &Secret) {
        if let Some(token) = answer["stateToken"].as_str() {
            let _ = self.post(cx, &self.api("/api/v1/authn/cancel"), &json!({"stateToken": token}), device);
        }
    }

    fn verify_mfa(&self, cx: &mut FlowContext<'_>, sign_in: &SignIn<'_>, answer: &Value) -> Result<Secret> {
        let factor = choose_factor(cx, &factors_of(answer), sign_in.mfa)?;
        let Some(href) = factor["_links"]["verify"]["href"].as_str() else {
            return Err(Error::server("Okta listed a factor without a verify link"));
        };
        let remember = if sign_in.remember_device { "true" } else { "false" };
        let joiner = if href.contains('?') { '&' } else { '?' };
        let verify_url = if href.contains("rememberDevice=") {
            href.to_string()
        } else {
            format!("{href}{joiner}rememberDevice={remember}")
        };
        let state_token = answer["stateToken"].as_str().unwrap_or_default();
        match kind_of(&factor) {
            Some(Kind::Push) => self.push(cx, sign_in, &verify_url, state_token),
            Some(Kind::Totp) => {
                self.pass_code(cx, sign_in, &verify_url, state_token, "Okta Verify / authenticator code: ")
            }
            Some(Kind::Sms) => {
                let sent =
                    self.expect_ok(cx, &verify_url, &json!({"stateToken": state_token}), sign_in.device_token)?;
                let phone = sent["_embedded"]["factor"]["profile"]["phoneNumber"].as_str().unwrap_or("your phone");
                cx.ui.info(&format!("Okta sent a code by SMS to {phone}."));
                let next = sent["_links"]["next"]["href"].as_str().map_or_else(|| verify_url.clone(), str::to_string);
                self.pass_code(cx, sign_in, &next, state_token, "Code from the SMS: ")
            }
            None => Err(Error::server(format!("cannot verify the Okta factor {}", describe_factor(&factor)))),
        }
    }

    /// Sends a push and polls `_links.next` until the person answers, Okta gives up, or `mfa_timeout` passes.
    fn push(&self, cx: &mut FlowContext<'_>, sign_in: &SignIn<'_>, url: &str, state_token: &str) -> Result<Secret> {
        let body = json!({"stateToken": state_token});
        let deadline = cx.now().saturating_add(sign_in.mfa_timeout);
        let mut answer = self.expect_ok(cx, url, &body, sign_in.device_token)?;
        cx.ui.info("Waiting for Okta Verify push... (Ctrl-C to cancel)");
        let mut shown_number = false;
        loop {
            if answer["status"] == "SUCCESS" {
                return session_token(&answer);
            }
            if let Some(number) = answer["_embedded"]["factor"]["_embedded"]["challenge"]["correctAnswer"].as_u64() {
                if !shown_number {
                    cx.ui.info(&format!("Okta Verify asks for a number: tap {number} on your phone."));
                    shown_number = true;
                }
            }
            match answer["factorResult"].as_str().unwrap_or_default() {
                "WAITING" => {}
                "REJECTED" => return Err(Error::server("the Okta Verify push was rejected on the phone")),
                "TIMEOUT" => {
                    return Err(Error::server("the Okta Verify push timed out unanswered: run `age-oauth login` again"))
                }
                other => return Err(Error::server(format!("the Okta Verify push ended with {other:?}"))),
            }
            let now = cx.now();
            if now >= deadline {
                return Err(Error::server(format!(
                    "no answer to the Okta Verify push within {} s (mfa_timeout)",
                    sign_in.mfa_timeout
                )));
            }
            cx.clock.sleep((deadline - now).clamp(MIN_POLL_SECS, PUSH_POLL_SECS));
            let next = answer["_links"]["next"]["href"].as_str().map_or_else(|| url.to_string(), str::to_string);
            answer = self.expect_ok(cx, &next, &body, sign_in.device_token)?;
        }
    }

    /// Verifies a one-time code: AGE_OAUTH_MFA_CODE first, then (with someone to type) up to three typed codes.
    fn pass_code(
        &self,
        cx: &mut FlowContext<'_>,
        sign_in: &SignIn<'_>,
        url: &str,
        state_token: &str,
        prompt: &str,
    ) -> Result<Secret> {
        let mut given = cx.secrets.get("mfa_code").cloned();
        for attempt in 0..CODE_ATTEMPTS {
            let code = match given.take() {
                Some(code) => code,
                None => match cx.ui.read_line(prompt)? {
                    Some(line) if !line.trim().is_empty() => Secret::new(line.trim()),
                    _ if attempt == 0 => {
                        return Err(Error::Config(format!(
                        "profile '{}': Okta asks for a one-time code: set AGE_OAUTH_MFA_CODE, or sign in at a terminal",
                        cx.profile
                    )))
                    }
                    _ => break,
                },
            };
            let body = json!({"stateToken": state_token, "passCode": code.expose()});
            let (status, answer) = self.post(cx, url, &body, sign_in.device_token)?;
            if status == 403 && answer["errorCode"] == "E0000068" {
                cx.ui.warn("Okta: that code is not right (E0000068); type the current one");
                continue;
            }
            if status >= 400 {
                let line = okta_error_line(&answer).unwrap_or_else(|| format!("HTTP {status}"));
                return Err(Error::server(format!("Okta: {line}")));
            }
            return session_token(&answer);
        }
        Err(Error::server("Okta refused the one-time code (E0000068: Invalid Passcode/Answer)"))
    }

    /// Trades the single-use session token for an Okta session at `redirect_url` (on the org):
    /// `GET /login/sessionCookieRedirect` → 302 with `Set-Cookie: sid`. Returns the `sid` value.
    pub fn session_cookie(
        &self,
        cx: &mut FlowContext<'_>,
        session_token: &Secret,
        redirect_url: &str,
    ) -> Result<Secret> {
        self.check_own(redirect_url)?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("checkAccountSetupComplete", "true")
            .append_pair("token", session_token.expose())
            .append_pair("redirectUrl", redirect_url)
            .finish();
        let response = cx.send(&HttpRequest::get(format!("{}?{query}", self.api("/login/sessionCookieRedirect"))))?;
        let sid = cookie_value(&response, "sid");
        match sid {
            Some(sid) if (300..400).contains(&response.status) => Ok(sid),
            _ => Err(Error::server(format!(
                "Okta did not open a session from the session token (HTTP {}{})",
                response.status,
                page_error(&response).map(|e| format!(": {e}")).unwrap_or_default()
            ))),
        }
    }
}

/// The factors of an `MFA_REQUIRED` answer: `_embedded.factors` (what Okta sends), or the single
/// `_embedded.factor` that Okta's documentation has shown since 2025.
fn factors_of(answer: &Value) -> Vec<Value> {
    let embedded = &answer["_embedded"];
    match (&embedded["factors"], &embedded["factor"]) {
        (Value::Array(all), _) => all.clone(),
        (_, one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl OktaOrg {
    /// Ends the Okta session `sid` (`DELETE /api/v1/sessions/me`); best effort: the line to show.
    pub fn end_session(&self, cx: &mut FlowContext<'_>, sid: &Secret) -> String {
        let request = HttpRequest {
            method: Method::Other("DELETE".into()),
            url: self.api("/api/v1/sessions/me"),
            headers: vec![
                ("Accept".into(), "application/json".into()),
                ("Cookie".into(), format!("sid={}", sid.expose())),
            ],
            body: None,
        };
        match cx.send(&request) {
            Ok(r) if (200..300).contains(&r.status) => "The Okta session was signed out.".into(),
            Ok(r) if r.status == 404 => "The Okta session had already ended.".into(),
            Ok(r) => format!("Okta did not sign the session out (HTTP {}).", r.status),
            Err(e) => format!("Okta could not be reached to sign the session out ({e})."),
        }
    }
}

/// Seconds until `X-Rate-Limit-Reset` (epoch seconds), at least 1 and at most `MAX_RATE_LIMIT_WAIT`.
fn rate_limit_wait(response: &HttpResponse, now: u64) -> u64 {
    response
        .header("X-Rate-Limit-Reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(MAX_RATE_LIMIT_WAIT, |reset| reset.saturating_sub(now))
        .clamp(1, MAX_RATE_LIMIT_WAIT)
}

fn session_token(answer: &Value) -> Result<Secret> {
    match answer["sessionToken"].as_str() {
        Some(t) if answer["status"] == "SUCCESS" && !t.is_empty() => Ok(Secret::new(t)),
        _ => Err(Error::server("Okta answered SUCCESS without a session token")),
    }
}

/// The one-line error for a transaction state that needs a browser.
fn state_error(status: &str, org: &str) -> Error {
    let what = match status {
        "LOCKED_OUT" => "the Okta account is locked: unlock it (or ask your Okta admin) in a browser",
        "PASSWORD_EXPIRED" => "the Okta password has expired: change it in a browser, then sign in again",
        "MFA_ENROLL" | "MFA_ENROLL_ACTIVATE" => "Okta wants a factor enrolled first: enroll Okta Verify in a browser",
        "" => "Okta's answer has no transaction state",
        _ => "Okta asked for a step this tool cannot do: sign in once in a browser",
    };
    let shown = if status.is_empty() { String::new() } else { format!(" ({status})") };
    Error::server(format!("{what}{shown}; Okta sign-in page: {org}"))
}

fn choose_factor(cx: &mut FlowContext<'_>, factors: &[Value], choice: MfaChoice) -> Result<Value> {
    let usable: Vec<&Value> = factors.iter().filter(|f| kind_of(f).is_some()).collect();
    let enrolled = || factors.iter().map(describe_factor).collect::<Vec<_>>().join(", ");
    let want = match choice {
        MfaChoice::Push => Some(Kind::Push),
        MfaChoice::Totp => Some(Kind::Totp),
        MfaChoice::Sms => Some(Kind::Sms),
        MfaChoice::Any => None,
    };
    if let Some(kind) = want {
        return usable.iter().find(|f| kind_of(f) == Some(kind)).map(|f| (*f).clone()).ok_or_else(|| {
            Error::Config(format!(
                "profile '{}': mfa = \"{}\" but that factor is not enrolled in Okta (enrolled: {}); set mfa to one of them",
                cx.profile,
                format!("{kind:?}").to_ascii_lowercase(),
                enrolled()
            ))
        });
    }
    if let Some(push) = usable.iter().find(|f| kind_of(f) == Some(Kind::Push)) {
        return Ok((*push).clone());
    }
    match usable.as_slice() {
        [] => Err(Error::server(format!(
            "none of the enrolled Okta factors ({}) can be used from a terminal: enroll Okta Verify or a TOTP app",
            enrolled()
        ))),
        [one] => Ok((*one).clone()),
        several if cx.ui.can_prompt() => {
            let list: Vec<String> =
                several.iter().enumerate().map(|(i, f)| format!("  {}. {}", i + 1, describe_factor(f))).collect();
            cx.ui.info(&format!("Okta factors:\n{}", list.join("\n")));
            let picked = cx.ui.read_line("Factor number: ")?.and_then(|l| l.trim().parse::<usize>().ok());
            match picked.and_then(|n| n.checked_sub(1)).and_then(|i| several.get(i)) {
                Some(f) => Ok((*f).clone()),
                None => Err(Error::Config("no factor was chosen".into())),
            }
        }
        [first, ..] => Ok((*first).clone()),
    }
}

/// The value of cookie `name` from the response's `Set-Cookie` headers.
pub fn cookie_value(response: &HttpResponse, name: &str) -> Option<Secret> {
    response.header_values("Set-Cookie").find_map(|line| {
        let pair = line.split(';').next()?.trim();
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name && !v.trim().is_empty()).then(|| Secret::new(v.trim()))
    })
}

/// The text of an Okta error page (`.error-content`) or its title, for messages.
pub fn page_error(response: &HttpResponse) -> Option<String> {
    if !response.looks_like_html() {
        return None;
    }
    let text = String::from_utf8_lossy(&response.body);
    let start = text.find("error-content")?;
    let tail = &text[start..];
    let p = tail.find("<p>")? + 3;
    let end = tail[p..].find('<')? + p;
    Some(tail[p..end].trim().to_string()).filter(|t| !t.is_empty()).or_else(|| response.html_title())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_objects_become_one_line() {
        let body = json!({"errorCode": "E0000068", "errorSummary": "Invalid Passcode/Answer", "errorCauses": [{"errorSummary": "Your passcode doesn't match our records."}]});
        assert_eq!(
            okta_error_line(&body).unwrap(),
            "Invalid Passcode/Answer (E0000068): Your passcode doesn't match our records."
        );
        assert!(okta_error_line(&json!({"status": "SUCCESS"})).is_none());
    }

    /// Status and body of one scripted answer.
    type Answer = (u16, Value);

    /// Answers from a script, in order; records the URLs asked.
    struct Scripted(std::sync::Mutex<(Vec<Answer>, Vec<String>)>);

    impl crate::http::HttpClient for Scripted {
        fn send(&self, request: &HttpRequest) -> Result<HttpResponse> {
            let mut state = self.0.lock().unwrap();
            state.1.push(request.url.clone());
            let (status, body) = if state.0.is_empty() { (500, json!({})) } else { state.0.remove(0) };
            Ok(HttpResponse { status, headers: vec![], body: body.to_string().into_bytes() })
        }
    }

    /// Runs `authenticate` against scripted answers with a manual clock; returns the result, the URLs and the clock.
    fn run(answers: Vec<(u16, Value)>, mfa: MfaChoice, code: Option<&str>) -> (Result<Secret>, Vec<String>, u64) {
        let http = Scripted(std::sync::Mutex::new((answers, Vec::new())));
        let clock = crate::clock::ManualClock::new(1_000);
        let mut ui = crate::interact::Terminal::new(0, &crate::env::Env::default());
        let mut secrets = crate::registry::Secrets::default();
        if let Some(code) = code {
            secrets.set("mfa_code", Secret::new(code), crate::registry::SecretOrigin::Env("AGE_OAUTH_MFA_CODE".into()));
        }
        let mut cx =
            FlowContext { profile: "p", http: &http, clock: &clock, ui: &mut ui, secrets: &secrets, no_browser: true };
        let (password, device) = (Secret::new("pw"), Secret::new("dt"));
        let sign_in = SignIn {
            username: "u",
            password: &password,
            mfa,
            mfa_timeout: 60,
            remember_device: true,
            device_token: &device,
        };
        let result = OktaOrg { url: "https://org.example".into() }.authenticate(&mut cx, &sign_in);
        let urls = http.0.lock().unwrap().1.clone();
        (result, urls, crate::clock::Clock::now(&clock))
    }

    fn factor(kind: &str) -> Value {
        json!({"id": "f1", "factorType": kind, "provider": "OKTA", "_links": {"verify": {"href": "https://org.example/api/v1/authn/factors/f1/verify"}}})
    }

    #[test]
    fn a_singular_factor_and_an_expired_state_token_e0000011() {
        let answers = vec![
            (
                200,
                json!({"status": "MFA_REQUIRED", "stateToken": "st", "_embedded": {"factor": factor("token:software:totp")}}),
            ),
            (401, json!({"errorCode": "E0000011", "errorSummary": "Invalid token provided"})),
        ];
        let (result, urls, _) = run(answers, MfaChoice::Any, Some("123456"));
        assert_eq!(result.unwrap_err().to_string(), "Okta: Invalid token provided (E0000011)");
        assert_eq!(urls[1], "https://org.example/api/v1/authn/factors/f1/verify?rememberDevice=true");
        assert!(urls[2].ends_with("/api/v1/authn/cancel"), "the failed transaction is cancelled: {urls:?}");
    }

    #[test]
    fn push_polls_every_4_s_follows_next_and_reports_e0000079() {
        let waiting = |next: &str| {
            json!({"status": "MFA_CHALLENGE", "factorResult": "WAITING", "stateToken": "st",
                   "_links": {"next": {"name": "poll", "href": format!("https://org.example/{next}")}}})
        };
        let answers = vec![
            (
                200,
                json!({"status": "MFA_REQUIRED", "stateToken": "st", "_embedded": {"factors": [factor("sms"), factor("push")]}}),
            ),
            (200, waiting("poll-1")),
            (200, waiting("poll-2")),
            (
                403,
                json!({"errorCode": "E0000079", "errorSummary": "This operation is not allowed in the current authentication state."}),
            ),
        ];
        let (result, urls, now) = run(answers, MfaChoice::Any, None);
        assert!(result.unwrap_err().to_string().contains("(E0000079)"));
        assert_eq!(&urls[2..4], ["https://org.example/poll-1", "https://org.example/poll-2"], "{urls:?}");
        assert_eq!(now, 1_000 + 2 * PUSH_POLL_SECS, "two waits of 4 s");
        // A push to an org other than the profile's is never followed.
        let answers = vec![
            (200, json!({"status": "MFA_REQUIRED", "stateToken": "st", "_embedded": {"factors": [factor("push")]}})),
            (
                200,
                json!({"status": "MFA_CHALLENGE", "factorResult": "WAITING", "_links": {"next": {"href": "https://evil.example/poll"}}}),
            ),
        ];
        let (result, urls, _) = run(answers, MfaChoice::Push, None);
        assert!(result.unwrap_err().to_string().contains("not the org"), "{urls:?}");
        assert!(urls.iter().all(|u| u.starts_with("https://org.example/")), "{urls:?}");
    }

    #[test]
    fn factors_come_as_a_list_or_as_one() {
        let push = json!({"id": "opf1", "factorType": "push"});
        let plural = json!({"_embedded": {"factors": [push.clone(), {"factorType": "sms"}]}});
        assert_eq!(factors_of(&plural).len(), 2);
        let singular = json!({"_embedded": {"factor": push}});
        assert_eq!(factors_of(&singular)[0]["id"], "opf1");
        assert!(factors_of(&json!({})).is_empty());
    }

    #[test]
    fn rate_limit_wait_is_bounded() {
        let response = |reset: &str| HttpResponse {
            status: 429,
            headers: vec![("X-Rate-Limit-Reset".into(), reset.into())],
            body: Vec::new(),
        };
        assert_eq!(rate_limit_wait(&response("1005"), 1000), 5);
        assert_eq!(rate_limit_wait(&response("999"), 1000), 1);
        assert_eq!(rate_limit_wait(&response("99999"), 1000), MAX_RATE_LIMIT_WAIT);
        assert_eq!(rate_limit_wait(&response("soon"), 1000), MAX_RATE_LIMIT_WAIT);
    }

    #[test]
    fn states_that_need_a_browser_say_so() {
        for (state, needle) in [
            ("LOCKED_OUT", "locked"),
            ("PASSWORD_EXPIRED", "expired"),
            ("MFA_ENROLL", "enroll"),
            ("RECOVERY", "browser"),
        ] {
            assert!(state_error(state, "https://org").to_string().contains(needle), "{state}");
        }
    }

    #[test]
    fn cookies_are_read_from_set_cookie() {
        let response = HttpResponse {
            status: 302,
            headers: vec![
                ("Set-Cookie".into(), "JSESSIONID=x; Path=/".into()),
                ("set-cookie".into(), "sid=abc; Path=/; HttpOnly".into()),
            ],
            body: Vec::new(),
        };
        assert_eq!(cookie_value(&response, "sid").unwrap().expose(), "abc");
        assert!(cookie_value(&response, "DT").is_none());
    }
}
