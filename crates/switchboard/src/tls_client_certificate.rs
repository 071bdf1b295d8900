//! Switchboard's own client certificate (`[sip] tls_client_cert` / `tls_client_key`), for
//! carriers that require mutual TLS: presented on the TLS connections Switchboard opens when
//! the server asks for one. Read at start and again on SIGHUP like the listener's certificate:
//! handshakes after a reload present the new one, connections already up keep theirs, and a
//! pair that does not load leaves the previous one in use.

use std::sync::Arc;

use anyhow::Context;
use transport::{TlsConnector, TlsIdentity};

use crate::config::TlsCertificate;

/// The configured client certificate and the connector that presents it.
pub struct OwnCertificate {
    source: Option<TlsCertificate>,
    connector: Arc<TlsConnector>,
}

impl OwnCertificate {
    /// Loads `source` (none: no certificate is presented) into `connector`.
    pub fn load(
        source: Option<TlsCertificate>,
        connector: Arc<TlsConnector>,
    ) -> anyhow::Result<Self> {
        let own = Self { source, connector };
        if let Some(source) = &own.source {
            own.connector
                .replace_own_certificate(Some(&read(source).context("sip.tls_client_cert")?));
        }
        Ok(own)
    }

    /// Whether a certificate is configured (and so something to reload).
    pub fn is_set(&self) -> bool {
        self.source.is_some()
    }

    /// Re-reads the files (SIGHUP); returns whether the new certificate is in use.
    pub fn reload(&self) -> bool {
        let Some(source) = &self.source else {
            return true;
        };
        match read(source) {
            Ok(identity) => {
                self.connector.replace_own_certificate(Some(&identity));
                true
            }
            Err(error) => {
                tracing::error!(
                    "TLS client certificate reload failed; the previous one stays in use: {error:#}"
                );
                false
            }
        }
    }
}

fn read(source: &TlsCertificate) -> anyhow::Result<TlsIdentity> {
    let TlsCertificate::Files { cert, key } = source else {
        anyhow::bail!("a client certificate is read from files");
    };
    let identity = TlsIdentity::from_pem_files(cert, key)?;
    tracing::info!(
        certificate = %cert.display(),
        sha256 = %identity.fingerprint(),
        "TLS client certificate loaded"
    );
    Ok(identity)
}
