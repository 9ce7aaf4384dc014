//! The trust rule: a credential goes only where it came from. A cache entry records the origins
//! (scheme, host, port) and the CA trust its secrets and tokens belong to; nothing is sent when a
//! profile's effective settings (a project file, `.env`, a variable) name others, until `login --force`.
//!
//! Discovered endpoints: what a provider learns from a bound origin over the bound TLS trust (OIDC
//! discovery of the bound issuer, ArcGIS `rest/info` of the bound server) is that origin's own word,
//! and is trusted as such; only the *settings* that name destinations are bound, since only they can
//! be changed by a working directory.

use crate::config::{self, Config};
use crate::engine::Session;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::settings::VerifySslSetting;
use crate::store::CacheEntry;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where a request goes: scheme, host (lower case) and port (explicit or the scheme's default).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// URL scheme (`https`, or `http` on loopback).
    pub scheme: String,
    /// Host name, lower case.
    pub host: String,
    /// Port, the scheme's default when the URL names none.
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute URL; `None` for anything else. User info (`user:pass@`) is dropped.
    pub fn of_url(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        let port = uri.port_u16().or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        })?;
        Some(Origin { scheme, host, port })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "{}://{host}:{}", self.scheme, self.port)
    }
}

/// One setting of a provider that names a destination, with the origin it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundOrigin {
    /// The setting that named the URL (`portal`, `issuer`, ...).
    pub setting: String,
    /// Where that setting points.
    pub origin: Origin,
}

/// What a provider's `origins()` returns for a setting holding `url` (already checked by
/// `settings::service_url`; an unparsable one becomes an origin nothing matches).
pub fn origin_of(setting: &str, url: &str) -> BoundOrigin {
    let origin = Origin::of_url(url).unwrap_or(Origin { scheme: "invalid".into(), host: String::new(), port: 0 });
    BoundOrigin { setting: setting.to_string(), origin }
}

/// The TLS trust a login was made with (`verify_ssl`). A CA bundle is recorded by the SHA-256 of
/// its content: another file with the same certificates is the same trust, the same path with
/// other content is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trust {
    /// `verify_ssl = true`: the built-in roots.
    Default,
    /// `verify_ssl = false`: nothing checked.
    Off,
    /// A CA bundle file, pinned by its content.
    CaBundle {
        /// The bundle's path as configured.
        path: String,
        /// SHA-256 of the bundle's bytes, hex.
        sha256: String,
    },
}

impl Trust {
    /// Reads and checks `verify_ssl` (a CA bundle must exist and hold a PEM certificate).
    pub fn of_setting(setting: &VerifySslSetting) -> Result<Trust> {
        use crate::http::VerifySsl;
        Ok(match setting.to_verify() {
            VerifySsl::On => Trust::Default,
            VerifySsl::Off => Trust::Off,
            VerifySsl::CaBundle(path) => {
                let pem = std::fs::read(&path).map_err(|e| {
                    Error::Config(format!("verify_ssl: cannot read the CA bundle {} ({e})", path.display()))
                })?;
                let certs = ureq::tls::parse_pem(&pem)
                    .filter(|item| matches!(item, Ok(ureq::tls::PemItem::Certificate(_))))
                    .count();
                if certs == 0 {
                    return Err(Error::Config(format!(
                        "verify_ssl: the CA bundle {} holds no PEM certificate",
                        path.display()
                    )));
                }
                Trust::CaBundle { path: path.display().to_string(), sha256: sha256_hex(&pem) }
            }
        })
    }

    fn describe(&self) -> String {
        match self {
            Trust::Default => "the default trusted roots".into(),
            Trust::Off => "no certificate checks (verify_ssl = false)".into(),
            Trust::CaBundle { path, sha256 } => {
                // The hash comes from a cache file: a short or crafted one must not panic.
                format!("the CA bundle {path} (sha256 {}…)", sha256.get(..12).unwrap_or(sha256))
            }
        }
    }

