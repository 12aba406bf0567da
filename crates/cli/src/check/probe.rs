//! What AWS says about one output's settings, asked with the plugin's own clients and calls:
//! the credentials (and which source of the chain gave them), ListDeliveryStreams, stream
//! discovery by prefix, each stream's DescribeDeliveryStream, and a PutRecordBatch that
//! carries no record.

use std::time::Duration;

use aws_sdk_firehose::config::{Credentials, ProvideCredentials};
use aws_sdk_firehose::error::ProvideErrorMetadata;
use firehose_fanout::config::Config;
use firehose_fanout::firehose::discover::{self, Described};
use firehose_fanout::firehose::put::{self, CallError};
use firehose_fanout::firehose::{client, client::Clients};

/// Longest the credentials chain may take (instance metadata and STS answer in seconds).
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(30);

/// What a call said about one IAM action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Allowed; how that is known.
    Allowed(String),
    /// `AccessDeniedException`, with its message.
    Denied(String),
    /// The call failed for another reason, so it cannot be told.
    Failed(String),
    /// Not asked, and why.
    NotChecked(String),
}

impl Access {
    fn from_error(text: String) -> Access {
        if text.contains("AccessDenied") {
            Access::Denied(text)
        } else {
            Access::Failed(text)
        }
    }
}

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    /// The source of the chain that gave them, in words.
    pub source: String,
    /// The access key id's last four characters, `…ABCD` (never more).
    pub key_hint: String,
}

/// One stream, as the plugin would use it.
#[derive(Debug, Clone)]
pub struct StreamProbe {
    pub name: String,
    /// Named in `delivery_streams` (else found by `delivery_stream_prefix`).
    pub configured: bool,
    /// DescribeDeliveryStream: `Ok(None)` is "does not exist".
    pub described: Result<Option<Described>, String>,
    pub describe: Access,
    pub put: Access,
}

/// Everything asked about one output.
#[derive(Debug, Clone)]
pub struct Probe {
    pub credentials: Result<Creds, String>,
    pub list: Access,
    /// With `delivery_stream_prefix`: how many ACTIVE streams discovery found, or its error.
    pub discovery: Option<Result<usize, String>>,
    pub streams: Vec<StreamProbe>,
}

impl Probe {
    /// Nothing could be asked: every action and stream says why.
    fn not_asked(cfg: &Config, credentials: Result<Creds, String>, why: &str) -> Probe {
        Probe {
            credentials,
            list: Access::NotChecked(why.to_string()),
            discovery: None,
            streams: cfg
                .streams
                .iter()
                .map(|name| StreamProbe {
                    name: name.clone(),
                    configured: true,
                    described: Err(why.to_string()),
                    describe: Access::NotChecked(why.to_string()),
                    put: Access::NotChecked(why.to_string()),
                })
                .collect(),
        }
    }
}

/// Asks AWS (or the endpoint) about everything the plugin will need.
pub async fn probe(cfg: &Config) -> Probe {
    let clients = match client::build(cfg).await {
        Ok(c) => c,
        Err(e) => return Probe::not_asked(cfg, Err(e.to_string()), "no client"),
    };
    let credentials = credentials(cfg, &clients).await;
    if credentials.is_err() {
        return Probe::not_asked(cfg, credentials, "no credentials");
    }
    let list = match clients
        .control
        .list_delivery_streams()
        .limit(1)
        .send()
        .await
    {
        Ok(_) => Access::Allowed("answered".into()),
        Err(e) if e.code().is_some_and(|c| c.contains("AccessDenied")) => {
            Access::Denied(put::short_error(&e))
        }
        Err(e) => Access::Failed(put::short_error(&e)),
    };
    let mut streams: Vec<(String, bool, Option<Described>)> = cfg
        .streams
        .iter()
        .map(|n| (n.clone(), true, None))
        .collect();
    // The plugin's own discovery: what it would find at start.
    let discovery = match &cfg.stream_prefix {
        None => None,
        Some(prefix) => Some(discover::discover(&clients.control, prefix, &[]).await.map(
            |found| {
                let n = found.len();
                for (name, d) in found {
                    match streams.iter_mut().find(|(s, _, _)| *s == name) {
                        Some(known) => known.2 = d,
                        None => streams.push((name, false, d)),
                    }
                }
                n
            },
        )),
    };
    let mut probes = Vec::with_capacity(streams.len());
    for (name, configured, described) in streams {
        let described = match described {
            Some(d) => Ok(Some(d)),
            None => discover::describe(&clients.control, &name).await,
        };
        let describe = match &described {
            Ok(_) => Access::Allowed("answered".into()),
            Err(e) => Access::from_error(e.clone()),
        };
        // Firehose may check the call's members before the stream's existence: an answer
        // about a stream that does not exist would say nothing about the permission.
        let put = if matches!(described, Ok(None)) {
            Access::NotChecked("the stream does not exist".into())
        } else {
            dry_put(&clients, &name).await
        };
        probes.push(StreamProbe {
            name,
            configured,
            described,
            describe,
            put,
        });
    }
    Probe {
        credentials,
        list,
        discovery,
        streams: probes,
    }
}

