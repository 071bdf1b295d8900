//! One test (or a few) per defect of issue 10 that a real client cannot be made to produce on
//! demand: the trunk is a Rust UAC and the agent's phone a Rust UAS ([`AgentPhone`]), so each
//! test controls every SDP direction, header and response. Defect 3 is in interop_linphone
//! (TCP), defect 9 in interop_kamailio.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sip_tests::agent_phone::{AgentCall, AgentPhone};
use sip_tests::cdr::{str_field, wait_for_call};
use sip_tests::dialog::{invite, response_text, Dialog};
use sip_tests::digest::{Credentials, DigestAlgorithm};
use sip_tests::rtp::{pcmu_offer, sdp_audio_address, RtpPeer};
use sip_tests::sip_message::SipMessage;
use sip_tests::uac::{register, RequestSpec};
use sip_tests::{
    HarnessError, HarnessResult, Switchboard, SwitchboardConfig, TrunkConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);
/// "Within a few seconds": a REFER or MESSAGE answered locally needs no more.
const LOCAL_ANSWER: Duration = Duration::from_secs(10);

/// An answered trunk call to DID 100, taken by agent 1001's Rust phone.
struct Connected {
    trunk: UdpPeer,
    trunk_dialog: Dialog,
    trunk_rtp: RtpPeer,
    /// Switchboard's RTP address on the trunk leg.
    trunk_relay: SocketAddr,
    /// The SDP of Switchboard's 200 to the trunk.
    trunk_answer: String,
    phone: AgentPhone,
    agent: AgentCall,
    agent_rtp: RtpPeer,
    /// Switchboard's RTP address on the agent leg.
    agent_relay: SocketAddr,
}

fn sdp_with_direction(port: u16, direction: &str) -> String {
    format!("{}a={direction}\r\n", pcmu_offer(port, true))
}

fn connect(switchboard: &Switchboard, trunk_headers: &[&str]) -> HarnessResult<Connected> {
    let phone = AgentPhone::register(switchboard, "1001")?;
    connect_to(switchboard, phone, trunk_headers)
}

fn connect_to(
    switchboard: &Switchboard,
    phone: AgentPhone,
    trunk_headers: &[&str],
) -> HarnessResult<Connected> {
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let trunk_rtp = RtpPeer::bind()?;
    let agent_rtp = RtpPeer::bind()?;
    let mut spec = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        "2000",
    );
    spec.body = sdp_with_direction(trunk_rtp.port()?, "sendrecv");
    spec.extra_headers = trunk_headers.iter().map(|h| (*h).to_owned()).collect();
    let (answered, agent) = std::thread::scope(|scope| {
        let call = scope.spawn(|| invite(&trunk, &spec, "", WAIT));
        let agent = phone.answer_next(&sdp_with_direction(agent_rtp.port()?, "sendrecv"), WAIT);
        let answered = call
            .join()
            .map_err(|_| HarnessError::Unexpected("trunk thread panicked".into()))?;
        HarnessResult::Ok((answered?, agent?))
    })?;
    let (exchange, dialog) = answered;
    let trunk_dialog = dialog.ok_or_else(|| {
        HarnessError::Unexpected(format!(
            "trunk call not answered:\n{}",
            exchange.final_response.to_text()
        ))
    })?;
    let trunk_answer = exchange.final_response.body.clone();
    let trunk_relay = audio_address(&trunk_answer)?;
    let agent_relay = audio_address(&agent.invite.body)?;
    Ok(Connected {
        trunk,
        trunk_dialog,
        trunk_rtp,
        trunk_relay,
        trunk_answer,
        phone,
        agent,
        agent_rtp,
        agent_relay,
    })
}

fn audio_address(sdp: &str) -> HarnessResult<SocketAddr> {
    sdp_audio_address(sdp)
        .ok_or_else(|| HarnessError::Unexpected(format!("no audio address in\n{sdp}")))
}

