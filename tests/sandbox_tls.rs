//! `age-oauth sandbox --tls-cert --tls-key`: the Portal simulator over HTTPS (for clients that insist
//! on it, like the `arcgis` Python package), with a throw-away CA made by openssl.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed to make the test CA (tests/setup/python.sh installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out.stderr));
}

/// ca.pem, and cert.pem / key.pem for 127.0.0.1 signed by it.
fn throwaway_ca(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    );
    openssl(dir, &[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn sandbox_serves_https_with_the_given_certificate() {
    let home = Home::new();
    throwaway_ca(home.path());
    let (cert, key) = (home.path().join("cert.pem"), home.path().join("key.pem"));
    let mut child = home
        .cmd()
        .args(["sandbox", "--port", "0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // Kept open to the end: the sandbox prints more lines, and a closed pipe would end it.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let portal = first.split_whitespace().last().unwrap().to_string();
    assert!(portal.starts_with("https://127.0.0.1:") && portal.ends_with("/portal"), "{first}");

    let curl = |args: &[&str]| Command::new("curl").args(["-sS", "-m", "10"]).args(args).output().expect("curl");
    let ca = home.path().join("ca.pem");
    let out = curl(&["--cacert", ca.to_str().unwrap(), &format!("{portal}/sharing/rest/info?f=json")]);
    let info: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stderr)));
    assert_eq!(info["owningSystemUrl"], portal.as_str(), "the simulator names its https URL");
    let out = curl(&[&format!("{portal}/sharing/rest/info?f=json")]);
    assert!(!out.status.success(), "a client without the CA refuses the certificate");
    let out = curl(&[&format!("{}/sharing/rest/info?f=json", portal.replacen("https", "http", 1))]);
    assert!(!out.status.success() || !text(&out.stdout).contains("owningSystemUrl"), "no plaintext on the TLS port");
    let _ = child.kill();
    let _ = child.wait();
    drop(stdout);
}

#[test]
fn sandbox_with_a_bad_certificate_is_a_usage_error_naming_the_file() {
    let home = Home::new();
    let key = home.path().join("key.pem");
    std::fs::write(&key, "not a key").unwrap();
    let out =
        home.cmd().args(["sandbox", "--tls-cert", "/nonexistent/cert.pem", "--tls-key"]).arg(&key).output().unwrap();
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/nonexistent/cert.pem"), "{}", text(&out.stderr));
    let out = home.cmd().args(["sandbox", "--tls-cert"]).arg(&key).arg("--tls-key").arg(&key).output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("no certificate"), "{}", text(&out.stderr));
}
