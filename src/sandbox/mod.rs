//! Simulators of the services age-oauth talks to, written to their published protocols.
//! They back `age-oauth sandbox`, `age-oauth demo` and the test suite.

pub mod oidc;
pub mod portal;
pub mod server;
pub mod tls;
pub use oidc::{OidcFaults, OidcSim, OidcSimConfig};
pub use portal::*;
pub use server::*;
pub use tls::{TlsFiles, TlsFront};
