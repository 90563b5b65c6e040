//! The B2BUA driven through a real transaction table, with a fake relay: what goes out on each
//! side, and the call records.
use super::{B2bua, B2buaConfig, Cdr, Duration, HeaderName, Instant, Media, Method, Output, Protocol, RemoteMedia, Request, Response, Side, SocketAddr, Transactions};
use crate::config::Config;
use holdfast_runtime::config::Loaded;
use holdfast_runtime::WallClock;
use holdfast_sip::message::{sample, Uri};
use holdfast_sip::transaction::{Inbound, TimerConfig, Transmit};
use holdfast_sip::Ids;
use holdfast_media::srtp::{LegKeys, MasterKey, Suite};
use crate::srtp_policy::SrtpPolicy;

struct FakeMedia {
    remotes: Vec<(Side, SocketAddr)>,
    released: usize,
    idle: Vec<u32>,
    crypto: Vec<(Side, Option<LegKeys>)>,
}

impl Media for &mut FakeMedia {
    type Id = u32;
    fn allocate(&mut self, _: Instant) -> Result<(u32, SocketAddr, SocketAddr), String> {
        Ok((1, "127.0.0.1:30000".parse().unwrap(), "127.0.0.1:30002".parse().unwrap()))
    }
    fn set_remote(&mut self, _: u32, side: Side, remote: RemoteMedia) {
        self.remotes.push((side, remote.rtp));
    }
    fn set_crypto(&mut self, _: u32, side: Side, keys: Option<LegKeys>) {
        self.crypto.push((side, keys));
    }
    fn release(&mut self, _: u32, _: Instant) {
        self.released += 1;
    }
    fn idle(&self, _: Duration, _: Instant) -> Vec<u32> {
        self.idle.clone()
    }
}

const REGISTRAR: &str = "127.0.0.1:5060";
const SDP_A: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
const SDP_B: &str = "v=0\r\no=- 7 7 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

struct Rig<'m> {
    b2bua: B2bua<&'m mut FakeMedia>,
    txns: Transactions,
    now: Instant,
    /// Requests and responses sent, oldest first.
    sent: Vec<Transmit>,
    cdrs: Vec<Cdr>,
    acks: Vec<(Request, SocketAddr)>,
    retransmitted: Vec<Response>,
}

impl<'m> Rig<'m> {
    fn new(media: &'m mut FakeMedia, dead: &[&str]) -> Self {
        let config = Config::parse(include_str!("tests_plan.toml"), "tests_plan.toml").unwrap_or_else(|e| panic!("{e}"));
        let now = Instant::now();
        let b2b = B2buaConfig {
            local: config.listen,
            tls_local: None,
            registrar: REGISTRAR.parse().unwrap(),
            no_answer: Duration::from_secs(30),
            srtp: SrtpPolicy::Optional,
            max_calls: config.max_calls,
        };
        let mut b2bua = B2bua::new(b2b, config.plan, media, WallClock::new(now, Duration::from_millis(1_000_000)), Ids::seeded(1));
        for d in dead {
            b2bua.set_trunk_alive(d, false);
        }
        Rig { b2bua, txns: Transactions::new(TimerConfig::default()), now, sent: vec![], cdrs: vec![], acks: vec![], retransmitted: vec![] }
    }

    fn pump(&mut self) {
        for _ in 0..100 {
            let mut busy = false;
            while let Some(e) = self.txns.poll_event() {
                busy = true;
                self.b2bua.on_event(&mut self.txns, &e, self.now);
            }
            while let Some(t) = self.txns.poll_transmit() {
                busy = true;
                self.sent.push(t);
            }
            while let Some(o) = self.b2bua.poll_output() {
                busy = true;
                match o {
                    Output::Cdr(c) => self.cdrs.push(c),
                    Output::Send { request, dest, .. } => self.acks.push((request, dest)),
                    Output::Respond(r) => self.retransmitted.push(r),
                }
            }
            if !busy {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn invite_from_branch(&mut self, from_user: &str, number: &str) -> Request {
        self.invite_from_branch_offering(from_user, number, SDP_A)
    }

    fn invite_from_branch_offering(&mut self, from_user: &str, number: &str, sdp: &str) -> Request {
        let mut r = branch_invite(from_user, number);
        r.body = sdp.as_bytes().to_vec();
        let Ok(Inbound::Request { id, request }) = self.txns.on_request(r.clone(), Protocol::Udp, self.now) else { panic!() };
        self.b2bua.on_request(&mut self.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, self.now);
        self.pump();
        r
    }

    /// The requests sent to `dest` with `method`.
    fn requests_to(&self, dest: &str, method: &Method) -> Vec<Request> {
        let dest: SocketAddr = dest.parse().unwrap();
        self.sent
            .iter()
            .filter_map(|t| match t {
                Transmit::Request { request, dest: d, .. } if *d == dest && &request.method == method => Some(Request::clone(request)),
                _ => None,
            })
            .collect()
    }

    /// Responses sent back to A (our server transactions), by status.
    fn responses(&self) -> Vec<Response> {
        self.sent.iter().filter_map(|t| if let Transmit::Response { response, .. } = t { Some(Response::clone(response)) } else { None }).collect()
    }

    fn answer(&mut self, req: &Request, status: u16, sdp: Option<&str>) -> Response {
        self.answer_with(req, status, sdp, None)
    }

    /// A request from the outside (in a dialog), handed to the B2BUA.
    fn request(&mut self, r: Request, source: &str) {
        let Ok(Inbound::Request { id, request }) = self.txns.on_request(r, Protocol::Udp, self.now) else { panic!() };
        self.b2bua.on_request(&mut self.txns, id, request, source.parse().unwrap(), Protocol::Udp, self.now);
        self.pump();
    }

    /// An ACK (outside transactions) from the registrar.
    fn ack(&mut self, ack: &Request) {
        self.b2bua.on_ack(&mut self.txns, ack, REGISTRAR.parse().unwrap(), Protocol::Udp, self.now);
    }

    fn answer_with(&mut self, req: &Request, status: u16, sdp: Option<&str>, reason: Option<&str>) -> Response {
        let mut r = req.response(status);
        if let Some(reason) = reason {
            let name = if reason.starts_with("Q.850") { HeaderName::Reason } else { HeaderName::SessionExpires };
            r.headers.add(name, reason);
        }
        if status > 100 {
            r.headers.add(HeaderName::Contact, "<sip:carrier@127.0.0.1:5082>");
        }
        if let Some(sdp) = sdp {
            r.headers.add(HeaderName::ContentType, "application/sdp");
            r.body = sdp.as_bytes().to_vec();
        }
        assert!(self.txns.on_response(r.clone(), self.now).is_none());
        self.pump();
        r
    }
}


/// An INVITE from the branch (as the registrar relays it) for `number`, by `from_user`.
fn branch_invite(from_user: &str, number: &str) -> Request {
    let mut r = sample::request(&format!("INVITE sip:{number}@127.0.0.1:5070;user=phone
         Via: SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-{number}
         Record-Route: <sip:{REGISTRAR};lr>
         From: <sip:{from_user}@branch.local>;tag=caller
         To: <sip:{number}@branch.local>
         Call-ID: a-{number}
         CSeq: 1 INVITE
         Contact: <sip:{from_user}@192.0.2.9:5062>
         Content-Type: application/sdp"));
    r.body = SDP_A.as_bytes().to_vec();
    r
}

#[test]
fn call_fails_over_to_the_second_carrier_and_ends_with_a_record() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let first = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    assert_eq!(first.len(), 1);
    // carrier-a's translation: national form.
    assert_eq!(first[0].uri.to_string(), "sip:12125550100@127.0.0.1:5080;user=phone");
    let offer = String::from_utf8(first[0].body.clone()).unwrap();
    assert!(offer.contains("m=audio 30002 ") && offer.contains("c=IN IP4 127.0.0.1"), "{offer}");
    assert_ne!(first[0].call_id().unwrap(), "a-2125550100");

    rig.answer(&first[0], 503, None);
    let second = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(second.len(), 1, "503 moves the call to carrier-b at once");
    assert_eq!(second[0].uri.to_string(), "sip:+12125550100@127.0.0.1:5082;user=phone");
    assert!(rig.responses().iter().all(|r| r.status < 200), "the caller sees no failure");

    rig.answer(&second[0], 183, Some(SDP_B));
    let early = rig.responses().into_iter().find(|r| r.status == 183).expect("183 relayed");
    let early_sdp = String::from_utf8(early.body.clone()).unwrap();
    assert!(early_sdp.contains("m=audio 30000 ") && !early_sdp.contains("198.51.100.7"), "{early_sdp}");
    rig.answer(&second[0], 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).expect("200 relayed");
    assert_eq!(ok.to_header().unwrap().tag(), early.to_header().unwrap().tag());
    assert_eq!(rig.acks.len(), 1, "2xx acknowledged towards the carrier");
    assert_eq!(rig.acks[0].1, "127.0.0.1:5082".parse().unwrap());
    assert_eq!(rig.acks[0].0.cseq().unwrap().to_string(), "1 ACK");

    // BYE from the caller, in the A dialog: 200 to A, BYE to the carrier in the B dialog.
    let bye = from_caller(Method::BYE, 2, "a-2125550100", &ok, "z9hG4bK-bye");
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(bye, Protocol::Udp, rig.now) else { panic!() };
    rig.now += Duration::from_secs(5);
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
    let bye_b = rig.requests_to("127.0.0.1:5082", &Method::BYE);
    assert_eq!(bye_b.len(), 1);
    assert_eq!(bye_b[0].call_id().unwrap(), second[0].call_id().unwrap());
    assert_eq!(bye_b[0].cseq().unwrap().seq, 2);
    assert!(rig.responses().iter().any(|r| r.status == 200 && r.cseq().unwrap().method == Method::BYE));

    assert_eq!(rig.cdrs.len(), 1);
    let c = &rig.cdrs[0];
    assert_eq!((c.caller.as_str(), c.callee_dialled.as_str(), c.callee.as_str()), ("3012", "2125550100", "+12125550100"));
    assert_eq!((c.trunk.as_str(), c.route.as_str(), c.failovers), ("carrier-b", "national", 1));
    assert_eq!((c.callee_sent.as_str(), c.status, c.end_cause.as_str()), ("+12125550100", 200, "BYE from caller"));
    assert_eq!((c.setup_at, c.answered_at, c.ended_at), (1_000_000, Some(1_000_000), 1_005_000));
    assert!(rig.b2bua.is_empty());
    drop(rig);
    assert_eq!(media.released, 1);
    assert!(media.remotes.contains(&(Side::A, "192.0.2.9:4000".parse().unwrap())));
    assert!(media.remotes.contains(&(Side::B, "198.51.100.7:6000".parse().unwrap())));
}

#[test]
fn international_without_the_usage_is_refused_403_and_recorded() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "011442079460000");
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 403);
    assert!(r.headers.get(&HeaderName::Reason).unwrap().starts_with("Q.850;cause=21"));
    assert!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).is_empty());
    assert_eq!(rig.cdrs.len(), 1);
    assert_eq!((rig.cdrs[0].status, rig.cdrs[0].trunk.as_str()), (403, ""));
    // The record is complete: who called, what the number became, the route that refused it.
    let c = &rig.cdrs[0];
    assert_eq!((c.caller.as_str(), c.callee.as_str(), c.route.as_str()), ("3012", "+442079460000", "international"));
}

