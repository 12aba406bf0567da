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

/// Describes the configured streams (all at once) to decide, per stream, whether to
/// aggregate (`aggregation auto`). Returns the streams that could not be described: they
/// do not aggregate until they are.
pub async fn learn_destinations(shared: &Shared, names: &[String]) -> Vec<String> {
    let mut calls = tokio::task::JoinSet::new();
    for name in names {
        let (client, name) = (shared.clients.control.clone(), name.clone());
        calls.spawn(async move {
            let d = describe(&client, &name).await;
            (name, d)
        });
    }
    let mut unknown = Vec::new();
    while let Some(joined) = calls.join_next().await {
        let Ok((name, d)) = joined else { continue };
        match d {
            Ok(Some(d)) => shared.router.set_aggregates(&name, d.aggregatable),
            Ok(None) => {
                shared.log.warn(format_args!(
                    "delivery stream {name} does not exist (yet): records go to the other streams until it does"
                ));
                unknown.push(name);
            }
            Err(e) => {
                shared.log.info(format_args!(
                    "aggregation is off for {name} until it can be described ({e})"
                ));
                unknown.push(name);
            }
        }
    }
    unknown
}

/// Describes `unknown` streams again, after 1 s and then twice as long each time up to
/// `discovery_interval`, until each is known: the aggregation decision rests on what a
/// stream is, never on a call that failed once (a stream that stays unaggregated bills
/// every small record as 5 KB).
pub async fn learn_until_known(shared: Arc<Shared>, mut unknown: Vec<String>) {
    let mut delay = Duration::from_secs(1);
    while !unknown.is_empty() {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(shared.config.discovery_interval.max(Duration::from_secs(1)));
        let before = unknown.len();
        unknown = learn_destinations(&shared, &unknown).await;
        if unknown.len() < before {
            shared.log.info(format_args!(
                "delivery stream destinations known now: {} of {} still to describe",
                unknown.len(),
                shared.config.streams.len()
            ));
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
    let found = discover(&shared.clients.control, prefix, &known).await?;
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

/// Refreshes every `interval` until the task is aborted. Failures keep the current set, are
/// logged once per run of failures, and are tried again sooner (1 s, doubling up to
/// `interval`), so streams are found soon after the endpoint answers.
pub async fn run(shared: Arc<Shared>, prefix: String, interval: Duration, failing: bool) {
    let mut failing = failing;
    let mut retry = Duration::from_secs(1);
    loop {
        tokio::time::sleep(if failing {
            retry.min(interval)
        } else {
            interval
        })
        .await;
        match refresh(&shared, &prefix).await {
            Ok(()) => {
                if failing {
                    shared
                        .log
                        .info(format_args!("stream discovery works again"));
                }
                failing = false;
                retry = Duration::from_secs(1);
            }
            Err(e) => {
                if !failing {
                    shared.log.warn(format_args!(
                        "stream discovery failed, keeping the current streams: {e}"
                    ));
                }
                failing = true;
                retry = (retry * 2).min(interval);
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
