//! Matching benchmark: 10,000 agents, 500 skills (one queue per skill), 5,000 waiting calls.
//!
//! Prints, before the criterion runs:
//! - memory per agent, measured with a counting global allocator (live bytes);
//! - decisions per second on one thread and on two. A decision is one matching operation:
//!   an agent becoming Ready (wrap-up end → best waiting call, or stays Ready) or a call
//!   arriving (→ best Ready agent, or waits). The answered/hangup bookkeeping of each cycle is
//!   timed separately and not counted as decisions;
//! - p50/p99/max time of one decision (one-thread run, each decision timed on its own);
//! - the same workload on a naive baseline (linear scan of all agents / all calls under one
//!   mutex) and the ratio.
//!
//! Keep it short on shared machines: `cargo bench -p switchboard-acd` takes about a minute.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use acd::{
    Acd, AcdConfig, Action, AgentConfig, AgentId, CallId, CallRequest, QueueConfig, Skill,
    SkillRequirement, Strategy, Timer,
};
use criterion::Criterion;

struct CountingAlloc;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Counting is switched on only while memory is measured: a shared counter bumped by every
/// allocation would otherwise make the threads of the timing runs contend on one cache line.
static COUNTING: AtomicBool = AtomicBool::new(false);

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: delegates every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const AGENTS: usize = 10_000;
const SKILLS: usize = 500;
const SKILLS_PER_AGENT: usize = 5;
const WAITING: usize = 5_000;

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn agent_skills(rng: &mut XorShift) -> Vec<(usize, u8)> {
    let mut skills: Vec<(usize, u8)> = Vec::new();
    while skills.len() < SKILLS_PER_AGENT {
        let skill = rng.below(SKILLS as u64) as usize;
        if skills.iter().all(|&(s, _)| s != skill) {
            skills.push((skill, 1 + rng.below(10) as u8));
        }
    }
    skills
}

/// A fake clock: the ACD never reads time, the bench hands it a steadily moving instant.
struct Clock {
    base: Instant,
    micros: u64,
}

impl Clock {
    fn tick(&mut self) -> Instant {
        self.micros += 500;
        self.base + Duration::from_micros(self.micros)
    }
}

/// The workload's view of who is busy with what.
struct Driver {
    next_call: u64,
    /// Agents talking, with their call, in the order they will hang up.
    talking: VecDeque<(AgentId, CallId)>,
    rng: XorShift,
    clock: Clock,
}

fn offers(actions: &[Action]) -> impl Iterator<Item = (AgentId, CallId)> + '_ {
    actions.iter().filter_map(|action| match action {
        Action::Offer { call, agent, .. } => Some((agent.clone(), *call)),
        _ => None,
    })
}

fn wrap_up_timer(actions: &[Action]) -> Option<Timer> {
    actions.iter().find_map(|action| match action {
        Action::SetTimer {
            timer: timer @ Timer::WrapUpEnd { .. },
            ..
        } => Some(timer.clone()),
        _ => None,
    })
}

fn build_acd() -> Acd {
    let queues = (0..SKILLS)
        .map(|skill| {
            let mut queue = QueueConfig::new(format!("q{skill}"));
            queue.required = vec![SkillRequirement::new(format!("s{skill}"), 1)];
            queue.strategy = [
                Strategy::LongestIdle,
                Strategy::MostSkilled,
                Strategy::RoundRobin,
                Strategy::FewestCalls,
            ][skill % 4];
            queue.wrap_up = Duration::from_secs(5);
            queue
        })
        .collect();
    Acd::new(AcdConfig {
        queues,
        not_ready_reasons: vec!["break".into()],
        missed_call_reason: None,
        ..AcdConfig::default()
    })
    .expect("valid bench config")
}

fn agent_id(index: usize) -> AgentId {
    AgentId::new(format!("a{index}"))
}

fn all_agent_skills(rng: &mut XorShift) -> Vec<Vec<(usize, u8)>> {
    (0..AGENTS).map(|_| agent_skills(rng)).collect()
}

fn add_agents(acd: &Acd, all_skills: &[Vec<(usize, u8)>], clock: &mut Clock) {
    for (index, skills) in all_skills.iter().enumerate() {
        let named = skills
            .iter()
            .map(|&(s, l)| (Skill::new(format!("s{s}")), l))
            .collect();
        acd.upsert_agent(
            clock.tick(),
            AgentConfig::new(agent_id(index), format!("Agent {index}"), named),
        )
        .expect("valid agent");
    }
}

