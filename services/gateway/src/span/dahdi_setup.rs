//! The DAHDI span configured from sba.toml, as dahdi_cfg would from /etc/dahdi/system.conf: the
//! line (framing, coding, timing), every B-channel clear and the D-channel HDLC with its FCS,
//! then the span started. The appliance needs neither dahdi-tools nor its perl.

use std::os::raw::c_int;

use log::info;
use nix::errno::Errno;
use serde::Deserialize;

use super::{DahdiSpanConfig, SpanError};
use crate::dahdi::{ioctl, ChanConfig, Ctl, DahdiError, LineConfig, SpanInfo};
use crate::q931::Layout;

/// Frame format on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// T1 extended superframe.
    Esf,
    /// T1 superframe.
    D4,
    /// E1 with common-channel signalling in timeslot 16, as ISDN PRI is.
    Ccs,
}

/// Line coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Coding {
    Ami,
    /// T1.
    B8zs,
    /// E1.
    Hdb3,
}

/// The span's line settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub framing: Framing,
    pub coding: Coding,
    /// E1 CRC-4 multiframe.
    pub crc4: bool,
    /// Line build-out (0-7; 0 is 0 dB, what a short cable to the carrier's NT wants).
    pub lbo: u8,
    /// Priority as the box's clock source: 0 never (we give the clock), 1 first (we take the
    /// carrier's, as the user side does).
    pub timing: u8,
}

impl Line {
    fn lineconfig(self) -> c_int {
        let framing = match self.framing {
            Framing::Esf => ioctl::CONFIG_ESF,
            Framing::D4 => ioctl::CONFIG_D4,
            Framing::Ccs => ioctl::CONFIG_CCS,
        };
        let coding = match self.coding {
            Coding::Ami => ioctl::CONFIG_AMI,
            Coding::B8zs => ioctl::CONFIG_B8ZS,
            Coding::Hdb3 => ioctl::CONFIG_HDB3,
        };
        framing | coding | if self.crc4 { ioctl::CONFIG_CRC4 } else { 0 }
    }
}

/// Each channel of the span by position, with its signalling: the D-channel HDLC with the FCS
/// computed by DAHDI, the B-channels clear (audio).
fn signalling(layout: Layout) -> impl Iterator<Item = (u8, c_int)> {
    (1..=layout.total_channels())
        .map(move |pos| (pos, if pos == layout.dchannel() { ioctl::SIG_HDLCFCS } else { ioctl::SIG_CLEAR }))
}

/// The span as the driver registered it fits `layout`: its channel count, and its type when the
/// driver names one (a dynamic span's is "DYNAMIC", cut to "DYNAM" by the 6-byte field).
fn check_kind(info: &SpanInfo, spanno: c_int, layout: Layout) -> Result<(), SpanError> {
    let spantype = info.spantype();
    let channels = info.totalchans;
    let typed_as = match spantype.as_str() {
        "E1" => Some(Layout::E1),
        "T1" | "J1" => Some(Layout::T1),
        _ => None,
    };
    if channels != c_int::from(layout.total_channels()) || typed_as.is_some_and(|t| t != layout) {
        return Err(SpanError::WrongKind { spanno, spantype, channels, wanted: layout });
    }
    Ok(())
}

/// Span `spanno` as the kernel has it: absent until a card's driver (or a dynamic span) registers
/// it and it is assigned a number.
fn span_info(ctl: &Ctl, spanno: c_int) -> Result<SpanInfo, SpanError> {
    match ctl.span_info(spanno) {
        Err(DahdiError::SpanIoctl { errno: Errno::EINVAL | Errno::ENXIO, .. }) => Err(SpanError::NoSpan(spanno)),
        other => Ok(other?),
    }
}

