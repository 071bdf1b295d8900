//! Call control's side of the caller lookup hook (`[lookup]`, see `crate::caller_lookup`):
//! a question per arriving call for the edge to ask, and the CRM's answer applied to the call
//! if it is still waiting. The call never waits for the answer: before it is queued the answer
//! is kept for queueing; while it waits in a queue without having been offered, it is queued
//! again with the new priority and preferred agent, keeping its place in time.

use super::call::{CallNumber, CallState};
use super::Switch;
use crate::caller_lookup::{CallerInfo, LookupRequest};
use acd::AgentId;
use std::time::Instant;

impl Switch {
    /// Asks the CRM about call `id`'s caller, when a lookup is configured.
    pub(super) fn ask_about_caller(&mut self, id: CallNumber) {
        if self.config.lookup.is_none() {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        self.lookups_out.push_back(LookupRequest {
            call: id,
            caller: call.caller.clone(),
            did: call.did.clone(),
        });
    }

    /// The next caller lookup the edge must make.
    pub fn poll_lookup(&mut self) -> Option<LookupRequest> {
        self.lookups_out.pop_front()
    }

    /// The CRM's answer about call `id`'s caller. An ended call ignores it; an agent id the
    /// configuration does not know is ignored (and logged).
    pub fn caller_looked_up(&mut self, now: Instant, id: CallNumber, info: CallerInfo) {
        let lookup_agent = info.preferred_agent.as_deref().and_then(|agent| {
            let id = AgentId::from(agent);
            let known = self.agents_by_id.contains_key(&id);
            if !known {
                tracing::info!(agent, "caller lookup named an unknown agent: ignored");
            }
            known.then_some(id)
        });
        let in_acd = self.acd.call(acd::CallId(id)).is_some();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        tracing::info!(call = id, ?info, "caller looked up");
        if info.label.is_some() {
            call.label = info.label;
        }
        if info.customer_name.is_some() {
            call.customer_name = info.customer_name;
        }
        // A running IVR keeps the language it speaks; the answer sets it for what follows.
        if info.language.is_some() && call.state.ivr().is_none() {
            call.language = info.language;
        }
        // Once an agent has been rung, the call's routing is settled: priority and preferred
        // agent no longer matter (and the CDR keeps the priority the call was served with).
        let routing_open = call.agent_leg.is_none() && call.first_offered.is_none();
        if !routing_open {
            return;
        }
        let priority_changed = info.priority.is_some_and(|p| p != call.priority);
        if let Some(priority) = info.priority {
            call.priority = priority;
        }
        let agent_changed = lookup_agent.is_some() && lookup_agent != call.preferred_agent;
        if lookup_agent.is_some() {
            call.lookup_agent = lookup_agent;
        }
        let waiting = in_acd && matches!(call.state, CallState::Queued);
        if waiting && (priority_changed || agent_changed) {
            self.requeue_looked_up(now, id);
        }
    }

    /// Queues a waiting call again with what the lookup changed, as if it had been waiting
    /// since it was first queued.
    fn requeue_looked_up(&mut self, now: Instant, id: CallNumber) {
        match self.acd.abandon(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::debug!(call = id, %error, "looked-up call not in the ACD any more");
                return;
            }
        }
        let preferred_agent = self.preferred_agent_for(now, id);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let request = acd::CallRequest {
            id: acd::CallId(id),
            queue: acd::QueueId::from(call.queue.as_str()),
            priority: call.priority,
            preferred_agent,
            waiting_since: Some(call.enqueued_at()),
            preferred_wait: None,
        };
        match self.acd.enqueue(now, request) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::warn!(call = id, %error, "looked-up call could not be queued again");
                self.end_call(
                    now,
                    id,
                    super::b2bua::EndCause::QueueFull(error.to_string()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use super::*;
    use sip::Peer;
    use std::sync::Arc;
    use transport::{Inbound, Payload};

    /// DID 100 is answered by an IVR; every caller is looked up.
    const LOOKED_UP_IVR: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
        [[number]]\ndid = \"100\"\nivr = \"main\"\n\
        [[ivr]]\nname = \"main\"\n[[ivr.menu]]\nname = \"top\"\nprompt = [\"menu\"]\nkeys = { \"1\" = \"hangup\" }\n\
        [lookup]\nurl = \"http://127.0.0.1:9/caller\"\n";

    fn invite(now: Instant) -> Inbound {
        let body = "v=0\r\no=gw 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                    m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let text = format!(
            "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKlookup;rport\r\n\
Max-Forwards: 70\r\nTo: <sip:100@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=a\r\n\
Call-ID: lookup-1\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.1:5999>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Inbound {
            source: Peer::udp("127.0.0.1:5999".parse().expect("addr")),
            local: "127.0.0.1:5060".parse().expect("addr"),
            payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid")),
            received: now,
        }
    }

    fn switch(now: Instant, text: &str) -> Switch {
        let config = crate::config::load_str("t.toml", text).expect("valid test config");
        testing::switch(now, Arc::new(config), Default::default())
    }

    #[test]
    fn an_arriving_call_is_looked_up_and_an_answer_during_the_ivr_is_kept_for_queueing() {
        let now = Instant::now();
        let mut switch = switch(now, LOOKED_UP_IVR);
        switch.handle_inbound(now, invite(now));
        let request = switch.poll_lookup().expect("the caller is looked up");
        assert_eq!(
            request,
            LookupRequest {
                call: request.call,
                caller: "2000".into(),
                did: "100".into(),
            }
        );
        assert_eq!(switch.poll_lookup(), None, "one lookup a call");
        switch.caller_looked_up(
            now,
            request.call,
            CallerInfo {
                priority: Some(7),
                label: Some("vip".into()),
                preferred_agent: Some("nobody".into()),
                language: Some("zh".into()),
                customer_name: Some("Li Wei".into()),
            },
        );
        let call = switch.calls.get(&request.call).expect("call in progress");
        assert!(call.state.ivr().is_some(), "{:?}", call.state);
        assert_eq!(call.label.as_deref(), Some("vip"));
        assert_eq!(call.customer_name.as_deref(), Some("Li Wei"));
        // Kept for when the call is queued; nothing is in the ACD yet.
        assert_eq!(call.priority, 7);
        assert!(switch.acd.call(acd::CallId(request.call)).is_none());
        // The running IVR keeps its language; an unknown agent is not remembered.
        assert_eq!(call.language, None);
        assert_eq!(call.lookup_agent, None);
        // An answer for a call that has ended changes nothing.
        switch.caller_looked_up(now, request.call + 1, CallerInfo::default());
    }

    #[test]
    fn without_a_lookup_section_nobody_is_looked_up() {
        let now = Instant::now();
        let text = LOOKED_UP_IVR.replace("[lookup]\nurl = \"http://127.0.0.1:9/caller\"\n", "");
        let mut switch = switch(now, &text);
        switch.handle_inbound(now, invite(now));
        assert_eq!(switch.calls.len(), 1);
        assert_eq!(switch.poll_lookup(), None);
    }
}
