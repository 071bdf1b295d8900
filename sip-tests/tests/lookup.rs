//! The caller lookup hook (`[lookup]`) against a small CRM in the test: a fast answer makes the
//! waiting call a VIP (priority, label and customer name in the API, the agent's INVITE and
//! the CDR) and is cached; a preferred agent from a POST lookup is waited for; a silent,
//! failing, non-JSON or oversized CRM leaves the call unchanged and is counted by result.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sip_tests::cdr::{str_field, wait_for_call};
use sip_tests::crm::{Crm, CrmReply};
use sip_tests::trace::call_ids;
use sip_tests::{
    start_agent_for_calls, AgentAccount, HarnessError, HarnessResult, SippProcess, Switchboard,
    SwitchboardConfig,
};

/// How long a phone, a call, a record or an API change may take: the machine is shared.
const WAIT: Duration = Duration::from_secs(90);

/// Agents 1001 and 1002 in `support`, lookups against `crm` with `lookup_lines`, and an
/// analyst token.
fn config(crm: &Crm, lookup_lines: &str) -> SwitchboardConfig {
    SwitchboardConfig {
        agents: vec![
            AgentAccount::new("1001", "Alice"),
            AgentAccount::new("1002", "Bob"),
        ],
        support_queue_lines: vec!["preferred_agent_wait_s = 60".into()],
        extra_toml: format!(
            "\n[[http.token]]\ntoken = \"analyst-token\"\nrole = \"analyst\"\n\n[lookup]\nurl = \"{}\"\n{lookup_lines}",
            crm.url()
        ),
        ..SwitchboardConfig::default()
    }
}

/// A call from `caller` to DID 100, hung up by the caller 200 ms after the answer.
fn spawn_call(switchboard: &Switchboard, caller: &str) -> HarnessResult<SippProcess> {
    switchboard
        .sipp_client("trunk_call_as.xml")?
        .service("100")
        .set("caller", caller)
        .set("priority", "none")
        .arg("-d")
        .arg("200")
        .timeout(WAIT)
        .spawn()
}

/// Waits for the call to end well and returns its CDR.
fn finished_record(switchboard: &Switchboard, call: SippProcess) -> HarnessResult<Value> {
    let run = call.wait()?;
    run.ensure_success()?;
    let trunk_call_id = call_ids(&run.messages())
        .into_iter()
        .next()
        .ok_or_else(|| HarnessError::Unexpected("no Call-ID in the trunk trace".into()))?;
    wait_for_call(switchboard.cdr_dir(), &trunk_call_id, WAIT)
}

