//! The queues of a running ACD: a table that only grows (a reload may add queues while calls
//! wait, and a removed queue keeps its slot, retired), so a queue's position never changes and
//! the indexes, agents and calls that hold it stay valid. Reading a queue takes no lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::ids::QueueId;
use crate::queue::{QueueIdx, QueueRuntime};
use crate::skills::SkillTable;

/// How many queues a reload may add between two starts.
pub const QUEUES_ADDED_LIVE: usize = 64;

/// Fixed slots, filled in order; a slot is read only once its position has been published.
#[derive(Debug)]
pub(crate) struct QueueTable {
    slots: Box<[OnceLock<QueueRuntime>]>,
    len: AtomicUsize,
}

impl QueueTable {
    /// A table holding `queues`, with room for [`QUEUES_ADDED_LIVE`] more.
    pub(crate) fn new(queues: Vec<QueueRuntime>) -> Self {
        let slots: Box<[OnceLock<QueueRuntime>]> = (0..queues.len() + QUEUES_ADDED_LIVE)
            .map(|_| OnceLock::new())
            .collect();
        let len = queues.len();
        for (slot, queue) in slots.iter().zip(queues) {
            let _ = slot.set(queue);
        }
        Self {
            slots,
            len: AtomicUsize::new(len),
        }
    }

    /// Appends a queue and returns its position; `None` when the table is full.
    /// Only one thread appends at a time (the caller holds the directory's write lock).
    pub(crate) fn push(&self, queue: QueueRuntime) -> Option<QueueIdx> {
        let index = self.len.load(Ordering::Acquire);
        self.slots.get(index)?.set(queue).ok()?;
        self.len.store(index + 1, Ordering::Release);
        Some(index)
    }

    /// The queues in order, retired ones included.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &QueueRuntime> {
        let len = self.len.load(Ordering::Acquire);
        self.slots.iter().take(len).filter_map(OnceLock::get)
    }
}

impl std::ops::Index<QueueIdx> for QueueTable {
    type Output = QueueRuntime;

    fn index(&self, index: QueueIdx) -> &QueueRuntime {
        // Positions are handed out (to the directory, agents and calls) only after their slot
        // is filled, so an empty slot here is a bug in the ACD, like an index out of bounds.
        match self.slots.get(index).and_then(OnceLock::get) {
            Some(queue) => queue,
            None => unreachable!("queue position {index} was used before it was filled"),
        }
    }
}

/// What finds queues: by id, and by the skills an agent holds (read when an agent's queues
/// are worked out, written when a queue is added).
#[derive(Debug, Default)]
pub(crate) struct QueueDirectory {
    pub(crate) index: HashMap<QueueId, QueueIdx>,
    pub(crate) skills: SkillTable,
    /// For each interned skill, the queues that mention it.
    pub(crate) by_skill: Vec<Vec<QueueIdx>>,
    /// Queues without a required skill: every agent serves them.
    pub(crate) open: Vec<QueueIdx>,
}

impl QueueDirectory {
    /// Files queue `index` under the skills it mentions (or as open to every agent).
    pub(crate) fn file(&mut self, index: QueueIdx, queue: &QueueRuntime) {
        self.by_skill.resize(self.skills.len(), Vec::new());
        for skill in queue.eligibility.mentioned_skills() {
            if let Some(list) = self.by_skill.get_mut(skill as usize) {
                if list.last() != Some(&index) {
                    list.push(index);
                }
            }
        }
        if queue.eligibility.is_open() {
            self.open.push(index);
        }
    }
}
