//! Report figures against a small fixture whose expected values were worked out by hand
//! (the arithmetic is written next to each assertion), read back through real CDR files.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::model::fixtures::{answered_call, not_ready_period};
use crate::model::{CallRecord, Disposition, HangupSide, Record, Transfer, TransferKind};
use crate::sink::{FileSink, FileSinkConfig, Sink};

struct Call {
    enqueued: OffsetDateTime,
    queue: Option<&'static str>,
    agent: Option<&'static str>,
    disposition: Disposition,
    wait: f64,
    talk: f64,
    hold: f64,
    wrap: f64,
    transferred: bool,
    survey: Option<u8>,
}

fn cdr(seq: u64, c: &Call) -> Record {
    let threshold = match c.queue {
        Some("sales") => 30.0,
        _ => 20.0,
    };
    let mut call: CallRecord = answered_call();
    call.seq = seq;
    call.id = format!("sb-{seq}");
    call.arrived = c.enqueued - Duration::seconds(20);
    call.enqueued = c.queue.map(|_| c.enqueued);
    call.queue = c.queue.map(str::to_string);
    call.agent = c.agent.map(str::to_string);
    call.disposition = c.disposition;
    call.hangup_side = HangupSide::Caller;
    call.wait_s = c.wait;
    call.talk_s = c.talk;
    call.hold_s = c.hold;
    call.wrap_up_s = c.wrap;
    call.ended = c.enqueued + Duration::seconds_f64(c.wait + c.talk + c.hold);
    call.transfers = if c.transferred {
        vec![Transfer {
            at: c.enqueued,
            from_agent: "bob".into(),
            to: "sales".into(),
            kind: TransferKind::Blind,
        }]
    } else {
        Vec::new()
    };
    call.survey_score = c.survey;
    call.service_level_threshold_s = threshold;
    Record::Call(call)
}

#[allow(clippy::too_many_arguments)]
fn call(
    enqueued: OffsetDateTime,
    queue: Option<&'static str>,
    agent: Option<&'static str>,
    disposition: Disposition,
    wait: f64,
    (talk, hold, wrap): (f64, f64, f64),
    transferred: bool,
    survey: Option<u8>,
) -> Call {
    Call {
        enqueued,
        queue,
        agent,
        disposition,
        wait,
        talk,
        hold,
        wrap,
        transferred,
        survey,
    }
}

