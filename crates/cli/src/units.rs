//! Parsing of command-line values (sizes, durations, rates, `key=value`) and human
//! formatting of numbers.

use std::time::Duration;

/// A byte size: a plain number of bytes, or with `K`/`KB`, `M`/`MB`, `G`/`GB` (powers of
/// 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("'{s}' is not a size (examples: 512, 64KiB, 2MB, 1.5MiB)");
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 || v >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v.round() as u64)
}

/// A size that must be at least one byte.
pub fn parse_positive_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!("'{s}' must be at least 1 byte")),
        v => Ok(v),
    }
}

/// A size as a float (quota bytes per second).
pub fn parse_size_f64(s: &str) -> Result<f64, String> {
    parse_positive_size(s).map(|v| v as f64)
}

/// A duration: a number with `ms`, `s`, `m` or `h`, or a plain number of seconds (as the
/// plugin's own duration keys).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("'{s}' is not a duration (examples: 250ms, 1.5s, 2m, 1h, 30)");
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let secs = n * mult;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A probability: `0.05` or `5%`, from 0 to 1.
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let bad = || format!("'{s}' is not a rate from 0 to 1 (examples: 0.05, 5%)");
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => t.parse::<f64>().map_err(|_| bad())?,
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(bad());
    }
    Ok(v)
}

/// A rate per second, greater than zero.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a rate per second greater than 0")),
    }
}

/// A plugin property `key=value`, as Fluent Bit's `-p`.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "'{s}' is not a property: write key=value, for example -p region=us-east-1"
        )),
    }
}

/// Fluent Bit's `Retry_Limit`: a number of retries, or `no_limits` / `false` / `off`
/// for unlimited, `no_retries` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLimit {
    Limited(u32),
    Unlimited,
}

pub fn parse_retry_limit(s: &str) -> Result<RetryLimit, String> {
    let t = s.trim().to_ascii_lowercase();
    match t.as_str() {
        "no_limits" | "false" | "off" | "unlimited" => Ok(RetryLimit::Unlimited),
        "no_retries" => Ok(RetryLimit::Limited(0)),
        _ => t.parse::<u32>().map(RetryLimit::Limited).map_err(|_| {
            format!("retry limit '{s}' is not a number of retries, no_limits or no_retries")
        }),
    }
}

/// `1234567` → `1,234,567`.
pub fn int(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    let head = match s.len() % 3 {
        0 => 3.min(s.len()),
        n => n,
    };
    out.push_str(&s[..head]);
    let mut rest = &s[head..];
    while !rest.is_empty() {
        out.push(',');
        out.push_str(&rest[..3]);
        rest = &rest[3..];
    }
    out
}

/// Bytes in MB (10^6), KB or B, one decimal.
pub fn bytes(v: u64) -> String {
    let f = v as f64;
    if f >= 1e9 {
        format!("{:.2} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} KB", f / 1e3)
    } else {
        format!("{v} B")
    }
}

/// A latency in milliseconds with sensible precision.
pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("2M").unwrap(), 2_000_000);
        assert_eq!(parse_size("1.5MiB").unwrap(), 1_572_864);
        assert_eq!(parse_size("64 KiB").unwrap(), 65_536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_positive_size("0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn rates_and_properties() {
        assert_eq!(parse_probability("5%").unwrap(), 0.05);
        assert_eq!(parse_probability("0.2").unwrap(), 0.2);
        assert!(parse_probability("1.5").is_err());
        assert!(parse_rate("0").is_err());
        assert_eq!(
            parse_property("region = eu-west-1").unwrap(),
            ("region".to_string(), "eu-west-1".to_string())
        );
        assert_eq!(parse_property("k=a=b").unwrap().1, "a=b");
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=v").is_err());
        assert_eq!(parse_retry_limit("False").unwrap(), RetryLimit::Unlimited);
        assert_eq!(parse_retry_limit("3").unwrap(), RetryLimit::Limited(3));
        assert!(parse_retry_limit("x").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1000), "1,000");
        assert_eq!(int(100_000), "100,000");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(999), "999 B");
    }
}
