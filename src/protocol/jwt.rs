//! JSON Web Tokens as far as a client needs them: an OpenID Connect id_token's signature checked
//! against the issuer's JWKS by `jsonwebtoken` (its crypto done by `ring`, see `ring_provider`), then its claims against this login.

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

mod ring_provider;

/// Base64url without padding, as JOSE writes it.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The signatures an id_token may carry: asymmetric only. `none` and the HMAC family are refused, so a
/// public key can never be used as a shared secret (algorithm confusion).
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// True when `jwk` can check a signature made with `alg`: the same key type, meant for signatures,
/// and the same algorithm when the key names one.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let same_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => alg.family() == jsonwebtoken::AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => alg.family() == jsonwebtoken::AlgorithmFamily::Ec,
        _ => false,
    };
    let for_signing = jwk.common.public_key_use.as_ref().is_none_or(|u| *u == PublicKeyUse::Signature);
    let same_alg = jwk.common.key_algorithm.is_none_or(|k| k.to_string() == format!("{alg:?}"));
    same_type && for_signing && same_alg
}

/// Checks `token`'s signature with the matching key of `jwks` (`{"keys":[...]}`) and returns its
/// claims. Unsigned (`alg: none`) and symmetric (`HS*`) tokens are refused, and so is a key of
/// another type than the algorithm's. Keys this crate cannot read are skipped, not fatal.
/// Time claims are not judged here but by [`check_claims`], against the engine's clock.
pub fn verify_signature(token: &str, jwks: &Value) -> Result<Map<String, Value>> {
    ring_provider::install();
    let header = jsonwebtoken::decode_header(token).map_err(|e| {
        Error::server(format!(
            "the id_token is not a signed JWT age-oauth accepts ({e}); accepted: RS*, PS*, ES256, ES384 (never `none` or HS*)"
        ))
    })?;
    let alg = header.alg;
    if !ACCEPTED.contains(&alg) {
        return Err(Error::server(format!("the id_token is signed with `{alg:?}`, which age-oauth does not accept")));
    }
    let kid = header.kid.as_deref();
    let keys = jwks.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let jwk = keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|k| fits(k, alg))
        .find(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
        .ok_or_else(|| {
            Error::server(format!(
                "the issuer's JWKS has no {alg:?} signing key with kid {:?} for the id_token",
                kid.unwrap_or("-")
            ))
        })?;
    let key =
        DecodingKey::from_jwk(&jwk).map_err(|e| Error::server(format!("the issuer's JWKS key is unusable: {e}")))?;
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => {
            Error::server("the id_token's signature does not match the issuer's key (JWKS)")
        }
        _ => Error::server(format!("the id_token could not be verified: {e}")),
    })?;
    Ok(data.claims)
}

/// What an API key that is a JWT says about itself, read WITHOUT checking its signature: the key is
/// ours to send, not to trust, so only its own claims about when it expires are read (through
/// `jsonwebtoken`, not a hand-made base64 split). `exp` is seconds since the Unix epoch, UTC by
/// definition (RFC 7519 §2 NumericDate): no local time zone is involved anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnverifiedKeyClaims {
    /// `exp`, when present and a non-negative integer.
    pub expires_at: Option<u64>,
    /// `sub` or `username`/`name` when present (never a credential).
    pub subject: Option<String>,
}

/// Reads `exp` (and a subject) from a JWT without verifying it; `None` when `token` is no JWT
/// (static keys of other shapes: ArcGIS API keys, opaque strings).
pub fn unverified_key_claims(token: &str) -> Option<UnverifiedKeyClaims> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    let subject = ["username", "preferred_username", "name", "email", "sub"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(Value::as_str).map(String::from));
    Some(UnverifiedKeyClaims { expires_at: claims.get("exp").and_then(Value::as_u64), subject })
}

/// What the claims of an id_token must say (OpenID Connect Core §3.1.3.7).
pub struct Expectations<'a> {
    /// The issuer the token must name.
    pub issuer: &'a str,
    /// This client, which must be in the audience.
    pub client_id: &'a str,
    /// The login's nonce; `None` for tokens from refresh or the device flow.
    pub nonce: Option<&'a str>,
    /// The subject of the earlier id_token, which a refreshed one must repeat.
    pub subject: Option<&'a str>,
    /// Now (Unix seconds), from the engine's clock.
    pub now: u64,
}

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 60;

