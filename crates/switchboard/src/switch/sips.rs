//! RFC 5630 rules for `sips:` Request-URIs: a `sips:` URI asks for TLS on every hop, so
//! Switchboard refuses one that reached it over a transport without TLS (416 Unsupported
//! URI Scheme, with the reason as Warning), and offers a `sips:` call only to agents whose
//! phone is registered over TLS (or secure WebSocket); the others are skipped for that call
//! as a phone that cannot take its media is, so the call goes to the next agent who can
//! take it, or waits in its queue (timeout and overflow apply as to any call) when none can.

use super::refusal::Refusal;
use sip::rsip::{Request, Scheme};
use sip::Transport;

/// Whether a request for `request`'s Request-URI must travel over TLS.
pub(super) fn requires_tls(request: &Request) -> bool {
    matches!(request.uri.scheme, Some(Scheme::Sips))
}

/// Whether `transport` satisfies a `sips:` URI.
pub(super) fn is_secure(transport: Transport) -> bool {
    matches!(transport, Transport::Tls | Transport::Wss)
}

/// The answer to a request whose `sips:` Request-URI arrived over `transport` without TLS.
pub(super) fn refusal(request: &Request, transport: Transport) -> Option<Refusal> {
    (requires_tls(request) && !is_secure(transport))
        .then(|| Refusal::SipsWithoutTls(transport.via_token()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:c@h>;tag=1\r\nTo: <{uri}>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        match sip::parse::parse(text.as_bytes()) {
            Ok(sip::rsip::SipMessage::Request(request)) => request,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn a_sips_uri_needs_tls_and_a_sip_uri_does_not() {
        let sips = request("sips:100@127.0.0.1");
        let over_udp = refusal(&sips, Transport::Udp).expect("refused over UDP");
        assert_eq!(over_udp.sip_status(), 416);
        assert_eq!(
            over_udp.to_string(),
            "a sips: Request-URI must arrive over TLS (RFC 5630), not UDP"
        );
        assert!(refusal(&sips, Transport::Tcp).is_some());
        assert_eq!(refusal(&sips, Transport::Tls), None);
        assert_eq!(refusal(&sips, Transport::Wss), None);
        let sip = request("sip:100@127.0.0.1");
        assert_eq!(refusal(&sip, Transport::Udp), None);
        assert!(requires_tls(&sips) && !requires_tls(&sip));
    }
}
