use super::*;
use crate::config::Config;
use holdfast_runtime::config::Loaded;

const PLAN: &str = r#"
[mediation]

[[mediation.trunks]]
name = "carrier"
kind = "carrier"
address = "192.0.2.10:5060"
inbound_from = ["192.0.2.11"]

[[mediation.trunks]]
name = "pbx"
kind = "pbx"
address = "10.1.0.5:5060"
inbound_from = ["10.1.0.0/16"]
allow_refer = true

[[mediation.trunks]]
name = "secure"
kind = "carrier"
address = "198.51.100.7:5061"
transport = "tls"

[[mediation.trunks]]
name = "gw"
kind = "gateway"
address = "127.0.0.1:5080"
"#;

const REGISTRAR: &str = "127.0.0.1:5060";

fn plan() -> Plan {
    Config::parse(PLAN, "t.toml").unwrap_or_else(|e| panic!("{e}")).plan
}

fn admit_from(source: &str, transport: Protocol, method: Method) -> Admission {
    admit(&plan(), REGISTRAR.parse().unwrap(), &method, source.parse().unwrap(), transport)
}

fn trunk(name: &str) -> Admission {
    Admission::Serve(Peer::Trunk(name.into()))
}

#[test]
fn the_registrar_is_the_branch_by_its_very_socket() {
    assert_eq!(admit_from(REGISTRAR, Protocol::Udp, Method::INVITE), Admission::Serve(Peer::Branch));
    // The gateway shares the registrar's IP: the registrar's socket is the branch, the rest of
    // that IP the gateway.
    assert_eq!(admit_from("127.0.0.1:5080", Protocol::Udp, Method::INVITE), trunk("gw"));
    assert_eq!(admit_from("127.0.0.1:5081", Protocol::Udp, Method::INVITE), trunk("gw"), "the gateway's IP");
}

#[test]
fn trunks_are_known_by_their_address_and_ranges() {
    assert_eq!(admit_from("192.0.2.10:5060", Protocol::Udp, Method::INVITE), trunk("carrier"));
    assert_eq!(admit_from("192.0.2.10:40000", Protocol::Tcp, Method::INVITE), trunk("carrier"), "any port of its IP");
    assert_eq!(admit_from("192.0.2.11:5060", Protocol::Udp, Method::BYE), trunk("carrier"), "inbound_from");
    assert_eq!(admit_from("10.1.200.3:5060", Protocol::Udp, Method::INVITE), trunk("pbx"), "the IP-PBX's range");
    assert_eq!(admit_from("10.2.0.1:5060", Protocol::Udp, Method::INVITE), Admission::Refuse, "outside the range");
}

#[test]
fn a_tls_trunk_is_served_over_tls_only() {
    assert_eq!(admit_from("198.51.100.7:40001", Protocol::Tls, Method::INVITE), trunk("secure"));
    for forged in [Protocol::Udp, Protocol::Tcp] {
        assert_eq!(admit_from("198.51.100.7:5061", forged, Method::INVITE), Admission::Refuse, "{forged:?}");
    }
}

#[test]
fn strangers_are_refused_and_only_their_options_answered() {
    for method in [Method::INVITE, Method::BYE, Method::ACK, Method::parse("REFER"), Method::REGISTER] {
        assert_eq!(admit_from("203.0.113.66:5060", Protocol::Udp, method.clone()), Admission::Refuse, "{method}");
    }
    assert_eq!(admit_from("203.0.113.66:5060", Protocol::Udp, Method::OPTIONS), Admission::Probe);
    assert_eq!(admit_from("198.51.100.7:5061", Protocol::Udp, Method::OPTIONS), Admission::Probe, "a TLS trunk's forged address");
}

fn speaks_for_from(leg: &Peer, source: &str, transport: Protocol) -> bool {
    speaks_for(&plan(), REGISTRAR.parse().unwrap(), leg, source.parse().unwrap(), transport)
}

#[test]
fn a_branch_leg_hears_the_registrar_s_socket_only() {
    assert!(speaks_for_from(&Peer::Branch, REGISTRAR, Protocol::Udp));
    for other in ["127.0.0.1:5061", "127.0.0.1:5080", "192.0.2.10:5060", "203.0.113.66:5060"] {
        assert!(!speaks_for_from(&Peer::Branch, other, Protocol::Udp), "{other}: a trunk or a stranger posing as the branch");
    }
}

#[test]
fn a_trunk_leg_hears_that_trunk_only() {
    let carrier = Peer::Trunk("carrier".into());
    assert!(speaks_for_from(&carrier, "192.0.2.10:5060", Protocol::Udp));
    assert!(speaks_for_from(&carrier, "192.0.2.11:5070", Protocol::Udp), "its inbound_from");
    for other in [REGISTRAR, "10.1.0.5:5060", "127.0.0.1:5080", "203.0.113.66:5060"] {
        assert!(!speaks_for_from(&carrier, other, Protocol::Udp), "{other}: the branch, another trunk or a stranger");
    }
    let pbx = Peer::Trunk("pbx".into());
    assert!(speaks_for_from(&pbx, "10.1.9.9:5060", Protocol::Tcp), "anywhere in the IP-PBX's range");
    let secure = Peer::Trunk("secure".into());
    assert!(speaks_for_from(&secure, "198.51.100.7:40001", Protocol::Tls));
    assert!(!speaks_for_from(&secure, "198.51.100.7:5061", Protocol::Udp), "a TLS trunk's address over UDP is anyone's");
}

#[test]
fn responses_are_heard_from_peers_only() {
    let hears = |source: &str, transport| hears_response(&plan(), REGISTRAR.parse().unwrap(), source.parse().unwrap(), transport);
    assert!(hears(REGISTRAR, Protocol::Udp));
    assert!(hears("192.0.2.10:5060", Protocol::Udp));
    assert!(hears("10.1.3.4:5060", Protocol::Udp), "the IP-PBX's range");
    assert!(hears("198.51.100.7:40001", Protocol::Tls));
    assert!(!hears("203.0.113.66:5060", Protocol::Udp), "a stranger");
    assert!(!hears("198.51.100.7:5061", Protocol::Udp), "a TLS trunk's address over UDP");
}

#[test]
fn calls_fit_below_max_calls() {
    assert!(has_room(0, 1));
    assert!(has_room(199, 200));
    assert!(!has_room(200, 200));
    assert!(!has_room(0, 0), "max_calls = 0 takes no call");
}

#[test]
fn a_transfer_needs_a_trunk_that_allows_it_and_a_branch_user() {
    let plan = plan();
    let find = |name: &str| plan.trunks.iter().find(|t| t.name == name);
    assert_eq!(may_transfer(None, Some("3012")), Ok("3012"), "the branch's side");
    assert_eq!(may_transfer(find("pbx"), Some("3012")), Ok("3012"), "allow_refer");
    assert_eq!(may_transfer(find("carrier"), Some("3012")), Err("Forbidden (trunk carrier may not transfer)".into()));
    assert_eq!(may_transfer(None, None), Err("Forbidden (no branch user to answer for the transfer)".into()));
}