#[test]
fn a_dead_trunk_is_skipped_and_busy_ends_the_search() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &["carrier-a"]);
    rig.invite_from_branch("3001", "2125550100");
    assert!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).is_empty());
    let b = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(b.len(), 1);
    rig.answer(&b[0], 486, None);
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 486);
    assert!(r.headers.get(&HeaderName::Reason).unwrap().starts_with("Q.850;cause=17"));
    // One trunk tried: no failover (the dead one was skipped, not tried).
    assert_eq!((rig.cdrs[0].failovers, rig.cdrs[0].q850), (0, Some(17)));
}

#[test]
fn failovers_count_the_trunks_tried_not_the_dead_ones_skipped() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &["carrier-b"]);
    rig.invite_from_branch("3001", "011442079460000");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&a[0], 503, None);
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty(), "carrier-b is dead");
    let c = rig.requests_to("127.0.0.1:5084", &Method::INVITE);
    assert_eq!(c.len(), 1, "503 on carrier-a, carrier-b skipped, carrier-c tried");
    rig.answer(&c[0], 486, None);
    assert_eq!((rig.cdrs[0].trunk.as_str(), rig.cdrs[0].failovers), ("carrier-c", 1), "two trunks tried: one failover");
}

#[test]
fn a_caller_known_by_name_goes_out_anonymous_unless_the_registrar_asserts_its_number() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("alice", "2125550100");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    assert_eq!(a[0].from_header().unwrap().uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert_eq!(a[0].headers.get(&HeaderName::Privacy), Some("id"));
    rig.answer(&a[0], 486, None);
    assert_eq!((rig.cdrs[0].caller.as_str(), rig.cdrs[0].caller_sent.as_str()), ("alice", "anonymous"));

    // The number sba-registrar asserts for alice (her DID) is her calling number (a second
    // INVITE, the first copy of which went out anonymous like the one above).
    let mut invite = rig.invite_from_branch("alice", "2125550101");
    invite.headers.add(HeaderName::PAssertedIdentity, "<sip:+15559870500@127.0.0.1;user=phone>");
    invite.headers.set(HeaderName::CallId, "a-asserted");
    invite.headers.set(HeaderName::Via, format!("SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-asserted"));
    rig.request(invite, REGISTRAR);
    let sent = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    let asserted = sent.iter().find(|r| r.headers.get(&HeaderName::Privacy).is_none()).expect("a call with a number");
    assert_eq!(asserted.from_header().unwrap().uri.to_string(), "sip:+15559870500@127.0.0.1:5070;user=phone");
}

#[test]
fn cancel_from_the_caller_cancels_the_trunk() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let invite = rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&b[0], 180, None);
    let mut cancel = holdfast_sip::transaction::cancel_for(&invite).unwrap();
    cancel.headers.set(HeaderName::Via, invite.headers.get(&HeaderName::Via).unwrap());
    let Ok(Inbound::Cancel { id, invite: Some(server), .. }) = rig.txns.on_request(cancel, Protocol::Udp, rig.now) else { panic!() };
    assert_eq!(rig.b2bua.on_cancel(&mut rig.txns, server, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now), 200);
    rig.txns.send_response(id, Response::new(200), rig.now).ok();
    rig.pump();
    let cancels = rig.requests_to("127.0.0.1:5080", &Method::CANCEL);
    assert_eq!(cancels.len(), 1);
    rig.answer(&b[0], 487, None);
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty(), "a cancelled call does not fail over");
    assert!(rig.responses().iter().any(|r| r.status == 487));
    assert_eq!(rig.cdrs[0].end_cause, "cancelled by caller");
}

#[test]
fn a_callee_who_lets_it_ring_is_rung_once() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&a[0], 180, None);
    // Nobody answers for no_answer (30 s here): the ringing is cancelled...
    rig.now += Duration::from_secs(31);
    rig.b2bua.handle_timeout(&mut rig.txns, rig.now);
    rig.pump();
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::CANCEL).len(), 1);
    rig.answer(&a[0], 487, None);
    // ...and the call ends there: the same person is not rung again through carrier-b.
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty(), "rung once");
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 480);
    assert!(r.headers.get(&HeaderName::Reason).unwrap().starts_with("Q.850;cause=19"), "no answer from the user");
    let c = &rig.cdrs[0];
    assert_eq!((c.status, c.q850, c.failovers, c.end_cause.as_str()), (480, Some(19), 0, "trunk carrier-a: no answer"));
    assert!(rig.b2bua.is_empty());
}

#[test]
fn a_pstn_callee_not_responding_ends_the_call_with_its_cause() {
    // sba-gateway answers a PSTN callee's cause 18 (no user responding) with 408 (RFC 3398).
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&a[0], 180, None);
    rig.answer_with(&a[0], 408, None, Some("Q.850;cause=18"));
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty(), "rung once");
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 408);
    assert!(r.headers.get(&HeaderName::Reason).unwrap().starts_with("Q.850;cause=18"));
    assert_eq!((rig.cdrs[0].status, rig.cdrs[0].q850, rig.cdrs[0].failovers), (408, Some(18), 0));
}

#[test]
fn timeout_and_transport_error_fail_over() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    let Transmit::Request { id, .. } = rig.sent.iter().find(|t| matches!(t, Transmit::Request { .. })).unwrap().clone() else { panic!() };
    rig.txns.on_transport_error(id);
    rig.pump();
    assert_eq!(a.len(), 1);
    let b = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(b.len(), 1);
    // carrier-b never answers: Timer B, then no trunk is left: 408 to the caller.
    rig.now += Duration::from_secs(40);
    rig.txns.handle_timeout(rig.now);
    rig.pump();
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 408);
    assert_eq!(rig.cdrs[0].failovers, 1);
}

#[test]
fn answered_calls_without_media_are_reaped_with_bye_both_ways() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![1], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    // Ringing calls are never reaped: there may be no media before the answer.
    rig.b2bua.reap_idle(&mut rig.txns, Duration::from_secs(60), rig.now);
    assert_eq!(rig.b2bua.len(), 1);
    rig.answer(&b[0], 200, Some(SDP_B));
    rig.b2bua.reap_idle(&mut rig.txns, Duration::from_secs(60), rig.now);
    rig.pump();
    assert!(rig.b2bua.is_empty());
    let byes: Vec<Request> = rig.sent.iter().filter_map(|t| match t {
        Transmit::Request { request, .. } if request.method == Method::BYE => Some(Request::clone(request)),
        _ => None,
    }).collect();
    assert_eq!(byes.len(), 2, "one BYE per side");
    assert!(byes.iter().any(|r| r.call_id().unwrap() == "a-2125550100"));
    assert!(byes.iter().all(|r| r.headers.get(&HeaderName::Reason).unwrap().starts_with("Q.850;cause=102")));
    assert_eq!((rig.cdrs[0].end_cause.as_str(), rig.cdrs[0].q850), ("media timeout", Some(102)));
}

#[test]
fn hold_by_re_invite_is_relayed_to_the_other_dialog() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&b[0], 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();

    let mut reinvite = from_caller(Method::INVITE, 2, "a-2125550100", &ok, "z9hG4bK-hold");
    reinvite.headers.add(HeaderName::Contact, "<sip:3012@192.0.2.9:5062>");
    reinvite.body = format!("{SDP_A}a=sendonly\r\n").into_bytes();
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(reinvite, Protocol::Udp, rig.now) else { panic!() };
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();

    let to_b = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(to_b.len(), 1, "the re-INVITE goes to the carrier's Contact, in the B dialog");
    assert_eq!(to_b[0].call_id().unwrap(), b[0].call_id().unwrap());
    assert_eq!(to_b[0].cseq().unwrap().seq, 2);
    assert!(to_b[0].to_header().unwrap().tag().is_some());
    let offer = String::from_utf8(to_b[0].body.clone()).unwrap();
    assert!(offer.contains("a=sendonly") && offer.contains("m=audio 30002 "), "{offer}");

    rig.answer(&to_b[0], 200, Some(&format!("{SDP_B}a=recvonly\r\n")));
    assert_eq!(rig.acks.len(), 2, "the carrier's 2xx to the re-INVITE is acknowledged");
    assert_eq!(rig.acks[1].0.cseq().unwrap().to_string(), "2 ACK");
    let held = rig.responses().into_iter().rfind(|r| r.status == 200 && r.cseq().unwrap().seq == 2).unwrap();
    let answer = String::from_utf8(held.body.clone()).unwrap();
    assert!(answer.contains("a=recvonly") && answer.contains("m=audio 30000 "), "{answer}");
    assert_eq!(rig.b2bua.len(), 1, "the call goes on");
}

