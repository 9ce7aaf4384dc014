//! The engine's shape and reliability, through the binary with real processes: one cache
//! writer, transient refresh failures, bounded lock waits, renamed caches, profile add/remove
//! atomicity, temp files left by killed writers, absurd numbers and a refusing token endpoint.

use crate::common::*;
use age_oauth::Paths;
use age_oauth::Secret;
use age_oauth::TokenSet;
use age_oauth::{CacheEntry, CacheStore};
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Files under `dir` (recursively) with their paths relative to `root`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its `#[cfg(test)] mod tests` (unit tests may set up caches).
fn non_test_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[test]
fn the_cache_is_written_only_by_the_store_and_the_engines_update() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("providers"), &mut files);
    let allowed = [root.join("src/store/mod.rs"), root.join("src/engine/update.rs")];
    let mut writers = Vec::new();
    let mut binders = Vec::new();
    for file in &files {
        let code = non_test_code(file);
        for (n, line) in code.lines().enumerate() {
            let writes = [".save(", ".save_to(", "store.remove(", ".remove(&lock"].iter().any(|w| line.contains(w));
            if writes && !allowed.contains(file) {
                writers.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
            if line.contains(".service = ") || line.contains(".binding = ") {
                binders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(writers.is_empty(), "the cache is written outside the store and Engine::update:\n{}", writers.join("\n"));
    // Inside the engine, only `update` saves.
    let engine = non_test_code(&root.join("src/engine/update.rs"));
    let update = engine.find("pub fn update<T>").expect("Engine::update exists");
    let update_end = update + engine[update..].find("\n    }\n").unwrap();
    for (i, _) in engine.match_indices("self.store.save") {
        assert!(i > update && i < update_end, "a save outside Engine::update at byte {i}");
    }
    // The binding is written in one function (`binding::record`, which `engine::bind` reaches).
    assert_eq!(binders.len(), 2, "the binding is set in one place (binding::record): {binders:#?}");
    assert!(binders.iter().all(|b| b.contains("src/binding.rs")), "{binders:?}");
    let binding = non_test_code(&root.join("src/binding.rs"));
    let record = binding.find("pub fn record(").expect("binding::record exists");
    let record_end = record + binding[record..].find("\n}\n").unwrap();
    for (i, _) in binding.match_indices(".binding = ").chain(binding.match_indices(".service = ")) {
        assert!(i > record && i < record_end, "the binding written outside binding::record at byte {i}");
    }
    assert!(engine.contains("crate::binding::bind(entry, session)"), "engine::bind records through the binding module");
}

/// The environment is read once, by the CLI, and handed down: no library or provider code reads
/// the process environment or the process snapshot itself (tests inject theirs through `Paths`).
#[test]
fn the_environment_is_read_once_by_the_cli_and_handed_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("providers"), &mut files);
    let mut readers = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        for (n, line) in non_test_code(file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let reads_process =
                ["std::env::var", "env::vars", "env::var_os", "std::env::set_var"].iter().any(|r| code.contains(r));
            let reads_snapshot = code.contains("env::process()");
            let allowed = match relative.as_str() {
                "src/env.rs" => true,               // where the snapshot is taken
                "src/cli/mod.rs" => !reads_process, // takes the snapshot at start (and for the last error's colour)
                _ => false,
            };
            if (reads_process || reads_snapshot) && !allowed {
                readers.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(readers.is_empty(), "the environment read outside the CLI's one snapshot:\n{}", readers.join("\n"));
    let cli = non_test_code(&root.join("src/cli/mod.rs"));
    assert!(cli.contains("Paths::from_env(env)"), "the CLI hands its snapshot to Paths");
}

/// `token` 20 s before the 30-minute token expires: inside the 60 s refresh margin, so the
/// engine refreshes, and the cached token is still valid.
fn token_needing_refresh(home: &Home, profile: &str) -> Output {
    home.cmd().env("AGE_OAUTH_CLOCK_OFFSET", "1780").args(["token", "--profile", profile]).output().unwrap()
}

/// `token --min-ttl 3600` on a 30-minute token: the caller needs a longer one than is cached.
fn token_needing_an_hour(home: &Home, profile: &str) -> Output {
    home.run(&["token", "--profile", profile, "--min-ttl", "3600"])
}

#[test]
fn a_transient_refresh_failure_prints_the_still_valid_token_with_a_warning() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    let cached = home.load_cache("p").tokens.unwrap();

    for status in [503, 502, 500] {
        sim.set_token_outage(Some(status));
        let out = token_needing_refresh(&home, "p");
        let err = text(&out.stderr);
        assert_eq!(code(&out), 0, "HTTP {status}: {err}");
        assert_eq!(text(&out.stdout).trim(), cached.access_token.expose(), "the still-valid token");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("warning: ") && err.contains(&format!("HTTP {status}")), "{err}");
    }
    assert_eq!(sim.count("token:outage"), 3);
    assert_eq!(home.load_cache("p").tokens.unwrap(), cached, "nothing was written");

    // An expired token is not handed out, outage or not.
    let expired = home.cmd().env("AGE_OAUTH_CLOCK_OFFSET", "1900").args(["token", "--profile", "p"]).output().unwrap();
    assert_eq!(code(&expired), 4, "{}", text(&expired.stderr));
    assert!(expired.stdout.is_empty());

    // A caller who asked for an hour does not get the cached half hour.
    let longer = token_needing_an_hour(&home, "p");
    assert_eq!(code(&longer), 4, "{}", text(&longer.stderr));
    assert!(longer.stdout.is_empty());

    // The server back: the refresh happens.
    sim.set_token_outage(None);
    let fresh = token_needing_an_hour(&home, "p");
    assert_eq!(code(&fresh), 0, "{}", text(&fresh.stderr));
    assert!(fresh.stderr.is_empty(), "no warning: {}", text(&fresh.stderr));

    // A refused refresh (the grant revoked) still fails, even with a valid token cached.
    sim.revoke_all();
    let refused = token_needing_an_hour(&home, "p");
    assert_eq!(code(&refused), 3, "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("age-oauth login --profile p"), "{}", text(&refused.stderr));
}

#[test]
fn an_unreachable_server_during_refresh_keeps_the_valid_token() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    let cached = home.load_cache("p").tokens.unwrap();
    let port = sim.port();
    drop(sim);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the port is closed");
    let out = token_needing_refresh(&home, "p");
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(text(&out.stdout).trim(), cached.access_token.expose());
    assert!(err.starts_with("warning: ") && err.contains("connection refused"), "{err}");
    let json =
        home.cmd().env("AGE_OAUTH_CLOCK_OFFSET", "1780").args(["token", "--profile", "p", "--json"]).output().unwrap();
    assert_eq!(code(&json), 0, "{}", text(&json.stderr));
    let expired = home.cmd().env("AGE_OAUTH_CLOCK_OFFSET", "1900").args(["token", "--profile", "p"]).output().unwrap();
    assert_eq!(code(&expired), 4, "{}", text(&expired.stderr));
}

/// A TCP listener that accepts every connection and never answers; counts connections.
fn black_hole() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, count)
}