/// The fixture (billing threshold 20 s, sales 30 s):
///
/// | # | queued | queue | agent | disposition | wait | talk+hold+wrap | transfer | survey |
/// |---|--------|-------|-------|-------------|------|----------------|----------|--------|
/// | 1 | 09:05 | billing | alice | answered | 10 | 200+20+30 = 250 | no | 8 |
/// | 2 | 09:10 | billing | bob | answered | 25 | 300+0+60 = 360 | yes | 6 |
/// | 3 | 09:20 | billing | – | abandoned | 40 | | | |
/// | 4 | 09:30 | billing | – | abandoned (3 s: short) | 3 | | | |
/// | 5 | 09:40 | billing | – | abandoned-short | 2 | | | |
/// | 6 | 09:50 | sales | alice | answered | 30 | 100+10+10 = 120 | no | 10 |
/// | 7 | 09:55 | sales | – | overflowed | 120 | | | |
/// | 8 | 10:15 | billing | alice | answered | 5 | 400+0+20 = 420 | no | |
/// | 9 | 10:30 | billing | – | timed-out | 300 | | | |
/// | 10 | 11:00 | billing | alice | answered (at `to`: excluded) | 1 | | | |
/// | 11 | 08:59:59 | billing | alice | answered (before `from`: excluded) | 1 | | | |
/// | 12 | 09:15 | – | – | ivr-completed (never queued) | 0 | | | |
fn fixture() -> Vec<Call> {
    use Disposition::*;
    let none = (0.0, 0.0, 0.0);
    vec![
        call(
            datetime!(2025-03-03 09:05 UTC),
            Some("billing"),
            Some("alice"),
            Answered,
            10.0,
            (200.0, 20.0, 30.0),
            false,
            Some(8),
        ),
        call(
            datetime!(2025-03-03 09:10 UTC),
            Some("billing"),
            Some("bob"),
            Answered,
            25.0,
            (300.0, 0.0, 60.0),
            true,
            Some(6),
        ),
        call(
            datetime!(2025-03-03 09:20 UTC),
            Some("billing"),
            None,
            Abandoned,
            40.0,
            none,
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 09:30 UTC),
            Some("billing"),
            None,
            Abandoned,
            3.0,
            none,
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 09:40 UTC),
            Some("billing"),
            None,
            AbandonedShort,
            2.0,
            none,
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 09:50 UTC),
            Some("sales"),
            Some("alice"),
            Answered,
            30.0,
            (100.0, 10.0, 10.0),
            false,
            Some(10),
        ),
        call(
            datetime!(2025-03-03 09:55 UTC),
            Some("sales"),
            None,
            Overflowed,
            120.0,
            none,
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 10:15 UTC),
            Some("billing"),
            Some("alice"),
            Answered,
            5.0,
            (400.0, 0.0, 20.0),
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 10:30 UTC),
            Some("billing"),
            None,
            TimedOut,
            300.0,
            none,
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 11:00 UTC),
            Some("billing"),
            Some("alice"),
            Answered,
            1.0,
            (10.0, 0.0, 0.0),
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 08:59:59 UTC),
            Some("billing"),
            Some("alice"),
            Answered,
            1.0,
            (10.0, 0.0, 0.0),
            false,
            None,
        ),
        call(
            datetime!(2025-03-03 09:15 UTC),
            None,
            None,
            IvrCompleted,
            0.0,
            none,
            false,
            None,
        ),
    ]
}

fn write_cdr_dir(dir: &Path, calls: &[Call]) {
    let mut sink = FileSink::open(dir, FileSinkConfig::default()).unwrap();
    let mut batch: Vec<(u64, Record)> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (i as u64 + 1, cdr(i as u64 + 1, c)))
        .collect();
    let mut state = not_ready_period();
    state.seq = batch.len() as u64 + 1;
    batch.push((state.seq, Record::AgentState(state)));
    sink.write_batch(&batch).unwrap();
}

fn query() -> ReportQuery {
    ReportQuery::new(
        datetime!(2025-03-03 09:00 UTC),
        datetime!(2025-03-03 11:00 UTC),
        Interval::Hour,
    )
}

fn build(dir: &Path, query: &ReportQuery) -> Report {
    build_report_from_dir(dir, query, &mut |_| {}).unwrap()
}

fn row<'r>(rows: &'r [ReportRow], hour: OffsetDateTime, group: &str) -> &'r Figures {
    &rows
        .iter()
        .find(|r| r.interval_start == hour && r.group == group)
        .unwrap_or_else(|| panic!("no row {hour} {group}"))
        .figures
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.expect("figure is undefined");
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

const NINE: OffsetDateTime = datetime!(2025-03-03 09:00 UTC);
const TEN: OffsetDateTime = datetime!(2025-03-03 10:00 UTC);

