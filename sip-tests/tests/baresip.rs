//! Interoperability with an independent SIP stack: baresip (libre) registers as an agent with
//! digest authentication and auto-answers a trunk call placed with SIPp through Switchboard, and
//! its audio flows both ways through Switchboard's media relay.
//!
//! Transfers with a real phone (baresip 1.0.0, whose menu has `transfer <uri>` — a blind
//! transfer by REFER — and no attended-transfer command): baresip as agent 1001 answers a
//! caller and transfers it with its own command (driven over `ctrl_tcp`, whose events show
//! how baresip read Switchboard's NOTIFY): to an unknown number the NOTIFY says 404 (baresip
//! 1.0's menu then hangs its call up itself); to agent 1002 Switchboard accepts the REFER (202, then a NOTIFY
//! whose 2xx sipfrag baresip takes as success), the caller then hears 1002's tone instead of
//! baresip's, the live call list names 1002 and the CDR has the blind transfer. And baresip
//! (echoing what it hears) as the *consulted* agent 1002 of an attended transfer from the
//! API: it auto-answers the consult, and after `complete` the caller's voice comes back
//! through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_tests::agent_phone::AgentPhone;
use sip_tests::baresip::Baresip;
use sip_tests::cdr::wait_for_call;
use sip_tests::rtp::{pcmu_offer, pcmu_samples, sdp_audio_address, tone_share, RtpPeer};
use sip_tests::tone_talker::Talker;
use sip_tests::uac::place_media_call;
use sip_tests::{
    start_agent, AgentAccount, HarnessError, HarnessResult, Switchboard, SwitchboardConfig,
    TrunkConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);
/// baresip's microphone (`ausine`).
const BARESIP_HZ: f64 = 440.0;
const CALLER_HZ: f64 = 700.0;
/// The other agent's phone (the harness's).
const PHONE_HZ: f64 = 1500.0;
/// A tone makes up about half of a two-tone mix and nearly all of a lone one; absent, it is
/// quantisation noise (or the caller's hold music, which has no energy at these frequencies).
const PRESENT: f64 = 0.15;
const ABSENT: f64 = 0.05;

/// Baresip as agent 1001, registered through digest auth: logged in and Ready.
fn start_agent_1001(switchboard: &Switchboard) -> HarnessResult<Baresip> {
    let baresip = Baresip::agent(
        &switchboard.dir().join("baresip"),
        "1001",
        "secret1001",
        switchboard.sip_addr(),
    )?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;
    Ok(baresip)
}

#[test]
fn baresip_registers_as_an_agent_and_answers_a_trunk_call() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let baresip = start_agent_1001(&switchboard)?;

    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("1000")
        .run()?;
    trunk.ensure_success()?;
    baresip.wait_for_log("Call established", WAIT)?;
    baresip.wait_for_log("terminated", WAIT)?;
    Ok(())
}

#[test]
fn baresip_audio_flows_both_ways_through_the_relay() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let baresip = start_agent_1001(&switchboard)?;

    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(&sip, "100", &pcmu_offer(rtp.port()?, false), WAIT)?;
    // baresip's 440 Hz tone reaches the trunk from Switchboard's port, not from baresip's.
    let from_agent = rtp.receive(50, WAIT)?;
    assert_eq!(from_agent.len(), 50, "baresip's audio reaches the trunk");
    assert!(from_agent
        .iter()
        .all(|p| p.from == relay && p.payload_type() == Some(0)));
    assert!(
        from_agent
            .iter()
            .any(|p| p.bytes[12..].iter().any(|b| *b != 0xff && *b != 0x7f)),
        "the tone is not silence"
    );
    // And the trunk's audio reaches baresip, from Switchboard's agent-side port. (baresip
    // 1.0's aufile module has no player, so its own log is the witness.)
    rtp.send_stream(relay, 50, 0, 0x5eed_0003)?;
    let needle = "stream: incoming rtp for 'audio' established, receiving from 127.0.0.1:";
    baresip.wait_for_log(needle, WAIT)?;
    let log = baresip.log();
    let source_port: u16 = log
        .split(needle)
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .ok_or_else(|| HarnessError::Unexpected(format!("no RTP source in:\n{log}")))?;
    let (first, last) = switchboard.rtp_ports();
    assert!(
        (first..=last).contains(&source_port),
        "baresip hears the trunk from Switchboard's range {first}-{last}, not from {source_port}"
    );
    call.hang_up(WAIT)?;
    baresip.wait_for_log("terminated", WAIT)?;
    Ok(())
}

