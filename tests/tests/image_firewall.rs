//! The appliance's firewall (image/overlay: sba-firewall.service, /etc/sba/firewall4.rules), booted
//! in the image under test (the Debian VM image, or the buildroot one with `SBA_IMAGE`). The VM's NIC
//! has an address in a site network (10.233.0.0/24, private: let in) and one outside them
//! (198.51.100.0/24, a public documentation network: not let in). From the site network SIP answers
//! and the web page connects, but a port outside the firewall's list does not, though a socket of
//! systemd's listens on it in the VM; from outside, ping is answered (the path works both ways) and
//! SIP, the web page and that port get nothing; the site's phone is answered after the probes.
use anyhow::{ensure, Context, Result};
use holdfast_tests::netns::Netns;
use holdfast_tests::sip_probe::wait_ready_from;
use holdfast_tests::vm::{TestNet, Variant, Vm, VmConfig, STATIC_ADDR_SH, WAIT_ACTIVE_SH};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitStatus;
use std::time::Duration;

const SITE_HOST: Ipv4Addr = Ipv4Addr::new(10, 233, 0, 1);
const SITE_GUEST: Ipv4Addr = Ipv4Addr::new(10, 233, 0, 2);
const OUTSIDE_HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const OUTSIDE_GUEST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const GUEST_MAC: &str = "52:54:00:5b:c0:02";
/// Not in the firewall's list (a plain-HTTP web page would be here: sba-web's laptop default).
const UNLISTED_PORT: u16 = 8080;
const SIP_PORT: u16 = 5060;
const WEB_PORT: u16 = 443;

/// Runs in the VM once booted: both addresses, a listener on the unlisted port, the services READY,
/// then what the firewall loaded. Every wait is bounded.
fn guest_script() -> String {
    format!(
        r#"#!/bin/sh
set -u
{STATIC_ADDR_SH}
{WAIT_ACTIVE_SH}
iface=$(static_addr {GUEST_MAC} {SITE_GUEST}/24 {OUTSIDE_GUEST}/24) && echo "NET-UP $iface"
i=0
until ip -4 addr show | grep -q " inet {OUTSIDE_GUEST}/"; do [ $i -lt 300 ] || break; sleep 0.1; i=$((i+1)); done
echo "ADDR $(ip -4 -o addr show | tr -s ' ' | cut -d' ' -f2,4 | tr '\n' ' ')"
# Something listens on the unlisted port: a socket unit (the kernel completes a handshake on it).
systemd-run --quiet --unit=fw-probe --socket-property=ListenStream={UNLISTED_PORT} /bin/sleep 600
echo "PROBE fw-probe.socket=$(systemctl is-active fw-probe.socket) $(systemctl show -p Listen fw-probe.socket)"
present=""
for u in sba-registrar sba-web; do [ -x "/usr/bin/$u" ] && present="$present $u"; done
wait_active 150 $present
echo "FIREWALL $(systemctl is-active sba-firewall) $(iptables-legacy -S INPUT | head -n1) | $(ip6tables-legacy -S INPUT | head -n1)"
echo "READY-ALL services=[$present] pending=[$pending]"
"#
    )
}

/// A TCP connection from the namespace to `to`, given `within`: its exit status (124 when it timed
/// out, i.e. nothing answered, not even a reset).
fn tcp_connect(net: &TestNet, to: SocketAddr, within: Duration) -> Result<ExitStatus> {
    let secs = within.as_secs().to_string();
    let path = format!("/dev/tcp/{}/{}", to.ip(), to.port());
    net.command("timeout")
        .args([secs.as_str(), "bash", "-c", "exec 3<>\"$0\"", &path])
        .status()
        .context("running timeout/bash in the test namespace")
}

/// SIP OPTIONS over UDP from `from` in the namespace to `to`: answered with a 200 `within`?
fn sip_answers(ns: &Netns, from: Ipv4Addr, to: Ipv4Addr, within: Duration) -> Result<bool> {
    let sock = ns.udp_socket(SocketAddr::from((from, 0))).context("binding a UDP socket in the test namespace")?;
    Ok(wait_ready_from(sock, SocketAddr::from((to, SIP_PORT)), within))
}

