//! Events fetched with DAHDI_GETEVENT.

use std::os::raw::c_int;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    None,
    Alarm,
    NoAlarm,
    Abort,
    Overrun,
    BadFcs,
    Removed,
    ReadOverrun,
    WriteUnderrun,
    Other(c_int),
}

impl From<c_int> for Event {
    fn from(code: c_int) -> Self {
        match code {
            0 => Event::None,
            4 => Event::Alarm,
            5 => Event::NoAlarm,
            6 => Event::Abort,
            7 => Event::Overrun,
            8 => Event::BadFcs,
            20 => Event::Removed,
            29 => Event::ReadOverrun,
            30 => Event::WriteUnderrun,
            other => Event::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_user_h() {
        assert_eq!(Event::from(4), Event::Alarm);
        assert_eq!(Event::from(5), Event::NoAlarm);
        assert_eq!(Event::from(8), Event::BadFcs);
        assert_eq!(Event::from(13), Event::Other(13));
    }
}