/// The direction attribute of an SDP body (`sendrecv` when none is written).
fn direction(sdp: &str) -> &str {
    sdp.lines()
        .map(str::trim)
        .find_map(|l| {
            l.strip_prefix("a=")
                .filter(|a| ["sendrecv", "sendonly", "recvonly", "inactive"].contains(a))
        })
        .unwrap_or("sendrecv")
}

/// The o= line's username, session id and version.
fn origin(sdp: &str) -> Option<(String, String, u64)> {
    let line = sdp.lines().find_map(|l| l.trim().strip_prefix("o="))?;
    let mut fields = line.split_whitespace();
    let user = fields.next()?.to_owned();
    let id = fields.next()?.to_owned();
    let version = fields.next()?.parse().ok()?;
    Some((user, id, version))
}

/// Messages on `peer` within `window`; requests are answered 200 (with `sdp` for INVITE),
/// so a refresh from Switchboard completes.
fn drain(peer: &UdpPeer, window: Duration, sdp: &str) -> HarnessResult<Vec<SipMessage>> {
    let end = Instant::now() + window;
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let Some(message) = peer.recv(left)? else {
            continue;
        };
        match message.method() {
            Some("ACK") | None => {}
            Some(method) => {
                let body = if method == "INVITE" { sdp } else { "" };
                peer.send(&response_text(
                    &message,
                    200,
                    "OK",
                    "t",
                    peer.local_addr()?,
                    &[],
                    body,
                ))?;
            }
        }
        seen.push(message);
    }
    Ok(seen)
}

fn methods(messages: &[SipMessage]) -> Vec<String> {
    messages.iter().map(|m| m.start_line.clone()).collect()
}

/// RTP packets `rtp` receives from `from` within `window`.
fn packets_from(rtp: &RtpPeer, from: SocketAddr, window: Duration) -> HarnessResult<usize> {
    Ok(rtp
        .receive(usize::MAX, window)?
        .iter()
        .filter(|p| p.from == from)
        .count())
}

// ------------------------------------------------------------------ defect 1: INVITE storm

fn storm_config() -> SwitchboardConfig {
    SwitchboardConfig {
        missed_call_reason: None,
        ..SwitchboardConfig::default()
    }
}

/// Agent 1001's phone answers every INVITE with `code` for 12 s while the call waits (agent
/// 1002 is not logged in); returns how many INVITEs it got.
fn invites_to_a_rejecting_phone(code: u16, reason: &str) -> HarnessResult<usize> {
    let switchboard = Switchboard::start(storm_config())?;
    let phone = AgentPhone::register(&switchboard, "1001")?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut spec = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        "2000",
    );
    spec.body = pcmu_offer(40_000, true);
    trunk.send(&spec.render(trunk.local_addr()?))?;
    let first = phone.next_request("INVITE", WAIT)?;
    phone.reply(&first, code, reason, &[], "")?;
    let more = phone.reject_invites_for(code, reason, Duration::from_secs(12))?;
    Ok(1 + more.len())
}

#[test]
fn defect_1_a_488_from_the_agents_phone_is_not_retried_to_that_agent() -> HarnessResult<()> {
    let invites = invites_to_a_rejecting_phone(488, "Not Acceptable Here")?;
    assert!(
        invites <= 1,
        "agent got {invites} INVITEs for one call in 12 s after answering 488"
    );
    Ok(())
}

#[test]
fn defect_1_a_480_from_the_agents_phone_is_retried_at_most_every_5_s() -> HarnessResult<()> {
    let invites = invites_to_a_rejecting_phone(480, "Temporarily Unavailable")?;
    assert!(
        invites <= 4,
        "agent got {invites} INVITEs for one call in 12 s after answering 480"
    );
    Ok(())
}

