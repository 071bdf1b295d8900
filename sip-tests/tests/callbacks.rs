//! Callbacks that call back. A caller (a Rust trunk sending its own RTP) waits in `support`,
//! presses the callback key as RFC 4733 and hears Switchboard hang up. When agent 1001 (a
//! SIPp phone) becomes Ready the callback is offered to them first: their phone rings with
//! `callback 2000` in the From (the preview; answering accepts). Then the customer is dialled
//! through the `[[route]]` to a SIPp carrier: busy (486) the first time, so the agent is
//! released and the callback tried again after `callback_retry_s`; answered the second time
//! and bridged. The callback's CDR lists both attempts and the outcome, and
//! `GET /api/callbacks` shows it (to supervisors and admins only). While a callback's customer
//! rings (the test itself plays the carrier there) it is a live call out of `origin: "callback"`
//! in `GET /api/calls`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sip_tests::cdr::{of_type, wait_for_records};
use sip_tests::dialog::response_text;
use sip_tests::paths::switchboard_binary;
use sip_tests::ports::free_port;
use sip_tests::rtp::{event_code, pcmu_offer, RtpPeer, RtpStream};
use sip_tests::uac::place_media_call;
use sip_tests::{
    start_agent_for_calls, HarnessError, HarnessResult, Sipp, Switchboard, SwitchboardConfig,
    UdpPeer,
};

const WAIT: Duration = Duration::from_secs(60);

const TOKENS: &str = "\n[[http.token]]\ntoken = \"analyst-token\"\nrole = \"analyst\"\n";

/// `support` answers callers itself and offers the callback key; the caller's number (2000)
/// routes to the carrier on `carrier_port`.
fn config(carrier_port: u16, max_attempts: u32) -> SwitchboardConfig {
    SwitchboardConfig {
        support_queue_lines: vec![
            "answer = \"on-queue\"".to_owned(),
            "callback_key = \"*\"".to_owned(),
            "callback_retry_s = 2".to_owned(),
            format!("callback_max_attempts = {max_attempts}"),
        ],
        extra_toml: format!(
            "[[trunk]]\nname = \"carrier\"\ngateway = \"127.0.0.1:{carrier_port}\"\n\n\
             [[route]]\nprefix = \"2000\"\ntrunks = [\"carrier\"]\ncaller_id = \"4000100\"\n{TOKENS}"
        ),
        ..SwitchboardConfig::default()
    }
}

/// The caller of `did` presses `*` (RFC 4733) and is hung up on after the confirmation.
fn request_callback(switchboard: &Switchboard) -> HarnessResult<()> {
    let rtp = RtpPeer::bind()?;
    let sip = UdpPeer::bind(0, switchboard.sip_addr())?;
    let (call, relay): (_, SocketAddr) =
        place_media_call(&sip, "100", &pcmu_offer(rtp.port()?, true), WAIT)?;
    switchboard
        .api()
        .wait_for_queue("support", "holding the caller", WAIT, |q| {
            q.get("waiting").and_then(Value::as_u64) == Some(1)
        })?;
    let mut stream = RtpStream::new(0x0cb0_0001);
    let star = event_code('*').ok_or_else(|| HarnessError::Unexpected("no code for *".into()))?;
    let mut packets: Vec<Vec<u8>> = (0..3).map(|_| stream.audio(0, &[0xff; 160])).collect();
    packets.extend(stream.key_press(101, star));
    for packet in &packets {
        rtp.send_to(packet, relay)?;
        // RTP is paced as a phone sends it (20 ms a packet).
        std::thread::sleep(Duration::from_millis(20));
    }
    call.wait_for_bye(WAIT)?;
    Ok(())
}

/// The callback's record (the one with a `callback` object), once it is written.
fn callback_record(switchboard: &Switchboard) -> HarnessResult<Value> {
    let has_callback = |r: &&Value| r.get("callback").is_some_and(|c| !c.is_null());
    let records = wait_for_records(
        switchboard.cdr_dir(),
        "a callback record",
        WAIT,
        |records| of_type(records, "call").iter().any(has_callback),
    )?;
    of_type(&records, "call")
        .into_iter()
        .find(has_callback)
        .cloned()
        .ok_or_else(|| HarnessError::Unexpected("no callback record".into()))
}

