//! Staffing: who is logged in when, with which skills, read from a staffing CSV file or from
//! the agent-state records of a CDR period; without either, every configured agent works from
//! the start until the period's calls are served.
//!
//! Staffing file lines: `agent,start,end[,skills]` with times `HH:MM[:SS]` from the start of
//! the simulated period (hours may pass 24 for a second day). `skills` is a space-separated
//! list of `skill:level` or `@queue` (the skills that queue requires, at their minimum level);
//! empty means the agent's skills from the configuration. The word `pause` instead of skills
//! makes the line a not-ready period (break, meeting) inside the agent's shifts.

use std::collections::HashMap;
use std::path::Path;

use acd::{AgentConfig, Skill, MAX_SKILL_LEVEL, MIN_SKILL_LEVEL};
use cdr::{AgentState, AgentStateRecord};
use time::OffsetDateTime;

use super::arrivals::parse_clock;
use super::engine::{Pause, Shift, Workforce};
use super::input_error::InputError;
use crate::config::Config;

/// The configured agents in the ACD's terms, indexed by id.
fn configured_agents(config: &Config) -> (Vec<AgentConfig>, HashMap<String, usize>) {
    let agents = crate::acd_config::agent_configs(config);
    let index = config
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect();
    (agents, index)
}

/// The end of a shift that lasts until every call of the period has been served.
pub const OPEN_END_US: u64 = u64::MAX;

/// Every configured agent logged in, with its configured skills, from the start until every
/// call of the period has been served.
pub fn everyone(config: &Config) -> Workforce {
    let (agents, _) = configured_agents(config);
    let shifts = agents
        .iter()
        .enumerate()
        .map(|(agent, a)| Shift {
            agent,
            start_us: 0,
            end_us: OPEN_END_US,
            skills: a.skills.clone(),
        })
        .collect();
    Workforce {
        agents,
        shifts,
        pauses: Vec::new(),
    }
}

/// Reads a staffing file (see the module documentation).
pub fn read_file(config: &Config, path: &Path, text: &str) -> Result<Workforce, InputError> {
    let (agents, index) = configured_agents(config);
    let mut workforce = Workforce {
        agents,
        shifts: Vec::new(),
        pauses: Vec::new(),
    };
    let mut pause_lines = Vec::new();
    let mut shift_lines = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') || content.starts_with("agent,") {
            continue;
        }
        let error = |message: String| InputError::at(path, line, message);
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(error(format!(
                "expected agent,start,end[,skills], found {} fields",
                fields.len()
            )));
        }
        let agent = *index
            .get(fields[0])
            .ok_or_else(|| error(format!("unknown agent {:?}", fields[0])))?;
        let start = parse_clock(fields[1])
            .ok_or_else(|| error(format!("start {:?} is not HH:MM[:SS]", fields[1])))?;
        let end = parse_clock(fields[2])
            .ok_or_else(|| error(format!("end {:?} is not HH:MM[:SS]", fields[2])))?;
        if end <= start {
            return Err(error(format!(
                "end {} is not after start {}",
                fields[2], fields[1]
            )));
        }
        let (start_us, end_us) = ((start * 1e6) as u64, (end * 1e6) as u64);
        let skills_text = fields.get(3).copied().unwrap_or("");
        if skills_text == "pause" {
            workforce.pauses.push(Pause {
                agent,
                start_us,
                end_us,
            });
            pause_lines.push(line);
            continue;
        }
        let skills = if skills_text.is_empty() {
            workforce.agents[agent].skills.clone()
        } else {
            parse_skills(config, skills_text).map_err(error)?
        };
        if let Some(clash) = workforce
            .shifts
            .iter()
            .position(|s: &Shift| s.agent == agent && s.start_us < end_us && start_us < s.end_us)
        {
            return Err(error(format!(
                "agent {} already works then (line {})",
                fields[0], shift_lines[clash]
            )));
        }
        workforce.shifts.push(Shift {
            agent,
            start_us,
            end_us,
            skills,
        });
        shift_lines.push(line);
    }
    for (pause, line) in workforce.pauses.iter().zip(pause_lines) {
        let inside = workforce.shifts.iter().any(|s| {
            s.agent == pause.agent && s.start_us <= pause.start_us && pause.end_us <= s.end_us
        });
        if !inside {
            return Err(InputError::at(
                path,
                line,
                "a pause must lie inside one of the agent's shifts",
            ));
        }
    }
    if workforce.shifts.is_empty() {
        return Err(InputError::file(path, "no shifts"));
    }
    Ok(workforce)
}

