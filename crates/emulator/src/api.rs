//! The Firehose API (AWS JSON 1.1): `X-Amz-Target: Firehose_20150804.<Op>`
//! and a JSON body in, a JSON body or an error out.
//!
//! Operations: `PutRecord`, `PutRecordBatch`, `CreateDeliveryStream`,
//! `DeleteDeliveryStream`, `DescribeDeliveryStream`, `ListDeliveryStreams`.
//! The request signature is checked only with `EmulatorConfig::signing_secret`
//! (before everything below; see [`crate::sigv4`]).
//!
//! # Processing order of a request
//! 1. Parse: unknown operation → 400 `UnknownOperationException`; malformed
//!    JSON or base64 → 400 `SerializationException`; a missing required
//!    member → 400 `InvalidArgumentException`.
//! 2. Fault injection, global settings first, then the stream's: latency
//!    is added; a denied action (`deny_actions`) answers 400
//!    `AccessDeniedException`; an outage answers 503 `ServiceUnavailableException`; a
//!    reset drops the connection; an injected failure answers with its
//!    status and error type.
//! 3. Puts only: API limits (500 records, 1,000 KiB per record, 4 MiB per
//!    batch, at least one record) → 400 `InvalidArgumentException`; unknown
//!    or non-ACTIVE stream → 400 `ResourceNotFoundException`.
//! 4. Puts only: the request quota, then (whole-request mode) the record and
//!    byte quotas → `ServiceUnavailableException` "Slow down." with
//!    [`EmulatorConfig::throttle_status`](crate::EmulatorConfig::throttle_status).
//! 5. Puts only, record by record: per-record quota (once exceeded, every
//!    later record of the request fails with `ServiceUnavailableException`),
//!    then injected record failures (`InternalFailure` by default), then
//!    acceptance. A `PutRecord` whose record fails gets the failure as a
//!    request error (500, or the throttle status when throttled).

use std::sync::Arc;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::{validate_stream_name, StreamSpec};
use crate::destination::DestinationSpec;
use crate::error::ApiError;
use crate::faults::RequestFault;
use crate::state::{RecordOutcome, Shared};

/// Prefix of every `X-Amz-Target` value.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// Base64 as the SDKs send it (standard alphabet), padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The answer to an API request.
#[derive(Debug)]
pub enum ApiReply {
    /// 200 with this JSON body.
    Ok(Vec<u8>),
    /// An error response.
    Err(ApiError),
    /// Close the connection without answering.
    Reset,
}

impl From<Result<Vec<u8>, ApiError>> for ApiReply {
    fn from(r: Result<Vec<u8>, ApiError>) -> Self {
        match r {
            Ok(body) => ApiReply::Ok(body),
            Err(e) => ApiReply::Err(e),
        }
    }
}

/// The operations the emulator implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    PutRecord,
    PutRecordBatch,
    CreateDeliveryStream,
    DeleteDeliveryStream,
    DescribeDeliveryStream,
    ListDeliveryStreams,
}

impl Operation {
    fn from_target(target: &str) -> Option<Self> {
        Some(match target.strip_prefix(TARGET_PREFIX)? {
            "PutRecord" => Operation::PutRecord,
            "PutRecordBatch" => Operation::PutRecordBatch,
            "CreateDeliveryStream" => Operation::CreateDeliveryStream,
            "DeleteDeliveryStream" => Operation::DeleteDeliveryStream,
            "DescribeDeliveryStream" => Operation::DescribeDeliveryStream,
            "ListDeliveryStreams" => Operation::ListDeliveryStreams,
            _ => return None,
        })
    }
}

// ----- wire shapes ---------------------------------------------------------

#[derive(Deserialize)]
struct RecordInput {
    #[serde(rename = "Data")]
    data: Option<String>,
}

#[derive(Deserialize)]
struct PutRecordInput {
    #[serde(rename = "DeliveryStreamName")]
    name: Option<String>,
    #[serde(rename = "Record")]
    record: Option<RecordInput>,
}

#[derive(Deserialize)]
struct PutRecordBatchInput {
    #[serde(rename = "DeliveryStreamName")]
    name: Option<String>,
    #[serde(rename = "Records")]
    records: Option<Vec<RecordInput>>,
}

