//! From replications to the figures an analyst reads: per interval and queue, offered,
//! answered, abandoned, service level, ASA, abandon rate and occupancy with 95 % confidence
//! intervals, and Erlang C / Erlang A for the same inputs alongside.
//!
//! The per-run figures are computed by the CDR report's own [`Figures`] from the same facts a
//! CDR would give, so "service level" means exactly what `switchboard report` means by it
//! (answered within the threshold over offered minus short abandons).

use cdr::report::{CallFacts, Figures, Interval};

use super::engine::{Model, RunResult};
use super::erlang_a::{self, Prediction, QueueLoad};
use super::replication::Scenario;
use super::statistics::Estimate;

/// The simulated period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Unix seconds of simulated offset 0 (arrival and shift times count from here).
    pub origin_unix: i64,
    /// Start of the rows, Unix seconds.
    pub from_unix: i64,
    /// End, Unix seconds (exclusive).
    pub to_unix: i64,
    /// Row length.
    pub interval: Interval,
}

/// The figures of one row, each a mean over runs with its interval.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowFigures {
    /// Calls offered.
    pub offered: Option<Estimate>,
    /// Calls answered.
    pub answered: Option<Estimate>,
    /// Calls abandoned (≥ 5 s).
    pub abandoned: Option<Estimate>,
    /// Service level (fraction).
    pub service_level: Option<Estimate>,
    /// Average speed of answer (seconds).
    pub asa_s: Option<Estimate>,
    /// Abandon rate (fraction).
    pub abandon_rate: Option<Estimate>,
    /// Agents' occupancy: busy / (busy + ready idle); on the all-queues rows only.
    pub occupancy: Option<Estimate>,
    /// Average agents logged in and able to serve the queue (pauses excluded).
    pub agents: Option<f64>,
    /// Erlang C for this interval's expected calls, AHT and agents.
    pub erlang_c: Option<Prediction>,
    /// Erlang A (with the queue's patience).
    pub erlang_a: Option<Prediction>,
}

/// One row: an interval and a queue (or all queues).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Interval start, Unix seconds.
    pub start_unix: i64,
    /// Interval end.
    pub end_unix: i64,
    /// Queue name or `all queues`.
    pub group: String,
    /// The figures.
    pub figures: RowFigures,
}

/// A simulated scenario's results.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Scenario name.
    pub name: String,
    /// Replications run.
    pub runs: usize,
    /// Per interval, per queue then all queues.
    pub rows: Vec<Row>,
    /// The whole period, per queue then all queues.
    pub overall: Vec<Row>,
}

/// The name of the row that adds up every queue.
pub const ALL_QUEUES: &str = "all queues";

/// Summarises `results` of `scenario` over `period`.
pub fn summarise(scenario: &Scenario, period: Period, results: &[RunResult]) -> Summary {
    let model = &scenario.model;
    let mut intervals = Vec::new();
    let mut start = period.interval.start_of(period.from_unix);
    while start < period.to_unix {
        let end = period.interval.end_of(start);
        intervals.push((start.max(period.from_unix), end.min(period.to_unix)));
        start = end;
    }
    let whole = [(period.from_unix, period.to_unix)];
    let queue_count = model.acd.queues.len();
    let build = |spans: &[(i64, i64)]| -> Vec<Row> {
        let mut rows = Vec::new();
        for &(from, to) in spans {
            for group in (0..queue_count).map(Some).chain([None]) {
                rows.push(row(scenario, period, results, from, to, group));
            }
        }
        rows
    };
    let mut overall = build(&whole);
    // The formulas assume a steady state; over a whole day of changing volume and staffing
    // their average would mislead, so they are shown per interval only.
    for row in &mut overall {
        row.figures.erlang_c = None;
        row.figures.erlang_a = None;
    }
    Summary {
        name: scenario.name.clone(),
        runs: results.len(),
        rows: build(&intervals),
        overall,
    }
}

