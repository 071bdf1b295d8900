//! What a request must satisfy before call control acts on it (RFC 3261 §8.2), and which
//! trunk an INVITE belongs to.

use super::refusal::Refusal;
use crate::config::{Config, TrunkConfig};
use sip::headers::{header_value, list_values};
use sip::rsip::{Method, Request};
use sip::Peer;

/// Option tags Switchboard implements: RFC 4028 session timers.
const SUPPORTED_EXTENSIONS: &[&str] = &["timer"];

/// The first general check a request fails, or None.
pub fn check_request(request: &Request) -> Option<Refusal> {
    if sip::message::max_forwards(request) == 0 && request.method != Method::Ack {
        return Some(Refusal::TooManyHops);
    }
    let scheme = request.uri.scheme.as_ref().map(|s| s.to_string());
    if !matches!(scheme.as_deref(), Some("sip" | "sips" | "tel") | None) {
        return Some(Refusal::UnsupportedScheme);
    }
    // RFC 3261 §8.2.2.3: ACK and CANCEL are never refused for an unknown Require.
    if !matches!(request.method, Method::Ack | Method::Cancel) {
        let unsupported = unsupported_extensions(request);
        if !unsupported.is_empty() {
            return Some(Refusal::UnsupportedExtension(unsupported));
        }
    }
    None
}

/// The option tags in Require that Switchboard does not implement.
pub fn unsupported_extensions(request: &Request) -> Vec<String> {
    list_values(&request.headers, "Require")
        .into_iter()
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .filter(|tag| {
            !SUPPORTED_EXTENSIONS
                .iter()
                .any(|s| s.eq_ignore_ascii_case(tag))
        })
        .map(str::to_string)
        .collect()
}

/// How an INVITE from outside is admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum TrunkDecision {
    /// The source address is in this trunk's ACL.
    ByAddress(String),
    /// Not in any ACL, but some trunks take digest credentials: verify or challenge.
    NeedsCredentials,
    /// Not in any ACL and no trunk takes credentials.
    Forbidden,
}

/// Finds the trunk whose ACL covers `source`.
pub fn trunk_for(config: &Config, source: Peer) -> TrunkDecision {
    let ip = source.addr.ip();
    if let Some(trunk) = config
        .trunks
        .iter()
        .find(|t| t.allow.iter().any(|net| net.contains(&ip)))
    {
        return TrunkDecision::ByAddress(trunk.name.clone());
    }
    if config.trunks.iter().any(|t| t.credentials.is_some()) {
        TrunkDecision::NeedsCredentials
    } else {
        TrunkDecision::Forbidden
    }
}

/// The trunk whose digest username is `username`.
pub fn trunk_by_username<'a>(config: &'a Config, username: &str) -> Option<&'a TrunkConfig> {
    config.trunks.iter().find(|t| {
        t.credentials
            .as_ref()
            .is_some_and(|c| c.username == username)
    })
}

/// The dialled number: the Request-URI user, else the To user.
pub fn dialled_number(request: &Request) -> Option<String> {
    if let Some(user) = request.uri.user() {
        return Some(user.to_string());
    }
    let to = header_value(&request.headers, "To")?;
    let (uri, _) = sip::headers::split_name_addr(to);
    sip::headers::uri_user(uri).map(str::to_string)
}
