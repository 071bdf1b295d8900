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
            queue.priority_aging = q.priority_aging;
            queue.initial_handle_time = q.initial_handle_time;
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
    use super::*;
    use crate::config::testing::valid;
    use acd::{Acd, Action, CallId, CallRequest, OfferFailure, Timer};
    use std::time::{Duration, Instant};

    fn acd(queue_keys: &str) -> Acd {
        let text = format!("[[queue]]\nname = \"q\"\nskills = {{ s = 1 }}\n{queue_keys}");
        let config = crate::config::load_str("t.toml", &text).expect("valid configuration");
        Acd::new(acd_config(&config)).expect("a valid ACD configuration")
    }

    fn enqueue(acd: &Acd, now: Instant, id: u64, priority: i32) {
        acd.enqueue(
            now,
            CallRequest {
                id: CallId(id),
                queue: "q".into(),
                priority,
                preferred_agent: None,
                waiting_since: None,
                preferred_wait: None,
            },
        )
        .expect("enqueued");
    }

    /// Call 1 (priority 0) has waited 60 s when call 2 (priority 5) arrives.
    fn position_of_the_older_low_priority_call(queue_keys: &str) -> usize {
        let acd = acd(queue_keys);
        let start = Instant::now();
        enqueue(&acd, start, 1, 0);
        enqueue(&acd, start + Duration::from_secs(60), 2, 5);
        acd.position(CallId(1)).expect("waiting").0
    }

    #[test]
    fn priority_aging_s_lets_waiting_calls_move_up_and_zero_means_strict_priority() {
        // 60 s at one point per 10 s: 0 + 6 > 5, the older call is first.
        assert_eq!(
            position_of_the_older_low_priority_call("priority_aging_s = 10\n"),
            1
        );
        // One point per 30 s (the default): 0 + 2 < 5, the newer urgent call is first.
        assert_eq!(position_of_the_older_low_priority_call(""), 2);
        // Strict priority: waiting earns nothing.
        assert_eq!(
            position_of_the_older_low_priority_call("priority_aging_s = 0\n"),
            2
        );
    }

    /// Every `[[queue]]` key the ACD acts on arrives in its configuration unchanged.
    #[test]
    fn every_queue_key_reaches_the_acd() {
        let text = "[[queue]]\nname = \"q\"\nskills = { s = 3 }\nstrategy = \"most-skilled\"\nmax_wait_s = 40\nmax_length = 7\noverflow = \"r\"\nservice_level_s = 25\nwrap_up_s = 12\npreferred_agent_wait_s = 9\npriority_aging_s = 11\ninitial_handle_time_s = 70\n[[queue.expansion]]\nafter_s = 30\nmin_level = 2\nadd_skills = { t = 4 }\n[[queue]]\nname = \"r\"\nskills = { s = 1 }\n";
        let config = crate::config::load_str("t.toml", text).expect("valid configuration");
        let acd = acd_config(&config);
        let q = &acd.queues[0];
        assert_eq!(q.id, acd::QueueId::from("q"));
        assert_eq!(q.required, vec![SkillRequirement::new("s", 3)]);
        assert_eq!(q.strategy, Strategy::MostSkilled);
        assert_eq!(q.max_wait, Some(Duration::from_secs(40)));
        assert_eq!(q.max_length, Some(7));
        assert_eq!(q.overflow, Some(acd::QueueId::from("r")));
        assert_eq!(q.service_level, Duration::from_secs(25));
        assert_eq!(q.wrap_up, Duration::from_secs(12));
        assert_eq!(q.preferred_agent_wait, Duration::from_secs(9));
        assert_eq!(q.priority_aging, Some(Duration::from_secs(11)));
        assert_eq!(q.initial_handle_time, Duration::from_secs(70));
        assert_eq!(
            q.expansion,
            vec![ExpansionStep {
                after: Duration::from_secs(30),
                min_level: Some(2),
                add_skills: vec![SkillRequirement::new("t", 4)],
            }]
        );
    }

    #[test]
    fn max_length_refuses_the_call_past_it() {
        let acd = acd("max_length = 1\n");
        let now = Instant::now();
        enqueue(&acd, now, 1, 0);
        let second = acd
            .enqueue(
                now,
                CallRequest {
                    id: CallId(2),
                    queue: "q".into(),
                    priority: 0,
                    preferred_agent: None,
                    waiting_since: None,
                    preferred_wait: None,
                },
            )
            .expect("answered with actions");
        assert!(
            second.iter().any(|action| matches!(
                action,
                acd::Action::Rejected {
                    reason: acd::RejectReason::QueueFull,
                    ..
                }
            )),
            "{second:?}"
        );
        assert_eq!(acd.queue(&"q".into()).map(|q| q.waiting), Some(1));
    }

    #[test]
    fn initial_handle_time_s_sets_the_first_wait_estimates() {
        let estimate = |queue_keys: &str| {
            let acd = acd(queue_keys);
            enqueue(&acd, Instant::now(), 1, 0);
            acd.position(CallId(1)).expect("waiting").1
        };
        assert_eq!(estimate(""), Duration::from_secs(180), "the default");
        assert_eq!(
            estimate("initial_handle_time_s = 45\n"),
            Duration::from_secs(45)
        );
    }

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
            waiting_since: None,
            preferred_wait: None,
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
