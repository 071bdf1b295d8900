//! Reading header values out of rsip's untyped headers without re-parsing whole messages.
//!
//! rsip stores every header as its raw value string. The call path needs only a handful of
//! things from them (tags, CSeq, URIs, lists), and reads them many times per call, so these
//! are small, allocation-free scanners over the raw value that never panic on odd input.

use rsip::headers::untyped::UntypedHeader;
use rsip::{Header, Headers};

/// A header's canonical name and raw value.
pub fn name_and_value(header: &Header) -> (&str, &str) {
    macro_rules! untyped {
        ($($variant:ident => $name:literal),* $(,)?) => {
            match header {
                $(Header::$variant(h) => ($name, h.value()),)*
                Header::Other(name, value) => (name.as_str(), value.as_str()),
            }
        };
    }
    untyped! {
        Accept => "Accept", AcceptEncoding => "Accept-Encoding", AcceptLanguage => "Accept-Language",
        AlertInfo => "Alert-Info", Allow => "Allow", AuthenticationInfo => "Authentication-Info",
        Authorization => "Authorization", CSeq => "CSeq", CallId => "Call-ID", CallInfo => "Call-Info",
        Contact => "Contact", ContentDisposition => "Content-Disposition",
        ContentEncoding => "Content-Encoding", ContentLanguage => "Content-Language",
        ContentLength => "Content-Length", ContentType => "Content-Type", Date => "Date",
        ErrorInfo => "Error-Info", Event => "Event", Expires => "Expires", From => "From",
        InReplyTo => "In-Reply-To", MaxForwards => "Max-Forwards", MimeVersion => "MIME-Version",
        MinExpires => "Min-Expires", Organization => "Organization", Priority => "Priority",
        ProxyAuthenticate => "Proxy-Authenticate", ProxyAuthorization => "Proxy-Authorization",
        ProxyRequire => "Proxy-Require", RecordRoute => "Record-Route", ReplyTo => "Reply-To",
        Require => "Require", RetryAfter => "Retry-After", Route => "Route", Server => "Server",
        Subject => "Subject", SubscriptionState => "Subscription-State", Supported => "Supported",
        Timestamp => "Timestamp", To => "To", Unsupported => "Unsupported",
        UserAgent => "User-Agent", Via => "Via", Warning => "Warning",
        WwwAuthenticate => "WWW-Authenticate",
    }
}

