//! Outgoing TLS connections (issue 13): Switchboard opens TLS itself, with `openssl s_server`
//! (OpenSSL) as the far end, which prints what it receives.
//!
//! - A carrier reachable only over TLS (`gateway_transport = "tls"`): an agent's call out
//!   reaches it over a new connection whose certificate (from a test CA given as
//!   `[sip] tls_ca`) names `gateway_tls_name`; with a name the certificate does not carry, no
//!   INVITE reaches it, the failure is logged and counted.
//! - A phone registered over TLS (`openssl s_client` typing the REGISTERs) whose connection
//!   then closed: the next trunk call reaches it over a new TLS connection to its Contact's
//!   port (its self-signed certificate is accepted, `tls_verify_phones` is off by default);
//!   with `tls_verify_phones = true` the same certificate is refused and nothing arrives.
//! - A TLS carrier whose certificate is refused fails like an unanswered one: the route's next
//!   trunk (UDP, SIPp) answers the call (T1 is shortened so the INVITE's timeout comes soon).
//! - RFC 5630: a `sips:` Request-URI over UDP gets 416 with the reason; a `sips:` call over TLS
//!   is not offered to an agent registered over UDP, and reaches the agent registered over TLS.
//! - SRTP in Switchboard's own offer: a trunk INVITE without SDP rings an agent with
//!   `srtp = "optional"` registered over TLS with Switchboard's RTP/SAVP offer and `a=crypto`.

use std::time::Duration;

use sip_tests::agent_phone::AgentPhone;
use sip_tests::digest::{self, Credentials, DigestAlgorithm};
use sip_tests::ports::free_port;
use sip_tests::rtp::pcmu_offer;
use sip_tests::tls::{OpensslClient, OpensslServer, TestCa, TestCertificate};
use sip_tests::uac::{authenticated_invite, send_ack_for_failure, unique_token, RequestSpec};
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Sipp, Switchboard, SwitchboardConfig, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);
const ALICE: Credentials<'static> = Credentials {
    username: "1001",
    password: "secret1001",
};

struct Carrier {
    switchboard: Switchboard,
    server: OpensslServer,
    _dir: tempfile::TempDir,
}

/// Switchboard with a TLS listener, the test CA as `tls_ca`, and one carrier at an
/// `openssl s_server` presenting a certificate for `carrier.example`, configured with
/// `gateway_tls_name = name`; route `+86` goes to it.
fn carrier(name: &str) -> HarnessResult<Carrier> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let listener = TestCertificate::generate(dir.path(), "listener")?;
    let ca = TestCa::generate(dir.path(), "lab")?;
    let carrier_files = ca.server(&["carrier.example"], "carrier")?;
    let port = free_port()?;
    let server = OpensslServer::start(&dir.path().join("carrier.log"), port, &carrier_files)?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(listener.files.clone()),
        sip_lines: vec![format!("tls_ca = {:?}", ca.cert.display().to_string())],
        agents: vec![AgentAccount::new("1001", "Alice").with_outbound(&["+86*"])],
        extra_toml: format!(
            "[[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:{port}\"\ngateway_transport = \"tls\"\ngateway_tls_name = \"{name}\"\n\n\
             [[route]]\nprefix = \"+86\"\ntrunks = [\"carrier\"]\nstrip = 3\nprepend = \"0086\"\n\n"
        ),
        ..SwitchboardConfig::default()
    })?;
    Ok(Carrier {
        switchboard,
        server,
        _dir: dir,
    })
}

