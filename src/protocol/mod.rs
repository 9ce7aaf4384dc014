//! Wire code the provider plugins share: OAuth 2.0 token answers, ArcGIS conventions, the loopback
//! redirect, PKCE, JWT, Negotiate (GSSAPI, NTLM), the password policy, Okta classic authn and SAML Web SSO. No module here names a provider.

pub mod arcgis;
pub mod jwt;
pub mod loopback;
pub mod negotiate;
pub mod oauth2;
pub mod oidc;
pub mod okta;
pub mod password;
pub mod pkce;
pub mod saml;