#[test]
fn queue_figures_match_hand_calculation() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let report = build(dir.path(), &query());

    // Billing 09:00: calls 1–5. Offered 5, answered 2 (#1, #2), abandoned 1 (#3), short 2
    // (#4 recorded "abandoned" after 3 s, #5). Base = 5 − 2 = 3.
    let billing9 = row(&report.queues, NINE, "billing");
    assert_eq!(
        (
            billing9.offered,
            billing9.answered,
            billing9.abandoned,
            billing9.abandoned_short
        ),
        (5, 2, 1, 2)
    );
    close(billing9.answer_rate(), 2.0 / 3.0);
    close(billing9.abandon_rate(), 1.0 / 3.0);
    // Within 20 s: #1 (10 s) yes, #2 (25 s) no → 1 / 3.
    close(billing9.service_level(), 1.0 / 3.0);
    close(billing9.asa_s(), (10.0 + 25.0) / 2.0); // 17.5
    close(billing9.aht_s(), (250.0 + 360.0) / 2.0); // 305
    close(billing9.longest_wait(), 40.0);
    close(billing9.transfer_rate(), 0.5);
    close(billing9.survey_average(), 7.0); // (8 + 6) / 2

    // Sales 09:00: #6 answered at exactly the 30 s threshold (counts), #7 overflowed.
    let sales9 = row(&report.queues, NINE, "sales");
    assert_eq!((sales9.offered, sales9.answered), (2, 1));
    close(sales9.service_level(), 0.5);
    close(sales9.answer_rate(), 0.5);
    close(sales9.aht_s(), 120.0);
    close(sales9.longest_wait(), 120.0);
    close(sales9.transfer_rate(), 0.0);

    // Billing 10:00: #8 answered in 5 s, #9 timed out after 300 s.
    let billing10 = row(&report.queues, TEN, "billing");
    assert_eq!((billing10.offered, billing10.answered), (2, 1));
    close(billing10.service_level(), 0.5);
    close(billing10.asa_s(), 5.0);
    close(billing10.aht_s(), 420.0);
    close(billing10.longest_wait(), 300.0);
    assert_eq!(billing10.survey_average(), None);
    assert_eq!(report.queues.len(), 3);
}

#[test]
fn totals_agents_and_overall_match_hand_calculation() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let report = build(dir.path(), &query());

    // All queues 09:00: #1–#7. Offered 7, answered 3, abandoned 1, short 2, base 5.
    let all9 = row(&report.totals, NINE, "all queues");
    assert_eq!(
        (all9.offered, all9.answered, all9.abandoned_short),
        (7, 3, 2)
    );
    close(all9.answer_rate(), 3.0 / 5.0);
    close(all9.service_level(), 2.0 / 5.0); // #1 and #6
    close(all9.asa_s(), (10.0 + 25.0 + 30.0) / 3.0);
    close(all9.aht_s(), (250.0 + 360.0 + 120.0) / 3.0);
    close(all9.transfer_rate(), 1.0 / 3.0);
    close(all9.survey_average(), (8.0 + 6.0 + 10.0) / 3.0);
    assert_eq!(report.totals.len(), 2);

    // Alice 09:00: #1 (10 s, billing) and #6 (30 s, sales), both within their thresholds.
    let alice9 = row(&report.agents, NINE, "alice");
    assert_eq!((alice9.offered, alice9.answered), (2, 2));
    close(alice9.service_level(), 1.0);
    close(alice9.aht_s(), (250.0 + 120.0) / 2.0); // 185
    close(alice9.survey_average(), 9.0);
    let bob9 = row(&report.agents, NINE, "bob");
    close(bob9.service_level(), 0.0);
    close(bob9.transfer_rate(), 1.0);
    assert_eq!(row(&report.agents, TEN, "alice").answered, 1);

    // Whole range: #1–#9. Offered 9, answered 4, base 9 − 2 = 7, within threshold 3
    // (#1, #6, #8).
    let overall = &report.overall;
    assert_eq!((overall.offered, overall.answered), (9, 4));
    close(overall.answer_rate(), 4.0 / 7.0);
    close(overall.service_level(), 3.0 / 7.0);
    close(overall.asa_s(), (10.0 + 25.0 + 30.0 + 5.0) / 4.0);
    close(overall.aht_s(), (250.0 + 360.0 + 120.0 + 420.0) / 4.0);
    close(overall.longest_wait(), 300.0);

    // Source: 12 calls + 1 agent-state line; #10 and #11 outside; #12 counted, no queue.
    assert_eq!(report.source.lines_read, 13);
    assert_eq!(report.source.agent_state_lines, 1);
    assert_eq!(report.source.calls_filtered_out, 2);
    assert_eq!(report.source.calls_counted, 10);
    assert_eq!(report.source.malformed_lines, 0);
}

