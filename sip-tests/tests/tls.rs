//! SIP over TLS and HTTPS (issue 13, item 1 without SRTP), with independent TLS stacks:
//! `openssl s_client` (OpenSSL) sends OPTIONS over the TLS listener, baresip (libre, OpenSSL)
//! registers over TLS and answers a trunk call, curl fetches /healthz over HTTPS, and a
//! certificate renewed on disk is picked up on SIGHUP without dropping the open connection.

use std::process::Command;
use std::time::Duration;

use sip_tests::baresip::Baresip;
use sip_tests::tls::{OpensslClient, TestCertificate};
use sip_tests::{HarnessError, HarnessResult, Switchboard, SwitchboardConfig};

const WAIT: Duration = Duration::from_secs(60);

/// A Switchboard with a TLS listener presenting a fresh certificate made in `dir`.
fn start_with_tls(dir: &std::path::Path) -> HarnessResult<(Switchboard, TestCertificate)> {
    let certificate = TestCertificate::generate(dir, "server")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        sip_tls: Some(certificate.files.clone()),
        ..SwitchboardConfig::default()
    })?;
    Ok((switchboard, certificate))
}

fn tls_addr(switchboard: &Switchboard) -> HarnessResult<std::net::SocketAddr> {
    switchboard
        .tls_addr()
        .ok_or_else(|| HarnessError::Unexpected("no TLS listener".into()))
}

#[test]
fn openssl_s_client_gets_200_to_options_over_tls_and_the_fingerprint_is_logged() -> HarnessResult<()>
{
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let (switchboard, certificate) = start_with_tls(certs.path())?;
    switchboard.wait_for_log(&format!("sha256={}", certificate.fingerprint), WAIT)?;

    let mut client = OpensslClient::connect(
        &switchboard.dir().join("s_client.log"),
        tls_addr(&switchboard)?,
        &certificate.files.cert,
    )?;
    client.send_options("tls-options-1")?;
    client.wait_for_answer("tls-options-1", WAIT)?;
    let log = client.log();
    assert!(log.contains("SIP/2.0 200 OK"), "{log}");
    // The response went back over the same TLS connection, with our Via kept as TLS.
    assert!(
        log.contains("Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-tls-options-1"),
        "{log}"
    );
    Ok(())
}

#[test]
fn a_client_that_does_not_trust_the_certificate_gets_no_sip_service() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let (switchboard, _) = start_with_tls(certs.path())?;
    let stranger = TestCertificate::generate(certs.path(), "stranger")?;
    let mut client = OpensslClient::connect(
        &switchboard.dir().join("s_client.log"),
        tls_addr(&switchboard)?,
        &stranger.files.cert,
    )?;
    // The server presents a certificate the client's CA file does not hold: the client
    // refuses the handshake and exits before any SIP is exchanged.
    client.wait_exit(WAIT)?;
    let log = client.log();
    assert!(log.contains("verify error"), "{log}");
    assert!(!log.contains("SIP/2.0"), "{log}");
    Ok(())
}

#[test]
fn plain_sip_sent_to_the_tls_port_is_not_answered() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let (switchboard, _) = start_with_tls(certs.path())?;
    let mut stream = std::net::TcpStream::connect(tls_addr(&switchboard)?)
        .map_err(|e| HarnessError::io("connecting", e))?;
    stream
        .set_read_timeout(Some(WAIT))
        .map_err(|e| HarnessError::io("timeout", e))?;
    use std::io::{Read as _, Write as _};
    stream
        .write_all(b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-plain\r\nCall-ID: plain\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nContent-Length: 0\r\n\r\n")
        .map_err(|e| HarnessError::io("writing", e))?;
    // The handshake fails: the connection is closed (a TLS alert at most, never SIP).
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("SIP/2.0"),
        "{answer:?}"
    );
    switchboard.wait_for_log("TLS handshake failed", WAIT)?;
    Ok(())
}

#[test]
fn baresip_registers_over_tls_and_answers_a_trunk_call_placed_over_udp() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let (switchboard, certificate) = start_with_tls(certs.path())?;
    let baresip = Baresip::tls_agent(
        &switchboard.dir().join("baresip"),
        "1001",
        "secret1001",
        tls_addr(&switchboard)?,
        &certificate.files.cert,
    )?;
    baresip.wait_for_log("{0/TLS/v4} 200 OK", WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)
        .map_err(|e| HarnessError::Unexpected(format!("{e}\nbaresip:\n{}", baresip.log())))?;

    let trunk = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("1000")
        .run()?;
    trunk.ensure_success()?;
    baresip.wait_for_log("Call established", WAIT)?;
    // Switchboard offered the call over the phone's TLS connection.
    switchboard.wait_for_log(
        "offering call to agent call=1 agent=1001 attempt=1 peer=TLS:",
        WAIT,
    )?;
    Ok(())
}

#[test]
fn https_serves_healthz_with_the_configured_certificate() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let certificate = TestCertificate::generate(certs.path(), "api")?;
    let switchboard = Switchboard::start(SwitchboardConfig {
        http_tls: Some(certificate.files.clone()),
        ..SwitchboardConfig::default()
    })?;
    let url = format!("https://{}/healthz", switchboard.http_addr());
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(&certificate.files.cert)
        .arg(&url)
        .output()
        .map_err(|e| HarnessError::io("running curl", e))?;
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .arg(format!("http://{}/healthz", switchboard.http_addr()))
        .output()
        .map_err(|e| HarnessError::io("running curl", e))?;
    assert!(!plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("ok"));
    Ok(())
}

