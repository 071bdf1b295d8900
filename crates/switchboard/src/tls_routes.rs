//! Where Switchboard opens a TLS connection when it has none to a destination, and which
//! name the certificate must carry there (the transports take these as
//! [`transport::TlsTarget`]s; a socket address alone says neither):
//!
//! - a trunk's TLS gateway: its address, verified by `gateway_tls_name` (or its IP address);
//!   always verified — a carrier has a CA-issued certificate, and the calls out are billed.
//! - a phone registered over TLS: its Contact's host and port (not the source port of the
//!   registration connection, which dies with it), verified by the Contact host only with
//!   `[sip] tls_verify_phones`. Most desk phones and softphones have no certificate a CA
//!   signed (self-signed or none, and they are addressed by IP), so verifying by default
//!   would make every call to a phone whose connection dropped fail; unverified, the
//!   connection is still encrypted against eavesdroppers, and the phone was authenticated
//!   by digest when it registered the Contact. Deployments whose phones carry certificates
//!   from their CA (`[sip] tls_ca`) turn verification on.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use transport::TlsTarget;

use crate::config::{Config, GatewayTransport};

/// The default port of a TLS Contact without one (RFC 3261 §19.1.2: 5061 for TLS).
const TLS_PORT: u16 = 5061;

/// The routes of every trunk gateway reached over TLS, by gateway address.
pub fn gateway_routes(config: &Config) -> Vec<(SocketAddr, TlsTarget)> {
    config
        .trunks
        .iter()
        .filter_map(|trunk| trunk.gateway.as_ref())
        .filter(|gateway| gateway.transport == GatewayTransport::Tls)
        .map(|gateway| {
            let server_name = gateway
                .tls_name
                .clone()
                .unwrap_or_else(|| gateway.address.ip().to_string());
            let target = TlsTarget {
                connect: gateway.address,
                server_name,
                verify: true,
                until: None,
            };
            (gateway.address, target)
        })
        .collect()
}

/// Where to reach a phone that registered `contact` over a TLS connection from `source`,
/// once that connection is gone: the Contact's host (when it is an IP address; a host name
/// is not resolved, so the registration's source IP stands in) and port (5061 when none).
/// `None` for a Contact that is not a SIP URI.
pub fn phone_route(
    contact: &str,
    source: SocketAddr,
    verify: bool,
    until: Instant,
) -> Option<TlsTarget> {
    let host_port = sip::headers::uri_host_port(contact)?;
    let (host, port) = split_host_port(host_port)?;
    let ip = host.parse::<IpAddr>().unwrap_or(source.ip());
    Some(TlsTarget {
        connect: SocketAddr::new(ip, port.unwrap_or(TLS_PORT)),
        server_name: host.to_owned(),
        verify,
        until: Some(until),
    })
}

/// `host[:port]`, with IPv6 references in brackets (`[2001:db8::1]:5061`).
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match text.split_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_is_reached_at_its_contact_not_its_registration_port() {
        let source = SocketAddr::from(([192, 0, 2, 7], 40312));
        let until = Instant::now();
        let route = phone_route(
            "sip:1001@192.0.2.7:5071;transport=tls",
            source,
            false,
            until,
        )
        .expect("a SIP URI");
        assert_eq!(route.connect, SocketAddr::from(([192, 0, 2, 7], 5071)));
        assert_eq!(route.server_name, "192.0.2.7");
        assert!(!route.verify);
        assert_eq!(route.until, Some(until));
        // sips: without a port: 5061; a host name is verified by name, reached at the source IP.
        let route = phone_route("sips:1001@phone.example", source, true, until).expect("URI");
        assert_eq!(route.connect, SocketAddr::from(([192, 0, 2, 7], 5061)));
        assert_eq!(route.server_name, "phone.example");
        assert!(route.verify);
        let route = phone_route("sips:1001@[2001:db8::1]:5081", source, true, until).expect("v6");
        assert_eq!(
            route.connect,
            "[2001:db8::1]:5081"
                .parse::<std::net::SocketAddr>()
                .expect("addr")
        );
        assert_eq!(route.server_name, "2001:db8::1");
        assert_eq!(phone_route("tel:+15551234", source, true, until), None);
        assert_eq!(
            phone_route("sip:1001@h:notaport", source, true, until),
            None
        );
    }
}
