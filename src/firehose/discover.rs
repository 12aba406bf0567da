//! What Firehose says about delivery streams: ListDeliveryStreams (every page, by name
//! prefix) and DescribeDeliveryStream (ACTIVE or not, and whether records may be packed
//! together). Data only: the instance's background tasks act on it.

use crate::firehose::put::short_error;
use crate::schedule::Packing;
use aws_sdk_firehose::error::SdkError;
use aws_sdk_firehose::types::{
    DeliveryStreamStatus, DestinationDescription, ExtendedS3DestinationDescription, Processor,
    ProcessorType,
};

/// What a DescribeDeliveryStream says that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub active: bool,
    /// `DeliveryStreamStatus` as Firehose spells it (`ACTIVE`, `CREATING`, ...).
    pub status: String,
    /// The destinations, in words (`S3 arn:aws:s3:::bucket`, `HTTP endpoint https://...`).
    pub destination: String,
    /// What the destination does with each Firehose record: decides the packing.
    pub reader: Reader,
}

/// What the destination does with each Firehose record, which decides whether several
/// log records may share one (`aggregation auto`), and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// S3 without record processing: an aggregate of lines is what it writes anyway.
    PlainS3,
    /// Dynamic partitioning that first splits each record again (the `RecordDeAggregation`
    /// processor): JSON objects, or lines (`DELIMITED` with a newline).
    Deaggregates { json: bool },
    /// A processor (Lambda, or deaggregation on another delimiter) sees each record.
    Processor,
    /// Dynamic partitioning reads each record's keys, with no deaggregation first.
    DynamicPartitioning,
    /// Not S3 (HTTP endpoint, OpenSearch, Splunk, ...): the receiver sees each record.
    NotS3,
    /// No destination in the answer.
    NoDestination,
    /// The answer could not be read in full.
    Unreadable,
}

/// Sub-records `RecordDeAggregation` splits one Firehose record into, at most.
pub const MAX_SUB_RECORDS: usize = 500;

impl Reader {
    /// How to pack log records for this reader: `raw_text` records (`log_key`) are not JSON
    /// objects, and compressed aggregates cannot be split again.
    pub fn packing(self, raw_text: bool, compressed: bool) -> Packing {
        match self {
            Reader::PlainS3 => Packing::Aggregate { max_members: None },
            Reader::Deaggregates { json } if !(compressed || json && raw_text) => {
                Packing::Aggregate {
                    max_members: Some(MAX_SUB_RECORDS),
                }
            }
            _ => Packing::Single,
        }
    }

    /// Why, in words.
    pub fn reason(self) -> &'static str {
        match self {
            Reader::PlainS3 => {
                "S3 destination without record processing or dynamic partitioning: the reader cannot tell"
            }
            Reader::Deaggregates { json: true } => {
                "dynamic partitioning that splits JSON records again (RecordDeAggregation)"
            }
            Reader::Deaggregates { json: false } => {
                "dynamic partitioning that splits lines again (RecordDeAggregation)"
            }
            Reader::Processor => "a processor (Lambda or another) sees each Firehose record",
            Reader::DynamicPartitioning => {
                "dynamic partitioning reads each Firehose record (no RecordDeAggregation)"
            }
            Reader::NotS3 => "the destination is not S3: the receiver sees each Firehose record",
            Reader::NoDestination => "DescribeDeliveryStream showed no destination",
            Reader::Unreadable => "the DescribeDeliveryStream answer could not be read in full",
        }
    }
}

/// The destination of one `DestinationDescription`, and what it does with each record.
fn destination(d: &DestinationDescription) -> (String, Reader) {
    if let Some(x) = d.extended_s3_destination_description() {
        return (format!("S3 {}", x.bucket_arn()), extended_s3(x));
    }
    if let Some(x) = d.s3_destination_description() {
        return (format!("S3 {}", x.bucket_arn()), Reader::PlainS3);
    }
    let kind = if let Some(h) = d.http_endpoint_destination_description() {
        let url = h.endpoint_configuration().and_then(|e| e.url());
        return (
            format!("HTTP endpoint {}", url.unwrap_or("(no URL)")),
            Reader::NotS3,
        );
    } else if d.redshift_destination_description().is_some() {
        "Redshift"
    } else if d.elasticsearch_destination_description().is_some()
        || d.amazonopensearchservice_destination_description()
            .is_some()
        || d.amazon_open_search_serverless_destination_description()
            .is_some()
    {
        "OpenSearch"
    } else if d.splunk_destination_description().is_some() {
        "Splunk"
    } else if d.snowflake_destination_description().is_some() {
        "Snowflake"
    } else if d.iceberg_destination_description().is_some() {
        "Iceberg"
    } else {
        "another kind of destination"
    };
    (kind.to_string(), Reader::NotS3)
}

