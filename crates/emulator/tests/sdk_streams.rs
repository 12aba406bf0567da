//! The control plane through `aws-sdk-firehose` (list, describe, create,
//! delete) and the S3-like output folder.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamStatus, DeliveryStreamType,
    DynamicPartitioningConfiguration, ExtendedS3DestinationConfiguration, ProcessingConfiguration,
    Processor, ProcessorParameter, ProcessorParameterName, ProcessorType,
};
use common::{client, emulator, emulator_with, files_below, records, temp_dir};
use firehose_emulator::{
    DestinationSpec, Emulator, EmulatorConfig, ProcessingConfiguration as EmuProcessing,
    Processor as EmuProcessor, StreamSpec,
};

#[tokio::test]
async fn list_delivery_streams_paginates() {
    let names: Vec<String> = (0..25).map(|i| format!("stream-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let emu = emulator(&refs);
    let fh = client(&emu.endpoint());

    // Default page size 10, following ExclusiveStartDeliveryStreamName.
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = fh
            .list_delivery_streams()
            .set_exclusive_start_delivery_stream_name(start.clone())
            .send()
            .await
            .expect("list");
        pages.push((
            out.delivery_stream_names().len(),
            out.has_more_delivery_streams(),
        ));
        seen.extend(out.delivery_stream_names().iter().cloned());
        if !out.has_more_delivery_streams() {
            break;
        }
        start = seen.last().cloned();
    }
    assert_eq!(pages, vec![(10, true), (10, true), (5, false)]);
    assert_eq!(seen, names);

    // Explicit limit, type filter.
    let out = fh
        .list_delivery_streams()
        .limit(25)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .send()
        .await
        .expect("list");
    assert_eq!(out.delivery_stream_names().len(), 25);
    assert!(!out.has_more_delivery_streams());
    let out = fh
        .list_delivery_streams()
        .limit(7)
        .exclusive_start_delivery_stream_name("stream-20")
        .send()
        .await
        .expect("list");
    assert_eq!(
        out.delivery_stream_names(),
        &["stream-21", "stream-22", "stream-23", "stream-24"]
    );
    let out = fh
        .list_delivery_streams()
        .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
        .send()
        .await
        .expect("list");
    assert!(out.delivery_stream_names().is_empty());

    let err = fh
        .list_delivery_streams()
        .limit(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_firehose::error::ProvideErrorMetadata::code(&err),
        Some("InvalidArgumentException")
    );
}

#[tokio::test]
async fn describe_reports_status_arn_and_default_destination() {
    let emu = emulator(&["plain"]);
    let fh = client(&emu.endpoint());
    let out = fh
        .describe_delivery_stream()
        .delivery_stream_name("plain")
        .send()
        .await
        .expect("describe");
    let d = out.delivery_stream_description().expect("description");
    assert_eq!(d.delivery_stream_name(), "plain");
    assert_eq!(
        d.delivery_stream_arn(),
        "arn:aws:firehose:us-east-1:123456789012:deliverystream/plain"
    );
    assert_eq!(d.delivery_stream_status(), &DeliveryStreamStatus::Active);
    assert_eq!(d.delivery_stream_type(), &DeliveryStreamType::DirectPut);
    assert_eq!(d.version_id(), "1");
    assert!(!d.has_more_destinations());
    let created = d.create_timestamp().expect("create timestamp").secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - created).abs() < 60, "created {created}, now {now}");

    assert_eq!(d.destinations().len(), 1);
    let dest = &d.destinations()[0];
    assert_eq!(dest.destination_id(), "destinationId-000000000001");
    let s3 = dest
        .extended_s3_destination_description()
        .expect("extended S3");
    assert_eq!(s3.bucket_arn(), "arn:aws:s3:::emulator");
    assert_eq!(s3.compression_format(), &CompressionFormat::Uncompressed);
    let hints = s3.buffering_hints().expect("hints");
    assert_eq!(hints.size_in_mbs(), Some(5));
    assert_eq!(hints.interval_in_seconds(), Some(300));
    assert!(s3.processing_configuration().is_none());
    assert!(s3.dynamic_partitioning_configuration().is_none());
    assert!(dest.s3_destination_description().is_some());

    let err = fh
        .describe_delivery_stream()
        .delivery_stream_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
}

