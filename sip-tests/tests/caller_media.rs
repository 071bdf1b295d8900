//! What a caller can do and hear before an agent answers, driven from a Rust trunk that sends
//! its own RTP: in-band DTMF (no telephone-event) walks the IVR, the callback key leaves the
//! queue with a callback request (a callback keeps its place), a closed schedule plays
//! `closed` and hangs up. Bad input on the way gets a clear answer: a non-SDP body gets 415,
//! a garbled DTMF INFO gets 400, and a recording that cannot be written leaves the call
//! running.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use sip_tests::cdr::{str_field, wait_for_call};
use sip_tests::rtp::{dtmf_tone, event_code, pcmu_offer, RtpPeer, RtpStream};
use sip_tests::uac::{
    place_media_call, place_offerless_call, send_ack_for_failure, ConnectedCall, RequestSpec,
};
use sip_tests::{
    one_key_ivr, start_agent, start_agent_on_break, start_echo_agent, HarnessError, HarnessResult,
    Switchboard, SwitchboardConfig, UdpPeer, TWO_LEVEL_IVR,
};

const WAIT: Duration = Duration::from_secs(30);

/// Places a call to `did` whose media goes to `rtp` (PCMU, with telephone-event when
/// `rfc4733`); returns the call and Switchboard's RTP address for it.
fn call<'p>(
    sip: &'p UdpPeer,
    rtp: &RtpPeer,
    did: &str,
    rfc4733: bool,
) -> HarnessResult<(ConnectedCall<'p>, SocketAddr)> {
    place_media_call(sip, did, &pcmu_offer(rtp.port()?, rfc4733), WAIT)
}

/// Sends `packets` paced at 20 ms.
fn send_paced(rtp: &RtpPeer, to: SocketAddr, packets: &[Vec<u8>]) -> HarnessResult<()> {
    for packet in packets {
        rtp.send_to(packet, to)?;
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn silence(stream: &mut RtpStream, packets: usize) -> Vec<Vec<u8>> {
    (0..packets)
        .map(|_| stream.audio(0, &[0xff; 160]))
        .collect()
}

#[test]
fn in_band_tones_walk_the_menu_when_the_trunk_has_no_telephone_event() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: TWO_LEVEL_IVR.to_owned(),
        ..SwitchboardConfig::default()
    })?;
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_hangup.xml",
        Duration::from_secs(60),
    )?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call(&sip, &rtp, "300", false)?;
    let mut stream = RtpStream::new(0x1b_0001);
    let mut packets = silence(&mut stream, 5);
    for key in ['1', '2'] {
        let tone = dtmf_tone(key, 5).ok_or_else(|| HarnessError::Unexpected("key".into()))?;
        packets.extend(tone.iter().map(|payload| stream.audio(0, payload)));
        packets.extend(silence(&mut stream, 10));
    }
    send_paced(&rtp, relay, &packets)?;
    // The agent answers and hangs up; Switchboard then hangs up the caller.
    call.wait_for_bye(Duration::from_secs(60))?;
    agent.wait()?.ensure_success()?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(str_field(&record, "queue"), Some("support"), "{record}");
    assert_eq!(
        str_field(&record, "disposition"),
        Some("answered"),
        "{record}"
    );
    Ok(())
}

#[test]
fn the_callback_key_leaves_the_queue_with_a_callback_request() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        support_queue_lines: vec![
            "answer = \"on-queue\"".to_owned(),
            "callback_key = \"*\"".to_owned(),
        ],
        ..SwitchboardConfig::default()
    })?;
    // Logged in but on a break: the caller waits.
    let _agent = start_agent_on_break(&switchboard, "1001", Duration::from_secs(60))?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call(&sip, &rtp, "100", true)?;
    switchboard
        .api()
        .wait_for_queue("support", "holding the call", WAIT, |q| {
            q.get("waiting").and_then(Value::as_u64) == Some(1)
        })?;
    let mut stream = RtpStream::new(0x1b_0002);
    let mut packets = silence(&mut stream, 3);
    let star = event_code('*').ok_or_else(|| HarnessError::Unexpected("key".into()))?;
    packets.extend(stream.key_press(101, star));
    send_paced(&rtp, relay, &packets)?;
    // The caller hears the confirmation, then Switchboard hangs up.
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(
        str_field(&record, "disposition"),
        Some("callback-requested"),
        "{record}"
    );
    assert_eq!(str_field(&record, "queue"), Some("support"), "{record}");
    assert_eq!(str_field(&record, "caller"), Some("2000"), "{record}");
    // The caller's place is kept by the callback, which waits in the queue in their stead
    // (sip-tests/tests/callbacks.rs follows it to the end).
    let queue = switchboard.api().queue("support")?;
    assert_eq!(
        queue.get("waiting").and_then(Value::as_u64),
        Some(1),
        "{queue}"
    );
    Ok(())
}

