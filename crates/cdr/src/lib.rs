//! Call detail records for Switchboard.
//!
//! - [`model`]: one [`CallRecord`] per call (all legs) and [`AgentStateRecord`]s, with a
//!   stable, documented JSON form.
//! - [`journal`]: the write-ahead journal; a CDR is durable there before call state is freed.
//! - [`forwarder`] and [`sink`]: from the journal to daily JSON-lines/CSV files and/or
//!   PostgreSQL, exactly once per sink, surviving crashes.
//! - [`report`]: interval reports (queue and agent figures, Erlang-C staffing) as a text table,
//!   CSV or self-contained HTML.
//!
//! No async and no clock reads: the binary drives the journal from a blocking thread and
//! passes the time in. The PostgreSQL code ([`postgres`]) runs sqlx on a private
//! current-thread runtime and blocks on it, so its API is blocking too.
//!
//! # PostgreSQL
//!
//! [`PostgresSink`] stores records in two tables, created on first connection by the
//! embedded migrations (`migrations/*.sql`, applied by sqlx's migrator and tracked in
//! `_sqlx_migrations`):
//!
//! - `cdr_calls`: one row per call. `seq BIGINT PRIMARY KEY`; typed columns `id`,
//!   `trunk_call_id`, `arrived`/`ivr_ended`/`enqueued`/`offered`/`answered`/`ended`
//!   (`timestamptz`, microsecond precision), `caller`, `did`, `language`, `queue`, `agent`,
//!   `priority`, `wait_s`/`ring_s`/`talk_s`/`hold_s`/`wrap_up_s` (`double precision`),
//!   `disposition` and `hangup_side` (the JSON spellings), `sip_cause`, `transfer_count`,
//!   `survey_score`, `recording`, `service_level_threshold_s`; a generated
//!   `counted_at = COALESCE(enqueued, arrived)` indexed for reports; and `record jsonb`, the
//!   whole record in its JSON form (legs, transfers, IVR path, nanoseconds, future fields).
//! - `cdr_agent_states`: one row per agent-state period: `seq` primary key, `agent`, `state`,
//!   `reason`, `started`, `ended`, `duration_s`, `call_id`, `record jsonb`.
//!
//! **No duplicates, no loss.** Each `write_batch` is one transaction of multi-row
//! `INSERT … SELECT FROM UNNEST(…) ON CONFLICT (seq) DO NOTHING`, committed before it
//! returns. A batch that failed (database down, commit outcome unknown) is kept by the
//! [`Forwarder`] and sent again later; rows that did get committed are skipped by the
//! primary key, the others inserted. The journal keeps every record until all sinks stored
//! it, so a database outage delays CDRs but loses none. `seq` is the journal's sequence,
//! unique per node: several nodes writing to one database need a node column in the key
//! (not done yet).
//!
//! [`report::build_report_from_postgres`] builds the same reports as the file reader from
//! `cdr_calls`.

#![warn(missing_docs)]

pub mod audit_table;
pub mod forwarder;
pub mod journal;
pub mod model;
pub mod postgres;
pub mod report;
pub mod sink;
mod timestamp;

pub use forwarder::{ForwardError, ForwardProgress, Forwarder, ForwarderConfig};
pub use journal::{replay, Journal, JournalConfig, JournalError, Replay, SkippedLines};
pub use model::{
    AgentState, AgentStateRecord, CallRecord, Callback, CallbackAttempt, CallbackOutcome,
    CallbackResult, Conference, Direction, Disposition, HangupSide, InvalidRecord, Leg, LegRole,
    OutboundCall, Record, Supervision, Transfer, TransferKind, SHORT_ABANDON_THRESHOLD_S,
};
pub use postgres::{PostgresConfig, PostgresError};
pub use sink::{FileSink, FileSinkConfig, PostgresSink, PostgresSinkStats, Sink, SinkError};
