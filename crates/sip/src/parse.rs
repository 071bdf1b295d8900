//! Turning bytes from the wire into a checked [`rsip::SipMessage`].
//!
//! rsip parses the grammar but leaves a few things real equipment relies on: compact header
//! names (`v:`, `i:` …), folded header lines, and the Content-Length/body agreement that
//! decides where a UDP datagram's message really ends. Those are handled here before and
//! after rsip runs, and the headers every transaction needs are checked so that the layers
//! above can rely on them being present and well formed.

use crate::headers::{cseq_of, header_value};
use crate::message::method_name;
use crate::peer::Transport;
use crate::transaction::via::top_via;
use rsip::message::HasHeaders;
use rsip::SipMessage;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Why a message was refused. `reason` is short, human readable and safe to put in a
/// `Warning` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// What is wrong, e.g. `missing Call-ID header`.
    pub reason: String,
    /// The status to answer with: 400, or 505 for a SIP version other than 2.0.
    pub status: u16,
}

impl ParseError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            status: 400,
        }
    }
}

/// RFC 3261 §7.3.3 compact forms, plus the ones RFC 3265/3515/3841 added.
const COMPACT_NAMES: &[(u8, &str)] = &[
    (b'a', "Accept-Contact"),
    (b'b', "Referred-By"),
    (b'c', "Content-Type"),
    (b'e', "Content-Encoding"),
    (b'f', "From"),
    (b'i', "Call-ID"),
    (b'k', "Supported"),
    (b'l', "Content-Length"),
    (b'm', "Contact"),
    (b'o', "Event"),
    (b'r', "Refer-To"),
    (b's', "Subject"),
    (b't', "To"),
    (b'u', "Allow-Events"),
    (b'v', "Via"),
];

/// Is this datagram/stream chunk only a keep-alive (RFC 5626 CRLF or a lone CRLFCRLF)?
pub fn is_keepalive(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
}

/// Parses one complete message. For datagrams, a body longer than Content-Length is cut to
/// it (RFC 3261 §18.3); a shorter one is an error. A missing Content-Length means "the rest".
pub fn parse(bytes: &[u8]) -> Result<SipMessage, ParseError> {
    let bytes = skip_leading_crlf(bytes);
    let header_end =
        find_header_end(bytes).ok_or_else(|| ParseError::new("no empty line after the headers"))?;
    let head = &bytes[..header_end];
    let mut body = &bytes[header_end + 4..];
    let head = std::str::from_utf8(head)
        .map_err(|_| ParseError::new("header section is not valid UTF-8"))?;
    let mut message = match normalize_head(head)? {
        // The usual case: the head is read where it lies.
        None => parse_head(head)?,
        Some(normalized) => parse_head(&normalized)?,
    };
    if let Some(length) = content_length(&message)? {
        if length > body.len() {
            return Err(ParseError::new(format!(
                "Content-Length {length} exceeds the {} body bytes received",
                body.len()
            )));
        }
        body = &body[..length];
    }
    match &mut message {
        SipMessage::Request(request) => request.body = body.to_vec(),
        SipMessage::Response(response) => response.body = body.to_vec(),
    }
    validate(&message)?;
    Ok(message)
}

/// Where the header section ends (the index of its `\r\n\r\n`), for stream framing.
pub fn find_header_end(bytes: &[u8]) -> Option<usize> {
    // A vectorised substring search over the bytes: no UTF-8 check of the whole datagram
    // (the head alone is checked, by `parse`), no search call per line.
    memchr::memmem::find(bytes, b"\r\n\r\n")
}

/// The lines of a header section, split at `\r\n` (a bare `\n` stays inside its line). The
/// line ends are found by one vectorised scan of the section, not a search per line.
fn crlf_lines(text: &str) -> impl Iterator<Item = &str> + Clone {
    let mut newlines = memchr::memchr_iter(b'\n', text.as_bytes());
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        for at in newlines.by_ref() {
            if at > from && text.as_bytes()[at - 1] == b'\r' {
                start = Some(at + 1);
                // `\r` and `\n` are ASCII, so both ends are char boundaries.
                return text.get(from..at - 1);
            }
        }
        start = None;
        text.get(from..)
    })
}

/// The Content-Length (or compact `l`) of a raw header section, for stream framing.
pub fn raw_content_length(head: &[u8]) -> Result<Option<usize>, ParseError> {
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]);
        let name = name.trim();
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("l") {
            let value = String::from_utf8_lossy(&line[colon + 1..]);
            return value.trim().parse::<usize>().map(Some).map_err(|_| {
                ParseError::new(format!("bad Content-Length: {}", clip(value.trim())))
            });
        }
    }
    Ok(None)
}

