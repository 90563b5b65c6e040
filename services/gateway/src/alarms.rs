//! Span alarm bits (DAHDI_ALARM_* values, used for every span kind).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Alarms(pub u32);

impl Alarms {
    pub const NONE: Alarms = Alarms(0);
    pub const RECOVER: Alarms = Alarms(1);
    pub const LOOPBACK: Alarms = Alarms(2);
    pub const YELLOW: Alarms = Alarms(4);
    pub const RED: Alarms = Alarms(8);
    pub const BLUE: Alarms = Alarms(16);
    pub const NOTOPEN: Alarms = Alarms(32);
    pub const LOS: Alarms = Alarms(1 << 8);
    pub const LFA: Alarms = Alarms(1 << 9);
    pub const LMFA: Alarms = Alarms(1 << 10);

    /// Whether calls can run: red, blue and "not open" mean no usable line. Yellow (remote alarm)
    /// and recovery still carry the D-channel.
    pub fn in_service(self) -> bool {
        self.0 & (Self::RED.0 | Self::BLUE.0 | Self::NOTOPEN.0 | Self::LOS.0) == 0
    }

    pub fn contains(self, other: Alarms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl fmt::Display for Alarms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let names = [
            (Self::RECOVER, "recover"),
            (Self::LOOPBACK, "loopback"),
            (Self::YELLOW, "yellow"),
            (Self::RED, "red"),
            (Self::BLUE, "blue"),
            (Self::NOTOPEN, "not-open"),
            (Self::LOS, "los"),
            (Self::LFA, "lfa"),
            (Self::LMFA, "lmfa"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.contains(bit) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            write!(f, "{:#x}", self.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_takes_the_span_out_of_service_yellow_does_not() {
        assert!(Alarms::NONE.in_service());
        assert!(Alarms::YELLOW.in_service());
        assert!(!Alarms::RED.in_service());
        assert!(!Alarms(Alarms::RED.0 | Alarms::YELLOW.0).in_service());
        assert_eq!(Alarms(Alarms::RED.0 | Alarms::LOS.0).to_string(), "red+los");
    }
}
