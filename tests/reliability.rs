//! Reliability under concurrency and crashes, through the real binary: 32 processes × 20
//! expiry rounds against a portal that rotates refresh tokens and revokes the grant on reuse,
//! and `kill -9` at random moments during 200 refreshes. Figures go to stdout (--nocapture).

mod common;
use common::*;
use rand::Rng;
use std::process::Stdio;
use std::time::Instant;

#[test]
fn thirty_two_processes_twenty_expiry_rounds_one_refresh_each() {
    let sim = start_sim();
    sim.update_config(|c| c.rotate_on_refresh = true);
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    let (processes, rounds) = (32, 20);
    let mut round_ms = Vec::new();
    for round in 1..=rounds {
        // Both clocks move half an hour: the cached token is now expired for everyone.
        sim.advance_clock(1800);
        let offset = (round * 1800).to_string();
        let started = Instant::now();
        let children: Vec<_> = (0..processes)
            .map(|_| {
                home.cmd()
                    .env("AGE_OAUTH_CLOCK_OFFSET", &offset)
                    .args(["token", "--profile", "prod"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        round_ms.push(started.elapsed().as_millis());
        for out in &outputs {
            assert_eq!(code(out), 0, "round {round}: {}", text(&out.stderr));
        }
        let first = text(&outputs[0].stdout);
        assert!(outputs.iter().all(|o| text(&o.stdout) == first), "round {round}: everyone gets the same token");
        assert_eq!(sim.count("token:refresh_token"), round as u64, "round {round}: exactly one refresh");
    }
    assert_eq!(sim.count("refresh_reuse"), 0, "no refresh token was ever presented twice");
    assert_eq!(sim.live_tokens().refresh_tokens, 1, "one live refresh token: none lost, none forked");
    // The one the cache holds is that live one: it still refreshes.
    sim.advance_clock(1800);
    let out = home
        .cmd()
        .env("AGE_OAUTH_CLOCK_OFFSET", ((rounds + 1) * 1800).to_string())
        .args(["token", "--profile", "prod"])
        .output()
        .unwrap();
    assert_eq!(sim.count("token:refresh_token"), rounds as u64 + 1);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    round_ms.sort();
    println!(
        "concurrency: {processes} processes x {rounds} rounds: {} refreshes, 0 reuse, 0 errors; wall per round median {} ms, max {} ms",
        sim.count("token:refresh_token"),
        round_ms[round_ms.len() / 2],
        round_ms[round_ms.len() - 1]
    );
}

#[test]
fn kill_nine_during_refreshes_never_corrupts_the_cache() {
    let sim = start_sim();
    let home = Home::new();
    add_profile(&home, &sim, "prod");
    assert_eq!(code(&login(&home, "prod", &[])), 0);
    // Kill at a uniformly random moment of a whole refresh run, whatever this machine's speed.
    let full_run_us = (0..3)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(code(&home.run(&["token", "--profile", "prod", "--min-ttl", "999999"])), 0);
            t.elapsed().as_micros() as u64
        })
        .max()
        .unwrap();
    let mut rng = rand::thread_rng();
    let mut previous = home.load_cache("prod");
    let (mut kept_old, mut got_new) = (0, 0);
    // Temp files a killed writer left (`.prod.age.tmp-XXXXXX`): the next write removes them.
    let temp_files = || {
        std::fs::read_dir(home.state().join("cache"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".prod.age.tmp-"))
            .count()
    };
    let (mut most_temp_files, mut rounds_with_temp_files) = (0, 0);
    for i in 0..200 {
        let mut child = home
            .cmd()
            .args(["token", "--profile", "prod", "--min-ttl", "999999"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rng.gen_range(0..full_run_us)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let left = temp_files();
        most_temp_files = most_temp_files.max(left);
        rounds_with_temp_files += usize::from(left > 0);
        let now = home.load_cache("prod"); // panics on a cache that does not decrypt
        let tokens = now.tokens.as_ref().expect("tokens survive");
        assert_eq!(now.secrets, previous.secrets, "round {i}: stored secrets intact");
        if now == previous {
            kept_old += 1;
        } else {
            assert_ne!(tokens.access_token, previous.tokens.as_ref().unwrap().access_token, "round {i}");
            got_new += 1;
        }
        previous = now;
    }
    assert_eq!(kept_old + got_new, 200);
    // And the cache still works normally afterwards.
    let out = home.run(&["token", "--profile", "prod", "--min-ttl", "999999"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(most_temp_files <= 1, "each write removes what the killed one before it left ({most_temp_files})");
    assert_eq!(temp_files(), 0, "the last write removed every temp file a killed writer left");
    println!(
        "kill -9: 200 kills within a {} ms refresh run: {kept_old} left the old state, {got_new} the new one, 0 corrupt; \
         {} refresh grants reached the server; {rounds_with_temp_files} kills left a temp file (never more than \
         {most_temp_files} at a time), 0 left at the end",
        full_run_us / 1000,
        sim.count("token:refresh_token") - 3
    );
}
