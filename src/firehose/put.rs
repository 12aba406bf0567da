//! The Firehose client and one PutRecordBatch call, with its outcome sorted into what the
//! caller needs: accepted, retryable per record, or an error of the whole call.

use super::body::{self, Body};
use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_firehose::config::http::HttpResponse;
use aws_sdk_firehose::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_firehose::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_firehose::error::BoxError;
use aws_sdk_firehose::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;
use aws_sdk_firehose::Client;
use aws_smithy_types::body::SdkBody;
use std::sync::Arc;
use thiserror::Error;

/// Why one record of an accepted call was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub throttled: bool,
    pub code: String,
}

/// Why a whole call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// ServiceUnavailableException / HTTP 429: the stream is over its quota.
    #[error("throttled: {0}")]
    Throttled(String),
    /// Not worth retrying on this stream as it is (not found, access denied).
    #[error("{code}: {message}")]
    Stream { code: String, message: String },
    /// InvalidArgumentException: the request, or the stream's type, is refused.
    #[error("{code}: {message}")]
    Invalid { code: String, message: String },
    /// Network, timeout, 5xx: try again.
    #[error("{0}")]
    Transient(String),
}

/// Error codes that say the stream cannot take records as things stand.
const STREAM_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "InvalidKMSResourceException",
    "InvalidSourceException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
];

/// Sends one PutRecordBatch call with `body` (see [`super::body`]): the SDK serializes an
/// empty call whose body [`Streamed`] replaces before signing; the SDK signs it (with the
/// body's SHA-256, computed piece by piece), sends it as it is written, and reads the answer.
/// `Ok` holds one entry per Firehose record, in order: `None` when accepted.
pub async fn put_body(
    client: &Client,
    body: Body,
) -> Result<Vec<Option<RecordFailure>>, CallError> {
    let n = body.records();
    let result = client
        .put_record_batch()
        .delivery_stream_name("")
        .set_records(Some(Vec::new()))
        .customize()
        .interceptor(Streamed(Arc::new(body)))
        .send()
        .await;
    match result {
        Ok(out) => {
            let entries = out.request_responses();
            if entries.len() != n {
                return Err(CallError::Transient(format!(
                    "PutRecordBatch answered {} entries for {n} records",
                    entries.len(),
                )));
            }
            Ok(entries
                .iter()
                .map(|e| {
                    e.error_code().map(|code| RecordFailure {
                        throttled: code == "ServiceUnavailableException",
                        code: code.to_string(),
                    })
                })
                .collect())
        }
        Err(err) => Err(classify(err)),
    }
}

/// Puts the plugin's body in the request before it is signed.
#[derive(Debug)]
struct Streamed(Arc<Body>);

impl Intercept for Streamed {
    fn name(&self) -> &'static str {
        "firehose-fanout PutRecordBatch body"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The signer cannot read a streamed body: it signs this hash instead.
        cfg.interceptor_state()
            .store_put(PayloadSigningOverride::Precomputed(self.0.sha256_hex()));
        let req = context.request_mut();
        req.headers_mut()
            .insert("Content-Length", self.0.len().to_string());
        let b = Arc::clone(&self.0);
        *req.body_mut() = SdkBody::retryable(move || SdkBody::from_body_1_x(body::Stream::new(&b)));
        Ok(())
    }
}

fn classify(err: SdkError<PutRecordBatchError, HttpResponse>) -> CallError {
    let status = err.raw_response().map(|r| r.status().as_u16());
    if let SdkError::ServiceError(se) = &err {
        let e = se.err();
        let code = e.code().unwrap_or("").to_string();
        let message = e.message().unwrap_or("").to_string();
        if matches!(e, PutRecordBatchError::ServiceUnavailableException(_))
            || code == "ServiceUnavailableException"
            || code == "ThrottlingException"
            || status == Some(429)
        {
            return CallError::Throttled(if message.is_empty() { code } else { message });
        }
        if code == "InvalidArgumentException" {
            return CallError::Invalid { code, message };
        }
        if STREAM_CODES.contains(&code.as_str()) {
            return CallError::Stream { code, message };
        }
    }
    CallError::Transient(short_error(&err))
}

/// An SDK error in one line: `code: message` for service errors (the full context repeats
/// the raw response), the cause chain for the rest.
pub fn short_error<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            format!(
                "{}: {}",
                e.code().unwrap_or("service error"),
                e.message().unwrap_or("(no message)")
            )
        }
        // The cause chain only (the SDK's DisplayErrorContext also appends the whole error in Debug
        // form, raw responses included: a log line of several KB).
        other => cause_chain(other),
    }
}

/// An error and its causes in one line, a cause that repeats the line's end left out.
pub fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError;

    /// An error with a cause, like the SDK's credential and connector errors.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an error occurred while loading credentials")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn short_error_is_the_cause_chain_without_debug_dumps() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "IMDS is disabled");
        let err = SdkError::<PutRecordBatchError, ()>::timeout_error(Outer(io));
        let line = short_error(&err);
        assert_eq!(
            line,
            "request has timed out: an error occurred while loading credentials: IMDS is disabled"
        );
    }
}