/// PutRecordBatch with no record: Firehose has no dry run, and a call without records
/// cannot deliver anything. `AccessDeniedException` is read as denied; a validation error
/// as allowed, on the assumption that IAM is evaluated before the request's members are (the
/// emulator answers in that order).
async fn dry_put(clients: &Clients, stream: &str) -> Access {
    const NOTHING: &str = "nothing was sent";
    let empty = std::sync::Arc::new(firehose_fanout::batch::Records::default());
    let body = firehose_fanout::firehose::body::Body::new(stream, Vec::new(), empty, Vec::new());
    match put::put_body(&clients.data, body).await {
        Ok(_) => Access::Allowed(format!("a call with no records was accepted; {NOTHING}")),
        Err(CallError::Invalid { code, .. }) => Access::Allowed(format!(
            "a call with no records was refused as invalid ({code}); {NOTHING}"
        )),
        Err(CallError::Throttled(_)) => {
            Access::Allowed(format!("a call with no records was throttled; {NOTHING}"))
        }
        Err(CallError::Transient(text))
            if text.starts_with("ValidationException")
                || text.starts_with("SerializationException") =>
        {
            Access::Allowed(format!(
                "a call with no records was refused as invalid; {NOTHING}"
            ))
        }
        Err(e) => Access::from_error(e.to_string()),
    }
}

/// Resolves the credentials through the plugin's own chain, and says which source won.
async fn credentials(cfg: &Config, clients: &Clients) -> Result<Creds, String> {
    let Some(role) = &cfg.credentials.role_arn else {
        let (name, key_hint) = resolve(clients).await?;
        return Ok(Creds {
            source: source_words(&name, cfg),
            key_hint,
        });
    };
    // The chain's own credentials first, then the role's through STS.
    let mut base = cfg.clone();
    base.credentials.role_arn = None;
    let base_clients = client::build(&base).await.map_err(|e| e.to_string())?;
    let (base_name, _) = resolve(&base_clients).await?;
    let (_, key_hint) = resolve(clients)
        .await
        .map_err(|e| format!("assuming role {role} through STS failed: {e}"))?;
    Ok(Creds {
        source: format!(
            "role {role}, assumed through STS with {}",
            source_words(&base_name, cfg)
        ),
        key_hint,
    })
}

/// The credentials of a client: the name of the provider that gave them, the key hint.
async fn resolve(clients: &Clients) -> Result<(String, String), String> {
    let provider = clients
        .credentials
        .clone()
        .ok_or_else(|| "no credentials provider is configured".to_string())?;
    let creds = tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials())
        .await
        .map_err(|_| {
            format!(
                "resolving credentials took longer than {} s",
                CREDENTIALS_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| put::cause_chain(&e))?;
    Ok((provider_name(&creds), key_hint(creds.access_key_id())))
}

/// The name of the provider that made `creds`. The SDK keeps it private and shows it only
/// in the (redacting) `Debug` form, so it is read from there.
fn provider_name(creds: &Credentials) -> String {
    let shown = format!("{creds:?}");
    shown
        .split_once("provider_name: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| "an unnamed provider".into())
}

fn key_hint(access_key_id: &str) -> String {
    let chars: Vec<char> = access_key_id.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// A provider name of aws-config's chain, in words.
fn source_words(provider: &str, cfg: &Config) -> String {
    let profile = cfg
        .credentials
        .profile
        .clone()
        .or_else(|| std::env::var("AWS_PROFILE").ok())
        .unwrap_or_else(|| "default".into());
    match provider {
        "EnvironmentVariable" => {
            "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)".into()
        }
        "ProfileFile" => format!("profile '{profile}' of the shared config/credentials files"),
        "WebIdentityToken" => {
            "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN: IRSA)".into()
        }
        "EcsContainer" => {
            "container credentials endpoint (ECS task role or EKS Pod Identity)".into()
        }
        "IMDSv2" => "EC2 instance metadata (the instance profile's role)".into(),
        "SSO" => format!("IAM Identity Center (SSO) of profile '{profile}'"),
        "CredentialProcess" => format!("credential_process of profile '{profile}'"),
        "AssumeRoleProvider" => format!("a role assumed through STS by profile '{profile}'"),
        other => format!("the {other} provider"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_provider_name_and_shows_four_characters_of_the_key() {
        let c = Credentials::new(
            "AKIDEXAMPLE1234",
            "secret-never-shown",
            None,
            None,
            "EnvironmentVariable",
        );
        assert_eq!(provider_name(&c), "EnvironmentVariable");
        assert_eq!(key_hint(c.access_key_id()), "…1234");
        assert_eq!(key_hint("ab"), "…ab");
    }

    #[test]
    fn access_denied_is_told_from_other_failures() {
        assert!(matches!(
            Access::from_error("AccessDeniedException: no".into()),
            Access::Denied(_)
        ));
        assert!(matches!(
            Access::from_error("dispatch failure: connection refused".into()),
            Access::Failed(_)
        ));
    }
}
