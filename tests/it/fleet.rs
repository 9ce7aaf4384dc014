//! Fleets (issue 13): hosts sharing one login through a real OpenBao (tests/peers/openbao), each host a
//! separate AGE_OAUTH_HOME with its own age key, against the Portal simulator rotating refresh tokens
//! and revoking the grant on reuse. The simulator counts refreshes and reuse; OpenBao judges claims.

use crate::common::*;
use age_oauth::sandbox::{PortalConfig, PortalSim};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub(crate) const PROFILE: &str = "fleet";
const PUBLIC_APP: &str = "age-oauth-sandbox";
/// The simulator's access-token lifetime: one "expiry" is the clocks moving on by this much.
const ACCESS_LIFETIME: i64 = 1_800;
/// Short, so a dead claimer costs the tests seconds; long enough that a claimer on a loaded CI machine keeps its claim.
const CLAIM_TTL: u64 = 5;

/// The OpenBao shared by the tests that do not restart it.
pub(crate) fn openbao() -> &'static StartedPeer {
    static PEER: std::sync::OnceLock<StartedPeer> = std::sync::OnceLock::new();
    PEER.get_or_init(|| start_named_peer("openbao"))
}

/// N hosts sharing one profile through one record, and the portal they sign in to.
pub(crate) struct Fleet {
    sim: PortalSim,
    pub(crate) hosts: Vec<Home>,
    store_url: String,
    token_file: String,
    /// Seconds every host's clock is ahead (AGE_OAUTH_CLOCK_OFFSET), kept equal to the simulator's.
    offset: i64,
}

fn rotating_portal() -> PortalSim {
    PortalSim::start("127.0.0.1:0", PortalConfig { rotate_on_refresh: true, ..PortalConfig::default() }).unwrap()
}

