//! IRSA (EKS IAM roles for service accounts) through the default credential chain: with
//! `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` set and no static credentials, the chain
//! exchanges the token for the role's credentials with STS (moto here, through
//! `AWS_ENDPOINT_URL_STS`), and every Firehose request is signed with them.
//!
//! Its own test binary: it sets process-wide environment the other tests must not see.

mod common;

use common::moto::start_moto;
use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
use flb_host::{Plugin, FLB_OK};

#[test]
fn web_identity_credentials_sign_the_requests() {
    let moto = start_moto();
    let local = format!("http://127.0.0.1:{}", moto.port);
    let dir = std::env::temp_dir().join(format!("ff-irsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let token = dir.join("token");
    // What EKS mounts: a projected service-account token (moto does not check it).
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmbHVlbnQtYml0In0.c2lnbmF0dXJl",
    )
    .expect("token file");
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ] {
        std::env::remove_var(k);
    }
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/firehose-fanout-test");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/firehose-fanout-test",
    );
    std::env::set_var("AWS_WEB_IDENTITY_TOKEN_FILE", &token);
    std::env::set_var(
        "AWS_ROLE_ARN",
        "arn:aws:iam::123456789012:role/fluent-bit-irsa",
    );
    std::env::set_var("AWS_ROLE_SESSION_NAME", "irsa-test");
    // STS at moto; and any other AWS client the SDK might make stays on 127.0.0.1 too.
    std::env::set_var("AWS_ENDPOINT_URL_STS", &local);
    std::env::set_var("AWS_ENDPOINT_URL", &local);

    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("irsa")],
        ..Default::default()
    })
    .expect("emulator");
    let ep = emu.endpoint();
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let ins = plugin
        .init(&[
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_streams", "irsa"),
        ])
        .expect("init");
    let chunk = common::seq_chunk(0, 20, "irsa");
    assert_eq!(ins.flush(&chunk, "t"), FLB_OK);
    assert_eq!(ins.exit(), FLB_OK);
    let keys = emu.stats().access_keys;
    assert!(!keys.is_empty(), "requests reached the emulator");
    // moto issues temporary keys (ASIA...) for AssumeRoleWithWebIdentity.
    assert!(keys.keys().all(|k| k.starts_with("ASIA")), "{keys:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