/// Fills the centre: every agent Ready, then calls until 5,000 wait; offered calls answered.
fn fill(acd: &Acd, driver: &mut Driver) {
    for index in 0..AGENTS {
        let actions = acd
            .login(driver.clock.tick(), &agent_id(index), true)
            .expect("login");
        assert_eq!(offers(&actions).count(), 0);
    }
    let mut waiting = 0;
    while waiting < WAITING {
        let actions = enqueue(acd, driver);
        let offered: Vec<_> = offers(&actions).collect();
        if offered.is_empty() {
            waiting += 1;
        }
        for (agent, call) in offered {
            acd.answered(driver.clock.tick(), call).expect("answer");
            driver.talking.push_front((agent, call));
        }
    }
}

fn enqueue(acd: &Acd, driver: &mut Driver) -> Vec<Action> {
    driver.next_call += 1;
    let request = CallRequest {
        id: CallId(driver.next_call),
        queue: format!("q{}", driver.rng.below(SKILLS as u64)).into(),
        priority: driver.rng.below(3) as i32,
        preferred_agent: None,
        waiting_since: None,
        preferred_wait: None,
    };
    acd.enqueue(driver.clock.tick(), request).expect("enqueue")
}

/// One cycle: the next talking agent hangs up, its wrap-up ends (decision 1: agent side),
/// a new call arrives (decision 2: call side). Returns (decision time, bookkeeping time).
fn cycle(
    acd: &Acd,
    driver: &mut Driver,
    latencies: Option<&mut Vec<Duration>>,
) -> (Duration, Duration) {
    let Some((_agent, call)) = driver.talking.pop_back() else {
        let started = Instant::now();
        let actions = enqueue(acd, driver);
        let spent = started.elapsed();
        for (agent, call) in offers(&actions).collect::<Vec<_>>() {
            acd.answered(driver.clock.tick(), call).expect("answer");
            driver.talking.push_front((agent, call));
        }
        return (spent, Duration::ZERO);
    };
    let book = Instant::now();
    let hung = acd.hangup(driver.clock.tick(), call).expect("hangup");
    let timer = wrap_up_timer(&hung).expect("queues have wrap-up");
    let mut bookkeeping = book.elapsed();

    let first = Instant::now();
    let ready = acd.handle_timer(driver.clock.tick(), timer);
    let first_took = first.elapsed();
    let second = Instant::now();
    let arrived = enqueue(acd, driver);
    let second_took = second.elapsed();
    if let Some(latencies) = latencies {
        latencies.push(first_took);
        latencies.push(second_took);
    }

    let book = Instant::now();
    for (agent, call) in offers(&ready).chain(offers(&arrived)).collect::<Vec<_>>() {
        acd.answered(driver.clock.tick(), call).expect("answer");
        // New talkers go to the back so every agent takes turns.
        driver.talking.push_front((agent, call));
    }
    bookkeeping += book.elapsed();
    (first_took + second_took, bookkeeping)
}

/// This thread's time on a CPU and time spent runnable but waiting for one, from Linux's
/// `/proc/thread-self/schedstat` (nanoseconds). On a shared machine the second tells how
/// much of the wall-clock time the thread could not run at all, which wall-clock rates hide.
fn sched_times() -> Option<(Duration, Duration)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    let on_cpu = fields.next()??;
    let waiting = fields.next()??;
    Some((Duration::from_nanos(on_cpu), Duration::from_nanos(waiting)))
}

