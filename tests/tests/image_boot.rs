//! The appliance image boots under qemu, the services whose binaries it holds reach READY under
//! systemd (Type=notify) with their logs in journald, and a sipp phone on the test's own network
//! registers to the registrar in the VM (digest challenge, then 200) and shows in `sbactl registrations`;
//! a second phone registers and the first one calls it through the appliance; with the VM's link cut through QMP the phone gets no answer, and a 200 again once it is restored;
//! after a hard reset of the VM the registrar is READY again with the binding from SQLite.
use anyhow::{bail, ensure, Context, Result};
use holdfast_tests::bins::scenario;
use holdfast_tests::netns::Netns;
use holdfast_tests::phones::{call, Answerer, PhoneConfig};
use holdfast_tests::vm::{appliance_registrar, TestNet, Variant, Vm, VmConfig, STATIC_ADDR_SH, WAIT_ACTIVE_SH};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

const HOST: &str = "10.231.0.1";
const GUEST: &str = "10.231.0.2";
const GUEST_MAC: &str = "52:54:00:5b:a0:02";
const USER: &str = "alice";
const PASSWORD: &str = "branch-secret";
/// The phone alice calls.
const CALLEE: &str = "bob";
const CALLEE_PASSWORD: &str = "bob-secret";

/// Runs in the VM (sba-test-hook.service) at every boot; its report lines carry the boot's number
/// (the disk survives a reset). Every loop is bounded.
fn guest_script(domain: &str, db: &str) -> String {
    format!(
        r#"#!/bin/sh
set -u
mkdir -p /var/lib/sba-test
boot=$(( $(cat /var/lib/sba-test/boots 2>/dev/null || echo 0) + 1 ))
echo $boot > /var/lib/sba-test/boots
sync
{STATIC_ADDR_SH}
{WAIT_ACTIVE_SH}
iface=$(static_addr {GUEST_MAC} {GUEST}/24) && echo "NET-UP $iface"
units="sba-registrar sba-mediation sba-gateway"
present=""
for u in $units; do [ -x "/usr/bin/$u" ] && present="$present $u"; done
wait_active 150 $present
for u in $units; do
    echo "UNIT $u present=$([ -x "/usr/bin/$u" ] && echo yes || echo no)" \
        "$(systemctl show -p ActiveState -p SubState -p Type -p NRestarts -p StatusText "$u" | tr '\n' ' ')"
done
echo "READY-ALL boot=$boot uptime=$(cut -d' ' -f1 /proc/uptime) pending=[$pending]"
# The boot as a whole: "running", not "degraded" (a failed unit, e.g. a DAHDI setup with no card).
# No timeout(1) here (buildroot's busybox has none): the test's own deadline bounds the wait.
echo "SYSTEM $(systemctl is-system-running --wait) failed=[$(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ' ')]"
# The units' sandboxing in force: seccomp filter mode (2), no new privileges and the service's own
# /proc (its mount options), per service.
for u in $present; do
    pid=$(systemctl show -p MainPID --value "$u")
    echo "SANDBOX $u $(grep -E '^(Seccomp|NoNewPrivs):' "/proc/$pid/status" | tr -s '\t\n' '  ')" \
        "proc=$(awk '$5 == "/proc" {{print $NF}}' "/proc/$pid/mountinfo" | tr '\n' ' ')"
done
free -m | awk '/^Mem:/ {{print "MEM used_mib=" $3 " total_mib=" $2}}'
for u in $present; do journalctl -b -u "$u" --no-pager -o cat | sed "s/^/JOURNAL $u /"; done
echo "JOURNAL-END boot=$boot"
[ $boot = 1 ] && echo {PASSWORD} | sbactl --db {db} user add {USER} --domain {domain} --password-stdin \
    && echo {CALLEE_PASSWORD} | sbactl --db {db} user add {CALLEE} --domain {domain} --password-stdin && echo USER-ADDED
i=0
while [ $i -lt 120 ]; do
    out=$(sbactl --db {db} registrations --json)
    case "$out" in *{USER}@*) echo "BINDING boot=$boot $out" | tr '\n' ' '; echo; break ;; esac
    sleep 1
    i=$((i+1))
done
echo HOOK-DONE
"#
    )
}

