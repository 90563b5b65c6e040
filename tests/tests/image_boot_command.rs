//! `image/boot`, the README's command, as a user runs it: it boots the appliance (the Debian VM
//! image, or `SBA_IMAGE`'s buildroot image) with SIP forwarded from the host's loopback and prints
//! "SIP ready at 127.0.0.1:PORT"; `image/boot sbactl user add` reaches the running VM; a phone
//! registers with digest through the forward over UDP and over TCP, while nothing answers on another
//! loopback address (127.0.0.2: the forward listens on 127.0.0.1 only); SIGINT powers the VM off
//! cleanly (ACPI) and image/boot exits 0 with qemu gone.
use anyhow::{bail, ensure, Context, Result};
use holdfast_tests::bins::repo;
use holdfast_tests::ports::free_port;
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sipp::Sipp;
use holdfast_tests::vm::appliance_registrar;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";

/// kill -SIG PID
fn signal(pid: u32, sig: &str) -> Result<()> {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status()?;
    ensure!(status.success(), "kill -{sig} {pid} failed");
    Ok(())
}

fn boot_script() -> PathBuf {
    repo().join("image/boot")
}

/// `image/boot sbactl ARGS...`
fn sbactl(args: &[&str]) -> Result<Output> {
    Command::new(boot_script()).arg("sbactl").args(args).stdin(Stdio::null()).output().context("running image/boot sbactl")
}

/// `printf 'INPUT' | image/boot sbactl ARGS...`
fn sbactl_with_input(args: &[&str], input: &str) -> Result<Output> {
    let mut child = Command::new(boot_script())
        .arg("sbactl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running image/boot sbactl")?;
    let mut stdin = child.stdin.take().context("image/boot's stdin")?;
    // image/boot may refuse before reading: a closed pipe is its answer, not an error here.
    let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    drop(stdin);
    child.wait_with_output().context("waiting for image/boot sbactl")
}

/// image/boot in the background; its output lines arrive on a channel and are kept for errors.
struct Boot {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Boot {
    fn start(port: u16) -> Result<Boot> {
        let mut cmd = Command::new(boot_script());
        // Not image/boot's default web forwards (8443, 8080): another test on the machine may hold them.
        cmd.args(["--sip-port", &port.to_string(), "--fresh"])
            .args(["--web-port", &free_port().to_string(), "--http-port", &free_port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(bins) = std::env::var_os("HOLDFAST_BIN_DIR") {
            cmd.env("SBA_BIN_DIR", bins);
        }
        let mut child = cmd.spawn().context("starting image/boot")?;
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().context("no stdout")?;
        let err = child.stderr.take().context("no stderr")?;
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(|l| l.ok()) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Ok(Boot { child, lines, seen: Vec::new() })
    }

    /// Waits for a line containing `wanted`; fails when image/boot exits or `within` passes.
    fn wait_for(&mut self, wanted: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(wanted) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.child.try_wait()? {
                        bail!("image/boot exited ({status}) before '{wanted}'\n{}", self.tail());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("image/boot closed its output before '{wanted}'\n{}", self.tail()),
            }
        }
        bail!("no '{wanted}' from image/boot within {within:?}\n{}", self.tail())
    }

    fn tail(&self) -> String {
        self.seen[self.seen.len().saturating_sub(40)..].join("\n")
    }

    /// SIGINT, as Ctrl-C; image/boot's exit status once it has gone, within `within`.
    fn interrupt(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        signal(self.child.id(), "INT")?;
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bail!("image/boot still running {within:?} after SIGINT\n{}", self.tail())
    }
}

impl Drop for Boot {
    fn drop(&mut self) {
        // A failed test must not leave the VM behind: SIGTERM powers it off as SIGINT does.
        if let Ok(None) = self.child.try_wait() {
            let _ = signal(self.child.id(), "TERM");
            let _ = self.child.wait();
        }
    }
}

#[test]
fn image_boot_forwards_sip_adds_users_and_powers_off_on_sigint() -> Result<()> {
    let (domain, _) = appliance_registrar()?;
    // The forward takes `port` and `port + 1` (SIP over TLS): free_port's neighbours are its own.
    let port = free_port();
    let mut boot = Boot::start(port)?;
    let ready = boot.wait_for("SIP ready at", Duration::from_secs(1500))?;
    ensure!(ready == format!("SIP ready at 127.0.0.1:{port}"), "unexpected ready line: {ready}");
    let pid: u32 = std::fs::read_to_string(repo().join("image/build/boot/qemu.pid"))?.trim().parse()?;

    // Only the user who started it reaches the VM's channel.
    for fifo in ["host.in", "host.out"] {
        let mode = std::fs::metadata(repo().join("image/build/boot").join(fifo))?.permissions().mode() & 0o777;
        ensure!(mode == 0o600, "{fifo} has mode {mode:o}");
    }
    // A password reaches the VM's sbactl on its stdin, never in an argv; without --password-stdin
    // there is no terminal in the VM to ask it at.
    let unasked = sbactl(&["user", "add", USER, "--domain", &domain])?;
    ensure!(!unasked.status.success(), "user add without a password succeeded");
    let added = sbactl_with_input(&["user", "add", USER, "--domain", &domain, "--password-stdin"], &format!("{PASSWORD}\n"))?;
    ensure!(added.status.success(), "image/boot sbactl user add failed: {}", String::from_utf8_lossy(&added.stderr));
    let listed = sbactl(&["user", "list"])?;
    ensure!(
        listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains(USER),
        "sbactl user list in the VM: {}{}",
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr)
    );
    let refused = sbactl(&["user", "add", "bad\tname", "--domain", &domain])?;
    ensure!(!refused.status.success(), "an argument with a tab was passed on");

    let scratch = Scratch::new("image-boot-command");
    let target = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for transport in ["u1", "t1"] {
        let out = Sipp::new("register_auth.xml", target)
            .key("domain", domain.clone())
            .arg("-s")
            .arg(USER)
            .credentials(USER, PASSWORD)
            .arg("-t")
            .arg(transport)
            .run(&scratch.path, 30);
        ensure!(
            out.status.success(),
            "REGISTER over {transport} through the forward failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            boot.tail()
        );
    }
    let regs = sbactl(&["registrations", "--json"])?;
    ensure!(String::from_utf8_lossy(&regs.stdout).contains(&format!("sip:{USER}@{domain}")), "no binding in the VM");

    // 127.0.0.2 is loopback too, but the forward is bound to 127.0.0.1 only.
    ensure!(
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 2], port)), Duration::from_secs(2)).is_err(),
        "the SIP forward accepts on 127.0.0.2"
    );

    let status = boot.interrupt(Duration::from_secs(180))?;
    ensure!(status.success(), "image/boot exited {status} after SIGINT\n{}", boot.tail());
    ensure!(boot.seen.iter().any(|l| l.contains("the appliance is powered off")), "no clean power-off\n{}", boot.tail());
    ensure!(!PathBuf::from(format!("/proc/{pid}")).exists(), "qemu ({pid}) still runs after image/boot exited");
    Ok(())
}