/// Time on a CPU and time waiting for one since `start` (zero when schedstat is unavailable).
fn sched_since(start: Option<(Duration, Duration)>) -> (Duration, Duration) {
    match (start, sched_times()) {
        (Some((cpu0, wait0)), Some((cpu1, wait1))) => {
            (cpu1.saturating_sub(cpu0), wait1.saturating_sub(wait0))
        }
        _ => (Duration::ZERO, Duration::ZERO),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn live() -> isize {
    LIVE_BYTES.load(Ordering::SeqCst)
}

fn new_driver(seed: u64, first_call: u64) -> Driver {
    Driver {
        next_call: first_call,
        talking: VecDeque::new(),
        rng: XorShift(seed),
        clock: Clock {
            base: Instant::now(),
            micros: 0,
        },
    }
}

// ---------- naive baseline: one mutex, linear scans ----------

struct NaiveAgent {
    skills: Vec<(usize, u8)>,
    ready: bool,
    idle_since: u64,
}

struct NaiveCall {
    id: u64,
    skill: usize,
    priority: i32,
    arrived: u64,
}

struct NaiveState {
    agents: Vec<NaiveAgent>,
    waiting: Vec<NaiveCall>,
    clock: u64,
}

struct NaiveAcd(Mutex<NaiveState>);

impl NaiveAcd {
    /// A call arrives: the longest-idle Ready agent with the skill, else it waits.
    fn call_arrives(&self, id: u64, skill: usize, priority: i32) -> Option<usize> {
        let mut state = self.0.lock().expect("bench lock");
        state.clock += 1;
        let best = state
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.ready && a.skills.iter().any(|&(s, _)| s == skill))
            .min_by_key(|(_, a)| a.idle_since)
            .map(|(index, _)| index);
        match best {
            Some(index) => {
                state.agents[index].ready = false;
                Some(index)
            }
            None => {
                let arrived = state.clock;
                state.waiting.push(NaiveCall {
                    id,
                    skill,
                    priority,
                    arrived,
                });
                None
            }
        }
    }

    /// An agent becomes Ready: the most urgent waiting call it can take, else it idles.
    fn agent_ready(&self, agent: usize) -> Option<u64> {
        let mut state = self.0.lock().expect("bench lock");
        state.clock += 1;
        let skills = state.agents[agent].skills.clone();
        let best = state
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, c)| skills.iter().any(|&(s, _)| s == c.skill))
            .min_by_key(|(_, c)| (-c.priority, c.arrived))
            .map(|(index, _)| index);
        match best {
            Some(index) => Some(state.waiting.swap_remove(index).id),
            None => {
                let now = state.clock;
                let entry = &mut state.agents[agent];
                entry.ready = true;
                entry.idle_since = now;
                None
            }
        }
    }
}

