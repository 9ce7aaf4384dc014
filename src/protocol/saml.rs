//! The browser's part of SAML Web SSO, done without a browser: reading an IdP's HTML (with html5gum, a
//! WHATWG tokenizer: entity-escaped `action`s as Okta writes them, attributes in any quoting), telling its
//! pages apart (the auto-submitting SAMLResponse form, intermediate forms, a sign-in form, a step-up or
//! sign-in page, an error), and posting the assertion only to the ACS the profile expects.

use crate::error::{Error, Result};
use crate::secret::Secret;
use html5gum::{Token, Tokenizer};

/// One `<form>` and its named `<input>`s (values kept as secrets: one may be the SAMLResponse).
#[derive(Debug, Clone, Default)]
pub struct HtmlForm {
    /// The `action` attribute, entities decoded, as written (maybe relative).
    pub action: String,
    /// `get` or `post` (lowercase; `get` when absent).
    pub method: String,
    /// Inputs with a name, in order: (name, type, value).
    pub inputs: Vec<(String, String, Secret)>,
}

impl HtmlForm {
    /// The value of the first input named `name`.
    pub fn value(&self, name: &str) -> Option<&Secret> {
        self.inputs.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| v)
    }

    /// The name of the first input of type `kind` (`password`, `text`, `email`).
    pub fn input_of_type(&self, kind: &str) -> Option<&str> {
        self.inputs.iter().find(|(_, t, _)| t == kind).map(|(n, _, _)| n.as_str())
    }
}

/// What an IdP page is.
#[derive(Debug)]
pub enum IdpPage {
    /// The auto-submitting form that carries the assertion to the SP.
    Assertion(HtmlForm),
    /// Another auto-submitting SAML form (a `SAMLRequest`, or `RelayState` only): submit it.
    Intermediate(HtmlForm),
    /// A sign-in form with a password field.
    SignInForm(HtmlForm),
    /// Okta's sign-in widget or step-up page (a `stateToken` in its script): a browser is needed.
    StepUp,
    /// Something else; the text is for the error message (an error box or the title).
    Other(String),
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every form of an HTML page (inputs outside a form are ignored).
pub fn forms(html: &str) -> Vec<HtmlForm> {
    let mut emitter = html5gum::emitters::default::DefaultEmitter::default();
    // `<script>` / `<textarea>` contents are text, not tags, as a browser reads them.
    emitter.naively_switch_states(true);
    let mut found: Vec<HtmlForm> = Vec::new();
    let mut open = false;
    for Ok(token) in Tokenizer::new_with_emitter(html, emitter) {
        match token {
            Token::StartTag(tag) => {
                let attr = |name: &str| tag.attributes.get(name.as_bytes()).map(|v| text_of(&v.value));
                match tag.name.as_slice() {
                    b"form" => {
                        let method = attr("method").unwrap_or_else(|| "get".into()).to_ascii_lowercase();
                        found.push(HtmlForm { action: attr("action").unwrap_or_default(), method, inputs: Vec::new() });
                        open = true;
                    }
                    b"input" | b"button" if open => {
                        if let (Some(form), Some(name)) = (found.last_mut(), attr("name")) {
                            let kind = attr("type").unwrap_or_else(|| "text".into()).to_ascii_lowercase();
                            form.inputs.push((name, kind, Secret::new(attr("value").unwrap_or_default())));
                        }
                    }
                    _ => {}
                }
            }
            Token::EndTag(tag) if tag.name.as_slice() == b"form" => open = false,
            _ => {}
        }
    }
    found
}

/// Classifies a page an IdP answered with.
pub fn classify(html: &str) -> IdpPage {
    let all = forms(html);
    if let Some(form) = all.iter().find(|f| f.value("SAMLResponse").is_some()) {
        return IdpPage::Assertion(form.clone());
    }
    if let Some(form) = all.iter().find(|f| f.value("SAMLRequest").is_some()) {
        return IdpPage::Intermediate(form.clone());
    }
    if let Some(form) = all.iter().find(|f| f.input_of_type("password").is_some()) {
        return IdpPage::SignInForm(form.clone());
    }
    if let Some(form) = all.iter().find(|f| f.inputs.len() == 1 && f.value("RelayState").is_some()) {
        return IdpPage::Intermediate(form.clone());
    }
    if html.contains("var stateToken") || html.contains("\"stateToken\"") || html.contains("/login/step-up/") {
        return IdpPage::StepUp;
    }
    IdpPage::Other(page_text(html))
}

/// A short text for error messages: an element with an error class, else the title.
fn page_text(html: &str) -> String {
    let mut title = String::new();
    let mut in_title = false;
    let mut error_depth: Option<String> = None;
    for Ok(token) in Tokenizer::new(html) {
        match token {
            Token::StartTag(tag) => {
                in_title = tag.name.as_slice() == b"title";
                let class = tag.attributes.get(b"class".as_slice()).map(|v| text_of(&v.value)).unwrap_or_default();
                if error_depth.is_none() && class.split_whitespace().any(|c| c.contains("error")) {
                    error_depth = Some(String::new());
                }
            }
            Token::String(text) => {
                let text = text_of(&text.value);
                if in_title {
                    title.push_str(&text);
                }
                if let Some(acc) = error_depth.as_mut() {
                    acc.push_str(&text);
                    acc.push(' ');
                }
            }
            Token::EndTag(tag) => {
                in_title = false;
                if tag.name.as_slice() == b"div" && error_depth.as_ref().is_some_and(|t| !t.trim().is_empty()) {
                    break;
                }
            }
            _ => {}
        }
    }
    let text = error_depth.filter(|t| !t.trim().is_empty()).unwrap_or(title);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        "a page without a form".into()
    } else {
        text.chars().take(200).collect()
    }
}

