//! The HTTP surface without the SDK: protocol errors, `/stats`,
//! `/healthz`, the admin API, and `Server`/`serve` in the caller's runtime.

mod common;

use std::time::Duration;

use common::{api, emulator, http};
use firehose_emulator::{EmulatorConfig, Server, StreamSpec, StreamStatus};

#[test]
fn protocol_errors_carry_type_header_and_body() {
    let emu = emulator(&["s"]);

    let reply = api(emu.addr(), "PutRecordBatch", "{not json");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("x-amzn-ErrorType"),
        Some("SerializationException")
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/x-amz-json-1.1")
    );
    assert!(reply.header("x-amzn-RequestId").is_some());
    assert_eq!(reply.json()["__type"], "SerializationException");

    let reply = api(
        emu.addr(),
        "PutRecordBatch",
        r#"{"DeliveryStreamName":"s","Records":[{"Data":"%%%"}]}"#,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["__type"], "SerializationException");

    let reply = api(
        emu.addr(),
        "PutRecordBatch",
        r#"{"DeliveryStreamName":"s"}"#,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["__type"], "InvalidArgumentException");

    let reply = api(emu.addr(), "StartDeliveryStreamEncryption", "{}");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("x-amzn-ErrorType"),
        Some("UnknownOperationException")
    );
    assert_eq!(reply.json()["__type"], "UnknownOperationException");

    let reply = http(emu.addr(), "POST", "/", &[], b"{}");
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["__type"], "UnknownOperationException");

    let reply = api(
        emu.addr(),
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"zzz"}"#,
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["__type"], "ResourceNotFoundException");

    // An empty body counts as `{}`.
    let reply = api(emu.addr(), "ListDeliveryStreams", "");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["DeliveryStreamNames"][0], "s");

    let reply = http(emu.addr(), "GET", "/nowhere", &[], b"");
    assert_eq!(reply.status, 404);

    let stats = emu.stats();
    assert_eq!(stats.requests, 7);
    assert_eq!(stats.rejected_requests, 6);
}

