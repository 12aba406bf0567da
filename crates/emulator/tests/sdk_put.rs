//! The data plane through `aws-sdk-firehose`: puts, API limits, quotas and
//! fault injection.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_firehose::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use common::{client, emulator, emulator_with, records, status_of};
use firehose_emulator::{EmulatorConfig, Faults, Quota, StreamSpec, StreamStatus};

#[tokio::test]
async fn put_batches_and_read_them_back_in_order() {
    let emu = emulator(&["logs"]);
    let fh = client(&emu.endpoint());
    let mut expected = Vec::new();
    let mut ids = HashSet::new();
    for batch in 0..3 {
        let payloads: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("{{\"batch\":{batch},\"i\":{i}}}\n").into_bytes())
            .collect();
        let out = fh
            .put_record_batch()
            .delivery_stream_name("logs")
            .set_records(Some(records(payloads.clone())))
            .send()
            .await
            .expect("batch accepted");
        assert_eq!(out.failed_put_count(), 0);
        assert_eq!(out.encrypted(), Some(false));
        assert_eq!(out.request_responses().len(), 100);
        for r in out.request_responses() {
            assert!(r.error_code().is_none());
            assert!(ids.insert(r.record_id().expect("record id").to_string()));
        }
        expected.extend(payloads);
    }
    // Binary data survives the base64 round trip.
    let binary: Vec<u8> = (0..=255).collect();
    let single = fh
        .put_record()
        .delivery_stream_name("logs")
        .record(records([binary.clone()]).remove(0))
        .send()
        .await
        .expect("single record accepted");
    assert!(ids.insert(single.record_id().to_string()));
    expected.push(binary);

    assert_eq!(emu.records("logs"), expected);
    let detailed = emu.records_detailed("logs");
    assert_eq!(
        detailed.last().map(|r| r.record_id.as_str()),
        Some(single.record_id())
    );

    let stats = emu.stats();
    let s = &stats.streams["logs"];
    assert_eq!(s.requests, 4);
    assert_eq!(s.accepted_records, 301);
    assert_eq!(
        s.accepted_bytes,
        expected.iter().map(|r| r.len() as u64).sum::<u64>()
    );
    assert_eq!(s.failed_records, 0);
    assert_eq!(
        s.series.iter().map(|p| p.bytes).sum::<u64>(),
        s.accepted_bytes
    );
    assert_eq!(stats.requests, 4);
}

#[tokio::test]
async fn api_limits_are_enforced_with_invalid_argument() {
    let emu = emulator(&["s"]);
    let fh = client(&emu.endpoint());

    let put = |recs: Vec<Record>| {
        fh.put_record_batch()
            .delivery_stream_name("s")
            .set_records(Some(recs))
            .send()
    };
    let is_invalid_argument = |e: &SdkError<_, _>| match e {
        SdkError::ServiceError(_) => e.as_service_error().is_some_and(
            |e: &aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError| {
                e.is_invalid_argument_exception()
            },
        ),
        _ => false,
    };

    // 500 records pass, 501 do not.
    put(records(vec![b"x".to_vec(); 500]))
        .await
        .expect("500 records");
    let err = put(records(vec![b"x".to_vec(); 501])).await.unwrap_err();
    assert!(is_invalid_argument(&err), "{err:?}");
    assert_eq!(status_of(&err), Some(400));

    // No records at all.
    let err = put(Vec::new()).await.unwrap_err();
    assert!(is_invalid_argument(&err), "{err:?}");

    // A record of exactly 1,000 KiB passes, one byte more does not.
    put(records([vec![7u8; 1_024_000]]))
        .await
        .expect("1,000 KiB record");
    let err = put(records([vec![7u8; 1_024_001]])).await.unwrap_err();
    assert!(is_invalid_argument(&err), "{err:?}");
    let err = fh
        .put_record()
        .delivery_stream_name("s")
        .record(records([vec![7u8; 1_024_001]]).remove(0))
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_argument_exception()));

    // Exactly 4 MiB in total passes, one byte more does not.
    let mut four_mib = vec![vec![1u8; 1_024_000]; 4];
    four_mib.push(vec![1u8; 4 * 1024 * 1024 - 4 * 1_024_000]);
    put(records(four_mib.clone())).await.expect("4 MiB batch");
    four_mib[4].push(1);
    let err = put(records(four_mib)).await.unwrap_err();
    assert!(is_invalid_argument(&err), "{err:?}");
    assert_eq!(
        err.as_service_error().and_then(|e| e.code()),
        Some("InvalidArgumentException")
    );

    let stats = emu.stats();
    let s = &stats.streams["s"];
    assert_eq!(s.rejected_requests, 5);
    assert_eq!(s.accepted_records, 500 + 1 + 5);
}

