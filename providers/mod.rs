//! Built-in provider plugins. Each is one module that registers itself with
//! `inventory::submit!`; nothing outside its module names it.

pub mod arcgis;
pub mod esri_app;
pub mod esri_oob;
pub mod esri_pkce;
pub mod esri_token;
pub mod federation;
pub mod gssapi;
pub mod ntlm;
pub mod oidc;
pub mod password;
pub mod web_tier;
