//! Queues changed by a configuration reload while calls wait: a queue added, new settings for
//! a queue, or a queue removed (its waiting calls leave along its overflow chain, or time out).

use std::sync::Arc;
use std::time::Instant;

use crate::acd::Acd;
use crate::action::{Action, OverflowReason};
use crate::call::CallCell;
use crate::config::{AgentConfig, QueueConfig};
use crate::error::AcdError;
use crate::ids::QueueId;
use crate::queue::QueueRuntime;
use crate::skills::Eligibility;
use crate::state::{agent_tag, call_tag, AgentStateKind, Word};

impl Acd {
    /// Adds a queue while the ACD runs: every agent whose skills qualify serves it at once (a
    /// Ready one is re-filed and may be offered its calls). Its overflow target must exist.
    /// Refused when a queue of that id exists or existed (a removed queue's id is taken until
    /// restart), or after [`QUEUES_ADDED_LIVE`](crate::queue_table::QUEUES_ADDED_LIVE) additions.
    pub fn add_queue(&self, now: Instant, config: &QueueConfig) -> Result<Vec<Action>, AcdError> {
        {
            let mut directory = self
                .directory
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if directory.index.contains_key(&config.id) {
                return Err(AcdError::DuplicateQueue(config.id.clone()));
            }
            let mut ids = directory.index.clone();
            ids.insert(config.id.clone(), usize::MAX);
            crate::config::validate_queue(config, &ids)?;
            let overflow = match &config.overflow {
                Some(target) => Some(
                    directory
                        .index
                        .get(target)
                        .copied()
                        .filter(|&index| !self.queues[index].settings.is_retired())
                        .ok_or_else(|| AcdError::UnknownOverflowQueue {
                            queue: config.id.clone(),
                            target: target.clone(),
                        })?,
                ),
                None => None,
            };
            let eligibility = Eligibility::compile(config, &mut directory.skills);
            let runtime = QueueRuntime::new(config, eligibility, overflow);
            let index = self
                .queues
                .push(runtime)
                .ok_or_else(|| AcdError::InvalidQueue {
                    queue: config.id.clone(),
                    reason: format!(
                        "{} queues were added since the start; adding more needs a restart",
                        crate::queue_table::QUEUES_ADDED_LIVE
                    ),
                })?;
            directory.file(index, &self.queues[index]);
            directory.index.insert(config.id.clone(), index);
        }
        // Every agent works out its queues again; those who qualify join the new one.
        let agents: Vec<AgentConfig> = self
            .agents()
            .into_iter()
            .map(|agent| AgentConfig::new(agent.id, agent.name, agent.skills))
            .collect();
        let mut actions = Vec::new();
        for agent in agents {
            if let Ok(more) = self.upsert_agent(now, agent) {
                actions.extend(more);
            }
        }
        Ok(actions)
    }

    /// Applies a queue's new strategy, thresholds (max wait, max length, service level),
    /// overflow target, wrap-up, preferred-agent wait and priority aging. Who may serve the
    /// queue (required skills, expansion steps) and the initial handle time are not changed
    /// here: they are fixed for the queue's life. Calls already waiting keep the max-wait and
    /// expansion deadlines they were given; a new strategy orders the Ready agents at once.
    pub fn update_queue(
        &self,
        now: Instant,
        config: &QueueConfig,
    ) -> Result<Vec<Action>, AcdError> {
        let index = self.queue_idx(&config.id)?;
        let overflow = match &config.overflow {
            Some(target) => {
                Some(
                    self.queue_idx(target)
                        .map_err(|_| AcdError::UnknownOverflowQueue {
                            queue: config.id.clone(),
                            target: target.clone(),
                        })?,
                )
            }
            None => None,
        };
        let mut seen = vec![index];
        let mut next = overflow;
        while let Some(target) = next {
            if seen.contains(&target) {
                return Err(AcdError::OverflowCycle(config.id.clone()));
            }
            seen.push(target);
            next = self.queues[target].settings.overflow();
        }
        let queue = &self.queues[index];
        let strategy_changed = queue.settings.strategy() != config.strategy;
        queue.settings.set(config, overflow);
        let mut actions = Vec::new();
        if strategy_changed {
            self.reorder_ready_agents(now, index, &mut actions);
        }
        Ok(actions)
    }

