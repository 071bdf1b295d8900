//! SIGTERM drains: new INVITEs get 503 with Retry-After, running calls may finish, then exit 0.

use std::time::Duration;

use sip_tests::{start_agent, HarnessResult, Switchboard, SwitchboardConfig};

#[test]
fn sigterm_refuses_new_calls_lets_the_running_call_finish_and_exits_0() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        drain_timeout_s: 60,
        ..SwitchboardConfig::default()
    };
    let mut switchboard = Switchboard::start(config)?;
    let mut agent = start_agent(
        &switchboard,
        "1001",
        "agent_answer.xml",
        Duration::from_secs(90),
    )?;
    // The running call hangs up a few seconds after it is answered, well inside the drain.
    let running = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("5000")
        .spawn()?;
    agent.wait_for_request("ACK", 1, Duration::from_secs(60))?;

    switchboard.terminate()?;
    switchboard
        .sipp_client("expect_503.xml")?
        .service("100")
        .run()?
        .ensure_success()?;

    running.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let status = switchboard.wait_exit(Duration::from_secs(90))?;
    assert_eq!(status.code(), Some(0), "exit status after drain: {status}");
    Ok(())
}

#[test]
fn sigterm_without_calls_exits_0() -> HarnessResult<()> {
    let mut switchboard = Switchboard::start(SwitchboardConfig::default())?;
    switchboard.terminate()?;
    let status = switchboard.wait_exit(Duration::from_secs(60))?;
    assert_eq!(status.code(), Some(0), "exit status: {status}");
    Ok(())
}