#[test]
fn firewall_lets_in_only_the_services_from_the_site() -> Result<()> {
    let net = TestNet::new("fw")?;
    net.add_tap("tap0", &format!("{SITE_HOST}/24"))?;
    net.ip(&["addr", "add", &format!("{OUTSIDE_HOST}/24"), "dev", "tap0"])?;
    let ns = Netns { name: net.ns.clone() };
    let mut cfg = VmConfig::new("fw", Variant::Base);
    cfg.netns = Some(net.ns.clone());
    cfg.net_args = TestNet::nic_args("tap0", "n0", GUEST_MAC);
    cfg.script = Some(guest_script());
    let mut vm = Vm::boot(&cfg)?;

    let ready = vm.wait_for("READY-ALL", Duration::from_secs(240))?;
    let out = vm.output();
    ensure!(ready.contains("pending=[]"), "services not READY: {ready}\n{}", vm.diagnostics());
    let firewall = out.lines().find(|l| l.starts_with("FIREWALL ")).context("no firewall report")?;
    ensure!(
        firewall.starts_with("FIREWALL active -P INPUT DROP") && firewall.ends_with("-P INPUT DROP"),
        "the firewall is not loaded: {firewall}"
    );
    let probe = out.lines().find(|l| l.starts_with("PROBE ")).context("no listener report")?;
    ensure!(
        probe.contains("fw-probe.socket=active") && probe.contains(&format!("{UNLISTED_PORT} (Stream)")),
        "nothing listens on the unlisted port: {probe}"
    );
    let web = ready.contains("sba-web");

    // From the site's network: SIP over UDP and TCP, the web page; not the unlisted port.
    ensure!(
        sip_answers(&ns, SITE_HOST, SITE_GUEST, Duration::from_secs(30))?,
        "no 200 to OPTIONS from the site network\n{}",
        vm.diagnostics()
    );
    let short = Duration::from_secs(4);
    ensure!(tcp_connect(&net, SocketAddr::from((SITE_GUEST, SIP_PORT)), short)?.success(), "SIP over TCP refused from the site");
    if web {
        ensure!(tcp_connect(&net, SocketAddr::from((SITE_GUEST, WEB_PORT)), short)?.success(), "the web page refused from the site");
    }
    let unlisted = tcp_connect(&net, SocketAddr::from((SITE_GUEST, UNLISTED_PORT)), short)?;
    ensure!(unlisted.code() == Some(124), "port {UNLISTED_PORT} (listening, not listed) was not silently dropped: {unlisted}");

    // From outside the site's networks: the path works (ping is let in), the services do not.
    let ping = net
        .command("ping")
        .args(["-c", "3", "-W", "2", &OUTSIDE_GUEST.to_string()])
        .output()
        .context("running ping (apt-get install iputils-ping)")?;
    let addr = out.lines().find(|l| l.starts_with("ADDR ")).unwrap_or("no address report");
    ensure!(ping.status.success(), "no ping reply from {OUTSIDE_GUEST} ({addr})\n{}", vm.diagnostics());
    ensure!(!sip_answers(&ns, OUTSIDE_HOST, OUTSIDE_GUEST, Duration::from_secs(5))?, "SIP answered a host outside the site's networks");
    for port in [SIP_PORT, WEB_PORT, UNLISTED_PORT] {
        let status = tcp_connect(&net, SocketAddr::from((OUTSIDE_GUEST, port)), short)?;
        ensure!(status.code() == Some(124), "TCP {port} from {OUTSIDE_HOST} was not silently dropped: {status}");
    }

    // The site's phone is still answered.
    ensure!(sip_answers(&ns, SITE_HOST, SITE_GUEST, Duration::from_secs(10))?, "no 200 from the site after the probes");
    vm.shutdown(Duration::from_secs(60))
}
