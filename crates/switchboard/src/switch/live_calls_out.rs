//! Calls out as `GET /api/calls` and `switchboard_active_calls` see them: agents' own calls
//! out, callbacks and campaign attempts that have legs (the agent rung, the customer dialled
//! or talking), each with `direction: "outbound"`. Built only when asked, from the tables the
//! core task owns; a callback still waiting for an agent is in its queue, not a call.

use super::callback::book::{Callback, OutgoingLeg, Stage};
use super::live_calls::{CallView, LegView};
use super::outbound::call::OutboundCall;
use super::Switch;
use std::time::Instant;

fn leg_state(answered: bool) -> &'static str {
    if answered {
        "answered"
    } else {
        "ringing"
    }
}

impl Switch {
    /// The calls out in progress, as listed by the API.
    pub(super) fn live_calls_out(&self, now: Instant) -> Vec<CallView> {
        let dial_outs = self
            .outbound
            .ids()
            .into_iter()
            .filter_map(|id| self.outbound.get(id))
            .map(|call| dial_out_view(call, now));
        let callbacks = self
            .callbacks
            .ids()
            .into_iter()
            .filter_map(|id| self.callbacks.get(id))
            .filter_map(|callback| callback_view(callback, now));
        dial_outs.chain(callbacks).collect()
    }

    /// Whether call `id` is a call out in progress.
    pub(super) fn is_call_out_in_progress(&self, id: super::call::CallNumber) -> bool {
        self.outbound.get(id).is_some()
            || self.callbacks.get(id).is_some_and(|c| has_legs(&c.stage))
    }

    /// How many calls out are in progress (for `switchboard_active_calls`).
    pub(super) fn calls_out_in_progress(&self) -> usize {
        let callbacks = self
            .callbacks
            .ids()
            .into_iter()
            .filter_map(|id| self.callbacks.get(id))
            .filter(|c| has_legs(&c.stage))
            .count();
        self.outbound.len() + callbacks
    }
}

/// A callback is a call once an agent is rung for it, until it ends or waits again.
fn has_legs(stage: &Stage) -> bool {
    matches!(
        stage,
        Stage::Preview { .. } | Stage::Dialling { .. } | Stage::Connected { .. }
    )
}

fn since(now: Instant, t: Instant) -> f64 {
    now.saturating_duration_since(t).as_secs_f64()
}

/// An agent's own call out: the agent's phone and the carrier leg.
fn dial_out_view(call: &OutboundCall, now: Instant) -> CallView {
    let mut legs = vec![LegView {
        role: "agent",
        party: call.agent.to_string(),
        state: leg_state(call.phone.finalized && call.answered.is_some()),
        mode: None,
    }];
    if let Some(carrier) = &call.carrier {
        legs.push(LegView {
            role: "trunk",
            party: carrier.trunk.clone(),
            state: leg_state(carrier.uac.is_answered()),
            mode: None,
        });
    }
    CallView {
        id: call.id,
        direction: "outbound",
        origin: Some("dial-out"),
        did: call.dialled.clone(),
        caller: call.caller_id.clone(),
        queue: String::new(),
        state: if call.answered.is_some() {
            "connected"
        } else {
            "dialling"
        },
        agent: Some(call.agent.to_string()),
        on_hold: false,
        age_s: since(now, call.arrived),
        wait_s: 0.0,
        talk_s: call.answered.map_or(0.0, |t| since(now, t)),
        priority: 0,
        label: None,
        customer_name: None,
        legs,
        transfers: 0,
    }
}

fn outgoing_leg(role: &'static str, party: String, leg: &OutgoingLeg) -> LegView {
    LegView {
        role,
        party,
        state: leg_state(leg.uac.is_answered()),
        mode: None,
    }
}

/// A callback or campaign attempt with legs: the agent's (rung first), then the customer's.
fn callback_view(callback: &Callback, now: Instant) -> Option<CallView> {
    let (state, agent) = match &callback.stage {
        Stage::Preview { agent } => ("ringing", agent),
        Stage::Dialling { agent } => ("dialling", agent),
        Stage::Connected { agent } => ("connected", agent),
        Stage::Waiting | Stage::RetryAt(_) => return None,
    };
    let mut legs = Vec::new();
    if let Some(leg) = &callback.agent_leg {
        legs.push(outgoing_leg("agent", agent.to_string(), leg));
    }
    if let Some(leg) = &callback.customer_leg {
        legs.push(outgoing_leg(
            "trunk",
            leg.trunk.clone().unwrap_or_default(),
            leg,
        ));
    }
    let started = callback
        .agent_leg
        .as_ref()
        .map_or(now, |leg| leg.uac.started);
    let talking = callback
        .customer_leg
        .as_ref()
        .and_then(|leg| leg.uac.answered_at());
    Some(CallView {
        id: callback.id,
        direction: "outbound",
        origin: Some(if callback.campaign.is_some() {
            "campaign"
        } else {
            "callback"
        }),
        did: callback.number.clone(),
        caller: callback.caller_id.clone(),
        queue: callback.queue.clone(),
        state,
        agent: Some(agent.to_string()),
        on_hold: false,
        age_s: since(now, started),
        wait_s: 0.0,
        talk_s: talking.map_or(0.0, |t| since(now, t)),
        priority: callback.priority,
        label: callback.campaign.as_ref().map(|c| c.name.clone()),
        customer_name: None,
        legs,
        transfers: 0,
    })
}
