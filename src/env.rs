//! Every environment variable age-oauth reads or sets, as a documented constant, and [`Env`]: the one
//! snapshot of them a process takes. `docs/environment.md` is generated from here (and the provider registry).

use crate::registry;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// An environment variable and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// Its name.
    pub name: &'static str,
    /// What it does, for `docs/environment.md`.
    pub description: &'static str,
    /// Carries a secret: `exec` removes it from its child's environment.
    pub secret: bool,
}

/// `AGE_OAUTH_HOME`: Directory for all per-user state: config.toml, cache/, identity.txt, locks.
pub const HOME_DIR: Var = Var {
    name: "AGE_OAUTH_HOME",
    description: "Directory for all per-user state: config.toml, cache/, identity.txt, locks.",
    secret: false,
};
/// `AGE_OAUTH_PROFILE`: Profile to use when --profile is absent (also read from .env).
pub const PROFILE: Var = Var {
    name: "AGE_OAUTH_PROFILE",
    description: "Profile to use when --profile is absent (also read from .env).",
    secret: false,
};
/// `AGE_OAUTH_IDENTITY`: Path of an age identity file to encrypt and decrypt caches with, instead of the one age-oauth creates.
pub const IDENTITY: Var = Var {
    name: "AGE_OAUTH_IDENTITY",
    description:
        "Path of an age identity file to encrypt and decrypt caches with, instead of the one age-oauth creates.",
    secret: false,
};
/// `AGE_OAUTH_PASSPHRASE`: Encrypt caches with this passphrase (scrypt, about 1.6 s a decrypt) instead of an identity: no key on disk.
pub const PASSPHRASE: Var = Var {
    name: "AGE_OAUTH_PASSPHRASE",
    description:
        "Encrypt caches with this passphrase (scrypt, about 1.6 s a decrypt) instead of an identity: no key on disk.",
    secret: true,
};
/// `AGE_OAUTH_EXPORT_PASSPHRASE`: Passphrase for `cache export --passphrase` and `cache import` of a passphrase export, read instead of asking (needed where no terminal is there: scripts, CI).
pub const EXPORT_PASSPHRASE: Var = Var { name: "AGE_OAUTH_EXPORT_PASSPHRASE", description: "Passphrase for `cache export --passphrase` and `cache import` of a passphrase export, read instead of asking (needed where no terminal is there: scripts, CI). Only the export file uses it; the caches keep their own key.", secret: true };
/// `AGE_OAUTH_KEYRING`: `off` keeps the OS keyring out of the way (builds with the `keyring` feature keep the cache identity there when it answers within 3 s).
pub const KEYRING: Var = Var { name: "AGE_OAUTH_KEYRING", description: "`off` keeps the OS keyring out of the way (builds with the `keyring` feature keep the cache identity there when it answers within 3 s).", secret: false };
/// `AGE_OAUTH_BROWSER`: Command that opens the sign-in URL (the URL is its last argument); `none` never opens a browser.
pub const BROWSER: Var = Var {
    name: "AGE_OAUTH_BROWSER",
    description: "Command that opens the sign-in URL (the URL is its last argument); `none` never opens a browser.",
    secret: false,
};
/// `AGE_OAUTH_CLOCK_OFFSET`: Seconds added to the clock when deciding expiry (may be negative): for simulations and tests, never needed in normal use.
pub const CLOCK_OFFSET: Var = Var { name: "AGE_OAUTH_CLOCK_OFFSET", description: "Seconds added to the clock when deciding expiry (may be negative): for simulations and tests, never needed in normal use.", secret: false };
/// `AGE_OAUTH_HTTP_TIMEOUT`: Seconds one HTTP exchange may take (1 to 3600, default 60); a server that does not answer in time counts as unreachable.
pub const HTTP_TIMEOUT: Var = Var { name: "AGE_OAUTH_HTTP_TIMEOUT", description: "Seconds one HTTP exchange may take (1 to 3600, default 60); a server that does not answer in time counts as unreachable.", secret: false };
/// `SSL_CERT_FILE`: A PEM file of CA certificates to trust instead of the operating system's store (as OpenSSL-based tools read it); a profile's `verify_ssl = PATH` still wins.
pub const SSL_CERT_FILE: Var = Var { name: "SSL_CERT_FILE", description: "A PEM file of CA certificates to trust instead of the operating system's store (as OpenSSL-based tools read it); a profile's `verify_ssl = PATH` still wins.", secret: false };
/// `SSL_CERT_DIR`: A directory of PEM CA certificates (OpenSSL's hashed layout or plain files) to trust instead of the operating system's store.
pub const SSL_CERT_DIR: Var = Var { name: "SSL_CERT_DIR", description: "A directory of PEM CA certificates (OpenSSL's hashed layout or plain files) to trust instead of the operating system's store.", secret: false };
/// `HTTPS_PROXY`: Proxy for https:// requests (also `https_proxy`), reached with CONNECT; e.g.
pub const HTTPS_PROXY: Var = Var { name: "HTTPS_PROXY", description: "Proxy for https:// requests (also `https_proxy`), reached with CONNECT; e.g. `http://proxy.corp:3128`. Loopback addresses are never proxied; `-v` shows the route of each request.", secret: false };
/// `HTTP_PROXY`: Proxy for http:// requests (also `http_proxy`).
pub const HTTP_PROXY: Var =
    Var { name: "HTTP_PROXY", description: "Proxy for http:// requests (also `http_proxy`).", secret: false };
