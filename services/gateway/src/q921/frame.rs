//! LAPD frame encode/decode (Q.921 §2 and §3): address, control field, information.

/// Which end of the link this is; decides the C/R bit (Q.921 table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    User,
    Network,
}

impl Side {
    /// C/R bit value this side puts on commands it sends; responses carry the inverse.
    fn command_cr(self) -> bool {
        matches!(self, Side::Network)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervisory {
    Rr,
    Rnr,
    Rej,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnumbered {
    Sabme,
    Ua,
    Dm,
    Disc,
    Frmr,
    Ui,
    Xid,
}

impl Unnumbered {
    /// Control octet without the P/F bit.
    fn code(self) -> u8 {
        match self {
            Unnumbered::Sabme => 0x6F,
            Unnumbered::Ua => 0x63,
            Unnumbered::Dm => 0x0F,
            Unnumbered::Disc => 0x43,
            Unnumbered::Frmr => 0x87,
            Unnumbered::Ui => 0x03,
            Unnumbered::Xid => 0xAF,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code & !0x10 {
            0x6F => Unnumbered::Sabme,
            0x63 => Unnumbered::Ua,
            0x0F => Unnumbered::Dm,
            0x43 => Unnumbered::Disc,
            0x87 => Unnumbered::Frmr,
            0x03 => Unnumbered::Ui,
            0xAF => Unnumbered::Xid,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    I { ns: u8, nr: u8, info: Vec<u8> },
    S { kind: Supervisory, nr: u8 },
    U { kind: Unnumbered, info: Vec<u8> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub sapi: u8,
    pub tei: u8,
    /// True for a command, false for a response (already resolved from the C/R bit and the sender's side).
    pub command: bool,
    /// The P bit of a command or the F bit of a response.
    pub poll: bool,
    pub control: Control,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} octets is shorter than a LAPD header")]
    Short(usize),
    #[error("address field is not two octets (EA bits {0:#04x} {1:#04x})")]
    BadAddress(u8, u8),
    #[error("unknown unnumbered control field {0:#04x}")]
    UnknownControl(u8),
    #[error("supervisory frame with an information field")]
    SupervisoryWithInfo,
}

/// Sequence numbers are modulo 128 (extended mode, SABME).
pub const MODULUS: u8 = 128;

impl Frame {
    /// Encodes the frame as sent by `from`.
    pub fn encode(&self, from: Side) -> Vec<u8> {
        let cr = if self.command { from.command_cr() } else { !from.command_cr() };
        let mut out = Vec::with_capacity(4 + self.info_len());
        out.push((self.sapi << 2) | (u8::from(cr) << 1));
        out.push((self.tei << 1) | 1);
        let pf = u8::from(self.poll);
        match &self.control {
            Control::I { ns, nr, info } => {
                out.push((ns % MODULUS) << 1);
                out.push(((nr % MODULUS) << 1) | pf);
                out.extend_from_slice(info);
            }
            Control::S { kind, nr } => {
                out.push(match kind {
                    Supervisory::Rr => 0x01,
                    Supervisory::Rnr => 0x05,
                    Supervisory::Rej => 0x09,
                });
                out.push(((nr % MODULUS) << 1) | pf);
            }
            Control::U { kind, info } => {
                out.push(kind.code() | (pf << 4));
                out.extend_from_slice(info);
            }
        }
        out
    }

    fn info_len(&self) -> usize {
        match &self.control {
            Control::I { info, .. } | Control::U { info, .. } => info.len(),
            Control::S { .. } => 0,
        }
    }

    /// Decodes a frame sent by the far end, whose side is the opposite of `local`.
    pub fn decode(bytes: &[u8], local: Side) -> Result<Frame, FrameError> {
        let (&a0, &a1, &c0) = match bytes {
            [a0, a1, c0, ..] => (a0, a1, c0),
            _ => return Err(FrameError::Short(bytes.len())),
        };
        if a0 & 1 != 0 || a1 & 1 != 1 {
            return Err(FrameError::BadAddress(a0, a1));
        }
        let sapi = a0 >> 2;
        let cr = a0 & 0x02 != 0;
        let tei = a1 >> 1;
        let remote = match local {
            Side::User => Side::Network,
            Side::Network => Side::User,
        };
        let command = cr == remote.command_cr();
        let rest = bytes.get(3..).unwrap_or_default();
        let (control, poll) = if c0 & 1 == 0 {
            let (&c1, info) = rest.split_first().ok_or(FrameError::Short(bytes.len()))?;
            (Control::I { ns: c0 >> 1, nr: c1 >> 1, info: info.to_vec() }, c1 & 1 != 0)
        } else if c0 & 3 == 1 {
            let (&c1, info) = rest.split_first().ok_or(FrameError::Short(bytes.len()))?;
            if !info.is_empty() {
                return Err(FrameError::SupervisoryWithInfo);
            }
            let kind = match c0 {
                0x01 => Supervisory::Rr,
                0x05 => Supervisory::Rnr,
                0x09 => Supervisory::Rej,
                other => return Err(FrameError::UnknownControl(other)),
            };
            (Control::S { kind, nr: c1 >> 1 }, c1 & 1 != 0)
        } else {
            let kind = Unnumbered::from_code(c0).ok_or(FrameError::UnknownControl(c0))?;
            (Control::U { kind, info: rest.to_vec() }, c0 & 0x10 != 0)
        };
        Ok(Frame { sapi, tei, command, poll, control })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sabme_from_the_user_side_is_a_command_with_cr_zero() {
        let f = Frame {
            sapi: 0,
            tei: 0,
            command: true,
            poll: true,
            control: Control::U { kind: Unnumbered::Sabme, info: vec![] },
        };
        let bytes = f.encode(Side::User);
        assert_eq!(bytes, [0x00, 0x01, 0x7F]);
        assert_eq!(Frame::decode(&bytes, Side::Network).unwrap(), f);
        // Network-side commands set C/R.
        assert_eq!(f.encode(Side::Network), [0x02, 0x01, 0x7F]);
    }

    #[test]
    fn ua_response_from_the_network_has_cr_zero() {
        let f = Frame {
            sapi: 0,
            tei: 0,
            command: false,
            poll: true,
            control: Control::U { kind: Unnumbered::Ua, info: vec![] },
        };
        assert_eq!(f.encode(Side::Network), [0x00, 0x01, 0x73]);
        assert_eq!(Frame::decode(&[0x00, 0x01, 0x73], Side::User).unwrap(), f);
    }

    #[test]
    fn i_and_s_frames_round_trip() {
        for f in [
            Frame {
                sapi: 0,
                tei: 0,
                command: true,
                poll: false,
                control: Control::I { ns: 127, nr: 5, info: vec![8, 2, 0, 1, 5] },
            },
            Frame { sapi: 0, tei: 0, command: false, poll: true, control: Control::S { kind: Supervisory::Rej, nr: 9 } },
            Frame { sapi: 0, tei: 0, command: true, poll: true, control: Control::S { kind: Supervisory::Rnr, nr: 0 } },
        ] {
            for side in [Side::User, Side::Network] {
                let remote = if side == Side::User { Side::Network } else { Side::User };
                assert_eq!(Frame::decode(&f.encode(side), remote).unwrap(), f);
            }
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(Frame::decode(&[0x00, 0x01], Side::User), Err(FrameError::Short(2)));
        assert!(matches!(Frame::decode(&[0x01, 0x01, 0x7F], Side::User), Err(FrameError::BadAddress(..))));
        assert!(matches!(Frame::decode(&[0x00, 0x01, 0x00], Side::User), Err(FrameError::Short(3))));
        assert!(matches!(Frame::decode(&[0x00, 0x01, 0x0D, 0x00], Side::User), Err(FrameError::UnknownControl(0x0D))));
        assert!(matches!(Frame::decode(&[0x00, 0x01, 0x01, 0x00, 0x00], Side::User), Err(FrameError::SupervisoryWithInfo)));
    }
}
