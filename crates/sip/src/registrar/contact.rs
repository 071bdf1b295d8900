//! Contact header values of a REGISTER (RFC 3261 §20.10, §10.2.1; RFC 5626 §4.2 for
//! `+sip.instance` and `reg-id`).
//!
//! Parsed by hand rather than through rsip's typed Contact because a REGISTER may carry
//! several comma-separated values in one header, a `*`, and display names containing commas,
//! and every failure must come back as a reason we can put in a 400.

use super::RegisterError;
use std::fmt;

/// How much of an offending Contact value an error repeats.
const MAX_ECHO_CHARS: usize = 120;

/// A Contact `q` value (RFC 3261 §20.10) in thousandths, so it orders and compares exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QValue(u16);

impl QValue {
    /// q=1, the highest preference and the one assumed when a Contact carries no q.
    pub const ONE: QValue = QValue(1000);

    /// A q value from thousandths; `None` above 1000.
    pub fn from_thousandths(thousandths: u16) -> Option<Self> {
        (thousandths <= 1000).then_some(Self(thousandths))
    }

    /// The value in thousandths (0..=1000).
    pub fn thousandths(self) -> u16 {
        self.0
    }

    /// Parses `qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")])`.
    pub fn parse(text: &str) -> Option<Self> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let thousandths: u16 = fraction
            .bytes()
            .zip([100, 10, 1])
            .map(|(digit, weight)| u16::from(digit - b'0') * weight)
            .sum();
        match whole {
            "0" => Some(Self(thousandths)),
            "1" if thousandths == 0 => Some(Self::ONE),
            _ => None,
        }
    }
}

impl fmt::Display for QValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("0"),
            1000 => f.write_str("1"),
            thousandths => {
                let fraction = format!("{thousandths:03}");
                write!(f, "0.{}", fraction.trim_end_matches('0'))
            }
        }
    }
}

/// One value of a Contact header in a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContactValue {
    /// `*`: all bindings of the AOR (only with `Expires: 0`).
    Wildcard,
    /// A contact address with the parameters the registrar cares about.
    Address(ContactAddress),
}

/// A contact address and its registration parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContactAddress {
    /// The URI as written, without angle brackets.
    pub uri: String,
    /// The `expires` parameter, saturated at `u32::MAX` (RFC 3261 §10.2.1.1).
    pub expires: Option<u32>,
    pub q: Option<QValue>,
    /// `+sip.instance`, unquoted (typically `<urn:uuid:...>`).
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
}

impl ContactAddress {
    /// What identifies "the same binding" across REGISTERs: the instance (and reg-id) when
    /// the UA sent one (RFC 5626 §6), since its IP and port may change behind NAT; otherwise
    /// the URI with its case-insensitive parts lowercased (a practical subset of the
    /// RFC 3261 §19.1.4 comparison: user part stays case-sensitive, parameter order matters).
    pub(crate) fn binding_key(&self) -> String {
        if let Some(instance) = &self.instance {
            let reg_id = self.reg_id.map(|id| id.to_string()).unwrap_or_default();
            return format!("instance {instance} {reg_id}");
        }
        let (scheme, rest) = self.uri.split_once(':').unwrap_or(("", &self.uri));
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => rest.split_at(at),
            None => ("", rest),
        };
        format!(
            "uri {}:{}{}",
            scheme.to_ascii_lowercase(),
            userinfo,
            hostpart.to_ascii_lowercase()
        )
    }
}

/// Parses one Contact header value, which may hold several comma-separated contacts.
pub(crate) fn parse_contact_header(value: &str) -> Result<Vec<ContactValue>, RegisterError> {
    let contacts: Vec<ContactValue> = crate::headers::split_unquoted(value, ',')
        .into_iter()
        .map(str::trim)
        .filter(|element| !element.is_empty())
        .map(parse_contact_value)
        .collect::<Result<_, _>>()?;
    if contacts.is_empty() {
        return Err(bad_contact(value, "empty Contact header"));
    }
    Ok(contacts)
}

