//! Profile configuration: layer precedence (defaults < user < project < .env < env < flags) with origins,
//! profile selection, error messages (syntax, unknown/missing fields, secrets), the user file writer and the registry.

use age_oauth::providers::{self as registry, ProfileSettings, SecretOrigin};
use age_oauth::Error;
use age_oauth::Paths;
use age_oauth::{Config, FlagValue, ResolvedProfile, ValueOrigin as Origin};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

/// `KEY=VALUE` pairs as an env / .env map.
fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn file(path: &Path, text: &str) -> (PathBuf, String) {
    (path.to_path_buf(), text.to_string())
}

fn flag(field: &str, value: Value, flag: &str) -> FlagValue {
    FlagValue { field: field.into(), value, flag: flag.into() }
}

/// A config from one in-memory file and no env.
fn one_file(text: &str) -> (PathBuf, Result<Config, Error>) {
    let path = PathBuf::from("/nonexistent/home/config.toml");
    let cfg = Config::from_parts(vec![file(&path, text)], BTreeMap::new(), BTreeMap::new());
    (path, cfg)
}

fn config_err(result: Result<ResolvedProfile, Error>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected Error::Config, got {other:?}"),
        Ok(p) => panic!("expected an error, got profile {} with {:?}", p.name, p.values),
    }
}

fn file_origin(path: &Path, line: usize) -> Origin {
    Origin::File { path: path.to_path_buf(), line }
}

fn secret_text(profile: &ResolvedProfile, name: &str) -> Option<String> {
    profile.secret_overrides.get(name).map(|s| s.expose().to_string())
}

// The layered sources used by the precedence tests. Line numbers are asserted below.
const USER_FILE: &str = r#"# user-wide profiles
[profiles.p]
provider = "esri-oob"
portal = "https://user.example.com/portal"
client_id = "user-id"
refresh_margin = 10
expiration = 100
referer = "https://user-referer.example.com"
"#;

const PROJECT_FILE: &str = r#"# checked-in project profile

[profiles.p]
portal = "https://project.example.com/portal"
refresh_margin = 20
expiration = 200
"#;

fn user_path() -> PathBuf {
    PathBuf::from("/nonexistent/home/config.toml")
}
fn project_path() -> PathBuf {
    PathBuf::from("/nonexistent/project/age-oauth.toml")
}

/// Builds the config with the first `layers` of: user file, project file, .env, env.
fn layered(layers: usize) -> Config {
    let mut files = vec![file(&user_path(), USER_FILE)];
    if layers >= 2 {
        files.push(file(&project_path(), PROJECT_FILE));
    }
    let dotenv = if layers >= 3 {
        vars(&[("AGE_OAUTH_PORTAL", "https://dotenv.example.com/portal"), ("AGE_OAUTH_REFRESH_MARGIN", "30")])
    } else {
        BTreeMap::new()
    };
    let env = if layers >= 4 {
        vars(&[("AGE_OAUTH_PORTAL", "https://env.example.com/portal"), ("AGE_OAUTH_REFRESH_MARGIN", "40")])
    } else {
        BTreeMap::new()
    };
    Config::from_parts(files, dotenv, env).expect("valid sources")
}

// ------------------------------------------------------------------------------------------------
// Layer precedence and origins
// ------------------------------------------------------------------------------------------------

#[test]
fn defaults_fill_unset_fields_with_default_origin() {
    let p = layered(1).resolve("p", &[]).unwrap();
    assert_eq!(p.provider.name, "esri-oob");
    assert_eq!(p.values["rotate_refresh_within"], json!(86400));
    assert_eq!(p.origins["rotate_refresh_within"], Origin::Default);
    assert_eq!(p.values["verify_ssl"], json!(true));
    assert_eq!(p.origins["verify_ssl"], Origin::Default);
    // Engine fields go to `engine`, provider fields to `provider_values`.
    assert!(!p.provider_values.contains_key("refresh_margin"));
    assert!(!p.provider_values.contains_key("verify_ssl"));
    assert_eq!(p.provider_values["client_id"], json!("user-id"));
    assert_eq!(p.provider_values["rotate_refresh_within"], json!(86400));
}

#[test]
fn default_refresh_margin_is_60() {
    let (_, cfg) = one_file(
        "[profiles.d]\nprovider = \"esri-oob\"\nportal = \"https://gis.example.com/portal\"\nclient_id = \"x\"\n",
    );
    let p = cfg.unwrap().resolve("d", &[]).unwrap();
    assert_eq!(p.engine.refresh_margin, 60);
    assert_eq!(p.values["refresh_margin"], json!(60));
    assert_eq!(p.origins["refresh_margin"], Origin::Default);
}

