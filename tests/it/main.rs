//! The integration tests, one binary with a module per area (as uv and ripgrep do): the crate and
//! the `age-oauth` binary are linked once, and the real peers (oidc-provider, the KDC, the NTLM site)
//! start at most once per run and stop when this process ends. `cargo test --test it AREA` runs one area.

mod common;

// issue 11
mod api_key;
#[cfg(feature = "reqwest")]
mod async_client;
mod client;

mod bad_input;
mod bad_inputs_table;
mod cli;
mod config_layers;
mod connections;
mod corporate;
mod doctor;
mod engine_refresh;
mod engine_shape;
mod esri_token;
mod fleet;
mod fuzz_properties;
mod generated;
mod headless;
mod hostile_directory;
mod migrate_python;
mod oidc_flows;
mod oidc_real;
mod okta;
mod reliability;
mod sandbox_demo;
mod sandbox_tls;
mod token_json;
mod trust_rules;
mod web_tier;
