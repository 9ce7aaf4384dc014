//! `okta-esri`: an ArcGIS portal whose users sign in through Okta (or another HTML-form SAML IdP): the
//! portal's SP-initiated SAML login driven from the terminal (Okta classic authn + MFA), ending in an ArcGIS
//! access token and refresh token; a dead refresh token is renewed through a live Okta session.

use crate::binding::{origin_of, BoundOrigin};
use crate::error::{Error, Result};
use crate::http::HttpRequest;
use crate::protocol::arcgis::{default_rotate_within, extract_code, Portal, OOB_REDIRECT};
use crate::protocol::loopback::{obtain_code, Expected, Listener, DEFAULT_TIMEOUT_SECS};
use crate::protocol::okta::{MfaChoice, OktaOrg, SignIn};
use crate::protocol::password;
use crate::protocol::pkce::{random_urlsafe, Pkce};
use crate::protocol::saml::{check_acs, classify, fields, resolve, IdpBrowser, IdpPage, Landing};
use crate::registry::{
    FlowContext, Identity, Obtained, ProfileSettings, Provider, ProviderInfo, SecretOrigin, SecretSpec,
};
use crate::secret::Secret;
use crate::settings::service_url;
use crate::token::{DerivedToken, TokenSet};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The Okta password.
const PASSWORD: SecretSpec = SecretSpec {
    name: "password",
    description: "Okta (or form IdP) password: prompted at login (kept encrypted if you agree), or AGE_OAUTH_PASSWORD",
    required: false,
};
/// A current one-time code.
const MFA_CODE: SecretSpec = SecretSpec {
    name: "mfa_code",
    description: "A current one-time code for mfa = totp / sms (AGE_OAUTH_MFA_CODE), else prompted; never stored",
    required: false,
};
/// Where the `DT` device token is kept between logins (the encrypted store), so Okta can remember the device.
const DEVICE_TOKEN: &str = "okta_device_token";
/// The Okta session and device cookies, kept with the tokens (encrypted) for renewal.
const SID_KEY: &str = "okta:sid";
const DT_KEY: &str = "okta:DT";
/// Pages walked through between the IdP's first page and the assertion.
const MAX_IDP_STEPS: usize = 8;

fn default_redirect_uri() -> String {
    OOB_REDIRECT.to_string()
}
fn default_expiration() -> i64 {
    20_160
}
fn default_mfa_timeout() -> u64 {
    60
}
fn yes() -> bool {
    true
}

/// The MFA factor to use.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mfa {
    /// Okta Verify push.
    Push,
    /// A TOTP code (AGE_OAUTH_MFA_CODE or prompted).
    Totp,
    /// A code sent by SMS (AGE_OAUTH_MFA_CODE or prompted).
    Sms,
    /// Push when enrolled, else the first usable factor (a prompt chooses when several remain and a person is there).
    #[default]
    Any,
}

/// Which kind of IdP the portal federates with.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Idp {
    /// Okta, signed in through its classic authentication API (MFA included).
    #[default]
    Okta,
    /// Any SAML IdP whose sign-in is an HTML form with username and password (no MFA).
    Form,
}

/// Settings of an `okta-esri` profile.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("x-secret-prompts" = {"password": {"label": "Okta password", "order": 60}}))]
pub struct OktaEsriSettings {
    /// Portal URL, e.g. https://gis.example.com/portal or https://ORG.maps.arcgis.com (http:// only for loopback).
    #[schemars(extend("x-prompt" = {"label": "Portal URL", "order": 10, "check": "url"}))]
    pub portal: String,
    /// App ID (client_id) of the OAuth application registered in the portal.
    #[schemars(extend("x-prompt" = {"label": "OAuth Client ID", "order": 30}))]
    pub client_id: String,
    /// Redirect URI registered for the app; the portal's answer to it is read, never followed (default: out-of-band).
    #[serde(default = "default_redirect_uri")]
    pub redirect_uri: String,
    /// Refresh-token lifetime to ask of the portal, in minutes (default 20160, two weeks).
    #[serde(default = "default_expiration")]
    pub expiration: i64,
    /// The Okta org URL, e.g. https://example.okta.com (with idp = "form": the IdP's URL, where the password may go).
    #[schemars(extend("x-prompt" = {"label": "Okta org URL", "order": 40, "check": "url"}))]
    pub okta: String,
    /// Okta username (usually an email address).
    #[schemars(extend("x-prompt" = {"label": "Okta username", "order": 50}))]
    pub username: String,
    /// MFA factor: push, totp, sms or any.
    #[serde(default)]
    pub mfa: Mfa,
    /// Seconds to wait for an Okta Verify push to be answered.
    #[serde(default = "default_mfa_timeout")]
    pub mfa_timeout: u64,
    /// Ask Okta to remember this device (DT cookie), so MFA is asked less often.
    #[serde(default = "yes")]
    pub remember_device: bool,
    /// okta (Okta classic authn with MFA) or form (any SAML IdP with an HTML sign-in form).
    #[serde(default)]
    pub idp: Idp,
    /// Rotate the refresh token (exchange_refresh_token) when it has less than this many seconds left.
    #[serde(default = "default_rotate_within")]
    pub rotate_refresh_within: u64,
}

