//! One agent's call out, and the index that finds it from each message.
//!
//! The mirror image of an inbound [`super::super::call::Call`]: the agent's phone is the leg
//! where Switchboard is the UAS (its INVITE came in), the carrier the leg where Switchboard is
//! the UAC. In the media session the phone takes the offerer's place (`Leg::Trunk`) and the
//! carrier the answerer's (`Leg::Agent`), so the inbound passthrough anchoring applies as is.

use super::super::call::CallNumber;
use super::super::media_plane::CallMedia;
use super::super::uac_leg::UacLeg;
use acd::AgentId;
use sip::dialog::Dialog;
use sip::rsip::Request;
use sip::transaction::TransactionKey;
use std::collections::HashMap;
use std::time::Instant;

/// The agent's phone: its INVITE and the dialog Switchboard answers it in.
#[derive(Debug)]
pub struct PhoneLeg {
    pub invite: Request,
    pub server_key: TransactionKey,
    pub local_tag: String,
    pub dialog: Dialog,
    /// A final response has been sent on the INVITE.
    pub finalized: bool,
    /// A 180 has been sent (one is enough).
    pub ringing_sent: bool,
}

/// One INVITE to a carrier (a trunk of the route, possibly resent with credentials).
#[derive(Debug)]
pub struct CarrierLeg {
    pub trunk: String,
    /// Counts every INVITE of the call, so a late answer to an older one is recognised.
    pub attempt: u32,
    /// The INVITE, its transaction and, once the carrier answered, the dialog.
    pub uac: UacLeg,
    /// The INVITE already carries credentials: a second challenge is a refusal.
    pub authenticated: bool,
}

impl CarrierLeg {
    pub fn call_id(&self) -> &str {
        self.uac.call_id()
    }
}

/// The agent's state to go back to when the call out ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    Ready,
    NotReady(String),
    /// The agent was not logged in (or busy with an inbound call): nothing to undo.
    Nothing,
}

/// One call out in progress.
#[derive(Debug)]
pub struct OutboundCall {
    pub id: CallNumber,
    pub agent: AgentId,
    /// As the agent dialled it.
    pub dialled: String,
    /// As the carrier is sent it.
    pub sent: String,
    pub caller_id: String,
    /// The route's trunks in failover order, and the next one to try.
    pub trunks: Vec<String>,
    pub next_trunk: usize,
    pub attempts: u32,
    pub phone: PhoneLeg,
    pub carrier: Option<CarrierLeg>,
    /// Carrier legs that ended without connecting, for the record.
    pub failed_legs: Vec<cdr::Leg>,
    pub last_trunk: Option<String>,
    pub media: Option<CallMedia>,
    pub arrived: Instant,
    pub answered: Option<Instant>,
    /// The carrier's answer took telephone-event: the phone's INFO key presses can reach it.
    pub carrier_events: bool,
    pub restore: Restore,
}

/// The calls out and every way a message finds one. The maps change only through these
/// methods, so removing a call takes all its routes with it.
#[derive(Debug, Default)]
pub struct OutboundCalls {
    calls: HashMap<CallNumber, OutboundCall>,
    by_server_txn: HashMap<TransactionKey, CallNumber>,
    by_phone_call_id: HashMap<String, CallNumber>,
    by_carrier_call_id: HashMap<String, CallNumber>,
    /// Calls out started per agent on the UTC day numbered `.0` (days since the epoch).
    started_today: HashMap<AgentId, (u64, u32)>,
    /// Registrations with carriers (`register = true`).
    pub registrations: super::carrier_registration::CarrierRegistrations,
}

impl OutboundCalls {
    pub fn insert(&mut self, call: OutboundCall) {
        self.by_server_txn
            .insert(call.phone.server_key.clone(), call.id);
        self.by_phone_call_id
            .insert(call.phone.dialog.call_id.clone(), call.id);
        self.calls.insert(call.id, call);
    }

    pub fn remove(&mut self, id: CallNumber) -> Option<OutboundCall> {
        let call = self.calls.remove(&id)?;
        self.by_server_txn.remove(&call.phone.server_key);
        self.by_phone_call_id.remove(&call.phone.dialog.call_id);
        self.by_carrier_call_id.retain(|_, call_id| *call_id != id);
        Some(call)
    }

    /// Routes messages of a carrier leg (by its Call-ID) to call `id`.
    pub fn route_carrier_leg(&mut self, call_id: String, id: CallNumber) {
        self.by_carrier_call_id.insert(call_id, id);
    }

    pub fn get(&self, id: CallNumber) -> Option<&OutboundCall> {
        self.calls.get(&id)
    }

    pub fn get_mut(&mut self, id: CallNumber) -> Option<&mut OutboundCall> {
        self.calls.get_mut(&id)
    }

    pub fn by_server_txn(&self, key: &TransactionKey) -> Option<CallNumber> {
        self.by_server_txn.get(key).copied()
    }

    pub fn by_phone_call_id(&self, call_id: &str) -> Option<CallNumber> {
        self.by_phone_call_id.get(call_id).copied()
    }

    pub fn by_carrier_call_id(&self, call_id: &str) -> Option<CallNumber> {
        self.by_carrier_call_id.get(call_id).copied()
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn ids(&self) -> Vec<CallNumber> {
        self.calls.keys().copied().collect()
    }

    /// Calls out `agent` has in progress.
    pub fn of_agent(&self, agent: &AgentId) -> usize {
        self.calls.values().filter(|c| &c.agent == agent).count()
    }

    /// Calls out `agent` started on UTC day `day`.
    pub fn started_on(&self, agent: &AgentId, day: u64) -> u32 {
        match self.started_today.get(agent) {
            Some((counted, n)) if *counted == day => *n,
            _ => 0,
        }
    }

    /// Counts a call out started by `agent` on UTC day `day`.
    pub fn count_start(&mut self, agent: &AgentId, day: u64) {
        let entry = self.started_today.entry(agent.clone()).or_insert((day, 0));
        if entry.0 != day {
            *entry = (day, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daily_count_starts_again_each_day() {
        let mut calls = OutboundCalls::default();
        let agent = AgentId::from("1001");
        calls.count_start(&agent, 10);
        calls.count_start(&agent, 10);
        assert_eq!(calls.started_on(&agent, 10), 2);
        assert_eq!(calls.started_on(&agent, 11), 0);
        calls.count_start(&agent, 11);
        assert_eq!(calls.started_on(&agent, 11), 1);
        assert_eq!(calls.started_on(&AgentId::from("1002"), 11), 0);
    }
}
