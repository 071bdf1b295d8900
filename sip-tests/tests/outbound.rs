//! Agents dialling out from their phones: the phone (a Rust UAC on one UDP socket) answers
//! Switchboard's 407 as the agent; SIPp plays the carriers behind the `[[route]]`'s trunks.
//! Checked: the call connects with audio both ways through Switchboard's ports, the number the
//! carrier sees is normalised, failover on 503, the carrier's digest challenge, the CDR and
//! the metric, the refusals (allow-list 403, unroutable 404, per-agent cap 403) with no trunk
//! tried, and that the ACD offers the agent no inbound call while they are on a call out.

use std::time::Duration;

use serde_json::Value;
use sip_tests::agent_phone::AgentPhone;
use sip_tests::api::{agent_reason, agent_state};
use sip_tests::cdr::{of_type, wait_for_records};
use sip_tests::digest;
use sip_tests::digest::{Credentials, DigestAlgorithm};
use sip_tests::ports::free_port;
use sip_tests::rtp::{pcmu_offer, sdp_audio_address, RtpPeer};
use sip_tests::uac::{authenticated_invite, send_ack_for_failure, unique_token, RequestSpec};
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Sipp, SippProcess, Switchboard, SwitchboardConfig,
    UdpPeer,
};

const TIMEOUT: Duration = Duration::from_secs(20);
const ALICE: Credentials<'static> = Credentials {
    username: "1001",
    password: "secret1001",
};
const BOB: Credentials<'static> = Credentials {
    username: "1002",
    password: "secret1002",
};
const CAROL: Credentials<'static> = Credentials {
    username: "1003",
    password: "secret1003",
};
/// A mobile number in China, as an agent dials it; route `+86` sends it as `0086…`.
const DIALLED: &str = "+8613800138000";
const SENT: &str = "008613800138000";

/// Two carriers (`carrier-a` then `carrier-b`) on the given ports, the route for `+86`, and
/// agent 1001 allowed `+86*` and `4000*` (1002 may not dial out).
fn config(port_a: u16, port_b: u16, credentials: bool) -> SwitchboardConfig {
    with_limits(port_a, port_b, credentials, "max_per_agent = 1")
}

/// [`config`] with `limits` as the `[outbound]` section, and agent 1003 allowed `+86*` too.
fn with_limits(port_a: u16, port_b: u16, credentials: bool, limits: &str) -> SwitchboardConfig {
    let credentials = if credentials {
        "outbound_username = \"acct-77\"\noutbound_password = \"carrier-secret\"\n"
    } else {
        ""
    };
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice").with_outbound(&["+86*", "4000*"]),
            AgentAccount::new("1002", "Bob"),
            AgentAccount::new("1003", "Carol").with_outbound(&["+86*"]),
        ],
        extra_toml: format!(
            "[[trunk]]\nname = \"carrier-a\"\ngateway = \"127.0.0.1:{port_a}\"\n{credentials}\n\
             [[trunk]]\nname = \"carrier-b\"\ngateway = \"127.0.0.1:{port_b}\"\n\n\
             [[route]]\nprefix = \"+86\"\ntrunks = [\"carrier-a\", \"carrier-b\"]\nstrip = 3\nprepend = \"0086\"\ncaller_id = \"+8610555000\"\n\n\
             [outbound]\n{limits}\n"
        ),
        ..SwitchboardConfig::default()
    }
}

/// A SIPp carrier on `port` playing `scenario`, echoing RTP back to where it came from.
fn carrier(switchboard: &Switchboard, scenario: &str, port: u16) -> HarnessResult<SippProcess> {
    Sipp::server(scenario, port, switchboard.dir())?
        .service("carrier")
        .timeout(TIMEOUT)
        .arg("-rtp_echo")
        .spawn()
}

/// The phone of `credentials`' agent, on a fresh port.
fn phone(switchboard: &Switchboard) -> HarnessResult<UdpPeer> {
    UdpPeer::bind(free_port()?, switchboard.sip_addr())
}