#[tokio::test]
async fn describe_reports_processing_given_through_the_rust_api() {
    let emu = emulator(&[]);
    emu.create_stream(
        StreamSpec::new("agg").with_destination(
            DestinationSpec::s3("arn:aws:s3:::bucket")
                .with_prefix("logs/")
                .with_buffering_hints(64, 60)
                .with_processing(EmuProcessing::enabled(vec![EmuProcessor::new(
                    "RecordDeAggregation",
                )
                .with_parameter("SubRecordType", "JSON")]))
                .with_dynamic_partitioning(true),
        ),
    );
    let fh = client(&emu.endpoint());
    let out = fh
        .describe_delivery_stream()
        .delivery_stream_name("agg")
        .send()
        .await
        .expect("describe");
    let d = out.delivery_stream_description().expect("description");
    let s3 = d.destinations()[0]
        .extended_s3_destination_description()
        .expect("extended S3");
    assert_eq!(s3.bucket_arn(), "arn:aws:s3:::bucket");
    assert_eq!(s3.prefix(), Some("logs/"));
    assert_eq!(s3.buffering_hints().and_then(|h| h.size_in_mbs()), Some(64));
    let p = s3.processing_configuration().expect("processing");
    assert_eq!(p.enabled(), Some(true));
    assert_eq!(
        p.processors()[0].r#type(),
        &ProcessorType::RecordDeAggregation
    );
    assert_eq!(
        p.processors()[0].parameters()[0].parameter_name(),
        &ProcessorParameterName::SubRecordType
    );
    assert_eq!(p.processors()[0].parameters()[0].parameter_value(), "JSON");
    assert_eq!(
        s3.dynamic_partitioning_configuration()
            .and_then(|d| d.enabled()),
        Some(true)
    );
}

#[tokio::test]
async fn create_describe_delete_through_the_sdk() {
    let emu = emulator(&[]);
    let fh = client(&emu.endpoint());
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/firehose")
        .bucket_arn("arn:aws:s3:::my-bucket")
        .prefix("data/")
        .compression_format(CompressionFormat::Gzip)
        .buffering_hints(
            BufferingHints::builder()
                .size_in_mbs(64)
                .interval_in_seconds(60)
                .build(),
        )
        .processing_configuration(
            ProcessingConfiguration::builder()
                .enabled(true)
                .processors(
                    Processor::builder()
                        .r#type(ProcessorType::RecordDeAggregation)
                        .parameters(
                            ProcessorParameter::builder()
                                .parameter_name(ProcessorParameterName::SubRecordType)
                                .parameter_value("JSON")
                                .build()
                                .expect("parameter"),
                        )
                        .build()
                        .expect("processor"),
                )
                .processors(
                    Processor::builder()
                        .r#type(ProcessorType::AppendDelimiterToRecord)
                        .build()
                        .expect("processor"),
                )
                .build(),
        )
        .dynamic_partitioning_configuration(
            DynamicPartitioningConfiguration::builder()
                .enabled(true)
                .build(),
        )
        .build()
        .expect("destination");

    let created = fh
        .create_delivery_stream()
        .delivery_stream_name("made-by-sdk")
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination.clone())
        .send()
        .await
        .expect("create");
    assert_eq!(
        created.delivery_stream_arn(),
        Some("arn:aws:firehose:us-east-1:123456789012:deliverystream/made-by-sdk")
    );
    assert_eq!(emu.stream_names(), vec!["made-by-sdk".to_string()]);

    let err = fh
        .create_delivery_stream()
        .delivery_stream_name("made-by-sdk")
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_in_use_exception()));

    let err = fh
        .create_delivery_stream()
        .delivery_stream_name("bad name!")
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_invalid_argument_exception()));

    let out = fh
        .describe_delivery_stream()
        .delivery_stream_name("made-by-sdk")
        .send()
        .await
        .expect("describe");
    let d = out.delivery_stream_description().expect("description");
    assert_eq!(d.delivery_stream_status(), &DeliveryStreamStatus::Active);
    let s3 = d.destinations()[0]
        .extended_s3_destination_description()
        .expect("extended S3");
    assert_eq!(s3.bucket_arn(), "arn:aws:s3:::my-bucket");
    assert_eq!(s3.role_arn(), "arn:aws:iam::123456789012:role/firehose");
    assert_eq!(s3.prefix(), Some("data/"));
    assert_eq!(s3.compression_format(), &CompressionFormat::Gzip);
    let hints = s3.buffering_hints().expect("hints");
    assert_eq!(
        (hints.size_in_mbs(), hints.interval_in_seconds()),
        (Some(64), Some(60))
    );
    let p = s3.processing_configuration().expect("processing");
    let types: Vec<&ProcessorType> = p.processors().iter().map(|p| p.r#type()).collect();
    assert_eq!(
        types,
        vec![
            &ProcessorType::RecordDeAggregation,
            &ProcessorType::AppendDelimiterToRecord
        ]
    );
    assert_eq!(
        s3.dynamic_partitioning_configuration()
            .and_then(|d| d.enabled()),
        Some(true)
    );

    // The stream takes records, then goes away.
    fh.put_record_batch()
        .delivery_stream_name("made-by-sdk")
        .set_records(Some(records([b"{}".to_vec()])))
        .send()
        .await
        .expect("put");
    fh.delete_delivery_stream()
        .delivery_stream_name("made-by-sdk")
        .send()
        .await
        .expect("delete");
    assert!(emu.stream_names().is_empty());
    let err = fh
        .delete_delivery_stream()
        .delivery_stream_name("made-by-sdk")
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    let err = fh
        .put_record_batch()
        .delivery_stream_name("made-by-sdk")
        .set_records(Some(records([b"{}".to_vec()])))
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));

    // Deleting through the Rust API.
    emu.create_stream(StreamSpec::new("tmp"));
    assert!(emu.delete_stream("tmp"));
    assert!(!emu.delete_stream("tmp"));
}

