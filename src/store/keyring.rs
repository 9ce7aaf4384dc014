//! The OS keyring as a home for the cache identity (feature `keyring`), behind a trait tests fake,
//! with a timeout: a keyring that hangs must not hang a `token` call.

use crate::paths::Paths;
use std::sync::Arc;
use std::time::Duration;

/// An OS credential store able to hold the cache identity. Optional: every call may
/// fail or hang (locked or absent collections), so the store probes it with a timeout.
pub trait Keyring: Send + Sync {
    /// The stored identity text, `Ok(None)` when there is none yet.
    fn get(&self) -> std::result::Result<Option<String>, String>;
    fn set(&self, value: &str) -> std::result::Result<(), String>;
    /// Where the entry lives, for `status`.
    fn describe(&self) -> String;
}

/// How long a keyring call may take before it is treated as unavailable.
pub const KEYRING_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs a keyring call on its own thread; a call that does not return in time is abandoned.
pub(super) fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
) -> std::result::Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    rx.recv_timeout(timeout).unwrap_or_else(|_| Err(format!("no answer within {} ms", timeout.as_millis())))
}

/// The OS keyring, when built with the `keyring` feature and not disabled by
/// `AGE_OAUTH_KEYRING=off`.
pub fn os_keyring(paths: &Paths) -> Option<Arc<dyn Keyring>> {
    if paths.env().raw(crate::env::KEYRING.name).is_some_and(|v| v.eq_ignore_ascii_case("off")) {
        return None;
    }
    #[cfg(feature = "keyring")]
    {
        Some(Arc::new(os_keyring::OsKeyring::new(paths)))
    }
    #[cfg(not(feature = "keyring"))]
    {
        let _ = paths;
        None
    }
}

#[cfg(feature = "keyring")]
mod os_keyring {
    use super::*;

    /// One entry per data directory: service `age-oauth`, user `cache-identity:<dir>`.
    pub struct OsKeyring {
        user: String,
    }

    impl OsKeyring {
        pub fn new(paths: &Paths) -> Self {
            OsKeyring { user: format!("cache-identity:{}", paths.data_dir.display()) }
        }
        fn entry(&self) -> std::result::Result<keyring::Entry, String> {
            keyring::Entry::new("age-oauth", &self.user).map_err(|e| e.to_string())
        }
    }

    impl Keyring for OsKeyring {
        fn get(&self) -> std::result::Result<Option<String>, String> {
            match self.entry()?.get_password() {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        }
        fn set(&self, value: &str) -> std::result::Result<(), String> {
            self.entry()?.set_password(value).map_err(|e| e.to_string())
        }
        fn describe(&self) -> String {
            format!("service age-oauth, user {}", self.user)
        }
    }
}
