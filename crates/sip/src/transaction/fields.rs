//! The few header fields transaction matching reads (Call-ID, CSeq, tags, Via, Route), found
//! in rsip's untyped headers by full or compact name (RFC 3261 §7.3.3), without panicking.

use rsip::headers::UntypedHeader;
use rsip::{Header, Headers};

/// A header field the transaction layer reads or copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Route,
    MaxForwards,
    RSeq,
    Timestamp,
}

impl Field {
    /// Whether `name` (as it appeared on the wire) names this field, full or compact.
    pub fn names(self, name: &str) -> bool {
        let (full, compact) = match self {
            Field::Via => ("Via", Some("v")),
            Field::From => ("From", Some("f")),
            Field::To => ("To", Some("t")),
            Field::CallId => ("Call-ID", Some("i")),
            Field::CSeq => ("CSeq", None),
            Field::Route => ("Route", None),
            Field::MaxForwards => ("Max-Forwards", None),
            Field::RSeq => ("RSeq", None),
            Field::Timestamp => ("Timestamp", None),
        };
        name.eq_ignore_ascii_case(full) || compact.is_some_and(|c| name.eq_ignore_ascii_case(c))
    }

    /// The header's value if `header` is this field.
    pub fn value_of(self, header: &Header) -> Option<&str> {
        match (self, header) {
            (Field::Via, Header::Via(h)) => Some(h.value()),
            (Field::From, Header::From(h)) => Some(h.value()),
            (Field::To, Header::To(h)) => Some(h.value()),
            (Field::CallId, Header::CallId(h)) => Some(h.value()),
            (Field::CSeq, Header::CSeq(h)) => Some(h.value()),
            (Field::Route, Header::Route(h)) => Some(h.value()),
            (Field::MaxForwards, Header::MaxForwards(h)) => Some(h.value()),
            (Field::Timestamp, Header::Timestamp(h)) => Some(h.value()),
            (_, Header::Other(name, value)) if self.names(name) => Some(value.as_str()),
            _ => None,
        }
    }
}

/// The value of the first header that is `field`.
pub(crate) fn first_field(headers: &Headers, field: Field) -> Option<&str> {
    headers.iter().find_map(|h| field.value_of(h))
}

/// Call-ID, trimmed; compared case-sensitively (RFC 3261 §20.8).
pub(crate) fn call_id(headers: &Headers) -> Option<&str> {
    first_field(headers, Field::CallId)
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// CSeq sequence number and method token.
pub(crate) fn cseq(headers: &Headers) -> Option<(u32, &str)> {
    crate::headers::cseq_of(headers)
}

/// The `tag` parameter of a From or To value.
pub(crate) fn tag_param(value: &str) -> Option<&str> {
    crate::headers::tag_of(value)
}

/// From tag of a message.
pub(crate) fn from_tag(headers: &Headers) -> Option<&str> {
    tag_param(first_field(headers, Field::From)?)
}

/// To tag of a message.
pub(crate) fn to_tag(headers: &Headers) -> Option<&str> {
    tag_param(first_field(headers, Field::To)?)
}

/// Every header that is `field`, cloned, in order.
pub(crate) fn all_headers(headers: &Headers, field: Field) -> Vec<Header> {
    headers
        .iter()
        .filter(|h| field.value_of(h).is_some())
        .cloned()
        .collect()
}

/// The first header that is `field`, cloned.
pub(crate) fn first_header(headers: &Headers, field: Field) -> Option<Header> {
    headers
        .iter()
        .find(|h| field.value_of(h).is_some())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let text: String = lines.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let message = format!("OPTIONS sip:a@b SIP/2.0\r\n{text}\r\n");
        rsip::Request::try_from(message.as_str())
            .expect("test request parses")
            .headers
    }

    #[test]
    fn reads_fields_in_full_and_compact_form() {
        let h = headers(&[
            ("i", "a84b4c76e66710"),
            ("CSeq", "314159   INVITE"),
            ("f", "Alice <sip:alice@atlanta.com>;tag=1928301774"),
            ("t", "Bob <sip:bob@biloxi.com>"),
        ]);
        assert_eq!(call_id(&h), Some("a84b4c76e66710"));
        assert_eq!(cseq(&h), Some((314159, "INVITE")));
        assert_eq!(from_tag(&h), Some("1928301774"));
        assert_eq!(to_tag(&h), None);
    }

    #[test]
    fn tags_are_header_params_not_uri_params() {
        assert_eq!(
            tag_param("<sip:bob@biloxi.com;tag=uri>;tag=hdr"),
            Some("hdr")
        );
        assert_eq!(tag_param("sip:bob@biloxi.com;tag=a6c85cf"), Some("a6c85cf"));
        assert_eq!(tag_param("\"Bob <;tag=x>\" <sip:bob@b>;TAG=y"), Some("y"));
        assert_eq!(tag_param("<sip:bob@b>;tag="), None);
        assert_eq!(tag_param("\"unterminated <sip:bob@b>;tag=z"), None);
        assert_eq!(tag_param("<sip:bob@b;tag=z"), None);
        assert_eq!(tag_param(""), None);
    }

    #[test]
    fn malformed_cseq_is_none() {
        for bad in [
            "",
            "INVITE",
            "x INVITE",
            "1",
            "-1 INVITE",
            "99999999999 INVITE",
        ] {
            assert_eq!(cseq(&headers(&[("CSeq", bad)])), None, "{bad:?}");
        }
    }
}
