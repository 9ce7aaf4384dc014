//! Standard output: every command's result goes through these, so a closed pipe is never an error
//! and nothing a server sent reaches the terminal unfiltered.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::Write;

/// Writes a line to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn print_line(text: &str) -> Result<i32> {
    print_bytes(format!("{}\n", crate::redact::printable(text)).as_bytes())
}

/// Writes bytes to stdout; a closed pipe (`| head`) is not an error.
pub(super) fn print_bytes(bytes: &[u8]) -> Result<i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Error::io("cannot write to stdout", e)),
    }
}

/// Writes JSON, pretty, as one document.
pub(super) fn print_json(value: &Value) -> Result<i32> {
    print_line(&serde_json::to_string_pretty(value).unwrap_or_default())
}
