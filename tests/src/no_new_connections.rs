//! A phone's listening port shut to new TCP connections (nftables, in the phone's namespace),
//! counting the attempts: the phone is then reachable only over the connections it opened
//! itself (RFC 5626 flows), and a test sees whether anyone tried another way.
use crate::netns::Netns;

pub struct NoNewConnections<'a> {
    ns: &'a Netns,
}

impl<'a> NoNewConnections<'a> {
    /// Drops new TCP connections to `port` in `ns` from now on.
    pub fn to(ns: &'a Netns, port: u16) -> NoNewConnections<'a> {
        let rules = format!(
            "table inet holdfast_flow_test {{\n chain input {{\n type filter hook input priority 0;\n \
             tcp dport {port} tcp flags & (syn | ack) == syn counter drop\n }}\n}}\n"
        );
        let out = ns.command("sh").args(["-c", &format!("printf '%s' '{rules}' | nft -f -")]).output().expect("nft (apt-get install nftables)");
        assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
        NoNewConnections { ns }
    }

    /// The new connections dropped so far.
    pub fn attempts(&self) -> u64 {
        let out = self.ns.command("nft").args(["list", "table", "inet", "holdfast_flow_test"]).output().expect("nft");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let count = text.split_once("counter packets ").and_then(|(_, rest)| rest.split(' ').next()).and_then(|n| n.parse().ok());
        count.unwrap_or_else(|| panic!("no counter in: {text}"))
    }
}
