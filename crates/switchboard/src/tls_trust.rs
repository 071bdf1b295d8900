//! The CA files SIP over TLS trusts, read at start and again on SIGHUP like the certificate:
//! `[sip] tls_client_ca` (trunks' client certificates must chain to it, mutual TLS) and
//! `[sip] tls_ca` (extra CAs, beside the Mozilla roots, for TLS connections Switchboard
//! opens). Handshakes after a reload use the new files; connections already up keep what
//! they verified. A file that does not load is logged as an error and both stay as they were.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use transport::Transports;

use crate::config::Config;

/// Root certificates read from one PEM file.
pub type Roots = Arc<tokio_rustls::rustls::RootCertStore>;

/// The CA files to re-read, and the transports whose handshakes use them.
pub struct TrustFiles {
    client_ca: Option<PathBuf>,
    extra_ca: Option<PathBuf>,
    transports: Transports,
}

/// `(client CAs, extra CAs)` as the configuration names them, or the first that does not load.
pub fn load(config: &Config) -> anyhow::Result<(Option<Roots>, Option<Roots>)> {
    let read = |path: &Option<PathBuf>, key: &str| {
        path.as_deref()
            .map(|path| {
                transport::client_roots_from_pem_file(path)
                    .with_context(|| format!("loading sip.{key} {}", path.display()))
            })
            .transpose()
    };
    Ok((
        read(&config.sip.tls_client_ca, "tls_client_ca")?,
        read(&config.sip.tls_ca, "tls_ca")?,
    ))
}

impl TrustFiles {
    /// The files `config` names, for `transports`.
    pub fn new(config: &Config, transports: Transports) -> Self {
        Self {
            client_ca: config.sip.tls_client_ca.clone(),
            extra_ca: config.sip.tls_ca.clone(),
            transports,
        }
    }

    /// Whether there is anything to reload.
    pub fn is_empty(&self) -> bool {
        self.client_ca.is_none() && self.extra_ca.is_none()
    }

    /// Re-reads both files; returns whether the new ones are in use.
    pub fn reload(&self) -> bool {
        let loaded = (|| {
            let read = |path: &Option<PathBuf>, key: &str| {
                path.as_deref()
                    .map(|path| {
                        transport::client_roots_from_pem_file(path)
                            .with_context(|| format!("sip.{key} {}", path.display()))
                    })
                    .transpose()
            };
            let client = read(&self.client_ca, "tls_client_ca")?;
            let extra = read(&self.extra_ca, "tls_ca")?;
            self.transports
                .replace_trust(client.clone(), extra.as_deref())
                .context("building the TLS configuration")?;
            anyhow::Ok((client, extra))
        })();
        match loaded {
            Ok((client, extra)) => {
                tracing::info!(
                    client_cas = client.as_ref().map_or(0, |r| r.len()),
                    extra_cas = extra.as_ref().map_or(0, |r| r.len()),
                    "TLS CA files reloaded"
                );
                true
            }
            Err(error) => {
                tracing::error!("TLS CA reload failed; the previous CAs stay in use: {error:#}");
                false
            }
        }
    }
}
