//! Whom sba-gateway serves, as a decision over a message and its source, without sockets
//! (sba-gateway's rows of the README's trust table): only sba-mediation may place PSTN calls or
//! touch the calls in progress, by its IP (the gateway and mediation share the appliance, or a
//! LAN of their own); an OPTIONS (a health probe) is answered to anyone, since it starts
//! nothing; anyone else's request gets 403 (an ACK, which takes no answer, is dropped) and its
//! responses are dropped, each counted. An in-dialog request from mediation must still name its
//! call by the full dialog id (Call-ID and both tags, `Calls::leg_of`), not by Call-ID alone.
use holdfast_sip::message::{Message, Method};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Mediation's, or anyone's OPTIONS: served.
    Serve,
    /// A stranger's request: 403.
    Refuse,
    /// A stranger's ACK or response: dropped.
    Drop,
}

/// What to do with `msg` from `source`; `mediation`: sba-mediation's address.
pub fn admit(msg: &Message, source: SocketAddr, mediation: SocketAddr) -> Admission {
    match msg {
        _ if source.ip() == mediation.ip() => Admission::Serve,
        Message::Request(r) if r.method == Method::OPTIONS => Admission::Serve,
        Message::Request(r) if r.method != Method::ACK => Admission::Refuse,
        _ => Admission::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::message::{Request, Uri};

    const MEDIATION: &str = "127.0.0.1:5070";

    fn request(method: Method) -> Message {
        Message::Request(Request::new(method, Uri::parse("sip:2125550100@127.0.0.1:5080").unwrap()))
    }

    fn from(msg: &Message, source: &str) -> Admission {
        admit(msg, source.parse().unwrap(), MEDIATION.parse().unwrap())
    }

    #[test]
    fn mediation_is_served_by_its_ip() {
        for method in [Method::INVITE, Method::ACK, Method::BYE, Method::CANCEL, Method::OPTIONS] {
            assert_eq!(from(&request(method.clone()), MEDIATION), Admission::Serve, "{method}");
            assert_eq!(from(&request(method.clone()), "127.0.0.1:40000"), Admission::Serve, "{method} from another port");
        }
        let response = Message::Response(holdfast_sip::message::Response::new(200));
        assert_eq!(from(&response, MEDIATION), Admission::Serve);
    }

    #[test]
    fn strangers_get_403_their_acks_and_responses_are_dropped_and_their_options_answered() {
        let stranger = "127.0.0.2:5070";
        for method in [Method::INVITE, Method::BYE, Method::CANCEL, Method::REGISTER, Method::parse("REFER")] {
            assert_eq!(from(&request(method.clone()), stranger), Admission::Refuse, "{method}");
        }
        assert_eq!(from(&request(Method::ACK), stranger), Admission::Drop);
        assert_eq!(from(&Message::Response(holdfast_sip::message::Response::new(200)), stranger), Admission::Drop);
        assert_eq!(from(&request(Method::OPTIONS), stranger), Admission::Serve, "a health probe");
    }
}