fn skip_leading_crlf(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Checks the header section and, when it has folded lines, compact names or odd spacing,
/// rewrites it with every header line as `Name: value`. `None` when the head is already in
/// that form (almost every message): it is then parsed where it lies, without a copy.
fn normalize_head(head: &str) -> Result<Option<String>, ParseError> {
    let mut lines = crlf_lines(head);
    let start_line = lines.next().unwrap_or_default();
    if start_line.trim().is_empty() {
        return Err(ParseError::new("empty start line"));
    }
    // RFC 3261 §8.2.1 … a request of another SIP version gets 505.
    if let Some(version) = start_line
        .rsplit(' ')
        .next()
        .and_then(|v| v.strip_prefix("SIP/"))
    {
        if version != "2.0" && !start_line.starts_with("SIP/") {
            return Err(ParseError {
                reason: format!("SIP version {version} is not supported"),
                status: 505,
            });
        }
    }
    if lines.clone().all(is_canonical_line) {
        return Ok(None);
    }
    let mut out = String::with_capacity(head.len() + 64);
    out.push_str(start_line);
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // RFC 3261 §7.3.1: a line starting with white space continues the previous one.
            if out.len() == start_line.len() {
                return Err(ParseError::new(
                    "header continuation line before any header",
                ));
            }
            out.push(' ');
            out.push_str(line.trim_start());
            continue;
        }
        let colon = line
            .find(':')
            .ok_or_else(|| ParseError::new(format!("header line without colon: {}", clip(line))))?;
        let name = line[..colon].trim_end();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ParseError::new(format!("bad header name: {}", clip(name))));
        }
        let value = line[colon + 1..].trim_start();
        out.push_str("\r\n");
        out.push_str(&expand_compact(name));
        out.push_str(": ");
        out.push_str(value);
    }
    Ok(Some(out))
}

/// Whether the rewrite in [`normalize_head`] would leave this header line exactly as it is:
/// not a continuation, a full-length token name, then `": "` and a value that does not start
/// with white space.
fn is_canonical_line(line: &str) -> bool {
    let Some(colon) = line.find(':') else {
        return false;
    };
    let name = &line[..colon];
    let after = &line.as_bytes()[colon + 1..];
    name.len() > 1
        && name.bytes().all(is_token_byte)
        && after.first() == Some(&b' ')
        && after.get(1).is_none_or(|b| !matches!(b, b' ' | b'\t'))
}

fn expand_compact(name: &str) -> Cow<'_, str> {
    if let [single] = name.as_bytes() {
        let lower = single.to_ascii_lowercase();
        if let Some((_, long)) = COMPACT_NAMES.iter().find(|(c, _)| *c == lower) {
            return Cow::Borrowed(long);
        }
    }
    Cow::Borrowed(name)
}

/// RFC 3261 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Parses a head whose header lines are all `Name: value` (see [`normalize_head`]).
///
/// rsip parses the start line. The header lines are split here and each becomes the rsip
/// header its name gives, exactly as rsip's own tokenizer would make it (the same name table,
/// the value after the colon and its leading blanks): rsip runs a nom tokenizer per line and
/// then compares the name with each of its 45 header names in turn, and that was the largest
/// part of the CPU a message cost.
fn parse_head(head: &str) -> Result<SipMessage, ParseError> {
    let mut lines = crlf_lines(head);
    let start_line = lines.next().unwrap_or_default();
    let header_lines = &head[(start_line.len() + 2).min(head.len())..];
    let mut message = parse_start_line(start_line)?;
    let lines = if header_lines.is_empty() {
        None
    } else {
        Some(crlf_lines(header_lines))
    };
    // Sized once (collecting from the line iterator would grow the vector three times): one
    // slot per line end, a bare LF inside a value only leaving a slot spare.
    let count = header_lines.bytes().filter(|b| *b == b'\n').count() + 1;
    let mut headers: Vec<rsip::Header> = Vec::with_capacity(count);
    headers.extend(lines.into_iter().flatten().map(|line| {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        typed_header(name, value.trim_start_matches([' ', '\t']))
    }));
    match &mut message {
        SipMessage::Request(request) => request.headers = headers.into(),
        SipMessage::Response(response) => response.headers = headers.into(),
    }
    Ok(message)
}

