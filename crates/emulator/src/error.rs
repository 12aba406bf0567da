//! Errors of the Firehose API as they go on the wire.
//!
//! An AWS JSON 1.1 error is an HTTP status, an `x-amzn-ErrorType` header and
//! a body `{"__type": "<Code>", "message": "..."}`. The SDKs take the error
//! code from the header or from `__type`; the emulator sends both. The status
//! only decides whether the SDK retries on its own (500, 502, 503 and 504 are
//! retried as transient errors by the standard retry strategy).

use serde_json::json;

/// `InvalidArgumentException`.
pub const INVALID_ARGUMENT: &str = "InvalidArgumentException";
/// `ResourceNotFoundException`.
pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFoundException";
/// `ResourceInUseException`.
pub const RESOURCE_IN_USE: &str = "ResourceInUseException";
/// `ServiceUnavailableException`.
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailableException";
/// `SerializationException` (malformed request body).
pub const SERIALIZATION: &str = "SerializationException";
/// `UnknownOperationException`.
pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";
/// `AccessDeniedException` (IAM refused the action).
pub const ACCESS_DENIED: &str = "AccessDeniedException";
/// `InternalFailure`.
pub const INTERNAL_FAILURE: &str = "InternalFailure";

/// Message of a throttled request or record, as the real service words it.
pub const SLOW_DOWN: &str = "Slow down.";

/// An API error: HTTP status, error code and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Error code, sent as `__type` and `x-amzn-ErrorType`.
    pub code: String,
    /// Human readable message.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 `InvalidArgumentException`.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, INVALID_ARGUMENT, message)
    }

    /// 400 `ResourceNotFoundException`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(400, RESOURCE_NOT_FOUND, message)
    }

    /// 400 `ResourceNotFoundException` for an unknown stream.
    pub fn stream_not_found(name: &str) -> Self {
        Self::resource_not_found(format!(
            "Firehose {name} under account {} not found.",
            crate::config::ACCOUNT_ID
        ))
    }

    /// 400 `ResourceInUseException`.
    pub fn resource_in_use(message: impl Into<String>) -> Self {
        Self::new(400, RESOURCE_IN_USE, message)
    }

    /// 400 `SerializationException`.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, SERIALIZATION, message)
    }

    /// 400 `UnknownOperationException`.
    pub fn unknown_operation(target: &str) -> Self {
        Self::new(
            400,
            UNKNOWN_OPERATION,
            format!("Unknown operation {target:?}"),
        )
    }

    /// 400 `AccessDeniedException` for `firehose:<action>` on `stream` (all streams when
    /// `None`), worded as IAM words it.
    pub fn access_denied(action: &str, stream: Option<&str>) -> Self {
        let resource = match stream {
            Some(name) => crate::destination::stream_arn(name),
            None => "*".to_string(),
        };
        Self::new(
            400,
            ACCESS_DENIED,
            format!(
                "User: arn:aws:iam::{}:user/emulator is not authorized to perform: firehose:{action} on resource: {resource} because no identity-based policy allows the firehose:{action} action",
                crate::config::ACCOUNT_ID
            ),
        )
    }

    /// `ServiceUnavailableException` with the given status.
    pub fn service_unavailable(status: u16, message: impl Into<String>) -> Self {
        Self::new(status, SERVICE_UNAVAILABLE, message)
    }

    /// The JSON body of the error response.
    pub fn body(&self) -> Vec<u8> {
        json!({ "__type": self.code, "message": self.message })
            .to_string()
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_type_and_message() {
        let e = ApiError::stream_not_found("x");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["__type"], RESOURCE_NOT_FOUND);
        assert!(v["message"]
            .as_str()
            .unwrap()
            .contains("Firehose x under account"));
        assert_eq!(e.status, 400);
    }
}