/// baresip as the caller, through a trunk that authenticates with Digest: the trunk has no
/// address list, so only an INVITE answering the 407 with the trunk's credentials gets
/// through; the call to DID 101 reaches the agent, and the agent's BYE ends it at baresip.
#[test]
fn baresip_calls_through_a_digest_trunk() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "pbx".into(),
            allow: Vec::new(),
            credentials: Some(("trunkuser".into(), "trunkpass".into())),
        }],
        dids: vec!["101".into()],
        ..SwitchboardConfig::default()
    })?;
    let agent = start_agent(&switchboard, "1001", "agent_hangup.xml", WAIT)?;
    let baresip = Baresip::caller(
        &switchboard.dir().join("baresip"),
        "trunkuser",
        "trunkpass",
        switchboard.sip_addr(),
        &format!("sip:101@{}", switchboard.sip_addr()),
    )?;
    agent.wait()?.ensure_success()?;
    baresip.wait_for_log("Call established", WAIT)?;
    // libre closes a session ended by the far end's BYE with ECONNRESET.
    // libre closes a session the far end ended with BYE as "Connection reset by peer".
    baresip.wait_for_log("session closed", WAIT)?;
    Ok(())
}

/// Agents 1001 (who takes the support queue's calls) and 1002 (in no queue: reached only by
/// a transfer or a consult).
fn two_agents() -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob").without_support(),
        ],
        ..SwitchboardConfig::default()
    }
}

/// Listens on `rtp` (half a second at a time) until `condition` holds for what arrives.
fn wait_until(rtp: &RtpPeer, what: &str, condition: impl Fn(&[i16]) -> bool) -> HarnessResult<()> {
    let deadline = Instant::now() + WAIT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = pcmu_samples(&rtp.receive(25, Duration::from_secs(2))?);
        if !last.is_empty() && condition(&last) {
            return Ok(());
        }
    }
    Err(HarnessError::Unexpected(format!(
        "{what} within {} s; last window: baresip {:.2} caller {:.2} phone {:.2}",
        WAIT.as_secs(),
        tone_share(&last, BARESIP_HZ),
        tone_share(&last, CALLER_HZ),
        tone_share(&last, PHONE_HZ),
    )))
}

/// The only live call's id and its `agent` field.
fn live_call(switchboard: &Switchboard) -> HarnessResult<(u64, String)> {
    let listed = switchboard.api().get("/api/calls")?.json()?;
    let call = &listed["calls"][0];
    let id = call["id"]
        .as_u64()
        .ok_or_else(|| HarnessError::Unexpected(format!("no call listed: {listed}")))?;
    Ok((id, call["agent"].as_str().unwrap_or_default().to_owned()))
}