fn parse_skills(config: &Config, text: &str) -> Result<Vec<(Skill, u8)>, String> {
    let mut skills: Vec<(Skill, u8)> = Vec::new();
    let mut add =
        |skill: &str, level: u8| match skills.iter_mut().find(|(s, _)| s.as_str() == skill) {
            Some(entry) => entry.1 = entry.1.max(level),
            None => skills.push((Skill::from(skill), level)),
        };
    for item in text.split_whitespace() {
        if let Some(queue) = item.strip_prefix('@') {
            let queue = config
                .queue(queue)
                .ok_or_else(|| format!("unknown queue {queue:?}"))?;
            for (skill, level) in &queue.skills {
                add(skill, *level);
            }
            continue;
        }
        let (skill, level) = item
            .split_once(':')
            .ok_or_else(|| format!("{item:?} is neither skill:level nor @queue"))?;
        let level: u8 = level
            .parse()
            .ok()
            .filter(|l| (MIN_SKILL_LEVEL..=MAX_SKILL_LEVEL).contains(l))
            .ok_or_else(|| {
                format!(
                    "skill {skill} level {level:?} is not {MIN_SKILL_LEVEL}..={MAX_SKILL_LEVEL}"
                )
            })?;
        add(skill, level);
    }
    Ok(skills)
}

