//! One profile resolved from every layer, in named steps: its provider, its fields, the layers
//! (defaults < files < `.env` < environment < flags) merged with where each value came from,
//! secrets given outside the store, required fields, the TLS trust, and the engine's settings.

use super::{loose_value, validate_profile_name, Config, FlagValue, Origin, ResolvedProfile, ENV_PREFIX};
use super::{EXEC_EXPORTED, EXEC_MARKER};
use crate::error::{Error, Result};
use crate::registry::{self, FieldInfo, ProviderInfo, SecretOrigin, Secrets};
use crate::secret::Secret;
use crate::settings::EngineSettings;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The fields a profile of one provider may set: the engine's and the provider's.
struct FieldSet {
    provider: &'static ProviderInfo,
    engine: Vec<FieldInfo>,
    own: Vec<FieldInfo>,
}

impl FieldSet {
    fn of(provider: &'static ProviderInfo) -> FieldSet {
        FieldSet { provider, engine: engine_fields(), own: provider.fields() }
    }

    fn all(&self) -> impl Iterator<Item = &FieldInfo> {
        self.engine.iter().chain(self.own.iter())
    }

    fn is_engine(&self, field: &str) -> bool {
        self.engine.iter().any(|f| f.name == field)
    }

    /// A non-secret setting (secrets never come from files or settings layers).
    fn is_setting(&self, field: &str) -> bool {
        self.is_engine(field) || self.own.iter().any(|f| f.name == field && !f.secret)
    }

    fn is_secret(&self, field: &str) -> bool {
        self.provider.secret(field).is_some()
    }

    /// Text from env and flags is read loosely (`60`, `true`), except where the field is a
    /// string: `AGE_OAUTH_CLIENT_ID=12345` stays the string "12345". A list field
    /// (`array|string`) takes its string form there: `AGE_OAUTH_SCOPES="openid profile"`.
    fn is_text(&self, field: &str) -> bool {
        self.all().any(|f| f.name == field && (f.kind == "string" || f.kind == "array|string"))
    }

    fn known_list(&self) -> String {
        let mut names: Vec<&str> = self.own.iter().filter(|f| !f.secret).map(|f| f.name.as_str()).collect();
        names.extend(self.engine.iter().map(|f| f.name.as_str()));
        names.join(", ")
    }

    fn unknown(&self, at: &str, name: &str, field: &str) -> Error {
        Error::Config(format!(
            "{at}: {}unknown field `{field}` for provider {}; its fields are: {}",
            if name.is_empty() { String::new() } else { format!("profile '{name}': ") },
            self.provider.name,
            self.known_list()
        ))
    }
}

/// The engine's own fields (from its schema), computed once per process.
fn engine_fields() -> Vec<FieldInfo> {
    static FIELDS: std::sync::OnceLock<Vec<FieldInfo>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| registry::schema_fields(&schemars::schema_for!(EngineSettings))).clone()
}

/// The merged values and, for each top-level field, the layer that gave its final value.
#[derive(Default)]
struct Merged {
    values: Map<String, Value>,
    origins: BTreeMap<String, Origin>,
}

impl Merged {
    /// A higher layer's value: tables merge key by key, anything else replaces.
    fn set(&mut self, field: &str, value: Value, origin: Origin) {
        match (self.values.get_mut(field), value) {
            (Some(Value::Object(below)), Value::Object(above)) => merge_tables(below, above),
            (_, value) => {
                self.values.insert(field.to_string(), value);
            }
        }
        self.origins.insert(field.to_string(), origin);
    }
}

fn merge_tables(below: &mut Map<String, Value>, above: Map<String, Value>) {
    for (k, v) in above {
        match (below.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(a)) => merge_tables(b, a),
            (_, v) => {
                below.insert(k, v);
            }
        }
    }
}

