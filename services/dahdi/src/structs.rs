//! `#[repr(C)]` mirrors of the DAHDI structs passed to the ioctls we use.

use std::os::raw::c_int;

/// `struct dahdi_params` (136 bytes): channel state from DAHDI_GET_PARAMS.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub channo: c_int,
    pub spanno: c_int,
    pub chanpos: c_int,
    pub sigtype: c_int,
    pub sigcap: c_int,
    pub rxisoffhook: c_int,
    pub rxbits: c_int,
    pub txbits: c_int,
    pub txhooksig: c_int,
    pub rxhooksig: c_int,
    pub curlaw: c_int,
    pub idlebits: c_int,
    pub name: [u8; 40],
    pub prewinktime: c_int,
    pub preflashtime: c_int,
    pub winktime: c_int,
    pub flashtime: c_int,
    pub starttime: c_int,
    pub rxwinktime: c_int,
    pub rxflashtime: c_int,
    pub debouncetime: c_int,
    pub pulsebreaktime: c_int,
    pub pulsemaketime: c_int,
    pub pulseaftertime: c_int,
    pub chan_alarms: u32,
}

impl Params {
    /// A request for channel `channo` (0 = the channel the fd is bound to).
    pub fn for_channel(channo: c_int) -> Self {
        Params {
            channo,
            spanno: 0,
            chanpos: 0,
            sigtype: 0,
            sigcap: 0,
            rxisoffhook: 0,
            rxbits: 0,
            txbits: 0,
            txhooksig: 0,
            rxhooksig: 0,
            curlaw: 0,
            idlebits: 0,
            name: [0; 40],
            prewinktime: 0,
            preflashtime: 0,
            winktime: 0,
            flashtime: 0,
            starttime: 0,
            rxwinktime: 0,
            rxflashtime: 0,
            debouncetime: 0,
            pulsebreaktime: 0,
            pulsemaketime: 0,
            pulseaftertime: 0,
            chan_alarms: 0,
        }
    }

    pub fn name(&self) -> String {
        c_string(&self.name)
    }
}

/// `struct dahdi_spaninfo` (packed, 314 bytes): span state from DAHDI_SPANSTAT.
#[repr(C, packed)]
#[derive(Debug, Clone, Copy)]
pub struct SpanInfo {
    pub spanno: c_int,
    pub name: [u8; 20],
    pub desc: [u8; 40],
    pub alarms: c_int,
    pub txlevel: c_int,
    pub rxlevel: c_int,
    pub bpvcount: c_int,
    pub crc4count: c_int,
    pub ebitcount: c_int,
    pub fascount: c_int,
    pub fecount: u32,
    pub cvcount: c_int,
    pub becount: c_int,
    pub prbs: c_int,
    pub errsec: c_int,
    pub irqmisses: c_int,
    pub syncsrc: c_int,
    pub numchans: c_int,
    pub totalchans: c_int,
    pub totalspans: c_int,
    pub lbo: c_int,
    pub lineconfig: c_int,
    pub lboname: [u8; 40],
    pub location: [u8; 40],
    pub manufacturer: [u8; 40],
    pub devicetype: [u8; 40],
    pub irq: c_int,
    pub linecompat: c_int,
    pub spantype: [u8; 6],
}

impl SpanInfo {
    pub fn for_span(spanno: c_int) -> Self {
        SpanInfo {
            spanno,
            name: [0; 20],
            desc: [0; 40],
            alarms: 0,
            txlevel: 0,
            rxlevel: 0,
            bpvcount: 0,
            crc4count: 0,
            ebitcount: 0,
            fascount: 0,
            fecount: 0,
            cvcount: 0,
            becount: 0,
            prbs: 0,
            errsec: 0,
            irqmisses: 0,
            syncsrc: 0,
            numchans: 0,
            totalchans: 0,
            totalspans: 0,
            lbo: 0,
            lineconfig: 0,
            lboname: [0; 40],
            location: [0; 40],
            manufacturer: [0; 40],
            devicetype: [0; 40],
            irq: 0,
            linecompat: 0,
            spantype: [0; 6],
        }
    }

    pub fn name(&self) -> String {
        let name = self.name;
        c_string(&name)
    }

    pub fn spantype(&self) -> String {
        let spantype = self.spantype;
        c_string(&spantype)
    }
}