/// Shifts and pauses from the agent-state records of `[from, to)`: each logout record spans
/// a session (from its login); a login with no logout in the files lasts until the work is
/// done; every not-ready period except ring-no-answer (which the simulation produces itself)
/// is a pause.
/// Agents no longer configured are left out and named in the returned warnings.
pub fn from_agent_states(
    config: &Config,
    records: &[AgentStateRecord],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (Workforce, Vec<String>) {
    let (agents, index) = configured_agents(config);
    let span_us = |at: OffsetDateTime| -> u64 {
        let offset = (at.clamp(from, to) - from).whole_microseconds();
        u64::try_from(offset).unwrap_or(0)
    };
    let mut workforce = Workforce {
        agents,
        shifts: Vec::new(),
        pauses: Vec::new(),
    };
    let mut warnings = Vec::new();
    let missed = config.acd.missed_call_reason.as_deref();
    let mut logins: Vec<(usize, OffsetDateTime)> = Vec::new();
    let mut logouts: Vec<(usize, OffsetDateTime, OffsetDateTime)> = Vec::new();
    for record in records {
        let Some(&agent) = index.get(&record.agent) else {
            let warning = format!(
                "agent {} is not in the configuration: left out",
                record.agent
            );
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
            continue;
        };
        match record.state {
            AgentState::Login => logins.push((agent, record.started)),
            AgentState::Logout => logouts.push((agent, record.started, record.ended)),
            AgentState::NotReady
                if record.reason.as_deref() != missed
                    && record.ended > from
                    && record.started < to =>
            {
                workforce.pauses.push(Pause {
                    agent,
                    start_us: span_us(record.started),
                    end_us: span_us(record.ended),
                });
            }
            _ => {}
        }
    }
    // A session still open at the end of the files goes on until the calls of the period are
    // served (`None`): logging those agents out at `to` would strand the last calls.
    let mut sessions: Vec<(usize, OffsetDateTime, Option<OffsetDateTime>)> = logouts
        .into_iter()
        .map(|(agent, start, end)| (agent, start, Some(end)))
        .collect();
    for (agent, login) in logins {
        if !sessions
            .iter()
            .any(|(a, start, _)| *a == agent && *start == login)
        {
            sessions.push((agent, login, None));
        }
    }
    sessions.sort_by_key(|(agent, start, _)| (*agent, *start));
    for (agent, start, end) in sessions {
        if end.is_some_and(|end| end <= from) || start >= to {
            continue;
        }
        workforce.shifts.push(Shift {
            agent,
            start_us: span_us(start),
            end_us: end.map_or(OPEN_END_US, span_us),
            skills: workforce.agents[agent].skills.clone(),
        });
    }
    (workforce, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config() -> Config {
        crate::config::demo()
    }

    fn read(text: &str) -> Result<Workforce, InputError> {
        read_file(&config(), Path::new("staff.csv"), text)
    }

    #[test]
    fn reads_shifts_skills_and_pauses() {
        let w = read(
            "agent,start,end,skills\n\
             1001,08:00,12:00\n\
             1002,08:00,16:00,@sales support:3\n\
             1002,10:00,10:15,pause\n",
        )
        .expect("valid");
        assert_eq!(w.shifts.len(), 2);
        assert_eq!(w.shifts[0].start_us, 8 * 3_600_000_000);
        let demo = config();
        let configured = &demo
            .agents
            .iter()
            .find(|a| a.id == "1001")
            .expect("1001")
            .skills;
        assert_eq!(w.shifts[0].skills.len(), configured.len());
        let sales = demo.queue("sales").expect("demo has sales");
        for (skill, level) in &sales.skills {
            assert!(w.shifts[1]
                .skills
                .iter()
                .any(|(s, l)| s.as_str() == skill && l >= level));
        }
        assert!(w.shifts[1]
            .skills
            .iter()
            .any(|(s, l)| s.as_str() == "support" && *l >= 3));
        assert_eq!(w.pauses.len(), 1);
        assert_eq!(w.pauses[0].end_us - w.pauses[0].start_us, 900_000_000);
    }

    #[test]
    fn bad_lines_name_file_line_and_problem() {
        let cases = [
            ("9999,08:00,12:00\n", "staff.csv:1: unknown agent \"9999\""),
            (
                "1001,08:00,12:00,@billing\n",
                "staff.csv:1: unknown queue \"billing\"",
            ),
            ("\n1001,08:00\n", "staff.csv:2: expected agent,start,end"),
            ("1001,8am,12:00\n", "start \"8am\""),
            ("1001,12:00,08:00\n", "not after start"),
            ("1001,08:00,12:00,support:11\n", "level \"11\""),
            (
                "1001,08:00,12:00,support\n",
                "neither skill:level nor @queue",
            ),
            (
                "1001,08:00,12:00\n1001,11:00,13:00\n",
                "staff.csv:2: agent 1001 already works then (line 1)",
            ),
            (
                "1001,08:00,12:00\n1001,12:30,12:45,pause\n",
                "inside one of",
            ),
            ("# none\n", "staff.csv: no shifts"),
        ];
        for (text, expected) in cases {
            let error = read(text).expect_err(text).to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn sessions_and_pauses_come_from_agent_state_records() {
        let record = |agent: &str, state, reason: Option<&str>, started, ended| AgentStateRecord {
            seq: 0,
            agent: agent.into(),
            state,
            reason: reason.map(str::to_owned),
            started,
            ended,
            duration_s: 0.0,
            call_id: None,
        };
        let from = datetime!(2026-03-02 08:00 UTC);
        let to = datetime!(2026-03-02 12:00 UTC);
        let records = [
            record(
                "1001",
                AgentState::Login,
                None,
                datetime!(2026-03-02 08:30 UTC),
                datetime!(2026-03-02 08:30 UTC),
            ),
            record(
                "1001",
                AgentState::NotReady,
                Some("break"),
                datetime!(2026-03-02 09:00 UTC),
                datetime!(2026-03-02 09:10 UTC),
            ),
            record(
                "1001",
                AgentState::Logout,
                None,
                datetime!(2026-03-02 08:30 UTC),
                datetime!(2026-03-02 11:00 UTC),
            ),
            record(
                "1002",
                AgentState::Login,
                None,
                datetime!(2026-03-02 07:00 UTC),
                datetime!(2026-03-02 07:00 UTC),
            ),
            record(
                "ghost",
                AgentState::Login,
                None,
                datetime!(2026-03-02 08:00 UTC),
                datetime!(2026-03-02 08:00 UTC),
            ),
        ];
        let (w, warnings) = from_agent_states(&config(), &records, from, to);
        assert_eq!(
            warnings,
            vec!["agent ghost is not in the configuration: left out"]
        );
        assert_eq!(w.shifts.len(), 2);
        let hour = 3_600_000_000u64;
        let shift_1001 = w
            .shifts
            .iter()
            .find(|s| w.agents[s.agent].id.as_str() == "1001")
            .expect("1001");
        assert_eq!(
            (shift_1001.start_us, shift_1001.end_us),
            (hour / 2, 3 * hour)
        );
        // Logged in before the period and never out: on until the work is done.
        let shift_1002 = w
            .shifts
            .iter()
            .find(|s| w.agents[s.agent].id.as_str() == "1002")
            .expect("1002");
        assert_eq!((shift_1002.start_us, shift_1002.end_us), (0, OPEN_END_US));
        assert_eq!(w.pauses.len(), 1);
        assert_eq!(w.pauses[0].start_us, hour);
    }
}
