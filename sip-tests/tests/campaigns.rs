//! Return-visit campaigns against SIPp "customers" behind three carriers (one per number):
//! 2001 answers, 2002 is busy (486) every time, 2004 rings without answering. Agent 1001 is a
//! SIPp phone. A preview campaign rings the agent with `campaign return-visit <number>` before
//! each dial; a progressive one asks the phone to answer at once (`answer-after=0`). In both
//! the agent is reserved before the customer is dialled, a busy contact is retried after
//! `retry_s` until `max_attempts`, and a number on the do-not-call list is never dialled.
//! So is a number of the site's `[outbound] dnc_file`. A contact list with bad rows is
//! answered 400 naming the rows, and nothing is imported. The queue's calling window is read
//! on each customer's clock: only the customer whose local time is inside it is dialled.

use std::time::Duration;

use serde_json::{json, Value};
use sip_tests::cdr::{of_type, report_around_today, wait_for_records};
use sip_tests::ports::free_port;
use sip_tests::{
    start_agent_for_calls, HarnessError, HarnessResult, Sipp, SippProcess, Switchboard,
    SwitchboardConfig,
};

const WAIT: Duration = Duration::from_secs(90);

struct Carriers {
    answering: u16,
    busy: u16,
    silent: u16,
}

fn config(carriers: &Carriers) -> SwitchboardConfig {
    config_with(carriers, "")
}

fn config_with(carriers: &Carriers, more: &str) -> SwitchboardConfig {
    let trunk = |name: &str, port: u16| {
        format!("[[trunk]]\nname = \"{name}\"\ngateway = \"127.0.0.1:{port}\"\n\n")
    };
    let route = |prefix: &str, trunk: &str| {
        format!("[[route]]\nprefix = \"{prefix}\"\ntrunks = [\"{trunk}\"]\n\n")
    };
    SwitchboardConfig {
        ring_timeout_s: 4,
        extra_toml: [
            trunk("answering", carriers.answering),
            trunk("busy", carriers.busy),
            trunk("silent", carriers.silent),
            route("2001", "answering"),
            route("2002", "busy"),
            route("2003", "answering"),
            route("2004", "silent"),
            route("2005", "answering"),
            more.to_owned(),
        ]
        .concat(),
        ..SwitchboardConfig::default()
    }
}

fn carrier(
    switchboard: &Switchboard,
    scenario: &str,
    port: u16,
    calls: u32,
) -> HarnessResult<SippProcess> {
    Sipp::server(scenario, port, switchboard.dir())?
        .service("carrier")
        .calls(calls)
        .timeout(WAIT)
        .arg("-d")
        .arg("500")
        .spawn()
}

fn contact<'v>(report: &'v Value, number: &str) -> &'v Value {
    report["contacts"]
        .as_array()
        .and_then(|contacts| contacts.iter().find(|c| c["number"] == number))
        .unwrap_or(&Value::Null)
}

/// Creates and starts a campaign; returns its id.
fn start_campaign(switchboard: &Switchboard, mode: &str, csv: &str) -> HarnessResult<u64> {
    let api = switchboard.api();
    let body = json!({
        "name": "return-visit",
        "queue": "support",
        "mode": mode,
        "max_attempts": 2,
        "retry_s": 1,
        "caller_id": "4000100",
        "contacts_csv": csv,
        "dnc": ["2003"],
    });
    let created = api
        .post("/api/campaigns", &body.to_string())?
        .expect_status(201, "create campaign")?
        .json()?;
    assert_eq!(created["running"], false, "{created}");
    assert_eq!(
        contact(&created, "2003")["state"],
        "do-not-call",
        "{created}"
    );
    let id = created["id"].as_u64().unwrap_or_default();
    let started = api
        .post(&format!("/api/campaigns/{id}/start"), "")?
        .expect_status(200, "start campaign")?
        .json()?;
    assert_eq!(started["running"], true, "{started}");
    Ok(id)
}

