//! The PostgreSQL sink and report source against a real server started by the test (see
//! `support/pg_server.rs`); each test skips, saying so, when PostgreSQL is not installed.

mod support;

use std::time::Instant;

use cdr::report::{
    build_report_from_dir, build_report_from_postgres, Figures, Interval, Report, ReportQuery,
};
use cdr::{
    FileSink, FileSinkConfig, ForwardError, Forwarder, ForwarderConfig, Journal, JournalConfig,
    PostgresConfig, PostgresSink, Record, Sink,
};
use support::pg_server::{start_or_skip, PgServer};
use support::records::{mixed, FIRST_ARRIVAL};

const DB: &str = "cdr";

fn sink_for(server: &PgServer) -> PostgresSink {
    PostgresSink::new(&PostgresConfig::new(server.url(DB))).expect("a valid URL")
}

fn rows(server: &PgServer, table: &str) -> u64 {
    server.count(DB, &format!("SELECT count(*) FROM {table}"))
}

#[test]
fn migrations_are_idempotent() {
    let Some(server) = start_or_skip("migrations_are_idempotent") else {
        return;
    };
    server.create_database(DB);
    for _ in 0..3 {
        let mut sink = sink_for(&server);
        sink.connect().expect("connect and migrate");
        // Connecting an already connected sink does nothing.
        sink.connect().expect("second connect");
    }
    assert_eq!(
        server.count(DB, "SELECT count(*) FROM _sqlx_migrations WHERE success"),
        cdr::postgres::migrations().len() as u64
    );
    assert_eq!(rows(&server, "cdr_calls"), 0);
    assert_eq!(rows(&server, "cdr_agent_states"), 0);
    assert_eq!(
        server.psql(
            DB,
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'cdr_calls' AND column_name IN ('seq', 'answered', 'talk_s', 'record') \
             ORDER BY column_name"
        ),
        "timestamp with time zone\njsonb\nbigint\ndouble precision"
    );
}

#[test]
fn batch_insert_stores_columns_and_the_whole_record() {
    let Some(server) = start_or_skip("batch_insert_stores_columns_and_the_whole_record") else {
        return;
    };
    server.create_database(DB);
    let mut sink = sink_for(&server);
    let batch = mixed(1, 2000);
    sink.write_batch(&batch).expect("insert");
    assert_eq!(rows(&server, "cdr_calls"), 1800);
    assert_eq!(rows(&server, "cdr_agent_states"), 200);
    assert_eq!(sink.stats().inserted, 2000);
    assert_eq!(sink.stats().batches, 1);

    // Every stored JSON record reads back equal to what was sent.
    let stored = server.psql(
        DB,
        "SELECT record::text FROM (SELECT seq, record FROM cdr_calls UNION ALL \
         SELECT seq, record FROM cdr_agent_states) AS r ORDER BY seq",
    );
    let back: Vec<Record> = stored
        .lines()
        .map(|line| Record::from_json(line.as_bytes()).expect("stored JSON parses"))
        .collect();
    let sent: Vec<Record> = batch.iter().map(|(_, record)| record.clone()).collect();
    assert_eq!(back, sent);

    // The typed columns agree with the record.
    let Some((_, Record::Call(call))) = batch
        .iter()
        .find(|(_, r)| matches!(r, Record::Call(c) if c.answered.is_some() && c.queue.is_some()))
    else {
        panic!("the generator makes answered queued calls");
    };
    let row = server.psql(
        DB,
        &format!(
            "SELECT id, disposition, queue, agent, talk_s, \
             extract(epoch FROM counted_at)::numeric(20,3), transfer_count, record->>'id' \
             FROM cdr_calls WHERE seq = {}",
            call.seq
        ),
    );
    let enqueued = call.enqueued.expect("queued");
    let expected = format!(
        "{}|answered|{}|{}|{}|{:.3}|{}|{}",
        call.id,
        call.queue.as_deref().unwrap_or_default(),
        call.agent.as_deref().unwrap_or_default(),
        call.talk_s,
        enqueued.unix_timestamp_nanos() as f64 / 1e9,
        call.transfers.len(),
        call.id
    );
    assert_eq!(row, expected);
}

