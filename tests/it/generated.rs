//! Generated references stay in step with the code: the profile JSON Schema and the
//! environment-variable table. `UPDATE_GENERATED=1 cargo test --test it generated::` rewrites them.

use std::path::Path;

fn check(relative: &str, fresh: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "{relative} is stale: regenerate it with `UPDATE_GENERATED=1 cargo test --test it generated::` and commit it"
    );
}

#[test]
fn profile_schema_is_fresh() {
    let schema = age_oauth::profile_file_schema();
    check("schemas/profile.schema.json", &(serde_json::to_string_pretty(&schema).unwrap() + "\n"));
}

#[test]
fn environment_table_is_fresh() {
    check("docs/environment.md", &age_oauth::environment_markdown());
}

#[test]
fn schema_covers_every_provider_and_its_fields() {
    let schema = age_oauth::profile_file_schema();
    for provider in age_oauth::providers::all() {
        let def = &schema["$defs"][provider.name];
        assert_eq!(def["properties"]["provider"]["const"], provider.name);
        assert_eq!(def["additionalProperties"], false);
        for field in provider.fields().iter().filter(|f| !f.secret) {
            assert!(def["properties"].get(&field.name).is_some(), "{} lacks {}", provider.name, field.name);
        }
        for secret in provider.secrets {
            assert!(def["properties"].get(secret.name).is_none(), "secrets are not profile-file fields");
        }
        assert!(def["properties"].get("refresh_margin").is_some());
    }
}

#[test]
fn ci_runs_the_test_command_written_in_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let block = readme.split("```sh\n").nth(1).expect("README opens with a sh block").split("```").next().unwrap();
    let commands: Vec<&str> =
        block.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    assert_eq!(commands, ["cargo run --release -- demo", "bash tests/run-all.sh"], "README's first two commands");
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == commands[1]), ".ci/run must run `{}`", commands[1]);
}

#[test]
fn man_page_is_fresh() {
    let mut out = Vec::new();
    age_oauth::cli::render_man(&mut out).unwrap();
    check("docs/age-oauth.1", &String::from_utf8(out).unwrap());
}
