//! A trunk that authenticates with Digest instead of a source ACL: 407, then the call goes through
//! with the right credentials and is refused with 403 with wrong ones.

use std::time::Duration;

use sip_tests::digest::{Challenge, Credentials, DigestAlgorithm};
use sip_tests::uac::authenticated_call;
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
        ..SwitchboardConfig::default()
    }
}

fn call_with(algorithm: DigestAlgorithm) -> HarnessResult<()> {
    let switchboard = Switchboard::start(credentialed_trunk())?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", Duration::from_secs(90))?;
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
    let challenge = &call.challenge.final_response;
    let offered = challenge
        .headers_named("Proxy-Authenticate")
        .into_iter()
        .map(Challenge::parse)
        .collect::<HarnessResult<Vec<_>>>()?;
    let algorithms: Vec<DigestAlgorithm> = offered.iter().map(|c| c.algorithm).collect();
    assert_eq!(
        algorithms,
        vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        "407 must offer SHA-256 then MD5:\n{}",
        challenge.to_text()
    );
    let answer = &call.answer.final_response;
    assert_eq!(answer.status(), Some(200), "{}", answer.to_text());
    let bye = call
        .bye
        .as_ref()
        .map(|exchange| exchange.final_response.status());
    assert_eq!(bye, Some(Some(200)), "BYE from the trunk is answered 200");
    agent.wait()?.ensure_success()
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