/// Each leg of the CDR as `role:party`, in order.
fn leg_roles(record: &serde_json::Value) -> Vec<String> {
    record["legs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            format!(
                "{}:{}",
                l["role"].as_str().unwrap_or_default(),
                l["party"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn baresip_blind_transfers_its_caller_to_another_agent_with_its_transfer_command(
) -> HarnessResult<()> {
    let switchboard = Switchboard::start(two_agents())?;
    let baresip = start_agent_1001(&switchboard)?;
    let phone = AgentPhone::register(&switchboard, "1002")?;
    switchboard
        .api()
        .wait_for_agent_state("1002", "ready", WAIT)?;

    let caller_rtp = Arc::new(RtpPeer::bind()?);
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) =
        place_media_call(&sip, "100", &pcmu_offer(caller_rtp.port()?, false), WAIT)?;
    let _caller_talks = Talker::start(caller_rtp.clone(), relay, CALLER_HZ, 0xca11);
    baresip.wait_for_log("Call established", WAIT)?;
    wait_until(&caller_rtp, "the caller hears baresip", |s| {
        tone_share(s, BARESIP_HZ) > PRESENT
    })?;
    assert_eq!(live_call(&switchboard)?.1, "1001");

    // The agent transfers with baresip's own menu command: a REFER to 1002.
    let mut control = baresip.control(WAIT)?;
    let target = format!("sip:1002@{}", switchboard.sip_addr());
    control.command("transfer", &target, WAIT)?;
    let invite = phone.next_request("INVITE", WAIT)?;
    let phone_relay = sdp_audio_address(&invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the INVITE".into()))?;
    let phone_rtp = Arc::new(RtpPeer::bind()?);
    phone.answer(invite, &pcmu_offer(phone_rtp.port()?, false), WAIT)?;
    let _phone_talks = Talker::start(phone_rtp.clone(), phone_relay, PHONE_HZ, 0x1002);
    // Switchboard answered the REFER with 202 and then a NOTIFY with `SIP/2.0 200 OK`:
    // baresip closes its call as transferred (only a 2xx sipfrag does that; a refusal
    // would be TRANSFER_FAILED).
    let closed = control.wait_for_event("CALL_CLOSED", WAIT)?;
    assert_eq!(closed["param"], "Call transfered", "{closed}");
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter(
            "switchboard_transfers_total",
            &[("kind", "blind"), ("result", "accepted")]
        ),
        1.0
    );

    // The caller talks to 1002 now, and no longer hears baresip.
    wait_until(&caller_rtp, "the caller hears 1002 and not baresip", |s| {
        tone_share(s, PHONE_HZ) > PRESENT && tone_share(s, BARESIP_HZ) < ABSENT
    })?;
    wait_until(&phone_rtp, "1002 hears the caller", |s| {
        tone_share(s, CALLER_HZ) > PRESENT
    })?;
    assert_eq!(live_call(&switchboard)?.1, "1002");

    let call_id = call.call_id().to_owned();
    call.hang_up(WAIT)?;
    let bye = phone.next_request("BYE", WAIT)?;
    phone.reply(&bye, 200, "OK", &[], "")?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["agent"], "1002", "{record}");
    let transfers = record["transfers"].as_array().cloned().unwrap_or_default();
    assert_eq!(transfers.len(), 1, "{record}");
    assert_eq!(transfers[0]["kind"], "blind", "{record}");
    assert_eq!(transfers[0]["from_agent"], "1001", "{record}");
    assert_eq!(transfers[0]["to"], "1002", "{record}");
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "agent:1002"],
        "{record}"
    );
    Ok(())
}