/// The start line alone, through rsip (it owns the URI grammar).
fn parse_start_line(start_line: &str) -> Result<SipMessage, ParseError> {
    // rsip reads a start line only as part of a message; an empty header section makes one.
    let mut message = Vec::with_capacity(start_line.len() + 4);
    message.extend_from_slice(start_line.as_bytes());
    message.extend_from_slice(b"\r\n\r\n");
    let message = message.as_slice();
    // rsip is a nom parser over untrusted bytes; a panic inside it must not take the process
    // down, so it is contained here and turned into a 400. The start line says which parser
    // applies: rsip's own dispatch tries a response first and, for every request, builds an
    // error that copies the whole input into a String.
    let parse = || {
        if message.starts_with(b"SIP/") {
            rsip::Response::try_from(message).map(SipMessage::Response)
        } else {
            rsip::Request::try_from(message).map(SipMessage::Request)
        }
    };
    match catch_unwind(AssertUnwindSafe(parse)) {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(error)) => Err(ParseError::new(describe_rsip_error(&error))),
        Err(_) => Err(ParseError::new("unparseable message")),
    }
}

/// The rsip header a `name: value` line becomes: rsip's table of typed headers (names
/// compared case-insensitively), anything else `Other` with the name as written.
fn typed_header(name: &str, value: &str) -> rsip::Header {
    use rsip::headers::*;
    use rsip::Header as H;
    macro_rules! table {
        ($($text:literal => $variant:ident),* $(,)?) => {
            $(if name.eq_ignore_ascii_case($text) {
                return H::$variant($variant::new(value));
            })*
        };
    }
    table! {
        "Via" => Via, "From" => From, "To" => To, "Call-Id" => CallId, "CSeq" => CSeq,
        "Contact" => Contact, "Max-Forwards" => MaxForwards, "Content-Length" => ContentLength,
        "Content-Type" => ContentType, "Record-Route" => RecordRoute, "Route" => Route,
        "Accept" => Accept, "Accept-Encoding" => AcceptEncoding,
        "Accept-Language" => AcceptLanguage, "Alert-Info" => AlertInfo, "Allow" => Allow,
        "Authentication-Info" => AuthenticationInfo, "Authorization" => Authorization,
        "Call-Info" => CallInfo, "Content-Disposition" => ContentDisposition,
        "Content-Encoding" => ContentEncoding, "Content-Language" => ContentLanguage,
        "Date" => Date, "Error-Info" => ErrorInfo, "Event" => Event, "Expires" => Expires,
        "In-Reply-To" => InReplyTo, "Mime-Version" => MimeVersion,
        "Min-Expires" => MinExpires, "Organization" => Organization, "Priority" => Priority,
        "Proxy-Authenticate" => ProxyAuthenticate,
        "Proxy-Authorization" => ProxyAuthorization, "Proxy-Require" => ProxyRequire,
        "Reply-To" => ReplyTo, "Require" => Require, "Retry-After" => RetryAfter,
        "Server" => Server, "Subject" => Subject, "Supported" => Supported,
        "Timestamp" => Timestamp, "Unsupported" => Unsupported, "User-Agent" => UserAgent,
        "Warning" => Warning, "WWW-Authenticate" => WwwAuthenticate,
    }
    H::Other(name.to_owned(), value.to_owned())
}

fn describe_rsip_error(error: &rsip::Error) -> String {
    let text = error.to_string();
    // rsip echoes the remaining input in its errors; keep the Warning header short.
    let text: String = text.chars().filter(|c| !c.is_control()).take(80).collect();
    format!("malformed message: {text}")
}

fn content_length(message: &SipMessage) -> Result<Option<usize>, ParseError> {
    match header_value(message.headers(), "Content-Length") {
        None => Ok(None),
        Some(value) => value
            .trim()
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ParseError::new(format!("bad Content-Length: {}", clip(value)))),
    }
}

/// The checks every message must pass before a transaction or dialog looks at it.
fn validate(message: &SipMessage) -> Result<(), ParseError> {
    let headers = message.headers();
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if header_value(headers, name).is_none() {
            return Err(ParseError::new(format!("missing {name} header")));
        }
    }
    let via = top_via(headers).ok_or_else(|| ParseError::new("malformed Via header"))?;
    if Transport::from_via_token(via.transport).is_none() {
        return Err(ParseError::new("unknown transport in Via header"));
    }
    let (_, cseq_method) =
        cseq_of(headers).ok_or_else(|| ParseError::new("malformed CSeq header"))?;
    if let SipMessage::Request(request) = message {
        if !cseq_method.eq_ignore_ascii_case(method_name(&request.method)) {
            return Err(ParseError::new(
                "CSeq method does not match the request method",
            ));
        }
        if let Some(value) = header_value(headers, "Max-Forwards") {
            value
                .trim()
                .parse::<u8>()
                .map_err(|_| ParseError::new("malformed Max-Forwards header"))?;
        }
        if host_is_empty(&request.uri.host_with_port) {
            return Err(ParseError::new("Request-URI without host"));
        }
    }
    Ok(())
}

