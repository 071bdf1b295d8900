//! Accumulates call facts into report cells: interval × (all queues | queue | agent).
//!
//! Independent of where the facts come from (CDR files now, PostgreSQL later).

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::erlang::agents_needed;
use super::figures::{CallFacts, Figures};
use super::reader::SourceStats;
use super::{Report, ReportQuery, ReportRow, StaffingRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group {
    AllQueues,
    Queue(u32),
    Agent(u32),
}

/// Builds a [`Report`] from call facts, one call at a time.
pub struct ReportBuilder {
    query: ReportQuery,
    from_s: i64,
    to_s: i64,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    cells: HashMap<(i64, Group), Figures>,
    /// The last interval looked up: calls arrive roughly in time order, and month and week
    /// starts are costlier to compute than a range check.
    cached_interval: (i64, i64),
}

impl ReportBuilder {
    /// A builder for `query` (its range and filters decide which calls count).
    pub fn new(query: ReportQuery) -> ReportBuilder {
        ReportBuilder {
            from_s: query.from.unix_timestamp(),
            to_s: query.to.unix_timestamp(),
            query,
            names: Vec::new(),
            ids: HashMap::new(),
            cells: HashMap::new(),
            cached_interval: (0, 0),
        }
    }

    /// Counts a call if it is in range and matches the filters; returns whether it counted.
    pub fn add(&mut self, call: &CallFacts<'_>) -> bool {
        if call.at_unix_s < self.from_s || call.at_unix_s >= self.to_s {
            return false;
        }
        if let Some(queue) = &self.query.queue {
            if call.queue != Some(queue.as_str()) {
                return false;
            }
        }
        if let Some(agent) = &self.query.agent {
            if call.agent != Some(agent.as_str()) {
                return false;
            }
        }
        let start = self.interval_start(call.at_unix_s);
        if let Some(queue) = call.queue {
            let id = self.name_id(queue);
            self.cells
                .entry((start, Group::AllQueues))
                .or_default()
                .add(call);
            self.cells
                .entry((start, Group::Queue(id)))
                .or_default()
                .add(call);
        }
        if let Some(agent) = call.agent {
            let id = self.name_id(agent);
            self.cells
                .entry((start, Group::Agent(id)))
                .or_default()
                .add(call);
        }
        true
    }

    /// The finished report; `source` describes where the facts came from.
    pub fn finish(self, source: SourceStats) -> Report {
        let mut totals = Vec::new();
        let mut queues = Vec::new();
        let mut agents = Vec::new();
        let mut overall = Figures::default();
        let mut queue_overall: HashMap<u32, Figures> = HashMap::new();
        for (&(start, group), figures) in &self.cells {
            let row = |name: &str| ReportRow {
                interval_start: at(start),
                interval_end: at(self.query.interval.end_of(start)),
                group: name.to_string(),
                figures: *figures,
            };
            match group {
                Group::AllQueues => {
                    overall.merge(figures);
                    totals.push(row("all queues"));
                }
                Group::Queue(id) => {
                    queue_overall.entry(id).or_default().merge(figures);
                    queues.push(row(self.name(id)));
                }
                Group::Agent(id) => agents.push(row(self.name(id))),
            }
        }
        let by_time_and_name = |a: &ReportRow, b: &ReportRow| {
            (a.interval_start, &a.group).cmp(&(b.interval_start, &b.group))
        };
        totals.sort_by(by_time_and_name);
        queues.sort_by(by_time_and_name);
        agents.sort_by(by_time_and_name);

        let queue_aht: HashMap<&str, Option<f64>> = queue_overall
            .iter()
            .map(|(&id, figures)| (self.name(id), figures.aht_s()))
            .collect();
        let staffing = queues
            .iter()
            .map(|row| self.staffing_row(row, queue_aht.get(row.group.as_str()).copied().flatten()))
            .collect();
        Report {
            query: self.query,
            totals,
            queues,
            agents,
            overall,
            staffing,
            source,
            agent_transfers: Vec::new(),
            campaigns: Vec::new(),
        }
    }

    fn staffing_row(&self, row: &ReportRow, queue_aht_s: Option<f64>) -> StaffingRow {
        let figures = &row.figures;
        // A quiet interval with no answered call borrows the queue's AHT over the range.
        let aht_s = figures.aht_s().or(queue_aht_s);
        // Erlang C assumes calls spread over the whole interval: clip partial intervals at
        // the ends of the range to the part actually covered.
        let start = row.interval_start.unix_timestamp().max(self.from_s);
        let end = row.interval_end.unix_timestamp().min(self.to_s);
        let covered = Duration::from_secs(u64::try_from(end - start).unwrap_or(0));
        let calls = figures.base();
        let agents = aht_s.and_then(|aht_s| {
            agents_needed(
                calls as f64,
                covered,
                Duration::try_from_secs_f64(aht_s).ok()?,
                self.query.target_service_level,
                Duration::try_from_secs_f64(figures.threshold_s).ok()?,
            )
            .ok()
        });
        StaffingRow {
            interval_start: row.interval_start,
            queue: row.group.clone(),
            calls,
            aht_s,
            threshold_s: figures.threshold_s,
            observed_service_level: figures.service_level(),
            agents_needed: agents,
        }
    }

    fn interval_start(&mut self, at_s: i64) -> i64 {
        let (start, end) = self.cached_interval;
        if at_s >= start && at_s < end {
            return start;
        }
        let start = self.query.interval.start_of(at_s);
        self.cached_interval = (start, self.query.interval.end_of(start));
        start
    }

    fn name_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", String::as_str)
    }
}

fn at(unix_s: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_s).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
