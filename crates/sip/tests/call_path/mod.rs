//! One call's SIP messages through this crate the way Switchboard's call control drives it,
//! shared by the allocation test (`tests/call_allocations.rs`) and the criterion bench
//! (`benches/message_path.rs`), so both measure the same path.
//!
//! Trunk side: the INVITE is parsed and handed to the transaction layer, answered 100, 180
//! and 200 (with SDP) through `response_to`, its ACK matched, its BYE answered 200. Agent
//! side: an INVITE built as `switch/b2bua.rs` builds it (SDP copied), its 180 and 200 parsed,
//! the dialog confirmed and the ACK sent, then a BYE inside that dialog and its 200.
//!
//! What Switchboard computes itself (fresh branches and tags, its Via strings) and the bytes
//! that arrive from peers are prepared beforehand in a [`Wire`], so a measurement counts only
//! this crate's work.

#![allow(dead_code)] // each user takes the parts it measures

use sip::dialog::{copy_body, Dialog};
use sip::message::{encode_request, push_header, response_to};
use sip::rsip::headers::{CSeq, CallId, Contact, From, MaxForwards, To, UntypedHeader, Via};
use sip::rsip::{Header, Headers, Method, Request, Response, SipMessage};
use sip::transaction::{TransactionEvent, TransactionKey, TransactionLayer};
use sip::Peer;
use std::time::Instant;

/// Where the trunk and the agent's phone are.
pub fn trunk() -> Peer {
    Peer::udp("127.0.0.1:5070".parse().expect("test address"))
}

pub fn agent() -> Peer {
    Peer::udp("127.0.0.1:6000".parse().expect("test address"))
}

pub const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

/// Steps of a call, in order; the allocation test reports per step.
pub const STEPS: [&str; 12] = [
    "trunk INVITE parsed + layer",
    "100 built + sent",
    "agent INVITE built + sent",
    "agent 180 parsed + layer",
    "180 built + sent",
    "agent 200 parsed + layer",
    "agent ACK built + sent",
    "200 (SDP) built + sent",
    "trunk ACK parsed + layer",
    "trunk BYE parsed, 200 sent",
    "agent BYE built + sent",
    "agent 200 (BYE) parsed + layer",
];

/// Everything about one call that comes from outside this crate: peers' bytes, and the
/// branches, tags and Vias Switchboard generates.
pub struct Wire {
    pub trunk_invite: Vec<u8>,
    pub trunk_ack: Vec<u8>,
    pub trunk_bye: Vec<u8>,
    pub agent_180: Vec<u8>,
    pub agent_200: Vec<u8>,
    pub agent_bye_200: Vec<u8>,
    pub agent_invite_via: String,
    pub agent_ack_via: String,
    pub agent_bye_via: String,
    pub call_id: String,
    pub from_tag: String,
    /// Our tag toward the trunk.
    pub trunk_tag: String,
}

