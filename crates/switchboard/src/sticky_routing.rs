//! Sticky routing: which agent last answered each caller, so a returning caller first waits
//! (up to the queue's `preferred_agent_wait_s`) for the agent who knows their case.
//!
//! The index is a plain value owned by call control: it is told when an agent answers and asked
//! when a call is queued, with the wall-clock time passed in. It is bounded in age
//! (`[acd] sticky_max_age_days`) and size (`[acd] sticky_max_entries`, the oldest memory goes
//! first). At start it is rebuilt from the daily CDR files, so a restart forgets nobody.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use acd::AgentId;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::config::AcdSettings;

const SECONDS_A_DAY: u64 = 86_400;

/// One remembered caller.
#[derive(Debug, Clone)]
struct Memory {
    agent: AgentId,
    /// When the agent answered, in seconds since the epoch.
    at: u64,
    /// Insertion stamp: orders memories of the same second in the age index.
    stamp: u64,
}

/// Caller number → the agent who last answered them, and when.
#[derive(Debug, Clone)]
pub struct StickyIndex {
    max_age_s: u64,
    max_entries: usize,
    by_caller: HashMap<String, Memory>,
    /// (answered at, stamp) → caller: the oldest memory is the first key.
    by_age: BTreeMap<(u64, u64), String>,
    next_stamp: u64,
}

impl StickyIndex {
    /// An empty index keeping memories `max_age_days` days, at most `max_entries` of them.
    pub fn new(max_age_days: u32, max_entries: usize) -> Self {
        StickyIndex {
            max_age_s: u64::from(max_age_days) * SECONDS_A_DAY,
            max_entries,
            by_caller: HashMap::new(),
            by_age: BTreeMap::new(),
            next_stamp: 0,
        }
    }

    /// An empty index with the bounds of `[acd]`.
    pub fn for_settings(acd: &AcdSettings) -> Self {
        Self::new(acd.sticky_max_age_days, acd.sticky_max_entries)
    }

    /// Callers remembered now.
    pub fn len(&self) -> usize {
        self.by_caller.len()
    }

    /// Nobody is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_caller.is_empty()
    }

    /// `agent` answered `caller` at `at` (seconds since the epoch). A memory newer than `at`
    /// is kept (CDR files may be read out of order); anonymous callers are not remembered,
    /// since they are not one person.
    pub fn remember(&mut self, caller: &str, agent: AgentId, at: u64) {
        if self.max_entries == 0 || !is_identifiable(caller) {
            return;
        }
        if let Some(known) = self.by_caller.get(caller) {
            if known.at > at {
                return;
            }
            self.by_age.remove(&(known.at, known.stamp));
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.by_age.insert((at, stamp), caller.to_owned());
        self.by_caller
            .insert(caller.to_owned(), Memory { agent, at, stamp });
        while self.by_caller.len() > self.max_entries {
            self.forget_oldest();
        }
    }

    /// The agent who last answered `caller`, unless that is older than the age bound at `now`
    /// (seconds since the epoch).
    pub fn last_agent(&self, caller: &str, now: u64) -> Option<&AgentId> {
        let memory = self.by_caller.get(caller)?;
        (now.saturating_sub(memory.at) <= self.max_age_s).then_some(&memory.agent)
    }

    /// Drops every memory older than the age bound at `now`.
    pub fn forget_expired(&mut self, now: u64) {
        while let Some((&(at, _), _)) = self.by_age.first_key_value() {
            if now.saturating_sub(at) <= self.max_age_s {
                break;
            }
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((_, caller)) = self.by_age.pop_first() {
            self.by_caller.remove(&caller);
        }
    }
}

/// Caller numbers that name one person (not withheld, not empty).
fn is_identifiable(caller: &str) -> bool {
    !caller.is_empty()
        && !caller.eq_ignore_ascii_case("anonymous")
        && !caller.eq_ignore_ascii_case("unknown")
}

/// What rebuilding the index from the CDR files found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildStats {
    /// Daily files read.
    pub files: usize,
    /// Answered calls taken into the index.
    pub answered_calls: u64,
    /// Lines that are not call records Switchboard can read (skipped).
    pub unreadable_lines: u64,
}