#[test]
fn negative_priority_and_label_are_stored_in_their_columns() {
    let Some(server) = start_or_skip("negative_priority_and_label_are_stored_in_their_columns")
    else {
        return;
    };
    server.create_database(DB);
    let mut sink = sink_for(&server);
    let mut batch: Vec<(u64, Record)> = mixed(1, 20)
        .into_iter()
        .filter(|(_, r)| matches!(r, Record::Call(_)))
        .take(2)
        .collect();
    let Some((_, Record::Call(labelled))) = batch.first_mut() else {
        panic!("the generator makes calls");
    };
    labelled.priority = -1_000_000;
    labelled.label = Some("vip".into());
    let first = batch[0].0;
    sink.write_batch(&batch).expect("insert");
    let stored = server.psql(
        DB,
        &format!(
            "SELECT seq = {first}, priority, coalesce(label, '<null>'), record->>'label' \
             FROM cdr_calls ORDER BY seq"
        ),
    );
    let other_priority = match &batch[1].1 {
        Record::Call(call) => call.priority,
        Record::AgentState(_) => unreachable!("filtered to calls"),
    };
    assert_eq!(
        stored,
        format!("t|-1000000|vip|vip\nf|{other_priority}|<null>|")
    );
}

#[test]
fn a_resent_batch_inserts_nothing() {
    let Some(server) = start_or_skip("a_resent_batch_inserts_nothing") else {
        return;
    };
    server.create_database(DB);
    let mut sink = sink_for(&server);
    let first = mixed(1, 1000);
    sink.write_batch(&first).expect("first insert");
    sink.write_batch(&first).expect("same batch again");
    assert_eq!(
        rows(&server, "cdr_calls") + rows(&server, "cdr_agent_states"),
        1000
    );
    assert_eq!(sink.stats().inserted, 1000);
    assert_eq!(sink.stats().already_stored, 1000);

    // Overlapping: the second half of the old batch plus new records, from a new sink (as
    // after a restart of the binary that replays from an older checkpoint).
    let mut overlapping = first[500..].to_vec();
    overlapping.extend(mixed(1001, 500));
    let mut restarted = sink_for(&server);
    restarted
        .write_batch(&overlapping)
        .expect("overlapping insert");
    assert_eq!(restarted.stats().inserted, 500);
    assert_eq!(restarted.stats().already_stored, 500);
    assert_eq!(
        rows(&server, "cdr_calls") + rows(&server, "cdr_agent_states"),
        1500
    );
    assert_eq!(
        server.count(
            DB,
            "SELECT count(DISTINCT seq) FROM (SELECT seq FROM cdr_calls UNION ALL \
             SELECT seq FROM cdr_agent_states) AS s"
        ),
        1500
    );
    // What is stored is never overwritten: a record re-sent with other content (which the
    // journal never does) leaves the first version in place.
    let Some((seq, Record::Call(original))) = first
        .iter()
        .find(|(_, record)| matches!(record, Record::Call(_)))
    else {
        panic!("the batch holds calls");
    };
    let mut changed = original.clone();
    changed.caller = "+0000".into();
    restarted
        .write_batch(&[(*seq, Record::Call(changed))])
        .expect("re-send");
    assert_eq!(
        server.psql(
            DB,
            &format!("SELECT caller FROM cdr_calls WHERE seq = {seq}")
        ),
        original.caller
    );
}

#[test]
fn nodes_sharing_a_database_keep_each_others_rows() {
    let Some(server) = start_or_skip("nodes_sharing_a_database_keep_each_others_rows") else {
        return;
    };
    server.create_database(DB);
    // Two nodes' journals both start at 1: the same seq numbers, different calls.
    let records = mixed(1, 200);
    let mut a = PostgresSink::new(&PostgresConfig::new(server.url(DB)).with_node("site-a"))
        .expect("a valid URL");
    let mut b = PostgresSink::new(&PostgresConfig::new(server.url(DB)).with_node("site-b"))
        .expect("a valid URL");
    a.write_batch(&records).expect("node a");
    b.write_batch(&records).expect("node b");
    b.write_batch(&records).expect("node b re-sends");
    assert_eq!(a.stats().inserted, 200);
    assert_eq!(
        b.stats().inserted,
        200,
        "node b's rows are not taken for a's"
    );
    assert_eq!(
        b.stats().already_stored,
        200,
        "a re-send is still recognised"
    );
    assert_eq!(
        rows(&server, "cdr_calls") + rows(&server, "cdr_agent_states"),
        400
    );
    assert_eq!(
        server.psql(
            DB,
            "SELECT string_agg(DISTINCT node, ',' ORDER BY node) FROM cdr_calls"
        ),
        "site-a,site-b"
    );
}

