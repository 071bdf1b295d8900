//! Media anchoring through the real binary: RTP from the trunk reaches the agent's phone and
//! comes back unchanged through Switchboard's own ports, an offer without PCMU/PCMA gets 488,
//! and a call whose legs go silent is hung up on both sides with reason `media-timeout`.

use std::time::Duration;

use sip_tests::rtp::{pcmu_offer, ulaw_to_linear, RtpPeer};
use sip_tests::trace::{parse_trace, Direction};
use sip_tests::uac::place_media_call;
use sip_tests::{
    start_agent, start_echo_agent, HarnessError, HarnessResult, Switchboard, SwitchboardConfig,
    UdpPeer,
};

/// Packets sent each way; 50 = one second of audio.
const PACKETS: u16 = 50;

#[test]
fn audio_from_the_trunk_reaches_the_agent_and_back_byte_for_byte() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    // The agent's phone is SIPp echoing every RTP packet back to where it came from.
    let agent = start_echo_agent(&switchboard, "1001", Duration::from_secs(60))?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(
        &sip,
        "100",
        &pcmu_offer(rtp.port()?, true),
        Duration::from_secs(30),
    )?;
    let (first, last) = switchboard.rtp_ports();
    assert!(
        (first..=last).contains(&relay.port()),
        "the trunk must send RTP to Switchboard's range {first}-{last}, got {relay}"
    );

    let sent = rtp.send_stream(relay, PACKETS, 0, 0x5eed_0001)?;
    let echoed = rtp.receive(usize::from(PACKETS), Duration::from_secs(20))?;
    assert_eq!(
        echoed.len(),
        usize::from(PACKETS),
        "every packet must come back through the relay"
    );
    for (sent, back) in sent.iter().zip(&echoed) {
        assert_eq!(
            &back.bytes, sent,
            "echoed packet differs from what was sent"
        );
        assert_eq!(
            back.from, relay,
            "media must come back from Switchboard's port"
        );
    }
    call.hang_up(Duration::from_secs(30))?;
    agent.wait()?.ensure_success()?;
    Ok(())
}

#[test]
fn an_offer_without_pcmu_or_pcma_is_refused_with_488() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let trunk = switchboard
        .sipp_client("trunk_call_g729_488.xml")?
        .service("100")
        .run()?;
    trunk.ensure_success()?;
    let rejected = switchboard
        .api()
        .metrics()?
        .counter("switchboard_calls_rejected_total", &[("reason", "media")]);
    assert_eq!(rejected, 1.0, "the refusal is counted by reason");
    Ok(())
}

#[test]
fn a_silent_call_is_hung_up_on_both_legs_with_reason_media_timeout() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        media_timeout_s: 2,
        ..SwitchboardConfig::default()
    })?;
    // Neither SIPp sends RTP: after two seconds Switchboard hangs up both legs.
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer.xml",
        Duration::from_secs(60),
    )?;
    let trunk = switchboard
        .sipp_client("trunk_call_media_timeout.xml")?
        .service("100")
        .timeout(Duration::from_secs(60))
        .run()?;
    trunk.ensure_success()?;
    let agent = agent.wait()?;
    agent.ensure_success()?;
    let byes: Vec<String> = parse_trace(&agent.messages())
        .into_iter()
        .filter(|t| t.direction == Direction::Received && t.message.method() == Some("BYE"))
        .filter_map(|t| t.message.header("Reason").map(str::to_owned))
        .collect();
    assert_eq!(
        byes,
        vec!["SIP;cause=408;text=\"media-timeout\"".to_owned()],
        "the agent's BYE names the reason"
    );
    let timeouts = switchboard
        .api()
        .metrics()?
        .counter("switchboard_media_timeouts_total", &[]);
    assert_eq!(timeouts, 1.0);
    Ok(())
}

