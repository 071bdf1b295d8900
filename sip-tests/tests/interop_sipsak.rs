//! sipsak 0.9.8 against the real binary: OPTIONS, registration with Digest (right password,
//! wrong password, too short an expiry) and a Max-Forwards trace.
//!
//! sipsak 0.9.8.1 quirk: without `-u` it puts `user@` (with the @) as the Digest username, so
//! every run names the user with `-u`.

use sip_tests::sipsak::{sipsak, SipsakRun};
use sip_tests::{HarnessResult, Switchboard, SwitchboardConfig};

fn target(switchboard: &Switchboard, user: &str) -> String {
    format!("sip:{user}@{}", switchboard.sip_addr())
}

#[test]
fn options_gets_200_with_allow() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let run = sipsak(&["-s", &target(&switchboard, "1001")], switchboard.dir())?;
    assert_eq!(
        run.code,
        Some(0),
        "sipsak exit 0 = 200 received:\n{}",
        run.output
    );
    assert!(run.shows("SIP/2.0 200 OK"), "{}", run.output);
    let allow = run
        .output
        .lines()
        .find(|l| l.starts_with("Allow:"))
        .unwrap_or_default();
    for method in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER"] {
        assert!(allow.contains(method), "{method} missing from {allow:?}");
    }
    Ok(())
}

/// `sipsak -U` (register) as 1001 with `password` for `expires` seconds.
fn register_run(
    switchboard: &Switchboard,
    password: &str,
    expires: &str,
) -> HarnessResult<SipsakRun> {
    let target = target(switchboard, "1001");
    let args = [
        "-vv", "-U", "-u", "1001", "-a", password, "-x", expires, "-s", &target,
    ];
    sipsak(&args, switchboard.dir())
}

#[test]
fn register_with_the_right_password_gets_200() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let run = register_run(&switchboard, "secret1001", "120")?;
    assert_eq!(run.code, Some(0), "{}", run.output);
    assert!(run.shows("SIP/2.0 401 Unauthorized"), "{}", run.output);
    assert!(run.shows("SIP/2.0 200 OK"), "{}", run.output);
    // The registration is visible: the agent is logged in.
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", std::time::Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn register_with_a_wrong_password_gets_403() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let run = register_run(&switchboard, "wrong", "120")?;
    assert_ne!(run.code, Some(0), "{}", run.output);
    assert!(run.shows("SIP/2.0 403 Forbidden"), "{}", run.output);
    // One bare 403 for every credential refusal (no Warning): a reason would tell an
    // attacker which users exist (docs/security.md).
    assert!(
        !run.shows("Warning:"),
        "the 403 says nothing about why:\n{}",
        run.output
    );
    Ok(())
}

#[test]
fn register_below_min_expires_gets_423_with_min_expires() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let run = register_run(&switchboard, "secret1001", "5")?;
    assert!(
        run.shows("SIP/2.0 423 Interval Too Brief"),
        "{}",
        run.output
    );
    assert!(run.shows("Min-Expires: 60"), "{}", run.output);
    Ok(())
}

#[test]
fn max_forwards_trace_gets_483_at_hop_0_then_the_final_answer() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let run = sipsak(
        &["-T", "-s", &target(&switchboard, "1001")],
        switchboard.dir(),
    )?;
    assert!(run.shows("SIP/2.0 483 Too Many Hops"), "{}", run.output);
    assert!(
        run.shows("Max-Forwards reached 0"),
        "483 carries its Warning:\n{}",
        run.output
    );
    assert!(
        run.shows("SIP/2.0 200 OK"),
        "hop 1 is the final answer:\n{}",
        run.output
    );
    Ok(())
}
