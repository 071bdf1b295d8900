//! Scenario tests of the public API on one thread with a fake clock.

use std::time::{Duration, Instant};

use crate::config::{ExpansionStep, QueueConfig, SkillRequirement, Strategy};
use crate::ids::Skill;
use crate::*;

const SEC: Duration = Duration::from_secs(1);

struct Fixture {
    acd: Acd,
    t0: Instant,
}

fn queue(id: &str, skills: &[(&str, u8)]) -> QueueConfig {
    let mut queue = QueueConfig::new(id);
    queue.required = skills
        .iter()
        .map(|(s, l)| SkillRequirement::new(*s, *l))
        .collect();
    queue.priority_aging = None;
    queue
}

fn fixture(queues: Vec<QueueConfig>) -> Fixture {
    let config = AcdConfig {
        queues,
        not_ready_reasons: vec!["break".into(), "lunch".into(), "missed".into()],
        missed_call_reason: Some("missed".into()),
        ..AcdConfig::default()
    };
    Fixture {
        acd: Acd::new(config).expect("valid test config"),
        t0: Instant::now(),
    }
}

impl Fixture {
    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    fn agent(&self, secs: u64, id: &str, skills: &[(&str, u8)]) {
        let skills = skills.iter().map(|(s, l)| (Skill::new(s), *l)).collect();
        self.acd
            .upsert_agent(self.at(secs), AgentConfig::new(id, id, skills))
            .expect("valid agent");
    }

    fn ready_agent(&self, secs: u64, id: &str, skills: &[(&str, u8)]) -> Vec<Action> {
        self.agent(secs, id, skills);
        self.acd
            .login(self.at(secs), &id.into(), true)
            .expect("login")
    }

    fn call(&self, secs: u64, id: u64, queue: &str, priority: i32) -> Vec<Action> {
        self.acd
            .enqueue(
                self.at(secs),
                CallRequest {
                    id: CallId(id),
                    queue: queue.into(),
                    priority,
                    preferred_agent: None,
                    waiting_since: None,
                    preferred_wait: None,
                },
            )
            .expect("enqueue")
    }

    fn state(&self, agent: &str) -> AgentState {
        self.acd.agent(&agent.into()).expect("agent exists").state
    }
}

fn offers(actions: &[Action]) -> Vec<(u64, String)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Offer { call, agent, .. } => Some((call.0, agent.to_string())),
            _ => None,
        })
        .collect()
}

fn timers(actions: &[Action]) -> Vec<(Timer, Instant)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SetTimer { timer, at } => Some((timer.clone(), *at)),
            _ => None,
        })
        .collect()
}

fn offer(call: u64, agent: &str) -> Vec<(u64, String)> {
    vec![(call, agent.to_string())]
}

#[test]
fn acd_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Acd>();
}

#[test]
fn full_call_cycle_with_wrap_up() {
    let mut q = queue("sales", &[("sales", 1)]);
    q.wrap_up = 10 * SEC;
    let f = fixture(vec![q]);
    assert!(offers(&f.ready_agent(0, "ann", &[("sales", 5)])).is_empty());
    let actions = f.call(1, 1, "sales", 0);
    assert_eq!(offers(&actions), offer(1, "ann"));
    assert_eq!(f.state("ann"), AgentState::Reserved { call: CallId(1) });
    let answered = f.acd.answered(f.at(3), CallId(1)).expect("answer");
    assert!(answered.iter().any(|a| matches!(a,
        Action::Event(AcdEvent::Answered { wait, within_service_level: true, .. }) if *wait == 2 * SEC)));
    assert_eq!(f.state("ann"), AgentState::OnCall { call: CallId(1) });
    let hung = f.acd.hangup(f.at(63), CallId(1)).expect("hangup");
    let wrap = timers(&hung);
    assert_eq!(wrap.len(), 1);
    assert_eq!(wrap[0].1, f.at(73));
    assert_eq!(f.state("ann"), AgentState::WrapUp { until: f.at(73) });
    assert!(
        f.acd.call(CallId(1)).is_none(),
        "a finished call is forgotten"
    );
    f.acd.handle_timer(f.at(73), wrap[0].0.clone());
    assert_eq!(f.state("ann"), AgentState::Ready);
    // The same timer again is stale and harmless.
    assert!(f.acd.handle_timer(f.at(74), wrap[0].0.clone()).is_empty());
}

#[test]
fn ready_agent_takes_most_urgent_call_across_queues() {
    let f = fixture(vec![queue("a", &[("x", 1)]), queue("b", &[("y", 1)])]);
    f.call(0, 1, "a", 0);
    f.call(1, 2, "b", 5);
    f.call(2, 3, "b", 5);
    f.call(3, 4, "a", 9);
    f.agent(4, "ann", &[("x", 3), ("y", 3)]);
    let got = f.acd.login(f.at(4), &"ann".into(), true).expect("login");
    assert_eq!(offers(&got), offer(4, "ann"), "highest priority first");
    f.acd.answered(f.at(5), CallId(4)).expect("answer");
    let next = f.acd.hangup(f.at(6), CallId(4)).expect("hangup");
    assert_eq!(
        offers(&next),
        offer(2, "ann"),
        "then longest waiting of the next band"
    );
}

#[test]
fn aging_lets_an_old_low_priority_call_overtake() {
    let mut q = queue("a", &[]);
    q.priority_aging = Some(10 * SEC);
    let f = fixture(vec![q]);
    f.call(0, 1, "a", 0);
    f.call(25, 2, "a", 2); // worth 20 s of waiting: ranks as if it arrived at 5 s
    let got = f.ready_agent(30, "ann", &[]);
    assert_eq!(offers(&got), offer(1, "ann"));
}

