//! `[profiles.P.store]`: where a fleet's shared login lives, who may read it, how long a claim lasts.
//! Parsed and checked here; the URL, mount, CA file and recipients are part of the trust binding.

use crate::error::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A profile's fleet store: a Vault / OpenBao KV v2 record shared by every host of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `vault+https://HOST:PORT/PATH` (the record's path under the mount); `vault+http://` only for loopback.
    pub url: String,
    /// The KV v2 mount (default `secret`).
    #[serde(default = "default_mount")]
    pub mount: String,
    /// A file holding the Vault token (else VAULT_TOKEN, then BAO_TOKEN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// A PEM CA bundle to verify the store's certificate with (default: the system's trust store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Every host's age public key (`age-oauth key show`): the shared login is encrypted to exactly these.
    pub recipients: Vec<String>,
    /// Seconds a refresher may hold its claim before another host may take over (default 30).
    #[serde(default = "default_claim_ttl")]
    pub claim_ttl: u64,
}

fn default_mount() -> String {
    "secret".into()
}

fn default_claim_ttl() -> u64 {
    30
}

/// The parts of a store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// `https://host:port` (or `http://` on loopback), without a trailing slash.
    pub base: String,
    /// The record's path under the mount, e.g. `age-oauth/prod`.
    pub path: String,
}

/// Longest claim TTL accepted (an hour): a dead holder must not block a fleet for longer.
const MAX_CLAIM_TTL: u64 = 3_600;

impl StoreSettings {
    /// Checks the settings and splits the URL. `profile` names the profile in errors.
    pub fn parse_url(&self, profile: &str) -> Result<StoreUrl> {
        let bad = |why: &str| {
            Error::Config(format!("profile '{profile}': store.url `{}`: {why}", crate::redact::url(&self.url)))
        };
        let rest = self
            .url
            .strip_prefix("vault+https://")
            .map(|r| ("https", r))
            .or_else(|| self.url.strip_prefix("vault+http://").map(|r| ("http", r)));
        let Some((scheme, rest)) = rest else {
            return Err(bad("must start with vault+https:// (or vault+http:// on loopback)"));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let base = format!("{scheme}://{authority}");
        let origin = crate::binding::Origin::of_url(&base).ok_or_else(|| bad("no host in it"))?;
        if authority.contains('@') || path.contains('?') || path.contains('#') {
            return Err(bad(
                "no user, query or fragment, please: the Vault token comes from token_file or VAULT_TOKEN",
            ));
        }
        if scheme == "http" && !crate::settings::is_loopback_host(&origin.host) {
            return Err(bad("vault+http:// is only allowed for loopback; use vault+https://"));
        }
        let path = path.trim_matches('/').to_string();
        if path.is_empty() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(bad(
                "name the record's path after the host, e.g. vault+https://vault.example.com:8200/age-oauth/prod",
            ));
        }
        if self.mount.trim_matches('/').is_empty() || self.mount.contains("..") {
            return Err(Error::Config(format!("profile '{profile}': store.mount must name a KV v2 mount")));
        }
        if !(1..=MAX_CLAIM_TTL).contains(&self.claim_ttl) {
            return Err(Error::Config(format!(
                "profile '{profile}': store.claim_ttl must be 1 to {MAX_CLAIM_TTL} seconds, got {}",
                self.claim_ttl
            )));
        }
        Ok(StoreUrl { base, path })
    }

    /// The recipients, parsed; an empty list or a malformed key is a configuration error.
    pub fn recipients(&self, profile: &str) -> Result<Vec<age::x25519::Recipient>> {
        crate::headless::parse_recipients(
            &self.recipients.join("\n"),
            &format!("profile '{profile}': store.recipients"),
        )
    }

    /// The CA bundle to verify the store with, if any.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.ca_file.as_deref().filter(|f| !f.trim().is_empty()).map(PathBuf::from)
    }

    /// What the trust binding records of these settings: the URL and mount (where the Vault token and
    /// the ciphertext go), the CA bundle's content and the recipients (who may read the login).
    pub fn pin(&self) -> StorePin {
        let ca_sha256 = self.ca_path().map(|p| match std::fs::read(&p) {
            Ok(bytes) => crate::binding::sha256_hex(&bytes),
            Err(_) => format!("unreadable:{}", p.display()),
        });
        let mut recipients: Vec<String> = self.recipients.iter().map(|r| r.trim().to_string()).collect();
        recipients.sort();
        recipients.dedup();
        StorePin {
            url: self.url.trim().to_string(),
            mount: self.mount.trim_matches('/').to_string(),
            ca_sha256,
            recipients,
            token_file: self.token_file.as_deref().map(str::trim).filter(|f| !f.is_empty()).map(str::to_string),
        }
    }
}

/// A fleet store as bound into a login: changing any part needs `login --force`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorePin {
    /// The store URL as configured.
    pub url: String,
    /// The KV v2 mount.
    pub mount: String,
    /// SHA-256 of the CA bundle the store is verified with, if one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_sha256: Option<String>,
    /// The recipients, sorted.
    pub recipients: Vec<String>,
    /// The token file the Vault token is read from, if one is set: a working directory naming another
    /// file would otherwise make this host present whatever that file holds as its Vault token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
}

impl StorePin {
    /// One line for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (mount {}, {} recipient(s){}{})",
            crate::redact::url(&self.url),
            self.mount,
            self.recipients.len(),
            if self.ca_sha256.is_some() { ", own CA file" } else { "" },
            self.token_file.as_deref().map(|f| format!(", token file {f}")).unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> StoreSettings {
        StoreSettings {
            url: url.into(),
            mount: default_mount(),
            token_file: None,
            ca_file: None,
            recipients: vec![],
            claim_ttl: 30,
        }
    }

    #[test]
    fn urls_split_into_base_and_path_and_plain_http_is_loopback_only() {
        let u = settings("vault+https://vault.example.com:8200/age-oauth/prod").parse_url("p").unwrap();
        assert_eq!((u.base.as_str(), u.path.as_str()), ("https://vault.example.com:8200", "age-oauth/prod"));
        assert!(settings("vault+http://127.0.0.1:8200/a/b").parse_url("p").is_ok());
        for bad in [
            "vault+http://vault.example.com/a",
            "https://vault.example.com/a",
            "vault+https://vault.example.com",
            "vault+https://vault.example.com/a/../b",
            "vault+https://u:p@vault.example.com/a",
            "vault+https://vault.example.com/a?x=1",
        ] {
            let err = settings(bad).parse_url("p").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
            assert!(!err.to_string().contains(":p@"), "no password echoed: {err}");
        }
        let mut zero = settings("vault+https://v.example/a");
        zero.claim_ttl = 0;
        assert!(zero.parse_url("p").unwrap_err().to_string().contains("claim_ttl"));
    }

    #[test]
    fn the_pin_changes_with_url_mount_and_recipients_not_their_order() {
        let mut a = settings("vault+https://v.example/a");
        a.recipients = vec!["age1b".into(), "age1a".into()];
        let mut b = a.clone();
        b.recipients.reverse();
        assert_eq!(a.pin(), b.pin());
        b.recipients.push("age1c".into());
        assert_ne!(a.pin(), b.pin());
        let mut c = a.clone();
        c.mount = "kv".into();
        assert_ne!(a.pin(), c.pin());
        let mut d = a.clone();
        d.token_file = Some("/elsewhere/token".into());
        assert_ne!(a.pin(), d.pin(), "another token file is another binding");
        assert!(d.pin().describe().contains("token file /elsewhere/token"));
    }
}
