//! Attended transfer and conference. Agent 1001 talks to a caller; the API consults agent
//! 1002 (`POST /api/calls/{id}/consult`): the caller is put on hold and Switchboard rings
//! 1002's phone. Each party sends its own tone (caller 500 Hz, agent 1500 Hz, colleague
//! 1900 Hz) and what each receives is analysed (Goertzel) after every step:
//! - consulting: agent and colleague hear each other, the caller hears neither;
//! - complete: the first agent's phone is hung up, caller and colleague hear each other, the
//!   CDR lists trunk, agent and consult legs in order with an attended transfer, and the
//!   report's CSV and HTML count it out for 1001 and in for 1002;
//! - cancel: the colleague is hung up and the caller hears the agent again;
//! - conference (`*3` keyed by the agent, or the API): everyone hears the other two, and when
//!   the first agent hangs up, caller and colleague stay connected (CDR: conference time);
//! - a REFER from the agent's phone with `Replaces` naming the consult dialog (RFC 3891)
//!   completes the transfer (202, NOTIFY `200 OK`, BYE); one naming an unknown dialog gets 481;
//! - the agent's phone dials 1002 itself (the consult call goes through Switchboard) and its
//!   REFER with `Replaces` naming that call completes the transfer, both its calls hung up.
//!
//! `POST …/transfer` with `"mode": "attended"` consults and completes as soon as the colleague
//! answers. Refusals carry stable JSON codes (analysts get 403).
//!
//! Consult targets beyond an agent: `queue:NAME` (or the phone dialling the queue's name) rings
//! the agent the ACD would choose for that queue (`no_ready_agent` / 480 when nobody is Ready,
//! the CDR's consult leg names the queue); an outside number goes through its `[[route]]` to a
//! fake carrier (`number_not_allowed` off the allow-list, `unknown_target` without a route).
//! After a blind or an attended transfer the caller's side holds and resumes with re-INVITEs
//! (Switchboard answers; the agent now on the call hears the music; audio flows both ways
//! after), and so may the consulted agent's phone. With recording on, an attended transfer and
//! a conference each leave one WAV for the whole call with the colleague's tone on the right.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sip_tests::agent_phone::{local_tag, AgentCall, AgentPhone};
use sip_tests::cdr::{report_around_today, wait_for_call};
use sip_tests::rtp::{pcmu_offer, pcmu_samples, sdp_audio_address, tone_share};
use sip_tests::rtp::{RtpPeer, RtpStream};
use sip_tests::tone_talker::Talker;
use sip_tests::uac::{place_media_call, ConnectedCall};
use sip_tests::{
    AgentAccount, Api, HarnessError, HarnessResult, QueueSpec, SipMessage, Switchboard,
    SwitchboardConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(30);
// The caller on hold hears the built-in music (notes from 523 to 1175 Hz): the agents'
// tones stay well above it, so "the caller hears neither agent" is not blurred by a note.
const CALLER_HZ: f64 = 500.0;
const AGENT_HZ: f64 = 1500.0;
const COLLEAGUE_HZ: f64 = 1900.0;
/// A tone makes up about half of a two-tone mix and nearly all of a lone one; absent, it is
/// quantisation noise (or the hold music, which has no energy at these frequencies).
const PRESENT: f64 = 0.15;
const ABSENT: f64 = 0.05;

fn config() -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob").without_support(),
        ],
        ..SwitchboardConfig::default()
    }
}

/// A caller and agent 1001 connected, each sending its tone; the agent's phone offers
/// telephone-events (for `*3`).
struct Conversation<'p> {
    call: ConnectedCall<'p>,
    agent_call: AgentCall,
    caller_rtp: Arc<RtpPeer>,
    agent_rtp: Arc<RtpPeer>,
    agent_relay: SocketAddr,
    _caller_talks: Talker,
    /// The agent's phone talking; taken (and so stopped) when the test hangs that phone up.
    agent_talks: Option<Talker>,
}

fn converse<'p>(agent: &AgentPhone, caller_sip: &'p UdpPeer) -> HarnessResult<Conversation<'p>> {
    let agent_rtp = Arc::new(RtpPeer::bind()?);
    let caller_rtp = Arc::new(RtpPeer::bind()?);
    let agent_port = agent_rtp.port()?;
    let (placed, agent_call) = std::thread::scope(|scope| {
        let answering = scope.spawn(|| agent.answer_next(&pcmu_offer(agent_port, true), WAIT));
        let placed = caller_rtp
            .port()
            .and_then(|port| place_media_call(caller_sip, "100", &pcmu_offer(port, true), WAIT));
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err(HarnessError::Unexpected("agent thread panicked".into())));
        (placed, answered)
    });
    let (call, caller_relay) = placed?;
    let agent_call = agent_call?;
    let agent_relay = sdp_audio_address(&agent_call.invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the agent's INVITE".into()))?;
    let caller_talks = Talker::start(caller_rtp.clone(), caller_relay, CALLER_HZ, 0xca11);
    let agent_talks = Talker::start(agent_rtp.clone(), agent_relay, AGENT_HZ, 0xa6e7);
    wait_until(&caller_rtp, "the caller hears the agent", |s| {
        tone_share(s, AGENT_HZ) > PRESENT
    })?;
    Ok(Conversation {
        call,
        agent_call,
        caller_rtp,
        agent_rtp,
        agent_relay,
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
        "{what} within {} s; last window: caller {:.2} agent {:.2} colleague {:.2}",
        WAIT.as_secs(),
        tone_share(&last, CALLER_HZ),
        tone_share(&last, AGENT_HZ),
        tone_share(&last, COLLEAGUE_HZ),
    )))
}

/// Over a few windows `rtp` hears none of `tones` (hearing nothing at all counts). The
/// socket still holds what arrived before the change under test (nobody read it while the
/// API call or the consult was set up: seconds on a loaded machine), so that backlog is read
/// away first, up to the first window without the tones; then every window must be clean.
fn never_hears(rtp: &RtpPeer, who: &str, tones: &[f64]) -> HarnessResult<()> {
    wait_until(
        rtp,
        &format!("{who}: the audio from before the change is read"),
        |s| tones.iter().all(|&hz| tone_share(s, hz) < ABSENT),
    )?;
    for _ in 0..4 {
        let samples = heard(rtp)?;
        for &hz in tones {
            let share = tone_share(&samples, hz);
            assert!(
                share < ABSENT,
                "{who} must not hear {hz} Hz (share {share:.3})"
            );
        }
    }
    Ok(())
}

