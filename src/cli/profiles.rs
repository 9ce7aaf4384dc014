//! Commands about configuration and state: providers, profile add / list / show / remove, status.
//! They read config and caches; only `profile add` and `remove` write.

use super::args::{AddArgs, FieldArgs};
use super::connections::{ask_name_and_provider, confirm_remove};
use super::output::{print_json, print_line};
use super::rows::{CacheState, ProfileRow, Status};
use crate::config;
use crate::config::{loose_value, Config, FlagValue};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::interact::Interaction;
use crate::registry;
use crate::registry::SecretOrigin;
use crate::secret::Secret;
use serde_json::{json, Map, Value};

pub(super) fn cmd_providers(as_json: bool) -> Result<i32> {
    let providers = registry::providers();
    if as_json {
        let list: Vec<Value> = providers
            .iter()
            .map(|p| json!({ "name": p.name, "description": p.description, "fields": p.fields() }))
            .collect();
        return print_json(&Value::Array(list));
    }
    let mut out = String::new();
    for p in providers {
        out.push_str(&format!("{}\n    {}\n", p.name, p.description));
        for f in p.fields() {
            let mut tags = vec![f.kind.clone()];
            if f.required {
                tags.push("required".into());
            }
            if f.secret {
                tags.push("secret: store/env only".into());
            }
            if let Some(d) = &f.default {
                tags.push(format!("default {d}"));
            }
            out.push_str(&format!("    {:<22} {} [{}]\n", f.name, f.description, tags.join(", ")));
        }
        out.push('\n');
    }
    print_line(out.trim_end())
}

/// Secrets given on the command line, by field name.
type SecretArgs = Vec<(String, Secret)>;

pub(super) fn flag_values(fields: &FieldArgs) -> Result<(Vec<FlagValue>, SecretArgs)> {
    let mut flags = Vec::new();
    let mut push = |field: &str, value: Value, flag: &str| {
        flags.push(FlagValue { field: field.into(), value, flag: flag.into() });
    };
    if let Some(p) = &fields.provider {
        push("provider", json!(p), "--provider");
    }
    if let Some(v) = &fields.portal {
        push("portal", json!(v), "--portal");
    }
    if let Some(v) = &fields.client_id {
        push("client_id", json!(v), "--client-id");
    }
    if let Some(v) = &fields.verify_ssl {
        push("verify_ssl", loose_value(v), "--verify-ssl");
    }
    let mut secrets = Vec::new();
    if let Some(v) = &fields.client_secret {
        secrets.push(("client_secret".to_string(), v.clone()));
    }
    for kv in &fields.set {
        let (k, v) = kv.split_once('=').ok_or_else(|| Error::Config(format!("--set expects KEY=VALUE, got `{kv}`")))?;
        let k = k.trim().replace('-', "_");
        if k == "provider" {
            return Err(Error::Config("use --provider to choose the provider".into()));
        }
        // A secret is taken exactly as typed: reading `0x1F` or `1e3` as TOML would change it.
        let value = if config::is_secret_name(&k) { Value::String(v.to_string()) } else { loose_value(v.trim()) };
        flags.push(FlagValue { field: k.clone(), value, flag: format!("--set {k}") });
    }
    Ok((flags, secrets))
}

