//! The environment variables age-oauth reads, as data: the CLI's help and the
//! generated `docs/environment.md` both come from here.

use crate::registry;

pub struct EnvVar {
    pub name: &'static str,
    pub description: &'static str,
    /// Carries a secret: `exec` removes it from its child's environment.
    pub secret: bool,
}

/// Variables with a fixed meaning (profile fields come on top, see `table`).
pub const FIXED: &[EnvVar] = &[
    EnvVar { name: "AGE_OAUTH_HOME", description: "Directory for all per-user state: config.toml, cache/, identity.txt, locks.", secret: false },
    EnvVar { name: "AGE_OAUTH_PROFILE", description: "Profile to use when --profile is absent (also read from .env).", secret: false },
    EnvVar { name: "AGE_OAUTH_IDENTITY", description: "Path of an age identity file to encrypt and decrypt caches with, instead of the one age-oauth creates.", secret: false },
    EnvVar { name: "AGE_OAUTH_PASSPHRASE", description: "Encrypt caches with this passphrase (scrypt, about 1.6 s a decrypt) instead of an identity: no key on disk.", secret: true },
    EnvVar { name: "AGE_OAUTH_EXPORT_PASSPHRASE", description: "Passphrase for `cache export --passphrase` and `cache import` of a passphrase export, read instead of asking (needed where no terminal is there: scripts, CI). Only the export file uses it; the caches keep their own key.", secret: true },
    EnvVar { name: "AGE_OAUTH_KEYRING", description: "`off` keeps the OS keyring out of the way (builds with the `keyring` feature keep the cache identity there when it answers within 3 s).", secret: false },
    EnvVar { name: "AGE_OAUTH_BROWSER", description: "Command that opens the sign-in URL (the URL is its last argument); `none` never opens a browser.", secret: false },
    EnvVar { name: "AGE_OAUTH_CLOCK_OFFSET", description: "Seconds added to the clock when deciding expiry (may be negative): for simulations and tests, never needed in normal use.", secret: false },
    EnvVar { name: "AGE_OAUTH_HTTP_TIMEOUT", description: "Seconds one HTTP exchange may take (1 to 3600, default 60); a server that does not answer in time counts as unreachable.", secret: false },
    EnvVar { name: "SSL_CERT_FILE", description: "A PEM file of CA certificates to trust instead of the operating system's store (as OpenSSL-based tools read it); a profile's `verify_ssl = PATH` still wins.", secret: false },
    EnvVar { name: "SSL_CERT_DIR", description: "A directory of PEM CA certificates (OpenSSL's hashed layout or plain files) to trust instead of the operating system's store.", secret: false },
    EnvVar { name: "HTTPS_PROXY", description: "Proxy for https:// requests (also `https_proxy`), reached with CONNECT; e.g. `http://proxy.corp:3128`. Loopback addresses are never proxied; `-v` shows the route of each request.", secret: false },
    EnvVar { name: "HTTP_PROXY", description: "Proxy for http:// requests (also `http_proxy`).", secret: false },
    EnvVar { name: "ALL_PROXY", description: "Proxy for requests whose scheme has no variable of its own (also `all_proxy`). Only http:// and https:// proxies.", secret: false },
    EnvVar { name: "NO_PROXY", description: "Comma-separated hosts that go direct (also `no_proxy`): `*`, a domain (its subdomains too), an IP address, a CIDR block, each optionally with `:port`.", secret: false },
    EnvVar { name: "AGE_OAUTH_INTERNAL_PROXY_LOOPBACK", description: "Internal, for age-oauth's own tests only: `1` sends loopback requests through the proxy too (a test machine has nothing but 127.0.0.1). Never needed in normal use.", secret: false },
    EnvVar { name: "NO_COLOR", description: "Any non-empty value turns colours off.", secret: false },
];

/// Every variable that carries a secret: the fixed ones marked so, `AGE_OAUTH_<NAME>` of every
/// provider secret, and of every field name that can only be a secret. `exec` removes them all
/// from its child's environment.
pub fn secret_names() -> Vec<String> {
    let mut names: Vec<String> = FIXED.iter().filter(|v| v.secret).map(|v| v.name.to_string()).collect();
    let fields = registry::providers().into_iter().flat_map(|p| p.secrets.iter().map(|s| s.name));
    for field in fields.chain(crate::config::ALWAYS_SECRET.iter().copied()) {
        names.push(format!("AGE_OAUTH_{}", field.to_ascii_uppercase()));
    }
    // `AGE_OAUTH_TOKEN` is what `exec` hands over on purpose.
    names.retain(|n| n != "AGE_OAUTH_TOKEN");
    names.sort();
    names.dedup();
    names
}

/// Markdown table of every variable: fixed ones, then `AGE_OAUTH_<FIELD>` for each
/// provider field and secret, generated from the registry.
pub fn table_markdown() -> String {
    let mut out = String::from(
        "# Environment variables\n\n<!-- Generated from the code (src/envvars.rs and the provider registry); \
         `cargo test` fails when this file is stale. Regenerate with `UPDATE_GENERATED=1 cargo test --test generated`. -->\n\n\
         | variable | meaning |\n|---|---|\n",
    );
    for v in FIXED {
        let kind = if v.secret { " **Secret**: never passed on to `exec`'s command." } else { "" };
        out.push_str(&format!("| `{}` | {}{kind} |\n", v.name, v.description));
    }
    let mut fields: std::collections::BTreeMap<String, (bool, Vec<&str>, String)> = Default::default();
    let engine = registry::schema_fields(&schemars::schema_for!(crate::settings::EngineSettings));
    for f in &engine {
        fields.entry(f.name.clone()).or_insert((false, vec!["every provider"], f.description.clone()));
    }
    for p in registry::providers() {
        for f in p.fields() {
            let entry = fields.entry(f.name.clone()).or_insert((f.secret, Vec::new(), f.description.clone()));
            if !entry.1.contains(&"every provider") {
                entry.1.push(p.name);
            }
        }
    }
    for (name, (secret, providers, description)) in fields {
        let kind = if secret {
            " **Secret**: read from the environment or .env, never from TOML; never passed on to `exec`'s command."
        } else {
            ""
        };
        out.push_str(&format!(
            "| `AGE_OAUTH_{}` | Overrides `{name}` of the selected profile ({}).{kind} {description} |\n",
            name.to_ascii_uppercase(),
            providers.join(", ")
        ));
    }
    out
}
