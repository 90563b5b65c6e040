//! Q.931 information elements (§4.5) used for basic call control on a PRI.

/// IE identifiers (codeset 0).
pub mod id {
    pub const BEARER_CAPABILITY: u8 = 0x04;
    pub const CAUSE: u8 = 0x08;
    pub const CALL_STATE: u8 = 0x14;
    pub const CHANNEL_ID: u8 = 0x18;
    pub const PROGRESS_INDICATOR: u8 = 0x1E;
    pub const CALLING_PARTY_NUMBER: u8 = 0x6C;
    pub const CALLED_PARTY_NUMBER: u8 = 0x70;
    pub const RESTART_INDICATOR: u8 = 0x79;
    pub const SENDING_COMPLETE: u8 = 0xA1;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferCapability {
    Speech,
    UnrestrictedDigital,
    RestrictedDigital,
    Audio3k1,
    Other(u8),
}

impl TransferCapability {
    fn code(self) -> u8 {
        match self {
            TransferCapability::Speech => 0x00,
            TransferCapability::UnrestrictedDigital => 0x08,
            TransferCapability::RestrictedDigital => 0x09,
            TransferCapability::Audio3k1 => 0x10,
            TransferCapability::Other(c) => c & 0x1F,
        }
    }

    fn from_code(c: u8) -> Self {
        match c & 0x1F {
            0x00 => TransferCapability::Speech,
            0x08 => TransferCapability::UnrestrictedDigital,
            0x09 => TransferCapability::RestrictedDigital,
            0x10 => TransferCapability::Audio3k1,
            other => TransferCapability::Other(other),
        }
    }
}

/// User information layer 1 protocol (octet 5 of the bearer capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer1 {
    Mulaw,
    Alaw,
    Other(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BearerCapability {
    pub capability: TransferCapability,
    pub layer1: Option<Layer1>,
}

impl BearerCapability {
    /// Telephony speech at 64 kbit/s circuit mode, G.711 in the given law.
    pub fn speech(layer1: Layer1) -> Self {
        BearerCapability { capability: TransferCapability::Speech, layer1: Some(layer1) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelSelection {
    NoChannel,
    Any,
    /// A B-channel by its number in the IE (E1 timeslot 1-15/17-31, T1 channel 1-23).
    Channel(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelId {
    pub exclusive: bool,
    pub selection: ChannelSelection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeOfNumber {
    Unknown,
    International,
    National,
    NetworkSpecific,
    Subscriber,
    Abbreviated,
    Other(u8),
}

impl TypeOfNumber {
    fn code(self) -> u8 {
        match self {
            TypeOfNumber::Unknown => 0,
            TypeOfNumber::International => 1,
            TypeOfNumber::National => 2,
            TypeOfNumber::NetworkSpecific => 3,
            TypeOfNumber::Subscriber => 4,
            TypeOfNumber::Abbreviated => 6,
            TypeOfNumber::Other(c) => c & 7,
        }
    }

    fn from_code(c: u8) -> Self {
        match c & 7 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            6 => TypeOfNumber::Abbreviated,
            other => TypeOfNumber::Other(other),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberingPlan {
    Unknown,
    Isdn,
    Data,
    Telex,
    National,
    Private,
    Other(u8),
}

impl NumberingPlan {
    fn code(self) -> u8 {
        match self {
            NumberingPlan::Unknown => 0,
            NumberingPlan::Isdn => 1,
            NumberingPlan::Data => 3,
            NumberingPlan::Telex => 4,
            NumberingPlan::National => 8,
            NumberingPlan::Private => 9,
            NumberingPlan::Other(c) => c & 0x0F,
        }
    }

    fn from_code(c: u8) -> Self {
        match c & 0x0F {
            0 => NumberingPlan::Unknown,
            1 => NumberingPlan::Isdn,
            3 => NumberingPlan::Data,
            4 => NumberingPlan::Telex,
            8 => NumberingPlan::National,
            9 => NumberingPlan::Private,
            other => NumberingPlan::Other(other),
        }
    }
}

/// The presentation indicator of a withheld number.
pub const PRESENTATION_RESTRICTED: u8 = 1;

/// Presentation and screening indicators (octet 3a of the calling party number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// 0 allowed, 1 restricted, 2 not available.
    pub presentation: u8,
    /// 0 user-provided not screened, 1 passed, 2 failed, 3 network-provided.
    pub screening: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyNumber {
    pub ton: TypeOfNumber,
    pub plan: NumberingPlan,
    pub presentation: Option<Presentation>,
    pub digits: String,
}

impl PartyNumber {
    pub fn new(ton: TypeOfNumber, plan: NumberingPlan, digits: &str) -> Self {
        PartyNumber { ton, plan, presentation: None, digits: digits.to_owned() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// 0 user, 1 private network serving the local user, 2 public network local user, ...
    pub location: u8,
    /// Q.850 cause value.
    pub value: u8,
    pub diagnostic: Vec<u8>,
}

impl Cause {
    pub fn new(value: u8) -> Self {
        Cause { location: 0, value, diagnostic: Vec::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub location: u8,
    /// 1 not end-to-end ISDN, 2 destination non-ISDN, 3 origination non-ISDN, 8 in-band info.
    pub description: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartClass {
    Indicated,
    SingleInterface,
    AllInterfaces,
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ie {
    BearerCapability(BearerCapability),
    ChannelId(ChannelId),
    CallingParty(PartyNumber),
    CalledParty(PartyNumber),
    Cause(Cause),
    Progress(Progress),
    /// Call state value (§4.5.7), numbered as in the sender's side of the SDL.
    CallState(u8),
    RestartIndicator(RestartClass),
    SendingComplete,
    /// Anything else, or a known IE whose contents did not parse; kept to be passed on or re-sent.
    Unknown { codeset: u8, id: u8, body: Vec<u8> },
}

/// Octets of an extension group: up to and including the first with bit 8 set.
fn group(body: &[u8]) -> (&[u8], &[u8]) {
    let end = body.iter().position(|b| b & 0x80 != 0).map_or(body.len(), |i| i + 1);
    body.split_at(end)
}

fn decode_bearer(body: &[u8]) -> Option<BearerCapability> {
    let (oct3, rest) = group(body);
    let capability = TransferCapability::from_code(*oct3.first()?);
    let (oct4, rest) = group(rest);
    oct4.first()?;
    let layer1 = match rest.first() {
        Some(b) if (b >> 5) & 3 == 1 => Some(match b & 0x1F {
            2 => Layer1::Mulaw,
            3 => Layer1::Alaw,
            other => Layer1::Other(other),
        }),
        _ => None,
    };
    Some(BearerCapability { capability, layer1 })
}

fn encode_bearer(bc: &BearerCapability, out: &mut Vec<u8>) {
    out.push(0x80 | bc.capability.code());
    out.push(0x90); // circuit mode, 64 kbit/s
    if let Some(l1) = bc.layer1 {
        let code = match l1 {
            Layer1::Mulaw => 2,
            Layer1::Alaw => 3,
            Layer1::Other(c) => c & 0x1F,
        };
        out.push(0xA0 | code);
    }
}

fn decode_channel_id(body: &[u8]) -> Option<ChannelId> {
    let (&oct3, mut rest) = body.split_first()?;
    if oct3 & 0x40 != 0 {
        // Explicit interface identifier: skip it, one interface per D-channel here.
        rest = group(rest).1;
    }
    let exclusive = oct3 & 0x08 != 0;
    let sel = oct3 & 0x03;
    let pri = oct3 & 0x20 != 0;
    let selection = match (pri, sel) {
        (_, 0) => ChannelSelection::NoChannel,
        (_, 3) => ChannelSelection::Any,
        (false, b) => ChannelSelection::Channel(b),
        (true, _) => {
            let (&oct32, rest) = rest.split_first()?;
            // Channel numbers (not a slot map) of B-channel units.
            if oct32 & 0x10 != 0 || oct32 & 0x0F != 3 {
                return None;
            }
            ChannelSelection::Channel(rest.first()? & 0x7F)
        }
    };
    Some(ChannelId { exclusive, selection })
}

fn encode_channel_id(ci: &ChannelId, out: &mut Vec<u8>) {
    let mut oct3 = 0x80 | 0x20 | (u8::from(ci.exclusive) << 3);
    match ci.selection {
        ChannelSelection::NoChannel => out.push(oct3),
        ChannelSelection::Any => out.push(oct3 | 3),
        ChannelSelection::Channel(n) => {
            oct3 |= 1;
            out.extend_from_slice(&[oct3, 0x83, 0x80 | (n & 0x7F)]);
        }
    }
}

fn decode_party(body: &[u8], calling: bool) -> Option<PartyNumber> {
    let (&oct3, mut rest) = body.split_first()?;
    let mut presentation = None;
    if oct3 & 0x80 == 0 {
        let (&oct3a, r) = rest.split_first()?;
        rest = r;
        if calling {
            presentation = Some(Presentation { presentation: (oct3a >> 5) & 3, screening: oct3a & 3 });
        }
    }
    Some(PartyNumber {
        ton: TypeOfNumber::from_code(oct3 >> 4),
        plan: NumberingPlan::from_code(oct3),
        presentation,
        digits: rest.iter().map(|&b| char::from(b & 0x7F)).collect(),
    })
}

fn encode_party(p: &PartyNumber, out: &mut Vec<u8>) {
    let oct3 = (p.ton.code() << 4) | p.plan.code();
    match p.presentation {
        Some(pr) => {
            out.push(oct3);
            out.push(0x80 | ((pr.presentation & 3) << 5) | (pr.screening & 3));
        }
        None => out.push(0x80 | oct3),
    }
    out.extend(p.digits.bytes().map(|b| b & 0x7F));
}

fn decode_cause(body: &[u8]) -> Option<Cause> {
    let (oct3, rest) = group(body);
    let location = oct3.first()? & 0x0F;
    let (&oct4, diagnostic) = rest.split_first()?;
    Some(Cause { location, value: oct4 & 0x7F, diagnostic: diagnostic.to_vec() })
}

fn decode_progress(body: &[u8]) -> Option<Progress> {
    match body {
        [oct3, oct4, ..] => Some(Progress { location: oct3 & 0x0F, description: oct4 & 0x7F }),
        _ => None,
    }
}

fn decode_known(id: u8, body: &[u8]) -> Option<Ie> {
    Some(match id {
        id::BEARER_CAPABILITY => Ie::BearerCapability(decode_bearer(body)?),
        id::CHANNEL_ID => Ie::ChannelId(decode_channel_id(body)?),
        id::CALLING_PARTY_NUMBER => Ie::CallingParty(decode_party(body, true)?),
        id::CALLED_PARTY_NUMBER => Ie::CalledParty(decode_party(body, false)?),
        id::CAUSE => Ie::Cause(decode_cause(body)?),
        id::PROGRESS_INDICATOR => Ie::Progress(decode_progress(body)?),
        id::CALL_STATE => Ie::CallState(body.first()? & 0x3F),
        id::RESTART_INDICATOR => Ie::RestartIndicator(match body.first()? & 0x07 {
            0 => RestartClass::Indicated,
            6 => RestartClass::SingleInterface,
            7 => RestartClass::AllInterfaces,
            other => RestartClass::Other(other),
        }),
        _ => return None,
    })
}

/// Decodes the IEs after the message type. Malformed or unknown IEs come back as `Ie::Unknown`;
/// a length running past the end stops decoding (the rest is dropped, as §5.8.6 allows).
pub fn decode_all(mut bytes: &[u8]) -> Vec<Ie> {
    let mut ies = Vec::new();
    let mut locked = 0u8;
    let mut once: Option<u8> = None;
    while let Some((&first, rest)) = bytes.split_first() {
        let codeset = once.take().unwrap_or(locked);
        if first & 0x80 != 0 {
            bytes = rest;
            if first & 0xF0 == 0x90 {
                // Shift: bit 4 set means non-locking (next IE only).
                if first & 0x08 != 0 {
                    once = Some(first & 0x07);
                } else {
                    locked = first & 0x07;
                }
            } else if first == id::SENDING_COMPLETE && codeset == 0 {
                ies.push(Ie::SendingComplete);
            } else {
                ies.push(Ie::Unknown { codeset, id: first, body: Vec::new() });
            }
            continue;
        }
        let Some((&len, rest)) = rest.split_first() else { break };
        let Some((body, rest)) = rest.split_at_checked(usize::from(len)) else { break };
        bytes = rest;
        let known = if codeset == 0 { decode_known(first, body) } else { None };
        ies.push(known.unwrap_or_else(|| Ie::Unknown { codeset, id: first, body: body.to_vec() }));
    }
    ies
}

impl Ie {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (id, body) = match self {
            Ie::SendingComplete => {
                out.push(id::SENDING_COMPLETE);
                return;
            }
            Ie::Unknown { codeset, id, body } => {
                if *codeset != 0 {
                    out.push(0x98 | (codeset & 0x07));
                }
                if id & 0x80 != 0 {
                    out.push(*id);
                    return;
                }
                (*id, body.clone())
            }
            Ie::BearerCapability(bc) => {
                let mut b = Vec::new();
                encode_bearer(bc, &mut b);
                (id::BEARER_CAPABILITY, b)
            }
            Ie::ChannelId(ci) => {
                let mut b = Vec::new();
                encode_channel_id(ci, &mut b);
                (id::CHANNEL_ID, b)
            }
            Ie::CallingParty(p) => {
                let mut b = Vec::new();
                encode_party(p, &mut b);
                (id::CALLING_PARTY_NUMBER, b)
            }
            Ie::CalledParty(p) => {
                let mut b = Vec::new();
                encode_party(&PartyNumber { presentation: None, ..p.clone() }, &mut b);
                (id::CALLED_PARTY_NUMBER, b)
            }
            Ie::Cause(c) => {
                let mut b = vec![0x80 | (c.location & 0x0F), 0x80 | (c.value & 0x7F)];
                b.extend_from_slice(&c.diagnostic);
                (id::CAUSE, b)
            }
            Ie::Progress(p) => {
                (id::PROGRESS_INDICATOR, vec![0x80 | (p.location & 0x0F), 0x80 | (p.description & 0x7F)])
            }
            Ie::CallState(s) => (id::CALL_STATE, vec![s & 0x3F]),
            Ie::RestartIndicator(class) => {
                let code = match class {
                    RestartClass::Indicated => 0,
                    RestartClass::SingleInterface => 6,
                    RestartClass::AllInterfaces => 7,
                    RestartClass::Other(c) => c & 0x07,
                };
                (id::RESTART_INDICATOR, vec![0x80 | code])
            }
        };
        // Lengths are one octet; no IE we build comes near 255.
        let body = &body[..body.len().min(255)];
        out.push(id);
        out.push(body.len() as u8);
        out.extend_from_slice(body);
    }

    /// Sort key for encoding: IEs go out in ascending identifier order (§4.5.1).
    pub fn order(&self) -> u8 {
        match self {
            Ie::BearerCapability(_) => id::BEARER_CAPABILITY,
            Ie::Cause(_) => id::CAUSE,
            Ie::CallState(_) => id::CALL_STATE,
            Ie::ChannelId(_) => id::CHANNEL_ID,
            Ie::Progress(_) => id::PROGRESS_INDICATOR,
            Ie::CallingParty(_) => id::CALLING_PARTY_NUMBER,
            Ie::CalledParty(_) => id::CALLED_PARTY_NUMBER,
            Ie::RestartIndicator(_) => id::RESTART_INDICATOR,
            // Sending complete is a type-2 single octet IE; it may appear anywhere, put it first.
            Ie::SendingComplete => 0,
            Ie::Unknown { codeset: 0, id, .. } => *id & 0x7F,
            Ie::Unknown { .. } => 0x80,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(ie: Ie) -> Vec<u8> {
        let mut out = Vec::new();
        ie.encode(&mut out);
        assert_eq!(decode_all(&out), [ie]);
        out
    }

    #[test]
    fn speech_bearer_in_alaw_and_mulaw() {
        assert_eq!(round_trip(Ie::BearerCapability(BearerCapability::speech(Layer1::Alaw))), [0x04, 3, 0x80, 0x90, 0xA3]);
        assert_eq!(round_trip(Ie::BearerCapability(BearerCapability::speech(Layer1::Mulaw))), [0x04, 3, 0x80, 0x90, 0xA2]);
        let audio = BearerCapability { capability: TransferCapability::Audio3k1, layer1: None };
        assert_eq!(round_trip(Ie::BearerCapability(audio)), [0x04, 2, 0x90, 0x90]);
    }

    #[test]
    fn channel_identification_exclusive_and_preferred() {
        let excl = ChannelId { exclusive: true, selection: ChannelSelection::Channel(17) };
        assert_eq!(round_trip(Ie::ChannelId(excl)), [0x18, 3, 0xA9, 0x83, 0x91]);
        let pref = ChannelId { exclusive: false, selection: ChannelSelection::Channel(1) };
        assert_eq!(round_trip(Ie::ChannelId(pref)), [0x18, 3, 0xA1, 0x83, 0x81]);
        round_trip(Ie::ChannelId(ChannelId { exclusive: false, selection: ChannelSelection::Any }));
        round_trip(Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::NoChannel }));
    }

    #[test]
    fn channel_identification_with_interface_identifier_is_understood() {
        let ies = decode_all(&[0x18, 4, 0xE9, 0x80, 0x83, 0x85]);
        assert_eq!(ies, [Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(5) })]);
    }

    #[test]
    fn party_numbers_keep_type_plan_and_presentation() {
        let called = PartyNumber::new(TypeOfNumber::National, NumberingPlan::Isdn, "0612345678");
        let bytes = round_trip(Ie::CalledParty(called));
        assert_eq!(&bytes[..3], [0x70, 11, 0xA1]);
        let mut calling = PartyNumber::new(TypeOfNumber::International, NumberingPlan::Isdn, "33140000000");
        calling.presentation = Some(Presentation { presentation: 1, screening: 3 });
        let bytes = round_trip(Ie::CallingParty(calling));
        assert_eq!(&bytes[..4], [0x6C, 13, 0x11, 0xA3]);
    }

    #[test]
    fn cause_with_and_without_diagnostic() {
        let c = Cause { location: 2, value: 34, diagnostic: vec![] };
        assert_eq!(round_trip(Ie::Cause(c)), [0x08, 2, 0x82, 0xA2]);
        round_trip(Ie::Cause(Cause { location: 0, value: 102, diagnostic: vec![0x33, 0x30, 0x33] }));
        // Octet 3a (recommendation) present.
        let ies = decode_all(&[0x08, 3, 0x02, 0x80, 0x90]);
        assert_eq!(ies, [Ie::Cause(Cause { location: 2, value: 16, diagnostic: vec![] })]);
    }

    #[test]
    fn progress_call_state_restart_sending_complete() {
        round_trip(Ie::Progress(Progress { location: 2, description: 8 }));
        round_trip(Ie::CallState(10));
        round_trip(Ie::RestartIndicator(RestartClass::AllInterfaces));
        assert_eq!(round_trip(Ie::SendingComplete), [0xA1]);
    }

    #[test]
    fn other_codesets_and_unknown_ies_are_kept_raw() {
        let ies = decode_all(&[0x96, 0x28, 1, b'x', 0x70, 2, 0x81, b'1']);
        assert_eq!(ies.len(), 2);
        assert_eq!(ies[0], Ie::Unknown { codeset: 6, id: 0x28, body: vec![b'x'] });
        assert!(matches!(&ies[1], Ie::Unknown { codeset: 6, id: 0x70, .. }), "locking shift persists");
        let ies = decode_all(&[0x9E, 0x28, 1, b'x', 0x70, 2, 0x81, b'1']);
        assert!(matches!(&ies[1], Ie::CalledParty(p) if p.digits == "1"), "non-locking shift applies once");
    }

    #[test]
    fn truncated_ie_stops_decoding() {
        assert_eq!(decode_all(&[0x70, 9, 0x81, b'1']), []);
        assert_eq!(decode_all(&[0x18]), []);
        assert_eq!(decode_all(&[0x18, 1, 0xA1]), [Ie::Unknown { codeset: 0, id: 0x18, body: vec![0xA1] }]);
    }
}
