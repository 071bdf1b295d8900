//! Property tests: random event sequences on one thread with a fake clock. After every single
//! call into the ACD the harness checks its actions and state against the invariants:
//! no agent offered two calls, no call lost or duplicated, only legal agent transitions,
//! priority respected within a queue, no Ready agent left idle next to a call it could take
//! (unless a failed offer excludes that pair for now), no call still waiting past its queue's
//! max wait, and a failed offer never offered again to the same agent before
//! `offer_retry_after` (after `Incompatible`: never during that stay in the queue). And the
//! per-queue agent counters always equal a recount of the agents by state, for the base
//! stage (`queue_agent_counts`) and for every stage (`queue().agents`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use acd::{
    Acd, AcdConfig, AcdEvent, Action, AgentConfig, AgentCounts, AgentId, AgentStateKind, CallId,
    CallRequest, CallStateKind, OfferFailure, Skill, Timer,
};
use proptest::prelude::*;

const AGENTS: usize = 5;
const QUEUES: [&str; 3] = ["sales", "tech", "general"];

#[derive(Clone, Debug)]
enum Op {
    Upsert {
        agent: usize,
        skills: Vec<Option<u8>>,
    },
    Login {
        agent: usize,
        ready: bool,
    },
    SetReady {
        agent: usize,
    },
    SetNotReady {
        agent: usize,
        reason: usize,
    },
    Logout {
        agent: usize,
    },
    Remove {
        agent: usize,
    },
    Enqueue {
        queue: usize,
        priority: i32,
        preferred: Option<usize>,
    },
    Answer {
        pick: usize,
    },
    OfferFailed {
        pick: usize,
        why: usize,
    },
    Abandon {
        pick: usize,
    },
    Hangup {
        pick: usize,
    },
    Advance {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS;
    prop_oneof![
        1 => (agent.clone(), prop::collection::vec(prop::option::of(1u8..=10), 3))
            .prop_map(|(agent, skills)| Op::Upsert { agent, skills }),
        2 => (agent.clone(), any::<bool>()).prop_map(|(agent, ready)| Op::Login { agent, ready }),
        3 => agent.clone().prop_map(|agent| Op::SetReady { agent }),
        1 => (agent.clone(), 0..3usize).prop_map(|(agent, reason)| Op::SetNotReady { agent, reason }),
        1 => agent.clone().prop_map(|agent| Op::Logout { agent }),
        1 => agent.clone().prop_map(|agent| Op::Remove { agent }),
        4 => (0..3usize, 0..3i32, prop::option::weighted(0.2, 0..AGENTS))
            .prop_map(|(queue, priority, preferred)| Op::Enqueue { queue, priority, preferred }),
        3 => any::<usize>().prop_map(|pick| Op::Answer { pick }),
        3 => (any::<usize>(), 0..5usize).prop_map(|(pick, why)| Op::OfferFailed { pick, why }),
        2 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
        3 => any::<usize>().prop_map(|pick| Op::Hangup { pick }),
        3 => (1u64..40).prop_map(|secs| Op::Advance { secs }),
    ]
}

/// The harness's own record of a failed offer of one call to one agent.
#[derive(Clone, Debug)]
struct FailedOffer {
    /// The call's stay (counted by the harness from Overflow actions) it happened in.
    stay: u64,
    at: Instant,
    why: OfferFailure,
    /// Epoch of the OfferRetry timer the ACD asked for; `None` after `Incompatible`.
    retry: Option<u64>,
    /// That timer has been handed back.
    lifted: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum CallStatus {
    Waiting,
    Offered(AgentId),
    Connected(AgentId),
    Done,
}

struct Harness {
    acd: Acd,
    config: AcdConfig,
    t0: Instant,
    now: Instant,
    timers: BTreeMap<(Instant, u64), Timer>,
    timer_seq: u64,
    agent_kind: HashMap<AgentId, AgentStateKind>,
    agent_skills: HashMap<AgentId, HashMap<String, u8>>,
    /// Agent → the call offered to or connected with it.
    engaged: HashMap<AgentId, CallId>,
    calls: BTreeMap<CallId, CallStatus>,
    next_call: u64,
    strict_priority: bool,
    /// Stays per call: 0 on arrival, one more per overflow.
    stays: HashMap<CallId, u64>,
    failed: HashMap<(CallId, AgentId), FailedOffer>,
}

fn agent_id(index: usize) -> AgentId {
    AgentId::new(format!("agent{index}"))
}

impl Harness {
    fn new(strict_priority: bool) -> Self {
        let aging = if strict_priority {
            None
        } else {
            Some(Duration::from_secs(10))
        };
        let config = common::config(aging);
        let acd = Acd::new(config.clone()).expect("valid config");
        let t0 = Instant::now();
        Self {
            acd,
            config,
            t0,
            now: t0,
            timers: BTreeMap::new(),
            timer_seq: 0,
            agent_kind: HashMap::new(),
            agent_skills: HashMap::new(),
            engaged: HashMap::new(),
            calls: BTreeMap::new(),
            next_call: 1,
            strict_priority,
            stays: HashMap::new(),
            failed: HashMap::new(),
        }
    }