fn finished_report(switchboard: &Switchboard, id: u64) -> HarnessResult<Value> {
    let api = switchboard.api();
    api.wait_for("the campaign finishing", WAIT, || {
        let report = api.get(&format!("/api/campaigns/{id}"))?.json()?;
        Ok((report["finished"] == true).then_some(report))
    })
}

/// Every campaign attempt's CDR once `count` are written.
fn campaign_records(switchboard: &Switchboard, count: usize) -> HarnessResult<Vec<Value>> {
    let is_campaign = |r: &Value| r["callback"]["campaign"] == "return-visit";
    let records = wait_for_records(switchboard.cdr_dir(), "campaign records", WAIT, |records| {
        of_type(records, "call")
            .into_iter()
            .filter(|r| is_campaign(r))
            .count()
            >= count
    })?;
    Ok(of_type(&records, "call")
        .into_iter()
        .filter(|r| is_campaign(r))
        .cloned()
        .collect())
}

#[test]
fn a_preview_campaign_reaches_answered_retries_busy_and_never_dials_do_not_call(
) -> HarnessResult<()> {
    let carriers = Carriers {
        answering: free_port()?,
        busy: free_port()?,
        silent: free_port()?,
    };
    let switchboard = Switchboard::start(config(&carriers))?;
    // 2001 once, 2002 twice (busy, then busy again on the retry).
    let agent =
        start_agent_for_calls(&switchboard, "1001", "campaign_preview_answer.xml", 3, WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let answering = carrier(&switchboard, "agent_hangup.xml", carriers.answering, 1)?;
    let busy = carrier(&switchboard, "agent_busy.xml", carriers.busy, 2)?;

    let id = start_campaign(
        &switchboard,
        "preview",
        "number,name,order\n2001,Li Lei,A-1\n2002,Han Meimei,A-2\n2003,Lucy,A-3\n",
    )?;
    answering.wait()?.ensure_success()?;
    busy.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;

    let report = finished_report(&switchboard, id)?;
    assert_eq!(contact(&report, "2001")["state"], "answered", "{report}");
    assert_eq!(contact(&report, "2001")["name"], "Li Lei", "{report}");
    assert_eq!(
        contact(&report, "2001")["fields"]["order"],
        "A-1",
        "{report}"
    );
    assert_eq!(contact(&report, "2002")["state"], "not-reached", "{report}");
    assert_eq!(contact(&report, "2002")["attempts"], 2, "{report}");
    assert_eq!(contact(&report, "2002")["last_result"], "busy", "{report}");
    assert_eq!(contact(&report, "2003")["state"], "do-not-call", "{report}");
    assert_eq!(contact(&report, "2003")["attempts"], 0, "{report}");
    assert_eq!(report["tally"]["answered"], 1, "{report}");

    // One CDR per attempt; none for the do-not-call number.
    let records = campaign_records(&switchboard, 3)?;
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(records.iter().all(|r| r["did"] != "2003"), "{records:?}");
    let answered: Vec<_> = records.iter().filter(|r| r["did"] == "2001").collect();
    assert_eq!(answered[0]["callback"]["outcome"], "connected");
    assert_eq!(answered[0]["agent"], "1001");
    Ok(())
}

#[test]
fn a_progressive_campaign_reserves_the_agent_then_dials_and_counts_no_answer() -> HarnessResult<()>
{
    let carriers = Carriers {
        answering: free_port()?,
        busy: free_port()?,
        silent: free_port()?,
    };
    // 2005 is on the site's do-not-call file (and routable: only the list keeps it undialled).
    let lists = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
    let dnc_file = lists.path().join("dnc.txt");
    std::fs::write(&dnc_file, "# opted out\n2005\n")
        .map_err(|e| HarnessError::io("writing the do-not-call file", e))?;
    let switchboard = Switchboard::start(config_with(
        &carriers,
        &format!("[outbound]\ndnc_file = \"{}\"\n", dnc_file.display()),
    ))?;
    // 2001 once, 2004 twice (no answer, then no answer on the retry).
    let agent = start_agent_for_calls(&switchboard, "1001", "campaign_autoanswer.xml", 3, WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let answering = carrier(&switchboard, "agent_hangup.xml", carriers.answering, 1)?;
    let silent = carrier(
        &switchboard,
        "carrier_ring_cancelled.xml",
        carriers.silent,
        2,
    )?;

    let id = start_campaign(
        &switchboard,
        "progressive",
        "number\n2001\n2003\n2004\n2005\n",
    )?;
    answering.wait()?.ensure_success()?;
    silent.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;

    let report = finished_report(&switchboard, id)?;
    assert_eq!(report["mode"], "progressive", "{report}");
    assert_eq!(contact(&report, "2001")["state"], "answered", "{report}");
    assert_eq!(contact(&report, "2004")["state"], "not-reached", "{report}");
    assert_eq!(
        contact(&report, "2004")["last_result"],
        "no-answer",
        "{report}"
    );
    assert_eq!(contact(&report, "2003")["attempts"], 0, "{report}");
    assert_eq!(contact(&report, "2005")["state"], "do-not-call", "{report}");
    assert_eq!(contact(&report, "2005")["attempts"], 0, "{report}");
    Ok(())
}

#[test]
fn a_list_with_bad_rows_is_refused_with_the_rows_and_nothing_is_imported() -> HarnessResult<()> {
    let switchboard = Switchboard::start(SwitchboardConfig {
        extra_toml: "[[http.token]]\ntoken = \"agent-1001\"\nrole = \"agent\"\nagent = \"1001\"\n"
            .into(),
        ..SwitchboardConfig::default()
    })?;
    let api = switchboard.api();
    let body = json!({
        "name": "bad",
        "queue": "support",
        "contacts_csv": "number,name\n2001,ok\nnot-a-number,x\n2001,again\n",
    });
    let refused = api.post("/api/campaigns", &body.to_string())?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let error = refused.json()?;
    assert_eq!(error["error"]["code"], "bad_rows", "{error}");
    let rows: Vec<u64> = error["error"]["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["row"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(rows, vec![2, 3], "{error}");
    // Nothing was imported: there is no campaign 1.
    assert_eq!(api.get("/api/campaigns/1")?.status, 404);
    let listed = api.get("/api/campaigns")?.json()?;
    assert_eq!(listed, json!({"campaigns": []}));
    // Agents do not manage campaigns, nor list them.
    let agent = api.with_token(Some("agent-1001"));
    assert_eq!(agent.get("/api/campaigns")?.status, 403);

    let unknown_queue = json!({"name": "x", "queue": "nope", "contacts_csv": "number\n2001\n"});
    let refused = api.post("/api/campaigns", &unknown_queue.to_string())?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("no queue named"), "{}", refused.body);
    // A time zone the tz database does not know: the row is named, nothing is imported.
    let bad_zone = json!({"name": "x", "queue": "support", "contacts_csv": "number,timezone\n2001,Asia/Shanghai\n2002,Mars/Olympus\n"});
    let refused = api.post("/api/campaigns", &bad_zone.to_string())?.json()?;
    assert_eq!(refused["error"]["code"], "bad_rows", "{refused}");
    assert_eq!(refused["error"]["rows"][0]["row"], 2, "{refused}");
    assert!(
        refused["error"]["rows"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unknown time zone \"Mars/Olympus\"")),
        "{refused}"
    );
    let bad_default = json!({"name": "x", "queue": "support", "timezone": "Nowhere", "contacts_csv": "number\n2001\n"});
    let refused = api.post("/api/campaigns", &bad_default.to_string())?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("\\\"timezone\\\": unknown time zone"),
        "{}",
        refused.body
    );
    assert_eq!(api.get("/api/campaigns")?.json()?, json!({"campaigns": []}));
    let bad_mode = json!({"name": "x", "queue": "support", "mode": "predictive", "contacts_csv": "number\n2001\n"});
    let refused = api.post("/api/campaigns", &bad_mode.to_string())?;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("preview or progressive"),
        "{}",
        refused.body
    );
    Ok(())
}