/// Alice dials `+8613800138000` from a UDP phone: the 407 is answered, and the test does not
/// wait for the final answer (the carrier here never answers).
fn dial_out(switchboard: &Switchboard) -> HarnessResult<UdpPeer> {
    let peer = UdpPeer::bind(free_port()?, switchboard.sip_addr())?;
    let local = peer.local_addr()?;
    let uri = format!("sip:+8613800138000@{}", peer.remote());
    let mut invite = RequestSpec::new("INVITE", &uri, ALICE.username);
    invite.body = pcmu_offer(free_port()?, false);
    let challenge = peer.request(&invite.render(local), WAIT)?;
    if challenge.final_response.status() != Some(407) {
        return Err(HarnessError::Unexpected(format!(
            "INVITE without credentials got\n{}",
            challenge.final_response.to_text()
        )));
    }
    send_ack_for_failure(&peer, &invite, &challenge.final_response)?;
    let offered = challenge.final_response.headers_named("Proxy-Authenticate");
    let answer = digest::pick(&offered, DigestAlgorithm::Md5)?.answer(
        &ALICE,
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
    Ok(peer)
}

fn tls_failures(switchboard: &Switchboard) -> HarnessResult<f64> {
    Ok(switchboard
        .api()
        .metrics()?
        .counter("switchboard_sip_tls_connect_failures_total", &[]))
}

#[test]
fn a_call_out_reaches_a_tls_only_carrier_verified_by_its_name() -> HarnessResult<()> {
    let setup = carrier("carrier.example")?;
    let _phone = dial_out(&setup.switchboard)?;
    setup
        .server
        .wait_for_text("INVITE sip:008613800138000@127.0.0.1:", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", setup.switchboard.log())))?;
    setup.server.wait_for_text("Content-Length:", WAIT)?;
    let received = setup.server.log();
    let tls_port = setup
        .switchboard
        .tls_addr()
        .map(|a| a.port())
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    assert!(
        received.contains(&format!("Via: SIP/2.0/TLS 127.0.0.1:{tls_port};")),
        "{received}"
    );
    assert!(
        received.contains(&format!("127.0.0.1:{tls_port};transport=tls>")),
        "our Contact names the TLS listener: {received}"
    );
    setup
        .switchboard
        .wait_for_log("outgoing TLS connection open", WAIT)?;
    assert_eq!(tls_failures(&setup.switchboard)?, 0.0);
    Ok(())
}

#[test]
fn a_carrier_certificate_without_the_configured_name_gets_no_invite() -> HarnessResult<()> {
    let setup = carrier("other.example")?;
    let _phone = dial_out(&setup.switchboard)?;
    setup
        .switchboard
        .wait_for_log("outgoing TLS connection failed", WAIT)?;
    let log = setup.switchboard.log();
    assert!(
        log.contains("name=other.example") && log.contains("certificate not valid for name"),
        "the log line says which name and why: {log}"
    );
    assert!(tls_failures(&setup.switchboard)? >= 1.0);
    assert!(
        !setup.server.log().contains("INVITE"),
        "{}",
        setup.server.log()
    );
    Ok(())
}

/// The agent of `credentials` registers over TLS from `openssl s_client` with Contact
/// `sip:<agent>@127.0.0.1:<contact_port>;transport=tls`; the registration connection is
/// returned (dropping it kills the client and closes the connection).
fn register_over_tls(
    switchboard: &Switchboard,
    server_cert: &std::path::Path,
    contact_port: u16,
    credentials: &Credentials<'_>,
) -> HarnessResult<OpensslClient> {
    let agent = credentials.username;
    let tls = switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    let log = switchboard.dir().join(format!("register-{agent}.log"));
    let mut client = OpensslClient::connect(&log, tls, server_cert)?;
    let call_id = unique_token();
    let uri = format!("sip:{tls}");
    let register = |cseq: u32, authorization: Option<&str>| {
        let mut lines = vec![
            format!("REGISTER {uri} SIP/2.0"),
            format!(
                "Via: SIP/2.0/TLS 127.0.0.1:{contact_port};branch=z9hG4bK{}",
                unique_token()
            ),
            "Max-Forwards: 70".to_owned(),
            format!("From: <sip:{agent}@{tls}>;tag=reg"),
            format!("To: <sip:{agent}@{tls}>"),
            format!("Call-ID: {call_id}"),
            format!("CSeq: {cseq} REGISTER"),
            format!("Contact: <sip:{agent}@127.0.0.1:{contact_port};transport=tls>"),
            "Expires: 600".to_owned(),
        ];
        if let Some(authorization) = authorization {
            lines.push(format!("Authorization: {authorization}"));
        }
        lines.push("Content-Length: 0".to_owned());
        lines.push(String::new());
        lines.join("\r\n") + "\r\n"
    };
    client.send_message(&register(1, None))?;
    client.wait_for_text("WWW-Authenticate:", WAIT)?;
    let printed = client.log();
    let challenge = printed
        .lines()
        .find_map(|line| line.trim_end().strip_prefix("WWW-Authenticate: "))
        .ok_or_else(|| HarnessError::Unexpected(format!("no challenge in\n{printed}")))?;
    let answer = digest::Challenge::parse(challenge)?.answer(
        credentials,
        "REGISTER",
        &uri,
        &unique_token(),
        1,
    )?;
    client.send_message(&register(2, Some(&answer)))?;
    client
        .wait_for_text("SIP/2.0 200", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", client.log())))?;
    Ok(client)
}

struct Phone {
    switchboard: Switchboard,
    server: OpensslServer,
    _dir: tempfile::TempDir,
}

/// Agent 1001 registered over TLS whose connection closed; its Contact's port is an
/// `openssl s_server` with a self-signed certificate.
fn phone_behind_a_closed_connection(sip_lines: Vec<String>) -> HarnessResult<Phone> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let listener = TestCertificate::generate(dir.path(), "listener")?;
    let phone_cert = TestCertificate::generate(dir.path(), "phone")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(listener.files.clone()),
        sip_lines,
        ..SwitchboardConfig::default()
    })?;
    let contact_port = free_port()?;
    let server = OpensslServer::start(
        &dir.path().join("phone.log"),
        contact_port,
        &phone_cert.files,
    )?;
    let registration = register_over_tls(&switchboard, &listener.files.cert, contact_port, &ALICE)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    // Killing the client closes the registration connection.
    drop(registration);
    Ok(Phone {
        switchboard,
        server,
        _dir: dir,
    })
}

