//! Overload control for new calls (RFC 6357 §4: refuse early and cheaply, so the calls
//! already admitted finish instead of every call timing out). A new INVITE that arrives while
//! call control is behind gets one stateless 503 with Retry-After, before any transaction,
//! call, dialog or media port exists for it; its retransmissions get the same answer.
//!
//! "Behind" is measured by the queue between the transports and call control, read by the
//! runtime for every message it hands over. Its depth says at once how much work is waiting,
//! where the time a message waited only rises after the backlog has built up (the 500 ms
//! queue delay alone engaged too late: at twice the capacity the backlog stretched every call
//! until the RTP ports ran out, and goodput fell below half the peak; see docs/scaling.md).
//! Two depths: a deep queue (`OVERLOAD_BACKLOG`) refuses at once whatever the reason; once the
//! queue is known to stand rather than burst (`standing_queue`), a shallow one
//! (`STANDING_BACKLOG`) does, which keeps the wait of admitted calls' messages near 10 ms instead
//! of 80 ms past capacity.

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

/// Messages waiting for call control beyond which new calls are refused while the queue
/// stands (has held every message at least 5 ms for 100 ms): about 10 ms of work on the
/// measuring machine. Below it the calls already admitted are served first. The standing test
/// keeps most bursts of a load the node carries from reaching this depth: refusing at 256
/// without it turned away 105 of 40,000 calls at 4,000 calls/s (under capacity) in one
/// measured run; with it, 79 and 336 in two runs at ~85 % of capacity and none at 3,000/s,
/// while past capacity it raised goodput by a fifth to two fifths (docs/scaling.md).
pub(super) const STANDING_BACKLOG: usize = 256;

impl Switch {
    /// How many messages wait in the inbound queue behind the one about to be handled (the
    /// runtime reads its queue's length; sans-IO tests set it directly).
    pub fn note_inbound_backlog(&mut self, waiting: usize) {
        self.inbound_backlog = waiting;
    }

    /// Whether call control is behind: the inbound queue is deep, or it stands and is
    /// deeper than a standing queue may be, or the message being handled waited longer than
    /// T1.
    pub(super) fn overloaded(&self) -> bool {
        self.inbound_backlog >= OVERLOAD_BACKLOG
            || (self.inbound_backlog >= STANDING_BACKLOG && self.standing_queue.standing())
            || self.queue_delay >= OVERLOAD_QUEUE_DELAY
    }

    /// Answers a new INVITE with a stateless 503 + Retry-After when call control is behind.
    /// Returns whether it did (the request is then done with). In-dialog requests, other
    /// methods and retransmissions of INVITEs already being handled pass: they belong to calls
    /// that were admitted.
    pub(super) fn refuse_when_overloaded(&mut self, request: &Request, source: Peer) -> bool {
        if !self.overloaded() || !self.is_new_invite(request) {
            return false;
        }
        self.refuse_statelessly(request, source, "overloaded: try again later", "overload");
        true
    }

    /// Answers a new trunk call with a stateless 503 + Retry-After when the RTP port pool
    /// cannot anchor its media (a call with an SDP offer takes a pair facing the trunk and one
    /// facing the agent): refused before its transaction, call and SDP work exist, instead of
    /// after them. Only INVITEs from a trunk's addresses to one of its numbers are refused
    /// here; agents' feature codes (which take no ports) and calls out pass.
    pub(super) fn refuse_without_rtp_ports(&mut self, request: &Request, source: Peer) -> bool {
        const PAIRS_PER_CALL: usize = 2;
        if request.body.is_empty()
            || self.media.free_pairs() >= PAIRS_PER_CALL
            || !self.is_new_invite(request)
        {
            return false;
        }
        let super::admission::TrunkDecision::ByAddress(trunk) =
            super::admission::trunk_for(&self.config, source)
        else {
            return false;
        };
        let serves_number = super::admission::dialled_number(request)
            .is_some_and(|did| self.index.number(&self.config, &did, &trunk).is_some());
        if !serves_number {
            return false;
        }
        self.refuse_statelessly(
            request,
            source,
            "no free RTP ports in the configured range",
            "no-rtp-ports",
        );
        true
    }

    /// An INVITE outside any dialog that no server transaction handles yet (not the
    /// retransmission of one being handled).
    fn is_new_invite(&self, request: &Request) -> bool {
        request.method == Method::Invite
            && to_tag(&request.headers).is_none()
            && !self.txn.has_server_transaction(request)
    }

