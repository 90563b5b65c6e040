//! The [gateway] section of the appliance's TOML file. Errors name the key and the line.

use std::net::SocketAddr;
use std::path::PathBuf;

use holdfast_runtime::config::{ConfigError, Loaded, Source};
use holdfast_status::snapshot::GatewayStatus;
use serde::Deserialize;

use crate::dahdi::Law;
use crate::q921::Side;
use crate::q931::dialplan::DialPlan;
use crate::q931::ie::Layer1;
use crate::q931::Layout;
use crate::span::{Coding, Framing, Line};

pub const DEFAULT: &str = include_str!("default.toml");

// `[gateway]` has one source of defaults, `Gateway::default()`: a key left out, the table left
// out and an empty table all mean the same.
#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    gateway: Gateway,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SideName {
    User,
    Network,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanType {
    E1,
    T1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LawName {
    Alaw,
    Mulaw,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gateway {
    /// DAHDI span number.
    pub span: i32,
    pub side: SideName,
    pub spantype: SpanType,
    /// G.711 law on the B-channels; A-law on E1 and µ-law on T1 unless set.
    pub law: Option<LawName>,
    /// Global number of the span's first channel; read from sysfs when absent.
    pub basechan: Option<i32>,
    /// The line, as the carrier provisioned it: T1 `esf` or `d4` (E1 PRI is always `ccs`).
    pub framing: Option<Framing>,
    /// `b8zs` (T1) or `hdb3` (E1) unless set; `ami` on old lines.
    pub coding: Option<Coding>,
    /// E1 CRC-4 multiframe; on by default.
    pub crc4: Option<bool>,
    /// Line build-out, 0-7.
    pub lbo: u8,
    /// Priority of this span as the clock source: 0 never, 1 first. Default 1 on the user side
    /// (the carrier gives the clock), 0 on the network side.
    pub timing: Option<u8>,
    /// A simulated span instead of DAHDI, its far end (a simulated PSTN exchange) in this process.
    pub simulated: bool,
    /// The simulated exchange's control socket, through which `sbactl pstn call` has it call
    /// the branch; only with `simulated`.
    pub exchange_control: PathBuf,
    /// Our SIP address (UDP and TCP); the RTP sockets bind on its IP.
    pub listen: SocketAddr,
    /// sba-mediation's SIP address, where PSTN calls are sent.
    pub mediation: SocketAddr,
    /// Patterns of complete called numbers (q931/dialplan.rs). Empty: every SETUP is complete;
    /// otherwise a SETUP without sending complete is collected by overlap receiving.
    pub dial_plan: Vec<String>,
    /// The status snapshot sba-web reads (span, alarms, B-channels), rewritten every second.
    pub status_file: std::path::PathBuf,
}

impl Default for Gateway {
    fn default() -> Gateway {
        Gateway {
            span: 1,
            side: SideName::User,
            spantype: SpanType::T1,
            law: None,
            basechan: None,
            framing: None,
            coding: None,
            crc4: None,
            lbo: 0,
            timing: None,
            simulated: false,
            exchange_control: PathBuf::from("./var/pstn.sock"),
            listen: SocketAddr::from(([127, 0, 0, 1], 5080)),
            mediation: SocketAddr::from(([127, 0, 0, 1], 5070)),
            dial_plan: Vec::new(),
            // Beside the services' default database, where sba-web looks.
            status_file: holdfast_status::path_of::<GatewayStatus>(std::path::Path::new(holdfast_runtime::DEFAULT_DB)),
        }
    }
}

impl Gateway {
    pub fn side(&self) -> Side {
        match self.side {
            SideName::User => Side::User,
            SideName::Network => Side::Network,
        }
    }

    pub fn layout(&self) -> Layout {
        match self.spantype {
            SpanType::E1 => Layout::E1,
            SpanType::T1 => Layout::T1,
        }
    }

    fn law_name(&self) -> LawName {
        self.law.unwrap_or(match self.spantype {
            SpanType::E1 => LawName::Alaw,
            SpanType::T1 => LawName::Mulaw,
        })
    }

    pub fn law(&self) -> Law {
        match self.law_name() {
            LawName::Alaw => Law::Alaw,
            LawName::Mulaw => Law::Mulaw,
        }
    }

    /// The line settings; `parse` has checked they fit the span type.
    pub fn line(&self) -> Line {
        let (framing, coding) = match self.spantype {
            SpanType::E1 => (Framing::Ccs, Coding::Hdb3),
            SpanType::T1 => (Framing::Esf, Coding::B8zs),
        };
        Line {
            framing: self.framing.unwrap_or(framing),
            coding: self.coding.unwrap_or(coding),
            crc4: self.spantype == SpanType::E1 && self.crc4.unwrap_or(true),
            lbo: self.lbo,
            timing: self.timing.unwrap_or(match self.side {
                SideName::User => 1,
                SideName::Network => 0,
            }),
        }
    }

    /// Why the line settings do not fit the span type: the key at fault and the reason.
    fn line_fault(&self) -> Option<(&'static str, String)> {
        let e1 = self.spantype == SpanType::E1;
        let fault = |key, reason: &str| Some((key, reason.to_owned()));
        match self.framing {
            Some(Framing::Ccs) if !e1 => return fault("framing", "ccs is E1 framing; a T1 is esf or d4"),
            Some(Framing::Esf | Framing::D4) if e1 => return fault("framing", "esf and d4 are T1 framings; an E1 PRI is ccs"),
            _ => {}
        }
        match self.coding {
            Some(Coding::B8zs) if e1 => return fault("coding", "b8zs is T1 coding; an E1 is hdb3 or ami"),
            Some(Coding::Hdb3) if !e1 => return fault("coding", "hdb3 is E1 coding; a T1 is b8zs or ami"),
            _ => {}
        }
        if self.crc4.is_some() && !e1 {
            return fault("crc4", "CRC-4 is an E1 option");
        }
        (self.lbo > 7).then(|| ("lbo", format!("{} is not a line build-out (0-7)", self.lbo)))
    }

    /// The parsed dial plan; `parse` has checked it.
    pub fn dial_plan(&self) -> DialPlan {
        DialPlan::parse(&self.dial_plan).unwrap_or_default()
    }

    pub fn layer1(&self) -> Layer1 {
        match self.law_name() {
            LawName::Alaw => Layer1::Alaw,
            LawName::Mulaw => Layer1::Mulaw,
        }
    }
}

impl Loaded for Gateway {
    const DEFAULT: &'static str = DEFAULT;

    fn from_source(source: &Source) -> Result<Gateway, ConfigError> {
        let g = source.sections::<File>()?.gateway;
        if g.span < 1 {
            return Err(source.key_error("gateway", "span", format!("{} is not a DAHDI span number (1 and up)", g.span)));
        }
        if let Some((key, message)) = g.line_fault() {
            return Err(source.key_error("gateway", key, message));
        }
        if let Err(e) = DialPlan::parse(&g.dial_plan) {
            return Err(source.key_error("gateway", "dial_plan", e.to_string()));
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_a_simulated_t1_user_side() {
        let g = Gateway::parse(DEFAULT, "default").unwrap();
        assert!(g.simulated);
        assert_eq!(g.side(), Side::User);
        assert_eq!(g.layout(), Layout::T1);
        assert_eq!(g.law(), Law::Mulaw);
    }

    #[test]
    fn a_missing_table_and_an_empty_one_mean_the_same() {
        let empty = Gateway::parse("", "empty").unwrap();
        assert_eq!(empty, Gateway::parse("[gateway]\n", "table").unwrap());
        assert_eq!(empty, Gateway::default());
        assert!(!empty.simulated, "without a word about it, the gateway drives DAHDI");
    }

    #[test]
    fn the_appliance_sba_toml_parses() {
        let text = include_str!("../../../image/overlay/etc/sba/sba.toml");
        let g = Gateway::parse(text, "image/overlay/etc/sba/sba.toml").unwrap();
        assert!(!g.simulated, "the appliance drives DAHDI");
    }

    #[test]
    fn other_sections_are_accepted_and_e1_defaults_to_alaw() {
        let text = "[registrar]\nlisten = \"0.0.0.0:5060\"\n\n[gateway]\nspan = 2\nside = \"network\"\nspantype = \"e1\"\n";
        let g = Gateway::parse(text, "t").unwrap();
        assert_eq!((g.span, g.side(), g.layout(), g.law(), g.simulated), (2, Side::Network, Layout::E1, Law::Alaw, false));
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let text = "[gateway]\nspan = 1\nside = \"both\"\nspantype = \"t1\"\n";
        match Gateway::parse(text, "sba.toml") {
            Err(ConfigError::Key { line, key, .. }) => assert_eq!((line, key.as_str()), (3, "gateway.side")),
            other => panic!("{other:?}"),
        }
        let text = "[gateway]\nspan = 0\nside = \"user\"\nspantype = \"t1\"\n";
        match Gateway::parse(text, "sba.toml") {
            Err(ConfigError::Key { line, key, .. }) => assert_eq!((line, key.as_str()), (2, "gateway.span")),
            other => panic!("{other:?}"),
        }
        let err = Gateway::parse("[gateway]\nspan = 1\nside = \"user\"\nspantype = \"t1\"\nbogus = 1\n", "sba.toml").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn line_defaults_follow_the_span_type_and_the_side() {
        let g = Gateway::parse("[gateway]\nspan = 1\nside = \"user\"\nspantype = \"e1\"\n", "t").unwrap();
        assert_eq!(g.line(), Line { framing: Framing::Ccs, coding: Coding::Hdb3, crc4: true, lbo: 0, timing: 1 });
        let g = Gateway::parse("[gateway]\nspan = 1\nside = \"network\"\nspantype = \"t1\"\n", "t").unwrap();
        assert_eq!(g.line(), Line { framing: Framing::Esf, coding: Coding::B8zs, crc4: false, lbo: 0, timing: 0 });
        let text = "[gateway]\nspan = 1\nside = \"user\"\nspantype = \"t1\"\nframing = \"d4\"\ncoding = \"ami\"\nlbo = 2\ntiming = 2\n";
        assert_eq!(Gateway::parse(text, "t").unwrap().line(), Line { framing: Framing::D4, coding: Coding::Ami, crc4: false, lbo: 2, timing: 2 });
        let g = Gateway::parse("[gateway]\nspan = 1\nside = \"user\"\nspantype = \"e1\"\ncrc4 = false\n", "t").unwrap();
        assert!(!g.line().crc4);
    }

    #[test]
    fn line_settings_of_the_other_span_type_name_key_and_line() {
        for (extra, key) in [
            ("spantype = \"e1\"\nframing = \"esf\"", "gateway.framing"),
            ("spantype = \"t1\"\nframing = \"ccs\"", "gateway.framing"),
            ("spantype = \"e1\"\ncoding = \"b8zs\"", "gateway.coding"),
            ("spantype = \"t1\"\ncoding = \"hdb3\"", "gateway.coding"),
            ("spantype = \"t1\"\ncrc4 = true", "gateway.crc4"),
            ("spantype = \"t1\"\nlbo = 8", "gateway.lbo"),
        ] {
            let text = format!("[gateway]\nspan = 1\nside = \"user\"\n{extra}\n");
            match Gateway::parse(&text, "sba.toml") {
                Err(ConfigError::Key { line, key: k, .. }) => assert_eq!((line, k.as_str()), (5, key), "{extra}"),
                other => panic!("{extra}: {other:?}"),
            }
        }
    }

    #[test]
    fn dial_plan_is_checked_and_empty_by_default() {
        assert!(Gateway::parse(DEFAULT, "default").unwrap().dial_plan().is_empty());
        let text = "[gateway]\nspan = 1\nside = \"user\"\nspantype = \"t1\"\ndial_plan = [\"2XXX\", \"0Z.\"]\n";
        assert_eq!(Gateway::parse(text, "t").unwrap().dial_plan().check("2000"), crate::q931::dialplan::Completeness::Complete);
        let text = "[gateway]\nspan = 1\nside = \"user\"\nspantype = \"t1\"\ndial_plan = [\"2X.X\"]\n";
        match Gateway::parse(text, "sba.toml") {
            Err(ConfigError::Key { line, key, .. }) => assert_eq!((line, key.as_str()), (5, "gateway.dial_plan")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sip_addresses_default_to_loopback_and_bad_ones_name_key_and_line() {
        let g = Gateway::parse(DEFAULT, "default").unwrap();
        assert_eq!((g.listen.to_string().as_str(), g.mediation.to_string().as_str()), ("127.0.0.1:5080", "127.0.0.1:5070"));
        let text = "[gateway]\nspan = 1\nside = \"user\"\nspantype = \"t1\"\nlisten = \"[::1]:5090\"\nmediation = \"10.0.0.5:5060\"\n";
        let g = Gateway::parse(text, "sba.toml").unwrap();
        assert_eq!((g.listen, g.mediation), ("[::1]:5090".parse().unwrap(), "10.0.0.5:5060".parse().unwrap()));
        let text = "[gateway]\nspan = 1\nside = \"user\"\nspantype = \"t1\"\nmediation = \"mediation.local\"\n";
        match Gateway::parse(text, "sba.toml") {
            Err(ConfigError::Key { line, key, .. }) => assert_eq!((line, key.as_str()), (5, "gateway.mediation")),
            other => panic!("{other:?}"),
        }
    }
}
