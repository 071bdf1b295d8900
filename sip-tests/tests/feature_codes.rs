//! Agent feature codes dialled from the agent's phone: `*21` ready, `*22` not ready (first
//! reason), `*22N` not ready (N-th reason), `*23` log out. The phone answers a 407 with Digest;
//! Switchboard answers 200 declining every stream, and hangs up with BYE once the phone ACKs.
//! Each change is checked through the HTTP API.

use sip_tests::api::{agent_reason, agent_state};
use sip_tests::ports::free_port;
use sip_tests::trace::received_requests;
use sip_tests::{dial_feature_code, register_agent, HarnessResult, Switchboard, SwitchboardConfig};

/// Dials `code` as agent 1001 with the right password and requires the whole exchange (407,
/// 200 with declined SDP, ACK, BYE from Switchboard, 200) to succeed.
fn dial_ok(switchboard: &Switchboard, code: &str) -> HarnessResult<()> {
    let run = dial_feature_code(switchboard, "1001", code, None, "feature_code.xml")?;
    run.ensure_success()?;
    assert_eq!(
        run.received("BYE").len(),
        1,
        "Switchboard hangs up the feature-code call once"
    );
    Ok(())
}

#[test]
fn feature_codes_change_the_agent_state() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    let api = switchboard.api();
    assert_eq!(agent_state(&api.agent("1001")?), Some("ready"));

    // Reasons are ["break", "lunch", "missed"]: *22 is the first, *222 the second.
    for (code, state, reason) in [
        ("*22", "not-ready", Some("break")),
        ("*222", "not-ready", Some("lunch")),
        ("*21", "ready", None),
        ("*23", "logged-out", None),
        // Like the API's "ready", *21 logs a logged-out agent back in.
        ("*21", "ready", None),
    ] {
        dial_ok(&switchboard, code)?;
        // The 200 is sent after the state change, so the API shows it already.
        let agent = api.agent("1001")?;
        assert_eq!(
            (agent_state(&agent), agent_reason(&agent)),
            (Some(state), reason),
            "after {code}: {agent}"
        );
    }
    Ok(())
}

#[test]
fn wrong_password_gets_407_then_403_and_changes_nothing() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    let run = dial_feature_code(
        &switchboard,
        "1001",
        "*22",
        Some("not-the-password"),
        "feature_code_refused.xml",
    )?;
    run.ensure_success()?;
    assert_eq!(run.received_responses(407).len(), 1, "one challenge");
    assert_eq!(
        run.received_responses(403).len(),
        1,
        "wrong credentials get 403"
    );
    assert!(received_requests(&run.messages(), "BYE").is_empty());
    assert_eq!(
        agent_state(&switchboard.api().agent("1001")?),
        Some("ready")
    );
    Ok(())
}

#[test]
fn unknown_feature_codes_get_404() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    // *99 is no code at all; *224 asks for a 4th not-ready reason where 3 are configured.
    for code in ["*99", "*224"] {
        let run = dial_feature_code(&switchboard, "1001", code, None, "feature_code_refused.xml")?;
        run.ensure_success()?;
        assert_eq!(
            run.received_responses(404).len(),
            1,
            "{code} should get 404 after authenticating:\n{}",
            run.messages()
        );
    }
    assert_eq!(
        agent_state(&switchboard.api().agent("1001")?),
        Some("ready"),
        "refused codes change nothing"
    );
    Ok(())
}
