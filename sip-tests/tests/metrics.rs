//! `GET /metrics`: after a known set of calls (rejected without agents, unknown number, answered,
//! abandoned) the call counters, histograms and gauges equal what was done, SIP message counters
//! saw at least those messages, and every metric in docs/metrics.md is served.

use std::time::Duration;

use sip_tests::{
    register_agent, start_agent, HarnessResult, Metrics, Switchboard, SwitchboardConfig,
};

const WAIT: Duration = Duration::from_secs(90);

/// Every metric docs/metrics.md lists, by the sample name that must be served (histograms by
/// their `_count`).
const DOCUMENTED: &[&str] = &[
    "switchboard_calls_offered_total",
    "switchboard_calls_answered_total",
    "switchboard_calls_abandoned_total",
    "switchboard_calls_rejected_total",
    "switchboard_queue_wait_seconds_count",
    "switchboard_queue_abandon_wait_seconds_count",
    "switchboard_talk_seconds_count",
    "switchboard_queue_waiting_calls",
    "switchboard_queue_longest_wait_seconds",
    "switchboard_agents",
    "switchboard_active_calls",
    "switchboard_sip_transactions",
    "switchboard_registrations",
    "switchboard_sip_requests_total",
    "switchboard_sip_responses_total",
    "switchboard_sip_malformed_total",
    "switchboard_sip_dropped_overload_total",
    "switchboard_sip_connections",
    "switchboard_draining",
    "switchboard_audit_errors_total",
    "switchboard_config_reloads_total",
    "switchboard_audit_postgres_failures_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
];

/// `value` of a sample that must be served.
fn served(metrics: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .get(name, labels)
        .unwrap_or_else(|| panic!("{name}{labels:?} not served; scrape:\n{}", metrics.text))
}

#[test]
fn counters_match_the_calls_made() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig::default())?;
    let api = switchboard.api();
    let before = api.metrics()?;
    assert_eq!(
        before.sum("switchboard_calls_offered_total", &[]),
        0.0,
        "a fresh instance has offered nothing"
    );

    // 1. No agent logged in: rejected with 480 (offered to the queue first).
    switchboard
        .sipp_client("expect_480.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    // 2. Unknown number: 404, never reaches a queue.
    switchboard
        .sipp_client("expect_404.xml")?
        .service("999")
        .run()?
        .ensure_success()?;
    // 3. Answered by Alice.
    let agent = start_agent(&switchboard, "1001", "agent_answer.xml", WAIT)?;
    switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .arg("-d")
        .arg("200")
        .run()?
        .ensure_success()?;
    agent.wait()?.ensure_success()?;
    // 4. Alice not ready: the caller gives up while waiting.
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    api.set_not_ready("1001", "break")?;
    switchboard
        .sipp_client("trunk_cancel.xml")?
        .service("100")
        .run()?
        .ensure_success()?;
    // Bob logs in and out again, so he is counted logged-out, as before.
    register_agent(&switchboard, "1002", sip_tests::ports::free_port()?)?;
    api.log_out("1002")?;

    let metrics = api.metrics()?;
    let support = [("queue", "support")];
    let exact = [
        (
            "switchboard_calls_offered_total",
            vec![("queue", "support"), ("trunk", "t1")],
            3.0,
        ),
        ("switchboard_calls_answered_total", support.to_vec(), 1.0),
        ("switchboard_calls_abandoned_total", support.to_vec(), 1.0),
        (
            "switchboard_calls_rejected_total",
            vec![("reason", "no-agents")],
            1.0,
        ),
        (
            "switchboard_calls_rejected_total",
            vec![("reason", "unknown-number")],
            1.0,
        ),
        (
            "switchboard_queue_wait_seconds_count",
            support.to_vec(),
            1.0,
        ),
        (
            "switchboard_queue_abandon_wait_seconds_count",
            support.to_vec(),
            1.0,
        ),
        ("switchboard_talk_seconds_count", support.to_vec(), 1.0),
        ("switchboard_queue_waiting_calls", support.to_vec(), 0.0),
        (
            "switchboard_queue_longest_wait_seconds",
            support.to_vec(),
            0.0,
        ),
        (
            "switchboard_agents",
            vec![("queue", "support"), ("state", "not-ready")],
            1.0,
        ),
        (
            "switchboard_agents",
            vec![("queue", "support"), ("state", "logged-out")],
            1.0,
        ),
        (
            "switchboard_agents",
            vec![("queue", "support"), ("state", "ready")],
            0.0,
        ),
        (
            "switchboard_agents",
            vec![("queue", "support"), ("state", "on-call")],
            0.0,
        ),
        ("switchboard_active_calls", Vec::new(), 0.0),
        ("switchboard_draining", Vec::new(), 0.0),
        ("switchboard_sip_malformed_total", Vec::new(), 0.0),
    ];
    for (name, labels, expected) in &exact {
        assert_eq!(
            served(&metrics, name, labels),
            *expected,
            "{name}{labels:?}; scrape:\n{}",
            metrics.text
        );
    }
    assert_eq!(
        metrics.sum("switchboard_calls_rejected_total", &[]),
        2.0,
        "only the two refused calls are rejected; scrape:\n{}",
        metrics.text
    );
    assert_eq!(
        metrics.sum("switchboard_calls_offered_total", &[]),
        3.0,
        "the unknown number is not offered to any queue"
    );
    // Alice's and Bob's registrations: Bob's binding stays although he logged out.
    assert!(served(&metrics, "switchboard_registrations", &[]) >= 1.0);

    // SIP counters: at least what the calls needed (retransmissions may add to them). ACKs to
    // non-2xx answers end their INVITE transaction and may not be counted: only the ACK of the
    // answered call is required.
    let at_least = [
        (vec![("direction", "in"), ("method", "INVITE")], 4.0),
        (vec![("direction", "in"), ("method", "ACK")], 1.0),
        (vec![("direction", "in"), ("method", "BYE")], 1.0),
        (vec![("direction", "in"), ("method", "CANCEL")], 1.0),
        (vec![("direction", "in"), ("method", "REGISTER")], 4.0),
        (vec![("direction", "out"), ("method", "INVITE")], 1.0),
        (vec![("direction", "out"), ("method", "BYE")], 1.0),
    ];
    // Every shortfall is collected, so one run shows all of them.
    let mut problems: Vec<String> = at_least
        .iter()
        .filter_map(|(labels, minimum)| {
            let value = metrics.counter("switchboard_sip_requests_total", labels);
            (value < *minimum).then(|| {
                format!("switchboard_sip_requests_total{labels:?} = {value}, expected >= {minimum}")
            })
        })
        .collect();
    for (direction, code, minimum) in [
        ("out", "100", 3.0),
        ("out", "180", 2.0),
        ("out", "200", 3.0),
        ("out", "404", 1.0),
        ("out", "480", 1.0),
        ("out", "487", 1.0),
        ("out", "401", 2.0),
        ("in", "180", 1.0),
        ("in", "200", 2.0),
    ] {
        let value = metrics.counter(
            "switchboard_sip_responses_total",
            &[("direction", direction), ("code", code)],
        );
        if value < minimum {
            problems.push(format!(
                "switchboard_sip_responses_total{{direction={direction},code={code}}} = {value}, expected >= {minimum}"
            ));
        }
    }
    problems.extend(
        DOCUMENTED
            .iter()
            .filter(|name| !metrics.has(name))
            .map(|name| format!("{name} (docs/metrics.md) not served")),
    );
    assert!(
        problems.is_empty(),
        "{}\nscrape:\n{}",
        problems.join("\n"),
        metrics.text
    );
    Ok(())
}