#[test]
fn user_file_overrides_defaults_with_line_numbers() {
    let p = layered(1).resolve("p", &[]).unwrap();
    assert_eq!(p.values["portal"], json!("https://user.example.com/portal"));
    assert_eq!(p.origins["portal"], file_origin(&user_path(), 4));
    assert_eq!(p.origins["client_id"], file_origin(&user_path(), 5));
    assert_eq!(p.engine.refresh_margin, 10);
    assert_eq!(p.origins["refresh_margin"], file_origin(&user_path(), 6));
    assert_eq!(p.values["expiration"], json!(100));
    assert_eq!(p.origins["expiration"], file_origin(&user_path(), 7));
    assert_eq!(p.origins["referer"], file_origin(&user_path(), 8));
    assert_eq!(p.origins["portal"].to_string(), "/nonexistent/home/config.toml:4");
}

#[test]
fn project_file_overrides_user_file() {
    let p = layered(2).resolve("p", &[]).unwrap();
    assert_eq!(p.values["portal"], json!("https://project.example.com/portal"));
    assert_eq!(p.origins["portal"], file_origin(&project_path(), 4));
    assert_eq!(p.engine.refresh_margin, 20);
    assert_eq!(p.origins["refresh_margin"], file_origin(&project_path(), 5));
    assert_eq!(p.values["expiration"], json!(200));
    assert_eq!(p.origins["expiration"], file_origin(&project_path(), 6));
    // Fields only the user file sets still come from it.
    assert_eq!(p.values["client_id"], json!("user-id"));
    assert_eq!(p.origins["client_id"], file_origin(&user_path(), 5));
    assert_eq!(p.origins["referer"], file_origin(&user_path(), 8));
    assert_eq!(p.origins["rotate_refresh_within"], Origin::Default);
}

#[test]
fn dotenv_overrides_files() {
    let p = layered(3).resolve("p", &[]).unwrap();
    assert_eq!(p.values["portal"], json!("https://dotenv.example.com/portal"));
    assert_eq!(p.origins["portal"], Origin::DotEnv("AGE_OAUTH_PORTAL".into()));
    assert_eq!(p.engine.refresh_margin, 30);
    assert_eq!(p.values["refresh_margin"], json!(30), "a numeric .env value is read as an integer");
    assert_eq!(p.origins["refresh_margin"], Origin::DotEnv("AGE_OAUTH_REFRESH_MARGIN".into()));
    assert_eq!(p.origins["expiration"], file_origin(&project_path(), 6));
}

#[test]
fn env_overrides_dotenv() {
    let p = layered(4).resolve("p", &[]).unwrap();
    assert_eq!(p.values["portal"], json!("https://env.example.com/portal"));
    assert_eq!(p.origins["portal"], Origin::Env("AGE_OAUTH_PORTAL".into()));
    assert_eq!(p.engine.refresh_margin, 40);
    assert_eq!(p.origins["refresh_margin"], Origin::Env("AGE_OAUTH_REFRESH_MARGIN".into()));
    assert_eq!(p.origins["portal"].to_string(), "env AGE_OAUTH_PORTAL");
    assert_eq!(p.origins["client_id"], file_origin(&user_path(), 5));
}

#[test]
fn flags_override_everything() {
    let flags = [
        flag("portal", json!("https://flag.example.com/portal"), "--portal"),
        flag("refresh_margin", json!(50), "--set refresh_margin=50"),
    ];
    let p = layered(4).resolve("p", &flags).unwrap();
    assert_eq!(p.values["portal"], json!("https://flag.example.com/portal"));
    assert_eq!(p.origins["portal"], Origin::Flag("--portal".into()));
    assert_eq!(p.engine.refresh_margin, 50);
    assert_eq!(p.origins["refresh_margin"], Origin::Flag("--set refresh_margin=50".into()));
    // Untouched fields keep their own origins.
    assert_eq!(p.origins["expiration"], file_origin(&project_path(), 6));
    assert_eq!(p.origins["client_id"], file_origin(&user_path(), 5));
    assert_eq!(p.origins["rotate_refresh_within"], Origin::Default);
    assert_eq!(p.provider_values["portal"], json!("https://flag.example.com/portal"));
}

#[test]
fn env_values_for_unknown_names_are_ignored() {
    let env = vars(&[("AGE_OAUTH_HOME", "/somewhere"), ("AGE_OAUTH_NOT_A_FIELD", "x"), ("AGE_OAUTH_PROFILE", "p")]);
    let cfg = Config::from_parts(vec![file(&user_path(), USER_FILE)], BTreeMap::new(), env).unwrap();
    let p = cfg.resolve("p", &[]).unwrap();
    let mut keys: Vec<&str> = p.values.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["client_id", "expiration", "portal", "referer", "refresh_margin", "rotate_refresh_within", "verify_ssl"]
    );
}