#[derive(Deserialize)]
struct CreateInput {
    #[serde(rename = "DeliveryStreamName")]
    name: Option<String>,
    #[serde(rename = "DeliveryStreamType")]
    stream_type: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

#[derive(Deserialize)]
struct DeleteInput {
    #[serde(rename = "DeliveryStreamName")]
    name: Option<String>,
    #[serde(rename = "AllowForceDelete")]
    allow_force_delete: Option<bool>,
}

#[derive(Deserialize)]
struct DescribeInput {
    #[serde(rename = "DeliveryStreamName")]
    name: Option<String>,
}

#[derive(Deserialize)]
struct ListInput {
    #[serde(rename = "Limit")]
    limit: Option<i64>,
    #[serde(rename = "DeliveryStreamType")]
    stream_type: Option<String>,
    #[serde(rename = "ExclusiveStartDeliveryStreamName")]
    exclusive_start: Option<String>,
}

#[derive(Serialize)]
struct PutRecordBatchOutput {
    #[serde(rename = "FailedPutCount")]
    failed_put_count: usize,
    #[serde(rename = "Encrypted")]
    encrypted: bool,
    #[serde(rename = "RequestResponses")]
    request_responses: Vec<ResponseEntry>,
}

#[derive(Serialize)]
struct ResponseEntry {
    #[serde(rename = "RecordId", skip_serializing_if = "Option::is_none")]
    record_id: Option<String>,
    #[serde(rename = "ErrorCode", skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    #[serde(rename = "ErrorMessage", skip_serializing_if = "Option::is_none")]
    error_message: Option<String>,
}

/// A parsed request, ready to run.
enum Request {
    Put {
        name: String,
        records: Vec<Vec<u8>>,
        single: bool,
    },
    Create {
        spec: Box<StreamSpec>,
        stream_type: String,
    },
    Delete {
        name: String,
        force: bool,
    },
    Describe {
        name: String,
    },
    List {
        limit: usize,
        stream_type: Option<String>,
        start: Option<String>,
    },
}

impl Request {
    /// The stream the request is about, for per-stream faults.
    fn stream(&self) -> Option<&str> {
        match self {
            Request::Put { name, .. }
            | Request::Delete { name, .. }
            | Request::Describe { name } => Some(name),
            Request::Create { spec, .. } => Some(&spec.name),
            Request::List { .. } => None,
        }
    }
}

// ----- entry point -----------------------------------------------------------

/// Handles one API request: `target` is the `X-Amz-Target` header, `body`
/// the raw request body.
pub(crate) async fn handle(shared: &Arc<Shared>, target: Option<&str>, body: &[u8]) -> ApiReply {
    shared.lock().count_request();
    let request = match parse(target, body) {
        Ok(r) => r,
        Err(e) => {
            shared.lock().count_rejected();
            return ApiReply::Err(e);
        }
    };
    let action = target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default();
    let preflight = shared.lock().preflight(
        action,
        request.stream(),
        matches!(request, Request::Put { .. }),
    );
    if !preflight.latency.is_zero() {
        tokio::time::sleep(preflight.latency).await;
    }
    match preflight.fault {
        Some(RequestFault::Reset) => return ApiReply::Reset,
        Some(RequestFault::Fail(e)) => return ApiReply::Err(e),
        None => {}
    }
    let is_put = matches!(request, Request::Put { .. });
    let result = execute(shared, request);
    if result.is_err() && !is_put {
        // Puts count their own rejections, per stream.
        shared.lock().count_rejected();
    }
    result.into()
}

fn execute(shared: &Arc<Shared>, request: Request) -> Result<Vec<u8>, ApiError> {
    match request {
        Request::Put {
            name,
            records,
            single,
        } => {
            let (outcomes, wake) = {
                let mut inner = shared.lock();
                let outcomes = inner.put(&name, records, single)?;
                (outcomes, inner.take_wake_flusher())
            };
            if wake {
                shared.output_wakeup.notify_one();
            }
            Ok(put_output(outcomes, single))
        }
        Request::Create { spec, stream_type } => {
            let arn = shared.lock().api_create(*spec, stream_type)?;
            Ok(to_body(&json!({ "DeliveryStreamARN": arn })))
        }
        Request::Delete { name, force } => {
            shared.lock().api_delete(&name, force)?;
            Ok(b"{}".to_vec())
        }
        Request::Describe { name } => Ok(to_body(&shared.lock().api_describe(&name)?)),
        Request::List {
            limit,
            stream_type,
            start,
        } => {
            let (names, more) =
                shared
                    .lock()
                    .api_list(limit, stream_type.as_deref(), start.as_deref());
            Ok(to_body(&json!({
                "DeliveryStreamNames": names,
                "HasMoreDeliveryStreams": more,
            })))
        }
    }
}

fn put_output(outcomes: Vec<RecordOutcome>, single: bool) -> Vec<u8> {
    if single {
        // Failures of a single record were turned into request errors.
        let id = match outcomes.into_iter().next() {
            Some(RecordOutcome::Accepted(id)) => id,
            _ => String::new(),
        };
        return to_body(&json!({ "RecordId": id, "Encrypted": false }));
    }
    let mut failed = 0;
    let entries = outcomes
        .into_iter()
        .map(|o| match o {
            RecordOutcome::Accepted(id) => ResponseEntry {
                record_id: Some(id),
                error_code: None,
                error_message: None,
            },
            RecordOutcome::Failed(code, message) => {
                failed += 1;
                ResponseEntry {
                    record_id: None,
                    error_code: Some(code),
                    error_message: Some(message),
                }
            }
        })
        .collect();
    to_body(&PutRecordBatchOutput {
        failed_put_count: failed,
        encrypted: false,
        request_responses: entries,
    })
}

fn to_body<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structures cannot fail; fall back to an empty
    // object rather than panic.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

// ----- parsing ----------------------------------------------------------------

fn parse(target: Option<&str>, body: &[u8]) -> Result<Request, ApiError> {
    let target = target.unwrap_or("");
    let op = Operation::from_target(target).ok_or_else(|| ApiError::unknown_operation(target))?;
    match op {
        Operation::PutRecord => {
            let input: PutRecordInput = parse_body(body)?;
            let name = required_name(input.name)?;
            let record = input.record.ok_or_else(|| missing("Record"))?;
            let data = decode_data(record, "record.data")?;
            Ok(Request::Put {
                name,
                records: vec![data],
                single: true,
            })
        }
        Operation::PutRecordBatch => {
            let input: PutRecordBatchInput = parse_body(body)?;
            let name = required_name(input.name)?;
            let records = input.records.ok_or_else(|| missing("Records"))?;
            let records = records
                .into_iter()
                .enumerate()
                .map(|(i, r)| decode_data(r, &format!("records.{}.member.data", i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Request::Put {
                name,
                records,
                single: false,
            })
        }
        Operation::CreateDeliveryStream => {
            let input: CreateInput = parse_body(body)?;
            let name = required_name(input.name)?;
            validate_stream_name(&name).map_err(ApiError::invalid_argument)?;
            let stream_type = input.stream_type.unwrap_or_else(|| "DirectPut".into());
            if !matches!(
                stream_type.as_str(),
                "DirectPut" | "KinesisStreamAsSource" | "MSKAsSource" | "DatabaseAsSource"
            ) {
                return Err(ApiError::invalid_argument(format!(
                    "Unknown DeliveryStreamType {stream_type:?}"
                )));
            }
            let destination = parse_destination(&input.rest)?;
            Ok(Request::Create {
                spec: Box::new(StreamSpec::new(name).with_destination(destination)),
                stream_type,
            })
        }
        Operation::DeleteDeliveryStream => {
            let input: DeleteInput = parse_body(body)?;
            Ok(Request::Delete {
                name: required_name(input.name)?,
                force: input.allow_force_delete.unwrap_or(false),
            })
        }
        Operation::DescribeDeliveryStream => {
            let input: DescribeInput = parse_body(body)?;
            Ok(Request::Describe {
                name: required_name(input.name)?,
            })
        }
        Operation::ListDeliveryStreams => {
            let input: ListInput = parse_body(body)?;
            let limit = input.limit.unwrap_or(10);
            if !(1..=10_000).contains(&limit) {
                return Err(ApiError::invalid_argument(format!(
                    "Limit must be between 1 and 10000, got {limit}"
                )));
            }
            Ok(Request::List {
                limit: limit as usize,
                stream_type: input.stream_type,
                start: input.exclusive_start,
            })
        }
    }
}

/// Parses a JSON body; an empty body counts as `{}`.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("Malformed request body: {e}")))
}

fn missing(member: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: \
         Member must not be null"
    ))
}