/// Billing 09:00: 3 calls to staff for (5 offered − 2 short) at AHT 305 s over 3600 s is
/// A = 0.254 E. One agent: C = A = 0.254, SL = 1 − 0.254·e^(−0.746·20/305) = 0.758 < 0.8.
/// Two agents: B = 0.0251, C = 0.0286, SL = 1 − 0.0286·e^(−1.746·20/305) = 0.974 → 2.
#[test]
fn staffing_uses_interval_volume_and_aht() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let report = build(dir.path(), &query());
    let billing9 = report
        .staffing
        .iter()
        .find(|s| s.interval_start == NINE && s.queue == "billing")
        .unwrap();
    assert_eq!(billing9.calls, 3);
    close(billing9.aht_s, 305.0);
    assert_eq!(billing9.threshold_s, 20.0);
    assert_eq!(billing9.agents_needed, Some(2));
}

#[test]
fn filters_restrict_queue_and_agent() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let mut q = query();
    q.queue = Some("sales".into());
    let report = build(dir.path(), &q);
    assert_eq!(report.overall.offered, 2);
    assert!(report.queues.iter().all(|r| r.group == "sales"));

    let mut q = query();
    q.agent = Some("alice".into());
    let report = build(dir.path(), &q);
    // #1, #6, #8.
    assert_eq!(report.overall.offered, 3);
    assert!(report.agents.iter().all(|r| r.group == "alice"));
}

#[test]
fn calls_that_end_after_midnight_are_found_in_the_next_days_file() {
    use Disposition::Answered;
    let dir = tempfile::tempdir().unwrap();
    let long = (1800.0, 0.0, 0.0);
    write_cdr_dir(
        dir.path(),
        &[
            // Queued on the 3rd, ended on the 4th: file of the 4th, counts on the 3rd.
            call(
                datetime!(2025-03-03 23:50 UTC),
                Some("q"),
                None,
                Answered,
                10.0,
                long,
                false,
                None,
            ),
            // Queued on the 2nd, ended on the 3rd: file of the 3rd, outside the range.
            call(
                datetime!(2025-03-02 23:50 UTC),
                Some("q"),
                None,
                Answered,
                10.0,
                long,
                false,
                None,
            ),
        ],
    );
    assert!(dir.path().join("cdr-2025-03-04.jsonl").exists());
    let q = ReportQuery::new(
        datetime!(2025-03-03 00:00 UTC),
        datetime!(2025-03-04 00:00 UTC),
        Interval::Day,
    );
    let report = build(dir.path(), &q);
    assert_eq!(report.overall.offered, 1);
    assert_eq!(report.source.calls_filtered_out, 1);
}

#[test]
fn malformed_lines_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("cdr-2025-03-03.jsonl"))
        .unwrap();
    file.write_all(b"garbage\n{\"type\":\"call\"}\n{\"type\":\"call\",\"arrived\":\"yesterday\",\"disposition\":\"answered\"}\n{\"type\":\"fax\"}\n\xff\xfe\n")
        .unwrap();
    let report = build(dir.path(), &query());
    assert_eq!(report.source.malformed_lines, 5);
    assert_eq!(report.overall.offered, 9);
}

#[test]
fn agents_calls_out_are_not_counted_as_acd_calls() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let before = build(dir.path(), &query());
    // Alice's answered call out at 09:30, written like any other record.
    let Record::Call(mut call_out) = cdr(100, &fixture()[0]) else {
        panic!("the fixture is a call");
    };
    call_out.direction = crate::model::Direction::Outbound;
    call_out.queue = None;
    let mut line = serde_json::to_vec(&Record::Call(call_out)).unwrap();
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("cdr-2025-03-03.jsonl"))
        .unwrap();
    file.write_all(&line).unwrap();
    let after = build(dir.path(), &query());
    assert_eq!(after.overall.offered, before.overall.offered);
    assert_eq!(
        row(&after.agents, NINE, "alice").offered,
        row(&before.agents, NINE, "alice").offered
    );
    assert_eq!(
        after.source.calls_filtered_out,
        before.source.calls_filtered_out + 1
    );
}

