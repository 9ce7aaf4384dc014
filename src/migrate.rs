//! `migrate python-age-oauth`: turns the Python age-oauth's plaintext connection store
//! (`connections.json`, `connections/<id>/meta.json` and `.env`) into profiles and encrypted caches.

use crate::config::{self, validate_profile_name};
use crate::engine::{Engine, UpdateOptions};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::store::{CacheEntry, CacheStore};
use crate::token::TokenSet;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the Python age-oauth keeps its store: `$XDG_CONFIG_HOME/age_oauth` (platformdirs).
pub fn default_python_store() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.config_dir().join("age_oauth"))
}

/// What happened to one connection.
#[derive(Debug, serde::Serialize)]
pub struct Migrated {
    pub connection_id: String,
    pub profile: String,
    pub provider: String,
    pub moved_secrets: Vec<String>,
    pub moved_tokens: bool,
    pub env_file: PathBuf,
    pub shredded: bool,
}

/// A connection's label made into a valid profile name.
fn profile_name(label: &str, id: &str) -> String {
    let mut name: String =
        label.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    name.truncate(64);
    if validate_profile_name(&name).is_err() {
        name = id.chars().filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c)).take(64).collect();
    }
    name
}

/// Reads a connection's `.env` as the Python age-oauth 0.2.1 reads it (`envfile._parse_env_file`):
/// `KEY=value` lines, one pair of matching quotes stripped, nothing expanded.
fn read_env(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: cannot be read as a .env file ({e})", path.display())))?;
    let mut out = BTreeMap::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        let value = value.trim();
        let value = match value.as_bytes() {
            [b'"', .., b'"'] if value.len() >= 2 => {
                value[1..value.len() - 1].replace("\\\"", "\"").replace("\\\\", "\\")
            }
            [b'\'', .., b'\''] if value.len() >= 2 => value[1..value.len() - 1].to_string(),
            _ => value.to_string(),
        };
        if !key.is_empty() {
            out.insert(key.to_string(), value);
        }
    }
    Ok(out)
}

/// The directory of connection `id` inside the store, refusing ids that could lead elsewhere
/// (`..`, absolute paths, separators) and symbolic links: `--shred` must only touch the store.
fn connection_dir(from: &Path, id: &str) -> Result<PathBuf> {
    let plain = !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\', '\0'])
        && Path::new(id).components().count() == 1;
    if !plain {
        return Err(Error::Config(format!(
            "{}: connection id `{}` is not a plain name inside the store; nothing was migrated",
            from.join("connections.json").display(),
            crate::redact::printable(id)
        )));
    }
    let dir = from.join("connections").join(id);
    for path in [from.join("connections"), dir.clone(), dir.join(".env")] {
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::Config(format!(
                "{} is a symbolic link; migrate only reads (and --shred only deletes) files inside the store; \
                 nothing was migrated",
                path.display()
            )));
        }
    }
    Ok(dir)
}

/// `verify_ssl` of a connection: `OAUTH_VERIFY_SSL` in its `.env` (true, false or a CA path, as
/// the Python age-oauth writes it), else `verify_ssl` / `ca_bundle` of its meta.json.
fn verify_ssl(env: &BTreeMap<String, String>, meta: &Value) -> Option<Value> {
    let raw = env.get("OAUTH_VERIFY_SSL").map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let raw = raw
        .or_else(|| meta.get("ca_bundle").and_then(Value::as_str).map(String::from))
        .or_else(|| meta.get("verify_ssl").and_then(Value::as_bool).map(|b| b.to_string()))?;
    match raw.to_ascii_lowercase().as_str() {
        "false" | "0" | "no" | "off" => Some(json!(false)),
        "true" | "1" | "yes" | "on" => None,
        _ => Some(json!(raw)),
    }
}

/// Epoch seconds from the Python store's float (`1730000000.123`).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive, and `as` saturates (absurd → u64::MAX)
fn epoch(value: Option<&String>) -> Option<u64> {
    value.and_then(|v| v.trim().parse::<f64>().ok()).filter(|f| *f > 0.0).map(|f| f as u64)
}

