//! An HTTPS front for the simulators: terminates TLS with a given certificate and relays the bytes
//! to a simulator's plain listener, so tests can show trust stores, expired certificates and unknown CAs.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running HTTPS front. Dropping it stops accepting; open connections end with their clients.
pub struct TlsFront {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Listens on 127.0.0.1 (a free port) with the PEM certificate chain and key, relaying to `backend`.
    pub fn start(backend: SocketAddr, cert_chain_pem: &str, key_pem: &str) -> std::io::Result<TlsFront> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| std::io::Error::other(format!("certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| std::io::Error::other(format!("key PEM: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
            .map_err(std::io::Error::other)?;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let acceptor = std::thread::Builder::new().name("tls-front".into()).spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = stream else { continue };
                let config = config.clone();
                let _ =
                    std::thread::Builder::new().name("tls-relay".into()).spawn(move || relay(client, backend, config));
            }
        })?;
        Ok(TlsFront { addr, stopping, acceptor: Some(acceptor) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn origin(&self) -> String {
        format!("https://{}", self.addr)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)); // wakes accept()
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// One connection: TLS on the client side, plain TCP to the simulator, bytes both ways until
/// either side closes (a handshake the client refuses just ends it).
fn relay(client: TcpStream, backend: SocketAddr, config: Arc<rustls::ServerConfig>) {
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let Ok(mut plain) = TcpStream::connect(backend) else { return };
    let tick = Some(Duration::from_millis(10));
    if client.set_read_timeout(tick).is_err() || plain.set_read_timeout(tick).is_err() {
        return;
    }
    let mut tls = rustls::StreamOwned::new(conn, client);
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let mut moved = false;
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if plain.write_all(&buf[..n]).is_err() {
                    return;
                }
                moved = true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        match plain.read(&mut buf) {
            Ok(0) => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return;
            }
            Ok(n) => {
                if tls.write_all(&buf[..n]).and_then(|_| tls.flush()).is_err() {
                    return;
                }
                moved = true;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
        if !moved {
            std::thread::yield_now();
        }
    }
}