#[test]
fn a_trunk_call_reaches_a_tls_phone_over_a_new_connection_to_its_contact() -> HarnessResult<()> {
    let setup = phone_behind_a_closed_connection(Vec::new())?;
    let _trunk = setup
        .switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .spawn()?;
    setup
        .server
        .wait_for_text("INVITE sip:1001@127.0.0.1:", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", setup.switchboard.log())))?;
    setup.server.wait_for_text("Content-Length:", WAIT)?;
    let received = setup.server.log();
    assert!(received.contains("Via: SIP/2.0/TLS "), "{received}");
    assert!(received.contains(";transport=tls>"), "{received}");
    let log = setup.switchboard.log();
    assert!(
        log.contains("outgoing TLS connection open") && log.contains("verify=false"),
        "{log}"
    );
    Ok(())
}

#[test]
fn with_tls_verify_phones_a_self_signed_phone_is_not_connected_to() -> HarnessResult<()> {
    let setup = phone_behind_a_closed_connection(vec!["tls_verify_phones = true".into()])?;
    let _trunk = setup
        .switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .timeout(WAIT)
        .spawn()?;
    setup
        .switchboard
        .wait_for_log("outgoing TLS connection failed", WAIT)?;
    let log = setup.switchboard.log();
    assert!(
        log.contains("verify=true reason=\"invalid peer certificate"),
        "refused for its certificate: {log}"
    );
    assert!(tls_failures(&setup.switchboard)? >= 1.0);
    // The offer failed as unreachable because of the failed connection (503), not by Timer B.
    setup.switchboard.wait_for_log(
        "agent INVITE failed: the phone could not be connected to",
        WAIT,
    )?;
    let log = setup.switchboard.log();
    assert!(
        log.contains("transaction ended by a transport error"),
        "{log}"
    );
    assert!(
        !setup.server.log().contains("INVITE"),
        "{}",
        setup.server.log()
    );
    // The ACD goes on with the call: the next agent to become ready is offered it.
    let bob = AgentPhone::register(&setup.switchboard, "1002")?;
    let offered = bob.next_request("INVITE", WAIT)?;
    assert!(
        offered.to_text().starts_with("INVITE sip:1002@"),
        "{}",
        offered.to_text()
    );
    Ok(())
}

#[test]
fn a_sips_uri_over_udp_is_refused_with_416() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let trunk = UdpPeer::bind(free_port()?, switchboard.sip_addr())?;
    let invite = RequestSpec::new(
        "INVITE",
        &format!("sips:100@{}", switchboard.sip_addr()),
        "2000",
    );
    let answered = trunk.request(&invite.render(trunk.local_addr()?), WAIT)?;
    assert_eq!(answered.final_response.status(), Some(416));
    let warning = answered
        .final_response
        .header("Warning")
        .unwrap_or_default();
    assert!(
        warning.contains("a sips: Request-URI must arrive over TLS (RFC 5630), not UDP"),
        "{warning}"
    );
    send_ack_for_failure(&trunk, &invite, &answered.final_response)?;
    Ok(())
}