fn naive_run(skills: &[Vec<(usize, u8)>], decisions: usize) -> f64 {
    let naive = NaiveAcd(Mutex::new(NaiveState {
        agents: skills
            .iter()
            .map(|s| NaiveAgent {
                skills: s.clone(),
                ready: true,
                idle_since: 0,
            })
            .collect(),
        waiting: Vec::new(),
        clock: 0,
    }));
    let mut rng = XorShift(0x5eed);
    let mut talking: VecDeque<usize> = VecDeque::new();
    let mut next = 0u64;
    let mut waiting = 0;
    while waiting < WAITING {
        next += 1;
        match naive.call_arrives(next, rng.below(SKILLS as u64) as usize, rng.below(3) as i32) {
            Some(agent) => talking.push_front(agent),
            None => waiting += 1,
        }
    }
    let started = Instant::now();
    let mut done = 0;
    while done < decisions {
        if let Some(agent) = talking.pop_back() {
            if naive.agent_ready(agent).is_some() {
                talking.push_front(agent);
            }
            done += 1;
        }
        next += 1;
        if let Some(agent) =
            naive.call_arrives(next, rng.below(SKILLS as u64) as usize, rng.below(3) as i32)
        {
            talking.push_front(agent);
        }
        done += 1;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

// ---------- the printed figures ----------

fn figures() {
    println!(
        "== ACD matching figures ({AGENTS} agents, {SKILLS} skills, {WAITING} waiting calls) =="
    );

    // Memory per agent: live bytes the ACD holds, counted from here on. The bench's own
    // data (the skill lists, the driver) is allocated before counting starts.
    let skills = all_agent_skills(&mut XorShift(0x1234_5678));
    let mut driver = new_driver(0xabcd, 0);
    COUNTING.store(true, Ordering::SeqCst);
    let before_acd = live();
    let acd = build_acd();
    let with_queues = live();
    add_agents(&acd, &skills, &mut driver.clock);
    let registered = live();
    for index in 0..AGENTS {
        acd.login(driver.clock.tick(), &agent_id(index), true)
            .expect("login");
    }
    let all_ready = live();
    println!(
        "memory: queues {} KiB; per agent registered {} B, per agent Ready and indexed in its {} queues {} B",
        (with_queues - before_acd) / 1024,
        (registered - with_queues) / AGENTS as isize,
        SKILLS_PER_AGENT,
        (all_ready - with_queues) / AGENTS as isize
    );
    drop(acd);

    // One thread (counting stays on to report the steady-state heap, then goes off).
    let acd = build_acd();
    let mut driver = new_driver(0xabcd, 0);
    add_agents(&acd, &skills, &mut driver.clock);
    fill(&acd, &mut driver);
    let waiting_now: usize = acd.queues().iter().map(|q| q.waiting).sum();
    println!(
        "steady state: {} talking, {} waiting, live heap {} MiB",
        driver.talking.len(),
        waiting_now,
        live() / (1024 * 1024)
    );
    COUNTING.store(false, Ordering::SeqCst);
    let mut latencies = Vec::with_capacity(200_000);
    let (mut decide, mut book) = (Duration::ZERO, Duration::ZERO);
    let sched = sched_times();
    let wall = Instant::now();
    while latencies.len() < 200_000 {
        let (d, b) = cycle(&acd, &mut driver, Some(&mut latencies));
        decide += d;
        book += b;
    }
    let wall = wall.elapsed();
    let (one_cpu, one_queued) = sched_since(sched);
    let one_thread = latencies.len() as f64 / decide.as_secs_f64();
    latencies.sort_unstable();
    println!(
        "1 thread: {:.0} decisions/s (decision time only); {:.0} decisions/s counting the answered/hangup bookkeeping ({} decisions in {:.2} s wall)",
        one_thread,
        latencies.len() as f64 / (decide + book).as_secs_f64(),
        latencies.len(),
        wall.as_secs_f64()
    );
    println!(
        "one decision: p50 {:.2} us, p99 {:.2} us, p99.9 {:.2} us, max {:.2} us",
        percentile(&latencies, 0.50).as_secs_f64() * 1e6,
        percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        percentile(&latencies, 0.999).as_secs_f64() * 1e6,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );
    println!(
        "1 thread scheduling: {:.2} s on a CPU, {:.2} s runnable but waiting for one; {:.0} decisions per CPU-second",
        one_cpu.as_secs_f64(),
        one_queued.as_secs_f64(),
        latencies.len() as f64 / one_cpu.as_secs_f64().max(1e-9)
    );
    let waiting_after: usize = acd.queues().iter().map(|q| q.waiting).sum();
    println!("after the run: {waiting_after} waiting (stays near {WAITING})");

    // Two threads on the same ACD, each driving half the talking agents.
    let mut halves: [Driver; 2] = [new_driver(0x1111, 1 << 40), new_driver(0x2222, 2 << 40)];
    for (index, pair) in driver.talking.drain(..).enumerate() {
        halves[index % 2].talking.push_back(pair);
    }
    let per_thread = 100_000;
    let started = Instant::now();
    let results: Vec<(usize, Duration, (Duration, Duration))> = std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .iter_mut()
            .map(|half| {
                let acd = &acd;
                scope.spawn(move || {
                    let mut sink = Vec::with_capacity(per_thread + 2);
                    let mut deciding = Duration::ZERO;
                    let sched = sched_times();
                    while sink.len() < per_thread {
                        deciding += cycle(acd, half, Some(&mut sink)).0;
                    }
                    (sink.len(), deciding, sched_since(sched))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    let two_wall = started.elapsed();
    let total: usize = results.iter().map(|r| r.0).sum();
    let per_thread_rates: Vec<String> = results
        .iter()
        .map(|(n, t, _)| format!("{:.0}", *n as f64 / t.as_secs_f64()))
        .collect();
    let two_cpu: Duration = results.iter().map(|r| r.2 .0).sum();
    let two_queued: Duration = results.iter().map(|r| r.2 .1).sum();
    println!(
        "2 threads: {:.0} decisions/s wall-clock including bookkeeping ({} decisions in {:.2} s); decision time only, per thread: {} /s",
        total as f64 / two_wall.as_secs_f64(),
        total,
        two_wall.as_secs_f64(),
        per_thread_rates.join(" + ")
    );
    println!(
        "2 threads scheduling: {:.2} s on a CPU (of {:.2} s possible on 2 cores), {:.2} s runnable but waiting for one; {:.0} decisions per CPU-second (1 thread: {:.0}); wall-clock scaling vs 1 thread including bookkeeping: {:.2}x",
        two_cpu.as_secs_f64(),
        2.0 * two_wall.as_secs_f64(),
        two_queued.as_secs_f64(),
        total as f64 / two_cpu.as_secs_f64().max(1e-9),
        latencies.len() as f64 / one_cpu.as_secs_f64().max(1e-9),
        (total as f64 / two_wall.as_secs_f64()) / (latencies.len() as f64 / wall.as_secs_f64())
    );

    // Naive baseline.
    let naive = naive_run(&skills, 20_000);
    println!(
        "naive baseline (one mutex, linear scan): {:.0} decisions/s; lock-free ACD / naive = {:.1}x",
        naive,
        one_thread / naive
    );
}

fn main() {
    figures();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(20);
    let acd = build_acd();
    let skills = all_agent_skills(&mut XorShift(0x1234_5678));
    let mut driver = new_driver(0xabcd, 0);
    add_agents(&acd, &skills, &mut driver.clock);
    fill(&acd, &mut driver);
    criterion.bench_function(
        "cycle: hangup + wrap-up end (match) + new call (match) + answer",
        |b| b.iter(|| cycle(&acd, &mut driver, None)),
    );
    criterion.final_summary();
}
