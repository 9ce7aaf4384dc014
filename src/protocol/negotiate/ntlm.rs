//! NTLMv2 initiator messages (MS-NLMP): NEGOTIATE, reading the CHALLENGE, AUTHENTICATE with an NTLMv2
//! response — hand-written on RustCrypto `md4`/`md-5`/`hmac`; no signing or sealing, HTTP needs neither.

use crate::error::{Error, Result};
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const ALWAYS_SIGN: u32 = 0x0000_8000;
const EXTENDED_SESSION_SECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;
/// What we ask for: Unicode, NTLM with extended session security, target info for NTLMv2.
const FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSION_SECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_128
    | NEGOTIATE_56;
/// MsvAvTimestamp: when the server sends one, the LMv2 response must be zeros (MS-NLMP 3.1.5.1.2).
const AV_TIMESTAMP: u16 = 7;
const AV_EOL: u16 = 0;
/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET: u64 = 11_644_473_600;

/// The account NTLM authenticates: `DOMAIN\user`, or a user and an optional domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user name.
    pub user: String,
    /// The domain (may be empty).
    pub domain: String,
}

impl Account {
    /// `DOMAIN\user` splits; `user@REALM` stays whole (a UPN, sent with an empty domain
    /// unless `domain` is given), as Windows clients do.
    pub fn parse(username: &str, domain: Option<&str>) -> Account {
        match username.split_once('\\') {
            Some((d, u)) => Account { user: u.to_string(), domain: domain.unwrap_or(d).to_string() },
            None => Account { user: username.to_string(), domain: domain.unwrap_or_default().to_string() },
        }
    }
}

/// The first message (NEGOTIATE_MESSAGE): flags, no domain, no workstation.
pub fn negotiate() -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&FLAGS.to_le_bytes());
    m.extend_from_slice(&field(0, 32)); // domain
    m.extend_from_slice(&field(0, 32)); // workstation
    m
}

/// What the server's CHALLENGE_MESSAGE carries that the answer needs.
pub struct Challenge {
    flags: u32,
    server_challenge: [u8; 8],
    target_info: Vec<u8>,
}

/// A security buffer (length, length, offset). The parts are bounded by the server's own u16 fields;
/// should one still overflow, the saturated length makes the server refuse the message, never wrap.
fn field(len: usize, offset: usize) -> [u8; 8] {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
    let mut f = [0u8; 8];
    f[0..2].copy_from_slice(&len.to_le_bytes());
    f[2..4].copy_from_slice(&len.to_le_bytes());
    f[4..8].copy_from_slice(&offset.to_le_bytes());
    f
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a CHALLENGE_MESSAGE.
pub fn parse_challenge(message: &[u8]) -> Result<Challenge> {
    let bad = |why: &str| Error::server(format!("the server's NTLM challenge is malformed ({why})"));
    if message.len() < 48 || &message[..8] != SIGNATURE || u32_at(message, 8) != Some(2) {
        return Err(bad("not a CHALLENGE_MESSAGE"));
    }
    let flags = u32_at(message, 20).ok_or_else(|| bad("flags"))?;
    let server_challenge: [u8; 8] = message[24..32].try_into().map_err(|_| bad("challenge"))?;
    let len = u16_at(message, 40).ok_or_else(|| bad("target info"))? as usize;
    let offset = u32_at(message, 44).ok_or_else(|| bad("target info"))? as usize;
    let target_info = message.get(offset..offset + len).ok_or_else(|| bad("target info out of bounds"))?.to_vec();
    Ok(Challenge { flags, server_challenge, target_info })
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2: HMAC-MD5 keyed with MD4(UTF-16LE(password)) over UTF-16LE(UPPER(user) + domain).
fn response_key(account: &Account, password: &Secret) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16(password.expose()));
    hmac_md5(&nt_hash, &[&utf16(&(account.user.to_uppercase() + &account.domain))])
}

/// The server's MsvAvTimestamp, if its target info has one.
fn server_timestamp(target_info: &[u8]) -> Option<[u8; 8]> {
    let mut at = 0;
    while let (Some(id), Some(len)) = (u16_at(target_info, at), u16_at(target_info, at + 2)) {
        let value = target_info.get(at + 4..at + 4 + len as usize)?;
        match id {
            AV_EOL => return None,
            AV_TIMESTAMP => return value.try_into().ok(),
            _ => at += 4 + len as usize,
        }
    }
    None
}