    /// Whether the harness's model says `agent` may not be offered `call` right now.
    fn excluded(&self, call: CallId, agent: &AgentId) -> bool {
        let stay = self.stays.get(&call).copied().unwrap_or(0);
        self.failed
            .get(&(call, agent.clone()))
            .is_some_and(|f| f.stay == stay && (f.why == OfferFailure::Incompatible || !f.lifted))
    }

    fn pick(&self, pick: usize, wanted: impl Fn(&CallStatus) -> bool) -> Option<CallId> {
        let candidates: Vec<CallId> = self
            .calls
            .iter()
            .filter(|(_, s)| wanted(s))
            .map(|(id, _)| *id)
            .collect();
        (!candidates.is_empty()).then(|| candidates[pick % candidates.len()])
    }

    fn run(&mut self, op: Op) -> Result<(), TestCaseError> {
        let now = self.now;
        let result = match op {
            Op::Upsert { agent, skills } => {
                let skills: Vec<(Skill, u8)> = skills
                    .iter()
                    .zip(common::SKILLS)
                    .filter_map(|(level, name)| level.map(|l| (Skill::new(name), l)))
                    .collect();
                let id = agent_id(agent);
                let result = self
                    .acd
                    .upsert_agent(now, AgentConfig::new(id.clone(), "x", skills.clone()));
                if result.is_ok() {
                    self.agent_skills.insert(
                        id.clone(),
                        skills.iter().map(|(s, l)| (s.to_string(), *l)).collect(),
                    );
                    self.agent_kind
                        .entry(id)
                        .or_insert(AgentStateKind::LoggedOut);
                }
                result
            }
            Op::Login { agent, ready } => self.acd.login(now, &agent_id(agent), ready),
            Op::SetReady { agent } => self.acd.set_ready(now, &agent_id(agent)),
            Op::SetNotReady { agent, reason } => {
                self.acd
                    .set_not_ready(now, &agent_id(agent), common::REASONS[reason])
            }
            Op::Logout { agent } => self.acd.logout(now, &agent_id(agent)),
            Op::Remove { agent } => {
                let id = agent_id(agent);
                let result = self.acd.remove_agent(now, &id);
                if result.is_ok() {
                    prop_assert!(
                        !self.engaged.contains_key(&id),
                        "removed an agent with a call"
                    );
                }
                let actions = result.clone();
                if let Ok(actions) = actions {
                    self.absorb(&actions)?;
                    self.agent_kind.remove(&id);
                    self.agent_skills.remove(&id);
                    // Re-adding the id makes a new agent, which no call excludes.
                    self.failed.retain(|(_, agent), _| *agent != id);
                    return self.check(&actions);
                }
                result
            }
            Op::Enqueue {
                queue,
                priority,
                preferred,
            } => {
                let id = CallId(self.next_call);
                self.next_call += 1;
                self.calls.insert(id, CallStatus::Waiting);
                let request = CallRequest {
                    id,
                    queue: QUEUES[queue].into(),
                    priority,
                    preferred_agent: preferred.map(agent_id),
                    waiting_since: None,
                    preferred_wait: None,
                };
                self.acd.enqueue(now, request)
            }
            Op::Answer { pick } => match self.pick(pick, |s| matches!(s, CallStatus::Offered(_))) {
                Some(call) => {
                    let result = self.acd.answered(now, call);
                    if result.is_ok() {
                        if let Some(CallStatus::Offered(agent)) = self.calls.get(&call).cloned() {
                            self.calls.insert(call, CallStatus::Connected(agent));
                        }
                    }
                    result
                }
                None => return Ok(()),
            },
            Op::OfferFailed { pick, why } => {
                match self.pick(pick, |s| matches!(s, CallStatus::Offered(_))) {
                    Some(call) => {
                        let why = [
                            OfferFailure::NoAnswer,
                            OfferFailure::Busy,
                            OfferFailure::Rejected,
                            OfferFailure::Unreachable,
                            OfferFailure::Incompatible,
                        ][why];
                        let result = self.acd.offer_failed(now, call, why);
                        if let Ok(actions) = &result {
                            if let Some(CallStatus::Offered(agent)) = self.calls.get(&call).cloned()
                            {
                                self.record_failure(now, call, agent, why, actions)?;
                            }
                            self.release(call, CallStatus::Waiting);
                        }
                        result
                    }
                    None => return Ok(()),
                }
            }
            Op::Abandon { pick } => match self.pick(pick, |s| {
                matches!(s, CallStatus::Waiting | CallStatus::Offered(_))
            }) {
                Some(call) => {
                    let result = self.acd.abandon(now, call);
                    if result.is_ok() {
                        self.release(call, CallStatus::Done);
                    }
                    result
                }
                None => return Ok(()),
            },
            Op::Hangup { pick } => match self.pick(pick, |s| matches!(s, CallStatus::Connected(_)))
            {
                Some(call) => {
                    let result = self.acd.hangup(now, call);
                    if result.is_ok() {
                        self.release(call, CallStatus::Done);
                    }
                    result
                }
                None => return Ok(()),
            },
            Op::Advance { secs } => return self.advance(Duration::from_secs(secs)),
        };
        match result {
            Ok(actions) => {
                self.absorb(&actions)?;
                self.check(&actions)
            }
            // A refusal must leave the ACD exactly as it was: the checks still hold.
            Err(_) => self.check(&[]),
        }
    }

