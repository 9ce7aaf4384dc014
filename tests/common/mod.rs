//! Shared harness for tests that drive the real `age-oauth` binary: a temp home,
//! a clean environment, the in-process Portal simulator, and the login dance.
#![allow(dead_code)]

use age_oauth::paths::Paths;
use age_oauth::sandbox::{PortalConfig, PortalSim};
use age_oauth::store::{CacheEntry, CacheStore};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_age-oauth");
/// The sandbox's confidential app: it has a client secret the tests can hunt for.
pub const APP: &str = "age-oauth-sandbox-app";
pub const APP_SECRET: &str = "sandbox-app-secret";

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// AGE_OAUTH_HOME for the binary.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cache_file(&self, profile: &str) -> PathBuf {
        self.state().join("cache").join(format!("{profile}.age"))
    }

    /// The binary with a clean environment: no AGE_OAUTH_* from the caller, no browser.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("AGE_OAUTH_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AGE_OAUTH_HOME", self.state())
            .env("HOME", self.path())
            .env("AGE_OAUTH_BROWSER", "none")
            .env("NO_COLOR", "1")
            .current_dir(self.path().join("work"))
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run age-oauth")
    }

    /// Reads a profile's cache through the library, with the binary's identity file.
    pub fn load_cache(&self, profile: &str) -> CacheEntry {
        CacheStore::with_own_identity(Paths::under(self.state()))
            .load(profile)
            .expect("cache readable")
            .expect("cache present")
    }

    /// Every file under the home, with its bytes.
    pub fn all_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = entry.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    out.push((p, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub fn start_sim() -> PortalSim {
    PortalSim::start("127.0.0.1:0", PortalConfig::default()).expect("simulator")
}

/// Plays the person: fetches the sign-in URL (the simulator approves at once) and
/// returns the code from the approval page's `<title>SUCCESS code=…</title>`.
pub fn approve(url: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().max_redirects(0).build().into();
    let page = agent.get(url).call().expect("authorize page").body_mut().read_to_string().unwrap();
    let start = page.find("SUCCESS code=").expect("approval page has the code") + "SUCCESS code=".len();
    page[start..].split(|c: char| c == '<' || c.is_whitespace()).next().unwrap().to_string()
}

/// `login --no-browser`, answering with the approved code on stdin. Returns the output
/// (stderr includes everything the binary printed).
pub fn login(home: &Home, profile: &str, extra: &[&str]) -> Output {
    let mut cmd = home.cmd();
    cmd.args(["login", "--profile", profile, "--no-browser"]).args(extra);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn login");
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if let Some(i) = line.find("http://") {
            if line.contains("oauth2/authorize") {
                let code = approve(line[i..].trim());
                writeln!(stdin, "{code}").unwrap();
                drop(stdin);
                break;
            }
        }
        line.clear();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let mut out = child.wait_with_output().unwrap();
    out.stderr = seen.into_bytes();
    out
}

/// Adds an `esri-oob` profile for the sandbox's confidential app.
pub fn add_profile(home: &Home, sim: &PortalSim, profile: &str) {
    let out = home.run(&[
        "profile",
        "add",
        profile,
        "--provider",
        "esri-oob",
        "--portal",
        &sim.base_url(),
        "--client-id",
        APP,
        "--client-secret",
        APP_SECRET,
    ]);
    assert_eq!(code(&out), 0, "profile add failed: {}", text(&out.stderr));
}
