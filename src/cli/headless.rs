//! Commands that move logins between machines and tools: cache export / import and migrate.
//! The formats and crypto live in `crate::headless` and `crate::migrate`; these are the CLI ends.

use super::output::{print_json, print_line};
use crate::config::Config;
use crate::engine::{Engine, Session};
use crate::error::{Error, Result};
use crate::interact::Interaction;
use crate::paths::Paths;
use crate::secret::Secret;

pub(super) fn cmd_export(
    engine: &Engine,
    session: &Session,
    ui: &mut dyn Interaction,
    recipients: &[String],
    recipients_file: Option<&std::path::Path>,
    passphrase: bool,
    output: &std::path::Path,
) -> Result<i32> {
    use crate::headless::{export_bytes, parse_recipients, ExportTo};
    let to = if passphrase {
        let pass = match engine.paths.env().get(&crate::env::EXPORT_PASSPHRASE) {
            Some(p) => Secret::new(p),
            None => {
                let first = ui.read_secret("Passphrase for the export: ")?.ok_or_else(|| {
                    Error::Config("--passphrase needs AGE_OAUTH_EXPORT_PASSPHRASE or a terminal to ask on".into())
                })?;
                let again = ui.read_secret("Same passphrase again: ")?.unwrap_or_else(|| Secret::new(""));
                if first != again || first.is_empty() {
                    return Err(Error::Config("the passphrases differ (or are empty); nothing was written".into()));
                }
                first
            }
        };
        ExportTo::Passphrase(pass)
    } else {
        let mut text = recipients.join("\n");
        let mut source = "--recipient".to_string();
        if let Some(f) = recipients_file {
            let file_text =
                std::fs::read_to_string(f).map_err(|e| Error::io(format!("cannot read {}", f.display()), e))?;
            text = format!("{text}\n{file_text}");
            source = f.display().to_string();
        }
        if text.trim().is_empty() {
            return Err(Error::Config(
                "say who may open the export: --recipient AGE_PUBLIC_KEY, --recipients-file FILE or --passphrase"
                    .into(),
            ));
        }
        ExportTo::Recipients(parse_recipients(&text, &source)?)
    };
    // Binding-checked: a working directory naming other origins or trust gets exit 2, nothing written.
    let entry = engine.load(session)?.filter(|e| e.tokens.is_some()).ok_or_else(|| {
        Error::login_required(session.name(), format!("profile '{}' has nothing to export yet", session.name()))
    })?;
    let bound = crate::headless::bound_settings(&engine.paths, session, &entry)?;
    let bytes = export_bytes(bound.as_ref().unwrap_or(&session.profile), entry, &to)?;
    crate::paths::write_private_file(output, &bytes)?;
    ui.info(&format!("Exported profile '{}' to {} (age, 0600).", session.name(), output.display()));
    ui.info("On the server: age-oauth cache import FILE   (with AGE_OAUTH_IDENTITY or AGE_OAUTH_PASSPHRASE)");
    if let Some(note) = session.provider.rotation_note() {
        ui.warn(&format!("the two copies will diverge: {note}"));
    }
    Ok(0)
}

pub(super) fn cmd_import(
    paths: &Paths,
    ui: &mut dyn Interaction,
    file: &std::path::Path,
    as_name: Option<&str>,
    force: bool,
) -> Result<i32> {
    use crate::headless::{identity_from_env, import, open_export};
    let bytes = std::fs::read(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    let store = crate::store::CacheStore::ignoring_passphrase(paths.clone());
    let identity = match identity_from_env(paths.env())? {
        Some(id) => Some(id),
        None => store.identity(false).ok().flatten(),
    };
    // AGE_OAUTH_EXPORT_PASSPHRASE first: it opens the export only, while AGE_OAUTH_PASSPHRASE
    // (still read, for older scripts) would also switch this machine's caches to a passphrase.
    let env = paths.env();
    let from_env = [crate::env::EXPORT_PASSPHRASE, crate::env::PASSPHRASE].iter().find_map(|var| env.get(var));
    let passphrase = match from_env {
        Some(p) => Some(Secret::new(p)),
        None if age::Decryptor::new(&bytes[..]).is_ok_and(|d| d.is_scrypt()) => {
            ui.read_secret("Passphrase of the export: ")?
        }
        None => None,
    };
    let export = open_export(&bytes, identity.as_ref(), passphrase.as_ref())?;
    let name = as_name.unwrap_or(&export.profile).to_string();
    let provider = export.provider.clone();
    let importer = Engine::new(paths.clone()).with_store(store);
    import(&importer, export, &name, force)?;
    let store = &importer.store;
    ui.info(&format!(
        "Imported profile '{name}' ({provider}); its cache is kept under {}. Try: age-oauth token --profile {name}",
        store.key_source().describe()
    ));
    if env.is_set(&crate::env::PASSPHRASE) {
        ui.warn("unset AGE_OAUTH_PASSPHRASE for later commands: the imported cache is under this machine's key now");
    }
    let config = Config::load(paths, &std::env::current_dir().unwrap_or_default());
    if let Ok(session) = config.and_then(|c| c.resolve(&name, &[])).and_then(|r| Engine::new(paths.clone()).session(r))
    {
        if let Some(note) = session.provider.rotation_note() {
            ui.warn(&format!("this copy and the exported one will diverge: {note}"));
        }
    }
    Ok(0)
}

pub(super) fn cmd_migrate(
    engine: &Engine,
    ui: &mut dyn Interaction,
    from: Option<std::path::PathBuf>,
    shred: bool,
) -> Result<i32> {
    let from = from
        .or_else(crate::migrate::default_python_store)
        .ok_or_else(|| Error::Config("cannot find the Python age-oauth store: pass --from DIR".into()))?;
    let done = crate::migrate::migrate(engine, &from, shred, engine.clock.now())?;
    if done.is_empty() {
        ui.info(&format!("no connections found in {}", from.display()));
        return Ok(0);
    }
    for m in &done {
        ui.info(&format!(
            "connection {} → profile '{}' ({}): {}{}",
            m.connection_id,
            m.profile,
            m.provider,
            if m.moved_secrets.is_empty() {
                "no secret".to_string()
            } else {
                format!("{} encrypted", m.moved_secrets.join(", "))
            },
            if m.moved_tokens { ", tokens encrypted" } else { "" }
        ));
    }
    let left: Vec<String> = done.iter().filter(|m| !m.shredded).map(|m| m.env_file.display().to_string()).collect();
    if left.is_empty() {
        ui.info("The old plaintext .env files were overwritten and deleted.");
    } else {
        ui.warn(&format!(
            "these plaintext files still hold client secrets and tokens: {}; delete them, or run again with --shred",
            left.join(", ")
        ));
    }
    print_json(&serde_json::to_value(&done).unwrap_or_default())
}

/// `key show`: the public key the caches are encrypted to.
pub(super) fn cmd_key_show(engine: &Engine) -> Result<i32> {
    match engine.store.public_key(true)? {
        Some(key) => print_line(&key),
        None => Err(Error::Config(
            "the caches are protected by a passphrase (AGE_OAUTH_PASSPHRASE): this machine has no age key to show"
                .into(),
        )),
    }
}

/// `key rotate`: a new key, every cache re-encrypted to it, the old key gone.
pub(super) fn cmd_key_rotate(engine: &Engine, ui: &mut dyn Interaction) -> Result<i32> {
    let (public, count) = crate::headless::rotate_identity(engine)?;
    ui.info(&format!("Re-encrypted {count} cache(s) to the new key {public}; the old key is gone."));
    print_line(&public)
}