    /// Writes down a failed offer and checks the retry timer the ACD asked for.
    fn record_failure(
        &mut self,
        now: Instant,
        call: CallId,
        agent: AgentId,
        why: OfferFailure,
        actions: &[Action],
    ) -> Result<(), TestCaseError> {
        let retries: Vec<(u64, Instant)> = actions
            .iter()
            .filter_map(|action| match action {
                Action::SetTimer {
                    timer:
                        Timer::OfferRetry {
                            call: c,
                            agent: a,
                            epoch,
                        },
                    at,
                } if *c == call && *a == agent => Some((*epoch, *at)),
                _ => None,
            })
            .collect();
        let stay_ended = actions.iter().any(|action| {
            matches!(action, Action::Overflow { call: c, .. } | Action::Timeout { call: c, .. } if *c == call)
        });
        let expected = usize::from(why != OfferFailure::Incompatible && !stay_ended);
        prop_assert_eq!(retries.len(), expected, "retry timers after {:?}", why);
        if let Some((_, at)) = retries.first() {
            prop_assert_eq!(*at, now + self.config.offer_retry_after);
        }
        self.failed.insert(
            (call, agent),
            FailedOffer {
                stay: self.stays.get(&call).copied().unwrap_or(0),
                at: now,
                why,
                retry: retries.first().map(|(epoch, _)| *epoch),
                lifted: false,
            },
        );
        Ok(())
    }

    fn release(&mut self, call: CallId, to: CallStatus) {
        if let Some(CallStatus::Offered(agent) | CallStatus::Connected(agent)) =
            self.calls.get(&call).cloned()
        {
            self.engaged.remove(&agent);
        }
        self.calls.insert(call, to);
    }

    fn advance(&mut self, by: Duration) -> Result<(), TestCaseError> {
        let until = self.now + by;
        while let Some((&(at, seq), _)) = self.timers.iter().next() {
            if at > until {
                break;
            }
            let timer = self.timers.remove(&(at, seq)).expect("just seen");
            self.now = self.now.max(at);
            if let Timer::OfferRetry { epoch, .. } = &timer {
                for failed in self.failed.values_mut() {
                    if failed.retry == Some(*epoch) {
                        failed.lifted = true;
                    }
                }
            }
            let actions = self.acd.handle_timer(self.now, timer);
            self.absorb(&actions)?;
            self.check(&actions)?;
        }
        self.now = until;
        self.check(&[])
    }