#[test]
fn defect_1_after_a_488_the_call_goes_to_the_next_agent() -> HarnessResult<()> {
    let switchboard = Switchboard::start(storm_config())?;
    let rejecting = AgentPhone::register(&switchboard, "1001")?;
    let answering = AgentPhone::register(&switchboard, "1002")?;
    switchboard.api().set_not_ready("1002", "break")?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let mut spec = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        "2000",
    );
    spec.body = pcmu_offer(40_000, true);
    let outcome = std::thread::scope(|scope| {
        let call = scope.spawn(|| invite(&trunk, &spec, "", WAIT));
        let first = rejecting.next_request("INVITE", WAIT)?;
        rejecting.reply(&first, 488, "Not Acceptable Here", &[], "")?;
        // 1002 stays on break for 6 s, so a retry to 1001 (the storm) has the time to show
        // whichever agent the queue would pick next; then 1002 becomes Ready and takes it.
        let alone =
            rejecting.reject_invites_for(488, "Not Acceptable Here", Duration::from_secs(6))?;
        switchboard.api().set_ready("1002")?;
        let rejecter = scope.spawn(|| {
            rejecting.reject_invites_for(488, "Not Acceptable Here", Duration::from_secs(6))
        });
        let answered = answering.answer_next(&pcmu_offer(40_002, true), WAIT)?;
        let mut more = rejecter
            .join()
            .map_err(|_| HarnessError::Unexpected("rejecting phone thread panicked".into()))??;
        more.extend(alone);
        let call = call
            .join()
            .map_err(|_| HarnessError::Unexpected("trunk thread panicked".into()))??;
        HarnessResult::Ok((1 + more.len(), answered, call))
    })?;
    let (invites_to_a, _answered_by_b, (exchange, _)) = outcome;
    assert_eq!(
        exchange.final_response.status(),
        Some(200),
        "agent 1002 answers"
    );
    assert!(
        invites_to_a <= 1,
        "agent 1001 got {invites_to_a} INVITEs for one call in 12 s after answering 488"
    );
    Ok(())
}

// ------------------------------------------------------------------ defect 2: REFER relayed

#[test]
fn defect_2_refer_from_the_agent_is_answered_locally_and_never_reaches_the_trunk(
) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut call = connect(&switchboard, &[])?;
    let refer_to = format!("Refer-To: <sip:1002@{}>", switchboard.sip_addr());
    let referred_by = format!("Referred-By: <sip:1001@{}>", switchboard.sip_addr());
    let answer = call.agent.dialog.send(
        &call.phone.peer,
        "REFER",
        &[refer_to, referred_by],
        "",
        LOCAL_ANSWER,
    );
    let at_trunk = drain(&call.trunk, Duration::from_secs(2), "")?;
    assert!(
        !at_trunk.iter().any(|m| m.method() == Some("REFER")),
        "the agent's REFER was relayed to the trunk: {:?}",
        methods(&at_trunk)
    );
    // Switchboard takes the REFER itself (a blind transfer); 1002 is not logged in, so the
    // NOTIFY reports 480 and the caller stays with the agent.
    let answer = answer?;
    assert_eq!(
        answer.final_response.status(),
        Some(202),
        "REFER from the agent got\n{}",
        answer.final_response.to_text()
    );
    let notify = call.phone.next_request("NOTIFY", WAIT)?;
    call.phone.reply(&notify, 200, "OK", &[], "")?;
    assert!(
        notify.body.starts_with("SIP/2.0 480"),
        "{}",
        notify.to_text()
    );
    let at_trunk = drain(&call.trunk, Duration::from_secs(1), "")?;
    assert!(
        at_trunk.iter().all(|m| m.method() != Some("BYE")),
        "the call stays up: {:?}",
        methods(&at_trunk)
    );
    Ok(())
}

#[test]
fn defect_2_refer_from_the_trunk_gets_403_or_405_and_never_reaches_the_agent() -> HarnessResult<()>
{
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut call = connect(&switchboard, &[])?;
    let refer_to = "Refer-To: <sip:+15550009999@carrier.example>".to_owned();
    let answer = call
        .trunk_dialog
        .send(&call.trunk, "REFER", &[refer_to], "", LOCAL_ANSWER);
    let at_agent = call.phone.collect_for(Duration::from_secs(2))?;
    assert!(
        !at_agent.iter().any(|m| m.method() == Some("REFER")),
        "the trunk's REFER was relayed to the agent: {:?}",
        methods(&at_agent)
    );
    let status = answer?.final_response.status();
    assert!(
        matches!(status, Some(403 | 405)),
        "REFER from the trunk got {status:?}"
    );
    Ok(())
}

