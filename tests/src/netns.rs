//! The survivability topology: four network namespaces joined by veth pairs, made by the test
//! and deleted when it is dropped (also when the test panics).
//!
//! ```text
//!  phones ──lan── sba ──wan── central      10.77.1.0/24 branch LAN, 10.77.2.0/24 the WAN,
//!                  └───pstn── pstn         10.77.3.0/24 the carrier link
//! ```
//! There is no forwarding: phones talk to the SBA's LAN address, the SBA to central and pstn. The
//! addresses exist only inside these namespaces, so parallel tests (each with its own namespaces)
//! can all use them.
//!
//! A veth taken down queues packets and delivers them later, so the WAN is cut with nftables
//! drop rules on the SBA's `wan` device instead; they sit on the netdev ingress and egress hooks,
//! where a drop is silent as on a dead line (an output-hook drop makes sendto fail with EPERM).
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const SBA_LAN: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
/// The phones namespace's first address; `Topology::phone_ip` gives more.
pub const PHONES: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 2);
pub const SBA_WAN: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 1);
pub const CENTRAL: Ipv4Addr = Ipv4Addr::new(10, 77, 2, 2);
pub const SBA_PSTN: Ipv4Addr = Ipv4Addr::new(10, 77, 3, 1);
pub const PSTN: Ipv4Addr = Ipv4Addr::new(10, 77, 3, 2);

/// Extra addresses in the phones namespace, 10.77.1.10 onwards, so each phone can have its own.
pub const PHONE_ADDRESSES: u8 = 32;

/// The nftables table that cuts the WAN.
const CUT_TABLE: &str = "holdfast_wan_cut";

/// One named network namespace (`ip netns`).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `program` to be run inside this namespace (through `ip netns exec`, which execs it: the
    /// child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `ip -n NAME args...` and panics with its stderr when it fails.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full);
    }

    /// Runs `program args...` in the namespace to completion.
    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().unwrap_or_else(|e| panic!("running {program} in {}: {e}", self.name))
    }

    /// A UDP socket bound to `addr` inside this namespace, usable from any thread of the test: a
    /// socket stays in the namespace it was created in, so a short-lived thread enters the
    /// namespace, binds, and hands the socket back.
    pub fn udp_socket(&self, addr: SocketAddr) -> std::io::Result<UdpSocket> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path)?;
                enter_netns(&ns)?;
                UdpSocket::bind(addr)
            })
            .join()
            .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
        })
    }
}

/// setns(2) for the calling thread only.
fn enter_netns(ns: &File) -> std::io::Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
}

/// The four namespaces and their links; everything is deleted on drop.
#[derive(Debug)]
pub struct Topology {
    pub phones: Netns,
    pub sba: Netns,
    pub central: Netns,
    pub pstn: Netns,
}