/// The one outbound call record, once it is written.
fn outbound_record(switchboard: &Switchboard) -> HarnessResult<Value> {
    let records = wait_for_records(
        switchboard.cdr_dir(),
        "an outbound call record",
        TIMEOUT,
        |records| {
            of_type(records, "call")
                .iter()
                .any(|r| r["direction"] == "outbound")
        },
    )?;
    of_type(&records, "call")
        .into_iter()
        .find(|r| r["direction"] == "outbound")
        .cloned()
        .ok_or_else(|| HarnessError::Unexpected("no outbound record".into()))
}

fn outbound_count(switchboard: &Switchboard, result: &str) -> HarnessResult<f64> {
    Ok(switchboard
        .api()
        .metrics()?
        .counter("switchboard_outbound_calls_total", &[("result", result)]))
}

#[test]
fn an_agent_dials_out_and_talks_with_audio_both_ways() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    let api = switchboard.api();
    // Alice's registered phone takes inbound calls; she dials out from another line.
    let registered = AgentPhone::register(&switchboard, "1001")?;
    api.wait_for_agent_state("1001", "ready", TIMEOUT)?;
    let carrier_a = carrier(&switchboard, "agent_answer.xml", port_a)?;

    let peer = phone(&switchboard)?;
    let rtp = RtpPeer::bind()?;
    let offer = pcmu_offer(rtp.port()?, false);
    let (challenge, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    assert_eq!(challenge.final_response.status(), Some(407));
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;
    let relay = sdp_audio_address(&call.answer.final_response.body).ok_or_else(|| {
        HarnessError::Unexpected(format!(
            "no audio address in the 200:\n{}",
            call.answer.final_response.body
        ))
    })?;
    assert_eq!(relay.ip().to_string(), "127.0.0.1");

    // The carrier echoes what it receives: packets back at the phone went both ways.
    rtp.send_stream(relay, 50, 0, 0x0ded)?;
    let echoed = rtp.receive(40, TIMEOUT)?;
    assert!(
        echoed.len() >= 40,
        "only {} of 50 packets came back",
        echoed.len()
    );
    assert!(
        echoed.iter().all(|p| p.from == relay),
        "audio comes from Switchboard's port"
    );

    // The call out is listed with the live calls, with both legs, and counted as active.
    let calls = api.get("/api/calls")?.json()?;
    let listed = calls["calls"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["direction"] == "outbound"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["origin"], "dial-out", "{calls}");
    assert_eq!(listed["did"], DIALLED, "{calls}");
    assert_eq!(listed["agent"], "1001", "{calls}");
    assert_eq!(listed["state"], "connected", "{calls}");
    let legs: Vec<(&str, &str)> = listed["legs"]
        .as_array()
        .map(|legs| {
            legs.iter()
                .map(|l| {
                    (
                        l["role"].as_str().unwrap_or_default(),
                        l["state"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        legs,
        vec![("agent", "answered"), ("trunk", "answered")],
        "{calls}"
    );
    assert_eq!(
        api.metrics()?.get("switchboard_active_calls", &[]),
        Some(1.0),
        "the call out counts as active"
    );
    // The desktop's call actions are for inbound calls: a hold on the call out is refused.
    let id = listed["id"].as_u64().unwrap_or_default();
    let hold = api.post(&format!("/api/calls/{id}/hold"), "")?;
    assert_eq!(
        (hold.status, hold.error_code()?.as_str()),
        (409, "call_out"),
        "{}",
        hold.body
    );

    // While on the call out, Alice is not offered inbound calls, and a second call out is
    // over her cap.
    let agent = api.agent("1001")?;
    assert_eq!(
        (agent_state(&agent), agent_reason(&agent)),
        (Some("not-ready"), Some("outbound-call")),
        "{agent}"
    );
    // A caller arrives for the queue Alice serves: the call waits rather than ring her.
    let trunk = phone(&switchboard)?;
    let mut inbound = RequestSpec::new("INVITE", &format!("sip:100@{}", trunk.remote()), "2000");
    inbound.body = pcmu_offer(free_port()?, false);
    trunk.send(&inbound.render(trunk.local_addr()?))?;
    api.wait_for_waiting("support", 1, TIMEOUT)?;
    let other_line = phone(&switchboard)?;
    let (_, refused) = authenticated_invite(
        &other_line,
        "+8613900139000",
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let refused = refused
        .err()
        .ok_or_else(|| HarnessError::Unexpected("a second call out was answered".into()))?;
    assert_eq!(refused.final_response.status(), Some(403));
    let warning = refused.final_response.header("Warning").unwrap_or_default();
    assert!(
        warning.contains("as many calls out as allowed"),
        "{warning}"
    );

    call.hang_up(TIMEOUT)?
        .final_response
        .status()
        .filter(|s| *s == 200)
        .ok_or_else(|| HarnessError::Unexpected("BYE not answered 200".into()))?;
    let run = carrier_a.wait()?;
    run.ensure_success()?;
    let invites = run.received("INVITE");
    assert_eq!(invites.len(), 1);
    let request_line = invites[0].to_text();
    assert!(
        request_line.starts_with(&format!("INVITE sip:{SENT}@127.0.0.1:{port_a}")),
        "the carrier is sent the normalised number: {request_line}"
    );
    assert_eq!(
        invites[0].from_user(),
        Some("+8610555000"),
        "the route's caller id"
    );

    // Back from the call out, Alice is offered the waiting call at last.
    let offered = registered.next_request("INVITE", TIMEOUT)?;
    assert_eq!(
        offered.header("X-Switchboard-DID"),
        Some("100"),
        "{}",
        offered.to_text()
    );

    let record = outbound_record(&switchboard)?;
    assert_eq!(record["disposition"], "answered", "{record}");
    assert_eq!(record["agent"], "1001");
    assert_eq!(record["hangup_side"], "agent");
    assert_eq!(record["outbound"]["dialled"], DIALLED);
    assert_eq!(record["outbound"]["sent"], SENT);
    assert_eq!(record["outbound"]["trunk"], "carrier-a");
    assert_eq!(record["outbound"]["attempts"], 1);
    let legs = record["legs"].as_array().cloned().unwrap_or_default();
    let roles: Vec<&str> = legs.iter().filter_map(|l| l["role"].as_str()).collect();
    assert_eq!(roles, vec!["agent", "trunk"], "{record}");
    assert_eq!(outbound_count(&switchboard, "answered")?, 1.0);
    assert_eq!(outbound_count(&switchboard, "limit")?, 1.0);
    Ok(())
}

#[test]
fn a_carrier_out_of_service_fails_over_to_the_next_trunk() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    let carrier_a = carrier(&switchboard, "carrier_503.xml", port_a)?;
    let carrier_b = carrier(&switchboard, "agent_answer.xml", port_b)?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let (_, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;
    call.hang_up(TIMEOUT)?;
    carrier_a.wait()?.ensure_success()?;
    carrier_b.wait()?.ensure_success()?;

    let record = outbound_record(&switchboard)?;
    assert_eq!(record["disposition"], "answered", "{record}");
    assert_eq!(record["outbound"]["trunk"], "carrier-b");
    assert_eq!(record["outbound"]["attempts"], 2);
    let causes: Vec<Value> = record["legs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| l["sip_cause"].clone())
        .collect();
    assert_eq!(
        causes,
        vec![Value::Null, Value::from(503), Value::Null],
        "phone, carrier-a's 503, carrier-b: {record}"
    );
    Ok(())
}

#[test]
fn switchboard_answers_the_carriers_digest_challenge() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, true))?;
    let carrier_a = carrier(&switchboard, "carrier_challenge.xml", port_a)?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let (_, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;
    call.hang_up(TIMEOUT)?;
    // The scenario checks the second INVITE's Proxy-Authorization (user acct-77) and CSeq.
    let run = carrier_a.wait()?;
    run.ensure_success()?;
    let invites = run.received("INVITE");
    assert_eq!(invites.len(), 2, "the INVITE, then again with credentials");
    let authorization = invites[1].header("Proxy-Authorization").unwrap_or_default();
    assert!(
        authorization.contains("realm=\"carrier.example\""),
        "{authorization}"
    );
    Ok(())
}

#[test]
fn refused_calls_out_never_reach_a_carrier() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    // Stand-ins for both carriers: any INVITE sent to them would wait in these sockets.
    let carrier_a = UdpPeer::bind(port_a, switchboard.sip_addr())?;
    let carrier_b = UdpPeer::bind(port_b, switchboard.sip_addr())?;
    let offer = pcmu_offer(free_port()?, false);

    // Bob has no allow-list: 403.
    let peer = phone(&switchboard)?;
    let (_, bob) =
        authenticated_invite(&peer, DIALLED, &BOB, DigestAlgorithm::Md5, &offer, TIMEOUT)?;
    let bob = bob
        .err()
        .ok_or_else(|| HarnessError::Unexpected("Bob's call out was answered".into()))?;
    assert_eq!(bob.final_response.status(), Some(403));
    let warning = bob.final_response.header("Warning").unwrap_or_default();
    assert!(
        warning.contains("agent 1002 may not dial +8613800138000"),
        "{warning}"
    );

    // Alice may dial 4000…, but no route takes it: 404.
    let peer = phone(&switchboard)?;
    let (_, unrouted) = authenticated_invite(
        &peer,
        "4000123",
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let unrouted = unrouted
        .err()
        .ok_or_else(|| HarnessError::Unexpected("an unroutable call out was answered".into()))?;
    assert_eq!(unrouted.final_response.status(), Some(404));
    let warning = unrouted
        .final_response
        .header("Warning")
        .unwrap_or_default();
    assert!(warning.contains("no route for 4000123"), "{warning}");

    // Each refusal was final before Switchboard could have sent anything on: nothing came.
    for carrier in [&carrier_a, &carrier_b] {
        let got = carrier.recv(Duration::from_millis(200))?;
        assert!(got.is_none(), "a carrier was tried: {got:?}");
    }
    assert_eq!(outbound_count(&switchboard, "forbidden")?, 1.0);
    assert_eq!(outbound_count(&switchboard, "unroutable")?, 1.0);
    assert!(
        switchboard.log().contains("event=outbound-refused"),
        "the refusal is in the security log"
    );
    Ok(())
}

/// An INVITE from `credentials`' phone to `dialled` that answers the 407, then waits for
/// `status` (e.g. 180) and returns the request as sent with credentials.
fn invite_until(
    peer: &UdpPeer,
    dialled: &str,
    credentials: &Credentials<'_>,
    status: u16,
) -> HarnessResult<RequestSpec> {
    let local = peer.local_addr()?;
    let uri = format!("sip:{dialled}@{}", peer.remote());
    let mut invite = RequestSpec::new("INVITE", &uri, credentials.username);
    invite.body = pcmu_offer(free_port()?, false);
    let challenge = peer.request(&invite.render(local), TIMEOUT)?;
    send_ack_for_failure(peer, &invite, &challenge.final_response)?;
    let offered = challenge.final_response.headers_named("Proxy-Authenticate");
    let answer = digest::pick(&offered, DigestAlgorithm::Md5)?.answer(
        credentials,
        "INVITE",
        &uri,
        &unique_token(),
        1,
    )?;
    invite.cseq += 1;
    invite.branch = unique_token();
    invite
        .extra_headers
        .push(format!("Proxy-Authorization: {answer}"));
    peer.send(&invite.render(local))?;
    wait_for_status(peer, status)?;
    Ok(invite)
}

/// The next response with `status` the phone receives.
fn wait_for_status(peer: &UdpPeer, status: u16) -> HarnessResult<sip_tests::SipMessage> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        if let Some(message) = peer.recv(left)? {
            if message.status() == Some(status) {
                return Ok(message);
            }
        }
    }
    Err(HarnessError::Unexpected(format!(
        "no {status} within {} s",
        TIMEOUT.as_secs()
    )))
}

#[test]
fn an_agent_who_gives_up_cancels_the_carrier_leg() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    let carrier_a = carrier(&switchboard, "carrier_ring_cancelled.xml", port_a)?;
    let peer = phone(&switchboard)?;
    // The phone hears ringing once the carrier rings.
    let invite = invite_until(&peer, DIALLED, &ALICE, 180)?;
    let mut cancel = invite.clone();
    cancel.method = "CANCEL".into();
    cancel.extra_headers.clear();
    cancel.body.clear();
    let cancelled = peer.request(&cancel.render(peer.local_addr()?), TIMEOUT)?;
    assert_eq!(cancelled.final_response.status(), Some(200));
    let terminated = wait_for_status(&peer, 487)?;
    send_ack_for_failure(&peer, &invite, &terminated)?;
    // The scenario requires the CANCEL on the carrier leg.
    carrier_a.wait()?.ensure_success()?;

    let record = outbound_record(&switchboard)?;
    assert_eq!(record["disposition"], "abandoned", "{record}");
    assert_eq!(record["hangup_side"], "agent");
    assert_eq!(outbound_count(&switchboard, "cancelled")?, 1.0);
    Ok(())
}

#[test]
fn a_carrier_that_hangs_up_ends_the_agents_call() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    let carrier_a = carrier(&switchboard, "agent_hangup.xml", port_a)?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let (_, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;
    call.wait_for_bye(TIMEOUT)?;
    carrier_a.wait()?.ensure_success()?;
    let record = outbound_record(&switchboard)?;
    assert_eq!(record["disposition"], "answered", "{record}");
    assert_eq!(
        record["hangup_side"], "caller",
        "the carrier's side, as on inbound calls"
    );
    Ok(())
}

#[test]
fn when_every_trunk_fails_the_agent_hears_why() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    let carrier_a = carrier(&switchboard, "carrier_503.xml", port_a)?;
    let carrier_b = carrier(&switchboard, "carrier_503.xml", port_b)?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let (_, failed) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let failed = failed
        .err()
        .ok_or_else(|| HarnessError::Unexpected("the call out was answered".into()))?;
    assert_eq!(failed.final_response.status(), Some(503));
    let warning = failed.final_response.header("Warning").unwrap_or_default();
    assert!(
        warning.contains("every trunk of the route failed (last: 503)"),
        "{warning}"
    );
    carrier_a.wait()?.ensure_success()?;
    carrier_b.wait()?.ensure_success()?;
    let record = outbound_record(&switchboard)?;
    assert_eq!(record["disposition"], "rejected", "{record}");
    assert_eq!(record["sip_cause"], 503);
    assert_eq!(record["outbound"]["attempts"], 2);
    assert_eq!(outbound_count(&switchboard, "failed")?, 1.0);
    Ok(())
}

#[test]
fn the_global_cap_and_the_daily_limit_refuse_calls_out() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(with_limits(
        port_a,
        port_b,
        false,
        "max_concurrent = 1\nmax_per_agent = 2\ndaily_limit_per_agent = 1",
    ))?;
    let carrier_a = carrier(&switchboard, "agent_answer.xml", port_a)?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let (_, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;

    // One call out in the whole node: Carol is refused while Alice talks.
    let carol = phone(&switchboard)?;
    let (_, refused) = authenticated_invite(
        &carol,
        DIALLED,
        &CAROL,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let refused = refused
        .err()
        .ok_or_else(|| HarnessError::Unexpected("Carol's call out was answered".into()))?;
    assert_eq!(refused.final_response.status(), Some(403));
    let warning = refused.final_response.header("Warning").unwrap_or_default();
    assert!(warning.contains("calls out at their limit"), "{warning}");

    call.hang_up(TIMEOUT)?;
    carrier_a.wait()?.ensure_success()?;

    // Alice has had her one call out today.
    let again = phone(&switchboard)?;
    let (_, refused) = authenticated_invite(
        &again,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let refused = refused
        .err()
        .ok_or_else(|| HarnessError::Unexpected("a second call out today was answered".into()))?;
    assert_eq!(refused.final_response.status(), Some(403));
    let warning = refused.final_response.header("Warning").unwrap_or_default();
    assert!(warning.contains("daily limit"), "{warning}");
    assert_eq!(outbound_count(&switchboard, "limit")?, 2.0);
    Ok(())
}

#[test]
fn a_call_out_without_audio_ends_at_the_media_timeout() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(SwitchboardConfig {
        media_timeout_s: 1,
        ..config(port_a, port_b, false)
    })?;
    // Neither the carrier nor the phone sends RTP.
    let carrier_a = Sipp::server("agent_answer.xml", port_a, switchboard.dir())?
        .service("carrier")
        .timeout(TIMEOUT)
        .spawn()?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let (_, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;
    // Switchboard hangs up both legs: the phone here, the carrier in its scenario.
    call.wait_for_bye(TIMEOUT)?;
    carrier_a.wait()?.ensure_success()?;
    let record = outbound_record(&switchboard)?;
    assert_eq!(record["hangup_side"], "system", "{record}");
    Ok(())
}

#[test]
fn a_key_press_sent_as_info_reaches_the_carrier_as_rfc4733() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(config(port_a, port_b, false))?;
    // The carrier echoes what it receives: events it got come back to the phone.
    let carrier_a = carrier(&switchboard, "carrier_answer_events.xml", port_a)?;
    let peer = phone(&switchboard)?;
    let rtp = RtpPeer::bind()?;
    let offer = pcmu_offer(rtp.port()?, true);
    let (_, answered) = authenticated_invite(
        &peer,
        DIALLED,
        &ALICE,
        DigestAlgorithm::Md5,
        &offer,
        TIMEOUT,
    )?;
    let mut call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "call out not answered:\n{}",
            failed.final_response.to_text()
        ))
    })?;
    let info = call.request(
        "INFO",
        "application/dtmf-relay",
        "Signal=5\r\nDuration=160\r\n",
        TIMEOUT,
    )?;
    assert_eq!(info.final_response.status(), Some(200));
    let packets = rtp.receive(1, TIMEOUT)?;
    let event = packets
        .first()
        .ok_or_else(|| HarnessError::Unexpected("no RTP came back".into()))?;
    assert_eq!(event.payload_type(), Some(101), "a telephone-event packet");
    assert_eq!(event.bytes.get(12), Some(&5), "the event is key 5");
    call.hang_up(TIMEOUT)?;
    carrier_a.wait()?.ensure_success()?;
    Ok(())
}