/// `switchboard report` (table) over the CDRs of yesterday to tomorrow (UTC).
fn text_report(switchboard: &Switchboard) -> HarnessResult<String> {
    let today = time::OffsetDateTime::now_utc().date();
    let output = switchboard.dir().join("report.txt");
    let run = Command::new(switchboard_binary()?)
        .args(["report", "--dir"])
        .arg(switchboard.cdr_dir())
        .args(["--from", &today.previous_day().unwrap_or(today).to_string()])
        .args(["--to", &today.next_day().unwrap_or(today).to_string()])
        .args(["--format", "table", "--output"])
        .arg(&output)
        .output()
        .map_err(|e| HarnessError::io("running switchboard report", e))?;
    if !run.status.success() {
        return Err(HarnessError::Unexpected(format!(
            "switchboard report failed: {}",
            String::from_utf8_lossy(&run.stderr)
        )));
    }
    std::fs::read_to_string(&output).map_err(|e| HarnessError::io("reading the report", e))
}

/// The next request `method` that reaches `peer` (retransmissions and others skipped).
fn next_request(peer: &UdpPeer, method: &str) -> HarnessResult<sip_tests::SipMessage> {
    let deadline = std::time::Instant::now() + WAIT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        if let Some(message) = peer.recv(left)? {
            if message.method() == Some(method) {
                return Ok(message);
            }
        }
    }
    Err(HarnessError::Unexpected(format!(
        "no {method} within {} s",
        WAIT.as_secs()
    )))
}

fn callbacks(switchboard: &Switchboard) -> HarnessResult<Vec<Value>> {
    let listed = switchboard
        .api()
        .get("/api/callbacks")?
        .expect_status(200, "callbacks")?
        .json()?;
    Ok(listed["callbacks"].as_array().cloned().unwrap_or_default())
}

#[test]
fn a_callback_reserves_the_agent_then_dials_the_customer_and_retries_on_busy() -> HarnessResult<()>
{
    let carrier_port = free_port()?;
    let switchboard = Switchboard::start(config(carrier_port, 3))?;
    let api = switchboard.api();
    // Two previews: the first attempt (busy) and the retry (answered).
    let agent =
        start_agent_for_calls(&switchboard, "1001", "callback_preview_answer.xml", 2, WAIT)?;
    api.set_not_ready("1001", "break")?;

    request_callback(&switchboard)?;
    // The callback kept the caller's place: it waits in the queue without any call.
    api.wait_for_queue("support", "waiting callback", WAIT, |q| {
        q.get("waiting").and_then(Value::as_u64) == Some(1)
    })?;
    let pending = callbacks(&switchboard)?;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["state"], "waiting");
    assert_eq!(pending[0]["number"], "2000");
    assert_eq!(pending[0]["queue"], "support");
    // Supervisors and admins only.
    let refused = api
        .with_token(Some("analyst-token"))
        .get("/api/callbacks")?;
    assert_eq!(refused.status, 403, "{}", refused.body);

    // First attempt: the customer's line is busy.
    let busy = Sipp::server("agent_busy.xml", carrier_port, switchboard.dir())?
        .service("carrier")
        .calls(1)
        .timeout(WAIT)
        .spawn()?;
    api.set_ready("1001")?;
    busy.wait()?.ensure_success()?;
    // Second attempt, after callback_retry_s: answered (then the customer hangs up).
    let answering = Sipp::server(
        "callback_customer_answer.xml",
        carrier_port,
        switchboard.dir(),
    )?
    .service("carrier")
    .calls(1)
    .timeout(WAIT)
    .arg("-d")
    .arg("500")
    .spawn()?;
    answering.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;

    let record = callback_record(&switchboard)?;
    let callback = &record["callback"];
    assert_eq!(callback["number"], "2000", "{record}");
    assert_eq!(callback["queue"], "support", "{record}");
    assert_eq!(callback["outcome"], "connected", "{record}");
    let attempts = callback["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{record}");
    assert_eq!(attempts[0]["result"], "busy", "{record}");
    assert_eq!(attempts[0]["sip_cause"], 486, "{record}");
    assert_eq!(attempts[0]["agent"], "1001", "{record}");
    assert_eq!(attempts[0]["trunk"], "carrier", "{record}");
    assert_eq!(attempts[1]["result"], "answered", "{record}");
    assert_eq!(record["disposition"], "answered", "{record}");
    assert_eq!(record["agent"], "1001", "{record}");
    assert_eq!(record["direction"], "outbound", "{record}");

    let listed = callbacks(&switchboard)?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["state"], "finished");
    assert_eq!(listed[0]["outcome"], "connected");
    let connected = api.metrics()?.counter(
        "switchboard_outbound_calls_total",
        &[("result", "callback-connected")],
    );
    assert_eq!(connected, 1.0);

    // The text report's Callbacks section: one request, connected after two attempts.
    let report = text_report(&switchboard)?;
    let section = report
        .split("\nCallbacks\n")
        .nth(1)
        .ok_or_else(|| HarnessError::Unexpected(format!("no Callbacks section:\n{report}")))?;
    let support: Vec<&str> = section
        .lines()
        .find(|line| line.starts_with("support"))
        .map(|line| line.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(support, ["support", "1", "1", "0", "0", "2"], "{report}");
    Ok(())
}

