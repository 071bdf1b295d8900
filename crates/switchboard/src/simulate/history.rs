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
                priority: call.priority,
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

#[cfg(test)]
mod tests {
    use super::*;
    use cdr::{HangupSide, Leg};
    use time::macros::datetime;

    /// The demo with `sales` overflowing to `support` after 45 s; DID 101 goes straight to
    /// support, DID 100 to the voice menu (which can reach either queue).
    fn config() -> Config {
        let text = include_str!("../config/demo.toml").replace(
            "name = \"sales\"\nskills = { sales = 1 }",
            "name = \"sales\"\nskills = { sales = 1 }\nmax_wait_s = 45\noverflow = \"support\"",
        );
        crate::config::load_str("demo.toml", &text).expect("valid demo")
    }

    fn call(
        did: &str,
        queue: &str,
        disposition: Disposition,
        wait_s: f64,
        talk_s: f64,
    ) -> CallRecord {
        let at = datetime!(2026-03-02 09:00 UTC);
        let agent_leg = Leg {
            role: LegRole::Agent,
            call_id: "a".into(),
            peer: "sip:1001@127.0.0.1".into(),
            started: at,
            answered: None,
            ended: at,
            sip_cause: None,
            party: None,
            queue: None,
        };
        CallRecord {
            seq: 0,
            id: "sb-1".into(),
            trunk_call_id: "t".into(),
            arrived: at,
            ivr_ended: None,
            enqueued: Some(at),
            offered: None,
            answered: None,
            ended: at,
            caller: "1".into(),
            did: did.into(),
            ivr_path: Vec::new(),
            language: None,
            queue: Some(queue.into()),
            agent: None,
            priority: 2,
            label: None,
            customer_name: None,
            preferred_agent: None,
            preferred_agent_taken: false,
            wait_s,
            ring_s: 1.5,
            talk_s,
            hold_s: 0.0,
            wrap_up_s: 0.0,
            disposition,
            hangup_side: HangupSide::Caller,
            sip_cause: None,
            transfers: Vec::new(),
            survey_score: None,
            recording: None,
            legs: vec![agent_leg],
            supervisions: Vec::new(),
            conference: None,
            service_level_threshold_s: 20.0,
            direction: Default::default(),
            outbound: None,
            callback: None,
        }
    }

    #[test]
    fn the_first_queue_is_found_from_the_number_or_the_overflow_links() {
        let config = config();
        let support = 0;
        let sales = 1;
        // DID 101 routes straight to support.
        let direct = call("101", "support", Disposition::Answered, 60.0, 10.0);
        assert_eq!(first_queue(&config, &direct), Some(support));
        // Through the menu, in support after 50 s: it waited out sales' 45 s first.
        let overflowed = call("100", "support", Disposition::Answered, 50.0, 10.0);
        assert_eq!(first_queue(&config, &overflowed), Some(sales));
        // In support after 20 s: too short to have overflowed, it chose support in the menu.
        let chose = call("100", "support", Disposition::Answered, 20.0, 10.0);
        assert_eq!(first_queue(&config, &chose), Some(support));
        let unknown = call("100", "billing", Disposition::Answered, 20.0, 10.0);
        assert_eq!(first_queue(&config, &unknown), None);
    }

    #[test]
    fn profiles_and_ring_time_come_from_the_calls() {
        let config = config();
        let history = History {
            calls: vec![
                call("101", "support", Disposition::Answered, 10.0, 100.0),
                call("101", "support", Disposition::Answered, 30.0, 200.0),
                call("101", "support", Disposition::Abandoned, 20.0, 0.0),
                call("100", "sales", Disposition::Answered, 5.0, 50.0),
            ],
            agent_states: Vec::new(),
            malformed_lines: 0,
        };
        let profiles = profiles(&config, &history).expect("answered calls");
        assert_eq!(
            profiles[0].handle,
            Distribution::Empirical(vec![100.0, 200.0])
        );
        assert_eq!(profiles[1].handle, Distribution::Empirical(vec![50.0]));
        // Support: one abandon at 20 s among 3 waits (10 and 30 censored); sales: none.
        let Distribution::KaplanMeier(curve) = &profiles[0].patience else {
            panic!("support callers abandoned: {:?}", profiles[0].patience);
        };
        assert!((curve.survival(20.0) - 0.5).abs() < 1e-12);
        assert_eq!(profiles[1].patience, Distribution::Never);
        assert_eq!(
            ring_time(&history),
            Distribution::Empirical(vec![1.5, 1.5, 1.5])
        );
        let arrivals = arrivals(&config, &history, datetime!(2026-03-02 08:00 UTC));
        assert_eq!(arrivals.len(), 4);
        assert_eq!(arrivals[0].at_us, 3_600_000_000);
        assert_eq!(arrivals[0].priority, 2);
        let only_abandons = History {
            calls: vec![call("101", "support", Disposition::Abandoned, 20.0, 0.0)],
            ..history
        };
        assert!(profiles_error(&config, &only_abandons).contains("no answered call"));
    }

    fn profiles_error(config: &Config, history: &History) -> String {
        profiles(config, history).err().unwrap_or_default()
    }

    #[test]
    fn a_period_without_calls_is_refused_naming_the_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = read(
            dir.path(),
            datetime!(2026-03-02 00:00 UTC),
            datetime!(2026-03-03 00:00 UTC),
        )
        .expect_err("empty");
        assert!(
            error.to_string().contains("no queued calls between"),
            "{error}"
        );
        let missing = dir.path().join("nope");
        let error = read(
            &missing,
            datetime!(2026-03-02 00:00 UTC),
            datetime!(2026-03-03 00:00 UTC),
        )
        .expect_err("missing");
        assert!(
            error.to_string().contains("is not a CDR directory"),
            "{error}"
        );
    }
}
