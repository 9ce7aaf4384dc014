//! Typed errors for the whole library, grouped by concern (configuration, store, server, flow),
//! each with its exit code; built where they happen and reported once, by the binary.

use std::path::PathBuf;

/// A boxed underlying cause (an I/O or transport error), kept for `source()`.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong, grouped by what the user should do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration concern: bad command-line usage or a configuration the user must fix (exit 2).
    #[error("{0}")]
    Config(String),

    /// Configuration concern: a profile file could not be parsed; carries file, line and column.
    #[error("{path}:{line}:{column}: {message}")]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// What is wrong there.
        message: String,
    },

    /// Flow concern: no usable login: the user must run `age-oauth login` (exit 3).
    #[error("{message}; run `age-oauth login --profile {profile}`")]
    LoginRequired {
        /// The profile.
        profile: String,
        /// Why a login is needed.
        message: String,
    },

    /// Flow concern: the server rejected a token it should have accepted (ArcGIS 498, HTTP 401);
    /// the engine refreshes once and retries before letting this out (exit 3).
    #[error("{0}")]
    TokenRejected(String),

    /// Server concern: the server refused the request or could not be reached (exit 4).
    #[error(transparent)]
    Server(ServerError),

    /// Store concern: the encrypted cache exists but cannot be used; it is left untouched (exit 1).
    #[error(transparent)]
    Store(StoreError),

    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

/// What kind of server failure: decides whether trying again later can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerErrorKind {
    /// The server answered and said no (an error body, a malformed answer, HTTP 4xx).
    Refused,
    /// The server answered with this HTTP status and nothing usable.
    Status(u16),
    /// No answer: connection refused, host not found, connection reset.
    Unreachable,
    /// The server did not answer in time.
    Timeout,
}

/// A server-side failure, with its kind and the transport error behind it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ServerError {
    /// What kind of failure.
    pub kind: ServerErrorKind,
    /// The message shown (no secrets).
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Source>,
}

/// What is wrong with a cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Truncated, altered, not an age file, not a cache.
    Damaged,
    /// Encrypted to another age key than the one in use.
    WrongKey,
    /// Passphrase missing, wrong, or given for an identity cache.
    Passphrase,
    /// The key that protects the caches is missing.
    KeyMissing,
    /// The file holds another profile's entry (renamed or copied).
    Misplaced,
}

/// A cache that is there but cannot be used (it is always left untouched).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// What kind of failure.
    pub kind: StoreErrorKind,
    /// The message shown (no secrets).
    pub message: String,
}

/// Stable exit codes of the command-line contract.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Anything else.
    pub const OTHER: i32 = 1;
    /// A usage or configuration error.
    pub const USAGE: i32 = 2;
    /// A person must sign in (`age-oauth login`).
    pub const LOGIN_REQUIRED: i32 = 3;
    /// The server refused, or could not be reached.
    pub const SERVER: i32 = 4;
}

impl Error {
    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::ConfigSyntax { .. } => exit::USAGE,
            Error::LoginRequired { .. } | Error::TokenRejected(_) => exit::LOGIN_REQUIRED,
            Error::Server(_) => exit::SERVER,
            Error::Store(_) | Error::Io { .. } | Error::Other(_) => exit::OTHER,
        }
    }

    /// True when the same call may well succeed a little later (timeout, unreachable, 5xx, 429):
    /// the credentials were not judged.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Server(e) => match e.kind {
                ServerErrorKind::Unreachable | ServerErrorKind::Timeout => true,
                ServerErrorKind::Status(s) => s >= 500 || s == 429 || s == 408,
                ServerErrorKind::Refused => false,
            },
            _ => false,
        }
    }

    /// True when only a new sign-in helps (dead refresh token, rejected credentials).
    pub fn is_reauth_required(&self) -> bool {
        matches!(self, Error::LoginRequired { .. } | Error::TokenRejected(_))
    }

    /// A `LoginRequired` error for `profile`.
    pub fn login_required(profile: &str, message: impl Into<String>) -> Self {
        Error::LoginRequired { profile: profile.to_string(), message: message.into() }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// The server answered and refused (an error body, an answer that makes no sense).
    pub fn server(message: impl Into<String>) -> Self {
        Error::Server(ServerError { kind: ServerErrorKind::Refused, message: message.into(), source: None })
    }

    /// The server answered this HTTP status without anything usable (5xx is transient).
    pub fn http_status(status: u16, message: impl Into<String>) -> Self {
        Error::Server(ServerError { kind: ServerErrorKind::Status(status), message: message.into(), source: None })
    }

    /// No answer from the server (`Timeout` or `Unreachable`), with the transport error behind it.
    pub fn unreachable(kind: ServerErrorKind, message: impl Into<String>, source: Option<Source>) -> Self {
        Error::Server(ServerError { kind, message: message.into(), source })
    }

    /// A cache store error.
    pub fn store(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Error::Store(StoreError { kind, message: message.into() })
    }

    /// The same error with its message prefixed by `context` (kind and source kept).
    pub fn context(self, context: &str) -> Self {
        match self {
            Error::Server(mut e) => {
                e.message = format!("{context}: {}", e.message);
                Error::Server(e)
            }
            Error::TokenRejected(m) => Error::TokenRejected(format!("{context}: {m}")),
            other => other,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_decide_exit_code_transience_and_reauth() {
        let timeout = Error::unreachable(ServerErrorKind::Timeout, "t", None);
        assert!(timeout.is_transient() && !timeout.is_reauth_required());
        assert_eq!(timeout.exit_code(), exit::SERVER);
        assert!(Error::http_status(503, "x").is_transient());
        assert!(!Error::http_status(400, "x").is_transient());
        assert!(!Error::server("refused").is_transient());
        let login = Error::login_required("p", "gone");
        assert!(login.is_reauth_required() && !login.is_transient());
        assert_eq!(login.exit_code(), exit::LOGIN_REQUIRED);
        assert_eq!(Error::store(StoreErrorKind::Damaged, "d").exit_code(), exit::OTHER);
        let wrapped = Error::http_status(502, "HTTP 502").context("refresh");
        assert!(wrapped.is_transient(), "context keeps the kind");
        assert_eq!(wrapped.to_string(), "refresh: HTTP 502");
    }
}
