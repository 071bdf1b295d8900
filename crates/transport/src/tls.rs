//! SIP over TLS (RFC 3261 §26): the server identity (certificate chain and key from PEM),
//! swapped in place on reload so new handshakes use the new certificate while connections
//! already open keep theirs, and the acceptor the TLS stream listener wraps each accepted
//! TCP connection in. rustls on the `ring` provider: no OpenSSL.

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The ring provider: it builds in seconds with only a C compiler (aws-lc-rs needs a long C
/// build), and its TLS 1.2/1.3 suites with X25519/P-256 are what SIP phones and carriers speak.
/// rustls 0.23.48 deprecates it for lacking post-quantum key exchange, which no SIP peer uses.
#[allow(deprecated)]
pub(crate) fn crypto_provider() -> rustls::crypto::CryptoProvider {
    provider::default_provider()
}

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    /// The certificate file could not be read.
    #[error("cannot read certificate file {path}: {reason}")]
    CertFile {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The key file could not be read.
    #[error("cannot read key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The certificate PEM holds no usable certificate.
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) in {0}")]
    NoCertificate(String),
    /// The key PEM holds no usable private key.
    #[error("no PEM private key (PKCS#8, PKCS#1 or SEC1) in {0}")]
    NoKey(String),
    /// rustls refused the pair (unsupported key type, key not matching the certificate …).
    #[error("certificate and key cannot be used together: {0}")]
    Unusable(String),
}

/// A server certificate chain with its signing key, ready for handshakes.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    key: Arc<CertifiedKey>,
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = std::fs::read(cert).map_err(|e| TlsError::CertFile {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
        let key_pem = std::fs::read(key).map_err(|e| TlsError::KeyFile {
            path: key.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_pem(
            &cert_pem,
            &key_pem,
            &cert.display().to_string(),
            &key.display().to_string(),
        )
    }

    /// [`TlsIdentity::from_pem_files`] for PEM text already in memory; the names are for errors.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_name: &str,
        key_name: &str,
    ) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(TlsError::NoCertificate(cert_name.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|_| TlsError::NoKey(key_name.to_owned()))?;
        let certified = CertifiedKey::from_der(chain, key, &crypto_provider())
            .map_err(|e| TlsError::Unusable(e.to_string()))?;
        Ok(Self {
            key: Arc::new(certified),
        })
    }

    /// The chain and signing key, for a handshake.
    pub(crate) fn certified_key(&self) -> Arc<CertifiedKey> {
        self.key.clone()
    }

    /// SHA-256 fingerprint of the leaf certificate, as `AB:CD:…` (what `openssl x509
    /// -fingerprint -sha256` prints and what an operator pins in a phone).
    pub fn fingerprint(&self) -> String {
        let leaf = self.key.cert.first().map_or(&[][..], |c| c.as_ref());
        Sha256::digest(leaf)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Reads the CA certificates (PEM) that trunks' client certificates must chain to.
pub fn client_roots_from_pem_file(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let name = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| TlsError::CertFile {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| TlsError::NoCertificate(name.clone()))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::Unusable(format!("{name}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate(name));
    }
    Ok(Arc::new(roots))
}

/// The identity handshakes use, replaceable while the listener runs.
#[derive(Debug)]
pub struct ServerIdentity {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerIdentity {
    /// Starts with `identity`.
    pub fn new(identity: TlsIdentity) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(identity.key),
        })
    }

    /// Replaces the identity: handshakes from now on present it; open connections are untouched.
    pub fn replace(&self, identity: TlsIdentity) {
        match self.current.write() {
            Ok(mut current) => *current = identity.key,
            Err(poisoned) => *poisoned.into_inner() = identity.key,
        }
    }

    /// The fingerprint of the certificate new handshakes present.
    pub fn fingerprint(&self) -> String {
        TlsIdentity { key: self.get() }.fingerprint()
    }

    fn get(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A rustls server configuration presenting this identity. With `client_roots`, clients
    /// are asked for a certificate chaining to them (optional: phones have none).
    pub fn server_config(
        self: &Arc<Self>,
        client_roots: Option<Arc<RootCertStore>>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(crypto_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Unusable(e.to_string()))?;
        let builder = match client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| TlsError::Unusable(e.to_string()))?,
            ),
        };
        let config = builder.with_cert_resolver(Arc::new(Resolver(self.clone())));
        Ok(Arc::new(config))
    }
}

/// The acceptor TLS and WSS listeners wrap each accepted connection in, replaceable while
/// they run: reloading the client CAs (mutual TLS) builds a new server configuration, which
/// handshakes from then on use; connections already up keep what they verified.
#[derive(Clone)]
pub(crate) struct Acceptors {
    current: Arc<RwLock<tokio_rustls::TlsAcceptor>>,
    identity: Arc<ServerIdentity>,
}

impl Acceptors {
    pub(crate) fn new(
        identity: Arc<ServerIdentity>,
        client_roots: Option<Arc<RootCertStore>>,
    ) -> Result<Self, TlsError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config(client_roots)?);
        Ok(Self {
            current: Arc::new(RwLock::new(acceptor)),
            identity,
        })
    }

    /// The acceptor for the next handshake.
    pub(crate) fn get(&self) -> tokio_rustls::TlsAcceptor {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// New handshakes ask for client certificates chaining to `client_roots` (none: ask for none).
    pub(crate) fn replace_client_roots(
        &self,
        client_roots: Option<Arc<RootCertStore>>,
    ) -> Result<(), TlsError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.identity.server_config(client_roots)?);
        match self.current.write() {
            Ok(mut current) => *current = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Resolver(Arc<ServerIdentity>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen makes a certificate");
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    #[test]
    fn fingerprint_is_sha256_of_the_leaf_in_colon_hex() {
        let (cert, key) = made();
        let identity =
            TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes(), "c", "k").expect("usable");
        let fingerprint = identity.fingerprint();
        assert_eq!(fingerprint.len(), 32 * 3 - 1);
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).expect("PEM");
        let first = format!("{:02X}", Sha256::digest(der.as_ref())[0]);
        assert!(fingerprint.starts_with(&first), "{fingerprint}");
    }

    #[test]
    fn unusable_input_says_which_part() {
        let (cert, key) = made();
        let (_, other_key) = made();
        assert_eq!(
            TlsIdentity::from_pem(b"junk", key.as_bytes(), "c.pem", "k.pem").map(drop),
            Err(TlsError::NoCertificate("c.pem".to_owned()))
        );
        assert_eq!(
            TlsIdentity::from_pem(cert.as_bytes(), b"junk", "c.pem", "k.pem").map(drop),
            Err(TlsError::NoKey("k.pem".to_owned()))
        );
        assert!(matches!(
            TlsIdentity::from_pem(cert.as_bytes(), other_key.as_bytes(), "c", "k"),
            Err(TlsError::Unusable(_))
        ));
    }

    #[test]
    fn replace_changes_what_new_handshakes_get() {
        let (cert, key) = made();
        let (cert2, key2) = made();
        let first = TlsIdentity::from_pem(cert.as_bytes(), key.as_bytes(), "c", "k").expect("ok");
        let second =
            TlsIdentity::from_pem(cert2.as_bytes(), key2.as_bytes(), "c", "k").expect("ok");
        let server = ServerIdentity::new(first.clone());
        assert!(Arc::ptr_eq(&server.get(), &first.key));
        server.replace(second.clone());
        assert!(Arc::ptr_eq(&server.get(), &second.key));
    }
}
