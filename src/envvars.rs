//! The environment variables age-oauth reads, as data: the CLI's help and the
//! generated `docs/environment.md` both come from here.

use crate::registry;

pub struct EnvVar {
    pub name: &'static str,
    pub description: &'static str,
}

/// Variables with a fixed meaning (profile fields come on top, see `table`).
pub const FIXED: &[EnvVar] = &[
    EnvVar { name: "AGE_OAUTH_HOME", description: "Directory for all per-user state: config.toml, cache/, identity.txt, locks." },
    EnvVar { name: "AGE_OAUTH_PROFILE", description: "Profile to use when --profile is absent (also read from .env)." },
    EnvVar { name: "AGE_OAUTH_IDENTITY", description: "Path of an age identity file to encrypt and decrypt caches with, instead of the one age-oauth creates." },
    EnvVar { name: "AGE_OAUTH_PASSPHRASE", description: "Encrypt caches with this passphrase (scrypt, about 1.6 s a decrypt) instead of an identity: no key on disk." },
    EnvVar { name: "AGE_OAUTH_KEYRING", description: "`off` keeps the OS keyring out of the way (builds with the `keyring` feature keep the cache identity there when it answers within 3 s)." },
    EnvVar { name: "AGE_OAUTH_BROWSER", description: "Command that opens the sign-in URL (the URL is its last argument); `none` never opens a browser." },
    EnvVar { name: "AGE_OAUTH_CLOCK_OFFSET", description: "Seconds added to the clock when deciding expiry (may be negative): for simulations and tests, never needed in normal use." },
    EnvVar { name: "AGE_OAUTH_HTTP_TIMEOUT", description: "Seconds one HTTP exchange may take (1 to 3600, default 60); a server that does not answer in time counts as unreachable." },
    EnvVar { name: "NO_COLOR", description: "Any non-empty value turns colours off." },
];

/// Markdown table of every variable: fixed ones, then `AGE_OAUTH_<FIELD>` for each
/// provider field and secret, generated from the registry.
pub fn table_markdown() -> String {
    let mut out = String::from(
        "# Environment variables\n\n<!-- Generated from the code (src/envvars.rs and the provider registry); \
         `cargo test` fails when this file is stale. Regenerate with `UPDATE_GENERATED=1 cargo test --test generated`. -->\n\n\
         | variable | meaning |\n|---|---|\n",
    );
    for v in FIXED {
        out.push_str(&format!("| `{}` | {} |\n", v.name, v.description));
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
        let kind = if secret { " **Secret**: read from the environment or .env, never from TOML." } else { "" };
        out.push_str(&format!(
            "| `AGE_OAUTH_{}` | Overrides `{name}` of the selected profile ({}).{kind} {description} |\n",
            name.to_ascii_uppercase(),
            providers.join(", ")
        ));
    }
    out
}