/// `ALL_PROXY`: Proxy for requests whose scheme has no variable of its own (also `all_proxy`).
pub const ALL_PROXY: Var = Var { name: "ALL_PROXY", description: "Proxy for requests whose scheme has no variable of its own (also `all_proxy`). Only http:// and https:// proxies.", secret: false };
/// `NO_PROXY`: Comma-separated hosts that go direct (also `no_proxy`): `*`, a domain (its subdomains too), an IP address, a CIDR block, each optionally with `:port`.
pub const NO_PROXY: Var = Var { name: "NO_PROXY", description: "Comma-separated hosts that go direct (also `no_proxy`): `*`, a domain (its subdomains too), an IP address, a CIDR block, each optionally with `:port`.", secret: false };
/// `AGE_OAUTH_INTERNAL_PROXY_LOOPBACK`: Internal, for age-oauth's own tests only: `1` sends loopback requests through the proxy too (a test machine has nothing but 127.0.0.1).
pub const INTERNAL_PROXY_LOOPBACK: Var = Var { name: "AGE_OAUTH_INTERNAL_PROXY_LOOPBACK", description: "Internal, for age-oauth's own tests only: `1` sends loopback requests through the proxy too (a test machine has nothing but 127.0.0.1). Never needed in normal use.", secret: false };
/// `NO_COLOR`: Any non-empty value turns colours off.
pub const NO_COLOR: Var =
    Var { name: "NO_COLOR", description: "Any non-empty value turns colours off.", secret: false };
/// `HOME`: The user's home directory.
pub const HOME: Var = Var { name: "HOME", description: "The user's home directory: `~` in paths typed at prompts (and, through the platform's conventions, the default state directory).", secret: false };
/// `APPDATA`: Windows.
pub const APPDATA: Var = Var {
    name: "APPDATA",
    description: "Windows: the state directory is `%APPDATA%\\age-oauth` unless AGE_OAUTH_HOME is set.",
    secret: false,
};
/// `AGE_OAUTH_TOKEN`: Set for `exec`'s command (and printed by `token --format env`): the access token.
pub const TOKEN: Var = Var {
    name: "AGE_OAUTH_TOKEN",
    description: "Set for `exec`'s command (and printed by `token --format env`): the access token.",
    secret: false,
};
/// `AGE_OAUTH_TOKEN_EXPIRES_AT`: Printed by `token --format env`: when the token expires (RFC 3339).
pub const TOKEN_EXPIRES_AT: Var = Var {
    name: "AGE_OAUTH_TOKEN_EXPIRES_AT",
    description: "Printed by `token --format env`: when the token expires (RFC 3339).",
    secret: false,
};
/// `AGE_OAUTH_PORTAL`: Set for `exec`'s command: the profile's portal (ArcGIS profiles).
pub const PORTAL: Var = Var {
    name: "AGE_OAUTH_PORTAL",
    description: "Set for `exec`'s command: the profile's portal (ArcGIS profiles).",
    secret: false,
};
/// `AGE_OAUTH_USERNAME`: Set for `exec`'s command: the signed-in user, when known.
pub const USERNAME: Var = Var {
    name: "AGE_OAUTH_USERNAME",
    description: "Set for `exec`'s command: the signed-in user, when known.",
    secret: false,
};
/// `AGE_OAUTH_EXEC`: Set for `exec`'s command: the profile `exec` ran it for; a nested age-oauth call for another profile then ignores the AGE_OAUTH_PORTAL / AGE_OAUTH_USERNAME exported for this one.
pub const EXEC: Var = Var { name: "AGE_OAUTH_EXEC", description: "Set for `exec`'s command: the profile `exec` ran it for; a nested age-oauth call for another profile then ignores the AGE_OAUTH_PORTAL / AGE_OAUTH_USERNAME exported for this one.", secret: false };

