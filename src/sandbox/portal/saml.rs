//! SAML federation of the simulated portal's organisation with one IdP: `oauth2/saml/authorize` turns a
//! pending OAuth request (`oauth_state`) into an `AuthnRequest` sent to the IdP, and the ACS
//! (`oauth2/saml/signin`) checks the IdP's answer — issuer, audience, recipient, validity window,
//! `InResponseTo` and `RelayState`, and with a signing certificate the XML signature (xmlsec1) —
//! then completes the pending request as the asserted user.

use super::super::arcgis::random_token;
use super::super::http::{html_escape, html_page, Incoming, Reply};
use super::super::saml::{deflate_base64, verify_response, AuthnRequest, Expectation};
use super::{oauth, SimState};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::path::PathBuf;

/// An AuthnRequest waits this long for the IdP's answer.
const REQUEST_WINDOW_SECS: u64 = 900;

/// The SAML IdP a simulated portal's organisation signs its users in with.
#[derive(Clone, Debug)]
pub struct PortalSamlIdp {
    /// Its name on the sign-in page (`idpName`).
    pub name: String,
    /// Its SSO URL (HTTP-Redirect binding).
    pub sso_url: String,
    /// Its entity ID, the assertion's `Issuer`.
    pub issuer: String,
    /// With a certificate (PEM file), only responses whose signature `xmlsec1` verifies against it are taken.
    pub signing_cert: Option<PathBuf>,
}

/// The portal's SP entity ID.
pub(super) fn entity_id(base_url: &str) -> String {
    base_url.to_string()
}

/// The portal's assertion consumer service URL.
pub(super) fn acs_url(base_url: &str) -> String {
    format!("{base_url}/sharing/rest/oauth2/saml/signin")
}

fn saml_error(message: &str) -> Reply {
    // As ArcGIS does: an HTML page with status 200 and no code; clients must notice the missing code.
    html_page(
        200,
        "Error",
        &format!("<h1>Error</h1>\n<div class=\"error\" id=\"errorMessage\">{}</div>", html_escape(message)),
    )
}

/// `oauth2/saml/authorize?oauth_state=…` → 302 to the IdP with `SAMLRequest` and `RelayState`.
pub(super) fn authorize(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    st.bump("saml/authorize");
    let Some(idp) = st.config.saml.clone() else {
        return saml_error("This organization has no SAML identity provider.");
    };
    let now = st.now();
    let oauth_state = req.param("oauth_state").unwrap_or_default().to_string();
    if st.pending.get(&oauth_state).is_none_or(|p| p.expires_at <= now) {
        return saml_error("Invalid or expired sign-in request. Start again from your application.");
    }
    let request =
        AuthnRequest { id: format!("_{}", random_token("")), issuer: entity_id(base_url), acs_url: acs_url(base_url) };
    st.saml_requests.retain(|_, (_, at)| *at > now);
    st.saml_requests.insert(request.id.clone(), (oauth_state.clone(), now + REQUEST_WINDOW_SECS));
    let encoded = deflate_base64(&request.to_xml(now, &idp.sso_url));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLRequest", &encoded)
        .append_pair("RelayState", &oauth_state)
        .finish();
    let joiner = if idp.sso_url.contains('?') { '&' } else { '?' };
    Reply::Redirect(format!("{}{joiner}{query}", idp.sso_url))
}

/// The ACS: `POST oauth2/saml/signin` with `SAMLResponse` and `RelayState`.
pub(super) fn sign_in(st: &mut SimState, req: &Incoming, base_url: &str) -> Reply {
    st.bump("saml/signin");
    let Some(idp) = st.config.saml.clone() else {
        return saml_error("This organization has no SAML identity provider.");
    };
    if !req.is_post {
        return saml_error("The SAML response must be posted.");
    }
    let xml = req
        .param("SAMLResponse")
        .and_then(|r| STANDARD.decode(r.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some(xml) = xml else {
        return saml_error("The SAML response is missing or not base64.");
    };
    if let Some(cert) = &idp.signing_cert {
        if let Err(why) = verify_signature(&xml, cert) {
            st.bump("saml/signin:bad_signature");
            return saml_error(&format!("The SAML response signature does not verify: {why}"));
        }
        st.bump("saml/signin:signature_verified");
    }
    let (acs, audience) = (acs_url(base_url), entity_id(base_url));
    let expect = Expectation { idp_issuer: &idp.issuer, audience: &audience, acs_url: &acs, now: st.now() };
    let verified = match verify_response(&xml, &expect) {
        Ok(v) => v,
        Err(why) => {
            st.bump("saml/signin:refused");
            return saml_error(&format!("Could not sign in with the identity provider: {why}"));
        }
    };
    let now = st.now();
    let relay_state = req.param("RelayState").unwrap_or_default();
    // Each request is answered once, for the very sign-in that sent it.
    let Some((oauth_state, _)) =
        st.saml_requests.remove(&verified.in_response_to).filter(|(state, at)| *at > now && state == relay_state)
    else {
        st.bump("saml/signin:refused");
        return saml_error("The SAML response answers no pending request of this portal (InResponseTo / RelayState).");
    };
    let Some(pending) = st.pending.remove(&oauth_state).filter(|p| p.expires_at > now) else {
        return saml_error("Invalid or expired sign-in request. Start again from your application.");
    };
    oauth::approve(st, pending, &verified.name_id)
}

/// Verifies the enveloped signatures with xmlsec1 (Debian's `xmlsec1`), as a real SP's library would: the
/// assertion's signature, or the response's, must be there, and each one that is there must verify.
fn verify_signature(xml: &str, cert: &std::path::Path) -> Result<(), String> {
    const RESPONSE_SIG: &str = "/*[local-name()='Response']/*[local-name()='Signature']";
    const ASSERTION_SIG: &str = "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']";
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let signed = |parent: roxmltree::Node<'_, '_>| parent.children().any(|n| n.tag_name().name() == "Signature");
    let response_signed = signed(root);
    let assertion_signed = root.children().find(|n| n.tag_name().name() == "Assertion").is_some_and(signed);
    if !response_signed && !assertion_signed {
        return Err("the response is not signed".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("response.xml");
    std::fs::write(&file, xml).map_err(|e| e.to_string())?;
    for (xpath, present) in [(RESPONSE_SIG, response_signed), (ASSERTION_SIG, assertion_signed)] {
        if !present {
            continue;
        }
        let output = std::process::Command::new("xmlsec1")
            .args(["--verify", "--pubkey-cert-pem"])
            .arg(cert)
            .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response"])
            .args(["--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"])
            .args(["--node-xpath", xpath])
            .arg(&file)
            .output()
            .map_err(|e| format!("cannot run xmlsec1: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("failed").to_string());
        }
    }
    Ok(())
}
