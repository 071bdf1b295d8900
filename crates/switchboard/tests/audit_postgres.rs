//! Audit records shipped to PostgreSQL (`[cdr] postgres_url`) against a real server started by
//! the test; skips, saying so, when PostgreSQL is not installed.

#[path = "../../cdr/tests/support/pg_server.rs"]
mod pg_server;

use cdr::audit_table::AuditTable;
use cdr::PostgresConfig;
use switchboard::audit::{AuditLog, AuditRecord, Shipping, Who};

const DB: &str = "cdr";

fn record(action: &str) -> AuditRecord {
    AuditRecord::now(
        Who {
            token: Some("ops-desk".into()),
            role: Some("admin".into()),
            agent: None,
        },
        Some("127.0.0.1".into()),
        action,
        Some("1001 ready".into()),
        "ok",
    )
}

fn counter(name: &str) -> prometheus::IntCounter {
    prometheus::IntCounter::new(name, "test").expect("valid metric")
}

fn shipping(server: &pg_server::PgServer, failures: &prometheus::IntCounter) -> Shipping {
    Shipping {
        table: AuditTable::new(&PostgresConfig::new(server.url(DB)).with_node("paris-1"))
            .expect("a valid URL"),
        failures: failures.clone(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_reach_postgres_once_across_outages_and_restarts() {
    let Some(server) =
        pg_server::start_or_skip("records_reach_postgres_once_across_outages_and_restarts")
    else {
        return;
    };
    server.create_database(DB);
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = || server.count(DB, "SELECT count(*) FROM audit WHERE node = 'paris-1'");

    // Written while shipping was not configured: only in the file.
    let plain = AuditLog::start(dir.path(), counter("e1"), None).expect("starts");
    plain.write(record("before")).await.expect("written");
    drop(plain);

    // Shipping on: today's file is sent at start, then each new record.
    let failures = counter("f");
    let log = AuditLog::start(
        dir.path(),
        counter("e2"),
        Some(shipping(&server, &failures)),
    )
    .expect("starts");
    log.write(record("agent-state")).await.expect("written");
    assert!(log.flush_shipping().await, "shipped");
    assert_eq!(rows(), 2);
    assert_eq!(
        server.psql(
            DB,
            "SELECT line, action, who_token, source FROM audit ORDER BY line"
        ),
        "1|before|ops-desk|127.0.0.1\n2|agent-state|ops-desk|127.0.0.1"
    );

    // The database goes away: the file still gets the record, shipping fails and is counted…
    server.stop();
    log.write(record("during-outage"))
        .await
        .expect("written to the file");
    assert!(
        !log.flush_shipping().await,
        "not shipped while the server is down"
    );
    assert!(failures.get() >= 1);
    // … and the record arrives once the database is back.
    server.start_again();
    assert!(log.flush_shipping().await, "shipped after the outage");
    assert_eq!(rows(), 3);
    drop(log);

    // A restart re-sends the recent files: nothing is stored twice.
    let again = AuditLog::start(
        dir.path(),
        counter("e3"),
        Some(shipping(&server, &failures)),
    )
    .expect("starts");
    assert!(again.flush_shipping().await);
    assert_eq!(rows(), 3);
}
