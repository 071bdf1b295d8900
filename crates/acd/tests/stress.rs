//! Eight threads fire events at one ACD at once for a bounded count. The checks:
//! - no agent is ever offered a second call while it holds one (an atomic per-agent slot
//!   that each Offer must find empty);
//! - every AgentStateChanged is a legal transition;
//! - no call lost or duplicated (each call ends at most once, and one that did not end is
//!   still in the ACD);
//! - right after the threads stop, no Ready agent sits next to a call it could take (other
//!   than one whose offer to it failed and is still excluded), which is what the
//!   lost-wakeup race between enqueue and set-ready would break;
//! - after every deadline passes, no call is left waiting, and every queue's agent counters
//!   equal a recount of the agents by state.

mod common;

use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use acd::{
    Acd, AcdConfig, AcdEvent, Action, AgentConfig, AgentCounts, AgentId, AgentStateKind, CallId,
    CallRequest, CallStateKind, OfferFailure, Skill, Timer,
};

const THREADS: usize = 8;
const STEPS_PER_THREAD: usize = 6_000;
const AGENTS: usize = 48;
const MAX_CALLS: usize = 20_000;

/// Test-side fate of a call, so that an abandon and an offer of the same call do not both
/// try to drive it.
const FREE: u8 = 0;
const OWNED_BY_OFFER: u8 = 1;
const ABANDONING: u8 = 2;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Due(std::cmp::Reverse<(Instant, u64)>, TimerBox);

#[derive(PartialEq, Eq)]
struct TimerBox(Timer);

impl PartialOrd for TimerBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TimerBox {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

struct Shared {
    acd: Acd,
    config: AcdConfig,
    t0: Instant,
    clock_micros: AtomicU64,
    timers: Mutex<BinaryHeap<Due>>,
    timer_seq: AtomicU64,
    next_call: AtomicU64,
    /// Per agent: the call it holds (0 = none).
    engaged: Vec<AtomicU64>,
    call_fate: Vec<AtomicU8>,
    /// Per call: how many times it ended (abandoned, timed out, rejected, hung up).
    endings: Vec<AtomicU64>,
    skills: HashMap<AgentId, HashMap<String, u8>>,
    violations: Mutex<Vec<String>>,
    offers: AtomicU64,
    start: Barrier,
}

fn agent_index(agent: &AgentId) -> usize {
    agent
        .as_str()
        .trim_start_matches("agent")
        .parse()
        .expect("agent ids are agentN")
}

impl Shared {
    fn now(&self, rng: &mut XorShift) -> Instant {
        self.t0
            + Duration::from_micros(
                self.clock_micros
                    .fetch_add(rng.below(20_000), Ordering::SeqCst),
            )
    }

    fn violation(&self, what: String) {
        self.violations.lock().expect("test lock").push(what);
    }

    /// Applies one ACD answer; offers this thread now owns are appended to `mine`.
    fn absorb(&self, actions: Vec<Action>, mine: &mut Vec<(AgentId, CallId)>) {
        for action in actions {
            match action {
                Action::Offer { call, agent, .. } => {
                    self.offers.fetch_add(1, Ordering::Relaxed);
                    let slot = &self.engaged[agent_index(&agent)];
                    let fate = &self.call_fate[call.0 as usize];
                    // The call's fate first. An offer that crosses an abandon of the same
                    // call is released by that abandon: it must not hold the agent's slot,
                    // not even for a moment, because the abandon may hand the released agent
                    // its next call on another thread before this one could let go (which
                    // looked like a double offer, 2 to 6 runs in a hundred, when it was the
                    // model's own window).
                    if fate
                        .compare_exchange(FREE, OWNED_BY_OFFER, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        if let Err(held) =
                            slot.compare_exchange(0, call.0, Ordering::SeqCst, Ordering::SeqCst)
                        {
                            self.violation(format!(
                                "{agent} offered {call} while holding call#{held}"
                            ));
                        }
                        mine.push((agent, call));
                    }
                }
                Action::SetTimer { timer, at } => {
                    let seq = self.timer_seq.fetch_add(1, Ordering::SeqCst);
                    self.timers
                        .lock()
                        .expect("test lock")
                        .push(Due(std::cmp::Reverse((at, seq)), TimerBox(timer)));
                }
                Action::Event(AcdEvent::AgentStateChanged {
                    agent, from, to, ..
                }) if !from.kind().can_become(to.kind()) => {
                    self.violation(format!("{agent}: illegal {from:?} -> {to:?}"));
                }
                Action::Event(
                    AcdEvent::Abandoned { call, .. }
                    | AcdEvent::TimedOut { call, .. }
                    | AcdEvent::Rejected { call, .. }
                    | AcdEvent::CallEnded { call, .. },
                ) => {
                    self.endings[call.0 as usize].fetch_add(1, Ordering::SeqCst);
                }
                _ => {}
            }
        }
    }

