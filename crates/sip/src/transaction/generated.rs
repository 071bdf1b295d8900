//! Messages the transaction layer writes itself: the ACK for a non-2xx final (§17.1.1.3),
//! 100 Trying (§17.2.1), the answer to a CANCEL (§9.2), and fresh branches and tags.

use super::fields::{self, Field};
use super::via::top_via_parm_text;
use crate::headers::name_and_value;
use crate::message::{encode_bodiless_response, method_name};
use bytes::Bytes;
use rand::distributions::Alphanumeric;
use rand::Rng;
use rsip::headers::{CSeq, ContentLength, MaxForwards, To, UntypedHeader, Via};
use rsip::{Header, Headers, Method, Request, Response, StatusCode, Uri, Version};

/// Random characters after the magic cookie: 16 alphanumerics ≈ 95 bits, URL- and token-safe.
const BRANCH_RANDOM_CHARS: usize = 16;
/// Random characters in a To tag we generate.
const TAG_RANDOM_CHARS: usize = 12;
/// Max-Forwards for a generated ACK when the INVITE had none (RFC 3261 §8.1.1.6).
const DEFAULT_MAX_FORWARDS: &str = "70";

fn random_token(len: usize) -> String {
    token_from(&mut rand::thread_rng(), len)
}

fn token_from(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new RFC 3261 branch: `z9hG4bK` followed by ≈95 bits of randomness in URL-safe characters.
pub fn new_branch() -> String {
    branch_from(&mut rand::thread_rng())
}

/// A new branch drawn from `rng`: for a transaction user that injects its randomness (seeded
/// in tests, so runs repeat exactly; from the OS in service — branches must not be guessable).
pub fn branch_from(rng: &mut impl Rng) -> String {
    format!("z9hG4bK{}", token_from(rng, BRANCH_RANDOM_CHARS))
}

/// A new To tag for a response the layer generates.
pub(crate) fn new_tag() -> String {
    random_token(TAG_RANDOM_CHARS)
}

/// Wire form of a request.
pub(crate) fn encode_request(request: &Request) -> Bytes {
    crate::message::encode_request(request)
}

/// Wire form of a response.
pub(crate) fn encode_response(response: &Response) -> Bytes {
    crate::message::encode_response(response)
}

/// A bodiless response to a request with the given headers (§8.2.6.2): all Vias, From, To
/// (with `to_tag` added if the To has none), Call-ID and CSeq.
pub(crate) fn response_for(
    request_headers: &Headers,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Response {
    let mut headers = fields::all_headers(request_headers, Field::Via);
    headers.extend(fields::first_header(request_headers, Field::From));
    if let Some(to) = fields::first_field(request_headers, Field::To) {
        let to = match to_tag {
            Some(tag) if fields::tag_param(to).is_none() => format!("{to};tag={tag}"),
            _ => to.to_owned(),
        };
        headers.push(Header::To(To::new(to)));
    }
    headers.extend(fields::first_header(request_headers, Field::CallId));
    headers.extend(fields::first_header(request_headers, Field::CSeq));
    headers.push(Header::ContentLength(ContentLength::new("0")));
    Response {
        status_code: StatusCode::Other(code, reason.to_owned()),
        version: Version::V2,
        headers: headers.into(),
        body: Vec::new(),
    }
}

/// The 100 Trying for an INVITE, encoded: no To tag (§8.2.6.2 exempts 100 from the tag rule,
/// and the TU has not chosen one yet), and the request's Timestamp copied, as §8.2.6.1
/// requires. The same bytes as encoding [`trying_for`], written in one allocation: every
/// INVITE gets one ready, and most never send it (the TU answers first).
pub(crate) fn encode_trying(request_headers: &Headers) -> Bytes {
    let first = |field: Field| {
        request_headers
            .iter()
            .find(move |h| field.value_of(h).is_some())
            .map(name_and_value)
    };
    let lines = || {
        let vias = request_headers
            .iter()
            .filter(|h| Field::Via.value_of(h).is_some())
            .map(name_and_value);
        // As `response_for` does: From, Call-ID and CSeq keep the name they came with (a
        // compact one too), To is written anew under its full name.
        let to = fields::first_field(request_headers, Field::To).map(|value| ("To", value));
        vias.chain(first(Field::From))
            .chain(to)
            .chain(first(Field::CallId))
            .chain(first(Field::CSeq))
            .chain(first(Field::Timestamp))
    };
    // Code 100 is rsip's `Trying`, written `100 Trying` as `trying_for`'s `Other(100, "Trying")`
    // is, without allocating the reason.
    encode_bodiless_response(&StatusCode::from(100), lines)
}

/// The 100 Trying as a `Response` (see [`encode_trying`]).
#[cfg(test)]
pub(crate) fn trying_for(request_headers: &Headers) -> Response {
    let mut trying = response_for(request_headers, 100, "Trying", None);
    if let Some(timestamp) = fields::first_header(request_headers, Field::Timestamp) {
        trying.headers.push(timestamp);
    }
    trying
}

/// What a client INVITE keeps to build the ACK for a non-2xx final (§17.1.1.3) and its
/// CANCEL (§9.1): the original Request-URI, only the top Via, Route, From, To, Call-ID and
/// CSeq number. The ACK's To comes from the response being acknowledged, since it carries the
/// UAS's tag; the CANCEL's is the INVITE's own.
#[derive(Debug, Clone)]
pub(crate) struct AckTemplate {
    uri: Uri,
    version: Version,
    via: Option<Header>,
    max_forwards: Header,
    routes: Vec<Header>,
    from: Option<Header>,
    to: Option<Header>,
    call_id: Option<Header>,
    cseq: Option<u32>,
}

impl AckTemplate {
    /// Captures what the ACK needs from the INVITE as it was sent.
    pub fn from_invite(invite: &Request) -> Self {
        let headers = &invite.headers;
        let max_forwards = fields::first_field(headers, Field::MaxForwards)
            .unwrap_or(DEFAULT_MAX_FORWARDS)
            .trim()
            .to_owned();
        Self {
            uri: invite.uri.clone(),
            version: invite.version.clone(),
            via: top_via_parm_text(headers).map(|v| Header::Via(Via::new(v))),
            max_forwards: Header::MaxForwards(MaxForwards::new(max_forwards)),
            routes: fields::all_headers(headers, Field::Route),
            from: fields::first_header(headers, Field::From),
            to: fields::first_header(headers, Field::To),
            call_id: fields::first_header(headers, Field::CallId),
            cseq: fields::cseq(headers).map(|(n, _)| n),
        }
    }

    /// The ACK for `response`.
    pub fn ack_for(&self, response: &Response) -> Request {
        let to = fields::first_header(&response.headers, Field::To);
        self.request(Method::Ack, to)
    }

    /// The CANCEL for the INVITE.
    pub fn cancel(&self) -> Request {
        self.request(Method::Cancel, self.to.clone())
    }

    fn request(&self, method: Method, to: Option<Header>) -> Request {
        let mut headers: Vec<Header> = Vec::with_capacity(8 + self.routes.len());
        headers.extend(self.via.clone());
        headers.push(self.max_forwards.clone());
        headers.extend(self.routes.iter().cloned());
        headers.extend(self.from.clone());
        headers.extend(to);
        headers.extend(self.call_id.clone());
        headers.extend(
            self.cseq
                .map(|n| Header::CSeq(CSeq::new(format!("{n} {}", method_name(&method))))),
        );
        headers.push(Header::ContentLength(ContentLength::new("0")));
        Request {
            method,
            uri: self.uri.clone(),
            version: self.version.clone(),
            headers: headers.into(),
            body: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn branches_are_cookie_prefixed_random_and_token_safe() {
        let branches: HashSet<String> = (0..1000).map(|_| new_branch()).collect();
        assert_eq!(branches.len(), 1000);
        for b in &branches {
            assert!(b.starts_with("z9hG4bK"));
            assert_eq!(b.len(), 7 + BRANCH_RANDOM_CHARS);
            assert!(b.chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn ack_for_non_2xx_follows_17_1_1_3() {
        let invite = Request::try_from(
            "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8, SIP/2.0/UDP other.example;branch=z9hG4bKo\r\n\
             Via: SIP/2.0/UDP third.example;branch=z9hG4bK3\r\n\
             Max-Forwards: 69\r\n\
             Route: <sip:p1.example.com;lr>\r\n\
             Route: <sip:p2.example.com;lr>\r\n\
             To: Bob <sip:bob@biloxi.com>\r\n\
             From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\n\
             Contact: <sip:alice@pc33.atlanta.com>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: 4\r\n\r\nv=0\n",
        )
        .expect("test request parses");
        let busy = Response::try_from(
            "SIP/2.0 486 Busy Here\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
             To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
             From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .expect("test response parses");
        let ack = AckTemplate::from_invite(&invite).ack_for(&busy);
        let text = ack.to_string();
        assert_eq!(
            text,
            "ACK sip:bob@biloxi.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
             Max-Forwards: 69\r\n\
             Route: <sip:p1.example.com;lr>\r\n\
             Route: <sip:p2.example.com;lr>\r\n\
             From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 ACK\r\n\
             Content-Length: 0\r\n\r\n"
        );
        // The wire form parses back.
        assert!(Request::try_from(text.as_str()).is_ok());
    }

    #[test]
    fn ack_from_a_sparse_invite_does_not_panic() {
        let invite =
            Request::try_from("INVITE sip:bob@biloxi.com SIP/2.0\r\n\r\n").expect("parses");
        let ack = AckTemplate::from_invite(&invite).ack_for(&Response::default());
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(
            fields::first_field(&ack.headers, Field::MaxForwards),
            Some("70")
        );
    }

    #[test]
    fn trying_copies_timestamp_and_adds_no_tag() {
        let invite = Request::try_from(
            "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8\r\n\
             To: Bob <sip:bob@biloxi.com>\r\n\
             From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             Call-ID: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\n\
             Timestamp: 54\r\n\r\n",
        )
        .expect("test request parses");
        let trying = trying_for(&invite.headers);
        assert_eq!(trying.status_code.code(), 100);
        assert_eq!(
            fields::first_field(&trying.headers, Field::Timestamp),
            Some("54")
        );
        assert_eq!(fields::to_tag(&trying.headers), None);
    }

    #[test]
    fn encoded_trying_is_the_encoded_trying_response() {
        for text in [
            "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
             v: SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\n\
             t: Bob <sip:bob@biloxi.com>\r\n\
             f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             i: a84b4c76e66710\r\n\
             CSeq: 314159 INVITE\r\n\
             Timestamp: 54 0.5\r\n\
             Content-Length: 0\r\n\r\n",
            "INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
        ] {
            let invite = Request::try_from(text).expect("test request parses");
            assert_eq!(
                encode_trying(&invite.headers),
                encode_response(&trying_for(&invite.headers))
            );
        }
    }

    #[test]
    fn response_for_adds_a_tag_only_when_missing() {
        let request = Request::try_from(
            "CANCEL sip:bob@biloxi.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
             Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\n\
             To: Bob <sip:bob@biloxi.com>\r\n\
             f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             i: a84b4c76e66710\r\n\
             CSeq: 314159 CANCEL\r\n\
             Content-Length: 0\r\n\r\n",
        )
        .expect("test request parses");
        let ok = response_for(&request.headers, 200, "OK", Some("t1"));
        assert_eq!(
            ok.to_string(),
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds8;received=192.0.2.1\r\n\
             Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKp\r\n\
             f: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
             To: Bob <sip:bob@biloxi.com>;tag=t1\r\n\
             i: a84b4c76e66710\r\n\
             CSeq: 314159 CANCEL\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let mut tagged = request.clone();
        tagged.headers = response_for(&request.headers, 200, "OK", Some("t1")).headers;
        let again = response_for(&tagged.headers, 200, "OK", Some("t2"));
        assert_eq!(fields::to_tag(&again.headers), Some("t1"));
    }
}
