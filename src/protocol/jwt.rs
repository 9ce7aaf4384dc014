//! JSON Web Tokens as far as a client needs them: the signature of an OpenID Connect id_token checked
//! against the issuer's JWKS (RS256/384/512, ES256/384) with `ring`, which rustls already brings.

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64url_decode(part: &str, what: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| Error::server(format!("{what} is not base64url")))
}

fn json_object(part: &str, what: &str) -> Result<Map<String, Value>> {
    serde_json::from_slice(&b64url_decode(part, what)?)
        .map_err(|_| Error::server(format!("{what} is not a JSON object")))
}

/// Checks `token`'s signature with the matching key of `jwks` (`{"keys":[...]}`) and returns
/// its claims. Unsigned (`alg: none`) and symmetric (`HS*`) tokens are refused.
pub fn verify_signature(token: &str, jwks: &Value) -> Result<Map<String, Value>> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Error::server("the id_token is not a signed JWT (three dot-separated parts)"));
    };
    let header = json_object(h, "the id_token header")?;
    let claims = json_object(p, "the id_token payload")?;
    let sig = b64url_decode(s, "the id_token signature")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default();
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = jwks.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let kty = if alg.starts_with("RS") { "RSA" } else { "EC" };
    let key = keys
        .iter()
        .filter(|k| k.get("kty").and_then(Value::as_str) == Some(kty))
        .filter(|k| k.get("use").and_then(Value::as_str).is_none_or(|u| u == "sig"))
        .find(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .ok_or_else(|| {
            Error::server(format!(
                "the issuer's JWKS has no {kty} key with kid {:?} for the id_token",
                kid.unwrap_or("-")
            ))
        })?;
    let field = |name: &str| -> Result<Vec<u8>> {
        let text = key.get(name).and_then(Value::as_str).unwrap_or_default();
        b64url_decode(text, &format!("JWKS field `{name}`"))
    };
    let message = format!("{h}.{p}");
    let verified = match alg {
        "RS256" | "RS384" | "RS512" => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                _ => &signature::RSA_PKCS1_2048_8192_SHA512,
            };
            let (n, e) = (field("n")?, field("e")?);
            RsaPublicKeyComponents { n: &n, e: &e }.verify(params, message.as_bytes(), &sig)
        }
        "ES256" | "ES384" => {
            let params =
                if alg == "ES256" { &signature::ECDSA_P256_SHA256_FIXED } else { &signature::ECDSA_P384_SHA384_FIXED };
            let mut point = vec![0x04];
            point.extend(field("x")?);
            point.extend(field("y")?);
            UnparsedPublicKey::new(params, &point).verify(message.as_bytes(), &sig)
        }
        other => {
            return Err(Error::server(format!(
                "the id_token is signed with `{other}`, which age-oauth does not accept"
            )))
        }
    };
    verified.map_err(|_| Error::server("the id_token's signature does not match the issuer's key (JWKS)"))?;
    Ok(claims)
}

/// What the claims of an id_token must say (OpenID Connect Core §3.1.3.7).
pub struct Expectations<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The login's nonce; `None` for tokens from refresh or the device flow.
    pub nonce: Option<&'a str>,
    /// The subject of the earlier id_token, which a refreshed one must repeat.
    pub subject: Option<&'a str>,
    pub now: u64,
}

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 60;

pub fn check_claims(claims: &Map<String, Value>, want: &Expectations<'_>) -> Result<()> {
    let bad = |why: String| Err(Error::server(format!("the id_token is not valid for this login: {why}")));
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    if iss.trim_end_matches('/') != want.issuer.trim_end_matches('/') {
        return bad(format!("issuer `{iss}` instead of `{}`", want.issuer));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !audiences.contains(&want.client_id) {
        return bad(format!("audience {audiences:?} does not include this client ({})", want.client_id));
    }
    if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str).is_some_and(|azp| azp != want.client_id) {
        return bad("authorized party (azp) is another client".into());
    }
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if exp.saturating_add(LEEWAY_SECS) > want.now => {}
        Some(exp) => return bad(format!("expired at {}", crate::clock::rfc3339(exp))),
        None => return bad("no `exp`".into()),
    }
    if let Some(nonce) = want.nonce {
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return bad("`nonce` does not match this login's (a replayed or foreign token)".into());
        }
    }
    if let Some(sub) = want.subject {
        if claims.get("sub").and_then(Value::as_str) != Some(sub) {
            return bad("the refreshed id_token names another subject".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    fn signed(claims: &Value) -> (String, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let public = key.public_key().as_ref();
        let jwks = json!({"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":b64url(&public[1..33]),"y":b64url(&public[33..])}]});
        let input = format!("{}.{}", b64url(br#"{"alg":"ES256","kid":"k1"}"#), b64url(claims.to_string().as_bytes()));
        let sig = key.sign(&rng, input.as_bytes()).unwrap();
        (format!("{input}.{}", b64url(sig.as_ref())), jwks)
    }

    #[test]
    fn es256_signature_and_claims() {
        let claims = json!({"iss":"http://i","aud":"c","exp":2000,"nonce":"n","sub":"alice"});
        let (token, jwks) = signed(&claims);
        let got = verify_signature(&token, &jwks).unwrap();
        let want = Expectations { issuer: "http://i/", client_id: "c", nonce: Some("n"), subject: None, now: 1000 };
        check_claims(&got, &want).unwrap();
        assert!(check_claims(&got, &Expectations { client_id: "other", ..want }).is_err());
        assert!(check_claims(&got, &Expectations { nonce: Some("m"), ..want }).is_err());
        assert!(check_claims(&got, &Expectations { now: 3000, ..want }).is_err());
        assert!(check_claims(&got, &Expectations { subject: Some("bob"), ..want }).is_err());

        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(verify_signature(&tampered, &jwks).is_err());
        let (_, other_key) = signed(&claims);
        let err = verify_signature(&token, &other_key).unwrap_err().to_string();
        assert!(err.contains("signature does not match"), "{err}");
        let unsigned = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(claims.to_string().as_bytes()));
        assert!(verify_signature(&unsigned, &jwks).unwrap_err().to_string().contains("`none`"));
    }
}