#[test]
fn progress_reports_every_line_read() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let mut last = ReportProgress::default();
    let mut calls = 0;
    build_report_from_dir(dir.path(), &query(), &mut |p| {
        calls += 1;
        last = *p;
    })
    .unwrap();
    assert!(calls >= 2);
    assert_eq!(last.records_read, 13);
    assert_eq!(last.bytes_read, last.bytes_total);
    assert!(last.bytes_total > 0);
}

#[test]
fn bad_queries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = query();
    q.to = q.from;
    assert!(matches!(
        build_report_from_dir(dir.path(), &q, &mut |_| {}),
        Err(ReportError::EmptyRange { .. })
    ));
    let mut q = query();
    q.target_service_level = 80.0;
    assert!(matches!(
        build_report_from_dir(dir.path(), &q, &mut |_| {}),
        Err(ReportError::InvalidTarget(_))
    ));
    assert!(matches!(
        build_report_from_dir(&dir.path().join("missing"), &query(), &mut |_| {}),
        Err(ReportError::Io { .. })
    ));
}

#[test]
fn table_output_is_aligned_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let report = build(dir.path(), &query());
    let mut out = Vec::new();
    report.write(ReportFormat::Table, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let billing = text
        .lines()
        .find(|l| l.contains("2025-03-03 09:00") && l.contains("billing"))
        .unwrap();
    for expected in [
        "66.7 %", "33.3 %", "17.5", "305.0", "40.0", "50.0 %", "7.00",
    ] {
        assert!(
            billing.contains(expected),
            "{expected} missing in {billing:?}"
        );
    }
    // Every row of a section has the same width.
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "By queue")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(section.len(), 4);
    let header_width = section[0].len();
    assert!(section.iter().all(|l| l.len() == header_width));
}

#[test]
fn csv_output_has_one_row_per_interval_and_group() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let report = build(dir.path(), &query());
    let mut out = Vec::new();
    report.write(ReportFormat::Csv, &mut out).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // 2 totals + 3 queue rows + 3 agent rows (alice 9, bob 9, alice 10).
    assert_eq!(rows.len(), 8);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let billing9 = rows
        .iter()
        .find(|r| {
            &r[0] == "queue" && &r[col("group")] == "billing" && r[1].starts_with("2025-03-03T09")
        })
        .unwrap();
    assert_eq!(&billing9[col("offered")], "5");
    assert_eq!(&billing9[col("answer_rate")], "0.666667");
    assert_eq!(&billing9[col("aht_s")], "305.000");
    assert_eq!(&billing9[col("agents_needed")], "2");
    assert_eq!(&billing9[col("interval_end")], "2025-03-03T10:00:00Z");
}

#[test]
fn html_output_is_self_contained_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut calls = fixture();
    calls[0].queue = Some("<script>alert(1)</script>");
    write_cdr_dir(dir.path(), &calls);
    let report = build(dir.path(), &query());
    let mut out = Vec::new();
    report.write(ReportFormat::Html, &mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script"), "names must be escaped");
    assert!(html.contains("&lt;script&gt;"));
    // Nothing loaded from elsewhere: the only URL is the SVG namespace.
    let urls = html.matches("http").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
    assert_eq!(html.matches("<svg").count(), 3);
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert_eq!(
        html.matches("<table").count(),
        html.matches("</table>").count()
    );
    assert!(html.contains("Erlang-C staffing"));
}

#[test]
fn empty_range_still_renders() {
    let dir = tempfile::tempdir().unwrap();
    let report = build(dir.path(), &query());
    for format in [ReportFormat::Table, ReportFormat::Csv, ReportFormat::Html] {
        let mut out = Vec::new();
        report.write(format, &mut out).unwrap();
        assert!(!out.is_empty());
    }
    assert_eq!(report.overall.answer_rate(), None);
}