#[test]
fn our_2xx_is_retransmitted_until_the_ack_and_a_call_never_acked_ends() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&b[0], 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    // T1, then 2*T1: two retransmissions by 1.5 s.
    for ms in [500, 1500] {
        let t = rig.now + Duration::from_millis(ms);
        rig.b2bua.handle_timeout(&mut rig.txns, t);
        rig.pump();
    }
    assert_eq!(rig.retransmitted.len(), 2);
    assert_eq!(rig.retransmitted[0], ok);
    // No ACK by 64*T1: BYE to the carrier, and the call is over.
    let late = rig.now + Duration::from_secs(33);
    rig.b2bua.handle_timeout(&mut rig.txns, late);
    rig.pump();
    assert!(rig.b2bua.is_empty());
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1);
    assert_eq!(rig.cdrs[0].end_cause, "no ACK from caller");

    // With the ACK, the retransmissions stop.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&b[0], 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    let ack = from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-ack");
    rig.ack(&ack);
    rig.b2bua.handle_timeout(&mut rig.txns, rig.now + Duration::from_secs(40));
    rig.pump();
    assert!(rig.retransmitted.is_empty());
    assert_eq!(rig.b2bua.len(), 1);
}

#[test]
fn late_offer_goes_through_the_relay_the_answer_in_the_caller_s_ack_too() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let invite = sample::request(&format!("INVITE sip:2125550100@127.0.0.1:5070;user=phone
         Via: SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-late
         From: <sip:3012@branch.local>;tag=caller
         To: <sip:2125550100@branch.local>
         Call-ID: late
         CSeq: 1 INVITE
         Contact: <sip:3012@192.0.2.9:5062>"));
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(invite, Protocol::Udp, rig.now) else { panic!() };
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    assert!(b[0].body.is_empty());
    rig.answer(&b[0], 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    let offer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 RTP/AVP 0 8\r\n") && !offer.contains("198.51.100.7"), "B's offer, on the relay, both laws: {offer}");
    assert!(rig.acks.is_empty(), "the carrier's ACK waits for the caller's answer");
    // The caller answers A-law, which the carrier did not offer: the carrier hears µ-law.
    let mut ack = from_caller(Method::ACK, 1, "late", &ok, "z9hG4bK-lateack");
    ack.body = SDP_A.replace("RTP/AVP 0", "RTP/AVP 8").into_bytes();
    rig.ack(&ack);
    rig.pump();
    assert_eq!(rig.acks.len(), 1);
    let answer = String::from_utf8(rig.acks[0].0.body.clone()).unwrap();
    assert!(answer.contains("m=audio 30002 RTP/AVP 0\r\n") && !answer.contains("192.0.2.9"), "{answer}");
    drop(rig);
    assert!(media.remotes.contains(&(Side::A, "192.0.2.9:4000".parse().unwrap())));
    assert!(media.remotes.contains(&(Side::B, "198.51.100.7:6000".parse().unwrap())));
}

#[test]
fn a_5xx_carrying_the_callee_s_cause_ends_the_search_with_the_mapped_status() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer_with(&a[0], 500, None, Some("Q.850;cause=17;text=\"User busy\""));
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty(), "busy is no trunk failure");
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 486);
    assert_eq!((rig.cdrs[0].status, rig.cdrs[0].q850, rig.cdrs[0].failovers), (486, Some(17), 0));

    // Cause 34 (no circuit) maps to 503: that is the trunk's failure, the next one is tried.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let a = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer_with(&a[0], 503, None, Some("Q.850;cause=34"));
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).len(), 1);
}

#[test]
fn bye_in_the_early_dialog_cancels_the_trunk() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    rig.answer(&b[0], 180, None);
    let ringing = rig.responses().into_iter().find(|r| r.status == 180).unwrap();
    let bye = from_caller(Method::BYE, 2, "a-2125550100", &ringing, "z9hG4bK-earlybye");
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(bye, Protocol::Udp, rig.now) else { panic!() };
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::CANCEL).len(), 1);
    assert!(rig.responses().iter().any(|r| r.status == 487));
    assert!(rig.b2bua.is_empty());
    assert_eq!((rig.cdrs[0].status, rig.cdrs[0].end_cause.as_str()), (487, "BYE from caller"));
}

#[test]
fn a_retransmitted_2xx_from_the_carrier_is_acked_again() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    let mut ok = b[0].response(200);
    ok.headers.add(HeaderName::Contact, "<sip:carrier@127.0.0.1:5080>");
    assert!(rig.txns.on_response(ok.clone(), rig.now).is_none());
    rig.pump();
    assert_eq!(rig.acks.len(), 1);
    // The INVITE transaction is over: the copy is a stray for the B2BUA.
    let stray = rig.txns.on_response(ok, rig.now).expect("no transaction claims it");
    rig.b2bua.on_stray_response(&stray);
    rig.pump();
    assert_eq!(rig.acks.len(), 2);
    assert_eq!(rig.acks[1].0.cseq().unwrap().to_string(), "1 ACK");
}

#[test]
fn session_timers_refresh_b_and_reap_a_caller_that_stopped_refreshing() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    // The caller asks for a 90 s session; the carrier answers 100 s, refresher us.
    let mut invite = sample::request(&format!("INVITE sip:2125550100@127.0.0.1:5070;user=phone
         Via: SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-st
         From: <sip:3012@branch.local>;tag=caller
         To: <sip:2125550100@branch.local>
         Call-ID: st
         CSeq: 1 INVITE
         Contact: <sip:3012@192.0.2.9:5062>
         Session-Expires: 90"));
    invite.body = SDP_A.as_bytes().to_vec();
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(invite, Protocol::Udp, rig.now) else { panic!() };
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    assert_eq!(b[0].headers.get(&HeaderName::SessionExpires), Some("1800"));
    rig.answer_with(&b[0], 200, Some(SDP_B), Some("100;refresher=uac"));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), Some("90;refresher=uac"));
    assert_eq!(ok.headers.get(&HeaderName::Require), Some("timer"));
    let ack = from_caller(Method::ACK, 1, "st", &ok, "z9hG4bK-stack");
    rig.ack(&ack);

    // At 50 s (half of 100) we refresh B with an UPDATE.
    let t = rig.now + Duration::from_secs(50);
    rig.b2bua.handle_timeout(&mut rig.txns, t);
    rig.pump();
    let updates: Vec<Request> = rig.sent.iter().filter_map(|x| match x {
        Transmit::Request { request, .. } if request.method.as_str() == "UPDATE" => Some(Request::clone(request)),
        _ => None,
    }).collect();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].headers.get(&HeaderName::SessionExpires), Some("100;refresher=uac"));
    assert_eq!(rig.b2bua.len(), 1);
    // The caller never refreshed its 90 s session: at 90 - 30 s it is over, BYE both ways.
    let t = rig.now + Duration::from_secs(61);
    rig.b2bua.handle_timeout(&mut rig.txns, t);
    rig.pump();
    assert!(rig.b2bua.is_empty());
    assert_eq!(rig.cdrs[0].end_cause, "session timer expired");
}

/// A request from the caller (sba-registrar's side) in the dialog `answer` (a response of ours) made.
fn from_caller(method: Method, seq: u32, call_id: &str, answer: &Response, branch: &str) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:mediation@127.0.0.1:5070").unwrap());
    r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {REGISTRAR};branch={branch}"));
    r.headers.add(HeaderName::From, "<sip:3012@branch.local>;tag=caller");
    r.headers.add(HeaderName::To, answer.headers.get(&HeaderName::To).unwrap());
    r.headers.add(HeaderName::CallId, call_id);
    r.headers.add(HeaderName::CSeq, format!("{seq} {method}"));
    r
}

/// A request from the far end of a dialog we opened with `invite`, answered by `answer`.
fn from_callee(method: Method, seq: u32, invite: &Request, answer: &Response, branch: &str) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:mediation@127.0.0.1:5070").unwrap());
    r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP 127.0.0.1:5082;branch={branch}"));
    r.headers.add(HeaderName::From, answer.headers.get(&HeaderName::To).unwrap());
    r.headers.add(HeaderName::To, invite.headers.get(&HeaderName::From).unwrap());
    r.headers.add(HeaderName::CallId, invite.call_id().unwrap());
    r.headers.add(HeaderName::CSeq, format!("{seq} {method}"));
    r
}

const SDP_C: &str = "v=0\r\no=- 9 9 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

