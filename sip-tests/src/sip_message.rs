//! A received SIP message, split into start line, headers and body: just enough structure for
//! tests to assert on what Switchboard sent. Deliberately independent of Switchboard's own parser.

use crate::error::{HarnessError, HarnessResult};

/// One SIP request or response as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    /// `SIP/2.0 200 OK` or `INVITE sip:... SIP/2.0`.
    pub start_line: String,
    /// Headers in order of appearance, names expanded from compact forms.
    pub headers: Vec<(String, String)>,
    /// The body, possibly empty.
    pub body: String,
}

impl SipMessage {
    /// Parses a datagram. Header folding (obsolete, RFC 3261 §7.3.1) is joined into one line.
    pub fn parse(bytes: &[u8]) -> HarnessResult<Self> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let bad = |reason: &str| HarnessError::BadMessage {
            reason: reason.to_owned(),
            text: text.clone(),
        };
        let (head, body) = match text.split_once("\r\n\r\n") {
            Some((head, body)) => (head, body),
            None => (text.trim_end_matches("\r\n"), ""),
        };
        let mut lines = head.split("\r\n");
        let start_line = lines
            .next()
            .filter(|line| !line.is_empty())
            .ok_or_else(|| bad("empty message"))?
            .to_owned();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                let (_, value) = headers
                    .last_mut()
                    .ok_or_else(|| bad("continuation line before any header"))?;
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad("header line without a colon"))?;
            headers.push((expand_compact(name.trim()), value.trim().to_owned()));
        }
        Ok(SipMessage {
            start_line,
            headers,
            body: body.to_owned(),
        })
    }

    /// The status code of a response, `None` for a request.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line.strip_prefix("SIP/2.0 ")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<&str> {
        if self.start_line.starts_with("SIP/") {
            return None;
        }
        self.start_line.split_whitespace().next()
    }

    /// The first value of header `name` (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every value of header `name`, in order; comma-joined values are not split.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        let name = expand_compact(name);
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The CSeq number and method, if the CSeq header is well formed.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut parts = self.header("CSeq")?.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        Some((number, parts.next()?))
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<&str> {
        tag_param(self.header("To")?)
    }

    /// The user part of the From URI (`2000` in `"A" <sip:2000@host>;tag=x`).
    pub fn from_user(&self) -> Option<&str> {
        let from = self.header("From")?;
        let uri = match (from.find('<'), from.find('>')) {
            (Some(open), Some(close)) if open < close => &from[open + 1..close],
            _ => from.split(';').next()?.trim(),
        };
        let rest = uri
            .strip_prefix("sip:")
            .or_else(|| uri.strip_prefix("sips:"))?;
        rest.split_once('@').map(|(user, _)| user)
    }

    /// The URI inside the first Contact header (`<...>` stripped).
    pub fn contact_uri(&self) -> Option<&str> {
        let contact = self.header("Contact")?;
        match (contact.find('<'), contact.find('>')) {
            (Some(open), Some(close)) if open < close => Some(&contact[open + 1..close]),
            _ => contact.split(';').next().map(str::trim),
        }
    }

    /// The message as text, for failure output.
    pub fn to_text(&self) -> String {
        let mut text = self.start_line.clone();
        for (name, value) in &self.headers {
            text.push_str(&format!("\r\n{name}: {value}"));
        }
        text.push_str("\r\n\r\n");
        text.push_str(&self.body);
        text
    }
}

/// The `tag=` parameter of a From/To value.
fn tag_param(value: &str) -> Option<&str> {
    // Parameters after the closing '>' (or the whole value when there is none).
    let params = value.rsplit_once('>').map_or(value, |(_, after)| after);
    params.split(';').find_map(|param| {
        let (name, tag) = param.split_once('=')?;
        name.trim().eq_ignore_ascii_case("tag").then(|| tag.trim())
    })
}

/// RFC 3261 §7.3.3 compact header names, expanded so lookups need one spelling.
fn expand_compact(name: &str) -> String {
    let long = match name.to_ascii_lowercase().as_str() {
        "i" => "Call-ID",
        "m" => "Contact",
        "e" => "Content-Encoding",
        "l" => "Content-Length",
        "c" => "Content-Type",
        "f" => "From",
        "s" => "Subject",
        "k" => "Supported",
        "t" => "To",
        "v" => "Via",
        _ => return name.to_owned(),
    };
    long.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &str = "SIP/2.0 401 Unauthorized\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:1001@x>;tag=a\r\nTo: \"A\" <sip:1001@x;transport=udp>;tag=b7\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nWWW-Authenticate: Digest realm=\"switchboard\",\r\n  algorithm=SHA-256\r\nWWW-Authenticate: Digest realm=\"switchboard\", algorithm=MD5\r\nContact: <sip:1001@127.0.0.1:5070>;expires=60\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_response() {
        let message = SipMessage::parse(RESPONSE.as_bytes()).expect("valid response");
        assert_eq!(message.status(), Some(401));
        assert_eq!(message.method(), None);
        assert_eq!(
            message.header("via"),
            Some("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1")
        );
        assert_eq!(message.cseq(), Some((1, "REGISTER")));
        assert_eq!(message.to_tag(), Some("b7"));
        assert_eq!(message.contact_uri(), Some("sip:1001@127.0.0.1:5070"));
        assert_eq!(
            message.headers_named("www-authenticate"),
            vec![
                "Digest realm=\"switchboard\", algorithm=SHA-256",
                "Digest realm=\"switchboard\", algorithm=MD5"
            ]
        );
    }

    #[test]
    fn parses_a_request_with_body() {
        let text = "INVITE sip:100@h SIP/2.0\r\nContent-Length: 4\r\n\r\nv=0\n";
        let message = SipMessage::parse(text.as_bytes()).expect("valid request");
        assert_eq!(message.method(), Some("INVITE"));
        assert_eq!(message.status(), None);
        assert_eq!(message.body, "v=0\n");
    }

    #[test]
    fn rejects_garbage() {
        assert!(SipMessage::parse(b"").is_err());
        assert!(SipMessage::parse(b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n").is_err());
        assert!(SipMessage::parse(b"SIP/2.0 200 OK\r\n folded first\r\n\r\n").is_err());
    }

    #[test]
    fn from_user_is_the_uri_user_part() {
        let text = "INVITE sip:1001@h SIP/2.0\r\nFrom: \"Caller 2000\" <sip:2000@127.0.0.1:5070>;tag=a\r\n\r\n";
        let message = SipMessage::parse(text.as_bytes()).expect("valid request");
        assert_eq!(message.from_user(), Some("2000"));
        let bare = SipMessage::parse(b"BYE sip:x SIP/2.0\r\nf: sip:trunk@h;tag=1\r\n\r\n")
            .expect("valid request");
        assert_eq!(bare.from_user(), Some("trunk"));
        let hostonly = SipMessage::parse(b"BYE sip:x SIP/2.0\r\nFrom: <sip:h>\r\n\r\n")
            .expect("valid request");
        assert_eq!(hostonly.from_user(), None);
    }

    #[test]
    fn to_tag_ignores_uri_parameters() {
        assert_eq!(tag_param("<sip:a@b;tag=uri>"), None);
        assert_eq!(tag_param("sip:a@b;tag=x"), Some("x"));
    }
}