/// What an okta-esri login keeps with its tokens: the redirect URI it used (a browser fallback uses a loopback one).
#[derive(Debug, Default, Serialize, Deserialize)]
struct OktaEsriState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
}

pub struct OktaEsri {
    portal: Portal,
    org: OktaOrg,
    settings: OktaEsriSettings,
}

fn build(settings: &ProfileSettings) -> Result<Box<dyn Provider>> {
    let s: OktaEsriSettings = settings.parse()?;
    let profile = &settings.profile;
    if !(1..=3_600).contains(&s.mfa_timeout) {
        return Err(Error::Config(format!("profile '{profile}': field `mfa_timeout` must be 1 to 3600 seconds")));
    }
    let portal = Portal { url: service_url(profile, "portal", &s.portal)?, referer: None };
    let org = OktaOrg { url: service_url(profile, "okta", &s.okta)? };
    Ok(Box::new(OktaEsri { portal, org, settings: s }))
}

inventory::submit! {
    ProviderInfo {
        name: "okta-esri",
        description: "ArcGIS portal federated with Okta (SAML): sign in to Okta from the terminal with MFA, get ArcGIS tokens and a refresh token",
        settings_schema: || schemars::schema_for!(OktaEsriSettings),
        secrets: &[PASSWORD, MFA_CODE],
        template: include_str!("okta-esri.toml"),
        build,
    }
}

/// One SP-initiated sign-in in progress: its redirect URI, `state` and PKCE verifier.
struct Attempt {
    redirect_uri: String,
    state: String,
    pkce: Pkce,
}

impl OktaEsri {
    /// A fresh attempt (new `state` and PKCE verifier) for `redirect_uri`, and the portal's authorize URL for it.
    fn begin_attempt(&self, redirect_uri: String) -> (Attempt, String) {
        let s = &self.settings;
        let attempt = Attempt { redirect_uri, state: random_urlsafe(16), pkce: Pkce::new() };
        let url = self.portal.authorize_url(
            &s.client_id,
            &attempt.redirect_uri,
            &attempt.state,
            &attempt.pkce,
            Some(s.expiration),
        );
        (attempt, url)
    }

    /// The referer requests carry (none: the portal's tokens for this app are not referer-bound).
    fn referer(&self) -> Option<&str> {
        self.portal.referer.as_deref()
    }

    fn acs(&self) -> String {
        self.portal.rest("oauth2/saml/signin")
    }

    fn redirect_uri_of(&self, tokens: &TokenSet) -> String {
        tokens.provider_state.get::<OktaEsriState>().redirect_uri.unwrap_or_else(|| self.settings.redirect_uri.clone())
    }

