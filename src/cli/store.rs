//! `store push | status | unclaim`: a fleet profile's shared record in Vault / OpenBao (issue 13).
//! The protocol lives in `crate::fleet` and the engine; these are the command-line ends.

use super::output::{print_json, print_line};
use crate::engine::{Engine, Session};
use crate::error::{Error, Result};
use crate::interact::Interaction;

pub(super) fn cmd_push(engine: &Engine, session: &Session, ui: &mut dyn Interaction, force: bool) -> Result<i32> {
    let published = engine.fleet_push(session, ui, force)?;
    ui.info(&format!(
        "Published the login of profile '{}' to its fleet store: generation {}, version {}. Every host in \
         store.recipients now adopts it on its next `age-oauth token`.",
        session.name(),
        published.generation,
        published.version
    ));
    Ok(0)
}

pub(super) fn cmd_status(engine: &Engine, session: &Session, ui: &mut dyn Interaction, json: bool) -> Result<i32> {
    let status = engine.fleet_status(session, ui)?;
    if json {
        let value = serde_json::to_value(&status).map_err(|e| Error::Other(format!("cannot encode: {e}")))?;
        return print_json(&value);
    }
    let mut lines = vec![format!("store:        {}", status.store)];
    if status.version == 0 {
        lines.push(format!(
            "record:       none yet (`age-oauth store push --profile {}` publishes one)",
            status.profile
        ));
        return print_line(&lines.join("\n"));
    }
    lines.push(format!("version:      {}", status.version));
    lines.push(format!("generation:   {}", status.generation.map_or_else(|| "?".into(), |g| g.to_string())));
    lines.push(match &status.claim {
        None => "claim:        none".into(),
        Some(c) => format!(
            "claim:        {} ({} s old by the store's clock, ttl {} s, {})",
            c.holder,
            c.age_s.map_or_else(|| "?".into(), |a| a.to_string()),
            c.ttl_s,
            if c.live { "live" } else { "expired: the next host takes over" }
        ),
    });
    lines.push(format!(
        "token:        {}",
        match (status.token_expires_at, status.token_expires_in) {
            (Some(at), Some(0)) => format!("expired ({})", crate::clock::rfc3339(at)),
            (Some(at), Some(left)) => format!("expires {} (in {})", crate::clock::rfc3339(at), crate::clock::hms(left)),
            _ => "expiry unknown".into(),
        }
    ));
    lines.push(format!("needs_login:  {}", status.needs_login));
    lines.push(format!(
        "this host:    {}",
        match status.can_decrypt {
            Some(true) => "can read the login",
            Some(false) => "CANNOT read the login (its key is not among the record's recipients)",
            None => "?",
        }
    ));
    print_line(&lines.join("\n"))
}

pub(super) fn cmd_unclaim(engine: &Engine, session: &Session, ui: &mut dyn Interaction, force: bool) -> Result<i32> {
    if !force {
        return Err(Error::Config(format!(
            "`store unclaim` drops whatever claim the record holds, even a live refresher's (which could then \
             refresh twice); if the holder is dead, run `age-oauth store unclaim --profile {} --force`",
            session.name()
        )));
    }
    match engine.fleet_unclaim(session, ui)? {
        Some(holder) => ui.info(&format!("Dropped the claim of {holder}; the next host to need a token refreshes.")),
        None => ui.info("No claim was held; nothing changed."),
    }
    Ok(0)
}