/// Appends `records` to the journal and makes them durable.
fn journal_records(journal: &mut Journal, records: &[(u64, Record)]) {
    for (_, record) in records {
        journal.append(record).expect("append");
    }
    journal.sync().expect("sync");
}

#[test]
fn a_database_restart_loses_and_duplicates_nothing() {
    let Some(server) = start_or_skip("a_database_restart_loses_and_duplicates_nothing") else {
        return;
    };
    server.create_database(DB);
    let journal_dir = tempfile::tempdir().expect("temp dir");
    let mut journal = Journal::open(journal_dir.path(), JournalConfig::default()).expect("journal");
    let config = ForwarderConfig {
        max_batch_records: 700,
        ..ForwarderConfig::default()
    };
    let mut forwarder = Forwarder::open(
        journal_dir.path(),
        vec![Box::new(sink_for(&server)) as Box<dyn Sink>],
        config.clone(),
    )
    .expect("forwarder");

    // Running normally.
    journal_records(&mut journal, &mixed(1, 2000));
    let progress = forwarder.forward(journal.durable_seq()).expect("forward");
    assert_eq!(progress.forwarded_records, 2000);

    // The database goes down; CDRs keep arriving and stay in the journal.
    server.stop();
    journal_records(&mut journal, &mixed(2001, 1500));
    for attempt in 0..3 {
        let started = Instant::now();
        let error = forwarder
            .forward(journal.durable_seq())
            .expect_err("the database is down");
        // Printed, not asserted: tests never depend on wall-clock speed.
        eprintln!(
            "attempt {attempt}: failed after {:?}: {error}",
            started.elapsed()
        );
        assert!(
            matches!(&error, ForwardError::Sink { sink, .. } if sink == "postgres"),
            "{error}"
        );
        assert!(forwarder.pending_records() > 0, "the batch is kept");
        assert_eq!(forwarder.forwarded_seq(), 2000);
    }
    journal_records(&mut journal, &mixed(3501, 500));

    // Back up: the next call reconnects and delivers everything once.
    server.start_again();
    let progress = forwarder
        .forward(journal.durable_seq())
        .expect("forward after restart");
    assert_eq!(progress.forwarded_seq, 4000);
    assert_eq!(forwarder.pending_records(), 0);
    let total = "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM \
                 (SELECT seq FROM cdr_calls UNION ALL SELECT seq FROM cdr_agent_states) AS s";
    assert_eq!(server.psql(DB, total), "4000|4000|1|4000");

    // A crash before the checkpoint was saved: a new forwarder replays from the last saved
    // checkpoint, re-sending records the database already has. Nothing is duplicated.
    drop(forwarder);
    let replay_sink = sink_for(&server);
    let mut replay = Forwarder::open(
        journal_dir.path(),
        vec![Box::new(replay_sink) as Box<dyn Sink>],
        config,
    )
    .expect("forwarder after crash");
    let replayed = replay.forward(u64::MAX).expect("replay");
    eprintln!(
        "replayed {} records after the simulated crash",
        replayed.forwarded_records
    );
    assert_eq!(server.psql(DB, total), "4000|4000|1|4000");
    journal.close().expect("close journal");
}

/// Everything but `overall`, which is checked by [`assert_same_overall`].
fn comparable(report: &Report) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        &report.totals,
        &report.queues,
        &report.agents,
        &report.staffing,
        report.source.calls_counted,
    )
}

/// `ReportBuilder::finish` sums the per-interval cells into `overall` in hash-map order, so
/// its floating-point sums can differ in the last bits between any two runs, even on the
/// same files. Counts must match exactly, sums to within that rounding.
fn assert_same_overall(a: &Figures, b: &Figures) {
    let counts = |f: &Figures| {
        (
            f.offered,
            f.answered,
            f.abandoned,
            f.abandoned_short,
            f.answered_within_threshold,
            f.transferred,
            f.survey_sum,
            f.survey_count,
            f.longest_wait_s,
        )
    };
    assert_eq!(counts(a), counts(b));
    for (x, y) in [
        (a.answered_wait_s, b.answered_wait_s),
        (a.handle_s, b.handle_s),
    ] {
        assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{a:?}\n{b:?}");
    }
}