    /// Applies the ACD's actions to the harness's view, checking each on the way.
    fn absorb(&mut self, actions: &[Action]) -> Result<(), TestCaseError> {
        for action in actions {
            match action {
                Action::Offer { call, agent, .. } => {
                    prop_assert!(
                        !self.engaged.contains_key(agent),
                        "{agent} offered {call} while holding {:?}",
                        self.engaged.get(agent)
                    );
                    // A failed offer is not repeated to the same agent too soon.
                    let stay = self.stays.get(call).copied().unwrap_or(0);
                    if let Some(failed) = self.failed.remove(&(*call, agent.clone())) {
                        if failed.stay == stay {
                            prop_assert!(
                                failed.why != OfferFailure::Incompatible,
                                "{} offered {} again in the stay its device could not take",
                                agent,
                                call
                            );
                            prop_assert!(
                                self.now >= failed.at + self.config.offer_retry_after,
                                "{} offered {} again {:?} after {:?}",
                                agent,
                                call,
                                self.now.duration_since(failed.at),
                                failed.why
                            );
                        }
                    }
                    let status = self.calls.get(call).cloned();
                    prop_assert_eq!(
                        status,
                        Some(CallStatus::Waiting),
                        "{} offered twice or after it ended",
                        call
                    );
                    self.engaged.insert(agent.clone(), *call);
                    self.calls.insert(*call, CallStatus::Offered(agent.clone()));
                }
                Action::Timeout { call, .. } | Action::Rejected { call, .. } => {
                    prop_assert_eq!(self.calls.get(call), Some(&CallStatus::Waiting));
                    self.calls.insert(*call, CallStatus::Done);
                }
                Action::Overflow { call, .. } => {
                    prop_assert_eq!(self.calls.get(call), Some(&CallStatus::Waiting));
                    *self.stays.entry(*call).or_insert(0) += 1;
                }
                Action::SetTimer { timer, at } => {
                    prop_assert!(*at >= self.now, "timer set in the past");
                    self.timer_seq += 1;
                    self.timers.insert((*at, self.timer_seq), timer.clone());
                }
                Action::Event(AcdEvent::AgentStateChanged {
                    agent, from, to, ..
                }) => {
                    let known = self.agent_kind.get(agent).copied();
                    prop_assert_eq!(known, Some(from.kind()), "{} event out of sequence", agent);
                    prop_assert!(
                        from.kind().can_become(to.kind()),
                        "illegal {:?} -> {:?}",
                        from,
                        to
                    );
                    self.agent_kind.insert(agent.clone(), to.kind());
                }
                Action::Event(_) => {}
            }
        }
        Ok(())
    }

    /// The queues' agent counters against a recount from the harness's own view of every
    /// agent's state and skills (so skill changes moving agents between queues and stages
    /// are covered).
    fn check_agent_counts(&self) -> Result<(), TestCaseError> {
        for queue in &self.config.queues {
            let recount = |stage: usize| {
                let mut counts = AgentCounts::default();
                for (agent, kind) in &self.agent_kind {
                    if !common::qualifies(queue, &self.agent_skills[agent], stage) {
                        continue;
                    }
                    let slot = match kind {
                        AgentStateKind::LoggedOut => &mut counts.logged_out,
                        AgentStateKind::Ready => &mut counts.ready,
                        AgentStateKind::Reserved => &mut counts.reserved,
                        AgentStateKind::OnCall => &mut counts.on_call,
                        AgentStateKind::WrapUp => &mut counts.wrap_up,
                        AgentStateKind::NotReady => &mut counts.not_ready,
                    };
                    *slot += 1;
                    if *kind != AgentStateKind::LoggedOut {
                        counts.logged_in += 1;
                    }
                }
                counts
            };
            prop_assert_eq!(
                self.acd.queue_agent_counts(&queue.id),
                Some(recount(0)),
                "base-stage counts of {}",
                queue.id
            );
            let every_stage = self.acd.queue(&queue.id).map(|q| q.agents);
            prop_assert_eq!(
                every_stage,
                Some(recount(usize::MAX)),
                "all-stage counts of {}",
                queue.id
            );
        }
        Ok(())
    }

