//! TOTP (RFC 6238) as Okta Verify and Google Authenticator compute it: HMAC-SHA-1 of the 30-second step,
//! dynamic truncation (RFC 4226 §5.3), six digits. SHA-1 is what the RFC and the apps use, not a choice.

use ring::hmac;

/// The time step, seconds.
const STEP: u64 = 30;

/// The `digits`-digit TOTP of `seed` at Unix time `unix`.
pub fn totp_code(seed: &[u8], unix: u64, digits: u32) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, seed);
    let tag = hmac::sign(&key, &(unix / STEP).to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    let code = binary % 10_u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// True when `code` is the 6-digit TOTP of `seed` at `unix` or one step either side (clock drift, as Okta allows).
pub(super) fn accepts(seed: &[u8], unix: u64, code: &str) -> bool {
    [unix.saturating_sub(STEP), unix, unix + STEP].iter().any(|&t| totp_code(seed, t, 6) == code.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 column.
    #[test]
    fn rfc_6238_test_vectors() {
        let seed = b"12345678901234567890";
        for (t, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_code(seed, t, 8), expected, "T={t}");
        }
        assert_eq!(totp_code(seed, 59, 6), "287082");
        assert!(accepts(seed, 89, "287082"), "one step of drift is allowed");
        assert!(!accepts(seed, 59, "287083"));
    }
}