#[test]
fn a_closed_schedule_plays_closed_and_hangs_up() -> HarnessResult<()> {
    let closed = r#"
[[schedule]]
name = "never"
time_zone = "Asia/Shanghai"
open = []

[[number]]
did = "300"
ivr = "main"

[[ivr]]
name = "main"
schedule = "never"
entry = "top"

[[ivr.menu]]
name = "top"
prompt = ["menu"]
keys = { "1" = "queue:support" }
"#;
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: closed.to_owned(),
        ..SwitchboardConfig::default()
    })?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call(&sip, &rtp, "300", true)?;
    rtp.send_to(&RtpStream::new(3).audio(0, &[0xff; 160]), relay)?;
    // The `closed` prompt reaches the caller before the hang-up.
    let heard = rtp.receive(10, WAIT)?;
    assert_eq!(heard.len(), 10, "the closed announcement is played");
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(
        str_field(&record, "disposition"),
        Some("ivr-completed"),
        "{record}"
    );
    assert!(record.get("queue").is_some_and(Value::is_null), "{record}");
    assert_eq!(
        record.get("ivr_path"),
        Some(&serde_json::json!(["closed"])),
        "the CDR says the caller met the closed branch: {record}"
    );
    assert_eq!(
        record.get("wait_s").and_then(Value::as_f64),
        Some(0.0),
        "time in the IVR is not queue wait: {record}"
    );
    assert_eq!(str_field(&record, "language"), Some("en"), "{record}");
    Ok(())
}

#[test]
fn a_body_that_is_not_sdp_gets_415_with_accept() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let local = sip.local_addr()?;
    let mut invite = RequestSpec::new("INVITE", &format!("sip:100@{}", sip.remote()), "2000");
    invite.content_type = "text/plain";
    invite.body = "hello".to_owned();
    let exchange = sip.request(&invite.render(local), WAIT)?;
    let response = &exchange.final_response;
    assert_eq!(response.status(), Some(415), "{}", response.to_text());
    assert_eq!(response.header("Accept"), Some("application/sdp"));
    sip_tests::uac::send_ack_for_failure(&sip, &invite, response)?;
    Ok(())
}

#[test]
fn a_garbled_dtmf_info_gets_400_and_the_call_goes_on() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: TWO_LEVEL_IVR.to_owned(),
        ..SwitchboardConfig::default()
    })?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (mut call, _relay) = call(&sip, &rtp, "300", true)?;
    let bad = call.request("INFO", "application/dtmf-relay", "Signal=X\r\n", WAIT)?;
    assert_eq!(
        bad.final_response.status(),
        Some(400),
        "{}",
        bad.final_response.to_text()
    );
    let good = call.request(
        "INFO",
        "application/dtmf-relay",
        "Signal=1\r\nDuration=160\r\n",
        WAIT,
    )?;
    assert_eq!(good.final_response.status(), Some(200));
    let call_id = call.call_id().to_owned();
    let hung_up = call.hang_up(WAIT)?;
    assert_eq!(hung_up.final_response.status(), Some(200));
    // Hanging up inside the menus is the IVR's outcome, not an abandoned queue call.
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        str_field(&record, "disposition"),
        Some("ivr-completed"),
        "{record}"
    );
    assert_eq!(str_field(&record, "language"), Some("en"), "{record}");
    assert!(
        record.get("ivr_ended").is_some_and(|v| !v.is_null()),
        "{record}"
    );
    Ok(())
}