/// A call from 3012 to 2125550100 answered by carrier-a and acknowledged: our 200 to the caller
/// and carrier-a's INVITE and 200.
fn answered_call(rig: &mut Rig) -> (Response, Request, Response) {
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    let b_ok = rig.answer(&b, 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    rig.ack(&from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-ack"));
    (ok, b, b_ok)
}

fn refer(mut r: Request, target: &str) -> Request {
    r.headers.add(HeaderName::ReferTo, format!("<sip:{target}@branch.local>"));
    r.headers.add(HeaderName::Contact, "<sip:3012@192.0.2.9:5062>");
    r
}

/// The NOTIFYs sent to `dest`: (sipfrag status line, Subscription-State).
fn notifies(rig: &Rig, dest: &str) -> Vec<(String, String)> {
    rig.requests_to(dest, &Method::parse("NOTIFY"))
        .iter()
        .map(|n| {
            assert_eq!(n.headers.get(&HeaderName::ContentType), Some("message/sipfrag;version=2.0"));
            assert!(n.headers.get(&HeaderName::Event).unwrap().starts_with("refer"));
            let state = n.headers.get(&HeaderName::Other("Subscription-State".into())).unwrap().to_string();
            (String::from_utf8(n.body.clone()).unwrap().trim_end().to_string(), state)
        })
        .collect()
}

#[test]
fn a_branch_phone_transfers_the_carrier_to_a_number() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, b, b_ok) = answered_call(&mut rig);
    rig.request(refer(from_caller(Method::parse("REFER"), 2, "a-2125550100", &ok, "z9hG4bK-refer"), "2125550199"), REGISTRAR);
    assert!(rig.responses().iter().any(|r| r.status == 202 && r.cseq().unwrap().method.as_str() == "REFER"));
    assert_eq!(notifies(&rig, REGISTRAR), vec![("SIP/2.0 100 Trying".to_string(), "active;expires=60".to_string())]);

    // The target is called through the national route (carrier-a first), offered the
    // transferee's SDP on the referrer's side of the relay.
    let invites = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    assert_eq!(invites.len(), 2);
    let c = invites[1].clone();
    assert_eq!(c.uri.to_string(), "sip:12125550199@127.0.0.1:5080;user=phone");
    assert_ne!(c.call_id().unwrap(), b.call_id().unwrap());
    // The caller did not withhold: the target sees the branch user's number.
    assert!(c.headers.get(&HeaderName::Privacy).is_none() && c.from_header().unwrap().uri.to_string() != "sip:anonymous@anonymous.invalid");
    let offer = String::from_utf8(c.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 ") && offer.contains("c=IN IP4 127.0.0.1") && !offer.contains("198.51.100.7"), "{offer}");

    let c_ok = rig.answer(&c, 200, Some(SDP_C));
    assert!(rig.acks.iter().any(|(ack, _)| ack.call_id().unwrap() == c.call_id().unwrap()), "the target's 2xx is acknowledged");
    let n = notifies(&rig, REGISTRAR);
    assert_eq!(n[1], ("SIP/2.0 200 OK".to_string(), "terminated;reason=noresource".to_string()));
    let bye_a = rig.requests_to(REGISTRAR, &Method::BYE);
    assert_eq!(bye_a.len(), 1, "the referrer's leg ends");
    assert_eq!(bye_a[0].call_id().unwrap(), "a-2125550100");
    // The transferee is re-INVITEd in its own dialog towards the target's media, via the relay.
    let reinvite = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(reinvite.len(), 1);
    assert_eq!(reinvite[0].call_id().unwrap(), b.call_id().unwrap());
    assert_eq!(reinvite[0].cseq().unwrap().seq, 2);
    let reoffer = String::from_utf8(reinvite[0].body.clone()).unwrap();
    assert!(reoffer.contains("m=audio 30002 ") && !reoffer.contains("203.0.113.5"), "{reoffer}");
    rig.answer(&reinvite[0], 200, Some(SDP_B));
    assert!(rig.acks.iter().any(|(ack, _)| ack.cseq().unwrap().to_string() == "2 ACK"));

    // The first call's record ends with the transfer.
    assert_eq!(rig.cdrs.len(), 1);
    assert_eq!(rig.cdrs[0].end_cause, "transferred to 2125550199 by 3012");
    assert_eq!(rig.cdrs[0].callee, "+12125550100");
    assert_eq!(rig.b2bua.len(), 1);

    // The target hangs up: BYE to the transferee, and the transfer's record.
    rig.now += Duration::from_secs(3);
    rig.request(from_callee(Method::BYE, 1, &c, &c_ok, "z9hG4bK-cbye"), "127.0.0.1:5080");
    let byes = rig.requests_to("127.0.0.1:5082", &Method::BYE);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].call_id().unwrap(), b.call_id().unwrap());
    assert!(rig.b2bua.is_empty());
    let t = &rig.cdrs[1];
    assert_eq!((t.callee_dialled.as_str(), t.callee.as_str(), t.trunk.as_str()), ("2125550199", "+12125550199", "carrier-a"));
    assert_eq!((t.referred_by.as_deref(), t.transfer_of.as_deref()), (Some("3012"), Some("a-2125550100")));
    assert_eq!((t.status, t.end_cause.as_str(), t.call_id.as_str()), (200, "BYE from callee", c.call_id().unwrap()));
    assert_eq!(t.ended_at - t.answered_at.unwrap(), 3000);
    drop(rig);
    assert!(media.remotes.contains(&(Side::A, "203.0.113.5:7000".parse().unwrap())), "the target on the referrer's side");
    let _ = b_ok;
}

#[test]
fn a_withheld_caller_stays_withheld_through_a_transfer() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let mut invite = branch_invite("3012", "2125550100");
    invite.headers.add(HeaderName::Privacy, "id");
    rig.request(invite, REGISTRAR);
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&b, 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    let ack = from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-ack");
    rig.ack(&ack);
    // The withheld caller transfers the carrier's party to another number: the target sees
    // anonymous and Privacy: id, as the first callee did; the number only asserted to the trunk.
    rig.request(refer(from_caller(Method::parse("REFER"), 2, "a-2125550100", &ok, "z9hG4bK-refer"), "2125550199"), REGISTRAR);
    let c = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(1);
    assert_eq!(c.uri.to_string(), "sip:12125550199@127.0.0.1:5080;user=phone");
    assert_eq!(c.from_header().unwrap().uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert_eq!(c.headers.get(&HeaderName::Privacy), Some("id"));
    assert!(!c.headers.get(&HeaderName::From).unwrap().contains("3012"), "{c:?}");
}

#[test]
fn a_transfer_to_a_number_the_user_may_not_call_is_refused_403() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, ..) = answered_call(&mut rig);
    rig.request(refer(from_caller(Method::parse("REFER"), 2, "a-2125550100", &ok, "z9hG4bK-refer"), "011442079460000"), REGISTRAR);
    let r = rig.responses().into_iter().find(|r| r.cseq().unwrap().method.as_str() == "REFER").unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 1, "no call to the target");
    assert!(notifies(&rig, REGISTRAR).is_empty());
    assert_eq!(rig.b2bua.len(), 1, "the call goes on");
    assert_eq!((rig.cdrs[0].status, rig.cdrs[0].referred_by.as_deref()), (403, Some("3012")));
    assert_eq!(rig.cdrs[0].callee, "+442079460000");
}

#[test]
fn a_failed_transfer_fails_over_then_is_notified_and_the_call_goes_on() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, ..) = answered_call(&mut rig);
    rig.request(refer(from_caller(Method::parse("REFER"), 2, "a-2125550100", &ok, "z9hG4bK-refer"), "2125550199"), REGISTRAR);
    let c = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(1);
    rig.answer(&c, 503, None);
    let c2 = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(c2.len(), 1, "503 moves the transfer to carrier-b");
    rig.answer(&c2[0], 486, None);
    let n = notifies(&rig, REGISTRAR);
    assert_eq!(n.last().unwrap(), &("SIP/2.0 486 Busy Here".to_string(), "terminated;reason=noresource".to_string()));
    assert!(rig.requests_to(REGISTRAR, &Method::BYE).is_empty());
    assert_eq!(rig.b2bua.len(), 1, "the call goes on");
    let t = &rig.cdrs[0];
    assert_eq!((t.status, t.failovers, t.trunk.as_str(), t.q850), (486, 1, "carrier-b", Some(17)));
}

#[test]
fn the_carrier_transfers_the_branch_phone_and_hangs_up_before_the_target_answers() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, b, b_ok) = answered_call(&mut rig);
    let mut r = refer(from_callee(Method::parse("REFER"), 1, &b, &b_ok, "z9hG4bK-crefer"), "2125550199");
    r.headers.add(HeaderName::Other("Refer-Sub".into()), "false");
    rig.request(r, "127.0.0.1:5080");
    let accepted = rig.responses().into_iter().find(|r| r.cseq().unwrap().method.as_str() == "REFER").unwrap();
    assert_eq!(accepted.status, 202);
    assert_eq!(accepted.headers.get(&HeaderName::Other("Refer-Sub".into())), Some("false"));
    rig.request(from_callee(Method::BYE, 2, &b, &b_ok, "z9hG4bK-cbye"), "127.0.0.1:5080");
    assert!(rig.requests_to(REGISTRAR, &Method::BYE).is_empty(), "the phone stays for the target");
    assert_eq!(rig.b2bua.len(), 1);

    // The target (the call's own policy: 3012's) answers; the phone is re-INVITEd towards it.
    let c = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(1);
    let offer = String::from_utf8(c.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30002 "), "the referrer's side of the relay: {offer}");
    rig.answer(&c, 200, Some(SDP_C));
    assert!(rig.sent.iter().all(|t| !matches!(t, Transmit::Request { request, .. } if request.method.as_str() == "NOTIFY")));
    let reinvite = rig.requests_to(REGISTRAR, &Method::INVITE);
    assert_eq!(reinvite.len(), 1);
    assert_eq!(reinvite[0].call_id().unwrap(), "a-2125550100");
    assert!(String::from_utf8(reinvite[0].body.clone()).unwrap().contains("m=audio 30000 "));
    assert_eq!(rig.cdrs[0].end_cause, "transferred to 2125550199 by 12125550100");

    // The phone hangs up: BYE to the target.
    rig.request(from_caller(Method::BYE, 2, "a-2125550100", &ok, "z9hG4bK-abye"), REGISTRAR);
    let byes = rig.requests_to("127.0.0.1:5082", &Method::BYE);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].call_id().unwrap(), c.call_id().unwrap());
    assert_eq!(rig.cdrs[1].end_cause, "BYE from caller");
    assert!(rig.b2bua.is_empty());
}

