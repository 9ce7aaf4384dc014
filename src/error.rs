//! Typed errors for the whole library and the exit code each one maps to.
//! Errors are built where they happen and reported once, by the binary.

use std::path::PathBuf;

/// Everything that can go wrong, grouped by what the user should do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line usage or a configuration the user must fix (exit 2).
    #[error("{0}")]
    Config(String),

    /// A profile file could not be parsed; carries file, line and column.
    #[error("{path}:{line}:{column}: {message}")]
    ConfigSyntax { path: PathBuf, line: usize, column: usize, message: String },

    /// No usable login: the user must run `age-oauth login` (exit 3).
    #[error("{message}; run `age-oauth login --profile {profile}`")]
    LoginRequired { profile: String, message: String },

    /// The server rejected a token it should have accepted (ArcGIS 498, HTTP 401);
    /// the engine refreshes once and retries before letting this out (exit 3).
    #[error("{0}")]
    TokenRejected(String),

    /// The server refused the request or could not be reached (exit 4).
    #[error("{0}")]
    Server(String),

    /// The encrypted cache exists but cannot be used; it is left untouched (exit 1).
    #[error("{0}")]
    Cache(String),

    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

/// Stable exit codes of the command-line contract.
pub mod exit {
    pub const OK: i32 = 0;
    pub const OTHER: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const LOGIN_REQUIRED: i32 = 3;
    pub const SERVER: i32 = 4;
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::ConfigSyntax { .. } => exit::USAGE,
            Error::LoginRequired { .. } | Error::TokenRejected(_) => exit::LOGIN_REQUIRED,
            Error::Server(_) => exit::SERVER,
            Error::Cache(_) | Error::Io { .. } | Error::Other(_) => exit::OTHER,
        }
    }

    pub fn login_required(profile: &str, message: impl Into<String>) -> Self {
        Error::LoginRequired { profile: profile.to_string(), message: message.into() }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