/// Reads every connection under `from` and writes profiles and caches; nothing is
/// written for a connection that fails, and the old files stay unless `shred`.
pub fn migrate(engine: &Engine, from: &Path, shred: bool, now: u64) -> Result<Vec<Migrated>> {
    let store = &engine.store;
    let index_path = from.join("connections.json");
    let text = std::fs::read_to_string(&index_path).map_err(|e| {
        Error::Config(format!("no Python age-oauth store at {} ({e}); pass --from DIR", from.display()))
    })?;
    let index: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Config(format!("{}: not valid JSON: {e}", index_path.display())))?;
    let connections = index
        .get("connections")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Config(format!("{}: no `connections` list", index_path.display())))?;
    // First read and check every connection; write only when all of them can be migrated.
    let mut plans: Vec<Plan> = Vec::new();
    for connection in connections {
        let Some(id) = connection.get("id").and_then(Value::as_str) else { continue };
        let dir = connection_dir(from, id)?;
        let meta: Value = std::fs::read_to_string(dir.join("meta.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| connection.clone());
        let label = meta.get("label").and_then(Value::as_str).unwrap_or(id);
        let env_file = dir.join(".env");
        let env = read_env(&env_file)?;
        let get = |k: &str| env.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());

        let provider = if get("OAUTH_AUTH_TYPE").as_deref() == Some("app") { "esri-app" } else { "esri-oob" };
        let portal = get("PORTAL_URL")
            .or_else(|| meta.get("portal_url").and_then(Value::as_str).map(String::from))
            .ok_or_else(|| Error::Config(format!("{}: no PORTAL_URL", env_file.display())))?;
        let client_id = get("OAUTH_CLIENT_ID")
            .ok_or_else(|| Error::Config(format!("{}: no OAUTH_CLIENT_ID", env_file.display())))?;
        let mut settings = Map::new();
        settings.insert("portal".into(), json!(portal.trim_end_matches('/')));
        settings.insert("client_id".into(), json!(client_id));
        let verify = verify_ssl(&env, &meta);
        if let Some(r) = get("OAUTH_REFERER") {
            settings.insert("referer".into(), json!(r));
        }

        let name = profile_name(label, id);
        let mut entry = CacheEntry::new(&name, provider);
        let mut moved_secrets = Vec::new();
        if let Some(secret) = get("OAUTH_CLIENT_SECRET") {
            entry.secrets.insert("client_secret".into(), Secret::new(secret));
            moved_secrets.push("client_secret".to_string());
        }
        if let Some(access) = get("OAUTH_ACCESS_TOKEN") {
            let mut tokens = TokenSet::new(Secret::new(access), now);
            tokens.expires_at = epoch(env.get("OAUTH_TOKEN_EXPIRES_AT"));
            if provider == "esri-oob" {
                tokens.refresh_token = get("OAUTH_REFRESH_TOKEN").map(Secret::new);
                tokens.refresh_issued_at = epoch(env.get("OAUTH_REFRESH_TOKEN_ROTATED_AT"));
                tokens.username = get("OAUTH_USERNAME");
            }
            entry.tokens = Some(tokens);
        }
        let info = crate::registry::find(provider)?;
        let settings_check = crate::registry::ProfileSettings { profile: name.clone(), values: settings.clone() };
        let built = (info.build)(&settings_check)
            .map_err(|e| Error::Config(format!("connection {id}: {e}; nothing was migrated")))?;
        let trust = match &verify {
            Some(v) => {
                let setting = serde_json::from_value(v.clone()).unwrap_or_default();
                crate::binding::Trust::of_setting(&setting)
                    .map_err(|e| Error::Config(format!("connection {id}: {e}; nothing was migrated")))?
            }
            None => crate::binding::Trust::Default,
        };
        // The cache is bound to what is written in the user file (the engine's binding rule).
        crate::binding::record(
            &mut entry,
            Some(crate::binding::Binding { origins: built.origins(), trust, store: None }),
        );
        if let Some(v) = verify {
            settings.insert("verify_ssl".into(), v);
        }
        plans.push(Plan { id: id.to_string(), name, provider, settings, entry, moved_secrets, env_file });
    }
    check_names(store, &plans)?;
    let mut done = Vec::new();
    for plan in plans {
        config::write_profile(store.paths(), &plan.name, plan.provider, &plan.settings)?;
        let entry = plan.entry.clone();
        engine.update(&plan.name, UpdateOptions::default(), |slot, _| {
            *slot = Some(entry);
            Ok(())
        })?;
        done.push(Migrated {
            connection_id: plan.id,
            profile: plan.name,
            provider: plan.provider.to_string(),
            moved_secrets: plan.moved_secrets,
            moved_tokens: plan.entry.tokens.is_some(),
            env_file: plan.env_file,
            shredded: false,
        });
    }
    // Only once everything is safely encrypted: the old plaintext files.
    if shred {
        for m in &mut done {
            m.shredded = shred_file(&m.env_file).is_ok();
        }
    }
    Ok(done)
}

/// One connection, read and checked, ready to be written.
struct Plan {
    id: String,
    name: String,
    provider: &'static str,
    settings: Map<String, Value>,
    entry: CacheEntry,
    moved_secrets: Vec<String>,
    env_file: PathBuf,
}

/// Refuses names that would overwrite an existing profile or cache, or two connections
/// that would land on one profile: nothing is written then.
fn check_names(store: &CacheStore, plans: &[Plan]) -> Result<()> {
    let existing = match std::fs::read_to_string(&store.paths().config_file) {
        Ok(text) => config::Config::from_parts(
            vec![(store.paths().config_file.clone(), text)],
            Default::default(),
            Default::default(),
        )?
        .profile_names(),
        Err(_) => Vec::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for plan in plans {
        if existing.contains(&plan.name) || store.exists(&plan.name) {
            return Err(Error::Config(format!(
                "connection {} would become profile '{}', which already exists; remove it first \
                 (`age-oauth profile remove {}`) or rename the connection; nothing was migrated",
                plan.id, plan.name, plan.name
            )));
        }
        if !seen.insert(plan.name.clone()) {
            return Err(Error::Config(format!(
                "two connections are labelled so that both would become profile '{}'; rename one; nothing was migrated",
                plan.name
            )));
        }
    }
    Ok(())
}

/// Overwrites a file with zeros, syncs, then deletes it (best effort on copy-on-write
/// and flash storage, where old blocks may survive).
fn shred_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let len = std::fs::metadata(path)?.len();
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)])?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)
}