#[test]
fn session_intervals_below_min_se_are_refused_422_and_a_carrier_s_422_is_retried() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let mut invite = sample::request(&format!("INVITE sip:2125550100@127.0.0.1:5070;user=phone
         Via: SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-se
         From: <sip:3012@branch.local>;tag=caller
         To: <sip:2125550100@branch.local>
         Call-ID: se
         CSeq: 1 INVITE
         Session-Expires: 60"));
    invite.body = SDP_A.as_bytes().to_vec();
    rig.request(invite, REGISTRAR);
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!((r.status, r.headers.get(&HeaderName::MinSe)), (422, Some("90")));
    assert!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).is_empty());
    assert!(rig.cdrs.is_empty(), "a 422 is no call");

    rig.invite_from_branch("3012", "2125550100");
    let first = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    let mut too_small = first.response(422);
    too_small.headers.add(HeaderName::MinSe, "1900");
    assert!(rig.txns.on_response(too_small, rig.now).is_none());
    rig.pump();
    let again = rig.requests_to("127.0.0.1:5080", &Method::INVITE);
    assert_eq!(again.len(), 2, "the same trunk, asked again");
    assert_eq!(again[1].call_id().unwrap(), first.call_id().unwrap());
    assert_eq!(again[1].cseq().unwrap().seq, 2);
    assert_eq!(again[1].headers.get(&HeaderName::SessionExpires), Some("1900"));
    assert_eq!(again[1].headers.get(&HeaderName::MinSe), Some("1900"));
    assert_ne!(again[1].top_via().unwrap().branch(), first.top_via().unwrap().branch());
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty(), "a 422 is no trunk failure");
    rig.answer_with(&again[1], 200, Some(SDP_B), Some("1900;refresher=uac"));
    assert_eq!(rig.acks[0].0.cseq().unwrap().to_string(), "2 ACK");
    assert!(rig.responses().iter().any(|r| r.status == 200));
    // A second 422 asking for no more than was sent is final.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let first = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    let mut same = first.response(422);
    same.headers.add(HeaderName::MinSe, "1800");
    assert!(rig.txns.on_response(same, rig.now).is_none());
    rig.pump();
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 1);
}

#[test]
fn stopping_ends_every_call_with_its_record() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    answered_call(&mut rig);
    rig.invite_from_branch("3012", "2125550111");
    rig.b2bua.shutdown(&mut rig.txns, rig.now);
    rig.pump();
    assert!(rig.b2bua.is_empty());
    assert_eq!(rig.requests_to(REGISTRAR, &Method::BYE).len(), 1);
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1);
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::CANCEL).len(), 1, "the call still ringing is cancelled");
    assert!(rig.responses().iter().any(|r| r.status == 503 && r.call_id().unwrap() == "a-2125550111"));
    let mut ends: Vec<(u16, &str)> = rig.cdrs.iter().map(|c| (c.status, c.end_cause.as_str())).collect();
    ends.sort();
    assert_eq!(ends, [(200, "mediation stopped"), (503, "mediation stopped")]);
}

#[test]
fn an_invite_retransmitted_after_our_2xx_places_no_second_call() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let invite = rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&b, 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    // Our 2xx ended the INVITE server transaction: a late copy starts a new one.
    rig.request(invite.clone(), REGISTRAR);
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 1, "no second call");
    assert_eq!(rig.responses().into_iter().filter(|r| r.status == 200).count(), 2);
    assert_eq!(rig.responses().last().unwrap(), &ok, "our 2xx again, unacknowledged as it is");
    // After the call: 482, still no call.
    rig.request(from_caller(Method::BYE, 2, "a-2125550100", &ok, "z9hG4bK-bye"), REGISTRAR);
    let mut again = invite.clone();
    again.headers.set(HeaderName::Via, format!("SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-other"));
    rig.request(again, REGISTRAR);
    assert_eq!(rig.responses().last().unwrap().status, 482);
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 1);
    assert_eq!(rig.cdrs.len(), 1);
    // 64*T1 on, the same identifiers are a new call.
    rig.now += Duration::from_secs(33);
    let mut later = invite;
    later.headers.set(HeaderName::Via, format!("SIP/2.0/UDP {REGISTRAR};branch=z9hG4bK-later"));
    rig.request(later, REGISTRAR);
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 2);
}

const KEY_A: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
/// AES_256_CM key and salt (RFC 6188: 46 octets).
const KEY_256: &str = "mJ3qVMn0yHTpsJpLfCWdDyE1GmLbsZ/CVAZGiohRaLd5iNcgr/Gt/CkJnEIfnw==";
const KEY_B: &str = "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj";

fn savp(sdp: &str, crypto: &str) -> String {
    format!("{}{crypto}\r\n", sdp.replace("RTP/AVP", "RTP/SAVP"))
}

fn key(suite: Suite, text: &str) -> MasterKey {
    MasterKey::from_base64(suite, text).unwrap()
}

#[test]
fn a_plain_offer_to_a_mandatory_leg_is_answered_488_and_no_trunk_is_tried() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.config.srtp = SrtpPolicy::Mandatory;
    rig.invite_from_branch("3012", "2125550100");
    assert!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).is_empty());
    assert!(rig.responses().iter().any(|r| r.status == 488), "{:?}", rig.responses());
    assert_eq!((rig.cdrs[0].status, rig.cdrs[0].end_cause.as_str()), (488, "refused: Not Acceptable Here"));
    drop(rig);
    assert!(media.remotes.is_empty() && media.crypto.is_empty());
}

#[test]
fn srtp_ends_at_the_relay_with_fresh_keys_of_ours_on_each_leg() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    rig.invite_from_branch_offering("3012", "2125550100", &savp(SDP_A, &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")));
    let invite = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    let offer = String::from_utf8(invite.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30002 RTP/SAVP ") && !offer.contains(KEY_A), "{offer}");
    assert_eq!(offer.matches("a=crypto:").count(), Suite::ALL.len(), "one key a suite: {offer}");
    let ours_b = holdfast_telephony::sdp::SessionDescription::parse(offer.as_bytes()).unwrap().media[0].crypto().nth(1).unwrap().clone();
    rig.answer(&invite, 200, Some(&savp(SDP_B, &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}"))));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).expect("200 relayed");
    let answer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(answer.contains("m=audio 30000 RTP/SAVP "), "{answer}");
    assert_eq!(answer.matches("a=crypto:").count(), 1, "{answer}");
    assert!(answer.contains("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:") && !answer.contains(KEY_A) && !answer.contains(KEY_B), "{answer}");
    let ours_a = holdfast_telephony::sdp::SessionDescription::parse(answer.as_bytes()).unwrap().media[0].crypto().next().unwrap().clone();
    let cdrs = format!("{:?}", rig.cdrs);
    drop(rig);
    let a = LegKeys { inbound: key(Suite::AesCm128HmacSha1_80, KEY_A), outbound: ours_a.key };
    let b = LegKeys { inbound: key(Suite::AesCm128HmacSha1_32, KEY_B), outbound: ours_b.key };
    assert_eq!(media.crypto, [(Side::A, Some(a)), (Side::B, Some(b))]);
    assert!(!cdrs.contains(KEY_A) && !cdrs.contains(KEY_B));
}

#[test]
fn a_mandatory_trunk_answering_plain_is_hung_up_and_the_caller_gets_488() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    rig.invite_from_branch("3012", "2125550100");
    let invite = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    assert!(String::from_utf8_lossy(&invite.body).contains("RTP/SAVP"));
    rig.answer(&invite, 200, Some(SDP_B));
    // The BYE goes to the answer's Contact.
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1);
    assert!(rig.responses().iter().any(|r| r.status == 488));
    assert!(!rig.responses().iter().any(|r| r.status == 200));
    assert_eq!(rig.cdrs[0].status, 488);
}

#[test]
fn a_carrier_may_transfer_only_when_its_trunk_allows_refer() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.plan.trunks.iter_mut().for_each(|t| t.allow_refer = false);
    let (_, b, b_ok) = answered_call(&mut rig);
    rig.request(refer(from_callee(Method::parse("REFER"), 1, &b, &b_ok, "z9hG4bK-crefer"), "2125550199"), "127.0.0.1:5080");
    let r = rig.responses().into_iter().find(|r| r.cseq().unwrap().method.as_str() == "REFER").unwrap();
    assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden (trunk carrier-a may not transfer)"));
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 1, "no call placed for the transfer");
    assert_eq!(rig.b2bua.len(), 1, "the call goes on");
}

#[test]
fn requests_from_neither_the_registrar_nor_a_trunk_are_refused_without_a_record() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let mut invite = branch_invite("3012", "2125550100");
    invite.headers.set(HeaderName::Via, "SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-stranger");
    rig.request(invite, "127.0.0.2:5060");
    assert_eq!(rig.responses().iter().map(|r| r.status).collect::<Vec<_>>(), [403]);
    assert!(rig.cdrs.is_empty(), "a call record for a stranger's INVITE");
    assert!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).is_empty());
    assert_eq!(rig.b2bua.strangers(), 1);
    // The branch's own call goes through.
    rig.invite_from_branch("3012", "2125550100");
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 1);
}

