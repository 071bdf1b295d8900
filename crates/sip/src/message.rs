//! Building and serializing messages: responses to requests, header edits, and the wire form.

use crate::headers::{find_raw_header_lines, header_value, name_and_value, tag_of};
use bytes::Bytes;
use rsip::headers::untyped::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response, Scheme, SipMessage, StatusCode, Uri};
use std::fmt::{self, Write as _};

/// Serializes a message to its wire form. Content-Length is always written from the body's
/// real length (whatever the header said), and the body is copied as bytes, so binary bodies
/// survive.
pub fn encode(message: &SipMessage) -> Bytes {
    match message {
        SipMessage::Request(r) => encode_request(r),
        SipMessage::Response(r) => encode_response(r),
    }
}

/// A method's name on the wire. rsip's `Display` upper-cases its enum name into a fresh
/// `String` on every use, and method names are compared and written on every message.
pub fn method_name(method: &Method) -> &'static str {
    match method {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::PRack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
    }
}

/// Writes a URI exactly as rsip's `Display` does, without the temporary strings and vector
/// that implementation builds for the scheme, the user part and the parameters.
pub fn write_uri(out: &mut dyn fmt::Write, uri: &Uri) -> fmt::Result {
    match &uri.scheme {
        Some(Scheme::Sip) => out.write_str("sip:")?,
        Some(Scheme::Sips) => out.write_str("sips:")?,
        Some(Scheme::Other(scheme)) => write!(out, "{scheme}://")?,
        None => {}
    }
    if let Some(auth) = &uri.auth {
        out.write_str(&auth.user)?;
        if let Some(password) = &auth.password {
            write!(out, ":{password}")?;
        }
        out.write_char('@')?;
    }
    write!(out, "{}", uri.host_with_port)?;
    for param in &uri.params {
        write!(out, "{param}")?;
    }
    Ok(())
}

/// Counts what would be written, so a buffer can be allocated at its final size.
struct Measure(usize);

impl fmt::Write for Measure {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The header lines of a message as they are written: every header but Content-Length,
/// which the encoder writes itself from the body.
fn wire_headers(headers: &Headers) -> impl Iterator<Item = (&str, &str)> {
    headers
        .iter()
        .map(name_and_value)
        .filter(|(name, _)| !name.eq_ignore_ascii_case("Content-Length"))
}

/// The wire form of a message whose start line (with its CRLF) `start_line` writes. The size
/// of the whole message is worked out before anything is copied, so the buffer is allocated
/// once at exactly that size and `Bytes` takes it over as it is.
fn encode_parts(
    start_line: impl Fn(&mut dyn fmt::Write) -> fmt::Result,
    headers: &Headers,
    body: &[u8],
) -> Bytes {
    encode_lines(start_line, || wire_headers(headers), body)
}

/// [`encode_parts`] for header lines given as (name, value) pairs, which must not include
/// Content-Length. `lines` is called twice: once to size the buffer, once to fill it.
fn encode_lines<'a, I: Iterator<Item = (&'a str, &'a str)>>(
    start_line: impl Fn(&mut dyn fmt::Write) -> fmt::Result,
    lines: impl Fn() -> I,
    body: &[u8],
) -> Bytes {
    let mut measure = Measure(0);
    let _ = start_line(&mut measure);
    let size = measure.0
        + lines()
            .map(|(name, value)| name.len() + value.len() + 4)
            .sum::<usize>()
        + content_length_line_len(body.len())
        + body.len();
    let mut out = String::with_capacity(size);
    let _ = start_line(&mut out);
    for (name, value) in lines() {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

/// The length of `Content-Length: <n>\r\n\r\n`.
fn content_length_line_len(n: usize) -> usize {
    "Content-Length: \r\n\r\n".len() + decimal_len(n)
}

/// How many digits `n` has in decimal, to size a buffer before writing it.
pub(crate) fn decimal_len(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Writes `SIP/2.0 <code> <reason>\r\n`.
fn write_status_line(out: &mut dyn fmt::Write, code: &StatusCode) -> fmt::Result {
    let number = code.code();
    let reason = match code {
        // A reason phrase that came from the peer (an unknown code) is relayed as it was.
        StatusCode::Other(_, reason) if reason != "Other" => reason.as_str(),
        _ => reason_phrase(number),
    };
    write!(out, "SIP/2.0 {number} {reason}\r\n")
}

/// The RFC 3261 §21 (and later RFCs') reason phrase for a status code. rsip renders its enum
/// names ("NotFound"), which are not what peers expect on the wire.
pub fn reason_phrase(code: u16) -> &'static str {
    known_reason(code).unwrap_or(match code {
        100..=199 => "Session Progress",
        200..=299 => "OK",
        300..=399 => "Redirection",
        400..=499 => "Client Error",
        500..=599 => "Server Error",
        _ => "Global Failure",
    })
}

fn known_reason(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => return None,
    })
}