#[test]
fn a_recording_that_cannot_be_written_is_counted_and_the_call_goes_on() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        support_queue_lines: vec!["record = \"all\"".to_owned()],
        ..SwitchboardConfig::default()
    })?;
    // A file where the recordings folder should be: every recording fails (like a full or
    // read-only disk, which root in a test cannot simulate with permissions).
    std::fs::write(switchboard.recordings_dir(), b"not a folder")
        .map_err(|e| HarnessError::io("blocking the recordings folder", e))?;
    let agent = start_echo_agent(&switchboard, "1001", Duration::from_secs(60))?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call(&sip, &rtp, "100", false)?;
    let sent = rtp.send_stream(relay, 25, 0, 0x1b_0004)?;
    let echoed = rtp.receive(sent.len(), WAIT)?;
    assert_eq!(echoed.len(), sent.len(), "audio keeps flowing");
    let call_id = call.call_id().to_owned();
    call.hang_up(WAIT)?;
    agent.wait()?.ensure_success()?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        str_field(&record, "disposition"),
        Some("answered"),
        "{record}"
    );
    assert!(
        record.get("recording").is_some_and(Value::is_null),
        "a failed recording is not named in the CDR: {record}"
    );
    let errors = switchboard
        .api()
        .metrics()?
        .counter("switchboard_recording_errors_total", &[]);
    assert_eq!(errors, 1.0);
    Ok(())
}

#[test]
fn a_voicemail_is_recorded_until_pound_and_named_in_the_cdr() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: one_key_ivr('3', "voicemail:support"),
        ..SwitchboardConfig::default()
    })?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call(&sip, &rtp, "300", true)?;
    let mut stream = RtpStream::new(0x1b_0005);
    let three = event_code('3').ok_or_else(|| HarnessError::Unexpected("key".into()))?;
    let mut packets = silence(&mut stream, 2);
    packets.extend(stream.key_press(101, three));
    send_paced(&rtp, relay, &packets)?;
    // The greeting ("leave a message after the tone") plays; wait until it is over, i.e. until
    // the caller has heard it, before speaking: the recording starts after it.
    let greeting = rtp.receive(5, WAIT)?;
    assert_eq!(greeting.len(), 5, "the voicemail greeting is played");
    rtp.receive_until_quiet(Duration::from_millis(500), WAIT)?;
    // One second of "speech", then # to finish.
    let speech: Vec<Vec<u8>> = (0..50)
        .map(|i| stream.audio(0, &[(i % 100) as u8 + 20; 160]))
        .collect();
    send_paced(&rtp, relay, &speech)?;
    let pound = event_code('#').ok_or_else(|| HarnessError::Unexpected("key".into()))?;
    send_paced(&rtp, relay, &stream.key_press(101, pound))?;
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(
        str_field(&record, "disposition"),
        Some("voicemail"),
        "{record}"
    );
    assert_eq!(str_field(&record, "queue"), Some("support"), "{record}");
    let path = str_field(&record, "recording")
        .ok_or_else(|| HarnessError::Unexpected(format!("no recording: {record}")))?;
    let wav = hound::WavReader::open(path)
        .map_err(|e| HarnessError::Unexpected(format!("reading {path}: {e}")))?;
    let seconds = f64::from(wav.duration()) / 8000.0;
    assert!(
        (0.5..=5.0).contains(&seconds),
        "the message lasts about one second, got {seconds} s"
    );
    Ok(())
}

#[test]
fn an_answered_caller_with_nobody_logged_in_hears_closed_before_the_hang_up() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        support_queue_lines: vec!["answer = \"on-queue\"".to_owned()],
        ..SwitchboardConfig::default()
    })?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call(&sip, &rtp, "100", false)?;
    rtp.send_to(&RtpStream::new(6).audio(0, &[0xff; 160]), relay)?;
    let heard = rtp.receive(25, WAIT)?;
    assert_eq!(
        heard.len(),
        25,
        "the caller is told before being hung up on"
    );
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(
        str_field(&record, "disposition"),
        Some("rejected"),
        "{record}"
    );
    assert_eq!(str_field(&record, "queue"), Some("support"), "{record}");
    let rejected = switchboard.api().metrics()?.counter(
        "switchboard_calls_rejected_total",
        &[("reason", "no-agents")],
    );
    assert_eq!(rejected, 1.0);
    Ok(())
}

