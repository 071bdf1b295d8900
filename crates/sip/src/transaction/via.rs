//! The top Via of a message: reading it, stamping `received`/`rport` on arrival, and deciding
//! where a response goes (RFC 3261 §18.2.1, §18.2.2; RFC 3581).
//!
//! rsip keeps the Via value as a raw string that may hold several comma-separated via-parms, so
//! this is a small scanner over that string. It never panics: anything it cannot make sense
//! of is reported as "no top Via", and callers fall back to the packet's source address.

use super::fields::{first_field, Field};
use crate::{Peer, Transport};
use rsip::headers::UntypedHeader;
use rsip::{Header, Headers, Request};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

/// The port a UDP response goes to when the Via names none (RFC 3261 §18.2.2).
const DEFAULT_SIP_PORT: u16 = 5060;

/// One `;name[=value]` parameter of a via-parm, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViaParam<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

/// The first via-parm of the first Via header, borrowed from the header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopVia<'a> {
    /// Transport token of the sent-protocol (`UDP`, `TCP`, …) as written.
    pub transport: &'a str,
    /// sent-by host as written; IPv6 references keep their brackets.
    pub host: &'a str,
    /// sent-by port, if written.
    pub port: Option<u16>,
    /// The parameters as written (`;branch=…;rport`), read by [`TopVia::params`] on demand:
    /// the top Via is parsed several times per message, and a vector of them would be an
    /// allocation each time.
    params: &'a str,
    /// `SIP/2.0/UDP host:port`, kept verbatim so stamping changes nothing but parameters.
    head: &'a str,
    /// Byte range of this via-parm inside the header value.
    span: Range<usize>,
}

impl<'a> TopVia<'a> {
    /// `Some(None)` for a parameter without value (`;rport`), `None` when absent.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// Parameters in the order written.
    pub fn params(&self) -> impl Iterator<Item = ViaParam<'a>> {
        OutsideQuotes::new(self.params, b';').filter_map(|text| {
            let text = text.trim();
            let (name, value) = match text.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (text, None),
            };
            (!name.is_empty()).then_some(ViaParam { name, value })
        })
    }

    /// The branch parameter, if it has a non-empty value.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten().filter(|b| !b.is_empty())
    }

    /// sent-by normalised for comparison: host names compare case-insensitively (RFC 3261 §19.1.4
    /// applies the same rule to hosts everywhere), ports as numbers.
    /// Built at its exact size: transaction keys keep it for the transaction's whole life.
    pub fn sent_by(&self) -> Box<str> {
        let port_len = self
            .port
            .map_or(0, |port| 1 + crate::message::decimal_len(usize::from(port)));
        let mut out = String::with_capacity(self.host.len() + port_len);
        out.extend(self.host.chars().map(|c| c.to_ascii_lowercase()));
        if let Some(port) = self.port {
            let _ = write!(out, ":{port}");
        }
        out.into_boxed_str()
    }

    /// The sent-by host as an IP address, if it is one.
    pub fn host_ip(&self) -> Option<IpAddr> {
        parse_ip(self.host)
    }
}

/// Parses an IP address written bare or as an IPv6 reference (`[::1]`).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse().ok()
}

/// The pieces of `text` between `separator`s that are outside double-quoted strings, as
/// borrowed slices, lazily: the Via is scanned on every message, so no vector is built.
struct OutsideQuotes<'a> {
    rest: Option<&'a str>,
    separator: u8,
}

impl<'a> OutsideQuotes<'a> {
    fn new(text: &'a str, separator: u8) -> Self {
        Self {
            rest: Some(text),
            separator,
        }
    }
}

impl<'a> Iterator for OutsideQuotes<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let text = self.rest?;
        match find_outside_quotes(text, self.separator) {
            Some(i) => {
                self.rest = text.get(i + 1..);
                text.get(..i)
            }
            None => {
                self.rest = None;
                Some(text)
            }
        }
    }
}

/// The index of the first `separator` outside double-quoted strings.
fn find_outside_quotes(text: &str, separator: u8) -> Option<usize> {
    // Quotes are rare in a Via: when none comes before the first separator, that separator
    // is the answer, found by a plain scan for either byte instead of the state machine below.
    let first = text.bytes().position(|b| b == separator || b == b'"');
    match first {
        None => return None,
        Some(i) if text.as_bytes()[i] == separator => return Some(i),
        Some(_) => {}
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == separator {
            return Some(i);
        }
    }
    None
}

