//! Fleets: one login shared by many hosts through a versioned store (Vault / OpenBao KV v2 first).
//! The store holds one record per profile: age ciphertext to the profile's recipients, a plaintext
//! claim (who refreshes now) and a generation; check-and-set writes elect the one refresher.

mod settings;
mod vault;

pub use settings::{StorePin, StoreSettings};
pub use vault::VaultKv;

use crate::error::{Error, Result, StoreErrorKind};
use crate::secret::Secret;
use crate::token::TokenSet;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Read as _;
use std::sync::Arc;

/// What a backend must offer: read one versioned record, write it only if its version is still N.
/// Claims and fencing live above this, so etcd or Kubernetes Secrets can follow as adapters.
pub trait CasStore: Send + Sync {
    /// Where the record is, for messages (no secret).
    fn describe(&self) -> String;
    /// The record with its version (0 and `None` when absent) and the store's clock.
    fn read(&self) -> Result<Read>;
    /// Writes `record` if the current version is `version` (0: only if absent).
    fn write_if(&self, version: u64, record: &Map<String, Value>) -> Result<Written>;
}

/// One read of the record.
#[derive(Debug, Clone)]
pub struct Read {
    /// The current version; 0 when there is none.
    pub version: u64,
    /// The record, `None` when absent (or its newest version deleted).
    pub record: Option<Map<String, Value>>,
    /// When this version was written, by the store's clock (Unix seconds).
    pub written_at: Option<u64>,
    /// The store's time when it answered (Unix seconds), from its `Date` header.
    pub store_now: Option<u64>,
}

/// The outcome of a check-and-set write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written; this is the new version (the writer's fencing token).
    Done {
        /// The version just written.
        version: u64,
    },
    /// The version had moved on: someone else wrote first.
    Conflict,
}

/// Schema name of the plaintext record.
pub const RECORD_SCHEMA: &str = "age-oauth/fleet/1";
/// Largest generation a record may carry (2^53, JSON's exact integers): far beyond any real count of publishes.
const MAX_GENERATION: u64 = 1 << 53;
/// Schema name of the login inside the ciphertext.
const LOGIN_SCHEMA: &str = "age-oauth/fleet-login/1";

/// The record as the store sees it: nothing secret in clear.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// [`RECORD_SCHEMA`].
    pub schema: String,
    /// Generation of the login: +1 at every publish (a plaintext copy of the one inside `ct`).
    pub gen: u64,
    /// The login ([`SharedLogin`]), age-encrypted to the profile's recipients, base64.
    pub ct: String,
    /// Who is refreshing right now, if anyone.
    #[serde(default)]
    pub claim: Option<Claim>,
    /// The server refused the shared refresh token: every host stops until someone signs in again.
    #[serde(default)]
    pub needs_login: bool,
    /// When the shared access token expires (Unix seconds), for `store status` without decrypting.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// A refresher's claim; its age is judged by the store's clock (the version's write time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Host, process and key of the holder.
    pub holder: String,
    /// Random, so two claims by one holder differ.
    pub nonce: String,
    /// Seconds the claim lasts after its last write.
    pub ttl_s: u64,
}

/// The login inside the ciphertext, bound to one profile and store (age has no associated data).
#[derive(Clone, Serialize, Deserialize)]
pub struct SharedLogin {
    schema: String,
    /// The profile it belongs to.
    pub profile: String,
    /// The store URL it was published to.
    pub store: String,
    /// Its generation.
    pub gen: u64,
    /// The tokens.
    pub tokens: TokenSet,
    /// Who published it.
    pub updated_by: String,
}

impl Record {
    /// The record read from the store, checked.
    pub fn from_map(map: &Map<String, Value>) -> Result<Record> {
        let record: Record = serde_json::from_value(Value::Object(map.clone()))
            .map_err(|e| Error::server(format!("the fleet record is not one age-oauth wrote ({e})")))?;
        if record.schema != RECORD_SCHEMA {
            return Err(Error::server(format!("the fleet record has schema `{}`, not {RECORD_SCHEMA}", record.schema)));
        }
        if record.gen > MAX_GENERATION {
            // Generations count publishes; one this large was not written by age-oauth (and `gen + 1` must not overflow).
            return Err(Error::server(format!(
                "the fleet record's generation {} is absurd (more than {MAX_GENERATION}); it was not used",
                record.gen
            )));
        }
        Ok(record)
    }

