//! The audit log and hashed API tokens: a named admin token (configured by its SHA-256 only)
//! changes an agent's state and switches an emergency announcement on; each action is one
//! fsynced line in `<cdr.dir>/audit-YYYY-MM-DD.jsonl` with the token's name and source
//! address, there even after `kill -9`, and readable at `GET /api/audit` by admins only. A
//! refused token is logged to the security log with its source and counted.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use sip_tests::paths::switchboard_binary;
use sip_tests::ports::free_port;
use sip_tests::{
    dial_feature_code, register_agent, HarnessError, HarnessResult, Switchboard, SwitchboardConfig,
};

const ADMIN_SECRET: &str = "ops-desk-secret";
/// `printf %s ops-desk-secret | sha256sum`
const ADMIN_SHA256: &str = "bde40ef369adf4e3e7ccc0d2bce3469a540e90cd5c698a5a51f9eb3bbc6f9247";
const SUPERVISOR_SECRET: &str = "floor-lead-secret";

fn config() -> SwitchboardConfig {
    SwitchboardConfig {
        extra_toml: format!(
            "\n[[http.token]]\nname = \"ops-desk\"\ntoken_sha256 = \"{ADMIN_SHA256}\"\nrole = \"admin\"\n\n[[http.token]]\nname = \"floor-lead\"\ntoken = \"{SUPERVISOR_SECRET}\"\nrole = \"supervisor\"\n"
        ),
        ..SwitchboardConfig::default()
    }
}

/// Every line of every audit file in `dir`, parsed.
fn audit_lines(dir: &std::path::Path) -> HarnessResult<Vec<Value>> {
    let mut lines = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| HarnessError::io("listing the CDR directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| HarnessError::io("listing the CDR directory", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("audit-") && name.ends_with(".jsonl")) {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| HarnessError::io("reading an audit file", e))?;
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).map_err(|e| {
                HarnessError::Unexpected(format!("audit line {line:?} is not JSON: {e}"))
            })?;
            lines.push(value);
        }
    }
    Ok(lines)
}

fn with_action<'a>(records: &'a [Value], action: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|record| record["action"] == action)
        .collect()
}

fn assert_by_ops_desk(record: &Value, target: &str) {
    assert_eq!(record["who"]["token"], "ops-desk", "{record}");
    assert_eq!(record["who"]["role"], "admin", "{record}");
    assert_eq!(record["from"], "127.0.0.1", "{record}");
    assert_eq!(record["target"], target, "{record}");
    assert_eq!(record["result"], "ok", "{record}");
    assert!(
        record["at"].as_str().is_some_and(|at| at.ends_with('Z')),
        "{record}"
    );
}

