use super::*;
use crate::config::Config;
use holdfast_runtime::config::Loaded;

const PLAN: &str = r#"
[mediation]
default_policy = "national"

[[mediation.rules]]
name = "extension"
pattern = '(3\d{3})'
replace = '+1555987$1'

[[mediation.rules]]
name = "international"
pattern = '011(\d{7,15})'
replace = '+$1'

[[mediation.rules]]
name = "national"
pattern = '1?([2-9]\d{9})'
replace = '+1$1'

[[mediation.policies]]
name = "national"
usages = ["local", "national"]

[[mediation.policies]]
name = "world"
usages = ["international", "local", "national"]
users = ["alice"]

[[mediation.policies]]
name = "everything"
usages = ["local", "national", "international", "premium"]
users = ["boss"]

[[mediation.routes]]
name = "premium"
pattern = '\+1900\d{7}'
usage = "premium"
trunks = ["gw"]

[[mediation.routes]]
name = "pbx"
pattern = '\+15551234\d{3}'
usage = "local"
trunks = ["pbx"]

[[mediation.routes]]
name = "national"
pattern = '\+1\d{10}'
usage = "national"
trunks = ["itsp", "gw"]

[[mediation.routes]]
name = "international"
pattern = '\+[2-9]\d{6,14}'
usage = "international"
trunks = ["itsp", "gw"]

[[mediation.trunks]]
name = "itsp"
kind = "carrier"
address = "192.0.2.10:5060"
inbound_from = ["192.0.2.11"]
called = [{ name = "itsp 00", pattern = '\+(\d+)', replace = '00$1' }]
calling = [{ pattern = '\+1(\d{10})', replace = '$1' }]

[[mediation.trunks]]
name = "gw"
kind = "gateway"
address = "127.0.0.1:5090"

[[mediation.trunks]]
name = "pbx"
kind = "pbx"
address = "192.0.2.20:5060"
transport = "tcp"
media_bypass = true

[[mediation.inbound]]
pattern = '\+1555987(3\d{3})'
user = '$1'

[[mediation.inbound]]
pattern = '\+15551234\d{3}'
trunk = "pbx"
"#;

fn plan() -> Plan {
    Config::parse(PLAN, "t.toml").unwrap_or_else(|e| panic!("{e}")).plan
}

#[test]
fn national_call_takes_the_route_and_trunks_in_order_with_translation() {
    let out = plan().outbound("bob", "3012", "2125550100").unwrap();
    assert_eq!(out.normalized.e164, "+12125550100");
    assert_eq!(out.normalized.rule.as_deref(), Some("national"));
    assert_eq!((out.policy.as_str(), out.usage.as_str(), out.route.as_str()), ("national", "national", "national"));
    assert_eq!(out.caller.as_deref(), Some("+15559873012"));
    let trunks: Vec<&str> = out.legs.iter().map(|l| l.trunk.as_str()).collect();
    assert_eq!(trunks, ["itsp", "gw"]);
    // Per-trunk translation: the carrier wants 00-international and a 10-digit caller; the
    // gateway gets E.164.
    assert_eq!(out.legs[0].called, "0012125550100");
    assert_eq!(out.legs[0].called_rule.as_deref(), Some("itsp 00"));
    assert_eq!(out.legs[0].calling.as_deref(), Some("5559873012"));
    assert_eq!(out.legs[1].called, "+12125550100");
    assert_eq!(out.legs[1].calling.as_deref(), Some("+15559873012"));
}

#[test]
fn a_caller_known_only_by_name_has_no_number_a_number_is_kept() {
    let p = plan();
    let out = p.outbound("alice", "alice", "2125550100").unwrap();
    assert_eq!(out.caller, None, "a name is no calling number");
    assert!(out.legs.iter().all(|l| l.calling.is_none() && l.calling_rule.is_none()), "{:?}", out.legs);
    // A DID sba-registrar asserts for alice is shown, translated per trunk.
    let out = p.outbound("alice", "+15559870500", "2125550100").unwrap();
    assert_eq!(out.legs[0].calling.as_deref(), Some("5559870500"));
    // A number the dial plan does not know is still a number.
    assert_eq!(p.calling_number("42"), Some("42".to_string()));
}

