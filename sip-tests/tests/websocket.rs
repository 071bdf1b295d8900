//! SIP over WebSocket (RFC 7118, issue 14 item 1) with JsSIP, the SIP library WebRTC browser
//! phones use, running in Node: it registers as an agent over `ws` and over `wss` (a test
//! certificate that Node is told to trust for this connection only), receives the offered trunk
//! call over the WebSocket and declines it (486: answering needs WebRTC media, which Node has
//! not), after which the ACD offers the call to the next agent. A handshake without the `sip`
//! subprotocol is refused, and a phone whose connection dies is no longer offered calls.

use std::io::{Read, Write};
use std::time::Duration;

use sip_tests::api::{agent_reason, agent_state};
use sip_tests::jssip::{JsSipAccount, JsSipAgent};
use sip_tests::tls::TestCertificate;
use sip_tests::uac::RequestSpec;
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const WAIT: Duration = Duration::from_secs(60);

fn start(sip_tls: Option<&TestCertificate>) -> HarnessResult<Switchboard> {
    Switchboard::start(SwitchboardConfig {
        websocket: true,
        sip_tls: sip_tls.map(|c| c.files.clone()),
        ..SwitchboardConfig::default()
    })
}

/// With a ring timeout longer than any wait in these tests, an offer can only move on because
/// the phone answered or its connection closed.
fn start_with_long_ring() -> HarnessResult<Switchboard> {
    Switchboard::start(SwitchboardConfig {
        websocket: true,
        ring_timeout_s: 3600,
        ..SwitchboardConfig::default()
    })
}

fn agent(
    switchboard: &Switchboard,
    id: &str,
    url: String,
    ca: Option<&std::path::Path>,
) -> HarnessResult<JsSipAgent> {
    agent_with(switchboard, id, url, ca, false)
}

fn agent_with(
    switchboard: &Switchboard,
    id: &str,
    url: String,
    ca: Option<&std::path::Path>,
    ring_only: bool,
) -> HarnessResult<JsSipAgent> {
    let password = format!("secret{id}");
    JsSipAgent::start(
        &JsSipAccount {
            url,
            user: id,
            password: &password,
            domain: "127.0.0.1",
            ca_file: ca,
            ring_only,
        },
        &switchboard.dir().join(format!("jssip-{id}.log")),
    )
}

fn ws_url(switchboard: &Switchboard) -> HarnessResult<String> {
    let addr = switchboard
        .ws_addr()
        .ok_or_else(|| HarnessError::Unexpected("no ws listener".into()))?;
    Ok(format!("ws://{addr}"))
}

/// Sends a trunk INVITE to DID 100 without waiting for its answer (the call is queued).
fn trunk_invite(switchboard: &Switchboard) -> HarnessResult<UdpPeer> {
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let local = trunk.local_addr()?;
    let mut invite = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        "3000",
    );
    invite.body = sip_tests::uac::sdp_offer(local, 40_000);
    trunk.send(&invite.render(local))?;
    Ok(trunk)
}

#[test]
fn jssip_registers_over_ws_and_wss_gets_the_call_over_the_websocket_and_the_acd_moves_on(
) -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let certificate = TestCertificate::generate(certs.path(), "server")?;
    let switchboard = start(Some(&certificate))?;
    let api = switchboard.api();
    let wss = switchboard
        .wss_addr()
        .ok_or_else(|| HarnessError::Unexpected("no wss listener".into()))?;

    let mut alice = agent(&switchboard, "1001", ws_url(&switchboard)?, None)?;
    let mut bob = agent(
        &switchboard,
        "1002",
        format!("wss://localhost:{}", wss.port()),
        Some(&certificate.files.cert),
    )?;
    let registered = alice.wait_for("registered", WAIT)?;
    let contact = registered["contact"].as_str().unwrap_or_default();
    assert!(
        contact.contains(".invalid") && contact.contains("transport=ws"),
        "JsSIP registers a .invalid WebSocket contact: {contact}"
    );
    bob.wait_for("registered", WAIT)?;
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    api.wait_for_agent_state("1002", "ready", WAIT)?;
    let metrics = api.metrics()?;
    assert_eq!(
        metrics.get("switchboard_sip_websocket_connections", &[]),
        Some(2.0),
        "one ws and one wss connection are open"
    );

    let _trunk = trunk_invite(&switchboard)?;
    // Both phones are offered the call in turn, each over its own WebSocket, and each declines.
    let first = alice.wait_for("invite", WAIT);
    let second = bob.wait_for("invite", WAIT);
    let (first, second) = (first?, second?);
    for (invite, token) in [(&first, "SIP/2.0/WS "), (&second, "SIP/2.0/WSS ")] {
        let via = invite["via"].as_str().unwrap_or_default();
        assert!(
            via.starts_with(token),
            "Via names the leg's transport: {via}"
        );
        assert_eq!(invite["queue"].as_str(), Some("support"));
        assert!(
            invite["ruri"]
                .as_str()
                .unwrap_or_default()
                .contains(".invalid"),
            "the INVITE goes to the registered .invalid contact, over the connection: {invite}"
        );
    }
    // A decline is a missed call: each agent goes not-ready, and the caller waits on.
    for id in ["1001", "1002"] {
        let agent = api.wait_for_agent_state(id, "not-ready", WAIT)?;
        assert_eq!(agent_reason(&agent), Some("missed"), "{agent}");
    }
    api.wait_for_waiting("support", 1, WAIT)?;
    Ok(())
}