    fn same(&self, other: &Trust) -> bool {
        match (self, other) {
            (Trust::CaBundle { sha256: a, .. }, Trust::CaBundle { sha256: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a cache entry's secrets and tokens may travel, recorded when it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The origins the cached secrets may travel to.
    pub origins: Vec<BoundOrigin>,
    /// The TLS trust they travel under.
    pub trust: Trust,
    /// The fleet store the login is shared through (URL, mount, CA, recipients), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::fleet::StorePin>,
}

impl Binding {
    fn has(&self, origin: &Origin) -> bool {
        self.origins.iter().any(|b| &b.origin == origin)
    }

    /// Same destinations (as a set of origins) and the same trust.
    pub fn matches(&self, other: &Binding) -> bool {
        self.trust.same(&other.trust)
            && self.store == other.store
            && self.origins.iter().all(|b| other.has(&b.origin))
            && other.origins.iter().all(|b| self.has(&b.origin))
    }
}

/// The binding a session's effective settings ask for.
pub fn of_session(session: &Session) -> Binding {
    Binding {
        origins: session.provider.origins(),
        trust: session.profile.trust.clone(),
        store: store_pin(&session.profile),
    }
}

/// The fleet store a profile's settings name, as bound.
fn store_pin(profile: &config::ResolvedProfile) -> Option<crate::fleet::StorePin> {
    profile.engine.store.as_ref().map(crate::fleet::StoreSettings::pin)
}

/// `of_session`, refused when the provider names no origin at all: credentials whose
/// destination nobody can say are neither bound nor sent.
fn of_session_checked(session: &Session) -> Result<Binding> {
    let now = of_session(session);
    require_origins(session.name(), &now.origins)?;
    Ok(now)
}

/// Refuses an empty set of origins (a provider that cannot say where its tokens go).
fn require_origins(profile: &str, origins: &[BoundOrigin]) -> Result<()> {
    if origins.is_empty() {
        return Err(Error::Config(format!(
            "profile '{profile}': its provider names no origin its credentials may be sent to, so nothing is \
             bound or sent; set the provider's service URL (portal, server, issuer or url)"
        )));
    }
    Ok(())
}

/// Records the session's binding in an entry about to be written (the engine's writer calls this).
/// True when the entry was bound to other origins or another trust before (its tokens then belong
/// elsewhere: `profile add` drops them).
/// Refused (nothing recorded) when the provider names no origin.
pub fn bind(entry: &mut CacheEntry, session: &Session) -> Result<bool> {
    let now = of_session_checked(session)?;
    let rebound = recorded_in_entry(entry).is_some_and(|before| !before.matches(&now));
    record(entry, Some(now));
    Ok(rebound)
}

/// The one place an entry's binding is written: `binding`, or none (bound on load to the user
/// file). The service URL older caches kept is dropped, the binding replaces it.
pub fn record(entry: &mut CacheEntry, binding: Option<Binding>) {
    entry.binding = binding;
    entry.service = None;
}

/// What the entry itself records: its binding, or the one service URL caches of the previous
/// format kept (with the default trust). `None` for entries that record nothing.
pub fn recorded_in_entry(entry: &CacheEntry) -> Option<Binding> {
    entry.binding.clone().or_else(|| {
        entry.service.as_deref().map(|s| Binding {
            origins: vec![origin_of("service", s)],
            trust: Trust::Default,
            store: None,
        })
    })
}

/// The binding of profile `name` as the user file alone defines it (with defaults), or `None`
/// when the user file does not define a usable profile of that name.
pub fn user_file_binding(paths: &Paths, name: &str) -> Result<Option<Binding>> {
    let Some(config) = Config::load_user(paths)? else {
        return Ok(None);
    };
    if config.provider_of(name).is_none() {
        return Ok(None);
    }
    let Ok(profile) = config.resolve(name, &[]) else {
        return Ok(None);
    };
    let store = store_pin(&profile);
    let settings = crate::registry::ProfileSettings { profile: name.to_string(), values: profile.provider_values };
    let Ok(provider) = (profile.provider.build)(&settings) else {
        return Ok(None);
    };
    Ok(Some(Binding { origins: provider.origins(), trust: profile.trust, store }))
}

/// The binding an entry holds; entries written before bindings existed (older caches, imports,
/// migrations) are bound to the user file's settings, never to the working directory's.
pub fn recorded(entry: &CacheEntry, paths: &Paths) -> Result<Option<Binding>> {
    if let Some(b) = &entry.binding {
        return Ok(Some(b.clone()));
    }
    let user = user_file_binding(paths, &entry.profile)?;
    // Caches of the previous format recorded one service URL: it still counts.
    let legacy = entry.service.as_deref().map(|s| origin_of("service", s));
    Ok(match (user, legacy) {
        (Some(user), Some(service)) if !user.has(&service.origin) => {
            Some(Binding { origins: vec![service], trust: user.trust, store: user.store })
        }
        (Some(user), _) => Some(user),
        (None, Some(service)) => Some(Binding { origins: vec![service], trust: Trust::Default, store: None }),
        (None, None) => None,
    })
}

/// Refuses (exit 2, nothing sent) when the session's effective settings name other origins or
/// another trust than the entry's binding; the message names the setting and the layer it came from.
pub fn check(entry: &CacheEntry, session: &Session, paths: &Paths) -> Result<()> {
    let now = of_session_checked(session)?;
    let bound = match recorded(entry, paths)? {
        Some(b) => b,
        // Only secrets and tokens with a known home are ever sent.
        None if entry.secrets.is_empty() && entry.tokens.is_none() => return Ok(()),
        None => {
            return Err(Error::Config(format!(
                "profile '{0}': its cached credentials record no service, and {1} does not define the profile, so \
                 they are not sent anywhere; `age-oauth login --profile {0} --force` signs in again and binds them",
                session.name(),
                paths.config_file.display()
            )))
        }
    };
    if now.matches(&bound) {
        return Ok(());
    }
    Err(Error::Config(mismatch(session, &bound, &now)))
}

fn mismatch(session: &Session, bound: &Binding, now: &Binding) -> String {
    let name = session.name();
    let layer = |setting: &str| {
        session.profile.origins.get(setting).map(|o| format!(" (set by {})", layer_name(o))).unwrap_or_default()
    };
    let bound_list =
        bound.origins.iter().map(|b| format!("{} ({})", b.origin, b.setting)).collect::<Vec<_>>().join(", ");
    let consent = format!(
        "nothing was sent; if that is intended, `age-oauth login --profile {name} --force` signs in there \
         (stored secrets are then sent to it)"
    );
    if let Some(new) = now.origins.iter().find(|b| !bound.has(&b.origin)) {
        return format!(
            "profile '{name}': `{}` names {}{}, but its cached credentials belong to {bound_list}; {consent}",
            new.setting,
            new.origin,
            layer(&new.setting)
        );
    }
    if !now.trust.same(&bound.trust) {
        return format!(
            "profile '{name}': `verify_ssl` is now {}{}, but its cached credentials belong to a login that trusted {}; \
             {consent}",
            now.trust.describe(),
            layer("verify_ssl"),
            bound.trust.describe()
        );
    }
    if now.store != bound.store {
        let describe = |s: &Option<crate::fleet::StorePin>| {
            s.as_ref().map_or_else(|| "no fleet store".into(), crate::fleet::StorePin::describe)
        };
        return format!(
            "profile '{name}': `store` now names {}{}, but its cached credentials belong to a login shared through {}; \
             {consent}",
            describe(&now.store),
            layer("store"),
            describe(&bound.store)
        );
    }
    let gone = bound.origins.iter().find(|b| !now.has(&b.origin)).map(|b| format!("{} ({})", b.origin, b.setting));
    format!(
        "profile '{name}' no longer names {}, where its cached credentials belong; {consent}",
        gone.unwrap_or_default()
    )
}

/// The Vault token of a fleet profile is a credential of its own, outside the cache: it goes only to
/// the store the cache is bound to, or — on a host with no bound login yet (one that has only ever
/// adopted, or never run) — to the store the user file names. Refuses (exit 2, nothing sent) a store
/// that a project file, `.env` or the environment names instead.
pub fn check_store(entry: Option<&CacheEntry>, session: &Session, paths: &Paths) -> Result<()> {
    let now = store_pin(&session.profile);
    let (bound, whose) = match entry.and_then(recorded_in_entry) {
        Some(b) => (b.store, "this host's cached login belongs to".to_string()),
        None => (
            user_file_binding(paths, session.name())?.and_then(|b| b.store),
            format!("{} (the user file) names", paths.config_file.display()),
        ),
    };
    if now == bound {
        return Ok(());
    }
    let name = session.name();
    let layer =
        session.profile.origins.get("store").map(|o| format!(" (set by {})", layer_name(o))).unwrap_or_default();
    let describe = |s: &Option<crate::fleet::StorePin>| {
        s.as_ref().map_or_else(|| "no fleet store".into(), crate::fleet::StorePin::describe)
    };
    Err(Error::Config(format!(
        "profile '{name}': `store` names {}{layer}, but {whose} {}; nothing was sent (the Vault token goes only \
         there). Put the [profiles.{name}.store] table in {}, or `age-oauth login --profile {name} --force` signs in \
         and shares the login through the store now named",
        describe(&now),
        describe(&bound),
        paths.config_file.display()
    )))
}

fn layer_name(origin: &config::Origin) -> String {
    match origin {
        config::Origin::DotEnv(var) => format!("{var} in the working directory's .env"),
        config::Origin::Env(var) => format!("the environment variable {var}"),
        other => other.to_string(),
    }
}

/// Refuses a URL outside the origins the session's credentials belong to (`request` and the
/// library's authenticated requests), unless the caller allowed other hosts.
pub fn check_url(session: &Session, url: &str) -> Result<()> {
    check_url_among(session, &session.provider.origins(), url)
}

/// `check_url` against the provider's `origins`, computed once by a caller that checks many URLs
/// (the library client, on every request).
pub fn check_url_among(session: &Session, origins: &[BoundOrigin], url: &str) -> Result<()> {
    require_origins(session.name(), origins)?;
    let target = Origin::of_url(url);
    if target.as_ref().is_some_and(|t| origins.iter().any(|b| &b.origin == t)) {
        return Ok(());
    }
    let list = origins.iter().map(|b| format!("{} ({})", b.origin, b.setting)).collect::<Vec<_>>().join(", ");
    Err(Error::Config(format!(
        "refusing to send the credentials of profile '{}' to {}: they belong to {list}; pass --allow-other-host \
         if that is intended",
        session.name(),
        target.map(|t| t.to_string()).unwrap_or_else(|| crate::redact::url(url))
    )))
}

/// Resolves a relative CA bundle path against the directory of the file that set it.
pub fn resolve_relative(path: &str, base_dir: &Path) -> String {
    let p = Path::new(path);
    if p.is_absolute() {
        path.to_string()
    } else {
        base_dir.join(p).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_urls() {
        let o = Origin::of_url("https://GIS.example.com/portal").unwrap();
        assert_eq!((o.scheme.as_str(), o.host.as_str(), o.port), ("https", "gis.example.com", 443));
        assert_eq!(Origin::of_url("http://127.0.0.1:8080/x").unwrap().port, 8080);
        assert_eq!(Origin::of_url("http://user:pw@127.0.0.1:8080/x").unwrap().to_string(), "http://127.0.0.1:8080");
        assert_eq!(Origin::of_url("http://[::1]:9/").unwrap().to_string(), "http://[::1]:9");
        assert!(Origin::of_url("not a url").is_none());
        assert_ne!(Origin::of_url("https://a.example"), Origin::of_url("http://a.example:443"));
    }

    #[test]
    fn bindings_compare_as_sets_of_origins_and_trust() {
        let a =
            Binding { origins: vec![origin_of("issuer", "https://a.example/x")], trust: Trust::Default, store: None };
        let b = Binding {
            origins: vec![origin_of("issuer", "https://a.example"), origin_of("token_endpoint", "https://a.example/t")],
            trust: Trust::Default,
            store: None,
        };
        assert!(a.matches(&b));
        let c = Binding { origins: vec![origin_of("token_endpoint", "https://b.example/t")], ..b.clone() };
        assert!(!a.matches(&c));
        assert!(!a.matches(&Binding { trust: Trust::Off, ..a.clone() }));
        let ca = |path: &str, h: &str| Trust::CaBundle { path: path.into(), sha256: h.into() };
        assert!(ca("/a", "11").same(&ca("/b", "11")));
        assert!(!ca("/a", "11").same(&ca("/a", "22")));
    }

    #[test]
    fn a_provider_naming_no_origin_is_refused() {
        let err = require_origins("p", &[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("names no origin"), "{err}");
        assert!(require_origins("p", &[origin_of("portal", "https://a.example")]).is_ok());
        // Without the refusal two empty bindings would "match": nothing would be checked.
        let empty = Binding { origins: vec![], trust: Trust::Default, store: None };
        assert!(empty.matches(&empty.clone()));
    }

    #[test]
    fn a_short_or_crafted_hash_from_a_cache_is_described_without_panicking() {
        for sha256 in ["", "ab", "é", "0123456789abcdef"] {
            let described = Trust::CaBundle { path: "/ca.pem".into(), sha256: sha256.into() }.describe();
            assert!(described.contains("/ca.pem"), "{described}");
        }
        // 11 ASCII bytes then a multi-byte character across byte 12.
        let crafted = Trust::CaBundle { path: "/x".into(), sha256: "0123456789aé".into() };
        assert!(crafted.describe().contains("/x"));
    }
}
