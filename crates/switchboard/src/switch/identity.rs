//! Who is calling, as the agent's phone and the CDR see it: the network-asserted identity and
//! the redirecting number from trunks inside the trust domain (RFC 3325, RFC 5806), dropped
//! from any other source, and the caller's request for privacy (RFC 3323) honoured toward the
//! agent while the CDR keeps the real number.

use sip::headers::{header_value, list_values, split_name_addr, uri_user};
use sip::rsip::Headers;

/// The From an agent sees when the caller asked for privacy (RFC 3323 §4.1.1.3).
pub const ANONYMOUS_FROM: &str = "\"Anonymous\" <sip:anonymous@anonymous.invalid>";

/// The caller's identity for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The caller's number for routing (caller lists), CDRs and logs: the asserted identity
    /// from a trusted trunk, else the From user.
    pub number: String,
    /// The From (display name and URI, no tag) the agent's INVITE carries.
    pub from_for_agent: String,
    /// P-Asserted-Identity values passed to the agent.
    pub asserted: Vec<String>,
    /// Diversion values passed to the agent, in order.
    pub diversion: Vec<String>,
    /// The caller asked not to be identified.
    pub private: bool,
}

impl CallerIdentity {
    /// Reads the identity of an INVITE from a trunk; `trusted` when the trunk is configured
    /// with `trust_identity`.
    pub fn of(headers: &Headers, trusted: bool) -> CallerIdentity {
        let from = header_value(headers, "From").unwrap_or(ANONYMOUS_FROM);
        let from_number = user_of(from);
        let asserted = trusted_values(headers, "P-Asserted-Identity", trusted);
        let number = asserted
            .iter()
            .find_map(|identity| user_of(identity))
            .or(from_number)
            .unwrap_or("anonymous")
            .to_string();
        // A privacy request is for the trust domain's privacy service (RFC 3323, RFC 3325):
        // from a trunk outside it the header means nothing and is dropped like the rest.
        let private = trusted
            && list_values(headers, "Privacy").iter().any(|value| {
                value.split(';').any(|token| {
                    matches!(
                        token.trim().to_ascii_lowercase().as_str(),
                        "id" | "user" | "header"
                    )
                })
            });
        let diversion = trusted_values(headers, "Diversion", trusted);
        CallerIdentity {
            number,
            from_for_agent: if private {
                ANONYMOUS_FROM.to_string()
            } else {
                without_tag(from)
            },
            asserted: if private { Vec::new() } else { asserted },
            diversion,
            private,
        }
    }
}

/// The values of header `name`, only from a trusted source (nothing from anyone else).
fn trusted_values(headers: &Headers, name: &str, trusted: bool) -> Vec<String> {
    if !trusted {
        return Vec::new();
    }
    list_values(headers, name)
        .into_iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The user part of a name-addr's URI.
fn user_of(name_addr: &str) -> Option<&str> {
    uri_user(split_name_addr(name_addr).0)
}

/// A From value without its tag (the agent leg gets a tag of its own).
fn without_tag(from: &str) -> String {
    let (uri, _) = split_name_addr(from);
    let display = from.find('<').map_or("", |i| from[..i].trim());
    if display.is_empty() {
        format!("<{uri}>")
    } else {
        format!("{display} <{uri}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip::message::push_header;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::default();
        for (name, value) in lines {
            push_header(&mut headers, name, *value);
        }
        headers
    }

    const FROM: &str = "\"Front desk\" <sip:2000@pbx.example.com>;tag=abc";
    const PAI: &str = "<sip:+15551234567@carrier.example.com>";
    const DIVERSION: &str = "<sip:+15550000@carrier.example.com>;reason=unconditional";

    #[test]
    fn a_trusted_trunk_passes_its_asserted_identity_and_diversion() {
        let id = CallerIdentity::of(
            &headers(&[
                ("From", FROM),
                ("P-Asserted-Identity", PAI),
                ("Diversion", DIVERSION),
            ]),
            true,
        );
        assert_eq!(id.number, "+15551234567");
        assert_eq!(
            id.from_for_agent,
            "\"Front desk\" <sip:2000@pbx.example.com>"
        );
        assert_eq!(id.asserted, vec![PAI.to_string()]);
        assert_eq!(id.diversion, vec![DIVERSION.to_string()]);
        assert!(!id.private);
    }

    #[test]
    fn an_untrusted_source_cannot_assert_anything() {
        let id = CallerIdentity::of(
            &headers(&[
                ("From", FROM),
                ("P-Asserted-Identity", PAI),
                ("Diversion", DIVERSION),
            ]),
            false,
        );
        assert_eq!(id.number, "2000");
        assert!(id.asserted.is_empty());
        assert!(id.diversion.is_empty());
    }

    #[test]
    fn privacy_hides_the_caller_from_the_agent_but_not_from_the_record() {
        for privacy in ["id", "header;id", "user", "id; critical"] {
            let id = CallerIdentity::of(
                &headers(&[
                    ("From", FROM),
                    ("P-Asserted-Identity", PAI),
                    ("Privacy", privacy),
                ]),
                true,
            );
            assert_eq!(id.number, "+15551234567", "{privacy}");
            assert_eq!(id.from_for_agent, ANONYMOUS_FROM, "{privacy}");
            assert!(id.asserted.is_empty(), "{privacy}");
            assert!(id.private, "{privacy}");
        }
        let none = CallerIdentity::of(&headers(&[("From", FROM), ("Privacy", "none")]), true);
        assert!(!none.private);
    }

    #[test]
    fn privacy_from_an_untrusted_source_changes_nothing() {
        let id = CallerIdentity::of(&headers(&[("From", FROM), ("Privacy", "id")]), false);
        assert!(!id.private);
        assert_eq!(
            id.from_for_agent,
            "\"Front desk\" <sip:2000@pbx.example.com>"
        );
    }

    #[test]
    fn a_tel_uri_assertion_gives_the_number() {
        let id = CallerIdentity::of(
            &headers(&[("From", FROM), ("P-Asserted-Identity", "<tel:+861381234>")]),
            true,
        );
        assert_eq!(id.number, "+861381234");
    }
}
