//! Validation against theory: one queue, Poisson arrivals, exponential handle time, no
//! abandonment, no ring time or wrap-up is M/M/N, so the simulated service level and ASA
//! must match Erlang C.
//!
//! Tolerance: service level within ±0.03 and ASA within ±12 % of Erlang C, averaged over
//! 8 runs of 4 simulated hours (about 15,000 calls). The run-to-run spread of ASA at this
//! load is about 10 %, so the mean of 8 runs lies within ±12 % with a wide margin; the 95 %
//! confidence interval is also checked to contain the theoretical value (widened by the same
//! tolerance, because the first minutes start with idle agents, a bias the formula has not).

use std::time::Duration;

use acd::{AcdConfig, AgentConfig, QueueConfig, Skill, SkillRequirement};

use super::arrivals::{ArrivalModel, CallProfile, RateWindow};
use super::distribution::Distribution;
use super::engine::{Model, Shift, Workforce, PAUSE_REASON};
use super::erlang_a;
use super::replication::{replicate, Scenario};
use super::summary::{summarise, Period};

const HOUR: u64 = 3_600_000_000;

fn mmn(agents: usize, calls_per_hour: f64, aht_s: f64, patience: Distribution) -> Scenario {
    let mut queue = QueueConfig::new("support");
    queue.required = vec![SkillRequirement::new("support", 1)];
    let acd = AcdConfig {
        queues: vec![queue],
        not_ready_reasons: vec![PAUSE_REASON.to_owned()],
        missed_call_reason: None,
        offer_retry_after: acd::DEFAULT_OFFER_RETRY_AFTER,
    };
    let agent_configs: Vec<AgentConfig> = (0..agents)
        .map(|i| AgentConfig::new(format!("a{i}").as_str(), "agent", Vec::new()))
        .collect();
    let shifts = (0..agents)
        .map(|agent| Shift {
            agent,
            start_us: 0,
            end_us: 5 * HOUR,
            skills: vec![(Skill::from("support"), 5)],
        })
        .collect();
    let patience_rate = patience.rate();
    Scenario {
        name: "m/m/n".into(),
        model: Model {
            acd,
            workforce: Workforce {
                agents: agent_configs,
                shifts,
                pauses: Vec::new(),
            },
            profiles: vec![CallProfile {
                handle: Distribution::Exponential(aht_s),
                patience,
            }],
            ring: Distribution::Fixed(0.0),
            ring_timeout_s: 30.0,
            queue_handle_s: vec![aht_s],
            queue_patience_rate: vec![patience_rate],
        },
        arrivals: ArrivalModel::Poisson(vec![RateWindow {
            queue: 0,
            start_s: 0.0,
            end_s: 4.0 * 3600.0,
            calls: 4.0 * calls_per_hour,
            priority: 0,
            profile: 0,
        }]),
    }
}

#[test]
fn single_queue_without_abandonment_matches_erlang_c() {
    // 8 Erlangs (480 calls an hour of 60 s) on 10 agents: C = 0.409, SL(20 s) = 0.790,
    // ASA = 12.3 s.
    let scenario = mmn(10, 480.0, 60.0, Distribution::Never);
    let results = replicate(&scenario, 8, 42, &mut |_, _| {}).expect("runs");
    let period = Period {
        origin_unix: 0,
        from_unix: 0,
        to_unix: 4 * 3600,
        interval: cdr::report::Interval::Day,
    };
    let summary = summarise(&scenario, period, &results);
    // One interval covers the whole run (a day, cut at 4 h): the formulas are on its row.
    let row = &summary.rows[0];
    assert_eq!(row.group, "support");
    let theory = row.figures.erlang_c.expect("stable queue");
    assert!((theory.service_level - 0.790).abs() < 0.005, "{theory:?}");
    let sl = row.figures.service_level.expect("calls answered");
    let asa = row.figures.asa_s.expect("calls answered");
    assert!(
        (sl.mean - theory.service_level).abs() <= 0.03,
        "simulated SL {sl:?} vs Erlang C {}",
        theory.service_level
    );
    assert!(
        (asa.mean - theory.asa_s).abs() <= 0.12 * theory.asa_s,
        "simulated ASA {asa:?} vs Erlang C {}",
        theory.asa_s
    );
    let half = asa.half_width.expect("8 runs");
    assert!((asa.mean - theory.asa_s).abs() <= half + 0.12 * theory.asa_s);
    // Every call was answered: no abandonment configured.
    let offered = row.figures.offered.expect("offered").mean;
    let answered = row.figures.answered.expect("answered").mean;
    assert!((offered - 1920.0).abs() < 60.0, "{offered}");
    assert_eq!(offered, answered);
}

