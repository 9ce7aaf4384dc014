//! The clock the engine asks for "now", injected so expiry is testable.
//! Times are whole seconds since the Unix epoch throughout the cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The time, injectable: the system clock in production, a manual one in tests.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;

    /// Waits `seconds` (device-flow polling). A manual clock only moves forward, so tests never wait.
    fn sleep(&self, seconds: u64) {
        std::thread::sleep(std::time::Duration::from_secs(seconds));
    }
}

/// The real wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }
}

/// The wall clock shifted by a fixed number of seconds: `AGE_OAUTH_CLOCK_OFFSET`, for
/// simulations and tests that drive the binary through expiries without waiting.
pub struct OffsetClock(pub i64);

impl Clock for OffsetClock {
    fn now(&self) -> u64 {
        SystemClock.now().saturating_add_signed(self.0)
    }
}

/// The clock the binary uses: the system clock, shifted when `AGE_OAUTH_CLOCK_OFFSET` is set.
pub fn from_env(env: &crate::env::Env) -> crate::error::Result<std::sync::Arc<dyn Clock>> {
    match env.raw(crate::env::CLOCK_OFFSET.name) {
        Some(v) if !v.trim().is_empty() => {
            let offset: i64 = v.trim().parse().map_err(|_| {
                crate::error::Error::Config(format!(
                    "AGE_OAUTH_CLOCK_OFFSET must be a whole number of seconds, got `{v}`"
                ))
            })?;
            Ok(std::sync::Arc::new(OffsetClock(offset)))
        }
        _ => Ok(std::sync::Arc::new(SystemClock)),
    }
}

/// A clock that only moves when told to (tests).
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock stopped at `start` (Unix seconds).
    pub fn new(start: u64) -> Self {
        ManualClock(AtomicU64::new(start))
    }
    /// Moves the clock forward.
    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
    /// Sets the clock to `now` (Unix seconds).
    pub fn set(&self, now: u64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn sleep(&self, seconds: u64) {
        self.advance(seconds);
    }
}

/// The last second RFC 3339 can write (9999-12-31T23:59:59Z).
const LAST_RFC3339_SECOND: u64 = 253_402_300_799;

/// RFC 3339 rendering of an epoch second, in UTC; later times (only a damaged or absurd
/// value can be) show as the last representable second instead of failing.
pub fn rfc3339(epoch_seconds: u64) -> String {
    let seconds = epoch_seconds.min(LAST_RFC3339_SECOND);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(seconds)).to_string()
}

/// `H:MM:SS` for a duration in seconds (the seed's "Expires in" format).
pub fn hms(seconds: u64) -> String {
    format!("{}:{:02}:{:02}", seconds / 3600, (seconds / 60) % 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats() {
        assert_eq!(hms(1799), "0:29:59");
        assert_eq!(hms(90061), "25:01:01");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z", "absurd values do not panic");
    }
}
