//! Configuration of queues, not-ready reasons and agents, and its validation.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::error::AcdError;
use crate::ids::{AgentId, QueueId, Skill};

/// Lowest proficiency an agent can have in a skill.
pub const MIN_SKILL_LEVEL: u8 = 1;
/// Highest proficiency an agent can have in a skill.
pub const MAX_SKILL_LEVEL: u8 = 10;
/// Longest duration accepted anywhere in a queue's configuration.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);
/// Reason given to an agent who logs in without being ready; always allowed.
pub const LOGIN_REASON: &str = "login";
/// Reason an agent is not offered calls while on a call out they dialled; always allowed.
pub const OUTBOUND_REASON: &str = "outbound-call";
/// Reason an agent is not offered calls while a colleague consults them on a call (attended
/// transfer or conference); always allowed.
pub const CONSULT_REASON: &str = "consult";
/// Reason a supervisor is not offered calls while listening to, whispering in or barging into
/// a call; always allowed.
pub const SUPERVISING_REASON: &str = "supervising";

/// How long, by default, a call is not re-offered to an agent whose offer of it failed
/// (Asterisk's queue `retry` default).
pub const DEFAULT_OFFER_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Everything the ACD needs to know at start; queues cannot change afterwards, agents can.
#[derive(Clone, Debug)]
pub struct AcdConfig {
    /// The queues calls can be enqueued to.
    pub queues: Vec<QueueConfig>,
    /// Reasons an agent may give for being not ready (break, lunch, training, ...).
    pub not_ready_reasons: Vec<String>,
    /// Reason an agent gets after a ring-no-answer; `None` puts the agent back to Ready.
    /// When set it must be one of `not_ready_reasons`.
    pub missed_call_reason: Option<String>,
    /// After an offer fails (no answer, busy, rejected, unreachable), the call is not offered
    /// to that agent again for this long; other agents may take it at once. Positive, at most
    /// [`MAX_DURATION`]. An `Incompatible` failure excludes the agent for the whole stay.
    pub offer_retry_after: Duration,
}

impl Default for AcdConfig {
    /// No queues, no reasons, no missed-call reason, [`DEFAULT_OFFER_RETRY_AFTER`].
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            not_ready_reasons: Vec::new(),
            missed_call_reason: None,
            offer_retry_after: DEFAULT_OFFER_RETRY_AFTER,
        }
    }
}

/// A skill with the lowest proficiency that qualifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkillRequirement {
    /// The skill needed.
    pub skill: Skill,
    /// The lowest level accepted, 1 to 10.
    pub min_level: u8,
}

impl SkillRequirement {
    /// A requirement of `skill` at `min_level` or better.
    pub fn new(skill: impl Into<Skill>, min_level: u8) -> Self {
        Self {
            skill: skill.into(),
            min_level,
        }
    }
}

/// How the queue chooses among several Ready agents when a call arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The agent idle (Ready) the longest.
    #[default]
    LongestIdle,
    /// The agent with the highest proficiency in the queue's skills, then longest idle.
    MostSkilled,
    /// The agent this queue offered a call to least recently, which rotates through agents.
    RoundRobin,
    /// The agent who has answered the fewest calls (since it was added), then longest idle.
    FewestCalls,
}

/// A widening of the agent pool once a call has waited `after` in the queue.
///
/// Steps only ever widen: a call that has reached a step is servable by every agent who could
/// serve it before, plus those the step lets in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpansionStep {
    /// Wait in this queue after which the step applies.
    pub after: Duration,
    /// Lower the minimum level of every required skill to this (never raises it).
    pub min_level: Option<u8>,
    /// Agents holding any one of these skills (at its level) also qualify from now on.
    pub add_skills: Vec<SkillRequirement>,
}

