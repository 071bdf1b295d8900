//! The parts of a REGISTER the registrar acts on, read from an rsip request.

use super::contact::{parse_contact_header, parse_delta_seconds, ContactValue};
use super::RegisterError;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method};

/// A REGISTER reduced to plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegisterRequest {
    pub call_id: String,
    pub cseq: u32,
    /// The `Expires` header, if any.
    pub expires: Option<u32>,
    /// Every Contact value across all Contact headers, in order.
    pub contacts: Vec<ContactValue>,
    /// Every Path value (RFC 3327) across all Path headers, in order: the proxies a request
    /// to the registered contact must pass, nearest the registrar first.
    pub path: Vec<String>,
}

impl RegisterRequest {
    /// Reads Call-ID, CSeq, Expires and Contact, including their compact forms (`i`, `m`),
    /// which rsip 0.4 leaves as `Header::Other`.
    pub(crate) fn from_request(request: &rsip::Request) -> Result<Self, RegisterError> {
        if request.method != Method::Register {
            return Err(RegisterError::NotRegister(request.method.to_string()));
        }
        let mut call_id = None;
        let mut cseq = None;
        let mut expires = None;
        let mut contacts = Vec::new();
        let mut path = Vec::new();
        for header in request.headers.iter() {
            match header {
                Header::CallId(value) => call_id = call_id.or(Some(value.value())),
                Header::Other(name, value) if name.eq_ignore_ascii_case("i") => {
                    call_id = call_id.or(Some(value.as_str()));
                }
                Header::CSeq(value) => cseq = cseq.or(Some(value.value())),
                Header::Expires(value) => expires = expires.or(Some(value.value())),
                Header::Contact(value) => contacts.extend(parse_contact_header(value.value())?),
                Header::Other(name, value) if name.eq_ignore_ascii_case("m") => {
                    contacts.extend(parse_contact_header(value)?);
                }
                Header::Other(name, value) if name.eq_ignore_ascii_case("Path") => {
                    path.extend(split_path(value)?);
                }
                _ => {}
            }
        }
        let call_id = call_id
            .map(str::trim)
            .ok_or(RegisterError::MissingHeader("Call-ID"))?;
        if call_id.is_empty() {
            return Err(bad_header("Call-ID", "empty"));
        }
        let cseq = parse_cseq(cseq.ok_or(RegisterError::MissingHeader("CSeq"))?)?;
        let expires = expires
            .map(|text| {
                parse_delta_seconds(text.trim())
                    .ok_or_else(|| bad_header("Expires", "not a number of seconds"))
            })
            .transpose()?;
        Ok(Self {
            call_id: call_id.to_owned(),
            cseq,
            expires,
            contacts,
            path,
        })
    }
}

/// The comma-separated `<uri>` values of one Path header (a comma inside the angle brackets
/// or a quoted display name does not split); an empty element or one without a bracketed URI
/// is refused.
fn split_path(text: &str) -> Result<Vec<String>, RegisterError> {
    crate::headers::split_unquoted(text, ',')
        .into_iter()
        .map(str::trim)
        .map(|value| {
            if value.contains('<') && value.contains('>') {
                Ok(value.to_owned())
            } else {
                Err(bad_header("Path", "each value must be a <uri>"))
            }
        })
        .collect()
}

/// `CSeq: <number> REGISTER`.
fn parse_cseq(text: &str) -> Result<u32, RegisterError> {
    let mut parts = text.split_whitespace();
    let number = parts
        .next()
        .filter(|number| number.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|number| number.parse::<u32>().ok())
        .ok_or_else(|| bad_header("CSeq", "sequence number is not a 32-bit number"))?;
    match (parts.next(), parts.next()) {
        (Some("REGISTER"), None) => Ok(number),
        (Some(_), None) => Err(bad_header("CSeq", "method is not REGISTER")),
        _ => Err(bad_header("CSeq", "expected \"<number> REGISTER\"")),
    }
}