/// The `key show` of a fresh home (it makes the home's identity).
fn key_of(home: &Home) -> String {
    let out = home.run(&["key", "show"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    text(&out.stdout).lines().find(|l| l.starts_with("age1")).expect("an age1 key").trim().to_string()
}

fn profile_toml(portal: &str, store_url: &str, token_file: &str, recipients: &[String], extra: &str) -> String {
    let list: Vec<String> = recipients.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[profiles.{PROFILE}]\nprovider = \"esri-oob\"\nportal = \"{portal}\"\nclient_id = \"{PUBLIC_APP}\"\n\n\
         [profiles.{PROFILE}.store]\nurl = \"{store_url}\"\ntoken_file = \"{token_file}\"\nrecipients = [{}]\n\
         claim_ttl = {CLAIM_TTL}\n{extra}",
        list.join(", ")
    )
}

impl Fleet {
    /// `n` hosts, the first `readers` of them in `recipients`; the others are outsiders with the same profile.
    pub(crate) fn new(bao: &StartedPeer, n: usize, recipients_of: usize) -> Fleet {
        Fleet::with_extra(bao, n, recipients_of, "")
    }

    /// `new`, with `extra` lines in every host's `[profiles.fleet.store]`.
    fn with_extra(bao: &StartedPeer, n: usize, recipients_of: usize, extra: &str) -> Fleet {
        let sim = rotating_portal();
        let hosts: Vec<Home> = (0..n).map(|_| Home::new()).collect();
        let keys: Vec<String> = hosts.iter().take(recipients_of).map(key_of).collect();
        let unique = format!("{}-{}", std::process::id(), rand_suffix());
        let store_url = format!("vault+{}/{}/{unique}", bao.var("BAO_ADDR"), bao.var("BAO_KV_PREFIX"));
        let token_file = bao.var("BAO_TOKEN_FILE").to_string();
        for h in &hosts {
            std::fs::create_dir_all(h.state()).unwrap();
            std::fs::write(
                h.state().join("config.toml"),
                profile_toml(&sim.base_url(), &store_url, &token_file, &keys, extra),
            )
            .unwrap();
        }
        Fleet { sim, hosts, store_url, token_file, offset: 0 }
    }

    pub(crate) fn cmd(&self, host: usize, args: &[&str]) -> Command {
        let mut cmd = self.hosts[host].cmd();
        cmd.env("AGE_OAUTH_CLOCK_OFFSET", self.offset.to_string()).arg("--profile").arg(PROFILE).args(args);
        cmd
    }

    fn run(&self, host: usize, args: &[&str]) -> Output {
        self.cmd(host, args).output().unwrap()
    }

    /// Signs host `host` in through the simulator (login publishes on a store profile).
    pub(crate) fn login(&self, host: usize) {
        self.login_with_args(host, &[]);
    }

    fn login_with_args(&self, host: usize, extra: &[&str]) {
        let mut cmd = self.cmd(host, &["login", "--no-browser"]);
        cmd.args(extra);
        let out = login_with(cmd);
        assert_eq!(code(&out), 0, "login: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("Published to the fleet store"), "{}", text(&out.stderr));
    }

    /// Every clock (the simulator's and the hosts') moves on by one access-token lifetime.
    pub(crate) fn expire(&mut self) {
        self.sim.advance_clock(ACCESS_LIFETIME as u64);
        self.offset += ACCESS_LIFETIME;
    }

    /// `per_host` concurrent `token` processes on every host; their outputs.
    fn token_everywhere(&self, per_host: usize) -> Vec<Output> {
        let children: Vec<Child> = (0..self.hosts.len())
            .flat_map(|h| (0..per_host).map(move |_| h))
            .map(|h| self.cmd(h, &["token"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
    }

    fn refreshes(&self) -> u64 {
        self.sim.count("token:refresh_token")
    }

    fn reuse(&self) -> u64 {
        self.sim.count("refresh_reuse")
    }

    fn status(&self, host: usize) -> Value {
        let out = self.run(host, &["store", "status", "--json"]);
        assert_eq!(code(&out), 0, "store status: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The record exactly as the store returns it (body of the KV v2 GET, metadata included).
    fn raw_record(&self, bao: &StartedPeer) -> String {
        let path = self.store_url.split_once("://").unwrap().1.split_once('/').unwrap().1;
        let url = format!("{}/v1/{}/data/{path}", bao.var("BAO_ADDR"), bao.var("BAO_KV_MOUNT"));
        let token = std::fs::read_to_string(&self.token_file).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        agent.get(&url).header("X-Vault-Token", token.trim()).call().unwrap().body_mut().read_to_string().unwrap()
    }

    /// Writes the record behind age-oauth's back (an administrator restoring a backup).
    fn raw_write(&self, bao: &StartedPeer, body: &str) {
        let path = self.store_url.split_once("://").unwrap().1.split_once('/').unwrap().1;
        let url = format!("{}/v1/{}/data/{path}", bao.var("BAO_ADDR"), bao.var("BAO_KV_MOUNT"));
        let token = std::fs::read_to_string(&self.token_file).unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut response = agent
            .post(&url)
            .header("X-Vault-Token", token.trim())
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.body_mut().read_to_string().unwrap());
    }

    /// Starts `token` on `host` with the pause hook at `step`, and returns once it announced the pause.
    fn paused_at(&self, host: usize, step: &str) -> Child {
        self.paused_for(host, step, 60_000).0
    }

    /// `paused_at`, pausing `ms` milliseconds; its stdout is piped, and the rest of its stderr is
    /// drained by a thread (so it can go on) whose result is the whole stderr.
    fn paused_for(&self, host: usize, step: &str, ms: u64) -> (Child, std::thread::JoinHandle<String>) {
        let mut child = self
            .cmd(host, &["-v", "token"])
            .env("AGE_OAUTH_INTERNAL_FLEET_PAUSE", format!("{step}:{ms}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap() > 0 {
            seen.push_str(&line);
            if line.contains(&format!("fleet test pause: {step}")) {
                let rest = std::thread::spawn(move || {
                    let _ = std::io::Read::read_to_string(&mut lines, &mut seen);
                    seen
                });
                return (child, rest);
            }
            line.clear();
        }
        let _ = child.wait();
        panic!("the claimer never reached `{step}`: {seen}");
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{nanos:x}{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn all_ok(outputs: &[Output], case: &str) -> String {
    let mut tokens: Vec<String> = Vec::new();
    for out in outputs {
        assert_eq!(code(out), 0, "{case}: {}", text(&out.stderr));
        tokens.push(text(&out.stdout).trim().to_string());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "{case}: every process got the same token");
    tokens.remove(0)
}

#[test]
fn eight_hosts_times_four_processes_refresh_once_per_expiry_over_ten_expiries() {
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 8, 8);
    fleet.login(0);
    let first = all_ok(&fleet.token_everywhere(1), "adopt");
    assert_eq!(fleet.refreshes(), 0, "a fresh record is adopted, never refreshed");
    let mut previous = first;
    for expiry in 1..=10 {
        fleet.expire();
        let before = fleet.refreshes();
        let token = all_ok(&fleet.token_everywhere(4), &format!("expiry {expiry}"));
        assert_ne!(token, previous, "expiry {expiry}: a new token");
        assert_eq!(
            fleet.refreshes() - before,
            1,
            "expiry {expiry}: exactly one refresh at the portal for 32 processes"
        );
        assert_eq!(fleet.reuse(), 0, "expiry {expiry}: no refresh token was ever presented twice");
        previous = token;
    }
    let status = fleet.status(3);
    assert_eq!(status["generation"], 11, "{status}");
    assert_eq!(status["needs_login"], false);
    assert_eq!(status["can_decrypt"], true);
    assert!(status["claim"].is_null(), "{status}");
}

#[test]
fn the_store_holds_no_secret_in_clear_and_outsiders_cannot_decrypt() {
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 3, 2);
    fleet.login(0);
    fleet.expire();
    let refreshing = fleet.run(1, &["-vvv", "token"]);
    let token = all_ok(std::slice::from_ref(&refreshing), "refresh on host 1");
    let cache = fleet.hosts[1].load_cache(PROFILE);
    let tokens = cache.tokens.expect("host 1 adopted the login");
    let refresh = tokens.refresh_token.expect("a refresh token").expose().to_string();
    // Claim, refresh and publish at -vvv: no token, refresh token or Vault token in the log.
    let log = text(&refreshing.stderr);
    let vault_token = std::fs::read_to_string(&fleet.token_file).unwrap().trim().to_string();
    assert!(log.contains("claimed the fleet refresh"), "the -vvv log covers the claim: {log}");
    for secret in [&token, &refresh, &vault_token] {
        assert!(!log.contains(secret.as_str()), "-vvv logged a secret: {log}");
    }
    let raw = fleet.raw_record(bao);
    assert!(raw.contains("age-oauth/fleet/1") && raw.contains("\"ct\""), "{raw}");
    for secret in [&token, &refresh, &vault_token] {
        assert!(!raw.contains(secret.as_str()), "the raw record holds a secret in clear: {raw}");
    }
    // Host 2 has the same profile but its key is not among the recipients.
    let out = fleet.run(2, &["token"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not among the recipients"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert_eq!(fleet.status(2)["can_decrypt"], false);
    let out = fleet.run(2, &["store", "push"]);
    assert_eq!(code(&out), 3, "host 2 has no login to publish: {}", text(&out.stderr));

    // `store push` leaves a login already there alone, unless --force.
    let generation = fleet.status(1)["generation"].as_u64().unwrap();
    let out = fleet.run(1, &["store", "push"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("store push --profile fleet --force"), "{}", text(&out.stderr));
    let out = fleet.run(1, &["store", "push", "--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(fleet.status(0)["generation"].as_u64().unwrap(), generation + 1);
    assert_eq!(all_ok(&[fleet.run(0, &["token"])], "host 0 after the push"), token);
    let out = fleet.run(0, &["token", "--rotate-refresh-token"]);
    assert_eq!(code(&out), 2, "a host alone must not rotate the fleet's refresh token: {}", text(&out.stderr));
}

#[test]
fn a_fresh_local_copy_costs_no_store_request_and_a_wrong_vault_token_is_exit_4() {
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 2, 2);
    // Host 1 reads its Vault token from its own file (as a bao-agent sink would write it).
    let own = fleet.hosts[1].path().join("vault-token");
    std::fs::copy(&fleet.token_file, &own).unwrap();
    let config = std::fs::read_to_string(fleet.hosts[1].state().join("config.toml")).unwrap();
    let config = config.replace(&fleet.token_file, &own.display().to_string());
    std::fs::write(fleet.hosts[1].state().join("config.toml"), &config).unwrap();
    fleet.login(0);
    all_ok(&[fleet.run(1, &["token"])], "adopt");
    let audit = Path::new(bao.var("BAO_AUDIT_LOG"));
    let before = std::fs::read_to_string(audit).unwrap_or_default().lines().count();
    all_ok(&[fleet.run(1, &["token"]), fleet.run(0, &["token"])], "fresh local copies");
    let path = fleet.store_url.rsplit('/').next().unwrap().to_string();
    let audit_text = std::fs::read_to_string(audit).unwrap_or_default();
    let touching: usize = audit_text.lines().skip(before).filter(|l| l.contains(&path)).count();
    assert_eq!(touching, 0, "a fresh local copy makes no store request");
    // A wrong Vault token in that file (revoked, mistyped): exit 4, saying what was tried.
    std::fs::write(&own, "s.not-a-real-token").unwrap();
    fleet.expire();
    let out = fleet.run(1, &["token"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains("refused the Vault token") && err.contains("tried:") && err.contains("vault-token"), "{err}");
    assert!(!err.contains("s.not-a-real-token"), "the token itself is never printed: {err}");
    // An unreachable store: exit 4, naming what was tried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let moved = config.replace(bao.var("BAO_ADDR"), &format!("http://127.0.0.1:{closed}"));
    let lonely = Home::new();
    std::fs::create_dir_all(lonely.state()).unwrap();
    std::fs::write(lonely.state().join("config.toml"), moved).unwrap();
    let out = lonely.cmd().args(["token", "--profile", PROFILE]).output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains(&format!("127.0.0.1:{closed}")) && err.contains("connection refused"), "{err}");
}

#[test]
fn a_killed_claimer_s_claim_expires_and_a_kill_after_rotation_ends_in_one_needs_login() {
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 4, 4);
    fleet.login(0);
    all_ok(&fleet.token_everywhere(1), "adopt");

    // Killed after claiming, before the portal: the claim expires by the store's clock, host 1 refreshes.
    fleet.expire();
    let mut claimer = fleet.paused_at(0, "claimed");
    let status = fleet.status(2);
    assert!(status["claim"]["holder"].as_str().unwrap().contains(&format!("pid {}", claimer.id())), "{status}");
    assert_eq!(code(&fleet.run(2, &["store", "unclaim"])), 2, "unclaim needs --force");
    claimer.kill().unwrap();
    claimer.wait().unwrap();
    let before = fleet.refreshes();
    all_ok(&fleet.token_everywhere(2), "after the claimer died");
    assert_eq!(fleet.refreshes() - before, 1);
    assert_eq!(fleet.reuse(), 0);

    // Killed again after claiming: `store unclaim --force` frees it at once.
    fleet.expire();
    let mut claimer = fleet.paused_at(1, "claimed");
    claimer.kill().unwrap();
    claimer.wait().unwrap();
    let out = fleet.run(3, &["store", "unclaim", "--force"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Dropped the claim"), "{}", text(&out.stderr));
    assert!(fleet.status(3)["claim"].is_null());
    all_ok(&fleet.token_everywhere(1), "after unclaim");
    assert_eq!(fleet.reuse(), 0);

    // Killed after the portal rotated, before the publish: the next refresher presents the old refresh
    // token, the portal revokes the grant, the record says needs_login once, and every host stops.
    fleet.expire();
    let mut claimer = fleet.paused_at(2, "refreshed");
    claimer.kill().unwrap();
    claimer.wait().unwrap();
    let outs = fleet.token_everywhere(2);
    for out in &outs {
        assert_eq!(code(out), 3, "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(&format!("age-oauth login --profile {PROFILE}")), "{}", text(&out.stderr));
    }
    assert_eq!(fleet.reuse(), 1, "the one unavoidable reuse (the kill landed after the rotation)");
    assert_eq!(fleet.status(0)["needs_login"], true);
    let calls = fleet.refreshes();
    for _ in 0..2 {
        assert!(fleet.token_everywhere(1).iter().all(|o| code(o) == 3));
    }
    assert_eq!(fleet.refreshes(), calls, "no retry storm: no host calls the portal after needs_login");
    // One sign-in publishes a new login; every host adopts it.
    fleet.login(3);
    all_ok(&fleet.token_everywhere(1), "after the new sign-in");
    assert_eq!(fleet.status(1)["needs_login"], false);
}

/// A claimer that stands still past its claim's TTL (SIGSTOP, a frozen VM) between claiming and calling
/// the portal: another host takes over and refreshes; when the frozen one wakes, it must not present the
/// refresh token that was just rotated out (reuse would revoke the grant) but adopt the new login.
#[test]
fn a_claimer_frozen_past_its_claim_ttl_adopts_the_takeover_s_login_instead_of_calling_the_portal() {
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 3, 3);
    fleet.login(0);
    all_ok(&fleet.token_everywhere(1), "adopt");
    fleet.expire();
    let (mut frozen, stderr) = fleet.paused_for(0, "claimed", 3_000);
    let pid = frozen.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let before = fleet.refreshes();
    // Hosts 1 and 2 wait out the frozen host's claim (by the store's clock), then one of them refreshes.
    let outs: Vec<Output> = [1, 2]
        .map(|h| fleet.cmd(h, &["token"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let token = all_ok(&outs, "the takeover");
    assert_eq!(fleet.refreshes() - before, 1, "one refresh by the host that took over");
    assert!(frozen.try_wait().unwrap().is_none(), "the frozen claimer was still stopped during the takeover");
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let out = frozen.wait_with_output().unwrap();
    let err = stderr.join().unwrap();
    assert_eq!(code(&out), 0, "the woken claimer adopts the new login: {err}");
    assert_eq!(text(&out.stdout).trim(), token, "the login the other host published");
    assert_eq!(fleet.refreshes() - before, 1, "the woken claimer never called the portal");
    assert_eq!(fleet.reuse(), 0, "no refresh token presented twice");
    assert_eq!(fleet.status(2)["needs_login"], false);
}

#[test]
fn kills_at_random_moments_never_cause_reuse_without_a_clean_needs_login() {
    use rand::Rng;
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 3, 3);
    fleet.login(0);
    let mut rng = rand::thread_rng();
    for round in 0..6 {
        fleet.expire();
        let reuse_before = fleet.reuse();
        let mut victim = fleet.cmd(round % 3, &["token"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(0..120)));
        let _ = victim.kill();
        let _ = victim.wait();
        let outs = fleet.token_everywhere(2);
        if fleet.reuse() == reuse_before {
            all_ok(&outs, &format!("round {round}"));
        } else {
            // The kill landed between the portal's rotation and the publish.
            assert!(outs.iter().all(|o| code(o) == 3), "round {round}: every host needs a login, none retries");
            let calls = fleet.refreshes();
            assert!(fleet.token_everywhere(1).iter().all(|o| code(o) == 3));
            assert_eq!(fleet.refreshes(), calls, "round {round}: no retry storm");
            fleet.login(1);
        }
    }
}

#[test]
fn hosts_recover_when_openbao_restarts_mid_run() {
    // Its own server: restarting the shared one would disturb the other tests.
    let bao = start_named_peer("openbao");
    let mut fleet = Fleet::new(&bao, 4, 4);
    fleet.login(0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/openbao");
    for round in 0..3 {
        fleet.expire();
        let before = fleet.refreshes();
        let children: Vec<Child> = (0..4)
            .map(|h| fleet.cmd(h, &["token"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        // kill -9 of the server while the hosts talk to it, then the same server back on the same storage.
        let pid = std::fs::read_to_string(bao.dir.join("server.pid")).unwrap();
        assert!(Command::new("kill").args(["-9", pid.trim()]).status().unwrap().success());
        // Until the old process is gone (its storage lock released), as tests/peers/openbao/prove.sh does.
        for _ in 0..100 {
            if !Command::new("kill").args(["-0", pid.trim()]).stderr(Stdio::null()).status().unwrap().success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = Command::new("bash").arg(root.join("start.sh")).arg("--dir").arg(&bao.dir).output().unwrap();
        assert!(out.status.success(), "restart: {}", text(&out.stderr));
        let outs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
        all_ok(&outs, &format!("round {round}"));
        assert_eq!(fleet.refreshes() - before, 1, "round {round}");
        assert_eq!(fleet.reuse(), 0, "round {round}");
    }
}

#[test]
fn over_https_the_store_is_trusted_through_its_ca_file_only() {
    let bao = start_named_peer_with("openbao", &["--tls"]);
    assert!(bao.var("BAO_ADDR").starts_with("https://"));
    let ca = format!("ca_file = \"{}\"\n", bao.var("BAO_CACERT"));
    let mut fleet = Fleet::with_extra(&bao, 2, 2, &ca);
    fleet.login(0);
    fleet.expire();
    let before = fleet.refreshes();
    all_ok(&fleet.token_everywhere(2), "over https");
    assert_eq!(fleet.refreshes() - before, 1);
    // The same store without the CA file: the certificate is refused (exit 4), nothing adopted.
    let config = std::fs::read_to_string(fleet.hosts[1].state().join("config.toml")).unwrap();
    let outsider = Home::new();
    std::fs::create_dir_all(outsider.state()).unwrap();
    std::fs::write(outsider.state().join("config.toml"), config.replace(&ca, "")).unwrap();
    let out = outsider.cmd().args(["token", "--profile", PROFILE]).output().unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn an_older_record_written_back_is_refused_as_a_rollback_before_any_refresh() {
    let bao = openbao();
    let mut fleet = Fleet::new(bao, 2, 2);
    fleet.login(0);
    fleet.expire();
    all_ok(&[fleet.run(1, &["token"])], "generation 2 by host 1");
    let old: Value = serde_json::from_str(&fleet.raw_record(bao)).unwrap();
    assert_eq!(old["data"]["data"]["gen"], 2, "{old}");
    fleet.expire();
    all_ok(&[fleet.run(0, &["token"])], "generation 3 by host 0");
    // An administrator restores the generation-2 record (a backup), as a new version.
    let current: Value = serde_json::from_str(&fleet.raw_record(bao)).unwrap();
    let version = current["data"]["metadata"]["version"].as_u64().unwrap();
    let restored = serde_json::json!({"options": {"cas": version}, "data": old["data"]["data"]});
    fleet.raw_write(bao, &restored.to_string());
    fleet.expire();
    let calls = fleet.refreshes();
    let out = fleet.run(0, &["token"]);
    let err = text(&out.stderr);
    assert_eq!(code(&out), 4, "{err}");
    assert!(err.contains("went back from generation 3") && err.contains("to 2"), "{err}");
    assert_eq!(fleet.refreshes(), calls, "no refresh from the older login");
    assert_eq!(fleet.reuse(), 0);
    assert!(err.contains("login --profile fleet --force"), "{err}");
    // Publishing the newest login again (a sign-in) goes past every generation any host saw.
    fleet.login_with_args(0, &["--force"]);
    assert_eq!(fleet.status(1)["generation"], 4);
    all_ok(&fleet.token_everywhere(1), "after the new sign-in");
}