/// One queue: who may serve it, in what order, and what happens when it is full or slow.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// The queue's identity.
    pub id: QueueId,
    /// Skills an agent needs, every one of them, at or above its level.
    pub required: Vec<SkillRequirement>,
    /// How a Ready agent is chosen for an arriving call.
    pub strategy: Strategy,
    /// Longest a call waits here before it overflows (if `overflow` is set) or times out.
    pub max_wait: Option<Duration>,
    /// Most calls waiting at once; a call arriving at a full queue overflows or is rejected.
    pub max_length: Option<usize>,
    /// Queue that takes calls on max wait or when this queue is full.
    pub overflow: Option<QueueId>,
    /// Widening of the agent pool over time, in increasing `after` order.
    pub expansion: Vec<ExpansionStep>,
    /// Answer-within threshold for the service level (reported with every answer).
    pub service_level: Duration,
    /// Wrap-up time after each call; zero makes the agent available right away.
    pub wrap_up: Duration,
    /// Longest a call with a preferred agent waits for that agent before anyone may take it.
    pub preferred_agent_wait: Duration,
    /// Waiting time worth one priority point (aging), or `None` for strict priority.
    ///
    /// A call of priority `p` that has waited `w` ranks like a new call of priority
    /// `p + w / priority_aging`, so low-priority calls move up instead of starving.
    pub priority_aging: Option<Duration>,
    /// Handle time assumed for the estimated wait until real calls have been measured.
    pub initial_handle_time: Duration,
}

impl QueueConfig {
    /// A queue with the given id, no skill requirement and the documented defaults:
    /// longest-idle, no max wait or length, 20 s service level, no wrap-up, 30 s preferred-agent
    /// wait, one priority point per 30 s of waiting, 3 min initial handle time.
    pub fn new(id: impl Into<QueueId>) -> Self {
        Self {
            id: id.into(),
            required: Vec::new(),
            strategy: Strategy::LongestIdle,
            max_wait: None,
            max_length: None,
            overflow: None,
            expansion: Vec::new(),
            service_level: Duration::from_secs(20),
            wrap_up: Duration::ZERO,
            preferred_agent_wait: Duration::from_secs(30),
            priority_aging: Some(Duration::from_secs(30)),
            initial_handle_time: Duration::from_secs(180),
        }
    }
}

/// An agent's static description; its state is managed by the ACD.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The agent's identity.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Skills with proficiency 1 to 10; each skill at most once.
    pub skills: Vec<(Skill, u8)>,
    /// Concurrent voice calls; only 1 is supported.
    pub max_calls: u32,
}

impl AgentConfig {
    /// A voice agent (one call at a time) with the given skills.
    pub fn new(id: impl Into<AgentId>, name: impl Into<String>, skills: Vec<(Skill, u8)>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            skills,
            max_calls: 1,
        }
    }

    /// Checks levels, duplicates and capacity.
    pub(crate) fn validate(&self) -> Result<(), AcdError> {
        let invalid = |reason: String| AcdError::InvalidAgent {
            agent: self.id.clone(),
            reason,
        };
        if self.max_calls != 1 {
            return Err(invalid(format!(
                "max_calls is {}, only 1 concurrent voice call is supported",
                self.max_calls
            )));
        }
        let mut seen = HashSet::new();
        for (skill, level) in &self.skills {
            if !(MIN_SKILL_LEVEL..=MAX_SKILL_LEVEL).contains(level) {
                return Err(invalid(format!(
                    "skill {skill} has level {level}, expected {MIN_SKILL_LEVEL}..={MAX_SKILL_LEVEL}"
                )));
            }
            if !seen.insert(skill) {
                return Err(invalid(format!("skill {skill} is listed twice")));
            }
        }
        Ok(())
    }
}

fn check_level(queue: &QueueId, what: &str, level: u8) -> Result<(), AcdError> {
    if (MIN_SKILL_LEVEL..=MAX_SKILL_LEVEL).contains(&level) {
        Ok(())
    } else {
        Err(AcdError::InvalidQueue {
            queue: queue.clone(),
            reason: format!(
                "{what} level {level} is outside {MIN_SKILL_LEVEL}..={MAX_SKILL_LEVEL}"
            ),
        })
    }
}