#[test]
fn international_needs_the_usage() {
    let refused = plan().outbound("bob", "3012", "011442079460000").unwrap_err();
    assert_eq!(refused.status, 403);
    assert!(refused.reason.contains("no usage") && refused.reason.contains("international"), "{}", refused.reason);
    let out = plan().outbound("alice", "3013", "011442079460000").unwrap();
    assert_eq!((out.usage.as_str(), out.normalized.e164.as_str()), ("international", "+442079460000"));
}

#[test]
fn premium_is_blocked_unless_a_policy_names_it() {
    assert_eq!(plan().outbound("alice", "3013", "19005550100").unwrap_err().status, 403);
    assert_eq!(plan().outbound("boss", "3014", "19005550100").unwrap().route, "premium");
}

#[test]
fn ext_goes_through_to_the_trunk() {
    let out = plan().outbound("bob", "3012", "+12125550100;ext=42").unwrap();
    assert_eq!(out.legs[1].called, "+12125550100;ext=42");
}

#[test]
fn pbx_numbers_route_to_the_pbx() {
    let out = plan().outbound("bob", "3012", "5551234567").unwrap();
    assert_eq!(out.route, "pbx");
    assert_eq!(out.legs.len(), 1);
    assert!(plan().trunk("pbx").unwrap().media_bypass);
    assert_eq!(plan().trunk("pbx").unwrap().transport, Protocol::Tcp);
}

#[test]
fn unroutable_and_incomplete_numbers() {
    assert_eq!(plan().outbound("bob", "3012", "+999").unwrap_err().status, 404);
    assert_eq!(plan().outbound("bob", "3012", "12345").unwrap_err().status, 484);
    assert_eq!(plan().outbound("bob", "3012", "alice").unwrap_err().status, 404);
}

#[test]
fn inbound_dids_reach_users_and_pbx_ranges_the_pbx() {
    let p = plan();
    assert_eq!(
        p.inbound("itsp", "+15559873012", "+12125550100").unwrap(),
        Inbound::User { number: "+15559873012".into(), user: "3012".into() }
    );
    // A carrier sending the national form: the dial plan makes it E.164 first.
    assert_eq!(
        p.inbound("itsp", "5559873012", "x").unwrap(),
        Inbound::User { number: "+15559873012".into(), user: "3012".into() }
    );
    let Inbound::Pbx { leg, .. } = p.inbound("itsp", "+15551234567", "+12125550100").unwrap() else { panic!() };
    assert_eq!((leg.trunk.as_str(), leg.called.as_str()), ("pbx", "+15551234567"));
    // Never back to the trunk it came from.
    assert_eq!(p.inbound("pbx", "+15551234567", "x").unwrap_err().status, 404);
    assert_eq!(p.inbound("itsp", "+442079460000", "x").unwrap_err().status, 404);
}

#[test]
fn a_tls_trunks_address_over_udp_or_tcp_is_no_trunk() {
    let text = format!(
        "{PLAN}\n[[mediation.trunks]]\nname = \"secure\"\nkind = \"carrier\"\naddress = \"192.0.2.30:5061\"\n\
         transport = \"tls\"\ntls_name = \"sip.carrier.example\"\n"
    );
    let p = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}")).plan;
    let over = |source: &str, transport| p.trunk_over(source.parse().unwrap(), transport).map(|t| t.name.clone());
    assert_eq!(over("192.0.2.30:40000", Protocol::Tls).as_deref(), Some("secure"));
    assert_eq!(over("192.0.2.30:5061", Protocol::Udp), None);
    assert_eq!(over("192.0.2.30:40000", Protocol::Tcp), None);
    // Other trunks keep every transport.
    assert_eq!(over("192.0.2.11:5060", Protocol::Udp).as_deref(), Some("itsp"));
    assert_eq!(over("192.0.2.20:5060", Protocol::Tcp).as_deref(), Some("pbx"));
}

#[test]
fn calls_are_accepted_only_from_a_trunks_addresses() {
    let p = plan();
    let from = |a: &str| p.trunk_from(a.parse().unwrap()).map(|t| t.name.clone());
    assert_eq!(from("192.0.2.11:5060").as_deref(), Some("itsp"));
    assert_eq!(from("192.0.2.10:5999").as_deref(), Some("itsp"));
    assert_eq!(from("127.0.0.1:5090").as_deref(), Some("gw"));
    assert_eq!(from("198.51.100.1:5060"), None);
}