#[test]
fn image_boots_services_ready_and_a_phone_registers() -> Result<()> {
    let (domain, db) = appliance_registrar()?;
    let net = TestNet::new("boot")?;
    net.add_tap("tap0", &format!("{HOST}/24"))?;
    let mut cfg = VmConfig::new("boot", Variant::Base);
    cfg.netns = Some(net.ns.clone());
    cfg.net_args = TestNet::nic_args("tap0", "n0", GUEST_MAC);
    cfg.script = Some(guest_script(&domain, &db));
    let mut vm = Vm::boot(&cfg)?;

    let ready = vm.wait_for("READY-ALL", Duration::from_secs(240))?;
    let boot_to_ready = vm.started().elapsed();
    eprintln!("image_boot: qemu start to services READY {boot_to_ready:.1?} ({ready})");
    vm.wait_for("JOURNAL-END boot=1", Duration::from_secs(60))?;
    let out = vm.output();
    if !ready.contains("pending=[]") {
        let mut report: Vec<&str> = out.lines().filter(|l| l.starts_with("UNIT ")).collect();
        // The last journal lines of each unit that is not READY: why it failed.
        for unit in ["sba-registrar", "sba-mediation", "sba-gateway"].iter().filter(|u| ready.contains(&format!(" {u}"))) {
            let lines: Vec<&str> = out.lines().filter(|l| l.starts_with(&format!("JOURNAL {unit} "))).collect();
            report.extend_from_slice(&lines[lines.len().saturating_sub(8)..]);
        }
        bail!("services not READY: {ready}\n{}", report.join("\n"));
    }
    let units: Vec<&str> = out.lines().filter(|l| l.starts_with("UNIT ")).collect();
    ensure!(units.len() == 3, "no unit report\n{}", vm.diagnostics());
    // Finding 3 and 4 of issue 16, on the booted image: nothing failed, the sandboxing is applied.
    let system = out.lines().find(|l| l.starts_with("SYSTEM ")).context("no system state report")?;
    ensure!(system.starts_with("SYSTEM running "), "the system did not boot cleanly: {system}");
    for line in units.iter().filter(|l| l.contains("present=yes")) {
        let unit = line.split_whitespace().nth(1).unwrap_or_default();
        let sandbox = out.lines().find(|l| l.starts_with(&format!("SANDBOX {unit} "))).with_context(|| format!("no sandbox report for {unit}"))?;
        ensure!(
            sandbox.contains("NoNewPrivs: 1") && sandbox.contains("Seccomp: 2"),
            "{unit} runs without its seccomp filter or with new privileges allowed: {sandbox}"
        );
        ensure!(
            sandbox.contains("hidepid=invisible") && sandbox.contains("subset=pid"),
            "{unit} sees other processes or the kernel's settings in its /proc: {sandbox}"
        );
    }
    vm.wait_for("USER-ADDED", Duration::from_secs(60))?;
    for line in &units {
        if line.contains("present=yes") {
            ensure!(
                line.contains("ActiveState=active") && line.contains("SubState=running") && line.contains("Type=notify"),
                "not READY under systemd: {line}"
            );
        }
    }
    ensure!(
        units.iter().any(|l| l.starts_with("UNIT sba-registrar present=yes")),
        "the image has no sba-registrar: {units:?}"
    );
    ensure!(out.lines().any(|l| l.starts_with("JOURNAL sba-registrar ")), "no sba-registrar lines in journald\n{out}");

    // The phone: sipp on the host side of the tap, a few attempts while the registrar settles.
    let dir = std::env::temp_dir().join(format!("hf-image-boot-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let register = |timeout_s: u32| -> Result<std::process::Output> {
        net.command("sipp")
            .current_dir(&dir)
            .arg(format!("{GUEST}:5060"))
            .arg("-sf")
            .arg(scenario("register_auth.xml"))
            .args(["-i", HOST, "-p", "5070", "-t", "u1", "-nostdin"])
            .args(["-m", "1", "-s", USER, "-au", USER, "-ap", PASSWORD, "-key", "domain", &domain])
            .args(["-timeout", &format!("{timeout_s}s"), "-timeout_error"])
            .stdin(Stdio::null())
            .output()
            .context("running sipp (apt-get install sip-tester)")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempts = 0;
    let sipp = loop {
        attempts += 1;
        let out = register(10)?;
        if out.status.success() || Instant::now() >= deadline || attempts == 5 {
            break out;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    ensure!(
        sipp.status.success(),
        "sipp REGISTER to {GUEST} failed after {attempts} attempts: {}\n{}",
        String::from_utf8_lossy(&sipp.stderr),
        vm.diagnostics()
    );
    let binding = vm.wait_for("BINDING boot=1", Duration::from_secs(60))?;
    ensure!(binding.contains(&format!("sip:{USER}@{domain}")), "binding not stored: {binding}");
    ensure!(binding.contains(HOST), "the binding's contact is not the phone's: {binding}");

    // Bob's phone registers (digest) and answers; alice calls him through the appliance's proxy
    // (from a port whose media ports, port + 10000 and + 10002 in sipp, do not meet bob's).
    let ns = Netns { name: net.ns.clone() };
    let host: std::net::Ipv4Addr = HOST.parse()?;
    let registrar = SocketAddr::from((GUEST.parse::<std::net::Ipv4Addr>()?, 5060));
    let bob = Answerer::phone(
        &ns,
        &dir,
        &PhoneConfig {
            user: CALLEE,
            password: CALLEE_PASSWORD,
            domain: &domain,
            addr: SocketAddr::from((host, 5072)),
            registrar,
            expires: 600,
            refresh: Duration::from_secs(30),
        },
        120,
    );
    ensure!(bob.wait_registrations(0, Duration::from_secs(30)), "bob did not register:\n{}\n{}", bob.log(), vm.diagnostics());
    let out = call(&ns, SocketAddr::from((host, 5090)), registrar, USER, CALLEE, &domain, Duration::from_millis(500)).run(&dir, 30);
    ensure!(
        out.status.success(),
        "alice's call to bob failed: {}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr).trim(),
        bob.log(),
        vm.diagnostics()
    );
    ensure!(bob.answered() == 1 && bob.hung_up() == 1, "bob answered {} and hung up {} calls", bob.answered(), bob.hung_up());
    drop(bob);

    // The VM's cable, pulled and plugged back through QMP: no answer while it is out, 200 after.
    vm.set_link("n0", false)?;
    ensure!(!register(4)?.status.success(), "the registrar answered with its link down");
    vm.set_link("n0", true)?;
    let again = register(10)?;
    ensure!(again.status.success(), "no 200 after the link came back: {}", String::from_utf8_lossy(&again.stderr));

    // A power cycle without shutdown: the registrar comes back READY with the binding from SQLite.
    vm.reset()?;
    let ready = vm.wait_for("READY-ALL boot=2", Duration::from_secs(240))?;
    ensure!(ready.contains("pending=[]"), "services not READY after the power cycle: {ready}\n{}", vm.diagnostics());
    let binding = vm.wait_for("BINDING boot=2", Duration::from_secs(60))?;
    ensure!(binding.contains(&format!("sip:{USER}@{domain}")), "binding lost in the power cycle: {binding}");

    let _ = std::fs::remove_dir_all(&dir);
    vm.shutdown(Duration::from_secs(60))
}