#[test]
fn postgres_report_equals_the_file_report() {
    let Some(server) = start_or_skip("postgres_report_equals_the_file_report") else {
        return;
    };
    server.create_database(DB);
    // More than one 10 000-row page, over several days.
    let records = mixed(1, 24_000);
    let files = tempfile::tempdir().expect("temp dir");
    let mut file_sink = FileSink::open(files.path(), FileSinkConfig::default()).expect("file sink");
    let mut pg_sink = sink_for(&server);
    for chunk in records.chunks(4000) {
        file_sink.write_batch(chunk).expect("file write");
        pg_sink.write_batch(chunk).expect("postgres write");
    }
    let config = PostgresConfig::new(server.url(DB));

    let whole = ReportQuery::new(
        FIRST_ARRIVAL,
        FIRST_ARRIVAL + time::Duration::days(3),
        Interval::Hour,
    );
    // A range that starts and ends mid-day cuts calls off at both ends.
    let mut partial = ReportQuery::new(
        FIRST_ARRIVAL + time::Duration::hours(5) + time::Duration::milliseconds(500),
        FIRST_ARRIVAL + time::Duration::hours(29),
        Interval::QuarterHour,
    );
    partial.queue = Some("billing".into());
    let mut by_agent = ReportQuery::new(
        FIRST_ARRIVAL,
        FIRST_ARRIVAL + time::Duration::days(7),
        Interval::Day,
    );
    by_agent.agent = Some("agent03".into());

    for query in [whole, partial, by_agent] {
        let from_files =
            build_report_from_dir(files.path(), &query, &mut |_| {}).expect("file report");
        let mut calls = 0;
        let mut progress_calls = 0;
        let from_db = build_report_from_postgres(&config, &query, &mut |p| {
            progress_calls += 1;
            calls = p.records_read;
        })
        .expect("postgres report");
        assert!(from_files.source.calls_counted > 100, "{query:?}");
        assert_eq!(comparable(&from_db), comparable(&from_files), "{query:?}");
        assert_same_overall(&from_db.overall, &from_files.overall);
        assert_eq!(from_db.source.malformed_lines, 0);
        assert_eq!(calls, from_db.source.lines_read);
        assert!(progress_calls >= 2);
        eprintln!(
            "{:?} {:?}: {} calls counted, {} rows read, {} progress calls",
            query.interval, query.queue, from_db.source.calls_counted, calls, progress_calls
        );
    }
}

fn audit_row(line: i64, action: &str) -> cdr::audit_table::AuditRow {
    cdr::audit_table::AuditRow {
        day: time::macros::date!(2026 - 12 - 06),
        line,
        at: time::macros::datetime!(2026-12-06 18:30:05.25 UTC),
        who_token: Some("ops-desk".into()),
        who_role: Some("admin".into()),
        who_agent: None,
        source: Some("127.0.0.1".into()),
        action: action.into(),
        target: Some("1001 ready".into()),
        result: "ok".into(),
    }
}

#[test]
fn audit_rows_are_stored_once_per_node_and_place() {
    let Some(server) = start_or_skip("audit_rows_are_stored_once_per_node_and_place") else {
        return;
    };
    server.create_database(DB);
    let config = PostgresConfig::new(server.url(DB));
    let mut paris = cdr::audit_table::AuditTable::new(&config.clone().with_node("paris-1"))
        .expect("a valid URL");
    let batch = [audit_row(1, "agent-state"), audit_row(2, "emergency-set")];
    assert_eq!(paris.insert(&batch).expect("inserted"), 2);
    // Sent again (after a failure or a restart): nothing new.
    assert_eq!(paris.insert(&batch).expect("re-sent"), 0);
    let mut lyon =
        cdr::audit_table::AuditTable::new(&config.with_node("lyon-1")).expect("a valid URL");
    assert_eq!(lyon.insert(&batch[..1]).expect("other node"), 1);
    assert_eq!(rows(&server, "audit"), 3);
    assert_eq!(
        server.psql(
            DB,
            "SELECT node, day, line, at = '2026-12-06T18:30:05.25Z', who_token, who_role, coalesce(who_agent, '-'), source, action, target, result \
             FROM audit WHERE node = 'paris-1' AND line = 2"
        ),
        "paris-1|2026-12-06|2|t|ops-desk|admin|-|127.0.0.1|emergency-set|1001 ready|ok"
    );
}