// --- issue 11 (api keys): begin
/// `AGE_OAUTH_API_KEY`: An API key (or any bearer token) for the selected profile, whatever its provider.
pub const API_KEY: Var = Var { name: "AGE_OAUTH_API_KEY", description: "An API key for the selected profile, whatever its provider: `token` prints it, `request`, `exec` and the library's `Client` send it in the provider's own style (`Authorization: Bearer`, `X-Esri-Authorization: Bearer` for ArcGIS). No cache is read or written and no network call is made to get it; `status`, `whoami` and `profile show` say the credential came from the environment. Empty means unset. A JWT whose `exp` has passed is refused (exit 3).", secret: true };
// --- issue 11: end
/// `VAULT_TOKEN`: The Vault / OpenBao token for a profile's fleet store (issue 13), when its `store.token_file` is not set.
pub const VAULT_TOKEN: Var = Var { name: "VAULT_TOKEN", description: "The Vault / OpenBao token a profile with a fleet store (`[profiles.P.store]`) reads and writes its shared record with, when `store.token_file` is not set. Sent only to the store URL the login is bound to.", secret: true };
/// `BAO_TOKEN`: OpenBao's name for the same token, read when VAULT_TOKEN is not set.
pub const BAO_TOKEN: Var = Var {
    name: "BAO_TOKEN",
    description:
        "OpenBao's name for the fleet store token, read when neither `store.token_file` nor VAULT_TOKEN is set.",
    secret: true,
};
/// `AGE_OAUTH_INTERNAL_FLEET_PAUSE`: test hook that stops a fleet refresher at one step.
pub const INTERNAL_FLEET_PAUSE: Var = Var { name: "AGE_OAUTH_INTERNAL_FLEET_PAUSE", description: "Internal, for age-oauth's own tests only: `claimed:MS` or `refreshed:MS` makes a fleet refresher announce the step on stderr and sleep MS milliseconds there (so a test can kill it at that moment). Never needed in normal use.", secret: false };

/// The variables age-oauth reads with a fixed meaning (profile fields `AGE_OAUTH_<FIELD>` come on top).
pub const READ: &[Var] = &[
    HOME_DIR,
    PROFILE,
    IDENTITY,
    PASSPHRASE,
    EXPORT_PASSPHRASE,
    KEYRING,
    BROWSER,
    CLOCK_OFFSET,
    HTTP_TIMEOUT,
    SSL_CERT_FILE,
    SSL_CERT_DIR,
    HTTPS_PROXY,
    HTTP_PROXY,
    ALL_PROXY,
    NO_PROXY,
    INTERNAL_PROXY_LOOPBACK,
    NO_COLOR,
    HOME,
    APPDATA,
    API_KEY,
    VAULT_TOKEN,
    BAO_TOKEN,
    INTERNAL_FLEET_PAUSE,
];

/// The variables age-oauth sets for others (`exec`'s command, `token --format env`).
pub const SET: &[Var] = &[TOKEN, TOKEN_EXPIRES_AT, PORTAL, USERNAME, EXEC];

/// The prefix of every profile-field override (`AGE_OAUTH_PORTAL` for `portal`).
pub const FIELD_PREFIX: &str = "AGE_OAUTH_";

/// A snapshot of the environment: taken once per process (`env::process`), or built from pairs in tests.
/// `Debug` shows the names only: values may be secrets.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

/// A name age-oauth reads: `AGE_OAUTH_*`, or one of `READ` (proxy variables in either case).
fn wanted(k: &str) -> bool {
    k.starts_with(FIELD_PREFIX)
        || READ.iter().any(|v| v.name == k || v.name.eq_ignore_ascii_case(k) && k.ends_with("_proxy"))
}

impl Env {
    /// The variables age-oauth cares about, read from this process's environment (not UTF-8: left out).
    pub fn from_process() -> Env {
        // Names are checked before anything is copied: the environment can be large, and
        // `token` on a valid cache pays for every variable turned into a string.
        let ours = std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(wanted));
        Env { vars: ours.filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect() }
    }

    /// From name/value pairs (tests inject their environment this way); other names are dropped.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Env {
        let vars = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).filter(|(k, _)| wanted(k)).collect();
        Env { vars }
    }

    /// The value as set, even empty.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value when set and not empty.
    pub fn get(&self, var: &Var) -> Option<&str> {
        self.raw(var.name).filter(|v| !v.is_empty())
    }

    /// True when the variable is set at all (even empty).
    pub fn is_set(&self, var: &Var) -> bool {
        self.vars.contains_key(var.name)
    }

    /// Every variable whose name starts with `prefix`.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars.iter().filter(move |(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// This process's snapshot, taken at the first call. Only the CLI calls it (at start, and to colour
