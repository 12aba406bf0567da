//! moto, a real third-party AWS emulator: `moto_server` from .ci/install-moto.sh
//! (target/tools/moto-venv), $MOTO_SERVER, or PATH; it listens on 127.0.0.1 only.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn moto_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    // The workspace's target/tools, from the root crate's tests or a member crate's
    // (crates/cli includes this file).
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for root in [here.clone(), here.join("../..")] {
        let venv = root.join("target/tools/moto-venv/bin/moto_server");
        if venv.exists() {
            return venv;
        }
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.exists())
    });
    on_path.unwrap_or_else(|| {
        panic!("moto_server not found: run .ci/install-moto.sh (or set MOTO_SERVER)")
    })
}

/// moto_server on a free port of 127.0.0.1, once it answers.
pub fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(moto_binary())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto_server");
    let moto = Moto { child, port };
    let t = Instant::now();
    while http(port, "GET", "/", b"").is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "moto_server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// A minimal HTTP/1.1 call to moto on 127.0.0.1.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    firehose_emulator::client::request(
        &format!("http://127.0.0.1:{port}"),
        method,
        path,
        // moto refuses anonymous object reads; it checks that a signature is there, not
        // that it is right.
        &[(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDMOTO/20261128/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )],
        body,
    )
}
