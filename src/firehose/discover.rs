//! What Firehose says about delivery streams: ListDeliveryStreams (every page, by name
//! prefix) and DescribeDeliveryStream (ACTIVE or not, and whether records may be packed
//! together). Data only: the instance's background tasks act on it.

use crate::firehose::put::short_error;
use crate::schedule::Packing;
use aws_sdk_firehose::error::SdkError;
use aws_sdk_firehose::types::{
    DeliveryStreamDescription, DeliveryStreamStatus, ExtendedS3DestinationDescription, Processor,
    ProcessorType,
};

/// What a DescribeDeliveryStream says that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Described {
    pub active: bool,
    pub reader: Reader,
}

/// What the destination does with each Firehose record, which decides whether several
/// log records may share one (`aggregation auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// S3 without record-level processing: an aggregate of lines is what it writes anyway.
    PlainS3,
    /// Dynamic partitioning that first splits each record again (the `RecordDeAggregation`
    /// processor): JSON objects, or lines (`DELIMITED` with a newline).
    Deaggregates { json: bool },
    /// Anything that looks at each record as one (a Lambda processor, dynamic partitioning
    /// without deaggregation or on another delimiter, other destinations).
    PerRecord,
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

    /// Why, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            Reader::PlainS3 => "S3 without record processing",
            Reader::Deaggregates { json: true } => {
                "dynamic partitioning that splits JSON records again (RecordDeAggregation)"
            }
            Reader::Deaggregates { json: false } => {
                "dynamic partitioning that splits lines again (RecordDeAggregation)"
            }
            Reader::PerRecord => "the destination processes each record as one",
        }
    }

    fn of(d: &DeliveryStreamDescription) -> Reader {
        let readers: Vec<Reader> = d
            .destinations()
            .iter()
            .map(|dest| match dest.extended_s3_destination_description() {
                Some(x) => extended_s3(x),
                None if dest.s3_destination_description().is_some() => Reader::PlainS3,
                None => Reader::PerRecord,
            })
            .collect();
        match readers.first() {
            Some(&first) if readers.iter().all(|&r| r == first) => first,
            _ => Reader::PerRecord,
        }
    }
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
            Reader::PerRecord
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
                        Some(_) => return Reader::PerRecord,
                    },
                    _ => return Reader::PerRecord,
                };
            }
            // Work on the records deaggregation leaves: no harm.
            ProcessorType::MetadataExtraction | ProcessorType::AppendDelimiterToRecord => {}
            _ => return Reader::PerRecord,
        }
    }
    match deaggregation {
        Some(json) => Reader::Deaggregates { json },
        None => Reader::PerRecord,
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
        Ok(d) => Ok(d.delivery_stream_description().map(|d| Described {
            active: d.delivery_stream_status() == &DeliveryStreamStatus::Active,
            reader: Reader::of(d),
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
                active: status.is_none_or(|s| s == "ACTIVE"),
                reader: Reader::PerRecord,
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
