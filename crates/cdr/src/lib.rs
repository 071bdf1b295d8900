//! Call detail records for Switchboard.
//!
//! - [`model`]: one [`CallRecord`] per call (all legs) and [`AgentStateRecord`]s, with a
//!   stable, documented JSON form.
//! - [`journal`]: the write-ahead journal; a CDR is durable there before call state is freed.
//! - [`forwarder`] and [`sink`]: from the journal to daily JSON-lines/CSV files (and, later,
//!   PostgreSQL), exactly once per sink, surviving crashes.
//! - [`report`]: interval reports (queue and agent figures, Erlang-C staffing) as a text table,
//!   CSV or self-contained HTML.
//!
//! No async and no clock reads: the binary drives the journal from a blocking thread and
//! passes the time in.

#![warn(missing_docs)]

pub mod forwarder;
pub mod journal;
pub mod model;
pub mod report;
pub mod sink;
mod timestamp;

pub use forwarder::{ForwardError, ForwardProgress, Forwarder, ForwarderConfig};
pub use journal::{replay, Journal, JournalConfig, JournalError, Replay, SkippedLines};
pub use model::{
    AgentState, AgentStateRecord, CallRecord, Disposition, HangupSide, InvalidRecord, Leg, LegRole,
    Record, Transfer, TransferKind, SHORT_ABANDON_THRESHOLD_S,
};
pub use sink::{FileSink, FileSinkConfig, Sink, SinkError};