#[test]
fn a_wrong_number_is_not_retried_and_the_agents_wrap_up_is_the_contacts_disposition(
) -> HarnessResult<()> {
    let carriers = Carriers {
        answering: free_port()?,
        busy: free_port()?,
        silent: free_port()?,
    };
    // 2006 goes to a carrier that answers 404: the number does not exist.
    let wrong = free_port()?;
    let switchboard = Switchboard::start(config_with(
        &carriers,
        &format!(
            "[[trunk]]\nname = \"wrong\"\ngateway = \"127.0.0.1:{wrong}\"\n\n\
             [[route]]\nprefix = \"2006\"\ntrunks = [\"wrong\"]\n\n\
             [[http.token]]\ntoken = \"agent-1001\"\nrole = \"agent\"\nagent = \"1001\"\n\n"
        ),
    ))?;
    // 2001 once, 2006 once (never again: a wrong number is not retried).
    let agent = start_agent_for_calls(&switchboard, "1001", "campaign_autoanswer.xml", 2, WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let answering = carrier(&switchboard, "agent_hangup.xml", carriers.answering, 1)?;
    let refusing = carrier(&switchboard, "carrier_404.xml", wrong, 1)?;

    let id = start_campaign(&switchboard, "progressive", "number\n2001\n2003\n2006\n")?;
    answering.wait()?.ensure_success()?;
    refusing.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;

    let report = finished_report(&switchboard, id)?;
    let wrong_number = contact(&report, "2006");
    assert_eq!(wrong_number["state"], "not-reached", "{report}");
    assert_eq!(wrong_number["last_result"], "wrong-number", "{report}");
    assert_eq!(
        wrong_number["attempts"], 1,
        "max_attempts 2, yet no retry: {report}"
    );

    // The agent files the wrap-up of the answered call: it is the contact's disposition.
    let answered = contact(&report, "2001");
    assert_eq!(answered["state"], "answered", "{report}");
    assert_eq!(answered.get("disposition"), None, "{report}");
    let call = answered["call"]
        .as_u64()
        .ok_or_else(|| HarnessError::Unexpected(format!("no answered call: {report}")))?;
    let agent_api = switchboard.api().with_token(Some("agent-1001"));
    let api = switchboard.api();
    // The call ends for the agent's wrap-up a moment after the carrier's BYE: wait for it.
    api.wait_for("the wrap-up being accepted", WAIT, || {
        let saved = agent_api.post(
            &format!("/api/calls/{call}/wrap-up"),
            r#"{"disposition":"follow-up","notes":"wants a visit"}"#,
        )?;
        Ok((saved.status == 200).then_some(()))
    })?;
    let report = api.get(&format!("/api/campaigns/{id}"))?.json()?;
    assert_eq!(
        contact(&report, "2001")["disposition"],
        "follow-up",
        "{report}"
    );
    assert_eq!(contact(&report, "2006").get("disposition"), None);

    // The CDR of the wrong number's attempt says so too.
    let records = campaign_records(&switchboard, 2)?;
    let refused: Vec<_> = records.iter().filter(|r| r["did"] == "2006").collect();
    assert_eq!(
        refused[0]["callback"]["attempts"][0]["result"], "wrong-number",
        "{records:?}"
    );
    assert_eq!(refused[0]["callback"]["attempts"][0]["sip_cause"], 404);

    // The report's Campaigns section: the attempts from the CDRs, the contacts and the
    // disposition from the campaign list (journalled at most once a second: wait for it).
    let journal = switchboard.cdr_dir().join("campaigns.json");
    api.wait_for("the disposition journalled", WAIT, || {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        Ok(text.contains("follow-up").then_some(()))
    })?;
    let table = report_around_today(switchboard.cdr_dir(), &[])?;
    let line = table
        .lines()
        .skip_while(|l| *l != "Campaigns")
        .find(|l| l.starts_with("return-visit"))
        .unwrap_or_default();
    // attempts, answered, no answer, busy, wrong number, failed; contacts, finished,
    // remaining, do-not-call; dispositions.
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        vec![
            "return-visit",
            "2",
            "1",
            "0",
            "0",
            "1",
            "0",
            "3",
            "2",
            "0",
            "1",
            "follow-up",
            "1"
        ],
        "{table}"
    );
    let csv = report_around_today(switchboard.cdr_dir(), &["--format", "csv"])?;
    let header: Vec<&str> = csv.lines().next().unwrap_or_default().split(',').collect();
    let row: Vec<&str> = csv
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r.first() == Some(&"campaign"))
        .unwrap_or_default();
    let cell = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .and_then(|i| row.get(i).copied())
    };
    assert_eq!(cell("group"), Some("return-visit"), "{csv}");
    assert_eq!(cell("campaign_attempts"), Some("2"), "{csv}");
    assert_eq!(cell("campaign_wrong_number"), Some("1"), "{csv}");
    assert_eq!(cell("campaign_do_not_call"), Some("1"), "{csv}");
    assert_eq!(cell("campaign_dispositions"), Some("follow-up=1"), "{csv}");
    let html = report_around_today(switchboard.cdr_dir(), &["--format", "html"])?;
    assert!(
        html.contains("<h2>Campaigns</h2>")
            && html
                .contains("<tr><td>return-visit</td><td class=\"n\">2</td><td class=\"n\">1</td>"),
        "{html}"
    );
    Ok(())
}