#[test]
fn healthz_and_stats() {
    let emu = emulator(&["a", "b"]);
    assert_eq!(http(emu.addr(), "GET", "/healthz", &[], b"").status, 200);
    let reply = api(
        emu.addr(),
        "PutRecord",
        r#"{"DeliveryStreamName":"a","Record":{"Data":"aGVsbG8="}}"#,
    );
    assert_eq!(reply.status, 200);
    assert!(reply.json()["RecordId"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert_eq!(reply.json()["Encrypted"], false);

    let reply = http(emu.addr(), "GET", "/stats", &[], b"");
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert_eq!(v["requests"], 1);
    assert_eq!(v["streams"]["a"]["accepted_records"], 1);
    assert_eq!(v["streams"]["a"]["accepted_bytes"], 5);
    assert_eq!(v["streams"]["a"]["series"][0]["bytes"], 5);
    assert_eq!(v["streams"]["b"]["requests"], 0);
    assert!(v["uptime_seconds"].as_f64().is_some());
}

/// `firehose_emulator::client`, the blocking client other processes use, against the
/// emulator itself.
#[test]
fn blocking_client_reads_stats_and_statuses() {
    let emu = emulator(&["a"]);
    let (status, body) = firehose_emulator::client::request(
        &emu.endpoint(),
        "GET",
        "/stats",
        &[("Accept", "application/json")],
        b"",
    )
    .expect("GET /stats");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON stats");
    assert_eq!(v["streams"]["a"]["accepted_records"], 0);
    let (status, _) =
        firehose_emulator::client::request(&emu.endpoint(), "GET", "/nowhere", &[], b"")
            .expect("GET /nowhere");
    assert_eq!(status, 404);
}

#[test]
fn admin_api_steers_a_running_emulator() {
    let emu = emulator(&[]);
    let addr = emu.addr();
    let post = |path: &str, body: &str| http(addr, "POST", path, &[], body.as_bytes());
    let put = |stream: &str| {
        api(
            addr,
            "PutRecordBatch",
            &format!(
                r#"{{"DeliveryStreamName":"{stream}","Records":[{{"Data":"eA=="}},{{"Data":"eQ=="}}]}}"#
            ),
        )
    };

    // Create streams.
    assert_eq!(post("/admin/streams", r#"{"name":"x"}"#).status, 200);
    assert_eq!(
        post(
            "/admin/streams",
            r#"{"name":"y","quota":{"records_per_second":1}}"#
        )
        .status,
        200
    );
    assert_eq!(post("/admin/streams", r#"{"name":"bad name"}"#).status, 400);
    assert_eq!(post("/admin/streams", r#"{"nme":"typo"}"#).status, 400);
    assert_eq!(emu.stream_names(), vec!["x".to_string(), "y".to_string()]);
    let listed = http(addr, "GET", "/admin/streams", &[], b"").json();
    assert_eq!(listed["streams"][1]["quota"]["records_per_second"], 1.0);

    // Quota from creation: one record of two passes.
    assert_eq!(put("y").json()["FailedPutCount"], 1);
    assert_eq!(
        post("/admin/quota", r#"{"stream":"y","quota":null}"#).status,
        200
    );
    assert_eq!(put("y").json()["FailedPutCount"], 0);
    assert_eq!(
        post("/admin/quota", r#"{"stream":"nope","quota":null}"#).status,
        404
    );

    // Faults.
    assert_eq!(
        post(
            "/admin/faults",
            r#"{"stream":"x","faults":{"record_failure_rate":1.0}}"#
        )
        .status,
        200
    );
    assert_eq!(put("x").json()["FailedPutCount"], 2);
    assert_eq!(
        post(
            "/admin/faults",
            r#"{"faults":{"request_failure_rate":1.0,"request_failure_status":502}}"#
        )
        .status,
        200
    );
    assert_eq!(put("y").status, 502);
    assert_eq!(post("/admin/faults", r#"{"faults":{}}"#).status, 200);
    assert_eq!(
        post("/admin/faults", r#"{"stream":"x","faults":{}}"#).status,
        200
    );
    assert_eq!(
        post("/admin/faults", r#"{"stream":"nope","faults":{}}"#).status,
        404
    );
    assert_eq!(put("x").json()["FailedPutCount"], 0);

    // Status.
    assert_eq!(
        post("/admin/status", r#"{"stream":"x","status":"DELETING"}"#).status,
        200
    );
    assert_eq!(emu.status("x"), Some(StreamStatus::Deleting));
    assert_eq!(put("x").json()["__type"], "ResourceNotFoundException");
    assert_eq!(
        post("/admin/status", r#"{"stream":"x","status":"ACTIVE"}"#).status,
        200
    );
    assert_eq!(
        post("/admin/status", r#"{"stream":"x","status":"BOGUS"}"#).status,
        400
    );

    // Outage with a window.
    assert_eq!(post("/admin/outage", r#"{"duration_ms":500}"#).status, 200);
    assert_eq!(put("x").status, 503);
    std::thread::sleep(Duration::from_millis(550));
    assert_eq!(put("x").status, 200);
    assert_eq!(post("/admin/outage", r#"{"stream":"x"}"#).status, 200);
    assert_eq!(put("x").status, 503);
    assert_eq!(put("y").status, 200);
    assert_eq!(
        post("/admin/outage", r#"{"stream":"x","end":true}"#).status,
        200
    );
    assert_eq!(put("x").status, 200);

    // Records, flush, delete.
    let records = http(addr, "GET", "/admin/records/x", &[], b"").json();
    assert_eq!(records["records"][0], "eA==");
    assert_eq!(records["records"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        http(addr, "DELETE", "/admin/records/x", &[], b"").status,
        200
    );
    assert!(emu.records("x").is_empty());
    assert_eq!(post("/admin/flush", "").status, 200);
    assert_eq!(
        http(addr, "DELETE", "/admin/streams/x", &[], b"").status,
        200
    );
    assert_eq!(
        http(addr, "DELETE", "/admin/streams/x", &[], b"").status,
        404
    );
    assert_eq!(http(addr, "GET", "/admin/records/x", &[], b"").status, 404);
    assert_eq!(http(addr, "GET", "/admin/flush", &[], b"").status, 405);
    assert_eq!(http(addr, "GET", "/admin/nothing", &[], b"").status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runs_in_the_callers_runtime() {
    let server = Server::bind(EmulatorConfig {
        streams: vec![StreamSpec::new("fg")],
        ..Default::default()
    })
    .await
    .expect("bind");
    let addr = server.local_addr();
    let handle = server.handle();
    assert_eq!(handle.addr(), addr);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let fh = common::client(&handle.endpoint());
    fh.put_record_batch()
        .delivery_stream_name("fg")
        .set_records(Some(common::records([b"foreground".to_vec()])))
        .send()
        .await
        .expect("put");
    assert_eq!(handle.records("fg"), vec![b"foreground".to_vec()]);

    stop.send(()).expect("server still running");
    running.await.expect("join").expect("clean exit");
    // The port is free again: nobody answers there.
    let gone = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr))
        .await
        .expect("join");
    assert!(gone.is_err());
}
