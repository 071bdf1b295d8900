//! Where forwarded CDRs end up: the [`Sink`] seam, the file sink and the PostgreSQL sink.
//!
//! The forwarder hands each sink batches of journaled records in sequence order. After a
//! crash it may hand a sink records it already has (the checkpoint is written after the
//! sinks), so every sink must skip records whose sequence it already stored. The file sink
//! does so by reading the last sequence back from each file it opens; the PostgreSQL sink by
//! the primary key on `seq` (`ON CONFLICT (seq) DO NOTHING`).

mod csv_row;
mod day_file;
mod file;
mod postgres;

use std::io;
use std::path::{Path, PathBuf};

use crate::model::Record;

pub use file::{FileSink, FileSinkConfig};
pub use postgres::{PostgresSink, PostgresSinkStats};

/// A destination for CDRs (files, a database, …).
pub trait Sink: Send {
    /// Durably stores a batch of `(seq, record)` pairs, in increasing `seq` order.
    ///
    /// Must be idempotent per `seq`: records already stored are skipped, not duplicated.
    /// Returns only once the batch is durable; on error nothing is assumed stored and the
    /// same records will be offered again.
    fn write_batch(&mut self, records: &[(u64, Record)]) -> Result<(), SinkError>;

    /// Short name for logs and metrics (e.g. `file`, `postgres`).
    fn name(&self) -> &str;
}

/// Errors a sink reports; the forwarder retries the batch later.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file-system operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record could not be encoded for this sink.
    #[error("cannot encode record {seq}: {reason}")]
    Encode {
        /// Sequence number of the record.
        seq: u64,
        /// What went wrong.
        reason: String,
    },
    /// Any other failure of the sink's backend (database down, …).
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl SinkError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        SinkError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}