pub(super) fn cmd_profile_add(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    name: &str,
    fields: &FieldArgs,
) -> Result<i32> {
    config::validate_profile_name(name)?;
    let config = Config::load(&engine.paths, cwd)?;
    let (mut flags, mut secrets) = flag_values(fields)?;
    let provider_name =
        fields.provider.clone().or_else(|| config.provider_of(name)).unwrap_or_else(|| "esri-oob".into());
    let provider = registry::find(&provider_name)?;
    // `--url` is an alias of `--portal`: for providers whose site field is `url` (web-tier), it is that.
    let field_names: Vec<String> = provider.fields().into_iter().map(|f| f.name).collect();
    if !field_names.iter().any(|f| f == "portal") && field_names.iter().any(|f| f == "url") {
        flags.iter_mut().filter(|f| f.field == "portal").for_each(|f| f.field = "url".into());
    }
    if fields.provider.is_none() {
        flags.push(FlagValue { field: "provider".into(), value: json!(provider_name), flag: "--provider".into() });
    }
    // Secrets given with --set go to the store, never to the file.
    flags.retain(|f| match provider.secret(&f.field) {
        Some(_) => {
            let text = f.value.as_str().map(String::from).unwrap_or_else(|| f.value.to_string());
            secrets.push((f.field.clone(), Secret::new(text)));
            false
        }
        None => true,
    });

    // Required fields nobody gave: ask on a TTY (the provider's set-up questions, in its
    // order), else list them.
    let existing = config.resolve(name, &flags).ok();
    let stored_secrets: Vec<String> = match engine.store.load(name) {
        Ok(Some(entry)) => entry.secrets.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let is_given = |f: &crate::prompt::SetupField| {
        if f.secret {
            secrets.iter().any(|(k, _)| *k == f.name)
                || stored_secrets.contains(&f.name)
                || existing.as_ref().is_some_and(|p| p.secret_overrides.get(&f.name).is_some())
        } else {
            flags.iter().any(|fl| fl.field == f.name)
                || existing
                    .as_ref()
                    .is_some_and(|p| p.origins.get(&f.name).is_some_and(|o| !matches!(o, config::Origin::Default)))
        }
    };
    let missing: Vec<String> = crate::prompt::setup_fields(provider)
        .into_iter()
        .filter(|f| f.required && !is_given(f))
        .map(|f| f.name)
        .collect();
    if !missing.is_empty() {
        if !ui.can_prompt() {
            let list: Vec<String> = missing.iter().map(|f| format!("--{} VALUE", f.replace('_', "-"))).collect();
            return Err(Error::Config(format!(
                "profile '{name}' ({provider_name}) needs: {} (or --set FIELD=VALUE); no terminal to ask on",
                list.join(" ")
            )));
        }
        ui.info(&format!("Setting up profile '{name}' ({provider_name}); Ctrl-C stops without writing anything."));
        let typed = crate::prompt::run_setup(ui, provider, &is_given, &mut |typed| {
            let all: Vec<FlagValue> = flags.iter().chain(typed).cloned().collect();
            engine.session(config.resolve(name, &all)?).map(|_| ())
        })?;
        flags.extend(typed.flags);
        secrets.extend(typed.secrets);
    }

    // Validate the whole profile before writing anything.
    let resolved = config.resolve(name, &flags)?;
    engine.session(resolved)?;
    // A relative CA bundle given on the command line is relative to where it was typed.
    if let Some(f) = flags.iter_mut().find(|f| f.field == "verify_ssl") {
        if let Some(path) = f.value.as_str().filter(|p| !matches!(p.to_ascii_lowercase().as_str(), "true" | "false")) {
            let cwd_path = crate::binding::resolve_relative(path, cwd);
            f.value = Value::String(cwd_path);
        }
    }

    // Write the non-secret fields given now over what the user file already had.
    let mut values = user_file_values(engine, name, &provider_name);
    for f in flags.iter().filter(|f| f.field != "provider") {
        values.insert(f.field.clone(), f.value.clone());
    }
    let existed = config.profile_names().contains(&name.to_string());
    // All or nothing: under the profile's lock, a cache that cannot be read stops us here,
    // before the user file is written.
    let lock = engine.store.lock(name)?;
    let has_cache = engine.store.load(name)?.is_some();
    if !secrets.is_empty() || has_cache {
        // The store write below needs the key: one that cannot be read or made (a missing
        // AGE_OAUTH_IDENTITY file) stops us before the user file is written.
        engine.store.identity(true)?;
    }
    config::write_profile(&engine.paths, name, &provider_name, &values)?;
    ui.info(&format!(
        "{} profile '{name}' ({provider_name}) in {}",
        if existed { "Updated" } else { "Added" },
        engine.paths.config_file.display()
    ));
    if !secrets.is_empty() || has_cache {
        // Bound to what the user file now says (flags included), never to the working directory's
        // project file or `.env`; an existing cache is re-bound when the user pointed it elsewhere.
        // A profile the user file alone does not complete (a project template's) stays unbound.
        let user_session = Config::load_user(&engine.paths)?
            .and_then(|user| user.resolve(name, &[]).ok())
            .and_then(|profile| engine.session(profile).ok());
        engine.store_secrets(name, &provider_name, user_session.as_ref(), Some(&lock), &secrets)?;
    }
    drop(lock);
    if !secrets.is_empty() {
        let names: Vec<&str> = secrets.iter().map(|(k, _)| k.as_str()).collect();
        ui.info(&format!("Stored {} encrypted in {}", names.join(", "), engine.paths.cache_file(name).display()));
    }
    ui.info(&format!("Next: age-oauth login --profile {name}"));
    Ok(0)
}

pub(super) fn cmd_profile_list(engine: &Engine, cwd: &std::path::Path, as_json: bool) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let rows: Vec<ProfileRow> =
        config.profile_names().iter().map(|n| ProfileRow::of(engine, &config, n, true)).collect();
    if as_json {
        return print_json(&serde_json::to_value(&rows).unwrap_or_default());
    }
    if rows.is_empty() {
        eprintln!("no profiles yet: age-oauth profile add NAME --provider esri-oob --portal URL --client-id ID");
        return Ok(0);
    }
    let mut out = String::new();
    for r in rows {
        let state = match (&r.state, r.state.logged_in_as()) {
            (CacheState::Unreadable { .. }, _) => "cache unreadable".to_string(),
            (_, Some(user)) => format!("logged in as {user}"),
            _ => "not logged in".to_string(),
        };
        out.push_str(&format!("{:<20} {:<12} {}\n", r.name, r.provider.as_deref().unwrap_or("?"), state));
    }
    print_line(out.trim_end())
}