#[test]
fn a_sips_call_skips_the_agent_on_udp_and_reaches_the_agent_on_tls() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let listener = TestCertificate::generate(dir.path(), "listener")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(listener.files.clone()),
        ..SwitchboardConfig::default()
    })?;
    let _alice = AgentPhone::register(&switchboard, "1001")?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let tls = switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    let mut trunk =
        OpensslClient::connect(&dir.path().join("trunk.log"), tls, &listener.files.cert)?;
    let call_id = unique_token();
    let invite = [
        "INVITE sips:100@127.0.0.1 SIP/2.0".to_owned(),
        format!("Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id}"),
        "Max-Forwards: 70".to_owned(),
        format!("From: <sip:2000@127.0.0.1>;tag={call_id}"),
        "To: <sips:100@127.0.0.1>".to_owned(),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 INVITE".to_owned(),
        "Contact: <sips:2000@127.0.0.1:5999>".to_owned(),
        "Content-Length: 0".to_owned(),
        String::new(),
    ]
    .join("\r\n")
        + "\r\n";
    trunk.send_message(&invite)?;
    switchboard.wait_for_log(
        "sips: call not offered to a phone registered without TLS call=1 agent=1001",
        WAIT,
    )?;

    // Bob registers over TLS: the waiting call is offered to him over that connection.
    let bob = register_over_tls(
        &switchboard,
        &listener.files.cert,
        free_port()?,
        &Credentials {
            username: "1002",
            password: "secret1002",
        },
    )?;
    bob.wait_for_text("INVITE sip:1002@127.0.0.1:", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", switchboard.log())))?;
    assert!(
        !switchboard
            .log()
            .contains("offering call to agent call=1 agent=1001"),
        "{}",
        switchboard.log()
    );
    Ok(())
}

#[test]
fn an_srtp_agent_on_tls_gets_our_own_srtp_offer_for_a_trunk_invite_without_sdp() -> HarnessResult<()>
{
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let listener = TestCertificate::generate(dir.path(), "listener")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(listener.files.clone()),
        agents: vec![AgentAccount::new("1001", "Alice").with_line("srtp = \"optional\"")],
        ..SwitchboardConfig::default()
    })?;
    let alice = register_over_tls(&switchboard, &listener.files.cert, free_port()?, &ALICE)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let trunk = UdpPeer::bind(free_port()?, switchboard.sip_addr())?;
    let invite = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        "2000",
    );
    assert!(invite.body.is_empty(), "a delayed offer");
    trunk.send(&invite.render(trunk.local_addr()?))?;
    alice
        .wait_for_text("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", switchboard.log())))?;
    let received = alice.log();
    assert!(
        received.contains("INVITE sip:1001@127.0.0.1:"),
        "{received}"
    );
    assert!(received.contains(" RTP/SAVP 0 8 101"), "{received}");
    Ok(())
}

