//! `tls_cert` / `tls_key`, read the same way in `[sip]` (SIP over TLS) and `[http]` (HTTPS):
//! both or neither. The files themselves are read by `start_check` (and again by `run`), so a
//! file that is missing, unreadable or not PEM is a located error for `check-config` too.

use std::path::PathBuf;

use super::diagnostics::Diagnostics;
use super::model::TlsCertificate;
use super::reader::{Field, TableReader};

/// The certificate pair in `table`, `Some(None)` when neither key is set.
/// The outer `None` means an error was recorded.
pub(super) fn read_pair(
    d: &mut Diagnostics<'_>,
    table: &TableReader<'_>,
) -> Option<Option<TlsCertificate>> {
    read_named_pair(d, table, ("tls_cert", "tls_key"))
}

/// [`read_pair`] under other key names (`[sip] tls_client_cert` / `tls_client_key`).
pub(super) fn read_named_pair(
    d: &mut Diagnostics<'_>,
    table: &TableReader<'_>,
    (cert_key, key_key): (&'static str, &'static str),
) -> Option<Option<TlsCertificate>> {
    let cert = table.optional(d, cert_key, file_path);
    let key = table.optional(d, key_key, file_path);
    match (cert?, key?) {
        (Some(cert), Some(key)) => Some(Some(TlsCertificate::Files { cert, key })),
        (None, None) => Some(None),
        (Some(_), None) => {
            d.error(
                &table.path().key(cert_key),
                format!("{cert_key} needs {key_key} (the certificate's private key, PEM)"),
            );
            None
        }
        (None, Some(_)) => {
            d.error(
                &table.path().key(key_key),
                format!("{key_key} needs {cert_key} (the certificate chain, PEM)"),
            );
            None
        }
    }
}

pub(super) fn file_path(d: &mut Diagnostics<'_>, field: &Field<'_>) -> Option<PathBuf> {
    field.parsed(d, |text| {
        if text.trim().is_empty() {
            Err("must name a PEM file".to_owned())
        } else {
            Ok(PathBuf::from(text))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::PathBuf;

    use crate::config::testing::{error_lines, valid};
    use crate::config::TlsCertificate;

    fn files(cert: &str, key: &str) -> Option<TlsCertificate> {
        Some(TlsCertificate::Files {
            cert: PathBuf::from(cert),
            key: PathBuf::from(key),
        })
    }

    #[test]
    fn sip_tls_listener_with_its_certificate() {
        let config = valid(
            "[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"/etc/sb/cert.pem\"\ntls_key = \"/etc/sb/key.pem\"\n",
        );
        assert_eq!(
            config.sip.listen_tls,
            vec![SocketAddr::from(([127, 0, 0, 1], 5061))]
        );
        assert_eq!(config.sip.tls, files("/etc/sb/cert.pem", "/etc/sb/key.pem"));
        // The other listeners keep their defaults.
        assert_eq!(config.sip.listen_udp.len(), 1);
    }

    #[test]
    fn no_tls_unless_asked() {
        let config = valid("");
        assert!(config.sip.listen_tls.is_empty());
        assert_eq!(config.sip.tls, None);
        assert_eq!(config.http.tls, None);
    }

    #[test]
    fn a_tls_listener_without_a_certificate_is_refused() {
        assert_eq!(
            error_lines("[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\n"),
            vec!["t.toml:2:14: sip.listen_tls: TLS listeners need a certificate: set tls_cert and tls_key (PEM files)"]
        );
    }

    #[test]
    fn a_certificate_without_a_tls_listener_is_refused() {
        assert_eq!(
            error_lines("[sip]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n"),
            vec![
                "t.toml:2:12: sip.tls_cert: no TLS listener uses this certificate: set listen_tls or listen_wss"
            ]
        );
    }

    #[test]
    fn cert_and_key_come_together() {
        assert_eq!(
            error_lines("[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\ntls_cert = \"c.pem\"\n"),
            vec!["t.toml:3:12: sip.tls_cert: tls_cert needs tls_key (the certificate's private key, PEM)"]
        );
        assert_eq!(
            error_lines("[http]\ntls_key = \"k.pem\"\n"),
            vec!["t.toml:2:11: http.tls_key: tls_key needs tls_cert (the certificate chain, PEM)"]
        );
        assert_eq!(
            error_lines("[http]\ntls_cert = \"\"\ntls_key = 3\n"),
            vec![
                "t.toml:2:12: http.tls_cert: must name a PEM file",
                "t.toml:3:11: http.tls_key: expected a string, found an integer",
            ]
        );
    }

    #[test]
    fn only_tls_is_a_valid_sip_listener_set() {
        let config = valid(
            "[sip]\nlisten_udp = []\nlisten_tcp = []\nlisten_tls = [\"[::1]:5061\"]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        );
        assert_eq!(config.sip.listen_tls[0].port(), 5061);
    }

    #[test]
    fn https_certificate() {
        let config = valid("[http]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n");
        assert_eq!(config.http.tls, files("c.pem", "k.pem"));
    }

    #[test]
    fn the_demo_listens_for_tls_with_a_made_up_certificate() {
        let demo = crate::config::demo();
        assert_eq!(
            demo.sip.listen_tls,
            vec![SocketAddr::from(([127, 0, 0, 1], 5061))]
        );
        assert_eq!(demo.sip.tls, Some(TlsCertificate::SelfSigned));
    }
}
