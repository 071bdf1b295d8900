//! Translating the configuration file's queues and agents into the ACD's model.

use crate::config::{Config, RoutingStrategy};
use acd::{AcdConfig, AgentConfig, ExpansionStep, QueueConfig, Skill, SkillRequirement, Strategy};

fn requirements(skills: &std::collections::BTreeMap<String, u8>) -> Vec<SkillRequirement> {
    skills
        .iter()
        .map(|(skill, level)| SkillRequirement::new(Skill::from(skill.as_str()), *level))
        .collect()
}

/// The ACD's configuration: queues and not-ready reasons.
pub fn acd_config(config: &Config) -> AcdConfig {
    let queues = config
        .queues
        .iter()
        .map(|q| {
            let mut queue = QueueConfig::new(q.name.as_str());
            queue.required = requirements(&q.skills);
            queue.strategy = match q.strategy {
                RoutingStrategy::LongestIdle => Strategy::LongestIdle,
                RoutingStrategy::MostSkilled => Strategy::MostSkilled,
                RoutingStrategy::RoundRobin => Strategy::RoundRobin,
                RoutingStrategy::FewestCalls => Strategy::FewestCalls,
            };
            queue.max_wait = q.max_wait;
            queue.max_length = q.max_length;
            queue.overflow = q.overflow.as_deref().map(acd::QueueId::from);
            queue.expansion = q
                .expansions
                .iter()
                .map(|e| ExpansionStep {
                    after: e.after,
                    min_level: e.min_level,
                    add_skills: requirements(&e.add_skills),
                })
                .collect();
            queue.service_level = q.service_level;
            queue.wrap_up = q.wrap_up;
            queue.preferred_agent_wait = q.preferred_agent_wait;
            queue
        })
        .collect();
    AcdConfig {
        queues,
        not_ready_reasons: config.acd.not_ready_reasons.clone(),
        missed_call_reason: config.acd.missed_call_reason.clone(),
    }
}

/// The ACD's view of each configured agent.
pub fn agent_configs(config: &Config) -> Vec<AgentConfig> {
    config
        .agents
        .iter()
        .map(|a| {
            let skills = a
                .skills
                .iter()
                .map(|(skill, level)| (Skill::from(skill.as_str()), *level))
                .collect();
            let mut agent = AgentConfig::new(a.id.as_str(), a.name.as_str(), skills);
            agent.max_calls = a.max_calls;
            agent
        })
        .collect()
}