#[test]
fn an_admins_changes_are_audited_once_and_survive_kill_9() -> HarnessResult<()> {
    let mut switchboard = Switchboard::start(config())?;
    let admin = switchboard.api().with_token(Some(ADMIN_SECRET));
    admin
        .post_state("1001", r#"{"state":"not-ready","reason":"lunch"}"#)?
        .expect_status(200, "the hashed admin token changes agent 1001's state")?;
    admin
        .put("/api/emergency/100", r#"{"prompt":"emergency"}"#)?
        .expect_status(200, "the admin switches an emergency announcement on")?;
    // The records were fsynced before the answers: a crash right now keeps them.
    switchboard.kill()?;

    let records = audit_lines(switchboard.cdr_dir())?;
    let states = with_action(&records, "agent-state");
    assert_eq!(states.len(), 1, "one state change: {records:?}");
    assert_by_ops_desk(states[0], "1001 not-ready (lunch)");
    let emergencies = with_action(&records, "emergency-set");
    assert_eq!(emergencies.len(), 1, "one announcement: {records:?}");
    assert_by_ops_desk(emergencies[0], "100 emergency");

    switchboard.restart()?;
    let admin = switchboard.api().with_token(Some(ADMIN_SECRET));
    let today = records[0]["at"]
        .as_str()
        .and_then(|at| at.get(..10))
        .ok_or_else(|| HarnessError::Unexpected(format!("no date in {records:?}")))?
        .to_owned();
    let listed = admin
        .get(&format!("/api/audit?from={today}"))?
        .expect_status(200, "an admin reads the audit log")?
        .json()?;
    let listed = listed["records"]
        .as_array()
        .cloned()
        .ok_or_else(|| HarnessError::Unexpected(format!("no records in {listed}")))?;
    assert_eq!(with_action(&listed, "agent-state").len(), 1, "{listed:?}");
    assert_eq!(with_action(&listed, "emergency-set").len(), 1, "{listed:?}");
    assert_by_ops_desk(with_action(&listed, "emergency-set")[0], "100 emergency");

    // A window that ends before today holds none of them.
    let before = admin
        .get("/api/audit?from=2000-01-01&to=2000-01-02")?
        .expect_status(200, "an empty window")?
        .json()?;
    assert_eq!(
        before["records"].as_array().map(Vec::len),
        Some(0),
        "{before}"
    );

    let supervisor = admin.with_token(Some(SUPERVISOR_SECRET));
    let refused = supervisor.get("/api/audit")?;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.error_code()?, "forbidden");
    let bad = admin.get("/api/audit?from=yesterday")?;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.error_code()?, "bad_time");

    // Reading the log is itself audited, with its result.
    let reads = with_action(&audit_lines(switchboard.cdr_dir())?, "audit-read")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(reads.len(), 2, "two successful reads: {reads:?}");
    Ok(())
}

#[test]
fn each_audited_api_action_names_its_target_and_result() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let admin = switchboard.api().with_token(Some(ADMIN_SECRET));
    let supervisor = admin.with_token(Some(SUPERVISOR_SECRET));
    admin
        .delete("/api/bans/192.0.2.1")?
        .expect_status(200, "lifting a ban that is not there")?;
    assert_eq!(admin.delete("/api/bans/not-an-ip")?.status, 400);
    assert_eq!(admin.post("/api/calls/77/hold", "")?.status, 404);
    assert_eq!(admin.post("/api/calls/77/resume", "")?.status, 404);
    assert_eq!(
        admin
            .post("/api/calls/77/transfer", r#"{"to":"1002"}"#)?
            .status,
        404
    );
    assert_eq!(admin.post("/api/calls/77/transfer", "{}")?.status, 400);
    supervisor
        .delete("/api/emergency/100")?
        .expect_status(200, "switching off an announcement that is off")?;
    assert_eq!(
        supervisor
            .post_state("1002", r#"{"state":"asleep"}"#)?
            .status,
        400
    );
    // Refused before the token is known: not in the audit log (it is in the security log).
    assert_eq!(
        admin
            .with_token(Some("wrong"))
            .delete("/api/emergency/100")?
            .status,
        401
    );

    let records = audit_lines(switchboard.cdr_dir())?;
    let seen: Vec<(String, String, String, String)> = records
        .iter()
        .map(|r| {
            let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (
                text(&r["who"]["token"]),
                text(&r["action"]),
                text(&r["target"]),
                text(&r["result"]),
            )
        })
        .collect();
    let expected = [
        ("ops-desk", "ban-lift", "192.0.2.1", "ok"),
        ("ops-desk", "ban-lift", "not-an-ip", "invalid_address"),
        ("ops-desk", "call-hold", "77", "unknown_call"),
        ("ops-desk", "call-resume", "77", "unknown_call"),
        ("ops-desk", "call-transfer", "77 to 1002", "unknown_call"),
        ("ops-desk", "call-transfer", "77", "bad_request"),
        ("floor-lead", "emergency-clear", "100", "ok"),
        ("floor-lead", "agent-state", "1002", "bad_request"),
    ]
    .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()));
    assert_eq!(seen, expected);
    assert!(
        records.iter().all(|r| r["from"] == "127.0.0.1"),
        "{records:?}"
    );
    Ok(())
}