#[test]
fn env_value_for_a_string_field_that_looks_like_a_bool_stays_usable() {
    // verify_ssl accepts a bool or a path, so "false" from the env must become `false`.
    let env = vars(&[("AGE_OAUTH_VERIFY_SSL", "false")]);
    let cfg = Config::from_parts(vec![file(&user_path(), USER_FILE)], BTreeMap::new(), env).unwrap();
    let p = cfg.resolve("p", &[]).unwrap();
    assert_eq!(p.values["verify_ssl"], json!(false));
    assert_eq!(p.engine.verify_ssl.to_verify(), age_oauth::VerifySsl::Off);
    assert_eq!(p.origins["verify_ssl"], Origin::Env("AGE_OAUTH_VERIFY_SSL".into()));
}

#[test]
fn numeric_looking_env_value_for_a_string_field_builds() {
    let env = vars(&[("AGE_OAUTH_CLIENT_ID", "12345")]);
    let cfg = Config::from_parts(vec![file(&user_path(), USER_FILE)], BTreeMap::new(), env).unwrap();
    let p = cfg.resolve("p", &[]).unwrap();
    let settings = ProfileSettings { profile: p.name.clone(), values: p.provider_values.clone() };
    if let Err(e) = (p.provider.build)(&settings) {
        panic!("a numeric-looking client_id from the environment breaks the profile: {e}");
    }
    assert_eq!(p.values["client_id"], json!("12345"));
}

// ------------------------------------------------------------------------------------------------
// Profile selection
// ------------------------------------------------------------------------------------------------

const TWO_PROFILES: &str = r#"default_profile = "b"
[profiles.a]
provider = "esri-oob"
portal = "https://a.example.com/portal"
client_id = "a"
[profiles.b]
provider = "esri-app"
portal = "https://b.example.com/portal"
client_id = "b"
[profiles.c]
provider = "esri-oob"
portal = "https://c.example.com/portal"
client_id = "c"
"#;

fn selection(text: &str, dotenv: &[(&str, &str)], env: &[(&str, &str)]) -> Config {
    Config::from_parts(vec![file(&user_path(), text)], vars(dotenv), vars(env)).unwrap()
}

#[test]
fn selection_flag_beats_env_dotenv_and_default() {
    let cfg = selection(TWO_PROFILES, &[("AGE_OAUTH_PROFILE", "a")], &[("AGE_OAUTH_PROFILE", "a")]);
    assert_eq!(cfg.select(Some("c")).unwrap(), "c");
}

#[test]
fn selection_env_beats_dotenv_and_default() {
    let cfg = selection(TWO_PROFILES, &[("AGE_OAUTH_PROFILE", "c")], &[("AGE_OAUTH_PROFILE", "a")]);
    assert_eq!(cfg.select(None).unwrap(), "a");
}

#[test]
fn selection_dotenv_beats_default_profile() {
    let cfg = selection(TWO_PROFILES, &[("AGE_OAUTH_PROFILE", "c")], &[]);
    assert_eq!(cfg.select(None).unwrap(), "c");
}

