//! Scenarios across transactions: CANCEL matching, Via stamping and response routing, strays,
//! malformed input, clean-up to zero, and a property test over random message streams.

use super::fixtures::*;
use super::generated::response_for;
use super::{TimerConfig, TransactionError, TransactionEvent, TransactionKey, TransactionLayer};
use crate::Peer;
use proptest::prelude::*;
use rsip::{Method, Request, SipMessage};
use std::time::{Duration, Instant};

/// Runs every timer until none is left; returns the instant of the last one.
fn run_all_timers(layer: &mut TransactionLayer, mut now: Instant) -> Instant {
    while let Some(at) = layer.poll_timeout() {
        now = now.max(at);
        layer.handle_timeout(now);
        sent(layer);
    }
    now
}

fn delivered_request(layer: &mut TransactionLayer) -> (TransactionKey, Request) {
    match events(layer).into_iter().next() {
        Some(TransactionEvent::Request {
            key: Some(key),
            request,
            ..
        }) => (key, request),
        other => panic!("expected a keyed request, got {other:?}"),
    }
}

#[test]
fn cancel_in_proceeding_gets_200_with_the_invite_tag_and_a_cancelled_event() {
    let (mut layer, t0) = layer();
    layer.handle_message(t0, incoming_request(INVITE), alice_udp());
    let (invite_key, invite) = delivered_request(&mut layer);
    let ringing = response_for(&invite.headers, 180, "Ringing", Some("a6c85cf"));
    layer
        .send_response(t0 + ms(20), &invite_key, ringing)
        .expect("180");
    sent(&mut layer);

    let cancel = same_branch(INVITE, "CANCEL");
    layer.handle_message(t0 + ms(1000), incoming_request(&cancel), alice_udp());
    let out = sent(&mut layer);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].peer, alice_response_peer());
    let ok = parsed_response(&out[0]);
    assert_eq!(ok.status_code.code(), 200);
    assert_eq!(header_of(&ok.headers, "CSeq"), vec!["314159 CANCEL"]);
    assert_eq!(
        header_of(&ok.headers, "To"),
        vec!["Bob <sip:bob@biloxi.com>;tag=a6c85cf"]
    );
    match &events(&mut layer)[..] {
        [TransactionEvent::Cancelled { invite, cancel }] => {
            assert_eq!(invite, &invite_key);
            assert_eq!(cancel.method, Method::Cancel);
        }
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(layer.len(), 2, "INVITE and CANCEL transactions");

    // A retransmitted CANCEL gets the same 200 and no second event.
    layer.handle_message(t0 + ms(1500), incoming_request(&cancel), alice_udp());
    assert_eq!(sent(&mut layer)[0].data, out[0].data);
    assert!(events(&mut layer).is_empty());

    // The TU ends the INVITE with 487; the ACK completes it; everything drains.
    let terminated = response_for(&invite.headers, 487, "Request Terminated", Some("a6c85cf"));
    layer
        .send_response(t0 + ms(1010), &invite_key, terminated)
        .expect("487");
    layer.handle_message(
        t0 + ms(1100),
        incoming_request(&non_2xx_ack(INVITE, "a6c85cf")),
        alice_udp(),
    );
    assert!(events(&mut layer).is_empty());
    run_all_timers(&mut layer, t0 + ms(1100));
    assert_eq!(layer.len(), 0);
    assert_eq!(layer.pending_timers(), 0);
}

#[test]
fn cancel_after_the_final_gets_200_but_no_event() {
    let (mut layer, t0) = layer();
    layer.handle_message(t0, incoming_request(INVITE), alice_udp());
    let (key, invite) = delivered_request(&mut layer);
    layer
        .send_response(
            t0,
            &key,
            response_for(&invite.headers, 200, "OK", Some("x")),
        )
        .expect("200");
    sent(&mut layer);
    layer.handle_message(
        t0 + ms(50),
        incoming_request(&same_branch(INVITE, "CANCEL")),
        alice_udp(),
    );
    let out = sent(&mut layer);
    assert_eq!(parsed_response(&out[0]).status_code.code(), 200);
    assert_eq!(fields_to_tag(&out[0]), Some("x".to_owned()));
    assert!(events(&mut layer).is_empty());
}