    /// Files every Ready agent of queue `index` again, under keys of its current strategy.
    fn reorder_ready_agents(&self, now: Instant, index: usize, actions: &mut Vec<Action>) {
        let agents: Vec<_> = self
            .agents
            .iter()
            .map(|entry| entry.key().clone())
            .collect();
        for id in agents {
            let refiled = self.with_agent(now, &id, |agent, detail, word, _| {
                if !detail.served.iter().any(|served| served.queue == index) {
                    return Ok(None);
                }
                let ready = Word::new(word.version, agent_tag(AgentStateKind::Ready));
                // A fresh version makes the entries under the old keys stale at once.
                if word == ready && agent.word.compare_swap(ready, ready.next(ready.tag)) {
                    return Ok(Some(self.index_ready(agent, detail, ready.version + 1)));
                }
                Ok(None)
            });
            if let Ok(more) = refiled {
                actions.extend(more);
            }
        }
    }

    /// Removes a queue: it admits no call from now on and leaves the snapshots. Each waiting
    /// call moves along the queue's overflow chain (reported as overflowed with reason
    /// `QueueRemoved`), or times out when the chain has no room or there is none; a call
    /// ringing an agent leaves the same way if that offer fails. Connected calls are not
    /// touched: they end, and their agents wrap up, as they would have.
    pub fn retire_queue(&self, now: Instant, id: &QueueId) -> Result<Vec<Action>, AcdError> {
        let index = self.queue_idx(id)?;
        self.queues[index].settings.retire();
        let stays: Vec<Arc<CallCell>> = self
            .calls
            .iter()
            .filter(|entry| entry.value().queue == index)
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        let mut actions = Vec::new();
        for cell in stays {
            let serve = {
                let mut detail = cell.lock();
                let word = cell.word.load();
                match word.tag {
                    call_tag::WAITING
                        if cell.word.compare_swap(word, word.next(call_tag::GONE)) =>
                    {
                        self.unindex_call(&cell, &detail);
                        self.queues[index].release_slot();
                        self.expire_stay(
                            &cell,
                            &detail,
                            now,
                            OverflowReason::QueueRemoved,
                            &mut actions,
                        )
                    }
                    call_tag::WAITING | call_tag::OFFERED => {
                        detail.max_wait_reached = true;
                        None
                    }
                    _ => None,
                }
            };
            if let Some(serve) = serve {
                self.serve_waiting_call(now, serve, &mut actions);
            }
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::CallRequest;
    use crate::config::{AcdConfig, AgentConfig, Strategy};
    use crate::ids::{AgentId, CallId};

    fn acd(queues: Vec<QueueConfig>) -> Acd {
        Acd::new(AcdConfig {
            queues,
            ..AcdConfig::default()
        })
        .expect("valid ACD")
    }

    fn enqueue(acd: &Acd, now: Instant, id: u64, queue: &str) -> Vec<Action> {
        acd.enqueue(
            now,
            CallRequest {
                id: CallId(id),
                queue: queue.into(),
                priority: 0,
                preferred_agent: None,
                waiting_since: None,
                preferred_wait: None,
            },
        )
        .expect("enqueued")
    }

    #[test]
    fn an_added_queue_is_served_by_the_qualified_ready_agents_at_once() {
        let now = Instant::now();
        let acd = acd(vec![QueueConfig::new("old")]);
        let skilled = AgentId::from("skilled");
        acd.upsert_agent(
            now,
            AgentConfig::new("skilled", "S", vec![("billing".into(), 5)]),
        )
        .expect("agent");
        acd.upsert_agent(
            now,
            AgentConfig::new("other", "O", vec![("sales".into(), 5)]),
        )
        .expect("agent");
        acd.login(now, &skilled, true).expect("ready");
        acd.login(now, &"other".into(), true).expect("ready");
        let mut billing = QueueConfig::new("billing");
        billing.required = vec![crate::config::SkillRequirement::new("billing", 3)];
        billing.overflow = Some("old".into());
        acd.add_queue(now, &billing).expect("added");
        assert_eq!(acd.queues().len(), 2);
        let snapshot = acd.queue(&"billing".into()).expect("listed");
        assert_eq!(snapshot.agents.ready, 1, "{snapshot:?}");
        let actions = enqueue(&acd, now, 1, "billing");
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Offer { agent, .. }
                if agent.as_str() == "skilled")),
            "{actions:?}"
        );
        assert_eq!(
            acd.add_queue(now, &billing).map(|_| ()),
            Err(AcdError::DuplicateQueue("billing".into()))
        );
        let mut dangling = QueueConfig::new("dangling");
        dangling.overflow = Some("nowhere".into());
        assert!(matches!(
            acd.add_queue(now, &dangling),
            Err(AcdError::UnknownOverflowQueue { .. })
        ));
    }

    #[test]
    fn queues_added_past_the_room_are_refused() {
        let now = Instant::now();
        let acd = acd(Vec::new());
        for n in 0..crate::queue_table::QUEUES_ADDED_LIVE {
            acd.add_queue(now, &QueueConfig::new(format!("q{n}").as_str()))
                .expect("room left");
        }
        assert!(matches!(
            acd.add_queue(now, &QueueConfig::new("one-too-many")),
            Err(AcdError::InvalidQueue { .. })
        ));
    }

    #[test]
    fn a_removed_queue_sends_its_waiting_call_to_its_overflow_and_admits_no_more() {
        let now = Instant::now();
        let mut old = QueueConfig::new("old");
        old.overflow = Some("spare".into());
        let acd = acd(vec![old, QueueConfig::new("spare")]);
        enqueue(&acd, now, 1, "old");
        let actions = acd.retire_queue(now, &"old".into()).expect("retired");
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Overflow { call, to, .. }
                if *call == CallId(1) && to.as_str() == "spare")),
            "{actions:?}"
        );
        assert_eq!(acd.call(CallId(1)).map(|c| c.queue), Some("spare".into()));
        assert!(acd.queue(&"old".into()).is_none());
        assert_eq!(acd.queues().len(), 1);
        let refused = acd.enqueue(
            now,
            CallRequest {
                id: CallId(2),
                queue: "old".into(),
                priority: 0,
                preferred_agent: None,
                waiting_since: None,
                preferred_wait: None,
            },
        );
        assert_eq!(refused, Err(AcdError::UnknownQueue("old".into())));
    }

    #[test]
    fn a_removed_queue_without_overflow_times_its_waiting_call_out() {
        let now = Instant::now();
        let acd = acd(vec![QueueConfig::new("old")]);
        enqueue(&acd, now, 1, "old");
        let actions = acd.retire_queue(now, &"old".into()).expect("retired");
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Timeout { call, .. } if *call == CallId(1))),
            "{actions:?}"
        );
        assert!(acd.call(CallId(1)).is_none());
    }

    #[test]
    fn a_removed_queue_leaves_a_connected_call_alone() {
        let now = Instant::now();
        let acd = acd(vec![QueueConfig::new("old")]);
        let agent = AgentId::from("a");
        acd.upsert_agent(now, AgentConfig::new("a", "A", Vec::new()))
            .expect("agent");
        acd.login(now, &agent, true).expect("ready");
        enqueue(&acd, now, 1, "old");
        acd.answered(now, CallId(1)).expect("answered");
        let actions = acd.retire_queue(now, &"old".into()).expect("retired");
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(
            acd.call(CallId(1)).map(|c| c.state),
            Some(crate::state::CallStateKind::Connected)
        );
        acd.hangup(now, CallId(1))
            .expect("the call still ends normally");
    }

    #[test]
    fn new_settings_take_effect_and_an_overflow_loop_is_refused() {
        let now = Instant::now();
        let mut a = QueueConfig::new("a");
        a.overflow = Some("b".into());
        let acd = acd(vec![a, QueueConfig::new("b")]);
        let mut b = QueueConfig::new("b");
        b.max_length = Some(0);
        b.strategy = Strategy::RoundRobin;
        acd.update_queue(now, &b).expect("updated");
        let queue = &acd.queues[1];
        assert_eq!(queue.settings.strategy(), Strategy::RoundRobin);
        assert!(!queue.try_admit(), "max_length 0 admits nobody");
        b.overflow = Some("a".into());
        assert_eq!(
            acd.update_queue(now, &b).map(|_| ()),
            Err(AcdError::OverflowCycle("b".into()))
        );
    }

    #[test]
    fn a_new_strategy_reorders_the_ready_agents() {
        let now = Instant::now();
        let acd = acd(vec![QueueConfig::new("q")]);
        for (id, at) in [("first", 0), ("second", 1)] {
            let agent = AgentId::from(id);
            acd.upsert_agent(now, AgentConfig::new(id, id, Vec::new()))
                .expect("agent");
            acd.login(now + std::time::Duration::from_secs(at), &agent, true)
                .expect("ready");
        }
        // "second" has answered nothing, "first" one call: fewest-calls must now pick "second".
        enqueue(&acd, now, 1, "q");
        acd.answered(now, CallId(1)).expect("answered");
        acd.hangup(now, CallId(1)).expect("ended");
        let mut q = QueueConfig::new("q");
        q.strategy = Strategy::FewestCalls;
        acd.update_queue(now, &q).expect("updated");
        let actions = enqueue(&acd, now, 2, "q");
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::Offer { agent, .. }
                if agent.as_str() == "second")),
            "{actions:?}"
        );
    }
}