#[test]
fn a_campaign_is_a_live_call_out_survives_a_crash_and_the_interrupted_dial_counts(
) -> HarnessResult<()> {
    let carriers = Carriers {
        answering: free_port()?,
        busy: free_port()?,
        silent: free_port()?,
    };
    // 2004 rings long enough to look at the call and kill the node while it rings, even on a
    // loaded machine.
    let mut switchboard = Switchboard::start(SwitchboardConfig {
        ring_timeout_s: 20,
        ..config_with(
            &carriers,
            "[[http.token]]\ntoken = \"analyst-token\"\nrole = \"analyst\"\n",
        )
    })?;
    let api = switchboard.api();
    // 2004 rings without answering: it is being dialled when the node dies.
    let first_agent =
        start_agent_for_calls(&switchboard, "1001", "campaign_autoanswer.xml", 1, WAIT)?;
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    let silent = carrier(
        &switchboard,
        "carrier_ring_cancelled.xml",
        carriers.silent,
        2,
    )?;
    let id = start_campaign(&switchboard, "progressive", "number\n2004\n2003\n2001\n")?;
    let journal = switchboard.cdr_dir().join("campaigns.json");
    api.wait_for("the dial journalled", WAIT, || {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        Ok(text.contains("\"dialling\"").then_some(()))
    })?;
    // Meanwhile the attempt is a live call out: the agent's leg answered, the customer's ringing.
    let calls = api.get("/api/calls")?.json()?;
    let live = &calls["calls"][0];
    assert_eq!(live["direction"], "outbound", "{calls}");
    assert_eq!(live["origin"], "campaign", "{calls}");
    assert_eq!(live["label"], "return-visit", "{calls}");
    assert_eq!(live["did"], "2004", "{calls}");
    assert_eq!(live["state"], "dialling", "{calls}");
    assert_eq!(live["legs"][0]["role"], "agent", "{calls}");
    assert_eq!(live["legs"][0]["state"], "answered", "{calls}");
    assert_eq!(live["legs"][1]["role"], "trunk", "{calls}");
    assert_eq!(live["legs"][1]["party"], "silent", "{calls}");
    assert_eq!(live["legs"][1]["state"], "ringing", "{calls}");
    assert_eq!(
        api.metrics()?.get("switchboard_active_calls", &[]),
        Some(1.0)
    );
    // On a call out the customer is the number dialled: masked for analysts.
    let masked = switchboard
        .api()
        .with_token(Some("analyst-token"))
        .get("/api/calls")?
        .json()?;
    assert_eq!(masked["calls"][0]["did"], "****", "{masked}");
    switchboard.kill()?;
    drop(first_agent);
    switchboard.restart()?;

    // The campaign is still listed; its report is still there, still running; the
    // interrupted dial counts one attempt.
    let listed = api.get("/api/campaigns")?.json()?;
    assert_eq!(listed["campaigns"][0]["id"], id, "{listed}");
    assert_eq!(listed["campaigns"][0]["running"], true, "{listed}");
    assert_eq!(listed["campaigns"][0]["contacts"], 3, "{listed}");
    let report = api.get(&format!("/api/campaigns/{id}"))?.json()?;
    assert_eq!(report["name"], "return-visit", "{report}");
    assert_eq!(report["running"], true, "{report}");
    assert_eq!(contact(&report, "2004")["attempts"], 1, "{report}");
    assert_eq!(contact(&report, "2003")["state"], "do-not-call", "{report}");
    assert_eq!(contact(&report, "2001")["attempts"], 0, "{report}");

    // Dialling goes on once an agent is Ready: 2004 gets its second (last) attempt, 2001 is
    // reached.
    let answering = carrier(&switchboard, "agent_hangup.xml", carriers.answering, 1)?;
    let agent = start_agent_for_calls(&switchboard, "1001", "campaign_autoanswer.xml", 2, WAIT)?;
    let report = finished_report(&switchboard, id)?;
    assert_eq!(contact(&report, "2004")["state"], "not-reached", "{report}");
    assert_eq!(contact(&report, "2004")["attempts"], 2, "{report}");
    assert_eq!(
        contact(&report, "2004")["last_result"],
        "no-answer",
        "{report}"
    );
    assert_eq!(contact(&report, "2001")["state"], "answered", "{report}");
    answering.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;
    drop(silent);
    Ok(())
}