/// Another program holds every port of the RTP range: each pair is found taken when call
/// control binds it for the call, before any SDP names it, so the call is refused cleanly
/// (503 + Retry-After, the trunk may try another node) instead of being answered without
/// audio, and the pairs are kept out of use.
#[test]
fn rtp_ports_taken_by_another_process_refuse_the_call_with_503() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: TWO_LEVEL_IVR.to_owned(),
        ..SwitchboardConfig::default()
    })?;
    let (first, last) = switchboard.rtp_ports();
    let squatters: Vec<std::net::UdpSocket> = (first..=last)
        .filter_map(|port| std::net::UdpSocket::bind(("127.0.0.1", port)).ok())
        .collect();
    assert_eq!(
        squatters.len(),
        usize::from(last - first + 1),
        "the test holds the whole range"
    );
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let uri = format!("sip:300@{}", sip.remote());
    let mut invite = RequestSpec::new("INVITE", &uri, "2000");
    invite.body = pcmu_offer(rtp.port()?, true);
    let refused = sip.request(&invite.render(sip.local_addr()?), WAIT)?;
    let response = &refused.final_response;
    send_ack_for_failure(&sip, &invite, response)?;
    assert_eq!(response.status(), Some(503), "{}", response.to_text());
    assert!(
        response.header("Retry-After").is_some(),
        "{}",
        response.to_text()
    );
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter(
            "switchboard_calls_rejected_total",
            &[("reason", "no-rtp-ports")]
        ),
        1.0
    );
    assert_eq!(
        metrics.counter("switchboard_rtp_port_pairs_busy_total", &[]),
        f64::from(squatters.len() as u32 / 2),
        "every pair was tried once and is kept out of use"
    );
    // The process is fine: it still answers OPTIONS.
    let options = sip_tests::uac::options(&sip, WAIT)?;
    assert_eq!(options.final_response.status(), Some(200));
    drop(squatters);
    Ok(())
}

#[test]
fn an_invite_without_sdp_is_answered_with_our_offer_and_the_ack_completes_it() -> HarnessResult<()>
{
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: TWO_LEVEL_IVR.to_owned(),
        ..SwitchboardConfig::default()
    })?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let port = rtp.port()?;
    let mut offered = String::new();
    let call = place_offerless_call(
        &sip,
        "300",
        |offer| {
            offered = offer.to_owned();
            // Answer with A-law only, so the choice is visibly ours.
            sip_tests::rtp::audio_offer(port, &[(8, "PCMA")], true)
        },
        WAIT,
    )?;
    assert!(
        offered.contains("RTP/AVP 0 8 101") && offered.contains("telephone-event/8000"),
        "Switchboard offers PCMU, PCMA and telephone-event:\n{offered}"
    );
    // The IVR starts once the answer is in: its greeting arrives in the answered codec.
    let greeting = rtp.receive(10, WAIT)?;
    assert_eq!(greeting.len(), 10, "the greeting plays");
    assert!(
        greeting.iter().all(|p| p.payload_type() == Some(8)),
        "in PCMA"
    );
    call.hang_up(WAIT)?;
    Ok(())
}

#[test]
fn an_ack_without_the_expected_answer_ends_the_call() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: TWO_LEVEL_IVR.to_owned(),
        ..SwitchboardConfig::default()
    })?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let call = place_offerless_call(&sip, "300", |_| String::new(), WAIT)?;
    let bye = call.wait_for_bye(WAIT)?;
    assert_eq!(bye.method(), Some("BYE"));
    let rejected = switchboard.api().metrics()?.counter(
        "switchboard_calls_rejected_total",
        &[("reason", "bad-sdp-answer")],
    );
    assert_eq!(rejected, 1.0);
    Ok(())
}