#[tokio::test]
async fn unknown_stream_is_resource_not_found() {
    let emu = emulator(&["exists"]);
    let fh = client(&emu.endpoint());
    let err = fh
        .put_record_batch()
        .delivery_stream_name("missing")
        .set_records(Some(records([b"a".to_vec()])))
        .send()
        .await
        .unwrap_err();
    let service = err.as_service_error().expect("service error");
    assert!(service.is_resource_not_found_exception(), "{err:?}");
    assert!(service.message().unwrap_or_default().contains("missing"));
    assert_eq!(status_of(&err), Some(400));

    let err = fh
        .put_record()
        .delivery_stream_name("missing")
        .record(records([b"a".to_vec()]).remove(0))
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));

    // A stream that is not ACTIVE refuses records the same way.
    emu.set_status("exists", StreamStatus::Creating);
    let err = fh
        .put_record_batch()
        .delivery_stream_name("exists")
        .set_records(Some(records([b"a".to_vec()])))
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    emu.set_status("exists", StreamStatus::Active);
    fh.put_record_batch()
        .delivery_stream_name("exists")
        .set_records(Some(records([b"a".to_vec()])))
        .send()
        .await
        .expect("ACTIVE again");
    assert_eq!(emu.stats().rejected_requests, 2);
}

/// Sends `batches` batches of 500 records and returns, per batch, which
/// records failed.
async fn failure_pattern(endpoint: &str, batches: usize) -> Vec<Vec<bool>> {
    let fh = client(endpoint);
    let mut pattern = Vec::new();
    for b in 0..batches {
        let out = fh
            .put_record_batch()
            .delivery_stream_name("s")
            .set_records(Some(records((0..500).map(|i| format!("{b}-{i}")))))
            .send()
            .await
            .expect("batch");
        let failed: Vec<bool> = out
            .request_responses()
            .iter()
            .map(|r| r.error_code().is_some())
            .collect();
        assert_eq!(
            out.failed_put_count() as usize,
            failed.iter().filter(|f| **f).count()
        );
        for r in out.request_responses() {
            if let Some(code) = r.error_code() {
                assert_eq!(code, "InternalFailure");
                assert!(r.record_id().is_none());
                assert!(r.error_message().is_some());
            } else {
                assert!(r.record_id().is_some());
            }
        }
        pattern.push(failed);
    }
    pattern
}

#[tokio::test]
async fn per_record_failure_rate_is_near_the_configured_rate_and_seeded() {
    let config = || EmulatorConfig {
        streams: vec![StreamSpec::new("s").with_faults(Faults {
            record_failure_rate: 0.2,
            ..Default::default()
        })],
        seed: Some(42),
        ..Default::default()
    };
    let emu = firehose_emulator::Emulator::start(config()).expect("start");
    let pattern = failure_pattern(&emu.endpoint(), 20).await;
    let failed = pattern.iter().flatten().filter(|f| **f).count();
    // 10,000 records at p = 0.2: mean 2,000, sigma 40.
    assert!((1_850..=2_150).contains(&failed), "{failed} failures");

    // The accepted records are exactly the ones not reported as failed.
    let accepted = emu.records("s");
    assert_eq!(accepted.len(), 10_000 - failed);
    let expected: Vec<Vec<u8>> = pattern
        .iter()
        .enumerate()
        .flat_map(|(b, f)| {
            f.iter()
                .enumerate()
                .filter(|(_, failed)| !**failed)
                .map(move |(i, _)| format!("{b}-{i}").into_bytes())
        })
        .collect();
    assert_eq!(accepted, expected);
    let stats = emu.stats();
    assert_eq!(stats.streams["s"].failed_records, failed as u64);
    assert_eq!(
        stats.streams["s"].failed_records_by_code["InternalFailure"],
        failed as u64
    );

    // Same seed, same requests: same failures.
    let again = firehose_emulator::Emulator::start(config()).expect("start");
    assert_eq!(failure_pattern(&again.endpoint(), 20).await, pattern);
}

