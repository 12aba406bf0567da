//! How the SDK reaches AWS: the HTTP client (TLS trust, proxy), the endpoints it resolves
//! (FIPS, dual-stack), and the user agent every call carries.

use crate::config::{redact_userinfo, Config, Proxy};
use aws_sdk_firehose::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_firehose::config::{ConfigBag, Intercept, RuntimeComponents, SharedHttpClient};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, Connector};

/// The plugin and its version, as every call names it.
pub const USER_AGENT: &str = concat!("firehose-fanout/", env!("CARGO_PKG_VERSION"));

/// The SDK's application name (in the user agent of every call, STS's included).
pub fn app_name() -> aws_config::AppName {
    // Letters, digits, '-' and '.' only: a valid name by construction.
    aws_config::AppName::new(concat!("firehose-fanout-", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|_| unreachable!("a fixed, valid application name"))
}

/// Hosts an environment proxy never applies to.
const LOOPBACK: &str = "localhost,127.0.0.0/8,::1";

/// The proxy in effect, and where it was set: `(url, source, no_proxy)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyChoice {
    pub url: String,
    pub source: String,
    pub no_proxy: Option<String>,
}

impl ProxyChoice {
    /// For the log: the URL without credentials.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "proxy {} (from {})",
            redact_userinfo(&self.url),
            self.source
        );
        if let Some(n) = &self.no_proxy {
            s.push_str(&format!(", not for {n}"));
        }
        s
    }
}

/// Which proxy applies: the `proxy` key, else the environment (`HTTPS_PROXY`, or
/// `HTTP_PROXY` when the Firehose endpoint is `http://`, else `ALL_PROXY`; either case),
/// with `no_proxy` or `NO_PROXY` (and, for an environment proxy, loopback).
pub fn proxy_choice(cfg: &Config, env: impl Fn(&str) -> Option<String>) -> Option<ProxyChoice> {
    let either = |name: &str| {
        env(name)
            .or_else(|| env(&name.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v.trim().to_string(), name.to_string()))
    };
    let (url, source) = match &cfg.network.proxy {
        Proxy::Off => return None,
        Proxy::Url(u) => (u.clone(), "the proxy key".to_string()),
        Proxy::Environment => {
            let plain = cfg
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"));
            let first = if plain { "HTTP_PROXY" } else { "HTTPS_PROXY" };
            either(first).or_else(|| either("ALL_PROXY"))?
        }
    };
    let mut no_proxy = cfg
        .network
        .no_proxy
        .clone()
        .or_else(|| either("NO_PROXY").map(|(v, _)| v));
    if cfg.network.proxy == Proxy::Environment {
        // A node-wide proxy variable never carries loopback traffic (a local emulator or
        // forwarder), as Go's and curl's users expect; the proxy key is taken as given.
        let mut rules = no_proxy.unwrap_or_default();
        if !rules.is_empty() {
            rules.push(',');
        }
        rules.push_str(LOOPBACK);
        no_proxy = Some(rules);
    }
    Some(ProxyChoice {
        url,
        source,
        no_proxy,
    })
}

/// The HTTP client: rustls with the system roots plus `ca_file`, through the proxy if any.
pub fn http_client(
    ca_pem: Option<&[u8]>,
    proxy: Option<&ProxyChoice>,
) -> Result<SharedHttpClient, String> {
    let mut trust = tls::TrustStore::default();
    if let Some(pem) = ca_pem {
        trust = trust.with_pem_certificate(pem.to_vec());
    }
    let ctx = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| format!("ca_file could not be used: {e}"))?;
    let proxy = match proxy {
        None => ProxyConfig::disabled(),
        Some(p) => {
            let mut c = ProxyConfig::all(p.url.as_str())
                .map_err(|e| format!("proxy {} could not be used: {e}", redact_userinfo(&p.url)))?;
            if let Some(n) = &p.no_proxy {
                c = c.no_proxy(n);
            }
            c
        }
    };
    Ok(
        aws_smithy_http_client::Builder::new().build_with_connector_fn(
            move |settings, components| {
                let mut b = Connector::builder();
                b.set_connector_settings(settings.cloned());
                if let Some(c) = components {
                    b.set_sleep_impl(c.sleep_impl());
                }
                b.proxy_config(proxy.clone())
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::AwsLc,
                    ))
                    .tls_context(ctx.clone())
                    .build()
            },
        ),
    )
}

/// The Firehose endpoint the SDK resolves for these settings.
pub async fn firehose_endpoint(
    region: &str,
    fips: bool,
    dual_stack: bool,
    endpoint: Option<&str>,
) -> Result<String, String> {
    use aws_sdk_firehose::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    // An explicit endpoint is used as given (the SDK refuses it combined with FIPS).
    let p = Params::builder()
        .region(region)
        .use_fips(fips && endpoint.is_none())
        .use_dual_stack(dual_stack && endpoint.is_none())
        .set_endpoint(endpoint.map(String::from))
        .build()
        .map_err(|e| e.to_string())?;
    DefaultResolver::new()
        .resolve_endpoint(&p)
        .await
        .map(|e| e.url().to_string())
        .map_err(|e| e.to_string())
}

