//! WAN failover across VMs (issue 6): a central-site VM running Kamailio (the survivability
//! tests' config, image variant `central`) and the appliance VM (image `base`) joined by a bridge
//! in the test's network namespace, the WAN; sipp phones and a sipp PSTN carrier on the branch
//! LAN, a tap of the same namespace.
//!
//! ```text
//!  phones 10.232.1.1x, carrier .9 ──tlan── SBA VM (LAN .1.2, WAN .2.2) ──tswan─┐
//!                                                                   brwan (host .2.1)
//!                                          central VM (Kamailio .2.3) ──tcen──┘
//! ```
//! Phones register through the SBA to Kamailio and call each other; the SBA VM's WAN NIC is
//! unplugged (QMP set_link): survival mode, branch and PSTN calls (sba-mediation to the carrier)
//! keep working; the SBA VM's power is cut during the outage (qemu killed) and a new qemu boots
//! its disk: the bindings are in SQLite before its network is even up, calls work again; the NIC is plugged back: failback, and a new phone's
//! REGISTER reaches Kamailio.
use anyhow::{bail, ensure, Context, Result};
use holdfast_tests::kamailio::{self, options_status};
use holdfast_tests::netns::Netns;
use holdfast_tests::phones::{call, Answerer, PhoneConfig};
use holdfast_tests::vm::{TestNet, Variant, Vm, VmConfig, STATIC_ADDR_SH};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DOMAIN: &str = "central.example";
const LAN_HOST: Ipv4Addr = Ipv4Addr::new(10, 232, 1, 1);
const CARRIER: Ipv4Addr = Ipv4Addr::new(10, 232, 1, 9);
const SBA_LAN: Ipv4Addr = Ipv4Addr::new(10, 232, 1, 2);
const WAN_HOST: Ipv4Addr = Ipv4Addr::new(10, 232, 2, 1);
const SBA_WAN: Ipv4Addr = Ipv4Addr::new(10, 232, 2, 2);
const CENTRAL: Ipv4Addr = Ipv4Addr::new(10, 232, 2, 3);
const SBA_LAN_MAC: &str = "52:54:00:5b:b1:02";
const SBA_WAN_MAC: &str = "52:54:00:5b:b2:02";
const CENTRAL_MAC: &str = "52:54:00:5b:b2:03";
const USERS: [(&str, &str); 3] = [("alice", "alice-pw"), ("bob", "bob-pw"), ("erin", "erin-pw")];
/// Matches the PSTN route of the SBA's mediation config below.
const PSTN_NUMBER: &str = "+442071234567";
const HOLD: Duration = Duration::from_millis(500);
/// The guest's database, as the image's sba.toml names it.
const SBA_DB: &str = "/var/lib/sba/sba.db";

/// Each phone (and the caller sipp beside it) has its own address on the LAN.
fn phone_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 232, 1, 10 + i)
}

/// The image's sba.toml with the central site, survival and a mediation trunk to the sipp carrier.
fn sba_config() -> Result<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../image/overlay/etc/sba/sba.toml");
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut config: toml::Table = text.parse().with_context(|| format!("parsing {path}"))?;
    let table = |text: &str| -> Result<toml::Value> { Ok(toml::Value::Table(text.parse()?)) };
    let registrar = config.get_mut("registrar").and_then(|r| r.as_table_mut()).context("no [registrar]")?;
    ensure!(registrar.get("db").and_then(|d| d.as_str()) == Some(SBA_DB), "the image's database moved: {registrar:?}");
    registrar.insert("domain".into(), DOMAIN.into());
    // Phones hear 300 s (also in survival): their bindings outlive a reboot of the SBA under TCG.
    config.insert("central".into(), table(&format!("proxies = [\"{CENTRAL}:5060\"]\nbranch_expires = 300"))?);
    let survival = config.get_mut("survival").and_then(|s| s.as_table_mut()).context("no [survival]")?;
    survival.insert("mediation".into(), format!("{SBA_LAN}:5070").into());
    let mediation = config.get_mut("mediation").and_then(|m| m.as_table_mut()).context("no [mediation]")?;
    // The carrier is on the LAN: mediation listens beyond loopback and names its LAN address.
    for (key, value) in [
        ("listen", "0.0.0.0:5070".to_string()),
        ("advertise", SBA_LAN.to_string()),
        ("registrar", format!("{SBA_LAN}:5060")),
        ("media_ip", SBA_LAN.to_string()),
    ] {
        mediation.insert(key.into(), value.into());
    }
    let plan: toml::Table = format!(
        "[[routes]]\nname = \"uk\"\npattern = '\\+44\\d{{7,12}}'\nusage = \"national\"\ntrunks = [\"carrier\"]\n\n\
         [[trunks]]\nname = \"carrier\"\nkind = \"carrier\"\naddress = \"{CARRIER}:5060\"\ntransport = \"udp\"\n\
         # sipp's carrier scenario answers INVITEs only.\noptions = false\n"
    )
    .parse()?;
    mediation.extend(plan);
    Ok(config.to_string())
}

