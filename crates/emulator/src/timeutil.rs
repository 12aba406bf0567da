//! UTC civil time without a date library: enough to name S3 objects
//! (`YYYY/MM/DD/HH` and `YYYY-MM-DD-HH-MM-SS`) and to write epoch timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC date and time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UtcDateTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

impl UtcDateTime {
    /// The UTC date and time of `t` (times before 1970 count as 1970-01-01).
    pub fn from_system_time(t: SystemTime) -> Self {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self::from_unix_seconds(secs as i64)
    }

    /// The UTC date and time `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_seconds(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        UtcDateTime {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// `YYYY/MM/DD/HH`, the default Firehose S3 key prefix.
    pub fn hour_prefix(&self) -> String {
        format!(
            "{:04}/{:02}/{:02}/{:02}",
            self.year, self.month, self.day, self.hour
        )
    }

    /// `YYYY-MM-DD-HH-MM-SS`, as in Firehose S3 object names.
    pub fn dashed(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Converts days since 1970-01-01 to `(year, month, day)` in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the Unix epoch, with fractions (the AWS JSON timestamp
/// format).
pub fn unix_seconds_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let t = UtcDateTime::from_unix_seconds(0);
        assert_eq!(t.dashed(), "1970-01-01-00-00-00");
        // 2000-02-29T00:00:00Z, a leap day in a year divisible by 400.
        assert_eq!(
            UtcDateTime::from_unix_seconds(951_782_400).dashed(),
            "2000-02-29-00-00-00"
        );
        // 2024-02-29T12:34:56Z.
        let t = UtcDateTime::from_unix_seconds(1_709_210_096);
        assert_eq!(t.dashed(), "2024-02-29-12-34-56");
        assert_eq!(t.hour_prefix(), "2024/02/29/12");
        // 2023-12-31T23:59:59Z and the second after.
        assert_eq!(
            UtcDateTime::from_unix_seconds(1_704_067_199).dashed(),
            "2023-12-31-23-59-59"
        );
        assert_eq!(
            UtcDateTime::from_unix_seconds(1_704_067_200).dashed(),
            "2024-01-01-00-00-00"
        );
        // 2100-03-01, after a non-leap century year.
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn every_day_advances_by_one() {
        // Walk 1970..~2150 and check the calendar is contiguous.
        let (mut y, mut m, mut d) = civil_from_days(0);
        for days in 1..66_000 {
            let (ny, nm, nd) = civil_from_days(days);
            let next_month = nd == 1 && (nm == m % 12 + 1) && (ny == y || (m == 12 && ny == y + 1));
            assert!(
                (ny, nm, nd) == (y, m, d + 1) || next_month,
                "{y}-{m}-{d} -> {ny}-{nm}-{nd}"
            );
            if next_month {
                let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
                let len = match m {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(d, len, "{y}-{m} has {len} days");
            }
            (y, m, d) = (ny, nm, nd);
        }
    }
}
