//! Overload control for new calls (RFC 6357 §4: refuse early and cheaply, so the calls
//! already admitted finish instead of every call timing out). A new INVITE that arrives while
//! call control is behind gets one stateless 503 with Retry-After, before any transaction,
//! call, dialog or media port exists for it; its retransmissions get the same answer.
//!
//! "Behind" is measured by the depth of the queue between the transports and call control,
//! read by the runtime for every message it hands over: the depth says at once how much work
//! is waiting, where the time a message waited only rises after the backlog has built up
//! (the 500 ms queue delay alone engaged too late: at twice the capacity the backlog stretched
//! every call until the RTP ports ran out, and goodput fell below half the peak; see
//! docs/scaling.md).

use super::{Switch, AGENT_NAME, OVERLOAD_QUEUE_DELAY, RETRY_AFTER_SECS};
use sip::headers::to_tag;
use sip::rsip::{Method, Request};
use sip::{Peer, Transmit};

/// Messages waiting for call control beyond which new calls are refused. A call costs about
/// six messages (INVITE, ACK and BYE from the trunk; 180, 200 and the BYE's 200 from the
/// agent) and a message some 60 µs of call control on the measuring machine, so 2,048 waiting
/// messages are roughly 100 ms of work: well inside T1, so the messages of admitted calls are
/// handled before their senders retransmit them.
pub(super) const OVERLOAD_BACKLOG: usize = 2_048;

impl Switch {
    /// How many messages wait in the inbound queue behind the one about to be handled (the
    /// runtime reads its queue's length; sans-IO tests set it directly).
    pub fn note_inbound_backlog(&mut self, waiting: usize) {
        self.inbound_backlog = waiting;
    }

    /// Whether call control is behind: the inbound queue is deep, or the message being
    /// handled waited longer than T1.
    pub(super) fn overloaded(&self) -> bool {
        self.inbound_backlog >= OVERLOAD_BACKLOG || self.queue_delay >= OVERLOAD_QUEUE_DELAY
    }

    /// Answers a new INVITE with a stateless 503 + Retry-After when call control is behind.
    /// Returns whether it did (the request is then done with). In-dialog requests, other
    /// methods and retransmissions of INVITEs already being handled pass: they belong to calls
    /// that were admitted.
    pub(super) fn refuse_when_overloaded(&mut self, request: &Request, source: Peer) -> bool {
        if request.method != Method::Invite
            || to_tag(&request.headers).is_some()
            || !self.overloaded()
            || self.txn.has_server_transaction(request)
        {
            return false;
        }
        let mut response = sip::message::response_to(request, 503, Some(&self.ids.tag()));
        sip::message::push_header(
            &mut response.headers,
            "Retry-After",
            RETRY_AFTER_SECS.to_string(),
        );
        sip::message::add_warning(&mut response, AGENT_NAME, "overloaded: try again later");
        self.reject_metric("overload");
        self.metrics
            .sip_responses
            .with_label_values(&["out", "503"])
            .inc();
        // Like every stateless answer here: to the address the request came from.
        let data = sip::message::encode_response(&response);
        self.pending_raw.push_back(Transmit { peer: source, data });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;
    use transport::{Inbound, Payload};

    const CONFIG: &str = "[sip]\nlisten_udp = [\"127.0.0.1:5060\"]\n\
        [[trunk]]\nname = \"t\"\nallow = [\"127.0.0.0/8\"]\n\
        [[number]]\ndid = \"101\"\nqueue = \"support\"\n\
        [[queue]]\nname = \"support\"\nskills = { support = 1 }\n";

    fn switch(now: Instant) -> Switch {
        let config = crate::config::load_str("t.toml", CONFIG).expect("valid test config");
        super::super::testing::switch(now, Arc::new(config), Default::default())
    }

    fn invite(received: Instant, call: u32) -> Inbound {
        let text = format!(
            "INVITE sip:101@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKbacklog{call};rport\r\n\
Max-Forwards: 70\r\nTo: <sip:101@127.0.0.1>\r\nFrom: <sip:2000@127.0.0.1>;tag=a{call}\r\n\
Call-ID: backlog-{call}\r\nCSeq: 1 INVITE\r\nContact: <sip:2000@127.0.0.1:5999>\r\n\
Content-Length: 0\r\n\r\n"
        );
        Inbound {
            source: Peer::udp("127.0.0.1:5999".parse().expect("addr")),
            local: "127.0.0.1:5060".parse().expect("addr"),
            payload: Payload::Message(sip::parse::parse(text.as_bytes()).expect("valid")),
            received,
        }
    }

    fn sent(switch: &mut Switch) -> Vec<String> {
        std::iter::from_fn(|| switch.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect()
    }

    #[test]
    fn a_deep_inbound_queue_refuses_a_new_call_statelessly_with_503_retry_after() {
        let now = Instant::now();
        let mut switch = switch(now);
        switch.note_inbound_backlog(OVERLOAD_BACKLOG);
        // The message itself did not wait: the depth alone decides.
        switch.handle_inbound(now, invite(now, 1));
        let out = sent(&mut switch);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].starts_with("SIP/2.0 503"), "{out:?}");
        assert!(out[0].contains("Retry-After: 5\r\n"), "{}", out[0]);
        assert!(
            out[0].contains("Warning: 399 switchboard \"overloaded"),
            "{}",
            out[0]
        );
        // Decided before any state: no call, no transaction to retransmit from.
        assert_eq!(switch.active_calls(), 0);
        assert!(switch.txn.is_empty());
        // A retransmission gets the same answer, again without state.
        switch.handle_inbound(now, invite(now, 1));
        let again = sent(&mut switch);
        assert!(
            again.iter().any(|m| m.starts_with("SIP/2.0 503")),
            "{again:?}"
        );
        assert!(switch.txn.is_empty());
        let refused = switch
            .metrics
            .calls_rejected
            .with_label_values(&["overload"])
            .get();
        assert_eq!(refused, 2);
    }

    #[test]
    fn a_call_admitted_before_the_backlog_is_not_refused_on_retransmission() {
        let now = Instant::now();
        let mut switch = switch(now);
        switch.note_inbound_backlog(OVERLOAD_BACKLOG - 1);
        switch.handle_inbound(now, invite(now, 2));
        let first = sent(&mut switch);
        assert!(
            first.iter().any(|m| m.starts_with("SIP/2.0 100")),
            "{first:?}"
        );
        assert!(first.iter().all(|m| !m.starts_with("SIP/2.0 503")));
        // The queue is now deep; the same INVITE retransmitted belongs to its transaction.
        switch.note_inbound_backlog(OVERLOAD_BACKLOG * 4);
        switch.handle_inbound(now, invite(now, 2));
        let retransmitted = sent(&mut switch);
        assert!(
            retransmitted.iter().all(|m| !m.starts_with("SIP/2.0 503")),
            "{retransmitted:?}"
        );
        // A new call in the same moment is refused.
        switch.handle_inbound(now, invite(now, 3));
        let new_call = sent(&mut switch);
        assert!(
            new_call.iter().any(|m| m.starts_with("SIP/2.0 503")),
            "{new_call:?}"
        );
    }
}
