//! Requests Switchboard must refuse, each with the right final code, and input it must survive.

use std::time::Duration;

use sip_tests::uac::{options, sdp_offer, send_ack_for_failure, RequestSpec};
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

/// Sent from Rust: SIPp matches responses by CSeq method and needs a To header, so it cannot
/// take the 400s these requests get.
#[test]
fn malformed_but_addressable_requests_get_400_with_warning() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let spec = RequestSpec::new(
        "OPTIONS",
        &format!("sip:{}", switchboard.sip_addr()),
        "probe",
    );
    let text = spec.render(peer.local_addr()?);
    let without = |header: &str| -> String {
        text.split_inclusive("\r\n")
            .filter(|line| !line.starts_with(header))
            .collect()
    };
    let cases = [
        ("no To header", without("To:")),
        ("no From header", without("From:")),
        (
            "CSeq method differs from the request method",
            text.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
        ),
    ];
    let mut wrong = Vec::new();
    for (what, request) in cases {
        let answer = peer.request(&request, Duration::from_secs(30))?;
        let response = &answer.final_response;
        let warning = response.header("Warning").unwrap_or_default();
        let explained = warning
            .strip_prefix("399 switchboard \"")
            .and_then(|rest| rest.strip_suffix('"'))
            .is_some_and(|reason| !reason.is_empty());
        if response.status() != Some(400) || !explained {
            wrong.push(format!("{what}:\n{}", response.to_text()));
        }
    }
    assert!(
        wrong.is_empty(),
        "expected 400 with `Warning: 399 switchboard \"<reason>\"`, got:\n{}",
        wrong.join("\n")
    );
    Ok(())
}

/// RFC 3261 §8.2.6.2: a UAS adds a To tag to every response but 100 when the request had none.
#[test]
fn final_responses_to_out_of_dialog_requests_carry_a_to_tag() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let peer = UdpPeer::bind(0, switchboard.sip_addr())?;
    let local = peer.local_addr()?;
    let server = switchboard.sip_addr();
    let invite = |did: &str| {
        let mut spec = RequestSpec::new("INVITE", &format!("sip:{did}@{server}"), "trunk");
        spec.body = sdp_offer(local, 40_000);
        spec
    };
    let options = RequestSpec::new("OPTIONS", &format!("sip:{server}"), "probe");
    let mut bye = RequestSpec::new("BYE", &format!("sip:nobody@{server}"), "trunk");
    bye.to = format!("<sip:nobody@{server}>;tag=no-such-dialog");
    let cases = [
        ("200 to OPTIONS", options.clone(), None),
        (
            "400 to a CSeq/method mismatch",
            options,
            Some(("CSeq: 1 OPTIONS", "CSeq: 1 INVITE")),
        ),
        ("404 to an unknown DID", invite("999"), None),
        (
            "483 to Max-Forwards: 0",
            invite("100"),
            Some(("Max-Forwards: 70", "Max-Forwards: 0")),
        ),
        ("481 to a BYE outside any dialog", bye, None),
    ];
    let mut untagged = Vec::new();
    for (what, spec, edit) in cases {
        let mut text = spec.render(local);
        if let Some((from, to)) = edit {
            text = text.replace(from, to);
        }
        let answer = peer.request(&text, Duration::from_secs(30))?;
        let response = &answer.final_response;
        if spec.method == "INVITE" {
            send_ack_for_failure(&peer, &spec, response)?;
        }
        if response.to_tag().is_none() {
            untagged.push(format!("{what}: {}", response.start_line));
        }
    }
    assert!(
        untagged.is_empty(),
        "responses without a To tag: {untagged:#?}"
    );
    Ok(())
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
    // Well formed but without Via: there is nowhere to send a response.
    let spec = RequestSpec::new(
        "OPTIONS",
        &format!("sip:{}", switchboard.sip_addr()),
        "probe",
    );
    let without_via: String = spec
        .render(peer.local_addr()?)
        .split_inclusive("\r\n")
        .filter(|line| !line.starts_with("Via:"))
        .collect();
    peer.send(&without_via)?;
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