fn parse_contact_value(text: &str) -> Result<ContactValue, RegisterError> {
    if text == "*" {
        return Ok(ContactValue::Wildcard);
    }
    let (uri, params) = split_uri_and_params(text)?;
    validate_uri(text, uri)?;
    let mut contact = ContactAddress {
        uri: uri.to_owned(),
        expires: None,
        q: None,
        instance: None,
        reg_id: None,
    };
    for param in crate::headers::split_unquoted(params, ';') {
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (param, None),
        };
        let value = value.map(|value| unquote(text, value)).transpose()?;
        match name.to_ascii_lowercase().as_str() {
            "expires" => {
                let value = value.ok_or_else(|| bad_contact(text, "expires has no value"))?;
                contact.expires = Some(
                    parse_delta_seconds(&value)
                        .ok_or_else(|| bad_contact(text, "expires is not a number of seconds"))?,
                );
            }
            "q" => {
                let value = value.ok_or_else(|| bad_contact(text, "q has no value"))?;
                contact.q = Some(
                    QValue::parse(&value)
                        .ok_or_else(|| bad_contact(text, "q is not a value between 0 and 1"))?,
                );
            }
            "+sip.instance" => {
                let value = value
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| bad_contact(text, "+sip.instance has no value"))?;
                contact.instance = Some(value);
            }
            "reg-id" => {
                let value = value.ok_or_else(|| bad_contact(text, "reg-id has no value"))?;
                contact.reg_id = Some(
                    value
                        .parse()
                        .map_err(|_| bad_contact(text, "reg-id is not a number"))?,
                );
            }
            _ => {}
        }
    }
    Ok(ContactValue::Address(contact))
}

/// Splits `[display-name] <uri> *(;param)` or `addr-spec *(;param)` into URI and params.
fn split_uri_and_params(text: &str) -> Result<(&str, &str), RegisterError> {
    let open = crate::headers::find_unquoted(text, '<');
    match open {
        Some(open) => {
            let display_name = text.get(..open).unwrap_or("").trim();
            check_display_name(text, display_name)?;
            let after_open = text.get(open + 1..).unwrap_or("");
            let close = after_open
                .find('>')
                .ok_or_else(|| bad_contact(text, "'<' without matching '>'"))?;
            let uri = after_open.get(..close).unwrap_or("").trim();
            let params = after_open.get(close + 1..).unwrap_or("").trim_start();
            if !params.is_empty() && !params.starts_with(';') {
                return Err(bad_contact(text, "unexpected text after '>'"));
            }
            Ok((uri, params))
        }
        None => {
            // Without angle brackets every ';' starts a header parameter (RFC 3261 §20.10).
            let (uri, params) = match text.find(';') {
                Some(semicolon) => (
                    text.get(..semicolon).unwrap_or("").trim(),
                    text.get(semicolon..).unwrap_or(""),
                ),
                None => (text.trim(), ""),
            };
            if uri.contains('"') {
                return Err(bad_contact(text, "a display name needs the URI in <...>"));
            }
            Ok((uri, params))
        }
    }
}

fn check_display_name(text: &str, display_name: &str) -> Result<(), RegisterError> {
    if display_name.starts_with('"') {
        // Must be exactly one quoted-string; unquote refuses anything after the closing quote.
        unquote(text, display_name).map(|_| ())
    } else if display_name.contains('"') {
        Err(bad_contact(text, "stray quote in display name"))
    } else {
        Ok(())
    }
}