fn required_name(name: Option<String>) -> Result<String, ApiError> {
    name.ok_or_else(|| missing("deliveryStreamName"))
}

fn decode_data(record: RecordInput, at: &str) -> Result<Vec<u8>, ApiError> {
    let data = record.data.ok_or_else(|| missing(at))?;
    BASE64
        .decode(data.as_bytes())
        .map_err(|e| ApiError::serialization(format!("Value at '{at}' is not valid base64: {e}")))
}

/// Picks the destination out of a `CreateDeliveryStream` request.
fn parse_destination(rest: &Map<String, Value>) -> Result<DestinationSpec, ApiError> {
    let given: Vec<(&String, &Value)> = rest
        .iter()
        .filter(|(k, v)| k.ends_with("DestinationConfiguration") && !v.is_null())
        .collect();
    match given.as_slice() {
        [] => Ok(DestinationSpec::default()),
        [(key, value)] => match key.as_str() {
            "ExtendedS3DestinationConfiguration" | "S3DestinationConfiguration" => {
                DestinationSpec::from_aws_configuration(value).map_err(ApiError::invalid_argument)
            }
            other => Err(ApiError::invalid_argument(format!(
                "{other} is not supported by the emulator; use ExtendedS3DestinationConfiguration"
            ))),
        },
        _ => Err(ApiError::invalid_argument(
            "Only one destination configuration may be specified.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{SERIALIZATION, UNKNOWN_OPERATION};

    fn target(op: &str) -> String {
        format!("{TARGET_PREFIX}{op}")
    }

    #[test]
    fn unknown_and_missing_operation() {
        for t in [
            None,
            Some("Firehose_20150804.Nope"),
            Some("Kinesis_20131202.PutRecord"),
        ] {
            match parse(t, b"{}") {
                Err(e) => assert_eq!(e.code, UNKNOWN_OPERATION),
                Ok(_) => panic!("accepted {t:?}"),
            }
        }
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b"{"[..],
            b"[1,2]",
            b"{\"DeliveryStreamName\": 5}",
            b"\xff\xfe",
        ] {
            match parse(Some(&target("DescribeDeliveryStream")), body) {
                Err(e) => assert_eq!(e.code, SERIALIZATION, "{body:?}"),
                Ok(_) => panic!("accepted {body:?}"),
            }
        }
        let bad_b64 = br#"{"DeliveryStreamName":"a","Records":[{"Data":"***"}]}"#;
        assert!(matches!(
            parse(Some(&target("PutRecordBatch")), bad_b64),
            Err(e) if e.code == SERIALIZATION
        ));
    }

    #[test]
    fn decodes_records_with_or_without_padding() {
        let body = br#"{"DeliveryStreamName":"a","Records":[{"Data":"aGk="},{"Data":"aGk"}]}"#;
        match parse(Some(&target("PutRecordBatch")), body) {
            Ok(Request::Put { records, .. }) => assert_eq!(records, vec![b"hi".to_vec(); 2]),
            _ => panic!("not parsed"),
        }
    }

    #[test]
    fn create_destinations() {
        let two = br#"{"DeliveryStreamName":"a","S3DestinationConfiguration":{"BucketARN":"arn:aws:s3:::b","RoleARN":"r"},
            "ExtendedS3DestinationConfiguration":{"BucketARN":"arn:aws:s3:::b","RoleARN":"r"}}"#;
        assert!(parse(Some(&target("CreateDeliveryStream")), two).is_err());
        let http = br#"{"DeliveryStreamName":"a","HttpEndpointDestinationConfiguration":{}}"#;
        assert!(parse(Some(&target("CreateDeliveryStream")), http).is_err());
        let none = br#"{"DeliveryStreamName":"a"}"#;
        assert!(parse(Some(&target("CreateDeliveryStream")), none).is_ok());
        let bad_name = br#"{"DeliveryStreamName":"a b"}"#;
        assert!(parse(Some(&target("CreateDeliveryStream")), bad_name).is_err());
    }
}