    /// The record as written to the store.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        }
    }

    /// A record holding `login`, encrypted to `recipients`, with no claim.
    pub fn sealed(login: &SharedLogin, recipients: &[age::x25519::Recipient]) -> Result<Record> {
        let plain = serde_json::to_vec(login).map_err(|e| Error::Other(format!("cannot encode the login: {e}")))?;
        let ct = crate::store::encrypt_to(&plain, recipients)?;
        Ok(Record {
            schema: RECORD_SCHEMA.into(),
            gen: login.gen,
            ct: base64::engine::general_purpose::STANDARD.encode(ct),
            claim: None,
            needs_login: false,
            expires_at: login.tokens.expires_at,
        })
    }

    /// Decrypts the login with this host's identity and checks it belongs to `profile` at `store`.
    pub fn open(&self, identity: &age::x25519::Identity, profile: &str, store: &str) -> Result<SharedLogin> {
        let damaged =
            |why: &str| Error::store(StoreErrorKind::Damaged, format!("the fleet record of profile '{profile}' {why}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.ct.trim())
            .map_err(|_| damaged("is not base64 age"))?;
        let decryptor = age::Decryptor::new_buffered(&bytes[..]).map_err(|_| damaged("holds no age ciphertext"))?;
        let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => Error::store(
                StoreErrorKind::WrongKey,
                format!(
                    "this host's key {} is not among the recipients of the fleet record of profile '{profile}'; add it \
                     to [profiles.{profile}.store].recipients, then publish from a host that can read it \
                     (`age-oauth store push --profile {profile} --force` or `age-oauth login --profile {profile}`)",
                    identity.to_public()
                ),
            ),
            _ => damaged("does not decrypt (truncated or altered)"),
        })?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain).map_err(|_| damaged("is truncated or altered"))?;
        let login: SharedLogin =
            serde_json::from_slice(&plain).map_err(|_| damaged("holds no login this version understands"))?;
        if login.schema != LOGIN_SCHEMA || login.profile != profile || login.store != store {
            return Err(damaged(&format!(
                "holds the login of profile '{}' at {} (copied from elsewhere?); nothing was used",
                login.profile,
                crate::redact::url(&login.store)
            )));
        }
        Ok(login)
    }
}

impl SharedLogin {
    /// A login of `profile` at `store`, generation `gen`.
    pub fn new(profile: &str, store: &str, gen: u64, tokens: TokenSet, updated_by: &str) -> SharedLogin {
        SharedLogin {
            schema: LOGIN_SCHEMA.into(),
            profile: profile.into(),
            store: store.into(),
            gen,
            tokens,
            updated_by: updated_by.into(),
        }
    }
}

/// A claim by this process.
pub fn new_claim(holder: &str, ttl_s: u64) -> Claim {
    use rand::RngCore;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    Claim { holder: holder.into(), nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(), ttl_s }
}

/// This process as a claim holder: host name, process id, and the end of its age key (hosts
/// simulated on one machine differ by key).
pub fn holder_id(public_key: Option<&str>) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let key = public_key.map(|k| format!(" key …{}", &k[k.len().saturating_sub(8)..])).unwrap_or_default();
    format!("{host} pid {}{key}", std::process::id())
}

/// The age of the claim in `read` by the store's clock, when both times are known.
pub fn claim_age(read: &Read) -> Option<u64> {
    Some(read.store_now?.saturating_sub(read.written_at?))
}

/// The Vault token: `token_file`, else VAULT_TOKEN, then BAO_TOKEN. Returns it with where it came from.
pub fn vault_token(settings: &StoreSettings, env: &crate::env::Env, profile: &str) -> Result<(Secret, String)> {
    if let Some(file) = settings.token_file.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        if !std::path::Path::new(file).is_absolute() {
            // A relative path would be read from whatever directory the command runs in.
            return Err(Error::Config(format!(
                "profile '{profile}': store.token_file `{file}` must be an absolute path (e.g. /run/bao-agent/token)"
            )));
        }
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::Config(format!("profile '{profile}': store.token_file {file}: cannot read it ({e})"))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Error::Config(format!("profile '{profile}': store.token_file {file} is empty")));
        }
        return Ok((Secret::new(token), format!("token_file {file}")));
    }
    for var in [&crate::env::VAULT_TOKEN, &crate::env::BAO_TOKEN] {
        if let Some(v) = env.get(var).map(str::trim).filter(|v| !v.is_empty()) {
            return Ok((Secret::new(v), var.name.to_string()));
        }
    }
    Err(Error::Config(format!(
        "profile '{profile}' shares its login through a fleet store, but no Vault token was found: set \
         [profiles.{profile}.store].token_file, or VAULT_TOKEN (or BAO_TOKEN)"
    )))
}