/// The fields of a CDR line the index needs; the rest is skipped unparsed.
#[derive(Deserialize)]
struct AnsweredLine {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    caller: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    answered: Option<String>,
    /// Calls out are the agent's own: their number is not a caller to route back.
    #[serde(default)]
    direction: cdr::model::Direction,
}

/// Rebuilds the index from the daily CDR files in `dir` (`cdr-YYYY-MM-DD.jsonl`) of the last
/// `sticky_max_age_days`, as of `now`. A missing directory is an empty history; an unreadable
/// file is logged and skipped (sticky routing is a preference, never a reason not to start).
pub fn rebuild(dir: &Path, acd: &AcdSettings, now: OffsetDateTime) -> (StickyIndex, RebuildStats) {
    let mut index = StickyIndex::for_settings(acd);
    let mut stats = RebuildStats::default();
    if acd.sticky_max_entries == 0 {
        return (index, stats);
    }
    let from = now - time::Duration::days(i64::from(acd.sticky_max_age_days));
    let files = match cdr::report::files_for_range(dir, from, now) {
        Ok(files) => files,
        Err(error) => {
            tracing::info!(%error, "no CDR history for sticky routing");
            return (index, stats);
        }
    };
    for path in files {
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "CDR file skipped by sticky routing");
                continue;
            }
        };
        stats.files += 1;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let Ok(line) = line else {
                stats.unreadable_lines += 1;
                break;
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<AnsweredLine>(&line) {
                Ok(record) => {
                    if let Some((caller, agent, at)) = answered_call(&record) {
                        index.remember(caller, AgentId::from(agent), at);
                        stats.answered_calls += 1;
                    }
                }
                Err(_) => stats.unreadable_lines += 1,
            }
        }
    }
    index.forget_expired(u64::try_from(now.unix_timestamp()).unwrap_or(0));
    (index, stats)
}

