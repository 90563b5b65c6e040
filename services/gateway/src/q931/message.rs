//! Q.931 message framing (§4.1-4.4): protocol discriminator, call reference, message type, IEs.

use super::ie::{self, Cause, ChannelId, Ie, PartyNumber};

const PROTOCOL_DISCRIMINATOR: u8 = 0x08;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Alerting,
    CallProceeding,
    Progress,
    Setup,
    Connect,
    SetupAck,
    ConnectAck,
    Disconnect,
    Release,
    ReleaseComplete,
    Restart,
    RestartAck,
    Status,
    StatusEnquiry,
    Information,
    Unknown(u8),
}

impl MessageType {
    pub fn code(self) -> u8 {
        match self {
            MessageType::Alerting => 0x01,
            MessageType::CallProceeding => 0x02,
            MessageType::Progress => 0x03,
            MessageType::Setup => 0x05,
            MessageType::Connect => 0x07,
            MessageType::SetupAck => 0x0D,
            MessageType::ConnectAck => 0x0F,
            MessageType::Disconnect => 0x45,
            MessageType::Restart => 0x46,
            MessageType::Release => 0x4D,
            MessageType::RestartAck => 0x4E,
            MessageType::ReleaseComplete => 0x5A,
            MessageType::StatusEnquiry => 0x75,
            MessageType::Information => 0x7B,
            MessageType::Status => 0x7D,
            MessageType::Unknown(c) => c,
        }
    }

    pub fn from_code(code: u8) -> Self {
        match code {
            0x01 => MessageType::Alerting,
            0x02 => MessageType::CallProceeding,
            0x03 => MessageType::Progress,
            0x05 => MessageType::Setup,
            0x07 => MessageType::Connect,
            0x0D => MessageType::SetupAck,
            0x0F => MessageType::ConnectAck,
            0x45 => MessageType::Disconnect,
            0x46 => MessageType::Restart,
            0x4D => MessageType::Release,
            0x4E => MessageType::RestartAck,
            0x5A => MessageType::ReleaseComplete,
            0x75 => MessageType::StatusEnquiry,
            0x7B => MessageType::Information,
            0x7D => MessageType::Status,
            other => MessageType::Unknown(other),
        }
    }
}

/// A call reference as seen on the wire. `to_originator` is the flag: set on messages sent by
/// the side that did not allocate the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallRef {
    pub value: u16,
    pub to_originator: bool,
}

impl CallRef {
    /// The global call reference (RESTART and friends).
    pub const GLOBAL: CallRef = CallRef { value: 0, to_originator: false };

    pub fn is_global(self) -> bool {
        self.value == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub call_ref: CallRef,
    pub kind: MessageType,
    pub ies: Vec<Ie>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} octets is too short")]
    Short(usize),
    #[error("protocol discriminator {0:#04x} is not Q.931")]
    ProtocolDiscriminator(u8),
    #[error("call reference length {0} (PRI uses 2)")]
    CallRefLength(u8),
}

impl Message {
    pub fn new(call_ref: CallRef, kind: MessageType) -> Self {
        Message { call_ref, kind, ies: Vec::new() }
    }

    pub fn with(mut self, ie: Ie) -> Self {
        self.ies.push(ie);
        self
    }

    /// Encodes with the two-octet call reference of a primary rate interface.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.push(PROTOCOL_DISCRIMINATOR);
        out.push(2);
        let [hi, lo] = (self.call_ref.value & 0x7FFF).to_be_bytes();
        out.push(hi | if self.call_ref.to_originator { 0x80 } else { 0 });
        out.push(lo);
        out.push(self.kind.code());
        let mut ies: Vec<&Ie> = self.ies.iter().collect();
        ies.sort_by_key(|ie| ie.order());
        for ie in ies {
            ie.encode(&mut out);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let short = || DecodeError::Short(bytes.len());
        let (&pd, rest) = bytes.split_first().ok_or_else(short)?;
        if pd != PROTOCOL_DISCRIMINATOR {
            return Err(DecodeError::ProtocolDiscriminator(pd));
        }
        let (&crlen, rest) = rest.split_first().ok_or_else(short)?;
        let crlen = crlen & 0x0F;
        let (cr, rest) = rest.split_at_checked(usize::from(crlen)).ok_or_else(short)?;
        let call_ref = match *cr {
            [] => CallRef::GLOBAL,
            [a] => CallRef { value: u16::from(a & 0x7F), to_originator: a & 0x80 != 0 },
            [a, b] => CallRef { value: u16::from_be_bytes([a & 0x7F, b]), to_originator: a & 0x80 != 0 },
            _ => return Err(DecodeError::CallRefLength(crlen)),
        };
        let (&kind, rest) = rest.split_first().ok_or_else(short)?;
        Ok(Message { call_ref, kind: MessageType::from_code(kind), ies: ie::decode_all(rest) })
    }

