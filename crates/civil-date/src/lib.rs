//! Proleptic Gregorian calendar arithmetic in UTC, without a date library: days since
//! 1970-01-01 to and from `(year, month, day)`.
//!
//! These are Howard Hinnant's `days_from_civil` and `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>): exact for every date whose day
//! count fits the arithmetic, negative years included (year 0 is 1 BC).
//!
//! ```
//! use civil_date::{civil_from_days, days_from_civil};
//!
//! assert_eq!(days_from_civil(1970, 1, 1), 0);
//! assert_eq!(civil_from_days(19_782), (2024, 2, 29));
//! assert_eq!(days_from_civil(2024, 2, 29), 19_782);
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Days since 1970-01-01 of the date `y`-`m`-`d` (month 1–12, day 1–31; out-of-range
/// values are not checked).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` that is `z` days after 1970-01-01 (before it when
/// negative); month 1–12, day 1–31.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn is_leap(y: i64) -> bool {
        (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
    }

    fn month_len(y: i64, m: u32) -> u32 {
        match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn known_dates() {
        let known: [(i64, (i64, u32, u32)); 14] = [
            (0, (1970, 1, 1)),
            (-1, (1969, 12, 31)),
            (31, (1970, 2, 1)),
            (59, (1970, 3, 1)),
            (10_957, (2000, 1, 1)),
            (11_016, (2000, 2, 29)), // leap day of a year divisible by 400
            (11_017, (2000, 3, 1)),
            (19_722, (2023, 12, 31)),
            (19_723, (2024, 1, 1)),
            (19_782, (2024, 2, 29)),
            (47_541, (2100, 3, 1)), // after 2100-02-28: no leap day in 2100
            (-25_567, (1900, 1, 1)),
            (-719_468, (0, 3, 1)), // the algorithm's epoch
            (2_932_896, (9999, 12, 31)),
        ];
        for (days, ymd) in known {
            assert_eq!(civil_from_days(days), ymd, "civil_from_days({days})");
            assert_eq!(days_from_civil(ymd.0, ymd.1, ymd.2), days, "{ymd:?}");
        }
        assert_eq!(civil_from_days(47_540), (2100, 2, 28));
    }

    #[test]
    fn negative_years() {
        // Year 0 (1 BC) is a leap year in the proleptic Gregorian calendar, -100 is not,
        // -400 is.
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(civil_from_days(-719_528), (0, 1, 1));
        assert_eq!(
            days_from_civil(0, 3, 1) - days_from_civil(0, 2, 28),
            2,
            "0-02-29 exists"
        );
        assert_eq!(
            days_from_civil(-100, 3, 1) - days_from_civil(-100, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(-400, 3, 1) - days_from_civil(-400, 2, 28),
            2
        );
        assert_eq!(days_from_civil(0, 1, 1) - days_from_civil(-1, 1, 1), 365);
        assert_eq!(
            days_from_civil(-1, 1, 1) - days_from_civil(-4, 1, 1),
            3 * 365 + 1
        );
        assert_eq!(civil_from_days(days_from_civil(-1, 12, 31)), (-1, 12, 31));
        assert_eq!(
            civil_from_days(days_from_civil(-4713, 11, 24)),
            (-4713, 11, 24)
        );
        // 400 years are 146,097 days, whatever the era.
        for y in [-2001i64, -401, -400, -1, 0, 1, 399, 400, 2024] {
            assert_eq!(
                days_from_civil(y + 400, 5, 17) - days_from_civil(y, 5, 17),
                146_097
            );
        }
    }

    #[test]
    fn round_trip_over_a_wide_range() {
        // Every day from about 9,000 BC to 11,000 AD, and that each one is the day after
        // the previous one.
        let (first, last) = (-4_000_000i64, 3_300_000i64);
        let (mut y, mut m, mut d) = civil_from_days(first - 1);
        for days in first..=last {
            let (ny, nm, nd) = civil_from_days(days);
            assert_eq!(days_from_civil(ny, nm, nd), days, "{ny}-{nm}-{nd}");
            assert!((1..=12).contains(&nm) && (1..=month_len(ny, nm)).contains(&nd));
            let next = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            assert_eq!((ny, nm, nd), next, "the day after {y}-{m}-{d}");
            (y, m, d) = (ny, nm, nd);
        }
        // Far away, sparsely.
        let mut days = -1_000_000_000_000i64;
        while days < 1_000_000_000_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            days += 7_777_777_777;
        }
    }
}
