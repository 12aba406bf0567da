//! The Firehose SDK client: credentials, region, endpoint, TLS trust, timeouts.
//!
//! Credentials come from the default AWS chain (environment, shared profile or `profile`,
//! web identity / IRSA, ECS, instance metadata), optionally exchanged for a role's through
//! STS (`role_arn`, `external_id`, `sts_endpoint`, `role_session_name`).

use super::reach::{self, ProxyChoice, UserAgent};
use crate::config::Config;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_firehose::config::SharedCredentialsProvider;
use aws_sdk_firehose::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    /// `ca_file` or `proxy` could not be used (the message says which).
    #[error("{0}")]
    Tls(String),
}

/// The shared SDK settings: region, credentials chain (with `profile`), the HTTP client
/// (TLS trust, proxy), FIPS / dual-stack, the application name.
async fn base_config(cfg: &Config, proxy: Option<&ProxyChoice>) -> Result<SdkConfig, ClientError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .app_name(reach::app_name())
        .http_client(reach::http_client(cfg.ca_pem.as_deref(), proxy).map_err(ClientError::Tls)?);
    if let Some(profile) = &cfg.credentials.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(f) = cfg.network.use_fips {
        loader = loader.use_fips(f);
    }
    if let Some(d) = cfg.network.use_dual_stack {
        loader = loader.use_dual_stack(d);
    }
    Ok(loader.load().await)
}

/// Where the clients' calls go, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub firehose: String,
    /// With `role_arn`.
    pub sts: Option<String>,
    pub proxy: Option<ProxyChoice>,
}

impl Reach {
    pub fn describe(&self) -> String {
        let mut s = format!("Firehose endpoint {}", self.firehose);
        if let Some(sts) = &self.sts {
            s.push_str(&format!(", STS endpoint {sts}"));
        }
        s.push_str(&match &self.proxy {
            Some(p) => format!(", {}", p.describe()),
            None => ", no proxy".into(),
        });
        s
    }
}

/// The two Firehose clients of an instance.
#[derive(Clone, Debug)]
pub struct Clients {
    /// PutRecordBatch: no SDK-level retries, the plugin retries per record itself.
    pub data: Client,
    /// List/DescribeDeliveryStream: the SDK's standard retries with backoff, so one
    /// throttled or refused call does not abort a discovery or an aggregation decision.
    pub control: Client,
    pub reach: Reach,
    /// What both sign with: the default chain (with `profile`), or the role's provider
    /// with `role_arn`. `firehose-fanout check` resolves it to say which source won.
    pub credentials: Option<SharedCredentialsProvider>,
}

/// Control-plane attempts per call.
const CONTROL_ATTEMPTS: u32 = 3;

/// Builds the Firehose clients.
pub async fn build(cfg: &Config) -> Result<Clients, ClientError> {
    let proxy = reach::proxy_choice(cfg, |k| std::env::var(k).ok());
    let base = base_config(cfg, proxy.as_ref()).await?;
    let (fips, dual) = (
        base.use_fips().unwrap_or(false),
        base.use_dual_stack().unwrap_or(false),
    );
    let firehose = reach::firehose_endpoint(&cfg.region, fips, dual, cfg.endpoint.as_deref())
        .await
        .unwrap_or_else(|e| format!("(not resolved: {e})"));
    let sts = match &cfg.credentials.role_arn {
        None => None,
        Some(_) => Some(
            reach::sts_endpoint(
                &cfg.region,
                fips,
                dual,
                cfg.credentials.sts_endpoint.as_deref(),
            )
            .await
            .unwrap_or_else(|e| format!("(not resolved: {e})")),
        ),
    };
    let mut builder = aws_sdk_firehose::config::Builder::from(&base)
        .interceptor(UserAgent::new(cfg.network.user_agent_suffix.as_deref()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5).min(cfg.request_timeout))
                .operation_attempt_timeout(cfg.request_timeout)
                .operation_timeout(cfg.request_timeout)
                .build(),
        );
    if let Some(ep) = &cfg.endpoint {
        // Used as given: FIPS / dual-stack from the environment must not turn it into an
        // error on every call (the SDK refuses a custom endpoint with FIPS).
        builder = builder
            .endpoint_url(ep)
            .use_fips(false)
            .use_dual_stack(false);
    }
    let mut credentials = base.credentials_provider();
    if let Some(role) = &cfg.credentials.role_arn {
        let c = &cfg.credentials;
        let mut sts = base.to_builder();
        if let Some(ep) = &c.sts_endpoint {
            sts = sts.endpoint_url(ep).use_fips(false).use_dual_stack(false);
        }
        let mut assume = AssumeRoleProvider::builder(role)
            .session_name(&c.role_session_name)
            .configure(&sts.build());
        if let Some(id) = &c.external_id {
            assume = assume.external_id(id);
        }
        // Resolved lazily and cached until shortly before expiry.
        let assume = SharedCredentialsProvider::new(assume.build().await);
        builder = builder.credentials_provider(assume.clone());
        credentials = Some(assume);
    }
    let data = builder.build();
    let control = data
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(CONTROL_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5).min(cfg.request_timeout))
                .operation_attempt_timeout(cfg.request_timeout)
                .operation_timeout(cfg.request_timeout * CONTROL_ATTEMPTS + Duration::from_secs(2))
                .build(),
        )
        .build();
    Ok(Clients {
        data: Client::from_conf(data),
        control: Client::from_conf(control),
        reach: Reach {
            firehose,
            sts,
            proxy,
        },
        credentials,
    })
}