pub(super) fn cmd_profile_show(engine: &Engine, cwd: &std::path::Path, name: &str, as_json: bool) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let resolved = config.resolve(name, &[])?;
    let stored = engine.store.load(name).ok().flatten();
    let mut fields = Map::new();
    for (k, v) in &resolved.values {
        let origin = resolved.origins.get(k).map(std::string::ToString::to_string).unwrap_or_default();
        fields.insert(k.clone(), json!({ "value": v, "source": origin }));
    }
    for spec in resolved.provider.secrets {
        let source = match resolved.secret_overrides.origin(spec.name) {
            Some(SecretOrigin::Env(v)) => Some(format!("env {v}")),
            Some(SecretOrigin::DotEnv(v)) => Some(format!(".env {v}")),
            Some(SecretOrigin::Flag(f)) => Some(format!("flag {f}")),
            Some(SecretOrigin::Prompt) => Some("prompt".into()),
            Some(SecretOrigin::Store) | None => {
                stored.as_ref().filter(|e| e.secrets.contains_key(spec.name)).map(|_| "encrypted store".to_string())
            }
        };
        let value = if source.is_some() { json!("[redacted]") } else { Value::Null };
        fields.insert(
            spec.name.to_string(),
            json!({ "value": value, "source": source.unwrap_or_else(|| "not set".into()), "secret": true }),
        );
    }
    if resolved.env_api_key.is_some() {
        let source = crate::engine::ENV_SOURCE;
        fields.insert("credential".into(), json!({ "value": "[redacted]", "source": source, "secret": true }));
    }
    if as_json {
        return print_json(&json!({ "name": name, "provider": resolved.provider.name, "fields": fields }));
    }
    let mut out = format!("profile {name}\n  {:<22} {:<40} {}\n", "provider", resolved.provider.name, "");
    for (k, f) in &fields {
        let value = match &f["value"] {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        out.push_str(&format!("  {:<22} {:<40} ({})\n", k, value, f["source"].as_str().unwrap_or_default()));
    }
    print_line(out.trim_end())
}

