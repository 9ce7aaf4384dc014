//! Profiles: TOML files, `.env`, environment and flags layered (with figment) into one profile.
//! Every value remembers where it came from; secrets are refused in TOML and only ever come from env, flags or the store.

use crate::error::{Error, Result};
use crate::paths::{ensure_private_dir, write_atomic, Paths};
use crate::registry::{self, ProviderInfo, SecretOrigin, Secrets};
use crate::secret::Secret;
use crate::settings::EngineSettings;
use figment::value::{Dict, Map as FigMap};
use figment::{Figment, Metadata, Profile as FigProfile};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The checked-in, secret-free project file read from the working directory.
pub const PROJECT_FILE: &str = "age-oauth.toml";
pub const DOTENV_FILE: &str = ".env";
pub const ENV_PREFIX: &str = "AGE_OAUTH_";
/// Set by `age-oauth exec` for its child: the profile whose `AGE_OAUTH_PORTAL` and
/// `AGE_OAUTH_USERNAME` it exported. Other profiles then ignore those two variables.
pub const EXEC_MARKER: &str = "AGE_OAUTH_EXEC";
const EXEC_EXPORTED: &[&str] = &["AGE_OAUTH_PORTAL", "AGE_OAUTH_USERNAME"];

/// Field names refused in TOML whatever the provider: they can only be secrets.
pub(crate) const ALWAYS_SECRET: &[&str] =
    &["client_secret", "password", "refresh_token", "access_token", "token", "api_key", "passphrase", "secret"];