/// a last error); everything below reads the snapshot handed down in [`crate::Paths`].
pub fn process() -> &'static Env {
    static SNAPSHOT: OnceLock<Env> = OnceLock::new();
    SNAPSHOT.get_or_init(Env::from_process)
}

/// Every variable that carries a secret: the fixed ones marked so, `AGE_OAUTH_<NAME>` of every
/// provider secret, and of every field name that can only be a secret. `exec` removes them all
/// from its child's environment.
pub fn secret_names() -> Vec<String> {
    let mut names: Vec<String> = READ.iter().filter(|v| v.secret).map(|v| v.name.to_string()).collect();
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
        "# Environment variables\n\n<!-- Generated from the code (src/env.rs and the provider registry); \
         `cargo test` fails when this file is stale. Regenerate with `UPDATE_GENERATED=1 cargo test --test it generated::`. -->\n\n\
         | variable | meaning |\n|---|---|\n",
    );
    for v in READ {
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
    out.push_str("\n## Set by age-oauth\n\n| variable | meaning |\n|---|---|\n");
    for v in SET {
        out.push_str(&format!("| `{}` | {} |\n", v.name, v.description));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }

    /// Every `AGE_OAUTH_*` name the code uses (src/ and providers/, templates included) is in the
    /// generated table: a fixed variable, one age-oauth sets, or a profile-field override.
    #[test]
    fn every_age_oauth_name_in_the_code_is_documented() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        sources(&root.join("src"), &mut files);
        sources(&root.join("providers"), &mut files);
        let table = table_markdown();
        let mut missing = Vec::new();
        for (path, text) in &files {
            for (i, _) in text.match_indices(FIELD_PREFIX) {
                let name: String = text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                // `AGE_OAUTH_` alone (a prefix in code) and `AGE_OAUTH_<FIELD>` placeholders are not names.
                if name.len() > FIELD_PREFIX.len() && !name.ends_with('_') && !table.contains(&format!("`{name}`")) {
                    missing.push(format!("{path}: {name}"));
                }
            }
        }
        missing.sort();
        missing.dedup();
        assert!(
            missing.is_empty(),
            "not in docs/environment.md (add a constant to src/env.rs):\n{}",
            missing.join("\n")
        );
        // The check can fail: a name nobody documented is not in the table.
        assert!(!table.contains(&format!("`{FIELD_PREFIX}NOT_A_VARIABLE`")));
    }

    #[test]
    fn a_snapshot_keeps_what_age_oauth_reads_and_hides_values_in_debug() {
        let env = Env::from_pairs([
            ("AGE_OAUTH_PASSPHRASE", "hunter2"),
            ("https_proxy", "http://p:3128"),
            ("AGE_OAUTH_KEYRING", ""),
            ("UNRELATED", "x"),
        ]);
        assert_eq!(env.raw("https_proxy"), Some("http://p:3128"));
        assert!(env.is_set(&KEYRING) && env.get(&KEYRING).is_none(), "set but empty");
        assert_eq!(env.raw("UNRELATED"), None);
        let debug = format!("{env:?}");
        assert!(debug.contains("AGE_OAUTH_PASSPHRASE") && !debug.contains("hunter2"), "{debug}");
    }

    /// What the CLI hands down decides: `AGE_OAUTH_HOME` and `AGE_OAUTH_CLOCK_OFFSET` from an injected snapshot.
    #[test]
    fn paths_and_clock_come_from_the_snapshot_handed_down() {
        let env = Env::from_pairs([("AGE_OAUTH_HOME", "/tmp/age-oauth-env-test"), ("AGE_OAUTH_CLOCK_OFFSET", "3600")]);
        let paths = crate::paths::Paths::from_env(&env).unwrap();
        assert_eq!(paths.config_file, Path::new("/tmp/age-oauth-env-test/config.toml"));
        let clock = crate::clock::from_env(&env).unwrap();
        let system = crate::clock::Clock::now(&crate::clock::SystemClock);
        assert!(clock.now() >= system + 3590, "shifted by an hour");
        let bad = Env::from_pairs([("AGE_OAUTH_CLOCK_OFFSET", "soon")]);
        assert!(crate::clock::from_env(&bad).is_err());
    }
}
