//! The HTTP API: bearer tokens, JSON errors with stable codes, agent and queue lists, state
//! changes, health endpoints, and the `switchboard agents` / `switchboard queues` commands that
//! read it.

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};
use sip_tests::api::{agent_reason, agent_state, ApiResponse};
use sip_tests::paths::switchboard_binary;
use sip_tests::ports::free_port;
use sip_tests::uac::place_call;
use sip_tests::{
    register_agent, start_agent, HarnessError, HarnessResult, Switchboard, SwitchboardConfig,
    UdpPeer,
};

/// How long the API may take to show an effect of SIP traffic.
const WAIT: Duration = Duration::from_secs(60);

/// Asserts `response` is the JSON error `{"error":{"code": code, "message": ...}}` with `status`.
fn assert_error(response: &ApiResponse, status: u16, code: &str, what: &str) -> HarnessResult<()> {
    assert_eq!(
        response.status, status,
        "{what}: status (body {})",
        response.body
    );
    assert_eq!(response.error_code()?, code, "{what}: error code");
    let message = response.json()?;
    let message = message.pointer("/error/message").and_then(Value::as_str);
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{what}: error without a message: {}",
        response.body
    );
    Ok(())
}

#[test]
fn every_error_has_its_status_and_stable_code() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    let api = switchboard.api();
    let anonymous = api.with_token(None);
    let wrong = api.with_token(Some("not-a-token"));

    for (client, what) in [(&anonymous, "no token"), (&wrong, "wrong token")] {
        assert_error(&client.get("/api/agents")?, 401, "unauthorized", what)?;
        assert_error(&client.get("/api/queues")?, 401, "unauthorized", what)?;
        assert_error(&client.get("/api/agents/1001")?, 401, "unauthorized", what)?;
        assert_error(
            &client.post_state("1001", r#"{"state":"ready"}"#)?,
            401,
            "unauthorized",
            what,
        )?;
    }

    for body in [
        "not json",
        "{}",
        r#"{"state":"asleep"}"#,
        r#"{"state":42}"#,
        r#"{"state":"not-ready"}"#,
        r#"{"state":"ready","reason":"break"}"#,
    ] {
        assert_error(
            &api.post_state("1001", body)?,
            400,
            "bad_request",
            &format!("body {body}"),
        )?;
    }

    assert_error(
        &api.get("/api/agents/9999")?,
        404,
        "unknown_agent",
        "GET unknown agent",
    )?;
    assert_error(
        &api.post_state("9999", r#"{"state":"ready"}"#)?,
        404,
        "unknown_agent",
        "POST unknown agent",
    )?;
    assert_error(
        &api.post_state("1001", r#"{"state":"not-ready","reason":"nap"}"#)?,
        422,
        "unknown_reason",
        "reason not configured",
    )?;
    // 1002 never registered: logged out already.
    assert_error(
        &api.post_state("1002", r#"{"state":"logged-out"}"#)?,
        409,
        "illegal_transition",
        "logging out a logged-out agent",
    )?;
    assert_error(
        &api.get("/api/nothing-here")?,
        404,
        "not_found",
        "unknown path",
    )?;
    assert_error(&api.get("/nowhere")?, 404, "not_found", "unknown root path")?;
    // The root leads a browser without a session to the login page (docs/api.md).
    let root = api.get("/")?.expect_status(200, "the root, redirected")?;
    assert!(root.body.contains("Switchboard — log in"), "{}", root.body);

    // None of the refused requests changed anything.
    let alice = api.agent("1001")?;
    assert_eq!(agent_state(&alice), Some("ready"), "{alice}");
    Ok(())
}

#[test]
fn health_endpoints_answer_200() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    // Health checks come from load balancers without tokens.
    let anonymous = switchboard.api().with_token(None);
    anonymous.get("/healthz")?.expect_status(200, "healthz")?;
    anonymous.get("/readyz")?.expect_status(200, "readyz")?;
    Ok(())
}

#[test]
fn readyz_is_503_while_draining() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        drain_timeout_s: 60,
        ..SwitchboardConfig::default()
    };
    let mut switchboard = Switchboard::start(config)?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    // A running call keeps the process draining, not gone, until the test hangs it up.
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let call = place_call(&trunk, "100", "3000", WAIT)?;
    let api = switchboard.api().with_token(None);
    api.get("/readyz")?
        .expect_status(200, "readyz before SIGTERM")?;

    switchboard.terminate()?;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let readyz = api.get("/readyz")?;
        if readyz.status == 503 {
            break;
        }
        assert_eq!(readyz.status, 200, "readyz: {}", readyz.body);
        if std::time::Instant::now() >= deadline {
            return Err(HarnessError::Unexpected(
                "readyz never turned 503 after SIGTERM".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    api.get("/healthz")?
        .expect_status(200, "healthz while draining")?;

    let bye = call.hang_up(WAIT)?;
    assert_eq!(bye.final_response.status(), Some(200));
    agent.wait()?.ensure_success()?;
    let status = switchboard.wait_exit(Duration::from_secs(90))?;
    assert_eq!(status.code(), Some(0), "exit after drain: {status}");
    Ok(())
}

#[test]
fn agent_and_queue_lists_show_the_configuration_and_live_state() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    let api = switchboard.api();

    let agents = api.agents()?;
    let ids: Vec<&str> = agents
        .iter()
        .filter_map(|a| a.get("id").and_then(Value::as_str))
        .collect();
    assert_eq!(ids, vec!["1001", "1002"], "{agents:?}");
    let alice = &agents[0];
    assert_eq!(alice.get("name"), Some(&json!("Alice")));
    assert_eq!(agent_state(alice), Some("ready"));
    assert_eq!(alice.get("reason"), Some(&Value::Null));
    assert_eq!(
        alice.get("skills"),
        Some(&json!([{"skill": "support", "level": 5}]))
    );
    assert_eq!(alice.get("queues"), Some(&json!(["support"])));
    assert_eq!(alice.get("calls_answered"), Some(&json!(0)));
    assert!(
        alice.get("state_seconds").is_some_and(Value::is_u64),
        "{alice}"
    );
    assert_eq!(agent_state(&agents[1]), Some("logged-out"), "{}", agents[1]);
    assert_eq!(
        api.agent("1002")?.get("name"),
        Some(&json!("Bob")),
        "single-agent read"
    );

    let queues = api.queues()?;
    assert_eq!(queues.len(), 1, "{queues:?}");
    let support = &queues[0];
    assert_eq!(support.get("name"), Some(&json!("support")));
    assert_eq!(support.get("waiting"), Some(&json!(0)));
    assert_eq!(
        support.get("agents"),
        Some(
            &json!({"ready": 1, "reserved": 0, "on_call": 0, "wrap_up": 0, "not_ready": 0, "logged_out": 1})
        )
    );
    assert!(
        support
            .get("longest_wait_seconds")
            .is_some_and(|w| w.is_null() || w == &json!(0)),
        "no call waits: {support}"
    );
    assert!(support.get("average_handle_seconds").is_some(), "{support}");

    // A state change answers with the agent, and both lists follow it.
    let changed = api.set_not_ready("1001", "lunch")?;
    assert_eq!(
        (agent_state(&changed), agent_reason(&changed)),
        (Some("not-ready"), Some("lunch")),
        "{changed}"
    );
    let listed = api.agents()?;
    assert_eq!(agent_state(&listed[0]), Some("not-ready"));
    assert_eq!(
        api.queue("support")?.pointer("/agents/not_ready"),
        Some(&json!(1))
    );
    let ready = api.set_ready("1001")?;
    assert_eq!(
        (agent_state(&ready), agent_reason(&ready)),
        (Some("ready"), None)
    );
    let out = api.log_out("1001")?;
    assert_eq!(agent_state(&out), Some("logged-out"));
    assert_eq!(
        api.queue("support")?.pointer("/agents/logged_out"),
        Some(&json!(2))
    );
    // Ready from logged-out logs the agent back in.
    let back = api.set_ready("1001")?;
    assert_eq!(agent_state(&back), Some("ready"));
    Ok(())
}

#[test]
fn a_call_shows_as_on_call_then_counts_as_answered() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    let api = switchboard.api();
    let trunk = UdpPeer::bind(0, switchboard.sip_addr())?;
    let call = place_call(&trunk, "100", "3000", WAIT)?;
    let on_call = api.wait_for_agent_state("1001", "on-call", WAIT)?;
    assert_eq!(
        api.queue("support")?.pointer("/agents/on_call"),
        Some(&json!(1)),
        "agent {on_call}"
    );
    call.hang_up(WAIT)?;
    agent.wait()?.ensure_success()?;
    // No wrap-up is configured: Ready again once the call is over.
    let after = api.wait_for_agent_state("1001", "ready", WAIT)?;
    assert_eq!(after.get("calls_answered"), Some(&json!(1)), "{after}");
    Ok(())
}

fn cli(switchboard: &Switchboard, command: &str, token: &str) -> HarnessResult<Output> {
    let binary = switchboard_binary()?;
    Command::new(&binary)
        .arg(command)
        .arg("--api")
        .arg(format!("http://{}", switchboard.http_addr()))
        .arg("--token")
        .arg(token)
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .map_err(|e| HarnessError::io(format!("running switchboard {command}"), e))
}

/// The output line whose first column is `first`, split into columns.
fn row<'o>(stdout: &'o str, first: &str) -> Option<Vec<&'o str>> {
    stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
}