impl Config {
    /// Merges every layer for profile `name`, validates it against its provider,
    /// and collects secret overrides. `flags` is the top layer.
    pub fn resolve(&self, name: &str, flags: &[FlagValue]) -> Result<ResolvedProfile> {
        validate_profile_name(name)?;
        let provider = self.provider_for(name, flags)?;
        let fields = FieldSet::of(provider);
        check_flags(&fields, flags)?;
        let mut merged = Merged::default();
        for f in fields.all() {
            if let Some(default) = &f.default {
                merged.set(&f.name, default.clone(), Origin::Default);
            }
        }
        self.layer_files(name, &fields, &mut merged)?;
        self.layer_environment(name, &fields, &mut merged);
        layer_flags(&fields, flags, &mut merged);
        let secret_overrides = self.secret_overrides(&fields, flags);
        self.check_required(name, &fields, &merged.values)?;
        let Merged { mut values, origins } = merged;
        let trust = self.resolve_verify_ssl(name, &mut values, &origins)?;
        let (engine, provider_values) = split_values(name, &fields, &values)?;
        Ok(ResolvedProfile {
            name: name.to_string(),
            provider,
            provider_values,
            engine,
            values,
            origins,
            secret_overrides,
            trust,
            env_api_key: self.env_api_key(),
        })
    }