/// The SBA VM's script, run at every boot: the config (services restarted when it changed), the
/// bindings and mode once the registrar is READY and before any network is up, then the LAN and
/// WAN addresses and a report of every mode and binding change. Every loop is bounded.
fn sba_script(config: &str) -> String {
    format!(
        r#"#!/bin/sh
set -u
state=/var/lib/sba-test
mkdir -p $state
boot=$(( $(cat $state/boots 2>/dev/null || echo 0) + 1 ))
echo $boot > $state/boots
cat > $state/sba.toml <<'HOLDFAST_EOF'
{config}
HOLDFAST_EOF
restart=no
cmp -s $state/sba.toml /etc/sba/sba.toml || {{ cp $state/sba.toml /etc/sba/sba.toml; restart=yes; }}
sync
units="sba-registrar sba-mediation sba-gateway"
wait_ready() {{
    pending="$units"
    deadline=$(( $(date +%s) + 150 ))
    while [ -n "$pending" ] && [ "$(date +%s)" -lt "$deadline" ]; do
        pending=""
        for u in $units; do [ "$(systemctl is-active "$u")" = active ] || pending="$pending $u"; done
        [ -n "$pending" ] && sleep 0.2
    done
}}
status={SBA_DB}.status.json
mode() {{ sed -n 's/.*"mode":"\([^"]*\)".*/\1/p' $status 2>/dev/null; }}
regs() {{ sbactl --db {SBA_DB} registrations --json | grep -o '"\(aor\|contact\|origin\)": "[^"]*"' | tr '\n' ' '; }}
# The status file of this registrar process, not the one left by the last boot.
fresh_status() {{
    pid=$(systemctl show -p MainPID --value sba-registrar)
    i=0
    while [ $i -lt 100 ] && ! grep -q "\"pid\":$pid," $status 2>/dev/null; do sleep 0.2; i=$((i+1)); done
}}
wait_ready
echo "READY-ALL boot=$boot uptime=$(cut -d' ' -f1 /proc/uptime) pending=[$pending]"
fresh_status
echo "AT-BOOT boot=$boot mode=$(mode) regs=[$(regs)]"
# A line at a time (busybox's sed, in the buildroot image, has no -u).
journalctl -f -n 0 -o cat -u sba-registrar -u sba-mediation | while IFS= read -r l; do echo "JOURNAL $l"; done &
{STATIC_ADDR_SH}
lan=$(static_addr {SBA_LAN_MAC} {SBA_LAN}/24) && wan=$(static_addr {SBA_WAN_MAC} {SBA_WAN}/24) \
    && echo "NET-UP boot=$boot lan=$lan wan=$wan"
if [ $restart = yes ]; then
    systemctl restart sba-registrar sba-mediation
    wait_ready
    fresh_status
    echo "RESTARTED boot=$boot pending=[$pending]"
fi
last=""
last_regs=""
i=0
while [ $i -lt 3000 ]; do
    m=$(mode)
    [ "$m" != "$last" ] && echo "MODE boot=$boot $m uptime=$(cut -d' ' -f1 /proc/uptime)" && last=$m
    if [ $((i % 3)) = 0 ]; then
        r=$(regs)
        [ "$r" != "$last_regs" ] && echo "REGS boot=$boot [$r]" && last_regs=$r
    fi
    sleep 0.3
    i=$((i+1))
done
"#
    )
}

