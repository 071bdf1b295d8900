//! The post-call survey: when the agent hangs up first on a queue with `survey`, the caller
//! stays on, hears the survey prompt and keys a score, by RFC 4733 or by SIP INFO; the score
//! lands in the CDR's `survey_score`. A key outside the scale is ignored and no score within
//! the wait ends the call without one. The call's end stays the agent's hang-up.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use sip_tests::cdr::{report_around_today, str_field, wait_for_call};
use sip_tests::rtp::{event_code, pcmu_offer, RtpPeer, RtpStream};
use sip_tests::uac::{place_media_call, ConnectedCall};
use sip_tests::{
    start_agent, HarnessError, HarnessResult, SippProcess, Switchboard, SwitchboardConfig, UdpPeer,
};

/// How long a phone, a call or a record may take: generous, the machine is shared.
const WAIT: Duration = Duration::from_secs(90);

/// `support` answers callers on queueing and surveys them on `scale`; its agent 1001 answers
/// and hangs up at once.
fn start(scale: &str) -> HarnessResult<(Switchboard, SippProcess)> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        support_queue_lines: vec![
            "answer = \"on-queue\"".into(),
            format!("survey = \"{scale}\""),
            "survey_prompt = \"welcome\"".into(),
        ],
        ..SwitchboardConfig::default()
    })?;
    let agent = start_agent(&switchboard, "1001", "agent_hangup.xml", WAIT)?;
    Ok((switchboard, agent))
}

/// Calls DID 100 with media to `rtp` (PCMU and telephone-event) and returns once the agent
/// has answered and hung up, so the survey has begun.
fn call_until_the_agent_hangs_up<'p>(
    sip: &'p UdpPeer,
    rtp: &RtpPeer,
    agent: SippProcess,
) -> HarnessResult<(ConnectedCall<'p>, SocketAddr)> {
    let (call, relay) = place_media_call(sip, "100", &pcmu_offer(rtp.port()?, true), WAIT)?;
    // The phone's BYE got its 200: the survey has started.
    agent.wait()?.ensure_success()?;
    Ok((call, relay))
}

/// Presses `key` by RFC 4733 (after a little audio, so the relay has latched the caller).
fn press(rtp: &RtpPeer, relay: SocketAddr, key: char, ssrc: u32) -> HarnessResult<()> {
    let mut stream = RtpStream::new(ssrc);
    let mut packets: Vec<Vec<u8>> = (0..3).map(|_| stream.audio(0, &[0xff; 160])).collect();
    let code = event_code(key).ok_or_else(|| HarnessError::Unexpected(format!("key {key}")))?;
    packets.extend(stream.key_press(101, code));
    for packet in packets {
        rtp.send_to(&packet, relay)?;
        // RTP is paced like a phone sends it (20 ms a packet).
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `switchboard report --low-scores <max_score> --format csv` over the CDRs of `dir` from
/// yesterday to tomorrow (UTC).
fn low_scores(dir: &Path, max_score: u8) -> HarnessResult<String> {
    let max_score = max_score.to_string();
    report_around_today(dir, &["--format", "csv", "--low-scores", &max_score])
}

fn assert_agent_ended(record: &Value) {
    assert_eq!(str_field(record, "hangup_side"), Some("agent"), "{record}");
    assert_eq!(
        str_field(record, "disposition"),
        Some("answered"),
        "{record}"
    );
    assert_eq!(str_field(record, "agent"), Some("1001"), "{record}");
}

#[test]
fn a_score_keyed_by_rfc_4733_lands_in_the_cdr() -> HarnessResult<()> {
    let (switchboard, agent) = start("1-10")?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call_until_the_agent_hangs_up(&sip, &rtp, agent)?;
    // The agent is free again while the caller is in the survey.
    let api = switchboard.api();
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    let listed = api.get("/api/calls")?.json()?;
    assert_eq!(listed["calls"][0]["state"], "survey", "{listed}");
    assert_eq!(listed["calls"][0]["agent"], Value::Null, "{listed}");
    press(&rtp, relay, '8', 0x5e_0001)?;
    // Score taken: "goodbye", then Switchboard hangs up.
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(record.get("survey_score"), Some(&json!(8)), "{record}");
    assert_agent_ended(&record);
    // The follow-up list has the call at a threshold of 8, not at 7.
    let id = str_field(&record, "id").unwrap_or_default();
    let row = format!(",{id},support,1001,2000,,8");
    let listed = low_scores(switchboard.cdr_dir(), 8)?;
    assert!(listed.contains(&row), "{row} missing in\n{listed}");
    let listed = low_scores(switchboard.cdr_dir(), 7)?;
    assert!(!listed.contains(id), "{listed}");
    Ok(())
}

#[test]
fn a_score_keyed_by_info_lands_in_the_cdr_and_0_means_10() -> HarnessResult<()> {
    let (switchboard, agent) = start("1-10")?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (mut call, _relay) = call_until_the_agent_hangs_up(&sip, &rtp, agent)?;
    let info = call.request(
        "INFO",
        "application/dtmf-relay",
        "Signal=0\r\nDuration=160\r\n",
        WAIT,
    )?;
    assert_eq!(
        info.final_response.status(),
        Some(200),
        "{}",
        info.final_response.to_text()
    );
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(record.get("survey_score"), Some(&json!(10)), "{record}");
    assert_agent_ended(&record);
    Ok(())
}

#[test]
fn a_key_outside_the_scale_is_ignored_and_no_score_ends_the_call_without_one() -> HarnessResult<()>
{
    let (switchboard, agent) = start("1-5")?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = call_until_the_agent_hangs_up(&sip, &rtp, agent)?;
    // 9 is not a score on a 1-5 survey; the key wait then runs out.
    press(&rtp, relay, '9', 0x5e_0003)?;
    call.wait_for_bye(WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), call.call_id(), WAIT)?;
    assert_eq!(record.get("survey_score"), Some(&Value::Null), "{record}");
    assert_agent_ended(&record);
    Ok(())
}
