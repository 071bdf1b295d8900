//! Mutual TLS for trunks: a trunk with `tls_client_name` is admitted only when its INVITE
//! came over a TLS connection whose client certificate (verified against
//! `[sip] tls_client_ca` in the handshake) names it. Anything else gets a 403 and a
//! `certificate-refused` security log line; the address or digest match alone is not enough.

use sip::{Peer, Transport};
use transport::ClientCertificates;

use super::Switch;
use crate::security::SecurityEventKind;
use sip::rsip::Request;
use sip::transaction::TransactionKey;
use std::time::Instant;

/// Why a trunk's connection does not prove its name; `None` when it does.
pub(super) fn refusal(
    certificates: &ClientCertificates,
    source: Peer,
    expected: &str,
) -> Option<&'static str> {
    if source.transport != Transport::Tls {
        return Some("the trunk must call over TLS with its client certificate");
    }
    match certificates.get(source.addr) {
        None => Some("no client certificate on the TLS connection"),
        Some(cert) if !cert.is_valid_for(expected) => {
            Some("the client certificate does not name this trunk")
        }
        Some(_) => None,
    }
}

impl Switch {
    /// Checks `trunk`'s certificate requirement for an INVITE from `source`; answers 403
    /// itself and returns false when it is not met.
    pub(super) fn trunk_certificate_admits(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        source: Peer,
        trunk: &str,
    ) -> bool {
        let expected = self
            .config
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .and_then(|t| t.tls_client_name.clone());
        let Some(expected) = expected else {
            return true;
        };
        let Some(reason) = refusal(&self.client_certificates, source, &expected) else {
            return true;
        };
        self.security_event(
            now,
            SecurityEventKind::CertificateRefused,
            request,
            source,
            reason,
        );
        self.reject_metric("forbidden-source");
        self.reply_error(now, key, request, 403, reason);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(transport: Transport) -> Peer {
        Peer {
            transport,
            addr: "127.0.0.1:5061".parse().expect("addr"),
        }
    }

    #[test]
    fn only_tls_with_no_certificate_or_the_wrong_one_is_refused_with_its_reason() {
        let certificates = ClientCertificates::default();
        assert_eq!(
            refusal(&certificates, peer(Transport::Udp), "carrier.example"),
            Some("the trunk must call over TLS with its client certificate")
        );
        assert_eq!(
            refusal(&certificates, peer(Transport::Tls), "carrier.example"),
            Some("no client certificate on the TLS connection")
        );
    }
}
