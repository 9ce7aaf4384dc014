//! Setting types shared by the engine and several providers, with their validation.
//! Each carries its JSON Schema, so the generated profile schema stays exact.

use crate::error::{Error, Result};
use crate::http::VerifySsl;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings every profile has, whatever its provider.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    /// Refresh when the access token has less than this many seconds left.
    #[serde(default = "default_refresh_margin")]
    pub refresh_margin: u64,
    /// TLS certificate verification: true (default), false (warned about), or the path of a PEM CA bundle.
    #[serde(default)]
    #[schemars(extend("x-prompt" = {"label": "Verify SSL", "order": 20, "check": "verify_ssl"}))]
    pub verify_ssl: VerifySslSetting,
    /// A fleet store (Vault / OpenBao KV v2) this profile's login is shared through by many hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::fleet::StoreSettings>,
}

fn default_refresh_margin() -> u64 {
    60
}

/// `verify_ssl = true | false | "/path/to/ca.pem"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum VerifySslSetting {
    Flag(bool),
    CaBundle(String),
}

impl Default for VerifySslSetting {
    fn default() -> Self {
        VerifySslSetting::Flag(true)
    }
}

impl VerifySslSetting {
    pub fn to_verify(&self) -> VerifySsl {
        match self {
            VerifySslSetting::Flag(true) => VerifySsl::On,
            VerifySslSetting::Flag(false) => VerifySsl::Off,
            VerifySslSetting::CaBundle(s) if s.eq_ignore_ascii_case("true") => VerifySsl::On,
            VerifySslSetting::CaBundle(s) if s.eq_ignore_ascii_case("false") => VerifySsl::Off,
            VerifySslSetting::CaBundle(path) => VerifySsl::CaBundle(path.into()),
        }
    }
}

/// A list setting (`scopes`): a TOML array of words, or one space-separated string — the string
/// form is what environment variables and `--set` carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct WordList(pub Vec<String>);

impl WordList {
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The space-separated form (as sent in an OAuth `scope` parameter).
    pub fn joined(&self) -> String {
        self.0.join(" ")
    }
}

impl From<WordList> for String {
    fn from(list: WordList) -> String {
        list.joined()
    }
}

impl From<&str> for WordList {
    fn from(text: &str) -> WordList {
        WordList(text.split_whitespace().map(String::from).collect())
    }
}

impl<'de> Deserialize<'de> for WordList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Items(Vec<String>),
        }
        let form = Form::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected a list of words: an array of strings or one space-separated string")
        })?;
        match form {
            Form::Text(text) => Ok(WordList::from(text.as_str())),
            Form::Items(items) => {
                let mut words = Vec::new();
                for item in items {
                    if item.trim().is_empty() || item.contains(char::is_whitespace) {
                        return Err(serde::de::Error::custom(format!(
                            "list item {item:?} is empty or holds a space; give each word as its own item"
                        )));
                    }
                    words.push(item);
                }
                Ok(WordList(words))
            }
        }
    }
}

impl JsonSchema for WordList {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WordList".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "type": "array", "items": { "type": "string", "pattern": "^\\S+$" } },
                { "type": "string" }
            ]
        })
    }
}

/// The longest `login_timeout` accepted: a day (a browser sign-in takes minutes).
pub const MAX_LOGIN_TIMEOUT: u64 = 86_400;

/// Refuses a `login_timeout` of 0 or beyond `MAX_LOGIN_TIMEOUT` (a value near the integer
/// maximum would overflow the deadline).
pub fn check_login_timeout(profile: &str, seconds: u64) -> Result<()> {
    if (1..=MAX_LOGIN_TIMEOUT).contains(&seconds) {
        return Ok(());
    }
    Err(Error::Config(format!(
        "profile '{profile}': field `login_timeout`: {seconds} is not a number of seconds from 1 to {MAX_LOGIN_TIMEOUT} (a day)"
    )))
}

/// True for 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// Checks a service URL: `https://`, or `http://` on a loopback host only.
/// Returns it without a trailing slash.
pub fn service_url(profile: &str, field: &str, url: &str) -> Result<String> {
    let uri: ureq::http::Uri =
        url.parse().map_err(|_| Error::Config(format!("profile '{profile}': `{field}` is not a URL: {url}")))?;
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => {}
        Some("http") if is_loopback_host(host) => {}
        Some("http") => {
            return Err(Error::Config(format!(
                "profile '{profile}': `{field}` uses http:// on a non-loopback host ({host}); tokens would travel in clear — use https://"
            )))
        }
        _ => {
            return Err(Error::Config(format!(
                "profile '{profile}': `{field}` must be an https:// URL (http:// only for 127.0.0.1/localhost), got {url}"
            )))
        }
    }
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            service_url("p", "portal", "https://gis.example.com/portal/").unwrap(),
            "https://gis.example.com/portal"
        );
        assert!(service_url("p", "portal", "http://127.0.0.1:8080/portal").is_ok());
        assert!(service_url("p", "portal", "http://[::1]:8080/portal").is_ok());
        assert!(service_url("p", "portal", "http://localhost/portal").is_ok());
        let err = service_url("p", "portal", "http://gis.example.com/portal").unwrap_err().to_string();
        assert!(err.contains("non-loopback"), "{err}");
        assert!(service_url("p", "portal", "ftp://x").is_err());
        assert!(service_url("p", "portal", "not a url").is_err());
    }

    #[test]
    fn word_lists_from_arrays_and_strings() {
        let from = |v: serde_json::Value| serde_json::from_value::<WordList>(v);
        assert_eq!(from(serde_json::json!(["openid", "offline_access"])).unwrap().joined(), "openid offline_access");
        assert_eq!(from(serde_json::json!("  openid   profile ")).unwrap().0, ["openid", "profile"]);
        assert!(from(serde_json::json!(["two words"])).is_err());
        assert!(from(serde_json::json!(3)).unwrap_err().to_string().contains("space-separated"));
        assert_eq!(serde_json::to_value(WordList::from("a b")).unwrap(), serde_json::json!("a b"));
    }

    #[test]
    fn verify_ssl_forms() {
        assert_eq!(VerifySslSetting::Flag(false).to_verify(), VerifySsl::Off);
        assert_eq!(VerifySslSetting::CaBundle("/ca.pem".into()).to_verify(), VerifySsl::CaBundle("/ca.pem".into()));
        assert_eq!(VerifySslSetting::default().to_verify(), VerifySsl::On);
    }
}
