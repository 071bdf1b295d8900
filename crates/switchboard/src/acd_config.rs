//! Translating the configuration file's queues and agents into the ACD's model.

use crate::config::{Config, RoutingStrategy};
use acd::{AcdConfig, AgentConfig, ExpansionStep, QueueConfig, Skill, SkillRequirement, Strategy};

fn requirements(skills: &std::collections::BTreeMap<String, u8>) -> Vec<SkillRequirement> {
    skills
        .iter()
        .map(|(skill, level)| SkillRequirement::new(Skill::from(skill.as_str()), *level))
        .collect()
}

/// The ACD's configuration: queues, not-ready reasons and what follows a failed offer.
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
        offer_retry_after: config.acd.offer_retry_after,
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use acd::{Acd, Action, CallId, CallRequest, OfferFailure, Timer};

    use super::{acd_config, agent_configs};
    use crate::config::testing::valid;

    /// `[acd] offer_retry_s` reaches the ACD: a refused offer asks to retry that agent only
    /// after that many seconds, and until then the call is not offered to it again.
    #[test]
    fn offer_retry_s_sets_when_a_refusing_agent_may_get_the_call_again() {
        let config = valid(
            "[acd]\noffer_retry_s = 9\n\n[[queue]]\nname = \"q\"\nskills = { s = 1 }\n\n\
             [[agent]]\nid = \"1001\"\nname = \"Ann\"\npassword = \"p\"\nskills = { s = 1 }\n",
        );
        let acd = Acd::new(acd_config(&config)).expect("valid ACD config");
        let t0 = Instant::now();
        for agent in agent_configs(&config) {
            acd.upsert_agent(t0, agent).expect("agent");
        }
        acd.login(t0, &"1001".into(), true).expect("login");
        let request = CallRequest {
            id: CallId(1),
            queue: "q".into(),
            priority: 0,
            preferred_agent: None,
        };
        let offered = acd.enqueue(t0, request).expect("enqueue");
        assert!(offered.iter().any(|a| matches!(a, Action::Offer { .. })));
        let failed = acd
            .offer_failed(t0, CallId(1), OfferFailure::Rejected)
            .expect("failed");
        assert!(!failed.iter().any(|a| matches!(a, Action::Offer { .. })));
        let retry: Vec<Instant> = failed
            .iter()
            .filter_map(|a| match a {
                Action::SetTimer {
                    timer: Timer::OfferRetry { .. },
                    at,
                } => Some(*at),
                _ => None,
            })
            .collect();
        assert_eq!(retry, vec![t0 + Duration::from_secs(9)]);
    }
}
