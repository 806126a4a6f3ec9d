//! Wall-clock time for budgets and usage, injectable so that tests can move
//! it (a budget window's rollover) without sleeping.
//!
//! Times are Unix milliseconds, UTC. Budget windows are UTC calendar days
//! and months ([`Window`](crate::metering::Window)).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the engine reads the time of day.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;

    /// Now in Unix milliseconds (0 for times before 1970).
    fn now_ms(&self) -> u64 {
        unix_ms(self.now())
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to (for tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn new(now: SystemTime) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// A clock standing at `ms` Unix milliseconds.
    pub fn at_ms(ms: u64) -> Self {
        Self::new(UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// Sets the time.
    pub fn set(&self, now: SystemTime) {
        *self.lock() = now;
    }

    /// Sets the time to `ms` Unix milliseconds.
    pub fn set_ms(&self, ms: u64) {
        self.set(UNIX_EPOCH + Duration::from_millis(ms));
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        self.now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

/// `t` in Unix milliseconds (0 for times before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix milliseconds of midnight UTC starting the day of `ms`.
pub(crate) fn day_start(ms: u64) -> u64 {
    ms - ms % DAY_MS
}

/// Unix milliseconds of midnight UTC ending the day of `ms`.
pub(crate) fn day_end(ms: u64) -> u64 {
    day_start(ms) + DAY_MS
}

/// Unix milliseconds of the first instant of the UTC month of `ms`.
pub(crate) fn month_start(ms: u64) -> u64 {
    let (year, month, _) = civil_from_days((ms / DAY_MS) as i64);
    days_from_civil(year, month, 1) as u64 * DAY_MS
}

/// Unix milliseconds of the first instant of the UTC month after `ms`'s.
pub(crate) fn month_end(ms: u64) -> u64 {
    let (year, month, _) = civil_from_days((ms / DAY_MS) as i64);
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(year, month, 1) as u64 * DAY_MS
}

/// `ms` as RFC 3339 in UTC, to the second: `2025-03-01T00:00:00Z`.
pub fn format_utc(ms: u64) -> String {
    let (year, month, day) = civil_from_days((ms / DAY_MS) as i64);
    let secs = (ms % DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_arithmetic_matches_known_dates() {
        // 2024-02-29T00:00:00Z is 1709164800 s.
        assert_eq!(days_from_civil(2024, 2, 29), 1_709_164_800 / 86_400);
        assert_eq!(civil_from_days(1_709_164_800 / 86_400), (2024, 2, 29));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        for days in [0, 59, 365, 10_957, 19_782, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        // 2025-01-31T23:00:00Z: the month starts 2025-01-01, ends 2025-02-01.
        let ms = 1_738_364_400_000;
        assert_eq!(format_utc(ms), "2025-01-31T23:00:00Z");
        assert_eq!(format_utc(month_start(ms)), "2025-01-01T00:00:00Z");
        assert_eq!(month_end(ms), 1_738_368_000_000);
        assert_eq!(format_utc(day_start(ms)), "2025-01-31T00:00:00Z");
        assert_eq!(day_end(ms), 1_738_368_000_000);
        // December rolls into the next year; February of a leap year has 29 days.
        let dec = days_from_civil(2024, 12, 15) as u64 * DAY_MS;
        assert_eq!(format_utc(month_end(dec)), "2025-01-01T00:00:00Z");
        let feb = days_from_civil(2024, 2, 10) as u64 * DAY_MS;
        assert_eq!(format_utc(month_end(feb)), "2024-03-01T00:00:00Z");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_ms(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
    }
}
