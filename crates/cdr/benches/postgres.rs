//! CDRs per second into PostgreSQL through [`PostgresSink`], against a throw-away server the
//! bench starts (fsync on, default settings: what a real node would see on local storage).
//! Skips, saying so, when the PostgreSQL binaries are not installed.
//!
//! `cargo bench -p switchboard-cdr --bench postgres`; `CDR_BENCH_PG_RECORDS` (default
//! 200 000) sets the number of records, sent in batches of 1000, 2000 and 4000.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use cdr::{PostgresConfig, PostgresSink, Sink};
use support::pg_server::start_or_skip;
use support::records::mixed;

fn main() {
    let Some(server) = start_or_skip("bench postgres") else {
        return;
    };
    let records: u64 = std::env::var("CDR_BENCH_PG_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let all = mixed(1, records);
    println!(
        "PostgreSQL sink: {records} records (90 % calls), fsync on, one connection, port {}",
        server.port()
    );
    for (round, batch_size) in [1000usize, 2000, 4000].into_iter().enumerate() {
        let database = format!("cdr_bench_{round}");
        let url = server.create_database(&database);
        let mut sink = PostgresSink::new(&PostgresConfig::new(url)).expect("valid URL");
        sink.connect().expect("connect and migrate");
        let started = Instant::now();
        for batch in all.chunks(batch_size) {
            sink.write_batch(batch).expect("insert batch");
        }
        let elapsed = started.elapsed();
        let stored = server.count(
            &database,
            "SELECT (SELECT count(*) FROM cdr_calls) + (SELECT count(*) FROM cdr_agent_states)",
        );
        assert_eq!(stored, records, "every record stored once");
        // Re-sending everything (a replay after a crash) must insert nothing.
        let replay_started = Instant::now();
        for batch in all.chunks(batch_size) {
            sink.write_batch(batch).expect("re-send batch");
        }
        let replay = replay_started.elapsed();
        assert_eq!(sink.stats().already_stored, records);
        println!(
            "  batches of {batch_size:>4}: {:>8.0} CDRs/s ({:.2} s); replay of the same records \
             (all skipped): {:>8.0} CDRs/s",
            records as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            records as f64 / replay.as_secs_f64(),
        );
    }
}
