//! age-oauth: tokens for scripts against ArcGIS, OAuth and web-tier-protected services,
//! kept in a per-user cache encrypted with age and refreshed safely across processes.

pub mod binding;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod envvars;
pub mod error;
pub mod headless;
pub mod http;
pub mod interact;
pub mod migrate;
pub mod paths;
pub mod prompt;
pub mod protocol;
pub mod redact;
pub mod registry;
pub mod sandbox;
pub mod schema;
pub mod secret;
pub mod settings;
pub mod store;
pub mod token;

/// The built-in provider plugins (one module each, under `providers/`).
#[path = "../providers/mod.rs"]
pub mod providers;

pub use error::{Error, Result};