/// Where a profile value came from, for `profile show` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: usize },
    DotEnv(String),
    Env(String),
    Flag(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::DotEnv(var) => write!(f, ".env {var}"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// One parsed TOML file.
struct FileLayer {
    path: PathBuf,
    text: String,
    default_profile: Option<String>,
    profiles: BTreeMap<String, Map<String, Value>>,
}

impl FileLayer {
    fn line_of(&self, profile: &str, key: &str) -> usize {
        // Re-parse for spans only when asked (profile show, errors): keeps loading cheap.
        let Ok(doc) = self.text.parse::<toml_edit::ImDocument<String>>() else {
            return 0;
        };
        let span = doc
            .get("profiles")
            .and_then(|p| p.get(profile))
            .and_then(|t| t.as_table_like())
            .and_then(|t| t.get_key_value(key))
            .and_then(|(k, _)| k.span());
        span.map(|s| line_col(&self.text, s.start).0).unwrap_or(0)
    }

    fn origin(&self, profile: &str, key: &str) -> Origin {
        Origin::File { path: self.path.clone(), line: self.line_of(profile, key) }
    }
}

/// A value given on the command line for a profile field (`--portal`, `--set k=v`).
#[derive(Debug, Clone)]
pub struct FlagValue {
    pub field: String,
    pub value: Value,
    pub flag: String,
}

/// Every configuration source, read once.
pub struct Config {
    files: Vec<FileLayer>,
    dotenv: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    /// The directory `.env` was read from (relative paths in it are relative to it).
    dotenv_dir: Option<PathBuf>,
}

/// A profile ready for the engine.
pub struct ResolvedProfile {
    pub name: String,
    pub provider: &'static ProviderInfo,
    /// Provider settings (engine fields removed), defaults filled in.
    pub provider_values: Map<String, Value>,
    pub engine: EngineSettings,
    /// All effective non-secret values, for display.
    pub values: Map<String, Value>,
    pub origins: BTreeMap<String, Origin>,
    /// Secrets given by flag, environment or `.env` (the store comes later).
    pub secret_overrides: Secrets,
    /// The TLS trust `verify_ssl` names, checked (a CA bundle exists and holds a certificate).
    pub trust: crate::binding::Trust,
}

impl Config {
    /// Reads the user file, the project file and `.env` from `cwd`, and the environment.
    /// A file that cannot be read or decoded is a configuration error (exit 2).
    pub fn load(paths: &Paths, cwd: &Path) -> Result<Config> {
        let mut files = Vec::new();
        for path in [paths.config_file.clone(), cwd.join(PROJECT_FILE)] {
            if let Some(text) = read_config_file(&path)? {
                files.push((path, text));
            }
        }
        let dotenv_path = cwd.join(DOTENV_FILE);
        let mut dotenv = BTreeMap::new();
        match std::fs::read(&dotenv_path) {
            Ok(bytes) => {
                let (vars, warnings) = read_dotenv(&dotenv_path, &bytes)?;
                for w in warnings {
                    eprintln!("warning: {}", crate::redact::for_terminal(&w));
                }
                dotenv = vars;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Config(format!("cannot read {} ({e})", dotenv_path.display()))),
        }
        let env = crate::env::process().with_prefix(ENV_PREFIX).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut config = Config::from_parts(files, dotenv, env)?;
        config.dotenv_dir = Some(cwd.to_path_buf());
        Ok(config)
    }

    /// The user file alone (no working directory, no environment): what cached credentials
    /// without a recorded binding are bound to. `None` when there is no user file.
    pub fn load_user(paths: &Paths) -> Result<Option<Config>> {
        let Some(text) = read_config_file(&paths.config_file)? else {
            return Ok(None);
        };
        Config::from_parts(vec![(paths.config_file.clone(), text)], BTreeMap::new(), BTreeMap::new()).map(Some)
    }

    /// Builds from already-read sources (tests, and `load`).
    pub fn from_parts(
        files: Vec<(PathBuf, String)>,
        dotenv: BTreeMap<String, String>,
        env: BTreeMap<String, String>,
    ) -> Result<Config> {
        let files = files.into_iter().map(|(path, text)| parse_file(path, text)).collect::<Result<_>>()?;
        Ok(Config { files, dotenv, env, dotenv_dir: None })
    }

    /// Names of the profiles defined in the files.
    pub fn profile_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.files.iter().flat_map(|f| f.profiles.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Where each profile is defined (highest-precedence file last).
    pub fn profile_files(&self, name: &str) -> Vec<&Path> {
        self.files.iter().filter(|f| f.profiles.contains_key(name)).map(|f| f.path.as_path()).collect()
    }

    /// The provider a profile names, if any file names one.
    pub fn provider_of(&self, name: &str) -> Option<String> {
        self.files.iter().rev().find_map(|f| f.profiles.get(name)?.get("provider")?.as_str().map(String::from))
    }

    /// `default_profile` as the files set it (the project file over the user file).
    pub fn default_profile(&self) -> Option<String> {
        self.files.iter().rev().find_map(|f| f.default_profile.clone())
    }

    /// The profile `AGE_OAUTH_PROFILE` picks (environment, then `.env`): the "active" one.
    pub fn env_profile(&self) -> Option<String> {
        [&self.env, &self.dotenv]
            .into_iter()
            .filter_map(|m| m.get("AGE_OAUTH_PROFILE"))
            .find(|n| !n.is_empty())
            .cloned()
    }

    /// The profile to use: `--profile`, else `AGE_OAUTH_PROFILE` (env, then `.env`),
    /// else `default_profile` from the files, else the only profile there is.
    pub fn select(&self, flag: Option<&str>) -> Result<String> {
        if let Some(name) = flag {
            return Ok(name.to_string());
        }
        let from_env =
            [&self.env, &self.dotenv].into_iter().filter_map(|m| m.get("AGE_OAUTH_PROFILE")).find(|n| !n.is_empty());
        if let Some(name) = from_env {
            return Ok(name.clone());
        }
        if let Some(name) = self.files.iter().rev().find_map(|f| f.default_profile.clone()) {
            return Ok(name);
        }
        let names = self.profile_names();
        match names.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Error::Config(
                "no profile is configured; add one with `age-oauth profile add NAME --provider esri-oob --portal URL --client-id ID` \
                 (see `age-oauth providers`)"
                    .into(),
            )),
            many => Err(Error::Config(format!(
                "several profiles exist ({}); choose one with --profile NAME or AGE_OAUTH_PROFILE",
                many.join(", ")
            ))),
        }
    }

    /// Merges every layer for profile `name`, validates it against its provider,
    /// and collects secret overrides. `flags` is the top layer.
    pub fn resolve(&self, name: &str, flags: &[FlagValue]) -> Result<ResolvedProfile> {
        validate_profile_name(name)?;
        let flag_provider =
            flags.iter().find(|f| f.field == "provider").and_then(|f| f.value.as_str().map(String::from));
        let provider_name = flag_provider.or_else(|| self.provider_of(name)).ok_or_else(|| {
            if self.profile_files(name).is_empty() {
                let known = self.profile_names();
                Error::Config(format!(
                    "no profile named '{name}'{}; create it with `age-oauth profile add {name} --provider PROVIDER ...`",
                    if known.is_empty() { String::new() } else { format!(" (profiles: {})", known.join(", ")) }
                ))
            } else {
                Error::Config(format!("profile '{name}' has no `provider` field; known providers: {}", registry::provider_names().join(", ")))
            }
        })?;
        let provider = registry::find(&provider_name).map_err(|e| match self.locate(name, "provider") {
            Some(origin) => Error::Config(format!("{origin}: profile '{name}': {e}")),
            None => e,
        })?;

        let engine_fields = registry::schema_fields(&schemars::schema_for!(EngineSettings));
        let provider_fields = provider.fields();
        let is_setting = |field: &str| {
            engine_fields.iter().any(|f| f.name == field)
                || provider_fields.iter().any(|f| f.name == field && !f.secret)
        };
        let is_secret = |field: &str| provider.secret(field).is_some();
        let known_list = || {
            let mut names: Vec<&str> = provider_fields.iter().filter(|f| !f.secret).map(|f| f.name.as_str()).collect();
            names.extend(engine_fields.iter().map(|f| f.name.as_str()));
            names.join(", ")
        };

        // Layers, lowest precedence first. Each is a figment provider with its own name.
        let mut layers: Vec<(String, Dict)> = Vec::new();
        let mut defaults = Dict::new();
        for f in engine_fields.iter().chain(provider_fields.iter()) {
            if let Some(d) = &f.default {
                defaults.insert(f.name.clone(), to_fig(d)?);
            }
        }
        layers.push(("default".into(), defaults));
        for (i, file) in self.files.iter().enumerate() {
            let Some(table) = file.profiles.get(name) else {
                continue;
            };
            let mut dict = Dict::new();
            for (k, v) in table {
                if k == "provider" {
                    continue;
                }
                if !is_setting(k) {
                    return Err(Error::Config(format!(
                        "{}: profile '{name}': unknown field `{k}` for provider {}; its fields are: {}",
                        file.origin(name, k),
                        provider.name,
                        known_list()
                    )));
                }
                dict.insert(k.clone(), to_fig(v)?);
            }
            layers.push((format!("file:{i}"), dict));
        }
        let mut secret_overrides = Secrets::default();
        for f in flags {
            if f.field != "provider" && !is_setting(&f.field) && !is_secret(&f.field) {
                return Err(Error::Config(format!(
                    "{}: unknown field `{}` for provider {}; its fields are: {}",
                    f.flag,
                    f.field,
                    provider.name,
                    known_list()
                )));
            }
        }
        // Text from env and flags is read loosely (`60`, `true`), except where the
        // field is a string: then `AGE_OAUTH_CLIENT_ID=12345` stays the string "12345".
        let string_field = |field: &str| {
            // A list field (`array|string`) takes its string form here: `AGE_OAUTH_SCOPES="openid profile"`.
            engine_fields
                .iter()
                .chain(provider_fields.iter())
                .any(|f| f.name == field && (f.kind == "string" || f.kind == "array|string"))
        };
        let coerce = |field: &str, value: &Value| match value {
            Value::Number(_) | Value::Bool(_) if string_field(field) => Value::String(value.to_string()),
            other => other.clone(),
        };
        for (layer, vars) in [("dotenv", &self.dotenv), ("env", &self.env)] {
            let mut dict = Dict::new();
            let exec_profile = vars.get(EXEC_MARKER).filter(|p| p.as_str() != name);
            for (var, raw) in vars.iter().filter(|(_, raw)| !raw.is_empty()) {
                if exec_profile.is_some() && EXEC_EXPORTED.contains(&var.as_str()) {
                    continue; // exported by `exec` for another profile
                }
                let field = var[ENV_PREFIX.len()..].to_ascii_lowercase();
                if is_setting(&field) {
                    let value = if string_field(&field) { Value::String(raw.clone()) } else { loose_value(raw) };
                    dict.insert(field, to_fig(&value)?);
                }
            }
            layers.push((layer.into(), dict));
        }
        let mut flag_dict = Dict::new();
        for f in flags.iter().filter(|f| is_setting(&f.field)) {
            flag_dict.insert(f.field.clone(), to_fig(&coerce(&f.field, &f.value))?);
        }
        layers.push(("flags".into(), flag_dict));

        // Secrets: flags, then environment, then .env (highest precedence first).
        for f in flags.iter().filter(|f| is_secret(&f.field)) {
            let text = f.value.as_str().map(String::from).unwrap_or_else(|| f.value.to_string());
            secret_overrides.offer(&f.field, Secret::new(text), SecretOrigin::Flag(f.flag.clone()));
        }
        for spec in provider.secrets {
            let var = format!("{ENV_PREFIX}{}", spec.name.to_ascii_uppercase());
            if let Some(v) = self.env.get(&var).filter(|v| !v.is_empty()) {
                secret_overrides.offer(spec.name, Secret::new(v.clone()), SecretOrigin::Env(var.clone()));
            }
            if let Some(v) = self.dotenv.get(&var).filter(|v| !v.is_empty()) {
                secret_overrides.offer(spec.name, Secret::new(v.clone()), SecretOrigin::DotEnv(var.clone()));
            }
        }

        let mut figment = Figment::new();
        for (layer_name, dict) in layers {
            figment = figment.merge(Layer { name: layer_name, dict });
        }
        let merged: Map<String, Value> =
            figment.extract().map_err(|e| Error::Config(format!("profile '{name}': {e}")))?;

        let mut origins = BTreeMap::new();
        for key in merged.keys() {
            let origin = match figment.find_metadata(key).map(|m| m.name.as_ref()) {
                Some(n) if n.starts_with("file:") => {
                    let i: usize = n[5..].parse().unwrap_or(0);
                    self.files[i].origin(name, key)
                }
                Some("dotenv") => Origin::DotEnv(format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())),
                Some("env") => Origin::Env(format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())),
                Some("flags") => Origin::Flag(
                    flags.iter().rev().find(|f| &f.field == key).map(|f| f.flag.clone()).unwrap_or_default(),
                ),
                _ => Origin::Default,
            };
            origins.insert(key.clone(), origin);
        }

        let missing: Vec<&str> = provider_fields
            .iter()
            .filter(|f| f.required && !f.secret && !merged.contains_key(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "profile '{name}' ({}) is missing required field(s): {}; set them with `age-oauth profile add {name} --provider {} --set FIELD=VALUE` or in {}",
                provider.name,
                missing.join(", "),
                provider.name,
                self.profile_files(name).last().map(|p| p.display().to_string()).unwrap_or_else(|| "config.toml".into())
            )));
        }

        let mut merged = merged;
        let trust = self.resolve_verify_ssl(name, &mut merged, &origins)?;
        let mut engine_values = Map::new();
        let mut provider_values = Map::new();
        for (k, v) in &merged {
            if engine_fields.iter().any(|f| &f.name == k) {
                engine_values.insert(k.clone(), v.clone());
            } else {
                provider_values.insert(k.clone(), v.clone());
            }
        }
        let engine: EngineSettings = serde_path_to_error::deserialize(Value::Object(engine_values))
            .map_err(|e| Error::Config(format!("profile '{name}': field `{}`: {}", e.path(), e.inner())))?;
        Ok(ResolvedProfile {
            name: name.to_string(),
            provider,
            provider_values,
            engine,
            values: merged,
            origins,
            secret_overrides,
            trust,
        })
    }

    /// Makes a relative `verify_ssl` path absolute against the file that set it (`.env`, the
    /// environment and flags: the working directory), and checks the bundle now, not at login.
    fn resolve_verify_ssl(
        &self,
        name: &str,
        merged: &mut Map<String, Value>,
        origins: &BTreeMap<String, Origin>,
    ) -> Result<crate::binding::Trust> {
        let origin = origins.get("verify_ssl").cloned().unwrap_or(Origin::Default);
        if let Some(Value::String(path)) = merged.get("verify_ssl") {
            let flag = path.eq_ignore_ascii_case("true") || path.eq_ignore_ascii_case("false");
            if !flag {
                let base = match &origin {
                    Origin::File { path, .. } => path.parent().map(Path::to_path_buf),
                    Origin::DotEnv(_) => self.dotenv_dir.clone(),
                    _ => std::env::current_dir().ok(),
                };
                let absolute = crate::binding::resolve_relative(path, &base.unwrap_or_default());
                merged.insert("verify_ssl".into(), Value::String(absolute));
            }
        }
        let setting: crate::settings::VerifySslSetting =
            serde_json::from_value(merged.get("verify_ssl").cloned().unwrap_or(Value::Bool(true)))
                .map_err(|e| Error::Config(format!("profile '{name}': field `verify_ssl`: {e}")))?;
        crate::binding::Trust::of_setting(&setting)
            .map_err(|e| Error::Config(format!("{origin}: profile '{name}': {e}")))
    }

    /// The origin of a field set in a file, for error messages.
    fn locate(&self, profile: &str, key: &str) -> Option<Origin> {
        self.files
            .iter()
            .rev()
            .find(|f| f.profiles.get(profile).is_some_and(|t| t.contains_key(key)))
            .map(|f| f.origin(profile, key))
    }
}

