//! The Python age-oauth's command line over our profiles: `connections list|add|use|show|info|remove`,
//! its way of picking a connection (`--connection`, `--connection-id`), `profile use`, and removal prompts.

use super::args::{Cli, Command, FieldArgs, TokenArgs};
use super::output::{print_json, print_line};
use super::profiles::{cmd_profile_add, cmd_profile_remove, cmd_profile_show, flag_values};
use super::rows::{CacheState, ConnectionRow};
use crate::clock::rfc3339;
use crate::config;
use crate::config::Config;
use crate::engine::{Engine, Session};
use crate::error::{Error, Result};
use crate::interact::Interaction;
use crate::prompt;
use crate::registry;
use clap::Args;
use serde_json::{json, Value};

/// `--auth-type` of the Python age-oauth: which provider a connection uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthType {
    /// A person signs in (esri-oob).
    User,
    /// Application credentials (esri-app).
    App,
}

impl AuthType {
    fn provider(self) -> &'static str {
        match self {
            AuthType::User => "esri-oob",
            AuthType::App => "esri-app",
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct ConnectionAddArgs {
    /// Name of the profile (the Python age-oauth's connection label; spaces become '-'). Asked at a terminal.
    #[arg(long, value_name = "LABEL")]
    pub(crate) label: Option<String>,
    /// user (a person signs in: esri-oob, the default) or app (application credentials: esri-app).
    #[arg(long, value_enum, value_name = "user|app")]
    pub(crate) auth_type: Option<AuthType>,
    /// Referer header sent with every request (for credentials bound to a referer).
    #[arg(long, value_name = "URL")]
    pub(crate) referer: Option<String>,
    /// Keep the current default profile (the new one is not made the default).
    #[arg(long)]
    pub(crate) no_active: bool,
    /// Same as --no-active: our profiles have one default (`default_profile`), which is left as it is.
    #[arg(long)]
    pub(crate) no_default: bool,
    #[command(flatten)]
    pub(crate) fields: FieldArgs,
}

/// The Python age-oauth's connection id: `slug(label)_` + the first 8 hex digits of SHA-1(portal URL).
/// Migrated profiles are named after the label, so old scripts' `--connection-id` still finds them.
pub fn python_connection_id(name: &str, portal: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('_') {
            slug.push('_');
        }
    }
    let slug = slug.trim_matches('_');
    let slug = if slug.is_empty() { "connection" } else { slug };
    let digest =
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, portal.trim().trim_end_matches('/').as_bytes());
    let hex: String = digest.as_ref().iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{slug}_{hex}")
}

/// The service URL a profile names (portal, site, issuer), if it builds.
fn service_of(engine: &Engine, config: &Config, name: &str) -> Option<String> {
    let resolved = config.resolve(name, &[]).ok()?;
    engine.session(resolved).ok()?.provider.service_url()
}

