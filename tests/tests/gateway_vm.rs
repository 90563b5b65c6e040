//! sba-gateway on the real DAHDI modules in a VM: tests/gateway/run-vm-test.sh boots the gateway
//! image, starts sba-gateway as a Type=notify service before any DAHDI module is loaded (READY
//! without its span), then creates two dynamic `loc` spans back to back: sba-gateway configures
//! span 1 itself from sba.toml (no dahdi_cfg) and runs on it (user side) against
//! libpri's network side on span 2, with sipp in the VM as sba-mediation: a PSTN call crossing to
//! SIP and back with its audio compared byte for byte both ways (bchan through sipp's RTP echo),
//! a call from SIP to the PSTN, an overlap-dialled PSTN call (SETUP ACKNOWLEDGE, digits in
//! INFORMATION, the INVITE once the dial plan says the number is complete), 23 calls at once then 503 cause 34, and span 2
//! destroyed (red alarm on span 1): trunk unavailable, INVITEs answered 503 cause 38.
use anyhow::{ensure, Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// Every step the VM must report ok (tests/gateway/scenario.sh).
const STEPS: &[&str] = &[
    "gateway-ready-without-dahdi",
    "gateway-configured-span-1",
    "d-channel-up",
    "pstn-setup-placed",
    "pstn-call-proceeding-on-1",
    "pstn-call-ringing-from-sip-180",
    "pstn-call-answered-from-sip-200",
    "pstn-call-audio-both-ways-byte-exact",
    "pstn-call-released",
    "mediation-answered-and-got-bye-cause-16",
    "branch-call-setup-for-3000",
    "branch-call-released",
    "mediation-call-answered-and-got-bye-cause-16",
    "pstn-call-2-answered-from-sip",
    "pstn-call-2-cleared-by-mediation-cause-31",
    "mediation-hung-up-the-pstn-call",
    "branch-call-2-setup-for-3000",
    "branch-call-2-cleared-by-mediation-cause-31",
    "mediation-hung-up-the-branch-call",
    "glare-setups-crossed-the-network-call-takes-channel-1",
    "glare-network-call-proceeding-on-1",
    "glare-branch-call-moved-off-channel-1",
    "glare-network-call-answered-from-sip",
    "glare-both-calls-released",
    "glare-mediation-calls-completed",
    "glare-mediation-answers-completed",
    "overlap-setup-acknowledged",
    "overlap-waits-for-the-complete-number",
    "overlap-complete-number-proceeding",
    "overlap-invite-for-2001-answered",
    "overlap-call-released",
    "mediation-got-invite-for-2001-and-bye",
    "23-calls-answered-through-sip",
    "full-span-invite-503-cause-34",
    "23-calls-released",
    "mediation-got-23-byes",
    "span-down-trunk-unavailable",
    "span-down-invite-503-cause-38",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A hash of everything the image is built from (tests/gateway/image).
fn inputs_hash() -> Result<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("cd tests/gateway/image && find . -type f -not -path './out/*' | LC_ALL=C sort | xargs sha256sum | sha256sum")
        .current_dir(repo())
        .output()
        .context("hashing tests/gateway/image")?;
    ensure!(out.status.success(), "hashing tests/gateway/image failed");
    Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned())
}

/// The gateway VM image in tests/.work/gateway-image, built on the first call in this process
/// unless the one there was built from the same inputs (about 3 minutes when it is built).
fn image() -> Result<PathBuf> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = built.as_ref() {
        return Ok(dir.clone());
    }
    let dir = repo().join("tests/.work/gateway-image");
    let inputs = inputs_hash()?;
    let stamp = dir.join("inputs.sha256");
    let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == inputs) && dir.join("rootfs.ext4").exists();
    if !fresh {
        let _ = std::fs::remove_file(&stamp);
        let started = Instant::now();
        let out = Command::new(repo().join("tests/gateway/image/build-image.sh"))
            .arg(&dir)
            .output()
            .context("running tests/gateway/image/build-image.sh")?;
        ensure!(
            out.status.success(),
            "build-image.sh failed:\n{}",
            tail(&String::from_utf8_lossy(&out.stderr), 30)
        );
        std::fs::write(&stamp, &inputs)?;
        eprintln!("gateway image built in {:.0?}", started.elapsed());
    }
    *built = Some(dir.clone());
    Ok(dir)
}

#[test]
fn gateway_on_real_dahdi_carries_calls_to_and_from_sip_and_reports_the_alarm() -> Result<()> {
    let image = image()?;
    let bins = std::env::var_os("HOLDFAST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release"));
    ensure!(
        bins.join("sba-gateway").exists(),
        "{} has no sba-gateway: run `cargo build --release --bins` first",
        bins.display()
    );
    let started = Instant::now();
    let out = Command::new(repo().join("tests/gateway/run-vm-test.sh"))
        .arg(&image)
        .env("HOLDFAST_BIN_DIR", &bins)
        .output()
        .context("running tests/gateway/run-vm-test.sh")?;
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("VM test in {:.0?}:\n{report}", started.elapsed());
    let failed: Vec<&str> = report.lines().filter(|l| l.starts_with("fail")).collect();
    ensure!(
        out.status.success() && failed.is_empty(),
        "run-vm-test.sh: {} with failed steps {failed:?}\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stderr), 20)
    );
    for step in STEPS {
        let ok = format!("ok {step}");
        ensure!(report.lines().any(|l| l == ok || l.starts_with(&format!("{ok} "))), "no '{ok}' in the report");
    }
    Ok(())
}
