use std::sync::{Arc, Mutex};

use super::*;
use crate::journal::{Journal, JournalConfig};
use crate::model::fixtures::answered_call;
use crate::sink::{FileSink, FileSinkConfig};

/// A sink that records what it stored and can be told to fail.
#[derive(Clone, Default)]
struct MemorySink {
    stored: Arc<Mutex<Vec<u64>>>,
    failing: Arc<Mutex<bool>>,
    calls: Arc<Mutex<usize>>,
}

impl Sink for MemorySink {
    fn write_batch(&mut self, records: &[(u64, Record)]) -> Result<(), SinkError> {
        *self.calls.lock().unwrap() += 1;
        if *self.failing.lock().unwrap() {
            return Err(SinkError::Backend("database is down".into()));
        }
        let mut stored = self.stored.lock().unwrap();
        for (seq, record) in records {
            assert_eq!(*seq, record.seq());
            stored.push(*seq);
        }
        Ok(())
    }

    fn name(&self) -> &str {
        "memory"
    }
}

impl MemorySink {
    fn stored(&self) -> Vec<u64> {
        self.stored.lock().unwrap().clone()
    }
    fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

fn call(id: &str) -> Record {
    let mut call = answered_call();
    call.id = id.to_string();
    Record::Call(call)
}

/// A journal and a forwarder into one memory sink, in a directory of their own.
struct Rig {
    dir: tempfile::TempDir,
    sink: MemorySink,
    journal: Journal,
    forwarder: Forwarder,
}

fn rig(config: ForwarderConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let forwarder = Forwarder::open(dir.path(), vec![Box::new(sink.clone())], config).unwrap();
    Rig {
        dir,
        sink,
        journal,
        forwarder,
    }
}

fn small_checkpoints() -> ForwarderConfig {
    ForwarderConfig {
        max_batch_records: 2,
        checkpoint_every_records: 1,
        ..ForwarderConfig::default()
    }
}

#[test]
fn forwards_only_durable_records() {
    let Rig {
        dir,
        sink,
        mut journal,
        mut forwarder,
    } = rig(small_checkpoints());
    for id in ["a", "b", "c"] {
        journal.append(&call(id)).unwrap();
    }
    journal.sync().unwrap();
    journal.append(&call("d")).unwrap();
    // Up to the durable sequence only, even though more could become readable.
    let progress = forwarder.forward(2).unwrap();
    assert_eq!(progress.forwarded_records, 2);
    assert_eq!(sink.stored(), vec![1, 2]);
    let progress = forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(progress.forwarded_seq, 3);
    assert_eq!(sink.stored(), vec![1, 2, 3]);
    journal.sync().unwrap();
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), vec![1, 2, 3, 4]);
    assert_eq!(read_checkpoint(dir.path()).unwrap(), 4);
}

#[test]
fn failed_sink_is_retried_without_duplicating_healthy_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = MemorySink::default();
    let flaky = MemorySink::default();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let mut forwarder = Forwarder::open(
        dir.path(),
        vec![Box::new(healthy.clone()), Box::new(flaky.clone())],
        small_checkpoints(),
    )
    .unwrap();
    for id in ["a", "b"] {
        journal.append(&call(id)).unwrap();
    }
    journal.sync().unwrap();

    flaky.fail(true);
    let error = forwarder.forward(journal.durable_seq()).unwrap_err();
    assert!(matches!(error, ForwardError::Sink { ref sink, .. } if sink == "memory"));
    assert_eq!(healthy.stored(), vec![1, 2]);
    assert_eq!(forwarder.pending_records(), 2);
    assert_eq!(read_checkpoint(dir.path()).unwrap(), 0);

    // The journal keeps taking records while the sink is down.
    journal.append(&call("c")).unwrap();
    journal.sync().unwrap();

    flaky.fail(false);
    let progress = forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(progress.forwarded_seq, 3);
    assert_eq!(healthy.stored(), vec![1, 2, 3]);
    assert_eq!(flaky.stored(), vec![1, 2, 3]);
    assert_eq!(read_checkpoint(dir.path()).unwrap(), 3);
}