/// In-dialog `method` from the agent (or the trunk) gets 405 with Allow and is not relayed.
fn in_dialog_request_not_relayed(method: &str, from_agent: bool) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut call = connect(&switchboard, &[])?;
    let headers: Vec<String> = match method {
        "SUBSCRIBE" => vec!["Event: dialog".into(), "Expires: 60".into()],
        _ => Vec::new(),
    };
    let (answer, elsewhere) = if from_agent {
        let answer = call
            .agent
            .dialog
            .send(&call.phone.peer, method, &headers, "", LOCAL_ANSWER);
        (answer, drain(&call.trunk, Duration::from_secs(2), "")?)
    } else {
        let answer = call
            .trunk_dialog
            .send(&call.trunk, method, &headers, "", LOCAL_ANSWER);
        (answer, call.phone.collect_for(Duration::from_secs(2))?)
    };
    assert!(
        !elsewhere.iter().any(|m| m.method() == Some(method)),
        "{method} was relayed to the other leg: {:?}",
        methods(&elsewhere)
    );
    let answer = answer?.final_response;
    assert_eq!(
        answer.status(),
        Some(405),
        "{method} got\n{}",
        answer.to_text()
    );
    assert!(
        answer.header("Allow").is_some(),
        "405 without Allow:\n{}",
        answer.to_text()
    );
    Ok(())
}

#[test]
fn defect_2_message_in_dialog_from_the_agent_is_not_relayed() -> HarnessResult<()> {
    in_dialog_request_not_relayed("MESSAGE", true)
}

#[test]
fn defect_2_message_in_dialog_from_the_trunk_is_not_relayed() -> HarnessResult<()> {
    in_dialog_request_not_relayed("MESSAGE", false)
}

#[test]
fn defect_2_subscribe_in_dialog_from_the_agent_is_not_relayed() -> HarnessResult<()> {
    in_dialog_request_not_relayed("SUBSCRIBE", true)
}

// ------------------------------------------------------------------ defect 4: session refresh

fn on_queue_config() -> SwitchboardConfig {
    SwitchboardConfig {
        support_queue_lines: vec!["answer = \"on-queue\"".into()],
        ..SwitchboardConfig::default()
    }
}

/// An INVITE to DID 100 (answered on queue, no agent) with `headers`; returns the exchange and
/// the dialog if answered.
fn on_queue_call(
    switchboard: &Switchboard,
    trunk: &UdpPeer,
    rtp_port: u16,
    headers: &[&str],
) -> HarnessResult<(SipMessage, Option<Dialog>)> {
    let mut spec = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        "2000",
    );
    spec.body = sdp_with_direction(rtp_port, "sendrecv");
    spec.extra_headers = headers.iter().map(|h| (*h).to_owned()).collect();
    let (exchange, dialog) = invite(trunk, &spec, "", WAIT)?;
    Ok((exchange.final_response, dialog))
}

#[test]
fn defect_4_reinvite_without_sdp_gets_the_current_offer_and_audio_continues() -> HarnessResult<()> {
    let switchboard = Switchboard::start(on_queue_config())?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let rtp = RtpPeer::bind()?;
    let (ok, dialog) = on_queue_call(&switchboard, &trunk, rtp.port()?, &[])?;
    let mut dialog = dialog
        .ok_or_else(|| HarnessError::Unexpected(format!("not answered:\n{}", ok.to_text())))?;
    let first = origin(&ok.body)
        .ok_or_else(|| HarnessError::Unexpected(format!("no o= in\n{}", ok.body)))?;
    let relay = audio_address(&ok.body)?;

    let local = trunk.local_addr()?;
    let text = dialog.request_text("INVITE", local, &[], "application/sdp", "");
    let refresh = trunk.request(&text, WAIT)?.final_response;
    assert_eq!(
        refresh.status(),
        Some(200),
        "re-INVITE without SDP got\n{}",
        refresh.to_text()
    );
    let offer = &refresh.body;
    let again = origin(offer).ok_or_else(|| {
        HarnessError::Unexpected(format!("200 without an offer:\n{}", refresh.to_text()))
    })?;
    assert_eq!(
        (&again.0, &again.1),
        (&first.0, &first.1),
        "same o= username and session id"
    );
    assert_eq!(audio_address(offer)?, relay, "same media address");
    trunk.send(&dialog.ack_text(
        dialog.cseq,
        local,
        &sdp_with_direction(rtp.port()?, "sendrecv"),
    ))?;
    // Music on hold still reaches the trunk afterwards.
    let after = packets_from(&rtp, relay, Duration::from_secs(3))?;
    assert!(after >= 25, "{after} RTP packets in 3 s after the refresh");
    Ok(())
}

