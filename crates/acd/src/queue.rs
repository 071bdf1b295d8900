//! A queue at run time: its ordered indexes of waiting calls and Ready agents, its counters,
//! and the estimated-wait model.
//!
//! Both indexes are crossbeam skip lists (lock-free ordered maps). An entry carries the
//! version of its owner's state word at the time it was published; an entry whose owner's
//! word has moved on is stale and is skipped, and the thread that moved the word removes it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_skiplist::SkipMap;

use crate::agent::AgentCell;
use crate::agent_tally::AgentTally;
use crate::call::CallCell;
use crate::config::QueueConfig;
use crate::ids::QueueId;
use crate::queue_settings::QueueSettings;
use crate::skills::Eligibility;
use crate::state::{agent_tag, call_tag, AgentStateKind, Word};
use crate::timebase::duration_micros;

/// Position of a queue in the ACD's queue table.
pub(crate) type QueueIdx = usize;

/// Order of waiting calls: smallest first. `urgency` is a virtual arrival time in
/// microseconds (arrival moved earlier by `priority x aging step`), which makes the order
/// independent of the current time and comparable across queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct WaitKey {
    pub(crate) urgency: i128,
    pub(crate) epoch: u64,
}

/// A waiting call as published in an index.
#[derive(Debug)]
pub(crate) struct WaitEntry {
    pub(crate) call: Arc<CallCell>,
    pub(crate) version: u64,
}

impl WaitEntry {
    /// Whether the call is still waiting exactly as it was when this entry was published.
    pub(crate) fn is_live(&self) -> bool {
        self.call.word.load() == Word::new(self.version, call_tag::WAITING)
    }
}

/// Order of Ready agents under the queue's strategy: smallest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReadyKey {
    pub(crate) primary: i64,
    pub(crate) secondary: i64,
    pub(crate) agent_seq: u64,
}

/// A Ready agent as published in an index.
#[derive(Debug)]
pub(crate) struct ReadyEntry {
    pub(crate) agent: Arc<AgentCell>,
    pub(crate) version: u64,
}

impl ReadyEntry {
    /// Whether the agent is still Ready in the very episode this entry was published for.
    pub(crate) fn is_live(&self) -> bool {
        self.agent.word.load() == Word::new(self.version, agent_tag(AgentStateKind::Ready))
    }
}

/// The best live candidate found in an index.
pub(crate) struct Candidate<K, T> {
    pub(crate) key: K,
    pub(crate) item: Arc<T>,
    pub(crate) version: u64,
}

/// One configured queue and its live indexes.
#[derive(Debug)]
pub(crate) struct QueueRuntime {
    pub(crate) id: QueueId,
    pub(crate) eligibility: Eligibility,
    /// What a reload may change (strategy, thresholds, overflow, wrap-up ...).
    pub(crate) settings: QueueSettings,
    pub(crate) expansion_after: Vec<Duration>,
    /// Waiting calls, one map per expansion stage the call has reached.
    pub(crate) waiting: Vec<SkipMap<WaitKey, WaitEntry>>,
    /// Ready agents, one map per first stage at which the agent qualifies.
    pub(crate) ready: Vec<SkipMap<ReadyKey, ReadyEntry>>,
    /// Calls admitted and not yet offered (bounded by `max_length`).
    waiting_count: AtomicUsize,
    /// Agents able to serve this queue, by the stage they qualify from and by state.
    pub(crate) agents: AgentTally,
    /// Exponentially weighted mean of talk + wrap-up, microseconds.
    handle_time_micros: AtomicU64,
    /// Hands out round-robin stamps.
    rr_clock: AtomicU64,
}

impl QueueRuntime {
    /// Builds the runtime of a validated queue; `overflow` is already resolved.
    pub(crate) fn new(
        config: &QueueConfig,
        eligibility: Eligibility,
        overflow: Option<QueueIdx>,
    ) -> Self {
        let stages = eligibility.stages();
        Self {
            id: config.id.clone(),
            eligibility,
            settings: QueueSettings::new(config, overflow),
            expansion_after: config.expansion.iter().map(|step| step.after).collect(),
            waiting: (0..stages).map(|_| SkipMap::new()).collect(),
            ready: (0..stages).map(|_| SkipMap::new()).collect(),
            waiting_count: AtomicUsize::new(0),
            agents: AgentTally::new(stages),
            handle_time_micros: AtomicU64::new(
                u64::try_from(duration_micros(config.initial_handle_time)).unwrap_or(u64::MAX),
            ),
            rr_clock: AtomicU64::new(0),
        }
    }

