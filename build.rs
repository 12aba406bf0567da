//! Puts the git revision into the plugin's registration description, so a running Fluent
//! Bit shows exactly which build it loaded.

fn main() {
    println!("cargo:rerun-if-env-changed=FIREHOSE_FANOUT_GIT_REV");
    // Builds without .git (a Docker build context) can pass the revision in.
    if let Some(rev) = std::env::var("FIREHOSE_FANOUT_GIT_REV")
        .ok()
        .filter(|r| !r.is_empty())
    {
        println!("cargo:rustc-env=FIREHOSE_FANOUT_GIT_REV={rev}");
        return;
    }
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FIREHOSE_FANOUT_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}
