//! HTTPS for the simulators: a front that accepts on the public port, terminates TLS with rustls (the
//! crate ureq already brings) and relays the plaintext to the simulator's loopback listener; tests use
//! it to show trust stores, expired certificates and unknown CAs, `age-oauth sandbox --tls-cert` to serve HTTPS.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A PEM certificate chain (leaf first) and its PEM private key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain file (PEM, leaf first).
    pub cert: PathBuf,
    /// The private key file (PEM).
    pub key: PathBuf,
}

fn pem_error(path: &Path, e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("{}: {e}", path.display()))
}

impl TlsFiles {
    /// The rustls server configuration for these files (TLS 1.2 and 1.3, no client certificates);
    /// an error names the file at fault.
    pub fn server_config(&self) -> std::io::Result<Arc<rustls::ServerConfig>> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| pem_error(&self.cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(&self.cert, e))?;
        if certs.is_empty() {
            return Err(pem_error(&self.cert, "no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| pem_error(&self.key, e))?;
        server_config(certs, key).map_err(|e| pem_error(&self.cert, e))
    }
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// The accepting side; dropping it (or `stop`) stops accepting. Open connections end on their own.
pub struct TlsFront {
    pub(super) addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Listens on 127.0.0.1 (a free port) with the PEM certificate chain (leaf first) and key,
    /// relaying to `backend`.
    pub fn start(backend: SocketAddr, cert_chain_pem: &str, key_pem: &str) -> std::io::Result<TlsFront> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| std::io::Error::other(format!("certificate PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| std::io::Error::other(format!("key PEM: {e}")))?;
        let config = server_config(chain, key).map_err(std::io::Error::other)?;
        TlsFront::start_on("127.0.0.1:0", backend, config)
    }

    /// The address it accepts on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn origin(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Binds `bind` and relays every connection, decrypted, to `backend`.
    pub(super) fn start_on(
        bind: &str,
        backend: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsFront> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let acceptor = std::thread::Builder::new().name("sim-tls-accept".into()).spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let config = config.clone();
                // A failed relay only loses that one connection.
                let _ = std::thread::Builder::new().name("sim-tls-conn".into()).spawn(move || {
                    let _ = relay(client, backend, config);
                });
            }
        })?;
        Ok(TlsFront { addr, stopping, acceptor: Some(acceptor) })
    }

    pub(super) fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else { return };
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so it sees the flag.
        let wake = match self.addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
            SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
            a => a,
        };
        let _ = TcpStream::connect_timeout(&wake, std::time::Duration::from_secs(1));
        let _ = acceptor.join();
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop();
    }
}

type Conn = Arc<Mutex<rustls::ServerConnection>>;

const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens the plaintext connection, one at a time and a moment apart: tiny_http 0.12 hands a burst of
/// simultaneous connections to the threads it believes idle before they wake, and a connection left
/// queued behind keep-alive connections is never served (seen with 8 concurrent httpx requests).
fn connect_backend(backend: SocketAddr) -> std::io::Result<TcpStream> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let stream = TcpStream::connect(backend)?;
    std::thread::sleep(std::time::Duration::from_millis(2));
    Ok(stream)
}

fn lock(conn: &Conn) -> MutexGuard<'_, rustls::ServerConnection> {
    conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends whatever TLS records rustls has queued.
fn flush_tls(conn: &mut rustls::ServerConnection, out: &mut TcpStream) -> std::io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(out)?;
    }
    out.flush()
}

/// One connection: this thread decrypts client → backend, a second one encrypts backend → client.
/// The TLS state is shared under a mutex that is never held across a blocking read.
fn relay(client: TcpStream, backend: SocketAddr, config: Arc<rustls::ServerConfig>) -> std::io::Result<()> {
    let backend = connect_backend(backend)?;
    // An idle keep-alive connection holds one of tiny_http's connection threads: let it go.
    client.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let _ = (client.set_nodelay(true), backend.set_nodelay(true));
    let conn: Conn = Arc::new(Mutex::new(rustls::ServerConnection::new(config).map_err(std::io::Error::other)?));
    let (down_conn, mut down_out, mut from_backend) = (conn.clone(), client.try_clone()?, backend.try_clone()?);
    let down = std::thread::Builder::new().name("sim-tls-down".into()).spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_backend.read(&mut buf) {
            let mut c = lock(&down_conn);
            if c.writer().write_all(&buf[..n]).is_err() || flush_tls(&mut c, &mut down_out).is_err() {
                break;
            }
        }
        let mut c = lock(&down_conn);
        c.send_close_notify();
        let _ = flush_tls(&mut c, &mut down_out);
        let _ = down_out.shutdown(Shutdown::Both);
    })?;
    let (mut from_client, mut to_client, mut to_backend) = (client.try_clone()?, client, backend);
    let mut buf = vec![0u8; 16 * 1024];
    'read: while let Ok(n @ 1..) = from_client.read(&mut buf) {
        let mut plain = Vec::new();
        {
            let mut c = lock(&conn);
            let mut records = &buf[..n];
            while !records.is_empty() {
                let processed =
                    c.read_tls(&mut records).map_err(|_| ()).and_then(|_| c.process_new_packets().map_err(|_| ()));
                if processed.is_err() {
                    // rustls queued an alert for the client; send it and give up on this connection.
                    let _ = flush_tls(&mut c, &mut to_client);
                    break 'read;
                }
            }
            match c.reader().read_to_end(&mut plain) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break 'read,
            }
            if flush_tls(&mut c, &mut to_client).is_err() {
                break 'read;
            }
        }
        if !plain.is_empty() && to_backend.write_all(&plain).is_err() {
            break;
        }
    }
    // The backend sees end of input, closes, and the other direction ends with it.
    let _ = to_backend.shutdown(Shutdown::Write);
    let _ = down.join();
    let _ = to_client.shutdown(Shutdown::Both);
    Ok(())
}