    /// Number of stages (expansion steps + 1).
    pub(crate) fn stages(&self) -> usize {
        self.waiting.len()
    }

    /// The stage a call has reached after waiting `waited` in this queue.
    pub(crate) fn stage_after(&self, waited: Duration) -> usize {
        self.expansion_after
            .iter()
            .filter(|&&after| after <= waited)
            .count()
    }

    /// The order key of a call of `priority` that arrived at `enqueued_micros`.
    pub(crate) fn urgency(&self, enqueued_micros: i64, priority: i32) -> i128 {
        i128::from(enqueued_micros) - i128::from(priority) * self.settings.aging_step_micros()
    }

    /// Takes a waiting slot unless the queue is at max length.
    pub(crate) fn try_admit(&self) -> bool {
        let limit = self.settings.max_length();
        self.waiting_count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a slot regardless of max length: a requeued call was admitted already.
    pub(crate) fn readmit(&self) {
        self.waiting_count.fetch_add(1, Ordering::SeqCst);
    }

    /// Gives a slot back when a call stops waiting.
    pub(crate) fn release_slot(&self) {
        // Saturating: a slot is released exactly once per admission, so this never wraps;
        // saturating keeps a hypothetical bug from turning into a full queue forever.
        let _ = self
            .waiting_count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }

    /// Calls admitted and not yet offered.
    pub(crate) fn waiting_count(&self) -> usize {
        self.waiting_count.load(Ordering::SeqCst)
    }

    /// The next round-robin stamp: larger means offered more recently.
    pub(crate) fn next_rr_stamp(&self) -> u64 {
        self.rr_clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Feeds one finished call's talk + wrap-up into the handle-time average (weight 1/8).
    pub(crate) fn record_handle_time(&self, handle: Duration) {
        let sample = u64::try_from(duration_micros(handle)).unwrap_or(u64::MAX);
        let _ =
            self.handle_time_micros
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |mean| {
                    Some(mean - mean / 8 + sample / 8)
                });
    }

    /// Current average handle time.
    pub(crate) fn handle_time(&self) -> Duration {
        Duration::from_micros(self.handle_time_micros.load(Ordering::Relaxed))
    }

    /// Estimated wait for the call at 1-based `position`: the time for `position` agents'
    /// calls to end when the logged-in agents each free up once per average handle time,
    /// i.e. `position x AHT / max(1, logged-in agents)`.
    pub(crate) fn estimated_wait(&self, position: usize) -> Duration {
        let agents = self.agents.logged_in_upto(usize::MAX).max(1) as u128;
        let micros = self.handle_time().as_micros() * position as u128 / agents;
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// The most urgent live waiting call among stages `from..` that does not exclude the
    /// agent with sequence number `agent_seq`.
    pub(crate) fn best_waiting_from(
        &self,
        from: usize,
        agent_seq: u64,
    ) -> Option<Candidate<WaitKey, CallCell>> {
        self.waiting
            .get(from..)?
            .iter()
            .filter_map(|map| first_live_call(map, agent_seq))
            .min_by_key(|candidate| candidate.key)
    }

    /// The best live Ready agent among those qualifying at stage `upto` or earlier, other
    /// than the agents whose sequence numbers are in `excluded` (sorted).
    pub(crate) fn best_ready_upto(
        &self,
        upto: usize,
        excluded: &[u64],
    ) -> Option<Candidate<ReadyKey, AgentCell>> {
        let wanted = |entry: &ReadyEntry| {
            entry.is_live()
                && (excluded.is_empty() || excluded.binary_search(&entry.agent.seq).is_err())
        };
        self.ready
            .iter()
            .take(upto + 1)
            .filter_map(|map| {
                map.iter()
                    .find(|entry| wanted(entry.value()))
                    .map(|entry| Candidate {
                        key: *entry.key(),
                        item: Arc::clone(&entry.value().agent),
                        version: entry.value().version,
                    })
            })
            .min_by_key(|candidate| candidate.key)
    }

    /// The smallest urgency among live waiting calls of `priority`: the head of its band.
    pub(crate) fn head_of_band(&self, priority: i32) -> Option<i128> {
        self.waiting
            .iter()
            .filter_map(|map| {
                map.iter()
                    .find(|entry| {
                        entry.value().call.priority == priority && entry.value().is_live()
                    })
                    .map(|entry| entry.key().urgency)
            })
            .min()
    }

    /// 1-based rank of `key` among live waiting calls of every stage.
    pub(crate) fn rank(&self, key: &WaitKey) -> usize {
        1 + self
            .waiting
            .iter()
            .map(|map| {
                map.range(..*key)
                    .filter(|entry| entry.value().is_live())
                    .count()
            })
            .sum::<usize>()
    }

    /// Removes a waiting entry (no-op when already gone).
    pub(crate) fn remove_waiting(&self, stage: usize, key: &WaitKey) {
        if let Some(map) = self.waiting.get(stage) {
            map.remove(key);
        }
    }
}

/// The first live entry of one waiting map whose call does not exclude `agent_seq`.
fn first_live_call(
    map: &SkipMap<WaitKey, WaitEntry>,
    agent_seq: u64,
) -> Option<Candidate<WaitKey, CallCell>> {
    map.iter()
        .find(|entry| entry.value().is_live() && !entry.value().call.exclusions.excludes(agent_seq))
        .map(|entry| Candidate {
            key: *entry.key(),
            item: Arc::clone(&entry.value().call),
            version: entry.value().version,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ExpansionStep;
    use crate::skills::SkillTable;

    fn runtime(config: &QueueConfig) -> QueueRuntime {
        let mut table = SkillTable::default();
        QueueRuntime::new(config, Eligibility::compile(config, &mut table), None)
    }

    #[test]
    fn urgency_orders_priority_first_then_arrival() {
        let mut config = QueueConfig::new("q");
        config.priority_aging = None;
        let queue = runtime(&config);
        // A VIP arriving an hour later still beats a normal call.
        assert!(queue.urgency(3_600_000_000, 1) < queue.urgency(0, 0));
        assert!(queue.urgency(10, 0) < queue.urgency(20, 0));
    }

    #[test]
    fn aging_lets_a_long_wait_beat_one_priority_point() {
        let mut config = QueueConfig::new("q");
        config.priority_aging = Some(Duration::from_secs(30));
        let queue = runtime(&config);
        let old_normal = queue.urgency(0, 0);
        let fresh_vip_after_20s = queue.urgency(20_000_000, 1);
        let fresh_vip_after_40s = queue.urgency(40_000_000, 1);
        assert!(fresh_vip_after_20s < old_normal);
        assert!(old_normal < fresh_vip_after_40s);
    }

    #[test]
    fn admission_respects_max_length() {
        let mut config = QueueConfig::new("q");
        config.max_length = Some(2);
        let queue = runtime(&config);
        assert!(queue.try_admit() && queue.try_admit());
        assert!(!queue.try_admit());
        queue.release_slot();
        assert!(queue.try_admit());
        assert_eq!(queue.waiting_count(), 2);
    }

    #[test]
    fn stage_counts_steps_reached() {
        let mut config = QueueConfig::new("q");
        let step = |secs| ExpansionStep {
            after: Duration::from_secs(secs),
            min_level: Some(1),
            add_skills: vec![],
        };
        config.expansion = vec![step(30), step(60)];
        let queue = runtime(&config);
        assert_eq!(queue.stage_after(Duration::from_secs(29)), 0);
        assert_eq!(queue.stage_after(Duration::from_secs(30)), 1);
        assert_eq!(queue.stage_after(Duration::from_secs(600)), 2);
    }

    #[test]
    fn estimated_wait_scales_with_position_and_agents() {
        let mut config = QueueConfig::new("q");
        config.initial_handle_time = Duration::from_secs(120);
        let queue = runtime(&config);
        assert_eq!(queue.estimated_wait(1), Duration::from_secs(120));
        for _ in 0..4 {
            queue.agents.join(0, AgentStateKind::NotReady);
        }
        assert_eq!(queue.estimated_wait(2), Duration::from_secs(60));
        queue.record_handle_time(Duration::from_secs(120 + 80));
        assert_eq!(queue.handle_time(), Duration::from_secs(130));
    }
}