    /// 503 + Retry-After with `reason` in a Warning, without any state; counted as a rejected
    /// call with `label`.
    fn refuse_statelessly(&mut self, request: &Request, source: Peer, reason: &str, label: &str) {
        let mut response = sip::message::response_to(request, 503, Some(&self.ids.tag()));
        sip::message::push_header(
            &mut response.headers,
            "Retry-After",
            RETRY_AFTER_SECS.to_string(),
        );
        sip::message::add_warning(&mut response, AGENT_NAME, reason);
        self.reject_metric(label);
        self.messages
            .response(super::message_counters::Direction::Out, 503);
        // Like every stateless answer here: to the address the request came from.
        let data = sip::message::encode_response(&response);
        self.pending_raw.push_back(Transmit { peer: source, data });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
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

    /// INVITEs for calls `calls` taken at 1 ms steps from `t0`, each having waited `waited`;
    /// whether each was refused.
    fn refused_at(
        switch: &mut Switch,
        t0: Instant,
        calls: std::ops::Range<u32>,
        waited: Duration,
    ) -> Vec<bool> {
        calls
            .enumerate()
            .map(|(step, call)| {
                let now = t0 + Duration::from_millis(step as u64);
                switch.handle_inbound(now, invite(now - waited, call));
                sent(switch).iter().any(|m| m.starts_with("SIP/2.0 503"))
            })
            .collect()
    }

    #[test]
    fn a_standing_queue_refuses_new_calls_at_a_shallow_depth_and_a_burst_does_not() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let waited = Duration::from_millis(20);
        // A burst: 50 ms of messages that waited 20 ms behind 300 others. Admitted.
        let mut burst = switch(t0);
        burst.note_inbound_backlog(STANDING_BACKLOG + 44);
        assert!(refused_at(&mut burst, t0, 0..50, waited)
            .iter()
            .all(|refused| !refused));
        // The same wait for longer than the interval: the queue stands, and from then on new
        // calls are refused at that depth, though it is far from the deep-queue limit.
        let mut standing = switch(t0);
        standing.note_inbound_backlog(STANDING_BACKLOG + 44);
        let refused = refused_at(&mut standing, t0, 0..150, waited);
        let interval = super::super::standing_queue::INTERVAL.as_millis() as usize;
        assert!(refused[..interval].iter().all(|refused| !refused));
        assert!(refused[interval..].iter().all(|refused| *refused));
        // Below the shallow depth a standing queue still admits: the calls already admitted
        // are served first, and the queue stays near that depth.
        standing.note_inbound_backlog(STANDING_BACKLOG - 1);
        let later = t0 + Duration::from_millis(150);
        assert_eq!(refused_at(&mut standing, later, 150..151, waited), [false]);
    }

    /// A config whose RTP range holds `pairs` port pairs, and whose queue answers calls itself
    /// (so a call anchors its media at once, even with nobody logged in).
    fn switch_with_pairs(now: Instant, pairs: u16) -> Switch {
        let text = format!(
            "{CONFIG}answer = \"on-queue\"\n[media]\nrtp_port_min = 30000\nrtp_port_max = {}\n",
            30000 + 2 * pairs - 1
        );
        let config = crate::config::load_str("t.toml", &text).expect("valid test config");
        super::super::testing::switch(now, Arc::new(config), Default::default())
    }

    fn with_offer(mut inbound: Inbound) -> Inbound {
        let sdp = "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        if let Payload::Message(sip::rsip::SipMessage::Request(request)) = &mut inbound.payload {
            sip::message::push_header(&mut request.headers, "Content-Type", "application/sdp");
            request.body = sdp.as_bytes().to_vec();
        }
        inbound
    }

    #[test]
    fn a_trunk_call_the_rtp_pool_cannot_anchor_is_refused_before_any_state() {
        let now = Instant::now();
        // Two pairs: the first call takes both (trunk side and agent side).
        let mut switch = switch_with_pairs(now, 2);
        switch.handle_inbound(now, with_offer(invite(now, 10)));
        let admitted = sent(&mut switch);
        assert!(
            admitted.iter().any(|m| m.starts_with("SIP/2.0 100")),
            "{admitted:?}"
        );
        assert_eq!(switch.media.free_pairs(), 0);
        let (calls, transactions) = (switch.active_calls(), switch.txn.len());
        // The next cannot be anchored: a stateless 503, no transaction, counted.
        switch.handle_inbound(now, with_offer(invite(now, 11)));
        let refused = sent(&mut switch);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].starts_with("SIP/2.0 503"), "{refused:?}");
        assert!(refused[0].contains("Retry-After: 5\r\n"), "{}", refused[0]);
        assert!(refused[0].contains("no free RTP ports"), "{}", refused[0]);
        assert_eq!(switch.active_calls(), calls);
        assert_eq!(
            switch.txn.len(),
            transactions,
            "no transaction for the refused call"
        );
        let counted = switch
            .metrics
            .calls_rejected
            .with_label_values(&["no-rtp-ports"])
            .get();
        assert_eq!(counted, 1);
        // An agent's feature code from the same address dials no number of the trunk: it
        // passes (and gets its digest challenge).
        let mut feature = invite(now, 12);
        if let Payload::Message(sip::rsip::SipMessage::Request(request)) = &mut feature.payload {
            request.uri = sip::rsip::Uri::try_from("sip:*21@127.0.0.1").expect("uri");
        }
        switch.handle_inbound(now, with_offer(feature));
        let passed = sent(&mut switch);
        assert!(
            passed.iter().all(|m| !m.starts_with("SIP/2.0 503")),
            "{passed:?}"
        );
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
