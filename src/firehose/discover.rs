//! What Firehose says about delivery streams: ListDeliveryStreams (every page, by name
//! prefix) and DescribeDeliveryStream (ACTIVE or not, and whether records may be packed
//! together). Data only: the instance's background tasks act on it.

use crate::firehose::put::short_error;
use aws_sdk_firehose::error::SdkError;
use aws_sdk_firehose::types::DeliveryStreamStatus;

/// What a DescribeDeliveryStream says that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub active: bool,
    /// S3 destination without record-level processing (no Lambda processor, no dynamic
    /// partitioning): packing many log records into one Firehose record changes nothing
    /// for the reader.
    pub aggregatable: bool,
    /// `DeliveryStreamStatus` as Firehose spells it (`ACTIVE`, `CREATING`, ...).
    pub status: String,
    /// The destinations, in words (`S3 arn:aws:s3:::bucket`, `HTTP endpoint https://...`).
    pub destination: String,
    /// Why `aggregatable` is what it is (`firehose-fanout check` prints it).
    pub packing: Packing,
}

/// What decides whether a stream's records may be packed together (`aggregation auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// S3 without a Lambda processor or dynamic partitioning: the reader cannot tell.
    S3Plain,
    /// A Lambda processor sees each Firehose record.
    LambdaProcessor,
    /// Dynamic partitioning reads each Firehose record's keys.
    DynamicPartitioning,
    /// Not S3 (HTTP endpoint, OpenSearch, Splunk, ...): the receiver sees each record.
    NotS3,
    /// No destination in the answer.
    NoDestination,
    /// The answer could not be read in full.
    Unreadable,
}

impl Packing {
    pub fn aggregatable(self) -> bool {
        self == Packing::S3Plain
    }

    /// The reason, in words.
    pub fn reason(self) -> &'static str {
        match self {
            Packing::S3Plain => {
                "S3 destination without a Lambda processor or dynamic partitioning: the reader cannot tell"
            }
            Packing::LambdaProcessor => "a Lambda processor sees each Firehose record",
            Packing::DynamicPartitioning => "dynamic partitioning reads each Firehose record",
            Packing::NotS3 => "the destination is not S3: the receiver sees each Firehose record",
            Packing::NoDestination => "DescribeDeliveryStream showed no destination",
            Packing::Unreadable => "the DescribeDeliveryStream answer could not be read in full",
        }
    }
}

/// The destination of one `DestinationDescription`, and whether it allows packing.
fn destination(d: &aws_sdk_firehose::types::DestinationDescription) -> (String, Packing) {
    if let Some(x) = d.extended_s3_destination_description() {
        let processing = x
            .processing_configuration()
            .is_some_and(|p| p.enabled().unwrap_or(true) && !p.processors().is_empty());
        let partitioning = x
            .dynamic_partitioning_configuration()
            .is_some_and(|p| p.enabled().unwrap_or(false));
        let packing = if processing {
            Packing::LambdaProcessor
        } else if partitioning {
            Packing::DynamicPartitioning
        } else {
            Packing::S3Plain
        };
        return (format!("S3 {}", x.bucket_arn()), packing);
    }
    if let Some(x) = d.s3_destination_description() {
        return (format!("S3 {}", x.bucket_arn()), Packing::S3Plain);
    }
    let kind = if let Some(h) = d.http_endpoint_destination_description() {
        let url = h.endpoint_configuration().and_then(|e| e.url());
        return (
            format!("HTTP endpoint {}", url.unwrap_or("(no URL)")),
            Packing::NotS3,
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
    (kind.to_string(), Packing::NotS3)
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
            let dests: Vec<(String, Packing)> = d.destinations().iter().map(destination).collect();
            // Every destination must allow it; the first that does not says why.
            let packing = match dests.iter().find(|(_, p)| !p.aggregatable()) {
                Some((_, p)) => *p,
                None if dests.is_empty() => Packing::NoDestination,
                None => Packing::S3Plain,
            };
            let status = d.delivery_stream_status();
            Described {
                active: status == &DeliveryStreamStatus::Active,
                aggregatable: packing.aggregatable(),
                status: status.as_str().to_string(),
                destination: dests
                    .into_iter()
                    .map(|(d, _)| d)
                    .collect::<Vec<_>>()
                    .join(", "),
                packing,
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
                aggregatable: false,
                status: status.unwrap_or_else(|| "unknown".into()),
                destination: "unknown".into(),
                packing: Packing::Unreadable,
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
