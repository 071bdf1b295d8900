//! The counters of SIP messages (`switchboard_sip_requests_total` by direction and method,
//! `switchboard_sip_responses_total` by direction and status code), each looked up in its
//! vector once and kept.
//!
//! Why: every message call control receives or sends is counted, and
//! `IntCounterVec::with_label_values` hashes its labels (SipHash) and takes the vector's lock
//! each time; a status code was also formatted into a `String` for it. Methods are a handful,
//! kept in a short list; codes are kept by their value. A code outside 100–699 (RFC 3261
//! §7.2), which a peer's response may carry, is counted as `other`, so a peer cannot grow
//! the label set (or this cache) without bound.

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
    /// Indexed by `code - 100` for codes 100–699; slot [`OTHER_CODE`] for every other code.
    by_code: [Vec<Option<IntCounter>>; 2],
}

/// The codes counted under their own label (RFC 3261 §7.2); the rest are `other`.
const CODES: std::ops::RangeInclusive<u16> = 100..=699;
/// The slot of the `other` code.
const OTHER_CODE: usize = 600;

impl MessageCounters {
    /// Counters over the two vectors (the registry's, shared with /metrics).
    pub(super) fn new(requests: IntCounterVec, responses: IntCounterVec) -> MessageCounters {
        MessageCounters {
            requests,
            responses,
            by_method: Default::default(),
            by_code: std::array::from_fn(|_| vec![None; OTHER_CODE + 1]),
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
        let slot = if CODES.contains(&code) {
            usize::from(code - CODES.start())
        } else {
            OTHER_CODE
        };
        let responses = &self.responses;
        self.by_code[direction.index()][slot]
            .get_or_insert_with(|| {
                let label = match slot {
                    OTHER_CODE => "other".to_owned(),
                    _ => code.to_string(),
                };
                responses.with_label_values(&[direction.label(), &label])
            })
            .inc();
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
        counters.response(Direction::In, 99);
        counters.response(Direction::In, 1234);
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
        assert_eq!(
            response("in", "other"),
            2,
            "codes outside 100-699 share one label"
        );
    }
}