/// The colleague's phone: takes Switchboard's consult INVITE, answers and starts talking.
struct Colleague {
    invite: SipMessage,
    rtp: Arc<RtpPeer>,
    /// The answered dialog, for the colleague's own requests.
    call: AgentCall,
    _talker: Talker,
}

fn colleague_answers(phone: &AgentPhone) -> HarnessResult<Colleague> {
    let invite = phone.next_request("INVITE", WAIT)?;
    let relay = sdp_audio_address(&invite.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the consult".into()))?;
    let rtp = Arc::new(RtpPeer::bind()?);
    let call = phone.answer(invite.clone(), &pcmu_offer(rtp.port()?, false), WAIT)?;
    let talker = Talker::start(rtp.clone(), relay, COLLEAGUE_HZ, 0xc011);
    Ok(Colleague {
        invite,
        rtp,
        call,
        _talker: talker,
    })
}

/// Agent and colleague hear each other; the caller hears neither.
/// The agent consults colleague 1002 over the API; returns once the two hear each other and
/// the caller neither.
fn consult_colleague(
    api: &Api,
    id: u64,
    colleague_phone: &AgentPhone,
    conversation: &Conversation,
) -> HarnessResult<Colleague> {
    post(
        api,
        &format!("/api/calls/{id}/consult"),
        r#"{"to": "1002"}"#,
    )?;
    let colleague = colleague_answers(colleague_phone)?;
    consulting(conversation, &colleague)?;
    Ok(colleague)
}

fn consulting(conversation: &Conversation, colleague: &Colleague) -> HarnessResult<()> {
    wait_until(&colleague.rtp, "the colleague hears the agent", |s| {
        tone_share(s, AGENT_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT
    })?;
    wait_until(
        &conversation.agent_rtp,
        "the agent hears the colleague",
        |s| tone_share(s, COLLEAGUE_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT,
    )?;
    never_hears(
        &conversation.caller_rtp,
        "the caller on hold",
        &[AGENT_HZ, COLLEAGUE_HZ],
    )
}

/// Caller and colleague hear each other.
fn caller_with_colleague(conversation: &Conversation, colleague: &Colleague) -> HarnessResult<()> {
    wait_until(
        &conversation.caller_rtp,
        "the caller hears the colleague",
        |s| tone_share(s, COLLEAGUE_HZ) > PRESENT && tone_share(s, AGENT_HZ) < ABSENT,
    )?;
    wait_until(&colleague.rtp, "the colleague hears the caller", |s| {
        tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, AGENT_HZ) < ABSENT
    })
}

/// Answers a BYE that `phone` receives.
fn take_bye(phone: &AgentPhone) -> HarnessResult<()> {
    let bye = phone.next_request("BYE", WAIT)?;
    phone.reply(&bye, 200, "OK", &[], "")
}

fn call_id_of(api: &Api) -> HarnessResult<u64> {
    let listed = api.get("/api/calls")?.json()?;
    listed["calls"][0]["id"]
        .as_u64()
        .ok_or_else(|| HarnessError::Unexpected(format!("no call listed: {listed}")))
}

fn post(api: &Api, path: &str, body: &str) -> HarnessResult<()> {
    api.post(path, body)?.expect_status(200, path)?;
    Ok(())
}

fn refused(api: &Api, path: &str, body: &str, status: u16) -> HarnessResult<String> {
    api.post(path, body)?
        .expect_status(status, body)?
        .error_code()
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
fn a_consult_from_the_api_completes_into_an_attended_transfer() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let call_path = |action: &str| format!("/api/calls/{id}/{action}");

    assert_eq!(
        refused(&api, &call_path("complete"), "", 409)?,
        "no_consult"
    );
    assert_eq!(
        refused(&api, &call_path("consult"), r#"{"to": "9999"}"#, 404)?,
        "unknown_target"
    );
    assert_eq!(
        refused(&api, &call_path("consult"), r#"{"to": "1001"}"#, 409)?,
        "own_call"
    );
    assert_eq!(
        refused(&api, &call_path("consult"), r#"{"to": "1002"}"#, 409)?,
        "target_not_ready",
        "1002 has not registered a phone: not Ready"
    );
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    post(&api, &call_path("consult"), r#"{"to": "1002"}"#)?;
    // Still ringing: neither complete nor a second consult.
    assert_eq!(
        refused(&api, &call_path("complete"), "", 409)?,
        "consult_not_answered"
    );
    assert_eq!(
        refused(&api, &call_path("consult"), r#"{"to": "1002"}"#, 409)?,
        "consult_in_progress"
    );
    let colleague = colleague_answers(&colleague_phone)?;
    assert_eq!(
        colleague.invite.header("X-Switchboard-Consult"),
        Some("1001")
    );
    consulting(&conversation, &colleague)?;
    let listed = api.get("/api/calls")?.json()?;
    let legs = listed["calls"][0]["legs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let consult_leg = legs
        .iter()
        .find(|leg| leg["role"] == "consult")
        .ok_or_else(|| HarnessError::Unexpected(format!("no consult leg: {listed}")))?;
    assert_eq!(consult_leg["party"], "1002", "{listed}");
    assert_eq!(consult_leg["state"], "answered", "{listed}");

    let answered_before = api.agent("1002")?["calls_answered"].as_u64();
    post(&api, &call_path("complete"), "")?;
    take_bye(&agent)?;
    caller_with_colleague(&conversation, &colleague)?;
    assert_eq!(
        refused(&api, &call_path("cancel"), "", 409)?,
        "already_transferred"
    );
    // The colleague has the call now, in the ACD as well: on the call (not Not ready for the
    // consult), one more call answered, shown as the call's agent; the first agent is free
    // (this queue has no wrap-up time).
    let bob = api.wait_for_agent_state("1002", "on-call", WAIT)?;
    assert_eq!(
        bob["calls_answered"].as_u64(),
        answered_before.map(|n| n + 1),
        "{bob}"
    );
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    let listed = api.get("/api/calls")?.json()?;
    assert_eq!(listed["calls"][0]["agent"], "1002", "{listed}");

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    // The call's end frees the colleague as it would its own agent.
    api.wait_for_agent_state("1002", "ready", WAIT)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:1002"],
        "{record}"
    );
    let transfers = record["transfers"].as_array().cloned().unwrap_or_default();
    assert_eq!(transfers.len(), 1, "{record}");
    assert_eq!(transfers[0]["kind"], "attended", "{record}");
    assert_eq!(transfers[0]["from_agent"], "1001", "{record}");
    assert_eq!(transfers[0]["to"], "1002", "{record}");
    assert_eq!(record["agent"], "1002", "{record}");
    assert!(record.get("conference").is_none(), "{record}");

    // The report's CSV and HTML count the transfer out for 1001 and in for 1002.
    let csv = report_around_today(switchboard.cdr_dir(), &["--format", "csv"])?;
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name);
    let (Some(out), Some(into)) = (column("transfers_out"), column("transfers_in")) else {
        return Err(HarnessError::Unexpected(format!(
            "no transfer columns:\n{csv}"
        )));
    };
    let counts = |agent: &str| -> Option<(String, String)> {
        let row: Vec<&str> = csv
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|r| r.first() == Some(&"agent_transfers") && r.get(3) == Some(&agent))?;
        Some((row.get(out)?.to_string(), row.get(into)?.to_string()))
    };
    assert_eq!(counts("1001"), Some(("1".into(), "0".into())), "{csv}");
    assert_eq!(counts("1002"), Some(("0".into(), "1".into())), "{csv}");
    let html = report_around_today(switchboard.cdr_dir(), &["--format", "html"])?;
    assert!(
        html.contains("<h2>Transfers by agent</h2>")
            && html.contains("<tr><td>1001</td><td class=\"n\">1</td><td class=\"n\">0</td></tr>")
            && html.contains("<tr><td>1002</td><td class=\"n\">0</td><td class=\"n\">1</td></tr>"),
        "{html}"
    );
    Ok(())
}

#[test]
fn cancel_resumes_the_caller_and_a_conference_outlives_the_first_agent() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let call_path = |action: &str| format!("/api/calls/{id}/{action}");

    // Consult, then cancel: the colleague is hung up, the caller hears the agent again.
    post(&api, &call_path("consult"), r#"{"to": "1002"}"#)?;
    let colleague = colleague_answers(&colleague_phone)?;
    consulting(&conversation, &colleague)?;
    post(&api, &call_path("cancel"), "")?;
    take_bye(&colleague_phone)?;
    drop(colleague);
    wait_until(
        &conversation.caller_rtp,
        "the caller hears the agent again",
        |s| tone_share(s, AGENT_HZ) > PRESENT,
    )?;
    wait_until(
        &conversation.agent_rtp,
        "the agent hears the caller again",
        |s| tone_share(s, CALLER_HZ) > PRESENT,
    )?;

    // Consult again; the agent keys *3 (RFC 4733): a conference.
    post(&api, &call_path("consult"), r#"{"to": "1002"}"#)?;
    let colleague = colleague_answers(&colleague_phone)?;
    consulting(&conversation, &colleague)?;
    let mut keys = RtpStream::new(0x6e7);
    for key in [10u8, 3] {
        for packet in keys.key_press(101, key) {
            conversation
                .agent_rtp
                .send_to(&packet, conversation.agent_relay)?;
        }
    }
    wait_until(
        &conversation.caller_rtp,
        "the caller hears both agents",
        |s| tone_share(s, AGENT_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;
    wait_until(
        &conversation.agent_rtp,
        "the agent hears caller and colleague",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;
    wait_until(
        &colleague.rtp,
        "the colleague hears caller and agent",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT,
    )?;

    // The first agent hangs up: caller and colleague stay connected.
    let bye = conversation
        .agent_call
        .dialog
        .send(&agent.peer, "BYE", &[], "", WAIT)?;
    assert_eq!(bye.final_response.status(), Some(200));
    caller_with_colleague(&conversation, &colleague)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "consult:1002", "agent:1001", "consult:1002"],
        "{record}"
    );
    let conference = &record["conference"];
    assert!(
        conference["seconds"].as_f64().is_some_and(|s| s > 0.0),
        "{record}"
    );
    let transfers = record["transfers"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        transfers.len(),
        1,
        "the first agent left the conference: {record}"
    );
    assert_eq!(transfers[0]["kind"], "attended", "{record}");
    Ok(())
}

#[test]
fn a_refer_with_replaces_naming_the_consult_completes_it() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let colleague = consult_colleague(&api, id, &colleague_phone, &conversation)?;
    // The conference from the API first: all three hear each other.
    post(&api, &format!("/api/calls/{id}/conference"), "")?;
    wait_until(
        &conversation.caller_rtp,
        "the caller hears both agents",
        |s| tone_share(s, AGENT_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;

    let sip_host = switchboard.sip_addr();
    let refer = |conversation: &mut Conversation, replaces: &str| {
        let refer_to = format!("Refer-To: <sip:1002@{sip_host}?Replaces={replaces}>");
        let referred_by = "Referred-By: <sip:1001@127.0.0.1>".to_owned();
        conversation.agent_call.dialog.send(
            &agent.peer,
            "REFER",
            &[refer_to, referred_by],
            "",
            WAIT,
        )
    };
    let unknown = refer(
        &mut conversation,
        "nosuchcall%3Bto-tag%3Dabc%3Bfrom-tag%3Ddef",
    )?;
    assert_eq!(unknown.final_response.status(), Some(481));

    let consult_call_id = colleague
        .invite
        .header("Call-ID")
        .unwrap_or_default()
        .to_owned();
    let from = colleague.invite.header("From").unwrap_or_default();
    let from_tag = from
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t).to_owned())
        .unwrap_or_default();
    let to_tag = local_tag(&colleague.invite);
    let replaces = format!("{consult_call_id}%3Bto-tag%3D{to_tag}%3Bfrom-tag%3D{from_tag}");
    let accepted = refer(&mut conversation, &replaces)?;
    assert_eq!(accepted.final_response.status(), Some(202));
    // NOTIFY with the sipfrag, then BYE, both answered (either may have arrived already).
    let mut pending: std::collections::VecDeque<SipMessage> = accepted.unrelated.into();
    let (mut notified, mut hung_up) = (None, false);
    let deadline = Instant::now() + WAIT;
    while (notified.is_none() || !hung_up) && Instant::now() < deadline {
        let message = match pending.pop_front() {
            Some(message) => message,
            None => match agent.peer.recv(Duration::from_secs(1))? {
                Some(message) => message,
                None => continue,
            },
        };
        match message.method() {
            Some("NOTIFY") => {
                agent.reply(&message, 200, "OK", &[], "")?;
                notified = Some(message.body.clone());
            }
            Some("BYE") => {
                agent.reply(&message, 200, "OK", &[], "")?;
                hung_up = true;
            }
            _ => {}
        }
    }
    let sipfrag = notified.ok_or_else(|| HarnessError::Unexpected("no NOTIFY".into()))?;
    assert!(sipfrag.starts_with("SIP/2.0 200"), "{sipfrag}");
    assert!(hung_up, "the transferring phone is hung up");
    caller_with_colleague(&conversation, &colleague)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:1002"],
        "{record}"
    );
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    Ok(())
}

#[test]
fn an_attended_transfer_from_the_api_completes_when_the_colleague_answers() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: "\n[[http.token]]\ntoken = \"analyst-token\"\nrole = \"analyst\"\n".into(),
        ..config()
    })?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let transfer = format!("/api/calls/{id}/transfer");
    let attended = r#"{"to": "1002", "mode": "attended"}"#;
    let analyst = switchboard.api().with_token(Some("analyst-token"));
    assert_eq!(refused(&analyst, &transfer, attended, 403)?, "forbidden");
    assert_eq!(
        refused(&analyst, &format!("/api/calls/{id}/consult"), attended, 403)?,
        "forbidden"
    );
    post(&api, &transfer, attended)?;
    let colleague = colleague_answers(&colleague_phone)?;
    // No complete needed: the first agent is hung up as soon as the colleague answers.
    take_bye(&agent)?;
    caller_with_colleague(&conversation, &colleague)?;
    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:1002"],
        "{record}"
    );
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    Ok(())
}

/// The tag parameter of a From or To value.
fn tag_of(value: &str) -> String {
    value
        .split(";tag=")
        .nth(1)
        .map(|t| t.split(';').next().unwrap_or(t).to_owned())
        .unwrap_or_default()
}

#[test]
fn a_phone_dials_its_consult_and_completes_it_with_refer_replaces() -> HarnessResult<()> {
    use sip_tests::digest::{Credentials, DigestAlgorithm};
    use sip_tests::uac::authenticated_invite;
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;

    // The agent's phone places the consult call: INVITE 1002 through Switchboard.
    let consult_rtp = Arc::new(RtpPeer::bind()?);
    let credentials = Credentials {
        username: "1001",
        password: "secret1001",
    };
    let (placing, colleague) = std::thread::scope(|scope| {
        let answering = scope.spawn(|| colleague_answers(&colleague_phone));
        let placing = consult_rtp.port().and_then(|port| {
            authenticated_invite(
                &agent.peer,
                "1002",
                &credentials,
                DigestAlgorithm::Md5,
                &pcmu_offer(port, false),
                WAIT,
            )
        });
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err(HarnessError::Unexpected("colleague panicked".into())));
        (placing, answered)
    });
    let consult_call = placing?.1.map_err(|refused| {
        HarnessError::Unexpected(format!(
            "the consult was refused:\n{}",
            refused.final_response.to_text()
        ))
    })?;
    let colleague = colleague?;
    let ok = &consult_call.answer.final_response;
    let relay = sdp_audio_address(&ok.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the 200".into()))?;
    let _agent_consults = Talker::start(consult_rtp.clone(), relay, AGENT_HZ, 0xa6e8);
    wait_until(
        &colleague.rtp,
        "the colleague hears the agent's consult call",
        |s| tone_share(s, AGENT_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT,
    )?;
    wait_until(
        &consult_rtp,
        "the agent's consult call hears the colleague",
        |s| tone_share(s, COLLEAGUE_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT,
    )?;
    never_hears(
        &conversation.caller_rtp,
        "the caller on hold",
        &[AGENT_HZ, COLLEAGUE_HZ],
    )?;

    // Transfer: REFER on the held call, Replaces naming the consult call (the phone's view:
    // to-tag Switchboard's, from-tag its own).
    let replaces = format!(
        "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
        consult_call.call_id(),
        tag_of(ok.header("To").unwrap_or_default()),
        tag_of(ok.header("From").unwrap_or_default()),
    );
    let refer_to = format!(
        "Refer-To: <sip:1002@{}?Replaces={replaces}>",
        switchboard.sip_addr()
    );
    let accepted =
        conversation
            .agent_call
            .dialog
            .send(&agent.peer, "REFER", &[refer_to], "", WAIT)?;
    assert_eq!(accepted.final_response.status(), Some(202));
    // A NOTIFY, and a BYE on each of the phone's two calls.
    let mut pending: std::collections::VecDeque<SipMessage> = accepted.unrelated.into();
    let (mut notified, mut byes) = (None, Vec::new());
    let deadline = Instant::now() + WAIT;
    while (notified.is_none() || byes.len() < 2) && Instant::now() < deadline {
        let message = match pending.pop_front() {
            Some(message) => message,
            None => match agent.peer.recv(Duration::from_secs(1))? {
                Some(message) => message,
                None => continue,
            },
        };
        match message.method() {
            Some("NOTIFY") => {
                agent.reply(&message, 200, "OK", &[], "")?;
                notified = Some(message.body.clone());
            }
            Some("BYE") => {
                agent.reply(&message, 200, "OK", &[], "")?;
                byes.push(message.header("Call-ID").unwrap_or_default().to_owned());
            }
            _ => {}
        }
    }
    let sipfrag = notified.ok_or_else(|| HarnessError::Unexpected("no NOTIFY".into()))?;
    assert!(sipfrag.starts_with("SIP/2.0 200"), "{sipfrag}");
    byes.sort();
    let mut expected = vec![
        consult_call.call_id().to_owned(),
        conversation.agent_call.dialog.call_id.clone(),
    ];
    expected.sort();
    assert_eq!(byes, expected, "both of the phone's calls are hung up");
    caller_with_colleague(&conversation, &colleague)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:1002"],
        "{record}"
    );
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    Ok(())
}

/// Agent 1001 serves `support`; queue `billing` (most skilled first) is served by 1002 (level
/// 3) and 1003 (level 9), neither of whom serves `support`.
fn billing_config() -> SwitchboardConfig {
    let mut billing = QueueSpec::new("billing", "billing");
    billing.lines.push("strategy = \"most-skilled\"".into());
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob")
                .without_support()
                .with_skill("billing", 3),
            AgentAccount::new("1003", "Carol")
                .without_support()
                .with_skill("billing", 9),
        ],
        other_queues: vec![billing],
        ..SwitchboardConfig::default()
    }
}

