//! Supervisors from their phones: supervisor 1003 dials `*411001` while agent 1001 talks to a
//! caller. Each party sends its own tone (caller 500 Hz, agent 1100 Hz, supervisor 1900 Hz)
//! and each party's received audio is analysed (Goertzel): in listen mode the supervisor
//! hears caller and agent and nobody hears the supervisor; in whisper mode (key 2 by SIP INFO)
//! the agent hears the supervisor and the caller never does (and `GET /api/calls` shows the
//! supervisor's leg and mode); in barge mode (key 3) the caller
//! hears the supervisor too; key 1 sent as RFC 4733 goes back to listening. The agent's phone
//! gets no SIP at all, and the CDR lists the supervision with its modes. A supervisor can
//! also be rung into a call from the API (`POST /api/calls/{id}/supervise`), and refusals of
//! both ways carry a clear reason.
//!
//! After an attended transfer the colleague (1002) who took the call is supervised the same
//! way: `*421002` coaches the colleague (the caller never hears the supervisor; key 3 then
//! barges in and the caller hears the supervisor too), the API
//! rings a supervisor into that call, and the CDR names the colleague as the agent of both
//! supervisions; during the consult itself nobody can join.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_tests::agent_phone::AgentPhone;
use sip_tests::cdr::wait_for_call;
use sip_tests::digest::{Credentials, DigestAlgorithm};
use sip_tests::rtp::{pcmu_offer, pcmu_samples, sdp_audio_address, tone_share, RtpPeer, RtpStream};
use sip_tests::tone_talker::Talker;
use sip_tests::uac::{authenticated_invite, place_media_call, ConnectedCall};
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(30);
const CALLER_HZ: f64 = 500.0;
const AGENT_HZ: f64 = 1100.0;
const SUPERVISOR_HZ: f64 = 1900.0;
/// The colleague an attended transfer passes the call to.
const COLLEAGUE_HZ: f64 = 1500.0;
/// A tone makes up about half of a two-tone mix and nearly all of a lone one; absent, it is
/// quantisation noise.
const PRESENT: f64 = 0.15;
const ABSENT: f64 = 0.05;

fn config() -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob").without_support(),
            AgentAccount::new("1003", "Carol")
                .without_support()
                .as_supervisor(),
        ],
        ..SwitchboardConfig::default()
    }
}

/// A trunk caller and agent 1001 connected through Switchboard, each sending its tone.
struct Conversation<'p> {
    call: ConnectedCall<'p>,
    caller_rtp: Arc<RtpPeer>,
    agent_rtp: Arc<RtpPeer>,
    _caller_talks: Talker,
    /// The agent's phone talking; taken (and so stopped) when that phone is hung up.
    agent_talks: Option<Talker>,
}

/// Calls DID 100 from `caller_sip`; `agent` answers; both start talking, and the caller
/// hears the agent before this returns.
fn converse<'p>(agent: &AgentPhone, caller_sip: &'p UdpPeer) -> HarnessResult<Conversation<'p>> {
    let agent_rtp = Arc::new(RtpPeer::bind()?);
    let caller_rtp = Arc::new(RtpPeer::bind()?);
    let agent_port = agent_rtp.port()?;
    let (placed, agent_call) = std::thread::scope(|scope| {
        let answering = scope.spawn(|| agent.answer_next(&pcmu_offer(agent_port, false), WAIT));
        let placed = caller_rtp
            .port()
            .and_then(|port| place_media_call(caller_sip, "100", &pcmu_offer(port, false), WAIT));
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err(HarnessError::Unexpected("agent thread panicked".into())));
        (placed, answered)
    });
    let (call, caller_relay) = placed?;
    let agent_relay = sdp_audio_address(&agent_call?.invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the agent's INVITE".into()))?;
    let caller_talks = Talker::start(caller_rtp.clone(), caller_relay, CALLER_HZ, 0xca11);
    let agent_talks = Talker::start(agent_rtp.clone(), agent_relay, AGENT_HZ, 0xa6e7);
    wait_until(&caller_rtp, "the caller hears the agent", |s| {
        tone_share(s, AGENT_HZ) > PRESENT
    })?;
    Ok(Conversation {
        call,
        caller_rtp,
        agent_rtp,
        _caller_talks: caller_talks,
        agent_talks: Some(agent_talks),
    })
}