/// A response to `request` per RFC 3261 §8.2.6: Via, From, To, Call-ID and CSeq copied, a
/// To-tag added when given and the request's To had none. `100 Trying` never gets a tag.
/// Provisional and 2xx responses also copy Record-Route (§12.1.1): a dialog-forming response
/// must carry it, or a record-routing proxy in front is bypassed by the ACK and BYE.
pub fn response_to(request: &Request, code: u16, to_tag: Option<&str>) -> Response {
    let copied = |header: &Header| match header {
        Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) | Header::To(_) => {
            true
        }
        Header::RecordRoute(_) => (101..300).contains(&code),
        _ => false,
    };
    // Sized once for the copied headers and the few a caller adds (Contact, Content-Type,
    // Allow, Warning …), so neither the copy nor the caller grows the vector again.
    let mut headers = Vec::with_capacity(request.headers.iter().filter(|h| copied(h)).count() + 4);
    for header in request.headers.iter().filter(|h| copied(h)) {
        match header {
            Header::To(to) => {
                let value = to.value();
                let needs_tag = code > 100 && tag_of(value).is_none();
                match to_tag.filter(|_| needs_tag) {
                    Some(tag) => {
                        let mut tagged = String::with_capacity(value.len() + 5 + tag.len());
                        tagged.push_str(value);
                        tagged.push_str(";tag=");
                        tagged.push_str(tag);
                        headers.push(Header::To(rsip::headers::To::new(tagged)));
                    }
                    None => headers.push(header.clone()),
                }
            }
            _ => headers.push(header.clone()),
        }
    }
    Response {
        status_code: StatusCode::from(code),
        version: rsip::Version::V2,
        headers: headers.into(),
        body: Vec::new(),
    }
}

/// Adds `Warning: 399 <agent> "<text>"` (RFC 3261 §20.43) to explain an error response.
pub fn add_warning(response: &mut Response, agent: &str, text: &str) {
    let clean: String = text
        .chars()
        .map(|c| if c == '"' || c.is_control() { '\'' } else { c })
        .take(120)
        .collect();
    response
        .headers
        .push(Header::Warning(rsip::headers::Warning::new(format!(
            "399 {agent} \"{clean}\""
        ))));
}

/// Appends a header given by name and value.
pub fn push_header(headers: &mut Headers, name: &str, value: impl Into<String>) {
    headers.push(Header::Other(name.to_string(), value.into()));
}

/// Removes every header called `name` (case-insensitive).
pub fn remove_header(headers: &mut Headers, name: &str) {
    headers.retain(|h| !name_and_value(h).0.eq_ignore_ascii_case(name));
}