/// A named figment layer holding one profile's fields.
struct Layer {
    name: String,
    dict: Dict,
}

impl figment::Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }
    fn data(&self) -> std::result::Result<FigMap<FigProfile, Dict>, figment::Error> {
        Ok(FigProfile::Default.collect(self.dict.clone()))
    }
}

fn to_fig(v: &Value) -> Result<figment::value::Value> {
    figment::value::Value::serialize(v).map_err(|e| Error::Other(format!("cannot convert a setting: {e}")))
}

/// Reads a configuration file; `None` when it does not exist. Unreadable or not UTF-8: exit 2.
fn read_config_file(path: &Path) -> Result<Option<String>> {
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

/// Reads `.env`: only our own (`AGE_OAUTH_*`) lines, each literally (no `${VAR}` expansion: a
/// working directory must not copy the environment into a setting). `.env` is often shared with
/// other tools, whose lines are theirs to get right: a line that is not UTF-8 is skipped with a
/// warning; a broken line of ours is named by its key, never shown. Returns the values and warnings.
pub fn read_dotenv(path: &Path, bytes: &[u8]) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut vars = BTreeMap::new();
    let mut warnings = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(raw) else {
            warnings.push(format!("{}:{}: skipping a line that is not UTF-8 text", path.display(), i + 1));
            continue;
        };
        let trimmed = line.trim_start();
        let ours = trimmed.strip_prefix("export ").unwrap_or(trimmed).trim_start();
        if !ours.starts_with(ENV_PREFIX) {
            continue;
        }
        match parse_env_line(line) {
            Some((k, v)) => {
                vars.insert(k, v);
            }
            None => {
                let key: String = ours.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                return Err(Error::Config(format!(
                    "{}:{}: cannot parse the line that sets `{key}` (value not shown); check its quoting \
                     (values on one line)",
                    path.display(),
                    i + 1
                )));
            }
        }
    }
    Ok((vars, warnings))
}