/// The CDR leg with `role`, or an error naming the record.
fn leg_with_role(record: &serde_json::Value, role: &str) -> HarnessResult<serde_json::Value> {
    record["legs"]
        .as_array()
        .and_then(|legs| legs.iter().find(|leg| leg["role"] == role).cloned())
        .ok_or_else(|| HarnessError::Unexpected(format!("no {role} leg: {record}")))
}

#[test]
fn a_consult_to_a_queue_rings_the_agent_the_acd_would_choose() -> HarnessResult<()> {
    let switchboard = Switchboard::start(billing_config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let call_path = |action: &str| format!("/api/calls/{id}/{action}");

    // Nobody of billing is Ready (no phone registered): refused, the call goes on untouched.
    assert_eq!(
        refused(
            &api,
            &call_path("consult"),
            r#"{"to": "queue:billing"}"#,
            409
        )?,
        "no_ready_agent"
    );
    assert_eq!(
        refused(
            &api,
            &call_path("consult"),
            r#"{"to": "queue:nowhere"}"#,
            404
        )?,
        "unknown_target"
    );
    wait_until(
        &conversation.caller_rtp,
        "the caller still hears the agent after the refusal",
        |s| tone_share(s, AGENT_HZ) > PRESENT,
    )?;
    wait_until(
        &conversation.agent_rtp,
        "the agent still hears the caller after the refusal",
        |s| tone_share(s, CALLER_HZ) > PRESENT,
    )?;
    assert_eq!(
        refused(&api, &call_path("complete"), "", 409)?,
        "no_consult",
        "a refused consult leaves no consult behind"
    );

    // 1002 registers first (longest idle), 1003 second: the queue's strategy (most skilled)
    // picks 1003, as the ACD would for the queue's next call.
    let bob_phone = AgentPhone::register(&switchboard, "1002")?;
    let carol_phone = AgentPhone::register(&switchboard, "1003")?;
    api.wait_for_agent_state("1002", "ready", WAIT)?;
    api.wait_for_agent_state("1003", "ready", WAIT)?;
    post(&api, &call_path("consult"), r#"{"to": "queue:billing"}"#)?;
    let colleague = colleague_answers(&carol_phone)?;
    assert_eq!(
        colleague.invite.header("X-Switchboard-Consult"),
        Some("1001")
    );
    consulting(&conversation, &colleague)?;
    // The consulted agent is taken out of the ACD (Not ready, reason consult); the other
    // billing agent is untouched.
    let carol = api.agent("1003")?;
    assert_eq!(carol["state"], "not-ready", "{carol}");
    assert_eq!(carol["reason"], "consult", "{carol}");
    assert_eq!(api.agent("1002")?["state"], "ready");

    post(&api, &call_path("complete"), "")?;
    take_bye(&agent)?;
    caller_with_colleague(&conversation, &colleague)?;
    api.wait_for_agent_state("1003", "on-call", WAIT)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&carol_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:1003"],
        "{record}"
    );
    let consult_leg = leg_with_role(&record, "consult")?;
    assert_eq!(consult_leg["queue"], "billing", "{record}");
    assert!(
        leg_with_role(&record, "agent")?.get("queue").is_none(),
        "only the consult leg names a queue: {record}"
    );
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    assert_eq!(record["transfers"][0]["to"], "1003", "{record}");
    assert_eq!(record["agent"], "1003", "{record}");
    drop(bob_phone);
    Ok(())
}

#[test]
fn a_phone_dialling_a_queue_consults_it_then_conferences_and_cancels() -> HarnessResult<()> {
    use sip_tests::digest::{Credentials, DigestAlgorithm};
    use sip_tests::uac::authenticated_invite;
    let switchboard = Switchboard::start(billing_config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let call_path = |action: &str| format!("/api/calls/{id}/{action}");
    let credentials = Credentials {
        username: "1001",
        password: "secret1001",
    };
    let consult_rtp = Arc::new(RtpPeer::bind()?);
    let offer = pcmu_offer(consult_rtp.port()?, false);

    // Nobody of billing Ready: the phone's consult call is refused with 480.
    let (_, refusal) = authenticated_invite(
        &agent.peer,
        "billing",
        &credentials,
        DigestAlgorithm::Md5,
        &offer,
        WAIT,
    )?;
    let refusal = match refusal {
        Ok(_) => {
            return Err(HarnessError::Unexpected(
                "a consult to a queue nobody serves was answered".into(),
            ))
        }
        Err(exchange) => exchange.final_response,
    };
    assert_eq!(refusal.status(), Some(480), "{}", refusal.to_text());
    assert!(
        refusal
            .header("Warning")
            .is_some_and(|w| w.contains("billing")),
        "{}",
        refusal.to_text()
    );

    let bob_phone = AgentPhone::register(&switchboard, "1002")?;
    api.wait_for_agent_state("1002", "ready", WAIT)?;
    let (placing, colleague) = std::thread::scope(|scope| {
        let answering = scope.spawn(|| colleague_answers(&bob_phone));
        let placing = authenticated_invite(
            &agent.peer,
            "billing",
            &credentials,
            DigestAlgorithm::Md5,
            &offer,
            WAIT,
        );
        let answered = answering
            .join()
            .unwrap_or_else(|_| Err(HarnessError::Unexpected("colleague panicked".into())));
        (placing, answered)
    });
    let consult_call = placing?.1.map_err(|refused| {
        HarnessError::Unexpected(format!(
            "the consult was refused:\n{}",
            refused.final_response.to_text()
        ))
    })?;
    let colleague = colleague?;
    let relay = sdp_audio_address(&consult_call.answer.final_response.body)
        .ok_or_else(|| HarnessError::Unexpected("no audio address in the 200".into()))?;
    let _agent_consults = Talker::start(consult_rtp.clone(), relay, AGENT_HZ, 0xa6e8);
    wait_until(
        &colleague.rtp,
        "the colleague hears the agent's consult call",
        |s| tone_share(s, AGENT_HZ) > PRESENT && tone_share(s, CALLER_HZ) < ABSENT,
    )?;

    // Conference from the API: the caller hears both agents, the colleague both others.
    post(&api, &call_path("conference"), "")?;
    wait_until(
        &conversation.caller_rtp,
        "the caller hears both agents",
        |s| tone_share(s, AGENT_HZ) > PRESENT && tone_share(s, COLLEAGUE_HZ) > PRESENT,
    )?;
    wait_until(
        &colleague.rtp,
        "the colleague hears caller and agent",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT,
    )?;

    // Cancel: the colleague and the phone's consult call are hung up, the caller is back
    // with the agent alone.
    post(&api, &call_path("cancel"), "")?;
    take_bye(&bob_phone)?;
    let bye = agent.next_request("BYE", WAIT)?;
    assert_eq!(bye.header("Call-ID"), Some(consult_call.call_id()));
    agent.reply(&bye, 200, "OK", &[], "")?;
    drop(colleague);
    never_hears(
        &conversation.caller_rtp,
        "the caller after the cancel",
        &[COLLEAGUE_HZ],
    )?;
    wait_until(
        &conversation.agent_rtp,
        "the agent hears the caller again",
        |s| tone_share(s, CALLER_HZ) > PRESENT,
    )?;
    api.wait_for_agent_state("1002", "ready", WAIT)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&agent)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "consult:1002", "agent:1001"],
        "{record}"
    );
    assert_eq!(leg_with_role(&record, "consult")?["queue"], "billing");
    assert!(
        record["conference"]["seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{record}"
    );
    assert_eq!(
        record["transfers"].as_array().map_or(0, Vec::len),
        0,
        "{record}"
    );
    Ok(())
}

