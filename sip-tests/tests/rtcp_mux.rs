//! rtcp-mux (RFC 5761) through the real binary: a trunk that offers `a=rtcp-mux` gets it in
//! the answer and has its RTCP carried on its one RTP port, while an agent phone that does not
//! agree keeps RTCP on its own port; RTCP crosses between the two in both directions.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_tests::agent_phone::AgentPhone;
use sip_tests::rtp::{pcmu_offer, sdp_audio_address, Received, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const WAIT: Duration = Duration::from_secs(20);

/// An RTCP sender report (RFC 3550 §6.4.1) with no report blocks, from `ssrc`.
fn sender_report(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 200, 0, 6];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(&[0u8; 20]);
    packet
}

/// An RTCP receiver report (RFC 3550 §6.4.2) with no report blocks, from `ssrc`.
fn receiver_report(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

/// Waits on `peer` for the datagram `wanted`, skipping anything else.
fn wait_for_datagram(peer: &RtpPeer, wanted: &[u8], what: &str) -> HarnessResult<Received> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HarnessError::Unexpected(format!(
                "{what}: not received within {} s",
                WAIT.as_secs()
            )));
        }
        if let Some(found) = peer
            .receive(1, left)?
            .into_iter()
            .find(|r| r.bytes == wanted)
        {
            return Ok(found);
        }
    }
}

#[test]
fn a_trunk_offering_rtcp_mux_has_its_rtcp_on_the_rtp_port_and_the_agent_keeps_its_own(
) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let agent_rtp = RtpPeer::bind()?;
    let agent_rtcp = RtpPeer::bind()?;
    // The agent's phone does not do rtcp-mux and names its RTCP socket (RFC 3605).
    let agent_sdp = format!(
        "{}a=rtcp:{}\r\n",
        pcmu_offer(agent_rtp.port()?, false),
        agent_rtcp.port()?
    );
    let caller_rtp = RtpPeer::bind()?;
    let caller_offer = format!("{}a=rtcp-mux\r\n", pcmu_offer(caller_rtp.port()?, false));
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;

    let (placed, answered) = std::thread::scope(|scope| {
        let answering = scope.spawn(|| agent.answer_next(&agent_sdp, WAIT));
        let placed = place_media_call(&sip, "100", &caller_offer, WAIT);
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err(HarnessError::Unexpected("agent thread panicked".into())));
        (placed, answered)
    });
    let (call, caller_relay) = placed?;
    let agent_call = answered?;
    let answer = &call.answer.final_response.body;
    assert!(
        answer.contains("a=rtcp-mux"),
        "the trunk's offer of rtcp-mux is accepted:\n{answer}"
    );
    let agent_relay = sdp_audio_address(&agent_call.invite.body).ok_or_else(|| {
        HarnessError::Unexpected(format!(
            "no audio address in the agent's INVITE:\n{}",
            agent_call.invite.body
        ))
    })?;
    let agent_relay_rtcp = SocketAddr::new(agent_relay.ip(), agent_relay.port() + 1);

    // RTP still flows as RTP.
    caller_rtp.send_to(&RtpPeer::packet(0, 0, 0xca11), caller_relay)?;
    let voice = wait_for_datagram(
        &agent_rtp,
        &RtpPeer::packet(0, 0, 0xca11),
        "the caller's RTP",
    )?;
    assert_eq!(voice.from, agent_relay);

    // The caller's RTCP, on its RTP port, reaches the agent's RTCP socket from Switchboard's
    // RTCP port.
    let report = sender_report(0xca11);
    caller_rtp.send_to(&report, caller_relay)?;
    let relayed = wait_for_datagram(&agent_rtcp, &report, "the caller's multiplexed RTCP")?;
    assert_eq!(relayed.from, agent_relay_rtcp);

    // The agent's RTCP, on its RTCP port, reaches the caller on the caller's one port, from
    // Switchboard's trunk RTP port.
    let report = receiver_report(0xa6e7);
    agent_rtcp.send_to(&report, agent_relay_rtcp)?;
    let relayed = wait_for_datagram(&caller_rtp, &report, "the agent's RTCP")?;
    assert_eq!(relayed.from, caller_relay);

    call.hang_up(WAIT)?;
    Ok(())
}
