//! The CDR writer: two threads, the journal and the forwarder.
//!
//! The core hands the journal thread each finished call's record and holds the call's last
//! response (the 200 to the BYE, the 487 to a cancelled INVITE) until that thread reports the
//! record durable, so a call the far end saw complete always has its CDR on disk. The journal
//! batches records (one fdatasync per batch, at most `SYNC_DELAY` late), so this costs
//! milliseconds, not a disk write per call.
//!
//! The forwarder thread copies durable records into the sinks (daily files, PostgreSQL) and
//! advances the checkpoint. The journal thread hands it each synced batch's records in memory;
//! it reads the journal files back only for what memory does not hold (the replay at start,
//! a sink down for long, see `cdr::forwarder`). It is separate so that a slow or dead sink
//! — a database restarting — never delays the journal and therefore never delays a call. A
//! failing disk does not block calls either: the journal thread still reports the records as
//! settled, counts the error and keeps them in its bounded backlog to retry.

use cdr::journal::{Journal, JournalConfig};
use cdr::postgres::PostgresConfig;
use cdr::sink::{FileSink, FileSinkConfig, PostgresSink, Sink};
use cdr::{ForwardProgress, Forwarder, ForwarderConfig, Record};
use prometheus::IntCounter;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Longest a record waits in memory before the batch is synced.
const SYNC_DELAY: Duration = Duration::from_millis(10);

/// How long durable records may wait before they are copied into the sinks.
const FORWARD_LAG: Duration = Duration::from_millis(200);

/// A token already reported (its call was settled when a sync failed).
const NO_TOKEN: u64 = 0;

/// Records per fdatasync at most.
const SYNC_BATCH: usize = 256;

/// Longest pause between retries of a failing sink.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Longest pause between attempts to sync a journal whose disk keeps failing.
const MAX_SYNC_RETRY_DELAY: Duration = Duration::from_secs(1);

/// What the journal thread is asked to do.
enum Job {
    /// Journal a record; report `token` once it is durable.
    Write { record: Box<Record>, token: u64 },
    /// Sync and stop.
    Stop,
}

/// Counters shared with the metrics exporter.
#[derive(Debug, Default)]
pub struct CdrStats {
    /// Records journaled and synced.
    pub written: AtomicU64,
    /// Records waiting in memory for a sync.
    pub backlog: AtomicU64,
    /// Records durable in the journal but not yet in every sink.
    pub unforwarded: AtomicU64,
    /// Journal or sink errors.
    pub errors: AtomicU64,
    /// Records the forwarder read back from the journal files instead of taking them from
    /// the journal thread's hand-over (the replay at start, a sink down for long).
    pub read_back: AtomicU64,
}

/// Where the CDRs go, from configuration.
pub struct CdrSinks<'a> {
    /// Directory of the journal and the daily files.
    pub dir: &'a Path,
    /// Also write daily CSV files.
    pub csv: bool,
    /// Also insert into this PostgreSQL database.
    pub postgres_url: Option<&'a str>,
    /// This node's name in the database rows (`None` = the host name).
    pub node: Option<&'a str>,
}

/// Handle to the writer threads.
pub struct CdrWriter {
    jobs: Sender<Job>,
    journal_thread: Option<std::thread::JoinHandle<()>>,
    forwarder_thread: Option<std::thread::JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<CdrStats>,
}