fn row(
    scenario: &Scenario,
    period: Period,
    results: &[RunResult],
    from: i64,
    to: i64,
    group: Option<usize>,
) -> Row {
    let model = &scenario.model;
    let mut per_run: Vec<Figures> = Vec::with_capacity(results.len());
    let mut occupancy = Vec::new();
    let from_us = offset_us(period, from);
    let to_us = offset_us(period, to);
    for result in results {
        let mut figures = Figures::default();
        for call in &result.calls {
            if group.is_some_and(|q| q != call.queue) {
                continue;
            }
            let at = period.origin_unix + (call.arrived_us / 1_000_000) as i64;
            if at < from || at >= to {
                continue;
            }
            let queue = &model.acd.queues[call.queue];
            let answered = call.disposition == cdr::Disposition::Answered;
            figures.add(&CallFacts {
                at_unix_s: at,
                queue: Some(queue.id.as_str()),
                agent: None,
                disposition: call.disposition.classify(call.wait_s),
                wait_s: call.wait_s,
                handle_s: if answered {
                    call.talk_s + queue.wrap_up.as_secs_f64()
                } else {
                    0.0
                },
                threshold_s: queue.service_level.as_secs_f64(),
                transferred: false,
                survey_score: None,
            });
        }
        per_run.push(figures);
        if group.is_none() {
            let (mut busy, mut idle) = (0u64, 0u64);
            for segment in &result.segments {
                let overlap = segment
                    .end_us
                    .min(to_us)
                    .saturating_sub(segment.start_us.max(from_us));
                if segment.busy {
                    busy += overlap;
                } else {
                    idle += overlap;
                }
            }
            if busy + idle > 0 {
                occupancy.push(busy as f64 / (busy + idle) as f64);
            }
        }
    }
    let estimate = |value: &dyn Fn(&Figures) -> Option<f64>| -> Option<Estimate> {
        let values: Vec<f64> = per_run.iter().filter_map(value).collect();
        Estimate::of(&values)
    };
    let mut figures = RowFigures {
        offered: estimate(&|f| Some(f.offered as f64)),
        answered: estimate(&|f| Some(f.answered as f64)),
        abandoned: estimate(&|f| Some(f.abandoned as f64)),
        service_level: estimate(&|f| f.service_level()),
        asa_s: estimate(&|f| f.asa_s()),
        abandon_rate: estimate(&|f| f.abandon_rate()),
        occupancy: Estimate::of(&occupancy),
        ..RowFigures::default()
    };
    if let Some(queue) = group {
        let seconds = (to - from) as f64;
        let agents = staffed_agents(model, queue, from_us, to_us);
        let calls = scenario.arrivals.expected_calls(
            queue,
            (from - period.origin_unix) as f64,
            (to - period.origin_unix) as f64,
        );
        let config = &model.acd.queues[queue];
        let load = QueueLoad {
            arrivals_per_s: calls / seconds.max(1.0),
            handle_s: model.queue_handle_s[queue]
                + model.ring.mean().min(model.ring_timeout_s)
                + config.wrap_up.as_secs_f64(),
            agents: agents.round() as u32,
            threshold_s: config.service_level.as_secs_f64(),
            patience_rate: model.queue_patience_rate[queue],
        };
        figures.agents = Some(agents);
        if calls > 0.0 {
            figures.erlang_c = erlang_a::erlang_c(load);
            figures.erlang_a = erlang_a::erlang_a(load);
        }
    }
    Row {
        start_unix: from,
        end_unix: to,
        group: match group {
            Some(queue) => model.acd.queues[queue].id.to_string(),
            None => ALL_QUEUES.to_owned(),
        },
        figures,
    }
}

fn offset_us(period: Period, unix: i64) -> u64 {
    u64::try_from(unix - period.origin_unix).unwrap_or(0) * 1_000_000
}

/// Average number of agents logged in, not paused and holding every skill `queue` requires
/// (at its level) over `[from_us, to_us)`. Agents able to serve several queues count in each:
/// the Erlang formulas know one queue only.
pub fn staffed_agents(model: &Model, queue: usize, from_us: u64, to_us: u64) -> f64 {
    if to_us <= from_us {
        return 0.0;
    }
    let required = &model.acd.queues[queue].required;
    let qualifies = |skills: &[(acd::Skill, u8)]| {
        required.iter().all(|need| {
            skills
                .iter()
                .any(|(skill, level)| *skill == need.skill && *level >= need.min_level)
        })
    };
    let overlap = |start: u64, end: u64| end.min(to_us).saturating_sub(start.max(from_us));
    let mut total = 0u64;
    let mut able = vec![false; model.workforce.agents.len()];
    for shift in &model.workforce.shifts {
        if qualifies(&shift.skills) {
            total += overlap(shift.start_us, shift.end_us);
            able[shift.agent] = true;
        }
    }
    for pause in &model.workforce.pauses {
        if able[pause.agent] {
            total = total.saturating_sub(overlap(pause.start_us, pause.end_us));
        }
    }
    total as f64 / (to_us - from_us) as f64
}