#[test]
fn cli_prints_agent_and_queue_tables() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    switchboard.api().set_not_ready("1001", "break")?;

    let agents = cli(&switchboard, "agents", "demo-token")?;
    let stdout = String::from_utf8_lossy(&agents.stdout);
    assert!(
        agents.status.success(),
        "switchboard agents failed: {}\n{stdout}",
        String::from_utf8_lossy(&agents.stderr)
    );
    let alice = row(&stdout, "1001")
        .ok_or_else(|| HarnessError::Unexpected(format!("no row for agent 1001 in:\n{stdout}")))?;
    for cell in ["Alice", "not-ready", "break"] {
        assert!(alice.contains(&cell), "{cell} missing from {alice:?}");
    }
    let bob = row(&stdout, "1002")
        .ok_or_else(|| HarnessError::Unexpected(format!("no row for agent 1002 in:\n{stdout}")))?;
    for cell in ["Bob", "logged-out"] {
        assert!(bob.contains(&cell), "{cell} missing from {bob:?}");
    }

    let queues = cli(&switchboard, "queues", "demo-token")?;
    let stdout = String::from_utf8_lossy(&queues.stdout);
    assert!(
        queues.status.success(),
        "switchboard queues failed: {}\n{stdout}",
        String::from_utf8_lossy(&queues.stderr)
    );
    let support = row(&stdout, "support").ok_or_else(|| {
        HarnessError::Unexpected(format!("no row for queue support in:\n{stdout}"))
    })?;
    // Columns: QUEUE WAITING LONGEST_S READY RESERVED ON_CALL WRAP_UP NOT_READY LOGGED_OUT.
    assert_eq!(support.get(1), Some(&"0"), "waiting in {support:?}");
    assert_eq!(support.last(), Some(&"1"), "logged out in {support:?}");

    let refused = cli(&switchboard, "agents", "not-a-token")?;
    assert!(
        !refused.status.success(),
        "a wrong token must fail the command; stdout:\n{}",
        String::from_utf8_lossy(&refused.stdout)
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "stderr names the HTTP status: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    Ok(())
}