/// An offer made again (as [`pcmu_offer`] with `telephone_event`) with a new session version
/// and `direction` (`a=sendonly` holds).
fn reoffer(port: u16, telephone_event: bool, direction: &str) -> String {
    pcmu_offer(port, telephone_event)
        .replace("o=trunk 1 1 ", &format!("o=trunk 1 {} ", port % 1000 + 2))
        + &format!("a={direction}\r\n")
}

/// The caller's offer again (it offered telephone-events) with `direction`.
fn caller_reoffer(port: u16, direction: &str) -> String {
    reoffer(port, true, direction)
}

/// Root mean square of `samples`: the hold music is loud, silence and comfort noise are not.
fn loudness(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / samples.len() as f64).sqrt()
}

/// After the call went to `agent_rtp`'s phone (talking at `agent_hz`), the caller's side
/// (the trunk) holds with a re-INVITE (`a=sendonly`) and resumes (`a=sendrecv`): Switchboard
/// answers both itself (its own SDP, `a=recvonly` then `a=sendrecv`), the agent hears the hold
/// music instead of the caller meanwhile, and afterwards audio flows both ways again.
fn caller_holds_and_resumes(
    conversation: &mut Conversation,
    agent_rtp: &RtpPeer,
    agent_hz: f64,
) -> HarnessResult<()> {
    let port = conversation.caller_rtp.port()?;
    let relay_before = sdp_audio_address(&conversation.call.answer.final_response.body);
    let hold = conversation
        .call
        .reinvite(&caller_reoffer(port, "sendonly"), WAIT)?;
    let held = &hold.final_response;
    assert_eq!(held.status(), Some(200), "{}", held.to_text());
    assert!(held.body.contains("a=recvonly"), "{}", held.to_text());
    assert!(
        held.body.contains("o=") && !held.body.contains("o=trunk"),
        "Switchboard answers with its own SDP:\n{}",
        held.to_text()
    );
    assert_eq!(
        sdp_audio_address(&held.body),
        relay_before,
        "the trunk's media stays anchored on the same relay port"
    );
    wait_until(
        agent_rtp,
        "the agent hears the hold music instead of the caller",
        |s| loudness(s) > 300.0 && tone_share(s, CALLER_HZ) < ABSENT,
    )?;
    // Switchboard answered a=recvonly: it sends the held caller nothing. (Audio from before
    // the hold may still be in the socket: read until it stops, which must happen.)
    conversation
        .caller_rtp
        .receive_until_quiet(Duration::from_secs(1), WAIT)?;
    let sent_to_held = conversation.caller_rtp.receive(1, Duration::from_secs(2))?;
    assert!(
        sent_to_held.is_empty(),
        "Switchboard sends RTP to a caller that holds with a=sendonly"
    );

    let resume = conversation
        .call
        .reinvite(&caller_reoffer(port, "sendrecv"), WAIT)?;
    let resumed = &resume.final_response;
    assert_eq!(resumed.status(), Some(200), "{}", resumed.to_text());
    assert!(
        !resumed.body.contains("a=recvonly") && !resumed.body.contains("a=inactive"),
        "{}",
        resumed.to_text()
    );
    wait_until(
        &conversation.caller_rtp,
        "the caller hears the agent after resuming",
        |s| tone_share(s, agent_hz) > PRESENT,
    )?;
    wait_until(
        agent_rtp,
        "the agent hears the caller after resuming",
        |s| tone_share(s, CALLER_HZ) > PRESENT,
    )?;
    // Packets keep coming both ways (50 in a row each, 1 s of audio).
    for (who, rtp) in [
        ("the caller", &*conversation.caller_rtp),
        ("the agent", agent_rtp),
    ] {
        let packets = rtp.receive(50, WAIT)?;
        assert_eq!(packets.len(), 50, "{who} receives RTP after the resume");
    }
    Ok(())
}