    /// Portal `oauth2/authorize` (code + PKCE + state + expiration) → its sign-in page's `oauth_state` →
    /// `oauth2/saml/authorize` → the IdP URL carrying `SAMLRequest` and `RelayState`.
    fn start(&self, cx: &mut FlowContext<'_>) -> Result<(Attempt, String)> {
        let (attempt, url) = self.begin_attempt(self.settings.redirect_uri.clone());
        let page = cx.send(&HttpRequest::get(url))?;
        let body = String::from_utf8_lossy(&page.body);
        let Some(oauth_state) = json_string_after(&body, "\"oauth_state\"") else {
            return Err(Error::server(format!(
                "the portal's sign-in page has no oauth_state (HTTP {}): is client_id right, and is the organisation federated with a SAML IdP?",
                page.status
            )));
        };
        let saml = format!("{}?oauth_state={}", self.portal.rest("oauth2/saml/authorize"), urlencode(&oauth_state));
        let answer = cx.send(&HttpRequest::get(saml))?;
        match answer.header("Location") {
            Some(location) if (300..400).contains(&answer.status) => {
                let idp_url = resolve(&self.portal.url, location);
                if !IdpBrowser::new(&self.org.url, Vec::new()).owns(&idp_url) {
                    return Err(Error::Config(format!(
                        "profile '{}': the portal sends sign-ins to {}, not to the profile's okta = {}; fix `okta` (and run `login --force`)",
                        cx.profile,
                        crate::redact::url(idp_url.split('?').next().unwrap_or_default()),
                        self.org.url
                    )));
                }
                Ok((attempt, idp_url))
            }
            _ => Err(Error::server(format!(
                "the portal did not send the sign-in to its SAML IdP (oauth2/saml/authorize answered HTTP {})",
                answer.status
            ))),
        }
    }

    /// Walks the IdP's pages from `landing` to the assertion form: auto-submits intermediate forms,
    /// fills a sign-in form once (idp = "form"), stops at a step-up page.
    fn walk_to_assertion(
        &self,
        cx: &mut FlowContext<'_>,
        browser: &mut IdpBrowser,
        mut landing: Landing,
        mut password: Option<&Secret>,
    ) -> Result<Walked> {
        for _ in 0..MAX_IDP_STEPS {
            if landing.url.contains("/login/step-up/") {
                return Ok(Walked::StepUp);
            }
            let body = String::from_utf8_lossy(&landing.response.body).into_owned();
            let form = match classify(&body) {
                IdpPage::Assertion(form) => return Ok(Walked::Assertion(landing.url, form)),
                IdpPage::StepUp => return Ok(Walked::StepUp),
                IdpPage::Intermediate(form) => form,
                IdpPage::SignInForm(mut form) => {
                    let Some(secret) = password.take() else {
                        return Ok(Walked::SignIn);
                    };
                    fill_sign_in(&mut form, &self.settings.username, secret)?;
                    form
                }
                IdpPage::Other(text) => {
                    return Err(Error::server(format!(
                        "cannot read the identity provider's page at {} ({text}); sign in with the browser instead: \
                         `age-oauth login --profile {}` on a machine with a browser, or use an esri-pkce profile",
                        crate::redact::url(landing.url.split('?').next().unwrap_or_default()),
                        cx.profile
                    )))
                }
            };
            let action = resolve(&landing.url, &form.action);
            let request = if form.method == "post" {
                HttpRequest::post_form(action, &fields(&form))
            } else {
                let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(fields(&form)).finish();
                HttpRequest::get(format!("{action}{}{query}", if action.contains('?') { '&' } else { '?' }))
            };
            landing = browser.send(cx, request)?;
        }
        Err(Error::server("the identity provider never produced a SAML assertion"))
    }

    /// Posts the assertion to the portal's ACS (after checking the form's `action` is that ACS) and redeems the code.
    fn finish(
        &self,
        cx: &mut FlowContext<'_>,
        page_url: &str,
        form: &crate::protocol::saml::HtmlForm,
        attempt: &Attempt,
    ) -> Result<TokenSet> {
        let acs = check_acs(form, page_url, &self.acs())?;
        let answer = cx.send(&HttpRequest::post_form(acs, &fields(form)))?;
        let code = match answer.header("Location") {
            Some(location) if (300..400).contains(&answer.status) => code_from_redirect(location, attempt)?,
            _ => {
                answer.html_title().as_deref().and_then(|t| t.split("code=").nth(1)).and_then(extract_code).ok_or_else(
                    || {
                        let why = crate::protocol::okta::page_error(&answer)
                            .or_else(|| error_message(&answer))
                            .unwrap_or_else(|| format!("HTTP {}", answer.status));
                        Error::server(format!("the portal did not accept the SAML sign-in: {why}"))
                    },
                )?
            }
        };
        let mut tokens =
            self.portal.redeem_code(cx, &self.settings.client_id, &code, &attempt.redirect_uri, &attempt.pkce)?;
        tokens.provider_state.set(&OktaEsriState { redirect_uri: Some(attempt.redirect_uri.clone()) });
        Ok(tokens)
    }

