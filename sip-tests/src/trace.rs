//! Reads SIPp's `-trace_msg` file back into messages, so tests can assert on what a SIPp peer
//! actually received (e.g. how many INVITEs an agent got, under which Call-ID).

use crate::sip_message::SipMessage;

/// Whether SIPp sent or received a traced message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// SIPp sent it.
    Sent,
    /// SIPp received it.
    Received,
}

/// One message from a SIPp message trace.
#[derive(Debug, Clone)]
pub struct TracedMessage {
    /// Sent or received.
    pub direction: Direction,
    /// The message itself.
    pub message: SipMessage,
}

/// Each block of the trace starts with a line of dashes and a timestamp.
const SEPARATOR: &str = "-----------------------------------------------";

/// Parses a SIPp message trace; blocks that are not a sent/received SIP message are skipped.
pub fn parse_trace(text: &str) -> Vec<TracedMessage> {
    text.split(SEPARATOR)
        .filter_map(|block| {
            // Block layout: " <timestamp>\n<UDP message received|sent ...>\n\n<message>"
            let mut parts = block.splitn(3, '\n');
            let _timestamp = parts.next()?;
            let what = parts.next()?;
            let rest = parts.next()?;
            let direction = if what.contains("message received") {
                Direction::Received
            } else if what.contains("message sent") {
                Direction::Sent
            } else {
                return None;
            };
            let message_text = rest.strip_prefix('\n').unwrap_or(rest);
            // SIPp writes one '\n' after each message; the message's own CRLFs stay.
            let message_text = message_text.strip_suffix('\n').unwrap_or(message_text);
            let message = SipMessage::parse(message_text.as_bytes()).ok()?;
            Some(TracedMessage { direction, message })
        })
        .collect()
}

/// The requests with `method` that SIPp received, in order.
pub fn received_requests(text: &str, method: &str) -> Vec<SipMessage> {
    parse_trace(text)
        .into_iter()
        .filter(|traced| traced.direction == Direction::Received)
        .map(|traced| traced.message)
        .filter(|message| message.method() == Some(method))
        .collect()
}

/// The responses with status `code` that SIPp received, in order.
pub fn received_responses(text: &str, code: u16) -> Vec<SipMessage> {
    parse_trace(text)
        .into_iter()
        .filter(|traced| traced.direction == Direction::Received)
        .map(|traced| traced.message)
        .filter(|message| message.status() == Some(code))
        .collect()
}

/// The Call-IDs of the calls a trunk SIPp completed: it received a 200 to its BYE.
pub fn completed_calls(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for message in received_responses(text, 200) {
        let is_bye = message.cseq().is_some_and(|(_, method)| method == "BYE");
        if let (true, Some(id)) = (is_bye, message.header("Call-ID")) {
            if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

/// Every distinct Call-ID in the trace, in order of first appearance.
pub fn call_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for traced in parse_trace(text) {
        if let Some(id) = traced.message.header("Call-ID") {
            if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "----------------------------------------------- 2026-11-25 17:16:36.389281\nUDP message received [507] bytes :\n\nINVITE sip:100@127.0.0.1:47100 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:47101;branch=z9hG4bK-1\r\nCall-ID: 1-14348@127.0.0.1\r\nCSeq: 1 INVITE\r\nContent-Length: 4\r\n\r\nv=0\r\n\n----------------------------------------------- 2026-11-25 17:16:36.389428\nUDP message sent (310 bytes):\n\nSIP/2.0 180 Ringing\r\nCall-ID: 1-14348@127.0.0.1\r\nCSeq: 1 INVITE\r\n\r\n\n----------------------------------------------- 2026-11-25 17:16:37\nUDP message received [10] bytes :\n\nINVITE sip:100@h SIP/2.0\r\nCall-ID: other\r\nCSeq: 1 INVITE\r\n\r\n\n";

    #[test]
    fn reads_directions_and_messages() {
        let traced = parse_trace(TRACE);
        let summary: Vec<(Direction, Option<u16>)> = traced
            .iter()
            .map(|t| (t.direction, t.message.status()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Direction::Received, None),
                (Direction::Sent, Some(180)),
                (Direction::Received, None)
            ]
        );
        assert_eq!(
            traced.first().map(|t| t.message.body.as_str()),
            Some("v=0\r\n")
        );
    }

    #[test]
    fn counts_received_requests_and_call_ids() {
        assert_eq!(received_requests(TRACE, "INVITE").len(), 2);
        assert_eq!(received_requests(TRACE, "BYE").len(), 0);
        assert_eq!(call_ids(TRACE), vec!["1-14348@127.0.0.1", "other"]);
    }

    #[test]
    fn completed_calls_are_those_whose_bye_got_200() {
        let trace = "----------------------------------------------- t\nUDP message received [1] bytes :\n\nSIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 1 INVITE\r\n\r\n\n----------------------------------------------- t\nUDP message received [1] bytes :\n\nSIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 2 BYE\r\n\r\n\n----------------------------------------------- t\nUDP message received [1] bytes :\n\nSIP/2.0 200 OK\r\nCall-ID: b\r\nCSeq: 1 INVITE\r\n\r\n\n";
        assert_eq!(completed_calls(trace), vec!["a"]);
        assert_eq!(received_responses(trace, 200).len(), 3);
        assert!(received_responses(TRACE, 200).is_empty());
        assert_eq!(
            received_responses(TRACE, 180).len(),
            0,
            "sent, not received"
        );
    }

    #[test]
    fn ignores_noise() {
        assert!(parse_trace("").is_empty());
        assert!(parse_trace(
            "garbage\n----------------------------------------------- x\nsomething else\n\n"
        )
        .is_empty());
    }
}
