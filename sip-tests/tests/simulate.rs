//! `switchboard simulate` as a user runs it: against the real system (SIPp traffic through the
//! binary, then the same period simulated from its CDRs with the same configuration), and its
//! command line: arrivals files, staffing files, sweeps, comparisons, formats, and bad input
//! (exit status 2, the file and line named, nothing written).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use sip_tests::cdr::{f64_field, str_field, time_field, wait_for_records};
use sip_tests::paths::switchboard_binary;
use sip_tests::{
    start_agent_for_calls, HarnessError, HarnessResult, Switchboard, SwitchboardConfig,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(240);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `period` row of `queue` in simulate's CSV output, as column name → value.
fn period_row(csv: &str, scenario: &str, queue: &str) -> HarnessResult<Vec<(String, String)>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.first() == Some(&scenario)
            && cells.get(1) == Some(&"period")
            && cells.get(4) == Some(&queue)
        {
            return Ok(header
                .iter()
                .zip(cells)
                .map(|(h, c)| ((*h).to_owned(), c.to_owned()))
                .collect());
        }
    }
    Err(HarnessError::Unexpected(format!(
        "no period row for {scenario}/{queue} in:\n{csv}"
    )))
}

fn cell(row: &[(String, String)], name: &str) -> HarnessResult<f64> {
    row.iter()
        .find(|(h, _)| h == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| HarnessError::Unexpected(format!("no number in column {name}: {row:?}")))
}

