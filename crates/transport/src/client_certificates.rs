//! Client certificates of TLS connections (mutual TLS for trunks): the chain is verified
//! against the configured CA in the handshake (rustls' `WebPkiClientVerifier`, clients
//! without a certificate still connect so phones need none); what is kept here is the
//! verified leaf per connection, so call control can check that a trunk's connection
//! presented the certificate of the name it expects.

use dashmap::DashMap;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;

/// The verified end-entity certificate a TLS client presented.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    der: CertificateDer<'static>,
}

impl ClientCertificate {
    /// Wraps a leaf that the handshake verified.
    pub fn new(der: CertificateDer<'static>) -> Self {
        Self { der }
    }

    /// True when the certificate's subjectAltName covers `name` (a DNS name, with the usual
    /// wildcard rules, or an IP address), checked by webpki as for a server name (RFC 6125:
    /// the CN is not consulted when a SAN is present, and webpki never consults it).
    pub fn is_valid_for(&self, name: &str) -> bool {
        let Ok(name) = ServerName::try_from(name) else {
            return false;
        };
        webpki::EndEntityCert::try_from(&self.der)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
    }
}

/// The client certificate of every open TLS connection that presented one, by peer
/// address. A cheap-to-clone handle shared by the transports and call control.
#[derive(Debug, Clone, Default)]
pub struct ClientCertificates {
    by_peer: Arc<DashMap<SocketAddr, (u64, ClientCertificate)>>,
}

impl ClientCertificates {
    /// The certificate the connection from `peer` presented, if it is open and presented one.
    pub fn get(&self, peer: SocketAddr) -> Option<ClientCertificate> {
        self.by_peer.get(&peer).map(|entry| entry.1.clone())
    }

    pub(crate) fn insert(&self, peer: SocketAddr, connection: u64, cert: ClientCertificate) {
        self.by_peer.insert(peer, (connection, cert));
    }

    /// Forgets connection `connection` of `peer` (a newer connection's entry stays).
    pub(crate) fn remove(&self, peer: SocketAddr, connection: u64) {
        self.by_peer
            .remove_if(&peer, |_, (id, _)| *id == connection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_for(names: &[&str]) -> ClientCertificate {
        let made = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .expect("rcgen makes a certificate");
        ClientCertificate::new(made.cert.der().clone())
    }

    #[test]
    fn names_are_matched_against_the_subject_alt_names() {
        let cert = cert_for(&["carrier.example", "*.trunks.example"]);
        assert!(cert.is_valid_for("carrier.example"));
        assert!(cert.is_valid_for("sbc1.trunks.example"));
        assert!(!cert.is_valid_for("other.example"));
        assert!(!cert.is_valid_for("carrier.example.evil"));
        assert!(!cert.is_valid_for("not a name"));
    }

    #[test]
    fn entries_are_per_connection() {
        let certificates = ClientCertificates::default();
        let peer: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
        certificates.insert(peer, 1, cert_for(&["a.example"]));
        certificates.insert(peer, 2, cert_for(&["b.example"]));
        certificates.remove(peer, 1);
        let kept = certificates
            .get(peer)
            .expect("the newer connection's entry stays");
        assert!(kept.is_valid_for("b.example"));
        certificates.remove(peer, 2);
        assert!(certificates.get(peer).is_none());
    }
}
