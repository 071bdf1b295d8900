//! A trunk that authenticates with Digest instead of a source ACL: 407, then the call goes through
//! with the right credentials and is refused with 403 with wrong ones.

use std::time::Duration;

use sip_tests::digest::{Challenge, Credentials, DigestAlgorithm};
use sip_tests::uac::{authenticated_call, sdp_offer, send_ack_for_failure, RequestSpec};
use sip_tests::{start_agent, HarnessResult, Switchboard, SwitchboardConfig, TrunkConfig, UdpPeer};

const TRUNK_USER: &str = "trunkuser";
const TRUNK_PASSWORD: &str = "trunkpass";

fn credentialed_trunk() -> SwitchboardConfig {
    SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "carrier".into(),
            allow: Vec::new(),
            credentials: Some((TRUNK_USER.into(), TRUNK_PASSWORD.into())),
        }],
        digest_algorithms: Some(vec!["SHA-256".into(), "MD5".into()]),
        ..SwitchboardConfig::default()
    }
}

fn call_with(algorithm: DigestAlgorithm) -> HarnessResult<()> {
    let switchboard = Switchboard::start(credentialed_trunk())?;
    let agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer.xml",
        Duration::from_secs(90),
    )?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let call = authenticated_call(
        &peer,
        "100",
        &Credentials {
            username: TRUNK_USER,
            password: TRUNK_PASSWORD,
        },
        algorithm,
        Duration::from_millis(500),
        Duration::from_secs(60),
    )?;
    let answer = &call.answer.final_response;
    assert_eq!(answer.status(), Some(200), "{}", answer.to_text());
    let bye = call
        .bye
        .as_ref()
        .map(|exchange| exchange.final_response.status());
    assert_eq!(bye, Some(Some(200)), "BYE from the trunk is answered 200");
    agent.wait()?.ensure_success()?;

    Ok(())
}

#[test]
fn proxy_challenge_offers_the_configured_algorithms_in_order_with_qop_auth() -> HarnessResult<()> {
    let switchboard = Switchboard::start(credentialed_trunk())?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let local = peer.local_addr()?;
    let mut invite = RequestSpec::new(
        "INVITE",
        &format!("sip:100@{}", switchboard.sip_addr()),
        TRUNK_USER,
    );
    invite.body = sdp_offer(local, 40_000);
    let challenge = peer.request(&invite.render(local), Duration::from_secs(30))?;
    let response = &challenge.final_response;
    send_ack_for_failure(&peer, &invite, response)?;
    assert_eq!(response.status(), Some(407), "{}", response.to_text());
    let offered = response
        .headers_named("Proxy-Authenticate")
        .into_iter()
        .map(Challenge::parse)
        .collect::<HarnessResult<Vec<_>>>()?;
    let algorithms: Vec<DigestAlgorithm> = offered.iter().map(|c| c.algorithm).collect();
    assert_eq!(
        algorithms,
        vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        "407 must carry the configured Proxy-Authenticate challenges, SHA-256 then MD5:\n{}",
        response.to_text()
    );
    assert!(
        offered.iter().all(|c| c.qop.iter().any(|q| q == "auth")),
        "qop=auth missing:\n{}",
        response.to_text()
    );
    Ok(())
}

#[test]
fn credentialed_trunk_call_with_sha256_goes_through() -> HarnessResult<()> {
    call_with(DigestAlgorithm::Sha256)
}

#[test]
fn credentialed_trunk_call_with_md5_goes_through() -> HarnessResult<()> {
    call_with(DigestAlgorithm::Md5)
}

#[test]
fn wrong_trunk_credentials_get_407_then_403() -> HarnessResult<()> {
    let switchboard = Switchboard::start(credentialed_trunk())?;
    switchboard
        .sipp_client("expect_407_403.xml")?
        .service("100")
        .set("user", TRUNK_USER)
        .run()?
        .ensure_success()
}