/// Real traffic, compressed: two agents, 3 s talk, service level threshold 5 s; 36 callers who
/// wait (one every 1.25 s: 2.4 Erlangs on two agents, so a queue builds) and 24 who hang up
/// (CANCEL) as soon as they hear ringing (one every 1.875 s), both streams over the same 45 s
/// (the simulation draws each caller's patience independently of when it calls). Then
/// `switchboard simulate` replays the same calls from the CDRs (talk times empirical, patience Kaplan–Meier, agents
/// from the agent-state records) through the same configuration.
///
/// Stated error: the simulated offered count equals the real one exactly (the calls are
/// replayed); the simulated service level and abandon rate are within 0.20 (absolute) of the
/// measured ones. Generous on purpose: the real run on a loaded machine has SIP and scheduling
/// delays the simulation does not, and 60 calls are few.
#[test]
fn simulated_figures_match_real_traffic_through_the_binary() -> HarnessResult<()> {
    let config = SwitchboardConfig {
        support_queue_lines: vec!["service_level_s = 5".into()],
        ..SwitchboardConfig::default()
    };
    let switchboard = Switchboard::start(config)?;
    let alice = start_agent_for_calls(&switchboard, "1001", "agent_answer.xml", 200, WAIT)?;
    let bob = start_agent_for_calls(&switchboard, "1002", "agent_answer.xml", 200, WAIT)?;
    let patient = switchboard
        .sipp_client("trunk_call.xml")?
        .service("100")
        .calls(36)
        .arg("-r")
        .arg("4")
        .arg("-rp")
        .arg("5000")
        // No cap on calls in progress: SIPp would otherwise slow its rate while calls wait.
        .arg("-l")
        .arg("100")
        .arg("-d")
        .arg("3000")
        .timeout(WAIT)
        .spawn()?;
    let impatient = switchboard
        .sipp_client("trunk_cancel.xml")?
        .service("100")
        .calls(24)
        .arg("-r")
        .arg("8")
        .arg("-rp")
        .arg("15000")
        .arg("-l")
        .arg("100")
        .timeout(WAIT)
        .spawn()?;
    // SIPp's own verdict per call does not matter here; the CDRs are the measurement.
    let _ = patient.wait()?;
    let _ = impatient.wait()?;
    let records = wait_for_records(switchboard.cdr_dir(), "60 call records", WAIT, |r| {
        r.iter()
            .filter(|v| str_field(v, "type") == Some("call"))
            .count()
            >= 60
    })?;
    drop(alice);
    drop(bob);
    let calls: Vec<&Value> = records
        .iter()
        .filter(|v| str_field(v, "type") == Some("call") && str_field(v, "queue").is_some())
        .collect();
    let mut first: Option<OffsetDateTime> = None;
    let mut last: Option<OffsetDateTime> = None;
    let (mut answered_in_time, mut abandoned, mut short, mut answered) = (0u32, 0u32, 0u32, 0u32);
    for call in &calls {
        let enqueued = time_field(call, "enqueued")?.ok_or_else(|| {
            HarnessError::Unexpected(format!("queued call without enqueued: {call}"))
        })?;
        first = Some(first.map_or(enqueued, |f| f.min(enqueued)));
        last = Some(last.map_or(enqueued, |l| l.max(enqueued)));
        let wait = f64_field(call, "wait_s").unwrap_or(0.0);
        if str_field(call, "disposition") == Some("answered") {
            answered += 1;
        }
        match str_field(call, "disposition") {
            Some("answered") if wait <= 5.0 => answered_in_time += 1,
            Some("abandoned") => abandoned += 1,
            Some("abandoned-short") => short += 1,
            _ => {}
        }
    }
    let offered = calls.len() as f64;
    let base = offered - f64::from(short);
    let real_sl = f64::from(answered_in_time) / base;
    let real_abandon = f64::from(abandoned) / base;
    let (Some(first), Some(last)) = (first, last) else {
        return Err(HarnessError::Unexpected("no queued call".into()));
    };
    let from = first.replace_nanosecond(0).unwrap_or(first);
    let to = last + time::Duration::seconds(1);
    let from = from.format(&Rfc3339).unwrap_or_default();
    let to = to.format(&Rfc3339).unwrap_or_default();
    let out = switchboard.dir().join("simulated.csv");
    let mut command = Command::new(switchboard_binary()?);
    command
        .args([
            "simulate", "--from", &from, "--to", &to, "--runs", "50", "--seed", "7",
        ])
        .args(["--interval", "day", "--format", "csv", "--config"])
        .arg(switchboard.config_path())
        .arg("--cdr-dir")
        .arg(switchboard.cdr_dir())
        .arg("--output")
        .arg(&out);
    let run = command
        .output()
        .map_err(|e| HarnessError::io("running switchboard simulate", e))?;
    assert!(
        run.status.success(),
        "simulate failed: {}",
        text(&run.stderr)
    );
    let csv = std::fs::read_to_string(&out).map_err(|e| HarnessError::io("reading output", e))?;
    let row = period_row(&csv, "base", "support")?;
    let sim_offered = cell(&row, "offered")?;
    let sim_sl = cell(&row, "service_level")?;
    let sim_abandon = cell(&row, "abandon_rate")?;
    let sim_answered = cell(&row, "answered")?;
    eprintln!(
        "real vs simulated: offered {offered} / {sim_offered}, answered {answered} / \
         {sim_answered:.1}, service level {real_sl:.3} / {sim_sl:.3}, abandon rate \
         {real_abandon:.3} / {sim_abandon:.3}"
    );
    assert_eq!(
        sim_offered, offered,
        "replayed calls are the real calls\n{csv}"
    );
    assert!(
        (sim_sl - real_sl).abs() <= 0.20,
        "service level: real {real_sl:.3}, simulated {sim_sl:.3}\n{csv}"
    );
    assert!(
        (sim_abandon - real_abandon).abs() <= 0.20,
        "abandon rate: real {real_abandon:.3}, simulated {sim_abandon:.3}\n{csv}"
    );
    Ok(())
}

/// A working directory with the demo configuration and files written by the test.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> HarnessResult<Self> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir", e))?;
        let files = Files { dir };
        files.write(
            "demo.toml",
            include_str!("../../crates/switchboard/src/config/demo.toml"),
        )?;
        Ok(files)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> HarnessResult<PathBuf> {
        let path = self.path(name);
        std::fs::write(&path, content).map_err(|e| HarnessError::io("writing a test file", e))?;
        Ok(path)
    }
}

const ARRIVALS: &str = "queue,start,end,calls,handle,patience\n\
                        support,08:00,10:00,60,exp:180,exp:120\n\
                        sales,08:00,10:00,40,exp:120,none\n";

/// Runs simulate on the demo configuration in `files` with `args`; returns the output.
fn simulate_demo(files: &Files, args: &[&str]) -> HarnessResult<Output> {
    let mut command = Command::new(switchboard_binary()?);
    command
        .current_dir(files.dir.path())
        .args(["simulate", "--config", "demo.toml"])
        .args(args);
    command
        .output()
        .map_err(|e| HarnessError::io("running switchboard simulate", e))
}

