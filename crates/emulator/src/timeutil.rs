//! UTC civil time without a date library: enough to name S3 objects
//! (`YYYY/MM/DD/HH` and `YYYY-MM-DD-HH-MM-SS`) and to write epoch timestamps. The
//! calendar arithmetic is the `civil-date` crate's.

use std::time::{SystemTime, UNIX_EPOCH};

use civil_date::civil_from_days;

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
        // 2100-03-01, after a non-leap century year (the calendar itself is tested in
        // the civil-date crate).
        assert_eq!(
            UtcDateTime::from_unix_seconds(47_541 * 86_400).hour_prefix(),
            "2100/03/01/00"
        );
    }
}
