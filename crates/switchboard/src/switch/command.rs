//! Changes requested from outside the SIP path (HTTP API, phone feature codes) that must run
//! on the core because the ACD may answer them with offers to place.

use super::Switch;
use acd::{AcdError, AgentId};
use std::time::Instant;

/// An agent state an agent or supervisor asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedState {
    /// Ready for calls (logs the agent in if needed).
    Ready,
    /// Not ready, with a configured reason.
    NotReady(String),
    /// Logged out.
    LoggedOut,
}

impl Switch {
    /// Applies a state change for `agent` and runs whatever the ACD does in response (an
    /// agent becoming Ready may be offered a waiting call at once). During a call or wrap-up
    /// the ACD remembers the change and applies it when the agent is free.
    pub fn set_agent_state(
        &mut self,
        now: Instant,
        agent: &str,
        state: RequestedState,
    ) -> Result<(), AcdError> {
        let id = AgentId::from(agent);
        if self.acd.agent(&id).is_none() {
            return Err(AcdError::UnknownAgent(id));
        }
        let logged_out = self
            .acd
            .agent(&id)
            .is_some_and(|a| a.state == acd::AgentState::LoggedOut);
        tracing::info!(agent, ?state, "agent state change requested");
        let actions = match state {
            RequestedState::Ready if logged_out => self.acd.login(now, &id, true)?,
            RequestedState::Ready => self.acd.set_ready(now, &id)?,
            RequestedState::NotReady(reason) => {
                if logged_out {
                    let mut actions = self.acd.login(now, &id, false)?;
                    actions.extend(self.acd.set_not_ready(now, &id, &reason)?);
                    actions
                } else {
                    self.acd.set_not_ready(now, &id, &reason)?
                }
            }
            RequestedState::LoggedOut => self.acd.logout(now, &id)?,
        };
        self.apply_acd(now, actions);
        Ok(())
    }
}