#[test]
fn a_refused_tls_carrier_fails_over_to_the_routes_next_trunk() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let listener = TestCertificate::generate(dir.path(), "listener")?;
    let ca = TestCa::generate(dir.path(), "lab")?;
    let carrier_files = ca.server(&["carrier.example"], "carrier")?;
    let (tls_port, udp_port) = (free_port()?, free_port()?);
    let refused = OpensslServer::start(&dir.path().join("tls.log"), tls_port, &carrier_files)?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(listener.files.clone()),
        // Default T1: Timer B would end the first attempt only after 32 s; the failed
        // handshake ends it at once.
        sip_lines: vec![format!("tls_ca = {:?}", ca.cert.display().to_string())],
        agents: vec![AgentAccount::new("1001", "Alice").with_outbound(&["+86*"])],
        extra_toml: format!(
            "[[trunk]]\nname = \"tls-carrier\"\ngateway = \"127.0.0.1:{tls_port}\"\ngateway_transport = \"tls\"\ngateway_tls_name = \"other.example\"\n\n\
             [[trunk]]\nname = \"udp-carrier\"\ngateway = \"127.0.0.1:{udp_port}\"\n\n\
             [[route]]\nprefix = \"+86\"\ntrunks = [\"tls-carrier\", \"udp-carrier\"]\n\n"
        ),
        ..SwitchboardConfig::default()
    })?;
    let _backup = Sipp::server("agent_answer.xml", udp_port, switchboard.dir())?
        .service("carrier")
        .timeout(WAIT)
        .spawn()?;
    let phone = UdpPeer::bind(free_port()?, switchboard.sip_addr())?;
    let (_, answered) = authenticated_invite(
        &phone,
        "+8613800138000",
        &ALICE,
        DigestAlgorithm::Md5,
        &pcmu_offer(free_port()?, false),
        WAIT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "the backup trunk did not answer:\n{}\n{}",
            failed.final_response.to_text(),
            switchboard.log()
        ))
    })?;
    assert_eq!(call.answer.final_response.status(), Some(200));
    let log = switchboard.log();
    assert!(
        log.contains("outgoing TLS connection failed") && log.contains("name=other.example"),
        "{log}"
    );
    assert_first_attempt_ended_by_the_transport(&log);
    assert!(!refused.log().contains("INVITE"), "{}", refused.log());
    Ok(())
}

/// The first trunk's attempt was ended by the failed connection (a 503, RFC 3261 §17.1.4),
/// not by Timer B (which would say "did not answer" with status 408).
fn assert_first_attempt_ended_by_the_transport(log: &str) {
    assert!(
        log.contains("transaction ended by a transport error"),
        "the transport error ended the INVITE's transaction:\n{log}"
    );
    assert!(
        log.contains("carrier could not be connected to for the call out")
            && log.contains("status=503"),
        "the first trunk failed with 503:\n{log}"
    );
    assert!(
        !log.contains("carrier did not answer for the call out"),
        "no attempt timed out:\n{log}"
    );
}

#[test]
fn a_refused_tcp_carrier_fails_over_to_the_routes_next_trunk() -> HarnessResult<()> {
    // Nobody listens on the TCP carrier's port: the connection is refused.
    let (tcp_port, udp_port) = (free_port()?, free_port()?);
    let switchboard = Switchboard::start(SwitchboardConfig {
        agents: vec![AgentAccount::new("1001", "Alice").with_outbound(&["+86*"])],
        extra_toml: format!(
            "[[trunk]]\nname = \"tcp-carrier\"\ngateway = \"127.0.0.1:{tcp_port}\"\ngateway_transport = \"tcp\"\n\n\
             [[trunk]]\nname = \"udp-carrier\"\ngateway = \"127.0.0.1:{udp_port}\"\n\n\
             [[route]]\nprefix = \"+86\"\ntrunks = [\"tcp-carrier\", \"udp-carrier\"]\n\n"
        ),
        ..SwitchboardConfig::default()
    })?;
    let _backup = Sipp::server("agent_answer.xml", udp_port, switchboard.dir())?
        .service("carrier")
        .timeout(WAIT)
        .spawn()?;
    let phone = UdpPeer::bind(free_port()?, switchboard.sip_addr())?;
    let (_, answered) = authenticated_invite(
        &phone,
        "+8613800138000",
        &ALICE,
        DigestAlgorithm::Md5,
        &pcmu_offer(free_port()?, false),
        WAIT,
    )?;
    let call = answered.map_err(|failed| {
        HarnessError::Unexpected(format!(
            "the backup trunk did not answer:\n{}\n{}",
            failed.final_response.to_text(),
            switchboard.log()
        ))
    })?;
    assert_eq!(call.answer.final_response.status(), Some(200));
    let log = switchboard.log();
    assert!(log.contains("outgoing TCP connection failed"), "{log}");
    assert_first_attempt_ended_by_the_transport(&log);
    Ok(())
}
