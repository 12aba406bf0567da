//! strftime-style time formatting in UTC, parsed once at configuration time.
//!
//! Supports the usual conversions plus Fluent Bit's `%L` (milliseconds) and the
//! `%3N` / `%6N` / `%9N` (`%N` = `%9N`) fractions of a second.

use crate::decode::EventTime;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unsupported conversion '%{0}' (supported: %Y %C %y %m %d %e %j %H %I %M %S %p %a %A %b %B %h %F %T %D %R %s %u %w %z %Z %L %N %3N %6N %9N %n %t %%)")]
pub struct TimeFormatError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    Conv(char),
    /// Fraction of a second with this many digits.
    Frac(u8),
}

/// A parsed time format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeFormat {
    toks: Vec<Tok>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl TimeFormat {
    pub fn parse(fmt: &str) -> Result<TimeFormat, TimeFormatError> {
        let mut toks = Vec::new();
        let mut lit = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            let Some(d) = chars.next() else {
                return Err(TimeFormatError(String::new()));
            };
            let tok = match d {
                '%' => {
                    lit.push('%');
                    continue;
                }
                'n' => {
                    lit.push('\n');
                    continue;
                }
                't' => {
                    lit.push('\t');
                    continue;
                }
                'L' => Tok::Frac(3),
                'N' => Tok::Frac(9),
                '3' | '6' | '9' => {
                    if chars.next_if_eq(&'N').is_none() {
                        return Err(TimeFormatError(d.to_string()));
                    }
                    Tok::Frac(d as u8 - b'0')
                }
                'Y' | 'C' | 'y' | 'm' | 'd' | 'e' | 'j' | 'H' | 'I' | 'M' | 'S' | 'p' | 'a'
                | 'A' | 'b' | 'B' | 'h' | 'F' | 'T' | 'D' | 'R' | 's' | 'u' | 'w' | 'z' | 'Z' => {
                    Tok::Conv(d)
                }
                other => return Err(TimeFormatError(other.to_string())),
            };
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(&mut lit)));
            }
            toks.push(tok);
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        Ok(TimeFormat { toks })
    }

    /// Whether the output depends on the fraction of a second.
    pub fn uses_fraction(&self) -> bool {
        self.toks.iter().any(|t| matches!(t, Tok::Frac(_)))
    }

    /// Appends the formatted time to `out`.
    pub fn write(&self, t: EventTime, out: &mut Vec<u8>) {
        let days = t.sec.div_euclid(86_400);
        let secs = t.sec.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
        let wday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        for tok in &self.toks {
            match tok {
                Tok::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Tok::Frac(n) => {
                    let v = t.nsec / 10u32.pow(9 - *n as u32);
                    pad(out, v as i64, *n as usize);
                }
                Tok::Conv(c) => match c {
                    'Y' => pad(out, y, 4),
                    'C' => pad(out, y.div_euclid(100), 2),
                    'y' => pad(out, y.rem_euclid(100), 2),
                    'm' => pad(out, m as i64, 2),
                    'd' => pad(out, d as i64, 2),
                    'e' => {
                        if d < 10 {
                            out.push(b' ');
                        }
                        pad(out, d as i64, 1)
                    }
                    'j' => pad(out, days - days_from_civil(y, 1, 1) + 1, 3),
                    'H' => pad(out, hh, 2),
                    'I' => pad(out, (hh + 11) % 12 + 1, 2),
                    'M' => pad(out, mm, 2),
                    'S' => pad(out, ss, 2),
                    'p' => out.extend_from_slice(if hh < 12 { b"AM" } else { b"PM" }),
                    'a' => out.extend_from_slice(&DAYS[wday].as_bytes()[..3]),
                    'A' => out.extend_from_slice(DAYS[wday].as_bytes()),
                    'b' | 'h' => out.extend_from_slice(&MONTHS[m as usize - 1].as_bytes()[..3]),
                    'B' => out.extend_from_slice(MONTHS[m as usize - 1].as_bytes()),
                    'F' => {
                        pad(out, y, 4);
                        out.push(b'-');
                        pad(out, m as i64, 2);
                        out.push(b'-');
                        pad(out, d as i64, 2);
                    }
                    'T' | 'R' => {
                        pad(out, hh, 2);
                        out.push(b':');
                        pad(out, mm, 2);
                        if *c == 'T' {
                            out.push(b':');
                            pad(out, ss, 2);
                        }
                    }
                    'D' => {
                        pad(out, m as i64, 2);
                        out.push(b'/');
                        pad(out, d as i64, 2);
                        out.push(b'/');
                        pad(out, y.rem_euclid(100), 2);
                    }
                    's' => pad(out, t.sec, 1),
                    'u' => pad(out, if wday == 0 { 7 } else { wday as i64 }, 1),
                    'w' => pad(out, wday as i64, 1),
                    'z' => out.extend_from_slice(b"+0000"),
                    'Z' => out.extend_from_slice(b"UTC"),
                    _ => {}
                },
            }
        }
    }
}

fn pad(out: &mut Vec<u8>, v: i64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(v.unsigned_abs());
    if v < 0 {
        out.push(b'-');
    }
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(f: &str, sec: i64, nsec: u32) -> String {
        let mut out = Vec::new();
        TimeFormat::parse(f)
            .unwrap()
            .write(EventTime { sec, nsec }, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn formats_like_strftime_in_utc() {
        // 2024-02-29T13:05:09.123456789Z, a Thursday, day 60
        let t = 1_709_211_909;
        assert_eq!(fmt("%Y-%m-%dT%H:%M:%S", t, 0), "2024-02-29T13:05:09");
        assert_eq!(
            fmt("%Y-%m-%dT%H:%M:%S.%LZ", t, 123_456_789),
            "2024-02-29T13:05:09.123Z"
        );
        assert_eq!(
            fmt("%3N|%6N|%9N|%N", t, 123_456_789),
            "123|123456|123456789|123456789"
        );
        assert_eq!(
            fmt("%a %A %b %B %j %I%p %e %y %C", t, 0),
            "Thu Thursday Feb February 060 01PM 29 24 20"
        );
        assert_eq!(
            fmt("%F %T %D %R %s %u %w %z %Z %%", t, 0),
            "2024-02-29 13:05:09 02/29/24 13:05 1709211909 4 4 +0000 UTC %"
        );
        assert_eq!(fmt("%L", 0, 7_000_000), "007");
        assert_eq!(fmt("%Y-%m-%d", 0, 0), "1970-01-01");
    }

    #[test]
    fn rejects_unknown_conversions() {
        assert_eq!(TimeFormat::parse("%Q"), Err(TimeFormatError("Q".into())));
        assert!(TimeFormat::parse("%4N").is_err());
        assert!(TimeFormat::parse("trailing %").is_err());
    }

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 59, 60, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
