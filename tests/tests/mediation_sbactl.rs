//! `sbactl number test` against sba-mediation's embedded plan and a configuration file: the
//! rule, usage, route and trunks it prints, and the refusal with its status.
use holdfast_tests::bins::bin;
use holdfast_tests::scratch::Scratch;
use std::process::{Command, Output};

fn number_test(args: &[&str]) -> (Output, String) {
    let out = Command::new(bin("sbactl")).args(["number", "test"]).args(args).output().expect("run sbactl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out, text)
}

#[test]
fn number_test_shows_rule_usage_route_and_trunks() {
    let scratch = Scratch::new("mediation-sbactl");
    let config = scratch.file("sba.toml");
    std::fs::write(
        &config,
        r#"
[mediation]
[[mediation.rules]]
name = "extension"
pattern = '(3\d{3})'
replace = '+1555987$1'
[[mediation.rules]]
name = "international"
pattern = '011(\d{7,15})'
replace = '+$1'
[[mediation.policies]]
name = "world"
usages = ["local", "international"]
users = ["alice"]
[[mediation.policies]]
name = "plain"
usages = ["local"]
[[mediation.routes]]
name = "abroad"
pattern = '\+[2-9]\d{6,14}'
usage = "international"
trunks = ["itsp", "gw"]
[[mediation.trunks]]
name = "itsp"
kind = "carrier"
address = "127.0.0.1:5080"
called = [{ name = "00 prefix", pattern = '\+(\d+)', replace = '00$1' }]
[[mediation.trunks]]
name = "gw"
kind = "gateway"
address = "127.0.0.1:5090"
"#,
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (out, text) = number_test(&["011442079460000", "--user", "alice", "--caller", "3012", "--config", cfg]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("normalized: +442079460000 (rule international)"), "{text}");
    assert!(text.contains("usage:      international"), "{text}");
    assert!(text.contains("route:      abroad"), "{text}");
    assert!(text.contains("caller:     +15559873012"), "{text}");
    assert!(text.contains("1. itsp (carrier 127.0.0.1:5080 UDP) called 00442079460000 (rule 00 prefix)"), "{text}");
    assert!(text.contains("2. gw (gateway 127.0.0.1:5090 UDP) called +442079460000"), "{text}");

    let (out, text) = number_test(&["011442079460000", "--user", "bob", "--config", cfg]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("refused:    403 Forbidden (no usage: international not granted to bob)"), "{text}");

    let bad = scratch.file("bad.toml");
    std::fs::write(&bad, "[mediation]\n[[mediation.rules]]\npattern = '(\\d'\nreplace = 'x'\n").unwrap();
    let (out, _) = number_test(&["123", "--user", "bob", "--config", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 3") && err.contains("mediation.rules[0].pattern"), "{err}");
}
