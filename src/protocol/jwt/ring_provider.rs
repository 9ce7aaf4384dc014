//! A `jsonwebtoken` [`CryptoProvider`] whose cryptography is `ring`'s, which rustls already links in,
//! so that jsonwebtoken's own RustCrypto backend (rsa, p256, p384, ed25519-dalek, hmac) stays out of
//! the binary. Thin adapters from jsonwebtoken's signer/verifier traits onto `ring::signature` and
//! `ring::hmac`; no cryptography of our own. EdDSA is not offered (age-oauth never accepts it).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{Error as SigError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::{digest, hmac, signature as sig};

/// The provider; [`install`] makes it jsonwebtoken's process default.
static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(ErrorKind::InvalidRsaKey("not supported".into()).into()),
        rsa_pub_components_from_public_key: |_| Err(ErrorKind::InvalidRsaKey("not supported".into()).into()),
        ec_pub_components_from_private_key: |_, _| Err(ErrorKind::InvalidEcdsaKey.into()),
        ed_pub_components_from_private_key: |_, _: &EllipticCurve| Err(ErrorKind::InvalidEddsaKey.into()),
        compute_digest,
    },
};

/// Installs the `ring` provider as jsonwebtoken's process default, once; later calls do nothing.
/// Must run before any `jsonwebtoken::encode`/`decode` (the crate has no backend feature enabled).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is already installed, which then does the same job.
        let _ = RING_PROVIDER.install_default();
    });
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(digest::digest(alg, data).as_ref().to_vec())
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let (family, check): (AlgorithmFamily, Check) = match alg {
        Algorithm::HS256 => (AlgorithmFamily::Hmac, Check::Hmac(hmac::HMAC_SHA256)),
        Algorithm::HS384 => (AlgorithmFamily::Hmac, Check::Hmac(hmac::HMAC_SHA384)),
        Algorithm::HS512 => (AlgorithmFamily::Hmac, Check::Hmac(hmac::HMAC_SHA512)),
        Algorithm::RS256 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PKCS1_2048_8192_SHA256)),
        Algorithm::RS384 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PKCS1_2048_8192_SHA384)),
        Algorithm::RS512 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PKCS1_2048_8192_SHA512)),
        Algorithm::PS256 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PSS_2048_8192_SHA256)),
        Algorithm::PS384 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PSS_2048_8192_SHA384)),
        Algorithm::PS512 => (AlgorithmFamily::Rsa, Check::Rsa(&sig::RSA_PSS_2048_8192_SHA512)),
        Algorithm::ES256 => (AlgorithmFamily::Ec, Check::Ec(&sig::ECDSA_P256_SHA256_FIXED)),
        Algorithm::ES384 => (AlgorithmFamily::Ec, Check::Ec(&sig::ECDSA_P384_SHA384_FIXED)),
        // EdDSA and whatever later versions add: not offered.
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    // A key of another family than the algorithm's is refused outright (algorithm confusion).
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier { alg: *alg, check, key: key.clone() }))
}

/// Which `ring` primitive checks a signature.
enum Check {
    Hmac(hmac::Algorithm),
    Rsa(&'static sig::RsaParameters),
    Ec(&'static sig::EcdsaVerificationAlgorithm),
}

struct RingVerifier {
    alg: Algorithm,
    check: Check,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SigError> {
        let ok = match (&self.check, self.key.kind()) {
            (Check::Hmac(alg), DecodingKeyKind::SecretOrDer(secret)) => {
                hmac::verify(&hmac::Key::new(*alg, secret), msg, signature).is_ok()
            }
            // PKCS#1 RSAPublicKey DER (from_rsa_der / from_rsa_pem).
            (Check::Rsa(params), DecodingKeyKind::SecretOrDer(der)) => {
                sig::UnparsedPublicKey::new(*params, der).verify(msg, signature).is_ok()
            }
            // Modulus and exponent, as a JWK carries them.
            (Check::Rsa(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                sig::RsaPublicKeyComponents { n, e }.verify(params, msg, signature).is_ok()
            }
            // The uncompressed SEC1 point (from_ec_components / from_ec_der).
            (Check::Ec(alg), DecodingKeyKind::SecretOrDer(point)) => {
                sig::UnparsedPublicKey::new(*alg, point).verify(msg, signature).is_ok()
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(SigError::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let bytes = key.as_bytes();
    let rng = SystemRandom::new();
    let signing = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            if key.family() != AlgorithmFamily::Hmac {
                return Err(ErrorKind::InvalidKeyFormat.into());
            }
            let h = match alg {
                Algorithm::HS256 => hmac::HMAC_SHA256,
                Algorithm::HS384 => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            Signing::Hmac(hmac::Key::new(h, bytes))
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            if key.family() != AlgorithmFamily::Ec {
                return Err(ErrorKind::InvalidKeyFormat.into());
            }
            let e = if *alg == Algorithm::ES256 {
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            let pair = sig::EcdsaKeyPair::from_pkcs8(e, bytes, &rng).map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Signing::Ec(pair)
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            if key.family() != AlgorithmFamily::Rsa {
                return Err(ErrorKind::InvalidKeyFormat.into());
            }
            let encoding: &'static dyn sig::RsaEncoding = match alg {
                Algorithm::RS256 => &sig::RSA_PKCS1_SHA256,
                Algorithm::RS384 => &sig::RSA_PKCS1_SHA384,
                Algorithm::RS512 => &sig::RSA_PKCS1_SHA512,
                Algorithm::PS256 => &sig::RSA_PSS_SHA256,
                Algorithm::PS384 => &sig::RSA_PSS_SHA384,
                _ => &sig::RSA_PSS_SHA512,
            };
            // PKCS#1 RSAPrivateKey DER, as EncodingKey::from_rsa_der/pem holds it.
            let pair = sig::RsaKeyPair::from_der(bytes).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
            Signing::Rsa(pair, encoding)
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(RingSigner { alg: *alg, signing, rng }))
}

/// A `ring` signing key, ready for the algorithm it was made for.
enum Signing {
    Hmac(hmac::Key),
    Ec(sig::EcdsaKeyPair),
    Rsa(sig::RsaKeyPair, &'static dyn sig::RsaEncoding),
}

struct RingSigner {
    alg: Algorithm,
    signing: Signing,
    rng: SystemRandom,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SigError> {
        match &self.signing {
            Signing::Hmac(key) => Ok(hmac::sign(key, msg).as_ref().to_vec()),
            Signing::Ec(pair) => Ok(pair.sign(&self.rng, msg).map_err(|_| SigError::new())?.as_ref().to_vec()),
            Signing::Rsa(pair, encoding) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(*encoding, &self.rng, msg, &mut out).map_err(|_| SigError::new())?;
                Ok(out)
            }
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}
