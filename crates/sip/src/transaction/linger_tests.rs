//! Finished transactions while they linger: each keeps only a `Lingering` remainder (no parsed
//! message, no request), and still answers retransmissions exactly as before.

use super::finished::{Finished, Lingering};
use super::fixtures::*;
use super::server_invite::ServerInviteState;
use super::TransactionEvent;
use std::time::Duration;

/// No variant may carry a parsed message: the largest is a response's bytes and its peer.
/// (An `rsip::Request` alone is bigger than this whole bound.)
const LINGERING_BOUND: usize = 112;

#[test]
fn the_lingering_remainder_is_small() {
    assert!(
        std::mem::size_of::<Lingering>() <= LINGERING_BOUND,
        "Lingering is {} bytes",
        std::mem::size_of::<Lingering>()
    );
    assert!(std::mem::size_of::<rsip::Request>() > LINGERING_BOUND);
}

#[test]
fn a_retransmitted_bye_during_the_linger_gets_the_same_bytes() {
    let (mut layer, t0) = layer();
    layer.handle_message(t0, incoming_request(BYE), alice_udp());
    let key = single_request_key(&mut layer);
    layer
        .send_response(t0, &key, response(&reply(BYE, "200 OK", Some("a6c85cf"))))
        .expect("200");
    let ok = sent(&mut layer);

    let Some(Lingering {
        what: Finished::CompletedNonInviteServer { reply, peer },
        deadline: Some(_),
    }) = layer.lingering(&key)
    else {
        panic!("the BYE's transaction lingers as its reply alone");
    };
    assert_eq!(reply, &ok[0].data);
    assert_eq!(*peer, ok[0].peer);

    for at in [ms(500), Duration::from_secs(31)] {
        layer.handle_message(t0 + at, incoming_request(BYE), alice_udp());
        let again = sent(&mut layer);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data, ok[0].data, "byte-identical at {at:?}");
        assert_eq!(again[0].peer, ok[0].peer);
        assert!(events(&mut layer).is_empty(), "not delivered again");
    }
    layer.handle_timeout(t0 + Duration::from_secs(32));
    assert!(layer.is_empty());
    assert_eq!(layer.pending_timers(), 0);
}

#[test]
fn a_retransmitted_non_2xx_final_during_timer_d_gets_the_same_ack() {
    let (mut layer, t0) = layer();
    let key = layer.send_request(t0, request(INVITE), bob_udp());
    sent(&mut layer);
    let busy = reply(INVITE, "486 Busy Here", Some("b"));
    layer.handle_message(t0 + ms(10), incoming_response(&busy), bob_udp());
    let ack = sent(&mut layer);
    assert_eq!(ack.len(), 1);
    assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 486)]);
    assert!(matches!(
        layer.lingering(&key),
        Some(Lingering {
            what: Finished::CompletedInviteClient { .. },
            ..
        })
    ));

    layer.handle_message(t0 + ms(600), incoming_response(&busy), bob_udp());
    let again = sent(&mut layer);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].data, ack[0].data, "the same ACK, byte for byte");
    assert_eq!(again[0].peer, bob_udp());
    assert!(
        events(&mut layer).is_empty(),
        "the retransmission is absorbed"
    );

    layer.handle_timeout(t0 + ms(10) + Duration::from_secs(32));
    assert!(layer.is_empty());
}

