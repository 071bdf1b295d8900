//! Stream connections cannot exhaust Switchboard's file descriptors: past the per-source cap a
//! new connection is closed at once while the trunk's calls go on, and a slowloris sender is
//! cut off when its message's header does not arrive in time.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use sip_tests::tcp_peer::TcpPeer;
use sip_tests::uac::RequestSpec;
use sip_tests::{
    start_agent, HarnessError, HarnessResult, Switchboard, SwitchboardConfig, TrunkConfig,
};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const WAIT: Duration = Duration::from_secs(60);

fn limited(security: &str) -> SwitchboardConfig {
    SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "carrier".into(),
            allow: vec!["127.0.0.1/32".into()],
            credentials: None,
        }],
        extra_toml: format!("\n[security]\n{security}\n"),
        ..SwitchboardConfig::default()
    }
}

/// Polls the log until a line contains every one of `parts` (the log is written just after
/// the connection is closed).
fn wait_for_log_line(switchboard: &Switchboard, parts: &[&str]) -> HarnessResult<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = switchboard.log();
        if log
            .lines()
            .any(|line| parts.iter().all(|p| line.contains(p)))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Unexpected(format!(
                "no log line with {parts:?}:\n{log}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn options_over(peer: &mut TcpPeer, switchboard: &Switchboard) -> HarnessResult<Option<u16>> {
    let mut spec = RequestSpec::new(
        "OPTIONS",
        &format!("sip:{}", switchboard.sip_addr()),
        "probe",
    );
    spec.transport = "TCP";
    peer.send(&spec.render(peer.local_addr()?))?;
    Ok(peer.recv(WAIT)?.status())
}

#[test]
fn connections_past_the_per_source_cap_are_closed_while_the_trunk_calls() -> HarnessResult<()> {
    let switchboard = Switchboard::start(limited("max_connections_per_source = 5"))?;
    // The attacker's five connections are served.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut peer = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
        assert_eq!(options_over(&mut peer, &switchboard)?, Some(200));
        held.push(peer);
    }
    // The sixth is accepted by the kernel and closed by Switchboard at once.
    let mut extra = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
    assert!(
        extra.closed_within(WAIT)?,
        "the sixth connection stayed open"
    );
    wait_for_log_line(
        &switchboard,
        &[
            "security event=connection-refused src=127.0.0.2 ",
            "transport=TCP reason=\"per-source-cap\"",
        ],
    )?;
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.get("switchboard_sip_connections_refused_total", &[]),
        Some(1.0),
        "refusals are counted"
    );
    // The trunk (another address) still connects and its call goes through over TCP.
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-t")
        .arg("t1")
        .run()?
        .ensure_success()?;
    agent.wait()?.ensure_success()?;
    // The attacker's existing connections were never touched.
    for peer in &mut held {
        assert_eq!(options_over(peer, &switchboard)?, Some(200));
    }
    Ok(())
}

#[test]
fn a_slowloris_sender_is_cut_off_after_the_header_timeout() -> HarnessResult<()> {
    let switchboard = Switchboard::start(limited("header_timeout_s = 2\nidle_timeout_s = 3600"))?;
    let mut slow = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
    let request = "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:9;branch=z9hG4bKslow\r\n";
    let started = Instant::now();
    let mut cut_off = false;
    // One byte every 200 ms: always active, so only a per-message deadline can end it.
    for byte in request.bytes().cycle() {
        if slow.send_bytes(&[byte]).is_err() || slow.closed_within(Duration::from_millis(200))? {
            cut_off = true;
            break;
        }
        if started.elapsed() > WAIT {
            break;
        }
    }
    if !cut_off {
        return Err(HarnessError::Unexpected(format!(
            "a slowloris connection stayed open for {} s",
            started.elapsed().as_secs()
        )));
    }
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.get("switchboard_sip_read_timeouts_total", &[]),
        Some(1.0),
        "the cut-off is counted"
    );
    // A well-behaved connection opened afterwards is served.
    let mut peer = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
    assert_eq!(options_over(&mut peer, &switchboard)?, Some(200));
    Ok(())
}

