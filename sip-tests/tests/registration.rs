//! Agents log in by REGISTER with Digest authentication (MD5 and SHA-256 challenges, qop=auth;
//! the challenge order is configurable), and the registrar enforces its expiry bounds.

use sip_tests::digest::{Challenge, Credentials, DigestAlgorithm};
use sip_tests::uac::register;
use sip_tests::{HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const ALICE: Credentials<'static> = Credentials {
    username: "1001",
    password: "secret1001",
};

/// Registers against a Switchboard that offers both algorithms, SHA-256 first.
fn register_with(
    algorithm: DigestAlgorithm,
    credentials: &Credentials<'_>,
) -> HarnessResult<(Switchboard, sip_tests::uac::Registration)> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        digest_algorithms: Some(vec!["SHA-256".into(), "MD5".into()]),
        ..SwitchboardConfig::default()
    })?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let registration = register(&peer, credentials, algorithm, 3600)?;
    Ok((switchboard, registration))
}

#[test]
fn default_challenge_is_md5_only_with_qop_auth() -> HarnessResult<()> {
    // MD5 alone by default: baresip (libre) refuses a whole 401 that also names SHA-256.
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let registration = register(&peer, &ALICE, DigestAlgorithm::Md5, 3600)?;
    let challenge = &registration.challenge.final_response;
    let offers = challenge
        .headers_named("WWW-Authenticate")
        .into_iter()
        .map(Challenge::parse)
        .collect::<HarnessResult<Vec<_>>>()?;
    let algorithms: Vec<DigestAlgorithm> = offers.iter().map(|c| c.algorithm).collect();
    assert_eq!(
        algorithms,
        vec![DigestAlgorithm::Md5],
        "401 must carry one MD5 challenge by default:\n{}",
        challenge.to_text()
    );
    for offer in &offers {
        assert_eq!(offer.realm, "switchboard", "{}", challenge.to_text());
        assert!(
            offer.qop.iter().any(|q| q == "auth"),
            "qop=auth missing:\n{}",
            challenge.to_text()
        );
    }
    assert_eq!(registration.result.final_response.status(), Some(200));
    Ok(())
}

#[test]
fn challenge_order_follows_configuration() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        digest_algorithms: Some(vec!["SHA-256".into(), "MD5".into()]),
        ..SwitchboardConfig::default()
    })?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let registration = register(&peer, &ALICE, DigestAlgorithm::Sha256, 3600)?;
    let challenge = &registration.challenge.final_response;
    let algorithms = challenge
        .headers_named("WWW-Authenticate")
        .into_iter()
        .map(|h| Challenge::parse(h).map(|c| c.algorithm))
        .collect::<HarnessResult<Vec<_>>>()?;
    assert_eq!(
        algorithms,
        vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        "{}",
        challenge.to_text()
    );
    assert_eq!(registration.result.final_response.status(), Some(200));
    Ok(())
}

#[test]
fn register_with_sha256_digest_gets_200() -> HarnessResult<()> {
    let (_switchboard, registration) = register_with(DigestAlgorithm::Sha256, &ALICE)?;
    let result = &registration.result.final_response;
    assert_eq!(result.status(), Some(200), "{}", result.to_text());
    assert!(
        result.header("Contact").is_some(),
        "200 to REGISTER should list the binding:\n{}",
        result.to_text()
    );
    Ok(())
}

#[test]
fn register_with_md5_digest_gets_200() -> HarnessResult<()> {
    let (_switchboard, registration) = register_with(DigestAlgorithm::Md5, &ALICE)?;
    let result = &registration.result.final_response;
    assert_eq!(result.status(), Some(200), "{}", result.to_text());
    Ok(())
}

#[test]
fn register_with_wrong_password_gets_401_then_403() -> HarnessResult<()> {
    let wrong = Credentials {
        username: "1001",
        password: "not-the-password",
    };
    let (_switchboard, registration) = register_with(DigestAlgorithm::Sha256, &wrong)?;
    assert_eq!(registration.challenge.final_response.status(), Some(401));
    let result = &registration.result.final_response;
    assert_eq!(result.status(), Some(403), "{}", result.to_text());
    Ok(())
}

#[test]
fn sipp_register_with_wrong_password_gets_401_then_403() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    switchboard
        .sipp_client("register_wrong_password.xml")?
        .service("1001")
        .set("user", "1001")
        .run()?
        .ensure_success()
}

#[test]
fn too_short_expiry_gets_423_with_min_expires() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let registration = register(&peer, &ALICE, DigestAlgorithm::Md5, 10)?;
    let result = &registration.result.final_response;
    assert_eq!(result.status(), Some(423), "{}", result.to_text());
    assert_eq!(
        result.headers_named("Min-Expires"),
        vec!["60"],
        "{}",
        result.to_text()
    );
    Ok(())
}