    /// The provider the flags or the files name for the profile.
    fn provider_for(&self, name: &str, flags: &[FlagValue]) -> Result<&'static ProviderInfo> {
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
                Error::Config(format!(
                    "profile '{name}' has no `provider` field; known providers: {}",
                    registry::provider_names().join(", ")
                ))
            }
        })?;
        registry::find(&provider_name).map_err(|e| match self.locate(name, "provider") {
            Some(origin) => Error::Config(format!("{origin}: profile '{name}': {e}")),
            None => e,
        })
    }

    /// The files' tables for the profile, lowest first; an unknown field names its file:line.
    fn layer_files(&self, name: &str, fields: &FieldSet, merged: &mut Merged) -> Result<()> {
        for file in &self.files {
            let Some(table) = file.profiles.get(name) else {
                continue;
            };
            for (k, v) in table.iter().filter(|(k, _)| *k != "provider") {
                if !fields.is_setting(k) {
                    return Err(fields.unknown(&file.origin(name, k).to_string(), name, k));
                }
                merged.set(k, v.clone(), file.origin(name, k));
            }
        }
        Ok(())
    }

    /// `.env`, then the environment: `AGE_OAUTH_<FIELD>` for every setting of the provider.
    fn layer_environment(&self, name: &str, fields: &FieldSet, merged: &mut Merged) {
        for (vars, from_dotenv) in [(&self.dotenv, true), (&self.env, false)] {
            let exec_profile = vars.get(EXEC_MARKER).filter(|p| p.as_str() != name);
            for (var, raw) in vars.iter().filter(|(_, raw)| !raw.is_empty()) {
                if exec_profile.is_some() && EXEC_EXPORTED.contains(&var.as_str()) {
                    continue; // exported by `exec` for another profile
                }
                let Some(suffix) = var.strip_prefix(ENV_PREFIX) else {
                    continue;
                };
                let field = suffix.to_ascii_lowercase();
                if fields.is_setting(&field) {
                    let value = if fields.is_text(&field) { Value::String(raw.clone()) } else { loose_value(raw) };
                    let shown = format!("{ENV_PREFIX}{}", field.to_ascii_uppercase());
                    let origin = if from_dotenv { Origin::DotEnv(shown) } else { Origin::Env(shown) };
                    merged.set(&field, value, origin);
                }
            }
        }
    }

    /// Secrets given outside the store: flags, then environment, then `.env` (highest first).
    fn secret_overrides(&self, fields: &FieldSet, flags: &[FlagValue]) -> Secrets {
        let mut secrets = Secrets::default();
        for f in flags.iter().filter(|f| fields.is_secret(&f.field)) {
            let text = f.value.as_str().map(String::from).unwrap_or_else(|| f.value.to_string());
            secrets.offer(&f.field, Secret::new(text), SecretOrigin::Flag(f.flag.clone()));
        }
        for spec in fields.provider.secrets {
            let var = format!("{ENV_PREFIX}{}", spec.name.to_ascii_uppercase());
            if let Some(v) = self.env.get(&var).filter(|v| !v.is_empty()) {
                secrets.offer(spec.name, Secret::new(v.clone()), SecretOrigin::Env(var.clone()));
            }
            if let Some(v) = self.dotenv.get(&var).filter(|v| !v.is_empty()) {
                secrets.offer(spec.name, Secret::new(v.clone()), SecretOrigin::DotEnv(var.clone()));
            }
        }
        secrets
    }

    fn check_required(&self, name: &str, fields: &FieldSet, values: &Map<String, Value>) -> Result<()> {
        let missing: Vec<&str> = fields
            .own
            .iter()
            .filter(|f| f.required && !f.secret && !values.contains_key(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let provider = fields.provider.name;
        Err(Error::Config(format!(
            "profile '{name}' ({provider}) is missing required field(s): {}; set them with `age-oauth profile add {name} --provider {provider} --set FIELD=VALUE` or in {}",
            missing.join(", "),
            self.profile_files(name).last().map(|p| p.display().to_string()).unwrap_or_else(|| "config.toml".into())
        )))
    }

    /// Makes a relative `verify_ssl` path absolute against the file that set it (`.env`, the
    /// environment and flags: the working directory), and checks the bundle now, not at login.
    fn resolve_verify_ssl(
        &self,
        name: &str,
        values: &mut Map<String, Value>,
        origins: &BTreeMap<String, Origin>,
    ) -> Result<crate::binding::Trust> {
        let origin = origins.get("verify_ssl").cloned().unwrap_or(Origin::Default);
        if let Some(Value::String(path)) = values.get("verify_ssl") {
            let flag = path.eq_ignore_ascii_case("true") || path.eq_ignore_ascii_case("false");
            if !flag {
                let base = match &origin {
                    Origin::File { path, .. } => path.parent().map(Path::to_path_buf),
                    Origin::DotEnv(_) => self.dotenv_dir.clone(),
                    _ => std::env::current_dir().ok(),
                };
                let absolute = crate::binding::resolve_relative(path, &base.unwrap_or_default());
                values.insert("verify_ssl".into(), Value::String(absolute));
            }
        }
        let setting: crate::settings::VerifySslSetting =
            serde_json::from_value(values.get("verify_ssl").cloned().unwrap_or(Value::Bool(true)))
                .map_err(|e| Error::Config(format!("profile '{name}': field `verify_ssl`: {e}")))?;
        crate::binding::Trust::of_setting(&setting)
            .map_err(|e| Error::Config(format!("{origin}: profile '{name}': {e}")))
    }

    /// `AGE_OAUTH_API_KEY` of the process environment, when not empty. Not from `.env`: a working
    /// directory may not hand the profile a credential of its choosing.
    pub fn env_api_key(&self) -> Option<Secret> {
        self.env.get(crate::env::API_KEY.name).filter(|v| !v.is_empty()).map(|v| Secret::new(v.clone()))
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

/// Every flag names a field of the provider (a setting or a secret).
fn check_flags(fields: &FieldSet, flags: &[FlagValue]) -> Result<()> {
    match flags.iter().find(|f| f.field != "provider" && !fields.is_setting(&f.field) && !fields.is_secret(&f.field)) {
        Some(f) => Err(fields.unknown(&f.flag, "", &f.field)),
        None => Ok(()),
    }
}

/// The flags' settings, the top layer.
fn layer_flags(fields: &FieldSet, flags: &[FlagValue], merged: &mut Merged) {
    for f in flags.iter().filter(|f| fields.is_setting(&f.field)) {
        let value = match &f.value {
            v @ (Value::Number(_) | Value::Bool(_)) if fields.is_text(&f.field) => Value::String(v.to_string()),
            other => other.clone(),
        };
        merged.set(&f.field, value, Origin::Flag(f.flag.clone()));
    }
}

/// The engine's settings, typed, and the provider's values (everything else).
fn split_values(
    name: &str,
    fields: &FieldSet,
    values: &Map<String, Value>,
) -> Result<(EngineSettings, Map<String, Value>)> {
    let mut engine_values = Map::new();
    let mut provider_values = Map::new();
    for (k, v) in values {
        if fields.is_engine(k) {
            engine_values.insert(k.clone(), v.clone());
        } else {
            provider_values.insert(k.clone(), v.clone());
        }
    }
    let engine: EngineSettings = serde_path_to_error::deserialize(Value::Object(engine_values))
        .map_err(|e| Error::Config(format!("profile '{name}': field `{}`: {}", e.path(), e.inner())))?;
    Ok((engine, provider_values))
}
