//! Outgoing SIP over TLS (RFC 3261 §26.3.1): the client side of a TLS connection Switchboard
//! opens itself — to a carrier's gateway reachable only over TLS, or back to a phone whose
//! registration connection dropped. rustls on the `ring` provider, like the listener.
//!
//! A socket address does not say whom a certificate must name, so the core tells the
//! transports, per destination, where to connect and which name to verify ([`TlsTarget`]):
//! the gateway's configured host name, or the host of a phone's Contact URI. Server
//! certificates are checked against the Mozilla roots (`webpki-roots`) plus the operator's
//! extra CAs (`[sip] tls_ca`). A target may ask for no verification: most desk phones have
//! no certificate a CA signed, so the operator chooses (`[sip] tls_verify_phones`).

use crate::tls::{crypto_provider, TlsError, TlsIdentity};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Where a TLS connection for a destination is opened, and whose certificate it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsTarget {
    /// The address to connect to (a phone's Contact host and port, not the source port of
    /// the connection it registered over, which died with that connection).
    pub connect: SocketAddr,
    /// The name sent as SNI and required in the certificate's subjectAltName: a DNS name,
    /// or an IP address (then an IP SAN is required; no SNI is sent for it).
    pub server_name: String,
    /// `false` encrypts without checking the certificate (phones with self-signed or no
    /// CA-issued certificates; the operator's choice, see the module doc).
    pub verify: bool,
    /// When the route may be forgotten (a registration binding's expiry); `None`: never.
    pub until: Option<Instant>,
}

impl TlsTarget {
    /// A target verified by the address itself (an IP SAN): what is used for a TLS
    /// destination nobody described.
    pub fn by_address(addr: SocketAddr) -> Self {
        Self {
            connect: addr,
            server_name: addr.ip().to_string(),
            verify: true,
            until: None,
        }
    }
}

/// The client configurations outgoing handshakes use: one verifying server certificates,
/// one not. The verifying one is replaced when the extra CAs are reloaded.
#[derive(Debug)]
pub struct TlsConnector {
    verifying: RwLock<Arc<ClientConfig>>,
    unverified: Arc<ClientConfig>,
    /// Our client certificate, shared by both configurations and swapped in place.
    own: Arc<OwnCertificate>,
}

impl TlsConnector {
    /// Trusts the Mozilla roots plus `extra` (the operator's CAs, e.g. a lab or carrier CA).
    /// No client certificate is presented until one is set.
    pub fn new(extra: Option<&RootCertStore>) -> Result<Self, TlsError> {
        let own = Arc::new(OwnCertificate::default());
        let provider = Arc::new(crypto_provider());
        let unverified = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Unusable(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_client_cert_resolver(own.clone());
        Ok(Self {
            verifying: RwLock::new(verifying_config(extra, &own)?),
            unverified: Arc::new(unverified),
            own,
        })
    }

    /// Sets (or, with `None`, removes) the client certificate handshakes present when the
    /// server asks for one: handshakes from now on use it; open connections are untouched.
    pub fn replace_own_certificate(&self, identity: Option<&TlsIdentity>) {
        let key = identity.map(TlsIdentity::certified_key);
        match self.own.current.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
    }

    /// Replaces the extra CAs: handshakes from now on use them; open connections are untouched.
    pub fn replace_roots(&self, extra: Option<&RootCertStore>) -> Result<(), TlsError> {
        let config = verifying_config(extra, &self.own)?;
        match self.verifying.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// The connector for one handshake.
    pub(crate) fn connector(&self, verify: bool) -> tokio_rustls::TlsConnector {
        let config = if verify {
            match self.verifying.read() {
                Ok(current) => current.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            }
        } else {
            self.unverified.clone()
        };
        tokio_rustls::TlsConnector::from(config)
    }
}

fn verifying_config(
    extra: Option<&RootCertStore>,
    own: &Arc<OwnCertificate>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(extra) = extra {
        roots.roots.extend(extra.roots.iter().cloned());
    }
    let config = ClientConfig::builder_with_provider(Arc::new(crypto_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Unusable(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_cert_resolver(own.clone());
    Ok(Arc::new(config))
}

/// Switchboard's own client certificate, offered to a server that asks for one (a carrier
/// requiring mutual TLS); none offered while unset. Whether the server accepts it is the
/// server's business: a server that requires one and gets none ends the handshake.
#[derive(Debug, Default)]
struct OwnCertificate {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl OwnCertificate {
    fn get(&self) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.get()
    }

    fn has_certs(&self) -> bool {
        self.get().is_some()
    }
}

/// The name a handshake verifies, from a [`TlsTarget`]'s `server_name`.
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| TlsError::Unusable(format!("{name:?} is not a host name or IP address")))
}

/// Accepts any certificate, but still checks that the server holds its key (the handshake
/// signature), so the connection is encrypted to whoever answered at the address: it stops
/// eavesdroppers, not an active man in the middle. Used only where the operator said so.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
