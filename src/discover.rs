//! Finds delivery streams by name prefix (`delivery_stream_prefix`): ListDeliveryStreams
//! (every page), then DescribeDeliveryStream for names not yet in use, keeping only ACTIVE
//! ones. Refreshed every `discovery_interval`, so streams created later join without a
//! restart and deleted ones leave.

use crate::instance::Shared;
use aws_sdk_firehose::error::{DisplayErrorContext, SdkError};
use aws_sdk_firehose::types::DeliveryStreamStatus;
use std::sync::Arc;
use std::time::Duration;

/// Names of the ACTIVE streams whose names start with `prefix`. `known` streams are taken
/// as they are, without describing them again.
pub async fn discover(
    client: &aws_sdk_firehose::Client,
    prefix: &str,
    known: &[String],
) -> Result<Vec<String>, String> {
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
            .map_err(|e| format!("ListDeliveryStreams failed: {}", DisplayErrorContext(&e)))?;
        let names = page.delivery_stream_names();
        listed.extend(names.iter().filter(|n| n.starts_with(prefix)).cloned());
        match (page.has_more_delivery_streams(), names.last()) {
            (true, Some(last)) => start = Some(last.clone()),
            _ => break,
        }
    }
    let mut active = Vec::new();
    for name in listed {
        if known.contains(&name) {
            active.push(name);
            continue;
        }
        let d = client
            .describe_delivery_stream()
            .delivery_stream_name(&name)
            .send()
            .await;
        match d {
            Ok(d) => {
                if d.delivery_stream_description()
                    .is_some_and(|d| d.delivery_stream_status() == &DeliveryStreamStatus::Active)
                {
                    active.push(name);
                }
            }
            // Deleted between the list and the describe: not a stream to use.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            // An answer the SDK could not read in full (some emulators leave out required
            // fields): read the status from the raw body; if even that fails, use the
            // listed stream and let health checks judge it.
            Err(SdkError::ResponseError(r)) => {
                let status = r.raw().body().bytes().and_then(status_from_raw);
                if status.is_none_or(|s| s == "ACTIVE") {
                    active.push(name);
                }
            }
            Err(e) => {
                return Err(format!(
                    "DescribeDeliveryStream {name} failed: {}",
                    DisplayErrorContext(&e)
                ))
            }
        }
    }
    Ok(active)
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
    let (joined, left) = shared.router.set_discovered(&found);
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