#[test]
fn defect_4_update_without_body_is_a_refresh_and_gets_200() -> HarnessResult<()> {
    let switchboard = Switchboard::start(on_queue_config())?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let rtp = RtpPeer::bind()?;
    let (ok, dialog) = on_queue_call(&switchboard, &trunk, rtp.port()?, &[])?;
    let mut dialog = dialog
        .ok_or_else(|| HarnessError::Unexpected(format!("not answered:\n{}", ok.to_text())))?;
    let answer = dialog.send(&trunk, "UPDATE", &[], "", WAIT)?.final_response;
    assert_eq!(
        answer.status(),
        Some(200),
        "UPDATE without body got\n{}",
        answer.to_text()
    );
    Ok(())
}

#[test]
fn defect_4_session_expires_below_min_se_gets_422_with_min_se_90() -> HarnessResult<()> {
    let switchboard = Switchboard::start(on_queue_config())?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (answer, _) = on_queue_call(
        &switchboard,
        &trunk,
        40_000,
        &["Supported: timer", "Session-Expires: 60"],
    )?;
    assert_eq!(answer.status(), Some(422), "got\n{}", answer.to_text());
    assert_eq!(
        answer.header("Min-SE").map(str::trim),
        Some("90"),
        "{}",
        answer.to_text()
    );
    Ok(())
}

#[test]
fn defect_4_session_timer_with_supported_timer_makes_the_caller_refresh() -> HarnessResult<()> {
    let switchboard = Switchboard::start(on_queue_config())?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (answer, _) = on_queue_call(
        &switchboard,
        &trunk,
        40_000,
        &["Supported: timer", "Session-Expires: 1800"],
    )?;
    assert_eq!(answer.status(), Some(200), "{}", answer.to_text());
    let expires = answer
        .header("Session-Expires")
        .unwrap_or_default()
        .replace(' ', "");
    assert_eq!(expires, "1800;refresher=uac", "{}", answer.to_text());
    assert!(
        answer
            .headers_named("Require")
            .iter()
            .any(|r| r.contains("timer")),
        "Require: timer missing:\n{}",
        answer.to_text()
    );
    Ok(())
}

#[test]
fn defect_4_session_timer_without_supported_timer_makes_switchboard_refresh() -> HarnessResult<()> {
    let switchboard = Switchboard::start(on_queue_config())?;
    // An agent logged in but on a break keeps the caller waiting (with music) for the whole
    // test, instead of hearing "closed" and being hung up.
    let _phone = sip_tests::start_agent_on_break(&switchboard, "1001", Duration::from_secs(150))?;
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let rtp = RtpPeer::bind()?;
    let (answer, _) = on_queue_call(&switchboard, &trunk, rtp.port()?, &["Session-Expires: 90"])?;
    assert_eq!(answer.status(), Some(200), "{}", answer.to_text());
    let expires = answer
        .header("Session-Expires")
        .unwrap_or_default()
        .replace(' ', "");
    assert_eq!(expires, "90;refresher=uas", "{}", answer.to_text());
    // The refresh is due at half the interval (45 s); wait for it up to the full 90 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let batch = drain(
            &trunk,
            left.min(Duration::from_secs(5)),
            &sdp_with_direction(rtp.port()?, "sendrecv"),
        )?;
        let refreshed = batch
            .iter()
            .any(|m| matches!(m.method(), Some("UPDATE" | "INVITE")));
        seen.extend(batch);
        if refreshed {
            return Ok(());
        }
    }
    panic!(
        "no UPDATE or re-INVITE from Switchboard within 90 s; got {:?}",
        methods(&seen)
    );
}

