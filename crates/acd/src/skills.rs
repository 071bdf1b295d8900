//! Skill names turned into small integers, and queue requirements compiled into per-stage
//! eligibility rules so that "can this agent serve that call" is a few integer compares.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{QueueConfig, SkillRequirement};
use crate::ids::Skill;

/// Index of a skill that some queue mentions.
pub(crate) type SkillIdx = u32;

/// The skills the queue configuration mentions; fixed after start, so it needs no lock.
/// Agent skills no queue mentions cannot influence matching and are not interned.
#[derive(Debug, Default)]
pub(crate) struct SkillTable {
    index: HashMap<Arc<str>, SkillIdx>,
}

impl SkillTable {
    /// Interns a skill named by the configuration.
    pub(crate) fn intern(&mut self, skill: &Skill) -> SkillIdx {
        let next = self.index.len() as SkillIdx;
        *self.index.entry(Arc::from(skill.as_str())).or_insert(next)
    }

    /// The index of a skill, if any queue mentions it.
    pub(crate) fn get(&self, skill: &Skill) -> Option<SkillIdx> {
        self.index.get(skill.as_str()).copied()
    }

    /// How many skills are interned.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// An agent's known skills as (index, level), sorted by index for binary search.
    pub(crate) fn profile(&self, skills: &[(Skill, u8)]) -> SkillProfile {
        let mut known: Vec<(SkillIdx, u8)> = skills
            .iter()
            .filter_map(|(skill, level)| self.get(skill).map(|idx| (idx, *level)))
            .collect();
        known.sort_unstable();
        SkillProfile(known)
    }
}

/// An agent's levels in the skills queues care about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SkillProfile(pub(crate) Vec<(SkillIdx, u8)>);

impl SkillProfile {
    fn level(&self, skill: SkillIdx) -> Option<u8> {
        self.0
            .binary_search_by_key(&skill, |&(idx, _)| idx)
            .ok()
            .map(|pos| self.0[pos].1)
    }
}

/// Who may serve a queue's calls at each expansion stage; stage 0 is the base requirement and
/// stage `k` applies once the call has reached step `k`. Later stages only widen the pool.
#[derive(Debug)]
pub(crate) struct Eligibility {
    /// The queue's required skills with their configured minimum levels.
    base: Vec<(SkillIdx, u8)>,
    /// Per stage: the cap on minimum levels so far (lowest step `min_level`).
    level_cap: Vec<Option<u8>>,
    /// Per stage: alternative single skills accumulated so far.
    alternatives: Vec<Vec<(SkillIdx, u8)>>,
}

impl Eligibility {
    /// Compiles a queue's requirement and expansion steps, interning every skill named.
    pub(crate) fn compile(queue: &QueueConfig, table: &mut SkillTable) -> Self {
        let mut intern = |req: &SkillRequirement| (table.intern(&req.skill), req.min_level);
        let base = queue.required.iter().map(&mut intern).collect();
        let mut level_cap = vec![None];
        let mut alternatives = vec![Vec::new()];
        for step in &queue.expansion {
            let previous_cap: Option<u8> = *level_cap.last().unwrap_or(&None);
            let cap = match (previous_cap, step.min_level) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            level_cap.push(cap);
            let mut alts: Vec<(SkillIdx, u8)> = alternatives.last().cloned().unwrap_or_default();
            alts.extend(step.add_skills.iter().map(&mut intern));
            alternatives.push(alts);
        }
        Self {
            base,
            level_cap,
            alternatives,
        }
    }

    /// Number of stages (expansion steps + 1).
    pub(crate) fn stages(&self) -> usize {
        self.level_cap.len()
    }