#[test]
fn a_trunk_with_register_registers_with_the_carrier_and_refreshes() -> HarnessResult<()> {
    let (port_a, port_b) = (free_port()?, free_port()?);
    // The carrier listens before Switchboard starts: the first REGISTER goes out at start.
    let registrar_dir = tempfile::tempdir()
        .map_err(|e| HarnessError::io("making a directory for the SIPp traces", e))?;
    let registrar = Sipp::server("carrier_register.xml", port_a, registrar_dir.path())?
        .timeout(TIMEOUT)
        .spawn()?;
    let mut config = config(port_a, port_b, true);
    config.extra_toml = config.extra_toml.replace(
        "outbound_password = \"carrier-secret\"\n",
        "outbound_password = \"carrier-secret\"\nregister = true\n",
    );
    let _switchboard = Switchboard::start(config)?;
    // The scenario checks the credentials and waits for the refresh of the 2 s binding.
    let run = registrar.wait()?;
    run.ensure_success()?;
    let registers = run.received("REGISTER");
    assert_eq!(registers.len(), 3, "challenged, registered, refreshed");
    let call_ids: Vec<_> = registers.iter().map(|r| r.header("Call-ID")).collect();
    assert!(
        call_ids.iter().all(|c| *c == call_ids[0]),
        "one Call-ID: {call_ids:?}"
    );
    let cseqs: Vec<u32> = registers
        .iter()
        .filter_map(|r| r.cseq().map(|(n, _)| n))
        .collect();
    assert_eq!(cseqs, vec![1, 2, 3]);
    Ok(())
}