#[test]
fn the_caller_holds_and_resumes_after_a_blind_transfer() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    post(
        &api,
        &format!("/api/calls/{id}/transfer"),
        r#"{"to": "1002", "mode": "blind"}"#,
    )?;
    take_bye(&agent)?;
    // A phone that was hung up stops sending (the new agent's leg reuses the same relay port,
    // whose source latches to the first packets after the new agent answers).
    drop(conversation.agent_talks.take());
    let colleague = colleague_answers(&colleague_phone)?;
    caller_with_colleague(&conversation, &colleague)?;

    caller_holds_and_resumes(&mut conversation, &colleague.rtp, COLLEAGUE_HZ)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["transfers"][0]["kind"], "blind", "{record}");
    assert!(
        record["hold_s"].as_f64().is_some_and(|s| s > 0.0),
        "the caller's hold after the transfer is hold time: {record}"
    );
    Ok(())
}

#[test]
fn the_caller_holds_and_resumes_after_an_attended_transfer() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let colleague = consult_colleague(&api, id, &colleague_phone, &conversation)?;
    post(&api, &format!("/api/calls/{id}/complete"), "")?;
    take_bye(&agent)?;
    caller_with_colleague(&conversation, &colleague)?;

    caller_holds_and_resumes(&mut conversation, &colleague.rtp, COLLEAGUE_HZ)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    Ok(())
}

