//! A period of history from the CDR files: the calls that queued in it (their arrival
//! instants, queues and priorities) and what they tell about talk time, patience and ring
//! time, plus the agent-state records for staffing.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use cdr::{AgentStateRecord, CallRecord, Disposition, LegRole, Record};
use time::OffsetDateTime;

use super::arrivals::{Arrival, CallProfile};
use super::distribution::Distribution;
use super::input_error::InputError;
use crate::config::Config;

/// What the CDR files hold for the period.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Calls that reached a queue and were queued in `[from, to)`.
    pub calls: Vec<CallRecord>,
    /// Agent-state records that overlap the period.
    pub agent_states: Vec<AgentStateRecord>,
    /// Lines that were not valid records.
    pub malformed_lines: u64,
}

/// Reads the period's records from the daily files in `dir`.
pub fn read(dir: &Path, from: OffsetDateTime, to: OffsetDateTime) -> Result<History, InputError> {
    if !dir.is_dir() {
        return Err(InputError::file(dir, "is not a CDR directory"));
    }
    let files = cdr::report::files_for_range(dir, from, to)
        .map_err(|e| InputError::file(dir, e.to_string()))?;
    let mut history = History::default();
    let mut line = Vec::new();
    for path in files {
        let file = File::open(&path).map_err(|e| InputError::file(&path, e.to_string()))?;
        let mut reader = BufReader::new(file);
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| InputError::file(&path, e.to_string()))?;
            if read == 0 {
                break;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match Record::from_json(&line) {
                Ok(Record::Call(call)) => {
                    let Some(enqueued) = call.enqueued else {
                        continue;
                    };
                    if call.queue.is_some() && enqueued >= from && enqueued < to {
                        history.calls.push(call);
                    }
                }
                Ok(Record::AgentState(state)) => {
                    if state.ended >= from && state.started < to {
                        history.agent_states.push(state);
                    }
                }
                Err(_) => history.malformed_lines += 1,
            }
        }
    }
    if history.calls.is_empty() {
        return Err(InputError::file(
            dir,
            format!("no queued calls between {from} and {to}"),
        ));
    }
    history.calls.sort_by_key(|call| call.enqueued);
    Ok(history)
}

/// The queue a call first entered. A CDR names the last queue (after overflows); the first
/// is the queue its number routes to when that queue's overflow chain leads there, else the
/// one found by walking overflow links back while the call's wait covers each max wait.
pub fn first_queue(config: &Config, call: &CallRecord) -> Option<usize> {
    let last = config
        .queues
        .iter()
        .position(|q| Some(q.name.as_str()) == call.queue.as_deref())?;
    if let Some(routed) = config
        .numbers
        .iter()
        .find(|n| n.did == call.did)
        .and_then(|n| n.queue())
        .and_then(|name| config.queues.iter().position(|q| q.name == name))
    {
        let mut at = routed;
        for _ in 0..=config.queues.len() {
            if at == last {
                return Some(routed);
            }
            match config.queues[at]
                .overflow
                .as_deref()
                .and_then(|name| config.queues.iter().position(|q| q.name == name))
            {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    let mut at = last;
    let mut waited = 0.0;
    for _ in 0..config.queues.len() {
        let before: Vec<usize> = config
            .queues
            .iter()
            .enumerate()
            .filter(|(_, q)| q.overflow.as_deref() == Some(config.queues[at].name.as_str()))
            .filter(|(_, q)| {
                q.max_wait
                    .is_some_and(|w| waited + w.as_secs_f64() <= call.wait_s + 1.0)
            })
            .map(|(index, _)| index)
            .collect();
        match before.as_slice() {
            [only] => {
                waited += config.queues[*only]
                    .max_wait
                    .map_or(0.0, |w| w.as_secs_f64());
                at = *only;
            }
            _ => break,
        }
    }
    Some(at)
}

/// The calls of the period as arrivals (profile = first queue), for replay.
pub fn arrivals(config: &Config, history: &History, from: OffsetDateTime) -> Vec<Arrival> {
    history
        .calls
        .iter()
        .filter_map(|call| {
            let queue = first_queue(config, call)?;
            let enqueued = call.enqueued?;
            let at_us = u64::try_from((enqueued - from).whole_microseconds()).unwrap_or(0);
            Some(Arrival {
                at_us,
                queue,
                priority: i32::try_from(call.priority).unwrap_or(i32::MAX),
                profile: queue,
            })
        })
        .collect()
}

/// Per queue (in configuration order): talk times of its answered calls and its callers'
/// patience (Kaplan–Meier: abandons are events, every other wait is censored). A queue with
/// no answered call borrows the talk times of all queues.
pub fn profiles(config: &Config, history: &History) -> Result<Vec<CallProfile>, String> {
    let queue_of: Vec<Option<usize>> = history
        .calls
        .iter()
        .map(|call| first_queue(config, call))
        .collect();
    let answered = |call: &CallRecord| call.disposition == Disposition::Answered;
    let everyone = Distribution::empirical(
        history
            .calls
            .iter()
            .filter(|c| answered(c))
            .map(|c| c.talk_s),
    )
    .ok_or("no answered call in the period to learn talk times from")?;
    Ok((0..config.queues.len())
        .map(|queue| {
            let mine = || {
                history
                    .calls
                    .iter()
                    .zip(&queue_of)
                    .filter(move |(_, q)| **q == Some(queue))
                    .map(|(call, _)| call)
            };
            let handle = Distribution::empirical(mine().filter(|c| answered(c)).map(|c| c.talk_s))
                .unwrap_or_else(|| everyone.clone());
            let patience = Distribution::kaplan_meier(mine().map(|c| {
                let abandoned = matches!(
                    c.disposition,
                    Disposition::Abandoned | Disposition::AbandonedShort
                );
                (c.wait_s, abandoned)
            }));
            CallProfile { handle, patience }
        })
        .collect())
}

/// How long agents' phones rang before they answered: the ring time of answered calls that
/// rang one agent only (so `ring_s` is that one offer); fixed 0 s when none did.
pub fn ring_time(history: &History) -> Distribution {
    Distribution::empirical(
        history
            .calls
            .iter()
            .filter(|c| c.disposition == Disposition::Answered)
            .filter(|c| c.legs.iter().filter(|l| l.role == LegRole::Agent).count() == 1)
            .map(|c| c.ring_s),
    )
    .unwrap_or(Distribution::Fixed(0.0))
}
