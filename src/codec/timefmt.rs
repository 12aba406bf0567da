//! Writing a time with a `time_key_format` (parsed in `config::time_format`), in UTC.

use crate::codec::decode::EventTime;
use crate::config::time_format::Tok;
pub use crate::config::time_format::{TimeFormat, TimeFormatError};
use civil_date::{civil_from_days, days_from_civil};

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
}