/// Picks a profile the way the Python age-oauth 0.2.1 picked a connection (`ConnectionStore.resolve`):
/// the exact name (or old connection id), then the name in any case, then a unique prefix of the
/// old connection id (any case) — or, since our names may hold `-` and `.`, of the name. `None` takes
/// the active one (AGE_OAUTH_PROFILE), then the default (`default_profile`), then the only one.
pub(crate) fn select(engine: &Engine, config: &Config, selector: Option<&str>) -> Result<String> {
    let Some(wanted) = selector.map(str::trim) else {
        return config.select(None);
    };
    let names = config.profile_names();
    if names.iter().any(|n| n == wanted) {
        return Ok(wanted.to_string());
    }
    if let Some(n) = by_connection_id(engine, config, wanted)? {
        return Ok(n);
    }
    let unique = |found: Vec<&String>, how: &str| -> Result<Option<String>> {
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some((*one).clone())),
            many => Err(Error::Config(format!(
                "'{wanted}' {how} several profiles ({}); give the exact name",
                many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    };
    let lower = wanted.to_lowercase();
    if let Some(n) = unique(names.iter().filter(|n| n.to_lowercase() == lower).collect(), "names")? {
        return Ok(n);
    }
    // Prefixes: ids are lower case, `slug(label)_hash`; a selector with `-` or `.` can only be a name's.
    let ids = connection_ids(engine, config, &names);
    let begins = |(name, id): &(String, String)| id.starts_with(&lower) || name.to_lowercase().starts_with(&lower);
    if let Some(n) = unique(ids.iter().filter(|e| begins(e)).map(|(n, _)| n).collect(), "begins the id or name of")? {
        return Ok(n);
    }
    Err(no_such_profile(wanted, &names))
}

/// `--connection-id`: the exact profile name, or the exact Python age-oauth id of a migrated
/// connection (no prefixes, no other case: the old tool took ids as they were).
pub(crate) fn select_by_id(engine: &Engine, config: &Config, id: &str) -> Result<String> {
    let names = config.profile_names();
    if names.iter().any(|n| n == id) {
        return Ok(id.to_string());
    }
    by_connection_id(engine, config, id)?.ok_or_else(|| no_such_profile(id, &names))
}

/// Each profile with the Python age-oauth's id it had (or would have had): a profile with no
/// service URL gets its slug and the hash of nothing, which still serves prefixes of its name.
fn connection_ids(engine: &Engine, config: &Config, names: &[String]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|n| (n.clone(), python_connection_id(n, &service_of(engine, config, n).unwrap_or_default())))
        .collect()
}

fn by_connection_id(engine: &Engine, config: &Config, id: &str) -> Result<Option<String>> {
    // Old ids look like `label_1a2b3c4d`: skip the work for anything else.
    let looks_like_id =
        id.rsplit_once('_').is_some_and(|(_, h)| h.len() == 8 && h.chars().all(|c| c.is_ascii_hexdigit()));
    if !looks_like_id {
        return Ok(None);
    }
    let found: Vec<String> = config
        .profile_names()
        .into_iter()
        .filter(|n| service_of(engine, config, n).is_some_and(|url| python_connection_id(n, &url) == id))
        .collect();
    Ok(found.into_iter().next())
}

fn no_such_profile(wanted: &str, names: &[String]) -> Error {
    if names.is_empty() {
        return Error::Config(format!(
            "no profile matches '{wanted}': none is configured yet (`age-oauth connections add`, or `age-oauth migrate python-age-oauth`)"
        ));
    }
    Error::Config(format!("no profile matches '{wanted}'; profiles: {}", names.join(", ")))
}

/// The profile named by `--profile`, `--connection` or `--connection-id` (the last two by the
/// Python age-oauth's rules), or `None` to let the usual order pick.
pub(super) fn chosen_profile(
    engine: &Engine,
    cwd: &std::path::Path,
    profile: Option<&str>,
    connection: Option<&str>,
    connection_id: Option<&str>,
) -> Result<Option<String>> {
    if let Some(p) = profile {
        return Ok(Some(p.to_string()));
    }
    if connection.is_none() && connection_id.is_none() {
        return Ok(None);
    }
    let config = Config::load(&engine.paths, cwd)?;
    match (connection, connection_id) {
        (_, Some(id)) => select_by_id(engine, &config, id).map(Some),
        (Some(sel), None) => select(engine, &config, Some(sel)).map(Some),
        (None, None) => Ok(None),
    }
}

/// Makes `name` the default profile, saying what still overrides it.
pub(super) fn cmd_use(engine: &Engine, cwd: &std::path::Path, ui: &mut dyn Interaction, selector: &str) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let name = select(engine, &config, Some(selector))?;
    config::set_default_profile(&engine.paths, Some(&name))?;
    ui.info(&format!("Default profile is now '{name}' (default_profile in {})", engine.paths.config_file.display()));
    let after = Config::load(&engine.paths, cwd)?;
    if let Some(active) = after.env_profile().filter(|a| *a != name) {
        ui.warn(&format!("AGE_OAUTH_PROFILE={active} still picks '{active}' where it is set"));
    } else if let Some(other) = after.default_profile().filter(|d| *d != name) {
        ui.warn(&format!(
            "{} in this directory sets default_profile = \"{other}\", which wins here",
            config::PROJECT_FILE
        ));
    }
    Ok(0)
}