fn fields_to_tag(transmit: &crate::Transmit) -> Option<String> {
    super::fields::to_tag(&parsed_response(transmit).headers).map(str::to_owned)
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let (mut layer, t0) = layer();
    let cancel = same_branch(INVITE, "CANCEL");
    layer.handle_message(t0, incoming_request(&cancel), alice_udp());
    let out = sent(&mut layer);
    assert_eq!(out.len(), 1);
    let response = parsed_response(&out[0]);
    assert_eq!(response.status_code.code(), 481);
    assert!(
        fields_to_tag(&out[0]).is_some(),
        "a final response carries a To tag"
    );
    assert!(events(&mut layer).is_empty());
    // A CANCEL from another sent-by with the same branch does not match either.
    layer.handle_message(t0, incoming_request(INVITE), alice_udp());
    events(&mut layer);
    let elsewhere = cancel.replace("pc33.atlanta.com;", "pc34.atlanta.com;");
    layer.handle_message(t0, incoming_request(&elsewhere), alice_udp());
    assert_eq!(
        parsed_response(&sent(&mut layer)[0]).status_code.code(),
        481
    );
    assert!(events(&mut layer).is_empty());
}

#[test]
fn received_and_rport_are_stamped_and_responses_follow_them() {
    let (mut layer, t0) = layer();
    let natted = Peer::udp("203.0.113.5:40123".parse().expect("addr"));
    let invite = INVITE.replace(
        "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8",
        "SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bKnashds8",
    );
    layer.handle_message(t0, incoming_request(&invite), natted);
    let (key, delivered) = delivered_request(&mut layer);
    assert_eq!(
        header(&delivered, "Via"),
        vec!["SIP/2.0/UDP 10.0.0.2:5060;rport=40123;branch=z9hG4bKnashds8;received=203.0.113.5"]
    );
    assert_eq!(
        TransactionLayer::response_destination(&delivered, natted),
        natted
    );
    layer
        .send_response(
            t0,
            &key,
            response_for(&delivered.headers, 180, "Ringing", Some("t")),
        )
        .expect("180");
    assert_eq!(sent(&mut layer)[0].peer, natted);

    // Without rport: received IP, sent-by port.
    let plain = BYE.replace("192.0.2.4;", "192.0.2.4:5070;");
    let source = Peer::udp("198.51.100.1:6000".parse().expect("addr"));
    layer.handle_message(t0, incoming_request(&plain), source);
    let (key, delivered) = delivered_request(&mut layer);
    let expected = Peer::udp("198.51.100.1:5070".parse().expect("addr"));
    assert_eq!(
        TransactionLayer::response_destination(&delivered, source),
        expected
    );
    layer
        .send_response(t0, &key, response_for(&delivered.headers, 200, "OK", None))
        .expect("200");
    assert_eq!(sent(&mut layer)[0].peer, expected);
}

