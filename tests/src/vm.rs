//! Appliance VMs for the integration tests: the image built once per run (image/build.sh, which
//! reuses an unchanged image and locks against concurrent builds) or, with `SBA_IMAGE=DIR`, the
//! buildroot image in DIR (its output/images: bzImage, rootfs.ext4), booted under qemu by image/qemu
//! (KVM when it works here, TCG otherwise), a test script injected through fw_cfg whose output
//! arrives on the second serial port, QMP for links and power, and a network namespace with tap
//! devices so that every packet stays inside what the test created.
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The appliance: Debian minbase, systemd, the services; or the buildroot image `SBA_IMAGE`
    /// names.
    Base,
    /// Not the appliance: Debian with Kamailio and sqlite3, the central site of the WAN failover
    /// test (no Holdfast binaries).
    Central,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Base => "base",
            Variant::Central => "central",
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The buildroot image the appliance VMs boot instead of the Debian one: `SBA_IMAGE`, a buildroot
/// output/images directory.
pub fn buildroot_image() -> Option<PathBuf> {
    std::env::var_os("SBA_IMAGE").filter(|d| !d.is_empty()).map(PathBuf::from)
}

/// The image directory of `variant`, built (or found unchanged) on the first call in this process;
/// for [`Variant::Base`] with `SBA_IMAGE` set, that directory, checked.
/// The binaries are those of $HOLDFAST_BIN_DIR (tests/run sets it), else target/release.
pub fn image(variant: Variant) -> Result<PathBuf> {
    if let (Variant::Base, Some(dir)) = (variant, buildroot_image()) {
        for file in ["bzImage", "rootfs.ext4"] {
            if !dir.join(file).is_file() {
                bail!("SBA_IMAGE={} has no {file}: it must be a buildroot output/images directory", dir.display());
            }
        }
        return Ok(dir);
    }
    static BUILT: Mutex<Vec<Variant>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = repo().join("image/build").join(variant.name());
    if built.contains(&variant) {
        return Ok(dir);
    }
    let bins = std::env::var_os("HOLDFAST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/release"));
    if !bins.join("sba-registrar").exists() {
        bail!("{} has no sba-registrar: run `cargo build --release --bins` first", bins.display());
    }
    let started = Instant::now();
    let out = Command::new(repo().join("image/build.sh"))
        .args(["--variant", variant.name()])
        .env("SBA_BIN_DIR", &bins)
        .stdout(Stdio::inherit())
        .output()
        .context("running image/build.sh")?;
    let log = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("image/build.sh --variant {} failed:\n{}", variant.name(), tail(&log, 40));
    }
    eprintln!("vm: image {} ready in {:.0?}: {}", variant.name(), started.elapsed(), tail(&log, 1).trim());
    built.push(variant);
    Ok(dir)
}

