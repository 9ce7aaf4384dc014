//! Edits of the user file (`config.toml`): a profile written, removed, or made the default,
//! keeping the rest of the file and its comments; secrets are refused, the write is atomic.

use super::file::parse_file;
use super::{is_secret_name, validate_profile_name};
use crate::error::{Error, Result};
use crate::paths::{ensure_private_dir, write_atomic, Paths};
use serde_json::{Map, Value};

fn json_to_toml(v: &Value) -> toml_edit::Value {
    match v {
        Value::String(s) => s.as_str().into(),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or_default().into(),
        },
        Value::Array(a) => toml_edit::Value::Array(a.iter().map(json_to_toml).collect()),
        Value::Object(o) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, v) in o {
                t.insert(k, json_to_toml(v));
            }
            toml_edit::Value::InlineTable(t)
        }
        Value::Null => "".into(),
    }
}

/// Writes (or replaces) `[profiles.NAME]` in the user file, keeping the rest of
/// the file and its comments. Only non-secret fields may be passed.
pub fn write_profile(paths: &Paths, name: &str, provider: &str, fields: &Map<String, Value>) -> Result<()> {
    validate_profile_name(name)?;
    if let Some(k) = fields.keys().find(|k| is_secret_name(k)) {
        return Err(Error::Config(format!(
            "`{k}` is a secret and is never written to {}; store it encrypted with `age-oauth profile add {name} --{} VALUE`",
            paths.config_file.display(),
            k.replace('_', "-")
        )));
    }
    let mut doc = read_user_doc(paths)?;
    if !doc.contains_key("profiles") {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        doc.insert("profiles", toml_edit::Item::Table(t));
    }
    let profiles = doc["profiles"]
        .as_table_mut()
        .ok_or_else(|| Error::Config(format!("{}: `profiles` is not a table", paths.config_file.display())))?;
    let mut table = toml_edit::Table::new();
    table.insert("provider", toml_edit::value(provider));
    for (k, v) in fields {
        table.insert(k, toml_edit::Item::Value(json_to_toml(v)));
    }
    profiles.insert(name, toml_edit::Item::Table(table));
    save_user_doc(paths, &doc)
}

/// Removes `[profiles.NAME]` from the user file; true when it was there.
pub fn remove_profile(paths: &Paths, name: &str) -> Result<bool> {
    let mut doc = read_user_doc(paths)?;
    let removed = doc.get_mut("profiles").and_then(|p| p.as_table_mut()).and_then(|t| t.remove(name)).is_some();
    if removed {
        save_user_doc(paths, &doc)?;
    }
    Ok(removed)
}

/// Sets (or with `None` removes) `default_profile` in the user file, keeping the rest of it.
pub fn set_default_profile(paths: &Paths, name: Option<&str>) -> Result<()> {
    let mut doc = read_user_doc(paths)?;
    match name {
        Some(n) => {
            validate_profile_name(n)?;
            // A top-level value: toml_edit writes it above the [profiles.*] tables.
            doc.insert("default_profile", toml_edit::value(n));
        }
        None => {
            if doc.remove("default_profile").is_none() {
                return Ok(());
            }
        }
    }
    save_user_doc(paths, &doc)
}

fn read_user_doc(paths: &Paths) -> Result<toml_edit::DocumentMut> {
    match std::fs::read_to_string(&paths.config_file) {
        Ok(text) => {
            // Same checks (and the same error) as when loading.
            parse_file(paths.config_file.clone(), text.clone())?;
            text.parse().map_err(|e: toml_edit::TomlError| Error::Config(e.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml_edit::DocumentMut::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", paths.config_file.display()), e)),
    }
}

fn save_user_doc(paths: &Paths, doc: &toml_edit::DocumentMut) -> Result<()> {
    if let Some(dir) = paths.config_file.parent() {
        ensure_private_dir(dir)?;
    }
    write_atomic(&paths.config_file, doc.to_string().as_bytes())
}
