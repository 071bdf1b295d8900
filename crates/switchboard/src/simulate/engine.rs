//! The discrete-event loop of one replication: simulated time drives the real [`acd::Acd`].
//!
//! The ACD is sans-IO, so the simulation plays the part of call control: it enqueues
//! arriving calls, answers offers after a ring time (or reports a ring-no-answer at the
//! configured ring timeout), hangs up after the drawn talk time, abandons when the caller's
//! patience runs out, logs agents in and out by their shifts, and hands every `SetTimer`
//! back through `handle_timer` at its simulated instant. Nothing is modelled twice: routing,
//! strategies, skills, priorities, overflow, max wait, expansion and wrap-up are the ACD's.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use acd::{
    Acd, AcdConfig, AcdError, AcdEvent, Action, AgentConfig, AgentStateKind, CallId, CallRequest,
    OfferFailure, QueueId, Skill, Timer,
};
use cdr::Disposition;
use rand::rngs::StdRng;

use super::arrivals::{Arrival, CallProfile};
use super::distribution::Distribution;

/// The not-ready reason the simulation gives agents on a scheduled pause.
pub const PAUSE_REASON: &str = "simulated-pause";

/// One logged-in period of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// Index into [`Workforce::agents`].
    pub agent: usize,
    /// Login, microseconds from the start of the period.
    pub start_us: u64,
    /// Logout (an agent on a call logs out when it ends).
    pub end_us: u64,
    /// Skills during this shift.
    pub skills: Vec<(Skill, u8)>,
}

/// A not-ready period inside a shift (break, meeting…).
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    /// Index into [`Workforce::agents`].
    pub agent: usize,
    /// Start, microseconds from the start of the period.
    pub start_us: u64,
    /// End.
    pub end_us: u64,
}

/// Who works when.
#[derive(Debug, Clone, Default)]
pub struct Workforce {
    /// Every agent that appears in a shift.
    pub agents: Vec<AgentConfig>,
    /// Logged-in periods.
    pub shifts: Vec<Shift>,
    /// Not-ready periods.
    pub pauses: Vec<Pause>,
}

/// Everything one replication needs, shared by all of them.
#[derive(Debug, Clone)]
pub struct Model {
    /// Queues and reasons, as the binary builds them (plus [`PAUSE_REASON`]).
    pub acd: AcdConfig,
    /// Staffing.
    pub workforce: Workforce,
    /// Handle time and patience per kind of call.
    pub profiles: Vec<CallProfile>,
    /// Time an agent's phone rings before the agent answers.
    pub ring: Distribution,
    /// Ring timeout (`[sip] ring_timeout`): an offer not answered by then fails (no answer).
    pub ring_timeout_s: f64,
    /// Mean talk time per queue (for the Erlang formulas).
    pub queue_handle_s: Vec<f64>,
    /// Patience rate θ per queue (for Erlang A).
    pub queue_patience_rate: Vec<f64>,
}

/// How one simulated call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    /// Arrival, microseconds from the start of the period.
    pub arrived_us: u64,
    /// Queue the call arrived in.
    pub first_queue: usize,
    /// Queue it was in last (after overflows), as a CDR names it.
    pub queue: usize,
    /// As a CDR would record it (before the short-abandon rule).
    pub disposition: Disposition,
    /// Seconds from arrival in the queue to answer or leaving (ringing included).
    pub wait_s: f64,
    /// Talk seconds.
    pub talk_s: f64,
}

/// A stretch of one agent's time, for occupancy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Start, microseconds.
    pub start_us: u64,
    /// End.
    pub end_us: u64,
    /// Handling a call (ringing, talking, wrap-up) rather than Ready and idle.
    pub busy: bool,
}

/// What one replication produced.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// One per arrival.
    pub calls: Vec<CallOutcome>,
    /// Agents' busy and idle time (not-ready and logged-out time is neither).
    pub segments: Vec<Segment>,
}

/// A bug in the simulation's bookkeeping: the ACD refused something the simulation believed
/// legal. Never caused by user input.
#[derive(Debug, thiserror::Error)]
#[error("simulation out of step with the ACD at {at_s:.3} s: {source}")]
pub struct EngineError {
    at_s: f64,
    source: AcdError,
}

#[derive(Debug, Clone)]
enum Event {
    Arrival(usize),
    PatienceEnds(usize),
    AgentAnswers { call: usize, offer: u32 },
    RingTimeout { call: usize, offer: u32 },
    Hangup(usize),
    Acd(Timer),
    ShiftStart(usize),
    ShiftEnd(usize),
    PauseStart(usize),
    PauseEnd(usize),
}