/// A shell function for guest scripts: `static_addr MAC CIDR [CIDR...]` gives the NIC with that MAC
/// the addresses through systemd-networkd (the appliance's network manager, which would otherwise run
/// DHCP on it and drop foreign addresses), kept across carrier loss (a cable pulled through QMP), waits
/// until the first address is there (at most 60 s: it fails otherwise) and prints the NIC's name.
pub const STATIC_ADDR_SH: &str = r#"static_addr() {
    mkdir -p /run/systemd/network
    mac=$1
    shift
    {
        printf '[Match]\nMACAddress=%s\n\n[Network]\n' "$mac"
        for cidr; do printf 'Address=%s\n' "$cidr"; done
        printf 'ConfigureWithoutCarrier=yes\nIgnoreCarrierLoss=yes\n'
    } > "/run/systemd/network/10-test-$(echo "$mac" | tr -d :).network"
    # networkd reads the file when it starts, if it has not yet.
    networkctl reload 2>/dev/null
    i=0
    until ip addr show | grep -q " inet ${1%/*}/"; do
        [ $i -lt 600 ] || return 1
        sleep 0.1
        i=$((i+1))
    done
    for d in /sys/class/net/*; do [ "$(cat "$d/address")" = "$mac" ] && basename "$d"; done
    return 0
}"#;

/// A shell function for guest scripts: `wait_active SECONDS UNIT...` waits at most SECONDS for every
/// UNIT to be active and leaves those that are not in `$pending` (empty when all are).
pub const WAIT_ACTIVE_SH: &str = r#"wait_active() {
    deadline=$(( $(date +%s) + $1 ))
    shift
    pending="$*"
    while [ -n "$pending" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        pending=""
        for u; do [ "$(systemctl is-active "$u")" = active ] || pending="$pending $u"; done
        [ -n "$pending" ] && sleep 0.2
    done
}"#;

/// The registrar's domain and database in the configuration the images ship (image/overlay).
pub fn appliance_registrar() -> Result<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../image/overlay/etc/sba/sba.toml");
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let config: toml::Table = text.parse().with_context(|| format!("parsing {path}"))?;
    let registrar = config.get("registrar").and_then(|r| r.as_table()).context("no [registrar] in sba.toml")?;
    let key = |k: &str| -> Result<String> {
        registrar.get(k).and_then(|v| v.as_str()).map(str::to_string).with_context(|| format!("no registrar.{k}"))
    };
    Ok((key("domain")?, key("db")?))
}

/// How to boot one VM.
pub struct VmConfig {
    /// Names the VM's scratch directory (console and serial logs, QMP socket).
    pub name: String,
    pub variant: Variant,
    /// Run qemu inside this network namespace (the taps of [`TestNet`] live there).
    pub netns: Option<String>,
    /// qemu network arguments, e.g. from [`TestNet::nic_args`].
    pub net_args: Vec<String>,
    /// A shell script the VM runs once booted (sba-test-hook.service); its output is [`Vm::output`].
    pub script: Option<String>,
    /// Keep the disk overlay in this file across qemu runs (a power cycle with a new qemu);
    /// without it every boot starts from the pristine image.
    pub disk: Option<PathBuf>,
    pub mem_mib: u32,
}

impl VmConfig {
    pub fn new(name: &str, variant: Variant) -> VmConfig {
        VmConfig {
            name: name.to_string(),
            variant,
            netns: None,
            net_args: Vec::new(),
            script: None,
            disk: None,
            mem_mib: 512,
        }
    }
}

/// A running VM; killed when dropped.
pub struct Vm {
    child: Child,
    dir: PathBuf,
    serial2: PathBuf,
    console: PathBuf,
    qmp: PathBuf,
    started: Instant,
}

impl Vm {
    pub fn boot(cfg: &VmConfig) -> Result<Vm> {
        let image_dir = image(cfg.variant)?;
        // Short path: the QMP socket name must fit in sun_path.
        let dir = repo().join("tests/.work").join(format!("vm-{}-{}", cfg.name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let serial2 = dir.join("serial2.log");
        let console = dir.join("console.log");
        let qmp = dir.join("qmp.sock");
        let mut cmd = match &cfg.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(repo().join("image/qemu"));
                c
            }
            None => Command::new(repo().join("image/qemu")),
        };
        match (cfg.variant, buildroot_image()) {
            (Variant::Base, Some(_)) => cmd.arg("--image").arg(&image_dir),
            _ => cmd.args(["--variant", cfg.variant.name()]),
        };
        cmd.arg("--serial2")
            .arg(&serial2)
            .arg("--console")
            .arg(&console)
            .arg("--qmp")
            .arg(&qmp)
            .args(["--mem", &cfg.mem_mib.to_string()]);
        if let Some(script) = &cfg.script {
            let path = dir.join("test-script");
            std::fs::write(&path, script)?;
            cmd.arg("--fw-cfg").arg(format!("opt/sba/test-script={}", path.display()));
        }
        if let Some(disk) = &cfg.disk {
            cmd.arg("--disk").arg(disk);
        }
        cmd.arg("--").args(&cfg.net_args);
        let log = std::fs::File::create(dir.join("qemu.log"))?;
        let started = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting image/qemu")?;
        Ok(Vm { child, dir, serial2, console, qmp, started })
    }

    /// When qemu was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The complete lines the test script wrote to the second serial port so far: a line counts
    /// once its newline has arrived, because a TCG guest's UART delivers a line in pieces and a
    /// marker can be read before the rest of its line.
    pub fn output(&self) -> String {
        let mut out = self.serial2_so_far();
        out.truncate(out.rfind('\n').map_or(0, |end| end + 1));
        out
    }

    fn serial2_so_far(&self) -> String {
        read_lossy(&self.serial2).replace('\r', "")
    }

    /// The kernel and systemd console so far.
    pub fn console(&self) -> String {
        read_lossy(&self.console).replace('\r', "")
    }

    /// Waits for a line of [`Vm::output`] containing `marker` and returns it; fails when `within`
    /// passes or qemu exits first, with the ends of the logs in the error.
    pub fn wait_for(&mut self, marker: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.output().lines().find(|l| l.contains(marker)) {
                return Ok(line.to_string());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("qemu exited ({status}) before '{marker}'\n{}", self.diagnostics());
            }
            if Instant::now() >= deadline {
                bail!("no '{marker}' within {within:?}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ends of the qemu, console and serial logs, for failure messages.
    pub fn diagnostics(&self) -> String {
        format!(
            "--- qemu ({})\n{}\n--- console\n{}\n--- serial2\n{}",
            self.dir.display(),
            tail(&read_lossy(&self.dir.join("qemu.log")), 10),
            tail(&self.console(), 30),
            tail(&self.serial2_so_far(), 60)
        )
    }

    /// Runs one QMP command and returns its "return" value.
    pub fn qmp(&self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let stream = connect_within(&self.qmp, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        read_qmp_reply(&mut reader, true)?;
        writeln!(writer, "{}", json!({"execute": "qmp_capabilities"}))?;
        read_qmp_reply(&mut reader, false)?;
        let mut msg = json!({ "execute": command });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        writeln!(writer, "{msg}")?;
        read_qmp_reply(&mut reader, false).with_context(|| format!("QMP {command}"))
    }

    /// Takes the link of the NIC (or netdev) `name` down or up, as a cable pulled or plugged.
    pub fn set_link(&self, name: &str, up: bool) -> Result<()> {
        self.qmp("set_link", Some(json!({ "name": name, "up": up }))).map(|_| ())
    }

    /// A hard reset, as a power cycle; with the same qemu the disk keeps what the guest wrote.
    pub fn reset(&self) -> Result<()> {
        self.qmp("system_reset", None).map(|_| ())
    }

    /// ACPI power-off; after `within` qemu is told to quit, and then killed. The VM's logs are
    /// removed after a clean power-off and kept otherwise.
    pub fn shutdown(mut self, within: Duration) -> Result<()> {
        let _ = self.qmp("system_powerdown", None);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.qmp("quit", None);
        std::thread::sleep(Duration::from_secs(1));
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
            self.child.wait()?;
            bail!("the VM did not power off within {within:?}\n{}", self.diagnostics());
        }
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn connect_within(path: &Path, within: Duration) -> Result<UnixStream> {
    let deadline = Instant::now() + within;
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => {
                return Err(anyhow!(e).context(format!("connecting to QMP at {}", path.display())))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads QMP lines up to the greeting or a command's reply, skipping asynchronous events.
fn read_qmp_reply(reader: &mut BufReader<UnixStream>, greeting: bool) -> Result<Value> {
    for _ in 0..1000 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            bail!("QMP closed the connection");
        }
        let v: Value = serde_json::from_str(&line).with_context(|| format!("QMP sent '{line}'"))?;
        if greeting && v.get("QMP").is_some() {
            return Ok(v);
        }
        if let Some(r) = v.get("return") {
            return Ok(r.clone());
        }
        if let Some(e) = v.get("error") {
            bail!("QMP error: {e}");
        }
    }
    bail!("QMP sent 1000 events and no reply")
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A network namespace made by the test, holding the host side of the VMs' links: tap devices with
/// the test's own addresses. Deleted (with its taps) when dropped.
pub struct TestNet {
    pub ns: String,
}

impl TestNet {
    pub fn new(tag: &str) -> Result<TestNet> {
        let ns = format!("hf-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        run("ip", &["netns", "add", &ns])?;
        let net = TestNet { ns };
        net.ip(&["link", "set", "lo", "up"])?;
        Ok(net)
    }

    /// Runs `ip -n NS ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A tap device in the namespace with `host_cidr` (e.g. "10.231.0.1/24") on the host side.
    pub fn add_tap(&self, tap: &str, host_cidr: &str) -> Result<()> {
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
        self.ip(&["addr", "add", host_cidr, "dev", tap])?;
        self.ip(&["link", "set", tap, "up"])
    }

    /// A bridge in the namespace with `host_cidr` on it: a switch joining several VMs' NICs.
    pub fn add_bridge(&self, bridge: &str, host_cidr: &str) -> Result<()> {
        self.ip(&["link", "add", bridge, "type", "bridge"])?;
        self.ip(&["addr", "add", host_cidr, "dev", bridge])?;
        self.ip(&["link", "set", bridge, "up"])
    }

    /// A tap device in the namespace plugged into `bridge` (made by [`TestNet::add_bridge`]).
    pub fn add_bridged_tap(&self, tap: &str, bridge: &str) -> Result<()> {
        self.ip(&["tuntap", "add", "dev", tap, "mode", "tap"])?;
        self.ip(&["link", "set", tap, "master", bridge])?;
        self.ip(&["link", "set", tap, "up"])
    }

    /// qemu arguments for a virtio NIC on `tap` whose netdev is named `id` (for [`Vm::set_link`]).
    pub fn nic_args(tap: &str, id: &str, mac: &str) -> Vec<String> {
        vec![
            "-netdev".into(),
            format!("tap,id={id},ifname={tap},script=no,downscript=no"),
            "-device".into(),
            format!("virtio-net-pci,netdev={id},mac={mac}"),
        ]
    }

    /// A command to run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!("{program} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
