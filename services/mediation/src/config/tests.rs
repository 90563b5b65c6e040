use super::*;

const MIN: &str = "[registrar]\ndb = \"/var/lib/sba/sba.db\"\n\n[mediation]\n";

#[test]
fn embedded_default_parses() {
    let c = Config::embedded();
    assert_eq!(c.listen, "127.0.0.1:5070".parse().unwrap());
    assert_eq!(c.plan.trunks.len(), 1);
    assert_eq!((c.plan.trunks[0].kind, c.plan.trunks[0].address), (TrunkKind::Gateway, "127.0.0.1:5080".parse().unwrap()));
    assert_eq!(c.plan.default_policy, "national");
    assert_eq!(c.plan.policy_of("3001").unwrap().name, "international");
    assert_eq!(c.media_ports, 30000..=30999);
}

#[test]
fn the_appliance_config_parses_beside_the_other_sections() {
    let text = include_str!("../../../../image/overlay/etc/sba/sba.toml");
    let c = Config::parse(text, "sba.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.db, PathBuf::from("/var/lib/sba/sba.db"));
    // The appliance never puts loopback into SDP: the LAN's address, looked up at start.
    assert_eq!(c.media_ip, None);
    // Only local and national calls without a policy of its own.
    assert_eq!(c.plan.policy_of("anyone").unwrap().usages, ["local", "national"]);
}

#[test]
fn a_missing_table_and_an_empty_one_mean_the_same() {
    // Config holds compiled regexes (no PartialEq): compare what Debug shows of every field.
    let shown = |text: &str| format!("{:?}", Config::parse(text, "t").unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(shown(""), shown("[mediation]\n"));
    assert_eq!(shown(""), shown("[registrar]\n[mediation]\n"));
    let c = Config::parse("", "empty").unwrap();
    assert_eq!((c.listen, c.registrar), ("127.0.0.1:5070".parse().unwrap(), "127.0.0.1:5060".parse().unwrap()));
    assert_eq!((c.no_answer, c.db), (Duration::from_secs(60), PathBuf::from(holdfast_runtime::DEFAULT_DB)));
}

#[test]
fn srtp_policies_are_read_per_leg() {
    let text = format!("{MIN}srtp = \"mandatory\"\n[[mediation.trunks]]\nname = \"c\"\nkind = \"carrier\"\naddress = \"192.0.2.1:5060\"\nsrtp = \"off\"\n");
    let c = Config::parse(&text, "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.srtp, c.plan.trunks[0].srtp), (SrtpPolicy::Mandatory, SrtpPolicy::Off));
    assert_eq!(Config::parse(MIN, "t").unwrap().srtp, SrtpPolicy::Optional);
    let e = Config::parse(&format!("{MIN}srtp = \"sometimes\"\n"), "t").unwrap_err().to_string();
    assert!(e.contains("srtp") || e.contains("sometimes"), "{e}");
}

#[test]
fn db_falls_back_to_the_registrars() {
    assert_eq!(Config::parse(MIN, "t").unwrap().db, PathBuf::from("/var/lib/sba/sba.db"));
}

fn err(text: &str) -> String {
    Config::parse(text, "t.toml").unwrap_err().to_string()
}

#[test]
fn errors_name_key_and_line() {
    let e = err(&format!("{MIN}listen = \"nowhere\"\n"));
    assert!(e.contains("line 5") && e.contains("mediation.listen"), "{e}");
    let e = err(&format!("{MIN}lisen = \"127.0.0.1:1\"\n"));
    assert!(e.contains("line 5") && e.contains("lisen"), "{e}");
    let e = err(&format!("{MIN}[[mediation.rules]]\npattern = '(\\d'\nreplace = 'x'\n"));
    assert!(e.contains("line 6") && e.contains("mediation.rules[0].pattern"), "{e}");
    let e = err(&format!("{MIN}[[mediation.routes]]\nname = \"r\"\npattern = 'x'\nusage = \"local\"\ntrunks = [\"nope\"]\n"));
    assert!(e.contains("line 9") && e.contains("mediation.routes[0].trunks") && e.contains("nope"), "{e}");
    let e = err(&format!("{MIN}default_policy = \"gold\"\n"));
    assert!(e.contains("line 5") && e.contains("default_policy"), "{e}");
    let e = err(&format!("{MIN}listen = \"0.0.0.0:5070\"\n"));
    assert!(e.contains("line 5") && e.contains("advertise"), "{e}");
    assert!(Config::parse(&format!("{MIN}listen = \"0.0.0.0:5070\"\nadvertise = \"192.0.2.1\"\n"), "t").is_ok());
    let e = err(&format!("{MIN}media_ip = \"0.0.0.0\"\n"));
    assert!(e.contains("line 5") && e.contains("media_ip"), "{e}");
    let e = err(&format!("{MIN}media_ip = \"\"\n"));
    assert!(e.contains("line 5") && e.contains("auto"), "{e}");
    assert_eq!(Config::parse(&format!("{MIN}media_ip = \"auto\"\n"), "t").unwrap().media_ip, None);
    assert_eq!(Config::parse(MIN, "t").unwrap().media_ip, Some(IpAddr::from([127, 0, 0, 1])));
    let e = err(&format!("{MIN}media_ports = [30001, 30100]\n"));
    assert!(e.contains("line 5") && e.contains("media_ports"), "{e}");
    let e = err(&format!(
        "{MIN}[[mediation.trunks]]\nname = \"a\"\nkind = \"carrier\"\naddress = \"127.0.0.1:1\"\n\
         [[mediation.trunks]]\nname = \"a\"\nkind = \"pbx\"\naddress = \"127.0.0.1:2\"\n"
    ));
    assert!(e.contains("line 10") && e.contains("duplicate"), "{e}");
    let e = err(&format!("{MIN}[[mediation.trunks]]\nname = \"a\"\nkind = \"sbc\"\naddress = \"127.0.0.1:1\"\n"));
    assert!(e.contains("line 7") && e.contains("kind"), "{e}");
    let e = err(&format!("{MIN}[[mediation.inbound]]\npattern = 'x'\nuser = 'a'\ntrunk = 'b'\n"));
    assert!(e.contains("mediation.inbound[0]"), "{e}");
}

#[test]
fn registration_defaults_to_the_trunk_address() {
    let c = Config::parse(
        &format!(
            "{MIN}[[mediation.trunks]]\nname = \"itsp\"\nkind = \"carrier\"\naddress = \"127.0.0.1:5080\"\n\
             registration = {{ user = \"branch\", password = \"pw\" }}\n"
        ),
        "t",
    )
    .unwrap();
    let r = c.plan.trunks[0].registration.clone().unwrap();
    assert_eq!((r.domain.as_str(), r.expires), ("127.0.0.1", 600));
}

#[test]
fn unlisted_users_get_local_and_national_only_unless_a_default_is_named() {
    let text = format!("{MIN}[[mediation.policies]]\nname = \"world\"\nusages = [\"international\"]\nusers = [\"alice\"]\n");
    let c = Config::parse(&text, "t").unwrap();
    assert_eq!(c.plan.policy_of("alice").unwrap().name, "world");
    let bob = c.plan.policy_of("bob").unwrap();
    assert_eq!((bob.name.as_str(), bob.usages.clone()), ("default", vec!["local".to_string(), "national".to_string()]));
    let named = text.replace("[mediation]\n", "[mediation]\ndefault_policy = \"world\"\n");
    assert_eq!(Config::parse(&named, "t").unwrap().plan.policy_of("bob").unwrap().name, "world");
}

#[test]
fn a_trunks_srtp_suites_are_offered_in_its_order_and_an_unknown_one_is_an_error() {
    let trunk = |extra: &str| format!("{MIN}[[mediation.trunks]]\nname = \"itsp\"\nkind = \"carrier\"\naddress = \"192.0.2.7:5060\"\n{extra}");
    let c = Config::parse(&trunk("srtp_suites = [\"AEAD_AES_128_GCM\", \"AES_CM_128_HMAC_SHA1_80\"]\n"), "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.plan.srtp_suites(Some("itsp")), [Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80]);
    let c = Config::parse(&trunk(""), "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.plan.srtp_suites(Some("itsp")), Suite::ALL);
    assert_eq!(c.plan.srtp_suites(None), Suite::ALL);
    match Config::parse(&trunk("srtp_suites = [\"AES_192_CM_HMAC_SHA1_80\"]\n"), "t") {
        Err(ConfigError::Key { key, .. }) => assert_eq!(key, "mediation.trunks[0].srtp_suites"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_tls_trunk_is_checked_by_its_name_and_a_bad_name_is_an_error() {
    let trunk = |extra: &str| format!("{MIN}[[mediation.trunks]]\nname = \"itsp\"\nkind = \"carrier\"\naddress = \"192.0.2.7:5061\"\ntransport = \"tls\"\n{extra}");
    let c = Config::parse(&trunk("tls_name = \"sip.itsp.example\"\n"), "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.plan.trunks[0].transport, Protocol::Tls);
    assert_eq!((c.tls_trunks.len(), c.tls_trunks[0].verify), (1, true));
    assert_eq!(format!("{:?}", c.tls_trunks[0].name), format!("{:?}", ServerName::try_from("sip.itsp.example").unwrap()));
    // Without tls_name, its IP address.
    let c = Config::parse(&trunk(""), "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(format!("{:?}", c.tls_trunks[0].name), format!("{:?}", ServerName::try_from("192.0.2.7").unwrap()));
    match Config::parse(&trunk("tls_name = \"not a name\"\n"), "t") {
        Err(ConfigError::Key { key, .. }) => assert_eq!(key, "mediation.trunks[0].tls_name"),
        other => panic!("{other:?}"),
    }
}