#[test]
fn a_stray_ack_is_delivered_but_creates_nothing_and_gets_no_response() {
    let (mut layer, t0) = layer();
    layer.handle_message(
        t0,
        incoming_request(&ack_2xx(INVITE, "a6c85cf", "z9hG4bKstray")),
        alice_udp(),
    );
    assert!(matches!(
        &events(&mut layer)[..],
        [TransactionEvent::Request { key: None, request, .. }] if request.method == Method::Ack
    ));
    assert!(sent(&mut layer).is_empty());
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn stray_responses_are_delivered_without_a_key() {
    let (mut layer, t0) = layer();
    layer.handle_message(
        t0,
        incoming_response(&reply(INVITE, "200 OK", Some("a"))),
        bob_udp(),
    );
    layer.handle_message(
        t0,
        incoming_response("SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        bob_udp(),
    );
    assert_eq!(response_codes(&mut layer), vec![(None, 200), (None, 200)]);
    assert!(layer.is_empty());
}

#[test]
fn unkeyable_requests_reach_the_tu_without_a_transaction() {
    let (mut layer, t0) = layer();
    for text in [
        "OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nCall-ID: x\r\n\r\n",
        "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
        "INVITE sip:a@b SIP/2.0\r\n\r\n",
        "ACK sip:a@b SIP/2.0\r\n\r\n",
    ] {
        layer.handle_message(t0, incoming_request(text), alice_udp());
    }
    let delivered = events(&mut layer);
    assert_eq!(delivered.len(), 4);
    assert!(delivered
        .iter()
        .all(|e| matches!(e, TransactionEvent::Request { key: None, .. })));
    assert!(sent(&mut layer).is_empty());
    assert!(layer.is_empty());
}

#[test]
fn rfc2543_invite_without_branch_still_gets_a_transaction() {
    let (mut layer, t0) = layer();
    let old = INVITE.replace(";branch=z9hG4bKnashds8", "");
    layer.handle_message(t0, incoming_request(&old), alice_udp());
    let (key, invite) = delivered_request(&mut layer);
    layer.handle_message(t0 + ms(100), incoming_request(&old), alice_udp());
    assert!(events(&mut layer).is_empty(), "retransmission matched");
    sent(&mut layer);
    layer
        .send_response(
            t0,
            &key,
            response_for(&invite.headers, 404, "Not Found", Some("t")),
        )
        .expect("404");
    sent(&mut layer);
    layer.handle_message(
        t0 + ms(200),
        incoming_request(&non_2xx_ack(&old, "t")),
        alice_udp(),
    );
    assert!(
        events(&mut layer).is_empty(),
        "the ACK matched the INVITE transaction"
    );
    run_all_timers(&mut layer, t0 + ms(200));
    assert!(events(&mut layer).is_empty(), "no AckTimeout");
    assert!(layer.is_empty());
}

#[test]
fn send_response_rejects_bad_keys_and_codes() {
    let (mut layer, t0) = layer();
    let client = layer.send_request(t0, request(OPTIONS), bob_udp());
    let ok = response(&reply(OPTIONS, "200 OK", Some("a")));
    assert_eq!(
        layer.send_response(t0, &client, ok.clone()),
        Err(TransactionError::NotServerTransaction(client.clone()))
    );
    layer.handle_message(t0, incoming_request(BYE), alice_udp());
    let server = single_request_key(&mut layer);
    let mut odd = ok.clone();
    odd.status_code = rsip::StatusCode::Other(700, "Nope".into());
    assert_eq!(
        layer.send_response(t0, &server, odd),
        Err(TransactionError::InvalidStatus(700))
    );
    run_all_timers(&mut layer, t0);
    assert!(matches!(
        layer.send_response(t0, &server, ok),
        Err(TransactionError::UnknownTransaction(_))
    ));
}

#[test]
fn stateless_sends_and_ack_through_send_request_create_nothing() {
    let (mut layer, t0) = layer();
    let ack: SipMessage = request(&ack_2xx(INVITE, "a", "z9hG4bKack")).into();
    layer.send_stateless(ack.clone(), bob_udp());
    let SipMessage::Request(ack_request) = ack else {
        unreachable!("built as a request")
    };
    layer.send_request(t0, ack_request, bob_udp());
    let out = sent(&mut layer);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], out[1]);
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn a_whole_call_in_both_directions_drains_to_zero() {
    let (mut layer, t0) = layer();
    // Inbound leg: INVITE answered 200, ACKed, later BYE.
    layer.handle_message(t0, incoming_request(INVITE), alice_udp());
    let (key, invite) = delivered_request(&mut layer);
    layer
        .send_response(
            t0,
            &key,
            response_for(&invite.headers, 200, "OK", Some("in")),
        )
        .expect("200");
    layer.handle_message(
        t0 + ms(30),
        incoming_request(&ack_2xx(INVITE, "in", "z9hG4bKack1")),
        alice_udp(),
    );
    layer.handle_message(t0 + ms(5000), incoming_request(BYE), alice_udp());
    let bye_key = match &events(&mut layer)[..] {
        [TransactionEvent::Request { key: None, .. }, TransactionEvent::Request { key: Some(k), .. }] => {
            k.clone()
        }
        other => panic!("unexpected {other:?}"),
    };
    layer
        .send_response(
            t0 + ms(5000),
            &bye_key,
            response(&reply(BYE, "200 OK", None)),
        )
        .expect("200 BYE");
    // Outbound leg: INVITE, 180, 200; the TU ACKs statelessly; then an OPTIONS ping.
    let out_invite = INVITE.replace("z9hG4bKnashds8", "z9hG4bKout1");
    let out_key = layer.send_request(t0, request(&out_invite), bob_udp());
    layer.handle_message(
        t0 + ms(40),
        incoming_response(&reply(&out_invite, "180 Ringing", Some("b"))),
        bob_udp(),
    );
    layer.handle_message(
        t0 + ms(900),
        incoming_response(&reply(&out_invite, "200 OK", Some("b"))),
        bob_udp(),
    );
    assert_eq!(
        response_codes(&mut layer),
        vec![(Some(out_key.clone()), 180), (Some(out_key), 200)]
    );
    layer.send_request(t0 + ms(1000), request(OPTIONS), bob_udp());
    assert!(layer.len() >= 4);
    assert_eq!(layer.accepted_index_len(), 1);

    let end = run_all_timers(&mut layer, t0 + ms(5000));
    assert!(end <= t0 + Duration::from_secs(60));
    assert_eq!(layer.len(), 0);
    assert!(layer.is_empty());
    assert_eq!(layer.pending_timers(), 0);
    assert_eq!(layer.accepted_index_len(), 0);
}

/// The CANCELs the layer sent, with the keys it reported in `CancelSent`.
fn cancels(layer: &mut TransactionLayer) -> (Vec<Request>, Vec<TransactionKey>) {
    let requests = sent(layer)
        .iter()
        .filter(|t| t.data.starts_with(b"CANCEL"))
        .map(parsed_request)
        .collect();
    let keys = events(layer)
        .into_iter()
        .filter_map(|e| match e {
            TransactionEvent::CancelSent { key } => Some(key),
            _ => None,
        })
        .collect();
    (requests, keys)
}

#[test]
fn a_cancel_waits_for_the_first_provisional_then_matches_the_invite() {
    let (mut layer, t0) = layer();
    let key = layer.send_request(t0, request(INVITE), bob_udp());
    sent(&mut layer);
    assert!(layer.cancel(t0 + ms(10), &key));
    assert_eq!(
        cancels(&mut layer).0.len(),
        0,
        "RFC 3261 §9.1: not before a provisional"
    );
    // Asking again changes nothing; the 180 lets it out, once.
    assert!(layer.cancel(t0 + ms(20), &key));
    layer.handle_message(
        t0 + ms(50),
        incoming_response(&reply(INVITE, "180 Ringing", Some("b"))),
        bob_udp(),
    );
    let (requests, keys) = cancels(&mut layer);
    assert_eq!(requests.len(), 1);
    assert_eq!(keys.len(), 1);
    let cancel = &requests[0];
    assert_eq!(cancel.uri, request(INVITE).uri);
    assert_eq!(header(cancel, "CSeq"), vec!["314159 CANCEL"]);
    assert_eq!(
        header(cancel, "Call-ID"),
        header(&request(INVITE), "Call-ID")
    );
    assert_eq!(
        header(cancel, "To"),
        header(&request(INVITE), "To"),
        "the INVITE's To, no tag"
    );
    assert_eq!(header(cancel, "Via"), header(&request(INVITE), "Via"));
    layer.handle_message(
        t0 + ms(60),
        incoming_response(&reply(INVITE, "183 Session Progress", Some("b"))),
        bob_udp(),
    );
    assert_eq!(cancels(&mut layer).0.len(), 0, "one CANCEL only");
}

#[test]
fn a_cancel_in_proceeding_goes_at_once_and_none_after_a_final() {
    let (mut layer, t0) = layer();
    let key = layer.send_request(t0, request(INVITE), bob_udp());
    layer.handle_message(
        t0 + ms(50),
        incoming_response(&reply(INVITE, "180 Ringing", Some("b"))),
        bob_udp(),
    );
    sent(&mut layer);
    events(&mut layer);
    assert!(layer.cancel(t0 + ms(60), &key));
    assert_eq!(cancels(&mut layer).0.len(), 1);
    assert!(
        layer.cancel(t0 + ms(70), &key),
        "still cancellable: no final yet"
    );
    assert_eq!(cancels(&mut layer).0.len(), 0, "but not sent twice");

    let other = INVITE.replace("z9hG4bKnashds8", "z9hG4bKother");
    let answered = layer.send_request(t0, request(&other), bob_udp());
    layer.handle_message(
        t0 + ms(80),
        incoming_response(&reply(&other, "200 OK", Some("c"))),
        bob_udp(),
    );
    sent(&mut layer);
    assert!(
        !layer.cancel(t0 + ms(90), &answered),
        "a 2xx is the TU's to ACK and BYE"
    );
    assert_eq!(cancels(&mut layer).0.len(), 0);
    assert!(!layer.cancel(t0, &TransactionKey::client("z9hG4bKnone", "INVITE")));
}

#[test]
fn zero_timer_config_does_not_spin() {
    let zero = TimerConfig {
        t1: Duration::ZERO,
        t2: Duration::ZERO,
        t4: Duration::ZERO,
    };
    let mut layer = TransactionLayer::new(zero);
    let t0 = Instant::now();
    layer.send_request(t0, request(OPTIONS), bob_udp());
    layer.handle_timeout(t0 + Duration::from_secs(1));
    assert!(layer.is_empty(), "64*T1 = 64 ms");
    let huge = TimerConfig {
        t1: Duration::MAX,
        t2: Duration::MAX,
        t4: Duration::MAX,
    };
    let mut layer = TransactionLayer::new(huge);
    layer.send_request(t0, request(INVITE), bob_udp());
    layer.handle_timeout(t0 + Duration::from_secs(3600));
    assert_eq!(
        layer.len(),
        1,
        "unrepresentable deadlines never fire, and nothing panics"
    );
}

// ---- property test -------------------------------------------------------------------------

const METHODS: [&str; 7] = [
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO",
];
const BRANCHES: [&str; 4] = ["z9hG4bKa", "z9hG4bKb", "z9hG4bKc", "old-branch"];
const STATUSES: [u16; 11] = [100, 180, 183, 200, 202, 301, 404, 486, 487, 500, 603];

#[derive(Debug, Clone)]
enum Op {
    Incoming {
        is_response: bool,
        method: usize,
        branch: usize,
        via_style: u8,
        cseq_style: u8,
        call_id: u8,
        to_tag: Option<u8>,
        status: usize,
        tcp: bool,
    },
    Send {
        method: usize,
        branch: usize,
        tcp: bool,
    },
    Answer {
        pick: usize,
        status: usize,
    },
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0..METHODS.len(), 0..BRANCHES.len(), 0u8..6, 0u8..4, 0u8..3,
              proptest::option::of(0u8..3), 0..STATUSES.len(), any::<bool>())
            .prop_map(|(is_response, method, branch, via_style, cseq_style, call_id, to_tag, status, tcp)| {
                Op::Incoming { is_response, method, branch, via_style, cseq_style, call_id, to_tag, status, tcp }
            }),
        2 => (0..METHODS.len(), 0..BRANCHES.len(), any::<bool>())
            .prop_map(|(method, branch, tcp)| Op::Send { method, branch, tcp }),
        2 => (any::<usize>(), 0..STATUSES.len()).prop_map(|(pick, status)| Op::Answer { pick, status }),
        2 => (0u64..40_000).prop_map(Op::Advance),
    ]
}