/// The STS endpoint the SDK resolves for these settings (for `role_arn`).
pub async fn sts_endpoint(
    region: &str,
    fips: bool,
    dual_stack: bool,
    endpoint: Option<&str>,
) -> Result<String, String> {
    use aws_sdk_sts::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
    let p = Params::builder()
        .region(region)
        .use_fips(fips && endpoint.is_none())
        .use_dual_stack(dual_stack && endpoint.is_none())
        .use_global_endpoint(false)
        .set_endpoint(endpoint.map(String::from))
        .build()
        .map_err(|e| e.to_string())?;
    DefaultResolver::new()
        .resolve_endpoint(&p)
        .await
        .map(|e| e.url().to_string())
        .map_err(|e| e.to_string())
}

/// Appends the plugin, its version and `user_agent_suffix` to every Firehose call's
/// `User-Agent` (not signed, so it may change after signing).
#[derive(Debug)]
pub struct UserAgent(pub String);

impl UserAgent {
    pub fn new(suffix: Option<&str>) -> UserAgent {
        UserAgent(match suffix {
            Some(s) => format!("{USER_AGENT} {s}"),
            None => USER_AGENT.to_string(),
        })
    }
}

impl Intercept for UserAgent {
    fn name(&self) -> &'static str {
        "firehose-fanout user agent"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_firehose::error::BoxError> {
        let headers = ctx.request_mut().headers_mut();
        let ua = match headers.get("user-agent") {
            Some(v) => format!("{v} {}", self.0),
            None => self.0.clone(),
        };
        headers.insert("user-agent", ua);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(props: &[(&str, &str)]) -> Config {
        let mut all: HashMap<&str, &str> = props.iter().copied().collect();
        all.insert("region", "us-east-1");
        all.insert("delivery_streams", "s");
        Config::from_lookup(|k| all.get(k).map(|v| v.to_string())).expect("config")
    }

    #[test]
    fn which_proxy_applies() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let none = config(&[]);
        assert_eq!(proxy_choice(&none, env(&[])), None);
        // Either case; HTTPS_PROXY for an https endpoint, loopback always left out.
        let p = proxy_choice(&none, env(&[("https_proxy", "http://p:3128")])).expect("proxy");
        assert_eq!(
            (p.url.as_str(), p.source.as_str()),
            ("http://p:3128", "HTTPS_PROXY")
        );
        assert_eq!(p.no_proxy.as_deref(), Some(LOOPBACK));
        let p = proxy_choice(
            &none,
            env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", ".internal")]),
        )
        .expect("proxy");
        assert_eq!(p.no_proxy, Some(format!(".internal,{LOOPBACK}")));
        assert_eq!(
            proxy_choice(&none, env(&[("HTTP_PROXY", "http://p:1")])),
            None
        );
        let plain = config(&[("endpoint", "http://firehose.internal:80")]);
        let p = proxy_choice(&plain, env(&[("HTTP_PROXY", "http://p:1")])).expect("proxy");
        assert_eq!(p.source, "HTTP_PROXY");
        let p = proxy_choice(&none, env(&[("ALL_PROXY", "http://p:2")])).expect("proxy");
        assert_eq!(p.source, "ALL_PROXY");
        // The key wins, is taken as given, and `none` turns the environment's off.
        let key = config(&[("proxy", "http://u:pw@k:3128"), ("no_proxy", "10.0.0.0/8")]);
        let p = proxy_choice(&key, env(&[("HTTPS_PROXY", "http://p:1")])).expect("proxy");
        assert_eq!(p.url, "http://u:pw@k:3128");
        assert_eq!(p.no_proxy.as_deref(), Some("10.0.0.0/8"));
        assert!(!p.describe().contains("pw"), "{}", p.describe());
        let off = config(&[("proxy", "none")]);
        assert_eq!(
            proxy_choice(&off, env(&[("HTTPS_PROXY", "http://p:1")])),
            None
        );
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn fips_and_dual_stack_endpoints() {
        // (service, region, fips, dual-stack, endpoint the SDK resolves)
        let cases = [
            (
                "firehose",
                "eu-west-1",
                false,
                false,
                "https://firehose.eu-west-1.amazonaws.com",
            ),
            (
                "firehose",
                "us-east-1",
                true,
                false,
                "https://firehose-fips.us-east-1.amazonaws.com",
            ),
            (
                "firehose",
                "us-east-1",
                false,
                true,
                "https://firehose.us-east-1.api.aws",
            ),
            (
                "firehose",
                "us-east-1",
                true,
                true,
                "https://firehose-fips.us-east-1.api.aws",
            ),
            (
                "firehose",
                "us-gov-west-1",
                true,
                false,
                "https://firehose-fips.us-gov-west-1.amazonaws.com",
            ),
            (
                "sts",
                "eu-west-1",
                false,
                false,
                "https://sts.eu-west-1.amazonaws.com",
            ),
            (
                "sts",
                "us-east-1",
                true,
                false,
                "https://sts-fips.us-east-1.amazonaws.com",
            ),
            (
                "sts",
                "us-east-1",
                false,
                true,
                "https://sts.us-east-1.api.aws",
            ),
        ];
        for (service, region, fips, dual, want) in cases {
            let got = if service == "sts" {
                run(sts_endpoint(region, fips, dual, None))
            } else {
                run(firehose_endpoint(region, fips, dual, None))
            };
            assert_eq!(
                got.as_deref(),
                Ok(want),
                "{service} {region} fips={fips} dual={dual}"
            );
        }
        // An explicit endpoint wins (FIPS from the environment does not apply to it).
        let explicit = run(firehose_endpoint(
            "us-east-1",
            true,
            false,
            Some("http://127.0.0.1:4573"),
        ));
        assert_eq!(explicit.as_deref(), Ok("http://127.0.0.1:4573"));
    }
}