#[test]
fn format_names_parse() {
    assert_eq!("HTML".parse::<ReportFormat>(), Ok(ReportFormat::Html));
    assert_eq!("csv".parse::<ReportFormat>(), Ok(ReportFormat::Csv));
    assert_eq!("table".parse::<ReportFormat>(), Ok(ReportFormat::Table));
    assert!("pdf".parse::<ReportFormat>().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any bytes in a CDR file: the report never panics and counts every line somewhere.
    #[test]
    fn garbage_lines_never_panic(
        lines in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                "\\{\"type\":\"call\"[ -~]{0,120}\\}".prop_map(String::into_bytes),
            ],
            0..30,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for line in &lines {
            bytes.extend(line.iter().filter(|&&b| b != b'\n'));
            bytes.push(b'\n');
        }
        std::fs::write(dir.path().join("cdr-2025-03-03.jsonl"), &bytes).unwrap();
        let report = build_report_from_dir(dir.path(), &query(), &mut |_| {}).unwrap();
        let s = report.source;
        prop_assert_eq!(s.lines_read, lines.len() as u64);
        prop_assert_eq!(
            s.calls_counted + s.calls_filtered_out + s.agent_state_lines + s.malformed_lines,
            s.lines_read
        );
        for format in [ReportFormat::Table, ReportFormat::Csv, ReportFormat::Html] {
            report.write(format, &mut std::io::sink()).unwrap();
        }
    }
}

#[test]
fn campaigns_render_as_csv_rows_and_an_html_table() {
    let dir = tempfile::tempdir().unwrap();
    write_cdr_dir(dir.path(), &fixture());
    let mut report = build(dir.path(), &query());
    report.campaigns = vec![
        (
            "spring <visit>".to_owned(),
            CampaignFigures {
                attempts: 5,
                answered: 2,
                no_answer: 1,
                busy: 1,
                wrong_number: 1,
                failed: 0,
                contacts: Some(CampaignContacts {
                    total: 4,
                    finished: 3,
                    remaining: 0,
                    do_not_call: 1,
                    dispositions: [("follow-up".to_owned(), 2)].into(),
                }),
            },
        ),
        (
            "archived".to_owned(),
            CampaignFigures {
                attempts: 1,
                failed: 1,
                ..CampaignFigures::default()
            },
        ),
    ];
    let mut out = Vec::new();
    report.write(ReportFormat::Csv, &mut out).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let spring = rows
        .iter()
        .find(|r| &r[0] == "campaign" && &r[col("group")] == "spring <visit>")
        .unwrap();
    let cells = |row: &csv::StringRecord, names: &[&str]| -> Vec<String> {
        names.iter().map(|n| row[col(n)].to_owned()).collect()
    };
    assert_eq!(
        cells(
            spring,
            &[
                "campaign_attempts",
                "campaign_answered",
                "campaign_no_answer",
                "campaign_busy",
                "campaign_wrong_number",
                "campaign_failed",
                "campaign_contacts",
                "campaign_contacts_finished",
                "campaign_contacts_remaining",
                "campaign_do_not_call",
                "campaign_dispositions",
            ]
        ),
        [
            "5",
            "2",
            "1",
            "1",
            "1",
            "0",
            "4",
            "3",
            "0",
            "1",
            "follow-up=2"
        ]
    );
    assert_eq!(
        &spring[col("offered")],
        "",
        "no call figures on a campaign row"
    );
    let archived = rows
        .iter()
        .find(|r| &r[col("group")] == "archived")
        .unwrap();
    assert_eq!(&archived[col("campaign_failed")], "1");
    assert_eq!(&archived[col("campaign_contacts")], "", "list not known");
    // Other rows leave the campaign columns empty.
    let total = rows.iter().find(|r| &r[0] == "total").unwrap();
    assert_eq!(&total[col("campaign_attempts")], "");

    let mut out = Vec::new();
    report.write(ReportFormat::Html, &mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(html.contains("<h2>Campaigns</h2>"), "{html}");
    assert!(
        html.contains(
            "<tr><td>spring &lt;visit&gt;</td><td class=\"n\">5</td><td class=\"n\">2</td>"
        ),
        "{html}"
    );
    assert!(html.contains("<td>follow-up 2</td></tr>"), "{html}");
    assert!(
        html.contains("<td colspan=\"5\">list not found</td>"),
        "{html}"
    );
    assert_eq!(
        html.matches("<table").count(),
        html.matches("</table>").count()
    );
}