#[test]
fn an_acked_2xx_lingers_absorbing_invites_and_passing_acks_on() {
    let (mut layer, t0) = layer();
    layer.handle_message(t0, incoming_request(INVITE), alice_udp());
    let key = single_request_key(&mut layer);
    layer
        .send_response(t0, &key, response(&reply(INVITE, "200 OK", Some("t"))))
        .expect("200");
    let ok = sent(&mut layer);
    assert!(layer.lingering(&key).is_none(), "at work until the ACK");

    let ack = ack_2xx(INVITE, "t", "z9hG4bKack");
    layer.handle_message(t0 + ms(20), incoming_request(&ack), alice_udp());
    assert_eq!(events(&mut layer).len(), 1, "the ACK goes to the TU");
    assert!(matches!(
        layer.lingering(&key),
        Some(Lingering {
            what: Finished::AcceptedInviteServer { .. },
            ..
        })
    ));
    assert_eq!(
        layer.server_invite_state(&key),
        Some(ServerInviteState::Accepted)
    );
    assert_eq!(layer.accepted_index_len(), 1, "still found by dialog");

    // A retransmitted INVITE is absorbed; a retransmitted ACK still reaches the TU.
    layer.handle_message(t0 + ms(600), incoming_request(INVITE), alice_udp());
    assert!(sent(&mut layer).is_empty());
    assert!(events(&mut layer).is_empty());
    layer.handle_message(t0 + ms(700), incoming_request(&ack), alice_udp());
    assert!(matches!(
        &events(&mut layer)[..],
        [TransactionEvent::Request { key: None, request, .. }] if request.method == rsip::Method::Ack
    ));

    // A CANCEL now gets 200 with our tag and no Cancelled event.
    layer.handle_message(
        t0 + ms(800),
        incoming_request(&same_branch(INVITE, "CANCEL")),
        alice_udp(),
    );
    let out = sent(&mut layer);
    let cancelled = parsed_response(&out[0]);
    assert_eq!(cancelled.status_code.code(), 200);
    assert_eq!(
        super::fields::to_tag(&cancelled.headers),
        Some("t"),
        "the INVITE's tag"
    );
    assert!(events(&mut layer).is_empty());

    // RFC 6026: the TU may still send a 2xx, not anything else.
    layer
        .send_response(
            t0 + ms(900),
            &key,
            response(&reply(INVITE, "200 OK", Some("t"))),
        )
        .expect("another 2xx");
    assert_eq!(sent(&mut layer)[0].data, ok[0].data);
    assert!(layer
        .send_response(
            t0 + ms(900),
            &key,
            response(&reply(INVITE, "500 Oops", Some("t")))
        )
        .is_err());

    // Timer L, and the CANCEL's own Timer J after it.
    layer.handle_timeout(t0 + Duration::from_secs(32));
    assert_eq!(layer.server_invite_state(&key), None);
    assert_eq!(layer.accepted_index_len(), 0);
    layer.handle_timeout(t0 + ms(800) + Duration::from_secs(32));
    assert!(layer.is_empty());
    assert_eq!(layer.pending_timers(), 0);
}

#[test]
fn a_confirmed_invite_lingers_with_its_tag_only() {
    let (mut layer, t0) = layer();
    layer.handle_message(t0, incoming_request(INVITE), alice_udp());
    let key = single_request_key(&mut layer);
    layer
        .send_response(
            t0,
            &key,
            response(&reply(INVITE, "486 Busy Here", Some("b"))),
        )
        .expect("486");
    sent(&mut layer);
    layer.handle_message(
        t0 + ms(10),
        incoming_request(&non_2xx_ack(INVITE, "b")),
        alice_udp(),
    );
    assert!(events(&mut layer).is_empty(), "the ACK is absorbed");
    match layer.lingering(&key) {
        Some(Lingering {
            what: Finished::ConfirmedInviteServer { to_tag },
            ..
        }) => assert_eq!(to_tag.as_deref(), Some("b")),
        other => panic!("expected a Confirmed remainder, got {other:?}"),
    }
    // Retransmitted INVITE and ACK are absorbed.
    layer.handle_message(t0 + ms(20), incoming_request(INVITE), alice_udp());
    layer.handle_message(
        t0 + ms(30),
        incoming_request(&non_2xx_ack(INVITE, "b")),
        alice_udp(),
    );
    assert!(sent(&mut layer).is_empty());
    assert!(events(&mut layer).is_empty());
    // Timer I (T4 = 5 s) ends it.
    layer.handle_timeout(t0 + ms(10) + Duration::from_secs(5));
    assert!(layer.is_empty());
}

#[test]
fn an_accepted_client_invite_still_passes_every_2xx_up() {
    let (mut layer, t0) = layer();
    let key = layer.send_request(t0, request(INVITE), bob_udp());
    sent(&mut layer);
    let ok = reply(INVITE, "200 OK", Some("b"));
    layer.handle_message(t0 + ms(10), incoming_response(&ok), bob_udp());
    assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 200)]);
    assert!(matches!(
        layer.lingering(&key),
        Some(Lingering {
            what: Finished::AcceptedInviteClient,
            ..
        })
    ));
    // A retransmitted 2xx goes up again (the TU re-sends its ACK); a stray 180 does not.
    layer.handle_message(t0 + ms(600), incoming_response(&ok), bob_udp());
    layer.handle_message(
        t0 + ms(700),
        incoming_response(&reply(INVITE, "180 Ringing", Some("b"))),
        bob_udp(),
    );
    assert_eq!(response_codes(&mut layer), vec![(Some(key.clone()), 200)]);
    assert!(sent(&mut layer).is_empty());
    assert!(!layer.cancel(t0 + ms(800), &key), "nothing left to cancel");
    layer.handle_timeout(t0 + ms(10) + Duration::from_secs(32));
    assert!(layer.is_empty());
}