/// The adapter for a profile's store settings, over `http`.
pub fn open(
    settings: &StoreSettings,
    http: Arc<dyn crate::http::HttpClient>,
    env: &crate::env::Env,
    profile: &str,
) -> Result<Arc<dyn CasStore>> {
    let url = settings.parse_url(profile)?;
    let (token, source) = vault_token(settings, env, profile)?;
    Ok(Arc::new(VaultKv::new(http, &url.base, &settings.mount, &url.path, token, source)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(profile: &str, store: &str) -> SharedLogin {
        SharedLogin::new(profile, store, 3, TokenSet::new(Secret::new("at-SECRET"), 1), "test")
    }

    #[test]
    fn a_sealed_record_holds_nothing_in_clear_and_opens_only_for_recipients_of_its_profile() {
        let (a, b) = (age::x25519::Identity::generate(), age::x25519::Identity::generate());
        let record = Record::sealed(&login("p", "vault+http://127.0.0.1:1/x"), &[a.to_public()]).unwrap();
        let raw = serde_json::to_string(&record.to_map()).unwrap();
        assert!(!raw.contains("at-SECRET"), "{raw}");
        assert_eq!(record.gen, 3);
        assert_eq!(
            record.open(&a, "p", "vault+http://127.0.0.1:1/x").unwrap().tokens.access_token.expose(),
            "at-SECRET"
        );
        let err = record.open(&b, "p", "vault+http://127.0.0.1:1/x").err().unwrap();
        assert!(err.to_string().contains("not among the recipients"), "{err}");
        assert!(record.open(&a, "q", "vault+http://127.0.0.1:1/x").is_err(), "another profile's record is refused");
        assert!(record.open(&a, "p", "vault+http://127.0.0.1:1/y").is_err(), "another store's record is refused");
        assert_eq!(Record::from_map(&record.to_map()).unwrap(), record);
    }

    #[test]
    fn the_vault_token_comes_from_an_absolute_token_file_then_vault_token_then_bao_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s.from-file\n").unwrap();
        let mut settings = StoreSettings {
            url: "vault+http://127.0.0.1:1/a".into(),
            mount: "secret".into(),
            token_file: Some(file.display().to_string()),
            ca_file: None,
            recipients: vec![],
            claim_ttl: 30,
        };
        let env = crate::env::Env::from_pairs([("VAULT_TOKEN", "s.vault"), ("BAO_TOKEN", "s.bao")]);
        assert_eq!(vault_token(&settings, &env, "p").unwrap().0.expose(), "s.from-file");
        settings.token_file = Some("token".into());
        let err = vault_token(&settings, &env, "p").err().unwrap();
        assert!(
            err.to_string().contains("absolute path") && err.exit_code() == 2,
            "relative: read from the cwd: {err}"
        );
        settings.token_file = None;
        assert_eq!(vault_token(&settings, &env, "p").unwrap().1, "VAULT_TOKEN");
        let bao = crate::env::Env::from_pairs([("BAO_TOKEN", "s.bao")]);
        assert_eq!(vault_token(&settings, &bao, "p").unwrap().0.expose(), "s.bao");
        let none = crate::env::Env::from_pairs(Vec::<(String, String)>::new());
        assert!(vault_token(&settings, &none, "p").err().unwrap().to_string().contains("VAULT_TOKEN"));
    }

    #[test]
    fn garbage_truncated_or_absurd_records_are_refused_with_a_clear_error_not_a_panic() {
        let a = age::x25519::Identity::generate();
        let store = "vault+http://127.0.0.1:1/x";
        let good = Record::sealed(&login("p", store), &[a.to_public()]).unwrap();
        let mut absurd = good.to_map();
        absurd.insert("gen".into(), Value::from(u64::MAX));
        let err = Record::from_map(&absurd).unwrap_err();
        assert!(err.to_string().contains("absurd") && err.exit_code() == 4, "{err}");
        let mut missing = good.to_map();
        missing.remove("ct");
        assert!(Record::from_map(&missing).unwrap_err().to_string().contains("not one age-oauth wrote"));
        let mut negative = good.to_map();
        negative.insert("gen".into(), Value::from(-1));
        assert_eq!(Record::from_map(&negative).unwrap_err().exit_code(), 4);
        let mut truncated = good.clone();
        truncated.ct.truncate(truncated.ct.len() / 2);
        let err = truncated.open(&a, "p", store).err().unwrap();
        assert!(err.to_string().contains("fleet record of profile 'p'"), "{err}");
        let mut not_base64 = good;
        not_base64.ct = "<html>".into();
        assert!(not_base64.open(&a, "p", store).err().unwrap().to_string().contains("not base64"));
    }
}
