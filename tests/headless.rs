//! Headless servers and the scripting surface, through the real binary: cache export/import
//! (to a key and a passphrase, opened by the reference `age` tool), key show/rotate, exec,
//! token formats, completions, and migration from the Python age-oauth.

mod common;
use common::*;
use serde_json::Value;

/// A logged-in esri-oob profile `prod` on a "desktop" home.
fn desktop(sim: &age_oauth::sandbox::PortalSim) -> Home {
    let home = Home::new();
    add_profile(&home, sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    home
}

fn identity_path(home: &Home) -> std::path::PathBuf {
    home.state().join("identity.txt")
}

#[test]
fn export_to_a_server_key_then_the_server_refreshes_alone() {
    let sim = start_sim();
    let desk = desktop(&sim);
    let server = Home::new();
    let key = text(&server.run(&["key", "show"]).stdout).trim().to_string();
    assert!(key.starts_with("age1"), "{key}");
    let export = desk.path().join("prod.age");
    let out = desk.run(&["cache", "export", "--profile", "prod", "--recipient", &key, "-o", export.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("diverge"), "rotation warning: {}", text(&out.stderr));
    let bytes = std::fs::read(&export).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    assert!(!contains(&bytes, APP_SECRET));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&export).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // The reference age tool opens it with the server's identity.
    let age = std::process::Command::new("age")
        .args(["--decrypt", "-i"])
        .arg(identity_path(&server))
        .arg(&export)
        .output()
        .expect("the reference `age` tool is needed: run `bash tests/setup/age.sh`");
    assert!(age.status.success(), "{}", text(&age.stderr));
    let doc: Value = serde_json::from_slice(&age.stdout).unwrap();
    assert_eq!(doc["format"], "age-oauth-export/1");
    assert_eq!(doc["provider"], "esri-oob");
    assert_eq!(doc["settings"]["client_id"], APP);
    assert_eq!(doc["cache"]["secrets"]["client_secret"], APP_SECRET);

    // Import on the server (its own identity file is found without any variable).
    let out = server.run(&["cache", "import", export.to_str().unwrap(), "--as", "srv"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let cache = std::fs::read(server.cache_file("srv")).unwrap();
    assert!(cache.starts_with(b"age-encryption.org/v1\n-> X25519 "), "kept under the server's key, not scrypt");
    let before = sim.count("token:refresh_token");
    let out = server.run(&["token", "--profile", "srv", "--min-ttl", "3600"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sim.count("token:refresh_token"), before + 1, "the server refreshed by itself");
    assert_eq!(text(&server.run(&["whoami", "--profile", "srv"]).stdout), "demo\n");
    // a second import under the same name is refused without --force
    let out = server.run(&["cache", "import", export.to_str().unwrap(), "--as", "srv"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    // an export for another key is refused with the next step
    let other = Home::new();
    let out = other.run(&["cache", "import", export.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("key show"), "{}", text(&out.stderr));
}

#[test]
fn export_to_a_passphrase_and_import_with_age_oauth_identity() {
    let sim = start_sim();
    let desk = desktop(&sim);
    let export = desk.path().join("prod-pass.age");
    let out = desk
        .cmd()
        .env("AGE_OAUTH_EXPORT_PASSPHRASE", "long shared phrase")
        .args(["cache", "export", "--profile", "prod", "--passphrase", "-o", export.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(std::fs::read(&export).unwrap().starts_with(b"age-encryption.org/v1\n-> scrypt "));
    let server = Home::new();
    let wrong = server
        .cmd()
        .env("AGE_OAUTH_PASSPHRASE", "nope")
        .args(["cache", "import", export.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&wrong), 2);
    assert!(text(&wrong.stderr).contains("wrong passphrase"), "{}", text(&wrong.stderr));
    assert!(!server.cache_file("prod").exists(), "nothing imported");
    let out = server
        .cmd()
        .env("AGE_OAUTH_PASSPHRASE", "long shared phrase")
        .args(["cache", "import", export.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unset AGE_OAUTH_PASSPHRASE"), "{}", text(&out.stderr));
    assert_eq!(code(&server.run(&["token", "--profile", "prod"])), 0, "no scrypt and no prompt afterwards");

    // With a user-managed key: AGE_OAUTH_IDENTITY opens the export and keeps the cache.
    let keyfile = server.path().join("server-key.txt");
    std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&keyfile)
        .output()
        .expect("age-keygen (bash tests/setup/age.sh)");
    let public = std::process::Command::new("age-keygen").arg("-y").arg(&keyfile).output().unwrap();
    let public = text(&public.stdout).trim().to_string();
    let export2 = desk.path().join("prod-key.age");
    let out =
        desk.run(&["cache", "export", "--profile", "prod", "--recipient", &public, "-o", export2.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let third = Home::new();
    let with_key = |args: &[&str]| third.cmd().env("AGE_OAUTH_IDENTITY", &keyfile).args(args).output().unwrap();
    let out = with_key(&["cache", "import", export2.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(code(&with_key(&["token", "--profile", "prod"])), 0);
    assert!(!identity_path(&third).exists(), "the user's key is used, none is created");
}

#[test]
fn key_rotate_reencrypts_every_cache() {
    let sim = start_sim();
    let home = desktop(&sim);
    add_profile(&home, &sim, "second");
    let old_identity = std::fs::read_to_string(identity_path(&home)).unwrap();
    let old_public = text(&home.run(&["key", "show"]).stdout).trim().to_string();
    let token_before = text(&home.run(&["token", "--profile", "prod"]).stdout);
    let out = home.run(&["key", "rotate"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let new_public = text(&out.stdout).trim().to_string();
    assert_ne!(new_public, old_public);
    assert_eq!(text(&home.run(&["key", "show"]).stdout).trim(), new_public);
    assert_eq!(text(&home.run(&["token", "--profile", "prod"]).stdout), token_before, "same cache, new key");
    // The old key opens nothing any more.
    let old_file = home.path().join("old.txt");
    std::fs::write(&old_file, old_identity).unwrap();
    for profile in ["prod", "second"] {
        let out =
            home.cmd().env("AGE_OAUTH_IDENTITY", &old_file).args(["token", "--profile", profile]).output().unwrap();
        assert_eq!(code(&out), 1, "{profile}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("another key"));
    }
    // Passphrase mode has no key to rotate.
    let out = home.cmd().env("AGE_OAUTH_PASSPHRASE", "x").args(["key", "rotate"]).output().unwrap();
    assert_eq!(code(&out), 2);
}

#[test]
fn exec_and_token_formats() {
    let sim = start_sim();
    let home = desktop(&sim);
    let token = text(&home.run(&["token", "--profile", "prod"]).stdout).trim().to_string();
    let out = home.run(&[
        "exec",
        "--profile",
        "prod",
        "--",
        "sh",
        "-c",
        "printf '%s|%s|%s' \"$AGE_OAUTH_TOKEN\" \"$AGE_OAUTH_PORTAL\" \"$AGE_OAUTH_USERNAME\"; exit 42",
    ]);
    assert_eq!(code(&out), 42, "the command's exit code: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{token}|{}|demo", sim.base_url()));
    // A nested call for another profile does not inherit the exported portal.
    let out = home.run(&["profile", "add", "other", "--portal", "https://other.example/portal", "--client-id", "x"]);
    assert_eq!(code(&out), 0);
    let exe = BIN;
    let out = home.run(&["exec", "--profile", "prod", "--", exe, "profile", "show", "other", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fields"]["portal"]["value"], "https://other.example/portal");
    // a command that does not exist
    assert_eq!(code(&home.run(&["exec", "--profile", "prod", "--", "/nonexistent/cmd"])), 2);

    let out = home.run(&["token", "--profile", "prod", "--format", "header"]);
    assert_eq!(text(&out.stdout), format!("X-Esri-Authorization: Bearer {token}\n"));
    let out = home.run(&["token", "--profile", "prod", "--format", "env"]);
    let env = text(&out.stdout);
    assert!(env.starts_with(&format!("export AGE_OAUTH_TOKEN='{token}'\n")), "{env}");
    assert!(env.contains("export AGE_OAUTH_TOKEN_EXPIRES_AT='20"), "{env}");
    let out = home.run(&["token", "--profile", "prod", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["access_token"], token);
}

#[test]
fn completions_for_every_shell() {
    let home = Home::new();
    for (shell, marker) in [
        ("bash", "_age__oauth"),
        ("zsh", "#compdef age-oauth"),
        ("fish", "complete -c age-oauth"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = home.run(&["completions", shell]);
        assert_eq!(code(&out), 0);
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}");
        assert!(script.contains("login") && script.contains("export"), "{shell} completes subcommands");
    }
}

#[test]
fn migrate_from_the_python_age_oauth() {
    let sim = start_sim();
    // Real tokens from the sandbox, as the Python tool would have stored them.
    let donor = desktop(&sim);
    let tokens = donor.load_cache("prod").tokens.unwrap();
    let python = tempfile::tempdir().unwrap();
    let root = python.path().join("age_oauth");
    let conn = root.join("connections").join("gis_prod_1a2b3c4d");
    std::fs::create_dir_all(&conn).unwrap();
    std::fs::write(
        root.join("connections.json"),
        serde_json::json!({"schema_version": 1, "default_connection_id": "gis_prod_1a2b3c4d", "connections": [
            {"id": "gis_prod_1a2b3c4d", "label": "GIS Prod", "portal_url": sim.base_url(), "created_at": "2026-01-01T00:00:00+00:00",
             "last_used_at": null, "tags": [], "verify_ssl": true, "ca_bundle": null},
            {"id": "app_9f8e7d6c", "label": "app", "portal_url": sim.base_url(), "created_at": "2026-01-01T00:00:00+00:00",
             "last_used_at": null, "tags": [], "verify_ssl": true, "ca_bundle": null}]})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        conn.join("meta.json"),
        serde_json::json!({"id": "gis_prod_1a2b3c4d", "label": "GIS Prod", "portal_url": sim.base_url(), "created_at": "x",
                           "last_used_at": null, "tags": [], "verify_ssl": true, "ca_bundle": null})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        conn.join(".env"),
        format!(
            "# age_oauth connection profile (.env)\nPORTAL_URL='{}'\nOAUTH_CLIENT_ID='{APP}'\nOAUTH_CLIENT_SECRET='{APP_SECRET}'\n\
             OAUTH_VERIFY_SSL='true'\nOAUTH_AUTH_TYPE='user'\nOAUTH_REFERER=''\nOAUTH_ACCESS_TOKEN='{}'\nOAUTH_TOKEN_EXPIRES_AT='{}.25'\n\
             OAUTH_REFRESH_TOKEN='{}'\nOAUTH_USERNAME='demo'\n",
            sim.base_url(),
            tokens.access_token.expose(),
            tokens.expires_at.unwrap(),
            tokens.refresh_token.as_ref().unwrap().expose()
        ),
    )
    .unwrap();
    let app = root.join("connections").join("app_9f8e7d6c");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join(".env"),
        format!(
            "PORTAL_URL='{}'\nOAUTH_CLIENT_ID='{APP}'\nOAUTH_CLIENT_SECRET='{APP_SECRET}'\nOAUTH_AUTH_TYPE='app'\n",
            sim.base_url()
        ),
    )
    .unwrap();

    let home = Home::new();
    let out = home.run(&["migrate", "python-age-oauth", "--from", root.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("still hold client secrets") && err.contains("--shred"), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["profile"], "GIS-Prod");
    assert_eq!(report[0]["provider"], "esri-oob");
    assert_eq!(report[1]["provider"], "esri-app");
    // the migrated token is served from the encrypted cache, and its refresh token works
    let out = home.run(&["token", "--profile", "GIS-Prod"]);
    assert_eq!(text(&out.stdout).trim(), tokens.access_token.expose());
    let out = home.run(&["token", "--profile", "GIS-Prod", "--min-ttl", "99999"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(code(&home.run(&["token", "--profile", "app"])), 0);
    let config = std::fs::read_to_string(home.state().join("config.toml")).unwrap();
    assert!(!config.contains(APP_SECRET));
    for (path, bytes) in home.all_files() {
        assert!(!contains(&bytes, APP_SECRET), "{}", path.display());
    }
    // Migrating again into the same home would overwrite: refused, nothing written, nothing shredded.
    let config_before = std::fs::read_to_string(home.state().join("config.toml")).unwrap();
    let out = home.run(&["migrate", "python-age-oauth", "--from", root.to_str().unwrap(), "--shred"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already exists"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(home.state().join("config.toml")).unwrap(), config_before);
    assert!(conn.join(".env").exists(), "nothing shredded after a refusal");
    // A .env line with an unbalanced quote is read as the Python age-oauth reads it (quotes kept);
    // the connection then lacks its client id: refused, the secret never shown.
    let broken = python.path().join("broken");
    std::fs::create_dir_all(broken.join("connections").join("c1")).unwrap();
    std::fs::copy(root.join("connections.json"), broken.join("connections.json")).unwrap();
    let secret_line = format!("OAUTH_CLIENT_SECRET='{APP_SECRET}\nOAUTH_ACCESS_TOKEN='x'\n");
    for id in ["gis_prod_1a2b3c4d", "app_9f8e7d6c"] {
        std::fs::create_dir_all(broken.join("connections").join(id)).unwrap();
        std::fs::write(broken.join("connections").join(id).join(".env"), &secret_line).unwrap();
    }
    let out = Home::new().run(&["migrate", "python-age-oauth", "--from", broken.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no OAUTH_CLIENT_ID"), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains(APP_SECRET));
    // --shred removes the old plaintext files
    let again = Home::new();
    let out = again.run(&["migrate", "python-age-oauth", "--from", root.to_str().unwrap(), "--shred"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!conn.join(".env").exists() && !app.join(".env").exists());
}
