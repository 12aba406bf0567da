//! The Firehose SDK client: credentials, region, endpoint, TLS trust, timeouts.
//!
//! Credentials come from the default AWS chain (environment, shared profile or `profile`,
//! web identity / IRSA, ECS, instance metadata), optionally exchanged for a role's through
//! STS (`role_arn`, `external_id`, `sts_endpoint`, `role_session_name`).

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
    #[error("ca_file could not be used: {0}")]
    Tls(String),
}

/// The shared SDK settings: region, credentials chain (with `profile`), TLS trust.
async fn base_config(cfg: &Config) -> Result<SdkConfig, ClientError> {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(cfg.region.clone()));
    if let Some(profile) = &cfg.credentials.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(pem) = &cfg.ca_pem {
        use aws_smithy_http_client::tls;
        let ctx = tls::TlsContext::builder()
            .with_trust_store(tls::TrustStore::default().with_pem_certificate(pem.clone()))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(ctx)
            .build_https();
        loader = loader.http_client(http);
    }
    Ok(loader.load().await)
}

/// The two Firehose clients of an instance.
#[derive(Clone, Debug)]
pub struct Clients {
    /// PutRecordBatch: no SDK-level retries, the plugin retries per record itself.
    pub data: Client,
    /// List/DescribeDeliveryStream: the SDK's standard retries with backoff, so one
    /// throttled or refused call does not abort a discovery or an aggregation decision.
    pub control: Client,
    /// What both sign with: the default chain (with `profile`), or the role's provider
    /// with `role_arn`. `firehose-fanout check` resolves it to say which source won.
    pub credentials: Option<SharedCredentialsProvider>,
}

/// Control-plane attempts per call.
const CONTROL_ATTEMPTS: u32 = 3;

/// Builds the Firehose clients.
pub async fn build(cfg: &Config) -> Result<Clients, ClientError> {
    let base = base_config(cfg).await?;
    let mut builder = aws_sdk_firehose::config::Builder::from(&base)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5).min(cfg.request_timeout))
                .operation_attempt_timeout(cfg.request_timeout)
                .operation_timeout(cfg.request_timeout)
                .build(),
        );
    if let Some(ep) = &cfg.endpoint {
        builder = builder.endpoint_url(ep);
    }
    let mut credentials = base.credentials_provider();
    if let Some(role) = &cfg.credentials.role_arn {
        let c = &cfg.credentials;
        let mut sts = base.to_builder();
        if let Some(ep) = &c.sts_endpoint {
            sts = sts.endpoint_url(ep);
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
        credentials,
    })
}
