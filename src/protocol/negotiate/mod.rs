//! HTTP Negotiate (RFC 4559) for web tiers behind Windows authentication: Kerberos through the
//! system's GSSAPI library, loaded at run time, and NTLMv2 for hosts without a ticket.

pub mod gssapi;
pub mod ntlm;