#[test]
fn a_recorded_call_is_a_stereo_wav_with_both_sides_named_in_the_cdr() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        support_queue_lines: vec!["record = \"all\"".to_owned()],
        ..SwitchboardConfig::default()
    })?;
    let agent = start_echo_agent(&switchboard, "1001", Duration::from_secs(60))?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(
        &sip,
        "100",
        &pcmu_offer(rtp.port()?, false),
        Duration::from_secs(30),
    )?;
    let trunk_call_id = call.call_id().to_owned();
    let sent = rtp.send_stream(relay, PACKETS, 0, 0x5eed_0002)?;
    let echoed = rtp.receive(usize::from(PACKETS), Duration::from_secs(20))?;
    assert_eq!(echoed.len(), usize::from(PACKETS));
    call.hang_up(Duration::from_secs(30))?;
    agent.wait()?.ensure_success()?;

    let record = sip_tests::cdr::wait_for_call(
        switchboard.cdr_dir(),
        &trunk_call_id,
        Duration::from_secs(30),
    )?;
    let path = sip_tests::cdr::str_field(&record, "recording")
        .ok_or_else(|| HarnessError::Unexpected(format!("no recording in the CDR: {record}")))?;
    assert!(
        path.starts_with(&switchboard.recordings_dir().display().to_string()),
        "{path}"
    );
    let mut wav = hound::WavReader::open(path)
        .map_err(|e| HarnessError::Unexpected(format!("reading {path}: {e}")))?;
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| HarnessError::Unexpected(format!("reading {path}: {e}")))?;
    let frames = samples.len() / 2;
    // 50 packets of 160 samples each way: one second, give or take the frames at the edges.
    assert!(
        (8000 - 320..=8000 + 1600).contains(&frames),
        "{frames} frames recorded for one second of audio"
    );
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    // The caller's channel holds exactly what the caller sent, decoded; the agent's channel
    // holds the echo of it.
    let expected: Vec<i16> = sent[10][12..].iter().map(|b| ulaw_to_linear(*b)).collect();
    for (name, channel) in [("caller (left)", &left), ("agent (right)", &right)] {
        assert!(
            channel
                .windows(expected.len())
                .any(|w| w == expected.as_slice()),
            "the {name} channel does not contain the decoded audio of packet 10"
        );
    }
    assert!(
        !std::path::Path::new(&format!("{path}.part")).exists(),
        "the .part file was renamed"
    );
    Ok(())
}

#[test]
fn an_agent_key_press_sent_as_info_reaches_the_trunk_as_rfc4733() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    // The agent's phone signals keys with SIP INFO only; the trunk negotiated telephone-event.
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer_sends_info.xml",
        Duration::from_secs(60),
    )?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(
        &sip,
        "100",
        &pcmu_offer(rtp.port()?, true),
        Duration::from_secs(30),
    )?;
    // Latch, then wait for the key press: the telephone-event packets (PT 101) of key 5.
    rtp.send_to(&RtpPeer::packet(0, 0, 7), relay)?;
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while events
        .iter()
        .filter(|p: &&sip_tests::rtp::Received| p.bytes[13] & 0x80 != 0)
        .count()
        < 3
        && std::time::Instant::now() < deadline
    {
        events.extend(
            rtp.receive(1, Duration::from_secs(1))?
                .into_iter()
                .filter(|p| p.payload_type() == Some(101)),
        );
    }
    assert!(
        events.len() >= 4,
        "telephone-events arrive: {}",
        events.len()
    );
    assert!(events.iter().all(|p| p.bytes[12] == 5), "event code 5");
    assert!(events[0].marker(), "the first packet starts the event");
    assert!(
        events
            .iter()
            .all(|p| p.timestamp() == events[0].timestamp()),
        "one event, one timestamp"
    );
    let ends = events.iter().filter(|p| p.bytes[13] & 0x80 != 0).count();
    assert_eq!(ends, 3, "the end packet is sent three times");
    assert!(
        events.iter().all(|p| p.from == relay),
        "from Switchboard's port"
    );
    call.hang_up(Duration::from_secs(30))?;
    agent.wait()?.ensure_success()?;
    Ok(())
}

#[test]
fn a_caller_behind_nat_is_answered_where_its_rtp_comes_from() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_echo_agent(&switchboard, "1001", Duration::from_secs(60))?;
    // The SDP names a private address the caller's NAT does not forward: its RTP really comes
    // from another port (the NAT's mapping).
    let advertised = RtpPeer::bind()?;
    let mapped = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(
        &sip,
        "100",
        &pcmu_offer(advertised.port()?, false),
        Duration::from_secs(30),
    )?;
    let sent = mapped.send_stream(relay, PACKETS, 0, 0x5eed_0005)?;
    let echoed = mapped.receive(usize::from(PACKETS), Duration::from_secs(20))?;
    assert_eq!(
        echoed.len(),
        usize::from(PACKETS),
        "Switchboard latched onto the real source and sends there"
    );
    assert_eq!(
        echoed[PACKETS as usize - 1].bytes,
        sent[PACKETS as usize - 1]
    );
    let stray = advertised.receive(1, Duration::from_millis(200))?;
    assert!(
        stray.is_empty(),
        "nothing goes to the address in the SDP once latched"
    );
    call.hang_up(Duration::from_secs(30))?;
    agent.wait()?.ensure_success()?;
    Ok(())
}
