//! Kamailio 5.6 as a carrier's SIP-over-TLS edge on loopback, the far end of a TLS trunk: it
//! accepts TLS only with a client certificate from the given CA (mutual TLS, as carriers ask
//! of their customers), answers OPTIONS, logs for each INVITE the transport and the client
//! certificate it came with, and relays calls to the carrier's switch (a sipp over UDP). Calls
//! from the switch (UDP) go to the customer's TLS listener. In-dialog requests follow its
//! Record-Route (two entries where the transport changes).
use crate::kamailio::{tls_config, KamailioTls, Running, PROXY_MODULES, RELAY, WITHIN_DIALOGS};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};

pub struct Carrier {
    /// Where it listens for TLS (the trunk's address).
    pub tls_addr: SocketAddr,
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
        let dir = dir.join("carrier");
        std::fs::create_dir_all(&dir).expect("carrier dir");
        let (cfg, tls_cfg, log) = (dir.join("kamailio.cfg"), dir.join("kamailio-tls.cfg"), dir.join("kamailio.log"));
        std::fs::write(&tls_cfg, tls_config(tls)).expect("write kamailio-tls.cfg");
        std::fs::write(&cfg, config(tls_addr, udp_addr, switch, customer, &tls_cfg)).expect("write kamailio.cfg");
        let mut process = Running::spawn(&mut std::process::Command::new("kamailio"), &cfg, &dir.join("run"), &log);
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        process.wait_answering(&probe, udp_addr, &log);
        Carrier { tls_addr, udp_addr, log, _process: process }
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn config(tls_addr: SocketAddr, udp_addr: SocketAddr, switch: SocketAddr, customer: SocketAddr, tls_cfg: &Path) -> String {
    format!(
        r#"#!KAMAILIO
# A carrier's TLS edge for the Holdfast TLS trunk test (written by tests/src/carrier.rs).
debug=2
log_stderror=yes
children=1
tcp_children=1
enable_tls=yes
listen=udp:{udp_addr}
listen=tls:{tls_addr}
auto_aliases=no

loadmodule "kex.so"
loadmodule "tls.so"
{PROXY_MODULES}
modparam("tls", "config", "{tls_cfg}")

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
    # The switch's side is UDP: its calls go to the customer over TLS.
    if ($pr == "udp") {{
        xlog("L_INFO", "INVITE $rU from the switch to the customer over tls\n");
        record_route();
        $du = "sip:{customer};transport=tls";
        route(RELAY);
    }}
    # Customers come in over TLS with a certificate the tls module verified.
    if ($pr != "tls" || $tls_peer_verified != 1) {{
        xlog("L_WARN", "INVITE over $pr from $si refused: no verified client certificate\n");
        sl_send_reply("403", "TLS with a client certificate only");
        exit;
    }}
    xlog("L_INFO", "INVITE $rU over $pr from $si, client certificate CN=$tls_peer_subject_cn verified=$tls_peer_verified\n");
    record_route();
    $du = "sip:{switch}";
    route(RELAY);
}}
{RELAY}"#,
        tls_cfg = tls_cfg.display()
    )
}