    fn login_okta(&self, cx: &mut FlowContext<'_>, password: &Secret, device: &Secret) -> Result<TokenSet> {
        let pipeline = self.org.pipeline(cx)?;
        cx.ui.debug(1, &format!("Okta org pipeline: {pipeline} (classic authn)"));
        let (attempt, idp_url) = self.start(cx)?;
        let s = &self.settings;
        let mfa = match s.mfa {
            Mfa::Push => MfaChoice::Push,
            Mfa::Totp => MfaChoice::Totp,
            Mfa::Sms => MfaChoice::Sms,
            Mfa::Any => MfaChoice::Any,
        };
        let sign_in = SignIn {
            username: &s.username,
            password,
            mfa,
            mfa_timeout: s.mfa_timeout,
            remember_device: s.remember_device,
            device_token: device,
            wrong_password_hint: &wrong_password_hint(cx),
        };
        let session_token = self.org.authenticate(cx, &sign_in)?;
        let sid = self.org.session_cookie(cx, &session_token, &idp_url)?;
        let mut browser = IdpBrowser::new(&self.org.url, vec![("sid".into(), sid), ("DT".into(), device.clone())]);
        let landing = browser.send(cx, HttpRequest::get(idp_url))?;
        let mut tokens = match self.walk_to_assertion(cx, &mut browser, landing, None)? {
            Walked::Assertion(url, form) => self.finish(cx, &url, &form, &attempt)?,
            Walked::StepUp | Walked::SignIn => return self.browser_fallback(cx),
        };
        keep_cookies(&mut tokens, &browser);
        Ok(tokens)
    }

    fn login_form(&self, cx: &mut FlowContext<'_>, password: &Secret) -> Result<TokenSet> {
        let (attempt, idp_url) = self.start(cx)?;
        let mut browser = IdpBrowser::new(&self.org.url, Vec::new());
        let landing = browser.send(cx, HttpRequest::get(idp_url))?;
        match self.walk_to_assertion(cx, &mut browser, landing, Some(password))? {
            Walked::Assertion(url, form) => self.finish(cx, &url, &form, &attempt),
            Walked::SignIn => Err(Error::server(format!(
                "the identity provider refused the username or password of {} (its sign-in form came back){}",
                self.settings.username,
                wrong_password_hint(cx)
            ))),
            Walked::StepUp => self.browser_fallback(cx),
        }
    }

    /// The sign-in needs a browser (a step-up the terminal cannot do): the portal's authorize URL with a
    /// loopback redirect, finished in the browser (`--no-browser`: the URL is printed).
    fn browser_fallback(&self, cx: &mut FlowContext<'_>) -> Result<TokenSet> {
        cx.ui.warn(
            "the identity provider asks for a step-up sign-in this terminal flow cannot do; finish it in the browser",
        );
        let listener = Listener::bind(cx.profile, None, "/callback")?;
        let (attempt, url) = self.begin_attempt(listener.redirect_uri().to_string());
        let profile = cx.profile.to_string();
        let expected = Expected { profile: &profile, state: &attempt.state, issuer: None };
        let callback = obtain_code(cx, &listener, &url, &expected, Duration::from_secs(DEFAULT_TIMEOUT_SECS))?;
        let mut tokens = self.portal.redeem_code(
            cx,
            &self.settings.client_id,
            callback.code.expose(),
            &attempt.redirect_uri,
            &attempt.pkce,
        )?;
        tokens.provider_state.set(&OktaEsriState { redirect_uri: Some(attempt.redirect_uri) });
        Ok(tokens)
    }

    /// The refresh token is dead: a new SAML sign-in with the kept Okta session — no password, no MFA, no prompt.
    fn renew_with_session(&self, cx: &mut FlowContext<'_>, current: &TokenSet, why: &Error) -> Result<TokenSet> {
        let Some(sid) = current.derived.get(SID_KEY).map(|d| d.token.clone()) else {
            return Err(cx.login_required(format!("{why} (and there is no Okta session to renew it with)")));
        };
        cx.ui.debug(1, "the refresh token is no longer accepted: renewing through the Okta session");
        let mut cookies = vec![("sid".to_string(), sid)];
        if let Some(dt) = current.derived.get(DT_KEY) {
            cookies.push(("DT".to_string(), dt.token.clone()));
        }
        let (attempt, idp_url) = self.start(cx)?;
        let mut browser = IdpBrowser::new(&self.org.url, cookies);
        let landing = browser.send(cx, HttpRequest::get(idp_url))?;
        match self.walk_to_assertion(cx, &mut browser, landing, None)? {
            Walked::Assertion(url, form) => {
                let mut tokens = self.finish(cx, &url, &form, &attempt)?;
                keep_cookies(&mut tokens, &browser);
                Ok(tokens)
            }
            Walked::StepUp | Walked::SignIn => {
                Err(cx.login_required("the refresh token is no longer accepted and the Okta session has ended"))
            }
        }
    }
}

