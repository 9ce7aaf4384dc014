//! Simulators of the services age-oauth talks to, written to their published protocols.
//! They back `age-oauth sandbox`, `age-oauth demo` and the test suite.

pub mod portal;
pub mod server;
pub use portal::*;
pub use server::*;