    /// Every skill index this queue can accept at any stage.
    pub(crate) fn mentioned_skills(&self) -> impl Iterator<Item = SkillIdx> + '_ {
        self.base
            .iter()
            .chain(self.alternatives.iter().flatten())
            .map(|&(idx, _)| idx)
    }

    /// Whether the queue accepts any agent at stage 0 (no required skill).
    pub(crate) fn is_open(&self) -> bool {
        self.base.is_empty()
    }

    /// Whether an agent with `profile` may serve a call at `stage`.
    pub(crate) fn admits(&self, profile: &SkillProfile, stage: usize) -> bool {
        let Some(cap) = self.level_cap.get(stage) else {
            return false;
        };
        let meets_base = self.base.iter().all(|&(skill, min)| {
            let min = cap.map_or(min, |cap| min.min(cap));
            profile.level(skill).is_some_and(|level| level >= min)
        });
        meets_base
            || self.alternatives[stage]
                .iter()
                .any(|&(skill, min)| profile.level(skill).is_some_and(|level| level >= min))
    }

    /// The first stage at which the agent qualifies, if any.
    pub(crate) fn first_stage(&self, profile: &SkillProfile) -> Option<usize> {
        (0..self.stages()).find(|&stage| self.admits(profile, stage))
    }

    /// Proficiency used by the most-skilled strategy: the sum of the agent's levels in the
    /// required skills, plus its best level in an alternative skill.
    pub(crate) fn proficiency(&self, profile: &SkillProfile) -> u32 {
        let base: u32 = self
            .base
            .iter()
            .filter_map(|&(skill, _)| profile.level(skill))
            .map(u32::from)
            .sum();
        let alternative = self
            .alternatives
            .last()
            .into_iter()
            .flatten()
            .filter_map(|&(skill, _)| profile.level(skill))
            .max()
            .map_or(0, u32::from);
        base + alternative
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ExpansionStep;

    fn queue() -> QueueConfig {
        let mut queue = QueueConfig::new("support");
        queue.required = vec![
            SkillRequirement::new("english", 7),
            SkillRequirement::new("tech", 6),
        ];
        queue.expansion = vec![
            ExpansionStep {
                after: Duration::from_secs(30),
                min_level: Some(5),
                add_skills: vec![],
            },
            ExpansionStep {
                after: Duration::from_secs(60),
                min_level: None,
                add_skills: vec![SkillRequirement::new("billing", 3)],
            },
        ];
        queue
    }

    fn profile(table: &SkillTable, skills: &[(&str, u8)]) -> SkillProfile {
        let skills: Vec<(Skill, u8)> = skills.iter().map(|(s, l)| (Skill::new(s), *l)).collect();
        table.profile(&skills)
    }

    #[test]
    fn stages_widen_by_level_then_by_added_skill() {
        let mut table = SkillTable::default();
        let rule = Eligibility::compile(&queue(), &mut table);
        assert_eq!(rule.stages(), 3);
        let expert = profile(&table, &[("english", 9), ("tech", 8)]);
        let junior = profile(&table, &[("english", 5), ("tech", 5)]);
        let biller = profile(&table, &[("billing", 4), ("cooking", 10)]);
        let nobody = profile(&table, &[("english", 10)]);
        assert_eq!(rule.first_stage(&expert), Some(0));
        assert_eq!(rule.first_stage(&junior), Some(1));
        assert_eq!(rule.first_stage(&biller), Some(2));
        assert_eq!(rule.first_stage(&nobody), None);
        // Widening never narrows: whoever qualifies at a stage qualifies at every later one.
        for stage in 0..3 {
            assert!(rule.admits(&expert, stage));
        }
        assert!(!rule.admits(&junior, 0) && rule.admits(&junior, 2));
        assert!(!rule.admits(&expert, 3), "no stage beyond the last step");
    }

    #[test]
    fn proficiency_sums_required_levels() {
        let mut table = SkillTable::default();
        let rule = Eligibility::compile(&queue(), &mut table);
        assert_eq!(
            rule.proficiency(&profile(&table, &[("english", 9), ("tech", 8)])),
            17
        );
        assert_eq!(rule.proficiency(&profile(&table, &[("billing", 4)])), 4);
    }

    #[test]
    fn open_queue_admits_everyone() {
        let mut table = SkillTable::default();
        let rule = Eligibility::compile(&QueueConfig::new("any"), &mut table);
        assert!(rule.is_open());
        assert_eq!(rule.first_stage(&SkillProfile::default()), Some(0));
    }
}
