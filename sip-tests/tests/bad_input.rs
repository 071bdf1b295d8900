//! Requests Switchboard must refuse, each with the right final code, and input it must survive.

use std::time::Duration;

use sip_tests::uac::options;
use sip_tests::{HarnessResult, Switchboard, SwitchboardConfig, TrunkConfig, UdpPeer};

/// Runs `scenario` as a trunk dialling `did` against a fresh default Switchboard.
fn expect(scenario: &str, did: &str) -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    switchboard
        .sipp_client(scenario)?
        .service(did)
        .run()?
        .ensure_success()
}

#[test]
fn unknown_did_gets_404() -> HarnessResult<()> {
    expect("expect_404.xml", "999")
}

#[test]
fn max_forwards_zero_gets_483() -> HarnessResult<()> {
    expect("expect_483.xml", "100")
}

#[test]
fn require_unknown_extension_gets_420_with_unsupported() -> HarnessResult<()> {
    expect("expect_420.xml", "100")
}

#[test]
fn bye_in_unknown_dialog_gets_481() -> HarnessResult<()> {
    expect("expect_481.xml", "100")
}

#[test]
fn options_out_of_dialog_gets_200() -> HarnessResult<()> {
    expect("expect_200_options.xml", "100")
}

#[test]
fn request_without_to_gets_400_with_warning() -> HarnessResult<()> {
    expect("expect_400_missing_to.xml", "100")
}

#[test]
fn content_length_beyond_datagram_gets_400_with_warning() -> HarnessResult<()> {
    expect("expect_400_bad_length.xml", "100")
}

#[test]
fn source_outside_every_acl_gets_403() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        trunks: vec![TrunkConfig {
            name: "far".into(),
            allow: vec!["10.0.0.0/8".into()],
            credentials: None,
        }],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    switchboard
        .sipp_client("expect_403.xml")?
        .service("100")
        .run()?
        .ensure_success()
}

#[test]
fn message_over_max_message_bytes_gets_513() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        max_message_bytes: Some(1024),
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let padding = "x".repeat(2000);
    switchboard
        .sipp_client("expect_513.xml")?
        .set("padding", &padding)
        .run()?
        .ensure_success()?;
    // Still serving afterwards.
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let answer = options(&peer, Duration::from_secs(30))?;
    assert_eq!(answer.final_response.status(), Some(200));
    Ok(())
}

#[test]
fn garbage_gets_no_reply_and_switchboard_keeps_serving() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let garbage: [&[u8]; 4] = [
        b"\x00\x01\x02\xff\xfe garbage \x80\x81",
        b"this is not SIP at all\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
    ];
    for datagram in garbage {
        peer.send_bytes(datagram)?;
    }
    // Anything sent back for the garbage would arrive before the answer to this OPTIONS, which
    // is sent after it from the same socket.
    let answer = options(&peer, Duration::from_secs(30))?;
    assert_eq!(
        answer.final_response.status(),
        Some(200),
        "{}",
        answer.final_response.to_text()
    );
    let replies: Vec<&str> = answer
        .unrelated
        .iter()
        .map(|m| m.start_line.as_str())
        .collect();
    assert!(replies.is_empty(), "garbage was answered: {replies:?}");
    assert!(switchboard_is_running(switchboard));
    Ok(())
}

fn switchboard_is_running(mut switchboard: Switchboard) -> bool {
    switchboard.is_running()
}