#[test]
fn an_invite_beyond_max_calls_is_refused_503_with_retry_after_and_nothing_kept() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.config.max_calls = 2;
    rig.invite_from_branch("3012", "2125550100");
    rig.invite_from_branch("3012", "2125550101");
    assert_eq!(rig.b2bua.len(), 2);
    rig.invite_from_branch("3012", "2125550102");
    let refused = rig.responses().into_iter().find(|r| r.status >= 200).expect("a final answer");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.headers.get(&HeaderName::parse("Retry-After")), Some("10"));
    assert!(refused.headers.get(&HeaderName::Reason).unwrap().starts_with("Q.850;cause=42"));
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 2, "the third call went nowhere");
    assert_eq!((rig.b2bua.len(), rig.b2bua.recent.len(), rig.b2bua.over_capacity()), (2, 2, 1));
    assert!(rig.cdrs.is_empty(), "a call record for a refused INVITE");
    // A carrier's call is counted against the same limit.
    let mut inbound = branch_invite("2125550199", "+15559873001");
    inbound.headers.set(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-did");
    inbound.headers.set(HeaderName::CallId, "did-1");
    rig.request(inbound, "127.0.0.1:5080");
    assert_eq!(rig.responses().into_iter().filter(|r| r.status == 503).count(), 2);
    assert_eq!(rig.b2bua.over_capacity(), 2);
    // Once a call ends, the next one goes through.
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&b, 486, None);
    assert_eq!(rig.b2bua.len(), 1);
    rig.invite_from_branch("3012", "2125550103");
    assert_eq!(rig.requests_to("127.0.0.1:5080", &Method::INVITE).len(), 3);
}

#[test]
fn a_tls_or_tcp_leg_names_its_transport_in_our_contact() {
    let config = B2buaConfig {
        local: "192.0.2.1:5070".parse().unwrap(),
        tls_local: Some("192.0.2.1:5071".parse().unwrap()),
        registrar: REGISTRAR.parse().unwrap(),
        no_answer: Duration::from_secs(30),
        srtp: SrtpPolicy::Optional,
        max_calls: 200,
    };
    assert_eq!(config.contact(Protocol::Tls), "<sip:mediation@192.0.2.1:5071;transport=tls>");
    assert_eq!(config.contact(Protocol::Tcp), "<sip:mediation@192.0.2.1:5070;transport=tcp>");
    assert_eq!(config.contact(Protocol::Udp), "<sip:mediation@192.0.2.1:5070>");
    assert_eq!(B2buaConfig { tls_local: None, ..config }.contact(Protocol::Tls), "<sip:mediation@192.0.2.1:5070>");
    // A sips: call's Contact is sips: on its TLS legs (RFC 3261 §12.1.1), and only there.
    assert_eq!(config.contact_of(Protocol::Tls, true), "<sips:mediation@192.0.2.1:5071>");
    assert_eq!(config.contact_of(Protocol::Tls, false), config.contact(Protocol::Tls));
    assert_eq!(config.contact_of(Protocol::Udp, true), config.contact(Protocol::Udp));
}

