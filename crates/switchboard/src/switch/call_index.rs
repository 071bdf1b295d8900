//! Every call in progress and every way a message finds its call: the trunk INVITE's server
//! transaction, the trunk leg's Call-ID, the Call-ID of each agent INVITE Switchboard placed,
//! the Call-ID of each supervisor's call into it.
//! The maps change only through these methods, so a call that is removed takes all its routes
//! with it and no teardown path can leave one behind.

use super::call::{Call, CallNumber};
use sip::transaction::TransactionKey;
use std::collections::HashMap;

/// The calls and their routing maps.
#[derive(Debug, Default)]
pub struct CallIndex {
    calls: HashMap<CallNumber, Call>,
    by_server_txn: HashMap<TransactionKey, CallNumber>,
    by_trunk_call_id: HashMap<String, CallNumber>,
    by_agent_call_id: HashMap<String, CallNumber>,
    by_monitor_call_id: HashMap<String, CallNumber>,
}

impl CallIndex {
    /// Adds a new call, routed by its trunk INVITE's transaction and its trunk Call-ID.
    pub fn insert(&mut self, call: Call) {
        self.by_server_txn
            .insert(call.trunk_leg.server_key.clone(), call.id);
        self.by_trunk_call_id
            .insert(call.trunk_leg.dialog.call_id.clone(), call.id);
        self.calls.insert(call.id, call);
    }

    /// Removes a call and every route to it (its current agent leg's included).
    pub fn remove(&mut self, id: &CallNumber) -> Option<Call> {
        let call = self.calls.remove(id)?;
        self.by_server_txn.remove(&call.trunk_leg.server_key);
        self.by_trunk_call_id.remove(&call.trunk_leg.dialog.call_id);
        if let Some(leg) = &call.agent_leg {
            self.forget_agent_leg(leg.call_id());
        }
        for monitor in &call.monitors {
            self.by_monitor_call_id.remove(&monitor.call_id);
        }
        Some(call)
    }

    /// Routes messages with this agent-leg Call-ID to call `id`.
    pub fn route_agent_leg(&mut self, call_id: String, id: CallNumber) {
        self.by_agent_call_id.insert(call_id, id);
    }

    /// Stops routing an agent leg's messages (the attempt is over or handed away).
    pub fn forget_agent_leg(&mut self, call_id: &str) {
        self.by_agent_call_id.remove(call_id);
    }

    /// Routes a supervisor's dialog (by its Call-ID) to call `id`.
    pub fn route_monitor(&mut self, call_id: String, id: CallNumber) {
        self.by_monitor_call_id.insert(call_id, id);
    }

    /// Stops routing a supervisor's dialog (the supervisor left).
    pub fn forget_monitor(&mut self, call_id: &str) {
        self.by_monitor_call_id.remove(call_id);
    }

    /// The call a supervisor's dialog with this Call-ID watches.
    pub fn by_monitor_call_id(&self, call_id: &str) -> Option<CallNumber> {
        self.by_monitor_call_id.get(call_id).copied()
    }

    /// The call whose trunk INVITE is this server transaction.
    pub fn by_server_txn(&self, key: &TransactionKey) -> Option<CallNumber> {
        self.by_server_txn.get(key).copied()
    }

    /// The call whose trunk leg has this Call-ID.
    pub fn by_trunk_call_id(&self, call_id: &str) -> Option<CallNumber> {
        self.by_trunk_call_id.get(call_id).copied()
    }

    /// The call one of whose agent legs has this Call-ID.
    pub fn by_agent_call_id(&self, call_id: &str) -> Option<CallNumber> {
        self.by_agent_call_id.get(call_id).copied()
    }

    /// A call by id.
    pub fn get(&self, id: &CallNumber) -> Option<&Call> {
        self.calls.get(id)
    }

    /// A call by id, to change it (its routes are not changed this way).
    pub fn get_mut(&mut self, id: &CallNumber) -> Option<&mut Call> {
        self.calls.get_mut(id)
    }

    /// Whether call `id` is in progress.
    pub fn contains_key(&self, id: &CallNumber) -> bool {
        self.calls.contains_key(id)
    }

    /// Every call.
    pub fn values(&self) -> impl Iterator<Item = &Call> {
        self.calls.values()
    }

    /// Every call's id.
    pub fn keys(&self) -> impl Iterator<Item = &CallNumber> {
        self.calls.keys()
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// No call is in progress.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Routes held, for tests that check nothing is left behind.
    #[cfg(test)]
    pub fn routes(&self) -> usize {
        self.by_server_txn.len()
            + self.by_trunk_call_id.len()
            + self.by_agent_call_id.len()
            + self.by_monitor_call_id.len()
    }
}