/// [`config`] with every call of `support` recorded.
fn recorded_config() -> SwitchboardConfig {
    SwitchboardConfig {
        support_queue_lines: vec!["record = \"all\"".to_owned()],
        ..config()
    }
}

/// Every `.wav` file under `dir`, however deep.
fn wav_files(dir: &std::path::Path) -> HarnessResult<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(found);
    };
    for entry in entries {
        let path = entry
            .map_err(|e| HarnessError::io(format!("listing {}", dir.display()), e))?
            .path();
        if path.is_dir() {
            found.extend(wav_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "wav") {
            found.push(path);
        }
    }
    Ok(found)
}

/// The call's recording, named by its CDR, as (left, right) channels; there must be exactly
/// one recording file in the recordings folder.
fn the_one_recording(
    switchboard: &Switchboard,
    record: &serde_json::Value,
) -> HarnessResult<(Vec<i16>, Vec<i16>)> {
    let path = record["recording"]
        .as_str()
        .ok_or_else(|| HarnessError::Unexpected(format!("no recording in the CDR: {record}")))?;
    let files = wav_files(&switchboard.recordings_dir())?;
    assert_eq!(
        files,
        vec![std::path::PathBuf::from(path)],
        "one recording file for the whole call"
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
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    Ok((left, right))
}

/// Quarter-second windows of a channel (8 kHz).
fn windows(channel: &[i16]) -> impl Iterator<Item = &[i16]> {
    channel.chunks_exact(2000)
}

/// The recording lasts as long as the call was answered (the CDR's talk and hold time), give
/// or take a second at the edges.
fn covers_the_call(record: &serde_json::Value, left: &[i16]) {
    let answered_s = record["talk_s"].as_f64().unwrap_or_default()
        + record["hold_s"].as_f64().unwrap_or_default();
    let recorded_s = left.len() as f64 / 8000.0;
    assert!(
        recorded_s + 1.0 >= answered_s && answered_s > 0.0,
        "{recorded_s:.1} s recorded of a call answered for {answered_s:.1} s: {record}"
    );
}

#[test]
fn an_attended_transfer_leaves_one_recording_with_both_agents_on_it() -> HarnessResult<()> {
    let switchboard = Switchboard::start(recorded_config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    wait_until(&conversation.agent_rtp, "the agent hears the caller", |s| {
        tone_share(s, CALLER_HZ) > PRESENT
    })?;
    let colleague = consult_colleague(&api, id, &colleague_phone, &conversation)?;
    post(&api, &format!("/api/calls/{id}/complete"), "")?;
    take_bye(&agent)?;
    drop(conversation.agent_talks.take());
    caller_with_colleague(&conversation, &colleague)?;
    // A few more seconds of caller and colleague, so the end of the file is theirs.
    for _ in 0..4 {
        heard(&colleague.rtp)?;
    }

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    let (left, right) = the_one_recording(&switchboard, &record)?;
    covers_the_call(&record, &left);
    // Left is the caller, right everyone else: the first agent, then the colleague.
    let first_agent_at = windows(&right).position(|w| tone_share(w, AGENT_HZ) > PRESENT);
    let colleague_at = windows(&right).position(|w| tone_share(w, COLLEAGUE_HZ) > PRESENT);
    assert!(
        first_agent_at.is_some() && colleague_at.is_some() && first_agent_at < colleague_at,
        "the first agent ({first_agent_at:?}) then the colleague ({colleague_at:?}) on the right"
    );
    let last_second = &right[right.len().saturating_sub(8000)..];
    assert!(
        windows(last_second).any(|w| tone_share(w, COLLEAGUE_HZ) > PRESENT),
        "the colleague is still recorded at the end of the call"
    );
    assert!(
        windows(&left).any(|w| tone_share(w, CALLER_HZ) > PRESENT),
        "the caller on the left"
    );
    assert!(
        windows(&left).all(|w| tone_share(w, COLLEAGUE_HZ) < ABSENT),
        "the colleague never on the caller's channel"
    );
    Ok(())
}

#[test]
fn a_conference_leaves_one_recording_with_everyone_on_it() -> HarnessResult<()> {
    let switchboard = Switchboard::start(recorded_config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let colleague = consult_colleague(&api, id, &colleague_phone, &conversation)?;
    post(&api, &format!("/api/calls/{id}/conference"), "")?;
    wait_until(
        &colleague.rtp,
        "the colleague hears caller and agent",
        |s| tone_share(s, CALLER_HZ) > PRESENT && tone_share(s, AGENT_HZ) > PRESENT,
    )?;
    // The first agent leaves; caller and colleague go on.
    let bye = conversation
        .agent_call
        .dialog
        .send(&agent.peer, "BYE", &[], "", WAIT)?;
    assert_eq!(bye.final_response.status(), Some(200));
    caller_with_colleague(&conversation, &colleague)?;
    for _ in 0..4 {
        heard(&colleague.rtp)?;
    }

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert!(
        record["conference"]["seconds"]
            .as_f64()
            .is_some_and(|s| s > 0.0),
        "{record}"
    );
    let (left, right) = the_one_recording(&switchboard, &record)?;
    covers_the_call(&record, &left);
    assert!(
        windows(&right)
            .any(|w| tone_share(w, AGENT_HZ) > PRESENT && tone_share(w, COLLEAGUE_HZ) > PRESENT),
        "during the conference both agents are on the right channel together"
    );
    let last_second = &right[right.len().saturating_sub(8000)..];
    assert!(
        windows(last_second).any(|w| tone_share(w, COLLEAGUE_HZ) > PRESENT),
        "the colleague is still recorded after the first agent left"
    );
    assert!(
        windows(&left).any(|w| tone_share(w, CALLER_HZ) > PRESENT),
        "the caller on the left"
    );
    Ok(())
}

/// 1001 may dial `+49…` and `+44…`; a carrier on `carrier_port` takes `+49` (sent as
/// `0049…`, caller id `+4930123`) and `+33`; no route takes `+44`.
fn carrier_config(carrier_port: u16) -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice").with_outbound(&["+49*", "+44*"]),
            AgentAccount::new("1002", "Bob").without_support(),
        ],
        extra_toml: format!(
            "[[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:{carrier_port}\"\n\n\
             [[route]]\nprefix = \"+49\"\ntrunks = [\"carrier\"]\nstrip = 1\nprepend = \"00\"\n\
             caller_id = \"+4930123\"\n\n\
             [[route]]\nprefix = \"+33\"\ntrunks = [\"carrier\"]\n"
        ),
        ..SwitchboardConfig::default()
    }
}