impl AcdConfig {
    /// Rejects duplicate or dangling ids, overflow loops, bad levels and unknown reasons.
    pub(crate) fn validate(&self) -> Result<(), AcdError> {
        let mut ids = HashMap::new();
        for (index, queue) in self.queues.iter().enumerate() {
            if ids.insert(queue.id.clone(), index).is_some() {
                return Err(AcdError::DuplicateQueue(queue.id.clone()));
            }
        }
        for queue in &self.queues {
            validate_queue(queue, &ids)?;
        }
        // Overflow may chain but must not loop: a full loop would bounce a call for ever.
        for queue in &self.queues {
            let mut hops = 0;
            let mut next = queue.overflow.as_ref();
            while let Some(target) = next {
                hops += 1;
                if target == &queue.id || hops > self.queues.len() {
                    return Err(AcdError::OverflowCycle(queue.id.clone()));
                }
                next = ids
                    .get(target)
                    .and_then(|&index| self.queues[index].overflow.as_ref());
            }
        }
        let mut reasons = HashSet::new();
        for reason in &self.not_ready_reasons {
            if reason.trim().is_empty() {
                return Err(AcdError::InvalidReasons(
                    "a not-ready reason is empty".into(),
                ));
            }
            if !reasons.insert(reason.as_str()) {
                return Err(AcdError::InvalidReasons(format!(
                    "reason {reason:?} is listed twice"
                )));
            }
        }
        if let Some(missed) = &self.missed_call_reason {
            if !reasons.contains(missed.as_str()) {
                return Err(AcdError::InvalidReasons(format!(
                    "missed-call reason {missed:?} is not one of the not-ready reasons"
                )));
            }
        }
        // Zero would let a failed offer go straight back to the same phone: the INVITE storm.
        if self.offer_retry_after.is_zero() || self.offer_retry_after > MAX_DURATION {
            return Err(AcdError::InvalidOfferRetry(self.offer_retry_after));
        }
        Ok(())
    }
}