#[test]
fn a_withheld_caller_goes_anonymous_with_privacy_id_both_ways_and_its_number_only_to_trunks() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    // A branch phone withholds its number: the carrier gets an anonymous From, Privacy: id and
    // the number sba-registrar asserted in P-Asserted-Identity (RFC 3325 §9.1).
    let mut invite = branch_invite("3012", "2125550100");
    invite.headers.add(HeaderName::Privacy, "id");
    invite.headers.add(HeaderName::PAssertedIdentity, "<sip:+15559873012@127.0.0.1;user=phone>");
    rig.request(invite, REGISTRAR);
    let out = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    assert_eq!(out.from_header().unwrap().uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert_eq!(out.headers.get(&HeaderName::Privacy), Some("id"));
    assert_eq!(out.headers.get(&HeaderName::PAssertedIdentity), Some("<sip:+15559873012@127.0.0.1:5070;user=phone>"));
    rig.answer(&out, 486, None);
    assert_eq!((rig.cdrs[0].caller.as_str(), rig.cdrs[0].caller_sent.as_str()), ("+15559873012", "anonymous"));

    // The PSTN withholds a caller (the gateway's anonymous From, the number asserted): the branch
    // phone sees anonymous and Privacy: id, and the number nowhere; the record keeps it.
    let mut inbound = branch_invite("anonymous", "+15559873001");
    inbound.headers.set(HeaderName::From, "\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=pstn");
    inbound.headers.add(HeaderName::Privacy, "id");
    inbound.headers.add(HeaderName::PAssertedIdentity, "<sip:+12125550123@127.0.0.1:5080>");
    inbound.headers.set(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-withheld");
    inbound.headers.set(HeaderName::CallId, "did-withheld");
    rig.request(inbound, "127.0.0.1:5080");
    let to_phone = rig.requests_to(REGISTRAR, &Method::INVITE).remove(0);
    assert_eq!(to_phone.from_header().unwrap().uri.to_string(), "sip:anonymous@anonymous.invalid");
    assert_eq!(to_phone.headers.get(&HeaderName::Privacy), Some("id"));
    let wire = String::from_utf8(to_phone.to_bytes().unwrap()).unwrap();
    assert!(!wire.contains("2125550123"), "the withheld number reached the phone:\n{wire}");
    rig.answer(&to_phone, 486, None);
    assert_eq!((rig.cdrs[1].caller.as_str(), rig.cdrs[1].caller_sent.as_str()), ("+12125550123", "anonymous"));

    // A carrier that names the caller in From but asks for privacy: withheld all the same.
    let mut inbound = branch_invite("+12125550124", "+15559873001");
    inbound.headers.add(HeaderName::Privacy, "id");
    inbound.headers.set(HeaderName::Via, "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-named");
    inbound.headers.set(HeaderName::CallId, "did-named");
    rig.request(inbound, "127.0.0.1:5080");
    let to_phone = rig.requests_to(REGISTRAR, &Method::INVITE).remove(1);
    let wire = String::from_utf8(to_phone.to_bytes().unwrap()).unwrap();
    assert!(!wire.contains("2125550124") && wire.contains("Privacy: id"), "{wire}");
}

/// A call from 3012 offering SRTP (tag 7, KEY_A) over a mandatory trunk that answered with tag 2
/// and KEY_B, acknowledged: our 200 to the caller and the key of ours in it.
fn srtp_call(rig: &mut Rig) -> (Response, holdfast_telephony::sdp::Crypto) {
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    rig.invite_from_branch_offering("3012", "2125550100", &savp(SDP_A, &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")));
    let invite = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&invite, 200, Some(&savp(SDP_B, &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}"))));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    rig.ack(&from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-ack"));
    let ours = holdfast_telephony::sdp::SessionDescription::parse(&ok.body).unwrap().media[0].crypto().next().unwrap().clone();
    (ok, ours)
}

/// A re-INVITE from the caller in the call `ok` answered, offering `sdp`; our answer to it, once
/// the carrier answered the relayed offer with `status` (its key unchanged).
fn re_invite(rig: &mut Rig, ok: &Response, seq: u32, sdp: &str, status: u16) -> Response {
    let mut reinvite = from_caller(Method::INVITE, seq, "a-2125550100", ok, &format!("z9hG4bK-re{seq}"));
    reinvite.headers.add(HeaderName::Contact, "<sip:3012@192.0.2.9:5062>");
    reinvite.headers.add(HeaderName::ContentType, "application/sdp");
    reinvite.body = sdp.as_bytes().to_vec();
    let relayed = rig.requests_to("127.0.0.1:5082", &Method::INVITE).len();
    rig.request(reinvite, REGISTRAR);
    let to_b = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    if to_b.len() > relayed {
        let offer = String::from_utf8(to_b[relayed].body.clone()).unwrap();
        assert!(!offer.contains(KEY_A) && offer.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"), "B is offered its own leg's key: {offer}");
        rig.answer(&to_b[relayed], status, (status == 200).then(|| savp(SDP_B, &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}"))).as_deref());
    }
    rig.responses().into_iter().rfind(|r| r.cseq().unwrap().seq == seq && r.status >= 200).expect("an answer to the re-INVITE")
}

#[test]
fn a_re_invite_with_a_new_key_re_keys_its_leg_once_accepted_and_one_without_a_usable_key_is_refused_488() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, ours_a) = srtp_call(&mut rig);
    assert_eq!(rig.b2bua.media.crypto.len(), 2);

    // RFC 4568 §7.1.4: the caller offers a new key under the same tag. Our answer keeps our key;
    // the relay takes the caller's new key once the carrier accepted the relayed offer.
    let new_key = MasterKey::random(Suite::AesCm128HmacSha1_80);
    let rekey = savp(SDP_A, &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}", new_key.to_base64().as_str()));
    let answer = re_invite(&mut rig, &ok, 2, &rekey, 200);
    let body = String::from_utf8(answer.body.clone()).unwrap();
    assert_eq!(answer.status, 200);
    assert!(body.contains(&format!("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}", ours_a.key.to_base64().as_str())), "{body}");
    assert_eq!(rig.b2bua.media.crypto.last(), Some(&(Side::A, Some(LegKeys { inbound: new_key.clone(), outbound: ours_a.key.clone() }))));

    // A plain re-offer, or one whose only key the relay cannot use, on the SRTP leg: 488, nothing
    // relayed, nothing re-keyed; the call goes on.
    for (seq, sdp) in [(3, SDP_A.to_string()), (4, savp(SDP_A, &format!("a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:{KEY_A}{KEY_B}")))] {
        assert_eq!(re_invite(&mut rig, &ok, seq, &sdp, 200).status, 488);
    }
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).len(), 1);
    assert_eq!(rig.b2bua.media.crypto.len(), 3);

    // A re-offer of another suite under another tag: a fresh key of ours for it, under its tag.
    let switch = savp(SDP_A, &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}"));
    let answer = re_invite(&mut rig, &ok, 5, &switch, 200);
    let crypto = holdfast_telephony::sdp::SessionDescription::parse(&answer.body).unwrap().media[0].crypto().cloned().collect::<Vec<_>>();
    assert_eq!(crypto.len(), 1);
    assert_eq!((crypto[0].tag, crypto[0].suite()), (1, Suite::AesCm128HmacSha1_32));
    assert_ne!(crypto[0].key, ours_a.key);
    let switched = LegKeys { inbound: key(Suite::AesCm128HmacSha1_32, KEY_A), outbound: crypto[0].key.clone() };
    assert_eq!(rig.b2bua.media.crypto.last(), Some(&(Side::A, Some(switched))));

    // The carrier refuses a re-offer with a new key: the old keys stay.
    let refused = savp(SDP_A, &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}"));
    assert_eq!(re_invite(&mut rig, &ok, 6, &refused, 488).status, 488);
    assert_eq!(rig.b2bua.media.crypto.len(), 4);
    assert_eq!(rig.b2bua.len(), 1, "the call goes on");
}

/// An INVITE from the branch without a body (a late offer).
fn late_invite(rig: &mut Rig) {
    let mut invite = branch_invite("3012", "2125550100");
    invite.headers.remove_all(&HeaderName::ContentType);
    invite.body.clear();
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(invite, Protocol::Udp, rig.now) else { panic!() };
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
}

/// The crypto lines of a description, in order.
fn crypto_of(body: &[u8]) -> Vec<holdfast_telephony::sdp::Crypto> {
    holdfast_telephony::sdp::SessionDescription::parse(body).unwrap().media[0].crypto().cloned().collect()
}

#[test]
fn a_late_offer_from_a_mandatory_phones_leg_gets_our_srtp_offer_in_the_2xx_and_is_keyed_by_its_ack() {
    // The phones' leg must have SRTP and the phone sent no offer: the carrier (optional) makes
    // the offer, plain; the phone is offered RTP/SAVP with a fresh key a suite, on the relay.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.config.srtp = SrtpPolicy::Mandatory;
    late_invite(&mut rig);
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    assert!(b.body.is_empty(), "the late offer goes on as one");
    rig.answer(&b, 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    let offer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 RTP/SAVP ") && !offer.contains("198.51.100.7"), "{offer}");
    let ours = crypto_of(&ok.body);
    assert_eq!(ours.iter().map(|c| (c.tag, c.suite())).collect::<Vec<_>>(), (1..).zip(Suite::ALL).collect::<Vec<_>>());
    // Until the phone answers, the relay has neither its keys nor its address.
    assert!(rig.b2bua.media.crypto.is_empty() && !rig.b2bua.media.remotes.iter().any(|(s, _)| *s == Side::A));
    let mut ack = from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-lateack");
    ack.body = savp(SDP_A, &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}")).into_bytes();
    rig.ack(&ack);
    rig.pump();
    let for_b = String::from_utf8(rig.acks[0].0.body.clone()).unwrap();
    assert!(for_b.contains("m=audio 30002 RTP/AVP ") && !for_b.contains("a=crypto"), "the carrier's leg stays plain: {for_b}");
    assert_eq!(rig.b2bua.media.crypto, [(Side::A, Some(LegKeys { inbound: key(Suite::AesCm128HmacSha1_32, KEY_A), outbound: ours[1].key.clone() }))]);
    assert!(rig.b2bua.media.remotes.contains(&(Side::A, "192.0.2.9:4000".parse().unwrap())));
    assert_eq!(rig.b2bua.len(), 1);
    // From then on the phone's leg is SRTP: a plain re-offer from it is refused.
    let mut reinvite = from_caller(Method::INVITE, 2, "a-2125550100", &ok, "z9hG4bK-late-re");
    reinvite.headers.add(HeaderName::ContentType, "application/sdp");
    reinvite.body = SDP_A.as_bytes().to_vec();
    rig.request(reinvite, REGISTRAR);
    assert!(rig.responses().iter().any(|r| r.cseq().unwrap().seq == 2 && r.status == 488));

    // The phone answers plain (or with no key we offered): the carrier is acknowledged, then
    // both are hung up; no packet ever had the phone's address.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.config.srtp = SrtpPolicy::Mandatory;
    late_invite(&mut rig);
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&b, 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    let mut ack = from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-lateack");
    ack.body = SDP_A.as_bytes().to_vec();
    rig.ack(&ack);
    rig.pump();
    assert_eq!(rig.acks.len(), 1, "the carrier's 2xx is acknowledged");
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1);
    assert_eq!(rig.requests_to(REGISTRAR, &Method::BYE).len(), 1);
    assert!(rig.b2bua.is_empty());
    assert_eq!(rig.cdrs[0].end_cause, "caller answered without SRTP (srtp = mandatory)");
    assert!(rig.b2bua.media.crypto.is_empty() && !rig.b2bua.media.remotes.iter().any(|(s, _)| *s == Side::A));
}

#[test]
fn a_late_offer_to_a_mandatory_trunk_is_keyed_by_our_ack_or_hung_up() {
    // The trunk must have SRTP and offers it in its 2xx: answered in its ACK with a key of ours,
    // the caller offered plain RTP by the relay.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    late_invite(&mut rig);
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    assert!(b.body.is_empty());
    rig.answer(&b, 200, Some(&savp(SDP_B, &format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"))));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();
    let offer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 RTP/AVP ") && !offer.contains("a=crypto"), "{offer}");
    let mut ack = from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-lateack");
    ack.body = SDP_A.as_bytes().to_vec();
    rig.ack(&ack);
    rig.pump();
    let answer = String::from_utf8(rig.acks[0].0.body.clone()).unwrap();
    assert!(answer.contains("m=audio 30002 RTP/SAVP ") && answer.contains("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"), "{answer}");
    assert!(!answer.contains(KEY_B), "{answer}");
    let ours = holdfast_telephony::sdp::SessionDescription::parse(answer.as_bytes()).unwrap().media[0].crypto().next().unwrap().clone();
    assert_eq!(rig.b2bua.media.crypto, [(Side::B, Some(LegKeys { inbound: key(Suite::AesCm128HmacSha1_80, KEY_B), outbound: ours.key }))]);

    // The trunk must have SRTP and offers plain RTP in its 2xx: ACK, then BYE; the caller gets 488.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    late_invite(&mut rig);
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&b, 200, Some(SDP_B));
    assert_eq!(rig.acks.len(), 1, "the carrier's 2xx is acknowledged");
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1);
    assert!(rig.responses().iter().any(|r| r.status == 488) && !rig.responses().iter().any(|r| r.status == 200));
    assert_eq!(rig.cdrs[0].status, 488);
    assert!(rig.b2bua.media.crypto.is_empty());
}

#[test]
fn a_plain_leg_re_offering_srtp_is_answered_with_a_key_of_ours_and_turns_srtp_once_accepted() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, _, _) = answered_call(&mut rig);
    assert!(rig.b2bua.media.crypto.is_empty());
    let reinvite = |seq: u32, sdp: String| {
        let mut r = from_caller(Method::INVITE, seq, "a-2125550100", &ok, &format!("z9hG4bK-up{seq}"));
        r.headers.add(HeaderName::Contact, "<sip:3012@192.0.2.9:5062>");
        r.headers.add(HeaderName::ContentType, "application/sdp");
        r.body = sdp.into_bytes();
        r
    };
    rig.request(reinvite(2, savp(SDP_A, &format!("a=crypto:5 AES_256_CM_HMAC_SHA1_80 inline:{KEY_256}"))), REGISTRAR);
    // The carrier's leg stays plain: it is offered RTP/AVP on the relay, nothing keyed yet.
    let to_b = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    let offer = String::from_utf8(to_b[0].body.clone()).unwrap();
    assert!(offer.contains("m=audio 30002 RTP/AVP ") && !offer.contains("a=crypto"), "{offer}");
    assert!(rig.b2bua.media.crypto.is_empty());
    rig.answer(&to_b[0], 200, Some(SDP_B));
    let answer = rig.responses().into_iter().rfind(|r| r.cseq().unwrap().seq == 2 && r.status == 200).unwrap();
    let text = String::from_utf8(answer.body.clone()).unwrap();
    assert!(text.contains("m=audio 30000 RTP/SAVP ") && !text.contains(KEY_256), "{text}");
    let ours = crypto_of(&answer.body);
    assert_eq!((ours.len(), ours[0].tag, ours[0].suite()), (1, 5, Suite::AesCm256HmacSha1_80));
    assert_eq!(rig.b2bua.media.crypto, [(Side::A, Some(LegKeys { inbound: key(Suite::AesCm256HmacSha1_80, KEY_256), outbound: ours[0].key.clone() }))]);
    // From then on the leg is SRTP: a plain re-offer is refused and the keys stay.
    rig.request(reinvite(3, SDP_A.to_string()), REGISTRAR);
    assert!(rig.responses().iter().any(|r| r.cseq().unwrap().seq == 3 && r.status == 488));
    assert_eq!(rig.b2bua.media.crypto.len(), 1);

    // A leg whose policy is off: its SRTP re-offer is refused 488, nothing relayed.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.b2bua.config.srtp = SrtpPolicy::Off;
    let (ok, _, _) = answered_call(&mut rig);
    let mut r = from_caller(Method::INVITE, 2, "a-2125550100", &ok, "z9hG4bK-off2");
    r.headers.add(HeaderName::ContentType, "application/sdp");
    r.body = savp(SDP_A, &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_A}")).into_bytes();
    rig.request(r, REGISTRAR);
    assert!(rig.responses().iter().any(|r| r.cseq().unwrap().seq == 2 && r.status == 488));
    assert!(rig.requests_to("127.0.0.1:5082", &Method::INVITE).is_empty());
    assert!(rig.b2bua.media.crypto.is_empty());
}