/// Parses the first via-parm of a Via header value.
pub(crate) fn parse_top_via(value: &str) -> Option<TopVia<'_>> {
    let first = 0..find_outside_quotes(value, b',').unwrap_or(value.len());
    let raw = value.get(first.clone())?;
    let leading = raw.len() - raw.trim_start().len();
    let parm = raw.trim();
    let span = (first.start + leading)..(first.start + leading + parm.len());

    let head_end = find_outside_quotes(parm, b';').unwrap_or(parm.len());
    let head = parm.get(..head_end)?.trim();
    let params = parm.get(head_end..)?;

    // sent-protocol = name SLASH version SLASH transport, with optional whitespace (SWS)
    let (name, rest) = head.split_once('/')?;
    let (version, rest) = rest.split_once('/')?;
    let rest = rest.trim_start();
    let transport_end = rest.find(char::is_whitespace)?;
    let transport = &rest[..transport_end];
    let sent_by = rest[transport_end..].trim();
    if name.trim().is_empty() || version.trim().is_empty() || transport.is_empty() {
        return None;
    }
    let (host, port) = split_host_port(sent_by)?;

    Some(TopVia {
        transport,
        host,
        port,
        params,
        head,
        span,
    })
}

/// Splits sent-by into host and port. Bare IPv6 (invalid in Via but seen in the wild) is taken
/// as a host without port rather than mis-split on its colons.
fn split_host_port(sent_by: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = split_host_port_unchecked(sent_by)?;
    host_chars_valid(host).then_some((host, port))
}

/// RFC 3261 host: hostname or IPv4 (alphanumerics, `-`, `.`; `_` tolerated), or an IPv6
/// reference; bare IPv6 accepted leniently.
fn host_chars_valid(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => {
            !inner.is_empty()
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        }
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
        }
    }
}

fn split_host_port_unchecked(sent_by: &str) -> Option<(&str, Option<u16>)> {
    if sent_by.is_empty() || sent_by.contains(char::is_whitespace) {
        return None;
    }
    if sent_by.starts_with('[') {
        let close = sent_by.find(']')?;
        let host = &sent_by[..=close];
        let after = &sent_by[close + 1..];
        if after.is_empty() {
            return Some((host, None));
        }
        let port = after.strip_prefix(':')?.parse().ok()?;
        return Some((host, Some(port)));
    }
    match sent_by.split_once(':') {
        Some((host, port)) if !port.contains(':') => {
            if host.is_empty() {
                return None;
            }
            Some((host, Some(port.parse().ok()?)))
        }
        Some(_) => Some((sent_by, None)),
        None => Some((sent_by, None)),
    }
}

/// The raw value of the first Via header (full or compact form).
pub(crate) fn top_via_value(headers: &Headers) -> Option<&str> {
    first_field(headers, Field::Via)
}

/// The parsed top Via of a message.
pub(crate) fn top_via(headers: &Headers) -> Option<TopVia<'_>> {
    parse_top_via(top_via_value(headers)?)
}

/// Stamps the top Via of a request that just arrived from `source` (RFC 3261 §18.2.1,
/// RFC 3581 §4): `received` when sent-by is a name or a different address, or when the client
/// asked for `rport`; an empty `rport` gets the source port. A Via that cannot be parsed is left
/// alone: the response then simply goes back to the source address.
pub(crate) fn stamp_received(request: &mut Request, source: Peer) {
    let Some(value) = top_via_value(&request.headers) else {
        return;
    };
    let Some(via) = parse_top_via(value) else {
        return;
    };
    let source_ip = source.addr.ip().to_canonical();
    let wants_rport = matches!(via.param("rport"), Some(None));
    let host_matches = via.host_ip().map(|ip| ip.to_canonical()) == Some(source_ip);
    // A `received` the sender wrote itself is never trusted: left in place it would aim our
    // responses at whatever address it names.
    let received_is_source = via.param("received").is_none_or(|received| {
        received.and_then(parse_ip).map(|ip| ip.to_canonical()) == Some(source_ip)
    });
    if host_matches && !wants_rport && received_is_source {
        return;
    }

    // The new value is written in one buffer (the via-parm rebuilt in place between what
    // precedes and follows it), with the address and port formatted straight into it.
    let mut new_value = String::with_capacity(value.len() + 64);
    new_value.push_str(&value[..via.span.start]);
    new_value.push_str(via.head);
    let mut wrote_received = false;
    for param in via.params() {
        new_value.push(';');
        new_value.push_str(param.name);
        if param.name.eq_ignore_ascii_case("received") {
            let _ = write!(new_value, "={source_ip}");
            wrote_received = true;
        } else if param.name.eq_ignore_ascii_case("rport") && param.value.is_none() {
            let _ = write!(new_value, "={}", source.addr.port());
        } else if let Some(v) = param.value {
            new_value.push('=');
            new_value.push_str(v);
        }
    }
    if !wrote_received {
        // RFC 3261 grammar: received carries a bare IPv6address, no brackets.
        let _ = write!(new_value, ";received={source_ip}");
    }
    new_value.push_str(&value[via.span.end..]);
    replace_top_via(&mut request.headers, new_value);
}

