//! The calls API against a real call: `GET /api/calls` per role (admin sees the number, an
//! analyst sees it masked, an agent only their own calls), hold and resume from the API (the
//! caller hears music on hold instead of the agent), transfers refused with stable JSON codes,
//! actions on an ended or unknown call, and `switchboard calls` printing the table.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sip_tests::rtp::{pcmu_offer, RtpPeer};
use sip_tests::uac::place_media_call;
use sip_tests::{start_echo_agent, HarnessResult, Switchboard, SwitchboardConfig, UdpPeer};

const TOKENS: &str = "\n[[http.token]]\ntoken = \"analyst-token\"\nrole = \"analyst\"\n\
    \n[[http.token]]\ntoken = \"alice-token\"\nrole = \"agent\"\nagent = \"1001\"\n\
    \n[[http.token]]\ntoken = \"bob-token\"\nrole = \"agent\"\nagent = \"1002\"\n";

fn calls(value: &Value) -> Vec<Value> {
    value["calls"].as_array().cloned().unwrap_or_default()
}

#[test]
fn calls_are_listed_per_role_held_resumed_and_refused_clearly() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: TOKENS.into(),
        ..SwitchboardConfig::default()
    })?;
    let agent = start_echo_agent(&switchboard, "1001", Duration::from_secs(90))?;
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay) = place_media_call(
        &sip,
        "100",
        &pcmu_offer(rtp.port()?, false),
        Duration::from_secs(30),
    )?;
    let api = switchboard.api();

    let listed = calls(&api.get("/api/calls")?.expect_status(200, "list")?.json()?);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_u64().unwrap_or_default();
    assert_eq!(listed[0]["state"], "connected");
    assert_eq!(listed[0]["agent"], "1001");
    assert_eq!(listed[0]["caller"], "2000");
    assert_eq!(listed[0]["legs"].as_array().map(Vec::len), Some(2));
    let analyst = calls(
        &api.with_token(Some("analyst-token"))
            .get("/api/calls")?
            .json()?,
    );
    assert_eq!(analyst[0]["caller"], "****", "masked for analysts");
    assert_eq!(
        calls(
            &api.with_token(Some("alice-token"))
                .get("/api/calls")?
                .json()?
        )
        .len(),
        1
    );
    assert!(calls(
        &api.with_token(Some("bob-token"))
            .get("/api/calls")?
            .json()?
    )
    .is_empty());

    // Hold from the API: the caller now hears Switchboard's music, not the agent's echo.
    api.post(&format!("/api/calls/{id}/hold"), "")?
        .expect_status(200, "hold")?;
    let held = calls(&api.get("/api/calls")?.json()?);
    assert_eq!(held[0]["on_hold"], true);
    let ours = 0x0ca1_1e75;
    rtp.send_stream(relay, 5, 0, ours)?;
    let heard = rtp.receive(40, Duration::from_secs(5))?;
    assert!(!heard.is_empty(), "music reaches the held caller");
    assert!(
        heard.iter().all(|p| p.ssrc() != Some(ours)),
        "no echo from the agent while held"
    );
    api.post(&format!("/api/calls/{id}/resume"), "")?
        .expect_status(200, "resume")?;
    assert_eq!(calls(&api.get("/api/calls")?.json()?)[0]["on_hold"], false);

    // Refusals, each with a stable code.
    let refusals = [
        (
            api.with_token(Some("analyst-token")),
            format!("/api/calls/{id}/hold"),
            "",
            403,
            "forbidden",
        ),
        (
            api.with_token(Some("bob-token")),
            format!("/api/calls/{id}/hold"),
            "",
            403,
            "forbidden",
        ),
        (
            api.clone(),
            format!("/api/calls/{id}/transfer"),
            "{\"to\": \"9999\"}",
            404,
            "unknown_target",
        ),
        (
            api.clone(),
            format!("/api/calls/{id}/transfer"),
            "{\"to\": \"1001\"}",
            409,
            "invalid_target",
        ),
        (
            api.clone(),
            format!("/api/calls/{id}/transfer"),
            "{\"to\": \"1002\"}",
            409,
            "target_unavailable",
        ),
        (
            api.clone(),
            format!("/api/calls/{id}/transfer"),
            "{\"to\": \"1002\", \"mode\": \"attended\"}",
            409,
            "target_not_ready",
        ),
        (
            api.clone(),
            format!("/api/calls/{id}/transfer"),
            "{\"to\": \"a@b\"}",
            400,
            "bad_request",
        ),
        (
            api.clone(),
            format!("/api/calls/{id}/transfer"),
            "not json",
            400,
            "bad_request",
        ),
        (
            api.clone(),
            "/api/calls/abc/hold".to_string(),
            "",
            400,
            "bad_request",
        ),
        (
            api.clone(),
            "/api/calls/99999/hold".to_string(),
            "",
            404,
            "unknown_call",
        ),
    ];
    for (client, path, body, status, code) in refusals {
        let response = client.post(&path, body)?.expect_status(status, &path)?;
        assert_eq!(response.error_code()?, code, "{path} {body}");
    }

    // The CLI prints the same call.
    let printed = Command::new(sip_tests::paths::switchboard_binary()?)
        .args(["calls", "--api", api.base_url(), "--token", "demo-token"])
        .output()
        .map_err(|e| sip_tests::HarnessError::io("running switchboard calls", e))?;
    let table = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success(), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with(&format!("{id} "))
            && l.contains("1001")
            && l.contains("connected")),
        "{table}"
    );

    call.hang_up(Duration::from_secs(30))?;
    agent.wait()?.ensure_success()?;
    let ended = api
        .post(&format!("/api/calls/{id}/hold"), "")?
        .expect_status(409, "ended")?;
    assert_eq!(ended.error_code()?, "call_ended");
    Ok(())
}