/// Checks issuer, audience, authorized party, expiry, nonce and subject.
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
    use jsonwebtoken::{encode, EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    /// An API key's `exp` is read without any key (whatever signs it), as UTC seconds; keys that are
    /// no JWT, or JWTs without a numeric `exp`, have no expiry; garbage is no JWT.
    #[test]
    fn an_api_keys_expiry_is_read_without_verifying_it() {
        let (key, _) = ec_key("k");
        // `sign` installs the crypto provider: run alone (`cargo test api_key`), a bare `encode` panicked.
        let token = sign(Algorithm::ES256, "k", &key, &json!({"exp": 1_767_225_600u64, "username": "ci"}));
        let claims = unverified_key_claims(&token).unwrap();
        assert_eq!((claims.expires_at, claims.subject.as_deref()), (Some(1_767_225_600), Some("ci")));
        let unsigned = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(br#"{"exp":"soon"}"#));
        assert_eq!(unverified_key_claims(&unsigned).map(|c| c.expires_at), Some(None));
        for not_a_jwt in ["AAPTxy-arcgis-key", "a.b.c", "", "...."] {
            assert_eq!(unverified_key_claims(not_a_jwt), None, "{not_a_jwt}");
        }
    }

    /// A fresh P-256 key: its PKCS#8 form for signing and its JWK.
    fn ec_key(kid: &str) -> (EncodingKey, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let public = pair.public_key().as_ref();
        let jwk = json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig","x":b64url(&public[1..33]),"y":b64url(&public[33..])});
        (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    /// The throw-away RSA key of testdata/rsa-test-key.txt: for signing, its JWK, and its modulus bytes.
    fn rsa_key(kid: &str) -> (EncodingKey, Value, Vec<u8>) {
        let text = include_str!("testdata/rsa-test-key.txt");
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let (der, n, e) = (lines.next().unwrap(), lines.next().unwrap(), lines.next().unwrap());
        let der = base64::engine::general_purpose::STANDARD.decode(der).unwrap();
        let jwk = json!({"kty":"RSA","kid":kid,"alg":"RS256","n":n,"e":e});
        (EncodingKey::from_rsa_der(&der), jwk, URL_SAFE_NO_PAD.decode(n).unwrap())
    }

    fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
        ring_provider::install();
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        encode(&header, claims, key).unwrap()
    }

    fn jwks(keys: &[&Value]) -> Value {
        json!({ "keys": keys })
    }

    fn claims() -> Value {
        json!({"iss":"http://i","aud":"c","exp":2000,"nonce":"n","sub":"alice"})
    }

    fn refused(token: &str, jwks: &Value) -> String {
        verify_signature(token, jwks).expect_err("must be refused").to_string()
    }

    #[test]
    fn es256_signature_and_claims() {
        let (key, jwk) = ec_key("k1");
        let token = sign(Algorithm::ES256, "k1", &key, &claims());
        let set = jwks(&[&jwk]);
        let got = verify_signature(&token, &set).unwrap();
        let want = Expectations { issuer: "http://i/", client_id: "c", nonce: Some("n"), subject: None, now: 1000 };
        check_claims(&got, &want).unwrap();
        assert!(check_claims(&got, &Expectations { client_id: "other", ..want }).is_err());
        assert!(check_claims(&got, &Expectations { nonce: Some("m"), ..want }).is_err());
        assert!(check_claims(&got, &Expectations { subject: Some("bob"), ..want }).is_err());

        let mut tampered = token.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(verify_signature(&tampered, &set).is_err());
        let (_, other) = ec_key("k1");
        assert!(refused(&token, &jwks(&[&other])).contains("signature does not match"));
    }

    #[test]
    fn rs256_signature_with_an_unreadable_key_beside_it() {
        let (key, jwk, _) = rsa_key("r1");
        let token = sign(Algorithm::RS256, "r1", &key, &claims());
        // A key of a type this crate does not read must not spoil the set.
        let odd = json!({"kty":"XYZ","kid":"odd"});
        let got = verify_signature(&token, &jwks(&[&odd, &jwk])).unwrap();
        assert_eq!(got["sub"], "alice");
        // A key that names another algorithm is not used for this one.
        let mut ps = jwk.clone();
        ps["alg"] = json!("PS256");
        assert!(refused(&token, &jwks(&[&ps])).contains("no RS256 signing key"));
        // Nor is an encryption key.
        let mut enc = jwk.clone();
        enc["use"] = json!("enc");
        assert!(refused(&token, &jwks(&[&enc])).contains("no RS256 signing key"));
    }

    /// HS256 "signed" with the issuer's public RSA key as the shared secret: a verifier that let
    /// the token pick the algorithm would accept it.
    #[test]
    fn algorithm_confusion_is_refused() {
        let (_, jwk, modulus) = rsa_key("r1");
        let set = jwks(&[&jwk]);
        let n_text = jwk["n"].as_str().unwrap().as_bytes().to_vec();
        for secret in [modulus, n_text, jwk.to_string().into_bytes()] {
            let forged = sign(Algorithm::HS256, "r1", &EncodingKey::from_secret(&secret).unwrap(), &claims());
            assert!(refused(&forged, &set).contains("`HS256`"), "{forged}");
        }
        // The same with an `oct` key in the JWKS under the token's kid.
        let oct = json!({"kty":"oct","kid":"h","k":b64url(b"shared")});
        let forged = sign(Algorithm::HS256, "h", &EncodingKey::from_secret(b"shared").unwrap(), &claims());
        assert!(verify_signature(&forged, &jwks(&[&oct, &jwk])).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let (_, jwk) = ec_key("k1");
        let body = b64url(claims().to_string().as_bytes());
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"none","kid":"k1"}"#, r#"{"alg":"None","typ":"JWT"}"#] {
            let unsigned = format!("{}.{body}.", b64url(header.as_bytes()));
            let err = refused(&unsigned, &jwks(&[&jwk]));
            assert!(err.contains("never `none`"), "{err}");
        }
    }

    #[test]
    fn a_key_of_the_wrong_type_is_refused() {
        let (ec_signer, ec_jwk) = ec_key("same");
        let (rsa_signer, mut rsa_jwk, _) = rsa_key("same");
        rsa_jwk.as_object_mut().unwrap().remove("alg");
        // An ES256 token whose kid names only an RSA key, and the other way round.
        let es = sign(Algorithm::ES256, "same", &ec_signer, &claims());
        assert!(refused(&es, &jwks(&[&rsa_jwk])).contains("no ES256 signing key"));
        let rs = sign(Algorithm::RS256, "same", &rsa_signer, &claims());
        assert!(refused(&rs, &jwks(&[&ec_jwk])).contains("no RS256 signing key"));
        // An ES384 header over a P-256 key fails the signature check, not a panic.
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("same".into());
        let token = encode(&header, &claims(), &ec_signer).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let relabelled = format!("{}.{rest}", b64url(br#"{"alg":"ES384","kid":"same"}"#));
        assert!(verify_signature(&relabelled, &jwks(&[&ec_jwk])).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let (key, jwk) = ec_key("k1");
        let set = jwks(&[&jwk]);
        let want = Expectations { issuer: "http://i", client_id: "c", nonce: None, subject: None, now: 1000 };
        let got = verify_signature(&sign(Algorithm::ES256, "k1", &key, &claims()), &set).unwrap();
        // exp 2000: valid until the leeway runs out, refused after.
        assert!(check_claims(&got, &Expectations { now: 2000 + LEEWAY_SECS - 1, ..want }).is_ok());
        let err = check_claims(&got, &Expectations { now: 2000 + LEEWAY_SECS, ..want }).unwrap_err().to_string();
        assert!(err.contains("expired at"), "{err}");
        // No exp at all is refused too; so is an exp that is not a number.
        for exp in [json!(null), json!("2000")] {
            let mut c = claims();
            c["exp"] = exp;
            let got = verify_signature(&sign(Algorithm::ES256, "k1", &key, &c), &set).unwrap();
            assert!(check_claims(&got, &want).is_err());
        }
    }
}
