//! The transaction layer driven over a real loopback transport: retransmissions reach the
//! wire, the response comes back through the transport, and the ACK goes out.
use holdfast_sip::message::{HeaderName, Message, Method, Request, Uri};
use holdfast_sip::transaction::{TimerConfig, Transactions, TxEvent};
use holdfast_sip::Ids;
use holdfast_sip::transport::{Protocol, Transport};
use holdfast_sip::wire;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[tokio::test]
async fn invite_retransmitted_answered_and_acked_over_udp() {
    let (alice, mut alice_rx) = Transport::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let bob = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bob_addr = bob.local_addr().unwrap();
    let mut txs = Transactions::new(TimerConfig::new(Duration::from_millis(20), Duration::from_millis(80), Duration::from_millis(100)));

    let mut invite = Request::new(Method::INVITE, Uri::parse(&format!("sip:bob@{bob_addr}")).unwrap());
    invite.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {};branch={};rport", alice.local_addr(), Ids::seeded(1).branch()));
    invite.headers.add(HeaderName::MaxForwards, "70");
    invite.headers.add(HeaderName::From, "<sip:alice@example.com>;tag=a");
    invite.headers.add(HeaderName::To, "<sip:bob@example.com>");
    invite.headers.add(HeaderName::CallId, "glue-1");
    invite.headers.add(HeaderName::CSeq, "1 INVITE");
    let id = txs.send_request(invite, bob_addr, Protocol::Udp, Instant::now()).unwrap();

    let mut received: Vec<Request> = Vec::new();
    let mut events = Vec::new();
    let mut answered = false;
    let mut buf = vec![0u8; 65_535];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for _ in 0..1000 {
        while let Some(transmit) = txs.poll_transmit() {
            alice.transmit(&transmit).await.unwrap();
        }
        events.extend(std::iter::from_fn(|| txs.poll_event()));
        if received.iter().any(|r| r.method == Method::ACK) || tokio::time::Instant::now() > deadline {
            break;
        }
        let wake = txs.next_timeout().map(tokio::time::Instant::from_std).unwrap_or(deadline).min(deadline);
        tokio::select! {
            got = bob.recv_from(&mut buf) => {
                let (len, from) = got.unwrap();
                let Message::Request(request) = wire::parse(&buf[..len]).unwrap() else { panic!("bob got a response") };
                received.push(request.clone());
                // Bob answers once the INVITE has come twice: the retransmission went over the wire.
                if request.method == Method::INVITE && received.len() == 2 && !answered {
                    answered = true;
                    let mut busy = request.response(486);
                    busy.headers.set(HeaderName::To, "<sip:bob@example.com>;tag=b");
                    bob.send_to(&busy.to_bytes().unwrap(), from).await.unwrap();
                }
            }
            incoming = alice_rx.recv() => {
                let Message::Response(response) = incoming.unwrap().msg else { panic!("alice got a request") };
                assert_eq!(txs.on_response(response, Instant::now()), None, "the 486 matches the INVITE");
            }
            _ = tokio::time::sleep_until(wake) => txs.handle_timeout(Instant::now()),
        }
    }
    let methods: Vec<_> = received.iter().map(|r| r.method.clone()).collect();
    assert!(methods.len() >= 3, "{methods:?}");
    assert!(methods[..methods.len() - 1].iter().all(|m| *m == Method::INVITE), "{methods:?}");
    let ack = received.last().unwrap();
    assert_eq!(ack.method, Method::ACK);
    assert_eq!(ack.headers.get(&HeaderName::To), Some("<sip:bob@example.com>;tag=b"));
    assert_eq!(ack.top_via().unwrap().branch(), received[0].top_via().unwrap().branch());
    assert!(events.iter().any(|e| e.id == id && matches!(&e.event, TxEvent::Response(r) if r.status == 486)));
    assert_eq!(txs.len(), 1, "the INVITE transaction waits in Completed for stray 486s");
}
