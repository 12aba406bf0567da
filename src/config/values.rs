//! Value parsers shared by the keys: durations, sizes, rates, counts, booleans, URLs,
//! stream names, files.

use super::ConfigError;
use std::time::Duration;

pub(super) fn invalid(key: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// Firehose's rule: 1-64 characters of `[a-zA-Z0-9_.-]`.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// An `http://` or `https://` URL with a host (and `port`, when given, replacing its own),
/// as the SDK's endpoint; a trailing `/` is dropped.
pub(super) fn parse_url(
    key: &'static str,
    e: &str,
    port: Option<u16>,
) -> Result<String, ConfigError> {
    let bad = || {
        invalid(
            key,
            e,
            "an http:// or https:// URL with a host, such as https://firehose.us-east-1.amazonaws.com",
        )
    };
    let mut url = url::Url::parse(e).map_err(|_| bad())?;
    let has_host = url.host_str().is_some_and(|h| !h.is_empty());
    if !matches!(url.scheme(), "http" | "https")
        || !has_host
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    if let Some(p) = port {
        url.set_port(Some(p)).map_err(|_| bad())?;
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Reads at most `limit` bytes of a file: a PEM bundle is small, and a path such as
/// /dev/zero must not hang start-up.
pub(super) fn read_limited(path: &str, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes: not a CA bundle"));
    }
    Ok(buf)
}

/// Whether `url` is plain `http://` to a host other than loopback (traffic in clear text).
pub fn plain_http_off_host(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    if u.scheme() != "http" {
        return false;
    }
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    !loopback
}

/// Parses `30s`, `500ms`, `2m`, `1h`, `1.5s`, or a plain number of seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (0.0..1.0e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

pub(super) fn duration(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some(v) => parse_duration(&v).ok_or_else(|| {
            invalid(
                key,
                &v,
                "a duration such as 30s, 500ms, 2m or a number of seconds",
            )
        }),
    }
}

/// Fluent Bit's booleans: on/off, true/false, yes/no, 1/0.
pub(super) fn boolean(key: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(key, v, "on or off (true/false, yes/no)")),
    }
}

/// A positive rate; `k`, `M` (×1000, ×1000²) and `KiB`, `MiB` (×1024, ×1024²) suffixes.
pub(super) fn rate(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    let Some(v) = get(key) else {
        return Ok(default);
    };
    let t = v.trim();
    let (num, mult) = [
        ("KiB", 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
    ]
    .iter()
    .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.trim(), *m)))
    .unwrap_or((t, 1.0));
    num.parse::<f64>()
        .ok()
        .map(|n| n * mult)
        .filter(|n| n.is_finite() && *n > 0.0)
        .ok_or_else(|| {
            invalid(
                key,
                &v,
                "a positive number per second, e.g. 5MiB, 2000 or 500k",
            )
        })
}

/// A size in bytes (`65536`, `64KiB`, `1MiB`) within `range`.
pub(super) fn size(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let Some(v) = get(key) else {
        return Ok(default);
    };
    rate(&|_| Some(v.clone()), key, 0.0)
        .ok()
        .map(|n| n as usize)
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            invalid(
                key,
                &v,
                &format!(
                    "a size from {} to {} bytes, e.g. 64KiB",
                    range.start(),
                    range.end()
                ),
            )
        })
}

pub(super) fn count(
    get: &impl Fn(&str) -> Option<String>,
    key: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    match get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                invalid(
                    key,
                    &v,
                    &format!("a whole number from {} to {}", range.start(), range.end()),
                )
            }),
    }
}
