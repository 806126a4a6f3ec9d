//! When to retry and how long to wait: exponential backoff with full
//! jitter, or the server's `Retry-After` when it sends one.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Backoff schedule of one provider.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    rng: Mutex<StdRng>,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        // Jitter only needs to decorrelate clients, not to be unpredictable.
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            base,
            max,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ u64::from(std::process::id()))),
        }
    }

    /// The wait before retry number `retry` (from 1): the server's
    /// `retry_after` when given, else a uniform draw from
    /// `[0, base * 2^(retry-1)]`; never more than `max`.
    pub(crate) fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max);
        }
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        Duration::from_millis(rng.random_range(0..=ceiling_ms))
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_waits_stay_under_the_doubling_ceiling_and_the_cap() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        for _ in 0..200 {
            assert!(b.wait(1, None) <= Duration::from_millis(100));
            assert!(b.wait(2, None) <= Duration::from_millis(200));
            assert!(b.wait(40, None) <= Duration::from_millis(500));
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| b.wait(3, None)).collect();
        assert!(spread.len() > 5, "waits are not jittered: {spread:?}");
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(
            b.wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            b.wait(1, Some(Duration::from_secs(99))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