#[test]
fn a_transfer_target_on_a_mandatory_trunk_is_offered_srtp_and_the_transferee_stays_plain() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, b, _) = answered_call(&mut rig);
    // The phone (plain) transfers the carrier (plain) to a number whose trunk must have SRTP.
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    rig.request(refer(from_caller(Method::parse("REFER"), 2, "a-2125550100", &ok, "z9hG4bK-refer"), "2125550199"), REGISTRAR);
    let c = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(1);
    let offer = String::from_utf8(c.body.clone()).unwrap();
    assert!(offer.contains("m=audio 30000 RTP/SAVP ") && !offer.contains("198.51.100.7"), "{offer}");
    let ours = crypto_of(&c.body);
    assert_eq!(ours.len(), Suite::ALL.len());
    rig.answer(&c, 200, Some(&savp(SDP_C, &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"))));
    // The target's keys on the referrer's side of the relay; the transferee re-offered plain.
    assert_eq!(rig.b2bua.media.crypto, [(Side::A, Some(LegKeys { inbound: key(Suite::AesCm128HmacSha1_80, KEY_B), outbound: ours[0].key.clone() }))]);
    let reinvite = rig.requests_to("127.0.0.1:5082", &Method::INVITE);
    assert_eq!(reinvite[0].call_id().unwrap(), b.call_id().unwrap());
    let reoffer = String::from_utf8(reinvite[0].body.clone()).unwrap();
    assert!(reoffer.contains("m=audio 30002 RTP/AVP ") && !reoffer.contains("a=crypto"), "{reoffer}");
    assert_eq!(rig.cdrs[0].end_cause, "transferred to 2125550199 by 3012");

    // A target that answers such an offer plain is hung up; the transfer fails 488 and the
    // call goes on as it was.
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let (ok, _, _) = answered_call(&mut rig);
    rig.b2bua.plan.trunks[0].srtp = SrtpPolicy::Mandatory;
    rig.request(refer(from_caller(Method::parse("REFER"), 2, "a-2125550100", &ok, "z9hG4bK-refer"), "2125550199"), REGISTRAR);
    let c = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(1);
    rig.answer(&c, 200, Some(SDP_C));
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1, "the target is hung up");
    assert!(rig.requests_to(REGISTRAR, &Method::BYE).is_empty(), "the referrer stays");
    assert_eq!(notifies(&rig, REGISTRAR).last().unwrap().0, "SIP/2.0 488 Not Acceptable Here");
    assert_eq!(rig.b2bua.len(), 1);
    assert!(rig.b2bua.media.crypto.is_empty());
}

#[test]
fn a_sips_request_uri_is_refused_416_when_no_trunk_of_its_route_is_tls() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let mut r = branch_invite("3012", "2125550100");
    r.uri = Uri::parse("sips:2125550100@127.0.0.1:5070;user=phone").unwrap();
    let Ok(Inbound::Request { id, request }) = rig.txns.on_request(r, Protocol::Udp, rig.now) else { panic!() };
    rig.b2bua.on_request(&mut rig.txns, id, request, REGISTRAR.parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
    let r = rig.responses().into_iter().find(|r| r.status >= 200).unwrap();
    assert_eq!(r.status, 416, "{r:?}");
    // Nothing left for the UDP carriers: the number never crossed a plain hop.
    assert!(rig.sent.iter().all(|t| !matches!(t, Transmit::Request { .. })), "{:?}", rig.sent);
    assert_eq!(rig.cdrs.len(), 1);
}

#[test]
fn a_sips_request_uri_goes_on_as_sips_to_the_tls_trunks_only() {
    let target = |name: &str, transport| super::Target {
        hop: super::Hop::Trunk(name.into()),
        dest: "192.0.2.7:5061".parse().unwrap(),
        transport,
        called: "+12125550100".into(),
        calling: None,
        withheld: false,
        sips: false,
        bypass: false,
        srtp: SrtpPolicy::Off,
    };
    let sips = Uri::parse("sips:2125550100@192.0.2.1").unwrap();
    let mut targets = vec![target("udp", Protocol::Udp), target("tls", Protocol::Tls), target("tcp", Protocol::Tcp)];
    super::sips_only_over_tls(&sips, &mut targets).unwrap();
    assert_eq!(targets.iter().map(|t| (t.hop.to_string(), t.sips)).collect::<Vec<_>>(), [("tls".to_string(), true)]);
    let mut ids = Ids::seeded(1);
    let b = super::messages::new_invite(&targets[0], "192.0.2.1:5070".parse().unwrap(), "<sips:mediation@192.0.2.1:5071>", 70, vec![], &mut ids);
    assert_eq!(b.uri.to_string(), "sips:+12125550100@192.0.2.7:5061;user=phone");
    // A sip: Request-URI keeps every target as it was.
    let mut targets = vec![target("udp", Protocol::Udp), target("tls", Protocol::Tls)];
    super::sips_only_over_tls(&Uri::parse("sip:2125550100@192.0.2.1").unwrap(), &mut targets).unwrap();
    assert_eq!(targets.len(), 2);
    assert!(targets.iter().all(|t| !t.sips));
}

/// Call-ID and tags are no secret from whoever saw a call: a request in a dialog is served only
/// from that leg's peer (`trust::speaks_for`); another peer's is refused 403 (an ACK dropped),
/// counted, and reaches neither side, while the call's own peers go on.
#[test]
fn requests_in_a_dialog_from_another_than_its_leg_s_peer_are_refused_and_reach_no_one() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    let b_ok = rig.answer(&b, 200, Some(SDP_B));
    let ok = rig.responses().into_iter().find(|r| r.status == 200).unwrap();

    // The phone's ACK from the call's own trunk is no ACK: our 2xx still waits for the phone's.
    let ack = from_caller(Method::ACK, 1, "a-2125550100", &ok, "z9hG4bK-ack");
    rig.b2bua.on_ack(&mut rig.txns, &ack, "127.0.0.1:5080".parse().unwrap(), Protocol::Udp, rig.now);
    rig.b2bua.handle_timeout(&mut rig.txns, rig.now + Duration::from_millis(500));
    rig.pump();
    assert_eq!(rig.retransmitted.len(), 1, "a forged ACK stopped our 2xx");
    rig.ack(&ack);

    let mut hijack = from_callee(Method::INVITE, 1, &b, &b_ok, "z9hG4bK-f2");
    hijack.headers.add(HeaderName::Contact, "<sip:x@127.0.0.1:5082>");
    hijack.headers.add(HeaderName::ContentType, "application/sdp");
    hijack.body = SDP_C.as_bytes().to_vec();
    let forged = [
        // The phone's leg from the call's own trunk and from another trunk.
        (from_caller(Method::BYE, 2, "a-2125550100", &ok, "z9hG4bK-f1"), "127.0.0.1:5080"),
        (from_caller(Method::parse("INFO"), 2, "a-2125550100", &ok, "z9hG4bK-f5"), "127.0.0.1:5084"),
        // The carrier's leg from the branch and from another trunk.
        (hijack, REGISTRAR),
        (from_callee(Method::BYE, 1, &b, &b_ok, "z9hG4bK-f3"), "127.0.0.1:5082"),
        (refer(from_callee(Method::parse("REFER"), 1, &b, &b_ok, "z9hG4bK-f4"), "2125550199"), "127.0.0.1:5084"),
    ];
    let sent = rig.sent.len();
    for (request, source) in forged {
        rig.request(request, source);
    }
    let answers: Vec<(u16, String)> = rig.sent[sent..]
        .iter()
        .map(|t| match t {
            Transmit::Response { response, .. } => (response.status, response.reason.clone()),
            other => panic!("a forged request reached a side: {other:?}"),
        })
        .collect();
    assert_eq!(answers, vec![(403, "Forbidden (not this dialog's peer)".to_string()); 5]);
    assert_eq!((rig.b2bua.foreign_in_dialog(), rig.b2bua.strangers(), rig.b2bua.len()), (6, 0, 1));
    assert!(rig.cdrs.is_empty());

    // The peers' own requests are served: the carrier's hold, then the phone's BYE.
    let mut hold = from_callee(Method::INVITE, 1, &b, &b_ok, "z9hG4bK-hold");
    hold.headers.add(HeaderName::Contact, "<sip:carrier@127.0.0.1:5082>");
    rig.request(hold, "127.0.0.1:5080");
    assert_eq!(rig.requests_to(REGISTRAR, &Method::INVITE).len(), 1, "the carrier's re-INVITE reaches the phone");
    rig.request(from_caller(Method::BYE, 2, "a-2125550100", &ok, "z9hG4bK-bye"), REGISTRAR);
    assert_eq!(rig.requests_to("127.0.0.1:5082", &Method::BYE).len(), 1);
    assert_eq!(rig.cdrs[0].end_cause, "BYE from caller");
    drop(rig);
    assert!(media.remotes.iter().all(|(_, rtp)| rtp.port() != 7000), "the forged offer reached the relay");
}

/// A CANCEL of the phone's INVITE from a trunk is refused 403 and cancels nothing.
#[test]
fn a_cancel_from_another_than_the_caller_s_peer_is_refused_and_the_call_goes_on() {
    let mut media = FakeMedia { remotes: vec![], released: 0, idle: vec![], crypto: vec![] };
    let mut rig = Rig::new(&mut media, &[]);
    let invite = rig.invite_from_branch("3012", "2125550100");
    let b = rig.requests_to("127.0.0.1:5080", &Method::INVITE).remove(0);
    rig.answer(&b, 180, None);
    let mut cancel = holdfast_sip::transaction::cancel_for(&invite).unwrap();
    cancel.headers.set(HeaderName::Via, invite.headers.get(&HeaderName::Via).unwrap());
    let Ok(Inbound::Cancel { invite: Some(server), .. }) = rig.txns.on_request(cancel, Protocol::Udp, rig.now) else { panic!() };
    let status = rig.b2bua.on_cancel(&mut rig.txns, server, "127.0.0.1:5080".parse().unwrap(), Protocol::Udp, rig.now);
    rig.pump();
    assert_eq!((status, rig.b2bua.foreign_in_dialog()), (403, 1));
    assert!(rig.requests_to("127.0.0.1:5080", &Method::CANCEL).is_empty(), "the trunk was cancelled");
    rig.answer(&b, 200, Some(SDP_B));
    assert!(rig.responses().iter().any(|r| r.status == 200 && r.cseq().unwrap().method == Method::INVITE), "the call is answered");
}