impl CdrWriter {
    /// Opens the journal under `dir/journal` and the sinks, replays into the sinks what a crash
    /// left in the journal, and starts both threads. `durable` receives the tokens of records
    /// once they are on disk (or could not be, see the module doc).
    pub fn start(
        sinks: CdrSinks<'_>,
        durable: UnboundedSender<Vec<u64>>,
        errors: IntCounter,
    ) -> anyhow::Result<Self> {
        let journal_dir = sinks.dir.join("journal");
        let journal = Journal::open(
            &journal_dir,
            JournalConfig {
                max_batch_records: SYNC_BATCH,
                max_batch_delay: SYNC_DELAY,
                ..JournalConfig::default()
            },
        )?;
        let mut outputs: Vec<Box<dyn Sink>> = vec![Box::new(FileSink::open(
            sinks.dir,
            FileSinkConfig { csv: sinks.csv },
        )?)];
        if let Some(url) = sinks.postgres_url {
            // Connects lazily: a database that is down at start-up is retried like one that
            // goes down later, and never stops calls.
            let node = node_name(sinks.node);
            outputs.push(Box::new(PostgresSink::new(
                &PostgresConfig::new(url).with_node(node),
            )?));
        }
        let forwarder = Forwarder::open(
            &journal_dir,
            outputs,
            ForwarderConfig {
                max_lag: FORWARD_LAG,
                ..ForwarderConfig::default()
            },
        )?;
        let stats = Arc::new(CdrStats::default());
        let journal_on_disk = journal.durable_seq();
        let durable_seq = Arc::new(AtomicU64::new(journal_on_disk));
        let (jobs, job_rx) = std::sync::mpsc::channel();
        let (handed, handed_rx) = std::sync::mpsc::channel();
        let journal_thread = {
            let (stats, durable_seq, errors) = (stats.clone(), durable_seq.clone(), errors.clone());
            std::thread::Builder::new()
                .name("cdr-journal".into())
                .spawn(move || {
                    run_journal(journal, job_rx, durable, handed, durable_seq, stats, errors)
                })?
        };
        let forwarder_thread = {
            let stats = stats.clone();
            let on_disk = journal_on_disk;
            std::thread::Builder::new()
                .name("cdr-forwarder".into())
                .spawn(move || {
                    run_forwarder(forwarder, on_disk, handed_rx, durable_seq, stats, errors)
                })?
        };
        Ok(Self {
            jobs,
            journal_thread: Some(journal_thread),
            forwarder_thread: Some(forwarder_thread),
            stats,
        })
    }

    /// Queues a record; its `token` comes back on the durable channel.
    pub fn write(&self, record: Record, token: u64) {
        self.stats.backlog.fetch_add(1, Ordering::Relaxed);
        let job = Job::Write {
            record: Box::new(record),
            token,
        };
        if self.jobs.send(job).is_err() {
            tracing::error!("CDR journal thread is gone; record lost");
        }
    }

    /// Flushes everything to disk and the sinks, then stops both threads.
    pub fn stop(mut self) {
        let _ = self.jobs.send(Job::Stop);
        if let Some(thread) = self.journal_thread.take() {
            let _ = thread.join();
        }
        // The journal thread dropped its sender of durable records: the forwarder drains and exits.
        if let Some(thread) = self.forwarder_thread.take() {
            let _ = thread.join();
        }
    }
}

fn count_error(stats: &CdrStats, errors: &IntCounter) {
    errors.inc();
    stats.errors.fetch_add(1, Ordering::Relaxed);
}

