//! `age-oauth doctor`: runs the checks of `crate::doctor` and prints them as text or JSON.
//! The exit code is 1 when a check failed, 0 otherwise (warnings allowed).

use super::output::{print_bytes, print_json};
use crate::engine::Engine;
use crate::error::Result;

pub(super) fn cmd_doctor(engine: &Engine, cwd: &std::path::Path, profile: Option<&str>, as_json: bool) -> Result<i32> {
    let rows = crate::doctor::run(engine, cwd, profile);
    let printed = if as_json {
        print_json(&serde_json::to_value(&rows).unwrap_or_default())?
    } else {
        print_bytes(crate::redact::printable(&crate::doctor::render_text(&rows)).as_bytes())?
    };
    Ok(if printed != 0 { printed } else { crate::doctor::exit_code(&rows) })
}