fn bad_header(header: &'static str, reason: &str) -> RegisterError {
    RegisterError::BadHeader {
        header,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RegisterRequest, RegisterError> {
        let request = rsip::Request::try_from(text.replace('\n', "\r\n").as_str())
            .expect("test request parses");
        RegisterRequest::from_request(&request)
    }

    const HEAD: &str = "REGISTER sip:switchboard.example SIP/2.0\n\
        Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds\n\
        From: <sip:1001@switchboard.example>;tag=456248\n\
        To: <sip:1001@switchboard.example>\n";

    #[test]
    fn reads_all_contact_headers_and_compact_forms() {
        let request = parse(&format!(
            "{HEAD}i: abc@10.0.0.5\nCSeq: 7 REGISTER\nExpires: 600\n\
             m: <sip:1001@10.0.0.5>\nContact: <sip:1001@10.0.0.6>, <sip:1001@10.0.0.7>\n\
             Content-Length: 0\n\n"
        ))
        .unwrap();
        assert_eq!(request.call_id, "abc@10.0.0.5");
        assert_eq!(request.cseq, 7);
        assert_eq!(request.expires, Some(600));
        assert_eq!(request.contacts.len(), 3);
    }

    #[test]
    fn a_register_without_contact_is_a_query() {
        let request = parse(&format!(
            "{HEAD}Call-ID: q1\nCSeq: 1 REGISTER\nContent-Length: 0\n\n"
        ))
        .unwrap();
        assert!(request.contacts.is_empty());
        assert_eq!(request.expires, None);
    }

    #[test]
    fn reports_missing_and_bad_headers() {
        assert_eq!(
            parse(&format!("{HEAD}CSeq: 1 REGISTER\n\n")),
            Err(RegisterError::MissingHeader("Call-ID"))
        );
        assert_eq!(
            parse(&format!("{HEAD}Call-ID: x\n\n")),
            Err(RegisterError::MissingHeader("CSeq"))
        );
        for (extra, header) in [
            ("CSeq: one REGISTER\n", "CSeq"),
            ("CSeq: 99999999999 REGISTER\n", "CSeq"),
            ("CSeq: 1 INVITE\n", "CSeq"),
            ("CSeq: 1\n", "CSeq"),
            ("CSeq: 1 REGISTER\nExpires: soon\n", "Expires"),
        ] {
            let result = parse(&format!("{HEAD}Call-ID: x\n{extra}\n"));
            assert!(
                matches!(&result, Err(RegisterError::BadHeader { header: h, .. }) if *h == header),
                "{extra:?}: {result:?}"
            );
        }
    }

    #[test]
    fn reads_path_values_across_headers_in_order() {
        let request = parse(&format!(
            "{HEAD}Call-ID: p1\nCSeq: 1 REGISTER\n\
             Path: <sip:edge1.example;lr>, \"Edge, two\" <sip:edge2.example;lr>\n\
             Path: <sip:edge3.example;lr;x=a,b>;ob\n\
             Contact: <sip:1001@10.0.0.5>\nContent-Length: 0\n\n"
        ))
        .unwrap();
        assert_eq!(
            request.path,
            vec![
                "<sip:edge1.example;lr>",
                "\"Edge, two\" <sip:edge2.example;lr>",
                "<sip:edge3.example;lr;x=a,b>;ob",
            ]
        );
        let without = parse(&format!(
            "{HEAD}Call-ID: p2\nCSeq: 1 REGISTER\nContent-Length: 0\n\n"
        ))
        .unwrap();
        assert!(without.path.is_empty());
    }

    #[test]
    fn a_path_value_without_a_bracketed_uri_is_a_bad_header() {
        for path in ["sip:edge.example;lr", "<sip:edge.example;lr>, "] {
            let result = parse(&format!(
                "{HEAD}Call-ID: p3\nCSeq: 1 REGISTER\nPath: {path}\nContent-Length: 0\n\n"
            ));
            assert!(
                matches!(
                    &result,
                    Err(RegisterError::BadHeader { header: "Path", .. })
                ),
                "{path:?}: {result:?}"
            );
        }
    }

    #[test]
    fn refuses_other_methods() {
        let request = rsip::Request::try_from(
            "INVITE sip:1001@switchboard.example SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            RegisterRequest::from_request(&request),
            Err(RegisterError::NotRegister("INVITE".into()))
        );
    }
}