#[tokio::test]
async fn record_failures_with_a_custom_error_code() {
    let emu = emulator(&["s"]);
    emu.set_faults(
        Some("s"),
        Faults {
            record_failure_rate: 1.0,
            record_error_code: Some("ServiceUnavailableException".into()),
            ..Default::default()
        },
    );
    let fh = client(&emu.endpoint());
    let out = fh
        .put_record_batch()
        .delivery_stream_name("s")
        .set_records(Some(records([b"a".to_vec(), b"b".to_vec()])))
        .send()
        .await
        .expect("batch");
    assert_eq!(out.failed_put_count(), 2);
    assert!(out
        .request_responses()
        .iter()
        .all(|r| r.error_code() == Some("ServiceUnavailableException")));
    assert!(emu.records("s").is_empty());
}

#[tokio::test]
async fn whole_request_quota_throttles_with_service_unavailable() {
    let emu = emulator_with(
        &[],
        EmulatorConfig {
            streams: vec![StreamSpec::new("s").with_quota(Quota {
                requests_per_second: Some(2.0),
                ..Default::default()
            })],
            ..Default::default()
        },
    );
    let fh = client(&emu.endpoint());
    let send = || {
        fh.put_record_batch()
            .delivery_stream_name("s")
            .set_records(Some(records([b"r".to_vec()])))
            .send()
    };
    send().await.expect("first request");
    send().await.expect("second request");
    let err = send().await.unwrap_err();
    let service = err.as_service_error().expect("service error");
    assert!(service.is_service_unavailable_exception(), "{err:?}");
    assert_eq!(service.code(), Some("ServiceUnavailableException"));
    assert_eq!(service.message(), Some("Slow down."));
    assert_eq!(status_of(&err), Some(500));

    // Half a second later one token is back.
    tokio::time::sleep(Duration::from_millis(550)).await;
    send().await.expect("refilled");

    // Record quota, whole-request mode: a batch over the budget is refused
    // whole and nothing of it is stored.
    emu.set_quota(
        "s",
        Some(Quota {
            records_per_second: Some(100.0),
            whole_request: true,
            ..Default::default()
        }),
    );
    let batch = |n: usize| {
        fh.put_record_batch()
            .delivery_stream_name("s")
            .set_records(Some(records((0..n).map(|i| i.to_string()))))
            .send()
    };
    batch(60).await.expect("60 of 100");
    let before = emu.records("s").len();
    let err = batch(60).await.unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_service_unavailable_exception()));
    assert_eq!(emu.records("s").len(), before);
    batch(40).await.expect("the remaining 40");

    let s = &emu.stats().streams["s"];
    assert_eq!(s.throttled_requests, 2);
    assert_eq!(s.throttled_records, 1 + 60);
}