pub(super) fn cmd_profile_remove(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    name: &str,
) -> Result<i32> {
    config::validate_profile_name(name)?;
    let (removed_file, removed_cache) = engine.remove_profile(name)?;
    if !removed_file && !removed_cache {
        let config = Config::load(&engine.paths, cwd)?;
        if let Some(file) = config.profile_files(name).last() {
            return Err(Error::Config(format!(
                "profile '{name}' is defined in {}, not in the user file; edit that file to remove it",
                file.display()
            )));
        }
        return Err(Error::Config(format!("no profile named '{name}'")));
    }
    ui.info(&format!(
        "Removed profile '{name}'{}{}",
        if removed_file { " from the user file" } else { "" },
        if removed_cache { " and deleted its encrypted cache" } else { "" }
    ));
    Ok(0)
}
pub(super) fn cmd_status(engine: &Engine, cwd: &std::path::Path, selected: Option<&str>, as_json: bool) -> Result<i32> {
    // Loading the key first makes `key_source` report the one actually in use.
    let public_key = engine.store.public_key(false).ok().flatten();
    let key_source = engine.store.key_source();
    let config = Config::load(&engine.paths, cwd);
    let (profiles, config_error) = match &config {
        Ok(c) => (c.profile_names().iter().map(|n| ProfileRow::of(engine, c, n, false)).collect(), None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let mut profiles: Vec<ProfileRow> = profiles;
    // AGE_OAUTH_API_KEY wins for the selected profile: say so on its row.
    if let Some(chosen) =
        config.as_ref().ok().filter(|c| c.env_api_key().is_some()).and_then(|c| c.select(selected).ok())
    {
        for row in profiles.iter_mut().filter(|r| r.name == chosen) {
            row.credential_source = Some(crate::engine::ENV_SOURCE.to_string());
        }
    }
    let project_file = cwd.join(config::PROJECT_FILE);
    let status = Status {
        config_file: engine.paths.config_file.display().to_string(),
        project_file: project_file.exists().then(|| project_file.display().to_string()),
        data_dir: engine.paths.data_dir.display().to_string(),
        key_source: key_source.describe(),
        public_key,
        config_error,
        profiles,
    };
    if as_json {
        return print_json(&serde_json::to_value(&status).unwrap_or_default());
    }
    let mut out = format!(
        "config file: {}\ndata dir:    {}\ncache key:   {}\n",
        status.config_file, status.data_dir, status.key_source
    );
    if let Some(pk) = &status.public_key {
        out.push_str(&format!("public key:  {pk}\n"));
    }
    if let Some(e) = &status.config_error {
        out.push_str(&format!("config error: {e}\n"));
    }
    for p in &status.profiles {
        let state = match &p.state {
            CacheState::Unreadable { error, .. } => format!("cache unreadable: {error}"),
            CacheState::LoggedIn { username, expired, expires_at, .. } => format!(
                "logged in as {}, token {} {}",
                username.as_deref().unwrap_or("?"),
                if *expired { "expired" } else { "expires" },
                expires_at.as_deref().unwrap_or("?")
            ),
            _ => "not logged in".into(),
        };
        let state = match &p.credential_source {
            Some(source) => format!("credential from the {source}; cache: {state}"),
            None => state,
        };
        out.push_str(&format!("profile {:<16} {:<10} {state}\n", p.name, p.provider.as_deref().unwrap_or("?")));
    }
    print_line(out.trim_end())
}

/// The values the user file already holds for profile `name` of `provider` (none when it names another provider).
fn user_file_values(engine: &Engine, name: &str, provider: &str) -> Map<String, Value> {
    let mut values = Map::new();
    let Ok(text) = std::fs::read_to_string(&engine.paths.config_file) else {
        return values;
    };
    let files = vec![(engine.paths.config_file.clone(), text)];
    let Ok(user) = Config::from_parts(files, Default::default(), Default::default()) else {
        return values;
    };
    if user.provider_of(name).as_deref() != Some(provider) {
        return values;
    }
    if let Ok(r) = user.resolve(name, &[]) {
        for (k, origin) in &r.origins {
            if matches!(origin, config::Origin::File { .. }) {
                values.insert(k.clone(), r.values[k].clone());
            }
        }
    }
    values
}

/// `profile add`: asks for the name and provider when they are missing, then adds.
pub(super) fn cmd_profile_add_asking(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    args: AddArgs,
) -> Result<i32> {
    let (name, provider) = ask_name_and_provider(engine, cwd, ui, args.name.as_deref(), &args.fields)?;
    let fields = FieldArgs { provider, ..args.fields };
    cmd_profile_add(engine, cwd, ui, &name, &fields)
}

/// `profile remove`: after the confirmation (unless `--yes`); declining exits 1.
pub(super) fn cmd_remove_confirmed(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    name: &str,
    yes: bool,
) -> Result<i32> {
    if !confirm_remove(engine, cwd, ui, name, yes)? {
        return Ok(1);
    }
    cmd_profile_remove(engine, cwd, ui, name)
}