#[test]
fn a_carriers_digest_challenge_on_a_campaign_call_is_answered_with_the_trunks_credentials(
) -> HarnessResult<()> {
    let carriers = Carriers {
        answering: free_port()?,
        busy: free_port()?,
        silent: free_port()?,
    };
    // 2007 goes through a trunk that authenticates as acct-77; its carrier challenges (407).
    let secured = free_port()?;
    let switchboard = Switchboard::start(config_with(
        &carriers,
        &format!(
            "[[trunk]]\nname = \"secured\"\ngateway = \"127.0.0.1:{secured}\"\n\
             outbound_username = \"acct-77\"\noutbound_password = \"carrier-secret\"\n\n\
             [[route]]\nprefix = \"2007\"\ntrunks = [\"secured\"]\n\n"
        ),
    ))?;
    let agent = start_agent_for_calls(&switchboard, "1001", "campaign_autoanswer.xml", 1, WAIT)?;
    switchboard
        .api()
        .wait_for_agent_state("1001", "ready", WAIT)?;
    let challenging = carrier(&switchboard, "carrier_challenge_hangup.xml", secured, 1)?;

    let id = start_campaign(&switchboard, "progressive", "number\n2003\n2007\n")?;
    // The carrier's scenario checks the second INVITE's Proxy-Authorization and CSeq.
    challenging.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;
    let report = finished_report(&switchboard, id)?;
    assert_eq!(contact(&report, "2007")["state"], "answered", "{report}");
    assert_eq!(contact(&report, "2007")["attempts"], 1, "{report}");
    Ok(())
}

