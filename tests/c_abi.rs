//! A C program compiled against the committed header and linked with the built library
//! calls the exported symbols, checking the struct layouts and the registration.

mod common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn c_program_registers_through_the_header() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = common::plugin_path();
    let dir = lib.parent().expect("library dir");
    let out = std::env::temp_dir().join(format!("ff-register-{}", std::process::id()));
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg(root.join("tests/c/register.c"))
        // By path: the cdylib has no SONAME, so the program records this exact file.
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .arg("-o")
        .arg(&out)
        .status()
        .expect("running the C compiler");
    assert!(status.success(), "compiling tests/c/register.c failed");
    // cargo test's LD_LIBRARY_PATH may name an older copy in target/<profile>/.
    let run = Command::new(&out)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("running the C program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C program failed: {stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("name=firehose_fanout\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("firehose-fanout {}", env!("CARGO_PKG_VERSION"))),
        "description carries the version: {stdout}"
    );
    std::fs::remove_file(&out).ok();
}