/// The first value of header `name` (case-insensitive).
pub fn header_value<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| {
        let (n, v) = name_and_value(h);
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// Every value of header `name`, in message order (one per header line, not split on commas).
pub fn header_values<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers.iter().filter_map(move |h| {
        let (n, v) = name_and_value(h);
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// Every comma-separated element of every header `name` (Via, Route, Record-Route, Contact,
/// Require …), honouring quotes and angle brackets.
pub fn list_values<'a>(headers: &'a Headers, name: &'a str) -> Vec<&'a str> {
    header_values(headers, name).flat_map(split_list).collect()
}

/// Splits a header value on top-level commas (not inside `"..."` or `<...>`), trimmed, empty
/// elements dropped.
pub fn split_list(value: &str) -> Vec<&str> {
    split_unquoted(value, ',')
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Splits on `separator` where it is not inside a quoted-string or `<...>`; parts are
/// returned as they are (untrimmed, empty ones kept).
pub fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let (mut in_quotes, mut escaped, mut in_brackets) = (false, false, false);
    for (index, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' if !in_brackets => in_quotes = !in_quotes,
            '<' if !in_quotes => in_brackets = true,
            '>' if !in_quotes => in_brackets = false,
            c if c == separator && !in_quotes && !in_brackets => {
                parts.push(text.get(start..index).unwrap_or(""));
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

/// CSeq number and method.
pub fn cseq_of(headers: &Headers) -> Option<(u32, &str)> {
    let value = header_value(headers, "CSeq")?.trim();
    let (number, method) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    let method = method.trim();
    if method.is_empty() {
        return None;
    }
    Some((number.parse().ok()?, method))
}

/// The Call-ID.
pub fn call_id_of(headers: &Headers) -> Option<&str> {
    header_value(headers, "Call-ID").map(str::trim)
}

/// Splits a name-addr / addr-spec header value into its URI and the header parameters that
/// follow it. In the addr-spec form (no angle brackets) every `;param` is a header parameter
/// (RFC 3261 §20.10).
pub fn split_name_addr(value: &str) -> (&str, &str) {
    let value = value.trim();
    if let Some(open) = find_unquoted(value, '<') {
        let after = &value[open + 1..];
        if let Some(close) = after.find('>') {
            return (after[..close].trim(), &after[close + 1..]);
        }
        return (after.trim(), "");
    }
    match value.find(';') {
        Some(i) => (value[..i].trim(), &value[i..]),
        None => (value, ""),
    }
}

/// The byte index of the first `wanted` outside a quoted-string.
pub fn find_unquoted(value: &str, wanted: char) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == wanted && !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// A `;name=value` parameter from a parameter list such as the tail returned by
/// [`split_name_addr`]. A bare `;name` yields `Some("")`.
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let p = p.trim();
        match p.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case(name) => Some(v.trim().trim_matches('"')),
            None if p.eq_ignore_ascii_case(name) => Some(""),
            _ => None,
        }
    })
}

/// The `tag` parameter of a From or To value (a header parameter, never one of the URI's);
/// `None` for a malformed value (unterminated quote or bracket) rather than a guess.
pub fn tag_of(value: &str) -> Option<&str> {
    param(header_params(value), "tag").filter(|t| !t.is_empty())
}

/// The header parameters of a name-addr / addr-spec value: what follows `>` when the URI is
/// bracketed, else what follows the first `;` (RFC 3261 §20.10: without brackets, parameters
/// belong to the header, not the URI). A quoted display name may contain `<`, `>` or `;`; an
/// unterminated quote or bracket leaves no parameters.
fn header_params(value: &str) -> &str {
    let mut rest = value.trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut escaped = false;
        let close = quoted.char_indices().find_map(|(i, c)| {
            if escaped {
                escaped = false;
                None
            } else if c == '\\' {
                escaped = true;
                None
            } else {
                (c == '"').then_some(i)
            }
        });
        match close {
            Some(i) => rest = &quoted[i + 1..],
            None => return "",
        }
    }
    if let Some(open) = rest.find('<') {
        return match rest[open..].find('>') {
            Some(close) => &rest[open + close + 1..],
            None => "",
        };
    }
    match rest.find(';') {
        Some(i) => &rest[i..],
        None => "",
    }
}

/// The From tag of a message.
pub fn from_tag(headers: &Headers) -> Option<&str> {
    header_value(headers, "From").and_then(tag_of)
}

/// The To tag of a message.
pub fn to_tag(headers: &Headers) -> Option<&str> {
    header_value(headers, "To").and_then(tag_of)
}

/// The user part of a SIP URI (`sip:1001@host` → `1001`), without URI parameters.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .trim()
        .strip_prefix("sips:")
        .or_else(|| uri.trim().strip_prefix("sip:"))
        .or_else(|| uri.trim().strip_prefix("tel:"))?;
    let user = match rest.split_once('@') {
        Some((user, _)) => user,
        None if uri.trim().starts_with("tel:") => rest,
        None => return None,
    };
    let user = user.split([';', ':']).next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

/// The host[:port] part of a SIP URI.
pub fn uri_host_port(uri: &str) -> Option<&str> {
    let rest = uri
        .trim()
        .strip_prefix("sips:")
        .or_else(|| uri.trim().strip_prefix("sip:"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    let host = &rest[..end];
    (!host.is_empty()).then_some(host)
}

/// A URI parameter (`;transport=tcp`, `;lr`).
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let rest = uri.rsplit_once('@').map_or(uri, |(_, h)| h);
    let start = rest.find(';')?;
    let end = rest.find('?').unwrap_or(rest.len());
    if end < start {
        return None;
    }
    param(&rest[start..end], name)
}

/// Finds header lines by name in raw message text that did not parse, for a best-effort error
/// response. Compact names (`v`, `f`, `t`, `i`) count; the canonical name is returned.
pub fn find_raw_header_lines<'a>(
    text: &'a str,
    wanted: &[&'static str],
) -> Vec<(&'static str, &'a str)> {
    const COMPACT: &[(&str, &str)] = &[("v", "Via"), ("f", "From"), ("t", "To"), ("i", "Call-ID")];
    let mut found = Vec::new();
    for line in text.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let canonical = COMPACT
            .iter()
            .find(|(short, _)| short.eq_ignore_ascii_case(name))
            .map_or(name, |(_, long)| long);
        if let Some(w) = wanted.iter().find(|w| w.eq_ignore_ascii_case(canonical)) {
            found.push((*w, value.trim()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lists_split_on_top_level_commas_only() {
        assert_eq!(
            split_list(r#""Doe, John" <sip:a@b;x=1,2>, <sip:c@d> ,"#),
            vec![r#""Doe, John" <sip:a@b;x=1,2>"#, "<sip:c@d>"]
        );
    }

    #[test]
    fn tags_and_uris() {
        assert_eq!(
            tag_of(r#""A;tag=no" <sip:a@b;tag=no>;tag=yes"#),
            Some("yes")
        );
        assert_eq!(tag_of("sip:a@b;tag=t1"), Some("t1"));
        assert_eq!(tag_of("<sip:a@b>"), None);
        assert_eq!(
            uri_user("sip:1001@127.0.0.1:5060;transport=tcp"),
            Some("1001")
        );
        assert_eq!(uri_user("sip:127.0.0.1"), None);
        assert_eq!(uri_user("tel:+15551234"), Some("+15551234"));
        assert_eq!(
            uri_host_port("sip:1001@127.0.0.1:5060;transport=tcp"),
            Some("127.0.0.1:5060")
        );
        assert_eq!(
            uri_param("sip:1001@h;transport=TCP;lr", "transport"),
            Some("TCP")
        );
        assert_eq!(uri_param("sip:1001@h;lr", "lr"), Some(""));
    }

    proptest! {
        #[test]
        fn scanners_never_panic(s in ".{0,80}") {
            let _ = split_list(&s);
            let _ = tag_of(&s);
            let _ = uri_user(&s);
            let _ = uri_host_port(&s);
            let _ = uri_param(&s, "transport");
        }
    }
}