#[test]
fn strategies_pick_the_right_agent() {
    // Longest idle.
    let f = fixture(vec![queue("q", &[("x", 1)])]);
    f.ready_agent(5, "late", &[("x", 9)]);
    f.ready_agent(1, "early", &[("x", 1)]);
    assert_eq!(offers(&f.call(10, 1, "q", 0)), offer(1, "early"));

    // Most skilled.
    let mut q = queue("q", &[("x", 1)]);
    q.strategy = Strategy::MostSkilled;
    let f = fixture(vec![q]);
    f.ready_agent(1, "novice", &[("x", 2)]);
    f.ready_agent(5, "expert", &[("x", 9)]);
    assert_eq!(offers(&f.call(10, 1, "q", 0)), offer(1, "expert"));

    // Fewest calls.
    let mut q = queue("q", &[]);
    q.strategy = Strategy::FewestCalls;
    let f = fixture(vec![q]);
    f.ready_agent(0, "busy", &[]);
    assert_eq!(offers(&f.call(1, 1, "q", 0)), offer(1, "busy"));
    f.acd.answered(f.at(2), CallId(1)).expect("answer");
    f.acd.hangup(f.at(3), CallId(1)).expect("hangup"); // busy is Ready again, idle since 3
    f.ready_agent(10, "fresh", &[]);
    assert_eq!(offers(&f.call(11, 2, "q", 0)), offer(2, "fresh"));
}

#[test]
fn round_robin_rotates() {
    let mut q = queue("q", &[]);
    q.strategy = Strategy::RoundRobin;
    let f = fixture(vec![q]);
    for name in ["a", "b", "c"] {
        f.ready_agent(0, name, &[]);
    }
    let mut order = Vec::new();
    for id in 1..=6 {
        let got = offers(&f.call(id, id, "q", 0));
        let (call, agent) = got.into_iter().next().expect("someone is ready");
        order.push(agent);
        f.acd.answered(f.at(id), CallId(call)).expect("answer");
        f.acd.hangup(f.at(id), CallId(call)).expect("hangup");
    }
    assert_eq!(order[0..3], order[3..6], "same rotation twice");
    let mut first = order[0..3].to_vec();
    first.sort();
    assert_eq!(first, ["a", "b", "c"], "everyone once per round");
}

#[test]
fn expansion_widens_the_pool_over_time() {
    let mut q = queue("q", &[("x", 8)]);
    q.expansion = vec![
        ExpansionStep {
            after: 30 * SEC,
            min_level: Some(5),
            add_skills: vec![],
        },
        ExpansionStep {
            after: 60 * SEC,
            min_level: None,
            add_skills: vec![SkillRequirement::new("billing", 1)],
        },
    ];
    let f = fixture(vec![q]);
    f.ready_agent(0, "junior", &[("x", 5)]);
    f.ready_agent(0, "biller", &[("billing", 3)]);
    let enq = f.call(1, 1, "q", 0);
    let expansion: Vec<_> = timers(&enq)
        .into_iter()
        .filter(|(t, _)| matches!(t, Timer::Expansion { .. }))
        .collect();
    assert_eq!(expansion.len(), 2);
    assert!(offers(&enq).is_empty(), "nobody qualifies at level 8");
    let widened = f.acd.handle_timer(expansion[0].1, expansion[0].0.clone());
    assert_eq!(offers(&widened), offer(1, "junior"));

    // A second call only the biller can take, after the second step.
    let enq = f.call(40, 2, "q", 0);
    let steps: Vec<_> = timers(&enq)
        .into_iter()
        .filter(|(t, _)| matches!(t, Timer::Expansion { .. }))
        .collect();
    assert!(offers(&f.acd.handle_timer(steps[0].1, steps[0].0.clone())).is_empty());
    assert_eq!(f.acd.call(CallId(2)).map(|c| c.stage), Some(1));
    let widened = f.acd.handle_timer(steps[1].1, steps[1].0.clone());
    assert_eq!(offers(&widened), offer(2, "biller"));
}

#[test]
fn preferred_agent_is_waited_for_up_to_the_cap() {
    let mut q = queue("q", &[]);
    q.preferred_agent_wait = 20 * SEC;
    let f = fixture(vec![q]);
    f.agent(0, "pat", &[]);
    f.ready_agent(0, "other", &[]);
    let enq = f
        .acd
        .enqueue(
            f.at(1),
            CallRequest {
                id: CallId(1),
                queue: "q".into(),
                priority: 0,
                preferred_agent: Some("pat".into()),
                waiting_since: None,
                preferred_wait: None,
            },
        )
        .expect("enqueue");
    assert!(
        offers(&enq).is_empty(),
        "other is Ready but the call waits for pat"
    );
    assert_eq!(
        f.acd.call(CallId(1)).and_then(|c| c.waiting_for),
        Some("pat".into())
    );
    let (cap, at) = timers(&enq)
        .into_iter()
        .find(|(t, _)| matches!(t, Timer::PreferredAgentCap { .. }))
        .expect("cap timer");
    assert_eq!(at, f.at(21));
    let after_cap = f.acd.handle_timer(at, cap);
    assert_eq!(offers(&after_cap), offer(1, "other"));

    // When the preferred agent becomes Ready in time, it gets the call.
    let enq = f
        .acd
        .enqueue(
            f.at(30),
            CallRequest {
                id: CallId(2),
                queue: "q".into(),
                priority: 0,
                preferred_agent: Some("pat".into()),
                waiting_since: None,
                preferred_wait: None,
            },
        )
        .expect("enqueue");
    assert!(offers(&enq).is_empty());
    let got = f.acd.login(f.at(35), &"pat".into(), true).expect("login");
    assert_eq!(offers(&got), offer(2, "pat"));
}

