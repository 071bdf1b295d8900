//! The certificates the TLS listeners present (SIP over TLS and HTTPS): read from the PEM
//! files the configuration names, or made at start for the demo, and re-read on SIGHUP so a
//! renewed certificate takes effect without a restart (handshakes after the reload present
//! the new one; connections and calls already up are untouched).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use transport::{ServerIdentity, TlsIdentity};

use crate::config::TlsCertificate;

/// A listener's certificate, with what is needed to load it again.
pub struct LoadedCertificate {
    /// What the configuration asked for.
    source: TlsCertificate,
    /// The identity handshakes use; replaced in place on reload.
    pub identity: Arc<ServerIdentity>,
    /// Which listener, for the log (`SIP` or `HTTPS`).
    label: &'static str,
}

impl LoadedCertificate {
    /// Loads `source`; a self-signed certificate's PEM is written under `demo_dir` so clients
    /// can trust it (`<demo_dir>/demo-cert.pem`).
    pub fn load(
        source: &TlsCertificate,
        label: &'static str,
        demo_dir: &Path,
    ) -> anyhow::Result<Self> {
        let identity = make_identity(source, label, demo_dir)?;
        Ok(Self {
            source: source.clone(),
            identity: ServerIdentity::new(identity),
            label,
        })
    }

    /// Reads the files again (SIGHUP). A certificate that does not load leaves the current
    /// one in place, logged as an error. A self-signed (demo) certificate is made anew.
    /// Which listener this is for (`SIP` or `HTTP`).
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Returns whether the new certificate is in use.
    pub fn reload(&self, demo_dir: &Path) -> bool {
        match make_identity(&self.source, self.label, demo_dir) {
            Ok(identity) => {
                self.identity.replace(identity);
                true
            }
            Err(error) => {
                tracing::error!(
                    listener = self.label,
                    "certificate reload failed; the previous certificate stays in use: {error:#}"
                );
                false
            }
        }
    }
}

fn make_identity(
    source: &TlsCertificate,
    label: &'static str,
    demo_dir: &Path,
) -> anyhow::Result<TlsIdentity> {
    let (identity, from) = match source {
        TlsCertificate::Files { cert, key } => (
            TlsIdentity::from_pem_files(cert, key)?,
            cert.display().to_string(),
        ),
        TlsCertificate::SelfSigned => {
            let path = demo_dir.join("demo-cert.pem");
            (self_signed(&path)?, path.display().to_string())
        }
    };
    tracing::info!(
        listener = label,
        certificate = %from,
        sha256 = %identity.fingerprint(),
        "TLS certificate loaded"
    );
    Ok(identity)
}

/// A certificate for `localhost` and `127.0.0.1`, its PEM written to `pem_path` for clients.
fn self_signed(pem_path: &Path) -> anyhow::Result<TlsIdentity> {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .context("generating the demo's self-signed certificate")?;
    let cert_pem = generated.cert.pem();
    let key_pem = generated.signing_key.serialize_pem();
    if let Some(dir) = pem_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(pem_path, &cert_pem)
        .with_context(|| format!("writing {}", pem_path.display()))?;
    Ok(TlsIdentity::from_pem(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
        "generated certificate",
        "generated key",
    )?)
}

/// Where the demo writes its certificate: beside the CDR directory.
pub fn demo_dir(cdr_dir: &Path) -> PathBuf {
    cdr_dir
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("tls")
}

/// A configured certificate pair that cannot be used, as `(key, message)`: the key is
/// `tls_cert` or `tls_key`, whichever file is at fault, for a located configuration error.
pub fn check_files(source: &TlsCertificate) -> Result<(), (&'static str, String)> {
    let TlsCertificate::Files { cert, key } = source else {
        return Ok(());
    };
    TlsIdentity::from_pem_files(cert, key)
        .map(drop)
        .map_err(|error| {
            let field = match error {
                transport::TlsError::CertFile { .. } | transport::TlsError::NoCertificate(_) => {
                    "tls_cert"
                }
                _ => "tls_key",
            };
            (field, error.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_certificate_is_written_for_clients_and_made_anew_on_reload() {
        let dir = tempfile::tempdir().expect("temp dir");
        let loaded = LoadedCertificate::load(&TlsCertificate::SelfSigned, "SIP", dir.path())
            .expect("rcgen makes a certificate");
        let pem = dir.path().join("demo-cert.pem");
        let before = std::fs::read_to_string(&pem).expect("the PEM is written for clients");
        assert!(before.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!before.contains("PRIVATE KEY"), "the key stays in memory");
        let served = loaded.identity.fingerprint();
        loaded.reload(dir.path());
        let after = std::fs::read_to_string(&pem).expect("read");
        assert_ne!(before, after, "a reload makes a new demo certificate");
        assert_ne!(served, loaded.identity.fingerprint(), "and serves it");
    }

    #[test]
    fn demo_dir_is_beside_the_cdr_directory() {
        assert_eq!(
            demo_dir(Path::new("./switchboard-data/cdr")),
            PathBuf::from("./switchboard-data/tls")
        );
    }

    #[test]
    fn a_reload_that_fails_keeps_the_current_certificate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen makes a certificate");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, made.cert.pem()).expect("write");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write");
        let source = TlsCertificate::Files {
            cert: cert.clone(),
            key,
        };
        let loaded = LoadedCertificate::load(&source, "SIP", dir.path()).expect("usable");
        let served = loaded.identity.fingerprint();
        std::fs::write(&cert, "garbage").expect("write");
        loaded.reload(dir.path());
        assert_eq!(loaded.identity.fingerprint(), served);
        assert_eq!(
            check_files(&source),
            Err((
                "tls_cert",
                format!(
                    "no PEM certificate (-----BEGIN CERTIFICATE-----) in {}",
                    cert.display()
                )
            ))
        );
    }
}