#[tokio::test]
async fn per_record_quota_fails_the_tail_of_a_batch() {
    let emu = emulator(&["s"]);
    emu.set_quota(
        "s",
        Some(Quota {
            records_per_second: Some(100.0),
            ..Default::default()
        }),
    );
    let fh = client(&emu.endpoint());
    let out = fh
        .put_record_batch()
        .delivery_stream_name("s")
        .set_records(Some(records((0..300).map(|i| i.to_string()))))
        .send()
        .await
        .expect("partially accepted batch");
    assert_eq!(out.failed_put_count(), 200);
    let responses = out.request_responses();
    assert!(responses[..100].iter().all(|r| r.record_id().is_some()));
    assert!(responses[100..].iter().all(|r| {
        r.error_code() == Some("ServiceUnavailableException")
            && r.error_message() == Some("Slow down.")
    }));
    let expected: Vec<Vec<u8>> = (0..100).map(|i: i32| i.to_string().into_bytes()).collect();
    assert_eq!(emu.records("s"), expected);

    // Bytes per second, per record.
    emu.set_quota(
        "s",
        Some(Quota {
            bytes_per_second: Some(1000.0),
            ..Default::default()
        }),
    );
    let out = fh
        .put_record_batch()
        .delivery_stream_name("s")
        .set_records(Some(records(vec![vec![0u8; 300]; 5])))
        .send()
        .await
        .expect("batch");
    assert_eq!(out.failed_put_count(), 2);

    let s = &emu.stats().streams["s"];
    assert_eq!(s.throttled_records, 202);
    assert_eq!(s.failed_records_by_code["ServiceUnavailableException"], 202);
    assert_eq!(s.throttled_requests, 0);
}

#[tokio::test]
async fn outage_fails_everything_with_503_until_cleared() {
    let emu = emulator(&["a", "b"]);
    let fh = client(&emu.endpoint());
    let put = |stream: &'static str| {
        fh.put_record_batch()
            .delivery_stream_name(stream)
            .set_records(Some(records([b"x".to_vec()])))
            .send()
    };

    emu.set_faults(
        None,
        Faults {
            outage: true,
            ..Default::default()
        },
    );
    for stream in ["a", "b"] {
        let err = put(stream).await.unwrap_err();
        assert!(err
            .as_service_error()
            .is_some_and(|e| e.is_service_unavailable_exception()));
        assert_eq!(status_of(&err), Some(503));
    }
    // Control plane calls fail too.
    let err = fh.list_delivery_streams().send().await.unwrap_err();
    assert_eq!(err.code(), Some("ServiceUnavailableException"));
    emu.set_faults(None, Faults::default());
    put("a").await.expect("outage over");

    // A timed outage of one stream.
    assert!(emu.start_outage(Some("a"), Some(Duration::from_millis(600))));
    assert!(put("a").await.is_err());
    put("b").await.expect("other stream unaffected");
    tokio::time::sleep(Duration::from_millis(650)).await;
    put("a").await.expect("window over");

    // An open-ended outage, ended explicitly.
    assert!(emu.start_outage(None, None));
    assert!(put("b").await.is_err());
    assert!(emu.end_outage(None));
    put("b").await.expect("ended");

    let stats = emu.stats();
    assert_eq!(stats.faulted_requests, 5);
    assert_eq!(stats.streams["a"].faulted_requests, 2);
    assert_eq!(emu.records("a").len(), 2);
}

#[tokio::test]
async fn injected_request_failures_latency_and_resets() {
    let emu = emulator(&["s"]);
    let fh = client(&emu.endpoint());
    let put = || {
        fh.put_record_batch()
            .delivery_stream_name("s")
            .set_records(Some(records([b"x".to_vec()])))
            .send()
    };

    // Default injected failure: 500 InternalFailure (not modelled by the
    // SDK, so it is an unhandled error carrying the code).
    emu.set_faults(
        Some("s"),
        Faults {
            request_failure_rate: 1.0,
            ..Default::default()
        },
    );
    let err = put().await.unwrap_err();
    assert_eq!(err.code(), Some("InternalFailure"));
    assert_eq!(status_of(&err), Some(500));

    // A chosen status and error type.
    emu.set_faults(
        Some("s"),
        Faults {
            request_failure_rate: 1.0,
            request_failure_status: 503,
            request_failure_code: Some("ServiceUnavailableException".into()),
            ..Default::default()
        },
    );
    let err = put().await.unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_service_unavailable_exception()));
    assert_eq!(status_of(&err), Some(503));

    // Latency (global and per stream add up).
    emu.set_faults(
        Some("s"),
        Faults {
            latency: Duration::from_millis(100),
            ..Default::default()
        },
    );
    emu.set_faults(
        None,
        Faults {
            latency: Duration::from_millis(50),
            latency_jitter: Duration::from_millis(20),
            ..Default::default()
        },
    );
    let t0 = Instant::now();
    put().await.expect("slow but fine");
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    emu.set_faults(None, Faults::default());

    // Dropped connection: no HTTP response at all.
    emu.set_faults(
        Some("s"),
        Faults {
            reset_rate: 1.0,
            ..Default::default()
        },
    );
    let err = put().await.unwrap_err();
    assert!(status_of(&err).is_none(), "{err:?}");
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "{err:?}"
    );

    emu.set_faults(Some("s"), Faults::default());
    put().await.expect("healthy again");
    let stats = emu.stats();
    assert_eq!(stats.resets, 1);
    assert_eq!(stats.streams["s"].faulted_requests, 3);
    assert_eq!(emu.records("s"), vec![b"x".to_vec(), b"x".to_vec()]);
}

