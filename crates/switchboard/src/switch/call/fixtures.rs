//! A call as the tests of the call core build it: arrived from a trunk, rung, answered —
//! with no switch and no sockets.

use super::timers::CallTimer;
use super::{AgentLeg, Arrival, Call, CallState, TrunkLeg};
use crate::switch::identity::CallerIdentity;
use crate::switch::uac_leg::UacLeg;
use crate::switch::wall_clock::WallClock;
use sip::dialog::Dialog;
use sip::rsip::{Request, Response, SipMessage};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::{Duration, Instant};

/// How long an agent's phone rings before the attempt is given up.
pub(super) const RING_TIME: Duration = Duration::from_secs(20);

/// Our Via on the ACK of a phone's 2xx.
pub(super) const ACK_VIA: &str = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack";

pub(super) fn trunk_peer() -> Peer {
    Peer::udp("127.0.0.1:5999".parse().expect("addr"))
}

pub(super) fn phone_peer() -> Peer {
    Peer::udp("127.0.0.1:6001".parse().expect("addr"))
}

pub(super) fn request(text: &str) -> Request {
    match sip::parse::parse(text.as_bytes()).expect("valid SIP") {
        SipMessage::Request(request) => request,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

/// A call from the trunk to DID 100, not answered by anyone yet, media not anchored.
pub(super) fn arrived(now: Instant) -> Call {
    let invite = request(
        "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKtrunk;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=caller\r\n\
Call-ID: call-core-1\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.1:5999>\r\n\
Content-Length: 0\r\n\r\n",
    );
    let trunk_leg = TrunkLeg {
        server_key: TransactionKey::of_received_request(&invite).expect("a key"),
        dialog: Dialog::new_uas(&invite, "ours", trunk_peer()).expect("a dialog"),
        local_tag: "ours".to_owned(),
        invite: invite.clone(),
        finalized: false,
        ringing_sent: false,
        session_timer: None,
        refresh_in_flight: None,
        reinvite_pending: false,
    };
    let arrival = Arrival {
        id: 7,
        trunk: "carrier".to_owned(),
        did: "100".to_owned(),
        identity: CallerIdentity::of(&invite.headers, false),
        queue: "support".to_owned(),
        priority: 0,
        label: None,
        language: None,
    };
    Call::new(
        arrival,
        trunk_leg,
        None,
        now,
        WallClock::anchored(now, 1_800_000_000),
    )
}

/// Rings agent 1001's phone for attempt `attempt`, as the switch does on an ACD offer.
pub(super) fn ring(call: &mut Call, at: Instant, attempt: u32) {
    let invite = request(&format!(
        "INVITE sip:1001@127.0.0.1:6001 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKagent{attempt};rport\r\n\
Max-Forwards: 69\r\nTo: <sip:1001@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=sw{attempt}\r\n\
Call-ID: attempt-{attempt}@switchboard\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:switchboard@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n"
    ));
    let key = TransactionKey::of_sent_request(&invite).expect("a key");
    call.agent_leg = Some(AgentLeg {
        agent: acd::AgentId::from("1001"),
        attempt,
        uac: UacLeg::calling(invite, key, phone_peer(), at),
        accepts_info: false,
    });
    call.attempts = attempt;
    call.state = CallState::Offering;
    call.last_offered = Some(at);
    call.timers.set(CallTimer::Ring, at + RING_TIME);
}

pub(super) fn provisional(call: &Call, code: u16) -> Response {
    let leg = call.agent_leg.as_ref().expect("an attempt");
    sip::message::response_to(&leg.uac.invite, code, Some("phone"))
}

/// Connects the ringing attempt: the phone's 200 is taken and the trunk answered.
pub(super) fn connect(call: &mut Call, at: Instant) {
    phone_answers(call, at);
    call.state = CallState::Connected;
    call.answered = Some(at);
    call.trunk_leg.finalized = true;
}

pub(super) fn phone_ok(call: &Call, allow: &str, sdp: &str) -> Response {
    let leg = call.agent_leg.as_ref().expect("ringing");
    let mut ok = sip::message::response_to(&leg.uac.invite, 200, Some("phone"));
    sip::message::push_header(&mut ok.headers, "Contact", "<sip:1001@127.0.0.1:6001>");
    sip::message::push_header(&mut ok.headers, "Allow", allow);
    if !sdp.is_empty() {
        sip::message::push_header(&mut ok.headers, "Content-Type", "application/sdp");
        ok.body = sdp.as_bytes().to_vec();
    }
    ok
}

/// The ringing attempt's leg takes the phone's 200 at `at` (the call itself is not told).
pub(super) fn phone_answers(call: &mut Call, at: Instant) {
    let ok = phone_ok(call, "INVITE, ACK, BYE", "");
    let leg = call.agent_leg.as_mut().expect("ringing");
    leg.uac
        .answer(at, &ok, phone_peer(), ACK_VIA)
        .expect("a usable 2xx");
}

/// Gives the call media anchored by Switchboard (ports from a pool no socket is bound for),
/// as a call from a trunk that offered PCMU has.
pub(super) fn anchor(call: &mut Call) {
    let mut plane = crate::switch::media_plane::MediaPlane::new(&crate::config::MediaConfig {
        address: "127.0.0.1".parse().expect("ip"),
        public_address: None,
        rtp_port_min: 40000,
        rtp_port_max: 40007,
        timeout: None,
        prompts_dir: None,
        recordings_dir: "/tmp".into(),
        allow_sdes_without_tls: false,
        workers: Some(1),
    })
    .expect("a valid port range");
    let offer = b"v=0\r\no=gw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    let (media, _answer) = plane.anchor_answered(offer, None).expect("PCMU offered");
    call.media = Some(media);
}

/// A request inside one of the call's dialogs, as the far end sends it (the call trusts the
/// switch to have matched its Call-ID and tags).
pub(super) fn in_dialog(method: &str, cseq: u32, headers: &str, body: &str) -> Request {
    request(&format!(
        "{method} sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKindialog{cseq}{method}\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>;tag=ours\r\nFrom: <sip:2000@127.0.0.1>;tag=caller\r\n\
Call-ID: call-core-1\r\nCSeq: {cseq} {method}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}