/// Half a second of what `rtp` receives, decoded.
fn heard(rtp: &RtpPeer) -> HarnessResult<Vec<i16>> {
    Ok(pcmu_samples(&rtp.receive(25, Duration::from_secs(2))?))
}

/// Listens on `rtp` until `condition` holds for what arrives (or fails after `WAIT`).
fn wait_until(rtp: &RtpPeer, what: &str, condition: impl Fn(&[i16]) -> bool) -> HarnessResult<()> {
    let deadline = Instant::now() + WAIT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = heard(rtp)?;
        if !last.is_empty() && condition(&last) {
            return Ok(());
        }
    }
    Err(HarnessError::Unexpected(format!(
        "{what} within {} s; last window: caller {:.2} agent {:.2} supervisor {:.2} colleague {:.2}",
        WAIT.as_secs(),
        tone_share(&last, CALLER_HZ),
        tone_share(&last, AGENT_HZ),
        tone_share(&last, SUPERVISOR_HZ),
        tone_share(&last, COLLEAGUE_HZ),
    )))
}

/// `rtp` does not hear the supervisor over a few windows.
fn never_hears_supervisor(rtp: &RtpPeer, who: &str) -> HarnessResult<()> {
    for _ in 0..4 {
        let samples = heard(rtp)?;
        let share = tone_share(&samples, SUPERVISOR_HZ);
        assert!(
            !samples.is_empty() && share < ABSENT,
            "{who} must not hear the supervisor (share {share:.3})"
        );
    }
    Ok(())
}

/// The supervisor starts talking to `relay` (Switchboard's side of the supervisor's leg) and
/// hears caller and agent before this returns.
fn supervisor_joins(rtp: &Arc<RtpPeer>, relay: SocketAddr) -> HarnessResult<Talker> {
    let talker = Talker::start(rtp.clone(), relay, SUPERVISOR_HZ, 0x5e9);
    wait_until(rtp, "the supervisor hears caller and agent", |s| {
        tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT
    })?;
    Ok(talker)
}