fn validate_uri(text: &str, uri: &str) -> Result<(), RegisterError> {
    if uri.is_empty() {
        return Err(bad_contact(text, "no URI"));
    }
    if let Some(bad) = uri
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        return Err(bad_contact(
            text,
            &format!("URI contains the character {bad:?}"),
        ));
    }
    let scheme = uri.split_once(':').map(|(scheme, _)| scheme);
    match scheme {
        Some(scheme)
            if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") => {}
        Some(scheme) => {
            return Err(bad_contact(
                text,
                &format!("URI scheme {scheme:?} is not sip or sips"),
            ))
        }
        None => return Err(bad_contact(text, "URI has no scheme")),
    }
    // The TU will parse this URI with rsip to route calls to it; refuse what it cannot read.
    rsip::Uri::try_from(uri)
        .map(|_| ())
        .map_err(|error| bad_contact(text, &format!("URI does not parse: {error}")))
}

/// `delta-seconds`; values beyond `u32::MAX` saturate, as RFC 3261 §10.2.1.1 asks.
pub(crate) fn parse_delta_seconds(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = text.trim_start_matches('0');
    if digits.len() > 10 {
        return Some(u32::MAX);
    }
    let value: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(u32::try_from(value).unwrap_or(u32::MAX))
}

/// A parameter value with surrounding quotes removed and quoted-pairs resolved.
fn unquote(text: &str, value: &str) -> Result<String, RegisterError> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                return if chars.as_str().trim().is_empty() {
                    Ok(out)
                } else {
                    Err(bad_contact(text, "text after a closing quote"))
                }
            }
            '\\' => match chars.next() {
                Some(escaped) => out.push(escaped),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(bad_contact(text, "unterminated quoted string"))
}