pub(crate) fn validate_queue(
    queue: &QueueConfig,
    ids: &HashMap<QueueId, usize>,
) -> Result<(), AcdError> {
    let invalid = |reason: String| AcdError::InvalidQueue {
        queue: queue.id.clone(),
        reason,
    };
    let mut seen = HashSet::new();
    for requirement in &queue.required {
        check_level(&queue.id, "required skill", requirement.min_level)?;
        if !seen.insert(&requirement.skill) {
            return Err(invalid(format!(
                "skill {} is required twice",
                requirement.skill
            )));
        }
    }
    if let Some(target) = &queue.overflow {
        if !ids.contains_key(target) {
            return Err(AcdError::UnknownOverflowQueue {
                queue: queue.id.clone(),
                target: target.clone(),
            });
        }
    }
    if queue.expansion.len() > usize::from(u8::MAX) {
        return Err(invalid("more than 255 expansion steps".into()));
    }
    let mut previous = Duration::ZERO;
    for step in &queue.expansion {
        if step.after < previous {
            return Err(invalid(
                "expansion steps must be in increasing `after` order".into(),
            ));
        }
        previous = step.after;
        if let Some(level) = step.min_level {
            check_level(&queue.id, "expansion", level)?;
        }
        for added in &step.add_skills {
            check_level(&queue.id, "expansion skill", added.min_level)?;
        }
    }
    // Deadlines are `now + duration`; an absurd duration must be refused here rather than
    // overflow an `Instant` later.
    let durations = [
        ("max_wait", queue.max_wait),
        ("service_level", Some(queue.service_level)),
        ("wrap_up", Some(queue.wrap_up)),
        ("preferred_agent_wait", Some(queue.preferred_agent_wait)),
        ("priority_aging", queue.priority_aging),
        ("initial_handle_time", Some(queue.initial_handle_time)),
    ];
    let steps = queue
        .expansion
        .iter()
        .map(|step| ("expansion after", Some(step.after)));
    for (name, duration) in durations.into_iter().chain(steps) {
        if duration.is_some_and(|d| d > MAX_DURATION) {
            return Err(invalid(format!("{name} is longer than a year")));
        }
    }
    if queue.priority_aging == Some(Duration::ZERO) {
        return Err(invalid(
            "priority_aging must be positive (use None for strict priority)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(queues: Vec<QueueConfig>) -> AcdConfig {
        AcdConfig {
            queues,
            not_ready_reasons: vec!["break".into(), "missed".into()],
            missed_call_reason: Some("missed".into()),
            offer_retry_after: DEFAULT_OFFER_RETRY_AFTER,
        }
    }

    #[test]
    fn accepts_an_overflow_chain() {
        let mut a = QueueConfig::new("a");
        a.overflow = Some("b".into());
        let mut b = QueueConfig::new("b");
        b.overflow = Some("c".into());
        let c = QueueConfig::new("c");
        assert!(config(vec![a, b, c]).validate().is_ok());
    }

    #[test]
    fn rejects_unknown_overflow_target() {
        let mut a = QueueConfig::new("a");
        a.overflow = Some("nowhere".into());
        assert!(matches!(
            config(vec![a]).validate(),
            Err(AcdError::UnknownOverflowQueue { .. })
        ));
    }

    #[test]
    fn rejects_overflow_loops() {
        let mut a = QueueConfig::new("a");
        a.overflow = Some("b".into());
        let mut b = QueueConfig::new("b");
        b.overflow = Some("a".into());
        assert!(matches!(
            config(vec![a, b]).validate(),
            Err(AcdError::OverflowCycle(_))
        ));
        let mut selfish = QueueConfig::new("s");
        selfish.overflow = Some("s".into());
        assert!(matches!(
            config(vec![selfish]).validate(),
            Err(AcdError::OverflowCycle(_))
        ));
    }

    #[test]
    fn rejects_duplicate_queues_bad_levels_and_unsorted_steps() {
        assert!(matches!(
            config(vec![QueueConfig::new("a"), QueueConfig::new("a")]).validate(),
            Err(AcdError::DuplicateQueue(_))
        ));
        let mut bad_level = QueueConfig::new("a");
        bad_level.required = vec![SkillRequirement::new("x", 11)];
        assert!(matches!(
            config(vec![bad_level]).validate(),
            Err(AcdError::InvalidQueue { .. })
        ));
        let mut unsorted = QueueConfig::new("a");
        let step = |secs| ExpansionStep {
            after: Duration::from_secs(secs),
            min_level: Some(3),
            add_skills: vec![],
        };
        unsorted.expansion = vec![step(60), step(30)];
        assert!(matches!(
            config(vec![unsorted]).validate(),
            Err(AcdError::InvalidQueue { .. })
        ));
    }

    #[test]
    fn rejects_durations_that_would_overflow_deadlines() {
        let mut forever = QueueConfig::new("a");
        forever.max_wait = Some(Duration::MAX);
        assert!(matches!(
            config(vec![forever]).validate(),
            Err(AcdError::InvalidQueue { .. })
        ));
    }

    #[test]
    fn offer_retry_must_be_positive_and_at_most_a_year() {
        let mut cfg = config(vec![]);
        assert!(cfg.validate().is_ok());
        cfg.offer_retry_after = Duration::ZERO;
        assert_eq!(
            cfg.validate(),
            Err(AcdError::InvalidOfferRetry(Duration::ZERO))
        );
        cfg.offer_retry_after = MAX_DURATION + Duration::from_secs(1);
        assert!(matches!(
            cfg.validate(),
            Err(AcdError::InvalidOfferRetry(_))
        ));
        assert_eq!(
            AcdConfig::default().offer_retry_after,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn missed_reason_must_be_configured() {
        let mut cfg = config(vec![]);
        cfg.missed_call_reason = Some("nap".into());
        assert!(matches!(cfg.validate(), Err(AcdError::InvalidReasons(_))));
    }

    #[test]
    fn agent_validation_checks_levels_duplicates_and_capacity() {
        let ok = AgentConfig::new("a", "A", vec![("x".into(), 10)]);
        assert!(ok.validate().is_ok());
        let zero = AgentConfig::new("a", "A", vec![("x".into(), 0)]);
        assert!(zero.validate().is_err());
        let twice = AgentConfig::new("a", "A", vec![("x".into(), 2), ("x".into(), 3)]);
        assert!(twice.validate().is_err());
        let mut multi = ok.clone();
        multi.max_calls = 2;
        assert!(multi.validate().is_err());
    }
}