/// The central VM's script: its address, Kamailio's database and config as the survivability
/// tests make them, and Kamailio in the foreground with its log on the test's serial port.
fn central_script() -> String {
    let dir = "/var/lib/central";
    let db = Path::new(dir).join("kamailio.sqlite");
    let sql = kamailio::setup_sql(DOMAIN, &USERS);
    let cfg = kamailio::config(SocketAddr::from((CENTRAL, 5060)), DOMAIN, &db);
    format!(
        r#"#!/bin/sh
set -u
{STATIC_ADDR_SH}
iface=$(static_addr {CENTRAL_MAC} {CENTRAL}/24) && echo "NET-UP $iface"
rm -rf {dir}
mkdir -p {dir}/run
cat > {dir}/setup.sql <<'HOLDFAST_EOF'
{sql}
HOLDFAST_EOF
sqlite3 {db} < {dir}/setup.sql && echo DB-READY
cat > {dir}/kamailio.cfg <<'HOLDFAST_EOF'
{cfg}
HOLDFAST_EOF
echo "KAMAILIO-START uptime=$(cut -d' ' -f1 /proc/uptime)"
exec kamailio -f {dir}/kamailio.cfg -DD -E -m 32 -M 8 -Y {dir}/run
"#,
        db = db.display()
    )
}

