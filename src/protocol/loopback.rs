//! The RFC 8252 loopback redirect: a one-shot listener on 127.0.0.1 that receives the authorization
//! response, checks `state` (and `iss`, RFC 9207), and the `--no-browser` paste of the redirected URL.

use crate::error::{Error, Result};
use crate::secret::Secret;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a sign-in may take when the profile does not say (`login_timeout`).
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// What the authorization response must carry to be ours.
pub struct Expected<'a> {
    /// The profile signing in (for messages).
    pub profile: &'a str,
    /// The `state` the redirect must carry back.
    pub state: &'a str,
    /// The issuer the response's `iss` must equal when it has one (RFC 9207).
    pub issuer: Option<&'a str>,
}

/// A valid authorization response.
#[derive(Debug)]
pub struct Callback {
    /// The authorization code.
    pub code: Secret,
}

/// What one request to the redirect URI turned out to be.
enum Verdict {
    /// Not a response to this sign-in (wrong path, wrong or missing `state`): keep waiting.
    Stray(String),
    Done(Result<Callback>),
}

/// A bound listener: its redirect URI is fixed from the moment it exists.
pub struct Listener {
    server: Arc<tiny_http::Server>,
    redirect_uri: String,
    path: String,
}

impl Listener {
    /// Binds 127.0.0.1 on `port` (0 or `None`: a free one the kernel picks) for redirects to `path`.
    pub fn bind(profile: &str, port: Option<u16>, path: &str) -> Result<Listener> {
        let port = port.unwrap_or(0);
        let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| {
            Error::Config(format!(
                "profile '{profile}': cannot listen on 127.0.0.1:{port} for the sign-in redirect ({e}); \
                 {}",
                if port == 0 {
                    "is loopback networking available?"
                } else {
                    "free that port or change `redirect_port`"
                }
            ))
        })?;
        let bound = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(port);
        let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        Ok(Listener { server: Arc::new(server), redirect_uri: format!("http://127.0.0.1:{bound}{path}"), path })
    }

    /// The redirect URI to register with the authorization request.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits for the one valid callback. Strays get an error page and are otherwise ignored;
    /// a valid `state` with an `error` (or a wrong `iss`) ends the wait with that error.
    pub fn wait(&self, expected: &Expected<'_>, timeout: Duration, on_stray: impl FnMut(&str)) -> Result<Callback> {
        self.wait_until(expected, Instant::now() + timeout, timeout, &AtomicBool::new(false), on_stray)
    }

    /// `wait`, giving up quietly (a login-required error) once `stop` is set.
    fn wait_until(
        &self,
        expected: &Expected<'_>,
        deadline: Instant,
        timeout: Duration,
        stop: &AtomicBool,
        mut on_stray: impl FnMut(&str),
    ) -> Result<Callback> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stop.load(Ordering::SeqCst) {
                return Err(Error::login_required(
                    expected.profile,
                    format!(
                        "profile '{}': no answer from the browser within {} s (the sign-in was not completed; \
                         `login_timeout` sets the limit, `--no-browser` lets you paste the redirected URL instead)",
                        expected.profile,
                        timeout.as_secs()
                    ),
                ));
            }
            let request = match self.server.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => return Err(Error::io("the sign-in listener failed", e)),
            };
            let url = request.url().to_string();
            let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
            let verdict = if path != self.path {
                Verdict::Stray(format!("a request for {path}, not the redirect path"))
            } else {
                judge(query, expected)
            };
            match verdict {
                Verdict::Stray(why) => {
                    on_stray(&why);
                    respond(request, 400, "Not this sign-in", &format!("This is not the answer age-oauth is waiting for ({why}). Finish the sign-in in the tab age-oauth opened."));
                }
                Verdict::Done(Ok(callback)) => {
                    respond(request, 200, "Signed in", "Signed in. You can close this tab and return to the terminal.");
                    return Ok(callback);
                }
                Verdict::Done(Err(e)) => {
                    respond(request, 400, "Sign-in failed", &format!("Sign-in failed: {e}. See the terminal."));
                    return Err(e);
                }
            }
        }
    }

    /// Serves the redirect URI on a thread until a callback (or an error, or the timeout) ends
    /// the wait, or the returned race is dropped.
    fn wait_in_background(&self, expected: &Expected<'_>, timeout: Duration) -> BackgroundWait {
        let listener =
            Listener { server: self.server.clone(), redirect_uri: self.redirect_uri.clone(), path: self.path.clone() };
        let (profile, state) = (expected.profile.to_string(), expected.state.to_string());
        let issuer = expected.issuer.map(String::from);
        let result: Arc<Mutex<Option<Result<Callback>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (slot, stopping) = (result.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let expected = Expected { profile: &profile, state: &state, issuer: issuer.as_deref() };
            let outcome = listener.wait_until(&expected, Instant::now() + timeout, timeout, &stopping, |_| {});
            *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
        });
        BackgroundWait { result, stop, thread: Some(thread) }
    }
}

