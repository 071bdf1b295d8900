//! Building a [`Scenario`] from a configuration and the demand and staffing inputs, so the
//! same demand can be played against another configuration (`--compare`) or another headcount
//! (`--vary agents=queue:-3..+3`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use acd::AgentConfig;
use time::OffsetDateTime;

use super::arrivals::{self, ArrivalModel, CallProfile, RateWindow};
use super::distribution::Distribution;
use super::engine::{Model, Shift, Workforce, PAUSE_REASON};
use super::history::{self, History};
use super::input_error::InputError;
use super::replication::Scenario;
use super::staffing;
use crate::config::Config;

/// Calls to simulate, in terms of queue *names* so they can meet any configuration.
#[derive(Debug, Clone)]
pub struct Demand {
    /// Queue names the model's queue indices refer to.
    pub queues: Vec<String>,
    /// Arrivals (queue fields index `queues`).
    pub arrivals: ArrivalModel,
    /// Handle time and patience per profile.
    pub profiles: Vec<CallProfile>,
    /// Ring time before an agent answers.
    pub ring: Distribution,
    /// Where the demand came from, for error messages.
    pub source: PathBuf,
}

/// Where staffing comes from.
#[derive(Debug, Clone)]
pub enum StaffingSource {
    /// A staffing file and its text.
    File(PathBuf, String),
    /// The CDRs' agent-state records.
    AgentStates(Vec<cdr::AgentStateRecord>),
    /// Every configured agent, the whole period.
    Everyone,
}

/// Demand from an arrivals file, in the queue space of `config`.
pub fn demand_from_spec(
    config: &Config,
    path: &Path,
    text: &str,
    ring: Distribution,
) -> Result<Demand, InputError> {
    let names: Vec<String> = config.queues.iter().map(|q| q.name.clone()).collect();
    let spec = arrivals::read_spec(path, text, &|name| names.iter().position(|q| q == name))?;
    Ok(Demand {
        queues: names,
        arrivals: ArrivalModel::Poisson(spec.windows),
        profiles: spec.profiles,
        ring,
        source: path.to_path_buf(),
    })
}

/// Demand from a CDR period: the calls replayed as they came (`poisson_interval_s: None`) or
/// resampled as a Poisson process with each interval's count as its mean.
pub fn demand_from_history(
    config: &Config,
    dir: &Path,
    history: &History,
    from: OffsetDateTime,
    poisson_interval_s: Option<f64>,
) -> Result<Demand, InputError> {
    let names: Vec<String> = config.queues.iter().map(|q| q.name.clone()).collect();
    let calls = history::arrivals(config, history, from);
    let profiles =
        history::profiles(config, history).map_err(|message| InputError::file(dir, message))?;
    let arrivals = match poisson_interval_s {
        None => ArrivalModel::Replay(calls),
        Some(length) => {
            let mut counts: HashMap<(u64, usize, i32), f64> = HashMap::new();
            for call in &calls {
                let slot = (call.at_us as f64 / 1e6 / length).floor() as u64;
                *counts.entry((slot, call.queue, call.priority)).or_default() += 1.0;
            }
            let mut windows: Vec<RateWindow> = counts
                .into_iter()
                .map(|((slot, queue, priority), calls)| RateWindow {
                    queue,
                    start_s: slot as f64 * length,
                    end_s: (slot + 1) as f64 * length,
                    calls,
                    priority,
                    profile: queue,
                })
                .collect();
            windows.sort_by(|a, b| {
                a.start_s
                    .total_cmp(&b.start_s)
                    .then(a.queue.cmp(&b.queue))
                    .then(a.priority.cmp(&b.priority))
            });
            ArrivalModel::Poisson(windows)
        }
    };
    Ok(Demand {
        queues: names,
        arrivals,
        profiles,
        ring: history::ring_time(history),
        source: dir.to_path_buf(),
    })
}

