//! Benchmark (not a test), run by `benches/client.sh`: N requests to a loopback endpoint (the sandbox's
//! Anaconda-style `/api/account`) through `age_oauth::Client` against the bare HTTP client it is built
//! on with a fixed `Authorization` header; with the `reqwest` feature, `AsyncClient` against bare
//! reqwest too. Variants alternate in rounds so that a loaded machine slows them alike.
//! Usage: client_bench [REQUESTS] [ROUNDS]   (default 1000 requests, in 10 rounds).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program

use age_oauth::sandbox::{AnacondaSim, AnacondaSimConfig};
use age_oauth::{Client, Config, Engine, HttpClient, HttpRequest, Paths, UreqClient, VerifySsl};
use std::time::{Duration, Instant};

fn client(service: &AnacondaSim, home: &std::path::Path, key: &str) -> Client {
    let profile = format!(
        "[profiles.bench]\nprovider = \"api-key\"\napi_url = \"{}\"\nkey_source = \"static\"\n",
        service.site()
    );
    let env = [("AGE_OAUTH_API_KEY".to_string(), key.to_string())].into();
    let config = Config::from_parts(vec![(home.join("config.toml"), profile)], Default::default(), env).unwrap();
    let engine = Engine::new(Paths::under(home.to_path_buf()));
    let session = engine.session(config.resolve("bench", &[]).unwrap()).unwrap();
    Client::new(engine, session)
}

fn time(n: usize, mut one: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        one();
    }
    start.elapsed()
}

/// Totals, and the median of the per-round ratios (robust to a burst of load hitting one round).
fn report(label: &str, rounds: &[(Duration, Duration)], total: usize) {
    let bare: Duration = rounds.iter().map(|r| r.0).sum();
    let ours: Duration = rounds.iter().map(|r| r.1).sum();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / total as f64;
    let mut ratios: Vec<f64> = rounds.iter().map(|(b, o)| o.as_secs_f64() / b.as_secs_f64()).collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "{label:<24} bare {:>7.1} µs/req   client {:>7.1} µs/req   overhead: total {:>+6.2} %, median of rounds {:>+6.2} %",
        per(bare),
        per(ours),
        (ours.as_secs_f64() / bare.as_secs_f64() - 1.0) * 100.0,
        (median - 1.0) * 100.0
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10).max(1);
    let per_round = total / rounds;
    let service = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let key = service.issue_key(3600);
    let home = tempfile::tempdir().unwrap();
    let url = service.account_url();
    let client = client(&service, home.path(), &key);
    let bare = UreqClient::new(&VerifySsl::On).unwrap();
    let fixed = HttpRequest::get(&url)
        .header("User-Agent", concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
        .header("Authorization", format!("Bearer {key}"));
    // Warm both (connections, the client's credential).
    for _ in 0..50 {
        assert_eq!(bare.send(&fixed).unwrap().status, 200);
        assert_eq!(client.get(&url).unwrap().status, 200);
    }
    let mut times = Vec::new();
    for round in 0..rounds {
        // Which goes first alternates too.
        let b = || time(per_round, || assert_eq!(bare.send(&fixed).unwrap().status, 200));
        let c = || time(per_round, || assert_eq!(client.get(&url).unwrap().status, 200));
        times.push(if round % 2 == 0 {
            (b(), c())
        } else {
            let c = c();
            (b(), c)
        });
    }
    println!("{} requests per variant, {rounds} alternating rounds, loopback, {}", per_round * rounds, url);
    report("Client vs ureq", &times, per_round * rounds);
    #[cfg(feature = "reqwest")]
    reqwest_variant(client, &url, &key, rounds, per_round);
}

#[cfg(feature = "reqwest")]
fn reqwest_variant(client: Client, url: &str, key: &str, rounds: usize, per_round: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The feature builds reqwest without a TLS crypto provider of its own: ring, as the rest of age-oauth.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build().unwrap();
    let ours = age_oauth::AsyncClient::with_http(client, http.clone());
    runtime.block_on(async {
        let bare = || async {
            let r = http.get(url).header("Authorization", format!("Bearer {key}")).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().await.unwrap();
        };
        for _ in 0..50 {
            bare().await;
            assert_eq!(ours.get(url).await.unwrap().status, 200);
        }
        let mut times = Vec::new();
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..per_round {
                bare().await;
            }
            let bare_time = start.elapsed();
            let start = Instant::now();
            for _ in 0..per_round {
                assert_eq!(ours.get(url).await.unwrap().status, 200);
            }
            times.push((bare_time, start.elapsed()));
        }
        report("AsyncClient vs reqwest", &times, per_round * rounds);
    });
}
