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
use sip_tests::digest::{Credentials, DigestAlgorithm};
use sip_tests::ports::free_port;
use sip_tests::rtp::{pcmu_offer, sdp_audio_address, RtpPeer};
use sip_tests::uac::{authenticated_invite, RequestSpec};
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
/// A mobile number in China, as an agent dials it; route `+86` sends it as `0086…`.
const DIALLED: &str = "+8613800138000";
const SENT: &str = "008613800138000";

/// Two carriers (`carrier-a` then `carrier-b`) on the given ports, the route for `+86`, and
/// agent 1001 allowed `+86*` and `4000*` (1002 may not dial out).
fn config(port_a: u16, port_b: u16, credentials: bool) -> SwitchboardConfig {
    let credentials = if credentials {
        "outbound_username = \"acct-77\"\noutbound_password = \"carrier-secret\"\n"
    } else {
        ""
    };
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice").with_outbound(&["+86*", "4000*"]),
            AgentAccount::new("1002", "Bob"),
        ],
        extra_toml: format!(
            "[[trunk]]\nname = \"carrier-a\"\ngateway = \"127.0.0.1:{port_a}\"\n{credentials}\n\
             [[trunk]]\nname = \"carrier-b\"\ngateway = \"127.0.0.1:{port_b}\"\n\n\
             [[route]]\nprefix = \"+86\"\ntrunks = [\"carrier-a\", \"carrier-b\"]\nstrip = 3\nprepend = \"0086\"\ncaller_id = \"+8610555000\"\n\n\
             [outbound]\nmax_per_agent = 1\n"
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
