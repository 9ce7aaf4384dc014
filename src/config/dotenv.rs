//! `.env` in the working directory, read literally: only `AGE_OAUTH_*` lines, no `${VAR}` expansion.
//! Other tools' lines are theirs to get right; ours are parsed one at a time and never echoed.

use super::ENV_PREFIX;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

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
pub(super) fn parse_env_line(line: &str) -> Option<(String, String)> {
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