/// Waits for `child` at most `limit`; kills it after that (then `None`).
fn wait_at_most(mut child: Child, limit: Duration) -> Option<Output> {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn parallel_token_calls_on_a_server_that_never_answers_all_finish_after_one_timeout() {
    const TIMEOUT: u64 = 3;
    const N: usize = 4;
    let (port, connections) = black_hole();
    let home = Home::new();
    add_app_profile(&home, "app", &format!("http://127.0.0.1:{port}/portal"), "c", "s3cret-app");
    let start = Instant::now();
    let children: Vec<Child> = (0..N)
        .map(|_| {
            home.cmd()
                .env("AGE_OAUTH_HTTP_TIMEOUT", TIMEOUT.to_string())
                .args(["token", "--profile", "app"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // The old behaviour took N × the timeout; this bound is generous for a loaded machine.
    let limit = Duration::from_secs(2 * TIMEOUT + 10);
    let outputs: Vec<Option<Output>> =
        children.into_iter().map(|c| wait_at_most(c, limit + Duration::from_secs(20))).collect();
    let elapsed = start.elapsed();
    for out in &outputs {
        let out = out.as_ref().expect("every process ends");
        let err = text(&out.stderr);
        assert_eq!(code(out), 4, "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(!err.contains("s3cret-app"));
    }
    let reported = outputs.iter().flatten().filter(|o| text(&o.stderr).contains("another age-oauth process")).count();
    assert_eq!(reported, N - 1, "the waiters report the one failure");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "exactly one request reached the server");
    assert!(elapsed < limit, "all {N} finished in {elapsed:?} (old behaviour: {N} × {TIMEOUT} s and more)");
}

#[test]
fn a_lock_held_by_a_hung_process_is_waited_for_a_bounded_time() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    let cached = home.load_cache("p").tokens.unwrap();
    let store = CacheStore::with_own_identity(Paths::under(home.state()));
    let lock = store.lock("p").unwrap();
    let child = home
        .cmd()
        .env("AGE_OAUTH_HTTP_TIMEOUT", "1")
        .env("AGE_OAUTH_CLOCK_OFFSET", "1780")
        .args(["token", "--profile", "p"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_at_most(child, Duration::from_secs(60)).expect("the wait for the lock is bounded");
    drop(lock);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(text(&out.stdout).trim(), cached.access_token.expose(), "the still-valid token");
    assert!(err.contains("warning: ") && err.contains("lock"), "{err}");
    assert_eq!(sim.count("token:refresh_token"), 0);
}

#[test]
fn a_renamed_or_copied_cache_is_refused_and_never_written_under_another_name() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "a");
    add_profile(&home, &sim, "b");
    assert_eq!(code(&login(&home, "a", &[])), 0);
    let a_bytes = std::fs::read(home.cache_file("a")).unwrap();
    std::fs::copy(home.cache_file("a"), home.cache_file("b")).unwrap();
    for args in [vec!["token", "--profile", "b"], vec!["status", "--profile", "b"], vec!["login", "--profile", "b"]] {
        let out = home.run(&args);
        let err = text(&out.stderr);
        if args[0] == "status" {
            continue; // status reports cache problems in its table; checked below through token
        }
        assert_eq!(code(&out), 1, "{args:?}: {err}");
        assert!(err.contains("renamed or copied") && err.contains("login --profile b --force"), "{err}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(std::fs::read(home.cache_file("a")).unwrap(), a_bytes, "a's cache untouched");
    assert_eq!(std::fs::read(home.cache_file("b")).unwrap(), a_bytes, "b's file left as it was");
    assert_eq!(sim.count("token:refresh_token"), 0, "the copied refresh token was not replayed");
    // --force replaces it with b's own login, written to b's file.
    assert_eq!(code(&login(&home, "b", &["--force"])), 0);
    assert_eq!(home.load_cache("b").profile, "b");
    assert_eq!(std::fs::read(home.cache_file("a")).unwrap(), a_bytes, "a's cache still untouched");
}

#[test]
fn profile_remove_waits_for_the_profiles_lock_and_removes_temp_files() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    let cache_dir = home.state().join("cache");
    let stale = cache_dir.join(".p.age.tmp-Ab12Cd");
    std::fs::write(&stale, b"half-written").unwrap();
    let store = CacheStore::with_own_identity(Paths::under(home.state()));
    let lock = store.lock("p").unwrap();
    let child =
        home.cmd().args(["profile", "remove", "p"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Whatever the machine's speed: while we hold the lock, nothing is removed.
    assert!(home.cache_file("p").exists(), "the cache stays while a refresh holds the lock");
    assert!(std::fs::read_to_string(home.state().join("config.toml")).unwrap().contains("[profiles.p]"));
    drop(lock);
    let out = wait_at_most(child, Duration::from_secs(60)).expect("remove ends once the lock is free");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(!home.cache_file("p").exists());
    assert!(!stale.exists(), "the temp file of a killed writer is removed");
}

#[test]
fn a_refresh_waiting_for_the_lock_does_not_resurrect_a_cache_deleted_under_it() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    let store = CacheStore::with_own_identity(Paths::under(home.state()));
    let lock = store.lock("p").unwrap();
    // --min-ttl beyond the token's life: the child reads the cache, then waits for the lock to refresh.
    let child = home
        .cmd()
        .args(["token", "--profile", "p", "--min-ttl", "9999999"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // What a `profile remove` or `logout` holding the lock does.
    std::fs::remove_file(home.cache_file("p")).unwrap();
    drop(lock);
    let out = wait_at_most(child, Duration::from_secs(60)).expect("the refresh ends once the lock is free");
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("age-oauth login --profile p"), "{err}");
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(!home.cache_file("p").exists(), "the removed cache is not written back");
    assert_eq!(sim.count("token:refresh_token"), 0, "nothing refreshed for a removed profile");
}

#[test]
fn the_next_write_removes_temp_files_a_killed_writer_left() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    let cache_dir = home.state().join("cache");
    std::fs::create_dir_all(&cache_dir).unwrap();
    let ours = [cache_dir.join(".p.age.tmp-Zz9Yy8"), cache_dir.join(".p.age.tmp-000000")];
    let others = [cache_dir.join(".q.age.tmp-abcdef"), cache_dir.join(".p.age.tmp-x.age.tmp-abcdef")];
    for f in ours.iter().chain(&others) {
        std::fs::write(f, b"partial").unwrap();
    }
    assert_eq!(code(&login(&home, "p", &[])), 0);
    for f in &ours {
        assert!(!f.exists(), "{} removed by the next write", f.display());
    }
    for f in &others {
        assert!(f.exists(), "{} belongs to another profile's writer", f.display());
    }
}

#[test]
fn profile_add_is_all_or_nothing_on_a_damaged_cache() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    std::fs::write(home.cache_file("p"), b"\x00garbage").unwrap();
    let config = home.state().join("config.toml");
    let before = std::fs::read(&config).unwrap();
    let out = home.run(&["profile", "add", "p", "--set", "expiration=120"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("cannot be read"), "{err}");
    assert_eq!(std::fs::read(&config).unwrap(), before, "config.toml untouched");
    assert_eq!(std::fs::read(home.cache_file("p")).unwrap(), b"\x00garbage", "the cache untouched");
}

#[test]
fn profile_add_is_all_or_nothing_when_the_secret_cannot_be_saved() {
    let sim = start_sim();
    let home = Home::new();
    let missing = home.path().join("no-such-identity.txt");
    let config = home.state().join("config.toml");
    let add = |name: &str| {
        let portal = sim.base_url();
        let args = ["profile", "add", name, "--provider", "esri-app", "--portal", &portal, "--client-id", APP];
        home.cmd()
            .env("AGE_OAUTH_IDENTITY", &missing)
            .args(args)
            .args(["--client-secret", APP_SECRET])
            .output()
            .unwrap()
    };
    // A new profile: no config.toml appears.
    let out = add("p");
    assert_ne!(code(&out), 0, "the secret cannot be saved: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no-such-identity.txt"), "{}", text(&out.stderr));
    assert!(!config.exists(), "config.toml not written");
    // Another profile next to an existing one: config.toml stays byte for byte.
    add_app_profile(&home, "q", &sim.base_url(), APP, APP_SECRET);
    let before = std::fs::read(&config).unwrap();
    let out = add("r");
    assert_ne!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&config).unwrap(), before, "config.toml untouched");
    assert!(!home.cache_file("r").exists());
}

/// Writes a cache for `profile` whose token expires at `expires_at` (as an older or
/// damaged version could have stored).
fn write_cache_with_expiry(home: &Home, profile: &str, provider: &str, expires_at: u64) {
    let store = CacheStore::with_own_identity(Paths::under(home.state()));
    let mut entry = CacheEntry::new(profile, provider);
    let mut tokens = TokenSet::new(Secret::new("absurd-token"), 1_700_000_000);
    tokens.expires_at = Some(expires_at);
    tokens.refresh_token = Some(Secret::new("r"));
    tokens.refresh_expires_at = Some(u64::MAX);
    tokens.username = Some("demo".into());
    entry.tokens = Some(tokens);
    let lock = store.lock(profile).unwrap();
    store.save(&lock, &entry).unwrap();
}

#[test]
fn absurd_cached_expiries_do_not_crash_token_status_or_profile_list() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    for at in [u64::MAX, 1 << 40, 253_402_300_800] {
        write_cache_with_expiry(&home, "p", "esri-oob", at);
        for args in [
            vec!["token", "--profile", "p", "--json"],
            vec!["token", "--profile", "p"],
            vec!["status", "--profile", "p"],
            vec!["status", "--profile", "p", "--json"],
            vec!["profile", "list"],
            vec!["profile", "list", "--json"],
            vec!["login", "--profile", "p"],
        ] {
            let out = home.run(&args);
            let err = text(&out.stderr);
            assert_eq!(code(&out), 0, "{at} {args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&home.run(&["token", "--profile", "p", "--json"]).stdout).unwrap();
        assert_eq!(json["expires_at"], "9999-12-31T23:59:59Z", "{json}");
    }
}

/// A token endpoint that answers every request with `body` (status 200, JSON).
fn canned_portal(body: &'static str) -> (u16, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let s = server.clone();
    std::thread::spawn(move || {
        for request in s.incoming_requests() {
            let response = tiny_http::Response::from_string(body)
                .with_header(tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap());
            let _ = request.respond(response);
        }
    });
    (port, server)
}

#[test]
fn absurd_expiries_from_a_server_are_clamped() {
    for body in [
        r#"{"access_token":"far","expires_in":18446744073709551615}"#,
        r#"{"access_token":"far","expires_in":"99999999999999999"}"#,
        r#"{"access_token":"far","expires_in":4000000000}"#,
    ] {
        let (port, _server) = canned_portal(body);
        let home = Home::new();
        add_app_profile(&home, "app", &format!("http://127.0.0.1:{port}/portal"), "c", "s3cret");
        for args in [
            vec!["token", "--profile", "app", "--json"],
            vec!["token", "--profile", "app", "--json"],
            vec!["status", "--profile", "app"],
            vec!["profile", "list"],
        ] {
            let out = home.run(&args);
            let err = text(&out.stderr);
            assert_eq!(code(&out), 0, "{body} {args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
        let expires = home.load_cache("app").tokens.unwrap().expires_at.unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert!(expires <= now + age_oauth::MAX_TOKEN_LIFETIME + 5, "{body}: clamped, got {expires}");
    }
}

#[test]
fn a_login_timeout_near_the_integer_maximum_is_refused_with_a_message() {
    let home = Home::new();
    for (provider, extra) in [
        ("esri-pkce", vec!["--portal", "https://gis.example.com/portal", "--client-id", "c"]),
        ("oidc", vec!["--set", "issuer=https://idp.example.com", "--client-id", "c"]),
    ] {
        let mut args = vec!["profile", "add", provider, "--provider", provider];
        args.extend(extra);
        args.extend(["--set", "login_timeout=18446744073709551615"]);
        let out = home.run(&args);
        let err = text(&out.stderr);
        assert_eq!(code(&out), 2, "{provider}: {err}");
        assert!(err.contains("login_timeout") && !err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn http_401_from_the_token_endpoint_is_exit_3_naming_the_login_command() {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let port = server.server_addr().to_ip().unwrap().port();
    let s = server.clone();
    std::thread::spawn(move || {
        for request in s.incoming_requests() {
            let _ = request.respond(tiny_http::Response::from_string("Unauthorized").with_status_code(401));
        }
    });
    let home = Home::new();
    add_app_profile(&home, "app", &format!("http://127.0.0.1:{port}/portal"), "c", "s3cret-401");
    let out = home.run(&["token", "--profile", "app"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("age-oauth login --profile app") && err.contains("401"), "{err}");
    assert!(!err.contains("s3cret-401"));

    // A refresh refused with 401 (esri-oob logged in, then the portal answers 401).
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    sim.set_token_outage(Some(401));
    let out = home.cmd().env("AGE_OAUTH_CLOCK_OFFSET", "1900").args(["token", "--profile", "p"]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(code(&out), 3, "{err}");
    assert!(err.contains("age-oauth login --profile p"), "{err}");
    let mut body = String::new();
    let _ = out.stdout.as_slice().read_to_string(&mut body);
    assert!(body.is_empty());
}

#[test]
fn caches_written_before_typed_provider_state_still_work_and_are_upgraded() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "p");
    assert_eq!(code(&login(&home, "p", &[])), 0);
    let entry = home.load_cache("p");
    let tokens = entry.tokens.clone().unwrap();
    // The layout the previous version wrote: provider values and federated server tokens
    // (in clear JSON) under `extra`.
    let old = serde_json::json!({
        "format": 1,
        "profile": "p",
        "provider": "esri-oob",
        "secrets": {"client_secret": APP_SECRET},
        "service": entry.service,
        "tokens": {
            "access_token": tokens.access_token.expose(),
            "expires_at": tokens.expires_at,
            "refresh_token": tokens.refresh_token.as_ref().map(|r| r.expose().to_string()),
            "refresh_expires_at": tokens.refresh_expires_at,
            "refresh_issued_at": tokens.refresh_issued_at,
            "username": tokens.username,
            "obtained_at": tokens.obtained_at,
            "extra": {
                "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
                "server_tokens": {"https://gis.example.com/arcgis": {"token": "st_old", "expires_at": 4_000_000_000u64}}
            }
        }
    });
    let key = text(&home.run(&["key", "show"]).stdout).trim().parse::<age::x25519::Recipient>().unwrap();
    let bytes = age_oauth::encrypt_to(&serde_json::to_vec(&old).unwrap(), &[key]).unwrap();
    std::fs::write(home.cache_file("p"), bytes).unwrap();

    let out = home.run(&["token", "--profile", "p"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), tokens.access_token.expose(), "read as it is");
    // A refresh writes it back in the typed layout.
    let out = token_needing_refresh(&home, "p");
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let upgraded = home.load_cache("p").tokens.unwrap();
    assert_ne!(upgraded.access_token, tokens.access_token);
    assert_eq!(upgraded.derived["https://gis.example.com/arcgis"].token.expose(), "st_old");
    assert_eq!(upgraded.provider_state["redirect_uri"], "urn:ietf:wg:oauth:2.0:oob");
    assert!(!upgraded.provider_state.contains_key("server_tokens"));
}