#[test]
fn emergency_announcements_are_switched_per_number_and_bad_requests_explained() -> HarnessResult<()>
{
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let api = switchboard.api();
    assert_error(
        &api.put("/api/emergency/999", "{}")?,
        404,
        "unknown_number",
        "a number that is not configured",
    )?;
    assert_error(
        &api.put("/api/emergency/100", "{\"prompt\":")?,
        400,
        "bad_request",
        "a body that is not JSON",
    )?;
    assert_error(
        &api.put("/api/emergency/100", "{\"prompt\":\"no-such-prompt\"}")?,
        400,
        "unknown_prompt",
        "a prompt that is not loaded",
    )?;
    assert_error(
        &api.with_token(None).put("/api/emergency/100", "{}")?,
        401,
        "unauthorized",
        "no token",
    )?;
    let on = api
        .put("/api/emergency/100", "{\"prompt\":\"emergency\"}")?
        .expect_status(200, "switching the announcement on")?
        .json()?;
    assert_eq!(on, json!({ "did": "100", "prompt": "emergency" }));
    let listed = api
        .get("/api/emergency")?
        .expect_status(200, "listing")?
        .json()?;
    assert_eq!(
        listed,
        json!({ "emergency": [{ "did": "100", "prompt": "emergency" }] })
    );
    let off = api
        .delete("/api/emergency/100")?
        .expect_status(200, "switching it off")?
        .json()?;
    assert_eq!(off, json!({ "did": "100", "cleared": true }));
    let listed = api.get("/api/emergency")?.json()?;
    assert_eq!(listed, json!({ "emergency": [] }));
    Ok(())
}

#[test]
fn an_emergency_announcement_survives_a_restart() -> HarnessResult<()> {
    let mut switchboard = Switchboard::start(SwitchboardConfig::default())?;
    switchboard
        .api()
        .put("/api/emergency/100", "{\"prompt\":\"emergency\"}")?
        .expect_status(200, "switching the announcement on")?;
    // Saved before the 200: even a crash right after keeps it.
    switchboard.kill()?;
    switchboard.restart()?;
    let listed = switchboard.api().get("/api/emergency")?.json()?;
    assert_eq!(
        listed,
        json!({ "emergency": [{ "did": "100", "prompt": "emergency" }] }),
        "an admin's announcement is not switched off by a restart"
    );
    // A node restarted after a crash still stops cleanly (its journal skipped the number the
    // crashed run had opened; that gap once kept the CDR thread waiting for ever).
    switchboard.terminate()?;
    let status = switchboard.wait_exit(WAIT)?;
    assert!(status.success(), "exit status {status}");
    Ok(())
}
