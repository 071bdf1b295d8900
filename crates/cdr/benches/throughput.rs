//! CDR benchmarks that print figures (plain `harness = false` main, no criterion: each figure
//! is one long run, not a micro-benchmark).
//!
//! 1. Durable CDRs per second: journal append + batched fdatasync (256 records), then forwarded
//!    to the file sink (JSON lines, optionally CSV; fdatasync per sink batch of 4096), the way
//!    the binary's journal thread runs them.
//! 2. Seconds to build a month report (daily and 15-minute intervals) from 1,000,000 CDRs in
//!    daily JSON-lines files.
//!
//! `cargo bench -p switchboard-cdr --bench throughput`; sizes can be changed with
//! `CDR_BENCH_RECORDS` (default 200 000) and `CDR_BENCH_REPORT_CDRS` (default 1 000 000);
//! `CDR_BENCH_OUTPUT_DIR=dir` keeps the month reports (HTML, text, CSV) there for inspection.
//! Files go to a temporary directory that is removed afterwards.

use std::path::Path;
use std::time::{Duration, Instant};

use cdr::report::{build_report_from_dir, Interval, ReportFormat, ReportQuery};
use cdr::{
    CallRecord, Disposition, FileSink, FileSinkConfig, Forwarder, ForwarderConfig, HangupSide,
    Journal, JournalConfig, Leg, LegRole, Record, Sink, SkippedLines, Transfer, TransferKind,
};
use time::macros::datetime;
use time::OffsetDateTime;

/// A small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn seconds(&mut self, max_ms: u64) -> f64 {
        self.below(max_ms) as f64 / 1000.0
    }
    /// Exponentially distributed seconds with the given mean, in whole milliseconds.
    fn exponential(&mut self, mean_s: f64) -> f64 {
        let uniform = (self.below(1_000_000) as f64 + 0.5) / 1_000_000.0;
        (-mean_s * uniform.ln() * 1000.0).round() / 1000.0
    }
}

const QUEUES: [&str; 5] = ["billing", "sales", "support", "complaints", "vip"];

