//! Shared by the property and stress tests: a small call centre configuration and an
//! independent re-implementation of "may this agent take that call", to judge the ACD by.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use acd::{AcdConfig, CallSnapshot, ExpansionStep, QueueConfig, SkillRequirement};

pub const SKILLS: [&str; 3] = ["sales", "tech", "french"];
pub const REASONS: [&str; 3] = ["break", "lunch", "missed"];

/// Three queues exercising expansion, overflow, max length, wrap-up and preferred agents.
pub fn config(aging: Option<Duration>) -> AcdConfig {
    let mut sales = QueueConfig::new("sales");
    sales.required = vec![SkillRequirement::new("sales", 3)];
    sales.max_wait = Some(Duration::from_secs(60));
    sales.overflow = Some("general".into());
    sales.expansion = vec![ExpansionStep {
        after: Duration::from_secs(20),
        min_level: Some(1),
        add_skills: vec![],
    }];
    sales.wrap_up = Duration::from_secs(5);
    sales.preferred_agent_wait = Duration::from_secs(15);
    sales.priority_aging = aging;

    let mut tech = QueueConfig::new("tech");
    tech.required = vec![SkillRequirement::new("tech", 5)];
    tech.max_wait = Some(Duration::from_secs(90));
    tech.max_length = Some(4);
    tech.overflow = Some("general".into());
    tech.expansion = vec![ExpansionStep {
        after: Duration::from_secs(30),
        min_level: None,
        add_skills: vec![SkillRequirement::new("french", 1)],
    }];
    tech.strategy = acd::Strategy::MostSkilled;
    tech.priority_aging = aging;

    let mut general = QueueConfig::new("general");
    general.max_wait = Some(Duration::from_secs(120));
    general.max_length = Some(6);
    general.strategy = acd::Strategy::RoundRobin;
    general.wrap_up = Duration::from_secs(3);
    general.priority_aging = aging;

    AcdConfig {
        queues: vec![sales, tech, general],
        not_ready_reasons: REASONS.iter().map(|r| r.to_string()).collect(),
        missed_call_reason: Some("missed".into()),
        ..AcdConfig::default()
    }
}

/// Independent eligibility: agent skills against a queue's requirement at a stage.
pub fn eligible(
    config: &AcdConfig,
    skills: &HashMap<String, u8>,
    call: &CallSnapshot,
    agent: &str,
) -> bool {
    if let Some(preferred) = &call.waiting_for {
        return preferred.as_str() == agent;
    }
    let Some(queue) = config.queues.iter().find(|q| q.id == call.queue) else {
        return false;
    };
    qualifies(queue, skills, call.stage)
}

/// Independent eligibility of an agent with `skills` for `queue` at expansion stage `stage`
/// (0 = base requirement; any stage past the last step means every step applies).
pub fn qualifies(queue: &QueueConfig, skills: &HashMap<String, u8>, stage: usize) -> bool {
    let steps = &queue.expansion[..stage.min(queue.expansion.len())];
    let cap = steps.iter().filter_map(|s| s.min_level).min();
    let level = |skill: &acd::Skill| skills.get(skill.as_str()).copied();
    let base = queue.required.iter().all(|req| {
        let min = cap.map_or(req.min_level, |cap| cap.min(req.min_level));
        level(&req.skill).is_some_and(|l| l >= min)
    });
    base || steps
        .iter()
        .flat_map(|s| &s.add_skills)
        .any(|req| level(&req.skill).is_some_and(|l| l >= req.min_level))
}