    fn due_timers(&self, now: Instant) -> Vec<Timer> {
        let mut heap = self.timers.lock().expect("test lock");
        let mut due = Vec::new();
        while heap.peek().is_some_and(|top| top.0 .0 .0 <= now) {
            if let Some(top) = heap.pop() {
                due.push(top.1 .0);
            }
        }
        due
    }
}

fn worker(shared: &Shared, seed: u64) -> Vec<(AgentId, CallId)> {
    let mut rng = XorShift(seed);
    let mut offered: Vec<(AgentId, CallId)> = Vec::new();
    let mut connected: Vec<(AgentId, CallId)> = Vec::new();
    let mut my_calls: Vec<CallId> = Vec::new();
    let acd = &shared.acd;
    shared.start.wait();
    for _ in 0..STEPS_PER_THREAD {
        let now = shared.now(&mut rng);
        let mut mine = Vec::new();
        match rng.below(20) {
            0..=4 => {
                let id = shared.next_call.fetch_add(1, Ordering::SeqCst);
                if id as usize >= MAX_CALLS {
                    continue;
                }
                let request = CallRequest {
                    id: CallId(id),
                    queue: ["sales", "tech", "general"][rng.below(3) as usize].into(),
                    priority: rng.below(3) as i32,
                    preferred_agent: (rng.below(8) == 0)
                        .then(|| AgentId::new(format!("agent{}", rng.below(AGENTS as u64)))),
                    waiting_since: None,
                    preferred_wait: None,
                };
                match acd.enqueue(now, request) {
                    Ok(actions) => shared.absorb(actions, &mut mine),
                    Err(e) => shared.violation(format!("enqueue refused: {e}")),
                }
                my_calls.push(CallId(id));
            }
            5..=9 => {
                if let Some((agent, call)) = offered.pop() {
                    let slot = &shared.engaged[agent_index(&agent)];
                    if rng.below(4) == 0 {
                        // Release both before the call: the requeued call may be offered
                        // again (to another thread) before offer_failed even returns.
                        slot.store(0, Ordering::SeqCst);
                        let fate = &shared.call_fate[call.0 as usize];
                        fate.store(FREE, Ordering::SeqCst);
                        let why = [
                            OfferFailure::NoAnswer,
                            OfferFailure::Busy,
                            OfferFailure::Rejected,
                            OfferFailure::Unreachable,
                            OfferFailure::Incompatible,
                        ][rng.below(5) as usize];
                        match acd.offer_failed(now, call, why) {
                            Ok(actions) => shared.absorb(actions, &mut mine),
                            // An abandon got in first and released the agent itself.
                            Err(_) if fate.load(Ordering::SeqCst) == ABANDONING => {}
                            Err(e) => {
                                shared.violation(format!("offer_failed({call}) refused: {e}"))
                            }
                        }
                    } else {
                        match acd.answered(now, call) {
                            Ok(actions) => {
                                shared.absorb(actions, &mut mine);
                                connected.push((agent, call));
                            }
                            Err(e) => shared.violation(format!("answered({call}) refused: {e}")),
                        }
                    }
                }
            }
            10..=13 => {
                if let Some((agent, call)) = connected.pop() {
                    shared.engaged[agent_index(&agent)].store(0, Ordering::SeqCst);
                    match acd.hangup(now, call) {
                        Ok(actions) => shared.absorb(actions, &mut mine),
                        Err(e) => shared.violation(format!("hangup({call}) refused: {e}")),
                    }
                }
            }
            14 => {
                if !my_calls.is_empty() {
                    let call = my_calls.swap_remove(rng.below(my_calls.len() as u64) as usize);
                    let fate = &shared.call_fate[call.0 as usize];
                    if fate
                        .compare_exchange(FREE, ABANDONING, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        // Fails harmlessly when the call already left (timed out, rejected).
                        if let Ok(actions) = acd.abandon(now, call) {
                            shared.absorb(actions, &mut mine);
                        }
                    }
                }
            }
            15 | 16 => {
                let agent = AgentId::new(format!("agent{}", rng.below(AGENTS as u64)));
                let result = match rng.below(4) {
                    0 => acd.set_not_ready(now, &agent, common::REASONS[rng.below(2) as usize]),
                    1 => acd
                        .logout(now, &agent)
                        .or_else(|_| acd.login(now, &agent, true)),
                    _ => acd
                        .set_ready(now, &agent)
                        .or_else(|_| acd.login(now, &agent, true)),
                };
                if let Ok(actions) = result {
                    shared.absorb(actions, &mut mine);
                }
            }
            _ => {
                for timer in shared.due_timers(now) {
                    let actions = acd.handle_timer(now, timer);
                    shared.absorb(actions, &mut mine);
                }
            }
        }
        offered.extend(mine);
    }
    // Hand back what this thread still drives, so the main thread can finish it.
    offered.extend(
        connected
            .into_iter()
            .map(|(agent, call)| (agent, CallId(call.0 | 1 << 63))),
    );
    offered
}

fn check_no_ready_agent_next_to_servable_call(shared: &Shared) -> Vec<String> {
    let mut problems = Vec::new();
    let calls: Vec<_> = (1..MAX_CALLS as u64)
        .filter_map(|id| shared.acd.call(CallId(id)))
        .filter(|call| call.state == CallStateKind::Waiting)
        .collect();
    for agent in shared.acd.agents() {
        if agent.state.kind() != AgentStateKind::Ready {
            continue;
        }
        // A pair excluded after a failed offer may wait side by side until the retry timer.
        for call in calls
            .iter()
            .filter(|call| !call.excluded.contains(&agent.id))
        {
            if common::eligible(
                &shared.config,
                &shared.skills[&agent.id],
                call,
                agent.id.as_str(),
            ) {
                problems.push(format!("{} Ready while {:?} waits", agent.id, call));
            }
        }
    }
    problems
}

fn run(seed: u64) {
    let config = common::config(Some(Duration::from_secs(10)));
    let acd = Acd::new(config.clone()).expect("valid config");
    let t0 = Instant::now();
    let mut skills = HashMap::new();
    let mut rng = XorShift(seed | 1);
    for index in 0..AGENTS {
        let id = AgentId::new(format!("agent{index}"));
        let mut agent_skills: Vec<(Skill, u8)> = Vec::new();
        for name in common::SKILLS {
            if rng.below(3) != 0 {
                agent_skills.push((Skill::new(name), 1 + rng.below(10) as u8));
            }
        }
        skills.insert(
            id.clone(),
            agent_skills
                .iter()
                .map(|(s, l)| (s.to_string(), *l))
                .collect(),
        );
        acd.upsert_agent(t0, AgentConfig::new(id.clone(), "x", agent_skills))
            .expect("valid agent");
        acd.login(t0, &id, true).expect("login");
    }
    let shared = Arc::new(Shared {
        acd,
        config,
        t0,
        clock_micros: AtomicU64::new(1),
        timers: Mutex::new(BinaryHeap::new()),
        timer_seq: AtomicU64::new(0),
        next_call: AtomicU64::new(1),
        engaged: (0..AGENTS).map(|_| AtomicU64::new(0)).collect(),
        call_fate: (0..MAX_CALLS).map(|_| AtomicU8::new(FREE)).collect(),
        endings: (0..MAX_CALLS).map(|_| AtomicU64::new(0)).collect(),
        skills,
        violations: Mutex::new(Vec::new()),
        offers: AtomicU64::new(0),
        start: Barrier::new(THREADS),
    });
    let handles: Vec<_> = (0..THREADS as u64)
        .map(|thread| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                worker(
                    &shared,
                    seed.wrapping_mul(31).wrapping_add(thread * 7919 + 1),
                )
            })
        })
        .collect();
    let leftovers: Vec<(AgentId, CallId)> = handles
        .into_iter()
        .flat_map(|handle| handle.join().expect("worker panicked"))
        .collect();

    let violations = shared.violations.lock().expect("test lock").clone();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    let offers_during_race = shared.offers.load(Ordering::SeqCst);
    let ended_during_race: u64 = shared
        .endings
        .iter()
        .map(|e| e.load(Ordering::SeqCst))
        .sum();
    eprintln!("seed {seed:#x}: {offers_during_race} offers, {ended_during_race} calls ended during the race");
    assert!(
        offers_during_race > 1_000,
        "the race must exercise matching"
    );
    // Quiescent right after the race: a lost wake-up would show as a Ready agent idling
    // next to a call it may take.
    let idle = check_no_ready_agent_next_to_servable_call(&shared);
    assert!(idle.is_empty(), "lost wake-ups: {idle:#?}");

    // Finish every engaged call on this thread, then let every deadline pass.
    let mut now = shared.t0 + Duration::from_micros(shared.clock_micros.load(Ordering::SeqCst));
    let mut mine = Vec::new();
    for (agent, call) in leftovers {
        let connected = call.0 & (1 << 63) != 0;
        let call = CallId(call.0 & !(1 << 63));
        shared.engaged[agent_index(&agent)].store(0, Ordering::SeqCst);
        if !connected {
            let actions = shared
                .acd
                .answered(now, call)
                .expect("offered call can be answered");
            shared.absorb(actions, &mut mine);
        }
        let actions = shared
            .acd
            .hangup(now, call)
            .expect("connected call can hang up");
        shared.absorb(actions, &mut mine);
    }
    let mut pending = mine;
    for _ in 0..10_000 {
        for (agent, call) in std::mem::take(&mut pending) {
            shared.engaged[agent_index(&agent)].store(0, Ordering::SeqCst);
            let actions = shared.acd.answered(now, call).expect("answer");
            shared.absorb(actions, &mut pending);
            let actions = shared.acd.hangup(now, call).expect("hangup");
            shared.absorb(actions, &mut pending);
        }
        now += Duration::from_secs(30);
        for timer in shared.due_timers(now) {
            let actions = shared.acd.handle_timer(now, timer);
            shared.absorb(actions, &mut pending);
        }
        if pending.is_empty() && shared.timers.lock().expect("test lock").is_empty() {
            break;
        }
    }
    let violations = shared.violations.lock().expect("test lock").clone();
    assert!(violations.is_empty(), "violations: {violations:#?}");

    // Nothing lost, nothing duplicated, nothing left waiting.
    let issued = shared
        .next_call
        .load(Ordering::SeqCst)
        .min(MAX_CALLS as u64);
    for id in 1..issued {
        let endings = shared.endings[id as usize].load(Ordering::SeqCst);
        let present = shared.acd.call(CallId(id));
        assert!(endings <= 1, "call#{id} ended {endings} times");
        assert_eq!(
            endings == 1,
            present.is_none(),
            "call#{id}: ended {endings} times but present = {present:?}"
        );
        assert!(
            present.is_none(),
            "call#{id} still in the ACD after all deadlines: {present:?}"
        );
    }
    for queue in shared.acd.queues() {
        assert_eq!(queue.waiting, 0, "{} still counts waiting calls", queue.id);
        // The agent counters, changed by eight threads at once, still match a recount.
        let mut recount = AgentCounts::default();
        for agent in shared
            .acd
            .agents()
            .iter()
            .filter(|a| a.queues.contains(&queue.id))
        {
            let slot = match agent.state.kind() {
                AgentStateKind::LoggedOut => &mut recount.logged_out,
                AgentStateKind::Ready => &mut recount.ready,
                AgentStateKind::Reserved => &mut recount.reserved,
                AgentStateKind::OnCall => &mut recount.on_call,
                AgentStateKind::WrapUp => &mut recount.wrap_up,
                AgentStateKind::NotReady => &mut recount.not_ready,
            };
            *slot += 1;
            if agent.state.kind() != AgentStateKind::LoggedOut {
                recount.logged_in += 1;
            }
        }
        assert_eq!(queue.agents, recount, "agent counters of {}", queue.id);
    }
}

#[test]
fn eight_threads_keep_every_invariant() {
    for seed in [0x9e37_79b9_7f4a_7c15, 0xdead_beef_cafe_f00d, 12345] {
        run(seed);
    }
}