/// NTProofStr followed by the client blob (MS-NLMP 3.3.2).
fn nt_response(key: &[u8; 16], challenge: &Challenge, timestamp: [u8; 8], client_challenge: [u8; 8]) -> Vec<u8> {
    let mut blob = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&timestamp);
    blob.extend_from_slice(&client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&challenge.target_info);
    blob.extend_from_slice(&[0; 4]);
    let proof = hmac_md5(key, &[&challenge.server_challenge, &blob]);
    [&proof[..], &blob].concat()
}

/// The AUTHENTICATE_MESSAGE answering `challenge`, with an NTLMv2 response. `client_challenge`
/// is random in use and fixed in tests; `now_unix` is used when the server sends no timestamp.
pub fn authenticate(
    challenge: &Challenge,
    account: &Account,
    password: &Secret,
    client_challenge: [u8; 8],
    now_unix: u64,
) -> Vec<u8> {
    let key = response_key(account, password);
    let timestamp = server_timestamp(&challenge.target_info)
        .unwrap_or_else(|| ((now_unix + FILETIME_UNIX_OFFSET) * 10_000_000).to_le_bytes());
    let nt_response = nt_response(&key, challenge, timestamp, client_challenge);
    let lm_response = [0u8; 24];

    let domain = utf16(&account.domain);
    let user = utf16(&account.user);
    let workstation: Vec<u8> = Vec::new();
    // Only flags both sides support; never KEY_EXCH/SIGN/SEAL (no session key is needed over HTTP).
    let flags = FLAGS & challenge.flags | NEGOTIATE_UNICODE;
    let header_len = 64;
    let mut payload = Vec::new();
    let mut fields = Vec::new();
    for part in [&lm_response[..], &nt_response, &domain, &user, &workstation, &[]] {
        fields.push(field(part.len(), header_len + payload.len()));
        payload.extend_from_slice(part);
    }
    let mut m = Vec::with_capacity(header_len + payload.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    for f in &fields {
        m.extend_from_slice(f);
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&payload);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// MS-NLMP 4.2.4 (NTLMv2 authentication) test vectors.
    #[test]
    fn ntlmv2_matches_the_specification_vectors() {
        let account = Account { user: "User".into(), domain: "Domain".into() };
        let password = Secret::new("Password");
        assert_eq!(hex(&response_key(&account, &password)), "0c868a403bfd7a93a3001ef22ef02e3f");
        // AV pairs of the spec's challenge: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", EOL.
        let mut target_info = Vec::new();
        for (id, text) in [(2u16, "Domain"), (1u16, "Server")] {
            let value = utf16(text);
            target_info.extend_from_slice(&id.to_le_bytes());
            target_info.extend_from_slice(&u16::try_from(value.len()).unwrap().to_le_bytes());
            target_info.extend_from_slice(&value);
        }
        target_info.extend_from_slice(&[0; 4]);
        let challenge = Challenge { flags: FLAGS, server_challenge: [1, 35, 69, 103, 137, 171, 205, 239], target_info };
        let key = response_key(&account, &password);
        let response = nt_response(&key, &challenge, [0; 8], [0xaa; 8]);
        assert_eq!(hex(&response[..16]), "68cd0ab851e51c96aabc927bebef6a1c");

        let message = authenticate(&challenge, &account, &password, [0xaa; 8], 0);
        assert_eq!(&message[..8], SIGNATURE);
        assert_eq!(u32_at(&message, 8), Some(3));
        let (nt_len, nt_offset) = (u16_at(&message, 20).unwrap() as usize, u32_at(&message, 24).unwrap() as usize);
        assert_eq!(nt_len, response.len());
        let user_offset = u32_at(&message, 40).unwrap() as usize;
        assert_eq!(&message[user_offset..user_offset + 8], &utf16("User")[..]);
        assert!(nt_offset >= 64);
    }

    #[test]
    fn accounts_and_challenges() {
        assert_eq!(Account::parse("EXAMPLE\\alice", None), Account { user: "alice".into(), domain: "EXAMPLE".into() });
        assert_eq!(Account::parse("alice@EXAMPLE.TEST", None).domain, "");
        assert_eq!(Account::parse("alice", Some("EXAMPLE")).domain, "EXAMPLE");
        let negotiate = negotiate();
        assert_eq!(negotiate.len(), 32);
        assert!(parse_challenge(&negotiate).is_err(), "a NEGOTIATE is not a CHALLENGE");
        assert!(parse_challenge(b"NTLMSSP\0\x02\0\0\0").is_err());
    }
}
