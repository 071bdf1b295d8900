//! Telling a retransmitted provisional response from a new one, so the TU sees each once.
//!
//! A 1xx is a retransmission when status, To tag (the early dialog), RSeq (RFC 3262) and body
//! all repeat. A 180 then a 183 with SDP, or the same code from a second fork, are new.

use super::fields::{self, Field};
use rsip::Response;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// Fingerprints remembered per transaction; a call rarely has more than a handful of distinct
/// provisionals, and the bound keeps a chatty peer from growing memory.
const REMEMBERED: usize = 16;

/// The provisional responses a client transaction has already delivered.
#[derive(Debug, Default)]
pub(crate) struct ProvisionalLog {
    seen: Vec<u64>,
}

impl ProvisionalLog {
    /// Records `response`; true if it was not seen before (deliver it).
    pub fn first_sighting(&mut self, response: &Response) -> bool {
        let print = fingerprint(response);
        if self.seen.contains(&print) {
            return false;
        }
        if self.seen.len() == REMEMBERED {
            self.seen.remove(0);
        }
        self.seen.push(print);
        true
    }
}

fn fingerprint(response: &Response) -> u64 {
    let mut hasher = DefaultHasher::new();
    response.status_code.code().hash(&mut hasher);
    fields::to_tag(&response.headers).hash(&mut hasher);
    fields::first_field(&response.headers, Field::RSeq)
        .map(str::trim)
        .hash(&mut hasher);
    response.body.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(code: &str, to_tag: &str, extra: &str) -> Response {
        Response::try_from(format!(
            "SIP/2.0 {code}\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nTo: <sip:b@b>;tag={to_tag}\r\nCSeq: 1 INVITE\r\n{extra}\r\n"
        ))
        .expect("test response parses")
    }

    #[test]
    fn repeats_are_recognised_and_new_ones_are_not() {
        let mut log = ProvisionalLog::default();
        assert!(log.first_sighting(&response("180 Ringing", "a", "")));
        assert!(!log.first_sighting(&response("180 Ringing", "a", "")));
        assert!(log.first_sighting(&response("183 Session Progress", "a", "")));
        assert!(log.first_sighting(&response("180 Ringing", "b", "")));
        assert!(log.first_sighting(&response("180 Ringing", "a", "RSeq: 2\r\n")));
        assert!(!log.first_sighting(&response("180 Ringing", "a", "RSeq: 2\r\n")));
    }

    #[test]
    fn memory_is_bounded() {
        let mut log = ProvisionalLog::default();
        for i in 0..100 {
            log.first_sighting(&response("180 Ringing", &i.to_string(), ""));
        }
        assert_eq!(log.seen.len(), REMEMBERED);
    }
}