#[test]
fn the_http_listener_has_the_same_caps_and_deadlines() -> HarnessResult<()> {
    let switchboard = Switchboard::start(limited(
        "max_connections_per_source = 3\nheader_timeout_s = 2\nidle_timeout_s = 3600",
    ))?;
    let http = switchboard.http_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpPeer::connect_from(ATTACKER, http, WAIT)?);
    }
    let mut extra = TcpPeer::connect_from(ATTACKER, http, WAIT)?;
    assert!(
        extra.closed_within(WAIT)?,
        "the fourth HTTP connection stayed open"
    );
    wait_for_log_line(
        &switchboard,
        &[
            "security event=connection-refused src=127.0.0.2 ",
            "transport=HTTP reason=\"per-source-cap\"",
        ],
    )?;
    // The API still answers other addresses.
    let health = switchboard
        .api()
        .get("/healthz")?
        .expect_status(200, "GET /healthz")?;
    drop(health);
    // A held connection trickling a request is cut off after the header timeout.
    let mut slow = held.remove(0);
    let started = Instant::now();
    let mut cut_off = false;
    for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n".iter().cycle() {
        if slow.send_bytes(&[*byte]).is_err() || slow.closed_within(Duration::from_millis(200))? {
            cut_off = true;
            break;
        }
        if started.elapsed() > WAIT {
            break;
        }
    }
    assert!(cut_off, "a slowloris HTTP request stayed open");
    Ok(())
}

#[test]
fn max_connections_caps_all_sources_together() -> HarnessResult<()> {
    let switchboard = Switchboard::start(limited("max_connections = 2"))?;
    let mut first = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
    let mut second = TcpPeer::connect_from(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
        switchboard.sip_addr(),
        WAIT,
    )?;
    assert_eq!(options_over(&mut first, &switchboard)?, Some(200));
    assert_eq!(options_over(&mut second, &switchboard)?, Some(200));
    let mut third = TcpPeer::connect_from(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)),
        switchboard.sip_addr(),
        WAIT,
    )?;
    assert!(third.closed_within(WAIT)?, "a third connection stayed open");
    wait_for_log_line(&switchboard, &["src=127.0.0.4 ", "reason=\"global-cap\""])?;
    Ok(())
}

/// REGISTERs agent 1001 over `peer` with digest, expecting 200.
fn register_over_tcp(peer: &mut TcpPeer, switchboard: &Switchboard) -> HarnessResult<()> {
    let registrar = format!("sip:{}", switchboard.sip_addr());
    let mut spec = RequestSpec::new("REGISTER", &registrar, "1001");
    spec.transport = "TCP";
    spec.to = format!("<sip:1001@{}>", switchboard.sip_addr());
    spec.extra_headers.push("Expires: 3600".into());
    let local = peer.local_addr()?;
    peer.send(&spec.render(local))?;
    let challenge = peer.recv(WAIT)?;
    let offered = challenge.headers_named("WWW-Authenticate");
    let answer = sip_tests::digest::pick(&offered, sip_tests::digest::DigestAlgorithm::Md5)?
        .answer(
            &sip_tests::digest::Credentials {
                username: "1001",
                password: "secret1001",
            },
            "REGISTER",
            &registrar,
            "c0ffee",
            1,
        )?;
    spec.cseq += 1;
    spec.branch = sip_tests::uac::unique_token();
    spec.extra_headers.push(format!("Authorization: {answer}"));
    peer.send(&spec.render(local))?;
    let result = peer.recv(WAIT)?;
    if result.status() != Some(200) {
        return Err(HarnessError::Unexpected(format!(
            "TCP REGISTER got\n{}",
            result.to_text()
        )));
    }
    Ok(())
}

#[test]
fn an_idle_connection_closes_unless_a_registration_lives_on_it() -> HarnessResult<()> {
    let switchboard = Switchboard::start(limited("idle_timeout_s = 1"))?;
    let phone_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let mut phone = TcpPeer::connect_from(phone_ip, switchboard.sip_addr(), WAIT)?;
    register_over_tcp(&mut phone, &switchboard)?;
    let mut idle = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
    assert_eq!(options_over(&mut idle, &switchboard)?, Some(200));
    // The idle connection goes after idle_timeout_s …
    assert!(idle.closed_within(WAIT)?, "an idle connection stayed open");
    // … while the phone's connection, which carries its binding, is still open and in use.
    assert!(!phone.closed_within(Duration::from_millis(1500))?);
    assert_eq!(options_over(&mut phone, &switchboard)?, Some(200));
    Ok(())
}

#[test]
fn a_body_that_never_comes_is_cut_off_after_the_body_timeout() -> HarnessResult<()> {
    let switchboard = Switchboard::start(limited("header_timeout_s = 3600\nbody_timeout_s = 1"))?;
    let mut peer = TcpPeer::connect_from(ATTACKER, switchboard.sip_addr(), WAIT)?;
    let head = "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.2:9;branch=z9hG4bKbody\r\n\
        From: <sip:a@127.0.0.2>;tag=1\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: body-1\r\nCSeq: 1 OPTIONS\r\n\
        Max-Forwards: 70\r\nContent-Length: 100\r\n\r\npartial";
    peer.send_bytes(head.as_bytes())
        .map_err(|e| HarnessError::io("sending a partial message", e))?;
    assert!(
        peer.closed_within(WAIT)?,
        "a partial body kept the connection open"
    );
    Ok(())
}