/// Configures the span and starts it; returns the global number of its first channel. A channel
/// already set up as wanted is left alone, as dahdi_cfg does, so a restart of the gateway disturbs
/// nothing.
pub fn configure(ctl: &Ctl, config: &DahdiSpanConfig) -> Result<c_int, SpanError> {
    let DahdiSpanConfig { spanno, layout, law, basechan, line } = *config;
    check_kind(&span_info(ctl, spanno)?, spanno, layout)?;
    let basechan = match basechan {
        Some(b) => b,
        None => read_basechan(spanno)?,
    };
    ctl.configure_span(&LineConfig::for_span(spanno, line.lineconfig(), c_int::from(line.lbo), c_int::from(line.timing)))?;
    let mut changed = 0;
    for (pos, sigtype) in signalling(layout) {
        let channo = basechan + c_int::from(pos) - 1;
        let (params, master) = ctl.channel_params(channo)?;
        if params.sigtype != sigtype || master != channo {
            ctl.configure_channel(&ChanConfig::for_channel(channo, sigtype, law as c_int))?;
            changed += 1;
        }
    }
    ctl.start_span(spanno)?;
    info!(
        "DAHDI span {spanno}: {layout:?} {:?}/{:?}{}, timing {}, lbo {}; channels {basechan}-{} ({changed} configured); started",
        line.framing,
        line.coding,
        if line.crc4 { "/CRC4" } else { "" },
        line.timing,
        line.lbo,
        basechan + c_int::from(layout.total_channels()) - 1
    );
    Ok(basechan)
}

fn read_basechan(spanno: c_int) -> Result<c_int, DahdiError> {
    let path = format!("/sys/bus/dahdi_spans/devices/span-{spanno}/basechan");
    let text = std::fs::read_to_string(&path).map_err(|source| DahdiError::Sysfs { path: path.clone(), source })?;
    text.trim().parse().map_err(|_| DahdiError::Sysfs {
        path,
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not a number: {text:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineconfig_words_are_dahdi_cfgs() {
        // dahdi_cfg's "span=1,1,0,ccs,hdb3,crc4" and "span=1,0,0,esf,b8zs".
        let e1 = Line { framing: Framing::Ccs, coding: Coding::Hdb3, crc4: true, lbo: 0, timing: 1 };
        assert_eq!(e1.lineconfig(), (1 << 8) | (1 << 9) | (1 << 10));
        let t1 = Line { framing: Framing::Esf, coding: Coding::B8zs, crc4: false, lbo: 0, timing: 0 };
        assert_eq!(t1.lineconfig(), (1 << 5) | (1 << 7));
        let d4 = Line { framing: Framing::D4, coding: Coding::Ami, ..t1 };
        assert_eq!(d4.lineconfig(), (1 << 4) | (1 << 6));
    }

    #[test]
    fn dchannel_is_hdlc_with_fcs_and_the_rest_clear() {
        // dahdi_cfg's "bchan=1-15,17-31" and "dchan=16" for E1, "bchan=1-23", "dchan=24" for T1.
        let e1: Vec<_> = signalling(Layout::E1).collect();
        assert_eq!(e1.len(), 31);
        assert_eq!(e1.iter().filter(|(_, s)| *s == 0x380).map(|(p, _)| *p).collect::<Vec<_>>(), [16]);
        assert!(e1.iter().filter(|(p, _)| *p != 16).all(|(_, s)| *s == 0x80));
        let t1: Vec<_> = signalling(Layout::T1).collect();
        assert_eq!((t1.len(), t1[23]), (24, (24, 0x380)));
    }

    fn span(spantype: &[u8], channels: c_int) -> SpanInfo {
        let mut info = SpanInfo::for_span(1);
        info.spantype[..spantype.len()].copy_from_slice(spantype);
        info.totalchans = channels;
        info
    }

    #[test]
    fn a_span_of_another_kind_is_refused() {
        assert!(check_kind(&span(b"E1", 31), 1, Layout::E1).is_ok());
        assert!(check_kind(&span(b"T1", 24), 1, Layout::T1).is_ok());
        assert!(check_kind(&span(b"J1", 24), 1, Layout::T1).is_ok());
        assert!(check_kind(&span(b"DYNAM", 24), 1, Layout::T1).is_ok());
        for (info, layout) in [(span(b"T1", 24), Layout::E1), (span(b"E1", 31), Layout::T1), (span(b"TE", 3), Layout::E1), (span(b"T1", 31), Layout::T1)] {
            let err = check_kind(&info, 1, layout).unwrap_err().to_string();
            assert!(err.contains("span 1") && err.contains("sba.toml"), "{err}");
        }
    }
}