/// The scenario of `demand` and `staffing` under `config`. Fails when the configuration
/// lacks a queue the demand uses, or its ACD settings are refused.
pub fn build(
    name: &str,
    config: &Config,
    config_path: &Path,
    demand: &Demand,
    staffing_source: &StaffingSource,
    period: (OffsetDateTime, OffsetDateTime),
) -> Result<(Scenario, Vec<String>), InputError> {
    // Map the demand's queues onto this configuration's, by name.
    let mut map = Vec::with_capacity(demand.queues.len());
    for queue in &demand.queues {
        let index = config.queues.iter().position(|q| &q.name == queue);
        map.push(index);
    }
    let used = |queue: usize| match &demand.arrivals {
        ArrivalModel::Replay(calls) => calls.iter().any(|c| c.queue == queue),
        ArrivalModel::Poisson(windows) => windows.iter().any(|w| w.queue == queue),
    };
    for (queue, target) in map.iter().enumerate() {
        if target.is_none() && used(queue) {
            return Err(InputError::file(
                config_path,
                format!(
                    "has no queue {:?}, which the calls of {} use",
                    demand.queues[queue],
                    demand.source.display()
                ),
            ));
        }
    }
    let remap = |queue: usize| map[queue].unwrap_or(0);
    let arrivals = match &demand.arrivals {
        ArrivalModel::Replay(calls) => ArrivalModel::Replay(
            calls
                .iter()
                .map(|c| arrivals::Arrival {
                    queue: remap(c.queue),
                    ..c.clone()
                })
                .collect(),
        ),
        ArrivalModel::Poisson(windows) => ArrivalModel::Poisson(
            windows
                .iter()
                .map(|w| RateWindow {
                    queue: remap(w.queue),
                    ..w.clone()
                })
                .collect(),
        ),
    };
    let mut acd = crate::acd_config::acd_config(config);
    if !acd.not_ready_reasons.iter().any(|r| r == PAUSE_REASON) {
        acd.not_ready_reasons.push(PAUSE_REASON.to_owned());
    }
    acd::Acd::new(acd.clone())
        .map_err(|e| InputError::file(config_path, format!("the ACD refuses it: {e}")))?;
    let mut warnings = Vec::new();
    let workforce = match staffing_source {
        StaffingSource::File(path, text) => staffing::read_file(config, path, text)?,
        StaffingSource::AgentStates(records) => {
            let (workforce, notes) =
                staffing::from_agent_states(config, records, period.0, period.1);
            warnings.extend(notes);
            if workforce.shifts.is_empty() {
                warnings.push(
                    "no agent logged in during the period according to the CDRs: \
                     simulating every configured agent for the whole period"
                        .to_owned(),
                );
                staffing::everyone(config)
            } else {
                workforce
            }
        }
        StaffingSource::Everyone => staffing::everyone(config),
    };
    let queue_count = config.queues.len();
    let (queue_handle_s, queue_patience_rate) =
        erlang_inputs(&arrivals, &demand.profiles, queue_count);
    let model = Model {
        acd,
        workforce,
        profiles: demand.profiles.clone(),
        ring: demand.ring.clone(),
        ring_timeout_s: config.sip.ring_timeout.as_secs_f64(),
        queue_handle_s,
        queue_patience_rate,
    };
    Ok((
        Scenario {
            name: name.to_owned(),
            model,
            arrivals,
        },
        warnings,
    ))
}

/// Mean talk time and patience rate per queue, weighted by how many calls use each profile.
fn erlang_inputs(
    arrivals: &ArrivalModel,
    profiles: &[CallProfile],
    queues: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut weights = vec![vec![0.0f64; profiles.len()]; queues];
    match arrivals {
        ArrivalModel::Replay(calls) => {
            for call in calls {
                weights[call.queue][call.profile] += 1.0;
            }
        }
        ArrivalModel::Poisson(windows) => {
            for window in windows {
                weights[window.queue][window.profile] += window.calls;
            }
        }
    }
    let mean = |queue: usize, value: &dyn Fn(&CallProfile) -> f64| {
        let total: f64 = weights[queue].iter().sum();
        if total == 0.0 {
            return 0.0;
        }
        weights[queue]
            .iter()
            .zip(profiles)
            .map(|(w, p)| w * value(p))
            .sum::<f64>()
            / total
    };
    (
        (0..queues).map(|q| mean(q, &|p| p.handle.mean())).collect(),
        (0..queues)
            .map(|q| mean(q, &|p| p.patience.rate()))
            .collect(),
    )
}