#[test]
fn arrivals_file_gives_a_table_csv_and_html_and_a_seed_repeats_itself() -> HarnessResult<()> {
    let files = Files::new()?;
    files.write("arrivals.csv", ARRIVALS)?;
    let table = simulate_demo(&files, &["--arrivals", "arrivals.csv", "--runs", "4"])?;
    assert!(table.status.success(), "{}", text(&table.stderr));
    let out = text(&table.stdout);
    for expected in [
        "Whole period",
        "support",
        "sales",
        "all queues",
        "Erlang C SL",
        "±",
    ] {
        assert!(out.contains(expected), "{expected} missing:\n{out}");
    }
    assert!(
        text(&table.stderr).contains("simulate: 4 runs of 1 scenario(s)"),
        "progress on stderr: {}",
        text(&table.stderr)
    );
    let csv_args = [
        "--arrivals",
        "arrivals.csv",
        "--runs",
        "4",
        "--format",
        "csv",
        "--seed",
        "9",
    ];
    let first = simulate_demo(&files, &csv_args)?;
    let again = simulate_demo(&files, &csv_args)?;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(first.stdout, again.stdout, "same seed, same figures");
    let other = simulate_demo(
        &files,
        &[
            "--arrivals",
            "arrivals.csv",
            "--runs",
            "4",
            "--format",
            "csv",
            "--seed",
            "10",
        ],
    )?;
    assert_ne!(first.stdout, other.stdout, "another seed draws other calls");
    let csv = text(&first.stdout);
    let row = period_row(&csv, "base", "support")?;
    let offered = cell(&row, "offered")?;
    assert!(offered > 30.0 && offered < 90.0, "60 expected: {offered}");

    let html = simulate_demo(
        &files,
        &[
            "--arrivals",
            "arrivals.csv",
            "--runs",
            "3",
            "--format",
            "html",
            "--output",
            "sim.html",
        ],
    )?;
    assert!(html.status.success(), "{}", text(&html.stderr));
    assert!(html.stdout.is_empty(), "--output takes the page");
    let page = std::fs::read_to_string(files.path("sim.html"))
        .map_err(|e| HarnessError::io("reading the page", e))?;
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("<svg"),
        "{page}"
    );
    assert!(page.contains("Service level by interval"));
    // The page renders in a real browser without a console message (no script, no fetches).
    let chromium = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            files.path("chromium").display()
        ))
        .arg(format!("file://{}", files.path("sim.html").display()))
        .output()
        .map_err(|e| HarnessError::Unexpected(format!("chromium could not run: {e}")))?;
    let log = text(&chromium.stderr);
    assert!(chromium.status.success(), "chromium failed:\n{log}");
    assert!(
        text(&chromium.stdout).contains("<svg"),
        "charts not rendered:\n{log}"
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    Ok(())
}

#[test]
fn vary_and_compare_show_scenarios_side_by_side() -> HarnessResult<()> {
    let files = Files::new()?;
    files.write("arrivals.csv", ARRIVALS)?;
    let vary = simulate_demo(
        &files,
        &[
            "--arrivals",
            "arrivals.csv",
            "--runs",
            "4",
            "--format",
            "csv",
            "--vary",
            "agents=support:-1..+2",
        ],
    )?;
    assert!(vary.status.success(), "{}", text(&vary.stderr));
    let csv = text(&vary.stdout);
    let sl = |scenario| -> HarnessResult<f64> {
        cell(&period_row(&csv, scenario, "support")?, "service_level")
    };
    // Same calls in every scenario (common random numbers): more agents, better service.
    assert!(sl("support-1")? < sl("base")?, "{csv}");
    assert!(sl("base")? < sl("support+2")?, "{csv}");
    assert!(csv.contains("support+1,"), "{csv}");

    // The other configuration answers support calls with a 2-minute wrap-up: worse service.
    let demo = std::fs::read_to_string(files.path("demo.toml"))
        .map_err(|e| HarnessError::io("reading demo.toml", e))?;
    files.write(
        "slow.toml",
        &demo.replace(
            "name = \"support\"\nskills = { support = 1 }",
            "name = \"support\"\nskills = { support = 1 }\nwrap_up_s = 120",
        ),
    )?;
    let compare = simulate_demo(
        &files,
        &[
            "--arrivals",
            "arrivals.csv",
            "--runs",
            "4",
            "--format",
            "csv",
            "--compare",
            "slow.toml",
        ],
    )?;
    assert!(compare.status.success(), "{}", text(&compare.stderr));
    let csv = text(&compare.stdout);
    let base = cell(&period_row(&csv, "base", "support")?, "service_level")?;
    let slow = cell(&period_row(&csv, "slow.toml", "support")?, "service_level")?;
    assert!(
        slow < base,
        "wrap-up must cost service level: {base} vs {slow}\n{csv}"
    );
    Ok(())
}