#[test]
fn a_feature_code_is_audited_with_the_agent_and_the_phones_address() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    register_agent(&switchboard, "1001", free_port()?)?;
    dial_feature_code(&switchboard, "1001", "*222", None, "feature_code.xml")?.ensure_success()?;
    // Call control queues its record without waiting; the writer keeps order, so once this
    // later, awaited record (GET /api/calls reads callers' numbers) is on disk, so is it.
    switchboard
        .api()
        .with_token(Some(ADMIN_SECRET))
        .get("/api/calls")?
        .expect_status(200, "listing calls")?;
    let records = audit_lines(switchboard.cdr_dir())?;
    let states = with_action(&records, "agent-state");
    assert_eq!(states.len(), 1, "{records:?}");
    let record = states[0];
    assert_eq!(record["who"]["agent"], "1001", "{record}");
    assert_eq!(record["who"]["role"], "agent", "{record}");
    assert_eq!(record["who"]["token"], Value::Null, "{record}");
    assert_eq!(record["from"], "127.0.0.1", "{record}");
    assert_eq!(
        record["target"], "1001 not-ready (lunch) by *222",
        "{record}"
    );
    assert_eq!(record["result"], "ok", "{record}");
    let reads = with_action(&records, "calls-read");
    assert_eq!(reads.len(), 1, "{records:?}");
    assert_by_ops_desk(reads[0], "0 calls");
    Ok(())
}

#[test]
fn a_refused_token_is_logged_with_its_source_and_counted() -> HarnessResult<()> {
    let switchboard = Switchboard::start(config())?;
    let stranger = switchboard.api().with_token(Some("not-a-token"));
    let refused = stranger.get("/api/agents")?;
    assert_eq!(refused.status, 401, "{}", refused.body);
    // The plain secret of a hashed token is what works; its digest is no token at all.
    let digest_as_token = switchboard.api().with_token(Some(ADMIN_SHA256));
    assert_eq!(digest_as_token.get("/api/agents")?.status, 401);
    let anonymous = switchboard.api().with_token(None).get("/api/agents")?;
    assert_eq!(anonymous.status, 401);

    switchboard.wait_for_log(
        "security event=auth-failure src=127.0.0.1",
        std::time::Duration::from_secs(30),
    )?;
    let log = switchboard.log();
    assert_eq!(
        log.matches("transport=HTTP reason=\"invalid-token\"")
            .count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("transport=HTTP reason=\"missing-token\"")
            .count(),
        1,
        "{log}"
    );
    let metrics = switchboard.api().metrics()?;
    assert_eq!(
        metrics.counter(
            "switchboard_api_auth_failures_total",
            &[("reason", "invalid-token")]
        ),
        2.0
    );
    assert_eq!(
        metrics.counter(
            "switchboard_api_auth_failures_total",
            &[("reason", "missing-token")]
        ),
        1.0
    );
    Ok(())
}

#[test]
fn hash_token_prints_the_sha256_a_config_needs() -> HarnessResult<()> {
    let run = |input: &str| -> HarnessResult<std::process::Output> {
        let mut child = Command::new(switchboard_binary()?)
            .arg("hash-token")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::io("starting switchboard hash-token", e))?;
        child
            .stdin
            .take()
            .ok_or_else(|| HarnessError::Unexpected("no stdin".into()))?
            .write_all(input.as_bytes())
            .map_err(|e| HarnessError::io("writing the token", e))?;
        child
            .wait_with_output()
            .map_err(|e| HarnessError::io("waiting for hash-token", e))
    };
    let output = run(&format!("{ADMIN_SECRET}\n"))?;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{ADMIN_SHA256}\n")
    );
    let empty = run("")?;
    assert_eq!(empty.status.code(), Some(2), "{empty:?}");
    assert!(String::from_utf8_lossy(&empty.stderr).contains("expected one token"));
    Ok(())
}
