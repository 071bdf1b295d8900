//! The `audit` table: the binary's audit log records (docs/security.md), shipped to the same
//! PostgreSQL database as the CDRs. The files stay the record of truth; a row is keyed by
//! (node, day, line), the record's place in the node's `audit-YYYY-MM-DD.jsonl`, so sending a
//! record twice stores it once.

use time::{Date, OffsetDateTime};

use crate::postgres::{PostgresConfig, PostgresError, Session};

const INSERT_AUDIT: &str = "\
INSERT INTO audit (node, day, line, at, who_token, who_role, who_agent, source, action,
    target, result)
SELECT $1::text, day, line, at, who_token, who_role, who_agent, source, action, target, result
FROM UNNEST($2::date[], $3::int8[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[])
    AS batch(day, line, at, who_token, who_role, who_agent, source, action, target, result)
ON CONFLICT (node, day, line) DO NOTHING";

/// One audit record and its place in the node's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The UTC day of the file the record is in.
    pub day: Date,
    /// Its line in that file, from 1.
    pub line: i64,
    /// When.
    pub at: OffsetDateTime,
    /// The API token's name.
    pub who_token: Option<String>,
    /// The role (`admin` … `agent`, `system`).
    pub who_role: Option<String>,
    /// The agent.
    pub who_agent: Option<String>,
    /// The source address.
    pub source: Option<String>,
    /// What was done.
    pub action: String,
    /// To what.
    pub target: Option<String>,
    /// `ok` or the error code.
    pub result: String,
}

/// Inserts audit rows; blocks on a private runtime like the CDR sink, connects (and migrates)
/// on first use and again after any failure.
pub struct AuditTable {
    session: Session,
    node: String,
}

impl AuditTable {
    /// A writer for `config` (its `node` goes into every row). Only checks the URL.
    pub fn new(config: &PostgresConfig) -> Result<AuditTable, PostgresError> {
        Ok(AuditTable {
            session: Session::new(config, true)?,
            node: config.node.clone(),
        })
    }

    /// Inserts `rows` in one statement; returns how many were new.
    pub fn insert(&mut self, rows: &[AuditRow]) -> Result<u64, PostgresError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let column = |f: &dyn Fn(&AuditRow) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(f).collect()
        };
        let days: Vec<Date> = rows.iter().map(|r| r.day).collect();
        let lines: Vec<i64> = rows.iter().map(|r| r.line).collect();
        let ats: Vec<OffsetDateTime> = rows.iter().map(|r| r.at).collect();
        let tokens = column(&|r| r.who_token.clone());
        let roles = column(&|r| r.who_role.clone());
        let agents = column(&|r| r.who_agent.clone());
        let sources = column(&|r| r.source.clone());
        let actions: Vec<String> = rows.iter().map(|r| r.action.clone()).collect();
        let targets = column(&|r| r.target.clone());
        let results: Vec<String> = rows.iter().map(|r| r.result.clone()).collect();
        let node = self.node.as_str();
        self.session.run("insert audit rows", async |connection| {
            Ok(sqlx::query(INSERT_AUDIT)
                .bind(node)
                .bind(&days)
                .bind(&lines)
                .bind(&ats)
                .bind(&tokens)
                .bind(&roles)
                .bind(&agents)
                .bind(&sources)
                .bind(&actions)
                .bind(&targets)
                .bind(&results)
                .execute(&mut *connection)
                .await?
                .rows_affected())
        })
    }
}