/// Where a walk through the IdP's pages ended.
enum Walked {
    /// The assertion form (and the URL of its page).
    Assertion(String, crate::protocol::saml::HtmlForm),
    /// A sign-in form there was no password for (the session is gone, or the password was wrong).
    SignIn,
    /// A step-up page.
    StepUp,
}

/// Keeps the Okta `sid` and `DT` cookies with the tokens (encrypted like them), for renewal.
fn keep_cookies(tokens: &mut TokenSet, browser: &IdpBrowser) {
    for (name, key) in [("sid", SID_KEY), ("DT", DT_KEY)] {
        if let Some(value) = browser.cookie(name) {
            tokens.derived.insert(key.to_string(), DerivedToken { token: value.clone(), expires_at: None });
        }
    }
}

/// What to do about a refused password, by where it came from. A kept password is used by every `login`
/// until replaced, and each wrong try counts toward the IdP's lockout: say how to replace it.
fn wrong_password_hint(cx: &FlowContext<'_>) -> String {
    match cx.secrets.origin(PASSWORD.name) {
        Some(SecretOrigin::Store) => format!(
            "; the password kept in the encrypted store is no longer right and every `login` would send it again: \
             replace it with `age-oauth profile add {} --set password=...` (or give AGE_OAUTH_PASSWORD)",
            cx.profile
        ),
        _ => format!("; check the username and the password{}", password::origin_note(cx, &PASSWORD)),
    }
}

/// Fills the username field (a text or email input, preferring a name with "user", "login" or "email") and the password field.
fn fill_sign_in(form: &mut crate::protocol::saml::HtmlForm, username: &str, password: &Secret) -> Result<()> {
    let user_field =
        form.inputs.iter().filter(|(_, t, _)| t == "text" || t == "email").map(|(n, _, _)| n.clone()).max_by_key(|n| {
            let n = n.to_ascii_lowercase();
            u8::from(n.contains("user") || n.contains("login") || n.contains("email"))
        });
    let Some(user_field) = user_field else {
        return Err(Error::server(
            "the identity provider's sign-in form has no username field; sign in with the browser instead",
        ));
    };
    for (name, kind, value) in &mut form.inputs {
        if *name == user_field {
            *value = Secret::new(username);
        } else if kind == "password" {
            *value = password.clone();
        }
    }
    Ok(())
}

/// The code of a redirect to our `redirect_uri`, whose `state` must be ours.
fn code_from_redirect(location: &str, attempt: &Attempt) -> Result<String> {
    if !location.starts_with(&attempt.redirect_uri) {
        return Err(Error::server("the portal redirected the sign-in somewhere other than the profile's redirect_uri"));
    }
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if let Some(error) = get("error") {
        return Err(Error::server(format!(
            "the portal refused the sign-in: {error} {}",
            get("error_description").unwrap_or_default()
        )));
    }
    if get("state").as_deref() != Some(attempt.state.as_str()) {
        return Err(Error::server("the portal's redirect carries another sign-in's state: refused"));
    }
    get("code").ok_or_else(|| Error::server("the portal's redirect has no code"))
}

fn error_message(response: &crate::http::HttpResponse) -> Option<String> {
    let text = String::from_utf8_lossy(&response.body);
    let start = text.find("id=\"errorMessage\">")? + "id=\"errorMessage\">".len();
    Some(text[start..].split('<').next()?.trim().to_string())
}

