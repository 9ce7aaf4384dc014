//! The password of a username-and-password provider: from flags / environment / store, else asked on a
//! terminal at an interactive login — and kept in the encrypted store only when the person agrees.

use crate::error::Result;
use crate::registry::{FlowContext, Obtained, SecretOrigin, SecretSpec};
use crate::secret::Secret;
use crate::token::TokenSet;

/// A password and whether it was just typed in (and so may be offered for keeping).
pub struct Password {
    /// The password.
    pub value: Secret,
    /// True when it was just typed in.
    pub typed: bool,
}

/// The password of `account`: overrides and the store first; a prompt only when `interactive`
/// and a person is there; else `LoginRequired` naming AGE_OAUTH_PASSWORD.
pub fn password(cx: &mut FlowContext<'_>, spec: &SecretSpec, account: &str, interactive: bool) -> Result<Password> {
    if let Some(p) = cx.secrets.get(spec.name) {
        return Ok(Password { value: p.clone(), typed: false });
    }
    if interactive && cx.ui.can_prompt() {
        if let Some(p) = cx.ui.read_secret(&format!("Password for {account}: "))?.filter(|p| !p.is_empty()) {
            return Ok(Password { value: p, typed: true });
        }
    }
    Err(cx.login_required(format!(
        "no password for {account}: set AGE_OAUTH_{} for unattended runs, or sign in in a terminal",
        spec.name.to_ascii_uppercase()
    )))
}

/// After a successful sign-in with a typed password: asks whether to keep it (encrypted) so
/// later runs need no person, and hands it to the engine with the tokens if so.
pub fn offer_to_keep(
    cx: &mut FlowContext<'_>,
    spec: &SecretSpec,
    password: Password,
    tokens: TokenSet,
) -> Result<Obtained> {
    let mut obtained = Obtained::from(tokens);
    if !password.typed {
        return Ok(obtained);
    }
    let answer = cx.ui.read_line("Keep the password in the encrypted cache, so later runs need no prompt? [y/N] ")?;
    if answer.is_some_and(|a| matches!(a.trim().to_ascii_lowercase().as_str(), "y" | "yes")) {
        obtained.secrets_to_store.push((spec.name.to_string(), password.value));
    } else {
        cx.ui.info("The password was not kept: when this sign-in expires, run `age-oauth login` again.");
    }
    Ok(obtained)
}

/// " (password from AGE_OAUTH_PASSWORD)" and the like, for error messages (never the value).
pub fn origin_note(cx: &FlowContext<'_>, spec: &SecretSpec) -> String {
    match cx.secrets.origin(spec.name) {
        Some(SecretOrigin::Env(var)) => format!(" (password from {var})"),
        Some(SecretOrigin::DotEnv(var)) => format!(" (password from .env {var})"),
        Some(SecretOrigin::Flag(flag)) => format!(" (password from {flag})"),
        Some(SecretOrigin::Store) => " (password from the encrypted store)".into(),
        Some(SecretOrigin::Prompt) | None => String::new(),
    }
}
