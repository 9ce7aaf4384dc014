//! Simulators of the services age-oauth talks to, written to their published protocols.
//! They back `age-oauth sandbox`, `age-oauth demo` and the test suite (the `sandbox` cargo feature).
//!
//! One HTTP stack serves them all (`http`: tiny_http with a worker pool, optionally behind the
//! HTTPS front of `tls`); `arcgis` holds the ArcGIS wire conventions the Portal and Server share.
//! The simulators are test oracles: they use none of the client's code (see the layout test below).

// issue 11: the Anaconda-style API-key service.
pub mod anaconda;
pub use anaconda::{AnacondaFaults, AnacondaSim, AnacondaSimConfig, SeenRequest};
mod arcgis;
pub mod arcgis_server;
mod http;
pub mod oidc;
pub mod okta;
pub mod portal;
mod saml;
pub mod tls;
pub use arcgis_server::*;
pub use oidc::{OidcFaults, OidcSim, OidcSimConfig};
pub use okta::{
    FederatedOrg, OktaConfig, OktaFactor, OktaSamlApp, OktaSim, OktaUser, OktaUserState, PushAnswer, PushScript,
};
pub use portal::*;
pub use tls::{TlsFiles, TlsFront};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn sandbox_sources() -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sandbox"), &mut files);
        assert!(files.len() >= 8, "{files:?}");
        files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect()
    }

    #[test]
    fn no_sandbox_file_is_over_800_lines() {
        for (file, text) in sandbox_sources() {
            let lines = text.lines().count();
            assert!(lines <= 800, "{} has {lines} lines: split it by concern", file.display());
        }
    }

    /// The simulators are oracles: they share no code with the client they test (PKCE, JWT, HTTP
    /// client...), and one HTTP stack (http.rs) serves them all.
    #[test]
    fn the_simulators_use_no_client_code_and_one_http_stack() {
        // Spelled in pieces so that this test does not find itself.
        let (crate_path, own_path, server_crate) =
            (concat!("crate", "::"), concat!("crate", "::sandbox"), concat!("tiny", "_http"));
        for (file, text) in sandbox_sources() {
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let client_code = code.match_indices(crate_path).any(|(i, _)| !code[i..].starts_with(own_path));
                assert!(!client_code, "{}:{}: {line}", file.display(), n + 1);
                if code.contains(server_crate) {
                    assert!(file.ends_with("sandbox/http.rs"), "{}:{}: serve through http.rs", file.display(), n + 1);
                }
            }
        }
    }
}