/// The JSON string value after `"key"` and a colon, in a page's inline script.
fn json_string_after(text: &str, key: &str) -> Option<String> {
    let after = &text[text.find(key)? + key.len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let value = serde_json::from_str::<String>(&format!("\"{}\"", after.split('"').next()?)).ok()?;
    Some(value).filter(|v| !v.is_empty())
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Provider for OktaEsri {
    fn login(&self, cx: &mut FlowContext<'_>) -> Result<Obtained> {
        let s = &self.settings;
        if cx.secrets.get(PASSWORD.name).is_none() && !cx.ui.can_prompt() {
            return Err(Error::Config(format!(
                "profile '{}': no password for {}: set AGE_OAUTH_PASSWORD (or sign in at a terminal)",
                cx.profile, s.username
            )));
        }
        let typed = password::password(cx, &PASSWORD, &s.username, true)?;
        let stored_device = cx.secrets.get(DEVICE_TOKEN).cloned();
        let device = stored_device.clone().unwrap_or_else(|| Secret::new(random_urlsafe(24)));
        let tokens = match s.idp {
            Idp::Okta => self.login_okta(cx, &typed.value, &device),
            Idp::Form => self.login_form(cx, &typed.value),
        }?;
        let mut obtained = password::offer_to_keep(cx, &PASSWORD, typed, tokens)?;
        if stored_device.is_none() && s.idp == Idp::Okta {
            obtained.secrets_to_store.push((DEVICE_TOKEN.to_string(), device));
        }
        Ok(obtained)
    }

    fn refresh(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        let s = &self.settings;
        let redirect_uri = self.redirect_uri_of(current);
        match self.portal.refresh_user_tokens(cx, &s.client_id, &redirect_uri, s.rotate_refresh_within, current) {
            Err(why) if why.is_reauth_required() && s.idp == Idp::Okta => self.renew_with_session(cx, current, &why),
            other => other,
        }
    }

    fn rotate_refresh_token(&self, cx: &mut FlowContext<'_>, current: &TokenSet) -> Result<TokenSet> {
        let redirect_uri = self.redirect_uri_of(current);
        self.portal.exchange_refresh_token(cx, &self.settings.client_id, &redirect_uri, current)
    }

    fn whoami(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<Identity> {
        self.portal.community_self(cx, &tokens.access_token)
    }

    /// Revokes the portal's tokens and signs out the Okta session this tool opened.
    fn logout(&self, cx: &mut FlowContext<'_>, tokens: &TokenSet) -> Result<String> {
        let portal = self.portal.revoke_user_tokens(cx, &self.settings.client_id, tokens)?;
        match tokens.derived.get(SID_KEY) {
            Some(sid) => Ok(format!("{portal} {}", self.org.end_session(cx, &sid.token))),
            None => Ok(portal),
        }
    }

    fn origins(&self) -> Vec<BoundOrigin> {
        vec![origin_of("portal", &self.portal.url), origin_of("okta", &self.org.url)]
    }

    fn doctor_probes(&self) -> Vec<crate::doctor::Probe> {
        self.portal.doctor_probes(Some((&self.settings.client_id, self.settings.redirect_uri.clone())))
    }

    fn service_url(&self) -> Option<String> {
        Some(self.portal.url.clone())
    }

    fn rotation_note(&self) -> Option<&'static str> {
        Some(crate::protocol::arcgis::ROTATION_NOTE)
    }

    crate::protocol::arcgis::arcgis_token_transport!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_state_is_read_from_the_sign_in_script() {
        let page = r#"<script>var oAuthInfo = {"oauth_state":"abc\u002ddef","client_id":"x"};</script>"#;
        assert_eq!(json_string_after(page, "\"oauth_state\"").as_deref(), Some("abc-def"));
        assert_eq!(json_string_after("nothing", "\"oauth_state\""), None);
    }

    #[test]
    fn only_our_redirect_with_our_state_gives_a_code() {
        let attempt = Attempt { redirect_uri: "http://127.0.0.1:5/cb".into(), state: "s1".into(), pkce: Pkce::new() };
        assert_eq!(code_from_redirect("http://127.0.0.1:5/cb?code=C&state=s1", &attempt).unwrap(), "C");
        assert!(code_from_redirect("http://127.0.0.1:5/cb?code=C&state=s2", &attempt).is_err());
        assert!(code_from_redirect("https://evil.example/cb?code=C&state=s1", &attempt).is_err());
        assert!(code_from_redirect("http://127.0.0.1:5/cb?error=access_denied&state=s1", &attempt).is_err());
    }
}