#[tokio::test]
async fn created_streams_can_take_a_while_to_become_active() {
    let emu = emulator_with(
        &[],
        EmulatorConfig {
            create_delay: Duration::from_millis(800),
            ..Default::default()
        },
    );
    let fh = client(&emu.endpoint());
    fh.create_delivery_stream()
        .delivery_stream_name("slow")
        .send()
        .await
        .expect("create");
    let status = || async {
        fh.describe_delivery_stream()
            .delivery_stream_name("slow")
            .send()
            .await
            .expect("describe")
            .delivery_stream_description()
            .expect("description")
            .delivery_stream_status()
            .clone()
    };
    assert_eq!(status().await, DeliveryStreamStatus::Creating);
    let err = fh
        .put_record_batch()
        .delivery_stream_name("slow")
        .set_records(Some(records([b"x".to_vec()])))
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    // A CREATING stream cannot be deleted (unless forced).
    let err = fh
        .delete_delivery_stream()
        .delivery_stream_name("slow")
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_in_use_exception()));

    tokio::time::sleep(Duration::from_millis(850)).await;
    assert_eq!(status().await, DeliveryStreamStatus::Active);
    fh.put_record_batch()
        .delivery_stream_name("slow")
        .set_records(Some(records([b"x".to_vec()])))
        .send()
        .await
        .expect("active now");
}

/// Checks an object path below `root`:
/// `<stream>/YYYY/MM/DD/HH/<stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>`, dated
/// within a minute of now. Returns the object's data.
fn check_object(root: &Path, stream: &str, path: &Path) -> Vec<u8> {
    let rel = path.strip_prefix(root).expect("below root");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    assert_eq!(parts.len(), 6, "{rel:?}");
    assert_eq!(parts[0], stream);
    let name = &parts[5];
    let rest = name
        .strip_prefix(&format!("{stream}-1-"))
        .unwrap_or_else(|| panic!("object name {name}"));
    let fields: Vec<&str> = rest.split('-').collect();
    // 6 date fields + 5 UUID groups.
    assert_eq!(fields.len(), 11, "{name}");
    assert_eq!(&fields[..4], &parts[1..5], "folder matches the name's date");
    let uuid_lens: Vec<usize> = fields[6..].iter().map(|f| f.len()).collect();
    assert_eq!(uuid_lens, vec![8, 4, 4, 4, 12]);
    assert!(fields[6..]
        .iter()
        .all(|f| f.chars().all(|c| c.is_ascii_hexdigit())));
    let n: Vec<i64> = fields[..6]
        .iter()
        .map(|f| f.parse().expect("number"))
        .collect();
    let secs = civil_date::days_from_civil(n[0], n[1] as u32, n[2] as u32) * 86_400
        + n[3] * 3600
        + n[4] * 60
        + n[5];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (0..60).contains(&(now - secs)),
        "object dated {secs}, now {now}"
    );
    std::fs::read(path).expect("read object")
}