pub(super) fn cmd_add(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    args: &ConnectionAddArgs,
) -> Result<i32> {
    let provider = match (args.auth_type, args.fields.provider.as_deref()) {
        (Some(t), Some(p)) if t.provider() != p => {
            return Err(Error::Config(
                format!("--auth-type {t:?} means --provider {}, not {p}", t.provider()).to_lowercase(),
            ))
        }
        (Some(t), _) => t.provider().to_string(),
        (None, Some(p)) => p.to_string(),
        (None, None) => "esri-oob".to_string(),
    };
    let name = match &args.label {
        Some(label) => label_to_name(label).map_err(Error::Config)?,
        None if ui.can_prompt() => prompt::ask_line(ui, "Connection label", Some("Prod"), &label_to_name)?,
        None => {
            let info = registry::find(&provider)?;
            let mut needs = vec!["--label LABEL".to_string()];
            let (flags, secrets) = flag_values(&args.fields)?;
            for f in prompt::setup_fields(info).into_iter().filter(|f| f.required) {
                if !flags.iter().any(|g| g.field == f.name) && !secrets.iter().any(|(k, _)| *k == f.name) {
                    needs.push(format!("--{} VALUE", f.name.replace('_', "-")));
                }
            }
            return Err(Error::Config(format!("connections add needs: {}; no terminal to ask on", needs.join(" "))));
        }
    };
    if args.label.as_deref().is_some_and(|l| l.trim() != name) {
        ui.info(&format!("Label '{}' is profile '{name}'", args.label.as_deref().unwrap_or_default().trim()));
    }
    let mut set = args.fields.set.clone();
    if let Some(r) = &args.referer {
        set.push(format!("referer={r}"));
    }
    let fields = FieldArgs {
        provider: Some(provider),
        portal: args.fields.portal.clone(),
        client_id: args.fields.client_id.clone(),
        client_secret: args.fields.client_secret.clone(),
        verify_ssl: args.fields.verify_ssl.clone(),
        set,
    };
    let code = cmd_profile_add(engine, cwd, ui, &name, &fields)?;
    if args.no_active || args.no_default {
        return Ok(code);
    }
    // As the Python age-oauth did: a new connection becomes the one in use.
    config::set_default_profile(&engine.paths, Some(&name))?;
    ui.info(&format!("Default profile is now '{name}' (--no-default keeps the previous one)"));
    Ok(code)
}

/// A connection label made into a profile name, as `migrate python-age-oauth` does it.
fn label_to_name(label: &str) -> std::result::Result<String, String> {
    let name: String =
        label.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    config::validate_profile_name(&name).map(|_| name).map_err(|e| e.to_string())
}

/// One row per profile, marking the active (AGE_OAUTH_PROFILE) and the default one.
pub(super) fn cmd_list(engine: &Engine, cwd: &std::path::Path, as_json: bool) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let (active, default) = (config.env_profile(), config.default_profile());
    let rows: Vec<ConnectionRow> = config
        .profile_names()
        .into_iter()
        .map(|name| ConnectionRow {
            provider: config.provider_of(&name),
            url: service_of(engine, &config, &name),
            active: active.as_deref() == Some(name.as_str()),
            default: default.as_deref() == Some(name.as_str()),
            state: CacheState::of(engine, &name),
            name,
        })
        .collect();
    if as_json {
        return print_json(&serde_json::to_value(&rows).unwrap_or_default());
    }
    if rows.is_empty() {
        eprintln!("No connections found. Add one with: age-oauth connections add");
        return Ok(0);
    }
    let mut out = String::new();
    for r in &rows {
        let marks: Vec<&str> =
            [(r.active, "active"), (r.default, "default")].into_iter().filter(|(on, _)| *on).map(|(_, m)| m).collect();
        let mark = if marks.is_empty() { String::new() } else { format!(" ({})", marks.join(", ")) };
        let state = r.state.logged_in_as().map_or_else(|| "not logged in".to_string(), |u| format!("logged in as {u}"));
        out.push_str(&format!(
            "{}{mark}  -  {}  -  {}  -  {state}\n",
            r.name,
            r.provider.as_deref().unwrap_or("?"),
            r.url.as_deref().unwrap_or("-"),
        ));
    }
    print_line(out.trim_end())
}