#[tokio::test]
async fn sdk_retries_throttled_requests_on_its_own() {
    use aws_sdk_firehose::config::retry::RetryConfig;
    // A whole-request failure rate of 0.5 with the SDK's standard retries:
    // most calls succeed eventually, and the emulator sees the retries.
    let emu = emulator_with(
        &["s"],
        EmulatorConfig {
            seed: Some(1),
            ..Default::default()
        },
    );
    emu.set_faults(
        Some("s"),
        Faults {
            request_failure_rate: 0.5,
            request_failure_status: 500,
            request_failure_code: Some("ServiceUnavailableException".into()),
            ..Default::default()
        },
    );
    let fh = common::client_with_retries(
        &emu.endpoint(),
        RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5)),
    );
    let mut ok = 0;
    for _ in 0..10 {
        if fh
            .put_record_batch()
            .delivery_stream_name("s")
            .records(
                Record::builder()
                    .data(Blob::new(b"x".to_vec()))
                    .build()
                    .expect("record"),
            )
            .send()
            .await
            .is_ok()
        {
            ok += 1;
        }
    }
    let s = &emu.stats().streams["s"];
    assert!(ok >= 8, "{ok} of 10 calls succeeded");
    assert!(
        s.requests > 10,
        "retries reached the emulator: {}",
        s.requests
    );
    assert_eq!(s.accepted_records, ok);
}

#[tokio::test]
async fn signatures_are_checked_with_a_signing_secret() {
    let emu = emulator_with(
        &["signed"],
        EmulatorConfig {
            signing_secret: Some("secret".into()),
            ..Default::default()
        },
    );
    // The SDK's own signature (the test client signs with "secret").
    let fh = client(&emu.endpoint());
    let out = fh
        .put_record_batch()
        .delivery_stream_name("signed")
        .set_records(Some(records([b"one".to_vec(), b"two".to_vec()])))
        .send()
        .await
        .expect("a correctly signed call is accepted");
    assert_eq!(out.failed_put_count(), 0);
    // A body changed after signing: refused as AWS refuses it.
    let err = fh
        .put_record_batch()
        .delivery_stream_name("signed")
        .set_records(Some(records([b"one".to_vec()])))
        .customize()
        .interceptor(TamperAfterSigning)
        .send()
        .await;
    let err = err.expect_err("the signature no longer matches");
    assert_eq!(
        aws_sdk_firehose::error::ProvideErrorMetadata::code(&err),
        Some("InvalidSignatureException"),
        "{err:?}"
    );
    assert_eq!(emu.stats().invalid_signatures, 1);
    assert_eq!(emu.records("signed").len(), 2);
}

/// Replaces "one" by "two" in the body once the request is signed.
#[derive(Debug)]
struct TamperAfterSigning;

impl aws_sdk_firehose::config::Intercept for TamperAfterSigning {
    fn name(&self) -> &'static str {
        "TamperAfterSigning"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_firehose::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _: &aws_sdk_firehose::config::RuntimeComponents,
        _: &mut aws_sdk_firehose::config::ConfigBag,
    ) -> Result<(), aws_sdk_firehose::error::BoxError> {
        let req = context.request_mut();
        let body = req.body().bytes().unwrap_or_default().to_vec();
        let tampered = String::from_utf8_lossy(&body).replace("b25l", "dHdv");
        *req.body_mut() = tampered.into();
        Ok(())
    }
}
