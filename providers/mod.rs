//! The plugin interface: a provider implements [`Provider`] and registers a [`ProviderInfo`] with
//! `inventory::submit!`; the wire code plugins share is in [`arcgis`], [`oauth2`], [`loopback`], [`pkce`],
//! [`jwt`], [`negotiate`], [`password`], [`okta`] and [`saml`]. The built-in plugins below are one private module each;
//! nothing outside its module names one, and none imports a sibling.

/// The OpenID Connect login shared by `oidc` and `api-key` (the module of the same name here is the plugin).
pub use crate::protocol::oidc as oidc_login;
pub use crate::protocol::{arcgis, jwt, loopback, negotiate, oauth2, okta, password, pkce, saml};
pub use crate::registry::{
    find, provider_names, providers as all, AuthVerdict, FlowContext, Identity, Obtained, ProfileSettings, Provider,
    ProviderInfo, SecretOrigin, SecretSpec, Secrets,
};

mod api_key;
mod esri_app;
mod esri_oob;
mod esri_pkce;
mod esri_token;
mod oidc;
mod okta_esri;
mod web_tier;

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn sources(dir: &Path) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(sources(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
        found
    }

    /// Every file beside this one is one plugin: it registers exactly one provider, names no
    /// sibling (`super::x`, `crate::providers::x`), and has a template; and the registry holds them all.
    #[test]
    fn each_file_is_one_plugin_that_imports_no_sibling() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("providers");
        let plugins: Vec<_> = sources(&dir).into_iter().filter(|(path, _)| !path.ends_with("/mod.rs")).collect();
        assert!(plugins.len() >= 6, "{plugins:?}");
        for (path, text) in &plugins {
            assert_eq!(text.matches("inventory::submit!").count(), 1, "{path} must register exactly one provider");
            for line in text.lines().map(str::trim) {
                let sibling = line.contains("crate::providers")
                    || line.match_indices("super::").any(|(i, _)| !line[i..].starts_with("super::*"));
                assert!(!sibling, "{path} names a sibling module: {line}");
            }
            assert!(text.contains("template: include_str!("), "{path} has no template");
        }
        assert_eq!(crate::registry::providers().len(), plugins.len(), "registered providers vs plugin files");
    }

    /// The engine, the CLI and the shared wire code never name a provider module.
    #[test]
    fn nothing_under_src_names_a_provider() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (path, text) in sources(&src) {
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                let names = line.contains("providers::") || line.contains("providers/");
                let declaration = path.ends_with("/lib.rs") && line.contains("\"../providers/mod.rs\"");
                assert!(!names || declaration, "{path} names a provider module: {line}");
            }
        }
    }
}
