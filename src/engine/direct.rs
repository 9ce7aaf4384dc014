//! What an in-process client (`age_oauth::Client`) needs from the engine: a valid token with the
//! secrets its flows use, one authenticated send with the provider's verdict, and the one refresh
//! after a rejection, all under the engine's rules (binding, lock, one writer).

use super::{Engine, Session};
use crate::error::Result;
use crate::http::{HttpRequest, HttpResponse};
use crate::interact::Interaction;
use crate::registry::{AuthVerdict, Secrets};
use crate::token::TokenSet;

impl Engine {
    /// A token valid for the refresh margin (refreshed under the lock when needed) and the secrets an
    /// authenticated send may use, read with it: the client keeps both until the token nears its end.
    pub(crate) fn token_and_secrets(&self, session: &Session, ui: &mut dyn Interaction) -> Result<(TokenSet, Secrets)> {
        let tokens = self.token_of(session, ui, 0)?;
        let secrets = self.flow_secrets(session)?;
        Ok((tokens, secrets))
    }

    /// Sends `request` with `tokens` in the provider's style; no cache access, no refresh.
    pub(crate) fn send_with(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        (tokens, secrets): (&TokenSet, &Secrets),
        request: &HttpRequest,
    ) -> Result<(HttpResponse, AuthVerdict)> {
        let response = self.run(session, ui, secrets, true, |p, cx| p.send_authenticated(cx, tokens, request))?;
        let verdict = session.provider.judge(&response);
        Ok((response, verdict))
    }

    /// The server refused `rejected` although it looked valid: refresh once, under the lock (another
    /// process may have done it already).
    pub(crate) fn refresh_rejected(
        &self,
        session: &Session,
        ui: &mut dyn Interaction,
        rejected: &TokenSet,
    ) -> Result<TokenSet> {
        let need = session.profile.engine.refresh_margin;
        self.refresh_locked(session, ui, need, Some(rejected), true)
    }
}
