//! One profile file (the user file or a project's `age-oauth.toml`) parsed once, with where each
//! field is written so that errors and `profile show` can name file:line without parsing again.

use super::{is_secret_name, validate_profile_name, Origin, ENV_PREFIX};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One parsed TOML file.
pub(super) struct FileLayer {
    pub(super) path: PathBuf,
    text: String,
    pub(super) default_profile: Option<String>,
    pub(super) profiles: BTreeMap<String, Map<String, Value>>,
    /// Byte offset of each (profile, field) key, recorded while parsing.
    offsets: BTreeMap<(String, String), usize>,
}

impl FileLayer {
    /// The line a profile's field is written on (0 when unknown). Counted only when asked:
    /// most runs never show an origin.
    fn line_of(&self, profile: &str, key: &str) -> usize {
        self.offsets
            .get(&(profile.to_string(), key.to_string()))
            .map(|&offset| line_col(&self.text, offset).0)
            .unwrap_or(0)
    }

    pub(super) fn origin(&self, profile: &str, key: &str) -> Origin {
        Origin::File { path: self.path.clone(), line: self.line_of(profile, key) }
    }
}

/// Reads a configuration file; `None` when it does not exist. Unreadable or not UTF-8: exit 2.
pub(super) fn read_config_file(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| {
            let (line, column) = {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let text = String::from_utf8_lossy(valid);
                line_col(&text, text.len())
            };
            Error::ConfigSyntax { path: path.to_path_buf(), line, column, message: "the file is not UTF-8 text".into() }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!("cannot read {} ({e})", path.display()))),
    }
}

/// (line, column), both 1-based, of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

pub(super) fn parse_file(path: PathBuf, text: String) -> Result<FileLayer> {
    let doc = text.parse::<toml_edit::ImDocument<String>>().map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        Error::ConfigSyntax { path: path.clone(), line, column, message: e.message().trim().replace('\n', " ") }
    })?;
    let at = |span: Option<std::ops::Range<usize>>| {
        let (line, column) = span.map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        (path.clone(), line, column)
    };
    let syntax = |(path, line, column): (PathBuf, usize, usize), message: String| Error::ConfigSyntax {
        path,
        line,
        column,
        message,
    };

    let mut default_profile = None;
    let mut profiles = BTreeMap::new();
    let mut offsets = BTreeMap::new();
    for (key, item) in doc.as_table().iter() {
        let key_span = doc.as_table().key(key).and_then(toml_edit::Key::span);
        match key {
            "default_profile" => match item.as_str() {
                Some(s) => default_profile = Some(s.to_string()),
                None => return Err(syntax(at(key_span), "`default_profile` must be a string".into())),
            },
            "profiles" => {
                let Some(table) = item.as_table_like() else {
                    return Err(syntax(at(key_span), "`profiles` must be a table of [profiles.NAME] tables".into()));
                };
                for (name, profile_item) in table.iter() {
                    let name_span = table.key(name).and_then(toml_edit::Key::span);
                    let Some(fields) = profile_item.as_table_like() else {
                        return Err(syntax(at(name_span), format!("`profiles.{name}` must be a table")));
                    };
                    validate_profile_name(name).map_err(|e| syntax(at(name_span), e.to_string()))?;
                    let mut map = Map::new();
                    for (field, value) in fields.iter() {
                        let field_span = fields.key(field).and_then(toml_edit::Key::span);
                        if is_secret_name(field) {
                            let var = format!("{ENV_PREFIX}{}", field.to_ascii_uppercase());
                            return Err(syntax(
                                at(field_span),
                                format!(
                                    "`{field}` in profile '{name}' is a secret, and secrets are never read from TOML files; \
                                     remove it and store it encrypted with `age-oauth profile add {name} --{} VALUE` \
                                     (or set {var} in the environment or .env)",
                                    field.replace('_', "-")
                                ),
                            ));
                        }
                        map.insert(field.to_string(), item_to_json(value));
                        if let Some(span) = field_span {
                            offsets.insert((name.to_string(), field.to_string()), span.start);
                        }
                    }
                    profiles.insert(name.to_string(), map);
                }
            }
            other => {
                return Err(syntax(
                    at(key_span),
                    format!("unknown top-level key `{other}`; a profile file holds `default_profile` and [profiles.NAME] tables"),
                ))
            }
        }
    }
    Ok(FileLayer { path, text, default_profile, profiles, offsets })
}

fn item_to_json(item: &toml_edit::Item) -> Value {
    match item {
        toml_edit::Item::Value(v) => toml_value_to_json(v),
        toml_edit::Item::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.to_string(), item_to_json(v))).collect()),
        toml_edit::Item::ArrayOfTables(a) => Value::Array(
            a.iter()
                .map(|t| Value::Object(t.iter().map(|(k, v)| (k.to_string(), item_to_json(v))).collect()))
                .collect(),
        ),
        toml_edit::Item::None => Value::Null,
    }
}

pub(super) fn toml_value_to_json(v: &toml_edit::Value) -> Value {
    use toml_edit::Value as T;
    match v {
        T::String(s) => Value::String(s.value().clone()),
        T::Integer(i) => Value::from(*i.value()),
        T::Float(f) => serde_json::Number::from_f64(*f.value()).map(Value::Number).unwrap_or(Value::Null),
        T::Boolean(b) => Value::Bool(*b.value()),
        T::Datetime(d) => Value::String(d.value().to_string()),
        T::Array(a) => Value::Array(a.iter().map(toml_value_to_json).collect()),
        T::InlineTable(t) => Value::Object(t.iter().map(|(k, v)| (k.to_string(), toml_value_to_json(v))).collect()),
    }
}
