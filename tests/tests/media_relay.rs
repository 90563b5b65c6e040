//! The media relay on loopback: two UDP "phones" talk through one session.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use holdfast_media::g711::{ALAW_TO_ULAW, PT_PCMA, PT_PCMU, ULAW_TO_ALAW};
use holdfast_media::{Allocation, Relay, RelayConfig, RelayError, RemoteMedia, Side};
use holdfast_tests::ports::media_ports;
use rtp_rs::{RtpPacketBuilder, RtpReader, Seq};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A relay on `pairs` port pairs from a block of the test's own.
fn relay(pairs: u16) -> Relay {
    relay_at(*media_ports().start(), pairs)
}

fn relay_at(first_port: u16, pairs: u16) -> Relay {
    Relay::start(RelayConfig {
        bind_ip: LOCALHOST,
        ports: first_port..=first_port + 2 * pairs - 1,
    })
    .expect("relay starts")
}

fn phone() -> UdpSocket {
    let s = UdpSocket::bind((LOCALHOST, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn rtp(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(pt)
        .sequence(Seq::from(seq))
        .timestamp(u32::from(seq) * 160)
        .ssrc(0x1234_5678)
        .payload(payload)
        .build()
        .unwrap()
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = s.recv_from(&mut buf).expect("datagram through the relay");
    (buf[..n].to_vec(), from)
}

fn nothing_arrives(s: &UdpSocket) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 2048];
    let quiet = s.recv_from(&mut buf).is_err();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    quiet
}

/// A session whose legs' SDP name the two phones.
fn call(relay: &Relay, a: &UdpSocket, b: &UdpSocket, media: impl Fn(SocketAddr) -> RemoteMedia) -> Allocation {
    let alloc = relay.allocate(Instant::now()).unwrap();
    relay.set_remote(alloc.id, Side::A, media(a.local_addr().unwrap())).unwrap();
    relay.set_remote(alloc.id, Side::B, media(b.local_addr().unwrap())).unwrap();
    alloc
}

#[test]
fn payload_bytes_arrive_unchanged_both_ways() {
    let relay = relay(8);
    let (a, b) = (phone(), phone());
    let alloc = call(&relay, &a, &b, RemoteMedia::at);
    assert_eq!(alloc.a.rtp.port() % 2, 0);
    assert_eq!(alloc.a.rtcp.port(), alloc.a.rtp.port() + 1);
    for seq in 0..20u16 {
        let payload: Vec<u8> = (0..160).map(|i| (i as u16 * 7 + seq) as u8).collect();
        let sent = rtp(PT_PCMU, seq, &payload);
        a.send_to(&sent, alloc.a.rtp).unwrap();
        let (got, from) = recv(&b);
        assert_eq!(got, sent, "A->B packet {seq}");
        assert_eq!(from, alloc.b.rtp, "B hears the relay's B-leg port");
        let reply = rtp(PT_PCMU, seq, &payload.iter().rev().copied().collect::<Vec<_>>());
        b.send_to(&reply, alloc.b.rtp).unwrap();
        assert_eq!(recv(&a), (reply, alloc.a.rtp), "B->A packet {seq}");
    }
    let stats = relay.stats(alloc.id, Instant::now()).unwrap();
    assert_eq!((stats.a.packets, stats.a.forwarded, stats.a.dropped), (20, 20, 0));
    assert_eq!((stats.b.packets, stats.b.forwarded, stats.b.dropped), (20, 20, 0));
    assert_eq!(stats.a.bytes, 20 * 172);
}

#[test]
fn latches_to_the_real_source() {
    let relay = relay(8);
    let (a, b_sdp, b_real, intruder) = (phone(), phone(), phone(), phone());
    // B's SDP names one port, but its NAT sends from another.
    let alloc = call(&relay, &a, &b_sdp, RemoteMedia::at);
    let hello = rtp(PT_PCMU, 1, &[0x55; 160]);
    b_real.send_to(&hello, alloc.b.rtp).unwrap();
    assert_eq!(recv(&a).0, hello);
    let to_b = rtp(PT_PCMU, 2, &[0x11; 160]);
    a.send_to(&to_b, alloc.a.rtp).unwrap();
    assert_eq!(recv(&b_real).0, to_b, "replies go to the latched source");
    assert!(nothing_arrives(&b_sdp), "not to the SDP address");
    // Once latched, another source cannot inject media.
    intruder.send_to(&rtp(PT_PCMU, 3, &[0x99; 160]), alloc.b.rtp).unwrap();
    assert!(nothing_arrives(&a));
    let stats = relay.stats(alloc.id, Instant::now()).unwrap();
    assert_eq!(stats.b.latched_rtp, Some(b_real.local_addr().unwrap()));
    assert_eq!(stats.b.dropped, 1);
}

#[test]
fn transcodes_ulaw_and_alaw_by_the_g711_tables() {
    let relay = relay(8);
    let (a, b) = (phone(), phone());
    let alloc = relay.allocate(Instant::now()).unwrap();
    let leg = |s: &UdpSocket, pt| RemoteMedia {
        audio_pt: Some(pt),
        telephone_event_pt: Some(101),
        ..RemoteMedia::at(s.local_addr().unwrap())
    };
    relay.set_remote(alloc.id, Side::A, leg(&a, PT_PCMU)).unwrap();
    relay.set_remote(alloc.id, Side::B, leg(&b, PT_PCMA)).unwrap();
    let every_code: Vec<u8> = (0..=255).collect();

    a.send_to(&rtp(PT_PCMU, 9, &every_code), alloc.a.rtp).unwrap();
    let (got, _) = recv(&b);
    let r = RtpReader::new(&got).unwrap();
    assert_eq!(r.payload_type(), PT_PCMA);
    assert_eq!((u16::from(r.sequence_number()), r.timestamp(), r.ssrc()), (9, 9 * 160, 0x1234_5678));
    assert_eq!(r.payload(), &ULAW_TO_ALAW[..]);

    b.send_to(&rtp(PT_PCMA, 10, &every_code), alloc.b.rtp).unwrap();
    let (got, _) = recv(&a);
    let r = RtpReader::new(&got).unwrap();
    assert_eq!(r.payload_type(), PT_PCMU);
    assert_eq!(r.payload(), &ALAW_TO_ULAW[..]);
}

#[test]
fn dtmf_events_pass_unchanged() {
    let relay = relay(8);
    let (a, b) = (phone(), phone());
    let alloc = relay.allocate(Instant::now()).unwrap();
    let leg = |s: &UdpSocket, pt, ev| RemoteMedia {
        audio_pt: Some(pt),
        telephone_event_pt: Some(ev),
        ..RemoteMedia::at(s.local_addr().unwrap())
    };
    // Transcoding legs that agree on the event number: events are not touched.
    relay.set_remote(alloc.id, Side::A, leg(&a, PT_PCMU, 101)).unwrap();
    relay.set_remote(alloc.id, Side::B, leg(&b, PT_PCMA, 101)).unwrap();
    // RFC 4733: digit 5, end bit + volume 10, duration 800; three end packets.
    for (seq, payload) in [(1, [5, 0x0A, 0x01, 0x40]), (2, [5, 0x8A, 0x03, 0x20]), (3, [5, 0x8A, 0x03, 0x20])] {
        let event = rtp(101, seq, &payload);
        a.send_to(&event, alloc.a.rtp).unwrap();
        assert_eq!(recv(&b).0, event);
    }
    // Legs that numbered telephone-event differently: only the number changes.
    relay.set_remote(alloc.id, Side::B, leg(&b, PT_PCMA, 96)).unwrap();
    b.send_to(&rtp(96, 4, &[11, 0x8A, 0, 160]), alloc.b.rtp).unwrap();
    let (got, _) = recv(&a);
    let r = RtpReader::new(&got).unwrap();
    assert_eq!((r.payload_type(), r.payload()), (101, &[11, 0x8A, 0, 160][..]));
}

#[test]
fn rtcp_passes_on_its_port_and_muxed() {
    let relay = relay(8);
    let (a, a_rtcp, b, b_rtcp) = (phone(), phone(), phone(), phone());
    let alloc = relay.allocate(Instant::now()).unwrap();
    relay
        .set_remote(alloc.id, Side::A, RemoteMedia { rtcp: Some(a_rtcp.local_addr().unwrap()), ..RemoteMedia::at(a.local_addr().unwrap()) })
        .unwrap();
    relay
        .set_remote(alloc.id, Side::B, RemoteMedia { rtcp: Some(b_rtcp.local_addr().unwrap()), ..RemoteMedia::at(b.local_addr().unwrap()) })
        .unwrap();
    // Sender report with one report block's worth of bytes.
    let mut sr = vec![0x81, 200, 0, 12];
    sr.extend((0..48).map(|i| i as u8));
    a_rtcp.send_to(&sr, alloc.a.rtcp).unwrap();
    let (got, from) = recv(&b_rtcp);
    assert_eq!((got, from), (sr.clone(), alloc.b.rtcp));
    // RTCP muxed on the RTP port (RFC 5761) is told from RTP by its type and
    // is not transcoded or rewritten: B's leg negotiated no mux, so it goes
    // out on B's RTCP port.
    let rr = [0x80, 201, 0, 1, 0xCA, 0xFE, 0xBA, 0xBE];
    a.send_to(&rr, alloc.a.rtp).unwrap();
    assert_eq!(recv(&b_rtcp).0, rr);
    // With mux on B's side it goes to B's RTP address.
    relay
        .set_remote(alloc.id, Side::B, RemoteMedia { rtcp_mux: true, ..RemoteMedia::at(b.local_addr().unwrap()) })
        .unwrap();
    a_rtcp.send_to(&sr, alloc.a.rtcp).unwrap();
    assert_eq!(recv(&b), (sr, alloc.b.rtp));
    assert_eq!(relay.stats(alloc.id, Instant::now()).unwrap().a.rtcp_packets, 3);
}

#[test]
fn port_pool_exhaustion_is_a_clear_error_and_release_refills() {
    // Three pairs: one session (two legs) fits, the second cannot.
    let block = *media_ports().start();
    let relay = relay_at(block, 3);
    let first = relay.allocate(Instant::now()).unwrap();
    let err = relay.allocate(Instant::now()).unwrap_err();
    assert!(matches!(err, RelayError::PortsExhausted { start, end } if (start, end) == (block, block + 5)), "{err:?}");
    assert_eq!(err.to_string(), format!("no free RTP/RTCP port pair left in {block}-{}", block + 5));
    assert_eq!(relay.available_pairs(), 1, "a failed allocation gives its first pair back");
    relay.release(first.id, Instant::now()).unwrap();
    assert_eq!(relay.available_pairs(), 3);
    assert!(matches!(relay.stats(first.id, Instant::now()), Err(RelayError::UnknownSession(_))));
    // A released pair keeps its sockets for the next call: its ports stay the relay's.
    assert!(UdpSocket::bind(first.a.rtp).is_err(), "a released pair stays bound");
    let again = relay.allocate(Instant::now()).unwrap();
    assert_ne!(again.id, first.id);
    assert!(matches!(relay.allocate(Instant::now()), Err(RelayError::PortsExhausted { .. })));
    // A pair another process holds before the relay ever binds it is skipped.
    let squatter = UdpSocket::bind((LOCALHOST, block + 10)).expect("a free port for the squatter");
    let relay = relay_at(block + 10, 3);
    let alloc = relay.allocate(Instant::now()).unwrap();
    let used = [alloc.a.rtp, alloc.b.rtp];
    assert!(!used.contains(&squatter.local_addr().unwrap()), "{used:?}");
    assert!(matches!(relay.allocate(Instant::now()), Err(RelayError::PortsExhausted { .. })));
}

#[test]
fn relays_over_ipv6() {
    let first = *media_ports().start();
    let relay = Relay::start(RelayConfig {
        bind_ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ports: first..=first + 15,
    })
    .unwrap();
    let phone6 = || {
        let s = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s
    };
    let (a, b) = (phone6(), phone6());
    let alloc = call(&relay, &a, &b, RemoteMedia::at);
    assert!(alloc.a.rtp.is_ipv6());
    let sent = rtp(PT_PCMA, 1, &[0xD5; 160]);
    a.send_to(&sent, alloc.a.rtp).unwrap();
    assert_eq!(recv(&b), (sent, alloc.b.rtp));
}

#[test]
fn idle_sessions_are_reported_for_reaping() {
    let relay = relay(8);
    let (a, b) = (phone(), phone());
    let quiet = call(&relay, &a, &b, RemoteMedia::at);
    let busy = call(&relay, &a, &b, RemoteMedia::at);
    for seq in 0..8u16 {
        std::thread::sleep(Duration::from_millis(50));
        a.send_to(&rtp(PT_PCMU, seq, &[0; 160]), busy.a.rtp).unwrap();
        recv(&b);
    }
    let idle = relay.idle_sessions(Duration::from_millis(300), Instant::now());
    assert_eq!(idle, vec![quiet.id]);
    assert!(relay.stats(quiet.id, Instant::now()).unwrap().idle >= Duration::from_millis(300));
}

#[test]
fn garbage_is_dropped_and_counted() {
    let relay = relay(8);
    let (a, b) = (phone(), phone());
    let alloc = call(&relay, &a, &b, RemoteMedia::at);
    let junk: [&[u8]; 5] = [b"", b"\x80", b"hello world, not RTP", &[0x80, 0x00, 0x00], &[0xBF; 40]];
    for datagram in junk {
        a.send_to(datagram, alloc.a.rtp).unwrap();
        a.send_to(datagram, alloc.a.rtcp).unwrap();
    }
    let real = rtp(PT_PCMU, 1, &[0x7F; 160]);
    a.send_to(&real, alloc.a.rtp).unwrap();
    assert_eq!(recv(&b).0, real, "the relay survives and still forwards");
    let stats = relay.stats(alloc.id, Instant::now()).unwrap();
    assert_eq!((stats.a.packets, stats.a.dropped, stats.a.forwarded), (11, 10, 1));
}

/// RTP bleed (issue 11): a third host at 127.0.0.2 sends to both legs' ports before the
/// parties do. None of it is forwarded and it latches nothing (strict source): the parties'
/// first packets are the first anyone hears, audio flows both ways, the foreign packets are
/// counted and the attacker hears nothing.
#[test]
fn a_third_address_sending_first_gets_nothing_through() {
    let relay = relay(8);
    let (a, b) = (phone(), phone());
    let attacker = UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 is loopback");
    attacker.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let alloc = call(&relay, &a, &b, RemoteMedia::at);
    for leg in [alloc.a, alloc.b] {
        attacker.send_to(&rtp(PT_PCMU, 1, &[0x99; 160]), leg.rtp).unwrap();
        attacker.send_to(&[0x80, 201, 0, 1, 0, 0, 0, 1], leg.rtcp).unwrap();
    }
    let from_a = rtp(PT_PCMU, 2, &[0x11; 160]);
    a.send_to(&from_a, alloc.a.rtp).unwrap();
    assert_eq!(recv(&b).0, from_a, "B's first packet is A's, not the attacker's");
    let from_b = rtp(PT_PCMU, 2, &[0x22; 160]);
    b.send_to(&from_b, alloc.b.rtp).unwrap();
    assert_eq!(recv(&a).0, from_b, "A's first packet is B's");
    let stats = relay.stats(alloc.id, Instant::now()).unwrap();
    assert_eq!((stats.a.foreign, stats.b.foreign), (2, 2));
    assert_eq!((stats.a.latched_rtp, stats.b.latched_rtp), (Some(a.local_addr().unwrap()), Some(b.local_addr().unwrap())));
    assert!(nothing_arrives(&attacker), "the attacker captured media");
}

/// Ports are picked at random from the free pool: ten calls in a row do not take the pairs in
/// order.
#[test]
fn ports_are_not_handed_out_in_order() {
    let first = *media_ports().start();
    let relay = relay_at(first, 20);
    let ports: Vec<u16> = (0..10)
        .map(|_| {
            let alloc = relay.allocate(Instant::now()).unwrap();
            relay.release(alloc.id, Instant::now()).unwrap();
            alloc.a.rtp.port()
        })
        .collect();
    let sequential: Vec<u16> = (0..10).map(|i| first + 4 * i).collect();
    assert_ne!(ports, sequential, "{ports:?}");
}
