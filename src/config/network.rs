//! How calls reach AWS beyond the endpoint: a proxy, FIPS and dual-stack endpoints, the
//! user agent.

use super::values::{boolean, invalid};
use super::{keys, ConfigError};

/// The proxy for Firehose and STS calls.
#[derive(Clone, PartialEq, Eq)]
pub enum Proxy {
    /// From the environment: `HTTPS_PROXY` (or `HTTP_PROXY` for an `http://` endpoint),
    /// else `ALL_PROXY`, with `NO_PROXY`; either case.
    Environment,
    /// `proxy none`: no proxy, whatever the environment says.
    Off,
    /// `proxy URL`.
    Url(String),
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proxy::Environment => f.write_str("Environment"),
            Proxy::Off => f.write_str("Off"),
            Proxy::Url(u) => write!(f, "Url({})", redact_userinfo(u)),
        }
    }
}

/// The network settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub proxy: Proxy,
    /// Hosts reached without the proxy (`no_proxy`; else `NO_PROXY` with an environment
    /// proxy): comma-separated names, `.suffix`es, IPs, CIDRs, `*`.
    pub no_proxy: Option<String>,
    /// `use_fips_endpoint` / `use_dualstack_endpoint`; unset: the SDK's environment
    /// (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`) and profile decide.
    pub use_fips: Option<bool>,
    pub use_dual_stack: Option<bool>,
    /// Appended to the plugin's user agent (`user_agent_suffix`).
    pub user_agent_suffix: Option<String>,
}

pub(super) fn network(get: &dyn Fn(&str) -> Option<String>) -> Result<Network, ConfigError> {
    // A custom endpoint is used as given; the SDK refuses it combined with these.
    for key in [keys::USE_FIPS_ENDPOINT, keys::USE_DUALSTACK_ENDPOINT] {
        if let (Some(v), Some(_)) = (get(key), get(keys::ENDPOINT)) {
            if boolean(key, &v)? {
                return Err(invalid(
                    key,
                    &v,
                    "off when endpoint is set (the endpoint is used as given; for a FIPS VPC endpoint put its URL in endpoint)",
                ));
            }
        }
    }
    let proxy = match get(keys::PROXY) {
        None => Proxy::Environment,
        Some(v) if ["none", "off", "false"].contains(&v.to_ascii_lowercase().as_str()) => {
            Proxy::Off
        }
        Some(v) => {
            check_proxy_url(&v).map_err(|why| invalid(keys::PROXY, &redact_userinfo(&v), why))?;
            Proxy::Url(v)
        }
    };
    let no_proxy = get(keys::NO_PROXY);
    if let Some(n) = &no_proxy {
        if n.chars()
            .any(|c| c.is_whitespace() && c != ' ' || c.is_control())
        {
            return Err(invalid(
                keys::NO_PROXY,
                n,
                "comma-separated host names, .domain suffixes, IP addresses or CIDRs",
            ));
        }
    }
    let flag = |key: &'static str| get(key).map(|v| boolean(key, &v)).transpose();
    let use_fips = flag(keys::USE_FIPS_ENDPOINT)?;
    let use_dual_stack = flag(keys::USE_DUALSTACK_ENDPOINT)?;
    let user_agent_suffix = get(keys::USER_AGENT_SUFFIX);
    if let Some(s) = &user_agent_suffix {
        if s.len() > 64 || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(invalid(
                keys::USER_AGENT_SUFFIX,
                s,
                "up to 64 printable ASCII characters, such as team/payments",
            ));
        }
    }
    Ok(Network {
        proxy,
        no_proxy,
        use_fips,
        use_dual_stack,
        user_agent_suffix,
    })
}

/// `http://[user:password@]host[:port]` or `https://...`; why not, if not.
pub fn check_proxy_url(url: &str) -> Result<(), &'static str> {
    let expected = "a proxy URL such as http://proxy.internal:3128 or http://user:password@proxy:3128, or none";
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(expected)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || url.chars().any(char::is_whitespace) {
        return Err(expected);
    }
    Ok(())
}

/// The URL with any `user:password@` replaced by `***@`, for logs and errors.
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        assert!(check_proxy_url("http://proxy:3128").is_ok());
        assert!(check_proxy_url("https://u:p@proxy.internal").is_ok());
        assert!(check_proxy_url("socks5://proxy:1080").is_err());
        assert!(check_proxy_url("proxy:3128").is_err());
        assert!(check_proxy_url("http://:3128").is_err());
        assert!(check_proxy_url("http://user:pw@").is_err());
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact_userinfo("http://alice:s3cret@proxy:3128/x"),
            "http://***@proxy:3128/x"
        );
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        let p = Proxy::Url("http://alice:s3cret@proxy:3128".into());
        assert!(!format!("{p:?}").contains("s3cret"));
    }
}