/// Where things live and which profile is active and default.
pub(super) fn cmd_info(engine: &Engine, cwd: &std::path::Path, as_json: bool) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let python = crate::migrate::default_python_store().filter(|p| p.join("connections.json").exists());
    let info = json!({
        "config_file": engine.paths.config_file.display().to_string(),
        "data_dir": engine.paths.data_dir.display().to_string(),
        "active": config.env_profile(),
        "default": config.default_profile(),
        "selected": config.select(None).ok(),
        "python_store": python.as_ref().map(|p| p.display().to_string()),
    });
    if as_json {
        return print_json(&info);
    }
    let show = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = format!(
        "Config file: {}\nData dir:    {}\nActive:      {}{}\nDefault:     {}\n",
        show(&info["config_file"]),
        show(&info["data_dir"]),
        show(&info["active"]),
        if info["active"].is_string() { "  (AGE_OAUTH_PROFILE)" } else { "" },
        show(&info["default"]),
    );
    if let Some(p) = &python {
        out.push_str(&format!(
            "Python store: {} (bring it over with `age-oauth migrate python-age-oauth`)\n",
            p.display()
        ));
    }
    print_line(out.trim_end())
}

/// Asks before a profile is removed, at a terminal and without `--yes`: false means keep it.
pub(super) fn confirm_remove(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    name: &str,
    yes: bool,
) -> Result<bool> {
    if yes || !ui.can_prompt() {
        return Ok(true);
    }
    let config = Config::load(&engine.paths, cwd)?;
    ui.info("You are about to delete this profile and its encrypted cache:");
    ui.info(&format!("\tName:\t\t{name}"));
    if let Some(p) = config.provider_of(name) {
        ui.info(&format!("\tProvider:\t{p}"));
    }
    if let Some(url) = service_of(engine, &config, name) {
        ui.info(&format!("\tURL:\t\t{url}"));
    }
    if prompt::confirm(ui, "Are you sure you want to delete this profile?")? {
        return Ok(true);
    }
    ui.info("Aborted; nothing was changed.");
    Ok(false)
}

pub(super) fn cmd_remove(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    selector: Option<&str>,
    all: bool,
    yes: bool,
) -> Result<i32> {
    if all {
        return cmd_remove_all(engine, cwd, ui, yes);
    }
    let Some(selector) = selector else {
        return Err(Error::Config("say which: age-oauth connections remove NAME (or --all)".into()));
    };
    let config = Config::load(&engine.paths, cwd)?;
    let name = select(engine, &config, Some(selector))?;
    if !confirm_remove(engine, cwd, ui, &name, yes)? {
        return Ok(1);
    }
    let code = cmd_profile_remove(engine, cwd, ui, &name)?;
    if config.default_profile().as_deref() == Some(name.as_str()) {
        config::set_default_profile(&engine.paths, None)?;
    }
    Ok(code)
}

/// Every profile of the user file and every cache: back to a fresh install (the age key stays).
fn cmd_remove_all(engine: &Engine, cwd: &std::path::Path, ui: &mut dyn Interaction, yes: bool) -> Result<i32> {
    if !yes {
        if !ui.can_prompt() {
            return Err(Error::Config("remove --all deletes every profile: pass --yes (no terminal to ask on)".into()));
        }
        ui.warn("This deletes ALL profiles of the user file and every encrypted cache. It cannot be undone.");
        let typed = ui.read_line("Type DELETE to confirm: ")?.unwrap_or_default();
        if typed.trim() != "DELETE" {
            ui.info("Aborted; nothing was changed.");
            return Ok(1);
        }
    }
    let user_file = match std::fs::read_to_string(&engine.paths.config_file) {
        Ok(text) => {
            Config::from_parts(vec![(engine.paths.config_file.clone(), text)], Default::default(), Default::default())?
                .profile_names()
        }
        Err(_) => Vec::new(),
    };
    // Each under its lock, so a refresh in flight cannot write a cache back.
    let (mut removed, mut caches) = (0, 0);
    for name in user_file.iter().cloned().chain(engine.store.cached_profiles()?) {
        let (from_file, cache) = engine.remove_profile(&name)?;
        removed += usize::from(from_file);
        caches += usize::from(cache);
    }
    config::set_default_profile(&engine.paths, None)?;
    ui.info(&format!("Removed {removed} profile(s) and {caches} encrypted cache(s); the age key stays."));
    let left = Config::load(&engine.paths, cwd)?.profile_names();
    if !left.is_empty() {
        ui.info(&format!("Still defined in {}: {} (edit that file)", config::PROJECT_FILE, left.join(", ")));
    }
    Ok(0)
}