/// The IANA fixed-offset zone `hours` east of UTC (`Etc/GMT-8` is UTC+8: the sign is POSIX's).
fn fixed_zone(hours: i32) -> String {
    match hours {
        0 => "Etc/GMT".to_owned(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

/// The offset (-12..=12 hours) that puts local time at `local_hour` when UTC is at `utc_hour`.
fn offset_for(local_hour: i32, utc_hour: i32) -> i32 {
    (local_hour - utc_hour + 36).rem_euclid(24) - 12
}

#[test]
fn each_contact_is_dialled_only_inside_the_window_on_its_own_clock() -> HarnessResult<()> {
    let carriers = Carriers {
        answering: free_port()?,
        busy: free_port()?,
        silent: free_port()?,
    };
    // The queue calls out 09:00-18:00 every day. One customer's clock reads about noon now,
    // the other's about midnight: hours from either edge, however long the test takes.
    let utc_hour = i32::from(time::OffsetDateTime::now_utc().hour());
    let noon = fixed_zone(offset_for(12, utc_hour));
    let midnight = fixed_zone(offset_for(0, utc_hour));
    let mut config = config(&carriers);
    config
        .support_queue_lines
        .push("callback_schedule = \"daytime\"".to_owned());
    config.extra_toml.push_str(
        "\n[[schedule]]\nname = \"daytime\"\ntime_zone = \"UTC\"\nopen = [\"mon-sun 09:00-18:00\"]\n",
    );
    let switchboard = Switchboard::start(config)?;
    let api = switchboard.api();
    let agent = start_agent_for_calls(&switchboard, "1001", "campaign_autoanswer.xml", 1, WAIT)?;
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    // Only the customer at noon may be rung: the carrier takes one call.
    let answering = carrier(&switchboard, "agent_hangup.xml", carriers.answering, 1)?;

    // 2001 names its zone; 2004 (behind a carrier nobody runs) takes the campaign's.
    let body = json!({
        "name": "return-visit",
        "queue": "support",
        "mode": "progressive",
        "timezone": midnight,
        "contacts_csv": format!("number,timezone\n2001,{noon}\n2004,\n"),
    });
    let created = api
        .post("/api/campaigns", &body.to_string())?
        .expect_status(201, "create campaign")?
        .json()?;
    let id = created["id"].as_u64().unwrap_or_default();
    api.post(&format!("/api/campaigns/{id}/start"), "")?
        .expect_status(200, "start campaign")?;
    answering.wait()?.ensure_success()?;
    agent.wait()?.ensure_success()?;

    let report = api.wait_for("2001 answered", WAIT, || {
        let report = api.get(&format!("/api/campaigns/{id}"))?.json()?;
        Ok((contact(&report, "2001")["state"] == "answered").then_some(report))
    })?;
    assert_eq!(contact(&report, "2001")["timezone"], noon, "{report}");
    // The agent is free again, and 2004 still waits for its window: never dialled.
    api.wait_for_agent_state("1001", "ready", WAIT)?;
    let report = api.get(&format!("/api/campaigns/{id}"))?.json()?;
    let waiting = contact(&report, "2004");
    assert_eq!(waiting["timezone"], midnight, "{report}");
    assert_eq!(waiting["state"], "pending", "{report}");
    assert_eq!(waiting["attempts"], 0, "{report}");
    assert_eq!(waiting["waiting"], "window", "{report}");
    assert!(waiting["window_opens"].is_string(), "{report}");
    assert_eq!(report["waiting_for_window"], 1, "{report}");
    let listed = api.get("/api/campaigns")?.json()?;
    assert_eq!(listed["campaigns"][0]["waiting_for_window"], 1, "{listed}");
    assert_eq!(report["finished"], false, "{report}");
    let records = campaign_records(&switchboard, 1)?;
    assert!(records.iter().all(|r| r["did"] == "2001"), "{records:?}");
    Ok(())
}