#[test]
fn staffing_file_sets_who_works_when() -> HarnessResult<()> {
    let files = Files::new()?;
    files.write("arrivals.csv", ARRIVALS)?;
    // Only Carol (support) for the first hour, then everyone.
    files.write(
        "staff.csv",
        "agent,start,end,skills\n1003,08:00,10:00\n1001,09:00,10:00\n1002,09:00,10:00\n",
    )?;
    let run = simulate_demo(
        &files,
        &[
            "--arrivals",
            "arrivals.csv",
            "--staffing",
            "staff.csv",
            "--runs",
            "4",
            "--format",
            "csv",
        ],
    )?;
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = text(&run.stdout);
    let agents = |hour: &str, queue: &str| -> HarnessResult<f64> {
        let line = csv
            .lines()
            .find(|l| {
                l.contains(&format!(",interval,2000-01-01 {hour},"))
                    && l.contains(&format!(",{queue},"))
            })
            .ok_or_else(|| HarnessError::Unexpected(format!("no {hour} {queue} row:\n{csv}")))?;
        let header: Vec<&str> = csv.lines().next().unwrap_or_default().split(',').collect();
        let index = header.iter().position(|h| *h == "agents").unwrap_or(0);
        line.split(',')
            .nth(index)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| HarnessError::Unexpected(format!("no agents in {line}")))
    };
    assert_eq!(agents("08:00", "support")?, 1.0);
    assert_eq!(agents("08:00", "sales")?, 0.0);
    assert_eq!(agents("09:00", "support")?, 2.0);
    assert_eq!(agents("09:00", "sales")?, 2.0);
    Ok(())
}

/// Each bad input: exit status 2, the message names the file (and line), no output file.
#[test]
fn bad_input_is_refused_with_file_and_line_and_nothing_written() -> HarnessResult<()> {
    let files = Files::new()?;
    files.write("arrivals.csv", ARRIVALS)?;
    files.write(
        "bad-arrivals.csv",
        "queue,start,end,calls,handle,patience\nbilling,08:00,09:00,10,60,none\n",
    )?;
    files.write(
        "bad-staff.csv",
        "agent,start,end\n1001,08:00,10:00\n9999,08:00,10:00\n",
    )?;
    files.write("bad-queue-staff.csv", "1001,08:00,10:00,@billing\n")?;
    let empty_cdr = files.path("cdr");
    std::fs::create_dir_all(&empty_cdr).map_err(|e| HarnessError::io("cdr dir", e))?;
    let demo = std::fs::read_to_string(files.path("demo.toml"))
        .map_err(|e| HarnessError::io("reading demo.toml", e))?;
    // A configuration without the sales queue (its IVR keys and agents adjusted to stay valid).
    files.write(
        "no-sales.toml",
        &demo
            .replace("[[queue]]\nname = \"sales\"\nskills = { sales = 1 }\nstrategy = \"longest-idle\"\n", "")
            .replace("\"1\" = \"queue:sales\", ", ""),
    )?;
    let cases: [(&[&str], &str); 6] = [
        (
            &["--arrivals", "bad-arrivals.csv"],
            "bad-arrivals.csv:2: unknown queue \"billing\"",
        ),
        (
            &["--arrivals", "arrivals.csv", "--staffing", "bad-staff.csv"],
            "bad-staff.csv:3: unknown agent \"9999\"",
        ),
        (
            &[
                "--arrivals",
                "arrivals.csv",
                "--staffing",
                "bad-queue-staff.csv",
            ],
            "bad-queue-staff.csv:1: unknown queue \"billing\"",
        ),
        (
            &[
                "--cdr-dir",
                "cdr",
                "--from",
                "2026-03-02",
                "--to",
                "2026-03-03",
            ],
            "no queued calls between",
        ),
        (
            &["--arrivals", "arrivals.csv", "--compare", "no-sales.toml"],
            "no-sales.toml: has no queue \"sales\"",
        ),
        (
            &[
                "--arrivals",
                "arrivals.csv",
                "--vary",
                "agents=billing:-1..1",
            ],
            "--vary: unknown queue \"billing\"",
        ),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["--output", "out.txt"]);
        let run = simulate_demo(&files, &all)?;
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr:?} lacks {expected:?}"
        );
        assert!(!files.path("out.txt").exists(), "{args:?} wrote output");
    }
    Ok(())
}