#[test]
fn selection_default_profile_then_project_default_wins() {
    let cfg = selection(TWO_PROFILES, &[], &[]);
    assert_eq!(cfg.select(None).unwrap(), "b");
    let project = "default_profile = \"a\"\n";
    let cfg = Config::from_parts(
        vec![file(&user_path(), TWO_PROFILES), file(&project_path(), project)],
        BTreeMap::new(),
        BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(cfg.select(None).unwrap(), "a", "the project file's default_profile has precedence");
}

#[test]
fn selection_empty_env_profile_falls_back_to_dotenv() {
    let cfg = selection(TWO_PROFILES, &[("AGE_OAUTH_PROFILE", "c")], &[("AGE_OAUTH_PROFILE", "")]);
    assert_eq!(cfg.select(None).unwrap(), "c");
}

#[test]
fn selection_the_only_profile() {
    let (_, cfg) =
        one_file("[profiles.solo]\nprovider = \"esri-oob\"\nportal = \"https://x.example.com\"\nclient_id = \"x\"\n");
    assert_eq!(cfg.unwrap().select(None).unwrap(), "solo");
}

#[test]
fn selection_several_profiles_and_none_chosen_lists_them() {
    let text = TWO_PROFILES.replace("default_profile = \"b\"\n", "");
    let cfg = selection(&text, &[], &[]);
    match cfg.select(None) {
        Err(Error::Config(m)) => {
            assert!(m.contains("several profiles exist (a, b, c)"), "{m}");
            assert!(m.contains("--profile NAME") && m.contains("AGE_OAUTH_PROFILE"), "{m}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn selection_without_any_profile_says_how_to_add_one() {
    let cfg = Config::from_parts(vec![], BTreeMap::new(), BTreeMap::new()).unwrap();
    match cfg.select(None) {
        Err(Error::Config(m)) => {
            assert!(m.contains("no profile is configured") && m.contains("age-oauth profile add"), "{m}")
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn resolving_an_unknown_profile_lists_the_known_ones() {
    let cfg = selection(TWO_PROFILES, &[], &[]);
    let m = config_err(cfg.resolve("zzz", &[]));
    assert!(m.contains("no profile named 'zzz'") && m.contains("(profiles: a, b, c)"), "{m}");
}

// ------------------------------------------------------------------------------------------------
// Error messages
// ------------------------------------------------------------------------------------------------

#[test]
fn malformed_toml_names_path_line_and_column() {
    let text = "# comment\n[profiles.p]\nprovider = \"esri-oob\"\nrefresh_margin = = 5\n";
    let (path, cfg) = one_file(text);
    match cfg {
        Err(Error::ConfigSyntax { path: p, line, column, message }) => {
            assert_eq!(p, path);
            assert_eq!(line, 4);
            assert_eq!(column, 18, "the second `=` is at column 18");
            assert!(!message.is_empty());
            let shown = Error::ConfigSyntax { path: p, line, column, message }.to_string();
            assert!(shown.starts_with("/nonexistent/home/config.toml:4:18: "), "{shown}");
        }
        Err(other) => panic!("expected ConfigSyntax, got {other:?}"),
        Ok(_) => panic!("malformed TOML was accepted"),
    }
}

#[test]
fn unterminated_string_is_a_syntax_error_on_its_line() {
    let text = "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example.com\nclient_id = \"x\"\n";
    let (_, cfg) = one_file(text);
    match cfg {
        Err(e @ Error::ConfigSyntax { .. }) => {
            let Error::ConfigSyntax { line, .. } = &e else { unreachable!() };
            assert_eq!(*line, 3, "{e}");
            assert_eq!(e.exit_code(), 2);
        }
        Err(other) => panic!("expected ConfigSyntax, got {other:?}"),
        Ok(_) => panic!("malformed TOML was accepted"),
    }
}

#[test]
fn unknown_top_level_key_is_refused_with_position() {
    let (path, cfg) = one_file("\n\ncolour = \"blue\"\n");
    match cfg {
        Err(Error::ConfigSyntax { path: p, line, column, message }) => {
            assert_eq!((p, line, column), (path, 3, 1));
            assert!(message.contains("unknown top-level key `colour`"), "{message}");
        }
        Err(other) => panic!("expected ConfigSyntax, got {other:?}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn unknown_field_is_named_with_file_line_and_known_fields() {
    let text = "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example.com\"\nclient_id = \"x\"\ncolour = \"blue\"\n";
    let (_, cfg) = one_file(text);
    let m = config_err(cfg.unwrap().resolve("p", &[]));
    assert!(m.starts_with("/nonexistent/home/config.toml:5: "), "{m}");
    assert!(m.contains("unknown field `colour` for provider esri-oob"), "{m}");
    for known in
        ["portal", "client_id", "expiration", "referer", "rotate_refresh_within", "refresh_margin", "verify_ssl"]
    {
        assert!(m.contains(known), "known field {known} missing from: {m}");
    }
}

#[test]
fn unknown_field_given_as_flag_names_the_flag() {
    let (_, cfg) =
        one_file("[profiles.p]\nprovider = \"esri-app\"\nportal = \"https://x.example.com\"\nclient_id = \"x\"\n");
    let m = config_err(cfg.unwrap().resolve("p", &[flag("colour", json!("blue"), "--set colour=blue")]));
    assert!(m.starts_with("--set colour=blue: unknown field `colour` for provider esri-app"), "{m}");
    // esri-app has no rotate_refresh_within.
    assert!(!m.contains("rotate_refresh_within"), "{m}");
    assert!(m.contains("client_id") && m.contains("expiration"), "{m}");
}

#[test]
fn unknown_provider_lists_known_providers() {
    let text = "[profiles.p]\n\nprovider = \"okta-magic\"\nportal = \"https://x.example.com\"\n";
    let (_, cfg) = one_file(text);
    let e = cfg.unwrap().resolve("p", &[]).err().expect("unknown provider accepted");
    assert_eq!(e.exit_code(), 2);
    let m = e.to_string();
    assert!(m.starts_with("/nonexistent/home/config.toml:3: "), "{m}");
    assert!(m.contains("unknown provider `okta-magic`"), "{m}");
    assert!(m.contains("esri-oob") && m.contains("esri-app"), "{m}");
}

#[test]
fn missing_provider_lists_known_providers() {
    let (_, cfg) = one_file("[profiles.p]\nportal = \"https://x.example.com\"\n");
    let m = config_err(cfg.unwrap().resolve("p", &[]));
    assert!(m.contains("profile 'p' has no `provider` field"), "{m}");
    assert!(m.contains("esri-oob") && m.contains("esri-app"), "{m}");
}

#[test]
fn missing_required_fields_are_listed() {
    let (_, cfg) = one_file("[profiles.p]\nprovider = \"esri-oob\"\nexpiration = 5\n");
    let m = config_err(cfg.unwrap().resolve("p", &[]));
    let marker = "is missing required field(s): ";
    let start = m.find(marker).unwrap_or_else(|| panic!("{m}")) + marker.len();
    let list = &m[start..m[start..].find(';').map(|i| start + i).unwrap_or(m.len())];
    let mut names: Vec<&str> = list.split(", ").collect();
    names.sort();
    assert_eq!(names, ["client_id", "portal"], "{m}");
    assert!(m.contains("profile 'p' (esri-oob)"), "{m}");
    assert!(m.contains("/nonexistent/home/config.toml"), "the message names the file to edit: {m}");
}

#[test]
fn one_missing_field_is_listed_alone() {
    let (_, cfg) = one_file("[profiles.p]\nprovider = \"esri-app\"\nportal = \"https://x.example.com\"\n");
    let m = config_err(cfg.unwrap().resolve("p", &[]));
    assert!(m.contains("is missing required field(s): client_id;"), "{m}");
}

#[test]
fn required_field_from_env_satisfies_the_requirement() {
    let cfg = Config::from_parts(
        vec![file(&user_path(), "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example.com\"\n")],
        BTreeMap::new(),
        vars(&[("AGE_OAUTH_CLIENT_ID", "from-env")]),
    )
    .unwrap();
    let p = cfg.resolve("p", &[]).unwrap();
    assert_eq!(p.values["client_id"], json!("from-env"));
    assert_eq!(p.origins["client_id"], Origin::Env("AGE_OAUTH_CLIENT_ID".into()));
}

#[test]
fn invalid_engine_value_names_the_field() {
    let (_, cfg) = one_file(
        "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example.com\"\nclient_id = \"x\"\nrefresh_margin = \"soon\"\n",
    );
    let m = config_err(cfg.unwrap().resolve("p", &[]));
    assert!(m.contains("profile 'p': field `refresh_margin`"), "{m}");
}

fn assert_secret_refused(field: &str, env_var: &str, flag: &str) {
    let text = format!(
        "[profiles.p]\nprovider = \"esri-oob\"\nportal = \"https://x.example.com\"\nclient_id = \"x\"\n  {field} = \"hunter2-value\"\n"
    );
    let (path, cfg) = one_file(&text);
    match cfg {
        Err(Error::ConfigSyntax { path: p, line, column, message }) => {
            assert_eq!((p, line, column), (path, 5, 3), "{message}");
            assert!(message.contains(&format!("`{field}` in profile 'p' is a secret")), "{message}");
            assert!(message.contains(env_var), "should point to {env_var}: {message}");
            assert!(message.contains(flag), "should point to {flag}: {message}");
            assert!(message.contains("age-oauth profile add p"), "{message}");
            assert!(!message.contains("hunter2-value"), "the error must not echo the secret: {message}");
        }
        Err(other) => panic!("expected ConfigSyntax, got {other:?}"),
        Ok(_) => panic!("a secret in a TOML file was accepted"),
    }
}

#[test]
fn client_secret_in_toml_is_refused_and_says_where_to_put_it() {
    assert_secret_refused("client_secret", "AGE_OAUTH_CLIENT_SECRET", "--client-secret");
}

#[test]
fn password_in_toml_is_refused_and_says_where_to_put_it() {
    assert_secret_refused("password", "AGE_OAUTH_PASSWORD", "--password");
}

// ------------------------------------------------------------------------------------------------
// Secrets from env, .env and flags
// ------------------------------------------------------------------------------------------------

const APP_FILE: &str =
    "[profiles.app]\nprovider = \"esri-app\"\nportal = \"https://x.example.com\"\nclient_id = \"x\"\n";

fn app_profile(dotenv: &[(&str, &str)], env: &[(&str, &str)], flags: &[FlagValue]) -> ResolvedProfile {
    Config::from_parts(vec![file(&user_path(), APP_FILE)], vars(dotenv), vars(env))
        .unwrap()
        .resolve("app", flags)
        .unwrap()
}

fn assert_secret_not_in_values(p: &ResolvedProfile) {
    assert!(!p.values.contains_key("client_secret"), "{:?}", p.values.keys());
    assert!(!p.provider_values.contains_key("client_secret"));
    assert!(!p.origins.contains_key("client_secret"));
    let shown = serde_json::to_string(&p.values).unwrap();
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn secret_from_dotenv() {
    let p = app_profile(&[("AGE_OAUTH_CLIENT_SECRET", "s3cret-dotenv")], &[], &[]);
    assert_eq!(secret_text(&p, "client_secret").as_deref(), Some("s3cret-dotenv"));
    assert_eq!(
        p.secret_overrides.origin("client_secret"),
        Some(&SecretOrigin::DotEnv("AGE_OAUTH_CLIENT_SECRET".into()))
    );
    assert_secret_not_in_values(&p);
}

#[test]
fn secret_from_env_beats_dotenv() {
    let p =
        app_profile(&[("AGE_OAUTH_CLIENT_SECRET", "s3cret-dotenv")], &[("AGE_OAUTH_CLIENT_SECRET", "s3cret-env")], &[]);
    assert_eq!(secret_text(&p, "client_secret").as_deref(), Some("s3cret-env"));
    assert_eq!(p.secret_overrides.origin("client_secret"), Some(&SecretOrigin::Env("AGE_OAUTH_CLIENT_SECRET".into())));
    assert_secret_not_in_values(&p);
}

#[test]
fn empty_env_secret_falls_back_to_dotenv() {
    let p = app_profile(&[("AGE_OAUTH_CLIENT_SECRET", "s3cret-dotenv")], &[("AGE_OAUTH_CLIENT_SECRET", "")], &[]);
    assert_eq!(secret_text(&p, "client_secret").as_deref(), Some("s3cret-dotenv"));
    assert_eq!(
        p.secret_overrides.origin("client_secret"),
        Some(&SecretOrigin::DotEnv("AGE_OAUTH_CLIENT_SECRET".into()))
    );
}

#[test]
fn secret_from_flag_beats_env_and_dotenv() {
    let p = app_profile(
        &[("AGE_OAUTH_CLIENT_SECRET", "s3cret-dotenv")],
        &[("AGE_OAUTH_CLIENT_SECRET", "s3cret-env")],
        &[flag("client_secret", json!("s3cret-flag"), "--client-secret")],
    );
    assert_eq!(secret_text(&p, "client_secret").as_deref(), Some("s3cret-flag"));
    assert_eq!(p.secret_overrides.origin("client_secret"), Some(&SecretOrigin::Flag("--client-secret".into())));
    assert_eq!(p.secret_overrides.names().collect::<Vec<_>>(), ["client_secret"]);
    assert_secret_not_in_values(&p);
}

#[test]
fn no_secret_given_means_no_override() {
    let p = app_profile(&[], &[], &[]);
    assert_eq!(p.secret_overrides.names().count(), 0);
    assert!(p.secret_overrides.get("client_secret").is_none());
}

// ------------------------------------------------------------------------------------------------
// Writing the user file
// ------------------------------------------------------------------------------------------------

const EXISTING_USER_FILE: &str = r#"# My age-oauth profiles — keep this comment
default_profile = "keep"

# the production portal
[profiles.keep]
provider = "esri-oob"
portal = "https://keep.example.com/portal" # inline comment
client_id = "keep-id"
"#;

fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn write_and_remove_profile_keep_other_profiles_and_comments() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    std::fs::write(&paths.config_file, EXISTING_USER_FILE).unwrap();

    let new_fields = fields(&[
        ("portal", json!("https://new.example.com/portal")),
        ("client_id", json!("new-id")),
        ("refresh_margin", json!(120)),
    ]);
    age_oauth::write_profile(&paths, "new", "esri-oob", &new_fields).unwrap();
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    assert!(text.starts_with(EXISTING_USER_FILE.trim_end()), "existing content must be kept verbatim:\n{text}");
    assert!(text.contains("[profiles.new]"), "{text}");

    let cfg =
        Config::from_parts(vec![(paths.config_file.clone(), text.clone())], BTreeMap::new(), BTreeMap::new()).unwrap();
    assert_eq!(cfg.profile_names(), ["keep", "new"]);
    let new = cfg.resolve("new", &[]).unwrap();
    assert_eq!(new.provider.name, "esri-oob");
    assert_eq!(new.values["portal"], json!("https://new.example.com/portal"));
    assert_eq!(new.engine.refresh_margin, 120);
    let keep = cfg.resolve("keep", &[]).unwrap();
    assert_eq!(keep.values["client_id"], json!("keep-id"));
    assert_eq!(keep.origins["client_id"], file_origin(&paths.config_file, 8));

    // Replacing a profile rewrites only its table.
    age_oauth::write_profile(
        &paths,
        "new",
        "esri-app",
        &fields(&[("portal", json!("https://n2.example.com")), ("client_id", json!("n2"))]),
    )
    .unwrap();
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    assert!(text.starts_with(EXISTING_USER_FILE.trim_end()), "{text}");
    assert_eq!(text.matches("[profiles.new]").count(), 1, "{text}");
    assert!(text.contains("provider = \"esri-app\"") && !text.contains("new-id"), "{text}");

    assert!(age_oauth::remove_profile(&paths, "new").unwrap());
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    assert!(!text.contains("[profiles.new]"), "{text}");
    assert!(text.contains("# My age-oauth profiles — keep this comment"), "{text}");
    assert!(text.contains("# the production portal"), "{text}");
    assert!(text.contains("# inline comment"), "{text}");
    assert!(text.contains("[profiles.keep]"), "{text}");
    assert!(!age_oauth::remove_profile(&paths, "new").unwrap(), "removing twice reports false");
    assert!(!age_oauth::remove_profile(&paths, "never-there").unwrap());
}

#[test]
fn write_profile_into_a_fresh_home_creates_a_loadable_file() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().join("nested").join("home"));
    age_oauth::write_profile(
        &paths,
        "p",
        "esri-app",
        &fields(&[("portal", json!("https://x.example.com")), ("client_id", json!("cid"))]),
    )
    .unwrap();
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    let cfg = Config::from_parts(vec![(paths.config_file.clone(), text)], BTreeMap::new(), BTreeMap::new()).unwrap();
    assert_eq!(cfg.select(None).unwrap(), "p");
    let p = cfg.resolve("p", &[]).unwrap();
    assert_eq!(p.provider.name, "esri-app");
    assert_eq!(p.values["client_id"], json!("cid"));
}

#[cfg(unix)]
#[test]
fn written_user_file_is_0600_in_a_0700_dir() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("cfg");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let paths = Paths::under(dir.clone());
    std::fs::write(&paths.config_file, EXISTING_USER_FILE).unwrap();
    std::fs::set_permissions(&paths.config_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    age_oauth::write_profile(
        &paths,
        "p",
        "esri-oob",
        &fields(&[("portal", json!("https://x.example.com")), ("client_id", json!("c"))]),
    )
    .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&paths.config_file), 0o600);
    assert_eq!(mode(&dir), 0o700);

    std::fs::set_permissions(&paths.config_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(age_oauth::remove_profile(&paths, "p").unwrap());
    assert_eq!(mode(&paths.config_file), 0o600, "remove_profile rewrites the file 0600 too");
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn write_profile_never_writes_a_secret() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    std::fs::write(&paths.config_file, EXISTING_USER_FILE).unwrap();
    let with_secret = fields(&[
        ("portal", json!("https://x.example.com")),
        ("client_id", json!("c")),
        ("client_secret", json!("hunter2-in-toml")),
    ]);
    // Refusing may be an error or (in debug builds) a failed assertion; writing it is never acceptable.
    let outcome = std::panic::catch_unwind(|| age_oauth::write_profile(&paths, "p", "esri-app", &with_secret));
    assert!(!matches!(outcome, Ok(Ok(()))), "write_profile accepted a client_secret");
    let text = std::fs::read_to_string(&paths.config_file).unwrap();
    assert!(!text.contains("hunter2-in-toml"), "{text}");
    assert_eq!(text, EXISTING_USER_FILE, "the file is left as it was");
}

#[test]
fn write_profile_refuses_a_secret_with_an_error() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let with_secret =
        fields(&[("portal", json!("https://x.example.com")), ("client_id", json!("c")), ("password", json!("pw"))]);
    let outcome = std::panic::catch_unwind(|| age_oauth::write_profile(&paths, "p", "esri-app", &with_secret));
    match outcome {
        Ok(Err(Error::Config(m))) => assert!(m.contains("password"), "{m}"),
        Ok(other) => panic!("expected Error::Config, got {other:?}"),
        Err(_) => panic!("write_profile panicked instead of returning an error"),
    }
    assert!(!paths.config_file.exists());
}

#[test]
fn write_profile_refuses_a_bad_profile_name() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::under(home.path().to_path_buf());
    let e = age_oauth::write_profile(&paths, "../evil", "esri-oob", &Map::new()).unwrap_err();
    assert!(matches!(&e, Error::Config(m) if m.contains("invalid profile name '../evil'")), "{e:?}");
    assert!(!paths.config_file.exists());
}

// ------------------------------------------------------------------------------------------------
// loose_value
// ------------------------------------------------------------------------------------------------

#[test]
fn loose_value_types() {
    assert_eq!(age_oauth::loose_value("60"), json!(60));
    assert!(age_oauth::loose_value("60").is_i64());
    assert_eq!(age_oauth::loose_value("true"), json!(true));
    assert_eq!(age_oauth::loose_value("false"), json!(false));
    assert_eq!(age_oauth::loose_value("https://x"), json!("https://x"));
    assert_eq!(age_oauth::loose_value("/etc/ssl/ca.pem"), json!("/etc/ssl/ca.pem"));
    assert_eq!(age_oauth::loose_value("[1, 2]"), json!([1, 2]));
    assert_eq!(age_oauth::loose_value("-1"), json!(-1));
    assert_eq!(age_oauth::loose_value("hello world"), json!("hello world"));
}

// ------------------------------------------------------------------------------------------------
// Registry and templates
// ------------------------------------------------------------------------------------------------

#[test]
fn built_in_providers_are_registered() {
    let names = registry::provider_names();
    assert!(names.contains(&"esri-oob"), "{names:?}");
    assert!(names.contains(&"esri-app"), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "providers are listed sorted by name");
    assert_eq!(registry::find("esri-oob").unwrap().name, "esri-oob");
    let m = registry::find("nope").err().unwrap().to_string();
    assert!(m.contains("unknown provider `nope`") && m.contains("esri-app, esri-oob"), "{m}");
}

#[test]
fn every_provider_template_parses_resolves_and_builds() {
    let providers = registry::all();
    assert!(providers.len() >= 2);
    for info in providers {
        let path = PathBuf::from(format!("/templates/{}.toml", info.name));
        let cfg = Config::from_parts(vec![(path.clone(), info.template.to_string())], BTreeMap::new(), BTreeMap::new())
            .unwrap_or_else(|e| panic!("template of {} does not parse: {e}", info.name));
        let name = cfg.select(None).unwrap_or_else(|e| panic!("template of {}: {e}", info.name));
        assert_eq!(
            cfg.provider_of(&name).as_deref(),
            Some(info.name),
            "template of {} names another provider",
            info.name
        );
        let resolved =
            cfg.resolve(&name, &[]).unwrap_or_else(|e| panic!("template of {} does not resolve: {e}", info.name));
        assert_eq!(resolved.provider.name, info.name);
        assert!(resolved.secret_overrides.names().next().is_none());
        let settings = ProfileSettings { profile: name.clone(), values: resolved.provider_values.clone() };
        let provider =
            (info.build)(&settings).unwrap_or_else(|e| panic!("template of {} does not build: {e}", info.name));
        if let Some(url) = resolved.values.get("portal").and_then(Value::as_str) {
            assert_eq!(provider.service_url().as_deref(), Some(url.trim_end_matches('/')));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Portal URL policy (checked when the provider is built)
// ------------------------------------------------------------------------------------------------

fn build_with_portal(provider: &str, portal: &str) -> Result<Box<dyn age_oauth::providers::Provider>, Error> {
    let text = format!("[profiles.p]\nprovider = \"{provider}\"\nportal = \"{portal}\"\nclient_id = \"cid\"\n");
    let (_, cfg) = one_file(&text);
    let resolved = cfg.unwrap().resolve("p", &[]).expect("the URL is only checked by the provider");
    let settings = ProfileSettings { profile: "p".into(), values: resolved.provider_values };
    (resolved.provider.build)(&settings)
}

#[test]
fn plain_http_on_a_remote_host_is_rejected() {
    for provider in ["esri-oob", "esri-app"] {
        let e = build_with_portal(provider, "http://gis.example.com/portal")
            .err()
            .expect("http:// to a remote host accepted");
        assert_eq!(e.exit_code(), 2);
        let m = e.to_string();
        assert!(
            m.contains("profile 'p': `portal` uses http:// on a non-loopback host (gis.example.com)"),
            "{provider}: {m}"
        );
    }
}

#[test]
fn https_and_loopback_http_are_accepted() {
    for provider in ["esri-oob", "esri-app"] {
        let p = build_with_portal(provider, "https://gis.example.com/portal/").unwrap();
        assert_eq!(p.service_url().as_deref(), Some("https://gis.example.com/portal"));
        let p = build_with_portal(provider, "http://127.0.0.1:8080/portal").unwrap();
        assert_eq!(p.service_url().as_deref(), Some("http://127.0.0.1:8080/portal"));
        let p = build_with_portal(provider, "http://localhost:8080/portal").unwrap();
        assert_eq!(p.service_url().as_deref(), Some("http://localhost:8080/portal"));
    }
}

#[test]
fn secret_type_is_kept_out_of_display() {
    // Secrets gathered from the environment never show in Debug output of the overrides.
    let p = app_profile(&[], &[("AGE_OAUTH_CLIENT_SECRET", "s3cret-env")], &[]);
    let shown = format!("{:?}", p.secret_overrides);
    assert!(!shown.contains("s3cret-env"), "{shown}");
}