/// With exponential patience the model is M/M/N+M: the simulated abandon rate and service
/// level follow Erlang A (same tolerances), even in overload where Erlang C has no answer.
#[test]
fn single_queue_with_exponential_patience_matches_erlang_a() {
    // 10 Erlangs on 9 agents, mean patience 60 s.
    let scenario = mmn(9, 600.0, 60.0, Distribution::Exponential(60.0));
    let results = replicate(&scenario, 6, 7, &mut |_, _| {}).expect("runs");
    let period = Period {
        origin_unix: 0,
        from_unix: 0,
        to_unix: 4 * 3600,
        interval: cdr::report::Interval::Day,
    };
    let summary = summarise(&scenario, period, &results);
    let figures = &summary.rows[0].figures;
    assert_eq!(figures.erlang_c, None, "overloaded: Erlang C is undefined");
    let theory = figures.erlang_a.expect("Erlang A is defined in overload");
    // The simulation's rates leave short abandons (< 5 s) out of the base, the formula does
    // not; compare counts over all offered calls instead.
    let offered = figures.offered.expect("offered").mean;
    let answered = figures.answered.expect("answered").mean;
    let abandon_all = 1.0 - answered / offered;
    assert!(
        (abandon_all - theory.abandon_rate).abs() <= 0.03,
        "simulated {abandon_all} vs Erlang A {}",
        theory.abandon_rate
    );
    let load = erlang_a::QueueLoad {
        arrivals_per_s: 600.0 / 3600.0,
        handle_s: 60.0,
        agents: 9,
        threshold_s: 20.0,
        patience_rate: 1.0 / 60.0,
    };
    assert_eq!(erlang_a::erlang_a(load), Some(theory));
}

#[test]
fn a_seed_gives_the_same_figures_and_another_seed_different_ones() {
    let scenario = mmn(3, 100.0, 60.0, Distribution::Exponential(90.0));
    let period = Period {
        origin_unix: 0,
        from_unix: 0,
        to_unix: 3600,
        interval: cdr::report::Interval::Hour,
    };
    let run = |seed| {
        let mut scenario = scenario.clone();
        if let ArrivalModel::Poisson(windows) = &mut scenario.arrivals {
            windows[0].end_s = 3600.0;
            windows[0].calls = 100.0;
        }
        let results = replicate(&scenario, 3, seed, &mut |_, _| {}).expect("runs");
        summarise(&scenario, period, &results)
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

#[test]
fn wrap_up_and_ring_time_keep_agents_busy() {
    let mut scenario = mmn(10, 480.0, 60.0, Distribution::Never);
    let results = replicate(&scenario, 2, 1, &mut |_, _| {}).expect("runs");
    let period = Period {
        origin_unix: 0,
        from_unix: 0,
        to_unix: 4 * 3600,
        interval: cdr::report::Interval::Day,
    };
    let plain = summarise(&scenario, period, &results);
    scenario.model.acd.queues[0].wrap_up = Duration::from_secs(15);
    scenario.model.ring = Distribution::Fixed(3.0);
    let results = replicate(&scenario, 2, 1, &mut |_, _| {}).expect("runs");
    let busy = summarise(&scenario, period, &results);
    let occupancy =
        |s: &super::summary::Summary| s.overall[1].figures.occupancy.expect("agents worked").mean;
    // 8 Erlangs of talk on 10 agents: about 80 % occupied; 78 s instead of 60 s per call
    // pushes it towards saturation, and the service level falls.
    assert!(
        (occupancy(&plain) - 0.8).abs() < 0.05,
        "{}",
        occupancy(&plain)
    );
    assert!(occupancy(&busy) > occupancy(&plain) + 0.1);
    let sl = |s: &super::summary::Summary| s.overall[0].figures.service_level.expect("sl").mean;
    assert!(sl(&busy) < sl(&plain) - 0.2, "{} {}", sl(&busy), sl(&plain));
}
