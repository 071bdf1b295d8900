//! The counters of SIP messages (`switchboard_sip_requests_total` by direction and method,
//! `switchboard_sip_responses_total` by direction and status code), each looked up in its
//! vector once and kept.
//!
//! Why: every message call control receives or sends is counted, and
//! `IntCounterVec::with_label_values` hashes its labels (SipHash) and takes the vector's lock
//! each time; a status code was also formatted into a `String` for it. A call sees only a
//! handful of methods and codes, so a short list searched by value finds the counter sooner.

use prometheus::{IntCounter, IntCounterVec};
use sip::rsip::Method;

/// Which way a message went, as the `direction` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    In,
    Out,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::In => 0,
            Direction::Out => 1,
        }
    }
}

/// The message counters call control has used so far, by direction.
#[derive(Debug)]
pub(super) struct MessageCounters {
    requests: IntCounterVec,
    responses: IntCounterVec,
    by_method: [Vec<(&'static str, IntCounter)>; 2],
    by_code: [Vec<(u16, IntCounter)>; 2],
}

impl MessageCounters {
    /// Counters over the two vectors (the registry's, shared with /metrics).
    pub(super) fn new(requests: IntCounterVec, responses: IntCounterVec) -> MessageCounters {
        MessageCounters {
            requests,
            responses,
            by_method: Default::default(),
            by_code: Default::default(),
        }
    }

    /// Counts a request.
    pub(super) fn request(&mut self, direction: Direction, method: &Method) {
        let name = sip::message::method_name(method);
        let known = &mut self.by_method[direction.index()];
        match known.iter().find(|(known, _)| *known == name) {
            Some((_, counter)) => counter.inc(),
            None => {
                let counter = self.requests.with_label_values(&[direction.label(), name]);
                counter.inc();
                known.push((name, counter));
            }
        }
    }

    /// Counts a response with status `code`.
    pub(super) fn response(&mut self, direction: Direction, code: u16) {
        let known = &mut self.by_code[direction.index()];
        match known.iter().find(|(known, _)| *known == code) {
            Some((_, counter)) => counter.inc(),
            None => {
                let label = code.to_string();
                let counter = self
                    .responses
                    .with_label_values(&[direction.label(), &label]);
                counter.inc();
                known.push((code, counter));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Opts;

    fn vectors() -> (IntCounterVec, IntCounterVec) {
        let requests = IntCounterVec::new(Opts::new("requests", "r"), &["direction", "method"])
            .expect("vector");
        let responses = IntCounterVec::new(Opts::new("responses", "r"), &["direction", "code"])
            .expect("vector");
        (requests, responses)
    }

    #[test]
    fn each_message_counts_once_under_its_direction_and_method_or_code() {
        let (requests, responses) = vectors();
        let mut counters = MessageCounters::new(requests.clone(), responses.clone());
        counters.request(Direction::In, &Method::Invite);
        counters.request(Direction::In, &Method::Invite);
        counters.request(Direction::Out, &Method::Invite);
        counters.request(Direction::In, &Method::Bye);
        counters.response(Direction::Out, 180);
        counters.response(Direction::Out, 180);
        counters.response(Direction::In, 180);
        counters.response(Direction::Out, 503);
        let request =
            |direction: &str, method: &str| requests.with_label_values(&[direction, method]).get();
        let response =
            |direction: &str, code: &str| responses.with_label_values(&[direction, code]).get();
        assert_eq!(request("in", "INVITE"), 2);
        assert_eq!(request("out", "INVITE"), 1);
        assert_eq!(request("in", "BYE"), 1);
        assert_eq!(request("out", "BYE"), 0);
        assert_eq!(response("out", "180"), 2);
        assert_eq!(response("in", "180"), 1);
        assert_eq!(response("out", "503"), 1);
        assert_eq!(response("in", "503"), 0);
    }
}