    pub fn cause(&self) -> Option<&Cause> {
        self.ies.iter().find_map(|ie| match ie {
            Ie::Cause(c) => Some(c),
            _ => None,
        })
    }

    pub fn channel_id(&self) -> Option<ChannelId> {
        self.ies.iter().find_map(|ie| match ie {
            Ie::ChannelId(c) => Some(*c),
            _ => None,
        })
    }

    pub fn called(&self) -> Option<&PartyNumber> {
        self.ies.iter().find_map(|ie| match ie {
            Ie::CalledParty(p) => Some(p),
            _ => None,
        })
    }

    pub fn calling(&self) -> Option<&PartyNumber> {
        self.ies.iter().find_map(|ie| match ie {
            Ie::CallingParty(p) => Some(p),
            _ => None,
        })
    }

    pub fn call_state(&self) -> Option<u8> {
        self.ies.iter().find_map(|ie| match ie {
            Ie::CallState(s) => Some(*s),
            _ => None,
        })
    }

    pub fn sending_complete(&self) -> bool {
        self.ies.iter().any(|ie| matches!(ie, Ie::SendingComplete))
    }

    pub fn has_bearer_capability(&self) -> bool {
        self.ies.iter().any(|ie| matches!(ie, Ie::BearerCapability(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q931::ie::{BearerCapability, ChannelSelection, Layer1, NumberingPlan, TypeOfNumber};

    #[test]
    fn setup_encodes_in_ie_order_and_round_trips() {
        let msg = Message::new(CallRef { value: 0x1234, to_originator: false }, MessageType::Setup)
            .with(Ie::CalledParty(PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "2000")))
            .with(Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(3) }))
            .with(Ie::BearerCapability(BearerCapability::speech(Layer1::Mulaw)));
        let bytes = msg.encode();
        assert_eq!(&bytes[..5], [0x08, 0x02, 0x12, 0x34, 0x05]);
        assert_eq!(bytes[5], 0x04, "bearer capability first");
        let back = Message::decode(&bytes).unwrap();
        assert_eq!(back.call_ref, msg.call_ref);
        assert_eq!(back.kind, MessageType::Setup);
        assert_eq!(back.called().unwrap().digits, "2000");
        assert_eq!(back.channel_id().unwrap().selection, ChannelSelection::Channel(3));
    }

    #[test]
    fn call_reference_flag_and_global_reference() {
        let msg = Message::new(CallRef { value: 5, to_originator: true }, MessageType::ReleaseComplete);
        assert_eq!(msg.encode(), [0x08, 0x02, 0x80, 0x05, 0x5A]);
        let restart = Message::decode(&[0x08, 0x00, 0x46, 0x79, 0x01, 0x87]).unwrap();
        assert!(restart.call_ref.is_global());
        assert_eq!(restart.kind, MessageType::Restart);
        let one_octet = Message::decode(&[0x08, 0x01, 0x85, 0x01]).unwrap();
        assert_eq!(one_octet.call_ref, CallRef { value: 5, to_originator: true });
    }

    #[test]
    fn every_message_type_round_trips() {
        for code in [0x01, 0x02, 0x03, 0x05, 0x07, 0x0D, 0x0F, 0x45, 0x46, 0x4D, 0x4E, 0x5A, 0x75, 0x7D, 0x62] {
            let kind = MessageType::from_code(code);
            assert_eq!(kind.code(), code);
            let msg = Message::new(CallRef { value: 1, to_originator: false }, kind);
            assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
        }
    }

    #[test]
    fn bad_headers_are_errors() {
        assert_eq!(Message::decode(&[]), Err(DecodeError::Short(0)));
        assert_eq!(Message::decode(&[0x09, 0x02]), Err(DecodeError::ProtocolDiscriminator(0x09)));
        assert_eq!(Message::decode(&[0x08, 0x03, 1, 2, 3, 5]), Err(DecodeError::CallRefLength(3)));
        assert_eq!(Message::decode(&[0x08, 0x02, 0x00]), Err(DecodeError::Short(3)));
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(931);
        for _ in 0..50_000 {
            let len = rng.random_range(0..40);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 2 && rng.random_bool(0.8) {
                bytes[0] = 0x08;
                bytes[1] = 0x02;
            }
            if let Ok(msg) = Message::decode(&bytes) {
                // Whatever decoded re-encodes and decodes to the same message.
                let again = Message::decode(&msg.encode()).unwrap();
                assert_eq!(again.kind, msg.kind);
            }
        }
    }
}