fn run_journal(
    mut journal: Journal,
    jobs: Receiver<Job>,
    durable: UnboundedSender<Vec<u64>>,
    forwarder: Sender<Vec<Record>>,
    durable_seq: Arc<AtomicU64>,
    stats: Arc<CdrStats>,
    errors: IntCounter,
) {
    // Tokens of records appended but not yet synced, with their sequence numbers.
    let mut waiting: Vec<(u64, u64)> = Vec::new();
    // The same records, stamped, for the forwarder once they are durable.
    let mut unsynced: Vec<Record> = Vec::new();
    let mut stopping = false;
    let mut retry = SyncRetry::default();
    loop {
        // A batch that is open syncs at its deadline whatever arrives before it: sleep till
        // then and take every record queued meanwhile in one pass. Woken for each record
        // instead, this thread cost call control a futex wake-up per call, 8 % of its time
        // (issue 12, docs/scaling.md). A stop waits until then: one batch delay, or the pause
        // before the next attempt on a failing disk.
        let deadline = retry.wake_at(journal.flush_deadline());
        // Journals one job; true when the writer is to stop.
        let mut take = |job: Result<Job, TryRecvError>| match job {
            Ok(Job::Write { mut record, token }) => {
                match journal.append_stamping(&mut record) {
                    Ok(seq) => {
                        waiting.push((seq, token));
                        unsynced.push(*record);
                    }
                    Err(error) => {
                        // The record cannot even be buffered (backlog full or invalid): settle
                        // the call anyway so signalling is never held hostage by the disk.
                        tracing::error!(%error, "CDR not journaled");
                        count_error(&stats, &errors);
                        stats.backlog.fetch_sub(1, Ordering::Relaxed);
                        let _ = durable.send(vec![token]);
                    }
                }
                false
            }
            Ok(Job::Stop) | Err(TryRecvError::Disconnected) => true,
            Err(TryRecvError::Empty) => false,
        };
        stopping |= match deadline {
            Some(at) => {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                false
            }
            None => take(jobs.recv().map_err(|_| TryRecvError::Disconnected)),
        };
        while !stopping {
            match jobs.try_recv() {
                Err(TryRecvError::Empty) => break,
                job => stopping = take(job),
            }
        }
        let now = Instant::now();
        let sync_due = journal.flush_due(now) || waiting.len() >= SYNC_BATCH;
        if stopping || (sync_due && retry.allows(now)) {
            let attempt = journal.sync();
            retry.record(Instant::now(), attempt.is_ok());
            if let Err(error) = attempt {
                // The records stay buffered and the next sync retries them, but the calls
                // waiting on them are settled now: signalling is never held by the disk.
                tracing::error!(%error, records = waiting.len(), "CDR journal sync failed; will retry");
                count_error(&stats, &errors);
                // Each call once: tokens settled by an earlier failure are not sent again.
                let unsettled: Vec<u64> = waiting
                    .iter()
                    .map(|(_, token)| *token)
                    .filter(|t| *t != NO_TOKEN)
                    .collect();
                if !unsettled.is_empty() {
                    let _ = durable.send(unsettled);
                }
                for (_, token) in &mut waiting {
                    *token = NO_TOKEN;
                }
            }
            let synced = journal.durable_seq();
            // Handed over before `durable_seq` says they are durable, so a forwarder that has
            // read `durable_seq` finds every record up to it in its channel. (A forwarder woken
            // by the hand-over may read `durable_seq` before it moves: it takes the records'
            // own sequence numbers as durable too, see `run_forwarder`.)
            let durable_records = unsynced.partition_point(|record| record.seq() <= synced);
            if durable_records > 0 {
                let _ = forwarder.send(unsynced.drain(..durable_records).collect());
            }
            durable_seq.store(synced, Ordering::Release);
            let (done, still): (Vec<_>, Vec<_>) =
                waiting.iter().partition(|(seq, _)| *seq <= synced);
            waiting = still;
            if !done.is_empty() {
                stats
                    .written
                    .fetch_add(done.len() as u64, Ordering::Relaxed);
                stats
                    .backlog
                    .fetch_sub(done.len() as u64, Ordering::Relaxed);
                let tokens: Vec<u64> = done
                    .into_iter()
                    .map(|(_, token)| token)
                    .filter(|t| *t != NO_TOKEN)
                    .collect();
                let _ = durable.send(tokens);
            }
        }
        if stopping {
            if !waiting.is_empty() {
                tracing::error!(records = waiting.len(), "CDRs not durable at shutdown");
                let _ = durable.send(waiting.drain(..).map(|(_, token)| token).collect());
            }
            if let Err(error) = journal.close() {
                tracing::error!(%error, "CDR journal close failed");
            }
            return;
        }
    }
}

/// When the journal thread may sync again after a failed sync. A failed batch stays due, and
/// retried at once it made this thread spin on a failing disk, taking a core from call
/// control and writing the error log as fast as it could: the next attempt waits one batch
/// delay, then twice as long after each failure up to a second.
#[derive(Debug, Default)]
struct SyncRetry {
    delay: Option<Duration>,
    not_before: Option<Instant>,
}