/// The supervisions of the call's CDR, once written.
fn supervisions(switchboard: &Switchboard, call_id: &str) -> HarnessResult<Vec<serde_json::Value>> {
    let record = wait_for_call(switchboard.cdr_dir(), call_id, WAIT)?;
    Ok(record["supervisions"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

#[test]
fn a_supervisor_listens_whispers_and_barges_and_the_cdr_keeps_it() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let supervisor_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let supervisor_rtp = Arc::new(RtpPeer::bind()?);
    let conversation = converse(&agent, &caller_sip)?;
    let (caller_rtp, agent_rtp) = (&*conversation.caller_rtp, &*conversation.agent_rtp);

    // Listen.
    let credentials = Credentials {
        username: "1003",
        password: "secret1003",
    };
    let (_, joined) = authenticated_invite(
        &supervisor_sip,
        "*411001",
        &credentials,
        DigestAlgorithm::Md5,
        &pcmu_offer(supervisor_rtp.port()?, true),
        WAIT,
    )?;
    let mut supervision = joined.map_err(|refused| {
        HarnessError::Unexpected(format!(
            "*411001 refused:\n{}",
            refused.final_response.to_text()
        ))
    })?;
    let supervisor_relay = sdp_audio_address(&supervision.answer.final_response.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the 200".into()))?;
    let _supervisor_talks = supervisor_joins(&supervisor_rtp, supervisor_relay)?;
    never_hears_supervisor(caller_rtp, "the caller (listen)")?;
    never_hears_supervisor(agent_rtp, "the agent (listen)")?;

    // Whisper, by SIP INFO.
    let info = supervision.request(
        "INFO",
        "application/dtmf-relay",
        "Signal=2\r\nDuration=100\r\n",
        WAIT,
    )?;
    assert_eq!(info.final_response.status(), Some(200));
    wait_until(agent_rtp, "the agent hears the whisper", |s| {
        tone_share(s, SUPERVISOR_HZ) > PRESENT && tone_share(s, CALLER_HZ) > PRESENT
    })?;
    never_hears_supervisor(caller_rtp, "the caller (whisper)")?;
    // The live call list shows the supervisor's leg and mode.
    let listed = switchboard.api().get("/api/calls")?.json()?;
    let legs = listed["calls"][0]["legs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let supervisor_leg = legs
        .iter()
        .find(|leg| leg["role"] == "supervisor")
        .ok_or_else(|| HarnessError::Unexpected(format!("no supervisor leg: {listed}")))?;
    assert_eq!(supervisor_leg["party"], "1003", "{listed}");
    assert_eq!(supervisor_leg["mode"], "whisper", "{listed}");
    assert_eq!(supervisor_leg["state"], "answered", "{listed}");

    // Barge, by SIP INFO.
    let info = supervision.request(
        "INFO",
        "application/dtmf-relay",
        "Signal=3\r\nDuration=100\r\n",
        WAIT,
    )?;
    assert_eq!(info.final_response.status(), Some(200));
    wait_until(caller_rtp, "the caller hears the barging supervisor", |s| {
        tone_share(s, SUPERVISOR_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT
    })?;

    // Back to listening, by RFC 4733 from the supervisor's phone.
    let mut keys = RtpStream::new(0x5e9);
    for packet in keys.key_press(101, 1) {
        supervisor_rtp.send_to(&packet, supervisor_relay)?;
    }
    wait_until(caller_rtp, "the caller stops hearing the supervisor", |s| {
        tone_share(s, SUPERVISOR_HZ) < ABSENT && tone_share(s, AGENT_HZ) > PRESENT
    })?;

    let bye = supervision.hang_up(WAIT)?;
    assert_eq!(bye.final_response.status(), Some(200));
    // The call goes on between caller and agent.
    wait_until(caller_rtp, "the caller still hears the agent", |s| {
        tone_share(s, AGENT_HZ) > PRESENT
    })?;
    let to_agent = agent.collect_for(Duration::from_millis(200))?;
    assert!(
        to_agent.is_empty(),
        "the agent's phone is told nothing of the supervision: {to_agent:?}"
    );
    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;

    let supervisions = supervisions(&switchboard, &call_id)?;
    assert_eq!(supervisions.len(), 1, "{supervisions:?}");
    assert_eq!(supervisions[0]["supervisor"], "1003");
    assert_eq!(supervisions[0]["agent"], "1001");
    assert_eq!(
        supervisions[0]["modes"],
        serde_json::json!(["listen", "whisper", "barge", "listen"])
    );
    Ok(())
}

#[test]
fn the_api_rings_a_supervisor_into_a_call_and_refuses_clearly() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: "\n[[http.token]]\ntoken = \"sup-token\"\nrole = \"supervisor\"\n\
            \n[[http.token]]\ntoken = \"alice-token\"\nrole = \"agent\"\nagent = \"1001\"\n"
            .into(),
        ..config()
    })?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let supervisor_api = switchboard.api().with_token(Some("sup-token"));
    let listed = supervisor_api.get("/api/calls")?.json()?;
    let id = listed["calls"][0]["id"].as_u64().unwrap_or_default();
    let path = format!("/api/calls/{id}/supervise");
    let refused = |api: &sip_tests::Api, body: &str, status: u16| -> HarnessResult<String> {
        api.post(&path, body)?
            .expect_status(status, body)?
            .error_code()
    };
    let agent_api = switchboard.api().with_token(Some("alice-token"));
    let listen = r#"{"supervisor": "1003", "mode": "listen"}"#;
    assert_eq!(refused(&agent_api, listen, 403)?, "forbidden");
    assert_eq!(
        refused(&supervisor_api, r#"{"supervisor": "1002"}"#, 422)?,
        "not_a_supervisor"
    );
    assert_eq!(
        refused(
            &supervisor_api,
            r#"{"supervisor": "1003", "mode": "spy"}"#,
            400
        )?,
        "bad_request"
    );
    assert_eq!(
        refused(&supervisor_api, listen, 409)?,
        "supervisor_unreachable",
        "1003 has not registered a phone yet"
    );

    let supervisor = AgentPhone::register(&switchboard, "1003")?;
    supervisor_api
        .post(&path, listen)?
        .expect_status(200, "supervise")?;
    let invite = supervisor.next_request("INVITE", WAIT)?;
    assert_eq!(
        invite.header("X-Switchboard-Supervise"),
        Some("listen 1001")
    );
    let supervisor_relay = sdp_audio_address(&invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the offer".into()))?;
    let supervisor_rtp = Arc::new(RtpPeer::bind()?);
    supervisor.answer(invite, &pcmu_offer(supervisor_rtp.port()?, false), WAIT)?;
    let _supervisor_talks = supervisor_joins(&supervisor_rtp, supervisor_relay)?;
    never_hears_supervisor(&conversation.caller_rtp, "the caller (listen)")?;
    // Registered, Carol was Ready; supervising, she is offered no queue call.
    let admin = switchboard.api();
    let carol = admin.agent("1003")?;
    assert_eq!(
        (carol["state"].as_str(), carol["reason"].as_str()),
        (Some("not-ready"), Some("supervising")),
        "{carol}"
    );

    // The caller hangs up: Switchboard hangs the supervisor up too, and she is Ready again.
    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    let bye = supervisor.next_request("BYE", WAIT)?;
    supervisor.reply(&bye, 200, "OK", &[], "")?;
    admin.wait_for_agent("1003", "Ready after supervising", WAIT, |a| {
        a["state"] == "ready"
    })?;
    let supervisions = supervisions(&switchboard, &call_id)?;
    assert_eq!(supervisions.len(), 1, "{supervisions:?}");
    assert_eq!(supervisions[0]["supervisor"], "1003");
    assert_eq!(supervisions[0]["modes"], serde_json::json!(["listen"]));
    Ok(())
}

#[test]
fn supervisor_codes_are_refused_with_a_reason() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let refused = |user: &str, dialled: &str| -> HarnessResult<(u16, String)> {
        let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
        let password = format!("secret{user}");
        let credentials = Credentials {
            username: user,
            password: &password,
        };
        let (_, outcome) = authenticated_invite(
            &peer,
            dialled,
            &credentials,
            DigestAlgorithm::Md5,
            &pcmu_offer(40_000, false),
            WAIT,
        )?;
        match outcome {
            Ok(_) => Err(HarnessError::Unexpected(format!(
                "{user} dialling {dialled} was answered"
            ))),
            Err(exchange) => Ok((
                exchange.final_response.status().unwrap_or_default(),
                exchange
                    .final_response
                    .header("Warning")
                    .unwrap_or_default()
                    .to_owned(),
            )),
        }
    };
    let (code, warning) = refused("1002", "*411001")?;
    assert_eq!(code, 403, "an agent without the role: {warning}");
    assert!(warning.contains("not a supervisor"), "{warning}");
    let (code, warning) = refused("1003", "*419999")?;
    assert_eq!(code, 404, "{warning}");
    assert!(warning.contains("unknown agent 9999"), "{warning}");
    let (code, warning) = refused("1003", "*421001")?;
    assert_eq!(code, 480, "agent 1001 is on no call: {warning}");
    assert!(warning.contains("not on a call"), "{warning}");
    Ok(())
}

/// Supervisor 1003 dials `code` with an offer for `rtp`: the established dialog and
/// Switchboard's side of the supervisor's leg.
fn dial_supervision<'p>(
    peer: &'p UdpPeer,
    code: &str,
    rtp: &RtpPeer,
) -> HarnessResult<Result<(ConnectedCall<'p>, SocketAddr), u16>> {
    let credentials = Credentials {
        username: "1003",
        password: "secret1003",
    };
    let (_, outcome) = authenticated_invite(
        peer,
        code,
        &credentials,
        DigestAlgorithm::Md5,
        &pcmu_offer(rtp.port()?, false),
        WAIT,
    )?;
    match outcome {
        Ok(call) => {
            let relay = sdp_audio_address(&call.answer.final_response.body)
                .ok_or_else(|| HarnessError::Unexpected("no audio address in the 200".into()))?;
            Ok(Ok((call, relay)))
        }
        Err(refused) => Ok(Err(refused.final_response.status().unwrap_or_default())),
    }
}

#[test]
fn a_supervisor_coaches_the_colleague_an_attended_transfer_passed_the_call_to() -> HarnessResult<()>
{
    let switchboard = Switchboard::start(config())?;
    let api = switchboard.api();
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let caller_rtp = conversation.caller_rtp.clone();
    let listed = api.get("/api/calls")?.json()?;
    let id = listed["calls"][0]["id"]
        .as_u64()
        .ok_or_else(|| HarnessError::Unexpected(format!("no call listed: {listed}")))?;

    // 1001 consults 1002 from the API; 1002's phone answers and talks.
    api.post(&format!("/api/calls/{id}/consult"), r#"{"to": "1002"}"#)?
        .expect_status(200, "consult")?;
    let invite = colleague_phone.next_request("INVITE", WAIT)?;
    let colleague_relay = sdp_audio_address(&invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the consult".into()))?;
    let colleague_rtp = Arc::new(RtpPeer::bind()?);
    colleague_phone.answer(invite, &pcmu_offer(colleague_rtp.port()?, false), WAIT)?;
    let _colleague_talks =
        Talker::start(colleague_rtp.clone(), colleague_relay, COLLEAGUE_HZ, 0xc011);
    wait_until(&colleague_rtp, "the colleague hears the agent", |s| {
        tone_share(s, AGENT_HZ) > PRESENT
    })?;
    // While the consult is under way nobody can join: the consult decides who hears whom.
    let supervisor_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let supervisor_rtp = Arc::new(RtpPeer::bind()?);
    for code in ["*421001", "*421002"] {
        let refused = dial_supervision(&supervisor_sip, code, &supervisor_rtp)?;
        assert_eq!(
            refused.as_ref().err(),
            Some(&480),
            "{code} during the consult"
        );
    }
    let refused = api
        .post(
            &format!("/api/calls/{id}/supervise"),
            r#"{"supervisor": "1003", "mode": "listen"}"#,
        )?
        .expect_status(409, "supervise during the consult")?
        .error_code()?;
    assert_eq!(refused, "consult_in_progress");

    // Complete: 1001's phone is hung up (and stops talking); caller and 1002 talk.
    api.post(&format!("/api/calls/{id}/complete"), "")?
        .expect_status(200, "complete")?;
    let bye = agent.next_request("BYE", WAIT)?;
    agent.reply(&bye, 200, "OK", &[], "")?;
    conversation.agent_talks = None;
    wait_until(&caller_rtp, "the caller hears the colleague", |s| {
        tone_share(s, COLLEAGUE_HZ) > PRESENT
    })?;

    // The first agent's conversation is gone; the colleague's can be coached.
    assert_eq!(
        dial_supervision(&supervisor_sip, "*421001", &supervisor_rtp)?
            .as_ref()
            .err(),
        Some(&480),
        "1001 left the call"
    );
    let (mut whisper, relay) = dial_supervision(&supervisor_sip, "*421002", &supervisor_rtp)?
        .map_err(|code| HarnessError::Unexpected(format!("*421002 refused with {code}")))?;
    let supervisor_talks = Talker::start(supervisor_rtp.clone(), relay, SUPERVISOR_HZ, 0x5e9);
    wait_until(
        &supervisor_rtp,
        "the supervisor hears caller and colleague",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;
    wait_until(
        &colleague_rtp,
        "the colleague hears the caller and the whisper",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, SUPERVISOR_HZ) > PRESENT,
    )?;
    never_hears_supervisor(&caller_rtp, "the caller (whisper to the colleague)")?;
    wait_until(&caller_rtp, "the caller still hears the colleague", |s| {
        tone_share(s, COLLEAGUE_HZ) > PRESENT
    })?;
    let listed = api.get("/api/calls")?.json()?;
    let legs = listed["calls"][0]["legs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        legs.iter()
            .any(|leg| leg["role"] == "supervisor" && leg["mode"] == "whisper"),
        "{listed}"
    );
    // Key 3 (SIP INFO): barge, the caller hears the supervisor too.
    let info = whisper.request(
        "INFO",
        "application/dtmf-relay",
        "Signal=3\r\nDuration=100\r\n",
        WAIT,
    )?;
    assert_eq!(info.final_response.status(), Some(200));
    wait_until(
        &caller_rtp,
        "the caller hears the barging supervisor",
        |s| tone_share(s, SUPERVISOR_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;
    let bye = whisper.hang_up(WAIT)?;
    assert_eq!(bye.final_response.status(), Some(200));
    drop(supervisor_talks);
    wait_until(
        &caller_rtp,
        "the caller no longer hears the supervisor",
        |s| tone_share(s, SUPERVISOR_HZ) < ABSENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;

    // From the API: Switchboard rings the supervisor's registered phone into the call.
    let supervisor = AgentPhone::register(&switchboard, "1003")?;
    api.post(
        &format!("/api/calls/{id}/supervise"),
        r#"{"supervisor": "1003", "mode": "listen"}"#,
    )?
    .expect_status(200, "supervise")?;
    let invite = supervisor.next_request("INVITE", WAIT)?;
    assert_eq!(
        invite.header("X-Switchboard-Supervise"),
        Some("listen 1002")
    );
    let relay = sdp_audio_address(&invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the offer".into()))?;
    let rung_rtp = Arc::new(RtpPeer::bind()?);
    supervisor.answer(invite, &pcmu_offer(rung_rtp.port()?, false), WAIT)?;
    let _rung_talks = Talker::start(rung_rtp.clone(), relay, SUPERVISOR_HZ, 0x5ea);
    wait_until(
        &rung_rtp,
        "the rung supervisor hears caller and colleague",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;
    // The colleague's socket still holds the whisper from before (nobody read it while the
    // API rang the supervisor): read it away, up to the first window without the tone.
    wait_until(&colleague_rtp, "the whisper from before is read", |s| {
        tone_share(s, SUPERVISOR_HZ) < ABSENT
    })?;
    never_hears_supervisor(&colleague_rtp, "the colleague (listen)")?;
    never_hears_supervisor(&caller_rtp, "the caller (listen)")?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    for phone in [&supervisor, &colleague_phone] {
        let bye = phone.next_request("BYE", WAIT)?;
        phone.reply(&bye, 200, "OK", &[], "")?;
    }
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["agent"], "1002", "{record}");
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    let supervisions = supervisions(&switchboard, &call_id)?;
    let seen: Vec<(String, String, serde_json::Value)> = supervisions
        .iter()
        .map(|s| {
            (
                s["supervisor"].as_str().unwrap_or_default().to_owned(),
                s["agent"].as_str().unwrap_or_default().to_owned(),
                s["modes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "1003".into(),
                "1002".into(),
                serde_json::json!(["whisper", "barge"])
            ),
            ("1003".into(), "1002".into(), serde_json::json!(["listen"])),
        ],
        "{record}"
    );
    Ok(())
}
