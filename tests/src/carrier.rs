//! Kamailio 5.6 as a carrier's SIP edge on loopback, the far end of a TLS or TCP trunk. Over
//! TLS it accepts customers only with a client certificate from the given CA (mutual TLS, as
//! carriers ask of their customers) and shows its own when it connects to them; it answers
//! OPTIONS, logs for each INVITE the transport (and client certificate) it came with, and
//! relays calls to the carrier's switch (a sipp over UDP). Calls from the switch (UDP) go to
//! the customer over the edge's transport. In-dialog requests follow its Record-Route (two
//! entries where the transport changes); each in-dialog request it sends is logged with the
//! transport it left on (`sent BYE to IP:PORT proto N`, 1 UDP, 2 TCP, 3 TLS).
use crate::kamailio::{tls_config, KamailioTls, Running, PROXY_MODULES, RELAY, WITHIN_DIALOGS};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

/// What the edge speaks towards its customers.
pub enum Edge<'a> {
    Tls(&'a KamailioTls<'a>),
    Tcp,
}

pub struct Carrier {
    /// Where it listens for its customers (the trunk's address).
    pub edge_addr: SocketAddr,
    /// Where it listens for UDP, towards its switch.
    pub udp_addr: SocketAddr,
    log: PathBuf,
    _process: Running,
}

impl Carrier {
    /// Starts it on loopback: TLS on `tls_addr`, UDP on `udp_addr` (its side towards the
    /// switch), customers' calls relayed to `switch`, the switch's calls to `customer` over TLS;
    /// files under `dir`.
    pub fn start(dir: &Path, tls: &KamailioTls, tls_addr: SocketAddr, udp_addr: SocketAddr, switch: SocketAddr, customer: SocketAddr) -> Carrier {
        Carrier::start_edge(dir, Edge::Tls(tls), tls_addr, udp_addr, switch, customer)
    }

    /// As `start`, with the edge on `edge` at `edge_addr`.
    pub fn start_edge(dir: &Path, edge: Edge, edge_addr: SocketAddr, udp_addr: SocketAddr, switch: SocketAddr, customer: SocketAddr) -> Carrier {
        let dir = dir.join("carrier");
        std::fs::create_dir_all(&dir).expect("carrier dir");
        let (cfg, tls_cfg, log) = (dir.join("kamailio.cfg"), dir.join("kamailio-tls.cfg"), dir.join("kamailio.log"));
        let text = match edge {
            Edge::Tls(tls) => {
                std::fs::write(&tls_cfg, tls_config(tls)).expect("write kamailio-tls.cfg");
                config("tls", edge_addr, udp_addr, switch, customer, Some(&tls_cfg))
            }
            Edge::Tcp => config("tcp", edge_addr, udp_addr, switch, customer, None),
        };
        std::fs::write(&cfg, text).expect("write kamailio.cfg");
        let mut process = Running::spawn(&mut std::process::Command::new("kamailio"), &cfg, &dir.join("run"), &log);
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        process.wait_answering(&probe, udp_addr, &log);
        Carrier { edge_addr, udp_addr, log, _process: process }
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The edge's config: customers on `proto` ("tls" with `tls_cfg`, or "tcp") at `edge_addr`.
fn config(proto: &str, edge_addr: SocketAddr, udp_addr: SocketAddr, switch: SocketAddr, customer: SocketAddr, tls_cfg: Option<&Path>) -> String {
    let tls = match tls_cfg {
        Some(cfg) => format!("enable_tls=yes\nloadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")\n", cfg.display()),
        None => String::new(),
    };
    // Over TLS a customer proves itself by a verified client certificate; over TCP by nothing.
    let (refused, admitted) = match tls_cfg {
        Some(_) => (r#"$pr != "tls" || $tls_peer_verified != 1"#, ", client certificate CN=$tls_peer_subject_cn verified=$tls_peer_verified"),
        None => (r#"$pr != "tcp""#, ""),
    };
    format!(
        r#"#!KAMAILIO
# A carrier's edge for the Holdfast trunk tests (written by tests/src/carrier.rs).
debug=2
log_stderror=yes
children=1
tcp_children=1
listen=udp:{udp_addr}
listen={proto}:{edge_addr}
auto_aliases=no

loadmodule "kex.so"
{tls}{PROXY_MODULES}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("OPTIONS") && !has_totag()) {{
        sl_send_reply("200", "Carrier up");
        exit;
    }}
{WITHIN_DIALOGS}    if (!is_method("INVITE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    # The switch's side is UDP: its calls go to the customer over the edge's transport.
    if ($pr == "udp") {{
        xlog("L_INFO", "INVITE $rU from the switch to the customer over {proto}\n");
        record_route();
        $du = "sip:{customer};transport={proto}";
        route(RELAY);
    }}
    if ({refused}) {{
        xlog("L_WARN", "INVITE over $pr from $si refused\n");
        sl_send_reply("403", "{proto} customers only");
        exit;
    }}
    xlog("L_INFO", "INVITE $rU over $pr from $si{admitted}\n");
    record_route();
    $du = "sip:{switch}";
    route(RELAY);
}}
{RELAY}
onsend_route {{
    if (has_totag() && !is_method("ACK")) {{
        xlog("L_INFO", "sent $rm to $snd(ip):$snd(port) proto $snd(proto)\n");
    }}
}}
"#
    )
}
