//! Profiles: TOML files, `.env`, environment and flags layered into one profile (see `resolve`).
//! Every value remembers where it came from; secrets are refused in TOML and only ever come from env, flags or the store.

mod dotenv;
mod file;
mod resolve;
mod write;

pub use dotenv::read_dotenv;
pub use write::{remove_profile, set_default_profile, write_profile};

use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::registry::{self, ProviderInfo, Secrets};
use crate::settings::EngineSettings;
use file::{parse_file, read_config_file, toml_value_to_json, FileLayer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The checked-in, secret-free project file read from the working directory.
pub const PROJECT_FILE: &str = "age-oauth.toml";
/// The file in the working directory read for `AGE_OAUTH_*` lines (above the files, below the environment).
pub const DOTENV_FILE: &str = ".env";
/// Prefix of the environment (and `.env`) variables that set a profile field: `AGE_OAUTH_<FIELD>`.
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
    /// Not set anywhere: the provider's or the engine's default.
    Default,
    /// Written in a profile file.
    File {
        /// The user file or the project's `age-oauth.toml`.
        path: PathBuf,
        /// 1-based line of the field's key (0 when it could not be located).
        line: usize,
    },
    /// A line of the working directory's `.env`; holds the variable's name.
    DotEnv(String),
    /// A process environment variable; holds its name.
    Env(String),
    /// The command line; holds the flag as typed (`--portal`, `--set k`, or `prompt` for answers to prompts).
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

/// A value given on the command line for a profile field (`--portal`, `--set k=v`).
#[derive(Debug, Clone)]
pub struct FlagValue {
    /// The profile field it sets (a setting or a secret; `provider` picks the provider).
    pub field: String,
    /// The value, already read as TOML where it parses as such (see [`loose_value`]).
    pub value: Value,
    /// The flag as the user gave it, shown as the value's origin and in errors.
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
    /// The profile's name (also the name of its cache file).
    pub name: String,
    /// The provider plugin the profile names, which runs its sign-in.
    pub provider: &'static ProviderInfo,
    /// Provider settings (engine fields removed), defaults filled in.
    pub provider_values: Map<String, Value>,
    /// The settings the engine itself reads (refresh margin, TLS verification, ...), typed.
    pub engine: EngineSettings,
    /// All effective non-secret values, for display.
    pub values: Map<String, Value>,
    /// Where each of `values` came from, for `profile show` and errors.
    pub origins: BTreeMap<String, Origin>,
    /// Secrets given by flag, environment or `.env` (the store comes later).
    pub secret_overrides: Secrets,
    /// The TLS trust `verify_ssl` names, checked (a CA bundle exists and holds a certificate).
    pub trust: crate::binding::Trust,
    /// `AGE_OAUTH_API_KEY` from the process environment (never `.env`, never a file), when set and
    /// not empty: it wins over any login of the profile and touches no cache.
    pub env_api_key: Option<crate::secret::Secret>,
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
                print_dotenv_warnings(&warnings);
                dotenv = vars;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Config(format!("cannot read {} ({e})", dotenv_path.display()))),
        }
        let env = paths.env().with_prefix(ENV_PREFIX).map(|(k, v)| (k.to_string(), v.to_string())).collect();
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
}

/// Tells the user on stderr about `.env` lines that were skipped (not UTF-8).
// The one place the library prints: `Config::load` has no `Interaction` to report through, and
// passing the warnings out would change its signature for all of its callers.
#[allow(clippy::print_stderr)]
fn print_dotenv_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {}", crate::redact::for_terminal(w));
    }
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

/// True for a field name that can only be a secret (any provider's, or a generic one).
pub fn is_secret_name(field: &str) -> bool {
    ALWAYS_SECRET.contains(&field) || registry::providers().iter().any(|p| p.secret(field).is_some())
}
