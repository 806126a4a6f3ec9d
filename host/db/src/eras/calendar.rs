//! Calendar days as integers, so generated dates are exact and portable.

/// A day of the proleptic Gregorian calendar, counted from 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Day(pub i64);

impl Day {
    /// The day `year`-`month`-`day` (month and day from 1).
    pub(crate) fn ymd(year: i64, month: i64, day: i64) -> Self {
        // Howard Hinnant's `days_from_civil`, with March as the first month
        // so the leap day ends the year.
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe - 719_468)
    }

    /// Year, month and day.
    pub(crate) fn civil(self) -> (i64, i64, i64) {
        let z = self.0 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    /// The year.
    pub(crate) fn year(self) -> i64 {
        self.civil().0
    }

    /// `YYYY-MM-DD`.
    pub(crate) fn iso(self) -> String {
        let (y, m, d) = self.civil();
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The day `n` days later (earlier if negative).
    pub(crate) fn plus(self, n: i64) -> Self {
        Day(self.0 + n)
    }
}

#[cfg(test)]
mod tests {
    use super::Day;

    #[test]
    fn round_trips_and_formats() {
        assert_eq!(Day::ymd(1970, 1, 1), Day(0));
        assert_eq!(Day::ymd(2000, 3, 1).iso(), "2000-03-01");
        assert_eq!(Day::ymd(2024, 2, 29).plus(1).iso(), "2024-03-01");
        assert_eq!(Day::ymd(2023, 2, 28).plus(1).iso(), "2023-03-01");
        assert_eq!(Day::ymd(2025, 12, 31).0 - Day::ymd(2025, 1, 1).0, 364);
        assert_eq!(Day::ymd(1999, 12, 31).year(), 1999);
        for n in Day::ymd(1899, 1, 1).0..Day::ymd(2031, 1, 1).0 {
            let (y, m, d) = Day(n).civil();
            assert_eq!(Day::ymd(y, m, d), Day(n));
        }
    }
}