/// The caller, answering agent and answer time of an answered call record.
fn answered_call(record: &AnsweredLine) -> Option<(&str, &str, u64)> {
    if record.kind != "call" || record.direction == cdr::model::Direction::Outbound {
        return None;
    }
    let answered = record.answered.as_deref()?;
    let at = OffsetDateTime::parse(answered, &time::format_description::well_known::Rfc3339)
        .ok()?
        .unix_timestamp();
    Some((
        record.caller.as_deref()?,
        record.agent.as_deref()?,
        u64::try_from(at).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = SECONDS_A_DAY;

    fn agent(id: &str) -> AgentId {
        AgentId::from(id)
    }

    #[test]
    fn the_last_answering_agent_is_remembered_and_a_newer_answer_replaces_it() {
        let mut index = StickyIndex::new(30, 10);
        index.remember("5551000", agent("1003"), 1_000);
        assert_eq!(index.last_agent("5551000", 2_000), Some(&agent("1003")));
        index.remember("5551000", agent("1001"), 1_500);
        assert_eq!(index.last_agent("5551000", 2_000), Some(&agent("1001")));
        // An older record read later (files out of order) does not win.
        index.remember("5551000", agent("1002"), 1_200);
        assert_eq!(index.last_agent("5551000", 2_000), Some(&agent("1001")));
        assert_eq!(index.len(), 1);
        assert_eq!(index.last_agent("5552000", 2_000), None);
    }

    #[test]
    fn memories_older_than_the_age_bound_are_ignored_then_forgotten() {
        let mut index = StickyIndex::new(2, 10);
        index.remember("a", agent("1001"), 10 * DAY);
        index.remember("b", agent("1002"), 11 * DAY);
        assert_eq!(index.last_agent("a", 12 * DAY), Some(&agent("1001")));
        assert_eq!(index.last_agent("a", 12 * DAY + 1), None, "over 2 days");
        assert_eq!(index.last_agent("b", 12 * DAY + 1), Some(&agent("1002")));
        index.forget_expired(12 * DAY + 1);
        assert_eq!(index.len(), 1);
        assert_eq!(index.last_agent("b", 12 * DAY + 1), Some(&agent("1002")));
    }

    #[test]
    fn past_the_size_bound_the_oldest_memory_goes_first() {
        let mut index = StickyIndex::new(30, 2);
        index.remember("a", agent("1001"), 100);
        index.remember("b", agent("1002"), 200);
        // `a` calls again: now the newest, so `b` is the oldest.
        index.remember("a", agent("1003"), 300);
        index.remember("c", agent("1001"), 400);
        assert_eq!(index.len(), 2);
        assert_eq!(index.last_agent("b", 500), None);
        assert_eq!(index.last_agent("a", 500), Some(&agent("1003")));
        assert_eq!(index.last_agent("c", 500), Some(&agent("1001")));
    }

    #[test]
    fn zero_entries_remembers_nobody_and_anonymous_callers_are_never_remembered() {
        let mut off = StickyIndex::new(30, 0);
        off.remember("a", agent("1001"), 100);
        assert!(off.is_empty());
        let mut index = StickyIndex::new(30, 10);
        for caller in ["", "anonymous", "Anonymous", "unknown"] {
            index.remember(caller, agent("1001"), 100);
        }
        assert!(index.is_empty());
    }

    fn settings(max_age_days: u32, max_entries: usize) -> AcdSettings {
        let mut acd = crate::config::testing::valid("").acd;
        acd.sticky_max_age_days = max_age_days;
        acd.sticky_max_entries = max_entries;
        acd
    }

    #[test]
    fn rebuild_reads_answered_calls_of_the_last_days_and_skips_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = time::macros::datetime!(2026-03-10 12:00 UTC);
        std::fs::write(
            dir.path().join("cdr-2026-03-10.jsonl"),
            concat!(
                r#"{"type":"call","caller":"555","agent":"1003","answered":"2026-03-10T09:00:00Z"}"#,
                "\n",
                // Not answered: the agent was only offered the call.
                r#"{"type":"call","caller":"556","agent":"1002","answered":null}"#,
                "\n",
                // A call out by agent 1002: its calling number is not a caller to route back.
                r#"{"type":"call","caller":"1002","agent":"1002","answered":"2026-03-10T09:30:00Z","direction":"outbound"}"#,
                "\n",
                r#"{"type":"agent_state","agent":"1001"}"#,
                "\n",
                "not json\n",
                "\n",
            ),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("cdr-2026-03-09.jsonl"),
            concat!(
                r#"{"type":"call","caller":"555","agent":"1001","answered":"2026-03-09T09:00:00Z"}"#,
                "\n",
                r#"{"type":"call","caller":"557","agent":"1002","answered":"2026-03-09T10:00:00Z"}"#,
                "\n"
            ),
        )
        .expect("write");
        // Older than the 7 days kept: not even read.
        std::fs::write(
            dir.path().join("cdr-2026-02-01.jsonl"),
            concat!(
                r#"{"type":"call","caller":"558","agent":"1002","answered":"2026-02-01T10:00:00Z"}"#,
                "\n"
            ),
        )
        .expect("write");
        let (index, stats) = rebuild(dir.path(), &settings(7, 100), now);
        let now_s = u64::try_from(now.unix_timestamp()).expect("after 1970");
        assert_eq!(index.last_agent("555", now_s), Some(&agent("1003")));
        assert_eq!(index.last_agent("557", now_s), Some(&agent("1002")));
        assert_eq!(index.last_agent("556", now_s), None);
        assert_eq!(index.last_agent("558", now_s), None);
        assert_eq!(
            index.last_agent("1002", now_s),
            None,
            "calls out are not remembered"
        );
        assert_eq!(
            stats,
            RebuildStats {
                files: 2,
                answered_calls: 3,
                unreadable_lines: 1
            }
        );
        // The size bound holds during the rebuild too: the newest memory stays.
        let (index, _) = rebuild(dir.path(), &settings(7, 1), now);
        assert_eq!(index.len(), 1);
        assert_eq!(index.last_agent("555", now_s), Some(&agent("1003")));
    }

    #[test]
    fn rebuild_of_a_missing_directory_is_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (index, stats) = rebuild(
            &dir.path().join("absent"),
            &settings(30, 100),
            OffsetDateTime::now_utc(),
        );
        assert!(index.is_empty());
        assert_eq!(stats, RebuildStats::default());
    }
}