fn with_sdp(head: &str) -> Vec<u8> {
    format!(
        "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    )
    .into_bytes()
}

impl Wire {
    /// Call number `n`: every Call-ID and branch differs from call to call.
    pub fn new(n: usize) -> Self {
        let trunk_dialog = |via: &str, to_tag: &str, cseq: &str| {
            format!(
                "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{n}-{via}\r\n\
                 From: \"Trunk\" <sip:+15551230000@127.0.0.1:5070>;tag=trunk{n}\r\n\
                 To: <sip:+15559870000@127.0.0.1:5060>{to_tag}\r\n\
                 Call-ID: {n}-4711@127.0.0.1\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n"
            )
        };
        let trunk_invite = with_sdp(&format!(
            "INVITE sip:+15559870000@127.0.0.1:5060 SIP/2.0\r\n{}\
             Contact: <sip:trunk@127.0.0.1:5070>\r\nUser-Agent: carrier\r\n",
            trunk_dialog("inv", "", "1 INVITE")
        ));
        let trunk_tag = format!("sb{n}");
        let to_tag = format!(";tag={trunk_tag}");
        let trunk_ack = format!(
            "ACK sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            trunk_dialog("ack", &to_tag, "1 ACK")
        )
        .into_bytes();
        let trunk_bye = format!(
            "BYE sip:switchboard@127.0.0.1:5060 SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            trunk_dialog("bye", &to_tag, "2 BYE")
        )
        .into_bytes();

        let agent_invite_via =
            format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKagentinv{n};rport");
        let call_id = format!("sbcall{n}-1@switchboard");
        let from_tag = format!("sbfrom{n}");
        let agent_dialog = |via: &str, cseq: &str| {
            format!(
                "Via: {};received=127.0.0.1;rport=5060\r\n\
                 From: \"Trunk\" <sip:+15551230000@127.0.0.1:5060>;tag={from_tag}\r\n\
                 To: <sip:agent7@127.0.0.1>;tag=phone{n}\r\n\
                 Call-ID: {call_id}\r\nCSeq: {cseq}\r\n",
                via.trim_end_matches(";rport")
            )
        };
        let agent_180 = format!(
            "SIP/2.0 180 Ringing\r\n{}Contact: <sip:agent7@127.0.0.1:6000>\r\nContent-Length: 0\r\n\r\n",
            agent_dialog(&agent_invite_via, "1 INVITE")
        )
        .into_bytes();
        let agent_200 = with_sdp(&format!(
            "SIP/2.0 200 OK\r\n{}Contact: <sip:agent7@127.0.0.1:6000>\r\n\
             Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n",
            agent_dialog(&agent_invite_via, "1 INVITE")
        ));
        let agent_bye_via = format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKagentbye{n};rport");
        let agent_bye_200 = format!(
            "SIP/2.0 200 OK\r\n{}Content-Length: 0\r\n\r\n",
            agent_dialog(&agent_bye_via, "2 BYE")
        )
        .into_bytes();
        Self {
            trunk_invite,
            trunk_ack,
            trunk_bye,
            agent_180,
            agent_200,
            agent_bye_200,
            agent_invite_via,
            agent_ack_via: format!("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKagentack{n};rport"),
            agent_bye_via,
            call_id,
            from_tag,
            trunk_tag,
        }
    }
}

fn parse(bytes: &[u8]) -> SipMessage {
    sip::parse::parse(bytes).expect("scenario message parses")
}

/// The first event the layer has for the TU: the request or response just handed to it.
fn take_request(layer: &mut TransactionLayer) -> (Option<TransactionKey>, Request) {
    match layer.poll_event() {
        Some(TransactionEvent::Request { key, request, .. }) => (key, request),
        other => panic!("a request expected, got {other:?}"),
    }
}

fn take_response(layer: &mut TransactionLayer) -> Response {
    match layer.poll_event() {
        Some(TransactionEvent::Response { response, .. }) => response,
        other => panic!("a response expected, got {other:?}"),
    }
}

/// Drains what the layer wants sent, as the I/O loop does; returns the bytes written.
fn flush(layer: &mut TransactionLayer) -> usize {
    let mut bytes = 0;
    while let Some(transmit) = layer.poll_transmit() {
        bytes += transmit.data.len();
    }
    bytes
}

/// The agent INVITE, header by header as `switch/b2bua.rs` writes it.
fn agent_invite(wire: &Wire, trunk_invite: &Request) -> Request {
    let mut headers = Headers::default();
    headers.push(Header::Via(Via::new(wire.agent_invite_via.as_str())));
    headers.push(Header::MaxForwards(MaxForwards::new("69")));
    headers.push(Header::From(From::new(format!(
        "\"Trunk\" <sip:+15551230000@127.0.0.1:5060>;tag={}",
        wire.from_tag
    ))));
    headers.push(Header::To(To::new("<sip:agent7@127.0.0.1>")));
    headers.push(Header::CallId(CallId::new(wire.call_id.as_str())));
    headers.push(Header::CSeq(CSeq::new("1 INVITE")));
    headers.push(Header::Contact(Contact::new(
        "<sip:switchboard@127.0.0.1:5060>",
    )));
    push_header(
        &mut headers,
        "Allow",
        "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY",
    );
    push_header(&mut headers, "X-Switchboard-Call", "42");
    push_header(&mut headers, "X-Switchboard-Queue", "support");
    push_header(&mut headers, "X-Switchboard-DID", "+15559870000");
    let mut invite = Request {
        method: Method::Invite,
        uri: sip::rsip::Uri::try_from("sip:agent7@127.0.0.1:6000").expect("test URI"),
        version: sip::rsip::Version::V2,
        headers,
        body: Vec::new(),
    };
    copy_body(
        &trunk_invite.headers,
        &trunk_invite.body,
        &mut invite.headers,
        &mut invite.body,
    );
    invite
}

/// Runs one call; `step(i)` is called after step `i` of [`STEPS`]. Returns the bytes sent.
pub fn one_call(
    layer: &mut TransactionLayer,
    now: Instant,
    wire: &Wire,
    mut step: impl FnMut(usize),
) -> usize {
    let (trunk, agent) = (trunk(), agent());
    let mut sent = 0;

    layer.handle_message(now, parse(&wire.trunk_invite), trunk);
    let (key, invite) = take_request(layer);
    let invite_key = key.expect("the INVITE opens a transaction");
    let trunk_dialog = Dialog::new_uas(&invite, &wire.trunk_tag, trunk).expect("trunk dialog");
    step(0);

    layer
        .send_response(now, &invite_key, response_to(&invite, 100, None))
        .expect("100");
    sent += flush(layer);
    step(1);

    let agent_invite = agent_invite(wire, &invite);
    // Call control keeps the INVITE (its leg builds the CANCEL and ACK from it).
    layer.send_kept_request(now, &agent_invite, agent);
    sent += flush(layer);
    step(2);

    layer.handle_message(now, parse(&wire.agent_180), agent);
    let _ringing = take_response(layer);
    step(3);

    let mut ringing = response_to(&invite, 180, Some(&trunk_dialog.local_tag));
    push_header(
        &mut ringing.headers,
        "Contact",
        "<sip:switchboard@127.0.0.1:5060>",
    );
    layer.send_response(now, &invite_key, ringing).expect("180");
    sent += flush(layer);
    step(4);

    layer.handle_message(now, parse(&wire.agent_200), agent);
    let answer = take_response(layer);
    step(5);

    let (mut agent_dialog, ack) =
        Dialog::confirm_2xx(&agent_invite, &answer, agent, &wire.agent_ack_via).expect("2xx");
    // The leg keeps the ACK's bytes for retransmissions of the 2xx (switch/uac_leg.rs).
    let _kept = encode_request(&ack);
    layer.send_stateless(SipMessage::Request(ack), agent);
    sent += flush(layer);
    step(6);

    let mut ok = response_to(&invite, 200, Some(&trunk_dialog.local_tag));
    push_header(
        &mut ok.headers,
        "Contact",
        "<sip:switchboard@127.0.0.1:5060>",
    );
    push_header(&mut ok.headers, "Content-Type", "application/sdp");
    ok.body = answer.body.clone();
    layer.send_response(now, &invite_key, ok).expect("200");
    sent += flush(layer);
    step(7);

    layer.handle_message(now, parse(&wire.trunk_ack), trunk);
    let (_, _ack) = take_request(layer);
    step(8);

    layer.handle_message(now, parse(&wire.trunk_bye), trunk);
    let (key, bye) = take_request(layer);
    let bye_key = key.expect("the BYE opens a transaction");
    layer
        .send_response(now, &bye_key, response_to(&bye, 200, None))
        .expect("200 to BYE");
    sent += flush(layer);
    step(9);

    let bye = agent_dialog.request(Method::Bye, &wire.agent_bye_via, None, None);
    layer.send_request(now, bye, agent);
    sent += flush(layer);
    step(10);

    layer.handle_message(now, parse(&wire.agent_bye_200), agent);
    let _done = take_response(layer);
    assert!(layer.poll_event().is_none(), "every event was taken");
    step(11);
    sent
}
