//! PKCE (RFC 7636, S256 only) and the random values flows need (`state`, `nonce`).
//! 32 random bytes, base64url without padding: 43 characters, as the RFC recommends.

use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh random value, base64url, for `state`, `nonce` and verifiers.
pub fn random_urlsafe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A PKCE (RFC 7636) verifier and its S256 challenge.
pub struct Pkce {
    /// The verifier, sent with the code redemption.
    pub verifier: Secret,
    /// Its S256 challenge, sent with the authorization request.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random verifier and its challenge.
    pub fn new() -> Self {
        let verifier = random_urlsafe(32);
        let challenge = challenge_s256(&verifier);
        Pkce { verifier: Secret::new(verifier), challenge }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

/// `BASE64URL(SHA256(verifier))`.
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let p = Pkce::new();
        assert_eq!(p.verifier.expose().len(), 43);
        assert_ne!(Pkce::new().verifier, p.verifier);
    }
}
