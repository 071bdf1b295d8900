use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::model::fixtures::{answered_call, not_ready_period};

fn call(id: &str) -> Record {
    let mut call = answered_call();
    call.id = id.to_string();
    Record::Call(call)
}

fn ids(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| match r {
            Record::Call(c) => c.id.clone(),
            Record::AgentState(s) => format!("state:{}", s.agent),
        })
        .collect()
}

fn replay_all(dir: &Path) -> (Vec<Record>, SkippedLines) {
    let mut replay = replay(dir).unwrap();
    let records = replay.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    (records, replay.skipped())
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
}

#[test]
fn append_assigns_sequences_and_sync_makes_them_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(journal.append(&call("a")).unwrap(), 1);
    assert_eq!(
        journal
            .append(&Record::AgentState(not_ready_period()))
            .unwrap(),
        2
    );
    assert_eq!(journal.durable_seq(), 0);
    assert_eq!(journal.pending_records(), 2);
    journal.sync().unwrap();
    assert_eq!(journal.durable_seq(), 2);
    assert_eq!(journal.pending_records(), 0);

    let (records, skipped) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a", "state:alice"]);
    assert_eq!(
        records.iter().map(Record::seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(skipped, SkippedLines::default());
}

#[test]
fn unsynced_records_are_not_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    journal.append(&call("a")).unwrap();
    journal.sync().unwrap();
    journal.append(&call("lost-in-crash")).unwrap();
    drop(journal);
    let (records, _) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a"]);
}

#[test]
fn flush_is_due_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_batch_records: 3,
        ..JournalConfig::default()
    };
    let mut journal = Journal::open(dir.path(), config).unwrap();
    let now = Instant::now();
    assert!(!journal.flush_due(now));
    for id in ["a", "b"] {
        journal.append(&call(id)).unwrap();
        assert!(!journal.flush_due(now));
    }
    journal.append(&call("c")).unwrap();
    assert!(journal.flush_due(now));
    journal.sync().unwrap();
    assert!(!journal.flush_due(now));
    assert_eq!(journal.flush_deadline(), None);
}

#[test]
fn flush_is_due_by_age_of_the_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let t0 = Instant::now();
    journal.append(&call("a")).unwrap();
    assert!(!journal.flush_due(t0));
    assert_eq!(
        journal.flush_deadline(),
        Some(t0 + Duration::from_millis(100))
    );
    journal.append(&call("b")).unwrap();
    // The clock started with the first record, not the latest.
    assert!(!journal.flush_due(t0 + Duration::from_millis(99)));
    assert!(journal.flush_due(t0 + Duration::from_millis(100)));
    journal.sync().unwrap();
    journal.append(&call("c")).unwrap();
    assert!(!journal.flush_due(t0 + Duration::from_millis(150)));
    assert!(journal.flush_due(t0 + Duration::from_millis(250)));
}

#[test]
fn reopening_continues_numbering_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    journal.append(&call("a")).unwrap();
    journal.append(&call("b")).unwrap();
    journal.close().unwrap();

    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(journal.durable_seq(), 2);
    assert_eq!(journal.append(&call("c")).unwrap(), 3);
    journal.sync().unwrap();
    assert_eq!(list_segments(dir.path()).unwrap().len(), 2);
    let (records, _) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a", "b", "c"]);
}

#[test]
fn torn_last_line_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    journal.append(&call("a")).unwrap();
    journal.append(&call("b")).unwrap();
    journal.sync().unwrap();
    drop(journal);
    let segment = list_segments(dir.path()).unwrap().remove(0).path;
    // The crash cut the next record's write in half.
    append_raw(
        &segment,
        b"{\"type\":\"call\",\"seq\":3,\"id\":\"c\",\"trunk_ca",
    );

    let (records, skipped) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a", "b"]);
    assert_eq!(skipped.torn_lines, 1);
    assert_eq!(skipped.malformed_lines, 0);

    // The next run starts a fresh segment: the torn line never merges with new data.
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(journal.append(&call("c")).unwrap(), 3);
    journal.sync().unwrap();
    let (records, skipped) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a", "b", "c"]);
    assert_eq!(skipped.torn_lines, 1);
}

#[test]
fn journal_whose_only_segment_is_torn_debris_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    drop(journal);
    let segment = list_segments(dir.path()).unwrap().remove(0).path;
    append_raw(&segment, b"{\"type\":\"ca");
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let seq = journal.append(&call("a")).unwrap();
    journal.sync().unwrap();
    let (records, skipped) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a"]);
    assert_eq!(records[0].seq(), seq);
    assert_eq!(skipped.torn_lines, 1);
}

