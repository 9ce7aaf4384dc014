//! The Python age-oauth's command line (`connections ...`, `--connection`, `--connection-id`,
//! `token --rotate-refresh-token`, whoami's app block) and the interactive set-up, driven through
//! a real pseudo-terminal (rexpect) and, for scripts, without one.
#![cfg(unix)]

use crate::common::*;
use rexpect::session::PtySession;
use std::process::Command;

const TIMEOUT_MS: u64 = 20_000;

/// Runs the binary on a fresh pseudo-terminal, with echo on as in a person's terminal
/// (rexpect turns it off), so typed answers show and hidden ones must not.
fn pty(home: &Home, args: &[&str]) -> PtySession {
    let mut inner = home.cmd();
    inner.args(args);
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("stty echo; exec \"$0\" \"$@\"").arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(home.path().join("work"));
    rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).expect("spawn on a pty")
}

/// Waits for the end of the output and the exit code.
fn finish(mut p: PtySession) -> (String, i32) {
    let rest = p.exp_eof().expect("runs to the end");
    let code = match p.process().wait().expect("exit status") {
        rexpect::process::WaitStatus::Exited(_, c) => c,
        other => panic!("not a normal exit: {other:?}"),
    };
    (rest, code)
}

fn config_text(home: &Home) -> String {
    std::fs::read_to_string(home.state().join("config.toml")).unwrap_or_default()
}

fn add(home: &Home, args: &[&str]) {
    let out = home.run(args);
    assert_eq!(code(&out), 0, "{args:?}: {}", text(&out.stderr));
}

fn add_oob(home: &Home, sim: &age_oauth::sandbox::PortalSim, name: &str) {
    add(home, &["profile", "add", name, "--provider", "esri-oob", "--portal", &sim.base_url(), "--client-id", APP]);
}

#[test]
fn connections_add_with_no_flags_asks_in_the_old_order_end_to_end() {
    let sim = start_sim();
    let home = Home::new();
    let mut p = pty(&home, &["connections", "add"]);
    p.exp_string("Connection label [Prod]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Portal URL: ").unwrap();
    p.send_line(&sim.base_url()).unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("OAuth Client ID: ").unwrap();
    p.send_line(APP).unwrap();
    p.exp_string("OAuth Client Secret (optional, Enter to skip): ").unwrap();
    p.send_line(APP_SECRET).unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    assert!(rest.contains("Default profile is now 'Prod'"), "{rest}");
    assert!(!rest.contains(APP_SECRET), "the secret was echoed: {rest}");
    let config = config_text(&home);
    assert!(config.contains("default_profile = \"Prod\""), "{config}");
    assert!(config.contains(&format!("portal = \"{}\"", sim.base_url())), "{config}");
    assert!(config.contains(&format!("client_id = \"{APP}\"")), "{config}");
    assert!(!config.contains(APP_SECRET));
    assert_eq!(home.load_cache("Prod").secrets["client_secret"].expose(), APP_SECRET);
    // The default profile is the new one.
    let out = home.run(&["connections", "show", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"name\": \"Prod\""));
}

