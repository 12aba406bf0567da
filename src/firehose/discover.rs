//! What Firehose says about delivery streams: ListDeliveryStreams (every page, by name
//! prefix) and DescribeDeliveryStream (ACTIVE or not, and whether records may be packed
//! together). Data only: the instance's background tasks act on it.

use crate::firehose::put::short_error;
use aws_sdk_firehose::error::SdkError;
use aws_sdk_firehose::types::DeliveryStreamStatus;

/// What a DescribeDeliveryStream says that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Described {
    pub active: bool,
    /// S3 destination without record-level processing (no Lambda processor, no dynamic
    /// partitioning): packing many log records into one Firehose record changes nothing
    /// for the reader.
    pub aggregatable: bool,
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
            aggregatable: !d.destinations().is_empty()
                && d.destinations().iter().all(|dest| {
                    if let Some(x) = dest.extended_s3_destination_description() {
                        let processing = x.processing_configuration().is_some_and(|p| {
                            p.enabled().unwrap_or(true) && !p.processors().is_empty()
                        });
                        let partitioning = x
                            .dynamic_partitioning_configuration()
                            .is_some_and(|p| p.enabled().unwrap_or(false));
                        !processing && !partitioning
                    } else {
                        dest.s3_destination_description().is_some()
                    }
                }),
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
                aggregatable: false,
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