fn via_line(style: u8, transport: &str, branch: &str) -> String {
    match style {
        0 => format!("Via: SIP/2.0/{transport} pc33.atlanta.com;branch={branch};rport\r\n"),
        1 => format!("v: SIP/2.0/{transport} 192.0.2.10:5060;branch={branch}\r\n"),
        2 => format!(
            "Via: SIP/2.0/{transport} [2001:db8::1]:5070;branch={branch} , SIP/2.0/UDP x\r\n"
        ),
        3 => "Via: SIP/2.0/UDP\r\n".to_owned(),
        4 => "Via: ;;;,,,\"\r\n".to_owned(),
        _ => String::new(),
    }
}

fn cseq_line(style: u8, method: &str) -> String {
    match style {
        0 | 1 => format!("CSeq: {} {method}\r\n", 10 + u32::from(style)),
        2 => "CSeq: banana\r\n".to_owned(),
        _ => String::new(),
    }
}

fn build_message(op: &Op) -> Option<(SipMessage, Peer)> {
    let Op::Incoming {
        is_response,
        method,
        branch,
        via_style,
        cseq_style,
        call_id,
        to_tag,
        status,
        tcp,
    } = op
    else {
        return None;
    };
    let method = METHODS[*method];
    let transport = if *tcp { "TCP" } else { "UDP" };
    let mut text = if *is_response {
        format!("SIP/2.0 {} Whatever\r\n", STATUSES[*status])
    } else {
        format!("{method} sip:bob@biloxi.com SIP/2.0\r\n")
    };
    text.push_str(&via_line(*via_style, transport, BRANCHES[*branch]));
    text.push_str("From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n");
    match to_tag {
        Some(t) => text.push_str(&format!("To: Bob <sip:bob@biloxi.com>;tag=t{t}\r\n")),
        None => text.push_str("To: Bob <sip:bob@biloxi.com>\r\n"),
    }
    if *call_id > 0 {
        text.push_str(&format!("Call-ID: call{call_id}\r\n"));
    }
    text.push_str(&cseq_line(*cseq_style, method));
    text.push_str("Content-Length: 0\r\n\r\n");
    let message = SipMessage::try_from(text.as_str()).ok()?;
    let addr = "192.0.2.10:5060".parse().ok()?;
    let peer = if *tcp {
        Peer::tcp(addr)
    } else {
        Peer::udp(addr)
    };
    Some((message, peer))
}