#[test]
fn baresip_answers_a_consult_and_takes_the_call_when_it_is_completed() -> HarnessResult<()> {
    let switchboard = Switchboard::start(two_agents())?;
    let api = switchboard.api();
    let agent = AgentPhone::register(&switchboard, "1001")?;
    // 1002 is a baresip that echoes what it hears: whoever talks to it hears themselves.
    let baresip = Baresip::echo_agent(
        &switchboard.dir().join("baresip"),
        "1002",
        "secret1002",
        switchboard.sip_addr(),
    )?;
    api.wait_for_agent_state("1002", "ready", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;

    // The caller and agent 1001 (the harness's phone) talk.
    let caller_rtp = Arc::new(RtpPeer::bind()?);
    let agent_rtp = Arc::new(RtpPeer::bind()?);
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let agent_port = agent_rtp.port()?;
    let (placed, answered) = std::thread::scope(|scope| {
        let answering = scope.spawn(|| agent.answer_next(&pcmu_offer(agent_port, false), WAIT));
        let placed = caller_rtp
            .port()
            .and_then(|port| place_media_call(&sip, "100", &pcmu_offer(port, false), WAIT));
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err(HarnessError::Unexpected("agent thread panicked".into())));
        (placed, answered)
    });
    let (call, caller_relay) = placed?;
    let agent_relay = sdp_audio_address(&answered?.invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the agent's INVITE".into()))?;
    let _caller_talks = Talker::start(caller_rtp.clone(), caller_relay, CALLER_HZ, 0xca11);
    let agent_talks = Talker::start(agent_rtp.clone(), agent_relay, PHONE_HZ, 0x1001);
    wait_until(&caller_rtp, "the caller hears 1001", |s| {
        tone_share(s, PHONE_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT
    })?;

    // The API consults 1002: baresip auto-answers, and 1001 hears itself echoed by it (the
    // caller, on hold, is in nobody's mix).
    let (id, _) = live_call(&switchboard)?;
    api.post(&format!("/api/calls/{id}/consult"), r#"{"to": "1002"}"#)?
        .expect_status(200, "consult")?;
    baresip.wait_for_log("Call established", WAIT)?;
    wait_until(&agent_rtp, "1001 hears its voice back from baresip", |s| {
        tone_share(s, PHONE_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT
    })?;

    // Complete: 1001's phone is hung up; the caller's voice now goes to baresip and comes
    // back (Switchboard never echoes: only baresip can have sent it back), 1001 is gone.
    api.post(&format!("/api/calls/{id}/complete"), "")?
        .expect_status(200, "complete")?;
    let bye = agent.next_request("BYE", WAIT)?;
    agent.reply(&bye, 200, "OK", &[], "")?;
    drop(agent_talks);
    wait_until(
        &caller_rtp,
        "the caller hears its voice back from baresip, and not 1001",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, PHONE_HZ) < ABSENT,
    )?;
    assert_eq!(live_call(&switchboard)?.1, "1002");

    let call_id = call.call_id().to_owned();
    call.hang_up(WAIT)?;
    baresip.wait_for_log("terminated", WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["agent"], "1002", "{record}");
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:1002"],
        "{record}"
    );
    Ok(())
}

#[test]
fn baresip_learns_from_the_notify_that_a_transfer_to_nobody_failed() -> HarnessResult<()> {
    let switchboard = Switchboard::start(two_agents())?;
    let baresip = start_agent_1001(&switchboard)?;
    let caller_rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, _) = place_media_call(&sip, "100", &pcmu_offer(caller_rtp.port()?, false), WAIT)?;
    baresip.wait_for_log("Call established", WAIT)?;

    let mut control = baresip.control(WAIT)?;
    let nobody = format!("sip:9999@{}", switchboard.sip_addr());
    control.command("transfer", &nobody, WAIT)?;
    // Switchboard accepted the REFER (202) and reported the outcome in the NOTIFY's sipfrag.
    let failed = control.wait_for_event("TRANSFER_FAILED", WAIT)?;
    assert_eq!(failed["param"], "404 Not Found", "{failed}");
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter(
            "switchboard_transfers_total",
            &[("kind", "blind"), ("result", "refused")]
        ),
        1.0
    );
    // Switchboard keeps the call with the agent (the SIPp tests show the caller stays), but
    // baresip 1.0's menu ends a call whose transfer failed (newer versions resume it): its
    // BYE ends the call, and the CDR has no transfer.
    let call_id = call.call_id().to_owned();
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["agent"], "1001", "{record}");
    assert_eq!(record["hangup_side"], "agent", "{record}");
    assert_eq!(
        record["transfers"].as_array().map(Vec::len),
        Some(0),
        "{record}"
    );
    Ok(())
}