#[test]
fn ring_no_answer_sets_missed_and_requeues_at_head() {
    let f = fixture(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    assert_eq!(offers(&f.call(1, 1, "q", 3)), offer(1, "ann"));
    f.call(2, 2, "q", 3);
    f.call(3, 3, "q", 3);
    let failed = f
        .acd
        .offer_failed(f.at(20), CallId(1), OfferFailure::NoAnswer)
        .expect("failed");
    assert!(offers(&failed).is_empty(), "nobody else is ready");
    assert_eq!(
        f.state("ann"),
        AgentState::NotReady {
            reason: "missed".into()
        }
    );
    assert_eq!(
        f.acd.position(CallId(1)).map(|p| p.0),
        Some(1),
        "back at the head"
    );
    let got = f.ready_agent(21, "bob", &[]);
    assert_eq!(offers(&got), offer(1, "bob"));
    let offered_again = got
        .iter()
        .any(|a| matches!(a, Action::Event(AcdEvent::Offered { attempt: 2, .. })));
    assert!(offered_again);
}

#[test]
fn busy_offer_failure_leaves_agent_ready() {
    let f = fixture(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    f.ready_agent(1, "bob", &[]);
    assert_eq!(offers(&f.call(2, 1, "q", 0)), offer(1, "ann"));
    let failed = f
        .acd
        .offer_failed(f.at(3), CallId(1), OfferFailure::Busy)
        .expect("failed");
    assert_eq!(
        offers(&failed),
        offer(1, "bob"),
        "the call goes to another Ready agent first"
    );
    assert_eq!(f.state("ann"), AgentState::Ready);
}

#[test]
fn max_wait_overflows_then_times_out() {
    let mut a = queue("a", &[("x", 1)]);
    a.max_wait = Some(30 * SEC);
    a.overflow = Some("b".into());
    let mut b = queue("b", &[]);
    b.max_wait = Some(60 * SEC);
    let f = fixture(vec![a, b]);
    let enq = f.call(0, 1, "a", 0);
    let (max_wait, at) = timers(&enq).into_iter().next().expect("max wait timer");
    assert_eq!(at, f.at(30));
    let moved = f.acd.handle_timer(at, max_wait);
    assert!(moved
        .iter()
        .any(|a| matches!(a, Action::Overflow { to, .. } if to.as_str() == "b")));
    assert_eq!(f.acd.call(CallId(1)).map(|c| c.queue), Some("b".into()));
    let (next, at2) = timers(&moved).into_iter().next().expect("max wait in b");
    assert_eq!(at2, f.at(90));
    let out = f.acd.handle_timer(at2, next);
    assert!(out.iter().any(|a| matches!(
        a,
        Action::Timeout {
            call: CallId(1),
            ..
        }
    )));
    assert!(f.acd.call(CallId(1)).is_none());
    assert_eq!(f.acd.queue(&"b".into()).map(|q| q.waiting), Some(0));
}

#[test]
fn full_queue_overflows_or_rejects() {
    let mut a = queue("a", &[]);
    a.max_length = Some(1);
    a.overflow = Some("b".into());
    let mut b = queue("b", &[]);
    b.max_length = Some(1);
    let f = fixture(vec![a, b]);
    f.call(0, 1, "a", 0);
    let second = f.call(0, 2, "a", 0);
    assert!(second.iter().any(|a| matches!(a, Action::Overflow { .. })));
    let third = f.call(0, 3, "a", 0);
    assert!(third.iter().any(|a| matches!(
        a,
        Action::Rejected {
            call: CallId(3),
            ..
        }
    )));
    assert!(f.acd.call(CallId(3)).is_none());
}

#[test]
fn not_ready_and_logout_wait_for_the_call_to_end() {
    let mut q = queue("q", &[]);
    q.wrap_up = 5 * SEC;
    let f = fixture(vec![q]);
    f.ready_agent(0, "ann", &[]);
    f.call(1, 1, "q", 0);
    f.acd.answered(f.at(2), CallId(1)).expect("answer");
    assert!(f
        .acd
        .set_not_ready(f.at(3), &"ann".into(), "lunch")
        .expect("deferred")
        .is_empty());
    assert_eq!(f.state("ann"), AgentState::OnCall { call: CallId(1) });
    let hung = f.acd.hangup(f.at(4), CallId(1)).expect("hangup");
    let (wrap, at) = timers(&hung).into_iter().next().expect("wrap-up timer");
    f.call(5, 2, "q", 0);
    let end = f.acd.handle_timer(at, wrap);
    assert!(offers(&end).is_empty(), "lunch wins over the waiting call");
    assert_eq!(
        f.state("ann"),
        AgentState::NotReady {
            reason: "lunch".into()
        }
    );
    // Logout deferred while ringing, applied when the caller gives up.
    let got = f.acd.set_ready(f.at(20), &"ann".into()).expect("ready");
    assert_eq!(offers(&got), offer(2, "ann"));
    f.acd.logout(f.at(21), &"ann".into()).expect("deferred");
    f.acd.abandon(f.at(22), CallId(2)).expect("abandon");
    assert_eq!(f.state("ann"), AgentState::LoggedOut);
}

#[test]
fn illegal_requests_are_refused_without_change() {
    let f = fixture(vec![queue("q", &[])]);
    f.agent(0, "ann", &[]);
    let ann: AgentId = "ann".into();
    assert!(matches!(
        f.acd.set_ready(f.at(1), &ann),
        Err(AcdError::IllegalTransition {
            from: AgentStateKind::LoggedOut,
            to: AgentStateKind::Ready,
            ..
        })
    ));
    assert!(matches!(
        f.acd.set_not_ready(f.at(1), &ann, "nap"),
        Err(AcdError::UnknownReason(_))
    ));
    f.acd.login(f.at(1), &ann, false).expect("login");
    assert_eq!(
        f.state("ann"),
        AgentState::NotReady {
            reason: "login".into()
        }
    );
    assert!(matches!(
        f.acd.login(f.at(2), &ann, true),
        Err(AcdError::IllegalTransition { .. })
    ));
    assert!(matches!(
        f.acd.set_ready(f.at(2), &"nobody".into()),
        Err(AcdError::UnknownAgent(_))
    ));
    assert!(matches!(
        f.acd.answered(f.at(2), CallId(5)),
        Err(AcdError::UnknownCall(_))
    ));
    f.call(3, 5, "q", 0);
    assert!(matches!(
        f.acd.answered(f.at(3), CallId(5)),
        Err(AcdError::IllegalCallState { .. })
    ));
    assert!(matches!(
        f.acd.hangup(f.at(3), CallId(5)),
        Err(AcdError::IllegalCallState { .. })
    ));
    assert!(matches!(
        f.acd.enqueue(
            f.at(3),
            CallRequest {
                id: CallId(5),
                queue: "q".into(),
                priority: 0,
                preferred_agent: None,
                waiting_since: None,
                preferred_wait: None,
            }
        ),
        Err(AcdError::DuplicateCall(_))
    ));
    assert!(matches!(
        f.acd.enqueue(
            f.at(3),
            CallRequest {
                id: CallId(6),
                queue: "nope".into(),
                priority: 0,
                preferred_agent: None,
                waiting_since: None,
                preferred_wait: None,
            }
        ),
        Err(AcdError::UnknownQueue(_))
    ));
    assert_eq!(f.acd.queue(&"q".into()).map(|q| q.waiting), Some(1));
}

#[test]
fn abandon_while_offered_frees_the_agent_for_the_next_call() {
    let f = fixture(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    f.call(1, 1, "q", 0);
    f.call(2, 2, "q", 0);
    let left = f.acd.abandon(f.at(3), CallId(1)).expect("abandon");
    assert!(left.iter().any(|a| matches!(
        a,
        Action::Event(AcdEvent::Abandoned {
            while_offered: true,
            ..
        })
    )));
    assert_eq!(offers(&left), offer(2, "ann"));
    // Waiting abandon.
    f.call(4, 3, "q", 0);
    let gone = f.acd.abandon(f.at(5), CallId(3)).expect("abandon");
    assert!(gone.iter().any(|a| matches!(
        a,
        Action::Event(AcdEvent::Abandoned {
            while_offered: false,
            ..
        })
    )));
    assert!(matches!(
        f.acd.abandon(f.at(5), CallId(3)),
        Err(AcdError::UnknownCall(_))
    ));
}

#[test]
fn position_and_estimated_wait() {
    let mut q = queue("q", &[]);
    q.initial_handle_time = 60 * SEC;
    let f = fixture(vec![q]);
    f.agent(0, "ann", &[]);
    f.agent(0, "bob", &[]);
    f.acd.login(f.at(0), &"ann".into(), false).expect("login");
    f.acd.login(f.at(0), &"bob".into(), false).expect("login");
    f.call(1, 1, "q", 0);
    f.call(2, 2, "q", 0);
    f.call(3, 3, "q", 1);
    assert_eq!(f.acd.position(CallId(3)), Some((1, 30 * SEC)));
    assert_eq!(f.acd.position(CallId(1)), Some((2, 60 * SEC)));
    assert_eq!(f.acd.position(CallId(2)), Some((3, 90 * SEC)));
    let snapshot = f.acd.queue(&"q".into()).expect("queue");
    assert_eq!(snapshot.waiting, 3);
    assert_eq!(snapshot.oldest_waiting_since, Some(f.at(1)));
    assert_eq!(snapshot.agents.not_ready, 2);
}

#[test]
fn new_skill_on_a_ready_agent_reaches_waiting_calls() {
    let f = fixture(vec![queue("fr", &[("french", 5)])]);
    f.ready_agent(0, "ann", &[("english", 9)]);
    f.call(1, 1, "fr", 0);
    let skills = vec![(Skill::new("english"), 9), (Skill::new("french"), 6)];
    let got = f
        .acd
        .upsert_agent(f.at(2), AgentConfig::new("ann", "Ann", skills))
        .expect("upsert");
    assert_eq!(offers(&got), offer(1, "ann"));
}

#[test]
fn busy_agent_cannot_be_removed_idle_one_can() {
    let f = fixture(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    f.call(1, 1, "q", 0);
    assert!(matches!(
        f.acd.remove_agent(f.at(2), &"ann".into()),
        Err(AcdError::AgentBusy(_))
    ));
    f.ready_agent(0, "bob", &[]);
    let removed = f.acd.remove_agent(f.at(3), &"bob".into()).expect("remove");
    assert!(removed.iter().any(|a| matches!(
        a,
        Action::Event(AcdEvent::AgentStateChanged {
            to: AgentState::LoggedOut,
            ..
        })
    )));
    assert!(f.acd.agent(&"bob".into()).is_none());
    assert!(
        offers(&f.call(4, 2, "q", 0)).is_empty(),
        "a removed agent is never offered a call"
    );
}

#[test]
fn max_wait_while_ringing_ends_the_stay_if_the_offer_fails() {
    let mut q = queue("q", &[]);
    q.max_wait = Some(10 * SEC);
    let f = fixture(vec![q]);
    f.ready_agent(0, "ann", &[]);
    let enq = f.call(1, 1, "q", 0);
    let (max_wait, at) = timers(&enq).into_iter().next().expect("timer");
    assert!(
        f.acd.handle_timer(at, max_wait).is_empty(),
        "ringing calls are not cut off"
    );
    let failed = f
        .acd
        .offer_failed(f.at(12), CallId(1), OfferFailure::Rejected)
        .expect("failed");
    assert!(failed.iter().any(|a| matches!(
        a,
        Action::Timeout {
            call: CallId(1),
            ..
        }
    )));
    assert!(
        offers(&failed).is_empty(),
        "a timed-out call is not offered again"
    );
    assert_eq!(f.state("ann"), AgentState::Ready);
}

/// The ACD's answer to an OfferRetry timer set in `actions`, if any.
fn retry_timers(actions: &[Action]) -> Vec<(Timer, Instant)> {
    timers(actions)
        .into_iter()
        .filter(|(timer, _)| matches!(timer, Timer::OfferRetry { .. }))
        .collect()
}

fn fixture_without_missed_reason(queues: Vec<QueueConfig>) -> Fixture {
    let config = AcdConfig {
        queues,
        not_ready_reasons: vec!["break".into()],
        missed_call_reason: None,
        offer_retry_after: 5 * SEC,
    };
    Fixture {
        acd: Acd::new(config).expect("valid test config"),
        t0: Instant::now(),
    }
}

#[test]
fn failed_offer_is_not_repeated_to_the_same_agent_before_the_retry_time() {
    for why in [
        OfferFailure::NoAnswer,
        OfferFailure::Busy,
        OfferFailure::Rejected,
        OfferFailure::Unreachable,
    ] {
        // No missed-call reason: the agent is back to Ready at once, which is what made the
        // same call bounce to the same phone in a loop (issue 10).
        let f = fixture_without_missed_reason(vec![queue("q", &[])]);
        f.ready_agent(0, "ann", &[]);
        assert_eq!(offers(&f.call(1, 1, "q", 0)), offer(1, "ann"));
        let failed = f.acd.offer_failed(f.at(2), CallId(1), why).expect("failed");
        assert!(offers(&failed).is_empty(), "{why:?}: re-offered at once");
        assert_eq!(f.state("ann"), AgentState::Ready, "{why:?}");
        let snapshot = f.acd.call(CallId(1)).expect("still queued");
        assert_eq!(snapshot.state, CallStateKind::Waiting);
        assert_eq!(snapshot.excluded, vec![AgentId::new("ann")]);
        let retry = retry_timers(&failed);
        assert_eq!(retry.len(), 1, "{why:?}: one retry timer");
        let (timer, at) = retry[0].clone();
        assert_eq!(at, f.at(7), "{why:?}: offer_retry_after from the failure");
        assert!(
            matches!(&timer, Timer::OfferRetry { call: CallId(1), agent, .. } if agent.as_str() == "ann"),
            "{why:?}: {timer:?}"
        );
        // Going Ready again on her own does not bring the call back early.
        f.acd
            .set_not_ready(f.at(3), &"ann".into(), "break")
            .expect("break");
        let again = f.acd.set_ready(f.at(4), &"ann".into()).expect("ready");
        assert!(offers(&again).is_empty(), "{why:?}: re-offered early");
        // The timer lifts the exclusion and offers the still-waiting call at once.
        let lifted = f.acd.handle_timer(at, timer);
        assert_eq!(offers(&lifted), offer(1, "ann"), "{why:?}");
        assert!(f.acd.call(CallId(1)).expect("offered").excluded.is_empty());
    }
}

#[test]
fn incompatible_device_never_gets_the_call_again_during_its_stay() {
    let f = fixture(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    assert_eq!(offers(&f.call(1, 1, "q", 0)), offer(1, "ann"));
    let failed = f
        .acd
        .offer_failed(f.at(2), CallId(1), OfferFailure::Incompatible)
        .expect("failed");
    assert!(offers(&failed).is_empty());
    assert!(
        retry_timers(&failed).is_empty(),
        "no retry: the device will never fit this call"
    );
    // The phone is not away: no missed-call reason even though one is configured.
    assert_eq!(f.state("ann"), AgentState::Ready);
    assert!(failed.iter().any(|a| matches!(
        a,
        Action::Event(AcdEvent::Requeued {
            why: OfferFailure::Incompatible,
            ..
        })
    )));
    let again = f.acd.set_ready(f.at(100), &"ann".into()).expect("ready");
    assert!(offers(&again).is_empty());
    f.acd
        .set_not_ready(f.at(200), &"ann".into(), "break")
        .expect("break");
    assert!(offers(&f.acd.set_ready(f.at(300), &"ann".into()).expect("ready")).is_empty());
    // Other calls still reach her, skipping the one she cannot take even though it is older.
    assert_eq!(offers(&f.call(301, 2, "q", 0)), offer(2, "ann"));
    // Someone else takes the excluded call as soon as they are Ready.
    assert_eq!(offers(&f.ready_agent(302, "bob", &[])), offer(1, "bob"));
}

#[test]
fn another_ready_agent_gets_a_failed_call_at_once_even_when_the_failed_one_ranks_first() {
    for why in [OfferFailure::Busy, OfferFailure::Incompatible] {
        let mut q = queue("q", &[("x", 1)]);
        q.strategy = Strategy::MostSkilled;
        let f = fixture(vec![q]);
        f.ready_agent(0, "ann", &[("x", 9)]);
        f.ready_agent(0, "bob", &[("x", 2)]);
        assert_eq!(offers(&f.call(1, 1, "q", 0)), offer(1, "ann"));
        // Ann is Ready again and still the most skilled: the search must skip her, not stop.
        let failed = f.acd.offer_failed(f.at(2), CallId(1), why).expect("failed");
        assert_eq!(offers(&failed), offer(1, "bob"), "{why:?}");
        assert_eq!(f.state("ann"), AgentState::Ready);
    }
}

#[test]
fn a_stale_retry_timer_is_harmless() {
    let f = fixture_without_missed_reason(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    f.call(1, 1, "q", 0);
    let failed = f
        .acd
        .offer_failed(f.at(2), CallId(1), OfferFailure::Busy)
        .expect("failed");
    let (first, at) = retry_timers(&failed).remove(0);
    assert_eq!(
        offers(&f.acd.handle_timer(at, first.clone())),
        offer(1, "ann")
    );
    // She refuses again: a new exclusion, which the first timer delivered twice must not lift.
    let failed = f
        .acd
        .offer_failed(f.at(8), CallId(1), OfferFailure::Rejected)
        .expect("failed");
    let (second, second_at) = retry_timers(&failed).remove(0);
    assert_ne!(first, second);
    assert!(f.acd.handle_timer(f.at(9), first.clone()).is_empty());
    assert_eq!(
        f.acd.call(CallId(1)).expect("waiting").excluded,
        vec![AgentId::new("ann")]
    );
    assert_eq!(
        offers(&f.acd.handle_timer(second_at, second.clone())),
        offer(1, "ann")
    );
    // The call is answered and ends: both timers are now stale.
    f.acd.answered(f.at(14), CallId(1)).expect("answer");
    assert!(f.acd.handle_timer(f.at(15), second.clone()).is_empty());
    f.acd.hangup(f.at(16), CallId(1)).expect("hangup");
    assert!(f.acd.handle_timer(f.at(17), second).is_empty());
    assert!(f.acd.handle_timer(f.at(17), first).is_empty());
    assert_eq!(f.state("ann"), AgentState::Ready);
}

#[test]
fn retry_timer_of_an_abandoned_call_does_nothing() {
    let f = fixture_without_missed_reason(vec![queue("q", &[])]);
    f.ready_agent(0, "ann", &[]);
    f.call(1, 1, "q", 0);
    let failed = f
        .acd
        .offer_failed(f.at(2), CallId(1), OfferFailure::NoAnswer)
        .expect("failed");
    let (timer, at) = retry_timers(&failed).remove(0);
    f.acd.abandon(f.at(3), CallId(1)).expect("abandon");
    // A new call reusing the id is another stay: the old exclusion's timer does not touch it.
    f.acd
        .set_not_ready(f.at(4), &"ann".into(), "break")
        .expect("break");
    f.call(5, 1, "q", 0);
    assert!(f.acd.handle_timer(at, timer).is_empty());
    assert_eq!(
        offers(&f.acd.set_ready(f.at(8), &"ann".into()).expect("ready")),
        offer(1, "ann")
    );
}

#[test]
fn overflow_starts_a_fresh_stay_without_exclusions() {
    let mut a = queue("a", &[]);
    a.max_wait = Some(30 * SEC);
    a.overflow = Some("b".into());
    let f = fixture(vec![a, queue("b", &[])]);
    f.ready_agent(0, "ann", &[]);
    let enq = f.call(1, 1, "a", 0);
    let (max_wait, at) = timers(&enq).remove(0);
    f.acd
        .offer_failed(f.at(2), CallId(1), OfferFailure::Incompatible)
        .expect("failed");
    let moved = f.acd.handle_timer(at, max_wait);
    assert!(moved.iter().any(|a| matches!(a, Action::Overflow { .. })));
    assert_eq!(
        offers(&moved),
        offer(1, "ann"),
        "queue b has its own stay: ann may try again there"
    );
}

#[test]
fn queue_agent_counts_cover_the_base_stage_and_follow_every_transition() {
    let mut tech = queue("tech", &[("tech", 5)]);
    tech.expansion = vec![ExpansionStep {
        after: 30 * SEC,
        min_level: None,
        add_skills: vec![SkillRequirement::new("french", 1)],
    }];
    let f = fixture(vec![tech]);
    f.ready_agent(0, "ann", &[("tech", 6)]);
    // Bob qualifies only after the expansion step: not someone who can take a new call.
    f.ready_agent(0, "bob", &[("french", 3)]);
    f.agent(0, "carl", &[("tech", 9)]);
    let counts = |f: &Fixture| {
        f.acd
            .queue_agent_counts(&"tech".into())
            .expect("known queue")
    };
    let base = counts(&f);
    assert_eq!(
        (base.logged_in, base.ready, base.logged_out),
        (1, 1, 1),
        "{base:?}"
    );
    let every_stage = f.acd.queue(&"tech".into()).expect("queue").agents;
    assert_eq!((every_stage.logged_in, every_stage.ready), (2, 2));
    assert_eq!(f.acd.queue_agent_counts(&"nope".into()), None);
    assert_eq!(offers(&f.call(1, 1, "tech", 0)), offer(1, "ann"));
    assert_eq!((counts(&f).ready, counts(&f).reserved), (0, 1));
    f.acd.answered(f.at(2), CallId(1)).expect("answer");
    assert_eq!(counts(&f).on_call, 1);
    f.acd
        .set_not_ready(f.at(3), &"ann".into(), "break")
        .expect("pending");
    f.acd.hangup(f.at(4), CallId(1)).expect("hangup");
    let after = counts(&f);
    assert_eq!((after.on_call, after.not_ready, after.logged_in), (0, 1, 1));
    f.acd.logout(f.at(5), &"ann".into()).expect("logout");
    assert_eq!(counts(&f).logged_in, 0);
    // Learning the skill moves Bob into the base stage, state and all.
    f.agent(6, "bob", &[("tech", 5)]);
    let moved = counts(&f);
    assert_eq!((moved.logged_in, moved.ready, moved.logged_out), (1, 1, 2));
    f.acd.remove_agent(f.at(7), &"carl".into()).expect("remove");
    assert_eq!(counts(&f).logged_out, 1);
}

#[test]
fn a_call_that_keeps_its_waiting_time_goes_ahead_of_later_callers() {
    let f = fixture(vec![queue("q", &[("s", 1)])]);
    f.call(10, 1, "q", 0);
    f.call(20, 2, "q", 0);
    // A transferred call arriving at t=30 that has been waiting since t=5.
    f.acd
        .enqueue(
            f.at(30),
            CallRequest {
                id: CallId(3),
                queue: "q".into(),
                priority: 0,
                preferred_agent: None,
                waiting_since: Some(f.at(5)),
                preferred_wait: None,
            },
        )
        .expect("enqueue");
    assert_eq!(f.acd.position(CallId(3)).map(|p| p.0), Some(1));
    assert_eq!(f.acd.position(CallId(1)).map(|p| p.0), Some(2));
    // A waiting_since in the future counts as now.
    f.acd
        .enqueue(
            f.at(40),
            CallRequest {
                id: CallId(4),
                queue: "q".into(),
                priority: 0,
                preferred_agent: None,
                waiting_since: Some(f.at(100)),
                preferred_wait: None,
            },
        )
        .expect("enqueue");
    assert_eq!(f.acd.position(CallId(4)).map(|p| p.0), Some(4));
}

#[test]
fn a_transfer_waits_for_its_agent_whatever_the_queue_says() {
    let mut q = queue("q", &[]);
    q.preferred_agent_wait = Duration::ZERO;
    let f = fixture(vec![q]);
    f.agent(0, "pat", &[]);
    f.ready_agent(0, "other", &[]);
    let enq = f
        .acd
        .enqueue(
            f.at(1),
            CallRequest {
                id: CallId(1),
                queue: "q".into(),
                priority: 0,
                preferred_agent: Some("pat".into()),
                waiting_since: None,
                preferred_wait: Some(10 * SEC),
            },
        )
        .expect("enqueue");
    assert!(offers(&enq).is_empty(), "the call waits for pat");
    let (cap, at) = timers(&enq)
        .into_iter()
        .find(|(t, _)| matches!(t, Timer::PreferredAgentCap { .. }))
        .expect("cap timer");
    assert_eq!(at, f.at(11));
    assert_eq!(offers(&f.acd.handle_timer(at, cap)), offer(1, "other"));
}

#[test]
fn an_agent_on_a_call_out_is_not_offered_calls_until_ready_again() {
    let f = fixture(vec![queue("support", &[("support", 1)])]);
    f.ready_agent(0, "a", &[("support", 1)]);
    // The reason is built in: no configuration lists it.
    f.acd
        .set_not_ready(f.at(1), &"a".into(), OUTBOUND_REASON)
        .expect("outbound-call is always a valid reason");
    assert_eq!(
        f.state("a"),
        AgentState::NotReady {
            reason: OUTBOUND_REASON.into()
        }
    );
    assert!(offers(&f.call(2, 1, "support", 0)).is_empty());
    // The call out ends: the agent is Ready and takes the waiting call.
    let actions = f.acd.set_ready(f.at(3), &"a".into()).expect("ready");
    assert_eq!(offers(&actions), offer(1, "a"));
}

#[test]
fn a_connected_call_handed_to_a_consulted_colleague_wraps_up_each_agent_in_turn() {
    let mut q = queue("sales", &[("sales", 1)]);
    q.wrap_up = 10 * SEC;
    let f = fixture(vec![q]);
    f.ready_agent(0, "ann", &[("sales", 5)]);
    f.ready_agent(0, "bob", &[("sales", 1)]);
    assert_eq!(offers(&f.call(1, 1, "sales", 0)), offer(1, "ann"));
    f.acd.answered(f.at(2), CallId(1)).expect("answer");
    let bob = AgentId::from("bob");
    // Bob is consulted (Not ready for it), talks with the caller, and the transfer completes.
    f.acd
        .set_not_ready(f.at(30), &bob, crate::config::CONSULT_REASON)
        .expect("consult");
    let answered_before = f.acd.agent(&bob).expect("bob").calls_answered;
    let handed = f
        .acd
        .hand_over(f.at(60), CallId(1), &bob)
        .expect("hand over");
    assert!(handed.iter().any(|a| matches!(a,
        Action::Event(AcdEvent::HandedOver { from, to, .. }) if from.as_str() == "ann" && to.as_str() == "bob")));
    assert_eq!(f.state("ann"), AgentState::WrapUp { until: f.at(70) });
    assert_eq!(f.state("bob"), AgentState::OnCall { call: CallId(1) });
    assert_eq!(
        f.acd.agent(&bob).expect("bob").calls_answered,
        answered_before + 1
    );
    // The call's hang-up is now Bob's: he goes to wrap-up.
    let hung = f.acd.hangup(f.at(90), CallId(1)).expect("hangup");
    assert!(hung.iter().any(|a| matches!(a,
        Action::Event(AcdEvent::CallEnded { agent, .. }) if agent.as_str() == "bob")));
    assert_eq!(f.state("bob"), AgentState::WrapUp { until: f.at(100) });
    assert!(f.acd.call(CallId(1)).is_none());
}

#[test]
fn a_hand_over_to_an_agent_who_is_not_free_for_it_changes_nothing() {
    let f = fixture(vec![queue("sales", &[("sales", 1)])]);
    f.ready_agent(0, "ann", &[("sales", 5)]);
    f.ready_agent(0, "bob", &[("sales", 1)]);
    f.call(1, 1, "sales", 0);
    let (ann, bob) = (AgentId::from("ann"), AgentId::from("bob"));
    // Not connected yet.
    assert!(matches!(
        f.acd.hand_over(f.at(2), CallId(1), &bob),
        Err(AcdError::IllegalTransition { .. } | AcdError::IllegalCallState { .. })
    ));
    f.acd.answered(f.at(2), CallId(1)).expect("answer");
    // Bob is Ready (a match could claim him meanwhile), Ann has the call herself, nobody
    // named "zed" exists.
    assert!(matches!(
        f.acd.hand_over(f.at(3), CallId(1), &bob),
        Err(AcdError::IllegalTransition { .. })
    ));
    f.acd
        .set_not_ready(f.at(3), &ann, "break")
        .expect("pending not ready");
    assert!(f.acd.hand_over(f.at(4), CallId(1), &ann).is_err());
    assert!(matches!(
        f.acd.hand_over(f.at(4), CallId(1), &AgentId::from("zed")),
        Err(AcdError::UnknownAgent(_))
    ));
    assert_eq!(f.state("ann"), AgentState::OnCall { call: CallId(1) });
    assert_eq!(f.state("bob"), AgentState::Ready);
}

#[test]
fn best_ready_agent_follows_the_strategy_and_claims_nobody() {
    let mut skilled = queue("skilled", &[("x", 1)]);
    skilled.strategy = Strategy::MostSkilled;
    let f = fixture(vec![
        queue("idle", &[("x", 1)]),
        skilled,
        queue("y", &[("y", 1)]),
    ]);
    assert_eq!(f.acd.best_ready_agent(&"idle".into()), None, "nobody Ready");
    f.ready_agent(5, "late", &[("x", 9)]);
    f.ready_agent(1, "early", &[("x", 2)]);
    f.ready_agent(2, "other", &[("y", 5)]);
    assert_eq!(f.acd.best_ready_agent(&"idle".into()), Some("early".into()));
    assert_eq!(
        f.acd.best_ready_agent(&"skilled".into()),
        Some("late".into())
    );
    assert_eq!(f.acd.best_ready_agent(&"y".into()), Some("other".into()));
    assert_eq!(
        f.acd.best_ready_agent(&"nope".into()),
        None,
        "unknown queue"
    );
    // Asking claims nobody: the agent is still Ready and a call still reaches it.
    assert_eq!(f.state("early"), AgentState::Ready);
    assert_eq!(offers(&f.call(10, 1, "idle", 0)), offer(1, "early"));
    // Reserved now: the next best is named.
    assert_eq!(f.acd.best_ready_agent(&"idle".into()), Some("late".into()));
    f.acd
        .set_not_ready(f.at(11), &"late".into(), "break")
        .expect("not ready");
    assert_eq!(f.acd.best_ready_agent(&"idle".into()), None);
}

#[test]
fn an_agents_state_in_a_queue_is_read_only_where_the_agent_serves_it() {
    let f = fixture(vec![
        queue("sales", &[("sales", 1)]),
        queue("support", &[("support", 1)]),
    ]);
    f.ready_agent(0, "alice", &[("sales", 5)]);
    let offered = f.call(1, 7, "sales", 0);
    assert_eq!(offers(&offered), vec![(7, "alice".to_string())]);
    assert_eq!(
        f.acd.agent_state_in_queue(&"alice".into(), &"sales".into()),
        Some(AgentState::Reserved { call: CallId(7) })
    );
    // Not a queue she serves, an agent or a queue that does not exist: nothing to wait for.
    assert_eq!(
        f.acd
            .agent_state_in_queue(&"alice".into(), &"support".into()),
        None
    );
    assert_eq!(
        f.acd.agent_state_in_queue(&"bob".into(), &"sales".into()),
        None
    );
    assert_eq!(
        f.acd
            .agent_state_in_queue(&"alice".into(), &"nowhere".into()),
        None
    );
}
