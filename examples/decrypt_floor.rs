//! The floor of `age-oauth token` on a valid cache, measured by `benches/token_ratio.sh`: a process that
//! reads the identity and one cache file and decrypts it with age, and does nothing else.
//! Usage: decrypt_floor IDENTITY_FILE CACHE_FILE (prints the plaintext's length).

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program

use std::io::Read;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(identity), Some(cache)) = (args.next(), args.next()) else {
        eprintln!("usage: decrypt_floor IDENTITY_FILE CACHE_FILE");
        std::process::exit(2);
    };
    let identity_text = std::fs::read_to_string(identity).expect("identity file");
    let line = identity_text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).expect("an age identity");
    let identity: age::x25519::Identity = line.parse().expect("a valid identity");
    let bytes = std::fs::read(cache).expect("cache file");
    let decryptor = age::Decryptor::new_buffered(&bytes[..]).expect("an age file");
    let mut reader = decryptor.decrypt(std::iter::once(&identity as &dyn age::Identity)).expect("decrypts");
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain).expect("reads");
    println!("{}", plain.len());
}