#[test]
fn malformed_and_duplicate_lines_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    journal.append(&call("a")).unwrap();
    journal.sync().unwrap();
    let segment = list_segments(dir.path()).unwrap().remove(0).path;
    let first_line = std::fs::read(&segment).unwrap();
    append_raw(&segment, b"not json at all\n\n");
    append_raw(&segment, &first_line);
    journal.append(&call("b")).unwrap();
    journal.sync().unwrap();

    let (records, skipped) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["a", "b"]);
    assert_eq!(skipped.malformed_lines, 2);
    assert_eq!(skipped.duplicate_records, 1);
    assert_eq!(skipped.torn_lines, 0);
}

#[test]
fn replay_starts_after_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    for id in ["a", "b", "c", "d"] {
        journal.append(&call(id)).unwrap();
    }
    journal.sync().unwrap();
    write_checkpoint(dir.path(), 2).unwrap();
    let (records, skipped) = replay_all(dir.path());
    assert_eq!(ids(&records), vec!["c", "d"]);
    // Records at or below the checkpoint are not "duplicates".
    assert_eq!(skipped, SkippedLines::default());
}

#[test]
fn numbering_continues_past_the_checkpoint_when_segments_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    write_checkpoint(dir.path(), 500).unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(journal.append(&call("a")).unwrap(), 501);
}

#[test]
fn segments_roll_at_the_size_limit_and_replay_spans_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_segment_bytes: 3000,
        ..JournalConfig::default()
    };
    let mut journal = Journal::open(dir.path(), config).unwrap();
    let mut expected = Vec::new();
    for i in 0..10 {
        let id = format!("c{i}");
        journal.append(&call(&id)).unwrap();
        journal.sync().unwrap();
        expected.push(id);
    }
    let segments = list_segments(dir.path()).unwrap();
    assert!(segments.len() >= 3, "{} segments", segments.len());
    // Each segment is named after the first sequence it holds.
    for segment in &segments {
        let text = std::fs::read_to_string(&segment.path).unwrap();
        if let Some(line) = text.lines().next() {
            let record: Record = serde_json::from_str(line).unwrap();
            assert_eq!(record.seq(), segment.first_seq);
        }
    }
    let (records, _) = replay_all(dir.path());
    assert_eq!(ids(&records), expected);
}

#[test]
fn backlog_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        max_pending_records: 2,
        ..JournalConfig::default()
    };
    let mut journal = Journal::open(dir.path(), config).unwrap();
    journal.append(&call("a")).unwrap();
    journal.append(&call("b")).unwrap();
    assert!(matches!(
        journal.append(&call("c")),
        Err(JournalError::BacklogFull { pending: 2 })
    ));
    journal.sync().unwrap();
    assert_eq!(journal.append(&call("c")).unwrap(), 3);
}

#[test]
fn invalid_records_are_refused_without_using_a_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
    let mut bad = answered_call();
    bad.wait_s = f64::INFINITY;
    assert!(matches!(
        journal.append(&Record::Call(bad)),
        Err(JournalError::InvalidRecord(_))
    ));
    assert_eq!(journal.pending_records(), 0);
    assert_eq!(journal.append(&call("a")).unwrap(), 1);
}

#[test]
fn replay_of_a_missing_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (records, _) = replay_all(&dir.path().join("never-created"));
    assert!(records.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a crash or a disk leaves after the good records, replay never panics and
    /// still returns every good record, in order.
    #[test]
    fn garbage_after_good_records_never_panics(
        garbage in proptest::collection::vec(any::<u8>(), 0..2048),
        lines in proptest::collection::vec("[ -~]{0,80}", 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        for id in ["a", "b", "c"] {
            journal.append(&call(id)).unwrap();
        }
        journal.sync().unwrap();
        drop(journal);
        let segment = list_segments(dir.path()).unwrap().remove(0).path;
        for line in &lines {
            append_raw(&segment, format!("{line}\n").as_bytes());
        }
        append_raw(&segment, &garbage);

        let mut replay = replay(dir.path()).unwrap();
        let records: Vec<Record> = replay.by_ref().collect::<Result<_, _>>().unwrap();
        prop_assert!(records.len() >= 3);
        prop_assert_eq!(ids(&records[..3]), vec!["a", "b", "c"]);

        // A journal reopened on top of the debris keeps working.
        let mut journal = Journal::open(dir.path(), JournalConfig::default()).unwrap();
        let seq = journal.append(&call("d")).unwrap();
        journal.sync().unwrap();
        let (after, _) = replay_all(dir.path());
        prop_assert_eq!(after.last().map(Record::seq), Some(seq));
    }
}