fn extended_s3(x: &ExtendedS3DestinationDescription) -> Reader {
    let processors: &[Processor] = match x.processing_configuration() {
        Some(p) if p.enabled().unwrap_or(true) => p.processors(),
        _ => &[],
    };
    let partitioning = x
        .dynamic_partitioning_configuration()
        .is_some_and(|p| p.enabled().unwrap_or(false));
    if !partitioning {
        return if processors.is_empty() {
            Reader::PlainS3
        } else {
            Reader::Processor
        };
    }
    let param = |p: &Processor, name: &str| {
        p.parameters()
            .iter()
            .find(|x| x.parameter_name().as_str() == name)
            .map(|x| x.parameter_value().to_string())
    };
    let mut deaggregation = None;
    for p in processors {
        match p.r#type() {
            ProcessorType::RecordDeAggregation => {
                deaggregation = match param(p, "SubRecordType").as_deref() {
                    Some("JSON") => Some(true),
                    // A newline (base64 "Cg==") or the default delimiter.
                    Some("DELIMITED") => match param(p, "Delimiter").as_deref() {
                        None | Some("Cg==") => Some(false),
                        Some(_) => return Reader::Processor,
                    },
                    _ => return Reader::Processor,
                };
            }
            // Work on the records deaggregation leaves: no harm.
            ProcessorType::MetadataExtraction | ProcessorType::AppendDelimiterToRecord => {}
            _ => return Reader::Processor,
        }
    }
    match deaggregation {
        Some(json) => Reader::Deaggregates { json },
        None => Reader::DynamicPartitioning,
    }
}

/// Describes one stream. `Ok(None)`: it does not exist.
pub async fn describe(
    client: &aws_sdk_firehose::Client,
    name: &str,
) -> Result<Option<Described>, String> {
    match client
        .describe_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await
    {
        Ok(d) => Ok(d.delivery_stream_description().map(|d| {
            let dests: Vec<(String, Reader)> = d.destinations().iter().map(destination).collect();
            // Every destination must allow packing alike; else the first that differs says why.
            let reader = match dests.first() {
                None => Reader::NoDestination,
                Some((_, first)) => match dests.iter().find(|(_, r)| r != first) {
                    Some((_, r)) if r.packing(false, false) == Packing::Single => *r,
                    Some(_) => Reader::Processor,
                    None => *first,
                },
            };
            let status = d.delivery_stream_status();
            Described {
                active: status == &DeliveryStreamStatus::Active,
                status: status.as_str().to_string(),
                destination: dests
                    .into_iter()
                    .map(|(d, _)| d)
                    .collect::<Vec<_>>()
                    .join(", "),
                reader,
            }
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        // An answer the SDK could not read in full (some emulators leave out required
        // fields): read the status from the raw body, and do not aggregate.
        Err(SdkError::ResponseError(r)) => {
            let status = r.raw().body().bytes().and_then(status_from_raw);
            Ok(Some(Described {
                active: status.as_deref().is_none_or(|s| s == "ACTIVE"),
                status: status.unwrap_or_else(|| "unknown".into()),
                destination: "unknown".into(),
                reader: Reader::Unreadable,
            }))
        }
        Err(e) => Err(format!(
            "DescribeDeliveryStream {name} failed: {}",
            short_error(&e)
        )),
    }
}

/// The ACTIVE streams whose names start with `prefix`, with what describing them said.
/// `known` streams are taken as they are, without describing them again (`None`).
pub async fn discover(
    client: &aws_sdk_firehose::Client,
    prefix: &str,
    known: &[String],
) -> Result<Vec<(String, Option<Described>)>, String> {
    let mut listed = Vec::new();
    let mut start: Option<String> = None;
    // A bound on pages, in case a service keeps saying there are more.
    for _ in 0..10_000 {
        let page = client
            .list_delivery_streams()
            .limit(100)
            .set_exclusive_start_delivery_stream_name(start.clone())
            .send()
            .await
            .map_err(|e| format!("ListDeliveryStreams failed: {}", short_error(&e)))?;
        let names = page.delivery_stream_names();
        listed.extend(names.iter().filter(|n| n.starts_with(prefix)).cloned());
        match (page.has_more_delivery_streams(), names.last()) {
            (true, Some(last)) => start = Some(last.clone()),
            _ => break,
        }
    }
    let mut found = Vec::new();
    for name in listed {
        if known.contains(&name) {
            found.push((name, None));
            continue;
        }
        // Deleted between the list and the describe, or not ACTIVE: not a stream to use.
        if let Some(d) = describe(client, &name).await? {
            if d.active {
                found.push((name, Some(d)));
            }
        }
    }
    Ok(found)
}

/// The `DeliveryStreamStatus` value of a raw DescribeDeliveryStream JSON body.
fn status_from_raw(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("DeliveryStreamDescription")?
        .get("DeliveryStreamStatus")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_status_from_a_raw_body() {
        let body = br#"{"DeliveryStreamDescription": {"DeliveryStreamName": "a", "DeliveryStreamStatus" : "CREATING"}}"#;
        assert_eq!(super::status_from_raw(body).as_deref(), Some("CREATING"));
        assert_eq!(super::status_from_raw(b"{}"), None);
    }
}
