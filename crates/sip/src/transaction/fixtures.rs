//! Test fixtures: RFC 3261 §24-style messages, peers, a fake clock and output drains.

use super::{TimerConfig, TransactionEvent, TransactionKey, TransactionLayer};
use crate::{Peer, Transmit};
use rsip::{Headers, Request, Response, SipMessage};
use std::time::{Duration, Instant};

/// Alice's INVITE to Bob (RFC 3261 §24.2 F1, with a Route set and no body).
pub const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
    Max-Forwards: 70\r\n\
    Route: <sip:p1.example.com;lr>\r\n\
    To: Bob <sip:bob@biloxi.com>\r\n\
    From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710\r\n\
    CSeq: 314159 INVITE\r\n\
    Contact: <sip:alice@pc33.atlanta.com>\r\n\
    Content-Length: 0\r\n\r\n";

/// An OPTIONS query (RFC 3261 §11.1).
pub const OPTIONS: &str = "OPTIONS sip:carol@chicago.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKhjhs8ass877\r\n\
    Max-Forwards: 70\r\n\
    To: <sip:carol@chicago.com>\r\n\
    From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710\r\n\
    CSeq: 63104 OPTIONS\r\n\
    Contact: <sip:alice@pc33.atlanta.com>\r\n\
    Accept: application/sdp\r\n\
    Content-Length: 0\r\n\r\n";

/// Bob hangs up (RFC 3261 §24.2 F13).
pub const BYE: &str = "BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n\
    Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10\r\n\
    Max-Forwards: 70\r\n\
    From: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
    To: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
    Call-ID: a84b4c76e66710\r\n\
    CSeq: 231 BYE\r\n\
    Content-Length: 0\r\n\r\n";

/// A layer with RFC default timers and the fake clock's start.
pub fn layer() -> (TransactionLayer, Instant) {
    (
        TransactionLayer::new(TimerConfig::default()),
        Instant::now(),
    )
}

pub fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn addr(text: &str) -> std::net::SocketAddr {
    text.parse().expect("fixture address")
}

/// Alice's phone as a UDP source.
pub fn alice_udp() -> Peer {
    Peer::udp(addr("192.0.2.10:5060"))
}

/// Where responses to Alice's UDP requests go (received = source, sent-by has no port).
pub fn alice_response_peer() -> Peer {
    Peer::udp(addr("192.0.2.10:5060"))
}

/// Alice over a TCP connection.
pub fn alice_tcp() -> Peer {
    Peer::tcp(addr("192.0.2.10:50600"))
}

/// Bob's phone over UDP.
pub fn bob_udp() -> Peer {
    Peer::udp(addr("192.0.2.20:5060"))
}

/// Bob over TCP.
pub fn bob_tcp() -> Peer {
    Peer::tcp(addr("192.0.2.20:5060"))
}

pub fn request(text: &str) -> Request {
    Request::try_from(text).expect("fixture request parses")
}

pub fn response(text: &str) -> Response {
    Response::try_from(text).expect("fixture response parses")
}

pub fn incoming_request(text: &str) -> SipMessage {
    request(text).into()
}

pub fn incoming_response(text: &str) -> SipMessage {
    response(text).into()
}

/// A response to the request in `request_text` as a UAS would write it (§8.2.6.2).
pub fn reply(request_text: &str, status: &str, to_tag: Option<&str>) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for line in request_text.split("\r\n") {
        let copied = ["Via:", "From:", "Call-ID:", "CSeq:"]
            .iter()
            .any(|p| line.starts_with(p));
        if copied {
            text.push_str(line);
            text.push_str("\r\n");
        } else if line.starts_with("To:") {
            text.push_str(line);
            if let Some(tag) = to_tag.filter(|_| !line.contains("tag=")) {
                text.push_str(";tag=");
                text.push_str(tag);
            }
            text.push_str("\r\n");
        }
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text
}

/// `invite_text` turned into another method on the same transaction (ACK or CANCEL).
pub fn same_branch(invite_text: &str, method: &str) -> String {
    invite_text
        .replacen("INVITE sip", &format!("{method} sip"), 1)
        .replace(" INVITE\r\n", &format!(" {method}\r\n"))
}

/// The ACK for a non-2xx final: same branch, To with the UAS tag (§17.1.1.3).
pub fn non_2xx_ack(invite_text: &str, to_tag: &str) -> String {
    let ack = same_branch(invite_text, "ACK");
    ack.replace(
        "To: Bob <sip:bob@biloxi.com>\r\n",
        &format!("To: Bob <sip:bob@biloxi.com>;tag={to_tag}\r\n"),
    )
}

/// The ACK for a 2xx: a new transaction with its own branch (§13.2.2.4).
pub fn ack_2xx(invite_text: &str, to_tag: &str, branch: &str) -> String {
    non_2xx_ack(invite_text, to_tag).replace("z9hG4bKnashds8", branch)
}

pub fn sent(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

pub fn events(layer: &mut TransactionLayer) -> Vec<TransactionEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

/// Drains events, which must all be responses, as (key, status code).
pub fn response_codes(layer: &mut TransactionLayer) -> Vec<(Option<TransactionKey>, u16)> {
    events(layer)
        .into_iter()
        .map(|e| match e {
            TransactionEvent::Response { key, response, .. } => (key, response.status_code.code()),
            other => panic!("expected a response event, got {other:?}"),
        })
        .collect()
}

/// Drains events, which must be exactly one keyed request, and returns its key.
pub fn single_request_key(layer: &mut TransactionLayer) -> TransactionKey {
    match &events(layer)[..] {
        [TransactionEvent::Request { key: Some(key), .. }] => key.clone(),
        other => panic!("expected one new request, got {other:?}"),
    }
}

pub fn parsed_request(transmit: &Transmit) -> Request {
    Request::try_from(transmit.data.clone()).expect("sent request parses")
}

pub fn parsed_response(transmit: &Transmit) -> Response {
    Response::try_from(transmit.data.clone()).expect("sent response parses")
}

/// Values of every header called `name`, in order.
pub fn header_of(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter_map(|h| {
            let text = h.to_string();
            let (n, v) = text.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
        .collect()
}

pub fn header(request: &Request, name: &str) -> Vec<String> {
    header_of(&request.headers, name)
}