// ------------------------------------------------------------------ defects 5 and 6: hold

/// `talker` (its socket and Switchboard's address on its leg) sends 2 s of audio while the
/// held side (`held`) counts what Switchboard sends it; then, with the talker silent, the
/// talker counts for 2 s what Switchboard sends it. Returns (to the held side, to the talker).
fn while_one_side_talks(
    talker: (&RtpPeer, SocketAddr),
    held: (&RtpPeer, SocketAddr),
) -> HarnessResult<(usize, usize)> {
    let (to_held, to_talker) = std::thread::scope(|scope| {
        let talking = scope.spawn(|| talker.0.send_stream(talker.1, 100, 0, 0x5eed_0100));
        let to_held = packets_from(held.0, held.1, Duration::from_secs(2));
        let _ = talking.join();
        let to_talker = packets_from(talker.0, talker.1, Duration::from_secs(2));
        (to_held, to_talker)
    });
    Ok((to_held?, to_talker?))
}

/// The trunk holds with `direction` (`sendonly` or `inactive`): Switchboard answers with the
/// matching direction, sends the trunk (almost) nothing while the agent talks, and the agent
/// hears music on hold; after the resume the agent hears the trunk again.
fn trunk_holds(direction_sent: &str, expected_answer: &str) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut call = connect(&switchboard, &[])?;
    let hold = sdp_with_direction(call.trunk_rtp.port()?, direction_sent);
    let held = call
        .trunk_dialog
        .send(&call.trunk, "INVITE", &[], &hold, WAIT)?
        .final_response;
    assert_eq!(held.status(), Some(200), "{}", held.to_text());
    assert_eq!(
        direction(&held.body),
        expected_answer,
        "defect 6: answer to {direction_sent}:\n{}",
        held.body
    );

    // Defect 6: the agent talks for 2 s; the held trunk gets at most a few packets in flight.
    // Defect 5: the trunk sends nothing; the agent must still get audio (music on hold).
    let (to_trunk, to_agent) = while_one_side_talks(
        (&call.agent_rtp, call.agent_relay),
        (&call.trunk_rtp, call.trunk_relay),
    )?;
    // Both defects are reported at once: they are fixed separately.
    let mut failures = Vec::new();
    if to_trunk > 3 {
        failures.push(format!(
            "defect 6: Switchboard sent {to_trunk} packets in 2 s to a trunk on hold ({direction_sent})"
        ));
    }
    if to_agent < 25 {
        failures.push(format!(
            "defect 5: the agent got {to_agent} packets in 2 s while the caller holds (no music on hold)"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("; "));

    let resume = sdp_with_direction(call.trunk_rtp.port()?, "sendrecv");
    let resumed = call
        .trunk_dialog
        .send(&call.trunk, "INVITE", &[], &resume, WAIT)?
        .final_response;
    assert_eq!(resumed.status(), Some(200), "{}", resumed.to_text());
    assert_eq!(direction(&resumed.body), "sendrecv");
    let heard = std::thread::scope(|scope| {
        let talker = scope.spawn(|| {
            call.trunk_rtp
                .send_stream(call.trunk_relay, 50, 0, 0x5eed_0101)
        });
        let heard = call.agent_rtp.receive(200, Duration::from_secs(3));
        let _ = talker.join();
        heard
    })?;
    // The trunk's own packets (recognised by their payload) reach the agent again.
    let sent: Vec<Vec<u8>> = (0..50)
        .map(|i| RtpPeer::packet(i, 0, 0).split_off(12))
        .collect();
    let from_trunk = heard
        .iter()
        .filter(|p| {
            p.from == call.agent_relay
                && sent.iter().any(|s| p.bytes.get(12..) == Some(s.as_slice()))
        })
        .count();
    assert!(
        from_trunk >= 25,
        "after the resume the agent hears the trunk: {from_trunk} of 50 packets"
    );
    Ok(())
}

#[test]
fn defect_5_6_trunk_hold_sendonly_is_answered_recvonly_and_the_agent_hears_music(
) -> HarnessResult<()> {
    trunk_holds("sendonly", "recvonly")
}

#[test]
fn defect_5_6_trunk_hold_inactive_is_answered_inactive_and_the_agent_hears_music(
) -> HarnessResult<()> {
    trunk_holds("inactive", "inactive")
}

#[test]
fn defect_6_agent_hold_sendonly_is_answered_recvonly_and_the_caller_hears_music(
) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut call = connect(&switchboard, &[])?;
    let hold = sdp_with_direction(call.agent_rtp.port()?, "sendonly");
    let held = call
        .agent
        .dialog
        .send(&call.phone.peer, "INVITE", &[], &hold, WAIT)?
        .final_response;
    assert_eq!(held.status(), Some(200), "{}", held.to_text());
    assert_eq!(
        direction(&held.body),
        "recvonly",
        "answer to the agent's hold:\n{}",
        held.body
    );
    let (to_agent, to_trunk) = while_one_side_talks(
        (&call.trunk_rtp, call.trunk_relay),
        (&call.agent_rtp, call.agent_relay),
    )?;
    assert!(
        to_agent <= 3,
        "Switchboard sent {to_agent} packets in 2 s to an agent on hold"
    );
    assert!(
        to_trunk >= 25,
        "the caller got {to_trunk} packets in 2 s while the agent holds (no music)"
    );
    Ok(())
}