/// The listener waiting on its own thread while the terminal waits for a paste.
struct BackgroundWait {
    result: Arc<Mutex<Option<Result<Callback>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundWait {
    fn finished(&self) -> bool {
        self.result.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// What the listener ended with (waiting for it to end).
    fn outcome(mut self) -> Result<Callback> {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let taken = self.result.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        taken.unwrap_or_else(|| Err(Error::server("the sign-in listener stopped without an answer")))
    }
}

impl Drop for BackgroundWait {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads an authorization response's query string.
fn judge(query: &str, expected: &Expected<'_>) -> Verdict {
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match get("state") {
        None => return Verdict::Stray("the answer has no `state`".into()),
        Some(s) if s != expected.state => {
            return Verdict::Stray("the answer's `state` belongs to another sign-in".into())
        }
        Some(_) => {}
    }
    if let (Some(iss), Some(issuer)) = (get("iss"), expected.issuer) {
        if iss.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Verdict::Done(Err(Error::server(format!(
                "the authorization response comes from issuer {iss}, not {issuer} (RFC 9207 mix-up defence); sign-in aborted"
            ))));
        }
    }
    if let Some(error) = get("error") {
        let description = get("error_description").map(|d| format!(": {d}")).unwrap_or_default();
        let e = format!("the authorization server refused the sign-in ({error}{description})");
        return Verdict::Done(Err(if error == "access_denied" {
            Error::login_required(expected.profile, e)
        } else {
            Error::server(e)
        }));
    }
    match get("code").filter(|c| !c.is_empty()) {
        Some(code) => Verdict::Done(Ok(Callback { code: Secret::new(code) })),
        None => Verdict::Done(Err(Error::server("the authorization response has neither `code` nor `error`"))),
    }
}

/// Reads what a person pasted for `--no-browser`: the full redirected URL (checked like a
/// callback) or the bare code (nothing to check it against).
pub fn parse_pasted(pasted: &str, expected: &Expected<'_>) -> Result<Callback> {
    let text = pasted.trim();
    if text.is_empty() {
        return Err(Error::login_required(
            expected.profile,
            "nothing was pasted (expected the redirected URL or the code)",
        ));
    }
    match text.split_once('?') {
        Some((_, query)) => match judge(query.split('#').next().unwrap_or_default(), expected) {
            Verdict::Done(result) => result,
            Verdict::Stray(why) => Err(Error::login_required(
                expected.profile,
                format!("the pasted URL is not the answer to this sign-in: {why}"),
            )),
        },
        None if text.contains(char::is_whitespace) || text.contains('/') => {
            Err(Error::login_required(expected.profile, "the pasted text is neither the redirected URL nor a code"))
        }
        None => Ok(Callback { code: Secret::new(text) }),
    }
}

fn respond(request: tiny_http::Request, status: u16, title: &str, message: &str) {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>age-oauth: {title}</title></head>\
         <body><h1>{title}</h1><p>{}</p></body></html>",
        message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    );
    let mut response = tiny_http::Response::from_string(html).with_status_code(status);
    for (k, v) in [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")] {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    // The browser may have gone away; nothing useful to do about it.
    let _ = request.respond(response);
}

/// Runs the user-facing part of a browser sign-in: opens (or prints) `url`, then returns the
/// callback from the listener, or what is pasted.
///
/// With a browser, only the listener counts (stdin is left alone, so a script's stdin is never
/// swallowed). With `--no-browser`, or a browser that failed to start while a person is at the
/// terminal, whichever comes first wins: the browser reaching the listener (it gets the normal
/// success page) or the redirected URL / code pasted into the terminal. An empty stdin (end of
/// input) leaves the listener waiting until the timeout.
pub fn obtain_code(
    cx: &mut crate::registry::FlowContext<'_>,
    listener: &Listener,
    url: &str,
    expected: &Expected<'_>,
    timeout: Duration,
) -> Result<Callback> {
    let mut paste = cx.no_browser;
    if !paste {
        cx.ui.info(&format!("Opening a browser to sign in. If none opens, open this URL yourself:\n  {url}"));
        if let Err(why) = cx.ui.open_browser(url) {
            // Someone at a terminal can still finish with a browser elsewhere.
            paste = cx.ui.can_prompt();
            let next =
                if paste { "open the URL above yourself" } else { "open the URL above yourself, or use --no-browser" };
            cx.ui.warn(&format!("could not open a browser ({why}); {next}"));
        }
    }
    if paste {
        cx.ui.info(&format!(
            "Open this URL in a browser and sign in:\n  {url}\nA browser on this machine comes back to {} by itself; \
             from another machine, copy the whole address it ends on (it may show an error page) and paste it here.",
            listener.redirect_uri()
        ));
        let waiting = listener.wait_in_background(expected, timeout);
        let pasted = cx.ui.read_line_or("Redirected URL or code: ", &|| waiting.finished())?;
        if waiting.finished() {
            return waiting.outcome();
        }
        return match pasted {
            Some(text) => {
                drop(waiting);
                parse_pasted(&text, expected)
            }
            None => waiting.outcome(), // end of input: the browser may still come back
        };
    }
    cx.ui.info(&format!(
        "Waiting up to {} s for the browser to come back to {}",
        timeout.as_secs(),
        listener.redirect_uri()
    ));
    let ui = &mut *cx.ui;
    listener.wait(expected, timeout, |why| ui.warn(&format!("ignored a request to the sign-in listener: {why}")))
}

/// The callback path of a loopback redirect by default.
pub fn default_redirect_path() -> String {
    "/callback".into()
}

/// How long a browser sign-in may take by default.
pub fn default_login_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected<'static> {
        Expected { profile: "p", state: "s1", issuer: Some("http://127.0.0.1:9/") }
    }