fn outgoing_request(method: usize, branch: usize, tcp: bool) -> Option<Request> {
    let method = METHODS[method];
    let transport = if tcp { "TCP" } else { "UDP" };
    let text = format!(
        "{method} sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/{transport} 192.0.2.1;branch={}\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:bob@biloxi.com>\r\nCall-ID: out\r\nCSeq: 1 {method}\r\n\r\n",
        BRANCHES[branch]
    );
    Request::try_from(text.as_str()).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_streams_never_panic_and_always_drain(ops in proptest::collection::vec(op(), 1..60)) {
        let (mut layer, t0) = layer();
        let mut now = t0;
        let mut server_keys: Vec<TransactionKey> = Vec::new();
        let mut client_invites: Vec<Request> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Incoming { .. } => {
                    if let Some((message, peer)) = build_message(op) {
                        layer.handle_message(now, message, peer);
                    }
                }
                Op::Send { method, branch, tcp } => {
                    if let Some(request) = outgoing_request(*method, *branch, *tcp) {
                        if request.method == Method::Invite {
                            client_invites.push(request.clone());
                        }
                        let peer = if *tcp { bob_tcp() } else { bob_udp() };
                        layer.send_request(now, request, peer);
                    }
                }
                Op::Answer { pick, status } => {
                    if !server_keys.is_empty() {
                        let key = server_keys[pick % server_keys.len()].clone();
                        let answer = response(&reply(INVITE, &format!("{} X", STATUSES[*status]), Some("s")));
                        let _ = layer.send_response(now, &key, answer);
                    }
                }
                Op::Advance(step) => {
                    now += Duration::from_millis(*step);
                    layer.handle_timeout(now);
                }
            }
            while layer.poll_transmit().is_some() {}
            while let Some(event) = layer.poll_event() {
                match event {
                    TransactionEvent::Request { key: Some(key), .. } => server_keys.push(key),
                    TransactionEvent::Cancelled { invite, .. } => server_keys.push(invite),
                    _ => {}
                }
            }
            prop_assert!(layer.len() <= 2 * (i + 1));
            // Every due timer has run: the next deadline is always in the future.
            if let Some(at) = layer.poll_timeout() {
                prop_assert!(at > now);
            }
        }

        // The TU answers everything and cancels its INVITEs; then every transaction must end.
        for key in &server_keys {
            let _ = layer.send_response(now, key, response(&reply(INVITE, "500 Done", Some("s"))));
        }
        for invite in &client_invites {
            let mut cancel = invite.clone();
            cancel.method = Method::Cancel;
            layer.send_request(now, cancel, bob_udp());
        }
        run_all_timers(&mut layer, now);
        prop_assert_eq!(layer.len(), 0);
        prop_assert_eq!(layer.pending_timers(), 0);
        prop_assert_eq!(layer.accepted_index_len(), 0);
    }
}