#[test]
fn a_handshake_without_the_sip_subprotocol_is_refused_with_400() -> HarnessResult<()> {
    let switchboard = start(None)?;
    let addr = switchboard
        .ws_addr()
        .ok_or_else(|| HarnessError::Unexpected("no ws listener".into()))?;
    let mut stream =
        std::net::TcpStream::connect(addr).map_err(|e| HarnessError::io("connecting", e))?;
    stream
        .set_read_timeout(Some(WAIT))
        .map_err(|e| HarnessError::io("read timeout", e))?;
    let upgrade = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    stream
        .write_all(upgrade.as_bytes())
        .map_err(|e| HarnessError::io("sending the upgrade", e))?;
    let mut answer = String::new();
    // The server closes after its refusal, so reading to the end ends on that event.
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Protocol: sip"), "{answer}");
    let api = switchboard.api();
    let metrics = api.metrics()?;
    assert_eq!(
        metrics.get("switchboard_sip_websocket_handshake_failures_total", &[]),
        Some(1.0)
    );
    Ok(())
}

#[test]
fn a_phone_whose_websocket_closed_is_not_offered_calls() -> HarnessResult<()> {
    let switchboard = start(None)?;
    let api = switchboard.api();
    let mut alice = agent(&switchboard, "1001", ws_url(&switchboard)?, None)?;
    let mut bob = agent(&switchboard, "1002", ws_url(&switchboard)?, None)?;
    alice.wait_for("registered", WAIT)?;
    bob.wait_for("registered", WAIT)?;
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    api.wait_for_agent_state("1002", "ready", WAIT)?;

    // Alice's browser tab dies: no unREGISTER, no close handshake, only the TCP connection ends.
    alice.kill()?;
    let gone = api.wait_for_agent_state("1001", "logged-out", WAIT)?;
    assert_eq!(agent_state(&gone), Some("logged-out"));
    switchboard.wait_for_log("registration's connection closed", WAIT)?;

    // The call goes to Bob, whose connection lives; Alice's dead binding is never tried.
    let _trunk = trunk_invite(&switchboard)?;
    bob.wait_for("invite", WAIT)?;
    api.wait_for_agent_state("1002", "not-ready", WAIT)?;
    let log = switchboard.log();
    assert!(
        !log.contains("agent=1001 attempt"),
        "the dead phone was offered the call:\n{log}"
    );
    Ok(())
}

#[test]
fn a_ringing_phone_whose_websocket_closes_passes_the_call_on_at_once() -> HarnessResult<()> {
    let switchboard = start_with_long_ring()?;
    let api = switchboard.api();
    let mut alice = agent_with(&switchboard, "1001", ws_url(&switchboard)?, None, true)?;
    alice.wait_for("registered", WAIT)?;
    api.wait_for_agent_state("1001", "ready", WAIT)?;

    let _trunk = trunk_invite(&switchboard)?;
    let invite = alice.wait_for("invite", WAIT)?;
    let log = switchboard.log();
    assert!(
        log.contains("offering call to agent call=1 agent=1001"),
        "{invite}"
    );
    // Bob logs in only now, so the call can only reach him after Alice's offer ends.
    let mut bob = agent(&switchboard, "1002", ws_url(&switchboard)?, None)?;
    bob.wait_for("registered", WAIT)?;
    // Alice's tab dies while her phone rings: the offer fails now, not at the ring timeout.
    alice.kill()?;
    bob.wait_for("invite", WAIT)?;
    switchboard.wait_for_log("ringing phone's connection closed", WAIT)?;
    let gone = api.wait_for_agent_state("1001", "logged-out", WAIT)?;
    assert_eq!(agent_state(&gone), Some("logged-out"));
    Ok(())
}
