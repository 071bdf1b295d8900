//! The one way a call ends, whatever ends it (either party hanging up, a refusal, a timeout, a
//! drain): the call settles its legs and its record and returns what must still happen
//! outside it, in the order it must happen.

use super::{Call, CallOutput};
use crate::switch::b2bua::EndCause;
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

impl Call {
    /// The call is over at `now` with `cause`. Its outputs: its media stopped; the trunk told
    /// (a final response if it never had one — held, with `held`, until the call's record is
    /// durable — else a BYE unless the caller hung up); the record; the agent's phone told
    /// (unless the agent hung up); the ACD settled. `queue`: the settings of the queue the
    /// call waited in; `via`: a Via header for a request to a peer.
    pub fn end(
        &mut self,
        now: Instant,
        cause: &EndCause,
        queue: Option<&crate::config::QueueConfig>,
        mut held: Vec<(TransactionKey, Response)>,
        via: impl FnOnce(Peer) -> String,
    ) -> Vec<CallOutput> {
        let mut outputs = Vec::new();
        if let Some(media) = self.media.take() {
            outputs.push(CallOutput::MediaFinished(Box::new(media)));
        }
        let mut sip_cause = None;
        if !self.trunk_leg.finalized {
            let (code, reason) = cause.trunk_status();
            let mut response = response_to(
                &self.trunk_leg.invite,
                code,
                Some(&self.trunk_leg.local_tag),
            );
            if code != 487 {
                sip::message::add_warning(&mut response, crate::switch::AGENT_NAME, reason);
            }
            if code == 503 {
                push_header(
                    &mut response.headers,
                    "Retry-After",
                    crate::switch::RETRY_AFTER_SECS.to_string(),
                );
            }
            sip_cause = Some(code);
            held.push((self.trunk_leg.server_key.clone(), response));
        } else if *cause != EndCause::CallerHangup {
            let peer = self.trunk_leg.dialog.peer;
            let mut bye = self
                .trunk_leg
                .dialog
                .request(Method::Bye, &via(peer), None, None);
            cause.add_reason(&mut bye);
            outputs.push(CallOutput::Request { request: bye, peer });
        }
        outputs.push(CallOutput::Record {
            record: Box::new(self.record(now, cause, sip_cause, queue)),
            held,
        });
        if let Some(leg) = self.agent_leg.take() {
            // An agent who hung up has ended their dialog already.
            let agent_hung_up = *cause == EndCause::AgentHangup && leg.is_answered();
            outputs.push(CallOutput::AgentLegGone {
                leg: Box::new(leg),
                hang_up: !agent_hung_up,
                reason: cause.reason(),
            });
        }
        outputs.push(CallOutput::SettleWithAcd {
            talking: self.state.is_connected(),
        });
        outputs
    }
}