/// A realistic call: IVR, queue, two legs, recording, sometimes a transfer and a survey.
fn generate_call(rng: &mut Rng, n: u64, arrived: OffsetDateTime) -> Record {
    let disposition = match rng.below(100) {
        0..=79 => Disposition::Answered,
        80..=87 => Disposition::Abandoned,
        88..=91 => Disposition::AbandonedShort,
        92..=94 => Disposition::Overflowed,
        95..=96 => Disposition::TimedOut,
        97 => Disposition::CallbackRequested,
        98 => Disposition::Voicemail,
        _ => Disposition::IvrCompleted,
    };
    let queued = disposition != Disposition::IvrCompleted;
    let ivr = time::Duration::seconds_f64(rng.seconds(30_000));
    let wait = match disposition {
        Disposition::AbandonedShort => rng.seconds(4_999),
        Disposition::Answered => rng.exponential(12.0),
        _ if queued => 5.0 + rng.exponential(60.0),
        _ => 0.0,
    };
    let answered = disposition == Disposition::Answered;
    let (talk, hold, wrap) = if answered {
        (
            rng.seconds(600_000),
            rng.seconds(60_000),
            rng.seconds(90_000),
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let enqueued = arrived + ivr;
    let answered_at = enqueued + time::Duration::seconds_f64(wait);
    let ended = answered_at + time::Duration::seconds_f64(talk + hold);
    let queue = QUEUES[rng.below(QUEUES.len() as u64) as usize];
    let agent = format!("agent{:02}", rng.below(50));
    let id = format!("sb-{n:010}");
    let trunk_call_id = format!("{:016x}@carrier.example.net", rng.next());
    let mut legs = vec![Leg {
        role: LegRole::Trunk,
        call_id: trunk_call_id.clone(),
        peer: "sip:203.0.113.5:5060".into(),
        started: arrived,
        answered: Some(arrived),
        ended,
        sip_cause: None,
        party: None,
        queue: None,
    }];
    if answered {
        legs.push(Leg {
            role: LegRole::Agent,
            call_id: format!("{id}-a1"),
            peer: format!("sip:{agent}@192.0.2.10:5062"),
            started: answered_at - time::Duration::seconds(4),
            answered: Some(answered_at),
            ended,
            sip_cause: None,
            party: None,
            queue: None,
        });
    }
    let transfers = if answered && rng.below(20) == 0 {
        vec![Transfer {
            at: answered_at + time::Duration::seconds(30),
            from_agent: agent.clone(),
            to: "support".into(),
            kind: TransferKind::Blind,
        }]
    } else {
        Vec::new()
    };
    Record::Call(CallRecord {
        seq: 0,
        id: id.clone(),
        trunk_call_id,
        arrived,
        ivr_ended: Some(enqueued),
        enqueued: queued.then_some(enqueued),
        offered: answered.then_some(answered_at - time::Duration::seconds(4)),
        answered: answered.then_some(answered_at),
        ended,
        caller: format!("+4930{:07}", rng.below(10_000_000)),
        did: "+4930999000".into(),
        ivr_path: vec!["main".into(), (1 + rng.below(4)).to_string()],
        language: Some(if rng.below(4) == 0 { "zh" } else { "en" }.into()),
        queue: queued.then(|| queue.to_string()),
        agent: answered.then_some(agent),
        priority: rng.below(3) as i32,
        label: None,
        customer_name: None,
        preferred_agent: None,
        preferred_agent_taken: false,
        wait_s: wait,
        ring_s: if answered { 4.0 } else { 0.0 },
        talk_s: talk,
        hold_s: hold,
        wrap_up_s: wrap,
        disposition,
        hangup_side: if answered {
            HangupSide::Caller
        } else {
            HangupSide::System
        },
        sip_cause: (!answered).then_some(487),
        transfers,
        survey_score: (answered && rng.below(3) == 0).then(|| 1 + rng.below(10) as u8),
        recording: answered.then(|| format!("/var/lib/switchboard/rec/2025/03/{id}.wav")),
        legs,
        supervisions: Vec::new(),
        conference: None,
        service_level_threshold_s: 20.0,
        direction: Default::default(),
        outbound: None,
        callback: None,
    })
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (Linux), so a
/// run slowed by other load on a shared machine can be told apart from a slow pipeline.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit(')').next() else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        // The kernel reports in USER_HZ, 100 on Linux.
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn bench_durable_throughput(records: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start_day = datetime!(2025-03-03 08:00 UTC);
    let calls: Vec<Record> = (0..records)
        .map(|n| {
            generate_call(
                &mut rng,
                n,
                start_day + time::Duration::milliseconds(n as i64 * 50),
            )
        })
        .collect();
    let line_bytes = serde_json::to_vec(&calls[0])?.len();
    println!(
        "durable CDR throughput: {records} generated calls (first is {line_bytes} bytes of JSON)"
    );

    // Journal alone.
    let temp = tempfile::tempdir()?;
    let mut journal = Journal::open(temp.path().join("journal"), JournalConfig::default())?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut syncs = 0u64;
    for record in &calls {
        journal.append(record)?;
        if journal.flush_due(Instant::now()) {
            journal.sync()?;
            syncs += 1;
        }
    }
    journal.close()?;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "  journal only (append + fdatasync per 256):       {:>9.0} CDR/s  ({records} in {:.2} s wall, {cpu:.2} s CPU, {syncs} syncs)",
        rate(records, elapsed),
        elapsed.as_secs_f64()
    );
    drop(temp);

    // Journal + forwarder + file sink: on one thread, or the forwarder on a thread of its own
    // so sink encoding and fsyncs overlap the journal's.
    for (csv, threaded) in [(false, false), (true, false), (false, true), (true, true)] {
        let temp = tempfile::tempdir()?;
        let cdr_dir = temp.path().join("cdr");
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let forwarded_seq = run_pipeline(&calls, temp.path(), csv, threaded)?;
        let elapsed = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        assert_eq!(forwarded_seq, records, "every record forwarded");
        println!(
            "  journal + file sink, {} thread{}, JSON lines{}: {:>9.0} CDR/s  ({:.2} s wall, {cpu:.2} s CPU, {} MB of CDR files)",
            if threaded { "2" } else { "1" },
            if threaded { "s" } else { " " },
            if csv { " + CSV" } else { "      " },
            rate(records, elapsed),
            elapsed.as_secs_f64(),
            dir_bytes(&cdr_dir) / 1_000_000
        );
    }
    Ok(())
}

/// Journals every call and forwards it to a file sink; returns the last forwarded sequence.
fn run_pipeline(
    calls: &[Record],
    dir: &Path,
    csv: bool,
    threaded: bool,
) -> Result<u64, Box<dyn std::error::Error>> {
    let journal_dir = dir.join("journal");
    let mut journal = Journal::open(&journal_dir, JournalConfig::default())?;
    let sink = FileSink::open(dir.join("cdr"), FileSinkConfig { csv })?;
    let mut forwarder = Forwarder::open(
        &journal_dir,
        vec![Box::new(sink) as Box<dyn Sink>],
        ForwarderConfig::default(),
    )?;
    if !threaded {
        for record in calls {
            journal.append(record)?;
            let now = Instant::now();
            if journal.flush_due(now) {
                journal.sync()?;
                if forwarder.forward_due(journal.durable_seq(), now) {
                    forwarder.forward(journal.durable_seq())?;
                }
            }
        }
        journal.sync()?;
        let progress = forwarder.forward(journal.durable_seq())?;
        forwarder.save_checkpoint()?;
        assert_eq!(forwarder.skipped(), SkippedLines::default());
        return Ok(progress.forwarded_seq);
    }
    // The journal thread tells the forwarder thread how far the journal is durable.
    let (durable_tx, durable_rx) = std::sync::mpsc::channel::<u64>();
    let lag = ForwarderConfig::default().max_lag;
    let forwarding = std::thread::spawn(move || -> Result<u64, cdr::ForwardError> {
        let mut durable = 0;
        loop {
            match durable_rx.recv_timeout(lag) {
                Ok(seq) => durable = durable.max(seq),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if forwarder.forward_due(durable, Instant::now()) {
                forwarder.forward(durable)?;
            }
        }
        let progress = forwarder.forward(durable)?;
        forwarder.save_checkpoint()?;
        // Reading the journal while it is written must never mistake a line for torn.
        assert_eq!(forwarder.skipped(), SkippedLines::default());
        Ok(progress.forwarded_seq)
    });
    for record in calls {
        journal.append(record)?;
        if journal.flush_due(Instant::now()) {
            journal.sync()?;
            durable_tx.send(journal.durable_seq())?;
        }
    }
    journal.sync()?;
    durable_tx.send(journal.durable_seq())?;
    drop(durable_tx);
    let forwarded = forwarding
        .join()
        .map_err(|_| "forwarder thread panicked")??;
    Ok(forwarded)
}

fn bench_month_report(cdrs: u64) -> Result<(), Box<dyn std::error::Error>> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let month_start = datetime!(2025-03-01 00:00 UTC);
    let month_s = 31 * 86_400i64;
    let started = Instant::now();
    let mut sink = FileSink::open(dir, FileSinkConfig::default())?;
    let mut batch = Vec::with_capacity(20_000);
    for n in 0..cdrs {
        // Spread evenly over March (arrivals in time order, as a real journal writes them).
        let offset_ms = (n as i128 * month_s as i128 * 1000 / cdrs as i128) as i64;
        let arrived = month_start + time::Duration::milliseconds(offset_ms);
        batch.push((n + 1, generate_call(&mut rng, n, arrived)));
        if batch.len() == batch.capacity() {
            sink.write_batch(&batch)?;
            batch.clear();
        }
    }
    sink.write_batch(&batch)?;
    drop(sink);
    println!(
        "month report: generated {cdrs} CDRs into {} MB of daily files in {:.1} s",
        dir_bytes(dir) / 1_000_000,
        started.elapsed().as_secs_f64()
    );

    for interval in [Interval::Day, Interval::QuarterHour] {
        let query = ReportQuery::new(month_start, datetime!(2025-04-01 00:00 UTC), interval);
        let mut progress_calls = 0u32;
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let report = build_report_from_dir(dir, &query, &mut |_| progress_calls += 1)?;
        let built = started.elapsed();
        let cpu = cpu_seconds() - cpu_before;
        let mut html = Vec::new();
        report.write(ReportFormat::Html, &mut html)?;
        let rendered = started.elapsed();
        if let Ok(out_dir) = std::env::var("CDR_BENCH_OUTPUT_DIR") {
            let out_dir = Path::new(&out_dir);
            std::fs::write(out_dir.join(format!("month-by-{interval}.html")), &html)?;
            for (format, extension) in [(ReportFormat::Table, "txt"), (ReportFormat::Csv, "csv")] {
                let mut file = std::fs::File::create(
                    out_dir.join(format!("month-by-{interval}.{extension}")),
                )?;
                report.write(format, &mut file)?;
            }
        }
        println!(
            "  by {:<5}: built in {:.2} s wall, {cpu:.2} s CPU ({:.0} CDR/s, {} calls counted, {} rows), +HTML {:.2} s ({} KB); {} progress callbacks",
            interval.to_string(),
            built.as_secs_f64(),
            rate(report.source.calls_counted, built),
            report.source.calls_counted,
            report.totals.len() + report.queues.len() + report.agents.len(),
            (rendered - built).as_secs_f64(),
            html.len() / 1000,
            progress_calls
        );
        assert_eq!(report.source.malformed_lines, 0);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; `cargo test --benches`/`--all-targets` runs this
    // without it, in a debug build: then only a smoke run with small sizes.
    let quick = !std::env::args().any(|a| a == "--bench");
    let records = env_count("CDR_BENCH_RECORDS", if quick { 2_000 } else { 200_000 });
    let report_cdrs = env_count(
        "CDR_BENCH_REPORT_CDRS",
        if quick { 5_000 } else { 1_000_000 },
    );
    bench_durable_throughput(records)?;
    bench_month_report(report_cdrs)?;
    Ok(())
}