/// One `KEY=value` line, read literally: `'single'` quotes keep everything, `"double"` quotes
/// know `\"`, `\\` and `\n`, an unquoted value ends at ` #`. Nothing is expanded. `None`: malformed.
pub fn parse_env_line(line: &str) -> Option<(String, String)> {
    let line = line.trim_end_matches('\r').trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
    let (key, rest) = line.split_once('=')?;
    let key = key.trim_end();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let rest = rest.trim_start();
    let (value, after) = if let Some(body) = rest.strip_prefix('\'') {
        let end = body.find('\'')?;
        (body[..end].to_string(), &body[end + 1..])
    } else if let Some(body) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('"' | '\\'))) => value.push(c),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        (value, &body[end? + 1..])
    } else {
        let end = rest.find(" #").unwrap_or(rest.len());
        (rest[..end].trim_end().to_string(), "")
    };
    let after = after.trim_start();
    (after.is_empty() || after.starts_with('#')).then(|| (key.to_string(), value))
}

/// Profile names become file names: keep them simple.
pub fn validate_profile_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid profile name '{name}': use letters, digits, '.', '_' or '-' (at most 64, starting with a letter or digit)"
        )))
    }
}

/// Reads a command-line or environment value as a TOML value when it parses as one
/// (`60`, `true`, `[1, 2]`), else as a plain string.
pub fn loose_value(raw: &str) -> Value {
    match raw.parse::<toml_edit::Value>() {
        Ok(v) => toml_value_to_json(&v),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// (line, column), both 1-based, of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

fn parse_file(path: PathBuf, text: String) -> Result<FileLayer> {
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
    for (key, item) in doc.as_table().iter() {
        let key_span = doc.as_table().key(key).and_then(|k| k.span());
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
                    let name_span = table.key(name).and_then(|k| k.span());
                    let Some(fields) = profile_item.as_table_like() else {
                        return Err(syntax(at(name_span), format!("`profiles.{name}` must be a table")));
                    };
                    validate_profile_name(name).map_err(|e| syntax(at(name_span), e.to_string()))?;
                    let mut map = Map::new();
                    for (field, value) in fields.iter() {
                        let field_span = fields.key(field).and_then(|k| k.span());
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
    Ok(FileLayer { path, text, default_profile, profiles })
}

/// True for a field name that can only be a secret (any provider's, or a generic one).
pub fn is_secret_name(field: &str) -> bool {
    ALWAYS_SECRET.contains(&field) || registry::providers().iter().any(|p| p.secret(field).is_some())
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

fn toml_value_to_json(v: &toml_edit::Value) -> Value {
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