/// A CDR line for a call queued in `support` (DID 101 routes there) at 09:MM:SS.
fn cdr_call(n: u32, disposition: &str, wait_s: f64, talk_s: f64) -> String {
    let (minute, second) = (n * 2 / 60, n * 2 % 60);
    let at = format!("2026-03-02T09:{minute:02}:{second:02}Z");
    serde_json::json!({
        "type": "call", "seq": n, "id": format!("sb-{n}"), "trunk_call_id": format!("t{n}"),
        "arrived": at, "enqueued": at, "ended": at, "caller": "1", "did": "101",
        "queue": "support", "wait_s": wait_s, "talk_s": talk_s, "ring_s": 1.0,
        "disposition": disposition, "hangup_side": "caller",
        "service_level_threshold_s": 20.0,
    })
    .to_string()
}

/// CDR mode without SIPp: replayed calls are exactly the recorded ones every run; `--poisson`
/// draws each interval's count afresh (the offered count then varies between runs);
/// `--interval 15m` gives quarter-hour rows; `--ring-time` (arrivals mode) delays answers.
#[test]
fn poisson_interval_and_ring_time_options_change_what_is_simulated() -> HarnessResult<()> {
    let files = Files::new()?;
    let cdr = files.path("cdr");
    std::fs::create_dir_all(&cdr).map_err(|e| HarnessError::io("cdr dir", e))?;
    let lines: Vec<String> = (0..30)
        .map(|n| match n % 3 {
            0 => cdr_call(n, "abandoned", 12.0, 0.0),
            _ => cdr_call(n, "answered", 4.0, 90.0),
        })
        .collect();
    files.write("cdr/cdr-2026-03-02.jsonl", &(lines.join("\n") + "\n"))?;
    let period = [
        "--cdr-dir",
        "cdr",
        "--from",
        "2026-03-02T09:00:00Z",
        "--to",
        "2026-03-02T10:00:00Z",
    ];
    let mut replay = period.to_vec();
    replay.extend(["--runs", "5", "--format", "csv", "--interval", "15m"]);
    let run = simulate_demo(&files, &replay)?;
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = text(&run.stdout);
    let row = period_row(&csv, "base", "support")?;
    assert_eq!(cell(&row, "offered")?, 30.0, "{csv}");
    assert_eq!(
        cell(&row, "offered_ci")?,
        0.0,
        "replayed: the same calls every run"
    );
    for quarter in ["09:00", "09:15", "09:30", "09:45"] {
        assert!(
            csv.contains(&format!(",interval,2026-03-02 {quarter},")),
            "no {quarter} row:\n{csv}"
        );
    }
    let mut poisson = replay.clone();
    poisson.push("--poisson");
    let run = simulate_demo(&files, &poisson)?;
    assert!(run.status.success(), "{}", text(&run.stderr));
    let csv = text(&run.stdout);
    let row = period_row(&csv, "base", "support")?;
    assert!(
        cell(&row, "offered_ci")? > 0.0,
        "Poisson counts vary:\n{csv}"
    );

    files.write("arrivals.csv", ARRIVALS)?;
    let asa = |ring: &str| -> HarnessResult<f64> {
        let run = simulate_demo(
            &files,
            &[
                "--arrivals",
                "arrivals.csv",
                "--runs",
                "4",
                "--format",
                "csv",
                "--ring-time",
                ring,
            ],
        )?;
        if !run.status.success() {
            return Err(HarnessError::Unexpected(text(&run.stderr)));
        }
        cell(&period_row(&text(&run.stdout), "base", "sales")?, "asa_s")
    };
    // Every answered call waits at least the ring time.
    assert!(asa("fixed:15")? >= 15.0);
    assert!(asa("fixed:0")? < asa("fixed:15")?);
    let bad = simulate_demo(
        &files,
        &["--arrivals", "arrivals.csv", "--ring-time", "soon"],
    )?;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("--ring-time"),
        "{}",
        text(&bad.stderr)
    );
    Ok(())
}