/// Whether a host (and port) would be written as nothing at all: a domain that is empty
/// and no port. An IP address is never empty.
fn host_is_empty(host: &rsip::HostWithPort) -> bool {
    host.port.is_none()
        && matches!(&host.host, rsip::Host::Domain(domain) if domain.value().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INVITE: &str = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: <sip:100@127.0.0.1>\r\n\
From: \"Caller\" <sip:2000@10.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@10.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:2000@10.0.0.1>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn a_head_that_is_not_utf8_is_framed_and_refused_by_name() {
        // A Latin-1 display name: the blank line comes after the bad byte, so the head's end
        // is found past the UTF-8 prefix, and the head is then refused as not being text.
        let mut bytes = INVITE
            .replace("From: ", "From: \"Jos\u{e9}\" ")
            .into_bytes();
        let at = bytes
            .iter()
            .position(|b| *b == 0xc3)
            .expect("the é is written in UTF-8");
        bytes.splice(at..at + 2, [0xe9]);
        let end = find_header_end(&bytes).expect("the blank line is found");
        assert_eq!(&bytes[end..end + 4], b"\r\n\r\n");
        let error = parse(&bytes).expect_err("not text");
        assert_eq!(error.reason, "header section is not valid UTF-8");
        assert_eq!(error.status, 400);
    }

    #[test]
    fn parses_a_plain_invite() {
        let message = parse(INVITE.as_bytes()).expect("valid");
        let SipMessage::Request(request) = message else {
            panic!("request expected")
        };
        assert_eq!(request.method, rsip::Method::Invite);
        assert_eq!(request.body, b"v=0\n");
    }

    #[test]
    fn trailing_garbage_after_content_length_is_cut() {
        let text = format!("{INVITE}extra");
        let SipMessage::Request(request) = parse(text.as_bytes()).expect("valid") else {
            panic!()
        };
        assert_eq!(request.body, b"v=0\n");
    }

    #[test]
    fn short_body_is_refused() {
        let text = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        let error = parse(text.as_bytes()).unwrap_err();
        assert!(error.reason.contains("Content-Length 40"), "{error}");
    }

    #[test]
    fn compact_names_and_folding_are_understood() {
        let text = "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc\r\n\
t: <sip:100@127.0.0.1>\r\n\
f: <sip:2000@10.0.0.1>\r\n  ;tag=xyz\r\n\
i: cid-1\r\n\
CSeq: 1 OPTIONS\r\n\
l: 0\r\n\r\n";
        let message = parse(text.as_bytes()).expect("valid");
        assert_eq!(
            header_value(message.headers(), "From"),
            Some("<sip:2000@10.0.0.1> ;tag=xyz")
        );
        assert_eq!(header_value(message.headers(), "Call-ID"), Some("cid-1"));
    }

    #[test]
    fn odd_spacing_around_colons_parses_as_the_canonical_form_does() {
        let canonical = parse(INVITE.as_bytes()).expect("valid");
        for (from, to) in [
            ("Max-Forwards: 70", "Max-Forwards:70"),
            ("Max-Forwards: 70", "Max-Forwards :  70"),
            ("Call-ID: a84b", "Call-ID:\ta84b"),
        ] {
            let text = INVITE.replace(from, to);
            let odd = parse(text.as_bytes()).expect("valid");
            assert_eq!(odd, canonical, "{to}");
        }
    }

    /// Every header rsip knows, in odd letter case, plus unknown ones, blank values and
    /// trailing blanks: the headers built here must be the ones rsip builds from the same head.
    #[test]
    fn headers_are_what_rsip_makes_of_them() {
        let names = [
            "Accept",
            "accept-encoding",
            "ACCEPT-LANGUAGE",
            "Alert-Info",
            "Allow",
            "Authentication-Info",
            "Authorization",
            "cseq",
            "call-id",
            "Call-Info",
            "Contact",
            "Content-Disposition",
            "Content-Encoding",
            "Content-Language",
            "Content-Type",
            "Date",
            "Error-Info",
            "Event",
            "Expires",
            "from",
            "In-Reply-To",
            "Max-Forwards",
            "MIME-Version",
            "Min-Expires",
            "Organization",
            "Priority",
            "Proxy-Authenticate",
            "Proxy-Authorization",
            "Proxy-Require",
            "Record-Route",
            "Reply-To",
            "Require",
            "Retry-After",
            "Route",
            "Server",
            "Subject",
            "Supported",
            "Timestamp",
            "TO",
            "Unsupported",
            "User-Agent",
            "via",
            "Warning",
            "www-authenticate",
            "Subscription-State",
            "X-Custom",
            "P-Asserted-Identity",
            "RSeq",
        ];
        let mut head = String::from("OPTIONS sip:100@127.0.0.1 SIP/2.0");
        for (i, name) in names.iter().enumerate() {
            head.push_str(&format!("\r\n{name}: value {i} ;x=\"a,b\"  "));
        }
        head.push_str("\r\nX-Empty: \r\nContent-Length: 0");
        let ours = parse_head(&head).expect("ours");
        let theirs = SipMessage::try_from(format!("{head}\r\n\r\n").as_bytes()).expect("rsip's");
        assert_eq!(ours, theirs);
        let response = head.replace("OPTIONS sip:100@127.0.0.1 SIP/2.0", "SIP/2.0 180 Ringing");
        assert_eq!(
            parse_head(&response).expect("ours"),
            SipMessage::try_from(format!("{response}\r\n\r\n").as_bytes()).expect("rsip's")
        );
    }

    #[test]
    fn missing_mandatory_headers_are_named() {
        let text = INVITE.replace("Call-ID: a84b4c76e66710@10.0.0.1\r\n", "");
        assert_eq!(
            parse(text.as_bytes()).unwrap_err().reason,
            "missing Call-ID header"
        );
        let text = INVITE.replace("CSeq: 314159 INVITE", "CSeq: 314159 BYE");
        assert!(parse(text.as_bytes())
            .unwrap_err()
            .reason
            .contains("CSeq method"));
        let text = INVITE.replace("CSeq: 314159 INVITE", "CSeq: abc INVITE");
        assert!(parse(text.as_bytes()).unwrap_err().reason.contains("CSeq"));
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        for text in [
            "",
            "hello",
            "INVITE\r\n\r\n",
            "INVITE sip:a SIP/2.0\r\nVia\r\n\r\n",
            "SIP/2.0 200\r\n\r\n",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text:?}");
        }
    }

    #[test]
    fn other_sip_versions_get_505() {
        let text = INVITE.replace(
            "INVITE sip:100@127.0.0.1 SIP/2.0",
            "INVITE sip:100@127.0.0.1 SIP/3.0",
        );
        let error = parse(text.as_bytes()).unwrap_err();
        assert_eq!(error.status, 505, "{error}");
    }

    #[test]
    fn keepalives_are_recognised() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(b"\r\n"));
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"INVITE"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn mutated_heads_parse_as_rsip_parses_them(byte in any::<u8>(), at in 0usize..330) {
            let mut head = INVITE.as_bytes()[..INVITE.find("\r\n\r\n").expect("head")].to_vec();
            if at < head.len() { head[at] = byte; }
            let text = std::str::from_utf8(&head).ok();
            if let Some((Ok(None), text)) = text.map(|text| (normalize_head(text), text)) {
                let theirs = SipMessage::try_from(format!("{text}\r\n\r\n").as_bytes());
                let ours = parse_head(text);
                match theirs {
                    Ok(message) => prop_assert_eq!(ours, Ok(message)),
                    Err(_) => prop_assert!(ours.is_err()),
                }
            }
        }

        /// Line splitting is `split("\r\n")`, whatever mix of `\r`, `\n` and text it meets;
        /// the blank line is the first `\r\n\r\n`.
        #[test]
        fn lines_split_at_crlf_and_the_head_ends_at_the_first_blank_line(
            text in "[a\r\n:é]{0,40}"
        ) {
            let ours: Vec<&str> = crlf_lines(&text).collect();
            let reference: Vec<&str> = text.split("\r\n").collect();
            prop_assert_eq!(ours, reference);
            prop_assert_eq!(find_header_end(text.as_bytes()), text.find("\r\n\r\n"));
        }

        #[test]
        fn mutated_invites_never_panic(cut in 0usize..400, byte in any::<u8>(), at in 0usize..400) {
            let mut bytes = INVITE.as_bytes().to_vec();
            if at < bytes.len() { bytes[at] = byte; }
            bytes.truncate(cut.max(1).min(bytes.len()));
            let _ = parse(&bytes);
        }
    }
}