/// Best effort answer to bytes that did not parse: when the start line looks like a request
/// and the Via, From, To, Call-ID and CSeq lines can be found as text, a response carrying
/// them is built so the sender learns why. Otherwise `None`: nothing can be addressed.
pub fn raw_error_response(bytes: &[u8], code: u16, reason: &str, agent: &str) -> Option<Bytes> {
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.trim_start_matches(['\r', '\n']);
    let start_line = text.lines().next()?;
    // Responses and ACKs are never answered.
    if start_line.starts_with("SIP/") || start_line.starts_with("ACK ") {
        return None;
    }
    let version = start_line.trim_end().rsplit(' ').next().unwrap_or_default();
    if !version.starts_with("SIP/") {
        return None;
    }
    let lines = find_raw_header_lines(text, &["Via", "From", "To", "Call-ID", "CSeq"]);
    let has = |name: &str| lines.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("Via") {
        return None;
    }
    let mut out = String::new();
    let _ = write_status_line(&mut out, &StatusCode::from(code));
    for (name, value) in &lines {
        // A final response carries a To tag (RFC 3261 §8.2.6.2), even to a broken request.
        if *name == "To" && crate::headers::tag_of(value).is_none() {
            let _ = write!(
                out,
                "{name}: {value};tag={:016x}\r\n",
                rand::random::<u64>()
            );
        } else {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    let clean: String = reason
        .chars()
        .map(|c| if c == '"' || c.is_control() { '\'' } else { c })
        .take(120)
        .collect();
    let _ = write!(
        out,
        "Warning: 399 {agent} \"{clean}\"\r\nContent-Length: 0\r\n\r\n"
    );
    Some(Bytes::from(out))
}

/// The `Max-Forwards` value, 70 when absent (RFC 3261 §8.1.1.6).
pub fn max_forwards(request: &Request) -> u32 {
    header_value(&request.headers, "Max-Forwards")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(70)
}

/// Serializes a request (see [`encode`]).
pub fn encode_request(request: &Request) -> Bytes {
    let start_line = |out: &mut dyn fmt::Write| {
        out.write_str(method_name(&request.method))?;
        out.write_char(' ')?;
        write_uri(out, &request.uri)?;
        out.write_str(" SIP/2.0\r\n")
    };
    encode_parts(start_line, &request.headers, &request.body)
}

/// The wire form of a bodiless response with the header lines `lines`, written straight from
/// them: for the responses the transaction layer makes itself from a request's headers (100
/// Trying), with no rsip `Response` and no copy of each header on the way.
pub(crate) fn encode_bodiless_response<'a, I: Iterator<Item = (&'a str, &'a str)>>(
    status: &StatusCode,
    lines: impl Fn() -> I,
) -> Bytes {
    let start_line = |out: &mut dyn fmt::Write| write_status_line(out, status);
    let lines = || lines().filter(|(name, _)| !name.eq_ignore_ascii_case("Content-Length"));
    encode_lines(start_line, lines, &[])
}

/// Serializes a response (see [`encode`]).
pub fn encode_response(response: &Response) -> Bytes {
    let start_line = |out: &mut dyn fmt::Write| write_status_line(out, &response.status_code);
    encode_parts(start_line, &response.headers, &response.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    const OPTIONS: &str = "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK0\r\n\
Via: SIP/2.0/UDP 10.0.0.3;branch=z9hG4bKz\r\n\
To: <sip:100@127.0.0.1>\r\n\
From: <sip:2000@10.0.0.1>;tag=abc\r\n\
Call-ID: cid\r\n\
CSeq: 7 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    fn request() -> Request {
        match parse(OPTIONS.as_bytes()).expect("valid") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("request expected"),
        }
    }

    #[test]
    fn method_names_and_uris_are_written_as_rsip_writes_them() {
        for method in Method::all() {
            assert_eq!(method_name(&method), method.to_string());
        }
        let mut checked = 0;
        for text in [
            "sip:100@127.0.0.1",
            "sips:alice:secret@example.com:5061;transport=tcp;lr;x=y",
            "sip:[2001:db8::1]:5070;maddr=10.0.0.1;ttl=5;user=phone",
            "sip:host;method=INVITE;received=1.2.3.4;branch=z9hG4bKx;tag=t;expires=60;q=0.5",
            "tel:+15551234",
        ] {
            // Only what rsip itself can read matters: a URI it refuses never reaches encode.
            let Ok(uri) = rsip::Uri::try_from(text) else {
                continue;
            };
            checked += 1;
            let mut written = String::new();
            write_uri(&mut written, &uri).expect("writes");
            assert_eq!(written, uri.to_string(), "{text}");
        }
        assert!(checked >= 3, "only {checked} test URIs parsed");
    }

    #[test]
    fn encoding_is_exact_size_and_counts_the_body() {
        let mut response = response_to(&request(), 200, Some("x"));
        response.body = vec![b'x'; 1234];
        let bytes = encode_response(&response);
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        assert!(
            text.contains("\r\nContent-Length: 1234\r\n\r\nxxx"),
            "{text}"
        );
        assert_eq!(text.len(), text.find("xxx").expect("body") + 1234);
        for n in [0, 9, 10, 99, 100, 65_535] {
            assert_eq!(
                content_length_line_len(n),
                format!("Content-Length: {n}\r\n\r\n").len()
            );
        }
    }

    #[test]
    fn response_copies_dialog_headers_and_adds_tag() {
        let response = response_to(&request(), 404, Some("t1"));
        let text = String::from_utf8(encode_response(&response).to_vec()).expect("utf8");
        assert!(text.starts_with("SIP/2.0 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK0\r\nVia: SIP/2.0/UDP 10.0.0.3"));
        assert!(text.contains("To: <sip:100@127.0.0.1>;tag=t1\r\n"));
        assert!(text.contains("CSeq: 7 OPTIONS\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let trying = response_to(&request(), 100, Some("t1"));
        let text = String::from_utf8(encode_response(&trying).to_vec()).expect("utf8");
        assert!(text.contains("To: <sip:100@127.0.0.1>\r\n"), "{text}");
    }

    #[test]
    fn dialog_forming_responses_copy_record_route() {
        let mut request = request();
        request
            .headers
            .push(Header::RecordRoute(rsip::headers::RecordRoute::new(
                "<sip:proxy.example.com;lr>",
            )));
        let ok =
            String::from_utf8(encode_response(&response_to(&request, 200, Some("t"))).to_vec())
                .expect("utf8");
        assert!(
            ok.contains("Record-Route: <sip:proxy.example.com;lr>\r\n"),
            "{ok}"
        );
        let busy =
            String::from_utf8(encode_response(&response_to(&request, 486, Some("t"))).to_vec())
                .expect("utf8");
        assert!(!busy.contains("Record-Route"), "{busy}");
    }

    #[test]
    fn encoded_messages_parse_back() {
        let mut response = response_to(&request(), 200, Some("x"));
        response.body = b"v=0\r\n".to_vec();
        let parsed = parse(&encode_response(&response)).expect("round trip");
        let SipMessage::Response(back) = parsed else {
            panic!()
        };
        assert_eq!(back.body, b"v=0\r\n");
        assert_eq!(back.status_code, StatusCode::OK);
    }

    #[test]
    fn warning_is_quoted_safely() {
        let mut response = response_to(&request(), 400, None);
        add_warning(&mut response, "switchboard", "bad \"thing\"\r\n");
        let text = String::from_utf8(encode_response(&response).to_vec()).expect("utf8");
        assert!(
            text.contains("Warning: 399 switchboard \"bad 'thing'''\"\r\n"),
            "{text}"
        );
    }

    #[test]
    fn raw_error_response_addresses_what_it_can() {
        let broken = OPTIONS.replace("CSeq: 7 OPTIONS", "CSeq: seven");
        let bytes =
            raw_error_response(broken.as_bytes(), 400, "malformed CSeq", "sb").expect("some");
        let text = String::from_utf8(bytes.to_vec()).expect("utf8");
        assert!(text.starts_with("SIP/2.0 400 Bad Request\r\n"));
        assert!(text.contains("Call-ID: cid\r\n"));
        assert!(text.contains("To: <sip:100@127.0.0.1>;tag="), "{text}");
        assert!(text.contains("Warning: 399 sb \"malformed CSeq\""));
        assert!(raw_error_response(b"garbage", 400, "x", "sb").is_none());
        assert!(raw_error_response(b"SIP/2.0 200 OK\r\n\r\n", 400, "x", "sb").is_none());
        let no_via = OPTIONS.replace("Via:", "Xia:");
        assert!(raw_error_response(no_via.as_bytes(), 400, "x", "sb").is_none());
    }
}