#[test]
fn wrong_answers_are_asked_again_with_the_reason() {
    let sim = start_sim();
    let home = Home::new();
    let mut p = pty(&home, &["connections", "add", "--label", "Prod"]);
    p.exp_string("Portal URL: ").unwrap();
    p.send_line("gis.example.com/portal").unwrap();
    p.exp_string("is not a URL").unwrap();
    p.exp_string("Portal URL: ").unwrap();
    p.send_line("http://gis.example.com/portal").unwrap();
    p.exp_string("in clear").unwrap();
    p.exp_string("Portal URL: ").unwrap();
    p.send_line(&format!("{}/", sim.base_url())).unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("/nonexistent/ca.pem").unwrap();
    p.exp_string("does not exist").unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("false").unwrap();
    p.exp_string("OAuth Client ID: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("OAuth Client ID is required").unwrap();
    p.exp_string("OAuth Client ID: ").unwrap();
    p.send_line(APP).unwrap();
    p.exp_string("OAuth Client Secret (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    let config = config_text(&home);
    assert!(config.contains(&format!("portal = \"{}\"", sim.base_url())), "trailing slash trimmed: {config}");
    assert!(config.contains("verify_ssl = false"), "{config}");
    assert!(!home.cache_file("Prod").exists(), "no secret given, no cache");
}

#[test]
fn ctrl_c_in_the_set_up_writes_nothing() {
    let sim = start_sim();
    let home = Home::new();
    let mut p = pty(&home, &["connections", "add"]);
    p.exp_string("Connection label [Prod]: ").unwrap();
    p.send_line("Prod").unwrap();
    p.exp_string("Portal URL: ").unwrap();
    p.send_line(&sim.base_url()).unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("OAuth Client ID: ").unwrap();
    p.send_line(APP).unwrap();
    p.exp_string("OAuth Client Secret").unwrap();
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    let files: Vec<_> = home.all_files().into_iter().map(|(p, _)| p).collect();
    assert!(files.is_empty(), "Ctrl-C left files behind: {files:?}");
}

#[test]
fn ctrl_c_at_the_hidden_prompt_gives_the_terminal_its_echo_back() {
    let sim = start_sim();
    let home = Home::new();
    // The same terminal, after the program: what `stty -a` says there is what the person gets.
    let mut inner = home.cmd();
    #[rustfmt::skip]
    inner.args(["connections", "add", "--label", "Prod", "--auth-type", "app", "--portal", &sim.base_url(),
        "--verify-ssl", "true", "--client-id", APP]);
    let mut cmd = Command::new("sh");
    let script = "stty echo icanon; \"$0\" \"$@\"; echo \"exit=$?\"; stty -a";
    cmd.arg("-c").arg(script).arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.current_dir(home.path().join("work"));
    // A test run started in the background (`cmd &`, nohup) inherits SIGINT ignored, and a shell may
    // not undo that; a person's terminal never has it so. Give the child the default disposition.
    // SAFETY: `signal` is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut p = rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).expect("spawn on a pty");
    p.exp_string("Client Secret").unwrap();
    // Let the prompt switch the terminal to no-echo before the key arrives.
    std::thread::sleep(std::time::Duration::from_millis(500));
    p.send_control('c').unwrap();
    p.exp_string("exit=").unwrap();
    let after = p.exp_eof().unwrap();
    assert!(after.starts_with("130"), "ended as by Ctrl-C: {after}");
    let flags: Vec<&str> = after.split_whitespace().collect();
    assert!(flags.contains(&"echo") && !flags.contains(&"-echo"), "echo is off after Ctrl-C: {after}");
    assert!(flags.contains(&"icanon") && flags.contains(&"isig"), "line mode is off after Ctrl-C: {after}");
    assert!(home.all_files().is_empty(), "Ctrl-C wrote nothing");
}

#[test]
fn without_a_terminal_nothing_is_asked_and_the_missing_fields_are_listed() {
    let home = Home::new();
    let out = home.run(&["connections", "add"]);
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    assert!(err.contains("--label LABEL --portal VALUE --client-id VALUE"), "{err}");
    assert!(!err.contains("Portal URL:") && text(&out.stdout).is_empty(), "{err}");
    let out = home.run(&["profile", "add", "x", "--provider", "esri-app", "--client-id", APP]);
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    assert!(err.contains("--portal VALUE --client-secret VALUE") && err.contains("no terminal"), "{err}");
    let out = home.run(&["profile", "add"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("needs: NAME"));
    assert!(home.all_files().is_empty(), "nothing written");
}

#[test]
fn profile_add_at_a_terminal_asks_name_provider_and_that_providers_fields() {
    let home = Home::new();
    let mut p = pty(&home, &["profile", "add"]);
    p.exp_string("Profile name: ").unwrap();
    p.send_line("bad name").unwrap();
    p.exp_string("invalid profile name").unwrap();
    p.send_line("corp").unwrap();
    p.exp_string("Provider [esri-oob]: ").unwrap();
    p.send_line("oidc").unwrap();
    p.exp_string("Issuer URL (optional, Enter to skip): ").unwrap();
    p.send_line("https://login.example.com").unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Client ID: ").unwrap();
    p.send_line("cli").unwrap();
    p.exp_string("Client secret (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Scopes [").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Sign-in flow (browser, device) [browser]: ").unwrap();
    p.send_line("sideways").unwrap();
    p.exp_string("not one of: browser, device").unwrap();
    p.send_line("device").unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    let config = config_text(&home);
    assert!(config.contains("[profiles.corp]") && config.contains("provider = \"oidc\""), "{config}");
    assert!(config.contains("flow = \"device\"") && config.contains("issuer = \"https://login.example.com\""));
    assert!(!config.contains("scopes"), "a default kept with Enter is not written: {config}");
}

#[test]
fn a_profile_that_fails_as_a_whole_is_asked_again_keeping_answers() {
    // esri-token needs a portal or a server: skipping both is caught before anything is written.
    let home = Home::new();
    let mut p = pty(&home, &["profile", "add", "site", "--provider", "esri-token"]);
    p.exp_string("Portal URL (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("ArcGIS Server URL (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Username: ").unwrap();
    p.send_line("gisadmin").unwrap();
    p.exp_string("Referer (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Please check the answers").unwrap();
    p.exp_string("Portal URL (optional, Enter to skip): ").unwrap();
    p.send_line("https://gis.example.com/portal").unwrap();
    p.exp_string("ArcGIS Server URL (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Verify SSL [true]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Username [gisadmin]: ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("Referer (optional, Enter to skip): ").unwrap();
    p.send_line("").unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    let config = config_text(&home);
    assert!(
        config.contains("username = \"gisadmin\"") && config.contains("portal = \"https://gis.example.com/portal\"")
    );
}

#[test]
fn connections_add_flags_of_the_old_tool() {
    let sim = start_sim();
    let home = Home::new();
    let ca = home.path().join("ca.pem");
    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n").unwrap();
    #[rustfmt::skip]
    add(&home, &["connections", "add", "--label", "Prod GIS", "--portal", &sim.base_url(), "--verify-ssl", "false",
        "--client-id", APP, "--client-secret", APP_SECRET, "--auth-type", "user", "--referer", "https://apps.example.com"]);
    let config = config_text(&home);
    assert!(config.contains("[profiles.Prod-GIS]") && config.contains("provider = \"esri-oob\""), "{config}");
    assert!(config.contains("verify_ssl = false") && config.contains("referer = \"https://apps.example.com\""));
    assert!(config.contains("default_profile = \"Prod-GIS\""));
    // --client-secret is cached, encrypted, for the profile; never written to the TOML.
    assert_eq!(home.load_cache("Prod-GIS").secrets["client_secret"].expose(), APP_SECRET);
    assert!(!config.contains(APP_SECRET), "{config}");
    // --auth-type app, and --no-default keeps the default where it was.
    #[rustfmt::skip]
    add(&home, &["connections", "add", "--label", "robot", "--auth-type", "app", "--portal", &sim.base_url(),
        "--client-id", APP, "--client-secret", APP_SECRET, "--no-default"]);
    let config = config_text(&home);
    assert!(config.contains("[profiles.robot]") && config.contains("provider = \"esri-app\""), "{config}");
    assert!(config.contains("default_profile = \"Prod-GIS\""));
    #[rustfmt::skip]
    add(&home, &["connections", "add", "--label", "robot2", "--auth-type", "app", "--portal", &sim.base_url(),
        "--client-id", APP, "--client-secret", APP_SECRET, "--no-active", "--verify-ssl", ca.to_str().unwrap()]);
    let config = config_text(&home);
    assert!(config.contains("default_profile = \"Prod-GIS\""));
    // --verify-ssl PATH: the CA file is stored as the profile's trust.
    let out = home.run(&["profile", "show", "robot2", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["fields"]["verify_ssl"]["value"], ca.to_str().unwrap(), "{shown}");
    assert!(config.contains(&format!("verify_ssl = \"{}\"", ca.display())), "{config}");
    assert_eq!(home.load_cache("robot2").secrets["client_secret"].expose(), APP_SECRET);
    let out = home.run(&["connections", "add", "--label", "x", "--auth-type", "app", "--provider", "esri-oob"]);
    assert_eq!(code(&out), 2, "--auth-type and --provider disagree");

    // list: name (marks)  -  provider  -  URL  -  state
    let out = home.cmd().env("AGE_OAUTH_PROFILE", "robot").args(["connections", "list"]).output().unwrap();
    let listing = text(&out.stdout);
    let url = sim.base_url();
    assert!(listing.contains(&format!("Prod-GIS (default)  -  esri-oob  -  {url}  -  not logged in")), "{listing}");
    assert!(listing.contains(&format!("robot (active)  -  esri-app  -  {url}")), "{listing}");
    let out = home.run(&["connections", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[0]["default"], true);

    // use / show / info
    add(&home, &["connections", "use", "ROBOT"]);
    assert!(config_text(&home).contains("default_profile = \"robot\""));
    let out = home.run(&["connections", "show"]);
    assert!(text(&out.stdout).starts_with("profile robot"), "{}", text(&out.stdout));
    let out = home.run(&["connections", "show", "prod"]);
    assert!(text(&out.stdout).starts_with("profile Prod-GIS"), "{}", text(&out.stdout));
    let out = home.cmd().env("AGE_OAUTH_PROFILE", "robot2").args(["connections", "info"]).output().unwrap();
    let info = text(&out.stdout);
    assert!(info.contains("Active:      robot2  (AGE_OAUTH_PROFILE)") && info.contains("Default:     robot"), "{info}");
    assert!(info.contains(&format!("Config file: {}", home.state().join("config.toml").display())), "{info}");

    // remove without a terminal: the command line is the confirmation; the default goes with it.
    add(&home, &["connections", "remove", "robot"]);
    let config = config_text(&home);
    assert!(!config.contains("[profiles.robot]") && !config.contains("default_profile"), "{config}");
    assert!(!home.cache_file("robot").exists());
    let out = home.run(&["connections", "remove"]);
    assert_eq!(code(&out), 2, "a selector or --all is required");
}

#[test]
fn client_secret_help_names_the_variable_that_keeps_it_out_of_the_process_list() {
    let home = Home::new();
    for cmd in [["connections", "add", "--help"], ["profile", "add", "--help"]] {
        let out = home.run(&cmd);
        assert_eq!(code(&out), 0);
        let help = text(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
        let flag = help.split("--client-secret <CLIENT_SECRET>").nth(1).unwrap_or_else(|| panic!("{help}"));
        let (about, _) = flag.split_once(" --").unwrap_or((flag, ""));
        assert!(about.contains("process list") && about.contains("AGE_OAUTH_CLIENT_SECRET"), "{cmd:?}: {about}");
        assert!(about.contains("not stored"), "says what the variable does not do: {about}");
    }
}

#[test]
fn selectors_follow_the_old_rules() {
    let sim = start_sim();
    let home = Home::new();
    for name in ["Prod", "prod", "stage", "stage-eu", "staging", "test"] {
        add_oob(&home, &sim, name);
    }
    let show = |args: &[&str]| {
        let out = home.cmd().args(["connections", "show"]).args(args).output().unwrap();
        (code(&out), text(&out.stdout).lines().next().unwrap_or_default().to_string(), text(&out.stderr))
    };
    // The exact name first: before the name in any case (`prod` would be two) and before a
    // prefix (`stage` begins `stage-eu` too).
    assert_eq!(show(&["Prod"]).1, "profile Prod", "exact name");
    assert_eq!(show(&["prod"]).1, "profile prod", "exact name, not Prod");
    assert_eq!(show(&["stage"]).1, "profile stage", "exact name, not a prefix");
    let (code_, _, err) = show(&["PROD"]);
    assert_eq!(code_, 2, "two names in any case, as the old tool's two labels");
    assert!(err.contains("'PROD' names several profiles (Prod, prod)"), "{err}");
    // The name in any case before a prefix: STAGE begins stage-eu's id too.
    assert_eq!(show(&["STAGE"]).1, "profile stage", "name in any case before a prefix");
    assert_eq!(show(&["TEST"]).1, "profile test", "name in any case");
    // A unique prefix of the old connection id (`stage_eu_1a2b3c4d`), in any case, or of the name.
    assert_eq!(show(&["stagi"]).1, "profile staging", "unique prefix");
    assert_eq!(show(&["STAGE_EU"]).1, "profile stage-eu", "prefix of the connection id");
    assert_eq!(show(&["stage-"]).1, "profile stage-eu", "prefix of the name");
    let (code_, _, err) = show(&["stag"]);
    assert_eq!(code_, 2);
    assert!(err.contains("several profiles (stage, stage-eu, staging)"), "{err}");
    let (code_, _, err) = show(&["nope"]);
    assert_eq!(code_, 2);
    assert!(err.contains("no profile matches 'nope'; profiles: Prod, prod, stage, stage-eu, staging, test"), "{err}");
    // --connection / --connection-id on the commands that took them; --connection-id takes no prefix.
    let out = home.run(&["whoami", "--connection-id", "tes"]);
    assert_eq!(code(&out), 2, "no prefixes for --connection-id");
    let out = home.run(&["whoami", "--connection-id", "stage"]);
    assert_eq!(code(&out), 3, "found stage, which is not logged in: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--profile stage`"), "{}", text(&out.stderr));
    let out = home.run(&["login", "--connection", "stagi", "--no-browser"]);
    let err = text(&out.stderr);
    assert!(err.contains("Sign in at this URL") && err.contains(&sim.base_url()), "login went on: {err}");
    assert!(err.contains("age-oauth login --profile staging`"), "login picked staging: {err}");
    // No selector: the active (AGE_OAUTH_PROFILE), then the default, then the only one.
    assert_eq!(code(&home.run(&["connections", "show"])), 2, "six profiles, none chosen");
    add(&home, &["profile", "use", "test"]);
    assert_eq!(show(&[]).1, "profile test", "the default");
    let out = home.cmd().env("AGE_OAUTH_PROFILE", "staging").args(["connections", "show"]).output().unwrap();
    assert!(text(&out.stdout).starts_with("profile staging"), "the active one wins");
    let only = Home::new();
    add_oob(&only, &sim, "solo");
    let out = only.run(&["connections", "show"]);
    assert!(text(&out.stdout).starts_with("profile solo"), "the only one");
}

/// The real Python age-oauth 0.2.1, installed by tests/setup/python-age-oauth.sh.
fn python_age_oauth(xdg: &std::path::Path, args: &[&str]) {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/python-age-oauth/.venv/bin/python");
    assert!(python.exists(), "the Python age-oauth is not installed: run `bash tests/setup/python-age-oauth.sh`");
    let out = Command::new(python)
        .args(["-c", "import sys; from age_oauth.cli import main; sys.exit(main(sys.argv[1:]))"])
        .args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .env("HOME", xdg)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "python age-oauth {args:?}: {}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn connection_ids_of_a_real_python_store_still_select_after_migrate() {
    let sim = start_sim();
    let xdg = tempfile::tempdir().unwrap();
    let url = sim.base_url();
    for (label, auth) in [("Prod GIS", "user"), ("Robot", "app")] {
        #[rustfmt::skip]
        python_age_oauth(xdg.path(), &["connections", "add", "--label", label, "--portal", &format!("{url}/"),
            "--client-id", APP, "--client-secret", APP_SECRET, "--verify-ssl", "true", "--auth-type", auth]);
    }
    let store = xdg.path().join("age_oauth");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.join("connections.json")).unwrap()).unwrap();
    let id_of = |label: &str| -> String {
        let found = index["connections"].as_array().unwrap().iter().find(|c| c["label"] == label);
        found.unwrap_or_else(|| panic!("{label} in {index}"))["id"].as_str().unwrap().to_string()
    };
    let (prod_id, robot_id) = (id_of("Prod GIS"), id_of("Robot"));
    let home = Home::new();
    add(&home, &["migrate", "python-age-oauth", "--from", store.to_str().unwrap()]);

    // --connection-id as the old scripts pass it: exactly, no prefix.
    let out = home.run(&["whoami", "--connection-id", &robot_id]);
    assert_eq!((code(&out), text(&out.stdout)), (0, format!("{APP}\n")), "{}", text(&out.stderr));
    let out = home.run(&["whoami", "--connection-id", &prod_id]);
    assert_eq!(code(&out), 3, "found Prod-GIS, not logged in: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--profile Prod-GIS`"), "{}", text(&out.stderr));
    let out = home.run(&["whoami", "--connection-id", &prod_id[..prod_id.len() - 1]]);
    assert_eq!(code(&out), 2, "a prefix is not an id: {}", text(&out.stderr));
    let out = home.run(&["whoami", "--connection-id", &prod_id.to_uppercase()]);
    assert_eq!(code(&out), 2, "ids are taken as they are: {}", text(&out.stderr));
    // --connection: the id, or a unique prefix of it in any case (`prod_g`, not the label `Prod G`).
    for selector in [prod_id.as_str(), "prod_g", "PROD_GIS_"] {
        let out = home.run(&["connections", "show", selector]);
        assert!(text(&out.stdout).starts_with("profile Prod-GIS"), "{selector}: {}", text(&out.stderr));
    }
    let out = home.run(&["token", "--connection", &robot_id[..3]]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
}

#[test]
fn profile_use_sets_the_default_profile() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "a", &sim.base_url(), APP, APP_SECRET);
    add_app_profile(&home, "b", &sim.base_url(), APP, APP_SECRET);
    assert_eq!(code(&home.run(&["token"])), 2, "two profiles, no default");
    let out = home.run(&["profile", "use", "b"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stderr).contains("Default profile is now 'b'"));
    let out = home.run(&["token", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profile"], "b");
    let out = home.cmd().env("AGE_OAUTH_PROFILE", "a").args(["profile", "use", "b"]).output().unwrap();
    assert!(text(&out.stderr).contains("AGE_OAUTH_PROFILE=a still picks 'a'"), "{}", text(&out.stderr));
    assert_eq!(code(&home.run(&["profile", "use", "zzz"])), 2);
}

#[test]
fn removing_asks_at_a_terminal_unless_yes() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "keep", &sim.base_url(), APP, APP_SECRET);
    let mut p = pty(&home, &["connections", "remove", "keep"]);
    p.exp_string("You are about to delete").unwrap();
    p.exp_string("Are you sure you want to delete this profile? [y/N]: ").unwrap();
    p.send_line("n").unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 1, "{rest}");
    assert!(config_text(&home).contains("[profiles.keep]") && home.cache_file("keep").exists());
    let mut p = pty(&home, &["profile", "remove", "keep"]);
    p.exp_string("[y/N]: ").unwrap();
    p.send_line("y").unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    assert!(!config_text(&home).contains("[profiles.keep]") && !home.cache_file("keep").exists());
    // --yes: no question, even at a terminal.
    add_app_profile(&home, "gone", &sim.base_url(), APP, APP_SECRET);
    let p = pty(&home, &["connections", "remove", "gone", "--yes"]);
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    assert!(!rest.contains("[y/N]") && !config_text(&home).contains("[profiles.gone]"));
}

#[test]
fn remove_all_asks_for_the_word_delete() {
    let sim = start_sim();
    let home = Home::new();
    for name in ["one", "two"] {
        add_app_profile(&home, name, &sim.base_url(), APP, APP_SECRET);
    }
    add(&home, &["profile", "use", "one"]);
    let out = home.run(&["connections", "remove", "--all"]);
    assert_eq!(code(&out), 2, "no terminal, no --yes: refused");
    assert!(text(&out.stderr).contains("--yes"));
    let mut p = pty(&home, &["connections", "remove", "--all"]);
    p.exp_string("Type DELETE to confirm: ").unwrap();
    p.send_line("delete").unwrap();
    let (_, code_) = finish(p);
    assert_eq!(code_, 1, "only the word DELETE confirms");
    assert!(home.cache_file("one").exists() && home.cache_file("two").exists());
    let mut p = pty(&home, &["connections", "remove", "--all"]);
    p.exp_string("Type DELETE to confirm: ").unwrap();
    p.send_line("DELETE").unwrap();
    let (rest, code_) = finish(p);
    assert_eq!(code_, 0, "{rest}");
    assert!(rest.contains("Removed 2 profile(s) and 2 encrypted cache(s)"), "{rest}");
    let config = config_text(&home);
    assert!(!config.contains("profiles.") && !config.contains("default_profile"), "{config}");
    assert!(!home.cache_file("one").exists() && !home.cache_file("two").exists());
    add_app_profile(&home, "three", &sim.base_url(), APP, APP_SECRET);
    add(&home, &["connections", "remove", "--all", "--yes"]);
    assert!(!home.cache_file("three").exists());
}

#[test]
fn whoami_prints_the_username_or_the_old_app_block() {
    let sim = start_sim();
    let home = Home::new();
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    // In a pipe: the app ID alone, for APP=$(age-oauth whoami).
    let out = home.run(&["whoami", "--profile", "app"]);
    assert_eq!(text(&out.stdout), format!("{APP}\n"), "{}", text(&out.stderr));
    // A person at a terminal: the Python age-oauth's block, from portals/self's appInfo.
    let (rest, code_) = finish(pty(&home, &["whoami", "--profile", "app"]));
    assert_eq!(code_, 0, "{rest}");
    let item: String = {
        use sha2::Digest;
        sha2::Sha256::digest(APP.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
    };
    let block = format!(
        "Type:        application\r\nApplication: Sandbox App\r\nApp ID:      {APP}\r\nItem ID:     {item}\r\nOwner:       demo"
    );
    assert!(rest.contains(&block), "{rest}");
    let out = home.run(&["whoami", "--profile", "app", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["details"]["app_title"], "Sandbox App");
    assert_eq!(v["details"]["app_item_id"], item.as_str());
    assert_eq!(v["details"]["app_owner"], "demo");
    assert_eq!(v["details"]["auth_type"], "app");
    assert_eq!(v["username"], APP);
    assert!(sim.count("portals/self") >= 3);
    // A user token: the username alone, on a terminal too.
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let (rest, code_) = finish(pty(&home, &["whoami", "--profile", "prod"]));
    assert_eq!((rest.trim(), code_), ("demo", 0));
}

#[test]
fn token_rotate_refresh_token_exchanges_it_now() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    let out = home.run(&["token", "--profile", "prod", "--rotate-refresh-token"]);
    assert_eq!(code(&out), 3, "not logged in yet: {}", text(&out.stderr));
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let before = home.load_cache("prod").tokens.unwrap();
    // The old tool's selector flag on `token`: --portal LABEL-OR-PREFIX.
    let out = home.run(&["token", "--portal", "pro", "--rotate-refresh-token"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("Profile:     prod") && report.contains("User:        demo"), "{report}");
    assert!(report.contains("[OK] Refresh token rotated successfully"), "{report}");
    assert!(!report.contains(before.refresh_token.as_ref().unwrap().expose()));
    assert_eq!(sim.count("token:exchange_refresh_token"), 1);
    let after = home.load_cache("prod").tokens.unwrap();
    assert_ne!(after.refresh_token, before.refresh_token, "a new refresh token is cached");
    assert_ne!(after.access_token, before.access_token);
    // The new one works for a later refresh.
    let out = home.run(&["token", "--profile", "prod", "--min-ttl", "999999999"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(sim.count("token:refresh_token"), 1);
    let out = home.run(&["token", "--profile", "prod", "--rotate-refresh-token", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["rotated"].as_bool(), v["profile"].as_str()), (Some(true), Some("prod")));
    assert_eq!(sim.count("token:exchange_refresh_token"), 2);
    // Application credentials have no refresh token to rotate.
    add_app_profile(&home, "app", &sim.base_url(), APP, APP_SECRET);
    assert_eq!(code(&home.run(&["login", "--profile", "app"])), 0);
    let out = home.run(&["token", "--profile", "app", "--rotate-refresh-token"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no refresh token to rotate"));
}
