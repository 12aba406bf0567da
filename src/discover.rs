//! Finds delivery streams by name prefix (`delivery_stream_prefix`): ListDeliveryStreams
//! (every page), then DescribeDeliveryStream for names not yet in use, keeping only ACTIVE
//! ones. Refreshed every `discovery_interval`, so streams created later join without a
//! restart and deleted ones leave.

use crate::config::Aggregation;
use crate::deliver::short_error;
use crate::instance::Shared;
use aws_sdk_firehose::error::SdkError;
use aws_sdk_firehose::types::DeliveryStreamStatus;
use std::sync::Arc;
use std::time::Duration;

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

/// Describes the configured streams to decide, per stream, whether to aggregate
/// (`aggregation auto`). A stream that cannot be described does not aggregate.
pub async fn learn_destinations(shared: &Shared, names: &[String]) {
    for name in names {
        match describe(&shared.client, name).await {
            Ok(Some(d)) => shared.router.set_aggregates(name, d.aggregatable),
            Ok(None) => shared.log.warn(format_args!(
                "delivery stream {name} does not exist (yet): records go to the other streams until it does"
            )),
            Err(e) => shared.log.info(format_args!(
                "aggregation stays off for {name}: it could not be described ({e})"
            )),
        }
    }
}

/// One refresh: updates the router and logs who joined and left.
pub async fn refresh(shared: &Shared, prefix: &str) -> Result<(), String> {
    let known: Vec<String> = shared
        .router
        .streams()
        .iter()
        .filter(|s| !s.configured)
        .map(|s| s.name.clone())
        .collect();
    let found = discover(&shared.client, prefix, &known).await?;
    let names: Vec<String> = found.iter().map(|(n, _)| n.clone()).collect();
    let (joined, left) = shared.router.set_discovered(&names);
    if shared.config.aggregation == Aggregation::Auto {
        for (name, d) in &found {
            if let Some(d) = d {
                shared.router.set_aggregates(name, d.aggregatable);
            }
        }
    }
    if !joined.is_empty() {
        shared.log.info(format_args!(
            "delivery streams joined (prefix '{prefix}'): {}",
            joined.join(", ")
        ));
    }
    if !left.is_empty() {
        shared.log.info(format_args!(
            "delivery streams left (no longer listed or not ACTIVE): {}",
            left.join(", ")
        ));
    }
    Ok(())
}

/// Refreshes every `interval` until the task is aborted. Failures keep the current set and
/// are logged once per run of failures.
pub async fn run(shared: Arc<Shared>, prefix: String, interval: Duration) {
    let mut failing = false;
    loop {
        tokio::time::sleep(interval).await;
        match refresh(&shared, &prefix).await {
            Ok(()) => {
                if failing {
                    shared
                        .log
                        .info(format_args!("stream discovery works again"));
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    shared.log.warn(format_args!(
                        "stream discovery failed, keeping the current streams: {e}"
                    ));
                }
                failing = true;
            }
        }
    }
}

/// The `DeliveryStreamStatus` value of a raw DescribeDeliveryStream JSON body.
fn status_from_raw(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"DeliveryStreamStatus\"")? + "\"DeliveryStreamStatus\"".len();
    let rest = text[at..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    rest.split('"').next()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_status_from_a_raw_body() {
        let body = br#"{"DeliveryStreamDescription": {"DeliveryStreamName": "a", "DeliveryStreamStatus" : "CREATING"}}"#;
        assert_eq!(super::status_from_raw(body), Some("CREATING"));
        assert_eq!(super::status_from_raw(b"{}"), None);
    }
}