fn replace_top_via(headers: &mut Headers, new_value: String) {
    for header in headers.iter_mut() {
        match header {
            Header::Via(via) => {
                via.replace(new_value);
                return;
            }
            Header::Other(name, value) if Field::Via.names(name) => {
                *value = new_value;
                return;
            }
            _ => {}
        }
    }
}

/// Where a response to a request from `source` with top Via `via` goes (RFC 3261 §18.2.2,
/// RFC 3581 §4). Reliable transports answer on the connection the request came in on. Over UDP
/// the address is `received` (or sent-by if it is an IP, else the source) and the port `rport`
/// (or sent-by's port, default 5060).
///
/// `maddr` is deliberately ignored: it would let any request aim our responses at a third
/// party (a reflection vector), and multicast SIP is not a use case for a softswitch.
pub(crate) fn response_destination(via: Option<&TopVia<'_>>, source: Peer) -> Peer {
    if source.transport.is_reliable() {
        return source;
    }
    let Some(via) = via else {
        return source;
    };
    let ip = via
        .param("received")
        .flatten()
        .and_then(parse_ip)
        .or_else(|| via.host_ip())
        .unwrap_or_else(|| source.addr.ip());
    let port = match via.param("rport") {
        Some(Some(port)) => port.parse().unwrap_or(source.addr.port()),
        Some(None) => source.addr.port(),
        None => via.port.unwrap_or(DEFAULT_SIP_PORT),
    };
    Peer {
        transport: Transport::Udp,
        addr: SocketAddr::new(ip, port),
    }
}

