//! Benchmark (not a test), run by `benches/client.sh`: N requests to a loopback endpoint (the sandbox's
//! Anaconda-style `/api/account`) through `age_oauth::Client` against the bare HTTP client it is built
//! on with a fixed `Authorization` header; with the `reqwest` feature, `AsyncClient` against bare
//! reqwest too. The two variants alternate request by request (A B, B A, ...) so that load, CPU
//! frequency and the server's state hit both alike; each is summed up by its median request and its
//! 10 %-trimmed mean. A control pair (the bare client against itself) shows the harness's noise floor.
//! Usage: client_bench [REQUESTS] [REPEATS]   (default 1000 requests per variant, the whole run once).

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

/// Per-request times of two variants measured alternately.
#[derive(Default)]
struct Pair {
    bare: Vec<Duration>,
    ours: Vec<Duration>,
}

impl Pair {
    /// Median and 10 %-trimmed mean, in µs.
    fn summary(times: &[Duration]) -> (f64, f64) {
        let mut us: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_by(f64::total_cmp);
        let cut = us.len() / 10;
        let kept = &us[cut..us.len() - cut];
        (us[us.len() / 2], kept.iter().sum::<f64>() / kept.len() as f64)
    }

    fn report(&self, label: &str) {
        let (bare_median, bare_mean) = Pair::summary(&self.bare);
        let (ours_median, ours_mean) = Pair::summary(&self.ours);
        let pct = |ours: f64, bare: f64| (ours / bare - 1.0) * 100.0;
        println!(
            "{label:<28} bare {bare_median:>6.1} µs   ours {ours_median:>6.1} µs   overhead: median {:>+6.2} %, trimmed mean {:>+6.2} %",
            pct(ours_median, bare_median),
            pct(ours_mean, bare_mean)
        );
    }
}

fn timed(one: impl FnOnce()) -> Duration {
    let start = Instant::now();
    one();
    start.elapsed()
}

/// `n` requests of each, alternating which goes first.
fn interleaved(n: usize, mut bare: impl FnMut(), mut ours: impl FnMut()) -> Pair {
    let mut pair = Pair::default();
    for i in 0..n {
        if i % 2 == 0 {
            pair.bare.push(timed(&mut bare));
            pair.ours.push(timed(&mut ours));
        } else {
            pair.ours.push(timed(&mut ours));
            pair.bare.push(timed(&mut bare));
        }
    }
    pair
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000).max(10);
    let repeats: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let service = AnacondaSim::start(AnacondaSimConfig::default()).unwrap();
    let key = service.issue_key(3600);
    let home = tempfile::tempdir().unwrap();
    let url = service.account_url();
    let client = client(&service, home.path(), &key);
    let bare = UreqClient::new(&VerifySsl::On).unwrap();
    let fixed = HttpRequest::get(&url)
        .header("User-Agent", concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
        .header("Authorization", format!("Bearer {key}"));
    let send_bare = || assert_eq!(bare.send(&fixed).unwrap().status, 200);
    let send_ours = || assert_eq!(client.get(&url).unwrap().status, 200);
    // Warm both (connections, the client's credential).
    for _ in 0..50 {
        send_bare();
        send_ours();
    }
    println!("{total} requests per variant, alternating, loopback, {url}");
    for _ in 0..repeats {
        interleaved(total, send_bare, send_bare).report("control: ureq vs ureq");
        interleaved(total, send_bare, send_ours).report("Client vs ureq");
    }
    #[cfg(feature = "reqwest")]
    reqwest_variant(client, &url, &key, total, repeats);
}

#[cfg(feature = "reqwest")]
fn reqwest_variant(client: Client, url: &str, key: &str, total: usize, repeats: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The feature builds reqwest without a TLS crypto provider of its own: ring, as the rest of age-oauth.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().build().unwrap();
    let ours = age_oauth::AsyncClient::with_http(client, http.clone());
    runtime.block_on(async {
        let bare = || async {
            // The same fixed headers as the blocking bare client: a user agent and the key.
            let r = http
                .get(url)
                .header("User-Agent", concat!("age-oauth/", env!("CARGO_PKG_VERSION")))
                .header("Authorization", format!("Bearer {key}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().await.unwrap();
        };
        let ours = || async { assert_eq!(ours.get(url).await.unwrap().status, 200) };
        for _ in 0..50 {
            bare().await;
            ours().await;
        }
        for _ in 0..repeats {
            for control in [true, false] {
                // The second variant: bare again for the control pair, else ours.
                let second = || async move {
                    if control {
                        bare().await
                    } else {
                        ours().await
                    }
                };
                // The same alternation as `interleaved`; the variants are futures here.
                let mut pair = Pair::default();
                for i in 0..total {
                    if i % 2 == 0 {
                        pair.bare.push(timed_async(bare()).await);
                        pair.ours.push(timed_async(second()).await);
                    } else {
                        pair.ours.push(timed_async(second()).await);
                        pair.bare.push(timed_async(bare()).await);
                    }
                }
                pair.report(if control { "control: reqwest vs reqwest" } else { "AsyncClient vs reqwest" });
            }
        }
    });
}

#[cfg(feature = "reqwest")]
async fn timed_async(one: impl std::future::Future<Output = ()>) -> Duration {
    let start = Instant::now();
    one.await;
    start.elapsed()
}