// ------------------------------------------------------------------ defect 7: SDP origin

/// Each SDP Switchboard sends on a leg keeps o= username and session id and counts the
/// version up by one per change.
fn assert_versions(leg: &str, bodies: &[&str]) {
    let origins: Vec<_> = bodies.iter().map(|b| origin(b)).collect();
    let Some(Some(first)) = origins.first().cloned() else {
        panic!("{leg}: no o= line in {:?}", bodies.first());
    };
    for (step, found) in origins.iter().enumerate() {
        let expected = (first.0.clone(), first.1.clone(), first.2 + step as u64);
        assert_eq!(
            found.as_ref(),
            Some(&expected),
            "{leg}: SDP number {step} has o= {found:?}, expected {expected:?}: {origins:?}"
        );
    }
}

#[test]
fn defect_7_sdp_origin_versions_count_up_on_each_leg() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut call = connect(&switchboard, &[])?;
    let port = call.agent_rtp.port()?;
    let held = call.agent.dialog.send(
        &call.phone.peer,
        "INVITE",
        &[],
        &sdp_with_direction(port, "sendonly"),
        WAIT,
    )?;
    let resumed = call.agent.dialog.send(
        &call.phone.peer,
        "INVITE",
        &[],
        &sdp_with_direction(port, "sendrecv"),
        WAIT,
    )?;
    assert_versions(
        "agent leg",
        &[
            &call.agent.invite.body,
            &held.final_response.body,
            &resumed.final_response.body,
        ],
    );
    let port = call.trunk_rtp.port()?;
    let held = call.trunk_dialog.send(
        &call.trunk,
        "INVITE",
        &[],
        &sdp_with_direction(port, "sendonly"),
        WAIT,
    )?;
    let resumed = call.trunk_dialog.send(
        &call.trunk,
        "INVITE",
        &[],
        &sdp_with_direction(port, "sendrecv"),
        WAIT,
    )?;
    assert_versions(
        "trunk leg",
        &[
            &call.trunk_answer,
            &held.final_response.body,
            &resumed.final_response.body,
        ],
    );
    Ok(())
}

// ------------------------------------------------------------------ defect 8: identity

const PAI: &str = "P-Asserted-Identity: <sip:+15551234567@carrier.example>";
const DIVERSION: &str = "Diversion: <sip:+15550001111@carrier.example>;reason=unconditional";

