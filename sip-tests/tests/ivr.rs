//! The IVR and what a waiting caller hears, through the real binary: SIPp walks a two-level
//! menu into a queue with RFC 4733 key presses (SIPp's own DTMF pcaps) and with SIP INFO; a
//! caller queued on an answering queue gets music on hold as 20 ms RTP packets.

use std::time::{Duration, Instant};

use serde_json::Value;
use sip_tests::cdr::{of_type, str_field, wait_for_records};
use sip_tests::rtp::{audio_offer, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{
    start_agent, start_agent_on_break, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer,
    TWO_LEVEL_IVR,
};

/// DID 300 answers with a two-level menu: 1 = sales menu, then 2 = queue `support`.
fn ivr_config() -> SwitchboardConfig {
    SwitchboardConfig {
        extra_toml: TWO_LEVEL_IVR.to_owned(),
        ..SwitchboardConfig::default()
    }
}

/// Runs `scenario` against DID 300 with keys 1 then 2 (`key1`/`key2` scenario variables, or
/// fixed in the scenario when `keys_in_scenario`), and returns the call's CDR.
fn walk_menu_into_queue(scenario: &str, keys_in_scenario: bool) -> HarnessResult<Value> {
    let switchboard = Switchboard::start(ivr_config())?;
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_hangup.xml",
        Duration::from_secs(60),
    )?;
    let mut trunk = switchboard
        .sipp_client(scenario)?
        .service("300")
        .timeout(Duration::from_secs(60));
    if !keys_in_scenario {
        trunk = trunk.set("key1", "1").set("key2", "2");
    }
    let trunk = trunk.run()?;
    trunk.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let records = wait_for_records(
        switchboard.cdr_dir(),
        "one call record",
        Duration::from_secs(30),
        |records| of_type(records, "call").len() == 1,
    )?;
    Ok(of_type(&records, "call")[0].clone())
}

fn assert_walked_into_support(call: &Value) {
    assert_eq!(str_field(call, "disposition"), Some("answered"), "{call}");
    assert_eq!(str_field(call, "queue"), Some("support"), "{call}");
    assert_eq!(str_field(call, "agent"), Some("1001"), "{call}");
    let path: Vec<&str> = call
        .get("ivr_path")
        .and_then(Value::as_array)
        .map(|steps| steps.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        path.iter().any(|s| s.contains("top")) && path.iter().any(|s| s.contains("sales")),
        "the CDR's IVR path names both menus: {call}"
    );
    assert!(
        call.get("ivr_ended").is_some_and(|v| !v.is_null()),
        "{call}"
    );
}

#[test]
fn rfc4733_key_presses_walk_the_menu_into_the_queue() -> HarnessResult<()> {
    let call = walk_menu_into_queue("trunk_ivr_rfc4733.xml", true)?;
    assert_walked_into_support(&call);
    Ok(())
}

#[test]
fn sip_info_key_presses_walk_the_menu_into_the_queue() -> HarnessResult<()> {
    let call = walk_menu_into_queue("trunk_ivr_info.xml", false)?;
    assert_walked_into_support(&call);
    Ok(())
}

#[test]
fn a_caller_waiting_on_an_answering_queue_hears_music_in_20_ms_packets() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        // No announcements: only the music is listened to here.
        support_queue_lines: vec![
            "answer = \"on-queue\"".to_owned(),
            "announce_every_s = 0".to_owned(),
        ],
        ..SwitchboardConfig::default()
    })?;
    // An agent is logged in but not ready, so the call waits.
    let agent = start_agent_on_break(&switchboard, "1001", Duration::from_secs(60))?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let offer = audio_offer(rtp.port()?, &[(8, "PCMA"), (0, "PCMU")], false);
    let (call, relay) = place_media_call(&sip, "100", &offer, Duration::from_secs(30))?;
    let answer = call.answer.final_response.body.clone();
    assert!(
        answer.contains("RTP/AVP 8"),
        "PCMA, the caller's first choice, is used:\n{answer}"
    );
    // Symmetric RTP: one packet lets the relay learn our address as a NAT'd phone would.
    rtp.send_to(&RtpPeer::packet(0, 8, 1), relay)?;

    let started = Instant::now();
    let packets = rtp.receive(100, Duration::from_secs(30))?;
    let elapsed = started.elapsed();
    assert_eq!(packets.len(), 100, "two seconds of music arrive");
    assert!(
        packets[0].marker(),
        "the music starts a talkspurt (marker bit)"
    );
    assert!(
        packets[1..].iter().all(|p| !p.marker()),
        "one talkspurt: no marker after the first packet"
    );
    for pair in packets.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            b.payload_type(),
            Some(8),
            "music is sent in the call's codec"
        );
        assert_eq!(b.bytes.len(), 12 + 160, "20 ms of G.711 per packet");
        assert_eq!(b.ssrc(), a.ssrc(), "one stream");
        assert_eq!(
            b.sequence(),
            a.sequence().map(|s| s.wrapping_add(1)),
            "consecutive sequence numbers"
        );
        // 160 samples = 20 ms a packet; on a loaded machine a late tick is skipped and the
        // timestamp then jumps by whole 20 ms frames, keeping the receiver's clock right.
        let step = b
            .timestamp()
            .zip(a.timestamp())
            .map(|(b, a)| b.wrapping_sub(a));
        assert!(
            step.is_some_and(|step| step >= 160 && step % 160 == 0),
            "timestamps advance in whole 20 ms frames: {step:?}"
        );
    }
    // Paced, not burst: 100 packets of 20 ms cannot arrive in much less than two seconds.
    assert!(
        elapsed >= Duration::from_millis(1500),
        "100 packets arrived in {elapsed:?}: not sent at 20 ms intervals"
    );
    call.hang_up(Duration::from_secs(30))?;
    drop(agent);
    Ok(())
}