    /// Invariants that must hold whenever no call into the ACD is running.
    fn check(&self, actions: &[Action]) -> Result<(), TestCaseError> {
        // Every call is exactly where the harness believes it is.
        for (id, status) in &self.calls {
            let seen = self.acd.call(*id);
            match status {
                CallStatus::Done => {
                    prop_assert!(seen.is_none(), "{id} ended but the ACD still has it")
                }
                CallStatus::Waiting => {
                    let seen = seen
                        .ok_or_else(|| TestCaseError::fail(format!("{id} lost while waiting")))?;
                    prop_assert_eq!(seen.state, CallStateKind::Waiting);
                }
                CallStatus::Offered(agent) | CallStatus::Connected(agent) => {
                    let seen = seen
                        .ok_or_else(|| TestCaseError::fail(format!("{id} lost while engaged")))?;
                    let expected = if matches!(status, CallStatus::Offered(_)) {
                        CallStateKind::Offered
                    } else {
                        CallStateKind::Connected
                    };
                    prop_assert_eq!(seen.state, expected);
                    prop_assert_eq!(seen.agent.as_ref(), Some(agent));
                }
            }
        }
        // Agent states reported by events match the ACD's own view.
        for (agent, kind) in &self.agent_kind {
            let seen = self.acd.agent(agent).map(|a| a.state.kind());
            prop_assert_eq!(seen, Some(*kind), "{} state drifted from its events", agent);
        }
        let waiting: Vec<_> = self
            .calls
            .iter()
            .filter(|(_, s)| **s == CallStatus::Waiting)
            .filter_map(|(id, _)| self.acd.call(*id))
            .collect();
        // Nobody Ready sits next to a call they could take (no lost wake-up), except a call
        // whose offer to them failed and which is still excluded for them.
        for (agent, kind) in &self.agent_kind {
            if *kind != AgentStateKind::Ready {
                continue;
            }
            let skills = &self.agent_skills[agent];
            for call in waiting.iter().filter(|c| !self.excluded(c.id, agent)) {
                prop_assert!(
                    !common::eligible(&self.config, skills, call, agent.as_str()),
                    "{} is Ready but {:?} waits",
                    agent,
                    call
                );
            }
        }
        self.check_agent_counts()?;
        // Max wait bounds every wait.
        for call in &waiting {
            let queue = self
                .config
                .queues
                .iter()
                .find(|q| q.id == call.queue)
                .expect("known queue");
            if let Some(max_wait) = queue.max_wait {
                prop_assert!(
                    self.now.duration_since(call.enqueued_at) <= max_wait,
                    "{:?} waited past max wait",
                    call
                );
            }
        }
        // Priority: no call offered while a more urgent one the same agent could take waits.
        if self.strict_priority {
            for action in actions {
                if let Action::Offer { call, agent, queue } = action {
                    let priority = self.acd.call(*call).map(|c| c.priority).unwrap_or(i32::MIN);
                    let skills = &self.agent_skills[agent];
                    for other in waiting
                        .iter()
                        .filter(|c| &c.queue == queue && !self.excluded(c.id, agent))
                    {
                        prop_assert!(
                            !(other.priority > priority
                                && common::eligible(&self.config, skills, other, agent.as_str())),
                            "{} offered {} over more urgent {:?}",
                            agent,
                            call,
                            other
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

fn run_sequence(ops: Vec<Op>, strict_priority: bool) -> Result<(), TestCaseError> {
    let mut harness = Harness::new(strict_priority);
    // Everyone exists with some skills so that most sequences have work to do.
    for agent in 0..AGENTS {
        let skills = vec![
            Some(5),
            Some(6),
            if agent % 2 == 0 { Some(2) } else { None },
        ];
        harness.run(Op::Upsert { agent, skills })?;
    }
    for op in ops {
        harness.run(op)?;
    }
    // Drain: after every deadline has passed, no call is left waiting.
    harness.advance(Duration::from_secs(3600))?;
    let stuck: Vec<_> = harness
        .calls
        .iter()
        .filter(|(_, s)| **s == CallStatus::Waiting)
        .collect();
    prop_assert!(
        stuck.is_empty(),
        "calls still waiting after all deadlines: {:?}",
        stuck
    );
    prop_assert!(harness.now > harness.t0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_under_strict_priority(ops in prop::collection::vec(op(), 1..80)) {
        run_sequence(ops, true)?;
    }

    #[test]
    fn invariants_hold_with_aging(ops in prop::collection::vec(op(), 1..80)) {
        run_sequence(ops, false)?;
    }
}