/// `struct dahdi_bufferinfo` (24 bytes): DAHDI_GET_BUFINFO / DAHDI_SET_BUFINFO.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferInfo {
    pub txbufpolicy: c_int,
    pub rxbufpolicy: c_int,
    pub numbufs: c_int,
    pub bufsize: c_int,
    pub readbufs: c_int,
    pub writebufs: c_int,
}

/// `struct dahdi_lineconfig` (36 bytes): a span's line settings for DAHDI_SPANCONFIG.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LineConfig {
    /// The span number (0 would select it by `name`).
    pub span: c_int,
    pub name: [u8; 20],
    /// Line build-out, 0-7.
    pub lbo: c_int,
    /// Framing, coding and option bits (CONFIG_*).
    pub lineconfig: c_int,
    /// Priority as a timing source: 0 never, 1 first.
    pub sync: c_int,
}

impl LineConfig {
    pub fn for_span(span: c_int, lineconfig: c_int, lbo: c_int, sync: c_int) -> Self {
        LineConfig { span, name: [0; 20], lbo, lineconfig, sync }
    }
}

/// `struct dahdi_chanconfig` (76 bytes): a channel's signalling for DAHDI_CHANCONFIG.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ChanConfig {
    /// The global channel number (0 would select it by `name`).
    pub chan: c_int,
    pub name: [u8; 40],
    /// SIG_* signalling.
    pub sigtype: c_int,
    /// LAW_* of the channel when nobody has set one.
    pub deflaw: c_int,
    /// The master channel of a slave (SIG_SLAVE only).
    pub master: c_int,
    /// CAS idle bits, or the monitored channel of a DACS channel.
    pub idlebits: c_int,
    pub netdev_name: [u8; 16],
}

impl ChanConfig {
    pub fn for_channel(chan: c_int, sigtype: c_int, deflaw: c_int) -> Self {
        ChanConfig { chan, name: [0; 40], sigtype, deflaw, master: 0, idlebits: 0, netdev_name: [0; 16] }
    }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn params_layout_matches_user_h() {
        assert_eq!(size_of::<Params>(), 136);
        assert_eq!(align_of::<Params>(), 4);
        assert_eq!(offset_of!(Params, curlaw), 40);
        assert_eq!(offset_of!(Params, name), 48);
        assert_eq!(offset_of!(Params, prewinktime), 88);
        assert_eq!(offset_of!(Params, pulseaftertime), 128);
        assert_eq!(offset_of!(Params, chan_alarms), 132);
    }

    #[test]
    fn spaninfo_layout_matches_user_h() {
        assert_eq!(size_of::<SpanInfo>(), 314);
        assert_eq!(align_of::<SpanInfo>(), 1);
        assert_eq!(offset_of!(SpanInfo, name), 4);
        assert_eq!(offset_of!(SpanInfo, desc), 24);
        assert_eq!(offset_of!(SpanInfo, alarms), 64);
        assert_eq!(offset_of!(SpanInfo, fecount), 92);
        assert_eq!(offset_of!(SpanInfo, numchans), 120);
        assert_eq!(offset_of!(SpanInfo, lboname), 140);
        assert_eq!(offset_of!(SpanInfo, devicetype), 260);
        assert_eq!(offset_of!(SpanInfo, irq), 300);
        assert_eq!(offset_of!(SpanInfo, spantype), 308);
    }

    #[test]
    fn lineconfig_and_chanconfig_layouts_match_user_h() {
        assert_eq!(size_of::<LineConfig>(), 36);
        assert_eq!(offset_of!(LineConfig, lbo), 24);
        assert_eq!(offset_of!(LineConfig, lineconfig), 28);
        assert_eq!(offset_of!(LineConfig, sync), 32);
        assert_eq!(size_of::<ChanConfig>(), 76);
        assert_eq!(offset_of!(ChanConfig, sigtype), 44);
        assert_eq!(offset_of!(ChanConfig, deflaw), 48);
        assert_eq!(offset_of!(ChanConfig, idlebits), 56);
        assert_eq!(offset_of!(ChanConfig, netdev_name), 60);
    }

    #[test]
    fn bufferinfo_is_six_ints() {
        assert_eq!(size_of::<BufferInfo>(), 24);
    }

    #[test]
    fn names_stop_at_nul() {
        let mut info = SpanInfo::for_span(1);
        info.name[..7].copy_from_slice(b"DYN/1/0");
        assert_eq!(info.name(), "DYN/1/0");
        info.spantype = *b"T1\0\0\0\0";
        assert_eq!(info.spantype(), "T1");
    }
}