    #[test]
    fn pasted_urls_and_codes() {
        let ok =
            parse_pasted("http://127.0.0.1:5/callback?code=c1&state=s1&iss=http%3A%2F%2F127.0.0.1%3A9", &expected());
        assert_eq!(ok.unwrap().code.expose(), "c1");
        assert_eq!(parse_pasted(" c2 \n", &expected()).unwrap().code.expose(), "c2");
        let wrong_state = parse_pasted("http://127.0.0.1:5/callback?code=c1&state=other", &expected()).unwrap_err();
        assert!(wrong_state.to_string().contains("another sign-in"), "{wrong_state}");
        let mixup = parse_pasted("http://x/cb?code=c&state=s1&iss=https://evil.test", &expected()).unwrap_err();
        assert!(mixup.to_string().contains("mix-up"), "{mixup}");
        let denied = parse_pasted("http://x/cb?error=access_denied&state=s1", &expected()).unwrap_err();
        assert_eq!(denied.exit_code(), 3);
        assert!(parse_pasted("", &expected()).is_err());
        assert!(parse_pasted("two words", &expected()).is_err());
    }

    #[test]
    fn listener_ignores_strays_then_takes_the_valid_callback() {
        let listener = Listener::bind("p", None, "/callback").unwrap();
        let uri = listener.redirect_uri().to_string();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"), "{uri}");
        let browser = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let status = |url: String| agent.get(&url).call().unwrap().status().as_u16();
            let base = uri.trim_end_matches("/callback").to_string();
            vec![
                status(format!("{base}/favicon.ico")),
                status(format!("{uri}?code=evil&state=wrong")),
                status(format!("{uri}?code=evil")),
                status(format!("{uri}?code=good&state=s1")),
            ]
        });
        let mut strays = Vec::new();
        let got = listener.wait(&expected(), Duration::from_secs(30), |why| strays.push(why.to_string())).unwrap();
        assert_eq!(got.code.expose(), "good");
        assert_eq!(browser.join().unwrap(), [400, 400, 400, 200]);
        assert_eq!(strays.len(), 3, "{strays:?}");
    }

    #[test]
    fn listener_times_out_naming_the_profile() {
        let listener = Listener::bind("slow", None, "/cb").unwrap();
        let e = listener
            .wait(&Expected { profile: "slow", state: "s", issuer: None }, Duration::from_millis(50), |_| {})
            .unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("profile 'slow'") && e.to_string().contains("login --profile slow"), "{e}");
    }
}