#[test]
fn restart_replays_from_the_checkpoint_into_files_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    let cdr_dir = dir.path().join("cdr");
    let config = ForwarderConfig {
        max_batch_records: 2,
        // Never saved during the run: a crash leaves the checkpoint behind the files.
        checkpoint_every_records: u64::MAX,
        ..ForwarderConfig::default()
    };
    let mut journal = Journal::open(&journal_dir, JournalConfig::default()).unwrap();
    let file_sink = FileSink::open(&cdr_dir, FileSinkConfig { csv: true }).unwrap();
    let mut forwarder =
        Forwarder::open(&journal_dir, vec![Box::new(file_sink)], config.clone()).unwrap();
    for id in ["a", "b", "c"] {
        journal.append(&call(id)).unwrap();
    }
    journal.sync().unwrap();
    forwarder.forward(journal.durable_seq()).unwrap();
    journal.append(&call("d")).unwrap();
    journal.sync().unwrap();
    // Crash: "d" is journaled but not forwarded, the checkpoint is still 0.
    drop((journal, forwarder));
    assert_eq!(read_checkpoint(&journal_dir).unwrap(), 0);

    let file_sink = FileSink::open(&cdr_dir, FileSinkConfig { csv: true }).unwrap();
    let mut forwarder = Forwarder::open(&journal_dir, vec![Box::new(file_sink)], config).unwrap();
    let progress = forwarder.forward(u64::MAX).unwrap();
    assert_eq!(progress.forwarded_seq, 4);
    forwarder.save_checkpoint().unwrap();
    assert_eq!(read_checkpoint(&journal_dir).unwrap(), 4);

    let text = std::fs::read_to_string(cdr_dir.join("cdr-2025-03-03.jsonl")).unwrap();
    let seqs: Vec<u64> = text
        .lines()
        .map(|l| serde_json::from_str::<Record>(l).unwrap().seq())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    let csv = std::fs::read_to_string(cdr_dir.join("cdr-2025-03-03.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
}

#[test]
fn fully_forwarded_segments_are_deleted_but_never_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let journal_config = JournalConfig {
        max_segment_bytes: 3000,
        ..JournalConfig::default()
    };
    let mut journal = Journal::open(dir.path(), journal_config).unwrap();
    let mut forwarder = Forwarder::open(
        dir.path(),
        vec![Box::new(sink.clone())],
        ForwarderConfig {
            max_batch_records: 100,
            checkpoint_every_records: u64::MAX,
            ..ForwarderConfig::default()
        },
    )
    .unwrap();
    for i in 0..8 {
        journal.append(&call(&format!("c{i}"))).unwrap();
        journal.sync().unwrap();
    }
    let before = list_segments(dir.path()).unwrap();
    assert!(before.len() >= 3);

    // Forward only part: segments holding unforwarded records must stay.
    let cut = before[1].first_seq; // first record of the second segment
    let progress = forwarder.forward(cut).unwrap();
    assert_eq!(progress.deleted_segments, 1);
    let after = list_segments(dir.path()).unwrap();
    assert_eq!(after.first().map(|s| s.first_seq), Some(cut));
    assert_eq!(read_checkpoint(dir.path()).unwrap(), cut);

    forwarder.forward(journal.durable_seq()).unwrap();
    let remaining = list_segments(dir.path()).unwrap();
    assert_eq!(remaining.len(), 1, "only the live segment remains");
    assert_eq!(remaining[0], *before.last().unwrap());
    assert_eq!(sink.stored(), (1..=8).collect::<Vec<u64>>());

    // Replay after a restart has nothing left to send.
    let (left, _) = {
        let mut replay = crate::journal::replay(dir.path()).unwrap();
        let records: Vec<Record> = replay.by_ref().collect::<Result<_, _>>().unwrap();
        (records, replay.skipped())
    };
    assert!(left.is_empty());
}

#[test]
fn live_partial_line_is_left_until_complete() {
    let Rig {
        dir,
        sink,
        mut journal,
        mut forwarder,
    } = rig(small_checkpoints());
    journal.append(&call("a")).unwrap();
    journal.sync().unwrap();
    let segment = list_segments(dir.path()).unwrap().remove(0).path;
    let line = {
        let mut record = call("b");
        record.set_seq(2);
        let mut line = serde_json::to_vec(&record).unwrap();
        line.push(b'\n');
        line
    };
    // Simulate reading while the writer is half-way through a line.
    let (head, tail) = line.split_at(line.len() / 2);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| std::io::Write::write_all(&mut f, head))
        .unwrap();
    forwarder.forward(u64::MAX).unwrap();
    assert_eq!(sink.stored(), vec![1]);
    assert_eq!(forwarder.skipped(), SkippedLines::default());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut f| std::io::Write::write_all(&mut f, tail))
        .unwrap();
    forwarder.forward(u64::MAX).unwrap();
    assert_eq!(sink.stored(), vec![1, 2]);
}

#[test]
fn needs_a_sink() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Forwarder::open(dir.path(), Vec::new(), ForwarderConfig::default()),
        Err(ForwardError::NoSinks)
    ));
}