fn bad_contact(contact: &str, reason: &str) -> RegisterError {
    let mut shown: String = contact.chars().take(MAX_ECHO_CHARS).collect();
    if contact.chars().nth(MAX_ECHO_CHARS).is_some() {
        shown.push('…');
    }
    RegisterError::BadContact {
        contact: shown,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn address(value: &ContactValue) -> &ContactAddress {
        match value {
            ContactValue::Address(address) => address,
            ContactValue::Wildcard => panic!("expected an address, got *"),
        }
    }

    fn reason(result: Result<Vec<ContactValue>, RegisterError>) -> String {
        match result {
            Err(RegisterError::BadContact { reason, .. }) => reason,
            other => panic!("expected BadContact, got {other:?}"),
        }
    }

    #[test]
    fn parses_name_addr_with_params() {
        let contacts = parse_contact_header(
            "\"Agent, Desk <1>\" <sip:1001@10.0.0.5:5060;transport=tcp>;expires=120;q=0.7;\
             +sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=1",
        )
        .unwrap();
        assert_eq!(contacts.len(), 1);
        let contact = address(&contacts[0]);
        assert_eq!(contact.uri, "sip:1001@10.0.0.5:5060;transport=tcp");
        assert_eq!(contact.expires, Some(120));
        assert_eq!(contact.q, QValue::from_thousandths(700));
        assert_eq!(
            contact.instance.as_deref(),
            Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>")
        );
        assert_eq!(contact.reg_id, Some(1));
    }

    #[test]
    fn addr_spec_semicolons_start_header_params() {
        let contacts =
            parse_contact_header("sip:1001@10.0.0.5;expires=30;+sip.instance=\"<urn:uuid:1>\"")
                .unwrap();
        let contact = address(&contacts[0]);
        assert_eq!(contact.uri, "sip:1001@10.0.0.5");
        assert_eq!(contact.expires, Some(30));
        assert_eq!(contact.instance.as_deref(), Some("<urn:uuid:1>"));
    }

    #[test]
    fn splits_comma_separated_values_but_not_inside_quotes_or_brackets() {
        let contacts =
            parse_contact_header("<sip:a,1@h>;q=1, \"B, b\" <sip:b@h> ,sip:c@h").unwrap();
        let uris: Vec<&str> = contacts.iter().map(|c| address(c).uri.as_str()).collect();
        assert_eq!(uris, ["sip:a,1@h", "sip:b@h", "sip:c@h"]);
    }

    #[test]
    fn recognises_the_wildcard() {
        assert_eq!(
            parse_contact_header(" * ").unwrap(),
            vec![ContactValue::Wildcard]
        );
    }

    #[test]
    fn malformed_contacts_give_reasons() {
        for (header, fragment) in [
            ("", "empty"),
            (" , ", "empty"),
            ("<sip:a@h", "'<' without matching '>'"),
            ("<sip:a@h> junk", "after '>'"),
            ("<>", "no URI"),
            ("<mailto:a@h>", "not sip or sips"),
            ("<a@h>", "no scheme"),
            ("<sip:a b@h>", "character ' '"),
            ("\"Name sip:a@h", "display name"),
            ("\"Name\" x <sip:a@h>", "after a closing quote"),
            ("Na\"me\" <sip:a@h>", "stray quote"),
            ("<sip:a@h>;expires=soon", "expires"),
            ("<sip:a@h>;expires", "expires has no value"),
            ("<sip:a@h>;q=1.5", "q is not"),
            ("<sip:a@h>;q=0.1234", "q is not"),
            ("<sip:a@h>;reg-id=x", "reg-id"),
            ("<sip:a@h>;+sip.instance", "+sip.instance"),
            ("<sip:a@h>;+sip.instance=\"<urn:x>", "unterminated"),
            ("<sip:>", "does not parse"),
        ] {
            let got = reason(parse_contact_header(header));
            assert!(got.contains(fragment), "{header:?}: {got}");
        }
    }

    #[test]
    fn delta_seconds_saturate() {
        assert_eq!(parse_delta_seconds("0"), Some(0));
        assert_eq!(parse_delta_seconds("0003600"), Some(3600));
        assert_eq!(parse_delta_seconds("4294967295"), Some(u32::MAX));
        assert_eq!(parse_delta_seconds("4294967296"), Some(u32::MAX));
        assert_eq!(
            parse_delta_seconds("99999999999999999999999"),
            Some(u32::MAX)
        );
        assert_eq!(parse_delta_seconds("-1"), None);
        assert_eq!(parse_delta_seconds(""), None);
        assert_eq!(parse_delta_seconds("1e3"), None);
    }

    #[test]
    fn q_values_parse_and_display() {
        for (text, thousandths, shown) in [
            ("0", 0, "0"),
            ("0.", 0, "0"),
            ("0.5", 500, "0.5"),
            ("0.05", 50, "0.05"),
            ("0.123", 123, "0.123"),
            ("1", 1000, "1"),
            ("1.000", 1000, "1"),
        ] {
            let q = QValue::parse(text).unwrap();
            assert_eq!(q.thousandths(), thousandths, "{text}");
            assert_eq!(q.to_string(), shown, "{text}");
        }
        for text in ["", "1.1", "2", ".5", "0.5x", "01", "-0"] {
            assert_eq!(QValue::parse(text), None, "{text}");
        }
    }

    #[test]
    fn binding_keys_ignore_case_where_sip_does() {
        let key = |header: &str| {
            let contacts = parse_contact_header(header).unwrap();
            address(&contacts[0]).binding_key()
        };
        assert_eq!(
            key("<SIP:Alice@HOST.example>"),
            key("<sip:Alice@host.example>")
        );
        assert_ne!(
            key("<sip:alice@host.example>"),
            key("<sip:Alice@host.example>")
        );
        assert_eq!(
            key("<sip:a@10.0.0.1:5060>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"),
            key("<sip:a@10.0.0.9:7000>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"),
            "the instance identifies the binding, not the NATed address"
        );
        assert_ne!(
            key("<sip:a@h>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"),
            key("<sip:a@h>;+sip.instance=\"<urn:uuid:1>\";reg-id=2"),
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(header in ".{0,200}") {
            let _ = parse_contact_header(&header);
        }

        #[test]
        fn never_panics_on_contact_like_text(header in "[<>\"\\\\;,=*a-z:@ .0-9+]{0,80}") {
            let _ = parse_contact_header(&header);
        }
    }
}
