//! `migrate python-age-oauth` against stores made by the real Python age-oauth 0.2.1 (PyPI), installed
//! by tests/setup/python-age-oauth.sh: `verify_ssl` (false, true, a CA path) is carried over, the
//! migrated profiles work and are bound, and `--shred` never touches a file outside the store.

use crate::common;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/python-age-oauth/.venv/bin/python");
    assert!(venv.exists(), "the Python age-oauth is not installed: run `bash tests/setup/python-age-oauth.sh`");
    venv
}

/// `age-oauth connections add ...` of the Python package, with its store under `xdg`.
fn python_add(xdg: &Path, label: &str, portal: &str, verify_ssl: &str, auth_type: &str) {
    let out = Command::new(python())
        .args(["-c", "import sys; from age_oauth.cli import main; sys.exit(main(sys.argv[1:]))"])
        .args(["connections", "add", "--label", label, "--portal", portal, "--client-id", APP])
        .args(["--client-secret", APP_SECRET, "--verify-ssl", verify_ssl, "--auth-type", auth_type])
        .env("XDG_CONFIG_HOME", xdg)
        .env("HOME", xdg)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "python age-oauth: {}{}", text(&out.stdout), text(&out.stderr));
}

fn store_of(xdg: &Path) -> PathBuf {
    xdg.join("age_oauth")
}

#[test]
fn verify_ssl_false_true_and_a_ca_path_are_carried_over_and_the_profiles_work() {
    let sim = start_sim();
    let xdg = tempfile::tempdir().unwrap();
    let ca = xdg.path().join("corp-ca.pem");
    std::fs::write(&ca, ATTACKER_CA).unwrap();
    python_add(xdg.path(), "Prod", &sim.base_url(), "false", "user");
    python_add(xdg.path(), "Robot", &sim.base_url(), "true", "app");
    python_add(xdg.path(), "Lab", &sim.base_url(), ca.to_str().unwrap(), "app");

    let home = Home::new();
    let from = store_of(xdg.path());
    let out = home.run(&["migrate", "python-age-oauth", "--from", from.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let show = |name: &str| {
        let out = home.run(&["profile", "show", name, "--json"]);
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["fields"]["verify_ssl"]["value"].clone()
    };
    assert_eq!(show("Prod"), false);
    assert_eq!(show("Robot"), true);
    assert_eq!(show("Lab"), ca.display().to_string().as_str());

    // The profiles work: app credentials at once, the user one after a sign-in.
    for name in ["Robot", "Lab"] {
        let out = home.run(&["token", "--profile", name]);
        assert_eq!(code(&out), 0, "{name}: {}", text(&out.stderr));
    }
    let out = login(&home, "Prod", &[]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("verify_ssl = false"), "warned: {}", text(&out.stderr));
    assert_eq!(code(&home.run(&["token", "--profile", "Prod"])), 0);

    // Migrated caches are bound (to what was written in the user file), CA trust by content.
    let binding = home.load_cache("Lab").binding.expect("migrate writes the binding");
    assert!(matches!(binding.trust, age_oauth::Trust::CaBundle { .. }), "{binding:?}");
    let work = home.path().join("work");
    std::fs::write(work.join(".env"), "AGE_OAUTH_VERIFY_SSL=true\n").unwrap();
    let out = home.run(&["token", "--profile", "Lab", "--min-ttl", "9999999"]);
    assert_eq!(code(&out), 2, "a .env cannot change the trust: {}", text(&out.stderr));
}

/// A store with one real connection, whose `.env` is copied to `outside` (a file that is not the store's).
fn store_and_outside() -> (tempfile::TempDir, PathBuf, PathBuf, common::Home) {
    let xdg = tempfile::tempdir().unwrap();
    python_add(xdg.path(), "Prod", "https://gis.example.com/portal", "true", "app");
    let store = store_of(xdg.path());
    let id = std::fs::read_dir(store.join("connections")).unwrap().next().unwrap().unwrap().file_name();
    let env = store.join("connections").join(&id).join(".env");
    let outside = xdg.path().join("victim");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(&env, outside.join(".env")).unwrap();
    (xdg, store, outside, Home::new())
}

#[test]
fn shred_refuses_connection_ids_that_leave_the_store() {
    for id in ["../../victim", "/abs/path", ".."] {
        let (_xdg, store, outside, home) = store_and_outside();
        let index_path = store.join("connections.json");
        let mut index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
        let mut evil = index["connections"][0].clone();
        evil["id"] = id.into();
        evil["label"] = "Evil".into();
        index["connections"].as_array_mut().unwrap().push(evil);
        std::fs::write(&index_path, index.to_string()).unwrap();
        let before = std::fs::read(outside.join(".env")).unwrap();
        let out = home.run(&["migrate", "python-age-oauth", "--from", store.to_str().unwrap(), "--shred"]);
        assert_eq!(code(&out), 2, "{id}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("not a plain name"), "{id}: {}", text(&out.stderr));
        assert_eq!(std::fs::read(outside.join(".env")).unwrap(), before, "{id}: the outside file is untouched");
        assert!(!home.state().join("config.toml").exists(), "{id}: nothing migrated");
    }
}

#[test]
fn shred_refuses_symbolic_links() {
    let (_xdg, store, outside, home) = store_and_outside();
    let conn = std::fs::read_dir(store.join("connections")).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(conn.join(".env")).unwrap();
    std::os::unix::fs::symlink(outside.join(".env"), conn.join(".env")).unwrap();
    let before = std::fs::read(outside.join(".env")).unwrap();
    let out = home.run(&["migrate", "python-age-oauth", "--from", store.to_str().unwrap(), "--shred"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("symbolic link"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(outside.join(".env")).unwrap(), before, "the link's target is untouched");
}
