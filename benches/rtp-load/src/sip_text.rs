//! SIP messages written as text: the requests the trunk and the phones send, and responses
//! built from a received request (its Via, From, To, Call-ID and CSeq echoed, RFC 3261 §8.2.6).

use std::fmt::Write as _;

use sip_tests::SipMessage;

/// The parts of an outgoing request that vary.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `INVITE`, `ACK`, `BYE`, `REGISTER`.
    pub method: &'a str,
    /// Request-URI.
    pub uri: &'a str,
    /// `host:port` for Via.
    pub via_host: &'a str,
    /// Via branch (the `z9hG4bK` magic cookie is added).
    pub branch: &'a str,
    /// Full From value including the tag.
    pub from: &'a str,
    /// Full To value.
    pub to: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number (the method is appended).
    pub cseq: u32,
    /// Extra header lines, each ending in CRLF.
    pub extra: &'a str,
    /// SDP body, or empty.
    pub sdp: &'a str,
}

impl Request<'_> {
    /// The datagram text.
    pub fn render(&self) -> String {
        let mut text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}",
            method = self.method,
            uri = self.uri,
            via = self.via_host,
            branch = self.branch,
            from = self.from,
            to = self.to,
            call_id = self.call_id,
            cseq = self.cseq,
            extra = self.extra,
        );
        finish(&mut text, self.sdp);
        text
    }
}

/// A response to `request`: `to_tag` is added to To when it has none (a UAS answering).
pub fn response(
    request: &SipMessage,
    status: &str,
    to_tag: Option<&str>,
    extra: &str,
    sdp: &str,
) -> String {
    let mut text = format!("SIP/2.0 {status}\r\n");
    for via in request.headers_named("Via") {
        let _ = write!(text, "Via: {via}\r\n");
    }
    for name in ["From", "Call-ID", "CSeq"] {
        if let Some(value) = request.header(name) {
            let _ = write!(text, "{name}: {value}\r\n");
        }
    }
    if let Some(to) = request.header("To") {
        match to_tag {
            Some(tag) if request.to_tag().is_none() => {
                let _ = write!(text, "To: {to};tag={tag}\r\n");
            }
            _ => {
                let _ = write!(text, "To: {to}\r\n");
            }
        }
    }
    text.push_str(extra);
    finish(&mut text, sdp);
    text
}

fn finish(text: &mut String, sdp: &str) {
    if sdp.is_empty() {
        text.push_str("Content-Length: 0\r\n\r\n");
    } else {
        let _ = write!(
            text,
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip_through_the_parser() {
        let invite = Request {
            method: "INVITE",
            uri: "sip:100@127.0.0.1:5060",
            via_host: "127.0.0.1:7000",
            branch: "-b1",
            from: "<sip:c0@127.0.0.1>;tag=t0",
            to: "<sip:100@127.0.0.1>",
            call_id: "cid-0",
            cseq: 1,
            extra: "Contact: <sip:carrier@127.0.0.1:7000>\r\n",
            sdp: "v=0\r\n",
        }
        .render();
        let parsed = SipMessage::parse(invite.as_bytes()).expect("rendered request parses");
        assert_eq!(parsed.method(), Some("INVITE"));
        assert_eq!(parsed.cseq(), Some((1, "INVITE")));
        assert_eq!(parsed.from_user(), Some("c0"));
        assert_eq!(parsed.body, "v=0\r\n");
        assert_eq!(parsed.header("Content-Length"), Some("5"));

        let ok = response(&parsed, "200 OK", Some("ag0"), "", "");
        let ok = SipMessage::parse(ok.as_bytes()).expect("rendered response parses");
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.to_tag(), Some("ag0"));
        assert_eq!(ok.header("Call-ID"), Some("cid-0"));
        assert_eq!(
            ok.header("Via"),
            Some("SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK-b1;rport")
        );
    }
}