/// The first line of `vm`'s output after its first `skip` lines for which `pred` holds, polled
/// for at most `within`.
fn wait_line(vm: &Vm, skip: usize, pred: impl Fn(&str) -> bool, within: Duration, what: &str) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(line) = vm.output().lines().skip(skip).find(|l| pred(l)) {
            return Ok(line.to_string());
        }
        if Instant::now() >= deadline {
            bail!("{what}: nothing within {within:?}\n{}", vm.diagnostics());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn lines(vm: &Vm) -> usize {
    vm.output().lines().count()
}

/// Everything the test runs on the host side of the LAN: phones, the carrier, calls.
struct Branch {
    ns: Netns,
    dir: PathBuf,
}

impl Branch {
    fn phone(&self, i: u8, user: &'static str, password: &'static str) -> Answerer {
        let c = PhoneConfig {
            user,
            password,
            domain: DOMAIN,
            addr: SocketAddr::from((phone_ip(i), 5060)),
            registrar: SocketAddr::from((SBA_LAN, 5060)),
            // The central grant, cached; the phones hear branch_expires.
            expires: 3600,
            refresh: Duration::from_secs(2),
        };
        Answerer::phone(&self.ns, &self.dir, &c, 400)
    }

    /// A call from phone `from`'s address, held for a moment and hung up; Err says why not.
    fn call(&self, from: u8, caller: &str, callee: &str, sba: &Vm, label: &str) -> Result<()> {
        let from = SocketAddr::from((phone_ip(from), 5070));
        let out = call(&self.ns, from, SocketAddr::from((SBA_LAN, 5060)), caller, callee, DOMAIN, HOLD).run(&self.dir, 30);
        ensure!(
            out.status.success(),
            "{label}: call {caller} -> {callee} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            sba.diagnostics()
        );
        Ok(())
    }
}

#[test]
fn wan_failover_between_vms_keeps_calls_and_bindings() -> Result<()> {
    let t0 = Instant::now();
    let net = TestNet::new("wan")?;
    net.add_tap("tlan", &format!("{LAN_HOST}/24"))?;
    for ip in [CARRIER, phone_ip(1), phone_ip(2), phone_ip(3)] {
        net.ip(&["addr", "add", &format!("{ip}/24"), "dev", "tlan"])?;
    }
    net.add_bridge("brwan", &format!("{WAN_HOST}/24"))?;
    net.add_bridged_tap("tswan", "brwan")?;
    net.add_bridged_tap("tcen", "brwan")?;

    let mut central_cfg = VmConfig::new("central", Variant::Central);
    central_cfg.netns = Some(net.ns.clone());
    central_cfg.net_args = TestNet::nic_args("tcen", "wan", CENTRAL_MAC);
    central_cfg.script = Some(central_script());
    let dir = std::env::temp_dir().join(format!("hf-wan-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut sba_cfg = VmConfig::new("sba", Variant::Base);
    // The disk outlives qemu: the power cycle is a new qemu on it.
    sba_cfg.disk = Some(dir.join("sba-disk.qcow2"));
    sba_cfg.netns = Some(net.ns.clone());
    sba_cfg.net_args = [TestNet::nic_args("tlan", "lan", SBA_LAN_MAC), TestNet::nic_args("tswan", "wan", SBA_WAN_MAC)].concat();
    sba_cfg.script = Some(sba_script(&sba_config()?));
    // Both images first (built once per run), so that both boots start together.
    holdfast_tests::vm::image(Variant::Central)?;
    holdfast_tests::vm::image(Variant::Base)?;
    let booted = Instant::now();
    let mut central = Vm::boot(&central_cfg)?;
    let mut sba = Vm::boot(&sba_cfg)?;

    // The central site answers OPTIONS on the WAN.
    central.wait_for("KAMAILIO-START", Duration::from_secs(240))?;
    let ns = Netns { name: net.ns.clone() };
    let probe = ns.udp_socket(SocketAddr::from((WAN_HOST, 0))).context("probe socket")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while options_status(&probe, SocketAddr::from((CENTRAL, 5060)), Duration::from_millis(500)) != Some(200) {
        ensure!(Instant::now() < deadline, "Kamailio in the central VM does not answer OPTIONS\n{}", central.diagnostics());
    }
    let central_up = booted.elapsed();

    let ready = sba.wait_for("READY-ALL boot=1", Duration::from_secs(240))?;
    let sba_ready = booted.elapsed();
    ensure!(ready.contains("pending=[]"), "services not READY: {ready}\n{}", sba.diagnostics());
    let restarted = sba.wait_for("RESTARTED boot=1", Duration::from_secs(120))?;
    ensure!(restarted.contains("pending=[]"), "services not READY on the test's config: {restarted}\n{}", sba.diagnostics());
    wait_line(&sba, 0, |l| l.starts_with("MODE boot=1 pass-through"), Duration::from_secs(30), "pass-through mode")?;
    eprintln!("image_wan_failover: qemu start to Kamailio answering {central_up:.1?}, to the SBA's services READY {sba_ready:.1?}");

    // Normal mode: phones register through the SBA to Kamailio and call each other.
    let branch = Branch { ns, dir: dir.clone() };
    let carrier = Answerer::carrier(&branch.ns, &dir, SocketAddr::from((CARRIER, 5060)), 400);
    let alice = branch.phone(1, "alice", "alice-pw");
    let bob = branch.phone(2, "bob", "bob-pw");
    for (phone, user) in [(&alice, "alice"), (&bob, "bob")] {
        ensure!(phone.wait_registrations(0, Duration::from_secs(30)), "{user} not registered:\n{}\n{}", phone.log(), sba.diagnostics());
        let central_log = format!("registered sip:{user}@{DOMAIN} from {SBA_WAN}:");
        wait_line(&central, 0, |l| l.contains(&central_log), Duration::from_secs(10), "the REGISTER at Kamailio")?;
    }
    let cached = wait_line(
        &sba,
        0,
        |l| l.starts_with("REGS boot=1") && l.contains("alice@") && l.contains("bob@"),
        Duration::from_secs(20),
        "both phones cached",
    )?;
    ensure!(cached.matches("\"origin\": \"central\"").count() == 2, "not cached from the central grant: {cached}");
    branch.call(1, "alice", "bob", &sba, "normal mode")?;
    ensure!(bob.answered() == 1, "bob answered {} calls", bob.answered());

    // The WAN cable of the SBA VM is pulled: survival mode; branch and PSTN calls go on.
    let skip = lines(&sba);
    let cut = Instant::now();
    sba.set_link("wan", false)?;
    wait_line(&sba, skip, |l| l.starts_with("MODE boot=1 survival"), Duration::from_secs(20), "survival after the cut")?;
    let failover = cut.elapsed();
    branch.call(2, "bob", "alice", &sba, "survival")?;
    branch.call(1, "alice", PSTN_NUMBER, &sba, "PSTN in survival")?;
    ensure!(carrier.answered() == 1, "the PSTN call did not reach the carrier:\n{}", carrier.log());
    ensure!(carrier.log().contains(&format!("INVITE sip:{PSTN_NUMBER}@{CARRIER}")), "{}", carrier.log());

    // A power cycle during the outage: qemu is killed (what the guest had not flushed is lost)
    // and a new one boots the same disk with its WAN NIC unplugged from the start. The bindings
    // are in SQLite before the network is up, and calls work again. The sipp phones go first: a
    // sipp gives its registration up after 32 s without an answer (Timer F), less than a TCG reboot.
    drop((alice, bob));
    drop(sba);
    let power_on = Instant::now();
    let mut sba = Vm::boot(&sba_cfg)?;
    sba.set_link("wan", false)?;
    let ready = sba.wait_for("READY-ALL boot=2", Duration::from_secs(240))?;
    let boot2_ready = power_on.elapsed();
    ensure!(ready.contains("pending=[]"), "services not READY after the power cycle: {ready}\n{}", sba.diagnostics());
    let at_boot = sba.wait_for("AT-BOOT boot=2", Duration::from_secs(60))?;
    for user in ["alice", "bob"] {
        ensure!(at_boot.contains(&format!("sip:{user}@{DOMAIN}")), "{user}'s binding lost in the power cycle: {at_boot}");
    }
    sba.wait_for("NET-UP boot=2", Duration::from_secs(120))?;
    let mode = wait_line(&sba, 0, |l| l.starts_with("MODE boot=2 "), Duration::from_secs(30), "the mode after the power cycle")?;
    ensure!(mode.starts_with("MODE boot=2 survival"), "not in survival after the power cycle with the WAN cut: {mode}");
    // Nothing registered since the power cycle: bob's call reaches a plain UAS at his contact through the
    // binding read back from SQLite.
    let bob_uas = Answerer::carrier(&branch.ns, &dir.join("bob-uas"), SocketAddr::from((phone_ip(2), 5060)), 300);
    branch.call(1, "alice", "bob", &sba, "after the power cycle")?;
    let calls_back = power_on.elapsed();
    ensure!(bob_uas.answered() == 1, "the call after the power cycle did not reach bob's contact");
    branch.call(2, "bob", PSTN_NUMBER, &sba, "PSTN after the power cycle")?;
    ensure!(carrier.answered() == 2, "the second PSTN call did not reach the carrier:\n{}", carrier.log());
    // A phone the cache knows registers again, answered at the branch (the central is cut off).
    let alice = branch.phone(1, "alice", "alice-pw");
    ensure!(alice.wait_registrations(0, Duration::from_secs(30)), "alice's REGISTER in survival after the power cycle:\n{}", alice.log());
    ensure!(
        !sba.output().lines().any(|l| l.starts_with("MODE boot=2 pass-through")),
        "the SBA reached the central site with its WAN cut\n{}",
        sba.diagnostics()
    );

    // The cable is plugged back: failback, and a new phone's REGISTER reaches Kamailio.
    let skip = lines(&sba);
    let restored = Instant::now();
    sba.set_link("wan", true)?;
    wait_line(&sba, skip, |l| l.starts_with("MODE boot=2 pass-through"), Duration::from_secs(30), "failback")?;
    let failback = restored.elapsed();
    let erin = branch.phone(3, "erin", "erin-pw");
    ensure!(erin.wait_registrations(0, Duration::from_secs(30)), "erin not registered after failback:\n{}", erin.log());
    let central_log = format!("registered sip:erin@{DOMAIN} from {SBA_WAN}:");
    wait_line(&central, 0, |l| l.contains(&central_log), Duration::from_secs(10), "erin's REGISTER at Kamailio")?;
    branch.call(1, "alice", "erin", &sba, "after failback")?;
    ensure!(erin.answered() == 1, "erin answered {} calls", erin.answered());

    eprintln!(
        "image_wan_failover: survival {failover:.1?} after the cut; after the power cycle services READY in \
         {boot2_ready:.1?}, calls through in {calls_back:.1?}; pass-through {failback:.1?} after the restore; \
         whole test {:.1?}",
        t0.elapsed()
    );
    drop((alice, bob_uas, erin, carrier));
    let sba_off = sba.shutdown(Duration::from_secs(60));
    let central_off = central.shutdown(Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&dir);
    sba_off.and(central_off)
}