/// Re-reads `GET /api/calls` (as `token`, admin when `None`) until a call satisfies `check`.
fn wait_for_listed_call(
    switchboard: &Switchboard,
    token: Option<&str>,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> HarnessResult<Value> {
    let api = switchboard.api();
    let api = match token {
        Some(token) => api.with_token(Some(token)),
        None => api,
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = api.get("/api/calls")?.json()?;
        let found = listed["calls"]
            .as_array()
            .and_then(|calls| calls.iter().find(|call| check(call)).cloned());
        if let Some(call) = found {
            return Ok(call);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Unexpected(format!(
                "no listed call {what}: {listed}"
            )));
        }
        // Polling the API is the only way to see a call's fields change.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lookups(switchboard: &Switchboard, result: &str) -> HarnessResult<f64> {
    Ok(switchboard
        .api()
        .metrics()?
        .counter("switchboard_lookup_total", &[("result", result)]))
}

#[test]
fn a_fast_answer_makes_the_waiting_call_a_vip_and_is_reused_from_the_cache() -> HarnessResult<()> {
    let crm = Crm::start(
        HashMap::new(),
        CrmReply::Json(
            r#"{"priority": 50, "label": "vip", "customer_name": "Li Wei", "language": "zh", "tier": "gold"}"#
                .into(),
        ),
    )?;
    let switchboard = Switchboard::start(config(&crm, ""))?;
    let api = switchboard.api();
    let mut phone = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 2, WAIT)?;
    api.set_not_ready("1001", "break")?;

    let call = spawn_call(&switchboard, "5550001")?;
    // The answer reaches the waiting call: the API shows it (the name masked for analysts).
    let listed = wait_for_listed_call(&switchboard, None, "labelled vip", |call| {
        call["label"] == "vip"
    })?;
    assert_eq!(listed["customer_name"], "Li Wei", "{listed}");
    assert_eq!(listed["priority"], 50, "{listed}");
    assert_eq!(listed["state"], "queued", "{listed}");
    let analyst = wait_for_listed_call(&switchboard, Some("analyst-token"), "any", |_| true)?;
    assert_eq!(analyst["customer_name"], "****", "{analyst}");
    let requests = crm.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0]
            .request_line
            .starts_with("GET /caller?caller=5550001&did=100 "),
        "{requests:?}"
    );

    api.set_ready("1001")?;
    let record = finished_record(&switchboard, call)?;
    assert_eq!(record.get("priority"), Some(&json!(50)), "{record}");
    assert_eq!(str_field(&record, "label"), Some("vip"), "{record}");
    assert_eq!(
        str_field(&record, "customer_name"),
        Some("Li Wei"),
        "{record}"
    );
    phone.wait_for_request("INVITE", 1, WAIT)?;
    let offered = phone.messages();
    assert!(offered.contains("X-Switchboard-Label: vip"), "{offered}");
    assert!(
        offered.contains("X-Switchboard-Customer: Li Wei"),
        "{offered}"
    );
    assert_eq!(lookups(&switchboard, "ok")?, 1.0);

    // The same caller again within cache_s: answered from the cache, the CRM is not asked.
    // 1001 is Ready, so the call is offered before the cached answer is applied: the label
    // and name still reach the record, the routing (priority) no longer changes.
    let record = finished_record(&switchboard, spawn_call(&switchboard, "5550001")?)?;
    assert_eq!(str_field(&record, "label"), Some("vip"), "{record}");
    assert_eq!(
        str_field(&record, "customer_name"),
        Some("Li Wei"),
        "{record}"
    );
    assert_eq!(record.get("priority"), Some(&json!(0)), "{record}");
    assert_eq!(crm.requests().len(), 1, "{:?}", crm.requests());
    assert_eq!(lookups(&switchboard, "cached")?, 1.0);
    phone.wait()?.ensure_success()?;
    Ok(())
}

#[test]
fn a_preferred_agent_from_a_post_lookup_is_waited_for() -> HarnessResult<()> {
    let crm = Crm::start(
        HashMap::new(),
        CrmReply::Json(r#"{"preferred_agent": "1002", "customer_name": "Ana"}"#.into()),
    )?;
    let switchboard = Switchboard::start(config(&crm, "method = \"POST\"\n"))?;
    let api = switchboard.api();
    let phone_1001 = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 1, WAIT)?;
    let phone_1002 = start_agent_for_calls(&switchboard, "1002", "agent_answer.xml", 1, WAIT)?;
    api.set_not_ready("1001", "break")?;
    api.set_not_ready("1002", "break")?;

    let call = spawn_call(&switchboard, "5550002")?;
    wait_for_listed_call(&switchboard, None, "with the CRM's name", |call| {
        call["customer_name"] == "Ana"
    })?;
    let requests = crm.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].request_line.starts_with("POST /caller "),
        "{requests:?}"
    );
    let body: Value = serde_json::from_str(&requests[0].body)
        .map_err(|e| HarnessError::Unexpected(format!("POST body not JSON: {e}")))?;
    assert_eq!(body, json!({ "caller": "5550002", "did": "100" }));

    // 1001 is Ready first, yet the call keeps waiting for 1002 (set_ready returns once the
    // core has made any offer it leads to).
    api.set_ready("1001")?;
    assert_eq!(api.queue("support")?.get("waiting"), Some(&json!(1)));
    api.set_ready("1002")?;
    let record = finished_record(&switchboard, call)?;
    assert_eq!(str_field(&record, "agent"), Some("1002"), "{record}");
    assert_eq!(
        str_field(&record, "preferred_agent"),
        Some("1002"),
        "{record}"
    );
    assert_eq!(record.get("preferred_agent_taken"), Some(&json!(true)));
    phone_1002.wait()?.ensure_success()?;
    assert!(
        phone_1001.messages().is_empty(),
        "{}",
        phone_1001.messages()
    );
    Ok(())
}