struct Scheduled {
    at_us: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_us, self.seq) == (other.at_us, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and the earliest event (then the first scheduled,
    // which keeps runs deterministic) must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_us, other.seq).cmp(&(self.at_us, self.seq))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CallState {
    NotArrived,
    Waiting,
    Ringing { offer: u32 },
    Talking { answered_us: u64 },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct AgentClock {
    since_us: u64,
    kind: AgentStateKind,
}

struct Loop<'a> {
    model: &'a Model,
    acd: Acd,
    base: Instant,
    now_us: u64,
    heap: BinaryHeap<Scheduled>,
    seq: u64,
    arrivals: Vec<Arrival>,
    states: Vec<CallState>,
    offers: Vec<u32>,
    outcomes: Vec<CallOutcome>,
    agent_ids: Vec<acd::AgentId>,
    agent_index: HashMap<acd::AgentId, usize>,
    clocks: Vec<AgentClock>,
    segments: Vec<Segment>,
    queue_ids: Vec<QueueId>,
    rng: &'a mut StdRng,
}

/// Simulates one replication: `arrivals` (in time order) against `model`.
pub fn run(
    model: &Model,
    arrivals: Vec<Arrival>,
    rng: &mut StdRng,
) -> Result<RunResult, EngineError> {
    let acd = Acd::new(model.acd.clone()).map_err(|source| EngineError { at_s: 0.0, source })?;
    let queue_ids: Vec<QueueId> = model.acd.queues.iter().map(|q| q.id.clone()).collect();
    let outcomes = arrivals
        .iter()
        .map(|a| CallOutcome {
            arrived_us: a.at_us,
            first_queue: a.queue,
            queue: a.queue,
            disposition: Disposition::TimedOut,
            wait_s: 0.0,
            talk_s: 0.0,
        })
        .collect();
    let agent_count = model.workforce.agents.len();
    let mut sim = Loop {
        model,
        acd,
        base: Instant::now(),
        now_us: 0,
        heap: BinaryHeap::new(),
        seq: 0,
        states: vec![CallState::NotArrived; arrivals.len()],
        offers: vec![0; arrivals.len()],
        arrivals,
        outcomes,
        agent_ids: model
            .workforce
            .agents
            .iter()
            .map(|a| a.id.clone())
            .collect(),
        agent_index: model
            .workforce
            .agents
            .iter()
            .enumerate()
            .map(|(index, a)| (a.id.clone(), index))
            .collect(),
        clocks: vec![
            AgentClock {
                since_us: 0,
                kind: AgentStateKind::LoggedOut
            };
            agent_count
        ],
        segments: Vec::new(),
        queue_ids,
        rng,
    };
    for agent in &model.workforce.agents {
        sim.acd
            .upsert_agent(sim.base, agent.clone())
            .map_err(|source| EngineError { at_s: 0.0, source })?;
    }
    for (index, shift) in model.workforce.shifts.iter().enumerate() {
        sim.schedule(shift.start_us, Event::ShiftStart(index));
        // `u64::MAX` is a shift that lasts until the work is done: no logout to schedule.
        if shift.end_us != u64::MAX {
            sim.schedule(shift.end_us, Event::ShiftEnd(index));
        }
    }
    for (index, pause) in model.workforce.pauses.iter().enumerate() {
        sim.schedule(pause.start_us, Event::PauseStart(index));
        sim.schedule(pause.end_us, Event::PauseEnd(index));
    }
    for index in 0..sim.arrivals.len() {
        sim.schedule(sim.arrivals[index].at_us, Event::Arrival(index));
    }
    while let Some(next) = sim.heap.pop() {
        sim.now_us = next.at_us;
        sim.handle(next.event).map_err(|source| EngineError {
            at_s: sim.now_us as f64 / 1e6,
            source,
        })?;
    }
    // Agents still Ready when nothing else happens stay so (their shift lasts until the work
    // is done): their idle time runs on, so occupancy is not overstated at the end.
    for clock in &sim.clocks {
        if clock.kind == AgentStateKind::Ready {
            sim.segments.push(Segment {
                start_us: clock.since_us,
                end_us: u64::MAX,
                busy: false,
            });
        }
    }
    // Calls nobody could ever answer (no agent left, callers who never give up) end with the
    // simulation, counted against the service level like a timeout.
    let end_us = sim.now_us;
    for (index, state) in sim.states.iter().enumerate() {
        if matches!(state, CallState::Waiting | CallState::Ringing { .. }) {
            let outcome = &mut sim.outcomes[index];
            outcome.wait_s = end_us.saturating_sub(outcome.arrived_us) as f64 / 1e6;
        }
    }
    Ok(RunResult {
        calls: sim.outcomes,
        segments: sim.segments,
    })
}

fn seconds_to_us(seconds: f64) -> u64 {
    if seconds.is_finite() {
        (seconds.max(0.0) * 1e6) as u64
    } else {
        u64::MAX
    }
}

impl Loop<'_> {
    fn schedule(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at_us,
            seq: self.seq,
            event,
        });
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_micros(self.now_us)
    }

    fn wait_s(&self, call: usize) -> f64 {
        self.now_us.saturating_sub(self.arrivals[call].at_us) as f64 / 1e6
    }

    fn handle(&mut self, event: Event) -> Result<(), AcdError> {
        let now = self.instant();
        let actions = match event {
            Event::Arrival(call) => {
                self.states[call] = CallState::Waiting;
                let arrival = self.arrivals[call].clone();
                let profile = &self.model.profiles[arrival.profile];
                let patience = profile.patience.sample(self.rng);
                if patience.is_finite() {
                    let at = self.now_us.saturating_add(seconds_to_us(patience));
                    self.schedule(at, Event::PatienceEnds(call));
                }
                let request = CallRequest {
                    id: CallId(call as u64),
                    queue: self.queue_ids[arrival.queue].clone(),
                    priority: arrival.priority,
                    preferred_agent: None,
                    waiting_since: None,
                    preferred_wait: None,
                };
                self.acd.enqueue(now, request)?
            }
            Event::PatienceEnds(call) => match self.states[call] {
                CallState::Waiting | CallState::Ringing { .. } => {
                    self.finish(call, Disposition::Abandoned);
                    self.acd.abandon(now, CallId(call as u64))?
                }
                _ => Vec::new(),
            },
            Event::AgentAnswers { call, offer } => {
                if self.states[call] != (CallState::Ringing { offer }) {
                    return Ok(());
                }
                self.states[call] = CallState::Talking {
                    answered_us: self.now_us,
                };
                self.outcomes[call].wait_s = self.wait_s(call);
                let profile = &self.model.profiles[self.arrivals[call].profile];
                let talk = profile.handle.sample(self.rng);
                let at = self.now_us.saturating_add(seconds_to_us(talk));
                self.schedule(at, Event::Hangup(call));
                self.acd.answered(now, CallId(call as u64))?
            }
            Event::RingTimeout { call, offer } => {
                if self.states[call] != (CallState::Ringing { offer }) {
                    return Ok(());
                }
                self.states[call] = CallState::Waiting;
                self.acd
                    .offer_failed(now, CallId(call as u64), OfferFailure::NoAnswer)?
            }
            Event::Hangup(call) => {
                let CallState::Talking { answered_us } = self.states[call] else {
                    return Ok(());
                };
                // The wait was fixed at the answer; only the talk time is new.
                self.states[call] = CallState::Done;
                let outcome = &mut self.outcomes[call];
                outcome.talk_s = self.now_us.saturating_sub(answered_us) as f64 / 1e6;
                outcome.disposition = Disposition::Answered;
                self.acd.hangup(now, CallId(call as u64))?
            }
            Event::Acd(timer) => self.acd.handle_timer(now, timer),
            Event::ShiftStart(index) => {
                let shift = &self.model.workforce.shifts[index];
                let id = self.agent_ids[shift.agent].clone();
                let mut config = self.model.workforce.agents[shift.agent].clone();
                config.skills = shift.skills.clone();
                let mut actions = self.acd.upsert_agent(now, config)?;
                match self.acd.login(now, &id, true) {
                    Ok(more) => actions.extend(more),
                    // Still finishing a call from the previous shift: cancel its pending logout.
                    Err(AcdError::IllegalTransition { .. }) => {
                        actions.extend(self.acd.set_ready(now, &id)?)
                    }
                    Err(other) => return Err(other),
                }
                actions
            }
            Event::ShiftEnd(index) => {
                let id = self.agent_ids[self.model.workforce.shifts[index].agent].clone();
                match self.acd.logout(now, &id) {
                    Ok(actions) => actions,
                    Err(AcdError::IllegalTransition { .. }) => Vec::new(),
                    Err(other) => return Err(other),
                }
            }
            Event::PauseStart(index) => {
                let id = self.agent_ids[self.model.workforce.pauses[index].agent].clone();
                // A pause outside every shift has nobody to pause.
                match self.acd.set_not_ready(now, &id, PAUSE_REASON) {
                    Ok(actions) => actions,
                    Err(AcdError::IllegalTransition { .. }) => Vec::new(),
                    Err(other) => return Err(other),
                }
            }
            Event::PauseEnd(index) => {
                let id = self.agent_ids[self.model.workforce.pauses[index].agent].clone();
                match self.acd.set_ready(now, &id) {
                    Ok(actions) => actions,
                    Err(AcdError::IllegalTransition { .. }) => Vec::new(),
                    Err(other) => return Err(other),
                }
            }
        };
        self.apply(actions);
        Ok(())
    }

    fn finish(&mut self, call: usize, disposition: Disposition) {
        self.states[call] = CallState::Done;
        self.outcomes[call].disposition = disposition;
        self.outcomes[call].wait_s = self.wait_s(call);
    }

    fn queue_index(&self, id: &QueueId) -> usize {
        self.queue_ids.iter().position(|q| q == id).unwrap_or(0)
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Offer { call, .. } => {
                    let index = call.0 as usize;
                    self.offers[index] += 1;
                    let offer = self.offers[index];
                    self.states[index] = CallState::Ringing { offer };
                    let ring = self.model.ring.sample(self.rng);
                    if ring >= self.model.ring_timeout_s {
                        let at = self.now_us + seconds_to_us(self.model.ring_timeout_s);
                        self.schedule(at, Event::RingTimeout { call: index, offer });
                    } else {
                        let at = self.now_us + seconds_to_us(ring);
                        self.schedule(at, Event::AgentAnswers { call: index, offer });
                    }
                }
                Action::Overflow { call, to, .. } => {
                    let queue = self.queue_index(&to);
                    self.outcomes[call.0 as usize].queue = queue;
                }
                Action::Timeout { call, queue } => {
                    let index = call.0 as usize;
                    self.outcomes[index].queue = self.queue_index(&queue);
                    self.finish(index, Disposition::TimedOut);
                }
                Action::Rejected { call, queue, .. } => {
                    let index = call.0 as usize;
                    self.outcomes[index].queue = self.queue_index(&queue);
                    self.finish(index, Disposition::Rejected);
                }
                Action::SetTimer { timer, at } => {
                    let at_us = at.saturating_duration_since(self.base).as_micros();
                    self.schedule(u64::try_from(at_us).unwrap_or(u64::MAX), Event::Acd(timer));
                }
                Action::Event(AcdEvent::AgentStateChanged { agent, to, .. }) => {
                    self.agent_changed(&agent, to.kind());
                }
                Action::Event(_) => {}
            }
        }
    }

    fn agent_changed(&mut self, agent: &acd::AgentId, to: AgentStateKind) {
        let Some(&index) = self.agent_index.get(agent) else {
            return;
        };
        let clock = self.clocks[index];
        let busy = matches!(
            clock.kind,
            AgentStateKind::Reserved | AgentStateKind::OnCall | AgentStateKind::WrapUp
        );
        if (busy || clock.kind == AgentStateKind::Ready) && self.now_us > clock.since_us {
            self.segments.push(Segment {
                start_us: clock.since_us,
                end_us: self.now_us,
                busy,
            });
        }
        self.clocks[index] = AgentClock {
            since_us: self.now_us,
            kind: to,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd::{QueueConfig, SkillRequirement};
    use rand::SeedableRng;

    const S: u64 = 1_000_000;

    fn queue(name: &str) -> QueueConfig {
        let mut queue = QueueConfig::new(name);
        queue.required = vec![SkillRequirement::new(name, 1)];
        queue
    }

    /// One agent serving `skill` from 0 to 1000 s; calls talk 10 s, never abandon.
    fn model(queues: Vec<QueueConfig>, skill: &str) -> Model {
        Model {
            acd: AcdConfig {
                queues,
                not_ready_reasons: vec![PAUSE_REASON.to_owned(), "missed".to_owned()],
                missed_call_reason: Some("missed".to_owned()),
                offer_retry_after: acd::DEFAULT_OFFER_RETRY_AFTER,
            },
            workforce: Workforce {
                agents: vec![AgentConfig::new("a1", "A", Vec::new())],
                shifts: vec![Shift {
                    agent: 0,
                    start_us: 0,
                    end_us: 1000 * S,
                    skills: vec![(Skill::from(skill), 5)],
                }],
                pauses: Vec::new(),
            },
            profiles: vec![CallProfile {
                handle: Distribution::Fixed(10.0),
                patience: Distribution::Never,
            }],
            ring: Distribution::Fixed(2.0),
            ring_timeout_s: 20.0,
            queue_handle_s: vec![10.0; 2],
            queue_patience_rate: vec![0.0; 2],
        }
    }

    fn arrival(at_s: u64, queue: usize) -> Arrival {
        Arrival {
            at_us: at_s * S,
            queue,
            priority: 0,
            profile: 0,
        }
    }

    fn simulate(model: &Model, arrivals: Vec<Arrival>) -> RunResult {
        run(model, arrivals, &mut StdRng::seed_from_u64(1)).expect("consistent")
    }

    #[test]
    fn calls_queue_behind_a_busy_agent_and_wait_includes_ringing() {
        let result = simulate(
            &model(vec![queue("support")], "support"),
            vec![arrival(100, 0), arrival(101, 0)],
        );
        let [first, second] = &result.calls[..] else {
            panic!("two calls: {:?}", result.calls);
        };
        assert_eq!(first.disposition, Disposition::Answered);
        assert_eq!(first.wait_s, 2.0, "rang 2 s");
        assert_eq!(first.talk_s, 10.0);
        // The second waits for the first to end (at 112 s) and rings 2 s: 13 s.
        assert_eq!(second.wait_s, 13.0);
        // Busy from 100 to 124 s (two rings and two talks), idle otherwise.
        let busy: u64 = result
            .segments
            .iter()
            .filter(|s| s.busy)
            .map(|s| s.end_us - s.start_us)
            .sum();
        assert_eq!(busy, 24 * S);
        // Ready the rest of the shift (logged out at 1000 s).
        let idle: u64 = result
            .segments
            .iter()
            .filter(|s| !s.busy)
            .map(|s| s.end_us - s.start_us)
            .sum();
        assert_eq!(idle, (1000 - 24) * S);
    }

    #[test]
    fn an_open_ended_shift_stays_idle_after_the_last_call() {
        let mut model = model(vec![queue("support")], "support");
        model.workforce.shifts[0].end_us = u64::MAX;
        let result = simulate(&model, vec![arrival(100, 0)]);
        assert_eq!(result.calls[0].disposition, Disposition::Answered);
        let last = result.segments.last().expect("segments");
        assert_eq!(
            (last.start_us, last.end_us, last.busy),
            (112 * S, u64::MAX, false)
        );
    }

    #[test]
    fn a_ring_past_the_ring_timeout_is_a_missed_call() {
        let mut model = model(vec![queue("support")], "support");
        model.ring = Distribution::Fixed(30.0);
        let result = simulate(&model, vec![arrival(100, 0)]);
        // The only agent let it ring out and went not ready (missed): nobody ever answers.
        assert_eq!(result.calls[0].disposition, Disposition::TimedOut);
        assert_eq!(result.calls[0].talk_s, 0.0);
    }

    #[test]
    fn max_wait_overflows_through_the_real_acd() {
        let mut sales = queue("sales");
        sales.max_wait = Some(Duration::from_secs(45));
        sales.overflow = Some(QueueId::from("support"));
        // The only agent serves support, so sales calls wait out their 45 s, then move.
        let result = simulate(
            &model(vec![queue("support"), sales], "support"),
            vec![arrival(100, 1)],
        );
        let call = &result.calls[0];
        assert_eq!(call.first_queue, 1);
        assert_eq!(call.queue, 0, "answered from the overflow queue");
        assert_eq!(call.disposition, Disposition::Answered);
        assert_eq!(call.wait_s, 47.0);
    }

    #[test]
    fn patience_pauses_and_shifts_are_honoured() {
        let mut model = model(vec![queue("support")], "support");
        model.workforce.pauses.push(Pause {
            agent: 0,
            start_us: 50 * S,
            end_us: 200 * S,
        });
        model.profiles[0].patience = Distribution::Fixed(60.0);
        // Arrives during the pause: the caller gives up after 60 s.
        let paused = simulate(&model, vec![arrival(100, 0)]);
        assert_eq!(paused.calls[0].disposition, Disposition::Abandoned);
        assert_eq!(paused.calls[0].wait_s, 60.0);
        // Arrives 30 s before the pause ends: answered when it does, plus the ring.
        let waited = simulate(&model, vec![arrival(170, 0)]);
        assert_eq!(waited.calls[0].disposition, Disposition::Answered);
        assert_eq!(waited.calls[0].wait_s, 32.0);
        // After the shift, nobody answers.
        let late = simulate(&model, vec![arrival(2000, 0)]);
        assert_eq!(late.calls[0].disposition, Disposition::Abandoned);
    }
}