#[test]
fn forwarding_is_due_by_lag_count_or_age() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let config = ForwarderConfig {
        max_lag_records: 3,
        max_lag: Duration::from_secs(1),
        ..ForwarderConfig::default()
    };
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let mut forwarder = Forwarder::open(dir.path(), vec![Box::new(sink.clone())], config).unwrap();
    let t0 = Instant::now();
    assert!(!forwarder.forward_due(journal.durable_seq(), t0));
    journal.append(&call("a")).unwrap();
    journal.sync().unwrap();
    assert!(!forwarder.forward_due(journal.durable_seq(), t0));
    assert!(!forwarder.forward_due(1, t0 + Duration::from_millis(999)));
    assert!(forwarder.forward_due(1, t0 + Duration::from_secs(1)));
    for id in ["b", "c"] {
        journal.append(&call(id)).unwrap();
    }
    journal.sync().unwrap();
    assert!(forwarder.forward_due(journal.durable_seq(), t0));
    forwarder.forward(journal.durable_seq()).unwrap();
    assert!(!forwarder.forward_due(journal.durable_seq(), t0 + Duration::from_secs(5)));

    // After a sink error the pending batch is due at once.
    sink.fail(true);
    journal.append(&call("d")).unwrap();
    journal.sync().unwrap();
    assert!(forwarder.forward(journal.durable_seq()).is_err());
    assert!(forwarder.forward_due(journal.durable_seq(), t0));
}

#[test]
fn a_number_the_journal_skipped_after_a_crash_is_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    // A node killed right after start leaves an empty segment named 1; the next journal skips
    // number 1 and starts at 2.
    drop(Journal::open(dir.path(), JournalConfig::default()).unwrap());
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(journal.next_seq(), 2);
    let sink = MemorySink::default();
    let mut forwarder = Forwarder::open(
        dir.path(),
        vec![Box::new(sink.clone())],
        ForwarderConfig::default(),
    )
    .unwrap();
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(
        forwarder.forwarded_seq(),
        journal.durable_seq(),
        "the gap does not leave the forwarder behind for ever"
    );
    journal.append(&call("after")).unwrap();
    journal.sync().unwrap();
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), vec![2]);
    assert_eq!(forwarder.forwarded_seq(), 2);
}

/// What the journal's writer does: journals records, syncs, and keeps the records it can hand
/// over (stamped with their sequence numbers).
fn journal_durable(journal: &mut Journal, records: Vec<Record>) -> Vec<Record> {
    let records = records
        .into_iter()
        .map(|mut record| {
            journal.append_stamping(&mut record).unwrap();
            record
        })
        .collect();
    journal.sync().unwrap();
    records
}

fn calls(ids: &[&str]) -> Vec<Record> {
    ids.iter().map(|id| call(id)).collect()
}

#[test]
fn records_handed_over_are_forwarded_without_reading_the_files() {
    let Rig {
        dir,
        sink,
        mut journal,
        mut forwarder,
    } = rig(small_checkpoints());
    forwarder.forward(u64::MAX).unwrap();
    let durable = journal_durable(&mut journal, calls(&["a", "b", "c"]));
    forwarder.hand_over(durable);
    forwarder.forward(journal.durable_seq()).unwrap();
    let durable = journal_durable(&mut journal, calls(&["d"]));
    forwarder.hand_over(durable);
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), vec![1, 2, 3, 4]);
    assert_eq!(forwarder.read_back_records(), 0);
    assert_eq!(read_checkpoint(dir.path()).unwrap(), 4);
}

/// The daily files hold the same bytes whether the forwarder took the records from memory or
/// read them back from the journal (a replay after a crash writes what live forwarding would).
#[test]
fn the_daily_files_are_the_same_from_memory_as_from_the_journal() {
    let mut state = Record::AgentState(crate::model::fixtures::not_ready_period());
    if let Record::AgentState(period) = &mut state {
        period.ended = period.ended.replace_nanosecond(123_456_789).unwrap();
    }
    let mut quoted = answered_call();
    quoted.id = "with \"quotes\", commas and 中文".into();
    quoted.talk_s = 0.1 + 0.2;
    let records = vec![call("a"), state, Record::Call(quoted)];
    let mut texts = Vec::new();
    for from_memory in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let journal_dir = dir.path().join("journal");
        let mut journal = Journal::open(&journal_dir, JournalConfig::default()).unwrap();
        let file_sink = FileSink::open(dir.path(), FileSinkConfig { csv: true }).unwrap();
        let mut forwarder = Forwarder::open(
            &journal_dir,
            vec![Box::new(file_sink)],
            ForwarderConfig::default(),
        )
        .unwrap();
        let durable = journal_durable(&mut journal, records.clone());
        if from_memory {
            forwarder.hand_over(durable);
        }
        forwarder.forward(journal.durable_seq()).unwrap();
        let read_back = if from_memory { 0 } else { 3 };
        assert_eq!(forwarder.read_back_records(), read_back);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_file())
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        files.sort();
        assert!(files.len() >= 2, "a JSON and a CSV file: {files:?}");
        texts.push(files);
    }
    assert_eq!(texts[0], texts[1]);
}