#[test]
fn slow_failing_and_invalid_answers_leave_the_call_unchanged_and_are_counted() -> HarnessResult<()>
{
    let too_large = format!(
        r#"{{"label": "vip", "notes": "{}"}}"#,
        "x".repeat(20 * 1024)
    );
    let crm = Crm::start(
        HashMap::from([
            ("5550011".to_owned(), CrmReply::Silent),
            ("5550012".to_owned(), CrmReply::Status(500)),
            (
                "5550013".to_owned(),
                CrmReply::Html("<html>vip</html>".into()),
            ),
            ("5550014".to_owned(), CrmReply::Json(too_large)),
        ]),
        CrmReply::Status(404),
    )?;
    let switchboard = Switchboard::start(config(&crm, "timeout_ms = 300\n"))?;
    let phone = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 4, WAIT)?;
    for (caller, result, log) in [
        ("5550011", "timeout", "caller lookup timed out"),
        ("5550012", "error", "the CRM answered HTTP 500"),
        ("5550013", "invalid", "not JSON"),
        ("5550014", "invalid", "answer larger than 16384 bytes"),
    ] {
        let record = finished_record(&switchboard, spawn_call(&switchboard, caller)?)?;
        assert_eq!(str_field(&record, "agent"), Some("1001"), "{record}");
        assert_eq!(
            record.get("label"),
            Some(&Value::Null),
            "{caller}: {record}"
        );
        assert_eq!(record.get("customer_name"), Some(&Value::Null), "{record}");
        assert_eq!(record.get("priority"), Some(&json!(0)), "{record}");
        // The lookup may end after the call did; its log line says it has.
        switchboard.wait_for_log(log, WAIT)?;
        assert!(lookups(&switchboard, result)? >= 1.0, "{caller}: {result}");
    }
    assert_eq!(lookups(&switchboard, "timeout")?, 1.0);
    assert_eq!(lookups(&switchboard, "error")?, 1.0);
    assert_eq!(lookups(&switchboard, "invalid")?, 2.0);
    assert_eq!(lookups(&switchboard, "ok")?, 0.0);
    assert_eq!(crm.requests().len(), 4, "failures are not cached");
    phone.wait()?.ensure_success()?;
    Ok(())
}

#[test]
fn an_agent_the_configuration_does_not_know_is_ignored() -> HarnessResult<()> {
    let crm = Crm::start(
        HashMap::new(),
        CrmReply::Json(r#"{"preferred_agent": "9999", "label": "gold"}"#.into()),
    )?;
    let switchboard = Switchboard::start(config(&crm, ""))?;
    let api = switchboard.api();
    let phone = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 1, WAIT)?;
    api.set_not_ready("1001", "break")?;
    let call = spawn_call(&switchboard, "5550003")?;
    wait_for_listed_call(&switchboard, None, "labelled gold", |call| {
        call["label"] == "gold"
    })?;
    switchboard.wait_for_log("caller lookup named an unknown agent", WAIT)?;
    // Nobody is waited for: 1001 takes the call as soon as it is Ready.
    api.set_ready("1001")?;
    let record = finished_record(&switchboard, call)?;
    assert_eq!(str_field(&record, "agent"), Some("1001"), "{record}");
    assert_eq!(
        record.get("preferred_agent"),
        Some(&Value::Null),
        "{record}"
    );
    assert_eq!(lookups(&switchboard, "ok")?, 1.0);
    phone.wait()?.ensure_success()?;
    Ok(())
}