impl Topology {
    /// Builds the topology under names unique to this process and call (`hf<pid>x<n>-sba`...).
    // Creating namespaces is not a default value: no Default.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Topology {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let prefix = format!("hf{}x{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let ns = |role: &str| Netns { name: format!("{prefix}-{role}") };
        // Built first so that Drop removes whatever was made if a step below panics.
        let topo = Topology { phones: ns("phones"), sba: ns("sba"), central: ns("central"), pstn: ns("pstn") };
        for n in topo.all() {
            run("ip", &["netns", "add", &n.name]);
            n.ip(&["link", "set", "lo", "up"]);
        }
        topo.link(&topo.phones, "lan", PHONES, &topo.sba, "lan", SBA_LAN);
        topo.link(&topo.sba, "wan", SBA_WAN, &topo.central, "wan", CENTRAL);
        topo.link(&topo.sba, "pstn", SBA_PSTN, &topo.pstn, "pstn", PSTN);
        for i in 0..PHONE_ADDRESSES {
            topo.phones.ip(&["addr", "add", &format!("{}/24", Topology::phone_ip(i)), "dev", "lan"]);
        }
        topo
    }

    /// The i-th extra phone address (10.77.1.10 + i), i < PHONE_ADDRESSES.
    pub fn phone_ip(i: u8) -> Ipv4Addr {
        assert!(i < PHONE_ADDRESSES, "only {PHONE_ADDRESSES} phone addresses");
        Ipv4Addr::new(10, 77, 1, 10 + i)
    }

    fn all(&self) -> [&Netns; 4] {
        [&self.phones, &self.sba, &self.central, &self.pstn]
    }

    /// A veth pair made directly inside the two namespaces, so the short device names never
    /// meet in the host namespace.
    fn link(&self, a: &Netns, a_dev: &str, a_ip: Ipv4Addr, b: &Netns, b_dev: &str, b_ip: Ipv4Addr) {
        run("ip", &["link", "add", a_dev, "netns", &a.name, "type", "veth", "peer", "name", b_dev, "netns", &b.name]);
        for (ns, dev, ip) in [(a, a_dev, a_ip), (b, b_dev, b_ip)] {
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", dev]);
            ns.ip(&["link", "set", dev, "up"]);
        }
    }

    /// Cuts the WAN both ways: packets to and from central vanish without an error to anyone.
    pub fn cut_wan(&self) {
        let rules = format!(
            "table netdev {CUT_TABLE} {{\n\
             chain in {{ type filter hook ingress device \"wan\" priority 0; policy drop; }}\n\
             chain out {{ type filter hook egress device \"wan\" priority 0; policy drop; }}\n\
             }}\n"
        );
        let mut child = self
            .sba
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (apt-get install nftables)");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("nft stdin");
            stdin.write_all(rules.as_bytes()).expect("write nft rules");
        }
        let out = child.wait_with_output().expect("wait for nft");
        assert!(out.status.success(), "cutting the WAN: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Restores the WAN; a no-op when it is not cut.
    pub fn restore_wan(&self) {
        if self.wan_is_cut() {
            let out = self.sba.output("nft", &["delete", "table", "netdev", CUT_TABLE]);
            assert!(out.status.success(), "restoring the WAN: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    pub fn wan_is_cut(&self) -> bool {
        self.sba.output("nft", &["list", "table", "netdev", CUT_TABLE]).status.success()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        remove(&self.all());
    }
}

/// Kills what runs inside the namespaces and deletes them.
fn remove(namespaces: &[&Netns]) {
    // Processes still inside would keep a namespace alive after its name is gone; they were
    // all started by this test (their owners normally stopped them already).
    for n in namespaces {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &n.name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).stderr(Stdio::null()).status();
            }
        }
    }
    // Deleting a namespace destroys its veth ends, and so their peers.
    for n in namespaces {
        let _ = Command::new("ip").args(["netns", "del", &n.name]).stderr(Stdio::null()).status();
    }
}

/// A namespace of its own, deleted on drop: services keep their fixed ports (an embedded
/// default's 127.0.0.1:5060) without meeting anything else on this machine. Besides loopback it
/// has a veth pair looped back into itself with an address and the default route, since phones
/// such as baresip and linphonec register only once they see a network.
#[derive(Debug)]
pub struct Island {
    pub ns: Netns,
}

/// The island's own address (documentation range; it leads nowhere outside the namespace).
pub const ISLAND: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

impl Island {
    // Creating a namespace is not a default value: no Default.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Island {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let island = Island { ns: Netns { name: format!("hf{}i{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)) } };
        run("ip", &["netns", "add", &island.ns.name]);
        island.ns.ip(&["link", "set", "lo", "up"]);
        island.ns.ip(&["link", "add", "net", "type", "veth", "peer", "name", "back"]);
        island.ns.ip(&["addr", "add", &format!("{ISLAND}/24"), "dev", "net"]);
        for dev in ["net", "back"] {
            island.ns.ip(&["link", "set", dev, "up"]);
        }
        island.ns.ip(&["route", "add", "default", "dev", "net"]);
        island
    }
}

impl Drop for Island {
    fn drop(&mut self) {
        remove(&[&self.ns]);
    }
}

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}