impl SyncRetry {
    /// Notes how the sync attempted at `now` went.
    fn record(&mut self, now: Instant, succeeded: bool) {
        if succeeded {
            *self = Self::default();
            return;
        }
        let delay = self
            .delay
            .map_or(SYNC_DELAY, |delay| (delay * 2).min(MAX_SYNC_RETRY_DELAY));
        self.delay = Some(delay);
        self.not_before = Some(now + delay);
    }

    /// Whether a sync may be attempted at `now`.
    fn allows(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|at| now >= at)
    }

    /// When the thread wakes to sync: the open batch's deadline, not before the next attempt
    /// is allowed.
    fn wake_at(&self, batch_deadline: Option<Instant>) -> Option<Instant> {
        match (batch_deadline, self.not_before) {
            (Some(deadline), Some(retry)) => Some(deadline.max(retry)),
            (deadline, None) => deadline,
            (None, retry) => retry,
        }
    }
}

fn run_forwarder(
    mut forwarder: Forwarder,
    on_disk_at_start: u64,
    durable_records: Receiver<Vec<Record>>,
    durable_seq: Arc<AtomicU64>,
    stats: Arc<CdrStats>,
    errors: IntCounter,
) {
    // Start-up: replay what a crash left in the journal, up to what was on disk when it was
    // opened; every record journaled since comes through the channel.
    let mut retry_delay = Duration::from_millis(100);
    let replay = forward(&mut forwarder, on_disk_at_start, &stats, &errors);
    if let Ok(progress) = replay {
        if progress.forwarded_records > 0 {
            tracing::info!(
                records = progress.forwarded_records,
                "CDRs recovered from the journal"
            );
        }
    }
    let mut failing = replay.is_err();
    let mut stopping = false;
    // What is durable: the journal's mark, or the records handed over, whichever is further.
    let durable_now = |forwarder: &Forwarder| {
        durable_seq
            .load(Ordering::Acquire)
            .max(forwarder.handed_seq())
    };
    loop {
        let durable = durable_now(&forwarder);
        let behind = durable > forwarder.forwarded_seq();
        stats.unforwarded.store(
            durable.saturating_sub(forwarder.forwarded_seq()),
            Ordering::Relaxed,
        );
        stats
            .read_back
            .store(forwarder.read_back_records(), Ordering::Relaxed);
        if stopping && (!behind || failing) {
            break;
        }
        // Sleep until woken by new durable records, or until the lag or retry delay is up.
        let timeout = match (failing, behind) {
            (true, _) => Some(retry_delay),
            (false, true) => Some(FORWARD_LAG),
            (false, false) => None,
        };
        let woke = match timeout {
            _ if stopping => Err(RecvTimeoutError::Timeout),
            Some(t) => durable_records.recv_timeout(t),
            None => durable_records
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        match woke {
            Ok(records) => forwarder.hand_over(records),
            Err(RecvTimeoutError::Disconnected) => stopping = true,
            Err(RecvTimeoutError::Timeout) => {}
        }
        let mark = durable_seq.load(Ordering::Acquire);
        // Every record up to `mark` was sent before it was stored (see `run_journal`).
        loop {
            match durable_records.try_recv() {
                Ok(records) => forwarder.hand_over(records),
                Err(TryRecvError::Disconnected) => {
                    stopping = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        let durable = mark.max(forwarder.handed_seq());
        if stopping || failing || forwarder.forward_due(durable, Instant::now()) {
            match forward(&mut forwarder, durable, &stats, &errors) {
                Ok(_) => {
                    failing = false;
                    retry_delay = Duration::from_millis(100);
                }
                Err(()) => {
                    failing = true;
                    retry_delay = (retry_delay * 2).min(MAX_RETRY_DELAY);
                    if stopping {
                        break;
                    }
                }
            }
        }
    }
    if let Err(error) = forwarder.save_checkpoint() {
        tracing::error!(%error, "CDR checkpoint failed");
    }
}

/// Forwards up to `up_to`; errors are logged and counted (the forwarder keeps the batch).
fn forward(
    forwarder: &mut Forwarder,
    up_to: u64,
    stats: &CdrStats,
    errors: &IntCounter,
) -> Result<ForwardProgress, ()> {
    match forwarder.forward(up_to) {
        Ok(progress) => Ok(progress),
        Err(error) => {
            tracing::warn!(%error, "CDR sink write failed; will retry");
            count_error(stats, errors);
            Err(())
        }
    }
}

/// The name in this node's PostgreSQL rows (CDRs and audit records): `[cdr] node`, or the
/// host name.
pub fn node_name(configured: Option<&str>) -> String {
    configured.map_or_else(host_name, str::to_owned)
}

/// The machine's host name (the default node name in CDR rows); `switchboard` if the system
/// does not say.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which outlives the call; gethostname
    // writes at most `len` bytes into it.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let name = if result == 0 {
        let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
        String::from_utf8_lossy(&buffer[..end]).into_owned()
    } else {
        String::new()
    };
    if name.is_empty() {
        "switchboard".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdr::model::{AgentState, AgentStateRecord};

    fn record(agent: &str) -> Record {
        let at = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("instant");
        Record::AgentState(AgentStateRecord {
            seq: 0,
            agent: agent.to_owned(),
            state: AgentState::Ready,
            reason: None,
            started: at,
            ended: at,
            duration_s: 0.0,
            call_id: None,
        })
    }

    fn writer(dir: &Path) -> (CdrWriter, tokio::sync::mpsc::UnboundedReceiver<Vec<u64>>) {
        let (durable_tx, durable_rx) = tokio::sync::mpsc::unbounded_channel();
        let sinks = CdrSinks {
            dir,
            csv: false,
            postgres_url: None,
            node: None,
        };
        let errors = IntCounter::new("test_cdr_errors", "test").expect("metric");
        let writer = CdrWriter::start(sinks, durable_tx, errors).expect("writer starts");
        (writer, durable_rx)
    }

    /// Records that arrive while a batch is open are taken when it is due (the journal thread
    /// sleeps until then instead of waking per record): every token still comes back durable.
    #[test]
    fn records_sent_while_a_batch_is_open_all_come_back_durable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, mut durable) = writer(dir.path());
        for token in 1..=50 {
            writer.write(record(&format!("a{token}")), token);
        }
        let mut settled = Vec::new();
        while settled.len() < 50 {
            settled.extend(durable.blocking_recv().expect("the writer reports"));
        }
        settled.sort_unstable();
        assert_eq!(settled, (1..=50).collect::<Vec<u64>>());
        assert_eq!(writer.stats.written.load(Ordering::Relaxed), 50);
        assert_eq!(writer.stats.backlog.load(Ordering::Relaxed), 0);
        writer.stop();
    }

    #[test]
    fn a_failing_sync_is_retried_after_a_growing_pause_and_at_once_after_a_success() {
        let start = Instant::now();
        let mut retry = SyncRetry::default();
        let batch_due = Some(start);
        assert!(retry.allows(start));
        assert_eq!(retry.wake_at(batch_due), batch_due);
        retry.record(start, false);
        assert!(!retry.allows(start));
        assert!(retry.allows(start + SYNC_DELAY));
        assert_eq!(retry.wake_at(batch_due), Some(start + SYNC_DELAY));
        let mut pauses = Vec::new();
        let mut now = start;
        for _ in 0..10 {
            retry.record(now, false);
            let next = retry.wake_at(batch_due).expect("a retry is planned");
            pauses.push(next - now);
            now = next;
        }
        assert_eq!(pauses[0], SYNC_DELAY * 2);
        assert_eq!(pauses[1], SYNC_DELAY * 4);
        assert!(pauses.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(pauses.last(), Some(&MAX_SYNC_RETRY_DELAY));
        retry.record(now, true);
        assert!(retry.allows(now));
        assert_eq!(retry.wake_at(batch_due), batch_due);
    }

    /// Live records reach the daily file from the journal thread's hand-over, not by reading
    /// the journal back; a restart replays from the files what was not forwarded.
    #[test]
    fn live_records_are_forwarded_from_memory_and_replayed_from_the_files_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (live, mut durable) = writer(dir.path());
        for token in 1..=20 {
            live.write(record(&format!("a{token}")), token);
        }
        let mut settled = 0;
        while settled < 20 {
            settled += durable.blocking_recv().expect("the writer reports").len();
        }
        let stats = live.stats.clone();
        live.stop();
        assert_eq!(stats.read_back.load(Ordering::Relaxed), 0);
        assert_eq!(stats.unforwarded.load(Ordering::Relaxed), 0);
        let day_file = dir.path().join("cdr-2027-01-15.jsonl");
        let lines = |path: &Path| {
            std::fs::read_to_string(path)
                .expect("daily file")
                .lines()
                .count()
        };
        assert_eq!(lines(&day_file), 20);

        // A crash after journaling and before forwarding: the checkpoint and the daily file
        // are set back, and the next start reads the records from the journal.
        std::fs::remove_file(dir.path().join("journal").join("checkpoint")).expect("checkpoint");
        std::fs::remove_file(&day_file).expect("daily file");
        let (restarted, _durable) = writer(dir.path());
        let stats = restarted.stats.clone();
        restarted.stop();
        assert_eq!(stats.read_back.load(Ordering::Relaxed), 20);
        assert_eq!(lines(&day_file), 20);
    }

    /// The journal thread hands records over before it moves the durable mark, so a forwarder
    /// woken by the hand-over may read the mark before it moves, then sleep with nothing more
    /// to come. The records themselves say they are durable: here the mark never moves, as if
    /// the journal thread stayed preempted between the two, and the record still reaches the
    /// daily file while the forwarder runs (not only at its stop).
    #[test]
    fn records_handed_over_before_the_durable_mark_moves_are_forwarded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal_dir = dir.path().join("journal");
        let mut journal = Journal::open(&journal_dir, JournalConfig::default()).expect("journal");
        let file_sink =
            FileSink::open(dir.path(), FileSinkConfig { csv: false }).expect("file sink");
        let forwarder = Forwarder::open(
            &journal_dir,
            vec![Box::new(file_sink)],
            ForwarderConfig {
                max_lag: FORWARD_LAG,
                ..ForwarderConfig::default()
            },
        )
        .expect("forwarder");
        let mark = Arc::new(AtomicU64::new(journal.durable_seq()));
        let (handed, handed_rx) = std::sync::mpsc::channel();
        let stats = Arc::new(CdrStats::default());
        let errors = IntCounter::new("test_cdr_errors", "test").expect("metric");
        let thread = {
            let (mark, stats) = (mark.clone(), stats.clone());
            std::thread::spawn(move || run_forwarder(forwarder, 0, handed_rx, mark, stats, errors))
        };
        let mut early = record("early");
        journal.append_stamping(&mut early).expect("journaled");
        journal.sync().expect("synced");
        handed.send(vec![early]).expect("forwarder listens");
        let day_file = dir.path().join("cdr-2027-01-15.jsonl");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&day_file).is_ok_and(|text| text.contains("early")) {
            assert!(
                Instant::now() < deadline,
                "the handed-over record never reached the daily file"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(mark.load(Ordering::Relaxed), 0, "the mark never moved");
        drop(handed);
        thread.join().expect("forwarder thread");
        assert_eq!(stats.read_back.load(Ordering::Relaxed), 0);
    }

    /// A record written just before the stop is synced and reported before the threads end.
    #[test]
    fn a_stop_right_after_a_write_still_syncs_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, mut durable) = writer(dir.path());
        writer.write(record("late"), 7);
        let stats = writer.stats.clone();
        writer.stop();
        let mut settled = Vec::new();
        while let Ok(tokens) = durable.try_recv() {
            settled.extend(tokens);
        }
        assert_eq!(settled, vec![7]);
        assert_eq!(stats.written.load(Ordering::Relaxed), 1);
    }
}