/// Accepts one connection on `listener` and reads one SIP request from it (headers, then
/// Content-Length bytes of body).
fn accept_request(
    listener: &std::net::TcpListener,
) -> HarnessResult<(std::net::TcpStream, sip_tests::SipMessage)> {
    use std::io::Read;
    let deadline = std::time::Instant::now() + TIMEOUT;
    listener
        .set_nonblocking(true)
        .map_err(|e| HarnessError::io("making the listener non-blocking", e))?;
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    return Err(HarnessError::Unexpected(
                        "no TCP connection from Switchboard".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(HarnessError::io("accepting", e)),
        }
    };
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(TIMEOUT)))
        .map_err(|e| HarnessError::io("configuring the connection", e))?;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                let message = sip_tests::SipMessage::parse(&bytes[..end + 4 + length])?;
                return Ok((stream, message));
            }
        }
        let n = stream
            .read(&mut buffer)
            .map_err(|e| HarnessError::io("reading the INVITE", e))?;
        if n == 0 {
            return Err(HarnessError::Unexpected("connection closed".into()));
        }
        bytes.extend_from_slice(&buffer[..n]);
    }
}

#[test]
fn a_gateway_over_tcp_is_reached_over_tcp() -> HarnessResult<()> {
    use std::io::Write;
    let (port_a, port_b) = (free_port()?, free_port()?);
    // The carrier listens on TCP only: a UDP INVITE would never reach it.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port_a))
        .map_err(|e| HarnessError::io("binding the carrier's TCP port", e))?;
    let mut config = config(port_a, port_b, false);
    config.extra_toml = config.extra_toml.replacen(
        &format!("gateway = \"127.0.0.1:{port_a}\"\n"),
        &format!("gateway = \"127.0.0.1:{port_a}\"\ngateway_transport = \"tcp\"\n"),
        1,
    );
    let switchboard = Switchboard::start(config)?;
    let peer = phone(&switchboard)?;
    let offer = pcmu_offer(free_port()?, false);
    let phone_thread = std::thread::spawn(move || {
        authenticated_invite(
            &peer,
            DIALLED,
            &ALICE,
            DigestAlgorithm::Md5,
            &offer,
            TIMEOUT,
        )
        .map(|(_, outcome)| outcome.err().map(|e| e.final_response.status()))
    });
    let (mut stream, invite) = accept_request(&listener)?;
    let text = invite.to_text();
    assert!(
        text.starts_with(&format!("INVITE sip:{SENT}@127.0.0.1:{port_a}")),
        "{text}"
    );
    let via = invite.header("Via").unwrap_or_default().to_owned();
    assert!(via.starts_with("SIP/2.0/TCP "), "{via}");
    // The carrier says busy, on the same connection: the phone hears it.
    let mut busy = String::from("SIP/2.0 486 Busy Here\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        busy.push_str(&format!(
            "{name}: {}\r\n",
            invite.header(name).unwrap_or_default()
        ));
    }
    busy.push_str(&format!(
        "To: {};tag=busy\r\nContent-Length: 0\r\n\r\n",
        invite.header("To").unwrap_or_default()
    ));
    stream
        .write_all(busy.as_bytes())
        .map_err(|e| HarnessError::io("answering 486", e))?;
    let status = phone_thread
        .join()
        .map_err(|_| HarnessError::Unexpected("the phone thread panicked".into()))??;
    assert_eq!(
        status,
        Some(Some(486)),
        "busy is final and reaches the phone"
    );
    drop(switchboard);
    Ok(())
}
