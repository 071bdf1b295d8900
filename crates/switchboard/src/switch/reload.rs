//! Applying a reloaded configuration to call control, between two events: the ACD's agents
//! and queues are updated in place, the agent lookup tables rebuilt, and the configuration
//! everything else reads per call (numbers, IVR menus, trunks and their ACLs, schedules, queue
//! announcements, ring timeout ...) swapped. Calls in progress keep what they hold: an IVR
//! session its menu, a queued call its place, a connected call its legs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use acd::{AgentId, QueueId};

use super::{AgentEntry, Switch};
use crate::config::diff::{Change, ConfigChange};
use crate::config::Config;

impl Switch {
    /// Applies `changes` (the difference from the running configuration to `config`, which
    /// the loader has checked and which needs no restart), and the prompt files read again.
    pub fn reload(
        &mut self,
        now: Instant,
        config: Arc<Config>,
        changes: &[ConfigChange],
        prompts: Arc<crate::prompt_library::PromptLibrary>,
    ) {
        // What is playing now keeps its clips (they are shared, not borrowed from here).
        self.prompts = prompts;
        let named = |section: &'static str, change: Change| -> Vec<String> {
            changes
                .iter()
                .filter(|c| c.section == section && c.change == change)
                .map(|c| c.name.clone())
                .collect()
        };
        let acd_queues = crate::acd_config::acd_config(&config).queues;
        // New queues first (a changed queue may overflow into one), changed queues next, so
        // that none still overflows into a queue removed below.
        let mut added = named("queue", Change::Added);
        // A new queue may overflow into another new one: add the targets first.
        added.sort_by_key(|name| overflow_depth(&config, name));
        for name in added {
            let Some(queue) = acd_queues.iter().find(|q| q.id.as_str() == name) else {
                continue;
            };
            match self.acd.add_queue(now, queue) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::warn!(queue = %name, %error, "queue not added"),
            }
        }
        for name in named("queue", Change::Changed) {
            let Some(queue) = acd_queues.iter().find(|q| q.id.as_str() == name) else {
                continue;
            };
            match self.acd.update_queue(now, queue) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::warn!(queue = %name, %error, "queue not updated"),
            }
        }
        let acd_agents = crate::acd_config::agent_configs(&config);
        let mut upserted = named("agent", Change::Added);
        upserted.extend(named("agent", Change::Changed));
        for name in upserted {
            let Some(agent) = acd_agents.iter().find(|a| a.id.as_str() == name) else {
                continue;
            };
            self.retiring_agents.remove(&agent.id);
            match self.acd.upsert_agent(now, agent.clone()) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::warn!(agent = %name, %error, "agent not updated"),
            }
        }
        self.rebuild_agent_tables(&config);
        self.index = super::config_index::ConfigIndex::of(&config);
        self.config = config;
        for name in named("agent", Change::Removed) {
            self.retire_agent(now, AgentId::from(name.as_str()));
        }
        for name in named("queue", Change::Removed) {
            match self.acd.retire_queue(now, &QueueId::from(name.as_str())) {
                Ok(actions) => {
                    tracing::info!(queue = %name, "queue removed: its waiting calls overflow or time out");
                    self.apply_acd(now, actions)
                }
                Err(error) => tracing::warn!(queue = %name, %error, "queue not removed"),
            }
        }
    }

    fn rebuild_agent_tables(&mut self, config: &Config) {
        let mut by_user = HashMap::new();
        let mut by_id = HashMap::new();
        for agent in &config.agents {
            let entry = AgentEntry::from_config(agent);
            by_user.insert(agent.sip_user.clone(), entry.clone());
            by_id.insert(entry.id.clone(), entry);
        }
        self.agents_by_user = by_user;
        self.agents_by_id = by_id;
    }

    /// A removed agent gets no new offers from now on; a call in progress goes on, and the
    /// agent leaves the ACD once logged out (at once when idle, after the call otherwise).
    fn retire_agent(&mut self, now: Instant, agent: AgentId) {
        tracing::info!(agent = %agent, "agent removed: logged out after any current call");
        match self.acd.logout(now, &agent) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(%error, "removed agent's logout"),
        }
        match self.acd.remove_agent(now, &agent) {
            Ok(actions) => self.apply_acd(now, actions),
            // On a call: the logout waits for its end; removed then (see below).
            Err(_) => {
                self.retiring_agents.insert(agent);
            }
        }
    }

    /// A removed agent that finished its last call and logged out leaves the ACD.
    pub(super) fn forget_retired_agent(
        &mut self,
        now: Instant,
        agent: &AgentId,
        to: &acd::AgentState,
    ) -> Vec<acd::Action> {
        if *to != acd::AgentState::LoggedOut || !self.retiring_agents.remove(agent) {
            return Vec::new();
        }
        tracing::info!(agent = %agent, "removed agent's last call ended: it leaves the ACD");
        self.acd.remove_agent(now, agent).unwrap_or_default()
    }
}

/// How many overflow hops follow queue `name` (the loader refuses loops). A target is always
/// fewer hops from the end than the queues that overflow into it, so adding in this order
/// adds every target first.
fn overflow_depth(config: &Config, name: &str) -> usize {
    let mut depth = 0;
    let mut next = config.queue(name).and_then(|q| q.overflow.as_deref());
    while let Some(target) = next {
        depth += 1;
        if depth > config.queues.len() {
            break;
        }
        next = config.queue(target).and_then(|q| q.overflow.as_deref());
    }
    depth
}