#[test]
fn a_callback_is_given_up_after_its_last_attempt() -> HarnessResult<()> {
    let carrier_port = free_port()?;
    let switchboard = Switchboard::start(config(carrier_port, 1))?;
    let api = switchboard.api();
    let agent =
        start_agent_for_calls(&switchboard, "1001", "callback_preview_answer.xml", 1, WAIT)?;
    api.set_not_ready("1001", "break")?;
    request_callback(&switchboard)?;
    api.wait_for_queue("support", "waiting callback", WAIT, |q| {
        q.get("waiting").and_then(Value::as_u64) == Some(1)
    })?;
    // The carrier is the test itself: it keeps the customer's line ringing while the call is
    // looked at, then answers busy.
    let carrier = UdpPeer::bind(carrier_port, switchboard.sip_addr())?;
    api.set_ready("1001")?;
    let invite = next_request(&carrier, "INVITE")?;
    let tag = "carrier-1";
    let contact = carrier.local_addr()?;
    carrier.send(&response_text(
        &invite,
        180,
        "Ringing",
        tag,
        contact,
        &[],
        "",
    ))?;
    // Meanwhile the callback is a live call out, and says it is a callback.
    let live = api.wait_for("the callback dialling in GET /api/calls", WAIT, || {
        let calls = api.get("/api/calls")?.json()?;
        let dialling = calls["calls"]
            .as_array()
            .and_then(|calls| calls.iter().find(|c| c["state"] == "dialling"))
            .cloned();
        Ok(dialling)
    })?;
    assert_eq!(live["origin"], "callback", "{live}");
    assert_eq!(live["direction"], "outbound", "{live}");
    assert_eq!(live["did"], "2000", "{live}");
    assert_eq!(live["agent"], "1001", "{live}");
    assert_eq!(live["legs"][1]["party"], "carrier", "{live}");
    assert_eq!(live["legs"][1]["state"], "ringing", "{live}");
    // The screen pop's history is the customer's (2000, who asked for the callback), not that
    // of the number Switchboard sends as caller ID.
    let id = live["id"].as_u64().unwrap_or_default();
    let history = api.wait_for("the customer's previous call in the history", WAIT, || {
        let history = api.get(&format!("/api/calls/{id}/history"))?.json()?;
        let found = history["previous"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        Ok(found.then_some(history))
    })?;
    assert_eq!(
        history["previous"][0]["disposition"], "callback-requested",
        "{history}"
    );
    carrier.send(&response_text(
        &invite,
        486,
        "Busy Here",
        tag,
        contact,
        &[],
        "",
    ))?;
    next_request(&carrier, "ACK")?;
    agent.wait()?.ensure_success()?;

    let record = callback_record(&switchboard)?;
    assert_eq!(record["callback"]["outcome"], "not-reached", "{record}");
    assert_eq!(
        record["callback"]["attempts"][0]["result"], "busy",
        "{record}"
    );
    assert_eq!(
        record["callback"]["attempts"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
    // Nothing is left waiting, and the agent is free again.
    api.wait_for_queue("support", "no callback waiting", WAIT, |q| {
        q.get("waiting").and_then(Value::as_u64) == Some(0)
    })?;
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    let listed = callbacks(&switchboard)?;
    assert_eq!(listed[0]["outcome"], "not-reached", "{listed:?}");
    Ok(())
}

#[test]
fn a_callback_waits_for_its_queue_calling_window_to_open() -> HarnessResult<()> {
    // Open only the day after tomorrow (UTC): closed for at least a day from now.
    let day = time::OffsetDateTime::now_utc().date() + time::Duration::days(2);
    let weekday = day.weekday().to_string()[..3].to_ascii_lowercase();
    let carrier_port = free_port()?;
    let mut config = config(carrier_port, 3);
    config
        .support_queue_lines
        .push("callback_schedule = \"later\"".to_owned());
    config.extra_toml.push_str(&format!(
        "\n[[schedule]]\nname = \"later\"\ntime_zone = \"UTC\"\nopen = [\"{weekday} 00:00-24:00\"]\n"
    ));
    let switchboard = Switchboard::start(config)?;
    let api = switchboard.api();
    let _agent =
        start_agent_for_calls(&switchboard, "1001", "callback_preview_answer.xml", 1, WAIT)?;
    api.set_not_ready("1001", "break")?;
    request_callback(&switchboard)?;
    // Out of its window the callback does not wait in the queue: no agent is reserved for it.
    let pending = api.wait_for("the callback waiting for its window", WAIT, || {
        let listed = callbacks(&switchboard)?;
        Ok(listed
            .first()
            .filter(|c| c["state"] == "retry-wait")
            .cloned())
    })?;
    let opens_in = pending["next_attempt_in_s"].as_f64().unwrap_or_default();
    assert!(opens_in > 86_000.0, "opens in {opens_in} s: {pending}");
    assert_eq!(
        pending["attempts"].as_array().map(Vec::len),
        Some(0),
        "{pending}"
    );
    api.set_ready("1001")?;
    let queue = api.queue("support")?;
    assert_eq!(queue["waiting"], 0, "{queue}");
    let agent = api.wait_for_agent_state("1001", "ready", WAIT)?;
    assert_eq!(agent["state"], "ready", "{agent}");
    Ok(())
}

#[test]
fn a_pending_callback_survives_a_restart() -> HarnessResult<()> {
    let carrier_port = free_port()?;
    let mut switchboard = Switchboard::start(config(carrier_port, 3))?;
    let api = switchboard.api();
    let _agent =
        start_agent_for_calls(&switchboard, "1001", "callback_preview_answer.xml", 1, WAIT)?;
    api.set_not_ready("1001", "break")?;
    request_callback(&switchboard)?;
    api.wait_for_queue("support", "waiting callback", WAIT, |q| {
        q.get("waiting").and_then(Value::as_u64) == Some(1)
    })?;
    let before = callbacks(&switchboard)?;
    // The journal next to the CDRs holds it before the process dies without warning.
    let journal = switchboard.cdr_dir().join("callbacks.json");
    api.wait_for("the callback journalled", WAIT, || {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        Ok(text.contains("\"2000\"").then_some(()))
    })?;
    switchboard.kill()?;
    switchboard.restart()?;
    let after = callbacks(&switchboard)?;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["state"], "waiting", "{after:?}");
    assert_eq!(after[0]["number"], "2000", "{after:?}");
    assert_eq!(
        after[0]["requested_by"], before[0]["requested_by"],
        "{after:?}"
    );
    let queue = api.queue("support")?;
    assert_eq!(queue["waiting"], 1, "{queue}");
    Ok(())
}
