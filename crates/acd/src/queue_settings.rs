//! A queue's settings that a configuration reload may change while calls wait: each one an
//! atomic, so matchers on other threads read them without a lock and a reload never pauses
//! the ACD. Who may serve the queue (required skills, expansion steps) shapes the indexes
//! and is not here: it is fixed for the queue's life.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::{QueueConfig, Strategy};
use crate::queue::QueueIdx;
use crate::timebase::duration_micros;

/// Aging step standing for strict priority: one priority point is worth about 11.6 days of
/// waiting, far beyond any real wait, so priority always wins.
const STRICT_PRIORITY_STEP_MICROS: i64 = 1_000_000_000_000;

/// Stands for "none" in the optional settings (no max wait, no max length, no overflow).
const NONE: u64 = u64::MAX;

/// The live settings of one queue.
#[derive(Debug)]
pub(crate) struct QueueSettings {
    strategy: AtomicU8,
    max_wait_micros: AtomicU64,
    max_length: AtomicUsize,
    overflow: AtomicUsize,
    service_level_micros: AtomicU64,
    wrap_up_micros: AtomicU64,
    preferred_agent_wait_micros: AtomicU64,
    aging_step_micros: AtomicI64,
    /// Removed by a reload: takes no new calls and is left out of the snapshots.
    retired: AtomicBool,
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration_micros(duration)).unwrap_or(u64::MAX - 1)
}

fn strategy_code(strategy: Strategy) -> u8 {
    match strategy {
        Strategy::LongestIdle => 0,
        Strategy::MostSkilled => 1,
        Strategy::RoundRobin => 2,
        Strategy::FewestCalls => 3,
    }
}

impl QueueSettings {
    /// The settings of `config`; `overflow` is already resolved to a queue position.
    pub(crate) fn new(config: &QueueConfig, overflow: Option<QueueIdx>) -> Self {
        let settings = Self {
            strategy: AtomicU8::new(0),
            max_wait_micros: AtomicU64::new(NONE),
            max_length: AtomicUsize::new(usize::MAX),
            overflow: AtomicUsize::new(usize::MAX),
            service_level_micros: AtomicU64::new(0),
            wrap_up_micros: AtomicU64::new(0),
            preferred_agent_wait_micros: AtomicU64::new(0),
            aging_step_micros: AtomicI64::new(STRICT_PRIORITY_STEP_MICROS),
            retired: AtomicBool::new(false),
        };
        settings.set(config, overflow);
        settings
    }

    /// Takes every setting from `config` (each one on its own; a reader may see some old and
    /// some new values for an instant, which no decision depends on).
    pub(crate) fn set(&self, config: &QueueConfig, overflow: Option<QueueIdx>) {
        let relaxed = Ordering::Relaxed;
        self.strategy.store(strategy_code(config.strategy), relaxed);
        self.max_wait_micros
            .store(config.max_wait.map_or(NONE, micros), relaxed);
        self.max_length
            .store(config.max_length.unwrap_or(usize::MAX), relaxed);
        self.overflow.store(overflow.unwrap_or(usize::MAX), relaxed);
        self.service_level_micros
            .store(micros(config.service_level), relaxed);
        self.wrap_up_micros.store(micros(config.wrap_up), relaxed);
        self.preferred_agent_wait_micros
            .store(micros(config.preferred_agent_wait), relaxed);
        self.aging_step_micros.store(
            config
                .priority_aging
                .map_or(STRICT_PRIORITY_STEP_MICROS, duration_micros),
            relaxed,
        );
    }

    pub(crate) fn strategy(&self) -> Strategy {
        match self.strategy.load(Ordering::Relaxed) {
            1 => Strategy::MostSkilled,
            2 => Strategy::RoundRobin,
            3 => Strategy::FewestCalls,
            _ => Strategy::LongestIdle,
        }
    }

    pub(crate) fn max_wait(&self) -> Option<Duration> {
        match self.max_wait_micros.load(Ordering::Relaxed) {
            NONE => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// Most calls waiting at once (`usize::MAX`: no limit).
    pub(crate) fn max_length(&self) -> usize {
        self.max_length.load(Ordering::Relaxed)
    }

    pub(crate) fn overflow(&self) -> Option<QueueIdx> {
        match self.overflow.load(Ordering::Relaxed) {
            usize::MAX => None,
            queue => Some(queue),
        }
    }

    pub(crate) fn service_level(&self) -> Duration {
        Duration::from_micros(self.service_level_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn wrap_up(&self) -> Duration {
        Duration::from_micros(self.wrap_up_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn preferred_agent_wait(&self) -> Duration {
        Duration::from_micros(self.preferred_agent_wait_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn aging_step_micros(&self) -> i128 {
        i128::from(self.aging_step_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn retire(&self) {
        // Full length at once, so no call is admitted from here on.
        self.max_length.store(0, Ordering::SeqCst);
        self.retired.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }
}
