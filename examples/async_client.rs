//! `age_oauth::AsyncClient` (cargo feature `reqwest`) under tokio, calling a protected endpoint of the
//! sandbox: as `examples/client.rs`, a key is stored for a `static` api-key profile in a throw-away
//! home, and the async client sends it to `/api/account`. Run: `cargo run --example async_client`
//! (the examples see the feature through the dev-dependency; a program of yours enables `reqwest`).

#![allow(clippy::print_stdout)] // a command-line program

use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
use age_oauth::{AsyncClient, Client, Config, Engine, Paths, Secret, Terminal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let service = AnacondaSim::start(AnacondaSimConfig::default())?;
    let home = tempfile::tempdir()?;
    let paths = Paths::under(home.path().to_path_buf());
    let profile = format!(
        "[profiles.conda]\nprovider = \"api-key\"\napi_url = \"{}\"\nkey_source = \"static\"\n",
        service.site()
    );
    let config =
        Config::from_parts(vec![(paths.config_file.clone(), profile)], Default::default(), Default::default())?;
    let engine = Engine::new(paths);
    let mut session = engine.session(config.resolve("conda", &[])?)?;
    // What `age-oauth login --profile conda --with-key` does with the key it reads from stdin.
    let key = Secret::new(service.issue_key(3600));
    session.profile.secret_overrides.set("api_key", key, age_oauth::providers::SecretOrigin::Prompt);
    engine.login(&mut session, &mut Terminal::new(0, &age_oauth::Env::default()), true, true)?;

    let client = AsyncClient::new(Client::new(engine, session))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let response = runtime.block_on(client.get(&service.account_url()))?;
    println!("HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
    Ok(())
}
