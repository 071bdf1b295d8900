//! Switchboard's own client certificate (`[sip] tls_client_cert` / `tls_client_key`) on the
//! TLS connections it opens, against `openssl s_server -Verify 1 -verify_return_error
//! -CAfile carrier-ca.pem` as a carrier that requires mutual TLS:
//!
//! - with a certificate from the carrier's CA configured, an agent's call out reaches the
//!   carrier (its INVITE arrives, and s_server reports our certificate);
//! - without one the handshake fails: no INVITE arrives, the failure is logged and counted,
//!   and the call fails at once (a transport error, not Timer B);
//! - a certificate the carrier does not trust is refused the same way; after the files are
//!   replaced by one it trusts and SIGHUP is sent, the next call out reaches it.

use std::time::Duration;

use sip_tests::digest::{self, Credentials, DigestAlgorithm};
use sip_tests::ports::free_port;
use sip_tests::rtp::pcmu_offer;
use sip_tests::tls::{OpensslServer, TestCa, TestCertificate};
use sip_tests::uac::{send_ack_for_failure, unique_token, RequestSpec};
use sip_tests::{
    AgentAccount, HarnessError, HarnessResult, Switchboard, SwitchboardConfig, TlsFiles, UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);
const ALICE: Credentials<'static> = Credentials {
    username: "1001",
    password: "secret1001",
};

struct Carrier {
    switchboard: Switchboard,
    server: OpensslServer,
    ca: TestCa,
    dir: tempfile::TempDir,
}

/// A carrier at an `openssl s_server` that requires a client certificate from its own CA
/// (`carrier-ca`), reached over TLS for route `+86`; Switchboard's client certificate is
/// `own` (none when `None`).
fn carrier(
    own: impl FnOnce(&std::path::Path, &TestCa) -> HarnessResult<Option<TlsFiles>>,
) -> HarnessResult<Carrier> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let listener = TestCertificate::generate(dir.path(), "listener")?;
    let ca = TestCa::generate(dir.path(), "carrier")?;
    let carrier_files = ca.server(&["carrier.example"], "carrier")?;
    let port = free_port()?;
    let server = OpensslServer::start_requiring_client_certificate(
        &dir.path().join("carrier.log"),
        port,
        &carrier_files,
        &ca.cert,
    )?;
    let mut sip_lines = vec![format!("tls_ca = {:?}", ca.cert.display().to_string())];
    if let Some(own) = own(dir.path(), &ca)? {
        sip_lines.push(format!(
            "tls_client_cert = {:?}",
            own.cert.display().to_string()
        ));
        sip_lines.push(format!(
            "tls_client_key = {:?}",
            own.key.display().to_string()
        ));
    }
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(listener.files.clone()),
        sip_lines,
        agents: vec![AgentAccount::new("1001", "Alice").with_outbound(&["+86*"])],
        extra_toml: format!(
            "[[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:{port}\"\ngateway_transport = \"tls\"\ngateway_tls_name = \"carrier.example\"\n\n\
             [[route]]\nprefix = \"+86\"\ntrunks = [\"carrier\"]\n\n"
        ),
        ..SwitchboardConfig::default()
    })?;
    Ok(Carrier {
        switchboard,
        server,
        ca,
        dir,
    })
}

/// Alice dials `+8613800138000` from a UDP phone and answers the 407; the test does not wait
/// for the final answer (the carrier never answers).
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

/// The next final response the phone gets (provisional ones skipped).
fn final_answer(phone: &UdpPeer) -> HarnessResult<sip_tests::SipMessage> {
    loop {
        let message = phone
            .recv(WAIT)?
            .ok_or_else(|| HarnessError::Unexpected("no final answer to the call out".into()))?;
        if message.status().is_some_and(|code| code >= 200) {
            return Ok(message);
        }
    }
}

fn tls_failures(switchboard: &Switchboard) -> HarnessResult<f64> {
    Ok(switchboard
        .api()
        .metrics()?
        .counter("switchboard_sip_tls_connect_failures_total", &[]))
}

#[test]
fn with_our_client_certificate_the_call_out_reaches_a_carrier_requiring_one() -> HarnessResult<()> {
    let setup = carrier(|_, ca| Ok(Some(ca.client("switchboard.example", "own")?)))?;
    setup
        .switchboard
        .wait_for_log("TLS client certificate loaded", WAIT)?;
    let _phone = dial_out(&setup.switchboard)?;
    setup
        .server
        .wait_for_text("INVITE sip:+8613800138000@", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", setup.switchboard.log())))?;
    let received = setup.server.log();
    assert!(
        received.contains("Client certificate") && received.contains("switchboard.example"),
        "s_server saw our certificate:\n{received}"
    );
    assert_eq!(tls_failures(&setup.switchboard)?, 0.0);
    Ok(())
}

#[test]
fn without_a_client_certificate_the_handshake_fails_and_is_counted() -> HarnessResult<()> {
    let setup = carrier(|_, _| Ok(None))?;
    let phone = dial_out(&setup.switchboard)?;
    // The only trunk cannot be reached: the call fails now, not after Timer B.
    let failure = final_answer(&phone)?;
    let log = setup.switchboard.log();
    assert!(
        failure.status().is_some_and(|code| code >= 400),
        "{}\n{log}",
        failure.to_text()
    );
    assert!(log.contains("outgoing TLS connection failed"), "{log}");
    assert!(
        log.contains("transaction ended by a transport error"),
        "{log}"
    );
    assert!(tls_failures(&setup.switchboard)? >= 1.0);
    assert!(
        !setup.server.log().contains("INVITE"),
        "{}",
        setup.server.log()
    );
    Ok(())
}

#[test]
fn a_replaced_client_certificate_is_presented_after_sighup() -> HarnessResult<()> {
    // First a certificate from a CA the carrier does not trust.
    let setup = carrier(|dir, _| {
        let stranger = TestCa::generate(dir, "stranger")?;
        Ok(Some(stranger.client("switchboard.example", "own")?))
    })?;
    let own = TlsFiles {
        cert: setup.dir.path().join("own-cert.pem"),
        key: setup.dir.path().join("own-key.pem"),
    };
    let _first = dial_out(&setup.switchboard)?;
    setup
        .switchboard
        .wait_for_log("outgoing TLS connection failed", WAIT)?;
    assert!(!setup.server.log().contains("INVITE"));

    // The renewal replaces the files with a certificate from the carrier's CA.
    let trusted = setup.ca.client("switchboard.example", "trusted")?;
    for (from, to) in [(&trusted.cert, &own.cert), (&trusted.key, &own.key)] {
        std::fs::copy(from, to)
            .map_err(|e| HarnessError::io("replacing the client certificate", e))?;
    }
    setup.switchboard.hangup()?;
    sip_tests::logged_process::wait_for_text(
        "switchboard",
        &setup.switchboard.dir().join("switchboard.log"),
        "TLS client certificate loaded",
        2,
        WAIT,
    )?;
    let _second = dial_out(&setup.switchboard)?;
    setup
        .server
        .wait_for_text("INVITE sip:+8613800138000@", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", setup.switchboard.log())))?;
    Ok(())
}