#[test]
fn a_consult_to_an_outside_number_goes_through_the_route_and_completes() -> HarnessResult<()> {
    let carrier_port = sip_tests::ports::free_port()?;
    let switchboard = Switchboard::start(carrier_config(carrier_port))?;
    let carrier = AgentPhone::unregistered(&switchboard, carrier_port, "carrier")?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let call_path = |action: &str| format!("/api/calls/{id}/{action}");

    assert_eq!(
        refused(&api, &call_path("consult"), r#"{"to": "+33155"}"#, 403)?,
        "number_not_allowed",
        "routed, but not on 1001's outbound list"
    );
    assert_eq!(
        refused(&api, &call_path("consult"), r#"{"to": "+44207"}"#, 404)?,
        "unknown_target",
        "allowed, but no route takes +44"
    );
    wait_until(
        &conversation.caller_rtp,
        "the caller still hears the agent after the refusals",
        |s| tone_share(s, AGENT_HZ) > PRESENT,
    )?;

    post(&api, &call_path("consult"), r#"{"to": "+4930555"}"#)?;
    let outside = colleague_answers(&carrier)?;
    let first_line = outside.invite.to_text();
    assert!(
        first_line.starts_with("INVITE sip:004930555@"),
        "the carrier is sent the number as the route sends it:\n{first_line}"
    );
    assert_eq!(
        outside.invite.from_user(),
        Some("+4930123"),
        "the route's caller id"
    );
    consulting(&conversation, &outside)?;
    post(&api, &call_path("complete"), "")?;
    take_bye(&agent)?;
    caller_with_colleague(&conversation, &outside)?;
    // The first agent is free again (no wrap-up in this queue); the call stays on with the
    // outside party.
    api.wait_for_agent_state("1001", "ready", WAIT)?;

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&carrier)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        leg_roles(&record),
        vec!["trunk:t1", "agent:1001", "consult:+4930555"],
        "{record}"
    );
    assert_eq!(record["transfers"][0]["kind"], "attended", "{record}");
    assert_eq!(record["transfers"][0]["to"], "+4930555", "{record}");
    assert_eq!(
        record["agent"], "1001",
        "the call's agent stays the last agent of ours: {record}"
    );
    Ok(())
}

#[test]
fn the_consulted_agent_holds_and_resumes_the_caller_after_the_transfer() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let colleague_phone = AgentPhone::register(&switchboard, "1002")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    post(
        &api,
        &format!("/api/calls/{id}/consult"),
        r#"{"to": "1002"}"#,
    )?;
    let mut colleague = colleague_answers(&colleague_phone)?;
    consulting(&conversation, &colleague)?;
    post(&api, &format!("/api/calls/{id}/complete"), "")?;
    take_bye(&agent)?;
    caller_with_colleague(&conversation, &colleague)?;

    // The colleague's phone holds the call it now has: Switchboard answers a=recvonly and the
    // caller hears the hold music instead of the colleague.
    let port = colleague.rtp.port()?;
    let hold = colleague.call.dialog.send(
        &colleague_phone.peer,
        "INVITE",
        &[],
        &reoffer(port, false, "sendonly"),
        WAIT,
    )?;
    let held = &hold.final_response;
    assert_eq!(held.status(), Some(200), "{}", held.to_text());
    assert!(held.body.contains("a=recvonly"), "{}", held.to_text());
    wait_until(
        &conversation.caller_rtp,
        "the caller hears the hold music instead of the colleague",
        |s| loudness(s) > 300.0 && tone_share(s, COLLEAGUE_HZ) < ABSENT,
    )?;
    let listed = api.get("/api/calls")?.json()?;
    assert_eq!(listed["calls"][0]["on_hold"], true, "{listed}");

    let resume = colleague.call.dialog.send(
        &colleague_phone.peer,
        "INVITE",
        &[],
        &reoffer(port, false, "sendrecv"),
        WAIT,
    )?;
    let resumed = &resume.final_response;
    assert_eq!(resumed.status(), Some(200), "{}", resumed.to_text());
    assert!(
        !resumed.body.contains("a=recvonly"),
        "{}",
        resumed.to_text()
    );
    caller_with_colleague(&conversation, &colleague)?;
    let listed = api.get("/api/calls")?.json()?;
    assert_eq!(listed["calls"][0]["on_hold"], false, "{listed}");

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&colleague_phone)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert!(
        record["hold_s"].as_f64().is_some_and(|s| s > 0.0),
        "the colleague's hold is hold time: {record}"
    );
    Ok(())
}