/// What memory lacks — here the first three records, as after a hand-over that dropped its
/// oldest — is read from the files, then forwarding goes on from memory.
#[test]
fn what_memory_lacks_is_read_from_the_files_then_memory_takes_over_again() {
    let Rig {
        dir: _dir,
        sink,
        mut journal,
        mut forwarder,
    } = rig(small_checkpoints());
    let mut durable = journal_durable(&mut journal, calls(&["a", "b", "c", "d", "e", "f"]));
    forwarder.hand_over(durable.split_off(3));
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), (1..=6).collect::<Vec<u64>>());
    assert_eq!(forwarder.read_back_records(), 3);
    let durable = journal_durable(&mut journal, calls(&["g", "h"]));
    forwarder.hand_over(durable);
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), (1..=8).collect::<Vec<u64>>());
    assert_eq!(forwarder.read_back_records(), 3);
}

/// While a sink is down, memory holds at most `max_handed_records`; the records it dropped are
/// read from the files once the sink is back, and every record reaches the sink once.
#[test]
fn a_sink_down_for_long_costs_file_reads_later_not_memory_now() {
    let Rig {
        dir: _dir,
        sink,
        mut journal,
        mut forwarder,
    } = rig(ForwarderConfig {
        max_handed_records: 2,
        ..small_checkpoints()
    });
    sink.fail(true);
    let durable = journal_durable(&mut journal, calls(&["a", "b"]));
    forwarder.hand_over(durable);
    assert!(forwarder.forward(journal.durable_seq()).is_err());
    for ids in [["c", "d"], ["e", "f"]] {
        let durable = journal_durable(&mut journal, calls(&ids));
        forwarder.hand_over(durable);
        assert!(forwarder.forward(journal.durable_seq()).is_err());
        assert!(forwarder.handed.len() <= 2);
    }
    sink.fail(false);
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), (1..=6).collect::<Vec<u64>>());
    assert_eq!(
        forwarder.read_back_records(),
        2,
        "c and d, dropped from memory"
    );
    assert!(forwarder.handed.is_empty());
}

/// Records replayed from the files at start-up and then handed over by the writer (it was
/// already journaling while the replay ran) reach the sink once.
#[test]
fn records_replayed_at_start_are_not_forwarded_again_when_handed_over() {
    let Rig {
        dir: _dir,
        sink,
        mut journal,
        mut forwarder,
    } = rig(small_checkpoints());
    let mut durable = journal_durable(&mut journal, calls(&["a", "b", "c"]));
    forwarder.forward(u64::MAX).unwrap();
    durable.extend(journal_durable(&mut journal, calls(&["d"])));
    forwarder.hand_over(durable);
    forwarder.forward(journal.durable_seq()).unwrap();
    assert_eq!(sink.stored(), vec![1, 2, 3, 4]);
    assert_eq!(forwarder.read_back_records(), 3);
}

/// A record the journal refused keeps its old sequence number: the writer never hands over a
/// record stamped with a number that is not on disk.
#[test]
fn a_refused_record_is_not_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let mut bad = answered_call();
    bad.seq = 77;
    bad.talk_s = f64::NAN;
    let mut bad = Record::Call(bad);
    assert!(journal.append_stamping(&mut bad).is_err());
    assert_eq!(bad.seq(), 77);
    let mut good = call("a");
    assert_eq!(journal.append_stamping(&mut good).unwrap(), 1);
    assert_eq!(good.seq(), 1);
}

/// The segment the replay at start left open is let go once memory takes over, so deleting it
/// after forwarding frees its disk space (a file held open keeps it).
#[test]
fn a_segment_forwarded_from_memory_is_not_held_open_after_its_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let mut journal = Journal::open(
        dir.path(),
        JournalConfig {
            max_segment_bytes: 3000,
            ..JournalConfig::default()
        },
    )
    .unwrap();
    let mut forwarder = Forwarder::open(
        dir.path(),
        vec![Box::new(sink.clone())],
        small_checkpoints(),
    )
    .unwrap();
    // The replay at start reads the first segment and keeps it open.
    journal.append(&call("before")).unwrap();
    journal.sync().unwrap();
    forwarder.forward(u64::MAX).unwrap();
    for i in 0..8 {
        let durable = journal_durable(&mut journal, calls(&[&format!("c{i}")]));
        forwarder.hand_over(durable);
        forwarder.forward(journal.durable_seq()).unwrap();
    }
    assert_eq!(sink.stored(), (1..=9).collect::<Vec<u64>>());
    assert_eq!(
        list_segments(dir.path()).unwrap().len(),
        1,
        "older ones deleted"
    );
    let held_deleted: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| {
            target.starts_with(&*dir.path().to_string_lossy()) && target.ends_with("(deleted)")
        })
        .collect();
    assert!(held_deleted.is_empty(), "{held_deleted:?}");
}
