//! SIP over TCP: the same listener port as UDP; on a stream every message must carry
//! Content-Length (RFC 3261 §18.3, §20.14) or the peer cannot tell where it ends.

use std::time::Duration;

use sip_tests::tcp_peer::TcpPeer;
use sip_tests::uac::RequestSpec;
use sip_tests::{start_agent, HarnessResult, Switchboard, SwitchboardConfig};

#[test]
fn options_over_tcp_gets_200_framed_with_content_length() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let mut peer = TcpPeer::connect(switchboard.sip_addr(), Duration::from_secs(10))?;
    let mut spec = RequestSpec::new(
        "OPTIONS",
        &format!("sip:{}", switchboard.sip_addr()),
        "probe",
    );
    spec.transport = "TCP";
    peer.send(&spec.render(peer.local_addr()?))?;
    let response = peer.recv(Duration::from_secs(30))?;
    assert_eq!(response.status(), Some(200), "{}", response.to_text());
    Ok(())
}

#[test]
fn trunk_call_over_tcp_answered_by_agent() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer.xml",
        Duration::from_secs(90),
    )?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-t")
        .arg("t1")
        .run()?
        .ensure_success()?;
    agent.wait()?.ensure_success()
}