#[tokio::test]
async fn output_folder_flush_layout_and_contents() {
    let root = temp_dir("flush");
    let emu = emulator_with(
        &["s3-out", "other"],
        EmulatorConfig {
            output_dir: Some(root.clone()),
            ..Default::default()
        },
    );
    let fh = client(&emu.endpoint());
    let mut expected = Vec::new();
    for b in 0..3 {
        let payloads: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("line {b} {i}\n").into_bytes())
            .collect();
        fh.put_record_batch()
            .delivery_stream_name("s3-out")
            .set_records(Some(records(payloads.clone())))
            .send()
            .await
            .expect("put");
        expected.extend(payloads.concat());
    }
    // Nothing is written before the buffer is full or its interval is over.
    assert!(files_below(&root).is_empty());
    emu.flush_output().expect("flush");
    let files = files_below(&root);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(check_object(&root, "s3-out", &files[0]), expected);
    let stats = emu.stats();
    assert_eq!(stats.objects_written, 1);
    assert_eq!(
        stats.streams["s3-out"].object_bytes_written,
        expected.len() as u64
    );

    // Dropping the emulator writes what is still buffered.
    fh.put_record_batch()
        .delivery_stream_name("other")
        .set_records(Some(records([b"last".to_vec()])))
        .send()
        .await
        .expect("put");
    drop(emu);
    let files = files_below(&root);
    assert_eq!(files.len(), 2, "{files:?}");
    let other: Vec<_> = files
        .iter()
        .filter(|p| p.strip_prefix(&root).unwrap().starts_with("other"))
        .collect();
    assert_eq!(check_object(&root, "other", other[0]), b"last");
    std::fs::remove_dir_all(&root).ok();
}

#[tokio::test]
async fn output_folder_size_and_interval_triggers() {
    let root = temp_dir("triggers");
    let emu = emulator_with(
        &[],
        EmulatorConfig {
            output_dir: Some(root.clone()),
            buffer_size_mib: 1,
            buffer_interval: Duration::from_secs(300),
            ..Default::default()
        },
    );
    emu.create_stream(StreamSpec::new("big"));
    // Per-stream hints win over the defaults: a zero-second interval.
    emu.create_stream(
        StreamSpec::new("quick").with_destination(
            DestinationSpec::default()
                .with_buffering_hints(1, 0)
                .with_processing(EmuProcessing::enabled(vec![EmuProcessor::new(
                    "AppendDelimiterToRecord",
                )])),
        ),
    );
    let fh = client(&emu.endpoint());

    // Size: 6 x 100 KiB twice crosses 1 MiB on the second batch.
    let chunk = vec![b'a'; 100 * 1024];
    for _ in 0..2 {
        fh.put_record_batch()
            .delivery_stream_name("big")
            .set_records(Some(records(vec![chunk.clone(); 6])))
            .send()
            .await
            .expect("put");
    }
    let big: Vec<_> = files_below(&root.join("big"));
    assert_eq!(big.len(), 1, "written on size without a flush");
    let data = check_object(&root, "big", &big[0]);
    assert_eq!(
        data.len(),
        11 * 100 * 1024,
        "cut at the record crossing 1 MiB"
    );

    // Interval: written by the background flusher, with delimiters.
    fh.put_record_batch()
        .delivery_stream_name("quick")
        .set_records(Some(records([b"one".to_vec(), b"two".to_vec()])))
        .send()
        .await
        .expect("put");
    let mut quick = Vec::new();
    for _ in 0..100 {
        quick = files_below(&root.join("quick"));
        if !quick.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(quick.len(), 1, "written on interval");
    assert_eq!(check_object(&root, "quick", &quick[0]), b"one\ntwo\n");
    drop(emu);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn emulator_works_from_synchronous_code_and_from_json_config() {
    let config = EmulatorConfig::from_json(
        r#"{"streams": [{"name": "sync", "faults": {"latency_ms": 1}}], "seed": 5}"#,
    )
    .expect("config");
    let emu = Emulator::start(config).expect("start");
    let reply = common::api(
        emu.addr(),
        "PutRecordBatch",
        r#"{"DeliveryStreamName":"sync","Records":[{"Data":"aGVsbG8="},{"Data":"d29ybGQ="}]}"#,
    );
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v["FailedPutCount"], 0);
    assert_eq!(v["RequestResponses"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        emu.wait_for_records("sync", 2, Duration::from_secs(1)),
        vec![b"hello".to_vec(), b"world".to_vec()]
    );
    assert!(emu.endpoint().starts_with("http://127.0.0.1:"));
    emu.shutdown();
}