/// `action` resolved against the page's URL (absolute, scheme-relative, absolute path, query, relative path).
pub fn resolve(page_url: &str, action: &str) -> String {
    let action = action.trim();
    if action.contains("://") {
        return action.to_string();
    }
    let (scheme, rest) = page_url.split_once("://").unwrap_or(("https", page_url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let origin = format!("{scheme}://{}", &rest[..authority_end]);
    let path_and_query = &rest[authority_end..];
    let path = path_and_query.split(['?', '#']).next().unwrap_or("");
    match action {
        "" => page_url.split('#').next().unwrap_or(page_url).to_string(),
        a if a.starts_with("//") => format!("{scheme}:{a}"),
        a if a.starts_with('/') => format!("{origin}{a}"),
        a if a.starts_with('?') => format!("{origin}{path}{a}"),
        a => {
            let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
            format!("{origin}{dir}{a}")
        }
    }
}

/// The origin (`scheme://host:port`) of a URL, lowercased.
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{}://{}", scheme.to_ascii_lowercase(), rest[..end].to_ascii_lowercase())
}

/// The form fields to post, in order.
pub fn fields(form: &HtmlForm) -> Vec<(&str, &str)> {
    form.inputs
        .iter()
        .filter(|(_, t, _)| t != "submit" && t != "button")
        .map(|(n, _, v)| (n.as_str(), v.expose()))
        .collect()
}

/// Refuses an assertion form whose `action` is not exactly the expected ACS.
pub fn check_acs(form: &HtmlForm, page_url: &str, expected_acs: &str) -> Result<String> {
    let action = resolve(page_url, &form.action);
    if action.trim_end_matches('/') == expected_acs.trim_end_matches('/') {
        Ok(action)
    } else {
        Err(Error::server(format!(
            "the identity provider's SAML form posts to {} instead of the portal's ACS {expected_acs}: refused, nothing was sent",
            crate::redact::url(action.split('?').next().unwrap_or_default())
        )))
    }
}

/// Redirects followed for one request before giving up.
const MAX_REDIRECTS: usize = 10;

/// A browser's memory for one IdP: the cookies it set, sent back only to its own origin, and redirects
/// followed only within it (a redirect elsewhere is where the browser part ends).
pub struct IdpBrowser {
    origin: String,
    jar: Vec<(String, Secret)>,
}

/// Where a request ended: the last URL and its answer.
pub struct Landing {
    /// The URL of the last request.
    pub url: String,
    /// Its answer.
    pub response: crate::http::HttpResponse,
}

impl IdpBrowser {
    /// A browser for the IdP at `origin_url`, starting with `cookies`.
    pub fn new(origin_url: &str, cookies: Vec<(String, Secret)>) -> Self {
        IdpBrowser { origin: origin(origin_url), jar: cookies }
    }

    /// A cookie the IdP set (or that was given).
    pub fn cookie(&self, name: &str) -> Option<&Secret> {
        self.jar.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// True when `url` is on the IdP.
    pub fn owns(&self, url: &str) -> bool {
        origin(url) == self.origin
    }

    fn remember(&mut self, response: &crate::http::HttpResponse) {
        for line in response.header_values("Set-Cookie") {
            let Some((name, value)) = line.split(';').next().and_then(|p| p.split_once('=')) else { continue };
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            self.jar.retain(|(n, _)| *n != name);
            // An expired or deleted cookie is set to an empty value (or "deleted").
            if !value.is_empty() && value != "deleted" {
                self.jar.push((name, Secret::new(value)));
            }
        }
    }

    /// Sends `request` (to the IdP only) with the cookies, then follows redirects while they stay on the IdP.
    pub fn send(
        &mut self,
        cx: &mut crate::registry::FlowContext<'_>,
        request: crate::http::HttpRequest,
    ) -> Result<Landing> {
        let mut request = request;
        for _ in 0..=MAX_REDIRECTS {
            if !self.owns(&request.url) {
                return Err(Error::server(format!(
                    "the sign-in was sent to {}, outside the identity provider {}: refused",
                    crate::redact::url(request.url.split('?').next().unwrap_or_default()),
                    self.origin
                )));
            }
            if !self.jar.is_empty() {
                let cookies: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={}", v.expose())).collect();
                request = request.header("Cookie", cookies.join("; "));
            }
            let response = cx.send(&request)?;
            self.remember(&response);
            let location = response.header("Location").map(|l| resolve(&request.url, l));
            match location {
                Some(next) if (300..400).contains(&response.status) && self.owns(&next) => {
                    request = crate::http::HttpRequest::get(next);
                }
                _ => return Ok(Landing { url: request.url, response }),
            }
        }
        Err(Error::server(format!("the identity provider {} redirected too many times", self.origin)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OKTA_FORM: &str = "<html><body onload=\"document.forms[0].submit()\"><script>var x = '<form action=\"https://evil\">';</script>\
        <form id=\"appForm\" action=\"https&#x3a;&#x2f;&#x2f;gis.example.com&#x2f;portal&#x2f;sharing&#x2f;rest&#x2f;oauth2&#x2f;saml&#x2f;signin\" method=\"POST\">\
        <input name=\"SAMLResponse\" type=\"hidden\" value=\"PHNhbWw+\"/><input name=RelayState type=hidden value='st&amp;1'></form></body></html>";

    #[test]
    fn okta_s_escaped_action_is_decoded_and_script_text_is_not_a_form() {
        let IdpPage::Assertion(form) = classify(OKTA_FORM) else { panic!("not an assertion page") };
        assert_eq!(form.action, "https://gis.example.com/portal/sharing/rest/oauth2/saml/signin");
        assert_eq!(form.value("SAMLResponse").unwrap().expose(), "PHNhbWw+");
        assert_eq!(form.value("RelayState").unwrap().expose(), "st&1");
        assert_eq!(forms(OKTA_FORM).len(), 1);
        let acs = "https://gis.example.com/portal/sharing/rest/oauth2/saml/signin";
        assert!(check_acs(&form, "https://okta.example/app", acs).is_ok());
        assert!(check_acs(
            &form,
            "https://okta.example/app",
            "https://other.example/portal/sharing/rest/oauth2/saml/signin"
        )
        .is_err());
    }

    #[test]
    fn pages_are_told_apart() {
        let sign_in =
            "<form method=post action='?AuthState=x'><input name=username><input type=password name=password></form>";
        assert!(matches!(classify(sign_in), IdpPage::SignInForm(f) if f.input_of_type("password") == Some("password")));
        assert!(matches!(classify("<script>var stateToken = '00abc\\x2Ddef';</script>"), IdpPage::StepUp));
        let error = "<title>Oops</title><div class=\"error-content\"><h1>Error</h1><p>Token used</p></div>";
        assert!(matches!(classify(error), IdpPage::Other(t) if t.contains("Token used")));
        assert!(matches!(
            classify("<form action=/sso><input name=SAMLRequest value=x></form>"),
            IdpPage::Intermediate(_)
        ));
    }

    #[test]
    fn actions_resolve_against_the_page() {
        let page = "https://idp.example/simplesaml/module.php/core/loginuserpass.php?AuthState=1";
        assert_eq!(
            resolve(page, "?AuthState=2"),
            "https://idp.example/simplesaml/module.php/core/loginuserpass.php?AuthState=2"
        );
        assert_eq!(resolve(page, "/x"), "https://idp.example/x");
        assert_eq!(resolve(page, "other.php"), "https://idp.example/simplesaml/module.php/core/other.php");
        assert_eq!(resolve(page, "https://a.example/b"), "https://a.example/b");
        assert_eq!(resolve(page, ""), page);
        assert_eq!(origin("HTTP://127.0.0.1:80/x?y"), "http://127.0.0.1:80");
    }
}
