//! SAML 2.0 Web Browser SSO as the simulators speak it: the SP's `AuthnRequest` (HTTP-Redirect binding:
//! raw DEFLATE + base64), the IdP's `Response` (HTTP-POST binding: base64 in an auto-submitting form), and the
//! checks an SP makes of an assertion. Unsigned between two simulators; see `portal::saml` for a signed one.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// SAML 2.0 protocol namespace.
pub(super) const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace.
pub(super) const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// The largest inflated `SAMLRequest` accepted (a real one is well under 4 KiB).
const MAX_INFLATED: usize = 64 * 1024;

/// `2026-12-01T03:20:00Z` for Unix seconds (proleptic Gregorian, UTC).
pub(super) fn iso_time(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fff]Z`; `None` for anything else.
pub(super) fn parse_iso_time(text: &str) -> Option<u64> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3_600 + m * 60 + s).ok()
}

/// The HTTP-Redirect binding's encoding: raw DEFLATE, then base64.
pub(super) fn deflate_base64(xml: &str) -> String {
    STANDARD.encode(miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6))
}

/// Undoes `deflate_base64`; `None` when it is not that.
pub(super) fn inflate_base64(encoded: &str) -> Option<String> {
    let raw = STANDARD.decode(encoded.trim()).ok()?;
    let xml = miniz_oxide::inflate::decompress_to_vec_with_limit(&raw, MAX_INFLATED).ok()?;
    String::from_utf8(xml).ok()
}

/// An SP's `AuthnRequest`.
pub(super) struct AuthnRequest {
    pub(super) id: String,
    pub(super) issuer: String,
    pub(super) acs_url: String,
}

impl AuthnRequest {
    pub(super) fn to_xml(&self, now: u64, destination: &str) -> String {
        format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\" ID=\"{}\" Version=\"2.0\" \
             IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\" \
             ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"><saml:Issuer>{}</saml:Issuer>\
             <samlp:NameIDPolicy Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\" AllowCreate=\"true\"/>\
             </samlp:AuthnRequest>",
            xml_escape(&self.id),
            iso_time(now),
            xml_escape(destination),
            xml_escape(&self.acs_url),
            xml_escape(&self.issuer),
        )
    }

    /// Reads a `SAMLRequest` of the HTTP-Redirect binding.
    pub(super) fn from_redirect(encoded: &str) -> Option<AuthnRequest> {
        let xml = inflate_base64(encoded)?;
        let doc = roxmltree::Document::parse(&xml).ok()?;
        let root = doc.root_element();
        if !root.has_tag_name((PROTOCOL_NS, "AuthnRequest")) {
            return None;
        }
        let issuer = child_text(root, ASSERTION_NS, "Issuer")?;
        Some(AuthnRequest {
            id: root.attribute("ID")?.to_string(),
            issuer,
            acs_url: root.attribute("AssertionConsumerServiceURL")?.to_string(),
        })
    }
}

/// What an IdP asserts about its user to one SP.
pub(super) struct Assertion<'a> {
    pub(super) issuer: &'a str,
    pub(super) audience: &'a str,
    pub(super) recipient: &'a str,
    pub(super) in_response_to: &'a str,
    pub(super) name_id: &'a str,
    pub(super) now: u64,
    pub(super) lifetime: u64,
}

impl Assertion<'_> {
    /// The `samlp:Response` carrying the assertion, base64 as the HTTP-POST binding wants it.
    pub(super) fn response_base64(&self, response_id: &str, assertion_id: &str) -> String {
        let (now, until) = (iso_time(self.now), iso_time(self.now + self.lifetime));
        let before = iso_time(self.now.saturating_sub(30));
        let e = xml_escape;
        let xml = format!(
            "<samlp:Response xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\" ID=\"{rid}\" Version=\"2.0\" \
             IssueInstant=\"{now}\" Destination=\"{rcpt}\" InResponseTo=\"{irt}\"><saml:Issuer>{iss}</saml:Issuer>\
             <samlp:Status><samlp:StatusCode Value=\"{SUCCESS}\"/></samlp:Status>\
             <saml:Assertion ID=\"{aid}\" Version=\"2.0\" IssueInstant=\"{now}\"><saml:Issuer>{iss}</saml:Issuer>\
             <saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">{name}</saml:NameID>\
             <saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><saml:SubjectConfirmationData \
             InResponseTo=\"{irt}\" NotOnOrAfter=\"{until}\" Recipient=\"{rcpt}\"/></saml:SubjectConfirmation></saml:Subject>\
             <saml:Conditions NotBefore=\"{before}\" NotOnOrAfter=\"{until}\"><saml:AudienceRestriction>\
             <saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
             <saml:AuthnStatement AuthnInstant=\"{now}\" SessionIndex=\"{aid}\"><saml:AuthnContext><saml:AuthnContextClassRef>\
             urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>\
             </saml:AuthnStatement></saml:Assertion></samlp:Response>",
            rid = e(response_id),
            aid = e(assertion_id),
            rcpt = e(self.recipient),
            irt = e(self.in_response_to),
            iss = e(self.issuer),
            name = e(self.name_id),
            aud = e(self.audience),
        );
        STANDARD.encode(xml)
    }
}

/// What an SP reads from a `SAMLResponse` once it has checked it.
#[derive(Debug)]
pub(super) struct Verified {
    pub(super) name_id: String,
    pub(super) in_response_to: String,
}

/// What the SP expects of a response to one of its requests.
pub(super) struct Expectation<'a> {
    pub(super) idp_issuer: &'a str,
    pub(super) audience: &'a str,
    pub(super) acs_url: &'a str,
    pub(super) now: u64,
}

/// Checks issuer, status, audience, recipient, the validity window and reads `InResponseTo` and the
/// `NameID`; the caller checks `InResponseTo` against its own requests. Signatures are not looked at here.
pub(super) fn verify_response(xml: &str, expect: &Expectation<'_>) -> Result<Verified, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("SAMLResponse is not XML: {e}"))?;
    let root = doc.root_element();
    if !root.has_tag_name((PROTOCOL_NS, "Response")) {
        return Err("SAMLResponse is not a samlp:Response".into());
    }
    let status = descendant(root, PROTOCOL_NS, "StatusCode").and_then(|s| s.attribute("Value")).unwrap_or("");
    if status != SUCCESS {
        return Err(format!("the IdP answered status {status}"));
    }
    let assertion = descendant(root, ASSERTION_NS, "Assertion").ok_or("the response has no assertion")?;
    let issuer = child_text(assertion, ASSERTION_NS, "Issuer").unwrap_or_default();
    if issuer != expect.idp_issuer {
        return Err(format!("unexpected issuer {issuer}"));
    }
    let audience = descendant(assertion, ASSERTION_NS, "Audience").and_then(|a| a.text()).unwrap_or("").trim();
    if audience != expect.audience {
        return Err(format!("the assertion is for audience {audience}, not this portal"));
    }
    let conditions = descendant(assertion, ASSERTION_NS, "Conditions").ok_or("the assertion has no Conditions")?;
    let not_before = conditions.attribute("NotBefore").and_then(parse_iso_time).unwrap_or(0);
    let not_after = conditions.attribute("NotOnOrAfter").and_then(parse_iso_time).unwrap_or(0);
    // A little leeway for the IdP's clock, as real SPs allow.
    if expect.now + 60 < not_before || expect.now >= not_after {
        return Err("the assertion is outside its validity window".into());
    }
    let confirmation =
        descendant(assertion, ASSERTION_NS, "SubjectConfirmationData").ok_or("the assertion has no confirmation")?;
    if confirmation.attribute("Recipient") != Some(expect.acs_url) {
        return Err("the assertion is for another recipient".into());
    }
    let in_response_to = confirmation.attribute("InResponseTo").unwrap_or_default().to_string();
    if root.attribute("InResponseTo").is_some_and(|r| r != in_response_to) {
        return Err("InResponseTo differs between response and assertion".into());
    }
    let name_id = descendant(assertion, ASSERTION_NS, "NameID")
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or("the assertion names no user")?;
    Ok(Verified { name_id: name_id.to_string(), in_response_to })
}

fn descendant<'a, 'i>(node: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.descendants().find(|n| n.has_tag_name((ns, name)))
}

fn child_text(node: roxmltree::Node<'_, '_>, ns: &str, name: &str) -> Option<String> {
    node.children().find(|n| n.has_tag_name((ns, name))).and_then(|n| n.text()).map(|t| t.trim().to_string())
}

pub(super) fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The auto-submitting form of the HTTP-POST binding, as IdPs send it (Okta escapes `:` and `/` in the
/// action as `&#x3a;` and `&#x2f;`, so `escape_action` does too).
pub(super) fn post_form_page(action: &str, fields: &[(&str, &str)], escape_action: bool) -> String {
    let action = if escape_action {
        super::http::html_escape(action).replace(':', "&#x3a;").replace('/', "&#x2f;")
    } else {
        super::http::html_escape(action)
    };
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input name=\"{}\" type=\"hidden\" value=\"{}\"/>\n",
                super::http::html_escape(name),
                super::http::html_escape(value)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><title>Signing in...</title></head>\n<body onload=\"document.forms[0].submit()\">\n\
         <form id=\"appForm\" action=\"{action}\" method=\"POST\">\n{inputs}</form>\n</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_round_trips_and_matches_known_dates() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_iso_time("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_iso_time("2026-12-01T03:20:00.123Z"), parse_iso_time("2026-12-01T03:20:00Z"));
        for t in [1_700_000_000_u64, 4_102_444_799, 86_399] {
            assert_eq!(parse_iso_time(&iso_time(t)), Some(t));
        }
        assert_eq!(parse_iso_time("yesterday"), None);
    }

    #[test]
    fn authn_request_survives_the_redirect_binding() {
        let request = AuthnRequest { id: "_r1".into(), issuer: "sp".into(), acs_url: "http://127.0.0.1/acs".into() };
        let encoded = deflate_base64(&request.to_xml(1_700_000_000, "http://idp/sso"));
        let back = AuthnRequest::from_redirect(&encoded).unwrap();
        assert_eq!(
            (back.id.as_str(), back.issuer.as_str(), back.acs_url.as_str()),
            ("_r1", "sp", "http://127.0.0.1/acs")
        );
        assert!(AuthnRequest::from_redirect("bm90IGRlZmxhdGU=").is_none());
    }

    #[test]
    fn a_response_is_checked_for_issuer_audience_recipient_and_time() {
        let assertion = Assertion {
            issuer: "idp",
            audience: "sp",
            recipient: "http://127.0.0.1/acs",
            in_response_to: "_r1",
            name_id: "alice@example.test",
            now: 1_700_000_000,
            lifetime: 300,
        };
        let xml = String::from_utf8(STANDARD.decode(assertion.response_base64("_p", "_a")).unwrap()).unwrap();
        let expect =
            Expectation { idp_issuer: "idp", audience: "sp", acs_url: "http://127.0.0.1/acs", now: 1_700_000_100 };
        let ok = verify_response(&xml, &expect).unwrap();
        assert_eq!((ok.name_id.as_str(), ok.in_response_to.as_str()), ("alice@example.test", "_r1"));
        assert!(verify_response(&xml, &Expectation { audience: "other", ..expect }).unwrap_err().contains("audience"));
        assert!(verify_response(&xml, &Expectation { idp_issuer: "evil", ..expect }).unwrap_err().contains("issuer"));
        assert!(verify_response(&xml, &Expectation { now: 1_700_000_400, ..expect }).unwrap_err().contains("window"));
        assert!(verify_response(&xml, &Expectation { acs_url: "x", ..expect }).unwrap_err().contains("recipient"));
    }
}
