//! linphone 5 (linphonec, headless under a pty) as agent 1001 over UDP and over TCP: it
//! registers with Digest, answers a trunk call placed from Rust, its audio reaches the trunk
//! and the trunk's reaches it, it holds and resumes (audio reaches the trunk again after the
//! resume), hangs up or is hung up, and its RFC 4733 digits reach the trunk.

use std::time::Duration;

use sip_tests::linphone::{DtmfMethod, Linphone, Transport};
use sip_tests::rtp::{pcmu_offer, Received, RtpPeer};
use sip_tests::uac::{place_media_call, ConnectedCall};
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const WAIT: Duration = Duration::from_secs(60);

fn start_linphone(
    switchboard: &Switchboard,
    transport: Transport,
    dtmf: DtmfMethod,
) -> HarnessResult<Linphone> {
    let linphone = Linphone::start(
        &switchboard.dir().join("linphone"),
        "1001",
        "secret1001",
        switchboard.sip_addr(),
        transport,
        dtmf,
        WAIT,
    )?;
    linphone.wait_registered(WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    Ok(linphone)
}

/// A trunk call to DID 100 (PCMU and telephone-events to `rtp`) that linphone answers;
/// returns the call and Switchboard's RTP address on the trunk leg.
fn trunk_call_answered_by<'p>(
    linphone: &mut Linphone,
    sip: &'p UdpPeer,
    rtp: &RtpPeer,
) -> HarnessResult<(ConnectedCall<'p>, std::net::SocketAddr)> {
    std::thread::scope(|scope| {
        let handle =
            scope.spawn(|| place_media_call(sip, "100", &pcmu_offer(rtp.port()?, true), WAIT));
        linphone.answer_incoming(WAIT)?;
        handle
            .join()
            .map_err(|_| HarnessError::Unexpected("the trunk thread panicked".into()))?
    })
}

/// Audio packets (not telephone-events) from `relay` among `packets`.
fn audio_from(packets: &[Received], relay: std::net::SocketAddr) -> usize {
    packets
        .iter()
        .filter(|p| p.from == relay && p.payload_type() == Some(0))
        .count()
}

/// Register, answer, audio both ways, hold and resume from linphone, then BYE from linphone
/// (`linphone_hangs_up`) or from the trunk.
fn call_with_hold(transport: Transport, linphone_hangs_up: bool) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut linphone = start_linphone(&switchboard, transport, DtmfMethod::Rfc4733)?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = trunk_call_answered_by(&mut linphone, &sip, &rtp)?;

    // linphone's tone reaches the trunk through the relay.
    let first = rtp.receive(50, WAIT)?;
    assert_eq!(
        audio_from(&first, relay),
        50,
        "linphone's audio reaches the trunk"
    );
    // The trunk's audio reaches linphone (its RTP session counts what it received).
    rtp.send_stream(relay, 50, 0, 0x5eed_0010)?;

    // Hold, then resume, from linphone.
    linphone.command("pause")?;
    linphone.wait_for_debug("to LinphoneCallPaused", 1, WAIT)?;
    if transport == Transport::Tcp {
        // Defect 3 of issue 10: every Contact Switchboard writes on a TCP dialog must say
        // ;transport=tcp, or linphone sends its next requests to UDP.
        let log = linphone.debug_log();
        let contacts: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("Contact: <sip:switchboard@"))
            .collect();
        assert!(
            !contacts.is_empty(),
            "no Contact from switchboard in linphone's log"
        );
        assert!(
            contacts
                .iter()
                .all(|c| c.to_ascii_lowercase().contains(";transport=tcp")),
            "Switchboard's Contacts on a TCP dialog lack ;transport=tcp: {contacts:?}"
        );
    }
    linphone.command("resume")?;
    linphone.wait_for_debug("to LinphoneCallStreamsRunning", 2, WAIT)?;
    assert!(
        !linphone.debug_log().contains("No listening point matching"),
        "linphone found no transport for a request to Switchboard"
    );
    // After the resume its audio reaches the trunk again (packets from before the hold have
    // long been read or are few: 100 fresh ones need the stream to run).
    let after = rtp.receive(100, WAIT)?;
    assert!(
        audio_from(&after, relay) >= 100,
        "audio flows again after the resume: {} packets",
        audio_from(&after, relay)
    );

    if linphone_hangs_up {
        linphone.command("terminate")?;
        let bye = call.wait_for_bye(WAIT)?;
        assert_eq!(bye.method(), Some("BYE"));
    } else {
        let bye = call.hang_up(WAIT)?;
        assert_eq!(bye.final_response.status(), Some(200));
        linphone.wait_for_debug("to LinphoneCallEnd", 1, WAIT)?;
    }
    Ok(())
}

#[test]
fn linphone_udp_answers_holds_resumes_and_hangs_up() -> HarnessResult<()> {
    call_with_hold(Transport::Udp, true)
}

#[test]
fn linphone_udp_is_hung_up_by_the_trunk() -> HarnessResult<()> {
    call_with_hold(Transport::Udp, false)
}

#[test]
fn linphone_tcp_answers_holds_resumes_and_hangs_up() -> HarnessResult<()> {
    call_with_hold(Transport::Tcp, true)
}

#[test]
fn linphone_tcp_is_hung_up_by_the_trunk() -> HarnessResult<()> {
    call_with_hold(Transport::Tcp, false)
}

/// Digits typed at linphonec's prompt during a call reach the trunk as RFC 4733 events.
#[test]
fn linphone_rfc4733_digits_reach_the_trunk() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut linphone = start_linphone(&switchboard, Transport::Udp, DtmfMethod::Rfc4733)?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = trunk_call_answered_by(&mut linphone, &sip, &rtp)?;
    rtp.receive(10, WAIT)?;
    linphone.command("5")?;
    let deadline = std::time::Instant::now() + WAIT;
    let mut events = Vec::new();
    while events.is_empty() && std::time::Instant::now() < deadline {
        events = rtp
            .receive(50, Duration::from_secs(1))?
            .into_iter()
            .filter(|p| p.from == relay && p.payload_type() == Some(101))
            .collect();
    }
    let event = events
        .first()
        .ok_or_else(|| HarnessError::Unexpected("no telephone-event reached the trunk".into()))?;
    assert_eq!(event.bytes.get(12), Some(&5), "the event is digit 5");
    call.hang_up(WAIT)?;
    Ok(())
}