/// The scenario with `delta` agents more (cloning the first agent able to serve `queue`,
/// shifts and pauses included) or fewer (removing the last ones able to, with all their
/// shifts) than `base`.
pub fn vary_agents(base: &Scenario, queue: &str, delta: i32) -> Result<Scenario, InputError> {
    let model = &base.model;
    let index = model
        .acd
        .queues
        .iter()
        .position(|q| q.id.as_str() == queue)
        .ok_or_else(|| InputError::option(format!("--vary: unknown queue {queue:?}")))?;
    let required = &model.acd.queues[index].required;
    let able = |shift: &Shift| {
        required.iter().all(|need| {
            shift
                .skills
                .iter()
                .any(|(s, l)| *s == need.skill && *l >= need.min_level)
        })
    };
    let mut serving: Vec<usize> = Vec::new();
    for shift in &model.workforce.shifts {
        if able(shift) && !serving.contains(&shift.agent) {
            serving.push(shift.agent);
        }
    }
    let mut scenario = base.clone();
    scenario.name = format!("{queue}{delta:+}");
    let workforce: &mut Workforce = &mut scenario.model.workforce;
    if delta < 0 {
        let remove = delta.unsigned_abs() as usize;
        if remove > serving.len() {
            return Err(InputError::option(format!(
                "--vary: only {} agents serve {queue}, cannot remove {remove}",
                serving.len()
            )));
        }
        let gone: Vec<usize> = serving[serving.len() - remove..].to_vec();
        workforce.shifts.retain(|s| !gone.contains(&s.agent));
        workforce.pauses.retain(|p| !gone.contains(&p.agent));
    } else if delta > 0 {
        let Some(&model_agent) = serving.first() else {
            return Err(InputError::option(format!(
                "--vary: no agent serves {queue}, none to copy"
            )));
        };
        for n in 1..=delta {
            let template = &workforce.agents[model_agent];
            let clone = AgentConfig {
                id: acd::AgentId::new(format!("sim-{queue}-{n}")),
                name: format!("added agent {n} for {queue}"),
                ..template.clone()
            };
            workforce.agents.push(clone);
            let new_index = workforce.agents.len() - 1;
            let shifts: Vec<Shift> = workforce
                .shifts
                .iter()
                .filter(|s| s.agent == model_agent)
                .map(|s| Shift {
                    agent: new_index,
                    ..s.clone()
                })
                .collect();
            let pauses: Vec<_> = workforce
                .pauses
                .iter()
                .filter(|p| p.agent == model_agent)
                .map(|p| super::engine::Pause {
                    agent: new_index,
                    ..p.clone()
                })
                .collect();
            workforce.shifts.extend(shifts);
            workforce.pauses.extend(pauses);
        }
    }
    Ok(scenario)
}

/// Parses `agents=QUEUE:FROM..TO` (e.g. `agents=support:-3..+3`) into the queue and deltas.
pub fn parse_vary(text: &str) -> Result<(String, Vec<i32>), InputError> {
    let bad = || {
        InputError::option(format!(
            "--vary {text:?}: expected agents=QUEUE:FROM..TO, e.g. agents=support:-3..+3"
        ))
    };
    let rest = text.trim().strip_prefix("agents=").ok_or_else(bad)?;
    let (queue, range) = rest.rsplit_once(':').ok_or_else(bad)?;
    let (low, high) = range.split_once("..").ok_or_else(bad)?;
    let low: i32 = low.trim().parse().map_err(|_| bad())?;
    let high: i32 = high.trim().parse().map_err(|_| bad())?;
    if queue.is_empty() || low > high || high - low > 40 {
        return Err(bad());
    }
    Ok((queue.to_owned(), (low..=high).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_parses_ranges_and_refuses_nonsense() {
        assert_eq!(
            parse_vary("agents=support:-3..+3").expect("valid"),
            ("support".to_owned(), vec![-3, -2, -1, 0, 1, 2, 3])
        );
        assert_eq!(
            parse_vary("agents=sales:0..2").expect("valid").1,
            vec![0, 1, 2]
        );
        for bad in [
            "agents=support",
            "wrap=support:1..2",
            "agents=support:3..1",
            "agents=:1..2",
            "agents=q:x..2",
        ] {
            assert!(parse_vary(bad).is_err(), "{bad}");
        }
    }
}
