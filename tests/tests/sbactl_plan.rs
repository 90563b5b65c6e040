//! `sbactl plan` as an admin runs it: the binary's --json fields (a contract other tools read)
//! and its verdict on the shipped configuration's span. The Erlang B values are the published
//! table's (10 E at 1%: 18 lines; 150 E: 170).
use holdfast_tests::bins::{bin, repo};
use std::process::Command;

fn plan(args: &[&str]) -> (serde_json::Value, String) {
    let config = repo().join("image/overlay/etc/sba/sba.toml");
    let config = config.to_str().unwrap();
    let json = Command::new(bin("sbactl")).args(["plan", "--config", config, "--json"]).args(args).output().unwrap();
    assert!(json.status.success(), "{}", String::from_utf8_lossy(&json.stderr));
    let text = Command::new(bin("sbactl")).args(["plan", "--config", config]).args(args).output().unwrap();
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    (serde_json::from_slice(&json.stdout).unwrap(), String::from_utf8(text.stdout).unwrap())
}

#[test]
fn a_moderate_branch_of_100_fits_the_shipped_e1() {
    let (json, text) = plan(&["--users", "100"]);
    assert_eq!(json["offered_erlangs"], 10.0, "{json}");
    assert_eq!(json["erlang_b_ports"], 18, "{json}");
    assert_eq!(json["rule_of_thumb_ports"], 10, "{json}");
    assert_eq!(json["e1_spans"], 1, "{json}");
    assert_eq!(json["t1_spans"], 1, "{json}");
    assert!(text.contains("one E1 span") && text.contains(", enough") && !text.contains("NOT"), "{text}");
}

#[test]
fn a_heavy_branch_of_1000_needs_six_e1_and_the_shipped_one_does_not_suffice() {
    let (json, text) = plan(&["--users", "1000", "--calls-per-user-hour", "3", "--hold-secs", "180"]);
    assert_eq!(json["offered_erlangs"], 150.0, "{json}");
    assert_eq!(json["erlang_b_ports"], 170, "{json}");
    assert_eq!(json["rule_of_thumb_ports"], 200, "{json}");
    assert_eq!(json["e1_spans"], 6, "{json}");
    assert_eq!(json["t1_spans"], 8, "{json}");
    assert!(text.contains("one E1 span") && text.contains("NOT enough"), "{text}");
}

#[test]
fn impossible_figures_are_refused_naming_the_flag() {
    for (flag, value) in [("--blocking", "1.5"), ("--blocking", "0"), ("--hold-secs", "0")] {
        let out = Command::new(bin("sbactl")).args(["plan", "--users", "10", "--json", flag, value]).output().unwrap();
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(out.stdout.is_empty(), "{flag} {value}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag), "{}", String::from_utf8_lossy(&out.stderr));
    }
}
