//! A connection that cannot be opened ends the client transactions waiting on it at once
//! (RFC 3261 §17.1.4), not at Timer B/F.

use super::fixtures::*;
use super::TransactionEvent;

#[test]
fn calling_invite_ends_with_transport_error_and_no_timer_left() {
    let (mut layer, t0) = layer();
    let invite = INVITE.replace("UDP", "TCP");
    let key = layer.send_request(t0, request(&invite), bob_tcp());
    sent(&mut layer);

    layer.handle_transport_error(t0 + ms(5), bob_tcp());

    assert_eq!(
        events(&mut layer),
        vec![TransactionEvent::TransportError { key }]
    );
    assert!(layer.is_empty());
    assert_eq!(layer.poll_timeout(), None, "Timer B went with it");
    assert!(sent(&mut layer).is_empty());
}

#[test]
fn non_invite_in_trying_ends_with_transport_error() {
    let (mut layer, t0) = layer();
    let options = OPTIONS.replace("UDP", "TCP");
    let key = layer.send_request(t0, request(&options), bob_tcp());
    sent(&mut layer);

    layer.handle_transport_error(t0, bob_tcp());

    assert_eq!(
        events(&mut layer),
        vec![TransactionEvent::TransportError { key }]
    );
    assert!(layer.is_empty());
}

#[test]
fn only_transactions_to_that_destination_end() {
    let (mut layer, t0) = layer();
    let to_bob = layer.send_request(t0, request(&INVITE.replace("UDP", "TCP")), bob_tcp());
    // Same address over another transport, and another address: neither is touched.
    let over_udp = layer.send_request(
        t0,
        request(&OPTIONS.replace("z9hG4bKhjhs8ass877", "z9hG4bKoverudp")),
        bob_udp(),
    );
    let elsewhere = layer.send_request(
        t0,
        request(
            &OPTIONS
                .replace("UDP", "TCP")
                .replace("z9hG4bKhjhs8ass877", "z9hG4bKelsewhere"),
        ),
        alice_tcp(),
    );
    sent(&mut layer);

    layer.handle_transport_error(t0, bob_tcp());

    assert_eq!(
        events(&mut layer),
        vec![TransactionEvent::TransportError { key: to_bob }]
    );
    assert_eq!(layer.len(), 2);
    assert!(layer.client_non_invite_state(&over_udp).is_some());
    assert!(layer.client_non_invite_state(&elsewhere).is_some());
}

#[test]
fn invite_that_got_a_provisional_is_not_ended() {
    let (mut layer, t0) = layer();
    let invite = INVITE.replace("UDP", "TCP");
    let key = layer.send_request(t0, request(&invite), bob_tcp());
    sent(&mut layer);
    layer.handle_message(
        t0 + ms(10),
        incoming_response(&reply(&invite, "180 Ringing", Some("b1"))),
        bob_tcp(),
    );
    events(&mut layer);

    layer.handle_transport_error(t0 + ms(20), bob_tcp());

    assert!(events(&mut layer).is_empty());
    assert!(layer.client_invite_state(&key).is_some());
}

#[test]
fn server_transactions_are_untouched() {
    let (mut layer, t0) = layer();
    let invite = INVITE.replace("UDP", "TCP");
    layer.handle_message(t0, incoming_request(&invite), bob_tcp());
    let before = layer.len();
    events(&mut layer);

    layer.handle_transport_error(t0, bob_tcp());

    assert!(events(&mut layer).is_empty());
    assert_eq!(layer.len(), before);
    assert_eq!(before, 1);
}