/// `profile add` with no name or provider at a terminal: asks for them first.
pub(super) fn ask_name_and_provider(
    engine: &Engine,
    cwd: &std::path::Path,
    ui: &mut dyn Interaction,
    name: Option<&str>,
    fields: &FieldArgs,
) -> Result<(String, Option<String>)> {
    let name = match name {
        Some(n) => n.to_string(),
        None if ui.can_prompt() => prompt::ask_line(ui, "Profile name", None, &|n| {
            config::validate_profile_name(n).map(|_| n.to_string()).map_err(|e| e.to_string())
        })?,
        None => return Err(Error::Config(
            "profile add needs: NAME (and --provider, --portal, ... see `age-oauth providers`); no terminal to ask on"
                .into(),
        )),
    };
    let nothing_given =
        fields.portal.is_none() && fields.client_id.is_none() && fields.verify_ssl.is_none() && fields.set.is_empty();
    if fields.provider.is_some() || !nothing_given || !ui.can_prompt() {
        return Ok((name, fields.provider.clone()));
    }
    let config = Config::load(&engine.paths, cwd)?;
    if let Some(existing) = config.provider_of(&name) {
        return Ok((name, Some(existing)));
    }
    ui.info("Providers:");
    for p in registry::providers() {
        ui.info(&format!("  {:<11} {}", p.name, p.description));
    }
    let provider = prompt::ask_line(ui, "Provider", Some("esri-oob"), &|p| {
        registry::find(p).map(|i| i.name.to_string()).map_err(|e| e.to_string())
    })?;
    Ok((name, Some(provider)))
}

/// The Python age-oauth's `whoami` block for an application token.
pub(super) fn app_block(who: &registry::Identity) -> String {
    let get = |k: &str| who.details.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let mut out = format!(
        "Type:        application\nApplication: {}\nApp ID:      {}",
        get("app_title").unwrap_or("unknown"),
        get("app_id").unwrap_or(&who.username)
    );
    if let Some(item) = get("app_item_id") {
        out.push_str(&format!("\nItem ID:     {item}"));
    }
    if let Some(owner) = get("app_owner") {
        out.push_str(&format!("\nOwner:       {owner}"));
    }
    out
}

/// `token --rotate-refresh-token`: a new refresh token now, reported as the Python age-oauth did.
pub(super) fn cmd_rotate(
    engine: &Engine,
    session: &mut Session,
    ui: &mut dyn Interaction,
    as_json: bool,
) -> Result<i32> {
    let tokens = engine.rotate_refresh_token(session, ui)?;
    let report = json!({
        "profile": session.name(),
        "provider": session.provider_name(),
        "portal": session.provider.service_url(),
        "username": tokens.username,
        "rotated": true,
        "expires_at": tokens.expires_at.map(rfc3339),
        "refresh_expires_at": tokens.refresh_expires_at.map(rfc3339),
    });
    if as_json {
        return print_json(&report);
    }
    let mut out = format!("Profile:     {}\n", session.name());
    if let Some(p) = report["portal"].as_str() {
        out.push_str(&format!("Portal:      {p}\n"));
    }
    if let Some(u) = report["username"].as_str() {
        out.push_str(&format!("User:        {u}\n"));
    }
    out.push_str("[OK] Refresh token rotated successfully");
    if let Some(at) = report["refresh_expires_at"].as_str() {
        out.push_str(&format!("; the new one is valid until {at}"));
    }
    print_line(&out)
}

/// The profile the command line names: `--profile`, else `--connection` / `--connection-id` (or the
/// Python tool's positional portal selector of `token`).
pub(super) fn chosen_for(engine: &Engine, cwd: &std::path::Path, cli: &Cli) -> Result<Option<String>> {
    let token_selector = match &cli.command {
        Command::Token(TokenArgs { portal_selector: Some(s), .. }) if cli.global.connection.is_none() => {
            Some(s.as_str())
        }
        _ => None,
    };
    chosen_profile(
        engine,
        cwd,
        cli.global.profile.as_deref(),
        cli.global.connection.as_deref().or(token_selector),
        cli.global.connection_id.as_deref(),
    )
}

/// `connections show [SELECTOR]`: the selected connection, else the one `--profile` chose.
pub(super) fn cmd_show(
    engine: &Engine,
    cwd: &std::path::Path,
    selector: Option<&str>,
    profile: Option<&str>,
    json: bool,
) -> Result<i32> {
    let config = Config::load(&engine.paths, cwd)?;
    let name = match (selector, profile) {
        (None, Some(p)) => p.to_string(),
        (s, _) => select(engine, &config, s)?,
    };
    cmd_profile_show(engine, cwd, &name, json)
}