#[test]
fn an_outside_number_that_is_busy_gives_the_caller_back_to_the_agent() -> HarnessResult<()> {
    let carrier_port = sip_tests::ports::free_port()?;
    let switchboard = Switchboard::start(carrier_config(carrier_port))?;
    let carrier = AgentPhone::unregistered(&switchboard, carrier_port, "carrier")?;
    let agent = AgentPhone::register(&switchboard, "1001")?;
    let caller_sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let conversation = converse(&agent, &caller_sip)?;
    let api = switchboard.api();
    let id = call_id_of(&api)?;
    let call_path = |action: &str| format!("/api/calls/{id}/{action}");

    post(&api, &call_path("consult"), r#"{"to": "+4930555"}"#)?;
    let invite = carrier.next_request("INVITE", WAIT)?;
    carrier.reply(&invite, 486, "Busy Here", &[], "")?;
    // Switchboard ACKs the 486 (its INVITE transaction), and the consult is over: the caller
    // hears the agent again and there is nothing left to complete.
    carrier.next_request("ACK", WAIT)?;
    wait_until(
        &conversation.caller_rtp,
        "the caller hears the agent after the busy number",
        |s| tone_share(s, AGENT_HZ) > PRESENT,
    )?;
    wait_until(
        &conversation.agent_rtp,
        "the agent hears the caller after the busy number",
        |s| tone_share(s, CALLER_HZ) > PRESENT,
    )?;
    assert_eq!(
        refused(&api, &call_path("complete"), "", 409)?,
        "no_consult"
    );

    let call_id = conversation.call.call_id().to_owned();
    conversation.call.hang_up(WAIT)?;
    take_bye(&agent)?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    let consult_leg = leg_with_role(&record, "consult")?;
    assert_eq!(consult_leg["party"], "+4930555", "{record}");
    assert!(consult_leg["answered"].is_null(), "{record}");
    assert_eq!(consult_leg["sip_cause"], 486, "{record}");
    assert!(
        record["transfers"].as_array().is_none_or(Vec::is_empty),
        "{record}"
    );
    Ok(())
}
