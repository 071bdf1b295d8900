//! The CDR writer: a dedicated thread that owns the write-ahead journal and the file sink.
//!
//! The core hands it each finished call's record and holds the call's last response (the 200
//! to the BYE, the 487 to a cancelled INVITE) until the writer reports the record durable, so
//! a call the far end saw complete always has its CDR on disk. The journal batches records
//! (one fdatasync per batch, at most `SYNC_DELAY` late), so this costs milliseconds, not a
//! disk write per call. A failing disk never blocks calls: the writer still reports the
//! records as settled, counts the error, and keeps them in its bounded backlog to retry.

use cdr::journal::{Journal, JournalConfig};
use cdr::sink::{FileSink, FileSinkConfig, Sink};
use cdr::{Forwarder, ForwarderConfig, Record};
use prometheus::IntCounter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Longest a record waits in memory before the batch is synced.
const SYNC_DELAY: Duration = Duration::from_millis(10);

/// How long durable records may wait before they are copied into the daily CDR files.
const FORWARD_LAG: Duration = Duration::from_millis(200);

/// Records per fdatasync at most.
const SYNC_BATCH: usize = 256;

/// What the writer is asked to do.
enum Job {
    /// Journal a record; report `token` once it is durable.
    Write { record: Box<Record>, token: u64 },
    /// Sync, forward everything, checkpoint and stop.
    Stop,
}

/// Counters shared with the metrics exporter.
#[derive(Debug, Default)]
pub struct CdrStats {
    /// Records journaled and synced.
    pub written: AtomicU64,
    /// Records waiting in memory for a sync.
    pub backlog: AtomicU64,
    /// Journal or sink errors.
    pub errors: AtomicU64,
}

/// Handle to the writer thread.
pub struct CdrWriter {
    jobs: Sender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<CdrStats>,
}

impl CdrWriter {
    /// Opens the journal under `dir/journal` and the daily files in `dir`, replays what a
    /// crash left in the journal into the files, and starts the thread. `durable` receives
    /// the tokens of records once they are on disk (or could not be, see the module doc).
    pub fn start(
        dir: &Path,
        durable: UnboundedSender<Vec<u64>>,
        errors: IntCounter,
    ) -> anyhow::Result<Self> {
        let journal_dir = dir.join("journal");
        let journal = Journal::open(
            &journal_dir,
            JournalConfig {
                max_batch_records: SYNC_BATCH,
                max_batch_delay: SYNC_DELAY,
                ..JournalConfig::default()
            },
        )?;
        let sink = FileSink::open(dir, FileSinkConfig { csv: false })?;
        let mut forwarder = Forwarder::open(
            &journal_dir,
            vec![Box::new(sink) as Box<dyn Sink>],
            ForwarderConfig {
                max_lag: FORWARD_LAG,
                ..ForwarderConfig::default()
            },
        )?;
        let replayed = forwarder.forward(u64::MAX)?;
        if replayed.forwarded_records > 0 {
            tracing::info!(
                records = replayed.forwarded_records,
                "CDRs recovered from the journal"
            );
        }
        forwarder.save_checkpoint()?;
        let stats = Arc::new(CdrStats::default());
        let (jobs, rx) = std::sync::mpsc::channel();
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || run(journal, forwarder, rx, durable, thread_stats, errors))?;
        Ok(Self {
            jobs,
            thread: Some(thread),
            stats,
        })
    }

    /// Queues a record; its `token` comes back on the durable channel.
    pub fn write(&self, record: Record, token: u64) {
        self.stats.backlog.fetch_add(1, Ordering::Relaxed);
        if self
            .jobs
            .send(Job::Write {
                record: Box::new(record),
                token,
            })
            .is_err()
        {
            tracing::error!("CDR writer thread is gone; record lost");
        }
    }

    /// Flushes everything to disk and stops the thread.
    pub fn stop(mut self) {
        let _ = self.jobs.send(Job::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut journal: Journal,
    mut forwarder: Forwarder,
    jobs: Receiver<Job>,
    durable: UnboundedSender<Vec<u64>>,
    stats: Arc<CdrStats>,
    errors: IntCounter,
) {
    // Tokens of records appended but not yet synced, with their sequence numbers.
    let mut waiting: Vec<(u64, u64)> = Vec::new();
    let mut stopping = false;
    loop {
        // Sleep until the journal's batch is due, or until records synced but not yet in the
        // daily files are due for the sink; otherwise until the next job.
        let unforwarded = journal.durable_seq() > forwarder.forwarded_seq();
        let deadline = match (journal.flush_deadline(), unforwarded) {
            (Some(at), _) => Some(at),
            (None, true) => Some(Instant::now() + FORWARD_LAG),
            (None, false) => None,
        };
        let job = match deadline {
            Some(at) => jobs.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match job {
            Ok(Job::Write { record, token }) => match journal.append(&record) {
                Ok(seq) => waiting.push((seq, token)),
                Err(error) => {
                    // The record cannot even be buffered (backlog full or invalid): settle the
                    // call anyway so signalling is never held hostage by the disk.
                    tracing::error!(%error, "CDR not journaled");
                    errors.inc();
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    stats.backlog.fetch_sub(1, Ordering::Relaxed);
                    let _ = durable.send(vec![token]);
                }
            },
            Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => stopping = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        let forward_due = forwarder.forward_due(journal.durable_seq(), now);
        if stopping || forward_due || journal.flush_due(now) || waiting.len() >= SYNC_BATCH {
            if let Err(error) = journal.sync() {
                tracing::error!(%error, "CDR journal sync failed; will retry");
                errors.inc();
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            let durable_seq = journal.durable_seq();
            let (done, still): (Vec<_>, Vec<_>) =
                waiting.iter().partition(|(seq, _)| *seq <= durable_seq);
            waiting = still;
            if !done.is_empty() {
                stats
                    .written
                    .fetch_add(done.len() as u64, Ordering::Relaxed);
                stats
                    .backlog
                    .fetch_sub(done.len() as u64, Ordering::Relaxed);
                let _ = durable.send(done.into_iter().map(|(_, token)| token).collect());
            }
            if stopping || forward_due || forwarder.forward_due(durable_seq, now) {
                if let Err(error) = forwarder.forward(durable_seq) {
                    tracing::error!(%error, "CDR sink write failed; will retry");
                    errors.inc();
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if stopping {
            if let Err(error) = forwarder.save_checkpoint() {
                tracing::error!(%error, "CDR checkpoint failed");
            }
            if !waiting.is_empty() {
                tracing::error!(records = waiting.len(), "CDRs not durable at shutdown");
                let _ = durable.send(waiting.drain(..).map(|(_, token)| token).collect());
            }
            return;
        }
    }
}