fn trusted_trunk_config() -> SwitchboardConfig {
    SwitchboardConfig {
        trunks: Vec::new(),
        extra_toml:
            "\n[[trunk]]\nname = \"carrier\"\nallow = [\"127.0.0.0/8\"]\ntrust_identity = true\n"
                .into(),
        ..SwitchboardConfig::default()
    }
}

#[test]
fn defect_8_a_trusted_trunk_passes_pai_and_diversion_to_the_agent() -> HarnessResult<()> {
    let switchboard = Switchboard::start(trusted_trunk_config())?;
    let call = connect(&switchboard, &[PAI, DIVERSION])?;
    let invite = &call.agent.invite;
    let (_, pai_value) = PAI.split_once(": ").unwrap_or_default();
    let (_, diversion_value) = DIVERSION.split_once(": ").unwrap_or_default();
    assert_eq!(
        invite.header("P-Asserted-Identity"),
        Some(pai_value),
        "{}",
        invite.to_text()
    );
    assert_eq!(
        invite.header("Diversion"),
        Some(diversion_value),
        "{}",
        invite.to_text()
    );
    Ok(())
}

#[test]
fn defect_8_privacy_id_from_a_trusted_trunk_hides_the_caller_from_the_agent_not_the_cdr(
) -> HarnessResult<()> {
    let switchboard = Switchboard::start(trusted_trunk_config())?;
    let mut call = connect(&switchboard, &[PAI, "Privacy: id"])?;
    let invite = &call.agent.invite;
    let from = invite.header("From").unwrap_or_default();
    assert!(
        from.starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>"),
        "From to the agent: {from}"
    );
    assert_eq!(
        invite.header("P-Asserted-Identity"),
        None,
        "{}",
        invite.to_text()
    );
    let call_id = call.trunk_dialog.call_id.clone();
    call.trunk_dialog.send(&call.trunk, "BYE", &[], "", WAIT)?;
    let bye = call.phone.next_request("BYE", WAIT)?;
    call.phone.reply(&bye, 200, "OK", &[], "")?;
    let record = wait_for_call(switchboard.cdr_dir(), &call_id, WAIT)?;
    assert_eq!(
        str_field(&record, "caller"),
        Some("+15551234567"),
        "{record}"
    );
    Ok(())
}

#[test]
fn defect_8_an_untrusted_trunk_passes_no_identity_headers() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let call = connect(&switchboard, &[PAI, DIVERSION, "Privacy: id"])?;
    let invite = &call.agent.invite;
    for header in ["P-Asserted-Identity", "Diversion", "Privacy"] {
        assert_eq!(
            invite.header(header),
            None,
            "{header} reached the agent:\n{}",
            invite.to_text()
        );
    }
    assert_eq!(
        invite.from_user(),
        Some("2000"),
        "the trunk's From: {}",
        invite.to_text()
    );
    Ok(())
}

// ------------------------------------------------------------------ defect 10: PBX registers

#[test]
fn defect_10_a_pbx_trunk_registers_with_its_digest_credentials() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "pbx".into(),
            allow: Vec::new(),
            credentials: Some(("pbx".into(), "pbxpass".into())),
        }],
        ..SwitchboardConfig::default()
    })?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let registration = register(
        &peer,
        &Credentials {
            username: "pbx",
            password: "pbxpass",
        },
        DigestAlgorithm::Md5,
        600,
    )?;
    let ok = &registration.result.final_response;
    assert_eq!(ok.status(), Some(200), "{}", ok.to_text());
    let contact = ok.header("Contact").unwrap_or_default();
    let local = peer.local_addr()?;
    assert!(
        contact.contains(&local.to_string()),
        "binding {local} in {contact:?}"
    );
    assert!(
        ok.header("Expires").is_some() || contact.contains("expires="),
        "no Expires:\n{}",
        ok.to_text()
    );

    let stranger = UdpPeer::bind(0, switchboard.sip_addr())?;
    let refused = register(
        &stranger,
        &Credentials {
            username: "nobody",
            password: "x",
        },
        DigestAlgorithm::Md5,
        600,
    )?;
    assert_eq!(refused.result.final_response.status(), Some(403));
    Ok(())
}