/// The first via-parm of the top Via as text, for the ACK a client INVITE generates
/// (RFC 3261 §17.1.1.3: "only the top Via").
pub(crate) fn top_via_parm_text(headers: &Headers) -> Option<&str> {
    let value = top_via_value(headers)?;
    let via = parse_top_via(value)?;
    value.get(via.span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(addr: &str) -> Peer {
        Peer::udp(addr.parse().expect("test address"))
    }

    fn request_with_via(via: &str) -> Request {
        let text = format!(
            "OPTIONS sip:bob@biloxi.com SIP/2.0\r\nVia: {via}\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        Request::try_from(text.as_str()).expect("test request parses")
    }

    #[test]
    fn parses_the_first_via_parm_only() {
        let via = parse_top_via(
            "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776asdhds;rport , SIP/2.0/TCP other.com;branch=z9hG4bKx",
        )
        .expect("parses");
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.host, "pc33.atlanta.com");
        assert_eq!(via.port, Some(5066));
        assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(via.param("rport"), Some(None));
        assert_eq!(via.param("received"), None);
    }

    #[test]
    fn parses_ipv6_and_spaced_sent_protocol() {
        let via = parse_top_via("SIP / 2.0 / TCP   [2001:db8::9]:5070 ; branch = z9hG4bKa")
            .expect("parses");
        assert_eq!(via.transport, "TCP");
        assert_eq!(via.host, "[2001:db8::9]");
        assert_eq!(via.port, Some(5070));
        assert_eq!(via.branch(), Some("z9hG4bKa"));
        assert_eq!(via.host_ip(), "2001:db8::9".parse().ok());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            ",",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP ",
            "nonsense",
            "SIP/2.0/UDP host:notaport",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP [::1",
            "SIP/2.0/UDP [::1]x",
            "SIP/2.0/UDP :5060",
            "//UDP host",
            "SIP/2.0/UDP \"a,b\"",
            "SIP/2.0/UDP a<b>",
            "SIP/2.0/UDP [zz::1]",
        ] {
            assert!(parse_top_via(bad).is_none(), "{bad:?} should not parse");
        }
        // Quotes in parameters do not split the via-parm.
        let via = parse_top_via("SIP/2.0/UDP h;x=\"a,b;c\";branch=z9hG4bK1, SIP/2.0/UDP j")
            .expect("parses");
        assert_eq!(via.branch(), Some("z9hG4bK1"));
    }

    #[test]
    fn stamps_received_when_sent_by_is_a_name() {
        let mut request = request_with_via("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8");
        stamp_received(&mut request, udp("192.0.2.4:5060"));
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.4")
        );
    }

    #[test]
    fn leaves_via_alone_when_sent_by_is_the_source_ip() {
        let mut request = request_with_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8");
        stamp_received(&mut request, udp("192.0.2.4:5060"));
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8")
        );
    }

    #[test]
    fn fills_empty_rport_and_adds_received_even_for_same_ip() {
        // RFC 3581 §4: received is added even when it equals sent-by if rport was requested.
        let mut request = request_with_via(
            "SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKnashds8, SIP/2.0/UDP proxy.example.com",
        );
        stamp_received(&mut request, udp("10.0.0.1:40000"));
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP 10.0.0.1:5060;rport=40000;branch=z9hG4bKnashds8;received=10.0.0.1, SIP/2.0/UDP proxy.example.com")
        );
    }

    #[test]
    fn keeps_a_given_rport_and_replaces_a_forged_received() {
        let mut request = request_with_via(
            "SIP/2.0/UDP 10.0.0.1;rport=1234;received=203.0.113.9;branch=z9hG4bK1",
        );
        stamp_received(&mut request, udp("198.51.100.7:5062"));
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP 10.0.0.1;rport=1234;received=198.51.100.7;branch=z9hG4bK1")
        );
    }

    #[test]
    fn a_forged_received_is_overwritten_even_when_sent_by_matches() {
        let mut request =
            request_with_via("SIP/2.0/UDP 198.51.100.7;received=203.0.113.9;branch=z9hG4bK1");
        let source = udp("198.51.100.7:5060");
        stamp_received(&mut request, source);
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP 198.51.100.7;received=198.51.100.7;branch=z9hG4bK1")
        );
        let via = top_via(&request.headers);
        assert_eq!(response_destination(via.as_ref(), source), source);
    }

    #[test]
    fn stamps_ipv6_received_without_brackets() {
        let mut request = request_with_via("SIP/2.0/UDP host.example;branch=z9hG4bK1");
        stamp_received(&mut request, udp("[2001:db8::1]:5060"));
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP host.example;branch=z9hG4bK1;received=2001:db8::1")
        );
    }

    #[test]
    fn stamps_compact_via_header() {
        let mut request = request_with_via("SIP/2.0/UDP a.example;branch=z9hG4bK1");
        request.headers = vec![Header::Other(
            "v".into(),
            "SIP/2.0/UDP b.example;branch=z9hG4bK2".into(),
        )]
        .into();
        stamp_received(&mut request, udp("192.0.2.1:5060"));
        assert_eq!(
            top_via_value(&request.headers),
            Some("SIP/2.0/UDP b.example;branch=z9hG4bK2;received=192.0.2.1")
        );
    }

    #[test]
    fn unparsable_via_is_not_touched() {
        let mut request = request_with_via("garbage here");
        stamp_received(&mut request, udp("192.0.2.1:5060"));
        assert_eq!(top_via_value(&request.headers), Some("garbage here"));
    }

    #[test]
    fn response_destination_rules() {
        let source = udp("198.51.100.7:40000");
        let dest =
            |via: &str, source: Peer| response_destination(parse_top_via(via).as_ref(), source);

        // received + rport (RFC 3581)
        assert_eq!(
            dest(
                "SIP/2.0/UDP 10.0.0.1:5060;rport=40000;received=198.51.100.7",
                source
            ),
            udp("198.51.100.7:40000")
        );
        // received, no rport: sent-by port
        assert_eq!(
            dest(
                "SIP/2.0/UDP host.example:5070;received=198.51.100.7",
                source
            ),
            udp("198.51.100.7:5070")
        );
        // sent-by is an IP, no port: default 5060
        assert_eq!(
            dest("SIP/2.0/UDP 198.51.100.7", source),
            udp("198.51.100.7:5060")
        );
        // empty rport (unstamped): source port
        assert_eq!(
            dest("SIP/2.0/UDP 198.51.100.7:5060;rport", source),
            udp("198.51.100.7:40000")
        );
        // a name and no received (never stamped): fall back to the source address
        assert_eq!(
            dest("SIP/2.0/UDP host.example", source),
            udp("198.51.100.7:5060")
        );
        // maddr is ignored on purpose
        assert_eq!(
            dest("SIP/2.0/UDP 198.51.100.7;maddr=203.0.113.1", source),
            udp("198.51.100.7:5060")
        );
        // reliable: same connection, whatever the Via says
        let tcp = Peer::tcp("198.51.100.7:50123".parse().expect("test address"));
        assert_eq!(
            dest("SIP/2.0/TCP host.example:5060;received=10.9.9.9", tcp),
            tcp
        );
        // no Via at all: back to the source
        assert_eq!(response_destination(None, source), source);
    }

    #[test]
    fn top_via_parm_text_drops_further_via_parms() {
        let request =
            request_with_via("SIP/2.0/UDP a.example;branch=z9hG4bK1 ,SIP/2.0/UDP b.example");
        assert_eq!(
            top_via_parm_text(&request.headers),
            Some("SIP/2.0/UDP a.example;branch=z9hG4bK1")
        );
    }
}
