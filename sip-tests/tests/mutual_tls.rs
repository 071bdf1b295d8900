//! Mutual TLS for trunks (issue 13): `[sip] tls_client_ca` and `[[trunk]] tls_client_name`.
//! `openssl s_client` plays the carrier with certificates made in the test by a test CA:
//! the certificate naming the trunk is admitted (its INVITE reaches routing: 404 for an
//! unknown number); another name from the same CA, no certificate, or plain UDP from the
//! trunk's address get 403 with the reason and a `certificate-refused` security line; a
//! certificate from another CA, or an expired one from the right CA, does not even complete
//! the handshake.

use std::time::Duration;

use sip_tests::tls::{OpensslClient, TestCa, TestCertificate};
use sip_tests::uac::{send_ack_for_failure, RequestSpec};
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig, TlsFiles, UdpPeer};

const WAIT: Duration = Duration::from_secs(60);

struct Setup {
    switchboard: Switchboard,
    server: TestCertificate,
    ca: TestCa,
    _dir: tempfile::TempDir,
}

/// Switchboard over TLS whose only trunk, "carrier", must present `carrier.example`.
fn start() -> HarnessResult<Setup> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let server = TestCertificate::generate(dir.path(), "server")?;
    let ca = TestCa::generate(dir.path(), "trunks")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(server.files.clone()),
        sip_lines: vec![format!("tls_client_ca = {:?}", ca.cert.display().to_string())],
        trunks: Vec::new(),
        extra_toml: "[[trunk]]\nname = \"carrier\"\nallow = [\"127.0.0.0/8\"]\ntls_client_name = \"carrier.example\"\n\n".into(),
        ..SwitchboardConfig::default()
    })?;
    Ok(Setup {
        switchboard,
        server,
        ca,
        _dir: dir,
    })
}

/// Sends an INVITE for number 999 (configured nowhere) over TLS with `client` and waits for
/// `status` (e.g. `SIP/2.0 404`) in the answer.
fn invite_over_tls(
    setup: &Setup,
    client: Option<&TlsFiles>,
    name: &str,
    status: &str,
) -> HarnessResult<String> {
    let tls = setup
        .switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    let log = setup.switchboard.dir().join(format!("openssl-{name}.log"));
    let mut openssl = OpensslClient::connect_as(&log, tls, &setup.server.files.cert, client)?;
    openssl.send_request("INVITE", "999", name)?;
    openssl
        .wait_for_text(status, WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\n{}", setup.switchboard.log())))?;
    Ok(openssl.log())
}

#[test]
fn the_trunks_own_certificate_is_admitted() -> HarnessResult<()> {
    let setup = start()?;
    let right = setup.ca.client("carrier.example", "carrier")?;
    let answer = invite_over_tls(&setup, Some(&right), "right-cert", "SIP/2.0 404")?;
    assert!(answer.contains("unknown number 999"), "{answer}");
    assert!(!setup
        .switchboard
        .log()
        .contains("event=certificate-refused"));
    Ok(())
}

#[test]
fn another_name_or_no_certificate_gets_403_and_a_security_line() -> HarnessResult<()> {
    let setup = start()?;
    let other = setup.ca.client("other.example", "other")?;
    let answer = invite_over_tls(&setup, Some(&other), "wrong-name", "SIP/2.0 403")?;
    assert!(
        answer.contains("the client certificate does not name this trunk"),
        "{answer}"
    );
    let answer = invite_over_tls(&setup, None, "no-cert", "SIP/2.0 403")?;
    assert!(
        answer.contains("no client certificate on the TLS connection"),
        "{answer}"
    );
    setup
        .switchboard
        .wait_for_log("security event=certificate-refused src=127.0.0.1", WAIT)?;
    // The address alone (the trunk's allow list) is not enough: plain UDP is refused too.
    let sip = UdpPeer::bind(0, setup.switchboard.sip_addr())?;
    let invite = RequestSpec::new("INVITE", &format!("sip:999@{}", sip.remote()), "2000");
    let answered = sip.request(&invite.render(sip.local_addr()?), WAIT)?;
    send_ack_for_failure(&sip, &invite, &answered.final_response)?;
    assert_eq!(answered.final_response.status(), Some(403));
    let warning = answered
        .final_response
        .header("Warning")
        .unwrap_or_default();
    assert!(warning.contains("must call over TLS"), "{warning}");
    Ok(())
}

/// Connects with `client` and requires the handshake to fail: nothing SIP comes back and
/// Switchboard logs the failure.
fn handshake_is_refused(setup: &Setup, client: &TlsFiles, name: &str) -> HarnessResult<()> {
    let tls = setup
        .switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))?;
    let log = setup.switchboard.dir().join(format!("openssl-{name}.log"));
    let mut openssl = OpensslClient::connect_as(&log, tls, &setup.server.files.cert, Some(client))?;
    // TLS 1.3 sends the client certificate after the client considers the handshake done:
    // the refusal shows as the connection closing, and nothing SIP ever comes back.
    let _ = openssl.send_request("INVITE", "999", name);
    openssl.wait_exit(WAIT)?;
    setup
        .switchboard
        .wait_for_log("TLS handshake failed", WAIT)?;
    assert!(!openssl.log().contains("SIP/2.0"), "{}", openssl.log());
    Ok(())
}

#[test]
fn a_certificate_from_another_ca_fails_the_handshake() -> HarnessResult<()> {
    let setup = start()?;
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let stranger = TestCa::generate(dir.path(), "stranger")?.client("carrier.example", "fake")?;
    handshake_is_refused(&setup, &stranger, "stranger")
}

#[test]
fn an_expired_certificate_from_the_right_ca_fails_the_handshake() -> HarnessResult<()> {
    let setup = start()?;
    let expired = setup.ca.expired_client("carrier.example", "expired")?;
    handshake_is_refused(&setup, &expired, "expired")
}

/// `[sip] tls_client_ca` is re-read on SIGHUP like the certificate: after the file is
/// replaced by another CA, that CA's carrier certificate is admitted and the old CA's is
/// refused at the handshake; a file that does not load afterwards is logged and the CA in use
/// stays.
#[test]
fn sighup_rereads_the_client_ca_and_a_bad_file_keeps_the_previous_one() -> HarnessResult<()> {
    let setup = start()?;
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let next = TestCa::generate(dir.path(), "next")?;
    let next_client = next.client("carrier.example", "next-carrier")?;
    let old_client = setup.ca.client("carrier.example", "old-carrier")?;
    handshake_is_refused(&setup, &next_client, "before-reload")?;

    std::fs::copy(&next.cert, &setup.ca.cert)
        .map_err(|e| HarnessError::io("replacing the CA file", e))?;
    setup.switchboard.hangup()?;
    setup
        .switchboard
        .wait_for_log("TLS CA files reloaded", WAIT)?;
    let answer = invite_over_tls(&setup, Some(&next_client), "after-reload", "SIP/2.0 404")?;
    assert!(answer.contains("unknown number 999"), "{answer}");
    handshake_is_refused(&setup, &old_client, "old-ca-after-reload")?;

    std::fs::write(&setup.ca.cert, "not a certificate\n")
        .map_err(|e| HarnessError::io("breaking the CA file", e))?;
    setup.switchboard.hangup()?;
    setup
        .switchboard
        .wait_for_log("TLS CA reload failed; the previous CAs stay in use", WAIT)?;
    let answer = invite_over_tls(&setup, Some(&next_client), "after-bad-file", "SIP/2.0 404")?;
    assert!(answer.contains("unknown number 999"), "{answer}");
    Ok(())
}