#[test]
fn sighup_reloads_the_certificate_and_the_open_connection_keeps_working() -> HarnessResult<()> {
    let certs = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let (switchboard, first) = start_with_tls(certs.path())?;
    let addr = tls_addr(&switchboard)?;
    let mut old =
        OpensslClient::connect(&switchboard.dir().join("old.log"), addr, &first.files.cert)?;
    old.send_options("before-reload")?;
    old.wait_for_answer("before-reload", WAIT)?;

    // The renewal overwrites the files; keep the first certificate to check it is gone.
    let first_copy = certs.path().join("first-copy.pem");
    std::fs::copy(&first.files.cert, &first_copy).map_err(|e| HarnessError::io("copy", e))?;
    let renewed = TestCertificate::generate(certs.path(), "renewed")?;
    renewed.install_over(&first.files)?;
    // An audited request first, so today's audit file exists to watch.
    switchboard
        .api()
        .get("/api/calls")?
        .expect_status(200, "listing calls")?;
    switchboard.hangup()?;
    switchboard.wait_for_log(&format!("sha256={}", renewed.fingerprint), WAIT)?;
    // The reload is audited as the node's own action.
    let audit_file = std::fs::read_dir(switchboard.cdr_dir())
        .map_err(|e| HarnessError::io("listing the CDR directory", e))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("audit-"))
        })
        .ok_or_else(|| HarnessError::Unexpected("no audit file".into()))?;
    sip_tests::logged_process::wait_for_text(
        "audit log",
        &audit_file,
        r#""who":{"token":null,"role":"system","agent":null},"from":null,"action":"certificates-reload","target":"SIP","result":"ok""#,
        1,
        WAIT,
    )?;

    // New handshakes present the renewed certificate: a client trusting only it connects …
    let mut new = OpensslClient::connect(
        &switchboard.dir().join("new.log"),
        addr,
        &renewed.files.cert,
    )?;
    new.send_options("after-reload")?;
    new.wait_for_answer("after-reload", WAIT)?;
    // … and one trusting only the first certificate is refused.
    let mut stale =
        OpensslClient::connect(&switchboard.dir().join("stale.log"), addr, &first_copy)?;
    stale.wait_exit(WAIT)?;
    assert!(stale.log().contains("verify error"), "{}", stale.log());
    // The connection opened before the reload still carries requests.
    old.send_options("old-connection-after-reload")?;
    old.wait_for_answer("old-connection-after-reload", WAIT)?;
    Ok(())
}

#[test]
fn check_config_and_run_refuse_a_missing_certificate_with_its_place() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let missing = dir.path().join("missing-cert.pem");
    let text = format!(
        "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        missing.display(),
        dir.path().join("key.pem").display()
    );
    let file = dir.path().join("bad-tls.toml");
    std::fs::write(&file, text).map_err(|e| HarnessError::io("write", e))?;
    let binary = sip_tests::paths::switchboard_binary()?;
    for args in [vec!["check-config"], vec!["run", "--config"]] {
        let output = Command::new(&binary)
            .args(&args)
            .arg(&file)
            .output()
            .map_err(|e| HarnessError::io("running switchboard", e))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let expected = format!(
            "{}:4:12: sip.tls_cert: cannot read certificate file {}",
            file.display(),
            missing.display()
        );
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
    }
    Ok(())
}

/// The demo (no configuration file) listens for TLS on its fixed port 127.0.0.1:5061 with a
/// certificate made at start: written for clients, its fingerprint logged, and served.
#[test]
fn the_demo_serves_tls_on_5061_with_a_generated_certificate() -> HarnessResult<()> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let mut command = Command::new(sip_tests::paths::switchboard_binary()?);
    // The demo writes ./switchboard-data: keep it in the temp dir.
    command.arg("run").current_dir(dir.path());
    let demo = sip_tests::logged_process::LoggedProcess::spawn(
        "switchboard demo",
        command,
        &dir.path().join("demo.log"),
        false,
    )?;
    demo.wait_for("switchboard ready", WAIT)
        .map_err(|_| demo.failure("the demo did not start (are 5060, 5061 and 8080 free?)"))?;
    let pem = dir.path().join("switchboard-data/tls/demo-cert.pem");
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&pem)
        .output()
        .map_err(|e| HarnessError::io("running openssl x509", e))?;
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(fingerprint.len(), 95, "openssl printed {fingerprint:?}");
    assert!(
        demo.log().contains(&format!(
            "listener=\"SIP\" certificate=./switchboard-data/tls/demo-cert.pem sha256={fingerprint}"
        )),
        "{}",
        demo.log()
    );
    let mut client = OpensslClient::connect(
        &dir.path().join("s_client.log"),
        "127.0.0.1:5061"
            .parse()
            .map_err(|_| HarnessError::Unexpected("addr".into()))?,
        &pem,
    )?;
    client.send_options("demo-tls")?;
    client.wait_for_answer("demo-tls", WAIT)?;
    assert!(client.log().contains("SIP/2.0 200 OK"), "{}", client.log());
    Ok(())
}
