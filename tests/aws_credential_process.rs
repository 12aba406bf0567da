//! Credentials from a profile's `credential_process` (aws-config's credentials-process
//! feature): the plugin signs with what the process prints. Its own test binary: it needs
//! an environment without static keys.

mod common;

use firehose_emulator::{Emulator, EmulatorConfig, StreamSpec};
use flb_host::{Plugin, FLB_OK};

#[test]
fn a_profile_with_credential_process_signs_the_calls() {
    let dir = common::fluent_bit::workdir("credential-process");
    let script = dir.join("creds.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDFROMPROCESS\", \"SecretAccessKey\": \"from-process-secret\"}'\n",
    )
    .expect("write the script");
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile cp]\ncredential_process = /bin/sh {}\nregion = us-east-1\n",
            script.display()
        ),
    )
    .expect("write the config");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", &config);
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"));
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        std::env::remove_var(k);
    }
    let emu = Emulator::start(EmulatorConfig {
        streams: vec![StreamSpec::new("cp")],
        ..Default::default()
    })
    .expect("emulator");
    let plugin = Plugin::load(common::plugin_path()).expect("load");
    let ep = emu.endpoint();
    let ins = plugin
        .init(&[
            ("region", "us-east-1"),
            ("endpoint", ep.as_str()),
            ("delivery_streams", "cp"),
            ("profile", "cp"),
        ])
        .expect("init");
    assert_eq!(ins.flush(&common::seq_chunk(0, 10, "x"), "t"), FLB_OK);
    ins.exit();
    let keys = emu.stats().access_keys;
    assert_eq!(
        keys.keys().collect::<Vec<_>>(),
        vec!["AKIDFROMPROCESS"],
        "{keys:?}"
    );
}
