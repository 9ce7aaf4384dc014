//! age-oauth: tokens for scripts against ArcGIS, OAuth and web-tier-protected services, kept in a
//! per-user cache encrypted with [age](https://age-encryption.org) and refreshed safely across processes.
//!
//! A [`Config`] names profiles (a provider plugin and its settings); the [`Engine`] runs a profile's
//! sign-in, keeps the tokens in the [`CacheStore`] and refreshes them under a cross-process lock.
//!
//! ```
//! use age_oauth::{Config, Engine, ManualClock, Paths};
//! use std::sync::Arc;
//!
//! let home = tempfile::tempdir().unwrap();
//! let profiles = "[profiles.gis]\nprovider = \"esri-oob\"\n\
//!                 portal = \"https://gis.example.com/portal\"\nclient_id = \"abc\"\n";
//! let config = Config::from_parts(
//!     vec![(home.path().join("config.toml"), profiles.to_string())],
//!     Default::default(), // .env
//!     Default::default(), // AGE_OAUTH_* variables
//! )
//! .unwrap();
//! let engine = Engine::with_clock(Paths::under(home.path().to_path_buf()), Arc::new(ManualClock::new(1_700_000_000)));
//! let session = engine.session(config.resolve("gis", &[]).unwrap()).unwrap();
//! // Nobody has signed in yet: nothing is cached, and no network was touched.
//! assert!(engine.load(&session).unwrap().is_none());
//! ```
//!
//! A Rust program calls an API with a profile's credential through a [`Client`]: it adds the
//! credential in the provider's style, refreshes it before it expires, and retries once after a
//! refresh when the server rejects it. Here, with a key from `AGE_OAUTH_API_KEY` and the sandbox's
//! Anaconda-style service (`cargo run --example client` shows a stored key):
//!
//! ```
//! # #[cfg(feature = "sandbox")] {
//! use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
//! use age_oauth::{Client, Config, Engine, Paths};
//!
//! let service = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
//! let home = tempfile::tempdir().unwrap();
//! let profile = format!("[profiles.conda]\nprovider = \"api-key\"\napi_url = \"{}\"\nkey_source = \"static\"\n", service.site());
//! let env = [("AGE_OAUTH_API_KEY".to_string(), service.issue_key(3600))].into();
//! let config = Config::from_parts(vec![(home.path().join("config.toml"), profile)], Default::default(), env).unwrap();
//! let engine = Engine::new(Paths::under(home.path().to_path_buf()));
//! let session = engine.session(config.resolve("conda", &[]).unwrap()).unwrap();
//! let client = Client::new(engine, session);
//! let answer = client.get(&service.account_url()).unwrap();
//! assert_eq!(answer.status, 200);
//! // A request to another host is refused before anything is sent.
//! assert!(client.get("http://127.0.0.1:9/steal").is_err());
//! # }
//! ```
#![warn(missing_docs)]
// The library only (tests may be long and cast freely): the guide's 100-line limit (clippy.toml), and
// casts that could lose a server's absurd number silently.
#![warn(clippy::too_many_lines, clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]

#[cfg(feature = "reqwest")]
mod async_client;
mod binding;
mod client;
mod clock;
mod config;
#[cfg(feature = "sandbox")]
mod demo;
mod doctor;
mod engine;
mod env;
mod error;
mod fleet;
mod headless;
mod http;
mod interact;
mod migrate;
mod paths;
mod prompt;
mod protocol;
mod redact;
mod registry;
mod schema;
mod secret;
mod settings;
mod store;
mod token;

/// The command line: the `age-oauth` binary is [`cli::run`] over [`cli::Cli`].
pub mod cli;
#[path = "../providers/mod.rs"]
pub mod providers;
/// Simulators of ArcGIS portals and servers and an OpenID Connect issuer, for `age-oauth sandbox`, `demo` and tests.
#[cfg(feature = "sandbox")]
pub mod sandbox;

#[cfg(feature = "reqwest")]
pub use async_client::AsyncClient;
pub use binding::{Binding, BoundOrigin, Origin, Trust};
pub use client::{Client, ClientError};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    loose_value, remove_profile, write_profile, Config, FlagValue, Origin as ValueOrigin, ResolvedProfile,
};
pub use engine::federation::ServerToken;
pub use engine::{Engine, LoginOutcome, LogoutReport, Session};
pub use env::{table_markdown as environment_markdown, Env};
pub use error::exit::{
    LOGIN_REQUIRED as EXIT_LOGIN_REQUIRED, OK as EXIT_OK, OTHER as EXIT_OTHER, SERVER as EXIT_SERVER,
    USAGE as EXIT_USAGE,
};
pub use error::{Error, Result, ServerError, ServerErrorKind, StoreError, StoreErrorKind};
pub use http::{HttpClient, HttpRequest, HttpResponse, Method, UreqClient, VerifySsl};
pub use interact::{Interaction, Terminal};
pub use paths::Paths;
pub use schema::profile_file_schema;
pub use secret::Secret;
pub use store::{encrypt_to, CacheEntry, CacheStore};
pub use token::{DerivedToken, ProviderState, TokenSet, MAX_LIFETIME as MAX_TOKEN_LIFETIME};
