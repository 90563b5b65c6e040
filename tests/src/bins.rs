//! Where the binaries under test are: $HOLDFAST_BIN_DIR (tests/run sets it to target/release),
//! else the target directory next to this crate, release before debug.
use std::path::PathBuf;

pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("HOLDFAST_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    for profile in ["release", "debug"] {
        let p = target.join(profile).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not built: run `cargo build --release --bins` (tests/run does)")
}

/// The repository root (for scenarios and scripts).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A SIP scenario file under tests/scenarios.
pub fn scenario(name: &str) -> PathBuf {
    repo().join("tests/scenarios").join(name)
}

/// Starts `sba-registrar --config CONFIG` through `cmd` (a plain command or one that enters a
/// namespace), its log appended to CONFIG with the extension `log`.
pub fn spawn_registrar(mut cmd: std::process::Command, config: &std::path::Path) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .expect("log file");
    cmd.arg("--config")
        .arg(config)
        .env("HOLDFAST_LOG_STDERR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sba-registrar")
}
